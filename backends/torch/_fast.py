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

__all__ = [
    "FAST_PATHS",
    "pad_hw",
    "conv2d",
    "conv3d",
    "avg_pool",
    "upsample_nearest",
    "adaptive_max_pool",
    "stop_gradient",
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


#: op name -> fast path.
FAST_PATHS = {
    "pad_hw": pad_hw,
    "conv2d": conv2d,
    "conv3d": conv3d,
    "avg_pool": avg_pool,
    "upsample_nearest": upsample_nearest,
    "adaptive_max_pool": adaptive_max_pool,
    "stop_gradient": stop_gradient,
}
