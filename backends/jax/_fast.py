"""JAX fast paths for :mod:`trivd_core.ops`.

Every function takes exactly the (already validated) arguments of the generic op
and returns the same result: channels last, HWIO / THWIO kernels, SAME zero
padding for odd kernels, stride 1, cross-correlation (no kernel flip).

Convolutions pass ``precision=lax.Precision.HIGHEST``.  On CPU this changes
nothing, but on TPU the default precision of a float32 convolution is a single
bfloat16 pass (about 3 significant digits) and on Ampere-or-newer GPUs XLA may
use TF32 (10-bit mantissa); either would make a float32 fast path disagree with
the generic code (which is plain float32 matmuls) by far more than float32
rounding, and would fail the conformance tolerances.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from trivd_core.i3d import same_padding  # also adds the I3D op names to the fast-path hook
from trivd_core.ops import OPS, adaptive_bins, shifted_tap_sum

_HIGHEST = lax.Precision.HIGHEST


def pad_hw(x, ph, pw):
    widths = [(0, 0)] * (x.ndim - 3) + [(ph, ph), (pw, pw), (0, 0)]
    return jnp.pad(x, widths)


def conv2d(x, w, b=None):
    kh, kw = w.shape[0], w.shape[1]
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=(1, 1),
        padding=[((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2],
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=_HIGHEST,
    )
    return y if b is None else y + b


def conv3d(x, w, b=None):
    if jax.default_backend() == "cpu":
        y = _conv3d_as_conv2d(x, w)
    else:
        kt, kh, kw = w.shape[0], w.shape[1], w.shape[2]
        y = lax.conv_general_dilated(
            x,
            w,
            window_strides=(1, 1, 1),
            padding=[((kt - 1) // 2,) * 2, ((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2],
            dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
            precision=_HIGHEST,
        )
    return y if b is None else y + b


def _conv3d_as_conv2d(x, w):
    r"""The SAME 3-D convolution as one 2-D convolution of the frames (used on XLA:CPU).

    ``y[b,t] = sum_d conv2d(x_pad[b, t + d], w[d])`` with ``x`` zero-padded by ``p_t = (kt-1)/2``
    frames in time; the ``kt`` time-shifted copies are stacked on the channel axis (index
    ``d*C_in + c``) and the kernel is reshaped to match, ``(kh, kw, kt*C_in, C_out)``, so the sum
    over ``d`` is part of the 2-D convolution's contraction.  The frames of all clips form its batch
    (``B*T``).  On XLA:CPU, at the shapes of D's video blocks, forward plus both gradients of this
    form ran 3-10x faster than ``conv_general_dilated`` in 3-D (docs/benchmarks.md, "Findings");
    the price is the ``kt``-fold copy of ``x`` it makes (and keeps for the backward pass).
    """
    B, T, H, W, C = x.shape
    kt, kh, kw, _, C_out = w.shape
    if kt == 1:
        xc, wc = jnp.reshape(x, (B * T, H, W, C)), w[0]
    else:
        pt = (kt - 1) // 2
        xp = jnp.pad(x, [(0, 0), (pt, pt), (0, 0), (0, 0), (0, 0)])
        xc = jnp.concatenate([xp[:, d : d + T] for d in range(kt)], axis=-1)
        xc = jnp.reshape(xc, (B * T, H, W, kt * C))
        wc = jnp.reshape(jnp.transpose(w, (1, 2, 0, 3, 4)), (kh, kw, kt * C, C_out))
    return jnp.reshape(conv2d(xc, wc), (B, T, H, W, C_out))


def avg_pool(x, s):
    window = (1,) * (x.ndim - 3) + (s, s, 1)
    total = lax.reduce_window(x, np.array(0, dtype=x.dtype), lax.add, window, window, "VALID")
    return total / (s * s)


def upsample_nearest(x, s):
    return jnp.repeat(jnp.repeat(x, s, axis=x.ndim - 3), s, axis=x.ndim - 2)


def adaptive_max_pool(x, out_hw):
    oh, ow = out_hw
    B, H, W, C = x.shape
    if H % oh == 0 and W % ow == 0:
        # Equal bins: one reshape and one reduction instead of oh * ow slices.
        return jnp.max(jnp.reshape(x, (B, oh, H // oh, ow, W // ow, C)), axis=(2, 4))
    rows = []
    for i0, i1 in adaptive_bins(H, oh):
        rows.append(jnp.stack([jnp.max(x[:, i0:i1, j0:j1, :], axis=(1, 2)) for j0, j1 in adaptive_bins(W, ow)], axis=1))
    return jnp.stack(rows, axis=1)


def warp_taps(h, W, k):
    # Eq. 11 as the generic sum of k*k shifted products: under jit XLA fuses the products and the
    # sum into one loop over the output (no full-size temporaries), which is what a hand-fused
    # version would do; eager calls dispatch op by op as the generic code does.
    return shifted_tap_sum(h, W, k, pad_hw)


def stop_gradient(x):
    return jax.lax.stop_gradient(x)


# ---------------------------------------------------------------------------
# I3D primitives (trivd_core.i3d): TF SAME padding, computed explicitly so that the
# asymmetric case (odd total padding: the extra position at the end) is spelled out.


def _same_pads(spatial, window, stride):
    return [same_padding(n, k, s)[:2] for n, k, s in zip(spatial, window, stride)]


def conv3d_strided(x, w, b, stride):
    if jax.default_backend() == "cpu":
        y = _conv3d_strided_as_conv2d(x, w, stride)
    else:
        y = lax.conv_general_dilated(
            x,
            w,
            window_strides=tuple(stride),
            padding=_same_pads(x.shape[1:4], w.shape[:3], stride),
            dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
            precision=_HIGHEST,
        )
    return y if b is None else y + b


def _conv3d_strided_as_conv2d(x, w, stride):
    r"""The strided TF-SAME 3-D convolution as one 2-D convolution of the output's frames (used on XLA:CPU).

    As :func:`_conv3d_as_conv2d` with a time stride: ``x`` is padded in time by TF SAME
    (``same_padding(T, kt, s_t)``, the extra frame at the end), output frame ``t`` reads the input
    frames ``s_t t + d`` for ``d < kt``, which are stacked on the channel axis (index ``d*C_in + c``)
    against the kernel reshaped to ``(kh, kw, kt*C_in, C_out)``; the 2-D convolution then applies the
    spatial strides and TF SAME padding.  On the I3D of FVD (batch 4 x 16 x 224 x 224) the whole forward
    ran 1.8x faster on 2 cores than with ``conv_general_dilated`` in 3-D (docs/benchmarks.md, "I3D").
    """
    B, T, H, W, C = x.shape
    kt, kh, kw, _, C_out = w.shape
    st, sh, sw = stride
    before, after, T_out = same_padding(T, kt, st)
    xp = jnp.pad(x, [(0, 0), (before, after), (0, 0), (0, 0), (0, 0)]) if before or after else x
    span = st * (T_out - 1) + 1
    xc = jnp.concatenate([xp[:, d : d + span : st] for d in range(kt)], axis=-1)
    xc = jnp.reshape(xc, (B * T_out, H, W, kt * C))
    wc = jnp.reshape(jnp.transpose(w, (1, 2, 0, 3, 4)), (kh, kw, kt * C, C_out))
    y = lax.conv_general_dilated(
        xc,
        wc,
        window_strides=(sh, sw),
        padding=_same_pads((H, W), (kh, kw), (sh, sw)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=_HIGHEST,
    )
    return jnp.reshape(y, (B, T_out, y.shape[1], y.shape[2], C_out))


def max_pool3d(x, window, stride):
    pads = [(0, 0), *_same_pads(x.shape[1:4], window, stride), (0, 0)]
    init = np.array(-np.inf, dtype=x.dtype)
    return lax.reduce_window(x, init, lax.max, (1, *window, 1), (1, *stride, 1), pads)


def resize_bilinear(x, size):
    # "linear" with antialias=False is TF's half-pixel bilinear resize, edges (clamping)
    # included; antialias (jax's default) would low-pass filter when shrinking.
    shape = (*x.shape[:-3], size[0], size[1], x.shape[-1])
    return jax.image.resize(x, shape, method="linear", antialias=False, precision=_HIGHEST)


#: op name -> fast path, in the order they are registered.
FAST_PATHS = {op: globals()[op] for op in OPS}

__all__ = ["FAST_PATHS", *FAST_PATHS]
