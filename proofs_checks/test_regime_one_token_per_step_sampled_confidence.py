"""One token per step in the sampled-confidence order: ``q ≠ p`` (selection bias)."""

import torch
from hypothesis import given

from pmdm.models.table import TableTarget
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.check import check
from pmdm.theory.decoder_instances import DecoderInstance, DecoderSpec

STATEMENT = get("regime-one-token-per-step-sampled-confidence")


def test_the_two_bit_counterexample_by_hand():
    # p(00, 01, 10, 11) = (0.4, 0.1, 0.2, 0.3); marginals (0.5, 0.5) and (0.6, 0.4).
    # Step 1 draws both; bit 1 wins when its draw is 0 (0.6 > 0.5): q(0·0) via
    # p(x_0 | x_1 = 0) = (2/3, 1/3); else bit 0 wins with a fair draw, then
    # p(x_1 | x_0). q = (0.6·2/3 + 0.4·0.5·0.8, 0.4·0.5·0.2, 0.6/3 + 0.4·0.5·0.4,
    # 0.4·0.5·0.6) = (0.56, 0.04, 0.28, 0.12).
    p = torch.tensor([[0.4, 0.1], [0.2, 0.3]], dtype=torch.float64)
    instance = DecoderInstance(
        TableTarget.from_dense(p), DecoderSpec("sampled-confidence")
    )
    q = instance.log_q().exp()
    expected = torch.tensor([0.56, 0.04, 0.28, 0.12], dtype=torch.float64)
    assert torch.allclose(q, expected, atol=1e-12)
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs > 0.2 and rhs == 0.0
    assert check(STATEMENT, [instance]).verdict == "fails"


@given(pst.table_targets(min_length=1, max_length=1))
def test_one_position_is_always_exact(target):
    # Nothing to choose between: the order cannot bias the value.
    lhs, _ = STATEMENT.evaluate(
        DecoderInstance(target, DecoderSpec("sampled-confidence"))
    )
    assert abs(lhs) <= 1e-12


def test_greedy_draws_make_the_order_deterministic_again():
    p = torch.tensor([[0.4, 0.1], [0.2, 0.3]], dtype=torch.float64)
    greedy = DecoderInstance(
        TableTarget.from_dense(p), DecoderSpec("sampled-confidence", temperature=0.0)
    )
    assert STATEMENT.failed_assumptions(greedy) == ["temperature-1"]
