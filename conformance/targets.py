"""Targets: the implementations the suite checks against the reference.

A :class:`Target` knows how to turn NumPy inputs into its own arrays and back,
and where to find the function a record names:

* ``"numpy"`` and any other backend name: ``trivd_core`` on the arrays of
  ``backends.load(name)`` (``backend.asarray`` / ``backend.to_numpy`` /
  ``backend.supports_float64``; the backend's fast paths are registered by
  ``load``).  ``"numpy"`` is the NumPy backend, i.e. trivd_core on NumPy.
* ``"array_api_strict"``: ``trivd_core`` on ``array_api_strict`` arrays, API
  version :data:`STRICT_API_VERSION` (the suite's proof that the core uses the
  standard only).
* ``"port:<module>"`` (or :class:`PortTarget`): a third-party module exposing
  any subset of the public names with the documented conventions, NumPy in and
  NumPy out.  Names it lacks are reported ``missing``, and so is an op for which
  it raises ``NotImplementedError`` (e.g. a cell kind it does not implement).
  A port that cannot run float64 sets ``TRIVD_SUPPORTS_FLOAT64 = False``.

Functions are looked up as ``trivd_core.<record.module>.<record.function>`` and
then ``trivd_core.<record.function>`` (ports: ``<port>.<record.function>``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from trivd_core.tree import tree_map

__all__ = [
    "Target",
    "CoreTarget",
    "ArrayApiStrictTarget",
    "BackendTarget",
    "PortTarget",
    "get_target",
    "STRICT_API_VERSION",
    "Missing",
    "target_or_unavailable",
]

#: The array API version array_api_strict is pinned to for the suite.
STRICT_API_VERSION = "2025.12"


class Missing(Exception):
    """The target does not provide an op (reported as status ``missing``)."""


def _lookup(package: ModuleType | str, module: str, function: str) -> Callable | None:
    """``package.module.function``, else ``package.function``, else ``None``."""
    pkg = importlib.import_module(package) if isinstance(package, str) else package
    try:
        sub = importlib.import_module(f"{pkg.__name__}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"{pkg.__name__}.{module}",):
            raise
        sub = None
    fn = getattr(sub, function, None) if sub is not None else None
    if fn is None:
        fn = getattr(pkg, function, None)
    return fn if callable(fn) else None


class Target:
    """Base class: conversion hooks and op lookup.  Subclasses override what differs."""

    #: Display name; also the stem of the skip file ``conformance/skips/<skip_key>.txt``.
    name: str = "target"
    supports_float64: bool = True
    #: Core targets must provide every op (missing -> fail); ports may provide a subset.
    missing_is_failure: bool = True

    @property
    def skip_key(self) -> str:
        return self.name

    def resolve(self, record) -> Callable | None:
        return _lookup("trivd_core", record.module, record.function)

    def leaf_to_target(self, a: np.ndarray, dtype: str | None) -> Any:
        raise NotImplementedError  # pragma: no cover - abstract

    def leaf_to_numpy(self, x: Any) -> Any:
        return np.asarray(x)

    def is_native(self, x: Any) -> bool:
        """Whether an output leaf is an array of this target (core code must not leak NumPy)."""
        return True

    def to_target(self, a: np.ndarray) -> Any:
        """One NumPy leaf -> target array (floating leaves keep their dtype, integer leaves stay integer)."""
        if np.issubdtype(a.dtype, np.floating):
            return self.leaf_to_target(a, a.dtype.name)
        return self.leaf_to_target(a, None)

    def to_numpy(self, tree: Any) -> Any:
        """Target arrays (in a tree) -> NumPy arrays (``None`` and strings are kept)."""

        def leaf(x):
            if x is None or isinstance(x, str):
                return x
            return np.asarray(self.leaf_to_numpy(x))

        return tree_map(leaf, tree)

    def call(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        return fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class CoreTarget(Target):
    """trivd_core on plain NumPy arrays, without the backends package (used for golden checks)."""

    name = "numpy"

    def leaf_to_target(self, a, dtype):
        return np.array(a, copy=True)

    def is_native(self, x):
        return isinstance(x, (np.ndarray, np.generic))


class ArrayApiStrictTarget(Target):
    """trivd_core on array_api_strict arrays (API version :data:`STRICT_API_VERSION`)."""

    name = "array_api_strict"

    def __init__(self, api_version: str = STRICT_API_VERSION):
        import array_api_strict as xs

        if xs.get_array_api_strict_flags()["api_version"] != api_version:
            xs.set_array_api_strict_flags(api_version=api_version)
        self.xs = xs
        self.array_type = type(xs.asarray(0.0))
        self.api_version = api_version

    def leaf_to_target(self, a, dtype):
        xs = self.xs
        return xs.asarray(np.array(a, copy=True), dtype=getattr(xs, dtype) if dtype else None)

    def leaf_to_numpy(self, x):
        if not isinstance(x, self.array_type):
            return np.asarray(x)
        try:
            return np.asarray(x)
        except TypeError:  # a future array_api_strict without __array__
            return np.from_dlpack(x)

    def is_native(self, x):
        return isinstance(x, self.array_type)


class BackendTarget(Target):
    """trivd_core on the arrays of a :mod:`backends` backend."""

    def __init__(self, backend: Any):
        self.backend = backend
        self.name = backend.name
        self.supports_float64 = bool(backend.supports_float64)

    def leaf_to_target(self, a, dtype):
        return self.backend.asarray(np.array(a, copy=True), dtype=dtype)

    def leaf_to_numpy(self, x):
        return self.backend.to_numpy(x)

    def is_native(self, x):
        if self.name == "numpy":
            return isinstance(x, (np.ndarray, np.generic))
        return not isinstance(x, (np.ndarray, np.generic))


class PortTarget(Target):
    """A third-party implementation given by module path (NumPy in, NumPy out)."""

    missing_is_failure = False

    def __init__(self, module: str | ModuleType):
        self.module = importlib.import_module(module) if isinstance(module, str) else module
        self.name = f"port:{self.module.__name__}"
        self.supports_float64 = bool(getattr(self.module, "TRIVD_SUPPORTS_FLOAT64", True))

    @property
    def skip_key(self) -> str:
        return f"port-{self.module.__name__}"

    def resolve(self, record):
        fn = getattr(self.module, record.function, None)
        return fn if callable(fn) else None

    def leaf_to_target(self, a, dtype):
        return np.array(a, copy=True)

    def call(self, fn, args, kwargs):
        try:
            return fn(*args, **kwargs)
        except NotImplementedError as exc:
            raise Missing(str(exc) or "NotImplementedError") from exc


def get_target(spec: str | Target) -> Target:
    """``"array_api_strict"``, ``"port:<module>"`` or a backend name (``"numpy"``, ``"jax"``, ...) -> Target.

    Raises ``backends.BackendUnavailable`` when the backend's framework is
    missing, ``ValueError`` for an unknown backend name and ``ImportError`` for
    a port module that cannot be imported.
    """
    if isinstance(spec, Target):
        return spec
    if spec == "array_api_strict":
        return ArrayApiStrictTarget()
    if spec.startswith("port:"):
        return PortTarget(spec[len("port:") :])
    import backends

    return BackendTarget(backends.load(spec))


@functools.cache
def target_or_unavailable(spec: str):
    """:func:`get_target` of ``spec``, built once per process, or the ``backends.BackendUnavailable``
    that prevented it (the test modules report it as a skip with its reason)."""
    import backends

    try:
        return get_target(spec)
    except backends.BackendUnavailable as exc:
        return exc
