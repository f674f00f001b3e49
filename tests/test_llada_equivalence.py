"""pmdm's decoders configured as LLaDA's sampler against the reference sampler.

``tests/llada_reference.py`` is written from the LLaDA paper and knows nothing of
pmdm; here :func:`pmdm.adapters.generate` (pmdm's order, schedule and factorized
sampler over :class:`HFPredictor`) must give the same tokens on tiny models, prompts
and settings, with the mask token suppressed on the reference side (pmdm's contract).
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from pathlib import Path

import pytest
import torch
from pyro import poutine

from pmdm.adapters import (
    HFPredictor,
    MaskArgmaxMDM,
    TinyMDM,
    TinyMDMConfig,
    decoder_guide,
    generate,
    llada_decoder,
    prompt_canvas,
    tiny_bert_mlm,
    tiny_llada,
    trace_decode,
)
from pmdm.decoding.decoder import Decoder
from pmdm.decoding.schedules import FixedSize

pytest.importorskip("transformers")


def _load_reference():
    """Import the helper module next to this file (pytest runs in importlib mode)."""
    name = "llada_reference"
    if name not in sys.modules:
        path = Path(__file__).with_name("llada_reference.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


llada_generate = _load_reference().llada_generate


def tiny(vocab_size=16, mask_id=15, seed=2, **kwargs) -> TinyMDM:
    config = TinyMDMConfig(
        vocab_size=vocab_size, mask_token_id=mask_id, seed=seed, **kwargs
    )
    return TinyMDM(config)


MODELS = {
    "tiny": lambda: tiny(),
    "tiny-mask0-2layers": lambda: tiny(mask_id=0, seed=3, num_layers=2),
    "llada-ids": lambda: tiny_llada(seed=1),
    "bert": lambda: tiny_bert_mlm(seed=0),
}

# (gen_length, steps, block_length, cfg_scale): steps equal to, below and above
# gen_length (above: steps that reveal nothing, skipped by pmdm), one and several
# blocks, with and without guidance.
SETTINGS = [
    (8, 8, 4, 0.0),
    (8, 4, 4, 0.0),
    (8, 16, 4, 0.0),
    (6, 3, 6, 1.5),
    (12, 6, 4, 0.5),
    (6, 6, 2, 0.0),
]
PROMPTS = [[5, 9, 3, 1], [2], [7, 7, 1, 4, 2, 6]]


def reference(model, predictor, prompt, settings, **kwargs):
    gen_length, steps, block_length, cfg_scale = settings
    return llada_generate(
        lambda x: model(x).logits,  # the raw logits, not pmdm's log-probabilities
        torch.tensor(prompt),
        gen_length,
        steps,
        block_length,
        cfg_scale=cfg_scale,
        mask_id=predictor.mask_id,
        suppress_mask_logit=True,
        **kwargs,
    )


def pmdm_generate(predictor, prompt, settings, **kwargs):
    gen_length, steps, block_length, cfg_scale = settings
    return generate(
        predictor,
        torch.tensor(prompt),
        gen_length,
        steps,
        block_length,
        cfg_scale=cfg_scale,
        **kwargs,
    )


def _cases():
    # Every setting on the small-vocabulary models; two on the 126464-wide one,
    # whose float64 work per step dominates the run time.
    for name in ("tiny", "tiny-mask0-2layers", "bert"):
        for k, settings in enumerate(SETTINGS):
            yield name, settings, PROMPTS[k % len(PROMPTS)]
    yield "llada-ids", (8, 4, 4, 0.0), PROMPTS[0]
    yield "llada-ids", (4, 4, 2, 0.5), PROMPTS[1]


@pytest.mark.parametrize(("name", "settings", "prompt"), list(_cases()))
def test_greedy_low_confidence_is_token_for_token_llada(name, settings, prompt):
    model = MODELS[name]()
    predictor = HFPredictor(model)

    expected = reference(model, predictor, prompt, settings)
    out = pmdm_generate(predictor, prompt, settings)

    assert out.tokens.shape == (1, len(prompt) + settings[0])
    assert out.tokens[0].tolist() == expected.tolist()
    assert out.tokens[0, : len(prompt)].tolist() == prompt


def test_a_batch_and_ragged_prompts_match_llada_prompt_by_prompt():
    model = MODELS["tiny"]()
    predictor = HFPredictor(model)
    settings = (8, 4, 4, 1.0)
    gen_length, steps, block_length, cfg_scale = settings

    # Equal lengths: one batch of shape (3, 4).
    batch = [[5, 9, 3, 1], [1, 2, 3, 4], [0, 0, 7, 7]]
    out = generate(
        predictor,
        torch.tensor(batch),
        gen_length,
        steps,
        block_length,
        "low_confidence",
    )
    for row, prompt in zip(out.tokens, batch, strict=True):
        assert (
            row.tolist()
            == reference(model, predictor, prompt, settings[:3] + (0.0,)).tolist()
        )

    # Different lengths: run apart, one result per prompt, in order.
    ragged = [torch.tensor(p) for p in PROMPTS]
    results = generate(predictor, ragged, *settings[:3], cfg_scale=cfg_scale)
    assert len(results) == len(PROMPTS)
    for result, prompt in zip(results, PROMPTS, strict=True):
        expected = reference(model, predictor, prompt, settings)
        assert result.tokens[0].tolist() == expected.tolist()


@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
@pytest.mark.parametrize("temperature", [0.7, 1.0])
@pytest.mark.parametrize("settings", [(8, 4, 4, 0.0), (6, 6, 3, 1.0)])
def test_sampling_matches_llada_draw_for_draw_with_one_generator(
    remasking, temperature, settings
):
    # With no skipped steps (steps per block <= block length) pmdm draws the same
    # float64 uniforms in the same order as the reference: first the Gumbel noise of
    # shape (1, L, V), then (random remasking) the order's uniforms of shape (1, L).
    # So the tokens agree draw for draw, not only in distribution.
    model = MODELS["tiny"]()
    predictor = HFPredictor(model)
    for seed in range(3):
        expected = reference(
            model,
            predictor,
            PROMPTS[0],
            settings,
            temperature=temperature,
            remasking=remasking,
            generator=torch.Generator().manual_seed(seed),
        )
        out = pmdm_generate(
            predictor,
            PROMPTS[0],
            settings,
            order=remasking,
            temperature=temperature,
            generator=torch.Generator().manual_seed(seed),
        )
        assert out.tokens[0].tolist() == expected.tolist()


@torch.no_grad()
def greedy_in_order(model, mask_id, prompt, gen_length, order):
    """Reveal the generated positions one at a time in ``order`` (0-based within the
    generated part), each with the argmax of the raw logits, mask excluded."""
    x = torch.tensor(prompt + [mask_id] * gen_length)
    for k in order:
        logits = model(x.unsqueeze(0)).logits[0, len(prompt) + k].double()
        logits[mask_id] = -math.inf
        x[len(prompt) + k] = int(logits.argmax())
    return tuple(x[len(prompt) :].tolist())


def test_greedy_random_remasking_has_llada_s_law():
    # At temperature 0 with random remasking the output depends only on the order,
    # a uniform permutation of the 3 generated positions (one per step). The law is
    # worked out by enumerating the 6 orders; pmdm and the reference are each
    # compared with it over N = 240 seeds (they consume different random numbers at
    # temperature 0, so only the laws can agree).
    model = MODELS["tiny-mask0-2layers"]()
    predictor = HFPredictor(model)
    prompt, settings, n = [4, 2], (3, 3, 3, 0.0), 240
    law: dict[tuple, float] = {}
    for order in itertools.permutations(range(3)):
        x = greedy_in_order(model, predictor.mask_id, prompt, 3, order)
        law[x] = law.get(x, 0.0) + 1 / 6
    assert len(law) > 1  # the order matters on this model

    def frequencies(run):
        counts: dict[tuple, int] = {}
        for seed in range(n):
            x = tuple(run(torch.Generator().manual_seed(seed))[len(prompt) :].tolist())
            counts[x] = counts.get(x, 0) + 1
        return counts

    sides = {
        "reference": frequencies(
            lambda g: reference(
                model, predictor, prompt, settings, remasking="random", generator=g
            )
        ),
        "pmdm": frequencies(
            lambda g: pmdm_generate(
                predictor, prompt, settings, order="random", generator=g
            ).tokens[0]
        ),
    }
    for side, counts in sides.items():
        assert set(counts) <= set(law), side
        for x, p in law.items():
            stderr = math.sqrt(p * (1 - p) / n)
            assert abs(counts.get(x, 0) / n - p) <= 5 * stderr, (side, x)


@pytest.mark.parametrize("cfg_scale", [0.0, 2.0])
def test_a_model_whose_argmax_is_the_mask_still_decodes_real_tokens(cfg_scale):
    model = MaskArgmaxMDM(TinyMDMConfig(vocab_size=12, mask_token_id=11, seed=1))
    predictor = HFPredictor(model)
    prompt, settings = [1, 2, 3], (8, 4, 4, cfg_scale)

    out = pmdm_generate(predictor, prompt, settings)

    assert out.generated.ne(11).all()
    assert (out.trajectory.reveal_step[0, 3:] >= 0).all()
    expected = reference(model, predictor, prompt, settings)
    assert out.tokens[0].tolist() == expected.tolist()
    # The published semantics (mask logit kept) would leave every hole a mask.
    published = llada_generate(
        lambda x: model(x).logits, torch.tensor(prompt), 8, 4, 4, mask_id=11
    )
    assert published[3:].eq(11).all()


# A decoder on the adapter is a Pyro guide.


@torch.no_grad()
def test_trace_of_llada_decoder_gives_tokens_and_log_q_of_the_path():
    model = MODELS["tiny"]()
    predictor = HFPredictor(model)
    prompt = [5, 9, 3, 1]
    canvas, _ = prompt_canvas(torch.tensor([prompt, [1, 2, 3, 4]]), 6, 15)
    decoder = llada_decoder(steps=4, block_length=3, temperature=1.0)

    trace = trace_decode(decoder, predictor, canvas, torch.Generator().manual_seed(0))
    out = trace.nodes["_RETURN"]["value"]

    sites = [n for n, site in trace.nodes.items() if site["type"] == "sample"]
    assert sites == ["sequences"] + [f"x_{i}" for i in range(4, 10)]  # plate first
    assert trace.nodes["sequences"]["value"].tolist() == [0, 1]
    for i in range(4, 10):
        assert trace.nodes[f"x_{i}"]["value"].tolist() == out.tokens[:, i].tolist()
    trace.compute_log_prob()
    torch.testing.assert_close(
        trace.nodes["x_4"]["log_prob"], out.trajectory.log_q_path, rtol=0, atol=1e-12
    )

    # The path's log q by hand: each generated token scored by the model's
    # prediction on the canvas as it stood at the token's reveal step.
    for row in range(2):
        steps = out.trajectory.reveal_step[row]
        expected = 0.0
        for s in range(int(steps.max()) + 1):
            state = out.tokens[row].clone()
            state[steps >= s] = 15
            logits = model(state.unsqueeze(0)).logits[0].double()
            logits[:, 15] = -math.inf
            log_probs = logits.log_softmax(-1)
            for i in (steps == s).nonzero().flatten().tolist():
                expected += float(log_probs[i, out.tokens[row, i]])
        assert math.isclose(
            float(out.trajectory.log_q_path[row]), expected, abs_tol=1e-9
        )
    assert math.isclose(
        float(trace.log_prob_sum()),
        float(out.trajectory.log_q_path.sum()),
        abs_tol=1e-9,
    )


@torch.no_grad()
def test_trace_of_a_replayable_decoder_scores_log_q_of_x():
    # Left to right, one token per step, temperature 1: the path is unique, and its
    # log q is the chain rule sum_i log p(x_i | prompt, x_<i), computed here by hand.
    model = MODELS["bert"]()
    predictor = HFPredictor(model)
    prompt, mask_id = [2, 10, 11], predictor.mask_id
    canvas, _ = prompt_canvas(torch.tensor(prompt), 4, mask_id)
    decoder = Decoder("l2r", FixedSize(1), "factorized", temperature=1.0)

    trace = trace_decode(decoder, predictor, canvas, torch.Generator().manual_seed(1))
    x = trace.nodes["_RETURN"]["value"].tokens

    expected = 0.0
    for i in range(3, 7):
        state = x[0].clone()
        state[i:] = mask_id
        logits = model(state.unsqueeze(0)).logits[0, i].double()
        logits[mask_id] = -math.inf
        expected += float(logits.log_softmax(-1)[x[0, i]])
    assert math.isclose(float(trace.log_prob_sum()), expected, abs_tol=1e-9)
    replayed = decoder.log_prob(predictor, x, tokens=canvas.unsqueeze(0))
    assert math.isclose(float(replayed), expected, abs_tol=1e-9)

    # The guide itself runs under any Pyro handler, e.g. a plain trace.
    guide = decoder_guide(decoder, predictor, canvas, torch.Generator().manual_seed(1))
    again = poutine.trace(guide).get_trace()
    assert again.nodes["_RETURN"]["value"].tokens.tolist() == x.tolist()
