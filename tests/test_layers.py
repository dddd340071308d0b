"""Spectral normalisation, orthogonality penalty and (conditional) batch norm.

Core (NumPy and array_api_strict) against the loop reference, plus hand-derived and
closed-form values.

Tolerances
----------
float64: rtol 1e-10 (project rule), atol 1e-12 for entries that are ~0 (the outputs
are O(1), so 1e-12 absolute is still ~1e4 float64 ulps above the expected rounding).
float32: the core in float32 is compared with the reference run in float64 on the
same values, rtol = atol = 2e-5: float32's unit roundoff is 6e-8 and every output is
an O(1) combination of at most ~100 products, a normalisation (sqrt, divide) and a
subtraction of the mean, so accumulated rounding stays below ~100 * 6e-8 = 6e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from _test_helpers import close32, close64, to_np
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import layers as ref
from trivd_core import layers as core
from trivd_core import ops


def cast(tree, dtype):
    if isinstance(tree, dict):
        return {k: cast(v, dtype) for k, v in tree.items()}
    return np.asarray(tree, dtype=dtype)


WEIGHT_SHAPES = [(3, 2), (2, 5), (1, 1), (5, 1), (3, 3, 2, 4), (1, 3, 1, 2), (3, 3, 3, 1, 2)]


# ---------------------------------------------------------------------------
# spectral normalisation


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape", WEIGHT_SHAPES)
def test_spectral_normalize_matches_reference(xp, shape):
    rng = np.random.default_rng(sum(shape))
    w = rng.standard_normal(shape)
    u = rng.standard_normal(shape[-1])
    w_ref, u_ref = ref.spectral_normalize(w, u)
    w_sn, u_new = core.spectral_normalize(xp.asarray(w), xp.asarray(u))
    assert tuple(w_sn.shape) == shape and tuple(u_new.shape) == (shape[-1],)
    close64(w_sn, w_ref)
    close64(u_new, u_ref)
    w32, u32 = core.spectral_normalize(xp.asarray(w.astype(np.float32)), xp.asarray(u.astype(np.float32)))
    close32(w32, w_ref)
    close32(u32, u_ref)


@pytest.mark.parametrize("impl", [ref, core])
def test_spectral_normalize_diagonal_is_exact(impl):
    # W = diag(3, 1), u = e1: W u = (3, 0) -> v = e1; W^T v = (3, 0) -> u_new = e1;
    # sigma = v^T W u_new = 3; w_sn = diag(1, 1/3).
    w = np.diag([3.0, 1.0])
    w_sn, u_new = impl.spectral_normalize(w, np.array([1.0, 0.0]))
    np.testing.assert_array_equal(to_np(u_new), [1.0, 0.0])
    np.testing.assert_array_equal(to_np(w_sn), np.diag([1.0, 1.0 / 3.0]))
    assert w[0, 0] / to_np(w_sn)[0, 0] == 3.0


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 1, 3), (2, 5)])
def test_spectral_normalize_iterated_converges_to_largest_singular_value(xp, shape):
    rng = np.random.default_rng(7)
    fan_in, c_out = int(np.prod(shape[:-1])), shape[-1]
    r = min(fan_in, c_out)
    # W = P diag(s) Q^T with a clear spectral gap (s2/s1 = 2/3), so 100 iterations are plenty.
    P, _ = np.linalg.qr(rng.standard_normal((fan_in, r)))
    Q, _ = np.linalg.qr(rng.standard_normal((c_out, r)))
    s = np.array([3.0, 2.0, 1.0][:r])
    W = P @ np.diag(s) @ Q.T
    w = W.reshape(shape)
    sigma_svd = np.linalg.svd(W, compute_uv=False)[0]
    u = xp.asarray(np.ones(c_out))
    w_ns = xp.asarray(w)
    for _ in range(100):
        w_sn, u = core.spectral_normalize(w_ns, u)
    w_sn = to_np(w_sn)
    k = np.unravel_index(np.argmax(np.abs(w)), w.shape)
    np.testing.assert_allclose(w[k] / w_sn[k], sigma_svd, rtol=1e-10)
    # The normalised weight then has spectral norm 1.
    np.testing.assert_allclose(np.linalg.svd(w_sn.reshape(fan_in, c_out), compute_uv=False)[0], 1.0, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    fan_in=st.integers(1, 5),
    c_out=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_spectral_sigma_is_between_zero_and_largest_singular_value(fan_in, c_out, seed):
    # sigma = v^T W u_new = ||W^T v|| (u_new is W^T v normalised) and ||W^T v|| <= ||W||_2 ||v|| = s_max.
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((fan_in, c_out))
    u = rng.standard_normal(c_out)
    w_sn, u_new = core.spectral_normalize(W, u)
    sigma = np.sum(W * W) / np.sum(W * np.asarray(w_sn))  # w_sn = W / sigma
    s_max = np.linalg.svd(W, compute_uv=False)[0]
    assert 0 < sigma <= s_max * (1 + 1e-12)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(u_new)), 1.0, rtol=1e-12)


def test_spectral_normalize_gradient_flows_through_sigma_only():
    torch = pytest.importorskip("torch")
    from array_api_compat import is_torch_namespace

    def detach(x):
        return x.detach()

    ops.register_fast_path("stop_gradient", is_torch_namespace, detach)
    try:
        rng = np.random.default_rng(3)
        W = rng.standard_normal((3, 2))
        u0 = rng.standard_normal(2)
        G = rng.standard_normal((3, 2))
        w_t = torch.tensor(W, requires_grad=True)
        u_t = torch.tensor(u0, requires_grad=True)
        w_sn, u_new = core.spectral_normalize(w_t, u_t)
        assert not u_new.requires_grad
        torch.sum(w_sn * torch.tensor(G)).backward()
    finally:
        ops.unregister_fast_path("stop_gradient", detach)
    assert u_t.grad is None
    # Closed form with v, u_new constants: L = <G, W> / sigma, sigma = v^T W u_new,
    # dL/dW = G / sigma - <G, W> / sigma^2 * v u_new^T.
    v = W @ u0
    v = v / np.linalg.norm(v)
    un = W.T @ v
    un = un / np.linalg.norm(un)
    sigma = v @ W @ un
    want = G / sigma - np.sum(G * W) / sigma**2 * np.outer(v, un)
    np.testing.assert_allclose(w_t.grad.numpy(), want, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# orthogonality penalty


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape", WEIGHT_SHAPES)
def test_orthogonal_penalty_matches_reference(xp, shape):
    rng = np.random.default_rng(10 + sum(shape))
    w = rng.standard_normal(shape)
    want = ref.orthogonal_penalty(w)
    got = core.orthogonal_penalty(xp.asarray(w))
    assert tuple(got.shape) == ()
    close64(got, want)
    close32(core.orthogonal_penalty(xp.asarray(w.astype(np.float32))), want)


@pytest.mark.parametrize("impl", [ref, core])
def test_orthogonal_penalty_hand_values(impl):
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 3)))  # orthonormal columns
    np.testing.assert_allclose(to_np(impl.orthogonal_penalty(Q)), 0.0, atol=1e-28)
    np.testing.assert_allclose(to_np(impl.orthogonal_penalty(Q.reshape(5, 1, 1, 3))), 0.0, atol=1e-28)
    # Two unit columns a, b: W^T W = [[1, a.b], [a.b, 1]] -> penalty 2 (a.b)^2.
    a = np.array([3.0, 4.0, 0.0]) / 5.0
    b = np.array([0.0, 0.6, 0.8])
    ab = 0.48  # 4/5 * 0.6
    np.testing.assert_allclose(to_np(impl.orthogonal_penalty(np.stack([a, b], axis=1))), 2 * ab**2, rtol=1e-14)
    # [[1, 1], [0, 1]]: W^T W = [[1, 1], [1, 2]] -> 1 + 1 = 2; the diagonal is ignored.
    assert float(to_np(impl.orthogonal_penalty(np.array([[1.0, 1.0], [0.0, 1.0]])))) == 2.0
    # One output column: no off-diagonal entries.
    assert float(to_np(impl.orthogonal_penalty(np.ones((4, 1))))) == 0.0


# ---------------------------------------------------------------------------
# batch norm

BN_CASES = [
    ((2, 3, 4, 2), (0, 1, 2)),  # frames, per channel
    ((1, 2, 3, 1), (0, 1, 2)),  # B = 1, C = 1, non-square
    ((2, 3, 2, 3, 2), (0, 2, 3)),  # video, per time step and channel
    ((3, 2, 1, 2, 3), (0, 1, 2, 3)),  # video, over time as well
    ((2, 4, 3, 2), (1, 2)),  # per sample (instance-norm-like), negative not needed
    ((2, 4, 3, 2), (-3, -2, 0)),  # negative axes
]


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape,axes", BN_CASES)
def test_batch_stats_and_batch_norm_match_reference(xp, shape, axes):
    rng = np.random.default_rng(len(shape) + sum(shape))
    x = rng.standard_normal(shape) * 2.0 + 0.5
    C = shape[-1]
    gain = rng.standard_normal(C)
    bias = rng.standard_normal(C)
    m_ref, v_ref = ref.batch_stats(x, axes)
    m, v = core.batch_stats(xp.asarray(x), axes)
    assert (
        tuple(m.shape)
        == m_ref.shape
        == tuple(1 if a % len(shape) in {b % len(shape) for b in axes} else d for a, d in enumerate(shape))
    )
    close64(m, m_ref)
    close64(v, v_ref)
    y_ref = ref.batch_norm(x, gain, bias, axes)
    close64(core.batch_norm(xp.asarray(x), xp.asarray(gain), xp.asarray(bias), axes), y_ref)
    y32 = core.batch_norm(*(xp.asarray(a.astype(np.float32)) for a in (x, gain, bias)), axes)
    close32(y32, y_ref)
    # Per-sample gain/bias of keepdims shape (B, 1, ..., 1, C).
    per = (shape[0],) + (1,) * (len(shape) - 2) + (C,)
    g2, b2 = rng.standard_normal(per), rng.standard_normal(per)
    close64(core.batch_norm(xp.asarray(x), xp.asarray(g2), xp.asarray(b2), axes), ref.batch_norm(x, g2, b2, axes))


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape,axes", BN_CASES)
def test_batch_norm_standardises_each_group(xp, shape, axes):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 3.0 - 1.0
    eps = 1e-5
    C = shape[-1]
    y = to_np(core.batch_norm(xp.asarray(x), xp.asarray(np.ones(C)), xp.asarray(np.zeros(C)), axes, eps=eps))
    axes_t = tuple(a % len(shape) for a in axes)
    np.testing.assert_allclose(y.mean(axis=axes_t), 0.0, atol=1e-12)
    var_x = x.var(axis=axes_t)  # NumPy's biased variance, computed independently
    np.testing.assert_allclose(y.var(axis=axes_t), var_x / (var_x + eps), rtol=1e-10)
    # With gain g and bias beta the groups have mean beta and std |g| * sqrt(var / (var + eps)).
    g, beta = np.full(C, -2.0), np.full(C, 0.25)
    y = to_np(core.batch_norm(xp.asarray(x), xp.asarray(g), xp.asarray(beta), axes, eps=eps))
    np.testing.assert_allclose(y.mean(axis=axes_t), 0.25, rtol=1e-10)
    np.testing.assert_allclose(y.std(axis=axes_t), 2.0 * np.sqrt(var_x / (var_x + eps)), rtol=1e-10)


@settings(max_examples=15, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=4, max_size=5).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(0.1, 100.0),
)
def test_batch_norm_standardises_hypothesis(shape, seed, scale):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    axes = (0, 1, 2) if len(shape) == 4 else (0, 2, 3)
    C = shape[-1]
    y = np.asarray(core.batch_norm(x, np.ones(C), np.zeros(C), axes, eps=1e-5))
    var_x = x.var(axis=axes)
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=axes), var_x / (var_x + 1e-5), rtol=1e-9, atol=1e-12)


@pytest.mark.xp_libraries("numpy", "array_api_strict")
def test_batch_norm_standing_statistics(xp):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 2, 3))
    gain, bias = rng.standard_normal(3), rng.standard_normal(3)
    axes = (0, 1, 2)
    X, G, Bi = xp.asarray(x), xp.asarray(gain), xp.asarray(bias)
    # Feeding the batch's own statistics back reproduces the batch-statistics result.
    m, v = core.batch_stats(X, axes)
    close64(core.batch_norm(X, G, Bi, axes, mean=m, var=v), to_np(core.batch_norm(X, G, Bi, axes)))
    # Arbitrary standing statistics of shape (C,): closed form by NumPy broadcasting.
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([4.0, 0.25, 1.0])
    want = (x - mean) / np.sqrt(var + 1e-5) * gain + bias
    got = core.batch_norm(X, G, Bi, axes, mean=xp.asarray(mean), var=xp.asarray(var))
    close64(got, want)
    close64(got, ref.batch_norm(x, gain, bias, axes, mean=mean, var=var))


# ---------------------------------------------------------------------------
# conditional batch norm


def cbn_params(rng, D, C, scale=1.0):
    return {
        "gain": {"w": scale * rng.standard_normal((D, C)), "b": scale * rng.standard_normal(C)},
        "bias": {"w": scale * rng.standard_normal((D, C)), "b": scale * rng.standard_normal(C)},
    }


CBN_SHAPES = [((2, 3, 4, 2), 3), ((1, 2, 3, 1), 2), ((2, 3, 2, 3, 2), 4), ((3, 2, 1, 2, 1), 1)]


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape,D", CBN_SHAPES)
def test_conditional_batch_norm_matches_reference(xp, shape, D):
    rng = np.random.default_rng(sum(shape) + D)
    x = rng.standard_normal(shape)
    cond = rng.standard_normal((shape[0], D))
    params = cbn_params(rng, D, shape[-1], 0.5)
    y_ref = ref.conditional_batch_norm(x, cond, params)
    y = core.conditional_batch_norm(xp.asarray(x), xp.asarray(cond), xp.asarray(params))
    close64(y, y_ref)
    y32 = core.conditional_batch_norm(
        xp.asarray(x.astype(np.float32)), xp.asarray(cond.astype(np.float32)), xp.asarray(cast(params, np.float32))
    )
    close32(y32, y_ref)
    # Explicit axes and standing statistics go through as in batch_norm.
    axes = (0, 1, 2, 3)[: len(shape) - 1]
    mean, var = ref.batch_stats(x, axes)
    close64(
        core.conditional_batch_norm(
            xp.asarray(x), xp.asarray(cond), xp.asarray(params), axes=axes, mean=xp.asarray(mean), var=xp.asarray(var)
        ),
        ref.conditional_batch_norm(x, cond, params, axes=axes, mean=mean, var=var),
    )


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape,D", CBN_SHAPES)
def test_conditional_batch_norm_closed_forms(xp, shape, D):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape) + 1.0
    cond = rng.standard_normal((shape[0], D))
    C = shape[-1]
    axes = (0, 1, 2) if len(shape) == 4 else (0, 2, 3)
    # Zero affine maps: gain = 1 + 0, bias = 0 -> plain batch norm (statistics per time step for videos).
    zero = cbn_params(rng, D, C, 0.0)
    y = to_np(core.conditional_batch_norm(xp.asarray(x), xp.asarray(cond), xp.asarray(zero)))
    mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    close64(y, (x - mu) / np.sqrt(var + 1e-5))
    # General affine maps, closed form with NumPy broadcasting.
    p = cbn_params(rng, D, C)
    gain = 1 + cond @ p["gain"]["w"] + p["gain"]["b"]
    bias = cond @ p["bias"]["w"] + p["bias"]["b"]
    per = (shape[0],) + (1,) * (len(shape) - 2) + (C,)
    want = (x - mu) / np.sqrt(var + 1e-5) * gain.reshape(per) + bias.reshape(per)
    close64(core.conditional_batch_norm(xp.asarray(x), xp.asarray(cond), xp.asarray(p)), want)


# ---------------------------------------------------------------------------
# errors


def test_spectral_and_ortho_errors():
    w = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"spectral_normalize\(\).*'w'.*at least 2 axes"):
        core.spectral_normalize(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"spectral_normalize\(\).*'u'.*\(2,\)"):
        core.spectral_normalize(w, np.ones(3))
    with pytest.raises(ValueError, match=r"spectral_normalize\(\).*'u'"):
        core.spectral_normalize(w, np.ones((2, 1)))
    with pytest.raises(TypeError, match=r"spectral_normalize\(\).*'w'.*floating"):
        core.spectral_normalize(np.ones((3, 2), dtype=np.int64), np.ones(2))
    with pytest.raises(TypeError, match=r"spectral_normalize\(\).*dtype"):
        core.spectral_normalize(w, np.ones(2, dtype=np.float32))
    with pytest.raises(TypeError, match=r"spectral_normalize\(\).*'w'.*array"):
        core.spectral_normalize([[1.0, 2.0]], np.ones(2))
    with pytest.raises(ValueError, match=r"spectral_normalize\(\).*'eps'"):
        core.spectral_normalize(w, np.ones(2), eps=0.0)
    with pytest.raises(TypeError, match=r"spectral_normalize\(\).*'eps'"):
        core.spectral_normalize(w, np.ones(2), eps="small")
    with pytest.raises(ValueError, match=r"orthogonal_penalty\(\).*'w'"):
        core.orthogonal_penalty(np.ones(4))
    with pytest.raises(TypeError, match=r"orthogonal_penalty\(\).*'w'"):
        core.orthogonal_penalty(np.ones((2, 2), dtype=np.int32))


def test_batch_norm_errors():
    x = np.ones((2, 3, 3, 2))
    g, b = np.ones(2), np.zeros(2)
    with pytest.raises(ValueError, match=r"batch_norm\(\).*'axes'.*\[-4, 4\)"):
        core.batch_norm(x, g, b, (0, 4))
    with pytest.raises(ValueError, match=r"batch_norm\(\).*'axes'.*repeat"):
        core.batch_norm(x, g, b, (0, -4))
    with pytest.raises(ValueError, match=r"batch_norm\(\).*'axes'.*at least one"):
        core.batch_norm(x, g, b, ())
    with pytest.raises(TypeError, match=r"batch_norm\(\).*'axes'.*tuple of ints"):
        core.batch_norm(x, g, b, 0)
    with pytest.raises(TypeError, match=r"batch_norm\(\).*'axes'.*tuple of ints"):
        core.batch_norm(x, g, b, (0, 1.0))
    with pytest.raises(ValueError, match=r"batch_norm\(\).*'gain'.*broadcast.*\(3,\)"):
        core.batch_norm(x, np.ones(3), b, (0, 1, 2))
    with pytest.raises(ValueError, match=r"batch_norm\(\).*'bias'.*broadcast"):
        core.batch_norm(x, g, np.zeros((1, 2, 3, 3, 2)), (0, 1, 2))
    with pytest.raises(TypeError, match=r"batch_norm\(\).*'x'.*floating"):
        core.batch_norm(np.ones((2, 2), dtype=np.int64), g, b, (0,))
    with pytest.raises(TypeError, match=r"batch_norm\(\).*dtype"):
        core.batch_norm(x, g.astype(np.float32), b, (0, 1, 2))
    with pytest.raises(ValueError, match=r"batch_norm\(\).*'mean' and 'var'.*together"):
        core.batch_norm(x, g, b, (0, 1, 2), mean=np.zeros(2))
    with pytest.raises(ValueError, match=r"batch_norm\(\).*'var'.*broadcast"):
        core.batch_norm(x, g, b, (0, 1, 2), mean=np.zeros(2), var=np.ones(5))
    with pytest.raises(ValueError, match=r"batch_norm\(\).*'eps'"):
        core.batch_norm(x, g, b, (0, 1, 2), eps=-1.0)
    with pytest.raises(ValueError, match=r"batch_stats\(\).*'axes'"):
        core.batch_stats(x, (5,))


def test_conditional_batch_norm_errors():
    rng = np.random.default_rng(0)
    x = np.ones((2, 3, 3, 2))
    cond = np.ones((2, 4))
    p = cbn_params(rng, 4, 2)
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*'x'.*4-D.*5-D.*got a 3-D"):
        core.conditional_batch_norm(np.ones((2, 3, 2)), cond, p)
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*'cond'.*B=2"):
        core.conditional_batch_norm(x, np.ones((3, 4)), p)
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*'cond'.*2-D"):
        core.conditional_batch_norm(x, np.ones(4), p)
    bad = cbn_params(rng, 5, 2)
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*params\['gain'\]\['w'\].*D=4"):
        core.conditional_batch_norm(x, cond, bad)
    bad = {"gain": p["gain"], "bias": {"w": p["bias"]["w"], "b": np.zeros(3)}}
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*params\['bias'\]\['b'\].*C=2"):
        core.conditional_batch_norm(x, cond, bad)
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*'params'.*'bias'"):
        core.conditional_batch_norm(x, cond, {"gain": p["gain"]})
    with pytest.raises(TypeError, match=r"conditional_batch_norm\(\).*params\['gain'\].*dict"):
        core.conditional_batch_norm(x, cond, {"gain": 1.0, "bias": p["bias"]})
    with pytest.raises(TypeError, match=r"conditional_batch_norm\(\).*dtype"):
        core.conditional_batch_norm(x, cond.astype(np.float32), p)
    with pytest.raises(TypeError, match=r"conditional_batch_norm\(\).*'cond'.*floating"):
        core.conditional_batch_norm(x, np.ones((2, 4), dtype=np.int64), p)
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*'axes'"):
        core.conditional_batch_norm(x, cond, p, axes=(0, 7))
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*'mean' and 'var'"):
        core.conditional_batch_norm(x, cond, p, var=np.ones(2))
    with pytest.raises(ValueError, match=r"conditional_batch_norm\(\).*'eps'"):
        core.conditional_batch_norm(x, cond, p, eps=0)


def test_reference_rejects_bad_input():
    with pytest.raises(ValueError, match="spectral_normalize"):
        ref.spectral_normalize(np.ones((3, 2)), np.ones(3))
    with pytest.raises(TypeError, match="orthogonal_penalty"):
        ref.orthogonal_penalty(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="batch_norm"):
        ref.batch_norm(np.ones((2, 2, 2, 1)), np.ones(1), np.zeros(1), (0, 1, 2), mean=np.zeros(1))
    with pytest.raises(ValueError, match="conditional_batch_norm"):
        ref.conditional_batch_norm(np.ones((2, 2, 2, 1)), np.ones((3, 2)), cbn_params(np.random.default_rng(0), 2, 1))


# ---------------------------------------------------------------------------
# the same core code on torch tensors and jax arrays (float32; jax runs without x64)


def test_layers_run_on_every_array_library_and_under_jit(xp):
    """float32 on every library of the ``xp`` fixture; on JAX under ``jax.jit``."""
    asarray = xp.ns.asarray

    def conv(tree):
        return {k: conv(v) for k, v in tree.items()} if isinstance(tree, dict) else asarray(f32(tree))

    def f32(a):
        return np.asarray(a, dtype=np.float32)

    rng = np.random.default_rng(11)
    w, u = rng.standard_normal((3, 3, 2, 4)), rng.standard_normal(4)
    up = lambda a: f32(a).astype(np.float64)  # noqa: E731  (the reference sees the same float32 values)
    w_sn, u_new = xp.compile(core.spectral_normalize)(conv(w), conv(u))
    w_ref, u_ref = ref.spectral_normalize(up(w), up(u))
    close32(np.asarray(w_sn), w_ref)
    close32(np.asarray(u_new), u_ref)
    close32(np.asarray(xp.compile(core.orthogonal_penalty)(conv(w))), ref.orthogonal_penalty(up(w)))
    x, cond = rng.standard_normal((2, 3, 2, 3, 2)), rng.standard_normal((2, 3))
    p = cbn_params(rng, 3, 2, 0.5)
    y = xp.compile(core.conditional_batch_norm)(conv(x), conv(cond), conv(p))
    close32(np.asarray(y), ref.conditional_batch_norm(up(x), up(cond), cast(cast(p, np.float32), np.float64)))
    bn = xp.compile(core.batch_norm, static_argnums=3)
    close32(
        np.asarray(bn(conv(x), conv(np.ones(2)), conv(np.zeros(2)), (0, 1, 2, 3))),
        ref.batch_norm(up(x), np.ones(2), np.zeros(2), (0, 1, 2, 3)),
    )
