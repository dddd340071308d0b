"""What reading the metrics of every step costs: the training loop with the step in flight against a host sync.

    python experiments/host_sync.py [--config demo] [--steps 300] [--rounds 3] [--out experiments/results/host_sync.json]

The loop (``trivd_core.train.loop``) queues step k + 1 before it reads step k's metrics, and the JAX
engine returns its metrics as device arrays, so the device is not idle while the host logs and draws
the next inputs.  The control wraps the engine so that ``step`` reads its metrics (``float``) before
returning, which is what every step did before: each step then waits for the device, and the host's
work per step (input sampling, logging) runs after it instead of beside it.  Same config, data, seed
and steps; the rounds alternate the two variants so that a drift of the machine spreads over both.
The steps/s are over the steps after the first (the compile), from the loop's own records.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


class _Synced:
    """The engine, with every step's metrics read before ``step`` returns (one host sync per step)."""

    def __init__(self, engine):
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def step(self, ts, inputs):
        ts, metrics = self._engine.step(ts, inputs)
        return ts, {k: float(v) for k, v in metrics.items()}


def run_once(config_name: str, steps: int, synced: bool, root: Path) -> dict:
    import backends
    from trivd_core.configs import get_config
    from trivd_core.data import Loader, make_dataset
    from trivd_core.train import TrainOptions, train

    config = get_config(config_name)
    engine = backends.load("jax").engine(config, steps=steps)
    if synced:
        engine = _Synced(engine)
    ds = make_dataset("synthetic:demo", resolution=config.resolution, t=config.t_total, channels=config.channels,
                      split="train", seed=0)
    run_dir = root / f"{'synced' if synced else 'in_flight'}_{time.monotonic_ns()}"
    opts = TrainOptions(run_dir=run_dir, steps=steps, seed=0, log_every=1, sample_every=10 ** 6,
                        ckpt_every=10 ** 6, keep=1, progress=False, eval_every=0)
    with Loader(ds, config.batch_size, seed=0, workers=2) as loader:
        train(engine, config, loader, opts, log=lambda m: None)
    recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    recs = [r for r in recs if "time" in r and "d_loss" in r]
    t = [r["time"] for r in recs]
    return {"synced": synced, "steps": steps, "steps_per_sec_after_first": (len(t) - 2) / (t[-1] - t[1]),
            "d_loss_last": recs[-1]["d_loss"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="demo")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for synced in ((False, True) if r % 2 == 0 else (True, False)):
                row = run_once(args.config, args.steps, synced, Path(tmp))
                row["round"] = r
                rows.append(row)
                print(json.dumps(row), flush=True)
    import statistics

    summary = {}
    for synced in (False, True):
        rates = [r["steps_per_sec_after_first"] for r in rows if r["synced"] is synced]
        summary["synced" if synced else "in_flight"] = {"median_steps_per_sec": statistics.median(rates),
                                                        "all": rates}
    # the same seeds and inputs: both variants must end at the same loss
    same = len({round(r["d_loss_last"], 6) for r in rows}) == 1
    print(json.dumps({"summary": summary, "same_final_d_loss": same}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows, "summary": summary,
                                              "same_final_d_loss": same}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
