"""Multi-device readiness: batch statistics of a batch sharded over 4 virtual CPU devices.

The device count of JAX (``XLA_FLAGS=--xla_force_host_platform_device_count=4``)
and of torch_xla (``CPU_NUM_DEVICES=4``, SPMD mode) is fixed when the framework
starts, so each check runs in a fresh subprocess.  The subprocess reports what
it saw into an ``.npz`` file; the assertions are made here:

* the input really is split over 4 devices (4 shards of B/4 rows, on 4
  distinct devices, covering the batch);
* the sharded computation communicates (JAX: the compiled program contains an
  all-reduce; torch_xla: XLA's post-optimisation HLO dump does);
* mean and variance equal the single-device result and NumPy's.

Tolerance: float32 data, statistics over N = B*H*W = 240 values per channel.
Any summation order gives a mean within ``gamma_N * mean|x|`` of the exact one
(plus one rounding for the division); the two-pass variance sums N squares of
deviations each computed with <= 2 roundings and is within
``gamma_(N+3) * var`` plus the square of the mean's error.  Each side of a
comparison may err by that much, so the check allows twice the bound
(``_backend_bounds``).  NumPy's statistics are computed in float64 from the same
float32 data, i.e. exact to ~1e-16.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _backend_bounds import gamma

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAPE = (8, 5, 6, 3)
AXES = (0, 1, 2)
DEVICES = 4


def _data():
    return np.random.default_rng(21).standard_normal(SHAPE).astype(np.float32) * 2.0 + 0.5


JAX_SCRIPT = """
import sys
import numpy as np
import jax
from backends.jax import BACKEND, shard_batch, sharded_batch_stats
from backends.jax.sharding import _stats_jit

BACKEND.activate()
x_np = np.load(sys.argv[1])["x"]
x = shard_batch(x_np)
shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
mean, var = sharded_batch_stats(x, AXES)
hlo = _stats_jit.lower(x, AXES).compile().as_text()
one = jax.device_put(x_np, jax.devices()[0])
mean1, var1 = _stats_jit(one, AXES)
np.savez(
    sys.argv[2],
    n_devices=len(jax.devices()),
    n_sharding_devices=len(x.sharding.device_set),
    shard_rows=[s.data.shape[0] for s in shards],
    shard_starts=[s.index[0].start or 0 for s in shards],
    shard_devices=[s.device.id for s in shards],
    all_reduce="all-reduce" in hlo,
    mean=np.asarray(mean), var=np.asarray(var), mean1=np.asarray(mean1), var1=np.asarray(var1),
    out_replicated=mean.sharding.is_fully_replicated,
)
"""

XLA_SCRIPT = """
import glob, sys
import numpy as np
import torch
import torch_xla
import torch_xla.runtime as xr
from backends.torch import sharding as bx

bx.enable_spmd()
import backends
backend = backends.load("xla")
x_np = np.load(sys.argv[1])["x"]
x = bx.shard_batch(x_np)
shards = sorted(bx.local_shards(x), key=lambda s: s.indices[0].start or 0)
mean, var = backend.sharded_batch_stats(x, AXES)
mean_np, var_np = mean.cpu().numpy(), var.cpu().numpy()
# the same statistics of a replicated (unsharded) copy: what one device computes
one = torch.tensor(x_np).to(torch_xla.device())
m1 = one.mean(dim=AXES, keepdim=True)
var1 = ((one - m1) * (one - m1)).mean(dim=AXES).cpu().numpy()
mean1 = m1.squeeze(AXES).cpu().numpy()
dumps = glob.glob(sys.argv[3] + "/*after_optimizations*.txt")
np.savez(
    sys.argv[2],
    n_devices=xr.global_runtime_device_count(),
    spec=torch_xla._XLAC._get_xla_sharding_spec(x),
    shard_rows=[s.data.shape[0] for s in shards],
    shard_starts=[s.indices[0].start or 0 for s in shards],
    shard_devices=[s.shard_device for s in shards],
    all_reduce=any("all-reduce" in open(p).read() for p in dumps),
    n_dumps=len(dumps),
    mean=mean_np, var=var_np, mean1=mean1, var1=var1,
)
"""


def _run(script: str, env_extra: dict, tmp_path: Path) -> dict:
    inp, out = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inp, x=_data())
    env = dict(os.environ)
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    code = f"AXES = {AXES!r}\n" + textwrap.dedent(script)
    dump = tmp_path / "hlo"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(inp), str(out), str(dump)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def _check_stats(r: dict) -> None:
    x = _data().astype(np.float64)
    n = int(np.prod([SHAPE[a] for a in AXES]))
    mean_ref = x.mean(axis=AXES)
    var_ref = x.var(axis=AXES)
    mean_bound = gamma(n + 1, "float32") * np.abs(x).mean(axis=AXES)
    var_bound = gamma(n + 3, "float32") * var_ref + mean_bound**2
    for name, mean, var in (("sharded", r["mean"], r["var"]), ("single-device", r["mean1"], r["var1"])):
        assert mean.shape == var.shape == (SHAPE[-1],)
        assert mean.dtype == var.dtype == np.float32
        assert np.all(np.abs(mean - mean_ref) <= mean_bound), (name, mean - mean_ref, mean_bound)
        assert np.all(np.abs(var - var_ref) <= var_bound), (name, var - var_ref, var_bound)
    assert np.all(np.abs(r["mean"] - r["mean1"]) <= 2 * mean_bound)
    assert np.all(np.abs(r["var"] - r["var1"]) <= 2 * var_bound)


def _check_shards(r: dict) -> None:
    rows = SHAPE[0] // DEVICES
    assert list(r["shard_rows"]) == [rows] * DEVICES
    assert list(r["shard_starts"]) == [i * rows for i in range(DEVICES)]
    assert len(set(r["shard_devices"].tolist())) == DEVICES


def test_jax_sharded_batch_stats_on_4_virtual_devices(tmp_path):
    pytest.importorskip("jax", reason="the jax backend needs jax, which is not installed")
    r = _run(
        JAX_SCRIPT,
        {"XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES}", "JAX_PLATFORMS": "cpu"},
        tmp_path,
    )
    assert int(r["n_devices"]) == DEVICES and int(r["n_sharding_devices"]) == DEVICES
    _check_shards(r)
    assert bool(r["all_reduce"]), (
        "the compiled statistics contain no all-reduce: the batch was not reduced across devices"
    )
    assert bool(r["out_replicated"])
    _check_stats(r)


def test_xla_spmd_sharded_batch_stats_on_4_cpu_devices(tmp_path):
    pytest.importorskip("torch_xla", reason="the xla backend needs torch_xla, which is not installed")
    dump = tmp_path / "hlo"
    r = _run(
        XLA_SCRIPT,
        {
            "PJRT_DEVICE": "CPU",
            "CPU_NUM_DEVICES": str(DEVICES),
            "XLA_FLAGS": f"--xla_dump_to={dump} --xla_dump_hlo_as_text",
        },
        tmp_path,
    )
    assert int(r["n_devices"]) == DEVICES
    assert str(r["spec"]).startswith(f"{{devices=[{DEVICES},1,1,1]"), r["spec"]
    _check_shards(r)
    assert int(r["n_dumps"]) > 0, "XLA wrote no HLO dumps; cannot check the all-reduce"
    assert bool(r["all_reduce"]), (
        "the compiled statistics contain no all-reduce: the batch was not reduced across devices"
    )
    _check_stats(r)


def test_jax_shard_batch_rejects_indivisible_batch():
    pytest.importorskip("jax", reason="the jax backend needs jax, which is not installed")
    from backends.jax import batch_mesh, shard_batch

    mesh = batch_mesh()
    n = mesh.devices.size
    with pytest.raises(ValueError, match="argument 'x'"):
        shard_batch(np.zeros((n + 1, 2, 2, 1), np.float32) if n > 1 else np.zeros((), np.float32), mesh)


def test_jax_sharded_batch_stats_on_one_device_matches_numpy():
    """In-process (whatever the device count is here): the function itself, and its argument checks."""
    pytest.importorskip("jax", reason="the jax backend needs jax, which is not installed")
    import jax

    from backends.jax import sharded_batch_stats

    n = len(jax.local_devices())
    x = np.random.default_rng(22).standard_normal((4 * n, 3, 2, 2)).astype(np.float32)
    mean, var = sharded_batch_stats(x, (0, 1, 2))
    N = 4 * n * 6
    bound_m = gamma(N + 1, "float32") * np.abs(x).astype(np.float64).mean(axis=(0, 1, 2))
    bound_v = gamma(N + 3, "float32") * x.astype(np.float64).var(axis=(0, 1, 2)) + bound_m**2
    assert np.all(np.abs(np.asarray(mean) - x.astype(np.float64).mean(axis=(0, 1, 2))) <= bound_m)
    assert np.all(np.abs(np.asarray(var) - x.astype(np.float64).var(axis=(0, 1, 2))) <= bound_v)
    with pytest.raises(ValueError, match="argument 'axes'"):
        sharded_batch_stats(x, (0, 4))
    with pytest.raises(ValueError, match="argument 'axes'"):
        sharded_batch_stats(x, (0, 0))
