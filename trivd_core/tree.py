"""Nested structures ("trees"): the one set of helpers every layer uses.

A tree is an array leaf, or a ``dict``/``list``/``tuple`` of trees (params are
nested dicts, ``combine_flows`` takes a list of arrays, several ops return
tuples).  Anything else (ints, floats, strings, ``None``) is a non-array leaf
and is passed through untouched by :func:`tree_map_arrays`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["tree_map", "tree_map_arrays", "tree_leaves", "tree_unflatten", "tree_paths", "tree_replace"]


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` to every leaf (anything that is not a dict, list or tuple); with ``rest``, to the leaves of
    several trees of the same structure at once (``fn(leaf, *other_leaves)``, the structure of ``tree`` leads)."""
    if isinstance(tree, Mapping):
        return {k: tree_map(fn, v, *(r[k] for r in rest)) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(fn, v, *(r[i] for r in rest)) for i, v in enumerate(tree))
    return fn(tree, *rest)


def tree_map_arrays(fn: Callable[[np.ndarray], Any], tree: Any) -> Any:
    """Apply ``fn`` to every NumPy-array leaf; other leaves are returned unchanged."""
    return tree_map(lambda v: fn(v) if isinstance(v, np.ndarray) else v, tree)


def tree_leaves(tree: Any) -> list[Any]:
    """All leaves, depth first, dict keys in insertion order."""
    out: list[Any] = []
    tree_map(out.append, tree)
    return out


def tree_unflatten(like: Any, leaves) -> Any:
    """A tree of the structure of ``like`` whose leaves are ``leaves`` in :func:`tree_leaves` order."""
    it = iter(leaves)
    return tree_map(lambda _: next(it), like)


def tree_paths(tree: Any, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    """``[(path, leaf), ...]`` where ``path`` is the tuple of keys/indices leading to the leaf."""
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in tree_paths(v, (*prefix, k))]
    if isinstance(tree, (list, tuple)):
        return [p for i, v in enumerate(tree) for p in tree_paths(v, (*prefix, i))]
    return [(prefix, tree)]


def tree_replace(tree: Any, path: tuple, value: Any) -> Any:
    """A copy of ``tree`` (containers only; leaves are shared) with the leaf at ``path`` replaced."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(tree, dict):
        new = dict(tree)
        new[head] = tree_replace(tree[head], rest, value)
        return new
    if isinstance(tree, (list, tuple)):
        items = list(tree)
        items[head] = tree_replace(tree[head], rest, value)
        return type(tree)(items)
    raise KeyError(f"path {path!r} does not lead into a container (found {type(tree).__name__})")
