"""Character vocabulary and the fixed-width layout of an addition problem.

The vocabulary has one token per character: the ten digits, ``+``, ``=``, a pad
token ``.`` (also the end of an answer) and a mask token ``?`` used only by the
masked diffusion model. Token ids are the characters' positions in :data:`VOCAB`.

Layout
------
Every problem occupies the same ``T = 2 * W + 2 + (W + 1)`` positions, ``W = 10``
digits per operand, so that a masked diffusion model decodes a fixed-length answer
region and digits of equal weight sit at fixed positions::

    ........12+.......345=........357      reverse_answer=False (T = 33)
    ........12+.......345=753........      reverse_answer=True

Operands are right-aligned in fields of ``W`` positions and padded on the left with
the pad token. The answer field has ``W + 1`` positions because a sum of two
``W``-digit numbers can have ``W + 1`` digits. With ``reverse_answer=False`` the sum
is written most significant digit first, right-aligned and padded on the left; with
``reverse_answer=True`` it is written least significant digit first, left-aligned
and padded on the right, so that answer position ``j`` holds the digit of ``10**j``.
Padding uses the pad token, never leading zeros: the answer field, once stripped of
pad tokens (and reversed for the reversed layout), is the canonical decimal string
of the sum. The prompt ``a+b=`` is the first ``2 * W + 2`` positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from pmdm.ops.validation import check_int

__all__ = [
    "DIGITS",
    "EQUALS",
    "EQUALS_ID",
    "MASK",
    "MASK_ID",
    "MAX_OPERAND_DIGITS",
    "PAD",
    "PAD_ID",
    "PLUS",
    "PLUS_ID",
    "VOCAB",
    "VOCAB_SIZE",
    "AdditionLayout",
    "decode",
    "encode",
]

DIGITS = "0123456789"
PLUS = "+"
EQUALS = "="
PAD = "."
MASK = "?"

#: All tokens, in id order: digits 0-9 have ids 0-9.
VOCAB: tuple[str, ...] = (*DIGITS, PLUS, EQUALS, PAD, MASK)
VOCAB_SIZE = len(VOCAB)
PLUS_ID = VOCAB.index(PLUS)
EQUALS_ID = VOCAB.index(EQUALS)
PAD_ID = VOCAB.index(PAD)
MASK_ID = VOCAB.index(MASK)

#: Operands of the test suite have at most this many digits.
MAX_OPERAND_DIGITS = 10

_CHAR_TO_ID = {char: i for i, char in enumerate(VOCAB)}


def encode(text: str) -> Tensor:
    """Token ids of a string, one per character.

    Parameters
    ----------
    text : str
        Characters from :data:`VOCAB`.

    Returns
    -------
    Tensor, shape (len(text),)
        Long token ids.

    Raises
    ------
    ValueError
        If ``text`` holds a character outside the vocabulary.

    Examples
    --------
    >>> encode("12+3=").tolist()
    [1, 2, 10, 3, 11]
    """
    unknown = sorted(set(text) - _CHAR_TO_ID.keys())
    if unknown:
        raise ValueError(
            f"text holds characters outside the vocabulary {''.join(VOCAB)!r}: "
            f"{unknown!r}; got text={text!r}"
        )
    return torch.tensor([_CHAR_TO_ID[char] for char in text], dtype=torch.long)


def decode(ids: Tensor | Sequence[int]) -> str:
    """The string of a 1-D sequence of token ids (inverse of :func:`encode`).

    Raises
    ------
    ValueError
        If an id lies outside ``[0, VOCAB_SIZE)``.

    Examples
    --------
    >>> decode(encode("..7+8=15"))
    '..7+8=15'
    """
    values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
    bad = [v for v in values if not 0 <= v < VOCAB_SIZE]
    if bad:
        raise ValueError(
            f"ids must lie in [0, {VOCAB_SIZE}), got ids with values {bad!r}"
        )
    return "".join(VOCAB[v] for v in values)


def _digit_field(x: Tensor, width: int, reverse: bool) -> Tensor:
    """Token ids of non-negative integers written in a pad-filled field.

    ``x`` of shape ``(*batch,)`` becomes ``(*batch, width)``: right-aligned, most
    significant digit first, or (``reverse``) left-aligned, least significant first.
    """
    # Digit of 10**k at column k, least significant first: (*batch, width)
    powers = 10 ** torch.arange(width, dtype=torch.long)
    digits = torch.div(x[..., None], powers, rounding_mode="floor") % 10

    # A number has max(1, #{k >= 1 : x >= 10**k}) digits; columns past it are pad
    n_digits = 1 + (x[..., None] >= powers[1:]).sum(-1)
    is_pad = torch.arange(width) >= n_digits[..., None]
    field = torch.where(is_pad, torch.full_like(digits, PAD_ID), digits)
    return field if reverse else field.flip(-1)


@dataclass(frozen=True)
class AdditionLayout:
    """Fixed-width layout ``a+b=`` then the sum, as described in the module docstring.

    Parameters
    ----------
    reverse_answer : bool
        Write the sum least significant digit first (left-aligned) instead of most
        significant digit first (right-aligned).
    operand_width : int
        ``W``, the number of positions of each operand; operands must be below
        ``10**W``. The answer has ``W + 1`` positions.

    Examples
    --------
    >>> layout = AdditionLayout(operand_width=3)
    >>> layout.text(12, 995)
    '.12+995=1007'
    >>> AdditionLayout(reverse_answer=True, operand_width=3).text(12, 995)
    '.12+995=7001'
    >>> layout.length, layout.answer_slice
    (12, slice(8, 12, None))
    """

    reverse_answer: bool = False
    operand_width: int = MAX_OPERAND_DIGITS

    def __post_init__(self) -> None:
        check_int("operand_width", self.operand_width, minimum=1, maximum=17)
        if not isinstance(self.reverse_answer, bool):
            raise TypeError(
                f"reverse_answer must be a bool, got reverse_answer={self.reverse_answer!r}"
            )

    @property
    def answer_width(self) -> int:
        """Number of answer positions, ``W + 1``."""
        return self.operand_width + 1

    @property
    def prompt_length(self) -> int:
        """Number of prompt positions, ``2 * W + 2`` (``a+b=``)."""
        return 2 * self.operand_width + 2

    @property
    def length(self) -> int:
        """``T``, the total number of positions."""
        return self.prompt_length + self.answer_width

    @property
    def answer_slice(self) -> slice:
        """The answer positions, ``slice(prompt_length, T)``."""
        return slice(self.prompt_length, self.length)

    def _check_operand(self, name: str, value: int) -> int:
        return check_int(name, value, minimum=0, maximum=10**self.operand_width - 1)

    def answer_text(self, total: int) -> str:
        """The answer field of a sum, ``W + 1`` characters."""
        check_int("total", total, minimum=0, maximum=10**self.answer_width - 1)
        if self.reverse_answer:
            return str(total)[::-1].ljust(self.answer_width, PAD)
        return str(total).rjust(self.answer_width, PAD)

    def text(self, a: int, b: int, *, with_answer: bool = True) -> str:
        """The full text of the problem ``a + b``, answer masked unless ``with_answer``.

        Raises
        ------
        ValueError
            If ``a`` or ``b`` is negative or has more than ``W`` digits.
        """
        width = self.operand_width
        a, b = self._check_operand("a", a), self._check_operand("b", b)
        prompt = f"{str(a).rjust(width, PAD)}{PLUS}{str(b).rjust(width, PAD)}{EQUALS}"
        answer = self.answer_text(a + b) if with_answer else MASK * self.answer_width
        return prompt + answer

    def encode(
        self,
        a: Tensor | Sequence[int],
        b: Tensor | Sequence[int],
        *,
        with_answer: bool = True,
    ) -> Tensor:
        """Token ids of a batch of problems, vectorized.

        Parameters
        ----------
        a, b : Tensor or sequence of int, shape (*batch,)
            Non-negative operands below ``10**W``.
        with_answer : bool
            Write the sum into the answer field; otherwise fill it with the mask id.

        Returns
        -------
        Tensor, shape (*batch, T)
            Long token ids; row ``i`` equals ``encode(self.text(a[i], b[i]))``.

        Raises
        ------
        ValueError
            If an operand is negative or has more than ``W`` digits, or if the shapes
            of ``a`` and ``b`` differ.
        """
        a = torch.as_tensor(a, dtype=torch.long)
        b = torch.as_tensor(b, dtype=torch.long)
        if a.shape != b.shape:
            raise ValueError(
                f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        limit = 10**self.operand_width
        for name, x in (("a", a), ("b", b)):
            if x.numel() and (x.min() < 0 or x.max() >= limit):
                raise ValueError(
                    f"{name} must lie in [0, {limit - 1}], got values from "
                    f"{int(x.min())} to {int(x.max())}"
                )
        width = self.operand_width
        plus = torch.full((*a.shape, 1), PLUS_ID, dtype=torch.long)
        equals = torch.full((*a.shape, 1), EQUALS_ID, dtype=torch.long)
        if with_answer:
            answer = _digit_field(a + b, self.answer_width, self.reverse_answer)
        else:
            answer = torch.full(
                (*a.shape, self.answer_width), MASK_ID, dtype=torch.long
            )
        fields = (
            _digit_field(a, width, False),
            plus,
            _digit_field(b, width, False),
            equals,
            answer,
        )
        return torch.cat(fields, dim=-1)

    def answer_strings(self, tokens: Tensor) -> list[str]:
        """The answer fields of decoded rows as strings, as written (not reversed).

        Parameters
        ----------
        tokens : Tensor, shape (N, T)
            Token ids.

        Returns
        -------
        list of str
            ``N`` strings of ``W + 1`` characters; score them with
            :func:`pmdm.arithmetic.scoring.score` and ``reverse=self.reverse_answer``.
        """
        if tokens.dim() != 2 or tokens.shape[-1] != self.length:
            raise ValueError(
                f"tokens must have shape (N, {self.length}), got {tuple(tokens.shape)}"
            )
        return [decode(row) for row in tokens[:, self.answer_slice]]
