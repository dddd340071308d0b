"""Fixtures of the backend tests: one parametrised ``backend`` fixture over jax, torch and xla.

A backend whose framework is not importable is skipped with the reason (the tox
envs ``jax``, ``torch`` and ``xla`` each install one framework).  The tests run
on the host CPU unless the environment says otherwise: ``JAX_PLATFORMS=cpu`` and
``PJRT_DEVICE=CPU`` are defaults set here, before any framework is imported.

The project runs pytest with ``--import-mode=importlib``, which does not put
test folders on ``sys.path``; this folder is added so that the test modules can
share ``_backend_bounds`` (a uniquely named helper module).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("PJRT_DEVICE", "CPU")
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

import importlib.util  # noqa: E402

import pytest  # noqa: E402

# torch's autograd engine sizes its per-device queues at the first backward pass,
# counting the devices of every runtime started by then; a backward on CPU tensors
# before torch_xla's runtime is up leaves XLA tensors without a queue for the rest
# of the process (an internal assert in engine.cpp).  The torch tests run before
# the xla tests, so start the XLA runtime first where torch_xla exists.
if importlib.util.find_spec("torch_xla") is not None:
    import torch_xla  # noqa: E402

    torch_xla.device()

#: backend name -> the module its framework needs.
FRAMEWORK = {"jax": "jax", "torch": "torch", "xla": "torch_xla"}


def load_backend(name: str):
    """``backends.load(name)``, or a pytest skip naming the missing framework."""
    pytest.importorskip(FRAMEWORK[name], reason=f"backend {name!r} needs {FRAMEWORK[name]}, which is not installed")
    import backends

    return backends.load(name)


@pytest.fixture(params=sorted(FRAMEWORK), scope="module")
def backend(request):
    return load_backend(request.param)
