"""The reference LLaDA sampler of ``tests/llada_reference.py`` on fake models.

Every expected output here is worked out by hand from the fake model's logits.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from pmdm.adapters import HFPredictor, MaskArgmaxMDM, TinyMDM, TinyMDMConfig, tiny_llada


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


reference = _load_reference()
llada_generate = reference.llada_generate


class Recorder:
    """A model function that records every input it is called on."""

    def __init__(self, logits_fn):
        self.logits_fn = logits_fn
        self.inputs: list[torch.Tensor] = []

    def __call__(self, x):
        self.inputs.append(x.clone())
        return torch.stack([self.logits_fn(row) for row in x])


def reveal_order(
    recorder: Recorder, final: torch.Tensor, mask_id: int
) -> list[list[int]]:
    """Positions revealed by each call, from successive conditional inputs (row 0)."""
    states = [x[0] for x in recorder.inputs] + [final]
    return [
        ((before == mask_id) & (after != mask_id)).nonzero().flatten().tolist()
        for before, after in zip(states[:-1], states[1:], strict=True)
    ]


def preference_logits(target, weights, vocab_size):
    """Position ``i`` has logit ``weights[i]`` on ``target[i]`` and 0 elsewhere."""

    def logits_fn(row):
        logits = torch.zeros(row.shape[0], vocab_size, dtype=torch.float64)
        logits[torch.arange(row.shape[0]), target] = weights
        return logits

    return logits_fn


def test_schedule_splits_steps_evenly_with_the_remainder_first():
    schedule = reference.steps_per_block_schedule
    assert schedule(5, 2) == [3, 2]
    assert schedule(5, 3) == [2, 2, 1]
    assert schedule(6, 3) == [2, 2, 2]
    assert schedule(5, 7) == [1, 1, 1, 1, 1, 0, 0]


def test_low_confidence_reveals_most_confident_first_block_by_block():
    V, MASK = 8, 7
    target = torch.tensor([1, 2, 3, 4, 5, 6, 0, 1])
    weights = torch.tensor(
        [0.0, 0.0, 0.5, 2.0, 1.0, 3.0, 0.1, 1.5], dtype=torch.float64
    )
    model = Recorder(preference_logits(target, weights, V))

    out = llada_generate(
        model, torch.tensor([1, 2]), gen_length=6, steps=6, block_length=3, mask_id=MASK
    )

    assert out.tolist() == target.tolist()
    # Block one (positions 2-4) by weight, then block two (5-7) by weight.
    assert reveal_order(model, out, MASK) == [[3], [4], [2], [5], [7], [6]]


@pytest.mark.parametrize(
    ("steps", "per_call"),
    [
        (4, [3, 2, 3, 2]),
        (6, [2, 2, 1, 2, 2, 1]),
        (14, [1, 1, 1, 1, 1, 0, 0] * 2),
        (2, [5, 5]),
    ],
)
def test_tokens_revealed_per_call_follow_the_schedule(steps, per_call):
    V, MASK = 8, 7
    target = torch.arange(11) % 7
    weights = torch.linspace(1.0, 2.0, 11, dtype=torch.float64)
    model = Recorder(preference_logits(target, weights, V))

    out = llada_generate(
        model,
        torch.tensor([0]),
        gen_length=10,
        steps=steps,
        block_length=5,
        mask_id=MASK,
    )

    assert [len(r) for r in reveal_order(model, out, MASK)] == per_call
    assert len(model.inputs) == steps


def test_confidence_is_the_softmax_probability_not_the_logit():
    V, MASK = 4, 3
    # Both candidates have logit 3; position 2's runner-up is close, so its
    # probability is lower and position 3 goes first despite its higher index.
    rows = {
        2: torch.tensor([3.0, 2.9, 0.0, 0.0], dtype=torch.float64),
        3: torch.tensor([3.0, 0.0, 0.0, 0.0], dtype=torch.float64),
    }

    def logits_fn(row):
        return torch.stack(
            [rows.get(i, torch.zeros(V, dtype=torch.float64)) for i in range(4)]
        )

    model = Recorder(logits_fn)
    out = llada_generate(
        model, torch.tensor([0, 1]), gen_length=2, steps=2, block_length=2, mask_id=MASK
    )
    assert reveal_order(model, out, MASK) == [[3], [2]]
    assert out.tolist() == [0, 1, 0, 0]


def test_ties_go_to_the_lowest_position():
    V, MASK = 4, 3
    model = Recorder(lambda row: torch.zeros(row.shape[0], V, dtype=torch.float64))
    out = llada_generate(
        model, torch.tensor([1]), gen_length=4, steps=4, block_length=4, mask_id=MASK
    )
    assert reveal_order(model, out, MASK) == [[1], [2], [3], [4]]
    assert out.tolist() == [1, 0, 0, 0, 0]


def successor_logits(row, mask_id=9):
    """Position ``i`` wants ``x[i-1] + 1`` (logit 5) once ``i - 1`` is revealed, else 0
    (logit 1)."""
    logits = torch.zeros(row.shape[0], 10, dtype=torch.float64)
    for i in range(row.shape[0]):
        if i > 0 and row[i - 1] != mask_id:
            logits[i, (int(row[i - 1]) + 1) % 9] = 5.0
        else:
            logits[i, 0] = 1.0
    return logits


@pytest.mark.parametrize(
    ("steps", "expected"), [(4, [3, 4, 5, 6, 7]), (2, [3, 4, 0, 1, 0])]
)
def test_the_model_sees_the_updated_canvas_every_step(steps, expected):
    # steps=4: one per step, each next position becomes confident: 4, 5, 6, 7.
    # steps=2: step 1 reveals position 1 (-> 4) and, by the tie rule, position 2
    # (-> 0); step 2 reveals position 3 (-> 0 + 1) and position 4 (-> 0).
    model = Recorder(successor_logits)
    out = llada_generate(
        model, torch.tensor([3]), gen_length=4, steps=steps, block_length=4, mask_id=9
    )
    assert out.tolist() == expected


def guidance_logits(row, mask_id=3):
    """Conditional [1.0, 1.1, 0] when the prompt (position 0) is visible, else
    unconditional [0, 1.1, 0]; the mask column is 0."""
    c = torch.tensor([1.0, 1.1, 0.0, 0.0], dtype=torch.float64)
    u = torch.tensor([0.0, 1.1, 0.0, 0.0], dtype=torch.float64)
    return (u if row[0] == mask_id else c).expand(row.shape[0], 4)


@pytest.mark.parametrize(("cfg_scale", "expected", "rows"), [(0.0, 1, 1), (1.0, 0, 2)])
def test_guidance_combines_u_plus_s_plus_one_times_c_minus_u(cfg_scale, expected, rows):
    # s = 1: u + 2 (c - u) = [2.0, 1.1, 0], argmax 0; s = 0: c, argmax 1.
    model = Recorder(guidance_logits)
    out = llada_generate(
        model,
        torch.tensor([0]),
        gen_length=2,
        steps=2,
        block_length=2,
        cfg_scale=cfg_scale,
        mask_id=3,
    )
    assert out.tolist() == [0, expected, expected]
    assert [x.shape[0] for x in model.inputs] == [rows, rows]
    if rows == 2:
        conditional, unconditional = model.inputs[0]
        assert unconditional.tolist() == [3, 3, 3]
        assert conditional.tolist() == [0, 3, 3]


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_temperature_samples_the_tempered_softmax(temperature):
    # Input-independent logits and one step: the n candidates are independent draws.
    logits = torch.tensor([0.0, 1.0, 2.0, -math.inf], dtype=torch.float64)
    n = 4000
    out = llada_generate(
        lambda x: logits.expand(*x.shape, 4),
        torch.tensor([0]),
        gen_length=n,
        steps=1,
        block_length=n,
        temperature=temperature,
        mask_id=3,
        generator=torch.Generator().manual_seed(0),
    )
    frequencies = torch.bincount(out[1:], minlength=4).double() / n
    expected = torch.softmax(logits / temperature, dim=-1)
    stderr = (expected * (1 - expected) / n).sqrt()
    assert ((frequencies - expected).abs() <= 5 * stderr + 1e-12).all()


def test_random_remasking_keeps_tokens_and_draws_the_order_uniformly():
    V, MASK = 8, 7
    target = torch.tensor([0, 1, 2, 3, 4])
    weights = torch.tensor([0.0, 4.0, 1.0, 3.0, 2.0], dtype=torch.float64)
    firsts = []
    for seed in range(400):
        model = Recorder(preference_logits(target, weights, V))
        generator = torch.Generator().manual_seed(seed)
        out = llada_generate(
            model,
            torch.tensor([0]),
            gen_length=4,
            steps=4,
            block_length=4,
            remasking="random",
            mask_id=MASK,
            generator=generator,
        )
        assert out.tolist() == target.tolist()
        firsts.append(reveal_order(model, out, MASK)[0][0])
    frequencies = torch.bincount(torch.tensor(firsts), minlength=5)[1:].double() / 400
    stderr = math.sqrt(0.25 * 0.75 / 400)
    assert ((frequencies - 0.25).abs() <= 5 * stderr).all()


def test_seeded_runs_repeat():
    model = TinyMDM(TinyMDMConfig(vocab_size=12, mask_token_id=11, seed=5))

    def run(seed):
        return llada_generate(
            lambda x: model(x).logits,
            torch.tensor([1, 2, 3]),
            gen_length=6,
            steps=6,
            block_length=3,
            temperature=0.8,
            remasking="random",
            mask_id=11,
            generator=torch.Generator().manual_seed(seed),
            suppress_mask_logit=True,
        )

    assert torch.equal(run(0), run(0))
    assert any(not torch.equal(run(0), run(s)) for s in range(1, 6))


def test_published_semantics_let_the_mask_win_unless_suppressed():
    config = TinyMDMConfig(vocab_size=12, mask_token_id=11, seed=1)
    model = MaskArgmaxMDM(config)
    kwargs = dict(gen_length=4, steps=4, block_length=4, mask_id=11)
    prompt = torch.tensor([1, 2])

    published = llada_generate(lambda x: model(x).logits, prompt, **kwargs)
    suppressed = llada_generate(
        lambda x: model(x).logits, prompt, suppress_mask_logit=True, **kwargs
    )

    # Published: the mask is every position's argmax, so nothing is ever filled.
    assert published.tolist() == [1, 2, 11, 11, 11, 11]
    assert suppressed[2:].ne(11).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(gen_length=5, block_length=2, steps=4), "multiple of block_length"),
        (dict(gen_length=4, block_length=2, steps=3), "steps must be a multiple"),
        (
            dict(gen_length=4, block_length=4, steps=4, remasking="top_k"),
            "unknown remasking",
        ),
        (
            dict(gen_length=4, block_length=4, steps=4, prompt=torch.tensor([3])),
            "prompt",
        ),
    ],
)
def test_reference_rejects_bad_settings(kwargs, match):
    kwargs = {"prompt": torch.tensor([0]), **kwargs}
    with pytest.raises(ValueError, match=match):
        llada_generate(lambda x: torch.zeros(*x.shape, 4), mask_id=3, **kwargs)


@pytest.mark.parametrize(
    ("model", "settings"),
    [
        (
            TinyMDM(TinyMDMConfig(vocab_size=16, mask_token_id=15, seed=2)),
            dict(gen_length=8, steps=8, block_length=4),
        ),
        (
            TinyMDM(
                TinyMDMConfig(vocab_size=16, mask_token_id=0, seed=3, num_layers=2)
            ),
            dict(gen_length=6, steps=3, block_length=6, cfg_scale=1.5),
        ),
        (tiny_llada(seed=1), dict(gen_length=8, steps=4, block_length=4)),
        (
            tiny_llada(seed=2),
            dict(gen_length=4, steps=4, block_length=2, cfg_scale=0.5),
        ),
    ],
    ids=["tiny", "tiny-cfg", "llada-sized", "llada-sized-cfg"],
)
def test_on_tiny_models_log_probs_and_logits_agree(model, settings):
    # What pmdm's decoders will see (the adapter's log-probs, mask at -inf) and the
    # raw logits with the mask suppressed must give the same tokens: the reference
    # is invariant to per-position constants, which is what lets the lead compare
    # a decoder on HFPredictor with this function token for token.
    predictor = HFPredictor(model)
    mask_id = predictor.mask_id
    prompt = torch.tensor([5, 9, 3, 1])
    common = dict(mask_id=mask_id, suppress_mask_logit=True, **settings)

    from_logits = llada_generate(lambda x: model(x).logits, prompt, **common)
    from_log_probs = llada_generate(predictor, prompt, **common)

    assert torch.equal(from_logits, from_log_probs)
    assert torch.equal(from_logits[:4], prompt)
    assert from_logits.ne(mask_id).all()
