"""Chapter 4 of the tutorial (the motion field of a trained model) runs: a 2-step torch run, its figure.

The chapter trains with ``trivd train`` when no run is given, so it needs a training framework;
torch starts in seconds where JAX compiles for a minute, so it runs in the torch env.  See
tests/test_tutorial.py for what running a chapter checks.
"""

from __future__ import annotations

import pytest
from _test_helpers import TUTORIAL, check_figures, run_chapter

pytest.importorskip("torch")


def test_the_motion_field_chapter_trains_reads_and_draws(tmp_path):
    script = TUTORIAL / "04_motion_field.py"
    done = run_chapter(script, tmp_path, TRIVD_TUTORIAL_BACKEND="torch", TRIVD_TUTORIAL_RUN="")
    assert done.returncode == 0, f"{script.name} failed:\n{done.output[-4000:]}"
    check_figures(script, tmp_path, done.output)
    assert (tmp_path / "run" / "checkpoints" / "step_00000002.json").is_file()
    assert "reproduces motion_fields" in done.output and "motion agreement over 2 clips" in done.output
