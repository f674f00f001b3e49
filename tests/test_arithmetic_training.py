"""Tests of the shared training pieces: data, curriculum, learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch

from pmdm.arithmetic._training import TrainSettings, sample_operands


def n_digits(x: torch.Tensor) -> list[int]:
    return [len(str(v)) for v in x.tolist()]


@pytest.mark.parametrize("max_digits", [1, 3, 10])
def test_sample_operands_respects_lengths(max_digits):
    a, b = sample_operands(4000, max_digits, torch.Generator().manual_seed(0))
    assert a.dtype == b.dtype == torch.long
    lengths = n_digits(a) + n_digits(b)
    assert set(lengths) == set(range(1, max_digits + 1))
    assert int(a.min()) >= 0 and int(b.min()) >= 0


def test_sample_operands_is_seeded_and_pairs_same_lengths():
    a1, b1 = sample_operands(2000, 10, torch.Generator().manual_seed(5))
    a2, b2 = sample_operands(2000, 10, torch.Generator().manual_seed(5))
    assert torch.equal(a1, a2) and torch.equal(b1, b2)

    # b has a's length with probability 1/2 + 1/2 * 1/10 = 0.55; N = 2000 gives a
    # standard error of 0.011
    same = sum(x == y for x, y in zip(n_digits(a1), n_digits(b1), strict=True)) / 2000
    assert abs(same - 0.55) < 5 * math.sqrt(0.55 * 0.45 / 2000)


def test_learning_rate_schedule_by_hand():
    settings = TrainSettings(steps=110, warmup_steps=10, min_lr_ratio=0.1)
    assert settings.lr_factor(0) == pytest.approx(0.1)
    assert settings.lr_factor(9) == pytest.approx(1.0)
    assert settings.lr_factor(10) == pytest.approx(1.0)
    # Halfway through the cosine: 0.1 + 0.9 * 0.5
    assert settings.lr_factor(60) == pytest.approx(0.55)
    assert settings.lr_factor(110) == pytest.approx(0.1)


def test_curriculum_off_at_ten_digits():
    settings = TrainSettings(steps=100, curriculum_start=10)
    assert {settings.max_digits(s) for s in range(100)} == {10}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, r"steps=0: expected an integer >= 1"),
        ({"steps": 5, "seed": -2}, r"seed=-2: expected an integer >= 0"),
        (
            {"steps": 5, "curriculum_start": 0},
            r"curriculum_start=.*: expected an integer >= 1",
        ),
        (
            {"steps": 5, "curriculum_fraction": 0},
            r"curriculum_fraction must lie in \(0, 1\]",
        ),
        (
            {"steps": 5, "min_lr_ratio": 2},
            r"min_lr_ratio must lie in \[0, 1\], got min_lr_ratio=2",
        ),
        (
            {"steps": 5, "lr": float("nan")},
            r"lr=nan: expected a finite real number",
        ),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainSettings(**kwargs)


def test_more_bad_arguments_of_shared_pieces():
    # The remaining validation messages of the backbone, decoders and checks
    from pmdm.arithmetic._transformer import Transformer, TransformerConfig
    from pmdm.arithmetic.evaluate import evaluate_masked, greedy_generate, greedy_unmask
    from pmdm.arithmetic.nanoadder import NanoAdderConfig
    from pmdm.arithmetic.suite import load_suite
    from pmdm.arithmetic.tokenizer import AdditionLayout
    from pmdm.ops.validation import check_positive

    cases = [
        (
            lambda: check_positive("minutes", -1.0),
            r"minutes=-1.0: expected a finite number > 0",
        ),
        (
            lambda: TransformerConfig.from_dict(
                {"vocab_size": 3, "max_len": 4, "depth": 1}
            ),
            r"unknown TransformerConfig keys \['depth'\]",
        ),
        (
            lambda: TransformerConfig(vocab_size=3, max_len=4, mask_token_id=3),
            r"mask_token_id=3: expected an integer <= 2",
        ),
        (
            lambda: Transformer(
                TransformerConfig(vocab_size=3, max_len=4, d_model=4, n_heads=1, d_ff=4)
            )(torch.zeros(1, 5, dtype=torch.long)),
            r"at most max_len=4 positions, got shape \(1, 5\)",
        ),
        (
            lambda: greedy_unmask(lambda x: x, torch.zeros(3, dtype=torch.long)),
            r"tokens must have shape \(N, T\), got \(3,\)",
        ),
        (
            lambda: greedy_generate(
                lambda x: x, torch.zeros(1, 2, dtype=torch.long), -1, allowed=3
            ),
            r"n_new=-1: expected an integer >= 0",
        ),
        (
            lambda: evaluate_masked(
                lambda x: x, load_suite()[:2], AdditionLayout(), batch_size=0
            ),
            r"batch_size=0: expected an integer >= 1",
        ),
        (
            lambda: NanoAdderConfig.from_dict({"order": "l2r", "width": 2}),
            r"unknown NanoAdderConfig keys \['width'\]",
        ),
        (
            lambda: AdditionLayout().answer_text(10**11),
            r"total=100000000000: expected an integer <= 99999999999",
        ),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
