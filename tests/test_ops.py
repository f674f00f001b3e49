import math

import pytest
import torch

from pmdm.ops.hmm import hmm_cavity, hmm_filter
from pmdm.ops.logspace import (
    entropy,
    kl_divergence,
    log_normalize,
    log_probs_from_probs,
    logsumexp,
    sample_categorical,
)
from pmdm.ops.validation import check_int, check_probs, check_real, check_tokens

INF = math.inf


def t(values):
    return torch.tensor(values, dtype=torch.float64)


def test_logsumexp_of_all_minus_inf_is_minus_inf():
    assert logsumexp(t([-INF, -INF])).item() == -INF
    assert logsumexp(t([-INF, 0.0])).item() == 0.0


def test_log_normalize_rows_and_uniform_fallback():
    out = log_normalize(t([[math.log(1), math.log(3)], [-INF, -INF]]))
    assert torch.allclose(out.exp(), t([[0.25, 0.75], [0.5, 0.5]]))
    assert not torch.isnan(out).any()


def test_entropy_by_hand():
    # H(1/2, 1/4, 1/4) = 1.5 bits; zero-probability outcomes contribute 0.
    probs = t([0.5, 0.25, 0.25, 0.0])
    assert entropy(probs.log()).item() == pytest.approx(1.5 * math.log(2), abs=1e-12)
    assert entropy(t([1.0, 0.0]).log()).item() == 0.0


def test_kl_conventions():
    p, q = t([0.5, 0.5, 0.0]), t([0.25, 0.5, 0.25])
    # 0.5 log 2 by hand; the outcome with p = 0 contributes nothing.
    assert kl_divergence(p.log(), q.log()).item() == pytest.approx(0.5 * math.log(2))
    # p > 0 = q makes the divergence infinite, never NaN.
    assert kl_divergence(q.log(), p.log()).item() == INF
    assert kl_divergence(p.log(), p.log()).item() == 0.0


def test_sample_categorical_frequencies_and_zeros():
    probs = t([0.2, 0.0, 0.5, 0.3])
    gen = torch.Generator().manual_seed(1)
    n = 40_000
    draws = sample_categorical(probs.log().expand(n, 4), gen)
    freq = torch.bincount(draws, minlength=4).double() / n
    stderr = (probs * (1 - probs) / n).sqrt()
    assert freq[1] == 0
    assert ((freq - probs).abs() <= 5 * stderr + 1e-12).all()


def test_sample_categorical_respects_tiny_probabilities_in_float64():
    log_probs = t([0.0, -700.0])  # exp(-700) is far below float32's range
    gen = torch.Generator().manual_seed(0)
    assert sample_categorical(log_probs.expand(1000, 2), gen).eq(0).all()


def test_hmm_filter_matches_brute_force():
    gen = torch.Generator().manual_seed(3)
    K, M = 3, 4
    init = torch.rand(K, generator=gen, dtype=torch.float64)
    init = init / init.sum()
    trans = torch.rand(K, K, generator=gen, dtype=torch.float64)
    trans = trans / trans.sum(-1, keepdim=True)
    like = torch.rand(M, K, generator=gen, dtype=torch.float64)
    total, last = 0.0, torch.zeros(K, dtype=torch.float64)
    for path in torch.cartesian_prod(*[torch.arange(K)] * M):
        w = init[path[0]] * like[0, path[0]]
        for m in range(1, M):
            w = w * trans[path[m - 1], path[m]] * like[m, path[m]]
        total += w.item()
        last[path[-1]] += w
    out = hmm_filter(init.log(), trans.log(), like.log())
    assert out.log_evidence.item() == pytest.approx(math.log(total), abs=1e-12)
    assert torch.allclose(out.log_filtered[-1].exp(), last / total)
    # The cavity of the last step is the predictive one.
    cavity = hmm_cavity(init.log(), trans.log(), like.log())
    assert torch.allclose(cavity[-1], out.log_predictive[-1])


def test_hmm_filter_impossible_evidence_gives_minus_inf_and_no_nan():
    init = t([0.5, 0.5]).log()
    trans = t([[0.9, 0.1], [0.1, 0.9]]).log()
    like = t([[0.0, 0.0], [0.3, 0.7]]).log()
    out = hmm_filter(init, trans, like)
    assert out.log_evidence.item() == -INF
    assert not torch.isnan(out.log_filtered).any()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: check_probs("trans", t([[0.5, 0.6]])), r"trans=.*summing to 1"),
        (lambda: check_probs("init", t([1.5, -0.5])), r"init=.*\[0, 1\]"),
        (lambda: check_probs("init", t([math.nan, 1.0])), r"init=.*finite"),
        (lambda: log_probs_from_probs(t([0.2, 0.2]), name="emit"), r"emit="),
        (lambda: check_int("num_sequences", -1, minimum=0), r"num_sequences=-1"),
        (lambda: check_real("eta", -0.1, low=0.0, high=1.0), r"eta=-0.1"),
        (lambda: check_real("eta", math.nan), r"eta=nan"),
        (
            lambda: check_tokens("x", torch.tensor([[0, 5]]), length=2, vocab_size=2),
            r"x: expected token ids in \[0, 2\)",
        ),
        (
            lambda: check_tokens(
                "x", torch.tensor([[0, 1, 1]]), length=2, vocab_size=2
            ),
            r"x: expected shape \(\*batch, 2\)",
        ),
    ],
)
def test_validation_messages_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_type_errors():
    with pytest.raises(TypeError, match=r"K=1.5: expected an integer"):
        check_int("K", 1.5)
    with pytest.raises(TypeError, match=r"x: expected integer token ids"):
        check_tokens("x", torch.zeros(1, 2), length=2, vocab_size=2)
