"""Tests of the shipped 1000-problem addition suite."""

from __future__ import annotations

from collections import Counter
from importlib import resources

import pytest

from pmdm.arithmetic.suite import (
    CATEGORIES,
    CATEGORY_COUNTS,
    MAX_OPERAND,
    SUITE_SEED,
    generate_suite,
    load_suite,
    suite_to_json,
    write_suite,
)

# The paper's shares (Appendix D), written out independently of the module
EXPECTED_COUNTS = {
    "easy": 100,
    "medium": 200,
    "hard": 300,
    "extreme": 200,
    "edge": 100,
    "mixed": 100,
}


def carry_chain(a: int, b: int) -> int:
    """Longest run of consecutive columns that produce a carry, by schoolbook addition."""
    longest = run = carry = 0
    while a or b or carry:
        carry = (a % 10 + b % 10 + carry) >= 10
        run = run + 1 if carry else 0
        longest = max(longest, run)
        a, b = a // 10, b // 10
    return longest


@pytest.fixture(scope="module")
def suite():
    return load_suite()


def test_shipped_file_is_the_seeded_generation():
    shipped = resources.files("pmdm.arithmetic").joinpath("data/suite.json").read_text()
    assert shipped == suite_to_json(generate_suite(SUITE_SEED), SUITE_SEED)


def test_loader_returns_the_regenerated_problems(suite):
    assert suite == generate_suite(SUITE_SEED)


def test_another_seed_gives_another_suite(suite):
    other = generate_suite(SUITE_SEED + 1)
    assert [p.category for p in other] == [p.category for p in suite]
    assert [(p.a, p.b) for p in other] != [(p.a, p.b) for p in suite]


def test_shares_are_exact(suite):
    assert len(suite) == 1000
    assert Counter(p.category for p in suite) == EXPECTED_COUNTS
    assert CATEGORY_COUNTS == EXPECTED_COUNTS
    assert tuple(CATEGORIES) == tuple(EXPECTED_COUNTS)


def test_ids_answers_and_ranges(suite):
    assert [p.id for p in suite] == list(range(1000))
    for p in suite:
        assert p.sum == p.a + p.b
        assert 0 <= p.a <= 9_999_999_999 and 0 <= p.b <= 9_999_999_999
    assert MAX_OPERAND == 9_999_999_999
    assert max(len(str(p.sum)) for p in suite) == 11


def test_no_problem_repeats(suite):
    assert len({(p.a, p.b) for p in suite}) == len(suite)


@pytest.mark.parametrize(
    ("category", "lengths"),
    [
        ("easy", {1, 2, 3}),
        ("medium", {4, 5, 6}),
        ("hard", {7, 8, 9}),
        ("extreme", {10}),
    ],
)
def test_length_categories(suite, category, lengths):
    problems = [p for p in suite if p.category == category]
    assert all(len(str(p.a)) == len(str(p.b)) for p in problems)
    assert {len(str(p.a)) for p in problems} == lengths


def test_mixed_operands_differ_in_length(suite):
    mixed = [p for p in suite if p.category == "mixed"]
    assert all(len(str(p.a)) != len(str(p.b)) for p in mixed)
    assert max(max(len(str(p.a)), len(str(p.b))) for p in mixed) == 10


def test_edge_cases_are_present(suite):
    edge = [p for p in suite if p.category == "edge"]
    pairs = {(p.a, p.b) for p in edge}

    # Cascading carries: the named case, full-length chains, many long chains
    assert (9_999_999_999, 1) in pairs
    assert (1, 9_999_999_999) in pairs
    assert sum(carry_chain(p.a, p.b) == 10 for p in edge) >= 10
    assert sum(carry_chain(p.a, p.b) >= 4 for p in edge) >= 30

    # Adding zero, on either side, and zero plus zero
    assert (0, 0) in pairs
    assert sum(p.b == 0 and p.a > 0 for p in edge) >= 10
    assert sum(p.a == 0 and p.b > 0 for p in edge) >= 10

    # Operands near the maximum, including the largest sum
    assert (MAX_OPERAND, MAX_OPERAND) in pairs
    assert (
        sum(p.a >= MAX_OPERAND - 1000 and p.b >= MAX_OPERAND - 1000 for p in edge) >= 20
    )


def test_load_suite_filters_categories(suite):
    edge = load_suite("edge")
    assert [p.id for p in edge] == [p.id for p in suite if p.category == "edge"]
    both = load_suite(["easy", "mixed"])
    assert len(both) == 200
    assert load_suite() is not load_suite()  # callers may mutate their list


def test_write_suite_round_trip(tmp_path):
    path = tmp_path / "sub" / "suite.json"
    write_suite(path, seed=7)
    assert path.read_text() == suite_to_json(generate_suite(7), 7)
    assert not [f for f in path.parent.iterdir() if f.name != "suite.json"]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: load_suite("tiny"), ValueError, r"categories must be among .*'tiny'"),
        (
            lambda: load_suite(["edge", "hardest"]),
            ValueError,
            r"categories=\['edge', 'hardest'\]",
        ),
        (lambda: generate_suite(-1), ValueError, r"seed=-1: expected an integer >= 0"),
        (lambda: generate_suite(1.5), TypeError, r"seed=1.5: expected an integer"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
