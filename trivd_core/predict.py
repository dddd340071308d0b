r"""Prediction from a real clip (``trivd predict``) and the multi-scale motion field of Fig. 3.

Motion field (section 4.4, Fig. 3).  Every stage ``i`` of G (resolution
``r_i = R / 2^(3-i)``: ``R/8, R/4, R/2``) warps its recurrent state once per predicted
step with per-pixel weights ``W`` over a ``k x k`` grid (Eq. 11; for TSRU and
K-TrajGRU ``W = factorized_kernels(w, S)``, Eq. 12).  Reading ``W[i, j, :]`` as a
distribution over the grid displacements, :func:`~trivd_core.warping.expected_flow`
gives the expected displacement ``(dy, dx)`` at each pixel - the place Eq. 11 samples
*from* (a backward, "pull" flow, in stage pixels).  :func:`motion_fields` combines
the selected stages coarse to fine with :func:`~trivd_core.warping.combine_flows`
(upsample, multiply by the factor, add the finer field), brings the result to the
frame resolution the same way (nearest upsampling times the factor) and negates it:

    motion_t = -f * up_f( combine_flows([F_t^(i) for i in stages]) ),   f = R / r_(last stage)

which is the displacement of the *content* from frame ``t-1`` to frame ``t`` in frame
pixels (``(dy, dx)``, rows down, columns right), drawn on the grid of frame ``t``.
Step ``t``'s transformation turns the previous state (for the first predicted
frame: the encoder's state of the conditioning frames) into the state of predicted
frame ``t``.

*Which stages.*  The paper combines "the two lower levels" of its 128x128 model
(16x16 and 32x32).  What a stage can represent depends on its grid, not on its
index: a 3x3 warp moves content by at most one cell (``R / r_i`` frame pixels) per
step, anything less only as a blend.  So the default, :func:`default_stages`, is the
two coarsest stages of at least 16x16: the paper's ``(0, 1)`` at 128x128, ``(1, 2)``
at 64x64, ``(2,)`` at 32x32 (where the 4x4 and 8x8 stages were measured to stay at
chance, docs/training.md).  Any subset can be asked for (``stages="all"`` or
``(0, 1, 2)``, ``trivd predict --motion-stages``).

Rendering (:func:`flow_to_rgb`): HSV with hue = direction of the motion (hue 0 / red =
right, 1/4 / yellow-green = down, 1/2 / cyan = left, 3/4 / violet = up: angle
``atan2(dy, dx)`` with rows pointing down), value = speed divided by a fixed speed
scale (black = no motion), full saturation.  The scale is :func:`max_speed`, the
largest displacement the combined stages can express (a ``k x k`` warp moves content
by at most ``k // 2`` cells per axis, a cell of stage ``i`` is ``R / r_i`` frame
pixels): so a near-static clip stays dark instead of being stretched to full
brightness by its own largest value, and one colour means one speed in every clip.
:func:`color_wheel` drawn in px/frame is the legend.

:func:`motion_agreement` scores a field against the synthetic dataset's ground truth
(:class:`~trivd_core.data.ShapeTracks`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from array_api_compat import array_namespace

from . import ops
from .cells import WARPING_KINDS
from .data import DataError, read_frames
from .evaluate import EvalError, Model
from .generator import N_STAGES
from .media import color_wheel, flow_to_rgb, write_gif, write_video
from .warping import combine_flows, expected_flow

__all__ = [
    "PredictError",
    "NoShapePixels",
    "shape_centroid",
    "centroid_errors",
    "PAPER_STAGES",
    "default_stages",
    "WARPING_KINDS",
    "Prediction",
    "read_input",
    "source_size",
    "predict_clip",
    "predict_batch",
    "read_clips",
    "check_motion_cell",
    "motion_fields",
    "max_speed",
    "input_notes",
    "labelled_prediction",
    "flow_to_rgb",
    "color_wheel",
    "motion_agreement",
    "render_prediction",
    "write_frames",
    "VIDEO_SUFFIXES",
]

#: The paper's choice for Fig. 3 (a 128x128 model): the two lowest-resolution levels.  Kept as a
#: named constant; the default is :func:`default_stages`, which gives this at 128x128.
PAPER_STAGES = (0, 1)
#: A stage whose grid is coarser than this carries no readable motion at the data's speeds (see default_stages).
MIN_MOTION_RESOLUTION = 16


def default_stages(config) -> tuple[int, ...]:
    """The stages whose motion field is read by default: the two coarsest with ``r_i >= 16``.

    A 3x3 warp at stage ``i`` (resolution ``r_i = R / 2^(3 - i)``) moves content by at
    most one cell, ``R / r_i`` frame pixels, per step, and any smaller displacement only
    as a blend of neighbours.  On a grid coarser than 16x16 the typical motion of a clip
    (a few frame pixels per frame) is a small fraction of a cell, and in trained models
    such stages kept near-uniform or near-identity kernels (docs/training.md measures
    the per-stage agreement with the true motion).  At the paper's 128x128 this rule
    gives the paper's two lowest levels ``(0, 1)`` (16x16 and 32x32); at 64x64 it gives
    ``(1, 2)``; at 32x32 the single finest stage ``(2,)``.
    """
    R = int(config.resolution)
    r = [R // 2 ** (N_STAGES - i) for i in range(N_STAGES)]
    fine = [i for i in range(N_STAGES) if r[i] >= MIN_MOTION_RESOLUTION] or [N_STAGES - 1]
    return tuple(fine[:2])
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")
_PRED_STREAM = 0x70726564  # "pred"


class PredictError(EvalError):
    """An input, option or run that ``trivd predict`` cannot use (a usage error)."""


# ---------------------------------------------------------------------------
# motion field


def _stage_list(fn: str, stages, available: list[int]) -> list[int]:
    if stages is None or (isinstance(stages, str) and stages == "all"):
        return list(available)
    if isinstance(stages, (int, np.integer)) and not isinstance(stages, bool):
        stages = (int(stages),)
    if not isinstance(stages, Sequence) or isinstance(stages, str) or not stages:
        raise ValueError(f"{fn}(): argument 'stages' must be 'all', None or a non-empty sequence of stage indices "
                         f"({available}), got {stages!r}")
    out = []
    for s in stages:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or int(s) not in available:
            raise ValueError(f"{fn}(): argument 'stages' must hold stage indices among {available}, got {stages!r}")
        out.append(int(s))
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}(): argument 'stages' lists a stage twice: {stages!r}")
    return sorted(out)


def motion_fields(warps: Mapping, *, stages=PAPER_STAGES, resolution: int | None = None):
    """Content motion ``(B, T, R, R, 2)`` as ``(dy, dx)`` frame pixels from ``generate(..., return_warps=True)``.

    Args:
        warps: the third output of :func:`~trivd_core.generator.generate` with
            ``return_warps=True`` (``{"stage{i}": {"W": (B, T, r_i, r_i, k*k), ...}}``),
            any array namespace.
        stages: stage indices to combine (coarse to fine), ``"all"`` or ``None`` for
            every stage; default the paper's two lowest levels ``(0, 1)``.
        resolution: frame resolution ``R``; default ``r_i * 2^(3 - i)`` of the
            coarsest selected stage ``i`` (G's layout).

    Returns:
        ``-f * upsample_nearest(combine_flows([expected_flow(W_i) ...]), f)`` with
        ``f = R / r_last``: the displacement of the content from frame ``t-1`` to
        frame ``t`` (module docstring), same namespace and dtype as ``W``.
    """
    fn = "motion_fields"
    if not isinstance(warps, Mapping) or not warps:
        raise ValueError(f"{fn}(): argument 'warps' must be the non-empty dict of generate(..., return_warps=True) "
                         f"({{'stage0': {{'W': ...}}, ...}}), got {type(warps).__name__}")
    available = []
    for key in warps:
        if not (isinstance(key, str) and key.startswith("stage") and key[5:].isdigit()):
            raise ValueError(f"{fn}(): argument 'warps' must have keys 'stage0', 'stage1', ...; got key {key!r}")
        available.append(int(key[5:]))
    available.sort()
    chosen = _stage_list(fn, stages, available)
    fields = []
    B = T = None
    for i in chosen:
        entry = warps[f"stage{i}"]
        if not isinstance(entry, Mapping) or "W" not in entry:
            raise ValueError(
                f"{fn}(): argument 'warps' has no transformation 'W' at stage{i}: the generator's recurrent cell does "
                f"not warp (ConvGRU and ConvLSTM have no motion field; use one of {', '.join(WARPING_KINDS)})"
            )
        W = entry["W"]
        shape = tuple(W.shape)
        if len(shape) != 5 or shape[2] != shape[3]:
            raise ValueError(f"{fn}(): argument warps['stage{i}']['W'] must be (B, T, r, r, k*k), got shape {shape}")
        if B is None:
            B, T = shape[0], shape[1]
        elif shape[:2] != (B, T):
            raise ValueError(f"{fn}(): every stage must have the same (B, T) = ({B}, {T}); stage{i} has {shape[:2]}")
        k = math.isqrt(shape[4])
        if k * k != shape[4]:
            raise ValueError(f"{fn}(): argument warps['stage{i}']['W'] must hold k*k taps on its last axis, got {shape}")
        xp = array_namespace(W)
        fields.append(expected_flow(xp.reshape(W, (B * T, shape[2], shape[3], shape[4])), k))
    first = chosen[0]
    R = int(resolution) if resolution is not None else fields[0].shape[1] * 2 ** (N_STAGES - first)
    combined = combine_flows(fields)
    r_last = combined.shape[1]
    if R % r_last:
        raise ValueError(f"{fn}(): argument 'resolution' ({R}) must be a multiple of the finest stage's "
                         f"resolution ({r_last})")
    f = R // r_last
    if f > 1:
        combined = ops.upsample_nearest(combined, f) * f
    xp = array_namespace(combined)
    return xp.reshape(-combined, (B, T, R, R, 2))


def max_speed(warps: Mapping, *, stages, resolution: int) -> float:
    """The largest content speed (frame px per frame) that :func:`motion_fields` of ``stages`` can show.

    Stage ``i`` (grid ``r_i``, a ``k_i x k_i`` warp) moves content by at most
    ``k_i // 2`` cells along each axis, a cell being ``R / r_i`` frame pixels; the
    combined field adds the stages, so
    ``v_max = sqrt(2) * sum_i (R / r_i) * (k_i // 2)`` (a corner tap on every stage).
    """
    chosen = _stage_list("max_speed", stages, sorted(int(k[5:]) for k in warps))
    total = 0.0
    for i in chosen:
        shape = tuple(warps[f"stage{i}"]["W"].shape)
        total += (int(resolution) / shape[2]) * (math.isqrt(shape[4]) // 2)
    return math.sqrt(2.0) * total


class NoShapePixels(ValueError):
    """Frame ``t`` of a clip shows no pixel of any shape (every shape left the picture): nothing to score.

    The one condition under which :func:`motion_agreement` has no value; callers that average over
    frames skip exactly this and let every other error (a wrong flow shape, a bad ``t``) surface.
    """


def motion_agreement(flow, tracks, t: int, *, coverage: float = 0.5) -> float:
    """Fraction of shape pixels whose motion vector has a positive cosine with the shape's true velocity.

    Args:
        flow: ``(H, W, 2)`` content motion ``(dy, dx)`` drawn on frame ``t`` (the
            motion from frame ``t-1`` to ``t``, as :func:`motion_fields` returns it;
            for predicted step ``j`` of a clip, ``t = t_cond + j``).
        tracks: the clip's :class:`~trivd_core.data.ShapeTracks` (``SyntheticShapes.render``).
        t: frame index, ``1 <= t < T``.
        coverage: a pixel belongs to shape ``s`` when ``tracks.masks[t, s] >= coverage``.

    Each such pixel counts as agreeing when ``flow . v > 0`` with ``v =
    tracks.velocities[t - 1, s]`` (the displacement into frame ``t``); a zero motion
    vector does not agree.  Raises :class:`NoShapePixels` (a ``ValueError``) when frame ``t``
    has no shape pixel, and ``ValueError`` for a flow of the wrong shape or a bad ``t``.
    """
    fn = "motion_agreement"
    F = np.asarray(flow, dtype=np.float64)
    masks = np.asarray(tracks.masks)
    vel = np.asarray(tracks.velocities, dtype=np.float64)
    T, S, H, W = masks.shape
    if F.shape != (H, W, 2):
        raise ValueError(f"{fn}(): argument 'flow' must be (H, W, 2) = ({H}, {W}, 2) like the tracks' masks, "
                         f"got shape {F.shape}")
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t < T:
        raise ValueError(f"{fn}(): argument 't' must be a frame index in [1, {T - 1}] (the motion into frame t), "
                         f"got {t!r}")
    agree = total = 0
    for s in range(S):
        inside = masks[t, s] >= coverage
        dots = F[inside] @ vel[t - 1, s]
        agree += int(np.sum(dots > 0))
        total += int(inside.sum())
    if total == 0:
        raise NoShapePixels(f"{fn}(): frame {t} has no shape pixel with coverage >= {coverage}")
    return agree / total


def shape_centroid(frame, color, background) -> tuple[np.ndarray, float]:
    """Centroid ``(y, x)`` of a shape of colour ``c`` drawn over a flat background ``b``, and its mass.

    Notation: ``x_p`` the frame's value at pixel ``p = (i, j)`` (``C`` channels), ``c`` the
    shape's colour, ``b`` the background colour.  The synthetic scenes composite
    ``x_p = (1 - a_p) b + a_p c`` with the shape's coverage ``a_p``, so projecting onto the
    colour axis ``c - b`` recovers it:

        a_p = clip( <x_p - b, c - b> / |c - b|^2, 0, 1 )
        centroid = sum_p a_p p / sum_p a_p,          mass = sum_p a_p   (pixels)

    On a generated frame ``a_p`` is the shape-likeness of each pixel: a blurred shape keeps
    its centroid, a shape drawn twice pulls it to the middle, colour fringes count only by
    how much they resemble the shape.  ``frame (H, W, C)``, ``color`` and ``background``
    ``(C,)``.  The centroid is NaN when ``mass`` is 0 (nothing in the frame looks like the shape).
    """
    fn = "shape_centroid"
    x = np.asarray(frame, np.float64)
    c = np.asarray(color, np.float64).reshape(-1)
    b = np.asarray(background, np.float64).reshape(-1)
    if x.ndim != 3 or x.shape[-1] != c.shape[0] or b.shape != c.shape:
        raise ValueError(f"{fn}(): arguments must be frame (H, W, C), color (C,) and background (C,); got "
                         f"{x.shape}, {c.shape} and {b.shape}")
    axis = c - b
    norm2 = float(axis @ axis)
    if norm2 <= 1e-12:
        raise ValueError(f"{fn}(): the shape's colour {c.tolist()} equals the background's: its coverage cannot be read")
    a = np.clip((x - b) @ axis / norm2, 0.0, 1.0)  # (H, W)
    mass = float(a.sum())
    if mass <= 0.0:
        return np.full(2, np.nan), 0.0
    ii, jj = np.meshgrid(np.arange(x.shape[0]), np.arange(x.shape[1]), indexing="ij")
    return np.array([float((a * ii).sum()) / mass, float((a * jj).sum()) / mass]), mass


def centroid_errors(frames, first_frame, tracks, t_start: int, *, lost_fraction: float = 0.25) -> dict:
    """Distance (frame pixels) between the shape's centroid in each of ``frames`` and its true centre.

    The direct motion metric of a one-shape synthetic clip on a flat background
    (``synthetic:demo``, ``synthetic:demo16``).  Frame ``j`` of ``frames (J, H, W, C)`` is
    frame ``t = t_start + j`` of the clip; with ``p_t = tracks.positions[t, 0]`` (the true
    centre) and ``c_t`` the :func:`shape_centroid` of the frame,

        e_t = |c_t - p_t|        (copy-last-frame: e_t = |p_{t_start - 1} - p_t|, the displacement)

    The background colour is read from ``first_frame`` (the clip's frame 0, where no shape
    covers: ``tracks.masks[0, 0] == 0``).  A frame whose shape mass ``sum_p a_p`` is below
    ``lost_fraction`` of the true shape's (``tracks.masks[t, 0].sum()``) counts as *lost*:
    its centroid is taken as the frame's centre, so that a model that erases the shape is
    charged a bounded error rather than none.

    Returns ``{"error": (J,) float64, "lost": (J,) bool, "displacement": (J,) |p_{t_start-1} - p_t|}``.
    Raises ``ValueError`` for a clip with other than one shape, or a background that is not flat.
    """
    fn = "centroid_errors"
    x = np.asarray(frames, np.float64)
    f0 = np.asarray(first_frame, np.float64)
    masks = np.asarray(tracks.masks)
    T, S, H, W = masks.shape
    if S != 1:
        raise ValueError(f"{fn}(): needs clips of exactly one shape (synthetic:demo, synthetic:demo16); got {S} shapes")
    if x.ndim != 4 or x.shape[1:3] != (H, W) or f0.shape != x.shape[1:]:
        raise ValueError(f"{fn}(): arguments 'frames' (J, {H}, {W}, C) and 'first_frame' ({H}, {W}, C) must match the "
                         f"tracks' frames; got {x.shape} and {f0.shape}")
    if isinstance(t_start, bool) or not isinstance(t_start, (int, np.integer)) or not 1 <= t_start <= T - x.shape[0]:
        raise ValueError(f"{fn}(): argument 't_start' must be in [1, {T - x.shape[0]}] ({x.shape[0]} frames of a "
                         f"{T}-frame clip, after at least one known frame); got {t_start!r}")
    free = masks[0, 0] <= 0.0
    bg_pixels = f0[free]
    if bg_pixels.shape[0] == 0 or float(np.max(np.ptp(bg_pixels, axis=0))) > 1e-3:
        raise ValueError(f"{fn}(): the clip's background is not flat (texture=0 is needed to read the shape's coverage)")
    background = np.median(bg_pixels, axis=0)
    color = np.asarray(tracks.colors[0], np.float64)
    pos = np.asarray(tracks.positions, np.float64)[:, 0]
    centre = np.array([(H - 1) / 2.0, (W - 1) / 2.0])
    J = x.shape[0]
    err, lost = np.zeros(J), np.zeros(J, bool)
    for j in range(J):
        t = t_start + j
        c, mass = shape_centroid(x[j], color, background)
        if not mass >= lost_fraction * float(masks[t, 0].sum()):
            lost[j], c = True, centre
        err[j] = float(np.hypot(*(c - pos[t])))
    disp = np.hypot(*(pos[t_start - 1][None] - pos[t_start:t_start + J]).T)
    return {"error": err, "lost": lost, "displacement": disp}


# ---------------------------------------------------------------------------
# prediction


@dataclass
class Prediction:
    """One predicted clip (NumPy, float32 frames in ``[-1, 1]``).

    ``cond (t_cond, H, W, C)``, ``truth (n, H, W, C)`` with ``0 <= n <= t_pred`` (what
    the input had after the conditioning frames), ``pred (t_pred, H, W, C)``,
    ``motion (t_pred, H, W, 2)`` (content motion, see :func:`motion_fields`) or
    ``None``, ``stages`` the combined stages, ``speed_scale`` the speed drawn at full
    brightness (px/frame).
    """

    cond: np.ndarray
    truth: np.ndarray
    pred: np.ndarray
    motion: np.ndarray | None = None
    stages: tuple[int, ...] | None = None
    #: the speed of full brightness in the motion panel (:func:`max_speed`); ``None``: the clip's largest speed
    speed_scale: float | None = None


def read_input(path, config) -> np.ndarray:
    """The first ``t_cond + t_pred`` frames of a video / frame folder / ``.npy`` clip at the config's size.

    Resized so the smaller side is the config's resolution, centre-cropped
    (:func:`trivd_core.data.read_frames`).  :class:`PredictError` when the input is
    not a readable clip or has fewer than ``t_cond`` frames (the message names both
    numbers).
    """
    try:
        frames = read_frames(path, max_frames=config.t_total, resolution=config.resolution, channels=config.channels)
    except DataError as exc:
        raise PredictError(f"--input {path}: {exc}") from exc
    n = frames.shape[0]
    if n < config.t_cond:
        raise PredictError(f"--input {path}: too short: the model needs {config.t_cond} conditioning frames "
                           f"({config.t_total} to show the ground truth beside the prediction), the input has {n}")
    return frames


def source_size(path) -> tuple[int, int]:
    """``(height, width)`` of an input as stored (its first frame, before :func:`read_input` resizes it)."""
    try:
        return tuple(read_frames(path, max_frames=1, resolution=None).shape[1:3])
    except DataError as exc:
        raise PredictError(f"--input {path}: {exc}") from exc


def check_motion_cell(config) -> None:
    """:class:`PredictError` unless ``config.cell`` warps (a motion field needs its transformation)."""
    if config.cell not in WARPING_KINDS:
        raise PredictError(f"--motion needs a transformation-based recurrent unit ({', '.join(WARPING_KINDS)}); "
                           f"this run's generator uses {config.cell!r}, which has no warp to read a motion field from")


def predict_clip(model: Model, frames: np.ndarray, *, seed: int = 0, motion: bool = False,
                 stages=None) -> Prediction:
    """Predict the continuation of ``frames`` (``(n, R, R, C)``, ``n >= t_cond``; the first ``t_cond`` condition).

    Latent ``z`` from ``default_rng([seed, "pred"])`` (truncated as the model says).
    ``motion=True`` also returns the motion field (:func:`motion_fields` of the same
    forward pass, ``stages`` default :func:`default_stages`); it needs a warping cell
    (:data:`WARPING_KINDS`).
    """
    cfg = model.config
    if stages is None:
        stages = default_stages(cfg)
    frames = np.asarray(frames, np.float32)
    want = (cfg.resolution, cfg.resolution, cfg.channels)
    if frames.ndim != 4 or frames.shape[1:] != want:
        raise PredictError(f"predict_clip(): argument 'frames' must be (n, {want[0]}, {want[1]}, {want[2]}), got "
                           f"{frames.shape}")
    if frames.shape[0] < cfg.t_cond:
        raise PredictError(f"predict_clip(): argument 'frames' holds {frames.shape[0]} frames, the model needs "
                           f"{cfg.t_cond} conditioning frames")
    cond = frames[None, : cfg.t_cond]
    truth = frames[cfg.t_cond : cfg.t_total]
    z = model.latents(np.random.default_rng([int(seed), _PRED_STREAM]), 1)
    if not motion:
        return Prediction(cond[0], truth, model.predict(cond, z)[0])
    check_motion_cell(cfg)
    pred, warps = model.predict_with_warps(cond, z)
    field = motion_fields(warps, stages=stages, resolution=cfg.resolution)
    chosen = tuple(_stage_list("predict_clip", stages, sorted(int(k[5:]) for k in warps)))
    return Prediction(cond[0], truth, pred[0], np.asarray(field[0], np.float32), chosen,
                      max_speed(warps, stages=chosen, resolution=cfg.resolution))


def read_clips(path, config) -> np.ndarray:
    """An ``.npy`` array of ``N`` clips ``(N, T, H, W, C)`` in [-1, 1] for batch prediction (memory-mapped).

    ``T >= t_cond`` (frames after the first ``t_cond`` are ignored), ``H = W`` the
    config's resolution and ``C`` its channels (no resizing: a batch is model input
    as it is), a float dtype, finite values in [-1, 1].  Raises :class:`PredictError`.
    """
    fn = "--input"
    path = str(path)
    if not path.lower().endswith(".npy"):
        raise PredictError(f"{fn} {path}: batch prediction (--out .npy) reads a .npy array of clips (N, T, H, W, C)")
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PredictError(f"{fn} {path}: cannot read it as a .npy array ({exc})") from None
    R, C = config.resolution, config.channels
    if x.ndim != 5 or x.shape[0] < 1 or x.shape[1] < config.t_cond or x.shape[2:] != (R, R, C):
        raise PredictError(f"{fn} {path}: expected clips of shape (N >= 1, T >= {config.t_cond}, {R}, {R}, {C}) "
                           f"(the model's t_cond, resolution and channels), got {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise PredictError(f"{fn} {path}: expected float frames in [-1, 1], got dtype {x.dtype}")
    head = np.asarray(x[:, : config.t_cond], np.float32)
    bad = int(np.count_nonzero(~np.isfinite(head)))
    if bad:
        raise PredictError(f"{fn} {path}: {bad} conditioning values are NaN or infinite")
    lo, hi = float(head.min()), float(head.max())
    if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
        raise PredictError(f"{fn} {path}: frames must be in [-1, 1], found values in [{lo:.4g}, {hi:.4g}]")
    return head


def predict_batch(model: Model, cond: np.ndarray, *, seed: int = 0, batch_size: int = 32) -> np.ndarray:
    """``(N, t_cond + t_pred, R, R, C)`` float32: the conditioning frames, then the predicted ones, in [-1, 1].

    ``cond (N, t_cond, R, R, C)``.  Latents: one ``(N, z_dim)`` draw from
    ``default_rng([seed, "pred"])`` (truncated as the model says), so clip ``n`` gets the
    same latent whatever ``batch_size`` is.  G runs on ``batch_size`` clips at a time
    (standing statistics if the model has them, else each batch's own statistics).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise PredictError(f"predict_batch(): argument 'batch_size' must be a positive int, got {batch_size!r}")
    cond = np.asarray(cond, np.float32)
    N = cond.shape[0]
    z = model.latents(np.random.default_rng([int(seed), _PRED_STREAM]), N)
    out = []
    for i in range(0, N, batch_size):
        out.append(np.asarray(model.predict(cond[i:i + batch_size], z[i:i + batch_size]), np.float32))
    return np.concatenate([cond, np.concatenate(out, axis=0)], axis=1)


def _panel(img_u8: np.ndarray, scale: int, colour, border: int) -> np.ndarray:
    img = np.repeat(np.repeat(img_u8, scale, axis=0), scale, axis=1)
    h, w = img.shape[:2]
    out = np.empty((h + 2 * border, w + 2 * border, 3), np.uint8)
    out[...] = colour
    out[border : border + h, border : border + w] = img
    return out


def _layout(fn: str, p: Prediction, scale):
    """``(t_cond, t_pred, H, W, scale)`` of a prediction's picture; ``scale`` default: panels of >= 128 px."""
    t_cond, H, W = p.cond.shape[0], p.cond.shape[1], p.cond.shape[2]
    if scale is None:
        scale = max(1, math.ceil(128 / max(H, W)))
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise PredictError(f"{fn}(): argument 'scale' must be a positive int, got {scale!r}")
    return t_cond, p.pred.shape[0], H, W, scale


def _speed_scale(p: Prediction) -> float:
    if p.speed_scale is not None:
        return float(p.speed_scale)
    top = float(np.hypot(p.motion[..., 0], p.motion[..., 1]).max())
    return top if top > 0 else 1.0


def input_notes(source_hw: tuple[int, int] | None, cond: np.ndarray, config, data: str | None) -> list[str]:
    """What a user should know about an input before reading its prediction (one sentence each).

    * ``source_hw`` (the input's stored height and width) differs from the model's
      ``R x R``: it was resized (shorter side to ``R``) and centre-cropped, and the model
      was trained on ``data`` - a clip unlike that data is outside what it learned.
    * a conditioning frame (``cond (t_cond, R, R, C)`` in [-1, 1]) that is black (every
      value below -0.9, i.e. under 5% brightness) or of one flat colour (spread below
      0.02): the model continues that frame, not the scene that follows it.
    """
    R = int(config.resolution)
    notes = []
    if source_hw is not None and tuple(source_hw) != (R, R):
        h, w = source_hw
        notes.append(f"the input is {w}x{h}: it was resized (shorter side to {R} px) and centre-cropped to {R}x{R}, "
                     f"the model's size; the model was trained on {data or 'other data'}, and a clip unlike that is "
                     "outside what it learned")
    cond = np.asarray(cond, np.float32)
    for t in range(cond.shape[0]):
        frame = cond[t]
        if float(frame.max()) < -0.9:
            notes.append(f"conditioning frame {t + 1} is black (every pixel under 5% brightness): the prediction "
                         "continues a black frame; start the input later (e.g. cut a fade-in)")
        elif float(frame.max() - frame.min()) < 0.02:
            notes.append(f"conditioning frame {t + 1} is one flat colour: the prediction continues an empty frame")
    return notes


def labelled_prediction(p: Prediction, *, scale: int | None = None, notes=(), title: str = ""):
    """The labelled figure of a prediction (:class:`~trivd_core.media.LabelledGrid`; matplotlib).

    Columns "ground truth", "prediction" [, "motion"]; the frame title says which
    frame it is and whether it was given (conditioning) or predicted; borders green /
    red as the training samples; the motion panel's legend is the colour wheel with
    axes in px/frame (its rim is :attr:`Prediction.speed_scale`); ``notes``
    (:func:`input_notes`) and the colour key are written under the panels.
    """
    from .media import LabelledGrid
    from .train.artifacts import to_uint8

    t_cond, t_pred, H, W, scale = _layout("labelled_prediction", p, scale)
    T = t_cond + t_pred
    grey = np.full((H, W, 3), 128, np.uint8)
    truth, pred, motion = [], [], []
    for t in range(T):
        if t < t_cond:
            truth.append(to_uint8(p.cond[t]))
            pred.append(to_uint8(p.cond[t]))
            motion.append(grey)
        else:
            j = t - t_cond
            truth.append(to_uint8(p.truth[j]) if j < p.truth.shape[0] else grey)
            pred.append(to_uint8(p.pred[j]))
            if p.motion is not None:
                motion.append(flow_to_rgb(p.motion[j], max_magnitude=_speed_scale(p)))
    cells = [np.stack(truth), np.stack(pred)]
    titles = ["ground truth", "prediction"]
    legend = None
    key = ["green border: conditioning frame (given to the model), red: predicted; grey: no such frame"]
    if p.motion is not None:
        cells.append(np.stack(motion))
        titles.append("motion (px/frame)")
        v = _speed_scale(p)
        legend = {"image": color_wheel(101), "extent": (-v, v, v, -v), "title": "direction and speed\n"
                  f"(rim: {v:.2f} px/frame)", "xlabel": "dx (px/frame)", "ylabel": "dy (px/frame)"}
        peak = float(np.hypot(p.motion[..., 0], p.motion[..., 1]).max())
        stages = ",".join(map(str, p.stages or ()))
        key.append(f"motion read from the warps of G's stage{'s' if len(p.stages or ()) > 1 else ''} {stages} "
                   f"(content displacement into each predicted frame): colour = direction, brightness = speed, "
                   f"black = still; fastest pixel {peak:.2f} px/frame; on flat regions every warp gives the same "
                   f"frame, so the field there is not motion")
    frame_titles = [f"frame {t + 1} of {T}: conditioning (input)" if t < t_cond else
                    f"frame {t + 1} of {T}: predicted (step {t - t_cond + 1} of {t_pred})" for t in range(T)]
    colour = np.asarray([(40, 170, 40) if t < t_cond else (200, 40, 40) for t in range(T)], np.uint8)
    edges = np.broadcast_to(colour[:, None, None], (T, 1, len(cells), 3))
    footer = "\n".join([*(f"note: {n}" for n in notes), *key])
    return LabelledGrid([[c for c in cells]], row_labels=[""], col_titles=titles, title=title,
                        frame_titles=frame_titles, edges=edges, legend=legend, footer=footer, cell_px=H * scale)


def render_prediction(p: Prediction, *, scale: int | None = None, border: int = 2, gap: int = 4,
                      labelled: bool | None = None, notes=(), title: str = "") -> np.ndarray:
    """Frames ``(t_cond + t_pred, H', W', 3)`` uint8: ground truth | prediction [| motion | colour wheel].

    ``labelled``: draw :func:`labelled_prediction` (column titles, frame titles, the
    px/frame legend, ``notes``) - ``None`` (default) when matplotlib is installed.
    Otherwise the bare panels: conditioning frames have a green border, predicted ones
    red (as the training samples); a predicted frame without ground truth shows grey in
    the first panel.  The motion panel is grey during the conditioning frames; full
    brightness is :attr:`Prediction.speed_scale` (the stages' largest expressible speed).
    ``scale`` enlarges every panel (default: to at least 128 pixels).  Width and height
    are even (padding) for 4:2:0 video codecs.
    """
    from .media import have_matplotlib
    from .train.artifacts import to_uint8

    if labelled is None:
        labelled = have_matplotlib()
    if labelled:
        with labelled_prediction(p, scale=scale, notes=notes, title=title) as grid:
            return grid.frames()
    t_cond, t_pred, H, W, scale = _layout("render_prediction", p, scale)
    grey = np.full((H, W, 3), 128, np.uint8)
    wheel = None
    max_mag = None
    if p.motion is not None:
        max_mag = _speed_scale(p)
        side = min(H, W) * scale
        wheel = np.full((H * scale + 2 * border, W * scale + 2 * border, 3), 255, np.uint8)
        wheel[border : border + side, border : border + side] = color_wheel(side)
    frames = []
    for t in range(t_cond + t_pred):
        colour = (40, 170, 40) if t < t_cond else (200, 40, 40)
        if t < t_cond:
            truth = pred = to_uint8(p.cond[t])
        else:
            j = t - t_cond
            truth = to_uint8(p.truth[j]) if j < p.truth.shape[0] else grey
            pred = to_uint8(p.pred[j])
        panels = [_panel(truth, scale, colour, border), _panel(pred, scale, colour, border)]
        if p.motion is not None:
            m = grey if t < t_cond else flow_to_rgb(p.motion[t - t_cond], max_magnitude=max_mag)
            panels += [_panel(m, scale, colour, border), wheel]
        row = panels[0]
        for panel in panels[1:]:
            row = np.concatenate([row, np.full((row.shape[0], gap, 3), 255, np.uint8), panel], axis=1)
        frames.append(row)
    out = np.stack(frames)
    ph, pw = out.shape[1] % 2, out.shape[2] % 2
    if ph or pw:
        out = np.pad(out, ((0, 0), (0, ph), (0, pw), (0, 0)), constant_values=255)
    return out


def write_frames(path, frames: np.ndarray, fps: float = 4.0) -> Path:
    """Write ``(T, H, W, 3)`` uint8 frames as a GIF (NumPy encoder) or a video (PyAV; suffix picks the codec)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        return write_gif(path, frames, fps=fps)
    if suffix in VIDEO_SUFFIXES:
        try:
            write_video(path, frames, fps=fps)
        except ImportError as exc:  # pragma: no cover - PyAV missing
            from ._install import install_hint

            raise PredictError(f"--out {path}: writing video needs PyAV ({install_hint('video')}), or use .gif") \
                from exc
        return path
    raise PredictError(f"--out {path}: unknown output type {suffix or '(no suffix)'!r}; use .gif or "
                       f"{', '.join(VIDEO_SUFFIXES)}")
