"""Tests of the recurrent cells (paper Eqs. 1-10, 16-22, appendix F): reference/cells.py,
trivd_core/cells.py and trivd_core/initializers.py.

Expected values come from three independent sources, never from the output of the
code under test:

* the loop-based reference (``reference.cells``) for the core;
* closed forms with gates saturated by large biases (``sigma(50) = 1 - 1.9e-22``,
  ``sigma(-50) = 1.9e-22``) and one-hot warps, computed here with ``np.pad``
  slicing and an einsum convolution written in this file;
* linear-algebra identities for the orthogonal initialiser.

Tolerances
----------
* float64, core vs reference: ``<= 1e-10`` relative to the largest magnitude of
  the expected array (the project rule).  Both compute the same sums in different
  orders; the observed error is ~1e-15.
* float32 core vs a float64 reference fed the same float32-representable
  parameters and inputs: ``2e-5`` relative to the largest magnitude.  The error is
  then purely the core's float32 rounding.  Every output is a chain of at most
  five stages (hyper conv, max-pool, two linear layers and a softmax, warp, gate
  convs, mix); each stage is a dot product of at most ``K = 81`` terms
  (``k*k*(c_hidden + c_in)`` <= 9*7, or the 48 features of the MLP) of O(1) values,
  so the worst-case per-stage bound is ``K * eps32 ~ 81 * 6e-8 ~ 5e-6``
  relative; sigmoid, softmax and ReLU do not amplify errors (Lipschitz <= 1 for
  the normalised outputs), giving a few 1e-6 over the chain; 2e-5 leaves margin
  over the worst case while still catching any real discrepancy (wrong tap,
  wrong concat order, wrong gate), which shows up at O(1e-2) or more.
* closed forms with saturated gates: ``1e-12``, since the neglected terms are of
  order ``sigma(-50) * O(1) ~ 2e-22`` or ``exp(-60) ~ 1e-26`` and the rest is
  float64 rounding.
"""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest
from _test_helpers import to_np, tree_map
from array_api_compat import array_namespace
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import cells as rcells
from reference import ops as rops
from reference import warping as rwarp
from trivd_core import cells, initializers
from trivd_core.tree import tree_paths

KINDS = cells.KINDS
FACTORIZED = ("ktrajgru", "tsru_c", "tsru_p", "tsru_s")
PIXELWISE = ("ptsru_c", "ptsru_p", "ptsru_s")
WARPING = FACTORIZED + PIXELWISE
TSRUS = ("tsru_c", "tsru_p", "tsru_s", "ptsru_c", "ptsru_p", "ptsru_s")

RTOL64 = 1e-10
RTOL32 = 2e-5
EXACT = 1e-12

# (B, H, W, c_in, c_hidden, k): non-square, B=1, c_in=1, c_hidden=1 (hidden widths
# clamp to 1), k=1 (trivial warp) and k=5.
SHAPES = [
    pytest.param(2, 5, 4, 3, 4, 3, id="B2-5x4-cin3-ch4-k3"),
    pytest.param(1, 3, 6, 1, 2, 3, id="B1-3x6-cin1-ch2-k3"),
    pytest.param(2, 2, 3, 1, 1, 3, id="B2-2x3-cin1-ch1-k3"),
    pytest.param(1, 6, 5, 2, 2, 5, id="B1-6x5-cin2-ch2-k5"),
    pytest.param(1, 4, 3, 2, 4, 1, id="B1-4x3-cin2-ch4-k1"),
]


# ---------------------------------------------------------------------------
# helpers


def rel_close(actual, desired, rtol, what=""):
    """``|actual - desired| <= rtol * max(|desired|)`` elementwise (norm-relative)."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, (what, actual.shape, desired.shape)
    scale = max(float(np.max(np.abs(desired))), 1e-300)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=what)


def legal_c_hidden(kind, c_h):
    return c_h + (c_h % 2) if kind == "convlstm" else c_h


def make(kind, B, H, W, c_in, c_h, k, seed=0, dtype=np.float64, n_kernels=None):
    """Parameters from init_cell plus random biases (init biases are zero) and inputs."""
    c_h = legal_c_hidden(kind, c_h)
    rng = np.random.default_rng(seed)
    p = cells.init_cell(kind, c_in, c_h, k, rng=rng, dtype=dtype, n_kernels=n_kernels)
    # non-zero biases so that bias handling is exercised too
    p = tree_map(lambda a: a if a.ndim > 1 else rng.uniform(-0.5, 0.5, a.shape).astype(dtype), p)
    h = rng.standard_normal((B, H, W, c_h)).astype(dtype)
    x = rng.standard_normal((B, H, W, c_in)).astype(dtype)
    return p, h, x


def to_strict(tree):
    return tree_map(lambda a: xps.asarray(a), tree)


def run_core(kind, p, h, x, **kw):
    return cells.cell_step(kind, p, h, x, **kw)


def run_strict(kind, p, h, x, **kw):
    out = cells.cell_step(kind, to_strict(p), xps.asarray(h), xps.asarray(x), **kw)
    if kw.get("return_warp"):
        return to_np(out[0]), {key: to_np(v) for key, v in out[1].items()}
    return to_np(out)


def run_reference(kind, p, h, x, **kw):
    return rcells.cell_step(kind, p, h, x, **kw)


IMPLS = [
    pytest.param(run_core, id="core-numpy"),
    pytest.param(run_strict, id="core-strict"),
    pytest.param(run_reference, id="reference"),
]


def np_conv2d(x, w, b):
    """SAME stride-1 cross-correlation written independently: zero pad + one einsum per tap."""
    kh, kw = w.shape[:2]
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    H, W = x.shape[1:3]
    xp_ = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    y = np.zeros((*x.shape[:3], w.shape[3]))
    for m in range(kh):
        for n in range(kw):
            y += np.einsum("bijc,co->bijo", xp_[:, m : m + H, n : n + W, :], w[m, n])
    return y + b


def np_shift(h, m, n, k):
    """The warp with a one-hot W on tap q = m*k + n: out[i, j] = h[i + m - p, j + n - p], zero outside."""
    p = (k - 1) // 2
    H, W = h.shape[1:3]
    hp = np.pad(h, ((0, 0), (p, p), (p, p), (0, 0)))
    return hp[:, m : m + H, n : n + W, :]


def saturate(layer, value):
    """Gate conv with zero kernel and constant bias ``value`` (sigma -> 0 or 1)."""
    layer["W"] = np.zeros_like(layer["W"])
    layer["b"] = np.full_like(layer["b"], value)


def force_tap(kind, p, q, big=60.0):
    """Force the hyper-network to output the one-hot W on tap q (zero weights, large bias)."""
    f = p["f"]
    if kind in PIXELWISE:
        f["conv3"]["W"] = np.zeros_like(f["conv3"]["W"])
        b = np.zeros_like(f["conv3"]["b"])
        b[q] = big
        f["conv3"]["b"] = b
    else:
        N = f["S"]["W"].shape[3]
        f["fc2"]["W"] = np.zeros_like(f["fc2"]["W"])
        b = np.zeros_like(f["fc2"]["b"])
        b[q * N : (q + 1) * N] = big  # every kernel l puts its mass on tap q
        f["fc2"]["b"] = b


# ---------------------------------------------------------------------------
# core vs reference


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("B,H,W,c_in,c_h,k", SHAPES)
def test_core_matches_reference_float64(kind, B, H, W, c_in, c_h, k):
    p, h, x = make(kind, B, H, W, c_in, c_h, k)
    want, theta_want = rcells.cell_step(kind, p, h, x, return_warp=True)
    got, theta_got = cells.cell_step(kind, p, h, x, return_warp=True)
    assert got.shape == h.shape and got.dtype == np.float64
    rel_close(got, want, RTOL64, kind)
    assert sorted(theta_got) == sorted(theta_want)
    for key in theta_want:
        rel_close(theta_got[key], theta_want[key], RTOL64, f"{kind} warp {key}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("B,H,W,c_in,c_h,k", SHAPES[:2])
def test_core_array_api_strict_matches_reference_float64(kind, B, H, W, c_in, c_h, k):
    p, h, x = make(kind, B, H, W, c_in, c_h, k, seed=1)
    want, theta_want = rcells.cell_step(kind, p, h, x, return_warp=True)
    out, theta = cells.cell_step(kind, to_strict(p), xps.asarray(h), xps.asarray(x), return_warp=True)
    assert array_namespace(out) is xps
    assert out.dtype == xps.float64
    rel_close(to_np(out), want, RTOL64, kind)
    for key in theta_want:
        assert array_namespace(theta[key]) is xps
        rel_close(to_np(theta[key]), theta_want[key], RTOL64, f"{kind} warp {key}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_core_matches_reference_both_activations(kind, activation):
    p, h, x = make(kind, 2, 4, 3, 2, 2, 3, seed=2)
    want = rcells.cell_step(kind, p, h, x, activation=activation)
    got = cells.cell_step(kind, p, h, x, activation=activation)
    rel_close(got, want, RTOL64, f"{kind} {activation}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", [run_core, run_strict], ids=["numpy", "strict"])
def test_core_float32_matches_float64_reference(kind, impl):
    p32, h32, x32 = make(kind, 2, 5, 4, 3, 4, 3, seed=3, dtype=np.float32)
    p64 = tree_map(lambda a: a.astype(np.float64), p32)
    want = rcells.cell_step(kind, p64, h32.astype(np.float64), x32.astype(np.float64))
    got = impl(kind, p32, h32, x32)
    assert to_np(got).dtype == np.float32
    rel_close(got, want, RTOL32, kind)


def test_core_on_torch_float64():
    torch = pytest.importorskip("torch")
    for kind in KINDS:
        p, h, x = make(kind, 1, 4, 3, 2, 2, 3, seed=4)
        want = rcells.cell_step(kind, p, h, x)
        tp = tree_map(torch.from_numpy, p)
        got = cells.cell_step(kind, tp, torch.from_numpy(h), torch.from_numpy(x))
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        rel_close(got.numpy(), want, RTOL64, kind)


def test_core_on_jax_float32():
    jnp = pytest.importorskip("jax.numpy")
    for kind in KINDS:
        p, h, x = make(kind, 1, 4, 3, 2, 2, 3, seed=5, dtype=np.float32)
        want = rcells.cell_step(
            kind, tree_map(lambda a: a.astype(np.float64), p), h.astype(np.float64), x.astype(np.float64)
        )
        got = cells.cell_step(kind, tree_map(jnp.asarray, p), jnp.asarray(h), jnp.asarray(x))
        assert got.dtype == jnp.float32
        rel_close(np.asarray(got), want, RTOL32, kind)


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    B=st.integers(1, 2),
    H=st.integers(1, 5),
    W=st.integers(1, 5),
    c_in=st.integers(1, 3),
    c_h=st.integers(1, 4),
    k=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**16),
)
def test_core_matches_reference_random_shapes(kind, B, H, W, c_in, c_h, k, seed):
    p, h, x = make(kind, B, H, W, c_in, c_h, k, seed=seed)
    want = rcells.cell_step(kind, p, h, x)
    got = cells.cell_step(kind, p, h, x)
    assert got.shape == h.shape
    rel_close(got, want, RTOL64, kind)


def test_n_kernels_option_matches_reference():
    p, h, x = make("tsru_c", 2, 3, 4, 2, 2, 3, n_kernels=4)
    assert p["f"]["S"]["W"].shape == (3, 3, 4, 4)
    assert p["f"]["fc2"]["W"].shape[1] == 9 * 4
    got, theta = cells.cell_step("tsru_c", p, h, x, return_warp=True)
    assert theta["w"].shape == (2, 9, 4) and theta["S"].shape == (2, 3, 4, 4)
    rel_close(got, rcells.cell_step("tsru_c", p, h, x), RTOL64)


# ---------------------------------------------------------------------------
# the transformation returned with return_warp


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_return_warp_dict(impl, kind):
    B, H, W, c_in, c_h, k = 2, 3, 5, 1, 2, 3
    p, h, x = make(kind, B, H, W, c_in, c_h, k, seed=6)
    out, theta = impl(kind, p, h, x, return_warp=True)
    out_plain = impl(kind, p, h, x)
    np.testing.assert_array_equal(to_np(out), to_np(out_plain))
    if kind in ("convgru", "convlstm"):
        assert theta == {}
        return
    Wt = to_np(theta["W"])
    assert Wt.shape == (B, H, W, k * k)
    assert np.all(Wt >= 0)
    np.testing.assert_allclose(Wt.sum(axis=-1), 1.0, rtol=0, atol=1e-12)  # a convex combination of taps
    if kind in PIXELWISE:
        assert sorted(theta) == ["W"]
    else:
        assert sorted(theta) == ["S", "W", "w"]
        w, S = to_np(theta["w"]), to_np(theta["S"])
        assert w.shape == (B, k * k, k * k) and S.shape == (B, H, W, k * k)  # N = k*k
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)  # softmax over the taps
        np.testing.assert_allclose(S.sum(axis=-1), 1.0, rtol=0, atol=1e-12)  # softmax over N
        rel_close(Wt, np.einsum("bijl,bql->bijq", S, w), EXACT, "Eq. 12")


# ---------------------------------------------------------------------------
# hand-derived cases (run on the core and on the reference)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", TSRUS)
def test_tsru_u_one_returns_warped_state(impl, kind):
    """u == 1 in Eq. 10: h_t = h~_{t-1} = the warp (Eq. 11) of h_{t-1} with the cell's own W."""
    p, h, x = make(kind, 2, 4, 5, 2, 3, 3, seed=7)
    saturate(p["u"], 50.0)
    out, theta = impl(kind, p, h, x, return_warp=True)
    h_tilde = rwarp.pixelwise_warp(h, to_np(theta["W"]), 3)
    rel_close(out, h_tilde, EXACT, kind)
    assert np.max(np.abs(to_np(out) - h)) > 1e-3  # the warp really moved something


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", TSRUS)
@pytest.mark.parametrize("m,n", [(1, 1), (0, 0), (2, 1), (1, 2), (0, 2)])
def test_tsru_one_hot_warp_is_a_shift(impl, kind, m, n):
    """Hyper-network forced to a one-hot tap (m, n), u == 1: h_t[i, j] = h[i + m - 1, j + n - 1].

    The centre tap (1, 1) returns h unchanged.
    """
    k = 3
    p, h, x = make(kind, 1, 4, 5, 2, 3, k, seed=8)
    saturate(p["u"], 50.0)
    force_tap(kind, p, m * k + n)
    out = impl(kind, p, h, x)
    expected = h if (m, n) == (1, 1) else np_shift(h, m, n, k)
    rel_close(out, expected, EXACT, f"{kind} tap {(m, n)}")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["tsru_c", "ptsru_s", "tsru_s"])
def test_tsru_c_and_s_u_zero_is_content_of_warped_state(impl, kind):
    """u == 0 in Eq. 10: h_t = c = rho(W_c *k [h~; x] + b_c) (Eq. 8) with h~ a one-hot shift."""
    k = 3
    p, h, x = make(kind, 2, 4, 3, 2, 2, k, seed=9)
    saturate(p["u"], -50.0)
    force_tap(kind, p, 2 * k + 0)  # (m, n) = (2, 0)
    out = impl(kind, p, h, x)
    h_tilde = np_shift(h, 2, 0, k)
    c = np.maximum(np_conv2d(np.concatenate([h_tilde, x], -1), p["c"]["W"], p["c"]["b"]), 0.0)
    rel_close(out, c, EXACT, kind)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["tsru_p", "ptsru_p"])
def test_tsru_p_u_zero_is_content_of_unwarped_state(impl, kind):
    """TSRU_p with u == 0: h_t = c = rho(W_c *k [h_{t-1}; x_t] + b_c), whatever the warp."""
    k = 3
    p, h, x = make(kind, 2, 4, 3, 2, 2, k, seed=10)
    saturate(p["u"], -50.0)
    force_tap(kind, p, 0)
    out = impl(kind, p, h, x, activation="tanh")
    c = np.tanh(np_conv2d(np.concatenate([h, x], -1), p["c"]["W"], p["c"]["b"]))
    rel_close(out, c, EXACT, kind)


@pytest.mark.parametrize("impl", IMPLS)
def test_tsru_s_gate_sees_warped_state_and_content(impl):
    """TSRU_s, u = sigma(W_u *k [h~; c] + b_u): with W_u reading only the h~ half (k=1, identity
    on each channel, x8) and a shift warp, u is a known function of h~."""
    kind, k = "tsru_s", 1
    p, h, x = make(kind, 1, 3, 4, 2, 2, k, seed=11)
    c_h = 2
    Wu = np.zeros((1, 1, 2 * c_h, c_h))
    Wu[0, 0, :c_h, :] = 8.0 * np.eye(c_h)
    p["u"] = {"W": Wu, "b": np.zeros(c_h)}
    out = impl(kind, p, h, x)
    # k = 1: the single tap is the identity warp, h~ = h
    c = np.maximum(np_conv2d(np.concatenate([h, x], -1), p["c"]["W"], p["c"]["b"]), 0.0)
    u = 1.0 / (1.0 + np.exp(-8.0 * h))
    rel_close(out, u * h + (1 - u) * c, EXACT)


@pytest.mark.parametrize("impl", IMPLS)
def test_convgru_u_one_returns_h(impl):
    p, h, x = make("convgru", 2, 3, 5, 3, 4, 3, seed=12)
    saturate(p["u"], 50.0)
    rel_close(impl("convgru", p, h, x), h, EXACT)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("activation", [None, "tanh"])
@pytest.mark.parametrize("k", [1, 3])
def test_convgru_u_zero_r_zero_is_content_of_input(impl, activation, k):
    """r == 0 (Eq. 2: h' = 0) and u == 0 (Eq. 5: h_t = c): h_t = rho(W_c *k [0; x] + b_c)."""
    p, h, x = make("convgru", 1, 4, 3, 2, 3, k, seed=13)
    saturate(p["u"], -50.0)
    saturate(p["r"], -50.0)
    out = impl("convgru", p, h, x, activation=activation)
    if k == 1:  # closed form: a 1x1 conv on [0; x] is x @ (the x rows of W_c) + b_c
        pre = x @ p["c"]["W"][0, 0, 3:, :] + p["c"]["b"]
    else:
        pre = np_conv2d(np.concatenate([np.zeros_like(h), x], -1), p["c"]["W"], p["c"]["b"])
    rho = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0.0))
    rel_close(out, rho(pre), EXACT)


@pytest.mark.parametrize("impl", IMPLS)
def test_ktrajgru_u_one_returns_unwarped_h(impl):
    """Eq. 22 mixes the unwarped h_{t-1}: with u == 1, h_t = h_{t-1} even under a shift warp."""
    p, h, x = make("ktrajgru", 2, 4, 3, 2, 3, 3, seed=14)
    saturate(p["u"], 50.0)
    force_tap("ktrajgru", p, 0)
    out, theta = impl("ktrajgru", p, h, x, return_warp=True)
    assert np.allclose(to_np(theta["W"])[..., 0], 1.0)  # the warp is a shift ...
    rel_close(out, h, EXACT)  # ... but h_t is h_{t-1}


@pytest.mark.parametrize("impl", IMPLS)
def test_ktrajgru_reset_gate_sees_warped_state(impl):
    """u == 0, r == 1, one-hot shift: h_t = c = tanh(W_c *k [h~; x] + b_c) with h~ shifted (Eqs. 19-20).

    Then r == sigma(W_r *k [h~; x]) through a kernel reading only h~ (k=1, x8 identity)
    checks that Eq. 18 sees the warped state."""
    k = 3
    p, h, x = make("ktrajgru", 1, 4, 4, 2, 2, k, seed=15)
    saturate(p["u"], -50.0)
    saturate(p["r"], 50.0)
    force_tap("ktrajgru", p, 1 * k + 2)  # (m, n) = (1, 2)
    h_tilde = np_shift(h, 1, 2, k)
    out = impl("ktrajgru", p, h, x)
    rel_close(out, np.tanh(np_conv2d(np.concatenate([h_tilde, x], -1), p["c"]["W"], p["c"]["b"])), EXACT)
    Wr = np.zeros_like(p["r"]["W"])
    Wr[1, 1, :2, :] = 8.0 * np.eye(2)  # centre tap of the 3x3 kernel, h~ rows only
    p["r"] = {"W": Wr, "b": np.zeros(2)}
    r = 1.0 / (1.0 + np.exp(-8.0 * h_tilde))
    out = impl("ktrajgru", p, h, x)
    rel_close(out, np.tanh(np_conv2d(np.concatenate([r * h_tilde, x], -1), p["c"]["W"], p["c"]["b"])), EXACT)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("activation", [None, "tanh"])
def test_convlstm_closed_forms(impl, activation):
    """F.3 with saturated gates.  (a) i = 0, f = 1, o = 1: c_t = c, h_t = rho(c).
    (b) i = 1, f = 0, o = 1, zero kernel, candidate bias 0.7: c_t = rho(0.7), h_t = rho(rho(0.7))."""
    p, state, x = make("convlstm", 2, 3, 4, 1, 4, 3, seed=16)
    half = 2
    rho = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0.0))
    W = p["gates"]["W"].copy()
    W[..., : 3 * half] = 0.0  # gates i, f, o constant
    b = p["gates"]["b"].copy()
    b[0:half], b[half : 2 * half], b[2 * half : 3 * half] = -50.0, 50.0, 50.0
    out = impl("convlstm", {"gates": {"W": W, "b": b}}, state, x, activation=activation)
    c = state[..., half:]
    rel_close(out, np.concatenate([rho(c), c], -1), EXACT, "forget-only")

    W = np.zeros_like(p["gates"]["W"])
    b = np.zeros_like(p["gates"]["b"])
    b[0:half], b[half : 2 * half], b[2 * half : 3 * half], b[3 * half :] = 50.0, -50.0, 50.0, 0.7
    out = impl("convlstm", {"gates": {"W": W, "b": b}}, state, x, activation=activation)
    c_t = rho(np.full(c.shape, 0.7))
    rel_close(out, np.concatenate([rho(c_t), c_t], -1), EXACT, "write-only")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_default_activation(impl, kind):
    p, h, x = make(kind, 1, 3, 4, 2, 2, 3, seed=17)
    default = to_np(impl(kind, p, h, x))
    expected_name = "tanh" if kind == "ktrajgru" else "relu"
    other = "relu" if expected_name == "tanh" else "tanh"
    np.testing.assert_array_equal(default, to_np(impl(kind, p, h, x, activation=expected_name)))
    assert np.max(np.abs(default - to_np(impl(kind, p, h, x, activation=other)))) > 1e-3


# ---------------------------------------------------------------------------
# init_cell and the orthogonal initialiser


def expected_shapes(kind):
    """Hand-derived parameter shapes for c_in = 3, c_hidden = 4, k = 3 (F.1: C_f = 7, C_1 = 3,
    P = 16*3 = 48, D = 24, N = 9, k*k*N = 81; PTSRU C_2 = 1; ConvLSTM halves of 2)."""

    def conv(ci, co):
        return {"W": (3, 3, ci, co), "b": (co,)}

    fac = {"conv": conv(7, 3), "fc1": {"W": (48, 24), "b": (24,)}, "fc2": {"W": (24, 81), "b": (81,)}, "S": conv(7, 9)}
    pix = {"conv1": conv(7, 3), "conv2": conv(3, 1), "conv3": conv(1, 9)}
    return {
        "convgru": {"r": conv(7, 4), "c": conv(7, 4), "u": conv(7, 4)},
        "convlstm": {"gates": conv(2 + 3, 8)},
        "ktrajgru": {"f": fac, "r": conv(7, 4), "c": conv(7, 4), "u": conv(7, 4)},
        "tsru_c": {"f": fac, "c": conv(7, 4), "u": conv(7, 4)},
        "tsru_p": {"f": fac, "c": conv(7, 4), "u": conv(7, 4)},
        "tsru_s": {"f": fac, "c": conv(7, 4), "u": conv(8, 4)},
        "ptsru_c": {"f": pix, "c": conv(7, 4), "u": conv(7, 4)},
        "ptsru_p": {"f": pix, "c": conv(7, 4), "u": conv(7, 4)},
        "ptsru_s": {"f": pix, "c": conv(7, 4), "u": conv(8, 4)},
    }[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_init_cell_shapes_orthogonality_zero_biases(kind):
    p = cells.init_cell(kind, 3, 4, rng=np.random.default_rng(0))
    assert tree_map(lambda a: a.shape, p) == expected_shapes(kind)
    for path, a in tree_paths(p):
        assert isinstance(a, np.ndarray) and a.dtype == np.float32, path
        if path[-1] == "b":
            assert np.all(a == 0), path
            continue
        M = a.reshape(-1, a.shape[-1]).astype(np.float64)  # (fan_in, C_out)
        fan_in, c_out = M.shape
        gram = M.T @ M if fan_in >= c_out else M @ M.T
        np.testing.assert_allclose(gram, np.eye(min(fan_in, c_out)), atol=1e-5, err_msg=str(path))  # float32


@pytest.mark.parametrize("kind", ["convgru", "tsru_p", "ptsru_s"])
def test_init_cell_deterministic_and_dtype(kind):
    a = cells.init_cell(kind, 2, 2, rng=np.random.default_rng(123), dtype=np.float64)
    b = cells.init_cell(kind, 2, 2, rng=np.random.default_rng(123), dtype=np.float64)
    c = cells.init_cell(kind, 2, 2, rng=np.random.default_rng(124), dtype=np.float64)
    for (pa, la), (pb, lb) in zip(tree_paths(a), tree_paths(b)):
        assert pa == pb and la.dtype == np.float64
        np.testing.assert_array_equal(la, lb)
    assert any(not np.array_equal(la, lc) for (_, la), (_, lc) in zip(tree_paths(a), tree_paths(c)))


@pytest.mark.parametrize("shape", [(3, 3, 2, 5), (4, 4), (2, 7), (1, 1, 1, 6), (5, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_orthogonal(shape, dtype):
    a = initializers.orthogonal(np.random.default_rng(0), shape, dtype)
    assert a.shape == shape and a.dtype == dtype
    M = a.reshape(-1, shape[-1]).astype(np.float64)
    fan_in, c_out = M.shape
    gram = M.T @ M if fan_in >= c_out else M @ M.T  # columns orthonormal, else rows
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gram, np.eye(min(fan_in, c_out)), atol=tol)
    np.testing.assert_array_equal(a, initializers.orthogonal(np.random.default_rng(0), shape, dtype))


def test_orthogonal_sign_convention_gives_unbiased_matrix():
    """The QR sign fix (diag(R) > 0) makes Q Haar-distributed: the mean of many draws is ~0,
    while without the fix the diagonal of Q would be biased positive."""
    rng = np.random.default_rng(0)
    mean_diag = np.mean([np.diag(initializers.orthogonal(rng, (4, 4), np.float64)) for _ in range(400)], axis=0)
    # a Haar entry has std 1/2, so the mean of 400 has std 0.025: 0.15 is 6 sigma; without the fix |mean| ~ 0.4
    assert np.all(np.abs(mean_diag) < 0.15)


def test_orthogonal_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match=r"orthogonal\(\): argument 'rng'"):
        initializers.orthogonal(0, (3, 3))
    with pytest.raises(ValueError, match=r"orthogonal\(\): argument 'shape'.*at least 2"):
        initializers.orthogonal(rng, (3,))
    with pytest.raises(ValueError, match=r"orthogonal\(\): argument 'shape'"):
        initializers.orthogonal(rng, (3, 0))
    with pytest.raises(TypeError, match=r"orthogonal\(\): argument 'dtype'"):
        initializers.orthogonal(rng, (3, 3), np.int32)
    with pytest.raises(TypeError, match=r"orthogonal\(\): argument 'shape'"):
        initializers.orthogonal(rng, (3, 2.5))


# ---------------------------------------------------------------------------
# errors


def test_unknown_kind_lists_valid_kinds():
    p, h, x = make("convgru", 1, 2, 2, 1, 2, 3)
    with pytest.raises(ValueError, match=r"cell_step\(\): argument 'kind'.*convgru, convlstm, ktrajgru.*'gru'"):
        cells.cell_step("gru", p, h, x)
    with pytest.raises(ValueError, match=r"init_cell\(\): argument 'kind'.*ptsru_s"):
        cells.init_cell("lstm", 1, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"cell_step\(\): argument 'kind'.*tsru_c"):
        rcells.cell_step("gru", p, h, x)


def test_shape_mismatch_errors_name_the_argument():
    p, h, x = make("tsru_c", 1, 3, 4, 2, 2, 3)
    with pytest.raises(ValueError, match=r"cell_step\(\): argument 'x'.*H=3"):
        cells.cell_step("tsru_c", p, h, x[:, :2])
    with pytest.raises(ValueError, match=r"cell_step\(\): argument 'h' must be a 4-D"):
        cells.cell_step("tsru_c", p, h[0], x)
    with pytest.raises(ValueError, match=r"cell_step\(\).*'h'.*'x'.*share"):
        rcells.cell_step("tsru_c", p, h, x[:, :2])


def test_params_shape_mismatch_names_the_param_key():
    p, h, x = make("tsru_c", 1, 3, 4, 2, 2, 3)
    h3 = np.zeros((1, 3, 4, 3))  # 3 hidden channels, params made for 2
    with pytest.raises(
        ValueError,
        match=r"cell_step\(\): argument 'params\['f'\]\['conv'\]\['W'\]'.*\(3, 3, 5, 2\).*got shape \(3, 3, 4, 2\)",
    ):
        cells.cell_step("tsru_c", p, h3, x)
    p2 = tree_map(lambda a: a, p)
    p2["f"]["fc1"]["W"] = np.zeros((5, 5))
    with pytest.raises(ValueError, match=r"params\['f'\]\['fc1'\]\['W'\]"):
        cells.cell_step("tsru_c", p2, h, x)
    p3 = tree_map(lambda a: a, p)
    p3["u"]["W"] = np.zeros((2, 2, 4, 2))
    with pytest.raises(ValueError, match=r"params\['u'\]\['W'\].*odd k"):
        cells.cell_step("tsru_c", p3, h, x)


def test_params_layout_errors():
    p, h, x = make("ktrajgru", 1, 3, 4, 2, 2, 3)
    with pytest.raises(ValueError, match=r"cell_step\(\).*unexpected params\['r'\]"):
        cells.cell_step("tsru_c", p, h, x)  # K-TrajGRU params given to TSRU_c
    q = tree_map(lambda a: a, p)
    del q["f"]["S"]
    with pytest.raises(ValueError, match=r"cell_step\(\).*missing params\['f'\]\['S'\]"):
        cells.cell_step("ktrajgru", q, h, x)
    with pytest.raises(ValueError, match=r"cell_step\(\): params\['f'\] for kind 'ktrajgru' must have key 'S'"):
        rcells.cell_step("ktrajgru", q, h, x)
    with pytest.raises(TypeError, match=r"cell_step\(\): argument 'params' must be a dict"):
        cells.cell_step("ktrajgru", [1, 2], h, x)
    pix, _, _ = make("ptsru_c", 1, 3, 4, 2, 2, 3)
    with pytest.raises(ValueError, match=r"missing params\['f'\]\['conv'\]"):
        cells.cell_step("tsru_c", pix, h, x)  # pixelwise hyper-network given to a factorized kind


def test_convlstm_needs_even_hidden_channels():
    with pytest.raises(ValueError, match=r"init_cell\(\): argument 'c_hidden' must be even.*got 3"):
        cells.init_cell("convlstm", 2, 3, rng=np.random.default_rng(0))
    p, h, x = make("convlstm", 1, 3, 3, 2, 2, 3)
    h_odd = np.zeros((1, 3, 3, 3))
    with pytest.raises(ValueError, match=r"cell_step\(\): argument 'h' must have an even number of channels"):
        cells.cell_step("convlstm", p, h_odd, x)
    with pytest.raises(ValueError, match=r"cell_step\(\): 'h' must have an even number"):
        rcells.cell_step("convlstm", p, h_odd, x)


def test_dtype_errors():
    p, h, x = make("convgru", 1, 3, 3, 2, 2, 3)
    with pytest.raises(TypeError, match=r"cell_step\(\): argument 'h' must have a real floating dtype"):
        cells.cell_step("convgru", p, h.astype(np.int64), x)
    with pytest.raises(TypeError, match=r"cell_step\(\): arguments 'h' and 'x' must share one dtype"):
        cells.cell_step("convgru", p, h, x.astype(np.float32))
    p32 = tree_map(lambda a: a.astype(np.float32), p)
    with pytest.raises(TypeError, match=r"cell_step\(\): params\['r'\]\['W'\] must have the dtype of 'h'"):
        cells.cell_step("convgru", p32, h, x)
    with pytest.raises(TypeError, match=r"cell_step\(\): argument 'h' must be a floating array"):
        rcells.cell_step("convgru", p, h.astype(np.int64), x)
    with pytest.raises(TypeError, match=r"cell_step\(\): argument 'x' must be an array"):
        cells.cell_step("convgru", p, h, [[1.0]])


def test_mixed_namespaces_error():
    p, h, x = make("convgru", 1, 3, 3, 2, 2, 3)
    with pytest.raises(TypeError, match=r"cell_step\(\): 'h', 'x' and every array in 'params' must come from one"):
        cells.cell_step("convgru", p, xps.asarray(h), xps.asarray(x))


def test_option_errors():
    p, h, x = make("convgru", 1, 3, 3, 2, 2, 3)
    with pytest.raises(ValueError, match=r"cell_step\(\): argument 'activation' must be one of relu, tanh; got 'elu'"):
        cells.cell_step("convgru", p, h, x, activation="elu")
    with pytest.raises(ValueError, match=r"cell_step\(\): argument 'activation' must be one of relu, tanh"):
        rcells.cell_step("convgru", p, h, x, activation="elu")
    with pytest.raises(TypeError, match=r"cell_step\(\): argument 'return_warp' must be a bool"):
        cells.cell_step("convgru", p, h, x, return_warp="yes")


def test_init_cell_argument_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"init_cell\(\): argument 'k' must be an odd"):
        cells.init_cell("tsru_p", 2, 2, 4, rng=rng)
    with pytest.raises(TypeError, match=r"init_cell\(\): argument 'k'"):
        cells.init_cell("tsru_p", 2, 2, True, rng=rng)
    with pytest.raises(ValueError, match=r"init_cell\(\): argument 'c_in' must be a positive int"):
        cells.init_cell("tsru_p", 0, 2, rng=rng)
    with pytest.raises(TypeError, match=r"init_cell\(\): argument 'c_hidden'"):
        cells.init_cell("tsru_p", 2, 2.0, rng=rng)
    with pytest.raises(TypeError, match=r"init_cell\(\): argument 'rng' must be a numpy.random.Generator"):
        cells.init_cell("tsru_p", 2, 2, rng=0)
    with pytest.raises(TypeError, match=r"init_cell\(\): argument 'dtype'"):
        cells.init_cell("tsru_p", 2, 2, rng=rng, dtype=np.int32)
    with pytest.raises(ValueError, match=r"init_cell\(\): argument 'n_kernels' only applies to the factorized"):
        cells.init_cell("ptsru_p", 2, 2, rng=rng, n_kernels=4)
    with pytest.raises(ValueError, match=r"init_cell\(\): argument 'n_kernels' must be a positive int"):
        cells.init_cell("tsru_p", 2, 2, rng=rng, n_kernels=0)


def test_reference_uses_reference_primitives_only():
    """The reference is the spec: it must not import trivd_core."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(rcells))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not any("trivd_core" in name for name in names)
    assert rops.conv2d is rcells.conv2d


def _assigned_names(module, function):
    """The names a function of ``module`` binds: its parameters and every assignment target."""
    import ast
    import inspect

    fn = next(
        n for n in ast.walk(ast.parse(inspect.getsource(module))) if isinstance(n, ast.FunctionDef) and n.name == function
    )
    names = {a.arg for a in fn.args.args}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


# The paper's symbols of each cell, as the code spells them (h_tm1 = h_{t-1}, h_tilde_tm1 = h~_{t-1},
# h_prime_t = h'_t); W_o, b_o unpacked from params[o] before the equations.
_SYMBOLS = {
    "_convgru": {"h_tm1", "x_t", "r", "h_prime_t", "c", "u", "h_t", "W_r", "b_r", "W_c", "b_c", "W_u", "b_u"},
    "_convlstm": {"h_tm1", "c_tm1", "x_t", "i", "f", "o", "g", "c_t", "h_t", "W_gates", "b_gates"},
    "_ktrajgru": {"h_tm1", "x_t", "theta", "h_tilde_tm1", "W", "r", "h_prime_t", "c", "u", "h_t"},
    "_tsru": {"h_tm1", "x_t", "theta", "h_tilde_tm1", "W", "c", "u", "h_t", "W_c", "b_c", "W_u", "b_u"},
    "_theta": {"h_tm1", "x_t"},
    "_warp": {"h_tm1", "theta", "W", "h_tilde_tm1"},
    "_hyper_factorized": {"h_tm1", "x_t", "z", "a", "v", "e", "o", "w", "S", "W_conv", "W_fc1", "W_fc2", "W_S"},
    "_hyper_pixelwise": {"h_tm1", "x_t", "z", "a_1", "a_2", "W_conv1", "W_conv2", "W_conv3"},
}


@pytest.mark.parametrize("function", sorted(_SYMBOLS))
def test_core_and_reference_use_the_papers_names(function):
    """A student reading ``reference.cells`` finds the same symbols in ``trivd_core.cells``, time index included."""
    ref, core = _assigned_names(rcells, function), _assigned_names(cells, function)
    assert _SYMBOLS[function] <= ref, f"reference.cells.{function} lacks {sorted(_SYMBOLS[function] - ref)}"
    assert _SYMBOLS[function] <= core, f"trivd_core.cells.{function} lacks {sorted(_SYMBOLS[function] - core)}"
    stale = {"h", "x", "info", "h_new", "c_new", "h_tilde", "h_prime"} & (ref | core)
    assert not stale, f"{function} binds names without their time index: {sorted(stale)}"
