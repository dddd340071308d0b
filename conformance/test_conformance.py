"""The shared conformance suite: every op record x target x dtype against the NumPy reference.

Targets: ``$TRIVD_CONFORMANCE_BACKENDS`` (comma-separated; default
``numpy,array_api_strict``; any name ``backends.load`` knows, a backend whose
framework is not installed is skipped with the reason) and, if set,
``$TRIVD_CONFORMANCE_PORT`` (comma-separated module paths of third-party ports).
Each target's ``conformance/skips/<target>.txt`` is honoured.

Also here: record sanity, coverage of the reference's public functions, and the
golden vectors (regenerated on this CPU within a bound derived per op, exact for data movement; the core matches them).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conformance import golden
from conformance.records import DTYPES, RECORDS, check_record, cotangents, differentiable_view, scalarize
from conformance.runner import SKIPS_DIR, compare, load_skips, parse_skips, quick_subset, reference_outputs, run_one
from conformance.targets import CoreTarget, target_or_unavailable

#: Reference modules whose public functions must each have an op record.
MODULES = ("ops", "warping", "cells", "layers", "losses", "video")
#: Public callables of those modules that are deliberately not op records, with the reason.
EXEMPT: dict[str, str] = {}


def _target_specs() -> list[str]:
    specs = [s.strip() for s in os.environ.get("TRIVD_CONFORMANCE_BACKENDS", "numpy,array_api_strict").split(",")]
    ports = [s.strip() for s in os.environ.get("TRIVD_CONFORMANCE_PORT", "").split(",")]
    return [s for s in specs if s] + [f"port:{p}" for p in ports if p]


@functools.cache
def _skips(spec: str):
    return tuple(load_skips(target_or_unavailable(spec)))


TARGETS = _target_specs()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
@pytest.mark.parametrize("spec", TARGETS)
def test_matches_reference(spec, record, dtype):
    target = target_or_unavailable(spec)
    if isinstance(target, Exception):
        pytest.skip(f"target {spec!r} unavailable: {target}")
    res = run_one(target, record, dtype, _skips(spec))
    if res.status == "skip":
        pytest.skip(res.message)
    if res.status == "xfail":
        pytest.xfail(res.message)
    if res.status == "missing":
        assert not target.missing_is_failure, res.message
        pytest.skip(res.message)
    assert res.status == "pass", f"{record.name} {dtype} on {target.name}: {res.message}"


# ---------------------------------------------------------------------------
# the records themselves


@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
def test_record_is_well_formed(record):
    check_record(record)


def test_record_names_are_unique():
    names = [r.name for r in RECORDS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_every_public_reference_function_has_a_record():
    covered = {(r.module, r.function) for r in RECORDS}
    missing = []
    for mod in MODULES:
        m = importlib.import_module(f"reference.{mod}")
        for name in m.__all__:
            if callable(getattr(m, name)) and (mod, name) not in covered and f"{mod}.{name}" not in EXEMPT:
                missing.append(f"reference.{mod}.{name}")
    assert not missing, f"public reference functions without an op record: {missing}"


def test_every_cell_kind_has_a_record():
    from reference.cells import KINDS

    assert {f"cell_step[{k}]" for k in KINDS} <= {r.name for r in RECORDS}


@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
def test_record_inputs_are_not_degenerate(record):
    """Some case must give a non-constant, finite reference output, or the value check could not fail."""
    informative = False
    for case in record.cases:
        for out in reference_outputs(record, case, "float64"):
            assert np.all(np.isfinite(out)), f"{record.name}[{case}]: non-finite reference output"
            if out.size > 1 and np.ptp(out) > 0 or out.size == 1 and out.item() != 0:
                informative = True
    assert informative, f"{record.name}: every case gives a constant/zero output"


def test_float32_inputs_are_the_rounded_float64_inputs():
    for record in RECORDS:
        case = record.cases[0]
        a64, k64 = record.inputs(case, "float64")
        a32, k32 = record.inputs(case, "float32")
        _, l64, _ = differentiable_view(record, a64, k64)
        _, l32, _ = differentiable_view(record, a32, k32)
        for x64, x32 in zip(l64, l32):
            assert np.array_equal(x64.astype(np.float32), x32), record.name


def test_quick_subset_names_existing_records_and_spans_the_families():
    names = quick_subset()
    known = {r.name for r in RECORDS}
    assert set(names) <= known
    assert "pixelwise_warp" in names and "d_hinge_loss" in names
    assert sum(n.startswith("cell_step[") for n in names) == 1


def test_gradient_helpers_rebuild_and_scalarize():
    record = next(r for r in RECORDS if r.name == "cell_step[tsru_p]")
    case = record.cases[0]
    args, kwargs = record.inputs(case)
    paths, leaves, rebuild = differentiable_view(record, args, kwargs)
    # params (8 leaves of the factorized hyper-network + c, u: 12), h and x
    assert len(paths) == len(leaves) == 14
    assert paths[-2][0] == 2 and paths[-1][0] == 3
    a2, k2 = rebuild([leaf * 2 for leaf in leaves])
    assert np.array_equal(a2[2], 2 * args[2]) and np.array_equal(args[2], record.inputs(case)[0][2])
    assert np.array_equal(a2[1]["f"]["S"]["W"], 2 * args[1]["f"]["S"]["W"])
    assert a2[0] == "tsru_p"
    outs = reference_outputs(record, case, "float64")
    cots = cotangents(record, outs, case)
    assert [c.shape for c in cots] == [o.shape for o in outs]
    expected = sum(float(np.vdot(o.ravel(), c.ravel())) for o, c in zip(outs, cots))
    assert float(scalarize(record, outs, cots)) == pytest.approx(expected, rel=1e-14)


def test_spectral_normalize_gradients_see_only_w_sn():
    record = next(r for r in RECORDS if r.name == "spectral_normalize")
    case = record.cases[0]
    outs = reference_outputs(record, case, "float64")
    cots = cotangents(record, outs, case)
    assert len(cots) == 1 and cots[0].shape == outs[0].shape
    paths, _, _ = differentiable_view(record, *record.inputs(case))
    assert [p[0] for p in paths] == [0]


# ---------------------------------------------------------------------------
# skip files


def test_skip_files_parse_and_name_existing_records():
    from conformance.records import name_matches

    for path in sorted(Path(SKIPS_DIR).glob("*.txt")):
        for entry in parse_skips(path.read_text(encoding="utf-8"), str(path)):
            assert any(name_matches(entry.pattern, r.name) for r in RECORDS), (
                f"{entry.source}: {entry.pattern!r} matches no op record (stale entry)"
            )


# ---------------------------------------------------------------------------
# golden vectors


def test_golden_directory_holds_one_file_per_record_and_stays_small():
    files = {p.name for p in golden.GOLDEN_DIR.glob("*.npz")}
    expected = {golden.golden_path(r).name for r in RECORDS}
    assert files == expected, (
        f"missing: {sorted(expected - files)}, stale: {sorted(files - expected)}; "
        "run `python -m conformance.make_golden --prune`"
    )
    total = sum(p.stat().st_size for p in golden.GOLDEN_DIR.glob("*.npz"))
    assert total < 2 * 1024 * 1024, f"golden vectors take {total} bytes (> 2 MB)"


def _exact(record) -> bool:
    """Records whose float64 tolerance is zero move or select values and never round: bit-exact on any CPU."""
    t = record.tolerances["float64"]
    return t.rtol == 0 and t.atol == 0


def test_golden_compare_is_exact_for_data_movement_and_bounded_for_arithmetic(tmp_path):
    record = next(r for r in RECORDS if r.name == "conv2d")
    path = golden.write(record, tmp_path / "a")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    spec = json.loads(str(arrays["__spec__"]))["cases"][record.cases[0]]
    out_key, in_key = spec["outputs"][0]["$array"], spec["args"][0]["$array"]

    def variant(name, key, value):
        p = tmp_path / name / path.name
        p.parent.mkdir()
        np.savez_compressed(p, **dict(arrays, **{key: value}))
        return p

    # a few ulps of BLAS/SIMD difference: accepted by the derived bound, refused where exactness is promised
    few = variant("few", out_key, arrays[out_key] + 8 * np.spacing(arrays[out_key]))
    assert golden.compare(path, few, exact=False) == []
    assert "exact record" in golden.compare(path, few, exact=True)[0]
    # a real change of the op (1e-9 relative, far below any tolerance a port would use) is caught
    drift = variant("drift", out_key, arrays[out_key] * (1 + 1e-9) + 1e-9)
    assert "derived bound" in golden.compare(path, drift, exact=False)[0]
    # NaN where the stored value is finite is a difference whatever the bound
    nan = arrays[out_key].copy()
    nan.flat[0] = np.nan
    assert golden.compare(path, variant("nan", out_key, nan), exact=False)
    # inputs are data from seeded generators: one ulp is already a difference
    moved = variant("input", in_key, np.nextafter(arrays[in_key], np.inf))
    assert "input array" in golden.compare(path, moved, exact=False)[0]
    assert golden.compare(path, path, exact=True) == []


def test_golden_exact_records_are_the_data_movement_ops():
    exact = {r.name for r in RECORDS if _exact(r)}
    assert exact == {"pad_hw", "upsample_nearest", "adaptive_max_pool", "relu", "sample_frames", "crop"}


@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
def test_golden_regenerates_on_this_cpu(record, tmp_path):
    stored = golden.golden_path(record)
    assert stored.exists(), f"{stored.name} missing; run `python -m conformance.make_golden`"
    fresh = golden.write(record, tmp_path)
    diffs = golden.compare(stored, fresh, exact=_exact(record))
    assert not diffs, (
        f"{record.name}: the reference (or the record's inputs) drifted from the golden vectors: {diffs}. "
        "If the change is intended, regenerate with `python -m conformance.make_golden` and say why in the commit."
    )


@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
def test_core_matches_stored_golden_outputs(record):
    data = golden.load(golden.golden_path(record))
    assert data["record"] == record.name and set(data["cases"]) == set(record.cases)
    target = CoreTarget()
    fn = target.resolve(record)
    assert fn is not None, f"trivd_core has no {record.function}"
    tol = record.tolerances["float64"]
    for case, (args, kwargs, expected) in data["cases"].items():
        actual = target.to_numpy(record.outputs(fn(*args, **kwargs)))
        cmp = compare(actual, expected, tol, "float64")
        assert cmp.ok, f"{record.name}[{case}]: {cmp.message}"


def test_golden_vectors_hold_under_other_cpu_kernels():
    """Other BLAS/SIMD kernels (an SSE3-era OpenBLAS core, NumPy without AVX2/AVX-512 paths) still pass."""
    import subprocess
    import sys

    env = dict(os.environ, OPENBLAS_CORETYPE="Prescott", NPY_DISABLE_CPU_FEATURES="AVX2 FMA3 AVX512F AVX512_SKX")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "regenerates_on_this_cpu",
                          str(Path(__file__).resolve())], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"{len(RECORDS)} passed" in out.stdout, out.stdout[-500:]
