"""Eq. 16: ``KL(p ‖ q) = Σ_m E_{x_P∼p}[TC→_m(x_P)]`` for the factorized decoder."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmdm.decoding.block import FactorizedBlockGuide
from pmdm.metrics.blockwise import exact_block_measures
from pmdm.metrics.information import total_correlation
from pmdm.models.block_hmm import BlockHMM
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.generators import block_hmm_table, contiguous_blocks
from pmdm.theory.instances import BlockedTable

STATEMENT = get("forward-decomposition")


@st.composite
def instances(draw, zeros=None):
    probs = draw(pst.joint_tables(max_length=4, zeros=zeros))
    return BlockedTable(probs.log(), draw(pst.block_partitions(probs.dim())))


@given(instances())
def test_identity_holds_to_1e_9(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert math.isfinite(lhs) and abs(lhs - rhs) <= 1e-9


@given(instances(zeros=True))
def test_identity_holds_with_zeros(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert math.isfinite(lhs) and abs(lhs - rhs) <= 1e-9


@given(pst.joint_tables(max_length=4))
def test_one_block_is_the_total_correlation(probs):
    T = probs.dim()
    lhs, _ = STATEMENT.evaluate(BlockedTable(probs.log(), (tuple(range(T)),)))
    assert lhs == pytest.approx(total_correlation(probs.log()).item(), abs=1e-9)


@given(
    pst.block_hmms(
        min_block_size=2, max_block_size=3, max_blocks=2, rates=st.floats(0.01, 0.99)
    )
)
def test_block_hmm_agrees_with_the_exact_block_measures(hmm):
    # B >= 2 and rates inside (0, 1): BlockHMM.block_tc fails on B = 1, and the
    # factorized guide's Bernoulli turns a zero marginal into about 2e-16, which
    # makes its reverse KL infinite (both reported to the lead).
    # The library's measures of the factorized guide, by its own class enumeration.
    instance = BlockedTable(block_hmm_table(hmm), contiguous_blocks(hmm))
    lhs, rhs = STATEMENT.evaluate(instance)
    measures = exact_block_measures(FactorizedBlockGuide(hmm))
    assert lhs == pytest.approx(measures["forward_kl"].estimate, abs=1e-9)
    assert rhs == pytest.approx(measures["tc_forward"].estimate, abs=1e-9)


@pytest.mark.parametrize("eta", [0.0, 1e-8, 1e-4, 0.1])
def test_paper_block_hmm_family(eta):
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), block_size=4, length=12, eta=eta)
    lhs, rhs = STATEMENT.evaluate(
        BlockedTable(block_hmm_table(hmm), contiguous_blocks(hmm))
    )
    assert math.isfinite(lhs) and abs(lhs - rhs) <= 1e-9
