"""Kernel-based warping (paper appendix B) and the motion field of Fig. 3, as loops.

Notation (appendix B and section 4.4 of Luc et al., 2020), written in plain text as
everywhere in ``reference/`` (``h~`` for h-tilde, ``_{i,j}`` for subscripts):

* ``h``  - the map to warp, ``(B, H, W, C)`` (in the recurrent units, ``h_{t-1}``);
* ``k``  - the (odd) kernel size; taps are indexed by the row offset ``m`` and the
  column offset ``n``, both in ``[[0, k-1]]``, and flattened as ``q = m*k + n``;
* ``W``  - per-pixel warping weights, ``(B, H, W, k*k)``; ``W_{i,j}[q]`` weighs
  tap ``q`` at pixel ``(i, j)`` (the paper's bold W; the width is also written W,
  as in the paper, the meaning being clear from context);
* ``w``  - the ``N`` factorized kernels, ``(B, k*k, N)``; ``w[q, l]``;
* ``S``  - the selection map, ``(B, H, W, N)``; ``S_{i,j}[l]``;
* ``p = (k - 1) / 2`` - the padding, so that tap ``(m, n)`` sits at the
  displacement ``(dy, dx) = (m - p, n - p)`` from the output pixel.

Displacement convention (used by :func:`expected_flow` and :func:`combine_flows`):
Eq. 11 *reads* the input at ``(i + dy, j + dx)``.  A flow ``(dy, dx)`` here is
therefore the displacement of the sampled source location relative to the
output pixel (a backward, "pull" flow): with a one-hot ``W`` on tap ``(m, n)``
the output is ``out[i, j] = h[i + m - p, j + n - p]``, so the picture moves by
``(-dy, -dx)`` = ``(p - m, p - n)`` pixels.  Example, ``k = 3``: a one-hot on
tap ``(m, n) = (2, 1)`` gives ``(dy, dx) = (+1, 0)``; output row ``i`` shows
input row ``i + 1``, i.e. the content moves one pixel *up*, and a row of zeros
enters at the bottom.

The batch axis ``B`` is outermost in every loop; the paper writes each equation
for a single sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._checks import check_array

__all__ = ["pixelwise_warp", "factorized_kernels", "expected_flow", "combine_flows"]


# ---------------------------------------------------------------------------
# argument checks (kept local: the reference never imports trivd_core)


def _check_k(fn, k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{fn}(): argument 'k' must be an odd positive int, got {k!r} ({type(k).__name__})")
    if k < 1 or k % 2 == 0:
        raise ValueError(f"{fn}(): argument 'k' must be an odd positive int (1, 3, 5, ...), got {k}")
    return int(k)


def _check_taps(fn, name, size, k, shape):
    if size != k * k:
        raise ValueError(
            f"{fn}(): argument '{name}' must hold k*k = {k * k} kernel weights (k={k}) on its tap axis, "
            f"got shape {shape}"
        )


def _check_same(fn, name, got, ref_name, want, what):
    if got != want:
        raise ValueError(f"{fn}(): argument '{name}' must have {what} {want} (as in '{ref_name}'), got {got}")


def _check_dtypes(fn, **arrays):
    names = list(arrays)
    first = names[0]
    for n in names[1:]:
        if arrays[n].dtype != arrays[first].dtype:
            raise TypeError(
                f"{fn}(): arguments must share one dtype; '{first}' is {arrays[first].dtype} "
                f"but '{n}' is {arrays[n].dtype}"
            )


def _tap_sqrt(fn, name, kk, shape):
    """The odd ``k`` with ``k*k == kk``, or a named error."""
    k = int(round(kk**0.5))
    if k * k != kk or k % 2 == 0:
        raise ValueError(
            f"{fn}(): argument '{name}' must hold k*k kernel weights for an odd k (1, 9, 25, ...) on axis 1, "
            f"got shape {shape}"
        )
    return k


# ---------------------------------------------------------------------------
# Eq. 11 and Eq. 12


def pixelwise_warp(h, W, k=3):
    r"""Pixelwise kernel-based warping, appendix B, Eq. 11.

    Equation::

        h~_{i,j}[c] = sum_{m=0}^{k-1} sum_{n=0}^{k-1} W_{i,j}[m k + n] * h_{i+m-p, j+n-p}[c]      (11)

    with ``p = (k-1)/2`` and ``h`` zero-padded by ``p`` on each side so that the
    output keeps the spatial size: a dynamic, depth-wise, locally connected layer.
    In the recurrent units ``h`` is ``h_{t-1}`` and the result ``h~_{t-1}`` (Eq. 7).

    Args:
        h: ``(B, H, W, C)`` floating map to warp.
        W: ``(B, H, W, k*k)`` per-pixel weights, same dtype as ``h``; tap
            ``q = m*k + n`` (``m`` the row offset, ``n`` the column offset).
        k: odd positive kernel size.

    Returns:
        ``h_tilde`` of shape ``(B, H, W, C)``.
    """
    fn = "pixelwise_warp"
    k = _check_k(fn, k)
    h = check_array(fn, "h", h, ndim=4)
    W = check_array(fn, "W", W, ndim=4)
    B, H, Wd, C = h.shape  # Wd: the width (W is the weight tensor)
    _check_same(fn, "W", W.shape[:3], "h", h.shape[:3], "leading (B, H, W) sizes")
    _check_taps(fn, "W", W.shape[3], k, W.shape)
    _check_dtypes(fn, h=h, W=W)
    p = (k - 1) // 2
    h_tilde = np.zeros((B, H, Wd, C), dtype=h.dtype)
    for b in range(B):
        for i in range(H):
            for j in range(Wd):
                for c in range(C):
                    acc = 0.0
                    for m in range(k):
                        for n in range(k):
                            ii, jj = i + m - p, j + n - p
                            if 0 <= ii < H and 0 <= jj < Wd:  # outside: the zero padding
                                acc += W[b, i, j, m * k + n] * h[b, ii, jj, c]
                    h_tilde[b, i, j, c] = acc
    return h_tilde


def factorized_kernels(w, S):
    r"""Per-pixel weights from factorized kernels, appendix B, Eq. 12.

    Equation::

        W_{i,j}[q] = sum_{l=1}^{N} S_{i,j}[l] * w[q, l]                 (12)

    ``S`` selects, at each pixel, a combination of the ``N`` sample-wide kernels
    ``w``; the result is used by :func:`pixelwise_warp` exactly as in the
    pixelwise case.

    Args:
        w: ``(B, k*k, N)`` the ``N`` kernels of each sample (``k`` odd).
        S: ``(B, H, W, N)`` the selection map, same dtype as ``w``.

    Returns:
        ``W`` of shape ``(B, H, W, k*k)``.
    """
    fn = "factorized_kernels"
    w = check_array(fn, "w", w, ndim=3)
    S = check_array(fn, "S", S, ndim=4)
    B, kk, N = w.shape
    _tap_sqrt(fn, "w", kk, w.shape)
    _check_same(fn, "S", S.shape[0], "w", B, "batch size B")
    _check_same(fn, "S", S.shape[3], "w", N, "number of kernels N on its last axis")
    _check_dtypes(fn, w=w, S=S)
    H, Wd = S.shape[1], S.shape[2]
    W = np.zeros((B, H, Wd, kk), dtype=w.dtype)
    for b in range(B):
        for i in range(H):
            for j in range(Wd):
                for q in range(kk):
                    acc = 0.0
                    for l in range(N):  # the paper's l = 1..N, zero-based here
                        acc += S[b, i, j, l] * w[b, q, l]
                    W[b, i, j, q] = acc
    return W


# ---------------------------------------------------------------------------
# the motion field of Fig. 3


def expected_flow(W, k=3):
    r"""Expected kernel-grid displacement under ``W`` (section 4.4, Fig. 3).

    ``W_{i,j}`` is read as a probability distribution over the ``k*k`` taps, and
    tap ``(m, n)`` as the flow vector ``(m - (k-1)/2, n - (k-1)/2)``:

    Equation::

        (dy, dx)_{i,j} = sum_{m=0}^{k-1} sum_{n=0}^{k-1} W_{i,j}[m k + n] * (m - p, n - p)

    This is the first moment of ``W_{i,j}``; it is the expectation when the
    weights sum to one (the softmax outputs of the TSRU/PTSRU hyper-networks);
    ``W`` is not renormalised.  ``(dy, dx)`` is the displacement of the source
    location that Eq. 11 reads (see the module docstring): a one-hot ``W`` on tap
    ``(m, n)`` gives ``(m - p, n - p)`` and moves the content by ``(p - m, p - n)``.

    Args:
        W: ``(B, H, W, k*k)`` floating weights.
        k: odd positive kernel size.

    Returns:
        ``(B, H, W, 2)``: ``[..., 0]`` is ``dy`` (rows), ``[..., 1]`` is ``dx`` (columns).
    """
    fn = "expected_flow"
    k = _check_k(fn, k)
    W = check_array(fn, "W", W, ndim=4)
    B, H, Wd, kk = W.shape
    _check_taps(fn, "W", kk, k, W.shape)
    p = (k - 1) // 2
    flow = np.zeros((B, H, Wd, 2), dtype=W.dtype)
    for b in range(B):
        for i in range(H):
            for j in range(Wd):
                dy = dx = 0.0
                for m in range(k):
                    for n in range(k):
                        dy += W[b, i, j, m * k + n] * (m - p)
                        dx += W[b, i, j, m * k + n] * (n - p)
                flow[b, i, j, 0] = dy
                flow[b, i, j, 1] = dx
    return flow


def combine_flows(coarse_to_fine: Sequence):
    r"""Combine flow fields across resolutions, coarse to fine (section 4.4, Fig. 3).

    With ``F_0`` the coarsest field and ``f_i = H_{i+1} / H_i = W_{i+1} / W_i``
    (a positive integer), iterate

    Equation::

        F^acc_0 = F_0
        F^acc_{i+1}[y, x] = f_i * F^acc_i[floor(y / f_i), floor(x / f_i)] + F_{i+1}[y, x]

    i.e. upsample the running field by nearest neighbour, multiply it by the
    factor (a displacement of one coarse pixel is ``f_i`` fine pixels) and add
    the finer field.  A single field is returned unchanged.

    Args:
        coarse_to_fine: a non-empty sequence of ``(B, H_i, W_i, 2)`` fields
            ``(dy, dx)``, coarsest first, all with the same ``B`` and dtype.

    Returns:
        The combined field at the finest resolution, ``(B, H_last, W_last, 2)``.
    """
    fn = "combine_flows"
    if isinstance(coarse_to_fine, np.ndarray) or not isinstance(coarse_to_fine, (list, tuple)):
        raise TypeError(
            f"{fn}(): argument 'coarse_to_fine' must be a list or tuple of (B, H_i, W_i, 2) arrays, "
            f"got {type(coarse_to_fine).__name__}"
        )
    if len(coarse_to_fine) == 0:
        raise ValueError(f"{fn}(): argument 'coarse_to_fine' must hold at least one flow field, got none")
    F = []
    for idx, field in enumerate(coarse_to_fine):
        name = f"coarse_to_fine[{idx}]"
        field = check_array(fn, name, field, ndim=4)
        if field.shape[3] != 2:
            raise ValueError(
                f"{fn}(): argument '{name}' must have 2 components (dy, dx) on its last axis, got shape {field.shape}"
            )
        if F:
            _check_same(fn, name, field.shape[0], "coarse_to_fine[0]", F[0].shape[0], "batch size B")
            _check_dtypes(fn, **{"coarse_to_fine[0]": F[0], name: field})
        F.append(field)
    if len(F) == 1:
        return coarse_to_fine[0]
    acc = F[0]
    for idx in range(1, len(F)):
        fine = F[idx]
        B, H_c, W_c, _ = acc.shape
        _, H_f, W_f, _ = fine.shape
        f = _factor(fn, idx, (H_c, W_c), (H_f, W_f))
        new = np.zeros_like(fine)
        for b in range(B):
            for y in range(H_f):
                for x in range(W_f):
                    new[b, y, x, :] = f * acc[b, y // f, x // f, :] + fine[b, y, x, :]
        acc = new
    return acc


def _factor(fn, idx, coarse_hw, fine_hw):
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
