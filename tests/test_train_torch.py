"""The PyTorch training engine: Adam, resume bit-exactness, JAX <-> torch.

What is checked, and why the tolerances are what they are:

* **Adam** (``TorchEngine._adam``) against ``torch.optim.Adam`` (an independent
  implementation with the state names of the neutral export: ``exp_avg`` = ``mu``,
  ``exp_avg_sq`` = ``nu``, ``step`` = ``count``) and against the optax formula in
  float64 NumPy, with ``beta1 = 0.9`` so that the first moment is visible.  The three
  evaluate the same expression in different orders; after 3 updates each float32
  result is within a few roundings of the exact value: ``8 u (|p| + lr)`` with ``u =
  2^-24`` bounds parameters (|update| <= lr / (1 - beta1^t) ... <= 4 lr here) and
  ``8 u |m|`` the moments.
* **Resume** is bit-exact: 2N steps in one go equal N steps, a checkpoint written to
  disk with the shared loop's ``save_checkpoint`` (``.npz`` + ``.json``), a fresh
  engine restored from ``load_checkpoint``, and N more steps (CPU float32 kernels are
  deterministic for fixed shapes and thread count).  ``ema_start=1`` so that the EMA
  averages (not only copies) during the test.
* **JAX <-> torch** (needs both frameworks; ``slow``: the JAX step compiles for
  minutes on 2 cores): from identical initial weights and identical inputs one step
  of each engine agrees (test c), and a state exported by one engine restores into
  the other and one more step on both agrees (test b, both directions).  The
  engines compute the same float32 expressions in different orders (XLA vs oneDNN
  convolutions and reductions), so results differ by accumulated rounding:

  - *Gradients* (exported ``mu``; ``beta1 = 0`` makes ``mu`` the last gradient).
    An entry is a sum over up to ``n = B*T*H*W ~ 2.5e4`` products per layer, over
    ~10 layers; with random-walk rounding (~ sqrt(n) u ~ 1e-5 per reduction) and a
    10x allowance for depth we use ``rtol = 1e-4`` of the leaf's largest entry.
    Gradients that vanish mathematically (a bias before a batch norm, a uniform
    score shift while every hinge is active) are pure cancellation noise of size
    ~ u * (sum of the magnitudes of the cancelling terms); for those the floor is
    ``1e-3`` of the RMS of the network's gradient (the scale of those terms).
    Measured: <= 1.1e-5 of the leaf maximum and <= 2.3e-5 of the RMS.
  - *Adam's eps.* With the paper's ``eps = 1e-8``, Adam turns cancellation noise of
    ~1e-9 into a step of size ~lr in a random direction, so after one update the two
    engines' weights differ by O(lr) in those entries, and everything downstream by
    O(lr) relative - the comparison would be ill-conditioned by construction.  The
    comparison config therefore uses ``adam_eps = 1e-3`` (>> the noise, << typical
    gradients ~1e-2): then a gradient error ``dg`` moves a weight by at most
    ``lr * dg / eps`` per update, and the weight tolerance is
    ``d_steps * lr * tol_g / eps + 4 u |p|`` (D: d_steps updates, G: one).
  - *Spectral-norm vectors, losses, scores*: forward values through ~10 layers,
    ``rtol = 1e-4`` (same reduction argument) of the leaf's largest entry, resp.
    ``1e-4 * max(1, |value|)`` for the 0-d metrics.
  - ``nu`` is checked through each engine's own consistency ``nu = b2 nu_old + (1 -
    b2) g^2`` (float32 rounding) plus the gradient comparison; the EMA equals G's
    weights bit for bit before ``ema_start``.
  - *The checks can fail*: the same comparison applied to the torch results with a
    1e-3 relative error injected into one gradient leaf must report a mismatch.

Wall time on the 2-core development machine (shared, loaded): Adam/API tests a few
seconds; resume ~30-60 s; JAX <-> torch several minutes (JAX compile), both ``slow``.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import copy  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch", reason="the torch engine needs torch")

from _test_helpers import flat  # noqa: E402

import backends  # noqa: E402
from backends.torch.engine import EXPORT_KEYS, TorchEngine  # noqa: E402
from trivd_core.configs import get_config  # noqa: E402
from trivd_core.discriminator import sample_randomness  # noqa: E402
from trivd_core.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

U32 = 2.0**-24


def make_inputs(cfg, rng: np.random.Generator, batch: int) -> dict:
    """One step's inputs, drawn the way the shared loop draws them (real clips: uniform noise in [-1, 1])."""
    r = cfg.resolution
    real = rng.uniform(-1, 1, (cfg.d_steps, batch, cfg.t_total, r, r, cfg.channels)).astype(np.float32)
    rand_d = [sample_randomness(cfg, rng, batch) for _ in range(cfg.d_steps)]
    return {
        "real": real,
        "z_d": rng.standard_normal((cfg.d_steps, batch, cfg.z_dim)).astype(np.float32),
        "z_g": rng.standard_normal((batch, cfg.z_dim)).astype(np.float32),
        "rand_d": {k: np.stack([d[k] for d in rand_d]) for k in rand_d[0]},
        "rand_g": sample_randomness(cfg, rng, batch),
    }


def assert_bitwise(a, b, what):
    fa, fb = flat(a), flat(b)
    assert fa.keys() == fb.keys(), f"{what}: layouts differ: {sorted(set(fa) ^ set(fb))[:5]}"
    for k in fa:
        assert fa[k].dtype == fb[k].dtype and fa[k].shape == fb[k].shape, (what, k, fa[k].dtype, fb[k].dtype)
        assert np.array_equal(fa[k], fb[k]), f"{what}: {k} differs (max {np.max(np.abs(fa[k] - fb[k]))})"


@pytest.fixture(scope="module")
def torch_backend():
    return backends.load("torch").on("cpu")


# ---------------------------------------------------------------------------
# Adam


def test_adam_matches_torch_optim_and_numpy(torch_backend):
    cfg = get_config("tiny", beta1=0.9, beta2=0.99, adam_eps=1e-6)
    eng = TorchEngine(cfg, backend=torch_backend)
    rng = np.random.default_rng(5)
    p0 = {"a": {"w": rng.standard_normal((3, 4)).astype(np.float32)}, "b": rng.standard_normal(5).astype(np.float32)}
    grads = [{"a": {"w": rng.standard_normal((3, 4)).astype(np.float32) * 10.0 ** -i},
              "b": rng.standard_normal(5).astype(np.float32)} for i in range(3)]
    lr = 0.01

    params = {"a": {"w": torch.tensor(p0["a"]["w"], requires_grad=True)}, "b": torch.tensor(p0["b"],
                                                                                             requires_grad=True)}
    opt = {"mu": {"a": {"w": torch.zeros(3, 4)}, "b": torch.zeros(5)},
           "nu": {"a": {"w": torch.zeros(3, 4)}, "b": torch.zeros(5)}, "count": 0}
    before = params["b"].detach().clone()
    for g in grads:
        params, opt = eng._adam(params, {"a": {"w": torch.tensor(g["a"]["w"])}, "b": torch.tensor(g["b"])}, opt, lr)
    assert opt["count"] == 3 and params["b"].requires_grad
    assert torch.equal(before, torch.tensor(p0["b"])), "the update must not modify its input in place"

    # torch.optim.Adam on the same parameters and gradients
    ref = [torch.tensor(p0["a"]["w"], requires_grad=True), torch.tensor(p0["b"], requires_grad=True)]
    topt = torch.optim.Adam(ref, lr=lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps, foreach=False)
    for g in grads:
        ref[0].grad, ref[1].grad = torch.tensor(g["a"]["w"]), torch.tensor(g["b"])
        topt.step()

    # optax's formula in float64
    m = {k: np.zeros(v.shape) for k, v in (("w", p0["a"]["w"]), ("b", p0["b"]))}
    v = {k: np.zeros(x.shape) for k, x in m.items()}
    p = {"w": p0["a"]["w"].astype(np.float64), "b": p0["b"].astype(np.float64)}
    for t, g in enumerate(grads, 1):
        for k, gk in (("w", g["a"]["w"]), ("b", g["b"])):
            m[k] = (1 - cfg.beta1) * gk + cfg.beta1 * m[k]
            v[k] = (1 - cfg.beta2) * gk.astype(np.float64) ** 2 + cfg.beta2 * v[k]
            p[k] = p[k] - lr * (m[k] / (1 - cfg.beta1**t)) / (np.sqrt(v[k] / (1 - cfg.beta2**t)) + cfg.adam_eps)

    ours = {"w": (params["a"]["w"], opt["mu"]["a"]["w"], opt["nu"]["a"]["w"]),
            "b": (params["b"], opt["mu"]["b"], opt["nu"]["b"])}
    for i, k in enumerate(("w", "b")):
        state = topt.state[ref[i]]
        assert int(state["step"]) == opt["count"]
        pk, mk, vk = (x.detach().numpy().astype(np.float64) for x in ours[k])
        for name, exp in (("torch.optim.Adam", (ref[i].detach().numpy(), state["exp_avg"].numpy(),
                                                 state["exp_avg_sq"].numpy())), ("numpy", (p[k], m[k], v[k]))):
            pe, me, ve = (np.asarray(x, np.float64) for x in exp)
            np.testing.assert_array_less(np.abs(pk - pe), 8 * U32 * (np.abs(pe) + 4 * lr), err_msg=f"{k} vs {name}")
            np.testing.assert_array_less(np.abs(mk - me), 8 * U32 * np.abs(me) + 1e-30, err_msg=f"{k} mu vs {name}")
            np.testing.assert_array_less(np.abs(vk - ve), 8 * U32 * np.abs(ve) + 1e-30, err_msg=f"{k} nu vs {name}")
        start = p0["a"]["w"] if k == "w" else p0["b"]
        assert np.max(np.abs(pk - start)) > lr  # three updates moved the weights


# ---------------------------------------------------------------------------
# engine API


def test_engine_errors_and_export_format(torch_backend):
    cfg = get_config("tiny")
    with pytest.raises(ValueError, match="'devices'"):
        torch_backend.engine(cfg, devices=["cpu", "cpu"])
    with pytest.raises(TypeError, match="'config'"):
        TorchEngine(3)
    eng = torch_backend.engine("tiny", devices=["cpu"])
    assert eng.name == "torch" and eng.devices == ["cpu"]
    ts = eng.init(0)
    tree = eng.export(ts)
    assert tuple(tree) == EXPORT_KEYS
    assert tree["step"].dtype == np.int64 and tree["step"].shape == () and int(tree["step"]) == 0
    for opt in ("opt_g", "opt_d"):
        assert set(tree[opt]) == {"mu", "nu", "count"}
        assert tree[opt]["count"].dtype == np.int64 and tree[opt]["count"].shape == ()
        params = tree["g_params" if opt == "opt_g" else "d_params"]
        assert {k: v.shape for k, v in flat(tree[opt]["mu"]).items()} == {k: v.shape for k, v in flat(params).items()}
        assert all(not v.any() for v in flat(tree[opt]["nu"]).values())
    assert all(v.dtype == np.float32 for k, v in flat(tree).items() if "count" not in k and k != "/step")
    assert_bitwise(tree["ema"], tree["g_params"], "EMA at init")
    assert_bitwise(eng.export(eng.restore(tree)), tree, "restore(export(ts))")
    # the initial weights are trivd_core's, drawn from default_rng(seed)
    from trivd_core.generator import init_generator

    g_params, _ = init_generator(cfg, np.random.default_rng(0))
    assert_bitwise(tree["g_params"], g_params, "init weights")

    bad = dict(tree, d_params={k: v for k, v in tree["d_params"].items() if k != "dV"})
    with pytest.raises(ValueError, match="'tree' at d_params"):
        eng.restore(bad)
    wrong = get_config("tiny", g_ch=8)
    with pytest.raises(ValueError, match="'tree' at g_params"):
        TorchEngine(wrong, backend=torch_backend).restore(tree)
    with pytest.raises(ValueError, match="inputs\\['real'\\]"):
        eng.step(ts, dict(make_inputs(cfg, np.random.default_rng(0), 2), real=np.zeros((1, 2, 5, 32, 32, 3))))
    with pytest.raises(ValueError, match="'cond_frames'"):
        eng.predict(ts, np.zeros((2, 3, 32, 32, 3), np.float32), np.zeros((2, cfg.z_dim), np.float32))
    frames = eng.predict(ts, np.zeros((2, cfg.t_cond, 32, 32, 3), np.float32), np.ones((2, cfg.z_dim), np.float32))
    assert frames.shape == (2, cfg.t_pred, 32, 32, 3) and frames.dtype == np.float32
    assert np.all(np.abs(frames) <= 1) and np.isfinite(frames).all()


# ---------------------------------------------------------------------------
# resume


@pytest.mark.slow
def test_resume_is_bit_exact(torch_backend, tmp_path):
    """2N steps in one go == N steps, checkpoint, fresh engine, N steps (N = 2, ema_start = 1)."""
    cfg = get_config("tiny", ema_start=1)
    n, batch = 2, 4
    inputs = [make_inputs(cfg, np.random.default_rng(100 + i), batch) for i in range(2 * n)]
    eng = torch_backend.engine(cfg)
    ts = eng.init(7)
    for i in range(n):
        ts, _ = eng.step(ts, inputs[i])
    at_n = eng.export(ts)
    save_checkpoint(tmp_path, at_n, step=n, meta={"backend": "torch"})  # the shared loop's checkpoint writer

    straight = []
    for i in range(n, 2 * n):
        ts, m = eng.step(ts, inputs[i])
        straight.append(m)
    full = eng.export(ts)

    eng2 = torch_backend.engine(cfg)
    tree, meta = load_checkpoint(tmp_path)
    assert meta["step"] == n and meta["backend"] == "torch"
    ts2 = eng2.restore(tree)
    resumed = []
    for i in range(n, 2 * n):
        ts2, m = eng2.step(ts2, inputs[i])
        resumed.append(m)

    assert_bitwise(eng2.export(ts2), full, "resumed vs straight")
    assert resumed == straight
    assert int(full["step"]) == 2 * n and int(full["opt_d"]["count"]) == 2 * n * cfg.d_steps
    assert int(full["opt_g"]["count"]) == 2 * n
    # the steps did something: weights, SN vectors and the EMA moved, and the EMA averages (step > ema_start)
    for key in ("g_params", "d_params", "g_state", "d_state", "ema"):
        a, b = flat(at_n[key]), flat(full[key])
        assert any(not np.array_equal(a[k], b[k]) for k in a), key
    g, e = flat(full["g_params"]), flat(full["ema"])
    assert any(not np.array_equal(g[k], e[k]) for k in g)
    # the earlier training state was not modified by the later steps
    assert_bitwise(load_checkpoint(tmp_path)[0], at_n, "checkpoint")


# ---------------------------------------------------------------------------
# JAX <-> torch

HAVE_JAX = importlib.util.find_spec("jax") is not None and importlib.util.find_spec("optax") is not None
RTOL = 1e-4  # float32 forward values and gradients through ~10 layers (module docstring)
NOISE_FLOOR = 1e-3  # cancellation noise relative to the network's gradient RMS (module docstring)


def _state_close(a, b, what):
    """Leafwise |a - b| <= RTOL * max|b| (+ a tiny absolute floor for all-zero leaves); returns failures."""
    bad = []
    fa, fb = flat(a), flat(b)
    assert fa.keys() == fb.keys(), what
    for k in fa:
        x, y = fa[k].astype(np.float64), fb[k].astype(np.float64)
        assert x.shape == y.shape, (what, k)
        if x.size and np.max(np.abs(x - y)) > RTOL * np.max(np.abs(y)) + 1e-30:
            bad.append((what + k, float(np.max(np.abs(x - y))), float(np.max(np.abs(y)))))
    return bad


def _grad_tols(grads):
    """Per-leaf gradient tolerance: RTOL of the leaf maximum + NOISE_FLOOR of the network's RMS."""
    fg = flat(grads)
    every = np.concatenate([v.ravel().astype(np.float64) for v in fg.values()])
    rms = float(np.sqrt(np.mean(every**2)))
    return {k: RTOL * float(np.max(np.abs(v), initial=0.0)) + NOISE_FLOOR * rms for k, v in fg.items()}


def compare_steps(before, a, b, ma, mb, cfg):
    """Mismatches between two engines' results ``a``, ``b`` (exports) of one step from the export ``before``."""
    bad = []
    ma, mb = {k: float(v) for k, v in ma.items()}, {k: float(v) for k, v in mb.items()}  # JAX's are 0-d arrays
    for key in ma.keys() | mb.keys():
        if key not in ma or key not in mb:
            bad.append(("metric missing", key))
        elif abs(ma[key] - mb[key]) > RTOL * max(1.0, abs(mb[key])):
            bad.append(("metric " + key, ma[key], mb[key]))
    for key in ("g_state", "d_state"):
        bad += _state_close(a[key], b[key], key)
    for net, opt, lr, updates in (("g_params", "opt_g", cfg.lr_g, 1), ("d_params", "opt_d", cfg.lr_d, cfg.d_steps)):
        tol_g = _grad_tols(b[opt]["mu"])
        ga, gb = flat(a[opt]["mu"]), flat(b[opt]["mu"])
        pa, pb = flat(a[net]), flat(b[net])
        for k in gb:
            err = np.max(np.abs(ga[k].astype(np.float64) - gb[k]), initial=0.0)
            if err > tol_g[k]:
                bad.append((f"{opt}/mu{k}", float(err), tol_g[k]))
            p_tol = updates * lr * tol_g[k] / cfg.adam_eps + 4 * U32 * np.abs(pb[k].astype(np.float64))
            if np.any(np.abs(pa[k].astype(np.float64) - pb[k]) > p_tol):
                bad.append((f"{net}{k}", float(np.max(np.abs(pa[k].astype(np.float64) - pb[k])))))
        for name, tree in (("a", a), ("b", b)):
            # each engine's own second moment: nu = b2 nu_old + (1 - b2) g^2 for its last update (beta1 = 0: mu = g)
            if updates == 1:
                nu_old, g, nu = flat(before[opt]["nu"]), flat(tree[opt]["mu"]), flat(tree[opt]["nu"])
                for k in g:
                    exp = cfg.beta2 * nu_old[k].astype(np.float64) + (1 - cfg.beta2) * g[k].astype(np.float64) ** 2
                    if np.any(np.abs(nu[k] - exp) > 4 * U32 * exp + 1e-38):
                        bad.append((f"{name}: {opt}/nu{k} inconsistent with mu",))
            assert int(tree[opt]["count"]) == int(before[opt]["count"]) + updates
    for tree in (a, b):
        if int(tree["step"]) <= cfg.ema_start:
            assert_bitwise(tree["ema"], tree["g_params"], "EMA before ema_start")
    return bad


@pytest.fixture(scope="module")
def cross_runs(torch_backend):
    if not HAVE_JAX:
        pytest.skip("the JAX <-> torch checks need jax and optax installed beside torch")
    cfg = get_config("tiny", adam_eps=1e-3)
    jax_engine = backends.load("jax").engine(cfg, devices=1)
    torch_engine = torch_backend.engine(cfg)
    rng = np.random.default_rng(11)
    in1, in2 = make_inputs(cfg, rng, cfg.batch_size), make_inputs(cfg, rng, cfg.batch_size)
    runs = {"cfg": cfg}
    jt, tt = jax_engine.init(0), torch_engine.init(0)
    runs["init"] = (jax_engine.export(jt), torch_engine.export(tt))
    tt, mt = torch_engine.step(tt, in1)
    jt, mj = jax_engine.step(jt, in1)
    runs["step1"] = (torch_engine.export(tt), jax_engine.export(jt), mt, mj)
    from_jax, from_torch = runs["step1"][1], runs["step1"][0]
    # JAX -> torch: the JAX state restored into torch, one step on both
    t2, mt2 = torch_engine.step(torch_engine.restore(from_jax), in2)
    j2, mj2 = jax_engine.step(jt, in2)
    runs["jax_to_torch"] = (from_jax, torch_engine.export(t2), jax_engine.export(j2), mt2, mj2,
                            torch_engine.export(torch_engine.restore(from_jax)))
    # torch -> JAX
    j3, mj3 = jax_engine.step(jax_engine.restore(from_torch), in2)
    t3, mt3 = torch_engine.step(tt, in2)
    runs["torch_to_jax"] = (from_torch, torch_engine.export(t3), jax_engine.export(j3), mt3, mj3,
                            jax_engine.export(jax_engine.restore(from_torch)))
    return runs


@pytest.mark.slow
def test_one_step_matches_jax(cross_runs):
    """(c) identical init and inputs: one torch step == one JAX step (float32 tolerance, module docstring)."""
    cfg = cross_runs["cfg"]
    init_j, init_t = cross_runs["init"]
    assert_bitwise(init_t, init_j, "initial states")
    t, j, mt, mj = cross_runs["step1"]
    assert set(mt) == set(mj)
    assert compare_steps(init_j, t, j, mt, mj, cfg) == []
    # the comparison can fail: a 1e-3 relative error in one gradient leaf is caught
    broken = copy.deepcopy(t)  # (the fixture's trees are shared with the other tests)
    broken["opt_d"]["mu"]["dF"]["block1"]["conv1"]["w"] *= 1.001
    assert any("opt_d/mu/dF/block1/conv1/w" in str(b[0]) for b in compare_steps(init_j, broken, j, mt, mj, cfg))


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["jax_to_torch", "torch_to_jax"])
def test_checkpoint_crosses_backends(cross_runs, direction):
    """(b) a state exported by one engine restores into the other; one more step on both agrees."""
    cfg = cross_runs["cfg"]
    before, t, j, mt, mj, roundtrip = cross_runs[direction]
    assert_bitwise(roundtrip, before, f"{direction}: restore in the other engine, then export")
    assert int(t["step"]) == int(j["step"]) == 2
    assert compare_steps(before, t, j, mt, mj, cfg) == []


def test_cli_train_data_options_are_used_recorded_and_fixed_on_resume(torch_backend, tmp_path, capsys):
    """`trivd train --data-option`: reaches the dataset, lands in config.json, is refused on --resume and when unknown."""
    from trivd import cli
    from trivd_core.evaluate import open_run

    run = tmp_path / "run"
    base = ["train", "--backend", "torch", "--skip-conformance", "--no-progress", "--workers", "0", "--steps", "1",
            "--sample-every", "1", "--ckpt-every", "1"]
    assert cli.main([*base, "--run-dir", str(run), "--data-option", "speed_range=[0.05, 0.1]",
                     "--data-option", "num_shapes=1"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["args"]["data_options"] == {"speed_range": [0.05, 0.1], "num_shapes": 1}
    assert open_run(run).data_options == {"speed_range": [0.05, 0.1], "num_shapes": 1}
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run), "--steps", "2", "--data-option", "num_shapes=2"]) == 2
    assert "cannot change on --resume" in capsys.readouterr().err
    assert cli.main([*base, "--run-dir", str(tmp_path / "bad"), "--data-option", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "--data synthetic" in err and "unknown dataset option(s) bogus" in err
    assert cli.main([*base, "--run-dir", str(tmp_path / "bad2"), "--data-option", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_cli_train_set_config_file_and_validation_records(torch_backend, tmp_path, capsys):
    """`--config FILE --set`, `--eval-every`: fields recorded in config.json, val records, curves.png, the final line."""
    from trivd import cli
    from trivd_core.train import artifacts

    cfg_file = tmp_path / "small.toml"
    cfg_file.write_text('base = "tiny"\nname = "small"\nt_cond = 1\nt_pred = 2\nK = 2\nbatch_size = 4\n'
                        'decomposition = "faster"\n')
    run = tmp_path / "run"
    argv = ["train", "--backend", "torch", "--skip-conformance", "--no-progress", "--workers", "0", "--steps", "3",
            "--sample-every", "3", "--ckpt-every", "3", "--config", str(cfg_file), "--set", "g_ch=2",
            "--set", "d_ch=2", "--set", "recon_weight=1", "--eval-every", "2", "--eval-clips", "4",
            "--run-dir", str(run)]
    assert cli.main(argv) == 0
    cap = capsys.readouterr()  # the log on stderr, the results (the final validation line) on stdout
    assert "validation every 2 steps on 4 clips of the 'val' split" in cap.err and "vs best static blur" in cap.out
    assert "done: 3 steps" in cap.out and "done: 3 steps" not in cap.err
    saved = json.loads((run / "config.json").read_text())
    assert (saved["config"]["name"], saved["config"]["g_ch"], saved["config"]["recon_weight"]) == ("small", 2, 1.0)
    assert saved["args"]["set"] == ["g_ch=2", "d_ch=2", "recon_weight=1"] and saved["args"]["eval_every"] == 2
    recs = artifacts.read_metrics(run / "metrics.jsonl")
    val = [r for r in recs if r.get("kind") == "val"]
    assert [r["step"] for r in val] == [2, 3] and len(val[0]["val/mse"]) == 2
    assert "val/motion_agreement" in val[0] and 0.0 <= val[0]["val/motion_agreement"] <= 1.0
    # the direct motion metric of the one-shape default data: per predicted frame, model and copy (the displacement)
    assert len(val[0]["val/centroid_error"]) == len(val[0]["val/copy_centroid_error"]) == 2
    assert 0.0 <= val[0]["val/centroid_lost"] <= 1.0 and "centroid error at the last frame" in cap.out
    assert all("recon" in r for r in recs if "g_loss" in r)  # the L1 term is logged
    assert (run / "curves.png").stat().st_size > 1000
    assert json.loads((run / "status.json").read_text())["validation"]["mse_ratio"] > 0
    assert cli.main(["train", "--resume", str(run), "--steps", "4", "--set", "g_ch=4"]) == 2
    assert "cannot change on --resume" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(run), "--steps", "4", "--eval-every", "1", "--workers", "0",
                     "--no-progress", "--skip-conformance"]) == 0
    val = [r for r in artifacts.read_metrics(run / "metrics.jsonl") if r.get("kind") == "val"]
    assert [r["step"] for r in val] == [2, 3, 4]
