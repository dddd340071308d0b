"""Run artifacts: sample videos (GIF, no dependencies; MP4 through PyAV when installed) and the loss plot.

* :func:`write_gif` - an animated GIF written with NumPy only (a 6x7x6 colour cube and
  LZW with fixed 9-bit codes, a clear code every 250 pixels: valid GIF89a that every
  decoder reads; larger than an optimally compressed file, which does not matter for
  a few 32x32 frames).
* :func:`sample_grid` - the frames of a sample video: one row per sample, columns
  ground truth | G | EMA of G; conditioning frames get a green border, predicted
  frames a red one.
* :func:`plot_losses` - ``loss.png`` from ``metrics.jsonl``: matplotlib (Agg) when
  installed, otherwise a plain NumPy rendering of the curves (no axis labels) so a
  run always has its plot.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write_bytes

__all__ = ["to_uint8", "sample_grid", "write_gif", "write_png", "read_metrics", "plot_losses", "upscale",
           "contact_sheet", "sample_scale"]

_LEVELS = (6, 7, 6)  # 252 colours
_CLEAR_EVERY = 250


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Frames in ``[-1, 1]`` -> ``uint8`` in ``[0, 255]`` (clipped); grey (C=1) becomes RGB."""
    x = np.asarray(x, dtype=np.float32)
    x = np.clip((x + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x


def sample_grid(cond: np.ndarray, truth: np.ndarray, predictions: Sequence[np.ndarray], *, border: int = 1,
                gap: int = 2) -> np.ndarray:
    """Frames ``(T, H', W', 3)`` uint8 of a sample video.

    cond ``(B, t_cond, H, W, C)``, truth ``(B, t_pred, H, W, C)`` and each prediction
    ``(B, t_pred, H, W, C)``, all in ``[-1, 1]``.  Row ``b``: truth, then each
    prediction, side by side; frame ``t`` of the video shows time ``t`` of every clip.
    """
    cond, truth = np.asarray(cond), np.asarray(truth)
    B, tc, H, W, _ = cond.shape
    columns = [np.concatenate([cond, truth], axis=1)] + [np.concatenate([cond, np.asarray(p)], axis=1)
                                                         for p in predictions]
    T = columns[0].shape[1]
    ch, cw = H + 2 * border, W + 2 * border
    rows, cols = B, len(columns)
    out = np.full((T, rows * ch + (rows - 1) * gap, cols * cw + (cols - 1) * gap, 3), 255, dtype=np.uint8)
    for t in range(T):
        colour = (40, 170, 40) if t < tc else (200, 40, 40)
        for b in range(rows):
            for j, video in enumerate(columns):
                y, x = b * (ch + gap), j * (cw + gap)
                out[t, y:y + ch, x:x + cw] = colour
                out[t, y + border:y + border + H, x + border:x + border + W] = to_uint8(video[b, t])
    return out


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


def sample_scale(resolution: int) -> int:
    """The enlargement that makes a ``resolution`` panel at least 128 px (as ``trivd predict`` does)."""
    return max(1, -(-128 // int(resolution)))


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


def read_metrics(path) -> list[dict]:
    """The records of a ``metrics.jsonl`` (a torn last line, e.g. after a kill, is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


_CURVES = (("d_loss", (31, 119, 180)), ("g_loss", (255, 127, 14)))


def _raster_plot(records: list[dict], size=(360, 640)) -> np.ndarray:
    H, W = size
    img = np.full((H, W, 3), 255, np.uint8)
    m = 20
    img[m:H - m, m] = img[H - m - 1, m:W - m] = 0
    series = [(np.asarray([r["step"] for r in records if k in r], float),
               np.asarray([r[k] for r in records if k in r], float), c) for k, c in _CURVES]
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


def save_figure(fig, path) -> Path:
    """A matplotlib figure as a PNG at ``path`` (written atomically), then closed."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def plot_losses(metrics_path, out_path, *, title: str = "trivd train") -> Path:
    """``loss.png``: D and G losses against the step (matplotlib/Agg if installed, else a bare NumPy plot)."""
    records = read_metrics(metrics_path)
    out_path = Path(out_path)
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return write_png(out_path, _raster_plot(records))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    drawn = False
    for key, colour in _CURVES:
        pts = [(r["step"], r[key]) for r in records if key in r]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, label=key, color=np.asarray(colour) / 255.0, linewidth=1)
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if drawn:  # before the first logged step there is nothing to label
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, out_path)
