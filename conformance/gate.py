"""The pre-training gate (design card): a quick conformance subset plus one G and one D forward.

``trivd train`` builds it (``build_gate(config, backend, engine=engine)``) and the
training loop calls it before the first step.  The gate runs

1. ``runner.run(backend, records, dtypes=("float32",))`` over
   ``runner.quick_subset()`` with the TSRU_p record replaced by the configured cell
   (warps, the cell, the losses and heads) - each op against the float64 reference;
2. :func:`model_forward_check`: one generator forward (training mode) and one forward
   of every sub-discriminator on the backend, against the NumPy core on the same
   weights and inputs.

Tolerances of the model check (float32 on both sides): G's frames are ``tanh`` outputs
in ``[-1, 1]``; D's scores are compared relative to ``1 + max |score|``.  Both must be
within ``MODEL_TOL = 1e-3``.  Reason: float32 re-association across ~50 layers (with
batch norm dividing by batch standard deviations) moves results by about 1e-6..1e-5
(observed on JAX/CPU: see docs/training.md), while a reduced-precision matmul (one
bfloat16 pass: 8-bit mantissa, ~4e-3 relative per product; TF32: 11 bits, ~5e-4) or a
layout bug moves them by 1e-3..1: the threshold sits a factor >= 10 from both.
"""

from __future__ import annotations

import time

import numpy as np

from trivd_core.configs import Config
from trivd_core.discriminator import discriminate, init_discriminator, sample_randomness
from trivd_core.generator import generate, init_generator

from . import runner as _runner

__all__ = ["MODEL_TOL", "model_forward_check", "gate_records", "build_gate"]

MODEL_TOL = 1e-3


def model_forward_check(config: Config, backend, *, seed: int = 0, batch: int = 2,
                        engine=None) -> list[tuple[str, float, bool]]:
    """``[(name, error, ok)]`` for one G forward and each sub-discriminator's forward (see module docstring).

    With ``engine``, the G forward is the engine's own compiled ``predict`` (evaluation
    mode, on the engine's devices and sharding) from ``engine.init(seed)``, against
    ``generate(..., train=False)`` of the NumPy core on the exported weights; the
    compiled function is the one the run later uses for its samples.  Without, G runs
    eagerly on ``backend`` arrays in training mode.
    """
    rng = np.random.default_rng(seed)
    gp, gs = init_generator(config, rng)
    dp, ds = init_discriminator(config, rng)
    r = config.resolution
    video = rng.uniform(-1, 1, (batch, config.t_total, r, r, config.channels)).astype(np.float32)
    z = rng.standard_normal((batch, config.z_dim)).astype(np.float32)
    rand = sample_randomness(config, rng, batch)
    cond = video[:, : config.t_cond]
    out = []
    if engine is not None:
        tree = engine.export(engine.init(seed))
        frames_np, _ = generate(tree["g_params"], tree["g_state"], cond, z, train=False)
        frames_be = engine.predict(engine.restore(tree), cond, z, ema=False)
    else:
        frames_np, _ = generate(gp, gs, cond, z, train=True)
        frames_be = generate(backend.asarray(gp), backend.asarray(gs), backend.asarray(cond), backend.asarray(z),
                             train=True)[0]
    err = float(np.max(np.abs(np.asarray(backend.to_numpy(frames_be), np.float64) - frames_np)))
    out.append(("generate (G forward)", err, err <= MODEL_TOL))
    scores_np, _ = discriminate(dp, ds, video, rand, config, train=True)
    scores_be, _ = discriminate(backend.asarray(dp), backend.asarray(ds), backend.asarray(video),
                                backend.asarray(rand), config, train=True)
    scores_be = backend.to_numpy(scores_be)
    for name, expected in scores_np.items():
        got = np.asarray(scores_be[name], np.float64)
        err = float(np.max(np.abs(got - expected)) / (1.0 + np.max(np.abs(expected))))
        out.append((f"discriminate[{name}] (D forward)", err, err <= MODEL_TOL))
    return out


def _batch(engine) -> int:
    n = len(getattr(engine, "devices", ()) or ()) if engine is not None else 1
    return max(2, n)


def gate_records(config: Config, runner=_runner) -> list[str]:
    """The quick subset with the configured cell in place of TSRU_p."""
    names = [n for n in runner.quick_subset() if not n.startswith("cell_step[")]
    known = {r.name for r in runner.RECORDS}
    cell = f"cell_step[{config.cell}]"
    if cell in known:
        names.insert(4 if len(names) >= 4 else len(names), cell)
    return names


def build_gate(config: Config, backend, *, engine=None, runner=_runner):
    """A ``gate()`` callable for :func:`trivd_core.train.train`: returns ``(ok, report)``.

    ``runner`` is the conformance runner (this package's; a stand-in in tests).
    """

    def gate() -> tuple[bool, str]:
        t0 = time.perf_counter()
        results = runner.run(backend.name, gate_records(config, runner), dtypes=("float32",))
        failed = [r for r in results if r.failed]
        lines = [f"{r.op}@{r.dtype}: max abs err {r.max_abs:.3g}, max rel err {r.max_rel:.3g} - {r.message}"
                 for r in failed]
        model = model_forward_check(config, backend, engine=engine, batch=_batch(engine))
        lines += [f"{name}: error {err:.3g} > {MODEL_TOL:g}" for name, err, ok in model if not ok]
        seconds = time.perf_counter() - t0
        n = len(results) + len(model)
        if lines:
            report = (f"conformance gate FAILED on backend {backend.name!r} ({len(lines)} of {n} checks, {seconds:.1f} s):\n  "
                      + "\n  ".join(lines)
                      + "\nrefusing to train; fix the backend/device settings or pass --skip-conformance")
            return False, report
        worst = max(err for _, err, _ in model)
        return True, (f"conformance gate passed on backend {backend.name!r}: {len(results)} op records (float32) and "
                      f"G/D forwards (max error {worst:.2g} <= {MODEL_TOL:g}) in {seconds:.1f} s")

    return gate
