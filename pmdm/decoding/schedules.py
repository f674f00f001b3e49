"""Schedules: how many of the ranked eligible positions a step reveals.

Every schedule reveals at least one position per step on every unfinished sequence,
so a decoder always ends, in at most ``T`` steps per round.

References
----------
Nie et al. (2025), LLaDA, arXiv 2502.09992 (steps split within semi-autoregressive
blocks). Wu et al. (2025), Fast-dLLM, arXiv 2505.22618 (threshold and factor rules).
Ben-Hamu et al. (2025), EB-Sampler, arXiv 2505.24857 (entropy budget).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pmdm.ops.logspace import entropy
from pmdm.ops.validation import check_int, check_real


class Schedule:
    """Chooses, per step, the eligible positions and how many of them to reveal."""

    name: str = ""
    #: Whether :meth:`count` reads the ranked predictions (else it gets None).
    uses_predictions: bool = True

    def eligible(self, region: Tensor, masked: Tensor) -> Tensor:
        """Positions that may be revealed now, shape ``(N, T)`` bool.

        ``region`` marks the positions that were masked when decoding began.
        """
        return masked

    def select(
        self, log_probs: Tensor, order: Tensor, eligible: Tensor, region: Tensor
    ) -> Tensor:
        """The positions to reveal this step, shape ``(N, T)`` bool.

        Parameters
        ----------
        log_probs : Tensor, shape (N, T, V)
            Predictions at this step (before temperature).
        order : Tensor, shape (N, T), long
            Positions in rank order (eligible first), from
            :func:`pmdm.decoding.orders.rank`.
        eligible : Tensor, shape (N, T), bool
        region : Tensor, shape (N, T), bool
            Positions masked when decoding began.
        """
        ranked = None
        if self.uses_predictions:
            ranked = log_probs.gather(-2, order.unsqueeze(-1).expand(log_probs.shape))
        k = self.count(ranked, eligible.sum(-1), region)
        # In rank order: the first k.
        take = torch.arange(order.shape[-1], device=order.device) < k.unsqueeze(-1)
        chosen = torch.zeros_like(eligible).scatter(-1, order, take)
        return chosen & eligible

    def count(
        self, ranked_log_probs: Tensor, eligible_count: Tensor, region: Tensor
    ) -> Tensor:
        """How many of the ranked eligible positions to reveal, shape ``(N,)``.

        Parameters
        ----------
        ranked_log_probs : Tensor, shape (N, T, V), or None
            Log-probabilities of the positions in rank order (ineligible last);
            None for schedules whose ``uses_predictions`` is False.
        eligible_count : Tensor, shape (N,)
        region : Tensor, shape (N, T), bool
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement count() or override select()"
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _at_least_one(k: Tensor, eligible_count: Tensor) -> Tensor:
    return torch.minimum(k.clamp(min=1), eligible_count)


class FixedSize(Schedule):
    """``tokens_per_step`` positions per step (fewer at the end)."""

    name = "fixed"
    uses_predictions = False

    def __init__(self, tokens_per_step: int = 1):
        self.tokens_per_step = check_int("tokens_per_step", tokens_per_step, minimum=1)

    def count(self, ranked_log_probs, eligible_count, region):
        k = torch.full_like(eligible_count, self.tokens_per_step)
        return _at_least_one(k, eligible_count)


class StepsSchedule(Schedule):
    """LLaDA's schedule: ``steps`` steps split evenly over semi-autoregressive blocks.

    The positions masked at the start (the region) are cut, in position order, into
    blocks of ``block_length``; blocks are decoded one after another, each in
    ``steps / num_blocks`` steps; within a block of ``m`` masked positions, step
    ``j`` reveals ``m // s + (j < m % s)`` positions (the earliest steps take the
    remainder). Steps that would reveal nothing (``m < s``) are skipped, with no
    predictor call.

    Parameters
    ----------
    steps : int
        Total number of steps, a multiple of the number of blocks.
    block_length : int, optional
        Block length; the whole region when omitted. Must divide the region length.
    """

    name = "steps"
    uses_predictions = False

    def __init__(self, steps: int, block_length: int | None = None):
        self.steps = check_int("steps", steps, minimum=1)
        self.block_length = (
            None
            if block_length is None
            else check_int("block_length", block_length, minimum=1)
        )

    def _blocks(self, region: Tensor) -> tuple[Tensor, int, int]:
        # Block index of each region position (-1 outside), blocks, steps per block.
        size = region.sum(-1)
        if (size != size[0]).any():
            raise ValueError(
                "tokens: the steps schedule needs the same number of masked positions "
                f"in every sequence, actual {sorted(set(size.tolist()))}"
            )
        length = int(size[0])
        block = self.block_length or length
        if block > length or length % block:
            raise ValueError(
                f"block_length={self.block_length!r}: expected a divisor of the "
                f"{length} masked positions"
            )
        num_blocks = length // block
        if self.steps % num_blocks:
            raise ValueError(
                f"steps={self.steps!r}: expected a multiple of the number of blocks "
                f"({num_blocks} = {length} masked positions / block_length {block})"
            )
        index = torch.where(region, (region.cumsum(-1) - 1) // block, -1)
        return index, block, self.steps // num_blocks

    def eligible(self, region, masked):
        index, _, _ = self._blocks(region)
        # The current block: the first one that still has masked positions.
        big = torch.iinfo(index.dtype).max
        current = torch.where(masked & region, index, big).min(-1, keepdim=True).values
        return masked & (index == current)

    def count(self, ranked_log_probs, eligible_count, region):
        _, block, per_block = self._blocks(region)
        base, rem = block // per_block, block % per_block
        done = block - eligible_count  # revealed so far in the current block
        # Step j of the block has revealed j*(base+1) if j <= rem, else more.
        if base == 0:
            k = torch.ones_like(eligible_count)
        else:
            j = torch.where(
                done < rem * (base + 1),
                done // (base + 1),
                rem + (done - rem * (base + 1)) // base,
            )
            k = base + (j < rem).long()
        return _at_least_one(k, eligible_count)


class ThresholdSchedule(Schedule):
    """Fast-dLLM's threshold rule: every eligible position whose top probability is
    at least ``threshold``, and always at least one (the first in rank order)."""

    name = "threshold"

    def __init__(self, threshold: float):
        self.threshold = check_real("threshold", threshold, low=0.0, high=1.0)

    def select(self, log_probs, order, eligible, region):
        # Confident eligible positions, else the top-ranked one.
        confident = eligible & (log_probs.max(-1).values.exp() >= self.threshold)
        first = torch.zeros_like(eligible)
        first.scatter_(-1, order[..., :1], True)
        none = ~confident.any(-1, keepdim=True)
        return torch.where(none, first & eligible, confident)


class FactorSchedule(Schedule):
    """Fast-dLLM's factor rule: reveal the top ``n`` ranked positions for the
    largest ``n`` with ``(n + 1)(1 − c_(n)) ≤ factor``, ``c_(n)`` the ``n``-th
    ranked top probability; at least one."""

    name = "factor"

    def __init__(self, factor: float):
        self.factor = check_real("factor", factor, low=0.0)

    def count(self, ranked_log_probs, eligible_count, region):
        conf = ranked_log_probs.max(-1).values.exp()  # (N, T), in rank order
        n = torch.arange(1, conf.shape[-1] + 1, dtype=conf.dtype, device=conf.device)
        ok = (n + 1) * (1 - conf) <= self.factor
        ok &= n <= eligible_count.unsqueeze(-1)
        # Largest n whose condition holds (Fast-dLLM checks each n, not a prefix).
        k = torch.where(ok, n.long(), 0).max(-1).values
        return _at_least_one(k, eligible_count)


class EntropyBudget(Schedule):
    """EB-Sampler: reveal the longest rank-order prefix whose entropies satisfy
    ``Σ H_i − max H_i ≤ gamma``; at least one. This bounds the step's total
    correlation by ``gamma``."""

    name = "entropy-budget"

    def __init__(self, gamma: float):
        self.gamma = check_real("gamma", gamma, low=0.0)

    def count(self, ranked_log_probs, eligible_count, region):
        h = entropy(ranked_log_probs.to(torch.float64))  # (N, T) in rank order
        n = torch.arange(1, h.shape[-1] + 1, device=h.device)
        live = n <= eligible_count.unsqueeze(-1)
        h = torch.where(live, h, 0.0)
        spent = h.cumsum(-1) - h.cummax(-1).values
        ok = (spent <= self.gamma) & live
        # The prefix condition is monotone: spent only grows along the ranking.
        k = ok.long().sum(-1)
        return _at_least_one(k, eligible_count)


SCHEDULES = {
    cls.name: cls
    for cls in (
        FixedSize,
        StepsSchedule,
        ThresholdSchedule,
        FactorSchedule,
        EntropyBudget,
    )
}
