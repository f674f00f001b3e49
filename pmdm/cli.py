"""The ``pmdm`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pmdm import __version__


def _floats(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _add_block_hmm(sub) -> None:
    from pmdm.studies.block_hmm import PAPER_ETAS

    p = sub.add_parser(
        "block-hmm",
        help="the paper's Block-HMM study: factorized vs joint blocks across η",
        description=(
            "Reproduce the Block-HMM study of arXiv 2602.00286 (Sec. 6.1): reverse "
            "KL, forward KL, cross-entropy and incoherence of factorized and joint "
            "block decoders across the parity noise η. Defaults are the paper's."
        ),
    )
    p.add_argument(
        "--eta",
        type=_floats,
        nargs="+",
        default=list(PAPER_ETAS),
        help="parity noise levels (default: %(default)s)",
    )
    p.add_argument(
        "--n-sequences",
        type=int,
        default=10_000,
        help="Monte Carlo sequences per row and side (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="fixes every number")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results/block-hmm"),
        help="results folder (default: %(default)s)",
    )
    p.add_argument("--num-states", type=int, default=2, help="K (default: 2)")
    p.add_argument(
        "--stay",
        type=float,
        default=0.9,
        help="latent self-transition probability a (default: 0.9)",
    )
    p.add_argument(
        "--rho",
        type=_floats,
        nargs="+",
        default=[0.9, 0.1],
        help="content-bit rate per latent state (default: 0.9 0.1)",
    )
    p.add_argument("--block-size", type=int, default=8, help="B (default: 8)")
    p.add_argument("--length", type=int, default=64, help="T (default: 64)")
    p.add_argument(
        "--tau", type=float, default=1e-8, help="incoherence threshold (default: 1e-8)"
    )
    p.add_argument(
        "--estimator",
        choices=["auto", "exact", "monte-carlo"],
        default="auto",
        help="exact enumeration needs 2^T <= 65536",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results of other settings in --out",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_block_hmm)


def _run_block_hmm(args) -> int:
    from pmdm.studies.block_hmm import BlockHMMStudy, run_block_hmm_study

    study = BlockHMMStudy(
        etas=tuple(args.eta),
        n_sequences=args.n_sequences,
        seed=args.seed,
        num_states=args.num_states,
        stay=args.stay,
        rho=tuple(args.rho),
        block_size=args.block_size,
        length=args.length,
        tau=args.tau,
        estimator=args.estimator,
    )
    run_block_hmm_study(
        study, args.out, progress=not args.no_progress, overwrite=args.overwrite
    )
    print((args.out / "results.md").read_text())
    print(f"Wrote results.json, results.csv, results.md, results.png to {args.out}")
    return 0


def _add_evaluate(commands) -> None:
    p = commands.add_parser(
        "evaluate",
        help="measure one decoder on one target (exactly or by Monte Carlo)",
        description="Measure a decoder (TOML) on a target (TOML): forward and reverse "
        "KL, cross-entropy, incoherence, NFE and proposals. See the README for the "
        "file formats.",
    )
    p.add_argument("--target", type=Path, required=True, help="target TOML file")
    p.add_argument("--decoder", type=Path, required=True, help="decoder TOML file")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--exact",
        action="store_true",
        default=None,
        help="enumerate every sequence (default when V^T <= 65536)",
    )
    how.add_argument(
        "--n-sequences",
        type=int,
        default=None,
        help="Monte Carlo with N decoded and N target sequences",
    )
    p.add_argument("--seed", type=int, default=0, help="fixes every number")
    p.add_argument("--tau", type=float, default=1e-8, help="incoherence threshold")
    p.add_argument("--format", choices=["json", "table"], default="table")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    import json

    from pmdm.studies.evaluate import evaluate, evaluation_table

    exact = True if args.exact else (False if args.n_sequences is not None else None)
    result = evaluate(
        args.target,
        args.decoder,
        exact=exact,
        n_sequences=args.n_sequences or 10_000,
        seed=args.seed,
        tau=args.tau,
    )
    if args.format == "json":
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print(evaluation_table(result), end="")
    return 0


def _add_order_study(studies) -> None:
    from pmdm.studies.orders import ORDERS

    p = studies.add_parser(
        "order",
        help="orders at one token per step across model-error levels (exact)",
        description="Compare unmasking orders at one token per step on a token HMM "
        "with a noisy oracle across error levels; KL(q ‖ p) and KL(p ‖ q) exactly, "
        "standard errors over noise draws.",
    )
    p.add_argument(
        "--levels",
        type=_floats,
        nargs="+",
        default=[0.0, 0.25, 0.5, 1.0, 2.0],
        help="model-error levels",
    )
    p.add_argument("--seeds", type=int, default=8, help="noise draws per level")
    p.add_argument(
        "--orders",
        nargs="+",
        default=list(ORDERS),
        choices=ORDERS,
        help="fixed-random: one random permutation per model",
    )
    p.add_argument("--length", type=int, default=8, help="T (default: 8)")
    p.add_argument("--num-states", type=int, default=3, help="K (default: 3)")
    p.add_argument("--vocab-size", type=int, default=3, help="V (default: 3)")
    p.add_argument("--stay", type=float, default=0.8)
    p.add_argument("--emit-peak", type=float, default=0.85)
    p.add_argument("--seed", type=int, default=0, help="fixes every number")
    p.add_argument("--out", type=Path, default=Path("results/order"))
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_order_study)


def _run_order_study(args) -> int:
    from pmdm.studies.orders import OrderStudy, run_order_study

    study = OrderStudy(
        levels=tuple(args.levels),
        seeds=args.seeds,
        orders=tuple(args.orders),
        length=args.length,
        num_states=args.num_states,
        vocab_size=args.vocab_size,
        stay=args.stay,
        emit_peak=args.emit_peak,
        seed=args.seed,
    )
    run_order_study(
        study, args.out, progress=not args.no_progress, overwrite=args.overwrite
    )
    print((args.out / "results.md").read_text())
    print(f"Wrote results.json, results.csv, results.md, results.png to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pmdm`` command."""
    parser = argparse.ArgumentParser(
        prog="pmdm",
        description="Measure masked-diffusion decoders exactly or by Monte Carlo.",
    )
    parser.add_argument("--version", action="version", version=f"pmdm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)

    reproduce = commands.add_parser("reproduce", help="reproduce a study of a paper")
    studies = reproduce.add_subparsers(dest="study", required=True)
    _add_block_hmm(studies)
    _add_evaluate(commands)

    from pmdm.adapters.cli import register_cli as add_generate
    from pmdm.theory.check import register_cli as add_check

    add_check(commands)
    add_generate(commands)

    study = commands.add_parser("study", help="run a sweep study")
    study_kinds = study.add_subparsers(dest="study", required=True)
    _add_order_study(study_kinds)

    from pmdm.studies.assumption import add_assumption_parser
    from pmdm.studies.tightness import add_tightness_parser

    add_tightness_parser(study_kinds)
    add_assumption_parser(study_kinds)

    from pmdm.arithmetic.study import add_arithmetic_parser

    add_arithmetic_parser(study_kinds)

    from pmdm.arithmetic.mdm import register_cli as add_train_mdm_adder
    from pmdm.arithmetic.nanoadder import register_cli as add_nanoadder

    add_nanoadder(study_kinds, name="nanoadder")
    train = commands.add_parser("train", help="train a small model")
    train_kinds = train.add_subparsers(dest="model", required=True)
    add_train_mdm_adder(train_kinds, name="mdm-adder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pmdm`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except ValueError as error:
        parser.exit(2, f"pmdm: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(
            130,
            "pmdm: interrupted; every row finished so far is saved: rerun the same "
            "command to resume\n",
        )


if __name__ == "__main__":
    sys.exit(main())
