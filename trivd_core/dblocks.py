"""The BigGAN D residual network shared by the discriminators and the encoder E (appendix A).

A block (see :mod:`trivd_core.discriminator` for the whole network)::

    h  = relu(x) if i > 0 else x        (no pre-activation in the first block)
    h  = conv2(relu(conv1(h)))          (3x3 convs, hidden width = output width)
    h  = pool(h)                        (2x2 average pool of space, where the block pools)
    sc = pool(conv_sc(x)) if i > 0 else conv_sc(pool(x))   (1x1 conv where widths differ or it pools)
    y  = h + sc

Convolutions are 2-D or 3-D, read from the kernel's rank.  E is the first
:data:`~trivd_core.encoder.ENCODER_BLOCKS` blocks of the spatial network; the
discriminators are all five with a head.  Both describe their layers in the spec
language of :mod:`trivd_core.spec`.
"""

from __future__ import annotations

from . import nn, ops, spec

__all__ = ["TEMPORAL_BLOCKS", "POOLING_BLOCKS", "block_spec", "widths", "dblock", "n_blocks"]

#: Blocks whose convolutions are 3-D in the spatio-temporal discriminators (appendix A).
TEMPORAL_BLOCKS = 2
#: Blocks that average-pool space by 2 (BigGAN D: the first four of five).
POOLING_BLOCKS = 4


def block_spec(c_in: int, c_out: int, *, conv3d: bool, pool: bool) -> dict:
    """The layers of one D block (the shortcut conv only where the widths differ or the block pools)."""
    layer = spec.conv3d if conv3d else spec.conv
    out = {"conv1": layer(c_in, c_out, 3), "conv2": layer(c_out, c_out, 3)}
    if c_in != c_out or pool:
        out["conv_sc"] = layer(c_in, c_out, 1)
    return out


def widths(config) -> list[int]:
    """The five block widths ``d_ch * d_widths[i]``."""
    return [config.d_ch * m for m in config.d_widths]


def dblock(p, st, x, *, index: int, pool: bool, train: bool):
    """BigGAN D residual block (see the module docstring); 2-D or 3-D from the kernel rank."""
    three_d = p["conv1"]["w"].ndim == 5
    conv = nn.conv3d if three_d else nn.conv
    new = {}
    h = ops.relu(x) if index > 0 else x
    h, new["conv1"] = conv(p["conv1"], st["conv1"], h, train=train)
    h, new["conv2"] = conv(p["conv2"], st["conv2"], ops.relu(h), train=train)
    if pool:
        h = ops.avg_pool(h, 2)
    sc = x
    if "conv_sc" in p:
        if index > 0:  # pre-activation block: conv then pool
            sc, new["conv_sc"] = conv(p["conv_sc"], st["conv_sc"], sc, train=train)
            if pool:
                sc = ops.avg_pool(sc, 2)
        else:  # first block: pool then conv
            if pool:
                sc = ops.avg_pool(sc, 2)
            sc, new["conv_sc"] = conv(p["conv_sc"], st["conv_sc"], sc, train=train)
    elif pool:
        sc = ops.avg_pool(sc, 2)
    return h + sc, new


def n_blocks(params) -> int:
    """The number of ``block{i}`` entries of a network's params."""
    n = 0
    while f"block{n}" in params:
        n += 1
    return n
