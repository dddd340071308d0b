"""Argument checks shared by every public function of trivd_core.

Every error names the function, the argument, what was expected and what was
received, so that bad input (a wrong shape, dtype, namespace or option) never
surfaces as a deep framework stack trace.  Values are not checked: a finiteness
check would force a device-to-host sync on every call.  NaN in gives NaN out, the
same in the reference and the core (the conformance suite checks NaN inputs of
the losses), and the training loop stops on a non-finite loss.  Shapes are written with symbols (``("B", "H", "W", "C")``); a
symbol seen in one argument is bound and must agree in the others.

Validate at the door, trust inside: public functions carry :func:`at_the_door`.  The
first of them a caller enters checks its arguments; the public functions it calls in
turn (``g_loss`` -> ``generate`` -> ``cell_step`` -> ``conv2d`` ...) are *inside* and
skip their array checks (:func:`check_array` then only returns the namespace), and
:func:`inside` tells parameter-tree walks to skip too.  A user calling ``conv2d``
directly still gets every check.  The depth is a :class:`contextvars.ContextVar`, so
threads (the data loader, a validation thread) each have their own.
``python -m benchmarks.validation_cost`` measures what checking costs in a tiny eager
forward, before and after.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Iterable, MutableMapping, Sequence

from array_api_compat import array_namespace, is_array_api_obj

__all__ = ["check_array", "check_kernel_size", "check_choice", "check_positive_int", "same_namespace",
           "at_the_door", "inside"]

#: how many public functions (:func:`at_the_door`) the current call is inside
_DEPTH = contextvars.ContextVar("trivd_public_depth", default=0)
#: checks skipped because they were inside another public function (read by the benchmark)
TRUSTED_CALLS = [0]
#: False runs every check at every depth (what the benchmark compares against)
TRUST_INSIDE = True


def at_the_door(fn):
    """Decorator of a public function: its checks run when it is entered from outside trivd_core, not when
    another public function calls it (see the module docstring)."""

    @functools.wraps(fn)
    def door(*args, **kwargs):
        token = _DEPTH.set(_DEPTH.get() + 1)
        try:
            return fn(*args, **kwargs)
        finally:
            _DEPTH.reset(token)

    return door


def inside() -> bool:
    """True inside a public function called by another one: its arguments were checked at the door."""
    return TRUST_INSIDE and _DEPTH.get() > 1


def _fmt(spec: Sequence[object]) -> str:
    return "(" + ", ".join(str(s) for s in spec) + ("," if len(spec) == 1 else "") + ")"


def check_array(
    fn: str,
    name: str,
    x: object,
    spec: Sequence[object] | None = None,
    dims: MutableMapping[str, int] | None = None,
    *,
    floating: bool = True,
    integer: bool = False,
):
    """Check that ``x`` is an array of the given symbolic shape and dtype kind.

    ``spec`` entries are ints (fixed sizes), strings (symbols bound in ``dims``
    and checked against other arguments) or ``None`` (any size).  Returns the
    array namespace of ``x``.  Inside another public function (:func:`inside`) the
    checks are skipped: the arguments were checked at the door.
    """
    if TRUST_INSIDE and _DEPTH.get() > 1:
        TRUSTED_CALLS[0] += 1
        if dims is not None and spec is not None:  # callers read the sizes the symbols name
            for want, got in zip(spec, x.shape):
                if isinstance(want, str):
                    dims.setdefault(want, got)
        return array_namespace(x)
    return _check_array_impl(fn, name, x, spec, dims, floating=floating, integer=integer)


def _check_array_impl(fn, name, x, spec=None, dims=None, *, floating=True, integer=False):
    if not is_array_api_obj(x):
        raise TypeError(f"{fn}(): argument '{name}' must be an array, got {type(x).__name__}")
    xp = array_namespace(x)
    shape = tuple(x.shape)
    if spec is not None:
        if len(shape) != len(spec):
            raise ValueError(
                f"{fn}(): argument '{name}' must be a {len(spec)}-D array of shape {_fmt(spec)}, "
                f"got a {len(shape)}-D array of shape {shape}"
            )
        dims = {} if dims is None else dims
        for axis, (want, got) in enumerate(zip(spec, shape)):
            if want is None:
                continue
            if isinstance(want, str):
                if want in dims and dims[want] != got:
                    raise ValueError(
                        f"{fn}(): argument '{name}' must have shape {_fmt(spec)} with {want}={dims[want]} "
                        f"(axis {axis}, as fixed by an earlier argument), got shape {shape}"
                    )
                dims.setdefault(want, got)
            elif want != got:
                raise ValueError(
                    f"{fn}(): argument '{name}' must have shape {_fmt(spec)} with size {want} on axis {axis}, "
                    f"got shape {shape}"
                )
    if integer:
        if not xp.isdtype(x.dtype, "integral"):
            raise TypeError(f"{fn}(): argument '{name}' must have an integer dtype, got {x.dtype}")
    elif floating and not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(
            f"{fn}(): argument '{name}' must have a real floating dtype (float32 or float64), got {x.dtype}"
        )
    return xp


def same_namespace(fn: str, **arrays: object):
    """Check that all arrays come from one namespace and share one dtype; return it."""
    names = list(arrays)
    xp = array_namespace(*arrays.values())
    dtypes = {n: arrays[n].dtype for n in names}
    first = names[0]
    for n in names[1:]:
        if dtypes[n] != dtypes[first]:
            raise TypeError(
                f"{fn}(): arguments must share one dtype; '{first}' is {dtypes[first]} but '{n}' is {dtypes[n]}"
            )
    return xp


def check_kernel_size(fn: str, k: object, name: str = "k") -> int:
    """Kernel sizes are positive odd integers (SAME padding is symmetric only then)."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{fn}(): argument '{name}' must be an odd positive int, got {k!r} ({type(k).__name__})")
    if k < 1 or k % 2 == 0:
        raise ValueError(f"{fn}(): argument '{name}' must be an odd positive int (1, 3, 5, ...), got {k}")
    return k


def check_positive_int(fn: str, value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}(): argument '{name}' must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{fn}(): argument '{name}' must be a positive int, got {value}")
    return value


def check_choice(fn: str, value: object, allowed: Iterable[str], name: str = "kind") -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{fn}(): argument '{name}' must be one of {', '.join(allowed)}; got {value!r}")
    return value  # type: ignore[return-value]


def normalise_axes(fn: str, axes: object, ndim: int, name: str = "axes") -> tuple[int, ...]:
    """``axes`` (an int or a sequence of ints, negative counting from the end) as sorted, distinct
    non-negative axes of a ``ndim``-D array; ``TypeError``/``ValueError`` naming ``fn`` and ``name``."""
    if isinstance(axes, int):
        axes = (axes,)
    try:
        axes = tuple(int(a) for a in axes)  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(f"{fn}(): argument '{name}' must be an int or a tuple of ints, got {axes!r}") from None
    norm = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{fn}(): argument '{name}' entry {a} is out of range for a {ndim}-D 'x'")
        norm.append(a % ndim)
    if len(set(norm)) != len(norm):
        raise ValueError(f"{fn}(): argument '{name}' must not repeat an axis, got {axes!r}")
    return tuple(sorted(norm))
