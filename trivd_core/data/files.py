"""One clip from one file: a video, a folder of image frames or a ``.npy`` array (``trivd predict``'s input).

:func:`read_frames` returns the first ``max_frames`` frames of

* a video file (PyAV; any container FFmpeg reads),
* a folder of image frames (``.png .jpg .jpeg .bmp``, read with imageio, in *natural*
  order of the file names: ``2.png`` before ``10.png``),
* a ``.npy`` clip ``(T, H, W)`` / ``(T, H, W, C)`` (uint8 in ``[0, 255]`` or float in
  ``[-1, 1]``),

as float32 ``(n, h, w, C)`` in ``[-1, 1]``, each frame resized like the data pipeline
(appendix E.2): scaled, aspect kept, so that it just covers the target - the smaller
side becomes the resolution for a square target - then *centre*-cropped (the
training pipeline crops at random; a prediction should see the middle).  Videos are
scaled with swscale's ``AREA`` filter exactly as :func:`~trivd_core.data.read_clip`
does, images and arrays with :func:`~trivd_core.data.area_resize` (the same box
filter).  Anything that cannot give frames raises :class:`DataError` with the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import DataError, adapt_channels, area_resize, as_hw, scaled_size, to_unit_range

__all__ = ["IMAGE_EXTENSIONS", "read_frames", "list_frame_files", "natural_key", "centre_crop_offsets"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: ``frame2 < frame10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name) if part]


def list_frame_files(folder: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """The image files directly in ``folder``, in natural order of their names."""
    folder = Path(folder)
    exts = tuple(e.lower() for e in extensions)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def centre_crop_offsets(size: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner ``(y, x)`` of the centred ``out_hw`` window in a ``size`` frame (floor of the half excess)."""
    return (size[0] - out_hw[0]) // 2, (size[1] - out_hw[1]) // 2


def _resize_centre(x: np.ndarray, out_hw: tuple[int, int] | None) -> np.ndarray:
    if out_hw is None:
        return x
    H, W = x.shape[-3], x.shape[-2]
    size = scaled_size(H, W, out_hw)
    y0, x0 = centre_crop_offsets(size, out_hw)
    return area_resize(x, size)[..., y0 : y0 + out_hw[0], x0 : x0 + out_hw[1], :]


def _read_video(path: Path, max_frames: int | None, out_hw, channels: int) -> np.ndarray:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        from .._install import install_hint

        raise DataError(f"reading video files needs PyAV: {install_hint('video')}") from exc
    if channels not in (1, 3):
        raise DataError(f"video files give 1 (grey) or 3 (RGB) channels, got channels={channels!r}")
    fmt = {1: "gray", 3: "rgb24"}[channels]
    frames = []
    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                raise DataError(f"{str(path)!r} has no video stream")
            stream = container.streams.video[0]
            reformatter = av.video.reformatter.VideoReformatter()
            for frame in container.decode(stream):
                if max_frames is not None and len(frames) >= max_frames:
                    break
                if out_hw is None:
                    arr = frame.to_ndarray(format=fmt)
                else:
                    size = scaled_size(frame.height, frame.width, out_hw)
                    y0, x0 = centre_crop_offsets(size, out_hw)
                    img = reformatter.reformat(frame, width=size[1], height=size[0], format=fmt, interpolation="AREA")
                    arr = img.to_ndarray()[y0 : y0 + out_hw[0], x0 : x0 + out_hw[1]]
                frames.append(arr[..., None] if arr.ndim == 2 else arr)
    except DataError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError, IndexError, RuntimeError) as exc:
        if not frames:
            raise DataError(f"{str(path)!r} is not a video file PyAV can read ({type(exc).__name__}: {exc})") from exc
        # a truncated file: keep the frames decoded before the damage
    if not frames:
        raise DataError(f"{str(path)!r} holds no decodable video frames")
    return to_unit_range(np.stack(frames), 0.0, 255.0)


def _read_images(folder: Path, max_frames: int | None, out_hw, channels: int) -> np.ndarray:
    files = list_frame_files(folder)
    if not files:
        raise DataError(f"{str(folder)!r} holds no image frames ({', '.join(IMAGE_EXTENSIONS)}) and is not a video")
    import imageio.v3 as iio

    frames = []
    first = None
    for f in files[:max_frames]:
        try:
            img = np.asarray(iio.imread(f))
        except Exception as exc:  # noqa: BLE001 - imageio raises many kinds for a bad image
            raise DataError(f"frame {str(f)!r} cannot be read as an image ({type(exc).__name__}: {exc})") from exc
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3 or img.shape[-1] not in (1, 2, 3, 4):
            raise DataError(f"frame {str(f)!r} is not a single grey or colour image (shape {img.shape})")
        if img.shape[-1] in (2, 4):  # drop alpha
            img = img[..., :-1]
        if first is None:
            first = (f, img.shape)
        elif img.shape != first[1]:
            raise DataError(f"frames of one clip must share a size: {first[0].name} is {first[1]}, {f.name} is "
                            f"{img.shape}")
        frames.append(img)
    x = np.stack(frames)
    if x.dtype == np.uint8:
        x = to_unit_range(x, 0.0, 255.0)
    elif x.dtype == np.uint16:
        x = to_unit_range(x, 0.0, 65535.0)
    else:
        raise DataError(f"frames in {str(folder)!r} have an unsupported pixel type {x.dtype} (8- or 16-bit images)")
    return adapt_channels(_resize_centre(x, out_hw), channels)


def _read_npy(path: Path, max_frames: int | None, out_hw, channels: int) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{str(path)!r} is not a readable .npy array: {exc}") from exc
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise DataError(f"{str(path)!r}: a clip array must be (T, H, W) or (T, H, W, C), got shape {arr.shape}")
    x = np.array(arr[:max_frames])
    if x.dtype == np.uint8:
        x = to_unit_range(x, 0.0, 255.0)
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
        if x.size and (float(x.min()) < -1.0 - 1e-6 or float(x.max()) > 1.0 + 1e-6):
            raise DataError(f"{str(path)!r}: float clips must hold values in [-1, 1], got [{x.min():g}, {x.max():g}]")
    else:
        raise DataError(f"{str(path)!r}: a clip array must be uint8 or float, got {x.dtype}")
    return np.clip(adapt_channels(_resize_centre(x, out_hw), channels), -1.0, 1.0)


def read_frames(
    path: str | os.PathLike,
    *,
    max_frames: int | None = None,
    resolution: int | Sequence[int] | None = None,
    channels: int = 3,
) -> np.ndarray:
    """The first ``max_frames`` frames (all if ``None``) of a video, a frame folder or a ``.npy`` clip.

    Returns float32 ``(n, h, w, channels)`` in ``[-1, 1]`` with ``n <= max_frames``
    (fewer when the source is shorter: the caller decides what is too short).
    ``resolution`` (``int`` or ``(h, w)``): resize to cover it and centre-crop (see
    the module doc); ``None`` keeps the stored size.  Raises :class:`DataError` for a
    missing path, a file that is not a video (e.g. text), a folder without images,
    frames of different sizes or unusable channel counts.
    """
    path = Path(path)
    if max_frames is not None and (isinstance(max_frames, bool) or int(max_frames) != max_frames or max_frames < 1):
        raise DataError(f"max_frames must be None or a positive int, got {max_frames!r}")
    out_hw = None if resolution is None else as_hw(resolution)
    if not path.exists():
        raise DataError(f"input {str(path)!r} does not exist")
    if path.is_dir():
        return _read_images(path, max_frames, out_hw, channels)
    if path.suffix.lower() == ".npy":
        return _read_npy(path, max_frames, out_hw, channels)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise DataError(f"{str(path)!r} is a single image; pass the folder that holds the frames of the clip")
    return _read_video(path, max_frames, out_hw, channels)
