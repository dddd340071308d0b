"""What every backend shares: the tree helpers of the core, the reading of boolean environment switches.

Each backend package (``backends.numpy``, ``backends.jax``, ``backends.torch``) has the
same module names where it has the part at all: ``__init__`` (the backend object),
``engine`` (training), ``_fast`` (native fast paths registered in ``trivd_core.ops``),
``sharding`` (batch meshes and sharded batch statistics).  Backends never import each
other; what they share lives here.
"""

from __future__ import annotations

import os

from trivd_core.tree import tree_leaves, tree_map

__all__ = ["env_flag", "tree_map", "tree_leaves"]


def env_flag(name: str, default: str) -> bool:
    """The boolean environment switch ``name`` (``1/true/yes/on`` or ``0/false/no/off``; ``default`` when unset)."""
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"environment variable {name} must be 0 or 1, got {value!r}")
