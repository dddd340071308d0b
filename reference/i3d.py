"""Reference I3D (the FVD / IS feature network of section 4.1 and appendix C), as explicit loops.

The spec for ``trivd_core.i3d``.  I3D is Inception-v1 inflated to 3-D (Carreira &
Zisserman 2017), the Kinetics-400 classifier whose logits FVD (Unterthiner et al.
2018) compares; the paper under implementation uses it unchanged, so there is
no equation number of its own: the sums below are the standard definitions,
with TensorFlow's "SAME" padding.

Notation: a video ``x[b, t, i, j, c]`` (channels last); a kernel ``w[d, m, n, c, o]``
with temporal offset ``d``, row offset ``m``, column offset ``n``; strides
``s = (s_t, s_h, s_w)``.  SAME padding of an axis of length ``N`` for window ``k``
and stride ``s``: ``N' = ceil(N / s)`` outputs, ``P = max((N' - 1) s + k - N, 0)``
padded positions, ``floor(P / 2)`` before and the rest after.

Network (see ``trivd_core/i3d.py`` for the full table): units are conv -> batch
norm ``(x - mu) / sqrt(sigma^2 + 1e-3) + beta`` -> ReLU; Mixed blocks concatenate
four branches; the head (``pool="reference"``, the original's) is the average pool
of window ``(2, 7, 7)``, stride 1, VALID padding over ``Mixed_5c`` of ``T' x 7 x 7``
positions, the linear layer, then the mean over the ``T' - 1`` pooled time positions:

    f[b, c] = 1 / (T' - 1) sum_{t=0}^{T'-2} 1 / (2 * 7 * 7) sum_{d<2, i<7, j<7} x[b, t + d, i, j, c]

(defined only for ``T' >= 2`` and ``H' = W' = 7``); ``pool="global"`` is the plain
mean over every ``(t, i, j)``, which equals it when ``T' = 2``.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import check_array

__all__ = ["conv3d_strided", "max_pool3d", "resize_bilinear", "preprocess", "i3d_logits"]

EPS = 1e-3


def _triple(v):
    return (v, v, v) if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


def _same(N, k, s):
    """``(before, N')`` of TensorFlow SAME padding."""
    N_out = -(-N // s)
    P = max((N_out - 1) * s + k - N, 0)
    return P // 2, N_out


def conv3d_strided(x, w, b=None, stride=(1, 1, 1)):
    """``y[b,t,i,j,o] = sum_{d,m,n,c} x[b, s_t t + d - p_t, s_h i + m - p_h, s_w j + n - p_w, c] w[d,m,n,c,o] + b[o]``.

    ``p`` are the SAME "before" paddings; ``x`` is zero outside its extent.
    """
    x = check_array("conv3d_strided", "x", x, ndim=5)
    w = check_array("conv3d_strided", "w", w, ndim=5)
    s_t, s_h, s_w = _triple(stride)
    B, T, H, W, C = x.shape
    kt, kh, kw, C_in, C_out = w.shape
    if C != C_in:
        raise ValueError(f"conv3d_strided(): x has {C} channels but w expects C_in={C_in}")
    p_t, T_out = _same(T, kt, s_t)
    p_h, H_out = _same(H, kh, s_h)
    p_w, W_out = _same(W, kw, s_w)
    y = np.zeros((B, T_out, H_out, W_out, C_out), dtype=np.result_type(x, w))
    for bi in range(B):
        for t in range(T_out):
            for i in range(H_out):
                for j in range(W_out):
                    for d in range(kt):
                        for m in range(kh):
                            for n in range(kw):
                                tt, ii, jj = s_t * t + d - p_t, s_h * i + m - p_h, s_w * j + n - p_w
                                if 0 <= tt < T and 0 <= ii < H and 0 <= jj < W:
                                    y[bi, t, i, j, :] += x[bi, tt, ii, jj, :] @ w[d, m, n]
    if b is not None:
        y = y + np.asarray(b)
    return y


def max_pool3d(x, window, stride):
    """``y[b,t,i,j,c] = max over d < k_t, m < k_h, n < k_w of x[b, s_t t + d - p_t, s_h i + m - p_h, s_w j + n - p_w, c]``.

    Positions outside ``x`` (the SAME padding) are skipped, i.e. they count as ``-inf``.
    """
    x = check_array("max_pool3d", "x", x, ndim=5)
    k_t, k_h, k_w = _triple(window)
    s_t, s_h, s_w = _triple(stride)
    B, T, H, W, C = x.shape
    p_t, T_out = _same(T, k_t, s_t)
    p_h, H_out = _same(H, k_h, s_h)
    p_w, W_out = _same(W, k_w, s_w)
    y = np.full((B, T_out, H_out, W_out, C), -np.inf, dtype=x.dtype)
    for t in range(T_out):
        for i in range(H_out):
            for j in range(W_out):
                for d in range(k_t):
                    for m in range(k_h):
                        for n in range(k_w):
                            tt, ii, jj = s_t * t + d - p_t, s_h * i + m - p_h, s_w * j + n - p_w
                            if 0 <= tt < T and 0 <= ii < H and 0 <= jj < W:
                                y[:, t, i, j, :] = np.maximum(y[:, t, i, j, :], x[:, tt, ii, jj, :])
    return y


def _source(i, N_in, N_out, half_pixel_centers):
    """Source coordinate ``u`` of output ``i`` and its two neighbours clamped to ``[0, N_in - 1]``.

    TF1 grid: ``u = i N_in / N_out``; half-pixel centres: ``u = (i + 1/2) N_in / N_out - 1/2``.
    """
    u = (i + 0.5) * N_in / N_out - 0.5 if half_pixel_centers else i * N_in / N_out
    lo = min(max(math.floor(u), 0), N_in - 1)
    hi = min(max(math.floor(u) + 1, 0), N_in - 1)
    return lo, hi, u - math.floor(u)


def resize_bilinear(x, size, half_pixel_centers=False):
    """Bilinear resize of axes -3, -2 of ``(..., H, W, C)`` to ``size = (h, w)`` (no antialias).

    For output ``(i, j)``: source ``(u, v) = (i H / h, j W / w)`` on the TF1 grid of the
    reference FVD code (``tf.image.resize_bilinear``, ``half_pixel_centers=False``), or
    ``((i + 1/2) H / h - 1/2, (j + 1/2) W / w - 1/2)`` with ``half_pixel_centers``
    (TF2's ``tf.image.resize``); ``u0 = floor(u)``, ``u1 = u0 + 1`` and ``v0, v1`` likewise,
    clamped to the image; ``top = x[u0, v0] + (x[u0, v1] - x[u0, v0]) (v - floor v)``,
    ``bottom`` likewise on row ``u1``, and ``y[i, j] = top + (bottom - top) (u - floor u)``.
    """
    x = check_array("resize_bilinear", "x", x)
    h, w = size
    *lead, H, W, C = x.shape
    y = np.zeros((*lead, h, w, C), dtype=x.dtype)
    for i in range(h):
        u0, u1, a = _source(i, H, h, half_pixel_centers)
        for j in range(w):
            v0, v1, c = _source(j, W, w, half_pixel_centers)
            top = x[..., u0, v0, :] + (x[..., u0, v1, :] - x[..., u0, v0, :]) * c
            bottom = x[..., u1, v0, :] + (x[..., u1, v1, :] - x[..., u1, v0, :]) * c
            y[..., i, j, :] = top + (bottom - top) * a
    return y


def preprocess(video, size=(224, 224), resize="tf1"):
    """FVD input: every frame of ``(B, T, H, W, C)`` resized bilinearly to ``size``, clipped to ``[-1, 1]``.

    ``resize``: ``"tf1"`` (the reference FVD code's grid) or ``"half_pixel"``.
    """
    video = check_array("preprocess", "video", video, ndim=5)
    half = {"tf1": False, "half_pixel": True}[resize]
    y = video if tuple(video.shape[2:4]) == tuple(size) else resize_bilinear(video, size, half)
    return np.clip(y, -1.0, 1.0)


def _unit(p, x, stride=(1, 1, 1)):
    """Conv (no bias) -> ``(x - mu) / sqrt(sigma^2 + eps) + beta`` -> ``max(., 0)``."""
    y = conv3d_strided(x, p["w"], stride=stride)
    y = (y - p["moving_mean"]) / np.sqrt(p["moving_variance"] + EPS) + p["beta"]
    return np.maximum(y, 0)


def _mixed(p, name, x):
    conv_2 = "Conv3d_0a_3x3" if name == "Mixed_5b" else "Conv3d_0b_3x3"
    branch_0 = _unit(p["Branch_0"]["Conv3d_0a_1x1"], x)
    branch_1 = _unit(p["Branch_1"]["Conv3d_0b_3x3"], _unit(p["Branch_1"]["Conv3d_0a_1x1"], x))
    branch_2 = _unit(p["Branch_2"][conv_2], _unit(p["Branch_2"]["Conv3d_0a_1x1"], x))
    branch_3 = _unit(p["Branch_3"]["Conv3d_0b_1x1"], max_pool3d(x, 3, 1))
    return np.concatenate([branch_0, branch_1, branch_2, branch_3], axis=-1)


def _pool(x, pool):
    """Mixed_5c ``x[b, t, i, j, c]`` -> the head's features ``f[b, c]`` (module docstring)."""
    B, T, H, W, C = x.shape
    f = np.zeros((B, C), dtype=x.dtype)
    if pool == "global":
        for t in range(T):
            for i in range(H):
                for j in range(W):
                    f += x[:, t, i, j, :]
        return f / (T * H * W)
    if pool != "reference":
        raise ValueError(f"i3d_logits(): pool must be 'reference' or 'global', got {pool!r}")
    if T < 2 or H != 7 or W != 7:
        raise ValueError(f"i3d_logits(): the reference pooling needs Mixed_5c of T' >= 2 and 7 x 7, got {T, H, W}")
    for t in range(T - 1):  # the VALID positions of the (2, 7, 7) window along time
        window = np.zeros((B, C), dtype=x.dtype)
        for d in range(2):
            for i in range(7):
                for j in range(7):
                    window += x[:, t + d, i, j, :]
        f += window / (2 * 7 * 7)
    return f / (T - 1)


def i3d_logits(params, video, pool="reference"):
    """I3D logits ``(B, num_classes)``: the layers of Carreira & Zisserman (2017), the pooling head, linear layer.

    ``logits[b, o] = sum_c f[b, c] W[c, o] + bias[o]`` with ``f`` the reference head of
    the module docstring (``pool="reference"``) or ``f[b, c] = mean_{t,i,j}
    Mixed_5c[b, t, i, j, c]`` (``pool="global"``).  The head is linear, so pooling the
    features first and applying ``W`` once equals the original order (pool, 1x1x1
    conv, mean over time).
    """
    x = check_array("i3d_logits", "video", video, ndim=5)
    x = _unit(params["Conv3d_1a_7x7"], x, stride=(2, 2, 2))
    x = max_pool3d(x, (1, 3, 3), (1, 2, 2))
    x = _unit(params["Conv3d_2b_1x1"], x)
    x = _unit(params["Conv3d_2c_3x3"], x)
    x = max_pool3d(x, (1, 3, 3), (1, 2, 2))
    x = _mixed(params["Mixed_3b"], "Mixed_3b", x)
    x = _mixed(params["Mixed_3c"], "Mixed_3c", x)
    x = max_pool3d(x, (3, 3, 3), (2, 2, 2))
    for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
        x = _mixed(params[name], name, x)
    x = max_pool3d(x, (2, 2, 2), (2, 2, 2))
    x = _mixed(params["Mixed_5b"], "Mixed_5b", x)
    x = _mixed(params["Mixed_5c"], "Mixed_5c", x)
    f = _pool(x, pool)
    head = params["Logits"]["Conv3d_0c_1x1"]
    return f @ head["w"][0, 0, 0] + head["b"]
