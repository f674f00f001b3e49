"""Conditional independence inside every block makes the factorized decoder exact."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.models.block_hmm import BlockHMM
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.generators import block_hmm_table, contiguous_blocks
from pmdm.theory.instances import BlockedTable

STATEMENT = get("regime-conditional-independence")


@st.composite
def conditionally_independent(draw):
    # p(x) = Π_m Π_{i∈B_m} r_i(x_i | x_{P_m}) with drawn conditional rows r_i.
    V = draw(st.integers(2, 3))
    T = draw(st.integers(1, 3 if V == 3 else 4))
    blocks = draw(pst.block_partitions(T))
    log_p = torch.zeros((V,) * T, dtype=torch.float64)
    prefix = []
    for block in blocks:
        for i in block:
            rows = draw(
                st.lists(
                    pst.joint_tables(
                        min_length=1, max_length=1, min_vocab=V, max_vocab=V
                    ),
                    min_size=V ** len(prefix),
                    max_size=V ** len(prefix),
                )
            )
            r = torch.stack(rows).reshape((V,) * len(prefix) + (V,))
            # Axes (prefix..., i) of r placed at their positions in the table.
            order = sorted(prefix + [i])
            r = r.permute([(prefix + [i]).index(j) for j in order])
            shape = [V if j in order else 1 for j in range(T)]
            log_p = log_p + r.reshape(shape).log()
        prefix = prefix + list(block)
    return BlockedTable(log_p, blocks)


@given(conditionally_independent())
def test_tc_is_zero_and_the_factorized_decoder_is_exact(instance):
    assert STATEMENT.failed_assumptions(instance) == []
    lhs, rhs = STATEMENT.evaluate(instance)
    assert rhs == 0.0 and abs(lhs) <= 1e-9


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("block_size", [2, 3])
def test_block_hmm_with_pure_noise_parity_and_one_state(rho, block_size):
    # η = 1/2 makes the parity bit independent; one state makes content bits i.i.d.
    hmm = BlockHMM(1, 0.5, (rho,), block_size, 2 * block_size, eta=0.5)
    instance = BlockedTable(block_hmm_table(hmm), contiguous_blocks(hmm))
    assert STATEMENT.failed_assumptions(instance) == []
    assert STATEMENT.evaluate(instance)[0] == pytest.approx(0.0, abs=1e-12)


def test_parity_violates_the_assumption_and_the_decoder_errs():
    # With η = 0 the block is not conditionally independent; the KL is positive.
    hmm = BlockHMM(1, 0.5, (0.5,), 3, 3, eta=0.0)
    instance = BlockedTable(block_hmm_table(hmm), contiguous_blocks(hmm))
    assert STATEMENT.failed_assumptions(instance) == [
        "blocks-conditionally-independent"
    ]
    assert STATEMENT.evaluate(instance)[0] == math.inf
