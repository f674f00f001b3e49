"""Error measures of a blockwise decoder of a Block-HMM, exact or Monte Carlo.

For a decoder ``q`` and the target ``p`` (Zhang et al. 2026, arXiv 2602.00286):

* ``reverse_kl``: ``KL(q ‖ p) = E_q[log q − log p]`` (sampling risk; Eq. 18);
* ``forward_kl``: ``KL(p ‖ q) = E_p[log p − log q]`` (information loss; Eq. 16);
* ``cross_entropy``: ``E_q[−log p] = KL(q ‖ p) + H(q)`` (Eq. 13);
* ``incoherence``: the expected fraction of blocks with ``p(x_B | x_P) ≤ τ``
  under ``q`` (the per-block rate of Eq. 84);
* ``tc_forward``: ``Σ_m E_{x_P∼p}[TC→_m(x_P)]`` and ``tc_reverse``:
  ``Σ_m E_{x_P∼q}[TC←_m(x_P)]``, the decompositions of Eq. 16 and 18 evaluated with
  the exact per-block total correlation. For the factorized decoder they equal the
  forward and the reverse KL.
"""

from __future__ import annotations

import math

import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from torch import Tensor

from pmdm.decoding.block import BlockGuide, site_log_probs
from pmdm.metrics.estimate import Estimate, exact, monte_carlo
from pmdm.ops.logspace import kl_divergence, xlogy
from pmdm.ops.validation import check_int, check_real

#: Names of the measures, in reporting order.
MEASURES = (
    "reverse_kl",
    "forward_kl",
    "cross_entropy",
    "incoherence",
    "tc_forward",
    "tc_reverse",
)

#: Default incoherence threshold (paper, Eq. 84).
DEFAULT_TAU = 1e-8

#: Relative tolerance between Pyro's ELBO and the direct per-sequence sum.
_ELBO_RTOL = 1e-6


def _check_tau(tau: float) -> float:
    return check_real("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True)


def exact_block_measures(
    guide: BlockGuide, tau: float = DEFAULT_TAU
) -> dict[str, Estimate]:
    """Every measure of :data:`MEASURES`, exactly, by enumerating all ``2^T``
    sequences.

    Parameters
    ----------
    guide : BlockGuide
        The decoder; its ``target`` is the Block-HMM ``p``.
    tau : float
        Incoherence threshold in ``(0, 1)``.

    Raises
    ------
    ValueError
        If the target has more sequences than
        :data:`pmdm.models.base.MAX_ENUMERATION`.
    """
    tau = _check_tau(tau)
    target = guide.target
    x = target.enumerate_sequences()
    log_p_blocks = target.block_log_conditionals(x)  # (S, M)
    log_q_blocks = guide.block_log_probs(x)
    log_p, log_q = log_p_blocks.sum(-1), log_q_blocks.sum(-1)
    q, p = log_q.exp(), log_p.exp()
    tc_fwd, tc_rev = target.block_tc(target.block_predictive(x))
    incoherent = (log_p_blocks <= math.log(tau)).to(torch.float64).mean(-1)
    values = {
        "reverse_kl": kl_divergence(log_q, log_p),
        "forward_kl": kl_divergence(log_p, log_q),
        "cross_entropy": -xlogy(q, log_p).sum(),
        "incoherence": (q * incoherent).sum(),
        "tc_forward": _weighted(p, tc_fwd.sum(-1)),
        "tc_reverse": _weighted(q, tc_rev.sum(-1)),
    }
    return {name: exact(values[name]) for name in MEASURES}


def _weighted(w: Tensor, values: Tensor) -> Tensor:
    # Σ w·v with 0·inf = 0.
    return torch.where(w == 0, torch.zeros_like(values), w * values).sum()


def monte_carlo_block_measures(
    guide: BlockGuide, num_sequences: int, tau: float = DEFAULT_TAU
) -> dict[str, Estimate]:
    """Every measure of :data:`MEASURES` by Monte Carlo with standard errors.

    ``N`` sequences are decoded by the guide and ``N`` are drawn from the target,
    with the global torch generator (seed it with ``pyro.set_rng_seed``). The reverse
    KL is Pyro's ``TraceEnum_ELBO`` on the decoded sequences (the latent chain
    enumerated in the model); its standard error comes from the per-sequence terms
    ``log q(x) − log p(x)``, whose mean must agree with the ELBO. The forward KL scores
    the target's samples under the guide by replaying it.

    Parameters
    ----------
    guide : BlockGuide
    num_sequences : int
        ``N >= 2``.
    tau : float
        Incoherence threshold in ``(0, 1)``.
    """
    n = check_int("num_sequences", num_sequences, minimum=2)
    tau = _check_tau(tau)
    target = guide.target

    # Decoder side: x ~ q, scored under p.
    trace = poutine.trace(guide).get_trace(num_sequences=n)
    x = trace.nodes["_RETURN"]["value"]
    log_q_blocks = site_log_probs(trace, target.num_blocks)
    log_p_blocks = target.block_log_conditionals(x)
    log_ratio = log_q_blocks.sum(-1) - log_p_blocks.sum(-1)
    reverse = monte_carlo(log_ratio)
    reverse = _through_elbo(guide, trace, n, reverse)
    _, tc_rev = target.block_tc(target.block_predictive(x))

    # Target side: x ~ p, scored under q.
    x_p = target.sample(n)
    log_gap = target.log_prob(x_p) - guide.log_prob(x_p)
    tc_fwd, _ = target.block_tc(target.block_predictive(x_p))

    incoherent = (log_p_blocks <= math.log(tau)).to(torch.float64).mean(-1)
    return {
        "reverse_kl": reverse,
        "forward_kl": monte_carlo(log_gap),
        "cross_entropy": monte_carlo(-log_p_blocks.sum(-1)),
        "incoherence": monte_carlo(incoherent),
        "tc_forward": monte_carlo(tc_fwd.sum(-1)),
        "tc_reverse": monte_carlo(tc_rev.sum(-1)),
    }


def _through_elbo(
    guide: BlockGuide, trace: poutine.Trace, n: int, direct: Estimate
) -> Estimate:
    # Pyro's TraceEnum_ELBO on the same decoded sequences: loss = Σ_n (log q − log p).
    if not math.isfinite(direct.estimate):
        return direct  # KL(q ‖ p) = inf; the ELBO is -inf and carries no more.
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    loss = elbo.loss(
        guide.target.model, poutine.replay(guide, trace=trace), num_sequences=n
    )
    value = loss / n
    if abs(value - direct.estimate) > _ELBO_RTOL * (1 + abs(value)):
        raise RuntimeError(
            f"TraceEnum_ELBO gives KL(q ‖ p) = {value!r} but the per-sequence terms "
            f"give {direct.estimate!r}; the guide's sites do not match the model's"
        )
    return Estimate(value, direct.stderr, direct.method, direct.n)
