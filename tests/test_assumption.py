"""The assumption study: per-step values by hand, the fit's claims, files, resuming."""

import argparse
import json
import math

import pytest
import torch

from pmdm.ops.logspace import entropy, kl_divergence
from pmdm.predictors.noisy import NoisyPredictor
from pmdm.predictors.oracle import OraclePredictor
from pmdm.studies import assumption
from pmdm.studies.assumption import (
    AssumptionStudy,
    add_assumption_parser,
    run_assumption_study,
)
from pmdm.studies.runner import derived_seed
from pmdm.theory.rollout import eq11_bound

SMALL = AssumptionStudy(
    levels=(0.5, 2.0),
    draws=2,
    orders=("l2r", "entropy", "permutation"),
    length=3,
    num_states=2,
    vocab_size=2,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("assumption")
    return out, run_assumption_study(SMALL, out)


def rollouts(out):
    return json.loads((out / "results.json").read_text())["rows"]


def test_files_and_rows(run):
    out, summary = run
    for name in (
        "results.json",
        "results.csv",
        "steps.csv",
        "results.md",
        "results.png",
    ):
        assert (out / name).stat().st_size > 0
    assert len(rollouts(out)) == 2 * 2 * 3
    # Per level and over all levels, for both entropy laws.
    assert [(e["level"], e["law"]) for e in summary] == [
        (lvl, law) for lvl in (0.5, 2.0, "all") for law in ("rollout", "target")
    ]
    assert len((out / "steps.csv").read_text().splitlines()) == 1 + 12 * 3


def test_first_step_by_hand(run):
    # Step 1 of left to right: the model's and the target's law of position 0.
    out, _ = run
    row = next(r for r in rollouts(out) if r["order"] == "l2r")
    oracle = OraclePredictor(SMALL.target())
    model = NoisyPredictor(
        oracle, row["level"], seed=derived_seed(0, "assumption", row["draw"])
    )
    masked = torch.full((1, 3), oracle.mask_id)
    m, p = model(masked)[0, 0], oracle(masked)[0, 0]
    assert row["errors"][0] == pytest.approx(kl_divergence(m, p).item(), abs=1e-14)
    assert row["entropies_target"][0] == pytest.approx(entropy(p).item(), abs=1e-14)
    assert row["previous"][0] == 0.0


def test_lemma_4_1_on_every_rollout(run):
    out, summary = run
    for r in rollouts(out):
        assert abs(r["kl"] - sum(r["errors"])) <= 1e-12
    assert max(e["lemma41_max_error"] for e in summary) <= 1e-12


def test_the_smallest_b_makes_the_assumption_and_eq_11_hold(run):
    out, summary = run
    rows = rollouts(out)
    for e in summary:
        group = (
            rows
            if e["level"] == "all"
            else [r for r in rows if r["level"] == e["level"]]
        )
        worst = -math.inf
        for r in group:
            h = r[f"entropies_{e['law']}"]
            for t, err in enumerate(r["errors"]):
                excess = err - e["alpha"] * h[t] - e["lam"] * r["previous"][t]
                worst = max(worst, excess)
            assert r["kl"] <= eq11_bound(h, e["alpha"], e["lam"], e["b_min"]) * (
                1 + 1e-9
            )
        assert e["b_min"] == pytest.approx(max(worst, 0.0), abs=1e-12)
        assert e["eq11_holds_b_min"] == 1.0
        assert 0.0 <= e["violating_fraction"] <= 1.0
        assert e["violating_fraction"] == 0.0 or e["b_min"] > e["b"]
        assert e["r2"] <= 1.0 + 1e-12


def test_a_rerun_resumes_without_recomputing(run, monkeypatch):
    out, summary = run

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a saved rollout")

    monkeypatch.setattr(assumption, "rollout_row", fail)
    again = run_assumption_study(SMALL, out)
    # The fit is redone (least squares agrees to rounding).
    assert len(again) == len(summary)
    for a, b in zip(again, summary, strict=True):
        for key, value in b.items():
            if isinstance(value, float):
                assert a[key] == pytest.approx(value, rel=1e-9, abs=1e-12)
            else:
                assert a[key] == value


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"levels": ()}, "levels=\\(\\)"),
        ({"levels": (0.0,)}, "levels\\[\\]=0.0"),
        ({"orders": ("random",)}, "orders: 'random'"),
        ({"draws": 0}, "draws=0"),
        ({"length": 12}, "V\\^T <= 65536"),
        ({"stay": 1.5}, "stay=1.5"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AssumptionStudy(**kwargs)


def test_the_command_line(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="pmdm study")
    add_assumption_parser(parser.add_subparsers(dest="study", required=True))
    args = parser.parse_args(
        [
            "assumption",
            "--levels",
            "1.0",
            "--draws",
            "1",
            "--orders",
            "l2r",
            "r2l",
            "--length",
            "3",
            "--num-states",
            "2",
            "--vocab-size",
            "2",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    assert "R²" in capsys.readouterr().out
    assert (tmp_path / "results.png").exists()
