"""Tests of the generator G (appendix A), standing statistics and truncation (E.2, C.3) and the EMA (E.2).

Expected values are derived independently of the code under test: shapes and widths
from the paper's structure, EMA values by hand, truncated-normal moments in closed
form, the orthogonality penalty by a direct NumPy sum over the spectrally-normalised
weights (those with a ``u`` in the state), and cross-namespace runs against the NumPy
run of the same weights.  All on the ``tiny`` config with batch 2.
"""

from __future__ import annotations

import math
import os

import array_api_strict as xps
import numpy as np
import pytest
from _test_helpers import tree_map

from trivd_core import cells, discriminator, ema, generator
from trivd_core.configs import get_config

B = 2
CFG = get_config("tiny")  # 32x32x3, 2 -> 3 frames, g_ch 4, z_dim 16, class_dim 16, cell tsru_p
# float32 forward passes of ~40 layers: the same weights on another namespace / under
# jit agree to a few ulps of the activations; 1e-4 on outputs in [-1, 1] leaves a wide margin.
F32_ATOL = 1e-4


def tree_paths(tree, prefix=()):
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in tree_paths(v, (*prefix, k))]
    return [(prefix, tree)]


def leaf(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def inputs(seed=1, t_cond=CFG.t_cond, res=CFG.resolution, channels=CFG.channels, z_dim=CFG.z_dim, batch=B):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, t_cond, res, res, channels)).astype(np.float32)
    z = rng.standard_normal((batch, z_dim)).astype(np.float32)
    return x, z


_MODELS: dict = {}


def model(kind="tsru_p", **overrides):
    """Initialised (params, state) per config, cached (init is deterministic, nothing mutates the trees)."""
    key = (kind, tuple(sorted(overrides.items())))
    if key not in _MODELS:
        cfg = CFG.replace(cell=kind, **overrides)
        _MODELS[key] = (cfg, *generator.init_generator(cfg, np.random.default_rng(0)))
    return _MODELS[key]


# ---------------------------------------------------------------------------
# structure


@pytest.mark.parametrize("kind", cells.KINDS)
def test_output_shape_and_range_every_cell(kind):
    cfg, params, state = model(kind)
    x, z = inputs()
    y, new_state = generator.generate(params, state, x, z, train=True)
    assert y.shape == (B, cfg.t_pred, cfg.resolution, cfg.resolution, cfg.channels)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y)) and np.all(np.abs(y) <= 1.0)  # tanh output
    assert [p for p, _ in tree_paths(new_state)] == [p for p, _ in tree_paths(state)]
    # the frames are not constant: G produces structure, not a saturated tanh
    assert np.std(y) > 1e-3 and np.max(np.abs(y)) < 1.0
    # the shape-only description used for parameter counts agrees with the allocated tree
    shapes = generator.generator_shapes(cfg)
    assert sorted((p, tuple(v.shape)) for p, v in tree_paths(params)) == sorted(
        (p, v) for p, v in tree_paths(shapes))  # shape tuples are leaves


def test_parameter_layout_follows_appendix_a():
    cfg, params, state = model()
    g, gs = params["G"], state["G"]
    c = [cfg.g_ch * m for m in cfg.g_widths] + [cfg.g_ch * generator.FINAL_WIDTH]  # 32, 16, 8, 4
    assert c == [32, 16, 8, 4]
    d = cfg.z_dim + cfg.class_dim  # the "256-d" conditioning vector of appendix A (32 here)
    r0 = cfg.resolution // 8
    assert g["class_embed"].shape == (cfg.n_classes, cfg.class_dim)
    assert g["linear_in"]["w"].shape == (d, r0 * r0 * c[0])
    assert generator.generator_shapes("tiny")["G"]["linear_in"]["w"] == (d, r0 * r0 * c[0])  # config by name
    enc = discriminator.encoder_channels(cfg)
    for i in range(3):
        st = g[f"stage{i}"]
        r = r0 * 2**i
        assert st["h0"]["w"].shape == (3, 3, cfg.t_cond * enc[r], c[i])  # time folded into channels
        assert set(st["rnn"]) == {cfg.cell}
        assert st["rnn"][cfg.cell]["c"]["W"].shape == (3, 3, 2 * c[i], c[i])  # c_hidden = c_in = c_i
        assert st["conv"]["w"].shape == (3, 3, c[i], c[i])
        b0, b1 = st["block0"], st["block1"]
        assert "skip" not in b0 and b0["conv1"]["w"].shape == (3, 3, c[i], c[i])
        assert b1["conv1"]["w"].shape == (3, 3, c[i], c[i + 1]) and b1["conv2"]["w"].shape == (3, 3, c[i + 1], c[i + 1])
        assert b1["skip"]["w"].shape == (1, 1, c[i], c[i + 1])
        assert b0["cbn1"]["gain"]["w"].shape == (d, c[i]) and b1["cbn2"]["bias"]["w"].shape == (d, c[i + 1])
    assert g["out_bn"]["gain"].shape == (c[3],) and np.all(g["out_bn"]["gain"] == 1)
    assert g["out_conv"]["w"].shape == (3, 3, c[3], cfg.channels)
    assert gs["steps"].shape == (cfg.t_pred, 0)
    # spectral norm on every G weight except the first linear map (and the class table): exactly
    # the layers with a "u" in the state
    u_layers = {p[:-1] for p, _ in tree_paths(gs) if p[-1] == "u"}
    weights = {p[:-1] for p, v in tree_paths(g) if p[-1] in ("w", "W") and v.ndim >= 2}
    assert u_layers == weights - {("linear_in",)}
    assert "linear_in" not in gs and "class_embed" not in gs


def test_convlstm_state_is_h_and_c_and_only_h_goes_on():
    cfg, params, _ = model("convlstm")
    c0 = cfg.g_ch * cfg.g_widths[0]
    st = params["G"]["stage0"]
    assert st["h0"]["w"].shape[-1] == c0  # full state [h0; c0]
    assert st["rnn"]["convlstm"]["gates"]["W"].shape == (3, 3, c0 // 2 + c0, 4 * (c0 // 2))
    assert st["conv"]["w"].shape == (3, 3, c0 // 2, c0)  # only the hidden half h_t


def test_init_is_deterministic_and_orthogonal():
    cfg = CFG
    p1, s1 = generator.init_generator(cfg, np.random.default_rng(3))
    p2, s2 = generator.init_generator(cfg, np.random.default_rng(3))
    for (a, x), (b, y) in zip(tree_paths({"p": p1, "s": s1}), tree_paths({"p": p2, "s": s2})):
        assert a == b and np.array_equal(x, y)
    w = p1["G"]["stage1"]["block0"]["conv1"]["w"]  # (3, 3, 16, 16): tall -> orthonormal columns
    W = w.reshape(-1, w.shape[-1]).astype(np.float64)
    np.testing.assert_allclose(W.T @ W, np.eye(W.shape[1]), atol=1e-5)


def test_generate_is_deterministic():
    _, params, state = model()
    x, z = inputs()
    y1, s1 = generator.generate(params, state, x, z, train=True)
    y2, s2 = generator.generate(params, state, x, z, train=True)
    assert np.array_equal(y1, y2)
    for (_, a), (_, b) in zip(tree_paths(s1), tree_paths(s2)):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------
# recurrence and conditioning


@pytest.mark.parametrize("kind", ["tsru_p", "convlstm"])
def test_conditioning_frames_change_every_predicted_frame(kind):
    _, params, state = model(kind)
    x, z = inputs()
    y, _ = generator.generate(params, state, x, z, train=False)
    x2 = x.copy()
    x2[:, 0] = -x2[:, 0]  # change only the first conditioning frame
    y2, _ = generator.generate(params, state, x2, z, train=False)
    for t in range(y.shape[1]):
        assert np.max(np.abs(y2[:, t] - y[:, t])) > 1e-4


def test_frames_differ_over_time():
    # The input to the first recurrent unit is the same at every step; any difference between
    # predicted frames comes from the recurrence (the state carried from step to step).
    _, params, state = model()
    x, z = inputs()
    y, _ = generator.generate(params, state, x, z, train=True)
    assert np.max(np.abs(y[:, 1] - y[:, 0])) > 1e-3 and np.max(np.abs(y[:, 2] - y[:, 1])) > 1e-3


@pytest.mark.parametrize("train", [True, False])
def test_frame_t_depends_only_on_steps_up_to_t(train):
    # Causality: predicting fewer frames with the same weights gives the same first frames.
    # With BN statistics pooled over time (instead of per time step) or a non-causal
    # recurrence, the later steps would change the earlier frames.
    _, params, state = model()
    x, z = inputs()
    y3, _ = generator.generate(params, state, x, z, train=train)
    y1, _ = generator.generate(params, state, x, z, train=train, t_pred=1)
    y5, _ = generator.generate(params, state, x, z, train=train, t_pred=5)
    assert y3.shape[1] == 3 and y1.shape[1] == 1 and y5.shape[1] == 5
    np.testing.assert_array_equal(y1[:, 0], y3[:, 0])
    np.testing.assert_array_equal(y5[:, :3], y3)


def test_latent_and_class_condition_the_output():
    cfg, params, state = model(n_classes=3)
    x, z = inputs()
    y, _ = generator.generate(params, state, x, z, train=True)
    y_zero, _ = generator.generate(params, state, x, z, train=True, class_ids=np.zeros(B, np.int32))
    assert np.array_equal(y, y_zero)  # default = the dummy zero class
    y_cls, _ = generator.generate(params, state, x, z, train=True, class_ids=np.array([1, 2], np.int64))
    assert np.max(np.abs(y_cls - y)) > 1e-4
    y_z, _ = generator.generate(params, state, x, 0 * z, train=True)
    assert np.max(np.abs(y_z - y)) > 1e-4


# ---------------------------------------------------------------------------
# state: spectral norm and standing statistics


def test_sn_state_updated_only_in_train_mode():
    _, params, state = model()
    x, z = inputs()
    _, s_eval = generator.generate(params, state, x, z, train=False)
    _, s_train = generator.generate(params, state, x, z, train=True)
    u_paths = [p for p, _ in tree_paths(state) if p[-1] == "u"]
    assert len(u_paths) > 50  # E (3 blocks) and every SN layer of G
    for p in u_paths:
        assert np.array_equal(leaf(s_eval, p), leaf(state, p)), p
        assert not np.array_equal(leaf(s_train, p), leaf(state, p)), p  # one power iteration moves u
        np.testing.assert_allclose(np.linalg.norm(leaf(s_train, p)), 1.0, rtol=1e-5)
    assert leaf(s_train, ("G", "steps")).shape == (CFG.t_pred, 0)


def test_standing_stats_from_one_batch_reproduce_train_mode():
    _, params, state = model()
    x, z = inputs()
    y_train, _ = generator.generate(params, state, x, z, train=True)
    st = generator.accumulate_standing_stats(params, state, [(x, z)])
    # 3 stages x 2 blocks x 2 conditional BNs + the final BN, per time step
    stats = [p for p, _ in tree_paths(st["standing"])]
    assert len(stats) == 2 * 13 and all(p[-1] in ("mean", "var") for p in stats)
    for _, v in tree_paths(st["standing"]):
        assert v.shape[:4] == (1, CFG.t_pred, 1, 1)
    assert np.all(leaf(st, ("standing", "out_bn", "var")) >= 0)
    # only "standing" is added: E and G state (the SN vectors) untouched
    for p, v in tree_paths(state):
        assert leaf(st, p) is v
    y_eval, st2 = generator.generate(params, st, x, z, train=False)
    np.testing.assert_allclose(y_eval, y_train, rtol=0, atol=1e-6)
    assert st2["standing"] is st["standing"]
    # and they are really used: on another batch, eval with standing stats != batch statistics
    x2, z2 = inputs(seed=7)
    y_std, _ = generator.generate(params, st, x2, z2, train=False)
    y_batch, _ = generator.generate(params, st, x2, z2, train=False, standing=False)
    y_batch_train, _ = generator.generate(params, state, x2, z2, train=True)
    assert np.max(np.abs(y_std - y_batch)) > 1e-3
    np.testing.assert_array_equal(y_batch, y_batch_train)


def test_standing_stats_average_over_batches():
    _, params, state = model()
    a, b = inputs(seed=1), inputs(seed=2)
    sa = generator.accumulate_standing_stats(params, state, [a])["standing"]
    sb = generator.accumulate_standing_stats(params, state, iter([b]))["standing"]
    sab = generator.accumulate_standing_stats(params, state, (a, b))["standing"]
    for p, v in tree_paths(sab):
        np.testing.assert_allclose(v, (leaf(sa, p) + leaf(sb, p)) / 2, rtol=1e-6, atol=1e-7)


def test_eval_without_standing_stats_uses_batch_stats():
    _, params, state = model()
    x, z = inputs()
    y_train, _ = generator.generate(params, state, x, z, train=True)
    y_eval, _ = generator.generate(params, state, x, z, train=False)
    np.testing.assert_array_equal(y_eval, y_train)


# ---------------------------------------------------------------------------
# orthogonal penalty


def _direct_penalty(params, state):
    total = 0.0
    for p, _ in tree_paths(state["G"]):
        if p[-1] != "u":
            continue
        layer = leaf(params["G"], p[:-1])
        w = layer["w"] if "w" in layer else layer["W"]
        W = np.asarray(w, np.float64).reshape(-1, w.shape[-1])
        gram = W.T @ W
        total += np.sum(gram**2) - np.sum(np.diag(gram) ** 2)
    return total


def test_g_ortho_penalty_sums_over_sn_weights_of_g():
    _, params, state = model()
    rng = np.random.default_rng(5)
    noisy = tree_map(lambda a: (a + 0.05 * rng.standard_normal(a.shape)).astype(a.dtype), params)
    got = generator.g_ortho_penalty(noisy)
    assert got.shape == ()
    np.testing.assert_allclose(float(got), _direct_penalty(noisy, state), rtol=1e-4)
    # the unnormalised first linear map, the class table and E are not penalised
    moved = {**noisy, "E": params["E"],
             "G": {**noisy["G"], "linear_in": params["G"]["linear_in"], "class_embed": params["G"]["class_embed"]}}
    assert float(generator.g_ortho_penalty(moved)) == float(got)


# ---------------------------------------------------------------------------
# truncation


def test_truncation_zero_and_none():
    z0 = generator.truncated_normal_latents(np.random.default_rng(0), (4, 16), 0.0)
    assert z0.shape == (4, 16) and z0.dtype == np.float32 and np.all(z0 == 0)
    zn = generator.truncated_normal_latents(np.random.default_rng(0), (4, 16), None)
    np.testing.assert_array_equal(zn, np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32))


@pytest.mark.parametrize("t", [0.05, 0.5, 1.0, 2.0])
def test_truncation_bounds_and_moments(t):
    n = 200_000
    z = generator.truncated_normal_latents(np.random.default_rng(1), (n,), t, dtype=np.float64)
    assert np.all(np.abs(z) <= t)
    # N(0, 1) conditioned on |z| <= t: mean 0, variance 1 - 2 t phi(t) / (2 Phi(t) - 1)
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(t / math.sqrt(2))  # 2 Phi(t) - 1
    var = 1 - 2 * t * phi / mass
    # standard errors: sd(z)/sqrt(n) for the mean, sd(z^2)/sqrt(n) <= sqrt(E z^4)/sqrt(n) for the variance;
    # tolerances are 5 standard errors (the seed is fixed, so this is deterministic)
    assert abs(z.mean()) < 5 * math.sqrt(var / n)
    assert abs(z.var() - var) < 5 * math.sqrt(3 * var * var / n)
    # the truncation really truncates: more mass near the bound than far inside for small t
    assert z.std() < 1.0


def test_truncation_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="threshold"):
        generator.truncated_normal_latents(rng, (2,), -1.0)
    with pytest.raises(TypeError, match="rng"):
        generator.truncated_normal_latents(0, (2,), 1.0)
    with pytest.raises(ValueError, match="shape"):
        generator.truncated_normal_latents(rng, (2, -1), 1.0)


# ---------------------------------------------------------------------------
# EMA


def _tree(a, b):
    return {"a": np.array(a, np.float32), "n": {"b": np.array(b, np.float32)}}


def test_ema_before_and_at_start_copies_live_weights():
    p = _tree([1.0, 2.0], [[4.0]])
    for step in (0, 5, 10):  # start = 10
        e = ema.ema_update(None, p, 0.9, step, 10)
        assert e["a"] is not p["a"] and np.array_equal(e["a"], p["a"]) and np.array_equal(e["n"]["b"], p["n"]["b"])
    # at step == start the old average is discarded
    e = ema.ema_update(_tree([100.0, 100.0], [[100.0]]), p, 0.9, 10, 10)
    np.testing.assert_array_equal(e["a"], [1.0, 2.0])


def test_ema_algebra_by_hand():
    # decay 0.5, start 2, live weights p_t = t (scalar leaves):
    # step 2: ema = 2; step 3: 0.5*2 + 0.5*3 = 2.5; step 4: 0.5*2.5 + 0.5*4 = 3.25; step 5: 4.125
    e = None
    for step, want in [(0, 0.0), (1, 1.0), (2, 2.0), (3, 2.5), (4, 3.25), (5, 4.125)]:
        e = ema.ema_update(e, _tree([step], [[step]]), 0.5, step, 2)
        np.testing.assert_allclose(e["a"], [want], rtol=0, atol=0)
        np.testing.assert_allclose(e["n"]["b"], [[want]], rtol=0, atol=0)
    # decay 0.9999 (the paper's): 0.9999 * 1 + 0.0001 * 3 = 1.0002
    e = ema.ema_update(_tree([1.0], [[1.0]]), _tree([3.0], [[3.0]]), 0.9999, 21_000, 20_000)
    np.testing.assert_allclose(e["a"], [1.0002], rtol=1e-6)


def test_ema_errors():
    p = _tree([1.0], [[1.0]])
    with pytest.raises(ValueError, match="decay"):
        ema.ema_update(p, p, 1.5, 3, 0)
    with pytest.raises(ValueError, match="ema_params"):
        ema.ema_update(None, p, 0.9, 3, 0)
    with pytest.raises(ValueError, match="layout"):
        ema.ema_update({"a": p["a"]}, p, 0.9, 3, 0)
    with pytest.raises(ValueError, match="shape"):
        ema.ema_update(_tree([1.0, 2.0], [[1.0]]), p, 0.9, 3, 0)


def test_ema_on_generator_params_array_api_strict():
    _, params, _ = model()
    sp = tree_map(xps.asarray, params)
    e1 = ema.ema_update(None, sp, 0.9, 0, 0)
    e2 = ema.ema_update(e1, tree_map(lambda a: 2 * a, sp), 0.9, 1, 0)  # 0.9 p + 0.1 * 2p = 1.1 p
    for p, v in tree_paths(e2):
        np.testing.assert_allclose(np.asarray(v), 1.1 * leaf(params, p), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# errors


def test_clear_errors():
    _, params, state = model()
    x, z = inputs()
    with pytest.raises(ValueError, match=r"cond_frames.*\(B, T_cond, 32, 32, 3\)"):
        generator.generate(params, state, x[:, :, :16, :16], z, train=True)  # resolution
    with pytest.raises(ValueError, match=r"cond_frames.*5-D"):
        generator.generate(params, state, x[:, 0], z, train=True)
    with pytest.raises(ValueError, match=r"cond_frames.*3 channels|cond_frames.*\(B, T_cond, 32, 32, 3\)"):
        generator.generate(params, state, x[..., :1], z, train=True)
    x3, _ = inputs(t_cond=3)
    with pytest.raises(ValueError, match="T_cond=2"):
        generator.generate(params, state, x3, z, train=True)
    with pytest.raises(ValueError, match=r"'z'.*16"):
        generator.generate(params, state, x, z[:, :8], train=True)
    with pytest.raises(ValueError, match=r"'z'.*B=2"):
        generator.generate(params, state, x, z[:1], train=True)
    with pytest.raises(TypeError, match="dtype"):
        generator.generate(params, state, x, z.astype(np.float64), train=True)
    with pytest.raises(TypeError, match="class_ids.*integer"):
        generator.generate(params, state, x, z, train=True, class_ids=np.zeros(B, np.float32))
    with pytest.raises(ValueError, match="standing"):
        generator.generate(params, state, x, z, train=False, standing=True)
    with pytest.raises(TypeError, match="train"):
        generator.generate(params, state, x, z, train=None)
    with pytest.raises(ValueError, match="'E'"):
        generator.generate(params["G"], state, x, z, train=True)
    st = generator.accumulate_standing_stats(params, state, [(x, z)])
    with pytest.raises(ValueError, match="per time step"):
        generator.generate(params, st, x, z, train=False, t_pred=2)
    with pytest.raises(ValueError, match="at least one batch"):
        generator.accumulate_standing_stats(params, state, [])
    with pytest.raises(TypeError, match="batches"):
        generator.accumulate_standing_stats(params, state, [x])
    with pytest.raises(ValueError, match="bn_eps"):
        generator.init_generator(CFG.replace(bn_eps=1e-3), np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        generator.init_generator(CFG, 0)
    with pytest.raises(TypeError, match="config"):
        generator.init_generator({"resolution": 32}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="name"):
        generator.init_generator("no_such_config", np.random.default_rng(0))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="one array namespace"):
        generator.generate(params, state, x, torch.from_numpy(z), train=True)


# ---------------------------------------------------------------------------
# other namespaces


def test_array_api_strict_matches_numpy():
    _, params, state = model()
    x, z = inputs()
    y, s = generator.generate(params, state, x, z, train=True)
    conv = lambda t: tree_map(xps.asarray, t)  # noqa: E731
    ys, ss = generator.generate(conv(params), conv(state), xps.asarray(x), xps.asarray(z), train=True,
                                class_ids=xps.asarray(np.zeros(B, np.int64)))
    np.testing.assert_allclose(np.asarray(ys), y, rtol=0, atol=F32_ATOL)
    u = ("G", "stage2", "block1", "skip", "u")
    np.testing.assert_allclose(np.asarray(leaf(ss, u)), leaf(s, u), rtol=0, atol=1e-5)


def test_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    _, params, state = model("convgru")
    x, z = inputs()
    st = generator.accumulate_standing_stats(params, state, [(x, z)])
    y, _ = generator.generate(params, st, x, z, train=False)
    conv = lambda t: tree_map(torch.from_numpy, t)  # noqa: E731
    yt, _ = generator.generate(conv(params), conv(st), torch.from_numpy(x), torch.from_numpy(z), train=False)
    assert isinstance(yt, torch.Tensor)
    np.testing.assert_allclose(yt.numpy(), y, rtol=0, atol=F32_ATOL)


def test_torch_gradients_reach_encoder_and_every_stage():
    # E and G train together through generate (one optimiser): the loss of the predicted frames
    # has non-zero gradients for E, the class table, the first linear map and every stage.
    torch = pytest.importorskip("torch")
    _, params, state = model()
    x, z = inputs()
    tp = tree_map(lambda a: torch.from_numpy(a.copy()).requires_grad_(a.ndim > 0 and a.size > 0), params)
    ts = tree_map(torch.from_numpy, state)
    frames, _ = generator.generate(tp, ts, torch.from_numpy(x), torch.from_numpy(z), train=True)
    loss = torch.mean(frames**2) + 1e-4 * generator.g_ortho_penalty(tp)
    loss.backward()
    for path in [("E", "block0", "conv1", "w"), ("E", "block2", "conv2", "w"), ("G", "class_embed"),
                 ("G", "linear_in", "w"), ("G", "stage0", "h0", "w"), ("G", "stage1", "rnn", "tsru_p", "f", "fc2", "W"),
                 ("G", "stage2", "block1", "cbn2", "gain", "w"), ("G", "out_bn", "gain"), ("G", "out_conv", "w")]:
        g = leaf(tp, path).grad
        assert g is not None and bool(torch.all(torch.isfinite(g))) and float(g.abs().max()) > 0, path


@pytest.fixture
def jax_unoptimised():
    """jax with XLA's optimisations off while the test runs: G's unrolled graph compiles in a fraction
    of the time and float32 results stay float32-accurate; restored afterwards."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    jax = pytest.importorskip("jax")
    previous = bool(jax.config.values["jax_disable_most_optimizations"])
    jax.config.update("jax_disable_most_optimizations", True)
    yield jax
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.mark.slow
def test_jax_jit_matches_numpy(jax_unoptimised):
    # The generic array-API code (no backend fast paths) traced by jax.jit: no host syncs, no Python
    # control flow on values; frames and the new spectral-norm state match the NumPy run.
    jax = jax_unoptimised
    jnp = jax.numpy
    _, params, state = model()
    x, z = inputs()
    ids = np.array([0, 0], np.int32)
    y, s = generator.generate(params, state, x, z, train=True)
    conv = lambda t: tree_map(jnp.asarray, t)  # noqa: E731
    step = jax.jit(lambda p, st, c, zz, i: generator.generate(p, st, c, zz, train=True, class_ids=i))
    yj, sj = step(conv(params), conv(state), jnp.asarray(x), jnp.asarray(z), jnp.asarray(ids))
    assert yj.dtype == jnp.float32 and yj.shape == y.shape
    np.testing.assert_allclose(np.asarray(yj), y, rtol=0, atol=F32_ATOL)
    for p, v in tree_paths(s):
        np.testing.assert_allclose(np.asarray(leaf(sj, p)), v, rtol=0, atol=1e-5)
