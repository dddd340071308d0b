"""Tests of the benchmark package (``benchmarks/``).

No timing is asserted: the machine is shared and the numbers are what the benchmark
reports, not what it checks.  What is checked:

* the byte and FLOP formulas of ``benchmarks.counting`` against values derived by hand
  for small shapes, and against brute-force counts that walk Eq. 11 / Eq. 12 / the
  matrix product element by element;
* the paper's ratios (``benchmarks.paper``) against the quotients of Table 1's and
  appendix F's numbers worked out by hand;
* the tables (``benchmarks.report``) on a hand-made result set: ratios to the baseline
  of the same backend, missing baselines and failed items;
* the RSS high-water method of the worker sees a known allocation;
* usage errors of the command line (exit status 2, the option named);
* a smoke run of the whole runner: torch (or JAX), one decomposition, one cell, one
  repeat, tiny kernels, plus NumPy (forward-only items) and a backend reported as
  unavailable; it must write a JSON file with the expected keys and a Markdown report.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    import benchmarks  # noqa: F401
except ImportError:  # a source checkout where the project was installed before benchmarks/ existed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import counting, paper, report, run, worker  # noqa: E402

# ---------------------------------------------------------------------------
# counting


def test_warp_counts_by_hand():
    # B=1, H=2, W=3, C=4, k=3: 6 pixels; reads h (24) + W (6*9 = 54), writes 24 -> 102 floats = 408 bytes.
    assert counting.warp_bytes(1, 2, 3, 4, k=3) == 408
    # each of the 24 outputs: 9 products and 8 additions = 17 -> 408.
    assert counting.warp_flops(1, 2, 3, 4, k=3) == 408
    # k = 1: one product per output, no addition; bytes: 2*C + 1 floats per pixel.
    assert counting.warp_flops(2, 5, 7, 3, k=1) == 2 * 5 * 7 * 3
    assert counting.warp_bytes(2, 5, 7, 3, k=1, itemsize=8) == 8 * 70 * 7


def test_factorized_counts_by_hand():
    # B=2, H=3, W=4, k=3, N=2: w 2*9*2 = 36, S 2*12*2 = 48, W out 2*12*9 = 216 floats -> 300 * 4 bytes.
    assert counting.factorized_bytes(2, 3, 4, k=3, N=2) == 1200
    # 216 outputs, each 2 products + 1 addition.
    assert counting.factorized_flops(2, 3, 4, k=3, N=2) == 648


def test_matmul_and_copy_counts_by_hand():
    # (2, 3) @ (3, 4): 8 outputs, each 3 products + 2 additions.
    assert counting.matmul_flops(2, 3, 4) == 40
    assert counting.copy_bytes(10) == 80
    assert counting.copy_bytes(10, itemsize=8) == 160


def _brute_warp(B, H, W, C, k):
    """Walk Eq. 11 output by output: count element reads/writes (each array element once) and operations."""
    flops = 0
    for _b in range(B):
        for _i in range(H):
            for _j in range(W):
                for _c in range(C):
                    terms = 0
                    for _m in range(k):
                        for _n in range(k):
                            flops += 1  # W[b,i,j,q] * h[...]
                            terms += 1
                    flops += terms - 1  # the sum of the k*k terms
    elements = B * H * W * C + B * H * W * k * k + B * H * W * C  # h, W read once; h~ written once
    return elements, flops


def _brute_factorized(B, H, W, k, N):
    flops = 0
    for _ in range(B * H * W * k * k):
        flops += N + (N - 1)  # N products S*w, N-1 additions
    elements = B * k * k * N + B * H * W * N + B * H * W * k * k
    return elements, flops


def _brute_matmul(n, m, p):
    return sum(m + (m - 1) for _ in range(n * p))


@settings(max_examples=12, deadline=None)
@given(B=st.integers(1, 2), H=st.integers(1, 4), W=st.integers(1, 4), C=st.integers(1, 3),
       k=st.sampled_from([1, 3, 5]), N=st.integers(1, 4))
def test_counts_match_brute_force(B, H, W, C, k, N):
    elements, flops = _brute_warp(B, H, W, C, k)
    assert counting.warp_bytes(B, H, W, C, k) == 4 * elements
    assert counting.warp_flops(B, H, W, C, k) == flops
    elements, flops = _brute_factorized(B, H, W, k, N)
    assert counting.factorized_bytes(B, H, W, k, N) == 4 * elements
    assert counting.factorized_flops(B, H, W, k, N) == flops
    assert counting.matmul_flops(H, W, C) == _brute_matmul(H, W, C)


@pytest.mark.parametrize("call, arg", [
    (lambda: counting.warp_bytes(0, 2, 2, 2), "B"),
    (lambda: counting.warp_flops(1, 2, 2, 2, k=2), "k"),
    (lambda: counting.warp_bytes(1, 2, 2, 2, itemsize=0), "itemsize"),
    (lambda: counting.factorized_flops(1, 2, 2, k=3, N=0), "N"),
    (lambda: counting.factorized_bytes(1, 2, True, k=3), "W"),
    (lambda: counting.matmul_flops(2, 2.0, 2), "m"),
    (lambda: counting.copy_bytes(-1), "n"),
])
def test_count_errors_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=f"argument '{arg}'"):
        call()


# ---------------------------------------------------------------------------
# paper


def test_paper_ratios_by_hand():
    # Table 1: faster 453 ms, stronger 548 ms, mocogan (K=8) 660 ms over DVD-GAN-FP's 537 ms; memory 3.54 / 3.53 GB.
    assert paper.decomposition_ratio("faster") == pytest.approx(0.843575, rel=1e-5)
    assert paper.decomposition_ratio("stronger") == pytest.approx(1.020484, rel=1e-5)
    assert paper.decomposition_ratio("mocogan") == pytest.approx(1.229050, rel=1e-5)
    assert paper.decomposition_ratio("dvdgan_fp") == 1.0
    assert paper.decomposition_memory_ratio("faster") == pytest.approx(1.002833, rel=1e-5)
    # Appendix F: TSRU 354 ms vs ConvGRU 284 ms.
    assert paper.cell_ratio("tsru_p") == pytest.approx(1.246479, rel=1e-5)
    assert paper.cell_ratio("convgru") == 1.0
    assert paper.cell_ratio("convlstm") is None
    assert paper.decomposition_ratio("unknown") is None


def test_paper_covers_every_decomposition():
    from trivd_core.configs import DECOMPOSITIONS

    assert set(paper.TABLE1) == set(DECOMPOSITIONS)


# ---------------------------------------------------------------------------
# tables


def _step(median, peak, flops=None, method="torch_flop_counter"):
    return {"median": median, "min": median * 0.9, "n": 3, "times": [median] * 3, "compile_s": None,
            "first_step_s": 2 * median, "memory": {"method": "peak_rss_growth", "peak_bytes": peak},
            "flops": {"method": method, "per_step": flops}}


def _results():
    plan = {"config": "tiny", "batch": 2, "resolution": 32, "t_cond": 2, "t_pred": 3, "g_ch": 4, "d_ch": 4,
            "config_cell": "tsru_p", "cell_decomposition": "faster", "decompositions": ["dvdgan_fp", "faster", "clip"],
            "cells": ["convgru", "tsru_p", "convlstm"], "step_cells": ["convgru", "tsru_p"], "repeats": 3,
            "warmup": 1, "cell_stage_shape": {"B": 2, "H": 8, "W": 8, "C": 4, "T": 3},
            "pixels_per_video": {"dvdgan_fp": 3328, "faster": 576, "clip": 5120},
            "sub_discriminators": {"dvdgan_fp": ["F", "dV"], "faster": ["dF", "crV"], "clip": ["clV"]},
            "reduced": []}
    micro = {"device": "cpu", "limits": {
        "copy_numpy": {"GBps": 10.0}, "copy_inplace": {"GBps": 8.0, "what": "dst.copy_(src)"},
        "copy_new": {"GBps": 2.0}, "matmul": {"GFLOPs": 50.0, "n": 128}},
        "warps": {"pixelwise_warp": {"shape": "h", "median": 0.002, "min": 0.001, "bytes": 4_000_000, "GBps": 2.0,
                                     "fraction_of_copy": 0.25, "GFLOPs": 1.0}},
        "cell_stage": {"convgru": {"median": 0.010, "what": "forward+backward"},
                       "tsru_p": {"median": 0.025, "what": "forward+backward"},
                       "convlstm": {"median": 0.012, "what": "forward+backward"}}}
    steps = {
        "dvdgan_fp/tsru_p": _step(0.5, 100 * 2**20, flops=10e9),
        "faster/tsru_p": _step(0.4, 80 * 2**20),
        "clip/tsru_p": {"error": "RuntimeError: boom"},
        "faster/convgru": _step(0.32, 60 * 2**20),
    }
    return {"plan": plan, "machine": {"cpu_count": 2, "loadavg_start": [1.0, 1.0, 1.0],
                                      "loadavg_end": [2.0, 1.5, 1.0], "versions": {"numpy": "2"}},
            "command": "python -m benchmarks", "wall_s": 10.0,
            "backends": {"torch": {"status": "partial", "device": "cpu", "micro": micro, "steps": steps},
                         "xla": {"status": "skipped", "reason": "torch_xla not installed"}}}


def test_tables_ratios_to_the_same_run():
    res = _results()
    t = report.build_tables(res)
    dec = {r["decomposition"]: r for r in t["decompositions"]}
    assert dec["dvdgan_fp"]["ratio"] == 1.0
    assert dec["faster"]["ratio"] == pytest.approx(0.4 / 0.5)
    assert dec["faster"]["memory_ratio"] == pytest.approx(80 / 100)
    assert dec["faster"]["memory_MiB"] == pytest.approx(80.0)
    assert dec["faster"]["paper_ratio"] == pytest.approx(453 / 537)
    assert dec["clip"]["ratio"] is None and dec["clip"]["error"] == "RuntimeError: boom"
    cells = {r["cell"]: r for r in t["cells"]}
    assert cells["tsru_p"]["stage_ratio"] == pytest.approx(2.5)
    assert cells["tsru_p"]["step_ratio"] == pytest.approx(0.4 / 0.32)
    assert cells["tsru_p"]["paper_step_ratio"] == pytest.approx(354 / 284)
    assert cells["convlstm"]["step_ratio"] is None and cells["convlstm"]["stage_ratio"] == pytest.approx(1.2)
    (flop_row,) = t["flops"]
    assert flop_row["GFLOPs"] == pytest.approx(10e9 / 0.5 / 1e9)
    assert flop_row["fraction_of_matmul"] == pytest.approx(20.0 / 50.0)
    assert [r["backend"] for r in t["limits"]] == ["torch (cpu)"]
    res["tables"] = t
    md = report.markdown(res)
    for heading in ("## Machine limits", "## Table 1", "## Recurrent units", "## Warps", "## Training step FLOP/s"):
        assert heading in md
    assert "| torch (cpu) | faster | dF+crV | 576 | 400 / 360 |" in md
    assert "xla: torch_xla not installed" in md
    assert "torch step clip/tsru_p: RuntimeError: boom" in md


def test_tables_without_baseline():
    res = _results()
    del res["backends"]["torch"]["steps"]["dvdgan_fp/tsru_p"]
    t = report.build_tables(res)
    assert all(r["ratio"] is None for r in t["decompositions"])
    assert "—" in report.markdown(dict(res, tables=t))


# ---------------------------------------------------------------------------
# worker pieces


def test_peak_rss_sees_a_known_allocation():
    if not worker.reset_peak_rss():
        pytest.skip("this kernel does not allow resetting the RSS high-water mark (/proc/self/clear_refs)")
    import mmap

    base = worker.rss_bytes()
    # 64 MiB of new pages, written (resident) then unmapped.  An anonymous mmap rather than np.ones: malloc
    # may hand back pages that earlier tests of this worker left resident, which no RSS measure can see.
    size = 64 * 2**20
    block = mmap.mmap(-1, size)
    view = np.frombuffer(block, dtype=np.uint8)
    view[:] = 1
    del view
    block.close()
    grown = worker.peak_rss_bytes() - base
    assert grown >= 60 * 2**20


def test_summarize_times():
    s = worker.summarize_times([3.0, 1.0, 2.0])
    assert (s["median"], s["min"], s["n"]) == (2.0, 1.0, 3)


def test_worker_numpy_micro_in_process():
    res = worker.run_task({"task": "micro", "backend": "numpy", "repeats": 1, "copy_n": 1024, "matmul_n": 8,
                           "warp_shape": [1, 4, 5, 2], "cell_shape": [1, 4, 4, 2], "T": 2,
                           "cells": ["convgru", "tsru_p"]})
    assert set(res["limits"]) == {"copy_numpy", "copy_inplace", "copy_new", "matmul"}
    w = res["warps"]["pixelwise_warp"]
    assert w["bytes"] == counting.warp_bytes(1, 4, 5, 2) and w["flops"] == counting.warp_flops(1, 4, 5, 2)
    assert res["cell_stage"]["tsru_p"]["what"] == "forward"


def test_worker_rejects_unknown_task():
    with pytest.raises(ValueError, match="task"):
        worker.run_task({"task": "nope"})


def test_worker_refuses_numpy_training_steps():
    with pytest.raises(ValueError, match="no autodiff"):
        worker.run_task({"task": "step", "backend": "numpy", "config": "tiny", "batch": 1,
                         "decomposition": "faster", "cell": "convgru", "repeats": 1, "warmup": 0, "label": "x"})


# ---------------------------------------------------------------------------
# command line


@pytest.mark.parametrize("argv, message", [
    (["--backends", "cuda"], "unknown backends cuda"),
    (["--backends", "jax,jax"], "listed twice"),
    (["--backends", ""], "comma-separated list"),
    (["--batch", "0"], "--batch"),
    (["--repeats", "x"], "--repeats"),
    (["--warmup", "-1"], "--warmup"),
    (["--decompositions", "clip,bogus"], "unknown decompositions bogus"),
    (["--cells", "lstm"], "unknown cells lstm"),
    (["--config", "huge"], "--config"),
    (["--warp-shape", "2x3"], "BxHxWxC"),
    (["--cell-shape", "8x8x0"], "HxWxC"),
])
def test_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        run.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_quick_plan_and_shared_step():
    plan = run.make_plan(run.parse_args(["--quick"]))
    assert plan["batch"] == 2 and plan["decompositions"] == ["dvdgan_fp", "faster"]
    assert plan["reduced"]  # quick says what it left out
    items = run.step_items(plan)
    # Table 1's faster row (config cell tsru_p) and the cells' tsru_p row are the same step: run once.
    assert items == [("dvdgan_fp", "tsru_p"), ("faster", "tsru_p"), ("faster", "convgru")]
    full = run.make_plan(run.parse_args([]))
    assert len(full["decompositions"]) == 8 and len(full["cells"]) == 9 and full["batch"] == 8
    assert full["reduced"] == []


# ---------------------------------------------------------------------------
# smoke run of the runner


def _step_backend():
    for name in ("torch", "jax"):
        if run.available(name)[0]:
            return name
    return None


def test_smoke_run(tmp_path, monkeypatch, capsys):
    name = _step_backend()
    if name is None:
        pytest.skip("neither torch nor jax is installed: no backend can run a training step")
    other = "jax" if name == "torch" else "torch"
    real = run.available
    # Report the other framework as missing (exercises the skip path; a second backend would double the time).
    monkeypatch.setattr(run, "available", lambda n: (False, "hidden by the test") if n == other else real(n))
    out = tmp_path / "bench"
    argv = ["--backends", f"{name},{other},numpy", "--decompositions", "dvdgan_fp", "--cells", "convgru",
            "--repeats", "1", "--warmup", "0", "--batch", "1", "--warp-shape", "1x8x8x2", "--cell-shape", "4x4x2",
            "--matmul-n", "16", "--copy-mb", "1", "--threads", "1", "--out", str(out)]
    status = run.main(argv)
    printed = capsys.readouterr().out
    data = json.loads((out / "bench.json").read_text())
    assert status == 0, json.dumps({k: v for k, v in data["backends"].items()}, default=str)[:2000]
    md = (out / "bench.md").read_text()
    assert md in printed
    for key in ("schema", "command", "args", "plan", "machine", "backends", "tables", "wall_s"):
        assert key in data
    for key in ("cpu_count", "loadavg_start", "loadavg_end", "versions"):
        assert key in data["machine"]
    b = data["backends"][name]
    assert b["status"] == "ok" and b["device"]
    assert set(b["micro"]["limits"]) == {"copy_numpy", "copy_inplace", "copy_new", "matmul"}
    assert set(b["micro"]["warps"]) == {"pixelwise_warp", "factorized_kernels"}
    assert set(b["micro"]["cell_stage"]) == {"convgru"}
    # Table 1 row (config cell tsru_p) and the cell row (faster decomposition).
    assert set(b["steps"]) == {"dvdgan_fp/tsru_p", "faster/convgru"}
    for step in b["steps"].values():
        assert {"median", "min", "times", "first_step_s", "memory", "flops", "device"} <= set(step)
        assert step["memory"]["peak_bytes"] >= 0 and step["memory"]["method"]
        if name == "jax":  # XLA's analyses of JaxEngine.compiled_programs, not the RSS fallback
            assert step["memory"]["method"] == "xla_memory_analysis", step["memory"]
            assert step["flops"]["method"] == "xla_cost_analysis" and step["flops"]["per_step"] > 0, step["flops"]
        assert step["losses_finite"]
    assert data["backends"][other] == {"status": "skipped", "reason": "hidden by the test"}
    assert "no autodiff" in data["backends"]["numpy"]["steps_skipped"]
    assert set(data["tables"]) == {"limits", "decompositions", "cells", "warps", "flops"}
    assert [r["ratio"] for r in data["tables"]["decompositions"]] == [1.0]
    assert "| decomposition |" in md and "dvdgan_fp" in md and "| convgru |" in md


def test_child_env_threads():
    env = run._child_env(1)
    assert env["OMP_NUM_THREADS"] == "1" and "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert str(Path(run.__file__).resolve().parents[1]) in env["PYTHONPATH"].split(":")


def test_available_reports_missing_framework(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == "torch_xla" else real(m, *a))
    ok, why = run.available("xla")
    assert not ok and "torch_xla" in why
