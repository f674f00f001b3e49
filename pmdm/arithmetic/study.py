r"""The arithmetic order study: unmasking orders and step budgets on addition.

The paper's Table 1 (``THEORY.md`` §4, Sec. 6.2) decodes the sums of the 1000-problem
suite with four unmasking orders of LLaDA-8B-Instruct and reports exact-match
accuracy, with the edge-case accuracy in parentheses, for columns labelled 16, 32,
64 and 128. This module runs the same study through the path a user of pmdm takes
for any masked model: :class:`~pmdm.adapters.hf.HFPredictor` around the model and
:func:`~pmdm.adapters.generate.generate`, which decodes with a pmdm
:class:`~pmdm.decoding.decoder.Decoder` (an order, LLaDA's
:class:`~pmdm.decoding.schedules.StepsSchedule` and the factorized step sampler at
temperature 0).

Two models are supported.

- **The masked diffusion adder** trained here (:mod:`pmdm.arithmetic.mdm`, shipped
  or any checkpoint of ``pmdm train mdm-adder``): the prompt is the fixed-width
  ``a+b=`` and the model fills the ``W + 1 = 11`` answer positions. The columns are
  **step budgets over those 11 positions** (:class:`ArithmeticStudy`): 11 steps
  reveal one token per step, fewer steps reveal several tokens per step (LLaDA's
  split: with ``s`` steps, step ``j`` reveals ``11 // s + (j < 11 % s)``). These are
  not the paper's 16-128, whose meaning the paper does not give.
- **LLaDA-8B-Instruct** or any Hugging Face masked model with a tokenizer
  (:class:`LLaDAArithmeticStudy`): each problem becomes the chat-template prompt
  ``"What is {a} + {b}? Answer with the number only."``, the model generates
  ``gen_length`` positions, and the first integer of the decoded text is the
  answer. The columns are generation lengths (16, 32, 64 and 128 by default,
  guessing that the paper's columns count generated tokens), each decoded in
  ``steps = gen_length`` steps unless ``steps`` is set.

The orders are ``"l2r"``, ``"r2l"``, ``"random"`` (a fresh uniformly random order at
each step) and LLaDA's ``"low_confidence"`` (pmdm's ``"sampled-confidence"``: the
positions whose drawn token is most probable first; at temperature 0 the draw is the
arg max, so this is "most confident first"). Every step of every row is batched over
problems; rows (one per order and column) are saved atomically as they finish, and a
rerun with the same settings resumes. Each row's random order draws from a generator
seeded by :func:`~pmdm.studies.runner.derived_seed` of the study's seed and the row,
so the seed fixes every number whatever the order in which rows run; greedy
decoding of the other orders draws nothing that matters.

Measured per row: accuracy overall and per category (binomial standard errors);
the mean entropy (nats) of the prediction each revealed token was drawn from,
averaged over the generated positions and then over problems, and its profile by
step and by position; NFE (predictor calls per problem); tokens per step; Kendall's
:math:`\tau` between reveal step and position (1 for left to right, -1 for right to
left, 0 when everything is revealed in one step).

References
----------
Zhang et al., 2026, arXiv:2602.00286, Sec. 6.2, App. D, Table 1. Nie et al., "Large
Language Diffusion Models", 2025, arXiv:2502.09992 (sampler, ``low_confidence``
remasking, semi-autoregressive blocks).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from pmdm.arithmetic.mdm import DEFAULT_CHECKPOINT, MDMAdder, load_mdm_adder
from pmdm.arithmetic.scoring import score
from pmdm.arithmetic.suite import CATEGORIES, Problem, load_suite
from pmdm.ops.validation import check_choice, check_int
from pmdm.studies.runner import (
    ResultStore,
    atomic_write_bytes,
    atomic_write_text,
    derived_seed,
    markdown_table,
    rows_to_csv,
)

__all__ = [
    "DEFAULT_GEN_LENGTHS",
    "DEFAULT_STEPS",
    "LLADA_PROMPT",
    "ORDERS",
    "ORDER_LABELS",
    "ArithmeticStudy",
    "LLaDAArithmeticStudy",
    "add_arithmetic_parser",
    "arithmetic_figure",
    "arithmetic_markdown",
    "first_integer",
    "run_arithmetic_study",
    "run_llada_arithmetic_study",
    "select_problems",
    "table1",
]

logger = logging.getLogger(__name__)

#: The orders of the paper's Table 1, in its row order.
ORDERS: tuple[str, ...] = ("l2r", "random", "r2l", "low_confidence")

#: Row labels of Table 1.
ORDER_LABELS: dict[str, str] = {
    "l2r": "left-to-right",
    "random": "random",
    "r2l": "right-to-left",
    "low_confidence": "low-confidence",
}

#: Step budgets over the 11 answer positions of the masked diffusion adder.
DEFAULT_STEPS: tuple[int, ...] = (1, 2, 4, 6, 11)

#: Generation lengths of the LLaDA path: the paper's column labels.
DEFAULT_GEN_LENGTHS: tuple[int, ...] = (16, 32, 64, 128)

#: The user message of the LLaDA path, rendered through the chat template.
LLADA_PROMPT = "What is {a} + {b}? Answer with the number only."

# A run of digits, optionally grouped by thousands ("1,234,567")
_INTEGER = re.compile(r"\d+(?:,\d{3})*(?!\d)")


def _check_orders(orders: Sequence[str]) -> tuple[str, ...]:
    orders = tuple(orders)
    if not orders:
        raise ValueError(f"orders must name at least one order, got orders={orders!r}")
    for order in orders:
        check_choice("orders[]", order, ORDERS)
    if len(set(orders)) != len(orders):
        raise ValueError(f"orders must not repeat an order, got orders={orders!r}")
    return orders


def _check_columns(name: str, values: Sequence[int]) -> tuple[int, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must hold at least one value, got {name}={values!r}")
    for value in values:
        check_int(f"{name}[]", value, minimum=1)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {name}={values!r}")
    return values


def _check_common(study: Any) -> None:
    object.__setattr__(study, "orders", _check_orders(study.orders))
    check_int("seed", study.seed, minimum=0)
    check_int("batch_size", study.batch_size, minimum=1)
    if study.block_length is not None:
        check_int("block_length", study.block_length, minimum=1)
    if study.n_problems is not None:
        check_int("n_problems", study.n_problems, minimum=1, maximum=len(load_suite()))


@dataclass(frozen=True)
class ArithmeticStudy:
    """Settings of the study on the masked diffusion adder.

    Parameters
    ----------
    orders : tuple of str
        Among :data:`ORDERS`.
    steps : tuple of int
        The columns: total decoding steps over the answer field (11 positions for
        the suite's layout). ``11`` reveals one token per step; fewer steps reveal
        several per step; more than 11 is the same as 11 (steps that would reveal
        nothing are skipped).
    block_length : int, optional
        Semi-autoregressive block length over the answer field (must divide it, and
        every ``steps`` must be a multiple of the number of blocks); one block when
        omitted.
    seed : int
        Fixes every number (the random order's draws).
    n_problems : int, optional
        Run on :func:`select_problems` ``(n_problems)``, evenly spaced through the
        suite (every category present from 20 up); all 1000 when omitted.
    batch_size : int
        Problems per model call. It can change a floating-point rounding and so,
        rarely, an arg max: it is part of the settings.

    Examples
    --------
    >>> ArithmeticStudy(steps=(11, 1)).columns()
    (11, 1)
    """

    orders: tuple[str, ...] = ORDERS
    steps: tuple[int, ...] = DEFAULT_STEPS
    block_length: int | None = None
    seed: int = 0
    n_problems: int | None = None
    batch_size: int = 1000

    #: What the columns count.
    column: ClassVar[str] = "steps"

    def __post_init__(self) -> None:
        _check_common(self)
        object.__setattr__(self, "steps", _check_columns("steps", self.steps))

    def columns(self) -> tuple[int, ...]:
        """The column values, in table order."""
        return self.steps

    def settings(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        out = asdict(self)
        out["orders"], out["steps"] = list(self.orders), list(self.steps)
        return out


@dataclass(frozen=True)
class LLaDAArithmeticStudy:
    """Settings of the study on LLaDA-8B-Instruct (or any masked model with a
    tokenizer).

    Parameters
    ----------
    orders : tuple of str
        Among :data:`ORDERS`.
    gen_lengths : tuple of int
        The columns: positions generated after the prompt.
    steps : int, optional
        Decoding steps of every generation; ``gen_length`` (one token per step) when
        omitted.
    block_length : int, optional
        Semi-autoregressive block length, capped at each ``gen_length``; it must
        divide every generation length it does not exceed, and the steps must be a
        multiple of the number of blocks. One block (the whole generation, so that
        the orders act on the whole answer) when omitted; LLaDA's own default is 32.
    prompt : str
        The user message, with ``{a}`` and ``{b}`` for the operands.
    chat : bool
        Render the message through the tokenizer's chat template (instruct models).
    cfg_scale : float
        LLaDA's unsupervised classifier-free guidance scale (0: none, the default
        of LLaDA's evaluation).
    seed : int
        Fixes every number (the random order's draws).
    n_problems : int, optional
        As for :class:`ArithmeticStudy`.
    batch_size : int
        Prompts per model call (prompts of different token lengths never share a
        batch: the model has no padding mask).

    Examples
    --------
    >>> study = LLaDAArithmeticStudy(gen_lengths=(16, 64), block_length=32)
    >>> [study.layout(g) for g in study.columns()]
    [(16, 16, 16), (64, 64, 32)]
    """

    orders: tuple[str, ...] = ORDERS
    gen_lengths: tuple[int, ...] = DEFAULT_GEN_LENGTHS
    steps: int | None = None
    block_length: int | None = None
    prompt: str = LLADA_PROMPT
    chat: bool = True
    cfg_scale: float = 0.0
    seed: int = 0
    n_problems: int | None = None
    batch_size: int = 8

    #: What the columns count.
    column: ClassVar[str] = "gen_length"

    def __post_init__(self) -> None:
        _check_common(self)
        gen_lengths = _check_columns("gen_lengths", self.gen_lengths)
        object.__setattr__(self, "gen_lengths", gen_lengths)
        if self.steps is not None:
            check_int("steps", self.steps, minimum=1)
        if not isinstance(self.prompt, str) or not {"{a}", "{b}"} <= set(
            re.findall(r"\{[ab]\}", self.prompt)
        ):
            raise ValueError(
                f"prompt must be a str holding {{a}} and {{b}}, got prompt={self.prompt!r}"
            )
        if not isinstance(self.chat, bool):
            raise TypeError(f"chat must be a bool, got chat={self.chat!r}")
        if not (isinstance(self.cfg_scale, int | float) and self.cfg_scale >= 0):
            raise ValueError(
                f"cfg_scale must be a number >= 0, got cfg_scale={self.cfg_scale!r}"
            )
        for gen_length in gen_lengths:
            self.layout(gen_length)

    def columns(self) -> tuple[int, ...]:
        """The column values, in table order."""
        return self.gen_lengths

    def layout(self, gen_length: int) -> tuple[int, int, int]:
        """``(gen_length, steps, block_length)`` of one column.

        Raises
        ------
        ValueError
            If the block length does not divide the generation length or the steps
            are not a multiple of the number of blocks.
        """
        block = min(self.block_length or gen_length, gen_length)
        steps = gen_length if self.steps is None else self.steps
        if gen_length % block:
            raise ValueError(
                f"block_length must divide every generation length it does not "
                f"exceed, got block_length={self.block_length!r} for "
                f"gen_length={gen_length}"
            )
        if steps % (gen_length // block):
            raise ValueError(
                f"steps must be a multiple of the number of blocks, got steps={steps!r} "
                f"for gen_length={gen_length} in blocks of {block}"
            )
        return gen_length, steps, block

    def settings(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        out = asdict(self)
        out["orders"], out["gen_lengths"] = list(self.orders), list(self.gen_lengths)
        return out


def select_problems(n_problems: int | None = None) -> list[Problem]:
    """The suite, or ``n_problems`` of it evenly spaced (ids ``i * 1000 // n``).

    Parameters
    ----------
    n_problems : int, optional
        How many; all 1000 when omitted.

    Returns
    -------
    list of Problem
        In suite order. The suite is grouped by category, so every category is
        present once ``n_problems >= 20``.

    Examples
    --------
    >>> [p.id for p in select_problems(4)], len(select_problems())
    ([0, 250, 500, 750], 1000)
    """
    suite = load_suite()
    if n_problems is None:
        return suite
    n = check_int("n_problems", n_problems, minimum=1, maximum=len(suite))
    return [suite[i * len(suite) // n] for i in range(n)]


def first_integer(text: str) -> int | None:
    """The first integer written in ``text`` (thousands commas allowed), or ``None``.

    This is how the LLaDA path reads an answer from free text.

    Examples
    --------
    >>> first_integer("The sum is 1,234,567."), first_integer("12 + 3 = 15")
    (1234567, 12)
    >>> first_integer("no digits"), first_integer("1,23")
    (None, 1)
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got text={text!r}")
    match = _INTEGER.search(text)
    return None if match is None else int(match.group().replace(",", ""))


# -- decoding --------------------------------------------------------------------------


class _Counting:
    """A predictor that calls ``on_call`` after each call of the one it wraps."""

    def __init__(self, predictor: Any, on_call: Callable[[], None]) -> None:
        self.predictor = predictor
        self.on_call = on_call
        self.vocab_size = predictor.vocab_size
        self.mask_id = predictor.mask_id

    @property
    def nfe(self) -> Any:
        return getattr(self.predictor, "nfe", None)

    def __call__(self, tokens: Tensor) -> Tensor:
        out = self.predictor(tokens)
        self.on_call()
        return out


@dataclass
class _Decoded:
    """Generated tokens and what the decoder saw, for ``N`` problems and ``G``
    generated positions, in problem order."""

    generated: Tensor  # (N, G) long
    entropy: Tensor  # (N, G) float64, at reveal
    reveal_step: Tensor  # (N, G) long
    nfe: Tensor  # (N,)
    tokens_per_step: Tensor  # (N,)
    kendall_tau: Tensor  # (N,)


def _calls_per_batch(gen_length: int, steps: int, block_length: int) -> int:
    """Decoder predictor calls of one batch under LLaDA's steps schedule."""
    num_blocks = gen_length // block_length
    return num_blocks * min(steps // num_blocks, block_length)


def _batches(prompts: Tensor | Sequence[Tensor], batch_size: int) -> list[Tensor]:
    """Row indices of each batch: equal prompt lengths only, then ``batch_size``."""
    if isinstance(prompts, Tensor):
        lengths = [prompts.shape[-1]] * prompts.shape[0]
    else:
        lengths = [p.shape[-1] for p in prompts]
    out = []
    for length in sorted(set(lengths)):
        members = torch.tensor([i for i, n in enumerate(lengths) if n == length])
        out += list(members.split(batch_size))
    return out


def _decode(
    predictor: Any,
    prompts: Tensor | Sequence[Tensor],
    layout: tuple[int, int, int],
    order: str,
    generator: torch.Generator,
    batch_size: int,
    cfg_scale: float = 0.0,
) -> _Decoded:
    """Decode every prompt with :func:`pmdm.adapters.generate.generate`, batched."""
    from pmdm.adapters.generate import generate

    gen_length, steps, block_length = layout
    n = prompts.shape[0] if isinstance(prompts, Tensor) else len(prompts)
    pieces: list[tuple[Tensor, Any]] = []
    for rows in _batches(prompts, batch_size):
        if isinstance(prompts, Tensor):
            batch = prompts[rows]
        else:
            batch = torch.stack([prompts[int(i)] for i in rows])
        result = generate(
            predictor,
            batch,
            gen_length,
            steps,
            block_length,
            order=order,
            temperature=0.0,
            cfg_scale=cfg_scale,
            generator=generator,
        )
        pieces.append((rows, result))

    # Scatter the batches back into problem order
    generated = torch.empty(n, gen_length, dtype=torch.long)
    entropy = torch.empty(n, gen_length, dtype=torch.float64)
    reveal_step = torch.empty(n, gen_length, dtype=torch.long)
    nfe = torch.empty(n, dtype=torch.long)
    tokens_per_step = torch.empty(n, dtype=torch.float64)
    kendall_tau = torch.empty(n, dtype=torch.float64)
    for rows, result in pieces:
        start = result.prompt_length
        trajectory = result.trajectory
        generated[rows] = result.tokens[:, start:].cpu()
        entropy[rows] = trajectory.entropy[:, start:].cpu()
        reveal_step[rows] = trajectory.reveal_step[:, start:].cpu()
        nfe[rows] = trajectory.nfe.cpu()
        tokens_per_step[rows] = trajectory.tokens_per_step().cpu()
        kendall_tau[rows] = trajectory.kendall_tau().cpu()
    return _Decoded(generated, entropy, reveal_step, nfe, tokens_per_step, kendall_tau)


def _mean_se(values: Tensor) -> dict[str, float]:
    """Mean and standard error over problems of a per-problem value."""
    values = values.to(torch.float64)
    n = values.numel()
    se = values.std().item() / math.sqrt(n) if n > 1 else 0.0
    return {"estimate": values.mean().item(), "stderr": se}


def _row(
    order: str,
    column_name: str,
    layout: tuple[int, int, int],
    seed: int,
    problems: Sequence[Problem],
    outputs: list[str],
    answers: list[str],
    decoded: _Decoded,
    *,
    reverse: bool,
    wall_s: float,
) -> dict[str, Any]:
    """One saved row: scores and decoding measures of one (order, column).

    ``outputs`` are the texts as generated, ``answers`` what the scorer reads."""
    gen_length, steps, block_length = layout
    result = score(problems, answers, reverse=reverse)

    # Mean entropy at each step: over every position any problem revealed then
    num_steps = int(decoded.reveal_step.max()) + 1
    at = decoded.reveal_step.unsqueeze(-1) == torch.arange(num_steps)  # (N, G, S)
    total = torch.where(at, decoded.entropy.unsqueeze(-1), 0.0).sum((0, 1))
    count = at.sum((0, 1))
    by_step = torch.where(count > 0, total / count.clamp(min=1), math.nan)
    return {
        "order": order,
        "column": {"steps": steps, "gen_length": gen_length}[column_name],
        "gen_length": gen_length,
        "steps": steps,
        "block_length": block_length,
        "seed": seed,
        "overall": result.overall.to_dict(),
        "by_category": {c: a.to_dict() for c, a in result.by_category.items()},
        "entropy": _mean_se(decoded.entropy.mean(-1)),
        "entropy_by_step": by_step.tolist(),
        "entropy_by_position": decoded.entropy.mean(0).tolist(),
        "nfe": _mean_se(decoded.nfe),
        "tokens_per_step": _mean_se(decoded.tokens_per_step),
        "kendall_tau": _mean_se(decoded.kendall_tau),
        "wall_s": wall_s,
        "outputs": outputs,
        "predicted": [None if v is None else str(v) for v in result.predicted],
    }


def _row_key(row: dict[str, Any]) -> tuple[str, int]:
    return (row["order"], int(row["column"]))


def _run(
    study: ArithmeticStudy | LLaDAArithmeticStudy,
    out_dir: str | os.PathLike[str],
    settings: dict[str, Any],
    prompts: Tensor | Sequence[Tensor],
    layout_of: Callable[[int], tuple[int, int, int]],
    predictor: Any,
    read_outputs: Callable[[Tensor], tuple[list[str], list[str]]],
    *,
    reverse: bool,
    describe: str,
    progress: bool,
    overwrite: bool,
) -> list[dict[str, Any]]:
    """The loop shared by both models: one saved row per (order, column)."""
    from tqdm.auto import tqdm

    problems = select_problems(study.n_problems)
    store = ResultStore(out_dir, "arithmetic", settings, _row_key, overwrite)
    todo = [
        (order, column)
        for order in study.orders
        for column in study.columns()
        if not store.done((order, column))
    ]
    num_batches = len(_batches(prompts, study.batch_size))
    total = sum(num_batches * _calls_per_batch(*layout_of(c)) for _, c in todo)
    cfg_scale = float(getattr(study, "cfg_scale", 0.0))
    with tqdm(total=total, desc="arithmetic", unit="call", disable=not progress) as bar:
        counted = _Counting(predictor, lambda: bar.update(1))
        for order, column in todo:
            bar.set_postfix_str(f"{order}, {study.column}={column}")
            layout = layout_of(column)
            seed = derived_seed(study.seed, "arithmetic", order, column)
            generator = torch.Generator().manual_seed(seed)
            start = time.perf_counter()
            decoded = _decode(
                counted, prompts, layout, order, generator, study.batch_size, cfg_scale
            )
            outputs, answers = read_outputs(decoded.generated)
            wall_s = time.perf_counter() - start
            row = _row(
                order, study.column, layout, seed, problems, outputs, answers,
                decoded, reverse=reverse, wall_s=wall_s,
            )  # fmt: skip
            store.add(row)
            logger.info(
                "%s %s=%s: %.1f%% in %.1f s",
                order,
                study.column,
                column,
                100 * row["overall"]["accuracy"],
                wall_s,
            )
    rows = _ordered_rows(study, store.rows)
    note = (
        f"Seed {study.seed} fixes every number: each row's random order draws from "
        "torch.Generator().manual_seed(derived_seed(seed, 'arithmetic', order, "
        "column)); the other orders decode greedily (temperature 0)."
    )
    from pmdm import __version__

    versions = {"pmdm": __version__, "torch": torch.__version__}
    store.save(note=note, model=describe, versions=versions)
    out = Path(out_dir)
    atomic_write_text(out / "results.csv", rows_to_csv(_csv_rows(rows)))
    atomic_write_text(out / "results.md", arithmetic_markdown(study, rows, describe))
    atomic_write_bytes(out / "results.png", arithmetic_figure(study, rows))
    return rows


def _ordered_rows(
    study: ArithmeticStudy | LLaDAArithmeticStudy, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of the study's orders and columns, in table order."""
    by_key = {_row_key(r): r for r in rows}
    return [
        by_key[(o, c)]
        for o in study.orders
        for c in study.columns()
        if (o, c) in by_key
    ]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def run_arithmetic_study(
    study: ArithmeticStudy,
    out_dir: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | MDMAdder = "shipped",
    progress: bool = False,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Run the study on a masked diffusion adder; resumable.

    Parameters
    ----------
    study : ArithmeticStudy
        Orders, step budgets, seed.
    out_dir : path-like
        Results folder: ``results.json`` (settings, one row per order and step
        budget, saved after each row), ``results.csv``, ``results.md`` and
        ``results.png``.
    model : "shipped", path-like or MDMAdder
        The shipped checkpoint, a folder written by ``pmdm train mdm-adder``, or a
        model in memory (named by its class and parameter count in the settings).
    progress : bool
        Show a progress bar over model calls.
    overwrite : bool
        Replace results of other settings in ``out_dir`` instead of refusing them.

    Returns
    -------
    list of dict
        One row per (order, steps), in table order, with ``overall`` and
        ``by_category`` accuracies, ``entropy``, ``nfe``, ``tokens_per_step`` and
        ``kendall_tau`` (each ``{"estimate", "stderr"}`` over problems), the
        entropy profiles, and the answer fields as written (``outputs``).

    Raises
    ------
    ValueError
        If ``out_dir`` holds results of other settings (without ``overwrite``), a
        step budget or block length does not fit the answer field, or the model
        folder holds no MDMAdder.
    """
    from pmdm.adapters.hf import HFPredictor

    if not isinstance(study, ArithmeticStudy):
        raise TypeError(f"study must be an ArithmeticStudy, got study={study!r}")
    if isinstance(model, MDMAdder):
        adder = model.eval()
        identity = {"model": f"MDMAdder ({adder.num_parameters()} parameters)"}
    else:
        shipped = isinstance(model, str) and model == "shipped"
        path = DEFAULT_CHECKPOINT if shipped else Path(model)
        adder = load_mdm_adder(path)
        identity = {
            "model": "shipped" if shipped else str(path),
            "model_sha256": _file_digest(path / "model.pt"),
        }
    layout = adder.layout
    for steps in study.steps:
        _check_fit(layout.answer_width, steps, study.block_length)

    # Prompts a+b= of the selected problems: (N, 2W + 2)
    problems = select_problems(study.n_problems)
    a = torch.tensor([p.a for p in problems], dtype=torch.long)
    b = torch.tensor([p.b for p in problems], dtype=torch.long)
    prompts = layout.encode(a, b, with_answer=False)[:, : layout.prompt_length]

    def layout_of(steps: int) -> tuple[int, int, int]:
        width = layout.answer_width
        return width, steps, study.block_length or width

    def read_outputs(generated: Tensor) -> tuple[list[str], list[str]]:
        fields = layout.answer_strings(torch.cat([prompts, generated], dim=-1))
        return fields, fields

    settings = {
        "path": "mdm",
        **study.settings(),
        **identity,
        "reverse_answer": layout.reverse_answer,
    }
    describe = (
        f"masked diffusion adder {identity['model']}, answer field of "
        f"{layout.answer_width} positions"
        + (" written least significant digit first" if layout.reverse_answer else "")
    )
    return _run(
        study, out_dir, settings, prompts, layout_of, HFPredictor(adder), read_outputs,
        reverse=layout.reverse_answer, describe=describe, progress=progress,
        overwrite=overwrite,
    )  # fmt: skip


def _check_fit(width: int, steps: int, block_length: int | None) -> None:
    block = block_length or width
    if width % block:
        raise ValueError(
            f"block_length must divide the {width} answer positions, got "
            f"block_length={block_length!r}"
        )
    if steps % (width // block):
        raise ValueError(
            f"steps must be a multiple of the number of blocks ({width // block}), "
            f"got steps={steps!r}"
        )


def run_llada_arithmetic_study(
    study: LLaDAArithmeticStudy,
    predictor: Any,
    out_dir: str | os.PathLike[str],
    *,
    model_name: str = "model",
    progress: bool = False,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Run the study on LLaDA-8B-Instruct (or any masked model with a tokenizer).

    Parameters
    ----------
    study : LLaDAArithmeticStudy
        Orders, generation lengths, steps, prompt, seed.
    predictor : HFPredictor
        With a tokenizer, e.g. ``HFPredictor.from_pretrained(path,
        trust_remote_code=True, dtype=torch.bfloat16, device="cuda")``.
    out_dir : path-like
        Results folder, as for :func:`run_arithmetic_study`.
    model_name : str
        How the results name the model (its path); part of the settings.
    progress, overwrite : bool
        As for :func:`run_arithmetic_study`.

    Returns
    -------
    list of dict
        As for :func:`run_arithmetic_study`, one row per (order, gen_length);
        ``outputs`` are the decoded texts and ``predicted`` the first integer of
        each (``None`` when there is none).

    Raises
    ------
    ValueError
        If the predictor has no tokenizer, or as :func:`run_arithmetic_study`.

    Notes
    -----
    Each problem's prompt is ``study.prompt`` with its operands in decimal, through
    the tokenizer's chat template when ``study.chat``
    (:meth:`~pmdm.adapters.hf.HFPredictor.encode`). Prompts are never padded:
    prompts of one token length share batches, others run apart. The generated
    tokens are decoded with special tokens skipped and the answer is the first
    integer of the text (:func:`first_integer`), scored by exact match.
    """
    if not isinstance(study, LLaDAArithmeticStudy):
        raise TypeError(f"study must be a LLaDAArithmeticStudy, got study={study!r}")
    if getattr(predictor, "tokenizer", None) is None:
        raise ValueError(
            "predictor must carry a tokenizer (HFPredictor.from_pretrained loads the "
            "one beside the weights), got a predictor without one"
        )
    problems = select_problems(study.n_problems)
    prompts = [
        predictor.encode(study.prompt.format(a=p.a, b=p.b), chat=study.chat)
        for p in problems
    ]

    def read_outputs(generated: Tensor) -> tuple[list[str], list[str]]:
        texts = [predictor.decode(row) for row in generated]
        values = [first_integer(text) for text in texts]
        return texts, ["" if v is None else str(v) for v in values]

    settings = {"path": "llada", **study.settings(), "model": model_name}
    describe = (
        f"{model_name} through its tokenizer"
        + (" and chat template" if study.chat else "")
        + f", prompt {study.prompt!r}, answer = first integer of the generated text"
    )
    return _run(
        study, out_dir, settings, prompts, study.layout, predictor, read_outputs,
        reverse=False, describe=describe, progress=progress, overwrite=overwrite,
    )  # fmt: skip


# -- tables and figure -----------------------------------------------------------------


def _pct(accuracy: dict[str, Any] | None) -> str:
    """``"76.4"`` from an accuracy dict, ``"–"`` when absent or empty."""
    if accuracy is None or not accuracy.get("n"):
        return "–"
    return f"{100 * accuracy['n_correct'] / accuracy['n']:.1f}"


def _column_label(column_name: str, value: int) -> str:
    return (
        f"{value} step{'s' if value != 1 else ''}"
        if column_name == "steps"
        else str(value)
    )


def table1(
    rows: Sequence[dict[str, Any]],
    orders: Sequence[str],
    columns: Sequence[int],
    column_name: str = "steps",
) -> str:
    """The paper's Table 1 layout: overall accuracy % (edge-case accuracy %).

    Parameters
    ----------
    rows : sequence of dict
        Study rows, each with ``order``, ``column``, ``overall`` and
        ``by_category`` (accuracy dicts with ``n`` and ``n_correct``).
    orders : sequence of str
        Table rows, labelled by :data:`ORDER_LABELS`.
    columns : sequence of int
        Table columns.
    column_name : {"steps", "gen_length"}
        What the columns count, for the header.

    Returns
    -------
    str
        A Markdown table; a cell is ``"76.4 (48.0)"``, ``"–"`` where a row is
        missing, and ``"(–)"`` where no edge-case problem was run.

    Examples
    --------
    >>> row = {"order": "l2r", "column": 11,
    ...        "overall": {"n": 1000, "n_correct": 764},
    ...        "by_category": {"edge": {"n": 100, "n_correct": 48}}}
    >>> print(table1([row], ["l2r"], [11]), end="")
    | order | 11 steps |
    |---|---|
    | left-to-right | 76.4 (48.0) |
    """
    by_key = {(r["order"], int(r["column"])): r for r in rows}
    body = []
    for order in orders:
        cells = [ORDER_LABELS.get(order, order)]
        for column in columns:
            row = by_key.get((order, int(column)))
            if row is None:
                cells.append("–")
                continue
            edge = row["by_category"].get("edge")
            cells.append(f"{_pct(row['overall'])} ({_pct(edge)})")
        body.append(cells)
    header = ["order"] + [_column_label(column_name, c) for c in columns]
    return markdown_table(header, body)


def _est(value: dict[str, Any], digits: int = 3) -> str:
    est, se = value["estimate"], value["stderr"]
    if isinstance(est, str) or not math.isfinite(est):
        return str(est)
    return f"{est:.{digits}f} ± {se:.{digits}f}" if se else f"{est:.{digits}f}"


def arithmetic_markdown(
    study: ArithmeticStudy | LLaDAArithmeticStudy,
    rows: Sequence[dict[str, Any]],
    model: str = "",
) -> str:
    """The Markdown report: Table 1, per-category accuracy, decoding measures.

    Parameters
    ----------
    study : ArithmeticStudy or LLaDAArithmeticStudy
    rows : sequence of dict
        Rows of :func:`run_arithmetic_study` or :func:`run_llada_arithmetic_study`.
    model : str
        A description of the model, printed under the title.
    """
    orders, columns, name = study.orders, study.columns(), study.column
    n = rows[0]["overall"]["n"] if rows else 0
    if name == "steps":
        what = (
            "Columns: decoding steps over the answer field (LLaDA's split of the "
            "positions over the steps; one token per step at the largest budget). "
            "They are step budgets over this model's answer, not the paper's 16/32/64/"
            "128, whose meaning the paper does not give."
        )
    else:
        what = (
            "Columns: generation length (positions generated after the prompt), "
            f"decoded in {'as many steps' if study.steps is None else study.steps} "
            f"{'' if study.steps is None else 'steps '}with block length "
            f"{study.block_length or 'equal to the generation length'}."
        )
    text = (
        "# Arithmetic order study\n\n"
        f"Model: {model}. {n} problems of the shipped suite"
        f"{'' if study.n_problems is None else ' (evenly spaced subset)'}, exact match. "
        "Decoded through HFPredictor and pmdm's Decoder (pmdm.adapters.generate): "
        "LLaDA's steps schedule, factorized steps, temperature 0; low-confidence is "
        "LLaDA's low_confidence remasking (pmdm's sampled-confidence). "
        f"{what} Seed {study.seed} fixes every number (the random order draws from "
        "a generator seeded per row by derived_seed(seed, 'arithmetic', order, "
        "column)).\n\n"
        "## Table 1 layout: accuracy % (edge-case accuracy %)\n\n"
        + table1(rows, orders, columns, name)
    )

    # Per-category accuracy, one line per (order, column)
    categories = [c for c in CATEGORIES if any(c in r["by_category"] for r in rows)]
    header = ["order", name, "overall"] + categories
    body = [
        [ORDER_LABELS[r["order"]], str(r["column"]), _pct(r["overall"])]
        + [_pct(r["by_category"].get(c)) for c in categories]
        for r in rows
    ]
    text += "\n## Accuracy by category (%)\n\n" + markdown_table(header, body)

    # Decoding measures
    header = [
        "order",
        name,
        "mean entropy of revealed predictions (nats)",
        "NFE",
        "tokens / step",
        "Kendall τ",
    ]
    body = [
        [
            ORDER_LABELS[r["order"]],
            str(r["column"]),
            _est(r["entropy"]),
            f"{r['nfe']['estimate']:g}",
            f"{r['tokens_per_step']['estimate']:.3g}",
            f"{r['kendall_tau']['estimate']:.3f}".replace("-0.000", "0.000"),
        ]
        for r in rows
    ]
    text += (
        "\n## Decoding measures\n\n"
        "Entropy: of the prediction each revealed token came from, averaged over the "
        "generated positions, then over problems (± standard error over problems). "
        "NFE: predictor calls per problem. Kendall τ between reveal step and "
        "position (0 when everything is revealed at once).\n\n"
        + markdown_table(header, body)
    )

    # Entropy profile by step at the largest budget
    top = max(columns, key=lambda c: layout_steps(study, c))
    profile = [r for r in rows if int(r["column"]) == int(top)]
    if profile:
        width = max(len(r["entropy_by_step"]) for r in profile)
        header = ["order"] + [str(s + 1) for s in range(width)]
        body = [
            [ORDER_LABELS[r["order"]]]
            + [_fmt_float(v) for v in r["entropy_by_step"]]
            + [""] * (width - len(r["entropy_by_step"]))
            for r in profile
        ]
        text += (
            f"\n## Mean entropy (nats) of what each step revealed, {name} = {top}\n\n"
            + markdown_table(header, body)
        )
    return text


def layout_steps(study: ArithmeticStudy | LLaDAArithmeticStudy, column: int) -> int:
    """Decoding steps of one column (the column itself for :class:`ArithmeticStudy`)."""
    if isinstance(study, LLaDAArithmeticStudy):
        return study.layout(column)[1]
    return column


def _fmt_float(value: Any) -> str:
    if isinstance(value, str) or value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3f}"


def _csv_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat line per row: settings, accuracies, measures."""
    out = []
    for r in rows:
        line = {
            "order": r["order"],
            "gen_length": r["gen_length"],
            "steps": r["steps"],
            "block_length": r["block_length"],
            "seed": r["seed"],
            "n": r["overall"]["n"],
            "accuracy": r["overall"]["accuracy"],
            "accuracy_stderr": r["overall"]["stderr"],
        }
        for category, acc in r["by_category"].items():
            line[f"accuracy_{category}"] = acc["accuracy"]
        for measure in ("entropy", "nfe", "tokens_per_step", "kendall_tau"):
            line[measure] = r[measure]["estimate"]
            line[f"{measure}_stderr"] = r[measure]["stderr"]
        line["wall_s"] = r["wall_s"]
        out.append(line)
    return out


def arithmetic_figure(
    study: ArithmeticStudy | LLaDAArithmeticStudy, rows: Sequence[dict[str, Any]]
) -> bytes:
    """PNG: overall accuracy, edge-case accuracy and mean entropy against the column,
    one line per order (± one standard error)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    panels = [
        (axes[0], lambda r: r["overall"], "accuracy (%)", True),
        (
            axes[1],
            lambda r: r["by_category"].get("edge"),
            "edge-case accuracy (%)",
            True,
        ),
        (axes[2], lambda r: r["entropy"], "mean entropy revealed (nats)", False),
    ]
    for ax, get, title, is_accuracy in panels:
        for i, order in enumerate(study.orders):
            xs, ys, es = [], [], []
            for r in rows:
                value = get(r) if r["order"] == order else None
                if not value or (is_accuracy and not value.get("n")):
                    continue
                xs.append(int(r["column"]))
                if is_accuracy:
                    ys.append(100 * value["accuracy"])
                    es.append(100 * value["stderr"])
                else:
                    ys.append(value["estimate"])
                    es.append(value["stderr"])
            ax.errorbar(
                xs, ys, yerr=es, marker="os^vDx"[i % 6], capsize=3, markersize=4,
                label=ORDER_LABELS[order],
            )  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(study.columns()))
        ax.set_xticklabels([str(c) for c in study.columns()])
        ax.minorticks_off()
        ax.set_xlabel(study.column.replace("_", " "))
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0].legend(frameon=False, fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    return buffer.getvalue()


# -- command line ----------------------------------------------------------------------

#: ``--dtype`` names of the LLaDA path.
_DTYPES = {
    "auto": None,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def add_arithmetic_parser(study_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``arithmetic`` to the subparsers of ``pmdm study``.

    Parameters
    ----------
    study_subparsers : argparse._SubParsersAction
        The subparsers of ``pmdm study``.

    Returns
    -------
    argparse.ArgumentParser
        The new parser; its ``func`` runs the study, prints ``results.md`` and
        returns an exit code.
    """
    p = study_subparsers.add_parser(
        "arithmetic",
        help="orders x step budgets on 10-digit addition (the paper's Table 1)",
        description=(
            "Decode the sums of the 1000-problem suite with the orders l2r, r2l, "
            "random and low_confidence at several step budgets through HFPredictor "
            "and pmdm's decoders; write the paper's Table 1 layout, per-category "
            "accuracy, entropy, NFE, CSV/JSON and a plot. Resumable."
        ),
    )
    p.add_argument(
        "--model",
        default="shipped",
        metavar="PATH|shipped",
        help="'shipped' (the MDM adder shipped with pmdm), a folder of "
        "`pmdm train mdm-adder`, or with --llada a local LLaDA-8B-Instruct folder "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--llada",
        action="store_true",
        help="--model is a Hugging Face masked model with a tokenizer (LLaDA): chat "
        "prompts, answers parsed from text; loads the model's own code "
        "(trust_remote_code=True), so only use it on weights you trust",
    )
    p.add_argument(
        "--orders", nargs="+", default=list(ORDERS), choices=ORDERS, metavar="ORDER"
    )
    p.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=None,
        help="MDM: the step budgets over the 11 answer positions (default: "
        f"{' '.join(map(str, DEFAULT_STEPS))}); --llada: one step count for every "
        "generation length (default: the generation length)",
    )
    p.add_argument(
        "--gen-lengths",
        type=int,
        nargs="+",
        default=list(DEFAULT_GEN_LENGTHS),
        help="--llada: the generation lengths (default: %(default)s)",
    )
    p.add_argument(
        "--block-length",
        type=int,
        default=None,
        help="semi-autoregressive block length (default: one block)",
    )
    p.add_argument(
        "--prompt",
        default=LLADA_PROMPT,
        help="--llada: the user message, with {a} and {b} (default: %(default)r)",
    )
    p.add_argument(
        "--no-chat", action="store_true", help="--llada: no chat template (base model)"
    )
    p.add_argument(
        "--cfg", type=float, default=0.0, help="--llada: guidance scale (default: 0)"
    )
    p.add_argument(
        "--device", default=None, help="--llada: where the model runs, e.g. cuda"
    )
    p.add_argument(
        "--dtype",
        choices=list(_DTYPES),
        default="bfloat16",
        help="--llada: weight dtype (default: %(default)s)",
    )
    p.add_argument(
        "--n-problems",
        type=int,
        default=None,
        help="evenly spaced subset of the suite (default: all 1000)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="problems per model call (default: 1000, --llada 8)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's own choice)",
    )
    p.add_argument("--seed", type=int, default=0, help="fixes every number")
    p.add_argument("--out", type=Path, default=Path("results/arithmetic"))
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results of other settings in --out",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_cli)
    return p


def _run_cli(args: argparse.Namespace) -> int:
    """Run the study from parsed arguments; print the report; return 0."""
    progress = not args.no_progress
    if args.threads is not None:
        torch.set_num_threads(check_int("--threads", args.threads, minimum=1))
    if args.llada:
        from pmdm.adapters.hf import HFPredictor

        if args.steps is not None and len(args.steps) != 1:
            raise SystemExit(
                f"--steps={args.steps!r}: with --llada give one step count"
            )
        study = LLaDAArithmeticStudy(
            orders=tuple(args.orders),
            gen_lengths=tuple(args.gen_lengths),
            steps=None if args.steps is None else args.steps[0],
            block_length=args.block_length,
            prompt=args.prompt,
            chat=not args.no_chat,
            cfg_scale=args.cfg,
            seed=args.seed,
            n_problems=args.n_problems,
            batch_size=args.batch_size or 8,
        )
        predictor = HFPredictor.from_pretrained(
            args.model,
            trust_remote_code=True,
            dtype=_DTYPES[args.dtype],
            device=args.device,
        )
        run_llada_arithmetic_study(
            study, predictor, args.out, model_name=str(args.model),
            progress=progress, overwrite=args.overwrite,
        )  # fmt: skip
    else:
        study = ArithmeticStudy(
            orders=tuple(args.orders),
            steps=tuple(args.steps or DEFAULT_STEPS),
            block_length=args.block_length,
            seed=args.seed,
            n_problems=args.n_problems,
            batch_size=args.batch_size or 1000,
        )
        run_arithmetic_study(
            study, args.out, model=args.model, progress=progress,
            overwrite=args.overwrite,
        )  # fmt: skip
    print((args.out / "results.md").read_text())
    print(f"Wrote results.json, results.csv, results.md, results.png to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m pmdm.arithmetic.study [options]`` (same options)."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    parser = add_arithmetic_parser(subparsers)
    parser.prog = "python -m pmdm.arithmetic.study"
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
