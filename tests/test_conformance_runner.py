"""The conformance runner itself: statuses, table, exit codes, skip files, ports, record selection.

Ports are tiny modules written into ``tmp_path``: a correct NumPy ``conv2d``
written independently of trivd (pad + one matmul per tap), and deliberately
broken variants (kernel transposed, wrong dtype, wrong shape, NaNs, raising).
"""

from __future__ import annotations

import importlib
import math
import re
import sys
import textwrap

import numpy as np
import pytest

from conformance import results, runner
from conformance.records import RECORDS, Tol, get_record, name_matches, select
from conformance.runner import Result, compare, format_table, main, parse_skips, run
from conformance.targets import PortTarget

CONV = """
import numpy as np

def _conv(x, w, b=None):
    kh, kw = w.shape[0], w.shape[1]
    H, W = x.shape[1], x.shape[2]
    xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    y = np.zeros(x.shape[:3] + (w.shape[3],), dtype=x.dtype)
    for m in range(kh):
        for n in range(kw):
            y += xp[:, m:m + H, n:n + W, :] @ w[m, n]
    return y if b is None else y + b
"""

GOOD = (
    CONV
    + """
def conv2d(x, w, b=None):
    return _conv(x, w, b)

def relu(x):
    return np.maximum(x, np.zeros_like(x))

def pixelwise_warp(h, W, k=3):
    raise NotImplementedError("this port has no warps yet")
"""
)

BROKEN = (
    CONV
    + """
def conv2d(x, w, b=None):
    # the classic porting bug: kernel read as (kw, kh) - rows and columns swapped
    return _conv(x, np.ascontiguousarray(np.swapaxes(w, 0, 1)), b)

def relu(x):
    return np.maximum(x, 0).astype(np.float64)   # silently upcasts float32

def avg_pool(x, s):
    return x                                      # wrong shape

def sigmoid(x):
    raise ValueError("boom")

def softmax(x, axis=-1):
    return np.full_like(x, np.nan)
"""
)


@pytest.fixture
def make_port(tmp_path, monkeypatch):
    """Write ``source`` as an importable module in ``tmp_path``; return its name."""
    made = []

    def make(source: str, stem: str = "port") -> str:
        name = re.sub(r"\W", "_", f"trivd_test_{stem}_{tmp_path.name}")
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        made.append(name)
        importlib.invalidate_caches()
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for name in made:
        sys.modules.pop(name, None)


def _by_key(results):
    return {(r.op, r.dtype): r for r in results}


# ---------------------------------------------------------------------------
# comparison semantics


def test_compare_uses_atol_plus_rtol_times_expected_exactly():
    tol = Tol(2.0**-10, 2.0**-10, "test")
    e = (np.array([1.0, 0.0]),)
    at_bound = (np.array([1.0 + 2.0**-9, 2.0**-10]),)  # errors 2^-9 and 2^-10, bounds 2^-9 and 2^-10
    cmp = compare(at_bound, e, tol, "float64")
    assert cmp.ok and cmp.max_abs == 2.0**-9
    assert cmp.max_rel == 2.0**-10  # |a-e| / (|e| + atol/rtol) = 2^-9 / 2: pass exactly when <= rtol
    beyond = (np.array([1.0 + 2.0**-9 + 2.0**-20, 0.0]),)
    cmp = compare(beyond, e, tol, "float64")
    assert not cmp.ok and cmp.max_rel > tol.rtol and "1/2 elements off" in cmp.message


def test_compare_rejects_wrong_dtype_shape_count_and_nan():
    tol = Tol(1e-5, 1e-5, "test")
    e = (np.zeros((2, 3)),)
    assert "dtype float64, expected float32" in compare((np.zeros((2, 3)),), e, tol, "float32").message
    assert "shape (3, 2), expected (2, 3)" in compare((np.zeros((3, 2), np.float32),), e, tol, "float32").message
    assert "returned 2 outputs" in compare((e[0], e[0]), e, tol, "float64").message
    nan = np.zeros((2, 3))
    nan[1, 2] = np.nan
    cmp = compare((nan,), e, tol, "float64")
    assert not cmp.ok and cmp.max_abs == math.inf and "(1, 2)" in cmp.message


def test_exact_tolerance_reports_relative_error_against_expected():
    tol = Tol(0.0, 0.0, "exact")
    cmp = compare((np.array([2.0, 0.0]),), (np.array([2.0, 0.0]),), tol, "float64")
    assert cmp.ok and cmp.max_rel == 0.0
    cmp = compare((np.array([2.5, 0.0]),), (np.array([2.0, 0.0]),), tol, "float64")
    assert not cmp.ok and cmp.max_rel == 0.25


# ---------------------------------------------------------------------------
# the table


def test_format_table_lists_every_result_and_a_summary():
    tol = Tol(1e-5, 1e-6, "r")
    results = [
        Result("port:x", "conv2d", "float32", "pass", 1.5e-7, 2.5e-8, tol),
        Result("port:x", "conv2d", "float64", "fail", 0.25, 0.125, tol, "x" * 300),
        Result("port:x", "pixelwise_warp", "float32", "missing", message="port:x has no function"),
        Result("port:x", "relu", "float64", "skip", message="no float64 here"),
    ]
    text = format_table(results, width=60)
    lines = text.splitlines()
    assert lines[0].split() == ["op", "dtype", "status", "max", "abs", "err", "max", "rel", "err", "tolerance", "note"]
    assert lines[2].split()[:6] == ["conv2d", "float32", "pass", "1.50e-07", "2.50e-08", "rtol=1e-05"]
    assert lines[3].split()[:5] == ["conv2d", "float64", "fail", "2.50e-01", "1.25e-01"]
    assert lines[3].endswith("x" * 57 + "...")
    assert lines[4].split()[:5] == ["pixelwise_warp", "float32", "missing", "-", "-"]
    assert "no float64 here" in lines[5]
    assert lines[-1] == "port:x: 1 pass, 1 fail, 1 missing, 1 skip"
    # columns line up: every row starts its status at the same offset as the header
    col = lines[0].index("status")
    assert all(line[col:].split()[0] in runner.STATUSES for line in lines[2:6])


def test_format_table_shows_the_target_column_for_several_targets():
    results = [Result("numpy", "relu", "float32", "pass", 0.0, 0.0), Result("jax", "relu", "float32", "pass", 0.0, 0.0)]
    text = format_table(results)
    assert text.splitlines()[0].split()[0] == "target"
    assert text.splitlines()[-1] == "jax, numpy: 2 pass, 0 fail"


# ---------------------------------------------------------------------------
# ports


def test_correct_port_passes_and_absent_ops_are_missing(make_port):
    target = PortTarget(make_port(GOOD, "good"))
    res = _by_key(run(target, ["conv2d", "relu", "pixelwise_warp", "crop"]))
    assert res["conv2d", "float32"].status == "pass" and res["conv2d", "float64"].status == "pass"
    assert res["relu", "float64"].status == "pass"
    assert res["crop", "float32"].status == "missing" and "no function 'crop'" in res["crop", "float32"].message
    warp = res["pixelwise_warp", "float32"]
    assert warp.status == "missing" and "no warps yet" in warp.message  # NotImplementedError


def test_broken_port_is_reported_failing(make_port):
    target = PortTarget(make_port(BROKEN, "broken"))
    res = _by_key(run(target, ["conv2d", "relu", "avg_pool", "sigmoid", "softmax"]))
    for dtype in ("float32", "float64"):
        conv = res["conv2d", dtype]
        assert conv.status == "fail" and conv.max_abs > 0.1, conv
        assert "elements off" in conv.message
    assert (
        res["relu", "float32"].status == "fail" and "dtype float64, expected float32" in res["relu", "float32"].message
    )
    assert res["relu", "float64"].status == "pass"
    assert res["avg_pool", "float32"].status == "fail" and "shape" in res["avg_pool", "float32"].message
    assert res["sigmoid", "float64"].status == "fail" and "raised ValueError: boom" in res["sigmoid", "float64"].message
    assert res["softmax", "float32"].status == "fail" and res["softmax", "float32"].max_abs == math.inf


def test_main_exit_status_and_table(make_port, capsys):
    bad = make_port(BROKEN, "broken")
    assert main(["--port", bad, "--ops", "conv2d"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^conv2d\s+float32\s+fail\s", out, re.M) and out.rstrip().endswith("0 pass, 2 fail")

    good = make_port(GOOD, "good")
    assert main(["--port", good, "--ops", "conv2d,crop", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^conv2d\s+float32\s+pass\s", out, re.M)
    assert re.search(r"^crop\s+float32\s+missing\s", out, re.M)
    assert "float64" not in out


def test_main_usage_errors_return_2(make_port, capsys):
    assert main(["--backend", "no_such_backend", "--ops", "relu"]) == 2
    assert "cannot set up the target" in capsys.readouterr().err
    assert main(["--port", "no_such_module_trivd_xyz", "--ops", "relu"]) == 2
    assert main(["--backend", "numpy", "--ops", "no_such_op"]) == 2
    assert "no op record matches" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--backend", "numpy", "--port", "x"])


def test_main_lists_records(capsys):
    assert main(["--list", "--ops", "cell_step"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(select("cell_step")) and lines[0].startswith("cell_step[convgru]")


def test_port_without_float64_skips_it(make_port):
    name = make_port(GOOD + "\nTRIVD_SUPPORTS_FLOAT64 = False\n", "f32only")
    res = _by_key(run(PortTarget(name), ["relu"]))
    assert res["relu", "float32"].status == "pass"
    assert res["relu", "float64"].status == "skip" and "float64" in res["relu", "float64"].message


def test_core_targets_report_missing_functions_as_failures():
    from conformance.records import OpRecord
    from conformance.targets import CoreTarget

    relu = get_record("relu")
    ghost = OpRecord(
        name="no_such_op",
        module="ops",
        function="no_such_op",
        cases=relu.cases,
        make_inputs=relu.make_inputs,
        tolerances=relu.tolerances,
        array_args=relu.array_args,
    )
    (res,) = run(CoreTarget(), [ghost], ("float64",))
    assert res.status == "fail" and "no function 'no_such_op'" in res.message


def test_core_code_returning_numpy_on_array_api_strict_fails():
    from conformance.targets import ArrayApiStrictTarget

    class Leaky(ArrayApiStrictTarget):
        def resolve(self, record):
            return lambda x: np.maximum(np.asarray(x), 0)  # computes in NumPy behind the namespace's back

    (res,) = run(Leaky(), ["relu"], ("float64",))
    assert res.status == "fail" and "returned ndarray instead of array_api_strict arrays" in res.message


def test_run_on_numpy_and_array_api_strict():
    for spec in ("numpy", "array_api_strict"):
        res = run(spec, ["conv2d", "crop"])
        assert [r.status for r in res] == ["pass"] * 4, format_table(res)
        assert all(r.target == spec for r in res)
    with pytest.raises(ValueError, match="dtypes"):
        run("numpy", ["relu"], ("float16",))


# ---------------------------------------------------------------------------
# skip files


def test_parse_skips():
    entries = parse_skips(
        "# header\n\nconv2d   needs a fast path\nxfail cell_step[tsru_*]@float32  known drift, see the tracker\n", "f.txt"
    )
    assert [(e.pattern, e.dtype, e.xfail, e.reason) for e in entries] == [
        ("conv2d", None, False, "needs a fast path"),
        ("cell_step[tsru_*]", "float32", True, "known drift, see the tracker"),
    ]
    assert entries[1].source == "f.txt:4"
    with pytest.raises(ValueError, match=r"f.txt:1: expected"):
        parse_skips("conv2d\n", "f.txt")
    with pytest.raises(ValueError, match=r"f.txt:2: dtype"):
        parse_skips("# c\nconv2d@float16 reason\n", "f.txt")
    with pytest.raises(ValueError, match="expected"):
        parse_skips("xfail conv2d\n")


def test_skip_and_xfail_entries_are_honoured(make_port, tmp_path, capsys):
    bad = make_port(BROKEN, "broken")
    good = make_port(GOOD, "good")
    skip_file = tmp_path / "skips.txt"

    skip_file.write_text("conv2d@float64  swapped kernel, fixed upstream\nxfail conv2d@float32  swapped kernel\n")
    res = _by_key(run(PortTarget(bad), ["conv2d"], skips=skip_file))
    assert res["conv2d", "float64"].status == "skip" and res["conv2d", "float64"].message.startswith("swapped")
    assert res["conv2d", "float32"].status == "xfail"
    assert main(["--port", bad, "--ops", "conv2d", "--skip-file", str(skip_file)]) == 0
    capsys.readouterr()

    # an xfail entry on an op that passes is a failure, so the list cannot rot
    res = _by_key(run(PortTarget(good), ["conv2d"], skips=skip_file))
    assert res["conv2d", "float32"].status == "fail" and "remove the entry" in res["conv2d", "float32"].message
    assert main(["--port", good, "--ops", "conv2d", "--skip-file", str(skip_file)]) == 1


def test_default_skip_file_is_found_by_target_name(make_port, tmp_path, monkeypatch):
    bad = make_port(BROKEN, "broken")
    target = PortTarget(bad)
    assert target.skip_key == f"port-{bad}"
    (tmp_path / f"{target.skip_key}.txt").write_text("conv2d  known broken\n")
    monkeypatch.setattr(results, "SKIPS_DIR", tmp_path)  # where load_skips looks
    res = run(target, ["conv2d"])
    assert [r.status for r in res] == ["skip", "skip"]


# ---------------------------------------------------------------------------
# record selection


def test_name_matching_and_selection():
    assert name_matches("cell_step", "cell_step[tsru_p]")
    assert name_matches("cell_step[tsru_p]", "cell_step[tsru_p]")
    assert not name_matches("cell_step[tsru_p]", "cell_step[tsru_s]")
    assert name_matches("cell_step[tsru_*]", "cell_step[tsru_c,return_warp]")
    assert not name_matches("cell_step[tsru_*]", "cell_step[ptsru_c]")  # brackets are literal
    assert name_matches("*warp*", "pixelwise_warp") and not name_matches("warp", "pixelwise_warp")
    kinds = [r.name for r in select("cell_step[tsru_?]")]
    assert kinds == ["cell_step[tsru_c]", "cell_step[tsru_p]", "cell_step[tsru_s]"]
    assert [r.name for r in select("relu, crop")] == ["relu", "crop"]
    assert select(None) == RECORDS and select("") == RECORDS
