"""Parameterised building blocks shared by G, E and the discriminators.

Each layer is a pair: ``init_*(rng, ...) -> (params, state)`` draws NumPy
weights from a ``np.random.Generator`` (orthogonal init, zero bias; paper E.2),
and an apply function ``f(params, state, x, *, train) -> (y, state)`` that is
pure and written against the array API.  A layer created with ``sn=True``
keeps its spectral-norm vector ``u`` in ``state["u"]``; the apply function
normalises the weight with one power iteration (``layers.spectral_normalize``)
and returns the updated ``u`` only when ``train`` is true (evaluation reuses
the stored vector, so evaluation is a pure function of the checkpoint).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import ops
from ._validate import at_the_door
from .initializers import orthogonal
from .layers import spectral_normalize

__all__ = ["init_linear", "init_conv", "init_conv3d", "init_cell_sn", "linear", "conv", "conv3d", "sn_weight", "sn_cell"]


def _init_u(rng: np.random.Generator, c_out: int, dtype) -> np.ndarray:
    u = rng.standard_normal(c_out)
    return (u / np.linalg.norm(u)).astype(dtype)


def _init(rng, shape, *, sn, bias, dtype):
    params = {"w": orthogonal(rng, shape, dtype=dtype)}
    if bias:
        params["b"] = np.zeros(shape[-1], dtype=dtype)
    state = {"u": _init_u(rng, shape[-1], dtype)} if sn else {}
    return params, state


def init_linear(rng, d_in: int, d_out: int, *, sn: bool = True, bias: bool = True, dtype=np.float32):
    """Affine map ``y = x W + b`` with ``W (d_in, d_out)``."""
    return _init(rng, (d_in, d_out), sn=sn, bias=bias, dtype=dtype)


def init_conv(rng, c_in: int, c_out: int, k: int = 3, *, sn: bool = True, bias: bool = True, dtype=np.float32):
    """2-D convolution, kernel HWIO ``(k, k, c_in, c_out)``."""
    return _init(rng, (k, k, c_in, c_out), sn=sn, bias=bias, dtype=dtype)


def init_conv3d(rng, c_in: int, c_out: int, k: int = 3, *, sn: bool = True, bias: bool = True, dtype=np.float32):
    """3-D convolution, kernel THWIO ``(k, k, k, c_in, c_out)``."""
    return _init(rng, (k, k, k, c_in, c_out), sn=sn, bias=bias, dtype=dtype)


@at_the_door
def sn_weight(params, state, *, train: bool):
    """The (spectrally normalised, if the layer has ``u``) weight and the new state."""
    w = params["w"]
    if "u" not in state:
        return w, state
    w_sn, u_new = spectral_normalize(w, state["u"])
    return w_sn, ({**state, "u": u_new} if train else state)


@at_the_door
def linear(params, state, x, *, train: bool):
    w, state = sn_weight(params, state, train=train)
    y = x @ w
    if "b" in params:
        y = y + params["b"]
    return y, state


@at_the_door
def conv(params, state, x, *, train: bool):
    w, state = sn_weight(params, state, train=train)
    return ops.conv2d(x, w, params.get("b")), state


@at_the_door
def conv3d(params, state, x, *, train: bool):
    w, state = sn_weight(params, state, train=train)
    return ops.conv3d(x, w, params.get("b")), state


# -- spectral norm of the recurrent cells (cells.py keeps no state; G adds a "u" per cell weight) ------------


def init_cell_sn(rng, cell_params, dtype):
    """SN state of a cell: every ``{"W", "b"}`` layer becomes ``{"u": (C_out,)}`` (drawn in sorted-key order)."""
    out = {}
    for key in sorted(cell_params):
        v = cell_params[key]
        if isinstance(v, Mapping) and "W" in v and not isinstance(v["W"], Mapping):
            out[key] = {"u": _init_u(rng, v["W"].shape[-1], dtype)}
        elif isinstance(v, Mapping):
            out[key] = init_cell_sn(rng, v, dtype)
    return out


def sn_cell(params, state, *, train):
    """Spectrally normalise every ``W`` of a cell; returns ``(params_sn, state_new)``."""
    p_out, s_out = {}, {}
    for key, v in params.items():
        if isinstance(v, Mapping) and "W" in v and not isinstance(v["W"], Mapping):
            w_sn, s_new = sn_weight({"w": v["W"]}, state[key], train=train)
            p_out[key] = {**v, "W": w_sn}
            s_out[key] = s_new
        elif isinstance(v, Mapping):
            p_out[key], s_out[key] = sn_cell(v, state[key], train=train)
        else:
            p_out[key] = v
    return p_out, s_out
