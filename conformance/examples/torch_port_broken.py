"""The example port with a classic porting bug, which the conformance runner must catch.

Identical to :mod:`conformance.examples.torch_port` except that the warp reads its
weights with the kernel index transposed, ``q = n*k + m`` (column offset major)
instead of the documented ``q = m*k + n``: the kind of slip that happens when a
weight tensor is reshaped to ``(k, k)`` and transposed to match some other code's
layout.  ``pixelwise_warp`` and every TSRU cell are wrong (except on the
symmetric ``k = 1`` case); ``factorized_kernels`` does not touch the taps and
still passes.  ``trivd conform --port conformance.examples.torch_port_broken``
must print failures and exit 1.
"""

from __future__ import annotations

import torch

from conformance.examples.torch_port import PixelwiseWarp, TorchPort

__all__ = ["pixelwise_warp", "factorized_kernels", "cell_step"]

TRIVD_SUPPORTS_FLOAT64 = True


class TransposedPixelwiseWarp(PixelwiseWarp):
    """The bug: tap ``q`` read as ``(m, n) = (q % k, q // k)``."""

    def taps(self, weights: torch.Tensor) -> torch.Tensor:
        B, kk, H, W = weights.shape
        k = self.k
        return weights.view(B, k, k, H, W).transpose(1, 2).reshape(B, kk, H, W)


_PORT = TorchPort(TransposedPixelwiseWarp)
pixelwise_warp = _PORT.pixelwise_warp
factorized_kernels = _PORT.factorized_kernels
cell_step = _PORT.cell_step
