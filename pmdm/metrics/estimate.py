"""Estimates that carry their estimator, sample size and standard error."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Estimate:
    """A number with how it was obtained.

    Attributes
    ----------
    estimate : float
        The value; ``inf`` is a legitimate value (an infinite divergence).
    stderr : float
        Standard error; 0 for exact values, and for an infinite Monte Carlo
        divergence, which is certain once one sample has ``p = 0 < q``.
    method : str
        ``"exact"`` (enumeration) or ``"monte-carlo"``.
    n : int or None
        Monte Carlo sample size; ``None`` when exact.
    """

    estimate: float
    stderr: float
    method: str
    n: int | None = None

    def to_dict(self) -> dict:
        """Plain dict for JSON; infinities become the strings ``"inf"``/``"-inf"``."""
        return {key: json_number(value) for key, value in asdict(self).items()}

    def __str__(self) -> str:
        if self.method == "exact" or not math.isfinite(self.estimate):
            return f"{self.estimate:.6g}"
        return f"{self.estimate:.6g} ± {self.stderr:.2g}"


def json_number(value):
    """Map non-finite floats to strings so that the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return value


def exact(value: Tensor | float) -> Estimate:
    """An exact value (standard error 0)."""
    return Estimate(float(value), 0.0, "exact", None)


def monte_carlo(samples: Tensor) -> Estimate:
    """Sample mean with standard error ``s / sqrt(N)`` of i.i.d. ``samples``.

    An infinite sample makes the estimate that infinity with standard error 0 (the
    quantities estimated here are infinite as soon as such a sample can occur).

    Parameters
    ----------
    samples : Tensor, shape (N,)

    Raises
    ------
    ValueError
        If ``samples`` is empty, or holds NaN or both ``+inf`` and ``-inf``.

    Examples
    --------
    >>> import torch
    >>> monte_carlo(torch.tensor([1.0, 3.0]))
    Estimate(estimate=2.0, stderr=1.0, method='monte-carlo', n=2)
    """
    samples = torch.as_tensor(samples, dtype=torch.float64).reshape(-1)
    n = samples.numel()
    if n == 0:
        raise ValueError("samples: expected at least one sample, actual 0")
    if torch.isnan(samples).any():
        raise ValueError("samples: expected no NaN")
    pos, neg = torch.isposinf(samples).any(), torch.isneginf(samples).any()
    if pos and neg:
        raise ValueError("samples: expected no mix of +inf and -inf")
    if pos or neg:
        return Estimate(math.inf if pos else -math.inf, 0.0, "monte-carlo", n)
    mean = samples.mean().item()
    stderr = samples.std(unbiased=True).item() / math.sqrt(n) if n > 1 else math.inf
    return Estimate(mean, stderr, "monte-carlo", n)
