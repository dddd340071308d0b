"""One run per run directory: an exclusive, crash-safe lock on ``RUN_DIR/.lock``.

Two ``trivd train --run-dir D`` started together would both write checkpoints and
``metrics.jsonl`` into ``D``; the second to take the lock stops instead (the CLI exits
2 naming the holder).  The lock is ``flock(LOCK_EX | LOCK_NB)`` on the file
``RUN_DIR/.lock``, which holds a JSON line about the holder (pid, host, start time,
command).  The operating system drops an ``flock`` when its process dies, however it
dies (``kill -9`` included), so a lock file left by a crashed run is recognisably
stale: it names a holder but nobody holds it, and the next run takes it over (and
says so).  A clean release deletes the file.

Reentrant within a process: :func:`train` takes the lock again when the CLI already
holds it.  Where ``fcntl`` does not exist (Windows) the lock is a no-op with a warning.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

__all__ = ["RunLocked", "RunLock", "LOCK_NAME"]

LOCK_NAME = ".lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_HELD: dict[str, list] = {}  # resolved run dir -> [fd, holders in this process, stale record]


class RunLocked(RuntimeError):
    """Another live process holds the run directory; ``holder`` is its record (may be empty)."""

    def __init__(self, run_dir: Path, holder: dict):
        self.run_dir, self.holder = Path(run_dir), dict(holder)
        who = (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
               f"{', command: ' + holder['command'] if holder.get('command') else ''}") if holder else "another process"
        super().__init__(f"{run_dir} is in use by another run ({who}); wait for it to finish, stop it, or use "
                         "another --run-dir")


def _read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


class RunLock:
    """``with RunLock(run_dir) as lock:`` - hold ``run_dir`` exclusively; ``lock.stale`` is the record of a
    crashed holder that was taken over (``None`` when the folder was free)."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.stale: dict | None = None
        self._key: str | None = None

    def acquire(self) -> RunLock:
        if self._key is not None:
            raise RuntimeError("RunLock.acquire(): this lock object is already held")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.run_dir)
        if key in _HELD:  # this process holds it already (the CLI, then train())
            _HELD[key][1] += 1
            self.stale, self._key = _HELD[key][2], key
            return self
        fd = None
        if fcntl is None:  # pragma: no cover
            print(f"trivd: warning: no file locking on this platform; {self.run_dir} is not protected against a "
                  "second run", file=sys.stderr)
        else:
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise RunLocked(self.run_dir, _read_holder(self.path)) from None
                # a releasing holder deletes the file: if it did so between our open and our flock, retry
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    break
                os.close(fd)
            self.stale = _read_holder(self.path) or None
            record = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        _HELD[key] = [fd, 1, self.stale]
        self._key = key
        return self

    def release(self) -> None:
        key, self._key = self._key, None
        if key is None or key not in _HELD:
            return
        entry = _HELD[key]
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _HELD[key]
        if entry[0] is not None:
            try:
                os.unlink(self.path)  # while still holding it: a process that opened the old file re-checks
            except OSError:
                pass
            os.close(entry[0])  # closing drops the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
