"""The EB-Sampler as a decoder: every reachable step's conditional TC is within γ."""

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.models.table import TableTarget
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.decoder_instances import DecoderInstance, DecoderSpec

STATEMENT = get("eb-sampler-decoder")


@given(
    pst.joint_tables(max_length=4),
    st.floats(0.0, 3.0),
    st.sampled_from(("entropy", "confidence", "margin", "l2r")),
)
def test_every_step_is_within_budget(probs, gamma, order):
    spec = DecoderSpec(order, "entropy-budget", gamma)
    instance = DecoderInstance(TableTarget.from_dense(probs), spec)
    lhs, rhs = STATEMENT.evaluate(instance)
    assert STATEMENT.compare(lhs, rhs).ok


def copies(n, v):
    p = torch.zeros((v,) * n, dtype=torch.float64)
    for a in range(v):
        p[(a,) * n] = 1 / v
    return p


@pytest.mark.parametrize("n, v", [(2, 2), (3, 2), (2, 3)])
def test_tight_for_copies_with_the_whole_budget(n, v):
    gamma = (n - 1) * math.log(v)
    instance = DecoderInstance(
        TableTarget.from_dense(copies(n, v)),
        DecoderSpec("entropy", "entropy-budget", gamma),
    )
    lhs, rhs = STATEMENT.evaluate(instance)
    assert STATEMENT.compare(lhs, rhs).margin == pytest.approx(1.0, abs=1e-12)


def test_loosest_for_independent_positions():
    p = torch.full((2, 2, 2), 1 / 8, dtype=torch.float64)
    instance = DecoderInstance(
        TableTarget.from_dense(p), DecoderSpec("entropy", "entropy-budget", 2.0)
    )
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs == pytest.approx(0.0, abs=1e-14) and rhs == 2.0
    assert len(instance.steps()) == 1  # all three bits in one step


def test_a_zero_budget_reveals_one_uncertain_position_at_a_time():
    p = torch.zeros(2, 2, 2, dtype=torch.float64)
    for a, b in itertools.product(range(2), repeat=2):
        p[a, b, a ^ b] = 0.25
    instance = DecoderInstance(
        TableTarget.from_dense(p), DecoderSpec("entropy", "entropy-budget", 0.0)
    )
    # Σ H − max H of two fair bits is log 2 > 0: one uncertain bit per step, each
    # step's TC is 0.
    assert all(
        len(s.positions) == 1 for s in instance.steps() if (s.tokens == 2).sum() == 3
    )
    assert STATEMENT.evaluate(instance) == (0.0, 0.0)
