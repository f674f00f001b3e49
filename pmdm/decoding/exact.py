"""The exact output distribution of a decoder, by enumerating its randomness.

Breadth-first over decoder states: at each step every state calls the predictor
once, branches over the decoder's choices (a uniformly random subset for the random
order, every joint draw for the sampled-confidence order) and over the values of
the revealed positions, and identical states are merged. The result is ``q`` over
all ``V^T`` sequences, with the expected NFE and proposals.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pmdm.decoding.decoder import Decoder, remask_selection
from pmdm.decoding.orders import RandomOrder, SampledConfidence, rank
from pmdm.decoding.samplers import (
    Factorized,
    Rejection,
    StepContext,
    chain_rule,
    temper,
)
from pmdm.decoding.schedules import FixedSize, StepsSchedule, ThresholdSchedule

#: Largest number of states the enumeration keeps at once.
MAX_STATES = 2**20


@dataclass
class OutputDistribution:
    """``q`` over all ``V^T`` sequences (lexicographic order) and expected costs.

    Attributes
    ----------
    log_q : Tensor, shape (V^T,)
    nfe : float
        Expected predictor calls per sequence.
    proposals : float
        Expected proposals per sequence (rejection sampler).
    steps : float
        Expected number of steps.
    """

    log_q: Tensor
    nfe: float
    proposals: float
    steps: float


def _configs(V: int, k: int) -> Tensor:
    return torch.tensor(list(itertools.product(range(V), repeat=k))).reshape(-1, k)


class _Frontier:
    """States with log-weights and weighted costs; merges duplicates."""

    def __init__(self, tokens, log_w, cost, extra=None):
        self.tokens, self.log_w, self.cost, self.extra = tokens, log_w, cost, extra

    def merged(self) -> _Frontier:
        keep = torch.isfinite(self.log_w)
        tokens, log_w = self.tokens[keep], self.log_w[keep]
        cost = self.cost[keep]
        extra = None if self.extra is None else self.extra[keep]
        key = tokens.to(torch.float64)
        if extra is not None:
            key = torch.cat([key, extra], -1)
        uniq, inverse = torch.unique(key, dim=0, return_inverse=True)
        n = uniq.shape[0]
        out_w = torch.full((n,), -torch.inf, dtype=torch.float64)
        out_w = out_w.scatter_reduce(0, inverse, log_w, "amax")
        # log Σ exp: shift by the group max.
        shifted = (log_w - out_w[inverse]).exp()
        total = torch.zeros(n, dtype=torch.float64).index_add(0, inverse, shifted)
        out_w = out_w + total.log()
        out_cost = torch.zeros(n, 3, dtype=torch.float64).index_add(0, inverse, cost)
        first = torch.full((n,), tokens.shape[0], dtype=torch.long).scatter_reduce(
            0, inverse, torch.arange(tokens.shape[0]), "amin"
        )
        out_extra = None if extra is None else extra[first]
        if out_w.numel() > MAX_STATES:
            raise ValueError(
                f"exact enumeration: {out_w.numel()} decoder states exceed "
                f"MAX_STATES={MAX_STATES}; use a Monte Carlo estimate"
            )
        return _Frontier(tokens[first], out_w, out_cost, out_extra)


def output_distribution(
    decoder: Decoder, predictor, length: int, tokens: Tensor | None = None
) -> OutputDistribution:
    """Enumerate the decoder's output distribution exactly.

    Parameters
    ----------
    decoder : Decoder
        Any order with the ``fixed``, ``steps`` or ``threshold`` schedules; the
        deterministic orders with every schedule. The sampled-confidence order
        needs the factorized sampler.
    predictor : Predictor
    length : int
        ``T``.
    tokens : Tensor, shape (T,), optional
        Start state (a prompt); all masked when omitted.

    Returns
    -------
    OutputDistribution

    Raises
    ------
    ValueError
        For a combination this enumeration does not cover, or too many states.
    """
    V, mask_id = predictor.vocab_size, predictor.mask_id
    order = decoder.order
    random_order = isinstance(order, RandomOrder) or (
        not order.deterministic and not isinstance(order, SampledConfidence)
    )
    if random_order and not isinstance(
        decoder.schedule, FixedSize | StepsSchedule | ThresholdSchedule
    ):
        raise ValueError(
            f"schedule={decoder.schedule!r}: the exact enumeration of a random order "
            "covers the fixed, steps and threshold schedules; use Monte Carlo"
        )
    if isinstance(order, SampledConfidence) and not isinstance(
        decoder.sampler, Factorized
    ):
        raise ValueError(
            f"sampler={decoder.sampler!r}: the sampled-confidence order is enumerated "
            "with the factorized sampler only"
        )
    start = torch.full((1, length), mask_id, dtype=torch.long)
    if tokens is not None:
        start = torch.as_tensor(tokens).long().reshape(1, length)
    region = start == mask_id
    remask = decoder.remask is not None and decoder.remask.rounds > 0
    extra = torch.full((1, length), torch.nan, dtype=torch.float64) if remask else None
    frontier = _Frontier(
        start,
        torch.zeros(1, dtype=torch.float64),
        torch.zeros(1, 3, dtype=torch.float64),
        extra,
    )
    for _ in range(length + 1):
        masked = frontier.tokens == mask_id
        if not masked.any():
            break
        frontier = _expand(decoder, predictor, frontier, region, V, mask_id, None)
    if remask:
        for _ in range(decoder.remask.rounds):
            frontier = _expand(
                decoder, predictor, frontier, region, V, mask_id, "remask"
            )
    # States that differ only in their remasking scores are the same output.
    frontier = _Frontier(frontier.tokens, frontier.log_w, frontier.cost).merged()
    weights = V ** torch.arange(length - 1, -1, -1)
    index = (frontier.tokens * weights).sum(-1)
    log_q = torch.full((V**length,), -torch.inf, dtype=torch.float64)
    log_q = log_q.index_put((index,), frontier.log_w, accumulate=False)
    cost = frontier.cost.sum(0)
    return OutputDistribution(log_q, float(cost[0]), float(cost[1]), float(cost[2]))


def _expand(decoder, predictor, frontier, region_one, V, mask_id, mode):
    tokens, log_w = frontier.tokens, frontier.log_w
    n, T = tokens.shape
    region = region_one.expand(n, T)
    masked = tokens == mask_id
    done = ~masked.any(-1) if mode is None else torch.zeros(n, dtype=torch.bool)
    children = [
        _Frontier(
            tokens[done],
            log_w[done],
            frontier.cost[done],
            None if frontier.extra is None else frontier.extra[done],
        )
    ]
    rows = (~done).nonzero().squeeze(-1)
    if rows.numel() == 0:
        return frontier
    state = tokens[rows]
    if mode == "remask":
        select = remask_selection(
            region[rows], frontier.extra[rows], decoder.remask.count
        )
        state = torch.where(select, mask_id, state)
    log_probs = predictor(state).to(torch.float64)
    tempered = temper(log_probs, decoder.temperature)
    # Branches: (parent row, selection mask, log-probability of the selection).
    if mode == "remask":
        branches = [
            (
                torch.arange(rows.numel()),
                select,
                torch.zeros(rows.numel(), dtype=torch.float64),
            )
        ]
    elif getattr(decoder.order, "chooses_set", False):
        sel = decoder.order.choose(state == mask_id)
        branches = [
            (
                torch.arange(rows.numel()),
                sel,
                torch.zeros(rows.numel(), dtype=torch.float64),
            )
        ]
    else:
        eligible = decoder.schedule.eligible(region[rows], state == mask_id)
        branches = _selections(decoder, log_probs, tempered, eligible, region[rows], V)
    for parent, sel, log_sel, *draw in branches:
        children.append(
            _values(
                decoder,
                predictor,
                frontier,
                rows[parent],
                state[parent],
                sel,
                log_sel,
                tempered[parent],
                log_probs[parent],
                draw[0] if draw else None,
                V,
            )
        )
    merged = _Frontier(
        torch.cat([c.tokens for c in children]),
        torch.cat([c.log_w for c in children]),
        torch.cat([c.cost for c in children]),
        None if frontier.extra is None else torch.cat([c.extra for c in children]),
    )
    return merged.merged()


def _selections(decoder, log_probs, tempered, eligible, region, V):
    order = decoder.order
    n, T = eligible.shape
    if isinstance(order, SampledConfidence):
        # Every joint draw over the eligible positions: (draw, its probability).
        out = []
        counts = eligible.sum(-1)
        for c in sorted(set(counts.tolist())):
            rows = (counts == c).nonzero().squeeze(-1)
            configs = _configs(V, c)
            pos = torch.where(eligible[rows], torch.arange(T), T).sort(-1).values[:, :c]
            for config in configs:
                draws = torch.zeros(rows.numel(), T, dtype=torch.long)
                draws.scatter_(-1, pos, config.expand(rows.numel(), c))
                lp = tempered[rows].gather(-1, draws.unsqueeze(-1)).squeeze(-1)
                log_draw = torch.where(eligible[rows], lp, 0.0).sum(-1)
                scores = order.scores(log_probs[rows], draws)
                ranked = rank(scores, eligible[rows])
                sel = decoder.schedule.select(
                    log_probs[rows], ranked, eligible[rows], region[rows]
                )
                out.append((rows, sel, log_draw, draws))
        return out
    if order.deterministic:
        scores = order.scores(log_probs)
        ranked = rank(scores, eligible)
        sel = decoder.schedule.select(log_probs, ranked, eligible, region)
        return [(torch.arange(n), sel, torch.zeros(n, dtype=torch.float64))]
    # Random order: the ranking is a uniform permutation of the eligible positions.
    schedule = decoder.schedule
    out = []
    if isinstance(schedule, ThresholdSchedule):
        confident = eligible & (log_probs.max(-1).values.exp() >= schedule.threshold)
        some = confident.any(-1)
        if some.any():
            rows = some.nonzero().squeeze(-1)
            zero = torch.zeros(rows.numel(), dtype=torch.float64)
            out.append((rows, confident[rows], zero))
        k = torch.ones(n, dtype=torch.long)
        return out + _uniform_subsets(eligible, k, ~some)
    # Fixed or steps: the count does not depend on the ranking; uniform k-subsets.
    ranked = rank(torch.zeros(n, T, dtype=torch.float64), eligible)
    k = schedule.select(log_probs, ranked, eligible, region).sum(-1)
    return _uniform_subsets(eligible, k, torch.ones(n, dtype=torch.bool))


def _uniform_subsets(eligible: Tensor, k: Tensor, rows_mask: Tensor) -> list:
    # Branches for a uniformly random k-subset of each row's eligible positions,
    # grouped by (number eligible, k) so that each group is one tensor operation.
    n, T = eligible.shape
    count = eligible.sum(-1)
    out = []
    for c, size in sorted(
        set(zip(count[rows_mask].tolist(), k[rows_mask].tolist(), strict=True))
    ):
        rows = (rows_mask & (count == c) & (k == size)).nonzero().squeeze(-1)
        combos = torch.tensor(list(itertools.combinations(range(c), size)))
        combos = combos.reshape(-1, size)  # (S, size)
        S = combos.shape[0]
        # Eligible positions of each row, in order: (r, c).
        pos = torch.where(eligible[rows], torch.arange(T), T).sort(-1).values[:, :c]
        chosen = pos[:, combos]  # (r, S, size)
        sel = torch.zeros(rows.numel(), S, T, dtype=torch.bool)
        sel.scatter_(-1, chosen, True)
        parent = rows.repeat_interleave(S)
        log_sel = torch.full((parent.numel(),), -math.log(S), dtype=torch.float64)
        out.append((parent, sel.reshape(-1, T), log_sel))
    return out


def _values(
    decoder,
    predictor,
    frontier,
    rows,
    state,
    sel,
    log_sel,
    tempered,
    log_probs,
    draws,
    V,
):
    # Children of `state` rows for every value of the selected positions.
    n, T = state.shape
    if draws is not None:
        # Sampled-confidence: the draws are the values (their probability is in
        # log_sel already).
        new = torch.where(sel, draws, state)
        zero = torch.zeros(n)
        return _children(frontier, rows, new, log_sel, sel, log_probs, zero, zero)
    out_tokens, out_w, out_rows, out_sel, out_nfe, out_props, out_lp = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    counts = sel.sum(-1)
    for k in sorted(set(counts.tolist())):
        idx = (counts == k).nonzero().squeeze(-1)
        configs = _configs(V, k)
        C, r = configs.shape[0], idx.numel()
        pos = torch.where(sel[idx], torch.arange(T), T).sort(-1).values[:, :k]
        values = state[idx].unsqueeze(1).repeat(1, C, 1)
        values.scatter_(-1, pos.unsqueeze(1).expand(r, C, k), configs.expand(r, C, k))
        values = values.reshape(r * C, T)
        ctx = StepContext(
            predictor,
            state[idx].repeat_interleave(C, 0),
            sel[idx].repeat_interleave(C, 0),
            tempered[idx].repeat_interleave(C, 0),
            None,
            decoder.temperature,
            None,
        )
        outcome = decoder.sampler.replay(ctx, values)
        nfe = outcome.nfe.reshape(r, C)[:, 0]
        props = torch.zeros(r, dtype=torch.float64)
        if isinstance(decoder.sampler, Rejection):
            # Expected proposals M = sup p/q over the configurations.
            fact = Factorized().replay(ctx, values).log_q.reshape(r, C)
            joint = outcome.log_q.reshape(r, C)
            log_m = (
                torch.where(torch.isfinite(joint), joint - fact, -torch.inf)
                .max(-1)
                .values
            )
            props = log_m.exp()
        out_tokens.append(values)
        out_w.append(log_sel[idx].repeat_interleave(C) + outcome.log_q)
        out_rows.append(rows[idx].repeat_interleave(C))
        out_sel.append(sel[idx].repeat_interleave(C, 0))
        out_lp.append(log_probs[idx].repeat_interleave(C, 0))
        out_nfe.append(nfe.repeat_interleave(C))
        out_props.append(props.repeat_interleave(C))
    return _children(
        frontier,
        torch.cat(out_rows),
        torch.cat(out_tokens),
        torch.cat(out_w),
        torch.cat(out_sel),
        torch.cat(out_lp),
        torch.cat(out_nfe),
        torch.cat(out_props),
    )


def _children(frontier, rows, tokens, log_branch, sel, log_probs, nfe, props):
    parent_w = frontier.log_w[rows]
    log_w = parent_w + log_branch
    # Weighted costs: inherited share plus this step's cost times the child weight.
    share = torch.where(torch.isfinite(log_w), (log_branch).exp(), 0.0).unsqueeze(-1)
    child_w = torch.where(torch.isfinite(log_w), log_w.exp(), 0.0)
    step_cost = torch.stack(
        [1 + nfe.to(torch.float64), props.to(torch.float64), torch.ones_like(child_w)],
        -1,
    )
    cost = frontier.cost[rows] * share + child_w.unsqueeze(-1) * step_cost
    extra = None
    if frontier.extra is not None:
        index = tokens.clamp(max=log_probs.shape[-1] - 1).unsqueeze(-1)
        picked = log_probs.gather(-1, index).squeeze(-1).exp()
        extra = torch.where(sel, picked, frontier.extra[rows])
    return _Frontier(tokens, log_w, cost, extra)


__all__ = ["OutputDistribution", "output_distribution", "chain_rule"]
