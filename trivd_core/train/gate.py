"""Deprecated: the pre-training gate moved to :mod:`conformance.gate` (it is conformance logic); removed in 0.3."""

import importlib
import warnings


def __getattr__(name):
    warnings.warn("trivd_core.train.gate moved to conformance.gate; trivd_core.train.gate goes in trivd 0.3",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module("conformance.gate"), name)
