"""Reference layers: spectral normalisation, orthogonality penalty, (conditional) batch norm.

Paper: appendix A ("All linear and convolutional layers ... have Spectral
Normalization applied to their weights"; "Batch normalization layers ... independently
for each time step, and conditioned on the 256-dimensional input feature vector") and
appendix E.2 (SN "approximated by only the first singular value", orthogonality
penalty with weight 0.0001, standing statistics, conditional BN = "scale and offset
... an affine transformation of the conditioning vector").

Notation
--------
``w``       a weight of rank >= 2 whose last axis is the output channel; it is read as
            the matrix ``W`` of shape ``(fan_in, C_out)``, ``W[k, o] = w.reshape(fan_in, C_out)[k, o]``
            (all axes but the last, in C order, form the row index ``k``).
``u``       ``(C_out,)`` running estimate of the leading right singular vector of ``W``.
``v``       ``(fan_in,)`` the matching left singular vector.
``sigma``   the estimate of the largest singular value of ``W``.
``normalize(a) = a / max(||a||_2, eps)``.
``x``       activations; ``mu``, ``sigma^2`` their mean and biased variance over the
            normalised axes; ``gamma`` (gain), ``beta`` (bias).

Everything is loops over matrix entries, output channels, samples and group
elements, so that each sum is visible.  No autodiff here: in trivd_core ``u``,
``u_new`` and ``v`` carry no gradient and the gradient of ``w_sn`` flows through the
``W`` in ``sigma``.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import check_array

__all__ = ["spectral_normalize", "orthogonal_penalty", "batch_stats", "batch_norm", "conditional_batch_norm"]


def _weight_matrix(fn, w):
    w = check_array(fn, "w", w)
    if w.ndim < 2:
        raise ValueError(f"{fn}(): argument 'w' must have at least 2 axes (..., C_out), got shape {w.shape}")
    C_out = w.shape[-1]
    fan_in = int(np.prod(w.shape[:-1]))
    return w.reshape(fan_in, C_out)


def _axes(fn, axes, ndim):
    if isinstance(axes, (int, np.integer)) or len(axes) == 0:
        raise TypeError(f"{fn}(): argument 'axes' must be a non-empty tuple of ints, got {axes!r}")
    out = sorted(int(a) % ndim for a in axes)
    if len(set(out)) != len(out) or any(not -ndim <= int(a) < ndim for a in axes):
        raise ValueError(f"{fn}(): argument 'axes' must hold distinct axes of a {ndim}-D 'x', got {axes!r}")
    return tuple(out)


def _normalize(a, eps):
    """``a / max(||a||_2, eps)`` with the norm as an explicit sum of squares."""
    sq = 0.0
    for k in range(a.shape[0]):
        sq += a[k] * a[k]
    return a / max(math.sqrt(sq), eps)


def spectral_normalize(w, u, *, eps=1e-12):
    """One power iteration of spectral normalisation; returns ``(w_sn, u_new)``.

    With ``W = reshape(w, (fan_in, C_out))`` (appendix A, E.2; Miyato et al. 2018)::

        v_k     = normalize( sum_o W[k, o] u[o] )            (v = normalize(W u))
        u_new_o = normalize( sum_k W[k, o] v[k] )            (u_new = normalize(W^T v))
        sigma   = sum_k sum_o v[k] W[k, o] u_new[o]          (sigma = v^T W u_new)
        w_sn    = w / sigma

    ``normalize(a) = a / max(||a||_2, eps)``.  Iterating (feeding ``u_new`` back as
    ``u``) makes ``sigma`` converge to the largest singular value of ``W``.
    """
    fn = "spectral_normalize"
    W = _weight_matrix(fn, w)
    u = check_array(fn, "u", u, ndim=1)
    fan_in, C_out = W.shape
    if u.shape != (C_out,):
        raise ValueError(f"{fn}(): argument 'u' must have shape ({C_out},) (C_out of 'w'), got {u.shape}")
    dtype = np.result_type(W, u)
    Wu = np.zeros(fan_in, dtype=dtype)
    for k in range(fan_in):
        for o in range(C_out):
            Wu[k] += W[k, o] * u[o]
    v = _normalize(Wu, eps)
    WTv = np.zeros(C_out, dtype=dtype)
    for o in range(C_out):
        for k in range(fan_in):
            WTv[o] += W[k, o] * v[k]
    u_new = _normalize(WTv, eps)
    sigma = 0.0
    for k in range(fan_in):
        for o in range(C_out):
            sigma += v[k] * W[k, o] * u_new[o]
    w_sn = np.asarray(w, dtype=dtype) / sigma
    return w_sn.astype(dtype), u_new.astype(dtype)


def orthogonal_penalty(w):
    """BigGAN's orthogonality penalty (appendix E.2, weight 1e-4 applied by the caller)::

        R(W) = || W^T W * (1 - I) ||_F^2 = sum_{o != o'} ( sum_k W[k, o] W[k, o'] )^2

    with ``W = reshape(w, (fan_in, C_out))``: the squared off-diagonal entries of the
    Gram matrix of the output columns.  Returns a 0-d array.
    """
    W = _weight_matrix("orthogonal_penalty", w)
    fan_in, C_out = W.shape
    R = 0.0
    for o in range(C_out):
        for o2 in range(C_out):
            if o == o2:
                continue
            g = 0.0
            for k in range(fan_in):
                g += W[k, o] * W[k, o2]
            R += g * g
    return np.asarray(R, dtype=W.dtype)


def batch_stats(x, axes):
    """Mean and biased variance of each group of ``x`` over ``axes`` (keepdims)::

        mu      = (1/N) sum_{n in group} x_n
        sigma^2 = (1/N) sum_{n in group} (x_n - mu)^2

    A group is one index of the axes not in ``axes``; ``N`` its number of elements.
    """
    x = check_array("batch_stats", "x", x)
    axes = _axes("batch_stats", axes, x.ndim)
    kept_shape = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    group_shape = tuple(d for a, d in enumerate(x.shape) if a in axes)
    N = int(np.prod(group_shape))
    mu = np.zeros(kept_shape, dtype=x.dtype)
    var = np.zeros(kept_shape, dtype=x.dtype)
    for g in np.ndindex(*kept_shape):
        members = []
        for r in np.ndindex(*group_shape):
            it = iter(r)
            members.append(tuple(next(it) if a in axes else g[a] for a in range(x.ndim)))
        s = 0.0
        for n in members:
            s += x[n]
        mu[g] = s / N
        s2 = 0.0
        for n in members:
            s2 += (x[n] - mu[g]) ** 2
        var[g] = s2 / N
    return mu, var


def batch_norm(x, gain, bias, axes, *, eps=1e-5, mean=None, var=None):
    """Batch normalisation (Ioffe & Szegedy 2015; appendix A, E.2)::

        y_n = gamma_n * (x_n - mu) / sqrt(sigma^2 + eps) + beta_n

    ``mu``, ``sigma^2`` from :func:`batch_stats` over ``axes``, or the given standing
    statistics ``mean``, ``var`` (both or neither).  ``gamma = gain`` and
    ``beta = bias`` broadcast against ``x``.
    """
    fn = "batch_norm"
    x = check_array(fn, "x", x)
    axes = _axes(fn, axes, x.ndim)
    gamma = np.broadcast_to(check_array(fn, "gain", gain), x.shape)
    beta = np.broadcast_to(check_array(fn, "bias", bias), x.shape)
    if (mean is None) != (var is None):
        raise ValueError(f"{fn}(): arguments 'mean' and 'var' must be given together")
    if mean is None:
        mean, var = batch_stats(x, axes)
    mu = np.broadcast_to(check_array(fn, "mean", mean), x.shape)
    sigma2 = np.broadcast_to(check_array(fn, "var", var), x.shape)
    y = np.zeros(x.shape, dtype=np.result_type(x, gamma, beta, mu, sigma2))
    for n in np.ndindex(*x.shape):
        y[n] = gamma[n] * (x[n] - mu[n]) / math.sqrt(sigma2[n] + eps) + beta[n]
    return y


def conditional_batch_norm(x, cond, params, *, axes=None, eps=1e-5, mean=None, var=None):
    """Conditional batch normalisation (appendix A, E.2; BigGAN's ``gain = 1 + affine``)::

        gamma[b, c] = 1 + sum_d cond[b, d] w_g[d, c] + b_g[c]
        beta[b, c]  =     sum_d cond[b, d] w_b[d, c] + b_b[c]
        y[b, ..., c] = gamma[b, c] * (x[b, ..., c] - mu) / sqrt(sigma^2 + eps) + beta[b, c]

    ``params = {"gain": {"w": w_g, "b": b_g}, "bias": {"w": w_b, "b": b_b}}``.
    ``x`` is ``(B, H, W, C)`` (default statistics over ``(0, 1, 2)``) or
    ``(B, T, H, W, C)`` (default ``(0, 2, 3)``: one ``mu``, ``sigma^2`` per time step
    and channel, as in the generator).  ``gamma``, ``beta`` are shared by every pixel
    and time step of sample ``b``.
    """
    fn = "conditional_batch_norm"
    x = check_array(fn, "x", x)
    if x.ndim not in (4, 5):
        raise ValueError(f"{fn}(): argument 'x' must be 4-D or 5-D, got shape {x.shape}")
    cond = check_array(fn, "cond", cond, ndim=2)
    B, C = x.shape[0], x.shape[-1]
    D = cond.shape[1]
    if cond.shape[0] != B:
        raise ValueError(f"{fn}(): argument 'cond' must have {B} rows (B of 'x'), got shape {cond.shape}")
    affine = {}
    for part in ("gain", "bias"):
        w_p = check_array(fn, f"params['{part}']['w']", params[part]["w"], ndim=2)
        b_p = check_array(fn, f"params['{part}']['b']", params[part]["b"], ndim=1)
        if w_p.shape != (D, C) or b_p.shape != (C,):
            raise ValueError(f"{fn}(): params['{part}'] must hold w ({D}, {C}) and b ({C},)")
        a = np.zeros((B, C), dtype=np.result_type(cond, w_p, b_p))
        for b in range(B):
            for c in range(C):
                s = 0.0
                for d in range(D):
                    s += cond[b, d] * w_p[d, c]
                a[b, c] = s + b_p[c]
        affine[part] = a
    gamma = 1 + affine["gain"]
    beta = affine["bias"]
    if axes is None:
        axes = (0, 1, 2) if x.ndim == 4 else (0, 2, 3)
    per_sample = (B,) + (1,) * (x.ndim - 2) + (C,)
    return batch_norm(x, gamma.reshape(per_sample), beta.reshape(per_sample), axes, eps=eps, mean=mean, var=var)
