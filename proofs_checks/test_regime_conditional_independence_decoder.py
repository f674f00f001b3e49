"""Step sets that are conditionally independent given the revealed positions make
the factorized oracle decoder exact (permutations with fixed sizes, graph order)."""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.models.block_hmm import BlockHMM
from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget
from pmdm.testing import strategies as pst
from pmdm.theory import generators as g
from pmdm.theory import get
from pmdm.theory.decoder_instances import DecoderInstance, DecoderSpec, fixed_step_sets

STATEMENT = get("regime-conditional-independence-decoder")


@st.composite
def independent_chunks(draw):
    # A table whose chunks of a permutation are independent given the earlier ones.
    T = draw(st.integers(2, 4))
    V = draw(st.integers(2, 3 if T <= 3 else 2))
    k = draw(st.integers(1, T))
    perm = draw(st.permutations(range(T)))
    blocks = [tuple(sorted(perm[i : i + k])) for i in range(0, T, k)]
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    log_p = g.conditionally_independent_joint(
        gen, (V,) * T, blocks, draw(st.sampled_from((0.0, 0.3)))
    )
    order = tuple(i for b in blocks for i in b)
    return DecoderInstance(
        TableTarget.from_dense(log_p.exp()), DecoderSpec(order, "fixed", k)
    )


@given(independent_chunks())
def test_independent_chunks_decode_exactly(instance):
    assert STATEMENT.failed_assumptions(instance) == []
    lhs, _ = STATEMENT.evaluate(instance)
    assert abs(lhs) <= 1e-9


@given(pst.token_hmm_params(max_states=3, max_vocab=3, max_length=4))
def test_graph_order_on_visible_markov_chains(params):
    init, trans, _, T = params
    K = init.shape[0]
    chain = TokenHMM(init, trans, torch.eye(K, dtype=torch.float64), T)
    instance = DecoderInstance(chain, DecoderSpec("graph"))
    assert STATEMENT.failed_assumptions(instance) == []
    lhs, _ = STATEMENT.evaluate(instance)
    assert abs(lhs) <= 1e-9


def test_graph_order_reveals_parallel_steps_on_a_chain():
    chain = TokenHMM(
        torch.ones(2) / 2, torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.eye(2), 5
    )
    sets = fixed_step_sets(DecoderInstance(chain, DecoderSpec("graph")))
    assert max(len(s) for s in sets) >= 2


def test_block_hmm_with_hard_parity():
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), block_size=3, length=6, eta=0.0)
    instance = DecoderInstance(hmm, DecoderSpec("graph"))
    assert STATEMENT.failed_assumptions(instance) == []
    assert abs(STATEMENT.evaluate(instance)[0]) <= 1e-9


def test_a_dependent_block_fails_the_assumption():
    p = torch.tensor([[0.5, 0.0], [0.0, 0.5]], dtype=torch.float64)
    copies = DecoderInstance(TableTarget.from_dense(p), DecoderSpec("l2r", "fixed", 2))
    assert STATEMENT.failed_assumptions(copies) == ["steps-conditionally-independent"]
    # and the factorized step is indeed wrong: KL(p ‖ q) = log 2 one way.
    assert abs(copies.forward_kl() - math.log(2)) < 1e-12
