"""Chen–Cong–Li: the expected KL of a random-order schedule is an exact sum over the
information curve with ``Z_j`` averaged over ``|S| = j − 1``."""

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.metrics.information import information_curve, total_correlation
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.instances import ScheduleInstance
from pmdm.theory.schedules import ordered_partitions, schedule_formula

STATEMENT = get("chen-cong-li-schedule")


@st.composite
def instances(draw):
    probs = draw(pst.joint_tables(min_length=2, max_length=5, max_entries=32))
    return ScheduleInstance(probs.log(), draw(pst.schedules(probs.dim())))


@given(instances())
def test_formula_is_exact_to_1e_9(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert abs(lhs - rhs) <= 1e-9


@given(pst.joint_tables(min_length=1, max_length=4))
def test_curve_sums_to_tc_and_one_step_is_tc(probs):
    log_p = probs.log()
    curve = information_curve(log_p)
    tc = total_correlation(log_p).item()
    assert curve[0].item() == 0.0
    assert curve.sum().item() == pytest.approx(tc, abs=1e-12)
    assert schedule_formula(curve, (probs.dim(),)).item() == pytest.approx(
        tc, abs=1e-12
    )
    assert schedule_formula(curve, (1,) * probs.dim()).item() == 0.0


def xor(n):
    p = torch.zeros((2,) * n, dtype=torch.float64)
    for bits in itertools.product(range(2), repeat=n - 1):
        p[(*bits, sum(bits) % 2)] = 2.0 ** -(n - 1)
    return p


@pytest.mark.parametrize(
    "sizes, expected",
    # Three parity bits: Z = (0, 0, log 2). A first step of two costs Z_2 − Z_1 = 0;
    # a last step of two costs Z_3 − Z_2 = log 2; all at once costs TC = log 2.
    [((2, 1), 0.0), ((1, 2), math.log(2)), ((3,), math.log(2)), ((1, 1, 1), 0.0)],
)
def test_parity_by_hand(sizes, expected):
    lhs, rhs = STATEMENT.evaluate(ScheduleInstance(xor(3).log(), sizes))
    assert lhs == pytest.approx(expected, abs=1e-12)
    assert rhs == pytest.approx(expected, abs=1e-12)


def test_partitions_are_counted_by_the_multinomial():
    for sizes in [(1, 2, 1), (2, 2), (4,)]:
        parts = list(ordered_partitions(4, sizes))
        expected = math.factorial(4) // math.prod(math.factorial(s) for s in sizes)
        assert len(parts) == len(set(parts)) == expected
