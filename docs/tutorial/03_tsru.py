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
# # 3. One step of TSRU (Eqs. 6-10), and why it differs from ConvGRU and K-TrajGRU
#
# The recurrent units of the generator advance a state `h_{t-1}` given an input `x_t`.
# ConvGRU (Eqs. 1-5, DVD-GAN-FP's unit) can only *keep* its state or *overwrite* it with new
# content.  TSRU, the paper's unit, first *moves* its state with a predicted warp and then
# fuses it with new content:
#
# ```
# theta_{h,x} = f(h_{t-1}, x_t)                    (6)    the hyper-network predicts a warp
# h~_{t-1}    = warp(h_{t-1}; theta_{h,x})         (7)    Eq. 11 (and 12): chapters 1 and 2
# c   = rho(W_c *k [h~_{t-1}; x_t] + b_c)          (8)    new content
# u   = sigma(W_u *k [h_{t-1}; x_t] + b_u)         (9)    the fusion gate
# h_t = u * h~_{t-1} + (1 - u) * c                 (10)
# ```
#
# TSRU_p computes `c` from the unwarped `[h_{t-1}; x_t]` (in parallel with `theta`), TSRU_s
# computes `u` from `[h~_{t-1}; c]` (fully sequential).  The code is `reference.cells._tsru`;
# its names are the symbols above with their time index: `h_tm1` is `h_{t-1}`, `h_tilde_tm1`
# is `h~_{t-1}`, `x_t`, `h_t`, and `W_c, b_c = params["c"]["W"], params["c"]["b"]`.
#
# To make every quantity readable as a picture, this chapter sets the parameters by hand on
# a one-channel world: the state is a bright square, and the input `x_t` shows the same square
# one pixel to the right.  Then it writes each equation out with the reference's primitives
# and checks the result against `reference.cells.cell_step`.

# %%
import numpy as np
from _tutorial import QUICK, arrows, outline, plt, save, show

import reference.cells as rcells
import reference.warping as ref
from reference.ops import conv2d, relu, sigmoid
from trivd_core.cells import init_cell

R = 12 if QUICK else 20
k, p = 3, 1
side, y0, x0 = R // 4, R // 3, R // 4
h_tm1 = np.zeros((1, R, R, 1))
h_tm1[0, y0 : y0 + side, x0 : x0 + side] = 1.0  # the state: a square
x_t = np.zeros((1, R, R, 1))
x_t[0, y0 : y0 + side, x0 + 1 : x0 + 1 + side] = 1.0  # the input: the square, one pixel right


def centre(c_in, c_out, weights):
    """A k x k kernel (HWIO) whose only non-zero taps are the centre ones: weights[i] for input channel i."""
    W = np.zeros((k, k, c_in, c_out))
    W[p, p, :, 0] = weights
    return W


def hand_set(kind):
    """init_cell's layout with hand-chosen values: f predicts 'read one pixel to the left' everywhere."""
    params = init_cell(kind, c_in=1, c_hidden=1, k=k, rng=np.random.default_rng(0), dtype=np.float64)
    if "f" in params:
        f = params["f"]
        for layer in f.values():  # every weight of f to zero: its outputs are the biases alone
            layer["W"][...] = 0.0
            layer["b"][...] = 0.0
        N = f["S"]["W"].shape[3]
        q_left = p * k + (p - 1)  # tap (m, n) = (1, 0): offset (0, -1), read the left neighbour
        f["fc2"]["b"][q_left * N : (q_left + 1) * N] = 6.0  # every kernel l puts its weight on that tap
    # new content: the mean of the (warped or not) state and the input
    params["c"]["W"][...] = centre(2, 1, [0.5, 0.5])
    # the gate looks at its second input channel (x_t, or c for TSRU_s): keep the state where it is bright
    params["u"]["W"][...] = centre(2, 1, [0.0, 6.0])
    params["u"]["b"][...] = -3.0
    if "r" in params:  # ConvGRU / K-TrajGRU: a reset gate that lets the state through
        params["r"]["W"][...] = 0.0
        params["r"]["b"][...] = 6.0
    return params


def cat(a, b):
    """[a; b]: concatenation along channels."""
    return np.concatenate([a, b], axis=-1)


# %% [markdown]
# ## TSRU_c, TSRU_p and TSRU_s, equation by equation
#
# `theta` is drawn as its expected flow (blue, where the warp reads from) and the motion of the
# content (red); `u` in `[0, 1]`.  On the maps, the dashed red line is the edge of the square
# in `h_{t-1}` (where it was), the green line its edge in `x_t` (where it is now).  The last
# column compares `h_t` with the input it should track.

# %%
def tsru_equations(kind, params, h_tm1, x_t):
    """Eqs. 6-10 written out (rho = ReLU); returns every intermediate by its name."""
    f = params["f"]
    W_c, b_c = params["c"]["W"], params["c"]["b"]
    W_u, b_u = params["u"]["W"], params["u"]["b"]
    h_t, theta = rcells.cell_step(kind, params, h_tm1, x_t, return_warp=True)  # theta = f(h_{t-1}, x_t), Eq. 6
    assert set(theta) == {"w", "S", "W"} and f["S"]["W"].shape[3] == theta["w"].shape[2]
    h_tilde_tm1 = ref.pixelwise_warp(h_tm1, ref.factorized_kernels(theta["w"], theta["S"]), k)  # (7)
    if kind == "tsru_p":
        c = relu(conv2d(cat(h_tm1, x_t), W_c, b_c))  # TSRU_p's (8)
    else:
        c = relu(conv2d(cat(h_tilde_tm1, x_t), W_c, b_c))  # (8)
    if kind == "tsru_s":
        u = sigmoid(conv2d(cat(h_tilde_tm1, c), W_u, b_u))  # TSRU_s's (9)
    else:
        u = sigmoid(conv2d(cat(h_tm1, x_t), W_u, b_u))  # (9)
    h_t_by_hand = u * h_tilde_tm1 + (1 - u) * c  # (10)
    assert np.allclose(h_t_by_hand, h_t, atol=1e-12), kind  # the equations above are cell_step
    return {"theta": theta, "h~_{t-1}": h_tilde_tm1, "c": c, "u": u, "h_t": h_t}


kinds = ("tsru_c", "tsru_p", "tsru_s")
fig, axes = plt.subplots(len(kinds), 7, figsize=(13, 2.1 * len(kinds)))
for row, kind in zip(axes, kinds):
    out = tsru_equations(kind, hand_set(kind), h_tm1, x_t)
    flow = ref.expected_flow(out["theta"]["W"], k)[0]
    show(row[0], h_tm1[0, ..., 0], f"{kind}\nh_(t-1)", vmin=0, vmax=1)
    show(row[1], x_t[0, ..., 0], "x_t", vmin=0, vmax=1)
    show(row[2], np.ones((R, R)), "theta (Eq. 6)", vmin=0, vmax=1)
    arrows(row[2], flow, step=max(1, R // 6), colour="tab:blue")
    arrows(row[2], -flow, step=max(1, R // 6), colour="tab:red")
    show(row[3], out["h~_{t-1}"][0, ..., 0], "h~_(t-1) (Eq. 7)", vmin=0, vmax=1)
    show(row[4], out["c"][0, ..., 0], "c (Eq. 8)", vmin=0, vmax=1)
    show(row[5], out["u"][0, ..., 0], "u (Eq. 9)", cmap="magma", vmin=0, vmax=1)
    err = np.abs(out["h_t"] - x_t).max()
    show(row[6], out["h_t"][0, ..., 0], f"h_t (Eq. 10)\nmax |h_t - x_t| = {err:.2f}", vmin=0, vmax=1)
    for ax in row[[0, 1, 3, 4, 6]]:
        outline(ax, h_tm1[0, ..., 0], "tab:red", style="--")
        outline(ax, x_t[0, ..., 0], "tab:green")
fig.suptitle("one TSRU step with a hand-set warp 'move right by one pixel'", fontsize=10)
save(fig, "03_tsru_variants.png")

# %% [markdown]
# Reading the rows: the warp moves the square onto its new place, so `h~_{t-1}` already
# matches `x_t`, and the gate `u` keeps it there.  TSRU_p's content `c` mixes the *unwarped*
# state with `x_t`, so off the square it leaves a faint copy at the old place (the column the
# square left).  TSRU_s gates with `c` instead of `x_t`: here both are bright at the new place,
# so it behaves like TSRU_c.
#
# ## The contrast: ConvGRU (Eqs. 1-5) and K-TrajGRU (Eqs. 16-22)
#
# ```
# ConvGRU                                   K-TrajGRU
# r    = sigma(W_r *k [h_{t-1}; x_t] + b_r)   (1)   theta = f(h_{t-1}, x_t); h~_{t-1} = warp(h_{t-1}; theta)  (16, 17)
# h'_t = r * h_{t-1}                         (2)   r    = sigma(W_r *k [h~_{t-1}; x_t] + b_r)               (18)
# c    = rho(W_c *k [h'_t; x_t] + b_c)       (3)   h'_t = r * h~_{t-1}; c = rho(W_c *k [h'_t; x_t] + b_c)     (19, 20)
# u    = sigma(W_u *k [h_{t-1}; x_t] + b_u)   (4)   u    = sigma(W_u *k [h~_{t-1}; x_t] + b_u)               (21)
# h_t  = u * h_{t-1} + (1 - u) * c           (5)   h_t  = u * h_{t-1} + (1 - u) * c                       (22)
# ```
#
# Same hand-set values (the reset gate `r` open).  ConvGRU has no warp: where `u` keeps the
# state, it keeps it *where it was*: the column the square entered stays dark (the state was
# dark there) and the column it left keeps a grey trace of the content.  K-TrajGRU warps the state for its gates and content,
# but Eq. 22 mixes the **unwarped** `h_{t-1}`, so the state itself still does not move; TSRU's
# Eq. 10 mixes the warped one.

# %%
fig, axes = plt.subplots(1, 4, figsize=(9, 2.6))
show(axes[0], x_t[0, ..., 0], "x_t (the target)", vmin=0, vmax=1)
for ax, kind in zip(axes[1:], ("convgru", "ktrajgru", "tsru_c")):
    params = hand_set(kind)
    h_t = rcells.cell_step(kind, params, h_tm1, x_t, activation="relu")
    if kind == "convgru":  # Eqs. 1-5 by hand, checked against cell_step
        W_r, b_r = params["r"]["W"], params["r"]["b"]
        W_c, b_c = params["c"]["W"], params["c"]["b"]
        W_u, b_u = params["u"]["W"], params["u"]["b"]
        r = sigmoid(conv2d(cat(h_tm1, x_t), W_r, b_r))  # (1)
        h_prime_t = r * h_tm1  # (2)
        c = relu(conv2d(cat(h_prime_t, x_t), W_c, b_c))  # (3)
        u = sigmoid(conv2d(cat(h_tm1, x_t), W_u, b_u))  # (4)
        assert np.allclose(u * h_tm1 + (1 - u) * c, h_t, atol=1e-12)  # (5)
    err = np.abs(h_t - x_t).max()
    show(ax, h_t[0, ..., 0], f"{kind}: h_t\nmax |h_t - x_t| = {err:.2f}", vmin=0, vmax=1)
for ax in axes:
    outline(ax, h_tm1[0, ..., 0], "tab:red", style="--")
    outline(ax, x_t[0, ..., 0], "tab:green")
fig.suptitle("the same step: only TSRU moves its state", fontsize=10)
save(fig, "03_contrast.png")
