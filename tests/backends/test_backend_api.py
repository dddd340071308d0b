"""The Backend protocol on jax / torch / xla: conversion, devices, activation, value_and_grad, jit, errors.

Expected values are hand-derived (the gradients of small polynomials) or plain
NumPy; float64 round trips must be exact.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from array_api_compat import array_namespace
from conftest import load_backend

import backends
from trivd_core import ops


def _tree():
    rng = np.random.default_rng(3)
    return {
        "w": rng.standard_normal((3, 3, 2, 4)),
        "nested": {"b": rng.standard_normal(4).astype(np.float32), "idx": np.arange(6).reshape(2, 3)},
        "list": [rng.standard_normal((2,)), np.float64(1.5)],
    }


def test_satisfies_protocol(backend):
    assert isinstance(backend, backends.Backend)
    assert backend.name in ("jax", "torch", "xla")
    assert isinstance(backend.supports_float64, bool)
    assert backends.load(backend.name) is backend


def test_namespace_is_the_namespace_of_its_arrays(backend):
    x = backend.asarray(np.zeros((2, 3), dtype=np.float32))
    assert array_namespace(x) is backend.namespace()


def test_asarray_round_trip_keeps_tree_values_and_dtypes(backend):
    tree = _tree()
    native = backend.asarray(tree)
    back = backend.to_numpy(native)
    assert set(back) == {"w", "nested", "list"} and set(back["nested"]) == {"b", "idx"}
    assert isinstance(back["list"], list) and len(back["list"]) == 2
    for got, want in [
        (back["w"], tree["w"]),
        (back["nested"]["b"], tree["nested"]["b"]),
        (back["list"][1], tree["list"][1]),
    ]:
        assert isinstance(got, np.ndarray)
        if want.dtype == np.float64 and not backend.supports_float64:
            continue
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert np.issubdtype(back["nested"]["idx"].dtype, np.integer)
    np.testing.assert_array_equal(back["nested"]["idx"], tree["nested"]["idx"])


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32])
def test_asarray_dtype_converts_floating_leaves_only(backend, dtype):
    if np.dtype(dtype) == np.float64 and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    tree = _tree()
    back = backend.to_numpy(backend.asarray(tree, dtype=dtype))
    assert back["w"].dtype == np.dtype(dtype) and back["nested"]["b"].dtype == np.dtype(dtype)
    assert np.issubdtype(back["nested"]["idx"].dtype, np.integer)
    np.testing.assert_array_equal(back["w"], tree["w"].astype(dtype))


@pytest.mark.parametrize("bad", ["int32", "float16x", "complex64"])
def test_asarray_rejects_other_dtypes(backend, bad):
    with pytest.raises(ValueError, match="argument 'dtype'"):
        backend.asarray(np.zeros(2), dtype=bad)


def test_arrays_live_on_the_backend_device(backend):
    x = backend.asarray(np.ones((2, 2), dtype=np.float32))
    if backend.name == "jax":
        assert x.devices() == {backend.device}
    else:
        assert x.device == backend.device
        assert x.device.type == ("xla" if backend.name == "xla" else backend.device.type)


def test_activate_is_idempotent(backend):
    xp = backend.namespace()
    before = {op: len(entries) for op, entries in ops._registry.items()}  # private: counting registrations
    paths = ops.fast_paths(xp)
    backend.activate()
    backend.activate()
    assert {op: len(entries) for op, entries in ops._registry.items()} == before
    assert ops.fast_paths(xp) == paths
    assert set(paths) == set(ops.OPS), f"{backend.name} leaves ops without a fast path: {set(ops.OPS) - set(paths)}"


def test_deactivate_then_activate_restores_fast_paths(backend):
    xp = backend.namespace()
    paths = ops.fast_paths(xp)
    try:
        backend.deactivate()
        assert not any(fn.__module__.startswith("backends.") for fn in ops.fast_paths(xp).values())
    finally:
        backend.activate()
    assert ops.fast_paths(xp) == paths


def _poly(p, x):
    """f = sum(a * x^2) + sum(c^3), so df/da = x^2, df/dc = 3 c^2, df/dx = 2 a x."""
    xp = array_namespace(x)
    return xp.sum(p["a"] * x * x) + xp.sum(p["b"]["c"] ** 3)


@pytest.mark.parametrize("jit", [False, True])
def test_value_and_grad_of_a_tree_matches_hand_derivation(backend, jit):
    dtype = "float64" if backend.supports_float64 else "float32"
    rng = np.random.default_rng(5)
    a, c, x = (rng.standard_normal(s).astype(dtype) for s in [(2, 3), (4,), (2, 3)])
    params = backend.asarray({"a": a, "b": {"c": c}})
    xn = backend.asarray(x)
    vg = backend.value_and_grad(_poly, (0, 1))
    if jit:
        vg = backend.jit(vg)
    value, (gp, gx) = vg(params, xn)
    gp, gx = backend.to_numpy(gp), backend.to_numpy(gx)
    # A handful of roundings on O(1) values: 8 ulp relative.
    tol = dict(rtol=8 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_allclose(float(backend.to_numpy(value)), np.sum(a * x * x) + np.sum(c**3), **tol)
    assert set(gp) == {"a", "b"} and set(gp["b"]) == {"c"}
    np.testing.assert_allclose(gp["a"], x * x, **tol)
    np.testing.assert_allclose(gp["b"]["c"], 3 * c * c, **tol)
    np.testing.assert_allclose(gx, 2 * a * x, **tol)
    # single argnum: grads not wrapped in a tuple
    value1, g1 = backend.value_and_grad(_poly, 1)(params, xn)
    np.testing.assert_allclose(backend.to_numpy(g1), 2 * a * x, **tol)


def test_value_and_grad_does_not_touch_inputs(backend):
    x = backend.asarray(np.arange(4.0, dtype=np.float32))
    xp = backend.namespace()
    backend.value_and_grad(lambda v: xp.sum(v * v))(x)
    if backend.name != "jax":
        assert not x.requires_grad and x.grad is None
    np.testing.assert_array_equal(backend.to_numpy(x), np.arange(4.0))


def test_value_and_grad_of_a_constant_is_zero(backend):
    x = backend.asarray(np.ones(3, dtype=np.float32))
    c = backend.asarray(np.float32(2.0))
    value, g = backend.value_and_grad(lambda v, k: k * 1.0, 0)(x, c)
    np.testing.assert_array_equal(backend.to_numpy(g), np.zeros(3, dtype=np.float32))
    assert float(backend.to_numpy(value)) == 2.0


def test_jit_computes_the_same(backend):
    xp = backend.namespace()
    x, w = backend.asarray([np.ones((1, 4, 4, 2), np.float32), np.full((3, 3, 2, 1), 0.5, np.float32)])

    def f(a, b):
        return xp.sum(ops.conv2d(a, b))

    # Interior pixels see 9 taps * 2 channels * 0.5, edges 6 or 4 taps: exact in float32.
    expected = 0.5 * 2 * (4 * 9 + 8 * 6 + 4 * 4)
    assert float(backend.to_numpy(backend.jit(f)(x, w))) == expected
    assert float(backend.to_numpy(f(x, w))) == expected


# --- errors ---------------------------------------------------------------


def test_value_and_grad_rejects_non_scalar_output(backend):
    x = backend.asarray(np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError):
        backend.value_and_grad(lambda v: v * 2)(x)


def test_value_and_grad_rejects_integer_arguments(backend):
    xp = backend.namespace()
    i = backend.asarray(np.arange(3))
    with pytest.raises(TypeError):
        backend.value_and_grad(lambda v: xp.sum(v))(i)


def test_backend_on_another_device_spec(backend):
    if backend.name == "jax":
        import jax

        other = backend.on("cpu:0")
        assert other.device == jax.devices("cpu")[0]
        with pytest.raises(ValueError, match="argument 'device'"):
            backend.on("cpu:99")
        with pytest.raises(ValueError, match="argument 'device'"):
            backend.on("nosuchplatform")
    elif backend.name == "torch":
        import torch

        assert backend.on("cpu").device == torch.device("cpu")
        with pytest.raises(ValueError, match="argument 'device'"):
            backend.on("nosuchdevice")
    else:
        assert backend.on(None).device.type == "xla"
        assert backend.on("xla:0").device == backend.device
        with pytest.raises(ValueError, match="argument 'device'"):
            backend.on("cpu")


# --- per-framework configuration -------------------------------------------


def test_jax_activate_enables_float64_and_highest_precision():
    jx = load_backend("jax")
    import jax

    if os.environ.get("TRIVD_JAX_X64", "1") != "0":
        assert jx.supports_float64 and jax.config.jax_enable_x64
        assert jx.to_numpy(jx.asarray(np.float64(1) + 2.0**-40)) == 1 + 2.0**-40
    assert jax.config.jax_default_matmul_precision == os.environ.get("TRIVD_JAX_MATMUL_PRECISION", "highest")


JAX_NO_X64 = """
import numpy as np
import jax
import backends
jx = backends.load("jax")
assert not jx.supports_float64 and not jax.config.jax_enable_x64
assert jx.asarray(np.ones(2)).dtype == np.float32
assert jx.asarray({"i": np.arange(2, dtype=np.int32)})["i"].dtype == np.int32
try:
    jx.asarray(np.ones(2), dtype="float64")
except ValueError as exc:
    assert "argument 'dtype'" in str(exc) and "TRIVD_JAX_X64" in str(exc), exc
else:
    raise AssertionError("float64 without x64 was accepted")
"""


def test_jax_without_x64_is_float32_only():
    """``TRIVD_JAX_X64=0``: no float64, a clear error when asked for it (fresh process: x64 is process-wide)."""
    pytest.importorskip("jax", reason="the jax backend needs jax, which is not installed")
    env = dict(os.environ, TRIVD_JAX_X64="0", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", JAX_NO_X64], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_torch_activate_turns_tf32_off():
    load_backend("torch")
    import torch

    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cudnn.conv, "fp32_precision"):
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    else:  # pragma: no cover - older torch
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


def test_torch_jit_is_eager_by_default():
    tb = load_backend("torch")

    def f(v):
        return v

    assert tb.jit(f) is f


def test_xla_activate_sets_highest_matmul_precision():
    xb = load_backend("xla")
    import torch_xla.backends

    assert torch_xla.backends.get_mat_mul_precision() == "highest"
    assert xb.device.type == "xla"


def test_xla_without_torch_xla_is_unavailable():
    pytest.importorskip("torch", reason="the xla backend object lives in backends.torch, which needs torch")
    if importlib.util.find_spec("torch_xla") is not None:
        pytest.skip("torch_xla is installed here; this checks the message where it is not")
    with pytest.raises(backends.BackendUnavailable, match="torch_xla"):
        backends.load("xla")
