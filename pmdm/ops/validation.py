"""One place for argument checks, so that every message reads the same way.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong type) naming the
argument, the value received and what was expected.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
from torch import Tensor

#: Absolute tolerance for a probability row to count as normalized.
PROBS_ATOL = 1e-6


def _show(value: object) -> str:
    if isinstance(value, Tensor):
        if value.numel() <= 8:
            return repr(value.tolist())
        return f"tensor of shape {tuple(value.shape)}"
    return repr(value)


def check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    hint: str = "",
) -> int:
    """Return ``value`` as an int, or raise unless it is an integer in
    ``[minimum, maximum]``.

    ``hint`` is appended to the message (e.g. ``"; use the model's vocab size"``).
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name}={value!r}: expected an integer{hint}")
    value = operator.index(value)  # type: ignore[arg-type]
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r}: expected an integer >= {minimum}{hint}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value!r}: expected an integer <= {maximum}{hint}")
    return value


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number ``> 0``, else raise."""
    number = check_finite(name, value)
    if not number > 0:
        raise ValueError(f"{name}={value!r}: expected a finite number > 0")
    return number


def check_choice(name: str, value: object, choices) -> object:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``."""
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r}: expected one of {expected}")
    return value


def check_finite(name: str, value: object, *, minimum: float | None = None) -> float:
    """Return ``value`` as a finite float ``>= minimum``, or raise."""
    if isinstance(value, bool):
        raise TypeError(f"{name}={value!r}: expected a real number")
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r}: expected a real number") from None
    if not math.isfinite(result):
        raise ValueError(f"{name}={value!r}: expected a finite real number")
    if minimum is not None and result < minimum:
        raise ValueError(f"{name}={value!r}: expected a real number >= {minimum}")
    return result


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float inside the given interval, or raise."""
    try:
        value = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r}: expected a real number") from None
    if math.isnan(value):
        raise ValueError(f"{name}=nan: expected a real number")
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    interval = f"{left}{low if low is not None else '-inf'}, "
    interval += f"{high if high is not None else 'inf'}{right}"
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{name}={value!r}: expected a value in {interval}")
    return value


def check_probs(name: str, probs: Tensor, *, dim: int = -1) -> Tensor:
    """Check that ``probs`` holds probability rows along ``dim``.

    Entries must be finite, in ``[0, 1]``, and each row must sum to one within
    :data:`PROBS_ATOL`. Returns ``probs`` as float64.
    """
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.dim() == 0:
        raise ValueError(f"{name}={_show(probs)}: expected at least one dimension")
    if not torch.isfinite(probs).all():
        raise ValueError(f"{name}={_show(probs)}: expected finite probabilities")
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError(f"{name}={_show(probs)}: expected entries in [0, 1]")
    sums = probs.sum(dim)
    if not torch.allclose(sums, torch.ones_like(sums), atol=PROBS_ATOL, rtol=0):
        worst = (sums - 1).abs().max().item()
        raise ValueError(
            f"{name}={_show(probs)}: expected rows along dim {dim} summing to 1, "
            f"actual sums deviate by up to {worst:.3g}"
        )
    return probs


def check_shape(name: str, value: Tensor, shape: Sequence[int]) -> Tensor:
    """Raise unless ``value.shape`` equals ``shape``."""
    if tuple(value.shape) != tuple(shape):
        raise ValueError(
            f"{name}: expected shape {tuple(shape)}, actual {tuple(value.shape)}"
        )
    return value


def check_tokens(name: str, tokens: Tensor, *, length: int, vocab_size: int) -> Tensor:
    """Check a ``(*batch, T)`` tensor of token ids in ``[0, V)``; return it as long."""
    tokens = torch.as_tensor(tokens)
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise TypeError(
            f"{name}: expected integer token ids, actual dtype {tokens.dtype}"
        )
    if tokens.dim() == 0 or tokens.shape[-1] != length:
        raise ValueError(
            f"{name}: expected shape (*batch, {length}), actual {tuple(tokens.shape)}"
        )
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(
            f"{name}: expected token ids in [0, {vocab_size}), actual range "
            f"[{int(tokens.min())}, {int(tokens.max())}]"
        )
    return tokens.long()


def check_token_tensor(name: str, tokens: object) -> Tensor:
    """Return ``tokens`` as a long tensor with at least one dimension, or raise."""
    if not isinstance(tokens, Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of token ids, actual {type(tokens).__name__}"
        )
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex:
        raise TypeError(
            f"{name}: expected integer token ids, actual dtype {tokens.dtype}"
        )
    if tokens.dtype == torch.bool:
        raise TypeError(f"{name}: expected integer token ids, actual dtype torch.bool")
    if tokens.dim() == 0:
        raise ValueError(f"{name}: expected shape (*batch, T), actual a 0-d tensor")
    return tokens.long()
