import json
import math

import pytest

from pmdm.cli import main
from pmdm.studies.evaluate import evaluate
from pmdm.studies.orders import OrderStudy, run_order_study

TABLE = """
kind = "table"
vocab_size = 2
sequences = [[0, 1, 0, 1], [1, 0, 1, 0]]
probs = [0.5, 0.5]
"""

ONE_STEP = """
order = "l2r"
sampler = "factorized"
[schedule]
kind = "fixed"
tokens_per_step = 4
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_evaluate_json_by_hand(tmp_path, capsys):
    target = write(tmp_path, "t.toml", TABLE)
    decoder = write(tmp_path, "d.toml", ONE_STEP)
    assert (
        main(
            [
                "evaluate",
                "--target",
                str(target),
                "--decoder",
                str(decoder),
                "--format",
                "json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["exact"] is True and out["n_sequences"] is None
    assert out["incoherence"] == {"estimate": 0.875, "stderr": 0.0}
    assert out["forward_kl"]["estimate"] == pytest.approx(3 * math.log(2))
    assert out["reverse_kl"]["estimate"] == "inf"
    assert out["nfe"]["estimate"] == 1.0 and out["proposals"]["estimate"] == 0.0


def test_evaluate_monte_carlo_and_table(tmp_path, capsys):
    target = write(tmp_path, "t.toml", TABLE)
    decoder = write(tmp_path, "d.toml", ONE_STEP)
    out = evaluate(target, decoder, exact=False, n_sequences=2000, seed=1)
    inc = out["incoherence"]
    assert abs(inc["estimate"] - 0.875) <= 4.5 * inc["stderr"]
    assert out["exact"] is False and out["n_sequences"] == 2000
    assert (
        main(
            [
                "evaluate",
                "--target",
                str(target),
                "--decoder",
                str(decoder),
                "--n-sequences",
                "500",
            ]
        )
        == 0
    )
    assert "Monte Carlo, N=500; seed 0" in capsys.readouterr().out


def test_evaluate_hmm_block_hmm_and_remask_configs(tmp_path):
    hmm = write(
        tmp_path,
        "hmm.toml",
        """
kind = "hmm"
length = 5
init = [0.5, 0.5]
trans = [[0.9, 0.1], [0.1, 0.9]]
emit = [[0.9, 0.1], [0.2, 0.8]]
""",
    )
    random_remask = write(
        tmp_path,
        "r.toml",
        """
order = "random"
[schedule]
kind = "fixed"
tokens_per_step = 2
[remask]
rounds = 1
count = 1
[predictor]
kind = "noisy"
level = 0.5
""",
    )
    exact = evaluate(hmm, random_remask, exact=True)
    assert math.isfinite(exact["reverse_kl"]["estimate"])
    mc = evaluate(hmm, random_remask, exact=False, n_sequences=100)
    assert mc["reverse_kl"] is None and "note" in mc
    block = write(
        tmp_path,
        "b.toml",
        """
kind = "block-hmm"
num_states = 2
stay = 0.9
rho = [0.9, 0.1]
block_size = 3
length = 6
eta = 0.0
""",
    )
    graph = write(tmp_path, "g.toml", 'order = "graph"\n')
    out = evaluate(block, graph)
    assert out["reverse_kl"]["estimate"] == pytest.approx(0.0, abs=1e-9)
    assert "block_incoherence" in out


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('kind = "tree"\n', r"target kind='tree'"),
        ('kind = "table"\nvocab_size = 2\nprobs = [1.0]\n', r"missing key 'sequences'"),
        (
            'kind = "hmm"\nlength = 3\ninit = [1.0]\ntrans = [[1.0]]\nemit = [[0.5, 0.6]]\n'
            "colour = 1\n",
            r"unknown keys \['colour'\]",
        ),
        (
            'kind = "table"\nvocab_size = 2\nsequences = [[0, 1], [1]]\nprobs = [0.5, 0.5]\n',
            r"sequences=\[\[0, 1\], \[1\]\] is not a rectangular array",
        ),
    ],
)
def test_bad_target_files_are_refused(tmp_path, text, match):
    decoder = write(tmp_path, "d.toml", ONE_STEP)
    with pytest.raises(ValueError, match=match):
        evaluate(write(tmp_path, "t.toml", text), decoder)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[schedule]\nkind = "sometimes"\n', r"schedule kind='sometimes'"),
        ('[schedule]\nkind = "fixed"\nsteps = 3\n', r"unknown keys \['steps'\]"),
        ('order = "l2r"\ntemprature = 1\n', r"unknown keys \['temprature'\]"),
        ('[predictor]\nkind = "psychic"\n', r"predictor kind='psychic'"),
        ('order = "l2r"\n[schedule\n', r"not valid TOML"),
    ],
)
def test_bad_decoder_files_are_refused(tmp_path, text, match):
    target = write(tmp_path, "t.toml", TABLE)
    with pytest.raises(ValueError, match=match):
        evaluate(target, write(tmp_path, "d.toml", text))


def test_cli_reports_a_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(
            [
                "evaluate",
                "--target",
                str(tmp_path / "none.toml"),
                "--decoder",
                str(tmp_path / "none.toml"),
            ]
        )
    assert info.value.code == 2
    assert "no such file" in capsys.readouterr().err


def test_order_study_small(tmp_path):
    study = OrderStudy(
        levels=(0.0, 1.0),
        seeds=2,
        orders=("l2r", "entropy", "random"),
        length=5,
        num_states=2,
        vocab_size=2,
    )
    summary = run_order_study(study, tmp_path)
    assert len(summary) == 6
    for entry in summary:
        if entry["level"] == 0.0:
            # A perfect model at one token per step is exact in every order.
            assert entry["reverse_kl"]["estimate"] == pytest.approx(0.0, abs=1e-10)
            assert entry["local_kl"]["estimate"] == pytest.approx(0.0, abs=1e-12)
        else:
            assert entry["reverse_kl"]["estimate"] > 0
    assert (tmp_path / "results.png").exists()
    assert "## KL(q ‖ p), nats" in (tmp_path / "results.md").read_text()
    # Resume: nothing recomputed, same summary.
    assert run_order_study(study, tmp_path) == summary
    with pytest.raises(ValueError, match=r"orders: 'sideways'"):
        OrderStudy(orders=("sideways",))
    with pytest.raises(ValueError, match=r"V\^T <= 65536"):
        OrderStudy(length=20)
