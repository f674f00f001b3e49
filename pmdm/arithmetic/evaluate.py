"""Small greedy decoders for checking the trained adders on the suite.

These exist for development and for the NanoAdder sweep: one token per step,
greedy (arg max) tokens, and three orders for the masked diffusion model. The
official order study runs the masked diffusion model through the decoders of
:mod:`pmdm.decoding` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from pmdm.arithmetic.scoring import ArithmeticScore, score
from pmdm.arithmetic.suite import Problem
from pmdm.arithmetic.tokenizer import MASK_ID, AdditionLayout
from pmdm.ops.validation import check_choice, check_int

__all__ = [
    "GREEDY_ORDERS",
    "LogitsFn",
    "evaluate_causal",
    "evaluate_masked",
    "greedy_generate",
    "greedy_unmask",
    "logits_fn",
]

#: A model as a function of token ids ``(N, T)`` to logits ``(N, T, V)``.
LogitsFn = Callable[[Tensor], Tensor]

#: Orders of :func:`greedy_unmask`: highest top probability first, left to right,
#: right to left.
GREEDY_ORDERS = ("confidence", "l2r", "r2l")


def logits_fn(model: nn.Module) -> LogitsFn:
    """Wrap a model returning an object with ``.logits`` as a gradient-free function."""

    @torch.no_grad()
    def fn(tokens: Tensor) -> Tensor:
        return model(tokens).logits

    return fn


def greedy_unmask(
    fn: LogitsFn, tokens: Tensor, *, order: str = "confidence", mask_id: int = MASK_ID
) -> tuple[Tensor, int]:
    """Fill the masked positions one per step, each with its arg max token.

    Parameters
    ----------
    fn : LogitsFn
        The masked model, ``(N, T) -> (N, T, V)``.
    tokens : Tensor, shape (N, T)
        Long ids with ``mask_id`` at the positions to fill.
    order : {"confidence", "l2r", "r2l"}
        Which masked position a step fills: the one whose arg max has the highest
        probability (LLaDA's ``low_confidence`` remasking with one token per step),
        the leftmost or the rightmost.
    mask_id : int
        The mask token; its own logit is never chosen.

    Returns
    -------
    tokens : Tensor, shape (N, T)
        Decoded ids (a new tensor).
    nfe : int
        Number of model calls, the largest number of masked positions in a row.

    Raises
    ------
    ValueError
        If ``order`` is not one of :data:`GREEDY_ORDERS`.
    """
    check_choice("order", order, GREEDY_ORDERS)
    if tokens.dim() != 2:
        raise ValueError(f"tokens must have shape (N, T), got {tuple(tokens.shape)}")
    x = tokens.clone()
    n, t = x.shape
    position = torch.arange(t).expand(n, t)
    nfe = 0
    while True:
        masked = x == mask_id
        if not masked.any():
            return x, nfe

        # Log-probabilities over real tokens: (N, T, V), the mask never predicted
        logits = fn(x)
        nfe += 1
        if mask_id < logits.shape[-1]:
            logits = logits.index_fill(-1, torch.tensor([mask_id]), float("-inf"))
        top_log_prob, top_token = logits.log_softmax(-1).max(-1)

        # Priority of each masked position under the order, -inf elsewhere: (N, T)
        if order == "confidence":
            priority = top_log_prob
        elif order == "l2r":
            priority = -position.to(top_log_prob.dtype)
        else:
            priority = position.to(top_log_prob.dtype)
        priority = priority.masked_fill(~masked, float("-inf"))
        chosen = priority.argmax(-1, keepdim=True)

        # Reveal the chosen position of every row that still has a mask
        reveal = (position == chosen) & masked.any(-1, keepdim=True)
        x = torch.where(reveal, top_token, x)


def greedy_generate(
    fn: LogitsFn, prompts: Tensor, n_new: int, *, allowed: int
) -> Tensor:
    """Continue prompts autoregressively with arg max tokens.

    Parameters
    ----------
    fn : LogitsFn
        A causal model, ``(N, T) -> (N, T, V)``.
    prompts : Tensor, shape (N, P)
        Long prompt ids.
    n_new : int
        Number of tokens to append.
    allowed : int
        Only ids below ``allowed`` are generated.

    Returns
    -------
    Tensor, shape (N, P + n_new)
        Prompts followed by the generated ids.
    """
    check_int("n_new", n_new, minimum=0)
    x = prompts
    for _ in range(n_new):
        next_logits = fn(x)[:, -1, :allowed]
        x = torch.cat([x, next_logits.argmax(-1, keepdim=True)], dim=-1)
    return x


def _batches(problems: Sequence[Problem], batch_size: int):
    check_int("batch_size", batch_size, minimum=1)
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        a = torch.tensor([p.a for p in chunk], dtype=torch.long)
        b = torch.tensor([p.b for p in chunk], dtype=torch.long)
        yield a, b


def evaluate_masked(
    fn: LogitsFn,
    problems: Sequence[Problem],
    layout: AdditionLayout,
    *,
    order: str = "confidence",
    batch_size: int = 500,
) -> tuple[ArithmeticScore, list[str]]:
    """Score a masked model that fills the answer field with :func:`greedy_unmask`.

    Parameters
    ----------
    fn : LogitsFn
        The masked model.
    problems : sequence of Problem
        E.g. :func:`pmdm.arithmetic.suite.load_suite`.
    layout : AdditionLayout
        The layout the model was trained on.
    order : {"confidence", "l2r", "r2l"}
        Unmasking order.
    batch_size : int
        Problems per model call.

    Returns
    -------
    score : ArithmeticScore
        Exact match, overall and per category.
    outputs : list of str
        The answer fields as written.
    """
    check_choice("order", order, GREEDY_ORDERS)
    outputs: list[str] = []
    for a, b in _batches(problems, batch_size):
        decoded, _ = greedy_unmask(
            fn, layout.encode(a, b, with_answer=False), order=order
        )
        outputs += layout.answer_strings(decoded)
    return score(problems, outputs, reverse=layout.reverse_answer), outputs


def evaluate_causal(
    fn: LogitsFn,
    problems: Sequence[Problem],
    layout: AdditionLayout,
    *,
    allowed: int,
    batch_size: int = 500,
) -> tuple[ArithmeticScore, list[str]]:
    """Score a causal model that writes the answer field after the prompt ``a+b=``.

    Parameters
    ----------
    fn : LogitsFn
        The causal model.
    problems : sequence of Problem
        The problems.
    layout : AdditionLayout
        The layout the model was trained on.
    allowed : int
        Only ids below ``allowed`` are generated.
    batch_size : int
        Problems per model call.

    Returns
    -------
    score : ArithmeticScore
    outputs : list of str
    """
    outputs: list[str] = []
    for a, b in _batches(problems, batch_size):
        prompts = layout.encode(a, b)[:, : layout.prompt_length]
        decoded = greedy_generate(fn, prompts, layout.answer_width, allowed=allowed)
        outputs += layout.answer_strings(decoded)
    return score(problems, outputs, reverse=layout.reverse_answer), outputs
