"""The in-training validation (trivd_core.train.validation) and its place in the loop.

The expected values are derived by hand, not from the code under test:

* a "model" that returns the true future frames has MSE 0, SSIM 1 and MSE ratio 0; one that
  returns copies of the last conditioning frame has exactly the copy baseline's numbers;
* the static-blur baseline of a frame against its own Gaussian blur of sigma 2 is 0 at sigma 2
  (scipy's filter, the same call on both sides);
* a hand-set transformation at the finest stage that moves content by ``2 * sign(v)`` frame
  pixels per frame (tap ``(1 - sign v_y, 1 - sign v_x)`` of the 3x3 grid, Eq. 11: tap ``(m, n)``
  samples from ``(m - 1, n - 1)``, so content moves by ``(1 - m, 1 - n)`` stage pixels, times
  32 / 16) has a positive dot product with every velocity ``v``: agreement 1; the opposite taps
  give 0.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from trivd_core.configs import get_config
from trivd_core.data import make_dataset
from trivd_core.predict import default_stages
from trivd_core.train import artifacts
from trivd_core.train.validation import ValidationSet, blur_baseline, plot_validation, summary_line, validate

CFG = get_config("demo")


@pytest.fixture(scope="module")
def vset():
    ds = make_dataset("synthetic:demo", resolution=32, t=CFG.t_total, channels=3, split="val")
    return ValidationSet.from_dataset(ds, CFG, n_clips=6)


def _one_hot_warps(vset, sign=1.0):
    """Stage warps (B, T, r, r, 9): stages 0, 1 on the centre tap (no motion), stage 2 one-hot on the tap of sign * v."""
    B, T = vset.cond.shape[0], vset.truth.shape[1]
    warps = {}
    for i, r in enumerate((4, 8, 16)):
        W = np.zeros((B, T, r, r, 9), np.float32)
        W[..., 4] = 1.0
        if i == 2:
            W[:] = 0.0
            for b in range(B):
                for j in range(T):
                    v = vset.tracks[b].velocities[CFG.t_cond + j - 1, 0]  # one shape per clip
                    m, n = (1 - int(sign * np.sign(v[0])), 1 - int(sign * np.sign(v[1])))
                    W[b, j, :, :, 3 * m + n] = 1.0
        warps[f"stage{i}"] = {"W": W}
    return warps


def test_validate_truth_copy_and_motion(vset):
    truth_fn = lambda tree, cond, z: (vset.truth, _one_hot_warps(vset))  # noqa: E731
    rec = validate(truth_fn, {}, vset, CFG)
    assert rec["mse"] == [0.0] * CFG.t_pred and rec["mse_ratio"] == 0.0
    np.testing.assert_allclose(rec["ssim"], 1.0, rtol=0, atol=1e-12)
    assert rec["motion_agreement"] == 1.0 and rec["motion_agreement/stage2"] == 1.0
    copy = np.repeat(vset.cond[:, -1:], CFG.t_pred, axis=1)
    copy_fn = lambda tree, cond, z: (copy, _one_hot_warps(vset, sign=-1.0))  # noqa: E731
    rec = validate(copy_fn, {}, vset, CFG)
    assert rec["mse"] == rec["copy_mse"] and rec["ssim"] == rec["copy_ssim"] and rec["mse_ratio"] == 1.0
    assert rec["motion_agreement"] == 0.0
    # the centre taps of stages 0 and 1 have no displacement: a zero vector never agrees
    assert rec["motion_agreement/stage0"] == 0.0 and rec["motion_agreement/stage1"] == 0.0
    assert "x1.00" in summary_line(rec) and "motion agreement 0.00" in summary_line(rec)


def test_validate_copy_and_model_mse_on_hand_made_frames():
    """Constant frames: the copy's MSE per predicted frame is (truth_j - last_cond)^2 and the model's
    (pred_j - truth_j)^2, exactly; their ratio is the ratio of the sums (values chosen as exact binary fractions)."""
    N, H, C = 2, 16, 3
    cond = np.full((N, CFG.t_cond, H, H, C), 0.25, np.float32)
    cond[:, -1] = -0.5  # the last conditioning frame is what the copy repeats
    truth = np.stack([np.full((N, H, H, C), v, np.float32) for v in (0.5, 0.0, -0.25)][: CFG.t_pred], axis=1)
    pred = truth + np.float32(0.125)  # off by 1/8 everywhere
    vset = ValidationSet(cond=cond, truth=truth)
    rec = validate(lambda tree, c, z: (pred, {}), {}, vset, CFG)
    want_copy = [(v + 0.5) ** 2 for v in (0.5, 0.0, -0.25)][: CFG.t_pred]  # 1, 1/4, 1/16
    assert rec["copy_mse"] == want_copy
    assert rec["mse"] == [0.125 ** 2] * CFG.t_pred
    assert rec["mse_ratio"] == pytest.approx(np.mean([0.125 ** 2] * CFG.t_pred) / np.mean(want_copy), rel=1e-15)
    # PSNR on [-1, 1]: 10 log10(4 / MSE); the model's is 10 log10(256) for every frame
    np.testing.assert_allclose(rec["psnr"], 10 * np.log10(4 / 0.125 ** 2), rtol=1e-12)


def test_a_broken_motion_field_fails_loudly(vset, monkeypatch):
    """Only "no shape pixel in the frame" is skipped; a motion field of the wrong shape is an error, not a None."""
    import trivd_core.predict as tp

    real = tp.motion_fields
    monkeypatch.setattr(tp, "motion_fields", lambda *a, **k: np.asarray(real(*a, **k))[..., :1])  # (..., 1): broken
    truth_fn = lambda tree, cond, z: (vset.truth, _one_hot_warps(vset))  # noqa: E731
    with pytest.raises(ValueError, match=r"motion_agreement\(\): argument 'flow' must be \(H, W, 2\)"):
        validate(truth_fn, {}, vset, CFG)
    # the one skipped condition: every shape off the picture in a frame
    empty = tp.NoShapePixels("frame 3 has no shape pixel")
    monkeypatch.setattr(tp, "motion_fields", real)
    calls = []

    def agreement(flow, tracks, t, **kw):
        calls.append(t)
        raise empty

    monkeypatch.setattr(tp, "motion_agreement", agreement)
    rec = validate(truth_fn, {}, vset, CFG)
    assert calls and rec["motion_agreement"] is None


def test_validate_passes_zero_latents_and_default_stages(vset):
    seen = {}

    def fn(tree, cond, z):
        seen["z"], seen["cond"] = z, cond
        return vset.truth, _one_hot_warps(vset)

    validate(fn, {"marker": 1}, vset, CFG)
    assert seen["z"].shape == (6, CFG.z_dim) and not seen["z"].any()
    assert seen["cond"] is vset.cond
    assert default_stages(CFG) == (2,)
    assert default_stages(get_config("paper_medium")) == (1, 2)  # 64x64: 16x16 and 32x32
    assert default_stages(get_config("paper_medium", resolution=128)) == (0, 1)  # the paper's two lowest levels


def test_blur_baseline_finds_the_blur_in_hindsight():
    """An impulse blurred by hand with a sampled, normalised Gaussian of sigma 2 (radius 8, 4 sigma: the truncation of
    scipy's filter) is found again: sigma 2 with an MSE at rounding level; the impulse itself is sigma 0."""
    x = np.zeros((1, 41, 41, 1))
    x[0, 20, 20, 0] = 1.0
    sigma, radius = 2.0, 8
    i = np.arange(-radius, radius + 1)
    k = np.exp(-(i ** 2) / (2 * sigma ** 2))
    k /= k.sum()
    target = np.zeros_like(x)
    target[0, 20 - radius : 20 + radius + 1, 20 - radius : 20 + radius + 1, 0] = np.outer(k, k)
    mse, found = blur_baseline(x, target)
    assert found == 2.0 and mse < 1e-30
    mse0, sigma0 = blur_baseline(x, x)
    assert (mse0, sigma0) == (0.0, 0.0)


def test_validation_set_from_dataset_errors_and_tracks():
    ds = make_dataset("synthetic:demo", resolution=32, t=CFG.t_total, channels=3, split="val")
    v = ValidationSet.from_dataset(ds, CFG, n_clips=3)
    assert v.cond.shape == (3, 2, 32, 32, 3) and v.truth.shape == (3, 3, 32, 32, 3) and len(v.tracks) == 3
    np.testing.assert_array_equal(np.concatenate([v.cond, v.truth], 1)[1], ds.clip(1))
    with pytest.raises(ValueError, match="n_clips"):
        ValidationSet.from_dataset(ds, CFG, n_clips=0)
    wrong = make_dataset("synthetic:demo", resolution=32, t=4, channels=3, split="val")
    with pytest.raises(ValueError, match="the config needs"):
        ValidationSet.from_dataset(wrong, CFG, n_clips=2)


class _StepEngine:
    """The smallest engine of the loop's contract: a step counter, a constant prediction."""

    name, devices = "steps", ["cpu"]

    def init(self, seed):
        return {"step": np.int64(0)}

    def step(self, ts, inputs):
        return {"step": ts["step"] + 1}, {"d_loss": 1.0, "g_loss": 2.0}

    def export(self, ts):
        return {"step": np.asarray(ts["step"])}

    def restore(self, tree):
        return {"step": np.int64(tree["step"])}

    def predict(self, ts, cond, z, *, ema=True):
        return np.zeros((cond.shape[0], CFG.t_pred, *cond.shape[2:]), np.float32)


def test_loop_runs_validation_logs_plots_and_reports(tmp_path):
    """train(validator=...) every eval_every steps and at the last step: metrics.jsonl, curves.png, status.json."""
    from trivd_core.data import Loader
    from trivd_core.train import TrainOptions, train

    calls = []

    def validator(tree):
        calls.append(int(tree["step"]))
        k = len(calls)
        return {"mse": [0.1 / k] * 2, "copy_mse": [0.2] * 2, "ssim": [0.5] * 2, "copy_ssim": [0.6] * 2,
                "psnr": [20.0] * 2, "copy_psnr": [19.0] * 2, "mse_ratio": 0.5 / k, "blur_mse_last": 0.15,
                "blur_sigma": 1.0, "motion_agreement": 0.5 + 0.1 * k}

    opts = TrainOptions(run_dir=tmp_path / "run", steps=5, seed=0, log_every=1, sample_every=5, ckpt_every=5,
                        keep=1, n_samples=2, progress=False, eval_every=2)
    ds = make_dataset("synthetic:demo", resolution=32, t=CFG.t_total, channels=3, length=32)
    with Loader(ds, CFG.batch_size, workers=0) as loader:
        res = train(_StepEngine(), CFG, loader, opts, log=lambda m: None, validator=validator)
    assert calls == [2, 4, 5]  # every 2 steps and the last one
    recs = [r for r in artifacts.read_metrics(tmp_path / "run" / "metrics.jsonl") if r.get("kind") == "val"]
    assert [r["step"] for r in recs] == [2, 4, 5] and recs[-1]["val/mse_ratio"] == pytest.approx(0.5 / 3)
    assert res.last_validation["motion_agreement"] == pytest.approx(0.8)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["validation"]["mse_ratio"] == pytest.approx(0.5 / 3)
    png = (tmp_path / "run" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert plot_validation(tmp_path / "run" / "nothing.jsonl", tmp_path / "x.png") is None
    with pytest.raises(ValueError, match="eval_every"):
        TrainOptions(run_dir=tmp_path, steps=1, eval_every=-1)


def test_tensorboard_scalars_when_a_writer_is_installed(tmp_path, monkeypatch):
    """With tensorboardX importable, train() writes train/ and val/ scalars; without one, nothing (TensorBoard.open)."""
    import sys
    import types

    from trivd_core.data import Loader
    from trivd_core.train import TrainOptions, train
    from trivd_core.train.validation import TensorBoard

    events = []

    class Writer:
        def __init__(self, logdir):
            events.append(("open", logdir))

        def add_scalar(self, tag, value, step):
            events.append((tag, value, step))

        def close(self):
            events.append(("close",))

    monkeypatch.setitem(sys.modules, "tensorboardX", types.SimpleNamespace(SummaryWriter=Writer))
    opts = TrainOptions(run_dir=tmp_path / "run", steps=2, seed=0, log_every=1, sample_every=2, ckpt_every=2,
                        keep=1, n_samples=2, progress=False, eval_every=2)
    ds = make_dataset("synthetic:demo", resolution=32, t=CFG.t_total, channels=3, length=32)
    rec = {"mse": [0.1, 0.2], "copy_mse": [0.2, 0.3], "ssim": [0.5, 0.5], "copy_ssim": [0.6, 0.6],
           "psnr": [20.0, 19.0], "copy_psnr": [19.0, 18.0], "mse_ratio": 0.6, "blur_mse_last": 0.15,
           "blur_sigma": 1.0, "motion_agreement": None}
    with Loader(ds, CFG.batch_size, workers=0) as loader:
        train(_StepEngine(), CFG, loader, opts, log=lambda m: None, validator=lambda tree: rec)
    assert events[0] == ("open", str(tmp_path / "run" / "tensorboard")) and events[-1] == ("close",)
    assert ("train/d_loss", 1.0, 1) in events and ("val/mse_ratio", 0.6, 2) in events
    assert ("val/mse", pytest.approx(0.15), 2) in events  # lists: their mean
    assert not any(e[0] == "val/motion_agreement" for e in events)  # None is not a scalar
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert TensorBoard.open(tmp_path / "tb") is None
