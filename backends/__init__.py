"""Backends: what differs per framework (conversion, fast paths, autodiff, jit, devices).

A backend is an object with the attributes of :class:`Backend`, published under
the entry-point group ``trivd.backends`` (names ``numpy``, ``jax``, ``torch``,
``xla``).  :func:`load` finds one by name; it falls back to the modules shipped
in this package when the distribution is not installed (e.g. a source checkout
on ``PYTHONPATH``).  Backends never import each other.
"""

from __future__ import annotations

import importlib
import os
from importlib import metadata
from typing import Any, Protocol, runtime_checkable

__all__ = ["Backend", "BackendUnavailable", "load", "names", "default_name"]

#: Built-in backends: name -> "module:attribute".
BUILTIN = {
    "numpy": "backends.numpy:BACKEND",
    "jax": "backends.jax:BACKEND",
    "torch": "backends.torch:BACKEND",
    "xla": "backends.torch:XLA_BACKEND",
}


class BackendUnavailable(RuntimeError):
    """The backend's framework is not installed or cannot start here."""


@runtime_checkable
class Backend(Protocol):
    name: str
    supports_float64: bool

    def namespace(self) -> Any:
        """The array namespace trivd_core sees (array_api_compat-wrapped where needed)."""

    def activate(self) -> None:
        """Register this backend's fast paths in ``trivd_core.ops`` (idempotent)."""

    def asarray(self, a, dtype: str | None = None) -> Any:
        """NumPy array (or nested dict of them) -> backend array(s) on the backend's device."""

    def to_numpy(self, x) -> Any:
        """Backend array (or nested dict of them) -> NumPy array(s)."""

    def value_and_grad(self, f, argnums: int | tuple[int, ...] = 0):
        """``f(*arrays) -> scalar``; returns ``g(*arrays) -> (value, grads)`` like ``jax.value_and_grad``."""

    def jit(self, f):
        """Compile ``f`` where the framework can (identity otherwise)."""


def names() -> list[str]:
    found = {ep.name for ep in metadata.entry_points(group="trivd.backends")}
    return sorted(found | set(BUILTIN))


def default_name() -> str:
    return os.environ.get("TRIVD_BACKEND", "numpy")


def load(name: str | None = None, *, activate: bool = True) -> Backend:
    """Return the backend called ``name`` (default: ``$TRIVD_BACKEND`` or ``numpy``), fast paths registered."""
    name = default_name() if name is None else name
    target = None
    for ep in metadata.entry_points(group="trivd.backends"):
        if ep.name == name:
            target = ep.value
            break
    if target is None:
        target = BUILTIN.get(name)
    if target is None:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(names())}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        from trivd_core._install import install_hint

        raise BackendUnavailable(
            f"backend {name!r} needs a framework that is not installed ({exc}); "
            f"install it with `{install_hint(name)}`"
        ) from exc
    backend = getattr(module, attr)
    if activate:
        backend.activate()
    return backend
