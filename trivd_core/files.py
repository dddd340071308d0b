"""Atomic file writes: what every writer of trivd (checkpoints, run records, media) goes through.

A file is written to a temporary file in the same folder, flushed and fsynced, then
renamed into place (``os.replace``), so a reader sees the old file or the new one and a
killed process never leaves a torn one; a failed write removes its temporary file.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

__all__ = ["atomic_write_bytes"]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


_UMASK_LOCK = threading.Lock()


def _file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open()`` would give a new file (mkstemp gives 0600)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``).

    The file gets the mode a plain ``open()`` would give it (the umask applies), and a
    failed write (disk full, ...) removes its temporary file before the error propagates.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, _file_mode())
        except OSError:  # pragma: no cover - e.g. a file system without modes
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)
