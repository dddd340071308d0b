"""Shared pieces of the data pipeline: the dataset interface, errors, value and size helpers.

A dataset is a sequence of ``len(ds)`` clip sources.  ``ds.clip(i, rng)`` returns
clip ``i`` as a float32 array ``(T, H, W, C)`` in ``[-1, 1]``; every random choice it
makes (start frame, crop offset) is drawn from ``rng``, so the same ``(i, rng state)``
always gives the same clip.  A source that cannot be read raises :class:`SkipClip`;
the :class:`~trivd_core.data.loader.Loader` then substitutes another clip
deterministically and reports the skip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "ClipDataset",
    "DataError",
    "DataWarning",
    "SkipClip",
    "readable_clips",
    "as_hw",
    "adapt_channels",
    "area_resize",
    "resize_crop",
    "scaled_size",
    "to_unit_range",
]


class DataError(ValueError):
    """A dataset that cannot be used at all: missing or empty path, bad layout, bad options."""


class DataWarning(UserWarning):
    """A recoverable data problem (e.g. an unreadable video that was skipped)."""


class SkipClip(Exception):
    """Raised by ``ClipDataset.clip`` for a source that cannot give a clip (corrupt, too short).

    ``permanent``: the source gives no clip from any start (not a video, no stream, too short), as opposed
    to a failure of this start only (a truncated or damaged stretch of a partly readable video).  Datasets
    may remember permanent failures, never the others: skipping must stay a pure function of
    ``(source, start)``, or batches would depend on which clips were read before.
    """

    def __init__(self, reason: str = "", *, permanent: bool = False):
        super().__init__(reason)
        self.permanent = bool(permanent)


def readable_clips(dataset, n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[tuple[int, str]]]:
    """The first ``n`` clips of ``dataset`` that can be read, one per source first: ``(clips, skipped)``.

    Indices are visited in order, but an index whose source (``dataset.describe(index)``:
    the file of a video folder with ``clips_per_video > 1``) already gave a clip - or
    already failed - is put off until every source had its turn; so ``n`` clips show ``n``
    different videos whenever the dataset has that many.  ``skipped`` lists
    ``(index, reason)`` of the indices that raised :class:`SkipClip` on the way (the same
    rule as the loader's: an unreadable source is passed over, never a crash).  Fewer
    than ``n`` clips come back only when the dataset has fewer readable ones; none at
    all is a :class:`DataError`.
    """
    describe = getattr(dataset, "describe", None)
    clips, skipped, later = [], [], []
    seen: set[str] = set()  # sources tried once (read or failed)
    bad: set[str] = set()

    def take(i: int, source) -> None:
        try:
            clips.append(dataset.clip(i, rng))
        except SkipClip as exc:
            skipped.append((i, str(exc)))
            if source is not None and getattr(exc, "permanent", False):
                bad.add(source)

    for i in range(len(dataset)):
        if len(clips) == n:
            break
        source = describe(i) if describe is not None else None
        if source is not None and source in seen:
            later.append((i, source))
            continue
        if source is not None:
            seen.add(source)
        take(i, source)
    for i, source in later:  # the second and further clips of sources, in index order
        if len(clips) == n:
            break
        if source not in bad:
            take(i, source)
    if not clips:
        shown = "; ".join(f"{describe(i) if describe else i}: {r}" for i, r in skipped[:3])
        raise DataError(f"none of the {len(dataset)} sources could be read ({shown}"
                        f"{'; ...' if len(skipped) > 3 else ''})")
    return clips, skipped


def as_hw(resolution: int | Sequence[int]) -> tuple[int, int]:
    """``64 -> (64, 64)``; ``(h, w) -> (h, w)``; both positive."""
    if isinstance(resolution, (int, np.integer)):
        hw = (int(resolution), int(resolution))
    else:
        hw = tuple(int(r) for r in resolution)
        if len(hw) != 2:
            raise DataError(f"resolution must be an int or (height, width), got {resolution!r}")
    if min(hw) <= 0:
        raise DataError(f"resolution must be positive, got {resolution!r}")
    return hw  # type: ignore[return-value]


def _check_t(t: int) -> int:
    if int(t) != t or t <= 0:
        raise DataError(f"clip length t must be a positive int, got {t!r}")
    return int(t)


class ClipDataset:
    """Interface of every dataset: ``len(ds)``, ``ds.clip(i, rng)``, ``ds.shape``.

    Subclasses set ``t``, ``height``, ``width``, ``channels`` and implement
    ``__len__``, ``clip`` and ``describe``.
    """

    kind = "base"
    t: int
    height: int
    width: int
    channels: int

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def clip(self, index: int, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - interface
        """Clip ``index`` as float32 ``(T, H, W, C)`` in ``[-1, 1]``; random choices from ``rng``."""
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """A human-readable name of source ``index`` (a file path for videos), for warnings."""
        return f"{self.kind}[{index}]"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The shape of one clip, ``(T, H, W, C)``."""
        return (self.t, self.height, self.width, self.channels)

    def fingerprint(self) -> dict:
        """What must not change between a checkpoint and its resume (checked by the loader)."""
        return {"kind": self.kind, "len": len(self), "shape": list(self.shape)}

    def __repr__(self) -> str:
        t, h, w, c = self.shape
        return f"{type(self).__name__}(len={len(self)}, t={t}, resolution=({h}, {w}), channels={c})"


def to_unit_range(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map values in ``[lo, hi]`` linearly to float32 ``[-1, 1]``."""
    x = np.asarray(x, dtype=np.float32)
    scale = np.float32(2.0 / (hi - lo))
    return x * scale - np.float32(1.0 + 2.0 * lo / (hi - lo))


# ITU-R BT.601 luma weights, for colour -> grey.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def adapt_channels(x: np.ndarray, channels: int | None, grey: str = "repeat") -> np.ndarray:
    """Bring the last axis of ``x`` to ``channels``.

    ``channels=None`` keeps ``x``.  A grey input (C=1) is repeated to ``channels``
    (``grey="repeat"``) or kept with C=1 (``grey="keep"``).  RGB to 1 channel uses
    BT.601 luma.  Any other mismatch is an error.
    """
    c = x.shape[-1]
    if channels is None or channels == c:
        return x
    if c == 1:
        if grey == "keep":
            return x
        return np.repeat(x, channels, axis=-1)
    if c == 3 and channels == 1:
        return (x @ _LUMA)[..., None].astype(np.float32)
    raise DataError(f"cannot convert {c}-channel data to {channels} channels (supported: 1 -> any, 3 -> 1)")


def check_grey(grey: str) -> str:
    if grey not in ("repeat", "keep"):
        raise DataError(f"grey must be 'repeat' or 'keep', got {grey!r}")
    return grey


def scaled_size(h: int, w: int, out_hw: tuple[int, int]) -> tuple[int, int]:
    """The size ``(h', w')`` of an ``h x w`` frame resized, aspect kept, to just cover ``out_hw``.

    For a square target this makes the smaller side equal the target (appendix E.2).
    """
    th, tw = out_hw
    s = max(th / h, tw / w)
    return max(th, int(round(h * s))), max(tw, int(round(w * s)))


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of area (box) resampling: output cell ``i`` covers input ``[i*s, (i+1)*s)``."""
    s = n_in / n_out
    edges_lo = np.arange(n_out)[:, None] * s
    edges_hi = edges_lo + s
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(edges_hi, j + 1) - np.maximum(edges_lo, j), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def area_resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average resize of ``(..., H, W, C)`` to ``(..., h, w, C)`` (separable box filter, float32).

    Each output pixel is the mean of the input area it covers (fractional overlaps
    weighted), which is exact for integer factors and alias-free when shrinking.
    """
    h, w = size
    H, W = x.shape[-3], x.shape[-2]
    if (H, W) == (h, w):
        return np.asarray(x, dtype=np.float32)
    my, mx = _area_matrix(H, h), _area_matrix(W, w)
    return np.einsum("ih,...hwc,jw->...ijc", my, np.asarray(x, dtype=np.float32), mx, optimize=True)


def random_offsets(rng: np.random.Generator, size: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner ``(y, x)`` of a uniformly random ``out_hw`` window in a ``size`` frame."""
    return int(rng.integers(0, size[0] - out_hw[0] + 1)), int(rng.integers(0, size[1] - out_hw[1] + 1))


def resize_crop(x: np.ndarray, out_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Appendix E.2 on an in-memory clip ``(T, H, W, C)``: area-resize to cover ``out_hw``, random crop."""
    H, W = x.shape[-3], x.shape[-2]
    if (H, W) == tuple(out_hw):
        return np.asarray(x, dtype=np.float32)
    size = scaled_size(H, W, out_hw)
    y0, x0 = random_offsets(rng, size, out_hw)
    return area_resize(x, size)[..., y0 : y0 + out_hw[0], x0 : x0 + out_hw[1], :]
