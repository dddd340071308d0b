"""Shared set-up of the test suite.

The project runs pytest with ``--import-mode=importlib``, which does not put test
folders on ``sys.path``.  The helpers shared by several test modules live in
``tests/_test_helpers.py``; it is loaded here by file path and registered as the
module ``_test_helpers``, so test modules can ``from _test_helpers import ...``.
``tests/`` itself is deliberately not put on ``sys.path``: its ``backends/``
folder would then shadow the project's ``backends`` package as a namespace package
(an editable install resolves the project's packages after the path scan).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if "_test_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("_test_helpers", Path(__file__).with_name("_test_helpers.py"))
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["_test_helpers"] = _module
    _spec.loader.exec_module(_module)


# -- one mechanism for "run this test on every array library" ------------------------------------------------

import os  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: the array libraries of the ``xp`` fixture, in order; jax and torch are skipped where not installed
XP_LIBRARIES = ("numpy", "array_api_strict", "jax", "torch")


class XP:
    """An array library as the core tests see it: ``name``, ``ns`` (its namespace), ``asarray`` (NumPy arrays or
    nested dicts of them -> this library's), ``compile(f)`` (``jax.jit`` on JAX - so the core is also checked
    under tracing - and ``f`` itself elsewhere)."""

    def __init__(self, name: str):
        self.name = name
        if name == "numpy":
            self.ns = np
        elif name == "array_api_strict":
            self.ns = pytest.importorskip("array_api_strict")
        elif name == "jax":
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
            self.ns = pytest.importorskip("jax.numpy")
        else:
            self.ns = pytest.importorskip("torch")

    def __repr__(self) -> str:
        return self.name

    def asarray(self, a):
        if isinstance(a, dict):
            return {k: self.asarray(v) for k, v in a.items()}
        return self.ns.asarray(np.asarray(a))

    def compile(self, f, static_argnums=()):
        if self.name == "jax":
            return pytest.importorskip("jax").jit(f, static_argnums=static_argnums)
        return f


def pytest_generate_tests(metafunc):
    """A test that takes ``xp`` runs once per library of :data:`XP_LIBRARIES`, or of its ``xp_libraries`` marker."""
    if "xp" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("xp_libraries")
        names = marker.args if marker else XP_LIBRARIES
        unknown = set(names) - set(XP_LIBRARIES)
        assert not unknown, f"xp_libraries: unknown array libraries {sorted(unknown)}"
        metafunc.parametrize("xp", names, indirect=True)


@pytest.fixture(autouse=True)
def _thread_variables_restored():
    """The CLI's ``--threads`` handling sets OMP/MKL/OpenBLAS variables for the process; undo it after each test,
    so that a test never runs with the thread count an earlier one chose."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def xp(request):
    """One array library (see :class:`XP`); which ones: :func:`pytest_generate_tests`."""
    return XP(request.param)


def _with_fast_paths(module_name: str, predicate_name: str, framework: str):
    """Register a backend's fast paths (those not already active) while a module's tests run; undo them after."""
    import array_api_compat

    from trivd_core import ops

    fw = pytest.importorskip(framework)
    try:
        fast = importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - the framework imports but the backend does not
        pytest.skip(f"{module_name} not importable: {exc}")
    predicate = getattr(array_api_compat, predicate_name)
    probe = fw.numpy.asarray(np.zeros(1)) if framework == "jax" else fw.asarray(np.zeros(1))
    active = ops.fast_paths(array_api_compat.array_namespace(probe))  # leave alone what a backend registered
    added = [(op, fn) for op, fn in fast.FAST_PATHS.items() if active.get(op) is not fn]
    for op, fn in added:
        ops.register_fast_path(op, predicate, fn)
    return fw, added


def _remove(added) -> None:
    from trivd_core import ops

    for op, fn in added:
        ops.unregister_fast_path(op, fn)


@pytest.fixture(scope="module")
def jax_fast():
    """JAX with the backend's ``lax`` fast paths registered for one test module (undone after it)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    jax, added = _with_fast_paths("backends.jax._fast", "is_jax_namespace", "jax")
    yield jax
    _remove(added)


@pytest.fixture(scope="module")
def torch_fast():
    """torch with the backend's ``torch.nn.functional`` fast paths registered for one test module."""
    torch, added = _with_fast_paths("backends.torch._fast", "is_torch_namespace", "torch")
    yield torch
    _remove(added)
