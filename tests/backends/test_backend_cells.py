"""Smoke test: ``cell_step("tsru_p", ...)`` on each backend - forward under ``backend.jit`` and backward.

The forward result is compared with the same trivd_core code on NumPy; the
gradient with a central finite difference of that NumPy code along a random
direction in parameter space (a directional derivative: two evaluations instead
of one per parameter).  The per-op checks live in the other test files and in
the conformance suite; this one shows that a whole recurrent cell (convs, the
hyper-network with its adaptive max-pool and MLP, two softmaxes, the
factorized warp, the gates) runs and differentiates on every backend.

Tolerances (float64; the forward check runs in float32 where the device has no
float64, the backward check is skipped there):

* forward: rtol = atol = 1e-10 in float64, the project's float64 contract for
  the core against the reference (tests/test_warping.py); here both sides run
  the *same* core code and differ only in the summation order inside matmuls
  and convolutions, which moves results by ~1e-15 on these O(1) values.  In
  float32 (both sides float32): each op's sums of <= 81 terms may differ by
  2 * gamma_81 ~ 1e-5 relative, through ~10 chained ops of O(1) gain: 1e-4.
* directional derivative: step h = 1e-5.  The truncation error of a central
  difference is h**2 / 6 * |f'''| ~ 2e-11 * |f'''|, and |f'''| stays below ~1e2
  here (ReLU and sigmoid gates, softmaxes over 9 and 81 entries, O(1) weights);
  the rounding error is ~u * sum|terms| / h ~ 1e-16 * 1e3 / 1e-5 = 1e-8.
  Allowed: 1e-6 * max(1, |D|), 100x the larger of the two estimates (measured
  on these data: ~1e-10 relative).  The function has kinks (ReLU, max-pool); a
  step of 1e-5 along a random direction crosses one only if a pre-activation or
  a max-pool margin is within ~1e-5 of zero, which a crossing would show as an
  O(1) discrepancy, not a small one.
"""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace

KIND = "tsru_p"
C_IN, C_H, K = 2, 3, 3


def _problem(dtype):
    cells = pytest.importorskip("trivd_core.cells", reason="trivd_core.cells is not written yet")
    params = cells.init_cell(KIND, C_IN, C_H, K, rng=np.random.default_rng(0), dtype=np.float64)
    rng = np.random.default_rng(1)
    h = rng.uniform(-1.0, 1.0, (2, 8, 8, C_H))
    x = rng.uniform(-1.0, 1.0, (2, 8, 8, C_IN))
    r = rng.uniform(-1.0, 1.0, (2, 8, 8, C_H))
    cast = lambda t: {k: cast(v) for k, v in t.items()} if isinstance(t, dict) else t.astype(dtype)  # noqa: E731
    return cells, cast(params), h.astype(dtype), x.astype(dtype), r.astype(dtype)


def _dtype(backend):
    return "float64" if backend.supports_float64 else "float32"


def test_tsru_p_forward_under_jit(backend):
    dtype = _dtype(backend)
    cells, params, h, x, _ = _problem(dtype)
    expected = cells.cell_step(KIND, params, h, x)

    def step(p, hh, xx):
        return cells.cell_step(KIND, p, hh, xx)

    out = backend.jit(step)(backend.asarray(params), *backend.asarray([h, x]))
    assert array_namespace(out) is backend.namespace()
    out = backend.to_numpy(out)
    assert out.shape == (2, 8, 8, C_H) and out.dtype == np.dtype(dtype)
    tol = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


def _flat(tree, prefix=""):
    for k in sorted(tree):
        v = tree[k]
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _axpy(tree, t, direction):
    return {k: _axpy(v, t, direction[k]) if isinstance(v, dict) else v + t * direction[k] for k, v in tree.items()}


def test_tsru_p_backward_matches_directional_finite_difference(backend):
    if not backend.supports_float64:
        pytest.skip(
            f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0); the FD comparison is made in float64"
        )
    dtype = "float64"
    cells, params, h, x, r = _problem(dtype)

    def loss(p, hh, xx, rr):
        xp = array_namespace(hh)
        return xp.sum(cells.cell_step(KIND, p, hh, xx) * rr)

    value, grads = backend.jit(backend.value_and_grad(loss, 0))(backend.asarray(params), *backend.asarray([h, x, r]))
    grads = backend.to_numpy(grads)
    names = [n for n, _ in _flat(params)]
    assert [n for n, _ in _flat(grads)] == names, "gradient tree differs from the parameter tree"
    for name, g in _flat(grads):
        assert g.dtype == np.dtype(dtype) and np.all(np.isfinite(g)), name
    # The hyper-network's output layer decides the warp: its gradient must not vanish.
    assert np.max(np.abs(grads["f"]["fc2"]["W"])) > 0

    rng = np.random.default_rng(2)
    cast64 = lambda t: {k: cast64(v) for k, v in t.items()} if isinstance(t, dict) else t.astype(np.float64)  # noqa: E731
    p64 = cast64(params)
    direction = {}
    for name, v in _flat(p64):
        node = direction
        *path, leaf = name.split(".")
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = rng.uniform(-1.0, 1.0, v.shape)
    step = 1e-5
    h64, x64, r64 = (a.astype(np.float64) for a in (h, x, r))
    fd = (loss(_axpy(p64, step, direction), h64, x64, r64) - loss(_axpy(p64, -step, direction), h64, x64, r64)) / (
        2 * step
    )
    dd = sum(float(np.sum(g.astype(np.float64) * d)) for (_, g), (_, d) in zip(_flat(grads), _flat(direction)))
    assert abs(dd - fd) <= 1e-6 * max(1.0, abs(fd)), (dd, fd)
    assert np.isfinite(float(backend.to_numpy(value)))
