"""The Block-HMM against brute force: enumeration over latent paths and sequences."""

import itertools
import math

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.infer.mcmc.util import TraceEinsumEvaluator

from pmdm.models.base import Target
from pmdm.models.block_hmm import BlockHMM


def brute_block_prob(bits, z, hmm):
    """p(x_B | z) straight from the generative story (App. E of the paper)."""
    rho = hmm.rho[z].item()
    content = bits[1:]
    prob = math.prod(rho if b else 1 - rho for b in content)
    parity_ok = bits[0] == sum(content) % 2
    return prob * ((1 - hmm.eta) if parity_ok else hmm.eta)


def brute_prob(x, hmm):
    """p(x) by summing over every latent path."""
    K, M, B = hmm.num_states, hmm.num_blocks, hmm.block_size
    trans = hmm.log_trans.exp()
    total = 0.0
    for path in itertools.product(range(K), repeat=M):
        w = 1.0 / K
        for m, z in enumerate(path):
            if m:
                w *= trans[path[m - 1], z].item()
            w *= brute_block_prob(x[m * B : (m + 1) * B], z, hmm)
        total += w
    return total


SMALL = [
    dict(num_states=2, stay=0.9, rho=(0.9, 0.1), block_size=3, length=6, eta=0.05),
    dict(num_states=3, stay=0.6, rho=(0.8, 0.3, 0.5), block_size=2, length=6, eta=0.0),
    dict(num_states=1, stay=0.5, rho=(0.5,), block_size=4, length=8, eta=1e-8),
    dict(num_states=2, stay=0.0, rho=(1.0, 0.0), block_size=3, length=6, eta=1.0),
]


@pytest.mark.parametrize("params", SMALL)
def test_log_prob_matches_brute_force_over_latent_paths(params):
    hmm = BlockHMM(**params)
    x = hmm.enumerate_sequences()
    log_p = hmm.log_prob(x)
    expected = torch.tensor(
        [brute_prob(row.tolist(), hmm) for row in x], dtype=torch.float64
    )
    assert torch.allclose(log_p.exp(), expected, atol=1e-12)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    assert not torch.isnan(log_p).any()


@pytest.mark.parametrize("params", SMALL)
def test_pyro_enumeration_agrees_with_forward_algorithm(params):
    hmm = BlockHMM(**params)
    x = hmm.enumerate_sequences()
    for row in x[:: max(1, len(x) // 7)]:
        # Pyro sums out the enumerated latent chain for one sequence.
        trace = poutine.trace(
            poutine.enum(hmm.model, first_available_dim=-2)
        ).get_trace(data=row.unsqueeze(0))
        pyro_log_p = TraceEinsumEvaluator(trace, True, 1).log_prob(trace)
        prob = brute_prob(row.tolist(), hmm)
        expected = math.log(prob) if prob > 0 else -math.inf
        assert pyro_log_p.item() == pytest.approx(expected, abs=1e-10)
        assert hmm.log_prob(row).item() == pytest.approx(expected, abs=1e-10)


def test_trace_enum_elbo_of_the_model_is_minus_log_evidence():
    hmm = BlockHMM(num_states=2, block_size=4, length=12, eta=0.01)
    x = hmm.sample(50)

    def empty_guide(data=None, num_sequences=None):
        pass

    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(hmm.model, empty_guide, data=x)
    assert loss == pytest.approx(-hmm.log_prob(x).sum().item(), rel=1e-10)


def brute_conditionals(x, revealed, hmm):
    """p(x_i = v | x_S) for one sequence by enumerating every sequence."""
    allx = hmm.enumerate_sequences()
    probs = torch.tensor([brute_prob(r.tolist(), hmm) for r in allx])
    match = (allx == x)[:, revealed].all(-1)
    out = torch.zeros(hmm.length, 2, dtype=torch.float64)
    for i in range(hmm.length):
        for v in range(2):
            out[i, v] = probs[match & (allx[:, i] == v)].sum()
    return out / out.sum(-1, keepdim=True)


@pytest.mark.parametrize("params", SMALL[:3])
def test_conditionals_given_any_revealed_set_match_enumeration(params):
    hmm = BlockHMM(**params)
    gen = torch.Generator().manual_seed(7)
    x = hmm.sample(6)
    revealed = torch.rand(x.shape, generator=gen) < 0.5
    cond = hmm.conditionals(x, revealed)
    generic = Target.conditionals(hmm, x, revealed)
    for n in range(x.shape[0]):
        expected = brute_conditionals(x[n], revealed[n], hmm)
        hidden = ~revealed[n]
        assert torch.allclose(cond[n][hidden].exp(), expected[hidden], atol=1e-10)
        assert torch.allclose(generic[n][hidden].exp(), expected[hidden], atol=1e-10)
    # Revealed rows are one-hot on the revealed value.
    one_hot = torch.nn.functional.one_hot(x, 2).double()
    assert torch.equal(cond.exp()[revealed], one_hot[revealed])


def test_bit_marginals_and_block_tc_match_enumeration_of_block_configurations():
    hmm = BlockHMM(
        num_states=2, stay=0.8, rho=(0.7, 0.2), block_size=5, length=5, eta=0.03
    )
    log_pred = torch.tensor([0.3, 0.7], dtype=torch.float64).log()
    configs = list(itertools.product([0, 1], repeat=5))
    w = log_pred.exp()
    p = torch.tensor(
        [sum(w[z] * brute_block_prob(c, z, hmm) for z in range(2)) for c in configs]
    )
    marg = torch.stack(
        [sum(p[k] for k, c in enumerate(configs) if c[i]) for i in range(5)]
    )
    assert torch.allclose(hmm.bit_marginals(log_pred), marg, atol=1e-12)
    q = torch.tensor(
        [math.prod(marg[i] if c[i] else 1 - marg[i] for i in range(5)) for c in configs]
    )
    tc_fwd = (p * (p / q).log()).sum()
    tc_rev = (q * (q / p).log()).sum()
    # TC→ also equals Σ H(X_i) − H(X_B) (paper, Eq. 15).
    h_bits = -(marg * marg.log() + (1 - marg) * (1 - marg).log()).sum()
    assert tc_fwd.item() == pytest.approx((h_bits + (p * p.log()).sum()).item())
    fwd, rev = hmm.block_tc(log_pred)
    assert fwd.item() == pytest.approx(tc_fwd.item(), abs=1e-12)
    assert rev.item() == pytest.approx(tc_rev.item(), abs=1e-12)


def test_reverse_tc_is_infinite_under_a_hard_parity_constraint():
    hmm = BlockHMM(num_states=2, rho=(0.9, 0.1), block_size=4, length=4, eta=0.0)
    fwd, rev = hmm.block_tc(hmm.log_init)
    assert math.isfinite(fwd.item()) and fwd.item() > 0
    assert rev.item() == math.inf


def test_block_log_conditionals_sum_to_log_prob():
    hmm = BlockHMM(block_size=4, length=16, eta=1e-3)
    x = hmm.sample(20)
    assert torch.allclose(hmm.block_log_conditionals(x).sum(-1), hmm.log_prob(x))


def test_sample_frequencies_match_log_prob():
    hmm = BlockHMM(
        num_states=2, stay=0.7, rho=(0.8, 0.3), block_size=2, length=4, eta=0.1
    )
    n = 40_000
    x = hmm.sample(n)
    index = (x * torch.tensor([8, 4, 2, 1])).sum(-1)
    freq = torch.bincount(index, minlength=16).double() / n
    probs = hmm.log_prob(hmm.enumerate_sequences()).exp()
    assert ((freq - probs).abs() <= 5 * (probs * (1 - probs) / n).sqrt() + 1e-12).all()


def test_hard_parity_constraint_samples_are_coherent():
    hmm = BlockHMM(eta=0.0)
    pyro.set_rng_seed(1)
    x = hmm.sample(500)
    assert torch.isfinite(hmm.log_prob(x)).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(eta=-0.1), r"eta=-0.1: expected a value in \[0.0, 1.0\]"),
        (dict(eta=1.5), r"eta=1.5"),
        (dict(rho=(0.9, 1.2)), r"rho=\[0.9, 1.2\]: expected every rate in \[0, 1\]"),
        (dict(rho=(0.9,)), r"rho=\[0.9\]: expected 2 rates"),
        (
            dict(length=10, block_size=4),
            r"length=10: expected a multiple of block_size=4",
        ),
        (dict(num_states=0, rho=()), r"num_states=0: expected an integer >= 1"),
        (dict(stay=2.0), r"stay=2.0"),
        (dict(block_size=0), r"block_size=0"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlockHMM(**kwargs)


def test_bad_calls_are_refused_by_name():
    hmm = BlockHMM(block_size=4, length=8)
    with pytest.raises(ValueError, match=r"num_sequences=-3"):
        hmm.sample(-3)
    with pytest.raises(ValueError, match=r"x: expected token ids in \[0, 2\)"):
        hmm.log_prob(torch.full((1, 8), 2))
    with pytest.raises(ValueError, match=r"expected at most max_sequences"):
        BlockHMM().enumerate_sequences()
