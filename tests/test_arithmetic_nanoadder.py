"""Tests of NanoAdder: causal loss, greedy writing, training, checkpoints, the sweep."""

from __future__ import annotations

import argparse
import csv
import json
import math

import pytest
import torch

from pmdm.arithmetic import nanoadder
from pmdm.arithmetic._training import sample_operands
from pmdm.arithmetic.evaluate import evaluate_causal
from pmdm.arithmetic.nanoadder import (
    NANOADDER_SIZES,
    NANOADDER_VOCAB_SIZE,
    NanoAdder,
    NanoAdderConfig,
    causal_sum_loss,
    load_nanoadder,
    plot_sweep,
    register_cli,
    run_sweep,
    train_nanoadder,
)
from pmdm.arithmetic.suite import load_suite
from pmdm.arithmetic.tokenizer import AdditionLayout

TINY = NanoAdderConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32)
FAST = {"batch_size": 8, "warmup_steps": 2, "checkpoint_every": 2}


def tiny_model(seed: int = 0, order: str = "l2r") -> NanoAdder:
    torch.manual_seed(seed)
    return NanoAdder(
        NanoAdderConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, order=order)
    )


def test_logits_shape_and_causality():
    model = tiny_model()
    ids = model.layout.encode([12, 5], [345, 9])
    logits = model(ids).logits
    assert logits.shape == (2, 33, NANOADDER_VOCAB_SIZE)

    # Changing the last token leaves every earlier position's logits unchanged
    changed = ids.clone()
    changed[:, -1] = 3
    assert torch.allclose(model(changed).logits[:, :-1], logits[:, :-1], atol=1e-6)
    assert not torch.allclose(model(changed).logits[:, -1], logits[:, -1])


def test_loss_is_on_the_answer_only():
    # Uniform logits: every answer token costs log V, whatever the prompt
    model = tiny_model()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    tokens = model.layout.encode(torch.arange(5), torch.arange(5))
    assert math.isclose(
        causal_sum_loss(model, tokens).item(), math.log(13), rel_tol=1e-6
    )

    # Gradients reach the answer's predictions only: perturbing logits of prompt
    # positions before the '=' does not change the loss
    spy_inputs = []
    original = model.forward

    def spy(ids, **kwargs):
        spy_inputs.append(ids)
        out = original(ids, **kwargs)
        out.logits = out.logits.clone()
        out.logits[:, :21] = torch.randn_like(out.logits[:, :21])
        return out

    model.forward = spy
    assert math.isclose(
        causal_sum_loss(model, tokens).item(), math.log(13), rel_tol=1e-6
    )
    assert spy_inputs[0].shape == (5, 32)


@pytest.mark.parametrize("reverse_answer", [False, True])
def test_greedy_writing_with_an_oracle(reverse_answer):
    layout = AdditionLayout(reverse_answer=reverse_answer)
    problems = load_suite()[::25]
    truth = layout.encode([p.a for p in problems], [p.b for p in problems])
    rows = {tuple(row[:22].tolist()): row for row in truth}

    def oracle(tokens):
        # The next token of the true sequence, as one-hot logits at the last position
        full = torch.stack([rows[tuple(row[:22].tolist())] for row in tokens])
        logits = torch.zeros(*tokens.shape, NANOADDER_VOCAB_SIZE)
        logits[:, -1] = torch.nn.functional.one_hot(
            full[:, tokens.shape[1]], NANOADDER_VOCAB_SIZE
        ).float()
        return logits

    result, outputs = evaluate_causal(
        oracle, problems, layout, allowed=NANOADDER_VOCAB_SIZE
    )
    assert result.overall.accuracy == 1.0
    assert outputs[0] == layout.answer_text(problems[0].sum)


@pytest.mark.parametrize("order", ["l2r", "r2l"])
def test_train_save_load_round_trip(tmp_path, order):
    config = NanoAdderConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, order=order)
    model, report = train_nanoadder(tmp_path, config, steps=4, seed=0, **FAST)
    assert report.steps_done == 4
    assert all(math.isfinite(row["loss"]) for row in report.history)
    loaded = load_nanoadder(tmp_path)
    assert loaded.layout.reverse_answer == (order == "r2l")
    ids = model.layout.encode([1, 99], [2, 9_999_999_999])
    assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    straight, _ = train_nanoadder(tmp_path / "a", TINY, steps=6, seed=0, **FAST)

    # Interrupt while drawing the data of step 3 (state saved at step 2), resume
    draws = []

    def interrupted(*args, **kwargs):
        if len(draws) == 2:
            raise KeyboardInterrupt
        draws.append(1)
        return sample_operands(*args, **kwargs)

    monkeypatch.setattr(nanoadder, "sample_operands", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_nanoadder(tmp_path / "b", TINY, steps=6, seed=0, **FAST)
    monkeypatch.setattr(nanoadder, "sample_operands", sample_operands)
    resumed, _ = train_nanoadder(tmp_path / "b", TINY, steps=6, seed=0, **FAST)
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name])


def test_sizes_grow():
    counts = [
        NanoAdder(NanoAdderConfig(**NANOADDER_SIZES[s])).num_parameters()
        for s in "xs s m l".split()
    ]
    assert counts == sorted(counts) and len(set(counts)) == 4


def test_sweep_writes_rows_plot_and_skips_finished_runs(tmp_path, monkeypatch):
    problems = load_suite()[::50]
    kwargs = {"sizes": ["xs"], "steps": 2, "problems": problems, **FAST}
    rows = run_sweep(tmp_path, **kwargs)
    assert [(r["size"], r["order"]) for r in rows] == [("xs", "l2r"), ("xs", "r2l")]
    assert all(r["n"] == 20 and 0 <= r["accuracy"] <= 1 for r in rows)
    for run in ("xs-l2r", "xs-r2l"):
        run_dir = tmp_path / "runs" / run
        assert {"config.json", "model.pt", "result.json"} <= {
            f.name for f in run_dir.iterdir()
        }
    assert json.loads((tmp_path / "results.json").read_text()) == rows
    with open(tmp_path / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [row["order"] for row in table] == ["l2r", "r2l"]
    assert (tmp_path / "accuracy_vs_params.png").read_bytes()[:4] == b"\x89PNG"

    # A restart trains nothing: finished runs are read back
    def fail(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr(nanoadder, "train_nanoadder", fail)
    assert run_sweep(tmp_path, **kwargs) == rows

    # A restart with other settings is refused
    with pytest.raises(
        ValueError, match=r"holds a finished xs-l2r run with other settings"
    ):
        run_sweep(tmp_path, **{**kwargs, "steps": 3})


def test_sweep_cli(tmp_path):
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["nanoadder", "--out", str(tmp_path), "--sizes", "xs", "--orders", "r2l"]
        + ["--steps", "1", "--batch-size", "4", "--no-progress"]
        + ["--threads", str(torch.get_num_threads())]
    )
    assert args.func(args) == 0
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [(r["size"], r["order"], r["n"]) for r in rows] == [("xs", "r2l", 1000)]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: NanoAdderConfig(order="up"),
            ValueError,
            r"order='up': expected one of 'l2r', 'r2l'",
        ),
        (
            lambda: NanoAdderConfig(context=20),
            ValueError,
            r"context=20: expected an integer >= 33",
        ),
        (
            lambda: NanoAdderConfig(d_model=6, n_heads=4),
            ValueError,
            r"d_model must be a multiple of n_heads",
        ),
        (
            lambda: run_sweep("unused", sizes=["xxl"]),
            ValueError,
            r"sizes='xxl': expected one of .*",
        ),
        (
            lambda: run_sweep("unused", orders=["up"]),
            ValueError,
            r"orders='up': expected one of 'l2r', 'r2l'",
        ),
        (
            lambda: plot_sweep([], "unused.png"),
            ValueError,
            r"rows must hold at least one",
        ),
        (
            lambda: load_nanoadder("/nonexistent"),
            ValueError,
            r"path must be a folder holding config.json",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
