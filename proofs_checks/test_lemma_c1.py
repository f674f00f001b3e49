"""Lemma C.1: support mismatch makes ``TC←`` infinite (while ``TC→`` stays finite)."""

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from pmdm.metrics.information import total_correlation
from pmdm.models.block_hmm import BlockHMM
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory._common import support_mismatch
from pmdm.theory.generators import block_table
from pmdm.theory.instances import JointTable

STATEMENT = get("lemma-c1")


@given(pst.joint_tables(zeros=True, min_length=2, max_length=4))
def test_mismatched_tables_have_infinite_reverse_tc(probs):
    instance = JointTable.from_probs(probs)
    assume(not STATEMENT.failed_assumptions(instance))
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs == rhs == math.inf
    assert math.isfinite(total_correlation(instance.log_p).item())


@given(
    pst.block_hmms(
        min_block_size=2,
        max_block_size=5,
        etas=st.just(0.0),
        rates=st.floats(0.01, 0.99),
    ),
    st.floats(0.0, 1.0),
)
def test_block_hmm_with_a_hard_parity_constraint(hmm, w):
    # Any latent law of the context: the factorized block violates parity.
    K = hmm.num_states
    weights = torch.tensor([w] + [1.0] * (K - 1), dtype=torch.float64)
    weights[0] += 1e-3  # a positive law even with one state
    log_pred = (weights / weights.sum()).log()
    instance = JointTable(block_table(hmm, log_pred))
    assert STATEMENT.failed_assumptions(instance) == []
    assert STATEMENT.evaluate(instance)[0] == math.inf
    fwd, rev = hmm.block_tc(log_pred)
    assert rev.item() == math.inf and math.isfinite(fwd.item())


@given(pst.joint_tables(zeros=False, max_length=3))
def test_full_support_never_mismatches(probs):
    assert not support_mismatch(probs.log())


@pytest.mark.parametrize("eta", [1e-8, 1e-4])
def test_small_parity_noise_removes_the_mismatch(eta):
    # The paper's η > 0 keeps TC← finite though huge; the lemma needs η = 0.
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), 8, 8, eta=eta)
    instance = JointTable(block_table(hmm, hmm.log_init))
    assert STATEMENT.failed_assumptions(instance) == ["support-mismatch"]
    assert math.isfinite(hmm.block_tc(hmm.log_init)[1].item())
