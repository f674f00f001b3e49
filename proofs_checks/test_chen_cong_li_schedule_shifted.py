"""The schedule formula with the curve indexed by ``|S| = j`` is false: the check
finds the counterexample (three parity bits, step sizes (2, 1))."""

import itertools
import math

import torch
from hypothesis import find, settings

from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.check import check
from pmdm.theory.instances import ScheduleInstance

STATEMENT = get("chen-cong-li-schedule-shifted")


def xor3():
    p = torch.zeros(2, 2, 2, dtype=torch.float64)
    for a, b in itertools.product(range(2), repeat=2):
        p[a, b, a ^ b] = 0.25
    return p


def test_the_documented_counterexample():
    instance = ScheduleInstance(xor3().log(), (2, 1))
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs == 0.0 or abs(lhs) < 1e-15
    assert rhs == math.log(2) or abs(rhs - math.log(2)) < 1e-12
    result = check(STATEMENT, [instance])
    assert result.verdict == "fails"
    assert result.counterexample["instance"]["sizes"] == [2, 1]


def test_hypothesis_finds_a_minimal_counterexample():
    def breaks(case):
        probs, sizes = case
        instance = ScheduleInstance(probs.log(), sizes)
        if STATEMENT.failed_assumptions(instance):
            return False
        return not STATEMENT.compare(*STATEMENT.evaluate(instance)).ok

    strategy = pst.joint_tables(min_length=2, max_length=3, max_vocab=2).flatmap(
        lambda p: pst.schedules(p.dim()).map(lambda s: (p, s))
    )
    probs, sizes = find(
        strategy,
        breaks,
        settings=settings(database=None, max_examples=500, derandomize=True),
    )
    # No two-position instance separates the indexings: the minimum has T = 3.
    assert probs.shape == (2, 2, 2) and sizes == (2, 1)


def test_three_copies_fail_the_other_way():
    p = torch.zeros(2, 2, 2, dtype=torch.float64)
    p[0, 0, 0] = p[1, 1, 1] = 0.5
    lhs, rhs = STATEMENT.evaluate(ScheduleInstance(p.log(), (2, 1)))
    assert abs(lhs - math.log(2)) < 1e-12 and abs(rhs) < 1e-12


def test_two_positions_cannot_separate_the_indexings():
    probs = torch.tensor([[0.4, 0.1], [0.1, 0.4]], dtype=torch.float64)
    lhs, rhs = STATEMENT.evaluate(ScheduleInstance(probs.log(), (1, 1)))
    assert abs(lhs) <= 1e-15 and rhs == 0.0
