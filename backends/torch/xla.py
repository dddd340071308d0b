"""Deprecated: torch_xla's device and sharding helpers are :mod:`backends.torch.sharding`; removed in 0.3."""

import importlib
import warnings


def __getattr__(name):
    warnings.warn("backends.torch.xla moved to backends.torch.sharding; backends.torch.xla goes in trivd 0.3",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module("backends.torch.sharding"), name)
