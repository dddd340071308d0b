"""trivd_core's generic array-API code, unchanged, on each backend's arrays, against the same code on NumPy.

Inside ``ops.generic_only()`` no fast path runs, so this checks that the core's
array-API code works on ``jax.numpy`` arrays, torch tensors and torch tensors on
an XLA device, eagerly and (JAX) under ``jit``.

Tolerances, derived per op (u = unit roundoff of the dtype, 2**-24 or 2**-53):

* pad / upsample / adaptive max-pool / ReLU / stop_gradient copy or compare
  values: exact.
* convolutions and average pooling are sums (matmuls inside); NumPy's BLAS and
  the framework add in different orders: ``2 * gamma_n * sum |terms|``
  (see ``_backend_bounds``).
* sigmoid and softmax call ``exp``, whose last bits differ between libraries.
  We assume each library's ``exp`` is within 4 ulp (= 8u relative) of the true
  value; a sweep of 2e6 points in [-30, 0] measured at most 2.5 ulp (NumPy
  float32), 1.7 ulp (JAX float64), 0.6 ulp (torch).  Sigmoid: the ``exp`` error
  passes through ``1 / (1 + e)`` or ``e / (1 + e)`` with gain at most 1, plus two
  roundings: each result within 10u relative, so two differ by at most 20u.
  Softmax over n entries: ``z = x - max`` is computed identically (max is exact,
  the subtraction correctly rounded), each ``e_i`` within 8u, their sum within
  ``8u + gamma_n``, and the division adds u: 17u + gamma_n each, twice that
  between two libraries.
"""

from __future__ import annotations

import numpy as np
import pytest
from _backend_bounds import UNIT_ROUNDOFF, assert_within, gamma, two_sums_bound
from array_api_compat import array_namespace

from trivd_core import ops

DTYPES = ("float32", "float64")


def _draw(seed, *shapes, dtype):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, size=s).astype(dtype) for s in shapes]


def _skip_f64(backend, dtype):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")


def _run(backend, fn, arrays, *, jit=False):
    """``fn`` on NumPy arrays and on the backend's arrays, generic code only; both results as NumPy."""
    with ops.generic_only():
        expected = fn(*arrays)
        native = backend.asarray(list(arrays))
        run = backend.jit(fn) if jit else fn
        out = run(*native)
        assert array_namespace(out) is array_namespace(native[0]), "the result left the backend's namespace"
        actual = backend.to_numpy(out)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    return actual, expected


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "xs, ws, with_bias",
    [((2, 5, 6, 3), (3, 3, 3, 2), True), ((1, 4, 4, 1), (5, 3, 1, 2), False), ((1, 3, 5, 2), (1, 1, 2, 1), True)],
)
def test_conv2d(backend, dtype, xs, ws, with_bias):
    _skip_f64(backend, dtype)
    x, w, b = _draw(1, xs, ws, ws[-1:], dtype=dtype)
    arrays = (x, w, b) if with_bias else (x, w)
    actual, expected = _run(backend, ops.conv2d, arrays)
    with ops.generic_only():
        abs_sum = ops.conv2d(*(np.abs(a.astype(np.float64)) for a in arrays))
    bound = two_sums_bound(abs_sum, ws[0] * ws[1] * ws[2] + 1, dtype)
    assert_within(actual, expected, bound, f"generic conv2d on {backend.name} [{dtype}]")


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv3d(backend, dtype):
    _skip_f64(backend, dtype)
    ws = (3, 1, 3, 2, 2)
    arrays = tuple(_draw(2, (1, 3, 4, 5, 2), ws, ws[-1:], dtype=dtype))
    actual, expected = _run(backend, ops.conv3d, arrays)
    with ops.generic_only():
        abs_sum = ops.conv3d(*(np.abs(a.astype(np.float64)) for a in arrays))
    bound = two_sums_bound(abs_sum, ws[0] * ws[1] * ws[2] * ws[3] + 1, dtype)
    assert_within(actual, expected, bound, f"generic conv3d on {backend.name} [{dtype}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, s", [((2, 4, 6, 3), 2), ((1, 2, 6, 9, 1), 3)])
def test_avg_pool(backend, dtype, xs, s):
    _skip_f64(backend, dtype)
    (x,) = _draw(3, xs, dtype=dtype)
    actual, expected = _run(backend, lambda a: ops.avg_pool(a, s), (x,))
    with ops.generic_only():
        abs_mean = ops.avg_pool(np.abs(x.astype(np.float64)), s)
    assert_within(actual, expected, two_sums_bound(abs_mean, s * s + 2, dtype), f"generic avg_pool on {backend.name}")


EXACT_OPS = {
    "pad_hw": (lambda a: ops.pad_hw(a, 2, 1), (2, 3, 5, 2)),
    "pad_hw_video": (lambda a: ops.pad_hw(a, 1, 0), (1, 2, 3, 4, 1)),
    "upsample_nearest": (lambda a: ops.upsample_nearest(a, 2), (2, 3, 4, 1)),
    "upsample_nearest_video": (lambda a: ops.upsample_nearest(a, 3), (1, 2, 2, 3, 2)),
    "adaptive_max_pool_equal_bins": (lambda a: ops.adaptive_max_pool(a, (4, 4)), (2, 8, 8, 2)),
    "adaptive_max_pool_unequal_bins": (lambda a: ops.adaptive_max_pool(a, (4, 4)), (1, 6, 7, 3)),
    "relu": (ops.relu, (2, 3, 4, 2)),
    "stop_gradient": (ops.stop_gradient, (2, 3, 4, 2)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EXACT_OPS))
def test_exact_ops(backend, dtype, name):
    _skip_f64(backend, dtype)
    fn, shape = EXACT_OPS[name]
    (x,) = _draw(4, shape, dtype=dtype)
    actual, expected = _run(backend, fn, (x,))
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid(backend, dtype):
    _skip_f64(backend, dtype)
    x = np.linspace(-40.0, 40.0, 1001).astype(dtype).reshape(1, 7, 11, 13)
    actual, expected = _run(backend, ops.sigmoid, (x,))
    u = UNIT_ROUNDOFF[dtype]
    assert_within(actual, expected, 20 * u * np.abs(expected), f"generic sigmoid on {backend.name} [{dtype}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax(backend, dtype, axis):
    _skip_f64(backend, dtype)
    (x,) = _draw(5, (2, 5, 4, 9), dtype=dtype)
    x = x * 10  # logits spanning ~e^20
    actual, expected = _run(backend, lambda a: ops.softmax(a, axis=axis), (x,))
    n = x.shape[axis]
    rel = 2 * (17 * UNIT_ROUNDOFF[dtype] + gamma(n, dtype))
    assert_within(actual, expected, rel * np.abs(expected), f"generic softmax on {backend.name} [{dtype}]")


def _hypernet_like(x, w, b):
    """conv -> ReLU -> adaptive max-pool -> softmax, the shape of the TSRU hyper-network (F.1)."""
    xp = array_namespace(x)
    h = ops.relu(ops.conv2d(x, w, b))
    p = ops.adaptive_max_pool(ops.avg_pool(ops.upsample_nearest(h, 2), 2), (4, 4))
    return ops.softmax(xp.reshape(p, (p.shape[0], -1)), axis=-1)


def test_generic_composite_under_jit(backend):
    """The array-API code traces under ``backend.jit`` (``jax.jit``; identity on torch) and computes the same."""
    dtype = "float64" if backend.supports_float64 else "float32"
    x, w, b = _draw(6, (2, 8, 8, 2), (3, 3, 2, 3), (3,), dtype=dtype)
    eager, expected = _run(backend, _hypernet_like, (x, w, b))
    jitted, _ = _run(backend, _hypernet_like, (x, w, b), jit=True)
    # Derived worst case (u = unit roundoff): each conv output is a sum of 18 products
    # plus a bias, all of size <= 1, so |logit| <= 19 and two evaluations differ by at
    # most 2 * gamma_19 * 19 (~722u); ReLU, upsampling and max-pool copy values; the
    # 2x2 average adds at most 2 * gamma_6 * 19 (~228u; 4 additions, a division that
    # may be a reciprocal multiply).  Softmax turns a logit perturbation d into a
    # relative change <= 2 max|d| and adds its own 2 * (17u + gamma_48) (module
    # docstring): about 2030u relative in all.
    u = UNIT_ROUNDOFF[dtype]
    logit_err = 2 * gamma(19, dtype) * 19 + 2 * gamma(6, dtype) * 19
    tol = 2 * logit_err + 2 * (17 * u + gamma(48, dtype))
    assert tol < 2100 * u
    np.testing.assert_allclose(eager, expected, rtol=tol, atol=0)
    np.testing.assert_allclose(jitted, expected, rtol=tol, atol=0)
