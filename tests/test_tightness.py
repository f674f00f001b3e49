"""The tightness study: values against independent computations, files, resuming."""

import argparse
import json
import math

import pytest
import torch

from pmdm.decoding.schedules import FixedSize, StepsSchedule
from pmdm.metrics.information import max_ratio, product_of_marginals, total_correlation
from pmdm.studies import tightness
from pmdm.studies.tightness import (
    TightnessStudy,
    add_tightness_parser,
    run_tightness_study,
    step_sizes,
)
from pmdm.theory.generators import block_table

SMALL = TightnessStudy(
    etas=(1e-4,),
    block_sizes=(3,),
    n_runs=200,
    schedule_targets=("parity",),
    schedule_length=3,
    markov_etas=(1e-2,),
    markov_block_size=2,
    markov_length=4,
    epsilons=(1e-1, 1e-3),
)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("tightness")
    return out, run_tightness_study(SMALL, out)


def by(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def test_every_file_is_written(rows):
    out, _ = rows
    for name in (
        "results.json",
        "results.csv",
        "results.md",
        "prop51.csv",
        "schedules.csv",
        "markov.csv",
        "prop51.png",
        "schedules.png",
        "markov.png",
    ):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    assert (
        saved["study"] == "tightness" and len(saved["rows"]) == 4 + 4 + 2
    )  # contexts, schedules, ε


def test_prop51_prior_row_against_the_block_table(rows):
    # One block under the uniform latent prior: M and TC from the explicit table.
    _, got = rows
    row = by(got, part="prop51", context="prior")[0]
    hmm = SMALL.block_hmm(3, 3, 1e-4)
    log_p = block_table(hmm, hmm.log_init)
    m = float(max_ratio(log_p, product_of_marginals(log_p)))
    assert row["M"] == pytest.approx(m, rel=1e-9)
    assert row["exp_tc"] == pytest.approx(math.exp(total_correlation(log_p)), rel=1e-9)
    assert row["belief"] == pytest.approx(0.5, abs=1e-12)


def test_prop51_measured_proposals_match_m(rows):
    _, got = rows
    for row in by(got, part="prop51"):
        assert row["proposals_exact"] == pytest.approx(row["M"], rel=1e-9)
        assert row["exp_tc"] <= row["M"] * (1 + 1e-12)
        mc = row["proposals_mc"]
        assert abs(mc["estimate"] - row["M"]) <= 5 * mc["stderr"]


def test_schedules_of_three_parity_bits_by_hand(rows):
    # Any two parity bits are independent: a step of two is exact when the third is
    # decoded last; the whole block loses log 2; Σ_i I(X_i; X_−i) = 3 log 2.
    _, got = rows
    log2 = math.log(2)
    two_one = by(got, part="schedules", schedule="fixed-2")[0]
    assert two_one["sizes"] == [2, 1]
    assert two_one["kl_expected"] == pytest.approx(0.0, abs=1e-12)
    assert two_one["li_cai_bound"] == pytest.approx(log2, rel=1e-12)
    whole = by(got, part="schedules", schedule="fixed-3")[0]
    assert whole["kl_expected"] == pytest.approx(log2, rel=1e-12)
    assert whole["li_cai_bound"] == pytest.approx(3 * log2, rel=1e-12)
    for row in by(got, part="schedules"):
        assert row["ccl_formula"] == pytest.approx(row["kl_expected"], abs=1e-12)
        assert row["kl_mixture"] <= row["kl_expected"] + 1e-12


def test_markov_rows_are_below_their_bound(rows):
    _, got = rows
    hmm = SMALL.block_hmm(2, 4, 1e-2)
    x = hmm.enumerate_sequences()
    # q of factorized blocks from the bit marginals, independently of the guide.
    pred = hmm.block_predictive(x)  # (S, M, K)
    marg = hmm.bit_marginals(pred)  # (S, M, B)
    bits = hmm.blocks(x).to(torch.float64)
    q = torch.where(bits == 1, marg, 1 - marg).prod(-1).prod(-1)
    log_p = hmm.log_prob(x)
    for row in by(got, part="markov"):
        eps = row["epsilon"]
        assert row["incoherence"] == pytest.approx(
            float((q * (log_p <= math.log(eps))).sum())
        )
        assert row["incoherence"] <= row["markov_bound"]
        assert row["cross_entropy"] == pytest.approx(
            float(-(q * log_p).sum()), rel=1e-9
        )


def test_a_rerun_resumes_without_recomputing(rows, monkeypatch):
    out, first = rows

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a saved row")

    monkeypatch.setattr(tightness, "proposition51_row", fail)
    monkeypatch.setattr(tightness, "schedule_row", fail)
    monkeypatch.setattr(tightness, "markov_rows", fail)
    assert run_tightness_study(SMALL, out) == first


def test_other_settings_are_refused(rows):
    out, _ = rows
    with pytest.raises(ValueError, match="holds results of other settings"):
        run_tightness_study(
            TightnessStudy(parts=("markov",), markov_length=4, markov_block_size=2), out
        )


def test_step_sizes_of_the_schedules():
    assert step_sizes(FixedSize(4), 6, 2) == (4, 2)
    assert step_sizes(StepsSchedule(4), 6, 2) == (2, 2, 1, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"parts": ("bounds",)}, "parts: 'bounds'"),
        ({"block_sizes": (1,)}, "block_sizes\\[\\]=1"),
        ({"schedule_length": 8}, "schedule_length=8"),
        ({"epsilons": (1.0,)}, "epsilons\\[\\]=1.0"),
        ({"markov_etas": (0.0,)}, "markov_etas\\[\\]=0.0"),
        ({"schedule_targets": ("ising",)}, "schedule_targets: 'ising'"),
        ({"n_runs": 1}, "n_runs=1"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TightnessStudy(**kwargs)


def test_the_command_line(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="pmdm study")
    add_tightness_parser(parser.add_subparsers(dest="study", required=True))
    args = parser.parse_args(
        [
            "tightness",
            "--parts",
            "schedules",
            "--schedule-targets",
            "parity",
            "--schedule-length",
            "3",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    assert "Chen–Cong–Li" in capsys.readouterr().out
    assert (tmp_path / "schedules.png").exists()
