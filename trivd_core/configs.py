"""Model and training configurations by name (paper section 4, appendix C.1 and E).

``get_config(name, **overrides)`` returns a frozen :class:`Config`; every
field defaults to the paper's value.  ``validate()`` raises a ``ValueError``
naming the field for combinations the model cannot build (resolution not
divisible by the stages, K larger than the clip, crops larger than frames,
unknown cell or decomposition names, ...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Config", "CONFIGS", "get_config", "CELL_KINDS", "DECOMPOSITIONS", "HEADS"]

CELL_KINDS = ("convgru", "convlstm", "ktrajgru", "tsru_c", "tsru_p", "tsru_s", "ptsru_c", "ptsru_p", "ptsru_s")
#: Discriminator decompositions of Table 1 (``stronger`` is TrIVD-GAN-FP's).
DECOMPOSITIONS = ("clip", "downsampled", "cropped", "cropped_downsampled", "mocogan", "dvdgan_fp", "faster", "stronger")
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

    @property
    def t_total(self) -> int:
        """Frames the discriminators judge: ``[conditioning ; predicted]``."""
        return self.t_cond + self.t_pred

    @property
    def base_resolution(self) -> int:
        """Resolution of the generator's first features (three x2 stages below ``resolution``)."""
        return self.resolution // 2 ** len(self.g_widths)

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["g_widths"] = list(self.g_widths)
        d["d_widths"] = list(self.d_widths)
        return d

    def validate(self) -> Config:
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
        if self.cell_k < 1 or self.cell_k % 2 == 0:
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
        if not 0.0 <= self.ema_decay < 1.0:
            bad("ema_decay", "in [0, 1)")
        if self.truncation is not None and self.truncation < 0:
            bad("truncation", "None or a non-negative threshold")
        return self


CONFIGS: dict[str, Config] = {
    # CPU demo: 32x32, 2 -> 3 frames, narrow networks. Trains in minutes on 2 cores.  Not the paper's
    # schedule: lr 1e-3 for G and D (measured on the demo, 250 steps: first predicted frame MSE 0.077 vs
    # 0.230 with the paper's 1e-4 / 5e-4) and an EMA that can matter in a few hundred steps (0.98 from 100).
    "tiny": Config(
        name="tiny", resolution=32, t_cond=2, t_pred=3, g_ch=4, d_ch=4, z_dim=16, class_dim=16, K=2,
        batch_size=8, lr_g=1e-3, lr_d=1e-3, ema_decay=0.98, ema_start=100, standing_batches=4,
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
