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
# # 5. What the discriminators see (section 3.1, Table 1) and the mixed projection (Eq. 15)
#
# The discriminator never judges the full clip at full resolution: that is the cost the paper
# cuts.  Each *decomposition* of Table 1 is a set of sub-discriminators, each judging a cheaper
# view of the clip `v = [conditioning frames; real or predicted frames]` of `T` frames:
#
# | sub-discriminator | its input (`reference.video`) | shape |
# |---|---|---|
# | `F`   frame-level | `sample_frames(v, idx)`: `K` random frames | `(B, K, H, W, C)` |
# | `dF`  downsampled frames | `downsample(sample_frames(v, idx), s)` | `(B, K, H/s, W/s, C)` |
# | `clV` whole clip | `v` | `(B, T, H, W, C)` |
# | `dV`  downsampled clip | `downsample(v, s)` | `(B, T, H/s, W/s, C)` |
# | `crV` cropped clip | `crop(v, offsets, (H/s, W/s))`: a random window | `(B, T, H/s, W/s, C)` |
#
# DVD-GAN-FP uses `F + dV`; TrIVD-GAN-FP's *stronger* decomposition is `dF + crV + dV`, the
# *faster* one `dF + crV`.  The frames `idx` and crop corners `offsets` are drawn once per
# discriminator step (`trivd_core.discriminator.sample_randomness`) and shared by the real and
# the generated clips.

# %%
import numpy as np
from _tutorial import QUICK, plt, save, show

import reference.losses as rlosses
import reference.video as rvideo
import trivd_core.video as cvideo
from trivd_core.configs import DECOMPOSITIONS, get_config
from trivd_core.data.synthetic import SyntheticShapes
from trivd_core.discriminator import discriminate, init_discriminator, sample_randomness

R, t_cond, t_pred = (32, 2, 4) if QUICK else (64, 5, 11)  # the paper's Kinetics-600 setting is 64x64, 5 -> 11
config = get_config("tiny", resolution=R, t_cond=t_cond, t_pred=t_pred, K=4 if QUICK else 8, s=2,
                    decomposition="stronger")
T = config.t_total
clip = SyntheticShapes(R, T, seed=1, split="test", num_shapes=3).render(0)[0]
v = clip[None].astype(np.float64)  # (B=1, T, H, W, C)
rand = sample_randomness(config, np.random.default_rng(0), 1)
print("decompositions of Table 1:", {name: "+".join(parts) for name, parts in DECOMPOSITIONS.items()})
print("idx (frames for F/dF):", rand["idx"][0].tolist(), " crop corner (y, x):", rand["offsets"][0].tolist())

s, K = config.s, config.K
views = {
    "F": rvideo.sample_frames(v, rand["idx"]),
    "dF": rvideo.downsample(rvideo.sample_frames(v, rand["idx"]), s),
    "clV": v,
    "dV": rvideo.downsample(v, s),
    "crV": rvideo.crop(v, rand["offsets"], (R // s, R // s)),
}
# the core's vectorised functions compute the same views
assert np.allclose(views["dV"], cvideo.downsample(v, s)) and np.allclose(views["crV"], cvideo.crop(v, rand["offsets"], (R // s, R // s)))

shown = min(T, 8)  # frames drawn per row
fig, axes = plt.subplots(len(views), shown, figsize=(1.5 * shown, 1.7 * len(views)))
for row, (name, x) in zip(axes, views.items()):
    n = x.shape[1]
    for col, ax in enumerate(row):
        if col < n:
            frame_of = rand["idx"][0, col] if name in ("F", "dF") else col
            show(ax, x[0, col], f"{name}: frame {frame_of}\n{x.shape[2]}x{x.shape[3]}")
        else:
            ax.axis("off")
    if name == "crV":  # where the window lies in the full frame
        y0, x0 = rand["offsets"][0]
        axes[2, 0].add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), R // s, R // s, fill=False, ec="yellow", lw=1.5))
fig.suptitle(f"the views of one {R}x{R} clip of {T} frames (first {shown} per row; yellow box on clV: "
             "the crV window; F/dF show the K sampled frames)", fontsize=9)
save(fig, "05_views.png")

# %% [markdown]
# Each view is drawn at the size the sub-discriminator receives: `dF`, `dV` and `crV` cost
# a quarter of the pixels of the full clip for `s = 2`, and `F`/`dF` only `K` of the `T`
# frames.  `crV` sees full-resolution detail but only in a window; `dV` sees the whole scene
# but blurred; together (the stronger decomposition) they cover both.
#
# ## Eq. 15: the mixed projection head
#
# After its residual blocks, a sub-discriminator has features `h` summed over space, one
# vector per sample `b` and time step `t`: `(B, T', C)`.  The projection head of BigGAN would
# give one score per sample.  The mixed head (appendix E.1) scores every *pair* of samples:
#
# ```
# r_x^{b,t}  = sum_c h[b, t, c] w[c] + w_0          unconditional part of sample b at time t
# r_xy^{b,t} = sum_c h[b, t, c] y[b, c]             part that depends on the class embedding y
# o_{b,b',t} = r_x^{b,t} + sum_{t'} r_xy^{b',t'}    (15)     D = B x B x T' outputs
# ```
#
# so `o` is a sum of a `(B, T')` term indexed by the row `b` and a `(B,)` term indexed by the
# column `b'`.  First with hand-made features where both terms are readable, then with a real
# (freshly initialised) stronger discriminator on a batch of clips.

# %%
B, Tp, C = 4, 3, 2
h = np.zeros((B, Tp, C))
h[:, :, 0] = np.arange(B)[:, None] + 0.1 * np.arange(Tp)  # channel 0 feeds r_x: grows with b and t
h[:, :, 1] = np.array([0.0, 1.0, 0.0, 2.0])[:, None]  # channel 1 feeds r_xy: samples 1 and 3
y_embed = np.tile([0.0, 1.0], (B, 1))  # the class embedding of the dummy class, the same for all
head = {"w": np.array([[1.0], [0.0]]), "b": np.array([0.0])}
o = rlosses.mixed_projection(h, y_embed, head)  # (B, B, T'), the loops of Eq. 15
assert np.allclose(o[:, :, 0], h[:, 0, 0][:, None] + (Tp * h[:, 0, 1])[None, :])

fig, axes = plt.subplots(1, Tp, figsize=(3 * Tp, 2.8))
for t, ax in enumerate(axes):
    im = ax.imshow(o[:, :, t], cmap="viridis")
    ax.set_title(f"o[b, b', t={t}]", fontsize=9)
    ax.set_xlabel("b' (sum_t' r_xy^{b',t'})")
    ax.set_ylabel("b (r_x^{b,t})")
    ax.set_xticks(range(B))
    ax.set_yticks(range(B))
    for (i, jj), val in np.ndenumerate(o[:, :, t]):
        ax.text(jj, i, f"{val:.1f}", ha="center", va="center", color="white", fontsize=7)
fig.suptitle("Eq. 15 on hand-made features: rows carry r_x of sample b at time t, columns the class term of b'",
             fontsize=9)
save(fig, "05_eq15_by_hand.png")

# %%
B = 4 if QUICK else 6
videos = np.stack([SyntheticShapes(R, T, seed=1, split="test").render(i)[0] for i in range(B)]).astype(np.float32)
params, state = init_discriminator(config, np.random.default_rng(0))
randomness = sample_randomness(config, np.random.default_rng(1), B)
scores, _ = discriminate(params, state, videos, randomness, config, train=False)
print({name: tuple(sc.shape) for name, sc in scores.items()})

fig, axes = plt.subplots(1, len(scores), figsize=(3.4 * len(scores), 3.0))
for ax, (name, sc) in zip(axes, scores.items()):
    sc = np.asarray(sc)
    ax.imshow(sc[:, :, 0], cmap="coolwarm")
    ax.set_title(f"{name}: o[b, b', t=0] of {sc.shape}", fontsize=9)
    ax.set_xlabel("b'")
    ax.set_ylabel("b")
    # Eq. 15's structure: every row minus its first column is the same row vector (the b' term)
    rows = sc[:, :, 0] - sc[:, :1, 0]
    assert np.allclose(rows, rows[:1], atol=1e-4), name
fig.suptitle("a freshly initialised stronger discriminator on real clips: each sub-discriminator's B x B score "
             "matrix (t = 0); the hinge loss (Eq. 13) averages all B x B x T' entries", fontsize=9, y=1.06)
save(fig, "05_eq15_scores.png")
