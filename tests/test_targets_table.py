"""The explicit joint table, checked on values computed by hand."""

import itertools
import math

import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO

from pmdm.models.base import Target
from pmdm.models.table import TableTarget

A, B = 0, 1
HALF = math.log(0.5)


@pytest.fixture
def abab():
    """{ABAB, BABA} at 1/2 each."""
    rows = torch.tensor([[A, B, A, B], [B, A, B, A]])
    return TableTarget(2, rows, torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_log_prob_is_log_half_on_the_support_and_minus_infinity_elsewhere(abab):
    x = abab.enumerate_sequences()
    log_p = abab.log_prob(x)
    support = [[A, B, A, B], [B, A, B, A]]
    for row, value in zip(x.tolist(), log_p.tolist(), strict=True):
        assert value == (HALF if row in support else -math.inf)


@pytest.mark.parametrize(
    ("revealed", "expected"),
    [
        # Nothing revealed: every position is A or B with probability 1/2.
        ({}, [[0.5, 0.5]] * 4),
        # x_0 = A picks ABAB: the rest is fixed.
        ({0: A}, [[1, 0], [0, 1], [1, 0], [0, 1]]),
        # x_2 = B picks BABA.
        ({2: B}, [[0, 1], [1, 0], [0, 1], [1, 0]]),
        # x_1 = B and x_3 = B agree with ABAB.
        ({1: B, 3: B}, [[1, 0], [0, 1], [1, 0], [0, 1]]),
        # x_0 = A and x_1 = A is impossible: uniform rows.
        ({0: A, 1: A}, [[1, 0], [1, 0], [0.5, 0.5], [0.5, 0.5]]),
    ],
)
def test_conditionals_by_hand(abab, revealed, expected):
    x = torch.zeros(4, dtype=torch.long)
    mask = torch.zeros(4, dtype=torch.bool)
    for i, v in revealed.items():
        x[i], mask[i] = v, True
    expected = torch.tensor(expected, dtype=torch.float64)
    assert torch.equal(abab.conditionals(x, mask).exp(), expected)
    generic = Target.conditionals(abab, x, mask).exp()
    assert torch.allclose(generic, expected, atol=1e-15)


def test_conditionals_are_batched_over_rows_with_different_revealed_sets(abab):
    x = torch.tensor([[A, A, A, A], [A, A, B, A], [A, A, A, A]])
    mask = torch.tensor([[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]).bool()
    cond = abab.conditionals(x.view(3, 1, 4), mask.view(3, 1, 4)).exp()
    assert cond.shape == (3, 1, 4, 2)
    assert cond[0, 0, 1].tolist() == [0.0, 1.0]
    assert cond[1, 0, 0].tolist() == [0.0, 1.0]
    assert cond[2, 0, 3].tolist() == [0.5, 0.5]


def test_joint_of_two_positions_by_hand(abab):
    x = torch.zeros(4, dtype=torch.long)
    joint = abab.joint(x, torch.zeros(4, dtype=torch.bool), [0, 1]).exp()
    # (x_0, x_1) is AB or BA with probability 1/2 each.
    assert torch.equal(joint, torch.tensor([[0.0, 0.5], [0.5, 0.0]]).double())
    given = torch.tensor([False, False, True, False])
    x[2] = B
    assert torch.equal(
        abab.joint(x, given, [3, 1]).exp(),
        torch.tensor([[1.0, 0.0], [0.0, 0.0]]).double(),
    )


def test_from_dense_keeps_the_support_and_agrees_with_the_dense_table():
    gen = torch.Generator().manual_seed(0)
    dense = torch.rand(3, 3, 3, generator=gen, dtype=torch.float64)
    dense[0, 1, 2] = dense[2, 2, 2] = 0.0
    dense /= dense.sum()
    table = TableTarget.from_dense(dense)
    assert table.sequences.shape == (25, 3) and table.vocab_size == 3
    x = table.enumerate_sequences()
    assert torch.allclose(table.log_prob(x).exp(), dense.reshape(-1), atol=1e-15)
    # log p(x_1 = 0) from the dense table.
    revealed = torch.tensor([False, True, False])
    expected = dense[:, 0, :].sum().log().item()
    assert table.log_evidence(torch.zeros(3).long(), revealed).item() == pytest.approx(
        expected, abs=1e-14
    )


def test_sample_frequencies_match_probs():
    rows = torch.tensor(list(itertools.product(range(2), repeat=3)))
    probs = torch.tensor(
        [0.3, 0.0, 0.1, 0.05, 0.15, 0.2, 0.0, 0.2], dtype=torch.float64
    )
    table = TableTarget(2, rows, probs)
    n = 40_000
    x = table.sample(n)
    index = (x * torch.tensor([4, 2, 1])).sum(-1)
    freq = torch.bincount(index, minlength=8).double() / n
    assert ((freq - probs).abs() <= 5 * (probs * (1 - probs) / n).sqrt()).all()
    assert table.sample(0).shape == (0, 3)


def test_the_model_has_one_token_site_and_its_marginal_is_the_table(abab):
    x = torch.tensor([[A, B, A, B], [B, A, B, A], [A, A, A, A]])
    trace = poutine.trace(poutine.enum(abab.model, first_available_dim=-2)).get_trace(
        data=x
    )
    observed = [name for name, site in trace.nodes.items() if site.get("is_observed")]
    assert observed == ["x"] and trace.nodes["x"]["value"].shape == (3, 4)
    # Sum the enumerated row out by hand: (S, 1) x (S, N) -> (N,).
    row_log_p = trace.nodes["row"]["fn"].log_prob(trace.nodes["row"]["value"])
    x_log_p = trace.nodes["x"]["fn"].log_prob(x)
    log_p = torch.logsumexp(row_log_p + x_log_p, 0)
    assert log_p.tolist() == [HALF, HALF, -math.inf]
    assert abab.distribution().log_prob(x).tolist() == [HALF, HALF, -math.inf]
    sampled = poutine.trace(abab.model).get_trace(num_sequences=50).nodes["x"]
    assert sampled["value"].shape == (50, 4)
    assert torch.isfinite(abab.log_prob(sampled["value"])).all()


def test_trace_enum_elbo_of_the_model_is_minus_log_evidence(abab):
    def empty_guide(data=None, num_sequences=None):
        pass

    x = abab.sample(10)
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(abab.model, empty_guide, data=x)
    assert loss == pytest.approx(-10 * HALF, rel=1e-12)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, [[0]], [1.0]), ValueError, r"vocab_size=0: expected an integer >= 1"),
        ((2, [0, 1], [1.0]), ValueError, r"sequences: expected shape \(S, T\)"),
        (
            (2, [[0, 2]], [1.0]),
            ValueError,
            r"sequences: expected token ids in \[0, 2\)",
        ),
        ((2, [[0.0, 1.0]], [1.0]), TypeError, r"sequences: expected integer token ids"),
        ((2, [[0, 1], [1, 0]], [0.5, 0.25]), ValueError, r"probs=\[0.5, 0.25\]"),
        ((2, [[0, 1], [1, 0]], [1.0]), ValueError, r"probs: expected shape \(2,\)"),
        (
            (2, [[0, 1], [0, 1]], [0.5, 0.5]),
            ValueError,
            r"sequences: expected distinct rows, actual \[0, 1\] appears 2 times",
        ),
    ],
)
def test_bad_tables_are_refused_by_name(args, error, match):
    vocab_size, rows, probs = args
    with pytest.raises(error, match=match):
        TableTarget(vocab_size, torch.tensor(rows), torch.tensor(probs).double())


def test_bad_dense_tables_are_refused_by_name():
    with pytest.raises(ValueError, match=r"probs: expected shape \(V,\)\*T"):
        TableTarget.from_dense(torch.ones(2, 3) / 6)
    with pytest.raises(ValueError, match=r"probs=.*summing to 1"):
        TableTarget.from_dense(torch.ones(2, 2).double())
