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

import torch
import torch.nn.functional as F
from array_api_compat import is_torch_namespace
from array_api_compat import torch as torch_xp

from trivd_core import ops
from trivd_core.i3d import same_padding  # also adds the I3D op names to the fast-path hook
from trivd_core.ops import OPS, shifted_tap_sum

from ..common import env_flag


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
# Pixelwise warping, Eq. 11: trivd_core.ops.warp_taps.
#
#   out[b,i,j,c] = sum_q W[b,i,j,q] * h[b, i+dy_q, j+dx_q, c],  q = m*k + n,  (dy_q, dx_q) = (m-p, n-p),
#
# with h read as zero outside the map.  The generic code materialises each of the k*k products and
# k*k - 1 partial sums as a fresh full-size tensor (and autograd keeps them); here every tap is one
# in-place multiply-add into a single output buffer, restricted to the window where the tap reads
# inside the map (a tap that reads only padding contributes nothing and is skipped).  The backward
# pass is written out the same way:
#
#   dh[b, i+dy_q, j+dx_q, c] += W[b,i,j,q] * g[b,i,j,c]     (the adjoint: the same taps, scattered)
#   dW[b,i,j,q] = sum_c g[b,i,j,c] * h[b, i+dy_q, j+dx_q, c]  (zero where tap q reads padding)
#
# On the CPU the batch is processed a few samples at a time (about _WARP_BLOCK_BYTES of h per block,
# at least one sample) so that the k*k passes over a block are served from the cache rather than
# from main memory; at h = (16, 128, 128, 32) float32, one thread, on a CPU with a 32 MiB L3 this
# took the forward pass from ~95 ms (one block) to ~50 ms (blocks of 4 MiB: ~55 ms; 8 MiB: ~99 ms;
# splitting a sample's rows further did not help).  Devices other than the CPU and CUDA
# (torch_xla's lazy tensors) take the out-of-place sum, which their compiler fuses.

#: Bytes of ``h`` per block of samples in the CPU loops (a block stays well inside a last-level cache).
_WARP_BLOCK_BYTES = 2 * 2**20


def _tap_windows(q: int, k: int, H: int, W: int):
    """``((oi, oj), (ii, ij))``: tap ``q`` adds ``h[:, ii, ij]`` into ``out[:, oi, oj]``; None if it reads only padding."""
    p = (k - 1) // 2
    dy, dx = q // k - p, q % k - p
    i0, i1 = max(0, -dy), min(H, H - dy)
    j0, j1 = max(0, -dx), min(W, W - dx)
    if i0 >= i1 or j0 >= j1:
        return None
    return (slice(i0, i1), slice(j0, j1)), (slice(i0 + dy, i1 + dy), slice(j0 + dx, j1 + dx))


def _sample_blocks(x):
    """Slices of the batch axis of ``x``: blocks of about ``_WARP_BLOCK_BYTES`` on the CPU, the whole batch elsewhere."""
    B = x.shape[0]
    if x.device.type != "cpu":
        return [slice(0, B)]
    per_sample = max(1, x[0].numel() * x.element_size())
    n = max(1, _WARP_BLOCK_BYTES // per_sample)
    return [slice(b, min(b + n, B)) for b in range(0, B, n)]


def _taps_into(out, x, W, k, adjoint=False):
    """``out = sum_q W[..., q] * shift_q(x)`` (Eq. 11), or with ``adjoint`` the transpose: the same taps scattered back."""
    H, Wd = x.shape[1], x.shape[2]
    centre = (k * k - 1) // 2  # tap (p, p): reads the output's own pixel, covers the whole map
    torch.mul(W[..., centre : centre + 1], x, out=out)
    for q in range(k * k):
        win = _tap_windows(q, k, H, Wd) if q != centre else None
        if win is None:
            continue
        (oi, oj), (ii, ij) = win
        if adjoint:
            out[:, ii, ij].addcmul_(W[:, oi, oj, q : q + 1], x[:, oi, oj])
        else:
            out[:, oi, oj].addcmul_(W[:, oi, oj, q : q + 1], x[:, ii, ij])


def _weight_grad_into(dWt, g, h, k, buf):
    """``dWt[q] = sum_c g * shift_q(h)`` for every tap (``dWt`` zero-initialised, ``(k*k, b, H, W)``); ``buf`` like ``h``."""
    H, Wd = h.shape[1], h.shape[2]
    for q in range(k * k):
        win = _tap_windows(q, k, H, Wd)
        if win is None:
            continue
        (oi, oj), (ii, ij) = win
        prod = buf[:, oi, oj]
        torch.mul(g[:, oi, oj], h[:, ii, ij], out=prod)
        torch.sum(prod, dim=-1, out=dWt[q][:, oi, oj])


class _WarpTaps(torch.autograd.Function):
    """Eq. 11 with one output buffer and a hand-written backward.

    With ``create_graph=True`` (grad mode on inside ``backward``) the gradients are
    instead taken through the out-of-place sum, so that they are themselves
    differentiable (higher derivatives work; only first derivatives are fast).
    """

    @staticmethod
    def forward(ctx, h, W, k):
        ctx.k = k
        ctx.save_for_backward(h, W)
        out = torch.empty_like(h, memory_format=torch.contiguous_format)
        for b in _sample_blocks(h):
            _taps_into(out[b], h[b], W[b], k)
        return out

    @staticmethod
    def backward(ctx, g):
        h, W = ctx.saved_tensors
        k = ctx.k
        need_h, need_W = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if torch.is_grad_enabled():
            return _differentiable_backward(h, W, k, g, need_h, need_W)
        return _fast_backward(h, W, k, g, need_h, need_W)


def _differentiable_backward(h, W, k, g, need_h, need_W):
    # create_graph=True: gradients of the out-of-place sum, recorded so that they can be differentiated again.
    wrt = [t for t, need in ((h, need_h), (W, need_W)) if need]
    grads = iter(torch.autograd.grad(_warp_taps_sum(h, W, k), wrt, g, create_graph=True))
    return (next(grads) if need_h else None), (next(grads) if need_W else None), None


def _fast_backward(h, W, k, g, need_h, need_W):
    # Runs with grad mode off (no create_graph): the in-place updates below record nothing.
    dh = torch.empty_like(h, memory_format=torch.contiguous_format) if need_h else None
    dWt = torch.zeros((k * k, *W.shape[:3]), dtype=W.dtype, device=W.device) if need_W else None
    blocks = _sample_blocks(h)
    buf = torch.empty_like(h[blocks[0]], memory_format=torch.contiguous_format) if need_W else None
    for b in blocks:
        if need_h:
            _taps_into(dh[b], g[b], W[b], k, adjoint=True)
        if need_W:
            _weight_grad_into(dWt[:, b], g[b], h[b], k, buf[: b.stop - b.start])
    dW = dWt.permute(1, 2, 3, 0).contiguous() if need_W else None
    return dh, dW, None


def _warp_taps_sum(h, W, k):
    """The out-of-place sum of the generic code (for lazy/compiled devices, whose compiler fuses it)."""
    return shifted_tap_sum(h, W, k, pad_hw)


def warp_taps(h, W, k):
    if h.device.type in ("cpu", "cuda"):
        return _WarpTaps.apply(h, W, k)
    return _warp_taps_sum(h, W, k)


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
FAST_PATHS = {op: globals()[op] for op in OPS}

__all__ = ["FAST_PATHS", *FAST_PATHS]


def register() -> None:
    """Register :data:`FAST_PATHS` for torch tensors unless they are already the active ones (idempotent)."""
    current = ops.fast_paths(torch_xp)
    for op, fn in FAST_PATHS.items():
        if current.get(op) is not fn:
            ops.register_fast_path(op, is_torch_namespace, fn)


def disable_tf32() -> None:
    """float32 matmuls and convolutions in IEEE float32 on CUDA (TF32 keeps 10 mantissa bits: ~5e-4 relative)."""
    cudnn_conv = getattr(torch.backends.cudnn, "conv", None)
    if hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(cudnn_conv, "fp32_precision"):
        # PyTorch >= 2.9: the per-backend precision API (mixing it with the legacy
        # allow_tf32 flags is an error there).
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        cudnn_conv.fp32_precision = "ieee"
    else:  # pragma: no cover - older PyTorch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def activate() -> None:
    """What activating the torch backend does: TF32 off (unless ``TRIVD_TORCH_ALLOW_TF32=1``), fast paths on."""
    if not env_flag("TRIVD_TORCH_ALLOW_TF32", "0"):
        disable_tf32()
    register()
