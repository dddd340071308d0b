"""Op records: what the conformance suite runs, on which inputs, and how close is close enough.

One :class:`OpRecord` per public op (and one per cell kind).  A record names the
function (looked up as ``<package>.<module>.<function>`` in ``reference`` and
``trivd_core``, falling back to the package top level, and as the bare
``<function>`` on a third-party port module), makes NumPy inputs for a few small
shape cases, says which arguments hold arrays (converted to the target's arrays)
and which are differentiable, and gives per-dtype tolerances, each with its
reason.

Conventions (documented in the README of the suite, relied on by the runner and
by the gradient checks):

* **Inputs.** ``record.inputs(case, dtype)`` draws from a NumPy ``Generator``
  seeded by ``crc32("<record name>/<case>")`` (:func:`rng_for`), so inputs do not
  depend on test order or on other records.  Floating leaves come back in
  ``dtype``; integer arrays (frame indices, crop offsets) stay ``int64``.  The
  makers draw in float64 and round to ``dtype`` last, so the float32 inputs are
  the float64 inputs rounded.
* **Array slots.** ``array_args`` lists positional indices (ints) and keyword
  names (strs) whose values are arrays or trees (nested dict/list/tuple) of
  arrays; every NumPy leaf there is converted to the target.  No NumPy array may
  appear outside a declared slot (checked by :func:`check_record`).
* **Outputs.** ``record.outputs(raw)`` turns a function's return value into a
  tuple of arrays: ``output`` (if given) selects/reshapes the raw value using
  indexing only, so it works on any namespace; tuples/lists become tuples; a
  single array becomes a 1-tuple.
* **Values.** ``tolerances[dtype] = Tol(rtol, atol, reason)``; an element
  passes when ``|actual - expected| <= atol + rtol * |expected|`` (the
  reference is computed in float64 on the same, dtype-rounded, inputs).
* **Gradients.** ``diff_args`` lists the slots whose floating leaves are
  differentiable inputs.  The scalar whose gradient is checked is
  ``scalarize(outputs, cotangents) = sum_i sum(outputs[i] * cotangents[i])``
  over the outputs in ``grad_outputs`` (all when ``None``), with fixed
  standard-normal cotangents from :func:`cotangents`.  :func:`differentiable_view`
  flattens the differentiable leaves and rebuilds ``(args, kwargs)`` from them.
  ``grad_tolerances`` are defaults for those checks (the gradient suite may
  tighten them); they are compared against central finite differences of the
  float64 reference.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

import reference.cells
from trivd_core.tree import tree_map_arrays, tree_paths, tree_replace

__all__ = [
    "Tol",
    "OpRecord",
    "RECORDS",
    "DTYPES",
    "get_record",
    "select",
    "name_matches",
    "rng_for",
    "check_record",
    "cotangents",
    "scalarize",
    "differentiable_view",
]

DTYPES = ("float32", "float64")

Slot = int | str


class Tol(NamedTuple):
    """Elementwise tolerance ``|a - e| <= atol + rtol * |e|`` and why it is what it is."""

    rtol: float
    atol: float
    reason: str

    def describe(self) -> str:
        return f"rtol={self.rtol:.0e} atol={self.atol:.0e}"


def rng_for(name: str, case: str, purpose: str = "inputs") -> np.random.Generator:
    """A Generator seeded from ``crc32("<name>/<case>[/<purpose>]")`` (stable across runs and processes)."""
    key = f"{name}/{case}" if purpose == "inputs" else f"{name}/{case}/{purpose}"
    return np.random.default_rng(zlib.crc32(key.encode()))


@dataclass(frozen=True, eq=False)
class OpRecord:
    """One conformance check: a public function, its sample inputs and its tolerances."""

    name: str
    module: str
    function: str
    cases: tuple[str, ...]
    make_inputs: Callable[[np.random.Generator, str, str], tuple[tuple, dict]]
    tolerances: Mapping[str, Tol]
    array_args: tuple[Slot, ...]
    diff_args: tuple[Slot, ...] = ()
    output: Callable[[Any], Any] | None = None
    grad_outputs: tuple[int, ...] | None = None
    grad_tolerances: Mapping[str, Tol] = field(default_factory=lambda: dict(GRAD_DEFAULT))
    doc: str = ""

    @property
    def base(self) -> str:
        """The name without its bracketed variant: ``cell_step[tsru_p]`` -> ``cell_step``."""
        return self.name.split("[", 1)[0]

    def inputs(self, case: str, dtype: str = "float64") -> tuple[tuple, dict]:
        """``(args, kwargs)`` of NumPy inputs for ``case``, floating leaves in ``dtype``."""
        if case not in self.cases:
            raise ValueError(f"record {self.name!r} has no case {case!r}; cases: {', '.join(self.cases)}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        args, kwargs = self.make_inputs(rng_for(self.name, case), case, dtype)
        return tuple(args), dict(kwargs)

    def outputs(self, raw: Any) -> tuple:
        """The raw return value as a tuple of arrays (see the module docstring)."""
        out = raw if self.output is None else self.output(raw)
        if isinstance(out, (tuple, list)):
            return tuple(out)
        return (out,)

    def map_arrays(self, args: Sequence, kwargs: Mapping, fn: Callable[[np.ndarray], Any]) -> tuple[tuple, dict]:
        """Apply ``fn`` to every NumPy leaf in the declared array slots."""
        args, kwargs = list(args), dict(kwargs)
        for slot in self.array_args:
            if isinstance(slot, int):
                if slot < len(args):
                    args[slot] = tree_map_arrays(fn, args[slot])
            elif slot in kwargs:
                kwargs[slot] = tree_map_arrays(fn, kwargs[slot])
        return tuple(args), kwargs


# ---------------------------------------------------------------------------
# gradient-check helpers


def cotangents(record: OpRecord, outputs: Sequence[np.ndarray], case: str) -> tuple[np.ndarray, ...]:
    """Fixed standard-normal cotangents (float64), one per output in ``record.grad_outputs``."""
    rng = rng_for(record.name, case, "cotangent")
    idx = range(len(outputs)) if record.grad_outputs is None else record.grad_outputs
    return tuple(rng.standard_normal(np.shape(outputs[i])) for i in idx)


def scalarize(record: OpRecord, outputs: Sequence[Any], cots: Sequence[Any]):
    """``sum_i sum(outputs[i] * cots[i])`` over ``record.grad_outputs``, in the outputs' namespace.

    ``cots`` must already be arrays of the outputs' namespace and dtype.
    """
    from array_api_compat import array_namespace

    idx = list(range(len(outputs))) if record.grad_outputs is None else list(record.grad_outputs)
    total = None
    for i, c in zip(idx, cots):
        o = outputs[i]
        xp = array_namespace(o)
        term = xp.sum(o * c)
        total = term if total is None else total + term
    return total


def differentiable_view(record: OpRecord, args: Sequence, kwargs: Mapping):
    """Flatten the differentiable floating leaves.

    Returns ``(paths, leaves, rebuild)``: ``paths[i]`` is ``(slot, *keys)``,
    ``leaves[i]`` the array found there, and ``rebuild(new_leaves)`` returns
    ``(args, kwargs)`` with those leaves replaced (containers copied, other
    arguments shared).
    """
    paths: list[tuple] = []
    leaves: list[Any] = []
    for slot in record.diff_args:
        if isinstance(slot, int) and slot >= len(args) or isinstance(slot, str) and slot not in kwargs:
            continue  # an optional slot this case does not use
        value = args[slot] if isinstance(slot, int) else kwargs[slot]
        for path, leaf in tree_paths(value):
            if isinstance(leaf, np.ndarray) and np.issubdtype(leaf.dtype, np.floating):
                paths.append((slot, *path))
                leaves.append(leaf)

    def rebuild(new_leaves: Sequence[Any]) -> tuple[tuple, dict]:
        if len(new_leaves) != len(paths):
            raise ValueError(f"rebuild() needs {len(paths)} leaves, got {len(new_leaves)}")
        return replace_leaves(args, kwargs, paths, new_leaves)

    return paths, leaves, rebuild


def replace_leaves(args: Sequence, kwargs: Mapping, paths: Sequence[tuple], leaves: Sequence[Any]) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with the leaf at each ``paths[i] = (slot, *keys)`` replaced by ``leaves[i]`` (copies of
    the containers; the other leaves are shared)."""
    a, k = list(args), dict(kwargs)
    for (slot, *rest), leaf in zip(paths, leaves):
        if isinstance(slot, int):
            a[slot] = tree_replace(a[slot], tuple(rest), leaf)
        else:
            k[slot] = tree_replace(k[slot], tuple(rest), leaf)
    return tuple(a), k


# ---------------------------------------------------------------------------
# record sanity


def check_record(record: OpRecord) -> None:
    """Raise ``AssertionError`` describing the first way ``record`` breaks the conventions above."""
    r = record.name
    assert record.cases, f"{r}: no cases"
    for dtype in DTYPES:
        assert dtype in record.tolerances, f"{r}: no tolerance for {dtype}"
        tol = record.tolerances[dtype]
        assert isinstance(tol, Tol) and tol.reason.strip(), f"{r}: {dtype} tolerance needs a Tol with a reason"
        assert tol.rtol >= 0 and tol.atol >= 0, f"{r}: negative tolerance"
        assert dtype in record.grad_tolerances and record.grad_tolerances[dtype].reason.strip(), (
            f"{r}: {dtype} gradient tolerance needs a reason"
        )
    t64 = record.tolerances["float64"]
    assert t64.rtol <= 1e-10 and t64.atol <= 1e-11, f"{r}: float64 must agree to <= 1e-10 relative, got {t64}"
    assert set(record.diff_args) <= set(record.array_args), f"{r}: diff_args must be array slots"
    for case in record.cases:
        for dtype in DTYPES:
            args, kwargs = record.inputs(case, dtype)
            declared = {s for s in record.array_args}
            for slot, value in [*enumerate(args), *kwargs.items()]:
                for path, leaf in tree_paths(value):
                    if not isinstance(leaf, np.ndarray):
                        continue
                    where = f"{r}[{case}] argument {slot!r} at {path}"
                    assert slot in declared, f"{where}: NumPy array outside the declared array slots"
                    if np.issubdtype(leaf.dtype, np.floating):
                        assert leaf.dtype == np.dtype(dtype), f"{where}: dtype {leaf.dtype}, expected {dtype}"
                    else:
                        assert np.issubdtype(leaf.dtype, np.integer), f"{where}: dtype {leaf.dtype}"
            paths, _, _ = differentiable_view(record, args, kwargs)
            if record.diff_args:
                assert paths, f"{r}[{case}]: diff_args declared but no floating leaves found"


# ---------------------------------------------------------------------------
# building blocks for the makers


def _cast(tree: Any, dtype: str) -> Any:
    dt = np.dtype(dtype)

    def leaf(a: np.ndarray) -> np.ndarray:
        if np.issubdtype(a.dtype, np.floating):
            return np.ascontiguousarray(a, dtype=dt)
        return np.ascontiguousarray(a, dtype=np.int64)

    return tree_map_arrays(leaf, tree)


def _maker(cases: Mapping[str, Callable[[np.random.Generator], tuple[tuple, dict]]]):
    """``make_inputs`` from ``{case: draw(rng) -> (args, kwargs)}`` (draws in float64, rounds to dtype last)."""

    def make_inputs(rng: np.random.Generator, case: str, dtype: str) -> tuple[tuple, dict]:
        args, kwargs = cases[case](rng)
        return _cast(tuple(args), dtype), _cast(dict(kwargs), dtype)

    return make_inputs


def _record(name, module, cases, tol32, *, function=None, array_args=(0,), diff_args=None, tol64=None, **kw):
    return OpRecord(
        name=name,
        module=module,
        function=function or name,
        cases=tuple(cases),
        make_inputs=_maker(cases),
        tolerances={"float32": tol32, "float64": tol64 or F64},
        array_args=tuple(array_args),
        diff_args=tuple(array_args if diff_args is None else diff_args),
        **kw,
    )


def _n(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return scale * rng.standard_normal(shape)


# ---------------------------------------------------------------------------
# tolerances
#
# The target runs in the record's dtype on dtype-rounded inputs; the reference
# runs in float64 on the same values.  In float32 the difference is therefore
# the target's own round-off (unit roundoff u = 2**-24 ~ 6e-8).  Inputs are
# O(1) standard normals, so sums of n products carry an error of about
# n * u * sum|terms| in the worst case and sqrt(n) * u * rms in practice.

F64 = Tol(
    1e-10,
    1e-12,
    "project contract: float64 core and reference agree to 1e-10 relative; atol 1e-12 only for entries that "
    "cancel to ~0, where relative error is meaningless (O(1) operands, round-off ~1e-15)",
)
EXACT = Tol(0.0, 0.0, "pure data movement or selection (copy, zero pad, max, gather): no arithmetic, must be exact")
F32_ELEMENTWISE = Tol(
    2e-6,
    1e-7,
    "one transcendental (exp) and a few flops per element in float32: a few ulps (u ~ 6e-8) of the result",
)
F32_SUM = Tol(
    1e-5,
    1e-5,
    "float32 sums of <= ~60 O(1) products (k*k*C_in conv taps, pooling windows, warps, heads): the "
    "round-off bound n*u*sum|terms| ~ 60 * 6e-8 * O(10) ~ 4e-5 is not approached with random signs; "
    "observed <= 10% of this tolerance on numpy, array_api_strict, jax and torch (CPU)",
)
F32_CHAIN = Tol(
    2e-5,
    1e-5,
    "a chain of float32 convolutions, a hyper-network, softmaxes, a warp and gates (cells): each sum's "
    "round-off (~1e-6) passes through the following layers with O(1) gain; observed <= 1e-6, so 10-20x margin",
)
GRAD_DEFAULT = {
    "float32": Tol(
        1e-3,
        1e-4,
        "float32 autodiff gradients vs float64 central differences: round-off of forward and backward passes, "
        "accumulated over all taps",
    ),
    "float64": Tol(
        1e-6,
        1e-8,
        "float64 autodiff vs central differences of the reference with step ~1e-6: truncation error O(h^2) "
        "and cancellation error O(u/h) ~ 1e-10 relative to the scalar's scale",
    ),
}


# ---------------------------------------------------------------------------
# ops: the primitives of trivd_core.ops / reference.ops


def _ops_records() -> list[OpRecord]:
    return [
        _record(
            "pad_hw",
            "ops",
            {
                "nonsquare": lambda g: ((_n(g, 2, 4, 5, 3), 1, 2), {}),
                "b1_c1": lambda g: ((_n(g, 1, 3, 4, 1), 2, 0), {}),
                "video": lambda g: ((_n(g, 2, 2, 3, 4, 2), 1, 1), {}),
            },
            EXACT,
            tol64=EXACT,
        ),
        _record(
            "conv2d",
            "ops",
            {
                "nonsquare_bias": lambda g: ((_n(g, 2, 5, 6, 3), _n(g, 3, 3, 3, 4), _n(g, 4)), {}),
                "b1_c1_k31": lambda g: ((_n(g, 1, 4, 3, 1), _n(g, 3, 1, 1, 2), None), {}),
                "k15_cout1": lambda g: ((_n(g, 2, 3, 7, 2), _n(g, 1, 5, 2, 1), _n(g, 1)), {}),
            },
            F32_SUM,
            array_args=(0, 1, 2),
        ),
        _record(
            "conv3d",
            "ops",
            {
                "nonsquare_bias": lambda g: ((_n(g, 2, 3, 4, 5, 2), _n(g, 3, 3, 3, 2, 3), _n(g, 3)), {}),
                "b1_c1_k131": lambda g: ((_n(g, 1, 4, 3, 2, 1), _n(g, 1, 3, 1, 1, 2), None), {}),
            },
            F32_SUM,
            array_args=(0, 1, 2),
        ),
        _record(
            "avg_pool",
            "ops",
            {
                "nonsquare_s2": lambda g: ((_n(g, 2, 4, 6, 3), 2), {}),
                "b1_c1_s3": lambda g: ((_n(g, 1, 6, 3, 1), 3), {}),
                "video_s2": lambda g: ((_n(g, 2, 2, 4, 2, 2), 2), {}),
            },
            F32_SUM,
        ),
        _record(
            "upsample_nearest",
            "ops",
            {
                "nonsquare_s2": lambda g: ((_n(g, 2, 3, 2, 3), 2), {}),
                "b1_c1_s3": lambda g: ((_n(g, 1, 2, 3, 1), 3), {}),
                "video_s2": lambda g: ((_n(g, 1, 2, 2, 3, 2), 2), {}),
            },
            EXACT,
            tol64=EXACT,
        ),
        _record(
            "adaptive_max_pool",
            "ops",
            {
                "overlapping_bins": lambda g: ((_n(g, 2, 6, 10, 3), (4, 4)), {}),
                "b1_c1_exact": lambda g: ((_n(g, 1, 4, 4, 1), (4, 4)), {}),
                "out_2x3": lambda g: ((_n(g, 2, 5, 7, 2), (2, 3)), {}),
            },
            EXACT,
            tol64=EXACT,
        ),
        _record(
            "sigmoid",
            "ops",
            {
                "wide_range": lambda g: ((_n(g, 2, 3, 4, 3, scale=6.0),), {}),
                "b1_c1": lambda g: ((_n(g, 1, 2, 3, 1, scale=3.0),), {}),
            },
            F32_ELEMENTWISE,
        ),
        _record(
            "relu",
            "ops",
            {
                "frames": lambda g: ((_n(g, 2, 3, 4, 3),), {}),
                "b1_c1": lambda g: ((_n(g, 1, 2, 3, 1),), {}),
            },
            EXACT,
            tol64=EXACT,
        ),
        _record(
            "softmax",
            "ops",
            {
                "last_axis": lambda g: ((_n(g, 2, 3, 4, 9, scale=3.0),), {"axis": -1}),
                "axis1": lambda g: ((_n(g, 2, 5, 3, scale=3.0),), {"axis": 1}),
                "c1": lambda g: ((_n(g, 1, 2, 3, 1),), {"axis": -1}),
            },
            F32_ELEMENTWISE,
        ),
    ]


# ---------------------------------------------------------------------------
# warping (appendix B, Fig. 3)


def _warping_records() -> list[OpRecord]:
    return [
        _record(
            "pixelwise_warp",
            "warping",
            {
                "nonsquare_k3": lambda g: ((_n(g, 2, 4, 5, 3), _n(g, 2, 4, 5, 9)), {"k": 3}),
                "b1_c1_k5_smaller_than_kernel": lambda g: ((_n(g, 1, 3, 2, 1), _n(g, 1, 3, 2, 25)), {"k": 5}),
                "k1": lambda g: ((_n(g, 2, 3, 4, 2), _n(g, 2, 3, 4, 1)), {"k": 1}),
            },
            F32_SUM,
            array_args=(0, 1),
        ),
        _record(
            "factorized_kernels",
            "warping",
            {
                "nonsquare_k3": lambda g: ((_n(g, 2, 9, 4), _n(g, 2, 4, 5, 4)), {}),
                "b1_n1": lambda g: ((_n(g, 1, 9, 1), _n(g, 1, 3, 2, 1)), {}),
                "k5": lambda g: ((_n(g, 2, 25, 3), _n(g, 2, 3, 4, 3)), {}),
            },
            F32_SUM,
            array_args=(0, 1),
        ),
        _record(
            "expected_flow",
            "warping",
            {
                "nonsquare_k3": lambda g: ((_n(g, 2, 4, 5, 9),), {"k": 3}),
                "b1_k5": lambda g: ((_n(g, 1, 3, 2, 25),), {"k": 5}),
                "k1": lambda g: ((_n(g, 2, 2, 3, 1),), {"k": 1}),
            },
            F32_SUM,
        ),
        _record(
            "combine_flows",
            "warping",
            {
                "three_levels_x2": lambda g: (([_n(g, 2, 2, 3, 2), _n(g, 2, 4, 6, 2), _n(g, 2, 8, 12, 2)],), {}),
                "b1_x3": lambda g: (([_n(g, 1, 1, 2, 2), _n(g, 1, 3, 6, 2)],), {}),
                "single": lambda g: (([_n(g, 1, 2, 3, 2)],), {}),
            },
            F32_SUM,
        ),
    ]


# ---------------------------------------------------------------------------
# recurrent cells (Eqs. 1-10, 16-22, appendix F)

#: Every cell kind of the specification (the reference defines them).
CELL_KINDS = reference.cells.KINDS

#: (B, H, W, c_in, c_hidden, k, N) per case: non-square; B=1, c_in=1 and a map smaller than
#: the hyper-network's 4x4 pool; a 5x5 kernel with N=4 factorized kernels (N != k*k; the
#: default N = k*k = 25 would make fc2 (and the golden files) ten times larger).  N only
#: applies to the factorized kinds (None: the default k*k).
CELL_CASES = {
    "nonsquare": (2, 5, 6, 3, 4, 3, None),
    "b1_cin1_small": (1, 3, 2, 1, 2, 3, None),
    "k5_n4": (1, 4, 5, 2, 2, 5, 4),
}
_FACTORIZED_KINDS = ("ktrajgru", "tsru_c", "tsru_p", "tsru_s")


def _cell_params(rng: np.random.Generator, kind: str, c_in: int, c_hidden: int, k: int, n: int | None) -> dict:
    """Random parameters in the layout of ``trivd_core.cells.init_cell``.

    Only the layout (keys and shapes) comes from ``init_cell``; the values are
    drawn here, ``W ~ N(0, 1/fan_in)`` and ``b ~ N(0, 0.5^2)`` in the order of the
    sorted parameter paths, so that biases are exercised (init_cell's are zero)
    and pre-activations are O(1) (no saturated gates or one-hot softmaxes).
    """
    from trivd_core.cells import init_cell

    extra = {"n_kernels": n} if n is not None and kind in _FACTORIZED_KINDS else {}
    layout = init_cell(kind, c_in, c_hidden, k, rng=np.random.default_rng(0), dtype=np.float64, **extra)
    params: dict = {}
    for path, leaf in sorted(tree_paths(layout)):
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if leaf.ndim >= 2:
            fan_in = int(np.prod(leaf.shape[:-1]))
            node[path[-1]] = rng.standard_normal(leaf.shape) / np.sqrt(fan_in)
        else:
            node[path[-1]] = 0.5 * rng.standard_normal(leaf.shape)
    return params


def _cell_case(kind: str, dims: tuple, kwargs: dict):
    B, H, W, c_in, c_h, k, n = dims

    def draw(g: np.random.Generator):
        params = _cell_params(g, kind, c_in, c_h, k, n)
        return (kind, params, _n(g, B, H, W, c_h), _n(g, B, H, W, c_in)), dict(kwargs)

    return draw


def _cell_record(kind: str, variant: str = "", kwargs: dict | None = None, output=None) -> OpRecord:
    kwargs = kwargs or {}
    name = f"cell_step[{kind}{',' + variant if variant else ''}]"
    return _record(
        name,
        "cells",
        {case: _cell_case(kind, dims, kwargs) for case, dims in CELL_CASES.items()},
        F32_CHAIN,
        function="cell_step",
        array_args=(1, 2, 3),
        output=output,
        grad_outputs=(0,) if output is not None else None,
    )


def _cells_records() -> list[OpRecord]:
    records = [_cell_record(kind) for kind in CELL_KINDS]
    # the other activation, on one cell of each family
    records.append(_cell_record("convgru", "tanh", {"activation": "tanh"}))
    records.append(_cell_record("ktrajgru", "relu", {"activation": "relu"}))
    # the transformation returned for motion visualisation (factorized and pixelwise)
    records.append(
        _cell_record(
            "tsru_c", "return_warp", {"return_warp": True}, output=lambda r: (r[0], r[1]["w"], r[1]["S"], r[1]["W"])
        )
    )
    records.append(_cell_record("ptsru_s", "return_warp", {"return_warp": True}, output=lambda r: (r[0], r[1]["W"])))
    return records


# ---------------------------------------------------------------------------
# layers (appendix A, E.2)


def _positive(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return 0.5 + rng.random(shape)


def _cbn_params(g: np.random.Generator, D: int, C: int) -> dict:
    return {
        "gain": {"w": _n(g, D, C, scale=0.3), "b": _n(g, C, scale=0.3)},
        "bias": {"w": _n(g, D, C, scale=0.3), "b": _n(g, C, scale=0.3)},
    }


def _layers_records() -> list[OpRecord]:
    return [
        _record(
            "spectral_normalize",
            "layers",
            {
                "linear": lambda g: ((_n(g, 5, 3), _n(g, 3)), {}),
                "hwio": lambda g: ((_n(g, 3, 3, 2, 4), _n(g, 4)), {}),
                "cout1": lambda g: ((_n(g, 4, 1), _n(g, 1)), {}),
                "wide_thwio": lambda g: ((_n(g, 1, 1, 1, 2, 5), _n(g, 5)), {"eps": 1e-8}),
            },
            F32_SUM,
            array_args=(0, 1),
            diff_args=(0,),  # u is state: no gradient (stop_gradient in the core)
            grad_outputs=(0,),  # u_new carries no gradient
        ),
        _record(
            "orthogonal_penalty",
            "layers",
            {
                "linear": lambda g: ((_n(g, 5, 3),), {}),
                "hwio": lambda g: ((_n(g, 3, 3, 2, 4),), {}),
                "cout1_zero": lambda g: ((_n(g, 4, 1),), {}),
            },
            F32_SUM,
        ),
        _record(
            "batch_stats",
            "layers",
            {
                "frames_bhw": lambda g: ((_n(g, 2, 3, 4, 5, scale=2.0) + 1.0, (0, 1, 2)), {}),
                "video_per_step": lambda g: ((_n(g, 2, 3, 2, 4, 2) - 0.5, (0, 2, 3)), {}),
                "b1_c1_negative_axes": lambda g: ((_n(g, 1, 3, 2, 1), (-3, -2)), {}),
            },
            F32_SUM,
        ),
        _record(
            "batch_norm",
            "layers",
            {
                "batch_stats": lambda g: (
                    (_n(g, 2, 3, 4, 5, scale=2.0) + 1.0, _n(g, 5), _n(g, 5), (0, 1, 2)),
                    {},
                ),
                "standing_stats": lambda g: (
                    (_n(g, 2, 3, 4, 3), _n(g, 3), _n(g, 3), (0, 1, 2)),
                    {"mean": _n(g, 1, 1, 1, 3), "var": _positive(g, 1, 1, 1, 3), "eps": 1e-3},
                ),
                "video_per_sample_gain": lambda g: (
                    (_n(g, 2, 3, 2, 4, 2), _n(g, 2, 1, 1, 1, 2), _n(g, 2, 1, 1, 1, 2), (0, 2, 3)),
                    {},
                ),
                "b1_c1": lambda g: ((_n(g, 1, 3, 4, 1), _n(g, 1), _n(g, 1), (0, 1, 2)), {}),
            },
            F32_SUM,
            array_args=(0, 1, 2, "mean", "var"),
        ),
        _record(
            "conditional_batch_norm",
            "layers",
            {
                "frames": lambda g: ((_n(g, 2, 3, 4, 3), _n(g, 2, 5), _cbn_params(g, 5, 3)), {}),
                "video_per_step": lambda g: ((_n(g, 3, 2, 2, 3, 2), _n(g, 3, 4), _cbn_params(g, 4, 2)), {}),
                "b1_c1_standing": lambda g: (
                    (_n(g, 1, 3, 4, 1), _n(g, 1, 2), _cbn_params(g, 2, 1)),
                    {"mean": _n(g, 1), "var": _positive(g, 1)},
                ),
                "explicit_axes": lambda g: (
                    (_n(g, 2, 2, 3, 2, 2), _n(g, 2, 3), _cbn_params(g, 3, 2)),
                    {"axes": (0, 1, 2, 3), "eps": 1e-4},
                ),
            },
            F32_SUM,
            array_args=(0, 1, 2, "mean", "var"),
        ),
    ]


# ---------------------------------------------------------------------------
# losses and projection heads (appendix E.1, Eqs. 13-15)


def _head(g: np.random.Generator, C: int) -> dict:
    return {"w": _n(g, C, 1), "b": _n(g, 1)}


def _losses_records() -> list[OpRecord]:
    return [
        _record(
            "d_hinge_loss",
            "losses",
            {
                "same_shape": lambda g: ((_n(g, 4, 3, scale=1.5), _n(g, 4, 3, scale=1.5)), {}),
                "mixed_outputs_bbt": lambda g: ((_n(g, 3, 3, 2, scale=1.5), _n(g, 2, 2, 2, scale=1.5)), {}),
                "b1": lambda g: ((_n(g, 1, scale=1.5), _n(g, 1, scale=1.5)), {}),
            },
            F32_SUM,
            array_args=(0, 1),
        ),
        _record(
            "g_hinge_loss",
            "losses",
            {
                "bbt": lambda g: ((_n(g, 3, 3, 2, scale=1.5),), {}),
                "b1": lambda g: ((_n(g, 1),), {}),
            },
            F32_SUM,
        ),
        _record(
            "projection",
            "losses",
            {
                "b3_c5": lambda g: ((_n(g, 3, 5), _n(g, 3, 5), _head(g, 5)), {}),
                "b1_c1": lambda g: ((_n(g, 1, 1), _n(g, 1, 1), _head(g, 1)), {}),
            },
            F32_SUM,
            array_args=(0, 1, 2),
        ),
        _record(
            "mixed_projection",
            "losses",
            {
                "b3_t4_c5": lambda g: ((_n(g, 3, 4, 5), _n(g, 3, 5), _head(g, 5)), {}),
                "b1_t1_c1": lambda g: ((_n(g, 1, 1, 1), _n(g, 1, 1), _head(g, 1)), {}),
                "b2_t3_c1": lambda g: ((_n(g, 2, 3, 1), _n(g, 2, 1), _head(g, 1)), {}),
            },
            F32_SUM,
            array_args=(0, 1, 2),
        ),
    ]


# ---------------------------------------------------------------------------
# discriminator inputs (section 3.1)


def _offsets(g: np.random.Generator, B: int, H: int, W: int, h: int, w: int) -> np.ndarray:
    return np.stack([g.integers(0, H - h + 1, size=B), g.integers(0, W - w + 1, size=B)], axis=1)


def _video_records() -> list[OpRecord]:
    return [
        _record(
            "sample_frames",
            "video",
            {
                "b2_k3_repeats": lambda g: ((_n(g, 2, 5, 3, 4, 2), np.array([[4, 0, 4], [1, 2, 3]])), {}),
                "b1_c1_random": lambda g: ((_n(g, 1, 6, 2, 3, 1), g.integers(0, 6, size=(1, 4))), {}),
            },
            EXACT,
            tol64=EXACT,
            array_args=(0, 1),
            diff_args=(0,),
        ),
        _record(
            "downsample",
            "video",
            {
                "nonsquare_s2": lambda g: ((_n(g, 2, 3, 4, 6, 2), 2), {}),
                "b1_c1_s3": lambda g: ((_n(g, 1, 2, 6, 3, 1), 3), {}),
                "s1": lambda g: ((_n(g, 1, 2, 2, 3, 2), 1), {}),
            },
            F32_SUM,
        ),
        _record(
            "crop",
            "video",
            {
                "b3_random": lambda g: ((_n(g, 3, 2, 5, 6, 2), _offsets(g, 3, 5, 6, 2, 3), (2, 3)), {}),
                "b1_c1_full_frame": lambda g: ((_n(g, 1, 2, 3, 4, 1), np.zeros((1, 2), dtype=np.int64), (3, 4)), {}),
                "corners": lambda g: ((_n(g, 2, 1, 4, 4, 2), np.array([[0, 2], [2, 0]]), (2, 2)), {}),
            },
            EXACT,
            tol64=EXACT,
            array_args=(0, 1),
            diff_args=(0,),
        ),
    ]


def _build_records() -> list[OpRecord]:
    records: list[OpRecord] = []
    records += _ops_records()
    records += _warping_records()
    records += _cells_records()
    records += _layers_records()
    records += _losses_records()
    records += _video_records()
    return records


RECORDS: list[OpRecord] = _build_records()


def get_record(name: str) -> OpRecord:
    for rec in RECORDS:
        if rec.name == name:
            return rec
    raise KeyError(f"no op record named {name!r}; known: {', '.join(r.name for r in RECORDS)}")


def name_matches(pattern: str, name: str) -> bool:
    """Whether record ``name`` matches ``pattern``.

    ``*`` and ``?`` are wildcards; everything else is literal (so brackets work:
    ``cell_step[tsru_*]``).  A pattern without wildcards matches the full name
    or the base name before ``[`` (``cell_step`` matches every kind).
    """
    if "*" in pattern or "?" in pattern:
        import re

        rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        return re.fullmatch(rx, name) is not None
    return pattern in (name, name.split("[", 1)[0])


def select(patterns: str | Sequence[str] | None, records: Sequence[OpRecord] | None = None) -> list[OpRecord]:
    """Records whose name matches any of ``patterns`` (comma-separated string or list; see :func:`name_matches`).

    ``None`` or an empty pattern selects everything.
    """
    records = RECORDS if records is None else list(records)
    if patterns is None:
        return list(records)
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    patterns = [p.strip() for p in patterns if p.strip()]
    if not patterns:
        return list(records)
    return [r for r in records if any(name_matches(p, r.name) for p in patterns)]
