"""The public strategies for predictors with model error and for decoders: validity,
compatibility with exact enumeration, and shrinking."""

import math

import pytest
import torch
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from pmdm.decoding.decoder import Decoder
from pmdm.decoding.exact import output_distribution
from pmdm.decoding.orders import RandomOrder, SampledConfidence
from pmdm.decoding.samplers import Factorized
from pmdm.decoding.schedules import (
    FactorSchedule,
    FixedSize,
    Schedule,
    StepsSchedule,
    ThresholdSchedule,
)
from pmdm.models.table import TableTarget
from pmdm.predictors.noisy import NoisyPredictor
from pmdm.predictors.oracle import OraclePredictor
from pmdm.testing import strategies as pst

FIND = settings(
    database=None,
    max_examples=2000,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

TARGET = TableTarget.from_dense(
    torch.tensor(
        [[[0.3, 0.0], [0.1, 0.1]], [[0.05, 0.15], [0.2, 0.1]]], dtype=torch.float64
    )
)


# -- noisy predictors -------------------------------------------------------------------


@given(pst.noisy_predictors())
def test_noisy_predictors_are_normalized_and_wrap_an_oracle(model):
    assert isinstance(model, NoisyPredictor)
    assert isinstance(model.base, OraclePredictor)
    T = model.base.length
    tokens = torch.full((1, T), model.mask_id)
    log_probs = model(tokens)
    assert torch.allclose(
        log_probs.exp().sum(-1), torch.ones(1, T, dtype=torch.float64)
    )


@given(pst.noisy_predictors(supports=("keep",)))
def test_keep_support_keeps_the_zeros_of_the_oracle(model):
    tokens = torch.full((1, model.base.length), model.mask_id)
    base = model.base(tokens)
    assert (model(tokens)[torch.isneginf(base)] == -math.inf).all()


@given(pst.noisy_predictors(levels=st.floats(0.1, 3.0), supports=("full",)))
def test_full_support_gives_every_token_mass(model):
    tokens = torch.full((1, model.base.length), model.mask_id)
    assert torch.isfinite(model(tokens)).all()


def test_noisy_predictors_shrink_to_the_oracle_itself():
    model = find(pst.noisy_predictors(), lambda m: True, settings=FIND)
    assert (model.level, model.seed, model.support) == (0.0, 0, "keep")
    tokens = torch.full((1, model.base.length), model.mask_id)
    assert torch.equal(model(tokens), model.base(tokens))


def test_noisy_predictors_name_a_bad_support():
    with pytest.raises(ValueError, match="supports=\\('half',\\)"):
        pst.noisy_predictors(supports=("half",))


# -- orders, schedules, decoders --------------------------------------------------------


@given(pst.orders(3))
def test_orders_build_order_policies(order):
    assert Decoder(order).order is not None
    if isinstance(order, tuple):
        assert sorted(order) == [0, 1, 2]


@given(pst.decoder_schedules(4))
def test_schedules_are_schedule_objects_within_the_length(schedule):
    assert isinstance(schedule, Schedule)
    if isinstance(schedule, FixedSize):
        assert 1 <= schedule.tokens_per_step <= 4
    if isinstance(schedule, StepsSchedule):
        assert 1 <= schedule.steps <= 4


@settings(max_examples=40)
@given(pst.decoders(3, remask=True), st.integers(0, 2**31 - 1))
def test_exact_decoders_enumerate_to_a_distribution_and_decode(decoder, seed):
    oracle = OraclePredictor(TARGET)
    law = output_distribution(decoder, oracle, 3)
    assert law.log_q.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    out = decoder.decode(
        oracle, num_sequences=4, length=3, generator=torch.Generator().manual_seed(seed)
    )
    assert ((out.tokens >= 0) & (out.tokens < 2)).all()
    # A decoded sequence is one the exact law can produce.
    index = (out.tokens * torch.tensor([4, 2, 1])).sum(-1)
    assert torch.isfinite(law.log_q[index]).all()


@given(pst.decoders(4))
def test_exact_decoders_respect_what_enumeration_covers(decoder):
    if isinstance(decoder.order, RandomOrder):
        assert isinstance(
            decoder.schedule, FixedSize | StepsSchedule | ThresholdSchedule
        )
    if isinstance(decoder.order, SampledConfidence):
        assert isinstance(decoder.sampler, Factorized)
    if decoder.sampler.name == "rejection":
        assert decoder.temperature > 0


def test_decoders_shrink_to_left_to_right_one_token_factorized():
    decoder = find(pst.decoders(3), lambda d: True, settings=FIND)
    assert decoder.order.name == "l2r"
    assert (
        isinstance(decoder.schedule, FixedSize)
        and decoder.schedule.tokens_per_step == 1
    )
    assert decoder.sampler.name == "factorized" and decoder.temperature == 1.0
    assert decoder.remask is None


def test_every_kind_of_schedule_appears():
    for kind in (FactorSchedule, ThresholdSchedule, StepsSchedule):
        find(
            pst.decoders(3), lambda d, k=kind: isinstance(d.schedule, k), settings=FIND
        )
    find(pst.decoders(3, remask=True), lambda d: d.remask is not None, settings=FIND)


@pytest.mark.parametrize(
    "strategy, match",
    [
        (lambda: pst.orders(0), "length=0"),
        (lambda: pst.orders(2, names=("zigzag",)), "names=\\('zigzag',\\)"),
        (lambda: find(pst.decoder_schedules(0), lambda s: True), "length=0"),
        (
            lambda: find(pst.decoder_schedules(2, kinds=("cosine",)), lambda s: True),
            "kinds",
        ),
        (
            lambda: find(pst.decoders(2, samplers=("gibbs",)), lambda d: True),
            "samplers",
        ),
    ],
)
def test_bad_arguments_are_named(strategy, match):
    with pytest.raises(ValueError, match=match):
        strategy()
