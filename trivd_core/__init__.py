"""trivd_core: TrIVD-GAN-FP written once against the Python array API.

``import trivd_core as tc; tc.cell_step("tsru_p", params, h, x)`` works on NumPy,
array_api_strict, JAX and torch arrays alike.  Backends register fast paths for
the primitives in :mod:`trivd_core.ops`; nothing here imports a backend.
"""

from . import ops
from .ops import adaptive_max_pool, avg_pool, conv2d, conv3d, pad_hw, upsample_nearest

__version__ = "0.1.0"

__all__ = ["ops", "pad_hw", "conv2d", "conv3d", "avg_pool", "upsample_nearest", "adaptive_max_pool"]
