r"""Operation counts of the benchmarked kernels: bytes moved and floating-point operations.

All counts are *minimal* counts: what an ideal implementation must read and write
(each input element read once, each output element written once) and the additions
and multiplications the formula prescribes.  Achieved rates are these counts divided
by the measured time, so an implementation that moves more (temporaries, padding
copies) shows up as a rate below the machine's limit.

Pixelwise warp, Eq. 11 (``h (B,H,W,C)``, ``W (B,H,W,k^2)``, out ``(B,H,W,C)``)::

    bytes = s * B*H*W * (2*C + k^2)            read h and W, write h~
    flops = B*H*W*C * (2*k^2 - 1)              k^2 multiplications and k^2 - 1 additions per output

Factorized kernels, Eq. 12 (``w (B,k^2,N)``, ``S (B,H,W,N)``, out ``W (B,H,W,k^2)``)::

    bytes = s * (B*k^2*N + B*H*W*N + B*H*W*k^2)
    flops = B*H*W*k^2 * (2*N - 1)

Matrix product ``(n, m) @ (m, p)``: ``flops = n*p*(2*m - 1)``.  Memory copy of ``n``
elements: ``bytes = 2 * s * n`` (read and write).  ``s`` is the item size in bytes
(4 for float32).
"""

from __future__ import annotations

__all__ = ["warp_bytes", "warp_flops", "factorized_bytes", "factorized_flops", "matmul_flops", "copy_bytes"]


def _positive(fn: str, **values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{fn}(): argument '{name}' must be a positive int, got {v!r}")


def _odd(fn: str, k: int) -> None:
    _positive(fn, k=k)
    if k % 2 == 0:
        raise ValueError(f"{fn}(): argument 'k' must be an odd positive int, got {k!r}")


def warp_bytes(B: int, H: int, W: int, C: int, k: int = 3, itemsize: int = 4) -> int:
    """Minimal bytes read + written by ``pixelwise_warp``: ``itemsize * B*H*W * (2*C + k*k)``."""
    _positive("warp_bytes", B=B, H=H, W=W, C=C, itemsize=itemsize)
    _odd("warp_bytes", k)
    return itemsize * B * H * W * (2 * C + k * k)


def warp_flops(B: int, H: int, W: int, C: int, k: int = 3) -> int:
    """Floating-point operations of ``pixelwise_warp``: ``B*H*W*C * (2*k*k - 1)``."""
    _positive("warp_flops", B=B, H=H, W=W, C=C)
    _odd("warp_flops", k)
    return B * H * W * C * (2 * k * k - 1)


def factorized_bytes(B: int, H: int, W: int, k: int = 3, N: int = 9, itemsize: int = 4) -> int:
    """Minimal bytes of ``factorized_kernels``: ``itemsize * (B*k*k*N + B*H*W*N + B*H*W*k*k)``."""
    _positive("factorized_bytes", B=B, H=H, W=W, N=N, itemsize=itemsize)
    _odd("factorized_bytes", k)
    return itemsize * (B * k * k * N + B * H * W * N + B * H * W * k * k)


def factorized_flops(B: int, H: int, W: int, k: int = 3, N: int = 9) -> int:
    """Floating-point operations of ``factorized_kernels``: ``B*H*W*k*k * (2*N - 1)``."""
    _positive("factorized_flops", B=B, H=H, W=W, N=N)
    _odd("factorized_flops", k)
    return B * H * W * k * k * (2 * N - 1)


def matmul_flops(n: int, m: int, p: int) -> int:
    """Floating-point operations of ``(n, m) @ (m, p)``: ``n*p*(2*m - 1)``."""
    _positive("matmul_flops", n=n, m=m, p=p)
    return n * p * (2 * m - 1)


def copy_bytes(n: int, itemsize: int = 4) -> int:
    """Bytes moved by copying ``n`` elements: ``2 * itemsize * n`` (each read once and written once)."""
    _positive("copy_bytes", n=n, itemsize=itemsize)
    return 2 * itemsize * n
