"""Kernel-based warping (paper appendix B, Eqs. 11-12) and the motion field of Fig. 3.

Vectorised, array-API-only versions of :mod:`reference.warping`; see there for the
loops.  Everything here is built from array API operations and the generic
primitives of :mod:`trivd_core.ops`, so it runs on NumPy, array_api_strict,
jax.numpy and torch, and is differentiable under jax/torch autodiff with respect
to every floating input.

Shapes (channels last): ``h (B, H, W, C)``, ``W (B, H, W, k*k)`` with tap index
``q = m*k + n`` (``m`` the row offset, ``n`` the column offset, both in
``[0, k-1]``), ``w (B, k*k, N)``, ``S (B, H, W, N)``, flows ``(B, H, W, 2)`` as
``(dy, dx)``.

Displacement convention: Eq. 11 reads the input at ``(i + dy, j + dx)`` with
``(dy, dx) = (m - p, n - p)``, ``p = (k-1)/2``.  Flows are the displacement of the
sampled source location (a backward, "pull" flow); the content moves by
``(-dy, -dx)``.  For ``k = 3``, a one-hot ``W`` on tap ``(m, n) = (2, 1)`` has flow
``(+1, 0)``: ``out[i, j] = h[i + 1, j]``, the picture moves one pixel up and
zeros enter at the bottom.
"""

from __future__ import annotations

from collections.abc import Sequence

from array_api_compat import array_namespace, device, is_array_api_obj

from . import ops
from ._validate import at_the_door, check_array, check_kernel_size, same_namespace

__all__ = ["pixelwise_warp", "factorized_kernels", "expected_flow", "combine_flows"]


def _namespace(fn: str, **arrays: object):
    """One namespace and one dtype for all arrays, or a TypeError naming ``fn``."""
    try:
        array_namespace(*arrays.values())
    except TypeError as e:
        names = ", ".join(f"'{n}'" for n in arrays)
        raise TypeError(f"{fn}(): arguments {names} must come from one array namespace ({e})") from None
    return same_namespace(fn, **arrays)


def _check_taps(fn: str, name: str, x, axis: int, k: int) -> None:
    if x.shape[axis] != k * k:
        raise ValueError(
            f"{fn}(): argument '{name}' must hold k*k = {k * k} kernel weights (k={k}) on axis {axis}, "
            f"got shape {tuple(x.shape)}"
        )


@at_the_door
def pixelwise_warp(h, W, k: int = 3):
    r"""Pixelwise kernel-based warping, Eq. 11 of appendix B.

    ``h_tilde[b,i,j,c] = sum_{m,n in [0,k-1]} W[b,i,j,m*k+n] * h[b, i+m-(k-1)/2, j+n-(k-1)/2, c]``
    with ``h`` zero-padded by ``(k-1)/2`` (a dynamic depth-wise locally connected layer).

    The sum is :func:`trivd_core.ops.warp_taps`: generically a sum over the ``k*k``
    taps of a shifted slice of the padded ``h`` times the tap's weight plane; a
    backend may register a fast path for it (torch accumulates into one buffer and
    has its own backward).  Either way it is differentiable w.r.t. ``h`` and ``W``
    under the backend's autodiff.

    Args:
        h: ``(B, H, W, C)`` floating map.
        W: ``(B, H, W, k*k)`` per-pixel weights, same dtype and namespace as ``h``.
        k: odd positive kernel size (default 3, the paper's).

    Returns:
        ``(B, H, W, C)``, the warped map.
    """
    fn = "pixelwise_warp"
    k = check_kernel_size(fn, k)
    dims: dict[str, int] = {}
    check_array(fn, "h", h, ("B", "H", "W", "C"), dims)
    check_array(fn, "W", W, ("B", "H", "W", None), dims)
    _check_taps(fn, "W", W, 3, k)
    _namespace(fn, h=h, W=W)
    return ops.warp_taps(h, W, k)


@at_the_door
def factorized_kernels(w, S):
    r"""Per-pixel weights from ``N`` factorized kernels, Eq. 12 of appendix B.

    ``W[b,i,j,q] = sum_l S[b,i,j,l] * w[b,q,l]``.

    Args:
        w: ``(B, k*k, N)`` kernels per sample, ``k`` odd (``k*k`` in 1, 9, 25, ...).
        S: ``(B, H, W, N)`` selection map, same dtype and namespace as ``w``.

    Returns:
        ``W`` of shape ``(B, H, W, k*k)``.
    """
    fn = "factorized_kernels"
    dims: dict[str, int] = {}
    check_array(fn, "w", w, ("B", "k*k", "N"), dims)
    check_array(fn, "S", S, ("B", "H", "W", "N"), dims)
    kk = w.shape[1]
    k = round(kk**0.5)
    if k * k != kk or k % 2 == 0:
        raise ValueError(
            f"{fn}(): argument 'w' must hold k*k kernel weights for an odd k (1, 9, 25, ...) on axis 1, "
            f"got shape {tuple(w.shape)}"
        )
    xp = _namespace(fn, w=w, S=S)
    # (B, H, W, N) @ (B, 1, N, k*k): the batch axes (B, H) of S broadcast against (B, 1).
    return xp.matmul(S, xp.expand_dims(xp.matrix_transpose(w), axis=1))


@at_the_door
def expected_flow(W, k: int = 3):
    r"""Expected kernel-grid displacement under ``W``: the motion field of Fig. 3.

    ``flow[b,i,j] = sum_{m,n} W[b,i,j,m*k+n] * (m - (k-1)/2, n - (k-1)/2)``, returned as
    ``(dy, dx)`` on the last axis.  This is the first moment of ``W[b,i,j,:]``, the
    expectation when the weights sum to one (softmax outputs); ``W`` is not
    renormalised.  ``(dy, dx)`` is where Eq. 11 samples from, relative to the
    output pixel: a one-hot ``W`` on tap ``(m, n)`` gives ``(m - p, n - p)`` and
    moves the content by ``(p - m, p - n)`` pixels (module docstring).

    Args:
        W: ``(B, H, W, k*k)`` floating weights.
        k: odd positive kernel size.

    Returns:
        ``(B, H, W, 2)`` with ``[..., 0] = dy`` (rows) and ``[..., 1] = dx`` (columns).
    """
    fn = "expected_flow"
    k = check_kernel_size(fn, k)
    xp = check_array(fn, "W", W, ("B", "H", "W", None))
    _check_taps(fn, "W", W, 3, k)
    p = (k - 1) // 2
    # Tap q = m*k + n sits at (m - p, n - p): the displacement table (k*k, 2), exact small integers.
    table = [[float(q // k - p), float(q % k - p)] for q in range(k * k)]
    d = xp.asarray(table, dtype=W.dtype, device=device(W))
    return xp.matmul(W, d)


@at_the_door
def combine_flows(coarse_to_fine: Sequence):
    r"""Combine flow fields across resolutions, coarse to fine (section 4.4, Fig. 3).

    ``acc = F_0``; for each finer field ``F_{i+1}`` with ``H_{i+1} = f*H_i`` and
    ``W_{i+1} = f*W_i`` (one positive integer ``f``, inferred):
    ``acc = f * upsample_nearest(acc, f) + F_{i+1}``.  A coarse displacement of one
    pixel is ``f`` fine pixels, hence the factor.  A single field is returned
    unchanged (the same object).

    Args:
        coarse_to_fine: non-empty list or tuple of ``(B, H_i, W_i, 2)`` ``(dy, dx)``
            fields, coarsest first, one batch size, dtype and namespace.

    Returns:
        ``(B, H_last, W_last, 2)``.
    """
    fn = "combine_flows"
    if is_array_api_obj(coarse_to_fine) or not isinstance(coarse_to_fine, (list, tuple)):
        raise TypeError(
            f"{fn}(): argument 'coarse_to_fine' must be a list or tuple of (B, H_i, W_i, 2) arrays "
            f"(wrap a single field in a list), got {type(coarse_to_fine).__name__}"
        )
    if len(coarse_to_fine) == 0:
        raise ValueError(f"{fn}(): argument 'coarse_to_fine' must hold at least one flow field, got none")
    dims: dict[str, int] = {}
    named = {}
    for idx, field in enumerate(coarse_to_fine):
        name = f"coarse_to_fine[{idx}]"
        check_array(fn, name, field, ("B", None, None, 2), dims)
        named[name] = field
    _namespace(fn, **named)
    acc = coarse_to_fine[0]
    for idx in range(1, len(coarse_to_fine)):
        fine = coarse_to_fine[idx]
        f = _factor(fn, idx, (acc.shape[1], acc.shape[2]), (fine.shape[1], fine.shape[2]))
        acc = ops.upsample_nearest(acc, f) * f + fine
    return acc


def _factor(fn: str, idx: int, coarse_hw: tuple[int, int], fine_hw: tuple[int, int]) -> int:
    (H_c, W_c), (H_f, W_f) = coarse_hw, fine_hw
    if min(H_c, W_c, H_f, W_f) < 1:
        raise ValueError(
            f"{fn}(): flow fields must have non-empty spatial axes; got ({H_c}, {W_c}) then ({H_f}, {W_f})"
        )
    if H_f % H_c or W_f % W_c:
        raise ValueError(
            f"{fn}(): argument 'coarse_to_fine[{idx}]' must have an integer multiple of the size of the previous, "
            f"coarser field (H, W) = ({H_c}, {W_c}); got (H, W) = ({H_f}, {W_f}) (fields go coarse to fine)"
        )
    f_h, f_w = H_f // H_c, W_f // W_c
    if f_h != f_w:
        raise ValueError(
            f"{fn}(): argument 'coarse_to_fine[{idx}]' must be upsampled by one factor on both axes; "
            f"(H, W) goes from ({H_c}, {W_c}) to ({H_f}, {W_f}), factors {f_h} and {f_w}"
        )
    return f_h
