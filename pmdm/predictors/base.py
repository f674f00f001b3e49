"""The predictor contract shared by oracles, noisy oracles and real models."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Predictor(Protocol):
    """An any-order conditional predictor, the only thing a decoder sees.

    Attributes
    ----------
    vocab_size : int
        ``V``, the width of the last axis of the returned log-probabilities.
    mask_id : int
        The token id that marks a masked (not yet revealed) position in the input.
        For toy targets it is ``V`` (outside the vocabulary); for a real model it is
        the model's own mask id, whose log-probability is always ``-inf``.

    Notes
    -----
    ``predictor(tokens)`` takes ``tokens`` of shape ``(*batch, T)`` (long, masked
    positions equal to ``mask_id``) and returns normalized log-probabilities of shape
    ``(*batch, T, V)``: row ``i`` is the predicted distribution ``p(x_i | x_S)`` of
    position ``i`` given the revealed set ``S``. Rows of revealed positions carry no
    meaning and are ignored by decoders. Each call counts as one function evaluation
    (NFE).
    """

    vocab_size: int
    mask_id: int

    def __call__(self, tokens: Tensor) -> Tensor: ...


def check_masked_tokens(
    name: str,
    tokens: object,
    *,
    vocab_size: int,
    mask_id: int,
    length: int | None = None,
) -> Tensor:
    """Check predictor input: token ids in ``[0, V)`` or ``mask_id``; return long.

    Parameters
    ----------
    name : str
        The argument name used in messages.
    tokens : Tensor, shape (*batch, T)
    vocab_size : int
        ``V``.
    mask_id : int
        The mask id (``V`` for toy targets; inside ``[0, V)`` for real models).
    length : int, optional
        ``T``, when the predictor has a fixed length.

    Raises
    ------
    TypeError
        If ``tokens`` is not an integer tensor.
    ValueError
        If its shape or an id is wrong.
    """
    if not isinstance(tokens, Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of token ids, actual "
            f"{type(tokens).__name__}"
        )
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex:
        raise TypeError(
            f"{name}: expected integer token ids, actual dtype {tokens.dtype}"
        )
    if tokens.dtype == torch.bool:
        raise TypeError(f"{name}: expected integer token ids, actual dtype torch.bool")
    if tokens.dim() == 0 or (length is not None and tokens.shape[-1] != length):
        expected = "T" if length is None else str(length)
        raise ValueError(
            f"{name}: expected shape (*batch, {expected}), actual {tuple(tokens.shape)}"
        )
    tokens = tokens.long()
    bad = ((tokens < 0) | (tokens >= vocab_size)) & (tokens != mask_id)
    if bad.any():
        value = int(tokens[bad][0])
        raise ValueError(
            f"{name}: expected token ids in [0, {vocab_size}) or the mask id "
            f"{mask_id}, actual {value}"
        )
    return tokens
