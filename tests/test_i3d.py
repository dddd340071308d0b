"""Tests of the I3D feature network and the FVD / IS pipeline.

trivd_core/i3d.py, reference/i3d.py, trivd_core/fvd.py, the I3D fast paths of
backends/{jax,torch}/_fast.py and backends/torch/i3d_script.py.

Expected values come from hand-derived small cases (SAME padding tables, sums of
ones, max-pools of ramps, bilinear resizes of constants, of two-pixel images and
of linear ramps), from the loop-based reference, and from closed forms of the
Frechet distance and the Inception Score -- never from the code under test.  No
real I3D weights are needed: the network runs with random weights on small
inputs (the global mean pool makes any T, H, W >= 1 valid).

Tolerances
----------
* float64, core (or a fast path) vs reference: ``<= 1e-10`` relative to the largest
  magnitude (project rule); the observed error is ~1e-15 (same sums, other order).
* max-pool: exact in every dtype (it only compares values).
* float32 fast path vs generic convolution: elementwise ``2 * K * eps32 * S`` with
  ``K`` the number of products per output (+1 for the bias) and ``S`` the same
  convolution of ``|x|`` and ``|w|`` (+ ``|b|``) in float64: the classical bound
  ``gamma_K * S`` on the rounding of a K-term float32 sum, once for each of the two
  summation orders.
* float32 fast path vs generic resize: ``4 * (n + 1) * eps32 * max|x|`` with ``n`` the
  larger input side.  JAX and torch compute the half-pixel source coordinate
  ``(i + 1/2) n / n' - 1/2`` in float32, an absolute error of about ``n * eps32`` in
  the interpolation weight, which moves the output by that times ``|x1 - x0| <=
  2 max|x|``; the interpolation itself adds a few roundings.
* float32 I3D logits (NumPy, JAX, torch) vs the float64 NumPy core: ``1e-4`` relative
  to the largest logit.  About 20 layers in sequence, each a sum of up to
  ``27 * 832 ~ 2e4`` float32 products whose rounding grows like ``sqrt(K) * eps32 ~
  1e-5`` relative; batch norm divides by ``sqrt(var + 1e-3) >= 0.7`` (random
  ``moving_variance >= 0.5``).  Observed ~1e-6; a structural error (wrong tap,
  padding side or concat order) changes the logits by O(1e-1).
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import array_api_strict as xps  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import backends  # noqa: E402
from reference import i3d as ri  # noqa: E402
from trivd_core import fvd as tfvd  # noqa: E402
from trivd_core import i3d, ops  # noqa: E402
from trivd_core.metrics import FewSamplesWarning  # noqa: E402
from trivd_core.tree import tree_map  # noqa: E402

RTOL64 = 1e-10
RTOL_LOGITS32 = 1e-4
EPS32 = float(np.finfo(np.float32).eps)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def params64():
    return i3d.init_i3d(np.random.default_rng(7), dtype=np.float64)


@pytest.fixture(scope="module")
def params32(params64):
    return tree_map(lambda a: a.astype(np.float32), params64)  # the same weights, rounded


def uniform(seed, shape, dtype=np.float64):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape).astype(dtype)


# ---------------------------------------------------------------------------
# TF SAME padding and the primitives, hand-derived


@pytest.mark.parametrize(
    ("n", "k", "s", "want"),
    [
        # n_out = ceil(n/s); total = (n_out-1)*s + k - n; before = total//2, after = rest
        (224, 7, 2, (2, 3, 112)),  # Conv3d_1a_7x7 on 224 px: 111*2+7-224 = 5
        (16, 7, 2, (2, 3, 8)),  # Conv3d_1a_7x7 on 16 frames: 7*2+7-16 = 5
        (112, 3, 2, (0, 1, 56)),  # MaxPool3d_2a on 112 px: 55*2+3-112 = 1
        (5, 3, 2, (1, 1, 3)),  # 2*2+3-5 = 2
        (4, 3, 2, (0, 1, 2)),  # 1*2+3-4 = 1
        (7, 2, 2, (0, 1, 4)),  # MaxPool3d_5a on 7: 3*2+2-7 = 1
        (8, 2, 2, (0, 0, 4)),  # 3*2+2-8 = 0
        (4, 1, 2, (0, 0, 2)),  # 1*2+1-4 = -1 -> 0
        (5, 3, 1, (1, 1, 5)),  # stride 1, odd kernel: symmetric (k-1)/2
        (1, 7, 2, (3, 3, 1)),  # 0*2+7-1 = 6
    ],
)
def test_same_padding_table(n, k, s, want):
    assert i3d.same_padding(n, k, s) == want


@pytest.mark.parametrize(("n", "want"), [(4, [3.0, 2.0]), (5, [2.0, 3.0, 2.0]), (1, [1.0]), (2, [2.0])])
def test_strided_conv_of_ones_counts_real_taps(n, want):
    # Kernel 3, stride 2 along W only; each output counts the non-padding inputs in its window.
    # n=4: pads (0, 1): windows {0,1,2} and {2,3,pad} -> 3, 2 (a symmetric pad would give 2, 3).
    # n=5: pads (1, 1): {pad,0,1}, {1,2,3}, {3,4,pad} -> 2, 3, 2.  n=1: pads (1, 1).  n=2: pads (0, 1).
    x = np.ones((1, 1, 1, n, 1))
    w = np.ones((1, 1, 3, 1, 1))
    for mod in (i3d, ri):
        y = mod.conv3d_strided(x, w, stride=(1, 1, 2))
        np.testing.assert_array_equal(y[0, 0, 0, :, 0], want)


def test_strided_conv_bias_and_channels_by_hand():
    # 1x1x1 kernel, stride 2: y = x[::2, ::2, ::2] @ w + b.
    x = np.arange(2 * 3 * 4 * 5 * 2, dtype=np.float64).reshape(2, 3, 4, 5, 2)
    w = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]]).reshape(1, 1, 1, 2, 3)
    b = np.array([0.5, -0.5, 1.0])
    want = np.einsum("btijc,co->btijo", x[:, ::2, ::2, ::2, :], w[0, 0, 0]) + b
    np.testing.assert_array_equal(i3d.conv3d_strided(x, w, b, stride=2), want)


def test_max_pool_of_a_ramp():
    # x[t, i, j] = 100 t + 10 i + j grows along every axis, so a window's max sits at its
    # last real position: window 3 stride 2 on 5 (pads 1, 1) ends at min(2o + 1, 4); on 4 (pads
    # 0, 1) at min(2o + 2, 3); window 2 stride 2 on 3 (pads 0, 1) at min(2o + 1, 2).
    T, H, W = 3, 5, 4
    t, i, j = np.meshgrid(np.arange(T), np.arange(H), np.arange(W), indexing="ij")
    x = (100.0 * t + 10.0 * i + j)[None, ..., None]
    y = i3d.max_pool3d(x, (2, 3, 3), (2, 2, 2))
    ot, oi, oj = np.meshgrid(np.arange(2), np.arange(3), np.arange(2), indexing="ij")
    want = 100.0 * np.minimum(2 * ot + 1, 2) + 10.0 * np.minimum(2 * oi + 1, 4) + np.minimum(2 * oj + 2, 3)
    np.testing.assert_array_equal(y[0, ..., 0], want)
    np.testing.assert_array_equal(ri.max_pool3d(x, (2, 3, 3), (2, 2, 2))[0, ..., 0], want)


def test_max_pool_padding_never_wins():
    # All-negative input: a zero padding would leak 0 into the border windows; -inf padding does not.
    x = -1.0 - uniform(3, (1, 3, 4, 5, 2)) ** 2
    y = i3d.max_pool3d(x, 3, 1)
    assert np.all(y < -1.0 + 1e-12)
    np.testing.assert_array_equal(y, ri.max_pool3d(x, 3, 1))


@pytest.mark.parametrize("shape", [(1, 4, 5, 1), (2, 2, 3, 4, 3)])
def test_resize_of_a_constant_is_constant(shape):
    x = np.full(shape, -0.375)
    for size in ((9, 2), (1, 1), (224, 224)):
        y = i3d.resize_bilinear(x, size)
        assert y.shape == (*shape[:-3], *size, shape[-1])
        np.testing.assert_array_equal(y, -0.375)


def test_resize_two_pixels_by_hand():
    a, b = -1.0, 0.5
    x = np.array([a, b]).reshape(1, 1, 2, 1)
    # TF1 grid (the reference FVD code): source columns j * 2/4 = 0, 0.5, 1, 1.5; the last is clamped:
    # a, (a + b)/2, b, b.
    tf1 = [a, 0.5 * (a + b), b, b]
    # Half-pixel centres: (j + 1/2) * 2/4 - 1/2 = -0.25, 0.25, 0.75, 1.25, clamped outside [0, 1]:
    # a, a + (b - a)/4, a + 3(b - a)/4, b.
    half = [a, a + 0.25 * (b - a), a + 0.75 * (b - a), b]
    for mod in (i3d, ri):
        np.testing.assert_allclose(mod.resize_bilinear(x, (1, 4))[0, 0, :, 0], tf1, rtol=0, atol=1e-15)
        np.testing.assert_allclose(mod.resize_bilinear(x, (1, 4), half_pixel_centers=True)[0, 0, :, 0], half,
                                   rtol=0, atol=1e-15)
    # Downsampling 4 -> 2 along H. TF1: sources 0, 2 -> rows 0 and 2 (no averaging at all);
    # half-pixel: sources (i + 1/2) * 2 - 1/2 = 0.5, 2.5 -> means of pairs (no antialias).
    x = np.array([0.0, 1.0, -1.0, 0.5]).reshape(1, 4, 1, 1)
    for mod in (i3d, ri):
        np.testing.assert_allclose(mod.resize_bilinear(x, (2, 1))[0, :, 0, 0], [0.0, -1.0], rtol=0, atol=1e-15)
        np.testing.assert_allclose(mod.resize_bilinear(x, (2, 1), half_pixel_centers=True)[0, :, 0, 0], [0.5, -0.25],
                                   rtol=0, atol=1e-15)


def test_resize_2x2_to_4x4_by_hand_on_both_grids():
    # x = [[0, 4], [8, 12]]; each grid is separable: along W the rows become (TF1) [0, 2, 4, 4] and
    # [8, 10, 12, 12], then along H rows 0, (0 + 1)/2, 1, 1.  Half-pixel: [0, 1, 3, 4], [8, 9, 11, 12],
    # then rows 0, (3 r0 + r1)/4, (r0 + 3 r1)/4, 1.
    x = np.array([[0.0, 4.0], [8.0, 12.0]]).reshape(1, 2, 2, 1)
    tf1 = [[0, 2, 4, 4], [4, 6, 8, 8], [8, 10, 12, 12], [8, 10, 12, 12]]
    half = [[0, 1, 3, 4], [2, 3, 5, 6], [6, 7, 9, 10], [8, 9, 11, 12]]
    for mod in (i3d, ri):
        np.testing.assert_array_equal(mod.resize_bilinear(x, (4, 4))[0, ..., 0], tf1)
        np.testing.assert_array_equal(mod.resize_bilinear(x, (4, 4), half_pixel_centers=True)[0, ..., 0], half)
    video = (x / 16.0)[:, None]  # (1, 1, 2, 2, 1) in [0, 1]; powers of two keep every value exact
    np.testing.assert_array_equal(i3d.preprocess(video, (4, 4))[0, 0, ..., 0], np.array(tf1) / 16.0)
    np.testing.assert_array_equal(i3d.preprocess(video, (4, 4), resize="half_pixel")[0, 0, ..., 0],
                                  np.array(half) / 16.0)
    np.testing.assert_array_equal(ri.preprocess(video, (4, 4), resize="half_pixel")[0, 0, ..., 0],
                                  np.array(half) / 16.0)
    with pytest.raises(ValueError, match="'tf1', 'half_pixel'"):
        i3d.preprocess(video, (4, 4), resize="area")


@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize(("H", "W", "h", "w"), [(5, 6, 12, 13), (6, 4, 3, 2), (3, 7, 8, 5), (4, 4, 4, 4)])
def test_resize_reproduces_a_linear_ramp(H, W, h, w, half):
    # Bilinear interpolation is exact on f(u, v) = 3u - 2v + 1; with the border clamp the output
    # is f at the clamped source coordinates of the grid (exactly f inside, away from the borders).
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    x = (3.0 * i - 2.0 * j + 1.0)[None, ..., None]
    if half:
        u = np.clip((np.arange(h) + 0.5) * H / h - 0.5, 0, H - 1)
        v = np.clip((np.arange(w) + 0.5) * W / w - 0.5, 0, W - 1)
    else:
        u = np.clip(np.arange(h) * H / h, 0, H - 1)
        v = np.clip(np.arange(w) * W / w, 0, W - 1)
    want = 3.0 * u[:, None] - 2.0 * v[None, :] + 1.0
    for mod in (i3d, ri):
        np.testing.assert_allclose(mod.resize_bilinear(x, (h, w), half_pixel_centers=half)[0, ..., 0], want,
                                   rtol=0, atol=1e-12)


def test_resize_to_the_same_size_is_the_identity():
    x = uniform(4, (2, 3, 5, 7, 2))
    np.testing.assert_array_equal(i3d.resize_bilinear(x, (5, 7)), x)


# ---------------------------------------------------------------------------
# the primitives against their reference twins (float64)

small = st.integers(1, 6)


@settings(max_examples=20, deadline=None)
@given(
    B=st.integers(1, 2), T=small, H=small, W=small, c_in=st.integers(1, 3), c_out=st.integers(1, 3),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    bias=st.booleans(), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_conv3d_strided_matches_reference(B, T, H, W, c_in, c_out, k, s, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, H, W, c_in))
    w = rng.normal(size=(*k, c_in, c_out))
    b = rng.normal(size=c_out) if bias else None
    y = i3d.conv3d_strided(x, w, b, stride=s)
    assert y.shape == (B, -(-T // s[0]), -(-H // s[1]), -(-W // s[2]), c_out)
    assert rel_err(y, ri.conv3d_strided(x, w, b, stride=s)) <= RTOL64


@settings(max_examples=20, deadline=None)
@given(
    B=st.integers(1, 2), T=small, H=small, W=small, C=st.integers(1, 3),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_max_pool3d_matches_reference(B, T, H, W, C, k, s, seed):
    x = np.random.default_rng(seed).normal(size=(B, T, H, W, C))
    y = i3d.max_pool3d(x, k, s)
    assert y.shape == (B, -(-T // s[0]), -(-H // s[1]), -(-W // s[2]), C)
    np.testing.assert_array_equal(y, ri.max_pool3d(x, k, s))


@settings(max_examples=20, deadline=None)
@given(
    lead=st.sampled_from([(1,), (2,), (2, 3)]), H=small, W=small, C=st.integers(1, 3),
    h=st.integers(1, 11), w=st.integers(1, 11), half=st.booleans(), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_resize_bilinear_matches_reference(lead, H, W, C, h, w, half, seed):
    x = np.random.default_rng(seed).normal(size=(*lead, H, W, C))
    y = i3d.resize_bilinear(x, (h, w), half_pixel_centers=half)
    assert y.shape == (*lead, h, w, C)
    assert rel_err(y, ri.resize_bilinear(x, (h, w), half)) <= RTOL64


def test_stride_one_odd_kernel_equals_ops_conv3d():
    x, w = uniform(5, (2, 3, 4, 5, 2)), uniform(6, (3, 1, 5, 2, 3))
    assert rel_err(i3d.conv3d_strided(x, w), ops.conv3d(x, w)) <= RTOL64


def test_float32_primitives_keep_dtype():
    x, w = uniform(1, (1, 4, 5, 6, 2), np.float32), uniform(2, (3, 3, 3, 2, 2), np.float32)
    assert i3d.conv3d_strided(x, w, stride=2).dtype == np.float32
    assert i3d.max_pool3d(x, 3, 2).dtype == np.float32
    assert i3d.resize_bilinear(x, (7, 3)).dtype == np.float32


# ---------------------------------------------------------------------------
# fast paths (JAX, torch) against the generic code

FAST_CONV_CASES = [  # (x shape, w shape, stride, bias): asymmetric pads, even kernels, B=1, C=1
    ((2, 5, 9, 7, 3), (3, 4, 2, 3, 4), (2, 1, 3), True),
    # Conv3d_1a's 7 taps and stride 2 on T and W (pads 2 before, 3 after); 1 tap on H (no pad).
    # (The full 7x7x7 runs in the network tests; 343 taps take long to compile in generic JAX.)
    ((1, 8, 12, 10, 3), (7, 1, 7, 3, 2), (2, 2, 2), False),
    ((1, 3, 4, 4, 1), (1, 3, 3, 1, 1), (1, 2, 2), True),
    ((2, 2, 3, 5, 2), (2, 2, 2, 2, 3), (1, 1, 1), False),
]
FAST_POOL_CASES = [((2, 5, 9, 7, 3), (1, 3, 3), (1, 2, 2)), ((1, 4, 6, 6, 2), (3, 3, 3), (2, 2, 2)),
                   ((1, 3, 7, 5, 1), (2, 2, 2), (2, 2, 2)), ((2, 3, 4, 4, 2), (3, 3, 3), (1, 1, 1))]  # fmt: skip
FAST_RESIZE_CASES = [((2, 3, 5, 7, 3), (9, 4)), ((1, 6, 8, 2), (3, 5)), ((1, 2, 4, 6, 1), (16, 16)), ((2, 3, 3, 1), (1, 1))]


class FW:
    """One framework with its fast paths registered: conversions, a float64 context and jit (JAX only)."""

    def __init__(self, name, to, back, x64, jit):
        self.name, self.to, self.back, self.x64, self.jit = name, to, back, x64, jit


@pytest.fixture(params=["jax", "torch"])
def fw(request):
    import contextlib

    if request.param == "jax":
        jax = request.getfixturevalue("jax_fast")
        # Eager JAX compiles every op for every new shape; one jit per call compiles once.
        return FW("jax", jax.numpy.asarray, np.asarray, lambda: jax.enable_x64(True), jax.jit)
    torch = request.getfixturevalue("torch_fast")
    return FW("torch", torch.from_numpy, lambda t: t.numpy(), contextlib.nullcontext, lambda f: f)


def _fast_and_generic(fw, op, *args, **kwargs):
    """``op(*args, **kwargs)`` with the registered fast path, and with the generic code (both jitted on JAX)."""
    call = lambda *a: op(*a, **kwargs)  # noqa: E731
    fast = fw.jit(call)(*args)
    with ops.generic_only():  # active while the generic version is traced
        generic = fw.jit(call)(*args)
    return fw.back(fast), fw.back(generic)


@pytest.mark.parametrize("case", range(len(FAST_CONV_CASES)))
def test_fast_conv3d_strided(fw, case):
    from array_api_compat import array_namespace

    xs, ws, stride, bias = FAST_CONV_CASES[case]
    x, w, b = uniform(case, xs), uniform(case + 10, ws), uniform(case + 20, ws[-1:]) if bias else None
    fast_fn = ops.fast_paths(array_namespace(fw.to(x)))["conv3d_strided"]
    assert fast_fn.__module__.startswith("backends.")
    # float32: within the rounding bound of two K-term sums (module docstring).
    S = i3d.conv3d_strided(np.abs(x), np.abs(w), None if b is None else np.abs(b), stride=stride)
    K = math.prod(ws[:4]) + (b is not None)
    args32 = [fw.to(a.astype(np.float32)) for a in (x, w)] + [None if b is None else fw.to(b.astype(np.float32))]
    f, g = _fast_and_generic(fw, i3d.conv3d_strided, *args32, stride=stride)
    assert f.dtype == g.dtype == np.float32 and f.shape == S.shape
    assert np.all(np.abs(f.astype(np.float64) - g) <= 2 * K * EPS32 * S)
    # float64: both agree with the reference.
    with fw.x64():
        f, g = _fast_and_generic(fw, i3d.conv3d_strided, fw.to(x), fw.to(w), None if b is None else fw.to(b), stride=stride)
    want = ri.conv3d_strided(x, w, b, stride=stride)
    assert rel_err(f, want) <= RTOL64 and rel_err(g, want) <= RTOL64


@pytest.mark.parametrize("case", range(len(FAST_POOL_CASES)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_max_pool3d_is_exact(fw, case, dtype):
    xs, window, stride = FAST_POOL_CASES[case]
    x = uniform(case, xs, dtype) - 2.0  # all negative: a zero padding would show
    with fw.x64():
        f, g = _fast_and_generic(fw, i3d.max_pool3d, fw.to(x), window=window, stride=stride)
    assert f.dtype == g.dtype == dtype
    np.testing.assert_array_equal(f, g)
    np.testing.assert_array_equal(f, ri.max_pool3d(x, window, stride))


@pytest.mark.parametrize("case", range(len(FAST_RESIZE_CASES)))
def test_fast_resize_bilinear(fw, case):
    """The fast paths (half-pixel centres: jax.image.resize, F.interpolate) against the generic code."""
    xs, size = FAST_RESIZE_CASES[case]
    x = uniform(case, xs)
    f, g = _fast_and_generic(fw, i3d.resize_bilinear, fw.to(x.astype(np.float32)), size=size, half_pixel_centers=True)
    assert f.dtype == g.dtype == np.float32 and f.shape == (*xs[:-3], *size, xs[-1])
    n = max(xs[-3], xs[-2])
    assert np.max(np.abs(f.astype(np.float64) - g)) <= 4 * (n + 1) * EPS32 * np.max(np.abs(x))
    with fw.x64():
        f, g = _fast_and_generic(fw, i3d.resize_bilinear, fw.to(x), size=size, half_pixel_centers=True)
        want = ri.resize_bilinear(x, size, True)
        assert rel_err(f, want) <= RTOL64 and rel_err(g, want) <= RTOL64
        # the TF1 grid has no fast path: the generic code runs on the framework's arrays
        f, _ = _fast_and_generic(fw, i3d.resize_bilinear, fw.to(x), size=size)
        assert rel_err(f, ri.resize_bilinear(x, size)) <= RTOL64


# ---------------------------------------------------------------------------
# the network


def test_param_structure_and_channel_table(params64):
    p = params64
    assert p["Conv3d_1a_7x7"]["w"].shape == (7, 7, 7, 3, 64)
    assert p["Conv3d_2c_3x3"]["w"].shape == (3, 3, 3, 64, 192)
    assert p["Mixed_3b"]["Branch_1"]["Conv3d_0b_3x3"]["w"].shape == (3, 3, 3, 96, 128)
    assert p["Mixed_4b"]["Branch_0"]["Conv3d_0a_1x1"]["w"].shape == (1, 1, 1, 480, 192)
    assert p["Mixed_5b"]["Branch_2"]["Conv3d_0a_3x3"]["w"].shape == (3, 3, 3, 32, 128)  # the checkpoint's name
    assert p["Mixed_5c"]["Branch_3"]["Conv3d_0b_1x1"]["w"].shape == (1, 1, 1, 832, 128)
    assert p["Logits"]["Conv3d_0c_1x1"]["w"].shape == (1, 1, 1, 1024, 400)
    # Inputs of each block = outputs of the previous one (b0 + b1b + b2b + b3):
    # 192 -> 256 -> 480 -> 512 -> 512 -> 512 -> 528 -> 832 -> 832 -> 1024.
    ins = [p[b]["Branch_0"]["Conv3d_0a_1x1"]["w"].shape[3] for b in i3d.MIXED_CHANNELS]
    assert ins == [192, 256, 480, 512, 512, 512, 528, 832, 832]
    n = sum(a.size for a in i3d.flatten_i3d_params(p).values())
    assert 12_000_000 < n < 13_000_000  # I3D (RGB) has about 12.3M parameters
    assert len(i3d.i3d_npz_keys()) == 3 * 4 + 9 * 6 * 4 + 2


def test_logits_shape_determinism_and_batch_independence(params64):
    v = uniform(11, (3, 4, 16, 24, 3))
    y = i3d.i3d_logits(params64, v, pool="global")
    assert y.shape == (3, 400) and y.dtype == np.float64 and np.all(np.isfinite(y))
    assert 0.1 < np.std(y) < 100  # random weights keep the logits O(1)
    np.testing.assert_array_equal(i3d.i3d_logits(params64, v, pool="global"), y)
    for b in range(3):
        assert rel_err(i3d.i3d_logits(params64, v[b : b + 1], pool="global")[0], y[b]) <= RTOL64
    assert np.max(np.abs(y[0] - y[1])) > 1e-3  # different videos, different logits


def test_logits_match_reference(params64):
    v = uniform(12, (1, 8, 24, 16, 3))  # T and H reach 1 and 2 after the pools: every padding rule is used
    assert rel_err(i3d.i3d_logits(params64, v, pool="global"), ri.i3d_logits(params64, v, pool="global")) <= RTOL64


def test_logits_float32_numpy(params32, params64):
    v = uniform(13, (2, 4, 16, 16, 3))
    y32 = i3d.i3d_logits(params32, v.astype(np.float32), pool="global")
    assert y32.dtype == np.float32
    assert rel_err(y32, i3d.i3d_logits(params64, v, pool="global")) <= RTOL_LOGITS32


@pytest.mark.slow
def test_logits_on_jax_and_torch_match_numpy(fw, params64):
    # JAX: float32 only (one jit compilation of the network, several seconds on a small CPU);
    # its float64 agreement is checked op by op above.  torch: float32 and float64.
    v = uniform(14, (2, 4, 16, 24, 3))  # Conv3d_1a pads 2 before and 3 after on T, H and W
    want = i3d.i3d_logits(params64, v, pool="global")
    conv = lambda p, dt: tree_map(lambda a: fw.to(a.astype(dt)), p)  # noqa: E731
    y32 = fw.back(fw.jit(lambda p, x: i3d.i3d_logits(p, x, pool="global"))(conv(params64, np.float32), fw.to(v.astype(np.float32))))
    assert y32.dtype == np.float32 and rel_err(y32, want) <= RTOL_LOGITS32
    if fw.name == "torch":  # (torch's float64 CPU convolutions are slow: a smaller input)
        v = v[:1, :2, :8, :8]
        y64 = fw.back(i3d.i3d_logits(conv(params64, np.float64), fw.to(np.ascontiguousarray(v)), pool="global"))
        assert rel_err(y64, i3d.i3d_logits(params64, v, pool="global")) <= RTOL64


def test_logits_on_array_api_strict(params64):
    v = uniform(15, (1, 2, 8, 6, 3))
    p = tree_map(xps.asarray, params64)
    y = i3d.i3d_logits(p, xps.asarray(v), pool="global")
    assert rel_err(np.asarray(y), i3d.i3d_logits(params64, v, pool="global")) <= RTOL64


def test_preprocess_resizes_to_224_and_keeps_the_range():
    v = uniform(16, (2, 3, 5, 7, 3))
    v[0, 0, 0, 0, :] = 1.0
    v[1, 2, 4, 6, :] = -1.0
    y = i3d.preprocess(v)
    assert y.shape == (2, 3, 224, 224, 3)
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert y.max() == 1.0 and y.min() == -1.0  # corners are copied (clamped half-pixel coordinates)
    np.testing.assert_array_equal(i3d.preprocess(y), y)  # already 224 x 224: unchanged
    assert rel_err(i3d.preprocess(v, (9, 4)), ri.preprocess(v, (9, 4))) <= RTOL64


# ---------------------------------------------------------------------------
# input validation: errors name the function, the argument and what was expected


@pytest.mark.parametrize(
    ("call", "exc", "words"),
    [
        (lambda: i3d.conv3d_strided(np.ones((2, 3, 3, 1)), np.ones((1, 1, 1, 1, 1))), ValueError, ["conv3d_strided", "'x'", "5-D"]),
        (lambda: i3d.conv3d_strided(np.ones((1, 2, 3, 3, 2)), np.ones((1, 1, 1, 3, 1))), ValueError, ["'w'", "C_in=2"]),
        (lambda: i3d.conv3d_strided(np.ones((1, 2, 3, 3, 1)), np.ones((1, 1, 1, 1, 2)), np.ones(3)), ValueError, ["'b'"]),
        (lambda: i3d.conv3d_strided(np.ones((1, 2, 3, 3, 1)), np.ones((1, 1, 1, 1, 1)), stride=(1, 0, 1)), ValueError, ["stride[1]"]),
        (lambda: i3d.conv3d_strided(np.ones((1, 2, 3, 3, 1)), np.ones((1, 1, 1, 1, 1)), stride=(1, 2)), TypeError, ["'stride'", "3"]),
        (lambda: i3d.conv3d_strided(np.ones((1, 2, 3, 3, 1), dtype=np.int64), np.ones((1, 1, 1, 1, 1))), TypeError, ["'x'", "floating"]),
        (lambda: i3d.max_pool3d(np.ones((1, 2, 3, 3)), 3, 1), ValueError, ["max_pool3d", "'x'"]),
        (lambda: i3d.max_pool3d(np.ones((1, 2, 3, 3, 1)), (3, 3, 1.5), 1), TypeError, ["window[2]"]),
        (lambda: i3d.resize_bilinear(np.ones((3, 3)), (2, 2)), ValueError, ["resize_bilinear", "at least 3 axes"]),
        (lambda: i3d.resize_bilinear(np.ones((1, 3, 3, 1)), (0, 2)), ValueError, ["size[0]"]),
        (lambda: i3d.resize_bilinear(np.ones((1, 3, 3, 1)), 4), TypeError, ["'size'", "pair"]),
        (lambda: i3d.preprocess(np.ones((1, 3, 3, 1))), ValueError, ["preprocess", "'video'"]),
        (lambda: i3d.same_padding(0, 3, 1), ValueError, ["same_padding", "'n'"]),
        (lambda: i3d.init_i3d(0), TypeError, ["init_i3d", "'rng'"]),
        (lambda: i3d.init_i3d(np.random.default_rng(0), num_classes=0), ValueError, ["'num_classes'"]),
        (lambda: i3d.i3d_logits({}, np.ones((1, 2, 4, 4, 3))), ValueError, ["i3d_logits", "'params'"]),
        (lambda: i3d.i3d_logits([], np.ones((1, 2, 4, 4, 3))), TypeError, ["i3d_logits", "'params'"]),
    ],
)  # fmt: skip
def test_errors_name_the_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_i3d_logits_checks_params_against_video(params64, params32):
    with pytest.raises(TypeError, match=r"i3d_logits\(\).*dtype of 'video'"):
        i3d.i3d_logits(params32, uniform(0, (1, 2, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"i3d_logits\(\).*'video'.*C=3"):
        i3d.i3d_logits(params64, uniform(0, (1, 2, 4, 4, 1)))
    broken = dict(params64, Mixed_4c={k: v for k, v in params64["Mixed_4c"].items() if k != "Branch_3"})
    with pytest.raises(ValueError, match=r"params\[Mixed_4c\].*keys"):
        i3d.i3d_logits(broken, uniform(0, (1, 2, 4, 4, 3)))
    bad = dict(params64, Conv3d_2b_1x1=dict(params64["Conv3d_2b_1x1"], beta=np.zeros(63)))
    with pytest.raises(ValueError, match=r"params\[Conv3d_2b_1x1/beta\]"):
        i3d.i3d_logits(bad, uniform(0, (1, 2, 4, 4, 3)))


# ---------------------------------------------------------------------------
# weights files


def test_npz_round_trip(tmp_path, params32):
    path = tmp_path / "i3d.npz"
    i3d.save_i3d_npz(params32, path)
    with np.load(path) as data:
        assert set(data.files) == set(i3d.i3d_npz_keys())
        assert "Mixed_4b/Branch_1/Conv3d_0b_3x3/conv_3d/w" in data.files
        assert "Conv3d_1a_7x7/batch_norm/moving_variance" in data.files
        assert "Logits/Conv3d_0c_1x1/conv_3d/b" in data.files
    loaded = i3d.load_i3d_npz(path)
    flat_a, flat_b = i3d.flatten_i3d_params(params32), i3d.flatten_i3d_params(loaded)
    assert flat_a.keys() == flat_b.keys()
    for k in flat_a:
        np.testing.assert_array_equal(flat_a[k], flat_b[k])
        assert flat_b[k].dtype == np.float32
    v = uniform(1, (1, 2, 8, 8, 3), np.float32)
    np.testing.assert_array_equal(i3d.i3d_logits(loaded, v, pool="global"), i3d.i3d_logits(params32, v, pool="global"))


def test_npz_sha256(tmp_path, params32):
    path = tmp_path / "i3d.npz"
    i3d.save_i3d_npz(params32, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    i3d.load_i3d_npz(path, sha256=digest)
    i3d.load_i3d_npz(path, sha256=digest.upper())
    wrong = "0" * 64
    with pytest.raises(ValueError) as info:
        i3d.load_i3d_npz(path, sha256=wrong)
    assert "load_i3d_npz" in str(info.value) and digest in str(info.value) and wrong in str(info.value)
    with pytest.raises(ValueError, match="64-character"):
        i3d.load_i3d_npz(path, sha256="abc")


def test_missing_weights_say_where_they_come_from(tmp_path, monkeypatch):
    monkeypatch.delenv("TRIVD_I3D_WEIGHTS", raising=False)
    for call in (lambda: i3d.load_i3d_npz(tmp_path / "nope.npz"), lambda: tfvd.load_extractor(tmp_path / "nope.pt")):
        with pytest.raises(FileNotFoundError) as info:
            call()
        msg = str(info.value)
        assert "nope" in msg and "i3d_torchscript.pt" in msg and "kinetics-i3d" in msg and "i3d-kinetics-400" in msg
    with pytest.raises(FileNotFoundError, match="no I3D weights file configured.*TRIVD_I3D_WEIGHTS"):
        tfvd.load_extractor(None)


def test_weights_path_from_environment(tmp_path, monkeypatch, params32):
    path = tmp_path / "w.npz"
    i3d.save_i3d_npz(params32, path)
    monkeypatch.setenv("TRIVD_I3D_WEIGHTS", str(path))
    loaded = i3d.load_i3d_npz(None)
    np.testing.assert_array_equal(loaded["Logits"]["Conv3d_0c_1x1"]["b"], params32["Logits"]["Conv3d_0c_1x1"]["b"])


def test_npz_with_checkpoint_names_and_shapes(tmp_path, params32):
    # As converted from the TF checkpoint: the RGB/inception_i3d/ scope, BN statistics (1, 1, 1, 1, C).
    flat = {}
    for k, a in i3d.flatten_i3d_params(params32).items():
        flat[i3d.CHECKPOINT_PREFIX + k] = a.reshape(1, 1, 1, 1, -1) if "/batch_norm/" in k else a
    path = tmp_path / "ckpt.npz"
    np.savez(path, **flat)
    loaded = i3d.load_i3d_npz(path)
    np.testing.assert_array_equal(
        loaded["Mixed_5c"]["Branch_0"]["Conv3d_0a_1x1"]["moving_mean"],
        params32["Mixed_5c"]["Branch_0"]["Conv3d_0a_1x1"]["moving_mean"],
    )


def test_npz_errors(tmp_path, params32):
    flat = i3d.flatten_i3d_params(params32)
    cases = {
        "missing": ({k: v for k, v in flat.items() if "Mixed_4d/Branch_3" not in k}, "missing"),
        "extra": ({**flat, "global_step": np.zeros(())}, "unexpected"),
        "shape": ({**flat, "Mixed_3b/Branch_0/Conv3d_0a_1x1/conv_3d/w": np.zeros((1, 1, 1, 192, 65))}, "must have shape"),
        "empty": ({"x": np.zeros(1)}, "does not hold I3D weights"),
    }
    for name, (data, words) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **data)
        with pytest.raises(ValueError, match=words):
            i3d.load_i3d_npz(path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable NumPy .npz"):
        i3d.load_i3d_npz(junk)


def test_num_classes_and_channels_follow_the_file(tmp_path):
    p = i3d.init_i3d(np.random.default_rng(3), num_classes=7, in_channels=1)
    path = tmp_path / "small.npz"
    i3d.save_i3d_npz(p, path)
    ext = tfvd.load_extractor(path, image_size=None, pool="global")
    f = ext(uniform(2, (2, 2, 8, 8, 1), np.float32))
    assert f.shape == (2, 7) and f.dtype == np.float64


# ---------------------------------------------------------------------------
# extractors


def test_i3d_extractor_numpy_batches_and_preprocess(params32, params64):
    ext = tfvd.I3DExtractor(params32, batch_size=2, image_size=None, pool="global")
    v = uniform(21, (3, 4, 16, 16, 3))
    f = ext(v)
    assert f.shape == (3, 400) and f.dtype == np.float64
    assert rel_err(f, i3d.i3d_logits(params64, v, pool="global")) <= RTOL_LOGITS32
    ext64 = tfvd.I3DExtractor(params64, batch_size=2, image_size=(12, 10), dtype="float64", pool="global")
    want = i3d.i3d_logits(params64, ri.preprocess(v, (12, 10)), pool="global")
    assert ext64.resize == "tf1" and rel_err(ext64(v), want) <= RTOL64
    half = tfvd.I3DExtractor(params64, batch_size=2, image_size=(12, 10), dtype="float64", resize="half_pixel", pool="global")
    want_half = i3d.i3d_logits(params64, ri.preprocess(v, (12, 10), resize="half_pixel"), pool="global")
    assert rel_err(half(v), want_half) <= RTOL64 and rel_err(want_half, want) > 1e-6  # the grids differ
    assert isinstance(ext, tfvd.FeatureExtractor)
    with pytest.raises(ValueError, match="'tf1', 'half_pixel'"):
        tfvd.I3DExtractor(params64, resize="bicubic", pool="global")


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_i3d_extractor_on_backend_objects(name, params32, params64):
    pytest.importorskip(name)
    import backends

    ext = tfvd.I3DExtractor(params32, backend=backends.load(name), batch_size=2, image_size=(20, 12), pool="global")
    assert ext.backend.name == name
    v = uniform(22, (3, 2, 8, 8, 3))
    want = i3d.i3d_logits(params64, ri.preprocess(v, (20, 12)), pool="global")
    assert rel_err(ext(v), want) <= RTOL_LOGITS32


@pytest.mark.slow
def test_i3d_extractor_on_jax_is_jitted(jax_fast, params32, params64):
    # A backend object, not activated (activation would switch JAX to float64 process-wide);
    # this module's fixture registered the lax fast paths.
    import backends

    backend = backends.load("jax", activate=False)
    ext = tfvd.I3DExtractor(params32, backend=backend, batch_size=2, image_size=(20, 12), pool="global")
    assert ext._pad  # noqa: SLF001 - compiled, so the last batch is padded to one shape
    v = uniform(22, (3, 2, 8, 8, 3))  # batches of 2 and 1 (padded to 2): one compilation
    want = i3d.i3d_logits(params64, ri.preprocess(v, (20, 12)), pool="global")
    f = ext(v)
    assert f.shape == (3, 400) and rel_err(f, want) <= RTOL_LOGITS32


def test_extractor_errors(params32):
    with pytest.raises(TypeError, match=r"got the name 'nope': pass backends.load\('nope'\)"):
        tfvd.I3DExtractor(params32, backend="nope", pool="global")
    with pytest.raises(TypeError, match="'backend'"):
        tfvd.I3DExtractor(params32, backend=3, pool="global")
    with pytest.raises(ValueError, match="'dtype'"):
        tfvd.I3DExtractor(params32, dtype="float16", pool="global")
    with pytest.raises(ValueError, match="I3DExtractor.*'params'"):
        tfvd.I3DExtractor({"Conv3d_1a_7x7": params32["Conv3d_1a_7x7"]})
    ext = tfvd.I3DExtractor(params32, image_size=None, pool="global")
    with pytest.raises(ValueError, match="5-D"):
        ext(np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match="C=3"):
        ext(np.zeros((1, 2, 4, 4, 1)))
    with pytest.raises(ValueError, match="suffix"):
        tfvd.load_extractor(__file__)


# ---------------------------------------------------------------------------
# TorchScript loader, on a scripted stand-in with the call signature of i3d_torchscript.pt


def _standin_module(torch):
    class StandIn(torch.nn.Module):
        """Returns what it was given: pixels at two corners, per-channel means, its input's shape, its flags."""

        def forward(
            self, x: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = False
        ) -> torch.Tensor:
            B = x.shape[0]
            dims = torch.tensor([x.shape[1], x.shape[2], x.shape[3], x.shape[4]], dtype=x.dtype)
            flags = torch.tensor([float(rescale), float(resize), float(return_features)], dtype=x.dtype)
            first = x[:, :, 0, 0, 0]
            last = x[:, :, -1, -1, -1]
            mid = x[:, :, 1, 2, 3]
            return torch.cat([first, last, mid, x.mean(dim=(2, 3, 4)), dims.expand(B, 4), flags.expand(B, 3)], dim=1)

    return torch.jit.script(StandIn())


@pytest.fixture
def standin_pt(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "i3d_torchscript.pt"
    _standin_module(torch).save(str(path))
    return path


def test_torchscript_layout_and_kwargs(standin_pt):
    from backends.torch.i3d_script import TorchScriptI3D, load_i3d_torchscript

    ext = load_i3d_torchscript(standin_pt, trust=True, image_size=None, batch_size=2)
    assert isinstance(ext, TorchScriptI3D) and isinstance(ext, tfvd.FeatureExtractor)
    v = uniform(31, (3, 4, 5, 6, 3))  # (B, T, H, W, C), all sizes distinct
    f = ext(v)
    assert f.shape == (3, 3 * 4 + 4 + 3) and f.dtype == np.float64
    v32 = v.astype(np.float32).astype(np.float64)  # the module sees float32
    np.testing.assert_array_equal(f[:, 0:3], v32[:, 0, 0, 0, :])  # x[:, :, 0, 0, 0] of (B, C, T, H, W)
    np.testing.assert_array_equal(f[:, 3:6], v32[:, -1, -1, -1, :])
    np.testing.assert_array_equal(f[:, 6:9], v32[:, 1, 2, 3, :])  # x[:, :, t=1, h=2, w=3]
    np.testing.assert_allclose(f[:, 9:12], v32.mean(axis=(1, 2, 3)), rtol=0, atol=1e-6)  # a float32 mean of 120 values
    np.testing.assert_array_equal(f[:, 12:16], np.tile([3, 4, 5, 6], (3, 1)))  # (C, T, H, W)
    np.testing.assert_array_equal(f[:, 16:19], np.tile([0, 0, 1], (3, 1)))  # rescale=False, resize=False, features


def test_torchscript_resizes_to_224_first(standin_pt):
    with pytest.raises(ValueError, match=r"runs on the torch backend: pass backend=backends.load\('torch'\)"):
        tfvd.load_extractor(standin_pt, trust=True)  # TorchScript is torch code: the extractor comes from that backend
    ext = tfvd.load_extractor(standin_pt, trust=True, batch_size=4, backend=backends.load("torch"))  # default 224x224
    v = uniform(32, (2, 3, 5, 7, 3))
    f = ext(v)
    np.testing.assert_array_equal(f[:, 12:16], np.tile([3, 3, 224, 224], (2, 1)))
    want = ri.preprocess(v.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(f[:, 6:9], want[:, 1, 2, 3, :], rtol=0, atol=1e-6)  # float32 torch resize
    np.testing.assert_array_equal(f[:, 0:3], v.astype(np.float32)[:, 0, 0, 0, :])  # the clamped corner


def test_torchscript_sha256_and_missing(standin_pt, tmp_path):
    from backends.torch.i3d_script import load_i3d_torchscript

    digest = hashlib.sha256(standin_pt.read_bytes()).hexdigest()
    load_i3d_torchscript(standin_pt, sha256=digest)
    with pytest.raises(ValueError) as info:
        tfvd.load_extractor(standin_pt, sha256="f" * 64, backend=backends.load("torch"))
    assert digest in str(info.value) and "f" * 64 in str(info.value)
    with pytest.raises(FileNotFoundError, match="i3d_torchscript.pt"):
        load_i3d_torchscript(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torchscript")
    with pytest.raises(ValueError, match="not a loadable TorchScript"):
        load_i3d_torchscript(bad, trust=True)
    with pytest.raises(ValueError, match="runs code stored in the file"):  # no checksum, no trust: not opened
        load_i3d_torchscript(bad)


# ---------------------------------------------------------------------------
# FVD and IS


def first_pixels(videos):
    """A deterministic stand-in extractor: the first four values of each video, as float64 features."""
    return np.asarray(videos, dtype=np.float64).reshape(len(videos), -1)[:, :4].copy()


def test_fvd_of_identical_sets_is_zero():
    real = uniform(41, (12, 2, 3, 3, 3)) * 0.5
    assert abs(tfvd.fvd(real, real, first_pixels)) <= 1e-10


def test_fvd_of_shifted_features_is_the_squared_shift():
    # Shifting every value by delta shifts each of the d = 4 features by delta and leaves the
    # covariance unchanged: FVD = ||delta_mu||^2 + Tr(S + S - 2 (S S)^(1/2)) = 4 delta^2.
    real = uniform(42, (12, 2, 3, 3, 3)) * 0.5
    delta = 0.25
    assert tfvd.fvd(real, real + delta, first_pixels) == pytest.approx(4 * delta**2, rel=1e-9, abs=1e-12)


def test_fvd_warns_on_few_samples_once():
    real = uniform(43, (3, 2, 3, 3, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tfvd.fvd(real, real * 0.9, first_pixels)
    few = [w for w in caught if issubclass(w.category, FewSamplesWarning)]
    assert len(few) == 1 and not issubclass(few[0].category, RuntimeWarning)
    assert issubclass(few[0].category, UserWarning) and "3 real and 3 fake videos for 4 features" in str(few[0].message)
    assert few[0].filename == __file__  # points at the caller


def test_fvd_refuses_videos_of_other_shapes_ranges_and_nan():
    real = uniform(46, (3, 4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"one shape .T, H, W, C., got \(4, 3, 3, 3\) and \(3, 3, 3, 3\)"):
        tfvd.fvd(real, real[:, :3], first_pixels)
    with pytest.raises(ValueError, match=r"frames in \[-1, 1\].*\[0, 255\]\? map them with x / 127.5 - 1"):
        tfvd.fvd(real, (real + 1) * 127.5, first_pixels)
    nan = real.copy()
    nan[0, 0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        tfvd.fvd(real, nan, first_pixels)
    tfvd.fvd(real, np.clip(real * (1 + 5e-4), -1 - 5e-4, 1 + 5e-4), first_pixels)  # float32 rounding is fine


def test_fvd_with_random_i3d():
    # Eight classes keep the covariances small (400 x 400 eigendecompositions are slow on a busy CPU).
    ext = tfvd.I3DExtractor(i3d.init_i3d(np.random.default_rng(5), num_classes=8), image_size=None, pool="global")
    real, fake = uniform(44, (10, 2, 8, 8, 3)), uniform(45, (10, 2, 8, 8, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewSamplesWarning)  # 10 videos >= 8 features: no warning
        assert abs(tfvd.fvd(real, real, ext)) <= 1e-8 * np.sum(np.var(ext(real), axis=0))
        assert tfvd.fvd(real, fake, ext) > 0
    with pytest.warns(FewSamplesWarning, match="5 real and 10 fake videos for 8 features"):
        tfvd.fvd(real[:5], fake, ext)


def test_fvd_checks_the_extractor():
    real = uniform(46, (4, 2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"\(4, D\)"):
        tfvd.fvd(real, real, lambda v: np.zeros((3, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        tfvd.fvd(real, real, lambda v: np.full((len(v), 4), np.nan))
    with pytest.raises(TypeError, match="callable"):
        tfvd.fvd(real, real, "i3d")
    with pytest.raises(ValueError, match="'fake'.*5-D"):
        tfvd.fvd(real, real[0], first_pixels)


def test_inception_score_closed_forms():
    # Confident logits (margin 60: softmax = one-hot up to e^-60) spread evenly over K classes:
    # IS = exp(KL(one-hot || uniform over K)) = K.  All videos alike: p(y|x) = p(y), IS = 1.
    K, N = 4, 12
    videos = np.zeros((N, 1, 1, 1, 1))
    videos[:, 0, 0, 0, 0] = (np.arange(N) % K) / K  # the class, as a pixel value in [-1, 1]

    def confident(v):
        return 60.0 * np.eye(K)[np.rint(np.asarray(v[:, 0, 0, 0, 0]) * K).astype(int)]

    mean, std = tfvd.inception_score_of(videos, confident, splits=1)
    assert mean == pytest.approx(K, rel=1e-12) and std == 0.0
    mean, std = tfvd.inception_score_of(videos, confident, splits=3)  # each split of 4 holds every class once
    assert mean == pytest.approx(K, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    mean, _ = tfvd.inception_score_of(videos, lambda v: np.tile([1.0, -2.0, 0.5, 3.0], (len(v), 1)), splits=2)
    assert mean == pytest.approx(1.0, abs=1e-12)
