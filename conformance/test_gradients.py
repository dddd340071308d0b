"""Gradient conformance: every backend's autodiff against finite differences of the float64 reference.

Targets: the backends of ``$TRIVD_CONFORMANCE_BACKENDS`` (as in the value suite;
``numpy`` and ``array_api_strict`` have no autodiff and are reported as skipped,
ports are NumPy-only and not run here).  Where several autodiff backends are
selected in one process (``TRIVD_CONFORMANCE_BACKENDS=jax,torch``), their whole
gradients are also compared element by element.  Method, step and tolerances:
:mod:`conformance.gradients`.

Also here, independent of the selection: the reference's own gradient of the
warp on a hand-derived case (no finite differences), the reliability of the
finite differences, and a fault injected into a gradient that the check must
catch.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conformance import gradients as G
from conformance.records import DTYPES, RECORDS
from conformance.runner import load_skips
from conformance.targets import target_or_unavailable

SPECS = [s for s in G.specs_from_env() if not s.startswith("port:")]
PAIRS = G.backend_pairs(SPECS)
DIFF_RECORDS = [r for r in RECORDS if r.diff_args]


def _available(spec: str):
    t = target_or_unavailable(spec)
    if isinstance(t, Exception):
        pytest.skip(f"target {spec!r} unavailable: {t}")
    return t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("record", DIFF_RECORDS, ids=[r.name for r in DIFF_RECORDS])
@pytest.mark.parametrize("spec", SPECS)
def test_gradient_matches_reference_finite_differences(spec, record, dtype):
    target = _available(spec)
    res = G.run_grad_one(target, record, dtype, load_skips(target))
    if res.status == "skip":
        pytest.skip(res.message)
    if res.status == "xfail":
        pytest.xfail(res.message)
    assert res.status == "pass", f"grad {record.name} {dtype} on {target.name}: {res.message}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("record", DIFF_RECORDS, ids=[r.name for r in DIFF_RECORDS])
@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_backends_agree_on_gradients(pair, record, dtype):
    a, b = (_available(s) for s in pair)
    res = G.compare_backends(a, b, record, dtype)
    if res.status == "skip":
        pytest.skip(res.message)
    assert res.status == "pass", f"grad {record.name} {dtype}, {res.target}: {res.message}"


@pytest.mark.parametrize("record", DIFF_RECORDS, ids=[r.name for r in DIFF_RECORDS])
def test_reference_finite_differences_are_reliable(record):
    """``D(h)`` and ``D(h/2)`` agree far below the float64 tolerance: no kink crossed, rounding small.

    A crossed ReLU/hinge/max kink changes ``D`` by O(one element's contribution), i.e.
    O(1) here; smooth truncation is ``O(h^2)`` ~ 1e-10, rounding ~1e-10.
    """
    for case in record.cases:
        for dtype in DTYPES:
            R, fd_err = G.reference_directional(record, case, dtype)
            assert np.isfinite(R)
            assert fd_err <= 1e-7 * (1.0 + abs(R)), f"{record.name}[{case}] {dtype}: |D(h) - D(h/2)| = {fd_err:.3e}"


# ---------------------------------------------------------------------------
# a hand-derived case: the warp (Eq. 11) is bilinear in (h, W)


def _hand_warp_gradients(h, W, g, k):
    """Gradients of ``s = sum(pixelwise_warp(h, W) * g)``, derived by hand.

    ``s = sum_{b,i,j,c,m,n} g[b,i,j,c] W[b,i,j,mk+n] h[b,i+m-p,j+n-p,c]`` (zero outside), so

    * ``ds/dW[b,i,j,mk+n] = sum_c g[b,i,j,c] h[b,i+m-p,j+n-p,c]`` (the shifted products), and
    * ``ds/dh[b,a,e,c] = sum_{m,n} W[b,a-m+p,e-n+p,mk+n] g[b,a-m+p,e-n+p,c]`` (the adjoint: the
      output pixel ``(i, j) = (a-m+p, e-n+p)`` is the one that read ``(a, e)`` through tap ``(m, n)``).
    """
    B, H, Wd, C = h.shape
    p = (k - 1) // 2
    dW = np.zeros_like(W)
    dh = np.zeros_like(h)
    for b in range(B):
        for m in range(k):
            for n in range(k):
                for i in range(H):
                    for j in range(Wd):
                        ii, jj = i + m - p, j + n - p
                        if 0 <= ii < H and 0 <= jj < Wd:
                            dW[b, i, j, m * k + n] = np.dot(g[b, i, j], h[b, ii, jj])
                for a in range(H):
                    for e in range(Wd):
                        i, j = a - m + p, e - n + p
                        if 0 <= i < H and 0 <= j < Wd:
                            dh[b, a, e] += W[b, i, j, m * k + n] * g[b, i, j]
    return dh, dW


def _warp_case(k=3):
    rng = np.random.default_rng(20200403)
    h = rng.standard_normal((2, 4, 5, 3))
    W = rng.standard_normal((2, 4, 5, k * k))
    g = rng.standard_normal((2, 4, 5, 3))
    return h, W, g


@pytest.mark.parametrize("k", [3, 5])
def test_reference_warp_gradient_is_the_hand_derived_one(k):
    """No finite differences: ``s`` is linear in ``W`` (and in ``h``), so ``s(W') = <dW, W'>`` for every ``W'``.

    With ``dW`` the hand-derived gradient at the base point (it does not depend on
    ``W``), the identity holding for several random ``W'`` (and ``h'``) is exactly the
    statement that ``dW`` (``dh``) is the reference's gradient.
    """
    from reference.warping import pixelwise_warp

    h, W, g = _warp_case(k)
    dh, dW = _hand_warp_gradients(h, W, g, k)
    assert np.abs(dW).max() > 0.5 and np.abs(dh).max() > 0.5  # not degenerate
    rng = np.random.default_rng(1)
    for _ in range(3):
        W2 = rng.standard_normal(W.shape)
        h2 = rng.standard_normal(h.shape)
        # float64 sums of ~k*k*C products of O(1) terms: round-off ~1e-14 of the total magnitude
        np.testing.assert_allclose(np.sum(pixelwise_warp(h, W2, k) * g), np.vdot(dW, W2), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.sum(pixelwise_warp(h2, W, k) * g), np.vdot(dh, h2), rtol=1e-12, atol=1e-12)
    # the transposed tap index (q = n*k + m) gives a different gradient: the check can tell them apart
    dW_t = dW.reshape(*dW.shape[:3], k, k).swapaxes(-1, -2).reshape(dW.shape)
    assert not np.allclose(dW_t, dW)


AUTODIFF = [n for n, mod in (("jax", "jax"), ("torch", "torch")) if importlib.util.find_spec(mod) is not None]


@pytest.mark.parametrize("name", AUTODIFF or ["none"])
def test_backend_warp_gradient_is_the_hand_derived_one(name):
    if name == "none":
        pytest.skip("neither jax nor torch is installed")
    import backends
    from trivd_core.warping import pixelwise_warp

    be = backends.load(name)
    if not be.supports_float64:
        pytest.skip(f"{name} has no float64 here")
    h, W, g = _warp_case(3)
    dh, dW = _hand_warp_gradients(h, W, g, 3)
    gt = be.asarray(g, dtype="float64")

    def s(hh, WW):
        xp = be.namespace()
        return xp.sum(pixelwise_warp(hh, WW, 3) * gt)

    _, (gh, gW) = be.value_and_grad(s, (0, 1))(*be.asarray([h, W], dtype="float64"))
    # float64 autodiff of sums of <= 9*3 products: round-off ~1e-15 relative
    np.testing.assert_allclose(be.to_numpy(gh), dh, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(be.to_numpy(gW), dW, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", AUTODIFF or ["none"])
def test_gradient_check_catches_a_wrong_gradient(name):
    """A warp whose *value* is right but whose gradient w.r.t. ``h`` is off by ``0.01 * cot`` must fail."""
    if name == "none":
        pytest.skip("neither jax nor torch is installed")
    import backends
    from conformance.records import get_record
    from conformance.targets import BackendTarget
    from trivd_core import ops
    from trivd_core.warping import pixelwise_warp

    def wrong(h, W, k=3):
        return pixelwise_warp(h, W, k) + 0.01 * (h - ops.stop_gradient(h))

    class Faulty(BackendTarget):
        def resolve(self, record):
            return wrong

    target = Faulty(backends.load(name))
    target.name = f"{name}-faulty"
    record = get_record("pixelwise_warp")
    for dtype in DTYPES:
        res = G.run_grad_one(target, record, dtype)
        if res.status == "skip":
            continue
        assert res.status == "fail", f"{dtype}: a gradient 1% off went unnoticed ({res.max_rel:.2e})"
        assert "directional derivative" in res.message
