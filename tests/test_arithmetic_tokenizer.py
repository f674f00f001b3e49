"""Tests of the character vocabulary and the fixed-width layout."""

from __future__ import annotations

import pytest
import torch

from pmdm.arithmetic.scoring import score
from pmdm.arithmetic.suite import load_suite
from pmdm.arithmetic.tokenizer import (
    MASK_ID,
    PAD_ID,
    VOCAB,
    VOCAB_SIZE,
    AdditionLayout,
    decode,
    encode,
)


def test_vocabulary():
    assert VOCAB == tuple("0123456789+=.?")
    assert VOCAB_SIZE == 14
    assert (PAD_ID, MASK_ID) == (12, 13)
    assert [int(i) for i in encode("0123456789")] == list(range(10))


@pytest.mark.parametrize("text", ["", "0", "12+345=357", "....9+...1=10", "??..?+="])
def test_encode_decode_round_trip(text):
    ids = encode(text)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert decode(ids) == text
    assert decode(ids.tolist()) == text


def test_layout_text_by_hand():
    layout = AdditionLayout()
    assert layout.text(12, 345) == "........12+.......345=........357"
    assert layout.text(9_999_999_999, 1) == "9999999999+.........1=10000000000"
    assert layout.text(0, 0) == ".........0+.........0=..........0"
    assert (
        layout.text(12, 345, with_answer=False) == "........12+.......345=" + "?" * 11
    )
    reversed_layout = AdditionLayout(reverse_answer=True)
    assert reversed_layout.text(12, 345) == "........12+.......345=753........"
    assert reversed_layout.text(9_999_999_999, 1) == "9999999999+.........1=00000000001"


def test_layout_sizes():
    layout = AdditionLayout()
    assert (layout.prompt_length, layout.answer_width, layout.length) == (22, 11, 33)
    assert layout.answer_slice == slice(22, 33)


@pytest.mark.parametrize("reverse_answer", [False, True])
def test_vectorized_encoding_matches_text_on_the_suite(reverse_answer):
    layout = AdditionLayout(reverse_answer=reverse_answer)
    suite = load_suite()
    ids = layout.encode([p.a for p in suite], [p.b for p in suite])
    assert ids.shape == (1000, 33)
    assert [decode(row) for row in ids] == [layout.text(p.a, p.b) for p in suite]

    # Masked prompts: the same prompt, the answer all masks
    prompts = layout.encode(
        [p.a for p in suite], [p.b for p in suite], with_answer=False
    )
    assert torch.equal(prompts[:, :22], ids[:, :22])
    assert (prompts[:, 22:] == MASK_ID).all()


@pytest.mark.parametrize("reverse_answer", [False, True])
def test_true_answers_score_perfectly(reverse_answer):
    layout = AdditionLayout(reverse_answer=reverse_answer)
    suite = load_suite()
    answers = layout.answer_strings(
        layout.encode([p.a for p in suite], [p.b for p in suite])
    )
    assert score(suite, answers, reverse=reverse_answer).overall.accuracy == 1.0
    # Read in the wrong direction most answers are wrong
    assert score(suite, answers, reverse=not reverse_answer).overall.accuracy < 0.1


def test_encode_keeps_batch_shape():
    layout = AdditionLayout(operand_width=3)
    ids = layout.encode(
        torch.tensor([[1, 22], [333, 0]]), torch.tensor([[999, 1], [7, 0]])
    )
    assert ids.shape == (2, 2, 12)
    assert decode(ids[0, 0]) == layout.text(1, 999) == "..1+999=1000"


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: encode("1+x"), ValueError, r"outside the vocabulary .*\['x'\]"),
        (
            lambda: decode([3, 14]),
            ValueError,
            r"ids must lie in \[0, 14\), got .*\[14\]",
        ),
        (
            lambda: AdditionLayout().text(-1, 2),
            ValueError,
            r"a=-1: expected an integer >= 0",
        ),
        (
            lambda: AdditionLayout().text(1, 10**10),
            ValueError,
            r"b=10000000000: expected an integer <= 9999999999",
        ),
        (
            lambda: AdditionLayout().text(1.0, 2),
            TypeError,
            r"a=1.0: expected an integer",
        ),
        (
            lambda: AdditionLayout().encode([10**10], [1]),
            ValueError,
            r"a must lie in \[0, 9999999999\]",
        ),
        (lambda: AdditionLayout().encode([1, 2], [1]), ValueError, r"same shape"),
        (
            lambda: AdditionLayout(operand_width=0),
            ValueError,
            r"operand_width=.*: expected an integer >= 1",
        ),
        (
            lambda: AdditionLayout(reverse_answer="yes"),
            TypeError,
            r"reverse_answer must be a bool, got reverse_answer='yes'",
        ),
        (
            lambda: AdditionLayout().answer_strings(
                torch.zeros(2, 5, dtype=torch.long)
            ),
            ValueError,
            r"tokens must have shape \(N, 33\), got \(2, 5\)",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
