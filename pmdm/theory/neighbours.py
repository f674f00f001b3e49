"""Neighbouring results: information identities, one-step bounds, schedules.

The dual-total-correlation identity; ParallelBench's lower bound for factorized
one-step models; Fast-dLLM's greedy equivalence; the EB-Sampler's entropy budget;
Li and Cai's bound and Chen, Cong and Li's exact formula for random-order
schedules. The last two are marked ``claimed-form``: THEORY.md summarizes them
from abstracts, so they are tested rather than trusted.
"""

from __future__ import annotations

import torch
from torch import Tensor

import pmdm.theory.paper  # noqa: F401  (the paper's statements register first)
from pmdm.metrics.information import (
    conditional_entropy,
    dual_total_correlation,
    information_curve,
    joint_entropy,
    marginal,
    sum_mutual_information,
    total_correlation,
)
from pmdm.ops.logspace import kl_divergence
from pmdm.theory import generators as g
from pmdm.theory.instances import (
    ConditionalTable,
    JointTable,
    ScheduleInstance,
    ThresholdInstance,
)
from pmdm.theory.registry import Assumption, Source, Statement, register
from pmdm.theory.schedules import (
    li_cai_bound,
    random_order_kl,
    schedule_formula,
)

# -- the DTC identity ------------------------------------------------------------------


@register
class DTCIdentity(Statement):
    """``Σ_i I(X_i ; X_{−i}) = TC + DTC``.

    ``TC + DTC = Σ_i H(X_i) − Σ_i H(X_i | X_{−i}) = Σ_i I(X_i ; X_{−i})``: the
    dependence measure of Li and Cai's bound splits into the two classical
    multivariate correlations. Both sides are computed independently (term-by-term
    mutual informations; entropies of marginals and leave-one-out sets).

    References
    ----------
    Watanabe (1960), IBM J. Res. Dev. 4(1) (TC); Han (1978), Inf. Control 36(2)
    (DTC); Li, Cai (2025), arXiv 2505.21400 (``Σ_i I(X_i ; X_{−i})``).
    """

    name = "dtc-identity"
    source = Source("Han; Li, Cai", 2025, "2505.21400", "Σ_i I(X_i; X_−i) = TC + DTC")
    kind = "identity"
    relation = "=="
    summary = "Σ_i I(X_i; X_−i) = TC + DTC"

    def evaluate(self, instance: JointTable):
        log_p = instance.log_p
        lhs = float(sum_mutual_information(log_p))
        rhs = float(total_correlation(log_p) + dual_total_correlation(log_p))
        return lhs, rhs

    def generate(self, generator):
        if g.uniform(generator) < 0.2:
            return JointTable(g.random_block_context(generator))
        return JointTable(g.random_joint(generator, g.random_shape(generator, 5)))


# -- ParallelBench ---------------------------------------------------------------------


def factorized_model_kl(instance: ConditionalTable) -> float:
    """``E_x KL(p(y | x) ‖ Π_i q_i(y_i | x))`` of a factorized one-step model."""
    n = instance.log_cond.dim() - 1
    X, V = instance.log_model.shape[0], instance.log_model.shape[-1]
    log_q = torch.zeros((X,) + (V,) * n, dtype=torch.float64)
    for i in range(n):
        view = [X] + [1] * n
        view[i + 1] = V
        log_q = log_q + instance.log_model[:, i, :].reshape(view)
    kl = kl_divergence(instance.log_cond.flatten(1), log_q.flatten(1))
    w = instance.log_prompt.exp()
    return float(torch.where(w == 0, torch.zeros_like(kl), w * kl).sum())


def conditional_tc_bound(instance: ConditionalTable) -> float:
    """``Σ_i H(Y_i | X) − H(Y | X)`` from the joint table of prompt and answer."""
    joint = instance.log_joint
    n = joint.dim() - 1
    answer = list(range(1, n + 1))
    singles = sum(conditional_entropy(joint, [i], [0]) for i in answer)
    return float(singles - conditional_entropy(joint, answer, [0]))


@register
class ParallelBench(Statement):
    """A factorized one-step model has forward KL at least ``Σ_i H(Y_i|X) − H(Y|X)``.

    For prompts ``x ∼ p(x)`` and any per-position laws ``q_i(y_i | x)``,
    ``E_x KL(p(y|x) ‖ Π_i q_i(y_i|x)) ≥ E_x TC(Y | x) = Σ_i H(Y_i | X) − H(Y | X)``,
    with equality when ``q_i`` are the true conditional marginals ``p(y_i | x)``
    (the optimum): the KL splits into the total correlation plus
    ``Σ_i E_x KL(p(y_i|x) ‖ q_i(y_i|x))``.

    References
    ----------
    Kang et al. (2025), "ParallelBench: understanding the trade-offs of parallel
    decoding in diffusion LLMs", arXiv 2510.04767.
    """

    name = "parallelbench"
    source = Source("Kang et al.", 2025, "2510.04767", "factorized one-step bound")
    kind = "inequality"
    relation = ">="
    summary = "E_x KL(p(y|x) ‖ Π q_i) ≥ Σ_i H(Y_i|X) − H(Y|X)"

    def evaluate(self, instance: ConditionalTable):
        return factorized_model_kl(instance), conditional_tc_bound(instance)

    def generate(self, generator):
        X = g.randint(generator, 1, 3)
        shape = g.random_shape(generator, max_length=3)
        n, V = len(shape), shape[0]
        prompt = g.random_joint(
            generator, (X,), g.choice(generator, ("dense", "sparse"))
        )
        cond = torch.stack([g.random_joint(generator, shape) for _ in range(X)])
        mode = g.randint(generator, 0, 2)
        if mode == 0:
            # The optimum: the true conditional marginals.
            model = torch.stack(
                [torch.stack([marginal(c, [i]) for i in range(n)]) for c in cond]
            )
        else:
            rate = 0.0 if mode == 1 else 0.3
            model = torch.stack(
                [
                    torch.stack(
                        [
                            g.normalize_log(g.random_weights(generator, (V,), rate))
                            for _ in range(n)
                        ]
                    )
                    for _ in range(X)
                ]
            )
        return ConditionalTable(prompt, cond, model)


# -- Fast-dLLM ----------------------------------------------------------------------


def _top_marginals(log_p: Tensor) -> tuple[list[int], list[float]]:
    tops, values = [], []
    for i in range(log_p.dim()):
        m = marginal(log_p, [i]).exp()
        tops.append(int(m.argmax()))
        values.append(float(m.max()))
    return tops, values


def _greedy_conditions(inst: ThresholdInstance) -> bool:
    n = inst.log_p.dim()
    return (n + 1) * inst.threshold <= 1 + 1e-12


#: Margin by which a marginal must exceed ``1 − ε`` to count as above it, so that
#: rounding (``0.75000000000000011 > 0.75``) never decides the assumption.
STRICT_MARGIN = 1e-12


def _confident(inst: ThresholdInstance) -> bool:
    _, values = _top_marginals(inst.log_p)
    return all(v > 1 - inst.threshold + STRICT_MARGIN for v in values)


@register
class FastDLLMGreedy(Statement):
    """High-confidence marginals make greedy factorized decoding exact.

    If each of ``n`` positions has a marginal ``p_i(x_i*) > 1 − ε`` and
    ``(n+1)ε ≤ 1``, the product of marginals and the joint have the same argmax
    ``x*``: ``p(x*) > 1 − nε ≥ ε > p(x)`` for every ``x ≠ x*`` (each such ``x``
    differs from ``x*`` somewhere, an event of probability below ``ε``). Evaluated as
    ``p(x_greedy) = max_x p(x)``; the threshold of the instance is ``ε``.

    Notes
    -----
    The constant is sharp. At the boundary ``(n+1)ε = 1`` with marginals equal to
    (not above) ``1 − ε``, ``x*`` ties with ``n`` other configurations (for ``n = 2``,
    ``ε = 1/3``: ``p(0,0) = p(0,1) = p(1,0) = 1/3``); the assumption asks each
    marginal to exceed ``1 − ε`` by :data:`STRICT_MARGIN` so that rounding cannot
    decide it. For any ``ε > 1/(n+1)`` a
    counterexample exists: mass ``a ∈ (1/(n+1), ε)`` on each of the ``n``
    configurations that differ from ``x*`` in one position and ``1 − na < a`` on
    ``x*`` (for ``n = 2``, ``ε = 0.35``: ``p(0,0) = 0.325, p(0,1) = 0.345,
    p(1,0) = 0.33``). ``proofs_checks/test_fast_dllm_greedy.py`` tests both.

    References
    ----------
    Wu et al. (2025), "Fast-dLLM: training-free acceleration of diffusion LLM by
    enabling KV cache and parallel decoding", arXiv 2505.22618 (greedy equivalence
    of parallel decoding under high confidence).
    """

    name = "fast-dllm-greedy"
    source = Source("Wu et al.", 2025, "2505.22618", "parallel greedy equivalence")
    kind = "identity"
    relation = "=="
    summary = "marginals > 1−ε, (n+1)ε ≤ 1 ⇒ argmax Π p_i = argmax p"
    assumptions = (
        Assumption("(n+1)eps<=1", _greedy_conditions),
        Assumption("marginals>1-eps", _confident),
    )

    def evaluate(self, instance: ThresholdInstance):
        tops, _ = _top_marginals(instance.log_p)
        greedy = instance.log_p[tuple(tops)].exp().item()
        return greedy, instance.log_p.exp().max().item()

    def generate(self, generator):
        shape = g.random_shape(generator)
        n = len(shape)
        eps = 1 / (n + 1)
        if g.uniform(generator) < 0.7:
            eps *= g.uniform(generator, 0.01, 1.0)
        star = tuple(g.randint(generator, 0, v - 1) for v in shape)
        # Mass `rest` spread at random off x*, and just under eps - rest on the
        # neighbour of x* at each position: every position's off-x* mass is < eps.
        rest = eps * g.uniform(generator, 0.0, 0.2)
        probs = torch.zeros(shape, dtype=torch.float64)
        noise = g.random_weights(generator, shape, 0.5)
        noise[star] = 0.0
        if noise.sum() > 0:
            probs += rest * noise / noise.sum()
        for i, v in enumerate(shape):
            other = list(star)
            other[i] = (star[i] + g.randint(generator, 1, v - 1)) % v
            probs[tuple(other)] += (eps - rest) * g.uniform(generator, 0.5, 0.999)
        probs[star] = 1 - probs.sum()
        return ThresholdInstance(probs.log(), eps)


# -- EB-Sampler ---------------------------------------------------------------------


def eb_selection(log_p: Tensor, gamma: float) -> list[int]:
    """The positions the EB-Sampler commits: lowest entropy first, while
    ``Σ H_i − max H_i ≤ γ`` (at least one)."""
    entropies = [float(joint_entropy(log_p, [i])) for i in range(log_p.dim())]
    order = sorted(range(len(entropies)), key=lambda i: (entropies[i], i))
    chosen = [order[0]]
    for i in order[1:]:
        trial = [entropies[j] for j in chosen + [i]]
        if sum(trial) - max(trial) > gamma:
            break
        chosen.append(i)
    return sorted(chosen)


@register
class EBSampler(Statement):
    """The EB-Sampler's entropy budget bounds the step's total correlation.

    The sampler commits the lowest-entropy positions ``A`` while
    ``Σ_{i∈A} H_i − max_{i∈A} H_i ≤ γ``; then ``TC(X_A) ≤ γ``, because
    ``TC(X_A) = Σ H_i − H(X_A) ≤ Σ H_i − max H_i`` (``H(X_A) ≥ max_i H_i``) for
    every set. The instance is the law of the masked positions given the context;
    its threshold is ``γ``. Tight for copies of one uniform variable with ``γ``
    equal to the budget used; loosest for independent positions (``TC = 0``).

    References
    ----------
    Ben-Hamu et al. (2025), "Accelerated sampling from masked diffusion models via
    entropy bounded unmasking", arXiv 2505.24857.
    """

    name = "eb-sampler"
    source = Source("Ben-Hamu et al.", 2025, "2505.24857", "entropy-bounded step")
    kind = "inequality"
    relation = "<="
    summary = "Σ_A H_i − max_A H_i ≤ γ ⇒ TC(X_A) ≤ γ"

    def evaluate(self, instance: ThresholdInstance):
        chosen = eb_selection(instance.log_p, instance.threshold)
        return float(total_correlation(instance.log_p, chosen)), instance.threshold

    def generate(self, generator):
        if g.uniform(generator) < 0.25:
            log_p = g.random_block_context(generator)
        else:
            log_p = g.random_joint(generator, g.random_shape(generator))
        entropies = [float(joint_entropy(log_p, [i])) for i in range(log_p.dim())]
        budget = sum(entropies) - max(entropies)
        if g.uniform(generator) < 0.3 and budget > 0:
            gamma = budget
        else:
            gamma = max(budget, 0.1) * g.uniform(generator, 0.01, 1.2)
        return ThresholdInstance(log_p, gamma)


# -- random-order schedules ---------------------------------------------------------


def _schedule_instance(generator: torch.Generator) -> ScheduleInstance:
    shape = g.random_shape(generator, max_length=5, max_entries=81, min_length=2)
    log_p = g.random_joint(generator, shape)
    return ScheduleInstance(log_p, g.random_composition(generator, len(shape)))


@register
class LiCai(Statement):
    """Li and Cai's bound on random-order decoding with an oracle.

    ``E_π KL(p ‖ q_π) ≤ ((2^{⌈log2 s_max⌉} − 1) / T) · Σ_i I(X_i ; X_{−i})`` for
    step sizes ``s_1..s_K`` (``T`` the sequence length), factorized steps and exact
    conditionals (training error 0). The left side is computed from the decoder's
    exact output law for every ordered partition (no decomposition used).

    Notes
    -----
    Reading ``T`` as the number of steps instead of the length also gives a valid
    (looser) bound on every instance tried. Tight cases: two positions decoded at
    once (``KL = I(X_1; X_2)``, bound the same); three parity bits with sizes
    ``(1, 2)`` (both sides ``log 2``).

    References
    ----------
    Li, Cai (2025), "A convergence theory for diffusion language models: an
    information-theoretic perspective", arXiv 2505.21400.
    """

    name = "li-cai"
    source = Source("Li, Cai", 2025, "2505.21400", "main KL upper bound (oracle)")
    kind = "claimed-form"
    relation = "<="
    summary = "E KL ≤ ((2^⌈log2 s_max⌉ − 1)/T) Σ_i I(X_i; X_−i)"

    def evaluate(self, instance: ScheduleInstance):
        lhs = float(random_order_kl(instance.log_p, instance.sizes))
        return lhs, float(li_cai_bound(instance.log_p, instance.sizes))

    def generate(self, generator):
        return _schedule_instance(generator)


@register
class ChenCongLi(Statement):
    """The expected KL of a random-order schedule is exact on the information curve.

    With ``Z_j = E[I(X_i ; X_S)]`` over uniformly random ``|S| = j − 1`` and
    ``i ∉ S`` (``j = 1..T``, so ``Z_1 = 0`` and ``Σ_j Z_j = TC``), and
    ``c_k = s_1 + .. + s_{k−1}``::

        E_π KL(p ‖ q_π) = Σ_k Σ_{j=c_k+1}^{c_k+s_k} (Z_j − Z_{c_k+1})

    The left side is computed from the decoder's exact output law for every
    ordered partition. The indexing ``|S| = j − 1`` is the one that holds; the
    statement ``chen-cong-li-schedule-shifted`` tests ``|S| = j`` and fails.

    References
    ----------
    Chen, Cong, Li (2025), "Optimal inference schedules for masked diffusion
    models", arXiv 2511.04647 (exact characterization through the information
    curve).
    """

    name = "chen-cong-li-schedule"
    source = Source("Chen, Cong, Li", 2025, "2511.04647", "exact schedule error")
    kind = "claimed-form"
    relation = "=="
    summary = "E KL = Σ_k Σ_{j∈step k} (Z_j − Z_{c_k+1}), Z_j over |S| = j−1"

    def evaluate(self, instance: ScheduleInstance):
        lhs = float(random_order_kl(instance.log_p, instance.sizes))
        curve = information_curve(instance.log_p)
        return lhs, float(schedule_formula(curve, instance.sizes))

    def generate(self, generator):
        return _schedule_instance(generator)


def shifted_curve(log_p: Tensor) -> Tensor:
    """``Z'_j = E[I(X_i ; X_S)]`` over ``|S| = j`` for ``j = 1..T−1``, followed by
    ``Z'_T := Z'_{T−1}`` (``|S| = T`` leaves no position; the value never matters
    when the last step reveals one position)."""
    curve = information_curve(log_p)
    return torch.cat([curve[1:], curve[-1:]])


@register
class ChenCongLiShifted(Statement):
    """The schedule formula with the information curve indexed by ``|S| = j``: false.

    Same formula as ``chen-cong-li-schedule`` but with ``Z'_j`` averaged over sets
    of ``j`` revealed positions. Only schedules whose last step reveals one
    position are tried, so that the undefined ``Z'_T`` never enters.

    Notes
    -----
    Minimal counterexample: three bits uniform on even parity
    (``X_3 = X_1 ⊕ X_2``) with step sizes ``(2, 1)``. Any two of the bits are
    independent, so the first (factorized) step is exact and ``E KL = 0``; the
    correctly indexed formula gives ``Z_2 − Z_1 = 0``, the shifted one
    ``Z_3 − Z_2 = log 2``. Three copies of a fair bit with the same sizes fail the
    other way: ``E KL = Z_2 − Z_1 = log 2`` (two copies decoded independently),
    shifted ``Z_3 − Z_2 = 0``. No instance with ``T = 2`` can separate the two
    indexings (their only admissible schedule ``(1, 1)`` gives 0 either way).

    References
    ----------
    Chen, Cong, Li (2025), arXiv 2511.04647 (the indexing of the information curve).
    """

    name = "chen-cong-li-schedule-shifted"
    source = Source("Chen, Cong, Li", 2025, "2511.04647", "curve indexed by |S| = j")
    kind = "claimed-form"
    relation = "=="
    summary = "same formula with Z_j over |S| = j (expected to fail)"
    assumptions = (
        Assumption("last-step-one-position", lambda inst: inst.sizes[-1] == 1),
    )

    def evaluate(self, instance: ScheduleInstance):
        lhs = float(random_order_kl(instance.log_p, instance.sizes))
        curve = shifted_curve(instance.log_p)
        return lhs, float(schedule_formula(curve, instance.sizes))

    def generate(self, generator):
        inst = _schedule_instance(generator)
        if inst.sizes[-1] != 1:
            sizes = (*inst.sizes[:-1], inst.sizes[-1] - 1, 1)
            inst = ScheduleInstance(inst.log_p, sizes)
        return inst
