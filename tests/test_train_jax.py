"""The JAX engine: resume bit-exactness, checkpoints as backend-neutral NumPy trees, the NaN stop, 4 devices == 1.

Compilation dominates (XLA:CPU needs ~40 s for the two step functions of the reduced
config below, ~20 s for predict); one engine per process is shared by the tests, so
the in-process tests cost ~1.5 min and the 4-device subprocess ~2 min on 2 cores:
all are marked slow.  Reduced config: 32x32, 1 -> 2 frames, g_ch = d_ch = 2, the
``faster`` decomposition (dF + crV: both kinds of D randomness), batch 4.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")

from _test_helpers import flat  # noqa: E402

from trivd_core import generate, get_config  # noqa: E402
from trivd_core.data import Loader, make_dataset  # noqa: E402
from trivd_core.train import TrainOptions, load_checkpoint, train  # noqa: E402

pytestmark = pytest.mark.slow

CFG = get_config("tiny", t_cond=1, t_pred=2, K=2, g_ch=2, d_ch=2, batch_size=4, decomposition="faster")


@pytest.fixture(scope="module")
def engine():
    import backends

    return backends.load("jax").engine(CFG, devices=1)


def _loader(seed, nan_at=None):
    ds = make_dataset("synthetic", resolution=CFG.resolution, t=CFG.t_total, channels=3, seed=seed, length=64)
    loader = Loader(ds, CFG.batch_size, seed=seed, workers=0)
    if nan_at is not None:  # the nan_at-th batch (1-based) holds a NaN pixel
        inner, count = loader.next_batch, [0]

        def next_batch():
            b = inner()
            count[0] += 1
            if count[0] == nan_at:
                b = b.copy()
                b[0, 0, 0, 0, 0] = np.nan
            return b

        loader.next_batch = next_batch
    return loader


def _run(engine, run_dir, steps, *, resume=False, nan_at=None):
    opts = TrainOptions(run_dir=run_dir, steps=steps, seed=5, log_every=1, sample_every=100, ckpt_every=1, keep=2,
                        n_samples=2, progress=False)
    with _loader(5, nan_at) as loader:
        return train(engine, CFG, loader, opts, resume=resume, log=lambda m: None)


def test_resume_is_bit_exact(engine, tmp_path):
    n = 2
    assert _run(engine, tmp_path / "full", 2 * n).step == 2 * n
    assert _run(engine, tmp_path / "split", n).step == n
    assert _run(engine, tmp_path / "split", 2 * n, resume=True).step == 2 * n
    a = flat(load_checkpoint(tmp_path / "full" / "checkpoints")[0])
    b = flat(load_checkpoint(tmp_path / "split" / "checkpoints")[0])
    assert set(a) == set(b) and len(a) > 100
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k  # exact, every array
    assert int(a["/step"]) == 2 * n and int(a["/opt_g/count"]) == 2 * n and int(a["/opt_d/count"]) == 2 * n * CFG.d_steps


def test_export_is_a_numpy_tree_the_numpy_core_runs(engine, tmp_path):
    _run(engine, tmp_path / "r", 1)
    tree, meta = load_checkpoint(tmp_path / "r" / "checkpoints")
    assert meta["backend"] == "jax"
    leaves = flat(tree)
    assert all(isinstance(v, np.ndarray) for v in leaves.values())
    assert {v.dtype for v in leaves.values()} <= {np.dtype(np.float32), np.dtype(np.int64)}
    assert set(tree["opt_g"]) == {"mu", "nu", "count"}
    # the NumPy core runs the checkpoint's G; the engine restored from it agrees (float32, eval mode; the gate's
    # 1e-3 bound, observed ~1e-5)
    rng = np.random.default_rng(0)
    cond = rng.uniform(-1, 1, (2, CFG.t_cond, 32, 32, 3)).astype(np.float32)
    z = rng.standard_normal((2, CFG.z_dim)).astype(np.float32)
    expected, _ = generate(tree["ema"], tree["g_state"], cond, z, train=False)
    got = engine.predict(engine.restore(tree), cond, z, ema=True)
    assert np.max(np.abs(got - expected)) < 1e-3
    # restore(export) is the identity
    again = flat(engine.export(engine.restore(tree)))
    for k, v in leaves.items():
        assert np.array_equal(again[k], v) and again[k].dtype == v.dtype, k


def test_nan_stops_and_keeps_the_last_good_checkpoint(engine, tmp_path):
    # batches 1-2 feed step 1, 3-4 step 2, 5-6 step 3: a NaN in batch 5 poisons step 3
    res = _run(engine, tmp_path / "nan", 5, nan_at=5)
    assert res.status == "nonfinite" and res.exit_code == 3 and res.step == 2
    assert "non-finite loss at step 3: d_loss = nan" in res.message
    assert "step_00000002.json" in res.message
    tree, meta = load_checkpoint(tmp_path / "nan" / "checkpoints")
    assert meta["step"] == 2
    assert all(np.isfinite(v).all() for v in flat(tree).values() if v.dtype.kind == "f")
    engine.restore(tree)  # loadable into the engine


SHARDED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jax
    import backends
    from trivd_core import get_config
    from trivd_core.data import Loader, make_dataset
    from trivd_core.train import InputSampler, loop_rng
    from trivd_core.tree import tree_paths
    cfg = get_config("tiny", t_cond=1, t_pred=2, K=2, g_ch=2, d_ch=2, batch_size=8, decomposition="faster")
    be = backends.load("jax")
    assert len(jax.local_devices()) == 4
    ds = make_dataset("synthetic", resolution=32, t=cfg.t_total, channels=3, seed=0, length=32)
    with Loader(ds, 8, seed=0, workers=0) as loader:
        inputs = InputSampler(cfg, loader, loop_rng(0)).draw()
    out = {}
    for n in (1, 4):
        eng = be.engine(cfg, devices=n)
        sharded = eng._shard_inputs(inputs)["real"]
        shards = sorted((s.device.id, s.data.shape) for s in sharded.addressable_shards)
        ts, metrics = eng.step(eng.init(0), inputs)
        tree = eng.export(ts)
        np.savez(sys.argv[1] + f"/n{n}.npz", **{"/" + "/".join(p): np.asarray(v) for p, v in tree_paths(tree)})
        out[n] = {"metrics": metrics, "shards": [[i, list(s)] for i, s in shards],
                  "devices": eng.devices}
    json.dump(out, open(sys.argv[1] + "/out.json", "w"))
""")


def test_four_devices_equal_one_device(tmp_path):
    """One training step on 4 virtual devices equals the step on 1 device.

    Tolerances.  The losses of the first D update differ only by the order of float32
    sums (batch norm and hinge means over the sharded batch become partial sums plus an
    all-reduce): relative 1e-4 (observed ~1e-6).  The parameters after the step: Adam's
    first update with beta1 = 0 is ``lr * g / (|g| + eps)``, i.e. ``+-lr`` for every
    weight whose gradient is not ~0, so a reassociation changes a weight only where its
    gradient is so close to 0 that its sign (or its size relative to eps = 1e-8) flips:
    every element must agree within ``2 * max(lr_g, lr_d) + 1e-5`` (a bound that holds
    by construction of Adam) and at least 99 % of all elements within 1e-5 (this is the
    check that fails on any real partitioning bug).
    """
    script = tmp_path / "sharded.py"
    script.write_text(SHARDED)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    out = json.loads((tmp_path / "out.json").read_text())
    assert len(out["4"]["devices"]) == 4 and len(out["1"]["devices"]) == 1
    # the batch (axis 1 of the stacked real batches, B = 8) really is split: 4 shards of 2 samples on 4 devices
    assert [s[0] for s in out["4"]["shards"]] == [0, 1, 2, 3]
    assert all(s[1] == [2, 2, CFG.t_total, 32, 32, 3] for s in out["4"]["shards"])
    m1, m4 = out["1"]["metrics"], out["4"]["metrics"]
    assert set(m1) == set(m4)
    for k in m1:
        assert abs(m1[k] - m4[k]) <= 1e-4 * (1 + abs(m1[k])), (k, m1[k], m4[k])
    a, b = np.load(tmp_path / "n1.npz"), np.load(tmp_path / "n4.npz")
    bound = 2 * max(CFG.lr_g, CFG.lr_d) + 1e-5
    total = close = 0
    for k in a.files:
        d = np.abs(a[k].astype(np.float64) - b[k].astype(np.float64))
        assert d.size == 0 or d.max() <= bound, (k, d.max())
        total += d.size
        close += int((d <= 1e-5).sum())
    assert close >= 0.99 * total, (close, total)


# ---------------------------------------------------------------------------- XLA:CPU optimisation of the step


def test_train_opt_argument_environment_and_errors(monkeypatch):
    from backends.jax import engine as jax_engine

    monkeypatch.delenv("TRIVD_JAX_TRAIN_OPT", raising=False)
    assert jax_engine.JaxEngine(CFG, devices=1).train_opt == "fast-compile"
    assert jax_engine.JaxEngine(CFG, devices=1, train_opt="full").train_opt == "full"
    monkeypatch.setenv("TRIVD_JAX_TRAIN_OPT", "full")
    assert jax_engine.JaxEngine(CFG, devices=1).train_opt == "full"
    assert jax_engine.JaxEngine(CFG, devices=1, train_opt="fast-compile").train_opt == "fast-compile"  # argument wins
    with pytest.raises(ValueError, match=r"argument 'train_opt' must be 'fast-compile' or 'full', got 'O3'"):
        jax_engine.JaxEngine(CFG, devices=1, train_opt="O3")
    monkeypatch.setenv("TRIVD_JAX_TRAIN_OPT", "fast")
    with pytest.raises(ValueError, match=r"TRIVD_JAX_TRAIN_OPT must be 'fast-compile' or 'full', got 'fast'"):
        jax_engine.JaxEngine(CFG, devices=1)
    # on the CPU only fast-compile changes XLA's options
    assert jax_engine._compiler_options("full") is None
    assert jax_engine._compiler_options("fast-compile") == {"xla_backend_optimization_level": 0,
                                                            "xla_llvm_disable_expensive_passes": True}


@pytest.mark.parametrize("steps,env,expected", [(119, None, "fast-compile"), (120, None, "full"),
                                                (40, "full", "full"), (500, "fast-compile", "fast-compile")])
def test_cli_picks_the_step_optimisation_from_the_run_length(monkeypatch, tmp_path, capsys, steps, env, expected):
    from backends.jax import engine as jax_engine
    from trivd import cli

    seen = {}

    class FakeEngine:
        def __init__(self, config, **kw):
            seen.update(kw)
            raise ValueError("engine construction stopped by the test")

    monkeypatch.setattr(jax_engine, "JaxEngine", FakeEngine)
    monkeypatch.setenv("TRIVD_JAX_CACHE", "0")
    if env is None:
        monkeypatch.delenv("TRIVD_JAX_TRAIN_OPT", raising=False)
    else:
        monkeypatch.setenv("TRIVD_JAX_TRAIN_OPT", env)
    rc = cli.main(["train", "--backend", "jax", "--steps", str(steps), "--run-dir", str(tmp_path / "run")])
    assert rc == 2 and "stopped by the test" in capsys.readouterr().err
    assert seen["train_opt"] == expected
    assert jax_engine.FULL_OPT_MIN_STEPS == 120


def test_a_resumed_jax_run_keeps_its_compile_option(monkeypatch):
    """The two XLA optimisation levels round differently: a resume that switched would not be bit-exact."""
    from backends.jax.engine import FULL_OPT_MIN_STEPS, train_opt_for

    monkeypatch.delenv("TRIVD_JAX_TRAIN_OPT", raising=False)
    assert train_opt_for(FULL_OPT_MIN_STEPS - 1) == "fast-compile"
    assert train_opt_for(FULL_OPT_MIN_STEPS) == "full"
    assert train_opt_for(None) == "fast-compile"  # eval/predict build engines without a run length
    # a run started with 40 steps and resumed to 400 keeps fast-compile (and the reverse)
    assert train_opt_for(400, {"jax_train_opt": "fast-compile"}) == "fast-compile"
    assert train_opt_for(10, {"jax_train_opt": "full"}) == "full"
    monkeypatch.setenv("TRIVD_JAX_TRAIN_OPT", "full")
    assert train_opt_for(10, {"jax_train_opt": "fast-compile"}) == "full"  # the user's explicit choice wins
