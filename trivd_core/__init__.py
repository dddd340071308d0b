"""trivd_core: TrIVD-GAN-FP written once against the Python array API.

``import trivd_core as tc; tc.cell_step("tsru_p", params, h, x)`` works on NumPy,
array_api_strict, JAX and torch arrays alike.  Backends register fast paths for
the primitives in :mod:`trivd_core.ops`; nothing here imports a backend.
"""

from . import (
    fvd,  # the module (trivd_core.fvd.fvd computes the distance); not shadowed by the function
    metrics,
    ops,
)
from .cells import KINDS, cell_step, init_cell
from .configs import CONFIGS, Config, get_config
from .discriminator import discriminate, encode, init_discriminator, init_encoder, sample_randomness
from .ema import ema_update
from .fvd import I3DExtractor, inception_score_of, load_extractor
from .generator import (
    accumulate_standing_stats,
    g_ortho_penalty,
    generate,
    init_generator,
    truncated_normal_latents,
)
from .i3d import (
    conv3d_strided,
    i3d_logits,
    init_i3d,
    load_i3d_npz,
    max_pool3d,
    preprocess,
    resize_bilinear,
    save_i3d_npz,
)
from .layers import batch_norm, batch_stats, conditional_batch_norm, orthogonal_penalty, spectral_normalize
from .losses import d_hinge_loss, g_hinge_loss, mixed_projection, projection
from .metrics import *  # noqa: F403 - the names of metrics.__all__ (FVD/IS, SSIM/PSNR, best of l), listed there once
from .objective import d_loss, g_loss
from .ops import adaptive_max_pool, avg_pool, conv2d, conv3d, pad_hw, relu, sigmoid, softmax, upsample_nearest
from .video import crop, downsample, sample_frames
from .warping import combine_flows, expected_flow, factorized_kernels, pixelwise_warp

__version__ = "0.1.0"

__all__ = [
    "ops",
    # primitives (reference twins in reference.ops)
    "pad_hw", "conv2d", "conv3d", "avg_pool", "upsample_nearest", "adaptive_max_pool", "sigmoid", "relu", "softmax",
    # warping, Eqs. 11-12 and Fig. 3
    "pixelwise_warp", "factorized_kernels", "expected_flow", "combine_flows",
    # recurrent cells, Eqs. 1-10, 16-22
    "KINDS", "init_cell", "cell_step",
    # layers and losses, appendix E, Eqs. 13-15
    "spectral_normalize", "orthogonal_penalty", "batch_stats", "batch_norm", "conditional_batch_norm",
    "d_hinge_loss", "g_hinge_loss", "projection", "mixed_projection",
    # discriminator inputs, section 3.1
    "sample_frames", "downsample", "crop",
    # model, appendix A
    "Config", "CONFIGS", "get_config",
    "init_generator", "generate", "accumulate_standing_stats", "truncated_normal_latents", "g_ortho_penalty",
    "init_encoder", "encode", "init_discriminator", "discriminate", "sample_randomness",
    "d_loss", "g_loss", "ema_update",
    # metrics, section 4.1 and appendix C (NumPy/SciPy, float64)
    *metrics.__all__,
    # FVD feature network (I3D) and pipeline; primitive twins in reference.i3d
    "conv3d_strided", "max_pool3d", "resize_bilinear", "preprocess", "init_i3d", "i3d_logits",
    "load_i3d_npz", "save_i3d_npz", "I3DExtractor", "load_extractor", "fvd", "inception_score_of",  # fvd: the module
]
