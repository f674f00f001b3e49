"""The fixed 1000-problem test suite of 10-digit addition.

The suite follows the paper's Appendix D (see ``THEORY.md`` §4): 1000 problems of
non-negative integers with at most 10 digits, in six categories with exact shares.

==========  =====  ==========================================================
category    count  problems
==========  =====  ==========================================================
easy          100  both operands with the same number of digits, 1 to 3
medium        200  same, 4 to 6 digits
hard          300  same, 7 to 9 digits
extreme       200  both operands with 10 digits
edge          100  cascading carries (``9999999999 + 1``, ``a + b = 10**10``,
                   runs of nines), adding zero, operands near ``9999999999``
mixed         100  operands of different lengths, 1 to 10 digits
==========  =====  ==========================================================

The suite is generated once by :func:`generate_suite` from :data:`SUITE_SEED` and
shipped as ``pmdm/arithmetic/data/suite.json`` so that every version of pmdm scores
the same problems; :func:`load_suite` reads the shipped file. No ``(a, b)`` pair
occurs twice. Sums can have 11 digits.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from pmdm.arithmetic._io import atomic_write_text
from pmdm.ops.validation import check_int

__all__ = [
    "CATEGORIES",
    "CATEGORY_COUNTS",
    "MAX_OPERAND",
    "SUITE_SEED",
    "Problem",
    "generate_suite",
    "load_suite",
    "suite_to_json",
    "write_suite",
]

#: Seed of the shipped suite.
SUITE_SEED = 2025

#: The largest operand, ten nines.
MAX_OPERAND = 10**10 - 1

#: Number of problems per category, in the order they appear in the suite.
CATEGORY_COUNTS: dict[str, int] = {
    "easy": 100,
    "medium": 200,
    "hard": 300,
    "extreme": 200,
    "edge": 100,
    "mixed": 100,
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_COUNTS)

# Digit counts of the length categories; "mixed" draws two different lengths
_LENGTHS = {
    "easy": (1, 2, 3),
    "medium": (4, 5, 6),
    "hard": (7, 8, 9),
    "extreme": (10,),
}

_SUITE_FORMAT = 1


@dataclass(frozen=True)
class Problem:
    """One addition problem of the suite.

    Attributes
    ----------
    id : int
        Position in the suite, 0 to 999.
    a, b : int
        The operands, ``0 <= a, b <= 9999999999``.
    sum : int
        ``a + b``.
    category : str
        One of :data:`CATEGORIES`.
    """

    id: int
    a: int
    b: int
    sum: int
    category: str


def _random_with_digits(rng: random.Random, n_digits: int) -> int:
    """A uniform integer with exactly ``n_digits`` digits (0 counts as one digit)."""
    if n_digits == 1:
        return rng.randrange(10)
    return rng.randrange(10 ** (n_digits - 1), 10**n_digits)


def _edge_pairs(
    rng: random.Random, unique: Callable[[int, int], bool]
) -> list[tuple[int, int]]:
    """The 100 edge-case pairs: 40 cascading carries, 25 zero operands, 35 near max."""
    pairs: list[tuple[int, int]] = []

    def add(a: int, b: int) -> None:
        if unique(a, b):
            pairs.append((a, b))

    def add_random(count: int, draw: Callable[[], tuple[int, int]]) -> None:
        target = len(pairs) + count
        while len(pairs) < target:
            add(*draw())

    # Cascading carries: nines plus one, both ways round (k = 1..10)
    for k in range(1, 11):
        add(10**k - 1, 1)
        add(1, 10**k - 1)

    # Complements a + b = 10**10: a carry through all ten digits
    def complement() -> tuple[int, int]:
        a = rng.randrange(10**9 + 1, 9 * 10**9)
        return a, 10**10 - a

    add_random(10, complement)

    # A run of 4 to 9 trailing nines under a random prefix, plus a small number
    def nines_run() -> tuple[int, int]:
        run = rng.randrange(4, 10)
        prefix = rng.randrange(1, 10 ** (10 - run))
        return prefix * 10**run + 10**run - 1, rng.randrange(1, 10)

    add_random(10, nines_run)

    # Adding zero: 0 + 0, then a + 0 and 0 + b over lengths 1..10
    add(0, 0)
    add_random(12, lambda: (_random_with_digits(rng, rng.randrange(1, 11)), 0))
    add_random(12, lambda: (0, _random_with_digits(rng, rng.randrange(1, 11))))

    # Near the maximum: max + max, then operands within 1000 of the maximum
    add(MAX_OPERAND, MAX_OPERAND)
    add_random(
        20,
        lambda: (MAX_OPERAND - rng.randrange(1001), MAX_OPERAND - rng.randrange(1001)),
    )
    add_random(
        14, lambda: (MAX_OPERAND - rng.randrange(1001), _random_with_digits(rng, 10))
    )
    return pairs


def generate_suite(seed: int = SUITE_SEED) -> list[Problem]:
    """Generate the test suite from a seed.

    Parameters
    ----------
    seed : int
        Seed of the :class:`random.Random` generator that draws every problem.
        :data:`SUITE_SEED` gives the shipped suite.

    Returns
    -------
    list of Problem
        1000 problems, grouped by category in the order of :data:`CATEGORIES`, with
        ids 0 to 999.

    Examples
    --------
    >>> suite = generate_suite()
    >>> len(suite), suite[0].category, suite[-1].category
    (1000, 'easy', 'mixed')
    """
    check_int("seed", seed, minimum=0)
    rng = random.Random(seed)
    seen: set[tuple[int, int]] = set()

    def unique(a: int, b: int) -> bool:
        if (a, b) in seen:
            return False
        seen.add((a, b))
        return True

    # Edge cases first, so that random draws of other categories cannot take them
    by_category = {"edge": _edge_pairs(rng, unique)}
    assert len(by_category["edge"]) == CATEGORY_COUNTS["edge"]
    for category, count in CATEGORY_COUNTS.items():
        if category == "edge":
            continue
        drawn = by_category[category] = []
        while len(drawn) < count:
            if category == "mixed":
                len_a, len_b = rng.sample(range(1, 11), 2)
            else:
                lengths = _LENGTHS[category]
                len_a = len_b = lengths[len(drawn) % len(lengths)]
            a, b = _random_with_digits(rng, len_a), _random_with_digits(rng, len_b)
            if unique(a, b):
                drawn.append((a, b))
    pairs = [(a, b, c) for c in CATEGORIES for a, b in by_category[c]]
    return [
        Problem(i, a, b, a + b, category) for i, (a, b, category) in enumerate(pairs)
    ]


def suite_to_json(problems: list[Problem], seed: int = SUITE_SEED) -> str:
    """The JSON text of a suite, as shipped in ``data/suite.json``.

    Parameters
    ----------
    problems : list of Problem
        The suite.
    seed : int
        The seed that generated it, recorded in the file.
    """
    payload = {
        "format": _SUITE_FORMAT,
        "seed": seed,
        "generator": "pmdm.arithmetic.suite.generate_suite",
        "category_counts": CATEGORY_COUNTS,
        "problems": [asdict(p) for p in problems],
    }
    return json.dumps(payload, indent=1) + "\n"


def _problems_from_payload(payload: dict[str, Any]) -> list[Problem]:
    return [Problem(**row) for row in payload["problems"]]


@lru_cache(maxsize=1)
def _load_shipped() -> tuple[Problem, ...]:
    text = resources.files("pmdm.arithmetic").joinpath("data/suite.json").read_text()
    return tuple(_problems_from_payload(json.loads(text)))


def load_suite(categories: str | list[str] | None = None) -> list[Problem]:
    """The shipped test suite, optionally restricted to some categories.

    Parameters
    ----------
    categories : str or list of str, optional
        Keep only problems of these categories (default: all 1000 problems).

    Returns
    -------
    list of Problem
        The problems in suite order.

    Raises
    ------
    ValueError
        If a category is not one of :data:`CATEGORIES`.

    Examples
    --------
    >>> len(load_suite()), len(load_suite("edge"))
    (1000, 100)
    """
    problems = list(_load_shipped())
    if categories is None:
        return problems
    wanted = [categories] if isinstance(categories, str) else list(categories)
    unknown = [c for c in wanted if c not in CATEGORIES]
    if unknown:
        raise ValueError(
            f"categories must be among {', '.join(CATEGORIES)}; got categories={categories!r}"
        )
    return [p for p in problems if p.category in wanted]


def write_suite(path: str | os.PathLike[str], seed: int = SUITE_SEED) -> None:
    """Generate the suite and write it as JSON, atomically.

    The shipped file was written by
    ``python -c "from pmdm.arithmetic.suite import write_suite;
    write_suite('pmdm/arithmetic/data/suite.json')"``.

    Parameters
    ----------
    path : path-like
        Destination file; written to a temporary file beside it, then renamed.
    seed : int
        Seed passed to :func:`generate_suite`.
    """
    atomic_write_text(path, suite_to_json(generate_suite(seed), seed))
