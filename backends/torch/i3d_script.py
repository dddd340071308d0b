"""The TorchScript I3D of the StyleGAN-V / DIGAN FVD code (``i3d_torchscript.pt``) as a trivd feature extractor.

That file is a scripted PyTorch port of the TF-Hub ``i3d-kinetics-400`` model.
The FVD codes that use it call it as::

    detector = torch.jit.load(path).eval()
    feats = detector(videos, rescale=..., resize=..., return_features=True)   # (B, 400)

with ``videos`` a float tensor ``(B, C, T, H, W)`` (channels first, time second).
``return_features=True`` returns the 400 logits before the softmax (what FVD
compares).  StyleGAN-V's ``metrics/frechet_video_distance.py`` passes
``rescale=True, resize=True`` and feeds ``[0, 255]`` frames of any size: the
module then maps them to ``[-1, 1]`` and resizes to 224 x 224 itself.  The
"fvd-comparison" scripts and several follow-ups pass
``rescale=False, resize=False`` and feed videos already in ``[-1, 1]`` at
224 x 224.  This extractor does the latter: trivd videos are ``[-1, 1]`` already,
and the resize is :func:`trivd_core.i3d.preprocess`, by default on the grid of
the reference FVD code (google-research ``frechet_video_distance.py`` resizes
with TF1's ``tf.image.resize_bilinear``: ``align_corners=False,
half_pixel_centers=False``, source coordinate ``i * in / out``; ``resize=
"half_pixel"`` gives TF2's / torch's half-pixel centres instead), so that the npz
and TorchScript paths see the same frames.

No weights are shipped; see ``trivd_core.i3d.WEIGHTS_HELP`` for where the file
comes from.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from trivd_core import i3d
from trivd_core._validate import check_positive_int

from . import _fast

__all__ = ["TorchScriptI3D", "load_i3d_torchscript", "DETECTOR_KWARGS", "PINNED_SHA256", "UntrustedFile"]

#: SHA-256 of TorchScript files trusted without being asked, with the public source that states each one.
#: Empty: the common ``i3d_torchscript.pt`` is distributed (StyleGAN-V, DIGAN, common_metrics_on_video_quality)
#: without a published checksum, and a hash computed here would vouch for whatever copy was downloaded.
PINNED_SHA256: dict[str, str] = {}


class UntrustedFile(ValueError):
    """A TorchScript file was to be loaded without a checksum or an explicit statement of trust."""

#: How the FVD codes call the module on [-1, 1] videos at 224 x 224.
DETECTOR_KWARGS = {"rescale": False, "resize": False, "return_features": True}


class TorchScriptI3D:
    """A scripted I3D module as a ``FeatureExtractor``: ``(B, T, H, W, C)`` NumPy in ``[-1, 1]`` -> ``(B, D)`` float64.

    Each batch of ``batch_size`` videos becomes a float32 tensor on ``device``, is
    resized to ``image_size`` (None: as given) with ``trivd_core.i3d.preprocess`` on the
    ``resize`` grid (``"tf1"``, the reference FVD code's, or ``"half_pixel"``),
    permuted to ``(B, C, T, H, W)`` and passed as
    ``module(x, rescale=False, resize=False, return_features=True)`` under
    ``torch.no_grad()``.
    """

    def __init__(self, module, *, device="cpu", batch_size: int = 8, image_size=i3d.IMAGE_SIZE, resize: str = "tf1"):
        fn = "TorchScriptI3D"
        check_positive_int(fn, batch_size, "batch_size")
        if resize not in i3d.RESIZE_GRIDS:
            raise ValueError(f"{fn}(): argument 'resize' must be one of {', '.join(map(repr, i3d.RESIZE_GRIDS))}, "
                             f"got {resize!r}")
        self.resize = resize
        if image_size is not None:
            image_size = i3d.check_size(fn, image_size, "image_size")
        self.module = module
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.image_size = image_size

    def __call__(self, videos) -> np.ndarray:
        fn = "TorchScriptI3D"
        v = np.asarray(videos)
        if v.ndim != 5:
            raise ValueError(f"{fn}(): argument 'videos' must be a 5-D array (B, T, H, W, C), got shape {v.shape}")
        if not np.issubdtype(v.dtype, np.floating):
            raise TypeError(f"{fn}(): argument 'videos' must be floating, in [-1, 1], got dtype {v.dtype}")
        out = []
        with torch.no_grad():
            for start in range(0, v.shape[0], self.batch_size):
                x = torch.as_tensor(np.ascontiguousarray(v[start : start + self.batch_size]), dtype=torch.float32)
                x = x.to(self.device)
                if self.image_size is not None:
                    x = i3d.preprocess(x, self.image_size, resize=self.resize)
                x = x.permute(0, 4, 1, 2, 3).contiguous()  # (B, T, H, W, C) -> (B, C, T, H, W)
                feats = self.module(x, **DETECTOR_KWARGS)
                out.append(feats.detach().to("cpu", torch.float64).numpy())
        f = np.concatenate(out, axis=0)
        if f.ndim != 2 or f.shape[0] != v.shape[0]:
            raise ValueError(f"{fn}(): the TorchScript module returned shape {f.shape} for {v.shape[0]} videos; "
                             "expected (B, D) features")
        return f

    def __repr__(self) -> str:
        return (f"TorchScriptI3D(device={str(self.device)!r}, batch_size={self.batch_size}, image_size={self.image_size}, "
                f"resize={self.resize!r})")


def load_i3d_torchscript(path, *, sha256: str | None = None, trust: bool = False, device="cpu", batch_size: int = 8,
                         image_size=i3d.IMAGE_SIZE, resize: str = "tf1") -> TorchScriptI3D:
    """Load ``i3d_torchscript.pt`` (``torch.jit.load``, in eval mode on ``device``) as a :class:`TorchScriptI3D`.

    ``path`` None means ``$TRIVD_I3D_WEIGHTS``.  A missing file raises
    ``FileNotFoundError`` saying where the file comes from; with ``sha256`` the
    file's SHA-256 is checked first (``ValueError`` with both hashes on mismatch).

    Loading TorchScript executes code from the file, so a file is loaded only when
    its SHA-256 is given (``sha256``) and matches, is in :data:`PINNED_SHA256`, or
    ``trust=True`` says the caller vouches for it; otherwise :class:`UntrustedFile`
    (a ``ValueError``) names the file's hash and the three ways out.
    """
    fn = "load_i3d_torchscript"
    _fast.activate()  # the F.interpolate resize fast path (and TF32 off, as for every torch computation in trivd)
    path = i3d.resolve_weights_path(path, fn)
    if sha256 is not None:
        i3d.verify_sha256(path, sha256, fn=fn)
    elif not trust:
        actual = i3d.file_sha256(path)
        if actual not in PINNED_SHA256:
            raise UntrustedFile(
                f"{fn}(): refusing to load {os.fspath(path)!r}: loading TorchScript runs code stored in the file "
                f"(its __setstate__ on load, its forward on use), and this file's SHA-256 {actual} is neither pinned "
                "nor given. Pass the checksum you obtained with the file (sha256=..., `trivd eval --i3d-sha256 HEX`) "
                "or say that you trust it (trust=True, `trivd eval --trust-i3d`); an .npz of the weights "
                "(arrays only, no code) needs neither.")
    try:
        module = torch.jit.load(os.fspath(path), map_location=torch.device(device))
    except RuntimeError as exc:
        raise ValueError(f"{fn}(): {os.fspath(path)!r} is not a loadable TorchScript file ({exc}). "
                         f"{i3d.WEIGHTS_HELP}") from exc
    module.eval()
    return TorchScriptI3D(module, device=device, batch_size=batch_size, image_size=image_size, resize=resize)
