"""Does the adversarial term earn its place?  L1 alone vs GAN + L1 vs the paper's pure GAN on 16-frame clips.

The three arms change one thing at a time from the ``demo16`` config (2 -> 14 frames at
32x32 on ``synthetic:demo16``; same data, steps and seeds):

* ``a`` - L1 alone: G's loss is ``recon_weight * L1 + ortho_weight * ortho`` (the GAN term
  is dropped from G's loss; D still takes its steps, at the same cost, but G never sees it);
* ``b`` - GAN + L1: the ``demo16`` config as registered (the README demo's objective);
* ``c`` - the paper's objective, Eqs. 13-14 alone: ``recon_weight=0``, ``z ~ N(0, I)``
  (``latent_std=1``), two D steps per G step and the paper's learning rates (G 1e-4, D 5e-4).

``train`` trains an arm for each seed with :mod:`experiments.learning` (curves every
``--eval-every`` steps to ``RESULTS/ARM_sSEED.jsonl``, the final state to ``RUNS/ARM_sSEED``);
``evaluate`` scores every saved run on the same ``--num-clips`` test clips (one pipeline):

* FVD (the Kinetics-400 I3D of the ``fvd`` extra, TF1 resize to 224, the reference pooling)
  of ``[conditioning ; sample 1]`` against the real clips, beside copy-last-frame's and a
  real-vs-real floor (the next ``--num-clips`` test clips); their features are computed once
  and cached in ``RESULTS/features.npz``;
* SSIM (SAVP protocol) best of l = 1 and 10 sampled continuations (``--l100 RUN`` adds l = 1, 10
  and 100 on the first ``--l100-clips`` clips, the paper's BAIR protocol), MSE and PSNR of
  sample 1, each beside copy-last-frame's;
* the centroid error per predicted frame (:func:`trivd_core.predict.centroid_errors`) of
  sample 1 and of copy (the true displacement), the motion agreement of the warps, and the
  spread between samples of one clip (the mean per-pixel standard deviation over the l samples);
  ``centroid_error_found`` is the centroid error over the frames that kept the shape only;

``table`` prints the markdown table of docs/training.md from ``RESULTS/*_eval.json``;
``figure`` draws one test clip: truth / (a) / (b) / three samples of (c); ``curves`` the
validation curves of every run (centroid error at the last frame and MSE / copy over steps).

    python experiments/ablation.py train --arm b --seeds 0 1 --steps 300
    python experiments/ablation.py evaluate
    python experiments/ablation.py table
    python experiments/ablation.py figure --out docs/img/ablation.png
    python experiments/ablation.py curves --out docs/img/ablation_curves.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

RESULTS = HERE / "results" / "ablation"
RUNS = Path("runs") / "ablation"
DATA = "synthetic:demo16"
CONFIG = "demo16"
ARMS = {
    "a": {"label": "(a) L1 alone", "set": [], "no_gan": True},
    "b": {"label": "(b) GAN + L1", "set": [], "no_gan": False},
    "c": {"label": "(c) pure GAN (paper)", "set": ["recon_weight=0", "latent_std=1", "d_steps=2", "lr_g=1e-4",
                                                   "lr_d=5e-4"], "no_gan": False},
    # a knob of (c): the demo's learning rates (1e-3 for G and D) instead of the paper's
    "c_lr": {"label": "(c) with lr 1e-3 (G and D)", "set": ["recon_weight=0", "latent_std=1", "d_steps=2",
                                                          "lr_g=1e-3", "lr_d=1e-3"], "no_gan": False},
}


def _cache(path: Path) -> None:
    """JAX's persistent compilation cache: the second seed of an arm reuses the first one's compiled step."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def train(args) -> int:
    import learning

    _cache(args.runs / "jax-cache")
    arm = ARMS[args.arm]
    args.results.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        name = f"{args.arm}_s{seed}"
        argv = ["--config", CONFIG, "--data", DATA, "--steps", str(args.steps), "--eval-every", str(args.eval_every),
                "--eval-clips", "64", "--seed", str(seed), "--out", str(args.results / f"{name}.jsonl"),
                "--save", str(args.runs / name)]
        for item in arm["set"] + args.set:
            argv += ["--set", item]
        if arm["no_gan"]:
            argv.append("--no-gan")
        from trivd_core import objective

        g_loss = objective.g_loss
        t0 = time.perf_counter()
        try:
            learning.main(argv)
        finally:  # --no-gan patches the objective module of this process: undo it for the next seed
            objective.g_loss = g_loss
        print(f"ablation: {name} trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return 0


# ---------------------------------------------------------------------------------------------- evaluation


def _test_clips(n: int, start: int = 0):
    from trivd_core.configs import get_config
    from trivd_core.data import make_dataset

    cfg = get_config(CONFIG)
    ds = make_dataset(DATA, resolution=cfg.resolution, t=cfg.t_total, channels=cfg.channels, split="test", seed=0)
    clips, tracks = [], []
    for i in range(start, start + n):
        c, tr = ds.render(i)
        clips.append(c)
        tracks.append(tr)
    return np.stack(clips).astype(np.float32), tracks


def _features(x: np.ndarray, extractor) -> np.ndarray:
    from trivd_core.fvd import extract_features

    return extract_features(np.clip(x, -1.0, 1.0).astype(np.float32), extractor, name="clips")


def _load(run: Path):
    from trivd_core.configs import config_from_mapping
    from trivd_core.train.checkpoint import latest_checkpoint, load_checkpoint

    tree, meta = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    return tree, config_from_mapping(meta["config"], source=str(run)), meta


def _samples(predict_fn, tree, cfg, cond, ell: int, seed: int, batch: int = 64):
    """``(ell, N, t_pred, H, W, C)`` samples and the warps of sample 1 (z ~ N(0, latent_std^2 I), fixed seeds)."""
    rng = np.random.default_rng([seed, 0x7A])
    N = cond.shape[0]
    out = np.zeros((ell, N, cfg.t_pred, *cond.shape[2:]), np.float32)
    warps0 = []
    for k in range(ell):
        z = (cfg.latent_std * rng.standard_normal((N, cfg.z_dim))).astype(np.float32)
        for i in range(0, N, batch):
            frames, warps = predict_fn(tree, cond[i:i + batch], z[i:i + batch])
            out[k, i:i + batch] = np.clip(frames, -1.0, 1.0)
            if k == 0:
                warps0.append(warps)
    return out, warps0


def evaluate(args) -> int:
    import backends
    from trivd.weights import open_extractor
    from trivd_core import metrics
    from trivd_core.predict import centroid_errors
    from trivd_core.train.validation import ValidationSet, centroid_record, make_predict_fn

    backend = backends.load("jax")
    n = args.num_clips
    clips, tracks = _test_clips(n)
    from trivd_core.configs import get_config

    cfg16 = get_config(CONFIG)
    cond, truth = clips[:, :cfg16.t_cond], clips[:, cfg16.t_cond:]
    copy = np.repeat(cond[:, -1:], cfg16.t_pred, axis=1)
    extractor, i3d_record = open_extractor(None, backend=backend, batch_size=16)
    feats_path = args.results / "features.npz"
    if feats_path.exists() and np.load(feats_path)["real"].shape[0] == n:
        cached = dict(np.load(feats_path))
    else:
        t0 = time.perf_counter()
        floor_clips, _ = _test_clips(n, start=n)
        cached = {"real": _features(clips, extractor), "floor": _features(floor_clips, extractor),
                  "copy": _features(np.concatenate([cond, copy], axis=1), extractor)}
        np.savez(feats_path, **cached)
        print(f"ablation: real / floor / copy features of {n} clips in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)
    fvd_copy = metrics.frechet_distance_from_features(cached["real"], cached["copy"])
    fvd_floor = metrics.frechet_distance_from_features(cached["real"], cached["floor"])
    vset = ValidationSet(cond, truth, tracks)
    predict_fn = make_predict_fn(backend)
    runs = sorted(p for p in args.runs.iterdir() if (p / "checkpoints").is_dir()) if args.only is None else \
        [args.runs / name for name in args.only]
    for run in runs:
        out_path = args.results / f"{run.name}_eval.json"
        if out_path.exists() and not args.force:
            continue
        t0 = time.perf_counter()
        tree, cfg, meta = _load(run)
        samples, warps0 = _samples(predict_fn, tree, cfg, cond, 10 if cfg.latent_std > 0 else 1, seed=0)
        s1 = samples[0].astype(np.float64)
        rec = {"run": run.name, "arm": run.name.rsplit("_s", 1)[0], "step": meta.get("step"), "clips": n,
               "config": cfg.to_dict(), "i3d": i3d_record}
        feats = _features(np.concatenate([cond, samples[0]], axis=1), extractor)
        rec["fvd"] = {"model": metrics.frechet_distance_from_features(cached["real"], feats),
                      "copy_baseline": fvd_copy, "real_floor": fvd_floor, "frames": cfg.t_total,
                      "resize": "tf1", "pool": "reference"}
        rec["mse"] = float(np.mean((s1 - truth) ** 2))
        rec["copy_mse"] = float(np.mean((copy - truth) ** 2))
        rec["psnr"] = float(np.mean(metrics.psnr(s1, truth)))
        rec["copy_psnr"] = float(np.mean(metrics.psnr(copy, truth)))
        best = {}
        for ell_k in (1, 10):
            best[str(ell_k)] = float(np.mean(metrics.best_of(samples[:ell_k], truth).ssim_per_clip))
        if samples.shape[0] == 1:  # a deterministic G (latent_std 0): every l gives sample 1
            best["10"] = best["1"]
            best["deterministic"] = True
        rec["ssim_best_of"] = best
        if run.name in args.l100 and cfg.latent_std > 0:  # the paper's BAIR protocol, l = 100, on the first clips
            k = args.l100_clips
            many, _ = _samples(predict_fn, tree, cfg, cond[:k], 100, seed=1)
            rec["ssim_best_of_l100"] = {"clips": k, "copy": float(np.mean(metrics.ssim(copy[:k], truth[:k]))),
                                        **{str(ell_k): float(np.mean(metrics.best_of(many[:ell_k], truth[:k])
                                                                     .ssim_per_clip)) for ell_k in (1, 10, 100)}}
        rec["ssim_per_frame"] = [float(v) for v in metrics.ssim(s1, truth).mean(axis=0)]
        rec["copy_ssim"] = float(np.mean(metrics.ssim(copy, truth)))
        rec["copy_ssim_per_frame"] = [float(v) for v in metrics.ssim(copy, truth).mean(axis=0)]
        rec.update(centroid_record(s1, vset, cfg))
        per = [centroid_errors(s1[b], cond[b, 0], tracks[b], cfg.t_cond) for b in range(n)]
        found = np.where(np.stack([~r["lost"] for r in per]), np.stack([r["error"] for r in per]), np.nan)
        rec["centroid_error_found"] = [float(v) for v in np.nanmean(found, axis=0)]  # over the frames that kept it
        rec["motion_agreement"] = _agreement(warps0, tracks, cfg)
        rec["diversity"] = float(np.mean(np.std(samples, axis=0))) if samples.shape[0] > 1 else 0.0
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        out_path.write_text(json.dumps(rec, indent=1) + "\n")
        print(f"ablation: {run.name}: FVD {rec['fvd']['model']:.1f} (copy {fvd_copy:.1f}, floor {fvd_floor:.1f}); "
              f"SSIM best of 1/10 {best['1']:.3f}/{best['10']:.3f} (copy {rec['copy_ssim']:.3f}); centroid at the "
              f"last frame {rec['centroid_error'][-1]:.2f} px (copy {rec['copy_centroid_error'][-1]:.2f}) "
              f"[{rec['seconds']} s]", file=sys.stderr, flush=True)
    return 0


def _agreement(warps_batches, tracks, cfg) -> float | None:
    from trivd_core.predict import NoShapePixels, default_stages, motion_agreement, motion_fields

    scores, b0 = [], 0
    for warps in warps_batches:
        flow = np.asarray(motion_fields(warps, stages=default_stages(cfg), resolution=cfg.resolution))
        for b in range(flow.shape[0]):
            for j in range(flow.shape[1]):
                try:
                    scores.append(motion_agreement(flow[b, j], tracks[b0 + b], cfg.t_cond + j))
                except NoShapePixels:
                    pass
        b0 += flow.shape[0]
    return float(np.mean(scores)) if scores else None


# ---------------------------------------------------------------------------------------------- table, figure


def _records(results: Path) -> dict[str, list[dict]]:
    by_arm: dict[str, list[dict]] = {}
    for p in sorted(results.glob("*_eval.json")):
        rec = json.loads(p.read_text())
        by_arm.setdefault(rec["arm"], []).append(rec)
    return by_arm


def _ms(values) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():.3g}" if v.size == 1 else f"{v.mean():.3g} ± {np.ptp(v) / 2:.2g}"


def table(args) -> int:
    by_arm = _records(args.results)
    if not by_arm:
        print(f"no *_eval.json in {args.results}: run `evaluate` first", file=sys.stderr)
        return 1
    first = next(iter(by_arm.values()))[0]
    lines = [f"N = {first['clips']} test clips of {DATA} (16 frames, 2 -> 14); mean ± half the range over seeds; "
             f"copy-last-frame FVD {first['fvd']['copy_baseline']:.1f}, real-vs-real floor "
             f"{first['fvd']['real_floor']:.1f}", "",
             "| arm | seeds | steps | FVD | SSIM l=1 | SSIM l=10 | MSE / copy | centroid error, frame 16 (px) | "
             "the same where found | shape lost (frames) | motion agreement | sample spread |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm in sorted(by_arm):
        recs = by_arm[arm]
        lines.append(
            f"| {ARMS[arm]['label']} | {len(recs)} | {recs[0]['step']} | {_ms([r['fvd']['model'] for r in recs])} | "
            f"{_ms([r['ssim_best_of']['1'] for r in recs])} | {_ms([r['ssim_best_of']['10'] for r in recs])} | "
            f"{_ms([r['mse'] / r['copy_mse'] for r in recs])} | {_ms([r['centroid_error'][-1] for r in recs])} | "
            f"{_ms([r['centroid_error_found'][-1] for r in recs])} | "
            f"{_ms([r['centroid_lost'] for r in recs])} | {_ms([r['motion_agreement'] or 0 for r in recs])} | "
            f"{_ms([r['diversity'] for r in recs])} |")
    lines.append(f"| copy last frame | - | - | {first['fvd']['copy_baseline']:.1f} | {first['copy_ssim']:.3f} | "
                 f"{first['copy_ssim']:.3f} | 1 | {first['copy_centroid_error'][-1]:.2f} | "
                 f"{first['copy_centroid_error'][-1]:.2f} | 0 | - | 0 |")
    # calibration: the error of a guess that ignores the clip, the frame's centre (what a lost shape is charged)
    _, tracks = _test_clips(first["clips"])
    h = tracks[0].masks.shape[2]
    centre = np.array([(h - 1) / 2.0, (tracks[0].masks.shape[3] - 1) / 2.0])
    guess = float(np.mean([np.hypot(*(tr.positions[-1, 0] - centre)) for tr in tracks]))
    lines.append(f"| frame centre (ignores the clip) | - | - | - | - | - | - | {guess:.2f} | {guess:.2f} | - | - | - |")
    print("\n".join(lines))
    return 0


def figure(args) -> int:
    """One test clip: truth, (a), (b) and three samples of (c), every other predicted frame."""
    import backends
    from trivd_core.media import LabelledGrid
    from trivd_core.train.validation import make_predict_fn

    backend = backends.load("jax")
    predict_fn = make_predict_fn(backend)
    clips, _ = _test_clips(64)
    cond = clips[:, :2]
    i = args.clip
    rows, labels = [clips[i]], ["truth"]
    for arm, count in (("a", 1), ("b", 1), ("c", 3)):
        run = args.runs / f"{arm}_s0"
        if not (run / "checkpoints").is_dir():
            continue
        tree, cfg, _ = _load(run)
        samples, _ = _samples(predict_fn, tree, cfg, cond, count, seed=1)
        for k in range(count):
            rows.append(np.concatenate([clips[i, :2], samples[k, i]]))
            labels.append(ARMS[arm]["label"] + (f", sample {k + 1}" if count > 1 else ""))
    from trivd_core.media import to_uint8

    frames = list(range(0, 16, 2)) + [15]
    cells = [[to_uint8(row[t])[None] for t in frames] for row in rows]
    grid = LabelledGrid(cells, row_labels=labels,
                        col_titles=[f"frame {t + 1}" + (" (cond.)" if t < 2 else "") for t in frames],
                        title=f"test clip {i} of {DATA}: 2 conditioning frames, 14 predicted; the shape moves in a "
                              "straight line", cell_px=64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save_png(args.out)
    print(f"wrote {args.out}")
    return 0


def curves(args) -> int:
    """Validation curves of every run (64 test clips, z = 0, EMA): centroid error at the last frame, MSE / copy."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100)
    colours = {"a": "tab:blue", "b": "tab:green", "c": "tab:red", "c_lr": "tab:purple"}
    copy_last = None
    for path in sorted(args.results.glob("*_s*.jsonl")):
        recs = [json.loads(line) for line in path.read_text().splitlines()]
        recs = [r for r in recs if "step" in r and r.get("centroid_error")]
        if not recs:
            continue
        name = path.stem
        arm = name.rsplit("_s", 1)[0]
        style = "-" if name.endswith("s0") else "--"
        label = f"{ARMS[arm]['label'] if arm in ARMS else name}, seed {name.rsplit('_s', 1)[1]}"
        x = [r["step"] for r in recs]
        axes[0].plot(x, [r["centroid_error"][-1] for r in recs], style, marker="o", color=colours.get(arm, "k"),
                     label=label)
        axes[1].plot(x, [r["mse_ratio"] for r in recs], style, marker="o", color=colours.get(arm, "k"), label=label)
        copy_last = recs[-1]["copy_centroid_error"][-1]
    if copy_last is not None:
        axes[0].axhline(copy_last, color="0.5", linestyle=":", label="copy last frame")
        _, tracks = _test_clips(64)  # the validation clips: a guess of the frame's centre, for calibration
        centre = (np.asarray(tracks[0].masks.shape[2:], float) - 1) / 2.0
        axes[0].axhline(float(np.mean([np.hypot(*(tr.positions[-1, 0] - centre)) for tr in tracks])), color="k",
                        linestyle="-.", label="frame centre (ignores the clip)")
        axes[0].legend(fontsize=7, loc="center right")
    axes[1].axhline(1.0, color="0.5", linestyle=":", label="copy last frame")
    axes[0].set_ylabel("centroid error at frame 16 (px; lower is better)")
    axes[1].set_ylabel("MSE / copy-last-frame's (lower is better)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"validation during training: 64 test clips of {DATA}, EMA weights, z = 0")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--arm", choices=sorted(ARMS), required=True)
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--eval-every", type=int, default=100)
    t.add_argument("--set", action="append", default=[], help="an extra config field KEY=VALUE (a knob probe)")
    e = sub.add_parser("evaluate")
    e.add_argument("--num-clips", type=int, default=256)
    e.add_argument("--only", nargs="+", default=None, help="run names (default: every run under --runs)")
    e.add_argument("--l100", nargs="*", default=["c_s0"], help="runs scored with l = 100 samples as well")
    e.add_argument("--l100-clips", type=int, default=64, help="clips of the l = 100 protocol (default 64)")
    e.add_argument("--force", action="store_true")
    sub.add_parser("table")
    f = sub.add_parser("figure")
    f.add_argument("--clip", type=int, default=0)
    f.add_argument("--out", type=Path, default=Path("ablation.png"))
    cv = sub.add_parser("curves")
    cv.add_argument("--out", type=Path, default=Path("ablation_curves.png"))
    for q in (t, e, f, cv, sub.choices["table"]):
        q.add_argument("--runs", type=Path, default=RUNS)
        q.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    return {"train": train, "evaluate": evaluate, "table": table, "figure": figure, "curves": curves}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
