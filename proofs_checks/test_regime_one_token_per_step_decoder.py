"""Perfect model, one token per step: the decoder's output is ``p`` in every order,
random ones and every step sampler included."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.models.block_hmm import BlockHMM
from pmdm.models.table import TableTarget
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.decoder_instances import DecoderInstance, DecoderSpec

STATEMENT = get("regime-one-token-per-step-decoder")

NAMES = tuple(n for n in pst.ORDER_NAMES if n != "sampled-confidence")


@st.composite
def instances(draw, targets):
    target = draw(targets)
    order = draw(pst.orders(target.length, names=NAMES))
    sampler = draw(st.sampled_from(pst.SAMPLER_NAMES))
    return DecoderInstance(target, DecoderSpec(order, "fixed", 1, sampler))


@given(instances(pst.table_targets(max_length=3)))
def test_tables(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert abs(lhs - rhs) <= 1e-9


@given(instances(pst.token_hmms(max_length=3, max_vocab=2)))
def test_token_hmms(instance):
    lhs, _ = STATEMENT.evaluate(instance)
    assert abs(lhs) <= 1e-9


@pytest.mark.parametrize("order", ["random", "entropy", "margin", (3, 1, 0, 2)])
def test_a_hard_parity_block_hmm(order):
    hmm = BlockHMM(2, 0.9, (0.9, 0.1), block_size=2, length=4, eta=0.0)
    lhs, _ = STATEMENT.evaluate(DecoderInstance(hmm, DecoderSpec(order)))
    assert abs(lhs) <= 1e-9


def test_the_assumptions_name_what_breaks_the_regime():
    target = TableTarget.from_dense(torch.full((2, 2), 0.25, dtype=torch.float64))
    two = DecoderInstance(target, DecoderSpec("l2r", "fixed", 2))
    assert STATEMENT.failed_assumptions(two) == ["one-token-per-step"]
    noisy = DecoderInstance(target, DecoderSpec("l2r"), level=1.0)
    assert STATEMENT.failed_assumptions(noisy) == ["oracle-predictor"]
    drawn = DecoderInstance(target, DecoderSpec("sampled-confidence"))
    assert STATEMENT.failed_assumptions(drawn) == ["order-ignores-the-draws"]
