"""Reference primitives as explicit loops: the spec for ``trivd_core.ops``.

Slow and obvious on purpose.  Channels last; kernels HWIO / THWIO; SAME zero
padding; stride 1.  Convolution here is cross-correlation, as in every
deep-learning framework: output position ``i`` reads input ``i + m - (k-1)/2``.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import check_array, check_odd

__all__ = [
    "pad_hw",
    "conv2d",
    "conv3d",
    "avg_pool",
    "upsample_nearest",
    "adaptive_max_pool",
    "sigmoid",
    "relu",
    "softmax",
]


def pad_hw(x, ph, pw):
    """Zero-pad axes -3 (height) and -2 (width) by ``ph`` and ``pw`` on both sides."""
    x = check_array("pad_hw", "x", x)
    *lead, H, W, C = x.shape
    out = np.zeros((*lead, H + 2 * ph, W + 2 * pw, C), dtype=x.dtype)
    for i in range(H):
        for j in range(W):
            out[..., ph + i, pw + j, :] = x[..., i, j, :]
    return out


def conv2d(x, w, b=None):
    """``y[b,i,j,o] = sum_{m,n,c} x[b, i+m-(kh-1)/2, j+n-(kw-1)/2, c] * w[m,n,c,o] + b[o]`` (zero outside)."""
    x = check_array("conv2d", "x", x, ndim=4)
    w = check_array("conv2d", "w", w, ndim=4)
    kh, kw, Cin, Cout = w.shape
    check_odd("conv2d", "w.shape[0]", kh)
    check_odd("conv2d", "w.shape[1]", kw)
    B, H, W, C = x.shape
    if C != Cin:
        raise ValueError(f"conv2d(): x has {C} channels but w expects C_in={Cin}")
    y = np.zeros((B, H, W, Cout), dtype=np.result_type(x, w))
    for bi in range(B):
        for i in range(H):
            for j in range(W):
                for m in range(kh):
                    for n in range(kw):
                        ii, jj = i + m - (kh - 1) // 2, j + n - (kw - 1) // 2
                        if 0 <= ii < H and 0 <= jj < W:
                            y[bi, i, j, :] += x[bi, ii, jj, :] @ w[m, n]
    if b is not None:
        y = y + np.asarray(b)
    return y


def conv3d(x, w, b=None):
    """``y[b,t,i,j,o] = sum_{d,m,n,c} x[b, t+d-(kt-1)/2, i+m-(kh-1)/2, j+n-(kw-1)/2, c] * w[d,m,n,c,o] + b[o]``."""
    x = check_array("conv3d", "x", x, ndim=5)
    w = check_array("conv3d", "w", w, ndim=5)
    kt, kh, kw, Cin, Cout = w.shape
    for name, k in (("w.shape[0]", kt), ("w.shape[1]", kh), ("w.shape[2]", kw)):
        check_odd("conv3d", name, k)
    B, T, H, W, C = x.shape
    if C != Cin:
        raise ValueError(f"conv3d(): x has {C} channels but w expects C_in={Cin}")
    y = np.zeros((B, T, H, W, Cout), dtype=np.result_type(x, w))
    for bi in range(B):
        for t in range(T):
            for i in range(H):
                for j in range(W):
                    for d in range(kt):
                        for m in range(kh):
                            for n in range(kw):
                                tt = t + d - (kt - 1) // 2
                                ii = i + m - (kh - 1) // 2
                                jj = j + n - (kw - 1) // 2
                                if 0 <= tt < T and 0 <= ii < H and 0 <= jj < W:
                                    y[bi, t, i, j, :] += x[bi, tt, ii, jj, :] @ w[d, m, n]
    if b is not None:
        y = y + np.asarray(b)
    return y


def avg_pool(x, s):
    """``y[..., i, j, c] = (1/s^2) sum_{a,b < s} x[..., s*i + a, s*j + b, c]``."""
    x = check_array("avg_pool", "x", x)
    *lead, H, W, C = x.shape
    if H % s or W % s:
        raise ValueError(f"avg_pool(): (H, W) = ({H}, {W}) must be divisible by s={s}")
    y = np.zeros((*lead, H // s, W // s, C), dtype=x.dtype)
    for i in range(H // s):
        for j in range(W // s):
            acc = np.zeros((*lead, C), dtype=x.dtype)
            for a in range(s):
                for b in range(s):
                    acc = acc + x[..., s * i + a, s * j + b, :]
            y[..., i, j, :] = acc / (s * s)
    return y


def upsample_nearest(x, s):
    """``y[..., i, j, c] = x[..., i // s, j // s, c]``."""
    x = check_array("upsample_nearest", "x", x)
    *lead, H, W, C = x.shape
    y = np.zeros((*lead, H * s, W * s, C), dtype=x.dtype)
    for i in range(H * s):
        for j in range(W * s):
            y[..., i, j, :] = x[..., i // s, j // s, :]
    return y


def adaptive_max_pool(x, out_hw=(4, 4)):
    """Adaptive max-pool of ``(B, H, W, C)``; bin ``i`` spans rows ``floor(i*H/oh) .. ceil((i+1)*H/oh) - 1``."""
    x = check_array("adaptive_max_pool", "x", x, ndim=4)
    B, H, W, C = x.shape
    oh, ow = out_hw
    y = np.full((B, oh, ow, C), -np.inf, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            for ii in range((i * H) // oh, math.ceil((i + 1) * H / oh)):
                for jj in range((j * W) // ow, math.ceil((j + 1) * W / ow)):
                    y[:, i, j, :] = np.maximum(y[:, i, j, :], x[:, ii, jj, :])
    return y


def sigmoid(x):
    """``sigma(x) = 1 / (1 + exp(-x))``."""
    x = np.asarray(x)
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):
    """``rho(x) = max(x, 0)``."""
    return np.maximum(np.asarray(x), 0)


def softmax(x, axis=-1):
    """``softmax(x)_i = exp(x_i) / sum_j exp(x_j)`` along ``axis`` (max subtracted for stability)."""
    x = np.asarray(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
