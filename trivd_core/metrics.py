"""Evaluation metrics: FVD's Frechet distance, IS, SSIM, PSNR, best-of-l and the copy baseline.

Paper section 4.1 (FVD and IS), appendix C.1 (per-frame SSIM under the best-of-l
protocol of SAVP, Fig. 5) and appendix D.3 (the copy-last-frame baseline).

Why NumPy/SciPy in float64 and not the array API
------------------------------------------------
Unlike the rest of trivd_core, metrics run on *host* features and frames in
float64: the Frechet distance needs a symmetric eigendecomposition of covariance
matrices whose trace terms cancel (float32 loses the answer), the statistics are
accumulated over tens of thousands of samples, and nothing here is differentiated
or benefits from an accelerator.  Every function therefore converts its inputs
once with ``np.asarray`` (NumPy arrays, lists, array_api_strict arrays and CPU
JAX / torch arrays all work; detach torch tensors and move device arrays to the
host first), casts them to float64 and returns NumPy values.  Integer inputs are
accepted; bool and complex ones are rejected.

Conventions (the reference twins in ``reference.metrics`` state the same ones)
------------------------------------------------------------------------------
* :func:`frechet_distance` returns the *squared* distance, as FID/FVD report it,
  clipped at 0.  The trace term ``Tr((Sigma1 Sigma2)^{1/2})`` is computed as
  ``sum_i sqrt(lambda_i)`` over the eigenvalues of the symmetric PSD matrix
  ``Sigma1^{1/2} Sigma2 Sigma1^{1/2}`` (similar to ``Sigma1 Sigma2``), both through
  ``eigh``; eigenvalues below ``d * eps * max|lambda|`` (rounding noise, possibly
  negative) are set to 0 so that rank-deficient covariances are exact.
  Covariances must be symmetric and PSD up to a relative ``1e-6``.
* :func:`frechet_distance_from_features` uses the unbiased covariance
  (``np.cov(rowvar=False)``) and warns :class:`FewSamplesWarning` when a set has
  fewer samples than features.
* :func:`inception_score` returns ``(mean, std)`` over splits (std with ddof 0);
  split k holds rows ``floor(kN/S) .. floor((k+1)N/S) - 1``.
* :func:`ssim`: Wang et al. (2004) with an 11 x 11 Gaussian window (sigma 1.5,
  normalised), K1 = 0.01, K2 = 0.03, population (not sample) window statistics, per
  channel, over *valid* window positions only, averaged over positions and channels.
  Default ``protocol="savp"`` (the paper reports SSIM "as in SAVP"): frames in [-1, 1]
  are mapped to [0, 1] by ``(x + 1) / 2`` and the data range is L = 1 -- SAVP's
  ``video_prediction/metrics.py`` (``tf.image.ssim(..., max_val=1.0)`` on [0, 1]
  frames), equal to ``skimage.metrics.structural_similarity(data_range=1,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1)`` on
  the mapped frames.  ``protocol="pm1"``: the frames as given in [-1, 1] with L = 2
  (the contrast/structure terms are equal; the luminance term is not invariant under
  the shift, so the numbers differ, e.g. by 0.04-0.16 for brightness errors).  Frames
  must be at least 11 x 11.
* :func:`psnr`: ``10 log10(L^2 / MSE)`` with L = 2 per frame; ``+inf`` for
  identical frames.
* :func:`best_of` keeps, per clip, the first sample with the highest mean SSIM
  over frames.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import check_array, check_positive_int

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

DATA_RANGE = 2.0
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SYMMETRY_RTOL = 1e-6
PSD_RTOL = 1e-6
_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)


class FewSamplesWarning(UserWarning):
    """Fewer samples than feature dimensions: the sample covariance is rank-deficient."""


@dataclass(frozen=True)
class BestOf:
    """Result of :func:`best_of` (appendix C.1, Fig. 5).

    ``ssim``, ``psnr``                   per-frame curves ``(T,)``: means over clips of the kept samples.
    ``chosen``                           ``(B,)`` int64 index into ``l`` of the sample kept per clip.
    ``ssim_per_clip``, ``psnr_per_clip`` ``(B, T)`` per-frame values of the kept samples.
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
# input handling


def _host(fn: str, name: str, x, spec=None, dims=None) -> np.ndarray:
    """``x`` as a finite float64 NumPy array, with its shape checked against ``spec``."""
    try:
        a = np.asarray(x)
    except Exception as e:  # a torch tensor that requires grad, a device array, ...
        raise TypeError(
            f"{fn}(): argument '{name}' must be convertible to a NumPy array on the host "
            f"(detach and move tensors to the CPU first), got {type(x).__name__}: {e}"
        ) from e
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{fn}(): argument '{name}' must hold real numbers (integer or floating), got dtype {a.dtype}")
    a = a.astype(np.float64)
    if spec is not None:
        check_array(fn, name, a, spec, dims)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{fn}(): argument '{name}' must be finite, got {int(np.sum(~np.isfinite(a)))} NaN/inf values")
    return a


def _unit_range(fn: str, name: str, a: np.ndarray) -> None:
    if a.size and (a.min() < -1.0 or a.max() > 1.0):
        raise ValueError(f"{fn}(): argument '{name}' must hold values in [-1, 1], got values in [{a.min()}, {a.max()}]")


def _frames(fn: str, a, b, min_hw: int) -> tuple[np.ndarray, np.ndarray]:
    a = _host(fn, "a", a)
    b = _host(fn, "b", b)
    if a.ndim < 3:
        raise ValueError(f"{fn}(): argument 'a' must have shape (..., H, W, C) (at least 3-D), got shape {a.shape}")
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
    _unit_range(fn, "a", a)
    _unit_range(fn, "b", b)
    return a, b


def _covariance(fn: str, name: str, S: np.ndarray) -> np.ndarray:
    scale = max(float(np.abs(S).max()), _TINY)
    if float(np.abs(S - S.T).max()) > SYMMETRY_RTOL * scale:
        raise ValueError(f"{fn}(): argument '{name}' must be a symmetric covariance matrix, got an asymmetric one")
    return (S + S.T) / 2


def _clip_noise(lam: np.ndarray) -> np.ndarray:
    """Eigenvalues below ``d * eps * max|lambda|`` are rounding noise: set them to 0."""
    floor = lam.shape[0] * _EPS * max(float(np.abs(lam).max()), _TINY)
    return np.where(lam > floor, lam, 0.0)


def _check_psd(fn: str, name: str, lam: np.ndarray) -> None:
    if float(lam.min()) < -PSD_RTOL * max(float(np.abs(lam).max()), _TINY):
        raise ValueError(f"{fn}(): argument '{name}' must be positive semi-definite, got smallest eigenvalue {lam.min()}")


# ---------------------------------------------------------------------------
# Frechet distance


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``::

        d^2 = ||mu1 - mu2||^2 + Tr(Sigma1 + Sigma2 - 2 (Sigma1 Sigma2)^{1/2})

    ``mu`` are ``(d,)``, ``sigma`` ``(d, d)`` symmetric PSD.  The trace of the matrix
    square root is ``sum_i sqrt(lambda_i(Sigma1^{1/2} Sigma2 Sigma1^{1/2}))`` via two
    symmetric eigendecompositions (see the module docstring).  Returns a Python float >= 0.
    """
    fn = "frechet_distance"
    dims: dict[str, int] = {}
    mu1 = _host(fn, "mu1", mu1, ("d",), dims)
    sigma1 = _host(fn, "sigma1", sigma1, ("d", "d"), dims)
    mu2 = _host(fn, "mu2", mu2, ("d",), dims)
    sigma2 = _host(fn, "sigma2", sigma2, ("d", "d"), dims)
    if dims["d"] < 1:
        raise ValueError(f"{fn}(): argument 'mu1' must have at least one feature, got shape {mu1.shape}")
    sigma1 = _covariance(fn, "sigma1", sigma1)
    sigma2 = _covariance(fn, "sigma2", sigma2)

    lam1, V1 = np.linalg.eigh(sigma1)
    _check_psd(fn, "sigma1", lam1)
    _check_psd(fn, "sigma2", np.linalg.eigvalsh(sigma2))
    root1 = (V1 * np.sqrt(_clip_noise(lam1))) @ V1.T  # Sigma1^{1/2}
    M = root1 @ sigma2 @ root1
    lam = _clip_noise(np.linalg.eigvalsh((M + M.T) / 2))
    tr_sqrt = float(np.sum(np.sqrt(lam)))

    diff = mu1 - mu2
    d2 = float(diff @ diff) + float(np.trace(sigma1)) + float(np.trace(sigma2)) - 2.0 * tr_sqrt
    return max(d2, 0.0)


def frechet_distance_from_features(a, b) -> float:
    """:func:`frechet_distance` between Gaussians fitted to two feature sets (rows are samples).

    ``a`` ``(N, d)`` and ``b`` ``(M, d)`` with N, M >= 2; mean and unbiased covariance
    (``np.cov(rowvar=False)``) of each.  Warns :class:`FewSamplesWarning` when N < d or
    M < d: the covariance is then rank-deficient and the distance biased.
    """
    fn = "frechet_distance_from_features"
    dims: dict[str, int] = {}
    stats = []
    for name, x in (("a", a), ("b", b)):
        X = _host(fn, name, x, (None, "d"), dims)
        N, d = X.shape
        if N < 2 or d < 1:
            raise ValueError(f"{fn}(): argument '{name}' must be (N, d) with N >= 2 samples and d >= 1, got {X.shape}")
        if N < d:
            warnings.warn(
                f"{fn}(): argument '{name}' has {N} samples for {d} features; its covariance is rank-deficient "
                "and the distance is biased",
                FewSamplesWarning,
                stacklevel=2,
            )
        stats.append((X.mean(axis=0), np.atleast_2d(np.cov(X, rowvar=False))))
    (mu1, s1), (mu2, s2) = stats
    return frechet_distance(mu1, s1, mu2, s2)


# ---------------------------------------------------------------------------
# Inception Score


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """Inception Score from classifier logits ``(N, K)``; returns ``(mean, std)`` over splits.

    Per split ``k``: ``exp(mean_x KL(p(y|x) || p_k(y)))`` with ``p(y|x) = softmax(logits)``
    and ``p_k(y)`` the split's marginal.  ``std`` is the population standard deviation
    (ddof 0).  Requires N >= splits.
    """
    fn = "inception_score"
    X = _host(fn, "logits", logits, ("N", "K"))
    splits = check_positive_int(fn, splits, "splits")
    N, K = X.shape
    if K < 1:
        raise ValueError(f"{fn}(): argument 'logits' must have at least one class (column), got shape {X.shape}")
    if N < splits:
        raise ValueError(f"{fn}(): argument 'logits' must have at least splits={splits} samples (rows), got {N}")
    m = X.max(axis=1, keepdims=True)
    log_p = X - m - np.log(np.sum(np.exp(X - m), axis=1, keepdims=True))
    p = np.exp(log_p)
    scores = np.empty(splits)
    for k in range(splits):
        lo, hi = k * N // splits, (k + 1) * N // splits
        pk, log_pk = p[lo:hi], log_p[lo:hi]
        p_y = pk.mean(axis=0)
        log_p_y = np.log(np.where(p_y > 0, p_y, 1.0))  # p_y = 0 only where every p(y|x) = 0
        scores[k] = np.exp(np.mean(np.sum(pk * (log_pk - log_p_y), axis=1)))
    return float(scores.mean()), float(scores.std())


# ---------------------------------------------------------------------------
# SSIM and PSNR


def _gaussian_1d() -> np.ndarray:
    r = SSIM_WINDOW // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * SSIM_SIGMA**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter over axes -3 (H) and -2 (W), valid positions only."""
    x = sliding_window_view(x, g.shape[0], axis=-3) @ g
    return sliding_window_view(x, g.shape[0], axis=-2) @ g


#: SSIM conventions: name -> (offset, scale, data range L); frames become ``(x + offset) * scale``.
SSIM_PROTOCOLS = {"savp": (1.0, 0.5, 1.0), "pm1": (0.0, 1.0, DATA_RANGE)}


def _ssim_protocol(fn: str, protocol) -> tuple[float, float, float]:
    if not isinstance(protocol, str) or protocol not in SSIM_PROTOCOLS:
        raise ValueError(f"{fn}(): argument 'protocol' must be one of {', '.join(map(repr, SSIM_PROTOCOLS))} "
                         f"('savp': frames mapped to [0, 1], L = 1, the published protocol; 'pm1': [-1, 1], L = 2); "
                         f"got {protocol!r}")
    return SSIM_PROTOCOLS[protocol]


def _ssim(a: np.ndarray, b: np.ndarray, protocol: str = "savp") -> np.ndarray:
    offset, scale, L = SSIM_PROTOCOLS[protocol]
    if offset or scale != 1.0:
        a, b = (a + offset) * scale, (b + offset) * scale
    g = _gaussian_1d()
    C1 = (SSIM_K1 * L) ** 2
    C2 = (SSIM_K2 * L) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a * mu_a
    var_b = _filter_valid(b * b, g) - mu_b * mu_b
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    S = ((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2))
    return S.mean(axis=(-3, -2, -1))


def _psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = np.mean((a - b) ** 2, axis=(-3, -2, -1))
    positive = mse > 0
    return np.where(positive, 10.0 * np.log10(DATA_RANGE**2 / np.where(positive, mse, 1.0)), np.inf)


def ssim(a, b, *, protocol: str = "savp") -> np.ndarray:
    """Mean SSIM per frame of ``(..., H, W, C)`` frames in [-1, 1]; returns shape ``a.shape[:-3]``.

    Gaussian 11 x 11 window (sigma 1.5), K1 = 0.01, K2 = 0.03, valid window positions,
    mean over positions and channels (see the module docstring).  ``protocol="savp"``
    (default): frames mapped to [0, 1], L = 1; ``"pm1"``: frames in [-1, 1], L = 2.
    H, W >= 11.
    """
    _ssim_protocol("ssim", protocol)
    a, b = _frames("ssim", a, b, SSIM_WINDOW)
    return _ssim(a, b, protocol)


def psnr(a, b) -> np.ndarray:
    """PSNR per frame, ``10 log10(4 / MSE)`` (L = 2) in dB, ``+inf`` where the frames are equal.

    ``a``, ``b`` are ``(..., H, W, C)`` in [-1, 1]; returns shape ``a.shape[:-3]``.
    """
    a, b = _frames("psnr", a, b, 1)
    return _psnr(a, b)


# ---------------------------------------------------------------------------
# best-of-l protocol and the copy baseline


def best_of(samples, truth, *, protocol: str = "savp") -> BestOf:
    """Best-of-l SSIM/PSNR (appendix C.1, Fig. 5, the SAVP protocol).

    ``samples`` ``(l, B, T, H, W, C)`` are l continuations of B clips, ``truth``
    ``(B, T, H, W, C)`` the real ones, in [-1, 1] with H, W >= 11.  Per clip the
    sample with the highest mean SSIM over its T frames is kept (the first on ties);
    returns :class:`BestOf` with its per-frame SSIM and PSNR.  The copy baseline is
    ``best_of(copy_last_frame(cond, T)[None], truth)``.  ``protocol``: the SSIM
    convention (:func:`ssim`), which also decides which sample is kept.
    """
    fn = "best_of"
    _ssim_protocol(fn, protocol)
    dims: dict[str, int] = {}
    S = _host(fn, "samples", samples, ("l", "B", "T", "H", "W", "C"), dims)
    X = _host(fn, "truth", truth, ("B", "T", "H", "W", "C"), dims)
    if min(dims["l"], dims["B"], dims["T"]) < 1:
        raise ValueError(f"{fn}(): argument 'samples' must have l, B, T >= 1, got shape {S.shape}")
    if dims["H"] < SSIM_WINDOW or dims["W"] < SSIM_WINDOW or dims["C"] < 1:
        raise ValueError(f"{fn}(): argument 'samples' must have H, W >= {SSIM_WINDOW} and C >= 1, got shape {S.shape}")
    _unit_range(fn, "samples", S)
    _unit_range(fn, "truth", X)
    per_frame = _ssim(S, np.broadcast_to(X, S.shape), protocol)  # (l, B, T)
    chosen = np.argmax(per_frame.mean(axis=-1), axis=0).astype(np.int64)  # (B,)
    clips = np.arange(dims["B"])
    ssim_pc = per_frame[chosen, clips]
    psnr_pc = _psnr(S[chosen, clips], X)
    return BestOf(
        ssim=ssim_pc.mean(axis=0),
        psnr=psnr_pc.mean(axis=0),
        chosen=chosen,
        ssim_per_clip=ssim_pc,
        psnr_per_clip=psnr_pc,
    )


def copy_last_frame(cond, t_pred: int) -> np.ndarray:
    """The copy baseline (appendix D.3): ``t_pred`` copies of the last conditioning frame.

    ``cond`` ``(B, T_cond, H, W, C)`` -> ``(B, t_pred, H, W, C)`` float64.
    """
    fn = "copy_last_frame"
    dims: dict[str, int] = {}
    X = _host(fn, "cond", cond, ("B", "T_cond", "H", "W", "C"), dims)
    t_pred = check_positive_int(fn, t_pred, "t_pred")
    if dims["T_cond"] < 1:
        raise ValueError(f"{fn}(): argument 'cond' must hold at least one frame (T_cond >= 1), got shape {X.shape}")
    return np.repeat(X[:, -1:], t_pred, axis=1)
