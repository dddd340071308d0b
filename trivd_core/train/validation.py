"""In-training validation: a fixed held-out set, evaluated every ``--eval-every`` steps.

Every evaluation runs G once (EMA weights by default, evaluation mode with the
validation batch's own statistics, latents ``z = 0``: the prior's mode, the same at
every evaluation so that the curves compare like with like) on the first ``n`` clips of
a held-out split and reports, per predicted frame ``j = 1..t_pred``:

* ``mse``: ``mean (x_hat_j - x_j)^2`` over clips and pixels (frames in [-1, 1]);
* ``ssim`` (the SAVP protocol, :func:`trivd_core.metrics.ssim`) and ``psnr`` (L = 2);
* the same three for **copy-last-frame** ``x_hat_j = x_{t_cond}`` (``copy_*``);
* ``blur_mse_last``: the best *static blur* of the last conditioning frame at the last
  predicted frame, ``min_sigma mean (g_sigma * x_{t_cond} - x_{t_cond + t_pred})^2``
  over ``sigma`` in :data:`BLUR_SIGMAS` (one sigma for the whole set, chosen in
  hindsight; ``blur_sigma`` records it).  A model that cannot move anything can at
  best blur: beating this number at the last frame needs motion;
* ``centroid_error`` (one-shape synthetic data on a flat background: ``synthetic:demo``,
  ``synthetic:demo16``): per predicted frame, the mean distance in pixels between the
  shape's centroid in the predicted frame and its true centre
  (:func:`trivd_core.predict.centroid_errors`), beside ``copy_centroid_error`` (copying's,
  which is the true displacement since the last conditioning frame) and ``centroid_lost``
  (the fraction of predicted frames in which the shape was lost);
* ``motion_agreement`` (synthetic data only, warping cells only): the mean over clips
  and predicted frames of :func:`trivd_core.predict.motion_agreement` for the motion
  field of ``stages`` (default :func:`trivd_core.predict.default_stages`), and
  ``motion_agreement/stage{i}`` for each warping stage alone.

Also ``mse_ratio = mean(mse) / mean(copy_mse)`` (below 1: better than copying).
The model runs through ``predict_fn(params, state, cond, z) -> (frames, warps)``
(NumPy in and out), which the application builds from a backend (``backend.jit`` of
``generate(..., return_warps=True)``), so this module stays backend-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import metrics

__all__ = ["BLUR_SIGMAS", "ValidationSet", "validate", "blur_baseline", "make_predict_fn", "plot_validation",
           "summary_line", "TensorBoard", "centroid_record"]

#: Gaussian blur widths (pixels) tried for the static-blur baseline; 0 is the copy itself.
BLUR_SIGMAS = (0.0, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


@dataclass
class ValidationSet:
    """``cond (N, t_cond, H, W, C)``, ``truth (N, t_pred, H, W, C)`` float32 in [-1, 1]; ``tracks`` or None."""

    cond: np.ndarray
    truth: np.ndarray
    tracks: list | None = None
    source: str = ""
    _blur: tuple | None = None

    def blur(self) -> tuple[float, float]:
        """The static-blur baseline at the last predicted frame (computed once)."""
        if self._blur is None:
            self._blur = blur_baseline(self.cond[:, -1], self.truth[:, -1])
        return self._blur

    @classmethod
    def from_dataset(cls, dataset, config, n_clips: int = 32) -> ValidationSet:
        """The first ``n_clips`` clips of ``dataset`` (with shape tracks when it can render them)."""
        if isinstance(n_clips, bool) or not isinstance(n_clips, int) or n_clips < 1:
            raise ValueError(f"ValidationSet.from_dataset(): argument 'n_clips' must be a positive int, got {n_clips!r}")
        n = min(n_clips, len(dataset))
        render = getattr(dataset, "render", None)
        clips, tracks = [], ([] if render is not None else None)
        rng = np.random.default_rng([0, 0x76616C])
        if render is not None:
            for i in range(n):
                clip, tr = render(i)
                tracks.append(tr)
                clips.append(clip)
        else:  # unreadable sources are passed over, as the loader does
            from ..data import readable_clips

            clips = readable_clips(dataset, n, rng)[0]
        x = np.stack([np.asarray(c, np.float32) for c in clips])
        want = (config.t_total, config.resolution, config.resolution, config.channels)
        if x.shape[1:] != want:
            raise ValueError(f"validation clips have shape {x.shape[1:]}, the config needs {want}")
        return cls(x[:, :config.t_cond], x[:, config.t_cond:], tracks, source=getattr(dataset, "kind", ""))


def blur_baseline(last_cond: np.ndarray, target: np.ndarray, sigmas=BLUR_SIGMAS) -> tuple[float, float]:
    """``(best MSE, its sigma)`` of a Gaussian blur of ``last_cond (N, H, W, C)`` against ``target``.

    The blur is separable over H and W (``scipy.ndimage.gaussian_filter``, reflecting
    borders); ``sigma = 0`` is the frame itself.
    """
    from scipy.ndimage import gaussian_filter

    best = (math.inf, 0.0)
    x = np.asarray(last_cond, np.float64)
    y = np.asarray(target, np.float64)
    for s in sigmas:
        b = x if s == 0 else gaussian_filter(x, sigma=(0, s, s, 0), mode="reflect")
        mse = float(np.mean((b - y) ** 2))
        if mse < best[0]:
            best = (mse, float(s))
    return best


def make_predict_fn(backend, *, ema: bool = True):
    """``predict_fn(tree, cond, z) -> (frames, warps)`` from a backend: G's forward with warps, compiled once.

    ``tree`` is an engine's exported NumPy training state; the EMA weights (or the live
    ones) and G's state (without standing statistics: the batch's own) are used.
    """
    from .. import generator

    def forward(params, state, cond, z):
        frames, _, warps = generator.generate(params, state, cond, z, train=False, standing=False,
                                              return_warps=True)
        return frames, warps

    fn = backend.jit(forward)

    def predict(tree, cond, z):
        params = backend.asarray(tree["ema" if ema else "g_params"])
        state = backend.asarray({k: v for k, v in tree["g_state"].items() if k != "standing"})
        frames, warps = fn(params, state, backend.asarray(np.asarray(cond, np.float32)),
                           backend.asarray(np.asarray(z, np.float32)))
        return np.asarray(backend.to_numpy(frames), np.float32), backend.to_numpy(warps)

    return predict


def validate(predict_fn: Callable, tree, vset: ValidationSet, config, *, stages=None) -> dict:
    """One evaluation of ``vset`` (see the module docstring); returns a flat JSON-able dict."""
    from ..predict import WARPING_KINDS, NoShapePixels, default_stages, motion_agreement, motion_fields

    N = vset.cond.shape[0]
    z = np.zeros((N, config.z_dim), np.float32)
    pred, warps = predict_fn(tree, vset.cond, z)
    pred = np.asarray(pred, np.float64)
    truth = np.asarray(vset.truth, np.float64)
    copy = np.repeat(np.asarray(vset.cond[:, -1:], np.float64), truth.shape[1], axis=1)
    out: dict = {}
    for name, x in (("", pred), ("copy_", copy)):
        out[name + "mse"] = [float(v) for v in np.mean((x - truth) ** 2, axis=(0, 2, 3, 4))]
        out[name + "ssim"] = [float(v) for v in metrics.ssim(x, truth).mean(axis=0)]
        out[name + "psnr"] = [float(v) for v in metrics.psnr(x, truth).mean(axis=0)]
    out["mse_ratio"] = float(np.mean(out["mse"]) / max(np.mean(out["copy_mse"]), 1e-12))
    out["blur_mse_last"], out["blur_sigma"] = vset.blur()
    if vset.tracks is not None and config.cell in WARPING_KINDS:
        chosen = default_stages(config) if stages is None else stages
        for label, st in [("motion_agreement", chosen)] + [(f"motion_agreement/stage{i}", (i,))
                                                           for i in range(len(warps))]:
            flow = np.asarray(motion_fields(warps, stages=st, resolution=config.resolution))
            scores = []
            for b in range(N):
                for j in range(truth.shape[1]):
                    try:
                        scores.append(motion_agreement(flow[b, j], vset.tracks[b], config.t_cond + j))
                    except NoShapePixels:  # every shape left the picture: that frame has nothing to score
                        pass
            out[label] = float(np.mean(scores)) if scores else None
    if vset.tracks is not None:
        out.update(centroid_record(pred, vset, config))
    return out


def centroid_record(pred, vset: ValidationSet, config) -> dict:
    """``centroid_error``, ``copy_centroid_error`` (per predicted frame, pixels, mean over clips) and
    ``centroid_lost`` (fraction of predicted frames that lost the shape) of
    :func:`trivd_core.predict.centroid_errors`; empty for data it does not apply to (several shapes, textures)."""
    from ..predict import centroid_errors

    errs, copies, lost = [], [], []
    for b, tracks in enumerate(vset.tracks):
        try:
            r = centroid_errors(pred[b], vset.cond[b, 0], tracks, config.t_cond)
        except ValueError:  # not a one-shape clip on a flat background: the metric does not apply
            return {}
        errs.append(r["error"])
        copies.append(r["displacement"])
        lost.append(r["lost"])
    return {"centroid_error": [float(v) for v in np.mean(errs, axis=0)],
            "copy_centroid_error": [float(v) for v in np.mean(copies, axis=0)],
            "centroid_lost": float(np.mean(lost))}


def validate_batched(predict_fn: Callable, tree, vset: ValidationSet, config, *, batch: int = 64) -> dict:
    """:func:`validate` over ``vset`` in batches of ``batch`` clips (G's batch statistics are each batch's, as in
    training's validation), the per-frame means weighted by the clips of each batch; ``clips`` = N.

    The blur baseline is computed once over all clips; ``mse_ratio`` is the ratio of the weighted means.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"validate_batched(): argument 'batch' must be a positive int, got {batch!r}")
    recs = []
    for i in range(0, vset.cond.shape[0], batch):
        part = ValidationSet(vset.cond[i:i + batch], vset.truth[i:i + batch],
                             None if vset.tracks is None else vset.tracks[i:i + batch])
        recs.append((part.cond.shape[0], validate(predict_fn, tree, part, config)))
    n = sum(k for k, _ in recs)

    def avg(key):
        vals = [(k, r[key]) for k, r in recs if r.get(key) is not None]
        if not vals:
            return None
        mean = np.sum([k * np.asarray(v, float) for k, v in vals], axis=0) / sum(k for k, _ in vals)
        return mean.tolist() if np.ndim(mean) else float(mean)

    out = {key: avg(key) for key in recs[0][1] if key not in ("mse_ratio", "blur_mse_last", "blur_sigma")}
    out["mse_ratio"] = float(np.mean(out["mse"]) / max(np.mean(out["copy_mse"]), 1e-12))
    out["blur_mse_last"], out["blur_sigma"] = vset.blur()
    out["clips"] = n
    return out


def summary_line(rec) -> str:
    """One line: model vs copy MSE and SSIM (means over the predicted frames), blur, motion agreement."""
    parts = [f"MSE {np.mean(rec['mse']):.4f} vs copy {np.mean(rec['copy_mse']):.4f} (x{rec['mse_ratio']:.2f})",
             f"last frame {rec['mse'][-1]:.4f} vs best static blur {rec['blur_mse_last']:.4f}",
             f"SSIM {np.mean(rec['ssim']):.3f} vs copy {np.mean(rec['copy_ssim']):.3f}"]
    if rec.get("motion_agreement") is not None:
        parts.append(f"motion agreement {rec['motion_agreement']:.2f}")
    if rec.get("fvd") is not None:
        parts.append(f"FVD (N={rec['fvd_clips']}) {rec['fvd']:.1f} vs copy {rec['fvd_copy']:.1f}")
    if rec.get("centroid_error"):
        parts.append(f"centroid error at the last frame {rec['centroid_error'][-1]:.2f} px vs copy "
                     f"{rec['copy_centroid_error'][-1]:.2f} px")
    return "; ".join(parts)


def plot_validation(metrics_path, out_path, *, title: str = "held-out validation"):
    """``curves.png`` over steps: MSE (model, copy; last frame: model, best static blur), SSIM (model, copy), motion.

    matplotlib (Agg) when installed: three panels; otherwise one NumPy-rendered panel of
    the MSE curves (:func:`trivd_core.evaluate.plot_curves`).  Returns the path, or
    ``None`` when ``metrics_path`` holds no validation record yet.
    """
    from ..evaluate import plot_curves
    from ..media import save_figure
    from .artifacts import read_metrics

    recs = [r for r in read_metrics(metrics_path) if r.get("kind") == "val" and "val/mse" in r]
    if not recs:
        return None
    x = [r["step"] for r in recs]
    mse = {
        "model, mean over frames": ([float(np.mean(r["val/mse"])) for r in recs], (214, 39, 40)),
        "copy last frame, mean": ([float(np.mean(r["val/copy_mse"])) for r in recs], (127, 127, 127)),
        "model, last frame": ([float(r["val/mse"][-1]) for r in recs], (255, 152, 150)),
        "best static blur, last frame": ([r["val/blur_mse_last"] for r in recs], (188, 189, 34)),
    }
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return plot_curves(out_path, x, mse, title=title, xlabel="step", ylabel="MSE")
    cen = [r.get("val/centroid_error") for r in recs]
    fvd = [(r["step"], r["val/fvd"], r["val/fvd_copy"]) for r in recs if r.get("val/fvd") is not None]
    extra = any(c for c in cen) or bool(fvd)
    fig, axes = plt.subplots(1, 4 if extra else 3, figsize=(18.5 if extra else 14, 4), dpi=100)
    for label, (ys, colour) in mse.items():
        axes[0].plot(x, ys, marker="o", label=label, color=np.asarray(colour) / 255.0, linewidth=1.5)
    axes[0].set_ylabel("MSE (frames in [-1, 1]; lower is better)")
    for label, key, colour in (("model", "val/ssim", (31, 119, 180)), ("copy last frame", "val/copy_ssim",
                                                                          (127, 127, 127))):
        axes[1].plot(x, [float(np.mean(r[key])) for r in recs], marker="o", label=label,
                     color=np.asarray(colour) / 255.0, linewidth=1.5)
    axes[1].set_ylabel("SSIM, SAVP protocol (higher is better)")
    mot = [r.get("val/motion_agreement") for r in recs]
    if any(m is not None for m in mot):
        axes[2].plot(x, [np.nan if m is None else m for m in mot], marker="o", color=(44 / 255, 160 / 255, 44 / 255),
                     label="default stages", linewidth=1.5)
        axes[2].axhline(0.5, color="0.5", linestyle="--", linewidth=1, label="chance")
        axes[2].set_ylim(0, 1)
    axes[2].set_ylabel("motion agreement (fraction of shape pixels)")
    if extra:  # the direct motion metric and the small-N FVD, where the run measures them
        ax = axes[3]
        if any(c for c in cen):
            ax.plot(x, [np.nan if not c else c[-1] for c in cen], marker="o", color=(148 / 255, 103 / 255, 189 / 255),
                    label="model, last frame", linewidth=1.5)
            ax.plot(x, [np.nan if not r.get("val/copy_centroid_error") else r["val/copy_centroid_error"][-1]
                        for r in recs], marker="o", color="0.5", label="copy last frame", linewidth=1.5)
            ax.set_ylabel("shape centroid error (px; lower is better)")
        if fvd:
            twin = ax.twinx() if any(c for c in cen) else ax
            twin.plot([f[0] for f in fvd], [f[1] for f in fvd], marker="s", linestyle=":", color=(214 / 255, 39 / 255,
                                                                                                   40 / 255),
                      label=f"FVD, model (N={recs[-1].get('val/fvd_clips', '?')})")
            twin.plot([f[0] for f in fvd], [f[2] for f in fvd], marker="s", linestyle=":", color="0.3",
                      label="FVD, copy last frame")
            twin.set_ylabel("FVD (small N; lower is better)")
            if twin is not ax:
                twin.legend(fontsize=8, loc="lower left")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out_path)


def _tensorboardx_writer():
    from tensorboardX import SummaryWriter

    return SummaryWriter


def _torch_writer():
    from torch.utils.tensorboard import SummaryWriter  # torch's writer only, not a backend

    return SummaryWriter


class TensorBoard:
    """Scalars to TensorBoard when ``tensorboardX`` or ``torch.utils.tensorboard`` is importable (else nothing).

    ``TensorBoard.open(folder)`` returns ``None`` when neither writer is installed, so
    TensorBoard stays an optional extra.  Training metrics go under ``train/``, the
    validation's per-frame means under ``val/``.
    """

    def __init__(self, writer):
        self.writer = writer

    @classmethod
    def open(cls, folder):
        for writer_class in (_tensorboardx_writer, _torch_writer):
            try:
                return cls(writer_class()(str(folder)))
            except Exception:  # noqa: BLE001 - missing package or a broken optional install: no TensorBoard
                continue
        return None

    def scalars(self, step: int, metrics) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(f"train/{k}", float(v), step)

    def validation(self, step: int, rec) -> None:
        for k, v in rec.items():
            if isinstance(v, list):
                self.writer.add_scalar(f"val/{k}", float(np.mean(v)), step)
            elif isinstance(v, (int, float)):
                self.writer.add_scalar(f"val/{k}", float(v), step)

    def close(self) -> None:
        self.writer.close()
