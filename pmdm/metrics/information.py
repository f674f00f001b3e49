"""Exact information quantities of an explicit joint probability table.

A joint table ``log_p`` has shape ``(*batch, V_1, ..., V_T)``: its ``T`` rightmost
axes are the token positions ``0..T-1`` (indexed from the right, so any batch shape
works; pass ``length=T`` when there are batch axes) and ``log_p[..., x_1, .., x_T]``
is ``log p(x)``. The axes may have different sizes (a prompt axis next to answer
tokens, say). Every quantity is in nats, with the conventions of
:mod:`pmdm.ops.logspace`: ``0 log 0 = 0``, a divergence is ``+inf`` (never NaN) as
soon as the first argument has mass where the second has none, and a conditional
given an impossible context is uniform.

Sets of positions are sequences of distinct ints in ``[0, T)``; tables over a set
keep its positions in increasing order.

References
----------
Watanabe (1960), "Information theoretical analysis of multivariate correlation",
IBM J. Res. Dev. 4(1) (total correlation). Han (1978), "Nonnegative entropy measures
of multivariate symmetric correlations", Inf. Control 36(2) (dual total correlation).
Zhang, Yu, Brekelmans, Tang, Asif, Ver Steeg (2026), arXiv 2602.00286, Eq. 4-5, 15,
17, 19.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from pmdm.ops.logspace import entropy, kl_divergence
from pmdm.ops.validation import check_int

#: Largest deviation of ``logsumexp(log_p)`` from 0 accepted as normalized.
NORMALIZATION_ATOL = 1e-6

#: Largest number of positions for which :func:`subset_entropies` lists ``2^T`` sets.
MAX_SUBSET_POSITIONS = 16


# -- validation -------------------------------------------------------------------


def check_joint_table(
    log_p: Tensor, length: int | None = None, name: str = "log_p"
) -> tuple[Tensor, int, int]:
    """Validate a normalized joint log-probability table.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    length : int, optional
        ``T``; defaults to ``log_p.dim()``.
    name : str
        The argument name used in error messages.

    Returns
    -------
    log_p : Tensor
        As float64.
    T : int
    batch_ndim : int

    Raises
    ------
    ValueError
        If ``length`` is out of range, an entry is NaN or ``+inf``, or a table does
        not sum to one within :data:`NORMALIZATION_ATOL`.
    """
    if not isinstance(log_p, Tensor):
        raise TypeError(f"{name}={log_p!r}: expected a torch.Tensor")
    log_p = log_p.to(torch.float64)
    T = log_p.dim() if length is None else check_int("length", length, minimum=1)
    if T < 1 or T > log_p.dim():
        raise ValueError(
            f"length={length!r}: expected 1 <= length <= {name}.dim() = {log_p.dim()}"
            f" (the token axes are the rightmost ones of {name})"
        )
    if torch.isnan(log_p).any() or torch.isposinf(log_p).any():
        raise ValueError(f"{name}: expected log-probabilities, found NaN or +inf")
    if log_p.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty table")
    total = torch.logsumexp(log_p.flatten(-T), -1)
    if (total.abs() > NORMALIZATION_ATOL).any():
        worst = total.abs().max().item()
        raise ValueError(
            f"{name}: expected a normalized joint table over its last {T} axes, "
            f"actual log Σ p deviates from 0 by up to {worst:.3g}; normalize it with "
            "log_p - torch.logsumexp(log_p.flatten(-T), -1)"
        )
    return log_p, T, log_p.dim() - T


def _check_positions(name: str, positions: Iterable[int] | None, T: int) -> tuple:
    # Distinct positions in [0, T), returned sorted; None means every position.
    if positions is None:
        return tuple(range(T))
    if isinstance(positions, int):
        positions = (positions,)
    values = [check_int(f"{name}[]", i) for i in positions]
    if len(set(values)) != len(values) or any(i < 0 or i >= T for i in values):
        raise ValueError(
            f"{name}={list(positions)!r}: expected distinct positions in [0, {T})"
        )
    return tuple(sorted(values))


def _axis(T: int, i: int) -> int:
    return i - T


def _flat_entropy(log_table: Tensor, k: int) -> Tensor:
    # Entropy of a (*batch, V_1..V_k) table over its last k >= 1 axes.
    return entropy(log_table.flatten(-k), -1)


# -- marginals and entropies ------------------------------------------------------


def marginal(
    log_p: Tensor,
    positions: Iterable[int] | None,
    *,
    length: int | None = None,
    keepdim: bool = False,
) -> Tensor:
    """``log p(x_A)``, the marginal of a set of positions.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
        Normalized joint log-probability table.
    positions : sequence of int or None
        ``A``; ``None`` for every position.
    length : int, optional
        ``T``; defaults to ``log_p.dim()`` (no batch axes).
    keepdim : bool
        Keep all ``T`` token axes, size 1 for the summed ones (for broadcasting).

    Returns
    -------
    Tensor, shape (*batch, V_a1, ..., V_ak) in increasing position order
        Or ``(*batch, V_1 or 1, ..., V_T or 1)`` with ``keepdim``.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.5, 0.25], [0.0, 0.25]])
    >>> marginal(p.log(), [1]).exp()
    tensor([0.5000, 0.5000], dtype=torch.float64)
    """
    log_p, T, _ = check_joint_table(log_p, length)
    return _marginal(log_p, T, _check_positions("positions", positions, T), keepdim)


def _marginal(log_p: Tensor, T: int, keep: tuple, keepdim: bool = False) -> Tensor:
    dims = [_axis(T, i) for i in range(T) if i not in keep]
    if not dims:
        return log_p
    return torch.logsumexp(log_p, dim=dims, keepdim=keepdim)


def joint_entropy(
    log_p: Tensor, positions: Iterable[int] | None = None, *, length: int | None = None
) -> Tensor:
    """``H(X_A)`` in nats; ``H(X_∅) = 0``.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    positions : sequence of int or None
        ``A``; ``None`` for every position.
    length : int, optional
        ``T``; defaults to ``log_p.dim()``.

    Returns
    -------
    Tensor, shape (*batch,)

    Examples
    --------
    >>> import math, torch
    >>> copies = torch.tensor([[0.5, 0.0], [0.0, 0.5]]).log()
    >>> round(joint_entropy(copies).item() / math.log(2), 9)
    1.0
    """
    log_p, T, _ = check_joint_table(log_p, length)
    keep = _check_positions("positions", positions, T)
    return _entropy_of(log_p, T, keep)


def _entropy_of(log_p: Tensor, T: int, keep: tuple) -> Tensor:
    if not keep:
        return torch.zeros(log_p.shape[: log_p.dim() - T], dtype=log_p.dtype)
    return _flat_entropy(_marginal(log_p, T, keep), len(keep))


def conditional_entropy(
    log_p: Tensor,
    positions: Iterable[int],
    given: Iterable[int] = (),
    *,
    length: int | None = None,
) -> Tensor:
    """``H(X_A | X_C) = H(X_{A∪C}) − H(X_C)``, clamped at 0 against rounding.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    positions : sequence of int
        ``A``.
    given : sequence of int
        ``C``; may overlap ``A``.
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch,)
    """
    log_p, T, _ = check_joint_table(log_p, length)
    a = _check_positions("positions", positions, T)
    c = _check_positions("given", given, T)
    joint = tuple(sorted(set(a) | set(c)))
    out = _entropy_of(log_p, T, joint) - _entropy_of(log_p, T, c)
    return out.clamp(min=0.0)


def mutual_information(
    log_p: Tensor,
    first: Iterable[int],
    second: Iterable[int],
    given: Iterable[int] = (),
    *,
    length: int | None = None,
) -> Tensor:
    """``I(X_A ; X_B | X_C)`` in nats, clamped at 0 against rounding.

    ``I(X_A ; X_B | X_C) = H(X_{A∪C}) + H(X_{B∪C}) − H(X_{A∪B∪C}) − H(X_C)``.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    first, second : sequence of int
        ``A`` and ``B``.
    given : sequence of int
        ``C`` (empty for the unconditional mutual information).
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch,)

    Examples
    --------
    >>> import math, torch
    >>> xor = torch.zeros(2, 2, 2)
    >>> for a in range(2):
    ...     for b in range(2):
    ...         xor[a, b, a ^ b] = 0.25
    >>> mutual_information(xor.log(), [0], [1]).item()
    0.0
    >>> round(mutual_information(xor.log(), [0], [1], [2]).item() / math.log(2), 9)
    1.0
    """
    log_p, T, _ = check_joint_table(log_p, length)
    a = set(_check_positions("first", first, T))
    b = set(_check_positions("second", second, T))
    c = set(_check_positions("given", given, T))

    def h(s: set) -> Tensor:
        return _entropy_of(log_p, T, tuple(sorted(s)))

    out = h(a | c) + h(b | c) - h(a | b | c) - h(c)
    return out.clamp(min=0.0)


def _marginal_entropies(log_p: Tensor, T: int, keep: tuple) -> list[Tensor]:
    return [_entropy_of(log_p, T, (i,)) for i in keep]


def total_correlation(
    log_p: Tensor, positions: Iterable[int] | None = None, *, length: int | None = None
) -> Tensor:
    """``TC(X_A) = Σ_{i∈A} H(X_i) − H(X_A) = KL(p(x_A) ‖ Π_i p(x_i))``.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    positions : sequence of int or None
        ``A``; ``None`` for every position.
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch,)
        Clamped at 0 against rounding.

    Notes
    -----
    The forward total correlation of the paper (Eq. 15) is this quantity for the
    conditional law of a block given its context; see
    :func:`conditional_total_correlation`.

    Examples
    --------
    >>> import math, torch
    >>> copies = torch.tensor([[0.5, 0.0], [0.0, 0.5]]).log()
    >>> round(total_correlation(copies).item() / math.log(2), 9)
    1.0
    """
    log_p, T, _ = check_joint_table(log_p, length)
    keep = _check_positions("positions", positions, T)
    out = sum(_marginal_entropies(log_p, T, keep)) - _entropy_of(log_p, T, keep)
    return out.clamp(min=0.0)


def dual_total_correlation(
    log_p: Tensor, positions: Iterable[int] | None = None, *, length: int | None = None
) -> Tensor:
    """``DTC(X_A) = H(X_A) − Σ_{i∈A} H(X_i | X_{A∖i})`` (Han's binding information).

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    positions : sequence of int or None
        ``A``; ``None`` for every position.
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch,)
        Clamped at 0 against rounding.

    Examples
    --------
    >>> import math, torch
    >>> xor = torch.zeros(2, 2, 2)
    >>> for a in range(2):
    ...     for b in range(2):
    ...         xor[a, b, a ^ b] = 0.25
    >>> round(dual_total_correlation(xor.log()).item() / math.log(2), 9)
    2.0
    """
    log_p, T, _ = check_joint_table(log_p, length)
    keep = _check_positions("positions", positions, T)
    h_all = _entropy_of(log_p, T, keep)
    residual = [
        h_all - _entropy_of(log_p, T, tuple(j for j in keep if j != i)) for i in keep
    ]
    return (h_all - sum(residual)).clamp(min=0.0)


def sum_mutual_information(
    log_p: Tensor, positions: Iterable[int] | None = None, *, length: int | None = None
) -> Tensor:
    """``Σ_{i∈A} I(X_i ; X_{A∖i})``, the dependence measure of Li and Cai (2025).

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    positions : sequence of int or None
        ``A``; ``None`` for every position.
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch,)

    Notes
    -----
    It equals ``TC + DTC`` (checked by the ``dtc-identity`` statement of
    :mod:`pmdm.theory`); here it is computed term by term.

    References
    ----------
    Li, Cai (2025), "A convergence theory for diffusion language models: an
    information-theoretic perspective", arXiv 2505.21400.
    """
    log_p, T, _ = check_joint_table(log_p, length)
    keep = _check_positions("positions", positions, T)
    h_all = _entropy_of(log_p, T, keep)
    terms = []
    for i in keep:
        rest = tuple(j for j in keep if j != i)
        mi = _entropy_of(log_p, T, (i,)) + _entropy_of(log_p, T, rest) - h_all
        terms.append(mi.clamp(min=0.0))
    return sum(terms)


# -- products, conditionals, divergences ------------------------------------------


def product_of_marginals(log_p: Tensor, *, length: int | None = None) -> Tensor:
    """``log Π_i p(x_i)``, the factorized (mean-field) table of ``p`` (Eq. 5).

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch, V_1, ..., V_T)
        Normalized; positive wherever ``p`` is.

    Examples
    --------
    >>> import torch
    >>> copies = torch.tensor([[0.5, 0.0], [0.0, 0.5]])
    >>> product_of_marginals(copies.log()).exp()
    tensor([[0.2500, 0.2500],
            [0.2500, 0.2500]], dtype=torch.float64)
    """
    log_p, T, _ = check_joint_table(log_p, length)
    return _product_of_marginals(log_p, T)


def _product_of_marginals(log_p: Tensor, T: int) -> Tensor:
    out = torch.zeros_like(log_p)
    for i in range(T):
        out = out + _marginal(log_p, T, (i,), keepdim=True)
    return out


def joint_kl_divergence(
    log_p: Tensor, log_q: Tensor, *, length: int | None = None
) -> Tensor:
    """``KL(p ‖ q)`` between two joint tables over the same ``T`` token axes.

    Parameters
    ----------
    log_p, log_q : Tensor, shape (*batch, V_1, ..., V_T)
        Broadcastable normalized tables.
    length : int, optional
        ``T``; defaults to ``log_p.dim()``.

    Returns
    -------
    Tensor, shape (*batch,)
        ``+inf`` when ``p`` has mass where ``q`` has none.
    """
    log_p, T, _ = check_joint_table(log_p, length)
    log_q, _, _ = check_joint_table(log_q, T, name="log_q")
    log_p, log_q = torch.broadcast_tensors(log_p, log_q)
    return kl_divergence(log_p.flatten(-T), log_q.flatten(-T))


def log_max_ratio(log_p: Tensor, log_q: Tensor, *, length: int | None = None) -> Tensor:
    """``log M`` with ``M = sup_{x : p(x) > 0} p(x) / q(x)`` (paper, Eq. 19).

    ``M`` is the envelope constant of rejection sampling from ``p`` with proposals
    from ``q``, and its expected number of proposals; ``log M`` is the Rényi
    divergence of order infinity ``D_∞(p ‖ q)``.

    Parameters
    ----------
    log_p, log_q : Tensor, shape (*batch, V_1, ..., V_T)
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch,)
        ``+inf`` when ``q = 0`` somewhere ``p > 0``; ``>= 0`` always.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.5, 0.0], [0.0, 0.5]]).log()
    >>> log_max_ratio(p, product_of_marginals(p)).exp()
    tensor(2., dtype=torch.float64)
    """
    log_p, T, _ = check_joint_table(log_p, length)
    log_q, _, _ = check_joint_table(log_q, T, name="log_q")
    log_p, log_q = torch.broadcast_tensors(log_p, log_q)
    support = ~torch.isneginf(log_p)
    diff = torch.where(support, log_p - log_q, torch.full_like(log_p, -math.inf))
    return diff.flatten(-T).amax(-1).clamp(min=0.0)


def max_ratio(log_p: Tensor, log_q: Tensor, *, length: int | None = None) -> Tensor:
    """``M = sup_{x : p(x) > 0} p(x) / q(x)``; ``exp`` of :func:`log_max_ratio`."""
    return log_max_ratio(log_p, log_q, length=length).exp()


def _conditional_tables(log_p: Tensor, T: int, block: tuple, given: tuple) -> Tensor:
    # log p(x_A | x_C) of shape (*batch, [C axes], [A axes]), uniform given an
    # impossible context.
    union = tuple(sorted(set(block) | set(given)))
    joint = _marginal(log_p, T, union)
    order = [union.index(i) for i in given] + [union.index(i) for i in block]
    nb = joint.dim() - len(union)
    joint = joint.permute(*range(nb), *(nb + j for j in order))
    k = len(block)
    dims = list(range(-k, 0))
    evidence = torch.logsumexp(joint, dim=dims, keepdim=True)
    empty = torch.isneginf(evidence)
    size = math.prod(joint.shape[-k:])
    uniform = torch.full_like(joint, -math.log(size))
    return torch.where(empty, uniform, joint - torch.where(empty, 0.0, evidence))


def conditional_total_correlation_table(
    log_p: Tensor,
    positions: Iterable[int],
    given: Iterable[int] = (),
    *,
    length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Forward and reverse conditional total correlation for every context value.

    For a block ``A`` and context positions ``C``, at each context value ``x_C``
    (paper, Eq. 15 and 17)::

        TC→(x_C) = KL(p(x_A | x_C) ‖ Π_{i∈A} p(x_i | x_C))
        TC←(x_C) = KL(Π_{i∈A} p(x_i | x_C) ‖ p(x_A | x_C))

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    positions : sequence of int
        ``A``, the block; non-empty and disjoint from ``given``.
    given : sequence of int
        ``C``, the revealed context (may be empty).
    length : int, optional

    Returns
    -------
    forward, reverse : Tensor, shape (*batch, V_c1, ..., V_cm)
        One value per context configuration (context positions in increasing
        order). ``reverse`` is ``+inf`` where the factorized block reaches a
        configuration that is impossible given the context (Lemma C.1). Contexts of
        probability zero get 0 (their conditionals are uniform by convention).
    """
    log_p, T, _ = check_joint_table(log_p, length)
    block = _check_positions("positions", positions, T)
    context = _check_positions("given", given, T)
    if not block:
        raise ValueError("positions=[]: expected at least one position in the block")
    if set(block) & set(context):
        raise ValueError(
            f"positions={list(block)!r}, given={list(context)!r}: expected disjoint "
            "sets (a revealed position is not part of the block)"
        )
    cond = _conditional_tables(log_p, T, block, context)
    k = len(block)
    factorized = _product_of_marginals(cond, k)
    fwd = kl_divergence(cond.flatten(-k), factorized.flatten(-k))
    rev = kl_divergence(factorized.flatten(-k), cond.flatten(-k))
    return fwd, rev


def conditional_total_correlation(
    log_p: Tensor,
    positions: Iterable[int],
    context: Mapping[int, int] | None = None,
    *,
    length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """``TC→`` and ``TC←`` of a block given one context value (Eq. 15, 17).

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    positions : sequence of int
        The block ``A``.
    context : mapping of int to int, optional
        Revealed position to its value, ``{i: x_i}``; empty or ``None`` for the
        unconditional total correlation of ``A``.
    length : int, optional

    Returns
    -------
    forward, reverse : Tensor, shape (*batch,)
        ``reverse`` is ``+inf`` under support mismatch (Lemma C.1).

    Raises
    ------
    ValueError
        If a context value is outside its axis.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.5, 0.0], [0.0, 0.5]]).log()
    >>> fwd, rev = conditional_total_correlation(p, [0, 1])
    >>> round(fwd.item(), 6), rev.item()
    (0.693147, inf)
    """
    log_p, T, _ = check_joint_table(log_p, length)
    context = dict(context or {})
    given = _check_positions("context", list(context), T)
    fwd, rev = conditional_total_correlation_table(log_p, positions, given, length=T)
    index = []
    for i in given:
        size = log_p.shape[_axis(T, i)]
        value = check_int(f"context[{i}]", context[i], minimum=0)
        if value >= size:
            raise ValueError(f"context[{i}]={value!r}: expected a value in [0, {size})")
        index.append(value)
    tail = (Ellipsis, *index)
    return fwd[tail], rev[tail]


def factorized_decoder_log_probs(
    log_p: Tensor, blocks: Sequence[Sequence[int]], *, length: int | None = None
) -> Tensor:
    """``log q(x)`` of the blockwise factorized decoder with exact conditionals.

    ``q(x) = Π_m Π_{i∈B_m} p(x_i | x_{P_m})`` where ``P_m`` is the union of the
    blocks before ``m`` (paper, Eq. 4 and 5). With singleton blocks it is the
    one-token-per-step rollout in the order of ``blocks``, which equals ``p``.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    blocks : sequence of sequence of int
        An ordered partition of ``0..T-1`` into non-empty blocks.
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch, V_1, ..., V_T)
        Normalized. Where a prefix is impossible under ``p`` its conditionals are
        uniform (the convention of :func:`pmdm.ops.logspace.log_normalize`).

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.5, 0.0], [0.0, 0.5]]).log()
    >>> factorized_decoder_log_probs(p, [[0, 1]]).exp()
    tensor([[0.2500, 0.2500],
            [0.2500, 0.2500]], dtype=torch.float64)
    >>> factorized_decoder_log_probs(p, [[1], [0]]).exp()
    tensor([[0.5000, 0.0000],
            [0.0000, 0.5000]], dtype=torch.float64)
    """
    log_p, T, _ = check_joint_table(log_p, length)
    blocks = check_partition("blocks", blocks, T)
    out = torch.zeros_like(log_p)
    prefix: tuple = ()
    for block in blocks:
        log_prefix = _marginal(log_p, T, prefix, keepdim=True)
        empty = torch.isneginf(log_prefix)
        for i in block:
            # p(x_i | x_P) broadcast over the table; uniform given impossible x_P.
            joint = _marginal(log_p, T, tuple(sorted(prefix + (i,))), keepdim=True)
            uniform = -math.log(log_p.shape[_axis(T, i)])
            safe = torch.where(empty, torch.zeros_like(log_prefix), log_prefix)
            out = out + torch.where(empty, uniform, joint - safe)
        prefix = tuple(sorted(prefix + tuple(block)))
    return out


def check_partition(
    name: str, blocks: Sequence[Sequence[int]], length: int
) -> tuple[tuple[int, ...], ...]:
    """Return ``blocks`` as a tuple of tuples, or raise unless it is an ordered
    partition of ``0..length-1`` into non-empty blocks."""
    try:
        blocks = tuple(tuple(check_int(f"{name}[][]", i) for i in b) for b in blocks)
    except TypeError:
        raise TypeError(
            f"{name}={blocks!r}: expected a sequence of sequences of positions"
        ) from None
    flat = [i for b in blocks for i in b]
    if any(not b for b in blocks) or sorted(flat) != list(range(length)):
        raise ValueError(
            f"{name}={[list(b) for b in blocks]!r}: expected an ordered partition of "
            f"the positions 0..{length - 1} into non-empty blocks"
        )
    return blocks


# -- all subsets at once ----------------------------------------------------------


def subset_entropies(log_p: Tensor, *, length: int | None = None) -> Tensor:
    """``H(X_U)`` for every subset ``U`` of the positions.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
        With ``T <= MAX_SUBSET_POSITIONS``.
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch, 2^T)
        Entry ``u`` is ``H(X_U)`` for ``U = {i : bit i of u is set}``; entry 0 is 0.
    """
    log_p, T, _ = check_joint_table(log_p, length)
    if T > MAX_SUBSET_POSITIONS:
        raise ValueError(
            f"length={T!r}: expected at most {MAX_SUBSET_POSITIONS} positions to list "
            f"all 2^T subsets"
        )
    out = []
    for mask in range(1 << T):
        keep = tuple(i for i in range(T) if mask >> i & 1)
        out.append(_entropy_of(log_p, T, keep))
    return torch.stack(out, -1)


def information_curve(log_p: Tensor, *, length: int | None = None) -> Tensor:
    """The information curve ``Z_j = E[I(X_i ; X_S)]``, ``j = 1..T``.

    The expectation is over a uniformly random set ``S`` of ``j − 1`` positions and
    a uniformly random position ``i ∉ S``. ``Z_1 = 0`` and ``Σ_j Z_j = TC``: along a
    uniformly random order the mutual information of each new position with the
    revealed ones sums to ``Σ_i H(X_i) − H(X)``.

    Parameters
    ----------
    log_p : Tensor, shape (*batch, V_1, ..., V_T)
    length : int, optional

    Returns
    -------
    Tensor, shape (*batch, T)
        Entry ``j − 1`` is ``Z_j``.

    References
    ----------
    Chen, Cong, Li (2025), "Optimal inference schedules for masked diffusion
    models", arXiv 2511.04647 (the information curve; the indexing used here is the
    one verified numerically by the ``chen-cong-li-schedule`` statement of
    :mod:`pmdm.theory`).

    Examples
    --------
    >>> import math, torch
    >>> copies = torch.tensor([[0.5, 0.0], [0.0, 0.5]]).log()
    >>> (information_curve(copies) / math.log(2)).round(decimals=9)
    tensor([0., 1.], dtype=torch.float64)
    """
    log_p, T, _ = check_joint_table(log_p, length)
    h = subset_entropies(log_p, length=T)
    curve = []
    for j in range(1, T + 1):
        terms = []
        for subset in itertools.combinations(range(T), j - 1):
            mask = sum(1 << s for s in subset)
            for i in range(T):
                if mask >> i & 1:
                    continue
                terms.append(h[..., 1 << i] + h[..., mask] - h[..., mask | 1 << i])
        curve.append(torch.stack(terms, -1).mean(-1).clamp(min=0.0))
    return torch.stack(curve, -1)
