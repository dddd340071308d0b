"""Ctrl-C at every moment of `trivd train`'s start: it stops, says so, and leaves no folder that is a trap.

The moments are read from the command's own output (not guessed from wall time): during the
imports, during the framework's import (where an exception raised at once crashed jaxlib),
during the conformance gate, during the first step's XLA compilation (where XLA's
garbage-collector callback used to swallow the ``KeyboardInterrupt``, and the run trained on),
and after the first checkpoint.  Each must exit 130 without a traceback; the run directory is
then either gone (nothing was trained) or holds its checkpoint, its config and status
``interrupted`` - what ``--resume`` and ``trivd eval`` read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")

pytestmark = pytest.mark.slow

ARGS = ["train", "--backend", "jax", "--config", "tiny", "--set", "g_ch=4", "--set", "d_ch=4", "--steps", "50",
        "--eval-every", "0", "--ckpt-every", "1", "--sample-every", "100", "--no-progress", "--threads", "1"]


def _interrupt_when(tmp_path, name, ready, *, env_extra=None):
    """Start `trivd train`, send SIGINT once ``ready(stderr_so_far, run_dir)`` holds; ``(code, output, run_dir)``."""
    run = tmp_path / name
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TRIVD_JAX_CACHE": str(tmp_path / "cache"), **(env_extra or {})}
    p = subprocess.Popen([sys.executable, "-m", "trivd", *ARGS, "--run-dir", str(run)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 400
        while not ready("".join(lines), run):
            assert p.poll() is None, f"{name}: the run ended before its moment: {''.join(lines)[-3000:]}"
            assert time.monotonic() < deadline, f"{name}: the moment never came: {''.join(lines)[-3000:]}"
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        code = p.wait(timeout=400)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    reader.join(10)
    return code, "".join(lines), run


def _no_trap(run):
    """The folder is gone, or it is a run that --resume and eval read: config, a checkpoint, status interrupted."""
    if not run.exists():
        return "gone"
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "interrupted" and status["exit_code"] == 130, status
    assert (run / "config.json").is_file() and list((run / "checkpoints").glob("step_*.json")), sorted(run.iterdir())
    return "resumable"


def test_ctrl_c_at_every_moment_of_the_start_stops_the_run(tmp_path):
    # "imports": Python reports each import on stderr (PYTHONPROFILEIMPORTTIME); the signal goes as soon as the
    # command's module is in, while NumPy, SciPy and the front ends are still being imported
    moments = {
        "imports": lambda err, run: "| trivd.cli" in err,
        # the framework's import (jaxlib), where a KeyboardInterrupt raised at once crashed the process (SIGSEGV)
        "framework": lambda err, run: "CPU thread" in err,
        "gate": lambda err, run: "conformance gate (quick subset" in err,
        "compile": lambda err, run: "compiling the D and G updates" in err,
        "first checkpoint": lambda err, run: bool(list((run / "checkpoints").glob("step_*.json"))),
    }
    found = {}
    for name, ready in moments.items():
        code, err, run = _interrupt_when(tmp_path, name.replace(" ", "_"), ready,
                                         env_extra={"PYTHONPROFILEIMPORTTIME": "1"} if name == "imports" else None)
        assert code == 130, (name, code, err[-3000:])
        assert "Traceback" not in err and "Exception ignored" not in err, (name, err[-3000:])
        assert "interrupted" in err, (name, err[-3000:])
        found[name] = _no_trap(run)
    assert found["imports"] == found["framework"] == found["gate"] == "gone"  # nothing was trained: no folder left behind
    assert found["first checkpoint"] == "resumable"


def test_a_failed_start_leaves_no_empty_run_directory(tmp_path):
    run = tmp_path / "bad"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, "-m", "trivd", *ARGS, "--skip-conformance", "--data", "synthetic",
                          "--data-option", "length=3", "--run-dir", str(run)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert not run.exists(), sorted(run.iterdir())
