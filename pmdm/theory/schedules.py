"""Random-order decoding with a schedule of step sizes, exactly, on a joint table.

An oracle decoder reveals, at step ``k``, ``s_k`` masked positions chosen uniformly
at random and draws them from the product of their exact conditional marginals
given the revealed ones (a factorized step). For every ordered partition ``π`` of
the positions into steps of sizes ``s_1..s_K`` its output law ``q_π`` is
:func:`pmdm.metrics.information.factorized_decoder_log_probs`; the quantities here
average over the uniformly random ``π`` by enumerating every partition.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from pmdm.metrics.information import (
    check_joint_table,
    factorized_decoder_log_probs,
    information_curve,
    joint_kl_divergence,
    sum_mutual_information,
)
from pmdm.ops.validation import check_int

#: Largest number of ordered partitions :func:`random_order_kl` enumerates.
MAX_PARTITIONS = 5040


def check_sizes(sizes: Sequence[int], length: int) -> tuple[int, ...]:
    """Return ``sizes`` as a tuple, or raise unless they are positive and sum to
    ``length``."""
    sizes = tuple(check_int("sizes[]", s, minimum=1) for s in sizes)
    if sum(sizes) != length:
        raise ValueError(
            f"sizes={list(sizes)!r}: expected positive step sizes summing to the "
            f"length T = {length}"
        )
    return sizes


def ordered_partitions(
    length: int, sizes: Sequence[int]
) -> Iterator[tuple[tuple[int, ...], ...]]:
    """Every ordered partition of ``0..T-1`` into steps of the given sizes.

    There are ``T! / Π_k s_k!`` of them, each equally likely under uniformly random
    positions.

    Examples
    --------
    >>> list(ordered_partitions(3, (1, 2)))
    [((0,), (1, 2)), ((1,), (0, 2)), ((2,), (0, 1))]
    """
    sizes = check_sizes(sizes, length)

    def rest(remaining: tuple, k: int):
        if k == len(sizes):
            yield ()
            return
        for step in itertools.combinations(remaining, sizes[k]):
            left = tuple(i for i in remaining if i not in step)
            for tail in rest(left, k + 1):
                yield (step, *tail)

    yield from rest(tuple(range(length)), 0)


def _count(length: int, sizes: tuple) -> int:
    return math.factorial(length) // math.prod(math.factorial(s) for s in sizes)


def random_order_kl(log_p: Tensor, sizes: Sequence[int]) -> Tensor:
    """``E_π KL(p ‖ q_π)`` of random-order factorized decoding, exactly.

    Parameters
    ----------
    log_p : Tensor, shape (V_1, ..., V_T)
        Normalized joint table.
    sizes : sequence of int
        ``s_1..s_K``, positive, summing to ``T``.

    Returns
    -------
    Tensor, shape ()
        The average over all ``T!/Π s_k!`` ordered partitions of the forward KL of
        the decoder that uses it.

    Raises
    ------
    ValueError
        If there are more than :data:`MAX_PARTITIONS` partitions.

    Examples
    --------
    >>> import math, torch
    >>> copies = torch.tensor([[0.5, 0.0], [0.0, 0.5]]).log()
    >>> round(random_order_kl(copies, (2,)).item() / math.log(2), 9)
    1.0
    >>> random_order_kl(copies, (1, 1)).item()
    0.0
    """
    log_p, T, _ = check_joint_table(log_p)
    sizes = check_sizes(sizes, T)
    count = _count(T, sizes)
    if count > MAX_PARTITIONS:
        raise ValueError(
            f"sizes={list(sizes)!r}: {count} ordered partitions, expected at most "
            f"{MAX_PARTITIONS}; use a shorter sequence"
        )
    kls = [
        joint_kl_divergence(log_p, factorized_decoder_log_probs(log_p, blocks))
        for blocks in ordered_partitions(T, sizes)
    ]
    return torch.stack(kls).mean()


def schedule_formula(curve: Tensor, sizes: Sequence[int]) -> Tensor:
    """``Σ_k Σ_{j=c_k+1}^{c_k+s_k} (Z_j − Z_{c_k+1})`` for a curve ``Z_1..Z_T``.

    ``c_k = s_1 + .. + s_{k-1}`` is the number of positions revealed before step
    ``k``. With the information curve of :func:`information_curve` this is the
    exact expected forward KL of random-order factorized decoding: the area between
    the curve and its left-endpoint step approximation on the schedule's grid.

    Parameters
    ----------
    curve : Tensor, shape (*batch, T)
        Entry ``j − 1`` is ``Z_j``.
    sizes : sequence of int
        ``s_1..s_K``, summing to ``T``.

    Returns
    -------
    Tensor, shape (*batch,)

    Notes
    -----
    Derivation: a step that reveals ``A`` (``|A| = s``) after ``S`` (``|S| = c``)
    costs ``E[Σ_{i∈A} H(X_i | X_S) − H(X_A | X_S)]``. Revealing ``A`` in a random
    internal order ``a_1..a_s``, the chain rule makes this
    ``Σ_r E[I(X_{a_r} ; X_{a_<r} | X_S)] = Σ_r (Z_{c+r} − Z_{c+1})``, since
    ``I(X_i ; X_R | X_S) = I(X_i ; X_{S∪R}) − I(X_i ; X_S)`` and ``S ∪ {a_<r}`` is
    a uniformly random set of ``c + r − 1`` positions not containing ``a_r``.

    References
    ----------
    Chen, Cong, Li (2025), "Optimal inference schedules for masked diffusion
    models", arXiv 2511.04647 (exact characterization of the expected divergence of
    a schedule through the information curve).
    """
    T = curve.shape[-1]
    sizes = check_sizes(sizes, T)
    total = torch.zeros(curve.shape[:-1], dtype=curve.dtype)
    c = 0
    for s in sizes:
        total = total + (curve[..., c : c + s] - curve[..., c : c + 1]).sum(-1)
        c += s
    return total


def information_curve_kl(log_p: Tensor, sizes: Sequence[int]) -> Tensor:
    """:func:`schedule_formula` on the information curve of ``log_p``."""
    return schedule_formula(information_curve(log_p), sizes)


def li_cai_bound(log_p: Tensor, sizes: Sequence[int]) -> Tensor:
    """``((2^{⌈log2 s_max⌉} − 1) / T) · Σ_i I(X_i ; X_{−i})`` (Li and Cai, 2025).

    Parameters
    ----------
    log_p : Tensor, shape (V_1, ..., V_T)
    sizes : sequence of int
        Summing to ``T``; ``s_max`` is the largest.

    Returns
    -------
    Tensor, shape ()

    Notes
    -----
    ``T`` here is the sequence length (Li and Cai's ``L``), not the number of
    steps: with balanced sizes ``s_max ≈ L / K`` the bound decays as ``1 / K`` in
    the number of steps ``K``, as their abstract states. The bound is checked
    numerically by the ``li-cai`` statement of :mod:`pmdm.theory`.

    References
    ----------
    Li, Cai (2025), "A convergence theory for diffusion language models: an
    information-theoretic perspective", arXiv 2505.21400 (main upper bound, with
    the training error set to zero for an oracle predictor).
    """
    log_p, T, _ = check_joint_table(log_p)
    sizes = check_sizes(sizes, T)
    factor = (2 ** math.ceil(math.log2(max(sizes))) - 1) / T
    return factor * sum_mutual_information(log_p)
