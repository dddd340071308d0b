"""``trivd train``: a run directory, checkpoints, ``--resume``, the conformance gate, held-out validation.

The front end parses and checks the options, locks the run directory, builds the
backend's engine (the backend chooses its own compile policy from the number of
steps and a resumed run's record), the data, the gate and the validator, and hands
them to :func:`trivd_core.train.train`.  See docs/training.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import backends
from conformance.gate import build_gate
from trivd_core.train import rundir

from ._common import add_threads_option, default_backend, file_in_the_way, parse_options, setup_threads

__all__ = ["add_parser", "run", "DEFAULT_TRAIN_STEPS", "DEFAULT_EVAL_EVERY", "DEFAULT_EVAL_CLIPS"]

DEFAULT_TRAIN_STEPS = 2000
DEFAULT_EVAL_EVERY = 100
DEFAULT_EVAL_CLIPS = 32


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (default: the demo config on synthetic:demo data, JAX); see docs/training.md")
    p.add_argument("--config", default=None, metavar="NAME|FILE",
                   help="a registered config (default: demo; see trivd info) or a .json/.toml file of config fields "
                        "(optionally base = \"NAME\")")
    p.add_argument("--set", action="append", default=None, metavar="KEY=VALUE", dest="set_fields",
                   help="override one config field (repeatable; VALUE is JSON or a string), e.g. g_ch=16, "
                        "recon_weight=0, g_widths=[8,4,2]; validated and recorded in config.json")
    p.add_argument("--data", default=None,
                   help="'synthetic:demo' (default: one shape on a flat background, 2-3 px/frame at 32x32), "
                        "'synthetic:demo16' (the same, 1-1.6 px/frame, for 16-frame clips: --config demo16), 'synthetic' "
                        "(three shapes on a texture), 'synthetic:pan', a .npy/.npz file or a video folder")
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
    p.add_argument("--eval-fvd-every", type=int, default=0, metavar="K",
                   help="every K-th validation also measures a small-N FVD of the validation clips (model and "
                        "copy-last-frame against the real clips; N = --eval-clips); needs the fvd extra and clips of at "
                        "least 9 frames; I3D costs about 1 s per 16-frame clip on 2 CPU cores (0 = off, the default)")
    p.add_argument("--skip-conformance", action="store_true", help="train even if the pre-training gate fails / skip it")
    p.add_argument("--devices", type=int, default=None, help="number of local devices for data parallelism (default: all)")
    p.add_argument("--workers", type=int, default=2, help="data loader threads (default 2)")
    job = p.add_argument_group("a job of several processes (docs/training.md, 'Several processes')")
    job.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                     help="JAX: process 0's address for jax.distributed (with --num-processes and --process-id)")
    job.add_argument("--num-processes", type=int, default=None, help="JAX: the processes of the job")
    job.add_argument("--process-id", type=int, default=None, help="JAX: this process's index, 0 .. N-1")
    job.add_argument("--distributed", action="store_true",
                     help="join the job the environment describes (JAX on TPU VMs / SLURM / JAX_* variables; "
                          "torch under torchrun joins by itself)")
    job.add_argument("--collective-timeout", type=int, default=None, metavar="SECONDS",
                     help="give the job up when another process has not answered for this long (default 300)")
    job.add_argument("--side-work-timeout", type=int, default=None, metavar="SECONDS",
                     help="how long the others wait for process 0's checkpoints, samples and validation (default "
                          "3600; they are side work, not a collective)")
    add_threads_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


_TRAIN_DEFAULTS = {"config": "demo", "data": "synthetic:demo", "seed": 0, "sample_every": 100, "ckpt_every": 100,
                   "log_every": 10, "keep": 3, "steps": DEFAULT_TRAIN_STEPS, "eval_every": DEFAULT_EVAL_EVERY,
                   "eval_clips": DEFAULT_EVAL_CLIPS}



#: (option, smallest value) of the integer options of `trivd train`, checked before anything slow starts.
_TRAIN_INT_BOUNDS = (("steps", 0), ("batch_size", 1), ("seed", 0), ("sample_every", 1), ("ckpt_every", 1),
                     ("log_every", 1), ("keep", 1), ("devices", 1), ("workers", 0), ("eval_every", 0),
                     ("eval_clips", 1), ("threads", 1), ("num_processes", 1), ("process_id", 0),
                     ("collective_timeout", 1), ("side_work_timeout", 1))


def _train_usage_error(args: argparse.Namespace) -> str | None:
    for name, lo in _TRAIN_INT_BOUNDS:
        v = getattr(args, name, None)
        if v is not None and v < lo:
            return f"--{name.replace('_', '-')} must be an integer >= {lo}, got {v}"
    for name in ("run_dir", "resume"):
        v = getattr(args, name, None)
        blocker = file_in_the_way(v) if v is not None else None
        if blocker:
            return f"--{name.replace('_', '-')} {v}: {blocker} is a file, not a folder"
    given = [getattr(args, k, None) is not None for k in ("coordinator", "num_processes", "process_id")]
    if any(given) and not all(given):
        return "--coordinator, --num-processes and --process-id go together (or none: --distributed detects the job)"
    if all(given):
        host, _, port = args.coordinator.rpartition(":")
        if not host or not port.isdigit():
            return f"--coordinator must be HOST:PORT, got {args.coordinator!r}"
        if args.process_id >= args.num_processes:
            return f"--process-id must lie in 0 .. {args.num_processes - 1} (--num-processes {args.num_processes}), " \
                   f"got {args.process_id}"
    return None



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
    from trivd_core.data import DataError, make_dataset

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



def run(args: argparse.Namespace) -> int:
    """``trivd train``: the exit status (0 done, 1 gate refused, 2 usage, 3/4/5/130/143 see EXIT_CODES).

    SIGINT / SIGTERM are held from here on (:class:`trivd_core.train.loop.StopRequest`): before the
    first step completes they stop at once (130 / 143, nothing trained, the new run directory
    removed); afterwards the loop finishes the step and saves it.
    """
    from trivd_core.train.loop import STOP

    with STOP:
        try:
            return _run(args)
        except KeyboardInterrupt:
            what = "terminated (SIGTERM)" if STOP.requested == "terminated" else "interrupted"
            print(f"\ntrivd train: {what} before the first step; nothing was trained", file=sys.stderr, flush=True)
            return 143 if STOP.requested == "terminated" else 130


def _run(args: argparse.Namespace) -> int:
    problem = _train_usage_error(args)
    if problem:
        print(f"trivd train: {problem}", file=sys.stderr)
        return 2

    from trivd_core.configs import config_from_mapping, load_config, parse_overrides

    explicit = {k: v for k, v in vars(args).items() if v is not None}
    resume = args.resume is not None
    if resume:
        run_dir = Path(args.resume)
        try:
            saved = rundir.read_run_config(run_dir)
        except rundir.RunDirError as exc:
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
            opts["data_options"] = parse_options("train", args.data_option or [])
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
    backend_name = opts.get("backend") or os.environ.get("TRIVD_TRAIN_BACKEND") or default_backend()
    opts["backend"] = backend_name
    if backend_name != "jax" and opts.get("devices") not in (None, 1):
        print(f"trivd train: --devices {opts['devices']}: the {backend_name} engine trains on "
              f"{'all XLA devices (SPMD)' if backend_name == 'xla' else 'one device'}; data parallelism over N local "
              "devices is --backend jax", file=sys.stderr)
        return 2
    if backend_name != "jax":
        opts["devices"] = None
    job = _join_job(args, backend_name, config, run_dir_given=args.run_dir is not None or resume,
                    devices=opts.get("devices"))
    if isinstance(job, int):
        return job
    from trivd_core.train.lock import RunLock, RunLocked

    new_dir = not resume and not run_dir.exists()  # made by this run: removed again if it ends holding nothing
    lock = RunLock(run_dir) if job[0] == 0 else None  # process 0 writes the run directory
    try:
        if lock is not None:
            lock.acquire()
    except RunLocked as exc:
        print(f"trivd train: {exc}", file=sys.stderr)
        return 2
    try:
        code = _train_in(args, opts, config, run_dir, resume, saved if resume else None, explicit, backend_name, job)
    finally:
        if lock is not None:
            lock.release()
            if new_dir:
                _remove_if_empty(run_dir)
    if job[1] > 1:
        _leave_job(backend_name, code)
    return code


def _remove_if_empty(run_dir: Path) -> None:
    """Remove a run directory this run made when it holds no checkpoint: a start that failed or was interrupted
    leaves no folder that ``--resume`` cannot read and ``trivd eval`` does not recognise."""
    import shutil

    if not run_dir.is_dir() or any((run_dir / rundir.CHECKPOINTS).glob("step_*.json")):
        return
    shutil.rmtree(run_dir, ignore_errors=True)  # quietly: the line that said why the run stopped stays the last


def _join_job(args, backend_name, config, *, run_dir_given, devices):
    """``(process_index, process_count)`` after joining the job the options or the environment describe (``(0, 1)``
    without one), or an exit status (2) after a one-line usage error."""
    asked = args.coordinator is not None or args.distributed
    if backend_name == "torch" and not asked:
        from importlib import util

        if util.find_spec("torch") is not None:
            from backends.torch.distributed import launched

            asked = launched()
    if not asked:
        for opt in ("collective_timeout", "side_work_timeout"):
            if getattr(args, opt) is not None:
                print(f"trivd train: --{opt.replace('_', '-')} is for a job of several processes (--coordinator, "
                      "--distributed or torchrun)", file=sys.stderr)
                return 2
        return 0, 1
    if backend_name not in ("jax", "torch"):
        print(f"trivd train: --backend {backend_name} trains in one process; a job of several processes is "
              "--backend jax or --backend torch", file=sys.stderr)
        return 2
    try:
        backend = backends.load(backend_name)
        index, count = backend.join_job(args.coordinator, args.num_processes, args.process_id,
                                        timeout=args.collective_timeout, side_timeout=args.side_work_timeout)
    except (ValueError, backends.BackendUnavailable) as exc:
        print(f"trivd train: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the coordinator or the other processes did not answer in time
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"trivd train: could not join the job ({detail})", file=sys.stderr)
        return 2
    if count > 1:
        if not run_dir_given:
            print(f"trivd train: a job of {count} processes needs --run-dir (or --resume): the same folder for "
                  "every process, on a filesystem they all see", file=sys.stderr)
            return 2
        if devices is not None:
            print(f"trivd train: --devices {devices}: a job of {count} processes trains on every device of every "
                  "process", file=sys.stderr)
            return 2
        if config.batch_size % count:
            print(f"trivd train: the batch ({config.batch_size}) must be divisible by the {count} processes of the "
                  "job (--batch-size)", file=sys.stderr)
            return 2
    return index, count


def _leave_job(backend_name: str, code: int) -> None:
    """Leave the job: a lost process leaves its peers' runtimes unable to shut down cleanly, so exit at once then."""
    if code == 6:  # process_lost: JAX's shutdown barrier would abort this process; torch's would wait for the dead
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if backend_name == "torch":
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _train_in(args, opts, config, run_dir, resume, saved, explicit, backend_name, job=(0, 1)) -> int:
    """The part of `trivd train` that runs while the run directory is locked (by process 0 of a job)."""
    from trivd_core.data import DataError, Loader, make_dataset
    from trivd_core.train import CheckpointError, GateRefused, ProcessLost, TrainOptions, train

    index, count = job
    writer = index == 0
    if not resume and any((run_dir / rundir.CHECKPOINTS).glob("step_*.json")):
        print(f"trivd train: {run_dir} already holds checkpoints; use --resume {run_dir} or another --run-dir",
              file=sys.stderr)
        return 2
    from trivd_core.train.loop import STOP

    opts["threads"] = setup_threads("train", args.threads, (saved or {}).get("args", {}).get("threads"), say=writer)[0]
    try:
        backend = backends.load(backend_name)
    except (ValueError, backends.BackendUnavailable) as exc:
        print(f"trivd train: --backend {backend_name}: {exc}", file=sys.stderr)
        return 2
    if not getattr(backend, "trains", False):
        print(f"trivd train: --backend {backend_name}: {getattr(backend, 'no_engine', 'it has no training engine')}",
              file=sys.stderr)
        return 2
    STOP.check()  # a signal whose exception was dropped on the way (see StopRequest)
    try:
        # the backend picks its compile policy from the run's length and, on --resume, from the run's record
        engine = backend.engine(config, devices=opts.get("devices"), steps=opts["steps"],
                                saved_run=saved if resume else None)
    except (ValueError, TypeError) as exc:
        print(f"trivd train: {exc}", file=sys.stderr)
        return 2
    STOP.check()  # a signal whose exception was dropped on the way (see StopRequest)
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
    STOP.check()  # a signal whose exception was dropped on the way (see StopRequest)
    gate = None
    skipped = bool(args.skip_conformance)
    if not skipped:
        inner = build_gate(config, backend, engine=engine)

        def gate():
            if writer:
                print("trivd train: conformance gate (quick subset + G/D forward vs the NumPy core) ...",
                      file=sys.stderr, flush=True)
            ok, report = inner()
            if writer or not ok:
                print(report, file=sys.stderr, flush=True)
            return ok, report

    if writer:
        run_dir.mkdir(parents=True, exist_ok=True)
    validator, val_note = None, ""
    if opts["eval_every"] and writer:  # process 0 alone validates
        try:
            validator, val_note = _build_validator(config, backend, opts, fvd_every=args.eval_fvd_every)
        except (DataError, ValueError) as exc:
            print(f"trivd train: validation set: {exc}", file=sys.stderr)
            return 2
    STOP.check()  # a signal whose exception was dropped on the way (see StopRequest)
    saved_args = {k: opts[k] for k in ("config", "data", "data_options", "backend", "steps", "seed", "sample_every",
                                        "ckpt_every", "log_every", "keep", "devices", "eval_every", "eval_clips",
                                        "threads")
                  if k in opts}
    if not resume and args.set_fields:
        saved_args["set"] = list(args.set_fields)
    elif resume and opts.get("set"):
        saved_args["set"] = list(opts["set"])
    saved_args["batch_size"] = config.batch_size
    if count > 1:
        saved_args["processes"] = count
    options = TrainOptions(run_dir=run_dir, steps=opts["steps"], seed=opts["seed"], log_every=opts["log_every"],
                           sample_every=opts["sample_every"], ckpt_every=opts["ckpt_every"], keep=opts["keep"],
                           progress=not args.no_progress, eval_every=opts["eval_every"])
    compile_note = f", {engine.note}" if getattr(engine, "note", "") else ""
    side_timeout = getattr(args, "side_work_timeout", None) or 3600
    job_note = (f", a job of {count} processes; the others wait up to {side_timeout} s for process 0's checkpoints, "
                "samples and validation (--side-work-timeout)") if count > 1 else ""
    if writer:
        print(f"trivd train: {config.name} on {opts['data']} with {engine.name} ({', '.join(engine.devices)}"
              f"{compile_note}{job_note}), batch {config.batch_size}, steps -> {options.steps}, run dir {run_dir}",
              file=sys.stderr, flush=True)
    if val_note:
        print(f"trivd train: {val_note}", file=sys.stderr, flush=True)
    with Loader(dataset, config.batch_size, seed=opts["seed"], workers=args.workers, shard=(index, count)) as loader:
        try:
            result = train(engine, config, loader, options, resume=resume, gate=gate, dataset=dataset,
                           validator=validator,
                           run_info={"args": saved_args,
                                     "conformance_skipped": skipped or bool((saved or {}).get("conformance_skipped")),
                                     **getattr(engine, "run_info", {})})
        except GateRefused:
            return 1
        except ProcessLost as exc:  # before the first step: another process of the job did not come to a barrier
            print(f"trivd train: {exc}; nothing was trained", file=sys.stderr)
            return 6
        except (FileNotFoundError, ValueError, CheckpointError) as exc:
            print(f"trivd train: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
    # the results go to stdout; the log and progress above went to stderr
    if not writer:  # process 0 reports for the job
        print(f"trivd train: process {index} of {count}: {result.message}", file=sys.stderr, flush=True)
        return result.exit_code
    print(f"trivd train: {result.message}")
    if result.last_validation:
        from trivd_core.train.validation import summary_line

        print(f"trivd train: held-out validation at step {result.step} (EMA, z = 0): "
              f"{summary_line(result.last_validation)}")
    if loader.skipped:
        print(f"trivd train: {loader.skipped} unreadable clip(s) were skipped ({len(loader.skipped_sources)} distinct "
              "source(s); the first warning of each names it); counts in metrics.jsonl and status.json")
    if result.steps_per_sec:
        print(f"trivd train: {result.steps_per_sec:.3f} steps/s over {result.seconds:.0f} s (compile included)")
    return result.exit_code


def _build_validator(config, backend, opts, *, fvd_every: int = 0):
    """``(validator, note)``: the held-out set of the run's data and a function of an exported tree.

    ``fvd_every = K > 0``: every K-th validation adds ``fvd`` and ``fvd_copy`` (the Frechet distance of
    I3D logits of ``[cond ; G(cond, 0)]`` resp. copy-last-frame against the real validation clips) and
    ``fvd_clips`` (N, the validation set; far below I3D's 400 features, so the figures carry a large
    small-N bias: compare them with each other, not with published FVDs)."""
    from trivd_core.data import DataError, make_dataset
    from trivd_core.train.validation import ValidationSet, make_predict_fn, validate

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
    if isinstance(fvd_every, bool) or not isinstance(fvd_every, int) or fvd_every < 0:
        raise ValueError(f"--eval-fvd-every must be an int >= 0 (validations between FVDs; 0 = off), got {fvd_every!r}")
    if fvd_every and config.t_total < 9:
        raise ValueError(f"--eval-fvd-every: I3D's pooling needs clips of at least 9 frames; config {config.name!r} has "
                         f"{config.t_total} (t_cond + t_pred), e.g. --config demo16")
    extractor = None
    if fvd_every:
        from .evaluate import _extractor_backend
        from .weights import open_extractor

        try:
            extractor, _ = open_extractor(None, backend=_extractor_backend("", backend))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--eval-fvd-every: {exc}") from None
    vset = ValidationSet.from_dataset(ds, config, n_clips=n)
    predict_fn = make_predict_fn(backend)
    calls, fixed = [0], {}

    def validator(tree):
        rec = validate(predict_fn, tree, vset, config)
        calls[0] += 1
        if extractor is not None and calls[0] % fvd_every == 0:
            rec.update(_small_fvd(extractor, predict_fn, tree, vset, config, fixed))
        return rec

    fvd_note = (f"; every {fvd_every} validations an FVD of those {vset.cond.shape[0]} clips (about 1 s of I3D per "
                f"16-frame clip on 2 CPU cores)" if fvd_every else "")
    return validator, (f"validation every {opts['eval_every']} steps on {vset.cond.shape[0]} clips of the "
                       f"{used!r} split{note}{fvd_note}")


def _small_fvd(extractor, predict_fn, tree, vset, config, fixed: dict) -> dict:
    """``fvd``, ``fvd_copy``, ``fvd_clips``, ``fvd_seconds`` of one validation (real and copy features computed once)."""
    import time
    import warnings

    import numpy as np

    from trivd_core import metrics
    from trivd_core.fvd import extract_features

    t0 = time.perf_counter()
    if not fixed:
        copy = np.repeat(vset.cond[:, -1:], vset.truth.shape[1], axis=1)
        fixed["real"] = extract_features(np.concatenate([vset.cond, vset.truth], axis=1), extractor, name="real")
        fixed["copy"] = extract_features(np.concatenate([vset.cond, copy], axis=1), extractor, name="copy")
    pred, _ = predict_fn(tree, vset.cond, np.zeros((vset.cond.shape[0], config.z_dim), np.float32))
    model = extract_features(np.concatenate([vset.cond, np.clip(pred, -1, 1)], axis=1), extractor, name="model")
    with warnings.catch_warnings():  # N < 400 features: said in the record (fvd_clips), not once per validation
        warnings.simplefilter("ignore", metrics.FewSamplesWarning)
        return {"fvd": metrics.frechet_distance_from_features(fixed["real"], model),
                "fvd_copy": metrics.frechet_distance_from_features(fixed["real"], fixed["copy"]),
                "fvd_clips": int(vset.cond.shape[0]), "fvd_seconds": round(time.perf_counter() - t0, 1)}
