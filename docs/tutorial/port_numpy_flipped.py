"""``port_numpy`` with one classic porting slip: the warp applies its kernel flipped.

Eq. 11 *correlates*: tap ``(m, n)`` reads ``h[i + m - p, j + n - p]``.  Writing it as a
convolution (as ``scipy.signal.convolve`` or a textbook formula would) reads
``h[i - (m - p), j - (n - p)]`` instead: every shift goes the other way, and the motion
field a model learns would be read with the wrong sign.  Chapter 6 of the tutorial shows
what ``trivd conform --port port_numpy_flipped`` reports.
"""

from __future__ import annotations

import numpy as np
import port_numpy
from port_numpy import TRIVD_SUPPORTS_FLOAT64, factorized_kernels  # noqa: F401  (the parts that are right)


def pixelwise_warp(h, W, k=3):
    """The slip: h~[i, j] = sum_{m, n} W[i, j, m k + n] h[i - (m - p), j - (n - p)]."""
    out = np.zeros_like(h)
    for m, n, shifted in port_numpy._taps(h, k):
        out += W[..., (k - 1 - m) * k + (k - 1 - n), None] * shifted
    return out


def cell_step(kind, params, h, x, *, return_warp=False, activation=None):
    """TSRU with the flipped warp inside (the rest as in port_numpy)."""
    saved = port_numpy.pixelwise_warp
    port_numpy.pixelwise_warp = pixelwise_warp
    try:
        return port_numpy.cell_step(kind, params, h, x, return_warp=return_warp, activation=activation)
    finally:
        port_numpy.pixelwise_warp = saved
