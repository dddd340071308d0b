"""trivd reference: slow, loop-based NumPy statements of every equation of TrIVD-GAN-FP.

This package is the specification.  Each function loops over pixels, kernel
taps and samples in the order the paper writes the sums, cites the equation
number it implements and uses the paper's symbols.  trivd_core exposes the same
public names, vectorised; the conformance suite checks one against the other.
"""

from .ops import adaptive_max_pool, avg_pool, conv2d, conv3d, pad_hw, relu, sigmoid, softmax, upsample_nearest

__all__ = [
    "pad_hw", "conv2d", "conv3d", "avg_pool", "upsample_nearest", "adaptive_max_pool", "sigmoid", "relu", "softmax",
]
