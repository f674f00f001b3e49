"""Statements as code, their registry, and the check that tries to break them.

A :class:`Statement` computes both sides of one formal statement on an instance:
``evaluate(instance) -> (lhs, rhs)``, each side a float (exact, by enumeration) or
an :class:`~pmdm.metrics.estimate.Estimate` (Monte Carlo, with its standard
error). Its ``relation`` says how the sides compare (``==``, ``<=``, ``>=``), its
``assumptions`` are predicates an instance must satisfy for the statement to
apply, and ``generate`` draws a random instance with a seeded generator.

:func:`check` runs a statement on instances and reports a verdict, the number of
examples, the tightest margin and, when it fails, a minimal counterexample.

Adding a statement (the decoder-based ones of the paper, Lemma 4.1, Eq. 11 and
Prop. C.5, belong here once :mod:`pmdm.decoding` is complete): subclass
:class:`Statement`, set the class attributes, implement ``evaluate`` and
``generate``, and decorate the class with :func:`register`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from pmdm.metrics.estimate import Estimate, json_number

#: The kinds of statement: proven identities and inequalities, and forms that a
#: summary claims and that are tested rather than trusted.
KINDS = ("identity", "inequality", "claimed-form")

#: How ``lhs`` compares with ``rhs``.
RELATIONS = ("==", "<=", ">=")

Side = float | Estimate


@dataclass(frozen=True)
class Source:
    """Where a statement comes from.

    Attributes
    ----------
    authors : str
    year : int
    arxiv : str
        arXiv identifier, e.g. ``"2602.00286"``.
    where : str
        Equation, lemma or section, e.g. ``"Lemma C.1"``.
    """

    authors: str
    year: int
    arxiv: str
    where: str

    def __str__(self) -> str:
        return f"{self.authors} ({self.year}), arXiv {self.arxiv}, {self.where}"


@dataclass(frozen=True)
class Assumption:
    """A named, checkable predicate on an instance."""

    name: str
    holds: Callable[[Any], bool]

    def __call__(self, instance) -> bool:
        return bool(self.holds(instance))


@dataclass(frozen=True)
class Comparison:
    """How the two sides of one evaluation compare.

    Attributes
    ----------
    ok : bool
        Whether the relation holds (within tolerance, or within ``z_max`` standard
        errors for a Monte Carlo side).
    margin : float
        Identity: ``|lhs − rhs|`` (exact) or ``|lhs − rhs| / stderr`` (Monte Carlo);
        inequality: smaller side over larger side, in ``[0, 1]``.
    margin_kind : str
        ``"abs-error"``, ``"z-score"`` or ``"ratio"``.
    degenerate : bool
        An inequality whose sides are both 0 or both ``+inf``: attained, but
        saying nothing about tightness (its ratio 1 is left out of the margin).
    """

    ok: bool
    margin: float
    margin_kind: str
    degenerate: bool = False


def _value(side: Side) -> float:
    return side.estimate if isinstance(side, Estimate) else float(side)


def _difference(a: float, b: float) -> float:
    # |a − b| with inf − inf = 0 for equal infinities.
    if math.isinf(a) or math.isinf(b):
        return 0.0 if a == b else math.inf
    return abs(a - b)


def _ratio(a: float, b: float) -> float:
    # Smaller over larger of two non-negative numbers; 0/0 and inf/inf are 1.
    small, large = min(a, b), max(a, b)
    if large == 0 or small == large:
        return 1.0
    if math.isinf(large):
        return 0.0
    return small / large


class Statement(ABC):
    """One formal statement, evaluated exactly or by Monte Carlo.

    Attributes
    ----------
    name : str
        Registry key, kebab-case.
    source : Source
    kind : str
        One of :data:`KINDS`.
    relation : str
        One of :data:`RELATIONS`: how ``lhs`` compares with ``rhs``.
    summary : str
        The statement in one line.
    assumptions : tuple of Assumption
    atol : float
        Tolerance of exact comparisons, scaled by ``max(1, |rhs|)``.
    z_max : float
        Largest accepted ``|lhs − rhs| / stderr`` of a Monte Carlo side.
    """

    name: ClassVar[str]
    source: ClassVar[Source]
    kind: ClassVar[str]
    relation: ClassVar[str]
    summary: ClassVar[str]
    assumptions: ClassVar[tuple[Assumption, ...]] = ()
    atol: ClassVar[float] = 1e-9
    z_max: ClassVar[float] = 5.0

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r}: {self.summary}>"

    @abstractmethod
    def evaluate(self, instance) -> tuple[Side, Side]:
        """Both sides of the statement on ``instance``."""

    @abstractmethod
    def generate(self, generator: torch.Generator):
        """A random instance drawn with ``generator`` (one that meets the
        assumptions, as far as the family allows)."""

    def failed_assumptions(self, instance) -> list[str]:
        """Names of the assumptions that ``instance`` does not satisfy."""
        return [a.name for a in self.assumptions if not a(instance)]

    def compare(self, lhs: Side, rhs: Side) -> Comparison:
        """Compare the two sides according to :attr:`relation`."""
        a, b = _value(lhs), _value(rhs)
        if math.isnan(a) or math.isnan(b):
            return Comparison(False, math.nan, "abs-error")
        tol = self.atol * max(1.0, abs(b) if math.isfinite(b) else 1.0)
        if self.relation == "==":
            diff = _difference(a, b)
            stderr = lhs.stderr if isinstance(lhs, Estimate) else 0.0
            if isinstance(lhs, Estimate) and lhs.method == "monte-carlo":
                if stderr > 0 and math.isfinite(diff):
                    z = diff / stderr
                    return Comparison(z <= self.z_max, z, "z-score")
                ok = diff <= tol
                return Comparison(ok, 0.0 if ok else math.inf, "z-score")
            return Comparison(diff <= tol, diff, "abs-error")
        small, large = (a, b) if self.relation == "<=" else (b, a)
        if min(a, b) < -tol:
            raise ValueError(
                f"statement {self.name!r}: sides {a!r} and {b!r}: expected "
                "non-negative sides for a ratio margin"
            )
        a, b = max(a, 0.0), max(b, 0.0)
        ok = small <= large + tol or (math.isinf(small) and small == large)
        degenerate = a == b and (a == 0 or math.isinf(a))
        return Comparison(ok, _ratio(a, b), "ratio", degenerate)


_REGISTRY: dict[str, Statement] = {}


def register(cls: type[Statement]) -> type[Statement]:
    """Class decorator: instantiate a :class:`Statement` subclass and register it.

    Raises
    ------
    ValueError
        If the name is taken, or ``kind``/``relation`` is not a known value.
    """
    if cls.kind not in KINDS:
        raise ValueError(f"{cls.__name__}.kind={cls.kind!r}: expected one of {KINDS}")
    if cls.relation not in RELATIONS:
        raise ValueError(
            f"{cls.__name__}.relation={cls.relation!r}: expected one of {RELATIONS}"
        )
    if cls.name in _REGISTRY:
        raise ValueError(f"{cls.__name__}.name={cls.name!r}: already registered")
    _REGISTRY[cls.name] = cls()
    return cls


def names() -> list[str]:
    """Registered statement names, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> Statement:
    """The registered statement called ``name``.

    Raises
    ------
    ValueError
        If there is none; the message lists the registered names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"name={name!r}: expected a registered statement, one of {names()}"
        ) from None


def statements() -> list[Statement]:
    """Every registered statement, in registration order."""
    return list(_REGISTRY.values())


@dataclass
class CheckResult:
    """Outcome of :func:`check`.

    Attributes
    ----------
    statement, source, kind : str
    verdict : str
        ``"holds"`` (no evaluated example broke it), ``"fails"`` (see
        ``counterexample``) or ``"untested"`` (no example met the assumptions).
    examples : int
        Instances that met the assumptions and were evaluated.
    skipped : int
        Instances that did not meet the assumptions.
    margin : float or None
        The tightest margin seen: the largest ratio of the smaller to the larger
        side for an inequality (over non-degenerate examples; 1 if every example
        is degenerate), the largest absolute error (or z-score, for a Monte Carlo
        side) for an identity.
    margin_kind : str or None
    degenerate : int
        Inequality examples with both sides 0 or both infinite.
    counterexample : dict or None
        The smallest failing instance (by its ``size()``) with both sides.
    """

    statement: str
    source: str
    kind: str
    verdict: str
    examples: int
    skipped: int = 0
    margin: float | None = None
    margin_kind: str | None = None
    degenerate: int = 0
    counterexample: dict | None = field(default=None)

    def to_dict(self) -> dict:
        """Plain JSON types; infinities become ``"inf"``."""
        return {
            "statement": self.statement,
            "source": self.source,
            "kind": self.kind,
            "verdict": self.verdict,
            "examples": self.examples,
            "skipped": self.skipped,
            "margin": json_number(self.margin),
            "margin_kind": self.margin_kind,
            "degenerate": self.degenerate,
            "counterexample": self.counterexample,
        }


def _side_dict(side: Side) -> dict | float | str:
    if isinstance(side, Estimate):
        return side.to_dict()
    return json_number(float(side))


def check(statement: Statement | str, instances: Iterable) -> CheckResult:
    """Evaluate ``statement`` on every instance that meets its assumptions.

    Parameters
    ----------
    statement : Statement or str
        The statement or its registered name.
    instances : iterable
        Instances of the type the statement evaluates.

    Returns
    -------
    CheckResult

    Examples
    --------
    >>> import torch
    >>> from pmdm.theory.instances import JointTable
    >>> copies = JointTable.from_probs(torch.tensor([[0.5, 0.0], [0.0, 0.5]]))
    >>> check("dtc-identity", [copies]).verdict
    'holds'
    """
    if isinstance(statement, str):
        statement = get(statement)
    examples = skipped = degenerate = 0
    margin: float | None = None
    kind_of_margin: str | None = None
    failures = []
    for instance in instances:
        if statement.failed_assumptions(instance):
            skipped += 1
            continue
        lhs, rhs = statement.evaluate(instance)
        cmp = statement.compare(lhs, rhs)
        examples += 1
        kind_of_margin = cmp.margin_kind
        if cmp.degenerate:
            degenerate += 1
        elif margin is None or cmp.margin > margin or math.isnan(cmp.margin):
            margin = cmp.margin
        if not cmp.ok:
            failures.append((instance.size(), examples, instance, lhs, rhs))
    counterexample = None
    if failures:
        _, _, instance, lhs, rhs = min(failures, key=lambda f: (f[0], f[1]))
        counterexample = {
            "instance": instance.to_dict(),
            "lhs": _side_dict(lhs),
            "rhs": _side_dict(rhs),
        }
    if margin is None and degenerate:
        margin = 1.0
    verdict = "fails" if failures else ("holds" if examples else "untested")
    return CheckResult(
        statement=statement.name,
        source=str(statement.source),
        kind=statement.kind,
        verdict=verdict,
        examples=examples,
        skipped=skipped,
        margin=margin,
        margin_kind=kind_of_margin,
        degenerate=degenerate,
        counterexample=counterexample,
    )
