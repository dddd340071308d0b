"""Losses and projection heads of TrIVD-GAN-FP (paper appendix E.1, Eqs. 13-15), array API.

* :func:`d_hinge_loss` - Eq. 13, the discriminator's hinge risk;
* :func:`g_hinge_loss` - Eq. 14, the generator's risk;
* :func:`projection` - the projection discriminator head [Miyato & Koyama 2018];
* :func:`mixed_projection` - Eq. 15, the *mixed* projection head with ``B x B x T`` outputs.

Conventions decided here (the reference states the same ones):

* Losses average over **all** discriminator outputs, whatever their shape (Eq. 13's
  ``1/D sum_d``): ``(B,)`` for the projection head, ``(B, B, T)`` for the mixed head.
  ``real_scores`` and ``fake_scores`` may have different shapes; each term is then the
  mean over its own outputs (identical to Eq. 13 when the shapes agree).  Empty score
  arrays are rejected.  Both losses return 0-d arrays.
* Projection heads take features ``h`` already summed over space (appendix A) and the
  class embedding ``y_embed`` already looked up by the caller (a learned vector for
  the dummy zero class when unconditional).  ``params = {"w": (C, 1), "b": (1,)}`` is
  the linear map giving ``r_x``, its bias written ``w_0`` (``b`` is the batch index of
  Eq. 15); ``r_xy = <h, y_embed>``.  The symbols are those of :mod:`reference.losses`.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import ops, replicas
from ._validate import at_the_door, check_array, same_namespace

__all__ = ["d_hinge_loss", "g_hinge_loss", "projection", "mixed_projection"]


def _check_scores(fn: str, name: str, s) -> None:
    check_array(fn, name, s)
    n = 1
    for d in s.shape:
        n *= d
    if n == 0:
        raise ValueError(f"{fn}(): argument '{name}' must hold at least one score, got shape {tuple(s.shape)}")


@at_the_door
def d_hinge_loss(real_scores, fake_scores):
    """Eq. 13: ``mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))`` over all outputs (0-d)."""
    fn = "d_hinge_loss"
    _check_scores(fn, "real_scores", real_scores)
    _check_scores(fn, "fake_scores", fake_scores)
    xp = same_namespace(fn, real_scores=real_scores, fake_scores=fake_scores)
    return xp.mean(ops.relu(1 - real_scores)) + xp.mean(ops.relu(1 + fake_scores))


@at_the_door
def g_hinge_loss(fake_scores):
    """Eq. 14: ``-mean(D(G(z)))`` over all outputs (0-d)."""
    fn = "g_hinge_loss"
    _check_scores(fn, "fake_scores", fake_scores)
    xp = check_array(fn, "fake_scores", fake_scores)
    return -xp.mean(fake_scores)


def _check_head(fn: str, params, dims) -> tuple:
    if not isinstance(params, Mapping):
        raise TypeError(f"{fn}(): argument 'params' must be a dict with keys 'w' and 'b', got {type(params).__name__}")
    for key in ("w", "b"):
        if key not in params:
            raise ValueError(f"{fn}(): argument 'params' must have key {key!r}; found {sorted(params)}")
    check_array(fn, "params['w']", params["w"], ("C", 1), dims)
    check_array(fn, "params['b']", params["b"], (1,), dims)
    return params["w"], params["b"]


@at_the_door
def projection(h, y_embed, params):
    """Projection head: ``o_b = r_x^b + r_xy^b`` with ``r_x^b = h_b . w + w_0`` and ``r_xy^b = <h_b, y_b>``.

    h: ``(B, C)`` features summed over space; y_embed: ``(B, C)``; params
    ``{"w": (C, 1), "b": (1,)}``.  Returns ``(B,)``.
    """
    fn = "projection"
    dims: dict[str, int] = {}
    xp = check_array(fn, "h", h, ("B", "C"), dims)
    check_array(fn, "y_embed", y_embed, ("B", "C"), dims)
    w, w_0 = _check_head(fn, params, dims)
    same_namespace(fn, h=h, y_embed=y_embed, w=w, b=w_0)
    r_x = xp.matmul(h, w)[:, 0] + w_0[0]
    r_xy = xp.sum(h * y_embed, axis=-1)
    return r_x + r_xy


@at_the_door
def mixed_projection(h, y_embed, params):
    """Eq. 15: ``o[b, b', t] = r_x^{b,t} + sum_{t'} r_xy^{b',t'}``, shape ``(B, B, T)``.

    ``r_x^{b,t} = h[b, t] . w + w_0`` and ``r_xy^{b,t} = <h[b, t], y_embed[b]>``.
    h: ``(B, T, C)`` features summed over space per time step; y_embed: ``(B, C)``;
    params ``{"w": (C, 1), "b": (1,)}``.  In one process of a job computing under
    :func:`trivd_core.replicas.across` (``B = P * B_p``), ``h`` and ``y_embed`` hold its ``B_p``
    samples and the result is its rows ``(B_p, B, T)``: ``b'`` runs over the global batch.
    """
    fn = "mixed_projection"
    dims: dict[str, int] = {}
    xp = check_array(fn, "h", h, ("B", "T", "C"), dims)
    check_array(fn, "y_embed", y_embed, ("B", "C"), dims)
    w, w_0 = _check_head(fn, params, dims)
    same_namespace(fn, h=h, y_embed=y_embed, w=w, b=w_0)
    r_x = xp.matmul(h, w)[:, :, 0] + w_0[0]  # (B, T)
    r_xy = xp.sum(h * y_embed[:, None, :], axis=-1)  # (B, T)
    s = xp.sum(r_xy, axis=1)  # (B,): sum over t' for each b'
    r = replicas.current()
    if r is not None:  # one process of a job holds the rows b of its samples, b' runs over the global batch
        s = r.gather(s)
    return r_x[:, None, :] + s[None, :, None]
