"""Lemma C.1, forward part: ``TC→ ≤ Σ_i log V_i − max_i log V_i`` stays finite."""

import math

import pytest
import torch
from hypothesis import assume, given

from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.instances import JointTable

STATEMENT = get("lemma-c1-forward")


@given(pst.joint_tables(zeros=True, min_length=2, max_length=4))
def test_forward_tc_is_below_the_ceiling(probs):
    instance = JointTable.from_probs(probs)
    assume(not STATEMENT.failed_assumptions(instance))
    lhs, rhs = STATEMENT.evaluate(instance)
    assert STATEMENT.compare(lhs, rhs).ok
    assert lhs <= rhs + 1e-12 and math.isfinite(lhs)


def copies(n, v):
    p = torch.zeros((v,) * n, dtype=torch.float64)
    for a in range(v):
        p[(a,) * n] = 1 / v
    return p


@pytest.mark.parametrize("n, v", [(2, 2), (3, 2), (2, 3), (4, 2)])
def test_tight_for_copies_of_a_uniform_variable(n, v):
    lhs, rhs = STATEMENT.evaluate(JointTable.from_probs(copies(n, v)))
    assert lhs == pytest.approx((n - 1) * math.log(v), abs=1e-12)
    assert STATEMENT.compare(lhs, rhs).margin == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("delta", [1e-2, 1e-4, 1e-8])
def test_loosest_when_one_configuration_is_missing_from_a_product(delta):
    # Near-uniform on a 3 x 3 grid minus one cell: a mismatch, yet TC is tiny
    # against the ceiling log 3.
    v = 3
    p = torch.full((v, v), 1.0, dtype=torch.float64)
    p[0, 0] = 0.0
    p[1:, 1:] += delta  # keeps every marginal positive
    p = p / p.sum()
    lhs, rhs = STATEMENT.evaluate(JointTable.from_probs(p))
    assert STATEMENT.failed_assumptions(JointTable.from_probs(p)) == []
    assert STATEMENT.compare(lhs, rhs).margin < 0.1
