"""An independent, plain re-implementation of LLaDA's published sampler (tests only).

Written from the description in Nie et al., "Large Language Diffusion Models", 2025,
arXiv:2502.09992 (Sec. 2.4, App. B: reverse process with low-confidence remasking,
semi-autoregressive blocks, unsupervised classifier-free guidance) and from the
semantics of ``generate.py`` in the GSAI-ML/LLaDA repository. pmdm's own decoders,
configured as LLaDA's sampler, must reproduce it token for token; this file is the
independent side of that comparison, so it uses nothing from ``pmdm``.

The algorithm, for one prompt of length ``P`` and a canvas of length ``L = P + G``:

1. The canvas is the prompt followed by ``G = gen_length`` masks.
2. The generated part is cut into ``G / block_length`` blocks, decoded left to
   right; each block gets ``steps / num_blocks`` steps.
3. Within a block of ``n`` masked positions and ``S`` steps, step ``s`` reveals
   ``n // S`` positions, plus one more for each of the first ``n % S`` steps.
4. Each step calls the model once on the whole canvas. With guidance ``s > 0`` the
   model also sees the canvas with the prompt replaced by masks, and the logits are
   ``u + (s + 1)(c - u)``.
5. A candidate token is drawn at every position: the argmax of the logits at
   temperature 0, else the argmax of ``logits / temperature + Gumbel`` noise, drawn
   in float64 (LLaDA writes it as ``exp(logits) / (-log U)^temperature``, the same
   argmax).
6. Each masked position gets a confidence: ``low_confidence`` uses the float64
   softmax probability of its candidate, ``random`` a uniform number. Positions
   after the current block get ``-inf``; revealed positions are not eligible.
7. The ``k`` eligible positions of highest confidence are revealed with their
   candidates (ties: the lowest position first).

Choices this file makes where the published code is silent or platform dependent,
each of which pmdm's configuration must make the same way to match:

- Ties between equal confidences go to the lowest position (``torch.topk`` leaves
  the order of ties unspecified).
- Random numbers come from ``generator`` in float64 and in this order per step:
  first the Gumbel uniforms of shape ``(L, V)`` (only if ``temperature > 0``), then
  the ``random`` remasking uniforms of shape ``(L,)`` (only for ``random``).
  LLaDA draws its remasking uniforms in float32 from the global generator.
- ``suppress_mask_logit=True`` sets the mask token's logit to ``-inf`` after
  guidance and before anything else, as pmdm's predictor contract does. The
  published code keeps it (default ``False`` here): then the mask can win the
  argmax, and a position "revealed" as the mask id stays a hole that later steps
  of the same or a later block may still fill.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _logits_of(model_fn: Callable[[Tensor], object], x: Tensor) -> Tensor:
    """Call the model on a (rows, L) batch; accept a tensor or an object with .logits."""
    out = model_fn(x)
    logits = getattr(out, "logits", out)
    return logits.to(torch.float64)


def steps_per_block_schedule(num_masked: int, steps: int) -> list[int]:
    """How many positions each of ``steps`` steps reveals among ``num_masked``.

    Every step reveals ``num_masked // steps``; the first ``num_masked % steps`` steps
    reveal one more.
    """
    base, remainder = divmod(num_masked, steps)
    return [base + 1 if s < remainder else base for s in range(steps)]


@torch.no_grad()
def llada_generate(
    model_fn: Callable[[Tensor], object],
    prompt: Tensor,
    gen_length: int,
    steps: int,
    block_length: int,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int = 126336,
    generator: torch.Generator | None = None,
    *,
    suppress_mask_logit: bool = False,
) -> Tensor:
    """LLaDA's sampler, one prompt, one model call per step.

    Parameters
    ----------
    model_fn : callable
        ``model_fn(x)`` with ``x`` of shape ``(rows, L)`` long returns logits of
        shape ``(rows, L, V)``, or an object whose ``.logits`` has that shape.
    prompt : Tensor, shape (P,) or (1, P)
        Prompt token ids, none equal to ``mask_id``.
    gen_length, steps, block_length : int
        ``G``, total steps, block length; ``G`` must be a multiple of
        ``block_length`` and ``steps`` a multiple of the number of blocks.
    temperature : float
        ``0`` for argmax, else Gumbel-max sampling at this temperature.
    cfg_scale : float
        Unsupervised classifier-free guidance scale; no second pass unless ``> 0``.
    remasking : {"low_confidence", "random"}
    mask_id : int
    generator : torch.Generator, optional
        Source of all random numbers (CPU).
    suppress_mask_logit : bool
        Exclude the mask token from sampling and confidences (pmdm's contract).

    Returns
    -------
    Tensor, shape (P + G,)
        The final canvas: the prompt, then the generated tokens.
    """
    prompt = prompt.reshape(-1).long()
    if bool((prompt == mask_id).any()):
        raise ValueError("prompt contains mask_id")
    if gen_length % block_length != 0:
        raise ValueError("gen_length must be a multiple of block_length")
    num_blocks = gen_length // block_length
    if steps % num_blocks != 0:
        raise ValueError("steps must be a multiple of gen_length // block_length")
    if remasking not in ("low_confidence", "random"):
        raise ValueError(f"unknown remasking {remasking!r}")
    steps_per_block = steps // num_blocks
    prompt_length = prompt.shape[0]
    total_length = prompt_length + gen_length

    x = torch.full((total_length,), mask_id, dtype=torch.long)
    x[:prompt_length] = prompt
    is_prompt = torch.zeros(total_length, dtype=torch.bool)
    is_prompt[:prompt_length] = True

    for block in range(num_blocks):
        block_start = prompt_length + block * block_length
        block_end = block_start + block_length
        num_masked = int((x[block_start:block_end] == mask_id).sum())
        schedule = steps_per_block_schedule(num_masked, steps_per_block)

        for step in range(steps_per_block):
            is_masked = x == mask_id

            # The model's logits, with or without guidance: (L, V).
            if cfg_scale > 0:
                unconditional = x.clone()
                unconditional[is_prompt] = mask_id
                both = _logits_of(model_fn, torch.stack([x, unconditional]))
                conditional_logits, unconditional_logits = both[0], both[1]
                logits = unconditional_logits + (cfg_scale + 1) * (
                    conditional_logits - unconditional_logits
                )
            else:
                logits = _logits_of(model_fn, x.unsqueeze(0))[0]
            if suppress_mask_logit:
                logits = logits.clone()
                logits[:, mask_id] = -torch.inf

            # A candidate token at every position.
            if temperature == 0:
                candidates = logits.argmax(dim=-1)
            else:
                uniform = torch.rand(
                    logits.shape, dtype=torch.float64, generator=generator
                )
                noisy = logits - temperature * torch.log(-torch.log(uniform))
                candidates = noisy.argmax(dim=-1)

            # The confidence of each candidate.
            if remasking == "low_confidence":
                probs = torch.softmax(logits, dim=-1)
                conf = probs[torch.arange(total_length), candidates]
            else:
                conf = torch.rand(
                    total_length, dtype=torch.float64, generator=generator
                )
            conf = conf.clone()
            conf[block_end:] = -torch.inf
            conf[~is_masked] = -torch.inf

            # Reveal the k most confident positions, ties to the lowest position.
            k = schedule[step]
            chosen = []
            for position in range(total_length):
                if conf[position] == -torch.inf:
                    continue
                chosen.append(position)
            chosen.sort(key=lambda position: (-float(conf[position]), position))
            for position in chosen[:k]:
                x[position] = candidates[position]

    return x
