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


def _need_dtype(backend, dtype) -> None:
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")


#: (op, its cases, the seed offset of their inputs); a case is (x shape, w shape, with bias)
CONV_OPS = {"conv2d": (CONV2D_CASES, 0), "conv3d": (CONV3D_CASES, 100)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op_name,case", [(op, i) for op, (cases, _) in CONV_OPS.items() for i in range(len(cases))])
def test_conv(backend, dtype, op_name, case):
    _need_dtype(backend, dtype)
    cases, seed = CONV_OPS[op_name]
    xs, ws, with_bias = cases[case]
    x, w, b = _draw(seed + case, xs, ws, ws[-1:], dtype=dtype)
    b = b if with_bias else None
    args = backend.asarray([x, w] + ([b] if with_bias else []))
    fast, generic = _fast_and_generic(backend, op_name, *args)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    with ops.generic_only():
        abs_sum = getattr(ops, op_name)(np.abs(x64), np.abs(w64), None if b is None else np.abs(b.astype(np.float64)))
    n = int(np.prod(ws[:-1])) + 1  # the products of one output and its bias
    assert_within(fast, generic, two_sums_bound(abs_sum, n, dtype), f"{op_name} {xs} * {ws} [{dtype}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_avg_pool(backend, dtype, case):
    _need_dtype(backend, dtype)
    xs, s = POOL_CASES[case]
    (x,) = _draw(200 + case, xs, dtype=dtype)
    fast, generic = _fast_and_generic(backend, "avg_pool", backend.asarray(x), s)
    with ops.generic_only():
        abs_mean = ops.avg_pool(np.abs(x.astype(np.float64)), s)
    # s*s additions, then a division by s*s that may be done as a multiplication
    # by a rounded reciprocal (two more roundings): n = s*s + 2 terms.
    assert_within(fast, generic, two_sums_bound(abs_mean, s * s + 2, dtype), f"avg_pool {xs} / {s} [{dtype}]")


#: data-movement ops (bit-exact): (their cases, the seed offset of their inputs); a case is (x shape, *arguments)
EXACT_OPS = {"pad_hw": (PAD_CASES, 300), "upsample_nearest": (UPSAMPLE_CASES, 400),
             "adaptive_max_pool": (ADAPTIVE_CASES, 500)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op_name,case", [(op, i) for op, (cases, _) in EXACT_OPS.items() for i in range(len(cases))])
def test_data_movement_is_exact(backend, dtype, op_name, case):
    _need_dtype(backend, dtype)
    cases, seed = EXACT_OPS[op_name]
    xs, *args = cases[case]
    (x,) = _draw(seed + case, xs, dtype=dtype)
    fast, generic = _fast_and_generic(backend, op_name, backend.asarray(x), *args)
    np.testing.assert_array_equal(fast, generic)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stop_gradient_value_exact(backend, dtype):
    _need_dtype(backend, dtype)
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
