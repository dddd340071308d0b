"""A trained run on unseen clips: the validation record (trivd_core.train.validation) on test splits.

    python experiments/heldout.py runs/demo --seeds 0,1,2 --clips 256 [--backend numpy]

For every data seed ``s`` the first ``--clips`` clips of the run's data with ``split="test"`` and
``seed=s`` (seed 0 is the run's own test split; other seeds are new scenes of the same data) are
predicted by the run's EMA weights (z = 0, evaluation mode with the batch statistics of the clips,
in batches of 64) and scored as in training: MSE / SSIM (SAVP) / PSNR per predicted frame for the
model and copy-last-frame, the best static blur at the last frame, motion agreement.  Prints one
Markdown row per seed and, with ``--json``, the full records.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    import backends
    from trivd_core.data import make_dataset
    from trivd_core.evaluate import open_run
    from trivd_core.train.validation import ValidationSet, make_predict_fn, validate_batched

    run = open_run(args.run)
    cfg = run.config
    backend = backends.load(args.backend)
    predict_fn = make_predict_fn(backend)
    print("| data seed | clips | MSE per predicted frame: model | copy | mean ratio | last frame: model / best blur "
          "| SSIM model / copy | motion agreement |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        ds = make_dataset(run.data or "synthetic:demo", resolution=cfg.resolution, t=cfg.t_total,
                          channels=cfg.channels, split="test", seed=seed, **run.data_options)
        full = ValidationSet.from_dataset(ds, cfg, n_clips=args.clips)
        rec = validate_batched(predict_fn, run.tree, full, cfg, batch=args.batch)
        n, mse, copy, blur, sigma = rec["clips"], rec["mse"], rec["copy_mse"], rec["blur_mse_last"], rec["blur_sigma"]
        ssim, cssim, mot = rec["ssim"], rec["copy_ssim"], rec.get("motion_agreement")
        row = (f"| {seed} | {n} | {' / '.join(f'{v:.4f}' for v in mse)} | {' / '.join(f'{v:.4f}' for v in copy)} | "
               f"{np.mean(mse) / np.mean(copy):.2f} | {mse[-1]:.4f} / {blur:.4f} (sigma {sigma:g}) | "
               f"{np.mean(ssim):.3f} / {np.mean(cssim):.3f} | {'-' if mot is None else f'{mot:.2f}'} |")
        print(row, flush=True)
        if args.json:
            print(json.dumps({"seed": seed, "clips": n, "mse": mse, "copy_mse": copy, "blur_mse_last": blur,
                              "blur_sigma": sigma, "ssim": ssim, "copy_ssim": cssim, "motion_agreement": mot}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
