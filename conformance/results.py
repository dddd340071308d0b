"""Results of the conformance suite: one :class:`Result` per (op record, dtype), how they are compared and concluded.

Shared by the op runner (:mod:`conformance.runner`), the gradient checks
(:mod:`conformance.gradients`) and the model checks (:mod:`conformance.model`), which
all import from here (and not from each other).  Skip files and their entries are read
here too; their format is described in :mod:`conformance.runner`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .records import DTYPES, RECORDS, OpRecord, Tol, name_matches, select
from .targets import Target, _lookup

__all__ = [
    "Result", "Comparison", "SkipEntry", "STATUSES", "SKIPS_DIR", "compare", "reference_outputs", "parse_skips",
    "load_skips", "match_skip", "as_records", "conclude", "to_float64",
]

STATUSES = ("pass", "fail", "missing", "skip", "xfail")
SKIPS_DIR = Path(__file__).resolve().parent / "skips"


@dataclass
class Result:
    """Outcome of one op record in one dtype on one target."""

    target: str
    op: str
    dtype: str
    status: str
    max_abs: float = math.nan
    max_rel: float = math.nan
    tolerance: Tol | None = None
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass
class Comparison:
    ok: bool
    max_abs: float
    max_rel: float
    message: str = ""


# ---------------------------------------------------------------------------
# skip files


@dataclass(frozen=True)
class SkipEntry:
    pattern: str
    dtype: str | None
    reason: str
    xfail: bool = False
    source: str = ""


def parse_skips(text: str, source: str = "<string>") -> list[SkipEntry]:
    """Parse a skip file (format in the module docstring); raises ``ValueError`` naming the line."""
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        xfail = parts[0] == "xfail"
        if xfail:
            parts = parts[1].split(None, 1) if len(parts) > 1 else []
        if len(parts) < 2 or not parts[1].strip():
            raise ValueError(f"{source}:{lineno}: expected '[xfail] <op>[@<dtype>]  <reason>', got {line!r}")
        pattern, reason = parts[0], parts[1].strip()
        dtype = None
        if "@" in pattern:
            pattern, dtype = pattern.rsplit("@", 1)
            if dtype not in DTYPES:
                raise ValueError(f"{source}:{lineno}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        entries.append(SkipEntry(pattern, dtype, reason, xfail, f"{source}:{lineno}"))
    return entries


def load_skips(target: Target | str, directory: str | Path | None = None) -> list[SkipEntry]:
    """Entries of ``<directory>/<target.skip_key>.txt`` (default directory :data:`SKIPS_DIR`; none if no file)."""
    key = target if isinstance(target, str) else target.skip_key
    path = Path(SKIPS_DIR if directory is None else directory) / f"{key}.txt"
    if not path.exists():
        return []
    return parse_skips(path.read_text(encoding="utf-8"), str(path))


def match_skip(entries: Iterable[SkipEntry], record: OpRecord | str, dtype: str) -> SkipEntry | None:
    name = record if isinstance(record, str) else record.name
    for e in entries:
        if (e.dtype is None or e.dtype == dtype) and name_matches(e.pattern, name):
            return e
    return None


# ---------------------------------------------------------------------------
# reference and comparison

_REF_CACHE: dict[tuple, tuple[OpRecord, tuple[np.ndarray, ...]]] = {}


def to_float64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a


def reference_outputs(record: OpRecord, case: str, dtype: str) -> tuple[np.ndarray, ...]:
    """The reference's outputs, in float64, on ``record.inputs(case, dtype)`` (cached per process)."""
    key = (id(record), record.name, case, dtype)
    hit = _REF_CACHE.get(key)
    if hit is not None and hit[0] is record:
        return hit[1]
    fn = _lookup("reference", record.module, record.function)
    if fn is None:
        raise LookupError(f"reference has no function {record.function!r} (module reference.{record.module})")
    args, kwargs = record.inputs(case, dtype)
    args, kwargs = record.map_arrays(args, kwargs, to_float64)
    outs = tuple(np.asarray(o) for o in record.outputs(fn(*args, **kwargs)))
    _REF_CACHE[key] = (record, outs)
    return outs


def compare(actual: Sequence, expected: Sequence[np.ndarray], tol: Tol, dtype: str) -> Comparison:
    """Compare NumPy outputs with the float64 reference under ``tol`` (see the module docstring).

    ``max_rel`` is ``max |a - e| / (|e| + atol/rtol)``, so an output passes exactly
    when ``max_rel <= rtol`` (with ``rtol == 0``: ``|a - e| / |e|``).
    """
    if len(actual) != len(expected):
        return Comparison(False, math.nan, math.nan, f"returned {len(actual)} outputs, expected {len(expected)}")
    worst_abs, worst_rel = 0.0, 0.0
    problems = []
    for i, (a, e) in enumerate(zip(actual, expected)):
        label = f"output {i}" if len(expected) > 1 else "output"
        if not isinstance(a, np.ndarray) or a.dtype == object:
            problems.append(f"{label}: expected an array, got {type(a).__name__}")
            continue
        if a.shape != e.shape:
            problems.append(f"{label}: shape {a.shape}, expected {e.shape}")
            continue
        if np.issubdtype(e.dtype, np.floating):
            if a.dtype != np.dtype(dtype):
                problems.append(f"{label}: dtype {a.dtype}, expected {dtype}")
                continue
        elif a.dtype.kind != e.dtype.kind:
            problems.append(f"{label}: dtype {a.dtype}, expected a {e.dtype.kind!r}-kind dtype like {e.dtype}")
            continue
        a64 = a.astype(np.float64)
        e64 = e.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            err = np.abs(a64 - e64)
            err = np.where(np.isnan(a64) & np.isnan(e64), 0.0, err)
            err = np.where(np.isnan(err), np.inf, err)
            if tol.rtol > 0:
                rel = err / (np.abs(e64) + tol.atol / tol.rtol)
            else:
                rel = np.where(err == 0, 0.0, err / np.abs(e64))
            bad = ~(err <= tol.atol + tol.rtol * np.abs(e64))
        if err.size:
            worst_abs = max(worst_abs, float(np.max(err)))
            worst_rel = max(worst_rel, float(np.max(rel)))
        if bad.any():
            idx = np.unravel_index(int(np.argmax(np.where(bad, rel, -1.0))), err.shape) if err.ndim else ()
            problems.append(
                f"{label}: {int(bad.sum())}/{bad.size} elements off, worst at {tuple(int(j) for j in idx)}: "
                f"got {a64[idx]!r}, expected {e64[idx]!r}"
            )
    return Comparison(not problems, worst_abs, worst_rel, "; ".join(problems))


# ---------------------------------------------------------------------------
# running


def as_records(records: Sequence[OpRecord | str] | str | None) -> list[OpRecord]:
    if records is None:
        return list(RECORDS)
    if isinstance(records, str):
        return select(records)
    out = []
    for r in records:
        out.extend(select([r]) if isinstance(r, str) else [r])
    return out


def conclude(res: Result, abs_errs: Sequence[float], rel_errs: Sequence[float], problems: Sequence[str],
              entry: SkipEntry | None) -> Result:
    """Fill ``res``'s largest errors and status: ``fail`` on any problem; an xfail ``entry`` turns a
    failure into ``xfail`` and a pass into a ``fail`` that asks to remove the stale entry."""
    res.max_abs = max(abs_errs) if abs_errs else math.nan
    res.max_rel = max(rel_errs) if rel_errs else math.nan
    if problems:
        res.status, res.message = "fail", " | ".join(problems)
    if entry is not None:  # xfail entry
        if res.status == "fail":
            res.status, res.message = "xfail", f"{entry.reason} ({res.message})"
        else:
            res.status = "fail"
            res.message = f"listed as xfail ({entry.source}: {entry.reason}) but passes; remove the entry"
    return res
