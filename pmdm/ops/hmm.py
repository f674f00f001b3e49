"""Forward and forward-backward recursions for hidden Markov chains in log space.

Emissions enter as per-step log-likelihoods ``log_like[..., m, k] = log p(y_m | z_m = k)``
of whatever was observed at step ``m``. A step with nothing observed has log-likelihood
0 for every state, so masked observations need no special code.

References
----------
Rabiner (1989), "A tutorial on hidden Markov models", Proc. IEEE 77(2), Eq. 19-25.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pmdm.ops.logspace import log_normalize


class Filtered(NamedTuple):
    """Output of :func:`hmm_filter`.

    Attributes
    ----------
    log_evidence : Tensor, shape (*batch,)
        ``log p(y_1..y_M)``.
    log_predictive : Tensor, shape (*batch, M, K)
        ``log p(z_m | y_<m)``: the latent distribution before step ``m`` is seen.
    log_filtered : Tensor, shape (*batch, M, K)
        ``log p(z_m | y_≤m)``.
    """

    log_evidence: Tensor
    log_predictive: Tensor
    log_filtered: Tensor


def _propagate(log_filtered: Tensor, log_trans: Tensor) -> Tensor:
    # (*batch, K) x (*batch, K, K) -> (*batch, K): log Σ_j f_j A_jk.
    return torch.logsumexp(log_filtered.unsqueeze(-1) + log_trans, dim=-2)


def hmm_filter(log_init: Tensor, log_trans: Tensor, log_like: Tensor) -> Filtered:
    """Forward filtering with per-step normalization.

    Parameters
    ----------
    log_init : Tensor, shape (*batch, K)
        ``log p(z_1)``.
    log_trans : Tensor, shape (*batch, K, K)
        ``log p(z_{m+1} = k | z_m = j)``, rows the previous state ``j``.
    log_like : Tensor, shape (*batch, M, K)
        Per-step log-likelihood of the observations under each state.

    Returns
    -------
    Filtered

    Notes
    -----
    When the observations up to step ``m`` are impossible the evidence is ``-inf``
    and the filtered distribution falls back to uniform (see
    :func:`pmdm.ops.logspace.log_normalize`), so later steps stay defined.
    """
    steps = log_like.shape[-2]
    log_pred = log_init.expand(log_like.shape[:-2] + log_init.shape[-1:])
    log_evidence = torch.zeros(log_like.shape[:-2], dtype=log_like.dtype)
    predictive, filtered = [], []
    for m in range(steps):
        if m > 0:
            log_pred = _propagate(filtered[-1], log_trans)
        joint = log_pred + log_like[..., m, :]
        log_evidence = log_evidence + torch.logsumexp(joint, -1)
        predictive.append(log_pred)
        filtered.append(log_normalize(joint))
    return Filtered(
        log_evidence, torch.stack(predictive, -2), torch.stack(filtered, -2)
    )


def hmm_cavity(
    log_init: Tensor,
    log_trans: Tensor,
    log_like: Tensor,
    filtered: Filtered | None = None,
) -> Tensor:
    """``log p(z_m | y_≠m)``: each latent given every observation but its own step's.

    This is what the conditional of a hidden observation at step ``m`` needs:
    ``p(y'_m | y_≠m) = Σ_k p(z_m = k | y_≠m) p(y'_m | z_m = k)``. The smoothed
    posterior is ``log_normalize(cavity + log_like)``.

    Parameters
    ----------
    log_init, log_trans, log_like
        As in :func:`hmm_filter`.
    filtered : Filtered, optional
        ``hmm_filter(log_init, log_trans, log_like)`` when already computed.

    Returns
    -------
    Tensor, shape (*batch, M, K)
        Normalized; uniform where the other steps' observations are impossible.
    """
    steps = log_like.shape[-2]
    filt = (
        filtered if filtered is not None else hmm_filter(log_init, log_trans, log_like)
    )

    # Backward messages β_m(j) ∝ p(y_>m | z_m = j), normalized per step.
    log_beta = torch.zeros_like(log_like)
    for m in range(steps - 2, -1, -1):
        nxt = log_like[..., m + 1, :] + log_beta[..., m + 1, :]
        log_beta[..., m, :] = log_normalize(
            torch.logsumexp(log_trans + nxt.unsqueeze(-2), dim=-1)
        )
    return log_normalize(filt.log_predictive + log_beta)
