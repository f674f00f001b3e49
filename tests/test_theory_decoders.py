"""Rollout profiles, Assumption 4.2 fits, Eq. 11 forms and the decoder instances."""

import itertools
import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pmdm.models.block_hmm import BlockHMM
from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget
from pmdm.ops.logspace import entropy, kl_divergence
from pmdm.predictors.noisy import NoisyPredictor
from pmdm.predictors.oracle import OraclePredictor
from pmdm.theory.decoder_instances import (
    DecoderInstance,
    DecoderSpec,
    RolloutInstance,
    describe_target,
    fixed_step_sets,
    reachable_steps,
)
from pmdm.theory.rollout import (
    assumption_slack,
    eq11_bound,
    eq11_weights,
    fit_assumption,
    nonnegative_least_squares,
    rollout_profile,
    smallest_alpha,
    smallest_b,
    smallest_lam,
)

P2 = torch.tensor([[0.4, 0.1], [0.2, 0.3]], dtype=torch.float64)


def table(p=P2):
    return TableTarget.from_dense(p)


# -- rollout profiles --------------------------------------------------------------------


def test_profile_of_two_tokens_by_hand():
    # ē_1 = KL(p_θ(x_0) ‖ p(x_0)); ē_2 = Σ_v p_θ(x_0 = v) KL(p_θ(x_1|v) ‖ p(x_1|v)).
    oracle = OraclePredictor(table())
    model = NoisyPredictor(oracle, 1.5, seed=2)
    masked = torch.tensor([[2, 2]])
    first_model, first_p = model(masked)[0, 0], oracle(masked)[0, 0]
    e1 = kl_divergence(first_model, first_p).item()
    e2 = h2 = h2_target = 0.0
    for v in range(2):
        ctx = torch.tensor([[v, 2]])
        m, p = model(ctx)[0, 1], oracle(ctx)[0, 1]
        e2 += first_model[v].exp().item() * kl_divergence(m, p).item()
        h2 += first_model[v].exp().item() * entropy(p).item()
        h2_target += first_p[v].exp().item() * entropy(p).item()
    profile = rollout_profile(model, oracle, 2, "l2r")
    assert profile.errors.tolist() == pytest.approx([e1, e2], abs=1e-14)
    assert profile.entropies.tolist() == pytest.approx([entropy(first_p).item(), h2])
    assert profile.target_entropies[1].item() == pytest.approx(h2_target, abs=1e-14)
    assert profile.previous().tolist() == pytest.approx([0.0, e1], abs=1e-15)


def test_profile_refuses_random_orders_and_mismatched_predictors():
    oracle = OraclePredictor(table())
    with pytest.raises(ValueError, match="order=RandomOrder"):
        rollout_profile(oracle, oracle, 2, "random")
    other = OraclePredictor(TableTarget.from_dense(torch.ones(3, 3) / 9))
    with pytest.raises(ValueError, match="reference: expected vocab_size=2"):
        rollout_profile(oracle, other, 2)
    with pytest.raises(ValueError, match="law='model'"):
        rollout_profile(oracle, oracle, 2).entropy("model")


# -- Assumption 4.2 ------------------------------------------------------------------------


def brute_smallest(slack_of, high=50.0):
    # Bisection on a monotone feasibility predicate: independent of the closed form.
    if not slack_of(high):
        return math.inf
    if slack_of(0.0):
        return 0.0
    low = 0.0
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (low, mid) if slack_of(mid) else (mid, high)
    return high


steps = st.lists(
    st.tuples(st.floats(0.0, 2.0), st.floats(0.01, 2.0)), min_size=1, max_size=5
)


@given(steps, st.floats(0.0, 3.0), st.floats(0.0, 2.0))
def test_smallest_parameters_agree_with_bisection(pairs, x, y):
    e = [a for a, _ in pairs]
    h = [b for _, b in pairs]

    def feasible(alpha, lam, b):
        return bool((assumption_slack(e, h, alpha, lam, b) >= -1e-12).all())

    assert smallest_b(e, h, x, y) == pytest.approx(
        brute_smallest(lambda b: feasible(x, y, b)), abs=1e-9
    )
    assert smallest_alpha(e, h, y, x) == pytest.approx(
        brute_smallest(lambda a: feasible(a, y, x), 1e6), abs=1e-6
    )
    lam = smallest_lam(e, h, x, y)
    brute = brute_smallest(lambda v: feasible(x, v, y), 1e6)
    assert lam == pytest.approx(brute, abs=1e-6) or (math.isinf(lam) and brute > 1e5)


def test_eq11_forms_by_hand():
    h = [1.0, 2.0, 3.0]
    # recursion: 4·(0.5·1 + 0.1) + 2·(0.5·2 + 0.1) + (0.5·3 + 0.1) = 2.4 + 2.2 + 1.6
    assert eq11_bound(h, 0.5, 1.0, 0.1) == pytest.approx(6.2)
    # printed: 0.5·(4 + 4 + 3) + 0.3
    assert eq11_bound(h, 0.5, 1.0, 0.1, "printed") == pytest.approx(5.8)
    # intermediate: 0.5·(3·1 + 2·2 + 1·3) + 0.3
    assert eq11_bound(h, 0.5, 1.0, 0.1, "intermediate") == pytest.approx(5.3)
    assert eq11_weights(3, 2.0, "intermediate").tolist() == [7.0, 3.0, 1.0]


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
    st.floats(0, 2),
    st.floats(0, 1),
)
def test_the_recursion_bound_is_the_unrolled_sum(h, lam, b):
    # J = S_T with every step tight: S_t = (1 + λ) S_{t−1} + α H_t + b.
    s = 0.0
    for ht in h:
        s = (1 + lam) * s + 0.7 * ht + b
    assert eq11_bound(h, 0.7, lam, b) == pytest.approx(s, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: smallest_b([0.1], [0.1, 0.2], 1.0, 1.0),
            "entropies: expected the shape",
        ),
        (lambda: smallest_b([0.1], [0.1], -1.0, 1.0), "alpha=-1.0"),
        (lambda: eq11_bound([0.1], 1.0, 1.0, 0.0, "paper"), "form='paper'"),
        (lambda: eq11_weights(0, 1.0), "length=0"),
        (lambda: fit_assumption([0.1], [0.1, 0.2], [0.0]), "equal shapes"),
        (
            lambda: nonnegative_least_squares(torch.ones(3, 11), torch.ones(3)),
            "11 columns",
        ),
        (lambda: nonnegative_least_squares(torch.ones(3, 2), torch.ones(4)), "n = 4"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- least squares ------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-2, 2)),
        min_size=3,
        max_size=8,
    )
)
def test_nnls_meets_the_kkt_conditions(rows):
    A = torch.tensor([[a, b, 1.0] for a, b, _ in rows], dtype=torch.float64)
    y = torch.tensor([c for _, _, c in rows], dtype=torch.float64)
    c = nonnegative_least_squares(A, y)
    grad = A.T @ (A @ c - y)  # gradient of ½‖Ac − y‖²
    assert (c >= 0).all()
    assert (grad >= -1e-8).all()  # no descent direction into the feasible set
    assert (grad[c > 1e-10].abs() <= 1e-8).all()


def test_fit_recovers_exact_parameters_with_r2_one():
    h = torch.tensor([1.0, 0.5, 2.0, 0.1, 1.5], dtype=torch.float64)
    s = torch.tensor([0.0, 0.3, 0.9, 1.2, 2.0], dtype=torch.float64)
    e = 0.25 * h + 0.4 * s + 0.05
    fit = fit_assumption(e, h, s)
    assert (fit.alpha, fit.lam, fit.b) == (
        pytest.approx(0.25, abs=1e-12),
        pytest.approx(0.4, abs=1e-12),
        pytest.approx(0.05, abs=1e-12),
    )
    assert fit.r2 == pytest.approx(1.0, abs=1e-12) and fit.steps == 5


def test_fit_clips_a_negative_slope_to_zero():
    h = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    fit = fit_assumption(1.0 - 0.2 * h, h, torch.zeros(4, dtype=torch.float64))
    assert fit.alpha == 0.0 and fit.lam == 0.0
    assert fit.b == pytest.approx(0.7, abs=1e-12)


# -- decoder instances ----------------------------------------------------------------------


def test_reachable_steps_of_left_to_right_one_by_one():
    # Three positions, V = 2, every value possible: 1 + 2 + 4 states with a hole.
    p = torch.full((2, 2, 2), 1 / 8, dtype=torch.float64)
    steps = reachable_steps(DecoderSpec("l2r").build(), OraclePredictor(table(p)), 3)
    assert len(steps) == 7
    assert sorted({s.positions for s in steps}) == [(0,), (1,), (2,)]


def test_reachable_steps_refuses_what_it_cannot_enumerate():
    oracle = OraclePredictor(table())
    with pytest.raises(ValueError, match="deterministic order"):
        reachable_steps(DecoderSpec("random").build(), oracle, 2)
    with pytest.raises(ValueError, match="remask"):
        reachable_steps(DecoderSpec(remask_rounds=1).build(), oracle, 2)


def test_fixed_step_sets():
    inst = DecoderInstance(
        table(torch.full((2,) * 3, 1 / 8)), DecoderSpec((2, 0, 1), "fixed", 2)
    )
    assert fixed_step_sets(inst) == ((0, 2), (1,))
    adaptive = DecoderInstance(table(), DecoderSpec("entropy"))
    assert fixed_step_sets(adaptive) is None


@pytest.mark.parametrize(
    "target",
    [
        table(),
        TokenHMM(torch.ones(2) / 2, torch.eye(2), torch.eye(2), 2),
        BlockHMM(2, 0.9, (0.9, 0.1), block_size=2, length=4, eta=0.0),
    ],
    ids=["table", "token-hmm", "block-hmm"],
)
def test_instances_describe_themselves_in_json(target):
    inst = DecoderInstance(target, DecoderSpec("l2r"))
    json.dumps(inst.to_dict(), allow_nan=False)
    assert describe_target(target)["kind"] in ("table", "token-hmm", "block-hmm")
    assert inst.size()[:2] == (target.length, 2)


def test_rollout_instances_rebuild_from_their_description():
    inst = RolloutInstance(P2.log(), (1, 0), 0.7, 5, "keep", "target", 0.1, 0.2, 0.0)
    d = inst.to_dict()
    again = RolloutInstance(
        torch.tensor(d["probs"], dtype=torch.float64).log(),
        tuple(d["order"]),
        d["level"],
        d["noise_seed"],
        d["support"],
        d["law"],
        d["alpha"],
        d["lam"],
        d["b"],
    )
    assert again.rollout_kl() == inst.rollout_kl()
    assert inst.size() == (2, 2, 0, 1, 0, 4)


LOG_P2 = P2.log()


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: RolloutInstance(LOG_P2, "random"), ValueError, "deterministic order"),
        (lambda: RolloutInstance(LOG_P2, (0, 1, 2)), ValueError, "permutation of 0..1"),
        (
            lambda: RolloutInstance(LOG_P2, "l2r", law="model"),
            ValueError,
            "law='model'",
        ),
        (
            lambda: RolloutInstance(LOG_P2, "l2r", support="x"),
            ValueError,
            "support='x'",
        ),
        (lambda: RolloutInstance(LOG_P2, "l2r", -1.0), ValueError, "level=-1.0"),
        (lambda: RolloutInstance(LOG_P2, "l2r", b=-1.0), ValueError, "b=-1.0"),
        (
            lambda: RolloutInstance(torch.zeros(2, 3).log_softmax(-1), "l2r"),
            ValueError,
            "normalized|equal axes",
        ),
        (lambda: DecoderSpec("sideways"), ValueError, "order='sideways'"),
        (lambda: DecoderSpec(schedule="linear"), ValueError, "schedule='linear'"),
        (lambda: DecoderSpec(sampler="mcmc"), ValueError, "sampler='mcmc'"),
        (
            lambda: DecoderSpec(schedule="threshold", parameter=2.0),
            ValueError,
            "threshold=2.0",
        ),
        (lambda: DecoderSpec(remask_count=0), ValueError, "remask_count=0"),
        (
            lambda: DecoderSpec("graph").build(),
            ValueError,
            "graph order needs the target",
        ),
        (lambda: DecoderInstance(table(), "l2r"), TypeError, "expected a DecoderSpec"),
        (
            lambda: DecoderInstance(P2, DecoderSpec()),
            TypeError,
            "expected a pmdm Target",
        ),
        (
            lambda: DecoderInstance(
                TokenHMM(torch.ones(2) / 2, torch.eye(2), torch.eye(2), 13),
                DecoderSpec(),
            ),
            ValueError,
            "8192 sequences",
        ),
        (
            lambda: DecoderInstance(table(), DecoderSpec((0, 1, 2))),
            ValueError,
            "permutation",
        ),
    ],
)
def test_instances_validate_their_fields(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_every_value_of_a_remask_round_is_enumerated():
    # Sanity of the pieces the statements combine: the cache keys by changes.
    p = torch.zeros(2, 2, dtype=torch.float64)
    p[0, 0] = p[1, 1] = 0.5
    inst = DecoderInstance(
        table(p), DecoderSpec("l2r", "fixed", 2, remask_rounds=1, remask_count=2)
    )
    assert math.isinf(inst.reverse_kl()) and math.isinf(
        inst.reverse_kl(remask_rounds=0)
    )
    assert inst.forward_kl(remask_rounds=0) == pytest.approx(math.log(2), abs=1e-12)
    assert len(list(itertools.chain(inst._cache))) >= 2
