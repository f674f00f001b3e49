"""Proposition 5.1: rejection sampling needs ``M`` factorized proposals on average."""

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from pmdm.metrics.information import max_ratio, product_of_marginals
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.instances import SimulationInstance
from pmdm.theory.paper import rejection_proposal_counts

STATEMENT = get("proposition-5.1-rejection")


@given(pst.joint_tables(max_length=3, max_weight=8), st.integers(0, 2**31 - 1))
def test_mean_proposals_within_five_standard_errors_of_m(probs, seed):
    instance = SimulationInstance(probs.log(), 400, seed)
    assume(not STATEMENT.failed_assumptions(instance))
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs.n == 400
    assert STATEMENT.compare(lhs, rhs).ok, (lhs, rhs)


def test_counts_are_geometric_with_mean_m():
    # Two copies of a fair bit: M = 2, each proposal accepted with probability 1/2.
    p = torch.tensor([[0.5, 0.0], [0.0, 0.5]], dtype=torch.float64)
    counts = rejection_proposal_counts(
        p.log(), 20_000, torch.Generator().manual_seed(3)
    )
    m = max_ratio(p.log(), product_of_marginals(p.log())).item()
    assert m == 2.0
    stderr = counts.std().item() / math.sqrt(len(counts))
    assert abs(counts.mean().item() - m) <= 5 * stderr
    # Geometric(1/2): Pr[count = 1] = 1/2.
    share = (counts == 1).double().mean().item()
    assert abs(share - 0.5) <= 5 * math.sqrt(0.25 / len(counts))


def test_product_distributions_accept_every_proposal():
    p = torch.tensor([0.2, 0.8], dtype=torch.float64).outer(torch.tensor([0.5, 0.5]))
    lhs, rhs = STATEMENT.evaluate(SimulationInstance(p.to(torch.float64).log(), 50, 0))
    assert rhs == pytest.approx(1.0) and lhs.estimate == 1.0 and lhs.stderr == 0.0


def test_the_budget_assumption_skips_huge_m():
    p = torch.zeros(3, 3, dtype=torch.float64)
    p[0, 0] = 1e-5
    p[1:, 1:] = (1 - 1e-5) / 4
    assert STATEMENT.failed_assumptions(SimulationInstance(p.log(), 10, 0)) == [
        "M-within-simulation-budget"
    ]
