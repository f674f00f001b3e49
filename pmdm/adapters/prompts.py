"""Prompts for masked models: encoding, the canvas, batching, and guidance.

A prompt is nothing special to a predictor: the canvas is the prompt followed by
``G`` masked positions, and prompt positions are revealed tokens that no decoder
ever changes or counts as holes. Two facts of LLaDA shape this module:

- LLaDA attends without a padding mask, so padding a short prompt changes what the
  model sees. pmdm never pads: prompts of equal length share a batch and prompts of
  different lengths run apart (:func:`run_by_length`); :func:`stack_prompts`
  refuses a ragged batch.
- LLaDA's unsupervised classifier-free guidance runs the model a second time with
  the prompt replaced by masks and combines the two (:class:`GuidedPredictor`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from pmdm.ops.validation import check_finite, check_int, check_token_tensor
from pmdm.predictors.base import Predictor

__all__ = [
    "GuidedPredictor",
    "encode_prompt",
    "prompt_canvas",
    "run_by_length",
    "stack_prompts",
]


def encode_prompt(
    tokenizer: Any,
    text: str | Sequence[dict[str, str]],
    *,
    chat: bool = False,
    mask_id: int | None = None,
) -> Tensor:
    """Token ids of a prompt, through the tokenizer's chat template when asked.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        Called as ``tokenizer(text)["input_ids"]``; with ``chat=True`` it must have a
        chat template.
    text : str or sequence of dict
        The prompt, or with ``chat=True`` either one user message or a list of
        ``{"role": ..., "content": ...}`` messages.
    chat : bool
        Render ``text`` with ``tokenizer.apply_chat_template(messages,
        add_generation_prompt=True, tokenize=False)`` and tokenize the result
        without adding special tokens again (the template carries its own), as an
        instruct model such as LLaDA-8B-Instruct expects.
    mask_id : int, optional
        If given, the prompt must not contain it.

    Returns
    -------
    Tensor, shape (P,)
        Long token ids.

    Raises
    ------
    ValueError
        If ``chat=True`` and the tokenizer has no chat template, if ``text`` is a
        list of messages without ``chat=True``, or if the prompt contains the mask
        id or is empty.
    """
    if chat:
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                f"chat=True: the tokenizer {type(tokenizer).__name__} has no "
                "chat_template; use chat=False for a base model"
            )
        messages = (
            [{"role": "user", "content": text}] if isinstance(text, str) else text
        )
        rendered = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    else:
        if not isinstance(text, str):
            raise ValueError(
                f"text={text!r}: expected a str; a list of messages needs chat=True"
            )
        ids = tokenizer(text)["input_ids"]
    prompt = torch.tensor(ids, dtype=torch.long)
    if prompt.numel() == 0:
        raise ValueError(f"text={text!r}: the prompt encodes to no tokens")
    if mask_id is not None and bool(prompt.eq(mask_id).any()):
        raise ValueError(
            f"text={text!r}: the prompt contains the mask id {mask_id}; a prompt "
            "token is revealed by definition"
        )
    return prompt


def prompt_canvas(
    prompt: Tensor, gen_length: int, mask_id: int
) -> tuple[Tensor, Tensor]:
    """The prompt followed by ``gen_length`` masked positions.

    Parameters
    ----------
    prompt : Tensor, shape (*batch, P)
        Prompt token ids; every prompt of the batch has the same length ``P``.
    gen_length : int
        ``G``, number of positions to generate, ``>= 1``.
    mask_id : int
        The predictor's mask id; the prompt must not contain it.

    Returns
    -------
    tokens : Tensor, shape (*batch, P + G)
        Long ids: the prompt, then ``G`` copies of ``mask_id``.
    prompt_mask : Tensor, shape (P + G,)
        ``True`` at the ``P`` prompt positions.

    Raises
    ------
    ValueError
        If the prompt contains ``mask_id`` or ``gen_length < 1``.

    Examples
    --------
    >>> tokens, prompt_mask = prompt_canvas(torch.tensor([5, 6]), 3, mask_id=9)
    >>> tokens.tolist(), prompt_mask.tolist()
    ([5, 6, 9, 9, 9], [True, True, False, False, False])
    """
    prompt = check_token_tensor("prompt", prompt)
    gen_length = check_int("gen_length", gen_length, minimum=1)
    mask_id = check_int("mask_id", mask_id, minimum=0)
    if bool(prompt.eq(mask_id).any()):
        raise ValueError(
            f"prompt: contains the mask id {mask_id} at positions "
            f"{prompt.eq(mask_id).nonzero()[:, -1].unique().tolist()}; prompt tokens "
            "are revealed tokens and must be real ids"
        )
    holes = prompt.new_full((*prompt.shape[:-1], gen_length), mask_id)
    tokens = torch.cat([prompt, holes], dim=-1)
    prompt_mask = (
        torch.arange(tokens.shape[-1], device=prompt.device) < prompt.shape[-1]
    )
    return tokens, prompt_mask


def stack_prompts(prompts: Sequence[Tensor]) -> Tensor:
    """Stack prompts of one length into a batch; refuse prompts of different lengths.

    Parameters
    ----------
    prompts : sequence of Tensor, each of shape (P,)

    Returns
    -------
    Tensor, shape (N, P)

    Raises
    ------
    ValueError
        If the lengths differ: the model attends without a padding mask, so a
        padded prompt would change the prediction. Use :func:`run_by_length`.
    """
    prompts = [check_token_tensor(f"prompts[{i}]", p) for i, p in enumerate(prompts)]
    if not prompts:
        raise ValueError("prompts=[]: expected at least one prompt")
    lengths = sorted({p.shape[-1] for p in prompts})
    if len(lengths) > 1 or any(p.dim() != 1 for p in prompts):
        raise ValueError(
            f"prompts: expected 1-d prompts of one length, actual lengths {lengths}; "
            "the model attends without a padding mask, so pmdm does not pad: run "
            "prompts of different lengths apart with run_by_length"
        )
    return torch.stack(prompts)


def run_by_length(
    prompts: Sequence[Tensor], fn: Callable[[Tensor], Tensor]
) -> list[Tensor]:
    """Run ``fn`` once per group of equal-length prompts; results in input order.

    This is how pmdm batches prompts of different lengths for a model that has no
    padding mask: never padded, grouped by length. Each result equals what ``fn``
    gives on that prompt alone, up to floating-point differences between batch
    sizes in the model's matrix products (and to the random draws, which a seeded
    ``fn`` consumes per group).

    Parameters
    ----------
    prompts : sequence of Tensor, each of shape (P_j,)
        Prompt token ids, lengths may differ.
    fn : callable
        Takes a stacked group of shape ``(n, P)`` and returns a tensor whose first
        axis has length ``n`` (row ``k`` belongs to the group's ``k``-th prompt),
        e.g. a decoder run on ``prompt_canvas(group, G, mask_id)``.

    Returns
    -------
    list of Tensor
        ``fn``'s row for each prompt, in the order of ``prompts``.

    Raises
    ------
    ValueError
        If a prompt is not 1-d or ``fn`` returns the wrong number of rows.

    Examples
    --------
    >>> prompts = [torch.tensor([1, 2]), torch.tensor([3]), torch.tensor([4, 5])]
    >>> calls = []
    >>> def total(group):
    ...     calls.append(group.shape)
    ...     return group.sum(-1)
    >>> [int(x) for x in run_by_length(prompts, total)], calls
    ([3, 3, 9], [torch.Size([2, 2]), torch.Size([1, 1])])
    """
    groups: dict[int, list[int]] = {}
    for index, prompt in enumerate(prompts):
        prompt = check_token_tensor(f"prompts[{index}]", prompt)
        if prompt.dim() != 1:
            raise ValueError(
                f"prompts[{index}]: expected shape (P,), actual {tuple(prompt.shape)}"
            )
        groups.setdefault(prompt.shape[0], []).append(index)

    results: list[Tensor | None] = [None] * len(prompts)
    for length, members in groups.items():
        out = fn(torch.stack([prompts[i].long() for i in members]))  # (n, ...)
        if out.shape[0] != len(members):
            raise ValueError(
                f"fn: expected a result with {len(members)} rows for the prompts of "
                f"length {length}, actual shape {tuple(out.shape)}"
            )
        for row, index in enumerate(members):
            results[index] = out[row]
    return results  # type: ignore[return-value]


class GuidedPredictor:
    """Unsupervised classifier-free guidance around any predictor.

    Each call evaluates the conditional log-probabilities ``c`` on ``tokens`` and the
    unconditional ``u`` on ``tokens`` with every prompt position replaced by the mask
    id, and returns at masked positions

    ``log_softmax(u + (s + 1) * (c - u))``

    over the real tokens. Both passes go to the wrapped predictor in one call, the
    two inputs stacked on a new leading axis (one forward pass on a doubled batch,
    as in LLaDA's ``generate.py``). At ``s = 0`` there is no second pass: the call is
    the wrapped predictor's, unchanged.

    Parameters
    ----------
    predictor : Predictor
        Any predictor, e.g. an :class:`pmdm.adapters.hf.HFPredictor`.
    prompt_mask : Tensor, shape (T,) or (*batch, T)
        ``True`` at prompt positions; broadcast against the ``tokens`` of each call.
    cfg_scale : float
        The guidance scale ``s >= 0``.

    Attributes
    ----------
    vocab_size, mask_id : int
        Those of the wrapped predictor.
    nfe : int
        Calls so far (decoder steps); the wrapped predictor's own count says how
        many forward passes ran and on how many rows.

    Notes
    -----
    ``c`` and ``u`` are normalized log-probabilities, ``c = l_c - A`` and
    ``u = l_u - B`` with per-position constants ``A``, ``B``; the guided scores differ
    from LLaDA's combination of raw logits ``l_u + (s + 1)(l_c - l_u)`` by a constant
    per position, so after normalization they are the same distribution (with the
    mask token excluded, as everywhere in pmdm). Rows of revealed positions are
    ``c``'s. A token impossible under ``c`` stays impossible; a token possible under
    ``c`` but impossible under ``u`` makes the guidance undefined (``ValueError``).

    References
    ----------
    Nie et al., "Large Language Diffusion Models", 2025, arXiv:2502.09992 (Sec. 2.4
    and App. B: unsupervised classifier-free guidance); Ho and Salimans,
    "Classifier-Free Diffusion Guidance", 2022, arXiv:2207.12598.

    Examples
    --------
    >>> from pmdm.adapters.hf import HFPredictor
    >>> from pmdm.adapters.tiny import TinyMDM, TinyMDMConfig
    >>> base = HFPredictor(TinyMDM(TinyMDMConfig(vocab_size=8, mask_token_id=7)))
    >>> tokens, prompt_mask = prompt_canvas(torch.tensor([1, 2]), 2, mask_id=7)
    >>> guided = GuidedPredictor(base, prompt_mask, cfg_scale=1.5)
    >>> guided(tokens).shape, guided.nfe, base.nfe, base.sequences
    (torch.Size([4, 8]), 1, 1, 2)
    """

    def __init__(
        self, predictor: Predictor, prompt_mask: Tensor, cfg_scale: float
    ) -> None:
        if not isinstance(prompt_mask, Tensor) or prompt_mask.dtype != torch.bool:
            raise TypeError(
                f"prompt_mask: expected a bool tensor of shape (T,), actual "
                f"{getattr(prompt_mask, 'dtype', type(prompt_mask).__name__)}"
            )
        self.predictor = predictor
        self.prompt_mask = prompt_mask
        self.cfg_scale = check_finite("cfg_scale", cfg_scale, minimum=0.0)
        self.vocab_size = predictor.vocab_size
        self.mask_id = predictor.mask_id
        self.nfe = 0

    def __call__(self, tokens: Tensor) -> Tensor:
        """Guided log-probabilities, shape ``(*batch, T, V)``; see the class notes."""
        tokens = check_token_tensor("tokens", tokens)
        prompt_mask = self.prompt_mask.to(tokens.device)
        is_hole = tokens.eq(self.mask_id)
        if bool((is_hole & prompt_mask).any()):
            raise ValueError(
                "tokens: a prompt position holds the mask id; prompt positions are "
                "revealed tokens (check prompt_mask against the canvas)"
            )
        self.nfe += 1
        if self.cfg_scale == 0.0:
            return self.predictor(tokens)

        # One call on both inputs: (2, *batch, T) -> (2, *batch, T, V).
        unconditional = tokens.masked_fill(prompt_mask, self.mask_id)
        both = self.predictor(torch.stack([tokens, unconditional]))
        log_c, log_u = both[0], both[1]
        guided = log_u + (self.cfg_scale + 1.0) * (log_c - log_u)

        # Impossible under c stays impossible; possible under c only is undefined.
        undefined = (
            torch.isneginf(log_u) & torch.isfinite(log_c) & is_hole.unsqueeze(-1)
        )
        if bool(undefined.any()):
            raise ValueError(
                "cfg_scale: the unconditional pass gives probability zero to a token "
                "that the conditional pass allows; guidance is undefined there"
            )
        guided = guided.masked_fill(torch.isneginf(log_c), -torch.inf)
        guided = torch.log_softmax(guided, dim=-1)
        return torch.where(is_hole.unsqueeze(-1), guided, log_c)
