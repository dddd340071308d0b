"""A JAX job of several processes: ``jax.distributed``, with the collectives the training loop needs.

Every process of the job runs the same ``trivd train`` command.  :func:`initialize`
joins the job (``jax.distributed.initialize``: the coordinator's ``HOST:PORT``, the number
of processes and this one's index; all three omitted where JAX detects them itself - TPU
VMs, SLURM, or its ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``
environment variables).  Afterwards ``jax.devices()`` lists the devices of every process
and the engine's mesh spans them all: one program, partitioned by XLA over the job, so
that batch norm, the losses and Eq. 15's mixed head see the global batch.

On CPU the cross-process collectives are gloo's (TCP).  A process that dies closes its
connections: the others' next collective fails within about a second, and the engine
raises :class:`trivd_core.train.engine.ProcessLost`.  A process that hangs without
dying is found by the coordination service's heartbeat after ``timeout`` seconds, which
then terminates the others (JAX aborts them with a message naming the missing task).
"""

from __future__ import annotations

import re

import jax
import numpy as np

from trivd_core.train.engine import ProcessLost

__all__ = ["initialize", "agree", "barrier", "side_barrier", "is_initialized", "peer_failed", "DEFAULT_TIMEOUT",
           "DEFAULT_SIDE_TIMEOUT"]

#: seconds to wait for every process to join, and the heartbeat timeout of a process that stops answering
DEFAULT_TIMEOUT = 300
#: seconds the other processes wait for process 0's side work (checkpoints, samples, validation)
DEFAULT_SIDE_TIMEOUT = 3600
_SIDE_TIMEOUT = [DEFAULT_SIDE_TIMEOUT]  # set by initialize


def is_initialized() -> bool:
    """Whether this process has joined a ``jax.distributed`` job."""
    return bool(jax.distributed.is_initialized())


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None, *,
               timeout: int = DEFAULT_TIMEOUT, side_timeout: int = DEFAULT_SIDE_TIMEOUT) -> tuple[int, int]:
    """Join the job (before anything else touches a JAX device); returns ``(process_index, process_count)``.

    ``coordinator`` is ``HOST:PORT`` of process 0's coordination service; ``num_processes``
    and ``process_id`` go with it.  With all three ``None`` JAX detects the cluster.
    ``timeout`` (seconds) bounds the wait for all processes to join and the heartbeat of a
    process that stops answering; ``side_timeout`` the wait for process 0's side work
    (:func:`side_barrier`).
    """
    for name, v in (("timeout", timeout), ("side_timeout", side_timeout)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"initialize(): argument '{name}' must be a positive int of seconds, got {v!r}")
    _SIDE_TIMEOUT[0] = side_timeout
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError("initialize(): 'coordinator', 'num_processes' and 'process_id' are given together "
                         f"(or none of them, to let JAX detect the cluster); got coordinator={coordinator!r}, "
                         f"num_processes={num_processes!r}, process_id={process_id!r}")
    if all(given):
        if not isinstance(coordinator, str) or coordinator.rpartition(":")[2] == "" or \
                not coordinator.rpartition(":")[2].isdigit():
            raise ValueError(f"initialize(): argument 'coordinator' must be HOST:PORT, got {coordinator!r}")
        if not 0 <= process_id < num_processes:
            raise ValueError(f"initialize(): argument 'process_id' must lie in [0, num_processes={num_processes}), "
                             f"got {process_id}")
    if not is_initialized():
        # gloo collectives between CPU processes (the accelerators bring their own); set before the backend starts
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=timeout,
                                   heartbeat_timeout_seconds=timeout)
    return jax.process_index(), jax.process_count()


#: How the runtime reports a collective whose peer is gone, and nothing else: the collective library's own
#: "<library> <operation> failed" (gloo on CPU, NCCL on GPUs; seen: "Gloo AllGather failed: ... Connection
#: closed by peer", "Gloo all-reduce failed: ... Read error ... Connection reset by peer"), or the coordination
#: service naming the processes that stopped sending heartbeats.  Status words alone ("UNAVAILABLE",
#: "DEADLINE_EXCEEDED", "INTERNAL") do not count: a device fault or a timeout of one device says them too.
_COLLECTIVE_FAILED = re.compile(r"\b(Gloo|NCCL|nccl)\b[^\n]*?\bfailed\b|tasks are unhealthy|stopped sending heartbeats")


def peer_failed(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a program with collectives, is a collective that failed because a peer is gone.

    Only an error of the runtime can be (``JaxRuntimeError``, or the ``ValueError`` some dispatch
    paths raise); an error of tracing, a shape error or a Python error never is.  Among runtime
    errors the runtime's report of a failed collective decides (``_COLLECTIVE_FAILED``): XLA gives
    no other signal at that moment.  The coordination service's view of the job cannot stand in
    for it: ``get_live_nodes`` is a rendezvous that still counts a SIGKILLed peer until its heartbeat
    times out (``experiments/jax_liveness.py``: no answer within 10 s in 3 of 3 runs, heartbeat 30 s,
    while the collective itself failed within 0.05 s).  An out-of-memory error, a device fault or a
    timeout of the device, with every peer alive, surfaces as itself.
    """
    return isinstance(exc, (jax.errors.JaxRuntimeError, ValueError)) and \
        _COLLECTIVE_FAILED.search(str(exc)) is not None


def _lost(exc: BaseException, what: str) -> ProcessLost:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ProcessLost(f"{what}: another process of the job stopped answering ({detail})")


def agree(code: int) -> int:
    """The largest ``code`` of all processes (each process calls it at the same point of the loop)."""
    from jax.experimental import multihost_utils

    try:
        codes = multihost_utils.process_allgather(np.asarray([int(code)], np.int32))
    except Exception as exc:  # only the collective runs here: any failure of it is the job's
        raise _lost(exc, "agreeing on the next step") from exc
    return int(np.max(codes))


def side_barrier(name: str) -> None:
    """Wait, up to the side-work timeout, until every process reaches ``name``: the coordination service's barrier.

    While process 0 writes a checkpoint or validates, the others wait here rather than in a device
    collective; the service's barrier takes its own deadline (``initialize``'s ``side_timeout``).
    """
    from jax._src import distributed as jax_distributed

    client = jax_distributed.global_state.client
    if client is None:  # not a jax.distributed job (e.g. devices of one process): the device barrier
        return barrier(name)
    try:
        client.wait_at_barrier(name, int(_SIDE_TIMEOUT[0] * 1000))
    except Exception as exc:  # only the barrier runs here: any failure of it is the job's
        raise _lost(exc, f"waiting for process 0's side work at {name!r}") from exc


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name``."""
    from jax.experimental import multihost_utils

    try:
        multihost_utils.sync_global_devices(name)
    except Exception as exc:  # only the collective runs here: any failure of it is the job's
        raise _lost(exc, f"at the barrier {name!r}") from exc
