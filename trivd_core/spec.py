"""One description of a network's layers drives both its initialisation and its shape-only counting.

A *spec* is a nested dict (insertion order = initialisation order) whose leaves are tuples,
made by the constructors below; G (:mod:`trivd_core.generator`), E
(:mod:`trivd_core.encoder`) and the discriminators (:mod:`trivd_core.discriminator`)
describe their layers with them::

    linear(d_in, d_out, sn=True, bias=True)   W (d_in, d_out) [, b (d_out,)]; state {"u": (d_out,)} if sn
    conv(c_in, c_out, k)                      SN 2-D conv: W (k, k, c_in, c_out), b (c_out,); state {"u"}
    conv3d(c_in, c_out, k)                    SN 3-D conv: W (k, k, k, c_in, c_out), b (c_out,); state {"u"}
    table(n, d)                               an orthogonal (n, d) array, no SN (G's class embedding)
    bn(c)                                     an unconditional BN: gain ones (c,), bias zeros (c,)
    cell(kind, c_in, c_hidden, k)             cells.init_cell(kind, ...), SN state: one "u" per cell weight

:func:`init` draws every leaf from one NumPy ``Generator`` depth first (the order fixes the
weights, so it is part of each model's contract); :func:`shapes` returns the same
layout with shape tuples as leaves, allocating nothing (parameter counts of the
paper-size models, whose weights take minutes to draw).
"""

from __future__ import annotations

import numpy as np

from . import cells, nn
from .initializers import orthogonal

__all__ = ["linear", "conv", "conv3d", "table", "bn", "cell", "init", "shapes"]


def linear(d_in: int, d_out: int, *, sn: bool = True, bias: bool = True) -> tuple:
    return ("linear", d_in, d_out, sn, bias)


def conv(c_in: int, c_out: int, k: int) -> tuple:
    return ("conv", c_in, c_out, k)


def conv3d(c_in: int, c_out: int, k: int) -> tuple:
    return ("conv3d", c_in, c_out, k)


def table(n: int, d: int) -> tuple:
    return ("table", n, d)


def bn(c: int) -> tuple:
    return ("bn", c)


def cell(kind: str, c_in: int, c_hidden: int, k: int) -> tuple:
    return ("cell", kind, c_in, c_hidden, k)


def init(spec: dict, rng: np.random.Generator, dtype) -> tuple[dict, dict]:
    """``(params, state)`` of ``spec`` as NumPy arrays of ``dtype``; layers without state have no state entry."""
    params, state = {}, {}
    for key, leaf in spec.items():
        if isinstance(leaf, dict):
            params[key], state[key] = init(leaf, rng, dtype)
            continue
        what, *args = leaf
        st = {}
        if what == "linear":
            d_in, d_out, sn, bias = args
            params[key], st = nn.init_linear(rng, d_in, d_out, sn=sn, bias=bias, dtype=dtype)
        elif what in ("conv", "conv3d"):
            c_in, c_out, k = args
            make = nn.init_conv if what == "conv" else nn.init_conv3d
            params[key], st = make(rng, c_in, c_out, k, sn=True, bias=True, dtype=dtype)
        elif what == "table":
            params[key] = orthogonal(rng, tuple(args), dtype)
        elif what == "bn":
            params[key] = {"gain": np.ones(args[0], dtype=dtype), "bias": np.zeros(args[0], dtype=dtype)}
        elif what == "cell":
            kind, c_in, c_h, k = args
            params[key] = cells.init_cell(kind, c_in, c_h, k, rng=rng, dtype=dtype)
            st = nn.init_cell_sn(rng, params[key], dtype)
        else:  # pragma: no cover - a spec is written in this package
            raise ValueError(f"unknown layer kind {what!r} in a spec")
        if st:
            state[key] = st
    return params, state


def shapes(spec: dict) -> dict:
    """The parameter layout of ``spec`` with shape tuples as leaves (nothing allocated)."""
    out = {}
    for key, leaf in spec.items():
        if isinstance(leaf, dict):
            out[key] = shapes(leaf)
            continue
        what, *args = leaf
        if what == "linear":
            d_in, d_out, _, bias = args
            out[key] = {"w": (d_in, d_out), **({"b": (d_out,)} if bias else {})}
        elif what in ("conv", "conv3d"):
            c_in, c_out, k = args
            out[key] = {"w": (k, k, c_in, c_out) if what == "conv" else (k, k, k, c_in, c_out), "b": (c_out,)}
        elif what == "table":
            out[key] = tuple(args)
        elif what == "bn":
            out[key] = {"gain": (args[0],), "bias": (args[0],)}
        else:
            kind, c_in, c_h, k = args
            out[key] = cells._shapes(kind, c_in, c_h, k, k * k)  # noqa: SLF001 - the cells' own layout
    return out
