"""Deprecated: the ``trivd`` command moved to :mod:`trivd.cli` (the application package); removed in 0.3.

``from trivd_core.cli import main`` still works, with a ``DeprecationWarning``.
"""

import importlib
import warnings


def __getattr__(name):
    warnings.warn("trivd_core.cli moved to trivd.cli (the application package); trivd_core.cli goes in trivd 0.3",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module("trivd.cli"), name)
