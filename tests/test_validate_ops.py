"""The generic array-API primitives against the loop reference, and their argument errors."""

from __future__ import annotations

import array_api_strict as xs
import numpy as np
import pytest

import reference as ref
from trivd_core import ops


def _np(x):
    return np.asarray(x)


@pytest.mark.parametrize("namespace", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("kh, kw", [(1, 1), (3, 3), (3, 5), (5, 3)])
@pytest.mark.parametrize("shape", [(1, 4, 6, 1), (2, 5, 3, 2)])
def test_conv2d_matches_loops(namespace, kh, kw, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((kh, kw, shape[-1], 3))
    b = rng.standard_normal(3)
    conv = (lambda a: xs.asarray(a)) if namespace == "array_api_strict" else (lambda a: a)
    got = _np(ops.conv2d(conv(x), conv(w), conv(b)))
    np.testing.assert_allclose(got, ref.conv2d(x, w, b), rtol=1e-10, atol=1e-12)


def test_conv2d_one_hot_kernel_shifts():
    # A kernel with a single 1 at tap (m, n) reads x[i + m - 1, j + n - 1]: derived from the definition by hand.
    x = np.arange(20.0).reshape(1, 4, 5, 1)
    w = np.zeros((3, 3, 1, 1))
    w[2, 0, 0, 0] = 1.0  # reads (i + 1, j - 1)
    want = np.zeros_like(x)
    want[0, :3, 1:, 0] = x[0, 1:, :4, 0]
    np.testing.assert_array_equal(ops.conv2d(x, w), want)


@pytest.mark.parametrize("namespace", ["numpy", "array_api_strict"])
def test_conv3d_avgpool_upsample_adaptive_match_loops(namespace):
    rng = np.random.default_rng(1)
    conv = (lambda a: xs.asarray(a)) if namespace == "array_api_strict" else (lambda a: a)
    x = rng.standard_normal((2, 3, 4, 5, 2))
    w = rng.standard_normal((3, 1, 3, 2, 2))
    np.testing.assert_allclose(_np(ops.conv3d(conv(x), conv(w))), ref.conv3d(x, w), rtol=1e-10, atol=1e-12)
    v = rng.standard_normal((2, 3, 4, 6, 2))
    np.testing.assert_allclose(_np(ops.avg_pool(conv(v), 2)), ref.avg_pool(v, 2), rtol=1e-12)
    np.testing.assert_array_equal(_np(ops.upsample_nearest(conv(v), 3)), ref.upsample_nearest(v, 3))
    for hw in [(4, 4), (7, 5), (2, 3), (9, 8)]:
        f = rng.standard_normal((2, *hw, 3))
        np.testing.assert_array_equal(_np(ops.adaptive_max_pool(conv(f), (4, 4))), ref.adaptive_max_pool(f, (4, 4)))


def test_pad_hw_matches_loops():
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 2))
    np.testing.assert_array_equal(ops.pad_hw(x, 2, 1), ref.pad_hw(x, 2, 1))


def test_softmax_sigmoid_stable_for_large_inputs():
    x = np.array([-1000.0, 0.0, 1000.0])
    s = ops.sigmoid(x)
    np.testing.assert_array_equal(s, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(ops.softmax(np.array([[1000.0, 1000.0]])), [[0.5, 0.5]])


@pytest.mark.parametrize(
    "call, exc, words",
    [
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2)), np.zeros((2, 2, 2, 1))), ValueError, ["'w'", "odd"]),
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 3, 1))), ValueError, ["'w'", "C_in=2"]),
        (lambda: ops.conv2d(np.zeros((4, 4, 2)), np.zeros((3, 3, 2, 1))), ValueError, ["'x'", "4-D"]),
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2), dtype=np.int32), np.zeros((3, 3, 2, 1))), TypeError, ["'x'", "floating"]),
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 2, 1)), np.zeros(2)), ValueError, ["'b'"]),
        (lambda: ops.avg_pool(np.zeros((1, 5, 4, 2)), 2), ValueError, ["divisible", "s=2"]),
        (lambda: ops.avg_pool(np.zeros((1, 4, 4, 2)), 0), ValueError, ["'s'"]),
        (lambda: ops.upsample_nearest(np.zeros((4, 2)), 2), ValueError, ["'x'"]),
        (lambda: ops.pad_hw(np.zeros((1, 4, 4, 2)), -1, 0), ValueError, ["'ph'"]),
        (lambda: ops.conv2d([[1.0]], np.zeros((1, 1, 1, 1))), TypeError, ["'x'", "array"]),
        (lambda: ops.register_fast_path("conv9d", lambda xp: True, lambda x: x), ValueError, ["'op'"]),
    ],
)
def test_errors_name_the_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_fast_path_registry_and_generic_only():
    calls = []

    def fake(x, w, b):
        calls.append(1)
        return ref.conv2d(x, w, b)

    ops.register_fast_path("conv2d", lambda xp: True, fake)
    try:
        x, w = np.ones((1, 3, 3, 1)), np.ones((3, 3, 1, 1))
        ops.conv2d(x, w)
        assert calls == [1]
        assert ops.fast_paths(np)["conv2d"] is fake
        with ops.generic_only():
            ops.conv2d(x, w)
        assert calls == [1]
    finally:
        ops.unregister_fast_path("conv2d", fake)
    ops.conv2d(x, w)
    assert calls == [1]


# -- validate at the door, trust inside ------------------------------------------------------------------


def test_checks_run_at_the_door_and_are_trusted_inside():
    """A public function called by another one skips its array checks; called directly, it checks."""
    from benchmarks.validation_cost import g_loss_inputs
    from trivd_core import _validate
    from trivd_core.objective import g_loss

    cfg, (gp, gs, dp, ds, cond, z, rand) = g_loss_inputs()
    before = _validate.TRUSTED_CALLS[0]
    g_loss(gp, gs, dp, ds, cond, z, rand, cfg, train=True)
    assert _validate.TRUSTED_CALLS[0] - before > 500  # the nested convs, norms, warps trusted their arguments
    assert not _validate.inside()  # and the depth is back to zero
    with pytest.raises(ValueError, match=r"conv2d\(\): argument 'w'"):  # at the door, conv2d still checks
        ops.conv2d(np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 5, 1)))
    with pytest.raises(ValueError, match=r"g_loss\(\): argument 'cond_frames'"):  # and so does g_loss
        g_loss(gp, gs, dp, ds, cond[:, :1], z, rand, cfg, train=True)
    with pytest.raises(ValueError, match=r"randomness\['idx'\]' must hold frame indices"):  # ranges at the door
        g_loss(gp, gs, dp, ds, cond, z, {**rand, "idx": rand["idx"] + 100}, cfg, train=True)
