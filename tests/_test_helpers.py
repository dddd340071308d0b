"""Helpers shared by several test modules (registered as ``_test_helpers`` by ``tests/conftest.py``).

* Namespaces and comparisons of the core-vs-reference tests (``to_ns``, ``to_np``,
  ``close64``, ``close32``).  The tolerances are the ones those modules derive in
  their docstrings: float64 rtol 1e-10 (project rule) with atol 1e-12 for ~0 entries;
  float32 against the float64 reference rtol = atol = 2e-5 (unit roundoff 6e-8 times
  at most ~100 rounded O(1) operations per output).
* Nested-dict trees (``tree_map``, ``tree_leaves``).
* An independent oracle of the pixel-wise warp (Eq. 11) by NumPy slicing
  (``shift``, ``warp_adjoint``).
* The training engine's step-0 export for checkpoint-based tests (``init_tree``).
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

NAMESPACES = ["numpy", "array_api_strict"]


def to_ns(ns, a):
    """``a`` (or a dict of arrays) as ``numpy`` or ``array_api_strict`` arrays."""
    if isinstance(a, dict):
        return {k: to_ns(ns, v) for k, v in a.items()}
    if ns == "numpy":
        return np.asarray(a)
    import array_api_strict

    return array_api_strict.asarray(np.asarray(a))


def to_np(a):
    return np.asarray(a)


def close64(got, want):
    np.testing.assert_allclose(to_np(got), want, rtol=1e-10, atol=1e-12)


def close32(got, want):
    got = to_np(got)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-5, atol=2e-5)


def tree_map(fn, tree):
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    return fn(tree)


def tree_leaves(tree, path=()):
    """``(path, leaf)`` pairs of a nested dict, depth first in insertion order."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from tree_leaves(v, (*path, k))
    else:
        yield path, tree


def shift(h, dy, dx):
    """``out[:, i, j] = h[:, i + dy, j + dx]`` where that is inside the image, else 0 (NumPy slicing)."""
    out = np.zeros_like(h)
    H, W = h.shape[1], h.shape[2]
    i0, i1 = max(0, -dy), min(H, H - dy)
    j0, j1 = max(0, -dx), min(W, W - dx)
    if i0 < i1 and j0 < j1:
        out[:, i0:i1, j0:j1] = h[:, i0 + dy : i1 + dy, j0 + dx : j1 + dx]
    return out


def warp_adjoint(h, W, G, k):
    """``(dL/dh, dL/dW)`` of ``L = sum(G * pixelwise_warp(h, W))`` (Eq. 11) by NumPy slicing.

    Tap ``q = m*k + n`` reads ``h`` at offset ``(m - p, n - p)``, ``p = (k-1)/2``, so
    ``dW_q = sum_c G * shift_q(h)`` and ``dh = sum_q shift_{-q}(W_q * G)``.
    """
    p = (k - 1) // 2
    dh, dW = np.zeros_like(h), np.zeros_like(W)
    for q in range(k * k):
        dy, dx = q // k - p, q % k - p
        dW[..., q] = np.sum(G * shift(h, dy, dx), axis=-1)
        dh += shift(W[..., q : q + 1] * G, -dy, -dx)
    return dh, dW


@functools.lru_cache(maxsize=8)
def init_tree(cfg, seed=0):
    """The engine's step-0 export and the backend that made it, cached per ``(cfg, seed)``; read-only.

    torch's ``engine.init`` when torch is installed, else the same tree by hand
    (G+E, then D, from one generator; zero Adam moments) - the ``core`` tox env has
    no framework.  Callers that write it (``save_checkpoint``) get a copy there.
    """
    from trivd_core import generator
    from trivd_core.discriminator import init_discriminator

    if importlib.util.find_spec("torch") is not None:
        import backends

        engine = backends.load("torch").engine(cfg)
        return engine.export(engine.init(seed)), "torch"
    rng = np.random.default_rng(seed)
    gp, gs = generator.init_generator(cfg, rng)
    dp, ds = init_discriminator(cfg, rng)
    zeros = functools.partial(tree_map, np.zeros_like)
    return {"step": np.int64(0), "g_params": gp, "g_state": gs, "d_params": dp, "d_state": ds, "ema": gp,
            "opt_g": {"mu": zeros(gp), "nu": zeros(gp), "count": np.int64(0)},
            "opt_d": {"mu": zeros(dp), "nu": zeros(dp), "count": np.int64(0)}}, "numpy"
