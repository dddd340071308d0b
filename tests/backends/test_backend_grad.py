"""``backend.value_and_grad`` (jax.value_and_grad / torch autograd) against independent gradients, float64.

Expected gradients never come from the backend under test:

* a scalar function of conv3d -> pad -> conv2d (with bias) -> avg_pool ->
  upsample: central finite differences of the *NumPy* generic code
  (``backends.numpy``), for every input entry;
* adaptive max-pool: the hand-derived adjoint (the upstream gradient lands on
  each bin's argmax; bins may overlap, so contributions add).

Each runs once through the backend's fast paths and once through the generic
array-API code (``ops.generic_only()``), under ``backend.jit`` (``jax.jit``;
eager torch).

Finite-difference tolerance.  The function is built to be a polynomial of
degree <= 2 in every single input entry (each output of the bilinear convolution
chain is linear in any one entry; the function adds ``sum(R1 * y)`` and
``sum(R2 * a * y)`` with ``a`` a linear pooling of ``y``), and a central
difference of a quadratic is exact for any step, so the step can be large
(h = 1/8) and the only error is rounding.  Let ``F`` be the function evaluated
on ``|inputs| + h``: every operation is then a sum or product of non-negative
numbers, so ``F`` bounds the magnitude of every intermediate of ``f`` at
``x +- h``; and a quadratic with non-negative coefficients satisfies
``q'(t) <= (q(t + h) - q(t)) / h``, so ``F / h`` bounds every partial
derivative and every intermediate of the reverse pass.  With K the number of
roundings on the longest path (2*9 + 5*3*2 + 1 terms of the two convolutions,
4 + 2 for the average, 2 * 216 + 2 products and sums in the final reductions,
a few for the rounded steps ``x +- h``: K = 500 bounds it), each evaluation of
``f`` is within ``gamma_K * F`` of the exact value, so
``|FD - f'| <= 2 gamma_K F / (2h)``, and the backend's gradient is within
``gamma_K * F / h`` of ``f'``: ``2 gamma_K F / h`` in all.  No kink (max,
ReLU) is in that function.
"""

from __future__ import annotations

import numpy as np
import pytest
from _backend_bounds import gamma
from array_api_compat import array_namespace

from backends.numpy import BACKEND as NUMPY
from trivd_core import ops

H = 0.125
K = 500


def _f(x5, w3, w2, b2, r1, r2):
    xp = array_namespace(x5)
    y = ops.conv3d(x5, w3)  # (1, 2, 4, 6, 2)
    y = xp.reshape(y, (2, 4, 6, 2))
    y = ops.conv2d(ops.pad_hw(y, 1, 0), w2, b2)  # (2, 6, 6, 3)
    a = ops.upsample_nearest(ops.avg_pool(y, 2), 2)
    return xp.sum(r1 * y) + xp.sum(r2 * a * y)


def _inputs():
    rng = np.random.default_rng(7)
    shapes = [(1, 2, 4, 6, 2), (3, 1, 3, 2, 2), (3, 5, 2, 3), (3,), (2, 6, 6, 3), (2, 6, 6, 3)]
    return [rng.uniform(-1.0, 1.0, size=s) for s in shapes]


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_value_and_grad_vs_numpy_finite_differences(backend, path):
    if not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    arrays = _inputs()
    argnums = (0, 1, 2, 3)
    with ops.generic_only():
        fd_value, fd_grads = NUMPY.value_and_grad(_f, argnums, eps=H)(*arrays)
        f_big = float(_f(*(np.abs(a) + H for a in arrays)))
    bound = 2 * gamma(K, "float64") * f_big / H

    native = backend.asarray(arrays, dtype="float64")
    vg = backend.jit(backend.value_and_grad(_f, argnums))
    if path == "generic":
        with ops.generic_only():
            value, grads = vg(*native)
    else:
        value, grads = vg(*native)
    grads = backend.to_numpy(grads)
    assert isinstance(grads, tuple) and len(grads) == len(argnums)
    np.testing.assert_allclose(
        float(backend.to_numpy(value)), float(fd_value), rtol=0, atol=2 * gamma(K, "float64") * f_big
    )
    for i, (g, e) in enumerate(zip(grads, fd_grads)):
        assert g.shape == e.shape and g.dtype == np.float64, (i, g.shape, g.dtype)
        assert np.max(np.abs(e)) > 0.1, "degenerate test: the expected gradient is ~0"
        err = np.max(np.abs(g - e))
        assert err <= bound, f"argument {i}: max |grad - FD| = {err:.3e} > {bound:.3e}"


@pytest.mark.parametrize("path", ["fast", "generic"])
@pytest.mark.parametrize("shape, out", [((2, 8, 8, 3), (4, 4)), ((1, 5, 7, 2), (4, 4)), ((1, 3, 2, 1), (4, 4))])
def test_adaptive_max_pool_gradient_is_the_argmax_scatter(backend, path, shape, out):
    dtype = "float64" if backend.supports_float64 else "float32"
    rng = np.random.default_rng(11)
    x = rng.permutation(np.arange(np.prod(shape))).reshape(shape).astype(dtype) / 7.0  # distinct: no ties
    r = rng.uniform(-1.0, 1.0, size=(shape[0], *out, shape[3])).astype(dtype)

    expected = np.zeros(shape, dtype=dtype)
    for i, (i0, i1) in enumerate(ops.adaptive_bins(shape[1], out[0])):
        for j, (j0, j1) in enumerate(ops.adaptive_bins(shape[2], out[1])):
            for b in range(shape[0]):
                for c in range(shape[3]):
                    block = x[b, i0:i1, j0:j1, c]
                    m, n = np.unravel_index(np.argmax(block), block.shape)
                    expected[b, i0 + m, j0 + n, c] += r[b, i, j, c]

    def f(a, rr):
        xp = array_namespace(a)
        return xp.sum(ops.adaptive_max_pool(a, out) * rr)

    vg = backend.jit(backend.value_and_grad(f, 0))
    if path == "generic":
        with ops.generic_only():
            _, g = vg(*backend.asarray([x, r]))
    else:
        _, g = vg(*backend.asarray([x, r]))
    # Sums of at most 4 (overlapping bins) of the r values: exact enough for rtol 4u.
    np.testing.assert_allclose(backend.to_numpy(g), expected, rtol=4 * np.finfo(dtype).eps, atol=0)
