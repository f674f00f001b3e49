"""Order policies: which masked positions a decoder reveals first.

A policy turns one step's predictions into a score per position; the decoder ranks
the eligible masked positions by score, highest first, and **ties go to the lowest
position**. How many are revealed is the schedule's business
(:mod:`pmdm.decoding.schedules`).

References
----------
Zhang et al. (2026), arXiv 2602.00286, Eq. 12 (Easy-First: lowest conditional
entropy first). Nie et al. (2025), "Large Language Diffusion Models" (LLaDA),
arXiv 2502.09992, App. B (low-confidence remasking). Kim et al. (2025), arXiv
2502.06768 (margin and top-probability adaptive orders).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from pmdm.ops.logspace import entropy
from pmdm.ops.validation import check_int


class OrderPolicy:
    """Scores masked positions; higher is revealed first.

    Subclasses implement :meth:`scores`. ``deterministic`` says whether the scores
    are a fixed function of the revealed tokens (needed to replay ``log q(x)``);
    ``needs_draws`` whether they use the values drawn at this step.
    """

    name: str = ""
    deterministic: bool = True
    needs_draws: bool = False

    def scores(
        self,
        log_probs: Tensor,
        draws: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Score every position.

        Parameters
        ----------
        log_probs : Tensor, shape (N, T, V)
            The predictor's log-probabilities at this step (before temperature).
        draws : Tensor, shape (N, T), optional
            Token drawn at each position this step (for ``needs_draws`` policies).
        generator : torch.Generator, optional
            Randomness for random policies.

        Returns
        -------
        Tensor, shape (N, T), float64
        """
        raise NotImplementedError(f"{type(self).__name__} must implement scores()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _positions(log_probs: Tensor) -> Tensor:
    T = log_probs.shape[-2]
    positions = torch.arange(T, dtype=torch.float64, device=log_probs.device)
    return positions.expand(log_probs.shape[:-1])


class LeftToRight(OrderPolicy):
    """Lowest position first."""

    name = "l2r"

    def scores(self, log_probs, draws=None, generator=None):
        return -_positions(log_probs)


class RightToLeft(OrderPolicy):
    """Highest position first."""

    name = "r2l"

    def scores(self, log_probs, draws=None, generator=None):
        return _positions(log_probs)


class RandomOrder(OrderPolicy):
    """Uniformly random order, drawn afresh at every step from ``generator``."""

    name = "random"
    deterministic = False

    def scores(self, log_probs, draws=None, generator=None):
        shape = log_probs.shape[:-1]
        device = generator.device if generator is not None else log_probs.device
        noise = torch.rand(
            shape, dtype=torch.float64, generator=generator, device=device
        )
        return noise.to(log_probs.device)


class Permutation(OrderPolicy):
    """A given order: ``permutation[0]`` first.

    Parameters
    ----------
    permutation : sequence of int
        A permutation of ``0..T-1``.
    """

    name = "permutation"

    def __init__(self, permutation: Sequence[int]):
        perm = [check_int("permutation[]", p, minimum=0) for p in permutation]
        if sorted(perm) != list(range(len(perm))):
            raise ValueError(
                f"permutation={list(permutation)!r}: expected a permutation of "
                f"0..{len(perm) - 1}"
            )
        rank = torch.empty(len(perm), dtype=torch.float64)
        rank[torch.tensor(perm)] = torch.arange(len(perm), dtype=torch.float64)
        self.rank = rank

    def __repr__(self) -> str:
        return f"Permutation({self.rank.argsort().tolist()})"

    def scores(self, log_probs, draws=None, generator=None):
        if log_probs.shape[-2] != self.rank.shape[0]:
            raise ValueError(
                f"permutation: has length {self.rank.shape[0]}, the sequence has "
                f"length {log_probs.shape[-2]}"
            )
        return -self.rank.to(log_probs.device).expand(log_probs.shape[:-1])


class EntropyOrder(OrderPolicy):
    """Easy-First: lowest conditional entropy first (paper, Eq. 12)."""

    name = "entropy"

    def scores(self, log_probs, draws=None, generator=None):
        return -entropy(log_probs.to(torch.float64))


class ConfidenceOrder(OrderPolicy):
    """Highest top probability first."""

    name = "confidence"

    def scores(self, log_probs, draws=None, generator=None):
        return log_probs.to(torch.float64).max(-1).values.exp()


class MarginOrder(OrderPolicy):
    """Largest gap between the top two probabilities first."""

    name = "margin"

    def scores(self, log_probs, draws=None, generator=None):
        top = log_probs.to(torch.float64).exp().topk(min(2, log_probs.shape[-1]), -1)
        if top.values.shape[-1] == 1:
            return top.values[..., 0]
        return top.values[..., 0] - top.values[..., 1]


class SampledConfidence(OrderPolicy):
    """Highest probability of the token just drawn at each position first.

    This is LLaDA's ``low_confidence`` remasking: every masked position draws a
    token, and those whose draw was most probable (under the untempered
    prediction) are kept.
    """

    name = "sampled-confidence"
    deterministic = False
    needs_draws = True

    def scores(self, log_probs, draws=None, generator=None):
        if draws is None:
            raise ValueError("draws=None: the sampled-confidence order needs draws")
        picked = log_probs.to(torch.float64).gather(-1, draws.unsqueeze(-1))
        return picked.squeeze(-1).exp()


class CallableOrder(OrderPolicy):
    """A user function ``fn(log_probs) -> scores (N, T)``; higher first.

    Parameters
    ----------
    fn : callable
    deterministic : bool
        Whether ``fn`` is a fixed function of its input (default True).
    """

    name = "callable"

    def __init__(self, fn: Callable[[Tensor], Tensor], deterministic: bool = True):
        if not callable(fn):
            raise TypeError(f"fn={fn!r}: expected a callable")
        self.fn = fn
        self.deterministic = deterministic

    def __repr__(self) -> str:
        return f"CallableOrder({self.fn!r})"

    def scores(self, log_probs, draws=None, generator=None):
        out = torch.as_tensor(self.fn(log_probs), dtype=torch.float64)
        if out.shape != log_probs.shape[:-1]:
            raise ValueError(
                f"order callable: expected scores of shape {tuple(log_probs.shape[:-1])}, "
                f"actual {tuple(out.shape)}"
            )
        return out


class GraphOrder(OrderPolicy):
    """Dependency-aware order: each step reveals a largest set of masked positions
    that are mutually independent given the revealed tokens.

    The set comes from d-separation in the target's dependency graph
    (:func:`pmdm.models.graph.mutually_independent`), preferring positions that
    separate the others (:func:`pmdm.models.graph.separating_priority`), so every
    factorized step is exact with an oracle. This order chooses how many positions
    a step reveals: the decoder's schedule is not used.

    Parameters
    ----------
    target : Target
        Provides ``dependency_graph()``.
    """

    name = "graph"
    chooses_set = True

    def __init__(self, target):
        self.graph = target.dependency_graph()
        self.length = target.length
        self._cache: dict[tuple[int, ...], list[int]] = {}

    def __repr__(self) -> str:
        return f"GraphOrder(length={self.length})"

    def scores(self, log_probs, draws=None, generator=None):
        raise ValueError("the graph order chooses whole sets: use choose()")

    def choose(self, masked: Tensor) -> Tensor:
        """The positions to reveal, shape ``(N, T)`` bool, for masks ``(N, T)``.

        The set depends on which positions are revealed, not on their values, so
        it is computed once per distinct mask pattern.
        """
        from pmdm.models.graph import mutually_independent, separating_priority

        patterns, inverse = torch.unique(masked, dim=0, return_inverse=True)
        chosen = torch.zeros_like(patterns)
        for row, pattern in enumerate(patterns):
            revealed = tuple((~pattern).nonzero().squeeze(-1).tolist())
            if revealed not in self._cache:
                candidates = pattern.nonzero().squeeze(-1).tolist()
                priority = separating_priority(self.graph, revealed, candidates)
                self._cache[revealed] = mutually_independent(
                    self.graph, revealed, candidates, priority=priority
                )
            chosen[row, self._cache[revealed]] = True
        return chosen[inverse]


ORDERS: dict[str, type[OrderPolicy]] = {
    cls.name: cls
    for cls in (
        LeftToRight,
        RightToLeft,
        RandomOrder,
        EntropyOrder,
        ConfidenceOrder,
        MarginOrder,
        SampledConfidence,
    )
}


def make_order(order: str | OrderPolicy | Callable | Sequence[int]) -> OrderPolicy:
    """An order policy from a name, a policy, a callable or a permutation.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if isinstance(order, OrderPolicy):
        return order
    if isinstance(order, str):
        if order == "graph":
            raise ValueError(
                "order='graph': build GraphOrder(target), it needs the target's "
                "dependency graph"
            )
        if order not in ORDERS:
            raise ValueError(
                f"order={order!r}: expected one of {sorted(ORDERS) + ['graph']}, a "
                "permutation, a callable or an OrderPolicy"
            )
        return ORDERS[order]()
    if callable(order):
        return CallableOrder(order)
    return Permutation(order)


def rank(scores: Tensor, eligible: Tensor) -> Tensor:
    """Positions sorted by score, highest first, ties to the lowest position;
    ineligible positions last.

    Parameters
    ----------
    scores : Tensor, shape (N, T)
    eligible : Tensor, shape (N, T), bool

    Returns
    -------
    Tensor, shape (N, T), long
    """
    keyed = torch.where(eligible, scores, torch.full_like(scores, -torch.inf))
    return torch.sort(keyed, dim=-1, descending=True, stable=True).indices
