"""Built-in synthetic video dataset: coloured shapes bouncing on a textured background.

Clip ``i`` is a pure function of ``(seed, split, i)``: nothing is downloaded or
cached, any resolution, clip length and channel count works, and the ground-truth
motion of every shape is exposed (:meth:`SyntheticShapes.render`), so tests can check
that a predicted motion field points the right way.

Scene model (all coordinates in pixels, row ``y`` first; pixel ``(i, j)`` is centred
at ``(i, j)``, the frame spans ``[-0.5, H - 0.5] x [-0.5, W - 0.5]``):

* background: a periodic texture (a sum of 8 plane waves with period ``(2H, 2W)``
  and random orientations, frequencies, phases and per-channel mixing; standard
  deviation 0.15 around a per-clip base colour), values in ``[-0.5, 0.5]``.  With ``pan=True`` the camera pans: the texture moves by the
  clip's ``pan_velocity`` (``(dy, dx)`` pixels per frame) every frame;
* 3 shapes (squares and discs, anti-aliased edges), each with its own colour (every
  channel ``±[0.8, 1]``, distinct sign patterns where the channel count allows),
  half-size (disc radius / half side) and constant speed; velocities of different
  shapes differ by at least half the minimum speed.  A shape bounces elastically
  off the borders: its centre follows a triangle wave between ``half_size - 0.5``
  and ``H - 0.5 - half_size`` on each axis, so it always stays fully inside the
  frame (``bounces=False``: the start is chosen so that the shape crosses the frame
  in a straight line during the clip).  Later shapes are drawn over earlier ones.

Shape velocities are image-space (what is seen in the frames), independent of the
pan.  All values stay in ``[-1, 1]`` (convex combinations of values in ``[-1, 1]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..media import write_video  # the writer of every video; re-exported (tests and users write clips here)
from .base import ClipDataset, DataError, _check_t, as_hw

__all__ = ["SyntheticShapes", "ShapeTracks", "write_video", "SPLITS"]

SPLITS = {None: 0, "train": 0, "val": 1, "test": 2}
_N_WAVES = 8
_TEXTURE_STD = 0.15  # background = base (|base| <= 0.2) + texture (std 0.15, clipped to +-0.3)
_TEXTURE_CLIP = 0.3


@dataclass(frozen=True)
class ShapeTracks:
    """Ground truth of one synthetic clip (``T`` frames, ``S`` shapes).

    positions:  ``(T, S, 2)`` float64, centre ``(y, x)`` of each shape in every frame.
    velocities: ``(T, S, 2)`` float64, ``(dy, dx)`` pixels per frame at frame ``t``
                (right derivative): ``positions[t + 1] - positions[t]`` whenever no
                bounce happens between ``t`` and ``t + 1``; a component flips sign at
                a bounce.
    half_sizes: ``(S,)`` disc radius or half the side of a square, pixels.
    kinds:      ``("square" | "disc", ...)``.
    colors:     ``(S, C)`` float32 colour of each shape.
    pan_velocity: ``(2,)`` ``(dy, dx)`` image-space displacement of the background
                per frame (zeros without pan).
    masks:      ``(T, S, H, W)`` float32 visible coverage of each shape in ``[0, 1]``
                (its anti-aliased footprint minus what later shapes cover).
    """

    positions: np.ndarray
    velocities: np.ndarray
    half_sizes: np.ndarray
    kinds: tuple[str, ...]
    colors: np.ndarray
    pan_velocity: np.ndarray
    masks: np.ndarray


def _triangle(p0: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, t: np.ndarray):
    """Position and velocity at times ``t`` of a point bouncing in ``[lo, hi]`` (broadcasting)."""
    span = hi - lo
    u = np.mod(p0 - lo + v * t, 2.0 * span)
    forward = u < span
    pos = lo + np.where(forward, u, 2.0 * span - u)
    vel = np.where(forward, v, -v)
    return pos, vel


class SyntheticShapes(ClipDataset):
    """Coloured squares and discs bouncing on a textured background, generated from a seed.

    Args:
        resolution: ``int`` or ``(height, width)``.
        t: frames per clip.
        channels: channels per frame (1 = grey, 3 = RGB, any positive count works).
        seed: the dataset seed; clip ``i`` depends only on ``(seed, split, i)``.
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint random streams) or ``None`` (= train).
        length: number of clips (an epoch).
        pan: camera pan - the background texture scrolls.
        num_shapes: ``int`` or ``(lo, hi)`` inclusive range drawn per clip.
        size_range: half-size range as a fraction of ``min(H, W)``.
        speed_range: shape speed range, fraction of ``min(H, W)`` per frame.
        pan_speed_range: pan speed range, fraction of ``min(H, W)`` per frame.
        texture: standard deviation of the background texture around the clip's base
            colour (default 0.15; ``0`` gives a flat background of the base colour).  The
            random draws do not depend on it, so clip ``i`` keeps its shapes and motion.
        bounces: ``False`` places each shape so that it crosses the frame in a straight
            line for the whole clip (constant velocity, no bounce: the start is drawn from
            the positions from which ``t - 1`` steps stay inside, with the same random
            number as the bouncing start); where the clip is too long for that, the shape
            bounces as usual.  Default ``True``.
    """

    kind = "synthetic"

    def __init__(
        self,
        resolution: int | Sequence[int] = 64,
        t: int = 16,
        channels: int = 3,
        *,
        seed: int = 0,
        split: str | None = "train",
        length: int = 10_000,
        pan: bool = False,
        num_shapes: int | tuple[int, int] = 3,
        size_range: tuple[float, float] = (0.08, 0.16),
        speed_range: tuple[float, float] = (0.015, 0.045),
        pan_speed_range: tuple[float, float] = (0.01, 0.03),
        texture: float = _TEXTURE_STD,
        bounces: bool = True,
    ):
        self.height, self.width = as_hw(resolution)
        self.t = _check_t(t)
        if int(channels) != channels or channels <= 0:
            raise DataError(f"channels must be a positive int, got {channels!r}")
        self.channels = int(channels)
        if split not in SPLITS:
            raise DataError(f"split must be one of 'train', 'val', 'test' or None, got {split!r}")
        if int(length) != length or length <= 0:
            raise DataError(f"length must be a positive int, got {length!r}")
        lo, hi = (num_shapes, num_shapes) if isinstance(num_shapes, (int, np.integer)) else num_shapes
        if not 0 <= lo <= hi:
            raise DataError(f"num_shapes must be >= 0 (or a range lo <= hi), got {num_shapes!r}")
        if not 0 < size_range[0] <= size_range[1] < 0.5:
            raise DataError(f"size_range must satisfy 0 < lo <= hi < 0.5, got {size_range!r}")
        if not 0 < speed_range[0] <= speed_range[1]:
            raise DataError(f"speed_range must satisfy 0 < lo <= hi, got {speed_range!r}")
        if isinstance(texture, bool) or not isinstance(texture, (int, float)) or not 0 <= texture <= _TEXTURE_CLIP:
            raise DataError(f"texture must be a number in [0, {_TEXTURE_CLIP}] (the background texture's standard "
                            f"deviation), got {texture!r}")
        self.texture = float(texture)
        if not isinstance(bounces, (bool, np.bool_)):
            raise DataError(f"bounces must be True or False, got {bounces!r}")
        self.bounces = bool(bounces)
        self.seed = int(seed)
        self.split = split
        self.length = int(length)
        self.pan = bool(pan)
        self.num_shapes = (int(lo), int(hi))
        self.size_range = tuple(float(s) for s in size_range)
        self.speed_range = tuple(float(s) for s in speed_range)
        self.pan_speed_range = tuple(float(s) for s in pan_speed_range)

    def __len__(self) -> int:
        return self.length

    def fingerprint(self) -> dict:
        fp = {**super().fingerprint(), "seed": self.seed, "split": self.split, "pan": self.pan}
        # options added later appear only when they differ from their defaults, so that the loader
        # states of runs written before them still match
        if self.texture != _TEXTURE_STD:
            fp["texture"] = self.texture
        if not self.bounces:
            fp["bounces"] = False
        return fp

    def clip(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Clip ``index`` (``rng`` is ignored: the clip is a pure function of the seed and index)."""
        return self._render(index, with_masks=False)[0]

    def __getitem__(self, index: int) -> np.ndarray:
        return self.clip(index)

    def render(self, index: int) -> tuple[np.ndarray, ShapeTracks]:
        """Clip ``index`` and its ground truth (positions, velocities, masks, ...)."""
        return self._render(index, with_masks=True)

    # ------------------------------------------------------------------ generation
    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= int(index) < self.length:
            raise IndexError(f"clip index {index} out of range [0, {self.length})")
        return np.random.default_rng([self.seed, SPLITS[self.split], int(index)])

    def _scene(self, rng: np.random.Generator):
        H, W, C, T = self.height, self.width, self.channels, self.t
        m = min(H, W)
        # background texture: plane waves with integer frequencies on a (2H, 2W) period
        kmax = max(2, min(10, m // 6))  # finest wavelength about 2 * min(H, W) / (kmax * sqrt 2) >= 8.5 px
        k = rng.integers(-kmax, kmax + 1, size=(_N_WAVES, 2))
        k[np.all(k == 0, axis=1)] = (1, 1)
        phase = rng.uniform(0.0, 2.0 * np.pi, size=_N_WAVES)
        amp = 1.0 / np.hypot(k[:, 0], k[:, 1])
        mix = rng.uniform(-1.0, 1.0, size=(_N_WAVES, C)) * amp[:, None]
        # normalise each channel's texture to standard deviation _TEXTURE_STD (a cosine has variance 1/2)
        mix *= self.texture / np.maximum(np.sqrt(0.5 * np.sum(mix * mix, axis=0)), 1e-12)
        base = rng.uniform(-0.2, 0.2, size=C)
        if self.pan:
            speed = rng.uniform(*self.pan_speed_range) * m
            ang = rng.uniform(0.0, 2.0 * np.pi)
            pan_v = np.array([speed * np.sin(ang), speed * np.cos(ang)])
        else:
            pan_v = np.zeros(2)
        # shapes
        n = int(rng.integers(self.num_shapes[0], self.num_shapes[1] + 1))
        kinds = tuple(("square", "disc")[int(i)] for i in rng.integers(0, 2, size=n))
        half = rng.uniform(*self.size_range, size=n) * m
        if C <= 16 and n <= 2**C:
            patterns = rng.choice(2**C, size=n, replace=False)
        else:
            patterns = rng.integers(0, 2 ** min(C, 62), size=n)
        signs = np.where((patterns[:, None] >> np.arange(C)[None, :]) & 1, 1.0, -1.0)
        colors = (signs * rng.uniform(0.8, 1.0, size=(n, C))).astype(np.float32)
        lo = np.stack([half - 0.5, half - 0.5], axis=1)
        hi = np.stack([H - 0.5 - half, W - 0.5 - half], axis=1)
        u0 = rng.uniform(size=(n, 2))
        p0 = lo + u0 * (hi - lo)
        smin, smax = self.speed_range[0] * m, self.speed_range[1] * m
        vel = np.zeros((n, 2))
        for s in range(n):
            for _ in range(100):  # distinct velocities: at least smin / 2 apart
                sp, ang = rng.uniform(smin, smax), rng.uniform(0.0, 2.0 * np.pi)
                v = np.array([sp * np.sin(ang), sp * np.cos(ang)])
                if s == 0 or np.min(np.hypot(*(vel[:s] - v).T)) >= 0.5 * smin:
                    break
            vel[s] = v
        if not self.bounces:  # start where T - 1 straight steps stay inside [lo, hi] (if they fit)
            travel = vel * (T - 1)
            a = lo - np.minimum(travel, 0.0)
            b = hi - np.maximum(travel, 0.0)
            fits = b >= a
            p0 = np.where(fits, a + u0 * (b - a), p0)
        ts = np.arange(T, dtype=np.float64)[:, None, None]
        pos, vels = _triangle(p0[None], vel[None], lo[None], hi[None], ts)
        return (k, phase, mix, base), pan_v, kinds, half, colors, pos, vels

    def _background(self, texture, pan_v) -> np.ndarray:
        k, phase, mix, base = texture
        H, W, T = self.height, self.width, self.t
        nt = T if self.pan else 1
        off = np.arange(nt)[:, None] * pan_v[None, :]  # (nt, 2) displacement of the content
        y = np.arange(H)[None, :] - off[:, :1]  # (nt, H)
        x = np.arange(W)[None, :] - off[:, 1:]  # (nt, W)
        ay = 2.0 * np.pi * k[:, 0, None, None] * y[None] / (2 * H) + phase[:, None, None]  # (K, nt, H)
        ax = 2.0 * np.pi * k[:, 1, None, None] * x[None] / (2 * W)  # (K, nt, W)
        # cos(ay + ax) = cos ay cos ax - sin ay sin ax, as two batched outer products
        waves = (
            np.cos(ay)[..., :, None] * np.cos(ax)[..., None, :] - np.sin(ay)[..., :, None] * np.sin(ax)[..., None, :]
        )
        bg = base + np.clip(np.einsum("kthw,kc->thwc", waves, mix), -_TEXTURE_CLIP, _TEXTURE_CLIP)
        return np.broadcast_to(bg.astype(np.float32), (T, H, W, self.channels))

    def _render(self, index: int, with_masks: bool):
        texture, pan_v, kinds, half, colors, pos, vels = self._scene(self._rng(index))
        H, W = self.height, self.width
        frames = np.array(self._background(texture, pan_v))
        yy = np.arange(H, dtype=np.float32)[None, :, None]
        xx = np.arange(W, dtype=np.float32)[None, None, :]
        alphas = []
        for s, kind in enumerate(kinds):
            dy = yy - pos[:, s, 0, None, None].astype(np.float32)
            dx = xx - pos[:, s, 1, None, None].astype(np.float32)
            if kind == "disc":
                dist = np.sqrt(dy * dy + dx * dx)
            else:
                dist = np.maximum(np.abs(dy), np.abs(dx))
            a = np.clip(np.float32(half[s]) + np.float32(0.5) - dist, 0.0, 1.0)[..., None]  # (T, H, W, 1)
            frames = frames * (1.0 - a) + colors[s] * a
            alphas.append(a[..., 0])
        masks = None
        if with_masks:
            n = len(kinds)
            masks = np.zeros((self.t, n, H, W), dtype=np.float32)
            cover = np.zeros((self.t, H, W), dtype=np.float32)  # coverage by shapes drawn later
            for s in range(n - 1, -1, -1):
                masks[:, s] = alphas[s] * (1.0 - cover)
                cover = cover + alphas[s] * (1.0 - cover)
            tracks = ShapeTracks(pos, vels, half, kinds, colors, pan_v, masks)
            return np.clip(frames, -1.0, 1.0, out=frames), tracks
        return np.clip(frames, -1.0, 1.0, out=frames), None


