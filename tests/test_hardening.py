"""Stops and faults of a training run, without a framework: the run lock, signals, NaN, data errors, a full
disk, leftovers of killed runs, damaged checkpoints, confined paths, file modes.

The loop runs the deterministic NumPy ``CountingEngine`` of tests/test_train.py; faults come from real
signals (``os.kill``), real processes (a second process holding the lock, one killed with SIGKILL, a
training process stopped with SIGTERM) and, for the full disk, an ``ENOSPC`` raised by ``os.fsync`` from
the moment the disk "fills" (the first write that would need space).  Wall time: ~15 s.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _test_helpers import LOOP_CFG as CFG
from _test_helpers import CountingEngine
from _test_helpers import assert_tree_equal as _assert_tree_equal
from _test_helpers import loop_loader as _loader

from trivd.cli import main
from trivd_core.data import DataError, Loader
from trivd_core.train import TrainOptions, load_checkpoint, save_checkpoint, train
from trivd_core.train.checkpoint import CheckpointError, latest_checkpoint
from trivd_core.train.lock import RunLock, RunLocked

ROOT = Path(__file__).resolve().parent.parent


def _opts(run_dir, steps, **kw):
    base = dict(run_dir=run_dir, steps=steps, seed=3, log_every=1, sample_every=100, ckpt_every=2, keep=5,
                n_samples=2, progress=False)
    return TrainOptions(**{**base, **kw})


def _run(run_dir, steps, engine=None, resume=False, loader=None, logs=None, **kw):
    with (loader or _loader(seed=3)) as ld:
        return train(engine or CountingEngine(), CFG, ld, _opts(run_dir, steps, **kw), resume=resume,
                     log=(logs.append if logs is not None else (lambda m: None)))


def _status(run_dir):
    return json.loads((Path(run_dir) / "status.json").read_text())


def _hold_lock_in_child(run_dir, *, then="sleep"):
    """A child process that takes the run lock and then sleeps (or is killed by the caller)."""
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from trivd_core.train.lock import RunLock
        RunLock({str(run_dir)!r}).acquire()
        print("held", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


# -- the run lock ----------------------------------------------------------------------------


def test_a_second_run_in_a_locked_run_dir_is_refused_naming_the_holder(tmp_path, capsys):
    run_dir = tmp_path / "run"
    child = _hold_lock_in_child(run_dir)
    try:
        with pytest.raises(RunLocked, match=f"pid {child.pid}"):
            _run(run_dir, 2)
        assert not (run_dir / "checkpoints").exists()  # nothing of the second run was written
        # the CLI: exit 2, one line, before any backend or data is touched
        assert main(["train", "--run-dir", str(run_dir), "--backend", "torch", "--steps", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"pid {child.pid}" in err[0] and "in use by another run" in err[0]
    finally:
        child.kill()
        child.wait()


def test_a_lock_left_by_a_killed_run_is_stale_and_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    child = _hold_lock_in_child(run_dir)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert (run_dir / ".lock").exists() and json.loads((run_dir / ".lock").read_text())["pid"] == child.pid
    logs = []
    res = _run(run_dir, 2, logs=logs)
    assert res.status == "done"
    assert any("stale lock" in m and str(child.pid) in m for m in logs), logs
    assert not (run_dir / ".lock").exists()  # released on a clean exit


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across_processes(tmp_path):
    with RunLock(tmp_path) as outer:
        with RunLock(tmp_path):
            pass
        assert (tmp_path / ".lock").exists() and outer.stale is None
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from trivd_core.train.lock import RunLock; " \
               f"RunLock({str(tmp_path)!r}).acquire()"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode != 0 and "RunLocked" in out.stderr and str(os.getpid()) in out.stderr
    assert not (tmp_path / ".lock").exists()


# -- signals, NaN, data errors, a full disk ---------------------------------------------------------


class _AtStep(CountingEngine):
    """The counting engine, with :meth:`happen` called as step ``at`` starts."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def step(self, ts, inputs):
        if int(ts["step"]) + 1 == self.at:
            self.happen()
        return super().step(ts, inputs)


class _Signalling(_AtStep):
    def __init__(self, sig, at):
        super().__init__(at)
        self.sig = sig

    def happen(self):
        os.kill(os.getpid(), self.sig)


def test_sigterm_finishes_the_step_saves_and_exits_143(tmp_path):
    res = _run(tmp_path / "run", 10, engine=_Signalling(signal.SIGTERM, 3))
    assert res.status == "terminated" and res.exit_code == 143 and res.step == 3
    assert load_checkpoint(tmp_path / "run" / "checkpoints")[1]["step"] == 3  # off the cadence of 2
    st = _status(tmp_path / "run")
    assert st["status"] == "terminated" and st["exit_code"] == 143 and st["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed afterwards
    # and the resumed run equals an uninterrupted one
    _run(tmp_path / "run", 6, resume=True)
    _run(tmp_path / "ref", 6)
    _assert_tree_equal(load_checkpoint(tmp_path / "run" / "checkpoints")[0],
                       load_checkpoint(tmp_path / "ref" / "checkpoints")[0])


def test_sigterm_to_a_training_process(tmp_path):
    """A real process, a real `kill`: exit status 143, a checkpoint of the last step, status.json."""
    run_dir = tmp_path / "run"
    code = textwrap.dedent(f"""
        import sys, time
        import importlib.util
        sys.path.insert(0, {str(ROOT)!r})
        spec = importlib.util.spec_from_file_location("_test_helpers", {str(ROOT / "tests" / "_test_helpers.py")!r})
        h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)
        CFG, CountingEngine, _loader = h.LOOP_CFG, h.CountingEngine, h.loop_loader
        from trivd_core.train import TrainOptions, train

        class Slow(CountingEngine):
            def step(self, ts, inputs):
                if int(ts["step"]) == 3:
                    print("step3", flush=True)
                time.sleep(0.2)
                return super().step(ts, inputs)

        opts = TrainOptions(run_dir={str(run_dir)!r}, steps=1000, seed=3, log_every=1, sample_every=1000,
                            ckpt_every=2, keep=3, n_samples=2, progress=False)
        with _loader(seed=3) as loader:
            sys.exit(train(Slow(), CFG, loader, opts).exit_code)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "step3"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    st = _status(run_dir)
    assert st["status"] == "terminated" and st["step"] >= 4
    assert load_checkpoint(run_dir / "checkpoints")[1]["step"] == st["step"]
    assert "SIGTERM received" in err


def test_nan_saves_the_last_completed_step(tmp_path):
    res = _run(tmp_path / "run", 10, engine=CountingEngine(fail_at=4))  # checkpoints at 2; step 3 completed
    assert res.status == "nonfinite" and res.exit_code == 3 and res.step == 3
    tree, meta = load_checkpoint(tmp_path / "run" / "checkpoints")
    assert meta["step"] == 3 and np.isfinite(tree["g_params"]["w"]).all()
    assert _status(tmp_path / "run")["status"] == "nonfinite" and "step_00000003.json" in res.message


class _Failing:
    """A dataset whose ``fail_at``-th clip read raises DataError (a file system that went away mid-run)."""

    def __init__(self, ds, fail_at):
        self.ds, self.fail_at, self.calls = ds, fail_at, 0

    def __len__(self):
        return len(self.ds)

    def __getattr__(self, name):
        return getattr(self.ds, name)

    def clip(self, i, rng=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise DataError(f"clip {i}: the file vanished")
        return self.ds.clip(i, rng)


def test_a_data_error_mid_run_saves_and_reports(tmp_path):
    per_step = CFG.d_steps * 4
    ds = _Failing(_loader(seed=3).dataset, fail_at=2 + 4 * per_step + 1)  # 2 fixed sample clips, then step 5
    res = _run(tmp_path / "run", 10, loader=Loader(ds, 4, seed=3, workers=0))
    assert res.status == "data_error" and res.exit_code == 4 and res.step == 4, res.message
    assert "the file vanished" in res.message and _status(tmp_path / "run")["status"] == "data_error"
    assert load_checkpoint(tmp_path / "run" / "checkpoints")[1]["step"] == 4


class _DiskFull(_AtStep):
    """The disk fills up during step ``at``: from then on every fsync fails with ENOSPC."""

    def __init__(self, at, monkeypatch):
        super().__init__(at)
        self.mp = monkeypatch

    def happen(self):
        def full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        self.mp.setattr(os, "fsync", full)


def test_disk_full_keeps_earlier_checkpoints_and_leaves_no_temp_files(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    res = _run(run_dir, 10, engine=_DiskFull(4, monkeypatch))  # the checkpoint of step 4 cannot be written
    monkeypatch.undo()
    assert res.status == "disk_full" and res.exit_code == 5 and res.step == 4
    assert "disk full" in res.message and "step_00000002.json" in res.message and "--resume" in res.message
    assert load_checkpoint(run_dir / "checkpoints")[1]["step"] == 2
    leftovers = [p.name for p in run_dir.rglob("*") if p.name.endswith(".tmp") or p.name == "step_00000004.npz"]
    assert leftovers == []


# -- leftovers, damaged checkpoints, confined paths, modes -------------------------------------------


def test_leftovers_of_a_killed_run_are_removed_and_a_damaged_newest_checkpoint_is_reported(tmp_path):
    run_dir = tmp_path / "run"
    _run(run_dir, 4)  # checkpoints 2 and 4
    ck = run_dir / "checkpoints"
    (ck / ".step_00000006.npz.abc.tmp").write_bytes(b"half")
    (ck / "step_00000006.npz").write_bytes(b"orphan")  # arrays whose .json never landed
    (run_dir / ".metrics.jsonl.x.tmp").write_bytes(b"")
    npz = ck / "step_00000004.npz"
    npz.write_bytes(npz.read_bytes()[:-10])  # torn
    logs = []
    res = _run(run_dir, 6, resume=True, logs=logs)
    assert res.status == "done"
    assert any("step_00000004.json is damaged" in m and "older step_00000002.json" in m for m in logs), logs
    assert sum("removed" in m for m in logs) == 3, logs
    assert not list(run_dir.rglob("*.tmp"))
    # one set of arrays per step; step 4, saved again over its damaged arrays, under a name of its own
    names = sorted(p.name for p in ck.glob("*.npz"))
    assert names[0] == "step_00000002.npz" and names[2] == "step_00000006.npz", names
    assert re.fullmatch(r"step_00000004\.[0-9a-f]{12}\.npz", names[1]), names
    _run(tmp_path / "ref", 6)
    _assert_tree_equal(load_checkpoint(ck)[0], load_checkpoint(tmp_path / "ref" / "checkpoints")[0])


def test_a_checkpoint_json_cannot_point_outside_its_folder(tmp_path):
    elsewhere = tmp_path / "other"
    save_checkpoint(elsewhere, {"w": np.ones(2, np.float32)}, step=1, keep=None)
    ck = tmp_path / "run" / "checkpoints"
    path = save_checkpoint(ck, {"w": np.zeros(2, np.float32)}, step=1, keep=None)
    rec = json.loads(path.read_text())
    rec["npz"] = "../../other/step_00000001.npz"
    rec["sha256"] = json.loads((elsewhere / "step_00000001.json").read_text())["sha256"]
    path.write_text(json.dumps(rec))
    with pytest.raises(CheckpointError, match="not the name of a checkpoint file in the same folder"):
        load_checkpoint(path)
    assert latest_checkpoint(ck) is None


def test_a_checkpoint_with_complex_weights_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, {"w": np.ones(2, np.complex64)}, step=1)
    with pytest.raises(CheckpointError, match="w .complex64."):
        load_checkpoint(path)


def test_run_artifacts_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _run(tmp_path / "run", 2)
    finally:
        os.umask(old)
    for name in ("config.json", "status.json", "metrics.jsonl", "checkpoints/step_00000002.json",
                 "checkpoints/step_00000002.npz"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name


def test_ctrl_c_while_starting_is_one_line(tmp_path, capsys, monkeypatch):
    import trivd.train as train_cmd

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cmd, "run", interrupted)
    assert main(["train", "--run-dir", str(tmp_path / "r")]) == 130
    assert capsys.readouterr().err.strip() == "trivd: interrupted"


def test_lock_timing_two_processes(tmp_path):
    """Two processes racing for one run dir: exactly one wins."""
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from trivd_core.train.lock import RunLock, RunLocked
        t = float(sys.argv[1])
        while time.time() < t:
            pass
        try:
            RunLock({str(tmp_path / "race")!r}).acquire()
            print("won", flush=True)
            time.sleep(1.0)
        except RunLocked:
            print("lost", flush=True)
    """)
    t = str(time.time() + 1.0)
    ps = [subprocess.Popen([sys.executable, "-c", code, t], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = sorted(p.communicate(timeout=30)[0].strip() for p in ps)
    assert outs == ["lost", "lost", "won"], outs


# -- bad data -------------------------------------------------------------------------------------------


def _video_folder(root, n_good=6, bad=("000.mp4", "001.mp4")):
    pytest.importorskip("av")
    from trivd_core.data import write_video
    from trivd_core.data.synthetic import SyntheticShapes

    root.mkdir()
    shapes = SyntheticShapes(32, 6, seed=1)
    if "000.mp4" in bad:
        (root / "000.mp4").write_text("this is a text file, not a video")
    if "001.mp4" in bad:
        (root / "001.mp4").write_bytes(b"")
    for i in range(n_good):
        write_video(root / f"{i + 2:03d}.mkv", shapes.clip(i))
    return root


def test_a_folder_whose_first_files_are_not_videos_trains_and_counts_the_skips(tmp_path):
    from trivd_core.data import make_dataset
    from trivd_core.train.validation import ValidationSet

    root = _video_folder(tmp_path / "videos")
    ds = make_dataset(root, resolution=CFG.resolution, t=CFG.t_total, split="train")
    assert ds.files[:2] == ["000.mp4", "001.mp4"]
    vset = ValidationSet.from_dataset(ds, CFG, n_clips=3)  # the held-out set passes over them too
    assert vset.cond.shape[0] == 3
    with pytest.warns(Warning):
        res = _run(tmp_path / "run", 4, loader=Loader(ds, 4, seed=3, workers=0))
    assert res.status == "done"
    st = _status(tmp_path / "run")
    assert st["data_skipped"] > 0 and st["data_skipped_sources"] == 2
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["data_skipped"] == st["data_skipped"]


def test_data_warnings_print_once_as_one_line_and_count_files_not_clip_indices(tmp_path):
    """``trivd train`` on a folder with one text file among three videos, four clips per video.

    The old loader warned twice per source (``warnings.warn``, shown with the raising code line, and
    the logger's last-resort handler) and counted clip indices: 4 "distinct sources" for one file.
    """
    pytest.importorskip("torch")
    root = _video_folder(tmp_path / "videos", n_good=3, bad=("000.mp4",))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "trivd", "train", "--backend", "torch", "--data", str(root),
                          "--data-option", "clips_per_video=4", "--skip-conformance", "--no-progress",
                          "--eval-every", "0", "--steps", "2", "--workers", "0", "--sample-every", "2",
                          "--run-dir", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    mentions = [line for line in res.stderr.splitlines() if "000.mp4" in line]
    assert len(mentions) == 1, mentions
    assert mentions[0].startswith("trivd train: warning: skipped unreadable source 000.mp4"), mentions
    assert "warnings.warn" not in res.stderr and ".py:" not in res.stderr, res.stderr[-3000:]
    summary = [line for line in res.stdout.splitlines() if "unreadable clip(s) were skipped" in line]
    assert len(summary) == 1 and "(1 distinct source(s)" in summary[0], res.stdout
    assert _status(tmp_path / "run")["data_skipped_sources"] == 1


class _NamedClips:
    """Clip ``i`` of video ``i // per`` is filled with that video's number; video ``bad`` cannot be read."""

    def __init__(self, videos, per, bad=None):
        self.videos, self.per, self.bad = videos, per, bad

    def __len__(self):
        return self.videos * self.per

    def describe(self, i):
        return f"v{i // self.per}.mp4"

    def clip(self, i, rng):
        from trivd_core.data import SkipClip

        if i // self.per == self.bad:
            raise SkipClip("not a video", permanent=True)
        return np.full((2, 1, 1, 1), i // self.per, np.float32)


@pytest.mark.parametrize("videos, per, bad, n, expected", [
    (4, 3, None, 4, [0, 1, 2, 3]),        # four videos, three clips each: four different videos
    (4, 3, 1, 4, [0, 2, 3, 0]),           # one unreadable: the three others, then a second clip of the first
    (2, 3, None, 5, [0, 1, 0, 0, 1]),     # fewer videos than clips: index order after one of each
    (6, 1, None, 3, [0, 1, 2]),           # one clip per video: the first n, as before
])
def test_fixed_clips_show_different_videos_first(videos, per, bad, n, expected):
    from trivd_core.data import readable_clips

    clips, skipped = readable_clips(_NamedClips(videos, per, bad), n, np.random.default_rng(0))
    assert [int(c.flat[0]) for c in clips] == expected
    assert [i for i, _ in skipped] == ([per * bad] if bad is not None else [])  # a bad video is tried once


def test_an_all_corrupt_folder_is_a_data_error(tmp_path):
    from trivd_core.data import make_dataset

    root = _video_folder(tmp_path / "videos", n_good=0)
    ds = make_dataset(root, resolution=CFG.resolution, t=CFG.t_total, split="train")
    with pytest.raises(DataError, match="none of the 2 sources could be read"):
        with Loader(ds, 1, seed=0, workers=0) as loader:
            train(CountingEngine(), CFG, loader, _opts(tmp_path / "run", 2), log=lambda m: None)


# -- threads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cpus, load, want", [(2, 0.2, 2), (2, 1.3, 1), (2, 5.0, 1), (16, 3.6, 12), (4, 0.0, 4)])
def test_default_threads_are_the_cpus_not_already_busy(cpus, load, want):
    from trivd_core.threads import default_threads

    assert default_threads(cpus, load) == want


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def test_apply_threads_sets_the_environment_and_torch(monkeypatch):
    from trivd_core.threads import apply_threads

    for var in THREAD_VARS:
        # setenv first: monkeypatch records the variable's prior state (set or unset) and restores it; a bare
        # delenv(raising=False) of an unset variable records nothing, so what apply_threads sets would stay
        monkeypatch.setenv(var, "0")
        monkeypatch.delenv(var)
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        apply_threads(1)
        assert os.environ["OMP_NUM_THREADS"] == os.environ["OPENBLAS_NUM_THREADS"] == "1"
        if torch is not None:
            assert torch.get_num_threads() == 1
    finally:
        if torch is not None:
            torch.set_num_threads(before)
    with pytest.raises(ValueError, match="positive int"):
        apply_threads(0)


def test_the_threads_test_leaves_the_environment_as_it_found_it():
    """Run the test above with the variables unset and undo its monkeypatch: nothing of apply_threads remains."""
    outer = pytest.MonkeyPatch()
    try:
        for var in THREAD_VARS:
            outer.setenv(var, "0")
            outer.delenv(var)
        inner = pytest.MonkeyPatch()
        try:
            test_apply_threads_sets_the_environment_and_torch(inner)
        finally:
            inner.undo()
        assert [os.environ.get(var) for var in THREAD_VARS] == [None, None, None]
    finally:
        outer.undo()


def test_train_prints_and_records_its_threads_and_a_resume_keeps_them(tmp_path, capsys):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    base = ["train", "--backend", "torch", "--config", "tiny", "--skip-conformance", "--eval-every", "0",
            "--no-progress", "--workers", "0"]
    assert main([*base, "--run-dir", str(run), "--steps", "1", "--threads", "1"]) == 0
    assert "1 CPU thread for torch/BLAS (--threads" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["args"]["threads"] == 1
    assert main(["train", "--resume", str(run), "--steps", "2", "--no-progress", "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert "1 CPU thread for torch/BLAS (the count the run recorded" in err
    rec = json.loads((run / "config.json").read_text())
    assert rec["args"]["threads"] == 1
    assert rec["conformance_skipped"] is True  # the gate ran on resume, but steps 0-1 were trained without it
