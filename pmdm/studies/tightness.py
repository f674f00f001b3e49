"""How tight are the bounds? Measured against bound for three statements.

* **Proposition 5.1** (Zhang et al. 2026, arXiv 2602.00286, Eq. 19) on the
  Block-HMM: the proposals that the rejection sampler of
  :mod:`pmdm.decoding.samplers` needs to draw one block exactly, measured by
  decoding (Monte Carlo, where the count is affordable) and exactly from the
  decoder's enumerated expected cost, against ``M = sup p/q`` and the lower bound
  ``exp(TC→)``, across the parity noise ``η``, the block size ``B`` and the latent
  posterior ``p(z | x_P)``, which the context (a prompt block with ``k`` content
  ones) sets.
* **Li and Cai** (arXiv 2505.21400) and **Chen, Cong and Li** (arXiv 2511.04647)
  on random-order schedules: the error ``E_π KL(p ‖ q_π)`` over uniformly random
  positions, enumerated exactly (:func:`pmdm.theory.schedules.random_order_kl`),
  against Li and Cai's bound and Chen, Cong and Li's formula, with the KL of the
  random-order decoder's own output law (a mixture over orders, exact through
  :func:`pmdm.decoding.exact.output_distribution`) beside them.
* **Lemma C.3** (Markov): ``Pr_q[p(x) ≤ ε]`` of the factorized block decoder on
  the Block-HMM against ``E_q[−log p] / log(1/ε)``, across ``ε`` and ``η``.

Every number is exact except the Monte Carlo proposal counts, which carry standard
errors; rows are saved as they finish and a rerun resumes.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pmdm.decoding.block import FactorizedBlockGuide
from pmdm.decoding.decoder import Decoder
from pmdm.decoding.exact import output_distribution
from pmdm.decoding.samplers import Rejection
from pmdm.decoding.schedules import FixedSize, StepsSchedule
from pmdm.metrics.estimate import monte_carlo
from pmdm.models.block_hmm import BlockHMM
from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget
from pmdm.ops.logspace import kl_divergence, xlogy
from pmdm.ops.validation import check_int, check_real
from pmdm.predictors.oracle import OraclePredictor
from pmdm.studies.runner import (
    ResultStore,
    atomic_write_bytes,
    atomic_write_text,
    derived_seed,
    markdown_table,
    rows_to_csv,
)
from pmdm.theory.schedules import information_curve_kl, li_cai_bound, random_order_kl

logger = logging.getLogger(__name__)

#: The three parts of the study.
PARTS = ("prop51", "schedules", "markov")

#: Targets of the schedule part.
SCHEDULE_TARGETS = ("token-hmm", "block-hmm", "parity")

#: Proposals one Monte Carlo decoding call draws at most (memory of the sampler).
_CHUNK = 100


@dataclass(frozen=True)
class TightnessStudy:
    """Settings of the tightness study.

    Parameters
    ----------
    parts : tuple of str
        Any of :data:`PARTS`.
    etas : tuple of float
        Parity noise levels of the Proposition 5.1 part.
    block_sizes : tuple of int
        Block sizes ``B >= 2`` of the Proposition 5.1 part.
    num_states, stay, rho
        The Block-HMM's latent chain (the paper's ``K = 2``, ``a = 0.9``,
        ``ρ = (0.9, 0.1)``).
    n_runs : int
        Rejection-sampler decodes per Proposition 5.1 row (Monte Carlo).
    max_simulated_m : float
        Decode only where ``M`` is at most this (the cost is ``n_runs · M``
        proposals); the exact expected count is reported everywhere.
    schedule_targets : tuple of str
        Any of :data:`SCHEDULE_TARGETS`.
    schedule_length : int
        ``T`` of the schedule targets (at most 7: the exact average enumerates
        every ordered partition).
    markov_etas : tuple of float
        Parity noise levels of the Lemma C.3 part (positive: ``η = 0`` makes the
        bound infinite).
    markov_block_size, markov_length : int
        The Block-HMM of the Lemma C.3 part (``2^T`` sequences are enumerated).
    epsilons : tuple of float
        Thresholds ``ε`` in ``(0, 1)`` of the Lemma C.3 part.
    seed : int
        Fixes every number.
    """

    parts: tuple[str, ...] = PARTS
    etas: tuple[float, ...] = (1e-8, 1e-6, 1e-4, 1e-2)
    block_sizes: tuple[int, ...] = (2, 4, 6, 8)
    num_states: int = 2
    stay: float = 0.9
    rho: tuple[float, ...] = (0.9, 0.1)
    n_runs: int = 400
    max_simulated_m: float = 1000.0
    schedule_targets: tuple[str, ...] = SCHEDULE_TARGETS
    schedule_length: int = 6
    markov_etas: tuple[float, ...] = (1e-8, 1e-6, 1e-4, 1e-2)
    markov_block_size: int = 8
    markov_length: int = 16
    epsilons: tuple[float, ...] = (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12)
    seed: int = 0

    def __post_init__(self):
        for part in self.parts:
            if part not in PARTS:
                raise ValueError(f"parts: {part!r} is not one of {PARTS}")
        if not self.parts:
            raise ValueError("parts=(): expected at least one of " + repr(PARTS))
        for eta in (*self.etas, *self.markov_etas):
            check_real("eta", eta, low=0.0, high=1.0)
        for eta in self.markov_etas:
            check_real("markov_etas[]", eta, low=0.0, high=1.0, low_open=True)
        for B in self.block_sizes:
            check_int("block_sizes[]", B, minimum=2)
        check_int("n_runs", self.n_runs, minimum=2)
        check_real("max_simulated_m", self.max_simulated_m, low=1.0)
        for name in self.schedule_targets:
            if name not in SCHEDULE_TARGETS:
                raise ValueError(
                    f"schedule_targets: {name!r} is not one of {SCHEDULE_TARGETS}"
                )
        T = check_int("schedule_length", self.schedule_length, minimum=2)
        if T > 7:
            raise ValueError(
                f"schedule_length={T}: expected at most 7 (every ordered partition of "
                "the positions is enumerated)"
            )
        for eps in self.epsilons:
            check_real(
                "epsilons[]", eps, low=0.0, high=1.0, low_open=True, high_open=True
            )
        check_int("seed", self.seed, minimum=0)
        if self.markov_length > 16:
            raise ValueError(
                f"markov_length={self.markov_length}: expected at most 16 (2^T "
                "sequences are enumerated)"
            )
        B = self.block_sizes[0] if self.block_sizes else 2
        self.block_hmm(B, B, 0.0)
        self.block_hmm(self.markov_block_size, self.markov_length, 0.5)

    def block_hmm(self, block_size: int, length: int, eta: float) -> BlockHMM:
        return BlockHMM(self.num_states, self.stay, self.rho, block_size, length, eta)

    def settings(self) -> dict:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


def _row_key(row: dict) -> tuple:
    part = row["part"]
    if part == "prop51":
        return (part, float(row["eta"]), int(row["block_size"]), row["context"])
    if part == "schedules":
        return (part, row["target"], row["schedule"])
    return (part, float(row["eta"]), float(row["epsilon"]))


# -- Proposition 5.1 ------------------------------------------------------------------


def contexts(block_size: int) -> list[str]:
    """Context labels of a block size: ``"prior"`` (no prompt) and ``"k=j"`` (a
    prompt block with ``j`` content ones and the matching parity bit)."""
    return ["prior"] + [f"k={j}" for j in range(block_size)]


def _prompt(block_size: int, context: str) -> torch.Tensor | None:
    if context == "prior":
        return None
    ones = int(context.split("=")[1])
    content = [1] * ones + [0] * (block_size - 1 - ones)
    return torch.tensor([ones % 2, *content], dtype=torch.long)


def proposition51_row(study: TightnessStudy, eta: float, B: int, context: str) -> dict:
    """One row of the Proposition 5.1 part: the last block given the context."""
    prompt = _prompt(B, context)
    T = B if prompt is None else 2 * B
    hmm = study.block_hmm(B, T, eta)
    oracle = OraclePredictor(hmm)
    tokens = torch.full((T,), hmm.mask_id, dtype=torch.long)
    if prompt is not None:
        tokens[:B] = prompt
    # The latent law of the decoded block given the context.
    filled = torch.where(tokens == hmm.mask_id, 0, tokens)
    log_pred = hmm.block_predictive(filled.unsqueeze(0))[0, -1]
    tc, _ = hmm.block_tc(log_pred)
    log_p, log_q, _ = hmm.block_class_log_probs(log_pred)
    ratio = torch.where(torch.isfinite(log_p), log_p - log_q, -torch.inf)
    m = float(ratio.max().exp())
    decoder = Decoder("l2r", FixedSize(B), Rejection(max_tries=10**7))
    expected = output_distribution(decoder, oracle, T, tokens=tokens).proposals
    row = {
        "part": "prop51",
        "eta": float(eta),
        "block_size": B,
        "context": context,
        "belief": float(log_pred[0].exp()),
        "tc_forward": float(tc),
        "exp_tc": math.exp(float(tc)),
        "M": m,
        "proposals_exact": expected,
        "exp_tc_over_M": math.exp(float(tc)) / m,
    }
    if m <= study.max_simulated_m:
        seed = derived_seed(study.seed, "prop51", float(eta), B, context)
        gen = torch.Generator().manual_seed(seed)
        counts = []
        for start in range(0, study.n_runs, _CHUNK):
            n = min(_CHUNK, study.n_runs - start)
            out = decoder.decode(oracle, tokens.expand(n, T).clone(), generator=gen)
            counts.append(out.trajectory.proposals.to(torch.float64))
        est = monte_carlo(torch.cat(counts))
        row["proposals_mc"] = {"estimate": est.estimate, "stderr": est.stderr}
        row["n_runs"] = study.n_runs
        row["row_seed"] = seed
    else:
        row["proposals_mc"] = None
        row["n_runs"] = 0
    return row


# -- schedules ------------------------------------------------------------------------


def schedule_target(name: str, length: int):
    """The schedule part's targets: a two-state token HMM, a Block-HMM with blocks
    of three, and ``T`` bits uniform on even parity."""
    if name == "token-hmm":
        trans = torch.tensor([[0.8, 0.2], [0.2, 0.8]], dtype=torch.float64)
        emit = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
        return TokenHMM(torch.ones(2, dtype=torch.float64) / 2, trans, emit, length)
    if name == "block-hmm":
        B = 3 if length % 3 == 0 else (2 if length % 2 == 0 else length)
        return BlockHMM(2, 0.9, (0.9, 0.1), block_size=B, length=length, eta=1e-2)
    x = torch.cartesian_prod(*[torch.arange(2)] * length).reshape(-1, length)
    even = (x.sum(-1) % 2 == 0).to(torch.float64)
    return TableTarget(2, x[even > 0], even[even > 0] / even.sum())


def schedules(length: int) -> list[tuple[str, object]]:
    """``FixedSize(k)`` for ``k = 1..T`` and ``StepsSchedule(s)`` for ``s = 2..T−1``
    (LLaDA's split, front-loaded), as ``(label, schedule)``."""
    out = [(f"fixed-{k}", FixedSize(k)) for k in range(1, length + 1)]
    out += [(f"steps-{s}", StepsSchedule(s)) for s in range(2, length)]
    return out


def step_sizes(schedule, length: int, vocab_size: int) -> tuple[int, ...]:
    """The sizes ``s_1..s_K`` a schedule reveals on an all-masked sequence (they do
    not depend on the order or the values for the fixed and steps schedules)."""
    masked = torch.ones(1, length, dtype=torch.bool)
    dummy = torch.zeros(1, length, vocab_size, dtype=torch.float64)
    sizes = []
    while masked.any():
        eligible = schedule.eligible(torch.ones_like(masked), masked)
        order = torch.sort(
            eligible.to(torch.int8), descending=True, stable=True
        ).indices
        select = schedule.select(dummy, order, eligible, torch.ones_like(masked))
        sizes.append(int(select.sum()))
        masked &= ~select
    return tuple(sizes)


def schedule_row(study: TightnessStudy, name: str, label: str, schedule) -> dict:
    """One row of the schedule part."""
    T = study.schedule_length
    target = schedule_target(name, T)
    x = target.enumerate_sequences()
    log_p = target.log_prob(x).to(torch.float64)
    table = log_p.reshape((target.vocab_size,) * T)
    sizes = step_sizes(schedule, T, target.vocab_size)
    law = output_distribution(Decoder("random", schedule), OraclePredictor(target), T)
    expected = float(random_order_kl(table, sizes))
    bound = float(li_cai_bound(table, sizes))
    return {
        "part": "schedules",
        "target": name,
        "schedule": label,
        "sizes": list(sizes),
        "steps": len(sizes),
        "kl_expected": expected,
        "ccl_formula": float(information_curve_kl(table, sizes)),
        "li_cai_bound": bound,
        "kl_mixture": float(kl_divergence(log_p, law.log_q)),
        "reverse_kl_mixture": float(kl_divergence(law.log_q, log_p)),
        "expected_over_li_cai": expected / bound if bound > 0 else math.nan,
    }


# -- Lemma C.3 --------------------------------------------------------------------------


def markov_rows(study: TightnessStudy, eta: float) -> list[dict]:
    """Rows of the Lemma C.3 part for one ``η``: one per ``ε``."""
    hmm = study.block_hmm(study.markov_block_size, study.markov_length, eta)
    x = hmm.enumerate_sequences()
    log_p = hmm.log_prob(x).to(torch.float64)
    log_q = FactorizedBlockGuide(hmm).block_log_probs(x).sum(-1)
    q = log_q.exp()
    cross = float(-xlogy(q, log_p).sum())
    rows = []
    for eps in study.epsilons:
        measured = float((q * (log_p <= math.log(eps)).to(q.dtype)).sum())
        bound = cross / math.log(1 / eps)
        rows.append(
            {
                "part": "markov",
                "eta": float(eta),
                "epsilon": float(eps),
                "incoherence": measured,
                "cross_entropy": cross,
                "markov_bound": bound,
                "slack": bound - measured,
                "measured_over_bound": measured / bound if bound > 0 else math.nan,
            }
        )
    return rows


# -- the study ------------------------------------------------------------------------


def _tasks(study: TightnessStudy) -> list[tuple]:
    tasks: list[tuple] = []
    if "prop51" in study.parts:
        for B in study.block_sizes:
            for eta in study.etas:
                for ctx in contexts(B):
                    tasks.append(("prop51", float(eta), B, ctx))
    if "schedules" in study.parts:
        for name in study.schedule_targets:
            for label, _ in schedules(study.schedule_length):
                tasks.append(("schedules", name, label))
    if "markov" in study.parts:
        for eta in study.markov_etas:
            tasks.append(("markov", float(eta)))
    return tasks


def run_tightness_study(
    study: TightnessStudy,
    out_dir: str | Path,
    *,
    progress: bool = False,
    overwrite: bool = False,
) -> list[dict]:
    """Run the study, saving every row as it finishes, and write the report.

    Writes into ``out_dir``: ``results.json`` (settings and rows), ``results.csv``
    (every row), ``prop51.csv``, ``schedules.csv``, ``markov.csv`` (one per part
    run), ``results.md`` and ``prop51.png``, ``schedules.png``, ``markov.png``.

    Returns
    -------
    list of dict
        The rows, each with a ``part`` field (see :data:`PARTS`).
    """
    store = ResultStore(out_dir, "tightness", study.settings(), _row_key, overwrite)
    table = dict(schedules(study.schedule_length))
    bar = tqdm(_tasks(study), desc="tightness", disable=not progress, unit="row")
    for task in bar:
        part = task[0]
        if part == "markov":
            keys = [("markov", task[1], float(e)) for e in study.epsilons]
            if all(store.done(k) for k in keys):
                continue
            for row in markov_rows(study, task[1]):
                store.add(row)
            continue
        if store.done(task):
            continue
        bar.set_postfix_str(" ".join(str(t) for t in task[1:]))
        if part == "prop51":
            row = proposition51_row(study, *task[1:])
        else:
            row = schedule_row(study, task[1], task[2], table[task[2]])
        store.add(row)
        logger.info("tightness: %s done", task)
    # Rows in task order (a resumed run appends in completion order).
    order = {task: i for i, task in enumerate(_tasks(study))}
    rows = sorted(store.rows, key=lambda r: order.get(_task_of_row(r), len(order)))
    store.rows = rows
    store.save(note=f"Seed {study.seed} fixes every number.")
    out = Path(out_dir)
    atomic_write_text(out / "results.csv", rows_to_csv(rows))
    for part in study.parts:
        part_rows = [r for r in rows if r["part"] == part]
        atomic_write_text(out / f"{part}.csv", rows_to_csv(part_rows))
    atomic_write_text(out / "results.md", tightness_markdown(study, rows))
    figures = {
        "prop51": proposition51_figure,
        "schedules": schedules_figure,
        "markov": markov_figure,
    }
    for part in study.parts:
        part_rows = [r for r in rows if r["part"] == part]
        if part_rows:
            atomic_write_bytes(out / f"{part}.png", figures[part](part_rows))
    return rows


def _task_of_row(row: dict) -> tuple:
    key = _row_key(row)
    return key[:2] if row["part"] == "markov" else key


# -- reports ------------------------------------------------------------------------


def _g(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        est, se = value["estimate"], value["stderr"]
        return f"{est:.{digits}g} ± {se:.2g}"
    if isinstance(value, str):
        return {"inf": "∞", "nan": "–"}.get(value, value)
    if math.isnan(value):
        return "–"
    return f"{value:.{digits}g}"


def tightness_markdown(study: TightnessStudy, rows: list[dict]) -> str:
    """Markdown report: one section per part."""
    text = (
        "# Tightness of the bounds: measured against bound\n\n"
        f"Seed {study.seed} fixes every number; exact unless marked ± (one standard "
        "error).\n"
    )
    prop = [r for r in rows if r["part"] == "prop51"]
    if prop:
        header = [
            "B",
            "η",
            "context",
            "p(z=1 ∣ context)",
            "exp(TC→)",
            "M",
            "E[proposals] (exact)",
            "proposals (decoded)",
            "exp(TC→)/M",
        ]
        body = [
            [
                str(r["block_size"]),
                f"{r['eta']:g}",
                r["context"],
                _g(r["belief"], 3),
                _g(r["exp_tc"]),
                _g(r["M"]),
                _g(r["proposals_exact"]),
                _g(r["proposals_mc"]),
                _g(r["exp_tc_over_M"], 3),
            ]
            for r in prop
        ]
        text += (
            "\n## Proposition 5.1: proposals of the rejection sampler (Block-HMM)\n\n"
            f"K={study.num_states}, a={study.stay}, ρ={list(study.rho)}; the block is "
            "decoded in one step by `Decoder('l2r', FixedSize(B), Rejection())` with "
            "the oracle, after a prompt block with k content ones (or none: prior); "
            "z=1 is the latent state of rate ρ_1. "
            f"Decoded: {study.n_runs} runs where M ≤ {study.max_simulated_m:g}.\n\n"
        )
        text += markdown_table(header, body)
    sched = [r for r in rows if r["part"] == "schedules"]
    if sched:
        header = [
            "target",
            "schedule",
            "sizes",
            "E_π KL(p‖q_π)",
            "Chen–Cong–Li formula",
            "Li–Cai bound",
            "KL(p‖q_mix)",
            "E KL / bound",
        ]
        body = [
            [
                r["target"],
                r["schedule"],
                str(r["sizes"]),
                _g(r["kl_expected"]),
                _g(r["ccl_formula"]),
                _g(r["li_cai_bound"]),
                _g(r["kl_mixture"]),
                _g(r["expected_over_li_cai"], 3),
            ]
            for r in sched
        ]
        text += (
            "\n## Li–Cai and Chen–Cong–Li: random-order schedules (oracle)\n\n"
            f"T={study.schedule_length}. E_π KL averages the forward KL of every "
            "ordered partition; q_mix is the random-order decoder's own output law "
            "(exact enumeration), whose KL is at most E_π KL by convexity.\n\n"
        )
        text += markdown_table(header, body)
    markov = [r for r in rows if r["part"] == "markov"]
    if markov:
        header = [
            "η",
            "ε",
            "Pr_q[p ≤ ε]",
            "E_q[−log p]",
            "bound",
            "slack",
            "measured/bound",
        ]
        body = [
            [
                f"{r['eta']:g}",
                f"{r['epsilon']:g}",
                _g(r["incoherence"]),
                _g(r["cross_entropy"]),
                _g(r["markov_bound"]),
                _g(r["slack"]),
                _g(r["measured_over_bound"], 3),
            ]
            for r in markov
        ]
        text += (
            "\n## Lemma C.3: the Markov bound on incoherence (factorized blocks)\n\n"
            f"Block-HMM with B={study.markov_block_size}, T={study.markov_length}, "
            "factorized block decoder, all sequences enumerated.\n\n"
        )
        text += markdown_table(header, body)
    return text


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig, plt) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    return buffer.getvalue()


def proposition51_figure(rows: list[dict]) -> bytes:
    """PNG: ``M``, ``exp(TC→)`` and the measured proposals against the latent
    belief, one panel per block size, one colour per ``η``."""
    plt = _figure()
    sizes = sorted({r["block_size"] for r in rows})
    etas = sorted({r["eta"] for r in rows})
    fig, axes = plt.subplots(
        1, len(sizes), figsize=(3.4 * len(sizes), 3.4), constrained_layout=True
    )
    axes = [axes] if len(sizes) == 1 else list(axes)
    for ax, B in zip(axes, sizes, strict=True):
        for i, eta in enumerate(etas):
            sel = sorted(
                (r for r in rows if r["block_size"] == B and r["eta"] == eta),
                key=lambda r: r["belief"],
            )
            xs = [r["belief"] for r in sel]
            color = f"C{i}"
            ax.plot(xs, [r["M"] for r in sel], "-", color=color, label=f"M, η={eta:g}")
            ax.plot(xs, [r["exp_tc"] for r in sel], ":", color=color)
            ax.plot(xs, [r["proposals_exact"] for r in sel], "o", color=color, ms=3)
            mc = [(r["belief"], r["proposals_mc"]) for r in sel if r["proposals_mc"]]
            if mc:
                ax.errorbar(
                    [b for b, _ in mc],
                    [v["estimate"] for _, v in mc],
                    yerr=[v["stderr"] for _, v in mc],
                    fmt="x",
                    color=color,
                    ms=5,
                    capsize=2,
                )
        ax.set_yscale("log")
        ax.set_xlabel("p(z = 1 | context)")
        ax.set_title(f"B = {B}")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("proposals per block")
    axes[0].legend(
        frameon=False, fontsize=7, title="— M   ··· exp(TC→)", title_fontsize=7
    )
    fig.suptitle(
        "Prop. 5.1: rejection sampling (o exact expected count, x decoded ± se)",
        fontsize=9,
    )
    return _png(fig, plt)


def schedules_figure(rows: list[dict]) -> bytes:
    """PNG: the expected KL, Chen–Cong–Li's formula, the mixture's KL and Li and
    Cai's bound against the number of steps, one panel per target.

    Lines join the balanced schedules (step sizes differing by at most one, one per
    number of steps); the unbalanced ones are single markers.
    """
    plt = _figure()
    targets = list(dict.fromkeys(r["target"] for r in rows))
    fig, axes = plt.subplots(
        1, len(targets), figsize=(3.6 * len(targets), 3.4), constrained_layout=True
    )
    axes = [axes] if len(targets) == 1 else list(axes)
    series = [
        ("li_cai_bound", "C3", "s", "Li–Cai bound"),
        ("ccl_formula", "C0", "+", "Chen–Cong–Li formula"),
        ("kl_expected", "C0", "o", "E_π KL(p ‖ q_π)"),
        ("kl_mixture", "C2", "^", "KL(p ‖ q_mix)"),
    ]
    for ax, name in zip(axes, targets, strict=True):
        sel = [r for r in rows if r["target"] == name]
        balanced = {}
        for r in sel:
            if max(r["sizes"]) - min(r["sizes"]) <= 1:
                balanced.setdefault(r["steps"], r)
        line = [balanced[k] for k in sorted(balanced)]
        others = [r for r in sel if r not in line]
        for key, color, marker, label in series:
            ax.plot(
                [r["steps"] for r in line],
                [r[key] for r in line],
                marker=marker,
                color=color,
                linestyle="--" if key == "li_cai_bound" else "-",
                mfc="none",
                ms=5,
                lw=1,
                label=label,
            )
            ax.plot(
                [r["steps"] for r in others],
                [r[key] for r in others],
                marker=marker,
                color=color,
                linestyle="none",
                mfc="none",
                ms=5,
                alpha=0.6,
            )
        ax.set_xlabel("number of steps K")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("nats")
    axes[0].legend(frameon=False, fontsize=7)
    fig.suptitle(
        "Random-order schedules, oracle: lines join balanced step sizes", fontsize=9
    )
    return _png(fig, plt)


def markov_figure(rows: list[dict]) -> bytes:
    """PNG: the Markov bound and the measured incoherence against ``ε``, one colour
    per ``η``."""
    plt = _figure()
    etas = sorted({r["eta"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    for i, eta in enumerate(etas):
        sel = sorted((r for r in rows if r["eta"] == eta), key=lambda r: r["epsilon"])
        eps = [r["epsilon"] for r in sel]
        color = f"C{i}"
        axes[0].plot(eps, [r["markov_bound"] for r in sel], "--", color=color)
        axes[0].plot(
            eps,
            [r["incoherence"] for r in sel],
            "o-",
            color=color,
            ms=4,
            label=f"η={eta:g}",
        )
        axes[1].plot(
            eps,
            [r["measured_over_bound"] for r in sel],
            "o-",
            color=color,
            ms=4,
            label=f"η={eta:g}",
        )
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("ε")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].set_title("Pr_q[p ≤ ε] (o) and E_q[−log p]/log(1/ε) (--)")
    axes[1].set_title("measured / bound")
    axes[1].legend(frameon=False, fontsize=7)
    return _png(fig, plt)


# -- command line -----------------------------------------------------------------------


def add_tightness_parser(study_subparsers) -> None:
    """Add ``tightness`` to the subparsers of ``pmdm study``.

    Usage: ``pmdm study tightness [--parts ...] [--etas ...] [--block-sizes ...]
    [--n-runs N] [--schedule-length T] [--epsilons ...] [--seed S] [--out DIR]
    [--overwrite] [--no-progress]``.
    """
    from pathlib import Path as _Path

    defaults = TightnessStudy()
    p = study_subparsers.add_parser(
        "tightness",
        help="bounds against measured values: Prop. 5.1, Li–Cai / Chen–Cong–Li, Lemma C.3",
        description=(
            "How tight are the bounds? Rejection-sampling proposals against M and "
            "exp(TC) on the Block-HMM (Prop. 5.1); random-order schedule errors "
            "against Li and Cai's bound and Chen, Cong and Li's formula; the slack "
            "of the Markov bound of Lemma C.3. Exact where enumerable."
        ),
    )
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument(
        "--etas",
        type=float,
        nargs="+",
        default=list(defaults.etas),
        help="parity noise of the Prop. 5.1 part (default: %(default)s)",
    )
    p.add_argument(
        "--block-sizes",
        type=int,
        nargs="+",
        default=list(defaults.block_sizes),
        help="B (default: %(default)s)",
    )
    p.add_argument(
        "--n-runs",
        type=int,
        default=defaults.n_runs,
        help="decodes per Prop. 5.1 row (default: %(default)s)",
    )
    p.add_argument(
        "--max-simulated-m",
        type=float,
        default=defaults.max_simulated_m,
        help="decode only where M is at most this (default: %(default)s)",
    )
    p.add_argument(
        "--schedule-targets",
        nargs="+",
        choices=SCHEDULE_TARGETS,
        default=list(SCHEDULE_TARGETS),
    )
    p.add_argument(
        "--schedule-length",
        type=int,
        default=defaults.schedule_length,
        help="T of the schedule targets, at most 7 (default: %(default)s)",
    )
    p.add_argument(
        "--markov-etas", type=float, nargs="+", default=list(defaults.markov_etas)
    )
    p.add_argument("--epsilons", type=float, nargs="+", default=list(defaults.epsilons))
    p.add_argument("--seed", type=int, default=0, help="fixes every number")
    p.add_argument("--out", type=_Path, default=_Path("results/tightness"))
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_tightness)


def _run_tightness(args) -> int:
    import sys

    study = TightnessStudy(
        parts=tuple(args.parts),
        etas=tuple(args.etas),
        block_sizes=tuple(args.block_sizes),
        n_runs=args.n_runs,
        max_simulated_m=args.max_simulated_m,
        schedule_targets=tuple(args.schedule_targets),
        schedule_length=args.schedule_length,
        markov_etas=tuple(args.markov_etas),
        epsilons=tuple(args.epsilons),
        seed=args.seed,
    )
    run_tightness_study(
        study, args.out, progress=not args.no_progress, overwrite=args.overwrite
    )
    sys.stdout.write((args.out / "results.md").read_text())
    sys.stdout.write(
        f"Wrote results.json, CSV, results.md and PNG files to {args.out}\n"
    )
    return 0
