"""CPU threads of the frameworks: a default that does not oversubscribe the machine, applied in one place.

PyTorch starts one OpenMP thread per core.  Beside another busy process those
threads spin waiting for each other: on a 2-core machine with another job holding
about one core, a tiny torch training step took 21 s with the default 2 threads and
0.4 s with 1 (docs/benchmarks.md).  ``trivd train/eval/predict/bench`` therefore take
``--threads N``; the default is the number of CPUs this process may use minus the
ones already busy (the 1-minute load average, rounded), at least 1.

:func:`apply_threads` sets ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and
``OPENBLAS_NUM_THREADS`` (read by libraries loaded afterwards: torch, a BLAS) and
calls ``torch.set_num_threads`` when torch is already imported.  XLA:CPU (JAX) sizes
its own thread pool and is left alone (its threads block instead of spinning).  The
thread count can change the summation order of parallel reductions, so a resumed
run reuses the count it recorded in config.json unless ``--threads`` is given.
"""

from __future__ import annotations

import os
import sys

__all__ = ["available_cpus", "default_threads", "apply_threads", "describe_threads"]

_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def _load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def default_threads(cpus: int | None = None, load: float | None = None) -> int:
    """``max(1, cpus - round(load))``: the CPUs not already busy (all of them when the load is unknown)."""
    cpus = available_cpus() if cpus is None else int(cpus)
    load = _load() if load is None else float(load)
    if load is None:
        return cpus
    return max(1, min(cpus, cpus - int(round(load))))


def describe_threads(n: int, source: str = "default") -> str:
    """One line about the thread count; ``source``: ``"default"``, ``"option"`` (--threads) or ``"run"``."""
    load = _load()
    why = {"option": "--threads", "run": "the count the run recorded"}.get(source) or (
        f"chosen: {available_cpus()} CPUs, 1-min load {load:.1f}" if load is not None else
        f"chosen: {available_cpus()} CPUs")
    return f"{n} CPU thread{'s' if n != 1 else ''} for torch/BLAS ({why}; --threads N to change)"


def apply_threads(n: int) -> None:
    """Use ``n`` threads in the frameworks (see the module docstring)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"apply_threads(): argument 'n' must be a positive int, got {n!r}")
    for var in _VARS:
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
