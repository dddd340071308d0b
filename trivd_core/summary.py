"""Per-config summary: parameter counts and the pixels each discriminator processes (section 3.1, Table 1).

* :func:`param_count` - number of scalars in a params tree (arrays or shape tuples).
* :func:`pixels_per_video` - pixels each sub-discriminator of ``config.decomposition``
  judges per video, and their total (section 3.1)::

      F   K x H x W             dF  K x H/s x W/s
      clV T x H x W             dV  T x H/s x W/s           crV T x H/s x W/s

  with ``T = t_cond + t_pred`` (D judges ``[conditioning ; future]``).  Pixels are
  spatio-temporal positions (frames x height x width), not multiplied by channels.
* :func:`decomposition_pixels` - the total for every decomposition of Table 1.
* :func:`model_param_counts` - parameter counts of G, E and each sub-discriminator.
* :func:`describe` - all of the above as text (``trivd info --config NAME``), ending
  with the section 3.1 comparison ``K*H*W + T*H/s*W/s`` (dvdgan_fp) vs
  ``(K + T)*H/s*W/s`` (faster).

Counting without allocating
---------------------------
The paper-size models are large (``paper_large``: ~70M parameters per discriminator,
~310M in G) and orthogonal initialisation of them in NumPy takes minutes.  Counts are
therefore taken from shapes only:

* discriminators and encoder: ``discriminator.discriminator_shapes`` /
  ``encoder_shapes`` return the parameter shapes from the same layer specification
  that ``init_discriminator`` / ``init_encoder`` initialise from;
* generator: ``generator.generator_shapes`` likewise, from the specification
  ``init_generator`` draws from (tests compare the two on the small configs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from . import discriminator as _disc
from .configs import DECOMPOSITIONS as _DECOMPOSITION_NAMES
from .configs import as_config
from .generator import generator_shapes

__all__ = ["param_count", "pixels_per_video", "decomposition_pixels", "model_param_counts", "describe"]

_LONG_NAMES = {
    "F": "frame-level (K full-resolution frames)",
    "dF": "downsampled frame-level (K frames / s)",
    "clV": "clip (whole video)",
    "dV": "downsampled video (/ s)",
    "crV": "cropped video (T x H/s x W/s crop)",
}


def param_count(params) -> int:
    """Number of scalars in a nested dict (or list/tuple) of arrays; leaves may also be shape tuples of ints."""
    if isinstance(params, Mapping):
        return sum(param_count(v) for v in params.values())
    if isinstance(params, tuple) and all(isinstance(d, (int, np.integer)) for d in params):
        return math.prod(int(d) for d in params)
    if isinstance(params, (list, tuple)):
        return sum(param_count(v) for v in params)
    shape = getattr(params, "shape", None)
    if shape is None:
        raise TypeError(f"param_count(): argument 'params' must be a nested dict of arrays, "
                        f"found a leaf of type {type(params).__name__}")
    return math.prod(int(d) for d in shape)


def _sub_pixels(config, name: str) -> int:
    _, t, h, w, _ = _disc.input_shape(config, name)
    return t * h * w


def pixels_per_video(config) -> dict[str, int]:
    """``{sub-discriminator: pixels per video}`` for ``config.decomposition`` plus ``"total"`` (section 3.1)."""
    config = as_config("pixels_per_video", config)
    out = {name: _sub_pixels(config, name) for name in _disc.sub_discriminators(config)}
    out["total"] = sum(out.values())
    return out


def decomposition_pixels(config) -> dict[str, int]:
    """Total pixels per video of every decomposition of Table 1, with ``config``'s H, W, T, K and s."""
    config = as_config("decomposition_pixels", config)
    return {d: pixels_per_video(config.replace(decomposition=d))["total"] for d in _DECOMPOSITION_NAMES}


def _generator_counts(config) -> dict[str, int]:
    shapes = generator_shapes(config)
    return {"G": param_count(shapes["G"]), "E_in_G": param_count(shapes["E"])}


def model_param_counts(config) -> dict[str, int]:
    """Parameter counts: ``"G"`` (without E), ``"E"``, and one per sub-discriminator.

    ``"D"`` is the sum over the sub-discriminators.  Spectral-norm vectors and BN
    statistics are state, not parameters, and are not counted.
    """
    config = as_config("model_param_counts", config)
    out: dict[str, int] = {}
    out["G"] = _generator_counts(config)["G"]
    out["E"] = param_count(_disc.encoder_shapes(config))
    d_shapes = _disc.discriminator_shapes(config)
    for name, shapes in d_shapes.items():
        out[name] = param_count(shapes)
    out["D"] = sum(out[name] for name in d_shapes)
    return out


def _fmt(n: int) -> str:
    return f"{n:,}" + (f" ({n / 1e6:.2f}M)" if n >= 1e5 else "")


def describe(config) -> str:
    """Text summary of a config: parameter counts of G, E and each sub-D; pixels per video; section 3.1 comparison."""
    config = as_config("describe", config)
    c = config
    H = W = c.resolution
    T, K, s = c.t_total, c.K, c.s
    counts = model_param_counts(c)
    lines = [
        f"config {c.name!r}: {H}x{W}x{c.channels}, {c.t_cond} -> {c.t_pred} frames (D judges T = {T}), "
        f"g_ch {c.g_ch}, d_ch {c.d_ch}, cell {c.cell}, decomposition {c.decomposition}, head {c.head}, "
        f"K {K}, s {s}",
        "",
        "parameters",
    ]
    rows = []
    if "G" in counts:
        rows.append(("G", "generator (without E)", _fmt(counts["G"])))
    else:
        rows.append(("G", "generator", "(trivd_core.generator not importable)"))
    rows.append(("E", "encoder (first 3 blocks of the spatial D)", _fmt(counts["E"])))
    names = _disc.sub_discriminators(c)
    for name in names:
        rows.append((name, _LONG_NAMES[name], _fmt(counts[name])))
    rows.append(("D", "all sub-discriminators", _fmt(counts["D"])))
    if "G" in counts:
        rows.append(("all", "G + E + D", _fmt(counts["G"] + counts["E"] + counts["D"])))
    width = max(len(r[1]) for r in rows)
    lines += [f"  {key:<4} {label:<{width}}  {value}" for key, label, value in rows]
    lines += ["", f"pixels per video (decomposition {c.decomposition})"]
    px = pixels_per_video(c)
    for name in names:
        _, t, h, w, _ = _disc.input_shape(c, name)
        lines.append(f"  {name:<4} {t} x {h} x {w} = {px[name]:,}")
    lines.append(f"  total {px['total']:,}")
    lines += ["", "pixels per video, every decomposition of Table 1"]
    for d, n in decomposition_pixels(c).items():
        lines.append(f"  {d:<20} {n:>12,}" + ("   <- this config" if d == c.decomposition else ""))
    dvd = K * H * W + T * (H // s) * (W // s)
    fast = (K + T) * (H // s) * (W // s)
    rel = "fewer" if fast < dvd else ("as many" if fast == dvd else "more")
    lines += [
        "",
        "section 3.1: pixels per video, DVD-GAN-FP vs DVD-GAN-FP_faster",
        f"  dvdgan_fp  K*H*W + T*(H/s)*(W/s) = {K}*{H}*{W} + {T}*{H // s}*{W // s} = "
        f"{K * H * W:,} + {T * (H // s) * (W // s):,} = {dvd:,}",
        f"  faster     (K + T)*(H/s)*(W/s)   = ({K} + {T})*{H // s}*{W // s} = {fast:,}",
        f"  faster processes {rel} pixels per video than dvdgan_fp: {fast:,} vs {dvd:,} "
        f"(ratio {fast / dvd:.3f})",
    ]
    return "\n".join(lines)
