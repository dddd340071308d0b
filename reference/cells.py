r"""The recurrent units of TrIVD-GAN-FP, equation by equation (paper section 3.2, Eqs. 1-10, appendix F).

This module is the specification of ``trivd_core.cells``: same public names
(``KINDS``, ``cell_step``), same parameter layout, same results.  It has no
``init_cell``: parameters come from ``trivd_core.cells.init_cell`` (the reference
never imports trivd_core; the conformance suite feeds the same NumPy parameters to
both).

Notation (section 3.2 and appendix F of Luc et al., 2020)
---------------------------------------------------------
Every symbol carries its time index, and the code spells it the same way:

* ``h_{t-1}``  ``h_tm1``, ``(B, H, W, c_hidden)`` - the previous hidden state;
* ``x_t``      ``x_t``, ``(B, H, W, c_in)`` - the input of the unit at time ``t``;
* ``h_t``      ``h_t`` - the new hidden state, what a step returns;
* ``h~_{t-1}`` ``h_tilde_tm1`` - ``h_{t-1}`` warped by the kernel-based warping;
* ``h'_t``     ``h_prime_t`` - the reset state of ConvGRU and K-TrajGRU (Eqs. 2, 19);
* ``theta``    ``theta`` - the transformation predicted by the hyper-network ``f``:
  ``(w, S)`` (factorized) or ``W`` (pixelwise), appendix B;
* ``warp``     the kernel-based warping function of Eqs. 7 and 17,
  ``h~_{t-1} = warp(h_{t-1}; theta)``.  The paper writes it ``w``, the letter it
  also uses for the factorized kernels of Eq. 12; here ``w`` is only the kernels;
* ``r``, ``u`` - the reset and update gates; ``c`` the newly generated content;
* ``W_o``, ``b_o`` - kernel (HWIO) and bias of the convolution producing ``o``,
  stored as ``params[o]["W"]`` and ``params[o]["b"]`` and unpacked to ``W_o, b_o``
  before the equations;
* ``*k``       - the ``k x k`` SAME convolution (``reference.ops.conv2d``);
* ``[a; b]``   - concatenation along channels, ``a`` first;
* ``sigma``    - the logistic sigmoid; ``rho`` the activation (ReLU by default,
  tanh for K-TrajGRU, F.1/F.2); ``(.)`` elementwise product is written ``*``.

Kinds: ``convgru`` (Eqs. 1-5), ``convlstm`` (F.3), ``ktrajgru`` (Eqs. 16-22),
``tsru_c`` (Eqs. 6-10), ``tsru_p``, ``tsru_s`` (section 3.2.2), and ``ptsru_c``,
``ptsru_p``, ``ptsru_s`` (the same three with pixelwise warping).

Decisions where the paper is silent or ambiguous
------------------------------------------------
* One odd kernel size ``k`` (read from ``params``) for every gate convolution,
  every hyper-network convolution and the warping kernel.
* K-TrajGRU: Eq. 18 is printed twice; the reset gate sees the *warped* state (the
  text says the warped features feed Eqs. 18, 20 and 21); Eq. 22 mixes the
  *unwarped* ``h_{t-1}``.
* TSRU_s: ``W_u`` has ``2 * c_hidden`` input channels (its input is ``[h~_{t-1}; c]``).
* ConvLSTM: state ``[h; c]``, two halves; one convolution gives ``[i; f; o; g]``.
* The hyper-networks are described in :func:`_hyper_factorized` and
  :func:`_hyper_pixelwise` (F.1): widths ``max(1, C // 2)`` of the input width
  ``C``, adaptive max-pool to ``4 x 4``, flattening channel-fastest, softmax over
  the ``k*k`` taps (and over the ``N`` kernels for ``S``).
"""

from __future__ import annotations

import numpy as np

from ._checks import check_array
from .ops import adaptive_max_pool, conv2d, relu, sigmoid, softmax
from .warping import factorized_kernels, pixelwise_warp

__all__ = ["KINDS", "cell_step"]

KINDS = ("convgru", "convlstm", "ktrajgru", "tsru_c", "tsru_p", "tsru_s", "ptsru_c", "ptsru_p", "ptsru_s")

_FACTORIZED = ("ktrajgru", "tsru_c", "tsru_p", "tsru_s")
_PIXELWISE = ("ptsru_c", "ptsru_p", "ptsru_s")
_REQUIRED = {
    "convgru": ("r", "c", "u"),
    "convlstm": ("gates",),
    "ktrajgru": ("f", "r", "c", "u"),
}


# ---------------------------------------------------------------------------
# small building blocks


def _cat(a, b):
    """``[a; b]``: concatenation along channels, ``a`` first."""
    return np.concatenate([a, b], axis=-1)


def _tanh(v):
    """``rho(v) = tanh(v)``."""
    return np.tanh(v)


def _linear(v, W, bias):
    """``y[b, o] = sum_i v[b, i] * W[i, o] + bias[o]`` - a fully connected layer, looped."""
    B, n_in = v.shape
    n_out = W.shape[1]
    y = np.zeros((B, n_out), dtype=np.result_type(v, W))
    for b in range(B):
        for o in range(n_out):
            acc = bias[o]
            for i in range(n_in):
                acc = acc + v[b, i] * W[i, o]
            y[b, o] = acc
    return y


def _flatten(a):
    """``v[b, (4*i + j) * C_1 + ch] = a[b, i, j, ch]``: row-major over (i, j, channel), channel fastest."""
    B, Hp, Wp, C = a.shape
    v = np.zeros((B, Hp * Wp * C), dtype=a.dtype)
    for b in range(B):
        for i in range(Hp):
            for j in range(Wp):
                for ch in range(C):
                    v[b, (Wp * i + j) * C + ch] = a[b, i, j, ch]
    return v


# ---------------------------------------------------------------------------
# hyper-networks f (F.1)


def _hyper_factorized(f, h_tm1, x_t, k):
    r"""Hyper-network of TSRU and K-TrajGRU (F.1): ``theta = (w, S) = f(h_{t-1}, x_t)``.

    With ``z = [h_{t-1}; x_t]`` of ``C_f = c_hidden + c_in`` channels,
    ``C_1 = max(1, C_f // 2)``, ``P = 16 C_1``, ``D = max(1, P // 2)`` and ``N``
    kernels of ``k x k`` taps::

        a   = relu(W_conv *k z + b_conv)                  (B, H, W, C_1)
        a'  = adaptive_max_pool(a, 4 x 4)                 (B, 4, 4, C_1)
        v   = flatten(a'),  v[(4i + j) C_1 + ch] = a'[i, j, ch]     (B, P)
        e   = relu(v W_fc1 + b_fc1)                       (B, D)
        o   = e W_fc2 + b_fc2                             (B, k*k*N)
        w[q, l] = exp(o[q N + l]) / sum_{q'} exp(o[q' N + l])      softmax over the taps q
        S_{i,j}[l] = softmax_l (W_S *k z + b_S)_{i,j}[l]            softmax over the N kernels

    Returns ``w (B, k*k, N)`` and ``S (B, H, W, N)``.
    """
    W_conv, b_conv = f["conv"]["W"], f["conv"]["b"]
    W_fc1, b_fc1 = f["fc1"]["W"], f["fc1"]["b"]
    W_fc2, b_fc2 = f["fc2"]["W"], f["fc2"]["b"]
    W_S, b_S = f["S"]["W"], f["S"]["b"]
    N = W_S.shape[3]
    z = _cat(h_tm1, x_t)
    a = relu(conv2d(z, W_conv, b_conv))
    a_pooled = adaptive_max_pool(a, (4, 4))
    v = _flatten(a_pooled)
    e = relu(_linear(v, W_fc1, b_fc1))
    o = _linear(e, W_fc2, b_fc2)
    B = z.shape[0]
    logits = np.zeros((B, k * k, N), dtype=o.dtype)
    for b in range(B):
        for q in range(k * k):
            for l in range(N):
                logits[b, q, l] = o[b, q * N + l]
    w = softmax(logits, axis=1)
    S = softmax(conv2d(z, W_S, b_S), axis=-1)
    return w, S


def _hyper_pixelwise(f, h_tm1, x_t):
    r"""Hyper-network of PTSRU (F.1): ``theta = W = f(h_{t-1}, x_t)``, a resolution-preserving CNN.

    With ``z = [h_{t-1}; x_t]`` of ``C_f`` channels, ``C_1 = max(1, C_f // 2)``,
    ``C_2 = max(1, C_1 // 2)``::

        a_1 = relu(W_conv1 *k z   + b_conv1)              (B, H, W, C_1)
        a_2 = relu(W_conv2 *k a_1 + b_conv2)              (B, H, W, C_2)
        W_{i,j}[q] = softmax_q (W_conv3 *k a_2 + b_conv3)_{i,j}[q]  (B, H, W, k*k)
    """
    W_conv1, b_conv1 = f["conv1"]["W"], f["conv1"]["b"]
    W_conv2, b_conv2 = f["conv2"]["W"], f["conv2"]["b"]
    W_conv3, b_conv3 = f["conv3"]["W"], f["conv3"]["b"]
    z = _cat(h_tm1, x_t)
    a_1 = relu(conv2d(z, W_conv1, b_conv1))
    a_2 = relu(conv2d(a_1, W_conv2, b_conv2))
    return softmax(conv2d(a_2, W_conv3, b_conv3), axis=-1)


# ---------------------------------------------------------------------------
# the transformation: theta (Eq. 6 / 16), then the warp (Eq. 7 / 17)


def _theta(kind, f, h_tm1, x_t, k):
    """Eq. 6 (16): ``theta_{h,x} = f(h_{t-1}, x_t)``; ``{"w", "S"}`` (factorized) or ``{"W"}`` (pixelwise)."""
    if kind in _PIXELWISE:
        return {"W": _hyper_pixelwise(f, h_tm1, x_t)}
    w, S = _hyper_factorized(f, h_tm1, x_t, k)
    return {"w": w, "S": S}


def _warp(h_tm1, theta, k):
    """Eq. 7 (17): ``h~_{t-1} = warp(h_{t-1}; theta)``, Eq. 11 with ``W`` from Eq. 12 when ``theta = (w, S)``.

    Returns ``h~_{t-1}`` and the per-pixel weights ``W`` it used.
    """
    W = theta["W"] if "W" in theta else factorized_kernels(theta["w"], theta["S"])  # (12)
    h_tilde_tm1 = pixelwise_warp(h_tm1, W, k)  # (11)
    return h_tilde_tm1, W


# ---------------------------------------------------------------------------
# the cells


def _convgru(p, h_tm1, x_t, rho):
    r"""ConvGRU, section 3.2, Eqs. 1-5 (ReLU activation in DVD-GAN-FP).

    Notation: ``r`` reset gate, ``u`` update gate, ``c`` candidate, ``h'_t`` the
    reset state (``h_prime_t``).

    Equations::

        r    = sigma(W_r *k [h_{t-1}; x_t] + b_r)        (1)
        h'_t = r * h_{t-1}                               (2)
        c    = rho(W_c *k [h'_t; x_t] + b_c)             (3)
        u    = sigma(W_u *k [h_{t-1}; x_t] + b_u)        (4)
        h_t  = u * h_{t-1} + (1 - u) * c                 (5)
    """
    W_r, b_r = p["r"]["W"], p["r"]["b"]
    W_c, b_c = p["c"]["W"], p["c"]["b"]
    W_u, b_u = p["u"]["W"], p["u"]["b"]
    r = sigmoid(conv2d(_cat(h_tm1, x_t), W_r, b_r))  # (1)
    h_prime_t = r * h_tm1  # (2)
    c = rho(conv2d(_cat(h_prime_t, x_t), W_c, b_c))  # (3)
    u = sigmoid(conv2d(_cat(h_tm1, x_t), W_u, b_u))  # (4)
    h_t = u * h_tm1 + (1 - u) * c  # (5)
    return h_t


def _convlstm(p, state_tm1, x_t, rho):
    r"""ConvLSTM baseline, appendix F.3 (peephole-free ConvLSTM with activation ``rho``).

    Notation: the state of ``c_hidden`` channels is ``[h_{t-1}; c_{t-1}]``, hidden
    state and memory cell of ``c_hidden / 2`` channels each; ``i``, ``f``, ``o``
    the input, forget and output gates, ``g`` the candidate; one convolution
    ``W_gates`` gives ``[a_i; a_f; a_o; a_g]`` (in this order).

    Equations::

        [a_i; a_f; a_o; a_g] = W_gates *k [h_{t-1}; x_t] + b_gates
        i = sigma(a_i),  f = sigma(a_f),  o = sigma(a_o),  g = rho(a_g)
        c_t = f * c_{t-1} + i * g
        h_t = o * rho(c_t)
        new state = [h_t; c_t]
    """
    W_gates, b_gates = p["gates"]["W"], p["gates"]["b"]
    half = state_tm1.shape[-1] // 2
    h_tm1, c_tm1 = state_tm1[..., :half], state_tm1[..., half:]
    a = conv2d(_cat(h_tm1, x_t), W_gates, b_gates)
    a_i, a_f, a_o, a_g = (a[..., j * half : (j + 1) * half] for j in range(4))
    i, f, o, g = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o), rho(a_g)
    c_t = f * c_tm1 + i * g
    h_t = o * rho(c_t)
    return _cat(h_t, c_t)


def _ktrajgru(p, h_tm1, x_t, rho, k):
    r"""K-TrajGRU, appendix F.2, Eqs. 16-22 (tanh activation in the paper).

    Notation: ``f`` the factorized hyper-network (:func:`_hyper_factorized`),
    ``warp`` the factorized kernel-based warping (Eqs. 11-12; the paper writes it
    ``w``), ``h~_{t-1}`` the warped state, ``r``/``u`` reset/update gates, ``c``
    candidate.

    Equations (Eq. 18 is printed twice in the paper; the warped state is used, as
    the paper's text says)::

        theta_{h,x} = f(h_{t-1}, x_t)                    (16)
        h~_{t-1}    = warp(h_{t-1}; theta_{h,x})         (17)
        r    = sigma(W_r *k [h~_{t-1}; x_t] + b_r)       (18)
        h'_t = r * h~_{t-1}                              (19)
        c    = rho(W_c *k [h'_t; x_t] + b_c)             (20)
        u    = sigma(W_u *k [h~_{t-1}; x_t] + b_u)       (21)
        h_t  = u * h_{t-1} + (1 - u) * c                 (22)   (unwarped h_{t-1})
    """
    W_r, b_r = p["r"]["W"], p["r"]["b"]
    W_c, b_c = p["c"]["W"], p["c"]["b"]
    W_u, b_u = p["u"]["W"], p["u"]["b"]
    theta = _theta("ktrajgru", p["f"], h_tm1, x_t, k)  # (16)
    h_tilde_tm1, W = _warp(h_tm1, theta, k)  # (17)
    r = sigmoid(conv2d(_cat(h_tilde_tm1, x_t), W_r, b_r))  # (18)
    h_prime_t = r * h_tilde_tm1  # (19)
    c = rho(conv2d(_cat(h_prime_t, x_t), W_c, b_c))  # (20)
    u = sigmoid(conv2d(_cat(h_tilde_tm1, x_t), W_u, b_u))  # (21)
    h_t = u * h_tm1 + (1 - u) * c  # (22)
    return h_t, {**theta, "W": W}


def _tsru(kind, p, h_tm1, x_t, rho, k):
    r"""TSRU_c, TSRU_p, TSRU_s (section 3.2.2, Eqs. 6-10) and PTSRU_{c,p,s}.

    Notation: ``f`` the hyper-network - factorized (:func:`_hyper_factorized`) for
    ``tsru_*``, pixelwise (:func:`_hyper_pixelwise`) for ``ptsru_*``; ``warp`` the
    kernel-based warping (Eq. 11, with Eq. 12 for factorized ``theta``; the paper
    writes it ``w``); ``h~_{t-1}`` the warped state; ``c`` new content; ``u`` the
    fusion gate.

    Equations of TSRU_c::

        theta_{h,x} = f(h_{t-1}, x_t)                    (6)
        h~_{t-1}    = warp(h_{t-1}; theta_{h,x})         (7)
        c   = rho(W_c *k [h~_{t-1}; x_t] + b_c)          (8)
        u   = sigma(W_u *k [h_{t-1}; x_t] + b_u)         (9)
        h_t = u * h~_{t-1} + (1 - u) * c                 (10)

    TSRU_p (theta, u and c in parallel) replaces (8) by::

        c   = rho(W_c *k [h_{t-1}; x_t] + b_c)

    TSRU_s (fully sequential) replaces (9) by::

        u   = sigma(W_u *k [h~_{t-1}; c] + b_u)
    """
    variant = kind[-1]  # "c", "p" or "s"
    W_c, b_c = p["c"]["W"], p["c"]["b"]
    W_u, b_u = p["u"]["W"], p["u"]["b"]
    theta = _theta(kind, p["f"], h_tm1, x_t, k)  # (6)
    h_tilde_tm1, W = _warp(h_tm1, theta, k)  # (7)
    if variant == "p":
        c = rho(conv2d(_cat(h_tm1, x_t), W_c, b_c))  # (8), TSRU_p
    else:
        c = rho(conv2d(_cat(h_tilde_tm1, x_t), W_c, b_c))  # (8)
    if variant == "s":
        u = sigmoid(conv2d(_cat(h_tilde_tm1, c), W_u, b_u))  # (9), TSRU_s
    else:
        u = sigmoid(conv2d(_cat(h_tm1, x_t), W_u, b_u))  # (9)
    h_t = u * h_tilde_tm1 + (1 - u) * c  # (10)
    return h_t, {**theta, "W": W}


# ---------------------------------------------------------------------------
# entry point


def _as_params(fn, tree, path="params"):
    if not isinstance(tree, dict):
        raise TypeError(f"{fn}(): {path} must be a dict, got {type(tree).__name__}")
    out = {}
    for key, v in tree.items():
        name = f"{path}[{key!r}]"
        out[key] = _as_params(fn, v, name) if isinstance(v, dict) else check_array(fn, name, v)
    return out


def _require(fn, params, kind):
    keys = _REQUIRED.get(kind, ("f", "c", "u"))
    for key in keys:
        if key not in params:
            raise ValueError(f"{fn}(): params for kind {kind!r} must have key {key!r}; got keys {sorted(params)}")
        if key != "f" and ("W" not in params[key] or "b" not in params[key]):
            raise ValueError(f"{fn}(): params[{key!r}] must have keys 'W' and 'b'; got {sorted(params[key])}")
    if kind in _FACTORIZED or kind in _PIXELWISE:
        layers = ("conv", "fc1", "fc2", "S") if kind in _FACTORIZED else ("conv1", "conv2", "conv3")
        for layer in layers:
            if layer not in params["f"]:
                raise ValueError(f"{fn}(): params['f'] for kind {kind!r} must have key {layer!r}")
    W_gate = params["gates" if kind == "convlstm" else "u"]["W"]
    if W_gate.ndim != 4 or W_gate.shape[0] != W_gate.shape[1] or W_gate.shape[0] % 2 == 0:
        raise ValueError(f"{fn}(): gate kernels must be (k, k, C_in, C_out) with k odd, got {W_gate.shape}")
    return W_gate.shape[0]


def cell_step(kind, params, h, x, *, return_warp=False, activation=None):
    r"""One step ``h_t = cell(h_{t-1}, x_t)`` of the recurrent unit ``kind``.

    See the docstrings of ``_convgru`` (Eqs. 1-5), ``_convlstm`` (F.3),
    ``_ktrajgru`` (Eqs. 16-22) and ``_tsru`` (Eqs. 6-10 and the TSRU_p / TSRU_s
    replacements, also with pixelwise warping for ``ptsru_*``).

    Args:
        kind: one of ``KINDS``.
        params: nested dict of NumPy arrays (``trivd_core.cells.init_cell``).
        h: ``(B, H, W, c_hidden)`` the state ``h_{t-1}`` (ConvLSTM: ``[h; c]``).
        x: ``(B, H, W, c_in)`` the input ``x_t``.
        return_warp: also return the transformation ``theta``:
            ``{"w", "S", "W"}`` (factorized), ``{"W"}`` (pixelwise), ``{}`` otherwise.
        activation: ``rho``; ``None`` (tanh for ktrajgru, ReLU otherwise),
            ``"relu"`` or ``"tanh"``.

    Returns:
        ``h_t (B, H, W, c_hidden)``, or ``(h_t, theta)`` if ``return_warp``.
    """
    fn = "cell_step"
    if kind not in KINDS:
        raise ValueError(f"{fn}(): argument 'kind' must be one of {', '.join(KINDS)}; got {kind!r}")
    if activation is None:
        activation = "tanh" if kind == "ktrajgru" else "relu"
    if activation not in ("relu", "tanh"):
        raise ValueError(f"{fn}(): argument 'activation' must be one of relu, tanh; got {activation!r}")
    rho = relu if activation == "relu" else _tanh
    h = check_array(fn, "h", h, ndim=4)
    x = check_array(fn, "x", x, ndim=4)
    if h.shape[:3] != x.shape[:3]:
        raise ValueError(f"{fn}(): 'h' {h.shape} and 'x' {x.shape} must share (B, H, W)")
    if kind == "convlstm" and h.shape[3] % 2:
        raise ValueError(f"{fn}(): 'h' must have an even number of channels [h; c] for convlstm, got {h.shape}")
    p = _as_params(fn, params)
    k = _require(fn, p, kind)
    h_tm1, x_t = h, x
    if kind == "convgru":
        h_t, theta = _convgru(p, h_tm1, x_t, rho), {}
    elif kind == "convlstm":
        h_t, theta = _convlstm(p, h_tm1, x_t, rho), {}
    elif kind == "ktrajgru":
        h_t, theta = _ktrajgru(p, h_tm1, x_t, rho, k)
    else:
        h_t, theta = _tsru(kind, p, h_tm1, x_t, rho, k)
    return (h_t, theta) if return_warp else h_t
