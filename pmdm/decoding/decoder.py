"""The decoder: an order policy × a schedule × a step sampler, run batched.

Each step makes one predictor call on the unfinished sequences, ranks their
eligible masked positions with the order policy, lets the schedule choose how many
to reveal, and draws their values with the step sampler. The trajectory records
when each position was revealed, the predictor calls actually made (NFE), the
proposals of a verifying sampler, the log-probability of the path, and what the
decoder saw at each reveal (entropy and top probability of the prediction, and the
probability of the token committed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

from pmdm.decoding.orders import OrderPolicy, make_order, rank
from pmdm.decoding.samplers import (
    StepContext,
    StepSampler,
    check_temperature,
    make_sampler,
    temper,
)
from pmdm.decoding.schedules import FixedSize, Schedule
from pmdm.ops.logspace import entropy, sample_categorical
from pmdm.ops.validation import check_int


@dataclass(frozen=True)
class Remask:
    """ReMDM-style remasking after decoding.

    After the sequence is complete, ``rounds`` times: re-mask the ``count``
    committed positions (of those that were masked at the start) whose token had the
    lowest probability when it was committed (ties to the lowest position), and
    draw them again in one step with the decoder's step sampler, without any
    verification.

    References
    ----------
    Wang et al. (2025), "Remasking Discrete Diffusion Models with Inference-Time
    Scaling" (ReMDM), arXiv 2503.00307. Zhang et al. (2026), arXiv 2602.00286,
    Prop. C.5.
    """

    rounds: int = 1
    count: int = 1

    def __post_init__(self):
        check_int("rounds", self.rounds, minimum=0)
        check_int("count", self.count, minimum=1)


def remask_selection(region: Tensor, token_prob: Tensor, count: int) -> Tensor:
    """The ``count`` decoded positions whose token had the lowest probability when
    committed (ties to the lowest position), shape ``(N, T)`` bool.

    Parameters
    ----------
    region : Tensor, shape (N, T), bool
        Positions that were masked when decoding began.
    token_prob : Tensor, shape (N, T)
        Probability of each committed token when it was committed.
    count : int
    """
    score = torch.where(region, token_prob, torch.inf)
    order = torch.sort(score, dim=-1, stable=True).indices
    k = region.sum(-1).clamp(max=count)
    take = torch.arange(region.shape[-1], device=region.device) < k.unsqueeze(-1)
    return torch.zeros_like(region).scatter(-1, order, take) & region


@dataclass
class Trajectory:
    """What happened while decoding ``N`` sequences of length ``T``.

    Attributes
    ----------
    reveal_step : Tensor, shape (N, T), long
        Step (from 0) at which each position was last revealed; -1 for positions
        given at the start (a prompt).
    steps : Tensor, shape (N,), long
        Steps taken (remasking rounds included).
    nfe : Tensor, shape (N,), long
        Predictor calls that included this sequence.
    proposals : Tensor, shape (N,), long
        Proposals drawn by a rejection sampler.
    log_q_path : Tensor, shape (N,), float64
        Log-probability of the decoding path. It equals ``log q(x)`` when the
        decoder is replayable (see :attr:`Decoder.replayable`).
    entropy : Tensor, shape (N, T), float64
        Entropy of the prediction at each position when it was revealed (nan for
        positions given at the start).
    confidence : Tensor, shape (N, T), float64
        Top probability of that prediction.
    token_prob : Tensor, shape (N, T), float64
        Probability of the committed token under that prediction.
    """

    reveal_step: Tensor
    steps: Tensor
    nfe: Tensor
    proposals: Tensor
    log_q_path: Tensor
    entropy: Tensor
    confidence: Tensor
    token_prob: Tensor

    def tokens_per_step(self) -> Tensor:
        """Average tokens finalized per step, ``(number revealed) / steps``, (N,)."""
        revealed = (self.reveal_step >= 0).sum(-1).to(torch.float64)
        return revealed / self.steps.clamp(min=1)

    def kendall_tau(self) -> Tensor:
        """Kendall's τ-b between reveal step and position over the decoded positions,
        shape (N,): 1 for left to right, -1 for right to left, about 0 for random."""
        step = self.reveal_step.to(torch.float64)
        live = self.reveal_step >= 0
        # (N, T, T): pairs i < j of decoded positions.
        T = step.shape[-1]
        upper = torch.ones(T, T, dtype=torch.bool).triu(1)
        pair = upper & live.unsqueeze(-1) & live.unsqueeze(-2)
        sign = torch.sign(step.unsqueeze(-2) - step.unsqueeze(-1))  # sign(s_j - s_i)
        concordant = (sign * pair).sum((-1, -2))
        untied = ((sign != 0) & pair).sum((-1, -2)).to(torch.float64)
        total = pair.sum((-1, -2)).to(torch.float64)
        denom = (untied * total).sqrt()
        return torch.where(denom > 0, concordant / denom, torch.zeros_like(denom))


@dataclass
class DecodeResult:
    """Decoded tokens and their trajectory."""

    tokens: Tensor
    trajectory: Trajectory


@dataclass
class Decoder:
    """An order policy, a schedule and a step sampler, composed.

    Parameters
    ----------
    order : str, OrderPolicy, callable or permutation
        ``"l2r"``, ``"r2l"``, ``"random"``, ``"entropy"``, ``"confidence"``,
        ``"margin"``, ``"sampled-confidence"``, a permutation of positions, a
        callable ``log_probs -> scores`` or an :class:`OrderPolicy`.
    schedule : Schedule
        How many positions per step (default one).
    sampler : str or StepSampler
        ``"factorized"``, ``"joint"`` or ``"rejection"``.
    temperature : float
        ``>= 0``; 0 is greedy. Noise and sampling are float64.
    remask : Remask, optional

    Examples
    --------
    >>> import torch
    >>> from pmdm.decoding.schedules import FixedSize
    >>> class Uniform:  # a predictor that knows nothing
    ...     vocab_size, mask_id = 2, 2
    ...     def __call__(self, tokens):
    ...         return torch.full(tokens.shape + (2,), -0.6931471805599453)
    >>> out = Decoder("l2r", FixedSize(2)).decode(Uniform(), num_sequences=3, length=4,
    ...                                          generator=torch.Generator().manual_seed(0))
    >>> out.tokens.shape, out.trajectory.nfe.tolist(), out.trajectory.reveal_step[0].tolist()
    (torch.Size([3, 4]), [2, 2, 2], [0, 0, 1, 1])
    """

    order: OrderPolicy | str = "l2r"
    schedule: Schedule = field(default_factory=FixedSize)
    sampler: StepSampler | str = "factorized"
    temperature: float = 1.0
    remask: Remask | None = None

    def __post_init__(self):
        self.order = make_order(self.order)
        if not isinstance(self.schedule, Schedule):
            raise TypeError(f"schedule={self.schedule!r}: expected a Schedule")
        self.sampler = make_sampler(self.sampler)
        self.temperature = check_temperature(self.temperature)
        if self.remask is not None and not isinstance(self.remask, Remask):
            raise TypeError(f"remask={self.remask!r}: expected a Remask or None")

    @property
    def replayable(self) -> bool:
        """Whether ``log q(x)`` is the log-probability of the unique path that makes
        ``x``: the order is a fixed function of the revealed tokens and there is no
        remasking."""
        has_rounds = self.remask is not None and self.remask.rounds > 0
        return self.order.deterministic and not has_rounds

    # -- running ----------------------------------------------------------------------

    def _initial(self, predictor, tokens, num_sequences, length) -> Tensor:
        if tokens is None:
            if num_sequences is None or length is None:
                raise ValueError(
                    "tokens=None: give tokens (with mask_id at the positions to "
                    "decode), or num_sequences and length"
                )
            n = check_int("num_sequences", num_sequences, minimum=0)
            T = check_int("length", length, minimum=1)
            return torch.full((n, T), predictor.mask_id, dtype=torch.long)
        tokens = torch.as_tensor(tokens)
        if tokens.dim() != 2 or tokens.dtype.is_floating_point:
            raise ValueError(
                f"tokens: expected integer ids of shape (N, T), actual dtype "
                f"{tokens.dtype} and shape {tuple(tokens.shape)}"
            )
        bad = (tokens < 0) | (
            (tokens >= predictor.vocab_size) & (tokens != predictor.mask_id)
        )
        if bad.any():
            raise ValueError(
                f"tokens: expected ids in [0, {predictor.vocab_size}) or the mask id "
                f"{predictor.mask_id}, actual {sorted(set(tokens[bad].tolist()))[:5]}"
            )
        return tokens.long().clone()

    def decode(
        self,
        predictor,
        tokens: Tensor | None = None,
        *,
        num_sequences: int | None = None,
        length: int | None = None,
        generator: torch.Generator | None = None,
    ) -> DecodeResult:
        """Decode every masked position of ``tokens`` (or of ``N`` all-masked rows).

        Parameters
        ----------
        predictor : Predictor
        tokens : Tensor, shape (N, T), optional
            Start state; positions equal to ``predictor.mask_id`` are decoded, the
            others (a prompt) are kept and never counted as holes.
        num_sequences, length : int, optional
            ``N`` and ``T`` when ``tokens`` is not given.
        generator : torch.Generator, optional
            Every random choice (values, random orders, acceptance) comes from it.
        """
        return self._run(
            predictor,
            self._initial(predictor, tokens, num_sequences, length),
            generator,
            None,
        )

    def log_prob(self, predictor, x: Tensor, tokens: Tensor | None = None) -> Tensor:
        """``log q(x)`` by replaying the unique path that produces ``x``.

        Parameters
        ----------
        x : Tensor, shape (N, T)
            Complete sequences.
        tokens : Tensor, shape (N, T), optional
            Start state (a prompt); all masked when omitted.

        Raises
        ------
        ValueError
            If the decoder is not :attr:`replayable` (use
            :func:`pmdm.decoding.exact.output_distribution` instead).
        """
        if not self.replayable:
            raise ValueError(
                f"order={self.order!r}, remask={self.remask!r}: log q(x) has no single "
                "path to replay; use pmdm.decoding.exact.output_distribution"
            )
        x = torch.as_tensor(x).long()
        start = torch.full_like(x, predictor.mask_id) if tokens is None else tokens
        start = self._initial(predictor, start, None, None)
        kept = start != predictor.mask_id
        if (start[kept] != x[kept]).any():
            raise ValueError(
                "x: expected sequences that agree with tokens (the prompt)"
            )
        return self._run(predictor, start, None, x).trajectory.log_q_path

    def _run(self, predictor, tokens, generator, forced) -> DecodeResult:
        mask_id = predictor.mask_id
        n, T = tokens.shape
        region = tokens == mask_id
        on = {"device": tokens.device}
        nan = torch.full((n, T), torch.nan, dtype=torch.float64, **on)
        record = {
            "reveal_step": torch.full((n, T), -1, dtype=torch.long, **on),
            "steps": torch.zeros(n, dtype=torch.long, **on),
            "nfe": torch.zeros(n, dtype=torch.long, **on),
            "proposals": torch.zeros(n, dtype=torch.long, **on),
            "log_q_path": torch.zeros(n, dtype=torch.float64, **on),
            "entropy": nan.clone(),
            "confidence": nan.clone(),
            "token_prob": nan.clone(),
        }
        step = 0
        while True:
            masked = tokens == mask_id
            active = masked.any(-1).nonzero().squeeze(-1)
            if active.numel() == 0:
                break
            if step > T:
                raise RuntimeError(
                    "decoder made no progress: a schedule revealed nothing"
                )
            eligible = self.schedule.eligible(region[active], masked[active])
            self._step(
                predictor,
                tokens,
                active,
                eligible,
                region[active],
                record,
                step,
                generator,
                forced,
            )
            step += 1
        if self.remask is not None:
            for _ in range(self.remask.rounds):
                self._remask_round(
                    predictor, tokens, region, record, step, generator, forced
                )
                step += 1
        return DecodeResult(tokens, Trajectory(**record))

    def _step(
        self, predictor, tokens, rows, eligible, region, record, step, generator, forced
    ):
        state = tokens[rows]
        log_probs = predictor(state).to(torch.float64)
        record["nfe"][rows] += 1
        tempered, draws = self._draws(log_probs, generator)
        if forced is not None:
            draws = forced[rows]
        if getattr(self.order, "chooses_set", False):
            select = self.order.choose(state == predictor.mask_id)
        else:
            scores = self.order.scores(log_probs, draws, generator)
            order = rank(scores, eligible)
            select = self.schedule.select(log_probs, order, eligible, region)
        self._commit(
            predictor,
            tokens,
            rows,
            select,
            log_probs,
            tempered,
            draws,
            record,
            step,
            generator,
            forced,
        )

    def _draws(self, log_probs, generator):
        # One draw per position at the decoder's temperature; at temperature 0 the
        # argmax (ties to the lowest id), with no noise and no one-hot tensor.
        if self.temperature == 0:
            return None, log_probs.argmax(-1)
        tempered = temper(log_probs, self.temperature)
        return tempered, sample_categorical(tempered, generator)

    def _commit(
        self,
        predictor,
        tokens,
        rows,
        select,
        log_probs,
        tempered,
        draws,
        record,
        step,
        generator,
        forced,
    ):
        state = tokens[rows]
        ctx = StepContext(
            predictor,
            state,
            select,
            tempered,
            draws,
            self.temperature,
            generator,
            log_probs=log_probs,
        )
        if forced is None:
            outcome = self.sampler.draw(ctx)
        else:
            outcome = self.sampler.replay(ctx, forced[rows])
        tokens[rows] = outcome.tokens
        record["log_q_path"][rows] += outcome.log_q
        record["nfe"][rows] += outcome.nfe.long()
        record["proposals"][rows] += outcome.proposals.long()
        record["steps"][rows] += 1
        # What the decoder saw where it revealed (predictions of the step's call),
        # computed at the revealed positions only.
        where = select.nonzero()
        at, cols = rows[where[:, 0]], where[:, 1]
        seen = log_probs[where[:, 0], cols]  # (k, V)
        token = outcome.tokens[where[:, 0], cols].unsqueeze(-1)
        record["reveal_step"][at, cols] = step
        record["entropy"][at, cols] = entropy(seen)
        record["confidence"][at, cols] = seen.max(-1).values.exp()
        record["token_prob"][at, cols] = seen.gather(-1, token).squeeze(-1).exp()

    def _remask_round(self, predictor, tokens, region, record, step, generator, forced):
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        select = remask_selection(region, record["token_prob"], self.remask.count)
        tokens[select] = predictor.mask_id
        live = select.any(-1)
        rows = rows[live]
        if rows.numel() == 0:
            return
        state = tokens[rows]
        log_probs = predictor(state).to(torch.float64)
        record["nfe"][rows] += 1
        tempered, draws = self._draws(log_probs, generator)
        if forced is not None:
            draws = forced[rows]
        self._commit(
            predictor,
            tokens,
            rows,
            select[rows],
            log_probs,
            tempered,
            draws,
            record,
            step,
            generator,
            forced,
        )

    # -- Pyro -------------------------------------------------------------------------

    def guide(self, target, predictor=None, generator: torch.Generator | None = None):
        """A Pyro guide for ``target.model`` that decodes with this decoder.

        The guide decodes ``N`` sequences batched and emits the target's sample
        sites (``target.sites(x)``) as ``Delta`` sites; the first carries
        ``log q(x)``, so that ``TraceEnum_ELBO(target.model, guide)`` estimates
        ``-KL(q ‖ p)``.

        Parameters
        ----------
        target : Target
        predictor : Predictor, optional
            Defaults to the target's oracle.
        generator : torch.Generator, optional
            The decoder's randomness. The guide keeps its last
            :class:`DecodeResult` in its attribute ``last_result``.

        Raises
        ------
        ValueError
            If the decoder is not :attr:`replayable`: its path probability is then
            not ``q(x)`` and the ELBO would be biased.
        """
        if not self.replayable:
            raise ValueError(
                f"order={self.order!r}, remask={self.remask!r}: not replayable, so the "
                "path probability is not q(x); estimate KL(q ‖ p) from "
                "pmdm.decoding.exact.output_distribution instead"
            )
        if predictor is None:
            from pmdm.predictors.oracle import OraclePredictor

            predictor = OraclePredictor(target)

        def decoder_guide(data=None, num_sequences=None):
            n = data.shape[0] if data is not None else num_sequences
            out = self.decode(
                predictor, num_sequences=n, length=target.length, generator=generator
            )
            decoder_guide.last_result = out
            log_q = out.trajectory.log_q_path
            with pyro.plate("sequences", n, dim=-1):
                for i, (name, value) in enumerate(target.sites(out.tokens).items()):
                    density = log_q if i == 0 else torch.zeros_like(log_q)
                    pyro.sample(
                        name,
                        dist.Delta(
                            value, log_density=density, event_dim=value.dim() - 1
                        ),
                    )
            return out.tokens

        return decoder_guide
