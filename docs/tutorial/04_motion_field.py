# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. The multi-scale motion field of a trained model (section 4.4, Fig. 3)
#
# Every stage `i` of the generator runs a TSRU on a grid of its own resolution (`R/8`, `R/4`,
# `R/2` for frames of `R x R`) and warps its state once per predicted frame.  Chapter 1 read a
# warp `W` as an expected flow; here the flows of a *trained* model are read stage by stage
# and combined coarse to fine (`reference.warping.combine_flows`: upsample the coarse field,
# multiply it by the factor, add the finer one), then compared with the true velocities of
# the synthetic shapes.
#
# The model: the checkpoint of the README's main job (`runs/demo`, 2000 steps, about 11
# minutes on a 2-core machine) if it is there, or the run named by `TRIVD_TUTORIAL_RUN`.
# Without either, this script trains one into `runs/tutorial`; its motion field needs about
# 700 steps to leave chance (docs/training.md, "The README demo"), so that run is 800 steps:
# about 5 minutes on an idle 2-core machine by the demo's measured costs (gate 33 s, first step
# with its compilation about 70 s, then 3.7 steps/s).  (The tutorial's test runs 2 steps: a field at
# chance, the same code.)

# %%
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from _tutorial import HERE, OUT, QUICK, arrows, plt, save, show

import backends
import reference.warping as ref
from trivd_core.data import make_dataset
from trivd_core.evaluate import Model, open_run
from trivd_core.predict import NoShapePixels, color_wheel, default_stages, flow_to_rgb, motion_agreement, motion_fields

ROOT = HERE.parent.parent  # the repository: the README's main job writes runs/demo there


def find_run() -> Path:
    """The run to read: TRIVD_TUTORIAL_RUN, else runs/demo, else a short run trained now."""
    if os.environ.get("TRIVD_TUTORIAL_RUN"):
        return Path(os.environ["TRIVD_TUTORIAL_RUN"])
    if not QUICK and list((ROOT / "runs" / "demo" / "checkpoints").glob("*.json")):
        return ROOT / "runs" / "demo"
    run_dir = OUT / "run" if QUICK else ROOT / "runs" / "tutorial"  # the test's run goes with its figures
    steps = 2 if QUICK else 800
    if not list((run_dir / "checkpoints").glob("*.json")):
        cmd = [sys.executable, "-m", "trivd", "train", "--run-dir", str(run_dir), "--steps", str(steps),
               "--no-progress", "--ckpt-every", str(steps)]
        if QUICK:  # the test: seconds, not minutes (no gate, no validation)
            cmd += ["--skip-conformance", "--eval-every", "0", "--sample-every", str(steps)]
        if os.environ.get("TRIVD_TUTORIAL_BACKEND"):
            cmd += ["--backend", os.environ["TRIVD_TUTORIAL_BACKEND"]]
        print("training:", " ".join(cmd[1:]))
        subprocess.run(cmd, check=True, cwd=ROOT)
    return run_dir


run = open_run(find_run())
model = Model(run, backends.load("numpy"))  # the core's generator (EMA weights) on NumPy arrays: no framework
cfg = model.config

# Batch norm at evaluation uses standing statistics (E.2): the average batch statistics of G over many
# training batches.  A single clip's own statistics would distort its prediction.
train = make_dataset(run.run_config.get("data", "synthetic:demo"), resolution=cfg.resolution, t=cfg.t_total,
                     split="train")
n_batches, size = (1, 4) if QUICK else (8, 32)
model.accumulate_standing_stats(
    (np.stack([train.clip(b * size + i)[: cfg.t_cond] for i in range(size)]).astype(np.float32),
     model.latents(np.random.default_rng(b), size)) for b in range(n_batches))
print(f"checkpoint {run.path}: step {run.step}, config {cfg.name!r}, cell {cfg.cell}, {cfg.resolution}x{cfg.resolution}, "
      f"{cfg.t_cond} -> {cfg.t_pred} frames")

# %% [markdown]
# ## One clip, stage by stage
#
# `model.predict_with_warps` runs the generator once and returns, for each stage, the
# transformation `theta` of every predicted step (`W`, and `w`, `S` for TSRU).
# `trivd_core.predict.motion_fields` turns them into the motion of the content in frame
# pixels, `-f * up_f(combine_flows([expected_flow(W_i) ...]))`.  A 3x3 warp moves by at
# most one cell of its grid per step: on the `R/8` grid that is 8 frame pixels, more than the
# shapes move, so the coarse stages carry the direction only as small blends.  The default
# (`default_stages`) combines the two coarsest stages of at least 16x16.  Off the shapes the
# background is flat: any warp reproduces it, so the field there is arbitrary and only the
# shapes' pixels are scored (`motion_agreement`: the share of shape pixels whose motion has a
# positive cosine with the true velocity).

# %%
data = make_dataset(run.run_config.get("data", "synthetic:demo"), resolution=cfg.resolution, t=cfg.t_total,
                    split="test")
index = 0  # the first test clip
clip, tracks = data.render(index)
cond = clip[None, : cfg.t_cond].astype(np.float32)
z = np.zeros((1, cfg.z_dim), np.float32)  # the mean latent
pred, warps = model.predict_with_warps(cond, z)
stages = sorted(int(key[5:]) for key in warps)
j = cfg.t_pred - 1  # the last predicted step
t = cfg.t_cond + j  # its frame index in the clip

fields = {f"stage {i} ({warps[f'stage{i}']['W'].shape[2]}x{warps[f'stage{i}']['W'].shape[3]})":
          motion_fields(warps, stages=(i,), resolution=cfg.resolution)[0, j] for i in stages}
chosen = default_stages(cfg)
fields[f"combined {chosen} (default)"] = motion_fields(warps, stages=chosen, resolution=cfg.resolution)[0, j]

true = np.zeros((cfg.resolution, cfg.resolution, 2))
for s in range(tracks.masks.shape[1]):  # each shape's velocity into frame t, where the shape is
    true += tracks.masks[t, s][..., None] * tracks.velocities[t - 1, s]

shapes = tracks.masks[t].max(axis=0) >= 0.5  # the pixels of frame t that belong to a shape


def directions(field):
    """Unit arrows (3 px long) of a field on the shapes' pixels, zero elsewhere: the direction alone."""
    norm = np.linalg.norm(field, axis=-1, keepdims=True)
    return np.where(shapes[..., None] & (norm > 1e-9), 3.0 * field / np.maximum(norm, 1e-12), 0.0)


step = max(1, cfg.resolution // 16)
fig, axes = plt.subplots(1, 4 + len(fields), figsize=(2.4 * (4 + len(fields)), 3.2))
show(axes[0], clip[t - 1], f"frame {t - 1} (true)")
show(axes[1], clip[t], f"frame {t} (true)")
show(axes[2], pred[0, j], f"frame {t} (predicted)")
show(axes[3], flow_to_rgb(true), f"true motion into frame {t}")
arrows(axes[3], directions(true), step=step, colour="white")
for ax, (name, field) in zip(axes[4:], fields.items()):
    score = motion_agreement(field, tracks, t)
    show(ax, flow_to_rgb(field), f"{name}\nagreement {score:.0%}")
    arrows(ax, directions(field), step=step, colour="white")
inset = axes[3].inset_axes([0.74, 0.74, 0.25, 0.25])
show(inset, color_wheel(33), "")
fig.suptitle(f"motion of the content, model at step {run.step} (hue: direction, brightness: speed, each panel "
             "scaled to its own largest speed; white arrows: the direction on the shapes' pixels)", fontsize=9)
save(fig, "04_motion_stages.png")

# %% [markdown]
# ## Combining the scales by hand
#
# The same combination with the reference's loops, for the chosen stages: `expected_flow`
# of each stage's `W` (a pull flow in stage pixels), `combine_flows` coarse to fine, then
# the factor to frame pixels and the sign flip from "where it reads" to "where the content
# goes".  It matches `motion_fields` of the core.

# %%
flows = [ref.expected_flow(np.asarray(warps[f"stage{i}"]["W"][:, j], np.float64), 3) for i in chosen]
combined = ref.combine_flows(flows)  # (1, r, r, 2) at the finest chosen stage
f = cfg.resolution // combined.shape[1]
by_hand = -f * np.repeat(np.repeat(combined[0], f, axis=0), f, axis=1)
assert np.allclose(by_hand, fields[f"combined {chosen} (default)"], atol=1e-5)
print(f"stages {chosen}: the reference's combine_flows x {f} reproduces motion_fields")

# %% [markdown]
# ## Over many clips
#
# One clip can be lucky.  The agreement of the default field with the true direction over
# the predicted frames of 16 test clips (2 in the test), the number `trivd train` logs as
# `val/motion_agreement`.  For the README demo's final checkpoint this printed a mean of 0.95
# (minimum 0.75) where an untrained field scores about 0.5; the run's own validation logged 0.96.

# %%
n_clips = 2 if QUICK else 16
scores = []
for i in range(n_clips):
    clip_i, tracks_i = data.render(i)
    _, warps_i = model.predict_with_warps(clip_i[None, : cfg.t_cond].astype(np.float32), z)
    field_i = motion_fields(warps_i, stages=chosen, resolution=cfg.resolution)[0]
    for jj in range(cfg.t_pred):
        try:
            scores.append(motion_agreement(field_i[jj], tracks_i, cfg.t_cond + jj))
        except NoShapePixels:  # no shape pixel in that frame (every shape left the picture)
            pass
print(f"motion agreement over {n_clips} clips x {cfg.t_pred} frames: mean {np.mean(scores):.2f} "
      f"(chance 0.5), min {np.min(scores):.2f}")
