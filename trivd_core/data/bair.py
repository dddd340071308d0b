"""BAIR Robot Pushing with the original and the *balanced* split of appendix C.1.

The original dataset has 43 264 training and 256 test trajectories of 30 frames
(64 x 64).  Appendix C.1: with only 256 test videos FVD is biased by ~100, so the
paper proposes a *balanced* split - train on the first 70% of the original training
set and evaluate on the remaining 30% together with the 256 original test
trajectories.  For the original sizes::

    balanced train = original train[:30284]                      30 284 trajectories
    balanced test  = original train[30284:] + original test      12 980 + 256 = 13 236

(``floor(0.7 * 43264) = 30284``; :func:`balanced_split` on index lists is the whole
rule and is what the tests check.)

Layout on disk (the dataset ships as TFRecords; convert it once, e.g. with the
usual SAVP / VideoGPT scripts, into one of these)::

    root/train/...   the original training trajectories
    root/test/...    the original test trajectories

where every trajectory is either a video file (``.mp4 .avi .webm .mkv``) or a
folder of image frames (``.png .jpg .jpeg .bmp``) - e.g. ``root/train/traj_123/0.png
... 29.png``.  *Order* defines "the first 70%": trajectories are ordered by the
natural order of their paths relative to ``train/`` (``traj_2`` before
``traj_10``; the conversion scripts name them by their position in the TFRecords).

``make_dataset("bair:ROOT", split=...)``: ``split`` is ``"train"`` / ``"test"``
under ``protocol="balanced"`` (the default, the paper's proposal) or
``protocol="original"``; ``"balanced_train"``, ``"balanced_test"``,
``"original_train"`` and ``"original_test"`` name the protocol in the split itself
(so ``trivd eval --data bair:ROOT --split original_test`` needs no other option).
A clip is ``t`` consecutive frames from a random start (``t <= 30``; the paper uses
1 conditioning + 15 predicted frames), resized to cover the target and randomly
cropped as everywhere else (a no-op at 64 x 64).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import ClipDataset, DataError, SkipClip, _check_t, adapt_channels, as_hw, resize_crop, to_unit_range
from .files import IMAGE_EXTENSIONS, list_frame_files, natural_key
from .videos import VIDEO_EXTENSIONS, read_clip

__all__ = [
    "BAIR_TRAIN_SIZE",
    "BAIR_TEST_SIZE",
    "BALANCED_TRAIN_FRACTION",
    "PROTOCOLS",
    "BAIR_SPLITS",
    "balanced_split",
    "bair_split",
    "parse_bair_split",
    "list_trajectories",
    "BairDataset",
]

BAIR_TRAIN_SIZE = 43_264
BAIR_TEST_SIZE = 256
#: Appendix C.1: "using only the first 70% of the train set for training".
BALANCED_TRAIN_FRACTION = 0.7
PROTOCOLS = ("balanced", "original")
BAIR_SPLITS = ("train", "test", "balanced_train", "balanced_test", "original_train", "original_test")


def balanced_split(train: Sequence, test: Sequence, fraction: float = BALANCED_TRAIN_FRACTION) -> dict[str, list]:
    """The balanced split of appendix C.1 from the original ``train`` and ``test`` lists (order kept).

    ``{"train": train[:n], "test": train[n:] + test}`` with ``n = floor(fraction * len(train))``
    (computed on the decimal value, so ``0.7 * 43264 = 30284.8`` gives 30284).
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < float(fraction) < 1.0:
        raise DataError(f"balanced_split(): argument 'fraction' must be in (0, 1), got {fraction!r}")
    train, test = list(train), list(test)
    n = math.floor(round(float(fraction) * len(train), 9))
    return {"train": train[:n], "test": train[n:] + test}


def parse_bair_split(split: str | None, protocol: str | None = None) -> tuple[str, str]:
    """``(protocol, "train" | "test")`` from a split name (see the module doc); ``None`` is ``"train"``."""
    split = "train" if split is None else split
    if split not in BAIR_SPLITS:
        raise DataError(f"BAIR split must be one of {', '.join(BAIR_SPLITS)}, got {split!r}")
    if "_" in split:
        named, part = split.split("_", 1)
        if protocol is not None and protocol != named:
            raise DataError(f"BAIR split {split!r} contradicts protocol={protocol!r}")
        return named, part
    protocol = "balanced" if protocol is None else protocol
    if protocol not in PROTOCOLS:
        raise DataError(f"BAIR protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return protocol, split


def bair_split(train: Sequence, test: Sequence, split: str | None, protocol: str | None = None) -> list:
    """The items of ``split`` (a name of :data:`BAIR_SPLITS`) under ``protocol`` from the original lists."""
    protocol, part = parse_bair_split(split, protocol)
    if protocol == "original":
        return list(train) if part == "train" else list(test)
    return balanced_split(train, test)[part]


def list_trajectories(folder: str | os.PathLike) -> list[str]:
    """Trajectories under ``folder``: video files and folders that directly hold image frames.

    Relative POSIX paths in natural order (the order that defines "the first 70%").
    """
    folder = Path(folder)
    exts_v = tuple(VIDEO_EXTENSIONS)
    exts_i = tuple(IMAGE_EXTENSIONS)
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        here = Path(dirpath)
        if any(n.lower().endswith(exts_i) and not n.startswith(".") for n in filenames) and here != folder:
            out.append(here.relative_to(folder).as_posix())
        for name in filenames:
            if name.lower().endswith(exts_v) and not name.startswith("."):
                out.append((here / name).relative_to(folder).as_posix())
    return sorted(out, key=natural_key)


class BairDataset(ClipDataset):
    """BAIR trajectories of one split (``protocol`` and ``split`` as in the module doc).

    ``items`` are ``("train" | "test", relative path)`` pairs in split order.
    """

    kind = "bair"

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        resolution: int | Sequence[int] = 64,
        t: int = 16,
        channels: int = 3,
        split: str | None = "train",
        protocol: str | None = None,
    ):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"BAIR root {str(root)!r} is not a folder")
        missing = [s for s in ("train", "test") if not (root / s).is_dir()]
        if missing:
            raise DataError(f"BAIR root {str(root)!r} needs the folders train/ and test/ (the original split); "
                            f"missing: {', '.join(missing)}")
        if channels not in (1, 3):
            raise DataError(f"BAIR gives 1 (grey) or 3 (RGB) channels, got channels={channels!r}")
        self.root = root
        self.protocol, self.part = parse_bair_split(split, protocol)
        self.split = split
        self.height, self.width = as_hw(resolution)
        self.t = _check_t(t)
        self.channels = int(channels)
        original = {s: [(s, p) for p in list_trajectories(root / s)] for s in ("train", "test")}
        for s, items in original.items():
            if not items:
                raise DataError(f"BAIR folder {str(root / s)!r} holds no trajectories (videos or frame folders)")
        self.items = bair_split(original["train"], original["test"], self.part, self.protocol)
        if not self.items:
            raise DataError(f"BAIR split {split!r} ({self.protocol}) of {str(root)!r} holds no trajectories")

    def __len__(self) -> int:
        return len(self.items)

    def describe(self, index: int) -> str:
        s, p = self.items[index]
        return f"{s}/{p}"

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "protocol": self.protocol, "split": self.part}

    def clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        s, rel = self.items[index]
        path = self.root / s / rel
        if path.is_dir():
            files = list_frame_files(path)
            if len(files) < self.t:
                raise SkipClip(f"too short: {len(files)} frames < t={self.t}")
            start = int(rng.integers(0, len(files) - self.t + 1))
            import imageio.v3 as iio

            try:
                frames = np.stack([np.asarray(iio.imread(f)) for f in files[start : start + self.t]])
            except Exception as exc:  # noqa: BLE001 - a bad frame skips the trajectory
                raise SkipClip(f"unreadable frame: {type(exc).__name__}: {exc}") from exc
            if frames.ndim == 3:
                frames = frames[..., None]
            if frames.shape[-1] in (2, 4):
                frames = frames[..., :-1]
            x = resize_crop(to_unit_range(frames, 0.0, 255.0), (self.height, self.width), rng)
            return np.clip(adapt_channels(x, self.channels), -1.0, 1.0)
        return read_clip(path, self.t, (self.height, self.width), rng, channels=self.channels)
