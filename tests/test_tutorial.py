"""The tutorial (docs/tutorial/) runs: every chapter executes, writes the figures it names, opens as a notebook.

Each chapter runs as a plain Python script in a fresh interpreter with ``TRIVD_TUTORIAL_QUICK=1``
(smaller frames and runs, seconds each) and ``TRIVD_TUTORIAL_OUT`` in a temporary folder; every
``save(fig, "NAME.png")`` of its source must then exist there as a non-empty PNG, and be committed
under docs/tutorial/img/ and linked from docs/tutorial/README.md (the rendered figures the README
points students to).  The chapters check their own claims with ``assert`` (the pull convention,
Eq. 10 against ``cell_step``, the port's exit statuses, ...), so a chapter that runs is a chapter
whose statements hold.

Chapter 4 trains a model (2 steps in quick mode), so it needs a training framework: it runs in the
torch env (tests/test_tutorial_motion.py); the others need NumPy and matplotlib only.
"""

from __future__ import annotations

import sys

import pytest
from _test_helpers import CHAPTERS, TUTORIAL, check_figures, figures_named, run_chapter

ROOT = TUTORIAL.parent.parent
NEEDS_TRAINING = {"04_motion_field.py"}
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_tutorial_has_its_chapters():
    assert [p.name[:2] for p in CHAPTERS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("script", [p for p in CHAPTERS if p.name not in NEEDS_TRAINING], ids=lambda p: p.stem)
def test_chapter_runs_and_writes_its_figures(script, tmp_path):
    done = run_chapter(script, tmp_path)
    assert done.returncode == 0, f"{script.name} failed:\n{done.output[-4000:]}"
    check_figures(script, tmp_path, done.output)


@pytest.mark.parametrize("script", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_a_notebook_with_committed_linked_figures(script):
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(script, fmt="py:percent")
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 2 and kinds.count("code") >= 2, (script.name, kinds)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# "), script.name
    index = (TUTORIAL / "README.md").read_text(encoding="utf-8")
    assert f"({script.name})" in index, f"docs/tutorial/README.md does not link {script.name}"
    for name in figures_named(script):
        committed = TUTORIAL / "img" / name
        assert committed.is_file() and committed.read_bytes()[:8] == PNG, f"docs/tutorial/img/{name} is not committed"
        assert f"(img/{name})" in index, f"docs/tutorial/README.md does not show img/{name}"


@pytest.mark.parametrize("script", [p for p in CHAPTERS if p.name not in NEEDS_TRAINING], ids=lambda p: p.stem)
def test_the_committed_figures_are_what_the_current_code_draws(script, tmp_path):
    """Each chapter at its full size (seconds): the numbers every figure draws - images, lines, arrow fields,
    ``_tutorial.figure_data`` - equal those committed beside the PNG (``img/NAME.npz``).

    Tolerance: the committed values are float32 (``rtol 1e-5``, ``atol 1e-6`` for values near 0): a few float32
    ulps, which also covers float64 arithmetic that rounds differently on another CPU's kernels; a change of the
    code a figure shows moves its values by far more.  Chapter 4 draws a model trained for 800 steps: its figures
    are not regenerated here (tests/test_tutorial_motion.py runs it quickly).
    """
    import numpy as np

    done = run_chapter(script, tmp_path, TRIVD_TUTORIAL_QUICK="0")
    assert done.returncode == 0, f"{script.name} failed:\n{done.output[-4000:]}"
    for name in figures_named(script):
        stem = name[: -len(".png")]
        committed = TUTORIAL / "img" / f"{stem}.npz"
        assert committed.is_file(), f"docs/tutorial/img/{stem}.npz is not committed (run the chapter to write it)"
        with np.load(tmp_path / f"{stem}.npz") as fresh, np.load(committed) as want:
            assert sorted(fresh.files) == sorted(want.files), name
            for key in want.files:
                np.testing.assert_allclose(fresh[key], want[key], rtol=1e-5, atol=1e-6, equal_nan=True,
                                           err_msg=f"{name}: {key}")


def test_the_readme_leads_to_the_tutorial():
    assert "docs/tutorial" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_a_chapter_that_breaks_fails_the_test(tmp_path):
    """The runner sees a failing chapter: a copy of chapter 1 whose pull-convention check is reversed."""
    source = (TUTORIAL / "01_warping.py").read_text(encoding="utf-8")
    broken = source.replace("assert np.array_equal(shifted[0, :, :-1], h[0, :, 1:])",
                            "assert np.array_equal(shifted[0, :, 1:], h[0, :, :-1])")
    assert broken != source
    (tmp_path / "_tutorial.py").write_text((TUTORIAL / "_tutorial.py").read_text(encoding="utf-8"), encoding="utf-8")
    script = tmp_path / "01_warping_broken.py"
    script.write_text(broken, encoding="utf-8")
    done = run_chapter(script, tmp_path)
    assert done.returncode != 0 and "AssertionError" in done.output, done.output[-2000:]


def test_a_chapter_run_by_hand_leaves_the_committed_figures_alone(tmp_path):
    """Run as the tutorial's README says (no TRIVD_TUTORIAL_OUT): the figures go to ./tutorial-figures/, and
    docs/tutorial/img/ is untouched (same bytes)."""
    import os
    import subprocess

    script = TUTORIAL / "01_warping.py"
    img = TUTORIAL / "img"
    before = {p.name: p.read_bytes() for p in img.iterdir()}
    env = {k: v for k, v in os.environ.items() if k != "TRIVD_TUTORIAL_OUT"}
    env.update(TRIVD_TUTORIAL_QUICK="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name: p.read_bytes() for p in img.iterdir()} == before
    assert (tmp_path / "tutorial-figures" / "01_kernels.png").is_file()
