"""Kernel-based warping (appendix B, Eqs. 11-12) and the Fig. 3 motion field.

Expected values come from outside the code under test: NumPy slicing (shifts),
scipy's box filter, closed forms (one-hot selections, constant flows), the
reference loops (for the core), finite differences / hand-derived adjoints
(for gradients).

Tolerances
----------
* float64, core vs reference: rtol 1e-10 (the project's contract), atol 1e-12
  for outputs that cancel to ~0, where a relative error means nothing (inputs
  are O(1), so 1e-12 is 1e-12 of the input scale).
* float32, core vs the float64 reference evaluated on the *same* float32 inputs:
  the standard rounding bound of a length-n dot product,
  ``|err| <= gamma_n * sum |a_i b_i|`` with ``gamma_n = n u / (1 - n u)`` and
  ``u = 2**-24``, with ``n`` the number of terms of each sum (``k*k`` taps for
  Eq. 11, ``N`` kernels for Eq. 12) - the bound holds for any summation order
  and with FMA, so it is not tuned to the implementation.
"""

from __future__ import annotations

import array_api_strict as xs
import numpy as np
import pytest
import scipy.ndimage
from _test_helpers import shift, warp_adjoint
from array_api_compat import array_namespace
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference import warping as ref
from trivd_core import warping as core

# ---------------------------------------------------------------------------
# helpers

U32 = 2.0**-24  # unit roundoff of float32


def gamma(n: int, u: float = U32) -> float:
    return n * u / (1 - n * u)


def to_np(x):
    return x if isinstance(x, np.ndarray) else np.from_dlpack(x)


#: (module, array constructor) for every implementation that must satisfy the hand-derived tests.
IMPLS = {
    "reference": (ref, np.asarray),
    "core-numpy": (core, np.asarray),
    "core-strict": (core, xs.asarray),
}
CORE_NS = {"numpy": np.asarray, "strict": xs.asarray}


@pytest.fixture(params=list(IMPLS))
def impl(request):
    return IMPLS[request.param]


@pytest.fixture(params=list(CORE_NS))
def asarray(request):
    return CORE_NS[request.param]


def np_softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def assert_close64(got, want):
    np.testing.assert_allclose(to_np(got), want, rtol=1e-10, atol=1e-12)


def assert_within(got, want, bound):
    got = to_np(got).astype(np.float64)
    err = np.abs(got - want)
    assert np.all(err <= bound), f"max excess {np.max(err - bound):.3e}, max err {err.max():.3e}"


# shapes (B, H, W, C, k): non-square, B=1, C=1, k=1, k=5, k larger than the image
SHAPES = [
    (1, 1, 1, 1, 3),
    (2, 5, 7, 3, 3),
    (1, 8, 3, 4, 5),
    (3, 4, 4, 1, 1),
    (1, 2, 6, 2, 5),
]


# ---------------------------------------------------------------------------
# Eq. 11, hand-derived


@pytest.mark.parametrize("k,shape", [(1, (1, 3, 4, 2)), (3, (2, 5, 7, 3)), (5, (1, 6, 4, 1))])
def test_one_hot_tap_shifts_by_its_offset(impl, k, shape):
    mod, asarray = impl
    rng = np.random.default_rng(0)
    h = rng.standard_normal(shape)
    p = (k - 1) // 2
    for m in range(k):
        for n in range(k):
            W = np.zeros(shape[:3] + (k * k,))
            W[..., m * k + n] = 1.0
            out = to_np(mod.pixelwise_warp(asarray(h), asarray(W), k))
            # output (i, j) reads input (i + m - p, j + n - p); zeros enter from outside
            np.testing.assert_array_equal(out, shift(h, m - p, n - p), err_msg=f"tap (m, n) = ({m}, {n})")


@pytest.mark.parametrize("k,shape", [(3, (2, 5, 7, 3)), (5, (1, 6, 4, 1)), (3, (1, 1, 2, 1))])
def test_uniform_kernel_is_zero_padded_box_average(impl, k, shape):
    mod, asarray = impl
    h = np.random.default_rng(1).standard_normal(shape)
    W = np.full(shape[:3] + (k * k,), 1.0 / (k * k))
    # scipy's uniform filter with constant-0 boundary: mean of the k x k window, zeros outside.
    want = scipy.ndimage.uniform_filter(h, size=(1, k, k, 1), mode="constant", cval=0.0)
    np.testing.assert_allclose(to_np(mod.pixelwise_warp(asarray(h), asarray(W), k)), want, rtol=1e-12, atol=1e-14)


def test_k1_is_identity_and_pointwise_scaling(impl):
    mod, asarray = impl
    rng = np.random.default_rng(2)
    h = rng.standard_normal((2, 3, 5, 2))
    ones = np.ones((2, 3, 5, 1))
    np.testing.assert_array_equal(to_np(mod.pixelwise_warp(asarray(h), asarray(ones), 1)), h)
    s = rng.standard_normal((2, 3, 5, 1))
    np.testing.assert_array_equal(to_np(mod.pixelwise_warp(asarray(h), asarray(s), 1)), s * h)


def test_per_pixel_one_hot_reads_source_at_expected_flow(impl):
    """The sign convention, end to end: a different one-hot tap at every pixel;
    out[i, j] must equal h[i + dy, j + dx] (0 outside) with (dy, dx) = expected_flow(W)."""
    mod, asarray = impl
    k, p = 3, 1
    rng = np.random.default_rng(3)
    B, H, Wd, C = 2, 4, 5, 2
    h = rng.standard_normal((B, H, Wd, C))
    taps = rng.integers(0, k * k, size=(B, H, Wd))
    W = np.zeros((B, H, Wd, k * k))
    for b in range(B):
        for i in range(H):
            for j in range(Wd):
                W[b, i, j, taps[b, i, j]] = 1.0
    out = to_np(mod.pixelwise_warp(asarray(h), asarray(W), k))
    flow = to_np(mod.expected_flow(asarray(W), k))
    np.testing.assert_array_equal(flow[..., 0], taps // k - p)
    np.testing.assert_array_equal(flow[..., 1], taps % k - p)
    for b in range(B):
        for i in range(H):
            for j in range(Wd):
                y, x = i + int(flow[b, i, j, 0]), j + int(flow[b, i, j, 1])
                want = h[b, y, x] if (0 <= y < H and 0 <= x < Wd) else np.zeros(C)
                np.testing.assert_array_equal(out[b, i, j], want)


# ---------------------------------------------------------------------------
# Eq. 12, hand-derived


@pytest.mark.parametrize("B,H,Wd,kk,N", [(2, 3, 4, 9, 9), (1, 1, 5, 25, 3), (1, 2, 2, 1, 1)])
def test_factorized_one_hot_selection_picks_the_kernel(impl, B, H, Wd, kk, N):
    mod, asarray = impl
    rng = np.random.default_rng(4)
    w = rng.standard_normal((B, kk, N))
    sel = rng.integers(0, N, size=(B, H, Wd))
    S = np.eye(N)[sel]  # (B, H, W, N) one-hot on sel
    out = to_np(mod.factorized_kernels(asarray(w), asarray(S)))
    assert out.shape == (B, H, Wd, kk)
    for b in range(B):
        for i in range(H):
            for j in range(Wd):
                np.testing.assert_array_equal(out[b, i, j], w[b, :, sel[b, i, j]])


def test_factorized_closed_form_mixture(impl):
    mod, asarray = impl
    # N = 2 kernels, S = (0.25, 0.75) everywhere: W = 0.25 w[:, 0] + 0.75 w[:, 1]
    w = np.zeros((1, 9, 2))
    w[0, 4, 0] = 1.0  # identity tap
    w[0, 5, 1] = 1.0  # tap (1, 2)
    S = np.broadcast_to(np.array([0.25, 0.75]), (1, 2, 3, 2)).copy()
    out = to_np(mod.factorized_kernels(asarray(w), asarray(S)))
    want = np.zeros((1, 2, 3, 9))
    want[..., 4], want[..., 5] = 0.25, 0.75
    np.testing.assert_array_equal(out, want)


# ---------------------------------------------------------------------------
# expected_flow and combine_flows, hand-derived


@pytest.mark.parametrize("k", [1, 3, 5])
def test_expected_flow_of_one_hot_is_tap_displacement(impl, k):
    mod, asarray = impl
    p = (k - 1) // 2
    for m in range(k):
        for n in range(k):
            W = np.zeros((1, 2, 3, k * k))
            W[..., m * k + n] = 1.0
            flow = to_np(mod.expected_flow(asarray(W), k))
            assert flow.shape == (1, 2, 3, 2)
            np.testing.assert_array_equal(flow[..., 0], m - p)
            np.testing.assert_array_equal(flow[..., 1], n - p)


def test_expected_flow_mixture_and_uniform(impl):
    mod, asarray = impl
    W = np.zeros((2, 1, 2, 9))
    W[0, :, :, 0] = 0.5  # tap (0, 0): (-1, -1)
    W[0, :, :, 7] = 0.5  # tap (2, 1): (+1,  0)
    W[1] = 1.0 / 9  # uniform: symmetric, zero mean
    flow = to_np(mod.expected_flow(asarray(W), 3))
    np.testing.assert_array_equal(flow[0], np.broadcast_to([0.0, -0.5], (1, 2, 2)))
    np.testing.assert_allclose(flow[1], 0.0, atol=1e-15)


def test_combine_two_constant_fields(impl):
    mod, asarray = impl
    a = np.array([0.5, -1.25])
    b = np.array([-2.0, 3.0])
    coarse = np.broadcast_to(a, (2, 2, 3, 2)).copy()
    fine = np.broadcast_to(b, (2, 4, 6, 2)).copy()  # f = 2
    out = to_np(mod.combine_flows([asarray(coarse), asarray(fine)]))
    np.testing.assert_array_equal(out, np.broadcast_to(2 * a + b, (2, 4, 6, 2)))


def test_combine_three_levels_and_factor_one(impl):
    mod, asarray = impl
    F0 = np.broadcast_to([1.0, -1.0], (1, 1, 2, 2)).copy()
    F1 = np.broadcast_to([0.5, 0.25], (1, 2, 4, 2)).copy()  # f = 2
    F2 = np.broadcast_to([-0.5, 2.0], (1, 6, 12, 2)).copy()  # f = 3
    out = to_np(mod.combine_flows((asarray(F0), asarray(F1), asarray(F2))))
    want = 3 * (2 * np.array([1.0, -1.0]) + [0.5, 0.25]) + [-0.5, 2.0]
    np.testing.assert_array_equal(out, np.broadcast_to(want, (1, 6, 12, 2)))
    # f = 1: plain sum
    out1 = to_np(mod.combine_flows([asarray(F1), asarray(F1)]))
    np.testing.assert_array_equal(out1, 2 * F1)


def test_combine_upsamples_by_nearest_neighbour(impl):
    mod, asarray = impl
    rng = np.random.default_rng(5)
    coarse = rng.standard_normal((2, 2, 3, 2))
    fine = rng.standard_normal((2, 6, 9, 2))  # f = 3
    out = to_np(mod.combine_flows([asarray(coarse), asarray(fine)]))
    up = np.repeat(np.repeat(coarse, 3, axis=1), 3, axis=2)
    np.testing.assert_allclose(out, 3 * up + fine, rtol=1e-15, atol=0)


def test_combine_single_field_unchanged(impl):
    mod, asarray = impl
    F = asarray(np.random.default_rng(6).standard_normal((1, 3, 2, 2)))
    out = mod.combine_flows([F])
    np.testing.assert_array_equal(to_np(out), to_np(F))
    if mod is core:
        assert out is F


# ---------------------------------------------------------------------------
# core vs reference


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_core_matches_reference_float64(asarray, shape):
    B, H, Wd, C, k = shape
    rng = np.random.default_rng(10)
    h = rng.uniform(-1, 1, (B, H, Wd, C))
    W = rng.standard_normal((B, H, Wd, k * k))
    out = core.pixelwise_warp(asarray(h), asarray(W), k)
    assert array_namespace(out) is array_namespace(asarray(h))
    assert out.shape == (B, H, Wd, C)
    assert_close64(out, ref.pixelwise_warp(h, W, k))
    assert_close64(core.expected_flow(asarray(W), k), ref.expected_flow(W, k))
    N = max(1, C)
    w = rng.standard_normal((B, k * k, N))
    S = rng.standard_normal((B, H, Wd, N))
    assert_close64(core.factorized_kernels(asarray(w), asarray(S)), ref.factorized_kernels(w, S))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_core_matches_reference_float32(asarray, shape):
    B, H, Wd, C, k = shape
    rng = np.random.default_rng(11)
    h = rng.uniform(-1, 1, (B, H, Wd, C)).astype(np.float32)
    W = rng.standard_normal((B, H, Wd, k * k)).astype(np.float32)
    h64, W64 = h.astype(np.float64), W.astype(np.float64)
    out = core.pixelwise_warp(asarray(h), asarray(W), k)
    assert to_np(out).dtype == np.float32
    assert_within(out, ref.pixelwise_warp(h64, W64, k), gamma(k * k) * ref.pixelwise_warp(np.abs(h64), np.abs(W64), k))
    # expected flow: k*k terms, each |W_q| * |d_q| with |d_q| <= p (the displacements are exact)
    p = (k - 1) // 2
    flow = core.expected_flow(asarray(W), k)
    assert to_np(flow).dtype == np.float32
    assert_within(flow, ref.expected_flow(W64, k), gamma(k * k) * p * np.abs(W64).sum(-1, keepdims=True))
    N = 3
    w = rng.standard_normal((B, k * k, N)).astype(np.float32)
    S = rng.standard_normal((B, H, Wd, N)).astype(np.float32)
    w64, S64 = w.astype(np.float64), S.astype(np.float64)
    Wf = core.factorized_kernels(asarray(w), asarray(S))
    assert to_np(Wf).dtype == np.float32
    assert_within(Wf, ref.factorized_kernels(w64, S64), gamma(N) * ref.factorized_kernels(np.abs(w64), np.abs(S64)))


@pytest.mark.parametrize("sizes", [[(1, 1), (2, 2)], [(2, 3), (4, 6), (12, 18)], [(3, 2), (3, 2)], [(1, 4), (5, 20)]])
@pytest.mark.parametrize("B", [1, 2])
def test_combine_core_matches_reference(asarray, sizes, B):
    rng = np.random.default_rng(12)
    fields = [rng.uniform(-2, 2, (B, H, Wd, 2)) for H, Wd in sizes]
    assert_close64(core.combine_flows([asarray(F) for F in fields]), ref.combine_flows(fields))
    # float32: each level rounds once for f * acc and once for + F, so L-1 levels give gamma_{2(L-1)}
    f32 = [F.astype(np.float32) for F in fields]
    f64 = [F.astype(np.float64) for F in f32]
    got = core.combine_flows([asarray(F) for F in f32])
    assert to_np(got).dtype == np.float32
    bound = gamma(2 * (len(sizes) - 1)) * ref.combine_flows([np.abs(F) for F in f64])
    assert_within(got, ref.combine_flows(f64), bound)


# ---------------------------------------------------------------------------
# properties


@st.composite
def warp_inputs(draw):
    B = draw(st.integers(1, 2))
    H = draw(st.integers(1, 6))
    Wd = draw(st.integers(1, 6))
    C = draw(st.integers(1, 3))
    k = draw(st.sampled_from([1, 3, 5]))
    elems = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)
    h = draw(hnp.arrays(np.float64, (B, H, Wd, C), elements=elems))
    logits = draw(hnp.arrays(np.float64, (B, H, Wd, k * k), elements=elems))
    return h, np_softmax(logits, axis=-1), k


@settings(max_examples=25, deadline=None)
@given(warp_inputs(), st.sampled_from(["reference", "core-numpy", "core-strict"]))
def test_softmax_warp_stays_within_neighbourhood_range(inputs, which):
    h, W, k = inputs
    mod, asarray = IMPLS[which]
    p = (k - 1) // 2
    out = to_np(mod.pixelwise_warp(asarray(h), asarray(W), k))
    hp = np.pad(h, ((0, 0), (p, p), (p, p), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(hp, (k, k), axis=(1, 2))  # (B, H, W, C, k, k)
    lo, hi = windows.min(axis=(-2, -1)), windows.max(axis=(-2, -1))
    # a convex combination lies in [min, max]; rounding of a 25-term sum of |values| <= 10 is < 1e-13
    assert np.all(out >= lo - 1e-12) and np.all(out <= hi + 1e-12)


@settings(max_examples=25, deadline=None)
@given(st.data(), st.sampled_from(["reference", "core-numpy", "core-strict"]))
def test_factorized_softmax_rows_are_distributions(data, which):
    mod, asarray = IMPLS[which]
    B = data.draw(st.integers(1, 2))
    H = data.draw(st.integers(1, 5))
    Wd = data.draw(st.integers(1, 5))
    kk = data.draw(st.sampled_from([1, 9, 25]))
    N = data.draw(st.integers(1, 9))
    elems = st.floats(-20, 20, allow_nan=False, allow_infinity=False, width=64)
    w = np_softmax(data.draw(hnp.arrays(np.float64, (B, kk, N), elements=elems)), axis=1)  # over the taps
    S = np_softmax(data.draw(hnp.arrays(np.float64, (B, H, Wd, N), elements=elems)), axis=-1)  # over N
    W = to_np(mod.factorized_kernels(asarray(w), asarray(S)))
    assert np.all(W >= 0)
    np.testing.assert_allclose(W.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------
# autodiff (jax, torch): gradients vs the hand-derived adjoint of Eq. 11


@pytest.mark.parametrize("k,shape", [(3, (2, 4, 5, 3)), (5, (1, 3, 6, 1))])
def test_torch_gradients(k, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(20)
    h = rng.standard_normal(shape)
    W = rng.standard_normal(shape[:3] + (k * k,))
    g = rng.standard_normal(shape)
    ht = torch.tensor(h, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    out = core.pixelwise_warp(ht, Wt, k)
    assert isinstance(out, torch.Tensor)
    assert_close64(out.detach(), ref.pixelwise_warp(h, W, k))
    (out * torch.tensor(g)).sum().backward()
    dh, dW = warp_adjoint(h, W, g, k)
    np.testing.assert_allclose(ht.grad.numpy(), dh, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Wt.grad.numpy(), dW, rtol=1e-10, atol=1e-12)


def test_torch_gradcheck_all_functions():
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, dtype=torch.float64, generator=gen, requires_grad=True)

    # finite differences vs autograd, float64
    assert torch.autograd.gradcheck(lambda w, S: core.factorized_kernels(w, S), (r(2, 9, 3), r(2, 3, 2, 3)))
    assert torch.autograd.gradcheck(lambda W: core.expected_flow(W, 3), (r(1, 2, 3, 9),))
    assert torch.autograd.gradcheck(lambda a, b: core.combine_flows([a, b]), (r(1, 2, 1, 2), r(1, 4, 2, 2)))


def test_jax_gradients_and_jit():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    k, shape = 3, (1, 4, 3, 2)
    rng = np.random.default_rng(21)
    h = rng.standard_normal(shape).astype(np.float32)
    W = rng.standard_normal(shape[:3] + (k * k,)).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)

    def loss(hj, Wj):
        return jnp.sum(core.pixelwise_warp(hj, Wj, k) * g)

    dh, dW = jax.grad(loss, argnums=(0, 1))(jnp.asarray(h), jnp.asarray(W))
    want_dh, want_dW = warp_adjoint(h.astype(np.float64), W.astype(np.float64), g.astype(np.float64), k)
    # float32: each gradient entry is a sum of at most k*k (dh) or C (dW) products of O(1) values
    np.testing.assert_allclose(np.asarray(dh), want_dh, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dW), want_dW, rtol=1e-5, atol=1e-5)
    jitted = jax.jit(lambda a, b: core.pixelwise_warp(a, b, k))
    out = np.asarray(jitted(jnp.asarray(h), jnp.asarray(W)))
    h64, W64 = h.astype(np.float64), W.astype(np.float64)
    assert_within(out, ref.pixelwise_warp(h64, W64, k), gamma(k * k) * ref.pixelwise_warp(np.abs(h64), np.abs(W64), k))


# ---------------------------------------------------------------------------
# errors


def _f(*shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


ERRORS = [
    # (function, args, exception, pattern naming function and argument)
    ("pixelwise_warp", (_f(4, 4, 1), _f(1, 4, 4, 9)), ValueError, r"pixelwise_warp\(\).*'h'"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 1, 4, 4, 9)), ValueError, r"pixelwise_warp\(\).*'W'"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 4, 4, 8)), ValueError, r"pixelwise_warp\(\).*'W'.*k\*k = 9"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 4, 4, 25), 3), ValueError, r"pixelwise_warp\(\).*'W'.*k\*k = 9"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 4, 4, 4), 2), ValueError, r"pixelwise_warp\(\).*'k'.*odd"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 4, 4, 1), 0), ValueError, r"pixelwise_warp\(\).*'k'"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 4, 4, 9), 3.0), TypeError, r"pixelwise_warp\(\).*'k'"),
    ("pixelwise_warp", (_f(2, 4, 4, 1), _f(1, 4, 4, 9)), ValueError, r"pixelwise_warp\(\).*'W'"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 3, 4, 9)), ValueError, r"pixelwise_warp\(\).*'W'"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 4, 5, 9)), ValueError, r"pixelwise_warp\(\).*'W'"),
    ("pixelwise_warp", (_f(1, 4, 4, 1, dtype=np.int64), _f(1, 4, 4, 9)), TypeError, r"pixelwise_warp\(\).*'h'"),
    ("pixelwise_warp", (_f(1, 4, 4, 1), _f(1, 4, 4, 9, dtype=np.int32)), TypeError, r"pixelwise_warp\(\).*'W'"),
    (
        "pixelwise_warp",
        (_f(1, 4, 4, 1), _f(1, 4, 4, 9, dtype=np.float32)),
        TypeError,
        r"pixelwise_warp\(\).*dtype.*'W'",
    ),
    ("factorized_kernels", (_f(9, 3), _f(1, 4, 4, 3)), ValueError, r"factorized_kernels\(\).*'w'"),
    ("factorized_kernels", (_f(1, 8, 3), _f(1, 4, 4, 3)), ValueError, r"factorized_kernels\(\).*'w'.*odd k"),
    ("factorized_kernels", (_f(1, 4, 3), _f(1, 4, 4, 3)), ValueError, r"factorized_kernels\(\).*'w'.*odd k"),
    ("factorized_kernels", (_f(1, 9, 3), _f(1, 4, 4)), ValueError, r"factorized_kernels\(\).*'S'"),
    ("factorized_kernels", (_f(1, 9, 3), _f(1, 4, 4, 2)), ValueError, r"factorized_kernels\(\).*'S'"),
    ("factorized_kernels", (_f(2, 9, 3), _f(1, 4, 4, 3)), ValueError, r"factorized_kernels\(\).*'S'"),
    ("factorized_kernels", (_f(1, 9, 3), _f(1, 4, 4, 3, dtype=np.int64)), TypeError, r"factorized_kernels\(\).*'S'"),
    (
        "factorized_kernels",
        (_f(1, 9, 3, dtype=np.float32), _f(1, 4, 4, 3)),
        TypeError,
        r"factorized_kernels\(\).*dtype",
    ),
    ("expected_flow", (_f(4, 4, 9),), ValueError, r"expected_flow\(\).*'W'"),
    ("expected_flow", (_f(1, 4, 4, 8),), ValueError, r"expected_flow\(\).*'W'.*k\*k = 9"),
    ("expected_flow", (_f(1, 4, 4, 9), 5), ValueError, r"expected_flow\(\).*'W'.*k\*k = 25"),
    ("expected_flow", (_f(1, 4, 4, 16), 4), ValueError, r"expected_flow\(\).*'k'"),
    ("expected_flow", (_f(1, 4, 4, 9, dtype=np.int64),), TypeError, r"expected_flow\(\).*'W'"),
    ("combine_flows", (_f(1, 2, 2, 2),), TypeError, r"combine_flows\(\).*'coarse_to_fine'"),
    ("combine_flows", ([],), ValueError, r"combine_flows\(\).*'coarse_to_fine'"),
    ("combine_flows", ([_f(1, 2, 2, 3)],), ValueError, r"combine_flows\(\).*'coarse_to_fine\[0\]'"),
    ("combine_flows", ([_f(1, 2, 2, 2), _f(1, 4, 4)],), ValueError, r"combine_flows\(\).*'coarse_to_fine\[1\]'"),
    (
        "combine_flows",
        ([_f(1, 2, 3, 2), _f(1, 3, 4, 2)],),
        ValueError,
        r"combine_flows\(\).*'coarse_to_fine\[1\]'.*integer",
    ),
    (
        "combine_flows",
        ([_f(1, 2, 2, 2), _f(1, 4, 6, 2)],),
        ValueError,
        r"combine_flows\(\).*'coarse_to_fine\[1\]'.*one factor",
    ),
    (
        "combine_flows",
        ([_f(1, 4, 4, 2), _f(1, 2, 2, 2)],),
        ValueError,
        r"combine_flows\(\).*'coarse_to_fine\[1\]'.*coarse to fine",
    ),
    ("combine_flows", ([_f(1, 2, 2, 2), _f(2, 4, 4, 2)],), ValueError, r"combine_flows\(\).*'coarse_to_fine\[1\]'"),
    ("combine_flows", ([_f(1, 2, 2, 2), _f(1, 4, 4, 2, dtype=np.float32)],), TypeError, r"combine_flows\(\).*dtype"),
    ("combine_flows", ([_f(1, 2, 2, 2, dtype=np.int64)],), TypeError, r"combine_flows\(\).*'coarse_to_fine\[0\]'"),
]


@pytest.mark.parametrize("which", ["reference", "core"])
@pytest.mark.parametrize("fn,args,exc,pattern", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_function_and_argument(which, fn, args, exc, pattern):
    mod = ref if which == "reference" else core
    with pytest.raises(exc, match=pattern):
        getattr(mod, fn)(*args)


def test_core_errors_on_strict_arrays_and_mixed_namespaces():
    with pytest.raises(ValueError, match=r"pixelwise_warp\(\).*'W'"):
        core.pixelwise_warp(xs.zeros((1, 4, 4, 1)), xs.zeros((1, 4, 4, 8)))
    with pytest.raises(TypeError, match=r"pixelwise_warp\(\).*'h'"):
        core.pixelwise_warp(xs.zeros((1, 4, 4, 1), dtype=xs.int64), xs.zeros((1, 4, 4, 9)))
    with pytest.raises(TypeError, match=r"pixelwise_warp\(\).*namespace"):
        core.pixelwise_warp(np.zeros((1, 4, 4, 1)), xs.zeros((1, 4, 4, 9)))
    with pytest.raises(TypeError, match=r"pixelwise_warp\(\).*'h'.*array"):
        core.pixelwise_warp([[[[0.0]]]], np.zeros((1, 1, 1, 9)))
    with pytest.raises(TypeError, match=r"pixelwise_warp\(\).*'k'"):
        core.pixelwise_warp(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), True)
