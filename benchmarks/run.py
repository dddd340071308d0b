"""``python -m benchmarks`` / ``trivd bench``: Table 1's and Table 2's costs on every backend, with the limits beside.

One run measures, per available backend (``--backends``, default ``jax,torch,xla,numpy``):

1. Table 1's cost columns for every discriminator decomposition: the average training
   step (``engine.step``: 2 D updates + 1 G update, appendix E.3) after the first
   (compiling) step and a warm-up, its compile time, its peak memory, and the ratio of
   each to ``dvdgan_fp`` beside the paper's ratio;
2. per recurrent unit: forward+backward time of one recurrent stage (``cell_step`` over
   ``t_pred`` frames via the backend's ``value_and_grad``) and the whole training step
   with ``config.replace(cell=kind, decomposition="faster")``, as ratios to ConvGRU
   beside the paper's;
3. the warps' achieved bytes/s against the machine's memory-copy bandwidth and the
   training step's achieved FLOP/s against float32 matmul FLOP/s, both measured here.

NumPy (the array-API core on NumPy) is measured for scale only: limits, warps and
forward-only cell stages; it has no autodiff, so no training steps.  A backend whose
framework is missing is skipped with the reason.  CUDA devices are used when JAX or
torch sees them (their own defaults), and the device is printed beside each number.

Every item runs in a child process (:mod:`benchmarks.worker`; fresh compile, per-item
peak memory).  The report is printed (Markdown) and written with the raw results as
``bench.md`` and ``bench.json`` into ``--out`` (default ``bench/<timestamp>``).

``--quick`` (CI; under 5 minutes for jax + torch + numpy on 2 cores): batch 2, 2 timed
steps, decompositions dvdgan_fp/faster only, whole-step cells convgru/tsru_p only (the
faster/tsru_p step is shared with Table 1's row), stages of convgru, ktrajgru, tsru_p,
ptsru_p only, smaller warp/copy/matmul sizes, one CPU thread per framework (``--threads
1``: on a shared 2-core runner, two OpenMP threads per framework next to another job made
torch steps up to 50x slower); the report says what was reduced.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from . import report

__all__ = ["main", "parse_args", "make_plan", "machine_info", "available"]

ALL_BACKENDS = ("jax", "torch", "xla", "numpy")
QUICK_DECOMPOSITIONS = ("dvdgan_fp", "faster")
QUICK_STEP_CELLS = ("convgru", "tsru_p")
QUICK_STAGE_CELLS = ("convgru", "ktrajgru", "tsru_p", "ptsru_p")
#: Section 4.3 compares recurrent units with DVD-GAN-FP_faster.
CELL_DECOMPOSITION = "faster"

FULL = {"threads": None, "batch": None, "repeats": 5, "warmup": 1, "warp_shape": (16, 128, 128, 32), "cell_hwc": (16, 16, 32),
        "matmul_n": 2048, "copy_mb": 256}
QUICK = {"threads": 1, "batch": 2, "repeats": 2, "warmup": 1, "warp_shape": (8, 64, 64, 32), "cell_hwc": (16, 16, 32),
         "matmul_n": 1024, "copy_mb": 64}


def _names(kind: str, allowed):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(s.strip() for s in text.split(",") if s.strip())
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind}, got {text!r}")
        bad = [s for s in items if s not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {kind} {', '.join(bad)}; choose from {', '.join(allowed)}")
        if len(set(items)) != len(items):
            raise argparse.ArgumentTypeError(f"{kind} listed twice in {text!r}")
        return items

    return parse


def _int_at_least(lo: int, what: str):
    """An argparse type: an integer >= ``lo`` (``what`` names the kind in the error)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {v}")
        return v

    return parse


_positive = _int_at_least(1, "positive")
_non_negative = _int_at_least(0, "non-negative")


def _shape(n: int, what: str):
    def parse(text: str) -> tuple[int, ...]:
        parts = text.lower().split("x")
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            dims = ()
        if len(dims) != n or min(dims) < 1:
            raise argparse.ArgumentTypeError(f"expected {what} as {n} positive integers joined by 'x', got {text!r}")
        return dims

    return parse


def build_parser() -> argparse.ArgumentParser:
    from trivd_core.configs import CELL_KINDS, CONFIGS, DECOMPOSITIONS

    p = argparse.ArgumentParser(
        prog="trivd bench",
        description="Benchmarks: Table 1's step time and memory per decomposition, per-cell costs (Table 2 / "
                    "appendix F), warps vs memory bandwidth and step FLOP/s vs matmul, on every backend. "
                    "See docs/benchmarks.md.")
    p.add_argument("--quick", action="store_true",
                   help="CI size: batch 2, 2 timed steps, fewer decompositions and whole-step cells, smaller "
                        "kernels (the report lists what is left out)")
    p.add_argument("--backends", type=_names("backends", ALL_BACKENDS), default=ALL_BACKENDS,
                   help="comma-separated, from jax,torch,xla,numpy (default: all; missing ones are skipped)")
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS), help="model config (default tiny)")
    p.add_argument("--batch", type=_positive, default=None,
                   help="batch size (default: the config's; 2 with --quick)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default bench/<timestamp>)")
    p.add_argument("--repeats", type=_positive, default=None, help="timed repetitions per item (default 5; quick 2)")
    p.add_argument("--warmup", type=_non_negative, default=None,
                   help="untimed steps after the first (compiling) one (default 1)")
    p.add_argument("--decompositions", type=_names("decompositions", DECOMPOSITIONS), default=None,
                   help="comma-separated subset of the Table 1 decompositions (default all; quick: "
                        + ",".join(QUICK_DECOMPOSITIONS) + ")")
    p.add_argument("--cells", type=_names("cells", CELL_KINDS), default=None,
                   help="comma-separated subset of the nine cells, for stages and whole steps (default all; quick: "
                        "steps " + ",".join(QUICK_STEP_CELLS) + ", stages " + ",".join(QUICK_STAGE_CELLS) + ")")
    p.add_argument("--cell-shape", type=_shape(3, "HxWxC"), default=None,
                   help="spatial size and channels of the recurrent-stage item (default 16x16x32; B = --batch)")
    p.add_argument("--warp-shape", type=_shape(4, "BxHxWxC"), default=None,
                   help="h of the warp items (default 16x128x128x32; quick 8x64x64x32)")
    p.add_argument("--matmul-n", type=_positive, default=None, help="n of the n x n matmul (default 2048; quick 1024)")
    p.add_argument("--copy-mb", type=_positive, default=None, help="MiB copied for the bandwidth (default 256; quick 64)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="CPU threads per child: OMP/MKL/OpenBLAS_NUM_THREADS, torch.set_num_threads, and for 1 "
                        "XLA's single-threaded Eigen (default: the frameworks' own choice; quick: 1)")
    p.add_argument("--jax-train-opt", choices=("fast-compile", "full"), default=None,
                   help="XLA:CPU optimisation of the JAX training step (default full, what a run of 120 steps or "
                        "more compiles; quick: fast-compile). fast-compile compiles faster and runs slower: 2x at the "
                        "tiny width, more at the paper's (docs/benchmarks.md)")
    p.add_argument("--timeout", type=_positive, default=1800, help="seconds per child process (default 1800)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; usage errors exit with status 2 (argparse) and name the option."""
    return build_parser().parse_args(argv)


def make_plan(args: argparse.Namespace) -> dict:
    """What the run measures: items, sizes and repetitions, and what ``--quick`` left out."""
    from trivd_core import discriminator, summary
    from trivd_core.configs import CELL_KINDS, DECOMPOSITIONS, get_config

    d = QUICK if args.quick else FULL
    config = get_config(args.config)
    batch = args.batch or d["batch"] or config.batch_size
    config = config.replace(batch_size=batch)
    reduced = []
    decomps = args.decompositions or (QUICK_DECOMPOSITIONS if args.quick else DECOMPOSITIONS)
    stage_cells = args.cells or (QUICK_STAGE_CELLS if args.quick else CELL_KINDS)
    step_cells = args.cells or (QUICK_STEP_CELLS if args.quick else CELL_KINDS)
    if args.quick:
        if batch != config.batch_size or args.batch is None:
            reduced.append(f"batch {batch} (config {args.config}: {get_config(args.config).batch_size})")
        if args.decompositions is None:
            reduced.append("decompositions " + ", ".join(decomps) + " only")
        if args.cells is None:
            reduced.append("whole-step cells " + ", ".join(step_cells) + " only, stages "
                           + ", ".join(stage_cells) + " only")
        reduced.append(f"{args.repeats or d['repeats']} timed steps")
        reduced.append("smaller warp, copy and matmul sizes")
        if args.threads is None:
            reduced.append("1 CPU thread per framework (--threads 1: no oversubscription on a shared runner)")
    hwc = args.cell_shape or d["cell_hwc"]
    pixels = {n: summary.pixels_per_video(config.replace(decomposition=n))["total"] for n in DECOMPOSITIONS}
    return {
        "config": args.config, "batch": batch, "resolution": config.resolution, "t_cond": config.t_cond,
        "t_pred": config.t_pred, "g_ch": config.g_ch, "d_ch": config.d_ch, "config_cell": config.cell,
        "cell_decomposition": CELL_DECOMPOSITION,
        "decompositions": list(decomps), "cells": list(stage_cells), "step_cells": list(step_cells),
        "repeats": args.repeats or d["repeats"], "warmup": d["warmup"] if args.warmup is None else args.warmup,
        "warp_shape": list(args.warp_shape or d["warp_shape"]),
        "cell_stage_shape": {"B": batch, "H": hwc[0], "W": hwc[1], "C": hwc[2], "T": config.t_pred},
        "matmul_n": args.matmul_n or d["matmul_n"], "copy_mb": args.copy_mb or d["copy_mb"],
        "pixels_per_video": pixels,
        "sub_discriminators": {n: list(discriminator.DECOMPOSITIONS[n]) for n in DECOMPOSITIONS},
        "reduced": reduced, "quick": bool(args.quick),
        "threads": args.threads if args.threads is not None else d["threads"],
        "jax_train_opt": args.jax_train_opt or ("fast-compile" if args.quick else "full"),
    }


def step_items(plan: dict) -> list[tuple[str, str]]:
    """Unique ``(decomposition, cell)`` training-step items: Table 1's rows, then the cells' (shared ones once)."""
    items = [(d, plan["config_cell"]) for d in plan["decompositions"]]
    for c in plan["step_cells"]:
        if (CELL_DECOMPOSITION, c) not in items:
            items.append((CELL_DECOMPOSITION, c))
    return items


# ---------------------------------------------------------------------------
# environment


def available(name: str) -> tuple[bool, str]:
    """Whether backend ``name``'s framework can be imported here (without importing it), and why not."""
    need = {"jax": ("jax", "optax"), "torch": ("torch",), "xla": ("torch", "torch_xla"), "numpy": ("numpy",)}[name]
    missing = [m for m in need if importlib.util.find_spec(m) is None]
    if missing:
        from trivd_core._install import install_hint

        hint = {"xla": "torch_xla lives in its own environment (tox -e xla)"}.get(name, install_hint(name))
        return False, f"{', '.join(missing)} not installed ({hint})"
    return True, ""


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parents[1],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict:
    """CPU, memory, platform, versions and the load average now (the devices are reported per backend)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(), "cpus_usable": usable,
        "mem_total_GiB": _mem_total_gib(), "platform": platform.platform(), "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("trivd", "numpy", "jax", "jaxlib", "optax", "torch", "torch-xla")},
        "git_commit": _git_commit(), "loadavg_start": _loadavg(),
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("TRIVD_", "JAX_", "XLA_", "OMP_", "MKL_", "PJRT_", "CUDA_VISIBLE"))},
    }


# ---------------------------------------------------------------------------
# children


def _child_env(threads: int | None = None) -> dict:
    env = dict(os.environ)
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        env["TRIVD_BENCH_THREADS"] = str(threads)
        if threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_child(spec: dict, timeout: float, threads: int | None = None) -> dict:
    """Run one worker task in a fresh interpreter; returns its result or ``{"error": ...}`` (never raises)."""
    fd, out_path = tempfile.mkstemp(prefix="trivd-bench-", suffix=".json")
    os.close(fd)
    spec = dict(spec, loadavg=_loadavg())
    cmd = [sys.executable, "-m", "benchmarks.worker", json.dumps(spec), out_path]
    tail: list[str] = []
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=_child_env(threads))

        def pump():
            for line in proc.stderr:
                if line.startswith("bench: "):
                    print("  " + line[len("bench: "):], end="", flush=True)
                else:
                    tail.append(line)
                    del tail[:-40]

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"error": f"timed out after {timeout:.0f} s", "wall_s": time.perf_counter() - t0,
                    "loadavg": spec["loadavg"]}
        reader.join(timeout=5)
        try:
            with open(out_path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = {"ok": False, "error": f"child exited with status {rc} without a result: "
                                          + "".join(tail[-5:]).strip()}
    finally:
        try:
            os.unlink(out_path)
        except OSError:
            pass
    wall = time.perf_counter() - t0
    if not data.get("ok"):
        return {"error": data.get("error", "unknown error"), "traceback": data.get("traceback"), "wall_s": wall,
                "loadavg": spec["loadavg"]}
    result = data["result"]
    result["wall_s"] = wall
    result["loadavg"] = spec["loadavg"]
    return result


# ---------------------------------------------------------------------------


def _command_line(argv: list[str], prog: str = "python -m benchmarks") -> str:
    return prog + ("" if not argv else " " + " ".join(shlex.quote(a) for a in argv))


def main(argv: list[str] | None = None, *, prog: str = "python -m benchmarks") -> int:
    """Entry point of ``python -m benchmarks`` and ``trivd bench`` (``prog``: the command the report names, as the
    user typed it); returns the exit status (0 ok, 1 failures)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    plan = make_plan(args)
    out_dir = args.out or Path("bench") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    t_start = time.perf_counter()
    results = {"schema": "trivd-bench/1", "command": _command_line(argv, prog), "args": vars(args) | {"out": str(out_dir)},
               "plan": plan, "machine": machine_info(), "backends": {}}
    items = step_items(plan)
    print(f"trivd bench: config {plan['config']}, batch {plan['batch']}, backends {', '.join(args.backends)}"
          + (" (quick)" if args.quick else ""), flush=True)
    if plan["reduced"]:
        print("  quick: " + "; ".join(plan["reduced"]), flush=True)
    failures = 0
    for name in args.backends:
        ok, why = available(name)
        if not ok:
            print(f"[{name}] skipped: {why}", flush=True)
            results["backends"][name] = {"status": "skipped", "reason": why}
            continue
        info = {"status": "ok", "steps": {}}
        results["backends"][name] = info
        failed_before = failures
        print(f"[{name}] limits, warps, cell stages", flush=True)
        micro = run_child({"task": "micro", "backend": name, "repeats": max(plan["repeats"], 3),
                           "copy_n": plan["copy_mb"] * 2**20 // 4, "matmul_n": plan["matmul_n"],
                           "warp_shape": plan["warp_shape"],
                           "cell_shape": [plan["batch"], *[plan["cell_stage_shape"][k] for k in "HWC"]],
                           "T": plan["t_pred"], "cells": plan["cells"]}, args.timeout, plan["threads"])
        info["micro"] = micro
        if "error" in micro:
            failures += 1
            print(f"[{name}] micro FAILED: {micro['error']}", flush=True)
        else:
            info["device"] = micro["device"]
        if name == "numpy":
            info["steps_skipped"] = "no autodiff (the NumPy backend's value_and_grad is finite differences)"
            print(f"[{name}] training steps skipped: {info['steps_skipped']}", flush=True)
            continue
        for i, (decomp, cell) in enumerate(items, 1):
            key = report.step_key(decomp, cell)
            print(f"[{name}] step {i}/{len(items)}: decomposition {decomp}, cell {cell}", flush=True)
            r = run_child({"task": "step", "backend": name, "config": plan["config"], "batch": plan["batch"],
                           "decomposition": decomp, "cell": cell, "repeats": plan["repeats"],
                           "warmup": plan["warmup"], "label": key, "jax_train_opt": plan["jax_train_opt"]},
                          args.timeout, plan["threads"])
            info["steps"][key] = r
            if "error" in r:
                failures += 1
                print(f"[{name}] step {key} FAILED: {r['error']}", flush=True)
            elif "device" not in info:
                info["device"] = r["device"]
        if failures > failed_before:
            info["status"] = "partial"
    results["machine"]["loadavg_end"] = _loadavg()
    results["wall_s"] = time.perf_counter() - t_start
    results["tables"] = report.build_tables(results)
    text = report.markdown(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out_dir / "bench.md").write_text(text)
    print()
    print(text)
    print(f"written: {out_dir / 'bench.md'}, {out_dir / 'bench.json'}", flush=True)
    return 1 if failures else 0
