"""Reference losses and projection heads (paper appendix E.1, Eqs. 13-15).

Notation
--------
``D(x)``, ``D(G(z))``   discriminator outputs on real and generated videos; ``D`` (the
                        integer) is the number of outputs, ``d`` indexes them.
``rho``                 the ReLU, ``rho(a) = max(a, 0)``.
``h``                   discriminator features summed over space: ``(B, C)`` for the
                        projection head, ``(B, T, C)`` for the mixed head.
``y``                   the class embedding per sample (``y_embed``), ``(B, C)``.
``w``, ``w_0``          the linear map ``params["w"] (C, 1)`` and its bias
                        ``params["b"] (1,)``, written ``w_0`` because ``b`` is the
                        batch index of Eq. 15 (``b, b'``); ``trivd_core.losses``
                        uses the same names.
``r_x``, ``r_xy``       the unconditional and class-dependent scalars of the head.

Losses average over all outputs, whatever their shape; when real and fake scores
have different shapes, each term averages over its own outputs.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_array

__all__ = ["d_hinge_loss", "g_hinge_loss", "projection", "mixed_projection"]


def _rho(a):
    """``rho(a) = max(a, 0)``; NaN stays NaN (as ``np.maximum`` and the core's ``relu`` do)."""
    if a != a:  # NaN: a comparison would silently turn it into 0
        return a
    return a if a > 0 else 0.0


def d_hinge_loss(real_scores, fake_scores):
    """Eq. 13, the discriminator's geometric hinge risk::

        (1/D) sum_{d=1}^{D} rho(1 + D(G(z))_d) + rho(1 - D(x)_d)

    Returns a 0-d array.
    """
    real = check_array("d_hinge_loss", "real_scores", real_scores).reshape(-1)
    fake = check_array("d_hinge_loss", "fake_scores", fake_scores).reshape(-1)
    if real.size == 0 or fake.size == 0:
        raise ValueError("d_hinge_loss(): score arrays must be non-empty")
    L_fake = 0.0
    for d in range(fake.size):
        L_fake += _rho(1.0 + fake[d])
    L_real = 0.0
    for d in range(real.size):
        L_real += _rho(1.0 - real[d])
    return np.asarray(L_fake / fake.size + L_real / real.size, dtype=np.result_type(real, fake))


def g_hinge_loss(fake_scores):
    """Eq. 14, the generator's risk ``-(1/D) sum_{d=1}^{D} D(G(z))_d``; a 0-d array."""
    fake = check_array("g_hinge_loss", "fake_scores", fake_scores).reshape(-1)
    if fake.size == 0:
        raise ValueError("g_hinge_loss(): 'fake_scores' must be non-empty")
    s = 0.0
    for d in range(fake.size):
        s += fake[d]
    return np.asarray(-s / fake.size, dtype=fake.dtype)


def _head(fn, h, y, params):
    C = h.shape[-1]
    w = check_array(fn, "params['w']", params["w"], ndim=2)
    w_0 = check_array(fn, "params['b']", params["b"], ndim=1)
    if w.shape != (C, 1) or w_0.shape != (1,):
        raise ValueError(f"{fn}(): params must hold w ({C}, 1) and b (1,), got {w.shape} and {w_0.shape}")
    if y.shape != (h.shape[0], C):
        raise ValueError(f"{fn}(): argument 'y_embed' must have shape ({h.shape[0]}, {C}), got {y.shape}")
    return w, w_0


def projection(h, y_embed, params):
    """Projection discriminator head [Miyato & Koyama 2018] (appendix E.1)::

        r_x^b  = sum_c h[b, c] w[c] + w_0
        r_xy^b = sum_c h[b, c] y[b, c]
        o_b    = r_x^b + r_xy^b

    ``h (B, C)``, ``y_embed (B, C)``; returns ``(B,)``.
    """
    fn = "projection"
    h = check_array(fn, "h", h, ndim=2)
    y = check_array(fn, "y_embed", y_embed, ndim=2)
    w, w_0 = _head(fn, h, y, params)
    B, C = h.shape
    o = np.zeros(B, dtype=np.result_type(h, y, w, w_0))
    for b in range(B):
        r_x = w_0[0]
        r_xy = 0.0
        for c in range(C):
            r_x += h[b, c] * w[c, 0]
            r_xy += h[b, c] * y[b, c]
        o[b] = r_x + r_xy
    return o


def mixed_projection(h, y_embed, params):
    """Mixed projection discriminator head, Eq. 15 (appendix E.1)::

        r_x^{b,t}  = sum_c h[b, t, c] w[c] + w_0
        r_xy^{b,t} = sum_c h[b, t, c] y[b, c]
        o_{b,b',t} = r_x^{b,t} + sum_{t'} r_xy^{b',t'}

    ``h (B, T, C)``, ``y_embed (B, C)``; returns the ``D = B x B x T`` outputs as
    ``o[b, b', t]``.
    """
    fn = "mixed_projection"
    h = check_array(fn, "h", h, ndim=3)
    y = check_array(fn, "y_embed", y_embed, ndim=2)
    w, w_0 = _head(fn, h, y, params)
    B, T, C = h.shape
    dtype = np.result_type(h, y, w, w_0)
    r_x = np.zeros((B, T), dtype=dtype)
    r_xy = np.zeros((B, T), dtype=dtype)
    for b in range(B):
        for t in range(T):
            r_x[b, t] = w_0[0]
            for c in range(C):
                r_x[b, t] += h[b, t, c] * w[c, 0]
                r_xy[b, t] += h[b, t, c] * y[b, c]
    o = np.zeros((B, B, T), dtype=dtype)
    for b in range(B):
        for b2 in range(B):
            for t in range(T):
                o[b, b2, t] = r_x[b, t]
                for t2 in range(T):
                    o[b, b2, t] += r_xy[b2, t2]
    return o
