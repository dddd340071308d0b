"""Each backend's registered fast paths against trivd_core's generic array-API code, on the same backend.

The expected value is the generic implementation (``ops.generic_only()``) run on
the same backend arrays; the fast path is whatever the backend registered.

Tolerances (see ``_backend_bounds``): convolutions and average pooling are sums
whose order differs between the two implementations, so they are compared
against the order-independent rounding bound ``2 * gamma_n * sum |terms|``,
elementwise, with ``sum |terms|`` evaluated exactly enough in float64 NumPy.
Padding, nearest upsampling, max-pooling and ``stop_gradient`` only copy or
compare values, so they must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from _backend_bounds import assert_within, two_sums_bound
from array_api_compat import array_namespace

from trivd_core import ops

DTYPES = ("float32", "float64")

# (x shape, w shape, with bias): non-square and even-sized frames, B=1, C=1,
# kernels 1/3/5 and non-square 3x5 / 5x3, a kernel larger than the frame.
CONV2D_CASES = [
    ((2, 5, 7, 3), (3, 3, 3, 4), True),
    ((1, 4, 6, 1), (1, 1, 1, 2), False),
    ((2, 6, 4, 2), (5, 5, 2, 3), True),
    ((1, 5, 8, 2), (3, 5, 2, 2), True),
    ((3, 8, 8, 1), (5, 3, 1, 1), False),
    ((1, 2, 3, 2), (5, 5, 2, 1), True),
]
CONV3D_CASES = [
    ((1, 3, 4, 5, 2), (3, 3, 3, 2, 3), True),
    ((2, 4, 6, 4, 1), (1, 3, 5, 1, 2), False),
    ((1, 2, 3, 3, 2), (3, 1, 1, 2, 2), True),
    ((1, 1, 4, 4, 1), (5, 1, 3, 1, 1), True),
]
PAD_CASES = [
    ((2, 5, 6, 3), 1, 2),
    ((1, 4, 4, 1), 0, 3),
    ((2, 3, 5, 2), 2, 0),
    ((2, 3, 4, 5, 1), 1, 1),
    ((3, 3, 2), 1, 1),
]
POOL_CASES = [((2, 4, 6, 3), 2), ((1, 6, 9, 1), 3), ((2, 3, 4, 4, 2), 2), ((1, 4, 4, 2), 1), ((4, 6, 1), 2)]
UPSAMPLE_CASES = [((2, 3, 5, 2), 2), ((1, 2, 2, 1), 3), ((2, 3, 2, 4, 1), 2), ((1, 3, 3, 2), 1)]
# (x shape, output size): equal bins, unequal bins, output larger than the input.
ADAPTIVE_CASES = [((2, 8, 8, 3), (4, 4)), ((1, 5, 7, 2), (4, 4)), ((2, 4, 4, 1), (4, 4)), ((1, 9, 6, 3), (4, 4)),
                  ((1, 3, 2, 1), (4, 4)), ((2, 8, 6, 1), (2, 3))]  # fmt: skip


def _draw(seed, *shapes, dtype):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, size=s).astype(dtype) for s in shapes]


def _fast_and_generic(backend, op_name, *args):
    xp = backend.namespace()
    fast_fn = ops.fast_paths(xp).get(op_name)
    assert fast_fn is not None, f"backend {backend.name!r} registered no fast path for {op_name!r}"
    assert fast_fn.__module__.startswith("backends."), fast_fn.__module__
    op = getattr(ops, op_name)
    fast = op(*args)
    with ops.generic_only():
        generic = op(*args)
    assert array_namespace(fast) is array_namespace(generic)
    assert fast.dtype == generic.dtype == args[0].dtype
    return backend.to_numpy(fast), backend.to_numpy(generic)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(CONV2D_CASES)))
def test_conv2d(backend, dtype, case):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    xs, ws, with_bias = CONV2D_CASES[case]
    x, w, b = _draw(case, xs, ws, ws[-1:], dtype=dtype)
    b = b if with_bias else None
    args = backend.asarray([x, w] + ([b] if with_bias else []))
    fast, generic = _fast_and_generic(backend, "conv2d", *args)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    with ops.generic_only():
        abs_sum = ops.conv2d(np.abs(x64), np.abs(w64), None if b is None else np.abs(b.astype(np.float64)))
    n = ws[0] * ws[1] * ws[2] + 1
    assert_within(fast, generic, two_sums_bound(abs_sum, n, dtype), f"conv2d {xs} * {ws} [{dtype}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(CONV3D_CASES)))
def test_conv3d(backend, dtype, case):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    xs, ws, with_bias = CONV3D_CASES[case]
    x, w, b = _draw(100 + case, xs, ws, ws[-1:], dtype=dtype)
    b = b if with_bias else None
    args = backend.asarray([x, w] + ([b] if with_bias else []))
    fast, generic = _fast_and_generic(backend, "conv3d", *args)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    with ops.generic_only():
        abs_sum = ops.conv3d(np.abs(x64), np.abs(w64), None if b is None else np.abs(b.astype(np.float64)))
    n = ws[0] * ws[1] * ws[2] * ws[3] + 1
    assert_within(fast, generic, two_sums_bound(abs_sum, n, dtype), f"conv3d {xs} * {ws} [{dtype}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_avg_pool(backend, dtype, case):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    xs, s = POOL_CASES[case]
    (x,) = _draw(200 + case, xs, dtype=dtype)
    fast, generic = _fast_and_generic(backend, "avg_pool", backend.asarray(x), s)
    with ops.generic_only():
        abs_mean = ops.avg_pool(np.abs(x.astype(np.float64)), s)
    # s*s additions, then a division by s*s that may be done as a multiplication
    # by a rounded reciprocal (two more roundings): n = s*s + 2 terms.
    assert_within(fast, generic, two_sums_bound(abs_mean, s * s + 2, dtype), f"avg_pool {xs} / {s} [{dtype}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(PAD_CASES)))
def test_pad_hw_exact(backend, dtype, case):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    xs, ph, pw = PAD_CASES[case]
    (x,) = _draw(300 + case, xs, dtype=dtype)
    fast, generic = _fast_and_generic(backend, "pad_hw", backend.asarray(x), ph, pw)
    np.testing.assert_array_equal(fast, generic)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(UPSAMPLE_CASES)))
def test_upsample_nearest_exact(backend, dtype, case):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    xs, s = UPSAMPLE_CASES[case]
    (x,) = _draw(400 + case, xs, dtype=dtype)
    fast, generic = _fast_and_generic(backend, "upsample_nearest", backend.asarray(x), s)
    np.testing.assert_array_equal(fast, generic)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(ADAPTIVE_CASES)))
def test_adaptive_max_pool_exact(backend, dtype, case):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    xs, out = ADAPTIVE_CASES[case]
    (x,) = _draw(500 + case, xs, dtype=dtype)
    fast, generic = _fast_and_generic(backend, "adaptive_max_pool", backend.asarray(x), out)
    np.testing.assert_array_equal(fast, generic)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stop_gradient_value_exact(backend, dtype):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    (x,) = _draw(600, (2, 3, 4, 1), dtype=dtype)
    fast, generic = _fast_and_generic(backend, "stop_gradient", backend.asarray(x))
    np.testing.assert_array_equal(fast, generic)
    np.testing.assert_array_equal(fast, x)


def test_stop_gradient_blocks_gradient(backend):
    """d/dx sum(stop_gradient(x) * x) = stop_gradient(x) = x (hand-derived), not 2x."""
    (x,) = _draw(601, (2, 3, 4, 2), dtype="float32")

    def f(a):
        xp = array_namespace(a)
        return xp.sum(ops.stop_gradient(a) * a)

    _, g = backend.value_and_grad(f)(backend.asarray(x))
    np.testing.assert_array_equal(backend.to_numpy(g), x)
