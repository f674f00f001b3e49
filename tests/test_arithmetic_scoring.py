"""Tests of exact-match scoring, with hand-made outputs."""

from __future__ import annotations

import math

import pytest

from pmdm.arithmetic.scoring import Accuracy, parse_answer, score
from pmdm.arithmetic.suite import Problem

PROBLEMS = [
    Problem(0, 12, 345, 357, "easy"),
    Problem(1, 9_999_999_999, 1, 10_000_000_000, "edge"),
    Problem(2, 0, 0, 0, "edge"),
    Problem(3, 1234, 8766, 10_000, "medium"),
    Problem(4, 5, 70, 75, "mixed"),
]


@pytest.mark.parametrize(
    ("text", "reverse", "expected"),
    [
        ("357", False, 357),
        ("........357", False, 357),
        ("753........", True, 357),
        ("  357\n", False, 357),
        ("00357", False, 357),
        ("75300", True, 357),  # trailing zeros of a reversed answer are leading zeros
        ("357<|eot_id|><|endoftext|>", False, 357),
        ("<pad> 357 </s>", False, 357),
        (". 357 .", False, 357),
        ("0", False, 0),
        ("...........", False, None),
        ("", False, None),
        ("3 57", False, None),
        ("3.57", False, None),
        ("35?", False, None),
        ("-357", False, None),
        ("+357", False, None),
        ("٣٥٧", False, None),  # non-ASCII digits are not accepted
    ],
)
def test_parse_answer(text, reverse, expected):
    assert parse_answer(text, reverse=reverse) == expected


def test_parse_answer_custom_pad_tokens():
    assert parse_answer("<E><E>42<E>", pad_tokens=("<E>",)) == 42
    assert parse_answer("..42", pad_tokens=("<E>",)) is None


def test_score_exact_match_and_categories():
    outputs = [
        "........357",  # right
        "10000000000",  # right, 11 digits
        "..........0",  # right
        "......09999",  # wrong: the carry was dropped
        "75",  # right
    ]
    result = score(PROBLEMS, outputs)
    assert result.correct == (True, True, True, False, True)
    assert result.predicted == (357, 10_000_000_000, 0, 9999, 75)
    assert (result.overall.n, result.overall.n_correct) == (5, 4)
    assert result.overall.accuracy == 0.8
    assert math.isclose(result.overall.stderr, math.sqrt(0.8 * 0.2 / 5))
    assert list(result.by_category) == ["easy", "medium", "edge", "mixed"]
    assert result.by_category["edge"].n == 2
    assert result.by_category["edge"].accuracy == 1.0
    assert result.by_category["medium"].accuracy == 0.0


def test_score_reversed_outputs():
    # The right answers written least significant digit first
    outputs = ["753", "00000000001", "0", "00001", "57..."]
    assert score(PROBLEMS, outputs, reverse=True).overall.n_correct == 5

    # Read without reversal they are mostly wrong: only palindromes survive
    assert score(PROBLEMS, outputs).correct == (False, False, True, False, False)


def test_score_counts_unreadable_outputs_as_wrong():
    result = score(PROBLEMS[:2], ["35?", ""])
    assert result.correct == (False, False)
    assert result.predicted == (None, None)


def test_to_dict_is_plain():
    result = score(PROBLEMS[:1], ["357"]).to_dict()
    assert result["overall"] == {"n": 1, "n_correct": 1, "accuracy": 1.0, "stderr": 0.0}
    assert list(result["by_category"]) == ["easy"]


def test_empty_accuracy_is_nan():
    empty = Accuracy(n=0, n_correct=0)
    assert math.isnan(empty.accuracy) and math.isnan(empty.stderr)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: score(PROBLEMS, ["357"]),
            ValueError,
            r"one entry per problem: got len\(outputs\)=1 for len\(problems\)=5",
        ),
        (lambda: parse_answer(357), TypeError, r"text must be a str, got text=357"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
