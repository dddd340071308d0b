"""Gradients of each backend's ``conv3d`` fast path against the generic array-API code, on the same backend.

(``test_backend_fast_paths.py`` checks the values.)  JAX on the CPU computes the 3-D
convolution as one 2-D convolution of the frames with the time-shifted copies stacked
on the channel axis (``backends/jax/_fast.py``); this checks that rewrite's gradients,
including temporal kernel sizes 1 and 5 and clips shorter than the kernel.

Checked scalar: ``L = sum(conv3d(x, w, b) * G)`` with a fixed random cotangent ``G``.
Tolerance (derived, see ``_backend_bounds``): each gradient element is one sum whose
terms the two implementations add in different orders - ``dx`` over
``kt*kh*kw*C_out`` terms, ``dw`` over ``B*T*H*W``, ``db`` over ``B*T*H*W`` - so they
differ by at most ``2 * gamma_n * sum |terms|``; ``sum |terms|`` is the same gradient
of the absolute values, computed by the generic code in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from _backend_bounds import assert_within, two_sums_bound

from trivd_core import ops

# (x shape (B, T, H, W, C_in), w shape (kt, kh, kw, C_in, C_out)): the D video block's 3x3x3,
# a 1x1x1 shortcut, kt = 1 with a spatial kernel, kt = 5 on a clip of 2 frames, a 3x1x1 kernel.
CASES = [
    ((2, 3, 4, 5, 2), (3, 3, 3, 2, 3)),
    ((2, 4, 3, 3, 3), (1, 1, 1, 3, 2)),
    ((1, 3, 4, 4, 1), (1, 3, 5, 1, 2)),
    ((2, 2, 3, 3, 2), (5, 3, 3, 2, 1)),
    ((1, 4, 3, 2, 2), (3, 1, 1, 2, 2)),
]


def _grads(backend, x, w, b, G, generic):
    xp = backend.namespace()
    Gb = backend.asarray(G)

    def loss(x, w, b):
        return xp.sum(ops.conv3d(x, w, b) * Gb)

    args = backend.asarray([x, w, b])
    fn = backend.value_and_grad(loss, argnums=(0, 1, 2))
    if generic:
        with ops.generic_only():
            _, grads = fn(*args)
    else:
        _, grads = fn(*args)
    return [backend.to_numpy(g) for g in grads]


@pytest.mark.parametrize("dtype", ("float32", "float64"))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_conv3d_fast_path_gradients(backend, dtype, case):
    if dtype == "float64" and not backend.supports_float64:
        pytest.skip(f"backend {backend.name!r} has no float64 here (device or TRIVD_JAX_X64=0)")
    xs, ws = CASES[case]
    rng = np.random.default_rng(300 + case)
    x, w, b = (rng.uniform(-1.0, 1.0, size=s).astype(dtype) for s in (xs, ws, ws[-1:]))
    G = rng.uniform(-1.0, 1.0, size=xs[:4] + ws[-1:]).astype(dtype)
    fast = _grads(backend, x, w, b, G, generic=False)
    generic = _grads(backend, x, w, b, G, generic=True)
    # sum |terms|: the generic gradient of the absolute values, in float64 where the backend has it; a
    # float32 evaluation is within a relative gamma_n (< 1e-4 for these n) of it, covered by the 1.001
    slack = 1.0 if backend.supports_float64 else 1.001
    abs_dtype = np.float64 if backend.supports_float64 else np.float32
    absolute = _grads(backend, *(np.abs(a).astype(abs_dtype) for a in (x, w, b, G)), generic=True)
    kt, kh, kw, _, c_out = ws
    pixels = xs[0] * xs[1] * xs[2] * xs[3]
    for name, got, want, abs_sum, n in zip(("dx", "dw", "db"), fast, generic, absolute,
                                           (kt * kh * kw * c_out, pixels, pixels)):
        assert got.dtype == np.dtype(dtype), f"{name} dtype {got.dtype}"
        assert_within(got, want, slack * two_sums_bound(abs_sum, n, dtype), f"conv3d {xs} * {ws} [{dtype}] {name}")
