"""Fast-dLLM's threshold and factor rules as decoders: every reachable step that meets
``(n+1)ε ≤ 1`` commits the joint argmax greedily; the condition is needed."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.models.table import TableTarget
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.decoder_instances import DecoderInstance, DecoderSpec

STATEMENT = get("fast-dllm-decoder")


@st.composite
def confident_tables(draw):
    # Mass near x* = 0 with each off-x* position carrying less than ε.
    n = draw(st.integers(2, 3))
    eps = draw(st.floats(0.01, 1.0)) / (n + 1)
    noise = draw(pst.joint_tables(min_length=n, max_length=n, max_vocab=2))
    noise[(0,) * n] = 0.0
    p = eps * 0.2 * noise / noise.sum() if noise.sum() > 0 else torch.zeros_like(noise)
    for i in range(n):
        other = [0] * n
        other[i] = 1
        p[tuple(other)] += eps * 0.7
    p[(0,) * n] = 1 - p.sum()
    return p, eps


@given(confident_tables(), st.sampled_from(("confidence", "entropy", "margin")))
def test_threshold_rule(table, order):
    p, eps = table
    spec = DecoderSpec(order, "threshold", 1 - eps)
    instance = DecoderInstance(TableTarget.from_dense(p), spec)
    if not STATEMENT.failed_assumptions(instance):
        assert STATEMENT.evaluate(instance) == (0.0, 0.0)


@given(pst.joint_tables(max_length=3), st.floats(0.01, 1.0))
def test_factor_rule_with_the_confidence_order_always_qualifies(probs, factor):
    spec = DecoderSpec("confidence", "factor", factor)
    instance = DecoderInstance(TableTarget.from_dense(probs), spec)
    assert STATEMENT.failed_assumptions(instance) == []
    lhs, _ = STATEMENT.evaluate(instance)
    assert lhs <= 1e-12


def boundary_table():
    # n = 2, ε = 0.35: p(0,0) = 0.325 < p(0,1) = 0.345; marginals 0.67 and 0.655.
    p = torch.zeros(2, 2, dtype=torch.float64)
    p[0, 0], p[0, 1], p[1, 0] = 0.325, 0.345, 0.33
    return TableTarget.from_dense(p)


@pytest.mark.parametrize(
    "schedule, parameter",
    [("factor", 1.1), ("threshold", 0.6)],
    ids=["factor", "threshold"],
)
def test_beyond_the_condition_the_greedy_commit_misses_the_argmax(schedule, parameter):
    instance = DecoderInstance(
        boundary_table(), DecoderSpec("confidence", schedule, parameter)
    )
    assert STATEMENT.failed_assumptions(instance) == ["(n+1)eps<=1-at-every-step"]
    gap, _ = STATEMENT.evaluate(instance)
    assert gap == pytest.approx(0.345 - 0.325, abs=1e-12)


def test_a_strict_factor_commits_one_position_and_is_exact():
    instance = DecoderInstance(
        boundary_table(), DecoderSpec("confidence", "factor", 1.0)
    )
    assert STATEMENT.failed_assumptions(instance) == []
    assert all(len(s.positions) == 1 for s in instance.steps())
