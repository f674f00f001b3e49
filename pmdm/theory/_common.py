"""Shared pieces of the statements: sources, predicates and blockwise sums."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pmdm.metrics.information import (
    conditional_total_correlation_table,
    factorized_decoder_log_probs,
    marginal,
    product_of_marginals,
)
from pmdm.theory.registry import Source

PAPER = "Zhang, Yu, Brekelmans, Tang, Asif, Ver Steeg"
PAPER_YEAR = 2026
PAPER_ARXIV = "2602.00286"


def paper(where: str) -> Source:
    """A :class:`Source` in the paper (Zhang et al. 2026, arXiv 2602.00286)."""
    return Source(PAPER, PAPER_YEAR, PAPER_ARXIV, where)


def weighted_sum(log_w: Tensor, values: Tensor) -> float:
    """``Σ w·v`` with ``0·inf = 0``."""
    w = log_w.exp()
    return float(torch.where(w == 0, torch.zeros_like(values), w * values).sum())


def blockwise_tc(log_p: Tensor, blocks, log_weights: Tensor, reverse: bool) -> float:
    """``Σ_m E_{x_P ∼ w}[TC_m(x_P)]``: forward (Eq. 16) or reverse (Eq. 18) total
    correlations of each block given its prefix, averaged over the prefix law of
    ``w`` (``p`` for the forward sum, ``q`` for the reverse one)."""
    total = 0.0
    prefix: tuple = ()
    for block in blocks:
        fwd, rev = conditional_total_correlation_table(log_p, block, prefix)
        tc = rev if reverse else fwd
        log_w = marginal(log_weights, prefix) if prefix else torch.zeros(())
        total += weighted_sum(log_w, tc)
        prefix = tuple(sorted(prefix + tuple(block)))
    return total


def decoder_table(log_p: Tensor, blocks) -> Tensor:
    """``log q`` of the blockwise factorized decoder (Eq. 4-5)."""
    return factorized_decoder_log_probs(log_p, blocks)


def support_mismatch(log_p: Tensor) -> bool:
    """Whether ``Π_i p(x_i)`` gives mass to a configuration with ``p(x) = 0``."""
    log_q = product_of_marginals(log_p)
    return bool((torch.isneginf(log_p) & ~torch.isneginf(log_q)).any())


def reachable_mismatch(log_p: Tensor, blocks) -> bool:
    """Whether the blockwise factorized decoder reaches, with positive probability,
    a context in which its block proposal has mass outside ``p``'s support."""
    log_q = decoder_table(log_p, blocks)
    prefix: tuple = ()
    for block in blocks:
        _, rev = conditional_total_correlation_table(log_p, block, prefix)
        q_prefix = marginal(log_q, prefix).exp() if prefix else torch.ones(())
        if bool((torch.isposinf(rev) & (q_prefix > 0)).any()):
            return True
        prefix = tuple(sorted(prefix + tuple(block)))
    return False


def blocks_conditionally_independent(
    log_p: Tensor, blocks, atol: float = 1e-12
) -> bool:
    """Whether every block is conditionally independent given its prefix.

    Checks ``p(x_P, x_B) · p(x_P)^{|B|-1} = Π_{i∈B} p(x_P, x_i)`` for every value, in
    probability space (no division, so impossible contexts need no convention).
    """
    prefix: tuple = ()
    for block in blocks:
        p_prefix = marginal(log_p, prefix, keepdim=True).exp()
        joint = marginal(log_p, tuple(sorted(prefix + tuple(block))), keepdim=True)
        lhs = joint.exp() * p_prefix ** (len(block) - 1)
        rhs = torch.ones_like(lhs)
        for i in block:
            rhs = (
                rhs * marginal(log_p, tuple(sorted(prefix + (i,))), keepdim=True).exp()
            )
        if not torch.allclose(
            lhs.expand_as(rhs), rhs.expand_as(lhs), rtol=0, atol=atol
        ):
            return False
        prefix = tuple(sorted(prefix + tuple(block)))
    return True


def log_vocab_ceiling(log_p: Tensor) -> float:
    """``Σ_i log V_i − max_i log V_i``: the largest total correlation of a table of
    this shape."""
    logs = [math.log(v) for v in log_p.shape]
    return sum(logs) - max(logs)
