"""Metrics (section 4.1, appendix C): Frechet distance, IS, SSIM, PSNR, best-of-l, copy baseline.

Both layers compute in float64 on the host.  Expected values come from closed forms
derived in the comments, from hand calculations, or from the loop-based reference.

Tolerances
----------
* Closed forms: rtol 1e-10 (project rule for float64), with an absolute floor
  ``1e-10 * scale`` where the expected value is 0 and the computed one is a
  difference of O(scale) traces (rounding ~ d * eps * scale).
* Core vs reference: rtol 1e-10, atol 1e-12 for SSIM/PSNR/IS/best-of (O(1) values
  built from <= ~10^4 float64 operations).  The Frechet distance core vs reference is
  compared at rtol 1e-8: the reference's ``scipy.linalg.sqrtm`` works on the
  *non-symmetric* product ``Sigma1 Sigma2`` through a Schur decomposition, whose error
  grows with the product's condition number (here up to ~10^2..10^6) rather than
  staying at a few eps like the symmetric eigen form.
* Singular products: ``sqrtm`` of a rank-deficient matrix is accurate only to about
  ``sqrt(eps) ~ 1.5e-8`` relative per zero eigenvalue (a square root amplifies the
  ~eps rounding of a zero eigenvalue to ~sqrt(eps)), so the reference is held to
  ``d * sqrt(eps) * (Tr Sigma1 + Tr Sigma2)`` there; the core, which sets eigenvalues
  below ``d * eps * max`` to 0, is held to 1e-10.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference import metrics as ref
from trivd_core import metrics as core

LAYERS = [pytest.param(core, id="core"), pytest.param(ref, id="ref")]
EPS = float(np.finfo(np.float64).eps)
C1 = (0.01 * 2.0) ** 2  # SSIM constants for the data range L = 2
C2 = (0.03 * 2.0) ** 2


def spd(rng, d, lo=0.1, hi=3.0):
    """A random symmetric positive definite matrix with eigenvalues in [lo, hi]."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (Q * rng.uniform(lo, hi, d)) @ Q.T


def frames(rng, shape):
    return rng.uniform(-1.0, 1.0, shape)


def close(got, want):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# Frechet distance: closed forms


@pytest.mark.parametrize("m", LAYERS)
@pytest.mark.parametrize("d", [1, 3, 6])
def test_frechet_identical_gaussians_is_zero(m, d):
    rng = np.random.default_rng(d)
    mu, S = rng.standard_normal(d), spd(rng, d)
    got = m.frechet_distance(mu, S, mu, S)
    assert 0.0 <= got <= 1e-10 * np.trace(S)


@pytest.mark.parametrize("m", LAYERS)
def test_frechet_shifted_means_equal_covariances(m):
    # Tr(S + S - 2 (S S)^{1/2}) = 0, so d^2 = ||mu1 - mu2||^2.
    rng = np.random.default_rng(1)
    S = spd(rng, 5)
    mu1 = rng.standard_normal(5)
    delta = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    got = m.frechet_distance(mu1, S, mu1 + delta, S)
    np.testing.assert_allclose(got, np.sum(delta**2), rtol=1e-10, atol=1e-10 * np.trace(S))


@pytest.mark.parametrize("m", LAYERS)
@pytest.mark.parametrize(
    "a, b",
    [
        ([1.0, 2.0, 0.5], [4.0, 0.25, 0.5]),
        ([9.0], [1.0]),
        ([1.0, 0.0, 4.0, 0.0], [4.0, 1.0, 1.0, 0.0]),  # rank-deficient, both
    ],
)
def test_frechet_diagonal_covariances(m, a, b):
    # Diagonal covariances commute: (diag(a) diag(b))^{1/2} = diag(sqrt(a b)), so
    # Tr(...) = sum(a + b - 2 sqrt(a b)) = sum (sqrt a - sqrt b)^2.
    a, b = np.array(a), np.array(b)
    mu1 = np.linspace(-1.0, 1.0, a.size)
    mu2 = mu1[::-1] * 0.5
    want = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    np.testing.assert_allclose(m.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), want, rtol=1e-10)


@pytest.mark.parametrize("c", [1.0, 2.0, 0.5])
def test_frechet_rank_deficient_scaled_covariance(c):
    # Sigma2 = c^2 Sigma1 with Sigma1 = A A^T of rank 2 in d = 6: (Sigma1 Sigma2)^{1/2}
    # = c Sigma1 (the PSD root of c^2 Sigma1^2), so d^2 = (1 - c)^2 Tr Sigma1.
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 2))
    S1 = A @ A.T
    S2 = c * c * S1
    want = (1.0 - c) ** 2 * np.trace(S1)
    scale = np.trace(S1) + np.trace(S2)
    z = np.zeros(6)
    assert abs(core.frechet_distance(z, S1, z, S2) - want) <= 1e-10 * scale
    assert abs(ref.frechet_distance(z, S1, z, S2) - want) <= 6 * math.sqrt(EPS) * scale


def test_frechet_near_singular_eigen_form_agrees_with_sqrtm():
    # Condition numbers 1e6 (eigenvalues geometrically from 1 down to 1e-6): the eigen
    # form and sqrtm must still agree; both are far from the singular sqrt(eps) regime.
    rng = np.random.default_rng(4)
    d = 8
    Q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
    S1 = (Q1 * np.geomspace(1.0, 1e-6, d)) @ Q1.T
    S2 = (Q2 * np.geomspace(2.0, 1e-6, d)) @ Q2.T
    mu1, mu2 = np.zeros(d), np.full(d, 0.1)
    np.testing.assert_allclose(
        core.frechet_distance(mu1, S1, mu2, S2), ref.frechet_distance(mu1, S1, mu2, S2), rtol=1e-8
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_core_matches_reference_d16(seed):
    rng = np.random.default_rng(seed)
    d = 16
    args = (rng.standard_normal(d), spd(rng, d), rng.standard_normal(d), spd(rng, d))
    np.testing.assert_allclose(core.frechet_distance(*args), ref.frechet_distance(*args), rtol=1e-8)


@settings(max_examples=15, deadline=None)
@given(
    A=hnp.arrays(np.float64, (3, 3), elements=st.floats(-2, 2)),
    B=hnp.arrays(np.float64, (3, 3), elements=st.floats(-2, 2)),
    mu=hnp.arrays(np.float64, (3,), elements=st.floats(-2, 2)),
)
def test_frechet_nonnegative_and_symmetric(A, B, mu):
    # + 0.1 I keeps the products well conditioned: the reference's sqrtm is only reliable there (it refuses
    # singular products with a clear error); rank-deficient inputs to the core have their own closed-form tests.
    S1, S2 = A @ A.T + 0.1 * np.eye(3), B @ B.T + 0.1 * np.eye(3)
    z = np.zeros(3)
    scale = np.trace(S1) + np.trace(S2) + 1.0
    for m in (core, ref):
        d12 = m.frechet_distance(mu, S1, z, S2)
        d21 = m.frechet_distance(z, S2, mu, S1)
        assert d12 >= 0.0 and d21 >= 0.0
        # Tr (S1 S2)^{1/2} = Tr (S2 S1)^{1/2}; sqrtm on singular products is only sqrt(eps)-accurate.
        assert abs(d12 - d21) <= 3 * math.sqrt(EPS) * scale


# ---------------------------------------------------------------------------
# Frechet distance from features


@pytest.mark.parametrize("m", LAYERS)
def test_frechet_from_features_large_sample_approaches_analytic(m):
    # a ~ N(0, I), b ~ N(dmu, diag(s2^2)) in d = 4, N = 20000 each.
    # Analytic: ||dmu||^2 + sum_i (1 - s2_i)^2 = 0.5 + (1 + 0 + 0.25 + 0) = 1.75.
    N = 20000
    s1 = np.ones(4)
    s2 = np.array([2.0, 1.0, 0.5, 1.0])
    dmu = np.array([0.5, -0.5, 0.0, 0.0])
    rng = np.random.default_rng(20000)
    a = rng.standard_normal((N, 4)) * s1
    b = dmu + rng.standard_normal((N, 4)) * s2
    want = np.sum(dmu**2) + np.sum((s1 - s2) ** 2)
    # Sampling error, delta method: the mean term 2 dmu.(mu_hat diff) has sd
    # 2 sqrt(dmu^T (S1 + S2) dmu / N); each trace term (s1_i - s2_i)^2 with std
    # estimates of sd s/sqrt(2N) has sd 2 |s1_i - s2_i| sqrt((s1_i^2 + s2_i^2) / (2N)).
    sd_mean = 2 * math.sqrt(np.sum(dmu**2 * (s1**2 + s2**2)) / N)
    sd_cov = math.sqrt(np.sum((2 * np.abs(s1 - s2)) ** 2 * (s1**2 + s2**2) / (2 * N)))
    # Second-order bias: E||mu_hat diff||^2 adds Tr(S1 + S2) / N; squared estimation noise
    # of the d^2 = 16 covariance entries adds at most ~ d^2 max(s^2) / N.
    bias = np.sum(s1**2 + s2**2) / N + 16 * 4.0 / N
    tol = 5 * math.hypot(sd_mean, sd_cov) + bias  # ~ 0.15 (5 sigma)
    assert abs(m.frechet_distance_from_features(a, b) - want) <= tol


def test_frechet_from_features_core_matches_reference():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 3))
    b = rng.standard_normal((25, 3)) @ rng.standard_normal((3, 3)) + 1.0
    np.testing.assert_allclose(
        core.frechet_distance_from_features(a, b), ref.frechet_distance_from_features(a, b), rtol=1e-8
    )


@pytest.mark.parametrize("m", LAYERS)
def test_frechet_from_features_d1(m):
    # d = 1: variances are scalars, d^2 = (mu1 - mu2)^2 + (s1 - s2)^2 with the unbiased std.
    a = np.array([[0.0], [2.0]])  # mean 1, unbiased variance 2
    b = np.array([[1.0], [3.0], [5.0]])  # mean 3, unbiased variance 4
    want = (1.0 - 3.0) ** 2 + (math.sqrt(2.0) - 2.0) ** 2
    np.testing.assert_allclose(m.frechet_distance_from_features(a, b), want, rtol=1e-10)


@pytest.mark.parametrize("m", LAYERS)
def test_frechet_from_features_warns_with_few_samples(m):
    assert issubclass(m.FewSamplesWarning, UserWarning)
    assert not issubclass(m.FewSamplesWarning, RuntimeWarning)
    rng = np.random.default_rng(6)
    with pytest.warns(m.FewSamplesWarning, match="argument 'b'"):
        got = m.frechet_distance_from_features(rng.standard_normal((10, 5)), rng.standard_normal((3, 5)))
    assert np.isfinite(got) and got >= 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.frechet_distance_from_features(rng.standard_normal((5, 5)), rng.standard_normal((6, 5)))


# ---------------------------------------------------------------------------
# Inception Score


@pytest.mark.parametrize("m", LAYERS)
def test_is_uniform_logits_is_one(m):
    # Equal logits per row: p(y|x) = p(y) = 1/K, every KL is 0, IS = 1 in every split.
    logits = np.repeat(np.arange(20.0)[:, None], 7, axis=1)
    mean, std = m.inception_score(logits, splits=4)
    np.testing.assert_allclose([mean, std], [1.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("m", LAYERS)
@pytest.mark.parametrize("K, splits", [(5, 10), (4, 3), (1, 2)])
def test_is_confident_even_classes_is_number_of_classes(m, K, splits):
    # One-hot p(y|x) (off-class logits -1e4: exp underflows to exactly 0) and each split
    # holding every class once: p(y) = 1/K, KL = log K for every x, IS = exp(log K) = K.
    N = K * splits
    logits = np.full((N, K), -1e4)
    logits[np.arange(N), np.arange(N) % K] = 0.0
    mean, std = m.inception_score(logits, splits=splits)
    np.testing.assert_allclose([mean, std], [K, 0.0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m", LAYERS)
def test_is_soft_hand_case(m):
    # p(.|x1) = (3/4, 1/4), p(.|x2) = (1/4, 3/4): p(y) = (1/2, 1/2),
    # KL = 3/4 log(3/2) + 1/4 log(1/2) = 3/4 log 3 - log 2 for both, IS = 3^(3/4) / 2.
    logits = np.array([[math.log(3.0), 0.0], [0.0, math.log(3.0)]])
    mean, std = m.inception_score(logits, splits=1)
    np.testing.assert_allclose([mean, std], [3.0**0.75 / 2.0, 0.0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("m", LAYERS)
def test_is_mean_and_population_std_over_splits(m):
    # Split 0: two confident samples of two classes (IS 2); split 1: uniform (IS 1).
    # mean 1.5, population std 0.5.
    logits = np.array([[0.0, -1e4], [-1e4, 0.0], [0.0, 0.0], [1.0, 1.0]])
    mean, std = m.inception_score(logits, splits=2)
    np.testing.assert_allclose([mean, std], [1.5, 0.5], rtol=1e-12)


@pytest.mark.parametrize("m", LAYERS)
def test_is_invariant_to_class_permutation(m):
    rng = np.random.default_rng(7)
    logits = 3 * rng.standard_normal((30, 6))
    perm = rng.permutation(6)
    np.testing.assert_allclose(m.inception_score(logits[:, perm], 3), m.inception_score(logits, 3), rtol=1e-12)


@pytest.mark.parametrize("N, K, splits", [(50, 7, 5), (23, 3, 10), (5, 4, 1)])
def test_is_core_matches_reference(N, K, splits):
    # N = 23, splits = 10: uneven splits of sizes 2 and 3 (boundaries floor(k N / S)).
    logits = 4 * np.random.default_rng(N).standard_normal((N, K))
    close(core.inception_score(logits, splits), ref.inception_score(logits, splits))


def test_is_default_splits_is_ten():
    logits = np.random.default_rng(8).standard_normal((9, 3))
    with pytest.raises(ValueError, match="splits=10"):
        core.inception_score(logits)
    with pytest.raises(ValueError, match="splits=10"):
        ref.inception_score(logits)


# ---------------------------------------------------------------------------
# SSIM


@pytest.mark.parametrize("m", LAYERS)
@pytest.mark.parametrize("shape", [(11, 11, 1), (2, 12, 13, 2)])
def test_ssim_identical_is_one(m, shape):
    a = frames(np.random.default_rng(9), shape)
    got = m.ssim(a, a.copy())
    assert got.shape == shape[:-3]
    np.testing.assert_allclose(got, np.ones(shape[:-3]), rtol=1e-14)


@pytest.mark.parametrize("m", LAYERS)
@pytest.mark.parametrize("protocol", ["savp", "pm1"])
def test_ssim_constant_frames_is_luminance_term(m, protocol):
    # Constant frames: every window has sigma_a = sigma_b = sigma_ab = 0, so SSIM is the
    # luminance term (2 al be + C1) / (al^2 + be^2 + C1) per channel, averaged over channels,
    # on the frames as the protocol sees them: SAVP maps x -> (x + 1) / 2 with L = 1
    # (C1 = 0.01^2), pm1 keeps x with L = 2 (C1 = 0.02^2).
    # Tolerance 1e-12: the core's E[x^2] - mu^2 leaves ~1e-16 variances, relative 1e-16 / C2.
    al = np.array([0.5, 1.0, -0.75])
    be = np.array([-0.25, 1.0, 0.0])
    a = np.broadcast_to(al, (2, 11, 14, 3)).copy()
    b = np.broadcast_to(be, (2, 11, 14, 3)).copy()
    if protocol == "savp":
        al, be, c1 = (al + 1) / 2, (be + 1) / 2, 0.01**2
    else:
        c1 = C1
    want = np.mean((2 * al * be + c1) / (al**2 + be**2 + c1))
    np.testing.assert_allclose(m.ssim(a, b, protocol=protocol), [want, want], rtol=1e-12)


def test_ssim_protocols_differ_in_the_luminance_term_only_and_default_is_savp():
    # black frame (-1) against a mid-grey one (0): SAVP sees 0 vs 0.5 -> (0 + 1e-4) / (0.25 + 1e-4);
    # pm1 sees -1 vs 0 -> (0 + 4e-4) / (1 + 4e-4)
    a = np.full((11, 11, 1), -1.0)
    b = np.zeros((11, 11, 1))
    np.testing.assert_allclose(core.ssim(a, b), 1e-4 / (0.25 + 1e-4), rtol=1e-12)
    np.testing.assert_allclose(core.ssim(a, b, protocol="pm1"), 4e-4 / (1 + 4e-4), rtol=1e-12)
    with pytest.raises(ValueError, match="protocol"):
        core.ssim(a, b, protocol="tf")
    with pytest.raises(ValueError, match="protocol"):
        ref.ssim(a, b, protocol="tf")


@pytest.mark.parametrize("shape", [(11, 11, 1), (2, 12, 13, 2), (2, 1, 11, 12, 3)])
def test_ssim_core_matches_reference(shape):
    rng = np.random.default_rng(len(shape))
    a = frames(rng, shape)
    b = np.clip(a + 0.4 * rng.standard_normal(shape), -1, 1)
    got, want = core.ssim(a, b), ref.ssim(a, b)
    assert got.shape == want.shape == shape[:-3]
    close(got, want)
    close(ref.ssim(b, a), want)  # symmetry of the reference


@settings(max_examples=20, deadline=None)
@given(
    a=hnp.arrays(np.float64, (11, 13, 2), elements=st.floats(-1, 1)),
    b=hnp.arrays(np.float64, (11, 13, 2), elements=st.floats(-1, 1)),
)
def test_ssim_symmetric_and_bounded(a, b):
    s_ab, s_ba = core.ssim(a, b), core.ssim(b, a)
    np.testing.assert_allclose(s_ab, s_ba, rtol=1e-12, atol=1e-14)
    assert -1.0 - 1e-12 <= float(s_ab) <= 1.0 + 1e-12


def test_ssim_matches_skimage():
    """pm1: skimage on the frames with data_range 2; SAVP: skimage on (x + 1) / 2 with data_range 1."""
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(10)
    a = frames(rng, (3, 16, 21, 3))
    b = np.clip(a + 0.3 * rng.standard_normal(a.shape) - 0.2, -1, 1)

    def sk(x, y, L):
        return [metrics.structural_similarity(x[i], y[i], data_range=L, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, channel_axis=-1) for i in range(3)]

    close(core.ssim(a, b, protocol="pm1"), sk(a, b, 2.0))
    close(core.ssim(a, b), sk((a + 1) / 2, (b + 1) / 2, 1.0))
    close(ref.ssim(a[:1], b[:1]), sk((a + 1) / 2, (b + 1) / 2, 1.0)[:1])


# ---------------------------------------------------------------------------
# PSNR


@pytest.mark.parametrize("m", LAYERS)
def test_psnr_constant_difference(m):
    # b = a + d everywhere: MSE = d^2, PSNR = 10 log10(L^2 / d^2) = 10 log10(4 / d^2).
    # Values are multiples of 1/8, so a + d is exact.
    rng = np.random.default_rng(11)
    a = rng.integers(-8, 5, size=(2, 3, 5, 2)) / 8.0
    d = np.array([0.5, 0.375])[:, None, None, None]
    got = m.psnr(a, a + d)
    np.testing.assert_allclose(got, 10 * np.log10(4.0 / np.array([0.5, 0.375]) ** 2), rtol=1e-12)
    np.testing.assert_allclose(got[0], 10 * np.log10(16.0), rtol=1e-12)


@pytest.mark.parametrize("m", LAYERS)
def test_psnr_identical_is_inf_without_warning(m):
    a = frames(np.random.default_rng(12), (2, 4, 3, 1))
    b = a.copy()
    b[1, 0, 0, 0] = 0.0 if a[1, 0, 0, 0] != 0.0 else 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = m.psnr(a, b)
    assert got[0] == np.inf and np.isfinite(got[1])


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 5, 1), (2, 1, 3, 2, 4)])
def test_psnr_core_matches_reference(shape):
    rng = np.random.default_rng(13)
    a, b = frames(rng, shape), frames(rng, shape)
    close(core.psnr(a, b), ref.psnr(a, b))
    assert core.psnr(a, b).shape == shape[:-3]


# ---------------------------------------------------------------------------
# best-of-l and the copy baseline


@pytest.mark.parametrize("m", LAYERS)
def test_best_of_known_best(m):
    # truth (B=2, T=2, 11, 12, 1).  n = truth with frame 1 noisy.  Per clip one sample is
    # "truth except frame 1 = n's frame 1", the others have the noisy frame in *both* frames,
    # so the kept sample has per-frame SSIM (1, s) and the others (s', s) with s' < 1.
    rng = np.random.default_rng(14)
    truth = frames(rng, (2, 2, 11, 12, 1))
    noisy = np.clip(truth + 0.5 * rng.standard_normal(truth.shape), -1, 1)
    good = truth.copy()
    good[:, 1] = noisy[:, 1]
    bad = noisy.copy()
    bad[:, 0] = noisy[:, 1]  # frame 0 replaced by another frame: SSIM < 1 against truth frame 0
    samples = np.stack([bad, bad, good])  # l = 3, clip 0 best = 2
    samples[:, 1] = np.stack([good[1], bad[1], bad[1]])  # clip 1 best = 0
    res = m.best_of(samples, truth)
    np.testing.assert_array_equal(res.chosen, [2, 0])
    s1 = ref.ssim(noisy[:, 1], truth[:, 1])  # (B,) SSIM of the noisy frame, from the reference
    p1 = ref.psnr(noisy[:, 1], truth[:, 1])
    close(res.ssim_per_clip, np.stack([np.ones(2), s1], axis=1))
    assert np.all(res.psnr_per_clip[:, 0] == np.inf)
    close(res.psnr_per_clip[:, 1], p1)
    close(res.ssim, [1.0, s1.mean()])
    close(res.psnr[1], p1.mean())
    assert res.ssim.shape == res.psnr.shape == (2,) and res.ssim_per_clip.shape == (2, 2)


@pytest.mark.parametrize("m", LAYERS)
def test_best_of_ties_keep_first(m):
    rng = np.random.default_rng(15)
    truth = frames(rng, (1, 1, 11, 11, 1))
    sample = frames(rng, (1, 1, 11, 11, 1))
    res = m.best_of(np.stack([sample] * 3), truth)
    np.testing.assert_array_equal(res.chosen, [0])


def test_best_of_core_matches_reference():
    rng = np.random.default_rng(16)
    truth = frames(rng, (2, 3, 11, 12, 2))
    samples = np.clip(truth + rng.uniform(0.1, 0.8, (4, 2, 1, 1, 1, 1)) * rng.standard_normal((4, 2, 3, 11, 12, 2)), -1, 1)
    got, want = core.best_of(samples, truth), ref.best_of(samples, truth)
    np.testing.assert_array_equal(got.chosen, want.chosen)
    assert got.chosen.dtype == want.chosen.dtype == np.int64
    for field in ("ssim", "psnr", "ssim_per_clip", "psnr_per_clip"):
        close(getattr(got, field), getattr(want, field))
    assert got.to_dict().keys() == want.to_dict().keys()
    assert got.to_dict()["chosen"] == want.chosen.tolist()


@pytest.mark.parametrize("m", LAYERS)
def test_copy_last_frame(m):
    rng = np.random.default_rng(17)
    cond = frames(rng, (2, 3, 4, 5, 1))
    out = m.copy_last_frame(cond, 4)
    assert out.shape == (2, 4, 4, 5, 1) and out.dtype == np.float64
    for t in range(4):
        np.testing.assert_array_equal(out[:, t], cond[:, -1])
    one = m.copy_last_frame(cond[:1, :1], 1)  # B = 1, T_cond = 1, t_pred = 1
    np.testing.assert_array_equal(one, cond[:1, :1])


@pytest.mark.parametrize("m", LAYERS)
def test_copy_baseline_through_best_of(m):
    # l = 1: the copy baseline is the only sample, so its curves are plain per-frame SSIM/PSNR.
    rng = np.random.default_rng(18)
    cond = frames(rng, (2, 2, 11, 11, 1))
    truth = frames(rng, (2, 3, 11, 11, 1))
    copy = m.copy_last_frame(cond, 3)
    res = m.best_of(copy[None], truth)
    np.testing.assert_array_equal(res.chosen, [0, 0])
    close(res.ssim_per_clip, ref.ssim(copy, truth))
    close(res.psnr, ref.psnr(copy, truth).mean(axis=0))


# ---------------------------------------------------------------------------
# inputs from other array libraries


def test_core_accepts_foreign_arrays():
    rng = np.random.default_rng(19)
    a, b = frames(rng, (12, 11, 2)), frames(rng, (12, 11, 2))
    want = core.ssim(a, b)
    import array_api_strict

    close(core.ssim(array_api_strict.asarray(a), array_api_strict.asarray(b)), want)
    close(core.ssim(a.tolist(), b.tolist()), want)
    torch = pytest.importorskip("torch")
    close(core.ssim(torch.from_numpy(a), torch.from_numpy(b.astype(np.float32))), core.ssim(a, b.astype(np.float32)))
    with pytest.raises(TypeError, match=r"ssim\(\): argument 'a'.*detach"):
        core.ssim(torch.from_numpy(a).requires_grad_(True), b)
    jnp = pytest.importorskip("jax.numpy")
    a32, b32 = a.astype(np.float32), b.astype(np.float32)  # jax defaults to float32
    close(core.psnr(jnp.asarray(a32), jnp.asarray(b32)), core.psnr(a32, b32))


# ---------------------------------------------------------------------------
# errors: both layers raise the same type naming the same argument

_OK = np.zeros((1, 11, 11, 1))
_S = np.eye(3)
_Z = np.zeros(3)

ERRORS = [
    ("frechet_distance", (np.zeros((3, 1)), _S, _Z, _S), ValueError, "mu1"),
    ("frechet_distance", (_Z, _S, np.zeros(2), _S), ValueError, "mu2"),
    ("frechet_distance", (_Z, np.zeros((3, 2)), _Z, _S), ValueError, "sigma1"),
    ("frechet_distance", (_Z, _S, _Z, np.triu(np.ones((3, 3)))), ValueError, "sigma2"),
    ("frechet_distance", (_Z, np.diag([1.0, -1.0, 1.0]), _Z, _S), ValueError, "sigma1"),
    ("frechet_distance", (np.array([0.0, np.nan, 0.0]), _S, _Z, _S), ValueError, "mu1"),
    ("frechet_distance", (_Z, _S, _Z, _S.astype(complex)), TypeError, "sigma2"),
    ("frechet_distance", (np.zeros(3, bool), _S, _Z, _S), TypeError, "mu1"),
    ("frechet_distance_from_features", (np.zeros(4), np.zeros((4, 1))), ValueError, "a"),
    ("frechet_distance_from_features", (np.zeros((4, 3)), np.zeros((4, 2))), ValueError, "b"),
    ("frechet_distance_from_features", (np.zeros((1, 3)), np.zeros((4, 3))), ValueError, "a"),
    ("frechet_distance_from_features", (np.zeros((4, 3)), np.full((4, 3), np.inf)), ValueError, "b"),
    ("inception_score", (np.zeros(10),), ValueError, "logits"),
    ("inception_score", (np.zeros((3, 2)), 4), ValueError, "logits"),
    ("inception_score", (np.zeros((3, 2)), 0), ValueError, "splits"),
    ("inception_score", (np.zeros((3, 2)), 2.0), TypeError, "splits"),
    ("inception_score", (np.zeros((3, 2)), True), TypeError, "splits"),
    ("inception_score", (np.full((3, 2), np.nan), 1), ValueError, "logits"),
    ("ssim", (np.zeros((11, 11)), np.zeros((11, 11))), ValueError, "a"),
    ("ssim", (_OK, np.zeros((1, 11, 12, 1))), ValueError, "b"),
    ("ssim", (np.zeros((10, 16, 1)), np.zeros((10, 16, 1))), ValueError, "a"),
    ("ssim", (_OK + 1.5, _OK), ValueError, "a"),
    ("ssim", (_OK, _OK - 1.01), ValueError, "b"),
    ("ssim", (_OK, _OK * np.nan), ValueError, "b"),
    ("ssim", (_OK.astype(complex), _OK), TypeError, "a"),
    ("psnr", (np.zeros((4, 4)), np.zeros((4, 4))), ValueError, "a"),
    ("psnr", (np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4, 3))), ValueError, "b"),
    ("psnr", (np.zeros((4, 4, 1)), np.full((4, 4, 1), 2.0)), ValueError, "b"),
    ("psnr", (np.zeros((4, 0, 1)), np.zeros((4, 0, 1))), ValueError, "a"),
    ("best_of", (np.zeros((1, 1, 11, 11, 1)), np.zeros((1, 1, 11, 11, 1))), ValueError, "samples"),
    ("best_of", (np.zeros((2, 1, 1, 11, 11, 1)), np.zeros((1, 2, 11, 11, 1))), ValueError, "truth"),
    ("best_of", (np.zeros((2, 1, 1, 10, 11, 1)), np.zeros((1, 1, 10, 11, 1))), ValueError, "samples"),
    ("best_of", (np.zeros((2, 1, 1, 11, 11, 1)), np.full((1, 1, 11, 11, 1), -2.0)), ValueError, "truth"),
    ("best_of", (np.full((2, 1, 1, 11, 11, 1), np.nan), np.zeros((1, 1, 11, 11, 1))), ValueError, "samples"),
    ("best_of", (np.zeros((0, 1, 1, 11, 11, 1)), np.zeros((1, 1, 11, 11, 1))), ValueError, "samples"),
    ("copy_last_frame", (np.zeros((1, 11, 11, 1)), 2), ValueError, "cond"),
    ("copy_last_frame", (np.zeros((1, 0, 4, 4, 1)), 2), ValueError, "cond"),
    ("copy_last_frame", (np.zeros((1, 2, 4, 4, 1)), 0), ValueError, "t_pred"),
    ("copy_last_frame", (np.zeros((1, 2, 4, 4, 1)), 2.0), TypeError, "t_pred"),
]


@pytest.mark.parametrize("m", LAYERS)
@pytest.mark.parametrize("fn, args, exc, arg", ERRORS, ids=[f"{e[0]}-{e[3]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_function_and_argument(m, fn, args, exc, arg):
    with pytest.raises(exc, match=rf"{fn}\(\): argument '{arg}'"):
        getattr(m, fn)(*args)


def test_same_public_names_in_both_layers():
    assert core.__all__ == ref.__all__
    import inspect

    for name in core.__all__:
        c, r = getattr(core, name), getattr(ref, name)
        if inspect.isfunction(c):
            assert list(inspect.signature(c).parameters) == list(inspect.signature(r).parameters), name
            assert [p.default for p in inspect.signature(c).parameters.values()] == [
                p.default for p in inspect.signature(r).parameters.values()
            ], name
