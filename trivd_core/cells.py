r"""The recurrent units of TrIVD-GAN-FP (paper section 3.2, Eqs. 1-10, appendix F), vectorised.

Nine kinds, one entry point: ``cell_step(kind, params, h, x)`` advances a cell by
one time step on whatever array namespace ``h`` and ``x`` come from (NumPy,
array_api_strict, jax.numpy, torch); ``init_cell`` draws its parameters as NumPy
arrays from an explicit ``np.random.Generator``.  ``reference.cells`` states the
same equations as loops and is the specification; the equations and notation are
written out there, kind by kind, and the code here uses the same names: ``h_tm1`` for
``h_{t-1}``, ``x_t``, ``h_t``, ``h_tilde_tm1`` for the warped ``h~_{t-1}``, ``h_prime_t``
for ``h'_t``, ``theta`` for the transformation, ``W_o, b_o`` unpacked from ``params[o]``,
and the split of Eq. 6 (``_theta``, the hyper-network ``f``) from Eq. 7 (``_warp``).

=========  =====================================================================
kind       update
=========  =====================================================================
convgru    ConvGRU, Eqs. 1-5
convlstm   ConvLSTM baseline (F.3), state ``h = [h; c]``
ktrajgru   K-TrajGRU, Eqs. 16-22 (factorized warping)
tsru_c     TSRU_c, Eqs. 6-10 (factorized warping)
tsru_p     TSRU_p: Eq. 8 replaced by ``c = rho(W_c *k [h_{t-1}; x_t] + b_c)``
tsru_s     TSRU_s: Eq. 9 replaced by ``u = sigma(W_u *k [h~_{t-1}; c] + b_u)``
ptsru_c    as tsru_c with pixelwise warping
ptsru_p    as tsru_p with pixelwise warping
ptsru_s    as tsru_s with pixelwise warping
=========  =====================================================================

Decisions where the paper is silent or ambiguous (the contract of this module)
-------------------------------------------------------------------------------
* **Parameter layout.**  ``params`` is a nested dict; every convolution or linear
  layer is ``{"W": weight, "b": bias}``.  Gate convolutions are ``params[o]`` for
  ``o`` in ``r``, ``c``, ``u`` (the paper's ``W_o``, ``b_o``), HWIO kernels
  ``(k, k, C_in, C_out)``; ``params["f"]`` is the hyper-network.  Every key is
  required and no other key is accepted.
* **Concatenation** is along channels, in the order the equations write it:
  ``[h_{t-1}; x_t]`` puts the ``c_hidden`` state channels first.
* **Kernel sizes.**  One odd ``k`` (default 3) is used for every gate convolution,
  every hyper-network convolution and the warping kernel (``k x k`` taps).
  ``cell_step`` reads ``k`` from the parameters.
* **Reset gate of K-TrajGRU.**  The paper prints Eq. 18 twice, once on
  ``[h~_{t-1}; x_t]`` and once on ``[h_{t-1}; x_t]``; the text after the equations
  says the warped state feeds Eqs. 18, 20 and 21, so ``r`` sees ``h~_{t-1}``.
  Eq. 22 mixes the *unwarped* ``h_{t-1}`` with ``c``, as printed.
* **TSRU_s** has ``W_u`` of shape ``(k, k, 2*c_hidden, c_hidden)`` (its input is
  ``[h~_{t-1}; c]``); every other gate kernel has ``c_hidden + c_in`` input channels.
* **Activation** ``rho``: ReLU by default for ConvGRU, ConvLSTM and all (P)TSRU
  (F.1), tanh for K-TrajGRU (F.2); ``activation="relu"`` or ``"tanh"`` overrides.
* **ConvLSTM (F.3).**  The state ``h`` of ``c_hidden`` channels is ``[h; c]``: the
  first ``c_hidden/2`` channels are the hidden state, the last ``c_hidden/2`` the
  memory cell (``c_hidden`` must be even).  One convolution
  ``params["gates"]`` on ``[h; x_t]`` gives ``4 * c_hidden/2`` channels, split in
  this order into the input gate ``i``, forget gate ``f``, output gate ``o`` and
  candidate ``g``:  ``i, f, o = sigma(.)``, ``g = rho(.)``,
  ``c_t = f * c + i * g``, ``h_t = o * rho(c_t)``; the new state is ``[h_t; c_t]``.
  No peephole connections; the forget-gate bias starts at zero like every bias.
* **Factorized hyper-network** (TSRU, K-TrajGRU; F.1), on ``z = [h_{t-1}; x_t]``
  with ``C_f = c_hidden + c_in`` channels:

  - ``params["f"]["conv"]``: ``k x k`` conv ``C_f -> C_1 = max(1, C_f // 2)``, ReLU;
  - adaptive max-pool to ``4 x 4`` (``ops.adaptive_max_pool``; PyTorch's bins, so
    maps smaller than 4x4 work too);
  - flatten row-major over ``(i, j, channel)``, channel fastest: feature index
    ``(4*i + j) * C_1 + channel``, ``P = 16 * C_1`` features;
  - ``params["f"]["fc1"]``: linear ``P -> D = max(1, P // 2)`` (``W`` is
    ``(P, D)``, ``y = v W + b``), ReLU;
  - ``params["f"]["fc2"]``: linear ``D -> k*k*N``; the output is reshaped
    row-major to ``(B, k*k, N)`` (feature ``q*N + l`` is tap ``q`` of kernel ``l``)
    and a softmax is taken over the ``k*k`` taps (axis 1), so each of the ``N``
    kernels ``w[:, l]`` is a convex combination of taps;
  - ``params["f"]["S"]``: one ``k x k`` conv ``C_f -> N`` on ``z``, softmax over
    ``N``.  ``W = factorized_kernels(w, S)`` (Eq. 12) then sums to one at every
    pixel.  ``N = k*k`` by default (``init_cell(..., n_kernels=N)`` changes it).

* **Pixelwise hyper-network** (PTSRU; F.1): resolution-preserving CNN with two
  hidden layers on ``z``: ``params["f"]["conv1"]`` ``C_f -> C_1 = max(1, C_f // 2)``,
  ReLU, ``params["f"]["conv2"]`` ``C_1 -> C_2 = max(1, C_1 // 2)``, ReLU,
  ``params["f"]["conv3"]`` ``C_2 -> k*k``, softmax over the taps (last axis).
* **Warping** is ``trivd_core.warping.pixelwise_warp`` (Eq. 11, tap ``q = m*k + n``,
  zero padding) with ``W`` from the hyper-network.
* **Initialisation** (E.2): every weight orthogonal in its ``(fan_in, C_out)``
  view (``initializers.orthogonal``), every bias zero, drawn in a fixed order
  (sorted parameter paths) from ``rng``; the dtype is ``dtype``.
* ``return_warp=True`` returns ``(h_t, theta)`` with ``theta`` the transformation, a dict:
  ``{"w": (B, k*k, N), "S": (B, H, W, N), "W": (B, H, W, k*k)}`` for the
  factorized kinds, ``{"W": (B, H, W, k*k)}`` for the pixelwise ones, ``{}`` for
  ConvGRU and ConvLSTM.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from array_api_compat import array_namespace

from . import initializers, ops, warping
from ._validate import at_the_door, check_array, check_choice, check_kernel_size, check_positive_int

__all__ = ["KINDS", "WARPING_KINDS", "init_cell", "cell_step"]

#: The recurrent units, in the order of Table 2 of the paper (and ConvGRU first).
KINDS = ("convgru", "convlstm", "ktrajgru", "tsru_c", "tsru_p", "tsru_s", "ptsru_c", "ptsru_p", "ptsru_s")

_FACTORIZED = ("ktrajgru", "tsru_c", "tsru_p", "tsru_s")
_PIXELWISE = ("ptsru_c", "ptsru_p", "ptsru_s")
#: Kinds whose step has a transformation ``W`` (all but ConvGRU and ConvLSTM): the ones with a motion field.
WARPING_KINDS = _FACTORIZED + _PIXELWISE
_ACTIVATIONS = ("relu", "tanh")
_POOL = (4, 4)  # output resolution of the adaptive max-pool (F.1)


# ---------------------------------------------------------------------------
# parameter shapes (shared by init_cell and the validation in cell_step)


def _hyper_widths(c_f: int, k: int, n: int, pixelwise: bool) -> dict[str, int]:
    c1 = max(1, c_f // 2)
    if pixelwise:
        return {"C1": c1, "C2": max(1, c1 // 2)}
    p = _POOL[0] * _POOL[1] * c1
    return {"C1": c1, "P": p, "D": max(1, p // 2), "N": n}


def _shapes(kind, c_in, c_h, k, n):
    c_f = c_h + c_in

    def conv(ci, co):
        return {"W": (k, k, ci, co), "b": (co,)}

    if kind == "convgru":
        return {"r": conv(c_f, c_h), "c": conv(c_f, c_h), "u": conv(c_f, c_h)}
    if kind == "convlstm":
        half = c_h // 2
        return {"gates": conv(half + c_in, 4 * half)}
    pixelwise = kind in _PIXELWISE
    d = _hyper_widths(c_f, k, n, pixelwise)
    if pixelwise:
        f = {"conv1": conv(c_f, d["C1"]), "conv2": conv(d["C1"], d["C2"]), "conv3": conv(d["C2"], k * k)}
    else:
        f = {
            "conv": conv(c_f, d["C1"]),
            "fc1": {"W": (d["P"], d["D"]), "b": (d["D"],)},
            "fc2": {"W": (d["D"], k * k * n), "b": (k * k * n,)},
            "S": conv(c_f, n),
        }
    if kind == "ktrajgru":
        return {"f": f, "r": conv(c_f, c_h), "c": conv(c_f, c_h), "u": conv(c_f, c_h)}
    u_in = 2 * c_h if kind.endswith("_s") else c_f
    return {"f": f, "c": conv(c_f, c_h), "u": conv(u_in, c_h)}


def _check_sizes(fn, kind, c_in, c_hidden, k):
    check_choice(fn, kind, KINDS, "kind")
    check_positive_int(fn, c_in, "c_in")
    check_positive_int(fn, c_hidden, "c_hidden")
    check_kernel_size(fn, k, "k")
    if kind == "convlstm" and c_hidden % 2:
        raise ValueError(
            f"{fn}(): argument 'c_hidden' must be even for kind 'convlstm' (the state is [h; c], "
            f"two halves of c_hidden/2 channels, F.3), got {c_hidden}"
        )


def _check_n(fn, kind, n_kernels, k):
    if n_kernels is None:
        return k * k
    if kind not in _FACTORIZED:
        raise ValueError(
            f"{fn}(): argument 'n_kernels' only applies to the factorized kinds ({', '.join(_FACTORIZED)}), "
            f"got n_kernels={n_kernels!r} for kind {kind!r}"
        )
    return check_positive_int(fn, n_kernels, "n_kernels")


def _paths(tree, prefix=()):
    for key in sorted(tree):
        v = tree[key]
        if isinstance(v, dict):
            yield from _paths(v, (*prefix, key))
        else:
            yield (*prefix, key), v


def _path_name(path) -> str:
    return "params" + "".join(f"[{p!r}]" for p in path)


# ---------------------------------------------------------------------------
# init


def init_cell(kind: str, c_in: int, c_hidden: int, k: int = 3, *, rng, dtype=np.float32, n_kernels=None) -> dict:
    """Parameters of a recurrent cell as a nested dict of NumPy arrays (layout in the module docstring).

    Weights are orthogonal in their ``(fan_in, C_out)`` view (paper E.2), biases
    zero.  ``rng`` is a ``np.random.Generator``; the draw order is the sorted
    parameter paths, so a fixed seed gives identical parameters everywhere.
    ``n_kernels`` (factorized kinds only) is ``N``, default ``k*k``.
    """
    fn = "init_cell"
    _check_sizes(fn, kind, c_in, c_hidden, k)
    n = _check_n(fn, kind, n_kernels, k)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}(): argument 'rng' must be a numpy.random.Generator, got {type(rng).__name__}")
    dt = initializers.check_dtype(fn, dtype)
    shapes = _shapes(kind, c_in, c_hidden, k, n)
    params: dict = {}
    for path, shape in _paths(shapes):
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if path[-1] == "W":
            node["W"] = initializers.orthogonal(rng, shape, dt)
        else:
            node["b"] = initializers.zeros(shape, dt)
    return params


# ---------------------------------------------------------------------------
# validation of cell_step's arguments


def _leaves(fn, params, expected, path=()):
    """Check that ``params`` has exactly the keys of ``expected``; yield (path, leaf)."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{fn}(): {_path_name(path)} must be a dict, got {type(params).__name__}")
    missing = [key for key in expected if key not in params]
    extra = [key for key in params if key not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(_path_name((*path, m)) for m in missing))
        if extra:
            parts.append("unexpected " + ", ".join(_path_name((*path, e)) for e in extra))
        raise ValueError(
            f"{fn}(): argument 'params' does not match the layout of this cell kind: {'; '.join(parts)} "
            f"(expected keys at {_path_name(path)}: {', '.join(expected)})"
        )
    for key in expected:
        if isinstance(expected[key], dict):
            yield from _leaves(fn, params[key], expected[key], (*path, key))
        else:
            yield (*path, key), params[key]


def _validate(fn, kind, params, h, x):
    dims: dict[str, int] = {}
    check_array(fn, "h", h, ("B", "H", "W", "c_hidden"), dims)
    check_array(fn, "x", x, ("B", "H", "W", "c_in"), dims)
    if h.dtype != x.dtype:
        raise TypeError(f"{fn}(): arguments 'h' and 'x' must share one dtype; 'h' is {h.dtype} but 'x' is {x.dtype}")
    c_h, c_in = dims["c_hidden"], dims["c_in"]
    if kind == "convlstm" and c_h % 2:
        raise ValueError(
            f"{fn}(): argument 'h' must have an even number of channels for kind 'convlstm' (the state is [h; c], "
            f"two halves of c_hidden/2 channels, F.3), got shape {tuple(h.shape)}"
        )
    if not isinstance(params, Mapping):
        raise TypeError(f"{fn}(): argument 'params' must be a dict of arrays, got {type(params).__name__}")
    # k and N are read from the parameters, then every shape is checked against them.
    first = "gates" if kind == "convlstm" else "u"
    try:
        W_first = params[first]["W"]
    except (KeyError, TypeError, IndexError):
        W_first = None
    k = 3
    if W_first is not None and hasattr(W_first, "shape") and len(W_first.shape) == 4:
        k = int(W_first.shape[0])
        if k % 2 == 0 or k < 1 or W_first.shape[1] != k:
            raise ValueError(
                f"{fn}(): {_path_name((first, 'W'))} must be a square kernel (k, k, C_in, C_out) with an odd k, "
                f"got shape {tuple(W_first.shape)}"
            )
    n = k * k
    if kind in _FACTORIZED:
        try:
            ws = params["f"]["S"]["W"]
            if hasattr(ws, "shape") and len(ws.shape) == 4:
                n = int(ws.shape[3])
        except (KeyError, TypeError):
            pass
    expected = _shapes(kind, c_in, c_h, k, n)
    leaves = list(_leaves(fn, params, expected))
    for path, leaf in leaves:
        name = _path_name(path)
        node = expected
        for key in path:
            node = node[key]
        check_array(fn, name, leaf, node)
    try:
        xp = array_namespace(h, x, *(leaf for _, leaf in leaves))
    except TypeError as e:
        raise TypeError(
            f"{fn}(): 'h', 'x' and every array in 'params' must come from one array namespace "
            f"(convert the NumPy parameters from init_cell with the backend first); {e}"
        ) from e
    for path, leaf in leaves:
        if leaf.dtype != h.dtype:
            raise TypeError(f"{fn}(): {_path_name(path)} must have the dtype of 'h' ({h.dtype}), got {leaf.dtype}")
    return xp, k


# ---------------------------------------------------------------------------
# building blocks


def _cat(xp, a, b):
    """``[a; b]``: concatenation along channels, ``a`` first."""
    return xp.concat([a, b], axis=-1)


def _conv(z, W, b):
    """``W *k z + b``: the ``k x k`` SAME convolution."""
    return ops.conv2d(z, W, b)


def _linear(xp, v, W, b):
    """``v W + b``: a fully connected layer."""
    return xp.matmul(v, W) + b


def _rho(xp, name):
    if name == "relu":
        return ops.relu
    return xp.tanh


def _hyper_factorized(xp, f, h_tm1, x_t, k):
    """theta = (w, S) = f(h_{t-1}, x_t) for TSRU and K-TrajGRU (F.1), on ``z = [h_{t-1}; x_t]``."""
    W_conv, b_conv = f["conv"]["W"], f["conv"]["b"]
    W_fc1, b_fc1 = f["fc1"]["W"], f["fc1"]["b"]
    W_fc2, b_fc2 = f["fc2"]["W"], f["fc2"]["b"]
    W_S, b_S = f["S"]["W"], f["S"]["b"]
    N = W_S.shape[3]
    z = _cat(xp, h_tm1, x_t)
    B = z.shape[0]
    a = ops.relu(_conv(z, W_conv, b_conv))
    a_pooled = ops.adaptive_max_pool(a, _POOL)  # (B, 4, 4, C_1)
    v = xp.reshape(a_pooled, (B, a_pooled.shape[1] * a_pooled.shape[2] * a_pooled.shape[3]))
    e = ops.relu(_linear(xp, v, W_fc1, b_fc1))
    o = _linear(xp, e, W_fc2, b_fc2)
    w = ops.softmax(xp.reshape(o, (B, k * k, N)), axis=1)
    S = ops.softmax(_conv(z, W_S, b_S), axis=-1)
    return w, S


def _hyper_pixelwise(xp, f, h_tm1, x_t):
    """theta = W = f(h_{t-1}, x_t) for PTSRU (F.1): resolution-preserving CNN, two hidden layers."""
    W_conv1, b_conv1 = f["conv1"]["W"], f["conv1"]["b"]
    W_conv2, b_conv2 = f["conv2"]["W"], f["conv2"]["b"]
    W_conv3, b_conv3 = f["conv3"]["W"], f["conv3"]["b"]
    z = _cat(xp, h_tm1, x_t)
    a_1 = ops.relu(_conv(z, W_conv1, b_conv1))
    a_2 = ops.relu(_conv(a_1, W_conv2, b_conv2))
    return ops.softmax(_conv(a_2, W_conv3, b_conv3), axis=-1)


def _theta(xp, kind, f, h_tm1, x_t, k):
    """Eq. 6 (16): ``theta_{h,x} = f(h_{t-1}, x_t)``; ``{"w", "S"}`` (factorized) or ``{"W"}`` (pixelwise)."""
    if kind in _PIXELWISE:
        return {"W": _hyper_pixelwise(xp, f, h_tm1, x_t)}
    w, S = _hyper_factorized(xp, f, h_tm1, x_t, k)
    return {"w": w, "S": S}


def _warp(h_tm1, theta, k):
    """Eq. 7 (17): ``h~_{t-1} = warp(h_{t-1}; theta)`` (Eq. 11, ``W`` from Eq. 12 for factorized ``theta``)."""
    W = theta["W"] if "W" in theta else warping.factorized_kernels(theta["w"], theta["S"])  # (12)
    h_tilde_tm1 = warping.pixelwise_warp(h_tm1, W, k)  # (11)
    return h_tilde_tm1, W


# ---------------------------------------------------------------------------
# the cells


def _convgru(xp, p, h_tm1, x_t, rho):
    W_r, b_r = p["r"]["W"], p["r"]["b"]
    W_c, b_c = p["c"]["W"], p["c"]["b"]
    W_u, b_u = p["u"]["W"], p["u"]["b"]
    hx = _cat(xp, h_tm1, x_t)
    r = ops.sigmoid(_conv(hx, W_r, b_r))  # (1)
    h_prime_t = r * h_tm1  # (2)
    c = rho(_conv(_cat(xp, h_prime_t, x_t), W_c, b_c))  # (3)
    u = ops.sigmoid(_conv(hx, W_u, b_u))  # (4)
    h_t = u * h_tm1 + (1.0 - u) * c  # (5)
    return h_t


def _convlstm(xp, p, state_tm1, x_t, rho):
    W_gates, b_gates = p["gates"]["W"], p["gates"]["b"]
    half = state_tm1.shape[-1] // 2
    h_tm1, c_tm1 = state_tm1[..., :half], state_tm1[..., half:]
    a = _conv(_cat(xp, h_tm1, x_t), W_gates, b_gates)
    i = ops.sigmoid(a[..., 0 * half : 1 * half])
    f = ops.sigmoid(a[..., 1 * half : 2 * half])
    o = ops.sigmoid(a[..., 2 * half : 3 * half])
    g = rho(a[..., 3 * half : 4 * half])
    c_t = f * c_tm1 + i * g
    h_t = o * rho(c_t)
    return _cat(xp, h_t, c_t)


def _ktrajgru(xp, p, h_tm1, x_t, rho, k):
    W_r, b_r = p["r"]["W"], p["r"]["b"]
    W_c, b_c = p["c"]["W"], p["c"]["b"]
    W_u, b_u = p["u"]["W"], p["u"]["b"]
    theta = _theta(xp, "ktrajgru", p["f"], h_tm1, x_t, k)  # (16)
    h_tilde_tm1, W = _warp(h_tm1, theta, k)  # (17)
    hx_tilde = _cat(xp, h_tilde_tm1, x_t)
    r = ops.sigmoid(_conv(hx_tilde, W_r, b_r))  # (18)
    h_prime_t = r * h_tilde_tm1  # (19)
    c = rho(_conv(_cat(xp, h_prime_t, x_t), W_c, b_c))  # (20)
    u = ops.sigmoid(_conv(hx_tilde, W_u, b_u))  # (21)
    h_t = u * h_tm1 + (1.0 - u) * c  # (22)
    return h_t, {**theta, "W": W}


def _tsru(xp, kind, p, h_tm1, x_t, rho, k):
    variant = kind[-1]  # "c", "p" or "s"
    W_c, b_c = p["c"]["W"], p["c"]["b"]
    W_u, b_u = p["u"]["W"], p["u"]["b"]
    theta = _theta(xp, kind, p["f"], h_tm1, x_t, k)  # (6)
    h_tilde_tm1, W = _warp(h_tm1, theta, k)  # (7)
    if variant == "p":
        c = rho(_conv(_cat(xp, h_tm1, x_t), W_c, b_c))  # TSRU_p replacement of (8)
    else:
        c = rho(_conv(_cat(xp, h_tilde_tm1, x_t), W_c, b_c))  # (8)
    if variant == "s":
        u = ops.sigmoid(_conv(_cat(xp, h_tilde_tm1, c), W_u, b_u))  # TSRU_s replacement of (9)
    else:
        u = ops.sigmoid(_conv(_cat(xp, h_tm1, x_t), W_u, b_u))  # (9)
    h_t = u * h_tilde_tm1 + (1.0 - u) * c  # (10)
    return h_t, {**theta, "W": W}


@at_the_door
def cell_step(kind: str, params, h, x, *, return_warp: bool = False, activation: str | None = None):
    """One time step of the recurrent unit ``kind`` (see the module docstring and ``reference.cells``).

    Args:
        kind: one of ``KINDS``.
        params: the nested dict of ``init_cell(kind, c_in, c_hidden, k)``, converted
            to the namespace of ``h`` and ``x`` and of their dtype.
        h: ``(B, H, W, c_hidden)`` previous state ``h_{t-1}`` (ConvLSTM: ``[h; c]``).
        x: ``(B, H, W, c_in)`` input ``x_t``.
        return_warp: also return the transformation ``theta`` (see the module docstring).
        activation: ``rho``; ``None`` for the paper's default (tanh for ktrajgru,
            ReLU otherwise), ``"relu"`` or ``"tanh"``.

    Returns:
        ``h_t`` of shape ``(B, H, W, c_hidden)``, or ``(h_t, theta)`` if ``return_warp``.
    """
    fn = "cell_step"
    check_choice(fn, kind, KINDS, "kind")
    if activation is None:
        activation = "tanh" if kind == "ktrajgru" else "relu"
    check_choice(fn, activation, _ACTIVATIONS, "activation")
    if not isinstance(return_warp, bool):
        raise TypeError(f"{fn}(): argument 'return_warp' must be a bool, got {return_warp!r}")
    xp, k = _validate(fn, kind, params, h, x)
    rho = _rho(xp, activation)
    h_tm1, x_t = h, x
    if kind == "convgru":
        h_t, theta = _convgru(xp, params, h_tm1, x_t, rho), {}
    elif kind == "convlstm":
        h_t, theta = _convlstm(xp, params, h_tm1, x_t, rho), {}
    elif kind == "ktrajgru":
        h_t, theta = _ktrajgru(xp, params, h_tm1, x_t, rho, k)
    else:
        h_t, theta = _tsru(xp, kind, params, h_tm1, x_t, rho, k)
    return (h_t, theta) if return_warp else h_t
