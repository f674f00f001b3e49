"""Proposition C.5: under Assumption C.4 (uniform form) every number of remasking
rounds leaves ``KL(q ‖ p) = ∞``."""

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.models.block_hmm import BlockHMM
from pmdm.models.table import TableTarget
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.decoder_instances import DecoderInstance, DecoderSpec
from pmdm.theory.paper_decoders import remask_always_reaches_impossible

STATEMENT = get("proposition-c5")


def parity(T):
    p = torch.zeros((2,) * T, dtype=torch.float64)
    for x in itertools.product(range(2), repeat=T):
        if sum(x) % 2 == 0:
            p[x] = 1.0
    return p / p.sum()


def copies(T, V=2):
    p = torch.zeros((V,) * T, dtype=torch.float64)
    for a in range(V):
        p[(a,) * T] = 1 / V
    return p


@pytest.mark.parametrize("T, count", [(3, 2), (3, 3), (4, 2), (4, 4)])
@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_parity_stays_infinite_after_every_round(T, count, rounds):
    spec = DecoderSpec("confidence", "fixed", 1, "factorized", 1.0, rounds, count)
    instance = DecoderInstance(TableTarget.from_dense(parity(T)), spec)
    assert STATEMENT.failed_assumptions(instance) == []
    assert STATEMENT.evaluate(instance) == (math.inf, math.inf)


def test_a_block_hmm_with_hard_parity():
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), block_size=3, length=6, eta=0.0)
    spec = DecoderSpec("l2r", "fixed", 3, "factorized", 1.0, 2, 3)
    instance = DecoderInstance(hmm, spec)
    assert STATEMENT.failed_assumptions(instance) == []
    assert STATEMENT.evaluate(instance)[0] == math.inf


@given(
    pst.joint_tables(min_length=2, max_length=3, zeros=True),
    st.integers(1, 3),
    st.integers(1, 2),
    st.sampled_from(("l2r", "entropy", "random")),
)
def test_whenever_the_uniform_assumption_holds(probs, count, rounds, order):
    spec = DecoderSpec(order, "fixed", probs.dim(), "factorized", 1.0, rounds, count)
    instance = DecoderInstance(TableTarget.from_dense(probs), spec)
    if not STATEMENT.failed_assumptions(instance):
        assert STATEMENT.evaluate(instance)[0] == math.inf


def test_the_uniform_assumption_by_hand():
    # Copies: one position given the others is determined, so remasking one repairs;
    # remasking all draws from the marginals, which reach (0, 1).
    assert not remask_always_reaches_impossible(copies(2).log(), 1)
    assert remask_always_reaches_impossible(copies(2).log(), 2)
    assert remask_always_reaches_impossible(copies(3, 3).log(), 3)
    # Parity: any two bits given the rest are uniform marginally, coupled jointly.
    assert remask_always_reaches_impossible(parity(3).log(), 2)
    assert not remask_always_reaches_impossible(parity(3).log(), 1)
    # A positive table has no impossible sequence at all.
    assert not remask_always_reaches_impossible(torch.full((2, 2), 0.25).log(), 2)


def test_remasking_everything_with_copies_is_the_product_of_marginals():
    spec = DecoderSpec("l2r", "fixed", 1, "factorized", 1.0, 2, 2)
    instance = DecoderInstance(TableTarget.from_dense(copies(2)), spec)
    assert torch.allclose(
        instance.log_q().exp(), torch.full((4,), 0.25, dtype=torch.float64)
    )
