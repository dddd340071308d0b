"""Data pipeline: synthetic shapes, memory-mapped arrays, video folders, the loader.

Expected values are derived independently of the code under test: shape positions
from pixel colours, pan from a brute-force shift search, area resizing from
pixel replication followed by block means, video frames from a plain PyAV decode,
and determinism by comparing separately built datasets and loaders.
"""

from __future__ import annotations

import json
import math
import tracemalloc
import warnings

import numpy as np
import pytest

from trivd_core.data import (
    ArrayDataset,
    DataError,
    DataWarning,
    Loader,
    SkipClip,
    SyntheticShapes,
    VideoFolderDataset,
    make_dataset,
    open_array,
    read_clip,
    write_video,
)

# ---------------------------------------------------------------------------- helpers


def exact_area_resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area resize by pixel replication to a common grid, then block means (exact, float64)."""
    out = np.asarray(x, np.float64)
    for axis, n_out in ((-3, size[0]), (-2, size[1])):
        n_in = out.shape[axis]
        g = math.gcd(n_in, n_out)
        rep = np.repeat(out, n_out // g, axis=axis)  # n_in * n_out / g fine cells
        shape = list(rep.shape)
        shape[axis : axis + 1] = [n_out, n_in // g]  # axis is -3 or -2
        out = rep.reshape(shape).mean(axis=axis)
    return out


def find_window(big: np.ndarray, small: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """Smallest mean abs difference of ``small`` (t, h, w, C) against every (t0, y0, x0) window of ``big``."""
    best = (np.inf, ())
    T, H, W = big.shape[:3]
    t, h, w = small.shape[:3]
    for t0 in range(T - t + 1):
        for y0 in range(H - h + 1):
            for x0 in range(W - w + 1):
                err = float(np.mean(np.abs(big[t0 : t0 + t, y0 : y0 + h, x0 : x0 + w] - small)))
                if err < best[0]:
                    best = (err, (t0, y0, x0))
    return best


def u8_to_unit(x):
    return np.asarray(x, np.float64) / 127.5 - 1.0


# ---------------------------------------------------------------------------- synthetic


def test_synthetic_same_seed_same_clips_and_pure_in_index():
    a = SyntheticShapes(32, 8, 3, seed=7, pan=True)
    b = SyntheticShapes(32, 8, 3, seed=7, pan=True)
    late = b.clip(5)  # built fresh, clip 5 first: no hidden state between clips
    for i in (0, 1, 5):
        np.testing.assert_array_equal(a.clip(i), b.clip(i))
    np.testing.assert_array_equal(a.clip(5), late)


def test_synthetic_seeds_splits_and_indices_differ():
    base = SyntheticShapes(32, 8, 3, seed=0).clip(0)
    assert not np.array_equal(base, SyntheticShapes(32, 8, 3, seed=1).clip(0))
    assert not np.array_equal(base, SyntheticShapes(32, 8, 3, seed=0, split="val").clip(0))
    assert not np.array_equal(base, SyntheticShapes(32, 8, 3, seed=0).clip(1))


@pytest.mark.parametrize(
    "resolution,t,channels,pan", [(64, 16, 3, False), ((24, 40), 5, 1, True), (16, 3, 4, True), (33, 2, 2, False)]
)
def test_synthetic_shape_dtype_range(resolution, t, channels, pan):
    ds = SyntheticShapes(resolution, t, channels, pan=pan)
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    for i in range(3):
        x = ds.clip(i)
        assert x.shape == (t, h, w, channels) == ds.shape
        assert x.dtype == np.float32
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert x.max() - x.min() > 0.5  # shapes against the background, not a flat frame


def test_synthetic_frames_change():
    for pan in (False, True):
        x = SyntheticShapes(32, 6, 3, pan=pan).clip(3)
        diffs = np.abs(np.diff(x, axis=0)).max(axis=(1, 2, 3))
        assert np.all(diffs > 0.1), diffs


def _interior_centroids(clip: np.ndarray, color: np.ndarray) -> np.ndarray:
    """(T, 2) centroid (y, x) of the pixels that show exactly the shape's colour (fully covered)."""
    out = []
    for frame in clip:
        ys, xs = np.nonzero(np.all(np.abs(frame - color) < 1e-6, axis=-1))
        assert ys.size > 0
        out.append((ys.mean(), xs.mean()))
    return np.array(out)


@pytest.mark.parametrize("pan", [False, True])
def test_synthetic_centroid_follows_stated_velocity(pan):
    ds = SyntheticShapes(64, 16, 3, seed=3, pan=pan, num_shapes=1)
    slopes_checked = 0
    for i in range(12):
        clip, tr = ds.render(i)
        c = _interior_centroids(clip, tr.colors[0])
        pos, vel = tr.positions[:, 0], tr.velocities[:, 0]
        # interior pixels of a square span an integer range: its midpoint is within 0.5 px of the centre
        assert np.abs(c - pos).max() <= 0.5 + 1e-9
        assert np.abs(vel).max() > 0
        for axis in (0, 1):
            # segments between bounces (stated velocity constant): fit the measured centroid's slope
            flips = np.flatnonzero(np.diff(np.sign(vel[:, axis]))) + 1
            for seg in np.split(np.arange(16), flips):
                if len(seg) >= 8:
                    slope = np.polyfit(seg, c[seg, axis], 1)[0]
                    assert abs(slope - vel[seg[0], axis]) < 0.1, (i, axis, slope, vel[seg[0], axis])
                    slopes_checked += 1
    assert slopes_checked >= 10


def _best_shift(a: np.ndarray, b: np.ndarray, r: int) -> tuple[int, int]:
    """The integer (dy, dx) with b[y + dy, x + dx] closest to a[y, x] on the overlap, |dy|, |dx| <= r."""
    H, W = a.shape[:2]
    errs = {}
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            bb = b[max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)]
            aa = a[max(-dy, 0) : H + min(-dy, 0), max(-dx, 0) : W + min(-dx, 0)]
            errs[(dy, dx)] = float(np.mean(np.abs(bb - aa)))
    return min(errs, key=errs.get)


def test_synthetic_velocities_distinct_and_pan_moves_background():
    ds = SyntheticShapes(64, 9, 3, seed=1, pan=True, num_shapes=0)
    for i in range(3):
        clip, tr = ds.render(i)
        v = tr.pan_velocity
        assert np.hypot(*v) > 0.5
        # brute-force integer shift of the whole frame between frames 0 and 8: must be round(8 v)
        best = _best_shift(clip[0], clip[8], 20)
        assert np.abs(np.array(best) - 8 * v).max() <= 1.0, (best, 8 * v)
    shapes = SyntheticShapes(64, 4, 3, seed=2, num_shapes=3)
    for i in range(5):
        _, tr = shapes.render(i)
        v = tr.velocities[0]
        gaps = [np.hypot(*(v[a] - v[b])) for a in range(3) for b in range(a + 1, 3)]
        assert min(gaps) >= 0.5 * 0.015 * 64 - 1e-9
        assert tr.masks.shape == (4, 3, 64, 64)


def test_write_video_round_trip_counts_frames(tmp_path):
    av = pytest.importorskip("av")
    pytest.importorskip("imageio")
    clip = SyntheticShapes((32, 48), 7, 3).clip(0)
    for name in ("c.mp4", "c.webm", "c.avi", "c.gif", "odd.mkv"):
        x = clip[:, :31] if name.startswith("odd") else clip
        write_video(tmp_path / name, x)
        with av.open(str(tmp_path / name)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(frames) == 7 and frames[0].shape == x.shape[1:]
        assert np.abs(u8_to_unit(frames[3]) - x[3]).mean() < 0.1


# ---------------------------------------------------------------------------- arrays


def _peak_alloc(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_npy_tnhw_is_memory_mapped_and_exact(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(10, 400, 64, 64), dtype=np.uint8)  # 16 MB, Moving-MNIST layout
    np.save(tmp_path / "mm.npy", data)
    _, full = _peak_alloc(lambda: np.load(tmp_path / "mm.npy"))  # control: a full load is seen by tracemalloc
    assert full >= data.nbytes

    def build_and_read():
        ds = ArrayDataset(tmp_path / "mm.npy", t=10, layout="TNHW", channels=1)
        return ds, [ds.clip(n, np.random.default_rng(n)) for n in (0, 57, 399)]

    (ds, clips), peak = _peak_alloc(build_and_read)
    assert isinstance(ds.array, np.memmap)
    assert peak < data.nbytes / 8, peak  # never loaded whole: only the three clips and temporaries
    for n, x in zip((0, 57, 399), clips):
        np.testing.assert_allclose(x[..., 0], u8_to_unit(data[:, n]), atol=1e-6)


def test_npy_nthwc_random_window_and_grey_options(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, size=(6, 12, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "v.npy", data)
    ds = make_dataset(tmp_path / "v.npy", resolution=16, t=4)
    assert isinstance(ds.array, np.memmap) and ds.layout == "NTHWC" and len(ds) == 6
    starts = set()
    for seed in range(8):
        x = ds.clip(2, np.random.default_rng(seed))
        err, (t0, _, _) = find_window(u8_to_unit(data[2]), x)
        assert err < 1e-6
        starts.add(t0)
    assert len(starts) > 2
    grey = rng.integers(0, 256, size=(3, 5, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "g.npy", grey)
    rep = ArrayDataset(tmp_path / "g.npy", resolution=8, t=5, layout="NTHW", channels=3)
    keep = ArrayDataset(tmp_path / "g.npy", resolution=8, t=5, layout="NTHW", channels=3, grey="keep")
    native = ArrayDataset(tmp_path / "g.npy", resolution=8, t=5, layout="NTHW", channels=None)
    r = rep.clip(1, np.random.default_rng(0))
    assert r.shape == (5, 8, 8, 3) and np.array_equal(r[..., 0], r[..., 2])
    assert keep.clip(1, np.random.default_rng(0)).shape == (5, 8, 8, 1) == native.shape
    np.testing.assert_allclose(r[..., 1], u8_to_unit(grey[1]), atol=1e-6)


def test_array_resize_and_random_crop_match_exact_area_resize(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, size=(2, 3, 40, 48, 1), dtype=np.uint8)
    np.save(tmp_path / "r.npy", data)
    ds = ArrayDataset(tmp_path / "r.npy", resolution=32, t=3, channels=1)
    resized = exact_area_resize(u8_to_unit(data[1]), (32, 38))  # smaller side 40 -> 32, 48 * 0.8 = 38.4 -> 38
    offsets = set()
    for seed in range(10):
        x = ds.clip(1, np.random.default_rng(seed))
        assert x.shape == (3, 32, 32, 1)
        err, (_, y0, x0) = find_window(resized, x)
        assert err < 1e-5, err
        offsets.add(x0)
        assert y0 == 0
    assert len(offsets) > 2


def test_float_arrays_value_range(tmp_path):
    data = np.random.default_rng(3).uniform(0, 1, size=(2, 4, 8, 8, 3)).astype(np.float32)
    np.save(tmp_path / "f.npy", data)
    ds = ArrayDataset(tmp_path / "f.npy", resolution=8, t=4, value_range=(0, 1))
    np.testing.assert_allclose(ds.clip(0, np.random.default_rng(0)), data[0] * 2 - 1, atol=1e-6)
    wrong = ArrayDataset(tmp_path / "f.npy", resolution=8, t=4, value_range=(0.5, 1))
    with pytest.raises(DataError, match="value_range"):
        wrong.clip(0, np.random.default_rng(0))


def test_layout_auto_rules(tmp_path):
    np.save(tmp_path / "amb.npy", np.zeros((5, 6, 8, 8), np.uint8))
    with pytest.raises(DataError, match="ambiguous.*layout='TNHW'"):
        ArrayDataset(tmp_path / "amb.npy", resolution=8, t=2)
    with pytest.raises(DataError, match="NTHWC needs a 5-D array"):
        ArrayDataset(tmp_path / "amb.npy", resolution=8, t=2, layout="NTHWC")
    # the published Moving-MNIST shape is recognised (a sparse file: nothing is written but the header)
    mm = np.lib.format.open_memmap(tmp_path / "mnist.npy", mode="w+", dtype=np.uint8, shape=(20, 10000, 64, 64))
    del mm
    ds = ArrayDataset(tmp_path / "mnist.npy", t=16)
    assert ds.layout == "TNHW" and len(ds) == 10000 and ds.shape == (16, 64, 64, 3)
    np.save(tmp_path / "three.npy", np.zeros((5, 8, 8), np.uint8))
    with pytest.raises(DataError, match="4-D .* or 5-D"):
        ArrayDataset(tmp_path / "three.npy", resolution=8, t=2)
    with pytest.raises(DataError, match="t=9"):
        ArrayDataset(tmp_path / "amb.npy", resolution=8, t=9, layout="NTHW")


def test_npz_stored_is_mapped_compressed_refused_or_cached(tmp_path):
    data = np.random.default_rng(4).integers(0, 256, size=(3, 4, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", videos=data, other=np.arange(3))
    arr = open_array(tmp_path / "s.npz", key="videos")
    assert isinstance(arr, np.memmap)
    np.testing.assert_array_equal(arr, data)
    with pytest.raises(DataError, match="several arrays.*key="):
        ArrayDataset(tmp_path / "s.npz", resolution=8, t=4)
    np.savez_compressed(tmp_path / "c.npz", data)
    with pytest.raises(DataError, match="compressed.*cache_dir"):
        make_dataset(tmp_path / "c.npz", resolution=8, t=4)
    ds = make_dataset(tmp_path / "c.npz", resolution=8, t=4, cache_dir=tmp_path / "cache")
    assert isinstance(ds.array, np.memmap)
    np.testing.assert_allclose(ds.clip(2, np.random.default_rng(0)), u8_to_unit(data[2]), atol=1e-6)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    make_dataset(tmp_path / "c.npz", resolution=8, t=4, cache_dir=tmp_path / "cache")  # reuses the cache
    assert len(list((tmp_path / "cache").iterdir())) == 1


# ---------------------------------------------------------------------------- videos


@pytest.fixture(scope="module")
def video_root(tmp_path_factory):
    """root/ with 3 good videos in two containers, a corrupt .mp4 and a too-short .avi."""
    pytest.importorskip("av")
    root = tmp_path_factory.mktemp("videos")
    ds = SyntheticShapes((48, 64), 12, 3, seed=5, pan=True)
    (root / "class_a").mkdir()
    (root / "class_b" / "deep").mkdir(parents=True)
    write_video(root / "class_a" / "v0.mp4", ds.clip(0), gop=4)
    write_video(root / "class_a" / "v1.webm", ds.clip(1))
    write_video(root / "class_b" / "deep" / "v2.mkv", ds.clip(2))
    write_video(root / "class_b" / "short.avi", ds.clip(3)[:4])
    (root / "class_b" / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "notes.txt").write_text("not a video")
    return root


GOOD = ["class_a/v0.mp4", "class_a/v1.webm", "class_b/deep/v2.mkv"]
BAD = ["class_b/corrupt.mp4", "class_b/short.avi"]


def test_video_folder_lists_tree_and_reads_clips(video_root):
    ds = make_dataset(video_root, resolution=32, t=8, split=None)
    assert isinstance(ds, VideoFolderDataset)
    assert ds.files == sorted(GOOD + BAD)
    for name in GOOD:
        x = ds.clip(ds.files.index(name), np.random.default_rng(0))
        assert x.shape == (8, 32, 32, 3) and x.dtype == np.float32
        assert x.min() >= -1 and x.max() <= 1 and x.max() - x.min() > 0.5
    grey = VideoFolderDataset(video_root, resolution=(24, 40), t=5, channels=1)
    assert grey.clip(grey.files.index(GOOD[0]), np.random.default_rng(0)).shape == (5, 24, 40, 1)
    for name, reason in zip(BAD, ("unreadable", "too short")):
        with pytest.raises(SkipClip, match=reason):
            ds.clip(ds.files.index(name), np.random.default_rng(0))


def test_video_resize_crop_match_independent_decode(tmp_path):
    av = pytest.importorskip("av")
    clip = SyntheticShapes((48, 80), 10, 3, seed=9, pan=True, num_shapes=1).clip(0)
    path = write_video(tmp_path / "l.mp4", clip, lossless=True)
    with av.open(path) as c:
        full = np.stack([u8_to_unit(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)])
    expected = exact_area_resize(full, (24, 40))  # smaller side 48 -> 24: 2 x 2 block means
    seen = set()
    for seed in range(6):
        x = read_clip(path, 6, (24, 24), np.random.default_rng(seed))
        err, where = find_window(expected, x)
        assert err < 0.01, (err, where)
        seen.add(where)
    assert len(seen) > 2  # start frames and crop offsets vary with the rng


def test_video_seek_equals_sequential_decode(tmp_path):
    pytest.importorskip("av")
    clip = SyntheticShapes(32, 40, 3, seed=4, pan=True).clip(0)
    for name in ("g.mp4", "g.webm", "g.avi"):
        path = write_video(tmp_path / name, clip, gop=5)
        for seed in range(6):
            a = read_clip(path, 8, (32, 32), np.random.default_rng(seed), seek=True)
            b = read_clip(path, 8, (32, 32), np.random.default_rng(seed), seek=False)
            np.testing.assert_array_equal(a, b)


def test_video_splits_from_folders_and_files(tmp_path):
    pytest.importorskip("av")
    clip = SyntheticShapes(32, 6, 3).clip(0)
    for rel in ("train/a/x.mp4", "train/b/y.mp4", "val/z.mp4"):
        (tmp_path / "f" / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(tmp_path / "f" / rel, clip)
    assert make_dataset(tmp_path / "f", t=4, split="train").files == ["a/x.mp4", "b/y.mp4"]
    assert make_dataset(tmp_path / "f", t=4, split="val").files == ["z.mp4"]
    with pytest.raises(DataError, match="no 'test' split"):
        make_dataset(tmp_path / "f", t=4, split="test")
    flat = tmp_path / "flat"
    (flat / "c").mkdir(parents=True)
    for rel in ("c/1.mp4", "c/2.mp4", "c/3.mp4"):
        write_video(flat / rel, clip)
    (flat / "test.txt").write_text("# UCF-style list\nc/2.mp4\n\nc/3.mp4 7\n")
    (tmp_path / "mylist.txt").write_text("c/1.mp4 1\nc/gone.mp4 2\n")
    assert make_dataset(flat, t=4, split="test").files == ["c/2.mp4", "c/3.mp4"]
    with pytest.warns(DataWarning, match="1 file"):
        ds = make_dataset(flat, t=4, split="train", split_file=tmp_path / "mylist.txt")
    assert ds.files == ["c/1.mp4"] and ds.missing == 1
    unsplit = tmp_path / "unsplit"
    unsplit.mkdir()
    write_video(unsplit / "only.mp4", clip)
    assert make_dataset(unsplit, t=4, split="train").files == ["only.mp4"]
    with pytest.raises(DataError, match="no 'val' split"):
        make_dataset(unsplit, t=4, split="val")


def test_corrupt_and_short_videos_are_skipped_with_counted_warnings(video_root):
    ds = make_dataset(video_root, resolution=32, t=8, split=None)
    with pytest.warns(DataWarning) as record, Loader(ds, 5, seed=0, workers=2) as loader:
        batches = [loader.next_batch() for _ in range(4)]  # 20 samples over 4 epochs of 5 sources
    assert all(b.shape == (5, 8, 32, 32, 3) and b.min() >= -1 and b.max() <= 1 for b in batches)
    assert loader.skipped_sources == set(BAD)  # the files, by name
    assert loader.skipped >= 8  # each epoch visits both bad sources at least once
    messages = [str(r.message) for r in record if issubclass(r.category, DataWarning)]
    assert len(messages) == 2  # one warning per bad source, the count inside
    assert any("corrupt.mp4" in m for m in messages) and any("short.avi" in m and "too short" in m for m in messages)
    assert "2 distinct source(s)" in messages[-1]


def test_all_bad_dataset_is_a_clear_error(tmp_path):
    pytest.importorskip("av")
    for i in range(3):
        (tmp_path / f"bad{i}.mp4").write_bytes(b"\x00" * 100)
    ds = make_dataset(tmp_path, t=4, split=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with Loader(ds, 2, workers=0, max_retries=5) as loader, pytest.raises(DataError, match="looks broken"):
            loader.next_batch()


def test_missing_or_empty_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        make_dataset(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no video files"):
        make_dataset(tmp_path, split=None)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no video files"):
        make_dataset(tmp_path, split="train")
    with pytest.raises(DataError, match="neither"):
        make_dataset(tmp_path / "readme.txt")
    with pytest.raises(DataError, match="synthetic:pan"):
        make_dataset("synthetic:zoom")


# ---------------------------------------------------------------------------- loader


@pytest.fixture
def array_ds(tmp_path):
    """An array dataset whose clips depend on the rng (random start and crop)."""
    data = np.random.default_rng(6).integers(0, 256, size=(11, 9, 12, 14, 3), dtype=np.uint8)
    np.save(tmp_path / "d.npy", data)
    return ArrayDataset(tmp_path / "d.npy", resolution=8, t=4)


def _take(loader, n):
    return [loader.next_batch() for _ in range(n)]


def test_loader_batches_shape_epochs_and_seed(array_ds):
    with Loader(array_ds, 3, seed=0, workers=0) as loader:
        assert len(loader) == 3  # 11 // 3, last partial batch dropped
        epoch0 = list(loader)
        epoch1 = list(loader)
        assert len(epoch0) == len(epoch1) == 3 and loader.epoch == 1 and loader.step == 6
        assert epoch0[0].shape == (3, 4, 8, 8, 3) and epoch0[0].dtype == np.float32
        assert not np.array_equal(epoch0[0], epoch1[0])  # a new order and new crops every epoch
    with Loader(array_ds, 3, seed=0, workers=0) as again, Loader(array_ds, 3, seed=1, workers=0) as other:
        np.testing.assert_array_equal(again.next_batch(), epoch0[0])
        assert not np.array_equal(other.next_batch(), epoch0[0])
    with Loader(array_ds, 4, shuffle=False, drop_last=False, workers=0) as tail:
        sizes = [b.shape[0] for b in tail]
        assert sizes == [4, 4, 3]


def test_loader_state_dict_round_trip_continues_identically(array_ds):
    with Loader(array_ds, 3, seed=5, workers=2, worker_type="process") as loader:
        reference = _take(loader, 11)  # crosses three epoch boundaries
    for cut in (0, 2, 3, 7):
        with Loader(array_ds, 3, seed=5, workers=2, worker_type="thread") as first:
            _take(first, cut)
            state = json.loads(json.dumps(first.state_dict()))
        with Loader(array_ds, 3, seed=123, workers=1, worker_type="thread") as resumed:  # seed from the state
            resumed.load_state_dict(state)
            # the epoch rolls over lazily: after the last batch of epoch e the position is (e, 3)
            assert (resumed.epoch, resumed.position) == (divmod(cut, 3) if cut % 3 or not cut else (cut // 3 - 1, 3))
            rest = _take(resumed, 11 - cut)
        for a, b in zip(reference[cut:], rest):
            np.testing.assert_array_equal(a, b)


def test_load_state_dict_rejects_another_setup(array_ds):
    with Loader(array_ds, 3, workers=0) as loader:
        state = loader.state_dict()
    with Loader(array_ds, 2, workers=0) as other, pytest.raises(DataError, match="batch_size"):
        other.load_state_dict(state)
    synth = SyntheticShapes(8, 4, 3, length=11)
    with Loader(synth, 3, workers=0) as other, pytest.raises(DataError, match="another dataset"):
        other.load_state_dict(state)


@pytest.mark.parametrize("workers,worker_type", [(1, "thread"), (2, "thread"), (3, "thread"), (2, "process")])
def test_worker_count_does_not_change_output(array_ds, workers, worker_type):
    with Loader(array_ds, 3, seed=2, workers=0) as serial:
        expected = _take(serial, 5)
    with Loader(array_ds, 3, seed=2, workers=workers, worker_type=worker_type, prefetch=3) as parallel:
        got = _take(parallel, 5)
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)


def test_loader_over_videos_is_deterministic_across_workers(video_root):
    ds = make_dataset(video_root, resolution=16, t=6, split=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with Loader(ds, 2, seed=3, workers=0) as a, Loader(ds, 2, seed=3, workers=2, worker_type="process") as b:
            for x, y in zip(_take(a, 4), _take(b, 4)):
                np.testing.assert_array_equal(x, y)
            assert a.skipped == b.skipped


def test_synthetic_loader_and_make_dataset_options():
    ds = make_dataset("synthetic:pan", resolution=16, t=4, channels=1, seed=3, length=6)
    assert isinstance(ds, SyntheticShapes) and ds.pan and ds.shape == (4, 16, 16, 1)
    with Loader(ds, 2, seed=0, shuffle=False, workers=2, worker_type="thread") as loader:
        batch = loader.next_batch()
    np.testing.assert_array_equal(batch[1], ds.clip(1))
    with pytest.raises(DataError, match="fewer than batch_size"):
        Loader(ds, 7)


def test_make_dataset_reports_unknown_and_ill_typed_options(tmp_path):
    """Options reach the dataset class; a wrong name or value is a DataError naming it, not a TypeError."""
    ds = make_dataset("synthetic", resolution=16, t=4, speed_range=[0.05, 0.1], num_shapes=1)
    assert ds.speed_range == (0.05, 0.1) and ds.num_shapes == (1, 1)
    with pytest.raises(DataError, match=r"unknown dataset option\(s\) bogus; SyntheticShapes accepts length, "):
        make_dataset("synthetic", resolution=16, t=4, bogus=1)
    with pytest.raises(DataError, match=r"unknown dataset option\(s\) pan"):  # set by the spec, not an option
        make_dataset("synthetic:pan", resolution=16, t=4, pan=False)
    with pytest.raises(DataError, match=r"invalid dataset option value\(s\) \(speed_range='fast'\)"):
        make_dataset("synthetic", resolution=16, t=4, speed_range="fast")
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((2, 6, 8, 8, 1), np.uint8))
    with pytest.raises(DataError, match=r"unknown dataset option\(s\) colour; ArrayDataset accepts layout, "):
        make_dataset(str(path), resolution=8, t=4, channels=1, colour=True)


def test_synthetic_texture_and_bounces_options():
    """texture=0: a flat background; bounces=False: straight lines through the clip, same shapes and velocities."""
    from trivd_core.data import DEMO_OPTIONS

    flat = SyntheticShapes(32, 6, 3, seed=1, split="test", texture=0.0, num_shapes=1)
    clip, tr = flat.render(0)
    bg = tr.masks[:, 0] == 0
    base = clip[0][bg[0]][0]
    np.testing.assert_array_equal(clip[bg], np.broadcast_to(base, clip[bg].shape))  # one colour everywhere
    straight = SyntheticShapes(32, 6, 3, seed=1, split="test", bounces=False, speed_range=(0.06, 0.1))
    bouncing = SyntheticShapes(32, 6, 3, seed=1, split="test", speed_range=(0.06, 0.1))
    moved = 0
    for i in range(40):
        _, a = straight.render(i)
        _, b = bouncing.render(i)
        np.testing.assert_array_equal(a.colors, b.colors)
        np.testing.assert_array_equal(np.abs(a.velocities[0]), np.abs(b.velocities[0]))  # the same speeds
        v = a.velocities[0]
        np.testing.assert_array_equal(a.velocities, np.broadcast_to(v, a.velocities.shape))  # never flips
        t = np.arange(6, dtype=np.float64)[:, None, None]
        np.testing.assert_allclose(a.positions, a.positions[0] + v[None] * t, rtol=0, atol=1e-12)
        lo, hi = a.half_sizes[:, None] - 0.5, 32 - 0.5 - a.half_sizes[:, None]
        assert np.all(a.positions >= lo[None] - 1e-9) and np.all(a.positions <= hi[None] + 1e-9)
        moved += int(np.any(b.velocities != b.velocities[0]))
    assert moved > 0  # the bouncing version does bounce in some of these clips
    demo = make_dataset("synthetic:demo", resolution=32, t=5, split="val")
    assert demo.num_shapes == (1, 1) and demo.texture == 0.0 and demo.bounces is DEMO_OPTIONS.get("bounces", True)
    with pytest.raises(DataError, match="texture"):
        SyntheticShapes(32, 4, texture=-0.1)
    with pytest.raises(DataError, match="bounces"):
        SyntheticShapes(32, 4, bounces="no")


# ---------------------------------------------------------------------------- bad data


def test_npz_member_names_cannot_leave_the_cache_dir(tmp_path):
    """A compressed member named '/../../x.npy' is extracted inside cache_dir, under a sanitised name."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 6, 8, 8, 3), np.uint8))
    with zipfile.ZipFile(tmp_path / "evil.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("/../../escaped.npy", buf.getvalue())
    cache = tmp_path / "deep" / "cache"
    ds = make_dataset(tmp_path / "evil.npz", resolution=8, t=4, cache_dir=cache)
    assert ds.clip(0, np.random.default_rng(0)).shape == (4, 8, 8, 3)
    outside = [p for p in tmp_path.rglob("*.npy") if cache not in p.parents]
    assert outside == [] and len(list(cache.glob("*.npy"))) == 1


def test_nan_in_array_data_is_refused_with_file_index_and_count(tmp_path):
    x = np.zeros((3, 6, 8, 8, 3), np.float32)
    x[1, 2, 0, :5, 0] = np.nan  # min/max do not see NaN: the range check alone would pass this
    x[1, 3, 0, 0, 1] = np.inf
    np.save(tmp_path / "x.npy", x)
    ds = make_dataset(tmp_path / "x.npy", resolution=8, t=6)
    ds.clip(0, np.random.default_rng(0))
    with pytest.raises(DataError, match=r"x.npy\[1\]: 6 non-finite values \(NaN/Inf\) in frames 0..5"):
        ds.clip(1, np.random.default_rng(0))


@pytest.mark.parametrize("make, match", [
    (lambda p: np.save(p, np.zeros((4, 8, 32, 0, 3), np.uint8)), "empty dimensions .W=0."),
    (lambda p: p.write_bytes(b""), "cannot be memory-mapped as a .npy array"),
    (lambda p: np.save(p, np.zeros((0,), np.float32)), "expected a 4-D .grey. or 5-D video array"),
])
def test_empty_and_zero_width_arrays_are_data_errors(tmp_path, make, match):
    p = tmp_path / "a.npy"
    make(p)
    with pytest.raises(DataError, match=match):
        make_dataset(p, resolution=8, t=4)


@pytest.mark.parametrize("value_range", ["abc", (1, 0), (0, float("nan")), 3, (0, 1, 2)])
def test_value_range_must_be_two_ordered_finite_numbers(tmp_path, value_range):
    np.save(tmp_path / "a.npy", np.zeros((2, 6, 8, 8, 3), np.float32))
    with pytest.raises(DataError, match="value_range must be two finite numbers"):
        make_dataset(tmp_path / "a.npy", resolution=8, t=4, value_range=value_range)


def test_skipping_is_a_pure_function_of_source_and_start(tmp_path, monkeypatch):
    """A partly readable video fails for some starts only: a failure must not be remembered for the others."""
    pytest.importorskip("av")
    import trivd_core.data.videos as videos

    (tmp_path / "v").mkdir()
    write_video(tmp_path / "v" / "a.mkv", SyntheticShapes(32, 12, seed=0).clip(0))

    def partly(path, t, out_hw, rng, **kw):  # frames from 5 on are damaged
        start = int(rng.integers(0, 12 - t + 1))
        if start + t > 5:
            raise SkipClip(f"truncated: decoded {5} frames, container says 12")
        return np.zeros((t, *out_hw, 3), np.float32)

    monkeypatch.setattr(videos, "read_clip", partly)

    def outcomes(seeds):
        ds = make_dataset(tmp_path / "v", resolution=32, t=3)
        out = {}
        for s in seeds:
            try:
                ds.clip(0, np.random.default_rng(s))
                out[s] = "ok"
            except SkipClip:
                out[s] = "skip"
        return out

    seeds = list(range(16))
    forward, backward = outcomes(seeds), outcomes(seeds[::-1])
    assert set(forward.values()) == {"ok", "skip"}  # both kinds occur, so the check means something
    assert forward == backward  # the same starts fail whatever was read before


def test_permanent_failures_are_remembered_and_survive_pickling():
    import pickle

    e = pickle.loads(pickle.dumps(SkipClip("not a video", permanent=True)))
    assert e.permanent and str(e) == "not a video" and not SkipClip("truncated").permanent


def test_clips_per_video_makes_a_small_folder_a_usable_dataset(tmp_path):
    pytest.importorskip("av")
    root = tmp_path / "v"
    root.mkdir()
    shapes = SyntheticShapes(32, 12, seed=2)
    for i in range(2):
        write_video(root / f"{i}.mkv", shapes.clip(i))
    one = make_dataset(root, resolution=32, t=4)
    four = make_dataset(root, resolution=32, t=4, clips_per_video=4)
    assert (len(one), len(four)) == (2, 8) and four.describe(5) == "1.mkv" and four.describe(3) == "0.mkv"
    # index i is video i // 4 at the start its generator draws: the same start gives the same frames
    np.testing.assert_array_equal(four.clip(5, np.random.default_rng(7)), one.clip(1, np.random.default_rng(7)))
    with Loader(four, 8, seed=0, workers=0) as loader:  # a batch of 8 from 2 videos
        assert loader.next_batch().shape == (8, 4, 32, 32, 3)
    assert four.fingerprint()["clips_per_video"] == 4 and "clips_per_video" not in one.fingerprint()
    with pytest.raises(DataError, match="clips_per_video must be a positive int"):
        make_dataset(root, resolution=32, t=4, clips_per_video=0)
