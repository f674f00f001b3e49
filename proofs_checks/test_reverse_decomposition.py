"""Eq. 18: ``KL(q ‖ p) = Σ_m E_{x_P∼q}[TC←_m(x_P)]``, infinite on both sides together."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmdm.decoding.block import FactorizedBlockGuide
from pmdm.metrics.blockwise import exact_block_measures
from pmdm.models.block_hmm import BlockHMM
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.generators import block_hmm_table, contiguous_blocks
from pmdm.theory.instances import BlockedTable

STATEMENT = get("reverse-decomposition")


@st.composite
def instances(draw, zeros=None):
    probs = draw(pst.joint_tables(max_length=4, zeros=zeros))
    return BlockedTable(probs.log(), draw(pst.block_partitions(probs.dim())))


def assert_equal_sides(lhs, rhs):
    if math.isinf(lhs) or math.isinf(rhs):
        assert lhs == rhs
    else:
        assert abs(lhs - rhs) <= 1e-9


@given(instances(zeros=False))
def test_identity_holds_to_1e_9_on_positive_tables(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert math.isfinite(lhs)
    assert_equal_sides(lhs, rhs)


@given(instances(zeros=True))
def test_identity_holds_with_zeros_including_infinities(instance):
    assert_equal_sides(*STATEMENT.evaluate(instance))


@given(
    pst.block_hmms(
        min_block_size=2, max_block_size=3, max_blocks=2, rates=st.floats(0.01, 0.99)
    )
)
def test_block_hmm_agrees_with_the_exact_block_measures(hmm):
    # B >= 2 and rates inside (0, 1): BlockHMM.block_tc fails on B = 1, and the
    # factorized guide's Bernoulli turns a zero marginal into about 2e-16, which
    # makes its reverse KL infinite (both reported to the lead).
    instance = BlockedTable(block_hmm_table(hmm), contiguous_blocks(hmm))
    lhs, rhs = STATEMENT.evaluate(instance)
    measures = exact_block_measures(FactorizedBlockGuide(hmm))
    assert_equal_sides(lhs, measures["reverse_kl"].estimate)
    assert_equal_sides(rhs, measures["tc_reverse"].estimate)


@pytest.mark.parametrize("eta, infinite", [(0.0, True), (1e-8, False), (0.1, False)])
def test_paper_block_hmm_family(eta, infinite):
    # η = 0 makes the reverse KL infinite (Lemma C.1); any η > 0 keeps it finite.
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), block_size=4, length=8, eta=eta)
    lhs, rhs = STATEMENT.evaluate(
        BlockedTable(block_hmm_table(hmm), contiguous_blocks(hmm))
    )
    assert_equal_sides(lhs, rhs)
    assert math.isinf(lhs) == infinite
