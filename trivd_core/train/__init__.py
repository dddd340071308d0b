"""Training, written once for every backend: the loop, checkpoints, run artifacts and the gate.

Backends supply an *engine* (``backend.engine(config, devices=None)``; see
:mod:`trivd_core.train.loop` for the interface).  Everything here is NumPy at the
boundary and imports no backend, no ``conformance`` and no ``reference``.
"""

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
from .gate import MODEL_TOL, build_gate, gate_records, model_forward_check
from .lock import RunLock, RunLocked
from .loop import EXIT_CODES, GateRefused, InputSampler, TrainOptions, TrainResult, loop_rng, train

__all__ = [
    "train", "TrainOptions", "TrainResult", "GateRefused", "EXIT_CODES", "InputSampler", "loop_rng",
    "save_checkpoint", "load_checkpoint", "latest_checkpoint", "list_checkpoints", "flatten_tree", "unflatten_tree",
    "CheckpointError", "RunLock", "RunLocked",
    "write_gif", "write_png", "sample_grid", "plot_losses", "read_metrics",
    "build_gate", "gate_records", "model_forward_check", "MODEL_TOL",
]
