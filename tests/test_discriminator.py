"""Discriminators of Table 1, the encoder E and the per-config summary (appendix A, section 3.1, E.1).

Expected values come from a direct, test-local NumPy implementation written from the
paper and BigGAN-PyTorch's ``DBlock`` (convolution by sliding windows and einsum,
pooling as a sum of strided slices, the power iteration written out, Eq. 15 written
out), never from the code under test; parameter and pixel counts are worked out by
hand in the comments.

Tolerances
----------
float64 against the direct implementation: rtol 1e-9, atol 1e-12.  Each output is a
sum of a few thousand products through five residual blocks; float64 rounding
(1.1e-16 per operation) stays many orders of magnitude below 1e-9 relative.
float32 on another namespace against NumPy float32 (the same core code, different
summation orders / conv kernels): atol 1e-5 on scores of magnitude <= ~1; float32's
unit roundoff is 6e-8 and the deepest sums have ~2e4 terms (3x3x3 taps x channels x
pixels summed over space), so differences stay below ~1e-6 of the largest partial sums.
"""

from __future__ import annotations

import array_api_strict
import numpy as np
import pytest
from _test_helpers import tree_leaves, tree_map
from numpy.lib.stride_tricks import sliding_window_view

from trivd_core import discriminator as D
from trivd_core import summary
from trivd_core.configs import DECOMPOSITIONS as CONFIG_DECOMPOSITIONS
from trivd_core.configs import get_config

B = 2


def model(decomposition="stronger", seed=0, dtype=np.float32, **overrides):
    cfg = get_config("tiny", decomposition=decomposition, **overrides)
    params, state = D.init_discriminator(cfg, np.random.default_rng(seed), dtype=dtype)
    return cfg, params, state


def video(cfg, seed=1, dtype=np.float32):
    r = cfg.resolution
    return np.random.default_rng(seed).uniform(-1, 1, (B, cfg.t_total, r, r, cfg.channels)).astype(dtype)


# ---------------------------------------------------------------------------
# a direct implementation (test-local, float64)


def ref_conv(x, w, b):
    """SAME zero-padded stride-1 cross-correlation over the last 2 (HWIO) or 3 (THWIO) non-channel axes."""
    nd = w.ndim - 2
    lead = x.ndim - nd - 1
    pads = [(0, 0)] * lead + [((k - 1) // 2, (k - 1) // 2) for k in w.shape[:nd]] + [(0, 0)]
    win = sliding_window_view(np.pad(x, pads), w.shape[:nd], axis=tuple(range(lead, lead + nd)))
    # win: (..., [T], H, W, C_in, [kt], kh, kw)
    sub = "...cmn,mnco->...o" if nd == 2 else "...cdmn,dmnco->...o"
    return np.einsum(sub, win, w, optimize=True) + b


def ref_pool(x, s):
    """Mean of the s*s strided sub-grids of the spatial axes (-3, -2)."""
    total = 0
    for m in range(s):
        for n in range(s):
            total = total + x[..., m::s, n::s, :]
    return total / (s * s)


def ref_sn(w, u):
    W = w.reshape(-1, w.shape[-1])
    v = W @ u
    v = v / np.linalg.norm(v)
    u2 = W.T @ v
    u2 = u2 / np.linalg.norm(u2)
    return w / (v @ W @ u2), u2


def relu(x):
    return np.maximum(x, 0)


def ref_block(p, st, x, i, pool):
    """BigGAN-PyTorch DBlock (wide, preactivation for i > 0)."""
    def conv(name, y):
        w, _ = ref_sn(p[name]["w"], st[name]["u"])
        return ref_conv(y, w, p[name]["b"])

    h = relu(x) if i > 0 else x
    h = conv("conv2", relu(conv("conv1", h)))
    if pool:
        h = ref_pool(h, 2)
    sc = x
    if "conv_sc" in p:
        sc = conv("conv_sc", ref_pool(sc, 2) if pool else sc)
    elif pool:
        sc = ref_pool(sc, 2)
    return h + sc


def ref_network(p, st, x, head):
    """Five blocks on (B, T', h, w, C) (2-D convs act framewise, 3-D ones on time too), ReLU, sum over space, head."""
    for i in range(5):
        x = ref_block(p[f"block{i}"], st[f"block{i}"], x, i, pool=i < 4)
    h = relu(x).sum(axis=(2, 3))  # (B, T', C)
    w, _ = ref_sn(p["linear"]["w"], st["linear"]["u"])
    e, _ = ref_sn(p["embed"]["w"], st["embed"]["u"])
    b = p["linear"]["b"][0]
    if head == "projection":
        hs = h.sum(axis=1)
        return hs @ w[:, 0] + b + hs @ e[0]
    r_x = h @ w[:, 0] + b  # (B, T')
    r_xy = h @ e[0]  # (B, T') with the dummy zero class
    n = h.shape[0]
    out = np.zeros((n, n, h.shape[1]))
    for bb in range(n):
        for b2 in range(n):
            out[bb, b2, :] = r_x[bb, :] + r_xy[b2, :].sum()  # Eq. 15
    return out


def ref_inputs(cfg, v, rnd):
    s, r = cfg.s, cfg.resolution // cfg.s
    out = {"clV": v, "dV": ref_pool(v, s)}
    if "idx" in rnd:
        frames = np.stack([v[b, rnd["idx"][b]] for b in range(v.shape[0])])
        out["F"], out["dF"] = frames, ref_pool(frames, s)
    if "offsets" in rnd:
        out["crV"] = np.stack([v[b, :, y : y + r, x : x + r] for b, (y, x) in enumerate(rnd["offsets"])])
    return out


# ---------------------------------------------------------------------------
# decompositions (Table 1)


def test_decompositions_are_table_1():
    # Table 1 rows: F, dF, clV, dV, crV columns
    table = {
        "clip": {"clV"},
        "downsampled": {"dV"},
        "cropped": {"crV"},
        "cropped_downsampled": {"crV", "dV"},
        "mocogan": {"F", "clV"},
        "dvdgan_fp": {"F", "dV"},
        "faster": {"dF", "crV"},
        "stronger": {"dF", "crV", "dV"},
    }
    assert {k: set(v) for k, v in D.DECOMPOSITIONS.items()} == table
    assert set(CONFIG_DECOMPOSITIONS) == set(table)
    assert {n for n, kind in D.SUB_DISCRIMINATORS.items() if kind == "video"} == {"clV", "dV", "crV"}


@pytest.mark.parametrize("head", ["mixed", "projection"])
@pytest.mark.parametrize("decomposition", list(CONFIG_DECOMPOSITIONS))
def test_score_shapes_every_decomposition(decomposition, head):
    cfg, params, state = model(decomposition, head=head)
    rnd = D.sample_randomness(cfg, np.random.default_rng(2), B)
    scores, new_state = D.discriminate(params, state, video(cfg), rnd, cfg, train=True)
    assert set(scores) == set(D.DECOMPOSITIONS[decomposition]) == set(params)
    for name, s in scores.items():
        frames = cfg.K if name in ("F", "dF") else cfg.t_total  # K=2, T=2+3=5 in tiny
        assert s.shape == ((B, B, frames) if head == "mixed" else (B,)), name
        assert s.dtype == np.float32 and np.all(np.isfinite(s))
    assert set(new_state) == set(state)


@pytest.mark.parametrize(
    ("decomposition", "head"),
    [("stronger", "mixed"), ("stronger", "projection"), ("mocogan", "mixed")],  # covers dF, crV, dV, F, clV
)
def test_scores_equal_direct_computation(decomposition, head):
    cfg, params, state = model(decomposition, dtype=np.float64, head=head)
    # non-zero biases so that every bias path is exercised
    rng = np.random.default_rng(5)
    params = tree_map(lambda a: a + 0.1 * rng.standard_normal(a.shape) if a.ndim == 1 else a, params)
    v = video(cfg, dtype=np.float64)
    rnd = D.sample_randomness(cfg, np.random.default_rng(3), B)
    scores, _ = D.discriminate(params, state, v, rnd, cfg, train=False)
    inputs = ref_inputs(cfg, v, rnd)
    for name in D.DECOMPOSITIONS[decomposition]:
        want = ref_network(params[name], state[name], inputs[name], head)
        np.testing.assert_allclose(scores[name], want, rtol=1e-9, atol=1e-12, err_msg=name)


def test_mixed_projection_structure():
    # Eq. 15: o[b, b', t] - o[b, b'', t] depends on b' and b'' only
    cfg, params, state = model("clip")
    o, _ = D.discriminate(params, state, video(cfg), {}, cfg, train=False)
    o = o["clV"]
    diff = o[:, 0, :] - o[:, 1, :]
    np.testing.assert_allclose(diff, np.full_like(diff, diff[0, 0]), rtol=0, atol=1e-5)


def test_class_ids_select_embedding_rows():
    cfg, params, state = model("clip", n_classes=3)
    v = video(cfg)
    dummy, _ = D.discriminate(params, state, v, {}, cfg, train=False)
    zero, _ = D.discriminate(params, state, v, {}, cfg, train=False, class_ids=np.zeros(B, np.int64))
    np.testing.assert_array_equal(dummy["clV"], zero["clV"])
    other, _ = D.discriminate(params, state, v, {}, cfg, train=False, class_ids=np.array([2, 1]))
    # only the class term sum_t' r_xy^{b', t'} changes: o[b, b', t] - o_zero[b, b', t] depends on b' only
    d = other["clV"] - zero["clV"]
    assert np.max(np.abs(d)) > 1e-4
    np.testing.assert_allclose(d, np.broadcast_to(d[0:1], d.shape), rtol=0, atol=1e-5)


def test_temporal_convs_mix_time_frame_discriminator_does_not():
    cfg, params, state = model("mocogan")  # F (frames) + clV (3-D first two blocks)
    v = video(cfg)
    idx = np.array([[1, 3], [0, 4]])
    rnd = {"idx": idx}
    base, _ = D.discriminate(params, state, v, rnd, cfg, train=False)
    v2 = v.copy()
    v2[0, 3] += 0.5  # perturb frame 3 of sample 0 (= the F slot k=1 of sample 0)
    pert, _ = D.discriminate(params, state, v2, rnd, cfg, train=False)
    # o[0, 1, t] = r_x^{0,t} + (class term of sample 1, unchanged): isolates sample 0's per-step features
    f0, f1 = base["F"][0, 1], pert["F"][0, 1]
    assert f0[0] == f1[0]  # the other sampled frame is judged independently
    assert abs(f0[1] - f1[1]) > 1e-6
    c0, c1 = base["clV"][0, 1], pert["clV"][0, 1]
    for t in (0, 1, 2, 4):  # every other time step sees frame 3 through the 3x3x3 convs (receptive field +-4)
        assert abs(c0[t] - c1[t]) > 1e-6, t
    # sample 1 is untouched: its own per-step features are unchanged
    np.testing.assert_array_equal(base["F"][1, 1], pert["F"][1, 1])
    np.testing.assert_array_equal(base["clV"][1, 1], pert["clV"][1, 1])


def test_spectral_norm_state_updates_only_in_training():
    cfg, params, state = model("faster", dtype=np.float64)
    v = video(cfg, dtype=np.float64)
    rnd = D.sample_randomness(cfg, np.random.default_rng(0), B)
    _, same = D.discriminate(params, state, v, rnd, cfg, train=False)
    for path, u in tree_leaves(state):
        got = same
        for k in path:
            got = got[k]
        assert got is u
    _, new = D.discriminate(params, state, v, rnd, cfg, train=True)
    assert [p for p, _ in tree_leaves(new)] == [p for p, _ in tree_leaves(state)]
    for path, u in tree_leaves(new):
        layer_p, layer_s = params, state
        for k in path[:-1]:
            layer_p, layer_s = layer_p[k], layer_s[k]
        _, want = ref_sn(layer_p["w"], layer_s["u"])
        np.testing.assert_allclose(u, want, rtol=1e-9, atol=1e-12, err_msg=str(path))


# ---------------------------------------------------------------------------
# randomness


def test_sample_randomness_keys_shapes_ranges():
    rng = np.random.default_rng(0)
    for decomposition, keys in [("clip", set()), ("dvdgan_fp", {"idx"}), ("cropped", {"offsets"}),
                                ("stronger", {"idx", "offsets"})]:
        cfg = get_config("tiny", decomposition=decomposition)
        assert set(D.sample_randomness(cfg, rng, B)) == keys
    cfg = get_config("tiny", decomposition="stronger")  # 32x32, T = 5, K = 2, s = 2 -> crop 16x16
    r = D.sample_randomness(cfg, np.random.default_rng(1), 2000)
    assert r["idx"].shape == (2000, 2) and r["idx"].dtype == np.int64
    assert r["offsets"].shape == (2000, 2) and r["offsets"].dtype == np.int64
    assert np.all(np.diff(r["idx"], axis=1) > 0)  # distinct, sorted
    assert r["idx"].min() == 0 and r["idx"].max() == 4
    assert r["offsets"].min() == 0 and r["offsets"].max() == 32 - 16  # the crop always fits, corners included
    again = D.sample_randomness(cfg, np.random.default_rng(1), 2000)
    np.testing.assert_array_equal(again["idx"], r["idx"])
    full = D.sample_randomness(get_config("tiny", decomposition="mocogan", K=5), np.random.default_rng(2), 3)
    np.testing.assert_array_equal(full["idx"], np.tile(np.arange(5), (3, 1)))  # K = T: every frame once


# ---------------------------------------------------------------------------
# encoder


def test_encoder_shapes_and_channels():
    cfg = get_config("tiny")  # 32x32, d_ch 4, d_widths (1, 2, 4, ...)
    params, state = D.init_encoder(cfg, np.random.default_rng(0))
    assert set(params) == {"block0", "block1", "block2"}
    cond = video(cfg)[:, : cfg.t_cond]
    feats, new = D.encode(params, state, cond, train=False)
    assert {k: f.shape for k, f in feats.items()} == {
        16: (B, 2, 16, 16, 4), 8: (B, 2, 8, 8, 8), 4: (B, 2, 4, 4, 16)
    }
    assert D.encoder_channels(cfg) == {16: 4, 8: 8, 4: 16}
    assert D.encoder_channels("paper_large") == {32: 120, 16: 240, 8: 480}
    assert new is not state and set(new) == set(state)


def test_encoder_is_the_spatial_network_framewise():
    cfg = get_config("tiny")
    params, state = D.init_encoder(cfg, np.random.default_rng(0), dtype=np.float64)
    cond = video(cfg, dtype=np.float64)[:, : cfg.t_cond]
    feats, _ = D.encode(params, state, cond, train=False)
    x = cond
    for i in range(3):
        x = ref_block(params[f"block{i}"], state[f"block{i}"], x, i, pool=True)
        np.testing.assert_allclose(feats[32 // 2 ** (i + 1)], x, rtol=1e-9, atol=1e-12)
    # framewise: encoding one frame alone gives the same features
    single, _ = D.encode(params, state, cond[:, 1:2], train=False)
    for r in feats:
        np.testing.assert_allclose(single[r][:, 0], feats[r][:, 1], rtol=1e-12, atol=1e-14)


def test_encoder_trains_spectral_norm_state():
    cfg = get_config("tiny")
    params, state = D.init_encoder(cfg, np.random.default_rng(0), dtype=np.float64)
    _, new = D.encode(params, state, video(cfg, dtype=np.float64)[:, :2], train=True)
    _, want = ref_sn(params["block1"]["conv2"]["w"], state["block1"]["conv2"]["u"])
    np.testing.assert_allclose(new["block1"]["conv2"]["u"], want, rtol=1e-9)


# ---------------------------------------------------------------------------
# other namespaces


def _conv(ns, tree):
    if ns == "array_api_strict":
        return tree_map(lambda a: array_api_strict.asarray(a), tree)
    torch = pytest.importorskip("torch")
    return tree_map(torch.from_numpy, tree)


@pytest.mark.parametrize("ns", ["array_api_strict", "torch"])
def test_other_namespaces_match_numpy(ns):
    cfg, params, state = model("stronger")
    v = video(cfg)
    rnd = D.sample_randomness(cfg, np.random.default_rng(3), B)
    want, want_state = D.discriminate(params, state, v, rnd, cfg, train=True)
    got, got_state = D.discriminate(_conv(ns, params), _conv(ns, state), _conv(ns, v), _conv(ns, rnd), cfg,
                                    train=True)
    for name in want:
        np.testing.assert_allclose(np.asarray(got[name]), want[name], rtol=0, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(np.asarray(got_state["dV"]["block4"]["conv2"]["u"]),
                               want_state["dV"]["block4"]["conv2"]["u"], rtol=0, atol=1e-5)
    ep, es = D.init_encoder(cfg, np.random.default_rng(0))
    fw, _ = D.encode(ep, es, v[:, :2], train=False)
    fg, _ = D.encode(_conv(ns, ep), _conv(ns, es), _conv(ns, v[:, :2]), train=False)
    for r in fw:
        np.testing.assert_allclose(np.asarray(fg[r]), fw[r], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_jax_jit_with_traced_randomness_matches_numpy(jax_fast):
    jax, jnp = jax_fast, jax_fast.numpy
    cfg, params, state = model("faster")  # dF (traced frame indices) + crV (traced crop corners)
    v = video(cfg)
    step = jax.jit(lambda p, s, x, r: D.discriminate(p, s, x, r, cfg, train=True))
    conv = lambda t: tree_map(jnp.asarray, t)  # noqa: E731
    jp, js, jv = conv(params), conv(state), jnp.asarray(v)
    for seed in (3, 4):  # one compilation, two draws of randomness as traced inputs
        rnd = D.sample_randomness(cfg, np.random.default_rng(seed), B)
        want, want_state = D.discriminate(params, state, v, rnd, cfg, train=True)
        got, got_state = step(jp, js, jv, conv(rnd))
        for name in want:
            np.testing.assert_allclose(np.asarray(got[name]), want[name], rtol=0, atol=1e-5, err_msg=name)
        for path, u in tree_leaves(want_state):
            g = got_state
            for k in path:
                g = g[k]
            np.testing.assert_allclose(np.asarray(g), u, rtol=0, atol=1e-5, err_msg=str(path))
    assert step._cache_size() == 1


# ---------------------------------------------------------------------------
# errors


def test_errors_name_the_argument():
    cfg, params, state = model("stronger")
    v = video(cfg)
    rnd = D.sample_randomness(cfg, np.random.default_rng(0), B)
    with pytest.raises(ValueError, match="'video'"):
        D.discriminate(params, state, v[:, :4], rnd, cfg, train=False)  # T = 4, config says 5
    with pytest.raises(ValueError, match="'video'"):
        D.discriminate(params, state, v[:, :, :16, :16], rnd, cfg, train=False)
    with pytest.raises(ValueError, match="'params'.*dF, crV, dV"):
        D.discriminate({"dF": params["dF"]}, state, v, rnd, cfg, train=False)
    with pytest.raises(ValueError, match="'randomness'.*'offsets'"):
        D.discriminate(params, state, v, {"idx": rnd["idx"]}, cfg, train=False)
    with pytest.raises(ValueError, match=r"randomness\['idx'\]"):
        D.discriminate(params, state, v, {**rnd, "idx": rnd["idx"][:, :1]}, cfg, train=False)  # (B, 1), K = 2
    with pytest.raises(TypeError, match=r"randomness\['offsets'\].*integer"):
        D.discriminate(params, state, v, {**rnd, "offsets": rnd["offsets"].astype(np.float32)}, cfg, train=False)
    with pytest.raises(ValueError, match="'idx'.*\\[0, 5\\)"):
        D.discriminate(params, state, v, {**rnd, "idx": np.array([[0, 5], [1, 2]])}, cfg, train=False)
    with pytest.raises(ValueError, match="'offsets'.*0 <= y <= 16"):
        D.discriminate(params, state, v, {**rnd, "offsets": np.array([[17, 0], [0, 0]])}, cfg, train=False)
    with pytest.raises(TypeError, match="'randomness'"):
        D.discriminate(params, state, v, [rnd["idx"]], cfg, train=False)
    with pytest.raises(ValueError, match="'class_ids'"):
        D.discriminate(params, state, v, rnd, cfg, train=False, class_ids=np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="'config'"):
        D.discriminate(params, state, v, rnd, {"decomposition": "stronger"}, train=False)
    with pytest.raises(TypeError, match="'rng'"):
        D.init_discriminator(cfg, 0)
    with pytest.raises(ValueError, match="'batch'"):
        D.sample_randomness(cfg, np.random.default_rng(0), 0)
    with pytest.raises(ValueError, match="'name'"):
        D.input_shape(cfg, "V")


def test_config_errors():
    with pytest.raises(ValueError, match="decomposition"):
        get_config("tiny", decomposition="triple")
    with pytest.raises(ValueError, match="'K'"):
        get_config("tiny", K=6)  # T = 2 + 3 = 5 frames
    with pytest.raises(ValueError, match="resolution"):
        get_config("tiny", resolution=36)
    with pytest.raises(ValueError, match="'s'"):
        get_config("tiny", s=4)  # 32 / 4 = 8 is not divisible by 16 (four poolings)
    with pytest.raises(ValueError, match="'name'"):
        D.init_discriminator("huge", np.random.default_rng(0))


def test_encoder_errors():
    cfg = get_config("tiny")
    params, state = D.init_encoder(cfg, np.random.default_rng(0))
    with pytest.raises(ValueError, match="'cond_frames'.*3 channels"):
        D.encode(params, state, np.zeros((B, 2, 32, 32, 1), np.float32), train=False)
    with pytest.raises(ValueError, match="'cond_frames'.*divisible by 8"):
        D.encode(params, state, np.zeros((B, 2, 20, 20, 3), np.float32), train=False)
    with pytest.raises(ValueError, match="'cond_frames'"):
        D.encode(params, state, np.zeros((2, 32, 32, 3), np.float32), train=False)
    with pytest.raises(ValueError, match="'params'"):
        D.encode({"block0": params["block0"]}, state, np.zeros((B, 2, 32, 32, 3), np.float32), train=False)


# ---------------------------------------------------------------------------
# summary: parameter and pixel counts


def test_shape_only_counts_match_initialised_trees():
    for decomposition in ("stronger", "mocogan"):  # together: dF, crV, dV, F, clV
        cfg, params, _ = model(decomposition)
        shapes = D.discriminator_shapes(cfg)
        assert [(p, tuple(a.shape)) for p, a in tree_leaves(params)] == list(tree_leaves(shapes))
    for decomposition in CONFIG_DECOMPOSITIONS:
        assert set(D.discriminator_shapes(get_config("tiny", decomposition=decomposition))) == set(
            D.DECOMPOSITIONS[decomposition])
    cfg = get_config("tiny")
    params, _ = D.init_encoder(cfg, np.random.default_rng(0))
    assert [(p, tuple(a.shape)) for p, a in tree_leaves(params)] == list(tree_leaves(D.encoder_shapes(cfg)))
    assert summary.param_count(params) == summary.param_count(D.encoder_shapes(cfg))


def test_paper_large_param_counts_by_hand():
    # d_ch 120, widths 120, 240, 480, 960, 1920; 3 input channels; a conv k x k (x k) has k^d*c_in*c_out + c_out.
    # 2-D blocks (conv1 3x3, conv2 3x3, shortcut 1x1):
    #   block0: 27*120+120 = 3,360;      9*120*120+120 = 129,720;     3*120+120 = 480        -> 133,560
    #   block1: 9*120*240+240 = 259,440; 9*240*240+240 = 518,640;     120*240+240 = 29,040   -> 807,120
    #   block2: 1,037,280 + 2,074,080 + 115,680                                              -> 3,227,040
    #   block3: 4,148,160 + 8,295,360 + 461,760                                              -> 12,905,280
    #   block4: 16,590,720 + 33,179,520 + 1,845,120                                          -> 51,615,360
    #   head: linear 1920+1, embedding 1x1920                                                -> 3,841
    # frame D: 68,692,201; E (blocks 0-2): 133,560 + 807,120 + 3,227,040 = 4,167,720.
    # 3-D first two blocks: block0 81*120+120 + 27*120*120+120 + 480 = 9,840 + 388,920 + 480 = 399,240;
    #   block1 27*120*240+240 + 27*240*240+240 + 29,040 = 777,840 + 1,555,440 + 29,040 = 2,362,320
    #   video D: 68,692,201 - 133,560 - 807,120 + 399,240 + 2,362,320 = 70,513,081.
    counts = summary.model_param_counts("paper_large")
    assert counts["dF"] == 68_692_201
    assert counts["crV"] == counts["dV"] == 70_513_081
    assert counts["D"] == 68_692_201 + 2 * 70_513_081
    assert counts["E"] == 4_167_720
    cfg = get_config("paper_large", decomposition="mocogan")
    assert summary.model_param_counts(cfg)["F"] == 68_692_201  # F and dF share the network, only inputs differ


def test_pixels_per_video_by_hand():
    # paper_large: H = W = 64, T = 5 + 11 = 16, K = 8, s = 2
    big = get_config("paper_large")
    assert summary.pixels_per_video(big) == {"dF": 8 * 32 * 32, "crV": 16 * 32 * 32, "dV": 16 * 32 * 32,
                                             "total": 8192 + 16384 + 16384}
    assert summary.pixels_per_video(big.replace(decomposition="dvdgan_fp")) == {
        "F": 8 * 64 * 64, "dV": 16 * 32 * 32, "total": 32768 + 16384}
    assert summary.pixels_per_video(big.replace(decomposition="faster"))["total"] == (8 + 16) * 32 * 32
    totals = summary.decomposition_pixels(big)
    assert totals["dvdgan_fp"] == 49_152 and totals["faster"] == 24_576
    assert totals["faster"] < totals["dvdgan_fp"]  # section 3.1
    assert totals["clip"] == 16 * 64 * 64 and totals["mocogan"] == 8 * 64 * 64 + 16 * 64 * 64
    assert totals["cropped_downsampled"] == 2 * 16 * 32 * 32
    assert summary.pixels_per_video(big.replace(decomposition="mocogan", K=1))["F"] == 64 * 64


def test_describe_paper_large_quotes_counts_and_section_3_1():
    text = summary.describe("paper_large")
    for needle in ("68,692,201", "70,513,081", "4,167,720", "8*64*64 + 16*32*32", "49,152",
                   "(8 + 16)*32*32 = 24,576", "faster processes fewer pixels per video than dvdgan_fp"):
        assert needle in text, needle


def test_generator_count_shape_only_equals_real_init():
    generator = pytest.importorskip("trivd_core.generator")
    cfg = get_config("tiny")
    params, _ = generator.init_generator(cfg, np.random.default_rng(0))
    counts = summary.model_param_counts(cfg)
    assert counts["G"] == summary.param_count(params["G"])
    assert counts["E"] == summary.param_count(params["E"])
    assert "G" in summary.describe(cfg)


def test_param_count_leaves():
    assert summary.param_count({"a": np.zeros((2, 3)), "b": {"c": (4, 5), "d": np.zeros(())}}) == 6 + 20 + 1
    with pytest.raises(TypeError, match="'params'"):
        summary.param_count({"a": "x"})
