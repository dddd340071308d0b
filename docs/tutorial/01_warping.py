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
# # 1. Kernel-based warping: Eq. 11 and the motion it encodes
#
# TrIVD-GAN-FP moves features with a *kernel-based* warp (appendix B): at every pixel
# `(i, j)` a small `k x k` kernel `W_{i,j}` weighs the neighbours of `(i, j)` in the input
# `h`, and the output is their weighted sum.  In the plain-text notation of `reference/`
# (`p = (k-1)/2`, `h` zero-padded by `p`):
#
# ```
# h~_{i,j}[c] = sum_{m=0}^{k-1} sum_{n=0}^{k-1} W_{i,j}[m k + n] * h_{i+m-p, j+n-p}[c]      (11)
# ```
#
# Tap `q = m k + n` sits at the offset `(dy, dx) = (m - p, n - p)` from the output pixel.
# The warp **reads** (pulls) the input at `(i + dy, j + dx)`: a kernel whose weight is all on
# the tap to the right, `(dy, dx) = (0, +1)`, copies each pixel's right neighbour into it, so
# the picture moves one pixel to the **left**.  Keep this sign in mind: the flow the warp
# encodes points from the output pixel to where its content comes from, the opposite of the
# way the content moves.
#
# The functions are `reference.warping.pixelwise_warp` (the loops of Eq. 11, the spec) and
# `trivd_core.warping.pixelwise_warp` (the same name, vectorised for every array library).

# %%
import numpy as np
from _tutorial import QUICK, arrows, plt, save, show

import reference.warping as ref
import trivd_core.warping as core
from trivd_core.data.synthetic import SyntheticShapes
from trivd_core.media import color_wheel, flow_to_rgb

R = 16 if QUICK else 32  # frame size
k = 3
p = (k - 1) // 2
frames, tracks = SyntheticShapes(R, 2, seed=3, split="test", num_shapes=2, texture=0.3).render(0)
h = frames[None, 0].astype(np.float64)  # (B=1, H, W, C=3): the map to warp
print("h:", h.shape, f"in [{h.min():.2f}, {h.max():.2f}]")


def tap(m, n):
    """The flat tap index q of row offset m and column offset n."""
    return m * k + n


def constant_kernel(kernel):
    """W: the same k x k kernel at every pixel, (1, R, R, k*k)."""
    return np.broadcast_to(np.asarray(kernel, np.float64).reshape(1, 1, 1, k * k), (1, R, R, k * k)).copy()


# %% [markdown]
# ## A one-hot kernel is a shift; a spread kernel is a blur
#
# Three kernels, the same at every pixel: all the weight on the tap right of the centre
# `(m, n) = (1, 2)`, the tap below `(2, 1)`, and a normalised 3x3 binomial blur.  One
# application moves content by one pixel at most, hard to see at this size, so the last column
# applies the same warp six times.  The check below the figure is the pull convention in one
# line: `h~[i, j] = h[i, j + 1]`.

# %%
one_hot_right = np.zeros(k * k)
one_hot_right[tap(1, 2)] = 1.0
one_hot_down = np.zeros(k * k)
one_hot_down[tap(2, 1)] = 1.0
blur = np.outer([1, 2, 1], [1, 2, 1]).ravel() / 16.0
kernels = {"tap (1, 2): reads the right neighbour": one_hot_right,
           "tap (2, 1): reads the pixel below": one_hot_down,
           "binomial blur": blur}

fig, axes = plt.subplots(len(kernels), 4, figsize=(10, 2.6 * len(kernels)))
for row, (name, kernel) in zip(axes, kernels.items()):
    W = constant_kernel(kernel)
    h_tilde = ref.pixelwise_warp(h, W, k)  # Eq. 11, the loops
    assert np.allclose(h_tilde, core.pixelwise_warp(h, W, k), atol=1e-12)  # the core computes the same
    h_6 = h
    for _ in range(6):
        h_6 = core.pixelwise_warp(h_6, W, k)
    show(row[0], kernel.reshape(k, k), "W_{i,j} (k x k): " + name.split(":")[0], cmap="viridis", vmin=0, vmax=1)
    show(row[1], h[0], "h")
    show(row[2], h_tilde[0], "h~ = warp(h; W)")
    show(row[3], h_6[0], "warp applied 6 times")
fig.suptitle("Eq. 11 with one kernel everywhere: one-hot taps shift, spread taps blur", fontsize=10)
save(fig, "01_kernels.png")

shifted = ref.pixelwise_warp(h, constant_kernel(one_hot_right), k)
assert np.array_equal(shifted[0, :, :-1], h[0, :, 1:])  # h~[i, j] = h[i, j + 1]: the content moved left
assert np.all(shifted[0, :, -1] == 0)  # and the zero padding entered on the right
print("pull convention checked: a one-hot on tap (1, 2) gives h~[i, j] = h[i, j+1]")

# %% [markdown]
# ## The expected flow: reading W as a motion field (section 4.4, Fig. 3)
#
# The hyper-networks end in a softmax, so `W_{i,j}` is a probability distribution over the
# `k*k` offsets.  Its mean is the *expected flow* (`reference.warping.expected_flow`):
#
# ```
# (dy, dx)_{i,j} = sum_{m,n} W_{i,j}[m k + n] * (m - p, n - p)
# ```
#
# It is a pull flow (where the warp reads from); the content moves by `-(dy, dx)`.  Below, a
# `W` that varies over the image: the left half reads one pixel to the right (content moves
# left), the right half reads half a pixel above and half a pixel to the left (content moves
# down-right, blurred).  Arrows show both fields; the colour image is `flow_to_rgb` of the
# content motion, with the colour wheel of Fig. 3 as its legend (red: right, cyan: left,
# yellow-green: down, violet: up).

# %%
W = np.zeros((1, R, R, k * k))
W[0, :, : R // 2, tap(1, 2)] = 1.0  # left half: read the right neighbour
W[0, :, R // 2 :, tap(0, 1)] = 0.5  # right half: read above ...
W[0, :, R // 2 :, tap(1, 0)] = 0.5  # ... and to the left, half each
flow = ref.expected_flow(W, k)[0]  # (R, R, 2) as (dy, dx): where Eq. 11 reads from
motion = -flow  # where the content goes
h_tilde = ref.pixelwise_warp(h, W, k)[0]
assert np.allclose(flow[0, 0], (0.0, 1.0)) and np.allclose(flow[0, -1], (-0.5, -0.5))

fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
show(axes[0], h[0], "h")
show(axes[1], h_tilde, "h~ = warp(h; W)")
show(axes[2], np.ones((R, R)), "blue: expected flow (pull)\nred: content motion = -flow (arrows x2)", vmin=0, vmax=1)
step = R // 8
arrows(axes[2], flow, step=step, colour="tab:blue", scale=2.0)
arrows(axes[2], motion, step=step, colour="tab:red", scale=2.0)
show(axes[3], flow_to_rgb(motion), "content motion as colour")
inset = axes[3].inset_axes([0.72, 0.72, 0.26, 0.26])
show(inset, color_wheel(33), "")
save(fig, "01_expected_flow.png")

# %% [markdown]
# ## What to remember
#
# * Eq. 11 is a depth-wise, locally connected layer whose weights are *data*: every pixel has
#   its own kernel, the same for all channels.
# * A kernel of size `k` moves content by at most `p = (k-1)/2` pixels per application;
#   larger motions need several steps or coarser grids (chapter 4 combines the scales).
# * `expected_flow` is the mean offset of the kernel, a pull flow; negate it for the motion of
#   the content.  `trivd predict --motion` draws exactly this, combined over the scales.
