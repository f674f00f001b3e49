"""Error and cost measures of any decoder on any target, exact or Monte Carlo.

Sequence-level measures of the decoder's output ``q`` against the target ``p``
(Zhang et al. 2026, arXiv 2602.00286, Sec. 5):

* ``forward_kl`` = KL(p ‖ q), ``reverse_kl`` = KL(q ‖ p), ``cross_entropy`` =
  E_q[−log p] (Eq. 13);
* ``incoherence`` = Pr_{x∼q}[p(x) ≤ τ] (Eq. 14); for blockwise targets also
  ``block_incoherence``, the expected fraction of blocks with ``p(x_B | x_P) ≤ τ``
  (Eq. 84);
* ``nfe``, ``proposals`` and ``steps`` per sequence.
"""

from __future__ import annotations

import math

import torch
from pyro.infer import TraceEnum_ELBO

from pmdm.decoding.decoder import Decoder
from pmdm.decoding.exact import output_distribution
from pmdm.metrics.blockwise import DEFAULT_TAU
from pmdm.metrics.estimate import Estimate, exact, monte_carlo
from pmdm.models.base import Target
from pmdm.ops.logspace import kl_divergence, xlogy
from pmdm.ops.validation import check_int, check_real

#: Measures reported for every target, in order.
MEASURES = (
    "forward_kl",
    "reverse_kl",
    "cross_entropy",
    "incoherence",
    "nfe",
    "proposals",
    "steps",
)

_ELBO_RTOL = 1e-6


def _oracle(target, predictor):
    if predictor is not None:
        return predictor
    from pmdm.predictors.oracle import OraclePredictor

    return OraclePredictor(target)


def _block_fraction(target: Target, x, tau: float):
    if not hasattr(target, "block_log_conditionals"):
        return None
    return (
        (target.block_log_conditionals(x) <= math.log(tau)).to(torch.float64).mean(-1)
    )


def exact_decoder_measures(
    target: Target, decoder: Decoder, predictor=None, tau: float = DEFAULT_TAU
) -> dict[str, Estimate]:
    """Every measure exactly, from the decoder's enumerated output distribution.

    Parameters
    ----------
    target : Target
        ``p``; small enough to enumerate (``V^T`` at most
        :data:`pmdm.models.base.MAX_ENUMERATION`).
    decoder : Decoder
    predictor : Predictor, optional
        What the decoder queries; the target's oracle by default.
    tau : float
        Incoherence threshold in ``(0, 1)``.

    Returns
    -------
    dict of str to Estimate
        The keys of :data:`MEASURES`, plus ``block_incoherence`` for blockwise
        targets.
    """
    tau = check_real("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True)
    predictor = _oracle(target, predictor)
    x = target.enumerate_sequences()
    dist = output_distribution(decoder, predictor, target.length)
    log_p, log_q = target.log_prob(x), dist.log_q
    q = log_q.exp()
    out = {
        "forward_kl": exact(kl_divergence(log_p, log_q)),
        "reverse_kl": exact(kl_divergence(log_q, log_p)),
        "cross_entropy": exact(-xlogy(q, log_p).sum()),
        "incoherence": exact((q * (log_p <= math.log(tau))).sum()),
        "nfe": exact(dist.nfe),
        "proposals": exact(dist.proposals),
        "steps": exact(dist.steps),
    }
    blocks = _block_fraction(target, x, tau)
    if blocks is not None:
        out["block_incoherence"] = exact((q * blocks).sum())
    return out


def monte_carlo_decoder_measures(
    target: Target,
    decoder: Decoder,
    num_sequences: int,
    predictor=None,
    tau: float = DEFAULT_TAU,
    generator: torch.Generator | None = None,
) -> dict[str, Estimate | None]:
    """Every measure by Monte Carlo with standard errors.

    ``N`` sequences are decoded and ``N`` drawn from the target. When the decoder is
    replayable, ``reverse_kl`` is Pyro's ``TraceEnum_ELBO`` of the target's model and
    the decoder's guide on the decoded sequences (with the per-sequence terms giving
    the standard error), and ``forward_kl`` scores the target's samples by replaying
    the decoder. For a decoder that is not replayable (random order, remasking) both
    KLs are ``None``: use :func:`exact_decoder_measures` on small targets.

    Parameters
    ----------
    num_sequences : int
        ``N >= 2``.
    generator : torch.Generator, optional
        The decoder's randomness; target samples use the global generator.
    """
    n = check_int("num_sequences", num_sequences, minimum=2)
    tau = check_real("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True)
    predictor = _oracle(target, predictor)
    out: dict[str, Estimate | None] = {"forward_kl": None, "reverse_kl": None}
    if generator is None:
        seed = int(torch.randint(2**62, ()))
        generator = torch.Generator().manual_seed(seed)
    if decoder.replayable:
        # Decode through the guide, keeping the generator's state so that the ELBO
        # can redraw exactly the same sequences.
        state = generator.get_state()
        guide = decoder.guide(target, predictor, generator)
        guide(num_sequences=n)
        result = guide.last_result
        x, log_q = result.tokens, result.trajectory.log_q_path
        reverse = monte_carlo(log_q - target.log_prob(x))
        again = torch.Generator().set_state(state)
        out["reverse_kl"] = _through_elbo(
            target, decoder.guide(target, predictor, again), n, reverse
        )
        x_p = target.sample(n)
        out["forward_kl"] = monte_carlo(
            target.log_prob(x_p) - decoder.log_prob(predictor, x_p)
        )
    else:
        result = decoder.decode(
            predictor, num_sequences=n, length=target.length, generator=generator
        )
        x = result.tokens
    log_p = target.log_prob(x)
    traj = result.trajectory
    out.update(
        cross_entropy=monte_carlo(-log_p),
        incoherence=monte_carlo((log_p <= math.log(tau)).to(torch.float64)),
        nfe=monte_carlo(traj.nfe.to(torch.float64)),
        proposals=monte_carlo(traj.proposals.to(torch.float64)),
        steps=monte_carlo(traj.steps.to(torch.float64)),
    )
    blocks = _block_fraction(target, x, tau)
    if blocks is not None:
        out["block_incoherence"] = monte_carlo(blocks)
    return out


def _through_elbo(target, guide, n: int, direct: Estimate) -> Estimate:
    # The guide redraws the same sequences (same generator state).
    if not math.isfinite(direct.estimate):
        return direct
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    loss = elbo.loss(target.model, guide, num_sequences=n)
    value = loss / n
    if abs(value - direct.estimate) > _ELBO_RTOL * (1 + abs(value)):
        raise RuntimeError(
            f"TraceEnum_ELBO gives KL(q ‖ p) = {value!r} but the per-sequence terms "
            f"give {direct.estimate!r}; the guide's sites do not match the model's"
        )
    return Estimate(value, direct.stderr, direct.method, direct.n)
