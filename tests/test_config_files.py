"""Configs from files and `--set` overrides (configs.load_config / parse_overrides) and their CLI errors."""

from __future__ import annotations

import json
import math

import pytest

from trivd import cli
from trivd import train as train_cmd
from trivd_core.configs import CONFIGS, config_from_mapping, get_config, load_config, parse_overrides


def test_named_config_and_paper_configs_have_no_reconstruction_term():
    assert load_config("tiny") == get_config("tiny")
    for name in ("paper_medium", "paper_large", "bair", "tiny"):
        c = CONFIGS[name]
        assert (c.recon_weight, c.latent_std, c.d_steps) == (0.0, 1.0, 2)  # the paper's objective and latents
    demo = CONFIGS["demo"]  # the demo's documented deviations (docs/design.md)
    assert (demo.recon_weight, demo.latent_std, demo.d_steps, demo.g_ch) == (100.0, 0.0, 1, 8)


def test_json_and_toml_files_with_a_base(tmp_path):
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"base": "tiny", "name": "mine", "g_ch": 6, "g_widths": [4, 2, 1], "truncation": None}))
    cfg = load_config(str(js))
    assert (cfg.name, cfg.g_ch, cfg.g_widths, cfg.resolution, cfg.truncation) == ("mine", 6, (4, 2, 1), 32, None)
    toml = tmp_path / "c.toml"
    toml.write_text('base = "demo"\nname = "t"\nrecon_weight = 2.5\nlr_g = 3e-4\n')
    cfg = load_config(str(toml))
    assert (cfg.recon_weight, cfg.lr_g, cfg.g_ch) == (2.5, 3e-4, CONFIGS["demo"].g_ch)
    # a run's config.json (fields under "config") is a config file too
    run = tmp_path / "config.json"
    run.write_text(json.dumps({"config": get_config("demo").to_dict(), "backend": "jax"}))
    assert load_config(str(run)) == get_config("demo")
    # without a base: the paper's defaults
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"name": "bare"}))
    assert load_config(str(bare)).g_ch == 48


@pytest.mark.parametrize("content, suffix, match", [
    ('{"g_ch": 2.5}', ".json", "field 'g_ch' must be an int"),
    ('{"bogus": 1}', ".json", "unknown config field"),
    ('{"base": "huge"}', ".json", "'base' must name a registered config"),
    ("[1, 2]", ".json", "a table of fields"),
    ("{not json", ".json", "not valid JSON"),
    ("g_ch = ", ".toml", "not valid TOML"),
    ('lr_g = "fast"', ".toml", "field 'lr_g' must be a number"),
    ('beta2 = 1.5', ".toml", "field 'beta2' must be in"),
])
def test_bad_files_name_the_file_and_field(tmp_path, content, suffix, match):
    f = tmp_path / f"bad{suffix}"
    f.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        load_config(str(f))
    assert str(f) in str(info.value)


def test_load_config_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown config 'huge'"):
        load_config("huge")
    with pytest.raises(ValueError, match="cannot read it"):
        load_config(str(tmp_path / "missing.json"))


def test_parse_overrides_types_and_errors():
    base = get_config("tiny")
    cfg = parse_overrides(["g_ch=8", "recon_weight=0.5", "cell=convgru", "truncation=null", "d_widths=[1,2,4,8,8]"],
                          base)
    assert (cfg.g_ch, cfg.recon_weight, cfg.cell, cfg.truncation, cfg.d_widths) == (8, 0.5, "convgru", None,
                                                                                     (1, 2, 4, 8, 8))
    assert parse_overrides([], base) == base
    for items, match in ((["g_ch"], "KEY=VALUE"), (["=3"], "KEY=VALUE"), (["g_ch=abc"], "must be an int"),
                         (["nope=1"], "unknown config field"), (["recon_weight=-1"], "recon_weight"),
                         (["lr_d=NaN"], "lr_d"), (["cell=lstm"], "field 'cell'"), (["g_widths=[1,2]"], "g_widths")):
        with pytest.raises(ValueError, match=match):
            parse_overrides(items, base)


@pytest.mark.parametrize("field, value", [("lr_g", -1.0), ("lr_d", math.nan), ("beta2", 1.5), ("adam_eps", 0.0),
                                          ("bn_eps", -1.0), ("ema_start", -5), ("g_ch", 0), ("cell_k", 3.0),
                                          ("truncation", math.nan), ("recon_weight", math.inf)])
def test_validation_refuses_bad_hyper_parameters(field, value):
    with pytest.raises(ValueError, match=f"field '{field}'"):
        get_config("tiny", **{field: value})


def test_config_from_mapping_rejects_non_tables():
    with pytest.raises(ValueError, match="a table of fields"):
        config_from_mapping([1, 2])




def test_cli_info_reads_a_config_file(tmp_path, capsys):
    f = tmp_path / "c.toml"
    f.write_text('base = "tiny"\nname = "from-file"\ng_ch = 3\n')
    assert cli.main(["info", "--config", str(f)]) == 0
    out = capsys.readouterr().out
    assert "'from-file'" in out and "g_ch 3" in out
    assert cli.main(["info", "--config", str(tmp_path / "none.toml")]) == 2
    assert "cannot read it" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["--set", "g_ch=abc"], "field 'g_ch' must be an int"),
    (["--set", "novalue"], "KEY=VALUE"),
    (["--set", "bogus=1"], "unknown config field(s) bogus"),
    (["--config", "huge"], "unknown config 'huge'"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
    (["--steps", "-1"], "--steps must be an integer >= 0, got -1"),
    (["--ckpt-every", "0"], "--ckpt-every must be an integer >= 1"),
    (["--keep", "0"], "--keep must be an integer >= 1"),
    (["--log-every", "-1"], "--log-every must be an integer >= 1"),
    (["--seed", "-1"], "--seed must be an integer >= 0"),
    (["--workers", "-1"], "--workers must be an integer >= 0"),
    (["--eval-every", "-5"], "--eval-every must be an integer >= 0"),
    (["--eval-clips", "0"], "--eval-clips must be an integer >= 1"),
    (["--threads", "0"], "--threads must be an integer >= 1"),
])
def test_cli_train_usage_errors_exit_2_with_one_line_before_starting(tmp_path, capsys, argv, match):
    assert cli.main(["train", "--run-dir", str(tmp_path / "r"), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # nothing was created


def test_cli_train_run_dir_below_a_file_exits_2(tmp_path, capsys):
    f = tmp_path / "plain.txt"
    f.write_text("x")
    for run_dir in (f, f / "below"):
        assert cli.main(["train", "--run-dir", str(run_dir), "--no-progress"]) == 2
        assert "is a file, not a folder" in capsys.readouterr().err


def _resumable(tmp_path, config_record=None):
    """A run directory as `trivd train` leaves it (config.json; no checkpoint is needed to be refused)."""
    from trivd_core.configs import get_config

    run = tmp_path / "run"
    run.mkdir()
    rec = {"config": get_config("tiny").to_dict(), "backend": "torch", "seed": 0,
           "args": {"config": "tiny", "data": "synthetic", "seed": 0, "backend": "torch"}}
    if config_record is not None:
        rec["config"] = config_record
    (run / "config.json").write_text(json.dumps(rec))
    return run


@pytest.mark.parametrize("argv, match", [
    (["--seed", "5"], "--seed 5 differs from the run's 0"),
    (["--data", "synthetic:pan"], "--data synthetic:pan differs from the run's 'synthetic'"),
    (["--batch-size", "3"], "--batch-size 3 differs from the run's 8"),
    (["--config", "demo"], "--config/--set cannot change on --resume"),
    (["--set", "g_ch=4"], "--config/--set cannot change on --resume"),
    (["--data-option", "holdout=0.1"], "--data-option cannot change on --resume"),
])
def test_cli_resume_refuses_changed_run_settings(tmp_path, capsys, argv, match):
    run = _resumable(tmp_path)
    assert cli.main(["train", "--resume", str(run), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err, err


def test_cli_resume_of_an_invalid_config_json_exits_2(tmp_path, capsys):
    from trivd_core.configs import get_config

    run = _resumable(tmp_path, {**get_config("tiny").to_dict(), "g_ch": "wide"})
    assert cli.main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not hold a valid config" in err and "g_ch" in err and "\n" not in err
    (run / "config.json").write_text("{not json")
    assert cli.main(["train", "--resume", str(run)]) == 2
    assert "cannot read its config.json" in capsys.readouterr().err


def test_cli_devices_on_a_one_device_engine_and_too_small_data_exit_2(tmp_path, capsys):
    assert cli.main(["train", "--run-dir", str(tmp_path / "r"), "--backend", "torch", "--devices", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--devices 2" in err and "one device" in err and "\n" not in err
    pytest.importorskip("torch")
    import numpy as np

    small = tmp_path / "five.npy"
    np.save(small, np.zeros((5, 8, 32, 32, 3), np.uint8))
    assert cli.main(["train", "--run-dir", str(tmp_path / "s"), "--backend", "torch", "--data", str(small),
                     "--skip-conformance", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "5 clips, fewer than the batch of 8" in err.splitlines()[-1] and "Traceback" not in err


def test_a_typo_in_a_subcommand_option_shows_that_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--stepz", "3"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: trivd train" in err and "trivd train: error: unrecognized arguments: --stepz 3" in err


def test_info_names_the_default_of_each_question(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "default backend of train/eval/predict:" in out and "default array backend of backends.load()" in out


def test_grey_array_data_trains_a_grey_model_unless_told_otherwise(tmp_path):
    import numpy as np

    from trivd_core.configs import get_config
    from trivd_core.data import DataError, make_dataset

    grey = tmp_path / "grey.npy"
    np.save(grey, np.zeros((6, 8, 32, 32), np.uint8))
    cfg = get_config("demo")
    opts = {"data": str(grey), "data_options": {"layout": "NTHW"}}
    assert "training a 1-channel model" in train_cmd._grey_data_note(opts, cfg, [])
    assert train_cmd._grey_data_note(opts, cfg, ["channels=3"]) is None  # the user asked for colour
    assert train_cmd._grey_data_note({**opts, "data_options": {"layout": "NTHW", "grey": "repeat"}}, cfg, []) is None
    colour = tmp_path / "colour.npy"
    np.save(colour, np.zeros((6, 8, 32, 32, 3), np.uint8))
    assert train_cmd._grey_data_note({"data": str(colour), "data_options": {}}, cfg, []) is None
    # the ambiguity message says how to answer it on the command line too
    with pytest.raises(DataError, match="--data-option layout=TNHW"):
        make_dataset(grey, resolution=32, t=5)


def test_a_video_folder_smaller_than_the_batch_suggests_clips_per_video(tmp_path, capsys):
    pytest.importorskip("av")
    pytest.importorskip("torch")
    from trivd_core.data import write_video
    from trivd_core.data.synthetic import SyntheticShapes

    root = tmp_path / "videos"
    root.mkdir()
    for i in range(3):
        write_video(root / f"{i}.mkv", SyntheticShapes(32, 8, seed=1).clip(i))
    argv = ["train", "--backend", "torch", "--data", str(root), "--skip-conformance", "--no-progress",
            "--eval-every", "0", "--steps", "1", "--workers", "0"]
    assert cli.main([*argv, "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "3 clips, fewer than the batch of 8" in err and "--data-option clips_per_video=3" in err
    assert cli.main([*argv, "--run-dir", str(tmp_path / "r2"), "--data-option", "clips_per_video=3"]) == 0
