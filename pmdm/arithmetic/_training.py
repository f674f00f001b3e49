"""Training machinery shared by the masked diffusion adder and NanoAdder.

Random training problems drawn from a seeded generator, a curriculum on operand
length, AdamW with linear warm-up and cosine decay, and a resumable loop: the whole
training state (weights, optimizer, schedule, generator, step, elapsed time, loss
history) is saved atomically every few steps, and a run restarted on the same folder
continues from there and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pmdm.arithmetic._io import atomic_torch_save
from pmdm.arithmetic.tokenizer import MAX_OPERAND_DIGITS
from pmdm.ops.validation import check_int, check_positive

logger = logging.getLogger(__name__)

#: File of the resumable training state inside a run folder.
TRAIN_STATE_FILE = "train_state.pt"


@dataclass(frozen=True)
class TrainSettings:
    """Optimization settings of one training run.

    Attributes
    ----------
    steps : int
        Number of optimizer steps; the cosine schedule spans them.
    batch_size : int
        Problems per step.
    seed : int
        Seeds the initial weights and every random draw of training.
    lr : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW weight decay.
    warmup_steps : int
        Linear warm-up from 0 to ``lr``; then cosine decay to ``min_lr_ratio * lr``.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr``.
    grad_clip : float
        Clip the gradient norm to this value.
    curriculum_start : int
        Largest operand length at step 0. It grows by one digit every
        ``curriculum_fraction * steps / (11 - curriculum_start)`` steps and stays at 10
        from then on (reached after ``10 - curriculum_start`` increments, before step
        ``curriculum_fraction * steps``). ``curriculum_start=10`` turns the curriculum
        off.
    curriculum_fraction : float
        Fraction of the steps over which the curriculum grows.
    checkpoint_every : int
        Save the training state every this many steps (and at the end).
    """

    steps: int
    batch_size: int = 256
    seed: int = 0
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    curriculum_start: int = 3
    curriculum_fraction: float = 0.3
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_positive("lr", self.lr)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        check_int(
            "curriculum_start",
            self.curriculum_start,
            minimum=1,
            maximum=MAX_OPERAND_DIGITS,
        )
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        if not 0 < self.curriculum_fraction <= 1:
            raise ValueError(
                "curriculum_fraction must lie in (0, 1], got "
                f"curriculum_fraction={self.curriculum_fraction!r}"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(
                f"min_lr_ratio must lie in [0, 1], got min_lr_ratio={self.min_lr_ratio!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    def lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` at ``step``: linear warm-up, then cosine decay."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine

    def max_digits(self, step: int) -> int:
        """Largest operand length drawn at ``step`` (the curriculum).

        Examples
        --------
        >>> settings = TrainSettings(steps=1000, curriculum_start=3, curriculum_fraction=0.4)
        >>> [settings.max_digits(s) for s in (0, 49, 50, 99, 100, 349, 350, 999)]
        [3, 3, 4, 4, 5, 9, 10, 10]
        """
        ramp = self.curriculum_fraction * self.steps
        grown = int((MAX_OPERAND_DIGITS - self.curriculum_start + 1) * step / ramp)
        return min(MAX_OPERAND_DIGITS, self.curriculum_start + grown)


@dataclass
class TrainReport:
    """What a training run did.

    Attributes
    ----------
    steps_done : int
        Optimizer steps taken in total (over all resumptions).
    seconds : float
        Wall time spent training, summed over resumptions.
    stopped_early : bool
        The time budget ran out before ``steps``; the weights then depend on the
        machine's speed, not only on the seed.
    history : list of dict
        ``{"step", "loss", "max_digits"}`` rows, the mean loss of each logging window.
    """

    steps_done: int
    seconds: float
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def sample_operands(
    n: int, max_digits: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Draw ``n`` random addition problems with operands of at most ``max_digits`` digits.

    The length of ``a`` is uniform on ``1..max_digits``; ``b`` has the same length
    with probability 1/2, else an independent uniform length. Given its length, an
    operand is uniform over the numbers with exactly that many digits (0 counts as
    one digit).

    Returns
    -------
    a, b : Tensor, shape (n,)
        Long operands.
    """
    len_a = torch.randint(1, max_digits + 1, (n,), generator=generator)
    other = torch.randint(1, max_digits + 1, (n,), generator=generator)
    same = torch.rand(n, generator=generator) < 0.5
    len_b = torch.where(same, len_a, other)

    def draw(length: Tensor) -> Tensor:
        # Uniform on [low, high): float64 resolves the ~1e10 range exactly enough
        high = 10**length
        low = torch.where(length == 1, 0, high // 10)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        offset = (u * (high - low).to(torch.float64)).floor().to(torch.long)
        return low + torch.minimum(offset, high - low - 1)

    return draw(len_a), draw(len_b)


def train_loop(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, int, torch.Generator], Tensor],
    settings: TrainSettings,
    run_dir: str | os.PathLike[str],
    *,
    max_seconds: float | None = None,
    progress: bool = False,
    desc: str = "train",
    log_every: int = 50,
    identity: dict[str, Any] | None = None,
) -> TrainReport:
    """Train ``model`` with AdamW and a cosine schedule, resumably.

    Parameters
    ----------
    model : nn.Module
        Freshly initialized from ``settings.seed`` (its weights are replaced by the
        saved ones when the run resumes).
    loss_fn : callable
        ``loss_fn(model, step, generator) -> scalar loss``; it must draw all its
        randomness from ``generator``.
    settings : TrainSettings
        Optimization settings.
    run_dir : path-like
        Folder holding :data:`TRAIN_STATE_FILE`; if it holds one, training resumes.
    max_seconds : float, optional
        Stop (after saving) once this much wall time has been spent in total.
    progress : bool
        Show a tqdm progress bar.
    desc : str
        Label of the progress bar and log lines.
    log_every : int
        Steps per row of the loss history.
    identity : dict, optional
        JSON-ready description of the model (its config); a saved state is resumed
        only if its settings and identity equal these.

    Returns
    -------
    TrainReport
    """
    run_dir = Path(run_dir)
    state_path = run_dir / TRAIN_STATE_FILE
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, settings.lr_factor)
    generator = torch.Generator().manual_seed(settings.seed)
    step, elapsed, history = 0, 0.0, []

    # Resume from the saved state if there is one
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        if (state["settings"], state["identity"]) != (settings.to_dict(), identity):
            raise ValueError(
                f"run_dir={str(run_dir)!r} holds a run with other settings "
                f"{state['settings']!r} or model {state['identity']!r}; expected "
                f"{settings.to_dict()!r} and {identity!r}. Use another folder or delete it."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        logger.info("%s: resuming from step %d of %d", desc, step, settings.steps)

    def save() -> None:
        state = {
            "settings": settings.to_dict(),
            "identity": identity,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "step": step,
            "elapsed": elapsed,
            "history": history,
        }
        atomic_torch_save(state_path, state)

    model.train()
    stopped_early = False
    window: list[float] = []
    started = time.perf_counter() - elapsed
    with tqdm(
        total=settings.steps, initial=step, disable=not progress, desc=desc
    ) as bar:
        while step < settings.steps:
            if max_seconds is not None and elapsed >= max_seconds:
                stopped_early = True
                logger.warning(
                    "%s: time budget of %.0f s spent at step %d of %d; the weights now "
                    "depend on this machine's speed. Rerun with a larger budget to resume.",
                    desc,
                    max_seconds,
                    step,
                    settings.steps,
                )
                break

            # One optimizer step
            loss = loss_fn(model, step, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            elapsed = time.perf_counter() - started

            # Bookkeeping: loss history, progress bar, periodic checkpoint
            window.append(loss.item())
            if step % log_every == 0 or step == settings.steps:
                mean = sum(window) / len(window)
                history.append(
                    {
                        "step": step,
                        "loss": mean,
                        "max_digits": settings.max_digits(step - 1),
                    }
                )
                window.clear()
                bar.set_postfix(loss=f"{mean:.4f}")
            bar.update(1)
            if step % settings.checkpoint_every == 0 or step == settings.steps:
                save()
    if stopped_early:
        save()
    model.eval()
    return TrainReport(step, elapsed, stopped_early, history)
