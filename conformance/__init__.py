"""The conformance suite: op records, targets, golden vectors and the runner.

``conformance.run("jax")`` (or ``trivd conform --backend jax``) checks every op
record on a target against the slow NumPy reference; ``--port MODULE`` checks a
third-party implementation.  See :mod:`conformance.records` for the record
conventions (inputs, tolerances, outputs, gradient helpers) and
:mod:`conformance.runner` for statuses and skip files.
"""

from .records import DTYPES, RECORDS, OpRecord, Tol, get_record, select
from .runner import Result, format_table, main, quick_subset, run
from .targets import Target, get_target, port_target

__all__ = [
    "DTYPES",
    "RECORDS",
    "OpRecord",
    "Tol",
    "get_record",
    "select",
    "Result",
    "run",
    "format_table",
    "quick_subset",
    "main",
    "Target",
    "get_target",
    "port_target",
]
