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
    cfg = get_config("tiny", t_cond=1, t_pred=2, K=2, g_ch=2, d_ch=2, batch_size=8, decomposition="faster",
                     adam_eps=1.0)
    be = backends.load("jax")
    assert len(jax.local_devices()) == 4
    ds = make_dataset("synthetic", resolution=32, t=cfg.t_total, channels=3, seed=0, length=32)
    with Loader(ds, 8, seed=0, workers=0) as loader:
        inputs = InputSampler(cfg, loader, loop_rng(0)).draw()
    np.savez(sys.argv[1] + "/inputs.npz", **{"/" + "/".join(p): np.asarray(v) for p, v in tree_paths(inputs)})
    out = {}
    for n in (1, 4):
        eng = be.engine(cfg, devices=n)
        sharded = eng._shard_inputs(inputs)["real"]
        shards = sorted((s.device.id, s.data.shape) for s in sharded.addressable_shards)
        ts, metrics = eng.step(eng.init(0), inputs)
        metrics = {k: float(v) for k, v in metrics.items()}  # one process: 0-d device arrays until read
        tree = eng.export(ts)
        np.savez(sys.argv[1] + f"/n{n}.npz", **{"/" + "/".join(p): np.asarray(v) for p, v in tree_paths(tree)})
        out[n] = {"metrics": metrics, "shards": [[i, list(s)] for i, s in shards],
                  "devices": eng.devices}
    json.dump(out, open(sys.argv[1] + "/out.json", "w"))
""")


@pytest.fixture(scope="module")
def one_process_steps(tmp_path_factory):
    """One training step of the reduced config (batch 8, ``adam_eps = 1``) on 1 and on 4 devices of one process."""
    out_dir = tmp_path_factory.mktemp("one_process")
    script = out_dir / "sharded.py"
    script.write_text(SHARDED)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(script), str(out_dir)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out_dir


def test_four_devices_equal_one_device(one_process_steps):
    """One training step on 4 virtual devices equals the step on 1 device.

    The losses and weights differ only by the order of float32 sums (batch norm and the
    hinge means over the sharded batch become partial sums plus an all-reduce).  The step
    runs with ``adam_eps = 1`` so that Adam does not turn near-zero gradients into +-lr
    (the reason and the bounds: tests/test_job_torch.py; ``assert_job_equals_one_process``).
    """
    from _test_helpers import JOB_METRIC_RTOL, assert_job_equals_one_process

    tmp_path = one_process_steps
    import json

    out = json.loads((tmp_path / "out.json").read_text())
    assert len(out["4"]["devices"]) == 4 and len(out["1"]["devices"]) == 1
    # the batch (axis 1 of the stacked real batches, B = 8) really is split: 4 shards of 2 samples on 4 devices
    assert [s[0] for s in out["4"]["shards"]] == [0, 1, 2, 3]
    assert all(s[1] == [2, 2, CFG.t_total, 32, 32, 3] for s in out["4"]["shards"])
    m1, m4 = out["1"]["metrics"], out["4"]["metrics"]
    assert set(m1) == set(m4)
    for k in m1:
        assert abs(m1[k] - m4[k]) <= JOB_METRIC_RTOL * (1 + abs(m1[k])), (k, m1[k], m4[k])
    assert_job_equals_one_process(_unflat(np.load(tmp_path / "n1.npz")), _unflat(np.load(tmp_path / "n4.npz")))


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


def test_a_wide_config_compiles_fully_whatever_the_run_length(monkeypatch):
    """At the paper's widths fast-compile's slower step outweighs its shorter compile from the first step."""
    from backends.jax.engine import FULL_OPT_MIN_WIDTH, train_opt_for
    from trivd_core import get_config

    monkeypatch.delenv("TRIVD_JAX_TRAIN_OPT", raising=False)
    assert FULL_OPT_MIN_WIDTH == 16
    assert train_opt_for(10, None, get_config("paper_medium")) == "full"
    assert train_opt_for(None, None, get_config("tiny", g_ch=4, d_ch=16)) == "full"
    assert train_opt_for(10, None, get_config("tiny")) == "fast-compile"
    assert train_opt_for(10, {"jax_train_opt": "fast-compile"}, get_config("paper_medium")) == "fast-compile"


# ---------------------------------------------------------------------------- a job of two processes (jax.distributed)

JOB = textwrap.dedent("""
    import json, shutil, sys
    from pathlib import Path
    import numpy as np
    out, pid, n, port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    import backends
    be = backends.load("jax")
    assert be.join_job(f"127.0.0.1:{port}", n, pid, timeout=120) == (pid, n)
    import jax
    from trivd_core import get_config
    from trivd_core.data import Loader, make_dataset
    from trivd_core.train import InputSampler, TrainOptions, loop_rng, train
    from trivd_core.tree import tree_paths
    cfg = get_config("tiny", t_cond=1, t_pred=2, K=2, g_ch=2, d_ch=2, batch_size=8, decomposition="faster",
                     adam_eps=1.0)
    eng = be.engine(cfg)
    ds = make_dataset("synthetic", resolution=32, t=cfg.t_total, channels=3, seed=0, length=32)

    def save(path, tree):
        np.savez(path, **{"/" + "/".join(p): np.asarray(v) for p, v in tree_paths(tree)})

    # one step on this process's rows of the global batch
    with Loader(ds, 8, seed=0, workers=0, shard=(pid, n)) as loader:
        inputs = InputSampler(cfg, loader, loop_rng(0)).draw()
    save(out / f"inputs_{pid}.npz", inputs)
    ts, metrics = eng.step(eng.init(0), inputs)
    if pid == 0:
        save(out / "job.npz", eng.export(ts))
        json.dump({"metrics": metrics, "devices": eng.devices, "local": len(jax.local_devices())},
                  open(out / "job.json", "w"))

    # the job through the loop: 2 steps, then a copy without its step-2 checkpoint resumed (the compiled step is reused)
    def run(name, resume):
        with Loader(ds, 8, seed=5, workers=0, shard=(pid, n)) as loader:
            opts = TrainOptions(run_dir=out / name, steps=2, seed=5, log_every=1, sample_every=100, ckpt_every=1,
                                keep=3, n_samples=2, progress=False)
            return train(eng, cfg, loader, opts, resume=resume, log=lambda m: None).status
    full = run("full", False)
    if pid == 0:
        shutil.copytree(out / "full", out / "split")
        for f in (out / "split" / "checkpoints").glob("step_00000002.*"):
            f.unlink()
    eng.barrier("copied")
    json.dump({"full": full, "split": run("split", True)}, open(out / f"loop_{pid}.json", "w"))
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unflat(npz):
    tree: dict = {}
    for key in npz.files:
        *path, leaf = key.strip("/").split("/")
        node = tree
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = npz[key]
    return tree


def test_two_processes_of_two_devices_equal_one_process_of_four(one_process_steps, tmp_path):
    """``2 processes x 2 devices`` (jax.distributed on 127.0.0.1, gloo) against ``1 process x 4 devices``.

    The reduced config above at batch 8 with ``adam_eps = 1``, for the reason and the bounds
    derived in tests/test_job_torch.py (with the default eps a reassociation that flips a
    near-zero gradient's sign moves that weight by 2 lr); the one-process step is the 4-device
    step of ``one_process_steps``.  The job's inputs are exactly the one process's rows; one
    step of the job equals the one-process step within those bounds;
    then, in the same two processes, a 2-step run through the loop and its resume from the
    step-1 checkpoint agree bit for bit.
    """
    from _test_helpers import JOB_METRIC_RTOL, assert_job_equals_one_process

    script = tmp_path / "job.py"
    script.write_text(JOB)
    port = str(_free_port())
    env2 = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "TRIVD_JAX_CACHE": str(tmp_path / "cache")}
    logs = [tmp_path / f"process{p}.log" for p in (0, 1)]  # files, not pipes: a full pipe would stall a process
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(p), "2", port], env=env2,
                              stdout=log.open("w"), stderr=subprocess.STDOUT) for p, log in zip((0, 1), logs)]
    for p, log in zip(procs, logs):
        assert p.wait(timeout=900) == 0, log.read_text()[-3000:]
    import json

    one = one_process_steps
    m4 = json.loads((one / "out.json").read_text())["4"]["metrics"]
    info = json.loads((tmp_path / "job.json").read_text())
    assert len(info["devices"]) == 4 and info["local"] == 2
    assert sum("process 1" in d for d in info["devices"]) == 2  # the mesh spans both processes
    # the job's inputs: process 0's rows then process 1's are the one-process inputs, exactly
    whole = np.load(one / "inputs.npz")
    parts = [np.load(tmp_path / f"inputs_{p}.npz") for p in (0, 1)]
    for key in whole.files:
        axis = 1 if key.split("/")[1] in ("real", "z_d", "rand_d") else 0
        assert np.array_equal(np.concatenate([q[key] for q in parts], axis=axis), whole[key]), key
    m2 = info["metrics"]
    assert set(m4) == set(m2)
    for k in m4:
        assert abs(m4[k] - m2[k]) <= JOB_METRIC_RTOL * (1 + abs(m4[k])), (k, m4[k], m2[k])
    assert_job_equals_one_process(_unflat(np.load(one / "n4.npz")), _unflat(np.load(tmp_path / "job.npz")))
    # resume on two processes: bit for bit
    for p in (0, 1):
        assert json.loads((tmp_path / f"loop_{p}.json").read_text()) == {"full": "done", "split": "done"}
    a = flat(load_checkpoint(tmp_path / "full" / "checkpoints" / "step_00000002.json")[0])
    b = flat(load_checkpoint(tmp_path / "split" / "checkpoints" / "step_00000002.json")[0])
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    assert json.loads((tmp_path / "full" / "config.json").read_text())["processes"] == 2


LOSE = textwrap.dedent("""
    import os, sys, time
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    import backends
    from backends.jax import distributed
    from trivd_core.train import ProcessLost
    backends.load("jax").join_job(f"127.0.0.1:{port}", 2, pid, timeout=60)
    assert distributed.agree(pid + 1) == 2
    if pid == 1:
        os._exit(9)  # dies without a word
    t0 = time.monotonic()
    try:
        distributed.agree(0)
    except ProcessLost as exc:
        print(f"lost after {time.monotonic() - t0:.1f} s: {exc}", flush=True)
        os._exit(6)
    os._exit(0)
""")


def test_a_lost_jax_process_raises_process_lost_instead_of_hanging(tmp_path):
    script = tmp_path / "lose.py"
    script.write_text(LOSE)
    port = str(_free_port())
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    logs = [tmp_path / f"process{p}.log" for p in (0, 1)]
    procs = [subprocess.Popen([sys.executable, str(script), str(p), port], env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT) for p, log in zip((0, 1), logs)]
    assert procs[1].wait(timeout=120) == 9
    assert procs[0].wait(timeout=120) == 6, logs[0].read_text()[-3000:]
    out = logs[0].read_text()
    assert "another process of the job stopped answering" in out
    assert float(out.split("lost after ")[1].split(" s")[0]) < 30  # the closed connection, not a timeout


# The collective failures the runtime raised when a peer was SIGKILLed (experiments/jax_liveness.py and a
# `trivd train` job), and errors of a healthy job that share their status words.
_PEER_GONE = [
    "UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/pair.cc:547] Connection closed by peer "
    "[127.0.0.1]:26517",
    "INTERNAL: Error dispatching computation: Error dispatching computation: Gloo all-reduce failed: "
    "[external/gloo/gloo/transport/tcp/pair.cc:538] Read error [127.0.0.1]:40084: Connection reset by peer",
    "UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):\n1",
]
_OWN = [
    "DEADLINE_EXCEEDED: the device did not finish the program in time",
    "UNAVAILABLE: TPU chip halted; Connection reset by peer of the host's storage",
    "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 2147483648 bytes",
    "INTERNAL: Failed to launch the kernel (gloo)",
]


def test_a_runtime_error_is_a_lost_peer_only_when_it_reports_a_failed_collective():
    import jax

    from backends.jax.distributed import peer_failed

    for message in _PEER_GONE:
        assert peer_failed(jax.errors.JaxRuntimeError(message)) and peer_failed(ValueError(message)), message
        assert not peer_failed(TypeError(message)), message  # tracing errors never are
    for message in _OWN:
        assert not peer_failed(jax.errors.JaxRuntimeError(message)), message


_INJECT_DEVICE_ERROR = """
import sys
import jax
from backends.jax.engine import JaxEngine
from trivd.cli import main
def step(self, ts, inputs):  # the device fails the first step on every process; every peer stays alive
    raise jax.errors.JaxRuntimeError("DEADLINE_EXCEEDED: the device did not finish the program (injected by the test)")
JaxEngine._step = step
sys.exit(main(sys.argv[1:]))
"""


def test_a_device_error_in_every_process_of_a_jax_job_is_itself_not_a_lost_process(tmp_path):
    """A runtime error whose status words the old classifier read as a lost peer ("DEADLINE_EXCEEDED"), raised by
    the step of both processes of a 2-process `trivd train` job: exit 1 in both, that message and a traceback in
    both logs, no "stopped answering"."""

    script = tmp_path / "job.py"
    script.write_text(_INJECT_DEVICE_ERROR)
    port = str(_free_port())
    run = tmp_path / "run"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.getcwd(), "TRIVD_JAX_CACHE": str(tmp_path / "c")}
    argv = ["train", "--backend", "jax", "--config", "tiny", "--data", "synthetic", "--steps", "3", "--run-dir",
            str(run), "--eval-every", "0", "--skip-conformance", "--no-progress", "--threads", "1",
            "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--collective-timeout", "60"]
    logs = [tmp_path / f"process{p}.log" for p in (0, 1)]
    procs = [subprocess.Popen([sys.executable, str(script), *argv, "--process-id", str(p)], env=env,
                              stdout=log.open("w"), stderr=subprocess.STDOUT) for p, log in zip((0, 1), logs)]
    try:
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (code, log) in enumerate(zip(codes, logs)):
        text = log.read_text()
        assert code == 1, (p, code, text[-3000:])
        assert "the device did not finish the program (injected by the test)" in text, (p, text[-3000:])
        assert "Traceback" in text and "stopped answering" not in text, (p, text[-3000:])
    assert not run.exists()  # no step completed: the new run directory is removed, not left as a trap
