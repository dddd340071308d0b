"""The backend-agnostic training machinery: checkpoints, artifacts, the input sampler, the loop, the gate.

The loop is exercised with a small NumPy engine (``CountingEngine``, below): its state
is a deterministic function of every input the loop hands it, so resume exactness,
the NaN stop and Ctrl-C are checks of the *loop*; the real engines are tested in
tests/test_train_jax.py (and the torch engine's tests).  Wall time: ~10 s.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _test_helpers import LOOP_CFG, CountingEngine, assert_tree_equal, loop_loader

from trivd_core import media
from trivd_core.train import (
    CheckpointError,
    InputSampler,
    TrainOptions,
    artifacts,
    flatten_tree,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    loop_rng,
    save_checkpoint,
    train,
    unflatten_tree,
)

CFG = LOOP_CFG


def _tree():
    rng = np.random.default_rng(0)
    return {"step": np.int64(7), "g_params": {"a": {"w": rng.standard_normal((3, 2)).astype(np.float32)}, "empty": {}},
            "g_state": {"steps": np.zeros((3, 0), np.float32)}, "opt": {"count": np.int64(5)}}


_assert_tree_equal = assert_tree_equal


# -- checkpoints -------------------------------------------------------------------------


def test_flatten_roundtrip_keeps_empty_dicts_dtypes_and_zero_size():
    tree = _tree()
    flat, layout = flatten_tree(tree)
    assert set(flat) == {"step", "g_params/a/w", "g_state/steps", "opt/count"}
    _assert_tree_equal(unflatten_tree(flat, layout), tree)
    with pytest.raises(ValueError, match="'/'"):
        flatten_tree({"a/b": np.zeros(1)})


def test_save_load_keep_and_commit_marker(tmp_path):
    tree = _tree()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, tree, step=step, meta={"loader": {"pos": step}}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003.json", "step_00000004.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_00000003.json", "step_00000003.npz", "step_00000004.json", "step_00000004.npz"]  # no temp files left
    loaded, meta = load_checkpoint(tmp_path)
    _assert_tree_equal(loaded, tree)
    assert meta["step"] == 4 and meta["loader"] == {"pos": 4}
    # a torn/edited npz is detected and the previous checkpoint is used
    npz = tmp_path / "step_00000004.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    assert latest_checkpoint(tmp_path).name == "step_00000003.json"
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path / "step_00000004.json")
    # an npz without its json (crash between the two writes) is not a checkpoint
    (tmp_path / "step_00000003.json").unlink()
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        load_checkpoint(tmp_path)


_KILL_BETWEEN_THE_WRITES = """
import os, sys
import numpy as np
import trivd_core.train.checkpoint as ck
real = ck.atomic_write_bytes
def write(path, data):
    if str(path).endswith(".json"):
        os._exit(9)  # killed after the new arrays are on disk, before the commit marker is switched
    real(path, data)
ck.atomic_write_bytes = write
ck.save_checkpoint(sys.argv[1], {"w": np.full(4, 2.0, np.float32)}, step=5)
"""


def test_saving_a_committed_step_again_cannot_lose_it(tmp_path):
    import subprocess
    import sys

    save_checkpoint(tmp_path, {"w": np.full(4, 1.0, np.float32)}, step=5)
    out = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_THE_WRITES, str(tmp_path)], timeout=120)
    assert out.returncode == 9
    # the first version of step 5 is still committed and intact
    assert latest_checkpoint(tmp_path).name == "step_00000005.json"
    tree, meta = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(tree["w"], np.full(4, 1.0, np.float32))
    from trivd_core.train.checkpoint import remove_leftovers

    removed = remove_leftovers(tmp_path)  # the new arrays that never got their marker
    assert [p.name for p in removed] and all(p.name.startswith("step_00000005.") for p in removed)
    # saved again without a crash: the new version replaces the old one, and one .npz remains
    save_checkpoint(tmp_path, {"w": np.full(4, 3.0, np.float32)}, step=5)
    tree, _ = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(tree["w"], np.full(4, 3.0, np.float32))
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npz"]
    assert remove_leftovers(tmp_path) == []


def test_checkpoint_npz_is_plain_numpy(tmp_path):
    path = save_checkpoint(tmp_path, _tree(), step=1)
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
        assert z["g_params/a/w"].dtype == np.float32 and z["step"].dtype == np.int64


# -- artifacts -----------------------------------------------------------------------------


def test_gif_decodes_to_the_quantised_frames(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 37, 53, 3)).astype(np.uint8)  # 1961 pixels/frame: several LZW clear cycles
    path = artifacts.write_gif(tmp_path / "a.gif", frames, pillow=False)  # the NumPy encoder
    im = Image.open(path)
    assert im.n_frames == 3
    from trivd_core import media

    pal = media._palette()  # noqa: SLF001 - the NumPy encoder's own palette
    for t in range(3):
        im.seek(t)
        got = np.asarray(im.convert("RGB"))
        np.testing.assert_array_equal(got, pal[media._quantize(frames[t])])
        # quantisation error is at most half a colour step (255/5/2 = 25.5 for 6 levels, 21.25 for 7)
        assert np.abs(got.astype(int) - frames[t]).max() <= 25


def test_samples_are_labelled_figures_whose_labels_say_what_each_row_and_column_is(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    pytest.importorskip("matplotlib")
    _run(tmp_path, "s", 2)  # 2 fixed clips
    gif, png = tmp_path / "s" / "samples" / "step_000002.gif", tmp_path / "s" / "samples" / "step_000002.png"
    im = Image.open(gif)
    assert im.n_frames == CFG.t_total
    # the PNG's text metadata holds the labels read back from the drawn figure
    labels = json.loads(Image.open(png).text[media.LABELS_KEY])
    assert labels["rows"] == [f"clip {b}\n{name}" for b in (1, 2) for name in ("ground truth", "G", "EMA of G")]
    assert labels["columns"] == [f"frame {t + 1}\n{'conditioning' if t < CFG.t_cond else 'predicted'}"
                                 for t in range(CFG.t_total)]
    assert labels["title"].startswith("step 2:") and "green" in labels["footer"] and "red" in labels["footer"]
    # the animated figure: a column per source, a row per clip, a title per frame
    cond = np.zeros((2, 2, 8, 8, 3), np.float32)
    truth = np.ones((2, 3, 8, 8, 3), np.float32)
    animated, still = artifacts.sample_figures(cond, truth, [truth * 0, -truth], step=7, scale=4)
    with animated, still:
        assert [ax.get_title() for ax in animated.axes[0]] == ["ground truth", "G", "EMA of G"]
        assert [line[0].get_ylabel() for line in animated.axes] == ["clip 1", "clip 2"]
        frames = animated.frames()
        assert frames.shape[0] == 5 and frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
        assert animated.labels()["title"] == "step 7: 2 fixed clips\nframe 5 of 5: predicted"
        animated.frame(1)
        assert animated.labels()["title"].endswith("frame 2 of 5: conditioning")
        # a predicted frame shows the truth white and the EMA column (-1) black, with red borders
        assert np.allclose(animated.axes[0][2].spines["left"].get_edgecolor()[:3], np.array([40, 170, 40]) / 255)
        animated.frame(3)
        assert np.allclose(animated.axes[0][2].spines["left"].get_edgecolor()[:3], np.array([200, 40, 40]) / 255)
        assert (animated.axes[1][2].get_images()[0].get_array() == 0).all()


def test_samples_without_matplotlib_are_the_bare_grid_and_its_contact_sheet(tmp_path, monkeypatch):
    Image = pytest.importorskip("PIL.Image")
    monkeypatch.setattr(artifacts, "have_matplotlib", lambda: False)
    _run(tmp_path, "s", 2)
    gif, png = tmp_path / "s" / "samples" / "step_000002.gif", tmp_path / "s" / "samples" / "step_000002.png"
    scale = artifacts.sample_scale(CFG.resolution)
    assert scale == 4  # 32 px panels become 128 px
    im = Image.open(gif)
    assert im.n_frames == CFG.t_total
    # 2 samples x (truth | G | EMA), 34 px cells (a 1 px border) and 2 px gaps, enlarged 4x
    assert im.size == (4 * (3 * 34 + 2 * 2), 4 * (2 * 34 + 2))
    sheet = Image.open(png)
    assert sheet.size == (CFG.t_total * im.size[0] + (CFG.t_total - 1) * 4, im.size[1])
    frame0 = np.asarray(sheet.convert("RGB"))[:, : im.size[0]]
    assert (frame0[::4, ::4] == frame0[1::4, 1::4]).all()  # nearest-neighbour: 4x4 blocks


def test_png_and_loss_plot(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    img = np.random.default_rng(2).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(artifacts.write_png(tmp_path / "a.png", img))), img)
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"step": s, "d_loss": 2 - s / 10, "g_loss": s / 10}) + "\n"
                                              for s in range(1, 11)) + '{"step": 11, "d_lo')  # torn last line
    assert len(artifacts.read_metrics(tmp_path / "m.jsonl")) == 10
    out = artifacts.plot_losses(tmp_path / "m.jsonl", tmp_path / "loss.png")
    assert Image.open(out).size[0] > 100


def test_sample_grid_layout():
    cond = np.full((2, 1, 4, 4, 3), -1.0, np.float32)
    truth = np.full((2, 2, 4, 4, 3), 1.0, np.float32)
    pred = np.zeros((2, 2, 4, 4, 3), np.float32)
    g = artifacts.sample_grid(cond, truth, [pred])
    assert g.shape == (3, 2 * 6 + 2, 2 * 6 + 2, 3)
    assert (g[0, 1:5, 1:5] == 0).all() and (g[1, 1:5, 1:5] == 255).all() and (g[1, 1:5, 9:13] == 128).all()
    assert tuple(g[0, 0, 0]) == (40, 170, 40) and tuple(g[1, 0, 0]) == (200, 40, 40)  # cond green, predicted red


# -- inputs --------------------------------------------------------------------------------


_loader = loop_loader


def test_input_sampler_shapes_and_resume():
    s = InputSampler(CFG, _loader(), loop_rng(0))
    x = s.draw()
    B, c = 4, CFG
    assert x["real"].shape == (c.d_steps, B, c.t_total, c.resolution, c.resolution, 3) and x["real"].dtype == np.float32
    assert x["z_d"].shape == (c.d_steps, B, c.z_dim) and x["z_g"].shape == (B, c.z_dim)
    assert x["rand_d"]["idx"].shape == (c.d_steps, B, c.K) and x["rand_d"]["offsets"].shape == (c.d_steps, B, 2)
    assert x["rand_g"]["idx"].dtype == np.int64 and set(x["rand_g"]) == {"idx", "offsets"}
    state = json.loads(json.dumps(s.state()))
    a = [s.draw() for _ in range(3)]
    s2 = InputSampler(CFG, _loader(), loop_rng(99))
    s2.load_state(state)
    b = [s2.draw() for _ in range(3)]
    for u, v in zip(a, b):
        _assert_tree_equal(u, v)
    assert not np.array_equal(a[0]["z_g"], a[1]["z_g"])


# -- the loop, with a NumPy engine -------------------------------------------------------------


def _run(tmp_path, name, steps, engine=None, resume=False, **kw):
    opts = TrainOptions(run_dir=tmp_path / name, steps=steps, seed=3, log_every=1, sample_every=2, ckpt_every=2,
                        keep=2, n_samples=2, progress=False, **kw)
    with _loader(seed=3) as loader:
        return train(engine or CountingEngine(), CFG, loader, opts, resume=resume, log=lambda m: None)


def test_loop_resume_is_exact_and_writes_the_run_dir(tmp_path):
    full = _run(tmp_path, "full", 6)
    assert full.status == "done" and full.exit_code == 0 and full.step == 6
    first = _run(tmp_path, "split", 3)  # stops at 3: a final checkpoint at 3 (off the cadence)
    assert first.step == 3
    second = _run(tmp_path, "split", 6, resume=True)
    assert second.step == 6
    a, _ = load_checkpoint(tmp_path / "full" / "checkpoints")
    b, meta = load_checkpoint(tmp_path / "split" / "checkpoints")
    _assert_tree_equal(a, b)
    assert meta["step"] == 6
    run = tmp_path / "split"
    assert [r["step"] for r in artifacts.read_metrics(run / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert (run / "loss.png").exists() and (run / "samples" / "step_000006.gif").exists()
    assert json.loads((run / "config.json").read_text())["config"]["t_pred"] == 2
    assert json.loads((run / "status.json").read_text())["status"] == "done"


def test_loop_stops_on_nan_and_keeps_the_last_good_checkpoint(tmp_path):
    res = _run(tmp_path, "nan", 10, engine=CountingEngine(fail_at=5))
    assert res.status == "nonfinite" and res.exit_code == 3 and res.step == 4
    assert "non-finite loss at step 5: d_loss = nan" in res.message and "step_00000004.json" in res.message
    tree, meta = load_checkpoint(tmp_path / "nan" / "checkpoints")
    assert meta["step"] == 4 and int(tree["step"]) == 4 and np.isfinite(tree["g_params"]["w"]).all()
    assert max(r["step"] for r in artifacts.read_metrics(tmp_path / "nan" / "metrics.jsonl")) == 4


def test_loop_ctrl_c_writes_a_checkpoint_and_resumes_exactly(tmp_path):
    res = _run(tmp_path, "int", 10, engine=CountingEngine(interrupt_at=3))
    assert res.status == "interrupted" and res.exit_code == 130 and res.step == 3  # step 3 completes, then stops
    assert load_checkpoint(tmp_path / "int" / "checkpoints")[1]["step"] == 3
    _run(tmp_path, "int", 8, resume=True)
    _run(tmp_path, "ref", 8)
    _assert_tree_equal(load_checkpoint(tmp_path / "int" / "checkpoints")[0],
                       load_checkpoint(tmp_path / "ref" / "checkpoints")[0])


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no intact checkpoint"):
        _run(tmp_path, "none", 2, resume=True)


def test_cli_train_refuses_the_numpy_backend(tmp_path, capsys):
    from trivd import cli

    assert cli.main(["train", "--backend", "numpy", "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "the numpy backend does not train" in capsys.readouterr().err


def test_resume_accepts_a_checkpoint_from_before_the_newer_config_fields(tmp_path):
    """A run written before `recon_weight` / `latent_std` existed resumes: missing fields mean their defaults."""
    first = _run(tmp_path, "old", 2)
    assert first.step == 2
    for meta_path in (tmp_path / "old" / "checkpoints").glob("*.json"):
        meta = json.loads(meta_path.read_text())
        for key in ("recon_weight", "latent_std"):
            meta["config"].pop(key)
        meta_path.write_text(json.dumps(meta))
    assert _run(tmp_path, "old", 4, resume=True).step == 4
    for meta_path in (tmp_path / "old" / "checkpoints").glob("*.json"):  # a real difference is still refused
        meta = json.loads(meta_path.read_text())
        meta["config"]["recon_weight"] = 5.0
        meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="another config"):
        _run(tmp_path, "old", 6, resume=True)


class _SlowFirstStep(CountingEngine):
    """An engine whose first step takes 1.5 s (a compile) and whose other steps take 0.04 s."""

    compiles = True

    def step(self, ts, inputs):
        import time

        time.sleep(1.5 if int(ts["step"]) == 0 else 0.04)
        return super().step(ts, inputs)


def test_progress_says_it_compiles_and_leaves_the_first_step_out_of_the_rate(tmp_path, capsys):
    import re

    logs = []
    opts = TrainOptions(run_dir=tmp_path / "p", steps=16, seed=3, log_every=10, sample_every=100, ckpt_every=100,
                        keep=2, n_samples=2, progress=True)
    with _loader(seed=3) as loader:
        res = train(_SlowFirstStep(), CFG, loader, opts, log=logs.append)
    assert res.status == "done"
    assert any("step 1: compiling the D and G updates" in m for m in logs), logs
    err = capsys.readouterr().err
    # every rate the bar shows is the steady one (~25 step/s, at least 5 on a busy machine); one that counted the
    # 1.5 s first step would show about 1 step/s after step 2 (tqdm writes "s/step" below 1 step/s)
    rates = [float(r) for r in re.findall(r"([0-9.]+)step/s", err)]
    assert rates and min(rates) > 5 and "s/step" not in err, err[-800:]
    assert max(rates) < 40, err[-800:]  # and no faster than the 0.04 s steps allow (25 step/s): a real rate
    assert "16/16" in err
