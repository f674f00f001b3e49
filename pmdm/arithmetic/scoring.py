"""Exact-match scoring of addition outputs, overall and per category.

An output is the text a model wrote for the answer. It is correct when, after
stripping pad tokens and whitespace from both ends (and reversing it, for outputs
written least significant digit first), it is a string of digits whose value is the
sum. Leading zeros are accepted, so a zero-padded layout scores like a pad-padded
one; anything else inside the answer (a sign, a space between digits, a mask token
left undecoded) makes it wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pmdm.arithmetic.suite import CATEGORIES, Problem
from pmdm.arithmetic.tokenizer import PAD

__all__ = ["DEFAULT_PAD_TOKENS", "Accuracy", "ArithmeticScore", "parse_answer", "score"]

#: Strings stripped from both ends of an output besides whitespace: pmdm's own pad
#: token and the end/pad tokens of common Hugging Face tokenizers (LLaDA among them).
DEFAULT_PAD_TOKENS: tuple[str, ...] = (
    PAD,
    "<pad>",
    "<|endoftext|>",
    "<|eot_id|>",
    "</s>",
    "<eos>",
)


def _strip_ends(text: str, pad_tokens: Sequence[str]) -> str:
    """Strip whitespace and any of ``pad_tokens`` from both ends until none is left."""
    tokens = [t for t in pad_tokens if t]
    previous = None
    while previous != text:
        previous = text
        text = text.strip()
        for token in tokens:
            while text.startswith(token):
                text = text[len(token) :]
            while text.endswith(token):
                text = text[: -len(token)]
    return text


def parse_answer(
    text: str, *, reverse: bool = False, pad_tokens: Sequence[str] = DEFAULT_PAD_TOKENS
) -> int | None:
    """The integer an output denotes, or ``None`` if it is not a plain number.

    Parameters
    ----------
    text : str
        The answer text.
    reverse : bool
        The answer is written least significant digit first: reverse it (after
        stripping) before reading it.
    pad_tokens : sequence of str
        Strings stripped from both ends, besides whitespace.

    Returns
    -------
    int or None
        The value, or ``None`` when what is left is empty or not all ASCII digits.

    Examples
    --------
    >>> parse_answer("......357")
    357
    >>> parse_answer("753......", reverse=True)
    357
    >>> parse_answer(" 0357<|eot_id|>"), parse_answer("3 57"), parse_answer("35?")
    (357, None, None)
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got text={text!r}")
    core = _strip_ends(text, pad_tokens)
    if not core or not (core.isascii() and core.isdigit()):
        return None
    return int(core[::-1] if reverse else core)


@dataclass(frozen=True)
class Accuracy:
    """Exact-match accuracy on a set of problems.

    Attributes
    ----------
    n : int
        Number of problems.
    n_correct : int
        Number answered exactly.
    accuracy : float
        ``n_correct / n`` (``nan`` when ``n == 0``).
    stderr : float
        Binomial standard error ``sqrt(acc * (1 - acc) / n)``, the uncertainty of the
        accuracy as an estimate for problems drawn like these.
    """

    n: int
    n_correct: int
    accuracy: float = field(init=False)
    stderr: float = field(init=False)

    def __post_init__(self) -> None:
        acc = self.n_correct / self.n if self.n else math.nan
        stderr = math.sqrt(acc * (1 - acc) / self.n) if self.n else math.nan
        object.__setattr__(self, "accuracy", acc)
        object.__setattr__(self, "stderr", stderr)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return {
            "n": self.n,
            "n_correct": self.n_correct,
            "accuracy": self.accuracy,
            "stderr": self.stderr,
        }


@dataclass(frozen=True)
class ArithmeticScore:
    """Exact-match scores of outputs on a list of problems.

    Attributes
    ----------
    overall : Accuracy
        Over all problems.
    by_category : dict of str to Accuracy
        Per category present, in the order of
        :data:`pmdm.arithmetic.suite.CATEGORIES`.
    correct : tuple of bool
        Per problem, in input order.
    predicted : tuple of int or None
        The parsed value of each output (``None`` if unreadable).
    """

    overall: Accuracy
    by_category: dict[str, Accuracy]
    correct: tuple[bool, ...]
    predicted: tuple[int | None, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the overall and per-category accuracies."""
        return {
            "overall": self.overall.to_dict(),
            "by_category": {c: a.to_dict() for c, a in self.by_category.items()},
        }


def score(
    problems: Sequence[Problem],
    outputs: Iterable[str],
    *,
    reverse: bool = False,
    pad_tokens: Sequence[str] = DEFAULT_PAD_TOKENS,
) -> ArithmeticScore:
    """Score outputs by exact match, overall and per category.

    Parameters
    ----------
    problems : sequence of Problem
        The problems, e.g. :func:`pmdm.arithmetic.suite.load_suite`.
    outputs : iterable of str
        One answer text per problem, in the same order.
    reverse : bool
        Outputs are written least significant digit first.
    pad_tokens : sequence of str
        Strings stripped from both ends of each output, besides whitespace.

    Returns
    -------
    ArithmeticScore

    Raises
    ------
    ValueError
        If the numbers of problems and outputs differ.

    Examples
    --------
    >>> from pmdm.arithmetic.suite import Problem
    >>> problems = [Problem(0, 12, 345, 357, "easy"), Problem(1, 9, 1, 10, "edge")]
    >>> result = score(problems, ["..357", "01."], reverse=True)
    >>> result.correct, result.overall.accuracy
    ((False, True), 0.5)
    """
    outputs = list(outputs)
    if len(outputs) != len(problems):
        raise ValueError(
            f"outputs must have one entry per problem: got len(outputs)={len(outputs)} "
            f"for len(problems)={len(problems)}"
        )
    predicted = tuple(
        parse_answer(o, reverse=reverse, pad_tokens=pad_tokens) for o in outputs
    )
    correct = tuple(
        p.sum == value for p, value in zip(problems, predicted, strict=True)
    )
    present = [c for c in CATEGORIES if any(p.category == c for p in problems)]
    present += sorted({p.category for p in problems} - set(CATEGORIES))
    by_category = {
        c: Accuracy(
            n=sum(p.category == c for p in problems),
            n_correct=sum(
                ok for p, ok in zip(problems, correct, strict=True) if p.category == c
            ),
        )
        for c in present
    }
    overall = Accuracy(n=len(problems), n_correct=sum(correct))
    return ArithmeticScore(overall, by_category, correct, predicted)
