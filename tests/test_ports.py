"""The example ports of ``conformance/examples``: the good one passes, the broken one is caught.

Through ``runner.main`` (what ``trivd conform --port`` runs) and through the pytest
path (``TRIVD_CONFORMANCE_PORT``) in a subprocess.  Skipped when torch is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the example ports are written in PyTorch")

from conformance import runner  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOOD = "conformance.examples.torch_port"
BROKEN = "conformance.examples.torch_port_broken"
PROVIDED = ["pixelwise_warp", "factorized_kernels", "cell_step[tsru_c]", "cell_step[tsru_p]", "cell_step[tsru_s]"]


def _rows(out: str) -> dict[tuple[str, str], str]:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in ("float32", "float64"):
            rows[(parts[0], parts[1])] = parts[2]
    return rows


def test_good_port_passes_everything_it_provides(capsys):
    assert runner.main(["--port", GOOD]) == 0
    rows = _rows(capsys.readouterr().out)
    for op in [*PROVIDED, "cell_step[tsru_c,return_warp]"]:
        for dtype in ("float32", "float64"):
            assert rows[(op, dtype)] == "pass", (op, dtype)
    assert set(rows.values()) == {"pass", "missing"}
    assert rows[("cell_step[convgru]", "float32")] == "missing" and rows[("conv2d", "float64")] == "missing"


def test_broken_port_is_reported_failing(capsys):
    assert runner.main(["--port", BROKEN]) == 1
    rows = _rows(capsys.readouterr().out)
    for op in ["pixelwise_warp", "cell_step[tsru_c]", "cell_step[tsru_p]", "cell_step[tsru_s]"]:
        for dtype in ("float32", "float64"):
            assert rows[(op, dtype)] == "fail", (op, dtype)
    # the bug is in the warp only: the factorized kernels (no taps involved) still pass
    assert rows[("factorized_kernels", "float64")] == "pass"


@pytest.mark.parametrize("port, ok", [(GOOD, True), (BROKEN, False)])
def test_ports_through_pytest_env_var(port, ok):
    env = dict(os.environ, TRIVD_CONFORMANCE_PORT=port, TRIVD_CONFORMANCE_BACKENDS="")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    cmd += ["conformance/test_conformance.py", "-k", "test_matches_reference and (warp or kernels or tsru)"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    if ok:
        assert proc.returncode == 0, out[-3000:]
        assert " passed" in out and "failed" not in out
    else:
        assert proc.returncode == 1, out[-3000:]
        assert "failed" in out and "pixelwise_warp" in out
