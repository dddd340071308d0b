"""``python -m benchmarks.validation_cost``: what argument checking costs in one tiny eager forward.

Prints a table: for one ``g_loss`` forward of the ``tiny`` config (batch 2) on NumPy and,
when installed, eager torch on the CPU, the number of :func:`trivd_core._validate.check_array`
calls that ran their checks and the number that were trusted (called from inside another
public function: "validate at the door" in :mod:`trivd_core._validate`), and the share of
the forward's time spent in checks, both "before" (every check at every depth, as when
each public function checked its arguments on every call: ``TRUST_INSIDE = False``) and
"after" (checks at the door only, the default).

The shares are measured, not estimated: the same forward is timed three ways, the third
with every check replaced by a no-op that only returns the namespace (the minimum any
caller needs); ``share = 1 - t_noop / t``, medians of ``--repeats`` runs after one
warm-up, the variants interleaved so that a change in the machine's load hits all three.
The design's target: at most 5% after.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np

from trivd_core import _validate, get_config
from trivd_core.discriminator import init_discriminator, sample_randomness
from trivd_core.generator import init_generator
from trivd_core.objective import g_loss


@contextlib.contextmanager
def _counting():
    """Count the checks that ran and the ones that were trusted."""
    counts = {"checked": 0, "trusted": 0}
    real = _validate._check_array_impl  # noqa: SLF001

    def counted(*args, **kwargs):
        counts["checked"] += 1
        return real(*args, **kwargs)

    _validate._check_array_impl = counted  # noqa: SLF001
    before = _validate.TRUSTED_CALLS[0]
    try:
        yield counts
    finally:
        _validate._check_array_impl = real  # noqa: SLF001
        counts["trusted"] = _validate.TRUSTED_CALLS[0] - before


@contextlib.contextmanager
def _no_checks():
    """Every check a no-op that returns the namespace."""
    real = _validate._check_array_impl  # noqa: SLF001
    _validate._check_array_impl = lambda fn, name, x, *a, **k: _validate.array_namespace(x)  # noqa: SLF001
    try:
        yield
    finally:
        _validate._check_array_impl = real  # noqa: SLF001


@contextlib.contextmanager
def _every_check():
    """Checks at every depth (the behaviour before validation moved to the door)."""
    _validate.TRUST_INSIDE = False
    try:
        yield
    finally:
        _validate.TRUST_INSIDE = True


def g_loss_inputs(convert=lambda a: a):
    """``(config, [g_params, g_state, d_params, d_state, cond, z, randomness])`` of a tiny batch-2 ``g_loss``,
    each converted by ``convert`` (NumPy by default)."""
    cfg = get_config("tiny", batch_size=2)
    rng = np.random.default_rng(0)
    gp, gs = init_generator(cfg, rng)
    dp, ds = init_discriminator(cfg, rng)
    r = cfg.resolution
    cond = rng.uniform(-1, 1, (2, cfg.t_cond, r, r, cfg.channels)).astype(np.float32)
    z = rng.standard_normal((2, cfg.z_dim)).astype(np.float32)
    rand = sample_randomness(cfg, rng, 2)
    return cfg, [convert(a) for a in (gp, gs, dp, ds, cond, z, rand)]


def measure(name: str, convert, repeats: int) -> dict:
    cfg, (gp, gs, dp, ds, cond, z, rand) = g_loss_inputs(convert)

    def forward():
        return g_loss(gp, gs, dp, ds, cond, z, rand, cfg, train=True)

    with _counting() as counts:
        forward()
    with _every_check(), _counting() as before_counts:
        forward()
    samples = {"before": [], "after": [], "bare": []}
    forward()
    for _ in range(repeats):
        for key in samples:
            with contextlib.ExitStack() as stack:
                if key == "before":
                    stack.enter_context(_every_check())
                elif key == "bare":
                    stack.enter_context(_no_checks())
                t0 = time.perf_counter()
                forward()
                samples[key].append(time.perf_counter() - t0)
    t = {k: statistics.median(v) for k, v in samples.items()}
    return {"backend": name, "checked_before": before_counts["checked"], **counts,
            "t_before_ms": 1e3 * t["before"], "t_after_ms": 1e3 * t["after"], "t_bare_ms": 1e3 * t["bare"],
            "share_before": max(0.0, 1.0 - t["bare"] / t["before"]),
            "share_after": max(0.0, 1.0 - t["bare"] / t["after"])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.validation_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed forwards per variant (default 15)")
    args = parser.parse_args(argv)
    rows = [measure("numpy", lambda t: t, args.repeats)]
    try:
        import torch

        import backends

        torch.set_num_threads(1)
        be = backends.load("torch")
        rows.append(measure("torch (eager, CPU)", be.asarray, args.repeats))
    except ImportError:
        pass
    print("| backend | checks run before / after | trusted after | forward before / after / no checks (ms) | "
          "check share before | after |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['checked_before']} / {r['checked']} | {r['trusted']} | {r['t_before_ms']:.1f} / "
              f"{r['t_after_ms']:.1f} / {r['t_bare_ms']:.1f} | {100 * r['share_before']:.1f}% | "
              f"{100 * r['share_after']:.1f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
