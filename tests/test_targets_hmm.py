"""The token-level HMM against brute force: latent paths and all sequences."""

import itertools
import math

import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.infer.mcmc.util import TraceEinsumEvaluator

from pmdm.models.base import Target
from pmdm.models.hmm import TokenHMM


def tables(K, V, seed, zeros=False):
    gen = torch.Generator().manual_seed(seed)
    init = torch.rand(K, generator=gen, dtype=torch.float64) + 0.1
    trans = torch.rand(K, K, generator=gen, dtype=torch.float64) + 0.1
    emit = torch.rand(K, V, generator=gen, dtype=torch.float64) + 0.1
    if zeros:
        init[0] = 0.0
        trans[0, 1] = trans[1, 0] = 0.0
        emit[:, 0] = 0.0
        emit[1, 1] = 0.0
        emit[0, 2 % V] = 1.0
    return (
        init / init.sum(),
        trans / trans.sum(-1, keepdim=True),
        emit / emit.sum(-1, keepdim=True),
    )


def brute_prob(x, init, trans, emit):
    """p(x) by summing over every latent path."""
    K = init.shape[0]
    total = 0.0
    for path in itertools.product(range(K), repeat=len(x)):
        w = init[path[0]].item()
        for t, z in enumerate(path):
            if t:
                w *= trans[path[t - 1], z].item()
            w *= emit[z, x[t]].item()
        total += w
    return total


CASES = [
    dict(K=2, V=2, T=4, seed=0, zeros=False),
    dict(K=3, V=3, T=4, seed=1, zeros=False),
    dict(K=3, V=3, T=3, seed=2, zeros=True),
    dict(K=1, V=2, T=5, seed=3, zeros=False),
]


def make(case):
    init, trans, emit = tables(case["K"], case["V"], case["seed"], case["zeros"])
    return TokenHMM(init, trans, emit, case["T"]), (init, trans, emit)


@pytest.mark.parametrize("case", CASES)
def test_log_prob_matches_brute_force_over_latent_paths(case):
    hmm, params = make(case)
    x = hmm.enumerate_sequences()
    expected = torch.tensor([brute_prob(r.tolist(), *params) for r in x])
    log_p = hmm.log_prob(x)
    assert not torch.isnan(log_p).any()
    assert torch.allclose(log_p.exp(), expected.double(), atol=1e-12)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    if case["zeros"]:
        # Token 0 is never emitted: every sequence holding it is impossible.
        assert torch.isneginf(log_p[(x == 0).any(-1)]).all()


@pytest.mark.parametrize("case", CASES)
def test_pyro_enumeration_agrees_with_brute_force(case):
    hmm, params = make(case)
    x = hmm.enumerate_sequences()
    for row in x[:: max(1, len(x) // 9)]:
        trace = poutine.trace(
            poutine.enum(hmm.model, first_available_dim=-2)
        ).get_trace(data=row.unsqueeze(0))
        pyro_log_p = TraceEinsumEvaluator(trace, True, 1).log_prob(trace)
        prob = brute_prob(row.tolist(), *params)
        expected = math.log(prob) if prob > 0 else -math.inf
        assert pyro_log_p.item() == pytest.approx(expected, abs=1e-10)


def test_trace_enum_elbo_of_the_model_is_minus_log_evidence():
    hmm, _ = make(CASES[1])
    x = hmm.sample(30)

    def empty_guide(data=None, num_sequences=None):
        pass

    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(hmm.model, empty_guide, data=x)
    assert loss == pytest.approx(-hmm.log_prob(x).sum().item(), rel=1e-10)


def brute_conditionals(x, revealed, hmm, params):
    """p(x_i = v | x_S) of one sequence by enumerating every sequence."""
    allx = hmm.enumerate_sequences()
    probs = torch.tensor([brute_prob(r.tolist(), *params) for r in allx])
    match = (allx == x)[:, revealed].all(-1)
    out = torch.zeros(hmm.length, hmm.vocab_size, dtype=torch.float64)
    for i in range(hmm.length):
        for v in range(hmm.vocab_size):
            out[i, v] = probs[match & (allx[:, i] == v)].sum()
    return out / out.sum(-1, keepdim=True)


@pytest.mark.parametrize("case", CASES[:3])
def test_conditionals_given_any_revealed_set_match_enumeration(case):
    hmm, params = make(case)
    gen = torch.Generator().manual_seed(5)
    x = hmm.sample(5)
    revealed = torch.rand(x.shape, generator=gen) < 0.5
    cond = hmm.conditionals(x, revealed)
    generic = Target.conditionals(hmm, x, revealed)
    for n in range(x.shape[0]):
        expected = brute_conditionals(x[n], revealed[n], hmm, params)
        hidden = ~revealed[n]
        assert torch.allclose(cond[n][hidden].exp(), expected[hidden], atol=1e-10)
        assert torch.allclose(generic[n][hidden].exp(), expected[hidden], atol=1e-10)
    one_hot = torch.nn.functional.one_hot(x, hmm.vocab_size).double()
    assert torch.equal(cond.exp()[revealed], one_hot[revealed])


def test_joint_of_hidden_positions_matches_enumeration():
    hmm, params = make(CASES[1])
    allx = hmm.enumerate_sequences()
    probs = torch.tensor([brute_prob(r.tolist(), *params) for r in allx])
    x = torch.tensor([2, 0, 1, 1])
    revealed = torch.tensor([False, True, False, False])
    joint = hmm.joint(x, revealed, [3, 0]).exp()
    expected = torch.zeros(3, 3, dtype=torch.float64)
    for a, b in itertools.product(range(3), repeat=2):
        hit = (allx[:, 1] == 0) & (allx[:, 3] == a) & (allx[:, 0] == b)
        expected[a, b] = probs[hit].sum()
    assert torch.allclose(joint, expected / expected.sum(), atol=1e-12)


def test_zero_tables_give_minus_infinity_and_uniform_rows_given_impossible_context():
    hmm, params = make(CASES[2])
    # Token 0 is never emitted: revealing it makes the context impossible.
    x = torch.tensor([[0, 1, 1], [2, 1, 2]])
    revealed = torch.tensor([[True, False, False], [True, False, True]])
    evidence = hmm.log_evidence(x, revealed)
    assert evidence[0].item() == -math.inf
    cond = hmm.conditionals(x, revealed)
    assert not torch.isnan(cond).any()
    assert torch.allclose(cond[0, 1:].exp(), torch.full((2, 3), 1 / 3).double())
    expected = brute_conditionals(x[1], revealed[1], hmm, params)
    assert torch.allclose(cond[1, 1].exp(), expected[1], atol=1e-12)


def test_sample_frequencies_match_log_prob():
    hmm, _ = make(CASES[0])
    n = 40_000
    x = hmm.sample(n)
    index = (x * torch.tensor([8, 4, 2, 1])).sum(-1)
    freq = torch.bincount(index, minlength=16).double() / n
    probs = hmm.log_prob(hmm.enumerate_sequences()).exp()
    assert ((freq - probs).abs() <= 5 * (probs * (1 - probs) / n).sqrt() + 1e-12).all()


def test_sample_never_draws_impossible_sequences():
    hmm, _ = make(CASES[2])
    assert torch.isfinite(hmm.log_prob(hmm.sample(2000))).all()


def test_visible_markov_chain_probability_by_hand():
    trans = torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64)
    init = torch.tensor([0.3, 0.7], dtype=torch.float64)
    chain = TokenHMM(init, trans, torch.eye(2), length=3)
    # p(1, 1, 0) = 0.7 * 0.8 * 0.2.
    assert chain.log_prob(torch.tensor([1, 1, 0])).exp().item() == pytest.approx(
        0.112, abs=1e-15
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(init=torch.tensor([0.5, 0.25])), ValueError, r"init=\[0.5, 0.25\]"),
        (dict(init=torch.ones(2, 2) / 2), ValueError, r"init: expected shape \(K,\)"),
        (dict(trans=torch.ones(2, 3) / 3), ValueError, r"trans: expected shape"),
        (dict(trans=-torch.eye(2)), ValueError, r"trans=.*expected entries in"),
        (dict(emit=torch.ones(3, 2) / 2), ValueError, r"emit: expected shape \(2, V\)"),
        (dict(emit=torch.tensor([[1.0, 0.1], [0.5, 0.5]])), ValueError, r"emit="),
        (dict(length=0), ValueError, r"length=0: expected an integer >= 1"),
        (dict(length=2.5), TypeError, r"length=2.5: expected an integer"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, error, match):
    args = dict(
        init=torch.ones(2) / 2,
        trans=torch.ones(2, 2) / 2,
        emit=torch.ones(2, 2) / 2,
        length=3,
    )
    args.update(kwargs)
    with pytest.raises(error, match=match):
        TokenHMM(**args)


def test_bad_calls_are_refused_by_name():
    hmm, _ = make(CASES[0])
    with pytest.raises(ValueError, match=r"num_sequences=-1"):
        hmm.sample(-1)
    with pytest.raises(ValueError, match=r"x: expected token ids in \[0, 2\)"):
        hmm.log_prob(torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, 4\)"):
        hmm.log_prob(torch.tensor([0, 1]))
