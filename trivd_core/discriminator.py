"""Discriminators and their input decompositions (paper appendix A, section 3.1, Table 1, E.1).

Network (appendix A: "almost identical to BigGAN's discriminator")
-----------------------------------------------------------------
Every sub-discriminator is the BigGAN D of BigGAN-PyTorch (``D_arch[64]``, ``D_wide``):
five residual blocks of widths ``d_ch * d_widths[i]`` (``d_widths = (1, 2, 4, 8, 16)``),
the first four average-pooling space by 2, then ReLU, a sum over space, and the head::

    block i:  h  = relu(x) if i > 0 else x        (no pre-activation in the first block)
              h  = conv2(relu(conv1(h)))          (3x3 convs, hidden width = output width)
              h  = pool(h)                        (blocks 0-3: 2x2 average pool of space)
              sc = pool(conv_sc(x)) if i > 0 else conv_sc(pool(x))   (1x1 conv, present when
                                                   the widths differ or the block pools)
              y  = h + sc

The shortcut order follows BigGAN-PyTorch's ``DBlock.shortcut``: with pre-activation
(blocks 1-4) conv then pool, without (block 0) pool then conv; both are linear maps
that commute, so only the cost differs.  All weights (convs, the head's linear map and
the class embedding) carry spectral normalisation (``nn.py``, one power iteration,
``state["u"]``); all are initialised orthogonally (E.2), biases zero.

Spatio-temporal discriminators (``clV``, ``dV``, ``crV``) replace *all* convolutions of
the first two blocks by 3-D ones (``3x3x3``, and ``1x1x1`` for the shortcut) acting on
``(B, T, H, W, C)``; pooling stays spatial, so time is kept.  The remaining blocks run
framewise with time folded into the batch.  Frame discriminators (``F``, ``dF``) are
framewise throughout.  After the blocks, ``h = sum_{space} relu(y)`` has shape
``(B, T', C)`` with ``T'`` the judged frames (``T`` for video discriminators, the ``K``
sampled frames for frame discriminators, treated as the "time" axis of the head).

Heads (appendix E.1, ``losses.py``)
-----------------------------------
* ``config.head == "mixed"`` (default): Eq. 15 on ``h (B, T', C)``; scores ``(B, B, T')``.
* ``config.head == "projection"``: the projection head on ``sum_t h`` ``(B, C)``;
  scores ``(B,)``.  (Summing features over ``T'`` first means the bias enters once.)

The class embedding ``y_embed = E[class_ids]`` comes from an SN-normalised table
``E (n_classes, C_last)`` stored as ``params["embed"]["w"]``; ``class_ids=None`` is the
dummy zero class of DVD-GAN-FP (appendix A): every sample uses row 0.

Sub-discriminators (section 3.1, Table 1) and decompositions
------------------------------------------------------------
With ``v = [conditioning frames ; predicted or real future frames]`` ``(B, T, H, W, C)``,
``T = t_cond + t_pred``::

    F    frame-level                 sample_frames(v, idx)               (B, K, H,   W,   C)
    dF   downsampled frame-level     downsample(sample_frames(v, idx), s) (B, K, H/s, W/s, C)
    clV  clip (whole video)          v                                   (B, T, H,   W,   C)
    dV   downsampled video           downsample(v, s)                    (B, T, H/s, W/s, C)
    crV  cropped video               crop(v, offsets, (H/s, W/s))        (B, T, H/s, W/s, C)

:data:`DECOMPOSITIONS` maps each name of Table 1 to its set.  All randomness is explicit:
``randomness = {"idx": (B, K) int, "offsets": (B, 2) int}`` (only the keys the
decomposition needs), drawn by :func:`sample_randomness`.

Encoder E (appendix A)
----------------------
E is the first three blocks of the spatial network (:mod:`trivd_core.encoder`; its
names are re-exported here).  The blocks themselves are :mod:`trivd_core.dblocks`.

Parameter and state trees
-------------------------
One network::

    params = {"block0": {"conv1": {"w", "b"}, "conv2": {"w", "b"}, "conv_sc": {"w", "b"}},
              ..., "block4": {...},
              "linear": {"w": (C_last, 1), "b": (1,)}, "embed": {"w": (n_classes, C_last)}}
    state  = the same keys, each layer {"u": (C_out,)}

``init_discriminator`` returns ``{name: network}`` for the sub-discriminators of
``config.decomposition`` (names as in Table 1: ``"F", "dF", "clV", "dV", "crV"``);
``init_encoder`` returns ``{"block0", "block1", "block2"}``.

API decisions
-------------
* ``discriminate(params, state, video, randomness, config, *, train, class_ids=None)``
  takes the config: ``s``, ``K`` and the head are not recoverable from array shapes.
  The network structure (2-D or 3-D convs, number of blocks, shortcuts) is read from
  the params tree, so ``encode`` needs no config.
* Frame indices and crop corners are drawn as NumPy ``int64`` (torch's gathers need
  64-bit indices; JAX without x64 converts them to ``int32``).  Their ranges are
  checked by ``video.py`` whenever the values are concrete (not under ``jax.jit``).
* The same randomness must be used for the real and the fake videos of a D step
  (``objective.d_loss`` does so).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from array_api_compat import array_namespace

from . import nn, ops
from . import spec as spec_lib
from ._validate import at_the_door, check_array, inside
from .configs import DECOMPOSITIONS, SUB_DISCRIMINATORS, Config, as_config
from .dblocks import POOLING_BLOCKS, TEMPORAL_BLOCKS, block_spec, dblock, n_blocks, widths
from .encoder import ENCODER_BLOCKS, _check_rng, encode, encoder_channels, encoder_shapes, init_encoder
from .losses import mixed_projection, projection
from .video import check_crop_offsets, check_frame_indices, crop, downsample, sample_frames

__all__ = [
    "SUB_DISCRIMINATORS",
    "DECOMPOSITIONS",
    "TEMPORAL_BLOCKS",
    "ENCODER_BLOCKS",
    "sub_discriminators",
    "input_shape",
    "init_discriminator",
    "discriminate",
    "sample_randomness",
    "discriminator_shapes",
    "init_encoder",
    "encode",
    "encoder_channels",
    "encoder_shapes",
]



# ---------------------------------------------------------------------------
# config helpers


def sub_discriminators(config) -> tuple[str, ...]:
    """The sub-discriminator names of ``config.decomposition`` (Table 1)."""
    config = as_config("sub_discriminators", config)
    return DECOMPOSITIONS[config.decomposition]


def _input_hw(config: Config, name: str) -> int:
    """Frame size a sub-discriminator sees: ``H`` for F / clV, ``H/s`` for dF / dV / crV."""
    return config.resolution if name in ("F", "clV") else config.resolution // config.s


def input_shape(config, name: str, batch: int = 1) -> tuple[int, int, int, int, int]:
    """Shape ``(B, T', h, w, C)`` of the input of sub-discriminator ``name`` (see the module docstring)."""
    config = as_config("input_shape", config)
    if name not in SUB_DISCRIMINATORS:
        raise ValueError(f"input_shape(): argument 'name' must be one of {', '.join(SUB_DISCRIMINATORS)}; got {name!r}")
    t = config.K if SUB_DISCRIMINATORS[name] == "frame" else config.t_total
    r = _input_hw(config, name)
    return (batch, t, r, r, config.channels)


# ---------------------------------------------------------------------------
# layer specs: one description drives both initialisation and shape-only counting


def _net_spec(config: Config, kind: str) -> dict:
    chans = widths(config)
    c_in = config.channels
    spec: dict = {}
    for i, c_out in enumerate(chans):
        spec[f"block{i}"] = block_spec(
            c_in, c_out, conv3d=(kind == "video" and i < TEMPORAL_BLOCKS), pool=i < POOLING_BLOCKS
        )
        c_in = c_out
    spec["linear"] = spec_lib.linear(c_in, 1)
    spec["embed"] = spec_lib.linear(config.n_classes, c_in, bias=False)
    return spec


# ---------------------------------------------------------------------------
# the network


def _fold(xp, x):
    B, T = x.shape[0], x.shape[1]
    return xp.reshape(x, (B * T, *x.shape[2:])), B, T


def _features(params, state, x, *, train: bool):
    """Blocks, ReLU and spatial sum: ``(B, T', h, w, C) -> (B, T', C_last)`` and the new block states."""
    xp = array_namespace(x)
    new = {}
    B, T = x.shape[0], x.shape[1]
    folded = False
    for i in range(n_blocks(params)):
        p, st = params[f"block{i}"], state[f"block{i}"]
        if not folded and p["conv1"]["w"].ndim == 4:
            x, _, _ = _fold(xp, x)
            folded = True
        x, new[f"block{i}"] = dblock(p, st, x, index=i, pool=i < POOLING_BLOCKS, train=train)
    if not folded:
        x, _, _ = _fold(xp, x)
    h = xp.sum(ops.relu(x), axis=(1, 2))  # (B*T', C)
    return xp.reshape(h, (B, T, h.shape[-1])), new


def _head(params, state, h, y_embed_ids, *, head: str, train: bool):
    xp = array_namespace(h)
    new = {}
    w, new["linear"] = nn.sn_weight(params["linear"], state["linear"], train=train)
    table, new["embed"] = nn.sn_weight(params["embed"], state["embed"], train=train)
    B, C = h.shape[0], h.shape[-1]
    if y_embed_ids is None:
        y_embed = xp.broadcast_to(table[0:1, :], (B, C))
    else:
        y_embed = xp.take(table, y_embed_ids, axis=0)
    lin = {"w": w, "b": params["linear"]["b"]}
    if head == "mixed":
        return mixed_projection(h, y_embed, lin), new
    return projection(xp.sum(h, axis=1), y_embed, lin), new


def _sub_input(name: str, video, randomness, config: Config):
    if name == "F":
        return sample_frames(video, randomness["idx"])
    if name == "dF":
        return downsample(sample_frames(video, randomness["idx"]), config.s)
    if name == "clV":
        return video
    if name == "dV":
        return downsample(video, config.s)
    r = config.resolution // config.s
    return crop(video, randomness["offsets"], (r, r))


# ---------------------------------------------------------------------------
# public API: discriminators


def discriminator_shapes(config) -> dict:
    """Parameter shapes of :func:`init_discriminator` without allocating anything.

    Same nested layout as the params tree, with shape tuples as leaves (use
    ``summary.param_count`` to count them).
    """
    config = as_config("discriminator_shapes", config)
    return {name: spec_lib.shapes(_net_spec(config, SUB_DISCRIMINATORS[name])) for name in sub_discriminators(config)}


def init_discriminator(config, rng: np.random.Generator, *, dtype=np.float32) -> tuple[dict, dict]:
    """Parameters and state of every sub-discriminator of ``config.decomposition``.

    Returns ``(params, state)`` = ``({name: network}, {name: network_state})`` as NumPy
    arrays (see the module docstring for one network's layout).  Networks are
    initialised in the order of :data:`DECOMPOSITIONS` from the one ``rng``.
    """
    fn = "init_discriminator"
    config = as_config(fn, config)
    _check_rng(fn, rng)
    params, state = {}, {}
    for name in sub_discriminators(config):
        params[name], state[name] = spec_lib.init(_net_spec(config, SUB_DISCRIMINATORS[name]), rng, dtype)
    return params, state


def sample_randomness(config, rng: np.random.Generator, batch: int) -> dict:
    """Draw the explicit randomness of one discriminator pass (NumPy ``int64``).

    * ``"idx"`` ``(batch, K)`` (only if the decomposition has F or dF): for each sample,
      ``K`` distinct frame indices of ``[0, t_cond + t_pred)``, drawn uniformly without
      replacement and sorted ascending;
    * ``"offsets"`` ``(batch, 2)`` (only if it has crV): top-left corners ``(y, x)`` of the
      ``H/s x W/s`` crop, each uniform in ``[0, H - H/s]``.

    Use the same dict for the real and the fake videos of a discriminator step.
    """
    fn = "sample_randomness"
    config = as_config(fn, config)
    _check_rng(fn, rng)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"{fn}(): argument 'batch' must be a positive int, got {batch!r}")
    names = sub_discriminators(config)
    out = {}
    if "F" in names or "dF" in names:
        T = config.t_total
        keys = rng.random((batch, T))
        out["idx"] = np.sort(np.argsort(keys, axis=1)[:, : config.K], axis=1).astype(np.int64)
    if "crV" in names:
        r = config.resolution // config.s
        out["offsets"] = rng.integers(0, config.resolution - r + 1, size=(batch, 2)).astype(np.int64)
    return out


def check_randomness(fn: str, randomness, names, batch: int, config: Config) -> None:
    """The keys, shapes, dtypes and (at the door, for concrete values) the ranges of ``randomness``."""
    if not isinstance(randomness, Mapping):
        raise TypeError(f"{fn}(): argument 'randomness' must be a dict with keys 'idx' and/or 'offsets', "
                        f"got {type(randomness).__name__}")
    needed = []
    if "F" in names or "dF" in names:
        needed.append(("idx", (batch, config.K)))
    if "crV" in names:
        needed.append(("offsets", (batch, 2)))
    for key, shape in needed:
        if key not in randomness:
            raise ValueError(f"{fn}(): argument 'randomness' must have key {key!r} for decomposition "
                             f"{config.decomposition!r} (sub-discriminators {', '.join(names)}); "
                             f"found {sorted(randomness)}")
        check_array(fn, f"randomness[{key!r}]", randomness[key], shape, integer=True)
        if not inside():  # the ranges sample_frames / crop would check, here at the door
            r = config.resolution
            if key == "idx":
                check_frame_indices(fn, randomness[key], config.t_total, name="randomness['idx']")
            else:
                check_crop_offsets(fn, randomness[key], (r, r), (r // config.s, r // config.s),
                                   name="randomness['offsets']")


@at_the_door
def discriminate(params, state, video, randomness, config, *, train: bool, class_ids=None):
    """Score ``video`` with every sub-discriminator of ``config.decomposition``.

    params, state: from :func:`init_discriminator` (converted to the namespace of
    ``video``); video: ``(B, t_cond + t_pred, H, W, C)``, the conditioning frames followed
    by the real or predicted frames; randomness: ``{"idx": (B, K) int, "offsets": (B, 2)
    int}`` (the keys the decomposition needs, see :func:`sample_randomness`); config:
    the model's :class:`Config` (it fixes ``s``, ``K`` and the head); class_ids:
    ``(B,)`` integer labels in ``[0, n_classes)`` or None for the dummy zero class.

    Returns ``(scores, state)`` with ``scores[name]`` of shape ``(B, B, T')`` for the
    mixed head (``T' = K`` for F/dF, ``t_cond + t_pred`` for clV/dV/crV) or ``(B,)`` for
    the projection head, and the state with updated spectral-norm vectors when ``train``.
    """
    fn = "discriminate"
    config = as_config(fn, config)
    r = config.resolution
    check_array(fn, "video", video, (None, config.t_total, r, r, config.channels))
    B = video.shape[0]
    names = sub_discriminators(config)
    for what, tree in (("params", params), ("state", state)):
        if not isinstance(tree, Mapping) or set(tree) != set(names):
            found = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
            raise ValueError(f"{fn}(): argument '{what}' must hold exactly the sub-discriminators "
                             f"{', '.join(names)} of decomposition {config.decomposition!r}; found {found}")
    check_randomness(fn, randomness, names, B, config)
    if class_ids is not None:
        check_array(fn, "class_ids", class_ids, (B,), integer=True)
    scores, new_state = {}, {}
    for name in names:
        x = _sub_input(name, video, randomness, config)
        h, blocks_state = _features(params[name], state[name], x, train=train)
        scores[name], head_state = _head(params[name], state[name], h, class_ids, head=config.head, train=train)
        new_state[name] = {**state[name], **blocks_state, **head_state}
    return scores, new_state
