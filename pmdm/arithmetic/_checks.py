"""Uniform argument checks for the arithmetic package.

Every public entry point of :mod:`pmdm.arithmetic` validates its arguments through
these helpers so that messages read the same everywhere: the argument, its value,
what was expected.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None
) -> int:
    """Return ``value`` if it is an int in ``[low, high]``, else raise.

    Parameters
    ----------
    name : str
        The argument's name, quoted in the message.
    value : Any
        The value to check; ``bool`` is rejected although it subclasses ``int``.
    low, high : int, optional
        Inclusive bounds.

    Returns
    -------
    int
        ``value`` itself.

    Raises
    ------
    TypeError
        If ``value`` is not an int.
    ValueError
        If ``value`` lies outside ``[low, high]``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {name}={value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {name}={value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {name}={value!r}")
    return value


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number > 0, got {name}={value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")
    return number


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ValueError."""
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {expected}; got {name}={value!r}")
    return value
