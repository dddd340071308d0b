"""The ``trivd`` command line.

Subcommands:

* ``trivd info``     - version, backends and whether they start here, ops fast paths, cell kinds;
  ``trivd info --config NAME`` prints parameter counts of G, E and every sub-discriminator and the
  pixels each discriminator processes per video (section 3.1).
* ``trivd conform``  - check a backend or a third-party port against the reference (prints a table).
* ``trivd bench``    - cost tables (Table 1 decompositions, Table 2 cells, warps vs bandwidth); benchmarks/.
* ``trivd train``    - train (default: the ``tiny`` config on synthetic shapes with JAX); run directory,
  checkpoints, ``--resume``, the conformance gate (see docs/training.md).
* ``trivd eval``     - per-frame SSIM/PSNR (best of l) of a run against the copy-last-frame baseline, FVD/IS
  with I3D weights; ``eval.json`` and plots (see docs/evaluation.md).
* ``trivd predict``  - predict the continuation of a video / frame folder / ``.npy`` clip; MP4 or GIF with the
  ground truth beside the prediction and, with ``--motion``, the motion field of Fig. 3.

The backend is chosen with ``--backend`` or ``TRIVD_BACKEND``.  The CLI is the
one place where the layers meet, so subcommands import ``backends`` and
``conformance`` lazily, inside the command; the computational modules of
trivd_core never import them (see docs/architecture-notes.md).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import sys

from . import __version__


def _cmd_info(args: argparse.Namespace) -> int:
    if args.config:
        from .configs import load_config
        from .summary import describe

        try:
            config = load_config(args.config)
        except ValueError as exc:
            print(f"trivd info: --config: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        print(describe(config))
        return 0
    backends = importlib.import_module("backends")
    from . import ops

    print(f"trivd {__version__} (Python {platform.python_version()}, {platform.machine()})")
    try:
        trains = os.environ.get("TRIVD_TRAIN_BACKEND") or _default_backend()
    except SystemExit:
        trains = "none (install jax or torch)"
    print(f"default backend of train/eval/predict: {trains}  (--backend, or TRIVD_TRAIN_BACKEND; the first of jax, "
          "torch that is installed)")
    print(f"default array backend of backends.load() and trivd conform: {backends.default_name()}  (TRIVD_BACKEND)")
    print("backends:")
    for name in backends.names():
        try:
            b = backends.load(name)
            xp = b.namespace()
            fast = sorted(ops.fast_paths(xp))
            f64 = "float64" if b.supports_float64 else "float32 only"
            print(f"  {name:<8} available   {f64:<13} fast paths: {', '.join(fast) or '-'}")
        except Exception as exc:  # a backend that cannot start is reported, not fatal
            print(f"  {name:<8} unavailable ({exc.__class__.__name__}: {str(exc).splitlines()[0][:90]})")
    try:
        from .cells import KINDS

        print(f"cell kinds: {', '.join(KINDS)}")
    except ImportError:
        pass
    return 0


def _cmd_conform(argv: list[str]) -> int:
    runner = importlib.import_module("conformance.runner")
    return int(runner.main(argv) or 0)


DEFAULT_TRAIN_STEPS = 2000
DEFAULT_EVAL_EVERY = 100
DEFAULT_EVAL_CLIPS = 32
#: `trivd train` on JAX compiles the step with XLA's full optimisation from this many steps on (break-even ~100 steps).
JAX_FULL_OPT_MIN_STEPS = 120


def jax_train_opt(steps: int, saved_run: dict | None = None) -> str:
    """XLA's optimisation level for the JAX train step: ``$TRIVD_JAX_TRAIN_OPT``, else the one a resumed run
    recorded in its config.json (``saved_run["jax_train_opt"]``), else ``full`` from
    :data:`JAX_FULL_OPT_MIN_STEPS` steps on and ``fast-compile`` below."""
    recorded = (saved_run or {}).get("jax_train_opt")
    return os.environ.get("TRIVD_JAX_TRAIN_OPT") or recorded or (
        "full" if steps >= JAX_FULL_OPT_MIN_STEPS else "fast-compile")


def _add_threads_option(p) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads of torch and BLAS (default: the CPUs not already busy, from the load average; "
                        "a resumed run keeps its count)")


def _setup_threads(cmd: str, requested: int | None, recorded: int | None = None, *, say: bool = True) -> tuple:
    """Apply ``--threads`` (or the run's recorded count, or the default): ``(n, the line that says which)``."""
    from .threads import apply_threads, default_threads, describe_threads

    n = requested or recorded or default_threads()
    apply_threads(n)
    line = f"trivd {cmd}: {describe_threads(n, 'option' if requested else ('run' if recorded else 'default'))}"
    if say:
        print(line, file=sys.stderr, flush=True)
    return n, line


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (default: tiny config, synthetic data, JAX); see docs/training.md")
    p.add_argument("--config", default=None, metavar="NAME|FILE",
                   help="a registered config (default: demo; see trivd info) or a .json/.toml file of config fields "
                        "(optionally base = \"NAME\")")
    p.add_argument("--set", action="append", default=None, metavar="KEY=VALUE", dest="set_fields",
                   help="override one config field (repeatable; VALUE is JSON or a string), e.g. g_ch=16, "
                        "recon_weight=0, g_widths=[8,4,2]; validated and recorded in config.json")
    p.add_argument("--data", default=None,
                   help="'synthetic:demo' (default: one shape on a flat background, 2-3 px/frame at 32x32), "
                        "'synthetic' (three shapes on a texture), 'synthetic:pan', a .npy/.npz file or a video folder")
    p.add_argument("--data-option", action="append", default=None, metavar="KEY=VALUE",
                   help="dataset option (repeatable; VALUE is JSON or a string), e.g. holdout=0.1, layout=TNHW, "
                        "speed_range=[0.05,0.1]; recorded in config.json and reused by eval/predict")
    p.add_argument("--backend", default=None, help="jax (default if installed), torch, xla")
    p.add_argument("--steps", type=int, default=None,
                   help=f"total training steps (each: d_steps D updates + 1 G update); default {DEFAULT_TRAIN_STEPS}")
    p.add_argument("--batch-size", type=int, default=None, help="global batch (default: the config's)")
    p.add_argument("--run-dir", default=None, help="output folder (default: runs/<timestamp>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--seed", type=int, default=None, help="seed of weights, data order and latents (default 0)")
    p.add_argument("--sample-every", type=int, default=None, help="steps between sample GIFs (default 100)")
    p.add_argument("--ckpt-every", type=int, default=None, help="steps between checkpoints (default 100)")
    p.add_argument("--log-every", type=int, default=None, help="steps between metrics.jsonl records (default 10)")
    p.add_argument("--keep", type=int, default=None, help="checkpoints to keep (default 3)")
    p.add_argument("--eval-every", type=int, default=None,
                   help=f"steps between held-out validations (MSE/SSIM/PSNR vs copy-last-frame, motion agreement; "
                        f"metrics.jsonl, curves.png); 0 = off (default {DEFAULT_EVAL_EVERY})")
    p.add_argument("--eval-clips", type=int, default=None,
                   help=f"held-out clips per validation (default {DEFAULT_EVAL_CLIPS})")
    p.add_argument("--skip-conformance", action="store_true", help="train even if the pre-training gate fails / skip it")
    p.add_argument("--devices", type=int, default=None, help="number of local devices for data parallelism (default: all)")
    p.add_argument("--workers", type=int, default=2, help="data loader threads (default 2)")
    _add_threads_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


_TRAIN_DEFAULTS = {"config": "demo", "data": "synthetic:demo", "seed": 0, "sample_every": 100, "ckpt_every": 100,
                   "log_every": 10, "keep": 3, "steps": DEFAULT_TRAIN_STEPS, "eval_every": DEFAULT_EVAL_EVERY,
                   "eval_clips": DEFAULT_EVAL_CLIPS}


def _default_backend() -> str:
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            return name
    from ._install import install_hint

    raise SystemExit("trivd train: neither JAX nor PyTorch is installed (the numpy backend cannot train: it has no "
                     f"autodiff); install one: {install_hint('jax')}")


#: (option, smallest value) of the integer options of `trivd train`, checked before anything slow starts.
_TRAIN_INT_BOUNDS = (("steps", 0), ("batch_size", 1), ("seed", 0), ("sample_every", 1), ("ckpt_every", 1),
                     ("log_every", 1), ("keep", 1), ("devices", 1), ("workers", 0), ("eval_every", 0),
                     ("eval_clips", 1), ("threads", 1))


def _train_usage_error(args: argparse.Namespace) -> str | None:
    for name, lo in _TRAIN_INT_BOUNDS:
        v = getattr(args, name, None)
        if v is not None and v < lo:
            return f"--{name.replace('_', '-')} must be an integer >= {lo}, got {v}"
    for name in ("run_dir", "resume"):
        v = getattr(args, name, None)
        blocker = _file_in_the_way(v) if v is not None else None
        if blocker:
            return f"--{name.replace('_', '-')} {v}: {blocker} is a file, not a folder"
    return None


def _file_in_the_way(folder) -> str | None:
    """The existing file at ``folder`` or at its nearest existing ancestor (``None`` when that is a folder)."""
    p = os.path.abspath(folder)
    while p and not os.path.exists(p):
        p = os.path.dirname(p) if os.path.dirname(p) != p else ""
    return p if p and not os.path.isdir(p) else None


def _grey_data_note(opts: dict, config, set_fields: list) -> str | None:
    """A note when the array data is grey and the config would train it as colour (``None`` otherwise).

    One channel stored, 3 in the config, and neither ``--set channels=...`` nor ``--data-option grey=...``
    given: the model is made grey too, rather than learning three equal channels.
    """
    data = str(opts.get("data") or "")
    if not data.lower().endswith((".npy", ".npz")) or config.channels != 3:
        return None
    if "grey" in opts.get("data_options", {}) or any(s.split("=", 1)[0].strip() == "channels" for s in set_fields):
        return None
    from .data import DataError, make_dataset

    options = {k: v for k, v in opts.get("data_options", {}).items() if k != "channels"}
    try:
        probe = make_dataset(data, resolution=config.resolution, t=config.t_total, channels=None, split="train",
                             seed=0, **options)
    except (DataError, TypeError, ValueError):
        return None  # the real open below reports the problem
    if getattr(probe, "channels", 3) != 1:
        return None
    return (f"{data} holds grey (1-channel) videos: training a 1-channel model (channels=1); pass --set channels=3 "
            "or --data-option grey=repeat to train on repeated RGB instead")


def _cmd_train(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    problem = _train_usage_error(args)
    if problem:
        print(f"trivd train: {problem}", file=sys.stderr)
        return 2

    from .configs import config_from_mapping, load_config, parse_overrides

    explicit = {k: v for k, v in vars(args).items() if v is not None}
    resume = args.resume is not None
    if resume:
        run_dir = Path(args.resume)
        try:
            saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"trivd train: --resume {run_dir}: cannot read its config.json ({exc})", file=sys.stderr)
            return 2
        try:
            config = config_from_mapping(saved["config"])
        except (KeyError, TypeError, ValueError) as exc:
            print(f"trivd train: --resume {run_dir}: its config.json does not hold a valid config "
                  f"({str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__})", file=sys.stderr)
            return 2
        opts = {**_TRAIN_DEFAULTS, **saved.get("args", {})}
        for k, flag in (("seed", "--seed"), ("data", "--data")):
            if k in explicit and explicit[k] != opts.get(k):
                print(f"trivd train: {flag} {explicit[k]} differs from the run's {opts.get(k)!r}; --resume continues "
                      "the run as it was started (start a new --run-dir to change it)", file=sys.stderr)
                return 2
        if args.batch_size is not None and args.batch_size != config.batch_size:
            print(f"trivd train: --batch-size {args.batch_size} differs from the run's {config.batch_size}; --resume "
                  "continues the run as it was started (start a new --run-dir to change it)", file=sys.stderr)
            return 2
        for k in ("steps", "sample_every", "ckpt_every", "log_every", "keep", "backend", "devices", "eval_every",
                  "eval_clips"):
            if k in explicit:
                opts[k] = explicit[k]
        if args.set_fields or (args.config is not None and args.config != opts.get("config")):
            print("trivd train: --config/--set cannot change on --resume (the run's config comes from its "
                  "config.json)", file=sys.stderr)
            return 2
        if args.data_option:
            print("trivd train: --data-option cannot change on --resume (the run's data options come from its "
                  "config.json)", file=sys.stderr)
            return 2
        if args.run_dir is not None and Path(args.run_dir) != run_dir:
            print("trivd train: --run-dir and --resume name different folders; --resume continues in place",
                  file=sys.stderr)
            return 2
    else:
        opts = {**_TRAIN_DEFAULTS, **explicit}
        try:
            opts["data_options"] = _parse_options("train", args.data_option or [])
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        try:
            config = load_config(opts["config"])
            if args.set_fields:
                config = parse_overrides(args.set_fields, config)
            if args.batch_size is not None:
                config = parse_overrides([f"batch_size={args.batch_size}"], config, option="--batch-size")
        except ValueError as exc:
            print(f"trivd train: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        note = _grey_data_note(opts, config, args.set_fields or [])
        if note:
            config = config.replace(channels=1)
            print(f"trivd train: {note}", file=sys.stderr)
        run_dir = Path(args.run_dir or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    backend_name = opts.get("backend") or os.environ.get("TRIVD_TRAIN_BACKEND") or _default_backend()
    opts["backend"] = backend_name
    if backend_name != "jax" and opts.get("devices") not in (None, 1):
        print(f"trivd train: --devices {opts['devices']}: the {backend_name} engine trains on "
              f"{'all XLA devices (SPMD)' if backend_name == 'xla' else 'one device'}; data parallelism over N local "
              "devices is --backend jax", file=sys.stderr)
        return 2
    if backend_name != "jax":
        opts["devices"] = None
    from .train.lock import RunLock, RunLocked

    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except RunLocked as exc:
        print(f"trivd train: {exc}", file=sys.stderr)
        return 2
    try:
        return _train_in(args, opts, config, run_dir, resume, saved if resume else None, explicit, backend_name)
    finally:
        lock.release()


def _train_in(args, opts, config, run_dir, resume, saved, explicit, backend_name) -> int:
    """The part of `trivd train` that runs while the run directory is locked."""
    from .data import DataError, Loader, make_dataset
    from .train import CheckpointError, GateRefused, TrainOptions, build_gate, train

    if not resume and (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").glob("step_*.json")):
        print(f"trivd train: {run_dir} already holds checkpoints; use --resume {run_dir} or another --run-dir",
              file=sys.stderr)
        return 2
    opts["threads"] = _setup_threads("train", args.threads, (saved or {}).get("args", {}).get("threads"))[0]
    backends = importlib.import_module("backends")
    try:
        backend = backends.load(backend_name)
    except (ValueError, backends.BackendUnavailable) as exc:
        print(f"trivd train: --backend {backend_name}: {exc}", file=sys.stderr)
        return 2
    if not hasattr(backend, "engine"):
        print(f"trivd train: backend {backend_name!r} has no training engine", file=sys.stderr)
        return 2
    engine_kw = {"devices": opts.get("devices")}
    if backend_name == "jax":
        from backends.jax.engine import enable_compilation_cache

        enable_compilation_cache()
        # XLA:CPU's full optimisation compiles ~40 s longer and then runs the tiny step 2.1x faster
        # (docs/training.md): it pays off beyond about 100 steps.  TRIVD_JAX_TRAIN_OPT overrides.  A resumed
        # run keeps the option it started with: the two compilations round differently, and resume is bit-exact.
        engine_kw["train_opt"] = jax_train_opt(opts["steps"], saved if resume else None)
    try:
        engine = backend.engine(config, **engine_kw)
    except (ValueError, TypeError) as exc:
        print(f"trivd train: {exc}", file=sys.stderr)
        return 2
    try:
        dataset = make_dataset(opts["data"], resolution=config.resolution, t=config.t_total, channels=config.channels,
                               split="train", seed=opts["seed"], **opts.get("data_options", {}))
    except DataError as exc:
        print(f"trivd train: --data {opts['data']}: {exc}", file=sys.stderr)
        return 2
    if len(dataset) < config.batch_size:
        more = ""
        if getattr(dataset, "kind", "") == "video_folder":
            k = -(-config.batch_size * getattr(dataset, "clips_per_video", 1) // len(dataset))
            more = f", --data-option clips_per_video={k} (several clips of each video)"
        print(f"trivd train: --data {opts['data']}: {len(dataset)} clips, fewer than the batch of {config.batch_size} "
              f"(--batch-size N{more}, or more data)", file=sys.stderr)
        return 2
    gate = None
    skipped = bool(args.skip_conformance)
    if not skipped:
        runner = importlib.import_module("conformance.runner")
        inner = build_gate(config, backend, runner=runner, engine=engine)

        def gate():
            print("trivd train: conformance gate (quick subset + G/D forward vs the NumPy core) ...", file=sys.stderr,
                  flush=True)
            ok, report = inner()
            print(report, file=sys.stderr, flush=True)
            return ok, report

    run_dir.mkdir(parents=True, exist_ok=True)
    validator, val_note = None, ""
    if opts["eval_every"]:
        try:
            validator, val_note = _build_validator(config, backend, opts)
        except (DataError, ValueError) as exc:
            print(f"trivd train: validation set: {exc}", file=sys.stderr)
            return 2
    saved_args = {k: opts[k] for k in ("config", "data", "data_options", "backend", "steps", "seed", "sample_every",
                                        "ckpt_every", "log_every", "keep", "devices", "eval_every", "eval_clips",
                                        "threads")
                  if k in opts}
    if not resume and args.set_fields:
        saved_args["set"] = list(args.set_fields)
    elif resume and opts.get("set"):
        saved_args["set"] = list(opts["set"])
    saved_args["batch_size"] = config.batch_size
    options = TrainOptions(run_dir=run_dir, steps=opts["steps"], seed=opts["seed"], log_every=opts["log_every"],
                           sample_every=opts["sample_every"], ckpt_every=opts["ckpt_every"], keep=opts["keep"],
                           progress=not args.no_progress, eval_every=opts["eval_every"])
    compile_note = f", XLA {engine_kw['train_opt']}" if "train_opt" in engine_kw else ""
    print(f"trivd train: {config.name} on {opts['data']} with {engine.name} ({', '.join(engine.devices)}{compile_note}), "
          f"batch {config.batch_size}, steps -> {options.steps}, run dir {run_dir}", file=sys.stderr, flush=True)
    if val_note:
        print(f"trivd train: {val_note}", file=sys.stderr, flush=True)
    with Loader(dataset, config.batch_size, seed=opts["seed"], workers=args.workers) as loader:
        try:
            result = train(engine, config, loader, options, resume=resume, gate=gate, dataset=dataset,
                           validator=validator,
                           run_info={"args": saved_args,
                                     "conformance_skipped": skipped or bool((saved or {}).get("conformance_skipped")),
                                     **({"jax_train_opt": engine_kw["train_opt"]} if "train_opt" in engine_kw else {})})
        except GateRefused:
            return 1
        except (FileNotFoundError, ValueError, CheckpointError) as exc:
            print(f"trivd train: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
    # the results go to stdout; the log and progress above went to stderr
    print(f"trivd train: {result.message}")
    if result.last_validation:
        from .train.validation import summary_line

        print(f"trivd train: held-out validation at step {result.step} (EMA, z = 0): "
              f"{summary_line(result.last_validation)}")
    if loader.skipped:
        print(f"trivd train: {loader.skipped} unreadable clip(s) were skipped ({len(loader.skipped_sources)} distinct "
              "source(s); the first warning of each names it); counts in metrics.jsonl and status.json")
    if result.steps_per_sec:
        print(f"trivd train: {result.steps_per_sec:.3f} steps/s over {result.seconds:.0f} s (compile included)")
    return result.exit_code


def _build_validator(config, backend, opts):
    """``(validator, note)``: the held-out set of the run's data and a function of an exported tree."""
    from .data import DataError, make_dataset
    from .train.validation import ValidationSet, make_predict_fn, validate

    n = opts["eval_clips"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"--eval-clips must be a positive int, got {n!r}")
    ds, used = None, None
    for split in ("val", "test"):
        try:
            ds = make_dataset(opts["data"], resolution=config.resolution, t=config.t_total, channels=config.channels,
                              split=split, seed=opts["seed"], **opts.get("data_options", {}))
            used = split
            break
        except DataError:
            continue
    note = ""
    if ds is None:
        ds = make_dataset(opts["data"], resolution=config.resolution, t=config.t_total, channels=config.channels,
                          split="train", seed=opts["seed"], **opts.get("data_options", {}))
        used = "train"
        note = " (the data has no held-out split: these clips are training clips)"
    vset = ValidationSet.from_dataset(ds, config, n_clips=n)
    predict_fn = make_predict_fn(backend)

    def validator(tree):
        return validate(predict_fn, tree, vset, config)

    return validator, (f"validation every {opts['eval_every']} steps on {vset.cond.shape[0]} clips of the "
                       f"{used!r} split{note}")


# ---------------------------------------------------------------------------
# eval and predict


def _add_model_args(p) -> None:
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
    _add_threads_option(p)


def _add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="SSIM/PSNR (best of l) vs the copy baseline, FVD/IS with I3D; see docs/evaluation.md")
    _add_model_args(p)
    p.add_argument("--data", default=None,
                   help="'synthetic', 'synthetic:pan', a .npy/.npz file, a video folder or bair:ROOT (default: the run's)")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--num-samples", type=int, default=256, help="clips to evaluate (default 256)")
    p.add_argument("--best-of", type=int, default=1, metavar="L",
                   help="sampled continuations per clip; the one with the highest mean SSIM counts (default 1)")
    p.add_argument("--batch-size", type=int, default=None, help="clips per batch (default: the config's, at most 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clip subset and the latents (default 0)")
    p.add_argument("--i3d", default=None, metavar="PATH", help="I3D weights (.npz or i3d_torchscript.pt) for FVD and IS (default: $TRIVD_I3D_WEIGHTS)")
    p.add_argument("--i3d-sha256", default=None, metavar="HEX",
                   help="expected SHA-256 of the I3D weights (a TorchScript .pt is loaded only with it or --trust-i3d)")
    p.add_argument("--trust-i3d", action="store_true",
                   help="load a TorchScript --i3d file without a checksum: loading it runs code stored in the file")
    p.add_argument("--ssim-protocol", default="savp", choices=("savp", "pm1"),
                   help="savp (default; the published protocol: frames in [0, 1], data range 1) or pm1 ([-1, 1], "
                        "range 2); recorded in eval.json")
    p.add_argument("--fvd-resize", default="tf1", choices=("tf1", "half_pixel"),
                   help="grid of the bilinear resize to 224x224 before I3D: tf1 (default; the reference FVD code's "
                        "TF1 resize_bilinear) or half_pixel (TF2 / torch); recorded in eval.json")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN/eval)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict the continuation of a real clip; MP4/GIF with truth | prediction "
                                       "[| motion field]")
    _add_model_args(p)
    p.add_argument("--input", required=True,
                   help="a video file, a folder of image frames, or a .npy clip; with --out .npy a .npy array of N "
                        "clips (N, T, H, W, C) in [-1, 1], T >= t_cond")
    p.add_argument("--out", required=True,
                   help="output .mp4 (.mkv, .mov, .avi, .webm) or .gif; or .npy: the clips (N, t_cond + t_pred, H, W, C) "
                        "float32 in [-1, 1], conditioning frames then predicted ones")
    p.add_argument("--batch-size", type=int, default=32, help="clips per forward pass with --out .npy (default 32)")
    p.add_argument("--motion", action="store_true", help="add the multi-scale motion field of Fig. 3 and its colour key")
    p.add_argument("--motion-stages", default=None, metavar="LIST",
                   help="generator stages combined into the motion field, coarse to fine: e.g. 1,2, 0,1,2 or all "
                        "(default: the two coarsest stages of at least 16x16; (2,) at 32x32, the paper's 0,1 at 128x128)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent (default 0)")
    p.add_argument("--data", default=None,
                   help="data for the standing statistics (default: the run's training data)")
    p.add_argument("--fps", type=float, default=4.0, help="frames per second of the output (default 4)")
    p.add_argument("--scale", type=int, default=None, help="enlarge each panel by this factor (default: >= 128 px)")


def _parse_options(cmd: str, items: list[str]) -> dict:
    from .configs import parse_assignments

    return parse_assignments(items, option=f"trivd {cmd}: --data-option")


def _model_from_args(cmd: str, args: argparse.Namespace):
    """``(run, model, backend_name)`` for eval/predict; raises EvalError / ValueError with a usage message."""
    from .evaluate import EvalError, Model, open_run

    if args.threads is not None and args.threads < 1:
        raise EvalError(f"--threads must be an integer >= 1, got {args.threads}")
    run = open_run(args.checkpoint)
    for newer, why in run.damaged:
        print(f"trivd {cmd}: the newer checkpoint {newer.name} is damaged ({why}); using {run.path.name} "
              f"(step {run.step})", file=sys.stderr)
    args.threads_line = _setup_threads(cmd, args.threads, say=False)[1]  # printed once the arguments are valid
    name = args.backend
    backends = importlib.import_module("backends")
    if name is None:
        name = run.backend
        if name is not None:
            try:
                backends.load(name, activate=False)
            except (ValueError, backends.BackendUnavailable):
                fallback = _default_backend()
                print(f"trivd {cmd}: the run's backend {name!r} is not available here; using {fallback}",
                      file=sys.stderr)
                name = fallback
        else:
            name = _default_backend()
    try:
        backend = backends.load(name)
    except (ValueError, backends.BackendUnavailable) as exc:
        raise EvalError(f"--backend {name}: {exc}") from exc
    engine = None
    if hasattr(backend, "engine"):
        if name == "jax":
            from backends.jax.engine import enable_compilation_cache

            enable_compilation_cache()
        try:
            engine = backend.engine(run.config)
        except (ValueError, TypeError) as exc:
            raise EvalError(f"--backend {name}: cannot build an engine for config {run.config.name!r}: {exc}") from exc
    model = Model(run, backend, engine=engine, ema=not args.no_ema, truncation=args.truncation)
    return run, model, name


def _merged_options(run, args, options: dict) -> dict:
    """The data options of eval/predict: the run's own (with its data), each key overridden by ``--data-option``."""
    if args.data is not None and args.data != run.data:
        return dict(options)  # other data: the run's options described the run's data
    return {**(run.data_options or {}), **options}


def _standing(cmd: str, args, model, datasets: list) -> str:
    """Accumulate standing statistics from the first usable dataset; returns a description for the report."""
    from .evaluate import standing_batches

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


def _cmd_eval(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from .data import DataError, make_dataset
    from .evaluate import EVAL_FORMAT, EvalError, check_data_fits, evaluate, write_report

    t0 = time.perf_counter()
    try:
        if isinstance(args.best_of, bool) or args.best_of < 1:
            raise EvalError(f"--best-of must be >= 1 (the number of sampled continuations per clip), got {args.best_of}")
        if args.num_samples < 1:
            raise EvalError(f"--num-samples must be >= 1, got {args.num_samples}")
        if args.batch_size is not None and args.batch_size < 1:
            raise EvalError(f"--batch-size must be >= 1, got {args.batch_size}")
        blocker = _file_in_the_way(args.out) if args.out is not None else None
        if blocker:
            raise EvalError(f"--out {args.out}: {blocker} is a file; --out names the folder eval.json and the plots "
                            "go to")
        i3d_path = args.i3d or os.environ.get("TRIVD_I3D_WEIGHTS") or None
        if (args.i3d_sha256 is not None or args.trust_i3d) and i3d_path is None:
            raise EvalError("--i3d-sha256 and --trust-i3d need --i3d PATH (or TRIVD_I3D_WEIGHTS)")
        options = _parse_options("eval", args.data_option)
        run, model, backend_name = _model_from_args("eval", args)
        cfg = run.config
        options = _merged_options(run, args, options)
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
        extractor, fvd_reason = None, None
        if i3d_path is not None:
            from .fvd import load_extractor

            try:
                extractor = load_extractor(i3d_path, sha256=args.i3d_sha256, trust=args.trust_i3d,
                                            backend=model.backend, resize=args.fvd_resize)
            except (FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
                raise EvalError(f"--i3d {i3d_path}: {exc}") from exc
        else:
            fvd_reason = ("no I3D weights given: pass --i3d PATH (an .npz of I3D weights or the i3d_torchscript.pt of "
                          "the common FVD code, see docs/evaluation.md) to compute FVD and IS")
        standing = _standing("eval", args, model,
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
    try:
        result = evaluate(model, dataset, num_samples=args.num_samples, best_of=args.best_of,
                          batch_size=args.batch_size, seed=args.seed, extractor=extractor,
                          progress=not args.no_progress, workers=args.workers,
                          log=lambda m: print(m, file=sys.stderr), ssim_protocol=args.ssim_protocol)
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
    if fvd_reason is not None:
        record["fvd_reason"] = fvd_reason
    out = Path(args.out) if args.out else (run.run_dir or run.path.parent) / "eval"
    paths = write_report(out, record, title=f"{cfg.name} step {run.step}")
    m, c = record["model"], record["copy_baseline"]

    def f(v, p=4):
        return "n/a" if v is None else f"{v:.{p}f}"

    print(f"trivd eval: {record['num_samples']} clips: SSIM model {f(m['ssim_mean'])} vs copy {f(c['ssim_mean'])}, "
          f"PSNR model {f(m['psnr_mean'], 2)} dB vs copy {f(c['psnr_mean'], 2)} dB"
          + (f", FVD model {record['fvd']['model']:.1f} vs copy {record['fvd']['copy_baseline']:.1f}"
             if record["fvd"] else ", FVD/IS: not computed (no --i3d)"))
    print(f"trivd eval: wrote {paths['json']}, {paths['ssim'].name}, {paths['psnr'].name} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .data import DataError, make_dataset
    from .evaluate import EvalError
    from .predict import (
        check_motion_cell,
        predict_batch,
        predict_clip,
        read_clips,
        read_input,
        render_prediction,
        write_frames,
    )

    batch_mode = str(args.out).lower().endswith(".npy")
    if batch_mode and args.motion:
        print("trivd predict: --motion draws the motion field into a video; it does not apply to --out .npy",
              file=sys.stderr)
        return 2
    out_parent = os.path.dirname(os.path.abspath(str(args.out)))
    if not os.path.isdir(out_parent):
        print(f"trivd predict: --out {args.out}: the folder {out_parent} does not exist", file=sys.stderr)
        return 2
    try:
        stages = None  # predict_clip: default_stages(config)
        if args.motion_stages is not None:
            text = args.motion_stages.strip().lower()
            try:
                stages = "all" if text == "all" else tuple(int(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise EvalError(f"--motion-stages must be 'all' or a comma-separated list of stage indices, got "
                                f"{args.motion_stages!r}") from None
        if args.fps <= 0:
            raise EvalError(f"--fps must be positive, got {args.fps}")
        if args.batch_size < 1:
            raise EvalError(f"--batch-size must be >= 1, got {args.batch_size}")
        options = _parse_options("predict", args.data_option)
        run, model, backend_name = _model_from_args("predict", args)
        cfg = run.config
        options = _merged_options(run, args, options)
        frames = read_clips(args.input, cfg) if batch_mode else read_input(args.input, cfg)
        if args.motion:
            check_motion_cell(cfg)  # before any standing-statistics work
        print(args.threads_line, file=sys.stderr)
        ds = None
        data = args.data or run.data or "synthetic"
        if not args.no_standing:
            try:
                ds = make_dataset(data, split="train", resolution=cfg.resolution, t=cfg.t_total,
                                  channels=cfg.channels, seed=run.seed, **options)
            except DataError as exc:
                print(f"trivd predict: the run's data {data!r} cannot be opened for the standing statistics ({exc})",
                      file=sys.stderr)
        standing = _standing("predict", args, model, [(f"{data} (train split)", ds)])
        if batch_mode:
            from .train.artifacts import atomic_write_bytes

            clips = predict_batch(model, frames, seed=args.seed, batch_size=args.batch_size)
            import io

            import numpy as np

            buf = io.BytesIO()
            np.save(buf, clips, allow_pickle=False)
            atomic_write_bytes(args.out, buf.getvalue())
            print(f"trivd predict: {cfg.name} step {run.step} on {backend_name} ({'EMA' if model.ema else 'live'} "
                  f"weights, standing statistics: {standing}): wrote {args.out} {clips.shape} float32 "
                  f"({cfg.t_cond} conditioning + {cfg.t_pred} predicted frames per clip, in [-1, 1])")
            return 0
        pred = predict_clip(model, frames, seed=args.seed, motion=args.motion, stages=stages)
        video = render_prediction(pred, scale=args.scale)
        path = write_frames(args.out, video, fps=args.fps)
    except (EvalError, ValueError) as exc:
        msg = str(exc)
        print(msg if msg.startswith("trivd predict") else f"trivd predict: {msg}", file=sys.stderr)
        return 2
    have = pred.truth.shape[0]
    print(f"trivd predict: {cfg.name} step {run.step} on {backend_name} ({'EMA' if model.ema else 'live'} weights, "
          f"standing statistics: {standing}): {cfg.t_cond} conditioning + {cfg.t_pred} predicted frames"
          + ("" if have == cfg.t_pred else f" (the input has ground truth for {have} of them)"))
    if pred.motion is not None:
        mag = float((pred.motion[..., 0] ** 2 + pred.motion[..., 1] ** 2).max() ** 0.5)
        print(f"trivd predict: motion field of stages {','.join(map(str, pred.stages))} (coarse to fine), colour = "
              f"direction (red right, cyan left), brightness = speed up to {mag:.2f} px/frame; key: the colour wheel")
    print(f"trivd predict: wrote {path} ({video.shape[0]} frames of {video.shape[2]}x{video.shape[1]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting up (training itself saves and exits 130 on its own)
        print("\ntrivd: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``trivd info/train/eval/predict`` (``conform`` and ``bench`` parse their own arguments)."""
    parser = argparse.ArgumentParser(prog="trivd", description="TrIVD-GAN-FP: reference, core, backends, conformance")
    parser.add_argument("--version", action="version", version=f"trivd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="versions, backends, fast paths and cell kinds")
    p_info.add_argument("--config", default=None, metavar="NAME|FILE",
                        help="print parameter and pixel counts of a config (a name or a .json/.toml file) instead")
    sub.add_parser("conform", help="check a backend or a port against the reference (see `trivd conform -h`)", add_help=False)
    sub.add_parser("bench", help="cost tables of Table 1 / Table 2 per backend (see `trivd bench -h`)", add_help=False)
    _add_train_parser(sub)
    _add_eval_parser(sub)
    _add_predict_parser(sub)
    return parser


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "conform":
        return _cmd_conform(argv[1:])
    if argv and argv[0] == "bench":
        rest = argv[1:]
        if "--threads" not in rest and not any(a.startswith("--threads=") for a in rest) and not (
                {"-h", "--help", "--quick"} & set(rest)):
            from .threads import default_threads

            rest = [*rest, "--threads", str(default_threads())]  # the children would oversubscribe otherwise
            print(f"trivd bench: --threads {rest[-1]} (the CPUs not already busy; pass --threads N to change)",
                  file=sys.stderr, flush=True)
        return int(importlib.import_module("benchmarks.run").main(rest) or 0)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage, not the top-level one
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "train":
        return _cmd_train(args)
    if args.command == "eval":
        return _cmd_eval(args)
    if args.command == "predict":
        return _cmd_predict(args)
    if getattr(args, "backend", None):
        os.environ["TRIVD_BACKEND"] = args.backend
    return {"info": _cmd_info}[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
