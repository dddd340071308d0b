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
# # 2. Factorized warping: N shared kernels and a selection map (Eq. 12)
#
# Predicting a full `k x k` kernel for every pixel (the pixelwise warp of PTSRU) costs `k*k`
# outputs per pixel.  The factorized warp of TSRU (appendix B) predicts instead, per sample,
# `N` kernels `w` shared by the whole image, and per pixel a distribution `S_{i,j}` over them.
# The per-pixel kernel is their mixture:
#
# ```
# W_{i,j}[q] = sum_{l=1}^{N} S_{i,j}[l] * w[q, l]                 (12)
# ```
#
# `w` is `(B, k*k, N)` (each column a kernel, a softmax over its taps in the hyper-network),
# `S` is `(B, H, W, N)` (a softmax over the `N` kernels at each pixel).  The paper reads `S` as
# a pseudo motion segmentation: pixels that move together pick the same kernel.  `W` then
# goes through Eq. 11 exactly as in chapter 1.  The paper's choice is `k = 3`, `N = k*k = 9`.

# %%
import numpy as np
from _tutorial import QUICK, arrows, plt, save, show

import reference.warping as ref
from trivd_core.data.synthetic import SyntheticShapes
from trivd_core.media import flow_to_rgb

R = 16 if QUICK else 32
k, N = 3, 9
p = (k - 1) // 2
frames, tracks = SyntheticShapes(R, 2, seed=3, split="test", num_shapes=2, texture=0.3).render(0)
h = frames[None, 0].astype(np.float64)
masks = tracks.masks[0]  # (S, H, W): where each shape is in frame 0
velocity = tracks.velocities[0]  # (S, 2): (dy, dx) of each shape, pixels per frame
print("shape velocities (dy, dx):", np.round(velocity, 2).tolist())

# %% [markdown]
# ## A basis of nine shifts, and a map that picks one per region
#
# Take as the `N = 9` kernels the nine one-hot kernels: kernel `l` reads the neighbour at
# offset `(m - p, n - p)` with `l = m k + n`, so kernel 4 (the centre) is the identity.  The
# selection map gives the background the identity and each shape the shift that moves it one
# pixel the way it really moves (content moving by `(vy, vx)` means reading at `-(vy, vx)`,
# rounded to the grid).  `S` is made soft with a softmax over logits, as the hyper-network's
# is: a pixel may mix kernels, and then its `W` is a blend.

# %%
w = np.eye(k * k)[None]  # (B=1, k*k, N): column l is one-hot on tap l


def kernel_reading(dy, dx):
    """The index l of the one-hot kernel that reads at offset (dy, dx), each in {-1, 0, 1}."""
    return (int(dy) + p) * k + (int(dx) + p)


logits = np.zeros((1, R, R, N))
logits[..., kernel_reading(0, 0)] = 4.0  # background: the identity
for mask, (vy, vx) in zip(masks, velocity):
    l = kernel_reading(-np.sign(np.round(vy)), -np.sign(np.round(vx)))
    logits[0, ..., l] += 8.0 * mask  # on the shape: the kernel of its motion
S = np.exp(logits - logits.max(axis=-1, keepdims=True))
S /= S.sum(axis=-1, keepdims=True)  # softmax over the N kernels, as in the hyper-network

W = ref.factorized_kernels(w, S)  # Eq. 12, the loops: (1, R, R, k*k)
assert np.allclose(W.sum(axis=-1), 1.0)  # a convex mixture of kernels that each sum to one
h_tilde = ref.pixelwise_warp(h, W, k)  # Eq. 11 with the mixed kernels
motion = -ref.expected_flow(W, k)[0]

fig = plt.figure(figsize=(12, 3.6))
grid = fig.add_gridspec(3, 8, width_ratios=[1, 1, 1, 0.3, 3.2, 3.2, 3.2, 3.2])
for l in range(N):
    ax = fig.add_subplot(grid[l // 3, l % 3])
    show(ax, w[0, :, l].reshape(k, k), f"w[:, {l}]", cmap="viridis", vmin=0, vmax=1)
ax = fig.add_subplot(grid[:, 4])
show(ax, np.argmax(S[0], axis=-1), "argmax_l S_{i,j}[l]", cmap="tab10", vmin=0, vmax=9)
ax = fig.add_subplot(grid[:, 5])
show(ax, h[0], "h")
ax = fig.add_subplot(grid[:, 6])
show(ax, h_tilde[0], "h~ = warp(h; W(w, S))")
ax = fig.add_subplot(grid[:, 7])
show(ax, flow_to_rgb(motion), "content motion -E[offset]")
arrows(ax, motion, step=max(1, R // 8), colour="white", scale=2.0)
fig.suptitle("Eq. 12: nine shared kernels (left), a per-pixel choice S, the warp they make", fontsize=10)
save(fig, "02_selection.png")

# %% [markdown]
# ## What an untrained hyper-network predicts
#
# In the model `(w, S)` come from the hyper-network `f(h_{t-1}, x_t)` of a TSRU cell (Eq. 6,
# `reference.cells._hyper_factorized`).  Freshly initialised (orthogonal weights, zero biases,
# appendix E.2), its logits are small, so both softmaxes are nearly uniform: every kernel is
# close to the 3x3 box blur and `S` close to `1/N` everywhere.  An untrained TSRU therefore
# *blurs* its state rather than moving it; training has to sharpen the kernels into shifts
# (chapter 4 shows the trained ones).  `return_warp=True` hands back `theta`.

# %%
import reference.cells as rcells  # noqa: E402
from trivd_core.cells import init_cell  # noqa: E402

c_hidden = 3
params = init_cell("tsru_c", c_in=3, c_hidden=c_hidden, k=k, rng=np.random.default_rng(0), dtype=np.float64)
h_tm1 = h  # use the frame itself as the state, so that the warp is visible
x_t = frames[None, 1].astype(np.float64)
h_t, theta = rcells.cell_step("tsru_c", params, h_tm1, x_t, return_warp=True)
print("theta holds", {key: v.shape for key, v in theta.items()})
print(f"kernel weights w: min {theta['w'].min():.3f}, max {theta['w'].max():.3f} (uniform would be {1 / 9:.3f})")

fig, axes = plt.subplots(1, N + 1, figsize=(12, 1.8))
for l in range(N):
    show(axes[l], theta["w"][0, :, l].reshape(k, k), f"w[:, {l}]", cmap="viridis", vmin=0, vmax=0.3)
show(axes[N], theta["S"][0].max(axis=-1), "max_l S (1/9 = 0.11)", cmap="viridis", vmin=0, vmax=0.3)
fig.suptitle("the kernels of an untrained TSRU hyper-network: close to uniform (colour scale 0-0.3)", fontsize=10)
save(fig, "02_untrained_kernels.png")
assert theta["w"].max() < 0.5 and np.allclose(theta["W"], ref.factorized_kernels(theta["w"], theta["S"]))
