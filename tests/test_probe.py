"""The discriminator probe of experiments/d_probe.py: its negatives, its score and (with JAX) one short run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from trivd_core.configs import get_config

_spec = importlib.util.spec_from_file_location("d_probe", Path(__file__).parents[1] / "experiments" / "d_probe.py")
d_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(d_probe)


def test_the_negatives_are_the_clips_altered_as_named():
    clips = np.arange(2 * 5 * 2 * 2 * 1, dtype=np.float32).reshape(2, 5, 2, 2, 1)  # every frame distinct
    copy = d_probe.negative("copy", clips, 2)
    np.testing.assert_array_equal(copy[:, :2], clips[:, :2])
    for t in range(2, 5):
        np.testing.assert_array_equal(copy[:, t], clips[:, 1])
    frozen = d_probe.negative("frozen", clips, 2)
    for t in range(5):
        np.testing.assert_array_equal(frozen[:, t], clips[:, 0])
    rev = d_probe.negative("reversed", clips, 2)
    for t in range(5):
        np.testing.assert_array_equal(rev[:, t], clips[:, 4 - t])
    with pytest.raises(ValueError, match="negative must be one of copy, frozen, reversed"):
        d_probe.negative("shuffled", clips, 2)


def test_paired_accuracy_counts_pairs_and_halves_ties():
    assert d_probe.paired_accuracy([3.0, 1.0, 2.0, 0.0], [1.0, 2.0, 2.0, -1.0]) == pytest.approx((1 + 0 + 0.5 + 1) / 4)


def test_a_short_probe_trains_d_and_records_its_curve():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    cfg = get_config("tiny", decomposition="dvdgan_fp")
    lines = []
    rec = d_probe.probe(cfg, "frozen", steps=4, eval_every=2, log=lines.append)
    assert [c["step"] for c in rec["curve"]] == [2, 4]
    assert all(0.0 <= c["paired_accuracy"] <= 1.0 and np.isfinite(c["d_loss"]) for c in rec["curve"])
    assert rec["separated_at"] in (None, 2, 4) and rec["negative"] == "frozen" and len(lines) == 2
    # D took its steps: the mean loss of the second interval differs from the first
    assert rec["curve"][0]["d_loss"] != rec["curve"][1]["d_loss"]
