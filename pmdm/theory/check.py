"""Run every registered statement on seeded random instances: ``pmdm check``.

Instances come from each statement's own ``generate`` with a ``torch.Generator``
seeded from ``seed`` and the statement's name, not from hypothesis: the CLI needs
no testing library, every example is reproducible from ``(seed, name, index)``,
and running one statement alone gives the same examples as running all of them.
Hypothesis, with its shrinking, drives the property tests in ``proofs_checks/``;
here a failure is reported with the smallest failing instance seen (instances are
ordered by their ``size()``).
"""

from __future__ import annotations

import json
import math
import sys
import time
import zlib
from collections.abc import Iterator, Sequence

import torch

from pmdm.ops.validation import check_int
from pmdm.theory.registry import Statement, check, get, statements

__all__ = ["check", "exit_code", "format_table", "register_cli", "run_checks"]

#: How many draws per requested example before a statement's generator is deemed
#: unable to meet its assumptions.
MAX_DRAWS_PER_EXAMPLE = 10


def _seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def _instances(statement: Statement, examples: int, seed: int) -> Iterator:
    # Draw until `examples` instances meet the assumptions (or the budget ends);
    # the ones that do not are yielded too and counted as skipped by `check`.
    gen = torch.Generator().manual_seed(_seed(seed, statement.name))
    valid = 0
    for _ in range(examples * MAX_DRAWS_PER_EXAMPLE):
        if valid >= examples:
            return
        instance = statement.generate(gen)
        if not statement.failed_assumptions(instance):
            valid += 1
        yield instance


def run_checks(
    names: Sequence[str] | None = None,
    examples: int = 200,
    seed: int = 0,
    progress: bool = False,
) -> list[dict]:
    """Check registered statements on seeded random instances.

    Parameters
    ----------
    names : sequence of str, optional
        Statements to run; all registered ones when omitted.
    examples : int
        Instances per statement that meet its assumptions (``>= 1``).
    seed : int
        Fixes every instance.
    progress : bool
        Show a progress bar over the statements (tqdm, on stderr).

    Returns
    -------
    list of dict
        One per statement with keys ``statement``, ``source``, ``kind``,
        ``verdict`` (``holds``, ``fails`` or ``untested``), ``examples``, ``margin``
        (the tightest: largest smaller/larger ratio for a bound, largest absolute
        error or z-score for an identity), ``counterexample`` (JSON-able, or
        ``None``), plus ``skipped``, ``margin_kind``, ``degenerate`` and
        ``seconds``. Non-finite
        numbers are the strings ``"inf"``/``"nan"``.

    Raises
    ------
    ValueError
        If a name is not registered or ``examples < 1``.

    Examples
    --------
    >>> [row["verdict"] for row in run_checks(["dtc-identity"], examples=3)]
    ['holds']
    """
    examples = check_int("examples", examples, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    chosen = statements() if names is None else [get(name) for name in names]
    if progress:
        from tqdm import tqdm

        chosen = tqdm(chosen, desc="pmdm check", unit="statement")
    rows = []
    for statement in chosen:
        start = time.perf_counter()
        result = check(statement, _instances(statement, examples, seed))
        row = result.to_dict()
        row["seconds"] = round(time.perf_counter() - start, 3)
        rows.append(row)
    return rows


def _show_margin(row: dict) -> str:
    margin = row["margin"]
    if margin is None:
        return "-"
    if isinstance(margin, str):
        return margin
    return f"{margin:.3g}" if math.isfinite(margin) else str(margin)


def format_table(results: Sequence[dict]) -> str:
    """One line per statement: name, kind, verdict, examples, tightest margin.

    A failing statement gets a second, indented line with its counterexample in
    compact JSON.

    Examples
    --------
    >>> print(format_table([{"statement": "s", "kind": "identity", "verdict":
    ...     "holds", "examples": 3, "margin": 0.0, "margin_kind": "abs-error",
    ...     "counterexample": None}]))
    statement  kind      verdict  examples  margin (kind)
    s          identity  holds    3         0 (abs-error)
    """
    header = ("statement", "kind", "verdict", "examples", "margin (kind)")
    lines = [
        (
            row["statement"],
            row["kind"],
            row["verdict"],
            str(row["examples"]),
            f"{_show_margin(row)} ({row.get('margin_kind') or '-'})",
        )
        for row in results
    ]
    widths = [max(len(r[k]) for r in [header, *lines]) for k in range(len(header))]

    def fmt(cells) -> str:
        return "  ".join(
            c.ljust(w) for c, w in zip(cells, widths, strict=True)
        ).rstrip()

    out = [fmt(header)]
    for cells, row in zip(lines, results, strict=True):
        out.append(fmt(cells))
        if row.get("counterexample") is not None:
            text = json.dumps(row["counterexample"], separators=(",", ":"))
            out.append(f"    counterexample: {text}")
    return "\n".join(out)


def exit_code(results: Sequence[dict]) -> int:
    """1 if a proven statement (identity or inequality) fails, else 0.

    A failing ``claimed-form`` is a finding, not an error."""
    broken = [
        r for r in results if r["verdict"] == "fails" and r["kind"] != "claimed-form"
    ]
    return 1 if broken else 0


def register_cli(subparsers) -> None:
    """Add the ``check`` subcommand to an ``argparse`` subparsers object.

    Usage: ``pmdm check [--statement NAME ...] [--examples N] [--seed S]
    [--format table|json] [--no-progress]``. The handler prints the table (or the
    JSON list of :func:`run_checks`) to stdout and returns :func:`exit_code`.
    """
    from pmdm.theory.registry import names

    parser = subparsers.add_parser(
        "check",
        help="check every formal statement numerically",
        description=(
            "Evaluate both sides of each registered formal statement on seeded "
            "random instances, exactly or by Monte Carlo, and print one line per "
            "statement: verdict, examples, tightest margin."
        ),
    )
    parser.add_argument(
        "--statement",
        action="append",
        choices=names(),
        metavar="NAME",
        help="run only this statement (repeatable); one of: " + ", ".join(names()),
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=200,
        help="instances per statement that meet its assumptions (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="fixes every instance")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    parser.set_defaults(func=_run_check)


def _run_check(args) -> int:
    results = run_checks(
        args.statement,
        examples=args.examples,
        seed=args.seed,
        progress=not args.no_progress,
    )
    if args.format == "json":
        text = json.dumps(results, indent=2)
    else:
        text = format_table(results)
    sys.stdout.write(text + "\n")
    return exit_code(results)
