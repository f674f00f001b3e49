"""Measurements on a real model, where the target distribution is unknown.

Without a target, what can be measured is the model against itself: how sure it is
of what a step reveals (entropy, confidence, margin), and how much its own
predictions at a block of positions depend on one another, the model's forward
conditional total correlation (THEORY.md section 2; paper Eq. 15)

``TC→(ctx) = KL(p_θ^chain(x_B | ctx) ‖ Π_{i∈B} p_θ(x_i | ctx))``,

where ``p_θ^chain`` reveals the block one position at a time, each drawn from the
model's conditional given the context and the positions already drawn. It is the
forward KL that one factorized parallel step over ``B`` costs against the model's
own sequential decoding of the same block: large values say that revealing ``B`` at
once throws away dependence the model knows about. With an exact predictor the
chain joint is the true ``p(x_B | ctx)`` (in every order) and ``TC→`` is the paper's
quantity.

Every function takes any predictor of ``pmdm.predictors.base.Predictor``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from pmdm.ops.validation import check_int, check_token_tensor
from pmdm.predictors.base import Predictor

__all__ = [
    "ChainTCEstimate",
    "RevealedMeasures",
    "chain_total_correlation",
    "confidence",
    "entropy",
    "margin",
    "revealed_measures",
    "token_log_prob",
]


def entropy(log_probs: Tensor) -> Tensor:
    """Entropy in nats of each predicted distribution.

    Parameters
    ----------
    log_probs : Tensor, shape (..., V)
        Normalized log-probabilities; ``-inf`` entries (the mask column) count as
        probability zero.

    Returns
    -------
    Tensor, shape (...)
        ``-Σ_v p_v log p_v`` with ``0 log 0 = 0``, in the dtype of ``log_probs``.

    Examples
    --------
    >>> round(float(entropy(torch.tensor([0.5, 0.5, 0.0]).log())), 6)
    0.693147
    """
    probs = log_probs.exp()
    terms = torch.where(probs > 0, probs * log_probs, torch.zeros_like(probs))
    return -terms.sum(-1)


def token_log_prob(log_probs: Tensor, tokens: Tensor) -> Tensor:
    """Log-probability of the given token under each predicted distribution.

    Parameters
    ----------
    log_probs : Tensor, shape (..., V)
    tokens : Tensor, shape (...)
        Token ids in ``[0, V)``.

    Returns
    -------
    Tensor, shape (...)
    """
    return log_probs.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)


def confidence(log_probs: Tensor, tokens: Tensor) -> Tensor:
    """Probability of the given token (LLaDA's ``low_confidence`` score of a token).

    Parameters
    ----------
    log_probs : Tensor, shape (..., V)
    tokens : Tensor, shape (...)

    Returns
    -------
    Tensor, shape (...)
        ``p(tokens)``, in ``[0, 1]``.
    """
    return token_log_prob(log_probs, tokens).exp()


def margin(log_probs: Tensor) -> Tensor:
    """Top-1 minus top-2 probability of each predicted distribution.

    Parameters
    ----------
    log_probs : Tensor, shape (..., V)
        With ``V >= 2``.

    Returns
    -------
    Tensor, shape (...)
    """
    top = log_probs.topk(2, dim=-1).values.exp()
    return top[..., 0] - top[..., 1]


@dataclass(frozen=True)
class RevealedMeasures:
    """Per-position measures of one decoding step.

    Every field has shape ``(*batch, T)`` and holds ``nan`` at positions the step did
    not reveal.

    Attributes
    ----------
    entropy : Tensor
        Entropy (nats) of the predicted distribution the token was drawn from.
    confidence : Tensor
        Probability of the revealed token.
    margin : Tensor
        Top-1 minus top-2 probability of that distribution.
    """

    entropy: Tensor
    confidence: Tensor
    margin: Tensor


def revealed_measures(
    log_probs: Tensor, tokens: Tensor, revealed: Tensor
) -> RevealedMeasures:
    """Entropy, confidence and margin of what one step revealed.

    Parameters
    ----------
    log_probs : Tensor, shape (*batch, T, V)
        The predictor's output that the step sampled from.
    tokens : Tensor, shape (*batch, T)
        The tokens after the step.
    revealed : Tensor, shape (*batch, T), bool
        ``True`` where the step revealed a position.

    Returns
    -------
    RevealedMeasures
        With ``nan`` outside ``revealed``.

    Raises
    ------
    ValueError
        If the shapes disagree.
    """
    if tokens.shape != log_probs.shape[:-1] or revealed.shape != tokens.shape:
        raise ValueError(
            f"log_probs, tokens, revealed: expected shapes (*batch, T, V), (*batch, T), "
            f"(*batch, T); actual {tuple(log_probs.shape)}, {tuple(tokens.shape)}, "
            f"{tuple(revealed.shape)}"
        )
    safe_tokens = torch.where(revealed, tokens.long(), torch.zeros_like(tokens.long()))
    nan = torch.full(
        tokens.shape, math.nan, dtype=log_probs.dtype, device=log_probs.device
    )
    return RevealedMeasures(
        entropy=torch.where(revealed, entropy(log_probs), nan),
        confidence=torch.where(revealed, confidence(log_probs, safe_tokens), nan),
        margin=torch.where(revealed, margin(log_probs), nan),
    )


@dataclass(frozen=True)
class ChainTCEstimate:
    """A Monte Carlo estimate of the model's forward conditional total correlation.

    Attributes
    ----------
    value : float
        Mean of the per-sample log-ratios, nats.
    stderr : float
        Standard error of the mean (sample standard deviation over ``sqrt(N)``).
    num_samples : int
        ``N``.
    nfe : int
        Predictor calls made (``|B| + 1`` per chunk of samples).
    log_ratios : Tensor, shape (N,)
        ``log p_chain(x_B) - Σ_i log p_θ(x_i | ctx)`` for each sample, float64.
    samples : Tensor, shape (N, |B|)
        The sampled block values, in the order of ``block``.
    estimator : str
        ``"monte_carlo"``.
    """

    value: float
    stderr: float
    num_samples: int
    nfe: int
    log_ratios: Tensor
    samples: Tensor
    estimator: str = "monte_carlo"


def _sample_categorical(log_probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One draw per row by inverting the CDF with a float64 uniform.

    ``log_probs`` has shape ``(N, V)``; returns ``(N,)`` long. Zero-probability
    entries (the mask column) are never drawn.
    """
    probs = log_probs.to(torch.float64).exp()
    cdf = probs.cumsum(-1)  # (N, V)
    device = generator.device if generator is not None else cdf.device
    uniform = torch.rand(
        cdf.shape[0], dtype=torch.float64, generator=generator, device=device
    )
    target = uniform.to(cdf.device) * cdf[:, -1]  # below the total mass, float64
    index = torch.searchsorted(cdf, target.unsqueeze(-1), right=True).squeeze(-1)
    return index.clamp_max(cdf.shape[-1] - 1)


def chain_total_correlation(
    predictor: Predictor,
    context: Tensor,
    block: Sequence[int] | Tensor,
    *,
    num_samples: int = 256,
    order: Sequence[int] | Tensor | None = None,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> ChainTCEstimate:
    """Monte Carlo estimate of the model's own ``TC→`` of a block given its context.

    Draws ``N`` samples ``x_B`` from the model's chain-rule joint (positions of the
    block revealed one at a time in ``order``, each from the predictor's conditional
    given the context and the positions drawn so far) and averages

    ``log p_chain(x_B | ctx) - Σ_{i∈B} log p_θ(x_i | ctx)``,

    whose expectation under ``p_chain`` is ``KL(p_chain ‖ Π_i p_θ(·_i | ctx))``.

    Parameters
    ----------
    predictor : Predictor
        Any predictor; its ``nfe`` grows by :attr:`ChainTCEstimate.nfe`.
    context : Tensor, shape (T,)
        The sequence the block is measured in. Block positions are masked by this
        function whatever they hold; other masked positions stay masked (the model
        marginalizes them, as it does during decoding).
    block : sequence of int or Tensor, shape (|B|,)
        Distinct positions in ``[0, T)``.
    num_samples : int
        ``N >= 2``.
    order : sequence of int, optional
        The order in which the chain reveals the block, a permutation of ``block``;
        by default ``block`` as given. For an exact predictor the result does not
        depend on it; for a real model it may.
    chunk_size : int, optional
        Largest number of samples per predictor call (memory: each call returns
        ``chunk_size × T × V`` log-probabilities); by default all ``N`` at once.
    generator : torch.Generator, optional
        Source of the float64 uniforms; fixes the result.

    Returns
    -------
    ChainTCEstimate

    Raises
    ------
    ValueError
        If ``block`` or ``order`` is invalid or ``num_samples < 2``.

    Notes
    -----
    Samples are batched: the chain costs ``|B|`` predictor calls on ``N`` rows plus
    one call for the factorized marginals, whatever ``N`` (``chunk_size`` splits the
    rows into several calls). The estimator is unbiased for ``TC→`` of the chain
    joint; its standard error is reported so that a test or a sweep can judge it.

    References
    ----------
    Zhang et al., "Generation Order and Parallel Decoding in Masked Diffusion Models:
    An Information-Theoretic Perspective", 2026, arXiv:2602.00286, Eq. 15-16.

    Examples
    --------
    >>> from pmdm.adapters.hf import HFPredictor
    >>> from pmdm.adapters.tiny import TinyMDM, TinyMDMConfig
    >>> predictor = HFPredictor(TinyMDM(TinyMDMConfig(vocab_size=8, mask_token_id=7)))
    >>> context = torch.tensor([1, 2, 7, 7, 7])
    >>> estimate = chain_total_correlation(
    ...     predictor, context, [2, 3], num_samples=64,
    ...     generator=torch.Generator().manual_seed(0))
    >>> estimate.num_samples, estimate.nfe, estimate.samples.shape
    (64, 3, torch.Size([64, 2]))
    """
    context = check_token_tensor("context", context)
    if context.dim() != 1:
        raise ValueError(f"context: expected shape (T,), actual {tuple(context.shape)}")
    length = context.shape[0]
    num_samples = check_int("num_samples", num_samples, minimum=2)
    positions = _check_positions("block", block, length)
    if order is None:
        order_list = positions
    else:
        order_list = _check_positions("order", order, length)
        if sorted(order_list) != sorted(positions):
            raise ValueError(
                f"order={order_list!r}: expected a permutation of block={positions!r}"
            )
    chunk_size = (
        num_samples
        if chunk_size is None
        else check_int("chunk_size", chunk_size, minimum=1)
    )
    mask_id = predictor.mask_id
    index = torch.tensor(positions, device=context.device)
    masked = context.index_fill(0, index, mask_id)  # (T,)
    nfe = 0

    # Factorized marginals p_θ(x_i | ctx) of the block positions: (|B|, V).
    log_marginals = predictor(masked.unsqueeze(0))[0, index].to(torch.float64)
    nfe += 1

    log_ratios, samples = [], []
    for start in range(0, num_samples, chunk_size):
        n = min(chunk_size, num_samples - start)
        tokens = masked.expand(n, length).clone()  # (n, T)
        log_chain = torch.zeros(n, dtype=torch.float64, device=context.device)

        # Reveal the block one position at a time from the model's conditional.
        for position in order_list:
            log_probs = predictor(tokens)[:, position].to(torch.float64)  # (n, V)
            nfe += 1
            drawn = _sample_categorical(log_probs, generator).to(context.device)
            log_chain = log_chain + log_probs.gather(-1, drawn.unsqueeze(-1)).squeeze(
                -1
            )
            tokens[:, position] = drawn

        # Score the same samples under the product of the marginals.
        values = tokens[:, index]  # (n, |B|)
        log_factorized = log_marginals.T.gather(0, values).sum(-1)
        log_ratios.append(log_chain - log_factorized)
        samples.append(values)

    ratios = torch.cat(log_ratios)
    stderr = ratios.std(correction=1) / math.sqrt(num_samples)
    return ChainTCEstimate(
        value=float(ratios.mean()),
        stderr=float(stderr),
        num_samples=num_samples,
        nfe=nfe,
        log_ratios=ratios,
        samples=torch.cat(samples),
    )


def _check_positions(name: str, positions: object, length: int) -> list[int]:
    if isinstance(positions, Tensor):
        positions = positions.tolist()
    if not isinstance(positions, Sequence) or isinstance(positions, (str, bytes)):
        raise TypeError(f"{name}={positions!r}: expected a sequence of positions")
    result = [check_int(f"{name}[{k}]", p, minimum=0) for k, p in enumerate(positions)]
    if not result:
        raise ValueError(f"{name}=[]: expected at least one position")
    if len(set(result)) != len(result):
        raise ValueError(f"{name}={result!r}: expected distinct positions")
    if max(result) >= length:
        raise ValueError(f"{name}={result!r}: expected positions in [0, {length})")
    return result
