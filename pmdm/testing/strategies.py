"""Public hypothesis strategies that build valid pmdm instances by construction.

Every strategy draws small integers and flags first (sizes, then integer weights),
so hypothesis shrinks towards few positions, a small vocabulary and simple tables
(a point mass, or the uniform table when zeros are excluded). Probabilities are
float64 and normalized exactly by one division.

=========================  ==================================================
:func:`joint_tables`       ``probs`` of shape ``(V,)*T``, with or without zeros
:func:`conditional_tables` prompt law ``(X,)`` and ``p(y | x)`` ``(X, V, .., V)``
:func:`block_partitions`   ordered partitions of ``0..T-1`` into blocks
:func:`schedules`          step sizes summing to ``T``
:func:`block_hmm_params`   keyword arguments of :class:`~pmdm.models.block_hmm.BlockHMM`
:func:`block_hmms`         the Block-HMMs themselves (``η = 0`` included)
:func:`token_hmm_params`   ``(init, trans, emit, length)`` of a token-level HMM
:func:`token_hmms`         ``pmdm.models.hmm.TokenHMM`` objects
:func:`table_targets`      ``pmdm.models.table.TableTarget`` objects
:func:`noisy_predictors`   ``NoisyPredictor`` around a target's oracle
:func:`orders`             order names and permutations of a decoder
:func:`decoder_schedules`  ``Schedule`` objects (fixed, steps, threshold, ..)
:func:`decoders`           ``pmdm.decoding.Decoder`` objects
=========================  ==================================================

Examples
--------
>>> from hypothesis import given
>>> @given(joint_tables(zeros=True))
... def test_has_a_zero(probs):
...     assert (probs == 0).any() and abs(probs.sum().item() - 1) < 1e-12
>>> test_has_a_zero()
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import Tensor

from pmdm.models.block_hmm import BlockHMM

#: Parity-noise values every Block-HMM strategy favours (``η = 0`` is the hard
#: parity constraint of Lemma C.1).
SPECIAL_ETAS = (0.0, 1e-8, 1e-3, 0.1, 0.5, 1.0)

#: Content-bit rates favoured by :func:`block_hmm_params` (0 and 1 are degenerate).
SPECIAL_RATES = (0.0, 0.1, 0.5, 0.9, 1.0)


def _check_range(name: str, low: int, high: int, minimum: int) -> None:
    if low < minimum or high < low:
        raise ValueError(f"{name}=({low}, {high}): expected {minimum} <= min <= max")


def _positive_with_zero(w: Tensor, zero_at: int) -> Tensor:
    w = w.clone()
    w[zero_at] = 0.0
    if not (w > 0).any():
        w[(zero_at + 1) % len(w)] = 1.0
    return w


@st.composite
def _probs(
    draw, count: int, zeros: bool | None, max_weight: int, extreme: bool
) -> Tensor:
    low = 1 if zeros is False else 0
    ints = draw(st.lists(st.integers(low, max_weight), min_size=count, max_size=count))
    w = torch.tensor(ints, dtype=torch.float64)
    if zeros is True:
        if count < 2:
            raise ValueError(
                f"zeros=True: expected at least two entries to hold a zero and a "
                f"positive one, actual {count}"
            )
        w = _positive_with_zero(w, draw(st.integers(0, count - 1)))
    elif not (w > 0).any():
        w[0] = 1.0
    if extreme:
        powers = draw(st.lists(st.integers(0, 12), min_size=count, max_size=count))
        w = w * torch.tensor([10.0**-k for k in powers], dtype=torch.float64)
    return w / w.sum()


@st.composite
def joint_tables(
    draw,
    *,
    min_length: int = 1,
    max_length: int = 3,
    min_vocab: int = 2,
    max_vocab: int = 3,
    max_entries: int = 81,
    zeros: bool | None = None,
    max_weight: int = 16,
    extreme: bool = False,
) -> Tensor:
    """Joint probability tables ``probs[x_1, ..., x_T]`` of shape ``(V,)*T``.

    Parameters
    ----------
    min_length, max_length : int
        Range of ``T``.
    min_vocab, max_vocab : int
        Range of ``V``.
    max_entries : int
        Largest ``V^T``; longer draws are cut to the longest length that fits.
    zeros : bool or None
        ``True``: at least one zero entry; ``False``: every entry positive;
        ``None``: either.
    max_weight : int
        Entries are integer weights in ``[0, max_weight]`` (``[1, ..]`` without
        zeros), normalized.
    extreme : bool
        Multiply each weight by ``10^-k``, ``k`` in ``[0, 12]``: probabilities
        spanning twelve orders of magnitude.

    Returns
    -------
    SearchStrategy of Tensor, shape (V,)*T, float64
        Non-negative, at least one positive entry, summing to one.
    """
    _check_range("min_length, max_length", min_length, max_length, 1)
    _check_range("min_vocab, max_vocab", min_vocab, max_vocab, 1)
    if zeros is True and min_vocab < 2:
        raise ValueError(
            f"min_vocab={min_vocab!r}: expected >= 2 with zeros=True (a table needs a "
            "zero and a positive entry)"
        )
    V = draw(st.integers(min_vocab, max_vocab))
    T = draw(st.integers(min_length, max_length))
    while T > min_length and V**T > max_entries:
        T -= 1
    count = V**T
    probs = draw(_probs(count, zeros, max_weight, extreme))
    return probs.reshape((V,) * T)


@st.composite
def conditional_tables(
    draw,
    *,
    max_prompts: int = 3,
    max_length: int = 3,
    max_vocab: int = 3,
    max_entries: int = 27,
    zeros: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """A prompt law and a conditional answer table ``p(y | x)``.

    Returns
    -------
    SearchStrategy of (Tensor, Tensor)
        ``prompt_probs`` of shape ``(X,)`` and ``cond_probs`` of shape
        ``(X, V, ..., V)`` with ``n`` answer axes; every row ``cond_probs[x]``
        sums to one (zeros as in :func:`joint_tables`).
    """
    X = draw(st.integers(1, max_prompts))
    prompt = draw(_probs(X, None if X > 1 else False, 16, False))
    V = draw(st.integers(2, max_vocab))
    n = draw(st.integers(1, max_length))
    while n > 1 and V**n > max_entries:
        n -= 1
    rows = [draw(_probs(V**n, zeros, 16, False)) for _ in range(X)]
    return prompt, torch.stack(rows).reshape((X,) + (V,) * n)


@st.composite
def block_partitions(draw, length: int) -> tuple[tuple[int, ...], ...]:
    """Ordered partitions of ``0..length-1`` into non-empty blocks.

    Shrinks towards one block holding every position in order.
    """
    order = draw(st.permutations(range(length)))
    cuts = draw(st.lists(st.booleans(), min_size=length - 1, max_size=length - 1))
    blocks, current = [], [order[0]]
    for position, cut in zip(order[1:], cuts, strict=True):
        if cut:
            blocks.append(tuple(sorted(current)))
            current = []
        current.append(position)
    blocks.append(tuple(sorted(current)))
    return tuple(blocks)


@st.composite
def schedules(draw, length: int) -> tuple[int, ...]:
    """Step sizes ``s_1..s_K >= 1`` summing to ``length``; shrinks to ``(length,)``."""
    cuts = draw(st.lists(st.booleans(), min_size=length - 1, max_size=length - 1))
    sizes, current = [], 1
    for cut in cuts:
        if cut:
            sizes.append(current)
            current = 0
        current += 1
    sizes.append(current)
    return tuple(sizes)


def _rates():
    return st.sampled_from(SPECIAL_RATES) | st.floats(0.0, 1.0)


@st.composite
def block_hmm_params(
    draw,
    *,
    max_states: int = 3,
    min_block_size: int = 1,
    max_block_size: int = 4,
    max_blocks: int = 2,
    max_length: int = 8,
    etas=None,
    rates=None,
) -> dict:
    """Keyword arguments of :class:`~pmdm.models.block_hmm.BlockHMM`.

    Parameters
    ----------
    max_states, max_block_size, max_blocks : int
        Upper bounds of ``K``, ``B`` and ``M``.
    min_block_size : int
        Lower bound of ``B`` (``B = 1`` is a lone parity bit).
    max_length : int
        Largest ``T = B·M`` (enumeration over ``2^T`` sequences stays cheap).
    etas : SearchStrategy of float, optional
        The parity noise; by default :data:`SPECIAL_ETAS` (``η = 0`` included) or
        any value in ``[0, 1]``.
    rates : SearchStrategy of float, optional
        The content-bit rates; by default :data:`SPECIAL_RATES` (0 and 1
        included) or any value in ``[0, 1]``.

    Returns
    -------
    SearchStrategy of dict
        With keys ``num_states``, ``stay``, ``rho``, ``block_size``, ``length``,
        ``eta``.
    """
    K = draw(st.integers(1, max_states))
    _check_range("min_block_size, max_block_size", min_block_size, max_block_size, 1)
    B = draw(st.integers(min_block_size, max_block_size))
    M = draw(st.integers(1, max(1, min(max_blocks, max_length // B))))
    eta_strategy = (
        etas
        if etas is not None
        else (st.sampled_from(SPECIAL_ETAS) | st.floats(0.0, 1.0))
    )
    return {
        "num_states": K,
        "stay": draw(st.sampled_from((0.9, 0.5, 1.0, 0.0)) | st.floats(0.0, 1.0)),
        "rho": tuple(
            draw(st.lists(_rates() if rates is None else rates, min_size=K, max_size=K))
        ),
        "block_size": B,
        "length": B * M,
        "eta": draw(eta_strategy),
    }


def block_hmms(**kwargs) -> st.SearchStrategy[BlockHMM]:
    """:class:`~pmdm.models.block_hmm.BlockHMM` targets; arguments as
    :func:`block_hmm_params`."""
    return block_hmm_params(**kwargs).map(lambda params: BlockHMM(**params))


@st.composite
def token_hmm_params(
    draw,
    *,
    max_states: int = 3,
    max_vocab: int = 3,
    max_length: int = 4,
    zeros: bool | None = None,
) -> tuple[Tensor, Tensor, Tensor, int]:
    """``(init, trans, emit, length)`` of a token-level HMM.

    Returns
    -------
    SearchStrategy of tuple
        ``init`` of shape ``(K,)``, ``trans`` ``(K, K)`` (rows the previous
        state), ``emit`` ``(K, V)``: float64 probability rows (zeros as in
        :func:`joint_tables`; a row never is all zero); ``length`` ``T >= 1``.
    """
    K = draw(st.integers(1, max_states))
    V = draw(st.integers(2, max_vocab))
    T = draw(st.integers(1, max_length))
    row_zeros = zeros if zeros is not True else None

    def rows(count: int, width: int) -> Tensor:
        z = row_zeros if width > 1 else False
        return torch.stack([draw(_probs(width, z, 8, False)) for _ in range(count)])

    init = rows(1, K)[0]
    trans = rows(K, K)
    emit = rows(K, V)
    if zeros is True:
        # Put the demanded zero in the emissions (width V >= 2).
        k = draw(st.integers(0, K - 1))
        emit[k] = draw(_probs(V, True, 8, False))
    return init, trans, emit, T


def token_hmms(**kwargs):
    """``pmdm.models.hmm.TokenHMM`` targets; arguments as :func:`token_hmm_params`.

    The class is imported when the strategy is built, so this module imports even
    where :mod:`pmdm.models.hmm` does not exist.
    """
    from pmdm.models.hmm import TokenHMM

    return token_hmm_params(**kwargs).map(lambda args: TokenHMM(*args))


def table_targets(**kwargs):
    """``pmdm.models.table.TableTarget`` targets built with ``from_dense`` from
    :func:`joint_tables` (same arguments); imported lazily like
    :func:`token_hmms`."""
    from pmdm.models.table import TableTarget

    return joint_tables(**kwargs).map(TableTarget.from_dense)


def log_tables(**kwargs) -> st.SearchStrategy[Tensor]:
    """``log`` of :func:`joint_tables` (``-inf`` at zeros), the layout of
    :mod:`pmdm.metrics.information`."""
    return joint_tables(**kwargs).map(torch.log)


# -- predictors with model error and decoders ---------------------------------------

#: Model-error levels every :func:`noisy_predictors` strategy favours.
SPECIAL_LEVELS = (0.0, 0.5, 1.0, 3.0)

#: Order names :func:`orders` draws, simplest first (shrinking goes left).
ORDER_NAMES = (
    "l2r",
    "r2l",
    "entropy",
    "confidence",
    "margin",
    "random",
    "sampled-confidence",
)

#: Step samplers :func:`decoders` draws, simplest first.
SAMPLER_NAMES = ("factorized", "joint", "rejection")


def noisy_predictors(
    targets=None,
    *,
    levels=None,
    supports=("keep", "full"),
):
    """``pmdm.predictors.noisy.NoisyPredictor`` objects around a target's oracle.

    Parameters
    ----------
    targets : SearchStrategy of Target, optional
        Default: :func:`table_targets` with ``T <= 3``.
    levels : SearchStrategy of float, optional
        Default: :data:`SPECIAL_LEVELS` (0, the oracle itself, included) or any
        value in ``[0, 5]``.
    supports : sequence of str
        ``"keep"`` and/or ``"full"`` (see the predictor).

    Returns
    -------
    SearchStrategy of NoisyPredictor
        Its ``base`` is the target's
        :class:`~pmdm.predictors.oracle.OraclePredictor` (``base.target`` is the
        target); shrinks towards level 0, noise seed 0 and the first support.
    """
    from pmdm.predictors.noisy import SUPPORTS, NoisyPredictor
    from pmdm.predictors.oracle import OraclePredictor

    supports = tuple(supports)
    if not supports or any(s not in SUPPORTS for s in supports):
        raise ValueError(f"supports={supports!r}: expected values from {SUPPORTS}")
    targets = targets if targets is not None else table_targets(max_length=3)
    levels = (
        levels
        if levels is not None
        else st.sampled_from(SPECIAL_LEVELS) | st.floats(0.0, 5.0)
    )

    def build(target, level, seed, support):
        return NoisyPredictor(OraclePredictor(target), level, seed, support=support)

    return st.builds(
        build, targets, levels, st.integers(0, 2**31 - 1), st.sampled_from(supports)
    )


def orders(length: int, *, names=ORDER_NAMES, permutations: bool = True):
    """Order arguments of a decoder for sequences of ``length`` positions.

    Parameters
    ----------
    length : int
        ``T >= 1``.
    names : sequence of str
        Order names allowed (a subset of :data:`ORDER_NAMES`).
    permutations : bool
        Also draw permutations of ``0..T-1`` (tuples).

    Returns
    -------
    SearchStrategy of str or tuple of int
        Shrinks to ``"l2r"`` (or the first name given).
    """
    if length < 1:
        raise ValueError(f"length={length!r}: expected an integer >= 1")
    unknown = [n for n in names if n not in ORDER_NAMES]
    if unknown or not names:
        raise ValueError(f"names={tuple(names)!r}: expected names from {ORDER_NAMES}")
    out = st.sampled_from(tuple(names))
    if permutations:
        out = out | st.permutations(range(length)).map(tuple)
    return out


@st.composite
def decoder_schedules(draw, length: int, *, kinds=None):
    """Schedule objects of :mod:`pmdm.decoding.schedules` for ``T = length``.

    Parameters
    ----------
    length : int
        ``T >= 1``.
    kinds : sequence of str, optional
        Among ``"fixed"``, ``"steps"``, ``"threshold"``, ``"factor"``,
        ``"entropy-budget"`` (all by default; ``"fixed"`` first).

    Returns
    -------
    SearchStrategy of Schedule
        ``FixedSize(k)`` with ``1 <= k <= T``, ``StepsSchedule(s)`` with
        ``1 <= s <= T`` over the whole sequence, ``ThresholdSchedule(τ)``,
        ``FactorSchedule(f)`` and ``EntropyBudget(γ)``; shrinks to ``FixedSize(1)``.
    """
    from pmdm.decoding.schedules import (
        EntropyBudget,
        FactorSchedule,
        FixedSize,
        StepsSchedule,
        ThresholdSchedule,
    )

    if length < 1:
        raise ValueError(f"length={length!r}: expected an integer >= 1")
    all_kinds = ("fixed", "steps", "threshold", "factor", "entropy-budget")
    kinds = tuple(kinds) if kinds is not None else all_kinds
    if not kinds or any(k not in all_kinds for k in kinds):
        raise ValueError(f"kinds={kinds!r}: expected names from {all_kinds}")
    kind = draw(st.sampled_from(kinds))
    if kind == "fixed":
        return FixedSize(draw(st.integers(1, length)))
    if kind == "steps":
        return StepsSchedule(draw(st.integers(1, length)))
    if kind == "threshold":
        return ThresholdSchedule(
            draw(st.sampled_from((0.9, 0.5, 1.0)) | st.floats(0, 1))
        )
    if kind == "factor":
        return FactorSchedule(draw(st.sampled_from((1.0, 0.5)) | st.floats(0.0, 3.0)))
    return EntropyBudget(draw(st.sampled_from((0.5, 0.0)) | st.floats(0.0, 3.0)))


@st.composite
def decoders(
    draw,
    length: int,
    *,
    exact: bool = True,
    order_names=ORDER_NAMES,
    schedule_kinds=None,
    samplers=SAMPLER_NAMES,
    temperatures=None,
    remask: bool = False,
):
    """``pmdm.decoding.Decoder`` objects: orders × schedules × step samplers.

    Parameters
    ----------
    length : int
        ``T``, for permutations and step counts.
    exact : bool
        Only combinations that :func:`pmdm.decoding.exact.output_distribution`
        enumerates: the random order with the fixed, steps or threshold schedules,
        the sampled-confidence order with the factorized sampler.
    order_names, schedule_kinds, samplers
        What to draw from (see :func:`orders`, :func:`decoder_schedules`,
        :data:`SAMPLER_NAMES`).
    temperatures : SearchStrategy of float, optional
        Default: 1, 0, 0.5 or 2 (shrinks to 1).
    remask : bool
        Also draw a :class:`~pmdm.decoding.decoder.Remask` (or none).

    Returns
    -------
    SearchStrategy of Decoder
        Shrinks to ``Decoder("l2r", FixedSize(1), "factorized")``. The rejection
        sampler always gets a positive temperature (greedy marginals can miss the
        greedy joint, leaving no finite envelope).
    """
    from pmdm.decoding.decoder import Decoder, Remask

    if any(s not in SAMPLER_NAMES for s in samplers) or not samplers:
        raise ValueError(
            f"samplers={tuple(samplers)!r}: expected names from {SAMPLER_NAMES}"
        )
    order = draw(orders(length, names=order_names))
    kinds = schedule_kinds
    if exact and order == "random":
        allowed = ("fixed", "steps", "threshold")
        kinds = tuple(k for k in (kinds or allowed) if k in allowed) or ("fixed",)
    schedule = draw(decoder_schedules(length, kinds=kinds))
    # Always one draw for the sampler, so that shrinking never prefers an order
    # for the choice it saves.
    sampler = draw(st.sampled_from(tuple(samplers)))
    if exact and order == "sampled-confidence":
        sampler = "factorized"
    temperature = draw(
        temperatures
        if temperatures is not None
        else st.sampled_from((1.0, 0.0, 0.5, 2.0))
    )
    if sampler == "rejection" and temperature == 0:
        # Greedy marginals can miss the greedy joint: no envelope M exists.
        temperature = 1.0
    rounds = None
    if remask:
        rounds = draw(
            st.none()
            | st.builds(Remask, st.integers(1, 2), st.integers(1, max(1, length)))
        )
    return Decoder(order, schedule, sampler, temperature, rounds)
