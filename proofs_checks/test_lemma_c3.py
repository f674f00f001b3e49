"""Lemma C.3 (Markov): ``Pr_q[p(x) ≤ ε] ≤ E_q[−log p] / log(1/ε)``."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.metrics.information import product_of_marginals
from pmdm.models.block_hmm import BlockHMM
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.generators import block_table
from pmdm.theory.instances import MarkovInstance

STATEMENT = get("lemma-c3")


@st.composite
def instances(draw):
    p = draw(pst.joint_tables(max_length=3, extreme=draw(st.booleans())))
    V, T = p.shape[0], p.dim()
    if draw(st.booleans()):
        log_q = product_of_marginals(p.log())
    else:
        q = draw(pst.joint_tables(min_length=T, max_length=T, min_vocab=V, max_vocab=V))
        log_q = q.log()
    values = sorted({v for v in p.flatten().tolist() if 0 < v < 1})
    eps = draw(st.sampled_from(values) | st.floats(1e-12, 0.99)) if values else 0.5
    return MarkovInstance(p.log(), log_q, eps)


@given(instances())
def test_markov_bound_is_never_violated(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert STATEMENT.compare(lhs, rhs).ok
    assert lhs <= rhs + 1e-12


@pytest.mark.parametrize("eps", [0.5, 0.25, 1e-3])
def test_tight_for_a_point_mass_on_a_configuration_of_probability_eps(eps):
    p = torch.tensor([eps, 1 - eps], dtype=torch.float64)
    q = torch.tensor([1.0, 0.0], dtype=torch.float64)
    lhs, rhs = STATEMENT.evaluate(MarkovInstance(p.log(), q.log(), eps))
    assert lhs == 1.0 and rhs == pytest.approx(1.0, abs=1e-12)


def test_loosest_when_q_never_reaches_low_probability():
    p = torch.full((2, 2), 0.25, dtype=torch.float64)
    lhs, rhs = STATEMENT.evaluate(MarkovInstance(p.log(), p.log(), 0.1))
    assert lhs == 0.0 and rhs == pytest.approx(math.log(4) / math.log(10))


@pytest.mark.parametrize("eta", [0.0, 1e-8, 1e-4])
def test_paper_block_hmm_incoherence_of_the_factorized_block(eta):
    # The per-block incoherence at τ = 1e-8 and its Markov bound (Eq. 84, C.3).
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), block_size=8, length=8, eta=eta)
    log_p = block_table(hmm, hmm.log_init)
    lhs, rhs = STATEMENT.evaluate(
        MarkovInstance(log_p, product_of_marginals(log_p), 1e-8)
    )
    assert lhs == pytest.approx(
        hmm.block_incoherence(hmm.log_init, 1e-8).item(), abs=1e-12
    )
    assert lhs <= rhs and (rhs == math.inf) == (eta == 0.0)
