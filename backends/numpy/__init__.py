"""The NumPy backend: trivd_core's generic array-API code on NumPy, no autodiff, no training.

``value_and_grad`` uses central finite differences in float64; it exists so
that the same driver code runs on every backend, and is meant for small checks
only.  The backend does not train: ``trains`` is False and :meth:`NumpyBackend.engine`
raises :class:`NotImplementedError` saying so (:mod:`backends.numpy.engine`).
It has no fast paths (the generic code is the NumPy path) and no sharding.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import numpy as np_xp

from ..common import tree_map
from .engine import NO_ENGINE, engine


class NumpyBackend:
    name = "numpy"
    supports_float64 = True
    #: no training engine (see :data:`backends.numpy.engine.NO_ENGINE`)
    trains = False
    no_engine = NO_ENGINE

    def namespace(self):
        return np_xp

    def activate(self) -> None:
        return None

    def asarray(self, a, dtype=None):
        return tree_map(lambda v: np.asarray(v, dtype=dtype) if dtype else np.asarray(v), a)

    def to_numpy(self, x):
        return tree_map(np.asarray, x)

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

    def engine(self, config, **options):
        """Refuses: the numpy backend does not train (:data:`backends.numpy.engine.NO_ENGINE`)."""
        return engine(config, **options)


BACKEND = NumpyBackend()
