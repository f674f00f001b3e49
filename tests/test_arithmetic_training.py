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
        ({"steps": 0}, r"steps must be >= 1, got steps=0"),
        ({"steps": 5, "seed": -2}, r"seed must be >= 0, got seed=-2"),
        ({"steps": 5, "curriculum_start": 0}, r"curriculum_start must be >= 1"),
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
            r"lr must be a finite number > 0, got lr=nan",
        ),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainSettings(**kwargs)
