"""Model-level conformance (``conformance/model.py``): G, every D decomposition, the losses and their gradients.

Targets: ``$TRIVD_CONFORMANCE_BACKENDS`` as in ``test_conformance.py`` (default
``numpy,array_api_strict``; a backend whose framework is missing is skipped with
the reason).  Each (target, dtype) is computed once per process (cached) and
every check is its own test.  Tolerances and their derivation: the docstring of
``conformance/model.py``.

Besides the target rows: the referee's anchor to ``reference/``, the finite
differences' own convergence, sanity of the problem (identical inputs in both
dtypes, informative outputs), that the comparison can fail, and - when two
autodiff backends are present in one process - their float64 gradients against
each other.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import pytest

from conformance import model as M
from conformance.records import DTYPES
from conformance.runner import format_table
from conformance.targets import target_or_unavailable
from trivd_core.tree import tree_map, tree_paths


def _specs() -> list[str]:
    specs = [s.strip() for s in os.environ.get("TRIVD_CONFORMANCE_BACKENDS", "numpy,array_api_strict").split(",")]
    return [s for s in specs if s]


TARGETS = _specs()


@functools.cache
def _results(spec: str, dtype: str) -> dict:
    return {r.op: r for r in M.run_model(target_or_unavailable(spec), (dtype,), anchor=False)}


@pytest.mark.slow  # the first test of a (target, dtype) computes all of it: JAX compiles the model
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("check", M.FORWARD_CHECKS + M.GRAD_CHECKS)
@pytest.mark.parametrize("spec", TARGETS)
def test_model_matches_numpy_float64(spec, check, dtype):
    target = target_or_unavailable(spec)
    if isinstance(target, Exception):
        pytest.skip(f"target {spec!r} unavailable: {target}")
    res = _results(spec, dtype)[f"model:{check}"]
    if res.status == "skip":
        pytest.skip(res.message)
    assert res.status == "pass", f"{check} {dtype} on {target.name}: {res.message}"


def test_table_formats_every_row():
    rows = [r for spec in TARGETS if not isinstance(target_or_unavailable(spec), Exception) for d in DTYPES
            for r in _results(spec, d).values()]
    if not rows:
        pytest.skip("no target available")
    text = format_table(rows)
    assert "model:generate[train]" in text and "model:g_loss.grad" in text


# ---------------------------------------------------------------------------
# the referee


def test_referee_is_anchored_to_the_reference():
    cmp = M.anchor_check()
    assert cmp.ok, cmp.message
    assert cmp.max_rel <= M.TOL["anchor"]["float64"].rtol


def test_anchor_detects_a_wrong_cell(monkeypatch):
    """The anchor compares against reference.cell_step, so a perturbed core cell must fail it."""
    from trivd_core import cells

    original = cells.cell_step
    monkeypatch.setattr(cells, "cell_step", lambda *a, **k: original(*a, **k) * (1 + 1e-6))
    cmp = M.anchor_check()
    assert not cmp.ok and "cell_step call 0" in cmp.message


def test_problem_is_identical_in_both_dtypes_and_informative():
    x = M.problem()
    for path, a in tree_paths(x):
        if np.issubdtype(a.dtype, np.floating):
            assert a.dtype == np.float64
            assert np.array_equal(a.astype(np.float32).astype(np.float64), a), path  # float32-representable
        else:
            assert a.dtype == np.int64, path
    ref = M.referee()
    frames = ref["generate[train]"]["frames"]
    assert frames.shape == (M.BATCH, 3, 32, 32, 3) and 0.1 < float(np.std(frames)) < 1
    # the two G passes differ only where they should: eval uses the standing statistics of two batches
    assert not np.allclose(ref["generate[eval]"]["frames"], frames)
    # every decomposition scores every sample differently (the check is not on constants)
    for check in M.FORWARD_CHECKS:
        if check.startswith("discriminate["):
            for name, s in ref[check]["scores"].items():
                assert np.ptp(s) > 1e-3, (check, name)


def test_numpy_float32_error_sets_the_float32_scale():
    """numpy-core's own float32 error is the measured scale the float32 tolerance is ~10x above."""
    errs = M.numpy_float32_errors()
    tol = M.TOL["value"]["float32"].rtol
    assert max(errs.values()) <= tol / 8, errs
    assert max(errs.values()) > 1e-7  # float32 really ran (not the float64 referee again)


def test_compare_trees_fails_on_perturbation_structure_and_dtype():
    ref = M.referee()["d_loss"]
    tol = M.TOL["value"]["float64"]
    assert M.compare_trees(ref, ref, tol).ok
    bumped = {**ref, "loss": ref["loss"] * (1 + 1e-6)}
    assert not M.compare_trees(bumped, ref, tol).ok
    assert not M.compare_trees({k: v for k, v in ref.items() if k != "loss"}, ref, tol).ok
    as32 = {**ref, "loss": ref["loss"].astype(np.float32)}
    assert "dtype" in M.compare_trees(as32, ref, tol, "float64").message


# ---------------------------------------------------------------------------
# backends against each other


def _autodiff_targets():
    out = []
    for spec in [s for s in ("jax", "torch", "xla") if s in TARGETS]:
        t = target_or_unavailable(spec)
        if not isinstance(t, Exception) and t.supports_float64:
            out.append(t)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["d_loss", "g_loss"])
def test_backend_gradients_agree_with_each_other(loss):
    present = [t for t in _autodiff_targets() if t.name in TARGETS]
    if len(present) < 2:
        pytest.skip(f"needs two autodiff backends in $TRIVD_CONFORMANCE_BACKENDS, have {[t.name for t in present]}")
    grads = {t.name: M.target_gradients(t, "float64")[loss][1] for t in present}
    names = sorted(grads)
    for other in names[1:]:
        cmp = M.compare_trees(grads[other], grads[names[0]], M.TOL["value"]["float64"], "float64",
                              floor=M.GRAD_FLOOR)
        assert cmp.ok, f"{other} vs {names[0]}: {cmp.message}"
        assert not math.isnan(cmp.max_rel)


@pytest.mark.slow
def test_directional_check_detects_a_missing_group_gradient():
    """Zeroing E's gradient (G's loss not reaching E) must show as an O(1) error in E's direction only."""
    present = [t for t in _autodiff_targets() if t.name in TARGETS]
    if not present:
        pytest.skip("needs an autodiff backend in $TRIVD_CONFORMANCE_BACKENDS")
    grads = M.target_gradients(present[0], "float64")["g_loss"][1]
    broken = {**grads, "E": tree_map(np.zeros_like, grads["E"])}
    errs = M.directional_errors("g_loss", broken)
    assert errs["E"] > 0.01, errs
    assert errs["G/stage0"] <= M.TOL["fd"]["float64"].rtol, errs
