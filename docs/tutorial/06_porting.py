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
# # 6. Porting: write a cell yourself and prove it matches (`trivd conform --port`)
#
# A port is any importable module that exposes some of trivd's public names
# (`pixelwise_warp`, `factorized_kernels`, `cell_step`, ...) with the conventions of
# ARCHITECTURE.md: channels last, HWIO kernels, parameters in `init_cell`'s layout, NumPy
# arrays in and out.  `trivd conform --port MODULE` feeds it the conformance suite's records
# (odd shapes, float32 and float64, every kind) and compares each output with the NumPy
# reference under the per-dtype tolerances of the suite; names the port lacks, or kinds it
# raises `NotImplementedError` for, are reported `missing`, not failed.
#
# Beside this script: `port_numpy.py`, the warps and TSRU_c/p/s in about a hundred lines of
# plain NumPy that import nothing of trivd, and `port_numpy_flipped.py`, the same port with one
# classic slip: the warp applies its kernel flipped (a convolution instead of the correlation
# of Eq. 11).  A plain PyTorch port (`nn.Module`, NCHW inside) is
# `conformance/examples/torch_port.py`; it is checked the same way.

# %%
import subprocess
import sys

import numpy as np
import port_numpy
import port_numpy_flipped
from _tutorial import HERE, QUICK, plt, save, show

import reference.warping as ref
from trivd_core.data.synthetic import SyntheticShapes

OPS = "pixelwise_warp*,factorized_kernels*,cell_step*tsru*"  # the records of what the port implements (and PTSRU)


def conform(module):
    """Run `trivd conform --port module` here (the command puts the current folder on sys.path)."""
    cmd = [sys.executable, "-m", "trivd", "conform", "--port", module, "--ops", OPS, "--width", "70"]
    done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
    print("$ trivd conform --port", module, "--ops", repr(OPS))
    print(done.stdout + done.stderr)
    return done.returncode


# %% [markdown]
# ## The port that follows the conventions
#
# Every record it implements passes (exit status 0); the `ptsru_*` kinds are `missing`.

# %%
status = conform("port_numpy")
assert status == 0, status

# %% [markdown]
# ## The port with the flipped kernel
#
# `factorized_kernels` does not touch the taps and still passes; the warp fails on every
# element of the non-square record, and every TSRU cell fails with it (exit status 1).  The
# note names the record, how many elements are off and the worst one, which is where to start
# looking.

# %%
status = conform("port_numpy_flipped")
assert status == 1, status

# %% [markdown]
# ## What the slip looks like
#
# With all the weight on the tap to the right, Eq. 11 reads each pixel's right neighbour: the
# picture moves left.  The flipped port moves it right.  A model trained with the flipped warp
# could still fit the data (it learns the mirrored kernels), but its motion field would point
# the wrong way, and its checkpoints would not load into any correct implementation: the
# reason to check a port before trusting a run.

# %%
R, k = (16, 3) if QUICK else (32, 3)
h = SyntheticShapes(R, 1, seed=3, split="test", num_shapes=2).render(0)[0][None, 0].astype(np.float64)
W = np.zeros((1, R, R, k * k))
W[..., 1 * k + 2] = 1.0  # tap (m, n) = (1, 2): read the right neighbour
results = {"reference.warping": ref.pixelwise_warp(h, W, k),
           "port_numpy": port_numpy.pixelwise_warp(h, W, k),
           "port_numpy_flipped": port_numpy_flipped.pixelwise_warp(h, W, k)}
assert np.array_equal(results["port_numpy"], results["reference.warping"])
for _ in range(5):  # five more applications, so that the shift is visible
    results = {name: fn(out, W, k) for (name, out), fn in zip(results.items(), (
        ref.pixelwise_warp, port_numpy.pixelwise_warp, port_numpy_flipped.pixelwise_warp))}

fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
show(axes[0], h[0], "h")
for ax, (name, out) in zip(axes[1:4], results.items()):
    show(ax, out[0], f"{name}\n(6 applications)")
err = np.abs(results["port_numpy_flipped"] - results["reference.warping"]).max(axis=-1)[0]
show(axes[4], err, "|flipped - reference|", cmap="magma")
fig.suptitle("one-hot on tap (1, 2): the reference and the port move the picture left, the flipped port right",
             fontsize=10)
save(fig, "06_flipped_warp.png")
