"""Weight initialisers (paper appendix E.2: "All weights are initialized orthogonally").

Initialisation is the one place where trivd_core uses NumPy directly: weights are
drawn from an explicit ``np.random.Generator`` as NumPy arrays and converted to a
backend once by the caller, so that every backend starts from identical weights.

Convention
----------
A weight of any rank is viewed as the matrix ``(fan_in, C_out)``: the last axis is
the output axis and all other axes are flattened (row-major) into ``fan_in``.  For
a conv kernel HWIO ``(kh, kw, C_in, C_out)`` this is ``(kh*kw*C_in, C_out)``; for a
linear weight ``(fan_in, fan_out)`` it is the weight itself.  This is the transpose
of the view ``torch.nn.init.orthogonal_`` takes of an ``(out, in, ...)`` tensor, so
the result has the same properties:

* ``fan_in >= C_out``: the columns are orthonormal, ``W^T W = I_{C_out}``;
* ``fan_in <  C_out``: the rows are orthonormal, ``W W^T = I_{fan_in}``.

The matrix is the ``Q`` factor of the QR decomposition of a standard normal
matrix, with the signs of ``Q``'s columns fixed by the signs of ``diag(R)`` so that
``Q`` is Haar-distributed (Mezzadri, 2007), as in ``torch.nn.init.orthogonal_``.
The computation is done in float64 and cast to ``dtype`` at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["orthogonal", "zeros"]


def _check_rng(fn: str, rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{fn}(): argument 'rng' must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_shape(fn: str, shape: object, min_ndim: int) -> tuple[int, ...]:
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        raise TypeError(f"{fn}(): argument 'shape' must be a tuple of positive ints, got {shape!r}")
    out = []
    for i, s in enumerate(shape):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{fn}(): argument 'shape' must be a tuple of positive ints, got {shape!r} (entry {i})")
        if s < 1:
            raise ValueError(f"{fn}(): argument 'shape' must be a tuple of positive ints, got {tuple(shape)!r}")
        out.append(int(s))
    if len(out) < min_ndim:
        raise ValueError(
            f"{fn}(): argument 'shape' must have at least {min_ndim} axes (a weight viewed as (fan_in, C_out)), "
            f"got {tuple(shape)!r}"
        )
    return tuple(out)


def check_dtype(fn: str, dtype: object) -> np.dtype:
    """``dtype`` as a NumPy floating dtype (``TypeError`` naming ``fn`` otherwise)."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{fn}(): argument 'dtype' must be a NumPy floating dtype, got {dtype!r}") from e
    if not np.issubdtype(dt, np.floating):
        raise TypeError(f"{fn}(): argument 'dtype' must be a NumPy floating dtype (float32 or float64), got {dt}")
    return dt


def orthogonal(rng: np.random.Generator, shape: Sequence[int], dtype=np.float32) -> np.ndarray:
    """Orthogonal weight of ``shape`` viewed as ``(fan_in, C_out)`` (see the module docstring).

    rng: a ``np.random.Generator``; shape: at least 2 positive ints, the last one
    ``C_out``; dtype: a NumPy floating dtype.  Returns a NumPy array.
    """
    fn = "orthogonal"
    _check_rng(fn, rng)
    shape = _check_shape(fn, shape, 2)
    dt = check_dtype(fn, dtype)
    c_out = shape[-1]
    fan_in = math.prod(shape[:-1])
    tall = fan_in >= c_out
    a = rng.standard_normal((fan_in, c_out) if tall else (c_out, fan_in))
    q, r = np.linalg.qr(a)  # reduced QR: q has orthonormal columns
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    q = q * d
    if not tall:
        q = q.T
    return np.ascontiguousarray(q.reshape(shape), dtype=dt)


def zeros(shape: Sequence[int], dtype=np.float32) -> np.ndarray:
    """Zero array of ``shape`` (biases)."""
    fn = "zeros"
    shape = _check_shape(fn, shape, 1)
    return np.zeros(shape, dtype=check_dtype(fn, dtype))
