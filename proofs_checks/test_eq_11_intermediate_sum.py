"""The printed intermediate sum ``α Σ_{s=0}^{T−t} λ^s``: below the recursion's
weights from ``T − t = 2`` on, and broken by a three-bit rollout."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.check import check
from pmdm.theory.decoder_instances import RolloutInstance
from pmdm.theory.rollout import eq11_weights, smallest_lam

STATEMENT = get("eq-11-intermediate-sum")


def counterexample():
    w = torch.tensor([8, 5, 1, 7, 6, 1, 8, 8], dtype=torch.float64).reshape(2, 2, 2)
    inst = RolloutInstance((w / w.sum()).log(), (2, 1, 0), 3.0, 4, "keep", "rollout")
    e, h = inst.profile().errors, inst.entropies()
    alpha = float(e[0] / h[0])  # the first step tight
    return inst.with_parameters(alpha, smallest_lam(e, h, alpha, 0.0), 0.0)


def test_the_minimal_counterexample_breaks_the_intermediate_sum():
    inst = counterexample()
    assert STATEMENT.failed_assumptions(inst) == []
    lhs, rhs = STATEMENT.evaluate(inst)
    assert (lhs, rhs) == (
        pytest.approx(0.37652, abs=1e-5),
        pytest.approx(0.32444, abs=1e-5),
    )
    assert check(STATEMENT, [inst]).verdict == "fails"
    assert lhs <= get("eq-11").evaluate(inst)[1]


@given(
    pst.joint_tables(min_length=2, max_length=2),
    st.floats(0.1, 3.0),
    st.floats(0.0, 2.0),
)
def test_two_steps_cannot_break_it(probs, level, alpha):
    # With T = 2 the weights are (1 + λ, 1) in both forms.
    inst = RolloutInstance(probs.log(), (0, 1), level, 0)
    e, h = inst.profile().errors, inst.entropies()
    lam = smallest_lam(e, h, alpha, 0.0)
    if not math.isfinite(lam):
        return
    lhs, rhs = STATEMENT.evaluate(inst.with_parameters(max(alpha, 1e-6), lam, 0.0))
    assert STATEMENT.compare(lhs, rhs).ok


@given(st.integers(1, 8), st.floats(0.0, 4.0))
def test_weights_are_below_the_recursion_from_two_steps_back(T, lam):
    short = eq11_weights(T, lam, "intermediate")
    full = eq11_weights(T, lam, "recursion")
    assert (short <= full * (1 + 1e-12)).all()
    assert torch.allclose(short[-2:], full[-2:], rtol=1e-12)
    if T >= 3 and lam > 0.01:
        assert short[0] < full[0]
