"""BigGAN's orthogonality penalty on G (appendix E.2): which weights it covers and its sum.

The penalty is the sum of :func:`trivd_core.layers.orthogonal_penalty` over exactly the
spectrally-normalised weights of G, i.e. every G weight except ``linear_in`` and the
class embedding (:data:`NO_SN`); E, the spatial discriminator network, is not included
(BigGAN does not penalise D).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import layers
from ._validate import at_the_door

__all__ = ["NO_SN", "g_ortho_penalty"]

#: G's layers without spectral norm (appendix A): not penalised.
NO_SN = ("class_embed", "linear_in")


def _penalized(gp, gs, path=()):
    """(path, weight) of every G weight that has a spectral-norm ``u`` in the state."""
    for key, v in gp.items():
        if not isinstance(v, Mapping) or key not in gs:
            continue
        s = gs[key]
        if "u" in s and not isinstance(s["u"], Mapping):
            yield (*path, key), v["w"] if "w" in v else v["W"]
        else:
            yield from _penalized(v, s, (*path, key))


@at_the_door
def g_ortho_penalty(params):
    """BigGAN's orthogonality penalty summed over G's spectrally-normalised weights (E.2).

    ``sum_w || W^T W * (1 - I) ||_F^2`` (:func:`layers.orthogonal_penalty`, ``W`` the
    ``(fan_in, C_out)`` view) over every weight of ``params["G"]`` except
    ``linear_in`` (the one layer without spectral norm, appendix A) and
    ``class_embed``; E is not included (see the module docstring).  The caller
    weighs it (``Config.ortho_weight``, 1e-4).  Returns a 0-d array.
    """
    fn = "g_ortho_penalty"
    if not isinstance(params, Mapping) or "G" not in params:
        raise TypeError(f"{fn}(): argument 'params' must be the dict of init_generator (with key 'G')")
    gp = params["G"]
    total = None
    for _, w in _penalized(gp, _sn_layout(gp)):
        p = layers.orthogonal_penalty(w)
        total = p if total is None else total + p
    return total


def _sn_layout(gp):
    """The spectral-norm layout of G (which layers have a ``u``) from the parameters alone."""
    out = {}
    for key, v in gp.items():
        if key in NO_SN or not isinstance(v, Mapping):
            continue
        w = v.get("w", v.get("W"))
        if w is not None and not isinstance(w, Mapping) and len(w.shape) >= 2:
            out[key] = {"u": None}
        else:
            out[key] = _sn_layout(v)
    return out
