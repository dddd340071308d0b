"""Does XLA:CPU's fast-compile option (the JAX step's default below 120 steps) slow a wide model's ops?

``python experiments/xla_opt_level.py`` (one thread: ``OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``).
Times the gradient of a 3x3 convolution (16 x 32 x 32 x 96 -> 96 channels) and of Eq. 11's pixelwise warp
(8 x 32 x 32 x 96, 3x3 taps) under both options.  Measured (docs/benchmarks.md, "At the paper's width"):
the convolution runs alike (1316 vs 1063 ms), the warp 2.9x slower with fast-compile (53 vs 154 ms).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

import backends
from trivd_core import warping

FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def timed(fn, *args, n=5):
    jax.block_until_ready(fn(*args))
    t = time.perf_counter()
    for _ in range(n):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - t) / n


def main():
    backends.load("jax").activate()
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((16, 32, 32, 96)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, 96, 96)), jnp.float32)
    h = jnp.asarray(rng.uniform(-1, 1, (8, 32, 32, 96)), jnp.float32)
    k = jnp.asarray(rng.uniform(0, 1, (8, 32, 32, 9)), jnp.float32)

    def conv_loss(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(y * y)

    def warp_loss(h, k):
        y = warping.pixelwise_warp(h, k, 3)
        return jnp.sum(y * y)

    for name, loss, args in (("conv 3x3, 96 -> 96", conv_loss, (x, w)), ("pixelwise warp, C = 96", warp_loss, (h, k))):
        g = jax.value_and_grad(loss, argnums=(0, 1))
        full = timed(jax.jit(g), *args)
        fast = timed(jax.jit(g, compiler_options=FAST), *args)
        print(f"{name}: forward+backward full {full * 1e3:.1f} ms, fast-compile {fast * 1e3:.1f} ms "
              f"({fast / full:.2f}x)")


if __name__ == "__main__":
    main()
