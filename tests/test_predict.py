"""`trivd predict` and the motion field of Fig. 3.

The motion pipeline is checked on a *hand-set* checkpoint: in every stage's TSRU (and PTSRU) the
hyper-network is made to output a one-hot kernel on a chosen tap, whatever its input:

* factorized kinds (``tsru_p``): ``fc1``'s bias is -1e6, so ``ReLU(v W1 + b1) = 0`` and
  ``fc2``'s output is its bias alone; that bias is 50 on tap ``q`` of every kernel ``l`` (feature
  ``q*N + l``, cells.py) and 0 elsewhere, so ``w = softmax`` over taps is one-hot on ``q`` up to
  ``e^-50`` and ``W = S w^T`` is one-hot because ``S`` sums to one (Eq. 12);
* pixelwise kinds (``ptsru_p``): ``conv2``'s bias is -1e6, ``conv3``'s output is its bias, 50 on tap ``q``.

(The weights themselves cannot be zeroed: G spectrally normalises them, and sigma = 0 divides by zero.)
Tap ``q = m*k + n`` samples from ``(m - 1, n - 1)`` (Eq. 11, k = 3), so the content moves by
``(1 - m, 1 - n)`` stage pixels.  With stage 0 on tap (2, 1), stage 1 on (1, 2) and stage 2 on (0, 0)
(pull flows (+1, 0), (0, +1), (-1, -1) in pixels of 4x4, 8x8 and 16x16 maps; frames 32x32) the
combined content motion, worked out by hand with "upsample, times the factor, plus the finer field":

* stages (0, 1): ``-(2 * (1, 0) + (0, 1)) * 32/8 = (-8, -4)`` frame pixels per frame;
* stages (0, 1, 2): ``-(2 * (2, 1) + (-1, -1)) * 32/16 = (-6, -2)``;
* stage (2,): ``-(-1, -1) * 2 = (2, 2)``;  stage (0,): ``-(1, 0) * 8 = (-8, 0)``.

Tolerance: ``W`` is one-hot up to the rounding of ``S``'s softmax (a few float32 ulp, ~1e-7
relative) and ``e^-50`` leakage, times displacements of at most 8 pixels: 1e-5 absolute.
"""

from __future__ import annotations

import colorsys
import json

import numpy as np
import pytest
from _test_helpers import init_tree

from trivd.cli import main
from trivd_core import generator
from trivd_core.configs import get_config
from trivd_core.data import SyntheticShapes, read_frames, write_video
from trivd_core.data.synthetic import ShapeTracks
from trivd_core.evaluate import Model, open_run
from trivd_core.predict import (
    PredictError,
    Prediction,
    color_wheel,
    flow_to_rgb,
    motion_agreement,
    motion_fields,
    predict_clip,
    read_input,
    render_prediction,
    write_frames,
)
from trivd_core.train.checkpoint import save_checkpoint

CFG = get_config("tiny", g_ch=2, d_ch=2, batch_size=4, standing_batches=2)
TAPS = {0: (2, 1), 1: (1, 2), 2: (0, 0)}  # (m, n) per stage
EXPECTED = {(0, 1): (-8.0, -4.0), (0, 1, 2): (-6.0, -2.0), (2,): (2.0, 2.0), (0,): (-8.0, 0.0)}
ATOL = 1e-5


def _copy(tree):
    return {k: _copy(v) for k, v in tree.items()} if isinstance(tree, dict) else np.array(tree)


def hand_set(params, kind, taps=TAPS):
    """Make every stage's transformation one-hot on ``taps[stage]`` (module docstring); returns a new tree."""
    p = _copy(params)
    for i, (m, n) in taps.items():
        f = p["G"][f"stage{i}"]["rnn"][kind]["f"]
        q = 3 * m + n
        if "fc2" in f:  # factorized
            N = f["S"]["W"].shape[-1]
            f["fc1"]["b"][:] = -1e6
            b = np.zeros_like(f["fc2"]["b"])
            b[q * N : (q + 1) * N] = 50.0
            f["fc2"]["b"] = b
        else:  # pixelwise
            f["conv2"]["b"][:] = -1e6
            b = np.zeros_like(f["conv3"]["b"])
            b[q] = 50.0
            f["conv3"]["b"] = b
    return p


def make_run(path, cfg=CFG, *, hand=False):
    tree = dict(init_tree(cfg)[0])
    if hand:
        tree["ema"] = hand_set(tree["ema"], cfg.cell)
        tree["g_params"] = hand_set(tree["g_params"], cfg.cell)
    path.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path / "checkpoints", tree, step=1, meta={"backend": "numpy", "config": cfg.to_dict(), "seed": 0})
    (path / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "backend": "numpy", "seed": 0,
                                                  "args": {"data": "synthetic"}}))
    return path


def numpy_backend():
    import backends

    return backends.load("numpy")


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory):
    pytest.importorskip("av")
    d = tmp_path_factory.mktemp("clips")
    ds = SyntheticShapes(32, 8, 3, seed=3, split="test")
    write_video(d / "clip.mp4", ds.clip(0))
    write_video(d / "short.mp4", ds.clip(1)[:1])
    (d / "notes.txt").write_text("not a video\n")
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"plain": make_run(root / "plain"), "hand": make_run(root / "hand", hand=True),
            "convgru": make_run(root / "convgru", CFG.replace(cell="convgru"))}


# ---------------------------------------------------------------------------- the motion field, by hand


@pytest.mark.parametrize("kind", ["tsru_p", "ptsru_p"])
def test_hand_set_transformations_give_the_hand_derived_motion(kind):
    cfg = CFG.replace(cell=kind)
    rng = np.random.default_rng(1)
    params, state = generator.init_generator(cfg, rng)
    params = hand_set(params, kind)
    cond = rng.uniform(-1, 1, (2, cfg.t_cond, 32, 32, 3)).astype(np.float32)
    z = rng.standard_normal((2, cfg.z_dim)).astype(np.float32)
    _, _, warps = generator.generate(params, state, cond, z, train=False, return_warps=True)
    for i, (m, n) in TAPS.items():
        W = warps[f"stage{i}"]["W"]
        np.testing.assert_allclose(W[..., 3 * m + n], 1.0, atol=1e-6)  # one-hot on the chosen tap
    for stages, (dy, dx) in EXPECTED.items():
        field = motion_fields(warps, stages=stages)
        assert field.shape == (2, cfg.t_pred, 32, 32, 2)
        np.testing.assert_allclose(field[..., 0], dy, atol=ATOL)
        np.testing.assert_allclose(field[..., 1], dx, atol=ATOL)
    np.testing.assert_allclose(motion_fields(warps, stages="all"), motion_fields(warps, stages=(0, 1, 2)))
    np.testing.assert_allclose(motion_fields(warps)[..., 0], -8.0, atol=ATOL)  # motion_fields' default: (0, 1)


def test_predict_clip_motion_render_and_agreement(runs, clip_mp4):
    """Through the model (checkpoint, standing statistics) and the renderer, with the ground-truth tracks."""
    model = Model(open_run(runs["hand"]), numpy_backend())
    frames = read_input(clip_mp4 / "clip.mp4", CFG)
    pred = predict_clip(model, frames, motion=True, stages=(0, 1))
    assert pred.stages == (0, 1) and pred.motion.shape == (CFG.t_pred, 32, 32, 2)
    np.testing.assert_allclose(pred.motion[..., 0], -8.0, atol=ATOL)
    np.testing.assert_allclose(pred.motion[..., 1], -4.0, atol=ATOL)
    # colour: direction atan2(-8, -4) (up and left), full brightness (the clip's largest motion)
    hue = (np.arctan2(-8.0, -4.0) / (2 * np.pi)) % 1.0
    want = np.round(np.array(colorsys.hsv_to_rgb(hue, 1.0, 1.0)) * 255)
    rgb = flow_to_rgb(pred.motion)
    assert np.abs(rgb.astype(int) - want).max() <= 1
    # the panel's full brightness is a fixed speed, the most stages 0 and 1 can express at 32x32: a corner tap
    # of the 3x3 warp on each, one cell of 32/4 = 8 px plus one of 32/8 = 4 px along both axes
    assert pred.speed_scale == pytest.approx(np.hypot(8 + 4, 8 + 4))
    dim = np.round(np.array(colorsys.hsv_to_rgb(hue, 1.0, np.hypot(8, 4) / np.hypot(12, 12))) * 255)
    video = render_prediction(pred, scale=2, labelled=False)
    assert video.shape[0] == CFG.t_total and video.shape[1] % 2 == 0 and video.shape[2] % 2 == 0
    # the motion panel (third) of a predicted frame shows that colour, at that brightness, in its interior
    panel_w = 32 * 2 + 2 * 2
    x0 = 2 * (panel_w + 4) + 2
    assert np.abs(video[CFG.t_cond, 10, x0 + 10].astype(int) - dim).max() <= 1
    # velocities at an acute angle to (-8, -4) agree everywhere, at an obtuse angle nowhere
    T, H, W = 4, 32, 32
    masks = np.zeros((T, 2, H, W), np.float32)
    masks[:, 0, 4:12, 4:12] = 1.0
    masks[:, 1, 20:26, 10:20] = 0.8
    for v, expected in (((-2.0, -1.0), 1.0), ((-1.0, 1.0), 1.0), ((2.0, 1.0), 0.0), ((1.0, -1.0), 0.0)):
        vel = np.broadcast_to(np.array(v), (T, 2, 2)).copy()
        tracks = ShapeTracks(np.zeros((T, 2, 2)), vel, np.ones(2), ("square", "disc"), np.zeros((2, 3), np.float32),
                             np.zeros(2), masks)
        assert motion_agreement(pred.motion[0], tracks, 2) == expected


def test_motion_agreement_counts_pixels_and_checks_arguments():
    T, H, W = 3, 6, 8
    masks = np.zeros((T, 1, H, W), np.float32)
    masks[1, 0, :2, :] = 1.0  # 16 pixels
    masks[1, 0, 2, :] = 0.4  # below the coverage threshold: not counted
    tracks = ShapeTracks(np.zeros((T, 1, 2)), np.tile(np.array([[[0.0, 1.0]]]), (T, 1, 1)), np.ones(1), ("disc",),
                         np.zeros((1, 3), np.float32), np.zeros(2), masks)
    flow = np.zeros((H, W, 2))
    flow[0, :, 1] = 3.0  # 8 pixels move right (agree), row 1 does not move (zero vector: no agreement)
    assert motion_agreement(flow, tracks, 1) == 0.5
    with pytest.raises(ValueError, match=r"\(H, W, 2\) = \(6, 8, 2\)"):
        motion_agreement(flow[:, :4], tracks, 1)
    with pytest.raises(ValueError, match="frame index in"):
        motion_agreement(flow, tracks, 0)
    with pytest.raises(ValueError, match="no shape pixel"):
        motion_agreement(flow, tracks, 2)


def test_flow_colours_and_wheel():
    # right red, down yellow-green (hue 1/4), left cyan, up violet (hue 3/4); half magnitude = half value
    f = np.array([[[0.0, 2.0], [2.0, 0.0], [0.0, -2.0], [-2.0, 0.0], [0.0, 1.0]]])
    got = flow_to_rgb(f)
    want = [colorsys.hsv_to_rgb(h, 1.0, v) for h, v in ((0, 1), (0.25, 1), (0.5, 1), (0.75, 1), (0, 0.5))]
    assert np.abs(got[0].astype(int) - np.round(np.array(want) * 255)).max() <= 1
    assert (flow_to_rgb(np.zeros((2, 2, 2))) == 0).all()  # no motion is black
    wheel = color_wheel(33)
    assert tuple(wheel[16, 16]) == (0, 0, 0) and tuple(wheel[0, 0]) == (255, 255, 255)
    assert tuple(wheel[16, 32]) == (255, 0, 0)  # the right rim: motion to the right
    assert np.abs(wheel[16, 0].astype(int) - (0, 255, 255)).max() <= 1  # left rim: cyan
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 2\)"):
        flow_to_rgb(np.zeros((4, 3)))


def test_motion_fields_errors():
    W = np.full((1, 2, 4, 4, 9), 1.0 / 9, np.float32)
    warps = {"stage0": {"W": W}, "stage1": {}}
    with pytest.raises(ValueError, match="no transformation 'W' at stage1"):
        motion_fields(warps, stages=(0, 1))
    np.testing.assert_allclose(motion_fields(warps, stages=(0,)), 0.0, atol=1e-6)  # uniform weights: no motion
    with pytest.raises(ValueError, match="stage indices among"):
        motion_fields(warps, stages=(5,))
    with pytest.raises(ValueError, match="twice"):
        motion_fields({"stage0": {"W": W}}, stages=(0, 0))
    with pytest.raises(ValueError, match="keys 'stage0'"):
        motion_fields({"s0": {"W": W}})
    with pytest.raises(ValueError, match=r"\(B, T, r, r, k\*k\)"):
        motion_fields({"stage0": {"W": W[0]}}, stages="all")


# ---------------------------------------------------------------------------- inputs


def test_read_frames_centre_crops_like_the_pipeline(tmp_path):
    """64 x 96 -> smaller side 32: exactly half size (2x2 block means), then the middle 32 of 48 columns."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 64, 96, 3)).astype(np.uint8)
    np.save(tmp_path / "c.npy", x)
    got = read_frames(tmp_path / "c.npy", resolution=32, max_frames=2)
    unit = x[:2].astype(np.float64) / 127.5 - 1.0
    half = unit.reshape(2, 32, 2, 48, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(got, half[:, :, 8:40], atol=1e-5)  # float32 box filter
    import imageio.v3 as iio

    (tmp_path / "frames").mkdir()
    for i in (10, 2, 1):  # natural order: 1, 2, 10
        iio.imwrite(tmp_path / "frames" / f"f{i}.png", np.full((32, 40, 3), 10 * i, np.uint8))
    fr = read_frames(tmp_path / "frames", resolution=32)
    np.testing.assert_allclose(fr[:, 0, 0, 0], np.array([10, 20, 100]) / 127.5 - 1.0, atol=1e-6)


def test_read_input_errors(tmp_path, clip_mp4):
    with pytest.raises(PredictError, match="not a video file"):
        read_input(clip_mp4 / "notes.txt", CFG)
    with pytest.raises(PredictError, match="needs 2 conditioning frames.*has 1"):
        read_input(clip_mp4 / "short.mp4", CFG)
    with pytest.raises(PredictError, match="does not exist"):
        read_input(tmp_path / "missing.mp4", CFG)
    import imageio.v3 as iio

    (tmp_path / "mixed").mkdir()
    iio.imwrite(tmp_path / "mixed" / "0.png", np.zeros((32, 32, 3), np.uint8))
    iio.imwrite(tmp_path / "mixed" / "1.png", np.zeros((40, 32, 3), np.uint8))
    with pytest.raises(PredictError, match="share a size"):
        read_input(tmp_path / "mixed", CFG)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictError, match="no image frames"):
        read_input(tmp_path / "empty", CFG)
    np.save(tmp_path / "bad.npy", np.zeros((4, 32), np.float32))
    with pytest.raises(PredictError, match=r"\(T, H, W\) or \(T, H, W, C\)"):
        read_input(tmp_path / "bad.npy", CFG)
    np.save(tmp_path / "range.npy", np.full((4, 32, 32, 3), 3.0, np.float32))
    with pytest.raises(PredictError, match=r"\[-1, 1\]"):
        read_input(tmp_path / "range.npy", CFG)


# ---------------------------------------------------------------------------- the command


def _decode(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_predict_cli_writes_mp4_and_gif(runs, clip_mp4, tmp_path, capsys):
    out = tmp_path / "pred.mp4"
    assert main(["predict", "--checkpoint", str(runs["plain"]), "--backend", "numpy", "--input",
                 str(clip_mp4 / "clip.mp4"), "--out", str(out), "--workers", "0"]) == 0
    frames = _decode(out)
    assert len(frames) == CFG.t_total  # conditioning + predicted frames
    plain_width = frames[0].shape[1]
    gif = tmp_path / "pred.gif"
    assert main(["predict", "--checkpoint", str(runs["plain"]), "--backend", "numpy", "--input",
                 str(clip_mp4 / "clip.mp4"), "--out", str(gif), "--motion", "--motion-stages", "all",
                 "--workers", "0"]) == 0
    import imageio.v3 as iio

    g = iio.imread(gif, index=None)
    assert g.shape[0] == CFG.t_total and g.shape[2] > 1.8 * plain_width  # four panels instead of two
    out = capsys.readouterr().out  # results on stdout, the log on stderr
    assert "motion field of stages 0,1,2" in out and "wrote" in out


def test_predict_cli_on_the_hand_set_run_shows_the_motion_colour(runs, clip_mp4, tmp_path):
    out = tmp_path / "hand.gif"
    assert main(["predict", "--checkpoint", str(runs["hand"]), "--backend", "numpy", "--input",
                 str(clip_mp4 / "clip.mp4"), "--out", str(out), "--motion", "--motion-stages", "0,1", "--scale", "1",
                 "--no-standing"]) == 0
    import imageio.v3 as iio

    g = iio.imread(out, index=None)[..., :3].astype(int)
    hue = (np.arctan2(-8.0, -4.0) / (2 * np.pi)) % 1.0
    # (-8, -4) px/frame at the brightness of its speed over the most stages 0 and 1 express (8 + 4 px per axis)
    want = np.array(colorsys.hsv_to_rgb(hue, 1.0, np.hypot(8, 4) / np.hypot(12, 12))) * 255
    # the motion panel (32 x 32 at --scale 1) is that one colour on predicted frames, absent while conditioning;
    # Pillow's GIF palette is adaptive: within a few levels; the 2.5 pt border covers the outer ~3 px ring
    near = (np.abs(g - want) <= 12).all(axis=-1).sum(axis=(1, 2))
    assert (near[CFG.t_cond:] >= 0.6 * 32 * 32).all() and (near[:CFG.t_cond] < 0.1 * 32 * 32).all(), near


def test_predict_figure_labels_its_panels_frames_and_the_speed_legend(runs, clip_mp4):
    pytest.importorskip("matplotlib")
    from trivd_core.predict import labelled_prediction

    model = Model(open_run(runs["hand"]), numpy_backend())
    pred = predict_clip(model, read_input(clip_mp4 / "clip.mp4", CFG), motion=True, stages=(0, 1))
    with labelled_prediction(pred, scale=2, notes=["the input is 96x64: resized"]) as fig:
        fig.frame(CFG.t_total - 1)
        labels = fig.labels()
        assert labels["columns"] == ["ground truth", "prediction", "motion (px/frame)"]
        assert labels["title"] == f"frame {CFG.t_total} of {CFG.t_total}: predicted (step {CFG.t_pred} of {CFG.t_pred})"
        fig.frame(0)
        assert fig.labels()["title"] == f"frame 1 of {CFG.t_total}: conditioning (input)"
        legend = labels["legend"]
        assert legend["xlabel"] == "dx (px/frame)" and legend["ylabel"] == "dy (px/frame)"
        v = np.hypot(12, 12)  # the most stages 0 and 1 express at 32x32 (see the colour test above)
        assert f"rim: {v:.2f} px/frame" in legend["title"]
        np.testing.assert_allclose(legend["extent"], [-v, v, v, -v])  # the wheel's axes are px/frame, dy down
        assert labels["footer"].startswith("note: the input is 96x64: resized")
        footer = " ".join(labels["footer"].split())  # wrapped to the figure's width
        assert f"fastest pixel {np.hypot(8, 4):.2f} px/frame" in footer and "not motion" in footer


def test_a_still_scene_draws_a_dark_motion_panel():
    """Full brightness is the stages' largest expressible speed, not the clip's own largest value."""
    T, R = 2, 16
    still = np.zeros((T, R, R, 2), np.float32)
    still[..., 1] = 0.05  # 0.05 px/frame to the right everywhere: next to nothing
    frames = np.zeros((1, R, R, 3), np.float32)
    p = Prediction(frames, frames[:0], np.zeros((T, R, R, 3), np.float32), still, (2,), speed_scale=2 * np.sqrt(2))
    video = render_prediction(p, scale=1, labelled=False)
    x0 = 2 * (R + 2 * 2 + 4) + 2  # inside the third (motion) panel
    # value = 0.05 / 2.83 of full: at most 5 of 255 in every channel (the old scaling drew 255)
    assert video[1, 2:R, x0:x0 + R - 2].max() <= 5


def test_input_notes_name_the_resize_the_training_data_and_a_black_frame():
    from trivd_core.predict import input_notes

    cfg = get_config("demo")
    R = cfg.resolution
    cond = np.random.default_rng(0).uniform(-1, 1, (cfg.t_cond, R, R, 3)).astype(np.float32)
    assert input_notes((R, R), cond, cfg, "synthetic:demo") == []
    resized = input_notes((576, 768), cond, cfg, "synthetic:demo")
    assert len(resized) == 1 and "768x576" in resized[0] and f"centre-cropped to {R}x{R}" in resized[0]
    assert "trained on synthetic:demo" in resized[0]
    cond[0] = -1.0  # black
    cond[1] = 0.3  # one flat grey
    notes = input_notes((R, R), cond, cfg, "synthetic:demo")
    assert len(notes) == 2 and "frame 1 is black" in notes[0] and "frame 2 is one flat colour" in notes[1]


def test_predict_cli_says_a_foreign_video_was_resized_and_its_black_frame(runs, tmp_path, capsys):
    pytest.importorskip("av")
    clip = np.repeat(SyntheticShapes(32, 8, 3, seed=3, split="test").clip(0), 2, axis=1)  # 32 x 64: not the model's
    clip = np.repeat(clip, 3, axis=2)[:, :, :96]
    clip[0] = -1.0  # a black first frame, as a fade-in
    write_video(tmp_path / "wide.mp4", clip)
    out = tmp_path / "wide.gif"
    assert main(["predict", "--checkpoint", str(runs["hand"]), "--backend", "numpy", "--input",
                 str(tmp_path / "wide.mp4"), "--out", str(out), "--motion", "--no-standing"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("trivd predict: note: ")]
    assert len(notes) == 2, err
    assert "the input is 96x64" in notes[0] and "trained on synthetic" in notes[0]
    assert "conditioning frame 1 is black" in notes[1]


def test_predict_cli_errors(runs, clip_mp4, tmp_path, capsys):
    def err(*argv, run="plain"):
        ckpt = str(runs[run]) if run in runs else run
        assert main(["predict", "--checkpoint", ckpt, "--backend", "numpy", "--workers", "0", *argv]) == 2
        return capsys.readouterr().err

    out = str(tmp_path / "o.mp4")
    assert "not a video file" in err("--input", str(clip_mp4 / "notes.txt"), "--out", out)
    msg = err("--input", str(clip_mp4 / "short.mp4"), "--out", out)
    assert "needs 2 conditioning frames" in msg and "has 1" in msg
    assert "transformation-based" in err("--input", str(clip_mp4 / "clip.mp4"), "--out", out, "--motion",
                                         run="convgru")
    assert "unknown output type '.txt'" in err("--input", str(clip_mp4 / "clip.mp4"), "--out",
                                               str(tmp_path / "o.txt"))
    assert "--motion-stages" in err("--input", str(clip_mp4 / "clip.mp4"), "--out", out, "--motion",
                                    "--motion-stages", "x")
    assert "stage indices among" in err("--input", str(clip_mp4 / "clip.mp4"), "--out", out, "--motion",
                                        "--motion-stages", "7")
    assert "no such run directory" in err("--input", str(clip_mp4 / "clip.mp4"), "--out", out,
                                          run=str(tmp_path / "none"))


def test_predict_without_ground_truth_and_write_errors(runs, tmp_path):
    model = Model(open_run(runs["plain"]), numpy_backend())
    frames = np.zeros((CFG.t_cond, 32, 32, 3), np.float32)  # only the conditioning frames
    p = predict_clip(model, frames)
    assert isinstance(p, Prediction) and p.truth.shape[0] == 0 and p.pred.shape == (CFG.t_pred, 32, 32, 3)
    video = render_prediction(p, labelled=False)
    assert video.shape[0] == CFG.t_total and (video[-1, 10, 10] == 128).all()  # grey where truth is missing
    with pytest.raises(PredictError, match="unknown output type"):
        write_frames(tmp_path / "x.png", video)
    with pytest.raises(PredictError, match="needs 2 conditioning frames"):
        predict_clip(model, frames[:1])
    with pytest.raises(PredictError, match=r"must be \(n, 32, 32, 3\)"):
        predict_clip(model, np.zeros((2, 16, 16, 3), np.float32))


# ---------------------------------------------------------------------------- batch prediction to arrays


def test_predict_cli_npy_to_npy_matches_predict_clip(runs, tmp_path, capsys):
    """`--input clips.npy --out pred.npy`: (N, t_cond + t_pred, H, W, C), conditioning frames kept, in [-1, 1]."""
    ds = SyntheticShapes(32, 6, 3, seed=5, split="test")
    clips = np.stack([ds.clip(i) for i in range(5)])  # 6 frames each: more than t_cond, extra frames ignored
    src = tmp_path / "clips.npy"
    np.save(src, clips)
    out = tmp_path / "pred.npy"
    base = ["predict", "--checkpoint", str(runs["plain"]), "--backend", "numpy", "--workers", "0", "--no-standing"]
    assert main([*base, "--input", str(src), "--out", str(out), "--batch-size", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    got = np.load(out)
    assert got.shape == (5, CFG.t_total, 32, 32, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got[:, :CFG.t_cond], clips[:, :CFG.t_cond])
    assert np.abs(got).max() <= 1.0
    # the same latents whatever the batch size: one batch of 5 gives the same clips up to the batch
    # statistics (no standing statistics here, so batches of 2 and of 5 normalise differently): compare
    # against predict_batch on identical batching instead
    from trivd_core.predict import predict_batch

    model = Model(open_run(runs["plain"]), numpy_backend())
    want = predict_batch(model, clips[:, :CFG.t_cond], seed=0, batch_size=2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_predict_cli_npy_errors(runs, tmp_path, capsys):
    def err(src, *extra, out=None):
        argv = ["predict", "--checkpoint", str(runs["plain"]), "--backend", "numpy", "--workers", "0",
                "--no-standing", "--input", str(src), "--out", str(out or tmp_path / "p.npy"), *extra]
        assert main(argv) == 2
        text = capsys.readouterr().err.strip()
        assert "\n" not in text and "Traceback" not in text
        return text

    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 3, 32, 32, 3), np.float32))
    np.save(tmp_path / "short.npy", np.zeros((2, 1, 32, 32, 3), np.float32))
    np.save(tmp_path / "size.npy", np.zeros((2, 3, 16, 16, 3), np.float32))
    np.save(tmp_path / "ints.npy", np.zeros((2, 3, 32, 32, 3), np.uint8))
    np.save(tmp_path / "range.npy", np.full((2, 3, 32, 32, 3), 3.0, np.float32))
    nan = np.zeros((2, 3, 32, 32, 3), np.float32)
    nan[1, 0, 4, 4, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    assert "T >= 2" in err(tmp_path / "short.npy")
    assert "(N >= 1, T >= 2, 32, 32, 3)" in err(tmp_path / "size.npy")
    assert "float frames" in err(tmp_path / "ints.npy")
    assert "[-1, 1]" in err(tmp_path / "range.npy")
    assert "1 conditioning values are NaN" in err(tmp_path / "nan.npy")
    assert "cannot read it" in err(tmp_path / "junk.npy")
    assert "does not apply to --out .npy" in err(good, "--motion")
    assert "does not exist" in err(good, out=tmp_path / "missing" / "p.npy")
    assert "--batch-size must be >= 1, got 0" in err(good, "--batch-size", "0")


def test_default_motion_stages_read_the_finest_stage_at_32(runs, clip_mp4):
    """At 32x32 the default is stage 2 alone (16x16); the hand-set run's stage 2 moves content by (2, 2)."""
    model = Model(open_run(runs["hand"]), numpy_backend())
    pred = predict_clip(model, read_input(clip_mp4 / "clip.mp4", CFG), motion=True)
    assert pred.stages == (2,)
    np.testing.assert_allclose(pred.motion, 2.0, atol=ATOL)
    # a shape moving down-right agrees everywhere with the default field, nowhere with the paper's (0, 1)
    T, H, W = CFG.t_total, 32, 32
    masks = np.zeros((T, 1, H, W), np.float32)
    masks[:, 0, 8:16, 8:16] = 1.0
    tracks = ShapeTracks(np.zeros((T, 1, 2)), np.full((T, 1, 2), 1.5), np.ones(1), ("square",),
                         np.zeros((1, 3), np.float32), np.zeros(2), masks)
    assert motion_agreement(pred.motion[0], tracks, CFG.t_cond) == 1.0
    paper = predict_clip(model, read_input(clip_mp4 / "clip.mp4", CFG), motion=True, stages=(0, 1))
    assert motion_agreement(paper.motion[0], tracks, CFG.t_cond) == 0.0  # (-8, -4): against (1.5, 1.5)


@pytest.mark.parametrize("argv, message", [
    (["--out", "x.txt"], "expected a .npy file or a video"),
    (["--out", "no/such/folder/x.npy"], "its folder does not exist"),
    (["--out", "x.npy", "--checkpoint", "no_such_run"], "--checkpoint no_such_run"),
    (["--out", "x.npy", "-n", "0"], "--num must be >= 1"),
    (["--out", "x.npy", "--channels", "2"], "--channels must be 1 or 3"),
    (["--out", "x.npy", "--data", "synthetic:nope"], "--data synthetic:nope"),
])
def test_clips_usage_errors_exit_2_with_one_line(tmp_path, capsys, monkeypatch, argv, message):
    from trivd.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["clips", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_clips_of_a_run_are_its_held_out_data_at_the_model_size(tmp_path, capsys):
    from trivd.cli import main

    run = make_run(tmp_path / "run")
    out = tmp_path / "c.npy"
    assert main(["clips", "--checkpoint", str(run), "-n", "3", "--out", str(out)]) == 0
    got = np.load(out)
    ds = SyntheticShapes(CFG.resolution, CFG.t_total, CFG.channels, seed=0, split="test")
    want = np.stack([ds.clip(i) for i in range(3)]).astype(np.float32)
    np.testing.assert_array_equal(got, want)  # the test split's first clips, in order
