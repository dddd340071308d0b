"""Media: every image, video and plot trivd writes, in one place (NumPy at the boundary, no backend).

* Sample videos: :func:`write_gif` (Pillow when installed, else a NumPy-only GIF89a
  encoder: a 6x7x6 colour cube and LZW with fixed 9-bit codes), :func:`write_video`
  (MP4/MKV/MOV/AVI/WebM through PyAV, GIF through imageio), :func:`upscale`,
  :func:`contact_sheet`, :func:`to_uint8`.
* Images: :func:`write_png` (a NumPy-only PNG encoder), :func:`save_figure` (a
  matplotlib figure, written atomically).
* Plots: :func:`plot_curves` (matplotlib/Agg when installed, else a raster rendering
  with a built-in 3x5 pixel font), :func:`raster_plot` (the bare fallback of the loss plot).
* Motion: :func:`flow_to_rgb` (hue = direction, value = speed) and its key :func:`color_wheel`.
* Labelled pictures: :class:`LabelledGrid` - image cells in rows and columns as a
  matplotlib figure with row labels, column titles, a per-frame title, coloured
  cell borders and an optional legend (e.g. the motion colour wheel in px/frame);
  redrawn frame by frame for a GIF or video, saved as a PNG whose text metadata
  (``trivd:labels``) holds the labels read back from the drawn figure.

Every file is written atomically (a temporary file renamed into place), so a killed run
never leaves a torn image.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .files import atomic_write_bytes

__all__ = ["to_uint8", "encode_gif", "write_gif", "upscale", "contact_sheet", "encode_png", "write_png",
           "save_figure", "raster_plot", "plot_curves", "flow_to_rgb", "color_wheel", "write_video",
           "have_matplotlib", "LabelledGrid", "LABELS_KEY"]


_LEVELS = (6, 7, 6)  # 252 colours


_CLEAR_EVERY = 250


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Frames in ``[-1, 1]`` -> ``uint8`` in ``[0, 255]`` (clipped); grey (C=1) becomes RGB."""
    x = np.asarray(x, dtype=np.float32)
    x = np.clip((x + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x


def _palette() -> np.ndarray:
    r, g, b = _LEVELS
    idx = np.arange(r * g * b)
    rgb = np.stack([idx // (g * b), (idx // b) % g, idx % b], axis=1)
    pal = np.round(rgb * 255.0 / (np.asarray(_LEVELS) - 1)).astype(np.uint8)
    return np.concatenate([pal, np.zeros((256 - len(pal), 3), np.uint8)])


def _quantize(frame: np.ndarray) -> np.ndarray:
    lv = np.asarray(_LEVELS)
    q = np.round(frame.astype(np.float32) * (lv - 1) / 255.0).astype(np.int64)
    return (q[..., 0] * lv[1] * lv[2] + q[..., 1] * lv[2] + q[..., 2]).astype(np.uint16)


def _lzw_fixed9(indices: np.ndarray) -> bytes:
    """LZW code stream of 8-bit ``indices`` with 9-bit codes only: clear, 250 literals, clear, ..., end."""
    clear, end = 256, 257
    lits = indices.astype(np.uint32).ravel()
    n_chunks = max(1, -(-len(lits) // _CLEAR_EVERY))
    pieces = []
    for i in range(n_chunks):
        pieces.append(np.asarray([clear], np.uint32))
        pieces.append(lits[i * _CLEAR_EVERY:(i + 1) * _CLEAR_EVERY])
    pieces.append(np.asarray([end], np.uint32))
    codes = np.concatenate(pieces)
    bits = ((codes[:, None] >> np.arange(9, dtype=np.uint32)) & 1).astype(np.uint8).ravel()
    bits = np.concatenate([bits, np.zeros((-len(bits)) % 8, np.uint8)])
    return np.packbits(bits.reshape(-1, 8), axis=1, bitorder="little").tobytes()


def _sub_blocks(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 255):
        chunk = data[i:i + 255]
        out.append(len(chunk))
        out += chunk
    out.append(0)
    return bytes(out)


def encode_gif(frames: np.ndarray, fps: float = 4.0) -> bytes:
    """GIF89a bytes of ``frames`` ``(T, H, W, 3)`` uint8, looping forever."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"encode_gif(): argument 'frames' must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    T, H, W, _ = frames.shape
    if not (0 < H < 65536 and 0 < W < 65536 and T > 0):
        raise ValueError(f"encode_gif(): argument 'frames' has an unsupported shape {frames.shape}")
    delay = max(1, int(round(100.0 / fps)))
    out = bytearray(b"GIF89a")
    out += struct.pack("<HHBBB", W, H, 0xF7, 0, 0)
    out += _palette().tobytes()
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for frame in frames:
        out += struct.pack("<BBBBHBB", 0x21, 0xF9, 4, 0x04, delay, 0, 0)
        out += struct.pack("<BHHHHB", 0x2C, 0, 0, W, H, 0)
        out.append(8)
        out += _sub_blocks(_lzw_fixed9(_quantize(frame)))
    out.append(0x3B)
    return bytes(out)


def write_gif(path, frames: np.ndarray, fps: float = 4.0, *, pillow: bool | None = None) -> Path:
    """Write an animated GIF atomically.

    ``pillow``: encode with Pillow (real LZW and an adaptive palette: ~40x smaller for
    upscaled sample grids) - ``None`` (default) when Pillow is installed (it comes with
    matplotlib, the ``video`` extra), else :func:`encode_gif` (NumPy only).
    """
    path = Path(path)
    data = None
    if pillow is not False:
        try:
            from PIL import Image
        except ImportError:
            if pillow:
                raise
        else:
            import io

            frames = np.asarray(frames, dtype=np.uint8)
            images = [Image.fromarray(f) for f in frames]
            buf = io.BytesIO()
            images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                           duration=int(round(1000 / fps)), loop=0)
            data = buf.getvalue()
    atomic_write_bytes(path, data if data is not None else encode_gif(frames, fps))
    return path


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of the two axes before the channels of ``(..., H, W, C)``."""
    if scale <= 1:
        return frames
    return np.repeat(np.repeat(frames, scale, axis=-3), scale, axis=-2)


def contact_sheet(frames: np.ndarray, *, gap: int = 4) -> np.ndarray:
    """The frames ``(T, H, W, 3)`` side by side, left to right, on white: one ``(H, T W + (T-1) gap, 3)`` image."""
    T, H, W, _ = frames.shape
    out = np.full((H, T * W + (T - 1) * gap, 3), 255, np.uint8)
    for t in range(T):
        out[:, t * (W + gap): t * (W + gap) + W] = frames[t]
    return out


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 image (8-bit RGB, filter 0, zlib)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"encode_png(): argument 'image' must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    H, W, _ = image.shape
    raw = np.concatenate([np.zeros((H, 1), np.uint8), image.reshape(H, W * 3)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def write_png(path, image: np.ndarray) -> Path:
    path = Path(path)
    atomic_write_bytes(path, encode_png(image))
    return path


def raster_plot(records: list[dict], curves, size=(360, 640)) -> np.ndarray:
    """A bare NumPy line plot of ``records`` (``curves``: ``(key, (r, g, b))`` pairs against ``step``; no labels)."""
    H, W = size
    img = np.full((H, W, 3), 255, np.uint8)
    m = 20
    img[m:H - m, m] = img[H - m - 1, m:W - m] = 0
    series = [(np.asarray([r["step"] for r in records if k in r], float),
               np.asarray([r[k] for r in records if k in r], float), c) for k, c in curves]
    series = [(x, y, c) for x, y, c in series if len(x)]
    if not series:
        return img
    xs = np.concatenate([s[0] for s in series])
    ys = np.concatenate([s[1] for s in series])
    x0, x1 = xs.min(), max(xs.max(), xs.min() + 1)
    y0, y1 = ys.min(), max(ys.max(), ys.min() + 1e-6)
    for x, y, c in series:
        if len(x) == 1:
            x, y = np.repeat(x, 2), np.repeat(y, 2)
        dense = np.linspace(0, len(x) - 1, 8 * W)
        px = np.interp(dense, np.arange(len(x)), x)
        py = np.interp(dense, np.arange(len(y)), y)
        cols = np.round(m + 1 + (px - x0) / (x1 - x0) * (W - 2 * m - 2)).astype(int)
        rows = np.round(H - m - 2 - (py - y0) / (y1 - y0) * (H - 2 * m - 2)).astype(int)
        img[rows, cols] = c
    return img


def save_figure(fig, path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """A matplotlib figure as a PNG at ``path`` (written atomically, ``metadata`` as PNG text), then closed."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata=dict(metadata or {}))
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


# 3x5 bitmap font for the plot fallback without matplotlib (rows top to bottom, '#' = ink).
_FONT = {
    "0": "### #.# #.# #.# ###", "1": ".#. ##. .#. .#. ###", "2": "### ..# ### #.. ###", "3": "### ..# ### ..# ###",
    "4": "#.# #.# ### ..# ..#", "5": "### #.. ### ..# ###", "6": "### #.. ### #.# ###", "7": "### ..# ..# ..# ..#",
    "8": "### #.# ### #.# ###", "9": "### #.# ### ..# ###", ".": "... ... ... ... .#.", "-": "... ... ### ... ...",
    " ": "... ... ... ... ...", "(": ".#. #.. #.. #.. .#.", ")": ".#. ..# ..# ..# .#.", ":": "... .#. ... .#. ...",
    "=": "... ### ... ### ...", "/": "..# ..# .#. #.. #..", "+": "... .#. ### .#. ...", "_": "... ... ... ... ###",
    "A": ".#. #.# ### #.# #.#", "B": "##. #.# ##. #.# ##.", "C": ".## #.. #.. #.. .##", "D": "##. #.# #.# #.# ##.",
    "E": "### #.. ##. #.. ###", "F": "### #.. ##. #.. #..", "G": ".## #.. #.# #.# .##", "H": "#.# #.# ### #.# #.#",
    "I": "### .#. .#. .#. ###", "J": "..# ..# ..# #.# .#.", "K": "#.# #.# ##. #.# #.#", "L": "#.. #.. #.. #.. ###",
    "M": "#.# ### ### #.# #.#", "N": "##. #.# #.# #.# #.#", "O": ".#. #.# #.# #.# .#.", "P": "##. #.# ##. #.. #..",
    "Q": ".#. #.# #.# ##. .##", "R": "##. #.# ##. #.# #.#", "S": ".## #.. .#. ..# ##.", "T": "### .#. .#. .#. .#.",
    "U": "#.# #.# #.# #.# ###", "V": "#.# #.# #.# #.# .#.", "W": "#.# #.# ### ### #.#", "X": "#.# #.# .#. #.# #.#",
    "Y": "#.# #.# .#. .#. .#.", "Z": "### ..# .#. #.. ###",
}


_SCALE = 2  # font pixels per bitmap pixel


def _glyph(ch: str) -> np.ndarray:
    rows = _FONT.get(ch.upper(), _FONT[" "]).split()
    return np.array([[c == "#" for c in r] for r in rows], dtype=bool)


def _text(img: np.ndarray, y: int, x: int, text: str, colour=(0, 0, 0), *, anchor: str = "left") -> None:
    """Draw ``text`` with the 3x5 font scaled by ``_SCALE`` (``anchor``: left, right or centre of ``x``)."""
    adv = 4 * _SCALE
    width = len(text) * adv - _SCALE
    if anchor == "right":
        x -= width
    elif anchor == "centre":
        x -= width // 2
    for i, ch in enumerate(text):
        g = np.kron(_glyph(ch), np.ones((_SCALE, _SCALE), dtype=bool))
        y0, x0 = y, x + i * adv
        ys, xs = np.nonzero(g)
        ys, xs = ys + y0, xs + x0
        ok = (ys >= 0) & (ys < img.shape[0]) & (xs >= 0) & (xs < img.shape[1])
        img[ys[ok], xs[ok]] = colour


def _fmt_tick(v: float, step: float) -> str:
    digits = 0
    while digits < 6 and abs(round(step * 10**digits) - step * 10**digits) > 1e-6 * max(step * 10**digits, 1):
        digits += 1
    text = f"{v:.{digits}f}"
    return "0" if float(text) == 0 else text


def _nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    span = hi - lo
    raw = span / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    return np.arange(math.ceil(lo / step) * step, hi + step * 1e-9, step)


def _raster_curves(x: np.ndarray, curves: dict, title: str, xlabel: str, ylabel: str,
                   size=(360, 640)) -> np.ndarray:
    H, W = size
    img = np.full((H, W, 3), 255, np.uint8)
    left, right, top, bottom = 70, 16, 30, 44
    x0p, x1p, y0p, y1p = left, W - right, top, H - bottom  # plot area in pixels
    vals = [np.asarray([np.nan if v is None else v for v in ys], float) for ys, _ in curves.values()]
    finite = np.concatenate([v[np.isfinite(v)] for v in vals] + [np.zeros(0)])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.08 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    xlo, xhi = float(x.min()), float(max(x.max(), x.min() + 1))
    xlo, xhi = xlo - 0.3, xhi + 0.3

    def px(v):
        return np.round(x0p + (v - xlo) / (xhi - xlo) * (x1p - x0p)).astype(int)

    def py(v):
        return np.round(y1p - (v - lo) / (hi - lo) * (y1p - y0p)).astype(int)

    ticks = _nice_ticks(lo, hi)
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    for t in ticks:
        r = int(py(t))
        img[r, x0p:x1p] = (225, 225, 225)
        _text(img, r - 5, x0p - 6, _fmt_tick(float(t), step), anchor="right")
    every = max(1, int(math.ceil(len(x) / 16)))
    for v in x[::every]:
        c = int(px(float(v)))
        img[y1p:y1p + 4, c] = 0
        _text(img, y1p + 7, c, str(int(v)), anchor="centre")
    img[y0p:y1p + 1, x0p] = 0
    img[y1p, x0p:x1p + 1] = 0
    _text(img, H - 14, (x0p + x1p) // 2, xlabel, anchor="centre")
    _text(img, 8, x0p, ylabel + ("  " + title if title else ""))
    for k, ((_label, (_ys, colour)), v) in enumerate(zip(curves.items(), vals)):
        ok = np.isfinite(v)
        xs, ys = x[ok].astype(float), v[ok]
        if len(xs) == 0:
            continue
        if len(xs) > 1:
            dense = np.linspace(0, len(xs) - 1, 8 * W)
            cols = px(np.interp(dense, np.arange(len(xs)), xs))
            rows = py(np.interp(dense, np.arange(len(ys)), ys))
            for dr in (0, 1):
                img[np.clip(rows + dr, 0, H - 1), cols] = colour
        for cx, cy in zip(px(xs), py(ys)):
            img[max(cy - 2, 0):cy + 3, max(cx - 2, 0):cx + 3] = colour
        _text(img, y0p + 8 + 16 * k, x1p - 8, _label, colour, anchor="right")
    return img


def plot_curves(path, x, curves: Mapping[str, tuple], *, title: str = "", xlabel: str = "", ylabel: str = "") -> Path:
    """A line plot PNG of ``curves`` (``label -> (values, (r, g, b))``; ``None`` values are gaps) against ``x``.

    matplotlib (Agg) when installed, otherwise a NumPy raster rendering with a
    built-in 3x5 pixel font (axes, ticks, labels and legend), so a run always has
    its plots.
    """
    path = Path(path)
    x = np.asarray(x)
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return write_png(path, _raster_curves(x, dict(curves), title, xlabel, ylabel))
    import json

    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for label, (ys, colour) in curves.items():
        ys = np.asarray([np.nan if v is None else v for v in ys], float)
        ax.plot(x, ys, marker="o", label=label, color=np.asarray(colour) / 255.0, linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if x.size and np.all(np.asarray(x, float) == np.round(np.asarray(x, float))):  # frames, steps: whole ticks
        if x.size <= 20:
            ax.set_xticks(np.asarray(x))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.canvas.draw()
    labels = {"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
              "xticks": [t.get_text() for t in ax.get_xticklabels()],
              "legend": [t.get_text() for t in ax.get_legend().get_texts()]}
    return save_figure(fig, path, metadata={"Title": title, LABELS_KEY: json.dumps(labels)})


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    h6 = (h % 1.0) * 6.0
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(h.shape + (3,))
    for k, (r, g, b) in enumerate(table):
        m = i == k
        out[m] = np.stack([r[m], g[m], b[m]], axis=-1)
    return out


def flow_to_rgb(motion, *, max_magnitude: float | None = None) -> np.ndarray:
    """Colour image ``(..., H, W, 3)`` uint8 of a motion field ``(..., H, W, 2)`` ``(dy, dx)`` (NumPy).

    Hue = direction ``atan2(dy, dx) / 2 pi`` (red right, yellow-green down, cyan left,
    violet up), saturation 1, value = ``|motion| / max_magnitude`` clipped to 1
    (default: the largest magnitude in ``motion``; an all-zero field is black).
    """
    m = np.asarray(motion, dtype=np.float64)
    if m.ndim < 3 or m.shape[-1] != 2:
        raise ValueError(f"flow_to_rgb(): argument 'motion' must be (..., H, W, 2), got shape {m.shape}")
    dy, dx = m[..., 0], m[..., 1]
    mag = np.hypot(dy, dx)
    scale = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    if not scale > 0 or not math.isfinite(scale):
        scale = 1.0
    hue = (np.arctan2(dy, dx) / (2.0 * np.pi)) % 1.0
    val = np.clip(mag / scale, 0.0, 1.0)
    rgb = _hsv_to_rgb(hue, np.ones_like(hue), val)
    return np.round(rgb * 255.0).astype(np.uint8)


def color_wheel(size: int = 64) -> np.ndarray:
    """The legend of :func:`flow_to_rgb`: ``(size, size, 3)`` uint8, the colour of each offset from the centre.

    The rim is the largest magnitude; outside the disc is white.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 3:
        raise ValueError(f"color_wheel(): argument 'size' must be an int >= 3, got {size!r}")
    c = (size - 1) / 2.0
    r = size / 2.0 - 0.5
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    offsets = np.stack([(yy - c) / r, (xx - c) / r], axis=-1)
    img = flow_to_rgb(offsets, max_magnitude=1.0)
    img[np.hypot(offsets[..., 0], offsets[..., 1]) > 1.0] = 255
    return img


# --------------------------------------------------------------------------- writing videos
_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".avi": "mpeg4", ".webm": "libvpx-vp9"}


def _to_uint8_rgb(clip: np.ndarray) -> np.ndarray:
    from .data.base import DataError  # here: the data package writes videos through this module
    clip = np.asarray(clip)
    if clip.ndim != 4:
        raise DataError(f"write_video: clip must be (T, H, W, C), got shape {clip.shape}")
    if clip.dtype != np.uint8:
        clip = np.round((np.clip(clip, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    if clip.shape[-1] == 1:
        clip = np.repeat(clip, 3, axis=-1)
    if clip.shape[-1] != 3:
        raise DataError(f"write_video: need 1 or 3 channels, got {clip.shape[-1]}")
    return np.ascontiguousarray(clip)


def write_video(
    path: str | os.PathLike,
    clip: np.ndarray,
    fps: float = 8,
    *,
    codec: str | None = None,
    lossless: bool = False,
    gop: int | None = None,
) -> str:
    """Write a clip ``(T, H, W, C)`` (float in ``[-1, 1]`` or uint8; C = 1 or 3) to a video file.

    The container follows the suffix: ``.gif`` (imageio/Pillow, looping), ``.mp4`` /
    ``.mkv`` / ``.mov`` (H.264), ``.avi`` (MPEG-4 part 2), ``.webm`` (VP9), all via
    PyAV.  ``lossless=True`` writes H.264 4:4:4 with qp 0 (only the RGB <-> YUV
    rounding remains).  ``gop`` sets the key-frame interval.  Odd frame sizes are
    written as 4:4:4 with H.264 (4:2:0 needs even sizes).  Returns the path.
    """
    from .data.base import DataError  # here: the data package writes videos through this module

    path = os.fspath(path)
    frames = _to_uint8_rgb(clip)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".gif":
        import imageio.v3 as iio

        iio.imwrite(path, frames, extension=".gif", duration=1000.0 / fps, loop=0)
        return path
    if suffix not in _CODECS and codec is None:
        raise DataError(f"write_video: unknown video suffix {suffix!r} (use .gif, {', '.join(_CODECS)})")
    from fractions import Fraction

    import av

    codec = codec or _CODECS[suffix]
    T, H, W, _ = frames.shape
    odd = H % 2 or W % 2
    options: dict[str, str] = {}
    pix_fmt = "yuv420p"
    if codec == "libx264":
        if lossless or odd:
            pix_fmt = "yuv444p"
        options = {"qp": "0"} if lossless else {"crf": "18"}
    elif lossless or odd:
        raise DataError(f"write_video: lossless or odd-sized output needs H.264 (.mp4/.mkv), got codec {codec}")
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000), options=options)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        if gop is not None:
            stream.codec_context.gop_size = int(gop)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --------------------------------------------------------------------------- labelled pictures
#: The PNG text key under which :meth:`LabelledGrid.save_png` stores the labels of the drawn figure (JSON).
LABELS_KEY = "trivd:labels"


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (the ``video`` extra); it is then put on the Agg backend."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg", force=True)
    return True


class LabelledGrid:
    """Image cells in ``rows x cols`` as one matplotlib figure, labelled, redrawn frame by frame.

    Args:
        cells: ``cells[r][c]`` is ``(T, h, w, 3)`` uint8 (the same ``T`` everywhere; ``T = 1``
            for a still picture), drawn at ``cell_px`` pixels on its longer side (nearest).
        row_labels: one label per row, written left of the row (``""`` for none).
        col_titles: one title per column, written above the first row.
        title: the figure's title; ``frame_titles[t]`` (optional) is added below it on frame ``t``.
        edges: optional ``(T, rows, cols, 3)`` uint8 - the border colour of each cell on each frame
            (the training samples' green = conditioning, red = predicted).
        legend: optional ``dict(image=(h, w, 3) uint8, extent=(left, right, bottom, top), title=...,
            xlabel=..., ylabel=...)``: one more panel right of the first row, with axes in the
            legend's units (the motion colour wheel in px/frame).
        footer: text under the grid (notes on the input, what the colours mean).

    :meth:`frame` renders frame ``t`` to ``(H, W, 3)`` uint8 (the same size for every
    ``t``, both even so that 4:2:0 video codecs take it); :meth:`labels` reads the
    labels back from the figure's own text objects; :meth:`save_png` writes frame ``t``
    with those labels as PNG text metadata (:data:`LABELS_KEY`).
    """

    def __init__(self, cells, *, row_labels, col_titles, title: str = "", frame_titles=None, edges=None,
                 legend: Mapping | None = None, footer: str = "", cell_px: int = 128, dpi: int = 100):
        if not have_matplotlib():
            raise ImportError("LabelledGrid needs matplotlib (the 'video' extra)")
        import matplotlib.pyplot as plt

        self.cells = [[np.asarray(c) for c in row] for row in cells]
        rows, cols = len(self.cells), len(self.cells[0])
        if rows == 0 or cols == 0 or any(len(r) != cols for r in self.cells):
            raise ValueError(f"LabelledGrid: argument 'cells' must be a non-empty rows x cols grid, got {rows} rows "
                             f"of lengths {[len(r) for r in self.cells]}")
        shapes = {c.shape[0] for row in self.cells for c in row}
        if any(c.ndim != 4 or c.shape[-1] != 3 or c.dtype != np.uint8 for row in self.cells for c in row) \
                or len(shapes) != 1:
            raise ValueError("LabelledGrid: argument 'cells' must hold (T, h, w, 3) uint8 arrays of one T, got "
                             f"{sorted({(c.shape, str(c.dtype)) for row in self.cells for c in row})}")
        if len(row_labels) != rows or len(col_titles) != cols:
            raise ValueError(f"LabelledGrid: {rows} rows and {cols} columns need as many row_labels and col_titles, "
                             f"got {len(row_labels)} and {len(col_titles)}")
        self.T = shapes.pop()
        if frame_titles is not None and len(frame_titles) != self.T:
            raise ValueError(f"LabelledGrid: argument 'frame_titles' must hold {self.T} titles, got {len(frame_titles)}")
        if edges is not None:
            edges = np.asarray(edges)
            if edges.shape != (self.T, rows, cols, 3):
                raise ValueError(f"LabelledGrid: argument 'edges' must be ({self.T}, {rows}, {cols}, 3), "
                                 f"got {edges.shape}")
        self.title, self.frame_titles, self.edges = title, frame_titles, edges
        h, w = self.cells[0][0].shape[1:3]
        cw = cell_px / dpi
        ch = cw * h / w
        gap = 0.08
        longest = max((len(line) for label in row_labels for line in str(label).split("\n")), default=0)
        left = 0.3 + 0.075 * longest if longest else 0.15  # ~0.07 in per character at 9 pt
        legend_w = (cw + 0.75) if legend else 0.0
        width = left + cols * cw + (cols - 1) * gap + legend_w + 0.15
        import textwrap

        per_line = max(20, int(width * 13))  # characters of 10 pt text per line of the figure's width
        title = "\n".join(textwrap.fill(part, per_line) for part in title.split("\n")) if title else ""
        footer = "\n".join(textwrap.fill(part, int(per_line * 1.2)) for part in footer.split("\n")) if footer else ""
        frame_lines = max((str(t).count("\n") + 1 for t in frame_titles), default=0) if frame_titles is not None else 0
        n_title = (title.count("\n") + 1 if title else 0) + frame_lines
        top = 0.25 + 0.19 * n_title + 0.15 * max(str(t).count("\n") + 1 for t in col_titles)
        bottom = 0.15 + (0.15 * (footer.count("\n") + 1) + 0.1 if footer else 0)
        height = top + rows * ch + (rows - 1) * gap + bottom
        if legend:  # room for its title above and the axis label below
            height = max(height, top + ch + 0.55 + bottom)
        # whole pixels, both even: every frame has one size and 4:2:0 codecs accept it
        px_w, px_h = 2 * math.ceil(width * dpi / 2), 2 * math.ceil(height * dpi / 2)
        self.figure = fig = plt.figure(figsize=(px_w / dpi, px_h / dpi), dpi=dpi)
        W_in, H_in = px_w / dpi, px_h / dpi
        self.axes = []
        self._images = []
        for r in range(rows):
            line, images = [], []
            for c in range(cols):
                x0 = left + c * (cw + gap)
                y0 = H_in - top - (r + 1) * ch - r * gap
                ax = fig.add_axes((x0 / W_in, y0 / H_in, cw / W_in, ch / H_in))
                images.append(ax.imshow(self.cells[r][c][0], interpolation="nearest"))
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(col_titles[c], fontsize=8 if cw < 1.0 else 9)
                if c == 0 and row_labels[r]:
                    ax.set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=9, labelpad=6)
                for spine in ax.spines.values():
                    spine.set_linewidth(2.5 if edges is not None else 0.8)
                line.append(ax)
            self.axes.append(line)
            self._images.append(images)
        self.legend_axes = None
        if legend:
            x0 = left + cols * (cw + gap) + 0.55
            y0 = H_in - top - ch
            ax = fig.add_axes((x0 / W_in, y0 / H_in, cw / W_in, ch / H_in))
            ax.imshow(legend["image"], extent=legend.get("extent"), interpolation="nearest")
            ax.set_title(legend.get("title", ""), fontsize=8)
            ax.set_xlabel(legend.get("xlabel", ""), fontsize=8)
            ax.set_ylabel(legend.get("ylabel", ""), fontsize=8)
            ax.tick_params(labelsize=7)
            self.legend_axes = ax
        self._title = fig.text(0.5, 1 - 0.12 / H_in, "", ha="center", va="top", fontsize=10)
        self._footer = fig.text(0.15 / W_in, 0.08 / H_in, footer, ha="left", va="bottom", fontsize=8) if footer \
            else None
        self._shown = None
        self.frame(0)

    def _caption(self, t: int) -> str:
        parts = [self.title] if self.title else []
        if self.frame_titles is not None:
            parts.append(str(self.frame_titles[t]))
        return "\n".join(parts)

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` of the figure as ``(H, W, 3)`` uint8."""
        if not 0 <= t < self.T:
            raise ValueError(f"LabelledGrid.frame(): argument 't' must be in [0, {self.T}), got {t}")
        for r, images in enumerate(self._images):
            for c, im in enumerate(images):
                im.set_data(self.cells[r][c][t])
                if self.edges is not None:
                    for spine in self.axes[r][c].spines.values():
                        spine.set_edgecolor(self.edges[t, r, c] / 255.0)
        self._title.set_text(self._caption(t))
        self.figure.canvas.draw()
        self._shown = t
        return np.asarray(self.figure.canvas.buffer_rgba())[..., :3].copy()

    def frames(self) -> np.ndarray:
        """Every frame, ``(T, H, W, 3)`` uint8."""
        return np.stack([self.frame(t) for t in range(self.T)])

    def labels(self) -> dict:
        """The text drawn on the figure (frame last rendered): title, rows, columns, legend, footer."""
        out = {"title": self._title.get_text(),
               "rows": [line[0].get_ylabel() for line in self.axes],
               "columns": [ax.get_title() for ax in self.axes[0]]}
        if self.legend_axes is not None:
            ax = self.legend_axes
            out["legend"] = {"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                             "extent": [float(v) for v in ax.get_images()[0].get_extent()]}
        if self._footer is not None:
            out["footer"] = self._footer.get_text()
        return out

    def save_png(self, path, t: int = 0) -> Path:
        """Frame ``t`` as a PNG at ``path`` with :meth:`labels` as text metadata; closes the figure."""
        import json

        if self._shown != t:
            self.frame(t)
        meta = {"Title": self._title.get_text(), LABELS_KEY: json.dumps(self.labels())}
        return save_figure(self.figure, path, metadata=meta)

    def close(self) -> None:
        import matplotlib.pyplot as plt

        plt.close(self.figure)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
