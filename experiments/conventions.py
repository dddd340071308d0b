"""How much each metric convention moves the numbers: the figures of docs/evaluation.md's conventions table.

    python experiments/conventions.py [--out experiments/results/conventions.json]

Pure NumPy/SciPy, a few seconds.  Every pair of frames is made here from the synthetic data:

* SSIM: the SAVP protocol (frames in [0, 1], data range 1) against trivd's ``pm1`` option ([-1, 1],
  range 2), and against a "same-size" convention (reflect padding, mean over every pixel), written out
  here with SciPy's Gaussian filter - the convention of torchmetrics' ``structural_similarity_index_measure``
  as its documentation describes it (this is our reading of it, not torchmetrics' code);
* the FVD resize: the reference FVD code's TF1 grid against half-pixel centres, on 64 -> 224 frames;
* the FVD covariance: unbiased (1/(N-1), trivd and the reference code's tf.contrib.gan) against biased
  (1/N) on the same features;
* the Inception Score's std: ddof 0 (trivd, the original code) against ddof 1;
* the orthogonal penalty: the gradient of the paper's ||W^T W (1 - I)||_F^2 against BigGAN-PyTorch's
  ``ortho`` update 2 W (W^T W (1 - I)) (written out here from its formula).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from trivd_core import i3d, metrics
from trivd_core.data.synthetic import SyntheticShapes
from trivd_core.layers import orthogonal_penalty


def ssim_same_size(a, b, data_range=1.0):
    """SSIM with reflect padding and the mean over every pixel (frames ``(H, W, C)`` in [0, 1])."""
    k1, k2 = 0.01, 0.03
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    out = []
    for c in range(a.shape[-1]):
        x, y = a[..., c], b[..., c]

        def f(z):
            return ndimage.gaussian_filter(z, 1.5, mode="reflect", truncate=3.5)  # radius 5: an 11 x 11 window

        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        out.append(s.mean())
    return float(np.mean(out))


def frame_pairs(res: int) -> dict:
    """Named (reference, distorted) frame pairs in [-1, 1], ``(H, W, 3)``."""
    rng = np.random.default_rng(0)
    x = SyntheticShapes(res, 2, seed=3).clip(0)[0].astype(np.float64)  # textured background, three shapes
    blur = np.stack([ndimage.gaussian_filter(x[..., c], 1.0) for c in range(3)], -1)
    return {
        "blur + noise": (x, np.clip(blur + 0.05 * rng.standard_normal(x.shape), -1, 1)),
        "brighter by 0.2": (x, np.clip(x + 0.2, -1, 1)),
        "darkened (x / 2 - 1/2)": (x, x / 2 - 0.5),
        "constant frames (0.1 vs 0.3)": (np.full_like(x, 0.1), np.full_like(x, 0.3)),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "conventions.json")
    args = p.parse_args(argv)
    out: dict = {"ssim": {}, "resize": {}, "fvd_covariance": {}, "is_std": {}, "ortho": {}}

    print("SSIM of one pair of frames under three conventions")
    print(f"{'pair':<30} {'res':>4} {'savp':>8} {'pm1':>8} {'same-size':>9} {'savp-pm1':>9} {'same-savp':>9}")
    for res in (32, 64):
        for name, (a, b) in frame_pairs(res).items():
            savp = float(metrics.ssim(a, b, protocol="savp"))
            pm1 = float(metrics.ssim(a, b, protocol="pm1"))
            same = ssim_same_size((a + 1) / 2, (b + 1) / 2)
            out["ssim"][f"{name} @{res}"] = {"savp": savp, "pm1": pm1, "same_size": same}
            print(f"{name:<30} {res:>4} {savp:8.4f} {pm1:8.4f} {same:9.4f} {savp - pm1:+9.4f} {same - savp:+9.4f}")

    frames = SyntheticShapes(64, 4, seed=1).clip(0)[None].astype(np.float64)  # (1, 4, 64, 64, 3)
    tf1 = i3d.preprocess(frames, resize="tf1")
    half = i3d.preprocess(frames, resize="half_pixel")
    d = np.abs(tf1 - half)
    out["resize"] = {"max_abs": float(d.max()), "mean_abs": float(d.mean()), "from": 64, "to": 224}
    print(f"\nFVD resize 64 -> 224, TF1 grid vs half-pixel centres: max |diff| {d.max():.3f}, mean {d.mean():.4f} "
          "(values in [-1, 1])")

    rng = np.random.default_rng(2)
    for n in (256, 2048):
        a = rng.standard_normal((n, 400))
        b = 1.1 * rng.standard_normal((n, 400)) + 0.05
        with warnings.catch_warnings():  # N < d at 256 on purpose: the covariances are rank-deficient either way
            warnings.simplefilter("ignore", metrics.FewSamplesWarning)
            unbiased = metrics.frechet_distance_from_features(a, b)
        mu_a, mu_b = a.mean(0), b.mean(0)
        ca, cb = np.cov(a, rowvar=False, bias=True), np.cov(b, rowvar=False, bias=True)
        biased = metrics.frechet_distance(mu_a, ca, mu_b, cb)
        out["fvd_covariance"][str(n)] = {"unbiased": unbiased, "biased": biased}
        print(f"FVD of {n} vs {n} Gaussian features (d = 400): unbiased covariance {unbiased:.2f}, biased (1/N) "
              f"{biased:.2f} ({(biased - unbiased) / unbiased:+.2%})")

    scores = rng.uniform(3, 4, size=10)
    out["is_std"] = {"ddof0": float(scores.std()), "ddof1": float(scores.std(ddof=1)),
                     "ratio": float(scores.std(ddof=1) / scores.std())}
    print(f"IS std over 10 splits: ddof 1 / ddof 0 = {out['is_std']['ratio']:.4f} (= sqrt(10/9) = {np.sqrt(10 / 9):.4f})")

    w = rng.standard_normal((3, 3, 4, 6))  # (kh, kw, C_in, C_out)
    W = w.reshape(-1, w.shape[-1])
    G = W.T @ W
    off = 1 - np.eye(G.shape[0])
    grad_paper = np.zeros_like(w)  # central differences of trivd's penalty, element by element
    h = 1e-6
    for idx in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[idx] = h
        grad_paper[idx] = (float(orthogonal_penalty(w + e)) - float(orthogonal_penalty(w - e))) / (2 * h)
    grad_biggan = (2 * W @ (G * off)).reshape(w.shape)  # BigGAN-PyTorch's ortho(): 2 W (W^T W * (1 - I))
    ratio = float(np.sum(grad_paper * grad_biggan) / np.sum(grad_biggan * grad_biggan))
    out["ortho"] = {"grad_ratio": ratio, "max_rel_residual": float(np.max(np.abs(grad_paper - ratio * grad_biggan))
                                                                   / np.max(np.abs(grad_paper)))}
    print(f"orthogonal penalty: gradient of the paper's formula = {ratio:.4f} x BigGAN-PyTorch's ortho update "
          f"(residual {out['ortho']['max_rel_residual']:.1e})")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
