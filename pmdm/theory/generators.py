"""Seeded random builders of valid instances, for :func:`pmdm.theory.check.run_checks`.

Every builder takes a ``torch.Generator`` and returns a valid object by
construction; the same seed gives the same instances on every machine. The
families mix generic random tables (dense, sparse, peaked, with tiny
probabilities) with the structured ones on which the statements are tight or
loose (copies of one variable, parity constraints, independent positions) and
with tables derived from the paper's Block-HMM.

The hypothesis strategies of :mod:`pmdm.testing.strategies` cover the same ground
for property-based tests; these builders exist so that ``pmdm check`` needs no
testing library and gives reproducible, seed-indexed examples.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

from pmdm.models.block_hmm import BlockHMM

#: Families of :func:`random_joint`.
STYLES = (
    "dense",
    "peaked",
    "sparse",
    "tiny",
    "copies",
    "parity",
    "independent",
)


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """A uniform integer in ``[low, high]`` (both included)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    """A uniform float in ``[low, high)``."""
    u = torch.rand((), generator=generator, dtype=torch.float64).item()
    return low + (high - low) * u


def choice(generator: torch.Generator, options: Sequence):
    """One element of ``options``, uniformly."""
    return options[randint(generator, 0, len(options) - 1)]


def normalize_log(weights: Tensor) -> Tensor:
    """Log of the normalized weights; an all-zero table becomes a point mass at its
    first entry."""
    weights = weights.clone()
    if not (weights > 0).any():
        weights.view(-1)[0] = 1.0
    return (weights / weights.sum()).log()


def random_weights(
    generator: torch.Generator, shape: Sequence[int], zero_rate: float = 0.0
) -> Tensor:
    """Exponential(1) weights of the given shape, each zero with prob. ``zero_rate``."""
    w = -torch.rand(tuple(shape), generator=generator, dtype=torch.float64).log()
    if zero_rate > 0:
        keep = torch.rand(tuple(shape), generator=generator, dtype=torch.float64)
        w = torch.where(keep < zero_rate, torch.zeros_like(w), w)
    return w


def random_joint(
    generator: torch.Generator,
    shape: Sequence[int],
    style: str | None = None,
) -> Tensor:
    """A normalized log table of the given shape from one of :data:`STYLES`.

    Parameters
    ----------
    generator : torch.Generator
    shape : sequence of int
        ``(V_1, ..., V_T)``.
    style : str, optional
        One of :data:`STYLES`; drawn uniformly when omitted. ``copies`` and
        ``parity`` put most mass on all-equal and even-parity configurations (mixed
        with a random table with weight 0 or 1e-3 to 0.3); ``tiny`` mixes in entries
        as small as ``1e-9``.

    Returns
    -------
    Tensor, shape ``shape``, float64
    """
    shape = tuple(int(s) for s in shape)
    style = style or choice(generator, STYLES)
    if style not in STYLES:
        raise ValueError(f"style={style!r}: expected one of {STYLES}")
    if style == "dense":
        return normalize_log(random_weights(generator, shape))
    if style == "peaked":
        return normalize_log(random_weights(generator, shape) ** 4)
    if style == "sparse":
        rate = uniform(generator, 0.2, 0.8)
        return normalize_log(random_weights(generator, shape, rate))
    if style == "tiny":
        w = random_weights(generator, shape)
        scale = torch.rand(shape, generator=generator, dtype=torch.float64)
        w = w * torch.pow(10.0, -9 * (scale < 0.5).to(torch.float64) * scale * 2)
        return normalize_log(w)
    if style == "independent":
        out = torch.zeros(shape, dtype=torch.float64)
        for i, v in enumerate(shape):
            view = [1] * len(shape)
            view[i] = v
            rate = choice(generator, (0.0, 0.3))
            out = out + normalize_log(random_weights(generator, (v,), rate)).view(view)
        return out
    # Structured support, optionally mixed with a random table.
    grid = torch.stack(torch.meshgrid(*[torch.arange(v) for v in shape], indexing="ij"))
    if style == "copies":
        structured = (grid == grid[0]).all(0).to(torch.float64)
    else:
        structured = ((grid % 2).sum(0) % 2 == 0).to(torch.float64)
    mix = choice(generator, (0.0, 0.0, 1e-3, uniform(generator, 0.0, 0.3)))
    noise = random_weights(generator, shape)
    w = (1 - mix) * structured / structured.sum() + mix * noise / noise.sum()
    return normalize_log(w)


def random_shape(
    generator: torch.Generator,
    max_length: int = 4,
    vocab_sizes: Sequence[int] = (2, 3),
    max_entries: int = 81,
    min_length: int = 1,
) -> tuple[int, ...]:
    """``(V,)*T`` with ``T`` in ``[min_length, max_length]``, ``V`` from
    ``vocab_sizes`` and ``V^T <= max_entries``."""
    while True:
        T = randint(generator, min_length, max_length)
        V = choice(generator, tuple(vocab_sizes))
        if V**T <= max_entries:
            return (V,) * T


def random_partition(
    generator: torch.Generator, length: int, singletons: bool = False
) -> tuple[tuple[int, ...], ...]:
    """A uniformly shuffled ordered partition of ``0..T-1`` into non-empty blocks."""
    order = torch.randperm(length, generator=generator).tolist()
    if singletons:
        return tuple((i,) for i in order)
    cuts = sorted(i for i in range(1, length) if uniform(generator) < 0.4)
    bounds = [0, *cuts, length]
    return tuple(
        tuple(sorted(order[a:b])) for a, b in itertools.pairwise(bounds) if b > a
    )


def random_composition(generator: torch.Generator, length: int) -> tuple[int, ...]:
    """Step sizes ``s_1..s_K >= 1`` summing to ``length``, every composition
    equally likely."""
    cuts = [i for i in range(1, length) if uniform(generator) < 0.5]
    bounds = [0, *cuts, length]
    return tuple(b - a for a, b in itertools.pairwise(bounds))


def conditionally_independent_joint(
    generator: torch.Generator,
    shape: Sequence[int],
    blocks: Sequence[Sequence[int]],
    zero_rate: float = 0.0,
) -> Tensor:
    """A table whose blocks are conditionally independent given their prefix.

    ``p(x) = Π_m Π_{i∈B_m} r_i(x_i | x_{P_m})`` with random conditionals ``r_i``,
    so that ``p(x_{B_m} | x_{P_m}) = Π_i p(x_i | x_{P_m})`` for every context.
    """
    shape = tuple(int(s) for s in shape)
    T = len(shape)
    out = torch.zeros(shape, dtype=torch.float64)
    prefix: list[int] = []
    for block in blocks:
        for i in block:
            view = [shape[j] if j in prefix or j == i else 1 for j in range(T)]
            w = random_weights(generator, view, zero_rate)
            # Rows with no mass become uniform: r_i must be a conditional law.
            total = w.sum(dim=i, keepdim=True)
            w = torch.where(total > 0, w / total.clamp(min=1e-300), 1.0 / shape[i])
            out = out + w.log()
        prefix.extend(block)
    return out - torch.logsumexp(out.flatten(), 0)


def random_block_hmm(
    generator: torch.Generator,
    max_block_size: int = 5,
    max_blocks: int = 1,
    etas: Sequence[float] = (0.0, 1e-8, 1e-4, 1e-2, 0.2, 0.5),
    num_states: int | None = None,
) -> BlockHMM:
    """A small Block-HMM with random rates, stay probability and parity noise."""
    K = num_states or randint(generator, 1, 3)
    B = randint(generator, 1, max_block_size)
    M = randint(generator, 1, max_blocks)
    rho = [choice(generator, (uniform(generator), 0.9, 0.1, 0.5)) for _ in range(K)]
    return BlockHMM(
        num_states=K,
        stay=uniform(generator, 0.5, 1.0),
        rho=rho,
        block_size=B,
        length=B * M,
        eta=choice(generator, tuple(etas)),
    )


def random_latent_law(generator: torch.Generator, num_states: int) -> Tensor:
    """``log p(z | x_P)``: a random point of the simplex (a vertex 1 time in 4)."""
    if uniform(generator) < 0.25:
        w = torch.zeros(num_states, dtype=torch.float64)
        w[randint(generator, 0, num_states - 1)] = 1.0
    else:
        w = random_weights(generator, (num_states,))
    return normalize_log(w)


def random_block_context(
    generator: torch.Generator,
    max_block_size: int = 6,
    etas: Sequence[float] = (0.0, 1e-8, 1e-4, 1e-2, 0.2, 0.5),
) -> Tensor:
    """``log p(x_B | x_P)`` of a random Block-HMM block under a random latent law
    of its context (:func:`random_block_hmm`, :func:`random_latent_law`)."""
    hmm = random_block_hmm(generator, max_block_size=max_block_size, etas=etas)
    return block_table(hmm, random_latent_law(generator, hmm.num_states))


def block_table(hmm: BlockHMM, log_pred: Tensor) -> Tensor:
    """``log p(x_B | x_P)`` of one Block-HMM block as a ``(2,)*B`` table.

    Parameters
    ----------
    hmm : BlockHMM
    log_pred : Tensor, shape (K,)
        ``log p(z_m | x_P)``, the latent law given the context.

    Returns
    -------
    Tensor, shape (2,)*B
        Position 0 is the parity bit (the paper lists it first).
    """
    B = hmm.block_size
    configs = torch.cartesian_prod(*[torch.arange(2)] * B).reshape(2**B, B)
    like = hmm.emission().log_prob(configs.to(torch.float64).unsqueeze(-2))
    log_p = torch.logsumexp(like + log_pred, -1)
    return log_p.reshape((2,) * B)


def block_hmm_table(hmm: BlockHMM) -> Tensor:
    """``log p(x)`` of a whole small Block-HMM as a ``(2,)*T`` table."""
    x = hmm.enumerate_sequences()
    return hmm.log_prob(x).reshape((2,) * hmm.length)


def contiguous_blocks(hmm: BlockHMM) -> tuple[tuple[int, ...], ...]:
    """The Block-HMM's own blocks, in order."""
    B = hmm.block_size
    return tuple(tuple(range(m * B, (m + 1) * B)) for m in range(hmm.num_blocks))
