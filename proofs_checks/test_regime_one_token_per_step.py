"""One token per step with exact conditionals reproduces ``p`` in every order."""

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.metrics.information import factorized_decoder_log_probs
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.instances import BlockedTable

STATEMENT = get("regime-one-token-per-step")


@st.composite
def instances(draw):
    probs = draw(pst.joint_tables(max_length=4))
    order = draw(st.permutations(range(probs.dim())))
    return BlockedTable(probs.log(), tuple((i,) for i in order))


@given(instances())
def test_singleton_steps_give_q_equal_p(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert abs(lhs - rhs) <= 1e-9
    q = factorized_decoder_log_probs(instance.log_p, instance.blocks).exp()
    assert torch.allclose(q, instance.log_p.exp(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_order_of_a_parity_table(order):
    # Three parity bits: the hardest table for a factorized block, exact one by one.
    p = torch.zeros(2, 2, 2, dtype=torch.float64)
    for a, b in itertools.product(range(2), repeat=2):
        p[a, b, a ^ b] = 0.25
    lhs, _ = STATEMENT.evaluate(BlockedTable(p.log(), tuple((i,) for i in order)))
    assert lhs == 0.0


def test_the_assumption_rejects_a_block_of_two():
    p = torch.full((2, 2), 0.25, dtype=torch.float64).log()
    assert STATEMENT.failed_assumptions(BlockedTable(p, ((0, 1),))) == [
        "one-position-per-block"
    ]
