"""Factorized and joint block guides, and their measures, against brute force."""

import itertools
import math

import pyro
import pytest
import torch

from pmdm.decoding.block import FactorizedBlockGuide, JointBlockGuide
from pmdm.metrics.blockwise import (
    MEASURES,
    exact_block_measures,
    monte_carlo_block_measures,
)
from pmdm.models.block_hmm import BlockHMM


def two_tokens_ab_ba():
    """p(01) = p(10) = 1/2: one content bit and a parity bit that is always flipped."""
    return BlockHMM(num_states=1, stay=0.5, rho=(0.5,), block_size=2, length=2, eta=1.0)


def test_two_tokens_factorized_in_one_step_by_hand():
    hmm = two_tokens_ab_ba()
    probs = hmm.log_prob(hmm.enumerate_sequences()).exp()
    assert torch.allclose(
        probs, torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64)
    )
    out = exact_block_measures(FactorizedBlockGuide(hmm))
    # q is uniform on {00, 01, 10, 11}: half of its mass is on impossible pairs.
    assert out["incoherence"].estimate == pytest.approx(0.5, abs=1e-12)
    # KL(p ‖ q) = Σ_{01,10} 1/2 log((1/2)/(1/4)) = ln 2 = TC.
    assert out["forward_kl"].estimate == pytest.approx(math.log(2), abs=1e-12)
    assert out["tc_forward"].estimate == pytest.approx(math.log(2), abs=1e-12)
    assert out["reverse_kl"].estimate == math.inf
    assert out["cross_entropy"].estimate == math.inf
    assert all(v.stderr == 0 and v.method == "exact" for v in out.values())


def test_two_tokens_joint_is_exact():
    out = exact_block_measures(JointBlockGuide(two_tokens_ab_ba()))
    assert out["reverse_kl"].estimate == pytest.approx(0.0, abs=1e-12)
    assert out["forward_kl"].estimate == pytest.approx(0.0, abs=1e-12)
    assert out["incoherence"].estimate == 0.0
    assert out["cross_entropy"].estimate == pytest.approx(math.log(2), abs=1e-12)


SMALL = BlockHMM(
    num_states=2, stay=0.8, rho=(0.85, 0.2), block_size=3, length=9, eta=0.02
)


def enumerated(hmm):
    x = hmm.enumerate_sequences()
    return x, hmm.log_prob(x).exp()


def prefix_block_law(hmm, x, m):
    """p(x_{B_m} | x_{P_m}) over the 2^B configurations, by enumeration."""
    allx, probs = enumerated(hmm)
    B = hmm.block_size
    match = (allx[:, : m * B] == x[: m * B]).all(-1)
    law = {}
    for c in itertools.product([0, 1], repeat=B):
        hit = match & (allx[:, m * B : (m + 1) * B] == torch.tensor(c)).all(-1)
        law[c] = probs[hit].sum().item()
    total = sum(law.values())
    return {c: v / total for c, v in law.items()}


def factorized_block_law(law, B):
    marg = [sum(v for c, v in law.items() if c[i]) for i in range(B)]
    return {
        c: math.prod(marg[i] if c[i] else 1 - marg[i] for i in range(B)) for c in law
    }


def test_factorized_log_q_matches_products_of_enumerated_marginals():
    hmm = SMALL
    guide = FactorizedBlockGuide(hmm)
    x = hmm.sample(5)
    B = hmm.block_size
    for row, log_q in zip(x, guide.log_prob(x), strict=True):
        expected = 0.0
        for m in range(hmm.num_blocks):
            q = factorized_block_law(prefix_block_law(hmm, row, m), B)
            expected += math.log(q[tuple(row[m * B : (m + 1) * B].tolist())])
        assert log_q.item() == pytest.approx(expected, abs=1e-10)


def test_joint_log_q_is_log_p():
    x = SMALL.sample(50)
    assert torch.allclose(JointBlockGuide(SMALL).log_prob(x), SMALL.log_prob(x))


def kl(a, b):
    return sum(pa * math.log(pa / b[c]) for c, pa in a.items() if pa > 0)


def test_forward_and_reverse_decompositions_equal_the_enumerated_kls():
    # Eq. 16 and 18 of the paper with every term computed by enumeration: the
    # expectation over prefixes is one over whole sequences of a function of the
    # prefix, Σ_x p(x) Σ_m TC→_m(x_{P_m}) and Σ_x q(x) Σ_m TC←_m(x_{P_m}).
    hmm = SMALL
    B, M = hmm.block_size, hmm.num_blocks
    allx, probs = enumerated(hmm)
    guide = FactorizedBlockGuide(hmm)
    q_all = guide.log_prob(allx).exp()
    laws = {}
    expected_fwd = expected_rev = 0.0
    for row, p, q in zip(allx, probs, q_all, strict=True):
        for m in range(M):
            prefix = tuple(row[: m * B].tolist())
            if prefix not in laws:
                law = prefix_block_law(hmm, row, m)
                laws[prefix] = (law, factorized_block_law(law, B))
            law, fact = laws[prefix]
            expected_fwd += p.item() * kl(law, fact)
            expected_rev += q.item() * kl(fact, law)
    out = exact_block_measures(guide)
    assert out["forward_kl"].estimate == pytest.approx(expected_fwd, abs=1e-9)
    assert out["tc_forward"].estimate == pytest.approx(expected_fwd, abs=1e-9)
    assert out["reverse_kl"].estimate == pytest.approx(expected_rev, abs=1e-9)
    assert out["tc_reverse"].estimate == pytest.approx(expected_rev, abs=1e-9)


MC_CASES = [
    (BlockHMM(num_states=2, rho=(0.9, 0.1), block_size=4, length=12, eta=1e-3), 1e-2),
    (
        BlockHMM(
            num_states=3,
            stay=0.5,
            rho=(0.9, 0.5, 0.1),
            block_size=3,
            length=12,
            eta=1e-9,
        ),
        1e-8,
    ),
]


@pytest.mark.parametrize("guide_cls", [FactorizedBlockGuide, JointBlockGuide])
@pytest.mark.parametrize(("hmm", "tau"), MC_CASES)
def test_monte_carlo_agrees_with_enumeration_within_standard_errors(
    guide_cls, hmm, tau
):
    guide = guide_cls(hmm)
    exact = exact_block_measures(guide, tau)
    pyro.set_rng_seed(11)
    mc = monte_carlo_block_measures(guide, 4000, tau)
    for name in MEASURES:
        est, ref = mc[name], exact[name].estimate
        assert est.method == "monte-carlo" and est.n == 4000
        # 4.5 standard errors, plus 1e-6 for events rarer than 1/N (the joint
        # decoder's incoherence here is about 1e-9: no sample shows it).
        assert abs(est.estimate - ref) <= 4.5 * est.stderr + 1e-6, (name, est, ref)


def test_hard_constraint_gives_infinite_reverse_kl_and_no_nan():
    hmm = BlockHMM(eta=0.0, length=32)
    out = monte_carlo_block_measures(FactorizedBlockGuide(hmm), 500)
    assert out["reverse_kl"].estimate == math.inf
    assert out["cross_entropy"].estimate == math.inf
    assert math.isfinite(out["forward_kl"].estimate)
    assert 0 < out["incoherence"].estimate < 1
    joint = monte_carlo_block_measures(JointBlockGuide(hmm), 500)
    assert abs(joint["reverse_kl"].estimate) < 1e-9
    assert joint["incoherence"].estimate == 0
    for value in list(out.values()) + list(joint.values()):
        assert not math.isnan(value.estimate) and not math.isnan(value.stderr)


def test_guide_rejects_other_targets_and_bad_sizes():
    with pytest.raises(TypeError, match=r"target=.*expected a BlockHMM"):
        FactorizedBlockGuide("not a model")
    with pytest.raises(ValueError, match=r"num_sequences=1: expected an integer >= 2"):
        monte_carlo_block_measures(FactorizedBlockGuide(SMALL), 1)
    with pytest.raises(ValueError, match=r"tau=0.0"):
        exact_block_measures(FactorizedBlockGuide(SMALL), tau=0.0)
