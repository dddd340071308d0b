"""Project-level checks: the README's commands are what CI runs; configs and the CLI behave."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trivd import cli
from trivd_core.configs import CONFIGS, get_config

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)[:2]


def test_readme_opens_with_two_commands_that_ci_runs():
    main_job, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    # The test command, split at '&&', must appear step by step in .ci/run.
    for step in tests.split("&&"):
        assert step.strip() in ci, f"README test step {step.strip()!r} is not run by .ci/run"
    for step in main_job.split("&&"):
        step = step.strip().replace(" -q", "")
        assert step.split()[-1] in ci and step.split()[0] in ci, f"README main-job step {step!r} is not run by .ci/run"


def test_tox_envs_named_in_issue_exist():
    tox = (ROOT / "tox.ini").read_text()
    for env in ("core", "lint", "jax", "torch", "xla", "demo"):
        assert f"[testenv:{env}]" in tox


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_named_configs_validate(name):
    cfg = get_config(name)
    assert cfg.resolution % 8 == 0 and cfg.K <= cfg.t_total


def test_paper_hyper_parameters_are_the_defaults():
    cfg = get_config("paper_large")
    assert (cfg.g_ch, cfg.beta1, cfg.beta2, cfg.lr_g, cfg.lr_d, cfg.d_steps) == (120, 0.0, 0.999, 1e-4, 5e-4, 2)
    assert (cfg.ortho_weight, cfg.ema_decay, cfg.ema_start, cfg.K, cfg.s) == (1e-4, 0.9999, 20_000, 8, 2)
    assert (cfg.t_cond, cfg.t_pred, cfg.resolution, cfg.cell, cfg.decomposition) == (5, 11, 64, "tsru_p", "stronger")
    bair = get_config("bair")
    assert (bair.g_ch, bair.d_ch, bair.t_cond, bair.t_pred, bair.lr_g, bair.lr_d) == (48, 92, 1, 15, 2e-5, 3e-5)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"cell": "lstm"}, "cell"),
        ({"decomposition": "fastest"}, "decomposition"),
        ({"K": 17}, "K"),
        ({"resolution": 60}, "resolution"),
        ({"s": 3}, "s"),
        ({"cell_k": 4}, "cell_k"),
        ({"head": "linear"}, "head"),
        ({"t_pred": 0}, "t_pred"),
        ({"lr_g": -1.0}, "lr_g"),
        ({"lr_d": float("nan")}, "lr_d"),
        ({"beta2": 1.5}, "beta2"),
        ({"adam_eps": 0.0}, "adam_eps"),
        ({"bn_eps": -1.0}, "bn_eps"),
        ({"ema_start": -5}, "ema_start"),
        ({"g_widths": (0, 4, 2)}, "g_widths"),
        ({"cell_k": 2.5}, "cell_k"),
        ({"truncation": float("nan")}, "truncation"),
    ],
)
def test_bad_configs_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"field '{field}'"):
        get_config("paper_medium", **overrides)


def test_unknown_config_fields_are_a_value_error_naming_them():
    with pytest.raises(ValueError, match="unknown field.s. bogus, sn_eps"):
        get_config("tiny", sn_eps=1e-4, bogus=1)


def test_unknown_config_name():
    with pytest.raises(ValueError, match="tiny"):
        get_config("huge")


def test_cli_info_lists_backends(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "available" in out


def test_cli_without_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "conform" in capsys.readouterr().out


def test_install_hints_are_lines_that_work_from_a_checkout(tmp_path, monkeypatch):
    """trivd is not on PyPI: a hint must install from the checkout (editable), for the running Python."""
    import os
    import re
    import sys

    from trivd_core._install import install_hint

    monkeypatch.chdir(ROOT)
    hint = install_hint("torch")
    assert hint.endswith("-m pip install -e '.[torch]'") and os.path.basename(sys.executable) in hint
    monkeypatch.chdir(tmp_path)
    assert f"-m pip install -e '{ROOT}[video]'" in install_hint("video")
    # no message or doc may suggest the index form that fails ("No matching distribution found for trivd")
    bad = re.compile(r"pip install '?trivd\[[^\]]*\](?! @)")  # the git form ("trivd[...] @ git+...") works
    files = [p for d in ("trivd", "trivd_core", "backends", "benchmarks", "conformance", "docs") for p in (ROOT / d).rglob("*")
             if p.suffix in (".py", ".md")] + [ROOT / "README.md"]
    offenders = [str(p.relative_to(ROOT)) for p in files if bad.search(p.read_text(encoding="utf-8"))
                 and p.name != "_install.py"]  # which quotes the failing form to explain it
    assert offenders == []


def test_python_dash_m_trivd_is_the_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "trivd", "--version"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip().startswith("trivd "), out
    bad = subprocess.run([sys.executable, "-m", "trivd", "train", "--steps", "-1"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_old_import_paths_still_work_with_a_deprecation_warning():
    import trivd.cli
    from conformance import gate

    with pytest.warns(DeprecationWarning, match="trivd_core.cli moved to trivd.cli"):
        from trivd_core.cli import main
    assert main is trivd.cli.main
    import trivd_core.train

    with pytest.warns(DeprecationWarning, match="moved to conformance.gate"):
        assert trivd_core.train.build_gate is gate.build_gate
    with pytest.raises(AttributeError):
        trivd_core.train.not_a_name  # noqa: B018
    import backends.numpy

    with pytest.warns(DeprecationWarning, match="backends.numpy_backend moved to backends.numpy"):
        from backends.numpy_backend import BACKEND
    assert BACKEND is backends.numpy.BACKEND
    with pytest.warns(DeprecationWarning, match="trivd_core.train.gate moved to conformance.gate"):
        from trivd_core.train.gate import MODEL_TOL
    assert MODEL_TOL == gate.MODEL_TOL


def test_messages_say_what_is_true(capsys, monkeypatch):
    """The train help names its real default config, the data-path error lists the default source, the bench report
    names the command as typed, and info prints a backend's whole reason (no cut at 90 characters)."""
    import argparse

    from benchmarks.run import _command_line
    from trivd_core.data import DataError, make_dataset

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    train_help = next(c.help for c in sub._choices_actions if c.dest == "train")  # noqa: SLF001
    assert "demo config" in train_help and "tiny" not in train_help
    with pytest.raises(DataError, match="'synthetic:demo' \\(the default\\)"):
        make_dataset("no/such/folder")
    assert _command_line(["--quick"], "trivd bench") == "trivd bench --quick"
    import backends

    hint = "install it with: python -m pip install -e '.[torch]' (the CPU build; see README, Install) - " + "x" * 60

    def load(name, **kw):
        raise backends.BackendUnavailable(hint)

    monkeypatch.setattr(backends, "load", load)
    capsys.readouterr()
    cli.main(["info"])
    assert hint in capsys.readouterr().out
