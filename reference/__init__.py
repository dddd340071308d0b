"""trivd reference: slow, loop-based NumPy statements of every equation of TrIVD-GAN-FP.

This package is the specification.  Each function loops over pixels, kernel
taps and samples in the order the paper writes the sums, cites the equation
number it implements and uses the paper's symbols.  trivd_core exposes the same
public names, vectorised; the conformance suite checks one against the other.
"""

from .cells import KINDS, cell_step
from .i3d import conv3d_strided, i3d_logits, max_pool3d, preprocess, resize_bilinear
from .layers import batch_norm, batch_stats, conditional_batch_norm, orthogonal_penalty, spectral_normalize
from .losses import d_hinge_loss, g_hinge_loss, mixed_projection, projection
from .metrics import (
    BestOf,
    FewSamplesWarning,
    best_of,
    copy_last_frame,
    frechet_distance,
    frechet_distance_from_features,
    inception_score,
    psnr,
    ssim,
)
from .ops import adaptive_max_pool, avg_pool, conv2d, conv3d, pad_hw, relu, sigmoid, softmax, upsample_nearest
from .video import crop, downsample, sample_frames
from .warping import combine_flows, expected_flow, factorized_kernels, pixelwise_warp

__all__ = [
    "pad_hw", "conv2d", "conv3d", "avg_pool", "upsample_nearest", "adaptive_max_pool", "sigmoid", "relu", "softmax",
    "pixelwise_warp", "factorized_kernels", "expected_flow", "combine_flows",
    "KINDS", "cell_step",
    "spectral_normalize", "orthogonal_penalty", "batch_stats", "batch_norm", "conditional_batch_norm",
    "d_hinge_loss", "g_hinge_loss", "projection", "mixed_projection",
    "sample_frames", "downsample", "crop",
    "FewSamplesWarning", "BestOf", "frechet_distance", "frechet_distance_from_features", "inception_score",
    "ssim", "psnr", "best_of", "copy_last_frame",
    "conv3d_strided", "max_pool3d", "resize_bilinear", "preprocess", "i3d_logits",
]
