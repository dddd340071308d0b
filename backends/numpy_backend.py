"""The NumPy backend: trivd_core's generic array-API code on NumPy, no autodiff.

``value_and_grad`` uses central finite differences in float64; it exists so
that the same driver code runs on every backend, and is meant for small checks
only.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import numpy as np_xp


def _map(fn, tree):
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(fn, v) for v in tree)
    return fn(tree)


class NumpyBackend:
    name = "numpy"
    supports_float64 = True

    def namespace(self):
        return np_xp

    def activate(self) -> None:
        return None

    def asarray(self, a, dtype=None):
        return _map(lambda v: np.asarray(v, dtype=dtype) if dtype else np.asarray(v), a)

    def to_numpy(self, x):
        return _map(np.asarray, x)

    def value_and_grad(self, f, argnums=0, eps: float = 1e-6):
        single = isinstance(argnums, int)
        nums = (argnums,) if single else tuple(argnums)

        def g(*args):
            args = [np.array(a, dtype=np.float64) if i in nums else a for i, a in enumerate(args)]
            value = f(*args)
            grads = []
            for i in nums:
                a = args[i]
                grad = np.zeros_like(a)
                for idx in np.ndindex(a.shape):
                    old = a[idx]
                    a[idx] = old + eps
                    plus = float(f(*args))
                    a[idx] = old - eps
                    minus = float(f(*args))
                    a[idx] = old
                    grad[idx] = (plus - minus) / (2 * eps)
                grads.append(grad)
            return value, (grads[0] if single else tuple(grads))

        return g

    def jit(self, f):
        return f


BACKEND = NumpyBackend()
