"""The instances statements are evaluated on: explicit tables and their parameters.

Every instance is a frozen dataclass holding float64 log-probability tables (see
:mod:`pmdm.metrics.information` for the table layout), validated on construction,
with ``size()`` (a sort key: smaller is simpler, used to pick a minimal
counterexample) and ``to_dict()`` (plain JSON types, probabilities as nested
lists).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from pmdm.metrics.information import check_joint_table, check_partition
from pmdm.ops.validation import check_int, check_real


def _log_table(value: Tensor | Sequence, name: str, length: int | None = None):
    log_p = torch.as_tensor(value, dtype=torch.float64)
    return check_joint_table(log_p, length, name)[0]


def _probs(log_p: Tensor) -> list:
    return log_p.exp().tolist()


def _support(log_p: Tensor) -> int:
    return int((~torch.isneginf(log_p)).sum())


@dataclass(frozen=True, eq=False)
class JointTable:
    """A joint distribution ``p`` over ``T`` positions as an explicit table.

    Attributes
    ----------
    log_p : Tensor, shape (V_1, ..., V_T)
        Normalized log-probabilities, float64.

    Examples
    --------
    >>> import torch
    >>> JointTable.from_probs(torch.tensor([[0.5, 0.0], [0.0, 0.5]])).size()
    (2, 2, 2)
    """

    log_p: Tensor

    def __post_init__(self):
        object.__setattr__(self, "log_p", _log_table(self.log_p, "log_p"))

    @classmethod
    def from_probs(cls, probs: Tensor | Sequence) -> JointTable:
        """The table of probabilities ``probs`` (zeros allowed)."""
        return cls(torch.as_tensor(probs, dtype=torch.float64).log())

    @property
    def length(self) -> int:
        """``T``."""
        return self.log_p.dim()

    def size(self) -> tuple:
        """``(T, largest V, support size)``."""
        return (self.length, max(self.log_p.shape), _support(self.log_p))

    def to_dict(self) -> dict:
        return {"probs": _probs(self.log_p)}


@dataclass(frozen=True, eq=False)
class BlockedTable:
    """A joint table with an ordered partition of its positions into blocks.

    Attributes
    ----------
    log_p : Tensor, shape (V_1, ..., V_T)
    blocks : tuple of tuple of int
        ``B_1..B_M`` in decoding order.
    """

    log_p: Tensor
    blocks: tuple

    def __post_init__(self):
        log_p = _log_table(self.log_p, "log_p")
        object.__setattr__(self, "log_p", log_p)
        object.__setattr__(
            self, "blocks", check_partition("blocks", self.blocks, log_p.dim())
        )

    @property
    def length(self) -> int:
        return self.log_p.dim()

    def size(self) -> tuple:
        """``(T, largest V, largest block, support size)``."""
        largest = max(len(b) for b in self.blocks)
        return (self.length, max(self.log_p.shape), largest, _support(self.log_p))

    def to_dict(self) -> dict:
        return {"probs": _probs(self.log_p), "blocks": [list(b) for b in self.blocks]}


@dataclass(frozen=True, eq=False)
class MarkovInstance:
    """``p``, a second distribution ``q`` on the same table, and a threshold ``ε``.

    Attributes
    ----------
    log_p, log_q : Tensor, shape (V_1, ..., V_T)
    eps : float
        In ``(0, 1)``.
    """

    log_p: Tensor
    log_q: Tensor
    eps: float

    def __post_init__(self):
        log_p = _log_table(self.log_p, "log_p")
        log_q = _log_table(self.log_q, "log_q", log_p.dim())
        if log_q.shape != log_p.shape:
            raise ValueError(
                f"log_q: expected the shape of log_p {tuple(log_p.shape)}, actual "
                f"{tuple(log_q.shape)}"
            )
        eps = check_real(
            "eps", self.eps, low=0.0, high=1.0, low_open=True, high_open=True
        )
        object.__setattr__(self, "log_p", log_p)
        object.__setattr__(self, "log_q", log_q)
        object.__setattr__(self, "eps", eps)

    def size(self) -> tuple:
        p = self.log_p
        return (p.dim(), max(p.shape), _support(p) + _support(self.log_q))

    def to_dict(self) -> dict:
        return {"probs": _probs(self.log_p), "q": _probs(self.log_q), "eps": self.eps}


@dataclass(frozen=True, eq=False)
class SimulationInstance:
    """A joint table with the size and seed of a Monte Carlo simulation.

    Attributes
    ----------
    log_p : Tensor, shape (V_1, ..., V_T)
    num_runs : int
        ``N``, independent runs of the simulated procedure.
    seed : int
        Seed of the ``torch.Generator`` that drives the simulation.
    """

    log_p: Tensor
    num_runs: int
    seed: int

    def __post_init__(self):
        object.__setattr__(self, "log_p", _log_table(self.log_p, "log_p"))
        object.__setattr__(
            self, "num_runs", check_int("num_runs", self.num_runs, minimum=2)
        )
        object.__setattr__(self, "seed", check_int("seed", self.seed, minimum=0))

    def size(self) -> tuple:
        return (self.log_p.dim(), max(self.log_p.shape), _support(self.log_p))

    def to_dict(self) -> dict:
        return {
            "probs": _probs(self.log_p),
            "num_runs": self.num_runs,
            "seed": self.seed,
        }


@dataclass(frozen=True, eq=False)
class ConditionalTable:
    """A prompt distribution, the conditional law of an answer, and a factorized
    one-step model of that answer.

    Attributes
    ----------
    log_prompt : Tensor, shape (X,)
        ``log p(x)`` of the prompts.
    log_cond : Tensor, shape (X, V, ..., V)
        ``log p(y | x)``, one normalized table over the ``n`` answer positions per
        prompt.
    log_model : Tensor, shape (X, n, V)
        ``log q_i(y_i | x)``: the factorized model's law of each answer position.
    """

    log_prompt: Tensor
    log_cond: Tensor
    log_model: Tensor

    def __post_init__(self):
        prompt = _log_table(self.log_prompt, "log_prompt")
        if prompt.dim() != 1:
            raise ValueError(
                f"log_prompt: expected shape (X,), actual {tuple(prompt.shape)}"
            )
        cond = torch.as_tensor(self.log_cond, dtype=torch.float64)
        if cond.dim() < 2 or cond.shape[0] != prompt.shape[0]:
            raise ValueError(
                f"log_cond: expected shape ({prompt.shape[0]}, V, ..., V), actual "
                f"{tuple(cond.shape)}"
            )
        n = cond.dim() - 1
        cond = check_joint_table(cond, n, "log_cond")[0]
        V = cond.shape[1]
        if any(s != V for s in cond.shape[1:]):
            raise ValueError(
                f"log_cond: expected equal answer axes (X, V, ..., V), actual "
                f"{tuple(cond.shape)}"
            )
        model = torch.as_tensor(self.log_model, dtype=torch.float64)
        if tuple(model.shape) != (prompt.shape[0], n, V):
            raise ValueError(
                f"log_model: expected shape ({prompt.shape[0]}, {n}, {V}), actual "
                f"{tuple(model.shape)}"
            )
        model = check_joint_table(model, 1, "log_model")[0]
        object.__setattr__(self, "log_prompt", prompt)
        object.__setattr__(self, "log_cond", cond)
        object.__setattr__(self, "log_model", model)

    @property
    def log_joint(self) -> Tensor:
        """``log p(x, y)``, shape ``(X, V, ..., V)``: the prompt is position 0."""
        n = self.log_cond.dim() - 1
        return self.log_cond + self.log_prompt.reshape((-1,) + (1,) * n)

    def size(self) -> tuple:
        c = self.log_cond
        return (c.dim() - 1, c.shape[0], c.shape[1], _support(self.log_joint))

    def to_dict(self) -> dict:
        return {
            "prompt": _probs(self.log_prompt),
            "cond": _probs(self.log_cond),
            "model": _probs(self.log_model),
        }


@dataclass(frozen=True, eq=False)
class ThresholdInstance:
    """A joint table with one threshold parameter (``ε`` or ``γ``).

    Attributes
    ----------
    log_p : Tensor, shape (V_1, ..., V_T)
    threshold : float
        Non-negative and finite.
    """

    log_p: Tensor
    threshold: float

    def __post_init__(self):
        object.__setattr__(self, "log_p", _log_table(self.log_p, "log_p"))
        value = check_real("threshold", self.threshold, low=0.0)
        if not math.isfinite(value):
            raise ValueError(f"threshold={value!r}: expected a finite value")
        object.__setattr__(self, "threshold", value)

    def size(self) -> tuple:
        return (self.log_p.dim(), max(self.log_p.shape), _support(self.log_p))

    def to_dict(self) -> dict:
        return {"probs": _probs(self.log_p), "threshold": self.threshold}


@dataclass(frozen=True, eq=False)
class ScheduleInstance:
    """A joint table and a schedule of step sizes ``s_1..s_K`` summing to ``T``.

    Attributes
    ----------
    log_p : Tensor, shape (V_1, ..., V_T)
    sizes : tuple of int
        Positive; step ``k`` reveals ``s_k`` uniformly random masked positions.
    """

    log_p: Tensor
    sizes: tuple

    def __post_init__(self):
        log_p = _log_table(self.log_p, "log_p")
        sizes = tuple(check_int("sizes[]", s, minimum=1) for s in self.sizes)
        if sum(sizes) != log_p.dim():
            raise ValueError(
                f"sizes={list(sizes)!r}: expected positive step sizes summing to the "
                f"length T = {log_p.dim()}"
            )
        object.__setattr__(self, "log_p", log_p)
        object.__setattr__(self, "sizes", sizes)

    @property
    def length(self) -> int:
        return self.log_p.dim()

    def size(self) -> tuple:
        p = self.log_p
        return (p.dim(), max(p.shape), len(self.sizes), _support(p))

    def to_dict(self) -> dict:
        return {"probs": _probs(self.log_p), "sizes": list(self.sizes)}
