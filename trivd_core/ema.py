r"""Exponential moving average of the generator's weights (paper appendix E.2), array API.

"All samples for evaluation (but not for training) use an exponential moving average of
G's weights, which is accumulated with decay gamma = 0.9999 and is initialized after
20,000 training steps with the value of weights at that point."  With ``step`` the
number of the training step just taken and ``start`` the initialisation step::

    step <= start:  ema_t = params_t                       (a copy of the live weights;
                                                            at step == start this is the
                                                            initialisation)
    step >  start:  ema_t = decay * ema_{t-1} + (1 - decay) * params_t

Trees are nested dicts of arrays (``params`` of :func:`generator.init_generator`, E
included); ``ema_params`` must have the same keys and shapes.  ``step`` and ``start``
are Python ints (the step counter of the training loop), or ``step`` is a 0-d integer
array, e.g. inside ``jax.jit``; then the choice above is an elementwise ``where``
(no host sync) and ``ema_params`` must be given.
"""

from __future__ import annotations

from collections.abc import Mapping

from array_api_compat import array_namespace, is_array_api_obj

from ._validate import at_the_door
from .tree import tree_map

__all__ = ["ema_update"]


def _path(path) -> str:
    return "".join(f"[{k!r}]" for k in path)


def _zip_map(fn, f, ema, params, path=()):
    """``f(ema_leaf, param_leaf)`` over two trees of the same layout (checked), keeping the layout."""
    if isinstance(params, Mapping):
        if not isinstance(ema, Mapping) or set(ema) != set(params):
            got = sorted(ema) if isinstance(ema, Mapping) else type(ema).__name__
            raise ValueError(
                f"{fn}(): argument 'ema_params' must have the layout of 'params'; at {_path(path) or 'the root'} "
                f"'params' has keys {sorted(params)} but 'ema_params' has {got}"
            )
        return {key: _zip_map(fn, f, ema[key], params[key], (*path, key)) for key in params}
    if not is_array_api_obj(ema):
        raise TypeError(f"{fn}(): argument 'ema_params' must hold arrays; ema_params{_path(path)} is "
                        f"{type(ema).__name__}")
    if tuple(ema.shape) != tuple(params.shape):
        raise ValueError(
            f"{fn}(): ema_params{_path(path)} must have the shape of params{_path(path)} {tuple(params.shape)}, "
            f"got {tuple(ema.shape)}"
        )
    return f(ema, params)


def _check_leaves(fn, params, path=()):
    if isinstance(params, Mapping):
        for key, v in params.items():
            _check_leaves(fn, v, (*path, key))
    elif not is_array_api_obj(params):
        raise TypeError(f"{fn}(): argument 'params' must hold arrays; params{_path(path)} is {type(params).__name__}")


def _copy(x):
    return array_namespace(x).asarray(x, copy=True)


@at_the_door
def ema_update(ema_params, params, decay: float, step, start: int):
    """One EMA update of ``ema_params`` towards ``params`` (see the module docstring); returns the new tree.

    Args:
        ema_params: the running average (same layout as ``params``); may be ``None``
            while ``step <= start`` with a Python-int ``step``.
        params: the live weights after training step ``step``.
        decay: ``gamma`` in ``[0, 1]`` (paper: 0.9999, ``Config.ema_decay``).
        step: the training step just taken (Python int, or a 0-d integer array).
        start: the step at which the average is initialised from the live weights
            (paper: 20,000, ``Config.ema_start``); a Python int.
    """
    fn = "ema_update"
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay <= 1.0:
        raise ValueError(f"{fn}(): argument 'decay' must be a float in [0, 1], got {decay!r}")
    if isinstance(start, bool) or not isinstance(start, int):
        raise TypeError(f"{fn}(): argument 'start' must be an int, got {start!r} ({type(start).__name__})")
    if not isinstance(params, Mapping):
        raise TypeError(f"{fn}(): argument 'params' must be a nested dict of arrays, got {type(params).__name__}")
    _check_leaves(fn, params)
    decay = float(decay)
    if is_array_api_obj(step):
        if tuple(step.shape) != () or not array_namespace(step).isdtype(step.dtype, "integral"):
            raise TypeError(f"{fn}(): argument 'step' must be an int or a 0-d integer array, got shape "
                            f"{tuple(step.shape)} and dtype {step.dtype}")
        if ema_params is None:
            raise ValueError(f"{fn}(): argument 'ema_params' must be given when 'step' is an array")
        after = step > start
        return _zip_map(fn, lambda e, p: array_namespace(p).where(after, decay * e + (1.0 - decay) * p, p),
                        ema_params, params)
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"{fn}(): argument 'step' must be an int or a 0-d integer array, got {step!r}")
    if step <= start:
        return tree_map(_copy, params)
    if ema_params is None:
        raise ValueError(
            f"{fn}(): argument 'ema_params' is None at step {step} > start {start}; the average must have been "
            "initialised at step == start (pass the tree returned then)"
        )
    return _zip_map(fn, lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)
