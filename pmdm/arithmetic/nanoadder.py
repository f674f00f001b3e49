"""NanoAdder: small causal transformers that write a sum left to right or right to left.

The paper's autoregressive order study (``THEORY.md`` §4, Appendix D): character-level
causal transformers over digits, ``+``, ``=`` and pad, context 48, trained with the
loss on the sum only, a curriculum on operand length, AdamW and a cosine schedule, at
several sizes, each once writing the sum most significant digit first (``"l2r"``) and
once least significant digit first (``"r2l"``, carries then flow in the writing
order). Both use the fixed-width layout of :mod:`pmdm.arithmetic.tokenizer`; ``"r2l"``
is its ``reverse_answer=True`` variant. A model is scored on the suite by greedy
decoding of the 11 answer positions.

:func:`run_sweep` trains and scores every (size, order) pair, saving a checkpoint
and a result row per finished run atomically, skips finished runs when restarted,
and plots accuracy against parameter count for both orders.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pmdm.arithmetic._io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_state_dict,
    read_checkpoint_config,
    save_checkpoint,
)
from pmdm.arithmetic._training import (
    TrainReport,
    TrainSettings,
    sample_operands,
    train_loop,
)
from pmdm.arithmetic._transformer import Transformer, TransformerConfig
from pmdm.arithmetic.evaluate import evaluate_causal, logits_fn
from pmdm.arithmetic.scoring import ArithmeticScore
from pmdm.arithmetic.suite import Problem, load_suite
from pmdm.arithmetic.tokenizer import PAD_ID, VOCAB, AdditionLayout
from pmdm.ops.validation import check_choice, check_int, check_positive

__all__ = [
    "CONTEXT",
    "NANOADDER_SIZES",
    "NANOADDER_VOCAB_SIZE",
    "ORDERS",
    "NanoAdder",
    "NanoAdderConfig",
    "causal_sum_loss",
    "evaluate_nanoadder",
    "load_nanoadder",
    "plot_sweep",
    "register_cli",
    "run_sweep",
    "save_nanoadder",
    "train_nanoadder",
]

logger = logging.getLogger(__name__)

#: Context length of the paper's NanoAdder (the layout uses 33 positions of it).
CONTEXT = 48

#: Digits, '+', '=' and pad: the vocabulary without the mask token.
NANOADDER_VOCAB_SIZE = PAD_ID + 1

#: Writing orders of the sum.
ORDERS = ("l2r", "r2l")

_KIND = "pmdm.arithmetic.nanoadder.NanoAdder"
_RESULT_FILE = "result.json"


@dataclass(frozen=True)
class NanoAdderConfig:
    """Architecture and writing order of a :class:`NanoAdder`.

    Attributes
    ----------
    d_model, n_layers, n_heads, d_ff : int
        Transformer width, depth, heads and MLP width.
    order : {"l2r", "r2l"}
        Write the sum most significant digit first or least significant digit first.
    context : int
        Number of position embeddings.
    """

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    order: str = "l2r"
    context: int = CONTEXT

    def __post_init__(self) -> None:
        check_choice("order", self.order, ORDERS)
        check_int("context", self.context, minimum=self.layout.length)
        self.transformer_config()

    @property
    def layout(self) -> AdditionLayout:
        """The problem layout; ``"r2l"`` writes the answer reversed."""
        return AdditionLayout(reverse_answer=self.order == "r2l")

    def transformer_config(self) -> TransformerConfig:
        """The causal backbone's config."""
        return TransformerConfig(
            vocab_size=NANOADDER_VOCAB_SIZE,
            max_len=self.context,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_ff=self.d_ff,
            causal=True,
            pad_token_id=PAD_ID,
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> NanoAdderConfig:
        """Rebuild from :meth:`to_dict`; unknown keys raise ValueError."""
        unknown = sorted(set(payload) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown NanoAdderConfig keys {unknown!r} in {payload!r}")
        return cls(**payload)


#: Sizes of the sweep, from about 20 thousand to about 1.2 million parameters.
NANOADDER_SIZES: dict[str, dict[str, int]] = {
    "xs": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 128},
    "s": {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256},
    "m": {"d_model": 128, "n_layers": 3, "n_heads": 4, "d_ff": 512},
    "l": {"d_model": 160, "n_layers": 4, "n_heads": 4, "d_ff": 640},
}


class NanoAdder(Transformer):
    """Causal character-level transformer that writes the sum after ``a+b=``.

    Parameters
    ----------
    config : NanoAdderConfig
        Architecture and order.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> model = NanoAdder(NanoAdderConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32))
    >>> model(model.layout.encode([12], [345])).logits.shape
    torch.Size([1, 33, 13])
    """

    def __init__(self, config: NanoAdderConfig) -> None:
        super().__init__(config.transformer_config())
        self.adder_config = config
        self.layout = config.layout
        self.vocab_size = NANOADDER_VOCAB_SIZE


def causal_sum_loss(model: NanoAdder, tokens: Tensor) -> Tensor:
    """Next-token cross-entropy on the answer tokens only, mean over them.

    Parameters
    ----------
    model : NanoAdder
        The model.
    tokens : Tensor, shape (N, T)
        Clean problems in ``model.layout``.

    Returns
    -------
    Tensor, shape ()
        ``-(1 / (N A)) sum_n sum_{i in answer} log p(x_i | x_<i)``.
    """
    answer = model.layout.answer_slice
    # Positions P-1 .. T-2 predict the answer tokens P .. T-1
    logits = model(tokens[:, :-1]).logits[:, answer.start - 1 :]
    return F.cross_entropy(logits.transpose(1, 2), tokens[:, answer])


def save_nanoadder(
    model: NanoAdder,
    out_dir: str | os.PathLike[str],
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` and ``model.pt`` of a NanoAdder, atomically."""
    info = {
        "tokenizer": {"vocab": list(VOCAB[:NANOADDER_VOCAB_SIZE]), "pad_id": PAD_ID},
        "num_parameters": model.num_parameters(),
        **(extra or {}),
    }
    return save_checkpoint(
        out_dir,
        kind=_KIND,
        model_config=model.adder_config.to_dict(),
        state_dict=model.state_dict(),
        extra=info,
    )


def load_nanoadder(path: str | os.PathLike[str]) -> NanoAdder:
    """Rebuild a saved :class:`NanoAdder` in eval mode.

    Raises
    ------
    ValueError
        If the folder holds no ``config.json`` of a NanoAdder.
    """
    payload = read_checkpoint_config(path, _KIND)
    model = NanoAdder(NanoAdderConfig.from_dict(payload["model"]))
    model.load_state_dict(load_state_dict(path))
    return model.eval()


def train_nanoadder(
    out_dir: str | os.PathLike[str],
    config: NanoAdderConfig | None = None,
    steps: int = 2000,
    seed: int = 0,
    *,
    batch_size: int = 128,
    lr: float = 1e-3,
    minutes: float | None = None,
    num_threads: int | None = None,
    progress: bool = False,
    **settings: Any,
) -> tuple[NanoAdder, TrainReport]:
    """Train a :class:`NanoAdder` on random addition problems, resumably.

    Parameters
    ----------
    out_dir : path-like
        Run folder: ``train_state.pt`` while training, then ``config.json`` and
        ``model.pt``.
    config : NanoAdderConfig, optional
        Architecture and order (default :class:`NanoAdderConfig`).
    steps, seed, batch_size, lr
        Optimizer steps, seed of weights and data, problems per step, peak AdamW
        learning rate (cosine schedule).
    minutes : float, optional
        Time budget; training stops early and saves when it is spent.
    num_threads : int, optional
        Call ``torch.set_num_threads`` with it (process-wide).
    progress : bool
        Show a progress bar.
    **settings
        Further fields of the training settings (``curriculum_start``, ...).

    Returns
    -------
    model : NanoAdder
        The trained model, in eval mode.
    report : TrainReport
    """
    config = config or NanoAdderConfig()
    train_settings = TrainSettings(
        steps=steps, batch_size=batch_size, seed=seed, lr=lr, **settings
    )
    max_seconds = None if minutes is None else 60 * check_positive("minutes", minutes)
    if num_threads is not None:
        torch.set_num_threads(check_int("num_threads", num_threads, minimum=1))

    torch.manual_seed(seed)
    model = NanoAdder(config)
    layout = model.layout

    def loss_fn(model: NanoAdder, step: int, generator: torch.Generator) -> Tensor:
        a, b = sample_operands(batch_size, train_settings.max_digits(step), generator)
        return causal_sum_loss(model, layout.encode(a, b))

    report = train_loop(
        model,
        loss_fn,
        train_settings,
        out_dir,
        max_seconds=max_seconds,
        progress=progress,
        desc=f"nanoadder-{config.order}",
        identity=config.to_dict(),
    )
    extra = {
        "training": {**train_settings.to_dict(), "torch_version": torch.__version__},
        "report": report.to_dict(),
    }
    save_nanoadder(model, out_dir, extra=extra)
    return model, report


def evaluate_nanoadder(
    model: NanoAdder, problems: Sequence[Problem] | None = None
) -> ArithmeticScore:
    """Greedy exact-match score of a NanoAdder (default: the whole shipped suite)."""
    problems = load_suite() if problems is None else problems
    fn = logits_fn(model)
    result, _ = evaluate_causal(
        fn, problems, model.layout, allowed=NANOADDER_VOCAB_SIZE
    )
    return result


_CSV_FIELDS = (
    "size",
    "order",
    "num_parameters",
    "steps",
    "seed",
    "seconds",
    "stopped_early",
    "n",
    "accuracy",
    "stderr",
    "edge_accuracy",
)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run_sweep(
    out_dir: str | os.PathLike[str],
    *,
    sizes: Sequence[str] = ("xs", "s", "m"),
    orders: Sequence[str] = ORDERS,
    steps: int = 2000,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    minutes_per_run: float | None = None,
    problems: Sequence[Problem] | None = None,
    num_threads: int | None = None,
    progress: bool = False,
    plot: bool = True,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Train and score NanoAdders of several sizes in both orders, resumably.

    Each run lives in ``out_dir/runs/<size>-<order>/``. When it finishes, its
    checkpoint and a ``result.json`` row are written there atomically, and the
    tables ``results.json`` and ``results.csv`` and the plot ``accuracy_vs_params.png``
    in ``out_dir`` are rewritten. A restarted sweep skips runs with a
    ``result.json`` and resumes an interrupted run from its training state.

    Parameters
    ----------
    out_dir : path-like
        Sweep folder.
    sizes : sequence of str
        Keys of :data:`NANOADDER_SIZES`.
    orders : sequence of {"l2r", "r2l"}
        Writing orders.
    steps, seed, batch_size, lr
        Training settings shared by all runs.
    minutes_per_run : float, optional
        Time budget of each run.
    problems : sequence of Problem, optional
        Problems to score on (default: the whole shipped suite).
    num_threads : int, optional
        Call ``torch.set_num_threads`` with it.
    progress : bool
        Show progress bars.
    plot : bool
        Write the plot.
    **settings
        Further training settings.

    Returns
    -------
    list of dict
        One row per run, in sweep order: size, order, parameter count, settings, wall
        time, overall and per-category accuracy.

    Raises
    ------
    ValueError
        For an unknown size or order, or a finished run with other settings.
    """
    for size in sizes:
        check_choice("sizes", size, NANOADDER_SIZES)
    for order in orders:
        check_choice("orders", order, ORDERS)
    out_dir = Path(out_dir)
    problems = load_suite() if problems is None else list(problems)
    train_settings = TrainSettings(
        steps=steps, batch_size=batch_size, seed=seed, lr=lr, **settings
    ).to_dict()

    rows = []
    for size in sizes:
        for order in orders:
            run_dir = out_dir / "runs" / f"{size}-{order}"
            result_path = run_dir / _RESULT_FILE
            config = NanoAdderConfig(**NANOADDER_SIZES[size], order=order)

            # A finished run is reused if it was made with the same settings
            if result_path.exists():
                row = _read_json(result_path)
                if (
                    row["settings"] != train_settings
                    or row["config"] != config.to_dict()
                ):
                    raise ValueError(
                        f"out_dir={str(out_dir)!r} holds a finished {size}-{order} run with "
                        f"other settings {row['settings']!r}; use another folder"
                    )
                logger.info("nanoadder sweep: %s-%s already done, skipped", size, order)
                rows.append(row)
                continue

            # Train (resuming if interrupted), score, record
            model, report = train_nanoadder(
                run_dir,
                config,
                steps,
                seed,
                batch_size=batch_size,
                lr=lr,
                minutes=minutes_per_run,
                num_threads=num_threads,
                progress=progress,
                **settings,
            )
            result = evaluate_nanoadder(model, problems)
            edge = result.by_category.get("edge")
            row = {
                "size": size,
                "order": order,
                "num_parameters": model.num_parameters(),
                "steps": report.steps_done,
                "seed": seed,
                "seconds": report.seconds,
                "stopped_early": report.stopped_early,
                "n": result.overall.n,
                "accuracy": result.overall.accuracy,
                "stderr": result.overall.stderr,
                "edge_accuracy": None if edge is None else edge.accuracy,
                "by_category": {c: a.to_dict() for c, a in result.by_category.items()},
                "config": config.to_dict(),
                "settings": train_settings,
            }
            atomic_write_json(result_path, row)
            rows.append(row)
            logger.info(
                "nanoadder sweep: %s-%s (%d parameters) trained %d steps in %.0f s, "
                "suite accuracy %.3f",
                size,
                order,
                row["num_parameters"],
                row["steps"],
                row["seconds"],
                row["accuracy"],
            )
            _write_tables(out_dir, rows, plot)
    _write_tables(out_dir, rows, plot)
    return rows


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _write_tables(out_dir: Path, rows: list[dict[str, Any]], plot: bool) -> None:
    atomic_write_json(out_dir / "results.json", rows)
    atomic_write_text(out_dir / "results.csv", _csv_text(rows))
    if plot and rows:
        plot_sweep(rows, out_dir / "accuracy_vs_params.png")


def plot_sweep(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Plot suite accuracy against parameter count, one line per order.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`run_sweep`.
    path : path-like
        PNG file to write (atomically).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``rows`` is empty.
    """
    if not rows:
        raise ValueError("rows must hold at least one sweep row, got rows=[]")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    figure = Figure(figsize=(9, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2, sharey=True)
    for ax, key, title in (
        (panels[0], "overall", f"all {rows[0]['n']} problems"),
        (panels[1], "edge", "edge cases"),
    ):
        for order, marker in zip(ORDERS, ("o", "s"), strict=True):
            # (parameters, accuracy entry) of this order's runs, smallest model first
            chosen = [
                r
                for r in rows
                if r["order"] == order and (key == "overall" or key in r["by_category"])
            ]
            chosen.sort(key=lambda r: r["num_parameters"])
            if not chosen:
                continue
            entries = [r if key == "overall" else r["by_category"][key] for r in chosen]
            params = [r["num_parameters"] for r in chosen]
            accuracy = [100 * entry["accuracy"] for entry in entries]
            stderr = [100 * entry["stderr"] for entry in entries]
            label = "L2R (MSD first)" if order == "l2r" else "R2L (LSD first)"
            ax.errorbar(
                params, accuracy, yerr=stderr, marker=marker, capsize=3, label=label
            )
        ax.set_xscale("log")
        # Minor ticks unlabelled: their labels overlap on a short log axis.
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-3, 103)
        ax.set_xlabel("parameters")
        ax.set_title(f"NanoAdder, {title}")
        ax.grid(alpha=0.3)
    panels[0].set_ylabel("exact-match accuracy (%)")
    panels[0].legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    return atomic_write_bytes(path, buffer.getvalue())


def register_cli(subparsers: Any, name: str = "nanoadder") -> argparse.ArgumentParser:
    """Add the NanoAdder sweep command to an argparse subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        E.g. the subparsers of ``pmdm train`` or ``pmdm study``.
    name : str
        Name of the command.

    Returns
    -------
    argparse.ArgumentParser
        The new parser; its default ``func`` runs the sweep and returns an exit code.
    """
    parser = subparsers.add_parser(
        name,
        help="NanoAdder sweep: sizes x {l2r, r2l}, accuracy vs parameters",
        description="Train and score causal NanoAdders of several sizes in both "
        "writing orders; resumable, skips finished runs.",
    )
    parser.add_argument(
        "--out", required=True, help="sweep folder (resumes if it exists)"
    )
    parser.add_argument(
        "--sizes",
        default="xs,s,m",
        help=f"comma-separated sizes among {','.join(NANOADDER_SIZES)}",
    )
    parser.add_argument("--orders", default="l2r,r2l", help="comma-separated orders")
    parser.add_argument(
        "--steps", type=int, default=2000, help="optimizer steps per run"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data")
    parser.add_argument("--batch-size", type=int, default=128, help="problems per step")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument(
        "--minutes-per-run", type=float, default=None, help="time budget of each run"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=_run_cli)
    return parser


def _run_cli(args: argparse.Namespace) -> int:
    """Run the sweep from parsed arguments; return the exit code."""
    run_sweep(
        args.out,
        sizes=[s for s in args.sizes.split(",") if s],
        orders=[o for o in args.orders.split(",") if o],
        steps=args.steps,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        minutes_per_run=args.minutes_per_run,
        num_threads=args.threads,
        progress=not args.no_progress,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the sweep as ``python -m pmdm.arithmetic.nanoadder [options]``."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    parser = register_cli(subparsers)
    parser.prog = "python -m pmdm.arithmetic.nanoadder"
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
