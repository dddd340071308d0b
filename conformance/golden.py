"""Golden vectors: reference inputs and outputs frozen in ``conformance/golden/<record>.npz``.

One file per op record, every case, float64, inputs from the record's fixed
seeds (:func:`conformance.records.rng_for`).  A file is self-describing so that
ports in other languages can use it too:

* ``__spec__``: a JSON string ``{"record", "module", "function", "cases": {case:
  {"args": [...], "kwargs": {...}, "outputs": [...]}}}`` in which every array is
  written ``{"$array": "<key>"}``, tuples ``{"$tuple": [...]}``, dicts
  ``{"$dict": {...}}``; ints, floats, strings, ``None`` and lists are plain JSON;
* ``a0``, ``a1``, ...: the arrays the spec refers to.

The file name is the record name with every run of characters outside
``[A-Za-z0-9_.-]`` replaced by ``-`` (``cell_step[tsru_p]`` -> ``cell_step-tsru_p.npz``).
Files are written with ``np.savez_compressed``; comparisons are on the arrays
(the zip container carries timestamps), see :func:`compare`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .records import OpRecord

__all__ = ["GOLDEN_DIR", "golden_path", "encode", "write", "load", "ulp_distance",
           "TERM_ULPS", "compare"]

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def golden_path(record: OpRecord | str, directory: str | Path = GOLDEN_DIR) -> Path:
    name = record if isinstance(record, str) else record.name
    return Path(directory) / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") + ".npz")


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"$array": key}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        return {"$dict": {str(k): _encode(v, arrays) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a golden file")


def _decode(value: Any, arrays) -> Any:
    if isinstance(value, dict):
        if "$array" in value:
            return np.asarray(arrays[value["$array"]])
        if "$tuple" in value:
            return tuple(_decode(v, arrays) for v in value["$tuple"])
        if "$dict" in value:
            return {k: _decode(v, arrays) for k, v in value["$dict"].items()}
        raise ValueError(f"unknown golden spec node {value!r}")
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def encode(record: OpRecord) -> dict[str, np.ndarray]:
    """The arrays of ``record``'s golden file (float64 inputs and reference outputs, every case)."""
    from .runner import reference_outputs

    arrays: dict[str, np.ndarray] = {}
    spec: dict[str, Any] = {"record": record.name, "module": record.module, "function": record.function, "cases": {}}
    for case in record.cases:
        args, kwargs = record.inputs(case, "float64")
        outputs = list(reference_outputs(record, case, "float64"))
        spec["cases"][case] = {
            "args": _encode(list(args), arrays),
            "kwargs": _encode(dict(kwargs), arrays)["$dict"],
            "outputs": _encode(outputs, arrays),
        }
    arrays["__spec__"] = np.asarray(json.dumps(spec, sort_keys=True))
    return arrays


def write(record: OpRecord, directory: str | Path = GOLDEN_DIR) -> Path:
    path = golden_path(record, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **encode(record))
    return path


def load(path: str | Path) -> dict[str, Any]:
    """``{"record", "module", "function", "cases": {case: (args tuple, kwargs dict, outputs tuple)}}``."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    spec = json.loads(str(arrays.pop("__spec__")))
    cases = {}
    for case, c in spec["cases"].items():
        cases[case] = (
            tuple(_decode(c["args"], arrays)),
            {k: _decode(v, arrays) for k, v in c["kwargs"].items()},
            tuple(_decode(c["outputs"], arrays)),
        )
    return {"record": spec["record"], "module": spec["module"], "function": spec["function"], "cases": cases}


def _ordered(x: np.ndarray) -> np.ndarray:
    """float64 -> int64 that is monotonic in the float value (adjacent floats differ by 1)."""
    i = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    return np.where(i < 0, np.iinfo(np.int64).min - i, i)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Largest distance in units in the last place between two float64 arrays of one shape."""
    if a.size == 0:
        return 0
    with np.errstate(over="ignore"):
        d = np.abs(_ordered(a) - _ordered(b))
    if (d < 0).any() or (np.signbit(a) != np.signbit(b))[(a != 0) | (b != 0)].any():
        return int(np.iinfo(np.int64).max)
    return int(d.max())


#: Units of roundoff allowed per term of the longest sum (see :func:`compare`).
TERM_ULPS = 4


def _case_keys(node, keys: list[str]) -> list[str]:
    if isinstance(node, dict):
        if "$array" in node:
            keys.append(node["$array"])
        for v in node.values():
            _case_keys(v, keys)
    elif isinstance(node, list):
        for v in node:
            _case_keys(v, keys)
    return keys


def compare(stored: str | Path, fresh: str | Path, *, exact: bool, term_ulps: int = TERM_ULPS) -> list[str]:
    """Differences between a stored golden file and a freshly computed one; an empty list when they agree.

    The spec and the inputs must match bit for bit: they come from seeded NumPy
    generators and are pure data.  Outputs must match bit for bit when ``exact``
    (records whose float64 tolerance is zero: padding, cropping, frame selection,
    ReLU, max pooling and nearest upsampling move or select values and never round).
    Otherwise an output computed on another CPU may differ in its last bits: BLAS
    kernels (AVX-512 vs AVX2) sum in different orders and NumPy's SIMD ``exp``/``tanh``
    differ by an ulp or two.  A sum of ``n`` terms computed in two orders differs by at
    most about ``n * eps * sum|terms|`` (Higham, Accuracy and Stability of Numerical
    Algorithms, section 4.2), so an output array of case ``c`` passes when

        max |a - b| <= term_ulps * n_c * eps * max(1, max |a|)

    with ``eps`` = 2**-52, ``n_c`` the size of the largest input array of the case
    (no output element of these ops sums more terms than that), and ``max |a|``
    standing in for ``sum|terms|`` (the ops' inputs are O(1)).  A real change of the
    reference moves values by many orders of magnitude more (1e-9 relative is caught
    up to ``n_c`` of ~10^5).
    """
    diffs = []
    eps = float(np.finfo(np.float64).eps)
    with np.load(stored, allow_pickle=False) as za, np.load(fresh, allow_pickle=False) as zb:
        if sorted(za.files) != sorted(zb.files):
            return [f"array names differ: {sorted(za.files)} vs {sorted(zb.files)}"]
        if str(za["__spec__"]) != str(zb["__spec__"]):
            return ["spec differs (the record's cases, arguments or output layout changed)"]
        spec = json.loads(str(za["__spec__"]))
        bound: dict[str, tuple[str, float]] = {}
        for case, c in spec["cases"].items():
            inputs = _case_keys([c["args"], c["kwargs"]], [])
            n = max([za[k].size for k in inputs if za[k].dtype.kind == "f"] or [1])
            for k in _case_keys(c["outputs"], []):
                scale = max(1.0, float(np.max(np.abs(za[k])))) if za[k].size else 1.0
                bound[k] = (case, 0.0 if exact else term_ulps * n * eps * scale)
        for k in sorted(za.files):
            a, b = za[k], zb[k]
            if a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes():
                continue
            what = f"{'output' if k in bound else 'input'} array {k}"
            if a.dtype != b.dtype or a.shape != b.shape:
                diffs.append(f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
            elif k not in bound or a.dtype != np.float64:
                diffs.append(f"{what}: bytes differ")
            else:
                case, tol = bound[k]
                err = float(np.max(np.abs(a - b))) if np.isfinite(a).all() and np.isfinite(b).all() else float("inf")
                if not (np.array_equal(np.isfinite(a), np.isfinite(b)) and err <= tol):
                    diffs.append(f"{what} (case {case}): max abs difference {err:.3e} > {tol:.3e} "
                                 f"({'exact record' if exact else 'derived bound'}; {ulp_distance(a, b)} ulps)")
    return diffs
