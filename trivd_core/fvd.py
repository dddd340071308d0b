"""The FVD and Inception Score pipeline (paper section 4.1, appendix C): videos -> I3D logits -> metric.

A *feature extractor* maps a batch of videos ``(B, T, H, W, C)`` (NumPy, values in
``[-1, 1]``) to a ``(B, D)`` float64 NumPy array of features, here the 400
Kinetics logits of I3D before the softmax (``D = 400``), which both FVD
(Unterthiner et al. 2018) and the video Inception Score use.  Two extractors:

* :class:`I3DExtractor` - the array-API I3D of :mod:`trivd_core.i3d` with NumPy
  weights (random ones from ``init_i3d`` or real ones from ``load_i3d_npz``), run on
  any backend;
* the TorchScript ``i3d_torchscript.pt`` of the StyleGAN-V / DIGAN FVD code,
  through the torch backend's ``load_i3d_torchscript``.

:func:`load_extractor` picks one by file suffix.  Both resize every frame
bilinearly to 224 x 224 first (:func:`trivd_core.i3d.preprocess`), as the
reference FVD code does.

The metrics themselves are :mod:`trivd_core.metrics` (float64, NumPy/SciPy):
:func:`fvd` is the Frechet distance between Gaussians fitted to the features of
two video sets, :func:`inception_score_of` the Inception Score of their logits.

This module imports no backend and looks none up: ``backend`` arguments are
objects with the ``Backend`` protocol (``backends.load(name)``); the TorchScript
extractor comes from the torch backend object (``load_i3d_torchscript``).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import i3d
from ._validate import check_positive_int
from .metrics import FewSamplesWarning, frechet_distance_from_features, inception_score
from .tree import tree_map

__all__ = [
    "FeatureExtractor",
    "I3DExtractor",
    "resolve_backend",
    "load_extractor",
    "extract_features",
    "fvd",
    "inception_score_of",
]


@runtime_checkable
class FeatureExtractor(Protocol):
    """``extractor(videos) -> features``: ``(B, T, H, W, C)`` NumPy in ``[-1, 1]`` -> ``(B, D)`` float64 NumPy."""

    def __call__(self, videos: np.ndarray) -> np.ndarray: ...


def resolve_backend(backend, fn: str = "resolve_backend"):
    """None -> None (plain NumPy); an object with ``asarray`` and ``to_numpy`` (a backend, ``backends.load(name)``)
    -> itself.  A backend *name* is refused with that hint: this module looks nothing up by name."""
    if backend is None:
        return None
    if isinstance(backend, str):
        raise TypeError(f"{fn}(): argument 'backend' must be None or a backend object, got the name {backend!r}: "
                        f"pass backends.load({backend!r})")
    if not (hasattr(backend, "asarray") and hasattr(backend, "to_numpy")):
        raise TypeError(
            f"{fn}(): argument 'backend' must be None or an object with asarray() and to_numpy() "
            f"(see backends.Backend), got {type(backend).__name__}"
        )
    return backend


def _check_resize(fn: str, resize) -> None:
    if resize not in i3d.RESIZE_GRIDS:
        raise ValueError(f"{fn}(): argument 'resize' must be one of {', '.join(map(repr, i3d.RESIZE_GRIDS))} "
                         f"(the reference FVD code's TF1 grid, or half-pixel centres), got {resize!r}")


def _check_videos(fn: str, name: str, videos) -> np.ndarray:
    v = np.asarray(videos)
    if v.ndim != 5:
        raise ValueError(f"{fn}(): argument '{name}' must be a 5-D array (B, T, H, W, C), got shape {v.shape}")
    if not np.issubdtype(v.dtype, np.floating):
        raise TypeError(f"{fn}(): argument '{name}' must be floating, in [-1, 1], got dtype {v.dtype}")
    if v.shape[0] < 1:
        raise ValueError(f"{fn}(): argument '{name}' must hold at least one video, got shape {v.shape}")
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{fn}(): argument '{name}' holds NaN or Inf values")
    if lo < -1.0 - RANGE_SLACK or hi > 1.0 + RANGE_SLACK:
        hint = " (frames in [0, 255]? map them with x / 127.5 - 1)" if hi > 2 else ""
        raise ValueError(f"{fn}(): argument '{name}' must hold frames in [-1, 1], got values in [{lo:g}, {hi:g}]{hint}")
    return v


#: How far outside [-1, 1] video values may lie (float32 rounding of a conversion from uint8 or [0, 1]).
RANGE_SLACK = 1e-3


class I3DExtractor:
    """I3D logits of :mod:`trivd_core.i3d` as a :class:`FeatureExtractor`.

    params: NumPy parameters (``init_i3d`` / ``load_i3d_npz``), converted once to
    the backend in ``dtype``.  backend: None (NumPy) or a backend object
    (``backends.load("jax")``, ...).  Videos are processed
    ``batch_size`` at a time: resized to ``image_size`` (None: keep the size, with
    ``pool="global"``, which accepts any size: tests use it) on the ``resize`` grid
    (:func:`trivd_core.i3d.preprocess`: ``"tf1"``, the reference FVD code's, or
    ``"half_pixel"``), then ``i3d_logits`` with ``pool`` (``"reference"``, the
    original's head, needs clips of at least 9 frames; see
    :func:`trivd_core.i3d.check_pool`).  Returns ``(B, num_classes)`` float64.
    """

    def __init__(self, params, backend=None, *, batch_size: int = 8, image_size=i3d.IMAGE_SIZE, dtype: str = "float32",
                 resize: str = "tf1", pool: str = "reference"):
        fn = "I3DExtractor"
        check_positive_int(fn, batch_size, "batch_size")
        _check_resize(fn, resize)
        if pool not in i3d.POOLS:
            raise ValueError(f"{fn}(): argument 'pool' must be one of {', '.join(map(repr, i3d.POOLS))}, got {pool!r}")
        self.resize = resize
        self.pool = pool
        if dtype not in ("float32", "float64"):
            raise ValueError(f"{fn}(): argument 'dtype' must be 'float32' or 'float64', got {dtype!r}")
        if image_size is not None:
            image_size = i3d.check_size(fn, image_size, "image_size")
        flat = i3d.flatten_i3d_params(params)  # checks the structure (and converts leaves to NumPy)
        params = i3d.unflatten_i3d_params(flat, source="argument 'params'", fn=fn)
        self.backend = resolve_backend(backend, fn)
        self.batch_size = batch_size
        self.image_size = image_size
        self.dtype = dtype
        self.num_classes = int(params["Logits"]["Conv3d_0c_1x1"]["b"].shape[0])
        self.in_channels = int(params["Conv3d_1a_7x7"]["w"].shape[-2])
        self._params = self._to_backend(params)
        size = image_size

        def run(p, x):
            return i3d.i3d_logits(p, x if size is None else i3d.preprocess(x, size, resize=resize), pool=pool)

        # Compile where the backend can (jax.jit; torch.compile only when the torch backend is
        # configured to); a compiled function is specialised to the batch shape, so the last,
        # smaller batch is then padded to batch_size (rows are independent) and cut back.
        jit = getattr(self.backend, "jit", None)
        self._run = run if jit is None else jit(run)
        self._pad = self._run is not run

    def check_clips(self, shape) -> None:
        """``ValueError`` (naming the pooling rule) unless clips of ``shape`` ``(N, T, H, W, C)`` can be scored."""
        t, h, w = shape[1:4]
        if self.image_size is not None:
            h, w = self.image_size
        i3d.check_pool("I3DExtractor", self.pool, t, h, w)

    def _to_backend(self, tree):
        if self.backend is None:
            return tree_map(lambda a: np.asarray(a, dtype=self.dtype), tree)
        return self.backend.asarray(tree, dtype=self.dtype)

    def _to_numpy(self, x) -> np.ndarray:
        return np.asarray(x if self.backend is None else self.backend.to_numpy(x), dtype=np.float64)

    def __call__(self, videos) -> np.ndarray:
        fn = "I3DExtractor"
        v = _check_videos(fn, "videos", videos)
        if v.shape[-1] != self.in_channels:
            raise ValueError(f"{fn}(): argument 'videos' must have C={self.in_channels} channels, got shape {v.shape}")
        self.check_clips(v.shape)
        out = []
        for start in range(0, v.shape[0], self.batch_size):
            batch = v[start : start + self.batch_size]
            n = batch.shape[0]
            if self._pad and n < self.batch_size and v.shape[0] > self.batch_size:
                batch = np.concatenate([batch, np.zeros((self.batch_size - n, *batch.shape[1:]), batch.dtype)])
            x = self._to_backend(np.ascontiguousarray(batch))
            out.append(self._to_numpy(self._run(self._params, x))[:n])
        return np.concatenate(out, axis=0)

    def __repr__(self) -> str:
        name = "numpy" if self.backend is None else getattr(self.backend, "name", type(self.backend).__name__)
        return (f"I3DExtractor(num_classes={self.num_classes}, backend={name!r}, batch_size={self.batch_size}, "
                f"image_size={self.image_size}, dtype={self.dtype!r}, resize={self.resize!r}, pool={self.pool!r})")


def load_extractor(path=None, *, sha256: str | None = None, trust: bool = False, backend=None,
                   **options: Any) -> FeatureExtractor:
    """A feature extractor from a weights file, chosen by suffix; SHA-256 verified when ``sha256`` is given.

    * ``.npz``: :func:`trivd_core.i3d.load_i3d_npz` -> :class:`I3DExtractor` on
      ``backend`` (None: NumPy; or a backend object).
    * ``.pt`` / ``.pth``: the TorchScript ``i3d_torchscript.pt`` through
      ``backend.load_i3d_torchscript`` - the torch backend's (``backends.load("torch")``;
      pass ``device="cuda"`` in ``options`` to run it on a GPU).  Loading TorchScript runs
      code from the file: it is refused unless ``sha256`` is given (and matches), the
      file's hash is pinned, or ``trust=True``.

    ``path`` None means ``$TRIVD_I3D_WEIGHTS``; no path, or a missing file, raises
    ``FileNotFoundError`` saying where such weights come from.  ``options`` go to
    the extractor (``batch_size``, ``image_size``, ``resize``, ``dtype`` / ``device``).
    """
    fn = "load_extractor"
    path = i3d.resolve_weights_path(path, fn)
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix == ".npz":
        return I3DExtractor(i3d.load_i3d_npz(path, sha256=sha256), backend, **options)
    if suffix in (".pt", ".pth"):
        loader = getattr(backend, "load_i3d_torchscript", None)
        if loader is None:
            raise ValueError(f"{fn}(): a TorchScript I3D ({os.path.basename(os.fspath(path))}) runs on the torch "
                             "backend: pass backend=backends.load('torch') (or an .npz of the weights for any backend)")
        return loader(path, sha256=sha256, trust=trust, **options)
    raise ValueError(
        f"{fn}(): cannot tell the weights format of {os.fspath(path)!r} from its suffix {suffix!r}: "
        "expected .npz (NumPy I3D weights) or .pt (TorchScript i3d_torchscript.pt)"
    )


def extract_features(videos, extractor: FeatureExtractor, *, name: str = "videos") -> np.ndarray:
    """``extractor(videos)``, checked: a finite ``(B, D)`` float64 array with one row per video."""
    fn = "extract_features"
    if not callable(extractor):
        raise TypeError(f"{fn}(): argument 'extractor' must be callable (a FeatureExtractor), got {type(extractor).__name__}")
    v = _check_videos(fn, name, videos)
    f = np.asarray(extractor(v), dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != v.shape[0]:
        raise ValueError(f"{fn}(): the extractor must return ({v.shape[0]}, D) features for '{name}', got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{fn}(): the extractor returned non-finite features for '{name}'")
    return f


def fvd(real, fake, extractor: FeatureExtractor) -> float:
    """Frechet Video Distance: :func:`trivd_core.metrics.frechet_distance_from_features` of the two feature sets.

    real, fake: ``(N, T, H, W, C)`` and ``(M, T, H, W, C)`` NumPy videos in
    ``[-1, 1]`` (N, M >= 2) of one shape per video: I3D pools over time and space, so
    it would return features for clips of other lengths or sizes, but their distance
    would measure the difference in shape, not in content (``ValueError``).  Warns :class:`~trivd_core.metrics.FewSamplesWarning`
    (a ``UserWarning``) when N or M is below the feature dimension (400 for I3D):
    the covariance is then rank-deficient and FVD biased (papers use thousands of
    videos).
    """
    r, f = np.shape(real), np.shape(fake)
    if len(r) == 5 and len(f) == 5 and r[1:] != f[1:]:
        raise ValueError(f"fvd(): arguments 'real' and 'fake' must be videos of one shape (T, H, W, C), got "
                         f"{tuple(r[1:])} and {tuple(f[1:])}: compare clips of the same length and size")
    a = extract_features(real, extractor, name="real")
    b = extract_features(fake, extractor, name="fake")
    d = a.shape[1]
    if min(a.shape[0], b.shape[0]) < d:
        warnings.warn(
            f"fvd(): {a.shape[0]} real and {b.shape[0]} fake videos for {d} features; the covariances are "
            "rank-deficient and the FVD is biased (use at least as many videos as features)",
            FewSamplesWarning,
            stacklevel=2,
        )
    with warnings.catch_warnings():  # said once, above, in terms of videos
        warnings.simplefilter("ignore", FewSamplesWarning)
        return frechet_distance_from_features(a, b)


def inception_score_of(videos, extractor: FeatureExtractor, splits: int = 10) -> tuple[float, float]:
    """Inception Score ``(mean, std)`` over ``splits`` of the extractor's logits of ``videos`` (section 4.1)."""
    return inception_score(extract_features(videos, extractor), splits)
