"""The oracle and the noisy predictor: exact values by enumeration, determinism."""

import itertools
import math

import pytest
import torch

from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget
from pmdm.predictors.base import Predictor
from pmdm.predictors.noisy import LocalKL, NoisyPredictor
from pmdm.predictors.oracle import OraclePredictor

A, B, MASK = 0, 1, 2


def abab():
    rows = torch.tensor([[A, B, A, B], [B, A, B, A]])
    return TableTarget(2, rows, torch.tensor([0.5, 0.5], dtype=torch.float64))


def hmm():
    gen = torch.Generator().manual_seed(4)
    trans = torch.rand(2, 2, generator=gen, dtype=torch.float64) + 0.2
    emit = torch.rand(2, 3, generator=gen, dtype=torch.float64) + 0.2
    return TokenHMM(
        torch.tensor([0.4, 0.6], dtype=torch.float64),
        trans / trans.sum(-1, keepdim=True),
        emit / emit.sum(-1, keepdim=True),
        length=4,
    )


def brute_log_joint(target, tokens, positions, values):
    """log p(x_A = values_A | x_S) of one row by enumerating every sequence."""
    allx = target.enumerate_sequences()
    probs = target.log_prob(allx).exp()
    revealed = tokens != target.mask_id
    context = (allx == tokens)[:, revealed].all(-1)
    both = context & (allx == values)[:, positions].all(-1)
    return (probs[both].sum() / probs[context].sum()).log().item()


# -- the oracle ------------------------------------------------------------------


def test_the_oracle_satisfies_the_contract_and_counts_calls():
    oracle = OraclePredictor(abab())
    assert isinstance(oracle, Predictor)
    assert (oracle.vocab_size, oracle.mask_id, oracle.length) == (2, 2, 4)
    tokens = torch.tensor([[[A, MASK, MASK, MASK], [MASK, MASK, MASK, MASK]]])
    out = oracle(tokens)
    assert out.shape == (1, 2, 4, 2) and out.dtype == torch.float64
    assert out[0, 0].exp().tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]
    assert out[0, 1].exp().tolist() == [[0.5, 0.5]] * 4
    oracle(tokens[0, 0])
    assert oracle.nfe == 2


def test_oracle_conditionals_equal_the_targets():
    target = hmm()
    oracle = OraclePredictor(target)
    x = target.sample(6)
    revealed = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) < 0.5
    tokens = torch.where(revealed, x, target.mask_id)
    expected = target.conditionals(x, revealed)
    assert torch.equal(oracle(tokens), expected)


def test_log_joint_with_a_different_set_per_row_matches_enumeration():
    target = hmm()
    oracle = OraclePredictor(target)
    M = target.mask_id
    tokens = torch.tensor([[0, M, M, 2], [M, M, M, M], [M, 1, M, M], [1, 1, 1, 1]])
    positions = torch.tensor(
        [[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0]]
    ).bool()
    values = torch.tensor([[9, 2, 0, 9], [1, 9, 9, 0], [9, 9, 2, 9], [9, 9, 9, 9]])
    got = oracle.log_joint(tokens, positions, values)
    assert got.shape == (4,) and oracle.joint_calls == 1 and oracle.nfe == 0
    for n in range(3):
        pos = positions[n].nonzero().flatten()
        expected = brute_log_joint(target, tokens[n], pos, values[n])
        assert got[n].item() == pytest.approx(expected, abs=1e-12)
    assert got[3].item() == 0.0


def test_log_joint_by_hand_on_abab():
    oracle = OraclePredictor(abab())
    tokens = torch.tensor([[A, MASK, MASK, MASK], [MASK] * 4, [A, A, MASK, MASK]])
    positions = torch.tensor([[0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]]).bool()
    values = torch.tensor([[0, B, 0, B], [A, A, 0, 0], [0, 0, A, A]])
    got = oracle.log_joint(tokens, positions, values)
    # ABAB given x_0 = A: certain; AA.. has probability 0; an impossible context
    # gives the uniform 1/4 on two positions.
    assert got.tolist() == [0.0, -math.inf, pytest.approx(-2 * math.log(2))]


def test_joint_table_delegates_to_the_target():
    target = hmm()
    oracle = OraclePredictor(target)
    M = target.mask_id
    tokens = torch.tensor([[0, M, M, 2], [M, 1, M, 0]])
    table = oracle.joint_table(tokens, [2])
    assert table.shape == (2, 3) and oracle.joint_calls == 1
    x = torch.where(tokens == M, 0, tokens)
    assert torch.equal(table, target.joint(x, tokens != M, [2]))
    # By enumeration for the first row.
    for v in range(3):
        values = torch.tensor([0, 0, v, 0])
        expected = brute_log_joint(target, tokens[0], torch.tensor([2]), values)
        assert table[0, v].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("tokens", "error", "match"),
    [
        (torch.tensor([[0.0, 1.0, 0.0, 1.0]]), TypeError, r"tokens: expected integer"),
        (
            torch.tensor([[0, 1, 0]]),
            ValueError,
            r"tokens: expected shape \(\*batch, 4\)",
        ),
        (torch.tensor([[0, 1, 3, 0]]), ValueError, r"or the mask id 2, actual 3"),
        (torch.tensor([[0, -1, 0, 0]]), ValueError, r"tokens: expected token ids"),
        ([[0, 1, 0, 1]], TypeError, r"tokens: expected a torch.Tensor"),
        (torch.ones(1, 4).bool(), TypeError, r"actual dtype torch.bool"),
    ],
)
def test_bad_oracle_inputs_are_refused_by_name(tokens, error, match):
    with pytest.raises(error, match=match):
        OraclePredictor(abab())(tokens)


def test_bad_joint_queries_are_refused_by_name():
    oracle = OraclePredictor(abab())
    tokens = torch.tensor([[A, MASK, MASK, MASK]])
    with pytest.raises(ValueError, match=r"positions_mask: expected masked positions"):
        oracle.log_joint(tokens, torch.tensor([[1, 1, 0, 0]]).bool(), tokens)
    with pytest.raises(TypeError, match=r"positions_mask: expected a bool tensor"):
        oracle.log_joint(tokens, torch.tensor([[0, 1, 0, 0]]), tokens)
    with pytest.raises(ValueError, match=r"values: expected the shape of tokens"):
        oracle.log_joint(tokens, tokens == MASK, torch.zeros(4).long())
    with pytest.raises(ValueError, match=r"values: expected token ids in \[0, 2\)"):
        oracle.log_joint(tokens, tokens == MASK, torch.full((1, 4), 2))
    with pytest.raises(ValueError, match=r"positions=\[0\]: expected positions masked"):
        oracle.joint_table(tokens, [0])
    with pytest.raises(TypeError, match=r"target=3: expected a pmdm Target"):
        OraclePredictor(3)


# -- the noisy predictor --------------------------------------------------------


def contexts(target, n, seed):
    gen = torch.Generator().manual_seed(seed)
    x = target.sample(n)
    keep = torch.rand(x.shape, generator=gen) < 0.4
    return torch.where(keep, x, target.mask_id)


def test_level_zero_is_the_base_exactly():
    target = hmm()
    tokens = contexts(target, 20, 0)
    noisy = NoisyPredictor(OraclePredictor(target), level=0.0, support="full")
    assert torch.equal(
        noisy(tokens),
        target.conditionals(
            torch.where(tokens == target.mask_id, 0, tokens), tokens != target.mask_id
        ),
    )
    assert torch.equal(noisy.local_kl(tokens), torch.zeros(tokens.shape).double())


def test_same_context_same_answer_whatever_the_batch():
    target = hmm()
    tokens = contexts(target, 12, 1)
    noisy = NoisyPredictor(OraclePredictor(target), level=1.0, seed=3)
    full = noisy(tokens)
    # Alone, in reverse order, twice, and inside a 2-d batch.
    alone = torch.stack([noisy(row) for row in tokens])
    reverse = noisy(tokens.flip(0)).flip(0)
    grid = noisy(tokens.view(3, 4, 4)).reshape(12, 4, 3)
    for other in (alone, reverse, grid, noisy(tokens)):
        assert torch.allclose(other, full, atol=1e-12, rtol=0)
    # A fresh predictor with the same seed agrees; another seed does not.
    again = NoisyPredictor(OraclePredictor(target), level=1.0, seed=3)
    assert torch.allclose(again(tokens), full, atol=1e-12, rtol=0)
    other = NoisyPredictor(OraclePredictor(target), level=1.0, seed=4)
    assert not torch.allclose(other(tokens), full)
    # One count per call, whatever the batch.
    assert noisy.nfe == 12 + 1 + 1 + 1 + 1


def test_the_prediction_depends_on_the_whole_context():
    target = hmm()
    noisy = NoisyPredictor(OraclePredictor(target), level=1.0)
    M = target.mask_id
    # Same revealed token at position 0; position 3 differs.
    a = noisy(torch.tensor([0, M, M, 1]))
    b = noisy(torch.tensor([0, M, M, 2]))
    assert not torch.allclose(a[1], b[1])


def test_local_kl_grows_with_the_level():
    target = hmm()
    tokens = contexts(target, 30, 2)
    masked = tokens == target.mask_id
    previous = torch.zeros(tokens.shape, dtype=torch.float64)
    for level in (0.1, 0.3, 1.0, 3.0):
        noisy = NoisyPredictor(OraclePredictor(target), level=level)
        kl = noisy.local_kl(tokens)
        assert (kl[~masked] == 0).all() and (kl[masked] > 0).all()
        assert (kl >= previous).all()
        previous = kl


def test_local_kl_is_the_kl_of_the_returned_rows():
    target = hmm()
    tokens = contexts(target, 5, 3)
    noisy = NoisyPredictor(OraclePredictor(target), level=0.7)
    q, p = noisy(tokens).exp(), noisy.base(tokens).exp()
    expected = (q * (q / p).log()).sum(-1)
    masked = tokens == target.mask_id
    assert torch.allclose(noisy.local_kl(tokens)[masked], expected[masked], atol=1e-12)


def test_support_keep_keeps_zeros_and_full_lifts_them():
    oracle = OraclePredictor(abab())
    tokens = torch.tensor([[A, MASK, MASK, MASK], [MASK] * 4])
    keep = NoisyPredictor(oracle, level=2.0)(tokens).exp()
    assert keep[0, 1, A] == 0 and keep[0, 1, B] == 1
    assert 0 < keep[1, 0, A] < 1 and keep[1, 0, A] != 0.5
    full = NoisyPredictor(oracle, level=2.0, support="full")
    probs = full(tokens).exp()
    assert (probs > 0).all()
    assert torch.allclose(probs.sum(-1), torch.ones(2, 4).double())
    kl = full.local_kl(tokens)
    assert torch.isinf(kl[0, 1:]).all() and torch.isfinite(kl[1]).all()


def test_mean_local_kl_by_hand_from_local_kl():
    target = hmm()
    tokens = contexts(target, 40, 5)
    tokens[0] = torch.tensor([0, 1, 2, 0])  # nothing masked: skipped
    noisy = NoisyPredictor(OraclePredictor(target), level=0.5)
    kl = noisy.local_kl(tokens)
    counts = (tokens == target.mask_id).sum(-1)
    rows = [kl[n].sum().item() / counts[n].item() for n in range(40) if counts[n]]
    mean = sum(rows) / len(rows)
    var = sum((r - mean) ** 2 for r in rows) / (len(rows) - 1)
    result = noisy.mean_local_kl(tokens)
    assert isinstance(result, LocalKL) and result.num_contexts == len(rows)
    assert result.mean == pytest.approx(mean, abs=1e-12)
    assert result.stderr == pytest.approx(math.sqrt(var / len(rows)), abs=1e-12)


def test_mean_local_kl_is_infinite_with_zero_stderr_under_full_support():
    full = NoisyPredictor(OraclePredictor(abab()), level=0.1, support="full")
    result = full.mean_local_kl(torch.tensor([[A, MASK, MASK, MASK], [MASK] * 4]))
    assert result == LocalKL(math.inf, 0.0, 2)


def test_shapes_of_the_noise():
    noisy = NoisyPredictor(OraclePredictor(hmm()), level=1.0, rank=4)
    tokens = torch.full((2, 3, 4), 3)
    assert noisy(tokens).shape == (2, 3, 4, 3)
    assert noisy.noise(tokens).shape == (2, 3, 4, 3)
    assert noisy.local_kl(tokens).shape == (2, 3, 4)


def test_a_base_with_the_mask_inside_the_vocabulary_keeps_the_mask_at_zero():
    class Uniform:
        vocab_size, mask_id = 4, 3

        def __call__(self, tokens):
            log_probs = torch.full(tokens.shape + (4,), -math.log(3)).double()
            log_probs[..., 3] = -math.inf
            return log_probs

    noisy = NoisyPredictor(Uniform(), level=1.0, support="full")
    out = noisy(torch.tensor([[0, 3, 3, 2, 1]])).exp()
    assert (out[..., 3] == 0).all() and (out[..., :3] > 0).all()
    with pytest.raises(ValueError, match=r"or the mask id 3, actual 4"):
        noisy(torch.tensor([[4, 3]]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(level=-0.1), ValueError, r"level=-0.1: expected a value in \[0.0, inf\)"),
        (dict(level=math.inf), ValueError, r"level=inf"),
        (dict(level="big"), TypeError, r"level='big': expected a real number"),
        (dict(level=1.0, seed=-1), ValueError, r"seed=-1"),
        (dict(level=1.0, support="some"), ValueError, r"support='some': expected one"),
        (dict(level=1.0, rank=0), ValueError, r"rank=0"),
        (dict(base=3, level=1.0), TypeError, r"base=3: expected a Predictor"),
    ],
)
def test_bad_noisy_parameters_are_refused_by_name(kwargs, error, match):
    args = dict(base=OraclePredictor(abab()))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        NoisyPredictor(**args)


def test_bad_noisy_inputs_are_refused_by_name():
    noisy = NoisyPredictor(OraclePredictor(abab()), level=1.0)
    with pytest.raises(ValueError, match=r"tokens: expected shape \(\*batch, 4\)"):
        noisy(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"contexts: expected at least one row"):
        noisy.mean_local_kl(torch.tensor([[0, 1, 0, 1]]))


def test_every_row_of_the_table_is_a_context_in_the_vocabulary():
    # All 3^4 contexts of abab (masks included) give normalized rows.
    noisy = NoisyPredictor(OraclePredictor(abab()), level=0.8, support="full")
    tokens = torch.tensor(list(itertools.product(range(3), repeat=4)))
    out = noisy(tokens)
    assert torch.allclose(out.exp().sum(-1), torch.ones(81, 4).double())
