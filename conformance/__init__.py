"""The conformance suite: op records, targets, golden vectors and the runner.

``conformance.run("jax")`` (or ``trivd conform --backend jax``) checks every op
record on a target against the slow NumPy reference; ``--port MODULE`` checks a
third-party implementation.  See ``conformance/README.md``,
:mod:`conformance.records` (inputs, tolerances, outputs, gradient helpers) and
:mod:`conformance.runner` (statuses, skip files, command line).

Names are imported lazily so that ``python -m conformance.runner`` and
``python -m conformance.make_golden`` run their modules exactly once.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DTYPES": "records",
    "RECORDS": "records",
    "OpRecord": "records",
    "Tol": "records",
    "get_record": "records",
    "select": "records",
    "Result": "runner",
    "run": "runner",
    "format_table": "runner",
    "quick_subset": "runner",
    "main": "runner",
    "Target": "targets",
    "get_target": "targets",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
