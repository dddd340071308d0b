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

__all__ = ["GOLDEN_DIR", "golden_path", "encode", "write", "load", "bit_identical"]

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


def bit_identical(path_a: str | Path, path_b: str | Path) -> list[str]:
    """Differences between two golden files (spec text, array names, dtypes, shapes, bytes); empty when identical."""
    diffs = []
    with np.load(path_a, allow_pickle=False) as za, np.load(path_b, allow_pickle=False) as zb:
        if sorted(za.files) != sorted(zb.files):
            return [f"array names differ: {sorted(za.files)} vs {sorted(zb.files)}"]
        for k in sorted(za.files):
            a, b = za[k], zb[k]
            if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                what = "spec" if k == "__spec__" else f"array {k}"
                diffs.append(f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}, bytes differ")
    return diffs
