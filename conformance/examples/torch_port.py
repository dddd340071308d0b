"""An example port: TSRU and the kernel-based warps in plain PyTorch, the way a user would write them.

This module does not import ``trivd_core`` (or anything else of trivd): it is an
independent implementation from the paper and the documented conventions of
``ARCHITECTURE.md``, meant to be checked with::

    trivd conform --port conformance.examples.torch_port
    TRIVD_CONFORMANCE_PORT=conformance.examples.torch_port pytest conformance

Inside, everything is ``torch.nn.Module`` and NCHW, as in a typical PyTorch code
base: ``nn.Conv2d`` (OIHW weights), ``nn.Linear`` (``(out, in)`` weights),
``F.unfold`` for the warp, ``F.adaptive_max_pool2d`` for the hyper-network.  The
adapters at the module boundary translate the documented conventions:

* arrays are NumPy, channels last: frames ``(B, H, W, C)``, warp weights
  ``(B, H, W, k*k)`` with tap ``q = m*k + n`` (row offset ``m``, column offset ``n``);
* conv kernels HWIO ``(k, k, C_in, C_out)`` -> ``nn.Conv2d`` weight ``(C_out, C_in, k, k)``;
* linear weights ``(in, out)`` (``y = v W + b``) -> ``nn.Linear`` weight ``(out, in)``;
* the hyper-network flattens its ``4 x 4`` pooled map channel-fastest
  (feature ``(4*i + j) * C_1 + c``), which is *not* what ``torch.flatten`` does on
  NCHW (channel-slowest), so the pooled map is permuted to NHWC first;
* results go back as NumPy arrays of the input dtype (float32 or float64).

Public names: ``pixelwise_warp``, ``factorized_kernels``, ``cell_step`` (TSRU_c,
TSRU_p, TSRU_s; other kinds raise ``NotImplementedError``, which the runner
reports as ``missing``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["pixelwise_warp", "factorized_kernels", "cell_step", "PixelwiseWarp", "FactorizedHyperNet", "TSRUCell"]

TRIVD_SUPPORTS_FLOAT64 = True

KINDS = ("tsru_c", "tsru_p", "tsru_s")


# ---------------------------------------------------------------------------
# modules (NCHW inside)


class PixelwiseWarp(nn.Module):
    """Eq. 11: ``out[:, c, i, j] = sum_q W[:, q, i, j] * h[:, c, i + m - p, j + n - p]``, zero padded.

    ``h`` is ``(B, C, H, W)``, ``weights`` ``(B, k*k, H, W)``.  ``F.unfold`` lists the
    ``k x k`` neighbourhood of each pixel row-major, i.e. in the order ``m*k + n``.
    """

    def __init__(self, k: int = 3):
        super().__init__()
        if k < 1 or k % 2 == 0:
            raise ValueError(f"PixelwiseWarp: k must be odd and positive, got {k}")
        self.k = k

    def taps(self, weights: torch.Tensor) -> torch.Tensor:
        """The weights with their tap axis in unfold's order (row offset major)."""
        return weights

    def forward(self, h: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        B, C, H, W = h.shape
        k = self.k
        patches = F.unfold(h, kernel_size=k, padding=k // 2)  # (B, C*k*k, H*W)
        patches = patches.view(B, C, k * k, H, W)
        return (patches * self.taps(weights).unsqueeze(1)).sum(dim=2)


def _conv(weight_hwio: np.ndarray, bias: np.ndarray) -> nn.Conv2d:
    """An ``nn.Conv2d`` (SAME padding) holding an HWIO kernel and its bias."""
    kh, kw, c_in, c_out = weight_hwio.shape
    conv = nn.Conv2d(c_in, c_out, (kh, kw), padding=(kh // 2, kw // 2))
    w = torch.from_numpy(np.ascontiguousarray(weight_hwio))
    with torch.no_grad():
        conv.weight = nn.Parameter(w.permute(3, 2, 0, 1).contiguous())
        conv.bias = nn.Parameter(torch.from_numpy(np.array(bias)))
    return conv


def _linear(weight_in_out: np.ndarray, bias: np.ndarray) -> nn.Linear:
    n_in, n_out = weight_in_out.shape
    lin = nn.Linear(n_in, n_out)
    with torch.no_grad():
        lin.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(weight_in_out.T)))
        lin.bias = nn.Parameter(torch.from_numpy(np.array(bias)))
    return lin


class FactorizedHyperNet(nn.Module):
    """The TSRU hyper-network f (appendix F.1): ``(w, S) = f([h; x])``.

    conv -> ReLU -> adaptive max-pool 4x4 -> flatten (channel fastest) -> fc1 -> ReLU -> fc2
    -> ``w`` of shape ``(B, k*k, N)``, softmax over the taps; ``S = softmax_N(conv_S([h; x]))``.
    """

    def __init__(self, params: dict, k: int):
        super().__init__()
        self.k = k
        self.conv = _conv(params["conv"]["W"], params["conv"]["b"])
        self.fc1 = _linear(params["fc1"]["W"], params["fc1"]["b"])
        self.fc2 = _linear(params["fc2"]["W"], params["fc2"]["b"])
        self.conv_s = _conv(params["S"]["W"], params["S"]["b"])
        self.n_kernels = params["S"]["W"].shape[3]

    def forward(self, z: torch.Tensor):
        B = z.shape[0]
        a = F.relu(self.conv(z))
        pooled = F.adaptive_max_pool2d(a, (4, 4))  # (B, C_1, 4, 4)
        v = pooled.permute(0, 2, 3, 1).reshape(B, -1)  # channel fastest, as documented
        o = self.fc2(F.relu(self.fc1(v)))
        w = torch.softmax(o.view(B, self.k * self.k, self.n_kernels), dim=1)
        S = torch.softmax(self.conv_s(z), dim=1)  # (B, N, H, W)
        return w, S


def _factorized(w: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Eq. 12 in NCHW: ``W[b, q, i, j] = sum_l S[b, l, i, j] w[b, q, l]``."""
    return torch.einsum("bql,blij->bqij", w, S)


class TSRUCell(nn.Module):
    """TSRU_c / TSRU_p / TSRU_s (section 3.2.2, Eqs. 6-10) with factorized warping."""

    def __init__(self, kind: str, params: dict, activation: str = "relu", warp_cls=PixelwiseWarp):
        super().__init__()
        if kind not in KINDS:
            raise NotImplementedError(f"this port implements {', '.join(KINDS)} only, not {kind!r}")
        self.variant = kind[-1]
        k = params["c"]["W"].shape[0]
        self.hyper = FactorizedHyperNet(params["f"], k)
        self.warp = warp_cls(k)
        self.conv_c = _conv(params["c"]["W"], params["c"]["b"])
        self.conv_u = _conv(params["u"]["W"], params["u"]["b"])
        self.rho = {"relu": F.relu, "tanh": torch.tanh}[activation]

    def forward(self, h: torch.Tensor, x: torch.Tensor):
        hx = torch.cat([h, x], dim=1)
        w, S = self.hyper(hx)  # (6)
        W = _factorized(w, S)
        h_warped = self.warp(h, W)  # (7)
        c_in = hx if self.variant == "p" else torch.cat([h_warped, x], dim=1)
        c = self.rho(self.conv_c(c_in))  # (8)
        u_in = torch.cat([h_warped, c], dim=1) if self.variant == "s" else hx
        u = torch.sigmoid(self.conv_u(u_in))  # (9)
        return u * h_warped + (1 - u) * c, (w, S, W)  # (10)


# ---------------------------------------------------------------------------
# adapters: NumPy channels-last in, NumPy channels-last out


def _nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).detach().cpu().numpy()


def _check_dtype(*arrays: np.ndarray) -> None:
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        raise TypeError(f"expected float32 or float64 arrays of one dtype, got {sorted(map(str, dtypes))}")


class TorchPort:
    """The public functions, parametrised by the warp module (so that variants can swap it)."""

    def __init__(self, warp_cls=PixelwiseWarp):
        self.warp_cls = warp_cls

    @torch.no_grad()
    def pixelwise_warp(self, h, W, k=3):
        _check_dtype(h, W)
        return _nhwc(self.warp_cls(k)(_nchw(h), _nchw(W)))

    @torch.no_grad()
    def factorized_kernels(self, w, S):
        _check_dtype(w, S)
        return _nhwc(_factorized(torch.from_numpy(np.ascontiguousarray(w)), _nchw(S)))

    @torch.no_grad()
    def cell_step(self, kind, params, h, x, *, return_warp=False, activation=None):
        if kind not in KINDS:
            raise NotImplementedError(f"this port implements {', '.join(KINDS)} only, not {kind!r}")
        _check_dtype(h, x)
        cell = TSRUCell(kind, params, activation or "relu", self.warp_cls).to(torch.from_numpy(h).dtype)
        h_new, (w, S, W) = cell(_nchw(h), _nchw(x))
        if return_warp:
            return _nhwc(h_new), {"w": w.numpy(), "S": _nhwc(S), "W": _nhwc(W)}
        return _nhwc(h_new)


_PORT = TorchPort()
pixelwise_warp = _PORT.pixelwise_warp
factorized_kernels = _PORT.factorized_kernels
cell_step = _PORT.cell_step
