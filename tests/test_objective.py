"""The full GAN objective: Eq. 13 / Eq. 14 summed over the sub-discriminators, plus the orthogonal penalty (E.1-E.2).

Expected values are recomputed directly from the discriminator scores (with
``losses.d_hinge_loss`` / ``g_hinge_loss`` and with the hinge written out in NumPy),
not taken from the objective's own output.

Tolerances: float32 losses are means of at most 50 O(1) scores plus a sum of three
terms; recomputing them in another order (float64 NumPy on the float32 scores) differs
by a few float32 ulps, so rtol 1e-6 / atol 1e-6.  Identical code paths are compared
exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from _test_helpers import tree_leaves, tree_map

from trivd_core import discriminator as D
from trivd_core import losses, objective, ops
from trivd_core.configs import get_config

B = 2


def setup(decomposition="stronger", seed=0, **overrides):
    cfg = get_config("tiny", decomposition=decomposition, **overrides)
    params, state = D.init_discriminator(cfg, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    shape = (B, cfg.t_total, cfg.resolution, cfg.resolution, cfg.channels)
    real = rng.uniform(-1, 1, shape).astype(np.float32)
    fake = rng.uniform(-1, 1, shape).astype(np.float32)
    rnd = D.sample_randomness(cfg, rng, B)
    return cfg, params, state, real, fake, rnd


def hinge_d(real, fake):
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    return np.mean(np.maximum(0.0, 1.0 - real)) + np.mean(np.maximum(0.0, 1.0 + fake))


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------
# d_loss


@pytest.mark.parametrize(("decomposition", "head"), [("stronger", "mixed"), ("dvdgan_fp", "projection")])
def test_d_loss_is_sum_of_eq13_over_sub_discriminators(decomposition, head):
    cfg, params, state, real, fake, rnd = setup(decomposition, head=head)
    loss, aux, new_state = objective.d_loss(params, state, real, fake, rnd, cfg)
    s_real, want_state = D.discriminate(params, state, real, rnd, cfg, train=True)
    s_fake, _ = D.discriminate(params, state, fake, rnd, cfg, train=True)
    names = D.DECOMPOSITIONS[decomposition]
    assert len(names) >= 2
    want = sum(losses.d_hinge_loss(s_real[n], s_fake[n]) for n in names)
    close(loss, want)
    close(loss, sum(hinge_d(s_real[n], s_fake[n]) for n in names))
    assert np.asarray(loss).shape == ()
    for n in names:
        close(aux[f"d/{n}"], hinge_d(s_real[n], s_fake[n]))
        close(aux[f"real/{n}"], np.mean(s_real[n]))
        close(aux[f"fake/{n}"], np.mean(s_fake[n]))
    for (path, u), (wpath, w) in zip(tree_leaves(new_state), tree_leaves(want_state)):
        assert path == wpath
        np.testing.assert_array_equal(u, w)


def test_d_loss_shares_randomness_between_real_and_fake():
    cfg, params, state, real, _, rnd = setup("stronger")
    loss, aux, _ = objective.d_loss(params, state, real, real, rnd, cfg)
    for n in ("dF", "crV", "dV"):
        assert aux[f"real/{n}"] == aux[f"fake/{n}"]  # the same views of the same video
    s, _ = D.discriminate(params, state, real, rnd, cfg, train=False)
    close(loss, sum(hinge_d(s[n], s[n]) for n in s))
    # with other randomness the frame and crop views (hence their scores) differ, so the check above is not vacuous
    other = {"idx": (rnd["idx"] + 1) % cfg.t_total, "offsets": (rnd["offsets"] + 3) % 17}
    s2, _ = D.discriminate(params, state, real, other, cfg, train=False)
    assert not np.allclose(s["dF"], s2["dF"]) and not np.allclose(s["crV"], s2["crV"])


def test_d_loss_judges_real_and_fake_in_separate_passes():
    # the mixed head couples the samples of a batch; real scores must not depend on the fake batch
    cfg, params, state, real, fake, rnd = setup("stronger")
    _, aux1, _ = objective.d_loss(params, state, real, fake, rnd, cfg)
    _, aux2, _ = objective.d_loss(params, state, real, -fake, rnd, cfg)
    for n in ("dF", "crV", "dV"):
        assert aux1[f"real/{n}"] == aux2[f"real/{n}"]
        assert aux1[f"fake/{n}"] != aux2[f"fake/{n}"]


def test_d_loss_eval_keeps_state():
    cfg, params, state, real, fake, rnd = setup("faster")
    _, _, new_state = objective.d_loss(params, state, real, fake, rnd, cfg, train=False)
    for (_, u), (_, w) in zip(tree_leaves(new_state), tree_leaves(state)):
        assert u is w


# ---------------------------------------------------------------------------
# g_loss


@pytest.fixture(scope="module")
def gen():
    generator = pytest.importorskip("trivd_core.generator")
    cfg = get_config("tiny")
    rng = np.random.default_rng(10)
    g_params, g_state = generator.init_generator(cfg, rng)
    d_params, d_state = D.init_discriminator(cfg, rng)
    cond = rng.uniform(-1, 1, (B, cfg.t_cond, cfg.resolution, cfg.resolution, cfg.channels)).astype(np.float32)
    z = rng.standard_normal((B, cfg.z_dim)).astype(np.float32)
    rnd = D.sample_randomness(cfg, rng, B)
    return generator, cfg, g_params, g_state, d_params, d_state, cond, z, rnd


def test_g_loss_is_sum_of_eq14_plus_orthogonal_penalty(gen):
    generator, cfg, gp, gs, dp, ds, cond, z, rnd = gen
    loss, aux, states = objective.g_loss(gp, gs, dp, ds, cond, z, rnd, cfg)
    frames, want_g_state = generator.generate(gp, gs, cond, z, train=True)
    assert frames.shape == (B, cfg.t_pred, 32, 32, 3)
    video = np.concatenate([cond, frames], axis=1)  # D judges [conditioning ; predicted]
    scores, want_d_state = D.discriminate(dp, ds, video, rnd, cfg, train=True)
    gan = sum(losses.g_hinge_loss(scores[n]) for n in scores)
    close(gan, sum(-np.mean(np.asarray(scores[n], np.float64)) for n in scores))
    ortho = generator.g_ortho_penalty(gp)
    assert cfg.ortho_weight == 1e-4
    close(loss, gan + 1e-4 * ortho)
    close(aux["gan"], gan)
    close(aux["ortho"], ortho)
    for n in scores:
        close(aux[f"g/{n}"], -np.mean(scores[n]))
        close(aux[f"fake/{n}"], np.mean(scores[n]))
    assert set(states) == {"g", "d"}
    for (p, u), (q, w) in zip(tree_leaves(states["d"]), tree_leaves(want_d_state)):
        assert p == q
        np.testing.assert_array_equal(u, w)
    np.testing.assert_array_equal(states["g"]["G"]["out_conv"]["u"], want_g_state["G"]["out_conv"]["u"])
    np.testing.assert_array_equal(states["g"]["E"]["block0"]["conv1"]["u"], want_g_state["E"]["block0"]["conv1"]["u"])


def test_g_loss_ortho_weight(gen):
    generator, cfg, gp, gs, dp, ds, cond, z, rnd = gen
    loss0, aux0, _ = objective.g_loss(gp, gs, dp, ds, cond, z, rnd, cfg.replace(ortho_weight=0.0))
    loss1, aux1, _ = objective.g_loss(gp, gs, dp, ds, cond, z, rnd, cfg.replace(ortho_weight=0.5))
    assert loss0 == aux0["gan"]
    close(loss1 - loss0, 0.5 * aux1["ortho"])
    assert float(aux1["ortho"]) > 0  # orthogonal init is not exactly orthogonal after reshaping to (fan_in, C_out)


# ---------------------------------------------------------------------------
# gradients (torch autograd: every D weight is used; no gradient into G from the D step)


@pytest.fixture
def torch_detach():
    """torch with the backend's ``stop_gradient`` (detach) registered for the duration of one test."""
    torch = pytest.importorskip("torch")
    try:
        from array_api_compat import is_torch_namespace

        from backends.torch import _fast
    except ImportError as exc:  # pragma: no cover - the torch backend ships with the project
        pytest.skip(f"backends.torch not importable: {exc}")
    from array_api_compat import array_namespace

    added = ops.fast_paths(array_namespace(torch.zeros(1))).get("stop_gradient") is not _fast.stop_gradient
    if added:
        ops.register_fast_path("stop_gradient", is_torch_namespace, _fast.stop_gradient)
    yield torch
    if added:
        ops.unregister_fast_path("stop_gradient", _fast.stop_gradient)


def _torch_leaves(torch, tree, grad):
    return tree_map(lambda a: torch.tensor(a, requires_grad=grad), tree)


def test_d_loss_gradients_reach_every_weight_and_not_the_fake_video(torch_detach):
    torch = torch_detach
    cfg, params, state, real, fake, rnd = setup("stronger")
    tp = _torch_leaves(torch, params, True)
    treal = torch.tensor(real, requires_grad=True)
    tfake = torch.tensor(fake, requires_grad=True)
    loss, _, _ = objective.d_loss(tp, tree_map(torch.tensor, state), treal, tfake, tree_map(torch.tensor, rnd), cfg)
    close(loss.detach().numpy(), objective.d_loss(params, state, real, fake, rnd, cfg)[0])
    loss.backward()
    for path, p in tree_leaves(tp):
        g = p.grad
        assert g is not None and torch.all(torch.isfinite(g)), path
        if path[-1] == "w":  # biases of a layer followed by ReLU may legitimately be flat; weights must move
            assert float(g.abs().max()) > 0, path
    assert tfake.grad is None  # stop_gradient: the D step does not back-propagate into G
    assert treal.grad is not None


def test_g_loss_gradients_reach_generator_and_encoder(gen, torch_detach):
    torch = torch_detach
    generator, cfg, gp, gs, dp, ds, cond, z, rnd = gen
    tgp = _torch_leaves(torch, gp, True)
    conv = lambda t: tree_map(torch.tensor, t)  # noqa: E731
    loss, _, _ = objective.g_loss(tgp, conv(gs), conv(dp), conv(ds), torch.tensor(cond), torch.tensor(z),
                                  conv(rnd), cfg)
    close(loss.detach().numpy(), objective.g_loss(gp, gs, dp, ds, cond, z, rnd, cfg)[0])
    loss.backward()
    for path in [("E", "block0", "conv1", "w"), ("E", "block2", "conv2", "w"), ("G", "linear_in", "w"),
                 ("G", "stage0", "h0", "w"), ("G", "out_conv", "w")]:
        node = tgp
        for k in path:
            node = node[k]
        assert node.grad is not None and float(node.grad.abs().max()) > 0, path


# ---------------------------------------------------------------------------
# jax: the D step under jit with traced randomness, and its gradient


@pytest.mark.slow
def test_d_loss_under_jax_jit_and_grad(jax_fast):
    jax, jnp = jax_fast, jax_fast.numpy
    cfg, params, state, real, fake, rnd = setup("cropped")  # crV: traced crop corners
    want, _, _ = objective.d_loss(params, state, real, fake, rnd, cfg)

    def f(p, s, r, x, y):
        loss, aux, new = objective.d_loss(p, s, x, y, r, cfg)
        return loss, (aux, new)

    conv = lambda t: tree_map(jnp.asarray, t)  # noqa: E731
    (loss, (aux, _)), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(
        conv(params), conv(state), conv(rnd), jnp.asarray(real), jnp.asarray(fake)
    )
    close(loss, want)
    for path, g in tree_leaves(grads):
        assert np.all(np.isfinite(np.asarray(g))), path
    assert float(jnp.max(jnp.abs(grads["crV"]["block0"]["conv1"]["w"]))) > 0


# ---------------------------------------------------------------------------
# errors


def test_objective_errors(gen):
    generator, cfg, gp, gs, dp, ds, cond, z, rnd = gen
    real = np.zeros((B, cfg.t_total, 32, 32, 3), np.float32)
    with pytest.raises(ValueError, match="'fake_video'"):
        objective.d_loss(dp, ds, real, real[:, :4], rnd, cfg)
    with pytest.raises(ValueError, match="'cond_frames'"):
        objective.g_loss(gp, gs, dp, ds, cond[:, :1], z, rnd, cfg)  # tiny conditions on 2 frames
    with pytest.raises(ValueError, match="'randomness'"):
        objective.d_loss(dp, ds, real, real, {}, cfg)
    with pytest.raises(TypeError, match="'config'"):
        objective.d_loss(dp, ds, real, real, rnd, None)
