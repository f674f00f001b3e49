"""Eq. 11 as printed (``+ T b``): not implied by Assumption 4.2 when ``λ, b > 0``."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.theory import get
from pmdm.theory.check import check
from pmdm.theory.decoder_instances import RolloutInstance
from pmdm.theory.rollout import eq11_bound, smallest_b

STATEMENT = get("eq-11-printed")


def counterexample():
    # The docstring's instance: two bits, left to right, a strong model error.
    p = torch.tensor([[12, 34], [24, 29]], dtype=torch.float64) / 99
    inst = RolloutInstance(p.log(), (0, 1), 3.0, 1, "keep", "rollout")
    e, h = inst.profile().errors, inst.entropies()
    return inst.with_parameters(1e-6, 1.0, smallest_b(e, h, 1e-6, 1.0))


def test_the_minimal_counterexample_breaks_the_printed_bound():
    inst = counterexample()
    assert STATEMENT.failed_assumptions(inst) == []
    e = inst.profile().errors
    assert e[0] < e[1] < 2 * e[0]  # so b = ē_1 and J = ē_1 + ē_2 > 2 b
    lhs, rhs = STATEMENT.evaluate(inst)
    assert lhs == pytest.approx(1.3582, abs=1e-4)
    assert rhs == pytest.approx(1.2486, abs=1e-4)
    assert check(STATEMENT, [inst]).verdict == "fails"
    # The bound the recursion gives holds.
    assert lhs <= get("eq-11").evaluate(inst)[1]


@given(
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=6),
    st.floats(0.0, 5.0),
    st.floats(0.0, 3.0),
    st.floats(0.0, 1.0),
)
def test_printed_never_exceeds_the_recursion(h, alpha, lam, b):
    printed = eq11_bound(h, alpha, lam, b, "printed")
    assert printed <= eq11_bound(h, alpha, lam, b) * (1 + 1e-12) + 1e-12


@given(st.floats(0.01, 3.0), st.integers(2, 6))
def test_the_b_term_falls_short_by_the_growth(lam, T):
    # Only b: the recursion gives b Σ_{s<T} (1+λ)^s = b((1+λ)^T − 1)/λ > T b.
    zeros = [0.0] * T
    assert eq11_bound(zeros, 1.0, lam, 1.0) == pytest.approx(((1 + lam) ** T - 1) / lam)
    assert eq11_bound(zeros, 1.0, lam, 1.0, "printed") == T
