"""Is the motion field's px/frame scale right, and what does it say where nothing moves?

    python experiments/motion_scale.py runs/demo --clips 64 [--videos a.avi b.avi] [--json out.json]

On the run's own held-out clips (``SyntheticShapes`` test split, the ground truth known) the
motion of ``trivd predict --motion`` (default stages, EMA weights with standing statistics,
z = 0 as the model's ``latents`` gives it) is compared with the shapes' true velocities:

* on shape pixels (coverage >= 0.5): the median of ``|m| / |v|`` and of the speed along the true
  direction ``(m . v) / |v|^2`` (1 = the right speed in px/frame), and the agreement (cosine > 0);
* on background pixels (no shape within coverage 0.01, which moves only with the pan): the
  median and 90th percentile of ``|m|`` - the true motion there is 0 without pan.

On real videos (``--videos``, resized and cropped to the model's size as ``trivd predict`` does)
the median ``|m|`` on textured pixels (the last conditioning frame's gradient magnitude in the top
quarter) and on flat ones (bottom quarter): where a region is flat every warp reproduces it, so
the warp's expected displacement is not constrained by the data.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _speeds(motion):
    return np.hypot(motion[..., 0], motion[..., 1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--backend", default="jax")
    p.add_argument("--videos", nargs="*", default=[])
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import backends
    from trivd_core.data import make_dataset
    from trivd_core.data.synthetic import SyntheticShapes
    from trivd_core.evaluate import Model, open_run, standing_batches
    from trivd_core.predict import predict_clip, read_input

    run = open_run(args.run)
    cfg = run.config
    model = Model(run, backends.load(args.backend))
    train = make_dataset(run.data or "synthetic:demo", split="train", resolution=cfg.resolution, t=cfg.t_total,
                         channels=cfg.channels, seed=run.seed, **run.data_options)
    model.accumulate_standing_stats(standing_batches(train, model, n_batches=cfg.standing_batches,
                                                     batch_size=min(cfg.batch_size, 64), seed=run.seed, workers=0),
                                    source="train split")
    test = make_dataset(run.data or "synthetic:demo", split="test", resolution=cfg.resolution, t=cfg.t_total,
                        channels=cfg.channels, seed=run.seed, **run.data_options)
    if not isinstance(test, SyntheticShapes):
        raise SystemExit("motion_scale.py: the run's data has no ground-truth motion (not synthetic shapes)")
    ratio, along, agree, background = [], [], [], []
    scale = None
    for i in range(args.clips):
        clip, tracks = test.render(i)
        pred = predict_clip(model, clip, motion=True)
        scale = pred.speed_scale
        for j in range(cfg.t_pred):
            t = cfg.t_cond + j
            m = pred.motion[j].astype(np.float64)
            covered = tracks.masks[t].sum(axis=0)
            for s in range(tracks.masks.shape[1]):
                inside = tracks.masks[t, s] >= 0.5
                v = tracks.velocities[t - 1, s]
                speed = float(np.hypot(*v))
                if not inside.any() or speed < 1e-6:
                    continue
                ms = m[inside]
                ratio.extend(_speeds(ms) / speed)
                along.extend(ms @ v / speed**2)
                agree.extend((ms @ v) > 0)
            bg = covered < 0.01
            background.extend(_speeds(m[bg]))
    pan = float(np.hypot(*test.render(0)[1].pan_velocity))
    out = {"run": str(args.run), "config": cfg.name, "clips": args.clips, "stages_full_scale_px": scale,
           "shape_pixels": int(len(ratio)), "median_speed_ratio": float(np.median(ratio)),
           "median_speed_along_true_direction_ratio": float(np.median(along)),
           "agreement": float(np.mean(agree)),
           "background_pixels": int(len(background)), "background_pan_px": pan,
           "background_median_speed": float(np.median(background)),
           "background_p90_speed": float(np.percentile(background, 90))}
    videos = {}
    for path in args.videos:
        frames = read_input(path, cfg)
        pred = predict_clip(model, frames, motion=True)
        last = frames[cfg.t_cond - 1].mean(axis=-1)
        gy, gx = np.gradient(last)
        grad = np.hypot(gy, gx)
        lo, hi = np.percentile(grad, [25, 75])
        sp = _speeds(pred.motion)  # (t_pred, R, R)
        videos[path.rsplit("/", 1)[-1]] = {
            "median_speed": float(np.median(sp)),
            "median_speed_textured": float(np.median(sp[:, grad >= hi])),
            "median_speed_flat": float(np.median(sp[:, grad <= lo])),
            "fastest": float(sp.max())}
    out["videos"] = videos
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
