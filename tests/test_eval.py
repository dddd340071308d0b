"""`trivd eval` and its pieces: runs, standing statistics, best of l, the copy
baseline, eval.json and plots, held-out splits and the BAIR balanced split.

Expected values are derived independently of the code under test:

* the copy baseline is recomputed clip by clip with ``metrics.ssim`` / ``metrics.psnr`` on the
  synthetic clips themselves (``SyntheticShapes.clip(i)``, a pure function of the index), with a
  dataset of exactly ``num_samples`` clips so that the evaluated set is known whatever the order;
* best of l = 1 is compared with single predictions made by hand through ``Model.predict`` with the
  zero latents of ``truncation=0`` (then every sample is the same, whatever the random stream);
* standing statistics are compared with trivd_core's own ``accumulate_standing_stats`` over the
  same batches (the engine-free reference path);
* split sizes and membership come from the rule written out in the test (``floor(0.7 n)``, the last
  ``ceil(f n)`` videos, SHA-256 of the path), applied to videos whose pixel values encode their index.

Runs are made by saving a torch ``engine.init`` state with ``save_checkpoint`` (the engine-made tree
of a step-0 run, in a second), or the same tree from ``init_generator``/``init_discriminator`` when
torch is not installed; evaluation itself runs on the ``numpy`` backend (trivd_core's generic code, no
compile) or on torch.  JAX compiles for ~30 s per function on 2 cores, so its end-to-end check (which
also compares it with torch) is marked ``slow``.  Config: the tiny one narrowed to g_ch = d_ch = 2,
32 x 32 (SSIM needs 11 x 11 windows), 2 -> 3 frames.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from _test_helpers import init_tree

from trivd.cli import main
from trivd_core import generator, metrics
from trivd_core.configs import get_config
from trivd_core.data import (
    ArrayDataset,
    BairDataset,
    DataError,
    SyntheticShapes,
    VideoFolderDataset,
    bair_split,
    balanced_split,
    holdout_split,
    make_dataset,
    write_video,
)
from trivd_core.data.bair import parse_bair_split
from trivd_core.evaluate import EvalError, Model, check_data_fits, evaluate, open_run, standing_batches, write_report
from trivd_core.train.checkpoint import save_checkpoint

CFG = get_config("tiny", g_ch=2, d_ch=2, batch_size=4, standing_batches=2)


def make_run(path, cfg=CFG, *, step=3, data="synthetic", tree=None):
    if tree is None:
        tree, backend = init_tree(cfg)
    else:
        backend = "numpy"
    path.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path / "checkpoints", tree, step=step, meta={"backend": backend, "config": cfg.to_dict(),
                                                                 "seed": 0})
    (path / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "backend": backend, "seed": 0,
                                                  "args": {"data": data}}))
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "run")


def numpy_backend():
    import backends

    return backends.load("numpy")


# ---------------------------------------------------------------------------- runs


def test_open_run_finds_the_newest_intact_checkpoint(tmp_path):
    run = make_run(tmp_path / "r", step=3)
    tree, _ = init_tree(CFG)
    save_checkpoint(run / "checkpoints", tree, step=9, meta={"config": CFG.to_dict()})
    assert open_run(run).step == 9
    assert open_run(run / "checkpoints").step == 9
    assert open_run(run / "checkpoints" / "step_00000003.json").step == 3
    # damage the newest: its hash no longer matches, the previous one is used
    npz = run / "checkpoints" / "step_00000009.npz"
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")
    found = open_run(run)
    assert found.step == 3 and found.config == CFG and found.data == "synthetic" and found.run_dir == run


def test_open_run_reports_a_damaged_newer_checkpoint(tmp_path, capsys):
    run = make_run(tmp_path / "run", step=3)
    save_checkpoint(run / "checkpoints", init_tree(CFG)[0], step=5, meta={"config": CFG.to_dict()})
    npz = run / "checkpoints" / "step_00000005.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    r = open_run(run)
    assert r.step == 3 and [p.name for p, _ in r.damaged] == ["step_00000005.json"]
    assert "SHA-256" in r.damaged[0][1]
    assert main(["eval", "--checkpoint", str(run), "--backend", "numpy", "--no-progress", "--no-standing",
                 "--num-samples", "4", "--workers", "0", "--out", str(tmp_path / "out")]) == 0
    assert "the newer checkpoint step_00000005.json is damaged" in capsys.readouterr().err


def test_open_run_errors(tmp_path):
    with pytest.raises(EvalError, match="no such run directory"):
        open_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalError, match="not a run directory"):
        open_run(tmp_path / "empty")
    (tmp_path / "nockpt" / "checkpoints").mkdir(parents=True)
    with pytest.raises(EvalError, match="no intact checkpoint"):
        open_run(tmp_path / "nockpt")
    (tmp_path / "x.npz").write_bytes(b"")
    with pytest.raises(EvalError, match="commit marker"):
        open_run(tmp_path / "x.npz")


# ---------------------------------------------------------------------------- standing statistics


def test_standing_statistics_equal_the_core_accumulation(run_dir):
    """Model.accumulate_standing_stats (per-batch jit, float64 average) == generator.accumulate_standing_stats."""
    run = open_run(run_dir)
    model = Model(run, numpy_backend())
    ds = make_dataset("synthetic", resolution=32, t=CFG.t_total, split="train", length=16)
    batches = list(standing_batches(ds, model, n_batches=3, batch_size=4, seed=1))
    assert len(batches) == 3 and batches[0][0].shape == (4, CFG.t_cond, 32, 32, 3) and batches[0][1].shape == (4, 16)
    model.accumulate_standing_stats(batches, source="test")
    want = generator.accumulate_standing_stats(run.tree["ema"], run.tree["g_state"], batches)["standing"]
    got = model._state_np["standing"]

    def walk(a, b, path=""):
        if isinstance(a, dict):
            assert set(a) == set(b), path
            for k in a:
                walk(a[k], b[k], f"{path}/{k}")
            return
        # float32 statistics; the two sum three batch values in different precisions: a few ulp apart
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=path)

    walk(got, want)
    assert model.has_standing and model.standing == {"batches": 3, "source": "test"}
    with pytest.raises(EvalError, match="at least one batch"):
        model.accumulate_standing_stats([])


def test_engine_and_core_paths_agree(run_dir):
    """The torch engine's compiled predict and the core's generate on NumPy give the same frames (float32)."""
    pytest.importorskip("torch")
    import backends

    run = open_run(run_dir)
    torch_b = backends.load("torch")
    ds = make_dataset("synthetic", resolution=32, t=CFG.t_total, split="train", length=8)
    a = Model(run, torch_b, engine=torch_b.engine(CFG))
    b = Model(run, numpy_backend())
    for m in (a, b):
        m.accumulate_standing_stats(standing_batches(ds, m, n_batches=2, batch_size=4, seed=0))
    cond = np.stack([ds.clip(i)[: CFG.t_cond] for i in range(3)])
    z = np.random.default_rng(0).standard_normal((3, CFG.z_dim)).astype(np.float32)
    # float32 through ~15 layers, oneDNN vs tensordot convolutions: rounding ~1e-6 relative per layer
    np.testing.assert_allclose(a.predict(cond, z), b.predict(cond, z), atol=2e-4)


# ---------------------------------------------------------------------------- the protocol


@pytest.mark.parametrize("protocol", ["savp", "pm1"])
def test_copy_baseline_equals_an_independent_computation(run_dir, tmp_path, protocol):
    n = 6
    rc = main(["eval", "--checkpoint", str(run_dir), "--backend", "numpy", "--num-samples", str(n), "--batch-size",
               "4", "--best-of", "2", "--data-option", f"length={n}", "--no-progress", "--workers", "0",
               "--out", str(tmp_path / "out"), "--ssim-protocol", protocol])
    assert rc == 0
    rec = json.loads((tmp_path / "out" / "eval.json").read_text())
    # Expected values from scikit-image's SSIM (Gaussian 11 x 11 window, sigma 1.5, population statistics:
    # the SAVP settings) and PSNR written out, on the copy of each clip's last conditioning frame; neither
    # goes through trivd's metrics.
    from skimage.metrics import structural_similarity

    ds = SyntheticShapes(32, CFG.t_total, 3, seed=0, split="test", length=n)
    ssim = np.zeros(CFG.t_pred)
    psnr = np.zeros(CFG.t_pred)
    for i in range(n):
        clip = ds.clip(i).astype(np.float64)
        last = clip[CFG.t_cond - 1]
        for j in range(CFG.t_pred):
            truth = clip[CFG.t_cond + j]
            if protocol == "savp":
                a, b, rng_ = (last + 1) / 2, (truth + 1) / 2, 1.0
            else:
                a, b, rng_ = last, truth, 2.0
            ssim[j] += structural_similarity(a, b, data_range=rng_, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, channel_axis=-1) / n
            psnr[j] += 10 * np.log10(2.0 ** 2 / np.mean((last - truth) ** 2)) / n
    # the same float64 arithmetic by another implementation and in another order
    np.testing.assert_allclose(rec["copy_baseline"]["ssim"], ssim, rtol=1e-10)
    np.testing.assert_allclose(rec["copy_baseline"]["psnr"], psnr, rtol=1e-10)
    assert rec["copy_baseline"]["ssim_mean"] == pytest.approx(ssim.mean(), rel=1e-10)
    assert rec["num_samples"] == n and rec["best_of"] == 2 and sum(rec["chosen_histogram"]) == n
    p = rec["protocols"]
    assert rec["ssim_protocol"] == p["ssim"]["protocol"] == protocol
    assert p["ssim"]["data_range"] == {"savp": 1.0, "pm1": 2.0}[protocol] and p["best_of"]["samples"] == 2
    assert p["ssim"]["follows"] == {"savp": "SAVP video_prediction/metrics.py", "pm1": "none (trivd option)"}[protocol]
    assert p["fvd"] is None and p["inception_score"] is None


class _StubExtractor:
    """Features: per-channel means of the first and last frames (cheap; their values are not I3D's)."""

    image_size = (224, 224)

    def __init__(self, resize="tf1", pool="global"):
        self.resize, self.pool = resize, pool
        self.seen: list[np.ndarray] = []

    def __call__(self, v):
        self.seen.append(np.array(v))
        return np.concatenate([v[:, 0].mean(axis=(1, 2)), v[:, -1].mean(axis=(1, 2))], axis=1)


def test_eval_records_the_fvd_and_is_conventions(run_dir, tmp_path, monkeypatch):
    """--fvd-resize and --fvd-pool reach the extractor; eval.json says which grid, pooling and covariance FVD used."""
    import trivd.weights as tw

    seen = {}

    def fake_open(path, **kw):
        seen.update(kw)
        return _StubExtractor(kw["resize"], kw["pool"]), {"path": str(path), "sha256": "0" * 64, "chosen_by": "given"}

    monkeypatch.setattr(tw, "open_extractor", fake_open)
    (tmp_path / "w.npz").write_bytes(b"")
    for grid, follows in (("tf1", "frechet_video_distance.py"), ("half_pixel", "trivd option")):
        out = tmp_path / grid
        assert main(["eval", "--checkpoint", str(run_dir), "--backend", "numpy", "--num-samples", "6", "--no-progress",
                     "--workers", "0", "--no-standing", "--i3d", str(tmp_path / "w.npz"), "--fvd-resize", grid,
                     "--fvd-pool", "global", "--out", str(out)]) == 0
        rec = json.loads((out / "eval.json").read_text())
        assert seen["resize"] == grid and rec["protocols"]["fvd"]["resize"] == grid
        assert seen["pool"] == "global" and rec["protocols"]["fvd"]["pool"] == "global"
        assert follows in rec["protocols"]["fvd"]["follows"]
        assert rec["protocols"]["fvd"]["covariance"].startswith("unbiased")
        assert rec["protocols"]["inception_score"] == {"splits": 6, "shuffle": False, "std_ddof": 0,
                                                       "follows": rec["protocols"]["inception_score"]["follows"]}
        assert rec["i3d"]["sha256"] == "0" * 64 and rec["fvd"]["samples"] == 6 and rec["fvd"]["floor_samples"] == 6
        # (the FVD values themselves: test_eval_fvd_floor_is_a_disjoint_real_set_of_the_same_size)


def test_eval_fvd_floor_is_a_disjoint_real_set_of_the_same_size(run_dir):
    """The real-vs-real floor compares the evaluated real clips with N further, different real clips."""
    from trivd_core.evaluate import Model

    model = Model(open_run(run_dir), numpy_backend())
    stub = _StubExtractor()
    n = 6
    rec = evaluate(model, make_dataset("synthetic", resolution=32, t=5, split="test"), num_samples=n, batch_size=4,
                   extractor=stub, progress=False, workers=0)
    # the calls per batch: real, model, copy (batches of 4 and 2), then the floor's (4 and 2)
    real = np.concatenate([stub.seen[0], stub.seen[3]])
    floor = np.concatenate(stub.seen[6:])
    assert real.shape == floor.shape == (n, 5, 32, 32, 3)
    assert not any(np.array_equal(a, b) for a in real for b in floor)  # disjoint clips
    assert rec["fvd"]["floor_samples"] == rec["fvd"]["samples"] == n and rec["fvd"]["floor_sets"] == "disjoint"
    want = metrics.frechet_distance_from_features(stub(real), stub(floor))
    assert rec["fvd"]["real_floor"] == pytest.approx(want, rel=1e-12)
    # a split too small for a second set: the two halves of the evaluated clips, with a note
    small = make_dataset("synthetic", resolution=32, t=5, split="test", length=8)
    rec = evaluate(model, small, num_samples=n, batch_size=4, extractor=_StubExtractor(), progress=False, workers=0)
    assert rec["fvd"]["floor_sets"] == "halves" and rec["fvd"]["floor_samples"] == n // 2
    assert "too few clips" in rec["fvd"]["floor_note"]


def test_eval_data_options_add_to_the_runs_and_are_printed(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    rec = json.loads((run / "config.json").read_text())
    rec["args"]["data_options"] = {"length": 6, "texture": 0.0}
    (run / "config.json").write_text(json.dumps(rec))
    out = tmp_path / "ev"
    assert main(["eval", "--checkpoint", str(run), "--backend", "numpy", "--no-progress", "--no-standing",
                 "--workers", "0", "--data-option", "num_shapes=1", "--data-option", "texture=0.1",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    got = json.loads((out / "eval.json").read_text())
    assert got["data_options"] == {"length": 6, "texture": 0.1, "num_shapes": 1}  # merged, the user's value wins
    assert got["num_samples"] == 6  # the run's length=6 still applies
    assert "options: length=6, num_shapes=1, texture=0.1" in err
    assert main(["eval", "--checkpoint", str(run), "--backend", "numpy", "--no-progress", "--no-standing",
                 "--workers", "0", "--split", "train", "--num-samples", "4", "--out", str(out)]) == 0
    assert "evaluating on the split the run trained on" in capsys.readouterr().err


def test_best_of_one_equals_a_single_sample(run_dir):
    """truncation=0: every latent is zero, so a sample is G(cond, 0) whatever the random stream; l = 1 and l = 3
    then both equal the single prediction made by hand, and l = 3 keeps the first of three equal samples."""
    run = open_run(run_dir)
    model = Model(run, numpy_backend(), truncation=0.0)
    train = make_dataset("synthetic", resolution=32, t=CFG.t_total, split="train", length=8)
    model.accumulate_standing_stats(standing_batches(train, model, n_batches=2, batch_size=4))
    n = 5
    ds = make_dataset("synthetic", resolution=32, t=CFG.t_total, split="test", length=n)
    one = evaluate(model, ds, num_samples=n, best_of=1, batch_size=4, progress=False, workers=0)
    three = evaluate(model, ds, num_samples=n, best_of=3, batch_size=4, progress=False, workers=0)
    ssim = np.zeros(CFG.t_pred)
    psnr = np.zeros(CFG.t_pred)
    for i in range(n):
        clip = ds.clip(i)
        pred = model.predict(clip[None, : CFG.t_cond], np.zeros((1, CFG.z_dim), np.float32))[0]
        ssim += metrics.ssim(pred, clip[CFG.t_cond:]) / n
        psnr += metrics.psnr(pred, clip[CFG.t_cond:]) / n
    # batch of 1 by hand vs batches of 4 in evaluate: float32 rounding of the frames (~1e-6) moves SSIM/PSNR
    # by about as much relative to their size
    np.testing.assert_allclose(one["model"]["ssim"], ssim, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(one["model"]["psnr"], psnr, rtol=1e-4)
    np.testing.assert_allclose(three["model"]["ssim"], one["model"]["ssim"], rtol=1e-12)
    assert three["chosen_histogram"] == [n, 0, 0]
    assert one["copy_baseline"] == three["copy_baseline"]


def test_best_of_more_samples_is_never_worse_on_one_batch(run_dir):
    """Within one batch the l = 3 draw starts with the l = 1 draw, so its best clip mean SSIM is >= (per clip,
    hence on average)."""
    run = open_run(run_dir)
    model = Model(run, numpy_backend())
    ds = make_dataset("synthetic", resolution=32, t=CFG.t_total, split="test", length=4)
    one = evaluate(model, ds, num_samples=4, best_of=1, batch_size=4, progress=False, workers=0)
    three = evaluate(model, ds, num_samples=4, best_of=3, batch_size=4, progress=False, workers=0)
    assert three["model"]["ssim_mean"] >= one["model"]["ssim_mean"] - 1e-12
    assert sum(three["chosen_histogram"]) == 4 and len(three["chosen_histogram"]) == 3


def test_eval_writes_json_and_plots(run_dir, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "ev"
    rc = main(["eval", "--checkpoint", str(run_dir), "--backend", "torch", "--num-samples", "6", "--batch-size", "4",
               "--no-progress", "--workers", "0", "--out", str(out)])
    assert rc == 0
    rec = json.loads((out / "eval.json").read_text())
    for key in ("config", "step", "data", "split", "num_samples", "best_of", "model", "copy_baseline", "fvd",
                "fvd_reason", "inception_score", "standing_statistics", "weights"):
        assert key in rec, key
    assert rec["step"] == 3 and rec["split"] == "test" and rec["backend"] == "torch" and rec["weights"] == "ema"
    # 5-frame clips: I3D's reference pooling needs 9
    assert rec["fvd"] is None and "at least 9" in rec["fvd_reason"] and rec["inception_score"] is None
    assert rec["standing_statistics"].startswith("2 batches")
    for part in ("model", "copy_baseline"):
        for key in ("ssim", "psnr"):
            curve = rec[part][key]
            assert len(curve) == CFG.t_pred and all(math.isfinite(v) for v in curve)
        assert rec[part]["ssim_mean"] == pytest.approx(np.mean(rec[part]["ssim"]))
    import imageio.v3 as iio

    for name in ("ssim.png", "psnr.png"):
        img = iio.imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_plot_fallback_draws_curves_and_labels(tmp_path):
    """Without matplotlib the NumPy raster plot is used: each curve's colour appears, as does black text."""
    import imageio.v3 as iio

    from trivd_core.media import _raster_curves

    img = _raster_curves(np.arange(1, 4), {"MODEL": ([0.1, 0.2, 0.3], (31, 119, 180)),
                                           "COPY": ([0.9, None, 0.5], (255, 127, 14))}, "T", "FRAME", "SSIM")
    for colour in ((31, 119, 180), (255, 127, 14), (0, 0, 0)):
        assert np.any(np.all(img == colour, axis=-1)), colour
    rec = {"best_of": 1, "model": {"ssim": [0.1, 0.2], "psnr": [10.0, None]},
           "copy_baseline": {"ssim": [0.5, 0.4], "psnr": [20.0, 18.0]}}
    paths = write_report(tmp_path, rec, title="t")
    assert json.loads(paths["json"].read_text()) == rec
    assert iio.imread(paths["psnr"]).shape[-1] in (3, 4)


def test_the_eval_plots_label_whole_frames_and_decibels(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    pytest.importorskip("matplotlib")
    from trivd_core.media import LABELS_KEY

    rec = {"best_of": 3, "model": {"ssim": [0.9, 0.8, 0.7], "psnr": [30.0, 25.0, 22.0]},
           "copy_baseline": {"ssim": [0.8, 0.7, 0.6], "psnr": [25.0, 21.0, 19.0]}}
    paths = write_report(tmp_path, rec, title="t")
    psnr = json.loads(Image.open(paths["psnr"]).text[LABELS_KEY])  # read back from the drawn axes
    assert psnr["ylabel"] == "PSNR (dB)" and psnr["xlabel"] == "predicted frame"
    assert psnr["xticks"] == ["1", "2", "3"]  # one tick per predicted frame, no 1.25, 1.5, ...
    assert psnr["legend"] == ["model (best of 3)", "copy last frame"]
    assert json.loads(Image.open(paths["ssim"]).text[LABELS_KEY])["ylabel"] == "SSIM"


def test_eval_errors(run_dir, tmp_path, capsys):
    def err(*argv):
        assert main(["eval", "--backend", "numpy", "--no-progress", *argv]) == 2
        return capsys.readouterr().err

    assert "no such run directory" in err("--checkpoint", str(tmp_path / "nope"))
    (tmp_path / "nockpt" / "checkpoints").mkdir(parents=True)
    assert "no intact checkpoint" in err("--checkpoint", str(tmp_path / "nockpt"))
    assert "--best-of must be >= 1" in err("--checkpoint", str(run_dir), "--best-of", "0")
    assert "--num-samples must be >= 1" in err("--checkpoint", str(run_dir), "--num-samples", "0")
    small = tmp_path / "small.npy"
    np.save(small, np.zeros((4, 8, 16, 16, 3), np.uint8))
    assert "smaller than the model's resolution 32x32" in err("--checkpoint", str(run_dir), "--data", str(small),
                                                              "--split", "train")
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((4, 3, 32, 32, 3), np.uint8))
    assert "t=5" in err("--checkpoint", str(run_dir), "--data", str(short), "--split", "train")
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((4, 8, 32, 32, 3), np.uint8))
    assert "no 'test' split" in err("--checkpoint", str(run_dir), "--data", str(good))
    assert "KEY=VALUE" in err("--checkpoint", str(run_dir), "--data-option", "oops")
    assert "--i3d-sha256 and --trust-i3d need --i3d" in err("--checkpoint", str(run_dir), "--i3d-sha256", "ab")
    assert "does not exist" in err("--checkpoint", str(run_dir), "--fvd-pool", "global",
                                   "--i3d", str(tmp_path / "missing.npz"))
    assert "contradict" in err("--checkpoint", str(run_dir), "--no-fvd", "--i3d", str(tmp_path / "w.npz"))


def test_eval_refuses_an_untrusted_torchscript_i3d(run_dir, tmp_path, capfd, monkeypatch):
    """A TorchScript file runs its own code on load (__setstate__) and on use (forward): no checksum, no load."""
    torch = pytest.importorskip("torch")

    class Hostile(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.k = 1

        @torch.jit.export
        def __getstate__(self) -> int:
            return self.k

        @torch.jit.export
        def __setstate__(self, state: int) -> None:
            print("HOSTILE-SETSTATE-RAN")
            self.k = state
            self.training = False

        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                    return_features: bool = False) -> torch.Tensor:
            print("HOSTILE-FORWARD-RAN")
            return torch.zeros(x.shape[0], 4)

    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(Hostile()).save(str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    base = ["eval", "--checkpoint", str(run_dir), "--backend", "numpy", "--no-progress", "--num-samples", "4",
            "--no-standing", "--workers", "0", "--fvd-pool", "global", "--out", str(tmp_path / "out")]
    capfd.readouterr()
    for how in (["--i3d", str(path)], []):  # the flag, and the environment variable
        if not how:
            monkeypatch.setenv("TRIVD_I3D_WEIGHTS", str(path))
        assert main([*base, *how]) == 2
        out = capfd.readouterr()
        lines = [ln for ln in out.err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "runs code stored in the file" in lines[0] and digest in lines[0], out.err
        assert "--trust-i3d" in lines[0] and "--i3d-sha256" in lines[0]
        assert "HOSTILE" not in out.out + out.err  # nothing of the file ran
    monkeypatch.delenv("TRIVD_I3D_WEIGHTS")
    # the file really is hostile: with the user's word (a matching checksum, or --trust-i3d) its code runs
    from backends.torch.i3d_script import load_i3d_torchscript

    load_i3d_torchscript(path, sha256=digest)
    assert "HOSTILE-SETSTATE-RAN" in capfd.readouterr().out
    load_i3d_torchscript(path, trust=True)
    assert "HOSTILE-SETSTATE-RAN" in capfd.readouterr().out


def test_eval_refuses_an_out_file_and_checkpoints_that_do_not_fit(run_dir, tmp_path, capsys):
    def err(*argv):
        assert main(["eval", "--backend", "numpy", "--no-progress", "--no-standing", *argv]) == 2
        text = capsys.readouterr().err.strip()
        assert "\n" not in text and "Traceback" not in text, text
        return text

    f = tmp_path / "plain.txt"
    f.write_text("x")
    assert "is a file; --out names the folder" in err("--checkpoint", str(run_dir), "--out", str(f))
    tree = dict(init_tree(CFG)[0])
    g = dict(tree["ema"]["G"])
    g.pop("out_conv")
    missing = make_run(tmp_path / "missing", tree={**tree, "ema": {**tree["ema"], "G": g}})
    assert "does not fit its config 'tiny': ema/G lacks ['out_conv']" in err("--checkpoint", str(missing))
    g = dict(tree["ema"]["G"], out_conv={k: v[..., :1] for k, v in tree["ema"]["G"]["out_conv"].items()})
    narrow = make_run(tmp_path / "narrow", tree={**tree, "ema": {**tree["ema"], "G": g}})
    assert "ema/G/out_conv/" in err("--checkpoint", str(narrow))
    g = dict(tree["ema"]["G"], out_conv={k: v.astype(np.complex64) for k, v in tree["ema"]["G"]["out_conv"].items()})
    cplx = make_run(tmp_path / "complex", tree={**tree, "ema": {**tree["ema"], "G": g}})
    assert "complex64" in err("--checkpoint", str(cplx))


def test_eval_refuses_a_diverged_checkpoint(tmp_path, capsys):
    tree = dict(init_tree(CFG)[0])
    ema = {"E": tree["ema"]["E"], "G": dict(tree["ema"]["G"])}
    ema["G"]["out_conv"] = {**ema["G"]["out_conv"], "b": np.full_like(ema["G"]["out_conv"]["b"], np.nan)}
    run = make_run(tmp_path / "nan", tree={**tree, "ema": ema})
    assert main(["eval", "--checkpoint", str(run), "--backend", "numpy", "--num-samples", "2", "--no-progress",
                 "--no-standing", "--workers", "0"]) == 2
    assert "non-finite" in capsys.readouterr().err


def test_check_data_fits_names_both_shapes():
    ds = make_dataset("synthetic", resolution=16, t=CFG.t_total, split="test")
    with pytest.raises(EvalError, match=r"\(5, 16, 16, 3\).*\(5, 32, 32, 3\)"):
        check_data_fits(ds, CFG)


@pytest.mark.slow
def test_eval_on_jax_matches_torch(run_dir, tmp_path):
    """End to end on the JAX engine (compiles, hence slow) with the numbers of the torch engine."""
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    outs = {}
    for name in ("jax", "torch"):
        rc = main(["eval", "--checkpoint", str(run_dir), "--backend", name, "--num-samples", "4", "--batch-size", "4",
                   "--no-progress", "--workers", "0", "--out", str(tmp_path / name)])
        assert rc == 0
        outs[name] = json.loads((tmp_path / name / "eval.json").read_text())
    # same checkpoint, clips, latents; float32 XLA vs oneDNN rounding in the frames (see test_engine_and_core_paths_agree)
    np.testing.assert_allclose(outs["jax"]["model"]["ssim"], outs["torch"]["model"]["ssim"], atol=1e-3)
    assert outs["jax"]["copy_baseline"] == outs["torch"]["copy_baseline"]


# ---------------------------------------------------------------------------- held-out splits


def _indexed_videos(n, t=6, hw=32):
    """n videos whose pixels all equal their index (uint8): a clip reveals which video it came from."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None, None], (n, t, hw, hw, 3)).copy()


def _which(clip) -> int:
    return int(round((float(clip.mean()) + 1.0) * 127.5))


def _members(ds) -> list[int]:
    rng = np.random.default_rng(0)
    return [_which(ds.clip(i, rng)) for i in range(len(ds))]


def test_array_holdout_split_sizes_and_membership(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, _indexed_videos(10))
    # the last ceil(0.25 * 10) = 3 videos are held out
    assert _members(make_dataset(path, resolution=32, t=4, split="test", holdout=0.25)) == [7, 8, 9]
    assert _members(make_dataset(path, resolution=32, t=4, split="train", holdout=0.25)) == list(range(7))
    assert list(holdout_split(43264, 0.3, "test")[[0, -1]]) == [43264 - 12980, 43263]
    with pytest.raises(DataError, match="only the 'train' and 'test'"):
        make_dataset(path, resolution=32, t=4, split="val", holdout=0.25)
    with pytest.raises(DataError, match="no 'test' split"):
        make_dataset(path, resolution=32, t=4, split="test")
    whole = make_dataset(path, resolution=32, t=4, split="train")
    assert len(whole) == 10 and whole.fingerprint() == ArrayDataset(path, resolution=32, t=4).fingerprint()


def test_array_split_files_side_files_and_npz_members(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, _indexed_videos(8))
    (tmp_path / "mine.txt").write_text("# validation videos\n5\n1 extra fields ignored\n\n")
    assert _members(make_dataset(path, resolution=32, t=4, split="val", split_file=tmp_path / "mine.txt")) == [5, 1]
    (tmp_path / "v.test.txt").write_text("6\n7\n")
    assert _members(make_dataset(path, resolution=32, t=4, split="test")) == [6, 7]
    np.save(tmp_path / "idx.npy", np.array([3, 2]))
    assert _members(make_dataset(path, resolution=32, t=4, split="test", split_file=tmp_path / "idx.npy")) == [3, 2]
    (tmp_path / "bad.txt").write_text("8\n")
    with pytest.raises(DataError, match="index 8"):
        make_dataset(path, resolution=32, t=4, split="test", split_file=tmp_path / "bad.txt")
    npz = tmp_path / "s.npz"
    np.savez(npz, train=_indexed_videos(3), test=_indexed_videos(5)[3:])
    assert _members(make_dataset(npz, resolution=32, t=4, split="test")) == [3, 4]
    assert _members(make_dataset(npz, resolution=32, t=4, split="train")) == [0, 1, 2]


def test_video_folder_holdout_follows_the_path_hash(tmp_path):
    pytest.importorskip("av")
    clip = SyntheticShapes(32, 6, 3, seed=1).clip(0)
    names = [f"c{i % 3}/v{i}.mp4" for i in range(12)]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_video(tmp_path / name, clip)
    held = sorted(n for n in names if int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "big") / 2**64 < 0.4)
    test = VideoFolderDataset(tmp_path, resolution=32, t=4, split="test", holdout=0.4)
    train = make_dataset(tmp_path, resolution=32, t=4, split="train", holdout=0.4)
    assert test.files == held and sorted(train.files + test.files) == sorted(names)
    with pytest.raises(DataError, match="fraction"):
        make_dataset(tmp_path, resolution=32, t=4, split="test", holdout=1.5)


def test_bair_balanced_split_on_index_lists():
    train, test = [("train", i) for i in range(43264)], [("test", i) for i in range(256)]
    split = balanced_split(train, test)
    assert len(split["train"]) == 30284 and len(split["test"]) == 12980 + 256
    assert split["train"] == train[:30284] and split["test"] == train[30284:] + test
    assert bair_split(train, test, "test") == split["test"]
    assert bair_split(train, test, "balanced_train") == split["train"]
    assert bair_split(train, test, "original_test") == test
    assert bair_split(train, test, "train", protocol="original") == train
    assert parse_bair_split(None) == ("balanced", "train")
    with pytest.raises(DataError, match="contradicts"):
        parse_bair_split("original_test", "balanced")
    with pytest.raises(DataError, match="BAIR split must be one of"):
        parse_bair_split("val")


@pytest.fixture(scope="module")
def bair_root(tmp_path_factory):
    """train/traj_0..11 (frame folders: pixel value = 10 * id) and test/traj_0, traj_1 (ids 200, 201)."""
    import imageio.v3 as iio

    root = tmp_path_factory.mktemp("bair")
    for part, ids in (("train", range(12)), ("test", range(2))):
        for i in ids:
            d = root / part / f"traj_{i}"
            d.mkdir(parents=True)
            value = 10 * i if part == "train" else 200 + i
            for f in range(6):
                iio.imwrite(d / f"{f}.png", np.full((32, 32, 3), value, np.uint8))
    return root


def test_bair_folder_layout_and_natural_order(bair_root):
    # floor(0.7 * 12) = 8: train = traj_0..7 in natural order (traj_10 after traj_9), test = traj_8..11 + original test
    train = make_dataset(f"bair:{bair_root}", resolution=32, t=5, split="train")
    test = make_dataset(f"bair:{bair_root}", resolution=32, t=5, split="test")
    assert isinstance(test, BairDataset)
    assert _members(train) == [10 * i for i in range(8)]
    assert _members(test) == [80, 90, 100, 110, 200, 201]
    assert _members(make_dataset(f"bair:{bair_root}", resolution=32, t=5, split="original_test")) == [200, 201]
    assert len(make_dataset(f"bair:{bair_root}", resolution=32, t=5, split="train", protocol="original")) == 12
    with pytest.raises(DataError, match="train/ and test/"):
        make_dataset(f"bair:{bair_root / 'train'}", resolution=32, t=5)


def test_eval_cli_on_the_bair_balanced_split(run_dir, bair_root, tmp_path):
    out = tmp_path / "bair"
    rc = main(["eval", "--checkpoint", str(run_dir), "--backend", "numpy", "--data", f"bair:{bair_root}",
               "--split", "test", "--num-samples", "100", "--batch-size", "4", "--no-progress", "--workers", "0",
               "--out", str(out)])
    assert rc == 0
    rec = json.loads((out / "eval.json").read_text())
    assert rec["num_samples"] == 6 and rec["data"] == f"bair:{bair_root}"
    assert "bair" in rec["standing_statistics"] and "train split" in rec["standing_statistics"]
    # constant frames: the copy of the last frame is exact, PSNR is +inf (written as null and counted)
    assert rec["copy_baseline"]["ssim"] == [1.0] * CFG.t_pred
    assert rec["copy_baseline"]["psnr"] == [None] * CFG.t_pred and rec["copy_baseline"]["psnr_infinite"] == 6 * 3


def test_splits_through_the_cli_data_option(run_dir, tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, (_indexed_videos(10, t=8) * 20).astype(np.uint8))
    out = tmp_path / "o"
    assert main(["eval", "--checkpoint", str(run_dir), "--backend", "numpy", "--data", str(path), "--data-option",
                 "holdout=0.3", "--num-samples", "50", "--no-progress", "--workers", "0", "--out", str(out),
                 "--no-standing"]) == 0
    rec = json.loads((out / "eval.json").read_text())
    assert rec["num_samples"] == 3 and rec["data_options"] == {"holdout": 0.3}
    assert rec["standing_statistics"].startswith("off")


def test_generate_return_warps_does_not_change_frames():
    rng = np.random.default_rng(0)
    params, state = generator.init_generator(CFG, rng)
    cond = rng.uniform(-1, 1, (2, CFG.t_cond, 32, 32, 3)).astype(np.float32)
    z = rng.standard_normal((2, CFG.z_dim)).astype(np.float32)
    a, sa = generator.generate(params, state, cond, z, train=False)
    b, sb, warps = generator.generate(params, state, cond, z, train=False, return_warps=True)
    np.testing.assert_array_equal(a, b)
    assert sorted(warps) == ["stage0", "stage1", "stage2"]
    for i, r in enumerate((4, 8, 16)):
        assert warps[f"stage{i}"]["W"].shape == (2, CFG.t_pred, r, r, 9)
        assert warps[f"stage{i}"]["w"].shape == (2, CFG.t_pred, 9, 9)
        np.testing.assert_allclose(warps[f"stage{i}"]["W"].sum(-1), 1.0, atol=1e-5)  # convex weights (softmax)
    with pytest.raises(TypeError, match="return_warps"):
        generator.generate(params, state, cond, z, train=False, return_warps=1)


def test_eval_reports_the_readme_figures_by_the_validation_protocol(tmp_path, capsys):
    """eval.json's ``validation``: MSE per predicted frame of the model (EMA, z = 0, batch statistics) and of
    copy-last-frame, their ratio, the best static blur, with N - each recomputed here from the clips by hand."""
    from trivd_core import generator

    run = make_run(tmp_path / "run", data="synthetic:demo")
    out = tmp_path / "ev"
    assert main(["eval", "--checkpoint", str(run), "--backend", "numpy", "--num-samples", "12", "--no-fvd",
                 "--no-progress", "--workers", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads((out / "eval.json").read_text())["validation"]
    ds = make_dataset("synthetic:demo", resolution=CFG.resolution, t=CFG.t_total, channels=CFG.channels,
                      split="test", seed=0)
    clips = np.stack([ds.clip(i) for i in range(12)]).astype(np.float64)
    cond, truth = clips[:, :CFG.t_cond], clips[:, CFG.t_cond:]
    copy = np.mean((cond[:, -1:] - truth) ** 2, axis=(0, 2, 3, 4))
    tree = open_run(run).tree
    state = {k: v for k, v in tree["g_state"].items() if k != "standing"}
    pred, _ = generator.generate(tree["ema"], state, cond.astype(np.float32), np.zeros((12, CFG.z_dim), np.float32),
                                 train=False, standing=False)
    mse = np.mean((np.asarray(pred, np.float64) - truth) ** 2, axis=(0, 2, 3, 4))
    assert rec["clips"] == 12
    np.testing.assert_allclose(rec["copy_mse"], copy, rtol=1e-6)
    np.testing.assert_allclose(rec["mse"], mse, rtol=1e-4)  # float32 forward, float64 sums
    assert rec["mse_ratio"] == pytest.approx(mse.mean() / copy.mean(), rel=1e-4)
    assert rec["blur_mse_last"] <= np.mean((cond[:, -1] - truth[:, -1]) ** 2) + 1e-12  # sigma 0 is a candidate
    assert f"(x{rec['mse_ratio']:.2f})" in printed and "12 clips, validation protocol" in printed
