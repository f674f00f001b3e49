"""The Block-HMM study of Zhang et al. (2026), arXiv 2602.00286, Sec. 6.1 / App. E.

Factorized against joint (verified) blocks across the parity noise ``η``, reporting
reverse KL, forward KL, cross-entropy and per-block incoherence with standard
errors, plus the exact-per-block decompositions ``tc_forward`` and ``tc_reverse``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyro
from tqdm.auto import tqdm

from pmdm.decoding.block import BLOCK_GUIDES
from pmdm.metrics.blockwise import (
    DEFAULT_TAU,
    MEASURES,
    exact_block_measures,
    monte_carlo_block_measures,
)
from pmdm.models.base import MAX_ENUMERATION
from pmdm.models.block_hmm import BlockHMM
from pmdm.ops.validation import check_int, check_real
from pmdm.studies.runner import (
    ResultStore,
    atomic_write_bytes,
    atomic_write_text,
    derived_seed,
    format_estimate,
    markdown_table,
    rows_to_csv,
)

logger = logging.getLogger(__name__)

#: The parity noise levels of the paper's study.
PAPER_ETAS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4)

ESTIMATORS = ("auto", "exact", "monte-carlo")

_LABELS = {
    "reverse_kl": "reverse KL (nats)",
    "forward_kl": "forward KL (nats)",
    "cross_entropy": "cross-entropy (nats)",
    "incoherence": "incoherent blocks",
    "tc_forward": "Σ E_p TC→ (nats)",
    "tc_reverse": "Σ E_q TC← (nats)",
}


@dataclass(frozen=True)
class BlockHMMStudy:
    """Settings of the study; the defaults are the paper's.

    Parameters
    ----------
    etas : tuple of float
        Parity noise levels, each in ``[0, 1]``.
    n_sequences : int
        Monte Carlo sequences per (η, decoder) row, for each side (decoded and
        target samples).
    seed : int
        Fixes every number; each row's seed is derived from it and the row's key.
    num_states, stay, rho, block_size, length
        The Block-HMM (see :class:`~pmdm.models.block_hmm.BlockHMM`).
    tau : float
        Incoherence threshold.
    estimator : str
        ``"exact"`` (enumerate all ``2^T`` sequences), ``"monte-carlo"``, or
        ``"auto"``: exact when ``2^T`` is at most
        :data:`~pmdm.models.base.MAX_ENUMERATION`.
    decoders : tuple of str
        Names from :data:`~pmdm.decoding.block.BLOCK_GUIDES`.
    """

    etas: tuple[float, ...] = PAPER_ETAS
    n_sequences: int = 10_000
    seed: int = 0
    num_states: int = 2
    stay: float = 0.9
    rho: tuple[float, ...] = (0.9, 0.1)
    block_size: int = 8
    length: int = 64
    tau: float = DEFAULT_TAU
    estimator: str = "auto"
    decoders: tuple[str, ...] = field(default=("factorized", "joint"))

    def __post_init__(self):
        if len(self.etas) == 0:
            raise ValueError("etas=(): expected at least one parity noise level")
        for eta in self.etas:
            check_real("eta", eta, low=0.0, high=1.0)
        check_int("n_sequences", self.n_sequences, minimum=2)
        check_int("seed", self.seed, minimum=0)
        check_real("tau", self.tau, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.estimator not in ESTIMATORS:
            raise ValueError(
                f"estimator={self.estimator!r}: expected one of {ESTIMATORS}"
            )
        for name in self.decoders:
            if name not in BLOCK_GUIDES:
                raise ValueError(
                    f"decoders: {name!r} is not a block decoder; expected names "
                    f"from {sorted(BLOCK_GUIDES)}"
                )
        # Build one target now so that bad model parameters fail before any work.
        self.target(self.etas[0])

    def target(self, eta: float) -> BlockHMM:
        return BlockHMM(
            num_states=self.num_states,
            stay=self.stay,
            rho=self.rho,
            block_size=self.block_size,
            length=self.length,
            eta=eta,
        )

    def method(self) -> str:
        if self.estimator != "auto":
            return self.estimator
        return "exact" if 2**self.length <= MAX_ENUMERATION else "monte-carlo"

    def settings(self) -> dict:
        out = asdict(self)
        out["etas"] = list(self.etas)
        out["rho"] = list(self.rho)
        out["decoders"] = list(self.decoders)
        return out


def _row_key(row: dict) -> tuple:
    return (float(row["eta"]), row["decoder"])


def run_block_hmm_study(
    study: BlockHMMStudy,
    out_dir: str | Path,
    *,
    progress: bool = False,
    overwrite: bool = False,
) -> list[dict]:
    """Run the study, saving every row as it finishes, and write the report files.

    Writes ``results.json`` (settings and rows), ``results.csv``, ``results.md`` and
    ``results.png`` into ``out_dir``. Rows already in ``out_dir/results.json`` with
    the same settings are kept and not recomputed.

    Returns
    -------
    list of dict
        One row per (η, decoder): ``eta``, ``decoder``, ``method``,
        ``n_sequences``, ``seed``, ``row_seed`` and, for each measure of
        :data:`~pmdm.metrics.blockwise.MEASURES`, ``{"estimate", "stderr"}``.
    """
    store = ResultStore(out_dir, "block-hmm", study.settings(), _row_key, overwrite)
    method = study.method()
    todo = [(eta, name) for eta in study.etas for name in study.decoders]
    bar = tqdm(todo, desc="block-hmm", disable=not progress, unit="row")
    for eta, name in bar:
        if store.done((float(eta), name)):
            continue
        bar.set_postfix_str(f"eta={eta:g} {name}")
        row_seed = derived_seed(study.seed, "block-hmm", float(eta), name)
        pyro.set_rng_seed(row_seed)
        guide = BLOCK_GUIDES[name](study.target(eta))
        if method == "exact":
            measures = exact_block_measures(guide, study.tau)
        else:
            measures = monte_carlo_block_measures(guide, study.n_sequences, study.tau)
        row = {
            "eta": float(eta),
            "decoder": name,
            "method": method,
            "n_sequences": study.n_sequences if method == "monte-carlo" else None,
            "seed": study.seed,
            "row_seed": row_seed,
        }
        row.update({m: measures[m].to_dict() for m in MEASURES})
        for m in MEASURES:
            del row[m]["method"], row[m]["n"]
        store.add(row)
        logger.info("block-hmm: eta=%g %s done", eta, name)
    rows = sorted(
        store.rows,
        key=lambda r: (r["eta"], study.decoders.index(r["decoder"])),
    )
    store.rows = rows
    note = (
        f"Every number is fixed by seed={study.seed}; each row's seed (row_seed) is "
        "derived from it and the row's (eta, decoder)."
    )
    store.save(note=note)
    out = Path(out_dir)
    atomic_write_text(out / "results.csv", rows_to_csv(rows))
    atomic_write_text(out / "results.md", results_markdown(study, rows))
    atomic_write_bytes(out / "results.png", results_figure(rows))
    return rows


def results_markdown(study: BlockHMMStudy, rows: list[dict]) -> str:
    """The Markdown report: settings, seed note and one table row per result."""
    header = ["η", "decoder"] + [_LABELS[m] for m in MEASURES]
    body = [
        [f"{row['eta']:g}", row["decoder"]]
        + [format_estimate(row[m]) for m in MEASURES]
        for row in rows
    ]
    method = study.method()
    sample = (
        f"{study.n_sequences} sequences per row and side"
        if method == "monte-carlo"
        else "exact enumeration of all sequences"
    )
    text = (
        "# Block-HMM: factorized vs joint blocks\n\n"
        f"K={study.num_states}, a={study.stay}, ρ={list(study.rho)}, "
        f"B={study.block_size}, T={study.length}, τ={study.tau:g}; {sample}; "
        f"values ± one standard error. Seed {study.seed} fixes every number.\n\n"
    )
    return text + markdown_table(header, body)


def results_figure(rows: list[dict]) -> bytes:
    """PNG bytes: reverse KL, forward KL and incoherence against η, with error bars."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ["reverse_kl", "forward_kl", "incoherence"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), constrained_layout=True)
    styles = {"factorized": ("C3", "o", "-"), "joint": ("C0", "s", "--")}
    decoders = list(dict.fromkeys(row["decoder"] for row in rows))
    for ax, measure in zip(axes, panels, strict=True):
        for name in decoders:
            color, marker, line = styles.get(name, ("C2", "^", ":"))
            pts = [
                (r["eta"], r[measure]["estimate"], r[measure]["stderr"])
                for r in rows
                if r["decoder"] == name
            ]
            shown = [
                (e, v, s)
                for e, v, s in pts
                if e > 0 and not isinstance(v, str) and math.isfinite(v)
            ]
            if shown:
                xs, ys, es = zip(*shown, strict=True)
                ax.errorbar(
                    xs,
                    ys,
                    yerr=es,
                    color=color,
                    marker=marker,
                    linestyle=line,
                    capsize=3,
                    markersize=5,
                    label=name,
                )
            infinite = [e for e, v, _ in pts if e > 0 and v == "inf"]
            for e in infinite:
                ax.annotate(
                    "∞",
                    (e, 1.0),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    va="top",
                    color=color,
                )
        ax.set_xscale("log")
        ax.set_xlabel("parity noise η")
        ax.set_title(_LABELS[measure])
        ax.grid(True, which="major", alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(frameon=False)
    if any(row["eta"] == 0 for row in rows):
        fig.suptitle("η = 0 cannot sit on the log axis: see results.md", fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    return buffer.getvalue()
