"""Can the discriminator see motion?  Train D alone to tell real clips from motionless or altered ones.

A G trained by Eqs. 13-14 alone moves a shape only if D penalises a shape that does not
move.  This probe trains D by itself (hinge loss, Eq. 13; Adam with the config's D learning
rate and betas) on real ``synthetic:demo16`` clips against one kind of negative made from
the same batch:

* ``copy``     - copy-last-frame: ``[x_1, x_2, x_2, ..., x_2]`` (what a G that moves nothing makes);
* ``frozen``   - ``[x_1, x_1, ..., x_1]``: no motion at all;
* ``reversed`` - ``[x_T, ..., x_1]``: the control.  A straight line at constant speed played
  backwards is another clip of the same distribution, so no D should separate it (the
  probe's own check: a pipeline that "separates" it has a leak).

Every ``--eval-every`` steps it scores 64 held-out test clips and their negatives with D in
evaluation mode and records the *paired accuracy*: the fraction of clips whose real version
gets a higher total score (summed over the sub-discriminators) than its negative (0.5 =
chance).  "Separated" = the first evaluation with a paired accuracy of at least 0.95.

    python experiments/d_probe.py --decomposition stronger --negative copy frozen reversed --steps 300
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

NEGATIVES = ("copy", "frozen", "reversed")


def negative(kind: str, clips: np.ndarray, t_cond: int) -> np.ndarray:
    """The negatives of ``clips (B, T, H, W, C)``: see the module docstring."""
    if kind == "copy":
        return np.concatenate([clips[:, :t_cond], np.repeat(clips[:, t_cond - 1:t_cond], clips.shape[1] - t_cond,
                                                             axis=1)], axis=1)
    if kind == "frozen":
        return np.repeat(clips[:, :1], clips.shape[1], axis=1)
    if kind == "reversed":
        return clips[:, ::-1].copy()
    raise ValueError(f"negative must be one of {', '.join(NEGATIVES)}, got {kind!r}")


def paired_accuracy(real_scores: np.ndarray, fake_scores: np.ndarray) -> float:
    """Fraction of pairs with ``real > fake`` (ties count half)."""
    r, f = np.asarray(real_scores, float), np.asarray(fake_scores, float)
    return float(np.mean((r > f) + 0.5 * (r == f)))


def probe(config, kind: str, *, steps: int, eval_every: int, seed: int = 0, data: str = "synthetic:demo16",
          threshold: float = 0.95, log=print) -> dict:
    """Train D alone against ``kind`` negatives; the record of one probe (curve, first separated step)."""
    import jax
    import jax.numpy as jnp
    import optax

    from trivd_core import objective
    from trivd_core.data import Loader, make_dataset
    from trivd_core.discriminator import discriminate, init_discriminator, sample_randomness

    c = config
    ds = make_dataset(data, resolution=c.resolution, t=c.t_total, channels=c.channels, split="train", seed=seed)
    test = make_dataset(data, resolution=c.resolution, t=c.t_total, channels=c.channels, split="test", seed=0)
    held = np.stack([test[i] for i in range(64)]).astype(np.float32)
    held_neg = negative(kind, held, c.t_cond)
    rng = np.random.default_rng([seed, 0xD])
    d_params, d_state = init_discriminator(c, np.random.default_rng(seed))
    d_params, d_state = jax.tree.map(jnp.asarray, d_params), jax.tree.map(jnp.asarray, d_state)
    tx = optax.adam(c.lr_d, b1=c.beta1, b2=c.beta2, eps=c.adam_eps)
    opt = tx.init(d_params)

    @jax.jit
    def update(dp, ds_, opt, real, fake, rand):
        def obj(p):
            loss, aux, new_state = objective.d_loss(p, ds_, real, fake, rand, c, train=True)
            return loss, new_state

        (loss, new_state), grads = jax.value_and_grad(obj, has_aux=True)(dp)
        upd, opt = tx.update(grads, opt, dp)
        return optax.apply_updates(dp, upd), new_state, opt, loss

    @jax.jit
    def score(dp, ds_, video, rand):
        scores, _ = discriminate(dp, ds_, video, rand, c, train=False)
        return sum(jnp.reshape(s, (s.shape[0], -1)).mean(axis=1) for s in scores.values())

    eval_rand = sample_randomness(c, np.random.default_rng([1, 0xE]), held.shape[0])
    curve, separated, t0, losses = [], None, time.perf_counter(), []
    with Loader(ds, c.batch_size, seed=seed, workers=0) as loader:
        for step in range(1, steps + 1):
            real = np.asarray(loader.next_batch(), np.float32)
            rand = sample_randomness(c, rng, real.shape[0])
            d_params, d_state, opt, loss = update(d_params, d_state, opt, real, negative(kind, real, c.t_cond), rand)
            losses.append(float(loss))
            if step % eval_every == 0 or step == steps:
                acc = paired_accuracy(np.asarray(score(d_params, d_state, held, eval_rand)),
                                      np.asarray(score(d_params, d_state, held_neg, eval_rand)))
                curve.append({"step": step, "paired_accuracy": acc, "d_loss": float(np.mean(losses))})
                losses = []
                if separated is None and acc >= threshold:
                    separated = step
                log(f"d_probe {c.decomposition} vs {kind}: step {step} paired accuracy {acc:.3f} "
                    f"d_loss {curve[-1]['d_loss']:.3f}")
    return {"decomposition": c.decomposition, "negative": kind, "d_ch": c.d_ch, "lr_d": c.lr_d, "steps": steps,
            "batch_size": c.batch_size, "separated_at": separated, "threshold": threshold,
            "final_paired_accuracy": curve[-1]["paired_accuracy"], "curve": curve,
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="demo16")
    p.add_argument("--decomposition", nargs="+", default=["stronger", "dvdgan_fp"])
    p.add_argument("--negative", nargs="+", default=list(NEGATIVES), choices=NEGATIVES)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "d_probe.json")
    args = p.parse_args(argv)
    from trivd_core.configs import get_config

    records = []
    for dec in args.decomposition:
        cfg = get_config(args.config, decomposition=dec, K=min(get_config(args.config).K, 16))
        for kind in args.negative:
            records.append(probe(cfg, kind, steps=args.steps, eval_every=args.eval_every, seed=args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": args.config, "records": records}, indent=1) + "\n")
    for r in records:
        print(f"{r['decomposition']:>10} vs {r['negative']:<8}: separated at step {r['separated_at']}, final paired "
              f"accuracy {r['final_paired_accuracy']:.3f} ({r['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
