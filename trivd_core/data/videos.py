"""Video folders (Kinetics-600 / UCF-101 style) decoded with PyAV.

Every video file under a root (any depth; ``.mp4 .avi .webm .mkv`` by default) is one
source.  A clip is ``t`` consecutive frames from a uniformly random start, each
frame resized (area filter by default, aspect kept) so it just covers the target
size - the smaller side becomes 64 for the default square 64 x 64 - then randomly
cropped to the target and scaled to ``[-1, 1]`` (paper appendix E.2).  The start
frame and the crop corner are drawn from the ``rng`` passed to :meth:`clip`.

Splits: ``split_file`` (a text file listing paths relative to the root, one per line;
only the first whitespace-separated field is used, so UCF-101's ``trainlist01.txt``
works as is; blank lines and ``#`` comments are ignored), else ``root/<split>/`` (a
folder per split), else ``root/<split>.txt``.  A root without any split layout is
used whole for ``split="train"`` or ``None``; asking it for ``"val"``/``"test"`` is
an error, unless ``holdout=f`` is given: then each video is held out as ``"test"``
when the first 8 bytes of the SHA-256 of its relative path, read as a fraction of
2^64, are below ``f`` (a fixed, order-free assignment: adding a file never moves
another one, and class folders are mixed); the rest is ``"train"``.

Unreadable sources (not a video, corrupt, no video stream, fewer than ``t`` frames,
truncated) raise :class:`SkipClip`; the loader substitutes another clip and counts
the skip.  Frame seeking: a clip that does not start at frame 0 is reached by
seeking to the key frame before it and dropping frames by timestamp, which for a
constant-frame-rate video gives exactly the frames of a decode from the start;
anything unexpected (no timestamps, a gap in the timestamps inside the clip, a seek
that overshoots) falls back to decoding from the start.  Either way the result
depends only on the file and the drawn start.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from .base import ClipDataset, DataError, SkipClip, _check_t, as_hw, random_offsets, scaled_size, to_unit_range

__all__ = ["VideoFolderDataset", "VIDEO_EXTENSIONS", "list_videos", "read_clip", "holdout_member"]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv")
_SPLIT_NAMES = ("train", "val", "test")


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        from .._install import install_hint

        raise DataError(f"reading video folders needs PyAV: {install_hint('video')}") from exc
    return av


def list_videos(root: str | os.PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[str]:
    """Relative POSIX paths of all files under ``root`` with one of ``extensions`` (any case), sorted."""
    root = Path(root)
    exts = tuple(e.lower() for e in extensions)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            if name.lower().endswith(exts) and not name.startswith("."):
                out.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(out)


def _read_split_file(path: Path) -> list[str]:
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line.split()[0].replace("\\", "/"))
    return entries


def holdout_member(relpath: str, holdout: float) -> bool:
    """Whether ``relpath`` is held out (``"test"``) for the fraction ``holdout`` (SHA-256 of the POSIX path)."""
    digest = hashlib.sha256(relpath.replace("\\", "/").encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < holdout * 2.0**64


def resolve_split(
    root: Path, split: str | None, split_file: str | os.PathLike | None, extensions: Sequence[str],
    holdout: float | None = None,
) -> tuple[Path, list[str], int]:
    """``(base folder, relative paths, number of listed-but-missing files)`` for a split."""
    if holdout is not None and (isinstance(holdout, bool) or not isinstance(holdout, (int, float))
                                or not 0.0 < float(holdout) < 1.0):
        raise DataError(f"holdout must be a fraction in (0, 1), got {holdout!r}")
    if split_file is not None:
        sf = Path(split_file)
        if not sf.is_file():
            raise DataError(f"split file {str(sf)!r} does not exist")
        listed = _read_split_file(sf)
        present = [p for p in listed if (root / p).is_file()]
        if not listed:
            raise DataError(f"split file {str(sf)!r} lists no videos")
        return root, present, len(listed) - len(present)
    if split is None:
        return root, list_videos(root, extensions), 0
    if split not in _SPLIT_NAMES:
        raise DataError(f"split must be one of {_SPLIT_NAMES} or None, got {split!r}")
    if (root / split).is_dir():
        return root / split, list_videos(root / split, extensions), 0
    if (root / f"{split}.txt").is_file():
        return resolve_split(root, None, root / f"{split}.txt", extensions)
    has_layout = any((root / s).is_dir() or (root / f"{s}.txt").is_file() for s in _SPLIT_NAMES)
    if holdout is not None and not has_layout:
        if split == "val":
            raise DataError("holdout= defines only the 'train' and 'test' splits; use split_file=... for 'val'")
        files = list_videos(root, extensions)
        return root, [f for f in files if holdout_member(f, float(holdout)) == (split == "test")], 0
    if split == "train" and not has_layout:
        log.info("%s has no split layout (train/ val/ test/ folders or .txt lists): using every video", root)
        return root, list_videos(root, extensions), 0
    raise DataError(
        f"no {split!r} split under {str(root)!r}: expected a folder {split}/ or a list {split}.txt "
        "(or pass split_file=...)"
    )


def _frame_count(av, path: str, stream) -> int:
    n = int(stream.frames or 0)
    if n > 0:
        return n
    # Containers without a frame count (webm/mkv): count the packets, which needs no decoding.
    with av.open(path) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size)


def read_clip(
    path: str | os.PathLike,
    t: int,
    out_hw: tuple[int, int],
    rng: np.random.Generator,
    *,
    channels: int = 3,
    interpolation: str = "AREA",
    seek: bool = True,
    decoder_threads: int = 1,
) -> np.ndarray:
    """``t`` consecutive frames of a video at a random start, resized to cover ``out_hw``, randomly cropped.

    Returns float32 ``(t, h, w, channels)`` in ``[-1, 1]`` (``channels`` 1 or 3).
    Draws the start frame, then the crop corner ``(y, x)``, from ``rng``.  Raises
    :class:`SkipClip` for anything that cannot give such a clip.
    """
    av = _av()
    path = os.fspath(path)
    fmt = {1: "gray", 3: "rgb24"}[channels]
    start = None  # failures before a start is drawn hold for every start (SkipClip.permanent)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise SkipClip("no video stream", permanent=True)
            stream = container.streams.video[0]
            n = _frame_count(av, path, stream)
            if n < t:
                raise SkipClip(f"too short: {n} frames < t={t}", permanent=True)
            start = int(rng.integers(0, n - t + 1))
            frames = None
            if seek and start > 0:
                frames = _decode_seek(container, stream, start, t, decoder_threads)
        if frames is None:
            with av.open(path) as container:
                frames = _decode_sequential(container, container.streams.video[0], start, t, decoder_threads)
        if len(frames) < t:
            raise SkipClip(f"truncated: decoded {start + len(frames)} frames, container says {n}")
        size = scaled_size(frames[0].height, frames[0].width, out_hw)
        y0, x0 = random_offsets(rng, size, out_hw)
        reformatter = av.video.reformatter.VideoReformatter()
        out = np.empty((t, out_hw[0], out_hw[1], channels), dtype=np.uint8)
        for i, frame in enumerate(frames):
            img = reformatter.reformat(frame, width=size[1], height=size[0], format=fmt, interpolation=interpolation)
            arr = img.to_ndarray()
            if arr.ndim == 2:
                arr = arr[..., None]
            out[i] = arr[y0 : y0 + out_hw[0], x0 : x0 + out_hw[1]]
    except SkipClip:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError, IndexError, RuntimeError, ZeroDivisionError) as exc:
        where = "" if start is None else f" (frames from {start})"
        raise SkipClip(f"unreadable{where}: {type(exc).__name__}: {exc}", permanent=start is None) from exc
    return to_unit_range(out, 0.0, 255.0)


def _decode_sequential(container, stream, start: int, t: int, threads: int) -> list:
    stream.codec_context.thread_count = threads
    frames = []
    for i, frame in enumerate(container.decode(stream)):
        if i >= start:
            frames.append(frame)
            if len(frames) == t:
                break
    return frames


def _decode_seek(container, stream, start: int, t: int, threads: int) -> list | None:
    """Frames ``start .. start+t-1`` by seeking; ``None`` if the stream's timing cannot be trusted."""
    rate = stream.average_rate or stream.guessed_rate
    tb = stream.time_base
    if not rate or not tb:
        return None
    stream.codec_context.thread_count = threads
    first = next(container.decode(stream), None)  # the timestamp of frame 0
    if first is None or first.pts is None:
        return None
    step = Fraction(1) / (Fraction(rate) * Fraction(tb))  # pts units per frame

    def index(pts: int) -> int:
        return int(round((pts - first.pts) / step))

    container.seek(int(first.pts + start * step), stream=stream, backward=True, any_frame=False)
    frames = []
    for frame in container.decode(stream):
        if frame.pts is None:
            return None
        i = index(frame.pts)
        if not frames and i > start:
            return None  # the seek landed after the start frame
        if i < start:
            continue
        if i != start + len(frames):
            return None  # a gap in the timestamps: decode from the start instead
        frames.append(frame)
        if len(frames) == t:
            break
    return frames


class VideoFolderDataset(ClipDataset):
    """Every video under ``root`` (or in one split of it) as a source of random ``t``-frame clips.

    Args:
        root: the dataset folder.
        resolution: ``int`` or ``(height, width)`` of the output clips (64 default).
        t: frames per clip (16 default).
        channels: 3 (RGB) or 1 (grey).
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` (everything); see the module doc.
        split_file: a text file of relative paths; overrides ``split``.
        holdout: for a root without a split layout, the fraction of videos held out as ``"test"``.
        extensions: the file suffixes that count as videos.
        interpolation: a PyAV/swscale filter name (``"AREA"`` default, ``"BILINEAR"``, ...).
        seek: reach the start frame by seeking (faster on long videos) instead of decoding from 0.
        decoder_threads: FFmpeg threads per decode (1: the loader's workers are the parallelism).
        clips_per_video: dataset indices per video (default 1): index ``i`` is a clip of video
            ``i // clips_per_video`` at its own random start, so a few long videos make a dataset
            of ``clips_per_video`` times as many clips (enough for a batch, or a more even epoch).

    Raises :class:`DataError` at construction for a missing root, a root that is
    not a folder, no videos, or a missing split.  Files listed in a split file but
    absent are dropped with one warning; ``missing`` holds their number.
    """

    kind = "video_folder"

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        resolution: int | Sequence[int] = 64,
        t: int = 16,
        channels: int = 3,
        split: str | None = None,
        split_file: str | os.PathLike | None = None,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        interpolation: str = "AREA",
        seek: bool = True,
        decoder_threads: int = 1,
        holdout: float | None = None,
        clips_per_video: int = 1,
    ):
        root = Path(root)
        if isinstance(clips_per_video, bool) or not isinstance(clips_per_video, int) or clips_per_video < 1:
            raise DataError(f"clips_per_video must be a positive int, got {clips_per_video!r}")
        self.clips_per_video = clips_per_video
        if not root.exists():
            raise DataError(f"dataset path {str(root)!r} does not exist")
        if not root.is_dir():
            raise DataError(f"dataset path {str(root)!r} is not a folder of videos")
        if channels not in (1, 3):
            raise DataError(f"video datasets give 1 (grey) or 3 (RGB) channels, got channels={channels!r}")
        av = _av()
        try:
            av.video.reformatter.Interpolation[interpolation.upper()]
        except KeyError:
            raise DataError(f"unknown interpolation {interpolation!r}") from None
        self.height, self.width = as_hw(resolution)
        self.t = _check_t(t)
        self.channels = int(channels)
        self.split = split
        self.interpolation = interpolation.upper()
        self.seek = bool(seek)
        self.decoder_threads = int(decoder_threads)
        self.root, self.files, self.missing = resolve_split(root, split, split_file, extensions, holdout)
        if self.missing:
            import warnings

            from .base import DataWarning

            msg = f"{self.missing} file(s) listed in {split_file} do not exist under {root} and are ignored"
            warnings.warn(msg, DataWarning, stacklevel=2)  # once: not to the logger as well
        if not self.files:
            raise DataError(f"no video files ({', '.join(extensions)}) under {str(self.root)!r}")
        self._bad: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.files) * self.clips_per_video

    def describe(self, index: int) -> str:
        return self.files[index // self.clips_per_video]

    def fingerprint(self) -> dict:
        fp = {**super().fingerprint(), "split": self.split}
        if self.clips_per_video != 1:
            fp["clips_per_video"] = self.clips_per_video
        return fp

    def clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        index = index // self.clips_per_video  # the video; the start is drawn from rng
        if index in self._bad:  # unreadable from any start: skip without opening again
            raise SkipClip(self._bad[index], permanent=True)
        try:
            return read_clip(
                self.root / self.files[index],
                self.t,
                (self.height, self.width),
                rng,
                channels=self.channels,
                interpolation=self.interpolation,
                seek=self.seek,
                decoder_threads=self.decoder_threads,
            )
        except SkipClip as exc:
            if exc.permanent:  # a failure of one start only is not remembered (see SkipClip)
                self._bad[index] = str(exc)
            raise
