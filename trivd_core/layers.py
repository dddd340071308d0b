"""Layers of TrIVD-GAN-FP (paper appendix A and E.2), vectorised against the array API.

* :func:`spectral_normalize` - spectral normalisation [Miyato et al. 2018] with one
  power iteration, applied to every weight of G and D (appendix A, E.2);
* :func:`orthogonal_penalty` - BigGAN's off-diagonal orthogonality penalty, added to
  the generator loss with weight 1e-4 by the caller (E.2);
* :func:`batch_stats`, :func:`batch_norm` - batch normalisation [Ioffe & Szegedy 2015]
  with batch or "standing" statistics (E.2);
* :func:`conditional_batch_norm` - batch normalisation whose scale and offset are an
  affine function of the conditioning vector (appendix A, E.2); BigGAN convention
  ``gain = 1 + affine``.

Conventions decided here (the reference states the same ones):

* A weight ``w`` of any rank >= 2 (linear ``(C_in, C_out)``, HWIO, THWIO) is viewed as
  the matrix ``W = reshape(w, (fan_in, C_out))``: all axes but the last form ``fan_in``.
* ``normalize(a) = a / max(||a||_2, eps)`` (as ``torch.nn.functional.normalize``).
* Spectral normalisation: ``v = normalize(W u)``, ``u' = normalize(W^T v)``,
  ``sigma = v^T W u'``, ``w_sn = w / sigma``.  ``u``, ``u'`` and ``v`` carry no gradient
  (``ops.stop_gradient``); the gradient flows through the ``W`` in ``sigma``, as in
  PyTorch's ``spectral_norm`` and BigGAN.  If ``W u = 0`` (e.g. an all-zero weight, or
  ``u`` orthogonal to the row space) then ``sigma = 0`` and ``w_sn`` is not finite, as in
  PyTorch: draw the initial ``u`` at random.
* Batch normalisation uses the biased variance (divide by the number of elements ``N``)
  computed in two passes, ``var = mean((x - mean)^2)``; the gradient flows through the
  batch statistics.  ``mean`` and ``var`` are given together or not at all.
* ``gain``, ``bias``, ``mean`` and ``var`` must broadcast against ``x`` without changing
  its shape (e.g. ``(C,)``, ``(B, 1, 1, C)``, keepdims statistics).
* Conditional BN on ``(B, T, H, W, C)`` normalises per time step by default
  (``axes=(0, 2, 3)``), as in the generator; its per-sample gain and bias are shared by
  all time steps and pixels of that sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from array_api_compat import device

from . import ops, replicas
from ._validate import at_the_door, check_array, same_namespace

__all__ = [
    "spectral_normalize",
    "orthogonal_penalty",
    "batch_stats",
    "batch_norm",
    "conditional_batch_norm",
]


# ---------------------------------------------------------------------------
# private checks


def _check_eps(fn: str, eps: object, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"{fn}(): argument '{name}' must be a positive float, got {eps!r} ({type(eps).__name__})")
    if not eps > 0:
        raise ValueError(f"{fn}(): argument '{name}' must be a positive float, got {eps!r}")
    return float(eps)


def _check_weight(fn: str, w: object):
    xp = check_array(fn, "w", w)
    if w.ndim < 2:
        raise ValueError(
            f"{fn}(): argument 'w' must have at least 2 axes (fan_in axes..., C_out), got shape {tuple(w.shape)}"
        )
    return xp


def _as_matrix(xp, w):
    """``W = reshape(w, (fan_in, C_out))``."""
    c_out = w.shape[-1]
    fan_in = 1
    for d in w.shape[:-1]:
        fan_in *= d
    return xp.reshape(w, (fan_in, c_out))


def _check_axes(fn: str, axes: object, ndim: int, name: str = "axes") -> tuple[int, ...]:
    if isinstance(axes, (str, bytes)) or not isinstance(axes, Sequence):
        raise TypeError(f"{fn}(): argument '{name}' must be a tuple of ints, got {axes!r} ({type(axes).__name__})")
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"{fn}(): argument '{name}' must be a tuple of ints, got {tuple(axes)!r}")
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{fn}(): argument '{name}' must hold axes in [-{ndim}, {ndim}) for a {ndim}-D 'x', got {tuple(axes)!r}"
            )
        out.append(a % ndim)
    if not out:
        raise ValueError(f"{fn}(): argument '{name}' must name at least one axis, got {tuple(axes)!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}(): argument '{name}' must not repeat an axis, got {tuple(axes)!r}")
    return tuple(sorted(out))


def _check_broadcast(fn: str, name: str, a: object, x_shape: tuple[int, ...]) -> None:
    """``a`` must broadcast against an array of shape ``x_shape`` without changing that shape."""
    check_array(fn, name, a)
    shape = tuple(a.shape)
    ok = len(shape) <= len(x_shape) and all(s in (1, t) for s, t in zip(reversed(shape), reversed(x_shape)))
    if not ok:
        raise ValueError(
            f"{fn}(): argument '{name}' must broadcast against 'x' of shape {x_shape} "
            f"(e.g. (C,) or a keepdims shape), got shape {shape}"
        )


def _get(fn: str, params: object, path: tuple[str, ...]):
    node = params
    for i, key in enumerate(path):
        if not isinstance(node, Mapping):
            where = "params" + "".join(f"[{k!r}]" for k in path[:i])
            raise TypeError(f"{fn}(): {where} must be a dict, got {type(node).__name__}")
        if key not in node:
            where = "params" + "".join(f"[{k!r}]" for k in path[:i])
            raise ValueError(f"{fn}(): argument 'params' must have key {key!r} in {where}; found {sorted(node)}")
        node = node[key]
    return node


# ---------------------------------------------------------------------------
# spectral normalisation and orthogonality


@at_the_door
def spectral_normalize(w, u, *, eps: float = 1e-12):
    """One power iteration of spectral normalisation; returns ``(w_sn, u_new)``.

    ``W = reshape(w, (fan_in, C_out))``; ``v = normalize(W u)``,
    ``u_new = normalize(W^T v)``, ``sigma = v^T W u_new``, ``w_sn = w / sigma``, with
    ``normalize(a) = a / max(||a||, eps)``.

    w: any weight of rank >= 2 whose last axis is ``C_out`` (``(C_in, C_out)``, HWIO,
    THWIO); u: ``(C_out,)``, the running estimate of the leading right singular vector
    (part of the "state").  ``u_new`` and ``v`` carry no gradient; the gradient of
    ``w_sn`` flows through ``W`` in ``sigma``.
    """
    fn = "spectral_normalize"
    xp = _check_weight(fn, w)
    check_array(fn, "u", u, (w.shape[-1],))
    same_namespace(fn, w=w, u=u)
    eps = _check_eps(fn, eps)

    W = _as_matrix(xp, w)
    W_const = ops.stop_gradient(W)
    u = ops.stop_gradient(u)

    def normalize(a):
        n = xp.sqrt(xp.sum(a * a))
        return a / xp.maximum(n, xp.asarray(eps, dtype=a.dtype, device=device(a)))

    v = normalize(xp.matmul(W_const, u))
    u_new = normalize(xp.matmul(xp.matrix_transpose(W_const), v))
    sigma = xp.sum(v * xp.matmul(W, u_new))
    return w / sigma, u_new


@at_the_door
def orthogonal_penalty(w):
    """BigGAN's orthogonality penalty ``|| W^T W * (1 - I) ||_F^2`` (a 0-d array).

    ``W = reshape(w, (fan_in, C_out))``; only the off-diagonal entries of the Gram
    matrix of the output columns are penalised.  The paper weighs the penalty by
    1e-4 (E.2); the weight is the caller's.
    """
    fn = "orthogonal_penalty"
    xp = _check_weight(fn, w)
    W = _as_matrix(xp, w)
    G = xp.matmul(xp.matrix_transpose(W), W)
    off = 1 - xp.eye(G.shape[0], dtype=G.dtype, device=device(G))
    return xp.sum((G * off) ** 2)


# ---------------------------------------------------------------------------
# batch normalisation


@at_the_door
def batch_stats(x, axes):
    """Batch mean and biased variance of ``x`` over ``axes``, both with keepdims.

    ``mean = (1/N) sum x``, ``var = (1/N) sum (x - mean)^2`` where the sums run over
    the ``N`` elements of each group selected by ``axes``.  Accumulating these over
    many batches gives the "standing statistics" of appendix E.2.
    """
    fn = "batch_stats"
    xp = check_array(fn, "x", x)
    axes = _check_axes(fn, axes, x.ndim)
    return _moments(xp, x, axes)


def _moments(xp, x, axes):
    """Two-pass batch moments; over the global batch of a job when the batch axis 0 is reduced and the engine
    computes the step under :func:`trivd_core.replicas.across` (one program per process)."""
    r = replicas.current()
    if r is None or 0 not in axes:
        mean = xp.mean(x, axis=axes, keepdims=True)
        return mean, xp.mean((x - mean) ** 2, axis=axes, keepdims=True)
    n = r.count
    for a in axes:
        n *= x.shape[a]
    mean = r.sum(xp.sum(x, axis=axes, keepdims=True)) / n
    return mean, r.sum(xp.sum((x - mean) ** 2, axis=axes, keepdims=True)) / n


def _check_stats(fn: str, x, mean, var) -> None:
    if (mean is None) != (var is None):
        raise ValueError(
            f"{fn}(): arguments 'mean' and 'var' (standing statistics) must be given together, "
            f"got mean={'None' if mean is None else 'an array'} and var={'None' if var is None else 'an array'}"
        )
    if mean is not None:
        _check_broadcast(fn, "mean", mean, tuple(x.shape))
        _check_broadcast(fn, "var", var, tuple(x.shape))
        same_namespace(fn, x=x, mean=mean, var=var)


def _normalize(xp, x, gain, bias, axes, eps, mean, var):
    if mean is None:
        mean, var = _moments(xp, x, axes)
    return (x - mean) / xp.sqrt(var + eps) * gain + bias


@at_the_door
def batch_norm(x, gain, bias, axes, *, eps: float = 1e-5, mean=None, var=None):
    """Batch normalisation ``y = (x - mean) / sqrt(var + eps) * gain + bias``.

    ``mean`` and ``var`` are the batch statistics of ``x`` over ``axes`` (biased
    variance) unless both are given (standing statistics), in which case ``axes`` is
    only validated.  ``gain``, ``bias`` (and ``mean``, ``var``) broadcast against ``x``.
    """
    fn = "batch_norm"
    xp = check_array(fn, "x", x)
    axes = _check_axes(fn, axes, x.ndim)
    shape = tuple(x.shape)
    _check_broadcast(fn, "gain", gain, shape)
    _check_broadcast(fn, "bias", bias, shape)
    same_namespace(fn, x=x, gain=gain, bias=bias)
    eps = _check_eps(fn, eps)
    _check_stats(fn, x, mean, var)
    return _normalize(xp, x, gain, bias, axes, eps, mean, var)


@at_the_door
def conditional_batch_norm(x, cond, params, *, axes=None, eps: float = 1e-5, mean=None, var=None):
    """Batch normalisation with a per-sample gain and bias affine in ``cond`` (appendix A, E.2).

    ``gain = 1 + (cond @ params["gain"]["w"] + params["gain"]["b"])``,
    ``bias = cond @ params["bias"]["w"] + params["bias"]["b"]``, each ``(B, C)`` and
    broadcast over the pixels (and time steps) of sample ``b``.

    x: ``(B, H, W, C)`` or ``(B, T, H, W, C)``; cond: ``(B, D)``; weights ``(D, C)``,
    biases ``(C,)``.  Default ``axes``: ``(0, 1, 2)`` for frames and ``(0, 2, 3)`` for
    videos (statistics per time step, as in the generator).
    """
    fn = "conditional_batch_norm"
    xp = check_array(fn, "x", x)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{fn}(): argument 'x' must be a 4-D (B, H, W, C) or 5-D (B, T, H, W, C) array, "
            f"got a {x.ndim}-D array of shape {tuple(x.shape)}"
        )
    dims = {"B": x.shape[0], "C": x.shape[-1]}
    check_array(fn, "cond", cond, ("B", "D"), dims)
    leaves = {}
    for part in ("gain", "bias"):
        wp = _get(fn, params, (part, "w"))
        bp = _get(fn, params, (part, "b"))
        check_array(fn, f"params['{part}']['w']", wp, ("D", "C"), dims)
        check_array(fn, f"params['{part}']['b']", bp, ("C",), dims)
        leaves[f"{part}_w"], leaves[f"{part}_b"] = wp, bp
    same_namespace(fn, x=x, cond=cond, **leaves)
    if axes is None:
        axes = (0, 1, 2) if x.ndim == 4 else (0, 2, 3)
    axes = _check_axes(fn, axes, x.ndim)
    eps = _check_eps(fn, eps)
    _check_stats(fn, x, mean, var)

    B, C = x.shape[0], x.shape[-1]
    per_sample = (B,) + (1,) * (x.ndim - 2) + (C,)
    gain = 1 + (xp.matmul(cond, leaves["gain_w"]) + leaves["gain_b"])
    bias = xp.matmul(cond, leaves["bias_w"]) + leaves["bias_b"]
    return _normalize(xp, x, xp.reshape(gain, per_sample), xp.reshape(bias, per_sample), axes, eps, mean, var)
