"""Fast-dLLM: marginals above ``1 − ε`` with ``(n+1)ε ≤ 1`` make greedy factorized
decoding pick the joint argmax; the constant is sharp."""

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.instances import ThresholdInstance

STATEMENT = get("fast-dllm-greedy")


@st.composite
def confident(draw):
    # x* = 0; position i puts mass a_i < ε − r on the neighbour differing at i, the
    # rest r < ε/5 anywhere off x*, so that each marginal exceeds 1 − ε.
    n = draw(st.integers(1, 4))
    V = draw(st.integers(2, 3 if n <= 3 else 2))
    eps = draw(st.sampled_from([1.0]) | st.floats(0.01, 1.0)) / (n + 1)
    rest = eps * draw(st.floats(0.0, 0.2))
    noise = draw(pst.joint_tables(min_length=n, max_length=n, min_vocab=V, max_vocab=V))
    noise[(0,) * n] = 0.0
    p = rest * noise / noise.sum() if noise.sum() > 0 else torch.zeros_like(noise)
    for i in range(n):
        other = [0] * n
        other[i] = draw(st.integers(1, V - 1))
        p[tuple(other)] += (eps - rest) * draw(st.floats(0.5, 0.999))
    p[(0,) * n] = 1 - p.sum()
    return ThresholdInstance(p.log(), eps)


@given(confident())
def test_greedy_equals_joint_argmax(instance):
    assert STATEMENT.failed_assumptions(instance) == []
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs == rhs
    # The argmax is unique: every other configuration is strictly below.
    probs = instance.log_p.exp().flatten()
    assert (probs == probs.max()).sum() == 1


def boundary_instance(n, a):
    # p(x*) = 1 − n·a and mass a on each neighbour of x* = (0, .., 0).
    p = torch.zeros((2,) * n, dtype=torch.float64)
    for i in range(n):
        other = [0] * n
        other[i] = 1
        p[tuple(other)] = a
    p[(0,) * n] = 1 - n * a
    return p


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_at_the_boundary_the_argmax_ties(n):
    # (n+1)ε = 1 and marginals equal to 1 − ε: x* ties with its n neighbours, so
    # greedy decoding still returns a joint argmax but no longer the unique one.
    eps = 1 / (n + 1)
    p = boundary_instance(n, eps)
    instance = ThresholdInstance(p.log(), eps)
    assert STATEMENT.failed_assumptions(instance) == ["marginals>1-eps"]
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs == pytest.approx(rhs, abs=1e-15)
    assert int((p - p.max()).abs().le(1e-15).sum()) == n + 1


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("excess", [1e-3, 0.05])
def test_beyond_the_boundary_a_counterexample_exists(n, excess):
    # ε > 1/(n+1): mass a ∈ (1/(n+1), ε) on each neighbour beats p(x*) = 1 − na.
    eps = 1 / (n + 1) + excess
    a = 1 / (n + 1) + excess / 2
    instance = ThresholdInstance(boundary_instance(n, a).log(), eps)
    assert STATEMENT.failed_assumptions(instance) == ["(n+1)eps<=1"]
    lhs, rhs = STATEMENT.evaluate(instance)
    assert lhs < rhs


def test_the_paper_style_two_position_counterexample():
    p = torch.tensor([[0.325, 0.345], [0.33, 0.0]], dtype=torch.float64)
    instance = ThresholdInstance(p.log(), 0.35)
    assert STATEMENT.failed_assumptions(instance) == ["(n+1)eps<=1"]
    greedy, best = STATEMENT.evaluate(instance)
    assert (greedy, best) == (pytest.approx(0.325), pytest.approx(0.345))


def test_exhaustive_small_grid_never_breaks_it():
    # Two bits, probabilities on a 1/24 grid, every ε on a 1/48 grid up to 1/3.
    grid = [k / 24 for k in range(25)]
    for a, b, c in itertools.product(grid, repeat=3):
        d = 1 - a - b - c
        if d < -1e-12:
            continue
        p = torch.tensor([[a, b], [c, max(d, 0.0)]], dtype=torch.float64)
        for k in range(1, 17):
            instance = ThresholdInstance(p.log(), k / 48)
            if STATEMENT.failed_assumptions(instance):
                continue
            lhs, rhs = STATEMENT.evaluate(instance)
            assert lhs == rhs
