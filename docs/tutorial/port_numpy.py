"""A port of the warps and of TSRU_c/p/s in plain NumPy, written from the paper and ARCHITECTURE.md only.

The kind of module a researcher writes when porting the model: it imports nothing of trivd.
Check it with ``trivd conform --port port_numpy`` from this folder (chapter 6 of the tutorial).

Conventions it must follow (ARCHITECTURE.md): channels last, ``h (B, H, W, C)``; warp weights
``W (B, H, W, k*k)`` with tap ``q = m*k + n``, read at ``(i + m - p, j + n - p)`` (Eq. 11);
HWIO kernels; parameters in ``init_cell``'s layout; NumPy in, NumPy of the input dtype out.
"""

from __future__ import annotations

import numpy as np

TRIVD_SUPPORTS_FLOAT64 = True

KINDS = ("tsru_c", "tsru_p", "tsru_s")


def _taps(x, k):
    """The k*k shifted views of x, zero padded: view (m, n) at pixel (i, j) is x[i + m - p, j + n - p]."""
    p = (k - 1) // 2
    H, W = x.shape[1], x.shape[2]
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return [(m, n, xp[:, m : m + H, n : n + W, :]) for m in range(k) for n in range(k)]


def pixelwise_warp(h, W, k=3):
    """Eq. 11: h~[i, j] = sum_{m, n} W[i, j, m k + n] h[i + m - p, j + n - p]."""
    out = np.zeros_like(h)
    for m, n, shifted in _taps(h, k):
        out += W[..., m * k + n, None] * shifted
    return out


def factorized_kernels(w, S):
    """Eq. 12: W[i, j, q] = sum_l S[i, j, l] w[q, l]."""
    return np.einsum("bhwl,bql->bhwq", S, w).astype(w.dtype)


def _conv(x, layer):
    """SAME k x k convolution with an HWIO kernel: sum over taps of the shifted input times W[m, n]."""
    W, b = layer["W"], layer["b"]
    k = W.shape[0]
    out = sum(shifted @ W[m, n] for m, n, shifted in _taps(x, k))
    return out + b


def _softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _relu(a):
    return np.maximum(a, 0.0)


def _adaptive_max_pool(a, out=4):
    """PyTorch's bins: cell i spans [floor(i H / out), ceil((i + 1) H / out))."""
    B, H, W, C = a.shape
    rows = []
    for i in range(out):
        r0, r1 = (i * H) // out, -((-(i + 1) * H) // out)
        cols = []
        for j in range(out):
            c0, c1 = (j * W) // out, -((-(j + 1) * W) // out)
            cols.append(a[:, r0:r1, c0:c1, :].max(axis=(1, 2)))
        rows.append(np.stack(cols, axis=1))
    return np.stack(rows, axis=1)  # (B, out, out, C)


def _theta(f, h_tm1, x_t, k):
    """theta = (w, S) = f(h_{t-1}, x_t), the factorized hyper-network (F.1)."""
    z = np.concatenate([h_tm1, x_t], axis=-1)
    B = z.shape[0]
    a = _adaptive_max_pool(_relu(_conv(z, f["conv"])))
    v = a.reshape(B, -1)  # row-major over (i, j, channel): channel fastest, as documented
    e = _relu(v @ f["fc1"]["W"] + f["fc1"]["b"])
    o = e @ f["fc2"]["W"] + f["fc2"]["b"]
    N = f["S"]["W"].shape[3]
    w = _softmax(o.reshape(B, k * k, N), axis=1)
    S = _softmax(_conv(z, f["S"]), axis=-1)
    return w, S


def cell_step(kind, params, h, x, *, return_warp=False, activation=None):
    """TSRU_c / TSRU_p / TSRU_s, Eqs. 6-10 (ReLU by default); other kinds are not ported."""
    if kind not in KINDS:
        raise NotImplementedError(f"this port implements {', '.join(KINDS)}, not {kind!r}")
    rho = np.tanh if activation == "tanh" else _relu
    h_tm1, x_t = h, x
    k = params["u"]["W"].shape[0]
    w, S = _theta(params["f"], h_tm1, x_t, k)  # (6)
    W = factorized_kernels(w, S)  # (12)
    h_tilde_tm1 = pixelwise_warp(h_tm1, W, k)  # (7), via (11)
    c_in = h_tm1 if kind == "tsru_p" else h_tilde_tm1
    c = rho(_conv(np.concatenate([c_in, x_t], axis=-1), params["c"]))  # (8)
    u_in = np.concatenate([h_tilde_tm1, c] if kind == "tsru_s" else [h_tm1, x_t], axis=-1)
    u = _sigmoid(_conv(u_in, params["u"]))  # (9)
    h_t = (u * h_tilde_tm1 + (1 - u) * c).astype(h.dtype)  # (10)
    if return_warp:
        return h_t, {"w": w.astype(h.dtype), "S": S.astype(h.dtype), "W": W.astype(h.dtype)}
    return h_t
