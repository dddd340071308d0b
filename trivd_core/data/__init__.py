"""Data pipeline: datasets of video clips and a deterministic, resumable, parallel loader.

Backend-agnostic: everything is NumPy.  A dataset gives clips ``(T, H, W, C)``
float32 in ``[-1, 1]``; :class:`Loader` stacks them into batches ``(B, T, H, W, C)``.

>>> ds = make_dataset("synthetic", resolution=64, t=16)
>>> with Loader(ds, batch_size=8, seed=0) as loader:
...     batch = loader.next_batch()          # (8, 16, 64, 64, 3) float32
...     state = loader.state_dict()          # save with the checkpoint; load_state_dict to resume

See docs/data.md for the formats, options and the determinism / resume guarantees.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path

from .arrays import ArrayDataset, holdout_split, open_array, read_index_file
from .bair import BAIR_SPLITS, BairDataset, bair_split, balanced_split
from .base import ClipDataset, DataError, DataWarning, SkipClip, area_resize, readable_clips
from .files import IMAGE_EXTENSIONS, read_frames
from .loader import Loader
from .synthetic import ShapeTracks, SyntheticShapes, write_video
from .videos import VIDEO_EXTENSIONS, VideoFolderDataset, list_videos, read_clip

__all__ = [
    "make_dataset",
    "DEMO_OPTIONS",
    "DEMO16_OPTIONS",
    "ClipDataset",
    "SyntheticShapes",
    "ShapeTracks",
    "ArrayDataset",
    "VideoFolderDataset",
    "BairDataset",
    "BAIR_SPLITS",
    "balanced_split",
    "bair_split",
    "holdout_split",
    "read_index_file",
    "read_frames",
    "IMAGE_EXTENSIONS",
    "Loader",
    "DataError",
    "DataWarning",
    "SkipClip",
    "readable_clips",
    "VIDEO_EXTENSIONS",
    "area_resize",
    "list_videos",
    "open_array",
    "read_clip",
    "write_video",
]


#: ``"synthetic:demo"``: one square or disc on a flat background colour, moving 6-10% of the frame per
#: frame (1.9-3.2 px at 32x32) in a straight line (no bounce during the clip).  The shapes move by
#: several pixels over the predicted frames, and two conditioning frames determine the future: with
#: bounces (the default synthetic data) 41% of the demo's test clips bounce within the five frames,
#: and the model learned to jump one step and then freeze (docs/training.md).
DEMO_OPTIONS = {"num_shapes": 1, "texture": 0.0, "speed_range": (0.06, 0.1), "bounces": False}
#: ``"synthetic:demo16"``: the demo's scene for 16-frame clips (the ``demo16`` config, FVD's clip length): one
#: shape on a flat background, 3-5% of the frame per frame (1.0-1.6 px at 32x32) so that it crosses the frame
#: in a straight line over the 16 frames (15-24 px) without a bounce.
DEMO16_OPTIONS = {**DEMO_OPTIONS, "speed_range": (0.03, 0.05)}


def make_dataset(
    spec: str | os.PathLike,
    *,
    resolution: int | Sequence[int] = 64,
    t: int = 16,
    channels: int = 3,
    split: str | None = "train",
    seed: int = 0,
    **options,
) -> ClipDataset:
    """The one entry point (the CLI's ``--data``): build a dataset from a spec string.

    ``spec`` is

    * ``"synthetic"`` or ``"synthetic:pan"`` (camera pan) - :class:`SyntheticShapes`,
      clip ``i`` a pure function of ``(seed, split, i)``; ``"synthetic:demo"`` - the
      same class with :data:`DEMO_OPTIONS` (the README demo's data; ``options``
      override single entries); ``"synthetic:demo16"`` - :data:`DEMO16_OPTIONS` (slower shapes, for
      16-frame clips);
    * a ``.npy`` / ``.npz`` file - :class:`ArrayDataset` (memory-mapped; options
      ``layout``, ``key``, ``value_range``, ``grey``, ``cache_dir``, ``split_file``,
      ``holdout``; ``split`` is ``"train"``/``None`` = the whole file unless the file
      has a split - see :mod:`trivd_core.data.arrays`; ``seed`` does not apply);
    * a folder of videos - :class:`VideoFolderDataset` (options ``split_file``,
      ``holdout``, ``extensions``, ``interpolation``, ``seek``, ``decoder_threads``, ``clips_per_video``;
      ``seed`` does not apply: the loader's seed drives start frames and crops);
    * ``"bair:ROOT"`` - :class:`BairDataset`, BAIR Robot Pushing with ``split`` one of
      ``train``/``test`` (option ``protocol="balanced"`` (default, appendix C.1) or
      ``"original"``) or ``balanced_train``, ``balanced_test``, ``original_train``,
      ``original_test``.

    ``options`` go to the dataset class.  A missing path, an empty folder or a
    malformed file raises :class:`DataError` here, before anything starts.
    """
    text = os.fspath(spec)
    if text in ("synthetic", "synthetic:pan"):
        return _build(SyntheticShapes, text, options, resolution, t, channels, seed=seed, split=split,
                      pan=text.endswith(":pan"))
    if text in ("synthetic:demo", "synthetic:demo16"):
        base = DEMO_OPTIONS if text == "synthetic:demo" else DEMO16_OPTIONS
        return _build(SyntheticShapes, text, {**base, **options}, resolution, t, channels, seed=seed, split=split)
    if text.startswith("synthetic"):
        raise DataError(f"unknown synthetic dataset {text!r}: use 'synthetic', 'synthetic:pan', 'synthetic:demo' "
                        "or 'synthetic:demo16'")
    if text.startswith("bair:"):
        return _build(BairDataset, text, options, text[len("bair:"):], resolution=resolution, t=t, channels=channels,
                      split=split)
    path = Path(text)
    if not path.exists():
        raise DataError(f"dataset path {text!r} does not exist (nor is it one of 'synthetic:demo' (the default), "
                        "'synthetic', 'synthetic:pan')")
    if path.is_file() and path.suffix.lower() in (".npy", ".npz"):
        return _build(ArrayDataset, text, options, path, resolution=resolution, t=t, channels=channels, split=split)
    if path.is_dir():
        return _build(VideoFolderDataset, text, options, path, resolution=resolution, t=t, channels=channels,
                      split=split)
    raise DataError(f"dataset path {text!r} is neither a .npy/.npz file nor a folder of videos")


def _build(cls, spec: str, options: dict, *args, **fixed):
    """``cls(*args, **fixed, **options)`` with unknown or ill-typed ``options`` reported as :class:`DataError`."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    taken = {p.name for p in params[:len(args)]} | set(fixed)
    accepted = [p.name for p in params if p.name not in taken and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DataError(f"{spec!r}: unknown dataset option(s) {', '.join(unknown)}; {cls.__name__} accepts "
                        f"{', '.join(accepted) or 'none'}")
    try:
        return cls(*args, **fixed, **options)
    except (TypeError, AttributeError) as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise DataError(f"{spec!r}: invalid dataset option value(s) ({given}): {exc}") from exc
