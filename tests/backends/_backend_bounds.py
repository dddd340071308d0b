"""Error bounds shared by the backend tests (derived, not tuned).

Two implementations of one sum of ``n`` products (a convolution output, a pooled
mean) may add in different orders.  Each result is within
``gamma_n * sum |a_i b_i|`` of the exact value, with ``gamma_n = n u / (1 - n u)``
and ``u`` the unit roundoff of the dtype (Higham, *Accuracy and Stability of
Numerical Algorithms*, eq. 3.5); that holds for any order of summation, blocked
or pairwise, with or without FMA.  Two such results therefore differ by at most
twice that.  One more rounding (a bias add, a division by the window size) is
covered by counting it as one more term.
"""

from __future__ import annotations

import numpy as np

UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}


def gamma(n: int, dtype: str) -> float:
    nu = n * UNIT_ROUNDOFF[dtype]
    assert nu < 1
    return nu / (1 - nu)


def two_sums_bound(abs_sum: np.ndarray, n: int, dtype: str) -> np.ndarray:
    """Largest possible difference of two evaluations of sums of ``n`` terms with ``sum |terms| = abs_sum``."""
    return 2 * gamma(n, dtype) * np.asarray(abs_sum, dtype=np.float64)


def assert_within(actual, expected, bound, what: str) -> None:
    """Elementwise ``|actual - expected| <= bound``, with the worst offender in the message."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.abs(actual - expected)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), err.shape)
    bad = err > bound
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), err.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {err.size} elements outside the bound; worst at {i}: "
            f"|{actual[i]!r} - {expected[i]!r}| = {err[i]:.3e} > {bound[i]:.3e}"
        )
