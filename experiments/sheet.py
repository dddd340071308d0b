"""A contact sheet of a run's predictions on unseen clips (the picture in docs/training.md).

    python experiments/sheet.py runs/demo docs/img/demo_predictions.png [--clips 6] [--backend numpy]

For each of the first ``--clips`` clips of the run's data's test split: the true clip on the top
row, the conditioning frames and the model's predicted frames (EMA weights, z = 0, the batch
statistics of 32 test clips) below it, each frame enlarged 3x; a light column gap separates the
conditioning from the predicted frames.  Prints the MSE per predicted frame of the clips shown.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--scale", type=int, default=3)
    args = p.parse_args(argv)

    import backends
    from trivd_core.data import make_dataset
    from trivd_core.evaluate import Model, open_run
    from trivd_core.train.artifacts import to_uint8, write_png

    run = open_run(args.run)
    cfg = run.config
    model = Model(run, backends.load(args.backend))
    ds = make_dataset(run.data or "synthetic:demo", resolution=cfg.resolution, t=cfg.t_total, channels=cfg.channels,
                      split="test", seed=run.seed, **run.data_options)
    n = max(32, args.clips)
    clips = np.stack([ds.clip(i) for i in range(n)]).astype(np.float32)
    pred = model.predict(clips[:, :cfg.t_cond], np.zeros((n, cfg.z_dim), np.float32))
    R = cfg.resolution
    gap = np.ones((R, 3, 3), np.float32)
    rows = []
    for b in range(args.clips):
        truth = [clips[b, t] for t in range(cfg.t_total)]
        model_row = [clips[b, t] for t in range(cfg.t_cond)] + [pred[b, j] for j in range(cfg.t_pred)]
        for frames in (truth, model_row):
            parts = frames[:cfg.t_cond] + [gap] + frames[cfg.t_cond:]
            rows.append(np.concatenate(parts, axis=1))
        rows.append(np.ones((3, rows[-1].shape[1], 3), np.float32))
    img = to_uint8(np.concatenate(rows, axis=0))
    img = np.repeat(np.repeat(img, args.scale, axis=0), args.scale, axis=1)
    write_png(args.out, img)
    mse = ((pred[:args.clips] - clips[:args.clips, cfg.t_cond:]) ** 2).mean(axis=(0, 2, 3, 4))
    copy = ((clips[:args.clips, cfg.t_cond - 1:cfg.t_cond] - clips[:args.clips, cfg.t_cond:]) ** 2).mean(
        axis=(0, 2, 3, 4))
    print(f"wrote {args.out}; MSE per predicted frame of these clips {np.round(mse, 4).tolist()} "
          f"(copy last frame {np.round(copy, 4).tolist()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
