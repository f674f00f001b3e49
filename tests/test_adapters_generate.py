"""generate(): the canvas, prompts, guidance, per-step measurements, order statistics,
NFE, the model's block TC, and argument errors.

Expected values are recomputed by hand from direct model calls, never read back from
the code under test.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from pmdm.adapters import (
    GenerateResult,
    HFPredictor,
    TinyMDM,
    TinyMDMConfig,
    block_total_correlation,
    chain_total_correlation,
    decoder_guide,
    generate,
    llada_decoder,
    resolve_order,
    step_measures,
)
from pmdm.adapters.tiny import TinyMDMOutput
from pmdm.decoding.orders import EntropyOrder, RandomOrder, SampledConfidence
from pmdm.studies.runner import atomic_write_json

V, MASK = 16, 15


def tiny(seed: int = 2, **kwargs) -> TinyMDM:
    return TinyMDM(TinyMDMConfig(vocab_size=V, mask_token_id=MASK, seed=seed, **kwargs))


@torch.no_grad()
def log_probs_of(model, state: torch.Tensor) -> torch.Tensor:
    """The model's log-probabilities on one canvas, mask excluded, (T, V) float64."""
    logits = model(state.unsqueeze(0)).logits[0].double()
    logits[:, MASK] = -math.inf
    return logits.log_softmax(-1)


class Constant(nn.Module):
    """Logits that ignore the input: positions are independent, so TC is 0."""

    def __init__(self, length: int):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.table = torch.randn(length, V, generator=generator)
        self.config = TinyMDMConfig(vocab_size=V, mask_token_id=MASK)

    def forward(self, input_ids):
        return TinyMDMOutput(
            self.table[: input_ids.shape[-1]].expand(*input_ids.shape, V)
        )


# llada_decoder and orders.


def test_llada_decoder_is_pmdm_order_schedule_and_sampler():
    low = llada_decoder(steps=8, block_length=4)
    rand = llada_decoder(steps=8, block_length=4, remasking="random", temperature=0.5)
    assert isinstance(low.order, SampledConfidence)
    assert isinstance(rand.order, RandomOrder)
    assert (low.schedule.steps, low.schedule.block_length) == (8, 4)
    assert low.sampler.name == rand.sampler.name == "factorized"
    assert (low.temperature, rand.temperature) == (0.0, 0.5)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("low_confidence", SampledConfidence),
        ("random", RandomOrder),
        ("entropy", EntropyOrder),
        ("sampled-confidence", SampledConfidence),
    ],
)
def test_resolve_order_takes_llada_and_pmdm_names(name, cls):
    assert isinstance(resolve_order(name), cls)


# What generate returns.


def test_prompt_is_kept_and_never_counted_as_a_hole():
    predictor = HFPredictor(tiny())
    prompt = torch.tensor([[5, 9, 3], [1, 1, 1]])
    out = generate(predictor, prompt, gen_length=6, steps=4, block_length=3)

    assert isinstance(out, GenerateResult)
    assert torch.equal(out.tokens[:, :3], prompt)
    assert out.generated.shape == (2, 6) and out.generated.ne(MASK).all()
    assert (out.trajectory.reveal_step[:, :3] == -1).all()
    assert (out.trajectory.reveal_step[:, 3:] >= 0).all()
    assert out.trajectory.entropy[:, :3].isnan().all()
    # Two blocks of 3 positions, 2 steps each: 2 then 1 revealed, 6 / 4 per step.
    assert out.per_step.revealed.tolist() == [[2, 1, 2, 1]] * 2
    assert out.tokens_per_step().tolist() == [1.5, 1.5]


@torch.no_grad()
def test_step_measures_are_those_of_the_predictions_at_each_step():
    model = tiny()
    predictor = HFPredictor(model)
    prompt = [5, 9, 3, 1]
    out = generate(
        predictor, torch.tensor(prompt), gen_length=8, steps=6, block_length=4
    )
    steps = out.trajectory.reveal_step[0]

    # Steps per block 3, 4 positions: the schedule reveals 2, 1, 1 in each block.
    assert out.per_step.revealed[0].tolist() == [2, 1, 1, 2, 1, 1]
    assert out.nfe.tolist() == [6] and out.forward_passes == 6
    for s in range(6):
        state = out.tokens[0].clone()
        state[steps >= s] = MASK
        log_probs = log_probs_of(model, state)
        here = (steps == s).nonzero().flatten()
        probs = log_probs[here].exp()
        entropy = -(probs * log_probs[here].clamp(min=-1e300)).sum(-1)
        confidence = probs.max(-1).values
        token_prob = probs.gather(-1, out.tokens[0, here].unsqueeze(-1)).squeeze(-1)
        for field, value in (
            ("entropy", entropy),
            ("confidence", confidence),
            ("token_prob", token_prob),
        ):
            got = float(getattr(out.per_step, field)[0, s])
            assert math.isclose(got, float(value.mean()), rel_tol=1e-9), (field, s)
        # Greedy low_confidence: the revealed token is the argmax.
        assert torch.equal(token_prob, confidence)


def test_order_statistics_and_nfe_with_skipped_steps():
    predictor = HFPredictor(tiny())
    # 16 steps for 2 blocks of 4: 8 steps per block, 4 of which would reveal nothing.
    out = generate(
        predictor,
        torch.tensor([1, 2]),
        gen_length=8,
        steps=16,
        block_length=4,
        order="l2r",
    )
    assert out.nfe.tolist() == [8] and out.forward_passes == 8
    assert out.tokens_per_step().tolist() == [1.0]
    assert out.kendall_tau().tolist() == [1.0]
    assert out.trajectory.reveal_step[0, 2:].tolist() == list(range(8))

    r2l = generate(
        predictor,
        torch.tensor([1, 2]),
        gen_length=8,
        steps=8,
        block_length=8,
        order="r2l",
    )
    assert r2l.kendall_tau().tolist() == [-1.0]


def test_guidance_runs_one_forward_pass_per_step_on_twice_the_rows():
    predictor = HFPredictor(tiny())
    out = generate(
        predictor,
        torch.tensor([[1, 2], [3, 4]]),
        gen_length=4,
        steps=4,
        block_length=2,
        cfg_scale=1.5,
    )
    assert out.forward_passes == 4 and predictor.sequences == 4 * 2 * 2
    assert out.nfe.tolist() == [4, 4]


def test_step_measures_match_a_hand_made_trajectory():
    from pmdm.decoding.decoder import Trajectory

    nan = math.nan
    trajectory = Trajectory(
        reveal_step=torch.tensor([[-1, 0, 1, 0], [-1, 1, 1, 0]]),
        steps=torch.tensor([2, 2]),
        nfe=torch.tensor([2, 2]),
        proposals=torch.zeros(2, dtype=torch.long),
        log_q_path=torch.zeros(2, dtype=torch.float64),
        entropy=torch.tensor([[nan, 1.0, 2.0, 3.0], [nan, 0.5, 1.5, 0.0]]),
        confidence=torch.tensor([[nan, 0.9, 0.5, 0.7], [nan, 0.2, 0.4, 1.0]]),
        token_prob=torch.tensor([[nan, 0.9, 0.1, 0.7], [nan, 0.2, 0.4, 1.0]]),
    )
    m = step_measures(trajectory)
    assert m.revealed.tolist() == [[2, 1], [1, 2]]
    torch.testing.assert_close(m.entropy, torch.tensor([[2.0, 2.0], [0.0, 1.0]]))
    torch.testing.assert_close(m.confidence, torch.tensor([[0.8, 0.5], [1.0, 0.3]]))
    torch.testing.assert_close(m.token_prob, torch.tensor([[0.8, 0.1], [1.0, 0.3]]))
    assert m.row(1) == [
        {
            "step": 0,
            "revealed": 1,
            "entropy": 0.0,
            "confidence": 1.0,
            "token_prob": 1.0,
        },
        {
            "step": 1,
            "revealed": 2,
            "entropy": 1.0,
            "confidence": pytest.approx(0.3),
            "token_prob": pytest.approx(0.3),
        },
    ]


# The model's own TC of a block given its context.


def test_block_tc_is_chain_tc_of_the_block_with_later_blocks_masked():
    predictor = HFPredictor(tiny())
    out = generate(
        predictor,
        torch.tensor([5, 9]),
        gen_length=6,
        steps=6,
        block_length=3,
        tc_samples=64,
        generator=torch.Generator().manual_seed(0),
    )
    assert len(out.block_tc) == 1 and len(out.block_tc[0]) == 2

    # Block 1 (positions 5-7) given the prompt and block 0, by hand.
    context = out.tokens[0].clone()
    context[5:] = MASK
    g = torch.Generator().manual_seed(3)
    direct = chain_total_correlation(
        predictor, context, [5, 6, 7], num_samples=64, generator=g
    )
    via = block_total_correlation(
        predictor,
        out.tokens[0],
        prompt_length=2,
        block_length=3,
        block=1,
        num_samples=64,
        generator=torch.Generator().manual_seed(3),
    )
    assert via.value == direct.value and via.stderr == direct.stderr
    for estimate in out.block_tc[0]:
        assert estimate.num_samples == 64 and estimate.nfe == 4
        assert estimate.value > -4 * estimate.stderr  # a KL, up to noise


def test_block_tc_is_zero_when_the_model_ignores_its_input():
    predictor = HFPredictor(Constant(length=8))
    out = generate(predictor, torch.tensor([1, 2]), 6, 6, 3, tc_samples=16)
    for estimate in out.block_tc[0]:
        assert estimate.value == pytest.approx(0.0, abs=1e-12)
        assert estimate.stderr == pytest.approx(0.0, abs=1e-12)


# Ragged prompts, progress, JSON.


def test_ragged_prompts_give_one_result_per_prompt_equal_to_each_alone():
    predictor = HFPredictor(tiny())
    prompts = [torch.tensor([1, 2, 3]), torch.tensor([4]), torch.tensor([5, 6, 7])]
    results = generate(predictor, prompts, gen_length=4, steps=4, block_length=2)

    assert [r.tokens.shape for r in results] == [(1, 7), (1, 5), (1, 7)]
    for prompt, result in zip(prompts, results, strict=True):
        alone = generate(predictor, prompt, gen_length=4, steps=4, block_length=2)
        assert torch.equal(result.tokens, alone.tokens)
        assert torch.equal(result.trajectory.reveal_step, alone.trajectory.reveal_step)
        assert result.per_step.revealed.tolist() == alone.per_step.revealed.tolist()
    # The two prompts of length 3 ran in one batch of 4 forward passes.
    assert results[0].forward_passes == 4 and predictor.nfe == 8 + 12


def test_progress_bar_counts_decoder_steps(capsys):
    predictor = HFPredictor(tiny())
    generate(
        predictor, [torch.tensor([1]), torch.tensor([2, 3])], 4, 8, 2, progress=True
    )
    err = capsys.readouterr().err
    # Two lengths run apart, each 2 blocks x min(4 steps, 2 positions) calls.
    assert "decoding" in err and "8/8" in err


def test_to_dict_is_strict_json(tmp_path):
    predictor = HFPredictor(tiny())
    out = generate(predictor, torch.tensor([1, 2]), 4, 2, 2, tc_samples=4)
    path = tmp_path / "trace.json"
    atomic_write_json(path, out.to_dict(0))
    row = json.loads(path.read_text())
    assert row["prompt_ids"] == [1, 2] and len(row["generated_ids"]) == 4
    assert row["reveal_step"][:2] == [-1, -1] and row["entropy"][:2] == ["nan", "nan"]
    assert [s["revealed"] for s in row["step_measures"]] == [2, 2]
    assert [b["block"] for b in row["block_tc"]] == [0, 1]
    # Reveal steps [0, 0, 1, 1]: 4 concordant pairs, 2 ties among 6, tau-b 4/sqrt(4*6).
    assert row["nfe"] == 2 and row["kendall_tau"] == pytest.approx(4 / math.sqrt(24))


# Errors.


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(gen_length=0), ValueError, r"gen_length=0: expected an integer >= 1"),
        (
            dict(block_length=3),
            ValueError,
            r"block_length=3: expected a divisor of gen_length=8",
        ),
        (
            dict(steps=3),
            ValueError,
            r"steps=3: expected a multiple of the number of blocks 2",
        ),
        (
            dict(order="top_k"),
            ValueError,
            r"order='top_k': expected 'low_confidence', 'random'",
        ),
        (
            dict(cfg_scale=-1.0),
            ValueError,
            r"cfg_scale=-1.0: expected a real number >= 0",
        ),
        (dict(tc_samples=1), ValueError, r"tc_samples=1: expected 0 .* or at least 2"),
        (dict(temperature=-0.5), ValueError, r"temperature=-0.5"),
        (
            dict(prompt_ids=torch.tensor([1, MASK])),
            ValueError,
            r"prompt: contains the mask id 15",
        ),
        (
            dict(prompt_ids=torch.ones(1, 1, 2, dtype=torch.long)),
            ValueError,
            r"expected shape \(P,\) or \(N, P\)",
        ),
        (
            dict(prompt_ids=torch.tensor([1.0])),
            TypeError,
            r"prompt_ids: expected integer token ids",
        ),
    ],
)
def test_generate_rejects_bad_settings(kwargs, error, match):
    arguments = dict(
        prompt_ids=torch.tensor([1, 2]), gen_length=8, steps=4, block_length=4
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        generate(HFPredictor(tiny()), **arguments)


def test_llada_decoder_and_block_tc_and_guide_errors():
    with pytest.raises(ValueError, match=r"remasking='top_k': expected one of"):
        llada_decoder(steps=4, remasking="top_k")
    predictor = HFPredictor(tiny())
    with pytest.raises(ValueError, match=r"block=2: expected a block in \[0, 2\)"):
        block_total_correlation(
            predictor,
            torch.tensor([1, 2, 3, 4]),
            prompt_length=2,
            block_length=1,
            block=2,
        )
    decoder = llada_decoder(steps=2)
    with pytest.raises(ValueError, match=r"expected the same masked positions"):
        decoder_guide(decoder, predictor, torch.tensor([[1, MASK], [MASK, 1]]))
    with pytest.raises(ValueError, match=r"expected at least one masked position"):
        decoder_guide(decoder, predictor, torch.tensor([1, 2]))
