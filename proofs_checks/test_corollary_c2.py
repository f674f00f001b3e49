"""Corollary C.2: a mismatch reachable under ``q`` makes ``KL(q ‖ p)`` infinite."""

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from pmdm.models.block_hmm import BlockHMM
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.generators import block_hmm_table, contiguous_blocks
from pmdm.theory.instances import BlockedTable
from pmdm.theory.paper import ForwardDecomposition

STATEMENT = get("corollary-c2")


@st.composite
def instances(draw):
    probs = draw(pst.joint_tables(zeros=True, min_length=2, max_length=4))
    return BlockedTable(probs.log(), draw(pst.block_partitions(probs.dim())))


@given(instances())
def test_reachable_mismatch_gives_infinite_reverse_kl(instance):
    assume(not STATEMENT.failed_assumptions(instance))
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs == rhs == math.inf
    # ... while the forward KL stays finite.
    assert math.isfinite(ForwardDecomposition().evaluate(instance)[0])


@pytest.mark.parametrize("length", [4, 8, 12])
def test_paper_block_hmm_with_hard_parity(length):
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), block_size=4, length=length, eta=0.0)
    instance = BlockedTable(block_hmm_table(hmm), contiguous_blocks(hmm))
    assert STATEMENT.failed_assumptions(instance) == []
    assert STATEMENT.evaluate(instance)[0] == math.inf


def test_an_unreachable_mismatch_does_not_count():
    # x_0 = 0 always; given x_0 = 1 (never reached) the block {1, 2} mismatches.
    p = torch.zeros(2, 2, 2, dtype=torch.float64)
    p[0] = 0.25
    instance = BlockedTable(p.log(), ((0,), (1, 2)))
    assert STATEMENT.failed_assumptions(instance) == ["reachable-mismatch"]
    assert STATEMENT.evaluate(instance)[0] == 0.0
