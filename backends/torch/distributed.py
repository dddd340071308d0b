"""A torch job of several processes: ``torch.distributed`` (launched by ``torchrun``), the global batch in eager mode.

``torchrun --nproc-per-node P -m trivd train --backend torch ...`` starts ``P`` processes
and gives each ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`initialize` joins their process group (gloo on CPU, NCCL on CUDA, where each process
takes the GPU ``LOCAL_RANK``).  Eager torch runs one program per process, so the engine
makes the batch-coupled parts of the model span the job itself:

* :class:`TorchReplicas` is the core's :class:`trivd_core.replicas.Replicas`: ``sum`` (an
  all-reduce, whose gradient is the all-reduce of the gradients) serves batch norm's
  moments over the global batch, ``gather`` (an all-gather, whose gradient is the
  all-reduce of the gradient, sliced back to this process's rows) Eq. 15's mixed head;
* :func:`mean_over_job` averages the gradients (and the reported metrics) over the
  processes: each process's loss is the mean over its equal slice, so the job's loss is
  the mean of theirs, and its gradient the mean of the per-process gradients, each of
  which already holds the other processes' contributions through the collectives above.

A process that dies closes its connections and the others' next collective fails; one
that hangs is given up after ``timeout`` seconds (the process group's timeout).  Either
way the failed collective raises :class:`trivd_core.train.engine.ProcessLost` (:func:`_collective`); any
other error of a step surfaces as itself.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from trivd_core.replicas import Replicas
from trivd_core.train.engine import ProcessLost

__all__ = ["initialize", "is_initialized", "launched", "TorchReplicas", "mean_over_job", "agree", "barrier",
           "side_barrier", "DEFAULT_TIMEOUT", "DEFAULT_SIDE_TIMEOUT", "lost"]

#: seconds a collective waits for the other processes before the job is given up
DEFAULT_TIMEOUT = 300
#: seconds the other processes wait for process 0's side work (checkpoints, samples, validation)
DEFAULT_SIDE_TIMEOUT = 3600
_SIDE_GROUP = None  # a gloo group with the side-work timeout, made by initialize


def launched() -> bool:
    """Whether this process was started as one of several by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the joined process group, ``(0, 1)`` without one."""
    if not is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def initialize(*, timeout: int = DEFAULT_TIMEOUT, side_timeout: int = DEFAULT_SIDE_TIMEOUT) -> tuple[int, int]:
    """Join the process group described by torchrun's environment; returns ``(rank, world_size)``.

    gloo on CPU; NCCL when CUDA is available (each process on the GPU ``LOCAL_RANK``).
    ``timeout`` (seconds) bounds every collective, the wait for the others at start included;
    ``side_timeout`` bounds :func:`side_barrier`, where the others wait for process 0's side work.
    """
    global _SIDE_GROUP
    for name, v in (("timeout", timeout), ("side_timeout", side_timeout)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"initialize(): argument '{name}' must be a positive int of seconds, got {v!r}")
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing and not is_initialized():
        raise ValueError(f"a torch job needs torchrun's environment variables ({', '.join(missing)} missing): "
                         "launch with torchrun --nproc-per-node N -m trivd train --backend torch ...")
    if not is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout))
    if _SIDE_GROUP is None and world()[1] > 1:  # every process makes it, at the same point
        _SIDE_GROUP = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=side_timeout))
    return world()


def lost(exc: BaseException, what: str) -> ProcessLost:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ProcessLost(f"{what}: another process of the job stopped answering ({detail})")


def _collective(what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, a ``torch.distributed`` collective; its failure is :class:`ProcessLost`.

    The one place a failure means "the job lost a process": the call itself went to the other
    processes and did not come back (a closed connection, the group's timeout).  Everything else that
    fails in a step (out of memory, an autograd or shape error) is not caught here and surfaces as
    itself.  (An exception raised in an autograd ``backward`` keeps its type, so a failed collective of
    the backward pass arrives as ``ProcessLost`` too.)
    """
    try:
        return fn(*args, **kwargs)
    except RuntimeError as exc:
        if isinstance(exc, ProcessLost):
            raise
        raise lost(exc, what) from exc


class _AllReduceSum(torch.autograd.Function):
    """``y = sum_p x_p``; the gradient of every ``x_p`` is ``sum_q dL_q/dy`` (the job's loss is the sum over q)."""

    @staticmethod
    def forward(ctx, x):
        y = x.detach().clone().contiguous()
        _collective("in batch norm's all-reduce", dist.all_reduce, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        g = grad.detach().clone().contiguous()
        _collective("in the gradient of batch norm's all-reduce", dist.all_reduce, g)
        return g


class _AllGather(torch.autograd.Function):
    """``y = [x_0 ; ... ; x_{P-1}]`` along axis 0; the gradient of ``x_p`` is its rows of ``sum_q dL_q/dy``."""

    @staticmethod
    def forward(ctx, x):
        rank, size = world()
        ctx.rank, ctx.rows = rank, x.shape[0]
        x = x.detach().contiguous()
        parts = [torch.empty_like(x) for _ in range(size)]
        _collective("in the mixed head's all-gather", dist.all_gather, parts, x)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad):
        g = grad.detach().clone().contiguous()
        _collective("in the gradient of the mixed head's all-gather", dist.all_reduce, g)
        return g[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


class TorchReplicas(Replicas):
    """The processes of the joined group as the core's :class:`~trivd_core.replicas.Replicas`."""

    def __init__(self):
        self.index, self.count = world()

    def sum(self, x):
        return _AllReduceSum.apply(x)

    def gather(self, x):
        return _AllGather.apply(x)


def mean_over_job(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each tensor averaged over the processes (one all-reduce of them all, flattened); new tensors."""
    if not tensors:
        return []
    _, size = world()
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    _collective("averaging over the job", dist.all_reduce, flat)
    flat = flat / size
    out, at = [], 0
    for t in tensors:
        out.append(flat[at:at + t.numel()].reshape(t.shape))
        at += t.numel()
    return out


def agree(code: int, device=None) -> int:
    """The largest ``code`` of all processes (each process calls it at the same point)."""
    t = torch.tensor([int(code)], dtype=torch.int64, device=device)
    _collective("agreeing on the next step", dist.all_reduce, t, op=dist.ReduceOp.MAX)
    return int(t.item())


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name``."""
    _collective(f"at the barrier {name!r}", dist.barrier)


def side_barrier(name: str) -> None:
    """:func:`barrier` with the side-work timeout: the others wait here while process 0 writes or validates."""
    group = _SIDE_GROUP
    _collective(f"waiting for process 0's side work at {name!r}", dist.barrier, group=group)
