"""Statements of Zhang et al. (2026) that need no decoder beyond exact tables.

The regimes of Sec. 3, the forward and reverse decompositions (Eq. 16, 18),
Lemma C.1 and Corollary C.2 (support mismatch), Lemma C.3 (Markov) and
Proposition 5.1 (cost of verification by rejection). Lemma 4.1, the bound of
Eq. 11 with its printed intermediate sum, and Proposition C.5 (remasking) need the
decoders of :mod:`pmdm.decoding` and are registered there once those exist.

References
----------
Zhang, Yu, Brekelmans, Tang, Asif, Ver Steeg (2026), "Generation Order and Parallel
Decoding in Masked Diffusion Models: An Information-Theoretic Perspective", arXiv
2602.00286.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pmdm.metrics.estimate import monte_carlo
from pmdm.metrics.information import (
    conditional_total_correlation,
    joint_kl_divergence,
    marginal,
    max_ratio,
    product_of_marginals,
    total_correlation,
)
from pmdm.models.block_hmm import BlockHMM
from pmdm.ops.logspace import xlogy
from pmdm.ops.validation import check_int
from pmdm.theory import generators as g
from pmdm.theory._common import (
    blocks_conditionally_independent,
    blockwise_tc,
    decoder_table,
    log_vocab_ceiling,
    paper,
    reachable_mismatch,
    support_mismatch,
)
from pmdm.theory.instances import (
    BlockedTable,
    JointTable,
    MarkovInstance,
    SimulationInstance,
)
from pmdm.theory.registry import Assumption, Statement, register

#: Slack of the comparison ``log p(x) ≤ log ε`` in Lemma C.3 (a relative 1e-12).
LOG_SLACK = 1e-12

#: Largest ``M`` for which the rejection statement simulates (cost ``N·M`` draws).
MAX_SIMULATED_M = 1000.0


# -- instance families shared by several statements ------------------------------


def _blocked_instance(generator: torch.Generator) -> BlockedTable:
    # Random tables with random partitions, one-block tables, and Block-HMMs.
    family = g.randint(generator, 0, 3)
    if family == 3:
        hmm = g.random_block_hmm(generator, max_block_size=3, max_blocks=3)
        while hmm.length > 8:
            hmm = g.random_block_hmm(generator, max_block_size=3, max_blocks=3)
        return BlockedTable(g.block_hmm_table(hmm), g.contiguous_blocks(hmm))
    shape = g.random_shape(generator)
    log_p = g.random_joint(generator, shape)
    if family == 2:
        return BlockedTable(log_p, (tuple(range(len(shape))),))
    return BlockedTable(log_p, g.random_partition(generator, len(shape)))


def _mismatched_table(generator: torch.Generator) -> Tensor:
    # A table whose product of marginals reaches a zero of p: a positive table
    # with one entry removed (its coordinates keep positive marginals), then
    # possibly more zeros.
    shape = g.random_shape(generator, min_length=2)
    w = g.random_weights(generator, shape)
    w.view(-1)[g.randint(generator, 0, w.numel() - 1)] = 0.0
    if g.uniform(generator) < 0.5:
        extra = g.random_weights(generator, shape, zero_rate=0.3) > 0
        trial = w * extra
        if (trial > 0).any():
            w = trial
    log_p = (w / w.sum()).log()
    return (
        log_p if support_mismatch(log_p) else g.random_joint(generator, shape, "copies")
    )


# -- Sec. 3: the two regimes -------------------------------------------------------


def _kl_both_ways(log_p: Tensor, blocks) -> float:
    log_q = decoder_table(log_p, blocks)
    return float(joint_kl_divergence(log_p, log_q) + joint_kl_divergence(log_q, log_p))


@register
class RegimeOneTokenPerStep(Statement):
    """With exact conditionals and one token per step, ``q = p`` in every order.

    ``q(x) = Π_t p(x_{π(t)} | x_{π(<t)}) = p(x)`` by the chain rule, for any fixed
    order ``π``. Evaluated as ``KL(p ‖ q) + KL(q ‖ p) = 0``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Sec. 3 (first regime).
    """

    name = "regime-one-token-per-step"
    source = paper("Sec. 3, perfect model and one token per step")
    kind = "identity"
    relation = "=="
    summary = "KL(p ‖ q) + KL(q ‖ p) = 0 for singleton steps in any order"
    assumptions = (
        Assumption(
            "one-position-per-block", lambda inst: all(len(b) == 1 for b in inst.blocks)
        ),
    )

    def evaluate(self, instance: BlockedTable):
        return _kl_both_ways(instance.log_p, instance.blocks), 0.0

    def generate(self, generator):
        shape = g.random_shape(generator)
        log_p = g.random_joint(generator, shape)
        return BlockedTable(log_p, g.random_partition(generator, len(shape), True))


@register
class RegimeConditionalIndependence(Statement):
    """Conditional independence inside each block makes the factorized step exact.

    If ``p(x_B | x_P) = Π_{i∈B} p(x_i | x_P)`` for every block and context, every
    ``TC→_m(x_P)`` is 0 and the factorized blockwise decoder equals ``p``. Evaluated
    as ``Σ_m E_p[TC→_m] + KL(p ‖ q) + KL(q ‖ p) = 0`` (three non-negative terms).

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Sec. 3 (second regime), Eq. 5 and 15.
    """

    name = "regime-conditional-independence"
    source = paper("Sec. 3, conditional independence inside a block")
    kind = "identity"
    relation = "=="
    summary = "blocks independent given their prefix ⇒ TC→ = 0 and q = p"
    assumptions = (
        Assumption(
            "blocks-conditionally-independent",
            lambda inst: blocks_conditionally_independent(inst.log_p, inst.blocks),
        ),
    )

    def evaluate(self, instance: BlockedTable):
        tc = blockwise_tc(instance.log_p, instance.blocks, instance.log_p, False)
        return tc + _kl_both_ways(instance.log_p, instance.blocks), 0.0

    def generate(self, generator):
        if g.uniform(generator) < 0.25:
            # Block-HMM whose parity bit is pure noise and one latent state.
            B = g.randint(generator, 1, 3)
            hmm = BlockHMM(
                num_states=1,
                rho=(g.uniform(generator),),
                block_size=B,
                length=B * g.randint(generator, 1, 2),
                eta=0.5,
            )
            return BlockedTable(g.block_hmm_table(hmm), g.contiguous_blocks(hmm))
        shape = g.random_shape(generator)
        blocks = g.random_partition(generator, len(shape))
        rate = g.choice(generator, (0.0, 0.3))
        log_p = g.conditionally_independent_joint(generator, shape, blocks, rate)
        return BlockedTable(log_p, blocks)


# -- Eq. 16 and 18: the decompositions ---------------------------------------------


@register
class ForwardDecomposition(Statement):
    """``KL(p ‖ q) = Σ_m E_{x_P∼p}[TC→_m(x_P)]`` for the factorized blockwise decoder.

    With one block it reads ``KL(p ‖ Π_i p_i) = TC``. The prefixes are drawn from
    the target.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Eq. 16 with the factorized proposal of
    Eq. 5 (summands Eq. 15).
    """

    name = "forward-decomposition"
    source = paper("Eq. 16 (factorized proposal)")
    kind = "identity"
    relation = "=="
    summary = "KL(p ‖ q) = Σ_m E_{x_P∼p} TC→_m(x_P)"

    def evaluate(self, instance: BlockedTable):
        log_q = decoder_table(instance.log_p, instance.blocks)
        lhs = float(joint_kl_divergence(instance.log_p, log_q))
        return lhs, blockwise_tc(instance.log_p, instance.blocks, instance.log_p, False)

    def generate(self, generator):
        return _blocked_instance(generator)


@register
class ReverseDecomposition(Statement):
    """``KL(q ‖ p) = Σ_m E_{x_P∼q}[TC←_m(x_P)]`` for the factorized blockwise decoder.

    The prefixes are drawn from the decoder; both sides are ``+inf`` together.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Eq. 18 with the factorized proposal of
    Eq. 5 (summands Eq. 17).
    """

    name = "reverse-decomposition"
    source = paper("Eq. 18 (factorized proposal)")
    kind = "identity"
    relation = "=="
    summary = "KL(q ‖ p) = Σ_m E_{x_P∼q} TC←_m(x_P)"

    def evaluate(self, instance: BlockedTable):
        log_q = decoder_table(instance.log_p, instance.blocks)
        lhs = float(joint_kl_divergence(log_q, instance.log_p))
        return lhs, blockwise_tc(instance.log_p, instance.blocks, log_q, True)

    def generate(self, generator):
        return _blocked_instance(generator)


# -- Lemma C.1, Corollary C.2 --------------------------------------------------------


_MISMATCH = Assumption("support-mismatch", lambda inst: support_mismatch(inst.log_p))


@register
class LemmaC1(Statement):
    """Support mismatch makes the reverse total correlation infinite.

    The instance is the law of a block given one context, ``p(x_B | x_P)``. If
    ``Π_i p(x_i | x_P)`` gives mass to a configuration with ``p(x_B | x_P) = 0``
    then ``TC←(x_P) = +inf``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Lemma C.1 and Eq. 17.
    """

    name = "lemma-c1"
    source = paper("Lemma C.1")
    kind = "identity"
    relation = "=="
    summary = "support mismatch ⇒ TC← = ∞"
    assumptions = (_MISMATCH,)

    def evaluate(self, instance: JointTable):
        _, rev = conditional_total_correlation(instance.log_p, range(instance.length))
        return float(rev), math.inf

    def generate(self, generator):
        if g.uniform(generator) < 0.3:
            return JointTable(g.random_block_context(generator, etas=(0.0,)))
        return JointTable(_mismatched_table(generator))


@register
class LemmaC1Forward(Statement):
    """Under support mismatch the forward total correlation stays finite.

    Lemma C.1 contrasts ``TC← = ∞`` with a finite ``TC→``; this statement checks an
    explicit ceiling, ``TC→ ≤ Σ_i log V_i − max_i log V_i``, which follows from
    ``TC = Σ_i H_i − H(X) ≤ Σ_i H_i − max_i H_i`` and ``H_i ≤ log V_i``. The ceiling
    is attained by copies of one uniform variable.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Lemma C.1 (finiteness of ``TC→``); the
    explicit ceiling is pmdm's.
    """

    name = "lemma-c1-forward"
    source = paper("Lemma C.1 (TC→ finite)")
    kind = "inequality"
    relation = "<="
    summary = "TC→ ≤ Σ_i log V_i − max_i log V_i < ∞"
    assumptions = (_MISMATCH,)

    def evaluate(self, instance: JointTable):
        tc = float(total_correlation(instance.log_p))
        return tc, log_vocab_ceiling(instance.log_p)

    def generate(self, generator):
        if g.uniform(generator) < 0.2:
            shape = g.random_shape(generator, min_length=2)
            return JointTable(g.random_joint(generator, shape, "copies"))
        return LemmaC1().generate(generator)


@register
class CorollaryC2(Statement):
    """A reachable mismatching context makes the decoder's reverse KL infinite.

    If the factorized blockwise decoder reaches, with positive probability, a
    context whose block proposal has mass outside ``p``'s support, then
    ``KL(q ‖ p) = +inf`` (while ``KL(p ‖ q)`` stays finite: see
    ``forward-decomposition`` and ``lemma-c1-forward``).

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Corollary C.2 and Eq. 18.
    """

    name = "corollary-c2"
    source = paper("Corollary C.2")
    kind = "identity"
    relation = "=="
    summary = "mismatch reachable under q ⇒ KL(q ‖ p) = ∞"
    assumptions = (
        Assumption(
            "reachable-mismatch",
            lambda inst: reachable_mismatch(inst.log_p, inst.blocks),
        ),
    )

    def evaluate(self, instance: BlockedTable):
        log_q = decoder_table(instance.log_p, instance.blocks)
        return float(joint_kl_divergence(log_q, instance.log_p)), math.inf

    def generate(self, generator):
        if g.uniform(generator) < 0.3:
            hmm = g.random_block_hmm(generator, 3, 2, etas=(0.0,))
            return BlockedTable(g.block_hmm_table(hmm), g.contiguous_blocks(hmm))
        log_p = _mismatched_table(generator)
        T = log_p.dim()
        blocks = g.random_partition(generator, T)
        if all(len(b) == 1 for b in blocks):
            blocks = (tuple(range(T)),)
        return BlockedTable(log_p, blocks)


# -- Lemma C.3 -------------------------------------------------------------------------


@register
class LemmaC3(Statement):
    """Markov's inequality for incoherence: ``Pr_q[p(x) ≤ ε] ≤ E_q[−log p] / log(1/ε)``.

    ``q`` is any distribution on the same configurations (the product of marginals
    of ``p`` in the paper's use). The right side is ``+inf`` when ``q`` reaches a
    zero of ``p``. Tight for ``q`` a point mass on a configuration with
    ``p(x) = ε``; loosest (ratio 0) when ``q`` never reaches ``p ≤ ε``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Lemma C.3, Eq. 13-14.
    """

    name = "lemma-c3"
    source = paper("Lemma C.3")
    kind = "inequality"
    relation = "<="
    summary = "Pr_q[p(x) ≤ ε] ≤ E_q[−log p] / log(1/ε)"

    def evaluate(self, instance: MarkovInstance):
        q = instance.log_q.exp()
        # p(x) ≤ ε compared in log space, with a relative slack of 1e-12 so that a
        # configuration of probability exactly ε counts despite rounding of log.
        low = instance.log_p <= math.log(instance.eps) + LOG_SLACK
        lhs = float((q * low.to(q.dtype)).sum())
        cross = float(-xlogy(q, instance.log_p).sum())
        return lhs, cross / math.log(1 / instance.eps)

    def generate(self, generator):
        if g.uniform(generator) < 0.25:
            log_p = g.random_block_context(generator)
            log_q = product_of_marginals(log_p)
        else:
            shape = g.random_shape(generator)
            log_p = g.random_joint(generator, shape)
            if g.uniform(generator) < 0.5:
                log_q = product_of_marginals(log_p)
            else:
                log_q = g.random_joint(generator, shape)
        values = log_p.exp().flatten()
        values = values[(values > 0) & (values < 1)]
        if len(values) and g.uniform(generator) < 0.7:
            eps = values[g.randint(generator, 0, len(values) - 1)].item()
        else:
            eps = 10 ** -g.uniform(generator, 0.3, 9.0)
        return MarkovInstance(log_p, log_q, min(max(eps, 1e-300), 1 - 1e-12))


# -- Proposition 5.1 ------------------------------------------------------------------


def _table_family(generator: torch.Generator) -> Tensor:
    if g.uniform(generator) < 0.3:
        return g.random_block_context(generator)
    return g.random_joint(generator, g.random_shape(generator))


@register
class Proposition51(Statement):
    """Verification cost: ``exp(TC→) ≤ M = sup_x p(x) / Π_i p_i(x_i)``.

    The instance is the law of a block given one context. ``M`` is the expected
    number of factorized proposals of standard rejection sampling (see
    ``proposition-5.1-rejection``). Since ``TC→ = E_p[log p/q] ≤ log sup p/q``,
    the bound is tight when ``p/q`` is constant on ``p``'s support (independent
    positions, copies of a uniform variable) and loose when one configuration of
    small ``q`` carries most of the ratio.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Proposition 5.1, Eq. 19.
    """

    name = "proposition-5.1"
    source = paper("Proposition 5.1, Eq. 19")
    kind = "inequality"
    relation = "<="
    summary = "exp(TC→) ≤ M = sup p / Π p_i"

    def evaluate(self, instance: JointTable):
        log_p = instance.log_p
        tc = float(total_correlation(log_p))
        return math.exp(tc), float(max_ratio(log_p, product_of_marginals(log_p)))

    def generate(self, generator):
        return JointTable(_table_family(generator))


def rejection_proposal_counts(
    log_p: Tensor, num_runs: int, generator: torch.Generator
) -> Tensor:
    """Simulate standard rejection sampling of ``p`` from factorized proposals.

    Each run draws ``x ∼ Π_i p_i`` and accepts it with probability
    ``p(x) / (M Π_i p_i(x_i))``, ``M = sup p / Π p_i``, until one is accepted.

    Parameters
    ----------
    log_p : Tensor, shape (V_1, ..., V_T)
    num_runs : int
        ``N`` independent runs.
    generator : torch.Generator

    Returns
    -------
    Tensor, shape (N,), float64
        The number of proposals of each run (geometric with mean ``M``).
    """
    num_runs = check_int("num_runs", num_runs, minimum=1)
    log_q = product_of_marginals(log_p)
    log_m = torch.log(max_ratio(log_p, log_q))
    accept = (log_p - log_q - log_m).exp().flatten().clamp(max=1.0)
    marginals = [marginal(log_p, [i]).exp() for i in range(log_p.dim())]
    strides = [math.prod(log_p.shape[i + 1 :]) for i in range(log_p.dim())]
    counts = torch.zeros(num_runs, dtype=torch.float64)
    active = torch.arange(num_runs)
    chunk = max(8, int(2 * log_m.exp().item()))
    drawn = 0
    while len(active):
        n = len(active) * chunk
        flat = torch.zeros(n, dtype=torch.long)
        for m, stride in zip(marginals, strides, strict=True):
            flat += stride * torch.multinomial(
                m, n, replacement=True, generator=generator
            )
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        hit = (u < accept[flat]).view(len(active), chunk)
        # First accepted proposal in each run's chunk, or none.
        any_hit = hit.any(-1)
        first = hit.to(torch.int8).argmax(-1)
        counts[active[any_hit]] = drawn + first[any_hit].to(torch.float64) + 1
        active = active[~any_hit]
        drawn += chunk
    return counts


@register
class Proposition51Rejection(Statement):
    """Standard rejection sampling needs ``M`` factorized proposals in expectation.

    Accept–reject with envelope ``M = sup p / Π p_i`` accepts each proposal with
    probability ``1/M``, so the number of proposals is geometric with mean ``M``.
    Checked by simulation with a seeded ``torch.Generator``: the sample mean of
    ``N`` runs must lie within ``z_max = 5`` standard errors of ``M``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Proposition 5.1, Eq. 19.
    """

    name = "proposition-5.1-rejection"
    source = paper("Proposition 5.1 (M is the cost of rejection sampling)")
    kind = "identity"
    relation = "=="
    summary = "E[#proposals of rejection sampling] = M (Monte Carlo)"
    assumptions = (
        Assumption(
            "M-within-simulation-budget",
            lambda inst: (
                float(max_ratio(inst.log_p, product_of_marginals(inst.log_p)))
                <= MAX_SIMULATED_M
            ),
        ),
    )

    def evaluate(self, instance: SimulationInstance):
        gen = torch.Generator().manual_seed(instance.seed)
        counts = rejection_proposal_counts(instance.log_p, instance.num_runs, gen)
        m = float(max_ratio(instance.log_p, product_of_marginals(instance.log_p)))
        return monte_carlo(counts), m

    def generate(self, generator):
        seed = g.randint(generator, 0, 2**31 - 1)
        for _ in range(20):
            log_p = _table_family(generator)
            inst = SimulationInstance(log_p, 400, seed)
            if not self.failed_assumptions(inst):
                return inst
        return inst
