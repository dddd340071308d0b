"""The JAX training engine: a training step as two ``jax.jit``-compiled XLA programs.

A training step (paper appendix E.3) is ``config.d_steps`` discriminator updates
followed by one generator update, then the EMA of G's weights.  It runs as two
compiled programs: the D update (called ``d_steps`` times, each on its slice of the
stacked D inputs) and the G update with the EMA (once); :meth:`JaxEngine.compiled_programs`
returns both.  The loop (``trivd_core.train``) draws every random input
with NumPy and passes it in, so the JAX and torch engines see identical inputs.

Training state ``ts`` (a pytree)::

    {"step": int64 0-d,
     "g_params", "g_state", "d_params", "d_state", "ema",
     "opt_g": (optax ScaleByAdamState, EmptyState), "opt_d": (...)}

``export`` turns it into the backend-neutral NumPy tree of the engine interface
(``opt_*`` become ``{"mu", "nu", "count"}``), ``restore`` does the inverse.

Decisions (documented in docs/training.md):

* D update ``i`` judges the real clip ``inputs["real"][i]`` against
  ``[real[i][:, :t_cond] ; G(real[i][:, :t_cond], z_d[i])]`` with the same
  randomness ``rand_d[i]`` for both.  G runs in training mode during the D update
  (batch statistics; its spectral-norm vectors advance and are threaded, as
  BigGAN-PyTorch does with G in train mode under ``no_grad``).
* The G update conditions on the first ``t_cond`` frames of the last real batch
  ``real[d_steps - 1]``.
* Adam is ``optax.adam(lr, b1=config.beta1, b2=config.beta2, eps=config.adam_eps)``
  (``scale_by_adam`` then ``-lr``), the same update as ``torch.optim.Adam``.
* The EMA update uses the step number *after* the step (``ts["step"] + 1``).

Data parallelism: the batch axis of every input is sharded over a one-axis
``Mesh`` of the engine's devices (``NamedSharding``), the training state is
replicated; XLA's SPMD partitioner turns every batch mean (batch norm, the losses,
the mixed projection head) into a cross-device all-reduce, so the statistics are
those of the global batch.

Several processes (:mod:`backends.jax.distributed` joined first): the mesh spans
``jax.devices()``, the devices of every process, and each process passes :meth:`step`
its slice of the global batch (``B / P`` rows, in process order), assembled into the
global arrays with ``jax.make_array_from_process_local_data``; the program, and so every
batch statistic, is the same as on one process with all the devices.  Every process
calls :meth:`step` and :meth:`predict` (they are one program over the job); the state
and the metrics are replicated, so :meth:`export` reads them on any process.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from trivd_core import generator, objective
from trivd_core.ema import ema_update
from trivd_core.train.engine import Engine

from .sharding import BATCH_AXIS, batch_mesh

__all__ = ["JaxEngine", "enable_compilation_cache", "train_opt_for", "TRAIN_OPT_MODES", "FULL_OPT_MIN_STEPS",
           "FULL_OPT_MIN_WIDTH"]


def _tree_np(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(jax.device_get(a)), tree)


def _resolve_devices(devices):
    local = jax.local_devices()
    if jax.process_count() > 1:
        # a job of several processes trains on every device of every process: one mesh, one global batch
        if devices is not None:
            raise ValueError(f"engine(): argument 'devices' must be None in a job of {jax.process_count()} processes "
                             f"(the mesh spans all {jax.device_count()} devices of the job), got {devices!r}")
        return list(jax.devices())
    if devices is None:
        return list(local)
    if isinstance(devices, bool):
        raise TypeError(f"engine(): argument 'devices' must be None, an int or a list of jax.Device, got {devices!r}")
    if isinstance(devices, (int, np.integer)):
        n = int(devices)
        if not 1 <= n <= len(local):
            raise ValueError(
                f"engine(): argument 'devices' is {n}, but there are {len(local)} local JAX devices "
                "(on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N before JAX is imported gives N)"
            )
        return list(local[:n])
    devices = list(devices)
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"engine(): argument 'devices' must be None, an int or a non-empty list of jax.Device, "
                        f"got {devices!r}")
    return devices


class JaxEngine(Engine):
    """Training engine for ``config`` on ``devices`` (None: all local devices; an int: the first N).

    ``train_opt`` picks XLA:CPU's optimisation of the compiled step (``"fast-compile"`` or
    ``"full"``; default ``TRIVD_JAX_TRAIN_OPT``, else ``"fast-compile"``).
    """

    name = "jax"
    #: the first step compiles the D and G updates (XLA): the loop says so and leaves it out of the ETA
    compiles = True

    def __init__(self, config, *, devices=None, train_opt=None):
        super().__init__(config)
        self._devices = _resolve_devices(devices)
        self.mesh = batch_mesh(self._devices)
        self._replicated = NamedSharding(self.mesh, PartitionSpec())
        c = self.config
        self._tx_g = optax.adam(c.lr_g, b1=c.beta1, b2=c.beta2, eps=c.adam_eps)
        self._tx_d = optax.adam(c.lr_d, b1=c.beta1, b2=c.beta2, eps=c.adam_eps)
        self._d_fn = self._g_fn = None
        self._predict_fn = None
        self.train_opt = _train_opt_mode(train_opt)

    # -- interface -----------------------------------------------------------

    @property
    def devices(self) -> list[str]:
        if jax.process_count() > 1:
            return [f"{d.platform}:{d.id} ({d.device_kind}, process {d.process_index})" for d in self._devices]
        return [f"{d.platform}:{d.id} ({d.device_kind})" for d in self._devices]

    @property
    def process_index(self) -> int:
        return jax.process_index()

    @property
    def process_count(self) -> int:
        return jax.process_count()

    def agree(self, code: int) -> int:
        if jax.process_count() == 1:
            return int(code)
        from .distributed import agree

        return agree(code)

    def barrier(self, name: str, *, side_work: bool = False) -> None:
        if jax.process_count() > 1:
            from .distributed import barrier, side_barrier

            (side_barrier if side_work else barrier)(name)

    @property
    def run_info(self) -> dict:
        """The compile option, recorded so that a resumed run compiles the same program (bit-exact resume)."""
        return {"jax_train_opt": self.train_opt}

    @property
    def note(self) -> str:
        return f"XLA {self.train_opt}"

    def step(self, ts, inputs):
        """One training step (d_steps D updates + 1 G update + EMA); returns ``(ts, metrics)``.

        In a job of ``P`` processes ``inputs`` are this process's ``B / P`` rows of the global batch.
        One process: the step is queued and returns at once, its metrics 0-d device arrays (``float(v)``
        waits for them); a job: floats, read before returning.
        """
        if jax.process_count() == 1:
            return self._step(ts, self._shard_inputs(inputs))
        from .distributed import _lost, peer_failed

        try:
            new_ts, metrics = self._step(ts, self._shard_inputs(inputs))
            # In a job the step is read here, inside the guard: a peer lost in one of its collectives then
            # shows as ProcessLost from this call (one process alone returns the metrics unread).
            return new_ts, {k: float(v) for k, v in metrics.items()}
        except Exception as exc:
            if not peer_failed(exc):
                raise
            raise _lost(exc, "in the training step") from exc

    def export(self, ts) -> dict:
        tree = {k: ts[k] for k in ("step", "g_params", "g_state", "d_params", "d_state", "ema")}
        for key in ("opt_g", "opt_d"):
            adam = ts[key][0]
            tree[key] = {"mu": adam.mu, "nu": adam.nu, "count": adam.count}
        out = _tree_np(tree)
        out["step"] = np.asarray(out["step"], dtype=np.int64)
        for key in ("opt_g", "opt_d"):
            out[key]["count"] = np.asarray(out[key]["count"], dtype=np.int64)
        return out

    def _restore(self, tree):
        """The inverse of :meth:`export` (any backend's export, checked by :meth:`Engine.check_tree`): NumPy tree ->
        replicated JAX training state."""

        def put(a, dtype=None):
            a = np.asarray(a)
            if dtype is not None:
                a = a.astype(dtype)
            elif np.issubdtype(a.dtype, np.floating):
                a = a.astype(np.float32)
            return jax.device_put(a, self._replicated)

        ts = {k: jax.tree_util.tree_map(put, tree[k]) for k in ("g_params", "g_state", "d_params", "d_state", "ema")}
        ts["step"] = put(tree["step"], np.int64 if jax.config.jax_enable_x64 else np.int32)
        for key in ("opt_g", "opt_d"):
            o = tree[key]
            adam = optax.ScaleByAdamState(
                count=put(o["count"], np.int32),
                mu=jax.tree_util.tree_map(put, o["mu"]),
                nu=jax.tree_util.tree_map(put, o["nu"]),
            )
            ts[key] = (adam, optax.EmptyState())
        return ts

    def predict(self, ts, cond_frames, z, *, ema: bool = True):
        """Predicted frames ``(B, t_pred, H, W, C)`` (NumPy) in evaluation mode (standing statistics if present).

        In a job every process calls it with the same inputs (one program over the job's devices)."""
        if jax.process_count() == 1:
            return self._predict(ts, cond_frames, z, ema=ema)
        from .distributed import _lost, peer_failed

        try:
            return self._predict(ts, cond_frames, z, ema=ema)
        except Exception as exc:
            if not peer_failed(exc):
                raise
            raise _lost(exc, "predicting the samples") from exc

    def _predict(self, ts, cond_frames, z, *, ema: bool = True):
        if self._predict_fn is None:
            def fn(params, state, cond, z):
                frames, _ = generator.generate(params, state, cond, z, train=False)
                return frames

            self._predict_fn = jax.jit(fn, compiler_options=_compiler_options(self.train_opt))
        params = ts["ema"] if ema else ts["g_params"]
        cond = jax.device_put(np.asarray(cond_frames, np.float32), self._replicated)
        z = jax.device_put(np.asarray(z, np.float32), self._replicated)
        return np.asarray(jax.device_get(self._predict_fn(params, ts["g_state"], cond, z)))

    # -- internals -------------------------------------------------------------

    def _shard_inputs(self, inputs):
        """Batch axis (axis 1 of the stacked D inputs, axis 0 of the G inputs) over the mesh."""
        inputs = self.check_inputs(inputs)
        procs = jax.process_count()
        n = len(self._devices) // procs  # the devices of this process (the mesh has as many in each)

        def put(a, batch_axis):
            a = np.asarray(a)
            if a.dtype.kind == "f":
                a = a.astype(np.float32)
            if a.shape[batch_axis] % n:
                what = "this process's slice of the batch" if procs > 1 else "the batch"
                raise ValueError(f"step(): {what} ({a.shape[batch_axis]}) must be divisible by the number of "
                                 f"{'local ' if procs > 1 else ''}devices ({n})")
            spec = [None] * a.ndim
            spec[batch_axis] = BATCH_AXIS
            sharding = NamedSharding(self.mesh, PartitionSpec(*spec))
            if procs == 1:
                return jax.device_put(a, sharding)
            shape = list(a.shape)
            shape[batch_axis] *= procs
            return jax.make_array_from_process_local_data(sharding, a, tuple(shape))

        return {
            "real": put(inputs["real"], 1),
            "z_d": put(inputs["z_d"], 1),
            "z_g": put(inputs["z_g"], 0),
            "rand_d": {k: put(v, 1) for k, v in inputs["rand_d"].items()},
            "rand_g": {k: put(v, 0) for k, v in inputs["rand_g"].items()},
        }

    def _d_update(self, g_params, g_state, d_params, d_state, opt_d, real, z, rand):
        """One discriminator update on ``real`` against ``[cond ; G(cond, z)]`` (G in training mode)."""
        c = self.config
        cond = real[:, :c.t_cond]
        fake_frames, g_state = generator.generate(g_params, g_state, cond, z, train=True)
        fake = jnp.concatenate([cond, fake_frames], axis=1)

        def d_obj(dp):
            loss, aux, new_state = objective.d_loss(dp, d_state, real, fake, rand, c, train=True)
            return loss, (aux, new_state)

        (loss, (aux, d_state)), grads = jax.value_and_grad(d_obj, has_aux=True)(d_params)
        updates, opt_d = self._tx_d.update(grads, opt_d, d_params)
        d_params = optax.apply_updates(d_params, updates)
        return g_state, d_params, d_state, opt_d, {"d_loss": loss, **aux}

    def _g_update(self, g_params, g_state, d_params, d_state, opt_g, ema, step, real, z, rand):
        """The generator update (Eq. 14 + orthogonal penalty), then the EMA at ``step + 1``."""
        c = self.config
        cond, target = real[:, :c.t_cond], real[:, c.t_cond:]

        def g_obj(gp):
            loss, aux, states = objective.g_loss(gp, g_state, d_params, d_state, cond, z, rand, c, train=True,
                                                 target_frames=target)
            return loss, (aux, states)

        (loss, (aux, states)), grads = jax.value_and_grad(g_obj, has_aux=True)(g_params)
        updates, opt_g = self._tx_g.update(grads, opt_g, g_params)
        g_params = optax.apply_updates(g_params, updates)
        step = step + 1
        ema = ema_update(ema, g_params, c.ema_decay, step, c.ema_start)
        metrics = {"g_loss": loss, "ortho": aux["ortho"], "gan": aux["gan"]}
        if "recon" in aux:
            metrics["recon"] = aux["recon"]
        for key, v in aux.items():
            if key.startswith("g/"):
                metrics[key] = v
            elif key.startswith("fake/"):
                metrics["g_" + key] = v
        return g_params, states["g"], states["d"], opt_g, ema, step, metrics

    def _compile(self):
        rep = self._replicated
        opts = _compiler_options(self.train_opt)
        self._d_fn = jax.jit(self._d_update, out_shardings=rep, compiler_options=opts)
        self._g_fn = jax.jit(self._g_update, out_shardings=rep, compiler_options=opts)

    def compiled_programs(self, ts, inputs) -> dict:
        """The two XLA programs of :meth:`step` for these inputs' shapes, compiled ahead of time.

        Returns ``{"d_update": Compiled, "g_update": Compiled}`` (``jax.stages.Compiled``:
        ``memory_analysis()``, ``cost_analysis()``), lowered with the same arguments
        :meth:`step` passes (the first D update's slice of the stacked D inputs; the G
        update's conditioning frames); ``trivd bench`` reads their memory and FLOPs.
        """
        if self._d_fn is None:
            self._compile()
        c = self.config
        x = self._shard_inputs(inputs)
        rand0 = {k: v[0] for k, v in x["rand_d"].items()}
        d = self._d_fn.lower(ts["g_params"], ts["g_state"], ts["d_params"], ts["d_state"], ts["opt_d"],
                             x["real"][0], x["z_d"][0], rand0).compile()
        g = self._g_fn.lower(ts["g_params"], ts["g_state"], ts["d_params"], ts["d_state"], ts["opt_g"], ts["ema"],
                             ts["step"], x["real"][c.d_steps - 1], x["z_g"], x["rand_g"]).compile()
        return {"d_update": d, "g_update": g}

    def _step(self, ts, inputs):
        if self._d_fn is None:
            self._compile()
        c = self.config
        g_state, d_params, d_state, opt_d = ts["g_state"], ts["d_params"], ts["d_state"], ts["opt_d"]
        d_metrics = []
        for i in range(c.d_steps):
            rand = {k: v[i] for k, v in inputs["rand_d"].items()}
            g_state, d_params, d_state, opt_d, m = self._d_fn(ts["g_params"], g_state, d_params, d_state, opt_d,
                                                               inputs["real"][i], inputs["z_d"][i], rand)
            d_metrics.append(m)
        g_params, g_state, d_state, opt_g, ema, step, g_metrics = self._g_fn(
            ts["g_params"], g_state, d_params, d_state, ts["opt_g"], ts["ema"], ts["step"],
            inputs["real"][c.d_steps - 1], inputs["z_g"],
            inputs["rand_g"])
        new_ts = {"step": step, "g_params": g_params, "g_state": g_state, "d_params": d_params, "d_state": d_state,
                  "ema": ema, "opt_g": opt_g, "opt_d": opt_d}
        # The metrics stay on the device (0-d arrays of this process's first shard; the values are replicated):
        # reading them is the caller's, so that the loop can queue the next step before this one has finished.
        metrics = {k: _local_mean([m[k] for m in d_metrics]) for k in d_metrics[0]}
        metrics.update({k: _local(v) for k, v in g_metrics.items()})
        return new_ts, metrics


def _local(x):
    """A replicated 0-d array's copy on this process's first device (eager arithmetic on it stays local)."""
    shards = getattr(x, "addressable_shards", None)
    return shards[0].data if shards else x


def _local_mean(values):
    """The mean of the D updates' 0-d metrics, on the device (float32, as the updates computed them)."""
    local = [_local(v) for v in values]
    return local[0] if len(local) == 1 else jnp.mean(jnp.stack(local))


TRAIN_OPT_MODES = ("fast-compile", "full")
#: From this many steps on, a run compiles its step with XLA's full optimisation (break-even about 100 steps).
FULL_OPT_MIN_STEPS = 120


#: From this channel multiplier on (``max(g_ch, d_ch)``), a run compiles its step fully whatever its length.
FULL_OPT_MIN_WIDTH = 16


def train_opt_for(steps: int | None, saved_run: dict | None = None, config=None) -> str:
    """XLA's optimisation of a run's train step: ``$TRIVD_JAX_TRAIN_OPT``, else the option a resumed run recorded
    in its config.json (``saved_run["jax_train_opt"]``), else ``full`` from :data:`FULL_OPT_MIN_STEPS` steps on
    or for a ``config`` of channel multiplier :data:`FULL_OPT_MIN_WIDTH` or more, and ``fast-compile`` otherwise
    (also when ``steps`` is None).

    XLA:CPU's full optimisation compiles about 40-60 s longer and runs the tiny step 2.1x faster
    (docs/training.md), the paper_medium step 2.7x faster (240 s -> 90 s at batch 2, docs/benchmarks.md):
    at the paper's widths the extra compile is paid back within the first step.  A resumed run keeps the
    option it started with: the two compilations round differently, and resume is bit-exact.
    """
    recorded = (saved_run or {}).get("jax_train_opt")
    wide = config is not None and max(config.g_ch, config.d_ch) >= FULL_OPT_MIN_WIDTH
    return os.environ.get("TRIVD_JAX_TRAIN_OPT") or recorded or (
        "full" if wide or (steps is not None and steps >= FULL_OPT_MIN_STEPS) else "fast-compile")


def _train_opt_mode(mode=None) -> str:
    """``mode``, else ``TRIVD_JAX_TRAIN_OPT``, else ``fast-compile``; checked against :data:`TRAIN_OPT_MODES`."""
    if mode is None:
        mode, where = os.environ.get("TRIVD_JAX_TRAIN_OPT", "fast-compile"), "environment variable TRIVD_JAX_TRAIN_OPT"
    else:
        where = "engine(): argument 'train_opt'"
    if mode not in TRAIN_OPT_MODES:
        raise ValueError(f"{where} must be 'fast-compile' or 'full', got {mode!r}")
    return mode


def _compiler_options(mode=None):
    """XLA options for the training step in ``mode`` (default ``fast-compile``, see :func:`_train_opt_mode`).

    The step is a large unrolled program (recurrent cells over time, three stages, every
    sub-discriminator, forward and backward); XLA:CPU's LLVM pipeline needs minutes for
    it.  On CPU ``fast-compile`` lowers LLVM's optimisation level, which compiles faster
    but runs slower (measured in docs/training.md: tiny config, 72 s vs 113 s to compile,
    0.74 vs 0.35 s per step, so ``full`` pays off beyond about 100 steps);
    ``full`` keeps XLA's defaults.  Accelerators always use XLA's defaults.
    """
    mode = _train_opt_mode(mode)
    if mode == "full" or jax.default_backend() != "cpu":
        return None
    return {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def enable_compilation_cache(path=None) -> str | None:
    """Turn on JAX's persistent compilation cache (``TRIVD_JAX_CACHE``, default ``~/.cache/trivd/jax``; ``0``: off).

    The training step takes minutes to compile on CPU; with the cache a resumed or
    repeated run (same config, devices and JAX version) loads it in seconds.
    """
    path = os.environ.get("TRIVD_JAX_CACHE") if path is None else path
    if path in ("0", "off"):
        return None
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "trivd", "jax")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
