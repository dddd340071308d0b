"""Gradient conformance: every backend's autodiff against finite differences of the float64 reference.

For an op record, a case and a dtype, the checked scalar is the one of
:func:`conformance.records.scalarize`::

    s(x) = sum_i sum(outputs_i(x) * cot_i)

with the record's fixed standard-normal cotangents (:func:`~conformance.records.cotangents`)
and ``x`` the record's differentiable leaves (:func:`~conformance.records.differentiable_view`).
The target computes ``grad s`` with ``backend.value_and_grad`` (under
``backend.jit``: ``jax.jit``; eager torch; lazy torch_xla); the reference is only
evaluated, in float64, on the dtype-rounded inputs (as in the value suite).

**Directional finite differences.**  The check is ``<grad s, v> = d/dt s(x + t v)``
at ``t = 0``, along one fixed random direction ``v`` (standard normal per leaf,
seeded by ``crc32("<record>/<case>/direction")``), with the derivative taken by a
Richardson-extrapolated central difference of the reference::

    D(h) = (s(x + h v) - s(x - h v)) / (2 h),      R = (4 D(h/2) - D(h)) / 3,   h = FD_STEP

Why directional: it costs 4 reference evaluations per case whatever the number
of parameters (a cell case has ~300-1500 of them; per-coordinate differences
would cost thousands of loop-reference calls), and it is strong: a wrong
gradient ``g = g* + e`` passes only if ``<e, v>`` is below the tolerance, and for
a random ``v`` independent of ``e``, ``<e, v> ~ N(0, ||e||^2)``; with the bound
below, an error ``||e|| = eps ||g||`` over ``n`` parameters slips through one case
with probability ~``0.8 rtol sqrt(n) / eps``: for a gross error (eps = 1, n = 1500)
~3e-3 in float32 and ~3e-7 in float64 - and every record has 2-4 cases, each with
its own ``v``; the float64 rows and the element-wise cross-backend check carry the
fine-grained guarantee.  The backends-against-each-other check
(:func:`compare_backends`) then compares whole gradients element by element.

**Step.**  ``h = 1e-5`` on O(1) inputs along an O(1)-per-entry direction.
Truncation of ``R`` is ``O(h^4)`` (~1e-20 relative); rounding is
``~ u * S / h`` with ``u = 1.1e-16`` and ``S`` the sum of magnitudes of the terms
of ``s`` (the loop reference accumulates in float64), i.e. ~1e-11 x ``S``.  The
step is small so that no ReLU, hinge, max-pool or argmax kink is crossed: an
element within ``h |v_i|`` of a kink has probability ~``1e-5`` each, and
``|D(h) - D(h/2)|`` (:func:`reference_directional` returns it) exposes a crossing;
the pytest suite asserts it is negligible for every record and case.

**Tolerance** (:data:`GRAD_TOLERANCES`): ``|<g, v> - R| <= atol + rtol * ||g|| ||v||``
(Euclidean norms over all leaves).  By Cauchy-Schwarz this holds whenever the
gradient's own error satisfies ``||g - g*|| <= rtol ||g||``, so ``rtol`` reads as
the relative error allowed of the gradient as a whole; it does not depend on
cancellations in ``<g, v>``.

spectral_normalize: ``u_new`` and ``v`` carry no gradient (the documented
convention; the core uses ``stop_gradient``), so its finite differences are taken
of ``w / (v0^T W u_new0)`` with ``v0 = normalize(W0 u)`` and ``u_new0`` (the
reference's output) held at the unperturbed ``w0``, which is checked to reproduce
the reference's ``w_sn`` first.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Callable, Sequence

import numpy as np

from .records import (
    DTYPES,
    OpRecord,
    Tol,
    cotangents,
    differentiable_view,
    name_matches,
    replace_leaves,
    rng_for,
    scalarize,
)
from .results import Result, SkipEntry, as_records, conclude, load_skips, reference_outputs, to_float64
from .targets import BackendTarget, Target, _lookup, get_target

__all__ = [
    "FD_STEP",
    "GRAD_TOLERANCES",
    "CROSS_TOLERANCES",
    "GradCheck",
    "no_gradient_reason",
    "direction",
    "reference_directional",
    "target_gradient",
    "check_case",
    "run_grad_one",
    "run_gradients",
    "compare_backends",
    "grad_row_name",
]

#: Step of the central differences (see the module docstring).
FD_STEP = 1e-5

GRAD_TOLERANCES = {
    "float32": Tol(
        1e-4,
        1e-9,
        "float32 autodiff vs float64 central differences: each gradient entry is a float32 sum of products "
        "through the backward pass (u = 6e-8 per rounding, a few hundred roundings on the longest path of a "
        "cell: ~1e-5 of ||g|| as a bound with random signs); the reference FD error (~1e-11) is negligible; "
        "observed <= 1e-7 on jax and torch (CPU)",
    ),
    "float64": Tol(
        1e-8,
        1e-9,
        "float64 autodiff vs Richardson central differences (h = 1e-5) of the float64 reference: FD rounding "
        "~u*S/h ~ 1e-11 of the scalar's terms, truncation O(h^4); autodiff rounding ~1e-14; observed <= 3e-11",
    ),
}

CROSS_TOLERANCES = {
    "float32": Tol(
        1e-5,
        0.0,
        "two float32 autodiff implementations of the same function: each differs from the exact gradient by its "
        "own rounding (<= ~1e-6 of max|g| observed), so max|g_a - g_b| <= 1e-5 * max|g_b|",
    ),
    "float64": Tol(
        1e-11,
        0.0,
        "two float64 autodiff implementations: rounding only (u = 1.1e-16 times a few hundred operations on the "
        "longest path), so max|g_a - g_b| <= 1e-11 * max|g_b|",
    ),
}

#: ``jax.jit`` options for the one-off programs of the suite: XLA's CPU compile of a cell's
#: value-and-gradient takes ~1-2 s at the default optimisation level and about half that
#: here (measured: the jax gradient rows took 499 s before, 201 s after on a 2-core machine);
#: the programs run once, so optimising them does not pay.
JAX_COMPILE = {"compiler_options": {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}}

_ROW_PREFIX = "grad:"


def grad_row_name(record: OpRecord | str) -> str:
    """``grad:<record>``: the op column of gradient rows (and the pattern skip files use for them)."""
    return _ROW_PREFIX + (record if isinstance(record, str) else record.name)


# ---------------------------------------------------------------------------
# which targets can take gradients


def no_gradient_reason(target: Target) -> str | None:
    """``None`` if ``target`` has autodiff, else why it gets no gradient rows."""
    if not isinstance(target, BackendTarget):
        return f"{target.name} has no value_and_grad (gradients are checked on backends with autodiff)"
    if target.name == "numpy":
        return "the numpy backend has no autodiff (its value_and_grad is central differences itself)"
    if not callable(getattr(target.backend, "value_and_grad", None)):
        return f"backend {target.name!r} has no value_and_grad"
    return None


# ---------------------------------------------------------------------------
# the reference side


def direction(record: OpRecord, case: str, leaves: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The fixed random direction ``v``: one standard-normal float64 array per differentiable leaf."""
    rng = rng_for(record.name, case, "direction")
    return [rng.standard_normal(np.shape(leaf)) for leaf in leaves]


def _reference_scalar_fn(record: OpRecord, case: str, dtype: str) -> tuple[Callable, list[np.ndarray]]:
    """``(s, x0)``: ``s(leaves) -> float`` on the float64 reference, and the base point (float64 leaves)."""
    args, kwargs = record.inputs(case, dtype)
    args, kwargs = record.map_arrays(args, kwargs, to_float64)
    _, leaves, rebuild = differentiable_view(record, args, kwargs)
    fn = _lookup("reference", record.module, record.function)
    if fn is None:
        raise LookupError(f"reference has no function {record.function!r} (module reference.{record.module})")
    cots = cotangents(record, reference_outputs(record, case, dtype), case)
    if record.function == "spectral_normalize":
        fn = _frozen_spectral_normalize(fn, args, kwargs)

    def s(new_leaves):
        a, k = rebuild(list(new_leaves))
        return float(scalarize(record, record.outputs(fn(*a, **k)), cots))

    return s, [np.asarray(leaf) for leaf in leaves]


def _frozen_spectral_normalize(ref_fn: Callable, args: tuple, kwargs: dict) -> Callable:
    """``w -> (w / (v0^T W u_new0), u_new0)`` with ``v0``, ``u_new0`` of the reference at the base ``w0``."""
    w0, u = args[0], args[1]
    eps = kwargs.get("eps", 1e-12)
    w_sn0, u_new0 = ref_fn(w0, u, **kwargs)
    W0 = w0.reshape(-1, w0.shape[-1])
    Wu = W0 @ u
    v0 = Wu / max(float(np.linalg.norm(Wu)), eps)
    sigma0 = float(v0 @ W0 @ u_new0)
    if not np.allclose(w0 / sigma0, w_sn0, rtol=1e-12, atol=0):  # the frozen form must be the reference's
        raise AssertionError("spectral_normalize: the frozen-sigma form does not reproduce the reference's w_sn")

    def frozen(w, u_, **_kw):
        return w / float(v0 @ w.reshape(-1, w.shape[-1]) @ u_new0), u_new0

    return frozen


@functools.cache
def reference_directional(record: OpRecord, case: str, dtype: str, step: float = FD_STEP) -> tuple[float, float]:
    """``(R, |D(h) - D(h/2)|)``: the Richardson derivative of the reference scalar along :func:`direction`.

    In float64 on ``record.inputs(case, dtype)`` (for float32, the rounded inputs);
    cached per process.  The second value estimates the finite-difference error
    (large if a kink was crossed).
    """
    s, x0 = _reference_scalar_fn(record, case, dtype)
    v = direction(record, case, x0)

    def D(h):
        plus = s([x + h * d for x, d in zip(x0, v)])
        minus = s([x - h * d for x, d in zip(x0, v)])
        return (plus - minus) / (2 * h)

    d1, d2 = D(step), D(step / 2)
    return (4 * d2 - d1) / 3, abs(d1 - d2)


# ---------------------------------------------------------------------------
# the target side

_GRAD_CACHE: dict[tuple, tuple[float, list[np.ndarray]]] = {}


def target_gradient(target: Target, record: OpRecord, case: str, dtype: str, *, jit: bool = True):
    """``(value, grads)`` of the record's scalar on ``target`` (NumPy arrays, one per differentiable leaf).

    ``backend.value_and_grad`` over the differentiable leaves, non-differentiable
    arguments closed over; under ``backend.jit`` unless ``jit=False``.  Cached per
    (target, record, case, dtype, jit) within the process.
    """
    key = (target.name, id(target), id(record), case, dtype, jit)
    hit = _GRAD_CACHE.get(key)
    if hit is not None:
        return hit
    reason = no_gradient_reason(target)
    if reason:
        raise TypeError(reason)
    backend = target.backend
    fn = target.resolve(record)
    if fn is None:
        raise LookupError(f"{target.name} has no function {record.function!r}")
    args, kwargs = record.inputs(case, dtype)
    paths, leaves, _ = differentiable_view(record, args, kwargs)
    targs, tkwargs = record.map_arrays(args, kwargs, target.to_target)
    cots = cotangents(record, reference_outputs(record, case, dtype), case)
    tcots = [target.to_target(c.astype(dtype)) for c in cots]

    def f(*new_leaves):
        a, k = replace_leaves(targs, tkwargs, paths, new_leaves)
        return scalarize(record, record.outputs(fn(*a, **k)), tcots)

    vg = backend.value_and_grad(f, tuple(range(len(leaves))))
    if jit:
        vg = backend.jit(vg, **(JAX_COMPILE if target.name == "jax" else {}))
    value, grads = vg(*[target.to_target(leaf) for leaf in leaves])
    grads = backend.to_numpy(list(grads))
    out = (float(np.asarray(backend.to_numpy(value))), [np.asarray(g) for g in grads])
    _GRAD_CACHE[key] = out
    return out


# ---------------------------------------------------------------------------
# checks


class GradCheck:
    """Outcome of one case: ``err = |<g, v> - R|``, ``scale = ||g|| ||v||``, and problems found."""

    def __init__(self, err: float, scale: float, fd_err: float, problems: list[str]):
        self.err, self.scale, self.fd_err, self.problems = err, scale, fd_err, problems


def check_case(target: Target, record: OpRecord, case: str, dtype: str, tol: Tol, *, jit: bool = True) -> GradCheck:
    """Check one case: shapes, dtypes and finiteness of the gradient, then the directional derivative."""
    args, kwargs = record.inputs(case, dtype)
    paths, leaves, _ = differentiable_view(record, args, kwargs)
    _, grads = target_gradient(target, record, case, dtype, jit=jit)
    problems = []
    if len(grads) != len(leaves):
        return GradCheck(math.nan, math.nan, math.nan, [f"{len(grads)} gradients for {len(leaves)} leaves"])
    for path, leaf, g in zip(paths, leaves, grads):
        if g.shape != leaf.shape:
            problems.append(f"gradient at {path}: shape {g.shape}, expected {leaf.shape}")
        elif g.dtype != np.dtype(dtype):
            problems.append(f"gradient at {path}: dtype {g.dtype}, expected {dtype}")
        elif not np.all(np.isfinite(g)):
            problems.append(f"gradient at {path}: non-finite entries")
    if problems:
        return GradCheck(math.nan, math.nan, math.nan, problems)
    R, fd_err = reference_directional(record, case, dtype)
    v = direction(record, case, leaves)
    g64 = [g.astype(np.float64) for g in grads]
    dot = math.fsum(float(np.vdot(g, d)) for g, d in zip(g64, v))
    gnorm = math.sqrt(math.fsum(float(np.vdot(g, g)) for g in g64))
    vnorm = math.sqrt(math.fsum(float(np.vdot(d, d)) for d in v))
    err, scale = abs(dot - R), gnorm * vnorm
    if not err <= tol.atol + tol.rtol * scale:
        problems.append(
            f"<grad, v> = {dot!r} but the reference's directional derivative is {R!r} "
            f"(|diff| {err:.3e} > {tol.atol:.0e} + {tol.rtol:.0e} * ||g|| ||v|| = {tol.atol + tol.rtol * scale:.3e})"
        )
    return GradCheck(err, scale, fd_err, problems)


def run_grad_one(
    target: Target, record: OpRecord, dtype: str, skips: Sequence[SkipEntry] = (), *, jit: bool = True
) -> Result:
    """One gradient row: every case of ``record`` in ``dtype`` on ``target`` (status as in the value suite)."""
    tol = GRAD_TOLERANCES[dtype]
    name = grad_row_name(record)
    res = Result(target.name, name, dtype, "pass", tolerance=tol)
    entry = next(
        (e for e in skips if (e.dtype is None or e.dtype == dtype) and name_matches(e.pattern, name)),
        None,
    )
    if entry is not None and not entry.xfail:
        res.status, res.message = "skip", entry.reason
        return res
    reason = no_gradient_reason(target)
    if reason:
        res.status, res.message = "skip", reason
        return res
    if not record.diff_args:
        res.status, res.message = "skip", "the record has no differentiable arguments"
        return res
    if dtype == "float64" and not target.supports_float64:
        res.status, res.message = "skip", f"{target.name} does not support float64"
        return res
    if target.resolve(record) is None:
        res.status, res.message = "fail", f"{target.name} has no function {record.function!r}"
        return res
    problems, errs, rels = [], [], []
    for case in record.cases:
        try:
            chk = check_case(target, record, case, dtype, tol, jit=jit)
        except Exception as exc:
            problems.append(f"[{case}] raised {type(exc).__name__}: {exc}")
            continue
        if not math.isnan(chk.err):
            errs.append(chk.err)
            rels.append(chk.err / (chk.scale + tol.atol / tol.rtol))
        problems += [f"[{case}] {p}" for p in chk.problems]
    return conclude(res, errs, rels, problems, entry)


def run_gradients(
    target: Target | str,
    records: Sequence[OpRecord | str] | str | None = None,
    dtypes: Sequence[str] = DTYPES,
    *,
    skips: Sequence[SkipEntry] | None = None,
    progress: Callable[[Result], None] | None = None,
    jit: bool = True,
) -> list[Result]:
    """Gradient rows (``grad:<record>``) of ``records`` (default: all) on ``target`` in each of ``dtypes``."""
    target = get_target(target)
    skips = load_skips(target) if skips is None else skips
    results = []
    for record in as_records(records):
        for dtype in dtypes:
            r = run_grad_one(target, record, dtype, skips, jit=jit)
            results.append(r)
            if progress is not None:
                progress(r)
    return results


def compare_backends(a: Target, b: Target, record: OpRecord, dtype: str, *, jit: bool = True) -> Result:
    """Whole gradients of ``a`` against ``b``, element by element: ``max|g_a - g_b| <= rtol * max|g_b|``."""
    tol = CROSS_TOLERANCES[dtype]
    res = Result(f"{a.name} vs {b.name}", grad_row_name(record), dtype, "pass", tolerance=tol)
    for t in (a, b):
        reason = no_gradient_reason(t)
        if reason:
            res.status, res.message = "skip", reason
            return res
        if dtype == "float64" and not t.supports_float64:
            res.status, res.message = "skip", f"{t.name} does not support float64"
            return res
    problems, errs, rels = [], [], []
    for case in record.cases:
        try:
            _, ga = target_gradient(a, record, case, dtype, jit=jit)
            _, gb = target_gradient(b, record, case, dtype, jit=jit)
        except Exception as exc:
            problems.append(f"[{case}] raised {type(exc).__name__}: {exc}")
            continue
        if [g.shape for g in ga] != [g.shape for g in gb]:
            problems.append(f"[{case}] gradient shapes differ")
            continue
        scale = max(float(np.max(np.abs(g), initial=0.0)) for g in gb)
        err = max(float(np.max(np.abs(x.astype(np.float64) - y), initial=0.0)) for x, y in zip(ga, gb))
        errs.append(err)
        rels.append(err / scale if scale > 0 else (0.0 if err == 0 else math.inf))
        if not err <= tol.atol + tol.rtol * scale:
            problems.append(f"[{case}] max|g_a - g_b| = {err:.3e} > {tol.rtol:.0e} * max|g_b| ({scale:.3e})")
    res.max_abs = max(errs) if errs else math.nan
    res.max_rel = max(rels) if rels else math.nan
    if problems:
        res.status, res.message = "fail", " | ".join(problems)
    return res


def backend_pairs(specs: Sequence[str]) -> list[tuple[str, str]]:
    """Unordered pairs of the gradient-capable backend names among ``specs`` (names only; may be unavailable)."""
    names = [s for s in specs if not s.startswith("port:") and s not in ("numpy", "array_api_strict")]
    return list(itertools.combinations(names, 2))


def specs_from_env() -> list[str]:
    """``$TRIVD_CONFORMANCE_BACKENDS`` (default ``numpy,array_api_strict``), as the value suite reads it."""
    specs = [s.strip() for s in os.environ.get("TRIVD_CONFORMANCE_BACKENDS", "numpy,array_api_strict").split(",")]
    return [s for s in specs if s]
