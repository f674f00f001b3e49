"""Statements of Zhang et al. (2026) that need a decoder: both sides by enumeration.

Lemma 4.1 (the rollout error is the sum of local errors along the model's own
rollout), the bound of Eq. 11 under Assumption 4.2 in the three forms of
:mod:`pmdm.theory.rollout`, the two regimes of Sec. 3 run through real decoders
(with the draw-dependent order that escapes the first one), and Proposition C.5
(remasking cannot repair an infinite reverse KL) with two readings of its
Assumption C.4.

Every left side comes from :func:`pmdm.decoding.exact.output_distribution`, the
exact output law of the decoder; every right side is computed another way (prefix
enumeration, entropies of the table, a closed form).

References
----------
Zhang, Yu, Brekelmans, Tang, Asif, Ver Steeg (2026), "Generation Order and Parallel
Decoding in Masked Diffusion Models: An Information-Theoretic Perspective", arXiv
2602.00286.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

import pmdm.theory.paper  # noqa: F401  (the table-based statements register first)
from pmdm.models.block_hmm import BlockHMM
from pmdm.models.table import TableTarget
from pmdm.theory import generators as g
from pmdm.theory._common import blocks_conditionally_independent, paper
from pmdm.theory.decoder_instances import (
    SLACK,
    DecoderInstance,
    DecoderSpec,
    RolloutInstance,
    fixed_step_sets,
    random_parameters,
    random_rollout,
    random_small_block_hmm,
    random_target,
    random_token_hmm,
)
from pmdm.theory.registry import Assumption, Statement, register
from pmdm.theory.rollout import assumption_slack, eq11_bound

#: Draws a generator makes to meet a statement's assumptions before giving up.
MAX_TRIES = 30

# -- Lemma 4.1 ------------------------------------------------------------------------


@register
class Lemma41(Statement):
    """The rollout error is the sum of the local errors along the model's rollout.

    ``KL(p_θ^π ‖ p) = Σ_t E_{x_{π(<t)} ∼ p_θ^π}[KL(p_θ(·|h) ‖ p(·|h))]`` for a model
    ``p_θ`` decoded one token per step in the order ``π``. The left side is the
    decoder's exact output law (``output_distribution``); the right side
    enumerates the rollout's prefixes (:func:`pmdm.theory.rollout.rollout_profile`).

    Notes
    -----
    The identity is the chain rule of the KL divergence along the decoding path, so
    it holds for any order that is a fixed function of the revealed tokens, not
    only a fixed permutation: the instances also use the entropy, confidence and
    margin orders, whose positions depend on the prefix. Prefixes come from the
    model, which is why the total depends on ``π``; where the model gives mass to a
    token the target rules out (``support="full"`` on a table with zeros) both
    sides are ``+inf``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Lemma 4.1, Eq. 6-7.
    """

    name = "lemma-4.1"
    source = paper("Lemma 4.1, Eq. 7")
    kind = "identity"
    relation = "=="
    summary = "KL(p_θ^π ‖ p) = Σ_t E_{h∼p_θ^π} KL(p_θ(·|h) ‖ p(·|h))"

    def evaluate(self, instance: RolloutInstance):
        return instance.rollout_kl(), instance.profile().kl

    def generate(self, generator):
        return random_rollout(generator)


# -- Eq. 11 under Assumption 4.2 ---------------------------------------------------------


def _assumption_holds(instance: RolloutInstance) -> bool:
    if not instance.has_parameters:
        return False
    profile = instance.profile()
    if not torch.isfinite(profile.errors).all():
        return False
    slack = assumption_slack(
        profile.errors, instance.entropies(), instance.alpha, instance.lam, instance.b
    )
    scale = max(1.0, float(profile.errors.abs().max()))
    return bool((slack >= -SLACK * scale).all())


_ASSUMPTION_42 = (
    Assumption("alpha>0", lambda inst: bool(inst.alpha and inst.alpha > 0)),
    Assumption("assumption-4.2", _assumption_holds),
)


class _Eq11(Statement):
    """Shared evaluation of the three forms of Eq. 11."""

    form = "recursion"
    relation = "<="
    assumptions = _ASSUMPTION_42

    def evaluate(self, instance: RolloutInstance):
        bound = eq11_bound(
            instance.entropies(), instance.alpha, instance.lam, instance.b, self.form
        )
        return instance.rollout_kl(), bound

    def generate(self, generator):
        return random_parameters(generator, random_rollout(generator))


@register
class Eq11(_Eq11):
    """Under Assumption 4.2, ``J(π) ≤ Σ_t (1+λ)^{T−t} (α H_t + b)``.

    With ``ē_t ≤ α H_t + λ S_{t−1} + b`` and ``S_t = Σ_{k≤t} ē_k``,
    ``S_t ≤ (1+λ) S_{t−1} + α H_t + b`` and ``S_0 = 0`` unroll to the bound, and
    ``J(π) = S_T`` by Lemma 4.1. ``J`` is the decoder's exact
    ``KL(p_θ^π ‖ p)``; ``α, λ, b`` satisfy the assumption on the instance (two of
    them drawn, the third the smallest that works); ``H_t`` is the target's
    conditional entropy at step ``t`` averaged over the rollout's prefixes (the law
    of ``ē_t``) or over the target's (``Σ_t H_t = H(p)``), see
    :mod:`pmdm.theory.rollout`. The bound holds for either.

    Notes
    -----
    The weight of ``α H_t`` is the paper's ``(1+λ)^{T−t}``; the ``b``-term is
    ``b Σ_{s<T} (1+λ)^s``, not the printed ``T b`` (see ``eq-11-printed``). The
    two agree when ``λ = 0`` or ``b = 0``. Tight when Assumption 4.2 is an equality
    at every step (ratio 1 up to rounding).

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Assumption 4.2 (Eq. 10) and Eq. 11.
    """

    name = "eq-11"
    source = paper("Eq. 11 under Assumption 4.2 (unrolled recursion)")
    kind = "inequality"
    summary = "J(π) ≤ Σ_t (1+λ)^{T−t} (α H_t + b)"


@register
class Eq11Printed(_Eq11):
    """Eq. 11 as printed, ``J(π) ≤ Σ_t α (1+λ)^{T−t} H_t + T b``: false for ``λ, b > 0``.

    The recursion carries ``b`` through the same growth as ``α H_t``: the
    ``b``-term of the bound it implies is ``b Σ_{s<T} (1+λ)^s = b((1+λ)^T − 1)/λ``,
    which exceeds ``T b`` as soon as ``T >= 2``, ``λ > 0`` and ``b > 0``.

    Notes
    -----
    Minimal counterexample shape: ``T = 2``, ``α H_t`` negligible against ``b``.
    With ``b`` the smallest value making Assumption 4.2 hold,
    ``b = max(ē_1, ē_2 − λ ē_1)``; if ``ē_1 <= ē_2 <= (1+λ) ē_1`` then ``b = ē_1``
    and ``J = ē_1 + ē_2 > 2 ē_1 = T b``. Two bits, ``p(00, 01, 10, 11) = (12, 34,
    24, 29)/99``, the noisy oracle at level 3 (``noise_seed=1``, ``support="keep"``)
    decoded left to right: ``ē = (0.624, 0.734)``, ``H = (0.691, 0.689)``; with
    ``α = 1e-6``, ``λ = 1`` and the smallest ``b = 0.624``, ``J = 1.358`` against
    the printed ``1.249`` (the valid bound of ``eq-11`` is ``1.873``).
    ``pmdm check`` prints the smallest failing instance it meets.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Eq. 11 (the ``T b`` term).
    """

    name = "eq-11-printed"
    source = paper("Eq. 11 as printed (+ T·b)")
    kind = "claimed-form"
    summary = "J(π) ≤ Σ_t α(1+λ)^{T−t} H_t + T b (expected to fail for λ, b > 0)"
    form = "printed"


@register
class Eq11IntermediateSum(_Eq11):
    """The printed intermediate sum: ``J(π) ≤ Σ_t α (Σ_{s=0}^{T−t} λ^s) H_t + T b``.

    Tested with ``b = 0`` so that only the weights of ``H_t`` are at stake (the
    ``b``-term is the subject of ``eq-11-printed``). ``Σ_{s=0}^{n} λ^s`` equals
    ``(1+λ)^n`` for ``n <= 1`` and is smaller from ``n = 2`` on (``(1+λ)^n`` has
    binomial coefficients ``C(n, s) >= 1``), so the form can only fail for
    ``T >= 3``.

    Notes
    -----
    The weights ``Σ_s λ^s`` are what one gets by unrolling
    ``ē_t ≤ α H_t + λ ē_{t−1}`` (only the previous step's error), not the
    assumption's ``λ Σ_{k<t} ē_k``. Minimal counterexample: three bits,
    ``p ∝ (8, 5, 1, 7, 6, 1, 8, 8)`` in lexicographic order, the noisy oracle at
    level 3 (``noise_seed=4``) decoded right to left, ``H_t`` under the rollout:
    ``ē = (0.049, 0.107, 0.220)``, ``H = (0.692, 0.646, 0.505)``; ``α = ē_1/H_1 =
    0.0711`` (the first step tight) and the smallest ``λ = 1.238`` give ``J = 0.3765``
    against the intermediate sum ``0.3244`` (the valid ``eq-11`` bound is
    ``0.3854``). The valid weights are ``(1+λ)^{T−t}``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, derivation of Eq. 11 (intermediate sum).
    """

    name = "eq-11-intermediate-sum"
    source = paper("Eq. 11, printed intermediate sum α Σ_s λ^s")
    kind = "claimed-form"
    summary = "J(π) ≤ Σ_t α Σ_{s=0}^{T−t} λ^s H_t + T b, b = 0 (expected to fail)"
    form = "intermediate"
    assumptions = (*_ASSUMPTION_42, Assumption("b=0", lambda inst: inst.b == 0))

    def generate(self, generator):
        return random_parameters(generator, random_rollout(generator), b_zero=True)


# -- Sec. 3: the regimes, through decoders ----------------------------------------------


def _both_kls(instance: DecoderInstance) -> float:
    return instance.forward_kl() + instance.reverse_kl()


_ORACLE = Assumption("oracle-predictor", lambda inst: inst.level == 0)
_NO_REMASK = Assumption("no-remasking", lambda inst: inst.decoder.remask_rounds == 0)
_TEMPERATURE_1 = Assumption("temperature-1", lambda inst: inst.decoder.temperature == 1)
_ONE_TOKEN = Assumption(
    "one-token-per-step", lambda inst: inst.decoder.one_token_per_step
)

#: Orders of the one-token regime (sampled-confidence is tested on its own).
_REGIME_ORDERS = ("l2r", "r2l", "random", "entropy", "confidence", "margin", "perm")


def _one_token_instance(generator, order: str | None = None) -> DecoderInstance:
    target = random_target(generator)
    name = order or g.choice(generator, _REGIME_ORDERS)
    if name == "perm":
        name = tuple(torch.randperm(target.length, generator=generator).tolist())
    sampler = (
        "factorized"
        if name == "sampled-confidence"
        else g.choice(generator, ("factorized", "joint", "rejection"))
    )
    return DecoderInstance(target, DecoderSpec(name, "fixed", 1, sampler))


@register
class RegimeOneTokenPerStepDecoder(Statement):
    """Perfect model, one token per step: the decoder's output is ``p`` in any order.

    Run through :class:`~pmdm.decoding.decoder.Decoder` with the oracle and
    ``FixedSize(1)``, in fixed orders (left to right, right to left, a
    permutation), adaptive ones (entropy, confidence, margin) and the uniformly
    random order, with every step sampler; ``q`` is enumerated exactly, random
    choices included. Evaluated as ``KL(p ‖ q) + KL(q ‖ p) = 0``.

    Notes
    -----
    The order may depend on the revealed tokens and on independent randomness, but
    not on the value about to be committed: LLaDA's ``low_confidence`` order
    (``sampled-confidence``) ranks positions by the probability of their own fresh
    draw and breaks the regime; see
    ``regime-one-token-per-step-sampled-confidence``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Sec. 3 (first regime).
    """

    name = "regime-one-token-per-step-decoder"
    source = paper("Sec. 3, perfect model and one token per step (decoders)")
    kind = "identity"
    relation = "=="
    summary = "oracle, FixedSize(1), any order or sampler: KL(p ‖ q) + KL(q ‖ p) = 0"
    assumptions = (
        _ORACLE,
        _ONE_TOKEN,
        _TEMPERATURE_1,
        _NO_REMASK,
        Assumption(
            "order-ignores-the-draws",
            lambda inst: inst.decoder.order != "sampled-confidence",
        ),
    )

    def evaluate(self, instance: DecoderInstance):
        return _both_kls(instance), 0.0

    def generate(self, generator):
        return _one_token_instance(generator)


@register
class RegimeSampledConfidence(Statement):
    """One token per step in LLaDA's sampled-confidence order: ``q = p`` is false.

    Every masked position draws a token from its exact conditional, and the
    position whose draw had the highest probability is committed. The committed
    value is then not a draw from ``p(x_i | x_S)`` but one conditioned on having won
    the ranking, which favours probable values.

    Notes
    -----
    Smallest counterexample: two bits with ``p(00, 01, 10, 11) = (0.4, 0.1, 0.2,
    0.3)``. The decoder outputs ``q = (0.56, 0.04, 0.28, 0.12)``, ``KL(p ‖ q) ≈
    0.165`` nats. With ``temperature = 0`` (LLaDA's default) the draws are the
    argmax and the order is deterministic again.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Sec. 3 (first regime); Nie et al. (2025),
    LLaDA, arXiv 2502.09992, App. B (low-confidence remasking).
    """

    name = "regime-one-token-per-step-sampled-confidence"
    source = paper("Sec. 3, first regime, with a draw-dependent order")
    kind = "claimed-form"
    relation = "=="
    summary = "sampled-confidence order, FixedSize(1), oracle: q = p (expected to fail)"
    assumptions = (_ORACLE, _ONE_TOKEN, _TEMPERATURE_1, _NO_REMASK)

    def evaluate(self, instance: DecoderInstance):
        return _both_kls(instance), 0.0

    def generate(self, generator):
        return _one_token_instance(generator, "sampled-confidence")


def _steps_independent(instance: DecoderInstance) -> bool:
    sets = fixed_step_sets(instance)
    if sets is None:
        return False
    return blocks_conditionally_independent(instance.log_p(), sets)


@register
class RegimeConditionalIndependenceDecoder(Statement):
    """Steps that are conditionally independent given the revealed tokens make the
    factorized decoder exact.

    For a decoder whose step sets do not depend on the values (a permutation with
    ``FixedSize(k)``, or the target's
    :class:`~pmdm.decoding.orders.GraphOrder`), the assumption checks on the
    table that every step set is conditionally independent given the positions
    revealed before it; then the oracle's factorized steps are exact and
    ``KL(p ‖ q) + KL(q ‖ p) = 0``.

    Notes
    -----
    The graph order picks its sets by d-separation in the target's dependency
    graph (token HMMs with identity emissions, Block-HMMs); the assumption
    re-checks each independence numerically, so the statement also tests the
    graphs.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Sec. 3 (second regime), Eq. 5.
    """

    name = "regime-conditional-independence-decoder"
    source = paper("Sec. 3, conditional independence inside a step (decoders)")
    kind = "identity"
    relation = "=="
    summary = "independent step sets: factorized oracle decoder has q = p"
    assumptions = (
        _ORACLE,
        _TEMPERATURE_1,
        _NO_REMASK,
        Assumption("factorized-sampler", lambda i: i.decoder.sampler == "factorized"),
        Assumption("steps-conditionally-independent", _steps_independent),
    )

    def evaluate(self, instance: DecoderInstance):
        return _both_kls(instance), 0.0

    def generate(self, generator):
        if g.uniform(generator) < 0.4:
            target = (
                random_token_hmm(generator)
                if g.uniform(generator) < 0.6
                else random_small_block_hmm(generator)
            )
            return DecoderInstance(target, DecoderSpec("graph"))
        shape = g.random_shape(generator, min_length=2)
        T = len(shape)
        k = g.randint(generator, 1, T)
        perm = torch.randperm(T, generator=generator).tolist()
        blocks = [tuple(sorted(perm[i : i + k])) for i in range(0, T, k)]
        rate = g.choice(generator, (0.0, 0.3))
        log_p = g.conditionally_independent_joint(generator, shape, blocks, rate)
        order = tuple(i for block in blocks for i in block)
        target = TableTarget.from_dense(log_p.exp())
        return DecoderInstance(target, DecoderSpec(order, "fixed", k))


# -- Proposition C.5: remasking -----------------------------------------------------------


def remask_always_reaches_impossible(log_p: Tensor, count: int) -> bool:
    """Assumption C.4 in its uniform form, checked on a ``(V,)*T`` table.

    For every set ``A`` of ``min(count, T)`` positions and every context ``x_{−A}``
    of positive probability, the product of the conditional marginals
    ``Π_{i∈A} p(x_i | x_{−A})`` gives mass to a configuration ``y_A`` with
    ``p(y_A, x_{−A}) = 0``. (A context of probability zero makes every completion
    impossible.) Then a factorized remasking step of ``count`` positions reaches an
    impossible sequence from any state, whichever positions it remasks.
    """
    T = log_p.dim()
    V = log_p.shape[0]
    k = min(count, T)
    probs = log_p.exp()
    for chosen in itertools.combinations(range(T), k):
        rest = [i for i in range(T) if i not in chosen]
        # (contexts, V, .., V): the remasked positions last.
        joint = probs.permute(*rest, *chosen).reshape((-1,) + (V,) * k)
        context = joint.reshape(joint.shape[0], -1).sum(-1)
        live = context > 0
        cond = joint[live] / context[live].reshape((-1,) + (1,) * k)
        support = torch.ones_like(cond, dtype=torch.bool)
        for j in range(k):
            axes = [a + 1 for a in range(k) if a != j]
            marg = cond.sum(axes) if axes else cond
            view = [cond.shape[0]] + [1] * k
            view[j + 1] = V
            support = support & (marg.reshape(view) > 0)
        mismatch = (support & (cond == 0)).reshape(cond.shape[0], -1).any(-1)
        if not mismatch.all():
            return False
    return True


_REMASK = (
    _ORACLE,
    Assumption("factorized-sampler", lambda i: i.decoder.sampler == "factorized"),
    Assumption("positive-temperature", lambda i: i.decoder.temperature > 0),
)


def _remask_target(generator) -> TableTarget | BlockHMM:
    family = g.randint(generator, 0, 3)
    if family == 0:
        # Non-uniform weights on the even-parity configurations of T bits.
        T = g.randint(generator, 3, 4)
        shape = (2,) * T
        grid = torch.stack(torch.meshgrid(*[torch.arange(2)] * T, indexing="ij"))
        even = (grid.sum(0) % 2 == 0).to(torch.float64)
        w = g.random_weights(generator, shape) * even
        return TableTarget.from_dense(w / w.sum())
    if family == 1:
        for _ in range(MAX_TRIES):
            hmm = g.random_block_hmm(generator, 3, 2, etas=(0.0,))
            if hmm.length <= 6:
                return hmm
        return hmm
    shape = g.random_shape(generator, min_length=2)
    style = "copies" if family == 2 else g.choice(generator, ("sparse", "parity"))
    return TableTarget.from_dense(g.random_joint(generator, shape, style).exp())


def _remask_decoder(generator, T: int, count: int, rounds: int) -> DecoderSpec:
    order = g.choice(generator, ("l2r", "r2l", "random", "entropy", "confidence"))
    k = g.randint(generator, 1, T)
    return DecoderSpec(order, "fixed", k, "factorized", 1.0, rounds, count)


@register
class PropositionC5(Statement):
    """Remasking cannot repair an infinite reverse KL: ``KL(q_r ‖ p) = ∞`` for every
    number ``r >= 1`` of remasking rounds, under Assumption C.4.

    The decoder (:class:`~pmdm.decoding.decoder.Remask`) re-masks, after
    decoding, the ``count`` positions committed with the lowest probability and
    draws them again from their factorized conditionals, ``r`` times. Assumption
    C.4 is checked in its uniform form
    (:func:`remask_always_reaches_impossible`): whatever the state and whichever
    ``count`` positions are remasked, the factorized redraw can produce an
    impossible sequence. Then the last round puts positive mass on ``p = 0`` and
    ``q_r`` has infinite reverse KL, whatever ``r``.

    Notes
    -----
    Read weakly, "one remasking step can reach an impossible configuration" (the
    first round does) is not enough for the deterministic lowest-confidence choice
    of positions: later rounds can repair every impossible sequence, see
    ``proposition-c5-first-round``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Assumption C.4, Proposition C.5; Wang et
    al. (2025), ReMDM, arXiv 2503.00307.
    """

    name = "proposition-c5"
    source = paper("Proposition C.5 under Assumption C.4 (uniform form)")
    kind = "identity"
    relation = "=="
    summary = "C.4 from every state ⇒ KL(q_r ‖ p) = ∞ for every r ≥ 1 rounds"
    assumptions = (
        *_REMASK,
        Assumption("rounds>=1", lambda i: i.decoder.remask_rounds >= 1),
        Assumption(
            "C.4-from-every-state",
            lambda i: remask_always_reaches_impossible(
                i.log_p(), i.decoder.remask_count
            ),
        ),
    )

    def evaluate(self, instance: DecoderInstance):
        return instance.reverse_kl(), math.inf

    def generate(self, generator):
        for _ in range(MAX_TRIES):
            target = _remask_target(generator)
            T = target.length
            count = T if g.uniform(generator) < 0.3 else g.randint(generator, 1, T)
            spec = _remask_decoder(generator, T, count, g.randint(generator, 1, 3))
            instance = DecoderInstance(target, spec)
            if not self.failed_assumptions(instance):
                return instance
        return instance


@register
class PropositionC5FirstRound(Statement):
    """Prop. C.5 with C.4 read as "the first remasking round reaches an impossible
    sequence": false for lowest-confidence remasking.

    Assumption: ``KL(q_1 ‖ p) = ∞`` with one round; claim: ``KL(q_r ‖ p) = ∞`` for
    the instance's ``r >= 2`` rounds.

    Notes
    -----
    With ``count = 1`` a round re-draws one position ``i`` from ``p(x_i | x_{−i})``:
    if the rest ``x_{−i}`` is possible the result is possible, and only sequences
    whose rest is impossible stay impossible. A redraw given an impossible context
    is uniform, so ``i`` gets the committed probability ``1/V`` and the next round
    may pick another position ``j`` whose rest is possible, and repair the
    sequence. Smallest counterexample found: three bits with ``p(000) ≈ 0.467,
    p(011) ≈ 0.145, p(110) ≈ 0.171, p(111) ≈ 0.217``, a factorized first pass of
    two positions per step, one position remasked: one round leaves impossible
    sequences, two rounds repair them all (``KL(q_2 ‖ p)`` finite). ``pmdm check``
    prints the smallest instance it meets.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Assumption C.4, Proposition C.5.
    """

    name = "proposition-c5-first-round"
    source = paper("Proposition C.5, C.4 read as 'the first round reaches p = 0'")
    kind = "claimed-form"
    relation = "=="
    summary = "KL(q_1 ‖ p) = ∞ ⇒ KL(q_r ‖ p) = ∞ for r ≥ 2 (expected to fail)"
    assumptions = (
        *_REMASK,
        Assumption("rounds>=2", lambda i: i.decoder.remask_rounds >= 2),
        Assumption(
            "first-round-reaches-impossible",
            lambda i: math.isinf(i.reverse_kl(remask_rounds=1)),
        ),
    )

    def evaluate(self, instance: DecoderInstance):
        return instance.reverse_kl(), math.inf

    def generate(self, generator):
        for _ in range(MAX_TRIES):
            shape = g.random_shape(generator, min_length=3, max_entries=27)
            style = g.choice(generator, ("sparse", "sparse", "parity", "copies"))
            target = TableTarget.from_dense(
                g.random_joint(generator, shape, style).exp()
            )
            T = target.length
            spec = _remask_decoder(
                generator, T, g.randint(generator, 1, 2), g.randint(generator, 2, 3)
            )
            instance = DecoderInstance(target, spec)
            if not self.failed_assumptions(instance):
                return instance
        return instance
