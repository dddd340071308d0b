"""Helpers shared by several test modules (registered as ``_test_helpers`` by ``tests/conftest.py``).

* Comparisons of the core-vs-reference tests (``to_np``, ``close64``, ``close32``; the
  array libraries themselves come from the ``xp`` fixture of ``tests/conftest.py``).  The tolerances are the ones those modules derive in
  their docstrings: float64 rtol 1e-10 (project rule) with atol 1e-12 for ~0 entries;
  float32 against the float64 reference rtol = atol = 2e-5 (unit roundoff 6e-8 times
  at most ~100 rounded O(1) operations per output).
* Nested-dict trees (``tree_map``, the core's, re-exported; ``tree_leaves`` with paths; ``flat``).
* An independent oracle of the pixel-wise warp (Eq. 11) by NumPy slicing
  (``shift``, ``warp_adjoint``).
* The training engine's step-0 export for checkpoint-based tests (``init_tree``).
* The loop's framework-free engine ``CountingEngine`` with ``LOOP_CFG`` and ``loop_loader``.
* A job's training state against one process's (``assert_job_equals_one_process``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from trivd_core.tree import tree_map  # noqa: F401 - re-exported for the test modules


def to_np(a):
    return np.asarray(a)


def close64(got, want):
    np.testing.assert_allclose(to_np(got), want, rtol=1e-10, atol=1e-12)


def close32(got, want):
    got = to_np(got)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-5, atol=2e-5)


def flat(tree, prefix=""):
    """``{"/a/b": NumPy leaf}`` of a nested dict (compare two trees leaf by leaf with readable paths)."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(flat(v, f"{prefix}/{k}"))
        return out
    return {prefix: np.asarray(tree)}


def tree_leaves(tree, path=()):
    """``(path, leaf)`` pairs of a nested dict, depth first in insertion order."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from tree_leaves(v, (*path, k))
    else:
        yield path, tree


def shift(h, dy, dx):
    """``out[:, i, j] = h[:, i + dy, j + dx]`` where that is inside the image, else 0 (NumPy slicing)."""
    out = np.zeros_like(h)
    H, W = h.shape[1], h.shape[2]
    i0, i1 = max(0, -dy), min(H, H - dy)
    j0, j1 = max(0, -dx), min(W, W - dx)
    if i0 < i1 and j0 < j1:
        out[:, i0:i1, j0:j1] = h[:, i0 + dy : i1 + dy, j0 + dx : j1 + dx]
    return out


def warp_adjoint(h, W, G, k):
    """``(dL/dh, dL/dW)`` of ``L = sum(G * pixelwise_warp(h, W))`` (Eq. 11) by NumPy slicing.

    Tap ``q = m*k + n`` reads ``h`` at offset ``(m - p, n - p)``, ``p = (k-1)/2``, so
    ``dW_q = sum_c G * shift_q(h)`` and ``dh = sum_q shift_{-q}(W_q * G)``.
    """
    p = (k - 1) // 2
    dh, dW = np.zeros_like(h), np.zeros_like(W)
    for q in range(k * k):
        dy, dx = q // k - p, q % k - p
        dW[..., q] = np.sum(G * shift(h, dy, dx), axis=-1)
        dh += shift(W[..., q : q + 1] * G, -dy, -dx)
    return dh, dW


@functools.lru_cache(maxsize=8)
def init_tree(cfg, seed=0):
    """The engine's step-0 export and the backend that made it, cached per ``(cfg, seed)``; read-only.

    torch's ``engine.init`` when torch is installed, else the same tree by hand
    (G+E, then D, from one generator; zero Adam moments) - the ``core`` tox env has
    no framework.  Callers that write it (``save_checkpoint``) get a copy there.
    """
    from trivd_core import generator
    from trivd_core.discriminator import init_discriminator

    if importlib.util.find_spec("torch") is not None:
        import backends

        engine = backends.load("torch").engine(cfg)
        return engine.export(engine.init(seed)), "torch"
    rng = np.random.default_rng(seed)
    gp, gs = generator.init_generator(cfg, rng)
    dp, ds = init_discriminator(cfg, rng)
    zeros = functools.partial(tree_map, np.zeros_like)
    return {"step": np.int64(0), "g_params": gp, "g_state": gs, "d_params": dp, "d_state": ds, "ema": gp,
            "opt_g": {"mu": zeros(gp), "nu": zeros(gp), "count": np.int64(0)},
            "opt_d": {"mu": zeros(dp), "nu": zeros(dp), "count": np.int64(0)}}, "numpy"


# -- the training loop with a framework-free engine (tests/test_train.py, tests/test_hardening.py) -----------

def _loop_cfg():
    from trivd_core import get_config

    return get_config("tiny", t_cond=1, t_pred=2, K=2, batch_size=4, decomposition="faster")


#: A config small enough for the loop tests (its data is drawn, never run through a model).
LOOP_CFG = _loop_cfg()


def assert_tree_equal(a, b, path=""):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            assert_tree_equal(a[k], b[k], f"{path}/{k}")
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), path


def loop_loader(seed=0, batch=4, length=64):
    from trivd_core.data import Loader, make_dataset

    ds = make_dataset("synthetic", resolution=LOOP_CFG.resolution, t=LOOP_CFG.t_total, channels=3, seed=seed, length=length)
    return Loader(ds, batch, seed=seed, workers=0)


class CountingEngine:
    """A deterministic NumPy engine: the state folds in every input (any change of inputs changes it)."""

    name = "counting"
    devices = ["cpu"]

    def __init__(self, fail_at=None, interrupt_at=None):
        self.fail_at, self.interrupt_at, self.calls = fail_at, interrupt_at, 0

    def init(self, seed):
        return {"step": np.int64(0), "g_params": {"w": np.full((3,), float(seed), np.float32)}, "ema": {"w": np.zeros(3, np.float32)}}

    def step(self, ts, inputs):
        self.calls += 1
        if self.interrupt_at == int(ts["step"]) + 1:
            os.kill(os.getpid(), signal.SIGINT)
        summary = np.float32(inputs["real"].mean() + inputs["z_d"].sum() + inputs["z_g"].sum()
                             + inputs["rand_d"]["idx"].sum() + inputs["rand_g"]["offsets"].sum())
        w = ts["g_params"]["w"] * np.float32(0.5) + summary
        loss = float("nan") if self.fail_at == int(ts["step"]) + 1 else float(w.sum())
        return ({"step": ts["step"] + 1, "g_params": {"w": w}, "ema": {"w": (ts["ema"]["w"] + w) / 2}},
                {"d_loss": loss, "g_loss": float(summary)})

    def export(self, ts):
        return {k: (np.asarray(v) if not isinstance(v, dict) else {a: np.asarray(b) for a, b in v.items()})
                for k, v in ts.items()}

    def restore(self, tree):
        return self.export(tree)

    def predict(self, ts, cond, z, *, ema=True):
        return np.repeat(cond[:, -1:], LOOP_CFG.t_pred, axis=1) * 0 + np.tanh(ts["g_params"]["w"][0])


# -- a job of several processes against one (tests/test_job_torch.py derives the bounds in its docstring) --------

#: weights and states (absolute), metrics (relative), Adam's moments (relative to the largest of their tree)
JOB_WEIGHT_TOL, JOB_METRIC_RTOL, JOB_MOMENT_RTOL = 1e-6, 1e-5, 1e-3


def assert_job_equals_one_process(a: dict, b: dict) -> None:
    """Two exported training states within the bounds derived in tests/test_job_torch.py (run with adam_eps = 1)."""
    fa, fb = flat(a), flat(b)
    assert set(fa) == set(fb) and len(fa) > 100
    scale = {}
    for k, v in fa.items():
        if k.startswith("/opt_") and v.dtype.kind == "f" and v.size:
            group = "/".join(k.split("/")[:3])  # /opt_g/mu, /opt_g/nu, ...
            scale[group] = max(scale.get(group, 0.0), float(np.abs(v).max()))
    for k in fa:
        assert fa[k].dtype == fb[k].dtype, k
        if fa[k].dtype.kind != "f":
            assert np.array_equal(fa[k], fb[k]), k
            continue
        d = np.abs(fa[k].astype(np.float64) - fb[k].astype(np.float64))
        tol = JOB_MOMENT_RTOL * scale["/".join(k.split("/")[:3])] if k.startswith("/opt_") else JOB_WEIGHT_TOL
        assert d.size == 0 or d.max() <= tol, (k, d.max(), tol)


# -- the tutorial's chapters (tests/test_tutorial.py, tests/test_tutorial_motion.py) -------------------------

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial"
CHAPTERS = sorted(TUTORIAL.glob("[0-9][0-9]_*.py"))
PNG = b"\x89PNG\r\n\x1a\n"


def figures_named(script: Path) -> list[str]:
    """The figure names a chapter saves: ``save(fig, "NAME.png")``."""
    return re.findall(r"""save\(\s*fig\s*,\s*["']([\w.-]+\.png)["']""", script.read_text(encoding="utf-8"))


def run_chapter(script: Path, out: Path, **env_extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRIVD_TUTORIAL_QUICK": "1", "TRIVD_TUTORIAL_OUT": str(out), "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", **env_extra}
    log = out / "log.txt"
    with open(log, "w") as f:  # a file, not a pipe: a chapter that runs a subprocess cannot fill it and hang
        done = subprocess.run([sys.executable, str(script)], cwd=script.parent, env=env, stdout=f,
                              stderr=subprocess.STDOUT, timeout=600)
    done.output = log.read_text()
    return done


def check_figures(script: Path, out: Path, output: str) -> None:
    names = figures_named(script)
    assert names, f"{script.name} saves no figure"
    for name in names:
        path = out / name
        assert path.is_file() and path.stat().st_size > 1000, f"{script.name} did not write {name}:\n{output[-3000:]}"
        assert path.read_bytes()[:8] == PNG, f"{name} is not a PNG"
