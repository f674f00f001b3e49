"""Argument checks for the adapters, in the message format of ``pmdm.ops.validation``.

Every message reads ``name=value: expected ...`` so that tests can match on the
argument name and the value.
"""

from __future__ import annotations

import math
import operator

import torch
from torch import Tensor


def check_int(
    name: str, value: object, *, minimum: int | None = None, hint: str = ""
) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name}={value!r}: expected an integer{hint}")
    value = operator.index(value)  # type: ignore[arg-type]
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r}: expected an integer >= {minimum}{hint}")
    return value


def check_real(name: str, value: object, *, minimum: float | None = None) -> float:
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
