"""Training, written once for every backend: the loop, checkpoints, run artifacts and the engine contract.

Backends supply an *engine* (``backend.engine(config, devices=None, steps=None,
saved_run=None)``), a subclass of :class:`~trivd_core.train.engine.Engine`.  Everything
here is NumPy at the boundary and imports no backend, no ``conformance`` and no
``reference``; the pre-training gate is :mod:`conformance.gate` (passed in as ``gate=``).
"""

import importlib
import warnings

from .artifacts import plot_losses, read_metrics, sample_grid, write_gif, write_png
from .checkpoint import (
    CheckpointError,
    flatten_tree,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    unflatten_tree,
)
from .engine import EXPORT_KEYS, Engine, ProcessLost
from .lock import RunLock, RunLocked
from .loop import EXIT_CODES, GateRefused, InputSampler, TrainOptions, TrainResult, loop_rng, train

__all__ = [
    "train", "TrainOptions", "TrainResult", "GateRefused", "EXIT_CODES", "InputSampler", "loop_rng",
    "save_checkpoint", "load_checkpoint", "latest_checkpoint", "list_checkpoints", "flatten_tree", "unflatten_tree",
    "CheckpointError", "RunLock", "RunLocked",
    "write_gif", "write_png", "sample_grid", "plot_losses", "read_metrics",
    "Engine", "EXPORT_KEYS", "ProcessLost",
]

_MOVED_TO_CONFORMANCE = ("build_gate", "gate_records", "model_forward_check", "MODEL_TOL")


def __getattr__(name):
    if name in _MOVED_TO_CONFORMANCE:
        warnings.warn(f"trivd_core.train.{name} moved to conformance.gate.{name} (the gate is conformance logic); "
                      "the old name goes in trivd 0.3", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module("conformance.gate"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
