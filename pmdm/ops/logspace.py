"""Log-space helpers with the conventions of information theory.

Conventions, used everywhere in pmdm:

* ``0 · log 0 = 0``: outcomes of probability zero contribute nothing.
* ``KL(p ‖ q) = +inf`` as soon as some outcome has ``p > 0`` and ``q = 0``.
* ``logsumexp`` of a row that is all ``-inf`` is ``-inf`` (never NaN).
* :func:`log_normalize` of a row that is all ``-inf`` (no outcome possible) is the
  uniform row. This is the rule for conditionals given an impossible context: such
  a context carries no information about what follows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pmdm.ops.validation import check_probs


def logsumexp(log_w: Tensor, dim: int = -1) -> Tensor:
    """``log Σ exp(log_w)`` along ``dim``; an all ``-inf`` row gives ``-inf``."""
    return torch.logsumexp(log_w, dim)


def log_normalize(log_w: Tensor, dim: int = -1) -> Tensor:
    """Normalize log-weights along ``dim``; all ``-inf`` rows become uniform.

    Parameters
    ----------
    log_w : Tensor, shape (*batch, n) along ``dim``
        Unnormalized log-weights; ``+inf`` and NaN are not allowed.

    Returns
    -------
    Tensor
        Log-probabilities of the same shape, each row summing to one.

    Examples
    --------
    >>> import torch
    >>> log_normalize(torch.tensor([0.0, 0.0])).exp()
    tensor([0.5000, 0.5000])
    >>> log_normalize(torch.full((2,), -float("inf"))).exp()
    tensor([0.5000, 0.5000])
    """
    total = torch.logsumexp(log_w, dim, keepdim=True)
    empty = torch.isneginf(total)
    out = log_w - torch.where(empty, torch.zeros_like(total), total)
    uniform = torch.full_like(log_w, -math.log(log_w.shape[dim]))
    return torch.where(empty, uniform, out)


def log_probs_from_probs(
    probs: Tensor, *, name: str = "probs", dim: int = -1
) -> Tensor:
    """Validate probability rows and return their logarithm in float64.

    Raises
    ------
    ValueError
        If an entry is negative, not finite, or a row does not sum to one.
    """
    return check_probs(name, probs, dim=dim).log()


def xlogy(x: Tensor, log_y: Tensor) -> Tensor:
    """``x · log_y`` with ``0 · (anything) = 0``, including ``0 · (-inf)``."""
    return torch.where(x == 0, torch.zeros_like(log_y), x * log_y)


def entropy(log_probs: Tensor, dim: int = -1) -> Tensor:
    """Shannon entropy ``-Σ p log p`` in nats along ``dim``.

    Examples
    --------
    >>> import math, torch
    >>> round(entropy(torch.tensor([0.5, 0.5]).log()).item() / math.log(2), 6)
    1.0
    >>> entropy(torch.tensor([1.0, 0.0]).log()).item()
    0.0
    """
    return -xlogy(log_probs.exp(), log_probs).sum(dim)


def kl_divergence(log_p: Tensor, log_q: Tensor, dim: int = -1) -> Tensor:
    """``KL(p ‖ q) = Σ p (log p − log q)`` in nats, with the module's conventions.

    Outcomes with ``p = 0`` contribute 0; an outcome with ``p > 0`` and ``q = 0``
    makes the divergence ``+inf``. The result is clamped at 0 from below so that
    rounding never gives a negative divergence.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([0.5, 0.5]).log()
    >>> q = torch.tensor([1.0, 0.0]).log()
    >>> kl_divergence(q, p).item() > 0, kl_divergence(p, q).item()
    (True, inf)
    """
    log_p, log_q = torch.broadcast_tensors(log_p, log_q)
    p = log_p.exp()
    diff = torch.where(p == 0, torch.zeros_like(log_p), log_p - log_q)
    terms = torch.where(p == 0, torch.zeros_like(p), p * diff)
    return terms.sum(dim).clamp(min=0.0)


def sample_categorical(
    log_probs: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Draw one index per row from ``exp(log_probs)`` by the Gumbel-max trick.

    The noise is drawn in float64 whatever the dtype of ``log_probs``, so that
    probabilities down to about ``1e-300`` are respected.

    Parameters
    ----------
    log_probs : Tensor, shape (*batch, n)
        Normalized (or unnormalized) log-probabilities.
    generator : torch.Generator, optional
        Source of randomness; the global generator when omitted.

    Returns
    -------
    Tensor, shape (*batch,), long
    """
    log_probs = log_probs.to(torch.float64)
    # Noise from the generator's device, then moved (a CPU generator can drive a
    # decoder whose predictions live on an accelerator).
    device = generator.device if generator is not None else log_probs.device
    uniform = torch.rand(
        log_probs.shape, dtype=torch.float64, generator=generator, device=device
    ).to(log_probs.device)
    gumbel = -torch.log(-torch.log(uniform))
    return torch.argmax(log_probs + gumbel, dim=-1)
