"""Li and Cai's bound for random-order schedules: a claimed form, checked."""

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.check import check
from pmdm.theory.instances import ScheduleInstance
from pmdm.theory.schedules import random_order_kl, sum_mutual_information

STATEMENT = get("li-cai")
LN2 = math.log(2)


@st.composite
def instances(draw):
    probs = draw(pst.joint_tables(min_length=2, max_length=5, max_entries=32))
    return ScheduleInstance(probs.log(), draw(pst.schedules(probs.dim())))


@given(instances())
def test_bound_holds_on_generated_instances(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert STATEMENT.compare(lhs, rhs).ok, (lhs, rhs)


def xor(n):
    p = torch.zeros((2,) * n, dtype=torch.float64)
    for bits in itertools.product(range(2), repeat=n - 1):
        p[(*bits, sum(bits) % 2)] = 2.0 ** -(n - 1)
    return p


def copies(n):
    p = torch.zeros((2,) * n, dtype=torch.float64)
    p[(0,) * n] = p[(1,) * n] = 0.5
    return p


@pytest.mark.parametrize(
    "probs, sizes",
    [
        (copies(2), (2,)),  # KL = I(X_1; X_2) = log 2 = (1/2)·2 log 2
        (xor(3), (1, 2)),  # KL = I(X_a; X_b | X_c) = log 2 = (1/3)·3 log 2
        (copies(4), (4,)),  # KL = TC = 3 log 2 = (3/4)·(3 + 1) log 2
    ],
    ids=["two-copies-at-once", "parity-one-then-two", "four-copies-at-once"],
)
def test_tight_families(probs, sizes):
    lhs, rhs = STATEMENT.evaluate(ScheduleInstance(probs.log(), sizes))
    assert lhs == pytest.approx(rhs, abs=1e-12) and lhs > 0


@pytest.mark.parametrize("n", [3, 4, 5])
def test_loosest_for_parity_revealed_at_once_but_one(n):
    # n parity bits, sizes (n−1, 1): any n−1 of them are independent, KL = 0.
    lhs, rhs = STATEMENT.evaluate(ScheduleInstance(xor(n).log(), (n - 1, 1)))
    assert lhs == pytest.approx(0.0, abs=1e-12) and rhs >= LN2 - 1e-12


def test_reading_t_as_the_number_of_steps_is_also_valid_but_looser():
    for probs in (copies(3), xor(3), xor(4)):
        for sizes in [(probs.dim(),), (1, probs.dim() - 1), (probs.dim() - 1, 1)]:
            kl = random_order_kl(probs.log(), sizes).item()
            factor = 2 ** math.ceil(math.log2(max(sizes))) - 1
            steps = factor / len(sizes) * sum_mutual_information(probs.log()).item()
            _, length = STATEMENT.evaluate(ScheduleInstance(probs.log(), sizes))
            assert kl <= length + 1e-12 and length <= steps + 1e-12


def test_check_reports_it_holds():
    instances = [ScheduleInstance(copies(3).log(), s) for s in [(3,), (2, 1), (1, 2)]]
    assert check(STATEMENT, instances).verdict == "holds"
