"""Instances of the decoder-based statements, their exact evaluation and builders.

* :class:`RolloutInstance`: a joint table ``p``, a noisy model ``p_θ`` of its
  oracle and an order; optionally the parameters ``α, λ, b`` of Assumption 4.2
  (Lemma 4.1, Eq. 11).
* :class:`DecoderInstance`: a small target (table, token HMM or Block-HMM), a
  decoder described by a :class:`DecoderSpec`, and the predictor's error (regimes,
  Prop. C.5, Fast-dLLM and EB-Sampler as decoders).

Both are frozen, validated on construction, with ``size()`` (a sort key for the
minimal counterexample) and ``to_dict()`` (plain JSON types), and cache what they
compute (the decoder's exact output law, the rollout profile, the reachable steps).
The ``random_*`` builders draw instances from a seeded ``torch.Generator`` for
:func:`pmdm.theory.check.run_checks`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from pmdm.decoding.decoder import Decoder, Remask
from pmdm.decoding.exact import output_distribution
from pmdm.decoding.orders import ORDERS, GraphOrder, Permutation, rank
from pmdm.decoding.samplers import SAMPLERS, temper
from pmdm.decoding.schedules import (
    EntropyBudget,
    FactorSchedule,
    FixedSize,
    StepsSchedule,
    ThresholdSchedule,
)
from pmdm.metrics.information import check_joint_table
from pmdm.models.base import Target
from pmdm.models.block_hmm import BlockHMM
from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget
from pmdm.ops.logspace import kl_divergence
from pmdm.ops.validation import check_int, check_real
from pmdm.predictors.noisy import SUPPORTS, NoisyPredictor
from pmdm.predictors.oracle import OraclePredictor
from pmdm.theory import generators as g
from pmdm.theory.rollout import (
    ENTROPY_LAWS,
    RolloutProfile,
    rollout_profile,
    smallest_alpha,
    smallest_b,
    smallest_lam,
)

#: Schedules a :class:`DecoderSpec` names, with the meaning of its ``parameter``.
SCHEDULE_KINDS = {
    "fixed": "tokens per step",
    "steps": "number of steps",
    "threshold": "confidence threshold",
    "factor": "factor f",
    "entropy-budget": "entropy budget γ",
}

#: Largest ``V^T`` of a :class:`DecoderInstance` target (exact enumeration).
MAX_SEQUENCES = 4096

#: Relative slack of Assumption 4.2 and of the step conditions against rounding.
SLACK = 1e-12


def _json_order(order):
    return order if isinstance(order, str) else list(order)


def _check_order(order) -> str | tuple[int, ...]:
    if isinstance(order, str):
        if order not in ORDERS and order != "graph":
            raise ValueError(
                f"order={order!r}: expected one of {sorted(ORDERS) + ['graph']} or a "
                "permutation"
            )
        return order
    perm = tuple(check_int("order[]", i, minimum=0) for i in order)
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"order={list(order)!r}: expected a permutation of 0..T-1")
    return perm


@dataclass(frozen=True)
class DecoderSpec:
    """A decoder as plain values, so that an instance can be printed and rebuilt.

    Parameters
    ----------
    order : str or tuple of int
        A name of :data:`pmdm.decoding.orders.ORDERS`, ``"graph"`` (the target's
        :class:`~pmdm.decoding.orders.GraphOrder`), or a permutation.
    schedule : str
        A key of :data:`SCHEDULE_KINDS`.
    parameter : float
        The schedule's parameter (see :data:`SCHEDULE_KINDS`).
    sampler : str
        ``"factorized"``, ``"joint"`` or ``"rejection"``.
    temperature : float
    remask_rounds, remask_count : int
        :class:`~pmdm.decoding.decoder.Remask` after decoding (none with 0 rounds).

    Examples
    --------
    >>> decoder = DecoderSpec("entropy", "entropy-budget", 0.5).build()
    >>> decoder.order, decoder.schedule
    (EntropyOrder(), EntropyBudget(gamma=0.5))
    """

    order: str | tuple = "l2r"
    schedule: str = "fixed"
    parameter: float = 1
    sampler: str = "factorized"
    temperature: float = 1.0
    remask_rounds: int = 0
    remask_count: int = 1

    def __post_init__(self):
        object.__setattr__(self, "order", _check_order(self.order))
        if self.schedule not in SCHEDULE_KINDS:
            raise ValueError(
                f"schedule={self.schedule!r}: expected one of {sorted(SCHEDULE_KINDS)}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(
                f"sampler={self.sampler!r}: expected one of {sorted(SAMPLERS)}"
            )
        check_real("temperature", self.temperature, low=0.0)
        check_int("remask_rounds", self.remask_rounds, minimum=0)
        check_int("remask_count", self.remask_count, minimum=1)
        self._schedule()  # validates the parameter

    def _schedule(self):
        kind, value = self.schedule, self.parameter
        if kind == "fixed":
            return FixedSize(int(check_int("parameter", value, minimum=1)))
        if kind == "steps":
            return StepsSchedule(int(check_int("parameter", value, minimum=1)))
        if kind == "threshold":
            return ThresholdSchedule(value)
        if kind == "factor":
            return FactorSchedule(value)
        return EntropyBudget(value)

    @property
    def one_token_per_step(self) -> bool:
        """``FixedSize(1)`` and no graph order (which chooses its own sets)."""
        return (
            self.schedule == "fixed" and self.parameter == 1 and self.order != "graph"
        )

    def build(self, target: Target | None = None) -> Decoder:
        """The :class:`~pmdm.decoding.decoder.Decoder` (``target`` for the graph
        order)."""
        if self.order == "graph":
            if target is None:
                raise ValueError("target=None: the graph order needs the target")
            order = GraphOrder(target)
        elif isinstance(self.order, tuple):
            order = Permutation(self.order)
        else:
            order = self.order
        remask = (
            Remask(self.remask_rounds, self.remask_count)
            if self.remask_rounds
            else None
        )
        return Decoder(order, self._schedule(), self.sampler, self.temperature, remask)

    def to_dict(self) -> dict:
        return {
            "order": _json_order(self.order),
            "schedule": self.schedule,
            "parameter": self.parameter,
            "sampler": self.sampler,
            "temperature": self.temperature,
            "remask_rounds": self.remask_rounds,
            "remask_count": self.remask_count,
        }


def dense_log_table(target: Target) -> Tensor:
    """``log p(x)`` of every sequence as a ``(V,)*T`` table."""
    x = target.enumerate_sequences(MAX_SEQUENCES)
    return (
        target.log_prob(x)
        .to(torch.float64)
        .reshape((target.vocab_size,) * target.length)
    )


def describe_target(target: Target) -> dict:
    """Plain JSON description of a table, token-HMM or Block-HMM target."""
    if isinstance(target, BlockHMM):
        return {
            "kind": "block-hmm",
            "num_states": target.num_states,
            "stay": target.stay,
            "rho": target.rho.tolist(),
            "block_size": target.block_size,
            "length": target.length,
            "eta": target.eta,
        }
    if isinstance(target, TokenHMM):
        return {
            "kind": "token-hmm",
            "init": target.init.tolist(),
            "trans": target.trans.tolist(),
            "emit": target.emit.tolist(),
            "length": target.length,
        }
    return {"kind": "table", "probs": dense_log_table(target).exp().tolist()}


def _check_noise(level, noise_seed, support):
    level = check_real("level", level, low=0.0, high=math.inf, high_open=True)
    seed = check_int("noise_seed", noise_seed, minimum=0)
    if support not in SUPPORTS:
        raise ValueError(f"support={support!r}: expected one of {SUPPORTS}")
    return level, seed


def _predictor(oracle, level: float, seed: int, support: str):
    if level == 0:
        return oracle
    return NoisyPredictor(oracle, level, seed, support=support)


def _kl(log_a: Tensor, log_b: Tensor) -> float:
    return float(kl_divergence(log_a, log_b))


# -- rollouts of a noisy model -----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RolloutInstance:
    """A noisy model of a table's oracle, decoded one token per step in an order.

    Attributes
    ----------
    log_p : Tensor, shape (V,)*T
        The target ``p``; ``T >= 1``, equal axes.
    order : str or tuple of int
        A permutation or a deterministic order name (``"l2r"``, ``"entropy"``, ..).
    level, noise_seed, support
        Of :class:`~pmdm.predictors.noisy.NoisyPredictor` (level 0: the oracle).
    law : str
        Prefix law of ``H_t``, one of :data:`~pmdm.theory.rollout.ENTROPY_LAWS`.
    alpha, lam, b : float or None
        Parameters of Assumption 4.2 (Eq. 11 statements); ``None`` when unused.
    """

    log_p: Tensor
    order: str | tuple
    level: float = 0.0
    noise_seed: int = 0
    support: str = "keep"
    law: str = "rollout"
    alpha: float | None = None
    lam: float | None = None
    b: float | None = None
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        log_p, T, _ = check_joint_table(
            torch.as_tensor(self.log_p, dtype=torch.float64)
        )
        if len(set(log_p.shape)) != 1:
            raise ValueError(
                f"log_p: expected equal axes (V,)*T, actual {tuple(log_p.shape)}"
            )
        object.__setattr__(self, "log_p", log_p)
        order = _check_order(self.order)
        if order == "graph" or (
            isinstance(order, str) and not ORDERS[order].deterministic
        ):
            raise ValueError(
                f"order={order!r}: expected a permutation or a deterministic order name"
            )
        if isinstance(order, tuple) and len(order) != T:
            raise ValueError(
                f"order={list(order)!r}: expected a permutation of 0..{T - 1}"
            )
        object.__setattr__(self, "order", order)
        level, seed = _check_noise(self.level, self.noise_seed, self.support)
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "noise_seed", seed)
        if self.law not in ENTROPY_LAWS:
            raise ValueError(f"law={self.law!r}: expected one of {ENTROPY_LAWS}")
        for name in ("alpha", "lam", "b"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, check_real(name, value, low=0.0))

    @property
    def length(self) -> int:
        return self.log_p.dim()

    @property
    def has_parameters(self) -> bool:
        """Whether ``α, λ, b`` are all given and finite."""
        values = (self.alpha, self.lam, self.b)
        return all(v is not None and math.isfinite(v) for v in values)

    def oracle(self) -> OraclePredictor:
        if "oracle" not in self._cache:
            target = TableTarget.from_dense(self.log_p.exp())
            self._cache["oracle"] = OraclePredictor(target)
        return self._cache["oracle"]

    def model(self):
        """``p_θ``: the noisy oracle (the oracle itself at level 0)."""
        if "model" not in self._cache:
            self._cache["model"] = _predictor(
                self.oracle(), self.level, self.noise_seed, self.support
            )
        return self._cache["model"]

    def decoder(self) -> Decoder:
        """One token per step in :attr:`order`, factorized, temperature 1."""
        order = Permutation(self.order) if isinstance(self.order, tuple) else self.order
        return Decoder(order, FixedSize(1), "factorized")

    def rollout_kl(self) -> float:
        """``J(π) = KL(p_θ^π ‖ p)`` from the decoder's exact output law."""
        if "kl" not in self._cache:
            log_q = output_distribution(self.decoder(), self.model(), self.length).log_q
            self._cache["kl"] = _kl(log_q, self.log_p.reshape(-1))
        return self._cache["kl"]

    def profile(self) -> RolloutProfile:
        """The enumerated :class:`~pmdm.theory.rollout.RolloutProfile`."""
        if "profile" not in self._cache:
            self._cache["profile"] = rollout_profile(
                self.model(), self.oracle(), self.length, self.decoder().order
            )
        return self._cache["profile"]

    def entropies(self) -> Tensor:
        """``H_t`` under :attr:`law`."""
        return self.profile().entropy(self.law)

    def with_parameters(self, alpha: float, lam: float, b: float) -> RolloutInstance:
        """The same rollout with other ``α, λ, b`` (sharing the cache)."""
        out = RolloutInstance(
            self.log_p,
            self.order,
            self.level,
            self.noise_seed,
            self.support,
            self.law,
            alpha,
            lam,
            b,
        )
        out._cache.update(self._cache)
        return out

    def size(self) -> tuple:
        """``(T, V, b > 0, λ > 0, adaptive order, support size)``."""
        adaptive = isinstance(self.order, str) and self.order not in ("l2r", "r2l")
        support = int((~torch.isneginf(self.log_p)).sum())
        return (
            self.length,
            self.log_p.shape[0],
            int(bool(self.b)),
            int(bool(self.lam)),
            int(adaptive),
            support,
        )

    def to_dict(self) -> dict:
        return {
            "probs": self.log_p.exp().tolist(),
            "order": _json_order(self.order),
            "level": self.level,
            "noise_seed": self.noise_seed,
            "support": self.support,
            "law": self.law,
            "alpha": self.alpha,
            "lam": self.lam,
            "b": self.b,
        }


# -- any decoder on a small target --------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One decoder step at one reachable state.

    Attributes
    ----------
    tokens : Tensor, shape (T,)
        The state before the step (``mask_id`` at masked positions).
    positions : tuple of int
        The positions the step reveals.
    log_probs : Tensor, shape (T, V)
        The predictor's output at this state (before temperature).
    """

    tokens: Tensor
    positions: tuple
    log_probs: Tensor


def reachable_steps(decoder: Decoder, predictor, length: int) -> list[Step]:
    """Every (state, step) a decoder can reach, by breadth-first enumeration.

    Parameters
    ----------
    decoder : Decoder
        A deterministic order (or one that chooses whole sets), any schedule, the
        factorized sampler, no remasking.
    predictor : Predictor
    length : int
        ``T``; decoding starts from all masked.

    Returns
    -------
    list of Step
        One per distinct reachable state with a masked position.

    Raises
    ------
    ValueError
        For a random or draw-dependent order, another sampler, or remasking.
    """
    T = check_int("length", length, minimum=1)
    order = decoder.order
    if not order.deterministic or decoder.sampler.name != "factorized":
        raise ValueError(
            f"decoder={decoder!r}: expected a deterministic order and the factorized "
            "sampler"
        )
    if decoder.remask is not None and decoder.remask.rounds > 0:
        raise ValueError(f"decoder.remask={decoder.remask!r}: expected no remasking")
    mask_id = predictor.mask_id
    states = torch.full((1, T), mask_id, dtype=torch.long)
    region = torch.ones(1, T, dtype=torch.bool)
    steps: list[Step] = []
    while states.numel():
        masked = states == mask_id
        log_probs = predictor(states).to(torch.float64)
        reg = region.expand(states.shape)
        if getattr(order, "chooses_set", False):
            select = order.choose(masked)
        else:
            eligible = decoder.schedule.eligible(reg, masked)
            ranked = rank(order.scores(log_probs), eligible)
            select = decoder.schedule.select(log_probs, ranked, eligible, reg)
        tempered = temper(log_probs, decoder.temperature)
        children = []
        for row in range(states.shape[0]):
            positions = tuple(select[row].nonzero().squeeze(-1).tolist())
            steps.append(Step(states[row], positions, log_probs[row]))
            allowed = [
                (tempered[row, i] > -math.inf).nonzero().squeeze(-1).tolist()
                for i in positions
            ]
            for values in itertools.product(*allowed):
                child = states[row].clone()
                child[list(positions)] = torch.tensor(values, dtype=torch.long)
                children.append(child)
        states = torch.stack(children) if children else states[:0]
        states = torch.unique(states, dim=0)
        states = states[(states == mask_id).any(-1)]
    return steps


@dataclass(frozen=True, eq=False)
class DecoderInstance:
    """A small target, a decoder and the error of the predictor it queries.

    Attributes
    ----------
    target : Target
        ``V^T <=`` :data:`MAX_SEQUENCES`.
    decoder : DecoderSpec
    level, noise_seed, support
        Of :class:`~pmdm.predictors.noisy.NoisyPredictor` around the oracle (level
        0: the oracle).
    """

    target: Target
    decoder: DecoderSpec
    level: float = 0.0
    noise_seed: int = 0
    support: str = "keep"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.target, Target):
            raise TypeError(f"target={self.target!r}: expected a pmdm Target")
        count = self.target.vocab_size**self.target.length
        if count > MAX_SEQUENCES:
            raise ValueError(
                f"target: V^T = {count} sequences, expected at most {MAX_SEQUENCES}"
            )
        if not isinstance(self.decoder, DecoderSpec):
            raise TypeError(f"decoder={self.decoder!r}: expected a DecoderSpec")
        if isinstance(self.decoder.order, tuple) and len(self.decoder.order) != (
            self.target.length
        ):
            raise ValueError(
                f"decoder.order={list(self.decoder.order)!r}: expected a permutation "
                f"of 0..{self.target.length - 1}"
            )
        level, seed = _check_noise(self.level, self.noise_seed, self.support)
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "noise_seed", seed)

    @property
    def length(self) -> int:
        return self.target.length

    def log_p(self) -> Tensor:
        """``log p`` as a ``(V,)*T`` table."""
        if "log_p" not in self._cache:
            self._cache["log_p"] = dense_log_table(self.target)
        return self._cache["log_p"]

    def oracle(self) -> OraclePredictor:
        if "oracle" not in self._cache:
            self._cache["oracle"] = OraclePredictor(self.target)
        return self._cache["oracle"]

    def predictor(self):
        if "predictor" not in self._cache:
            self._cache["predictor"] = _predictor(
                self.oracle(), self.level, self.noise_seed, self.support
            )
        return self._cache["predictor"]

    def build(self, **changes) -> Decoder:
        """The decoder, with fields of :attr:`decoder` replaced by ``changes``."""
        spec = self.decoder
        if changes:
            spec = DecoderSpec(**{**spec.to_dict(), **changes, "order": spec.order})
        return spec.build(self.target)

    def log_q(self, **changes) -> Tensor:
        """The decoder's exact output law over ``V^T`` (flat, lexicographic)."""
        key = ("log_q", tuple(sorted(changes.items())))
        if key not in self._cache:
            dec = self.build(**changes)
            self._cache[key] = output_distribution(
                dec, self.predictor(), self.length
            ).log_q
        return self._cache[key]

    def reverse_kl(self, **changes) -> float:
        """``KL(q ‖ p)`` of the decoder (with ``changes``)."""
        return _kl(self.log_q(**changes), self.log_p().reshape(-1))

    def forward_kl(self, **changes) -> float:
        """``KL(p ‖ q)`` of the decoder (with ``changes``)."""
        return _kl(self.log_p().reshape(-1), self.log_q(**changes))

    def steps(self) -> list[Step]:
        """:func:`reachable_steps` of the decoder with its predictor."""
        if "steps" not in self._cache:
            self._cache["steps"] = reachable_steps(
                self.build(), self.predictor(), self.length
            )
        return self._cache["steps"]

    def possible_steps(self) -> list[Step]:
        """The reachable steps whose context has positive probability under ``p``."""
        if "possible" not in self._cache:
            out = []
            for step in self.steps():
                revealed = step.tokens != self.target.mask_id
                x = torch.where(revealed, step.tokens, 0)
                if torch.isfinite(self.target.log_evidence(x, revealed)):
                    out.append(step)
            self._cache["possible"] = out
        return self._cache["possible"]

    def step_joint(self, step: Step) -> Tensor:
        """``log p(x_A | x_S)`` of a step's positions, shape ``(V,)*|A|``."""
        revealed = step.tokens != self.target.mask_id
        x = torch.where(revealed, step.tokens, 0)
        return self.target.joint(x, revealed, list(step.positions))

    def size(self) -> tuple:
        """``(T, V, remasking rounds, support size)``."""
        support = int(torch.isfinite(self.log_p()).sum())
        return (
            self.length,
            self.target.vocab_size,
            self.decoder.remask_rounds,
            support,
        )

    def to_dict(self) -> dict:
        return {
            "target": describe_target(self.target),
            "decoder": self.decoder.to_dict(),
            "level": self.level,
            "noise_seed": self.noise_seed,
            "support": self.support,
        }


def fixed_step_sets(instance: DecoderInstance) -> tuple[tuple[int, ...], ...] | None:
    """The step sets of a decoder whose choices ignore the values, else ``None``.

    Permutation, ``l2r`` and ``r2l`` orders with the fixed or steps schedules, and
    the graph order (its sets depend on which positions are revealed only).
    """
    spec = instance.decoder
    value_free = spec.order == "graph" or (
        (isinstance(spec.order, tuple) or spec.order in ("l2r", "r2l"))
        and spec.schedule in ("fixed", "steps")
    )
    if not value_free or spec.remask_rounds:
        return None
    decoder = instance.build()
    T, V = instance.length, instance.target.vocab_size
    masked = torch.ones(1, T, dtype=torch.bool)
    dummy = torch.full((1, T, V), -math.log(V), dtype=torch.float64)
    sets = []
    while masked.any():
        if spec.order == "graph":
            select = decoder.order.choose(masked)
        else:
            eligible = decoder.schedule.eligible(torch.ones_like(masked), masked)
            ranked = rank(decoder.order.scores(dummy), eligible)
            select = decoder.schedule.select(
                dummy, ranked, eligible, torch.ones_like(masked)
            )
        sets.append(tuple(select[0].nonzero().squeeze(-1).tolist()))
        masked = masked & ~select
    return tuple(sets)


# -- seeded builders ---------------------------------------------------------------------


def log_uniform(generator: torch.Generator, low: float, high: float) -> float:
    """``10^u`` with ``u`` uniform in ``[log10 low, log10 high)``."""
    return 10 ** g.uniform(generator, math.log10(low), math.log10(high))


def random_order(generator: torch.Generator, length: int, adaptive: float = 0.35):
    """A uniformly random permutation, or (with probability ``adaptive``) one of the
    deterministic order names."""
    if g.uniform(generator) < adaptive:
        return g.choice(generator, ("l2r", "r2l", "entropy", "confidence", "margin"))
    return tuple(torch.randperm(length, generator=generator).tolist())


def random_level(generator: torch.Generator) -> float:
    """A model-error level: 0, one of a few round values, or uniform in (0.05, 4)."""
    return g.choice(generator, (0.0, 0.3, 1.0, 3.0, g.uniform(generator, 0.05, 4.0)))


def random_rollout(generator: torch.Generator, max_length: int = 4) -> RolloutInstance:
    """A table (``2 <= T <= max_length``), a noisy model and an order, no ``α, λ, b``.

    The ``"full"`` support (every token gets mass) comes with positive tables only,
    so that ``J(π)`` stays finite.
    """
    shape = g.random_shape(generator, max_length=max_length, min_length=2)
    support = "full" if g.uniform(generator) < 0.2 else "keep"
    style = g.choice(generator, ("dense", "peaked")) if support == "full" else None
    return RolloutInstance(
        g.random_joint(generator, shape, style),
        random_order(generator, len(shape)),
        random_level(generator),
        g.randint(generator, 0, 2**31 - 1),
        support,
        g.choice(generator, ENTROPY_LAWS),
    )


def random_parameters(
    generator: torch.Generator, instance: RolloutInstance, b_zero: bool = False
) -> RolloutInstance:
    """The rollout with ``α, λ, b`` that make Assumption 4.2 hold, two of them drawn
    and the third the smallest that works (see :mod:`pmdm.theory.rollout`).

    Modes: ``b`` smallest given ``α, λ`` (``α`` anywhere in ``[1e-3, 10]``, or tiny
    so that ``b`` carries the errors); ``α`` smallest given ``λ`` and ``b = 0``;
    ``λ`` smallest given ``α`` and ``b = 0`` (``α`` drawn, or the smallest that
    covers the first step, so that ``λ`` carries the rest); ``b`` above its
    smallest value. ``b_zero`` keeps to the modes with ``b = 0``. ``α`` is at least
    ``1e-6`` (the assumption asks ``α > 0``; a larger ``α`` only adds slack). When
    no finite value works (``J = ∞``), the parameters fail the assumption.
    """
    profile = instance.profile()
    e, h = profile.errors, profile.entropy(instance.law)
    modes = (
        ("alpha", "lam", "first")
        if b_zero
        else ("b", "tiny", "alpha", "lam", "first", "more")
    )
    mode = g.choice(generator, modes)
    alpha = log_uniform(generator, 1e-3, 10.0)
    lam = g.choice(generator, (0.0, log_uniform(generator, 1e-2, 3.0)))
    b = 0.0
    if mode == "tiny":
        alpha, lam = (
            log_uniform(generator, 1e-6, 1e-3),
            log_uniform(generator, 0.3, 3.0),
        )
    if mode == "alpha":
        alpha = smallest_alpha(e, h, lam, 0.0)
    elif mode in ("lam", "first"):
        if mode == "first" and float(h[0]) > 0:
            alpha = float(e[0] / h[0])
        lam = smallest_lam(e, h, alpha, 0.0)
    else:
        b = smallest_b(e, h, alpha, lam)
        if mode == "more":
            b += log_uniform(generator, 1e-3, 1.0)
    if not (math.isfinite(alpha) and math.isfinite(lam) and math.isfinite(b)):
        alpha, lam, b = 1.0, 1.0, 0.0
        if not b_zero:
            b = smallest_b(e, h, alpha, lam)
        b = b if math.isfinite(b) else 0.0
    return instance.with_parameters(max(alpha, 1e-6), lam, b)


def random_table_target(
    generator: torch.Generator, max_length: int = 4, min_length: int = 1
) -> TableTarget:
    """A :class:`~pmdm.models.table.TableTarget` of a random joint (zeros allowed)."""
    shape = g.random_shape(generator, max_length=max_length, min_length=min_length)
    return TableTarget.from_dense(g.random_joint(generator, shape).exp())


def random_token_hmm(generator: torch.Generator, max_length: int = 4) -> TokenHMM:
    """A small token HMM; identity emissions (a visible Markov chain) one time in
    two."""
    V = g.randint(generator, 2, 3)
    T = g.randint(generator, 2, max_length if V == 2 else min(max_length, 4))
    K = V if g.uniform(generator) < 0.5 else g.randint(generator, 1, 3)

    def rows(count: int, width: int) -> Tensor:
        rate = g.choice(generator, (0.0, 0.3))
        return torch.stack(
            [
                g.normalize_log(g.random_weights(generator, (width,), rate)).exp()
                for _ in range(count)
            ]
        )

    emit = (
        torch.eye(V, dtype=torch.float64)
        if K == V and g.uniform(generator) < 0.5
        else rows(K, V)
    )
    return TokenHMM(rows(1, K)[0], rows(K, K), emit, T)


def random_small_block_hmm(generator: torch.Generator, max_length: int = 6) -> BlockHMM:
    """A Block-HMM with ``T <= max_length`` (see
    :func:`pmdm.theory.generators.random_block_hmm`)."""
    while True:
        hmm = g.random_block_hmm(generator, max_block_size=3, max_blocks=3)
        if hmm.length <= max_length:
            return hmm


def random_target(generator: torch.Generator) -> Target:
    """A table (half the time), a token HMM or a Block-HMM, all small."""
    u = g.uniform(generator)
    if u < 0.5:
        return random_table_target(generator, min_length=2)
    if u < 0.75:
        return random_token_hmm(generator)
    return random_small_block_hmm(generator)
