"""The encoder E of TrIVD-GAN-FP (appendix A): the spatial discriminator network on the conditioning frames.

"An encoder E, identical to the spatial discriminator network, is applied to the
conditioning frames" framewise; the generator reads its block outputs at the resolutions
of its three recurrent units, ``resolution // 8``, ``// 4``, ``// 2``, i.e. the outputs of
blocks 2, 1 and 0.  E therefore holds only those three blocks (blocks 3-4 and the head
would receive no gradient).  Its parameters and state live inside G's
(``params["E"]``), so one optimiser trains E and G together.

Parameters ``{"block0", "block1", "block2"}``, each ``{"conv1", "conv2", "conv_sc"}``
of ``{"w", "b"}``; state the same keys, each ``{"u"}`` (spectral norm on every conv).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import spec
from ._validate import at_the_door, check_array
from .configs import as_config
from .dblocks import block_spec, dblock, n_blocks, widths

__all__ = ["ENCODER_BLOCKS", "encoder_channels", "encoder_shapes", "init_encoder", "encode"]

#: Blocks of the encoder: the outputs at resolution/2, /4, /8 (appendix A).
ENCODER_BLOCKS = 3


def _check_rng(fn: str, rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}(): argument 'rng' must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
                        f"got {type(rng).__name__}")


def _encoder_spec(config) -> dict:
    chans = widths(config)[:ENCODER_BLOCKS]
    c_in = config.channels
    out = {}
    for i, c_out in enumerate(chans):
        out[f"block{i}"] = block_spec(c_in, c_out, conv3d=False, pool=True)
        c_in = c_out
    return out


def encoder_channels(config) -> dict[int, int]:
    """``{resolution: channels}`` of the encoder features given to the generator's stages."""
    config = as_config("encoder_channels", config)
    chans = widths(config)
    return {config.resolution // 2 ** (i + 1): chans[i] for i in range(ENCODER_BLOCKS)}


def encoder_shapes(config) -> dict:
    """Parameter shapes of :func:`init_encoder` (shape tuples as leaves), without allocating."""
    return spec.shapes(_encoder_spec(as_config("encoder_shapes", config)))


def init_encoder(config, rng: np.random.Generator, *, dtype=np.float32) -> tuple[dict, dict]:
    """Parameters and state of the encoder E: the first three blocks of the spatial D network.

    Returns ``({"block0", "block1", "block2"}, matching state)`` as NumPy arrays; widths
    ``d_ch * d_widths[i]``, spectral norm on every conv (appendix A).
    """
    fn = "init_encoder"
    config = as_config(fn, config)
    _check_rng(fn, rng)
    return spec.init(_encoder_spec(config), rng, dtype)


@at_the_door
def encode(params, state, cond_frames, *, train: bool):
    """Encoder E (appendix A): the spatial D network applied framewise to the conditioning frames.

    cond_frames: ``(B, T_cond, H, W, C)``.  Returns ``(feats, state)`` with ``feats`` a dict
    ``{H // 2: (B, T_cond, H/2, W/2, c0), H // 4: (..., c1), H // 8: (..., c2)}`` of the raw
    outputs (residual sums, before any ReLU) of blocks 0, 1 and 2, ``c_i = d_ch * d_widths[i]``.
    The generator folds time into channels and compresses each with a conv to the initial
    state of its recurrent unit at that resolution.
    """
    fn = "encode"
    xp = check_array(fn, "cond_frames", cond_frames, ("B", "T_cond", "H", "W", "C"))
    if not isinstance(params, Mapping) or n_blocks(params) != ENCODER_BLOCKS:
        raise ValueError(f"{fn}(): argument 'params' must be the encoder tree of init_encoder "
                         f"(keys block0..block{ENCODER_BLOCKS - 1})")
    c_in = params["block0"]["conv1"]["w"].shape[2]
    B, T, H, W, C = cond_frames.shape
    if C != c_in:
        raise ValueError(f"{fn}(): argument 'cond_frames' must have {c_in} channels (as the encoder's first conv), "
                         f"got shape {tuple(cond_frames.shape)}")
    step = 2**ENCODER_BLOCKS
    if H % step or W % step:
        raise ValueError(f"{fn}(): argument 'cond_frames' must have H and W divisible by {step} "
                         f"({ENCODER_BLOCKS} poolings by 2), got shape {tuple(cond_frames.shape)}")
    x = xp.reshape(cond_frames, (B * T, H, W, C))
    feats, new = {}, {}
    for i in range(ENCODER_BLOCKS):
        x, new[f"block{i}"] = dblock(params[f"block{i}"], state[f"block{i}"], x, index=i, pool=True, train=train)
        feats[H // 2 ** (i + 1)] = xp.reshape(x, (B, T, *x.shape[1:]))
    return feats, new
