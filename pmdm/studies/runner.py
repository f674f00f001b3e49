"""What every study shares: atomic files, resumable rows, derived seeds, tables.

A study is a list of rows, one per setting it sweeps. :class:`ResultStore` keeps
them in ``DIR/results.json`` together with the study's settings, rewriting the file
atomically after each row, so an interrupted run loses nothing and a rerun with the
same settings skips the rows already there.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from pmdm.metrics.estimate import json_number


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file private (0600); give it the usual mode.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    """Write ``obj`` as strict JSON (infinities as strings) atomically."""
    atomic_write_text(path, json.dumps(_strict(obj), indent=2, allow_nan=False) + "\n")


def _strict(obj):
    if isinstance(obj, dict):
        return {key: _strict(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict(value) for value in obj]
    return json_number(obj)


def derived_seed(seed: int, *keys) -> int:
    """A 31-bit seed fixed by ``seed`` and ``keys``, independent of run order, so a
    resumed study reproduces an uninterrupted one row for row."""
    digest = hashlib.sha256(repr((int(seed),) + tuple(keys)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class ResultStore:
    """Rows of a study in ``DIR/results.json``, saved after every row.

    Parameters
    ----------
    out_dir : path
        The results folder; created if missing.
    study : str
        The study's name, stored in the file.
    settings : dict
        Everything that fixes the study's numbers (JSON-serializable). A folder
        holding results of other settings is refused unless ``overwrite``.
    key : callable
        Maps a row to the tuple that identifies it within the study.
    overwrite : bool
        Discard rows made with other settings instead of refusing them.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        study: str,
        settings: dict,
        key: Callable[[dict], tuple],
        overwrite: bool = False,
    ):
        self.out_dir = Path(out_dir)
        self.study = study
        self.settings = _strict(settings)
        self.key = key
        self.rows: list[dict] = []
        path = self.out_dir / "results.json"
        if path.exists():
            saved = json.loads(path.read_text())
            same = (
                saved.get("study") == study and saved.get("settings") == self.settings
            )
            if same:
                self.rows = list(saved.get("rows", []))
            elif not overwrite:
                raise ValueError(
                    f"out={str(self.out_dir)!r} holds results of other settings "
                    f"({saved.get('study')!r}, {saved.get('settings')!r}); expected "
                    f"{study!r} with {self.settings!r}: choose another folder or "
                    "pass overwrite (--overwrite)"
                )

    def done(self, row_key: tuple) -> bool:
        """Whether a row with this key is already saved."""
        return any(self.key(row) == row_key for row in self.rows)

    def add(self, row: dict) -> None:
        """Append ``row`` and rewrite ``results.json`` atomically."""
        self.rows = [r for r in self.rows if self.key(r) != self.key(row)]
        self.rows.append(_strict(row))
        self.save()

    def save(self, **extra) -> None:
        """Rewrite ``results.json`` with the settings, rows and ``extra`` fields."""
        payload = {"study": self.study, "settings": self.settings, **extra}
        payload["rows"] = self.rows
        atomic_write_json(self.out_dir / "results.json", payload)


def flatten(row: dict) -> dict:
    """``{"m": {"estimate": 1, "stderr": 0}}`` → ``{"m": 1, "m_stderr": 0}``."""
    flat: dict = {}
    for name, value in row.items():
        if isinstance(value, dict):
            for field, inner in value.items():
                flat[name if field == "estimate" else f"{name}_{field}"] = inner
        else:
            flat[name] = value
    return flat


def rows_to_csv(rows: Iterable[dict]) -> str:
    """CSV text of flattened rows (columns in first-seen order)."""
    flat = [flatten(row) for row in rows]
    columns: list[str] = []
    for row in flat:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def format_estimate(value: dict, digits: int = 4) -> str:
    """``"12.23 ± 0.06"`` from ``{"estimate", "stderr"}`` (infinities as ``∞``)."""
    est, err = value["estimate"], value.get("stderr", 0)
    if isinstance(est, str):
        return {"inf": "∞", "-inf": "-∞"}.get(est, est)
    text = f"{est:.{digits}g}"
    if err and not isinstance(err, str) and err > 0:
        text += f" ± {err:.2g}"
    return text
