"""``ops.warp_taps`` (the sum of Eq. 11 inside ``pixelwise_warp``): each backend's fast path, values and gradients.

Notation: ``h (B, H, W, C)``, ``W (B, H, W, k*k)``, tap ``q = m*k + n`` reads ``h`` at
``(i + m - p, j + n - p)``, ``p = (k-1)/2``, zero outside the map;
``out = warp_taps(h, W, k)`` and the checked scalar ``L = sum(out * G)`` with a fixed
random cotangent ``G``, so ``dL/dout = G`` exactly.

Expected values: the generic array-API code (``ops.generic_only()``) on the same
backend arrays and the float64 reference (``reference.warping.pixelwise_warp``);
gradients: the generic code under the backend's autodiff and the adjoint of Eq. 11
written with NumPy slicing (``dh = sum_q shift_{-q}(W_q * G)``,
``dW_q = sum_c G * shift_q(h)``).

Tolerances (derived, not tuned; see ``_backend_bounds``): every output and
gradient element is one sum whose terms the implementations add in different
orders - ``k*k`` terms for ``out`` and ``dh``, ``C`` terms for ``dW`` - so two
evaluations differ by at most ``2 * gamma_n * sum |terms|``, with ``sum |terms|``
evaluated in float64 NumPy on the absolute values.
"""

from __future__ import annotations

import numpy as np
import pytest
from _backend_bounds import assert_within, two_sums_bound
from _test_helpers import warp_adjoint
from array_api_compat import array_namespace

from reference import warping as ref
from trivd_core import ops, warping

DTYPES = ("float32", "float64")

# (h shape, k): non-square, B=1 and C=1 with a kernel larger than the map, k=1 (pointwise), k=5,
# a 7x7 kernel on a 2x2 map (taps that read only padding), and a map of one pixel.
CASES = [
    ((2, 5, 7, 3), 3),
    ((1, 3, 2, 1), 5),
    ((2, 3, 4, 2), 1),
    ((3, 6, 5, 4), 5),
    ((1, 2, 2, 2), 7),
    ((2, 1, 1, 3), 3),
]


def _draw(case, dtype):
    shape, k = CASES[case]
    rng = np.random.default_rng(700 + case)
    h, W, G = (rng.uniform(-1.0, 1.0, size=s).astype(dtype) for s in (shape, shape[:3] + (k * k,), shape))
    return h, W, G, k


def _skip_float64(backend, dtype):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")


def _bounds(h, W, G, k, dtype):
    """Elementwise bounds for (out, dh, dW) between two evaluations of the same sums."""
    a = [np.abs(x.astype(np.float64)) for x in (h, W, G)]
    out_abs = ref.pixelwise_warp(a[0], a[1], k)
    dh_abs, dW_abs = warp_adjoint(a[0], a[1], a[2], k)
    return (two_sums_bound(out_abs, k * k, dtype), two_sums_bound(dh_abs, k * k, dtype),
            two_sums_bound(dW_abs, h.shape[-1], dtype))


@pytest.fixture(params=[(dtype, case) for case in range(len(CASES)) for dtype in DTYPES],
                ids=lambda p: f"{p[1]}-{p[0]}")
def warp_case(request, backend):
    """``(h, W, G, k, dtype)`` of one case of :data:`CASES` in one dtype (float64 skipped where unsupported)."""
    dtype, case = request.param
    _skip_float64(backend, dtype)
    return (*_draw(case, dtype), dtype)


def test_fast_path_values(backend, warp_case):
    h, W, G, k, dtype = warp_case
    xp = backend.namespace()
    fast_fn = ops.fast_paths(xp).get("warp_taps")
    assert fast_fn is not None and fast_fn.__module__.startswith("backends."), fast_fn
    hb, Wb = backend.asarray([h, W])
    fast = ops.warp_taps(hb, Wb, k)
    with ops.generic_only():
        generic = ops.warp_taps(hb, Wb, k)
    assert array_namespace(fast) is array_namespace(hb)
    assert fast.dtype == hb.dtype and tuple(fast.shape) == h.shape
    bound = _bounds(h, W, G, k, dtype)[0]
    what = f"warp_taps {h.shape} k={k} [{dtype}]"
    assert_within(backend.to_numpy(fast), backend.to_numpy(generic), bound, what + " fast vs generic")
    expected = ref.pixelwise_warp(h.astype(np.float64), W.astype(np.float64), k)
    assert_within(backend.to_numpy(fast), expected, bound, what + " fast vs reference")
    # pixelwise_warp is the public form of the same sum
    np.testing.assert_array_equal(backend.to_numpy(warping.pixelwise_warp(hb, Wb, k)), backend.to_numpy(fast))


def test_fast_path_gradients(backend, warp_case):
    h, W, G, k, dtype = warp_case
    xp = backend.namespace()
    hb, Wb, Gb = backend.asarray([h, W, G])

    def loss(h, W):
        return xp.sum(ops.warp_taps(h, W, k) * Gb)

    grad = backend.value_and_grad(loss, argnums=(0, 1))
    _, (dh, dW) = grad(hb, Wb)
    with ops.generic_only():
        _, (dh_g, dW_g) = grad(hb, Wb)
    _, dh_bound, dW_bound = _bounds(h, W, G, k, dtype)
    dh_ref, dW_ref = warp_adjoint(*(x.astype(np.float64) for x in (h, W, G)), k)
    what = f"warp_taps {h.shape} k={k} [{dtype}]"
    for name, got, generic, expected, bound in (("dh", dh, dh_g, dh_ref, dh_bound), ("dW", dW, dW_g, dW_ref, dW_bound)):
        got = backend.to_numpy(got)
        assert got.dtype == np.dtype(dtype), f"{what}: {name} dtype {got.dtype}"
        assert_within(got, backend.to_numpy(generic), bound, f"{what} {name} fast vs generic")
        assert_within(got, expected, bound, f"{what} {name} fast vs adjoint")


# ---------------------------------------------------------------------------
# torch: the hand-written forward/backward (backends/torch/_fast.py)


@pytest.fixture
def torch_backend():
    from conftest import load_backend

    be = load_backend("torch")
    be.activate()
    return be


def _torch_inputs(torch, shape, k, dtype=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    dtype = dtype or torch.float64
    return (torch.randn(*shape, dtype=dtype, generator=g), torch.randn(*shape[:3], k * k, dtype=dtype, generator=g),
            torch.randn(*shape, dtype=dtype, generator=g))


def _grads(torch, h, W, G, k, generic=False, need=(True, True)):
    h = h.detach().requires_grad_(need[0])
    W = W.detach().requires_grad_(need[1])
    if generic:
        with ops.generic_only():
            out = ops.warp_taps(h, W, k)
    else:
        out = ops.warp_taps(h, W, k)
    (out * G).sum().backward()
    return out.detach(), h.grad, W.grad


@pytest.mark.parametrize("block_bytes", [1, 2 * 3 * 4 * 2 * 8])  # 1 sample; 2 float64 (3, 4, 2) samples
def test_torch_sample_blocks_agree_with_one_block(torch_backend, monkeypatch, block_bytes):
    """Blocks of 1 sample and of 2 samples (5 = 2 + 2 + 1) give the generic values and gradients."""
    torch = pytest.importorskip("torch")
    from backends.torch import _fast

    h, W, G = _torch_inputs(torch, (5, 3, 4, 2), 3)
    monkeypatch.setattr(_fast, "_WARP_BLOCK_BYTES", block_bytes)
    assert len(_fast._sample_blocks(h)) == (5 if block_bytes == 1 else 3)
    for a, b in zip(_grads(torch, h, W, G, 3), _grads(torch, h, W, G, 3, generic=True)):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)  # float64, 9-term sums of O(1) values


@pytest.mark.parametrize("need", [(True, False), (False, True)])
def test_torch_gradient_only_for_inputs_that_need_it(torch_backend, need):
    torch = pytest.importorskip("torch")
    h, W, G = _torch_inputs(torch, (2, 4, 3, 2), 5, seed=1)
    fast = _grads(torch, h, W, G, 5, need=need)
    generic = _grads(torch, h, W, G, 5, generic=True, need=need)
    for i, flag in enumerate(need):
        if flag:
            torch.testing.assert_close(fast[1 + i], generic[1 + i], rtol=1e-13, atol=1e-13)
        else:
            assert fast[1 + i] is None


def test_torch_non_contiguous_inputs_and_broadcast_cotangent(torch_backend):
    """A channel slice of a larger map, a transposed ``W``, and ``out.sum()`` (a stride-0 cotangent)."""
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(2)
    h = torch.randn(2, 5, 6, 6, dtype=torch.float64, generator=g)[..., ::2]
    W = torch.randn(2, 6, 5, 9, dtype=torch.float64, generator=g).transpose(1, 2)
    assert not h.is_contiguous() and not W.is_contiguous()
    results = []
    for generic in (False, True):
        hh, WW = h.detach().requires_grad_(), W.detach().requires_grad_()
        if generic:
            with ops.generic_only():
                out = ops.warp_taps(hh, WW, 3)
        else:
            out = ops.warp_taps(hh, WW, 3)
        out.sum().backward()
        results.append((out.detach(), hh.grad, WW.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)


def test_torch_gradcheck_and_second_derivatives(torch_backend):
    """Finite differences vs autograd (float64), first and second order (``create_graph`` backward)."""
    torch = pytest.importorskip("torch")
    h, W, _ = _torch_inputs(torch, (2, 3, 4, 2), 3, seed=3)
    h.requires_grad_()
    W.requires_grad_()

    def f(h, W):
        return ops.warp_taps(h, W, 3)

    assert ops.fast_paths(torch_backend.namespace())["warp_taps"].__module__ == "backends.torch._fast"
    assert torch.autograd.gradcheck(f, (h, W))
    assert torch.autograd.gradgradcheck(f, (h, W))


def test_warp_taps_errors_name_the_argument():
    h = np.zeros((1, 3, 3, 2))
    with pytest.raises(ValueError, match=r"warp_taps\(\): argument 'W' .*size 9 on axis 3"):
        ops.warp_taps(h, np.zeros((1, 3, 3, 4)), 3)
    with pytest.raises(ValueError, match=r"warp_taps\(\): argument 'k' must be an odd positive int"):
        ops.warp_taps(h, np.zeros((1, 3, 3, 4)), 2)
    with pytest.raises(TypeError, match=r"warp_taps\(\): arguments must share one dtype"):
        ops.warp_taps(h, np.zeros((1, 3, 3, 9), dtype=np.float32), 3)
