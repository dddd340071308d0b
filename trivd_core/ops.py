"""Primitives the array API lacks, written against it, and the fast-path hook.

The array API standard has no convolution, no pad and no pooling.  This module
implements each one with operations the standard does have, so that trivd_core
runs - slowly - on any compliant namespace, ``array_api_strict`` included:

* ``pad_hw``            zero padding by concatenation,
* ``conv2d``/``conv3d`` SAME-padded, stride-1 convolution as a sum over kernel
                        taps of shifted matmuls (cross-correlation, as in every
                        deep-learning framework),
* ``avg_pool``          non-overlapping ``s x s`` mean by reshape,
* ``upsample_nearest``  nearest-neighbour ``x s`` by broadcast and reshape,
* ``adaptive_max_pool`` the adaptive max-pool of the hyper-network (F.1),
* ``warp_taps``         the sum over kernel taps of Eq. 11 (pixelwise warping,
                        appendix B) as a sum of shifted products,
* ``stop_gradient``     identity here (NumPy has no autodiff).

Layout follows ARCHITECTURE.md: channels last, kernels HWIO / THWIO.

The hook
--------
A backend may register a faster equivalent of any name in ``OPS`` for its
namespace with :func:`register_fast_path`.  Every public op first looks for a
fast path whose predicate accepts the namespace of its first argument, and
falls back to the generic code.  :func:`generic_only` switches fast paths off
(the conformance suite uses it to compare a fast path with the generic code).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator

from array_api_compat import array_namespace, device

from ._validate import at_the_door, check_array, check_kernel_size, check_positive_int, same_namespace

__all__ = ["OPS", "register_fast_path", "unregister_fast_path", "fast_paths", "generic_only",
           "pad_hw", "conv2d", "conv3d", "avg_pool", "upsample_nearest", "adaptive_max_pool", "warp_taps",
           "stop_gradient", "sigmoid", "relu", "softmax"]

#: Names a backend may supply a fast path for.
OPS = ("pad_hw", "conv2d", "conv3d", "avg_pool", "upsample_nearest", "adaptive_max_pool", "warp_taps", "stop_gradient",
       # used by the I3D feature network (trivd_core/i3d.py, FVD)
       "conv3d_strided", "max_pool3d", "resize_bilinear")

_registry: dict[str, list[tuple[Callable[[object], bool], Callable]]] = {name: [] for name in OPS}
_local = threading.local()


def register_fast_path(op: str, predicate: Callable[[object], bool], fn: Callable) -> None:
    """Register ``fn`` as the implementation of ``op`` for namespaces where ``predicate(xp)`` is true.

    ``fn`` takes exactly the arguments of the generic op (already validated) and
    must return the same result.  Later registrations win.
    """
    if op not in _registry:
        raise ValueError(f"register_fast_path(): argument 'op' must be one of {', '.join(OPS)}; got {op!r}")
    if not callable(predicate) or not callable(fn):
        raise TypeError("register_fast_path(): 'predicate' and 'fn' must be callables")
    _registry[op].insert(0, (predicate, fn))


def unregister_fast_path(op: str, fn: Callable) -> None:
    """Remove a fast path registered with :func:`register_fast_path`."""
    _registry[op] = [(p, f) for p, f in _registry[op] if f is not fn]


def fast_paths(xp) -> dict[str, Callable]:
    """The fast paths that apply to namespace ``xp`` (op name -> function)."""
    out = {}
    for op, entries in _registry.items():
        for predicate, fn in entries:
            if predicate(xp):
                out[op] = fn
                break
    return out


@contextlib.contextmanager
def generic_only() -> Iterator[None]:
    """Within this block every op uses its generic array-API implementation."""
    previous = getattr(_local, "generic", False)
    _local.generic = True
    try:
        yield
    finally:
        _local.generic = previous


def _fast(op: str, xp) -> Callable | None:
    if getattr(_local, "generic", False):
        return None
    for predicate, fn in _registry[op]:
        if predicate(xp):
            return fn
    return None


def _zeros_like_shape(xp, x, shape):
    return xp.zeros(shape, dtype=x.dtype, device=device(x))


# ---------------------------------------------------------------------------
# padding


@at_the_door
def pad_hw(x, ph: int, pw: int):
    """Zero-pad the two spatial axes (``-3`` and ``-2``) of a channels-last array by ``ph``/``pw`` on each side."""
    xp = check_array("pad_hw", "x", x)
    if x.ndim < 3:
        raise ValueError(f"pad_hw(): argument 'x' must have at least 3 axes (..., H, W, C), got shape {tuple(x.shape)}")
    for name, p in (("ph", ph), ("pw", pw)):
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise ValueError(f"pad_hw(): argument '{name}' must be a non-negative int, got {p!r}")
    fast = _fast("pad_hw", xp)
    if fast is not None:
        return fast(x, ph, pw)
    return _pad_hw(xp, x, ph, pw)


def _pad_hw(xp, x, ph, pw):
    if ph:
        shape = (*x.shape[:-3], ph, *x.shape[-2:])
        z = _zeros_like_shape(xp, x, shape)
        x = xp.concat([z, x, z], axis=x.ndim - 3)
    if pw:
        shape = (*x.shape[:-2], pw, x.shape[-1])
        z = _zeros_like_shape(xp, x, shape)
        x = xp.concat([z, x, z], axis=x.ndim - 2)
    return x


def _pad_axis(xp, x, axis, p):
    if not p:
        return x
    shape = list(x.shape)
    shape[axis] = p
    z = _zeros_like_shape(xp, x, tuple(shape))
    return xp.concat([z, x, z], axis=axis)


# ---------------------------------------------------------------------------
# convolution


def _check_odd_kernel(fn, w, axes):
    for a in axes:
        if w.shape[a] % 2 == 0:
            raise ValueError(
                f"{fn}(): argument 'w' must have odd spatial/temporal kernel sizes (SAME padding), got shape {tuple(w.shape)}"
            )


@at_the_door
def conv2d(x, w, b=None):
    """SAME-padded stride-1 2-D convolution (cross-correlation), channels last.

    ``y[b, i, j, o] = sum_{m, n, c} x_pad[b, i + m, j + n, c] * w[m, n, c, o] + b[o]``
    with ``x`` zero-padded by ``(kh - 1) / 2`` and ``(kw - 1) / 2``.

    x: ``(B, H, W, C_in)``; w: ``(kh, kw, C_in, C_out)`` (odd ``kh``, ``kw``);
    b: ``(C_out,)`` or None.  Returns ``(B, H, W, C_out)``.
    """
    dims: dict[str, int] = {}
    xp = check_array("conv2d", "x", x, ("B", "H", "W", "C_in"), dims)
    check_array("conv2d", "w", w, ("kh", "kw", "C_in", "C_out"), dims)
    _check_odd_kernel("conv2d", w, (0, 1))
    if b is not None:
        check_array("conv2d", "b", b, ("C_out",), dims)
    fast = _fast("conv2d", xp)
    if fast is not None:
        return fast(x, w, b)
    kh, kw = w.shape[0], w.shape[1]
    H, W = x.shape[1], x.shape[2]
    xpad = _pad_hw(xp, x, (kh - 1) // 2, (kw - 1) // 2)
    y = None
    for m in range(kh):
        for n in range(kw):
            term = xp.matmul(xpad[:, m : m + H, n : n + W, :], w[m, n, :, :])
            y = term if y is None else y + term
    if b is not None:
        y = y + b
    return y


@at_the_door
def conv3d(x, w, b=None):
    """SAME-padded stride-1 3-D convolution (cross-correlation), channels last.

    x: ``(B, T, H, W, C_in)``; w: ``(kt, kh, kw, C_in, C_out)`` (odd sizes);
    b: ``(C_out,)`` or None.  Returns ``(B, T, H, W, C_out)``.  Time is
    zero-padded like space.
    """
    dims: dict[str, int] = {}
    xp = check_array("conv3d", "x", x, ("B", "T", "H", "W", "C_in"), dims)
    check_array("conv3d", "w", w, ("kt", "kh", "kw", "C_in", "C_out"), dims)
    _check_odd_kernel("conv3d", w, (0, 1, 2))
    if b is not None:
        check_array("conv3d", "b", b, ("C_out",), dims)
    fast = _fast("conv3d", xp)
    if fast is not None:
        return fast(x, w, b)
    kt, kh, kw = w.shape[0], w.shape[1], w.shape[2]
    T, H, W = x.shape[1], x.shape[2], x.shape[3]
    xpad = _pad_axis(xp, _pad_hw(xp, x, (kh - 1) // 2, (kw - 1) // 2), 1, (kt - 1) // 2)
    y = None
    for d in range(kt):
        for m in range(kh):
            for n in range(kw):
                term = xp.matmul(xpad[:, d : d + T, m : m + H, n : n + W, :], w[d, m, n, :, :])
                y = term if y is None else y + term
    if b is not None:
        y = y + b
    return y


# ---------------------------------------------------------------------------
# pooling and upsampling


def _check_divisible(fn, x, s):
    H, W = x.shape[-3], x.shape[-2]
    if H % s or W % s:
        raise ValueError(
            f"{fn}(): the spatial size (H, W) = ({H}, {W}) of argument 'x' must be divisible by s={s}"
        )


@at_the_door
def avg_pool(x, s: int):
    """Mean over non-overlapping ``s x s`` windows of the spatial axes of ``(..., H, W, C)``."""
    xp = check_array("avg_pool", "x", x)
    check_positive_int("avg_pool", s, "s")
    if x.ndim < 3:
        raise ValueError(f"avg_pool(): argument 'x' must have at least 3 axes (..., H, W, C), got shape {tuple(x.shape)}")
    _check_divisible("avg_pool", x, s)
    fast = _fast("avg_pool", xp)
    if fast is not None:
        return fast(x, s)
    *lead, H, W, C = x.shape
    r = xp.reshape(x, (*lead, H // s, s, W // s, s, C))
    n = len(lead)
    return xp.mean(r, axis=(n + 1, n + 3))


@at_the_door
def upsample_nearest(x, s: int):
    """Nearest-neighbour upsampling by ``s`` of the spatial axes of ``(..., H, W, C)``."""
    xp = check_array("upsample_nearest", "x", x)
    check_positive_int("upsample_nearest", s, "s")
    if x.ndim < 3:
        raise ValueError(
            f"upsample_nearest(): argument 'x' must have at least 3 axes (..., H, W, C), got shape {tuple(x.shape)}"
        )
    fast = _fast("upsample_nearest", xp)
    if fast is not None:
        return fast(x, s)
    *lead, H, W, C = x.shape
    n = len(lead)
    e = xp.expand_dims(xp.expand_dims(x, axis=n + 1), axis=n + 3)  # (..., H, 1, W, 1, C)
    e = xp.broadcast_to(e, (*lead, H, s, W, s, C))
    return xp.reshape(e, (*lead, H * s, W * s, C))


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """Bin edges of adaptive pooling: bin ``i`` covers ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    return [((i * size) // out, math.ceil((i + 1) * size / out)) for i in range(out)]


@at_the_door
def adaptive_max_pool(x, out_hw: tuple[int, int] = (4, 4)):
    """Adaptive max-pooling of ``(B, H, W, C)`` to ``(B, oh, ow, C)`` (PyTorch's bin rule, see ``adaptive_bins``)."""
    xp = check_array("adaptive_max_pool", "x", x, ("B", "H", "W", "C"))
    oh, ow = out_hw
    check_positive_int("adaptive_max_pool", oh, "out_hw[0]")
    check_positive_int("adaptive_max_pool", ow, "out_hw[1]")
    fast = _fast("adaptive_max_pool", xp)
    if fast is not None:
        return fast(x, (oh, ow))
    rows = []
    for i0, i1 in adaptive_bins(x.shape[1], oh):
        cols = [xp.max(x[:, i0:i1, j0:j1, :], axis=(1, 2)) for j0, j1 in adaptive_bins(x.shape[2], ow)]
        rows.append(xp.stack(cols, axis=1))
    return xp.stack(rows, axis=1)


# ---------------------------------------------------------------------------
# pixelwise warping (the inner sum of trivd_core.warping.pixelwise_warp)


@at_the_door
def warp_taps(h, W, k: int):
    r"""Sum over the ``k*k`` kernel taps of Eq. 11 (appendix B): a dynamic depth-wise locally connected layer.

    ``out[b,i,j,c] = sum_{m,n in [0,k-1]} W[b,i,j,m*k+n] * h_pad[b, i+m, j+n, c]``
    with ``h_pad`` the map ``h`` zero-padded by ``p = (k-1)/2`` on both spatial axes,
    i.e. the tap ``q = m*k + n`` reads ``h`` at ``(i + m - p, j + n - p)`` and zero
    outside the map.  :func:`trivd_core.warping.pixelwise_warp` is the public,
    documented form; this is the hook a backend may replace (the generic code below
    materialises each of the ``k*k`` products and partial sums as a full-size array).

    Args:
        h: ``(B, H, W, C)`` floating map.
        W: ``(B, H, W, k*k)`` per-pixel tap weights, same dtype and namespace as ``h``.
        k: odd positive kernel size.

    Returns:
        ``(B, H, W, C)``.
    """
    fn = "warp_taps"
    k = check_kernel_size(fn, k)
    dims: dict[str, int] = {}
    check_array(fn, "h", h, ("B", "H", "W", "C"), dims)
    check_array(fn, "W", W, ("B", "H", "W", k * k), dims)
    xp = same_namespace(fn, h=h, W=W)
    fast = _fast("warp_taps", xp)
    if fast is not None:
        return fast(h, W, k)
    return shifted_tap_sum(h, W, k, lambda x, ph, pw: _pad_hw(xp, x, ph, pw))


@at_the_door
def shifted_tap_sum(h, W, k: int, pad_hw: Callable):
    """The generic body of :func:`warp_taps`: ``sum_q W[..., q] * shift_q(h_pad)``, each product a new array.

    ``pad_hw(x, ph, pw)`` zero-pads the two spatial axes; backends whose compiler fuses
    the sum (XLA) use this body with their own padding.  No argument checks.
    """
    H, Wd = h.shape[1], h.shape[2]
    p = (k - 1) // 2
    h_pad = pad_hw(h, p, p)
    out = None
    for m in range(k):
        for n in range(k):
            q = m * k + n
            term = W[:, :, :, q : q + 1] * h_pad[:, m : m + H, n : n + Wd, :]
            out = term if out is None else out + term
    return out


# ---------------------------------------------------------------------------
# elementwise helpers


def stop_gradient(x):
    """Value of ``x`` with no gradient flowing back (identity where there is no autodiff)."""
    xp = array_namespace(x)
    fast = _fast("stop_gradient", xp)
    return x if fast is None else fast(x)


def sigmoid(x):
    """Logistic function, evaluated without overflow for large ``|x|``."""
    xp = array_namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu(x):
    xp = array_namespace(x)
    return xp.maximum(x, xp.zeros_like(x))


def softmax(x, axis: int = -1):
    """Softmax along ``axis`` with the max subtracted first."""
    xp = array_namespace(x)
    z = x - stop_gradient(xp.max(x, axis=axis, keepdims=True))
    e = xp.exp(z)
    return e / xp.sum(e, axis=axis, keepdims=True)
