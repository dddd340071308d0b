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
(the zip container carries timestamps), see :func:`bit_identical`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .records import OpRecord

__all__ = ["GOLDEN_DIR", "golden_path", "encode", "write", "load", "bit_identical", "ulp_distance"]

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


def _output_keys(spec: dict) -> set[str]:
    keys: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if "$array" in node:
                keys.add(node["$array"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for case in spec["cases"].values():
        walk(case["outputs"])
    return keys


def bit_identical(path_a: str | Path, path_b: str | Path, output_ulps: int = 0) -> list[str]:
    """Differences between two golden files; an empty list when they agree.

    The spec and every input array must match bit for bit (dtype, shape, bytes).
    Output arrays must too, unless ``output_ulps > 0``, which allows outputs to
    differ by that many units in the last place: the reference calls BLAS
    (``@``) and SIMD transcendental functions (``np.exp``), whose last bits may
    depend on the CPU and the NumPy build, while a real drift of the reference
    changes values far more.  The golden test reads ``TRIVD_GOLDEN_ULPS``
    (default 0: bit-identical).
    """
    diffs = []
    with np.load(path_a, allow_pickle=False) as za, np.load(path_b, allow_pickle=False) as zb:
        if sorted(za.files) != sorted(zb.files):
            return [f"array names differ: {sorted(za.files)} vs {sorted(zb.files)}"]
        spec = json.loads(str(za["__spec__"]))
        outputs = _output_keys(spec) if str(za["__spec__"]) == str(zb["__spec__"]) else set()
        for k in sorted(za.files):
            a, b = za[k], zb[k]
            if a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes():
                continue
            what = "spec" if k == "__spec__" else f"{'output' if k in outputs else 'input'} array {k}"
            if a.dtype != b.dtype or a.shape != b.shape:
                diffs.append(f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
                continue
            if k in outputs and a.dtype == np.float64:
                ulps = ulp_distance(a, b)
                if ulps <= output_ulps:
                    continue
                diffs.append(
                    f"{what}: differs by up to {ulps} ulp(s), max abs {float(np.max(np.abs(a - b))):.3e}"
                    + (" (a few ulps: a platform BLAS/SIMD difference? see TRIVD_GOLDEN_ULPS)" if ulps <= 64 else "")
                )
            else:
                diffs.append(f"{what}: bytes differ")
    return diffs
