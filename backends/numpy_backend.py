"""Deprecated: the numpy backend is the package :mod:`backends.numpy` (like jax and torch); removed in 0.3."""

import importlib
import warnings


def __getattr__(name):
    warnings.warn("backends.numpy_backend moved to backends.numpy; backends.numpy_backend goes in trivd 0.3",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module("backends.numpy"), name)
