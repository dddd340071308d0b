"""Multi-device batch statistics for JAX (the cross-replica statistics of the paper's batch norm).

The paper trains with the batch split over many accelerator cores and batch norm
statistics computed over the *whole* batch.  In JAX that is a ``jit`` of a plain
mean over an array whose batch axis is sharded with a ``NamedSharding``: XLA's
SPMD partitioner inserts the cross-device all-reduce.  On a CPU-only machine,
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX is
imported) gives four virtual devices to test this with.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from trivd_core._validate import normalise_axes

__all__ = ["batch_mesh", "shard_batch", "sharded_batch_stats"]

BATCH_AXIS = "batch"


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"batch"`` over ``devices`` (default: all local devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("batch_mesh(): argument 'devices' must name at least one device, got an empty sequence")
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def shard_batch(x, mesh: Mesh | None = None):
    """Place ``x`` (NumPy or JAX, batch first) on ``mesh`` with its axis 0 split over the mesh's devices."""
    mesh = batch_mesh() if mesh is None else mesh
    n = mesh.devices.size
    shape = tuple(np.shape(x))
    if len(shape) < 1 or shape[0] % n:
        raise ValueError(
            f"shard_batch(): argument 'x' must have a batch axis 0 divisible by the number of devices ({n}), "
            f"got shape {shape}"
        )
    spec = PartitionSpec(BATCH_AXIS, *([None] * (len(shape) - 1)))
    return jax.device_put(x, NamedSharding(mesh, spec))


def _stats(x, axes):
    # Two passes (mean, then mean squared deviation): the one-pass E[x^2] - E[x]^2
    # loses all precision when |mean| >> std.  Biased variance (ddof=0), as batch norm uses.
    mean = jnp.mean(x, axis=axes)
    centred = x - jnp.expand_dims(mean, axes)
    return mean, jnp.mean(centred * centred, axis=axes)


_stats_jit = jax.jit(_stats, static_argnums=1)


def sharded_batch_stats(x, axes=(0, 1, 2), mesh: Mesh | None = None):
    """Mean and (biased) variance of ``x`` over ``axes``, with the batch axis 0 sharded over all local devices.

    ``x`` is a NumPy or JAX array; unless it already carries a sharding over
    more than one device it is first placed with :func:`shard_batch`.  Returns
    ``(mean, var)`` replicated on every device of the mesh, shaped like ``x``
    with ``axes`` removed.  For ``(B, H, W, C)`` frames the default
    ``axes=(0, 1, 2)`` gives the per-channel statistics of batch norm.
    """
    shape = tuple(np.shape(x))
    axes = normalise_axes("sharded_batch_stats", axes, len(shape))
    if not (isinstance(x, jax.Array) and len(x.sharding.device_set) > 1):
        x = shard_batch(x, mesh)
    return _stats_jit(x, axes)
