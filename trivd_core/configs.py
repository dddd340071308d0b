"""Model and training configurations by name (paper section 4, appendix C.1 and E).

``get_config(name, **overrides)`` returns a frozen :class:`Config`; every
field defaults to the paper's value.  ``load_config(spec)`` also takes a JSON or TOML
file (a table of fields, optionally ``base = "NAME"`` to start from a registered
config), and ``parse_overrides(["key=value", ...], config)`` turns ``--set`` items into
typed field values.  ``validate()`` raises a ``ValueError``
naming the field for combinations the model cannot build (resolution not
divisible by the stages, K larger than the clip, crops larger than frames,
unknown cell or decomposition names, ...).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .cells import KINDS

__all__ = ["Config", "CONFIGS", "get_config", "as_config", "load_config", "config_from_mapping", "parse_overrides",
           "parse_assignments", "CELL_KINDS",
           "DECOMPOSITIONS", "HEADS"]

#: The recurrent cells of G (defined in :mod:`trivd_core.cells`).
CELL_KINDS = KINDS
#: Sub-discriminators of Table 1 -> network kind ("frame": 2-D throughout; "video": 3-D first blocks).
SUB_DISCRIMINATORS: dict[str, str] = {"F": "frame", "dF": "frame", "clV": "video", "dV": "video", "crV": "video"}
#: Discriminator decompositions of Table 1 by name -> their sub-discriminators (``stronger`` is TrIVD-GAN-FP's).
DECOMPOSITIONS: dict[str, tuple[str, ...]] = {
    "clip": ("clV",),
    "downsampled": ("dV",),
    "cropped": ("crV",),
    "cropped_downsampled": ("crV", "dV"),
    "mocogan": ("F", "clV"),
    "dvdgan_fp": ("F", "dV"),
    "faster": ("dF", "crV"),
    "stronger": ("dF", "crV", "dV"),
}
HEADS = ("mixed", "projection")


@dataclass(frozen=True)
class Config:
    """Every hyper-parameter of a TrIVD-GAN-FP model and its training schedule.

    Model (appendix A): frames ``resolution x resolution x channels``; ``t_cond``
    conditioning frames, ``t_pred`` predicted frames.  The generator has three
    stages from ``resolution/8`` to ``resolution``; stage widths are
    ``g_ch * g_widths[i]``.  Each discriminator has five residual blocks of
    widths ``d_ch * d_widths[i]``, the first four pooling by 2.
    Training (appendix E): Adam(beta1, beta2), learning rates, ``d_steps`` D
    updates per G update, orthogonal penalty weight, EMA decay and start step.
    """

    name: str = "custom"
    resolution: int = 64
    channels: int = 3
    t_cond: int = 5
    t_pred: int = 11
    g_ch: int = 48
    d_ch: int = 48
    z_dim: int = 128
    class_dim: int = 128
    n_classes: int = 1  # 1: the dummy zero class of DVD-GAN-FP
    cell: str = "tsru_p"
    cell_k: int = 3
    g_widths: tuple[int, ...] = (8, 4, 2)
    d_widths: tuple[int, ...] = (1, 2, 4, 8, 16)
    decomposition: str = "stronger"
    head: str = "mixed"
    K: int = 8  # frames sampled for the frame discriminators (section 4.2)
    s: int = 2  # spatial downsampling factor (section 3.1)
    bn_eps: float = 1e-5
    # training schedule (appendix E.2)
    batch_size: int = 512
    lr_g: float = 1e-4
    lr_d: float = 5e-4
    beta1: float = 0.0
    beta2: float = 0.999
    adam_eps: float = 1e-8
    d_steps: int = 2
    ortho_weight: float = 1e-4
    ema_decay: float = 0.9999
    ema_start: int = 20_000
    standing_batches: int = 100
    truncation: float | None = None
    # not in the paper (0 in every paper config): weight of an L1 reconstruction term added to G's loss,
    # recon_weight * mean|G(c, z) - x_future|; see objective.g_loss and docs/training.md
    recon_weight: float = 0.0
    # the paper draws z ~ N(0, I); latent_std scales the latents of training and sampling (z ~ N(0, latent_std^2 I)).
    # 1 in every paper config; 0 makes G deterministic (the demo: docs/training.md measures why)
    latent_std: float = 1.0

    @property
    def t_total(self) -> int:
        """Frames the discriminators judge: ``[conditioning ; predicted]``."""
        return self.t_cond + self.t_pred

    @property
    def base_resolution(self) -> int:
        """Resolution of the generator's first features (three x2 stages below ``resolution``)."""
        return self.resolution // 2 ** len(self.g_widths)

    def replace(self, **changes) -> Config:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"config {self.name!r}: unknown field(s) {', '.join(unknown)} (the fields are listed "
                             "in trivd_core/configs.py and by `trivd info --config NAME`)")
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["g_widths"] = list(self.g_widths)
        d["d_widths"] = list(self.d_widths)
        return d

    def validate(self) -> Config:
        """``self`` if every field is in range (``ValueError`` naming the field otherwise).  A config is frozen,
        so the answer is remembered: the core's public functions call this on every call."""
        if self.__dict__.get("_valid"):
            return self

        def bad(field_name, expected):
            raise ValueError(f"config {self.name!r}: field '{field_name}' must be {expected}; got {getattr(self, field_name)!r}")

        for f in ("resolution", "channels", "t_cond", "t_pred", "g_ch", "d_ch", "z_dim", "class_dim", "n_classes",
                  "K", "s", "batch_size", "d_steps", "standing_batches"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(f, "a positive int")
        if self.cell not in CELL_KINDS:
            bad("cell", f"one of {', '.join(CELL_KINDS)}")
        if self.decomposition not in DECOMPOSITIONS:
            bad("decomposition", f"one of {', '.join(DECOMPOSITIONS)}")
        if self.head not in HEADS:
            bad("head", f"one of {', '.join(HEADS)}")
        if isinstance(self.cell_k, bool) or not isinstance(self.cell_k, int) or self.cell_k < 1 or self.cell_k % 2 == 0:
            bad("cell_k", "an odd positive int")
        if len(self.g_widths) != 3:
            bad("g_widths", "three stage width multipliers (8x8 -> 64x64 in three x2 stages)")
        if len(self.d_widths) != 5:
            bad("d_widths", "five block width multipliers (BigGAN D: five residual blocks)")
        g_down = 2 ** len(self.g_widths)
        if self.resolution % g_down:
            bad("resolution", f"divisible by {g_down} (the generator's three x2 upsampling stages)")
        if self.resolution % self.s:
            bad("s", f"a divisor of resolution={self.resolution}")
        d_down = 2 ** (len(self.d_widths) - 1)
        if (self.resolution // self.s) % d_down:
            bad("s", f"such that resolution/s is divisible by {d_down} (four x2 average-pools in D)")
        if self.K > self.t_total:
            bad("K", f"at most the clip length t_cond + t_pred = {self.t_total}")
        if self.cell == "convlstm" and any((self.g_ch * w) % 2 for w in self.g_widths):
            bad("g_ch", "such that every stage width is even (ConvLSTM splits its state into [h; c])")
        def number(f):
            v = getattr(self, f)
            return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)

        for f in ("lr_g", "lr_d", "adam_eps", "bn_eps"):
            if not number(f) or getattr(self, f) <= 0:
                bad(f, "a finite number > 0")
        for f in ("beta1", "beta2", "ema_decay"):
            if not number(f) or not 0.0 <= getattr(self, f) < 1.0:
                bad(f, "in [0, 1)")
        if not number("latent_std") or self.latent_std < 0:
            bad("latent_std", "a finite number >= 0 (1: the paper's z ~ N(0, I))")
        if not number("ortho_weight") or self.ortho_weight < 0:
            bad("ortho_weight", "a finite number >= 0")
        if isinstance(self.ema_start, bool) or not isinstance(self.ema_start, int) or self.ema_start < 0:
            bad("ema_start", "an int >= 0")
        if not isinstance(self.name, str):
            bad("name", "a string")
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in (*self.g_widths, *self.d_widths)):
            bad("g_widths" if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.g_widths)
                else "d_widths", "positive int width multipliers")
        if isinstance(self.recon_weight, bool) or not isinstance(self.recon_weight, (int, float)) \
                or not self.recon_weight >= 0 or self.recon_weight == float("inf"):
            bad("recon_weight", "a finite float >= 0 (0: the paper's pure GAN objective)")
        if self.truncation is not None and (not number("truncation") or self.truncation < 0):
            bad("truncation", "None or a finite threshold >= 0")
        object.__setattr__(self, "_valid", True)  # frozen: the fields cannot change, so neither can the answer
        return self


CONFIGS: dict[str, Config] = {
    # CPU demo: 32x32, 2 -> 3 frames, narrow networks. Trains in minutes on 2 cores.  Not the paper's
    # schedule: lr 1e-3 for G and D (measured on the demo, 250 steps: first predicted frame MSE 0.077 vs
    # 0.230 with the paper's 1e-4 / 5e-4) and an EMA that can matter in a few hundred steps (0.98 from 100).
    "tiny": Config(
        name="tiny", resolution=32, t_cond=2, t_pred=3, g_ch=4, d_ch=4, z_dim=16, class_dim=16, K=2,
        batch_size=8, lr_g=1e-3, lr_d=1e-3, ema_decay=0.98, ema_start=100, standing_batches=4,
    ),
    # The README demo (docs/training.md has the measurements behind every value that differs from tiny):
    # a generator twice as wide (g_ch 4 left 4 output channels at 32x32 and could not overfit 4 clips),
    # z = 0 (latent_std 0: the noise in every conditional BN gain halved what G learned per step), one D
    # update per G update (the same progress per step at 0.75x the cost) and an L1 reconstruction term
    # weighted 100 next to the hinge GAN loss (the pure GAN objective stayed behind copy-last-frame).
    # Trained on "synthetic:demo" (one shape, flat background, 2-3 px/frame in a straight line).
    "demo": Config(
        name="demo", resolution=32, t_cond=2, t_pred=3, g_ch=8, d_ch=4, z_dim=16, class_dim=16, K=2,
        batch_size=8, lr_g=1e-3, lr_d=1e-3, d_steps=1, ema_decay=0.98, ema_start=100, standing_batches=4,
        recon_weight=100.0, latent_std=0.0,
    ),
    # The demo at FVD's clip length (16 frames: 2 -> 14; I3D's pooling needs at least 9), for the objective
    # ablation of docs/training.md: the demo's networks and schedule, K = 4 frames for dF (the paper samples
    # half of its 16), trained on "synthetic:demo16" (the demo's scene, slow enough to cross the frame in
    # 16 frames without a bounce).
    "demo16": Config(
        name="demo16", resolution=32, t_cond=2, t_pred=14, g_ch=8, d_ch=4, z_dim=16, class_dim=16, K=4,
        batch_size=8, lr_g=1e-3, lr_d=1e-3, d_steps=1, ema_decay=0.98, ema_start=100, standing_batches=4,
        recon_weight=100.0, latent_std=0.0,
    ),
    # Section 4.2-4.3: medium models, channel multiplier 48.
    "paper_medium": Config(name="paper_medium", g_ch=48, d_ch=48),
    # Section 4.4: TrIVD-GAN-FP, channel multiplier 120, TSRU_p + stronger.
    "paper_large": Config(name="paper_large", g_ch=120, d_ch=120),
    # Appendix C.1: BAIR, G 48 / D 92, 1 -> 15 frames, lr G 2e-5 / D 3e-5.
    "bair": Config(name="bair", g_ch=48, d_ch=92, t_cond=1, t_pred=15, lr_g=2e-5, lr_d=3e-5),
}


def get_config(name: str = "tiny", **overrides) -> Config:
    """The named configuration, with ``overrides`` applied and validated."""
    if name not in CONFIGS:
        raise ValueError(f"get_config(): argument 'name' must be one of {', '.join(CONFIGS)}; got {name!r}")
    return CONFIGS[name].replace(**overrides) if overrides else CONFIGS[name].validate()


def _coerce(field_name: str, ftype: str, value, source: str):
    """``value`` (JSON-decoded, or a string) as the type of Config field ``field_name``."""
    def fail(expected):
        raise ValueError(f"{source}: field '{field_name}' must be {expected}; got {value!r}")

    if ftype == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an int")
        return value
    if ftype == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        return float(value)
    if ftype == "float | None":
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number or null")
        return float(value)
    if ftype == "str":
        if not isinstance(value, str):
            fail("a string")
        return value
    if ftype.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            fail("a list of ints, e.g. [8,4,2]")
        return tuple(value)
    raise AssertionError(f"unhandled Config field type {ftype!r}")  # pragma: no cover - every field is covered


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(Config)}


def as_config(fn: str, config) -> Config:
    """``config`` (a :class:`Config` or a registered name) as a validated Config; errors name the function ``fn``.

    The one coercion every public function that takes a config uses.
    """
    if isinstance(config, str):
        config = get_config(config)
    if not isinstance(config, Config):
        raise TypeError(f"{fn}(): argument 'config' must be a trivd_core.configs.Config or a config name, "
                        f"got {type(config).__name__}")
    return config.validate()


def config_from_mapping(values, *, source: str = "config") -> Config:
    """A validated :class:`Config` from a mapping of field values (``base`` names a config to start from).

    Unknown fields are an error naming the known ones; values are checked against the
    field types (lists for the width tuples).  ``source`` names the origin in messages.
    """
    if not isinstance(values, dict):
        raise ValueError(f"{source}: a config must be a table of fields, got {type(values).__name__}")
    values = dict(values)
    base = values.pop("base", None)
    if base is not None and (not isinstance(base, str) or base not in CONFIGS):
        raise ValueError(f"{source}: 'base' must name a registered config ({', '.join(CONFIGS)}); got {base!r}")
    types = _field_types()
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ValueError(f"{source}: unknown config field(s) {', '.join(unknown)}; known fields: {', '.join(types)}")
    typed = {k: _coerce(k, types[k], v, source) for k, v in values.items()}
    start = CONFIGS[base] if base is not None else Config()
    try:
        return dataclasses.replace(start, **typed).validate()
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def load_config(spec: str) -> Config:
    """A registered config name, or the path of a ``.json`` / ``.toml`` file of config fields.

    A file holds a table of :class:`Config` fields (``config.json`` of a run has it under
    ``"config"``, which is accepted too); ``base = "tiny"`` starts from a registered
    config, otherwise from the paper's defaults.  Errors are ``ValueError`` naming the
    file and the field.
    """
    import json
    import os

    if not isinstance(spec, str) or not spec:
        raise ValueError(f"load_config(): argument 'spec' must be a config name or a file path, got {spec!r}")
    if spec in CONFIGS:
        return CONFIGS[spec].validate()
    suffix = os.path.splitext(spec)[1].lower()
    if suffix not in (".json", ".toml"):
        raise ValueError(f"unknown config {spec!r}: use one of {', '.join(CONFIGS)} or a .json/.toml file")
    try:
        with open(spec, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ValueError(f"config file {spec}: cannot read it ({exc.strerror or exc})") from None
    try:
        if suffix == ".json":
            values = json.loads(raw.decode("utf-8"))
        else:
            import tomllib

            values = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"config file {spec}: not valid {suffix[1:].upper()} ({exc})") from None
    if isinstance(values, dict) and isinstance(values.get("config"), dict) and "name" not in values:
        values = values["config"]  # a run's config.json
    return config_from_mapping(values, source=f"config file {spec}")


def parse_assignments(items, *, option: str, what: str = "") -> dict:
    """``{"KEY": value}`` of ``KEY=VALUE`` items (VALUE parsed as JSON, else kept as a string), in order.

    An item without ``=`` or with an empty key is a ``ValueError`` naming ``option``.
    """
    import json

    out = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{option} must be KEY=VALUE{f' ({what})' if what else ''}, got {item!r}")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def parse_overrides(items, config: Config, *, option: str = "--set") -> Config:
    """``config`` with ``KEY=VALUE`` items applied (VALUE is JSON, else a string), validated.

    >>> parse_overrides(["g_ch=8", "recon_weight=0.5"], get_config("tiny")).g_ch
    8
    """
    values = parse_assignments(items, option=option, what="a config field")
    current = config.to_dict()
    current.update(values)
    return config_from_mapping(current, source=option)
