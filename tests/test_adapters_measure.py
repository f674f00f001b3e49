"""Measurements on a model: the chain TC estimator against exact enumeration, and
per-step entropy, confidence and margin."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from pmdm.adapters import (
    HFPredictor,
    TinyMDM,
    TinyMDMConfig,
    chain_total_correlation,
    confidence,
    entropy,
    margin,
    revealed_measures,
    token_log_prob,
)


class TablePredictor:
    """Exact conditionals of an explicit joint table, by enumeration.

    ``probs`` has shape ``(V,) * T``; the mask id is ``V`` (outside the vocabulary),
    as for pmdm's toy targets. For every row of ``tokens`` and every position ``i``
    it returns ``p(x_i | revealed positions)``.
    """

    def __init__(self, probs: torch.Tensor):
        self.length = probs.dim()
        self.vocab_size = probs.shape[0]
        self.mask_id = self.vocab_size
        self.probs = probs.reshape(-1)
        grid = itertools.product(range(self.vocab_size), repeat=self.length)
        self.configs = torch.tensor(list(grid))  # (V^T, T)
        self.nfe = 0

    def __call__(self, tokens):
        self.nfe += 1
        flat = tokens.reshape(-1, self.length)  # (n, T)
        agrees = (self.configs[None] == flat[:, None]) | (flat[:, None] == self.mask_id)
        weights = self.probs * agrees.all(-1)  # (n, V^T)
        one_hot = torch.nn.functional.one_hot(self.configs, self.vocab_size).double()
        marginals = torch.einsum("nc,ctv->ntv", weights, one_hot)
        log_probs = (marginals / marginals.sum(-1, keepdim=True)).log()
        return log_probs.reshape(*tokens.shape, self.vocab_size)


def exact_tc(probs: torch.Tensor, context: dict[int, int], block: list[int]) -> float:
    """Σ_i H(X_i | ctx) − H(X_B | ctx) from the table, by slicing and summing."""
    index = tuple(context.get(i, slice(None)) for i in range(probs.dim()))
    conditioned = probs[index]  # axes: the positions not in the context, in order
    free = [i for i in range(probs.dim()) if i not in context]
    others = tuple(k for k, i in enumerate(free) if i not in block)
    joint = conditioned.sum(others) if others else conditioned
    joint = joint / joint.sum()  # axes: the block positions in increasing order

    def h(p):
        p = p[p > 0]
        return float(-(p * p.log()).sum())

    axes = range(joint.dim())
    marginals = [joint.sum(tuple(a for a in axes if a != k)) for k in axes]
    return sum(h(m) for m in marginals) - h(joint.flatten())


def random_joint(shape, seed, zero_frac=0.2):
    generator = torch.Generator().manual_seed(seed)
    probs = torch.rand(shape, generator=generator, dtype=torch.float64) ** 3
    probs = probs * (torch.rand(shape, generator=generator) > zero_frac)
    return probs / probs.sum()


def encode(context: dict[int, int], length: int, mask_id: int) -> torch.Tensor:
    tokens = torch.full((length,), mask_id)
    for position, value in context.items():
        tokens[position] = value
    return tokens


@pytest.mark.parametrize(
    ("seed", "context", "block", "order"),
    [
        (0, {0: 1}, [1, 2], None),
        (1, {0: 1}, [1, 2], [2, 1]),
        (2, {2: 0}, [0, 1, 3], None),
        (3, {}, [0, 3], [3, 0]),
        (4, {1: 2, 3: 1}, [0, 2], None),
    ],
)
def test_chain_tc_matches_exact_tc_on_an_exact_predictor(seed, context, block, order):
    probs = random_joint((3, 3, 3, 3), seed)
    # The context must have positive probability.
    index = tuple(context.get(i, slice(None)) for i in range(4))
    assert probs[index].sum() > 0
    predictor = TablePredictor(probs)
    tokens = encode(context, 4, predictor.mask_id)
    n = 4000

    estimate = chain_total_correlation(
        predictor,
        tokens,
        block,
        num_samples=n,
        order=order,
        generator=torch.Generator().manual_seed(seed),
    )

    exact = exact_tc(probs, context, block)
    assert exact > 0.01  # a block with real dependence, not a trivial pass
    assert abs(estimate.value - exact) <= 4 * estimate.stderr
    assert estimate.num_samples == n and estimate.log_ratios.shape == (n,)
    assert estimate.samples.shape == (n, len(block))
    assert estimate.nfe == len(block) + 1 == predictor.nfe
    assert estimate.estimator == "monte_carlo"


def test_chain_tc_of_independent_positions_is_exactly_zero():
    generator = torch.Generator().manual_seed(7)
    marginals = [
        torch.rand(3, generator=generator, dtype=torch.float64) for _ in range(3)
    ]
    probs = torch.einsum("a,b,c->abc", *[m / m.sum() for m in marginals])
    predictor = TablePredictor(probs)

    estimate = chain_total_correlation(
        predictor, encode({}, 3, 3), [0, 1, 2], num_samples=64, generator=generator
    )

    torch.testing.assert_close(
        estimate.log_ratios, torch.zeros(64, dtype=torch.float64), atol=1e-12, rtol=0
    )


def test_chain_samples_follow_the_conditional_joint():
    probs = random_joint((3, 3, 3), seed=5, zero_frac=0.0)
    predictor = TablePredictor(probs)
    n = 6000
    estimate = chain_total_correlation(
        predictor,
        encode({0: 2}, 3, 3),
        [1, 2],
        num_samples=n,
        generator=torch.Generator().manual_seed(1),
    )
    counts = torch.zeros(3, 3, dtype=torch.float64)
    for a, b in estimate.samples.tolist():
        counts[a, b] += 1
    expected = probs[2] / probs[2].sum()
    stderr = (expected * (1 - expected) / n).sqrt()
    assert ((counts / n - expected).abs() <= 5 * stderr).all()


def test_chain_tc_on_a_tiny_model_chunks_and_seeds():
    model = TinyMDM(TinyMDMConfig(vocab_size=10, mask_token_id=9, seed=3))
    predictor = HFPredictor(model)
    context = torch.tensor([1, 2, 9, 9, 9, 3])

    def run(chunk_size, seed=0):
        return chain_total_correlation(
            predictor,
            context,
            [2, 3, 4],
            num_samples=50,
            chunk_size=chunk_size,
            generator=torch.Generator().manual_seed(seed),
        )

    whole, chunked = run(None), run(20)

    assert (whole.nfe, chunked.nfe) == (4, 1 + 3 * 3)
    assert predictor.nfe == whole.nfe + chunked.nfe
    assert math.isfinite(whole.value) and whole.stderr > 0
    assert whole.samples.ne(9).all()
    assert run(None).value == whole.value  # seeded


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(block=[]), ValueError, r"block=\[\]: expected at least one position"),
        (dict(block=[1, 1]), ValueError, r"block=\[1, 1\]: expected distinct"),
        (
            dict(block=[0, 4]),
            ValueError,
            r"block=\[0, 4\]: expected positions in \[0, 4\)",
        ),
        (dict(block=[0, -1]), ValueError, r"block\[1\]=-1: expected an integer >= 0"),
        (
            dict(block=[0, 1], order=[0, 2]),
            ValueError,
            r"order=\[0, 2\]: expected a permutation",
        ),
        (
            dict(block=[0], num_samples=1),
            ValueError,
            r"num_samples=1: expected an integer >= 2",
        ),
        (
            dict(block=[0], chunk_size=0),
            ValueError,
            r"chunk_size=0: expected an integer >= 1",
        ),
        (dict(block="01"), TypeError, r"block='01': expected a sequence of positions"),
    ],
)
def test_chain_tc_errors(kwargs, error, match):
    predictor = TablePredictor(random_joint((2, 2, 2, 2), seed=0))
    with pytest.raises(error, match=match):
        chain_total_correlation(predictor, torch.tensor([2, 2, 2, 2]), **kwargs)


def test_chain_tc_needs_a_single_context():
    predictor = TablePredictor(random_joint((2, 2), seed=0))
    with pytest.raises(
        ValueError, match=r"context: expected shape \(T,\), actual \(1, 2\)"
    ):
        chain_total_correlation(predictor, torch.tensor([[2, 2]]), [0])


# Per-step helpers, against values worked out by hand.


def test_entropy_confidence_margin_by_hand():
    probs = torch.tensor(
        [[0.5, 0.25, 0.25, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64
    )
    log_probs = probs.log()
    tokens = torch.tensor([1, 0])

    torch.testing.assert_close(
        entropy(log_probs), torch.tensor([1.5 * math.log(2), 0.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        confidence(log_probs, tokens), torch.tensor([0.25, 1.0]).double()
    )
    torch.testing.assert_close(
        token_log_prob(log_probs, tokens), torch.tensor([math.log(0.25), 0.0]).double()
    )
    torch.testing.assert_close(margin(log_probs), torch.tensor([0.25, 1.0]).double())


def test_revealed_measures_nan_outside_the_step():
    probs = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]], dtype=torch.float64)
    log_probs = probs.log().unsqueeze(0)  # (1, 3, 2)
    tokens = torch.tensor([[0, 1, 1]])
    revealed = torch.tensor([[False, True, True]])

    measures = revealed_measures(log_probs, tokens, revealed)

    assert torch.isnan(measures.entropy[0, 0]) and torch.isnan(
        measures.confidence[0, 0]
    )
    torch.testing.assert_close(
        measures.confidence[0, 1:], torch.tensor([0.1, 0.8]).double()
    )
    torch.testing.assert_close(
        measures.margin[0, 1:], torch.tensor([0.8, 0.6]).double()
    )
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    torch.testing.assert_close(float(measures.entropy[0, 1]), h)


def test_revealed_measures_shape_error():
    with pytest.raises(
        ValueError, match=r"log_probs, tokens, revealed: expected shapes"
    ):
        revealed_measures(
            torch.zeros(1, 3, 2), torch.zeros(1, 2).long(), torch.zeros(1, 2).bool()
        )
