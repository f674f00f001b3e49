"""Proposition 5.1: ``exp(TC→) ≤ M = sup p / Π p_i``, tight and loose families."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.models.block_hmm import BlockHMM
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.generators import block_table
from pmdm.theory.instances import JointTable

STATEMENT = get("proposition-5.1")


def ratio(probs):
    lhs, rhs = STATEMENT.evaluate(JointTable(probs.log()))
    cmp = STATEMENT.compare(lhs, rhs)
    assert cmp.ok
    return cmp.margin


@given(pst.joint_tables(max_length=4, extreme=False))
def test_bound_is_never_violated(probs):
    ratio(probs)


@given(
    pst.block_hmms(min_block_size=2, max_block_size=6, max_blocks=1), st.floats(0, 1)
)
def test_bound_on_block_hmm_blocks(hmm, w):
    weights = torch.tensor(
        [w + 1e-3] + [1.0] * (hmm.num_states - 1), dtype=torch.float64
    )
    ratio(block_table(hmm, (weights / weights.sum()).log()).exp())


def copies(n, v):
    p = torch.zeros((v,) * n, dtype=torch.float64)
    for a in range(v):
        p[(a,) * n] = 1 / v
    return p


@pytest.mark.parametrize(
    "probs",
    [
        copies(2, 2),
        copies(3, 3),
        torch.tensor([[0.1, 0.2], [0.3, 0.4]]).sum(0).outer(torch.tensor([0.7, 0.3])),
    ],
    ids=["two-bit-copies", "three-trit-copies", "independent"],
)
def test_tight_when_the_ratio_is_constant_on_the_support(probs):
    assert ratio(probs.to(torch.float64)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("delta", [1e-1, 1e-2, 1e-3, 1e-4])
def test_loosest_for_a_rare_shared_value(delta):
    # Mass δ on (0, 0), the rest uniform on {1, 2}^2: M = 1/δ, TC → 0 with δ.
    p = torch.zeros(3, 3, dtype=torch.float64)
    p[0, 0] = delta
    p[1:, 1:] = (1 - delta) / 4
    lhs, rhs = STATEMENT.evaluate(JointTable(p.log()))
    assert rhs == pytest.approx(1 / delta, rel=1e-9)
    assert lhs / rhs <= 3 * delta


@pytest.mark.parametrize("eta", [1e-8, 1e-6, 1e-4])
@pytest.mark.parametrize("belief, below", [(0.5, 0.3), (0.9, 1e-3), (0.99, 1e-4)])
def test_paper_block_hmm_m_far_above_exp_tc(eta, belief, below):
    # Paper settings, B = 8: the more confident the latent law of the context, the
    # further M = sup p/q rises above exp(TC→) (about 7e4 against 2 at belief 0.99).
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), block_size=8, length=8, eta=eta)
    log_pred = torch.tensor([belief, 1 - belief], dtype=torch.float64).log()
    lhs, rhs = STATEMENT.evaluate(JointTable(block_table(hmm, log_pred)))
    fwd, _ = hmm.block_tc(log_pred)
    assert lhs == pytest.approx(math.exp(fwd.item()), rel=1e-9)
    assert lhs / rhs < below
