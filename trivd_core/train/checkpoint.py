"""Atomic, backend-neutral checkpoints: one ``.npz`` of arrays and one ``.json`` commit marker.

A checkpoint of step ``N`` in ``run_dir/checkpoints/`` is the pair::

    step_0000000N.npz    every array of engine.export(ts), keys = "/"-joined paths
                         ("g_params/G/stage0/h0/w", "opt_d/mu/dV/...", "step"), plus
                         "__tree__": the nested layout as JSON (keeps empty dicts)
    step_0000000N.json   {"format", "step", "npz", "sha256", "bytes", "backend",
                          "config", "loader", "rng", "extra", "time"}

Both are written to a temporary file in the same folder, flushed, ``fsync``-ed and
moved into place with ``os.replace`` (atomic on POSIX and Windows); the ``.npz`` first,
the ``.json`` last.  Saving a step that is already committed writes the new arrays as
``step_0000000N.<first 12 hex of their SHA-256>.npz``, switches the ``.json`` to them, and only
then deletes the old arrays.  The ``.json`` is the commit marker: a checkpoint exists when its
``.json`` does and the ``.npz`` it names has the recorded SHA-256.  A crash at any
moment leaves either the previous checkpoint set or the new one, never a torn file.
Old checkpoints beyond ``keep`` are removed json-first (un-commit, then delete).

The arrays are plain NumPy (``float32`` weights, ``int64`` counters), so a checkpoint
written by one backend restores into any other (``engine.restore(tree)``).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes

__all__ = [
    "FORMAT",
    "CheckpointError",
    "flatten_tree",
    "unflatten_tree",
    "save_checkpoint",
    "list_checkpoints",
    "latest_checkpoint",
    "load_checkpoint",
    "checkpoint_problem",
    "remove_leftovers",
]

FORMAT = "trivd-checkpoint/1"
_NAME = re.compile(r"^step_(\d{8,})\.json$")
_TREE_KEY = "__tree__"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, torn or does not fit."""


# ---------------------------------------------------------------------------
# trees


def flatten_tree(tree, prefix: str = "") -> tuple[dict[str, np.ndarray], object]:
    """Nested dict of arrays -> (``{"a/b/c": array}``, layout with ``None`` leaves).

    Keys must be non-empty strings without ``"/"`` (``ValueError`` naming the path).
    """
    flat: dict[str, np.ndarray] = {}

    def walk(node, path):
        if isinstance(node, Mapping):
            layout = {}
            for key, value in node.items():
                if not isinstance(key, str) or not key or "/" in key or key == _TREE_KEY:
                    raise ValueError(f"flatten_tree(): argument 'tree' has a key {key!r} at {'/'.join(path) or 'the root'}"
                                     " that is not a non-empty string without '/'")
                layout[key] = walk(value, (*path, key))
            return layout
        flat["/".join(path)] = np.asarray(node)
        return None

    layout = walk(tree, (prefix,) if prefix else ())
    return flat, layout


def unflatten_tree(flat: Mapping[str, np.ndarray], layout) -> object:
    """Inverse of :func:`flatten_tree`."""

    def build(node, path):
        if node is None:
            key = "/".join(path)
            if key not in flat:
                raise CheckpointError(f"checkpoint lacks the array {key!r}")
            return flat[key]
        return {k: build(v, (*path, k)) for k, v in node.items()}

    return build(layout, ())


# ---------------------------------------------------------------------------
# checkpoints


def _stem(step: int) -> str:
    return f"step_{step:08d}"


def save_checkpoint(directory, tree, *, step: int, meta: Mapping | None = None, keep: int | None = 3) -> Path:
    """Write ``tree`` (``engine.export(ts)``) and ``meta`` as checkpoint ``step``; returns the ``.json`` path.

    ``meta`` holds JSON-able entries (loader state, RNG state, config, backend, ...).
    ``keep``: how many of the newest checkpoints to keep (None: all).
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"save_checkpoint(): argument 'step' must be a non-negative int, got {step!r}")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValueError(f"save_checkpoint(): argument 'keep' must be None or a positive int, got {keep!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flat, layout = flatten_tree(tree)
    buf = io.BytesIO()
    np.savez(buf, **flat, **{_TREE_KEY: np.asarray(json.dumps(layout))})
    data = buf.getvalue()
    stem = _stem(int(step))
    json_path = directory / f"{stem}.json"
    digest = hashlib.sha256(data).hexdigest()
    previous = _committed_npz(json_path)
    # A step saved again keeps its committed arrays until the new marker is in place: the new arrays go
    # under a name of their own (the step and the start of their hash), the marker is switched atomically,
    # and only then are the old arrays removed.  A crash at any moment leaves one intact version.
    npz_name = f"{stem}.npz" if previous is None else f"{stem}.{digest[:12]}.npz"
    npz_path = directory / npz_name
    if previous != npz_name:
        atomic_write_bytes(npz_path, data)
    record = {
        "format": FORMAT,
        "step": int(step),
        "npz": npz_name,
        "sha256": digest,
        "bytes": len(data),
        "time": time.time(),
        **dict(meta or {}),
    }
    try:
        atomic_write_bytes(json_path, json.dumps(record, indent=1, sort_keys=True).encode())
    except BaseException:
        if previous != npz_name:  # arrays that never got their commit marker
            npz_path.unlink(missing_ok=True)
        raise
    if previous is not None and previous != npz_name:
        (directory / previous).unlink(missing_ok=True)
    if keep is not None:
        for old in list_checkpoints(directory, verify=False)[:-keep]:
            arrays = _committed_npz(old)
            old.unlink(missing_ok=True)  # un-commit first
            for name in {f"{old.stem}.npz", arrays} - {None}:
                (directory / name).unlink(missing_ok=True)
    return json_path


#: The arrays of step N: ``step_N.npz``, or ``step_N.<12 hex>.npz`` when the step was saved again.
_NPZ = re.compile(r"^(step_\d{8,})(\.[0-9a-f]{12})?\.npz$")


def _committed_npz(json_path: Path) -> str | None:
    """The ``.npz`` name a commit marker names (None when there is no readable marker)."""
    try:
        name = json.loads(Path(json_path).read_text()).get("npz")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and _NPZ.match(name) else None


def list_checkpoints(directory, *, verify: bool = False) -> list[Path]:
    """The committed checkpoints (``.json`` paths) in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name)))
    paths = [p for _, p in found]
    if verify:
        paths = [p for p in paths if _valid(p)]
    return paths


def _valid(json_path: Path) -> bool:
    try:
        _read(json_path)
    except CheckpointError:
        return False
    return True


def checkpoint_problem(json_path) -> str | None:
    """Why the checkpoint ``json_path`` cannot be loaded (``None`` when it is intact)."""
    try:
        _read(Path(json_path))
    except CheckpointError as exc:
        return str(exc)
    return None


def remove_leftovers(*directories) -> list[Path]:
    """Delete what killed writers leave behind: ``.*.tmp`` files of :func:`atomic_write_bytes` and, in a
    checkpoint folder, ``step_*.npz`` files without their ``.json`` commit marker.  Returns what was removed.

    Call only while holding the run directory (:class:`~trivd_core.train.lock.RunLock`): a live writer's
    temporary file would otherwise be deleted under it.
    """
    removed = []
    for d in map(Path, directories):
        if not d.is_dir():
            continue
        for p in d.iterdir():
            m = _NPZ.match(p.name)
            orphan = bool(m) and _committed_npz(d / f"{m.group(1)}.json") != p.name
            if p.is_file() and ((p.name.startswith(".") and p.name.endswith(".tmp")) or orphan):
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    return removed


def latest_checkpoint(directory) -> Path | None:
    """The newest checkpoint whose ``.npz`` is present and intact (``None`` if there is none)."""
    for path in reversed(list_checkpoints(directory)):
        if _valid(path):
            return path
    return None


def _read(json_path: Path) -> tuple[dict, bytes]:
    try:
        record = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {json_path}: cannot read its .json ({exc})") from exc
    if record.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {json_path}: format {record.get('format')!r}, expected {FORMAT!r}")
    name = record.get("npz")
    if not isinstance(name, str) or not _NPZ.match(name):
        raise CheckpointError(f"checkpoint {json_path}: its 'npz' field {name!r} is not the name of a checkpoint "
                              "file in the same folder (step_NNNNNNNN.npz or step_NNNNNNNN.<hash>.npz)")
    npz = Path(json_path).parent / name
    try:
        data = npz.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {json_path}: its arrays {npz.name} are missing ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise CheckpointError(f"checkpoint {json_path}: {npz.name} does not match the recorded SHA-256 (torn or edited)")
    return record, data


def load_checkpoint(path) -> tuple[dict, dict]:
    """``(tree, meta)`` of a checkpoint: ``path`` is a ``.json``, or a folder (its newest intact checkpoint)."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no intact checkpoint in {path}")
        path = found
    record, data = _read(path)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
        layout = json.loads(str(flat.pop(_TREE_KEY)))
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path}: its arrays cannot be read ({exc})") from exc
    odd = sorted(f"{k} ({v.dtype})" for k, v in flat.items() if v.dtype.kind not in "fiub")
    if odd:
        raise CheckpointError(f"checkpoint {path}: arrays of a kind no engine holds (expected real floats, integers "
                              f"or booleans): {', '.join(odd[:5])}")
    return unflatten_tree(flat, layout), record
