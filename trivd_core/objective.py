"""The full GAN objective of TrIVD-GAN-FP (paper appendix E.1-E.2, Eqs. 13-14).

* :func:`d_loss` - the discriminator risk: Eq. 13 summed over the sub-discriminators of
  ``config.decomposition`` (Table 1),
  ``L_D = sum_n [ mean(relu(1 - D_n(x))) + mean(relu(1 + D_n(G(z)))) ]``.
* :func:`g_loss` - the generator risk: Eq. 14 summed over the sub-discriminators plus
  the orthogonality penalty on G's weights with weight ``config.ortho_weight`` (1e-4, E.2),
  ``L_G = sum_n -mean(D_n([c ; G(c, z)])) + ortho_weight * sum_W ||W^T W * (1 - I)||_F^2``,
  plus, only when ``config.recon_weight = lambda > 0`` (not in the paper; every paper
  config has 0), an L1 reconstruction term ``lambda * mean|G(c, z) - x_future|`` over the
  predicted frames (the CPU demo's documented deviation, docs/training.md).

Conventions (for ports and the training loop):

* Every video the discriminators judge is ``[conditioning frames ; future frames]``
  ``(B, t_cond + t_pred, H, W, C)`` (appendix A); ``g_loss`` builds it from
  ``cond_frames`` and the generator's prediction.
* One ``randomness`` dict (frame indices, crop corners; see
  ``discriminator.sample_randomness``) is used for the real *and* the fake videos of a
  discriminator step, so both are judged through the same views.
* Real and fake videos go through the discriminators in two separate passes (not one
  concatenated batch): the mixed projection head (Eq. 15) couples the samples of a
  batch, and a joint pass would add fake samples' class terms to real scores.  Both
  passes start from the same state; spectral normalisation's power iteration depends
  only on the weights and ``u``, so the two passes produce the same new ``u`` and the
  state of the real pass is returned.
* ``d_loss`` stops the gradient into ``fake_video`` (``ops.stop_gradient``): the
  discriminator step never back-propagates into G.
* Means run over all outputs of each sub-discriminator (``(B, B, T')`` for the mixed
  head), then the per-sub-discriminator terms are summed with weight 1.
"""

from __future__ import annotations

from array_api_compat import array_namespace

from . import ops
from ._validate import at_the_door, check_array
from .configs import as_config
from .discriminator import check_randomness, discriminate, sub_discriminators
from .losses import d_hinge_loss, g_hinge_loss

__all__ = ["d_loss", "g_loss"]


@at_the_door
def d_loss(d_params, d_state, real_video, fake_video, randomness, config, *, train: bool = True, class_ids=None):
    """Discriminator loss: Eq. 13 summed over the sub-discriminators.

    real_video, fake_video: ``(B, t_cond + t_pred, H, W, C)`` (conditioning frames, then
    real resp. generated future frames); randomness: shared by both (see the module
    docstring).  Returns ``(loss, aux, d_state)`` with ``loss`` 0-d and ``aux`` a dict of
    0-d arrays: ``"d/<name>"`` (Eq. 13 for sub-discriminator ``name``), ``"real/<name>"``
    and ``"fake/<name>"`` (mean scores).
    """
    fn = "d_loss"
    config = as_config(fn, config)
    dims: dict[str, int] = {}
    xp = check_array(fn, "real_video", real_video, ("B", "T", "H", "W", "C"), dims)
    check_array(fn, "fake_video", fake_video, ("B", "T", "H", "W", "C"), dims)
    check_randomness(fn, randomness, sub_discriminators(config), dims["B"], config)
    fake_video = ops.stop_gradient(fake_video)
    real, new_state = discriminate(d_params, d_state, real_video, randomness, config, train=train, class_ids=class_ids)
    fake, _ = discriminate(d_params, d_state, fake_video, randomness, config, train=train, class_ids=class_ids)
    aux = {}
    total = None
    for name in real:
        term = d_hinge_loss(real[name], fake[name])
        aux[f"d/{name}"] = term
        aux[f"real/{name}"] = xp.mean(real[name])
        aux[f"fake/{name}"] = xp.mean(fake[name])
        total = term if total is None else total + term
    return total, aux, new_state


@at_the_door
def g_loss(g_params, g_state, d_params, d_state, cond_frames, z, randomness, config, *, train: bool = True,
           class_ids=None, target_frames=None):
    """Generator loss: Eq. 14 summed over the sub-discriminators + ``ortho_weight`` x orthogonal penalty.

    cond_frames: ``(B, t_cond, H, W, C)``; z: ``(B, z_dim)`` latents; randomness: the
    discriminators' explicit randomness.  G runs with ``train`` (batch statistics) and so
    do the discriminators (their spectral-norm vectors advance, as in BigGAN where D stays
    in training mode during the G step).

    Returns ``(loss, aux, states)`` with ``states = {"g": new g_state, "d": new d_state}``
    and ``aux`` holding ``"g/<name>"`` (Eq. 14 per sub-discriminator), ``"fake/<name>"``
    (mean score), ``"gan"`` (their sum) and ``"ortho"`` (the unweighted penalty), all 0-d.

    target_frames: ``(B, t_pred, H, W, C)`` the true future frames; required when
    ``config.recon_weight > 0``, then ``aux["recon"]`` is ``mean|G(c, z) - target_frames|``
    (unweighted) and ``loss`` includes ``recon_weight * aux["recon"]``.  Ignored otherwise.
    """
    from .generator import g_ortho_penalty, generate  # here: the generator module is the heavier import

    fn = "g_loss"
    config = as_config(fn, config)
    r = config.resolution
    check_array(fn, "cond_frames", cond_frames, (None, config.t_cond, r, r, config.channels))
    check_randomness(fn, randomness, sub_discriminators(config), cond_frames.shape[0], config)
    xp = array_namespace(cond_frames)
    frames, new_g_state = generate(g_params, g_state, cond_frames, z, train=train, class_ids=class_ids)
    video = xp.concat([cond_frames, frames], axis=1)
    scores, new_d_state = discriminate(d_params, d_state, video, randomness, config, train=train, class_ids=class_ids)
    aux = {}
    gan = None
    for name, s in scores.items():
        term = g_hinge_loss(s)
        aux[f"g/{name}"] = term
        aux[f"fake/{name}"] = xp.mean(s)
        gan = term if gan is None else gan + term
    ortho = g_ortho_penalty(g_params)
    aux["gan"] = gan
    aux["ortho"] = ortho
    loss = gan + config.ortho_weight * ortho
    if config.recon_weight > 0:
        if target_frames is None:
            raise ValueError(f"{fn}(): argument 'target_frames' (B, {config.t_pred}, {r}, {r}, {config.channels}) is "
                             f"required when config.recon_weight > 0 (got recon_weight={config.recon_weight})")
        check_array(fn, "target_frames", target_frames, (cond_frames.shape[0], config.t_pred, r, r, config.channels))
        aux["recon"] = xp.mean(xp.abs(frames - target_frames))
        loss = loss + config.recon_weight * aux["recon"]
    return loss, aux, {"g": new_g_state, "d": new_d_state}
