"""Assumption 4.2 from data: fit ``α, λ, b`` on exact rollouts of a noisy model.

Zhang et al. (2026), arXiv 2602.00286, assume (Assumption 4.2, Eq. 10) that the
expected step error of a model decoded one token per step obeys
``ē_t ≤ α H_t + λ Σ_{k<t} ē_k + b`` and derive the weighted-entropy bound of Eq. 11.
This study rolls out a :class:`~pmdm.predictors.noisy.NoisyPredictor` of a token HMM
at several error levels and in several orders, records per step the local error
``ē_t`` and the conditional entropy ``H_t`` exactly
(:func:`pmdm.theory.rollout.rollout_profile`), fits ``α, λ, b >= 0`` by least
squares per level (pooled over noise draws and orders), and reports

* the fit and its ``R²``;
* the fraction of steps at which the fitted values violate the assumption (a
  least-squares fit does not bound from above), and the smallest ``b`` that makes
  it hold with the fitted ``α, λ``;
* whether Eq. 11 then holds on the same rollouts: the fraction of rollouts with
  ``J(π) ≤ Σ_t (1+λ)^{T−t} (α H_t + b)`` with the fitted ``b``, with the smallest
  valid ``b`` (always, by the recursion) and with the printed ``+ T b`` form.

``H_t`` is fitted under both prefix laws of :data:`pmdm.theory.rollout.ENTROPY_LAWS`;
``J(π)`` is the decoder's exact ``KL(p_θ^π ‖ p)`` from
:func:`pmdm.decoding.exact.output_distribution`, checked against ``Σ_t ē_t``
(Lemma 4.1).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pmdm.decoding.decoder import Decoder
from pmdm.decoding.exact import output_distribution
from pmdm.models.base import MAX_ENUMERATION
from pmdm.models.hmm import TokenHMM
from pmdm.ops.logspace import kl_divergence
from pmdm.ops.validation import check_int, check_real
from pmdm.predictors.noisy import NoisyPredictor
from pmdm.predictors.oracle import OraclePredictor
from pmdm.studies.runner import (
    ResultStore,
    atomic_write_bytes,
    atomic_write_text,
    derived_seed,
    markdown_table,
    rows_to_csv,
)
from pmdm.theory.rollout import (
    ENTROPY_LAWS,
    assumption_slack,
    eq11_bound,
    fit_assumption,
    rollout_profile,
    smallest_b,
)

#: Orders the study may roll out; ``"permutation"`` is a fixed random permutation
#: per noise draw.
ORDERS = ("l2r", "r2l", "entropy", "confidence", "margin", "permutation")

#: Tolerance of "the assumption holds at a step" and "the bound holds", relative.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class AssumptionStudy:
    """Settings of the assumption study.

    Parameters
    ----------
    levels : tuple of float
        Model-error levels (positive) of the noisy predictor.
    draws : int
        Independent noise draws (models) per level.
    orders : tuple of str
        From :data:`ORDERS`.
    length, num_states, vocab_size, stay, emit_peak
        The token HMM (see :meth:`target`).
    seed : int
        Fixes every number.
    """

    levels: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    draws: int = 3
    orders: tuple[str, ...] = ORDERS
    length: int = 8
    num_states: int = 3
    vocab_size: int = 3
    stay: float = 0.8
    emit_peak: float = 0.85
    seed: int = 0

    def __post_init__(self):
        if not self.levels:
            raise ValueError("levels=(): expected at least one error level")
        for level in self.levels:
            check_real("levels[]", level, low=0.0, low_open=True)
        check_int("draws", self.draws, minimum=1)
        check_int("seed", self.seed, minimum=0)
        if not self.orders:
            raise ValueError("orders=(): expected at least one order")
        for order in self.orders:
            if order not in ORDERS:
                raise ValueError(f"orders: {order!r} is not one of {ORDERS}")
        self.target()
        if self.vocab_size**self.length > MAX_ENUMERATION:
            raise ValueError(
                f"length={self.length}, vocab_size={self.vocab_size}: the study is "
                f"exact and needs V^T <= {MAX_ENUMERATION}"
            )

    def target(self) -> TokenHMM:
        """The study's token HMM (:meth:`TokenHMM.sticky`)."""
        return TokenHMM.sticky(
            self.length, self.num_states, self.vocab_size, self.stay, self.emit_peak
        )

    def settings(self) -> dict:
        out = asdict(self)
        out["levels"], out["orders"] = list(self.levels), list(self.orders)
        return out


def _row_key(row: dict) -> tuple:
    return (float(row["level"]), int(row["draw"]), row["order"])


def _order_argument(study: AssumptionStudy, order: str, draw: int):
    if order != "permutation":
        return order
    gen = torch.Generator().manual_seed(derived_seed(study.seed, "permutation", draw))
    return tuple(torch.randperm(study.length, generator=gen).tolist())


def rollout_row(study: AssumptionStudy, level: float, draw: int, order: str) -> dict:
    """One rollout: per-step errors and entropies, and ``J`` from the decoder."""
    target = study.target()
    oracle = OraclePredictor(target)
    noise_seed = derived_seed(study.seed, "assumption", draw)
    model = NoisyPredictor(oracle, level, seed=noise_seed)
    argument = _order_argument(study, order, draw)
    profile = rollout_profile(model, oracle, study.length, argument)
    log_p = target.log_prob(target.enumerate_sequences())
    log_q = output_distribution(Decoder(argument), model, study.length).log_q
    kl = float(kl_divergence(log_q, log_p))
    return {
        "level": float(level),
        "draw": draw,
        "order": order,
        "permutation": list(argument) if isinstance(argument, tuple) else None,
        "noise_seed": noise_seed,
        "errors": profile.errors.tolist(),
        "previous": profile.previous().tolist(),
        "entropies_rollout": profile.entropies.tolist(),
        "entropies_target": profile.target_entropies.tolist(),
        "entropies_model": profile.model_entropies.tolist(),
        "kl": kl,
        "lemma41_error": abs(kl - profile.kl),
    }


def _tensor(rows: list[dict], key: str) -> torch.Tensor:
    return torch.tensor([v for r in rows for v in r[key]], dtype=torch.float64)


def summarize(rows: list[dict], levels) -> list[dict]:
    """Fit and checks per level (and over all levels, ``level = "all"``), per law."""
    groups = [
        (float(level), [r for r in rows if r["level"] == float(level)])
        for level in levels
    ]
    if len(levels) > 1:
        groups.append(("all", list(rows)))
    out = []
    for level, group in groups:
        if not group:
            continue
        e, s = _tensor(group, "errors"), _tensor(group, "previous")
        for law in ENTROPY_LAWS:
            h = _tensor(group, f"entropies_{law}")
            fit = fit_assumption(e, h, s)
            # Pooled steps: S_{t−1} is each rollout's own running sum.
            slack = assumption_slack(e, h, fit.alpha, fit.lam, fit.b, previous=s)
            scale = TOLERANCE * max(1.0, float(e.abs().max()))
            b_min = smallest_b(e, h, fit.alpha, fit.lam, previous=s)
            # Every rollout checked with its own J and H_t.
            holds = holds_min = printed_min = 0
            ratios = []
            for r in group:
                hr = torch.tensor(r[f"entropies_{law}"], dtype=torch.float64)
                tol = TOLERANCE * max(1.0, r["kl"])
                fitted = eq11_bound(hr, fit.alpha, fit.lam, fit.b)
                valid = eq11_bound(hr, fit.alpha, fit.lam, b_min)
                printed = eq11_bound(hr, fit.alpha, fit.lam, b_min, "printed")
                holds += r["kl"] <= fitted + tol
                holds_min += r["kl"] <= valid + tol
                printed_min += r["kl"] <= printed + tol
                ratios.append(r["kl"] / valid if valid > 0 else math.nan)
            n = len(group)
            out.append(
                {
                    "level": level,
                    "law": law,
                    "alpha": fit.alpha,
                    "lam": fit.lam,
                    "b": fit.b,
                    "r2": fit.r2,
                    "steps": fit.steps,
                    "rollouts": n,
                    "violating_fraction": float(
                        (slack < -scale).to(torch.float64).mean()
                    ),
                    "b_min": b_min,
                    "eq11_holds_fitted_b": holds / n,
                    "eq11_holds_b_min": holds_min / n,
                    "printed_holds_b_min": printed_min / n,
                    "kl_over_bound_max": max(ratios),
                    "kl_over_bound_mean": sum(ratios) / n,
                    "lemma41_max_error": max(r["lemma41_error"] for r in group),
                }
            )
    return out


def run_assumption_study(
    study: AssumptionStudy, out_dir, *, progress: bool = False, overwrite: bool = False
) -> list[dict]:
    """Run the study, one saved row per (level, noise draw, order), then fit.

    Writes ``results.json`` (rollouts and the ``summary``), ``results.csv`` (the
    summary), ``steps.csv`` (one line per step of every rollout), ``results.md`` and
    ``results.png`` into ``out_dir``.

    Returns
    -------
    list of dict
        The summary: per level (and ``"all"``) and entropy law, the fitted
        ``alpha``, ``lam``, ``b``, ``r2``, the ``violating_fraction`` of steps,
        ``b_min`` and the fractions of rollouts on which Eq. 11 holds.
    """
    store = ResultStore(out_dir, "assumption", study.settings(), _row_key, overwrite)
    todo = [
        (float(level), draw, order)
        for level in study.levels
        for draw in range(study.draws)
        for order in study.orders
    ]
    for key in tqdm(todo, desc="assumption", disable=not progress, unit="rollout"):
        if store.done(key):
            continue
        store.add(rollout_row(study, *key))
    order = {key: i for i, key in enumerate(todo)}
    store.rows = sorted(store.rows, key=lambda r: order.get(_row_key(r), len(order)))
    summary = summarize(store.rows, study.levels)
    store.save(summary=summary, note=f"Seed {study.seed} fixes every number.")
    out = Path(out_dir)
    atomic_write_text(out / "results.csv", rows_to_csv(summary))
    atomic_write_text(out / "steps.csv", rows_to_csv(step_table(store.rows)))
    atomic_write_text(out / "results.md", assumption_markdown(study, summary))
    atomic_write_bytes(out / "results.png", assumption_figure(store.rows, summary))
    return summary


def step_table(rows: list[dict]) -> list[dict]:
    """One flat row per step of every rollout."""
    out = []
    for r in rows:
        for t in range(len(r["errors"])):
            out.append(
                {
                    "level": r["level"],
                    "draw": r["draw"],
                    "order": r["order"],
                    "t": t + 1,
                    "error": r["errors"][t],
                    "previous": r["previous"][t],
                    "entropy_rollout": r["entropies_rollout"][t],
                    "entropy_target": r["entropies_target"][t],
                    "entropy_model": r["entropies_model"][t],
                }
            )
    return out


def _f(value: float, digits: int = 4) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.{digits}g}"


def assumption_markdown(study: AssumptionStudy, summary: list[dict]) -> str:
    """Markdown: the fits and the checks, one row per level and law."""
    header = [
        "level",
        "H_t law",
        "α",
        "λ",
        "b",
        "R²",
        "steps violating 4.2",
        "smallest b",
        "Eq. 11 holds (fitted b)",
        "Eq. 11 holds (smallest b)",
        "printed + T b holds (smallest b)",
        "max J / bound",
    ]
    body = [
        [
            _f(e["level"]),
            e["law"],
            _f(e["alpha"]),
            _f(e["lam"]),
            _f(e["b"]),
            _f(e["r2"], 3),
            f"{e['violating_fraction']:.0%}",
            _f(e["b_min"]),
            f"{e['eq11_holds_fitted_b']:.0%}",
            f"{e['eq11_holds_b_min']:.0%}",
            f"{e['printed_holds_b_min']:.0%}",
            _f(e["kl_over_bound_max"], 3),
        ]
        for e in summary
    ]
    lemma = max(e["lemma41_max_error"] for e in summary)
    return (
        "# Assumption 4.2 from exact rollouts of a noisy model\n\n"
        f"Token HMM: T={study.length}, K={study.num_states}, V={study.vocab_size}, "
        f"stay={study.stay}, emit_peak={study.emit_peak}; NoisyPredictor at levels "
        f"{list(study.levels)}, {study.draws} noise draws each, orders "
        f"{list(study.orders)}, one token per step. Per step: ē_t (expected local KL "
        "along the model's rollout) and H_t, the target's conditional entropy "
        "averaged over the rollout's prefixes ('rollout') or the target's "
        "('target'). α, λ, b ≥ 0 by least squares per level, pooled over draws and "
        "orders ('all': every level). Eq. 11 is the bound the recursion gives, "
        "Σ_t (1+λ)^{T−t}(αH_t + b); the smallest b makes Assumption 4.2 hold at every "
        f"pooled step. |J − Σ ē_t| (Lemma 4.1) is at most {lemma:.2g}. Seed "
        f"{study.seed} fixes every number.\n\n" + markdown_table(header, body)
    )


def assumption_figure(rows: list[dict], summary: list[dict]) -> bytes:
    """PNG: ``ē_t`` against the fitted right side of Assumption 4.2 (rollout law),
    and ``J(π)`` against the Eq. 11 bound with the smallest valid ``b``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4), constrained_layout=True)
    fits = {e["level"]: e for e in summary if e["law"] == "rollout"}
    levels = sorted({r["level"] for r in rows})
    top = 0.0
    for i, level in enumerate(levels):
        fit = fits[level]
        group = [r for r in rows if r["level"] == level]
        e = _tensor(group, "errors")
        h = _tensor(group, "entropies_rollout")
        s = _tensor(group, "previous")
        pred = fit["alpha"] * h + fit["lam"] * s + fit["b"]
        axes[0].scatter(
            pred,
            e,
            s=8,
            color=f"C{i}",
            alpha=0.7,
            label=f"level {level:g} (R² {fit['r2']:.2f})",
        )
        top = max(top, float(e.max()), float(pred.max()))
        js, bounds, fitted = [], [], []
        for r in group:
            hr = torch.tensor(r["entropies_rollout"], dtype=torch.float64)
            bounds.append(eq11_bound(hr, fit["alpha"], fit["lam"], fit["b_min"]))
            fitted.append(eq11_bound(hr, fit["alpha"], fit["lam"], fit["b"]))
            js.append(r["kl"])
        axes[1].scatter(bounds, js, s=12, color=f"C{i}", label=f"level {level:g}")
        axes[1].scatter(fitted, js, s=12, facecolors="none", edgecolors=f"C{i}")
    axes[0].plot([0, top], [0, top], "k--", lw=0.8)
    axes[0].set_xlabel("α H_t + λ S_{t−1} + b (fitted)")
    axes[0].set_ylabel("ē_t (nats)")
    axes[0].set_title("Assumption 4.2: steps above the line violate it")
    axes[0].legend(frameon=False, fontsize=7)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    lo, hi = axes[1].get_xlim()
    axes[1].plot([lo, hi], [lo, hi], "k--", lw=0.8)
    axes[1].set_xlabel("Eq. 11 bound: fitted α, λ; smallest b (•), fitted b (○)")
    axes[1].set_ylabel("J(π) = KL(p_θ^π ‖ p)")
    axes[1].set_title("Eq. 11 per rollout: points above -- violate it")
    axes[1].legend(frameon=False, fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    return buffer.getvalue()


# -- command line -----------------------------------------------------------------------


def add_assumption_parser(study_subparsers) -> None:
    """Add ``assumption`` to the subparsers of ``pmdm study``.

    Usage: ``pmdm study assumption [--levels ...] [--draws N] [--orders ...]
    [--length T] [--num-states K] [--vocab-size V] [--stay A] [--emit-peak E]
    [--seed S] [--out DIR] [--overwrite] [--no-progress]``.
    """
    defaults = AssumptionStudy()
    p = study_subparsers.add_parser(
        "assumption",
        help="fit Assumption 4.2 (α, λ, b) on exact rollouts and check Eq. 11",
        description=(
            "Roll out a noisy oracle of a token HMM one token per step in several "
            "orders, record the expected step error and conditional entropy "
            "exactly, fit α, λ, b ≥ 0 by least squares with R², and check "
            "Assumption 4.2 and the bound of Eq. 11 on the same rollouts."
        ),
    )
    p.add_argument(
        "--levels",
        type=float,
        nargs="+",
        default=list(defaults.levels),
        help="model-error levels (default: %(default)s)",
    )
    p.add_argument(
        "--draws",
        type=int,
        default=defaults.draws,
        help="noise draws per level (default: %(default)s)",
    )
    p.add_argument("--orders", nargs="+", choices=ORDERS, default=list(ORDERS))
    p.add_argument("--length", type=int, default=defaults.length)
    p.add_argument("--num-states", type=int, default=defaults.num_states)
    p.add_argument("--vocab-size", type=int, default=defaults.vocab_size)
    p.add_argument("--stay", type=float, default=defaults.stay)
    p.add_argument("--emit-peak", type=float, default=defaults.emit_peak)
    p.add_argument("--seed", type=int, default=0, help="fixes every number")
    p.add_argument("--out", type=Path, default=Path("results/assumption"))
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_assumption)


def _run_assumption(args) -> int:
    import sys

    study = AssumptionStudy(
        levels=tuple(args.levels),
        draws=args.draws,
        orders=tuple(args.orders),
        length=args.length,
        num_states=args.num_states,
        vocab_size=args.vocab_size,
        stay=args.stay,
        emit_peak=args.emit_peak,
        seed=args.seed,
    )
    run_assumption_study(
        study, args.out, progress=not args.no_progress, overwrite=args.overwrite
    )
    sys.stdout.write((args.out / "results.md").read_text())
    sys.stdout.write(
        f"Wrote results.json, results.csv, steps.csv, results.md, results.png to "
        f"{args.out}\n"
    )
    return 0
