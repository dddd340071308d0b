"""The paper's cost numbers that the benchmarks are compared with (Luc et al., 2020).

Only numbers printed in the paper are here; nothing is derived from this project's
measurements.  Ratios are taken the same way as the measured ones (each value over
the baseline's value from the same table).
"""

from __future__ import annotations

#: Table 1 ("A comparison of different discriminator decompositions ..."), columns MS
#: (average step duration, milliseconds) and GB (maximum memory consumption): medium
#: models (channel multiplier 48), Kinetics-600 64x64, 5 -> 11 frames, batch 512 on TPUs;
#: one step = 2 D updates + 1 G update (appendix E.3).  Keys are this project's
#: decomposition names.  ``mocogan`` is the paper's "MoCoGAN-like K = 8" row (our
#: ``mocogan`` samples ``config.K`` frames and the paper's configs use K = 8); the K = 1
#: row is kept in :data:`TABLE1_MOCOGAN_K1`.
TABLE1: dict[str, dict[str, float]] = {
    "clip": {"ms": 488, "gb": 3.49},
    "downsampled": {"ms": 370, "gb": 3.01},
    "cropped": {"ms": 371, "gb": 3.10},
    "cropped_downsampled": {"ms": 467, "gb": 3.30},
    "mocogan": {"ms": 660, "gb": 3.95},
    "dvdgan_fp": {"ms": 537, "gb": 3.53},
    "faster": {"ms": 453, "gb": 3.54},
    "stronger": {"ms": 548, "gb": 3.65},
}
#: Table 1, "MoCoGAN-like K = 1" row.
TABLE1_MOCOGAN_K1 = {"ms": 568, "gb": 3.95}
#: The baseline of the decomposition ratios.
TABLE1_BASELINE = "dvdgan_fp"

#: Step durations of whole training steps per recurrent unit.  Table 2 gives no costs;
#: the only step times the paper prints for the recurrent units are in appendix F
#: (section "Dynamic ConvLSTM"): medium models (channel multiplier 48), batch 512,
#: "models using ConvGRU (resp. TSRU) run at 284ms (resp. 354ms) per step" (the
#: Dynamic ConvLSTM, not one of our nine cells, at 6.385 s).  The TSRU variant is not
#: named there, so the same number is shown for tsru_c, tsru_p and tsru_s.
CELL_STEP_MS: dict[str, float] = {"convgru": 284, "tsru_c": 354, "tsru_p": 354, "tsru_s": 354}
#: The baseline of the cell ratios.
CELL_BASELINE = "convgru"


def decomposition_ratio(name: str) -> float | None:
    """Table 1's step-time ratio ``ms(name) / ms(dvdgan_fp)`` (None for unknown names)."""
    row = TABLE1.get(name)
    return None if row is None else row["ms"] / TABLE1[TABLE1_BASELINE]["ms"]


def decomposition_memory_ratio(name: str) -> float | None:
    """Table 1's memory ratio ``gb(name) / gb(dvdgan_fp)`` (None for unknown names)."""
    row = TABLE1.get(name)
    return None if row is None else row["gb"] / TABLE1[TABLE1_BASELINE]["gb"]


def cell_ratio(kind: str) -> float | None:
    """The paper's step-time ratio ``ms(kind) / ms(convgru)`` where it prints one (appendix F), else None."""
    ms = CELL_STEP_MS.get(kind)
    return None if ms is None else ms / CELL_STEP_MS[CELL_BASELINE]
