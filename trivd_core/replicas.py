"""Reductions over the global batch of a job of several processes (the paper's cross-replica batch norm).

Notation: a job of ``P`` processes (replicas) ``p = 0 .. P-1``; process ``p`` holds the
rows ``[p * B_p, (p + 1) * B_p)`` of the global batch of ``B = P * B_p`` samples.  The
model's batch statistics are those of the global batch:

    mean = (1/N) sum_p sum_{i in p} x_i,      var = (1/N) sum_p sum_{i in p} (x_i - mean)^2,

with ``N = P * N_p`` the elements of each group over all processes (appendix E.2: batch
norm statistics over all cores).

Where one program is partitioned over every device of the job (JAX with a multi-process
mesh, torch_xla in SPMD mode) the global batch *is* one array and XLA's partitioner
inserts these reductions: nothing here is used.  An eager framework runs one program
per process (torch with ``torch.distributed``); its engine enters :func:`across` for a
training step and hands the core a :class:`Replicas`, and the two places of the model
that couple the samples of a batch ask for it:

* :func:`trivd_core.layers.batch_stats` (and batch norm without given statistics): the
  per-process sums of both passes are summed over the processes;
* :func:`trivd_core.losses.mixed_projection` (Eq. 15): the score ``o[b, b', t]`` pairs
  every local sample ``b`` with every sample ``b'`` of the global batch, so the projection
  sums ``s_{b'}`` of all processes are gathered; process ``p`` holds the rows
  ``(B_p, B, T)`` of the ``(B, B, T)`` matrix.

Everything else in a step is per sample, or a mean over equal slices (the hinge losses,
the reported means), which the engine averages over the processes along with the
gradients.  ``sum`` and ``gather`` must be differentiable: the gradient of the job's loss
flows back to the process that holds each sample.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Replicas", "across", "current"]


class Replicas(abc.ABC):
    """The processes of a job, as the core sees them: their number, this one's index and two collectives."""

    #: ``P``, the number of processes of the job
    count: int = 1
    #: ``p``, this process's index
    index: int = 0

    @abc.abstractmethod
    def sum(self, x):
        """``sum_p x_p``: the element-wise sum of ``x`` over the processes (same shape; differentiable)."""

    @abc.abstractmethod
    def gather(self, x):
        """``[x_0 ; x_1 ; ... ; x_{P-1}]``: ``x`` of every process concatenated along axis 0 (differentiable)."""


_CURRENT: ContextVar[Replicas | None] = ContextVar("trivd_replicas", default=None)


def current() -> Replicas | None:
    """The :class:`Replicas` of the step being computed, or ``None`` (one process, or a partitioned program)."""
    r = _CURRENT.get()
    return r if r is not None and r.count > 1 else None


@contextmanager
def across(replicas: Replicas | None) -> Iterator[None]:
    """Compute the batch-coupled parts of the model over the global batch of ``replicas`` inside the block."""
    if replicas is not None and not isinstance(replicas, Replicas):
        raise TypeError(f"across(): argument 'replicas' must be a trivd_core.replicas.Replicas or None, "
                        f"got {type(replicas).__name__}")
    token = _CURRENT.set(replicas)
    try:
        yield
    finally:
        _CURRENT.reset(token)
