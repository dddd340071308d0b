"""Videos stored in NumPy files (``.npy`` / ``.npz``), memory-mapped, never loaded whole.

Layouts (``layout=``; letters are axes):

* ``"TNHW"``  - the common Moving-MNIST file ``mnist_test_seq.npy``: ``(20, 10000, 64, 64)`` uint8;
* ``"NTHW"``  - grey videos, one per row;
* ``"NTHWC"`` - videos with channels (uint8 or float);
* ``"TNHWC"`` - time-major with channels.

``layout="auto"`` accepts 5-D arrays as ``NTHWC`` and, of the 4-D arrays, only the
published Moving-MNIST shape ``(20, 10000, 64, 64)`` (as ``TNHW``); any other 4-D
array is ambiguous (``TNHW`` or ``NTHW``) and must name its layout.

Values: uint8 data is mapped from ``[0, 255]``; float data from ``value_range``
(default ``(-1, 1)``, this project's convention; pass ``(0, 1)`` for data in
``[0, 1]``).  A clip with values outside ``value_range`` is an error, not clipped.
Grey data (no channel axis, or C=1) is repeated to ``channels`` or kept with C=1
(``grey="keep"``).  Frames of another size are area-resized to cover the target
and randomly cropped (like videos, appendix E.2).

Held-out splits (``split=``; ``None`` or ``"train"`` with no split information is the
whole file, as before):

1. ``split_file=``: the video indices of the split, one integer per line (``#``
   comments and blank lines ignored), or a ``.npy`` integer array;
2. an ``.npz`` with members named ``train`` / ``val`` / ``test`` (and no ``key=``):
   the member named like the split;
3. a side file ``<stem>.<split>.txt`` next to the array (``mnist_test_seq.test.txt``),
   found automatically - the same convention as ``root/<split>.txt`` for folders;
4. ``holdout=f``: the last ``ceil(f * N)`` videos are ``"test"``, the others
   ``"train"`` (contiguous, in stored order, like the BAIR balanced split of
   appendix C.1 - see :mod:`trivd_core.data.bair`); ``"val"`` needs 1-3.

``"val"``/``"test"`` without any of these is an error rather than a silent
evaluation on the training videos.

Memory mapping: ``.npy`` files use ``np.load(mmap_mode="r")``.  An ``.npz`` member
stored without compression (``np.savez``) is memory-mapped in place (its offset in
the zip is computed from the zip headers).  A compressed member (``np.savez_compressed``)
cannot be memory-mapped: it is refused with a message, unless ``cache_dir`` is
given, in which case it is extracted once, streamed in chunks (never whole in
memory), to ``cache_dir/<name>.<member>.<size>-<mtime>.npy`` and that file is mapped.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import (
    ClipDataset,
    DataError,
    _check_t,
    adapt_channels,
    as_hw,
    check_grey,
    resize_crop,
    to_unit_range,
)

__all__ = ["ArrayDataset", "open_array", "LAYOUTS", "read_index_file", "holdout_split", "SPLIT_NAMES"]

SPLIT_NAMES = ("train", "val", "test")

LAYOUTS = ("TNHW", "NTHW", "NTHWC", "TNHWC")
MOVING_MNIST_SHAPE = (20, 10000, 64, 64)


def _npy_header(f) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """Read a ``.npy`` header from ``f`` (positioned at the magic); returns dtype, shape, fortran, data start."""
    start = f.tell()
    major, _ = np.lib.format.read_magic(f)
    if major == 1:
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif major in (2, 3):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:  # pragma: no cover - future format
        raise DataError(f"unsupported .npy format version {major}")
    return dtype, shape, fortran, f.tell() - start


def _npz_member(zf: zipfile.ZipFile, key: str | None, path: Path) -> zipfile.ZipInfo:
    names = [n for n in zf.namelist() if n.endswith(".npy")]
    if not names:
        raise DataError(f"{str(path)!r} holds no arrays")
    if key is None:
        if len(names) != 1:
            keys = ", ".join(n[:-4] for n in names)
            raise DataError(f"{str(path)!r} holds several arrays ({keys}); choose one with key=...")
        return zf.getinfo(names[0])
    name = key if key.endswith(".npy") else f"{key}.npy"
    if name not in names:
        keys = ", ".join(n[:-4] for n in names)
        raise DataError(f"{str(path)!r} has no array {key!r} (it has: {keys})")
    return zf.getinfo(name)


def _mmap_stored_member(path: Path, info: zipfile.ZipInfo) -> np.memmap:
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            raise DataError(f"{str(path)!r}: corrupt zip header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        dtype, shape, fortran, header_len = _npy_header(f)
        data_start = info.header_offset + 30 + name_len + extra_len + header_len
    if dtype.hasobject:
        raise DataError(f"{str(path)!r}: object arrays cannot be memory-mapped")
    return np.memmap(path, dtype=dtype, mode="r", offset=data_start, shape=shape, order="F" if fortran else "C")


def _extract_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, cache_dir: Path) -> Path:
    st = path.stat()
    # the member's name comes from the file: keep only safe characters (a name like "/../../x.npy" must not
    # leave cache_dir) and add a digest of the full name so that distinct members stay distinct
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", info.filename[:-4]).strip("._") or "member"
    digest = hashlib.sha256(info.filename.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    target = cache_dir / f"{path.stem}.{safe}-{digest}.{st.st_size}-{int(st.st_mtime)}.npy"
    if target.resolve().parent != cache_dir.resolve():  # pragma: no cover - the name above has no separators
        raise DataError(f"{str(path)!r}: member name {info.filename!r} would be extracted outside {cache_dir}")
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npy.partial")
    try:
        with os.fdopen(fd, "wb") as out, zf.open(info) as member:
            shutil.copyfileobj(member, out, length=1 << 22)  # the member *is* a .npy file: copy it in 4 MiB chunks
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def open_array(path: str | os.PathLike, *, key: str | None = None, cache_dir: str | os.PathLike | None = None):
    """Memory-map the array in a ``.npy`` file or one member of an ``.npz`` file (see the module doc)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset path {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise DataError(f"{str(path)!r} cannot be memory-mapped as a .npy array: "
                            f"{exc or exc.__class__.__name__}") from exc
        return arr
    if suffix != ".npz":
        raise DataError(f"{str(path)!r}: expected a .npy or .npz file")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{str(path)!r} is not a valid .npz file: {exc}") from exc
    with zf:
        info = _npz_member(zf, key, path)
        if info.compress_type == zipfile.ZIP_STORED:
            return _mmap_stored_member(path, info)
        if cache_dir is None:
            raise DataError(
                f"{str(path)!r} is a compressed .npz (np.savez_compressed): its arrays cannot be memory-mapped and "
                "loading them would read the whole array into memory. Pass cache_dir=... to extract it once to a "
                ".npy cache, or convert it yourself to a .npy / an uncompressed np.savez file."
            )
        target = _extract_member(path, zf, info, Path(cache_dir))
    return np.load(target, mmap_mode="r", allow_pickle=False)


def read_index_file(path: str | os.PathLike) -> np.ndarray:
    """Integer indices from a text file (one per line, first field; ``#`` comments) or a ``.npy`` array."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {str(path)!r} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"split file {str(path)!r} is not a plain .npy array: {exc}") from exc
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise DataError(f"split file {str(path)!r} must hold a 1-D integer array, got {arr.dtype} {arr.shape}")
        return arr.astype(np.int64)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(int(line.split()[0].rstrip(",")))
        except ValueError:
            raise DataError(f"split file {str(path)!r}, line {n}: expected a video index (an integer), got {line!r}") \
                from None
    return np.asarray(out, dtype=np.int64)


def holdout_split(n: int, holdout: float, split: str) -> np.ndarray:
    """Indices of ``split`` when the last ``ceil(holdout * n)`` of ``n`` items are held out as ``"test"``."""
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0.0 < float(holdout) < 1.0:
        raise DataError(f"holdout must be a fraction in (0, 1), got {holdout!r}")
    n_test = min(n - 1, max(1, math.ceil(round(float(holdout) * n, 9)))) if n > 1 else 0
    n_train = n - n_test
    if split == "train":
        return np.arange(n_train, dtype=np.int64)
    if split == "test":
        if n_test == 0:
            raise DataError(f"holdout={holdout} of {n} video(s) leaves no test videos")
        return np.arange(n_train, n, dtype=np.int64)
    raise DataError(f"holdout= defines only the 'train' and 'test' splits, got split={split!r} "
                    "(use split_file=... for a validation split)")


def _npz_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError):
        return []  # open_array reports the problem


def _resolve_layout(shape: tuple[int, ...], layout: str, path: Path) -> str:
    if layout != "auto":
        lay = layout.upper()
        if lay not in LAYOUTS:
            raise DataError(f"layout must be 'auto' or one of {LAYOUTS}, got {layout!r}")
        if len(shape) != len(lay):
            raise DataError(f"{str(path)!r}: layout {lay} needs a {len(lay)}-D array, got shape {shape}")
        return lay
    if len(shape) == 5:
        return "NTHWC"
    if len(shape) == 4 and tuple(shape) == MOVING_MNIST_SHAPE:
        return "TNHW"
    if len(shape) == 4:
        raise DataError(
            f"{str(path)!r}: a 4-D array of shape {shape} is ambiguous: say layout TNHW (time first, like "
            "Moving-MNIST) or NTHW (one grey video per row): `--data-option layout=TNHW` on the command line, "
            "layout='TNHW' in Python"
        )
    raise DataError(f"{str(path)!r}: expected a 4-D (grey) or 5-D video array, got shape {shape}")


class ArrayDataset(ClipDataset):
    """Videos in a memory-mapped ``.npy``/``.npz`` array; random ``t``-frame windows.

    Args:
        path: the ``.npy`` or ``.npz`` file.
        resolution: output ``int`` or ``(height, width)``; other frame sizes are area-resized and cropped.
        t: frames per clip (at most the stored length).
        channels: output channels (``None`` keeps the stored count); see :func:`adapt_channels`.
        layout: ``"auto"``, ``"TNHW"``, ``"NTHW"``, ``"NTHWC"`` or ``"TNHWC"``.
        key: the ``.npz`` member (needed when it holds several arrays).
        value_range: ``(lo, hi)`` of float data (uint8 is always ``(0, 255)``).
        grey: ``"repeat"`` or ``"keep"`` for grey data.
        cache_dir: where a compressed ``.npz`` member may be extracted once.
        split: ``None`` (everything), ``"train"``, ``"val"`` or ``"test"`` (see the module doc).
        split_file: indices of the split's videos (text or ``.npy``); overrides the other split sources.
        holdout: fraction of the videos (the last ones) held out as ``"test"``.

    ``len(ds)`` is the number of videos in the split; ``ds.indices`` maps a dataset
    index to the stored video index (``None``: the identity, every video).
    """

    kind = "array"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        resolution: int | Sequence[int] = 64,
        t: int = 16,
        channels: int | None = 3,
        layout: str = "auto",
        key: str | None = None,
        value_range: tuple[float, float] | None = None,
        grey: str = "repeat",
        cache_dir: str | os.PathLike | None = None,
        split: str | None = None,
        split_file: str | os.PathLike | None = None,
        holdout: float | None = None,
    ):
        self.path = Path(path)
        if split is not None and split not in SPLIT_NAMES:
            raise DataError(f"split must be one of {SPLIT_NAMES} or None, got {split!r}")
        self.split = split
        if (key is None and split is not None and split_file is None and self.path.suffix.lower() == ".npz"
                and self.path.exists() and split in _npz_members(self.path)):
            key = split  # an .npz with train/val/test members: the split is the member
            self.split_source = f"member {split!r}"
        else:
            self.split_source = None
        self.key = key
        self.cache_dir = cache_dir
        self.grey = check_grey(grey)
        self._array = open_array(self.path, key=key, cache_dir=cache_dir)
        arr = self._array
        self.layout = _resolve_layout(arr.shape, layout, self.path)
        dims = dict(zip(self.layout, arr.shape))
        self.num_videos, self.num_frames = dims["N"], dims["T"]
        self.stored_hw = (dims["H"], dims["W"])
        stored_c = dims.get("C", 1)
        if arr.dtype == np.uint8:
            self.value_range = (0.0, 255.0)
        elif np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer):
            try:
                vr = tuple(float(v) for v in (value_range if value_range is not None else (-1.0, 1.0)))
            except (TypeError, ValueError):
                vr = ()
            if len(vr) != 2 or not all(np.isfinite(vr)) or vr[1] <= vr[0]:
                raise DataError(f"value_range must be two finite numbers (lo, hi) with lo < hi, e.g. (0, 1) or "
                                f"(0, 255), got {value_range!r}")
            self.value_range = vr
        else:
            raise DataError(f"{str(self.path)!r}: unsupported dtype {arr.dtype}")
        self.height, self.width = as_hw(resolution)
        self.t = _check_t(t)
        if self.t > self.num_frames:
            raise DataError(
                f"{str(self.path)!r}: clips of t={self.t} frames need videos that long, stored T={self.num_frames}"
            )
        if self.num_videos == 0:
            raise DataError(f"{str(self.path)!r} holds no videos (N=0)")
        empty = [f"{d}={n}" for d, n in dims.items() if n == 0]
        if empty:
            raise DataError(f"{str(self.path)!r}: shape {tuple(arr.shape)} (layout {self.layout}) has empty "
                            f"dimensions ({', '.join(empty)}): frames need T, H, W and C of at least 1")
        if channels is not None and (int(channels) != channels or channels <= 0):
            raise DataError(f"channels must be a positive int or None, got {channels!r}")
        self.requested_channels = channels
        probe = adapt_channels(np.zeros((1, 1, 1, stored_c), np.float32), channels, self.grey)  # validates now
        self.channels = probe.shape[-1]
        self.indices = self._split_indices(split, split_file, holdout)
        if self.indices is not None and len(self.indices) == 0:
            raise DataError(f"{str(self.path)!r}: split {split!r} ({self.split_source}) holds no videos")

    def _split_indices(self, split, split_file, holdout) -> np.ndarray | None:
        n = self.num_videos
        if split_file is not None:
            idx = read_index_file(split_file)
            bad = idx[(idx < 0) | (idx >= n)]
            if len(bad):
                raise DataError(f"split file {str(split_file)!r} lists video index {int(bad[0])}, but "
                                f"{str(self.path)!r} holds {n} videos (indices 0..{n - 1})")
            self.split_source = f"split file {str(split_file)!r}"
            return idx
        if self.split_source is not None or split is None:
            return None  # an .npz member per split, or no split: every stored video
        side = self.path.with_name(f"{self.path.stem}.{split}.txt")
        if side.is_file():
            self.split_source = f"side file {side.name!r}"
            return self._split_indices(split, side, None)
        if holdout is not None:
            self.split_source = f"holdout={holdout}"
            return holdout_split(n, holdout, split)
        if split == "train":
            return None
        raise DataError(
            f"{str(self.path)!r} has no {split!r} split: pass split_file=... (video indices), holdout=f (the last "
            f"fraction f of the videos), put the indices in {self.path.stem}.{split}.txt next to it, or store an "
            f".npz with a member named {split!r}"
        )

    @property
    def array(self) -> np.ndarray:
        """The memory-mapped array (reopened lazily after unpickling in a worker process)."""
        if self._array is None:
            self._array = open_array(self.path, key=self.key, cache_dir=self.cache_dir)
        return self._array

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_array"] = None  # a memmap is reopened in the worker, never pickled by value
        return state

    def __len__(self) -> int:
        return self.num_videos if self.indices is None else len(self.indices)

    def _stored(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"video index {index} out of range [0, {len(self)})")
        return int(index) if self.indices is None else int(self.indices[index])

    def describe(self, index: int) -> str:
        return f"{self.path.name}[{self._stored(index)}]"

    def fingerprint(self) -> dict:
        fp = {**super().fingerprint(), "stored_shape": list(self.array.shape), "layout": self.layout}
        if self.indices is not None or self.split_source is not None:  # a real subset (unchanged otherwise)
            fp["split"] = self.split
        return fp

    def clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        index = self._stored(index)
        start = int(rng.integers(0, self.num_frames - self.t + 1))
        window = slice(start, start + self.t)
        a = self.array
        view = a[window, index] if self.layout[0] == "T" else a[index, window]  # (t, H, W[, C])
        x = np.array(view, dtype=np.float32)  # copies just this clip out of the map
        if x.ndim == 3:
            x = x[..., None]
        lo, hi = self.value_range
        finite = np.isfinite(x)
        if not finite.all():
            raise DataError(f"{self.path.name}[{index}]: {int(x.size - finite.sum())} non-finite values (NaN/Inf) in "
                            f"frames {start}..{start + self.t - 1}; clean the array (trivd does not guess them)")
        if self.array.dtype != np.uint8:
            xmin, xmax = float(x.min()), float(x.max())
            if xmin < lo - 1e-6 or xmax > hi + 1e-6:
                raise DataError(
                    f"{self.path.name}[{index}]: values in [{xmin:g}, {xmax:g}] lie outside value_range=({lo:g}, {hi:g}); "
                    "pass the data's range as value_range=(lo, hi)"
                )
        x = to_unit_range(x, lo, hi)
        x = resize_crop(x, (self.height, self.width), rng)
        return np.clip(adapt_channels(x, self.requested_channels, self.grey), -1.0, 1.0)
