r"""A small masked diffusion model of addition, trained here in minutes.

:class:`MDMAdder` is a bidirectional transformer over the character vocabulary of
:mod:`pmdm.arithmetic.tokenizer`. It reads a problem in the fixed-width layout
``a+b=`` followed by the answer field, some of whose positions hold the mask token,
and returns logits for every position, like LLaDA: ``model(ids).logits`` has shape
``(N, T, V)``. It is trained with the masked diffusion objective of MDLM and LLaDA
restricted to the answer (the prompt is always visible, as in LLaDA's supervised
fine-tuning): see :func:`masked_diffusion_loss`.

A trained model is a folder with ``config.json`` (architecture, layout, vocabulary,
training settings and report) and ``model.pt`` (the ``state_dict``), written
atomically; :func:`load_mdm_adder` rebuilds it. The folder ``data/mdm_adder`` of
this package holds the checkpoint (801,166 parameters, 3.2 MB) trained on a shared
2-core CPU in 469 s by::

    nice -n 10 python -m pmdm.arithmetic.mdm --out runs/mdm_adder --steps 1000 \
        --seed 0 --threads 1 --minutes 15

(the defaults of ``pmdm train mdm-adder``: 1000 steps of 128 problems, seed 0, AdamW
at 1e-3 with cosine decay, curriculum from 3 digits). Its exact-match accuracy on the
suite with greedy one-token-per-step unmasking is 81.4% in confidence order, 76.4%
left to right and 81.0% right to left; its ``config.json`` records the command, the
loss history and the accuracies per category.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pmdm.arithmetic._io import (
    CONFIG_FILE,
    WEIGHTS_FILE,
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
from pmdm.arithmetic.evaluate import GREEDY_ORDERS, evaluate_masked, logits_fn
from pmdm.arithmetic.suite import load_suite
from pmdm.arithmetic.tokenizer import MASK_ID, PAD_ID, VOCAB, VOCAB_SIZE, AdditionLayout
from pmdm.ops.validation import check_int, check_positive

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_CHECKPOINT",
    "WEIGHTS_FILE",
    "MDMAdder",
    "MDMAdderConfig",
    "load_mdm_adder",
    "masked_diffusion_loss",
    "read_config",
    "register_cli",
    "save_mdm_adder",
    "train_mdm_adder",
]

logger = logging.getLogger(__name__)

#: The checkpoint shipped with pmdm.
DEFAULT_CHECKPOINT = Path(__file__).parent / "data" / "mdm_adder"

_KIND = "pmdm.arithmetic.mdm.MDMAdder"

#: Smallest mask ratio, as in LLaDA's pre-training code: t ~ U(eps, 1].
MASK_RATIO_EPS = 1e-3


@dataclass(frozen=True)
class MDMAdderConfig:
    """Architecture and layout of an :class:`MDMAdder`.

    Attributes
    ----------
    d_model, n_layers, n_heads, d_ff : int
        Transformer width, depth, heads and MLP width.
    reverse_answer : bool
        Train on the layout whose answer is written least significant digit first.
    operand_width : int
        Positions per operand (10 for the suite).
    """

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    reverse_answer: bool = False
    operand_width: int = 10

    def __post_init__(self) -> None:
        # Validates the architecture through the backbone's config
        self.transformer_config()

    @property
    def layout(self) -> AdditionLayout:
        """The problem layout."""
        return AdditionLayout(self.reverse_answer, self.operand_width)

    def transformer_config(self) -> TransformerConfig:
        """The bidirectional backbone's config; the vocabulary includes the mask."""
        return TransformerConfig(
            vocab_size=VOCAB_SIZE,
            max_len=self.layout.length,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_ff=self.d_ff,
            causal=False,
            mask_token_id=MASK_ID,
            pad_token_id=PAD_ID,
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> MDMAdderConfig:
        """Rebuild from :meth:`to_dict`; unknown keys raise ValueError."""
        unknown = sorted(set(payload) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown MDMAdderConfig keys {unknown!r} in {payload!r}")
        return cls(**payload)


class MDMAdder(Transformer):
    """Bidirectional transformer that fills masked answer positions of a sum.

    Parameters
    ----------
    config : MDMAdderConfig
        Architecture and layout.

    Attributes
    ----------
    adder_config : MDMAdderConfig
    layout : AdditionLayout
    mask_id : int
        Id of the mask token; the model's logit for it carries no meaning.
    vocab_size : int
        ``V``, the width of the logits (the mask included).

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> model = MDMAdder(MDMAdderConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32))
    >>> ids = model.layout.encode([12], [345], with_answer=False)
    >>> model(ids).logits.shape
    torch.Size([1, 33, 14])
    """

    def __init__(self, config: MDMAdderConfig) -> None:
        super().__init__(config.transformer_config())
        self.adder_config = config
        self.layout = config.layout
        self.mask_id = MASK_ID
        self.vocab_size = VOCAB_SIZE


def masked_diffusion_loss(
    model: MDMAdder,
    tokens: Tensor,
    generator: torch.Generator,
    *,
    eps: float = MASK_RATIO_EPS,
) -> Tensor:
    r"""Masked diffusion loss of a batch, the answer masked and the prompt visible.

    Parameters
    ----------
    model : MDMAdder
        The model.
    tokens : Tensor, shape (N, T)
        Clean problems in ``model.layout``.
    generator : torch.Generator
        Source of the mask ratios and masks.
    eps : float
        Smallest mask ratio.

    Returns
    -------
    Tensor, shape ()
        The loss.

    Notes
    -----
    Per problem a mask ratio :math:`t \in (\epsilon, 1]` is drawn and each of the
    :math:`A = W + 1` answer tokens is masked independently with probability
    :math:`t`, giving :math:`x_t`. The loss is

    .. math::

        \mathcal{L} = \frac{1}{N A} \sum_{n=1}^{N} \frac{1}{t_n}
            \sum_{i \in \text{answer}} \mathbb{1}[x_{t,i}^{(n)} = \text{M}]
            \bigl(-\log p_\theta(x_{0,i}^{(n)} \mid x_t^{(n)})\bigr),

    the negative ELBO of the masked diffusion model (MDLM, Sahoo et al. 2024,
    arXiv:2406.07524, eq. 10; LLaDA, Nie et al. 2025, arXiv:2502.09992, eq. 3 and
    its supervised form eq. 5) divided by the answer length, as LLaDA normalizes it.
    The ratios are drawn with MDLM's low-discrepancy sampler,
    :math:`t_n = \epsilon + (1 - \epsilon)\,((u + n / N) \bmod 1)`, one uniform
    :math:`u` per batch, which lowers the variance without changing the expectation.
    """
    n = tokens.shape[0]
    answer = model.layout.answer_slice
    targets = tokens[:, answer]

    # Low-discrepancy mask ratios, one per problem: (N,)
    u = torch.rand((), generator=generator)
    t = eps + (1 - eps) * ((u + torch.arange(n) / n) % 1)

    # Mask each answer token with probability t: (N, A)
    is_masked = torch.rand(targets.shape, generator=generator) < t[:, None]
    noisy = tokens.clone()
    noisy[:, answer] = torch.where(is_masked, MASK_ID, targets)

    # Cross-entropy at masked answer positions, weighted by 1 / t
    logits = model(noisy).logits[:, answer]
    token_nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    weighted = token_nll * is_masked / t[:, None]
    return weighted.sum() / targets.numel()


def save_mdm_adder(
    model: MDMAdder,
    out_dir: str | os.PathLike[str],
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` and ``model.pt`` of a model, each atomically.

    Parameters
    ----------
    model : MDMAdder
        The model.
    out_dir : path-like
        Destination folder (created if needed).
    extra : dict, optional
        More JSON-ready entries for ``config.json`` (training settings, report).

    Returns
    -------
    Path
        ``out_dir``.
    """
    info = {
        "tokenizer": {"vocab": list(VOCAB), "mask_id": MASK_ID, "pad_id": PAD_ID},
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


def read_config(path: str | os.PathLike[str] = DEFAULT_CHECKPOINT) -> dict[str, Any]:
    """The ``config.json`` of a saved :class:`MDMAdder` as a dict.

    Raises
    ------
    ValueError
        If the folder holds no ``config.json`` of an MDMAdder.
    """
    return read_checkpoint_config(path, _KIND)


def load_mdm_adder(path: str | os.PathLike[str] = DEFAULT_CHECKPOINT) -> MDMAdder:
    """Rebuild a saved :class:`MDMAdder` in eval mode.

    Parameters
    ----------
    path : path-like
        A folder written by :func:`save_mdm_adder` (default: the shipped checkpoint).

    Returns
    -------
    MDMAdder

    Raises
    ------
    ValueError
        If the folder holds no ``config.json`` of an MDMAdder.
    """
    payload = read_config(path)
    model = MDMAdder(MDMAdderConfig.from_dict(payload["model"]))
    model.load_state_dict(load_state_dict(path))
    return model.eval()


def train_mdm_adder(
    out_dir: str | os.PathLike[str],
    steps: int = 1000,
    seed: int = 0,
    *,
    batch_size: int = 128,
    lr: float = 1e-3,
    config: MDMAdderConfig | None = None,
    minutes: float | None = None,
    num_threads: int | None = None,
    progress: bool = False,
    evaluate: bool = False,
    command: str | None = None,
    **settings: Any,
) -> tuple[MDMAdder, TrainReport]:
    """Train an :class:`MDMAdder` on random addition problems, resumably.

    Parameters
    ----------
    out_dir : path-like
        Run folder: the resumable training state (``train_state.pt``) and, at the end,
        ``config.json`` and ``model.pt``. A folder with a finished run is reloaded.
    steps : int
        Optimizer steps.
    seed : int
        Seeds the initial weights and all training randomness.
    batch_size : int
        Problems per step.
    lr : float
        Peak AdamW learning rate (cosine schedule).
    config : MDMAdderConfig, optional
        Architecture (default :class:`MDMAdderConfig`).
    minutes : float, optional
        Time budget; training stops early and saves when it is spent (the run can be
        resumed with a larger budget).
    num_threads : int, optional
        Call ``torch.set_num_threads`` with it (process-wide).
    progress : bool
        Show a progress bar.
    evaluate : bool
        At the end, score the model on the shipped suite by greedy unmasking, one
        token per step, in confidence, left-to-right and right-to-left order, and
        record the accuracies in ``config.json`` under ``suite_accuracy``.
    command : str, optional
        The command line that launched training, recorded in ``config.json``.
    **settings
        Further fields of the training settings (``weight_decay``, ``warmup_steps``,
        ``curriculum_start``, ``checkpoint_every``, ...).

    Returns
    -------
    model : MDMAdder
        The trained model, in eval mode.
    report : TrainReport
        Steps done, wall time, loss history.

    Raises
    ------
    ValueError
        For invalid settings, or if ``out_dir`` holds a run with other settings.
    """
    config = config or MDMAdderConfig()
    train_settings = TrainSettings(
        steps=steps, batch_size=batch_size, seed=seed, lr=lr, **settings
    )
    max_seconds = None if minutes is None else 60 * check_positive("minutes", minutes)
    if num_threads is not None:
        torch.set_num_threads(check_int("num_threads", num_threads, minimum=1))

    torch.manual_seed(seed)
    model = MDMAdder(config)
    layout = model.layout

    def loss_fn(model: MDMAdder, step: int, generator: torch.Generator) -> Tensor:
        a, b = sample_operands(batch_size, train_settings.max_digits(step), generator)
        return masked_diffusion_loss(model, layout.encode(a, b), generator)

    report = train_loop(
        model,
        loss_fn,
        train_settings,
        out_dir,
        max_seconds=max_seconds,
        progress=progress,
        desc="mdm-adder",
        identity=config.to_dict(),
    )
    extra: dict[str, Any] = {
        "training": {
            **train_settings.to_dict(),
            "objective": "masked diffusion, answer only, 1/t weighting (LLaDA eq. 5)",
            "command": command,
            "torch_version": torch.__version__,
            "num_threads": torch.get_num_threads(),
        },
        "report": report.to_dict(),
    }
    if evaluate:
        extra["suite_accuracy"] = _suite_accuracy(model)
    save_mdm_adder(model, out_dir, extra=extra)
    return model, report


def _suite_accuracy(model: MDMAdder) -> dict[str, Any]:
    """Greedy one-token-per-step accuracy on the suite for three orders."""
    problems = load_suite()
    return {
        order: evaluate_masked(logits_fn(model), problems, model.layout, order=order)[
            0
        ].to_dict()
        for order in GREEDY_ORDERS
    }


def register_cli(subparsers: Any, name: str = "mdm-adder") -> argparse.ArgumentParser:
    """Add the ``mdm-adder`` training command to an argparse subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        E.g. the subparsers of ``pmdm train``.
    name : str
        Name of the command.

    Returns
    -------
    argparse.ArgumentParser
        The new parser; its default ``func`` runs training and returns an exit code.
    """
    parser = subparsers.add_parser(
        name,
        help="train the small masked diffusion model of addition",
        description="Train an MDMAdder with the masked diffusion objective; resumable.",
    )
    defaults = MDMAdderConfig()
    parser.add_argument(
        "--out", required=True, help="run folder (resumes if it exists)"
    )
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data")
    parser.add_argument("--batch-size", type=int, default=128, help="problems per step")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--minutes", type=float, default=None, help="time budget")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--d-model", type=int, default=defaults.d_model)
    parser.add_argument("--layers", type=int, default=defaults.n_layers)
    parser.add_argument("--heads", type=int, default=defaults.n_heads)
    parser.add_argument("--d-ff", type=int, default=defaults.d_ff)
    parser.add_argument(
        "--reverse-answer", action="store_true", help="answer written LSD first"
    )
    parser.add_argument(
        "--no-evaluate",
        action="store_true",
        help="skip scoring on the suite at the end",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    parser.set_defaults(func=_run_cli)
    return parser


def _run_cli(args: argparse.Namespace) -> int:
    import shlex
    import sys

    config = MDMAdderConfig(
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=args.heads,
        d_ff=args.d_ff,
        reverse_answer=args.reverse_answer,
    )
    train_mdm_adder(
        args.out,
        steps=args.steps,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        config=config,
        minutes=args.minutes,
        num_threads=args.threads,
        progress=not args.no_progress,
        evaluate=not args.no_evaluate,
        command=getattr(args, "command_line", None)
        or shlex.join(["pmdm", *sys.argv[1:]]),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run training as ``python -m pmdm.arithmetic.mdm [options]`` (same options)."""
    import shlex
    import sys

    argv = sys.argv[1:] if argv is None else argv
    subparsers = argparse.ArgumentParser().add_subparsers()
    parser = register_cli(subparsers)
    parser.prog = "python -m pmdm.arithmetic.mdm"
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "pmdm.arithmetic.mdm", *argv])
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
