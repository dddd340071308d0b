"""Miniatures of the paper's comparisons (Table 2: recurrent units; Table 1: decompositions).

Runs ``experiments/learning.py`` once per (variant, seed), two runs at a time (each
pinned to one core with one XLA thread), and prints a Markdown table of the final
evaluation: MSE (mean over the predicted frames) and its ratio to copy-last-frame,
last-frame MSE against the best static blur, SSIM (SAVP) against copy, and the motion
agreement of the default stages, as mean and spread (min-max) over seeds.

    python experiments/compare.py --field cell --values convgru,tsru_p --seeds 0,1 --steps 1500 \
        --out runs/table2 -- --config demo --data-option num_shapes=1 ...   # learning.py arguments after --

Every run's JSON lines stay in ``--out`` (``<variant>_s<seed>.jsonl``); ``--report``
only re-reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _final(path: Path) -> dict | None:
    lines = path.read_text().splitlines() if path.exists() else []
    recs = [json.loads(x) for x in lines[1:]]
    return recs[-1] if recs else None


def _fmt(values, digits=4):
    v = np.asarray(values, float)
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ({v.min():.{digits}f}-{v.max():.{digits}f})"


def report(out: Path, field: str, values, seeds) -> str:
    rows = [f"| {field} | seeds | steps | MSE (model / copy) | ratio | last frame: model / best blur | "
            "SSIM (model / copy) | motion agreement |", "|---|---|---|---|---|---|---|---|"]
    for v in values:
        recs = [r for r in (_final(out / f"{v}_s{s}.jsonl") for s in seeds) if r is not None]
        if not recs:
            rows.append(f"| {v} | - | - | (no result) | | | | |")
            continue
        mse = [np.mean(r["mse"]) for r in recs]
        copy = [np.mean(r["copy_mse"]) for r in recs]
        last = [r["mse"][-1] for r in recs]
        blur = [r["blur_mse_last"] for r in recs]
        ssim = [np.mean(r["ssim"]) for r in recs]
        cssim = [np.mean(r["copy_ssim"]) for r in recs]
        mot = [r.get("motion_agreement") for r in recs]
        mot_s = _fmt([m for m in mot if m is not None], 2) if any(m is not None for m in mot) else "n/a (no warp)"
        rows.append(f"| {v} | {len(recs)} | {recs[0]['step']} | {_fmt(mse)} / {_fmt(copy)} | "
                    f"{_fmt([r['mse_ratio'] for r in recs], 2)} | {_fmt(last)} / {_fmt(blur)} | "
                    f"{_fmt(ssim, 3)} / {_fmt(cssim, 3)} | {mot_s} |")
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--field", required=True, help="the config field that varies (cell, decomposition, ...)")
    p.add_argument("--values", required=True, help="comma-separated values of --field")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cores", default=None, help="comma-separated CPU cores to pin the runs to, one run per core at a "
                                                 "time (default: all cores)")
    p.add_argument("--report", action="store_true", help="only print the table of existing results")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more learning.py arguments")
    args = p.parse_args(argv)
    values = [v for v in args.values.split(",") if v]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        extra = [a for a in args.extra if a != "--"]
        jobs = [(v, s) for v in values for s in seeds]
        env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
               "OMP_NUM_THREADS": "1"}
        cores = ([int(c) for c in args.cores.split(",")] if args.cores else list(range(os.cpu_count() or 1)))
        running: dict[int, subprocess.Popen] = {}  # core -> its run
        for v, s in jobs:
            while len(running) >= len(cores):
                for core, proc in list(running.items()):
                    if proc.poll() is not None:
                        del running[core]
                if len(running) >= len(cores):
                    time.sleep(2)
            core = next(c for c in cores if c not in running)
            cmd = [sys.executable, str(HERE / "learning.py"), "--steps", str(args.steps), "--seed", str(s),
                   "--set", f"{args.field}={json.dumps(v) if not v.lstrip('-').isdigit() else v}",
                   "--eval-every", str(args.steps), "--out", str(args.out / f"{v}_s{s}.jsonl"), *extra]
            if sys.platform.startswith("linux"):
                cmd = ["taskset", "-c", str(core), *cmd]
            print(" ".join(cmd), flush=True)
            with open(args.out / f"{v}_s{s}.log", "w") as log:
                running[core] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        for proc in running.values():
            proc.wait()
    print(report(args.out, args.field, values, seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
