"""The public hypothesis strategies: validity, zeros on demand, and shrinking."""

import math

import pytest
import torch
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from pmdm.metrics.information import total_correlation
from pmdm.models.block_hmm import BlockHMM
from pmdm.testing import strategies as pst

FIND = settings(
    database=None,
    max_examples=2000,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def assert_probability_table(probs, shape=None):
    assert probs.dtype == torch.float64
    assert (probs >= 0).all() and (probs > 0).any()
    assert abs(probs.sum().item() - 1) < 1e-12
    if shape is not None:
        assert tuple(probs.shape) == tuple(shape)


# -- joint tables ----------------------------------------------------------------------


@given(pst.joint_tables())
def test_joint_tables_are_normalized_tables_of_equal_axes(probs):
    assert_probability_table(probs)
    assert len(set(probs.shape)) == 1 and 1 <= probs.dim() <= 3
    assert probs.numel() <= 81


@given(pst.joint_tables(zeros=True, max_length=4, max_vocab=2))
def test_joint_tables_with_zeros_hold_a_zero(probs):
    assert_probability_table(probs)
    assert (probs == 0).any()


@given(pst.joint_tables(zeros=False, extreme=True))
def test_joint_tables_without_zeros_are_positive(probs):
    assert_probability_table(probs)
    assert (probs > 0).all()


@given(pst.joint_tables(min_length=2, max_length=2, min_vocab=3, max_vocab=3))
def test_joint_tables_respect_the_size_bounds(probs):
    assert probs.shape == (3, 3)


def test_zeros_appear_by_default_and_extreme_ranges_appear_when_asked():
    find(pst.joint_tables(), lambda p: (p == 0).any(), settings=FIND)
    tiny = find(
        pst.joint_tables(zeros=False, extreme=True),
        lambda p: p.min().item() < 1e-9 * p.max().item(),
        settings=FIND,
    )
    assert (tiny > 0).all()


def test_joint_tables_shrink_to_a_point_mass_and_to_uniform():
    smallest = find(pst.joint_tables(), lambda p: True, settings=FIND)
    assert smallest.tolist() == [1.0, 0.0]
    uniform = find(pst.joint_tables(zeros=False), lambda p: True, settings=FIND)
    assert uniform.tolist() == [0.5, 0.5]


def test_joint_tables_shrink_to_the_smallest_correlated_table():
    found = find(
        pst.joint_tables(max_length=3),
        lambda p: total_correlation(p.log()).item() > 0.1,
        settings=FIND,
    )
    assert found.shape == (2, 2)
    assert (found > 0).sum() <= 2


@pytest.mark.parametrize(
    "strategy, match",
    [
        (lambda: pst.joint_tables(zeros=True, min_vocab=1), "min_vocab=1"),
        (
            lambda: pst.joint_tables(min_length=3, max_length=2),
            "min_length, max_length",
        ),
        (
            lambda: pst.block_hmm_params(min_block_size=0),
            "min_block_size, max_block_size",
        ),
    ],
)
def test_bad_arguments_name_themselves(strategy, match):
    with pytest.raises(ValueError, match=match):
        find(strategy(), lambda p: True, settings=FIND)


# -- conditional tables, partitions, schedules -------------------------------------


@given(pst.conditional_tables(zeros=True))
def test_conditional_tables_have_normalized_rows(pair):
    prompt, cond = pair
    assert_probability_table(prompt)
    assert cond.shape[0] == prompt.shape[0]
    for row in cond:
        assert_probability_table(row)
        assert (row == 0).any()


@given(
    st.integers(1, 6).flatmap(lambda n: st.tuples(st.just(n), pst.block_partitions(n)))
)
def test_block_partitions_are_ordered_partitions(case):
    n, blocks = case
    assert sorted(i for b in blocks for i in b) == list(range(n))
    assert all(b and list(b) == sorted(b) for b in blocks)


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(st.just(n), pst.schedules(n))))
def test_schedules_are_compositions(case):
    n, sizes = case
    assert sum(sizes) == n and min(sizes) >= 1


def test_partitions_and_schedules_shrink_to_one_step():
    assert find(pst.block_partitions(4), lambda b: True, settings=FIND) == (
        (0, 1, 2, 3),
    )
    assert find(pst.schedules(4), lambda s: True, settings=FIND) == (4,)


# -- Block-HMMs ------------------------------------------------------------------------


@given(pst.block_hmms())
def test_block_hmms_are_valid_targets(hmm):
    assert isinstance(hmm, BlockHMM)
    assert hmm.length <= 8 and hmm.length % hmm.block_size == 0
    total = hmm.log_prob(hmm.enumerate_sequences()).exp().sum().item()
    assert total == pytest.approx(1.0, abs=1e-12)


def test_block_hmms_include_the_hard_parity_constraint_and_shrink():
    hard = find(pst.block_hmm_params(), lambda kw: kw["eta"] == 0.0, settings=FIND)
    BlockHMM(**hard)
    smallest = find(pst.block_hmm_params(), lambda kw: True, settings=FIND)
    assert (smallest["num_states"], smallest["block_size"], smallest["length"]) == (
        1,
        1,
        1,
    )
    find(pst.block_hmm_params(), lambda kw: 0 < kw["eta"] < 1e-6, settings=FIND)


@given(pst.block_hmm_params(etas=st.just(0.0), max_block_size=3))
def test_block_hmm_params_honour_a_given_eta_strategy(params):
    assert params["eta"] == 0.0


# -- token-level HMMs and table targets ------------------------------------------------


@given(pst.token_hmm_params(zeros=True))
def test_token_hmm_params_are_probability_rows(params):
    init, trans, emit, length = params
    K, V = emit.shape
    assert_probability_table(init, (K,))
    for row in trans:
        assert_probability_table(row, (K,))
    for row in emit:
        assert_probability_table(row, (V,))
    assert (emit == 0).any() and length >= 1


def test_token_hmms_build_targets():
    pytest.importorskip("pmdm.models.hmm")

    @settings(max_examples=10)
    @given(pst.token_hmms(max_length=3))
    def check(hmm):
        x = hmm.enumerate_sequences()
        assert hmm.log_prob(x).exp().sum().item() == pytest.approx(1.0, abs=1e-12)

    check()


def test_table_targets_build_targets():
    pytest.importorskip("pmdm.models.table")

    @settings(max_examples=10)
    @given(pst.table_targets(zeros=True))
    def check(target):
        x = target.enumerate_sequences()
        assert target.log_prob(x).exp().sum().item() == pytest.approx(1.0, abs=1e-12)
        assert torch.isneginf(target.log_prob(x)).any()

    check()


def test_log_tables_are_logs_of_tables():
    found = find(pst.log_tables(), lambda t: torch.isneginf(t).any(), settings=FIND)
    assert math.isclose(found.exp().sum().item(), 1.0)
