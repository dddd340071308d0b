"""What the tutorial scripts share: where figures go, the quick mode of the test, one way to save a figure.

* ``TRIVD_TUTORIAL_OUT``: the folder the figures are written to (default: ``tutorial-figures/`` in
  the current folder, so that running a chapter leaves the committed figures alone).
* ``TRIVD_TUTORIAL_UPDATE=1``: write into ``img/`` beside the scripts instead - the committed figures,
  regenerated on purpose (``tests/test_tutorial.py`` checks them against the code).
* ``TRIVD_TUTORIAL_QUICK=1``: smaller sizes and fewer steps, so that ``tests/test_tutorial.py`` runs
  every chapter in seconds; the pictures are then smaller, the code path the same.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

HERE = Path(__file__).resolve().parent
OUT = Path(os.environ.get("TRIVD_TUTORIAL_OUT") or
           (HERE / "img" if os.environ.get("TRIVD_TUTORIAL_UPDATE") == "1" else Path.cwd() / "tutorial-figures"))
QUICK = os.environ.get("TRIVD_TUTORIAL_QUICK") == "1"
OUT.mkdir(parents=True, exist_ok=True)


def figure_data(fig) -> dict[str, np.ndarray]:
    """The numbers a figure draws: every panel's images, lines and arrow fields (stored as float32).

    Keys ``ax{i}/image{j}``, ``ax{i}/line{j}`` (the ``(x, y)`` points) and ``ax{i}/arrows{j}`` (offsets,
    then the ``U``, ``V`` of a quiver); text and styling are not data.  ``tests/test_tutorial.py`` compares
    a fresh run's with the committed ``img/NAME.npz``, so a committed figure is what the current code draws.
    """
    out: dict[str, np.ndarray] = {}
    for i, ax in enumerate(fig.axes):
        for j, im in enumerate(ax.get_images()):
            out[f"ax{i}/image{j}"] = np.ma.filled(np.ma.asarray(im.get_array(), dtype=np.float64), np.nan)
        for j, line in enumerate(ax.get_lines()):
            out[f"ax{i}/line{j}"] = np.asarray(line.get_xydata(), dtype=np.float64)
        for j, coll in enumerate(c for c in ax.collections if hasattr(c, "U")):
            out[f"ax{i}/arrows{j}"] = np.concatenate([np.asarray(coll.get_offsets(), np.float64).ravel(),
                                                      np.ravel(coll.U).astype(np.float64),
                                                      np.ravel(coll.V).astype(np.float64)])
    return out


def save(fig, name: str) -> Path:
    """Write ``fig`` as ``OUT/name`` (PNG) and the numbers it draws as ``OUT/<stem>.npz``; say where."""
    path = OUT / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    np.savez_compressed(path.with_suffix(".npz"), **{k: v.astype(np.float32) for k, v in figure_data(fig).items()})
    print(f"wrote {path}")
    return path


def show(ax, image, title: str, *, cmap="gray", vmin=None, vmax=None):
    """One image panel: a ``(H, W)`` map (colour map ``cmap``) or an ``(H, W, 3)`` picture in ``[-1, 1]``."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 3:
        ax.imshow(np.clip((image + 1) / 2, 0, 1) if image.dtype.kind == "f" else image, interpolation="nearest")
    else:
        ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def arrows(ax, flow, *, step: int = 1, colour="red", scale: float = 1.0):
    """Draw a ``(H, W, 2)`` field ``(dy, dx)`` as arrows (rows point down, as in the images)."""
    flow = np.asarray(flow)
    H, W = flow.shape[:2]
    yy, xx = np.mgrid[0:H:step, 0:W:step]
    dy, dx = flow[::step, ::step, 0], flow[::step, ::step, 1]
    keep = np.hypot(dy, dx) > 1e-9  # zero vectors would be drawn as dots
    xx, yy, dx, dy = xx[keep], yy[keep], dx[keep], dy[keep]
    ax.quiver(xx, yy, dx, dy, color=colour, angles="xy", scale_units="xy", scale=1.0 / scale, width=0.006)


def outline(ax, mask, colour, *, style="-"):
    """Draw the 0.5 level line of a ``(H, W)`` map (the edge of a shape) on ``ax``."""
    ax.contour(np.asarray(mask, np.float64), levels=[0.5], colors=[colour], linestyles=[style], linewidths=1.2)


__all__ = ["OUT", "QUICK", "HERE", "plt", "save", "show", "arrows", "outline"]
