"""PyTorch fast paths for :mod:`trivd_core.ops` (CPU, CUDA and XLA tensors alike).

Every function takes exactly the (already validated) arguments of the generic op
and returns the same result: channels last ``(B, H, W, C)``, HWIO / THWIO
kernels, SAME zero padding for odd kernels, stride 1, cross-correlation (which
is what ``torch.nn.functional.conv*`` computes; no kernel flip).

``torch.nn.functional`` works channels first (NCHW, OIHW).  The permutes below
are views: ``x.permute(0, 3, 1, 2)`` of a contiguous NHWC tensor is an NCHW
tensor in ``channels_last`` memory format, which the CPU (oneDNN) and cuDNN
convolutions consume directly, and their output permuted back is contiguous
NHWC again - no copies on either side in the common case.
"""

from __future__ import annotations

import torch.nn.functional as F

from trivd_core.i3d import same_padding  # also adds the I3D op names to the fast-path hook

__all__ = [
    "FAST_PATHS",
    "pad_hw",
    "conv2d",
    "conv3d",
    "avg_pool",
    "upsample_nearest",
    "adaptive_max_pool",
    "stop_gradient",
    "conv3d_strided",
    "max_pool3d",
    "resize_bilinear",
]


def pad_hw(x, ph, pw):
    # F.pad lists (before, after) pairs from the last axis backwards: C, W, H.
    return F.pad(x, (0, 0, pw, pw, ph, ph))


def conv2d(x, w, b=None):
    kh, kw = w.shape[0], w.shape[1]
    # .contiguous(): torch's CPU slow_conv2d backward rejects a permuted (non-contiguous) weight when C_out = 1
    y = F.conv2d(x.permute(0, 3, 1, 2), w.permute(3, 2, 0, 1).contiguous(), b, padding=((kh - 1) // 2, (kw - 1) // 2))
    return y.permute(0, 2, 3, 1)


def conv3d(x, w, b=None):
    kt, kh, kw = w.shape[0], w.shape[1], w.shape[2]
    y = F.conv3d(
        x.permute(0, 4, 1, 2, 3),
        w.permute(4, 3, 0, 1, 2).contiguous(),
        b,
        padding=((kt - 1) // 2, (kh - 1) // 2, (kw - 1) // 2),
    )
    return y.permute(0, 2, 3, 4, 1)


def _as_nchw(x):
    """``(..., H, W, C)`` -> ``(N, C, H, W)`` with all leading axes folded into N."""
    H, W, C = x.shape[-3:]
    return x.reshape(-1, H, W, C).permute(0, 3, 1, 2)


def _from_nchw(y, lead):
    return y.permute(0, 2, 3, 1).reshape(*lead, *y.shape[2:], y.shape[1])


def avg_pool(x, s):
    return _from_nchw(F.avg_pool2d(_as_nchw(x), kernel_size=s, stride=s), x.shape[:-3])


def upsample_nearest(x, s):
    return x.repeat_interleave(s, dim=x.ndim - 3).repeat_interleave(s, dim=x.ndim - 2)


def adaptive_max_pool(x, out_hw):
    # PyTorch's bins are the ones trivd_core.ops.adaptive_bins documents.  Where
    # a bin holds tied maxima, the gradient goes to one of them here and is split
    # evenly by the generic torch.amax; values are identical.
    return F.adaptive_max_pool2d(x.permute(0, 3, 1, 2), tuple(out_hw)).permute(0, 2, 3, 1)


def stop_gradient(x):
    return x.detach()


# ---------------------------------------------------------------------------
# I3D primitives (trivd_core.i3d).  torch's own padding is symmetric only, so TF
# SAME padding (the extra position at the end when the total is odd) is an
# explicit F.pad; max-pool pads with -inf so that padding never wins.


def _same_pads_ncdhw(spatial, window, stride):
    """F.pad's list for an NCDHW tensor: (w_before, w_after, h_before, h_after, t_before, t_after)."""
    pads = [same_padding(n, k, s)[:2] for n, k, s in zip(spatial, window, stride)]
    return [p for pair in reversed(pads) for p in pair]


def conv3d_strided(x, w, b, stride):
    pads = _same_pads_ncdhw(x.shape[1:4], w.shape[:3], stride)
    xc = x.permute(0, 4, 1, 2, 3)
    if any(pads):
        xc = F.pad(xc, pads)
    y = F.conv3d(xc, w.permute(4, 3, 0, 1, 2).contiguous(), b, stride=tuple(stride))
    return y.permute(0, 2, 3, 4, 1)


def max_pool3d(x, window, stride):
    pads = _same_pads_ncdhw(x.shape[1:4], window, stride)
    xc = x.permute(0, 4, 1, 2, 3)
    if any(pads):
        xc = F.pad(xc, pads, value=float("-inf"))
    return F.max_pool3d(xc, kernel_size=tuple(window), stride=tuple(stride)).permute(0, 2, 3, 4, 1)


def resize_bilinear(x, size):
    # align_corners=False is the half-pixel rule of tf.image.resize; no antialiasing.
    y = F.interpolate(_as_nchw(x), size=tuple(size), mode="bilinear", align_corners=False, antialias=False)
    return _from_nchw(y, x.shape[:-3])


#: op name -> fast path.
FAST_PATHS = {
    "pad_hw": pad_hw,
    "conv2d": conv2d,
    "conv3d": conv3d,
    "avg_pool": avg_pool,
    "upsample_nearest": upsample_nearest,
    "adaptive_max_pool": adaptive_max_pool,
    "stop_gradient": stop_gradient,
    "conv3d_strided": conv3d_strided,
    "max_pool3d": max_pool3d,
    "resize_bilinear": resize_bilinear,
}
