"""The PyTorch backends: ``torch`` (CPU / CUDA) and ``xla`` (an XLA device through torch_xla).

Both hand trivd_core torch tensors (array namespace ``array_api_compat.torch``)
and register the same ``torch.nn.functional`` fast paths; they differ in the
device tensors are placed on and in what ``activate`` configures.

Configuration (read when the backend is activated or first used):

``TRIVD_TORCH_DEVICE`` (default ``cuda`` when available, else ``cpu``)
    Device of the ``torch`` backend (``cpu``, ``cuda``, ``cuda:1``, ...).
    ``TorchBackend(device=...)`` or ``BACKEND.on(...)`` does the same per object.
``TRIVD_TORCH_ALLOW_TF32`` (default ``0``)
    ``activate()`` sets the float32 precision of CUDA matmuls and cuDNN
    convolutions to IEEE float32, i.e. turns TF32 off (PyTorch >= 2.9 enables TF32
    for cuDNN convolutions by default; TF32 keeps 10 mantissa bits, so float32
    results would differ from the generic code and the reference by ~1e-3
    relative).  ``1`` leaves PyTorch's settings alone.  This is process-wide.
``TRIVD_TORCH_COMPILE`` (default ``0``)
    ``jit(f)`` returns ``torch.compile(f)`` when ``1``; eager ``f`` otherwise.
``TRIVD_XLA_MATMUL_PRECISION`` (default ``highest``)
    The ``xla`` backend's ``activate()`` calls
    ``torch_xla.backends.set_mat_mul_precision`` with it (TPU's default is one
    bfloat16 pass for float32 matmuls and convolutions).
``PJRT_DEVICE``
    torch_xla's device type (``CPU``, ``TPU``, ``CUDA``); set ``PJRT_DEVICE=CPU``
    to run the ``xla`` backend on the host CPU.

The ``xla`` backend imports torch_xla only when it is activated or used, so
``import backends.torch`` works where torch_xla is not installed; activating it
there raises :class:`backends.BackendUnavailable`.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import torch
from array_api_compat import torch as torch_xp

from trivd_core import ops

from ..common import env_flag, tree_leaves, tree_map
from . import _fast

__all__ = ["TorchBackend", "TorchXlaBackend", "BACKEND", "XLA_BACKEND"]

_FLOAT_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _check_dtype(fn: str, dtype):
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        key = str(dtype).removeprefix("torch.")
    else:
        try:
            key = np.dtype(dtype).name
        except TypeError:
            key = None
    if key not in _FLOAT_DTYPES:
        raise ValueError(f"{fn}(): argument 'dtype' must be None, 'float32' or 'float64', got {dtype!r}")
    return _FLOAT_DTYPES[key]


class TorchBackend:
    """trivd on PyTorch.  ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device`` or None (see module docs)."""

    name = "torch"

    def __init__(self, device=None, *, compile: bool | None = None):
        self._device_spec = device
        self._compile = compile

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self._device_spec!r})"

    # -- configuration -------------------------------------------------------

    @property
    def device(self) -> torch.device:
        spec = self._device_spec
        if spec is None:
            spec = os.environ.get("TRIVD_TORCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            return torch.device(spec)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"TorchBackend(): argument 'device' must be a torch device such as 'cpu' or 'cuda:0', got {spec!r}"
            ) from exc

    @property
    def supports_float64(self) -> bool:
        return self.device.type != "mps"

    def on(self, device) -> TorchBackend:
        """The same backend placing tensors on ``device`` (checked now: a bad spec raises ``ValueError``)."""
        other = type(self)(device, compile=self._compile)
        other.device  # noqa: B018 - resolve now so that a bad spec fails here
        return other

    def namespace(self):
        return torch_xp

    def activate(self) -> None:
        """Turn TF32 off (unless ``TRIVD_TORCH_ALLOW_TF32=1``) and register the fast paths.  Idempotent."""
        _fast.activate()

    def deactivate(self) -> None:
        """Remove the torch fast paths (shared by ``torch`` and ``xla``): generic code runs on tensors again."""
        for op, fn in _fast.FAST_PATHS.items():
            ops.unregister_fast_path(op, fn)

    # -- arrays --------------------------------------------------------------

    def asarray(self, a, dtype=None):
        """NumPy array (or nested dict/list/tuple of them) -> tensor(s) on ``self.device`` (NumPy data is copied).

        ``dtype``: None (keep), ``"float32"`` or ``"float64"`` (converts floating
        leaves only, so integer indices in the same tree keep their type).
        """
        want = _check_dtype(f"{type(self).__name__}.asarray", dtype)
        device = self.device

        def convert(v):
            t = v.detach() if isinstance(v, torch.Tensor) else torch.tensor(np.asarray(v))
            if want is not None and t.is_floating_point():
                t = t.to(want)
            return t.to(device)

        return tree_map(convert, a)

    def to_numpy(self, x):
        return tree_map(lambda v: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v), x)

    # -- transformations -----------------------------------------------------

    def value_and_grad(self, f, argnums=0):
        """Like ``jax.value_and_grad``: ``g(*args) -> (value, grads)`` through torch autograd.

        Arguments named by ``argnums`` may be tensors or nested dicts/lists of
        floating tensors (params); gradients come back in the same structure.
        ``value`` is detached.  Inputs are not modified (gradients are taken
        with respect to detached copies that share storage).
        """
        single = isinstance(argnums, int)
        nums = (argnums,) if single else tuple(argnums)
        for i in nums:
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(
                    f"value_and_grad(): argument 'argnums' must be an int or a tuple of ints, got {argnums!r}"
                )

        def leaf(v, where):
            if not isinstance(v, torch.Tensor) or not v.is_floating_point():
                kind = v.dtype if isinstance(v, torch.Tensor) else type(v).__name__
                raise TypeError(
                    f"value_and_grad(): positional argument {where} must hold floating tensors only "
                    f"(it is differentiated), got {kind}"
                )
            return v.detach().requires_grad_(True)

        def g(*args):
            args = list(args)
            for i in nums:
                if not -len(args) <= i < len(args):
                    raise ValueError(f"value_and_grad(): argnums entry {i} is out of range for {len(args)} arguments")
                args[i] = tree_map(lambda v, i=i: leaf(v, i), args[i])
            with torch.enable_grad():
                value = f(*args)
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise TypeError(f"value_and_grad(): 'f' must return a scalar tensor, got {shape}")
            flat = [t for i in nums for t in tree_leaves(args[i])]
            if value.requires_grad:
                try:
                    grads = torch.autograd.grad(value, flat, allow_unused=True)
                except RuntimeError as exc:
                    if "device_ready_queues_" not in str(exc):
                        raise
                    raise RuntimeError(
                        "value_and_grad(): torch's autograd engine was started (by an earlier backward pass) "
                        "before torch_xla's runtime, so it cannot run on XLA tensors in this process; "
                        "call backends.load('xla') (or torch_xla.device()) before the first backward pass"
                    ) from exc
            else:
                grads = [None] * len(flat)
            grads = iter([torch.zeros_like(t) if gr is None else gr for t, gr in zip(flat, grads)])
            trees = tuple(tree_map(lambda _t: next(grads), args[i]) for i in nums)
            return value.detach(), (trees[0] if single else trees)

        return g

    def jit(self, f, **kwargs):
        """``torch.compile(f, **kwargs)`` if enabled (``compile=True`` or ``TRIVD_TORCH_COMPILE=1``), else ``f``."""
        use = self._compile if self._compile is not None else env_flag("TRIVD_TORCH_COMPILE", "0")
        return torch.compile(f, **kwargs) if use else f

    # -- training ------------------------------------------------------------

    def load_i3d_torchscript(self, path, **options):
        """The FVD extractor of a TorchScript ``i3d_torchscript.pt`` (:func:`backends.torch.i3d_script.load_i3d_torchscript`)."""
        from .i3d_script import load_i3d_torchscript

        self.activate()
        return load_i3d_torchscript(path, **options)

    trains = True

    def join_job(self, coordinator=None, num_processes=None, process_id=None, *, timeout=None,
                 side_timeout=None) -> tuple[int, int]:
        """Join the process group torchrun started (:func:`backends.torch.distributed.initialize`); returns
        ``(rank, world_size)``.  torch takes the job from torchrun's environment: the three JAX-style
        arguments must be ``None``."""
        if coordinator is not None or num_processes is not None or process_id is not None:
            raise ValueError("the torch backend takes its job from torchrun's environment (RANK, WORLD_SIZE, "
                             "MASTER_ADDR, MASTER_PORT): launch with torchrun --nproc-per-node N -m trivd train "
                             "--backend torch ..., without --coordinator/--num-processes/--process-id")
        from .distributed import DEFAULT_SIDE_TIMEOUT, DEFAULT_TIMEOUT, initialize

        return initialize(timeout=timeout or DEFAULT_TIMEOUT, side_timeout=side_timeout or DEFAULT_SIDE_TIMEOUT)

    def engine(self, config, *, devices=None, steps=None, saved_run=None, **options):
        """The training engine on this backend's device (:class:`backends.torch.engine.TorchEngine`).

        ``steps`` and ``saved_run`` (the run's length and a resumed run's config.json) are part of the
        engine contract; eager torch has no compile policy to choose from them.
        """
        from .engine import TorchEngine

        return TorchEngine(config, devices=devices, backend=self, **options)


class TorchXlaBackend(TorchBackend):
    """trivd on an XLA device through torch_xla (TPU, GPU, or the host CPU with ``PJRT_DEVICE=CPU``).

    ``jit`` is the identity: torch_xla already records operations lazily and
    compiles and runs the recorded graph when a result is needed (``to_numpy``)
    or at ``torch_xla.sync()``; compiled graphs are cached by shape.
    """

    name = "xla"

    def __init__(self, device=None):
        super().__init__(device, compile=False)

    def join_job(self, coordinator=None, num_processes=None, process_id=None, *, timeout=None):
        """Not wired: the torch_xla engine is SPMD over the devices of one process (docs/training.md says how a
        TPU pod would run it and why it is untested here)."""
        raise ValueError("the xla backend trains in one process (SPMD over all its devices); a job of several "
                         "processes is --backend jax or --backend torch (docs/training.md, 'Several processes')")

    def on(self, device) -> TorchXlaBackend:
        """The same backend on another XLA device (``"xla:1"``)."""
        other = TorchXlaBackend(device)
        other.device  # noqa: B018 - resolve now so that a bad spec fails here
        return other

    def _xla(self):
        try:
            return importlib.import_module("backends.torch.sharding")
        except ImportError as exc:
            from backends import BackendUnavailable
            from trivd_core._install import install_hint

            raise BackendUnavailable(
                f"backend 'xla' needs torch_xla, which is not importable here ({exc}); "
                f"install it in its own environment with `{install_hint('xla')}` (torch==2.9.0 and "
                "torch-xla==2.9.0, ~7 GB)"
            ) from exc

    @property
    def device(self) -> torch.device:
        xla = self._xla()
        if self._device_spec is None:
            return xla.xla_device()
        try:
            device = torch.device(self._device_spec)
        except (RuntimeError, TypeError):
            device = None
        if device is None or device.type != "xla":
            raise ValueError(
                f"TorchXlaBackend(): argument 'device' must be an XLA device such as 'xla:0', got {self._device_spec!r}"
            )
        return device

    @property
    def supports_float64(self) -> bool:
        return self._xla().device_type() != "TPU"

    def activate(self) -> None:
        """Start torch_xla's runtime, set float32 matmul/conv precision and register the fast paths.  Idempotent.

        The precision is ``$TRIVD_XLA_MATMUL_PRECISION`` (default ``highest``).
        The runtime is started here because torch's autograd engine only serves
        devices whose runtime was up at its first backward pass.  For SPMD, call
        :func:`backends.torch.sharding.enable_spmd` before this.
        """
        xla = self._xla()
        xla.set_matmul_precision(os.environ.get("TRIVD_XLA_MATMUL_PRECISION", "highest"))
        self.device  # noqa: B018 - starts the runtime
        _fast.register()

    def jit(self, f, **kwargs):
        """Identity: torch_xla traces lazily and compiles each distinct graph once (see the class docs)."""
        return f

    def to_numpy(self, x):
        """Like the torch backend's, but all XLA tensors of the tree are computed in one graph execution.

        Converting leaf by leaf would compile and run one XLA graph per leaf
        (e.g. once per gradient of a ``value_and_grad``).
        """
        pending = [t for t in tree_leaves(x) if isinstance(t, torch.Tensor) and t.device.type == "xla"]
        if len(pending) > 1:
            self._xla().materialize(pending)
        return super().to_numpy(x)

    def engine(self, config, *, devices=None, steps=None, saved_run=None, **options):
        """The SPMD training engine over all XLA devices (:class:`backends.torch.engine.XlaEngine`).

        It switches torch_xla to SPMD mode: call it before creating XLA tensors.
        """
        from .engine import XlaEngine

        return XlaEngine(config, devices=devices, backend=self, **options)

    def sharded_batch_stats(self, x, axes=(0, 1, 2)):
        """See :func:`backends.torch.sharding.sharded_batch_stats` (needs SPMD mode)."""
        return self._xla().sharded_batch_stats(x, axes)


BACKEND = TorchBackend()
XLA_BACKEND = TorchXlaBackend()
