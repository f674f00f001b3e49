"""Lemma 4.1: the rollout error is the sum of local errors along the model's rollout."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.decoding.decoder import Decoder
from pmdm.decoding.exact import output_distribution
from pmdm.ops.logspace import kl_divergence
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.decoder_instances import RolloutInstance
from pmdm.theory.rollout import rollout_profile

STATEMENT = get("lemma-4.1")

DETERMINISTIC = ("l2r", "r2l", "entropy", "confidence", "margin")


@st.composite
def rollouts(draw, support="keep"):
    probs = draw(pst.joint_tables(min_length=2, max_length=3, zeros=None))
    order = draw(pst.orders(probs.dim(), names=DETERMINISTIC))
    level = draw(st.sampled_from(pst.SPECIAL_LEVELS) | st.floats(0.0, 4.0))
    seed = draw(st.integers(0, 2**31 - 1))
    return RolloutInstance(probs.log(), order, level, seed, support)


@given(rollouts())
def test_both_sides_agree_to_1e_9(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert math.isfinite(lhs)
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(rhs))


@given(pst.noisy_predictors(pst.table_targets(min_length=2, max_length=3)))
def test_with_the_public_predictor_strategy(model):
    # Every order of the public strategy that is a fixed function of the prefix.
    target, T = model.base.target, model.base.length
    log_p = target.log_prob(target.enumerate_sequences())
    for order in DETERMINISTIC:
        log_q = output_distribution(Decoder(order), model, T).log_q
        lhs = kl_divergence(log_q, log_p).item()
        rhs = rollout_profile(model, model.base, T, order).kl
        assert lhs == rhs or abs(lhs - rhs) <= 1e-9 * max(1.0, abs(rhs))


@given(pst.joint_tables(min_length=2, max_length=3, zeros=False))
def test_zero_model_error_gives_zero_on_both_sides(probs):
    lhs, rhs = STATEMENT.evaluate(RolloutInstance(probs.log(), "entropy", 0.0))
    assert abs(lhs) <= 1e-12 and rhs == 0.0


def test_full_support_on_a_table_with_zeros_is_infinite_on_both_sides():
    p = torch.tensor([[0.5, 0.0], [0.0, 0.5]], dtype=torch.float64)
    instance = RolloutInstance(p.log(), (0, 1), 1.0, 3, "full")
    assert STATEMENT.evaluate(instance) == (math.inf, math.inf)


def test_the_total_depends_on_the_order():
    # Prefixes come from the model: the same model errs differently in each order.
    p = torch.tensor([[0.4, 0.1], [0.2, 0.3]], dtype=torch.float64)
    left = STATEMENT.evaluate(RolloutInstance(p.log(), (0, 1), 2.0, 0))
    right = STATEMENT.evaluate(RolloutInstance(p.log(), (1, 0), 2.0, 0))
    assert left[0] == pytest.approx(left[1], abs=1e-12)
    assert right[0] == pytest.approx(right[1], abs=1e-12)
    assert abs(left[0] - right[0]) > 1e-3
