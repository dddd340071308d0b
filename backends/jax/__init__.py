"""The JAX backend: ``jax.numpy`` arrays, ``lax`` fast paths, ``jax.value_and_grad``, ``jax.jit``.

Configuration (read when the backend is activated or first used):

``TRIVD_JAX_X64`` (default ``1``)
    ``activate()`` enables JAX's float64 (``jax.config.update("jax_enable_x64",
    True)``) unless this is ``0``.  JAX is float32-only otherwise, and the
    conformance suite compares in float64 where a backend allows it.  The switch is
    process-wide: with it on, ``jnp.arange(3)`` is int64 and ``jnp.array(1.0)`` is
    float64.  trivd's own code never relies on default dtypes (every array comes
    from ``asarray`` with an explicit dtype), so only user code can notice.
    ``supports_float64`` reports the state after activation.
``TRIVD_JAX_MATMUL_PRECISION`` (default ``highest``)
    ``activate()`` sets ``jax_default_matmul_precision`` to this value.  On TPU the
    default precision of float32 matmuls is one bfloat16 pass, and on recent GPUs
    TF32; the generic array-API code (convolution as matmuls, warps as tensordots)
    would then be far less accurate than float32.  Set ``default`` to trade
    accuracy for speed.  The conv fast paths pass ``precision=HIGHEST`` themselves.
``TRIVD_JAX_DEVICE`` (default: JAX's first device)
    Device for ``asarray``: ``cpu``, ``gpu``, ``tpu``, optionally with an index
    (``gpu:1``).  ``JaxBackend(device=...)`` or ``BACKEND.on(...)`` does the same
    per object.

``JAX_PLATFORMS=cpu`` keeps JAX off accelerators (used by the tests).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from array_api_compat import is_jax_namespace

from trivd_core import ops

from ..common import env_flag, tree_map
from . import _fast
from .sharding import batch_mesh, shard_batch, sharded_batch_stats

__all__ = ["JaxBackend", "BACKEND", "batch_mesh", "shard_batch", "sharded_batch_stats"]

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def _resolve_device(spec):
    if spec is None or isinstance(spec, jax.Device):
        return spec if spec is not None else jax.devices()[0]
    if not isinstance(spec, str):
        raise TypeError(
            f"JaxBackend(): argument 'device' must be a jax.Device, a string like 'cpu' or 'gpu:1', or None; got {spec!r}"
        )
    platform, _, index = spec.partition(":")
    try:
        devices = jax.devices(platform)
    except RuntimeError as exc:
        raise ValueError(
            f"JaxBackend(): argument 'device' is {spec!r}, but JAX has no {platform!r} devices here ({exc})"
        ) from exc
    i = int(index) if index else 0
    if not 0 <= i < len(devices):
        raise ValueError(
            f"JaxBackend(): argument 'device' is {spec!r}, but there are only {len(devices)} {platform!r} devices"
        )
    return devices[i]


class JaxBackend:
    """trivd on JAX.  ``device``: a ``jax.Device``, ``"cpu"``/``"gpu:1"``/..., or None (``$TRIVD_JAX_DEVICE`` or JAX's default)."""

    name = "jax"

    def __init__(self, device=None):
        self._device_spec = device

    def __repr__(self) -> str:
        return f"JaxBackend(device={self._device_spec!r})"

    # -- configuration -------------------------------------------------------

    @property
    def supports_float64(self) -> bool:
        return bool(jax.config.jax_enable_x64)

    @property
    def device(self):
        spec = self._device_spec if self._device_spec is not None else os.environ.get("TRIVD_JAX_DEVICE") or None
        return _resolve_device(spec)

    def on(self, device) -> JaxBackend:
        """The same backend placing arrays on ``device`` (checked now: a bad spec raises ``ValueError``)."""
        other = JaxBackend(device)
        other.device  # noqa: B018 - resolve now so that a bad spec fails here
        return other

    def namespace(self):
        return jnp

    def activate(self) -> None:
        """Enable float64 and highest matmul precision (see module docs) and register the ``lax`` fast paths.

        Idempotent: a fast path is registered again only when it is not already
        the one ``trivd_core.ops`` would use for ``jax.numpy``.
        """
        if env_flag("TRIVD_JAX_X64", "1") and not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)
        precision = os.environ.get("TRIVD_JAX_MATMUL_PRECISION", "highest")
        if jax.config.jax_default_matmul_precision != precision:
            jax.config.update("jax_default_matmul_precision", precision)
        current = ops.fast_paths(jnp)
        for op, fn in _fast.FAST_PATHS.items():
            if current.get(op) is not fn:
                ops.register_fast_path(op, is_jax_namespace, fn)

    def deactivate(self) -> None:
        """Remove this backend's fast paths (the generic code runs on JAX arrays again)."""
        for op, fn in _fast.FAST_PATHS.items():
            ops.unregister_fast_path(op, fn)

    # -- arrays --------------------------------------------------------------

    def asarray(self, a, dtype=None):
        """NumPy array (or nested dict/list/tuple of them) -> JAX array(s) on ``self.device`` (always a copy).

        ``dtype``: None (keep; float64 becomes float32 when float64 is disabled,
        as JAX itself does), ``"float32"`` or ``"float64"`` (converts floating
        leaves only, so integer indices in the same tree keep their type).
        """
        want = None
        if dtype is not None:
            try:
                want = np.dtype(dtype).name
            except TypeError:
                want = None
            if want not in _FLOAT_DTYPES:
                raise ValueError(
                    f"JaxBackend.asarray(): argument 'dtype' must be None, 'float32' or 'float64', got {dtype!r}"
                )
            if want == "float64" and not jax.config.jax_enable_x64:
                raise ValueError(
                    "JaxBackend.asarray(): argument 'dtype' is 'float64' but JAX float64 is disabled; "
                    "activate the backend with TRIVD_JAX_X64=1 (the default) or call "
                    "jax.config.update('jax_enable_x64', True)"
                )
        device = self.device

        def convert(v):
            arr = np.array(v)  # a copy: JAX may alias host memory on CPU
            if np.issubdtype(arr.dtype, np.floating):
                if want is not None:
                    arr = arr.astype(want)
                elif arr.dtype == np.float64 and not jax.config.jax_enable_x64:
                    arr = arr.astype(np.float32)
            return jax.device_put(arr, device)

        return tree_map(convert, a)

    def to_numpy(self, x):
        return tree_map(lambda v: np.asarray(jax.device_get(v)), x)

    # -- transformations -----------------------------------------------------

    def value_and_grad(self, f, argnums=0):
        """``jax.value_and_grad(f, argnums)``: arguments may be arrays or nested dicts of arrays (params)."""
        return jax.value_and_grad(f, argnums=argnums)

    def jit(self, f, **kwargs):
        """``jax.jit(f, **kwargs)`` (e.g. ``static_argnames=...``)."""
        return jax.jit(f, **kwargs)

    def sharded_batch_stats(self, x, axes=(0, 1, 2)):
        """See :func:`backends.jax.sharding.sharded_batch_stats`."""
        return sharded_batch_stats(x, axes)

    trains = True

    def join_job(self, coordinator=None, num_processes=None, process_id=None, *, timeout=None,
                 side_timeout=None) -> tuple[int, int]:
        """Join a job of several processes (:func:`backends.jax.distributed.initialize`; before any device is
        used); returns ``(process_index, process_count)``.  All three ``None``: JAX detects the cluster."""
        from .distributed import DEFAULT_SIDE_TIMEOUT, DEFAULT_TIMEOUT, initialize

        return initialize(coordinator, num_processes, process_id, timeout=timeout or DEFAULT_TIMEOUT,
                          side_timeout=side_timeout or DEFAULT_SIDE_TIMEOUT)

    def engine(self, config, *, devices=None, steps=None, saved_run=None, train_opt=None):
        """The training engine (:class:`backends.jax.engine.JaxEngine`) for ``config`` on ``devices`` (None: all local).

        The backend's compile policy: JAX's persistent compilation cache is turned on
        (:func:`~backends.jax.engine.enable_compilation_cache`), and the step's XLA:CPU
        optimisation is ``train_opt`` if given, else :func:`~backends.jax.engine.train_opt_for`
        of the run's ``steps``, the config's width and, on resume, its recorded ``saved_run`` (the run's
        config.json).
        """
        self.activate()
        from .engine import JaxEngine, enable_compilation_cache, train_opt_for

        enable_compilation_cache()
        from trivd_core.configs import as_config

        config = as_config("engine", config)
        return JaxEngine(config, devices=devices, train_opt=train_opt or train_opt_for(steps, saved_run, config))


BACKEND = JaxBackend()
