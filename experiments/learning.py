"""Controlled learning experiments on the synthetic shapes (the numbers of docs/training.md).

Trains one configuration with the JAX engine and the library's loop inputs (no CLI, no
gate, no checkpoints) and evaluates, every ``--eval-every`` steps, the EMA weights on a
fixed set of test-split clips with :func:`trivd_core.train.validation.validate` (MSE / SSIM /
PSNR per predicted frame for the model, copy-last-frame and the best static blur, and
the motion agreement of the warping stages).  One JSON object per evaluation goes to
``--out`` (and stdout).

    python experiments/learning.py --steps 1500 --out runs/x.jsonl                 # the demo config and data
    python experiments/learning.py --set recon_weight=0 --set latent_std=1 --set d_steps=2 --out runs/gan.jsonl
    python experiments/learning.py --config tiny --data synthetic --set g_ch=8 --out runs/y.jsonl

``--set`` and ``--data-option`` take JSON values (strings otherwise), as ``trivd train``.
``--seconds`` stops training after that wall time (compilation excluded) instead of at
``--steps``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _kv(text):
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _drop_gan_term():
    """Replace objective.g_loss by its L1 + orthogonal-penalty part (the engines call it through the module)."""
    from trivd_core import objective

    full = objective.g_loss

    def g_loss(*args, **kwargs):
        loss, aux, states = full(*args, **kwargs)
        return loss - aux["gan"], aux, states

    objective.g_loss = g_loss


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="demo")
    p.add_argument("--data", default="synthetic:demo", help="a synthetic dataset spec (synthetic, synthetic:demo)")
    p.add_argument("--set", action="append", default=[], type=_kv, help="config field KEY=VALUE")
    p.add_argument("--data-option", action="append", default=[], type=_kv, help="SyntheticShapes option KEY=VALUE")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-clips", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="jax")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--save", type=Path, default=None,
                   help="write the final state as a run directory here (checkpoints/, config.json: trivd eval/predict "
                        "read it)")
    p.add_argument("--no-gan", action="store_true",
                   help="probe: G's loss is recon_weight * L1 + ortho only (D still trains, unused by G)")
    p.add_argument("--zero-z", action="store_true", help="train with z = 0 (probe: is the latent noise in the way?)")
    args = p.parse_args(argv)

    import backends
    from trivd_core.configs import get_config
    from trivd_core.data import Loader, make_dataset
    from trivd_core.train.loop import InputSampler, loop_rng
    from trivd_core.train.validation import ValidationSet, make_predict_fn, validate

    config = get_config(args.config, **dict(args.set))
    if args.no_gan:
        _drop_gan_term()
    opts = dict(args.data_option)
    train_ds = make_dataset(args.data, resolution=config.resolution, t=config.t_total, channels=config.channels,
                            split="train", seed=args.seed, **opts)
    vset = ValidationSet.from_dataset(
        make_dataset(args.data, resolution=config.resolution, t=config.t_total, channels=config.channels,
                     split="test", seed=0, **opts), config, n_clips=args.eval_clips)
    backend = backends.load(args.backend)
    engine = backend.engine(config, train_opt="full") if args.backend == "jax" else backend.engine(config)
    loader = Loader(train_ds, config.batch_size, seed=args.seed, workers=0)
    sampler = InputSampler(config, loader, loop_rng(args.seed))
    ts = engine.init(args.seed)
    predict_fn = make_predict_fn(backend)
    out = args.out.open("w") if args.out else None
    header = {"config": config.to_dict(), "data": args.data, "data_options": opts, "seed": args.seed, "backend": args.backend,
              "zero_z": args.zero_z, "no_gan": args.no_gan}
    print(json.dumps(header), flush=True)
    if out:
        out.write(json.dumps(header) + "\n")
    t_train = 0.0
    step = 0
    losses = []
    while True:
        t0 = time.perf_counter()
        inputs = sampler.draw()
        if args.zero_z:
            inputs["z_d"][...] = 0.0
            inputs["z_g"][...] = 0.0
        ts, m = engine.step(ts, inputs)
        m = {k: float(v) for k, v in m.items()}  # read now: the timing covers the whole step
        dt = time.perf_counter() - t0
        step += 1
        if step > 1:  # the first step compiles
            t_train += dt
        losses.append(m)
        done = step >= args.steps or (args.seconds is not None and t_train >= args.seconds)
        if step % args.eval_every == 0 or done:
            rec = validate(predict_fn, engine.export(ts), vset, config)
            rec = {"step": step, "train_seconds": round(t_train, 1),
                   "d_loss": float(np.mean([x["d_loss"] for x in losses])),
                   "g_loss": float(np.mean([x["g_loss"] for x in losses])),
                   **({"recon": float(np.mean([x["recon"] for x in losses]))} if "recon" in losses[0] else {}),
                   **rec}
            losses = []
            line = json.dumps(rec)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()
        if done:
            break
    if args.save:
        from trivd_core.train.checkpoint import save_checkpoint

        args.save.mkdir(parents=True, exist_ok=True)
        save_checkpoint(args.save / "checkpoints", engine.export(ts), step=step,
                        meta={"backend": engine.name, "config": config.to_dict(), "seed": args.seed})
        (args.save / "config.json").write_text(json.dumps(
            {"config": config.to_dict(), "backend": engine.name, "seed": args.seed,
             "args": {"data": args.data, "data_options": opts, "seed": args.seed}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
