"""``pmdm generate`` end to end, offline, on tiny models saved to a temporary folder."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch

from pmdm.adapters import (
    HFPredictor,
    MaskArgmaxMDM,
    TinyMDM,
    TinyMDMConfig,
    generate,
    load_tiny_mdm,
    save_tiny_mdm,
    tiny_bert_mlm,
)
from pmdm.adapters.cli import main, register_cli

transformers = pytest.importorskip("transformers")

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)


def bert_tokenizer(vocab_size: int = 64):
    """A BERT tokenizer over a hand-written vocabulary, ``[MASK]`` last."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "user", ":"]
    words += ["assistant"] + [f"w{i}" for i in range(vocab_size - 10)] + ["[MASK]"]
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(words)})


@pytest.fixture
def bert_dir(tmp_path):
    """A tiny BERT masked LM and its tokenizer, written with save_pretrained."""
    directory = tmp_path / "bert"
    tiny_bert_mlm(seed=0).save_pretrained(directory)
    tokenizer = bert_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    return directory


def run(argv, capsys):
    code = main(["generate", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_on_a_saved_bert_prints_text_and_writes_the_trace(bert_dir, capsys):
    trace = bert_dir.parent / "out" / "trace.json"
    argv = ["--model", bert_dir, "--prompt", "hello world", "--gen-length", 6]
    argv += ["--steps", 6, "--block-length", 3, "--trace", trace, "--tc-samples", 8]
    code, out, err = run(argv, capsys)

    # The same run through the library, on the same files.
    predictor = HFPredictor.from_pretrained(bert_dir)
    prompt = predictor.encode("hello world")
    expected = generate(predictor, prompt, 6, 6, 3)
    text = predictor.decode(expected.generated[0])

    assert code == 0
    assert out == text + "\n"
    assert "decoding" in err and "6/6" in err  # the progress bar
    data = json.loads(trace.read_text())
    assert data["settings"]["order"] == "low_confidence"
    assert data["settings"]["mask_id"] == 63 and data["settings"]["seed"] == 0
    (row,) = data["sequences"]
    assert row["prompt"] == "hello world" and row["text"] == text
    assert row["prompt_ids"] == prompt.tolist()
    assert row["generated_ids"] == expected.generated[0].tolist()
    assert row["nfe"] == 6 and row["forward_passes"] == 6
    assert [s["revealed"] for s in row["step_measures"]] == [1] * 6
    assert [b["block"] for b in row["block_tc"]] == [0, 1]
    assert all(b["num_samples"] == 8 for b in row["block_tc"])
    assert not list(trace.parent.glob(".*.tmp"))  # written atomically


def test_generate_with_chat_random_order_temperature_and_guidance(bert_dir, capsys):
    argv = ["--model", bert_dir, "--prompt", "hello", "--chat", "--gen-length", 4]
    argv += ["--steps", 2, "--block-length", 4, "--order", "random"]
    argv += ["--temperature", 0.7, "--cfg", 1.0, "--seed", 3, "--no-progress"]
    code, out, err = run(argv, capsys)

    predictor = HFPredictor.from_pretrained(bert_dir)
    prompt = predictor.encode("hello", chat=True)
    assert prompt.tolist() == [6, 7, 4, 8, 7]  # "user : hello assistant :"
    expected = generate(
        predictor,
        prompt,
        4,
        2,
        4,
        order="random",
        temperature=0.7,
        cfg_scale=1.0,
        generator=torch.Generator().manual_seed(3),
    )
    assert code == 0 and err.count("decoding") == 0
    assert out == predictor.decode(expected.generated[0]) + "\n"


def test_several_prompts_of_different_lengths(bert_dir, capsys):
    argv = ["--model", bert_dir, "--prompt", "hello", "--prompt", "hello world"]
    argv += ["--prompt", "world", "--gen-length", 2, "--steps", 2, "--block-length", 2]
    code, out, _ = run([*argv, "--no-progress"], capsys)
    lines = out.splitlines()
    assert code == 0 and [line[:4] for line in lines] == ["[0] ", "[1] ", "[2] "]


def test_tiny_mdm_directory_without_tokenizer_takes_token_ids(tmp_path, capsys):
    model = MaskArgmaxMDM(TinyMDMConfig(vocab_size=12, mask_token_id=11, seed=4))
    save_tiny_mdm(model, tmp_path / "tiny")
    loaded = load_tiny_mdm(tmp_path / "tiny")
    assert type(loaded) is MaskArgmaxMDM and loaded.margin == model.margin
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a, b)

    argv = ["--model", tmp_path / "tiny", "--prompt", "1 2 3", "--gen-length", 4]
    argv += ["--steps", 4, "--block-length", 2, "--dtype", "float64", "--no-progress"]
    code, out, _ = run(argv, capsys)

    expected = generate(HFPredictor(model.double()), torch.tensor([1, 2, 3]), 4, 4, 2)
    ids = [int(t) for t in out.split()]
    assert code == 0 and ids == expected.generated[0].tolist()
    assert 11 not in ids  # the mask is every logit's argmax, and never decoded


def _hf_test_module():
    """tests/test_adapters_hf.py, for its LLaDA-like remote-code model source."""
    name = "_pmdm_test_adapters_hf"
    if name not in sys.modules:
        path = Path(__file__).with_name("test_adapters_hf.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_remote_code_model_needs_and_takes_trust_remote_code(
    tmp_path, monkeypatch, capsys
):
    # LLaDA's loading path: AutoModel with the model's own code, no tokenizer.
    hf = _hf_test_module()
    dynamic_module_utils = pytest.importorskip("transformers.dynamic_module_utils")
    monkeypatch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "m"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "configuration_tinyllada.py").write_text(hf.REMOTE_CONFIGURATION)
    (snapshot / "modeling_tinyllada.py").write_text(hf.REMOTE_MODELING)
    config = {
        "model_type": "tinyllada",
        "vocab_size": 16,
        "mask_token_id": 15,
        "hidden_size": 8,
        "eos_token_id": 14,
        "pad_token_id": 14,
        "auto_map": {
            "AutoConfig": "configuration_tinyllada.TinyLLaDAConfig",
            "AutoModel": "modeling_tinyllada.TinyLLaDAModelLM",
        },
    }
    (snapshot / "config.json").write_text(json.dumps(config))
    loaded = transformers.AutoConfig.from_pretrained(
        snapshot, trust_remote_code=True, local_files_only=True
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        transformers.AutoModel.from_config(
            loaded, trust_remote_code=True
        ).save_pretrained(snapshot)

    argv = ["--model", snapshot, "--prompt", "1 2", "--gen-length", 4, "--steps", 4]
    argv += ["--block-length", 4, "--no-progress"]
    code, out, err = run(argv, capsys)
    assert code == 1 and "trust_remote_code" in err and out == ""

    code, out, _ = run([*argv, "--trust-remote-code", "--dtype", "bfloat16"], capsys)
    ids = [int(t) for t in out.split()]
    assert code == 0 and len(ids) == 4 and 15 not in ids


def test_register_cli_adds_generate_to_a_parser():
    parser = argparse.ArgumentParser(prog="pmdm")
    sub = parser.add_subparsers(dest="command", required=True)
    register_cli(sub)
    args = parser.parse_args(["generate", "--model", "m", "--prompt", "p"])
    assert (args.gen_length, args.steps, args.block_length) == (128, 128, 32)
    assert (args.order, args.temperature, args.cfg, args.seed) == (
        "low_confidence",
        0.0,
        0.0,
        0,
    )
    assert args.func.__name__ == "run_generate"


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--order", "top_k"], r"order='top_k': expected 'low_confidence', 'random'"),
        (
            ["--block-length", "3"],
            r"block_length=3: expected a divisor of gen_length=8",
        ),
        (["--steps", "3"], r"steps=3: expected a multiple of the number of blocks 2"),
        (["--prompt", "a b"], r"--prompt='a b': the model has no tokenizer"),
        (["--chat"], r"--chat: the model has no tokenizer"),
    ],
)
def test_bad_settings_exit_2_with_the_message(tmp_path, capsys, extra, match):
    save_tiny_mdm(TinyMDM(TinyMDMConfig(vocab_size=12, mask_token_id=11)), tmp_path)
    argv = ["--model", tmp_path, "--gen-length", 8, "--block-length", 4, "--steps", 4]
    prompt = [] if "--prompt" in extra else ["--prompt", "1 2"]
    with pytest.raises(SystemExit) as exit_info:
        run([*argv, *prompt, *extra, "--no-progress"], capsys)
    assert exit_info.value.code == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--gen-length", "0"], r"--gen-length: expected an integer >= 1, got 0"),
        (["--temperature", "-1"], r"--temperature: expected a number >= 0"),
        (["--dtype", "int8"], r"--dtype: invalid choice"),
    ],
)
def test_argument_types_are_checked_by_argparse(capsys, argv, match):
    with pytest.raises(SystemExit):
        main(["generate", "--model", "m", "--prompt", "p", *argv])
    assert re.search(match, capsys.readouterr().err)


def test_a_missing_model_directory_is_an_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--model", str(tmp_path / "nope"), "--prompt", "x"])
    assert exit_info.value.code == 2
