"""The arithmetic order study: smoke runs, Table 1 by hand, resume, the LLaDA path."""

from __future__ import annotations

import argparse
import json
import types

import pytest
import torch
from torch import nn

from pmdm.adapters.hf import HFPredictor
from pmdm.arithmetic import study as study_module
from pmdm.arithmetic.evaluate import evaluate_masked, logits_fn
from pmdm.arithmetic.mdm import load_mdm_adder
from pmdm.arithmetic.study import (
    ArithmeticStudy,
    LLaDAArithmeticStudy,
    add_arithmetic_parser,
    first_integer,
    run_arithmetic_study,
    run_llada_arithmetic_study,
    select_problems,
    table1,
)
from pmdm.arithmetic.tokenizer import MASK_ID


@pytest.fixture(scope="module")
def adder():
    return load_mdm_adder()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, adder):
    """All four orders at 11 steps and 1 step on 20 problems."""
    out = tmp_path_factory.mktemp("smoke")
    study = ArithmeticStudy(steps=(11, 1), n_problems=20)
    return out, study, run_arithmetic_study(study, out)


def _row(rows, order, column):
    (row,) = [r for r in rows if r["order"] == order and r["column"] == column]
    return row


# -- the study on the shipped adder ------------------------------------------------------


def test_smoke_run_writes_every_row_and_file(smoke):
    out, study, rows = smoke
    assert [(r["order"], r["column"]) for r in rows] == [
        (o, c) for o in study.orders for c in (11, 1)
    ]
    for name in ("results.json", "results.csv", "results.md", "results.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))
    saved = json.loads((out / "results.json").read_text())
    assert saved["settings"]["n_problems"] == 20 and saved["settings"]["path"] == "mdm"
    assert saved["model"].startswith("masked diffusion adder shipped")
    assert "Seed 0 fixes every number" in saved["note"]
    assert set(saved["versions"]) == {"pmdm", "torch"}
    text = (out / "results.md").read_text()
    assert "| order | 11 steps | 1 step |" in text and "Seed 0 fixes" in text
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("order,gen_length,steps,block_length,seed,n,")
    assert len(csv_lines) == 1 + len(rows)


def test_smoke_run_measures(smoke):
    _, _, rows = smoke
    for row in rows:
        steps = row["column"]
        assert row["overall"]["n"] == 20 and 0 <= row["overall"]["accuracy"] <= 1
        assert sum(a["n"] for a in row["by_category"].values()) == 20
        assert row["nfe"] == {"estimate": float(steps), "stderr": 0.0}
        assert row["tokens_per_step"]["estimate"] == pytest.approx(11 / steps)
        assert all(len(o) == 11 for o in row["outputs"])
        assert 0 <= row["entropy"]["estimate"] < 3
        assert len(row["entropy_by_step"]) == steps
        assert len(row["entropy_by_position"]) == 11
    assert _row(rows, "l2r", 11)["kendall_tau"]["estimate"] == 1.0
    assert _row(rows, "r2l", 11)["kendall_tau"]["estimate"] == -1.0
    assert _row(rows, "l2r", 1)["kendall_tau"]["estimate"] == 0.0


def test_one_step_is_the_arg_max_of_one_call_whatever_the_order(smoke, adder):
    # One step reveals all 11 positions from the all-masked answer: every order
    # writes the arg max of a single model call (the mask excluded).
    _, _, rows = smoke
    problems = select_problems(20)
    a = torch.tensor([p.a for p in problems])
    b = torch.tensor([p.b for p in problems])
    canvas = adder.layout.encode(a, b, with_answer=False)
    with torch.no_grad():
        logits = adder(canvas).logits
    logits[..., MASK_ID] = -torch.inf
    expected = adder.layout.answer_strings(
        torch.where(canvas == MASK_ID, logits.argmax(-1), canvas)
    )
    for order in ("l2r", "r2l", "random", "low_confidence"):
        assert _row(rows, order, 1)["outputs"] == expected


@pytest.mark.parametrize(
    ("order", "greedy_order"),
    [("l2r", "l2r"), ("r2l", "r2l"), ("low_confidence", "confidence")],
)
def test_one_token_per_step_matches_the_independent_greedy_decoder(
    tmp_path, adder, order, greedy_order
):
    # pmdm.arithmetic.evaluate.greedy_unmask is a separate implementation.
    study = ArithmeticStudy(orders=(order,), steps=(11,), n_problems=50)
    (row,) = run_arithmetic_study(study, tmp_path)
    problems = select_problems(50)
    result, outputs = evaluate_masked(
        logits_fn(adder), problems, adder.layout, order=greedy_order
    )
    assert row["outputs"] == outputs
    assert row["overall"]["n_correct"] == result.overall.n_correct


def test_a_model_in_memory_and_a_checkpoint_folder(tmp_path, adder):
    study = ArithmeticStudy(orders=("l2r",), steps=(3,), n_problems=5)
    (row,) = run_arithmetic_study(study, tmp_path / "a", model=adder)
    path = study_module.DEFAULT_CHECKPOINT
    (same,) = run_arithmetic_study(study, tmp_path / "b", model=path)
    assert row["outputs"] == same["outputs"]
    assert row["entropy_by_step"] == same["entropy_by_step"]
    settings = json.loads((tmp_path / "b" / "results.json").read_text())["settings"]
    assert settings["model"] == str(path) and len(settings["model_sha256"]) == 16
    # 3 steps over 11 positions: 4, 4, 3 tokens
    assert row["nfe"]["estimate"] == 3
    assert row["kendall_tau"]["estimate"] > 0.8


def test_resume_recomputes_only_missing_rows(tmp_path, monkeypatch):
    study = ArithmeticStudy(orders=("random", "l2r"), steps=(4, 2), n_problems=8)
    first = run_arithmetic_study(study, tmp_path)

    # Drop one row as if the run had stopped before it, then rerun
    path = tmp_path / "results.json"
    saved = json.loads(path.read_text())
    saved["rows"] = [
        r for r in saved["rows"] if (r["order"], r["column"]) != ("random", 2)
    ]
    path.write_text(json.dumps(saved))
    decoded = []
    real = study_module._decode

    def counting(predictor, prompts, layout, order, *args, **kwargs):
        decoded.append((order, layout[1]))
        return real(predictor, prompts, layout, order, *args, **kwargs)

    monkeypatch.setattr(study_module, "_decode", counting)
    again = run_arithmetic_study(study, tmp_path)
    assert decoded == [("random", 2)]
    for a, b in zip(first, again, strict=True):
        assert (a["order"], a["column"], a["outputs"]) == (
            b["order"],
            b["column"],
            b["outputs"],
        )
        assert a["entropy"] == b["entropy"]

    # Nothing left to do
    decoded.clear()
    run_arithmetic_study(study, tmp_path)
    assert decoded == []

    other = ArithmeticStudy(
        orders=("random", "l2r"), steps=(4, 2), n_problems=8, seed=1
    )
    with pytest.raises(ValueError, match=r"holds results of other settings"):
        run_arithmetic_study(other, tmp_path)
    rows = run_arithmetic_study(other, tmp_path, overwrite=True)
    assert {r["seed"] for r in rows} != {r["seed"] for r in first}


def test_random_order_is_fixed_by_the_seed(tmp_path):
    study = ArithmeticStudy(orders=("random",), steps=(11,), n_problems=10)
    (a,) = run_arithmetic_study(study, tmp_path / "a")
    (b,) = run_arithmetic_study(study, tmp_path / "b")
    assert a["entropy_by_position"] == b["entropy_by_position"]
    assert a["kendall_tau"] == b["kendall_tau"]


# -- Table 1 by hand -------------------------------------------------------------------


def _hand_row(order, column, n_correct, edge=None):
    by_category = {"easy": {"n": 10, "n_correct": 10}}
    if edge is not None:
        by_category["edge"] = {"n": edge[1], "n_correct": edge[0]}
    return {
        "order": order,
        "column": column,
        "overall": {"n": 1000, "n_correct": n_correct},
        "by_category": by_category,
    }


def test_table1_layout_by_hand():
    rows = [
        _hand_row("l2r", 16, 760, (45, 100)),
        _hand_row("l2r", 128, 840, (25, 40)),
        _hand_row("low_confidence", 16, 970, (95, 100)),
        _hand_row("random", 128, 5),
    ]
    text = table1(rows, ["l2r", "random", "low_confidence"], [16, 128], "gen_length")
    assert text == (
        "| order | 16 | 128 |\n"
        "|---|---|---|\n"
        "| left-to-right | 76.0 (45.0) | 84.0 (62.5) |\n"
        "| random | – | 0.5 (–) |\n"
        "| low-confidence | 97.0 (95.0) | – |\n"
    )
    steps = table1([_hand_row("r2l", 1, 1000, (1, 3))], ["r2l"], [1, 11])
    assert steps == (
        "| order | 1 step | 11 steps |\n"
        "|---|---|---|\n"
        "| right-to-left | 100.0 (33.3) | – |\n"
    )


# -- the LLaDA path, offline -----------------------------------------------------------

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)

WORDS = "what is + ? answer with the number only . user : assistant sum unknown"


def word_tokenizer():
    """A BERT word-piece tokenizer whose numbers split into digits, [MASK] last."""
    transformers = pytest.importorskip("transformers")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS.split()]
    vocab += [*"0123456789", *(f"##{d}" for d in "0123456789"), "[MASK]"]
    tokenizer = transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


class AnswerOracle(nn.Module):
    """Puts a fixed text right after each known prompt, whatever is revealed.

    ``answers`` maps a prompt's token ids to the ids it answers with; positions
    past the answer get the pad token. No position ever prefers the mask.
    """

    def __init__(self, answers: dict[tuple[int, ...], list[int]], vocab_size: int):
        super().__init__()
        self.answers = answers
        self.lengths = sorted({len(p) for p in answers})
        self.config = types.SimpleNamespace(
            vocab_size=vocab_size, mask_token_id=vocab_size - 1, pad_token_id=0
        )

    def forward(self, input_ids):
        n, length = input_ids.shape
        targets = torch.zeros(n, length, dtype=torch.long)  # pad everywhere
        for i, row in enumerate(input_ids.tolist()):
            (p,) = [p for p in self.lengths if tuple(row[:p]) in self.answers]
            answer = self.answers[tuple(row[:p])][: length - p]
            targets[i, :p] = torch.tensor(row[:p])
            targets[i, p : p + len(answer)] = torch.tensor(answer)
        logits = torch.nn.functional.one_hot(targets, self.config.vocab_size)
        return types.SimpleNamespace(logits=40.0 * logits.double())


def test_first_integer():
    assert first_integer("the answer is 4,294,967,296 .") == 4294967296
    assert first_integer("12.5") == 12 and first_integer("x1,2345") == 1
    assert first_integer("") is None
    with pytest.raises(TypeError, match=r"text must be a str, got text=3"):
        first_integer(3)


def test_llada_path_end_to_end_with_an_oracle_stand_in(tmp_path):
    tokenizer = word_tokenizer()
    study = LLaDAArithmeticStudy(gen_lengths=(16, 32), n_problems=30, batch_size=4)
    problems = select_problems(30)

    # Right on two problems in three, one too many on the rest, no number on id 0
    def answer(k, p):
        if k == 0:
            return "the answer is unknown ."
        return f"the sum is {p.sum if k % 3 else p.sum + 1} ."

    expected_correct = sum(k % 3 != 0 for k in range(30))
    answers = {}
    for k, p in enumerate(problems):
        message = study.prompt.format(a=p.a, b=p.b)
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": message}],
            add_generation_prompt=True,
            tokenize=False,
        )
        prompt = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        answers[tuple(prompt)] = tokenizer(answer(k, p), add_special_tokens=False)[
            "input_ids"
        ]
    assert max(map(len, answers.values())) <= 16
    assert len({len(p) for p in answers}) > 1  # batches of several prompt lengths
    predictor = HFPredictor(
        AnswerOracle(answers, tokenizer.vocab_size), tokenizer=tokenizer
    )
    rows = run_llada_arithmetic_study(study, predictor, tmp_path, model_name="oracle")

    assert len(rows) == 8
    for row in rows:
        assert row["overall"]["n_correct"] == expected_correct
        assert row["nfe"]["estimate"] == row["column"] == row["steps"]
        assert row["outputs"][0] == "the answer is unknown."
        assert row["predicted"][0] is None
        assert row["outputs"][1] == f"the sum is {problems[1].sum}."
        assert row["predicted"][3] == str(problems[3].sum + 1)
        assert row["entropy"]["estimate"] < 1e-12  # the oracle is sure
    text = (tmp_path / "results.md").read_text()
    assert "| order | 16 | 32 |" in text
    assert f"| left-to-right | {100 * expected_correct / 30:.1f} (" in text
    settings = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert settings["path"] == "llada" and settings["model"] == "oracle"


def test_llada_path_through_the_command_on_a_saved_tiny_bert(tmp_path, capsys):
    from pmdm.adapters.tiny import tiny_bert_mlm

    tokenizer = word_tokenizer()
    directory = tmp_path / "model"
    tiny_bert_mlm(seed=0, vocab_size=tokenizer.vocab_size).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    parser = argparse.ArgumentParser(prog="pmdm study")
    add_arithmetic_parser(parser.add_subparsers(dest="study"))
    out = tmp_path / "out"
    args = parser.parse_args(
        ["arithmetic", "--model", str(directory), "--llada", "--gen-lengths", "4", "8"]
        + ["--orders", "l2r", "random", "--block-length", "4", "--n-problems", "6"]
        + ["--dtype", "float32", "--out", str(out), "--no-progress"]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| order | 4 | 8 |" in printed and f"to {out}" in printed
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 4
    for row in rows:
        assert len(row["outputs"]) == 6 and row["block_length"] == 4
        assert row["nfe"]["estimate"] == row["steps"] == row["gen_length"]
        assert [first_integer(t) for t in row["outputs"]] == [
            None if v is None else int(v) for v in row["predicted"]
        ]


def test_llada_path_needs_a_tokenizer(tmp_path):
    model = AnswerOracle({(1,): [2]}, vocab_size=8)
    with pytest.raises(ValueError, match=r"predictor must carry a tokenizer"):
        run_llada_arithmetic_study(LLaDAArithmeticStudy(), HFPredictor(model), tmp_path)


# -- settings and the command ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"orders": ("l2r", "spiral")}, ValueError, r"orders\[\]=.*: expected one of"),
        ({"orders": ()}, ValueError, r"orders must name at least one order"),
        ({"orders": ("l2r", "l2r")}, ValueError, r"orders must not repeat"),
        ({"steps": ()}, ValueError, r"steps must hold at least one value"),
        ({"steps": (0,)}, ValueError, r"steps\[\]=0: expected an integer >= 1"),
        ({"steps": (2, 2)}, ValueError, r"steps must not repeat a value"),
        ({"seed": -1}, ValueError, r"seed=.*: expected an integer >= 0"),
        ({"batch_size": 0}, ValueError, r"batch_size=.*: expected an integer >= 1"),
        (
            {"n_problems": 1001},
            ValueError,
            r"n_problems=.*: expected an integer <= 1000",
        ),
        ({"block_length": 1.5}, TypeError, r"block_length=.*: expected an integer"),
    ],
)
def test_arithmetic_study_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        ArithmeticStudy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gen_lengths": (16, 0)}, r"gen_lengths\[\]=.*: expected an integer >= 1"),
        ({"prompt": "What is {a}?"}, r"prompt must be a str holding \{a\} and \{b\}"),
        ({"cfg_scale": -1.0}, r"cfg_scale must be a number >= 0, got cfg_scale=-1.0"),
        (
            {"gen_lengths": (48,), "block_length": 32},
            r"block_length must divide .* got block_length=32 for gen_length=48",
        ),
        (
            {"gen_lengths": (64,), "block_length": 16, "steps": 6},
            r"steps must be a multiple of the number of blocks, got steps=6",
        ),
    ],
)
def test_llada_study_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LLaDAArithmeticStudy(**kwargs)


def test_step_budgets_must_fit_the_answer_field(tmp_path):
    with pytest.raises(ValueError, match=r"block_length must divide the 11 answer"):
        run_arithmetic_study(ArithmeticStudy(block_length=4, n_problems=2), tmp_path)


def test_parser_defaults_and_the_llada_steps_rule(tmp_path):
    parser = argparse.ArgumentParser(prog="pmdm study")
    add_arithmetic_parser(parser.add_subparsers(dest="study"))
    args = parser.parse_args(["arithmetic"])
    assert args.model == "shipped" and not args.llada and args.steps is None
    assert args.orders == ["l2r", "random", "r2l", "low_confidence"]
    assert args.gen_lengths == [16, 32, 64, 128] and args.dtype == "bfloat16"
    args = parser.parse_args(["arithmetic", "--llada", "--steps", "8", "16"])
    with pytest.raises(SystemExit, match=r"with --llada give one step count"):
        args.func(args)
