"""The predictor contract shared by oracles, noisy oracles and real models."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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
