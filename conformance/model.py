"""Model-level conformance: the whole TrIVD-GAN-FP model on a backend against numpy-core float64.

The op records (``records.py``) check every public function against the loop
reference.  G, E and the discriminators have no loop reference of their own (they
are compositions of checked ops), so at model level the **referee is trivd_core on
NumPy in float64**, anchored to the reference by :func:`anchor_check`.  On the
``tiny`` config with batch :data:`BATCH`:

* ``generate[train]``            G forward with batch statistics; frames and the new
                                 state (every spectral-norm ``u`` of E and G advanced);
* ``accumulate_standing_stats``  the standing BN statistics of G over two batches;
* ``generate[eval]``             G forward with ``train=False, standing=True`` (those
                                 statistics); frames and the (unchanged) state;
* ``discriminate[<dec>,<head>]`` every decomposition of Table 1 with both heads
                                 (``mixed``, ``projection``): scores of every
                                 sub-discriminator and the new SN state;
* ``d_loss``, ``g_loss``         the full objective (``stronger``, mixed head): loss,
                                 every aux term and the new states;
* ``d_loss.grad``                gradient of ``d_loss`` w.r.t. the D parameters;
* ``g_loss.grad``                gradient of ``g_loss`` w.r.t. the G parameters,
                                 E included (``params["E"]``);
* ``anchor``                     the referee against ``reference`` (see below).

Identical inputs everywhere
---------------------------
:func:`problem` draws everything with NumPy from fixed seeds (``crc32`` of a
purpose string): ``init_generator`` / ``init_discriminator`` weights (float32, as
drawn), conditioning frames, latents ``z``, real/fake future frames, frame indices
and crop offsets (``sample_randomness``, int64).  Floating data are rounded to
float32 when drawn, so the float32 and the float64 runs see *the same values*
and one float64 referee serves both.  Each target converts the tree once with
``asarray`` (integers stay integers).

Values
------
Compared per output leaf with the norm-wise relative error
``max|a - e| / max(max|e|, FLOOR * S)``, ``S`` the largest ``|e|`` of the check
(``FLOOR = 1e-3`` keeps leaves that are zero up to rounding, e.g. a conv bias
ahead of a batch norm, from dividing noise by noise).  Tolerances (:data:`TOL`):

* float64: ``1e-10``.  Backend and referee run the same algorithm in another
  summation order; each op contributes ``~ n u`` (``u = 1.1e-16``, ``n`` <= 1e3
  terms), amplified by the model's conditioning (batch norms over 32 values,
  ~30 layers).  Observed (torch, CPU): <= 4e-14; real discrepancies are O(1e-3).
* float32: ``2e-4``.  The float32 error of the whole model is the float32
  rounding ``u = 6e-8`` times the condition number of the computation, which is
  measured rather than guessed: numpy-core *itself* in float32, on the same
  inputs, is off the float64 referee by up to 1.1e-5 (:func:`numpy_float32_errors`,
  per check; the test requires it to stay below 1/8 of the tolerance).  A
  backend's float32 error is of the same nature (other summation orders, fused
  multiply-adds, other libm), so it is allowed ~20x the largest measured
  numpy-float32 error.  Observed (torch, CPU): <= 2.4e-5.

Gradients
---------
No autodiff exists for NumPy, so the gradient referee is threefold:

1. **Directional finite differences of numpy-core float64.**  For the whole
   tree and for each group of leaves (E, each G stage, G's input and output
   layers; each sub-discriminator) a fixed random unit direction ``v`` is drawn and
   the central difference ``(L(p + h v) - L(p - h v)) / 2h`` is compared with
   ``<grad, v>``; the error is measured against ``||grad_group||_2``
   (Cauchy-Schwarz: the largest ``|<grad, v>|`` can be), so a missing or wrong
   gradient in any group shows as an O(1) relative error.  The FD differentiates
   exactly what autodiff does: spectral norm's power-iteration vectors are
   held at the base point (:func:`_frozen_power_iteration`).
   ``h = 1e-7`` (:data:`FD_STEP`): the losses are piecewise smooth with ~1e5
   ReLU units (and max-pool bins) whose kinks a step of ``h`` crosses with
   probability ~``1e5 h``; each crossing adds a first-order error.  Measured
   against torch's float64 gradient, the FD error falls from 1e-3 (h = 1e-2)
   through 1e-4 (1e-4) and 5e-6 (1e-6) to <= 1.5e-9 absolute at h = 1e-7,
   where rounding ``~ u |L| / h ~ 1e-9`` takes over.  Tolerances: ``1e-7``
   (float64; observed <= 2.7e-9) and ``1e-5`` (float32; observed <= 2e-7: the
   float32 gradient's own error dominates).
2. **float32 against float64 on the same backend**, leaf by leaf with the
   norm-wise metric above but ``GRAD_FLOOR = 1e-2`` (biases ahead of a batch norm
   have an exact gradient of 0, so both dtypes return rounding noise there),
   tolerance ``1e-3``; observed (torch) <= 4e-5.
3. **Backends against each other** (float64, leaf by leaf, ``1e-10``):
   ``conformance/test_model.py`` does this for every pair of autodiff backends
   named in ``$TRIVD_CONFORMANCE_BACKENDS``; in CI each tox env holds one
   backend, so there the shared FD referee of 1. ties them together.

The anchor
----------
:func:`anchor_check` runs numpy-core ``generate`` in float64 with a spy on
``trivd_core.cells.cell_step`` and checks, for the first stage's recurrent unit:

* the recorded input ``x_1`` equals ``[z ; onehot @ class_embed] @ W_in + b_in``
  reshaped to ``(B, r0, r0, c0)`` (plain NumPy);
* the recorded cell parameters equal ``reference.layers.spectral_normalize`` of
  the raw cell weights with the state's ``u`` vectors;
* the recorded initial state ``h_0`` equals
  ``relu(reference.ops.conv2d(fold(E features), SN(w_h0)) + b_h0)``;
* and every recurrent update of all three stages (9 calls) equals
  ``reference.cell_step`` on the recorded inputs, to 1e-10.

Running
-------
``run_model(target)`` returns :class:`conformance.runner.Result` rows (op names
``model:<check>``), ``trivd conform --backend jax --model`` prints them, and
``pytest conformance/test_model.py`` checks the targets of
``$TRIVD_CONFORMANCE_BACKENDS``.  Cost: each check is one function of the
converted problem tree, jitted once per dtype on JAX (XLA's LLVM optimisation
turned down, :data:`JAX_COMPILER_OPTIONS`: compile time roughly halves, and no
rounding changes beyond what the tolerances cover), one graph per check on XLA,
eager on torch; the two gradients are one ``value_and_grad`` each, cached per
(target, dtype).  Measured on the shared 2-core machine under load average ~7:
numpy/array_api_strict (no gradients) ~60 s for the whole file, torch ~60 s;
JAX is dominated by XLA compile time (minutes: about 190 s in float32 and 95 s in float64 on 2 cores).
Skip files do not apply to model checks (their names are not op records).
"""

from __future__ import annotations

import contextlib
import functools
import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from trivd_core import cells as core_cells
from trivd_core import discriminator as D
from trivd_core import generator as G
from trivd_core import objective as O
from trivd_core.configs import DECOMPOSITIONS, HEADS, get_config
from trivd_core.tree import tree_map, tree_paths

from .records import DTYPES
from .targets import BackendTarget, Target, get_target

__all__ = [
    "CONFIG",
    "BATCH",
    "TOL",
    "FD_STEP",
    "ModelTol",
    "CHECKS",
    "problem",
    "forward_all",
    "referee",
    "fd_directions",
    "fd_referee",
    "target_outputs",
    "target_gradients",
    "compare_trees",
    "directional_errors",
    "anchor_check",
    "numpy_float32_errors",
    "run_model",
]

#: The model: the ``tiny`` config, batch 2 (the mixed head couples the samples of a batch).
CONFIG = "tiny"
BATCH = 2
#: Leaves whose referee is below FLOOR x (the check's largest |value|) are measured against that instead.
FLOOR = 1e-3
#: The same for gradient trees: biases ahead of a batch norm have an exact gradient of 0 (BN removes any
#: constant shift), so both dtypes return pure rounding noise there (float32: ~4e-7 of the largest gradient).
GRAD_FLOOR = 1e-2
#: Step of the central differences along unit directions (see the module docstring).
FD_STEP = 1e-7
#: XLA options for the JAX jit of the model functions (compile time; see the module docstring).
JAX_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


class ModelTol(NamedTuple):
    """Norm-wise relative tolerance (see the module docstring) and its reason."""

    rtol: float
    reason: str
    metric: str = "nrm"

    def describe(self) -> str:
        return f"{self.metric} {self.rtol:.0e}"


TOL: dict[str, dict[str, ModelTol]] = {
    "value": {
        "float64": ModelTol(1e-10, "same algorithm, other summation order: ~n u amplified by BN; observed <= 4e-14"),
        "float32": ModelTol(2e-4, "~20x numpy-core's own float32 error on the same inputs (<= 1.1e-5)"),
    },
    "fd": {
        "float64": ModelTol(1e-7, "central differences, h=1e-7: rounding ~u|L|/h (|<g,v>-fd| / ||g||); observed 3e-9",
                            "fd"),
        "float32": ModelTol(1e-5, "the float32 gradient's own error on top of the FD error; observed 2e-7", "fd"),
    },
    "grad32": {
        "float32": ModelTol(1e-3, "float32 back-propagation vs the same backend's float64 gradient; observed 4e-5"),
    },
    "anchor": {"float64": ModelTol(1e-10, "float64 against the loop reference (as the op records)")},
}

#: Forward checks (names of :func:`forward_all`'s outputs), then gradient checks.
FORWARD_CHECKS: tuple[str, ...] = (
    "generate[train]",
    "accumulate_standing_stats",
    "generate[eval]",
    *(f"discriminate[{dec},{head}]" for dec in DECOMPOSITIONS for head in HEADS),
    "d_loss",
    "g_loss",
)
GRAD_CHECKS: tuple[str, ...] = ("d_loss.grad", "g_loss.grad")
CHECKS: tuple[str, ...] = (*FORWARD_CHECKS, *GRAD_CHECKS, "anchor")


# ---------------------------------------------------------------------------
# the problem: identical weights, data and randomness for every target


def _rng(purpose: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"model/{purpose}".encode()))


def _f32(a: np.ndarray) -> np.ndarray:
    """Round to float32 and back: values every dtype represents exactly."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def _cast(tree: Any, dtype: str) -> Any:
    """Floating leaves to ``dtype`` (NumPy), integer leaves unchanged."""
    return tree_map(lambda a: a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a, tree)


@functools.cache
def problem() -> dict:
    """The NumPy inputs of every check (float64 leaves holding float32-representable values; ints int64).

    ``{"g_params", "g_state", "d": {decomposition: {"params", "state", "randomness"}},
    "cond", "z", "video", "real", "fake", "standing": [(cond, z), (cond, z)]}``.
    Weights come from ``init_generator(cfg, rng)`` and ``init_discriminator`` (one
    ``rng`` per decomposition); ``d["stronger"]`` is also the D of the losses.
    """
    cfg = get_config(CONFIG)
    gp, gs = G.init_generator(cfg, _rng("G"))
    d = {}
    for dec in DECOMPOSITIONS:
        c = cfg.replace(decomposition=dec)
        p, s = D.init_discriminator(c, _rng(f"D/{dec}"))
        d[dec] = {"params": p, "state": s, "randomness": D.sample_randomness(c, _rng(f"randomness/{dec}"), BATCH)}
    data = _rng("data")
    R, C = cfg.resolution, cfg.channels

    def frames(t):
        return _f32(data.uniform(-1.0, 1.0, (BATCH, t, R, R, C)))

    def latents():
        return _f32(data.standard_normal((BATCH, cfg.z_dim)))

    cond, z = frames(cfg.t_cond), latents()
    tree = {
        "g_params": gp,
        "g_state": gs,
        "d": d,
        "cond": cond,
        "z": z,
        "video": np.concatenate([cond, frames(cfg.t_pred)], axis=1),
        "real": np.concatenate([cond, frames(cfg.t_pred)], axis=1),
        "fake": np.concatenate([cond, frames(cfg.t_pred)], axis=1),
        "standing": [(cond, z), (frames(cfg.t_cond), latents())],
    }
    return _cast(tree, "float64")


def _generate_train(x: dict) -> dict:
    frames, st = G.generate(x["g_params"], x["g_state"], x["cond"], x["z"], train=True)
    return {"frames": frames, "state": st}


def _standing(x: dict) -> dict:
    stood = G.accumulate_standing_stats(x["g_params"], x["g_state"], [tuple(b) for b in x["standing"]])
    return {"standing": stood["standing"]}


def _generate_eval(x: dict, standing: dict) -> dict:
    state = {**x["g_state"], "standing": standing}
    frames, st = G.generate(x["g_params"], state, x["cond"], x["z"], train=False, standing=True)
    return {"frames": frames, "state": st}


def _discriminate(dec: str, head: str) -> Callable:
    def fn(x: dict) -> dict:
        c = get_config(CONFIG, decomposition=dec, head=head)
        d = x["d"][dec]
        scores, st = D.discriminate(d["params"], d["state"], x["video"], d["randomness"], c, train=True)
        return {"scores": scores, "state": st}

    return fn


def _d_loss(x: dict) -> dict:
    cfg = get_config(CONFIG)
    d = x["d"][cfg.decomposition]
    loss, aux, st = O.d_loss(d["params"], d["state"], x["real"], x["fake"], d["randomness"], cfg)
    return {"loss": loss, "aux": aux, "state": st}


def _g_loss(x: dict) -> dict:
    cfg = get_config(CONFIG)
    d = x["d"][cfg.decomposition]
    loss, aux, sts = O.g_loss(x["g_params"], x["g_state"], d["params"], d["state"], x["cond"], x["z"],
                              d["randomness"], cfg)
    return {"loss": loss, "aux": aux, "states": sts}


#: check -> function of the converted problem tree (``generate[eval]`` also takes the standing statistics).
FORWARD_FNS: dict[str, Callable] = {
    "generate[train]": _generate_train,
    "accumulate_standing_stats": _standing,
    "generate[eval]": _generate_eval,
    **{f"discriminate[{dec},{head}]": _discriminate(dec, head) for dec in DECOMPOSITIONS for head in HEADS},
    "d_loss": _d_loss,
    "g_loss": _g_loss,
}


def forward_all(x: dict, call: Callable | None = None) -> dict:
    """Every forward check on the arrays ``x`` (the tree of :func:`problem`, converted): ``{check: tree}``.

    ``call(check, fn, *args)`` runs one check (default: ``fn(*args)``); targets use it
    to jit each check's function once.  ``generate[eval]`` uses the statistics of
    ``accumulate_standing_stats`` from the same run.
    """
    call = call or (lambda check, fn, *args: fn(*args))
    out: dict = {}
    for check, fn in FORWARD_FNS.items():
        args = (x, out["accumulate_standing_stats"]["standing"]) if check == "generate[eval]" else (x,)
        out[check] = call(check, fn, *args)
    return out


def d_loss_value(d_params, x: dict):
    """``d_loss`` as a function of the D parameters only (the differentiated argument)."""
    cfg = get_config(CONFIG)
    d = x["d"][cfg.decomposition]
    return O.d_loss(d_params, d["state"], x["real"], x["fake"], d["randomness"], cfg)[0]


def g_loss_value(g_params, x: dict):
    """``g_loss`` as a function of the G parameters (E included) only."""
    cfg = get_config(CONFIG)
    d = x["d"][cfg.decomposition]
    return O.g_loss(g_params, x["g_state"], d["params"], d["state"], x["cond"], x["z"], d["randomness"], cfg)[0]


_LOSSES = {"d_loss": (d_loss_value, ("d", "stronger", "params")), "g_loss": (g_loss_value, ("g_params",))}


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


@functools.cache
def referee() -> dict:
    """numpy-core float64 outputs of every forward check (NumPy trees)."""
    return tree_map(np.asarray, forward_all(problem()))


# ---------------------------------------------------------------------------
# finite differences of the referee


def _groups(loss: str) -> dict[str, tuple]:
    """Leaf groups of the differentiated tree that get their own FD direction (``()`` = all leaves)."""
    if loss == "d_loss":
        names = D.DECOMPOSITIONS[get_config(CONFIG).decomposition]
        return {"all": (), **{f"D/{n}": (n,) for n in names}}
    groups = {"all": (), "E": ("E",)}
    for key in problem()["g_params"]["G"]:
        groups[f"G/{key}"] = ("G", key)
    return groups


@functools.cache
def fd_directions(loss: str) -> dict[str, dict]:
    """``{group: v}`` with ``v`` a tree like the parameters, N(0, 1) on the group's leaves, zero elsewhere, ||v||_2 = 1."""
    params = _get(problem(), _LOSSES[loss][1])
    out = {}
    for group, prefix in _groups(loss).items():
        rng = _rng(f"fd/{loss}/{group}")
        paths = tree_paths(params)
        leaves = {p: (rng.standard_normal(a.shape) if p[: len(prefix)] == prefix else np.zeros(a.shape))
                  for p, a in paths}
        norm = math.sqrt(sum(float(np.sum(v * v)) for v in leaves.values()))
        out[group] = _rebuild(params, {p: v / norm for p, v in leaves.items()})
    return out


def _rebuild(like: Any, by_path: dict, prefix: tuple = ()) -> Any:
    if isinstance(like, dict):
        return {k: _rebuild(v, by_path, (*prefix, k)) for k, v in like.items()}
    return by_path[prefix]


def _axpy(a: float, v: Any, p: Any) -> Any:
    if isinstance(p, dict):
        return {k: _axpy(a, v[k], p[k]) for k in p}
    return p + a * v


@contextlib.contextmanager
def _frozen_power_iteration():
    """Spectral norm with the power-iteration vectors of the base point (what autodiff differentiates).

    ``layers.spectral_normalize`` computes ``v`` and ``u_new`` from a stop-gradient
    copy of ``W`` and differentiates only ``sigma = v^T W u_new``; a finite
    difference of the plain function would also move ``v`` and ``u_new`` (one power
    iteration from a random ``u`` is not a stationary point, so that derivative
    differs).  Inside this context ``trivd_core.nn.spectral_normalize`` records
    ``(v, u_new)`` per state vector ``u`` (by identity: the state tree is shared by
    every evaluation) on the first call and reuses them afterwards.
    """
    from trivd_core import nn as core_nn

    original = core_nn.spectral_normalize
    frozen: dict[int, tuple] = {}

    def sn(w, u, **kwargs):
        key = id(u)
        if key not in frozen:
            W = np.reshape(w, (-1, w.shape[-1]))
            v = W @ u
            v = v / max(np.linalg.norm(v), 1e-12)
            u_new = W.T @ v
            u_new = u_new / max(np.linalg.norm(u_new), 1e-12)
            frozen[key] = (u, v, u_new)  # u kept alive so that its id stays unique
        _, v, u_new = frozen[key]
        sigma = np.sum(v * (np.reshape(w, (-1, w.shape[-1])) @ u_new))
        return w / sigma, u_new

    core_nn.spectral_normalize = sn
    try:
        yield
    finally:
        core_nn.spectral_normalize = original


@functools.cache
def fd_referee(loss: str) -> dict[str, float]:
    """``{group: (L(p + h v) - L(p - h v)) / 2h}`` with numpy-core float64, ``h = FD_STEP``.

    Spectral norm's power-iteration vectors are held at the base point
    (:func:`_frozen_power_iteration`), which is the function autodiff differentiates.
    """
    fn, path = _LOSSES[loss]
    x = problem()
    p = _get(x, path)
    out = {}
    with _frozen_power_iteration():
        base = float(fn(p, x))  # records the vectors at the base point
        for group, v in fd_directions(loss).items():
            plus = float(fn(_axpy(FD_STEP, v, p), x))
            minus = float(fn(_axpy(-FD_STEP, v, p), x))
            out[group] = (plus - minus) / (2 * FD_STEP)
    if not math.isclose(base, float(referee()[loss]["loss"]), rel_tol=1e-12):
        raise AssertionError(f"fd_referee(): frozen spectral norm changed the {loss} value ({base!r})")
    return out


# ---------------------------------------------------------------------------
# running on a target


def _backend(target: Target):
    """The backend object of an autodiff target, else None (numpy's FD value_and_grad is no autodiff)."""
    if isinstance(target, BackendTarget) and target.name != "numpy":
        return target.backend
    return None


def _jit(backend, fn: Callable) -> Callable:
    if backend is None:
        return fn
    if backend.name == "jax":
        return backend.jit(fn, compiler_options=JAX_COMPILER_OPTIONS)
    return backend.jit(fn)


def _to_target(target: Target, dtype: str) -> Any:
    return tree_map(target.to_target, _cast(problem(), dtype))


def target_outputs(target: Target, dtype: str) -> dict:
    """Every forward check on ``target`` in ``dtype``, as NumPy trees (each check's function jitted once)."""
    backend = _backend(target)
    x = _to_target(target, dtype)
    return target.to_numpy(forward_all(x, lambda check, fn, *args: _jit(backend, fn)(*args)))


@functools.cache
def target_gradients(target: Target, dtype: str) -> dict[str, tuple[float, dict]]:
    """``{"d_loss": (value, grads), "g_loss": (value, grads)}`` from the backend's ``value_and_grad`` (NumPy).

    Cached per (target object, dtype): the float32 rows compare with the float64 gradient.
    """
    backend = _backend(target)
    if backend is None:
        raise LookupError(f"{target.name} has no autodiff")
    x = _to_target(target, dtype)
    out = {}
    for loss, (fn, path) in _LOSSES.items():
        vg = _jit(backend, backend.value_and_grad(fn, argnums=0))
        value, grads = vg(_get(x, path), x)
        out[loss] = (float(target.to_numpy(value)), target.to_numpy(grads))
    return out


# ---------------------------------------------------------------------------
# comparisons


class TreeComparison(NamedTuple):
    ok: bool
    max_abs: float
    max_rel: float
    message: str


def compare_trees(actual: Any, expected: Any, tol: ModelTol, dtype: str | None = None, *,
                  floor: float = FLOOR) -> TreeComparison:
    """Leaf-by-leaf norm-wise relative error (module docstring); structure, shapes and dtypes must match."""
    a_paths = dict(tree_paths(actual))
    e_paths = dict(tree_paths(expected))
    if set(a_paths) != set(e_paths):
        missing = sorted(map(str, set(e_paths) - set(a_paths)))[:3]
        extra = sorted(map(str, set(a_paths) - set(e_paths)))[:3]
        return TreeComparison(False, math.nan, math.nan, f"tree structure differs: missing {missing}, extra {extra}")
    scale = max((float(np.max(np.abs(e))) for e in e_paths.values() if e.size), default=0.0)
    worst_abs = worst_rel = 0.0
    problems = []
    for path, e in e_paths.items():
        a = np.asarray(a_paths[path])
        name = "/".join(map(str, path))
        if a.shape != e.shape:
            problems.append(f"{name}: shape {a.shape}, expected {e.shape}")
            continue
        if dtype is not None and np.issubdtype(e.dtype, np.floating) and a.dtype != np.dtype(dtype):
            problems.append(f"{name}: dtype {a.dtype}, expected {dtype}")
            continue
        if not e.size:
            continue
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        if not np.all(np.isfinite(a64)):
            problems.append(f"{name}: non-finite values")
            worst_abs = worst_rel = math.inf
            continue
        err = float(np.max(np.abs(a64 - e64)))
        rel = err / max(float(np.max(np.abs(e64))), floor * scale, np.finfo(np.float64).tiny)
        worst_abs, worst_rel = max(worst_abs, err), max(worst_rel, rel)
        if not rel <= tol.rtol:
            problems.append(f"{name}: norm-wise rel err {rel:.2e} > {tol.rtol:.0e} (max abs {err:.2e})")
    return TreeComparison(not problems, worst_abs, worst_rel, "; ".join(problems))


def directional_errors(loss: str, grads: Any) -> dict[str, float]:
    """``{group: |<grads, v> - fd| / ||grads restricted to the group||_2}`` against :func:`fd_referee`."""
    fd = fd_referee(loss)
    g_paths = dict(tree_paths(grads))
    out = {}
    for group, v in fd_directions(loss).items():
        dot = 0.0
        norm2 = 0.0
        for path, vl in tree_paths(v):
            g = np.asarray(g_paths[path], dtype=np.float64)
            if np.any(vl):
                dot += float(np.vdot(g.ravel(), vl.ravel()))
                norm2 += float(np.vdot(g.ravel(), g.ravel()))
        out[group] = abs(dot - fd[group]) / max(math.sqrt(norm2), np.finfo(np.float64).tiny)
    return out


# ---------------------------------------------------------------------------
# the anchor: numpy-core float64 against the loop reference


def anchor_check() -> TreeComparison:
    """The referee's first recurrent stage against ``reference`` (module docstring); float64."""
    import reference
    from reference import layers as ref_layers
    from reference import ops as ref_ops

    x = problem()
    gp, gs = x["g_params"], x["g_state"]
    calls: list[tuple] = []
    original = core_cells.cell_step

    def spy(kind, params, h, inp, **kwargs):
        out = original(kind, params, h, inp, **kwargs)
        calls.append((kind, params, np.array(h), np.array(inp), np.array(out)))
        return out

    core_cells.cell_step = spy
    try:
        G.generate(gp, gs, x["cond"], x["z"], train=True)
    finally:
        core_cells.cell_step = original
    cfg = get_config(CONFIG)
    tol = TOL["anchor"]["float64"].rtol
    n_expected = G.N_STAGES * cfg.t_pred
    if len(calls) != n_expected:
        return TreeComparison(False, math.nan, math.nan, f"generate made {len(calls)} cell_step calls, "
                                                         f"expected {n_expected}")
    g = gp["G"]
    st0 = g["stage0"]
    kind = cfg.cell
    worst = 0.0
    problems = []

    def check(what, got, want):
        nonlocal worst
        err = float(np.max(np.abs(np.asarray(got) - np.asarray(want))) / max(float(np.max(np.abs(want))), 1e-300))
        worst = max(worst, err)
        if not err <= tol:
            problems.append(f"{what}: rel err {err:.2e}")

    # x_1: [z ; onehot(0) @ class_embed] @ W_in + b_in, as (B, r0, r0, c0), no spectral norm
    r0 = cfg.base_resolution
    cond = np.concatenate([x["z"], np.repeat(g["class_embed"][0:1], BATCH, axis=0)], axis=1)
    x1 = (cond @ g["linear_in"]["w"] + g["linear_in"]["b"]).reshape(BATCH, r0, r0, -1)
    check("x_1 (linear_in)", calls[0][3], x1)
    # the cell's weights: reference spectral norm of the raw weights with the state's u
    raw, u_state = st0["rnn"][kind], gs["G"]["stage0"]["rnn"][kind]
    for path, w in tree_paths(raw):
        if path[-1] == "W":
            want, _ = ref_layers.spectral_normalize(w, _get(u_state, path[:-1])["u"])
            check(f"SN({'/'.join(path)})", _get(calls[0][1], path), want)
    # h_0 = relu(conv(SN(w_h0), E features folded time-major into channels) + b)
    feats, _ = D.encode(gp["E"], gs["E"], x["cond"], train=True)
    f = feats[r0]
    folded = np.transpose(f, (0, 2, 3, 1, 4)).reshape(BATCH, r0, r0, -1)
    w_h0, _ = ref_layers.spectral_normalize(st0["h0"]["w"], gs["G"]["stage0"]["h0"]["u"])
    check("h_0", calls[0][2], ref_ops.relu(ref_ops.conv2d(folded, w_h0, st0["h0"]["b"])))
    # every recurrent update of every stage against the loop reference
    for i, (k, params, h, inp, out) in enumerate(calls):
        check(f"cell_step call {i} (stage {i // cfg.t_pred}, t={i % cfg.t_pred + 1})", out,
              reference.cell_step(k, params, h, inp))
    return TreeComparison(not problems, math.nan, worst, "; ".join(problems))


@functools.cache
def numpy_float32_errors() -> dict[str, float]:
    """numpy-core's own float32 error per forward check (norm-wise, vs the referee): the float32 error scale."""
    out = target_outputs(_NumpyCore(), "float32")
    ref = referee()
    return {c: compare_trees(out[c], ref[c], ModelTol(math.inf, "")).max_rel for c in FORWARD_CHECKS}


class _NumpyCore(Target):
    name = "numpy"

    def leaf_to_target(self, a, dtype):
        return np.array(a, copy=True)


# ---------------------------------------------------------------------------
# the runner


def run_model(
    target: Target | str,
    dtypes: Sequence[str] = DTYPES,
    *,
    progress: Callable | None = None,
    anchor: bool = True,
) -> list:
    """Every model check on ``target`` in each of ``dtypes``: a list of ``runner.Result`` (op ``model:<check>``).

    ``anchor``: also report the referee's anchor (``model:anchor``, float64, target-independent).
    """
    from .results import Result

    target = get_target(target)
    backend = _backend(target)
    results = []

    def emit(res):
        results.append(res)
        if progress is not None:
            progress(res)

    def fail(check, dtype, exc):
        emit(Result(target.name, f"model:{check}", dtype, "fail", message=f"raised {type(exc).__name__}: {exc}"))

    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"run_model(): dtypes must be among {DTYPES}, got {dtype!r}")
        skip = None
        if dtype == "float64" and not target.supports_float64:
            skip = f"{target.name} does not support float64"
        elif dtype == "float64" and isinstance(target, BackendTarget) and target.name == "numpy":
            skip = "numpy-core float64 is the referee"
        tol = TOL["value"][dtype]
        if skip:
            for check in FORWARD_CHECKS:
                emit(Result(target.name, f"model:{check}", dtype, "skip", tolerance=tol, message=skip))
        else:
            try:
                outs = target_outputs(target, dtype)
            except Exception as exc:
                for check in FORWARD_CHECKS:
                    fail(check, dtype, exc)
                outs = None
            if outs is not None:
                ref = referee()
                for check in FORWARD_CHECKS:
                    cmp = compare_trees(outs[check], ref[check], tol, dtype)
                    emit(Result(target.name, f"model:{check}", dtype, "pass" if cmp.ok else "fail",
                                cmp.max_abs, cmp.max_rel, tol, cmp.message))
        # gradients
        gtol = TOL["fd"][dtype]
        gskip = skip or (None if backend is not None else f"{target.name} has no autodiff (value_and_grad)")
        if gskip:
            for check in GRAD_CHECKS:
                emit(Result(target.name, f"model:{check}", dtype, "skip", tolerance=gtol, message=gskip))
            continue
        try:
            grads = target_gradients(target, dtype)
        except Exception as exc:
            for check in GRAD_CHECKS:
                fail(check, dtype, exc)
            continue
        grads64 = None
        if dtype == "float32" and target.supports_float64:
            try:
                grads64 = target_gradients(target, "float64")
            except Exception:  # reported by the float64 rows
                grads64 = None
        for loss in _LOSSES:
            value, g = grads[loss]
            errs = directional_errors(loss, g)
            problems = [f"{grp}: |<g,v> - fd| / ||g|| = {e:.2e}" for grp, e in errs.items() if not e <= gtol.rtol]
            worst = max(errs.values())
            ref_value = float(referee()[loss]["loss"])
            v_err = abs(value - ref_value) / max(abs(ref_value), 1e-300)
            if not v_err <= tol.rtol:
                problems.append(f"value {value!r} vs referee {ref_value!r}")
            max_abs = math.nan
            if grads64 is not None:
                cmp = compare_trees(g, grads64[loss][1], TOL["grad32"]["float32"], dtype, floor=GRAD_FLOOR)
                worst = max(worst, cmp.max_rel)
                max_abs = cmp.max_abs
                if not cmp.ok:
                    problems.append(f"vs {target.name} float64 gradient: {cmp.message}")
            emit(Result(target.name, f"model:{loss}.grad", dtype, "fail" if problems else "pass", max_abs, worst,
                         gtol, "; ".join(problems)))
    if anchor and "float64" in dtypes:
        atol = TOL["anchor"]["float64"]
        try:
            cmp = anchor_check()
            emit(Result(target.name, "model:anchor", "float64", "pass" if cmp.ok else "fail", math.nan, cmp.max_rel,
                        atol, cmp.message or "numpy-core float64 (the referee) vs reference/ (target-independent)"))
        except Exception as exc:
            fail("anchor", "float64", exc)
    return results
