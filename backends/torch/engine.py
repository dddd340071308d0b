"""Training engines of the PyTorch backends: :class:`TorchEngine` (CPU / CUDA) and :class:`XlaEngine` (torch_xla).

An engine is the backend-specific half of training: it owns the
parameters, optimiser states and model states as tensors and performs one training
step of the paper's schedule (appendix E.3: ``config.d_steps`` discriminator updates,
then one generator update) from inputs the shared loop (``trivd_core.train``) drew
with NumPy.  Obtain one with ``backends.load("torch").engine(config)`` or
``backends.load("xla").engine(config)``.

One training step (``step(ts, inputs)``), all randomness from ``inputs``::

    for i in range(d_steps):                                   # D updates
        real  = inputs["real"][i]                              (B, t_cond + t_pred, H, W, C)
        cond  = real[:, :t_cond]
        fake  = generate(G, g_state, cond, inputs["z_d"][i], train=True)   no gradient;
                                                               g_state <- its new state
        L_D, aux, d_state = d_loss(D, d_state, real, [cond ; fake], rand_d[i])
        D <- Adam_D(D, grad L_D)
    cond = inputs["real"][-1][:, :t_cond]                      # G update: conditioning frames
    L_G, aux, {g, d} = g_loss(G, g_state, D, d_state, cond,    of the last real batch
                              inputs["z_g"], rand_g)
    G <- Adam_G(G, grad L_G);  g_state, d_state <- the new states
    ema <- ema_update(ema, G, config.ema_decay, step + 1, config.ema_start)

* **States.** Spectral-norm vectors (and, in evaluation, standing BN statistics) are
  threaded without gradients: G's state advances in every forward pass in training
  mode - the fake batch of each D update (as in BigGAN, where G stays in training
  mode while it makes D's fakes) and the G update; D's state advances in the real
  pass of each D update (``d_loss``) and in the G update (``g_loss``).
* **Adam** is a functional Adam with exactly the state of ``optax.scale_by_adam``
  and ``torch.optim.Adam`` (``mu`` = ``exp_avg``, ``nu`` = ``exp_avg_sq``,
  ``count`` = ``step``), evaluated in optax's order::

      mu = (1 - b1) g + b1 mu;   nu = (1 - b2) g^2 + b2 nu;   count += 1
      p  = p - lr * (mu / (1 - b1^count)) / (sqrt(nu / (1 - b2^count)) + eps)

  D's ``count`` advances ``d_steps`` times per training step, G's once.
* **Metrics** (Python floats): ``d_loss`` (mean over the D updates of the step),
  ``g_loss`` (including ``ortho_weight * ortho``), ``ortho`` (unweighted penalty),
  ``gan`` (``g_loss`` without the penalty), and per sub-discriminator ``name``:
  ``d/<name>``, ``real/<name>``, ``fake/<name>`` (means over the D updates of the
  hinge term and of the mean real / fake scores of ``d_loss``), ``g/<name>`` and
  ``g_fake/<name>`` (the G update's hinge term and mean fake score).  The same
  names as the JAX engine's.
* **Train state** ``ts`` is a dict with the keys of :meth:`TorchEngine.export` holding
  tensors (``step`` and the ``count`` entries as Python ints).  ``step`` never
  modifies the ``ts`` it is given (updates are out of place), so an old ``ts`` stays
  valid.

Determinism: on CPU a step is a deterministic function of ``(ts, inputs)`` (the
resume tests check bit-equality).  On CUDA the engine sets
``torch.backends.cudnn.deterministic = True`` and ``cudnn.benchmark = False``
(process-wide) unless built with ``deterministic=False``.

:class:`XlaEngine` runs the same step on torch_xla's device in SPMD mode: the batch
axis of every input is sharded over a one-axis mesh of all devices
(``xs.mark_sharding``), parameters and states are replicated, and XLA's partitioner
turns the batch-norm means into cross-device all-reduces (the paper's cross-replica
batch norm).  Each step is traced lazily and executed as one graph at its end
(``torch_xla.sync()``); compiled graphs are cached, so only the first step (and the
first step after ``config.ema_start``, where the EMA switches from copying to
averaging) compiles.
"""

from __future__ import annotations

import numpy as np
import torch

from trivd_core.discriminator import sub_discriminators
from trivd_core.ema import ema_update
from trivd_core.generator import generate
from trivd_core.objective import d_loss, g_loss
from trivd_core.train.engine import EXPORT_KEYS, Engine
from trivd_core.tree import tree_leaves, tree_map, tree_unflatten

__all__ = ["TorchEngine", "XlaEngine", "EXPORT_KEYS"]


def _detached(tree):
    return tree_map(lambda t: t.detach(), tree)


def _require_grad(tree):
    return tree_map(lambda t: t.requires_grad_(True) if t.is_floating_point() else t, tree)


# ---------------------------------------------------------------------------
# the engine


class TorchEngine(Engine):
    """Training engine on one PyTorch device (CPU or CUDA); see the module docstring.

    Args:
        config: a :class:`trivd_core.configs.Config` or a config name.
        devices: ``None`` (the backend's device: ``$TRIVD_TORCH_DEVICE``, else CUDA
            if available, else CPU), a device spec (``"cpu"``, ``"cuda:1"``,
            ``torch.device``) or a list holding exactly one.  Several devices need
            SPMD: use the ``xla`` backend's engine.
        backend: the :class:`backends.torch.TorchBackend` to use (default
            ``backends.torch.BACKEND``; it is activated: fast paths, TF32 off).
        deterministic: on CUDA, select deterministic cuDNN algorithms (process-wide).
    """

    name = "torch"
    compiles = False  # eager (True when torch.compile is configured; the first step then compiles)

    def __init__(self, config, *, devices=None, backend=None, deterministic: bool = True):
        super().__init__(config)
        if backend is None:
            raise TypeError(f"{type(self).__name__}(): argument 'backend' is required (a backends.torch backend); "
                            "build engines with backends.load('torch').engine(config)")
        self._backend = self._select_device(backend, devices)
        self._backend.activate()
        self._device = self._backend.device
        if self._device.type == "cuda" and deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        self._sub = sub_discriminators(self.config)
        # a job of several processes (torchrun, joined by backends.torch.distributed.initialize): each process
        # computes its slice of the global batch; batch norm and Eq. 15 reduce over the job, gradients are averaged
        from . import distributed

        self._dist = distributed
        self._replicas = distributed.TorchReplicas() if distributed.world()[1] > 1 else None

    @property
    def process_index(self) -> int:
        return self._dist.world()[0]

    @property
    def process_count(self) -> int:
        return self._dist.world()[1]

    def agree(self, code: int) -> int:
        return int(code) if self._replicas is None else self._dist.agree(code, self._device)

    def barrier(self, name: str, *, side_work: bool = False) -> None:
        if self._replicas is not None:
            (self._dist.side_barrier if side_work else self._dist.barrier)(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(config={self.config.name!r}, devices={self.devices!r})"

    def _select_device(self, backend, devices):
        if devices is None:
            return backend
        if isinstance(devices, (list, tuple)):
            if len(devices) != 1:
                raise ValueError(
                    f"{type(self).__name__}(): argument 'devices' must name exactly one device (the torch engine "
                    f"trains on one device; use the 'xla' backend for SPMD data parallelism), got {list(devices)!r}"
                )
            devices = devices[0]
        return backend.on(devices)

    @property
    def devices(self) -> list[str]:
        """Descriptions of the devices the engine trains on."""
        return [str(self._device)]

    # -- placement (overridden by the XLA engine) ----------------------------

    def _tensor(self, a, dtype=None):
        t = torch.tensor(np.asarray(a))  # a copy: the state never aliases the caller's arrays
        if dtype is not None:
            t = t.to(dtype)
        elif t.is_floating_point():
            t = t.to(torch.float32)
        return t.to(self._device)

    def _to_device(self, tree):
        """Parameters / states / optimiser moments: NumPy -> float32 tensors on the device (replicated)."""
        return tree_map(lambda a: self._tensor(a), tree)

    def _place_inputs(self, inputs):
        """The step's inputs on the device (the XLA engine shards their batch axis)."""
        return self._inputs_to(inputs, lambda a, batch_axis: self._tensor(a))

    def _inputs_to(self, inputs, place):
        inputs = self.check_inputs(inputs)
        out = {"real": place(inputs["real"], 1), "z_d": place(inputs["z_d"], 1), "z_g": place(inputs["z_g"], 0)}
        for key, batch_axis in (("rand_d", 1), ("rand_g", 0)):
            out[key] = {k: place(v, batch_axis) for k, v in inputs[key].items()}
        return out

    def _vector(self, values: list[float]) -> torch.Tensor:
        """A float32 vector on the device (data, not a graph constant: no XLA recompilation per value)."""
        return torch.tensor(values, dtype=torch.float32).to(self._device)

    def _sync(self, ts, extra=()) -> None:
        """Execute pending work (XLA: one graph for the whole step)."""

    # -- state ---------------------------------------------------------------

    def _restore(self, tree: dict) -> dict:
        """A checked exported tree (:meth:`Engine.check_tree`) -> tensors on this engine's device(s)."""
        ts = {
            "step": tree["step"],
            "g_params": _require_grad(self._to_device(tree["g_params"])),
            "g_state": self._to_device(tree["g_state"]),
            "d_params": _require_grad(self._to_device(tree["d_params"])),
            "d_state": self._to_device(tree["d_state"]),
            "ema": self._to_device(tree["ema"]),
        }
        for opt in ("opt_g", "opt_d"):
            o = tree[opt]
            ts[opt] = {"mu": self._to_device(o["mu"]), "nu": self._to_device(o["nu"]),
                       "count": o["count"]}
        self._sync(ts)
        return ts

    def export(self, ts: dict) -> dict:
        """The backend-neutral checkpoint tree: nested dicts of NumPy arrays (copies; see the module docstring)."""
        if not isinstance(ts, dict) or set(ts) != set(EXPORT_KEYS):
            raise ValueError(f"export(): argument 'ts' must be a training state of this engine (keys "
                             f"{list(EXPORT_KEYS)})")
        tensors = {k: ts[k] for k in ("g_params", "g_state", "d_params", "d_state", "ema")}
        tensors["opt_g"] = {k: ts["opt_g"][k] for k in ("mu", "nu")}
        tensors["opt_d"] = {k: ts["opt_d"][k] for k in ("mu", "nu")}
        out = self._numpy(tensors)
        out["step"] = np.asarray(ts["step"], dtype=np.int64)
        out["opt_g"]["count"] = np.asarray(ts["opt_g"]["count"], dtype=np.int64)
        out["opt_d"]["count"] = np.asarray(ts["opt_d"]["count"], dtype=np.int64)
        return {k: out[k] for k in EXPORT_KEYS}

    def _numpy(self, tree):
        return tree_map(lambda t: t.detach().cpu().numpy().copy(), tree)

    # -- training ------------------------------------------------------------

    def _adam(self, params, grads, opt, lr: float):
        """One functional Adam update (optax's order of operations); returns ``(params, opt)``, new tensors."""
        cfg = self.config
        b1, b2 = cfg.beta1, cfg.beta2
        count = opt["count"] + 1
        p, g = tree_leaves(params), tree_leaves(grads)
        mu, nu = tree_leaves(opt["mu"]), tree_leaves(opt["nu"])
        # bias corrections as device data (float32, like optax's), one 2-vector: torch_xla caches 0-d
        # transfers by value, so equal scalars within a step would merge into one graph input and the
        # graph would change with the step number (a recompilation); a vector is never merged.
        coef = self._vector([-lr / (1.0 - b1**count), 1.0 / (1.0 - b2**count)])
        c1, c2 = coef[0], coef[1]
        with torch.no_grad():
            new_mu = torch._foreach_add(torch._foreach_mul(g, 1.0 - b1), torch._foreach_mul(mu, b1))
            new_nu = torch._foreach_add(torch._foreach_mul(torch._foreach_mul(g, g), 1.0 - b2),
                                        torch._foreach_mul(nu, b2))
            denom = torch._foreach_add(torch._foreach_sqrt(torch._foreach_mul(new_nu, c2)), cfg.adam_eps)
            upd = torch._foreach_div(torch._foreach_mul(new_mu, c1), denom)
            new_p = torch._foreach_add(p, upd)
        new_params = _require_grad(tree_unflatten(params, new_p))
        return new_params, {"mu": tree_unflatten(params, new_mu), "nu": tree_unflatten(params, new_nu), "count": count}

    def _grad(self, loss, params):
        leaves = tree_leaves(params)
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        grads = [torch.zeros_like(t) if gr is None else gr for t, gr in zip(leaves, grads)]
        return tree_unflatten(params, grads)

    def step(self, ts: dict, inputs: dict) -> tuple[dict, dict]:
        """One training step (``d_steps`` D updates, one G update, EMA); returns ``(new_ts, metrics)``.

        In a job of ``P`` processes ``inputs`` are this process's ``B / P`` rows of the global batch; the
        batch statistics and Eq. 15 span the job (:mod:`backends.torch.distributed`), the gradients and
        the metrics are averaged over it.
        """
        if self._replicas is None:
            return self._step(ts, inputs)
        from trivd_core.replicas import across

        # A failed collective raises ProcessLost where it was called (backends.torch.distributed); every
        # other error of the step (out of memory, autograd, shapes) is the step's own and surfaces as itself.
        with across(self._replicas):
            return self._step(ts, inputs)

    def _job_mean(self, tree):
        """Gradients averaged over the processes of the job (unchanged on one process)."""
        if self._replicas is None:
            return tree
        return tree_unflatten(tree, self._dist.mean_over_job(tree_leaves(tree)))

    def _step(self, ts: dict, inputs: dict) -> tuple[dict, dict]:
        if not isinstance(ts, dict) or set(ts) != set(EXPORT_KEYS):
            raise ValueError(f"step(): argument 'ts' must be a training state of this engine (keys "
                             f"{list(EXPORT_KEYS)})")
        cfg = self.config
        x = self._place_inputs(inputs)
        tc = cfg.t_cond
        g_params, g_state = ts["g_params"], ts["g_state"]
        d_params, d_state, opt_d = ts["d_params"], ts["d_state"], ts["opt_d"]
        d_logs = []
        for i in range(cfg.d_steps):
            real = x["real"][i]
            cond = real[:, :tc]
            rand = {k: v[i] for k, v in x["rand_d"].items()}
            with torch.no_grad():
                fake, g_state = generate(_detached(g_params), g_state, cond, x["z_d"][i], train=True)
            fake_video = torch.cat([cond, fake], dim=1)
            with torch.enable_grad():
                loss, aux, d_state = d_loss(d_params, d_state, real, fake_video, rand, cfg, train=True)
                grads = self._job_mean(self._grad(loss, d_params))
            d_state = _detached(d_state)
            d_params, opt_d = self._adam(d_params, grads, opt_d, cfg.lr_d)
            d_logs.append((loss.detach(), {k: v.detach() for k, v in aux.items()}))

        cond, target = x["real"][cfg.d_steps - 1][:, :tc], x["real"][cfg.d_steps - 1][:, tc:]
        with torch.enable_grad():
            loss_g, aux_g, states = g_loss(g_params, g_state, _detached(d_params), d_state, cond, x["z_g"],
                                           x["rand_g"], cfg, train=True, target_frames=target)
            grads = self._job_mean(self._grad(loss_g, g_params))
        g_state, d_state = _detached(states["g"]), _detached(states["d"])
        g_params, opt_g = self._adam(g_params, grads, ts["opt_g"], cfg.lr_g)
        step = ts["step"] + 1
        with torch.no_grad():
            ema = ema_update(ts["ema"], _detached(g_params), cfg.ema_decay, step, cfg.ema_start)

        new_ts = {"step": step, "g_params": g_params, "g_state": g_state, "d_params": d_params,
                  "d_state": d_state, "ema": ema, "opt_g": opt_g, "opt_d": opt_d}
        names, values = self._metric_tensors(d_logs, loss_g.detach(), {k: v.detach() for k, v in aux_g.items()})
        if self._replicas is not None:  # each process's losses are means over its equal slice
            values = self._dist.mean_over_job(values)
        self._sync(new_ts, values)
        floats = torch.stack(values).cpu().tolist()
        return new_ts, dict(zip(names, floats))

    def _metric_tensors(self, d_logs, loss_g, aux_g):
        n = len(d_logs)
        names, values = ["d_loss", "g_loss", "gan", "ortho"], [
            sum(lo for lo, _ in d_logs) / n, loss_g, aux_g["gan"], aux_g["ortho"]]
        if "recon" in aux_g:
            names.append("recon")
            values.append(aux_g["recon"])
        for sub in self._sub:
            for key in ("d", "real", "fake"):
                names.append(f"{key}/{sub}")
                values.append(sum(a[f"{key}/{sub}"] for _, a in d_logs) / n)
            names += [f"g/{sub}", f"g_fake/{sub}"]
            values += [aux_g[f"g/{sub}"], aux_g[f"fake/{sub}"]]
        return names, [v.reshape(()).to(torch.float32) for v in values]

    # -- sampling ------------------------------------------------------------

    def predict(self, ts: dict, cond_frames, z, *, ema: bool = True) -> np.ndarray:
        """Predicted frames ``(B, t_pred, H, W, C)`` (NumPy float32) in evaluation mode.

        ``ema=True`` uses the EMA weights (appendix E.2: all evaluation samples),
        else the live weights.  Batch norms use the standing statistics in
        ``ts["g_state"]["standing"]`` when present, otherwise the batch statistics.
        """
        cfg = self.config
        r = cfg.resolution
        cond_frames = np.asarray(cond_frames)
        z = np.asarray(z)
        if cond_frames.ndim != 5 or cond_frames.shape[1:] != (cfg.t_cond, r, r, cfg.channels):
            raise ValueError(f"predict(): argument 'cond_frames' must have shape (B, {cfg.t_cond}, {r}, {r}, "
                             f"{cfg.channels}), got {cond_frames.shape}")
        if z.shape != (cond_frames.shape[0], cfg.z_dim):
            raise ValueError(f"predict(): argument 'z' must have shape ({cond_frames.shape[0]}, {cfg.z_dim}), "
                             f"got {z.shape}")
        params = ts["ema"] if ema else ts["g_params"]
        c, zz = self._predict_inputs(cond_frames.astype(np.float32), z.astype(np.float32))
        with torch.no_grad():
            frames, _ = generate(_detached(params), ts["g_state"], c, zz, train=False)
        return self._numpy(frames)

    def _predict_inputs(self, cond, z):
        return self._tensor(cond), self._tensor(z)


class XlaEngine(TorchEngine):
    """The training engine on torch_xla's device(s), SPMD data parallel (see the module docstring).

    Constructing it switches torch_xla to SPMD mode (``torch_xla.runtime.use_spmd()``);
    do that at the start of the program, before XLA tensors exist (torch_xla
    replicates tensors created earlier, with a warning).  ``devices``: ``None`` - all
    local devices (the SPMD mesh always spans every device the runtime has; set
    ``CPU_NUM_DEVICES`` / use ``TPU_VISIBLE_CHIPS`` etc. to change that).  The
    batch size must be divisible by the number of devices.
    """

    name = "xla"
    compiles = True  # the first step traces and compiles the XLA graphs

    def __init__(self, config, *, devices=None, backend=None, deterministic: bool = True):
        if backend is None:
            raise TypeError("XlaEngine(): argument 'backend' is required (the 'xla' backend); build engines with "
                            "backends.load('xla').engine(config)")
        xla = backend._xla()
        xla.enable_spmd()
        self._bx = xla
        if devices is not None:
            import torch_xla.runtime as xr

            n = xr.global_runtime_device_count()
            wanted = devices if isinstance(devices, (list, tuple)) else [devices]
            if len(wanted) != n:
                raise ValueError(
                    f"XlaEngine(): argument 'devices' must be None (all {n} local devices): the SPMD mesh spans every "
                    f"device of the runtime; got {devices!r}"
                )
            devices = None
        super().__init__(config, devices=devices, backend=backend, deterministic=deterministic)
        self._mesh = xla.batch_mesh()

    @property
    def devices(self) -> list[str]:
        import torch_xla.runtime as xr

        kind = self._bx.device_type()
        return [f"{kind}:{i}" for i in range(xr.global_runtime_device_count())]

    @property
    def mesh(self):
        """The one-axis ``("batch",)`` SPMD mesh over all devices."""
        return self._mesh

    def _shard(self, a, batch_axis: int):
        """``a`` on the XLA device with ``batch_axis`` split over the mesh.

        Inputs stacked per D update (batch axis 1) become a list of per-update tensors
        sharded on axis 0: torch_xla 2.9 cannot shard tensors of rank > 5 (the real
        clips are 6-D), and the step indexes the updates anyway.
        """
        import torch_xla.distributed.spmd as xs

        if batch_axis == 1:
            return [self._shard(a[i], 0) for i in range(a.shape[0])]
        n = len(self.devices)
        if a.shape[batch_axis] % n:
            raise ValueError(f"step(): the batch size {a.shape[batch_axis]} must be divisible by the number of "
                             f"devices ({n}) to shard argument 'inputs'")
        t = self._tensor(a)
        spec = [None] * t.ndim
        spec[batch_axis] = self._bx.BATCH_AXIS
        xs.mark_sharding(t, self._mesh, tuple(spec))
        return t

    def place_inputs(self, inputs: dict) -> dict:
        """The step's inputs as XLA tensors with the batch axis sharded over the mesh (what ``step`` uses).

        ``real``, ``z_d`` and each ``rand_d`` entry become lists of ``d_steps`` tensors.
        """
        return self._inputs_to(inputs, self._shard)

    _place_inputs = place_inputs

    def _predict_inputs(self, cond, z):
        return self._shard(cond, 0), self._shard(z, 0)

    def _sync(self, ts, extra=()) -> None:
        tensors = [t for t in tree_leaves({k: v for k, v in ts.items() if isinstance(v, dict)})
                   if isinstance(t, torch.Tensor)]
        tensors += list(extra)
        self._bx.materialize(tensors)

    def _numpy(self, tree):
        pending = [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]
        if len(pending) > 1:
            self._bx.materialize(pending)
        return super()._numpy(tree)
