"""ParallelBench: a factorized one-step model's forward KL is at least
``Σ_i H(Y_i | X) − H(Y | X)``, with equality at the true conditional marginals."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.metrics.information import marginal
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.instances import ConditionalTable

STATEMENT = get("parallelbench")


def true_marginals(cond):
    n = cond.dim() - 1
    return torch.stack(
        [torch.stack([marginal(row.log(), [i]) for i in range(n)]) for row in cond]
    )


@st.composite
def instances(draw, optimal=False):
    prompt, cond = draw(
        pst.conditional_tables(zeros=draw(st.sampled_from([None, True])))
    )
    X, n, V = cond.shape[0], cond.dim() - 1, cond.shape[1]
    if optimal:
        model = true_marginals(cond)
    else:
        rows = [
            draw(pst.joint_tables(min_length=1, max_length=1, min_vocab=V, max_vocab=V))
            for _ in range(X * n)
        ]
        model = torch.stack(rows).reshape(X, n, V).log()
    return ConditionalTable(prompt.log(), cond.log(), model)


@given(instances())
def test_no_factorized_model_beats_the_bound(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert STATEMENT.compare(lhs, rhs).ok
    assert lhs >= rhs - 1e-12


@given(instances(optimal=True))
def test_the_true_marginals_attain_it(instance):
    lhs, rhs = STATEMENT.evaluate(instance)
    assert abs(lhs - rhs) <= 1e-9


def test_hand_values_for_a_copied_answer():
    # One prompt, answer (Y_1, Y_2) = (B, B) for a fair bit B: the bound is log 2; a
    # model that is sure of the wrong value has infinite KL.
    prompt = torch.tensor([1.0], dtype=torch.float64)
    cond = torch.tensor([[[0.5, 0.0], [0.0, 0.5]]], dtype=torch.float64)
    optimal = ConditionalTable(prompt.log(), cond.log(), true_marginals(cond))
    lhs, rhs = STATEMENT.evaluate(optimal)
    assert lhs == pytest.approx(math.log(2)) and rhs == pytest.approx(math.log(2))
    sure = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]], dtype=torch.float64).log()
    lhs, _ = STATEMENT.evaluate(ConditionalTable(prompt.log(), cond.log(), sure))
    assert lhs == math.inf
    assert STATEMENT.compare(lhs, rhs).margin == 0.0


def test_the_prompt_removes_the_dependence():
    # Y = (X, X) given X: no dependence left given the prompt; the bound is 0.
    prompt = torch.tensor([0.5, 0.5], dtype=torch.float64)
    cond = torch.zeros(2, 2, 2, dtype=torch.float64)
    cond[0, 0, 0] = cond[1, 1, 1] = 1.0
    instance = ConditionalTable(prompt.log(), cond.log(), true_marginals(cond))
    assert STATEMENT.evaluate(instance) == pytest.approx((0.0, 0.0), abs=1e-12)
