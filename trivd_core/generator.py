r"""The generator G of TrIVD-GAN-FP (paper appendix A, section 3.2, appendix E.2), array API.

Structure (appendix A, DVD-GAN-FP / BigGAN), for a config with resolution ``R``,
``r0 = R/8``, stage widths ``c_i = g_ch * g_widths[i]`` (``i = 0, 1, 2``) and
``c_3 = g_ch * FINAL_WIDTH``::

    cond  = [z ; onehot(class_ids) @ class_embed]                 (B, z_dim + class_dim)
    x     = reshape(cond @ W_in + b_in, (B, r0, r0, c_0))        W_in: no spectral norm
    x     = repeat x over the T_pred time steps                  (B, T, r0, r0, c_0)
    for stage i = 0, 1, 2 at resolution r = r0 * 2^i:
        h_0   = ReLU(conv3x3(E features at r, time folded into channels))  (B, r, r, c_i)
        h_t   = cell_step(cell, h_{t-1}, x_t)  for t = 1..T    (recurrent unit, Eqs. 1-10 / F)
        y_t   = h_t (ConvLSTM: the hidden half of [h; c])
        y     = conv3x3(y)                                      framewise, -> c_i
        y     = GBlock(c_i -> c_i)(y)                            framewise
        x     = GBlock(c_i -> c_{i+1}, nearest upsample x2)(y)   framewise
    frames = tanh(conv3x3(ReLU(BN(x))))                           (B, T, R, R, channels)

BigGAN G residual block, with ``up`` the nearest x2 upsampling (identity in the
first block of a stage)::

    GBlock(x) = conv2(ReLU(CBN2(conv1(up(ReLU(CBN1(x))))))) + skip(up(x))

``conv1``/``conv2`` are 3x3 (``c_in -> c_out -> c_out``); ``skip`` is a 1x1 conv
present only when the block upsamples or changes width, otherwise the identity.
``CBN`` is :func:`layers.conditional_batch_norm` (``gain = 1 + affine(cond)``,
``bias = affine(cond)``, appendix A / E.2) with statistics per time step (over
``(B, H, W)`` for each ``t``); the final BN is unconditional with a learned gain and
bias (E.2).  Every weight except ``W_in`` and the class-embedding table is
spectrally normalised (appendix A; :mod:`trivd_core.nn`), including the affine maps
of the conditional BNs and every weight of the recurrent cells.  All weights are
initialised orthogonally, biases at zero (E.2).

The encoder E (appendix A) is :func:`trivd_core.encoder.encode`; its
parameters and state live inside G's (``params["E"]``, ``state["E"]``), so
``generate(params, state, cond_frames, z, *, train)`` is the whole conditional
generator and one optimiser (the generator's) trains E and G together.

Parameter / state layout (``kind`` is the cell name, e.g. ``"tsru_p"``)::

    params = {"E": <encoder params>,
              "G": {"class_embed": (n_classes, class_dim),
                    "linear_in": {"w": (z_dim + class_dim, r0*r0*c_0), "b"},
                    "stage{i}": {"h0":   {"w": (3, 3, T_cond*c_E, c_i), "b"},
                                 "rnn":  {kind: <init_cell(kind, c_i, c_i, cell_k) params>},
                                 "conv": {"w": (3, 3, c_cell_out, c_i), "b"},
                                 "block0": {"cbn1": CBN(c_i), "conv1", "cbn2": CBN(c_i), "conv2"},
                                 "block1": {"cbn1": CBN(c_i), "conv1", "cbn2": CBN(c_{i+1}),
                                            "conv2", "skip": {"w": (1, 1, c_i, c_{i+1}), "b"}}},
                    "out_bn":   {"gain": (c_3,), "bias": (c_3,)},
                    "out_conv": {"w": (3, 3, c_3, channels), "b"}}}
    CBN(C) = {"gain": {"w": (z_dim + class_dim, C), "b": (C,)}, "bias": {same}}

    state  = {"E": <encoder state>,
              "G": {"steps": (T_pred, 0) zero-size marker,
                    every spectrally-normalised layer above: {"u": (C_out,)}
                    (a CBN: {"gain": {"u"}, "bias": {"u"}}; a cell: the cell's
                    nested dict with every {"W", "b"} layer replaced by {"u"})},
              ["standing": {"stage{i}": {"block{j}": {"cbn1"|"cbn2": {"mean", "var"}}},
                            "out_bn": {"mean", "var"}}]}      (after accumulate_standing_stats)

Decisions where the paper is silent (the contract of this module)
-----------------------------------------------------------------
* **Static structure lives in the tree.**  ``generate`` takes no config: the cell kind
  is the single key of ``params["G"]["stage{i}"]["rnn"]``; resolution, widths,
  channels and ``z_dim`` are read from weight shapes; ``T_pred`` is the first axis of
  the data-free marker ``state["G"]["steps"]`` of shape ``(T_pred, 0)`` (a state tree
  holds arrays only, and a shape is static under ``jax.jit``).  ``t_pred=`` overrides it.
  :func:`generator_shapes` gives the layout with shape tuples as leaves, without
  drawing weights (parameter counts).
* **Widths.**  The recurrent unit of stage ``i`` has ``c_in = c_hidden = c_i``
  (ConvLSTM: the state ``[h; c]`` has ``c_i`` channels, ``c_i/2`` per half, and only
  the hidden half ``h`` goes on to the framewise conv).  The first G block keeps the
  width, the second maps ``c_i -> c_{i+1}`` while upsampling; the last stage ends at
  ``c_3 = g_ch * FINAL_WIDTH`` (``FINAL_WIDTH = 1``, as BigGAN's last G block).
* **Encoder features** ``(B, T_cond, r, r, c_E)`` are folded as
  ``(B, r, r, T_cond*c_E)`` with channel index ``t*c_E + c`` (time major) and
  compressed by the SN 3x3 conv ``h0`` to the cell's full state width, then ReLU
  (ConvLSTM: first half ``h_0``, second half ``c_0``).
* **Class features** are ``onehot(class_ids) @ class_embed`` (a linear map of the label,
  an embedding lookup written as a matmul so it runs on every namespace and under
  jit); ``class_ids=None`` is the dummy zero class.  Ids outside ``[0, n_classes)``
  give zero class features (not checked: a value check would be a host sync).  The
  table is orthogonally initialised and not spectrally normalised (BigGAN's shared
  embedding), like ``W_in``.
* **Batch statistics.**  ``train=True`` always uses the batch statistics (gradients
  flow through them).  ``train=False`` uses the standing statistics
  ``state["standing"]`` when present, otherwise the batch statistics.
  ``standing=True`` requires them (error if absent or in train mode);
  ``standing=False`` forces batch statistics.  BN ``eps`` is ``BN_EPS``.
* **Spectral norm** state (every ``u``) is updated only when ``train=True``
  (:func:`nn.sn_weight`); evaluation returns the state unchanged.
* **Orthogonal penalty** (E.2, :func:`g_ortho_penalty`): the sum of
  :func:`layers.orthogonal_penalty` over exactly the spectrally-normalised weights of
  G (the ones with a ``u`` in ``state["G"]``), i.e. every G weight except ``W_in`` and
  the class embedding.  E is a separate component in appendix A (the spatial
  discriminator network, which BigGAN does not penalise) and is not included.
* **Standing statistics** (E.2, :func:`accumulate_standing_stats`): G is run with batch
  statistics over the given batches, and for every BN layer the arithmetic mean over
  batches of the per-batch mean and of the per-batch (biased) variance is stored,
  per time step, shape ``(1, T_pred, 1, 1, C)``.  The spectral-norm vectors are not
  advanced by this pass, so standing statistics computed from one batch reproduce
  the training-mode output on that batch exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from array_api_compat import array_namespace, device

from . import cells, encoder, layers, nn, ops, spec
from ._validate import at_the_door, check_array
from .configs import as_config
from .latents import truncated_normal_latents
from .penalty import g_ortho_penalty
from .standing import BN_AXES, StatsSource

__all__ = [
    "BN_EPS",
    "FINAL_WIDTH",
    "N_STAGES",
    "init_generator",
    "generator_shapes",
    "generate",
    "accumulate_standing_stats",
    "truncated_normal_latents",
    "g_ortho_penalty",
]

#: Epsilon of every batch normalisation in G (``Config.bn_eps`` must equal it).
BN_EPS = 1e-5
#: Width multiplier of the last stage's output: ``c_3 = g_ch * FINAL_WIDTH``.
FINAL_WIDTH = 1
#: Three x2 upsampling stages from ``R/8`` to ``R`` (appendix A).
N_STAGES = 3


# ---------------------------------------------------------------------------
# init


def _check_config(fn, config):
    config = as_config(fn, config)
    if config.bn_eps != BN_EPS:
        raise ValueError(
            f"{fn}(): config field 'bn_eps' must be {BN_EPS} (generator.BN_EPS, the epsilon the generator's "
            f"batch norms use); got {config.bn_eps!r}"
        )
    return config


def _widths(config) -> list[int]:
    return [config.g_ch * m for m in config.g_widths] + [config.g_ch * FINAL_WIDTH]


def _cbn_spec(d, c):
    return {"gain": spec.linear(d, c), "bias": spec.linear(d, c)}


def _block_spec(d, c_in, c_out, *, upsample):
    out = {"cbn1": _cbn_spec(d, c_in), "conv1": spec.conv(c_in, c_out, 3), "cbn2": _cbn_spec(d, c_out),
           "conv2": spec.conv(c_out, c_out, 3)}
    if upsample or c_in != c_out:
        out["skip"] = spec.conv(c_in, c_out, 1)
    return out


def _g_spec(config) -> dict:
    """G's layers in initialisation order; one description drives init and shape-only counting."""
    c = _widths(config)
    d = config.z_dim + config.class_dim
    r0 = config.base_resolution
    kind = config.cell
    enc = encoder.encoder_channels(config)  # {resolution: channels} of E's features
    out: dict = {
        "class_embed": spec.table(config.n_classes, config.class_dim),
        "linear_in": spec.linear(d, r0 * r0 * c[0], sn=False),
    }
    for i in range(N_STAGES):
        out[f"stage{i}"] = {
            "h0": spec.conv(config.t_cond * enc[r0 * 2**i], c[i], 3),
            "rnn": {kind: spec.cell(kind, c[i], c[i], config.cell_k)},
            "conv": spec.conv(c[i] // 2 if kind == "convlstm" else c[i], c[i], 3),
            "block0": _block_spec(d, c[i], c[i], upsample=False),
            "block1": _block_spec(d, c[i], c[i + 1], upsample=True),
        }
    out["out_bn"] = spec.bn(c[3])
    out["out_conv"] = spec.conv(c[3], config.channels, 3)
    return out


def generator_shapes(config) -> dict:
    """Parameter shapes of :func:`init_generator` without allocating: ``{"E": ..., "G": ...}``.

    Same nested layout as the params tree, with shape tuples as leaves (for parameter
    counts, e.g. of ``paper_large``, whose weights take minutes to draw).
    """
    config = _check_config("generator_shapes", config)
    return {"E": encoder.encoder_shapes(config), "G": spec.shapes(_g_spec(config))}


def init_generator(config, rng):
    """Parameters and state of E and G for ``config`` (a ``Config`` or a name; layout in the module docstring).

    ``rng`` is a ``np.random.Generator``; E is drawn first
    (``encoder.init_encoder(config, rng)``), then G in a fixed order (the order of
    the layout), so a fixed seed gives identical NumPy weights for every backend.
    Weights are orthogonal (E.2), biases zero, BN gains one.  Returns
    ``(params, state)`` of NumPy arrays (float32); convert them with the backend once.
    """
    fn = "init_generator"
    config = _check_config(fn, config)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}(): argument 'rng' must be a numpy.random.Generator, got {type(rng).__name__}")
    dtype = np.float32
    enc_params, enc_state = encoder.init_encoder(config, rng)
    gp, gs = spec.init(_g_spec(config), rng, dtype)
    gs = {"steps": np.zeros((config.t_pred, 0), dtype=dtype), **gs}
    return {"E": enc_params, "G": gp}, {"E": enc_state, "G": gs}


# ---------------------------------------------------------------------------
# forward


def _fold(x):
    """``(B, T, H, W, C) -> (B*T, H, W, C)``: framewise processing folds time into the batch."""
    xp = array_namespace(x)
    B, T, H, W, C = x.shape
    return xp.reshape(x, (B * T, H, W, C))


def _unfold(y, B, T):
    xp = array_namespace(y)
    return xp.reshape(y, (B, T, *y.shape[1:]))


def _conv_t(p, s, x, *, train):
    """SN conv applied framewise to a video ``(B, T, H, W, C)``."""
    y, s = nn.conv(p, s, _fold(x), train=train)
    return _unfold(y, x.shape[0], x.shape[1]), s


def _cbn(p, s, x, cond, bn, path, *, train):
    pg, sg = p["gain"], s["gain"]
    pb, sb = p["bias"], s["bias"]
    wg, sg = nn.sn_weight(pg, sg, train=train)
    wb, sb = nn.sn_weight(pb, sb, train=train)
    mean, var = bn.stats(path, x)
    params = {"gain": {"w": wg, "b": pg["b"]}, "bias": {"w": wb, "b": pb["b"]}}
    y = layers.conditional_batch_norm(x, cond, params, axes=BN_AXES, eps=BN_EPS, mean=mean, var=var)
    return y, {"gain": sg, "bias": sb}


def _g_block(p, s, x, cond, bn, path, *, train, upsample):
    """BigGAN G block: conv2(ReLU(CBN2(conv1(up(ReLU(CBN1(x))))))) + skip(up(x))."""
    s = dict(s)
    h, s["cbn1"] = _cbn(p["cbn1"], s["cbn1"], x, cond, bn, (*path, "cbn1"), train=train)
    h = ops.relu(h)
    if upsample:
        h = ops.upsample_nearest(h, 2)
    h, s["conv1"] = _conv_t(p["conv1"], s["conv1"], h, train=train)
    h, s["cbn2"] = _cbn(p["cbn2"], s["cbn2"], h, cond, bn, (*path, "cbn2"), train=train)
    h = ops.relu(h)
    h, s["conv2"] = _conv_t(p["conv2"], s["conv2"], h, train=train)
    skip = ops.upsample_nearest(x, 2) if upsample else x
    if "skip" in p:
        skip, s["skip"] = _conv_t(p["skip"], s["skip"], skip, train=train)
    return h + skip, s


def _fold_time_into_channels(f):
    """``(B, T, r, r, c) -> (B, r, r, T*c)`` with channel index ``t*c + channel``."""
    xp = array_namespace(f)
    B, T, H, W, C = f.shape
    return xp.reshape(xp.permute_dims(f, (0, 2, 3, 1, 4)), (B, H, W, T * C))


def _stage(p, s, x, feat, cond, bn, name, *, train, warps=None):
    xp = array_namespace(x)
    s = dict(s)
    h, s["h0"] = nn.conv(p["h0"], s["h0"], _fold_time_into_channels(feat), train=train)
    h = ops.relu(h)
    (kind, cell_p), = p["rnn"].items()
    cell_sn, cell_s = nn.sn_cell(cell_p, s["rnn"][kind], train=train)
    s["rnn"] = {kind: cell_s}
    half = h.shape[-1] // 2
    outs = []
    steps = []
    for t in range(x.shape[1]):
        if warps is None:
            h = cells.cell_step(kind, cell_sn, h, x[:, t, ...])
        else:
            h, theta = cells.cell_step(kind, cell_sn, h, x[:, t, ...], return_warp=True)
            steps.append(theta)
        outs.append(h[..., :half] if kind == "convlstm" else h)
    if warps is not None:  # each entry of the cell's transformation theta, stacked over time on axis 1
        warps[name] = {key: xp.stack([theta[key] for theta in steps], axis=1) for key in steps[0]}
    y = xp.stack(outs, axis=1)
    y, s["conv"] = _conv_t(p["conv"], s["conv"], y, train=train)
    y, s["block0"] = _g_block(p["block0"], s["block0"], y, cond, bn, (name, "block0"), train=train, upsample=False)
    y, s["block1"] = _g_block(p["block1"], s["block1"], y, cond, bn, (name, "block1"), train=train, upsample=True)
    return y, s


def _get(fn, tree, path, what):
    node = tree
    for i, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            where = what + "".join(f"[{k!r}]" for k in path[:i])
            found = sorted(node) if isinstance(node, Mapping) else type(node).__name__
            raise ValueError(
                f"{fn}(): argument '{what}' must have key {key!r} at {where} (the layout of init_generator); "
                f"found {found}"
            )
        node = node[key]
    return node


def _structure(fn, params, state, t_pred):
    """Static facts read from the trees' keys and shapes (cell kind, T_pred, resolution, widths, z_dim, ...)."""
    for what, tree in (("params", params), ("state", state)):
        if not isinstance(tree, Mapping):
            raise TypeError(f"{fn}(): argument '{what}' must be the dict of init_generator, got {type(tree).__name__}")
        for key in ("E", "G"):
            _get(fn, tree, (key,), what)
    rnn = _get(fn, params, ("G", "stage0", "rnn"), "params")
    if not isinstance(rnn, Mapping) or len(rnn) != 1 or next(iter(rnn)) not in cells.KINDS:
        raise ValueError(
            f"{fn}(): params['G']['stage0']['rnn'] must hold exactly one cell, keyed by its kind "
            f"({', '.join(cells.KINDS)}); found keys {sorted(rnn) if isinstance(rnn, Mapping) else rnn!r}"
        )
    kind = next(iter(rnn))
    if t_pred is None:
        steps = _get(fn, state, ("G", "steps"), "state")
        t_pred = int(steps.shape[0])
    elif isinstance(t_pred, bool) or not isinstance(t_pred, int) or t_pred < 1:
        raise ValueError(f"{fn}(): argument 't_pred' must be None or a positive int, got {t_pred!r}")
    w_in = _get(fn, params, ("G", "linear_in", "w"), "params")
    table = _get(fn, params, ("G", "class_embed"), "params")
    c0 = _get(fn, params, ("G", "stage0", "conv", "w"), "params").shape[-1]
    r0 = math.isqrt(w_in.shape[1] // c0)
    channels = _get(fn, params, ("G", "out_conv", "w"), "params").shape[-1]
    z_dim = w_in.shape[0] - table.shape[1]
    return {
        "kind": kind, "t_pred": t_pred, "r0": r0, "R": r0 * 2**N_STAGES, "c0": c0, "channels": channels,
        "z_dim": z_dim, "n_classes": table.shape[0], "dtype": w_in.dtype, "w_in": w_in,
    }


def _check_inputs(fn, info, cond_frames, z, class_ids):
    xp = check_array(fn, "cond_frames", cond_frames)
    check_array(fn, "z", z)
    others = [z, info["w_in"]] + ([class_ids] if class_ids is not None else [])
    try:
        array_namespace(cond_frames, *others)
    except TypeError as e:
        raise TypeError(
            f"{fn}(): 'cond_frames', 'z', 'class_ids' and the arrays of 'params' must come from one array namespace "
            f"(convert the NumPy trees of init_generator with the backend first); {e}"
        ) from e
    R, C = info["R"], info["channels"]
    shape = tuple(cond_frames.shape)
    if len(shape) != 5 or shape[2] != R or shape[3] != R or shape[4] != C:
        raise ValueError(
            f"{fn}(): argument 'cond_frames' must be a 5-D array of shape (B, T_cond, {R}, {R}, {C}) "
            f"(conditioning frames at the generator's resolution {R} with {C} channels), got shape {shape}"
        )
    if cond_frames.dtype != info["dtype"]:
        raise TypeError(
            f"{fn}(): argument 'cond_frames' must have the dtype of the parameters ({info['dtype']}), "
            f"got {cond_frames.dtype}"
        )
    dims = {"B": shape[0]}
    check_array(fn, "z", z, ("B", info["z_dim"]), dims)
    if z.dtype != info["dtype"]:
        raise TypeError(f"{fn}(): argument 'z' must have the dtype of the parameters ({info['dtype']}), got {z.dtype}")
    if class_ids is not None:
        check_array(fn, "class_ids", class_ids, ("B",), dims, integer=True)
    return xp


def _forward(params, state, cond_frames, z, class_ids, *, train, standing, collect, t_pred, fn, warps=None):
    info = _structure(fn, params, state, t_pred)
    xp = _check_inputs(fn, info, cond_frames, z, class_ids)
    B, T = cond_frames.shape[0], info["t_pred"]
    g, gs = params["G"], dict(state["G"])

    # E on the conditioning frames (appendix A)
    feats, enc_state = encoder.encode(params["E"], state["E"], cond_frames, train=train)
    t_cond = cond_frames.shape[1]
    for i in range(N_STAGES):
        r = info["r0"] * 2**i
        fan = g[f"stage{i}"]["h0"]["w"].shape[2]
        c_e = feats[r].shape[-1]
        if t_cond * c_e != fan:
            raise ValueError(
                f"{fn}(): argument 'cond_frames' must hold T_cond={fan // c_e} conditioning frames "
                f"(stage {i} compresses T_cond*{c_e}={fan} encoder channels), got shape {tuple(cond_frames.shape)}"
            )

    # cond = [z ; class features], first features repeated over time
    if class_ids is None:
        class_ids = xp.zeros((B,), dtype=xp.int32, device=device(z))
    classes = xp.arange(info["n_classes"], dtype=class_ids.dtype, device=device(z))
    onehot = xp.astype(class_ids[:, None] == classes[None, :], z.dtype)
    cond = xp.concat([z, xp.matmul(onehot, g["class_embed"])], axis=1)
    x0, _ = nn.linear(g["linear_in"], {}, cond, train=train)
    x0 = xp.reshape(x0, (B, 1, info["r0"], info["r0"], info["c0"]))
    x = xp.broadcast_to(x0, (B, T, info["r0"], info["r0"], info["c0"]))

    bn = StatsSource(standing, collect)
    for i in range(N_STAGES):
        name = f"stage{i}"
        x, gs[name] = _stage(g[name], gs[name], x, feats[info["r0"] * 2**i], cond, bn, name, train=train,
                             warps=warps)

    mean, var = bn.stats(("out_bn",), x)
    x = layers.batch_norm(x, g["out_bn"]["gain"], g["out_bn"]["bias"], BN_AXES, eps=BN_EPS, mean=mean, var=var)
    y, gs["out_conv"] = _conv_t(g["out_conv"], gs["out_conv"], ops.relu(x), train=train)
    new_state = {**state, "E": enc_state, "G": gs}
    return xp.tanh(y), new_state


@at_the_door
def generate(params, state, cond_frames, z, *, train: bool, class_ids=None, standing: bool | None = None,
             t_pred: int | None = None, return_warps: bool = False):
    """Predict ``T_pred`` frames after ``cond_frames`` (appendix A); returns ``(frames, new_state)``.

    Args:
        params, state: from :func:`init_generator`, converted to one array namespace.
        cond_frames: ``(B, T_cond, R, R, C)`` conditioning frames in ``[-1, 1]``.
        z: ``(B, z_dim)`` latents (``truncated_normal_latents`` for truncation).
        train: batch statistics and spectral-norm power iterations that update
            ``state`` (training); ``False`` leaves ``state`` unchanged.
        class_ids: ``(B,)`` integer labels, default the dummy zero class.
        standing: ``None`` - in evaluation use ``state["standing"]`` if present, else
            batch statistics; ``True`` - require standing statistics (evaluation only);
            ``False`` - always batch statistics.
        t_pred: number of frames to predict; default ``state["G"]["steps"].shape[0]``
            (the config's ``t_pred``).
        return_warps: also return every stage's recurrent transformation (for the
            motion field of Fig. 3, :mod:`trivd_core.predict`).

    Returns:
        ``frames (B, T_pred, R, R, C)`` in ``[-1, 1]`` (tanh) and the new state;
        with ``return_warps=True`` a third item ``warps``:
        ``{"stage0": {...}, "stage1": {...}, "stage2": {...}}``, each the cell's
        ``cell_step(..., return_warp=True)`` dict with every entry stacked over the
        predicted steps on axis 1 - ``"W"`` ``(B, T_pred, r_i, r_i, k*k)`` (all TSRU,
        PTSRU and K-TrajGRU kinds), ``"w"`` ``(B, T_pred, k*k, N)`` and ``"S"``
        ``(B, T_pred, r_i, r_i, N)`` (the factorized kinds), an empty dict for ConvGRU
        and ConvLSTM.  Step ``t``'s transformation warps ``h_{t-1}`` (``h_0`` from the
        encoder) into the state of predicted frame ``t``; ``r_i = R / 2^(3 - i)``.
        The frames and state are those of the call without it.
    """
    fn = "generate"
    if not isinstance(train, bool):
        raise TypeError(f"{fn}(): argument 'train' must be a bool, got {train!r}")
    if not isinstance(return_warps, bool):
        raise TypeError(f"{fn}(): argument 'return_warps' must be a bool, got {return_warps!r}")
    if standing not in (None, True, False):
        raise TypeError(f"{fn}(): argument 'standing' must be None, True or False, got {standing!r}")
    stats = state.get("standing") if isinstance(state, Mapping) else None
    if standing is True:
        if train:
            raise ValueError(f"{fn}(): standing=True applies to evaluation only (train=False); training uses batch statistics")
        if stats is None:
            raise ValueError(
                f"{fn}(): standing=True but argument 'state' has no 'standing' statistics; "
                "run accumulate_standing_stats() first"
            )
    use = stats if (not train and standing is not False) else None
    warps: dict | None = {} if return_warps else None
    frames, new_state = _forward(params, state, cond_frames, z, class_ids, train=train, standing=use, collect=None,
                                 t_pred=t_pred, fn=fn, warps=warps)
    return (frames, new_state, warps) if return_warps else (frames, new_state)


# ---------------------------------------------------------------------------
# standing statistics (E.2)


@at_the_door
def accumulate_standing_stats(params, state, batches: Iterable, *, t_pred: int | None = None):
    """Standing statistics of every BN layer of G (appendix E.2); returns the new state.

    ``batches`` is an iterable of ``(cond_frames, z)`` or ``(cond_frames, z, class_ids)``
    tuples (all randomness explicit, as everywhere).  G is run on each with batch
    statistics; for every BN layer the mean over batches of the batch means and of the
    batch (biased) variances, each ``(1, T_pred, 1, 1, C)``, is stored in
    ``state["standing"]`` (replacing any earlier ones: E.2 recomputes them for every
    evaluation).  Spectral-norm vectors are not advanced.  ``generate(...,
    train=False)`` then uses them.
    """
    fn = "accumulate_standing_stats"
    if not isinstance(state, Mapping):
        raise TypeError(f"{fn}(): argument 'state' must be the dict of init_generator, got {type(state).__name__}")
    sums: dict = {}
    n = 0
    for i, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise TypeError(
                f"{fn}(): argument 'batches' must yield (cond_frames, z) or (cond_frames, z, class_ids) tuples; "
                f"item {i} is {type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
            )
        cond_frames, z, *rest = batch
        collect: dict = {}
        _forward(params, state, cond_frames, z, rest[0] if rest else None, train=False, standing=None,
                 collect=collect, t_pred=t_pred, fn=fn)
        for path, (mean, var) in collect.items():
            if path in sums:
                m0, v0 = sums[path]
                sums[path] = (m0 + mean, v0 + var)
            else:
                sums[path] = (mean, var)
        n += 1
    if n == 0:
        raise ValueError(f"{fn}(): argument 'batches' must yield at least one batch, got none")
    standing: dict = {}
    for path, (m, v) in sums.items():
        node = standing
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = {"mean": m / n, "var": v / n}
    return {**state, "standing": standing}
