"""``Σ_i I(X_i ; X_{−i}) = TC + DTC`` on generated and hand-made tables."""

import itertools
import math

import pytest
import torch
from hypothesis import given

from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.instances import JointTable

STATEMENT = get("dtc-identity")
LN2 = math.log(2)


def sides(probs):
    lhs, rhs = STATEMENT.evaluate(JointTable.from_probs(probs))
    assert STATEMENT.compare(lhs, rhs).ok
    return lhs, rhs


@given(pst.joint_tables(max_length=4, max_vocab=3))
def test_identity_holds_to_1e_9(probs):
    lhs, rhs = sides(probs)
    assert abs(lhs - rhs) <= 1e-9


@given(pst.joint_tables(zeros=False, extreme=True, max_length=3))
def test_identity_holds_with_tiny_probabilities(probs):
    lhs, rhs = sides(probs)
    assert abs(lhs - rhs) <= 1e-9


def xor(n):
    p = torch.zeros((2,) * n, dtype=torch.float64)
    for bits in itertools.product(range(2), repeat=n - 1):
        p[(*bits, sum(bits) % 2)] = 2.0 ** -(n - 1)
    return p


def copies(n, v):
    p = torch.zeros((v,) * n, dtype=torch.float64)
    for a in range(v):
        p[(a,) * n] = 1 / v
    return p


@pytest.mark.parametrize(
    "probs, tc, dtc",
    [
        # n copies of a uniform V-valued variable: TC = (n−1) log V, DTC = log V.
        (copies(2, 2), LN2, LN2),
        (copies(3, 2), 2 * LN2, LN2),
        (copies(3, 3), 2 * math.log(3), math.log(3)),
        # n parity bits: TC = log 2, DTC = (n−1) log 2.
        (xor(3), LN2, 2 * LN2),
        (xor(4), LN2, 3 * LN2),
        # Independent positions: both zero.
        (torch.full((2, 3), 1 / 6, dtype=torch.float64), 0.0, 0.0),
    ],
)
def test_families_by_hand(probs, tc, dtc):
    lhs, rhs = sides(probs)
    assert lhs == pytest.approx(tc + dtc, abs=1e-12)
    assert rhs == pytest.approx(tc + dtc, abs=1e-12)
