"""EB-Sampler: committing while ``Σ H_i − max H_i ≤ γ`` keeps the step's TC ≤ γ."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.metrics.information import joint_entropy, total_correlation
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.instances import ThresholdInstance
from pmdm.theory.neighbours import eb_selection

STATEMENT = get("eb-sampler")


@given(pst.joint_tables(max_length=4), st.floats(1e-3, 3.0))
def test_tc_of_the_committed_set_is_within_budget(probs, gamma):
    lhs, rhs = STATEMENT.evaluate(ThresholdInstance(probs.log(), gamma))
    assert STATEMENT.compare(lhs, rhs).ok
    assert lhs <= gamma + 1e-12


@given(pst.joint_tables(max_length=4))
def test_tc_never_exceeds_the_entropy_budget_of_any_set(probs):
    log_p = probs.log()
    entropies = [joint_entropy(log_p, [i]).item() for i in range(probs.dim())]
    budget = sum(entropies) - max(entropies)
    assert total_correlation(log_p).item() <= budget + 1e-12


def copies(n, v):
    p = torch.zeros((v,) * n, dtype=torch.float64)
    for a in range(v):
        p[(a,) * n] = 1 / v
    return p


@pytest.mark.parametrize("n, v", [(2, 2), (3, 2), (3, 3)])
def test_tight_for_copies_with_the_whole_budget(n, v):
    gamma = (n - 1) * math.log(v)
    instance = ThresholdInstance(copies(n, v).log(), gamma)
    assert eb_selection(instance.log_p, gamma) == list(range(n))
    lhs, rhs = STATEMENT.evaluate(instance)
    assert STATEMENT.compare(lhs, rhs).margin == pytest.approx(1.0, abs=1e-12)


def test_loosest_for_independent_positions():
    p = torch.full((2, 2, 2), 1 / 8, dtype=torch.float64)
    lhs, rhs = STATEMENT.evaluate(ThresholdInstance(p.log(), 2 * math.log(2)))
    assert lhs == pytest.approx(0.0, abs=1e-14) and rhs > 0


def test_selection_takes_lowest_entropy_first():
    # Position 1 is deterministic, 0 and 2 fair and independent.
    p = torch.zeros(2, 2, 2, dtype=torch.float64)
    p[:, 0, :] = 0.25
    assert eb_selection(p.log(), 0.0) == [0, 1]
    assert eb_selection(p.log(), 0.7) == [0, 1, 2]
