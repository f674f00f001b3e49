"""``run_checks``, its table, the ``check`` subcommand, and the instance builders."""

import argparse
import io
import json
import math
from contextlib import redirect_stdout

import pytest
import torch

from pmdm.metrics.information import (
    conditional_total_correlation,
    factorized_decoder_log_probs,
    joint_kl_divergence,
    total_correlation,
)
from pmdm.models.block_hmm import BlockHMM
from pmdm.theory import generators as g
from pmdm.theory.check import exit_code, format_table, register_cli, run_checks
from pmdm.theory.schedules import li_cai_bound, random_order_kl

QUICK = ["dtc-identity", "lemma-c1", "chen-cong-li-schedule-shifted"]


def test_run_checks_rows_are_json_and_reproducible():
    rows = run_checks(QUICK, examples=5, seed=3)
    assert [r["statement"] for r in rows] == QUICK
    keys = {"statement", "source", "kind", "verdict", "examples", "margin"}
    assert all(keys | {"counterexample"} <= set(r) for r in rows)
    assert all(r["examples"] == 5 for r in rows)
    text = json.dumps(rows, allow_nan=False)
    again = run_checks(QUICK, examples=5, seed=3)
    for a, b in zip(rows, again, strict=True):
        a.pop("seconds"), b.pop("seconds")
    assert json.loads(text)[0]["statement"] == "dtc-identity"
    assert rows == again


def test_run_checks_finds_the_shifted_indexing_false_and_the_rest_true():
    rows = {r["statement"]: r for r in run_checks(QUICK, examples=20)}
    assert rows["dtc-identity"]["verdict"] == "holds"
    assert rows["lemma-c1"]["verdict"] == "holds"
    shifted = rows["chen-cong-li-schedule-shifted"]
    assert shifted["verdict"] == "fails"
    assert shifted["counterexample"]["instance"]["sizes"][-1] == 1


def test_run_checks_validates_its_arguments():
    with pytest.raises(ValueError, match="name='nope'"):
        run_checks(["nope"])
    with pytest.raises(ValueError, match="examples=0"):
        run_checks(QUICK, examples=0)


def test_format_table_has_one_line_per_statement_and_the_counterexamples():
    rows = run_checks(QUICK, examples=5)
    lines = format_table(rows).splitlines()
    assert lines[0].split()[:4] == ["statement", "kind", "verdict", "examples"]
    assert sum(line.startswith("    counterexample:") for line in lines) == 1
    assert len(lines) == 1 + len(QUICK) + 1


def test_exit_code_ignores_failing_claimed_forms():
    row = {"verdict": "fails", "kind": "claimed-form"}
    assert exit_code([row]) == 0
    assert exit_code([row, {"verdict": "fails", "kind": "identity"}]) == 1


def parse(argv):
    parser = argparse.ArgumentParser(prog="pmdm")
    register_cli(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_the_check_subcommand_prints_json_or_a_table():
    args = parse(["check", "--statement", "dtc-identity", "--examples", "3"])
    args.no_progress = True
    out = io.StringIO()
    with redirect_stdout(out):
        assert args.func(args) == 0
    assert out.getvalue().splitlines()[1].startswith("dtc-identity")
    args = parse(
        [
            "check",
            "--statement",
            "lemma-c3",
            "--statement",
            "eb-sampler",
            "--format",
            "json",
            "--examples",
            "2",
            "--no-progress",
        ]
    )
    out = io.StringIO()
    with redirect_stdout(out):
        assert args.func(args) == 0
    assert [r["statement"] for r in json.loads(out.getvalue())] == [
        "lemma-c3",
        "eb-sampler",
    ]


def test_the_check_subcommand_rejects_unknown_statements(capsys):
    with pytest.raises(SystemExit):
        parse(["check", "--statement", "nope"])
    assert "invalid choice" in capsys.readouterr().err


# -- builders ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(num_states=2, stay=0.9, rho=(0.9, 0.1), block_size=4, length=4, eta=0.0),
        dict(
            num_states=3, stay=0.5, rho=(0.2, 0.5, 0.7), block_size=3, length=3, eta=0.1
        ),
        dict(num_states=2, stay=0.9, rho=(0.9, 0.1), block_size=6, length=6, eta=1e-8),
    ],
)
def test_block_table_matches_the_block_hmm(params):
    hmm = BlockHMM(**params)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        log_pred = g.random_latent_law(gen, hmm.num_states)
        log_p = g.block_table(hmm, log_pred)
        assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-12)
        fwd, rev = conditional_total_correlation(log_p, range(hmm.block_size))
        ref_fwd, ref_rev = hmm.block_tc(log_pred)
        assert fwd.item() == pytest.approx(ref_fwd.item(), abs=1e-9)
        if math.isinf(ref_rev.item()):
            assert rev.item() == math.inf
        else:
            assert rev.item() == pytest.approx(ref_rev.item(), rel=1e-9, abs=1e-9)
    # With one block, the whole table is the block under the uniform start.
    whole = g.block_hmm_table(hmm)
    assert torch.allclose(whole, g.block_table(hmm, hmm.log_init), atol=1e-12)


def test_conditionally_independent_joint_has_independent_blocks():
    gen = torch.Generator().manual_seed(1)
    blocks = ((0, 2), (1, 3))
    log_p = g.conditionally_independent_joint(gen, (2, 2, 2, 2), blocks, 0.3)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    assert total_correlation(log_p, [0, 2]).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("style", g.STYLES)
def test_random_joint_styles_are_normalized(style):
    gen = torch.Generator().manual_seed(2)
    for shape in [(2,), (3, 3), (2, 2, 2)]:
        log_p = g.random_joint(gen, shape, style)
        assert log_p.shape == shape
        assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="style='nope'"):
        g.random_joint(gen, (2,), "nope")


def test_random_order_kl_and_li_cai_by_hand():
    copies = torch.tensor([[0.5, 0.0], [0.0, 0.5]], dtype=torch.float64).log()
    assert random_order_kl(copies, (2,)).item() == pytest.approx(math.log(2))
    assert li_cai_bound(copies, (2,)).item() == pytest.approx(math.log(2))
    assert li_cai_bound(copies, (1, 1)).item() == 0.0
    big = torch.full((2,) * 8, 1 / 256, dtype=torch.float64).log()
    with pytest.raises(ValueError, match="ordered partitions"):
        random_order_kl(big, (1,) * 8)
    with pytest.raises(ValueError, match="summing to the length"):
        random_order_kl(copies, (1,))


def test_random_order_kl_is_the_mean_over_orders():
    gen = torch.Generator().manual_seed(4)
    log_p = g.random_joint(gen, (2, 2, 2), "dense")
    kls = [
        joint_kl_divergence(log_p, factorized_decoder_log_probs(log_p, blocks)).item()
        for blocks in [((0,), (1, 2)), ((1,), (0, 2)), ((2,), (0, 1))]
    ]
    assert random_order_kl(log_p, (1, 2)).item() == pytest.approx(sum(kls) / 3)
