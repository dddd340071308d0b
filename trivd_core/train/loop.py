"""The training loop, written once for every backend (NumPy at the boundary).

The loop owns every source of randomness: the data :class:`~trivd_core.data.Loader`
(its own seeded generator) and one NumPy ``Generator`` for latents and the
discriminators' frame indices / crop corners.  Each step it hands the engine::

    inputs = {"real":   (d_steps, B, t_cond + t_pred, H, W, C) float32  one batch per D update
              "z_d":    (d_steps, B, z_dim) float32
              "z_g":    (B, z_dim) float32
              "rand_d": {"idx": (d_steps, B, K) int64, "offsets": (d_steps, B, 2) int64}
              "rand_g": {"idx": (B, K), "offsets": (B, 2)}}     (only the keys the decomposition needs)

drawn in this order: ``d_steps`` loader batches; then for each D update ``z_d[i]``
(standard normal, times ``config.latent_std``) and ``rand_d[i]`` (:func:`discriminator.sample_randomness`); then
``z_g`` and ``rand_g``.  G's conditioning frames are the first ``t_cond`` frames of
each real batch (D update ``i``: ``real[i]``; the G update: the last one, ``real[-1]``).

Engines implement ``init(seed)``, ``step(ts, inputs) -> (ts, metrics)`` (must not
modify ``ts`` in place: the loop keeps the previous state for Ctrl-C),
``export(ts)``, ``restore(tree)``, ``predict(ts, cond, z, ema=)``, ``name``, ``devices``.

Exit statuses (:class:`TrainResult.status` -> :data:`EXIT_CODES`); whatever stops a
run, the last completed step is on disk (a checkpoint is written unless the newest
one is already of that step) and ``status.json`` says what happened:

* ``done`` 0;
* ``nonfinite`` 3: a NaN/Inf loss; nothing of that step is kept, the state before it is saved;
* ``data_error`` 4: the data loader failed mid-run (``DataError``);
* ``disk_full`` 5: no space left while writing (``ENOSPC``/``EDQUOT``); the write that failed
  leaves no temporary file and earlier checkpoints are intact;
* ``process_lost`` 6: another process of a multi-process job died or stopped answering
  (a collective failed: :class:`~trivd_core.train.engine.ProcessLost`); process 0 saves the
  last completed step;
* ``interrupted`` 130: Ctrl-C (SIGINT); ``terminated`` 143: SIGTERM (``kill``, SLURM
  preemption, ``docker stop``); both finish the current step first (a second signal stops at once).
  A signal before the first step stops the start at its next stage (``KeyboardInterrupt`` out of
  :func:`train`, nothing written; :class:`StopRequest`).

Any other exception is re-raised after the same save (``status.json``: ``failed``).
The run directory is held with :class:`~trivd_core.train.lock.RunLock` for the
whole call; temporary files and uncommitted ``.npz`` files left by a killed run are
removed when the next run starts.

A job of ``P`` processes (``engine.process_count > 1``): every process runs this loop
in step with a loader of its shard (``Loader(..., shard=(p, P))``) and hands its engine
its ``B / P`` rows of the global batch, which is the same whatever ``P`` (the loader's
samples and the loop's draws are those of one process).  Before each step the processes
agree (``engine.agree``) on whether to go on: a Ctrl-C / SIGTERM or a data error in any
of them stops all of them after the same step.  Process 0 alone holds the lock and
writes (checkpoints, samples, metrics, validation, status.json); the others wait at a
barrier after each checkpoint and at the end.  The training state is replicated, so a
checkpoint is the job's and restores on any number of processes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..configs import Config
from ..discriminator import sample_randomness
from ..files import atomic_write_bytes
from . import artifacts, rundir
from .checkpoint import (
    checkpoint_problem,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_leftovers,
    save_checkpoint,
)
from .lock import RunLock

__all__ = ["TrainOptions", "TrainResult", "GateRefused", "EXIT_CODES", "InputSampler", "train", "loop_rng", "StopRequest",
           "STOP"]

EXIT_CODES = {"done": 0, "failed": 1, "nonfinite": 3, "data_error": 4, "disk_full": 5, "process_lost": 6,
              "interrupted": 130, "terminated": 143}

#: What a process asks for before a step, agreed over a job as the largest code (``Engine.agree``).
_GO, _INTERRUPTED, _TERMINATED, _DATA_ERROR = 0, 1, 2, 3
_STOP_CODES = {"interrupted": _INTERRUPTED, "terminated": _TERMINATED}


class GateRefused(RuntimeError):
    """The pre-training conformance gate found a mismatch; the message lists the failures."""


@dataclass
class TrainOptions:
    """Cadence and output of a run (steps are totals: ``steps`` is where the run ends, also after a resume)."""

    run_dir: Path
    steps: int
    seed: int = 0
    log_every: int = 10
    sample_every: int = 100
    ckpt_every: int = 100
    keep: int = 3
    n_samples: int = 4
    sample_fps: float = 3.0
    progress: bool = True
    eval_every: int = 0  # steps between validations (0: none); needs train(validator=...)

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)
        for name in ("steps", "log_every", "sample_every", "ckpt_every", "keep", "n_samples", "eval_every"):
            v = getattr(self, name)
            lo = 0 if name in ("steps", "eval_every") else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"TrainOptions: '{name}' must be a {'non-negative' if lo == 0 else 'positive'} "
                                 f"int, got {v!r}")


@dataclass
class TrainResult:
    status: str
    step: int
    message: str = ""
    checkpoint: Path | None = None
    seconds: float = 0.0
    steps_per_sec: float | None = None
    last_metrics: dict = field(default_factory=dict)
    last_validation: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def loop_rng(seed: int) -> np.random.Generator:
    """The loop's generator for latents and D randomness (a stream separate from weight init and the loader)."""
    return np.random.default_rng([int(seed), 0x7472])


class InputSampler:
    """Draws the per-step inputs of the engine interface from a Loader and a NumPy Generator.

    With a sharded loader (``loader.shard = (p, P)``, a job of ``P`` processes) the latents and
    the discriminators' randomness are drawn for the whole global batch, in the same order as
    on one process, and process ``p`` keeps its rows: the global inputs do not depend on ``P``.
    """

    def __init__(self, config: Config, loader, rng: np.random.Generator):
        self.config, self.loader, self.rng = config, loader, rng

    def draw(self) -> dict:
        c, rng = self.config, self.rng
        real = np.stack([np.asarray(self.loader.next_batch(), dtype=np.float32) for _ in range(c.d_steps)])
        want = (c.d_steps, real.shape[1], c.t_total, c.resolution, c.resolution, c.channels)
        if real.shape != want:
            raise ValueError(f"the data loader yields batches of shape {real.shape[1:]}, the config needs {want[1:]} "
                             "(batch, t_cond + t_pred, resolution, resolution, channels)")
        index, count = getattr(self.loader, "shard", (0, 1))
        B_p = real.shape[1]
        B = B_p * count  # the global batch: every process draws all of it and keeps its rows
        rows = slice(index * B_p, (index + 1) * B_p)
        z_d, rand_d = [], []
        for _ in range(c.d_steps):
            z_d.append((rng.standard_normal((B, c.z_dim)) * c.latent_std).astype(np.float32)[rows])
            rand_d.append({k: v[rows] for k, v in sample_randomness(c, rng, B).items()})
        z_g = (rng.standard_normal((B, c.z_dim)) * c.latent_std).astype(np.float32)[rows]
        rand_g = {k: v[rows] for k, v in sample_randomness(c, rng, B).items()}
        return {"real": real, "z_d": np.stack(z_d), "z_g": z_g,
                "rand_d": {k: np.stack([r[k] for r in rand_d]) for k in rand_g}, "rand_g": rand_g}

    def state(self) -> dict:
        return {"loader": self.loader.state_dict(), "rng": self.rng.bit_generator.state}

    def load_state(self, state: Mapping) -> None:
        self.loader.load_state_dict(state["loader"])
        self.rng.bit_generator.state = state["rng"]


class StopRequest:
    """SIGINT / SIGTERM of the whole ``trivd train`` process: a flag, checked where stopping is safe.

    Installed once, as early as possible (the command installs it before it imports a framework;
    :func:`train` installs it if nobody did), and kept until the outermost holder leaves.  The first
    signal only sets the flag and says what happens next; it raises nothing, because an exception
    raised at an arbitrary moment is not safe: Python drops one raised inside a garbage-collector
    callback (XLA registers one, and the run trained on), and one raised while a framework's native
    library is being imported or initialised crashed the process (SIGSEGV / SIGABRT, measured).
    The flag is tested between the stages of the start (:meth:`check`: nothing trained, exit 130 /
    143) and by the loop before each step (the step in flight completes and is saved).  A second
    signal raises ``KeyboardInterrupt`` at once - the user insists.
    """

    _SIGNALS = {signal.SIGINT: ("interrupted", "interrupt (Ctrl-C)"),
                signal.SIGTERM: ("terminated", "SIGTERM")}

    def __init__(self):
        self.requested: str | None = None  # the status the run will end with
        self.stepping = False  # a step has completed: the first signal finishes the step and saves it
        self._old: dict = {}
        self._depth = 0

    def __enter__(self):
        if self._depth == 0:
            self.requested, self.stepping = None, False
            if threading.current_thread() is threading.main_thread():
                for sig in self._SIGNALS:
                    self._old[sig] = signal.signal(sig, self._handler)
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            for sig, old in self._old.items():
                signal.signal(sig, old)
            self._old.clear()
        return False

    def request(self, signum) -> None:
        """Take a signal that arrived before this object was installed (``signum``) as if it had come now."""
        self.requested = self.requested or self._SIGNALS[signal.Signals(signum)][0]

    def _handler(self, signum, frame):
        status, what = self._SIGNALS[signal.Signals(signum)]
        if self.requested:
            if not _in_gc_callback(frame):  # Python would print the exception and drop it
                raise KeyboardInterrupt
            return
        self.requested = status
        then = ("finishing this step and writing a checkpoint" if self.stepping else
                "stopping before the first step (as soon as the current stage - an import, the gate, a compilation "
                "- returns)")
        print(f"\ntrivd train: {what} received - {then} (send it again to stop at once)", file=sys.stderr, flush=True)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a signal came."""
        if self.requested:
            raise KeyboardInterrupt


def _in_gc_callback(frame) -> bool:
    """Whether ``frame`` runs inside one of the garbage collector's callbacks (``gc.callbacks``)."""
    import gc

    codes = {getattr(cb, "__code__", None) for cb in gc.callbacks} - {None}
    while frame is not None and codes:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


#: the one stop request of this process (signals are per process)
STOP = StopRequest()


class _NotTheWriter(Exception):
    """Only process 0 of a job writes status.json."""


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def _fixed_samples(config: Config, dataset, n: int, seed: int):
    """Fixed evaluation clips (the first ``n`` readable clips of the dataset, a fixed generator) and latents."""
    from ..data import readable_clips

    rng = np.random.default_rng([int(seed), 0x73616D])
    clips = np.stack([np.asarray(c, np.float32) for c in readable_clips(dataset, n, rng)[0]])
    z = (rng.standard_normal((n, config.z_dim)) * config.latent_std).astype(np.float32)
    return clips[:, : config.t_cond], clips[:, config.t_cond:], z


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records after ``step`` (a resumed run redoes them)."""
    if not path.exists():
        return
    keep = [r for r in artifacts.read_metrics(path) if r.get("step", 0) <= step]
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in keep).encode())


def train(engine, config: Config, loader, options: TrainOptions, *, resume: bool = False,
          gate: Callable[[], tuple[bool, str]] | None = None, run_info: Mapping | None = None,
          dataset=None, log: Callable[[str], None] | None = None,
          validator: Callable[[dict], dict] | None = None) -> TrainResult:
    """Train ``engine`` on batches of ``loader`` for ``options.steps`` steps in total; see the module docstring.

    ``gate()`` (run first) returns ``(ok, report)``; not ok raises :class:`GateRefused`.
    ``resume``: continue from the newest intact checkpoint in ``run_dir/checkpoints``
    (error if there is none; a damaged newer one is reported and skipped).  ``run_info``
    is written to ``config.json`` (with the resolved config and the engine's name and
    devices).  ``dataset`` supplies the fixed sample clips (default: ``loader.dataset``).
    ``validator(tree) -> dict`` (e.g. :func:`trivd_core.train.validation.validate` bound
    to a held-out set) runs every ``options.eval_every`` steps and at the last step on
    ``engine.export(ts)``; its record goes to ``metrics.jsonl`` with keys prefixed
    ``val/`` (and ``"kind": "val"``), the progress bar shows the model-to-copy MSE ratio,
    and ``curves.png`` is redrawn.  Raises :class:`~trivd_core.train.lock.RunLocked`
    when another process holds ``run_dir``.
    """
    writer = getattr(engine, "process_index", 0) == 0
    with STOP, (RunLock(options.run_dir) if writer else contextlib.nullcontext()) as lock:
        log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        if lock is not None and lock.stale:
            log(f"trivd train: {options.run_dir} held a stale lock of a run that ended without releasing it "
                f"(pid {lock.stale.get('pid')}, started {lock.stale.get('started')}); taken over")
        return _train(engine, config, loader, options, resume=resume, gate=gate, run_info=run_info,
                      dataset=dataset, log=log, validator=validator)


def _train(engine, config, loader, options, *, resume, gate, run_info, dataset, log, validator) -> TrainResult:
    run_dir = options.run_dir
    ckpt_dir = run_dir / rundir.CHECKPOINTS
    # a job of several processes: every process runs this loop in step; process 0 alone writes the run directory
    procs = int(getattr(engine, "process_count", 1))
    writer = getattr(engine, "process_index", 0) == 0
    if procs > 1 and tuple(getattr(loader, "shard", (0, 1))) != (engine.process_index, procs):
        raise ValueError(f"train(): process {engine.process_index} of {procs} needs a loader of its shard "
                         f"(Loader(..., shard=({engine.process_index}, {procs}))), got shard "
                         f"{getattr(loader, 'shard', (0, 1))}")
    say = log if writer else (lambda msg: None)
    barrier = getattr(engine, "barrier", None) or (lambda name, **kw: None)  # duck-typed one-process engines have none
    if writer:
        (run_dir / rundir.SAMPLES).mkdir(parents=True, exist_ok=True)
        for leftover in remove_leftovers(run_dir, ckpt_dir, run_dir / rundir.SAMPLES):
            log(f"trivd train: removed {leftover} (left by a run that was killed while writing)")
    metrics_path = run_dir / rundir.METRICS
    if gate is not None:
        ok, report = gate()
        if not ok:
            raise GateRefused(report)
    STOP.check()  # a signal during the gate, whose exception a callback may have dropped
    barrier("trivd: start")  # process 0 has cleaned the folder: the others may read it
    sampler = InputSampler(config, loader, loop_rng(options.seed))
    if resume:
        found = latest_checkpoint(ckpt_dir)
        if found is None:
            raise FileNotFoundError(f"--resume: no intact checkpoint in {ckpt_dir}")
        for newer in [p for p in list_checkpoints(ckpt_dir) if p.name > found.name]:
            say(f"trivd train: the checkpoint {newer.name} is damaged ({checkpoint_problem(newer)}); "
                f"resuming from the older {found.name}")
        tree, meta = load_checkpoint(found)
        saved = meta.get("config")
        if isinstance(saved, Mapping):  # fields added to Config later take their defaults in older runs
            saved = {**_jsonable(Config().to_dict()), **saved}
        if saved != _jsonable(config.to_dict()):
            raise ValueError(f"--resume: the checkpoint {found} was written for another config")
        ts = engine.restore(tree)
        sampler.load_state(meta)
        step = int(meta["step"])
        if writer:
            _truncate_metrics(metrics_path, step)
        say(f"trivd train: resumed from {found} (step {step}, written by backend {meta.get('backend')})")
    else:
        ts = engine.init(options.seed)
        step = 0
        if writer:
            metrics_path.write_text("")
    info = {"config": _jsonable(config.to_dict()), "backend": engine.name, "devices": list(engine.devices),
            "seed": options.seed, **({"processes": procs} if procs > 1 else {}), **_jsonable(dict(run_info or {}))}
    if writer:
        rundir.write_run_config(run_dir, info)

    cond, truth, z_s = _fixed_samples(config, dataset if dataset is not None else loader.dataset,
                                      options.n_samples, options.seed)

    good = (ts, step, sampler.state())
    last_ckpt = [latest_checkpoint(ckpt_dir)]
    STOP.check()

    def checkpoint(state) -> Path | None:
        ts_, step_, st = state
        if not writer:  # the state is replicated: process 0's copy is the job's
            return None
        meta = {"backend": engine.name, "config": info["config"], "loader": _jsonable(st["loader"]),
                "rng": _jsonable(st["rng"]), "seed": options.seed}
        path = save_checkpoint(ckpt_dir, engine.export(ts_), step=step_, meta=meta, keep=options.keep)
        last_ckpt[0] = path
        return path

    def samples(ts_, step_) -> None:
        live = engine.predict(ts_, cond, z_s, ema=False)  # every process: one program over the job
        ema = engine.predict(ts_, cond, z_s, ema=True)
        if not writer:
            return
        artifacts.write_samples(rundir.sample_path(run_dir, step_, ".gif"), rundir.sample_path(run_dir, step_, ".png"),
                                cond, truth, [live, ema], step=step_, scale=artifacts.sample_scale(config.resolution),
                                fps=options.sample_fps)
        artifacts.plot_losses(metrics_path, run_dir / rundir.LOSS_PLOT, title=f"trivd train ({engine.name}, {config.name})")

    val_last: dict = {}

    def run_validation(ts_, step_, mlog) -> None:
        from .validation import plot_validation

        t_v = time.perf_counter()
        rec = validator(engine.export(ts_))
        val_last.clear()
        val_last.update(rec)
        out = {"step": step_, "time": round(time.time(), 3), "kind": "val",
               "val_seconds": round(time.perf_counter() - t_v, 3), **{f"val/{k}": v for k, v in rec.items()}}
        mlog.write(json.dumps(_jsonable(out)) + "\n")
        mlog.flush()
        plot_validation(metrics_path, run_dir / rundir.CURVES_PLOT, title=f"held-out validation ({engine.name}, {config.name})")
        if tb is not None:
            tb.validation(step_, rec)

    if not writer:  # validation predicts locally: process 0 alone runs it
        validator = None
    tb = None
    if validator is not None and options.eval_every:
        from .validation import TensorBoard

        tb = TensorBoard.open(run_dir / "tensorboard")

    bar = None

    def open_bar():  # after the first step: its compile time would make the rate and the ETA meaningless
        if not options.progress or not writer:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency
            return None
        return tqdm(total=options.steps, initial=step, unit="step", dynamic_ncols=True, smoothing=0.1)

    paused = [False]

    def pause(what):  # a slow side task between steps: say it, and keep its time out of the rate
        paused[0] = True
        if bar is not None:
            bar.set_description_str(what, refresh=True)
        elif options.progress and what:
            log(f"trivd train: step {step}: {what}")

    def resume_bar():
        if bar is not None and paused[0]:
            bar.set_description_str("", refresh=False)
            bar.unpause()  # restarts tqdm's timer at the last print: the pause does not count as step time
        paused[0] = False

    if step < options.steps and getattr(engine, "compiles", False):
        say(f"trivd train: step {step + 1}: compiling the D and G updates ({engine.name}; on a CPU the first run "
            "takes about 1-3 min, later runs of the same config load the compilation cache)")
    t0 = time.perf_counter()
    steps_done = 0
    last = {}
    status, message = "done", ""
    first_step = step
    error: BaseException | None = None
    from ..data import DataError
    from .engine import ProcessLost

    try:
        with STOP as interrupt, (metrics_path.open("a", encoding="utf-8") if writer
                                         else open(os.devnull, "w", encoding="utf-8")) as mlog:
            try:
                # One step in flight: step k + 1 is dispatched before step k's metrics are read, so that an
                # asynchronous engine (JAX) queues the next step while the device still computes this one; a
                # step is "settled" (its metrics fetched and checked finite, then logged) one step late, or at
                # once where side work follows it.  `good` is always a settled step.
                pending = None  # (ts, step, sampler state, metrics) of the dispatched, unsettled step

                def settle(p) -> bool:
                    """Check step ``p``'s metrics; log it and make it ``good``.  False (status nonfinite) if not finite."""
                    nonlocal step, steps_done, good, last, status, message, bar
                    metrics = {k: float(v) for k, v in p[3].items()}
                    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
                    if bad:
                        k = "d_loss" if "d_loss" in bad else ("g_loss" if "g_loss" in bad else sorted(bad)[0])
                        status = "nonfinite"
                        message = (f"non-finite loss at step {p[1]}: {k} = {bad[k]} "
                                   f"(non-finite: {', '.join(sorted(bad))}); training stopped, nothing of this step "
                                   "was kept")
                        return False
                    step = p[1]
                    steps_done += 1
                    interrupt.stepping = True  # a completed step to save: a first signal finishes the next one
                    good = (p[0], p[1], p[2])
                    last = metrics
                    if step % options.log_every == 0 or step == options.steps:
                        now = time.perf_counter()
                        rec = {"step": step, "time": round(time.time(), 3),
                               "steps_per_sec": round(steps_done / max(now - t0, 1e-9), 4), **metrics}
                        if getattr(loader, "skipped", 0):
                            rec["data_skipped"] = int(loader.skipped)
                        mlog.write(json.dumps(rec) + "\n")
                        mlog.flush()
                    if tb is not None:
                        tb.scalars(step, metrics)
                    if bar is None and steps_done == 1:
                        bar = open_bar()
                        if bar is not None:
                            bar.update(0)
                    elif bar is not None:
                        post = {"d": f"{metrics.get('d_loss', float('nan')):.3f}",
                                "g": f"{metrics.get('g_loss', float('nan')):.3f}"}
                        if "mse_ratio" in val_last:
                            post["val_mse/copy"] = f"{val_last['mse_ratio']:.2f}"
                        bar.set_postfix(post, refresh=False)
                        bar.update(1)
                    return True

                def side_work_due(k: int) -> tuple[bool, bool, bool]:
                    """``(checkpoint, samples, validation)`` due after step ``k`` (all three at the last step)."""
                    last = k == options.steps
                    return (k % options.ckpt_every == 0 or last, k % options.sample_every == 0 or last,
                            bool(validator is not None and options.eval_every and (k % options.eval_every == 0 or last)))

                def settle_pending() -> None:
                    """Settle the step in flight when the loop stops early (a stop, a data error, a lost peer): it
                    completed, so it is the last completed step; a failure to read it keeps the previous one."""
                    nonlocal pending
                    if pending is not None and status == "done":
                        p, pending = pending, None
                        try:
                            settle(p)
                        except Exception:  # noqa: BLE001 - the reason the loop stopped is what gets reported
                            pass

                # in a job the stop is agreed at the top of the next step, so that every process stops at the same one
                try:
                    while (pending[1] if pending else step) < options.steps and (procs > 1 or not interrupt.requested):
                        if procs == 1:
                            inputs = sampler.draw()
                        else:  # every process takes the step, or none does: agree on a stop first
                            inputs, data_exc, asked = None, None, _GO
                            if interrupt.requested:
                                asked = _STOP_CODES[interrupt.requested]
                            else:
                                try:
                                    inputs = sampler.draw()
                                except DataError as exc:
                                    asked, data_exc = _DATA_ERROR, exc
                            agreed = engine.agree(asked)
                            if data_exc is not None:
                                raise data_exc
                            if agreed == _DATA_ERROR:
                                raise DataError("another process of the job could not load its data (see its log)")
                            if agreed != _GO:
                                interrupt.requested = "terminated" if agreed == _TERMINATED else "interrupted"
                                break
                        head_ts, head_step = (pending[0], pending[1]) if pending else (good[0], step)
                        new_ts, metrics = engine.step(head_ts, inputs)
                        dispatched = (new_ts, head_step + 1, sampler.state(), metrics)
                        if pending is not None and not settle(pending):
                            pending = None
                            break
                        pending = dispatched
                        due_ckpt, due_samples, due_val = side_work_due(pending[1])
                        if not (due_ckpt or due_samples or due_val):
                            continue  # settled after the next step is dispatched
                        p, pending = pending, None
                        if not settle(p):
                            break
                        # Side work: process 0 writes and validates while the others wait at a side-work barrier,
                        # whose deadline is the job's side-work timeout, not the collective timeout (a slow
                        # filesystem or a first validation compile is not a lost process).
                        if due_ckpt:
                            pause("writing a checkpoint")
                            checkpoint(good)
                            barrier(f"trivd: checkpoint {step}", side_work=True)  # the others wait until it is written
                        if due_samples:
                            pause("writing samples" + (" (compiling predict on the first call)" if step <= options.sample_every
                                                        and getattr(engine, "compiles", False) else ""))
                            samples(good[0], step)
                        if due_val:
                            pause("held-out validation")
                            run_validation(good[0], step, mlog)
                        if (due_samples or due_val) and procs > 1:
                            barrier(f"trivd: side work {step}", side_work=True)
                        resume_bar()
                except (DataError, ProcessLost):
                    settle_pending()
                    raise
                settle_pending()
                if interrupt.requested and status == "done" and step < options.steps:
                    status = interrupt.requested
            except KeyboardInterrupt:
                status = interrupt.requested or "interrupted"
    except DataError as exc:
        status, message, error = "data_error", f"data error after step {good[1]}: {exc}", None
    except ProcessLost as exc:
        status, message, error = "process_lost", f"after step {good[1]}: {exc}", None
    except OSError as exc:
        if not _disk_full(exc):
            status, error = "failed", exc
        else:
            status, error = "disk_full", None
            message = f"disk full while writing into {run_dir} after step {good[1]} ({exc})"
    except Exception as exc:  # noqa: BLE001 - saved first, then re-raised below
        status, error = "failed", exc
    finally:
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()

    # whatever stopped the run: the last completed step goes to disk (unless the newest checkpoint is that step)
    saved_note = "" if writer else "process 0 writes the checkpoint"
    if status != "done" and good[1] > 0 and status != "disk_full" and writer:
        try:
            if last_ckpt[0] is None or load_meta_step(last_ckpt[0]) != good[1]:
                checkpoint(good)
            saved_note = f"checkpoint of step {good[1]}: {last_ckpt[0]}"
        except BaseException as exc:  # noqa: BLE001 - a failed save must not hide why the run stopped
            if _disk_full(exc):
                status = "disk_full"
                message = message or f"disk full while writing into {run_dir} after step {good[1]} ({exc})"
            saved_note = f"the checkpoint of step {good[1]} could not be written ({exc.__class__.__name__}: {exc})"
    if status == "disk_full" and writer:
        newest = latest_checkpoint(ckpt_dir)
        last_ckpt[0] = newest
        message += (f"; nothing half-written was left; the newest intact checkpoint is "
                    f"{newest if newest else 'none'}; free some space and resume with --resume {run_dir}")
    elif status in ("interrupted", "terminated") and good[1] == 0:
        message = f"{status} before the first step; nothing was trained"
    elif status in ("interrupted", "terminated"):
        message = f"{status} at step {good[1]}; {saved_note or 'no step completed'}; resume with --resume {run_dir}"
    elif status in ("nonfinite", "data_error"):
        message += f"; {saved_note or 'no step completed, nothing to save'}"
    elif status == "process_lost":
        message += (f"; {saved_note or 'nothing saved here'}" if writer else "; process 0 saves the last completed step")
        message += f"; restart every process with --resume {run_dir}"
    elif status == "failed":
        message = f"failed after step {good[1]} ({error.__class__.__name__}: {error}); {saved_note or 'nothing saved'}"
    if status in ("interrupted", "terminated") and writer:
        try:
            artifacts.plot_losses(metrics_path, run_dir / rundir.LOSS_PLOT, title=f"trivd train ({engine.name}, {config.name})")
        except Exception:  # noqa: BLE001 - the plot is a convenience; the checkpoint is what matters
            pass
    seconds = time.perf_counter() - t0
    result = TrainResult(status=status, step=good[1], message=message or f"done: {good[1]} steps", checkpoint=last_ckpt[0],
                         seconds=seconds, steps_per_sec=(steps_done / seconds) if steps_done else None,
                         last_metrics=last, last_validation=dict(val_last))
    if status == "done":
        barrier("trivd: end")  # process 0 has written the last checkpoint and samples
    try:
        if not writer:
            raise _NotTheWriter
        rundir.write_status(run_dir, {
            "status": status, "exit_code": result.exit_code, "step": result.step, "message": result.message,
            "first_step": first_step, "seconds": round(seconds, 3), "steps_per_sec": result.steps_per_sec,
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "data_skipped": int(getattr(loader, "skipped", 0) or 0),
            "data_skipped_sources": len(getattr(loader, "skipped_sources", ()) or ()),
            **({"validation": _jsonable(dict(val_last))} if val_last else {})})
    except _NotTheWriter:
        pass
    except OSError as exc:
        if not _disk_full(exc):
            raise
    if error is not None:
        raise error
    return result


def load_meta_step(json_path) -> int | None:
    """The step recorded in a checkpoint's ``.json`` (None if unreadable)."""
    try:
        return int(json.loads(Path(json_path).read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
