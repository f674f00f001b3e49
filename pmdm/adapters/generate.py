"""LLaDA's sampler as a pmdm decoder, generation from prompts, and what it measured.

LLaDA generates by filling a canvas (the prompt, then ``G`` masks) in semi-
autoregressive blocks, each in a fixed number of steps; at every step each masked
position of the current block draws a token, and the ``k`` whose draw was most
probable are kept (``low_confidence`` remasking) or ``k`` chosen at random
(``random``). In pmdm's terms that is

- the order :class:`~pmdm.decoding.orders.SampledConfidence` (``low_confidence``)
  or :class:`~pmdm.decoding.orders.RandomOrder` (``random``),
- the schedule :class:`~pmdm.decoding.schedules.StepsSchedule` ``(steps,
  block_length)``,
- the factorized step sampler at the given temperature,

composed by :class:`~pmdm.decoding.decoder.Decoder` (:func:`llada_decoder`). At
temperature 0 it reproduces LLaDA's output token for token (with the mask token
excluded from sampling, pmdm's contract; ``tests/test_llada_equivalence.py``).

:func:`generate` runs any such decoder from prompts and returns the tokens, the
trajectory, per-step measurements, the order statistics, the NFE and, on request,
the model's own forward conditional total correlation of each block given its
context (:func:`block_total_correlation`). :func:`trace_decode` runs a decoder as a
Pyro guide with one ``Delta`` site per generated position.

References
----------
Nie et al., "Large Language Diffusion Models", 2025, arXiv:2502.09992 (Sec. 2.4,
App. B: low-confidence remasking, semi-autoregressive blocks, classifier-free
guidance). Zhang et al., 2026, arXiv:2602.00286, Eq. 15 (forward conditional TC).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import Tensor

from pmdm.adapters.measure import ChainTCEstimate, chain_total_correlation
from pmdm.adapters.prompts import GuidedPredictor, prompt_canvas, run_by_length
from pmdm.decoding.decoder import Decoder, DecodeResult, Trajectory
from pmdm.decoding.orders import OrderPolicy, make_order
from pmdm.decoding.schedules import StepsSchedule
from pmdm.ops.validation import check_finite, check_int, check_token_tensor
from pmdm.predictors.base import Predictor

__all__ = [
    "LLADA_REMASKING",
    "GenerateResult",
    "StepMeasures",
    "block_total_correlation",
    "decoder_guide",
    "generate",
    "llada_decoder",
    "resolve_order",
    "step_measures",
    "trace_decode",
]

#: LLaDA's remasking strategies and the pmdm order policy that each one is.
LLADA_REMASKING = {"low_confidence": "sampled-confidence", "random": "random"}


def resolve_order(order: str | OrderPolicy) -> OrderPolicy:
    """An order policy from LLaDA's remasking name or any pmdm order.

    Parameters
    ----------
    order : str or OrderPolicy
        ``"low_confidence"`` (pmdm's ``"sampled-confidence"``), ``"random"``, any
        name of :data:`pmdm.decoding.orders.ORDERS` (``"entropy"``,
        ``"confidence"``, ``"margin"``, ``"l2r"``, ...) or a policy.

    Returns
    -------
    OrderPolicy

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if isinstance(order, str) and order in LLADA_REMASKING:
        order = LLADA_REMASKING[order]
    try:
        return make_order(order)
    except ValueError as exc:
        raise ValueError(
            f"order={order!r}: expected 'low_confidence', 'random' or a pmdm order "
            f"name ({exc})"
        ) from None


def llada_decoder(
    steps: int,
    block_length: int | None = None,
    remasking: str = "low_confidence",
    temperature: float = 0.0,
) -> Decoder:
    """LLaDA's sampler as a pmdm :class:`~pmdm.decoding.decoder.Decoder`.

    Parameters
    ----------
    steps : int
        Total number of steps over the generated part, a multiple of the number of
        blocks.
    block_length : int, optional
        Length of the semi-autoregressive blocks; must divide the generation
        length. ``None``: one block (the whole generated part).
    remasking : {"low_confidence", "random"}
        Which drawn tokens a step keeps: the most probable draws (pmdm's
        ``"sampled-confidence"`` order) or uniformly random ones (``"random"``).
    temperature : float
        ``0`` keeps the argmax at every position; above 0 each position draws from
        its prediction at that temperature (float64 Gumbel noise).

    Returns
    -------
    Decoder
        ``Decoder(order, StepsSchedule(steps, block_length), "factorized",
        temperature)``.

    Raises
    ------
    ValueError
        For an unknown ``remasking`` or a bad ``steps``, ``block_length`` or
        ``temperature``.

    Notes
    -----
    Within a block of ``m`` positions decoded in ``s = steps / num_blocks`` steps,
    step ``j`` reveals ``m // s + (j < m % s)`` positions, as LLaDA does. When
    ``s > m`` LLaDA still runs the model at the ``s - m`` steps that reveal nothing;
    pmdm skips them, so its NFE is ``num_blocks * min(s, m)`` where LLaDA's is
    ``steps``. The skipped calls change nothing at temperature 0 (the tokens are
    the same); above 0 they only consume random numbers.

    The mask token never wins: the predictor gives it probability 0 (LLaDA's
    published code leaves its logit in, so a masked position may be "revealed" as
    the mask and stay a hole).

    Examples
    --------
    >>> decoder = llada_decoder(steps=8, block_length=4)
    >>> decoder.order.name, decoder.schedule, decoder.temperature
    ('sampled-confidence', StepsSchedule(steps=8, block_length=4), 0.0)
    """
    if remasking not in LLADA_REMASKING:
        raise ValueError(
            f"remasking={remasking!r}: expected one of {sorted(LLADA_REMASKING)}"
        )
    return Decoder(
        LLADA_REMASKING[remasking],
        StepsSchedule(steps, block_length),
        "factorized",
        temperature,
    )


# -- measurements ----------------------------------------------------------------------


@dataclass(frozen=True)
class StepMeasures:
    """What each decoding step revealed, from a trajectory.

    Every field has shape ``(N, S)``, ``S`` the most steps any sequence took; step
    ``s`` is the decoder's ``s``-th predictor call on that sequence. Means are over
    the positions the step revealed, ``nan`` where it revealed none.

    Attributes
    ----------
    revealed : Tensor, long
        Positions revealed.
    entropy : Tensor, float64
        Mean entropy (nats) of the predictions the revealed tokens came from.
    confidence : Tensor, float64
        Mean top probability of those predictions.
    token_prob : Tensor, float64
        Mean probability of the revealed token under its prediction (LLaDA's
        ``low_confidence`` score).
    """

    revealed: Tensor
    entropy: Tensor
    confidence: Tensor
    token_prob: Tensor

    def row(self, index: int) -> list[dict[str, Any]]:
        """The steps of sequence ``index`` as a list of plain dicts (for JSON)."""
        return [
            {
                "step": s,
                "revealed": int(self.revealed[index, s]),
                "entropy": float(self.entropy[index, s]),
                "confidence": float(self.confidence[index, s]),
                "token_prob": float(self.token_prob[index, s]),
            }
            for s in range(self.revealed.shape[-1])
            if int(self.revealed[index, s]) > 0
        ]


def step_measures(trajectory: Trajectory) -> StepMeasures:
    """Per-step counts and mean entropy, confidence and token probability.

    Parameters
    ----------
    trajectory : Trajectory
        Of ``N`` sequences of length ``T``.

    Returns
    -------
    StepMeasures
        Fields of shape ``(N, S)``, ``S = max(trajectory.steps)``.

    Examples
    --------
    >>> from pmdm.decoding.schedules import FixedSize
    >>> class Uniform:
    ...     vocab_size, mask_id = 2, 2
    ...     def __call__(self, tokens):
    ...         return torch.full(tokens.shape + (2,), -0.6931471805599453)
    >>> out = Decoder("l2r", FixedSize(2)).decode(Uniform(), num_sequences=1, length=3)
    >>> m = step_measures(out.trajectory)
    >>> m.revealed.tolist(), m.confidence.tolist()
    ([[2, 1]], [[0.5, 0.5]])
    """
    num_steps = max(int(trajectory.steps.max()), 0) if trajectory.steps.numel() else 0
    steps = torch.arange(num_steps)
    # (N, T, S): position t was revealed at step s.
    at = trajectory.reveal_step.unsqueeze(-1) == steps
    revealed = at.sum(-2)

    def mean(values: Tensor) -> Tensor:
        total = torch.where(at, values.unsqueeze(-1), 0.0).sum(-2)
        return torch.where(revealed > 0, total / revealed.clamp(min=1), math.nan)

    return StepMeasures(
        revealed=revealed,
        entropy=mean(trajectory.entropy),
        confidence=mean(trajectory.confidence),
        token_prob=mean(trajectory.token_prob),
    )


def _block_positions(
    prompt_length: int, gen_length: int, block_length: int, block: int
) -> list[int]:
    start = prompt_length + block * block_length
    return list(range(start, min(start + block_length, prompt_length + gen_length)))


def block_total_correlation(
    predictor: Predictor,
    tokens: Tensor,
    *,
    prompt_length: int,
    block_length: int,
    block: int = 0,
    num_samples: int = 256,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> ChainTCEstimate:
    """The model's own ``TC→`` of a generated block given what precedes it.

    The context is the canvas as it stood when the block began under
    semi-autoregressive decoding: the prompt and the blocks before it revealed (as
    in ``tokens``), this block and every later one masked. The block's positions are
    estimated by :func:`pmdm.adapters.measure.chain_total_correlation`: the model's
    chain-rule joint of the block against the product of its marginals, by Monte
    Carlo with a standard error. It says how much one factorized parallel step over
    the whole block would cost on this model and context.

    Parameters
    ----------
    predictor : Predictor
        The predictor that decoded (a :class:`GuidedPredictor` with guidance).
    tokens : Tensor, shape (T,)
        A decoded canvas: the prompt, then the generated tokens.
    prompt_length : int
        ``P``; the generated part is ``tokens[P:]``.
    block_length : int
        Block length used to decode.
    block : int
        Which block, from 0.
    num_samples, chunk_size, generator
        As for :func:`~pmdm.adapters.measure.chain_total_correlation`.

    Returns
    -------
    ChainTCEstimate

    Raises
    ------
    ValueError
        If ``block`` lies outside the generated part.
    """
    tokens = check_token_tensor("tokens", tokens)
    if tokens.dim() != 1:
        raise ValueError(f"tokens: expected shape (T,), actual {tuple(tokens.shape)}")
    prompt_length = check_int("prompt_length", prompt_length, minimum=0)
    block_length = check_int("block_length", block_length, minimum=1)
    block = check_int("block", block, minimum=0)
    gen_length = tokens.shape[0] - prompt_length
    num_blocks = math.ceil(gen_length / block_length) if gen_length > 0 else 0
    if block >= num_blocks:
        raise ValueError(
            f"block={block!r}: expected a block in [0, {num_blocks}) "
            f"({gen_length} generated positions / block_length {block_length})"
        )
    positions = _block_positions(prompt_length, gen_length, block_length, block)
    context = tokens.clone()
    context[positions[0] :] = predictor.mask_id
    return chain_total_correlation(
        predictor,
        context,
        positions,
        num_samples=num_samples,
        chunk_size=chunk_size,
        generator=generator,
    )


# -- generation ------------------------------------------------------------------------


@dataclass
class GenerateResult:
    """What :func:`generate` produced for ``N`` prompts of one length ``P``.

    Attributes
    ----------
    tokens : Tensor, shape (N, P + G)
        The canvas after decoding: the prompt, unchanged, then ``G`` generated tokens.
    prompt_length : int
        ``P``.
    trajectory : Trajectory
        The decoder's record: reveal step of each position (``-1`` on the prompt),
        NFE (decoder predictor calls), ``log q`` of the path, and the entropy,
        confidence and token probability seen at each reveal.
    per_step : StepMeasures
        Per-step counts and means, from ``trajectory``.
    forward_passes : int or None
        Forward passes of the model for the batch this result ran in (with
        guidance one pass carries the conditional and unconditional rows); ``None``
        when the predictor does not count them.
    block_tc : list of list of ChainTCEstimate
        ``block_tc[n][m]``: the model's ``TC→`` of block ``m`` of sequence ``n``
        given its context (:func:`block_total_correlation`); empty lists unless
        asked for.
    settings : dict
        The arguments of the run.
    """

    tokens: Tensor
    prompt_length: int
    trajectory: Trajectory
    per_step: StepMeasures
    forward_passes: int | None = None
    block_tc: list[list[ChainTCEstimate]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def generated(self) -> Tensor:
        """The generated tokens, shape ``(N, G)``."""
        return self.tokens[:, self.prompt_length :]

    @property
    def nfe(self) -> Tensor:
        """Decoder predictor calls per sequence, shape ``(N,)``."""
        return self.trajectory.nfe

    def tokens_per_step(self) -> Tensor:
        """Generated positions per step, shape ``(N,)``."""
        return self.trajectory.tokens_per_step()

    def kendall_tau(self) -> Tensor:
        """Kendall's τ between reveal step and position over the generated part,
        shape ``(N,)``; 1 for left to right."""
        return self.trajectory.kendall_tau()

    def select(self, rows: Sequence[int] | Tensor) -> GenerateResult:
        """The result restricted to some sequences (``forward_passes`` stays the
        batch's)."""
        index = torch.as_tensor(rows, dtype=torch.long)
        trajectory = Trajectory(
            **{
                name: getattr(self.trajectory, name)[index]
                for name in self.trajectory.__dataclass_fields__
            }
        )
        return GenerateResult(
            tokens=self.tokens[index],
            prompt_length=self.prompt_length,
            trajectory=trajectory,
            per_step=StepMeasures(
                **{
                    name: getattr(self.per_step, name)[index]
                    for name in self.per_step.__dataclass_fields__
                }
            ),
            forward_passes=self.forward_passes,
            block_tc=[self.block_tc[i] for i in index.tolist()]
            if self.block_tc
            else [],
            settings=dict(self.settings),
        )

    def to_dict(self, row: int = 0) -> dict[str, Any]:
        """Sequence ``row`` as plain Python values, ready for JSON.

        Non-finite floats stay floats (``nan`` for the prompt's per-position
        measures); write with :func:`pmdm.studies.runner.atomic_write_json`, which
        turns them into strings.
        """
        traj = self.trajectory
        tokens = self.tokens[row]
        return {
            "prompt_ids": tokens[: self.prompt_length].tolist(),
            "generated_ids": tokens[self.prompt_length :].tolist(),
            "prompt_length": self.prompt_length,
            "nfe": int(traj.nfe[row]),
            "forward_passes": self.forward_passes,
            "steps": int(traj.steps[row]),
            "tokens_per_step": float(traj.tokens_per_step()[row]),
            "kendall_tau": float(traj.kendall_tau()[row]),
            "log_q_path": float(traj.log_q_path[row]),
            "reveal_step": traj.reveal_step[row].tolist(),
            "entropy": traj.entropy[row].tolist(),
            "confidence": traj.confidence[row].tolist(),
            "token_prob": traj.token_prob[row].tolist(),
            "step_measures": self.per_step.row(row),
            "block_tc": [
                {
                    "block": m,
                    "value": estimate.value,
                    "stderr": estimate.stderr,
                    "num_samples": estimate.num_samples,
                    "nfe": estimate.nfe,
                    "estimator": estimate.estimator,
                }
                for m, estimate in enumerate(
                    self.block_tc[row] if self.block_tc else []
                )
            ],
        }


class _Progress:
    """A predictor that advances a progress bar by one at each call."""

    def __init__(self, predictor: Predictor, bar: Any) -> None:
        self.predictor = predictor
        self.bar = bar
        self.vocab_size = predictor.vocab_size
        self.mask_id = predictor.mask_id

    def __call__(self, tokens: Tensor) -> Tensor:
        out = self.predictor(tokens)
        self.bar.update(1)
        return out


def _check_layout(
    gen_length: int, steps: int, block_length: int | None
) -> tuple[int, int, int]:
    """Validate LLaDA's settings; return ``(gen_length, steps, block_length)``."""
    gen_length = check_int("gen_length", gen_length, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    block_length = (
        gen_length
        if block_length is None
        else check_int("block_length", block_length, minimum=1)
    )
    if gen_length % block_length:
        raise ValueError(
            f"block_length={block_length!r}: expected a divisor of "
            f"gen_length={gen_length}"
        )
    num_blocks = gen_length // block_length
    if steps % num_blocks:
        raise ValueError(
            f"steps={steps!r}: expected a multiple of the number of blocks "
            f"{num_blocks} (gen_length {gen_length} / block_length {block_length})"
        )
    return gen_length, steps, block_length


def _calls_per_batch(gen_length: int, steps: int, block_length: int) -> int:
    """Decoder predictor calls of one batch under the steps schedule."""
    num_blocks = gen_length // block_length
    return num_blocks * min(steps // num_blocks, block_length)


@overload
def generate(
    predictor: Predictor,
    prompt_ids: Tensor,
    gen_length: int,
    steps: int,
    block_length: int | None = ...,
    order: str | OrderPolicy = ...,
    temperature: float = ...,
    cfg_scale: float = ...,
    generator: torch.Generator | None = ...,
    *,
    sampler: str = ...,
    tc_samples: int = ...,
    progress: bool = ...,
) -> GenerateResult: ...


@overload
def generate(
    predictor: Predictor,
    prompt_ids: Sequence[Tensor],
    gen_length: int,
    steps: int,
    block_length: int | None = ...,
    order: str | OrderPolicy = ...,
    temperature: float = ...,
    cfg_scale: float = ...,
    generator: torch.Generator | None = ...,
    *,
    sampler: str = ...,
    tc_samples: int = ...,
    progress: bool = ...,
) -> list[GenerateResult]: ...


def generate(
    predictor,
    prompt_ids,
    gen_length,
    steps,
    block_length=None,
    order="low_confidence",
    temperature=0.0,
    cfg_scale=0.0,
    generator=None,
    *,
    sampler="factorized",
    tc_samples=0,
    progress=False,
):
    """Generate after prompts with LLaDA's settings and any pmdm order.

    Builds the canvas (each prompt followed by ``gen_length`` masks), wraps the
    predictor in :class:`~pmdm.adapters.prompts.GuidedPredictor` when
    ``cfg_scale > 0``, decodes with ``Decoder(order, StepsSchedule(steps,
    block_length), sampler, temperature)`` and measures the run.

    Parameters
    ----------
    predictor : Predictor
        E.g. an :class:`~pmdm.adapters.hf.HFPredictor`.
    prompt_ids : Tensor of shape (P,) or (N, P), or sequence of Tensor of shape (P_j,)
        Prompt token ids, none equal to the mask id. A tensor is one batch; a
        sequence may hold prompts of different lengths, which run apart (the model
        has no padding mask, :func:`~pmdm.adapters.prompts.run_by_length`) and
        give one result per prompt, in order. ``P = 0`` is unconditional.
    gen_length : int
        ``G``, positions to generate.
    steps : int
        Total decoder steps, a multiple of the number of blocks.
    block_length : int, optional
        Semi-autoregressive block length, a divisor of ``G``; one block if omitted.
    order : str or OrderPolicy
        ``"low_confidence"`` (LLaDA's default), ``"random"`` or any pmdm order
        (:func:`resolve_order`).
    temperature : float
        ``0`` is greedy.
    cfg_scale : float
        Unsupervised classifier-free guidance scale ``s >= 0``; no second pass at 0.
    generator : torch.Generator, optional
        Every random choice; batches of a ragged sequence draw from it one after
        another.
    sampler : str
        The step sampler, ``"factorized"`` as in LLaDA (or ``"joint"``).
    tc_samples : int
        If ``> 0``, estimate the model's ``TC→`` of every block of every sequence
        given its context with that many samples (:func:`block_total_correlation`;
        ``block_length + 1`` predictor calls per block and sequence).
    progress : bool
        Show a ``tqdm`` progress bar over the decoder's steps.

    Returns
    -------
    GenerateResult or list of GenerateResult
        One result for a tensor of prompts; one per prompt for a sequence.

    Raises
    ------
    ValueError
        If a setting is invalid or a prompt holds the mask id.

    Notes
    -----
    Prompt positions are revealed tokens: never changed, never counted as holes
    (their ``reveal_step`` is ``-1``). The trajectory's NFE counts decoder
    predictor calls; LLaDA runs the model ``steps`` times, pmdm skips steps that
    reveal nothing (:func:`llada_decoder`).

    Examples
    --------
    >>> from pmdm.adapters.hf import HFPredictor
    >>> from pmdm.adapters.tiny import TinyMDM, TinyMDMConfig
    >>> predictor = HFPredictor(TinyMDM(TinyMDMConfig(vocab_size=8, mask_token_id=7)))
    >>> out = generate(predictor, torch.tensor([1, 2]), gen_length=4, steps=4,
    ...                block_length=2)
    >>> out.tokens.shape, out.trajectory.reveal_step[0, :2].tolist(), out.nfe.tolist()
    (torch.Size([1, 6]), [-1, -1], [4])
    >>> bool(out.generated.ne(7).all())
    True
    """
    gen_length, steps, block_length = _check_layout(gen_length, steps, block_length)
    cfg_scale = check_finite("cfg_scale", cfg_scale, minimum=0.0)
    tc_samples = check_int("tc_samples", tc_samples, minimum=0)
    if tc_samples == 1:
        raise ValueError("tc_samples=1: expected 0 (no estimate) or at least 2")
    decoder = Decoder(
        resolve_order(order),
        StepsSchedule(steps, block_length),
        sampler,
        temperature,
    )
    settings = {
        "gen_length": gen_length,
        "steps": steps,
        "block_length": block_length,
        "order": order if isinstance(order, str) else repr(order),
        "temperature": decoder.temperature,
        "cfg_scale": cfg_scale,
        "sampler": decoder.sampler.name,
        "tc_samples": tc_samples,
    }

    ragged = not isinstance(prompt_ids, Tensor)
    if ragged:
        prompts = list(prompt_ids)
        batches = [
            check_token_tensor(f"prompt_ids[{i}]", p) for i, p in enumerate(prompts)
        ]
    else:
        prompt_ids = check_token_tensor("prompt_ids", prompt_ids)
        if prompt_ids.dim() > 2:
            raise ValueError(
                f"prompt_ids: expected shape (P,) or (N, P), actual "
                f"{tuple(prompt_ids.shape)}"
            )
        batches = [prompt_ids.reshape(-1, prompt_ids.shape[-1])]

    bar = None
    if progress:
        from tqdm.auto import tqdm

        groups = len({p.shape[-1] for p in batches}) if ragged else 1
        total = groups * _calls_per_batch(gen_length, steps, block_length)
        bar = tqdm(total=total, desc="decoding", unit="step")

    def run(group: Tensor) -> GenerateResult:
        return _generate_batch(
            predictor, group, decoder, gen_length, block_length, cfg_scale,
            generator, tc_samples, bar, settings,
        )  # fmt: skip

    try:
        if not ragged:
            return run(batches[0])
        results: list[GenerateResult] = []

        def run_group(group: Tensor) -> Tensor:
            results.append(run(group))
            index = len(results) - 1
            # (n, 2): which batch result, which row of it.
            return torch.stack(
                [torch.full((group.shape[0],), index), torch.arange(group.shape[0])],
                dim=-1,
            )

        where = run_by_length(batches, run_group)
        return [results[int(i)].select([int(k)]) for i, k in where]
    finally:
        if bar is not None:
            bar.close()


def _generate_batch(
    predictor: Predictor,
    prompts: Tensor,
    decoder: Decoder,
    gen_length: int,
    block_length: int,
    cfg_scale: float,
    generator: torch.Generator | None,
    tc_samples: int,
    bar: Any,
    settings: dict[str, Any],
) -> GenerateResult:
    """Decode one batch of equal-length prompts ``(N, P)``."""
    canvas, prompt_mask = prompt_canvas(prompts, gen_length, predictor.mask_id)
    decoding = (
        GuidedPredictor(predictor, prompt_mask, cfg_scale)
        if cfg_scale > 0
        else predictor
    )
    counted = getattr(predictor, "nfe", None)
    stepped = decoding if bar is None else _Progress(decoding, bar)
    out = decoder.decode(stepped, canvas, generator=generator)
    passes = getattr(predictor, "nfe", None)
    forward_passes = (
        passes - counted
        if isinstance(counted, int) and isinstance(passes, int)
        else None
    )

    # The model's own TC of each block given its context, per sequence.
    prompt_length = prompts.shape[-1]
    block_tc: list[list[ChainTCEstimate]] = []
    if tc_samples:
        for row in out.tokens:
            block_tc.append(
                [
                    block_total_correlation(
                        decoding,
                        row,
                        prompt_length=prompt_length,
                        block_length=block_length,
                        block=m,
                        num_samples=tc_samples,
                        generator=generator,
                    )
                    for m in range(gen_length // block_length)
                ]
            )
    return GenerateResult(
        tokens=out.tokens,
        prompt_length=prompt_length,
        trajectory=out.trajectory,
        per_step=step_measures(out.trajectory),
        forward_passes=forward_passes,
        block_tc=block_tc,
        settings=dict(settings),
    )


# -- Pyro ------------------------------------------------------------------------------


def decoder_guide(
    decoder: Decoder,
    predictor: Predictor,
    tokens: Tensor,
    generator: torch.Generator | None = None,
):
    """A Pyro guide that decodes ``tokens`` with ``decoder`` on a real model.

    The guide takes no arguments, decodes the ``N`` canvases of ``tokens`` batched
    (a plate ``"sequences"`` of size ``N``) and emits one ``Delta`` sample site
    ``"x_{i}"`` per masked position ``i`` (the prompt emits none), with value the
    decoded token, shape ``(N,)``. The first site carries the log-probability of
    the decoding path (``trajectory.log_q_path``) as its log density, the others 0,
    so that the trace's ``log_prob_sum()`` is the path's ``log q``. It returns the
    :class:`~pmdm.decoding.decoder.DecodeResult`.

    Parameters
    ----------
    decoder : Decoder
    predictor : Predictor
    tokens : Tensor, shape (T,) or (N, T)
        Canvases; every row must have its masked positions in the same places.
    generator : torch.Generator, optional
        The decoder's randomness.

    Returns
    -------
    callable
        The guide.

    Raises
    ------
    ValueError
        If rows mask different positions, or nothing is masked.

    Notes
    -----
    The path's ``log q`` is ``log q(x)`` when ``decoder.replayable`` (a
    deterministic order, no remasking; see
    :meth:`~pmdm.decoding.decoder.Decoder.log_prob`). With LLaDA's
    ``low_confidence`` or ``random`` orders several paths make the same ``x``, and
    the value is the log-probability of the values along the path taken, given
    that path. Site names match :meth:`pmdm.models.hmm.TokenHMM.sites`, so a Pyro
    model over ``x_0, ..., x_{T-1}`` can be scored against this guide.
    """
    tokens = check_token_tensor("tokens", tokens)
    canvas = tokens.reshape(-1, tokens.shape[-1])
    holes = canvas.eq(predictor.mask_id)
    if bool((holes != holes[:1]).any()):
        raise ValueError(
            "tokens: expected the same masked positions in every row (one sample site "
            "per position); decode rows with different holes apart"
        )
    positions = holes[0].nonzero().flatten().tolist() if canvas.shape[0] else []
    if not positions:
        raise ValueError(
            f"tokens: expected at least one masked position (mask id "
            f"{predictor.mask_id}) to decode"
        )
    n = canvas.shape[0]

    def guide() -> DecodeResult:
        out = decoder.decode(predictor, canvas, generator=generator)
        log_q = out.trajectory.log_q_path
        with pyro.plate("sequences", n, dim=-1):
            for k, position in enumerate(positions):
                density = log_q if k == 0 else torch.zeros_like(log_q)
                pyro.sample(
                    f"x_{position}",
                    dist.Delta(out.tokens[:, position], log_density=density),
                )
        return out

    return guide


def trace_decode(
    decoder: Decoder,
    predictor: Predictor,
    tokens: Tensor,
    generator: torch.Generator | None = None,
) -> poutine.Trace:
    """Run ``decoder`` on ``tokens`` as a Pyro guide and return its trace.

    Parameters
    ----------
    decoder, predictor, tokens, generator
        As for :func:`decoder_guide`.

    Returns
    -------
    pyro.poutine.Trace
        Sites ``"x_{i}"`` for the masked positions ``i`` (values of shape
        ``(N,)``); ``trace.log_prob_sum()`` is the sum over rows of the path's
        ``log q``; ``trace.nodes["_RETURN"]["value"]`` is the ``DecodeResult``.

    Examples
    --------
    >>> from pmdm.adapters.hf import HFPredictor
    >>> from pmdm.adapters.tiny import TinyMDM, TinyMDMConfig
    >>> predictor = HFPredictor(TinyMDM(TinyMDMConfig(vocab_size=8, mask_token_id=7)))
    >>> trace = trace_decode(llada_decoder(steps=2), predictor, torch.tensor([1, 7, 7]))
    >>> [name for name in trace.nodes if name.startswith("x_")]
    ['x_1', 'x_2']
    """
    return poutine.trace(
        decoder_guide(decoder, predictor, tokens, generator)
    ).get_trace()
