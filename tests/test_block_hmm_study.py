import csv
import json

import pytest

from pmdm.cli import main
from pmdm.decoding.block import FactorizedBlockGuide
from pmdm.metrics.blockwise import MEASURES, exact_block_measures
from pmdm.studies.block_hmm import BlockHMMStudy, run_block_hmm_study

SMALL_MC = dict(etas=(1e-8, 1e-4), n_sequences=300, block_size=4, length=24)


def test_study_writes_every_file_with_the_documented_schema(tmp_path):
    rows = run_block_hmm_study(BlockHMMStudy(**SMALL_MC), tmp_path)
    assert [(r["eta"], r["decoder"]) for r in rows] == [
        (1e-8, "factorized"),
        (1e-8, "joint"),
        (1e-4, "factorized"),
        (1e-4, "joint"),
    ]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == rows
    assert "seed=0" in saved["note"]
    for row in saved["rows"]:
        assert row["n_sequences"] == 300 and row["seed"] == 0
        for name in ("reverse_kl", "forward_kl", "cross_entropy", "incoherence"):
            assert set(row[name]) == {"estimate", "stderr"}
    with open(tmp_path / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4 and "reverse_kl_stderr" in table[0]
    assert "| 1e-08 | factorized |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_recomputes_only_missing_rows_and_reproduces_them(tmp_path):
    study = BlockHMMStudy(**SMALL_MC)
    full = run_block_hmm_study(study, tmp_path)
    # Interrupt: keep the first two rows only, as a run stopped there would.
    path = tmp_path / "results.json"
    saved = json.loads(path.read_text())
    saved["rows"] = saved["rows"][:2]
    path.write_text(json.dumps(saved))
    assert run_block_hmm_study(study, tmp_path) == full


def test_other_settings_in_the_folder_are_refused(tmp_path):
    run_block_hmm_study(BlockHMMStudy(**SMALL_MC), tmp_path)
    other = BlockHMMStudy(**{**SMALL_MC, "seed": 1})
    with pytest.raises(ValueError, match=r"out=.*holds results of other settings"):
        run_block_hmm_study(other, tmp_path)
    assert len(run_block_hmm_study(other, tmp_path, overwrite=True)) == 4


def test_exact_estimator_on_a_small_model_gives_exact_rows(tmp_path):
    study = BlockHMMStudy(etas=(1e-3,), block_size=4, length=12)
    rows = run_block_hmm_study(study, tmp_path)
    assert study.method() == "exact"
    expected = exact_block_measures(FactorizedBlockGuide(study.target(1e-3)))
    row = rows[0]
    assert row["method"] == "exact" and row["n_sequences"] is None
    for name in MEASURES:
        assert row[name]["estimate"] == pytest.approx(expected[name].estimate)
        assert row[name]["stderr"] == 0.0


def test_infinities_are_written_as_strict_json(tmp_path):
    study = BlockHMMStudy(etas=(0.0,), n_sequences=50, block_size=4, length=24)
    rows = run_block_hmm_study(study, tmp_path)
    text = (tmp_path / "results.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert rows[0]["reverse_kl"]["estimate"] == "inf"
    assert "∞" in (tmp_path / "results.md").read_text()


def test_the_paper_settings_reproduce_its_findings(tmp_path):
    # The paper's model at η = 1e-8 and 1e-4 with 2000 sequences per row.
    study = BlockHMMStudy(etas=(1e-8, 1e-4), n_sequences=2000)
    rows = {(r["eta"], r["decoder"]): r for r in run_block_hmm_study(study, tmp_path)}
    fact = rows[(1e-8, "factorized")]
    assert fact["reverse_kl"]["estimate"] > 70 - 3 * fact["reverse_kl"]["stderr"]
    assert abs(fact["incoherence"]["estimate"] - 0.5) < 0.03
    for eta in (1e-8, 1e-4):
        fwd = rows[(eta, "factorized")]["forward_kl"]
        assert 11 <= fwd["estimate"] <= 13
        joint = rows[(eta, "joint")]
        assert abs(joint["reverse_kl"]["estimate"]) < 1e-9
        assert joint["incoherence"]["estimate"] == 0


def test_cli_runs_the_study_and_reports_bad_input(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "reproduce",
            "block-hmm",
            "--eta",
            "1e-6",
            "--n-sequences",
            "100",
            "--block-size",
            "4",
            "--length",
            "24",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "Seed 0 fixes every number" in capsys.readouterr().out
    assert (out / "results.json").exists()
    for args, message in [
        (["--eta", "-0.5"], "eta=-0.5"),
        (["--rho", "0.9", "1.5"], "rho=[0.9, 1.5]"),
        (["--length", "10"], "length=10: expected a multiple of block_size=8"),
        (["--num-states", "0"], "num_states=0"),
        (["--n-sequences", "-5"], "n_sequences=-5"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["reproduce", "block-hmm", "--out", str(tmp_path / "bad"), *args])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
