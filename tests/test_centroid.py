"""The direct motion metric: the centroid error of a predicted shape (trivd_core.predict.centroid_errors).

Hand-made clips: one 5x5 square (half-size 2 at integer centres: whole pixels, symmetric about
its centre, so its centroid is its centre exactly) of colour c over a flat background b, moving
(1, 2) px per frame.  Every expected value is worked out from the positions alone: the truth's
error is 0, copy-last-frame's is the displacement sqrt(5) (t - 1), a shape drawn (3, 4) px off is
5 px off, a blank frame is "lost" and charged its distance to the frame's centre.
"""

from __future__ import annotations

import numpy as np
import pytest

from trivd_core.configs import CONFIGS, get_config
from trivd_core.data import DEMO16_OPTIONS, make_dataset
from trivd_core.data.synthetic import ShapeTracks
from trivd_core.predict import centroid_errors, shape_centroid
from trivd_core.train.validation import ValidationSet, validate

H = W = 24
T = 8
B = np.array([0.1, -0.2, 0.0])
C = np.array([0.9, 0.8, -0.9])
V = np.array([1.0, 2.0])


def _square(centre, h=2):
    a = np.zeros((H, W))
    y, x = int(centre[0]), int(centre[1])
    a[y - h:y + h + 1, x - h:x + h + 1] = 1.0
    return a


def _clip(positions):
    masks = np.stack([_square(p) for p in positions])[:, None].astype(np.float32)  # (T, 1, H, W)
    frames = B * (1 - masks[:, 0, ..., None]) + C * masks[:, 0, ..., None]
    tracks = ShapeTracks(positions=np.asarray(positions, float)[:, None], velocities=np.broadcast_to(V, (T, 1, 2)),
                         half_sizes=np.array([2.0]), kinds=("square",), colors=C[None].astype(np.float32),
                         pan_velocity=np.zeros(2), masks=masks)
    return frames, tracks


POS = np.array([[6.0, 5.0]]) + np.arange(T)[:, None] * V


def test_the_truth_scores_zero_and_copy_scores_the_displacement():
    frames, tracks = _clip(POS)
    truth = centroid_errors(frames[2:], frames[0], tracks, 2)
    np.testing.assert_allclose(truth["error"], 0.0, atol=1e-12)
    assert not truth["lost"].any()
    copy = centroid_errors(np.repeat(frames[1:2], T - 2, axis=0), frames[0], tracks, 2)
    want = np.sqrt(5.0) * (np.arange(2, T) - 1)  # |p_1 - p_t| with p_t = p_0 + t (1, 2)
    np.testing.assert_allclose(copy["error"], want, rtol=1e-12)
    np.testing.assert_allclose(copy["displacement"], want, rtol=1e-12)


def test_an_offset_shape_a_blur_and_a_blank_frame():
    frames, tracks = _clip(POS)
    off, _ = _clip(POS + np.array([3.0, 4.0]))
    r = centroid_errors(off[2:6], frames[0], tracks, 2)
    np.testing.assert_allclose(r["error"], 5.0, rtol=1e-12)
    # a 3x3 box blur (away from the borders) spreads the shape symmetrically: its centroid stays
    blurred = np.stack([np.mean([np.roll(np.roll(f, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 0)
                        for f in frames])
    np.testing.assert_allclose(centroid_errors(blurred[2:4], frames[0], tracks, 2)["error"], 0.0, atol=1e-12)
    blank = np.broadcast_to(B, (2, H, W, 3))
    r = centroid_errors(blank, frames[0], tracks, 2)
    assert r["lost"].all()
    centre = np.array([(H - 1) / 2, (W - 1) / 2])
    np.testing.assert_allclose(r["error"], np.hypot(*(centre - POS[2:4]).T), rtol=1e-12)


def test_shape_centroid_reads_the_coverage_by_projection():
    a = _square((10, 12))
    half = B * (1 - 0.5 * a[..., None]) + C * 0.5 * a[..., None]  # half-transparent: same centroid, half the mass
    c, mass = shape_centroid(half, C, B)
    np.testing.assert_allclose(c, [10.0, 12.0], atol=1e-12)
    assert mass == pytest.approx(12.5)
    c, mass = shape_centroid(np.broadcast_to(B, (H, W, 3)), C, B)
    assert mass == 0.0 and np.isnan(c).all()
    with pytest.raises(ValueError, match="equals the background"):
        shape_centroid(half, B, B)
    with pytest.raises(ValueError, match=r"frame \(H, W, C\)"):
        shape_centroid(half[..., :2], C, B)


def test_centroid_errors_refuse_clips_they_cannot_read():
    frames, tracks = _clip(POS)
    two = ShapeTracks(tracks.positions.repeat(2, 1), tracks.velocities.repeat(2, 1), np.array([2.0, 2.0]),
                      ("square", "square"), np.stack([C, -C]).astype(np.float32), np.zeros(2),
                      tracks.masks.repeat(2, 1))
    with pytest.raises(ValueError, match="exactly one shape"):
        centroid_errors(frames[2:], frames[0], two, 2)
    textured = frames.copy()
    textured[:, 0, 0] += 0.2
    with pytest.raises(ValueError, match="not flat"):
        centroid_errors(textured[2:], textured[0], tracks, 2)
    with pytest.raises(ValueError, match="t_start"):
        centroid_errors(frames[2:], frames[0], tracks, 3)


def test_on_demo16_clips_the_truth_is_within_the_anti_aliasing_of_zero():
    # Anti-aliased discs at sub-pixel centres are not exactly symmetric on the pixel grid: the truth's own
    # centroid is off by up to 0.063 px over 200 test clips (measured); 0.1 px bounds it.
    ds = make_dataset("synthetic:demo16", resolution=32, t=16, split="test")
    for i in range(20):
        clip, tracks = ds.render(i)
        r = centroid_errors(clip[2:], clip[0], tracks, 2)
        assert r["error"].max() < 0.1
        copy = centroid_errors(np.repeat(clip[1:2], 14, axis=0), clip[0], tracks, 2)
        np.testing.assert_allclose(copy["error"], copy["displacement"], atol=0.1)
        assert not np.any(np.diff(np.sign(tracks.velocities[:, 0]), axis=0))  # straight lines: no bounce


def test_validation_reports_the_centroid_error_only_where_it_applies():
    cfg = get_config("demo16")

    def truth_fn(tree, cond, z):  # a perfect predictor of the validation clips (its warps are not used here)
        return truths[: cond.shape[0]], [np.zeros((cond.shape[0], cfg.t_pred, 1, 1, 9))]

    ds = make_dataset("synthetic:demo16", resolution=32, t=16, split="test")
    vset = ValidationSet.from_dataset(ds, cfg, n_clips=4)
    truths = vset.truth
    rec = validate(truth_fn, None, vset, cfg.replace(cell="convgru"))
    np.testing.assert_allclose(rec["centroid_error"], 0.0, atol=0.1)
    assert rec["centroid_lost"] == 0.0
    assert rec["copy_centroid_error"][-1] > 10.0  # the shape travels 14-24 px in 15 frames
    textured = ValidationSet.from_dataset(make_dataset("synthetic", resolution=32, t=16, split="test"), cfg,
                                          n_clips=4)
    truths = textured.truth
    assert "centroid_error" not in validate(truth_fn, None, textured, cfg.replace(cell="convgru"))


def test_demo16_is_the_demo_at_sixteen_frames():
    demo, d16 = CONFIGS["demo"], CONFIGS["demo16"]
    assert (d16.t_cond, d16.t_pred, d16.t_total) == (2, 14, 16)
    same = {k: v for k, v in demo.to_dict().items() if k not in ("name", "t_pred", "K")}
    assert {k: d16.to_dict()[k] for k in same} == same
    assert DEMO16_OPTIONS["speed_range"] == (0.03, 0.05) and DEMO16_OPTIONS["bounces"] is False
