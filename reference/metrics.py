"""Reference evaluation metrics (paper section 4.1 and appendix C), slow and explicit.

The paper reports FVD and IS (section 4.1), per-frame SSIM and PSNR under the
best-of-l protocol of appendix C.1 (Fig. 5), and a copy-last-frame baseline
(appendix D.3).  The formulas come from the papers the TrIVD-GAN-FP paper cites:
the Frechet distance of FID/FVD [Heusel et al. 2017; Unterthiner et al. 2018],
the Inception Score [Salimans et al. 2016] and SSIM [Wang et al. 2004, ref. 74].

Everything here is NumPy/SciPy in float64: metrics run on host features and
frames, not on the array API.  Inputs are converted once with ``np.asarray``
and cast to float64; integer inputs are accepted, bool and complex ones are not.

Notation
--------
``mu``, ``Sigma``        mean vector ``(d,)`` and covariance ``(d, d)`` of a feature set.
``p(y|x)``               class probabilities of sample ``x``, ``softmax`` of its logits.
``p(y)``                 the marginal over one split, ``(1/N_k) sum_x p(y|x)``.
``a``, ``b``             two frames ``(H, W, C)`` in ``[-1, 1]``; ``L = 2`` is their range.
``w[p, q]``              the 11 x 11 Gaussian window (sigma 1.5), ``sum_{p,q} w = 1``.
``mu_a``, ``sigma_a^2``, ``sigma_ab``  window-weighted means, variances, covariance.
``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``  with ``K1 = 0.01``, ``K2 = 0.03``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

__all__ = [
    "FewSamplesWarning",
    "BestOf",
    "frechet_distance",
    "frechet_distance_from_features",
    "inception_score",
    "ssim",
    "psnr",
    "best_of",
    "copy_last_frame",
]

L = 2.0  # data range of frames in [-1, 1]
K1 = 0.01
K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SYMMETRY_RTOL = 1e-6  # relative asymmetry tolerated in a covariance (float32-sourced input)
PSD_RTOL = 1e-6  # relative negative eigenvalue tolerated in a covariance
SQRTM_IMAG_RTOL = 1e-6  # relative imaginary part tolerated in sqrtm(Sigma1 Sigma2)


class FewSamplesWarning(UserWarning):
    """Fewer samples than feature dimensions: the sample covariance is rank-deficient."""


@dataclass(frozen=True)
class BestOf:
    """Result of :func:`best_of` (appendix C.1, Fig. 5).

    ``ssim``, ``psnr``                  per-frame curves ``(T,)``: means over clips of the chosen samples.
    ``chosen``                          ``(B,)`` index into ``l`` of the sample kept for each clip.
    ``ssim_per_clip``, ``psnr_per_clip`` ``(B, T)`` per-frame values of the chosen samples.
    """

    ssim: np.ndarray
    psnr: np.ndarray
    chosen: np.ndarray
    ssim_per_clip: np.ndarray
    psnr_per_clip: np.ndarray

    def to_dict(self) -> dict:
        """Plain lists, ready for JSON (PSNR may hold ``inf`` for identical frames)."""
        return {k: getattr(self, k).tolist() for k in ("ssim", "psnr", "chosen", "ssim_per_clip", "psnr_per_clip")}


# ---------------------------------------------------------------------------
# checks (kept independent of trivd_core)


def _as_float64(fn, name, x, ndim=None, min_ndim=None):
    try:
        a = np.asarray(x)
    except Exception as e:  # e.g. a torch tensor that requires grad, or a GPU tensor
        raise TypeError(
            f"{fn}(): argument '{name}' must be convertible to a NumPy array on the host "
            f"(detach and move tensors to the CPU first), got {type(x).__name__}: {e}"
        ) from e
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{fn}(): argument '{name}' must hold real numbers (integer or floating), got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{fn}(): argument '{name}' must be a {ndim}-D array, got shape {a.shape}")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ValueError(f"{fn}(): argument '{name}' must have at least {min_ndim} dimensions, got shape {a.shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{fn}(): argument '{name}' must be finite, got NaN or inf values")
    return a


def _check_unit_range(fn, name, a):
    if a.size and (a.min() < -1.0 or a.max() > 1.0):
        raise ValueError(
            f"{fn}(): argument '{name}' must hold values in [-1, 1], got values in [{a.min()}, {a.max()}]"
        )


def _check_cov(fn, name, S, d):
    if S.shape != (d, d):
        raise ValueError(f"{fn}(): argument '{name}' must have shape ({d}, {d}), got {S.shape}")
    scale = max(np.abs(S).max(), np.finfo(np.float64).tiny)
    if np.abs(S - S.T).max() > SYMMETRY_RTOL * scale:
        raise ValueError(f"{fn}(): argument '{name}' must be a symmetric covariance matrix, got an asymmetric one")
    S = (S + S.T) / 2
    lam = np.linalg.eigvalsh(S)
    if lam.min() < -PSD_RTOL * max(np.abs(lam).max(), np.finfo(np.float64).tiny):
        raise ValueError(
            f"{fn}(): argument '{name}' must be positive semi-definite, got smallest eigenvalue {lam.min()}"
        )
    return S


def _check_frames(fn, a, b, min_hw=1):
    a = _as_float64(fn, "a", a, min_ndim=3)
    b = _as_float64(fn, "b", b, min_ndim=3)
    if a.shape != b.shape:
        raise ValueError(
            f"{fn}(): argument 'b' must have the shape of 'a' (..., H, W, C) = {a.shape}, got shape {b.shape}"
        )
    H, W, C = a.shape[-3:]
    if H < min_hw or W < min_hw or C < 1:
        raise ValueError(
            f"{fn}(): argument 'a' must have H >= {min_hw}, W >= {min_hw} and C >= 1 on its last three axes "
            f"(H, W, C), got shape {a.shape}"
        )
    _check_unit_range(fn, "a", a)
    _check_unit_range(fn, "b", b)
    return a, b


# ---------------------------------------------------------------------------
# Frechet distance (FVD with I3D features, section 4.1)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Squared Frechet distance between N(mu1, Sigma1) and N(mu2, Sigma2) [Heusel et al. 2017]::

        d^2 = sum_i (mu1_i - mu2_i)^2 + Tr(Sigma1) + Tr(Sigma2) - 2 Tr((Sigma1 Sigma2)^{1/2})

    This is the quantity FID and FVD report (the square, not its root).  The matrix
    square root is ``scipy.linalg.sqrtm``; its real part is kept after checking that
    the imaginary part is negligible (relative ``1e-6``).  A result below zero by
    rounding is returned as ``0.0``.  Returns a Python float.
    """
    fn = "frechet_distance"
    mu1 = _as_float64(fn, "mu1", mu1, ndim=1)
    d = mu1.shape[0]
    if d < 1:
        raise ValueError(f"{fn}(): argument 'mu1' must have at least one feature, got shape {mu1.shape}")
    mu2 = _as_float64(fn, "mu2", mu2, ndim=1)
    if mu2.shape != (d,):
        raise ValueError(f"{fn}(): argument 'mu2' must have shape ({d},) like 'mu1', got {mu2.shape}")
    Sigma1 = _check_cov(fn, "sigma1", _as_float64(fn, "sigma1", sigma1, ndim=2), d)
    Sigma2 = _check_cov(fn, "sigma2", _as_float64(fn, "sigma2", sigma2, ndim=2), d)

    mean_term = 0.0
    for i in range(d):
        mean_term += (mu1[i] - mu2[i]) ** 2
    with warnings.catch_warnings():
        # sqrtm warns (LinAlgWarning) on singular products; the result is checked below instead.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(Sigma1 @ Sigma2)
    if not np.all(np.isfinite(root)):
        raise ValueError(f"{fn}(): sqrtm(sigma1 @ sigma2) is not finite; the covariances are ill-conditioned")
    if np.iscomplexobj(root):
        imag = np.abs(root.imag).max()
        if imag > SQRTM_IMAG_RTOL * max(np.abs(root.real).max(), np.finfo(np.float64).tiny):
            raise ValueError(f"{fn}(): sqrtm(sigma1 @ sigma2) has a significant imaginary part ({imag})")
        root = root.real
    trace_term = 0.0
    for i in range(d):
        trace_term += Sigma1[i, i] + Sigma2[i, i] - 2.0 * root[i, i]
    return max(float(mean_term + trace_term), 0.0)


def frechet_distance_from_features(a, b):
    """Frechet distance between the Gaussians fitted to two feature sets (rows are samples)::

        mu    = (1/N) sum_n a_n
        Sigma = (1/(N-1)) sum_n (a_n - mu)(a_n - mu)^T      (unbiased, like np.cov(rowvar=False))

    then :func:`frechet_distance`.  ``a`` is ``(N, d)``, ``b`` is ``(M, d)``; N, M >= 2.
    Warns :class:`FewSamplesWarning` when N < d or M < d (rank-deficient covariance).
    """
    fn = "frechet_distance_from_features"
    stats = []
    d = None
    for name, x in (("a", a), ("b", b)):
        X = _as_float64(fn, name, x, ndim=2)
        N, dx = X.shape
        if d is None:
            d = dx
        elif dx != d:
            raise ValueError(f"{fn}(): argument '{name}' must have {d} features (columns) like 'a', got shape {X.shape}")
        if N < 2 or dx < 1:
            raise ValueError(f"{fn}(): argument '{name}' must be (N, d) with N >= 2 samples and d >= 1, got {X.shape}")
        if N < dx:
            warnings.warn(
                f"{fn}(): argument '{name}' has {N} samples for {dx} features; its covariance is rank-deficient "
                "and the distance is biased",
                FewSamplesWarning,
                stacklevel=2,
            )
        mu = np.zeros(dx)
        for n in range(N):
            mu += X[n]
        mu /= N
        Sigma = np.zeros((dx, dx))
        for n in range(N):
            u = X[n] - mu
            Sigma += np.outer(u, u)
        Sigma /= N - 1
        stats.append((mu, Sigma))
    (mu1, Sigma1), (mu2, Sigma2) = stats
    return frechet_distance(mu1, Sigma1, mu2, Sigma2)


# ---------------------------------------------------------------------------
# Inception Score (section 4.1)


def inception_score(logits, splits=10):
    """Inception Score [Salimans et al. 2016] from classifier logits ``(N, K)``::

        p(y|x)  = softmax(logits_x)
        p_k(y)  = (1/N_k) sum_{x in split k} p(y|x)
        IS_k    = exp( (1/N_k) sum_{x in split k} sum_y p(y|x) (log p(y|x) - log p_k(y)) )

    Split ``k`` (k = 0..S-1) holds rows ``floor(k N / S)`` to ``floor((k+1) N / S) - 1``
    (the split boundaries of the original code; every sample is used).  Returns
    ``(mean, std)`` of ``IS_k`` over splits as Python floats; ``std`` is the
    population standard deviation (ddof 0), as in the original code.  Terms with
    ``p(y|x) = 0`` contribute 0.  Requires N >= splits.
    """
    fn = "inception_score"
    X = _as_float64(fn, "logits", logits, ndim=2)
    if isinstance(splits, bool) or not isinstance(splits, int):
        raise TypeError(f"{fn}(): argument 'splits' must be a positive int, got {splits!r}")
    if splits < 1:
        raise ValueError(f"{fn}(): argument 'splits' must be a positive int, got {splits}")
    N, K = X.shape
    if K < 1:
        raise ValueError(f"{fn}(): argument 'logits' must have at least one class (column), got shape {X.shape}")
    if N < splits:
        raise ValueError(f"{fn}(): argument 'logits' must have at least splits={splits} samples (rows), got {N}")

    # log p(y|x) by the log-sum-exp trick, sample by sample
    log_p = np.zeros((N, K))
    for x in range(N):
        m = max(X[x, y] for y in range(K))
        s = 0.0
        for y in range(K):
            s += math.exp(X[x, y] - m)
        for y in range(K):
            log_p[x, y] = X[x, y] - m - math.log(s)

    scores = []
    for k in range(splits):
        lo, hi = k * N // splits, (k + 1) * N // splits
        Nk = hi - lo
        p_y = [0.0] * K
        for x in range(lo, hi):
            for y in range(K):
                p_y[y] += math.exp(log_p[x, y]) / Nk
        mean_kl = 0.0
        for x in range(lo, hi):
            kl = 0.0
            for y in range(K):
                p = math.exp(log_p[x, y])
                if p > 0.0:
                    kl += p * (log_p[x, y] - math.log(p_y[y]))
            mean_kl += kl / Nk
        scores.append(math.exp(mean_kl))
    mean = sum(scores) / splits
    var = sum((s - mean) ** 2 for s in scores) / splits
    return float(mean), float(math.sqrt(var))


# ---------------------------------------------------------------------------
# SSIM and PSNR (appendix C.1)


def _gaussian_window():
    """``w[p, q] = exp(-((p-5)^2 + (q-5)^2) / (2 sigma^2)) / Z``, 11 x 11, ``sum w = 1``."""
    r = SSIM_WINDOW // 2
    w = np.zeros((SSIM_WINDOW, SSIM_WINDOW))
    for p in range(SSIM_WINDOW):
        for q in range(SSIM_WINDOW):
            w[p, q] = math.exp(-((p - r) ** 2 + (q - r) ** 2) / (2.0 * SSIM_SIGMA**2))
    return w / w.sum()


#: SSIM conventions: name -> (offset, scale, data range); a frame x is compared as (x + offset) * scale.
SSIM_PROTOCOLS = {"savp": (1.0, 0.5, 1.0), "pm1": (0.0, 1.0, L)}


def _ssim_frame(a, b, w, data_range):
    H, W, C = a.shape
    k = SSIM_WINDOW
    C1, C2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    total, count = 0.0, 0
    for c in range(C):
        for i in range(H - k + 1):
            for j in range(W - k + 1):
                mu_a = mu_b = 0.0
                for p in range(k):
                    for q in range(k):
                        mu_a += w[p, q] * a[i + p, j + q, c]
                        mu_b += w[p, q] * b[i + p, j + q, c]
                var_a = var_b = cov_ab = 0.0
                for p in range(k):
                    for q in range(k):
                        da = a[i + p, j + q, c] - mu_a
                        db = b[i + p, j + q, c] - mu_b
                        var_a += w[p, q] * da * da
                        var_b += w[p, q] * db * db
                        cov_ab += w[p, q] * da * db
                total += ((2 * mu_a * mu_b + C1) * (2 * cov_ab + C2)) / (
                    (mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2)
                )
                count += 1
    return total / count


def ssim(a, b, *, protocol="savp"):
    """Mean SSIM per frame [Wang et al. 2004, Eqs. 13-17], on ``(..., H, W, C)`` frames in [-1, 1].

    ``protocol="savp"`` (default, the paper's "as in SAVP"): each frame is first mapped
    to [0, 1], ``x' = (x + 1) / 2``, and the data range is ``L = 1``;
    ``protocol="pm1"``: the frames as given, ``L = 2``.  Below, ``a``, ``b`` are the
    mapped frames.

    For every channel ``c`` and every *valid* window position ``(i, j)`` (the 11 x 11
    window lies inside the frame: ``0 <= i <= H-11``, ``0 <= j <= W-11``)::

        mu_a      = sum_{p,q} w[p,q] a[i+p, j+q, c]                         (Eq. 14)
        sigma_a^2 = sum_{p,q} w[p,q] (a[i+p, j+q, c] - mu_a)^2               (Eq. 15)
        sigma_ab  = sum_{p,q} w[p,q] (a[i+p, j+q, c] - mu_a)(b[...] - mu_b)  (Eq. 16)
        SSIM      = (2 mu_a mu_b + C1)(2 sigma_ab + C2)
                    / ((mu_a^2 + mu_b^2 + C1)(sigma_a^2 + sigma_b^2 + C2))    (Eq. 13)

    with the Gaussian window (sigma 1.5, normalised to sum 1), ``K1 = 0.01``,
    ``K2 = 0.03``, ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``.  The frame's value is the mean
    over all positions and channels (Eq. 17) -- the same number as ``tf.image.ssim(a', b',
    max_val=L)`` and as ``skimage.metrics.structural_similarity(data_range=L,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1)`` on
    the mapped frames.  Frames need ``H, W >= 11``.  Returns an array of shape
    ``a.shape[:-3]``.
    """
    if protocol not in SSIM_PROTOCOLS:
        raise ValueError(f"ssim(): argument 'protocol' must be one of {sorted(SSIM_PROTOCOLS)}, got {protocol!r}")
    offset, scale, data_range = SSIM_PROTOCOLS[protocol]
    a, b = _check_frames("ssim", a, b, min_hw=SSIM_WINDOW)
    a, b = (a + offset) * scale, (b + offset) * scale
    w = _gaussian_window()
    lead = a.shape[:-3]
    out = np.zeros(lead)
    for idx in np.ndindex(*lead):
        out[idx] = _ssim_frame(a[idx], b[idx], w, data_range)
    return out


def _psnr_frame(a, b):
    H, W, C = a.shape
    se = 0.0
    for i in range(H):
        for j in range(W):
            for c in range(C):
                se += (a[i, j, c] - b[i, j, c]) ** 2
    mse = se / (H * W * C)
    return math.inf if mse == 0.0 else 10.0 * math.log10(L**2 / mse)


def psnr(a, b):
    """Peak signal-to-noise ratio per frame, ``10 log10(L^2 / MSE)`` with ``L = 2``::

        MSE = (1/(H W C)) sum_{i,j,c} (a[i,j,c] - b[i,j,c])^2

    on ``(..., H, W, C)`` frames in [-1, 1]; identical frames give ``+inf``.  Returns
    an array of shape ``a.shape[:-3]`` (dB).
    """
    a, b = _check_frames("psnr", a, b)
    lead = a.shape[:-3]
    out = np.zeros(lead)
    for idx in np.ndindex(*lead):
        out[idx] = _psnr_frame(a[idx], b[idx])
    return out


# ---------------------------------------------------------------------------
# best-of-l protocol (appendix C.1, Fig. 5) and the copy baseline (appendix D.3)


def best_of(samples, truth, *, protocol="savp"):
    """Best-of-l SSIM/PSNR as in SAVP [Lee et al. 2018] (appendix C.1, Fig. 5).

    ``samples`` ``(l, B, T, H, W, C)`` holds l continuations of each of B clips,
    ``truth`` ``(B, T, H, W, C)`` the real continuations, all in [-1, 1].  For clip
    ``b`` the kept sample is::

        s*_b = argmax_s (1/T) sum_t SSIM(samples[s, b, t], truth[b, t])

    (the first one on ties).  Returns :class:`BestOf` with the per-frame SSIM and
    PSNR of the kept samples per clip ``(B, T)`` and their means over clips ``(T,)``.
    The copy baseline is ``best_of(copy_last_frame(cond, T)[None], truth)``.  SSIM
    follows ``protocol`` (:func:`ssim`); PSNR is on the frames as given (L = 2).
    """
    fn = "best_of"
    if protocol not in SSIM_PROTOCOLS:
        raise ValueError(f"{fn}(): argument 'protocol' must be one of {sorted(SSIM_PROTOCOLS)}, got {protocol!r}")
    offset, scale, data_range = SSIM_PROTOCOLS[protocol]
    S = _as_float64(fn, "samples", samples, ndim=6)
    X = _as_float64(fn, "truth", truth, ndim=5)
    l, B, T, H, W, C = S.shape
    if X.shape != (B, T, H, W, C):
        raise ValueError(
            f"{fn}(): argument 'truth' must have shape (B, T, H, W, C) = {(B, T, H, W, C)} "
            f"matching 'samples' (l, B, T, H, W, C) = {S.shape}, got {X.shape}"
        )
    if l < 1 or B < 1 or T < 1:
        raise ValueError(f"{fn}(): argument 'samples' must have l, B, T >= 1, got shape {S.shape}")
    if H < SSIM_WINDOW or W < SSIM_WINDOW or C < 1:
        raise ValueError(f"{fn}(): argument 'samples' must have H, W >= {SSIM_WINDOW} and C >= 1, got shape {S.shape}")
    _check_unit_range(fn, "samples", S)
    _check_unit_range(fn, "truth", X)
    w = _gaussian_window()

    chosen = np.zeros(B, dtype=np.int64)
    ssim_pc = np.zeros((B, T))
    psnr_pc = np.zeros((B, T))
    for b in range(B):
        best_score, best_curve = -math.inf, None
        for s in range(l):
            curve = [_ssim_frame((S[s, b, t] + offset) * scale, (X[b, t] + offset) * scale, w, data_range)
                     for t in range(T)]
            score = sum(curve) / T
            if score > best_score:
                best_score, best_curve, chosen[b] = score, curve, s
        for t in range(T):
            ssim_pc[b, t] = best_curve[t]
            psnr_pc[b, t] = _psnr_frame(S[chosen[b], b, t], X[b, t])
    ssim_curve = np.zeros(T)
    psnr_curve = np.zeros(T)
    for t in range(T):
        for b in range(B):
            ssim_curve[t] += ssim_pc[b, t] / B
            psnr_curve[t] += psnr_pc[b, t] / B
    return BestOf(ssim=ssim_curve, psnr=psnr_curve, chosen=chosen, ssim_per_clip=ssim_pc, psnr_per_clip=psnr_pc)


def copy_last_frame(cond, t_pred):
    """The copy baseline (appendix D.3): every predicted frame is the last conditioning frame::

        out[b, t] = cond[b, T_cond - 1]      for t = 0 .. t_pred - 1

    ``cond`` is ``(B, T_cond, H, W, C)``; returns ``(B, t_pred, H, W, C)`` float64.
    """
    fn = "copy_last_frame"
    X = _as_float64(fn, "cond", cond, ndim=5)
    if isinstance(t_pred, bool) or not isinstance(t_pred, int):
        raise TypeError(f"{fn}(): argument 't_pred' must be a positive int, got {t_pred!r}")
    if t_pred < 1:
        raise ValueError(f"{fn}(): argument 't_pred' must be a positive int, got {t_pred}")
    B, T_cond, H, W, C = X.shape
    if T_cond < 1:
        raise ValueError(f"{fn}(): argument 'cond' must hold at least one frame (T_cond >= 1), got shape {X.shape}")
    out = np.zeros((B, t_pred, H, W, C))
    for b in range(B):
        for t in range(t_pred):
            out[b, t] = X[b, T_cond - 1]
    return out
