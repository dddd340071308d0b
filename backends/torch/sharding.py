"""torch_xla specifics of the ``xla`` backend: device, precision, SPMD batch statistics.

Importing this module imports torch_xla; :mod:`backends.torch` imports it only
when the ``xla`` backend is used.

Multi-device batch statistics
-----------------------------
The paper computes batch-norm statistics over the whole batch although the
batch is split over many TPU cores.  With torch_xla's SPMD mode the program is
written for one (virtual) device; ``xs.mark_sharding`` splits the batch axis
over a one-axis mesh of all devices and XLA's partitioner inserts the
cross-device all-reduce for the mean.  SPMD mode must be switched on with
:func:`enable_spmd` (``torch_xla.runtime.use_spmd()``) before XLA tensors are
created.  ``PJRT_DEVICE=CPU CPU_NUM_DEVICES=4`` gives four host devices to test
this on.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch_xla
import torch_xla.backends
import torch_xla.distributed.spmd as xs
import torch_xla.runtime as xr

from trivd_core._validate import normalise_axes

__all__ = [
    "xla_device",
    "device_type",
    "materialize",
    "set_matmul_precision",
    "enable_spmd",
    "batch_mesh",
    "shard_batch",
    "local_shards",
    "sharded_batch_stats",
]

BATCH_AXIS = "batch"


def xla_device() -> torch.device:
    """The XLA device (the virtual SPMD device once SPMD mode is on)."""
    return torch_xla.device()


def device_type() -> str:
    """``"CPU"``, ``"TPU"``, ``"CUDA"``, ... (torch_xla's PJRT device type)."""
    return xr.device_type()


def materialize(tensors: list[torch.Tensor]) -> None:
    """Compute the pending XLA tensors ``tensors`` together, in one graph execution (blocks until done)."""
    torch_xla._XLAC._xla_sync_multi(list(tensors), devices=[], wait=True)


def set_matmul_precision(precision: str) -> None:
    """Set torch_xla's float32 matmul/conv precision (``default``, ``high``, ``highest``) unless already set."""
    allowed = ("default", "high", "highest")
    if precision not in allowed:
        raise ValueError(
            f"set_matmul_precision(): argument 'precision' must be one of {', '.join(allowed)}; got {precision!r}"
        )
    if torch_xla.backends.get_mat_mul_precision() != precision:
        # torch_xla logs "setting mat mul precision multiple times is not recommended"
        # on every call, the first one included; this is the first (guarded above).
        log = logging.getLogger("torch_xla.backends")
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            torch_xla.backends.set_mat_mul_precision(precision)
        finally:
            log.setLevel(level)


def enable_spmd() -> None:
    """Switch torch_xla to SPMD mode (idempotent).  Call it before creating XLA tensors."""
    if not xr.is_spmd():
        xr.use_spmd()


def _require_spmd(fn: str) -> None:
    if not xr.is_spmd():
        raise RuntimeError(
            f"{fn}(): torch_xla is not in SPMD mode; call backends.torch.sharding.enable_spmd() "
            "(torch_xla.runtime.use_spmd()) at the start of the program, before creating XLA tensors"
        )


def batch_mesh() -> xs.Mesh:
    """A one-axis mesh named ``"batch"`` over all devices (SPMD mode only)."""
    _require_spmd("batch_mesh")
    n = xr.global_runtime_device_count()
    return xs.Mesh(np.arange(n), (n,), (BATCH_AXIS,))


def _is_sharded(t: torch.Tensor) -> bool:
    spec = torch_xla._XLAC._get_xla_sharding_spec(t)
    return bool(spec) and spec != "{replicated}"


def shard_batch(x, mesh: xs.Mesh | None = None) -> torch.Tensor:
    """Put ``x`` (NumPy array or tensor, batch first) on the XLA device with axis 0 split over ``mesh``."""
    _require_spmd("shard_batch")
    mesh = batch_mesh() if mesh is None else mesh
    n = int(np.prod(mesh.mesh_shape))
    t = x if isinstance(x, torch.Tensor) else torch.tensor(np.asarray(x))
    if t.ndim < 1 or t.shape[0] % n:
        raise ValueError(
            f"shard_batch(): argument 'x' must have a batch axis 0 divisible by the number of devices ({n}), "
            f"got shape {tuple(t.shape)}"
        )
    t = t.to(xla_device())
    xs.mark_sharding(t, mesh, (BATCH_AXIS,) + (None,) * (t.ndim - 1))
    return t


def local_shards(t: torch.Tensor) -> list:
    """The per-device pieces of a sharded XLA tensor (``XLAShard``: ``data``, ``indices``, ``shard_device``)."""
    return xs.wrap_if_sharded(t).local_shards


def sharded_batch_stats(x, axes=(0, 1, 2)):
    """Mean and (biased) variance of ``x`` over ``axes`` with the batch axis 0 sharded over all devices.

    ``x``: a NumPy array or tensor; unless it is already a sharded XLA tensor it
    is first placed with :func:`shard_batch`.  Returns ``(mean, var)`` as XLA
    tensors shaped like ``x`` with ``axes`` removed (two passes: mean, then the
    mean squared deviation, as batch norm uses).  Needs SPMD mode
    (:func:`enable_spmd`).
    """
    _require_spmd("sharded_batch_stats")
    ndim = x.ndim if isinstance(x, torch.Tensor) else np.ndim(x)
    axes = normalise_axes("sharded_batch_stats", axes, ndim)
    if not (isinstance(x, torch.Tensor) and x.device.type == "xla" and _is_sharded(x)):
        x = shard_batch(x)
    mean = x.mean(dim=axes, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dim=axes)
    return mean.squeeze(axes), var
