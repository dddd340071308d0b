"""How the training step and its compile time grow with the clip length and the resolution.

``python -m benchmarks.scaling [--backend jax] [--config tiny] [--clips 2+3,5+11,1+15] [--resolutions 32,64]``

For every ``t_cond + t_pred`` clip and every resolution, one child process (the same
``step`` task as ``trivd bench``: :mod:`benchmarks.worker`, a fresh compile each) builds
the engine for ``config.replace(t_cond=, t_pred=, resolution=, batch_size=--batch)``, takes
the first (compiling) step, ``--warmup`` untimed steps and ``--repeats`` timed ones.  The
table gives the first step, the compile time (first step minus the median; JAX and XLA
compile, eager torch does not), the median step, the FLOPs per step (XLA's cost
analysis on JAX, torch's FLOP counter) and each relative to the first row.  The paper's
clips: 2 + 3 frames (the 5-frame experiments), 5 + 11 (Kinetics-600, 16 frames), 1 + 15
(BAIR).  The results go to ``--out`` as ``scaling.md`` and ``scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .run import _child_env, machine_info, run_child  # noqa: F401 - _child_env documents the threads

__all__ = ["main", "parse_clip"]


def parse_clip(text: str) -> tuple[int, int]:
    """``"2+3"`` -> ``(2, 3)`` (t_cond, t_pred), both positive."""
    try:
        a, b = (int(v) for v in text.split("+"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a clip is T_COND+T_PRED, e.g. 2+3; got {text!r}") from None
    if a < 1 or b < 1:
        raise argparse.ArgumentTypeError(f"a clip needs t_cond >= 1 and t_pred >= 1, got {text!r}")
    return a, b


def _list(parse):
    def p(text):
        return [parse(t.strip()) for t in text.split(",") if t.strip()]

    return p


def _positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def build_parser():
    from trivd_core.configs import CONFIGS

    p = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="jax", choices=("jax", "torch", "xla"))
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    p.add_argument("--decomposition", default=None, help="default: the config's")
    p.add_argument("--clips", type=_list(parse_clip), default=[(2, 3), (5, 11), (1, 15)],
                   help="comma-separated T_COND+T_PRED (default 2+3,5+11,1+15)")
    p.add_argument("--resolutions", type=_list(_positive), default=[32, 64], help="default 32,64")
    p.add_argument("--batch", type=_positive, default=2)
    p.add_argument("--repeats", type=_positive, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=_positive, default=1)
    p.add_argument("--jax-train-opt", choices=("fast-compile", "full"), default="fast-compile",
                   help="XLA:CPU optimisation of the JAX step (default fast-compile: this table is about compile time)")
    p.add_argument("--timeout", type=_positive, default=3600)
    p.add_argument("--out", type=Path, default=None)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from trivd_core.configs import get_config

    base = get_config(args.config)
    decomp = args.decomposition or base.decomposition
    rows, failures = [], 0
    t_start = time.perf_counter()
    for res in args.resolutions:
        for t_cond, t_pred in args.clips:
            label = f"{t_cond}+{t_pred} @ {res}"
            print(f"[{args.backend}] {args.config}, clip {label}, batch {args.batch}", flush=True)
            r = run_child({"task": "step", "backend": args.backend, "config": args.config, "batch": args.batch,
                           "decomposition": decomp, "cell": base.cell, "repeats": args.repeats,
                           "warmup": args.warmup, "label": label, "jax_train_opt": args.jax_train_opt,
                           "overrides": {"t_cond": t_cond, "t_pred": t_pred, "resolution": res}},
                          args.timeout, args.threads)
            if "error" in r:
                failures += 1
                print(f"  FAILED: {r['error']}", flush=True)
            rows.append({"t_cond": t_cond, "t_pred": t_pred, "resolution": res, **{
                k: r.get(k) for k in ("first_step_s", "compile_s", "median", "min", "wall_s", "error", "devices")},
                "flops_per_step": (r.get("flops") or {}).get("per_step")})
    first = next((r for r in rows if r.get("median")), None)

    def rel(r, k):
        return (r.get(k) / first[k]) if first and r.get(k) and first.get(k) else None

    lines = [f"# Step and compile time against clip length and resolution ({args.backend}, {args.config}, "
             f"{decomp}, batch {args.batch}, {args.threads} thread(s), XLA {args.jax_train_opt})", "",
             "| clip | resolution | first step s | compile s | step ms | FLOPs/step | step x | compile x | FLOPs x |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['t_cond']}+{r['t_pred']} | {r['resolution']} | failed: {r['error'][:60]} |"
                         " | | | | | |")
            continue

        def f(v, fmt):
            return "-" if v is None else fmt.format(v)

        lines.append(f"| {r['t_cond']}+{r['t_pred']} | {r['resolution']} | {f(r['first_step_s'], '{:.1f}')} | "
                     f"{f(r['compile_s'], '{:.1f}')} | {f(r['median'] and 1e3 * r['median'], '{:.0f}')} | "
                     f"{f(r['flops_per_step'], '{:.3g}')} | {f(rel(r, 'median'), '{:.2f}')} | "
                     f"{f(rel(r, 'compile_s'), '{:.2f}')} | {f(rel(r, 'flops_per_step'), '{:.2f}')} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = args.out or Path("bench") / ("scaling-" + time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.md").write_text(text)
    (out / "scaling.json").write_text(json.dumps({"args": {k: (str(v) if isinstance(v, Path) else v)
                                                           for k, v in vars(args).items()},
                                                  "machine": machine_info(), "rows": rows,
                                                  "wall_s": time.perf_counter() - t_start}, indent=1))
    print(f"written: {out / 'scaling.md'}, {out / 'scaling.json'}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
