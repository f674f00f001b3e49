"""Tests of the masked diffusion adder: loss, greedy unmasking, training, checkpoints."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch

from pmdm.arithmetic import mdm
from pmdm.arithmetic._training import sample_operands
from pmdm.arithmetic.evaluate import evaluate_masked, greedy_unmask, logits_fn
from pmdm.arithmetic.mdm import (
    DEFAULT_CHECKPOINT,
    MDMAdder,
    MDMAdderConfig,
    load_mdm_adder,
    masked_diffusion_loss,
    read_config,
    register_cli,
    save_mdm_adder,
    train_mdm_adder,
)
from pmdm.arithmetic.suite import load_suite
from pmdm.arithmetic.tokenizer import MASK_ID, VOCAB_SIZE, AdditionLayout

TINY = MDMAdderConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32)
FAST = {"batch_size": 8, "warmup_steps": 2, "checkpoint_every": 2}


def tiny_model(seed: int = 0, config: MDMAdderConfig = TINY) -> MDMAdder:
    torch.manual_seed(seed)
    return MDMAdder(config)


def oracle_fn(layout: AdditionLayout, confidence: torch.Tensor | None = None):
    """Logits that put the true token first at every position, from the prompt.

    ``confidence[j]`` is the margin of answer position ``j``, so that the decoding
    order of a confidence-ordered decoder is known in advance.
    """
    calls = []

    def fn(tokens):
        calls.append(tokens.clone())
        prompt = tokens[:, : layout.prompt_length]
        text_rows = [
            "".join("0123456789+=.?"[t] for t in row) for row in prompt.tolist()
        ]
        pairs = [row[:-1].split("+") for row in text_rows]
        a = torch.tensor([int(x.strip(".")) for x, _ in pairs])
        b = torch.tensor([int(y.strip(".")) for _, y in pairs])
        truth = layout.encode(a, b)
        margin = torch.ones(layout.length)
        if confidence is not None:
            margin[layout.answer_slice] = confidence
        return torch.nn.functional.one_hot(truth, VOCAB_SIZE).float() * margin[:, None]

    return fn, calls


def test_logits_shape_and_bidirectional_attention():
    model = tiny_model()
    ids = model.layout.encode([12, 5], [345, 9], with_answer=False)
    logits = model(ids).logits
    assert logits.shape == (2, 33, VOCAB_SIZE)

    # Changing the last token changes the logits of the first position
    changed = ids.clone()
    changed[:, -1] = 3
    assert not torch.allclose(model(changed).logits[:, 0], logits[:, 0])


def test_uniform_model_loss_is_log_vocabulary():
    # With zero logits every masked token costs log V; E[#masked / t] = A, so the
    # 1/t-weighted loss divided by A has expectation log V. N = 4096 problems, the
    # per-problem standard deviation is below 1 (about 0.75 log V), so 5 standard
    # errors are below 0.08 log V.
    model = tiny_model()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    tokens = model.layout.encode(torch.arange(4096), torch.arange(4096) * 7)
    generator = torch.Generator().manual_seed(0)
    loss = masked_diffusion_loss(model, tokens, generator)
    assert abs(loss.item() / math.log(VOCAB_SIZE) - 1) < 0.08


def test_loss_masks_only_the_answer():
    model = tiny_model()
    seen = []
    original = model.forward

    def spy(ids, **kwargs):
        seen.append(ids.clone())
        return original(ids, **kwargs)

    model.forward = spy
    tokens = model.layout.encode(torch.arange(64), torch.arange(64) + 10**9)
    masked_diffusion_loss(model, tokens, torch.Generator().manual_seed(1))
    noisy = seen[0]
    assert torch.equal(noisy[:, :22], tokens[:, :22])
    assert (noisy[:, 22:] == MASK_ID).any()
    unmasked = noisy[:, 22:] != MASK_ID
    assert torch.equal(noisy[:, 22:][unmasked], tokens[:, 22:][unmasked])


@pytest.mark.parametrize("order", ["confidence", "l2r", "r2l"])
@pytest.mark.parametrize("reverse_answer", [False, True])
def test_oracle_decodes_the_whole_suite(order, reverse_answer):
    layout = AdditionLayout(reverse_answer=reverse_answer)
    fn, calls = oracle_fn(layout)
    problems = load_suite()[::10]
    result, outputs = evaluate_masked(fn, problems, layout, order=order)
    assert result.overall.accuracy == 1.0
    assert len(calls) == 11  # one token per step, one batch of 100


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("l2r", list(range(11))),
        ("r2l", list(range(10, -1, -1))),
        ("confidence", [3, 7, 0, 10, 1, 9, 2, 8, 4, 6, 5]),
    ],
)
def test_greedy_unmask_order(order, expected):
    layout = AdditionLayout()
    # Margins chosen so that the confidence order is the expected list
    margin = torch.zeros(11)
    for rank, position in enumerate(expected):
        margin[position] = 20.0 - rank
    fn, calls = oracle_fn(layout, confidence=margin)
    tokens = layout.encode([123], [456], with_answer=False)
    decoded, nfe = greedy_unmask(fn, tokens, order=order)
    assert nfe == 11
    assert torch.equal(decoded, layout.encode([123], [456]))

    # Position revealed between consecutive calls
    revealed = [
        int(((before != MASK_ID) ^ (after != MASK_ID))[0, 22:].nonzero())
        for before, after in zip(calls, [*calls[1:], decoded], strict=True)
    ]
    assert revealed == expected


def test_train_save_load_round_trip(tmp_path):
    model, report = train_mdm_adder(
        tmp_path / "run", steps=4, seed=3, config=TINY, **FAST
    )
    assert report.steps_done == 4 and not report.stopped_early
    assert all(math.isfinite(row["loss"]) for row in report.history)

    loaded = load_mdm_adder(tmp_path / "run")
    ids = model.layout.encode([1, 99], [2, 9_999_999_999], with_answer=False)
    assert torch.equal(loaded(ids).logits, model(ids).logits)
    payload = read_config(tmp_path / "run")
    assert payload["model"] == TINY.to_dict()
    assert payload["training"]["seed"] == 3
    assert payload["report"]["steps_done"] == 4


def test_save_load_reversed_layout(tmp_path):
    config = MDMAdderConfig(
        d_model=8, n_layers=1, n_heads=1, d_ff=8, reverse_answer=True
    )
    model = tiny_model(1, config)
    save_mdm_adder(model, tmp_path, extra={"note": "x"})
    loaded = load_mdm_adder(tmp_path)
    assert loaded.layout.reverse_answer
    assert json.loads((tmp_path / "config.json").read_text())["note"] == "x"
    ids = model.layout.encode([5], [6], with_answer=False)
    assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_training_is_seeded_and_resumable(tmp_path, monkeypatch):
    straight, _ = train_mdm_adder(tmp_path / "a", steps=6, seed=0, config=TINY, **FAST)
    again, _ = train_mdm_adder(tmp_path / "b", steps=6, seed=0, config=TINY, **FAST)
    other, _ = train_mdm_adder(tmp_path / "c", steps=6, seed=1, config=TINY, **FAST)

    # Interrupt a run while it draws the data of step 5 (state saved at step 4)
    draws = []

    def interrupted(*args, **kwargs):
        if len(draws) == 4:
            raise KeyboardInterrupt
        draws.append(1)
        return sample_operands(*args, **kwargs)

    monkeypatch.setattr(mdm, "sample_operands", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_mdm_adder(tmp_path / "d", steps=6, seed=0, config=TINY, **FAST)
    assert torch.load(tmp_path / "d" / "train_state.pt", weights_only=True)["step"] == 4
    assert not (tmp_path / "d" / "model.pt").exists()

    # Resume in a process whose global RNG is elsewhere
    monkeypatch.setattr(mdm, "sample_operands", sample_operands)
    torch.manual_seed(123)
    resumed, report = train_mdm_adder(
        tmp_path / "d", steps=6, seed=0, config=TINY, **FAST
    )
    assert report.steps_done == 6
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name])
        assert torch.equal(tensor, resumed.state_dict()[name])
        assert torch.equal(tensor, load_mdm_adder(tmp_path / "d").state_dict()[name])
    assert not torch.equal(straight.head.weight, other.head.weight)


def test_finished_run_is_reloaded_not_retrained(tmp_path):
    first, _ = train_mdm_adder(tmp_path, steps=2, seed=0, config=TINY, **FAST)
    second, report = train_mdm_adder(tmp_path, steps=2, seed=0, config=TINY, **FAST)
    assert report.steps_done == 2
    assert torch.equal(first.head.weight, second.head.weight)


def test_time_budget_stops_and_saves(tmp_path):
    _, report = train_mdm_adder(
        tmp_path, steps=50, seed=0, config=TINY, minutes=1e-9, **FAST
    )
    assert report.stopped_early and report.steps_done < 50
    assert (tmp_path / "train_state.pt").exists()
    assert read_config(tmp_path)["report"]["stopped_early"]


def test_cli_trains_and_scores(tmp_path):
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["mdm-adder", "--out", str(tmp_path), "--steps", "2", "--batch-size", "4"]
        + ["--d-model", "8", "--layers", "1", "--heads", "1", "--d-ff", "8"]
        + ["--threads", str(torch.get_num_threads()), "--no-progress"]
    )
    assert args.func(args) == 0
    payload = read_config(tmp_path)
    assert payload["training"]["command"].split()[0] == "pmdm"
    accuracy = payload["suite_accuracy"]
    assert set(accuracy) == {"confidence", "l2r", "r2l"}
    assert accuracy["l2r"]["overall"]["n"] == 1000


def test_shipped_checkpoint_loads_and_is_small():
    size = sum(f.stat().st_size for f in DEFAULT_CHECKPOINT.iterdir())
    assert size < 5 * 2**20
    model = load_mdm_adder()
    payload = read_config()
    assert model.num_parameters() == payload["num_parameters"]
    ids = model.layout.encode([12], [345], with_answer=False)
    assert model(ids).logits.shape == (1, 33, VOCAB_SIZE)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: MDMAdderConfig(d_model=10, n_heads=4),
            ValueError,
            r"d_model must be a multiple of n_heads, got d_model=10 and n_heads=4",
        ),
        (
            lambda: MDMAdderConfig.from_dict({"d_model": 8, "width": 3}),
            ValueError,
            r"unknown MDMAdderConfig keys \['width'\]",
        ),
        (
            lambda: train_mdm_adder("unused", steps=0),
            ValueError,
            r"steps=0: expected an integer >= 1",
        ),
        (
            lambda: train_mdm_adder("unused", steps=1, batch_size=0),
            ValueError,
            r"batch_size=0: expected an integer >= 1",
        ),
        (
            lambda: train_mdm_adder("unused", steps=1, minutes=-1),
            ValueError,
            r"minutes=-1: expected a finite number > 0",
        ),
        (
            lambda: train_mdm_adder("unused", steps=1, lr=0),
            ValueError,
            r"lr=0: expected a finite number > 0",
        ),
        (
            lambda: train_mdm_adder("unused", steps=1, curriculum_start=11),
            ValueError,
            r"curriculum_start=11: expected an integer <= 10",
        ),
        (
            lambda: greedy_unmask(
                lambda x: x, torch.zeros(2, 3, dtype=torch.long), order="random"
            ),
            ValueError,
            r"order='random': expected one of 'confidence', 'l2r', 'r2l'",
        ),
        (
            lambda: load_mdm_adder("/nonexistent"),
            ValueError,
            r"path must be a folder holding",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_other_settings_in_run_folder_are_refused(tmp_path):
    train_mdm_adder(tmp_path, steps=2, seed=0, config=TINY, **FAST)
    with pytest.raises(ValueError, match=r"holds a run with other settings"):
        train_mdm_adder(tmp_path, steps=3, seed=0, config=TINY, **FAST)


def test_loading_another_kind_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"kind": "something.else"}))
    with pytest.raises(ValueError, match=r"holds a 'something.else' checkpoint"):
        load_mdm_adder(tmp_path)


def test_other_model_in_run_folder_is_refused(tmp_path):
    train_mdm_adder(tmp_path, steps=2, seed=0, config=TINY, **FAST)
    wider = MDMAdderConfig(d_model=32, n_layers=1, n_heads=2, d_ff=32)
    with pytest.raises(
        ValueError, match=r"holds a run with other settings .* or model"
    ):
        train_mdm_adder(tmp_path, steps=2, seed=0, config=wider, **FAST)


def test_hugging_face_style_adapter_wraps_the_model():
    hf = pytest.importorskip("pmdm.adapters.hf")
    model = tiny_model().eval()
    predictor = hf.HFPredictor(model)
    assert (predictor.vocab_size, predictor.mask_id) == (VOCAB_SIZE, MASK_ID)
    ids = model.layout.encode([12], [345], with_answer=False)
    log_probs = predictor(ids)
    assert log_probs.shape == (1, 33, VOCAB_SIZE)
    assert torch.isneginf(log_probs[..., MASK_ID]).all()
    # The mask (the last id) is left out of the normalization
    with torch.no_grad():
        expected = model(ids).logits.double()[..., :MASK_ID].log_softmax(-1)
    assert torch.allclose(log_probs[..., :MASK_ID], expected)


def test_shipped_checkpoint_reproduces_its_recorded_accuracy():
    # The easy category (100 problems), confidence order: recorded at training time
    model = load_mdm_adder()
    recorded = read_config()["suite_accuracy"]["confidence"]["by_category"]["easy"]
    result, _ = evaluate_masked(logits_fn(model), load_suite("easy"), model.layout)
    assert result.overall.n_correct == recorded["n_correct"]
