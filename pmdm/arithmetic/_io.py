"""Atomic file writes: write a temporary file beside the target, then rename it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

#: Files of a checkpoint folder and the version of its layout.
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"
CHECKPOINT_FORMAT = 1


def _atomic(path: str | os.PathLike[str], write: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file private (0600); give it ordinary permissions
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    return _atomic(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    return _atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically; return the path."""
    return atomic_write_text(
        path, json.dumps(payload, indent=2, sort_keys=False) + "\n"
    )


def atomic_torch_save(path: str | os.PathLike[str], obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; return the path."""
    return _atomic(path, lambda handle: torch.save(obj, handle))


def save_checkpoint(
    out_dir: str | os.PathLike[str],
    *,
    kind: str,
    model_config: dict[str, Any],
    state_dict: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` and ``model.pt`` of a model into ``out_dir``, atomically.

    The weights are written first, so a folder whose ``config.json`` exists always
    holds matching weights. ``config.json`` holds ``kind``, the checkpoint format, the
    model config and the ``extra`` entries.
    """
    out_dir = Path(out_dir)
    atomic_torch_save(out_dir / WEIGHTS_FILE, state_dict)
    payload = {
        "kind": kind,
        "format": CHECKPOINT_FORMAT,
        "model": model_config,
        **(extra or {}),
    }
    atomic_write_json(out_dir / CONFIG_FILE, payload)
    return out_dir


def read_checkpoint_config(path: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint folder, checked to be of ``kind``.

    Raises
    ------
    ValueError
        If ``path`` holds no ``config.json``, or one of another kind.
    """
    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(
            f"path must be a folder holding {CONFIG_FILE}, got path={str(path)!r}"
        )
    payload = json.loads(config_path.read_text())
    if payload.get("kind") != kind:
        raise ValueError(
            f"path={str(path)!r} holds a {payload.get('kind')!r} checkpoint, expected {kind!r}"
        )
    return payload


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model.pt`` weights of a checkpoint folder (loaded with ``weights_only``)."""
    return torch.load(Path(path) / WEIGHTS_FILE, weights_only=True)
