"""``pmdm generate``: LLaDA's sampler (or any pmdm order) on a model on disk.

The lead's ``pmdm`` command registers it with ``register_cli(commands)``; the same
parser runs standalone as ``python -m pmdm.adapters.cli generate ...``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["add_generate_arguments", "main", "register_cli", "run_generate"]

logger = logging.getLogger(__name__)

#: ``--dtype`` names and the weight dtype each loads (``auto``: transformers picks).
DTYPES = {
    "auto": None,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``pmdm generate`` to ``parser``."""
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="PATH",
        help="local model directory (save_pretrained output or a hub snapshot); "
        "nothing is downloaded",
    )
    parser.add_argument(
        "--prompt",
        action="append",
        required=True,
        help="prompt text; repeat for several prompts (different lengths run apart). "
        "Without a tokenizer: space-separated token ids",
    )
    parser.add_argument(
        "--gen-length", type=_positive_int, default=128, help="default: %(default)s"
    )
    parser.add_argument(
        "--steps", type=_positive_int, default=128, help="default: %(default)s"
    )
    parser.add_argument(
        "--block-length",
        type=_positive_int,
        default=32,
        help="semi-autoregressive block length (default: %(default)s)",
    )
    parser.add_argument(
        "--order",
        default="low_confidence",
        help="low_confidence, random, or a pmdm order: entropy, confidence, margin, "
        "l2r, r2l, sampled-confidence (default: %(default)s)",
    )
    parser.add_argument(
        "--temperature",
        type=_nonnegative_float,
        default=0.0,
        help="0 is greedy (default: %(default)s)",
    )
    parser.add_argument(
        "--cfg",
        type=_nonnegative_float,
        default=0.0,
        help="classifier-free guidance scale (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument(
        "--chat", action="store_true", help="apply the tokenizer's chat template"
    )
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="write the trajectory and step measurements as JSON",
    )
    parser.add_argument(
        "--tc-samples",
        type=int,
        default=0,
        help="estimate the model's TC of each block given its context with this many "
        "samples (0: off; costs block_length + 1 passes per block)",
    )
    parser.add_argument(
        "--device", default=None, help="where the model runs, e.g. cuda (default: cpu)"
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default="auto",
        help="weight dtype, e.g. bfloat16 for LLaDA-8B on a GPU (default: auto)",
    )
    parser.add_argument(
        "--mask-id", type=int, default=None, help="default: from config or tokenizer"
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model's own Python code (needed for LLaDA)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress")


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``generate`` command to the ``pmdm`` command's subparsers.

    Parameters
    ----------
    subparsers
        What ``parser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``generate`` parser; its default ``func`` runs :func:`run_generate`.
    """
    parser = subparsers.add_parser(
        "generate",
        help="decode after a prompt with a masked diffusion model on disk",
        description=(
            "Generate with LLaDA's sampler (steps within semi-autoregressive blocks, "
            "low_confidence or random remasking, temperature, classifier-free "
            "guidance) or any pmdm order, on a local Hugging Face masked model, and "
            "measure the run: per-step entropy and confidence, tokens per step, "
            "Kendall tau of the order, NFE and optionally the model's block TC."
        ),
    )
    add_generate_arguments(parser)
    parser.set_defaults(func=run_generate)
    return parser


def _load(args: argparse.Namespace):
    """The predictor for ``--model``: a tiny pmdm model directory or a HF one."""
    from pmdm.adapters.hf import TOKENIZER_FILES, HFPredictor, require_transformers
    from pmdm.adapters.tiny import TINY_MDM_FILE, load_tiny_mdm

    dtype = DTYPES[args.dtype]
    if not (args.model / TINY_MDM_FILE).is_file():
        return HFPredictor.from_pretrained(
            args.model,
            mask_id=args.mask_id,
            dtype=dtype,
            device=args.device,
            trust_remote_code=args.trust_remote_code,
        )

    # A model written by pmdm.adapters.tiny.save_tiny_mdm (offline tests).
    model = load_tiny_mdm(args.model)
    if dtype is not None:
        model = model.to(dtype)
    if args.device is not None:
        model = model.to(args.device)
    tokenizer = None
    if any((args.model / name).is_file() for name in TOKENIZER_FILES):
        transformers = require_transformers()
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            args.model, local_files_only=True
        )
    return HFPredictor(model, mask_id=args.mask_id, tokenizer=tokenizer)


def _encode(predictor, text: str, chat: bool) -> torch.Tensor:
    if predictor.tokenizer is not None:
        return predictor.encode(text, chat=chat)
    if chat:
        raise ValueError("--chat: the model has no tokenizer, so no chat template")
    try:
        return torch.tensor([int(t) for t in text.split()], dtype=torch.long)
    except ValueError:
        raise ValueError(
            f"--prompt={text!r}: the model has no tokenizer; expected space-separated "
            "token ids"
        ) from None


def _text(predictor, ids: torch.Tensor) -> str:
    if predictor.tokenizer is not None:
        return predictor.decode(ids)
    return " ".join(str(i) for i in ids.tolist())


def run_generate(args: argparse.Namespace) -> int:
    """Run ``pmdm generate`` with parsed arguments; print the decoded texts.

    Returns
    -------
    int
        0 on success, 1 if the model could not be loaded.

    Raises
    ------
    ValueError
        For invalid settings (the ``pmdm`` command reports them and exits with 2).
    """
    from pmdm import __version__
    from pmdm.adapters.generate import generate, resolve_order
    from pmdm.adapters.hf import AdapterLoadError

    resolve_order(args.order)  # fail on a bad name before loading the weights
    try:
        predictor = _load(args)
    except (AdapterLoadError, ImportError, OSError) as exc:
        print(f"pmdm generate: error: {exc}", file=sys.stderr)
        return 1
    prompts = [_encode(predictor, text, args.chat) for text in args.prompt]
    generator = torch.Generator().manual_seed(args.seed)
    results = generate(
        predictor,
        prompts,
        gen_length=args.gen_length,
        steps=args.steps,
        block_length=args.block_length,
        order=args.order,
        temperature=args.temperature,
        cfg_scale=args.cfg,
        generator=generator,
        tc_samples=args.tc_samples,
        progress=not args.no_progress,
    )

    sequences = []
    for k, (text, result) in enumerate(zip(args.prompt, results, strict=True)):
        generated = _text(predictor, result.generated[0])
        print(generated if len(results) == 1 else f"[{k}] {generated}")
        row = result.to_dict(0)
        print(
            f"[{k}] nfe={row['nfe']} tokens/step={row['tokens_per_step']:.3g} "
            f"kendall_tau={row['kendall_tau']:.3f}",
            file=sys.stderr,
        )
        sequences.append({"prompt": text, "text": generated, **row})

    if args.trace is not None:
        from pmdm.studies.runner import atomic_write_json

        settings = dict(results[0].settings)
        settings.update(
            model=str(args.model),
            seed=args.seed,
            chat=args.chat,
            device=args.device,
            dtype=args.dtype,
            mask_id=predictor.mask_id,
            vocab_size=predictor.vocab_size,
        )
        atomic_write_json(
            args.trace,
            {"pmdm": __version__, "settings": settings, "sequences": sequences},
        )
        logger.info("wrote %s", args.trace)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pmdm.adapters.cli generate ...``, the same as ``pmdm generate``."""
    parser = argparse.ArgumentParser(prog="pmdm")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:
        parser.exit(2, f"pmdm: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
