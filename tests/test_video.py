"""Discriminator inputs: sample_frames, downsample, crop (section 3.1, Fig. 1).

Gathers are exact (no arithmetic), so core and reference must agree bit for bit and
are compared with ``assert_array_equal``.  ``downsample`` averages ``s*s`` values:
float64 rtol 1e-10 (project rule); float32 against the float64 reference with
rtol = atol = 1e-6, since a mean of at most 16 O(1) values carries at most
~16 * 6e-8 = 1e-6 relative rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from _test_helpers import to_np
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import video as ref
from trivd_core import video as core


def make_video(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(dtype)


VIDEO_SHAPES = [(2, 5, 4, 6, 3), (1, 3, 2, 2, 1), (3, 4, 6, 4, 2)]


# ---------------------------------------------------------------------------
# sample_frames


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape", VIDEO_SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sample_frames_matches_indexing_and_reference(xp, shape, dtype):
    B, T = shape[:2]
    video = make_video(shape, 1, dtype)
    rng = np.random.default_rng(2)
    for K, int_dtype in ((3, np.int64), (1, np.int32), (T + 2, np.uint8)):  # K > T: frames may repeat
        idx = rng.integers(0, T, size=(B, K)).astype(int_dtype)
        got = to_np(core.sample_frames(xp.asarray(video), xp.asarray(idx)))
        assert got.shape == (B, K) + shape[2:] and got.dtype == dtype
        np.testing.assert_array_equal(got, video[np.arange(B)[:, None], idx])
        np.testing.assert_array_equal(got, ref.sample_frames(video, idx))


# ---------------------------------------------------------------------------
# downsample


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize(
    "shape,s",
    [((2, 3, 4, 6, 3), 2), ((1, 2, 2, 2, 1), 2), ((2, 2, 6, 3, 2), 3), ((1, 2, 4, 4, 1), 4), ((2, 2, 3, 5, 1), 1)],
)
def test_downsample_matches_reference_and_reshape_mean(xp, shape, s):
    video = make_video(shape, 3)
    B, T, H, W, C = shape
    want = ref.downsample(video, s)
    assert want.shape == (B, T, H // s, W // s, C)
    np.testing.assert_allclose(want, video.reshape(B, T, H // s, s, W // s, s, C).mean(axis=(3, 5)), rtol=1e-12)
    got = core.downsample(xp.asarray(video), s)
    np.testing.assert_allclose(to_np(got), want, rtol=1e-10, atol=1e-12)
    got32 = to_np(core.downsample(xp.asarray(video.astype(np.float32)), s))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(
        got32.astype(np.float64), ref.downsample(video.astype(np.float32).astype(np.float64), s), rtol=1e-6, atol=1e-6
    )


def test_downsample_hand_value():
    # One 2x4 frame, s = 2: means of [[1, 2], [5, 6]] and [[3, 4], [7, 8]] are 3.5 and 5.5.
    video = np.arange(1.0, 9.0).reshape(1, 1, 2, 4, 1)
    for impl in (ref, core):
        np.testing.assert_array_equal(to_np(impl.downsample(video, 2)).ravel(), [3.5, 5.5])


# ---------------------------------------------------------------------------
# crop


@pytest.mark.xp_libraries("numpy", "array_api_strict")
@pytest.mark.parametrize("shape", VIDEO_SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_crop_matches_indexing_and_reference(xp, shape, dtype):
    B, T, H, W, C = shape
    video = make_video(shape, 4, dtype)
    rng = np.random.default_rng(5)
    for h, w in {(H // 2, W // 2), (1, W), (H, 1), (H, W), (max(H - 1, 1), max(W - 2, 1))}:
        offsets = np.stack([rng.integers(0, H - h + 1, size=B), rng.integers(0, W - w + 1, size=B)], axis=1)
        got = to_np(core.crop(xp.asarray(video), xp.asarray(offsets), (h, w)))
        assert got.shape == (B, T, h, w, C) and got.dtype == dtype
        want = np.stack([video[b, :, y : y + h, x : x + w] for b, (y, x) in enumerate(offsets)])
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, ref.crop(video, offsets, (h, w)))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_crop_hypothesis(data):
    B = data.draw(st.integers(1, 3))
    H, W = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    h, w = data.draw(st.integers(1, H)), data.draw(st.integers(1, W))
    offsets = np.array(
        [[data.draw(st.integers(0, H - h)), data.draw(st.integers(0, W - w))] for _ in range(B)], dtype=np.int32
    )
    video = make_video((B, 2, H, W, 2), data.draw(st.integers(0, 1000)))
    got = np.asarray(core.crop(video, offsets, [h, w]))
    want = np.stack([video[b, :, y : y + h, x : x + w] for b, (y, x) in enumerate(offsets)])
    np.testing.assert_array_equal(got, want)


def test_stronger_decomposition_inputs_compose():
    # The faster/stronger D_T input is a T x H/s x W/s crop; D_S sees K downsampled frames.
    video = make_video((2, 4, 8, 6, 3), 9)
    s, idx = 2, np.array([[0, 3], [2, 2]])
    frames = to_np(core.downsample(core.sample_frames(video, idx), s))
    np.testing.assert_allclose(frames, ref.downsample(ref.sample_frames(video, idx), s), rtol=1e-12)
    clip = to_np(core.crop(video, np.array([[4, 0], [1, 3]]), (8 // s, 6 // s)))
    np.testing.assert_array_equal(clip, ref.crop(video, np.array([[4, 0], [1, 3]]), (4, 3)))


# ---------------------------------------------------------------------------
# traced indices under jax.jit, and gradients through the gathers


def test_sample_frames_and_crop_under_jax_jit():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    video = make_video((2, 5, 6, 4, 2), 6, np.float32)
    idx = np.array([[4, 0, 2], [1, 1, 3]], dtype=np.int32)
    offsets = np.array([[2, 1], [0, 2]], dtype=np.int32)

    sample = jax.jit(core.sample_frames)
    cropper = jax.jit(core.crop, static_argnums=2)
    np.testing.assert_array_equal(
        np.asarray(sample(jnp.asarray(video), jnp.asarray(idx))), ref.sample_frames(video, idx)
    )
    np.testing.assert_array_equal(
        np.asarray(cropper(jnp.asarray(video), jnp.asarray(offsets), (3, 2))), ref.crop(video, offsets, (3, 2))
    )
    # Different traced values reuse the compiled function and still give the right crop.
    offsets2 = np.array([[0, 0], [3, 2]], dtype=np.int32)
    np.testing.assert_array_equal(
        np.asarray(cropper(jnp.asarray(video), jnp.asarray(offsets2), (3, 2))), ref.crop(video, offsets2, (3, 2))
    )
    # Outside jit the concrete range check still fires on JAX arrays.
    with pytest.raises(ValueError, match=r"crop\(\).*'offsets'"):
        core.crop(jnp.asarray(video), jnp.asarray(np.array([[4, 0], [0, 0]], dtype=np.int32)), (3, 2))
    # The gradient of sum(crop) w.r.t. the video is the indicator of the cropped window.
    grad = np.asarray(
        jax.jit(jax.grad(lambda v, o: jnp.sum(core.crop(v, o, (3, 2)))))(jnp.asarray(video), jnp.asarray(offsets))
    )
    mask = np.zeros(video.shape, np.float32)
    for b, (y, x) in enumerate(offsets):
        mask[b, :, y : y + 3, x : x + 2] = 1.0
    np.testing.assert_array_equal(grad, mask)
    # sample_frames: a frame drawn twice receives gradient 2.
    grad = np.asarray(
        jax.jit(jax.grad(lambda v, i: jnp.sum(core.sample_frames(v, i))))(jnp.asarray(video), jnp.asarray(idx))
    )
    counts = np.zeros(video.shape[:2], np.float32)
    for b in range(2):
        for t in idx[b]:
            counts[b, t] += 1
    np.testing.assert_array_equal(grad, np.broadcast_to(counts[:, :, None, None, None], video.shape))


# ---------------------------------------------------------------------------
# errors


@pytest.mark.xp_libraries("numpy", "array_api_strict")
def test_sample_frames_errors(xp):
    video = xp.asarray(make_video((2, 3, 4, 4, 1)))
    idx = np.array([[0, 1], [2, 0]])
    with pytest.raises(ValueError, match=r"sample_frames\(\).*'idx'.*\[0, 3\).*\[0, 3\]"):
        core.sample_frames(video, xp.asarray(np.array([[0, 3], [1, 1]])))
    with pytest.raises(ValueError, match=r"sample_frames\(\).*'idx'.*\[0, 3\).*\[-1, 2\]"):
        core.sample_frames(video, xp.asarray(np.array([[0, -1], [1, 2]])))
    with pytest.raises(TypeError, match=r"sample_frames\(\).*'idx'.*integer"):
        core.sample_frames(video, xp.asarray(idx.astype(np.float64)))
    with pytest.raises(ValueError, match=r"sample_frames\(\).*'idx'.*B=2"):
        core.sample_frames(video, xp.asarray(np.zeros((3, 2), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"sample_frames\(\).*'idx'.*2-D"):
        core.sample_frames(video, xp.asarray(np.zeros(2, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"sample_frames\(\).*'video'.*5-D"):
        core.sample_frames(xp.asarray(make_video((2, 4, 4, 1))), xp.asarray(idx))
    with pytest.raises(TypeError, match=r"sample_frames\(\).*'video'.*floating"):
        core.sample_frames(xp.asarray(np.zeros((2, 3, 4, 4, 1), dtype=np.int64)), xp.asarray(idx))


@pytest.mark.xp_libraries("numpy", "array_api_strict")
def test_downsample_errors(xp):
    video = xp.asarray(make_video((1, 2, 4, 6, 1)))
    with pytest.raises(ValueError, match=r"downsample\(\).*'s'=4.*\(4, 6\)"):
        core.downsample(video, 4)
    with pytest.raises(ValueError, match=r"downsample\(\).*'s'=3"):
        core.downsample(video, 3)
    with pytest.raises(ValueError, match=r"downsample\(\).*'s'.*positive"):
        core.downsample(video, 0)
    with pytest.raises(TypeError, match=r"downsample\(\).*'s'.*int"):
        core.downsample(video, 2.0)
    with pytest.raises(ValueError, match=r"downsample\(\).*'video'.*5-D"):
        core.downsample(xp.asarray(make_video((1, 4, 6, 1))), 2)


@pytest.mark.xp_libraries("numpy", "array_api_strict")
def test_crop_errors(xp):
    video = xp.asarray(make_video((2, 3, 4, 6, 1)))
    ok = np.array([[0, 0], [1, 2]])
    with pytest.raises(ValueError, match=r"crop\(\).*'offsets'.*0 <= y <= 2.*0 <= x <= 3"):
        core.crop(video, xp.asarray(np.array([[3, 0], [0, 0]])), (2, 3))
    with pytest.raises(ValueError, match=r"crop\(\).*'offsets'"):
        core.crop(video, xp.asarray(np.array([[0, 0], [0, 4]])), (2, 3))
    with pytest.raises(ValueError, match=r"crop\(\).*'offsets'"):
        core.crop(video, xp.asarray(np.array([[0, -1], [0, 0]])), (2, 3))
    with pytest.raises(ValueError, match=r"crop\(\).*'size'=\(5, 3\).*\(4, 6\)"):
        core.crop(video, xp.asarray(ok), (5, 3))
    with pytest.raises(ValueError, match=r"crop\(\).*'size'=\(2, 7\)"):
        core.crop(video, xp.asarray(ok), (2, 7))
    with pytest.raises(ValueError, match=r"crop\(\).*'size\[0\]'.*positive"):
        core.crop(video, xp.asarray(ok), (0, 2))
    with pytest.raises(TypeError, match=r"crop\(\).*'size'.*pair"):
        core.crop(video, xp.asarray(ok), (2, 2, 2))
    with pytest.raises(TypeError, match=r"crop\(\).*'size'.*pair"):
        core.crop(video, xp.asarray(ok), 2)
    with pytest.raises(TypeError, match=r"crop\(\).*'offsets'.*integer"):
        core.crop(video, xp.asarray(ok.astype(np.float32)), (2, 2))
    with pytest.raises(ValueError, match=r"crop\(\).*'offsets'.*\(B, 2\)"):
        core.crop(video, xp.asarray(np.zeros((2, 3), dtype=np.int64)), (2, 2))
    with pytest.raises(ValueError, match=r"crop\(\).*'offsets'.*B=2"):
        core.crop(video, xp.asarray(np.zeros((1, 2), dtype=np.int64)), (2, 2))


def test_reference_rejects_bad_input():
    video = make_video((2, 3, 4, 6, 1))
    with pytest.raises(ValueError, match="sample_frames"):
        ref.sample_frames(video, np.array([[0, 3], [0, 0]]))
    with pytest.raises(TypeError, match="sample_frames"):
        ref.sample_frames(video, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="downsample"):
        ref.downsample(video, 4)
    with pytest.raises(ValueError, match="crop"):
        ref.crop(video, np.array([[3, 0], [0, 0]]), (2, 3))
    with pytest.raises(ValueError, match="crop"):
        ref.crop(video, np.array([[0, 0], [0, 0]]), (5, 3))


# ---------------------------------------------------------------------------
# the same core code on torch tensors and jax arrays


def framework_asarray(name):
    if name == "torch":
        return pytest.importorskip("torch").asarray
    return pytest.importorskip("jax.numpy").asarray


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_video_inputs_run_on_torch_and_jax(framework):
    asarray = framework_asarray(framework)
    video = make_video((2, 3, 4, 6, 2), 13, np.float32)
    idx = np.array([[2, 0], [1, 1]], dtype=np.int64 if framework == "torch" else np.int32)
    offsets = np.array([[1, 3], [0, 0]], dtype=idx.dtype)
    V = asarray(video)
    np.testing.assert_array_equal(np.asarray(core.sample_frames(V, asarray(idx))), ref.sample_frames(video, idx))
    np.testing.assert_array_equal(np.asarray(core.crop(V, asarray(offsets), (3, 3))), ref.crop(video, offsets, (3, 3)))
    np.testing.assert_allclose(
        np.asarray(core.downsample(V, 2)), ref.downsample(video.astype(np.float64), 2), rtol=1e-6, atol=1e-6
    )
    with pytest.raises(ValueError, match=r"sample_frames\(\).*'idx'"):
        core.sample_frames(V, asarray(idx + 2))
