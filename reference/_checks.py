"""Light argument checks for the reference (kept independent of trivd_core)."""

from __future__ import annotations

import numpy as np


def check_array(fn, name, x, ndim=None):
    """Return ``x`` as a floating NumPy array, raising a named error otherwise."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{fn}(): argument '{name}' must be a floating array, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{fn}(): argument '{name}' must be {ndim}-D, got shape {a.shape}")
    return a


def check_odd(fn, name, k):
    if not isinstance(k, (int, np.integer)) or k < 1 or k % 2 == 0:
        raise ValueError(f"{fn}(): {name} must be an odd positive int, got {k!r}")
