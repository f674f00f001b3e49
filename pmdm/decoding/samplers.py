"""Step samplers: how the values of one step's revealed positions are drawn.

* :class:`Factorized`: each position from its own marginal (Zhang et al. 2026,
  arXiv 2602.00286, Eq. 5); dependence inside the step is lost.
* :class:`Joint`: the step's positions one after another in position order, each
  from the predictor given the ones drawn before it (the chain rule): with an
  oracle this is the exact joint ``p(x_B | x_P)``, at one predictor call per
  position.
* :class:`Rejection`: factorized proposals accepted with probability
  ``p(x_B | x_P) / (M q(x_B | x_P))``, ``M = sup p / q`` found by enumerating the
  ``V^k`` configurations (paper, Prop. 5.1); exact, and it counts proposals.

``p(x_B | x_P)`` is always the predictor's own chain-rule joint, so the three differ
in cost and in what is lost, never in which predictor they trust.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from pmdm.ops.logspace import log_normalize, sample_categorical
from pmdm.ops.validation import check_int, check_real


def temper(log_probs: Tensor, temperature: float) -> Tensor:
    """Log-probabilities at a temperature, in float64.

    ``temperature = 0`` is greedy: all mass on the most probable token, ties to the
    lowest token id. ``temperature = 1`` leaves the predictions unchanged.
    """
    log_probs = log_probs.to(torch.float64)
    if temperature == 0:
        top = log_probs.argmax(-1, keepdim=True)
        return torch.full_like(log_probs, -torch.inf).scatter(-1, top, 0.0)
    if temperature == 1:
        return log_probs
    return log_normalize(log_probs / temperature)


class StepContext:
    """What a step sampler needs: the predictor, the state and the step's choice.

    Attributes
    ----------
    predictor : Predictor
    tokens : Tensor, shape (n, T), long
        The current state (masked positions hold ``predictor.mask_id``).
    select : Tensor, shape (n, T), bool
        Positions to reveal at this step.
    tempered : Tensor, shape (n, T, V), float64
        This step's predictions at the decoder's temperature (computed from
        ``log_probs`` on first use when not given).
    log_probs : Tensor, shape (n, T, V), optional
        This step's predictions at temperature 1.
    draws : Tensor, shape (n, T), long
        One independent draw from ``tempered`` at every position.
    temperature : float
    generator : torch.Generator or None
    """

    def __init__(
        self,
        predictor,
        tokens,
        select,
        tempered,
        draws,
        temperature,
        generator,
        log_probs=None,
    ):
        self.predictor = predictor
        self.tokens = tokens
        self.select = select
        self._tempered = tempered
        self.log_probs = log_probs
        self.draws = draws
        self.temperature = temperature
        self.generator = generator

    @property
    def tempered(self) -> Tensor:
        # Built on first use only: at temperature 0 the factorized sampler never
        # needs the (n, T, V) one-hot tensor.
        if self._tempered is None:
            self._tempered = temper(self.log_probs, self.temperature)
        return self._tempered

    def predict(self, tokens: Tensor) -> Tensor:
        return temper(self.predictor(tokens), self.temperature)


class StepOutcome:
    """Values drawn (or replayed) for a step, with their cost.

    Attributes
    ----------
    tokens : Tensor, shape (n, T)
        The state after the step.
    log_q : Tensor, shape (n,)
        ``log q(x_B | x_P)`` of the step's values.
    nfe : Tensor, shape (n,)
        Predictor calls made by the sampler beyond the step's own call.
    proposals : Tensor, shape (n,)
        Proposals drawn (rejection); 0 otherwise.
    """

    def __init__(self, tokens, log_q, nfe, proposals):
        self.tokens, self.log_q, self.nfe, self.proposals = (
            tokens,
            log_q,
            nfe,
            proposals,
        )


class StepSampler:
    """Draws the values of a step's positions; also scores given values (replay)."""

    name = ""

    def draw(self, ctx: StepContext) -> StepOutcome:
        raise NotImplementedError(f"{type(self).__name__} must implement draw()")

    def replay(self, ctx: StepContext, values: Tensor) -> StepOutcome:
        """Score ``values`` (shape ``(n, T)``) at the selected positions."""
        raise NotImplementedError(f"{type(self).__name__} must implement replay()")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _zeros(n: int, device=None) -> Tensor:
    return torch.zeros(n, dtype=torch.float64, device=device)


class Factorized(StepSampler):
    """Each revealed position from its own marginal."""

    name = "factorized"

    def _score(self, ctx, values):
        if ctx.temperature == 0 and ctx._tempered is None:
            # Greedy: probability 1 for the most probable token, 0 otherwise.
            best = ctx.log_probs.argmax(-1)
            picked = torch.where(values == best, 0.0, -torch.inf).to(torch.float64)
        else:
            # Unselected positions may hold the mask id: clamp, then ignore them.
            index = values.clamp(max=ctx.tempered.shape[-1] - 1).unsqueeze(-1)
            picked = ctx.tempered.gather(-1, index).squeeze(-1)
        log_q = torch.where(ctx.select, picked, 0.0).sum(-1)
        tokens = torch.where(ctx.select, values, ctx.tokens)
        n, device = tokens.shape[0], tokens.device
        return StepOutcome(tokens, log_q, _zeros(n, device), _zeros(n, device))

    def draw(self, ctx):
        return self._score(ctx, ctx.draws)

    def replay(self, ctx, values):
        return self._score(ctx, values)


def chain_rule(ctx: StepContext, values: Tensor | None = None) -> StepOutcome:
    """Reveal the selected positions one at a time, in position order, each from the
    predictor given the others before it; draw (``values=None``) or score."""
    tokens = ctx.tokens.clone()
    n, T = tokens.shape
    counts = ctx.select.sum(-1)
    device = tokens.device
    positions = torch.arange(T, device=device)
    positions = torch.where(ctx.select, positions, T).sort(-1).values
    log_q, nfe = _zeros(n, device), _zeros(n, device)
    for j in range(int(counts.max()) if n else 0):
        rows = (counts > j).nonzero().squeeze(-1)
        if j == 0:
            lp = ctx.tempered[rows]
        else:
            lp = ctx.predict(tokens[rows])
            nfe[rows] += 1
        pos = positions[rows, j]
        here = lp[torch.arange(rows.numel(), device=device), pos]  # (r, V)
        if values is None:
            v = sample_categorical(here, ctx.generator)
        else:
            v = values[rows, pos]
        log_q[rows] += here.gather(-1, v.unsqueeze(-1)).squeeze(-1)
        tokens[rows, pos] = v
    return StepOutcome(tokens, log_q, nfe, _zeros(n, device))


class Joint(StepSampler):
    """The exact joint of the step's positions under the predictor (chain rule)."""

    name = "joint"

    def draw(self, ctx):
        return chain_rule(ctx)

    def replay(self, ctx, values):
        return chain_rule(ctx, values)


class Rejection(StepSampler):
    """Accept–reject over factorized proposals; exact, and counts proposals.

    Parameters
    ----------
    max_tries : int
        Proposals allowed per step and sequence before giving up with an error.
    max_configurations : int
        Largest ``V^k`` enumerated to find ``M = sup p / q``.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Prop. 5.1 (Eq. 19): the expected number
    of proposals is ``M ≥ exp(TC→)``.
    """

    name = "rejection"

    def __init__(self, max_tries: int = 100_000, max_configurations: int = 4096):
        self.max_tries = check_int("max_tries", max_tries, minimum=1)
        self.max_configurations = check_int(
            "max_configurations", max_configurations, minimum=1
        )

    def _tables(self, ctx: StepContext, rows: Tensor, k: int):
        # For rows revealing k positions: every configuration, its chain-rule
        # log p and factorized log q, shapes (C, k), (r, C), (r, C).
        V, T = ctx.tempered.shape[-1], ctx.tokens.shape[-1]
        if V**k > self.max_configurations:
            raise ValueError(
                f"rejection: a step reveals {k} positions, V^k = {V**k} configurations; "
                f"expected at most max_configurations={self.max_configurations}"
            )
        configs = torch.tensor(list(itertools.product(range(V), repeat=k))).reshape(
            -1, k
        )
        C, r = configs.shape[0], rows.numel()
        positions = torch.where(ctx.select[rows], torch.arange(T), T).sort(-1).values
        positions = positions[:, :k]  # (r, k)
        values = ctx.tokens[rows].unsqueeze(1).repeat(1, C, 1)  # (r, C, T)
        values.scatter_(
            -1, positions.unsqueeze(1).expand(r, C, k), configs.expand(r, C, k)
        )
        flat = StepContext(
            ctx.predictor,
            ctx.tokens[rows].repeat_interleave(C, 0),
            ctx.select[rows].repeat_interleave(C, 0),
            ctx.tempered[rows].repeat_interleave(C, 0),
            None,
            ctx.temperature,
            ctx.generator,
        )
        joint = chain_rule(flat, values.reshape(r * C, T))
        log_p = joint.log_q.reshape(r, C)
        marg = ctx.tempered[rows].gather(-2, positions.unsqueeze(-1).expand(r, k, V))
        log_q = (
            marg.unsqueeze(1)
            .expand(r, C, k, V)
            .gather(-1, configs.expand(r, C, k).unsqueeze(-1))
            .squeeze(-1)
            .sum(-1)
        )
        return positions, log_p, log_q, joint.nfe.reshape(r, C)[:, 0]

    def draw(self, ctx):
        n, T = ctx.tokens.shape
        V = ctx.tempered.shape[-1]
        tokens = ctx.tokens.clone()
        log_q_out, nfe, proposals = _zeros(n), _zeros(n), _zeros(n)
        counts = ctx.select.sum(-1)
        for k in sorted(set(counts.tolist()) - {0}):
            rows = (counts == k).nonzero().squeeze(-1)
            positions, log_p, log_q, calls = self._tables(ctx, rows, k)
            nfe[rows] += calls
            missed = torch.isneginf(log_q) & torch.isfinite(log_p)
            if missed.any():
                raise ValueError(
                    "rejection: the factorized proposal gives probability 0 to a "
                    "configuration the joint allows, so M = sup p/q is infinite"
                )
            log_m = torch.where(torch.isfinite(log_p), log_p - log_q, -torch.inf)
            log_m = log_m.max(-1).values  # (r,)
            weights = V ** torch.arange(k - 1, -1, -1)
            pending = torch.ones(rows.numel(), dtype=torch.bool)
            chosen = torch.zeros(rows.numel(), dtype=torch.long)
            marg = ctx.tempered[rows].gather(
                -2, positions.unsqueeze(-1).expand(-1, k, V)
            )
            for _ in range(self.max_tries):
                idx = pending.nonzero().squeeze(-1)
                if idx.numel() == 0:
                    break
                draw = sample_categorical(marg[idx], ctx.generator)  # (p, k)
                config = (draw * weights).sum(-1)
                ratio = log_p[idx, config] - log_q[idx, config] - log_m[idx]
                u = torch.rand(
                    idx.numel(), dtype=torch.float64, generator=ctx.generator
                )
                accept = u.log() < ratio
                proposals[rows[idx]] += 1
                chosen[idx[accept]] = config[accept]
                pending[idx[accept]] = False
            if pending.any():
                raise RuntimeError(
                    f"rejection: max_tries={self.max_tries} proposals were not enough "
                    f"for {int(pending.sum())} step(s); the acceptance rate 1/M was as "
                    f"low as {math.exp(-float(log_m.max())):.3g}; raise max_tries or "
                    "use the joint sampler"
                )
            digits = (chosen.unsqueeze(-1) // weights) % V  # (r, k)
            tokens[rows.unsqueeze(-1), positions] = digits
            log_q_out[rows] = log_p[torch.arange(rows.numel()), chosen]
        return StepOutcome(tokens, log_q_out, nfe, proposals)

    def replay(self, ctx, values):
        # The accepted law is the joint: score like the joint sampler.
        return chain_rule(ctx, values)


SAMPLERS = {cls.name: cls for cls in (Factorized, Joint, Rejection)}


def make_sampler(sampler: str | StepSampler) -> StepSampler:
    """A step sampler from a name or an instance."""
    if isinstance(sampler, StepSampler):
        return sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}: expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[sampler]()


def check_temperature(temperature: float) -> float:
    return check_real("temperature", temperature, low=0.0)
