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
