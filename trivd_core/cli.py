"""The ``trivd`` command line.

Subcommands:

* ``trivd info``     - version, backends and whether they start here, ops fast paths, cell kinds;
  ``trivd info --config NAME`` prints parameter counts of G, E and every sub-discriminator and the
  pixels each discriminator processes per video (section 3.1).
* ``trivd conform``  - check a backend or a third-party port against the reference (prints a table).
* ``trivd train``    - train (default: the ``tiny`` config on synthetic shapes with JAX); run directory,
  checkpoints, ``--resume``, the conformance gate (see docs/training.md).

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
        from .summary import describe

        print(describe(args.config))
        return 0
    backends = importlib.import_module("backends")
    from . import ops

    print(f"trivd {__version__} (Python {platform.python_version()}, {platform.machine()})")
    print(f"default backend: {backends.default_name()}  (set TRIVD_BACKEND or --backend)")
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


DEFAULT_TRAIN_STEPS = 250


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (default: tiny config, synthetic data, JAX); see docs/training.md")
    p.add_argument("--config", default=None, help="named config (default: tiny)")
    p.add_argument("--data", default=None, help="'synthetic' (default), 'synthetic:pan', a .npy/.npz file or a video folder")
    p.add_argument("--backend", default=None, help="jax (default if installed), torch, xla")
    p.add_argument("--steps", type=int, default=None,
                   help=f"total training steps (each: d_steps D updates + 1 G update); default {DEFAULT_TRAIN_STEPS}")
    p.add_argument("--batch-size", type=int, default=None, help="global batch (default: the config's)")
    p.add_argument("--run-dir", default=None, help="output folder (default: runs/<timestamp>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--seed", type=int, default=None, help="seed of weights, data order and latents (default 0)")
    p.add_argument("--sample-every", type=int, default=None, help="steps between sample GIFs (default 50)")
    p.add_argument("--ckpt-every", type=int, default=None, help="steps between checkpoints (default 50)")
    p.add_argument("--log-every", type=int, default=None, help="steps between metrics.jsonl records (default 5)")
    p.add_argument("--keep", type=int, default=None, help="checkpoints to keep (default 3)")
    p.add_argument("--skip-conformance", action="store_true", help="train even if the pre-training gate fails / skip it")
    p.add_argument("--devices", type=int, default=None, help="number of local devices for data parallelism (default: all)")
    p.add_argument("--workers", type=int, default=2, help="data loader threads (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


_TRAIN_DEFAULTS = {"config": "tiny", "data": "synthetic", "seed": 0, "sample_every": 50, "ckpt_every": 50,
                   "log_every": 5, "keep": 3, "steps": DEFAULT_TRAIN_STEPS}


def _default_backend() -> str:
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            return name
    raise SystemExit("trivd train: neither JAX nor PyTorch is installed (the numpy backend cannot train: it has no "
                     "autodiff); install one: pip install 'trivd[jax]'")


def _cmd_train(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from .configs import Config, get_config
    from .data import DataError, Loader, make_dataset
    from .train import GateRefused, TrainOptions, build_gate, train

    explicit = {k: v for k, v in vars(args).items() if v is not None}
    resume = args.resume is not None
    if resume:
        run_dir = Path(args.resume)
        try:
            saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"trivd train: --resume {run_dir}: cannot read its config.json ({exc})", file=sys.stderr)
            return 2
        cfg = dict(saved["config"])
        cfg["g_widths"], cfg["d_widths"] = tuple(cfg["g_widths"]), tuple(cfg["d_widths"])
        config = Config(**cfg).validate()
        opts = {**_TRAIN_DEFAULTS, **saved.get("args", {})}
        for k in ("steps", "sample_every", "ckpt_every", "log_every", "keep", "backend", "devices"):
            if k in explicit:
                opts[k] = explicit[k]
        if args.run_dir is not None and Path(args.run_dir) != run_dir:
            print("trivd train: --run-dir and --resume name different folders; --resume continues in place",
                  file=sys.stderr)
            return 2
    else:
        opts = {**_TRAIN_DEFAULTS, **explicit}
        overrides = {"batch_size": args.batch_size} if args.batch_size is not None else {}
        try:
            config = get_config(opts["config"], **overrides)
        except ValueError as exc:
            print(f"trivd train: {exc}", file=sys.stderr)
            return 2
        run_dir = Path(args.run_dir or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
        if (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
            print(f"trivd train: {run_dir} already holds checkpoints; use --resume {run_dir} or another --run-dir",
                  file=sys.stderr)
            return 2
    backend_name = opts.get("backend") or os.environ.get("TRIVD_TRAIN_BACKEND") or _default_backend()
    opts["backend"] = backend_name
    backends = importlib.import_module("backends")
    try:
        backend = backends.load(backend_name)
    except (ValueError, backends.BackendUnavailable) as exc:
        print(f"trivd train: --backend {backend_name}: {exc}", file=sys.stderr)
        return 2
    if not hasattr(backend, "engine"):
        print(f"trivd train: backend {backend_name!r} has no training engine", file=sys.stderr)
        return 2
    if backend_name == "jax":
        from backends.jax.engine import enable_compilation_cache

        enable_compilation_cache()
    try:
        engine = backend.engine(config, devices=opts.get("devices"))
    except (ValueError, TypeError) as exc:
        print(f"trivd train: {exc}", file=sys.stderr)
        return 2
    try:
        dataset = make_dataset(opts["data"], resolution=config.resolution, t=config.t_total, channels=config.channels,
                               split="train", seed=opts["seed"])
    except DataError as exc:
        print(f"trivd train: --data {opts['data']}: {exc}", file=sys.stderr)
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
    saved_args = {k: opts[k] for k in ("config", "data", "backend", "steps", "seed", "sample_every", "ckpt_every",
                                        "log_every", "keep", "devices") if k in opts}
    saved_args["batch_size"] = config.batch_size
    options = TrainOptions(run_dir=run_dir, steps=opts["steps"], seed=opts["seed"], log_every=opts["log_every"],
                           sample_every=opts["sample_every"], ckpt_every=opts["ckpt_every"], keep=opts["keep"],
                           progress=not args.no_progress)
    print(f"trivd train: {config.name} on {opts['data']} with {engine.name} ({', '.join(engine.devices)}), "
          f"batch {config.batch_size}, steps -> {options.steps}, run dir {run_dir}", file=sys.stderr, flush=True)
    with Loader(dataset, config.batch_size, seed=opts["seed"], workers=args.workers) as loader:
        try:
            result = train(engine, config, loader, options, resume=resume, gate=gate, dataset=dataset,
                           run_info={"args": saved_args, "conformance_skipped": skipped})
        except GateRefused:
            return 1
        except (FileNotFoundError, ValueError) as exc:
            print(f"trivd train: {exc}", file=sys.stderr)
            return 2
    print(f"trivd train: {result.message}", file=sys.stderr)
    if result.steps_per_sec:
        print(f"trivd train: {result.steps_per_sec:.3f} steps/s over {result.seconds:.0f} s (compile included)",
              file=sys.stderr)
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="trivd", description="TrIVD-GAN-FP: reference, core, backends, conformance")
    parser.add_argument("--version", action="version", version=f"trivd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="versions, backends, fast paths and cell kinds")
    p_info.add_argument("--config", default=None, help="print parameter and pixel counts of a named config instead")
    sub.add_parser("conform", help="check a backend or a port against the reference (see `trivd conform -h`)", add_help=False)
    _add_train_parser(sub)
    if argv and argv[0] == "conform":
        return _cmd_conform(argv[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "train":
        return _cmd_train(args)
    if getattr(args, "backend", None):
        os.environ["TRIVD_BACKEND"] = args.backend
    return {"info": _cmd_info}[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
