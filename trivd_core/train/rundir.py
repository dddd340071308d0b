"""The run directory: its layout, and the one place its files are named, written and read.

``trivd train --run-dir D`` (the training loop, :func:`trivd_core.train.train`) writes::

    D/config.json        what the run is: the resolved config, backend, devices, seed, the command's
                         arguments and the backend choices a resume must reuse (written at every start)
    D/status.json        how the last segment stopped: status, exit code, step, seconds, skipped clips,
                         the last validation (written on every stop)
    D/metrics.jsonl      one JSON record per logged step ("kind": "train") and validation ("kind": "val")
    D/checkpoints/       step_NNNNNNNN.npz + .json commit markers (:mod:`trivd_core.train.checkpoint`)
    D/samples/           step_NNNNNN.gif and .png (sample grids)
    D/loss.png, D/curves.png   the loss plot and the held-out validation curves
    D/.lock              held while a process trains in D (:mod:`trivd_core.train.lock`)

``trivd eval/predict`` and ``trivd train --resume`` read it back through
:func:`read_run_config` and :func:`checkpoint_dir`.  Every write is atomic
(:func:`trivd_core.files.atomic_write_bytes`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import atomic_write_bytes

__all__ = ["CONFIG", "STATUS", "METRICS", "CHECKPOINTS", "SAMPLES", "LOSS_PLOT", "CURVES_PLOT", "RunDirError",
           "write_run_config", "read_run_config", "write_status", "read_status", "checkpoint_dir", "sample_path"]

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
LOSS_PLOT = "loss.png"
CURVES_PLOT = "curves.png"


class RunDirError(ValueError):
    """A run directory's file is missing, unreadable or not what trivd wrote; the message names the file."""


def _write_json(path: Path, record: dict) -> Path:
    atomic_write_bytes(path, json.dumps(record, indent=1).encode())
    return path


def _read_json(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: cannot read it ({exc})") from exc
    if not isinstance(record, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(record).__name__}")
    return record


def write_run_config(run_dir, info: dict) -> Path:
    """``config.json``: what the run is (see the module docstring)."""
    return _write_json(Path(run_dir) / CONFIG, info)


def read_run_config(run_dir, *, missing_ok: bool = False) -> dict:
    """The run's ``config.json`` (``{}`` when absent and ``missing_ok``); :class:`RunDirError` otherwise."""
    path = Path(run_dir) / CONFIG
    if missing_ok and not path.is_file():
        return {}
    return _read_json(path)


def write_status(run_dir, record: dict) -> Path:
    """``status.json``: how the run stopped."""
    return _write_json(Path(run_dir) / STATUS, record)


def read_status(run_dir) -> dict:
    """The run's ``status.json`` (:class:`RunDirError` when absent or unreadable)."""
    return _read_json(Path(run_dir) / STATUS)


def checkpoint_dir(path) -> tuple[Path, Path | None]:
    """``(checkpoint folder, run directory or None)`` of a run directory or a checkpoint folder.

    ``RUN/`` -> ``(RUN/checkpoints, RUN)``; a folder of ``step_*.json`` files -> ``(it, its parent if it is
    named checkpoints else None)``.  :class:`RunDirError` for a folder that is neither.
    """
    path = Path(path)
    if (path / CHECKPOINTS).is_dir():
        return path / CHECKPOINTS, path
    if path.name == CHECKPOINTS or any(path.glob("step_*.json")):
        return path, (path.parent if path.name == CHECKPOINTS else None)
    raise RunDirError(f"{path}: not a run directory (it has no {CHECKPOINTS}/ folder); pass the folder that "
                      "`trivd train --run-dir` wrote, or a checkpoint .json")


def sample_path(run_dir, step: int, suffix: str) -> Path:
    """``samples/step_NNNNNN<suffix>`` of a run."""
    return Path(run_dir) / SAMPLES / f"step_{step:06d}{suffix}"
