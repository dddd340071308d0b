"""Hinge losses (Eqs. 13, 14) and the projection / mixed projection heads (Eq. 15).

Tolerances
----------
float64: rtol 1e-10 (project rule), atol 1e-12 for outputs that are ~0 (they are O(1)).
float32: core in float32 against the reference in float64 on the same values,
rtol = atol = 2e-5: float32's unit roundoff is 6e-8, and each output is a sum of at
most ~50 O(1) terms (a mean, or a dot product plus a sum over T), so rounding stays
below ~50 * 6e-8 = 3e-6 of the O(1) magnitudes.
"""

from __future__ import annotations

import numpy as np
import pytest
from _test_helpers import close32, close64, to_np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference import losses as ref
from trivd_core import losses as core


def f32(tree):
    if isinstance(tree, dict):
        return {k: f32(v) for k, v in tree.items()}
    return np.asarray(tree, dtype=np.float32)


# ---------------------------------------------------------------------------
# hinge losses


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("impl", ["core", "ref"])
def test_hinge_losses_hand_values(xp, impl):
    real = np.array([2.0, 0.5, -1.0])
    fake = np.array([-2.0, 0.0, 3.0])
    # relu(1 - real) = [0, 0.5, 2] -> mean 5/6; relu(1 + fake) = [0, 1, 4] -> mean 5/3; total 5/2.
    # g: -mean(fake) = -1/3.
    if impl == "ref":
        d, g = ref.d_hinge_loss(real, fake), ref.g_hinge_loss(fake)
    else:
        d, g = core.d_hinge_loss(xp.asarray(real), xp.asarray(fake)), core.g_hinge_loss(xp.asarray(fake))
    assert tuple(d.shape) == () and tuple(g.shape) == ()
    np.testing.assert_allclose(to_np(d), 2.5, rtol=1e-15)
    np.testing.assert_allclose(to_np(g), -1.0 / 3.0, rtol=1e-15)


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize(
    "real_shape,fake_shape",
    [((4,), (4,)), ((1,), (1,)), ((3, 3, 2), (3, 3, 2)), ((2, 5), (2, 5)), ((4,), (2, 2, 3))],
)
def test_hinge_losses_match_reference(xp, real_shape, fake_shape):
    rng = np.random.default_rng(len(real_shape) + len(fake_shape))
    real = 1.5 * rng.standard_normal(real_shape)
    fake = 1.5 * rng.standard_normal(fake_shape)
    d_ref, g_ref = ref.d_hinge_loss(real, fake), ref.g_hinge_loss(fake)
    close64(core.d_hinge_loss(xp.asarray(real), xp.asarray(fake)), d_ref)
    close64(core.g_hinge_loss(xp.asarray(fake)), g_ref)
    close32(core.d_hinge_loss(xp.asarray(f32(real)), xp.asarray(f32(fake))), d_ref)
    close32(core.g_hinge_loss(xp.asarray(f32(fake))), g_ref)


scores = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    elements=st.floats(-10, 10, allow_nan=False),
)


@settings(max_examples=40, deadline=None)
@given(real=scores, fake=scores)
def test_d_hinge_properties(real, fake):
    d = float(core.d_hinge_loss(real, fake))
    assert d >= 0.0
    # In the linear region (all |score| < 1) both ReLUs are active: d = 2 - mean(real) + mean(fake).
    r, f = np.clip(real, -0.99, 0.99), np.clip(fake, -0.99, 0.99)
    np.testing.assert_allclose(float(core.d_hinge_loss(r, f)), 2.0 - r.mean() + f.mean(), rtol=1e-12)
    # Saturated: real >= 1 and fake <= -1 give exactly zero loss.
    assert float(core.d_hinge_loss(1.0 + np.abs(real), -1.0 - np.abs(fake))) == 0.0
    np.testing.assert_allclose(float(core.g_hinge_loss(fake)), -fake.mean(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------
# projection heads


def head(rng, C, scale=1.0):
    return {"w": scale * rng.standard_normal((C, 1)), "b": scale * rng.standard_normal(1)}


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("B,C", [(3, 4), (1, 2), (2, 1), (4, 3)])
def test_projection_matches_reference_and_closed_form(xp, B, C):
    rng = np.random.default_rng(B * 10 + C)
    h = rng.standard_normal((B, C))
    y = rng.standard_normal((B, C))
    p = head(rng, C)
    o_ref = ref.projection(h, y, p)
    o = core.projection(xp.asarray(h), xp.asarray(y), xp.asarray(p))
    assert tuple(o.shape) == (B,)
    close64(o, o_ref)
    close32(core.projection(xp.asarray(f32(h)), xp.asarray(f32(y)), xp.asarray(f32(p))), o_ref)
    # w = 0, b = 0: only the class term, the row-wise dot product <h_b, y_b>.
    zero = {"w": np.zeros((C, 1)), "b": np.zeros(1)}
    close64(core.projection(xp.asarray(h), xp.asarray(y), xp.asarray(zero)), np.einsum("bc,bc->b", h, y))
    # Dummy zero class embedding: only the unconditional term h w + b.
    close64(core.projection(xp.asarray(h), xp.asarray(np.zeros((B, C))), xp.asarray(p)), h @ p["w"][:, 0] + p["b"][0])


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("B,T,C", [(2, 3, 4), (1, 1, 2), (3, 2, 1), (2, 5, 3)])
def test_mixed_projection_matches_reference(xp, B, T, C):
    rng = np.random.default_rng(B * 100 + T * 10 + C)
    h = rng.standard_normal((B, T, C))
    y = rng.standard_normal((B, C))
    p = head(rng, C)
    o_ref = ref.mixed_projection(h, y, p)
    o = core.mixed_projection(xp.asarray(h), xp.asarray(y), xp.asarray(p))
    assert tuple(o.shape) == (B, B, T)
    close64(o, o_ref)
    close32(core.mixed_projection(xp.asarray(f32(h)), xp.asarray(f32(y)), xp.asarray(f32(p))), o_ref)
    # Eq. 15 vectorised independently with einsum.
    r_x = np.einsum("btc,c->bt", h, p["w"][:, 0]) + p["b"][0]
    S = np.einsum("btc,bc->b", h, y)
    close64(o, r_x[:, None, :] + S[None, :, None])


@pytest.mark.xp_libraries("numpy", "array_api_strict")
def test_mixed_projection_structure(xp):
    rng = np.random.default_rng(4)
    B, T, C = 3, 4, 2
    h = rng.standard_normal((B, T, C))
    y = rng.standard_normal((B, C))
    p = head(rng, C)
    o = to_np(core.mixed_projection(xp.asarray(h), xp.asarray(y), xp.asarray(p)))
    # o[b, b', t] - o[b, b'', t] = sum_t' r_xy^{b',t'} - sum_t' r_xy^{b'',t'}: the same for every b and t.
    diff = o[:, :, None, :] - o[:, None, :, :]  # (b, b', b'', t)
    np.testing.assert_allclose(diff, np.broadcast_to(diff[:1, :, :, :1], diff.shape), rtol=1e-12, atol=1e-12)
    # ... and o[b, b', t] - o[b', b', t] is r_x^{b,t} - r_x^{b',t}, independent of the class column.
    r_x = h @ p["w"][:, 0] + p["b"][0]
    for b2 in range(B):
        np.testing.assert_allclose(o[:, b2, :] - o[b2, b2, :], r_x - r_x[b2], rtol=1e-12, atol=1e-12)
    # With y_embed = 0 every column b' is the same: o[b, b', t] = r_x^{b,t}.
    o0 = to_np(core.mixed_projection(xp.asarray(h), xp.asarray(np.zeros((B, C))), xp.asarray(p)))
    for b2 in range(B):
        close64(o0[:, b2, :], r_x)


@pytest.mark.xp_libraries("numpy", "array_api_strict")
def test_mixed_projection_diagonal_with_one_step_is_projection(xp):
    # T = 1: o[b, b, 0] = r_x^{b,0} + r_xy^{b,0} = the plain projection head on h[:, 0].
    rng = np.random.default_rng(8)
    h = rng.standard_normal((3, 1, 2))
    y = rng.standard_normal((3, 2))
    p = head(rng, 2)
    o = to_np(core.mixed_projection(xp.asarray(h), xp.asarray(y), xp.asarray(p)))
    close64(np.diagonal(o[:, :, 0]), to_np(core.projection(xp.asarray(h[:, 0]), xp.asarray(y), xp.asarray(p))))


# ---------------------------------------------------------------------------
# errors


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("where", ["real", "fake"])
def test_nan_scores_give_nan_losses_in_the_reference_and_the_core(xp, where):
    """rho(NaN) is NaN: a hinge must not turn a diverged score into a zero loss (max(NaN, 0) is NaN)."""
    real, fake = np.array([0.5, 2.0, -0.3]), np.array([-2.0, 0.1])
    (real if where == "real" else fake)[0] = np.nan
    assert np.isnan(ref.d_hinge_loss(real, fake))
    assert np.isnan(to_np(core.d_hinge_loss(xp.asarray(real), xp.asarray(fake))))
    if where == "fake":
        assert np.isnan(ref.g_hinge_loss(fake)) and np.isnan(to_np(core.g_hinge_loss(xp.asarray(fake))))


def test_loss_errors():
    s = np.ones(3)
    with pytest.raises(TypeError, match=r"d_hinge_loss\(\).*'real_scores'.*floating"):
        core.d_hinge_loss(np.ones(3, dtype=np.int64), s)
    with pytest.raises(TypeError, match=r"d_hinge_loss\(\).*'fake_scores'.*array"):
        core.d_hinge_loss(s, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"d_hinge_loss\(\).*'fake_scores'.*at least one"):
        core.d_hinge_loss(s, np.ones((0,)))
    with pytest.raises(TypeError, match=r"d_hinge_loss\(\).*dtype"):
        core.d_hinge_loss(s, s.astype(np.float32))
    with pytest.raises(ValueError, match=r"g_hinge_loss\(\).*'fake_scores'.*at least one"):
        core.g_hinge_loss(np.ones((2, 0)))
    with pytest.raises(TypeError, match=r"g_hinge_loss\(\).*'fake_scores'"):
        core.g_hinge_loss(np.ones(2, dtype=np.int32))
    with pytest.raises(ValueError, match="d_hinge_loss"):
        ref.d_hinge_loss(np.ones(0), s)


def test_projection_errors():
    rng = np.random.default_rng(0)
    p = head(rng, 3)
    h2, y = np.ones((2, 3)), np.ones((2, 3))
    h3 = np.ones((2, 4, 3))
    with pytest.raises(ValueError, match=r"projection\(\).*'h'.*2-D"):
        core.projection(h3, y, p)
    with pytest.raises(ValueError, match=r"projection\(\).*'y_embed'.*B=2"):
        core.projection(h2, np.ones((3, 3)), p)
    with pytest.raises(ValueError, match=r"projection\(\).*'y_embed'.*C=3"):
        core.projection(h2, np.ones((2, 4)), p)
    with pytest.raises(ValueError, match=r"projection\(\).*params\['w'\].*C=3"):
        core.projection(h2, y, head(rng, 4))
    with pytest.raises(ValueError, match=r"projection\(\).*params\['w'\].*size 1 on axis 1"):
        core.projection(h2, y, {"w": np.ones((3, 2)), "b": np.ones(1)})
    with pytest.raises(ValueError, match=r"projection\(\).*params\['b'\]"):
        core.projection(h2, y, {"w": np.ones((3, 1)), "b": np.ones(2)})
    with pytest.raises(ValueError, match=r"projection\(\).*'params'.*'b'"):
        core.projection(h2, y, {"w": np.ones((3, 1))})
    with pytest.raises(TypeError, match=r"projection\(\).*'params'.*dict"):
        core.projection(h2, y, [np.ones((3, 1)), np.ones(1)])
    with pytest.raises(TypeError, match=r"projection\(\).*'h'.*floating"):
        core.projection(h2.astype(np.int64), y, p)
    with pytest.raises(TypeError, match=r"projection\(\).*dtype"):
        core.projection(h2, y.astype(np.float32), p)
    with pytest.raises(ValueError, match=r"mixed_projection\(\).*'h'.*3-D"):
        core.mixed_projection(h2, y, p)
    with pytest.raises(ValueError, match=r"mixed_projection\(\).*'y_embed'.*2-D"):
        core.mixed_projection(h3, np.ones((2, 4, 3)), p)
    with pytest.raises(ValueError, match=r"mixed_projection\(\).*'y_embed'.*B=2"):
        core.mixed_projection(h3, np.ones((1, 3)), p)
    with pytest.raises(ValueError, match=r"mixed_projection\(\).*params\['w'\]"):
        core.mixed_projection(h3, y, head(rng, 2))
    with pytest.raises(ValueError, match="mixed_projection"):
        ref.mixed_projection(h3, np.ones((1, 3)), p)
    with pytest.raises(ValueError, match="projection"):
        ref.projection(h2, y, head(rng, 4))


# ---------------------------------------------------------------------------
# the same core code on torch tensors and jax arrays (float32; jax runs without x64)


def test_losses_run_on_every_array_library_and_under_jit(xp):
    """float32 on every library of the ``xp`` fixture; on JAX under ``jax.jit``."""
    asarray = xp.ns.asarray

    def conv(tree):
        return {k: conv(v) for k, v in tree.items()} if isinstance(tree, dict) else asarray(f32(tree))

    rng = np.random.default_rng(12)
    h, y, p = f32(rng.standard_normal((2, 3, 4))), f32(rng.standard_normal((2, 4))), f32(head(rng, 4))
    close32(
        np.asarray(xp.compile(core.mixed_projection)(conv(h), conv(y), conv(p))), ref.mixed_projection(h, y, p)
    )
    close32(
        np.asarray(xp.compile(core.projection)(conv(h[:, 1]), conv(y), conv(p))), ref.projection(h[:, 1], y, p)
    )
    real, fake = f32(rng.standard_normal((2, 2, 3))), f32(rng.standard_normal((2, 2, 3)))
    close32(np.asarray(xp.compile(core.d_hinge_loss)(conv(real), conv(fake))), ref.d_hinge_loss(real, fake))
    close32(np.asarray(xp.compile(core.g_hinge_loss)(conv(fake))), ref.g_hinge_loss(fake))
