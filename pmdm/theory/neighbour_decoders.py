"""Fast-dLLM's rules and the EB-Sampler as decoders: conditions along decoding paths.

The table-based statements ``fast-dllm-greedy`` and ``eb-sampler`` of
:mod:`pmdm.theory.neighbours` check one step on one table. Here the real
schedules (:class:`~pmdm.decoding.schedules.ThresholdSchedule`,
:class:`~pmdm.decoding.schedules.FactorSchedule`,
:class:`~pmdm.decoding.schedules.EntropyBudget`) drive an oracle decoder, and every
state the decoder can reach (:func:`~pmdm.theory.decoder_instances.reachable_steps`,
values drawn at temperature 1, contexts of positive probability) is checked against
the oracle's joint law of the step's positions.
"""

from __future__ import annotations

import torch

import pmdm.theory.neighbours  # noqa: F401  (the table-based statements register first)
from pmdm.models.table import TableTarget
from pmdm.ops.logspace import entropy
from pmdm.theory import generators as g
from pmdm.theory.decoder_instances import (
    SLACK,
    DecoderInstance,
    DecoderSpec,
    Step,
)
from pmdm.theory.registry import Assumption, Source, Statement, get, register

_ORACLE = Assumption("oracle-predictor", lambda inst: inst.level == 0)
_FACTORIZED = Assumption(
    "factorized-sampler", lambda inst: inst.decoder.sampler == "factorized"
)
_DETERMINISTIC = Assumption(
    "deterministic-order",
    lambda inst: inst.decoder.order not in ("random", "sampled-confidence"),
)
_NO_REMASK = Assumption("no-remasking", lambda inst: inst.decoder.remask_rounds == 0)


def _table(log_p) -> TableTarget:
    return TableTarget.from_dense(log_p.exp())


# -- Fast-dLLM --------------------------------------------------------------------------


def greedy_gap(instance: DecoderInstance, step: Step) -> float:
    """``max_y p(y | x_S) − p(g | x_S)`` for the step's positions ``A``, ``g`` the
    position-wise argmax of the predictor's marginals (ties to the lowest id)."""
    if len(step.positions) < 2:
        return 0.0
    greedy = step.log_probs[list(step.positions)].argmax(-1)
    joint = instance.step_joint(step).exp()
    return float(joint.max() - joint[tuple(greedy.tolist())])


def fast_dllm_condition(step: Step) -> bool:
    """``(n+1)(1 − min_{i∈A} c_i) ≤ 1`` for ``n = |A| >= 2`` committed positions of
    top probability ``c_i``; always true for one position."""
    n = len(step.positions)
    if n < 2:
        return True
    top = step.log_probs[list(step.positions)].max(-1).values.exp()
    return bool((n + 1) * (1 - float(top.min())) <= 1 + SLACK)


@register
class FastDLLMDecoder(Statement):
    """Fast-dLLM's threshold and factor rules commit the joint argmax greedily.

    At every reachable state of an oracle decoder with the threshold rule (commit
    every position of top probability ``>= τ``, at least one) or the factor rule
    (the top ``n`` while ``(n+1)(1 − c_(n)) ≤ f``), the step's ``n`` positions
    satisfy, under the assumption, ``(n+1)(1 − min c_i) ≤ 1``; then the
    position-wise argmax ``g`` of the marginals attains the maximum of the joint
    ``p(x_A | x_S)``. Evaluated as the largest gap ``max_y p(y|x_S) − p(g|x_S)``
    over all reachable steps (identity with 0).

    Notes
    -----
    With ``ε = 1 − min c_i``: ``p(g) ≥ 1 − nε`` and every ``y ≠ g`` differs from
    ``g`` at some committed ``i``, so ``p(y) ≤ 1 − c_i ≤ ε``; ``(n+1)ε ≤ 1`` gives
    ``p(g) ≥ p(y)`` (ties allowed at equality, ``g`` still attains the maximum).
    The factor rule with ``f ≤ 1`` and the confidence order meets the condition at
    every step by construction; the threshold rule does when ``τ ≥ n/(n+1)``.
    Paths are enumerated with values drawn at temperature 1, a superset of the
    greedy path.

    References
    ----------
    Wu et al. (2025), "Fast-dLLM: training-free acceleration of diffusion LLM by
    enabling KV cache and parallel decoding", arXiv 2505.22618 (parallel greedy
    equivalence; threshold and factor rules).
    """

    name = "fast-dllm-decoder"
    source = Source("Wu et al.", 2025, "2505.22618", "threshold/factor rules, greedy")
    kind = "identity"
    relation = "=="
    summary = "threshold/factor steps with (n+1)ε ≤ 1: greedy factorized = joint argmax"
    assumptions = (
        _ORACLE,
        _FACTORIZED,
        _DETERMINISTIC,
        _NO_REMASK,
        Assumption(
            "threshold-or-factor-rule",
            lambda inst: inst.decoder.schedule in ("threshold", "factor"),
        ),
        Assumption(
            "(n+1)eps<=1-at-every-step",
            lambda inst: all(fast_dllm_condition(s) for s in inst.possible_steps()),
        ),
    )

    def evaluate(self, instance: DecoderInstance):
        gaps = [greedy_gap(instance, step) for step in instance.possible_steps()]
        return max(gaps, default=0.0), 0.0

    def generate(self, generator):
        mode = g.randint(generator, 0, 2)
        order = g.choice(generator, ("confidence", "confidence", "entropy", "margin"))
        if mode == 0:
            confident = get("fast-dllm-greedy").generate(generator)
            tau = 1 - confident.threshold * g.uniform(generator, 0.3, 1.0)
            spec = DecoderSpec(order, "threshold", tau)
            return DecoderInstance(_table(confident.log_p), spec)
        style = g.choice(generator, ("peaked", "peaked", "copies", "tiny", "dense"))
        log_p = g.random_joint(generator, g.random_shape(generator), style)
        if mode == 1:
            spec = DecoderSpec(order, "factor", g.uniform(generator, 0.05, 1.0))
        else:
            T = log_p.dim()
            spec = DecoderSpec(order, "threshold", g.uniform(generator, T / (T + 1), 1))
        return DecoderInstance(_table(log_p), spec)


# -- EB-Sampler -------------------------------------------------------------------------


def step_total_correlation(instance: DecoderInstance, step: Step) -> float:
    """``TC(X_A | x_S) = Σ_{i∈A} H(X_i | x_S) − H(X_A | x_S)`` from the oracle's
    joint law of the step's positions."""
    k = len(step.positions)
    if k < 2:
        return 0.0
    joint = instance.step_joint(step)
    singles = 0.0
    for axis in range(k):
        others = [a for a in range(k) if a != axis]
        singles += float(entropy(torch.logsumexp(joint, dim=others)))
    return max(0.0, singles - float(entropy(joint.reshape(-1))))


@register
class EBSamplerDecoder(Statement):
    """The EB-Sampler's entropy budget bounds every step's conditional TC by ``γ``.

    An oracle decoder with :class:`~pmdm.decoding.schedules.EntropyBudget` reveals
    the longest prefix of its ranking with ``Σ H_i − max H_i ≤ γ``; at every state
    it can reach, the committed set ``A`` has
    ``TC(X_A | x_S) ≤ Σ_{i∈A} H_i − max H_i ≤ γ``. Evaluated as
    ``max over steps of TC(X_A | x_S) ≤ γ``, with the TC from the oracle's joint.

    Notes
    -----
    Tight for copies of one uniform variable with ``γ`` the budget of the whole
    table; loose (ratio 0) when the committed positions are independent given the
    context. The entropy, confidence, margin and left-to-right rankings are all
    covered: the bound holds for any set.

    References
    ----------
    Ben-Hamu et al. (2025), "Accelerated sampling from masked diffusion models via
    entropy bounded unmasking", arXiv 2505.24857.
    """

    name = "eb-sampler-decoder"
    source = Source("Ben-Hamu et al.", 2025, "2505.24857", "entropy-bounded steps")
    kind = "inequality"
    relation = "<="
    summary = "EntropyBudget(γ): every reachable step has TC(X_A | x_S) ≤ γ"
    assumptions = (
        _ORACLE,
        _FACTORIZED,
        _DETERMINISTIC,
        _NO_REMASK,
        Assumption(
            "entropy-budget-rule",
            lambda inst: inst.decoder.schedule == "entropy-budget",
        ),
    )

    def evaluate(self, instance: DecoderInstance):
        tcs = [step_total_correlation(instance, s) for s in instance.possible_steps()]
        return max(tcs, default=0.0), float(instance.decoder.parameter)

    def generate(self, generator):
        if g.uniform(generator) < 0.25:
            log_p = g.random_block_context(generator, max_block_size=5)
        else:
            log_p = g.random_joint(generator, g.random_shape(generator))
        probs = log_p.exp()
        singles = [
            float(
                entropy(torch.log(probs.sum([a for a in range(probs.dim()) if a != i])))
            )
            if probs.dim() > 1
            else float(entropy(log_p))
            for i in range(probs.dim())
        ]
        budget = sum(singles) - max(singles)
        if g.uniform(generator) < 0.3 and budget > 0:
            gamma = budget
        else:
            gamma = max(budget, 0.1) * g.uniform(generator, 0.01, 1.2)
        order = g.choice(
            generator, ("entropy", "entropy", "confidence", "margin", "l2r")
        )
        spec = DecoderSpec(order, "entropy-budget", gamma)
        return DecoderInstance(_table(log_p), spec)


__all__ = [
    "EBSamplerDecoder",
    "FastDLLMDecoder",
    "fast_dllm_condition",
    "greedy_gap",
    "step_total_correlation",
]
