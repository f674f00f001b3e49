"""Eq. 11 under Assumption 4.2: ``J(π) ≤ Σ_t (1+λ)^{T−t} (α H_t + b)``, tight when
the assumption is an equality at every step."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.metrics.information import joint_entropy
from pmdm.testing import strategies as pst
from pmdm.theory import get
from pmdm.theory.decoder_instances import RolloutInstance
from pmdm.theory.rollout import (
    assumption_slack,
    eq11_bound,
    smallest_alpha,
    smallest_b,
    smallest_lam,
)

STATEMENT = get("eq-11")


@st.composite
def rollouts(draw, max_length=3):
    probs = draw(pst.joint_tables(min_length=2, max_length=max_length))
    order = draw(pst.orders(probs.dim(), names=("l2r", "r2l", "entropy", "margin")))
    level = draw(st.sampled_from((0.5, 1.0, 3.0)) | st.floats(0.0, 4.0))
    law = draw(st.sampled_from(("rollout", "target")))
    return RolloutInstance(
        probs.log(), order, level, draw(st.integers(0, 99)), "keep", law
    )


@st.composite
def with_parameters(draw, b_zero=False):
    # Two of α, λ, b drawn, the third the smallest that makes 4.2 hold.
    inst = draw(rollouts())
    e, h = inst.profile().errors, inst.entropies()
    alpha = draw(st.floats(1e-4, 10.0))
    lam = draw(st.sampled_from((0.0, 1.0)) | st.floats(0.0, 3.0))
    mode = draw(st.sampled_from(("alpha", "lam") if b_zero else ("b", "alpha", "lam")))
    b = 0.0
    if mode == "b":
        b = smallest_b(e, h, alpha, lam)
    elif mode == "alpha":
        alpha = max(smallest_alpha(e, h, lam, 0.0), 1e-6)
    else:
        lam = smallest_lam(e, h, alpha, 0.0)
    if not (math.isfinite(alpha) and math.isfinite(lam)):
        alpha, lam, b = 1.0, 1.0, (0.0 if b_zero else smallest_b(e, h, 1.0, 1.0))
    return inst.with_parameters(alpha, lam, b)


@given(with_parameters())
def test_the_bound_is_never_violated(instance):
    if STATEMENT.failed_assumptions(instance):
        return  # b = 0 infeasible for this rollout
    lhs, rhs = STATEMENT.evaluate(instance)
    assert STATEMENT.compare(lhs, rhs).ok


@given(rollouts())
def test_the_target_law_entropies_sum_to_the_joint_entropy(instance):
    # H_t = H_p(X_π(t) | X_π(<t)) under the target's prefix law: the chain rule.
    total = instance.profile().target_entropies.sum().item()
    assert total == pytest.approx(joint_entropy(instance.log_p).item(), abs=1e-12)


@given(pst.joint_tables(min_length=2, max_length=3, zeros=False), st.integers(0, 9))
def test_the_two_entropy_laws_agree_without_model_error(probs, seed):
    profile = RolloutInstance(probs.log(), "entropy", 0.0, seed).profile()
    assert torch.allclose(profile.entropies, profile.target_entropies, atol=1e-12)
    assert (profile.errors == 0).all()


def test_tight_when_the_assumption_is_an_equality_at_every_step():
    # T = 2: b = ē_1 − αH_1 makes step 1 tight, λ = (ē_2 − αH_2 − b)/ē_1 step 2.
    p = torch.tensor([[12, 34], [24, 29]], dtype=torch.float64) / 99
    inst = RolloutInstance(p.log(), (0, 1), 3.0, 1)
    e, h = inst.profile().errors.tolist(), inst.entropies().tolist()
    alpha = 0.1
    b = e[0] - alpha * h[0]
    lam = (e[1] - alpha * h[1] - b) / e[0]
    assert b > 0 and lam > 0
    assert max(abs(s) for s in assumption_slack(e, h, alpha, lam, b).tolist()) < 1e-12
    lhs, rhs = STATEMENT.evaluate(inst.with_parameters(alpha, lam, b))
    assert STATEMENT.compare(lhs, rhs).margin == pytest.approx(1.0, abs=1e-12)


def test_loosest_without_model_error():
    p = torch.tensor([[0.4, 0.1], [0.2, 0.3]], dtype=torch.float64)
    inst = RolloutInstance(p.log(), (0, 1), 0.0).with_parameters(0.5, 1.0, 0.0)
    lhs, rhs = STATEMENT.evaluate(inst)
    assert lhs == pytest.approx(0.0, abs=1e-15) and rhs > 0.5


@pytest.mark.parametrize("lam, b", [(0.0, 0.3), (1.5, 0.0)])
def test_coincides_with_the_printed_form_when_lam_or_b_is_zero(lam, b):
    h = [0.7, 0.2, 0.5]
    assert eq11_bound(h, 0.4, lam, b) == pytest.approx(
        eq11_bound(h, 0.4, lam, b, "printed"), abs=1e-15
    )
