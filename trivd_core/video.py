"""Discriminator input decompositions (paper section 3.1, Fig. 1, Table 1), array API.

The discriminators of DVD-GAN-FP and TrIVD-GAN-FP see transformed videos:

* :func:`sample_frames` - ``K`` frames per sample, for the spatial discriminator ``D_S``;
* :func:`downsample`    - every frame average-pooled by ``s x s`` (``dF``, ``dV`` inputs);
* :func:`crop`          - a ``T x h x w`` clip cut out of each video (``crV`` input,
  ``h = H/s``, ``w = W/s`` in the paper).

All randomness is an argument: the frame indices ``idx`` and the crop corners
``offsets`` are drawn by the caller.

Implementation choices (documented for ports and backends):

* Gathers use ``xp.take_along_axis`` with index arrays *computed from* ``idx`` /
  ``offsets`` (``offsets[:, 0:1] + arange(h)``), explicitly broadcast to the output
  shape; no Python slicing with host integers.  So ``sample_frames`` and ``crop`` work
  with traced ``idx`` / ``offsets`` under ``jax.jit`` (the output shape depends only on
  ``K`` and ``size``, which are static), and the gather is differentiable w.r.t. the
  video.
* Range checks (``0 <= idx < T``; ``0 <= offsets`` and ``offsets + size <= (H, W)``)
  run whenever the values are concrete.  Under tracing (e.g. inside ``jax.jit``) they
  cannot be read and are skipped; an out-of-range traced index then gives whatever the
  namespace's gather does (JAX fills with NaN), so callers must draw them in range.
* ``idx`` and ``offsets`` must have an integer dtype; ``size`` and ``s`` are Python ints.
"""

from __future__ import annotations

from collections.abc import Sequence

from array_api_compat import array_namespace, device

from . import ops
from ._validate import at_the_door, check_array, check_positive_int, inside

__all__ = ["sample_frames", "downsample", "crop"]


def _concrete_all(xp, cond) -> bool | None:
    """``bool(all(cond))`` when the values can be read, ``None`` when traced (e.g. under ``jax.jit``)."""
    try:
        return bool(xp.all(cond))
    except TypeError:  # the standard's error for a value that cannot be read (JAX tracers subclass it)
        return None


def check_frame_indices(fn: str, idx, T: int, name: str = "idx") -> None:
    """``ValueError`` unless every ``idx`` is a frame index in ``[0, T)`` (skipped for traced values)."""
    xp = array_namespace(idx)
    if _concrete_all(xp, (idx >= 0) & (idx < T)) is False:
        raise ValueError(f"{fn}(): argument '{name}' must hold frame indices in [0, {T}) (T of 'video'), "
                         f"got values in [{int(xp.min(idx))}, {int(xp.max(idx))}]")


def check_crop_offsets(fn: str, offsets, frame: tuple, size: tuple, name: str = "offsets") -> None:
    """``ValueError`` unless every ``(y, x)`` corner of ``offsets`` lets a ``size`` crop fit in ``frame``."""
    xp = array_namespace(offsets)
    (H, W), (h, w) = frame, size
    y0, x0 = offsets[:, 0:1], offsets[:, 1:2]
    if _concrete_all(xp, (y0 >= 0) & (y0 <= H - h) & (x0 >= 0) & (x0 <= W - w)) is False:
        raise ValueError(
            f"{fn}(): argument '{name}' must hold top-left corners (y, x) with 0 <= y <= {H - h} and "
            f"0 <= x <= {W - w} so that a ({h}, {w}) crop fits in the ({H}, {W}) frame, "
            f"got y in [{int(xp.min(y0))}, {int(xp.max(y0))}], x in [{int(xp.min(x0))}, {int(xp.max(x0))}]"
        )


def _check_video(fn: str, video, dims):
    return check_array(fn, "video", video, ("B", "T", "H", "W", "C"), dims)


@at_the_door
def sample_frames(video, idx):
    """The frames ``idx[b, k]`` of each sample: ``out[b, k] = video[b, idx[b, k]]``.

    video: ``(B, T, H, W, C)``; idx: ``(B, K)`` integer frame indices in ``[0, T)``.
    Returns ``(B, K, H, W, C)``, the input of the (downsampled) frame discriminator.
    """
    fn = "sample_frames"
    dims: dict[str, int] = {}
    xp = _check_video(fn, video, dims)
    check_array(fn, "idx", idx, ("B", "K"), dims, integer=True)
    T = video.shape[1]
    if not inside():  # the range check reads the indices back to the host (a sync on CUDA/XLA): at the door only
        check_frame_indices(fn, idx, T)
    B, K = idx.shape
    _, _, H, W, C = video.shape
    index = xp.broadcast_to(xp.reshape(idx, (B, K, 1, 1, 1)), (B, K, H, W, C))
    return xp.take_along_axis(video, index, axis=1)


@at_the_door
def downsample(video, s: int):
    """Average-pool every frame by ``s x s``: ``(B, T, H, W, C) -> (B, T, H/s, W/s, C)``.

    ``out[b, t, i, j, c] = (1/s^2) sum_{m, n < s} video[b, t, s*i + m, s*j + n, c]``;
    ``s`` must divide ``H`` and ``W`` (the paper uses ``s = 2``).
    """
    fn = "downsample"
    _check_video(fn, video, {})
    check_positive_int(fn, s, "s")
    H, W = video.shape[2], video.shape[3]
    if H % s or W % s:
        raise ValueError(f"{fn}(): argument 's'={s} must divide the frame size (H, W) = ({H}, {W}) of 'video'")
    return ops.avg_pool(video, s)


def _check_size(fn: str, size, H: int, W: int) -> tuple[int, int]:
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
        raise TypeError(f"{fn}(): argument 'size' must be a pair of ints (h, w), got {size!r}")
    h = check_positive_int(fn, size[0], "size[0]")
    w = check_positive_int(fn, size[1], "size[1]")
    if h > H or w > W:
        raise ValueError(f"{fn}(): argument 'size'=({h}, {w}) must fit inside the frame (H, W) = ({H}, {W}) of 'video'")
    return h, w


@at_the_door
def crop(video, offsets, size):
    """Cut a ``size = (h, w)`` window out of every frame of each sample.

    ``out[b, t, i, j, c] = video[b, t, y_b + i, x_b + j, c]`` with ``(y_b, x_b) = offsets[b]``
    the top-left corner, ``0 <= y_b <= H - h``, ``0 <= x_b <= W - w``.
    video: ``(B, T, H, W, C)``; offsets: ``(B, 2)`` integer.  Returns ``(B, T, h, w, C)``.
    """
    fn = "crop"
    dims: dict[str, int] = {}
    xp = _check_video(fn, video, dims)
    check_array(fn, "offsets", offsets, ("B", 2), dims, integer=True)
    B, T, H, W, C = video.shape
    h, w = _check_size(fn, size, H, W)
    if not inside():  # a host read, as above
        check_crop_offsets(fn, offsets, (H, W), (h, w))
    y0 = offsets[:, 0:1]  # (B, 1)
    x0 = offsets[:, 1:2]
    dev = device(offsets)
    rows = y0 + xp.reshape(xp.arange(h, dtype=offsets.dtype, device=dev), (1, h))  # (B, h)
    cols = x0 + xp.reshape(xp.arange(w, dtype=offsets.dtype, device=dev), (1, w))  # (B, w)
    rows = xp.broadcast_to(xp.reshape(rows, (B, 1, h, 1, 1)), (B, T, h, W, C))
    out = xp.take_along_axis(video, rows, axis=2)  # (B, T, h, W, C)
    cols = xp.broadcast_to(xp.reshape(cols, (B, 1, 1, w, 1)), (B, T, h, w, C))
    return xp.take_along_axis(out, cols, axis=3)
