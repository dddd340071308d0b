"""Latents for sampling: the truncation trick (section 4, appendix C.3), drawn with NumPy."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["truncated_normal_latents"]


def truncated_normal_latents(rng, shape, threshold, *, dtype=np.float32):
    """Latents ``z ~ N(0, 1)`` conditioned on ``|z| <= threshold`` (the truncation trick), as NumPy.

    ``threshold=None``: plain standard normal.  ``threshold=0``: zeros (the "constant
    zero latent" samples of C.3).  Otherwise every entry with ``|z| > threshold`` is
    redrawn until none is left.  For ``threshold < 1`` the proposals are drawn from
    ``U(-threshold, threshold)`` and accepted with probability ``exp(-z^2/2)``; this is
    the same truncated normal (rejection sampling) with an acceptance rate of at least
    0.6, where redrawing from ``N(0, 1)`` would accept only ``erf(threshold/sqrt(2))``
    of the draws.
    """
    fn = "truncated_normal_latents"
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}(): argument 'rng' must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)) or any(
        isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in shape
    ):
        raise ValueError(f"{fn}(): argument 'shape' must be a tuple of non-negative ints, got {shape!r}")
    shape = tuple(int(s) for s in shape)
    if threshold is None:
        return rng.standard_normal(shape).astype(dtype)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0 \
            or not math.isfinite(threshold):
        raise ValueError(f"{fn}(): argument 'threshold' must be None or a finite float >= 0, got {threshold!r}")
    t = float(threshold)
    if t == 0.0:
        return np.zeros(shape, dtype=dtype)
    z = np.empty(shape, dtype=np.float64)
    todo = np.ones(shape, dtype=bool)
    while todo.any():
        k = int(todo.sum())
        if t < 1.0:
            cand = rng.uniform(-t, t, size=k)
            ok = rng.uniform(size=k) < np.exp(-0.5 * cand * cand)
        else:
            cand = rng.standard_normal(k)
            ok = np.abs(cand) <= t
        idx = np.flatnonzero(todo)[ok]
        z.flat[idx] = cand[ok]
        todo.flat[idx] = False
    return z.astype(dtype)
