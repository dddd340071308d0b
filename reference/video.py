"""Reference discriminator inputs (paper section 3.1, Fig. 1, Table 1).

DVD-GAN-FP's spatial discriminator judges ``K`` randomly sampled full-resolution
frames and its temporal discriminator the video downsampled by ``s``;
TrIVD-GAN-FP's *faster* decomposition judges the ``K`` frames downsampled by ``s``
and ``T x H/s x W/s`` clips cropped from the full-resolution video, and the
*stronger* one adds the downsampled video.  The three transformations:

Notation
--------
``video[b, t, i, j, c]``  sample ``b``, time step ``t``, row ``i``, column ``j``, channel ``c``;
                          shape ``(B, T, H, W, C)``.
``idx[b, k]``             the ``k``-th of the ``K`` frames sampled for sample ``b``.
``s``                     the downsampling factor (``s = 2`` in the paper).
``(y_b, x_b)``            the top-left corner of sample ``b``'s crop; ``(h, w)`` its size.

The indices are inputs: all randomness is drawn by the caller.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_array

__all__ = ["sample_frames", "downsample", "crop"]


def _check_int(fn, name, a, B, cols=None):
    """``a`` must be an integer ``(B, cols)`` array (any number of columns if ``cols`` is None)."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{fn}(): argument '{name}' must have an integer dtype, got {a.dtype}")
    if a.ndim != 2 or a.shape[0] != B or (cols is not None and a.shape[1] != cols):
        raise ValueError(f"{fn}(): argument '{name}' must have shape ({B}, {cols or 'K'}), got {a.shape}")
    return a


def sample_frames(video, idx):
    """Frames for the spatial discriminator ``D_S`` (section 3.1)::

        out[b, k] = video[b, idx[b, k]]        for b < B, k < K

    ``idx (B, K)`` integer indices in ``[0, T)``; returns ``(B, K, H, W, C)``.
    """
    fn = "sample_frames"
    video = check_array(fn, "video", video, ndim=5)
    B, T, H, W, C = video.shape
    idx = _check_int(fn, "idx", idx, B)
    K = idx.shape[1]
    out = np.zeros((B, K, H, W, C), dtype=video.dtype)
    for b in range(B):
        for k in range(K):
            t = int(idx[b, k])
            if not 0 <= t < T:
                raise ValueError(f"{fn}(): idx[{b}, {k}] = {t} is outside [0, {T})")
            out[b, k] = video[b, t]
    return out


def downsample(video, s):
    """Spatial downsampling by ``s`` (the ``dF`` / ``dV`` inputs of section 3.1)::

        out[b, t, i, j, c] = (1/s^2) sum_{m<s} sum_{n<s} video[b, t, s*i + m, s*j + n, c]

    ``s`` must divide ``H`` and ``W``; returns ``(B, T, H/s, W/s, C)``.
    """
    fn = "downsample"
    video = check_array(fn, "video", video, ndim=5)
    B, T, H, W, C = video.shape
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
        raise ValueError(f"{fn}(): argument 's' must be a positive int, got {s!r}")
    if H % s or W % s:
        raise ValueError(f"{fn}(): s={s} must divide (H, W) = ({H}, {W})")
    out = np.zeros((B, T, H // s, W // s, C), dtype=video.dtype)
    for b in range(B):
        for t in range(T):
            for i in range(H // s):
                for j in range(W // s):
                    for c in range(C):
                        acc = 0.0
                        for m in range(s):
                            for n in range(s):
                                acc += video[b, t, s * i + m, s * j + n, c]
                        out[b, t, i, j, c] = acc / (s * s)
    return out


def crop(video, offsets, size):
    """Cropped clips for the temporal discriminator ``D_T`` of the faster/stronger decompositions::

        out[b, t, i, j, c] = video[b, t, y_b + i, x_b + j, c]      for i < h, j < w

    ``offsets (B, 2)`` integer ``(y_b, x_b)``, ``size = (h, w)`` (``H/s x W/s`` in the
    paper); the window must lie inside the frame.  Returns ``(B, T, h, w, C)``.
    """
    fn = "crop"
    video = check_array(fn, "video", video, ndim=5)
    B, T, H, W, C = video.shape
    offsets = _check_int(fn, "offsets", offsets, B, 2)
    h, w = (int(v) for v in size)
    if not (1 <= h <= H and 1 <= w <= W):
        raise ValueError(f"{fn}(): size ({h}, {w}) must fit inside the frame ({H}, {W})")
    out = np.zeros((B, T, h, w, C), dtype=video.dtype)
    for b in range(B):
        y_b, x_b = int(offsets[b, 0]), int(offsets[b, 1])
        if not (0 <= y_b <= H - h and 0 <= x_b <= W - w):
            raise ValueError(f"{fn}(): crop of sample {b} at ({y_b}, {x_b}) leaves the ({H}, {W}) frame")
        for t in range(T):
            for i in range(h):
                for j in range(w):
                    for c in range(C):
                        out[b, t, i, j, c] = video[b, t, y_b + i, x_b + j, c]
    return out
