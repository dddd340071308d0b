"""Every code block of the README and docs/ is run or checked, so that the docs keep matching the code.

* ``python`` blocks run in a fresh interpreter (the repository root as working directory, a 300 s
  limit); a block that imports a framework this environment lacks is skipped with the module's name.
* ``bash`` blocks (continuation lines joined): every ``trivd ...`` line (also ``venv/bin/trivd``) is parsed by the real argument
  parser of its subcommand (``trivd.cli.build_parser``, ``benchmarks.run.build_parser``,
  ``conformance.runner``'s), so an option that does not exist fails here; ``python -m benchmarks``
  lines likewise.  Lines that install or run the test suite (pip, tox, venv) are the README's two
  commands, which ``.ci/run`` executes.
* ``toml`` blocks are config files: loaded with ``load_config``.
* A block that cannot run here says why on the line above its fence:
  ``<!-- docs-test: not run (reason) -->``; the reason must be given.
* Blocks without a language (directory trees, file layouts) and ``json`` examples with elisions are
  illustrations.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"<!--\s*docs-test:\s*not run\s*\((.+?)\)\s*-->")
OPTIONAL = ("jax", "torch", "torch_xla", "av", "matplotlib")


def _blocks():
    out = []
    for path in FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"^```(\w*)\s*$", lines[i])
            if not m:
                i += 1
                continue
            lang, start = m.group(1), i
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            prev = lines[start - 1] if start else ""
            skip = SKIP.search(prev)
            out.append(pytest.param(lang, "\n".join(lines[start + 1:j]), skip.group(1) if skip else None,
                                    id=f"{path.relative_to(ROOT)}:{start + 1}"))
            i = j + 1
    return out


BLOCKS = _blocks()


def _trivd_lines(code: str):
    """The ``trivd`` argument lists of a bash block, wherever the command sits on its line.

    ``trivd ...`` and ``venv/bin/trivd ...`` at any position (after ``VAR=value``, ``srun ...``, ``do``),
    ``... -m trivd ...`` (``python -m trivd``, ``torchrun ... -m trivd``), the command string of
    ``--command "..."`` (``gcloud ... ssh --command``), and ``python -m benchmarks``; commands are split at
    ``;``, ``&&``, ``&`` and ``|``.  Shell variables (``$i``) stand for a number (the docs use them for process
    indices).
    """
    code = re.sub(r"\\\n\s*", " ", code)  # a line ending in a backslash continues on the next
    for raw in code.splitlines():
        line = raw.split(" #")[0].strip() if not raw.strip().startswith("#") else ""
        yield from _commands(line)


def _commands(line: str):
    try:
        words = shlex.split(line)
    except ValueError:
        return
    cmd: list[str] = []
    for w in [*words, ";"]:
        if w in (";", "&&", "&", "|", "||") or w.endswith(";") and w != ";":
            if w.endswith(";") and w != ";":
                cmd.append(w[:-1])
            yield from _one_command(cmd)
            cmd = []
        else:
            cmd.append(w)


def _one_command(words: list[str]):
    for k, w in enumerate(words):
        if w == "--command" and k + 1 < len(words):
            yield from _commands(words[k + 1])
            return
    for k, w in enumerate(words):
        if (w == "trivd" or w.endswith("/trivd")) and (k == 0 or words[k - 1] not in ("cd", "-m")):
            rest = words[k + 1:]
        elif w == "-m" and k + 1 < len(words) and words[k + 1] == "trivd":
            rest = words[k + 2:]
        elif w == "-m" and k + 1 < len(words) and words[k + 1] == "benchmarks":
            rest = ["bench", *words[k + 2:]]
        else:
            continue
        yield [re.sub(r"^\$\w+$", "0", a) for a in rest]
        return


def _parse(argv: list[str]) -> None:
    from trivd.cli import build_parser

    if argv and argv[0] == "bench":
        from benchmarks.run import build_parser as bench_parser

        bench_parser().parse_args(argv[1:])
    elif argv and argv[0] == "conform":
        from conformance.runner import _parser

        _parser().parse_args(argv[1:])
    else:
        build_parser().parse_args(argv)


def test_launch_lines_are_read_wherever_trivd_sits():
    block = """
for i in 0 1; do XLA_FLAGS=--x=2 trivd train --config tiny --process-id $i & done; wait
gcloud compute tpus tpu-vm ssh NAME --worker=all \\
    --command "cd trivd; trivd train --distributed --run-dir /r"
srun --nodes 2 torchrun --nnodes 2 --rdzv-endpoint "$(hostname):29500" -m trivd train --backend torch
venv/bin/trivd eval --checkpoint runs/demo   # a comment
python -m benchmarks --quick
"""
    assert list(_trivd_lines(block)) == [
        ["train", "--config", "tiny", "--process-id", "0"],
        ["train", "--distributed", "--run-dir", "/r"],
        ["train", "--backend", "torch"],
        ["eval", "--checkpoint", "runs/demo"],
        ["bench", "--quick"],
    ]
    with pytest.raises(SystemExit):  # a launch line with an option that does not exist fails
        _parse(next(_trivd_lines("torchrun --nproc-per-node 8 -m trivd train --no-such-option")))


def test_the_docs_have_code_blocks_of_each_kind():
    langs = [p.values[0] for p in BLOCKS]
    assert langs.count("python") >= 4 and langs.count("bash") >= 6 and "toml" in langs


@pytest.mark.parametrize("lang, code, skip", BLOCKS)
def test_code_block(lang, code, skip, tmp_path):
    if skip is not None:
        assert skip.strip(), "a block marked not run must say why"
        pytest.skip(f"marked not run: {skip}")
    if lang == "python":
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
        missing = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", proc.stderr)
        if proc.returncode and missing and missing.group(1).split(".")[0] in OPTIONAL:
            pytest.skip(f"needs {missing.group(1)}, not installed in this environment")
        assert proc.returncode == 0, proc.stderr[-3000:]
    elif lang == "bash":
        for argv in _trivd_lines(code):
            try:
                _parse(argv)
            except SystemExit as exc:
                pytest.fail(f"`trivd {' '.join(argv)}` does not parse (exit {exc.code})")
    elif lang == "toml":
        from trivd_core.configs import load_config

        f = tmp_path / "c.toml"
        f.write_text(code)
        load_config(str(f))
    else:
        assert lang in ("", "json", "text"), f"a {lang!r} block: teach tests/test_docs.py to check it"


def _after_training_lines():
    text = (ROOT / "README.md").read_text()
    block = text.split("## After training", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def test_the_readme_after_training_lines_run_in_order(tmp_path):
    """Every line of the README's "After training" block, in order, in a folder whose runs/demo is a run of the
    demo's data (a checkpoint of a small config, not 2000 steps: the lines, not the model, are under test).  The
    `pip install` line is the one not run; without the I3D weights the fvd line must say how to install them."""
    import importlib.util
    import json
    import os

    pytest.importorskip("av")
    from _test_helpers import init_tree

    from trivd.weights import installed_weights
    from trivd_core import get_config
    from trivd_core.train.checkpoint import save_checkpoint

    cfg = get_config("demo", g_ch=2, d_ch=2, batch_size=4, standing_batches=1)
    run = tmp_path / "runs" / "demo"
    tree, backend = init_tree(cfg)
    save_checkpoint(run / "checkpoints", tree, step=3, meta={"backend": backend, "config": cfg.to_dict(), "seed": 0})
    (run / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "backend": backend, "seed": 0,
                                                 "args": {"data": "synthetic:demo"}}))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TRIVD_EVAL_BACKEND": "numpy"}
    lines = _after_training_lines()
    assert any(" clips " in line for line in lines) and shlex.split(lines[-1], comments=True)[1:] == ["bench", "--quick"]
    for line in lines:
        argv = shlex.split(line, comments=True)
        if argv[0].endswith("pip"):
            continue
        assert argv[0] == "venv/bin/trivd", line
        if argv[1] == "eval":
            argv += ["--num-samples", "8", "--backend", "numpy", "--no-fvd"]  # the figures are not under test here
        if argv[1] == "predict":
            argv += ["--backend", "numpy"]
        if argv[1] == "bench" and (importlib.util.find_spec("jax") or importlib.util.find_spec("torch")):
            _parse(argv[1:])  # over a framework it takes minutes: run where NumPy alone is installed (the core env)
            continue
        res = subprocess.run([sys.executable, "-m", "trivd", *argv[1:]], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
        if argv[1] == "fvd" and installed_weights() is None:
            assert res.returncode == 2 and "pip install" in res.stderr, (line, res.stderr[-2000:])
            continue
        assert res.returncode == 0, (line, res.stderr[-3000:])
    for name in ("clip.mp4", "clips.npy", "pred.gif", "pred.npy", "real.npy", "other.npy"):
        assert (tmp_path / name).is_file(), name
    import numpy as np

    assert np.load(tmp_path / "clips.npy").shape == (8, 5, 32, 32, 3)
    assert np.load(tmp_path / "pred.npy").shape == (8, 5, 32, 32, 3)
    assert np.load(tmp_path / "real.npy").shape == (32, 16, 32, 32, 3)
