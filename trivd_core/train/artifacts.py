"""Run artifacts: the sample grids of a training run and its loss plot (the writers are :mod:`trivd_core.media`).

* :func:`write_samples` - ``samples/step_N.gif`` and ``.png`` of a run: with matplotlib
  (the ``video`` extra) labelled figures (:class:`~trivd_core.media.LabelledGrid`): the
  GIF has a row per fixed clip and the columns ground truth | G | EMA of G, a frame
  title "frame t of T: conditioning / predicted"; the PNG has a row per clip and
  source (its label says which) and a column per frame (titled with its index and
  role).  Without matplotlib, the unlabelled :func:`sample_grid` and its contact sheet.
* :func:`sample_grid` - the frames of a sample video: one row per sample, columns
  ground truth | G | EMA of G; conditioning frames get a green border, predicted
  frames a red one.
* :func:`plot_losses` - ``loss.png`` from ``metrics.jsonl``: matplotlib (Agg) when
  installed, otherwise a plain NumPy rendering of the curves (no axis labels) so a
  run always has its plot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..media import (
    LabelledGrid,
    contact_sheet,
    have_matplotlib,
    raster_plot,
    save_figure,
    to_uint8,
    upscale,
    write_gif,
    write_png,
)

__all__ = ["to_uint8", "sample_grid", "write_gif", "write_png", "read_metrics", "plot_losses", "upscale",
           "contact_sheet", "sample_scale", "write_samples", "sample_figures", "SOURCES"]

#: The sources of a sample picture, in column (GIF) / row (PNG) order: the data, G's live weights, their EMA.
SOURCES = ("ground truth", "G", "EMA of G")
_COND, _PRED = (40, 170, 40), (200, 40, 40)  # border colours: conditioning frames green, predicted red


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


def sample_figures(cond: np.ndarray, truth: np.ndarray, predictions: Sequence[np.ndarray], *, step: int,
                   scale: int, sources: Sequence[str] = SOURCES) -> tuple[LabelledGrid, LabelledGrid]:
    """The labelled GIF figure and PNG figure of :func:`write_samples` (matplotlib; the caller closes them).

    Shapes as :func:`sample_grid`; ``sources`` names the truth and each prediction.
    """
    cond, truth = np.asarray(cond), np.asarray(truth)
    B, tc = cond.shape[:2]
    videos = [np.concatenate([cond, truth], axis=1)] + [np.concatenate([cond, np.asarray(p)], axis=1)
                                                        for p in predictions]
    if len(sources) != len(videos):
        raise ValueError(f"sample_figures(): {len(videos)} sources need as many names, got {list(sources)}")
    T = videos[0].shape[1]
    role = ["conditioning" if t < tc else "predicted" for t in range(T)]
    colour = np.asarray([_COND if t < tc else _PRED for t in range(T)], np.uint8)
    u8 = [to_uint8(v) for v in videos]  # (B, T, H, W, 3) each
    key = "green border: conditioning frame (given to G), red: predicted"
    H = cond.shape[2]
    animated = LabelledGrid(
        [[u8[j][b] for j in range(len(videos))] for b in range(B)],
        row_labels=[f"clip {b + 1}" for b in range(B)], col_titles=list(sources),
        title=f"step {step}: {B} fixed clips", frame_titles=[f"frame {t + 1} of {T}: {role[t]}" for t in range(T)],
        edges=np.broadcast_to(colour[:, None, None], (T, B, len(videos), 3)), footer=key,
        cell_px=H * scale)
    still = LabelledGrid(
        [[u8[j][b, t][None] for t in range(T)] for b in range(B) for j in range(len(videos))],
        row_labels=[f"clip {b + 1}\n{name}" for b in range(B) for name in sources],
        col_titles=[f"frame {t + 1}\n{role[t]}" for t in range(T)],
        title=f"step {step}: rows = each clip's {', '.join(sources)}; columns = its {T} frames",
        edges=np.broadcast_to(colour[None, None, :], (1, B * len(videos), T, 3)), footer=key,
        cell_px=max(80, min(128, 2 * H)))
    return animated, still


def write_samples(gif_path, png_path, cond: np.ndarray, truth: np.ndarray, predictions: Sequence[np.ndarray], *,
                  step: int, scale: int, fps: float = 3.0, sources: Sequence[str] = SOURCES) -> None:
    """``samples/step_N.gif`` and ``.png`` (module doc): labelled figures with matplotlib, else unlabelled grids."""
    if not have_matplotlib():
        frames = upscale(sample_grid(cond, truth, predictions), scale)
        write_gif(gif_path, frames, fps=fps)
        write_png(png_path, contact_sheet(frames))
        return
    animated, still = sample_figures(cond, truth, predictions, step=step, scale=scale, sources=sources)
    try:
        write_gif(gif_path, animated.frames(), fps=fps)
        still.save_png(png_path)
    finally:
        animated.close()
        still.close()


def sample_scale(resolution: int) -> int:
    """The enlargement that makes a ``resolution`` panel at least 128 px (as ``trivd predict`` does)."""
    return max(1, -(-128 // int(resolution)))


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


def plot_losses(metrics_path, out_path, *, title: str = "trivd train") -> Path:
    """``loss.png``: D and G losses against the step (matplotlib/Agg if installed, else a bare NumPy plot)."""
    records = read_metrics(metrics_path)
    out_path = Path(out_path)
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return write_png(out_path, raster_plot(records, _CURVES))
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
