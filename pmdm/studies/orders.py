"""The order study: how much the unmasking order matters as the model gets worse.

Zhang et al. (2026), arXiv 2602.00286, Sec. 4 (Lemma 4.1, Eq. 11-12), argue that
with an imperfect model early errors shift every later prediction, so revealing the
easiest (lowest-entropy) positions first helps more as model error grows. This
study measures it exactly: a token-level HMM with real dependence, a noisy oracle
at several error levels (several independent noise draws per level), and one token
per step in each order, with ``KL(q ‖ p)`` and ``KL(p ‖ q)`` computed by
enumerating the decoder's output distribution. Standard errors are over the noise
draws.

``random`` draws a new order for every sequence, so its output is the mixture
``E_π q_π`` and, KL being convex, ``KL(E_π q_π ‖ p) ≤ E_π KL(q_π ‖ p)``: it gains
from averaging the model's errors over orders. ``fixed-random`` keeps one random
permutation per model, which estimates ``E_π KL(q_π ‖ p)``, the quantity of the
paper's Lemma 4.1 for a fixed order.
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

ORDERS = (
    "l2r",
    "r2l",
    "random",
    "fixed-random",
    "entropy",
    "confidence",
    "margin",
)


@dataclass(frozen=True)
class OrderStudy:
    """Settings of the order study.

    Parameters
    ----------
    levels : tuple of float
        Model-error levels of :class:`~pmdm.predictors.noisy.NoisyPredictor`.
    seeds : int
        Independent noise draws (models) per level.
    orders : tuple of str
    length, num_states, vocab_size : int
        The token HMM: ``T``, ``K`` hidden states, ``V`` tokens (``V^T`` at most
        :data:`~pmdm.models.base.MAX_ENUMERATION`).
    stay : float
        Hidden self-transition probability (the rest spread evenly).
    emit_peak : float
        Probability that state ``k`` emits token ``k mod V`` (the rest spread
        evenly).
    seed : int
        Fixes every number.
    """

    levels: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
    seeds: int = 8
    orders: tuple[str, ...] = ORDERS
    length: int = 8
    num_states: int = 3
    vocab_size: int = 3
    stay: float = 0.8
    emit_peak: float = 0.85
    seed: int = 0

    def __post_init__(self):
        for level in self.levels:
            check_real("level", level, low=0.0)
        check_int("seeds", self.seeds, minimum=1)
        check_int("seed", self.seed, minimum=0)
        for order in self.orders:
            if order not in ORDERS:
                raise ValueError(f"orders: {order!r} is not one of {ORDERS}")
        self.target()
        if self.vocab_size**self.length > MAX_ENUMERATION:
            raise ValueError(
                f"length={self.length}, vocab_size={self.vocab_size}: the order study "
                f"is exact and needs V^T <= {MAX_ENUMERATION}"
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
    return (float(row["level"]), int(row["draw"]))


def run_order_study(
    study: OrderStudy, out_dir, *, progress: bool = False, overwrite: bool = False
) -> list[dict]:
    """Run the study, one saved row per (level, noise draw) with every order.

    Writes ``results.json`` (raw rows and the ``summary``), ``results.csv`` (the
    summary), ``results.md`` and ``results.png`` into ``out_dir``.

    Returns
    -------
    list of dict
        The summary: one row per (level, order) with ``reverse_kl``,
        ``forward_kl``, ``advantage_over_random`` (paired difference of reverse KL,
        random minus this order) each ``{"estimate", "stderr"}``, and the realized
        ``local_kl`` of the model.
    """
    store = ResultStore(out_dir, "order", study.settings(), _row_key, overwrite)
    target = study.target()
    oracle = OraclePredictor(target)
    x_all = target.enumerate_sequences()
    log_p = target.log_prob(x_all)
    todo = [(level, draw) for level in study.levels for draw in range(study.seeds)]
    for level, draw in tqdm(
        todo, desc="order study", disable=not progress, unit="model"
    ):
        if store.done((float(level), draw)):
            continue
        noise_seed = derived_seed(study.seed, "order", draw)
        model = NoisyPredictor(oracle, level=level, seed=noise_seed)
        row = {"level": float(level), "draw": draw, "noise_seed": noise_seed}
        # Realized model error: mean local KL over contexts drawn from the target
        # with a uniformly random number of positions revealed.
        gen = torch.Generator().manual_seed(derived_seed(study.seed, "contexts", draw))
        contexts = x_all[torch.randint(len(x_all), (512,), generator=gen)]
        keep = torch.rand(contexts.shape, generator=gen, dtype=torch.float64)
        keep = keep < torch.rand(512, 1, generator=gen, dtype=torch.float64)
        contexts = torch.where(keep, contexts, oracle.mask_id)
        local = model.mean_local_kl(contexts)
        row["local_kl"] = {"estimate": local.mean, "stderr": _finite(local.stderr)}
        for order in study.orders:
            policy = order
            if order == "fixed-random":
                # One uniformly random permutation per model, kept for the whole
                # decode: averaged over draws, E_π KL(q_π ‖ p), where "random"
                # (a new order per sequence) gives KL(E_π q_π ‖ p).
                perm_gen = torch.Generator().manual_seed(noise_seed)
                policy = torch.randperm(target.length, generator=perm_gen).tolist()
            log_q = output_distribution(Decoder(policy), model, target.length).log_q
            row[order] = {
                "reverse_kl": float(kl_divergence(log_q, log_p)),
                "forward_kl": float(kl_divergence(log_p, log_q)),
            }
        store.add(row)
    summary = summarize(study, store.rows)
    store.save(summary=summary, note=f"Seed {study.seed} fixes every number.")
    out = Path(out_dir)
    atomic_write_text(out / "results.csv", rows_to_csv(summary))
    atomic_write_text(out / "results.md", order_markdown(study, summary))
    atomic_write_bytes(out / "results.png", order_figure(study, summary))
    return summary


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _mean_se(values: list[float]) -> dict:
    t = torch.tensor(values, dtype=torch.float64)
    if torch.isinf(t).any():
        return {"estimate": math.inf, "stderr": 0.0}
    se = t.std().item() / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"estimate": t.mean().item(), "stderr": se}


def summarize(study: OrderStudy, rows: list[dict]) -> list[dict]:
    """Mean and standard error over noise draws, per (level, order)."""
    out = []
    for level in study.levels:
        group = [r for r in rows if r["level"] == float(level)]
        if not group:
            continue
        local = _mean_se([r["local_kl"]["estimate"] for r in group])
        for order in study.orders:
            rev = [r[order]["reverse_kl"] for r in group]
            fwd = [r[order]["forward_kl"] for r in group]
            entry = {
                "level": float(level),
                "order": order,
                "local_kl": local,
                "reverse_kl": _mean_se(rev),
                "forward_kl": _mean_se(fwd),
                "draws": len(group),
            }
            if "random" in study.orders:
                paired = [
                    r["random"]["reverse_kl"] - r[order]["reverse_kl"] for r in group
                ]
                entry["advantage_over_random"] = _mean_se(paired)
            out.append(entry)
    return out


def _fmt(value: dict) -> str:
    est, se = value["estimate"], value["stderr"]
    if isinstance(est, str) or not math.isfinite(est):
        return "∞"
    return f"{est:.4f} ± {se:.4f}"


def order_markdown(study: OrderStudy, summary: list[dict]) -> str:
    """Markdown: one table per measure, levels as rows, orders as columns."""
    text = (
        "# Order study: one token per step with a noisy oracle\n\n"
        f"Token HMM: T={study.length}, K={study.num_states}, V={study.vocab_size}, "
        f"stay={study.stay}, emit_peak={study.emit_peak}. Exact KLs by enumeration; "
        f"± one standard error over {study.seeds} noise draws per level. Seed "
        f"{study.seed} fixes every number.\n"
    )
    for measure, title in [
        ("reverse_kl", "KL(q ‖ p), nats"),
        ("forward_kl", "KL(p ‖ q), nats"),
        ("advantage_over_random", "KL(q_random ‖ p) − KL(q_order ‖ p), paired, nats"),
    ]:
        if not any(measure in e for e in summary):
            continue
        header = ["level", "local KL"] + list(study.orders)
        body = []
        for level in study.levels:
            entries = {e["order"]: e for e in summary if e["level"] == float(level)}
            if not entries:
                continue
            first = next(iter(entries.values()))
            body.append(
                [f"{level:g}", _fmt(first["local_kl"])]
                + [_fmt(entries[o][measure]) for o in study.orders]
            )
        text += f"\n## {title}\n\n" + markdown_table(header, body)
    return text


def order_figure(study: OrderStudy, summary: list[dict]) -> bytes:
    """PNG: reverse and forward KL against the model's realized local KL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    for ax, measure, title in [
        (axes[0], "reverse_kl", "KL(q ‖ p) (nats)"),
        (axes[1], "forward_kl", "KL(p ‖ q) (nats)"),
    ]:
        for i, order in enumerate(study.orders):
            entries = [e for e in summary if e["order"] == order]
            xs = [e["local_kl"]["estimate"] for e in entries]
            ys = [e[measure]["estimate"] for e in entries]
            es = [e[measure]["stderr"] for e in entries]
            ax.errorbar(
                xs,
                ys,
                yerr=es,
                marker="os^vDx"[i % 6],
                capsize=3,
                markersize=4,
                label=order,
            )
        ax.set_xlabel("mean local KL of the model (nats)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0].legend(frameon=False, fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    return buffer.getvalue()
