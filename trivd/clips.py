"""``trivd clips``: write clips of a run's data (or any data source) as ``.npy`` or as a video, for predict and fvd.

``trivd clips --checkpoint runs/demo --out clips.npy`` writes the first ``-n`` clips of the
run's own data, its held-out ``test`` split, at the model's size: ``(N, T, H, W, C)`` float32
in ``[-1, 1]``, what ``trivd predict --input clips.npy --out pred.npy`` reads.  With a
``.mp4`` / ``.gif`` output it writes the first clip as a video (``trivd predict --input
clip.mp4``).  Without ``--checkpoint``, ``--data`` names the source and ``--frames``,
``--resolution``, ``--channels`` the clip shape (16-frame clips for ``trivd fvd``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._common import parse_options

__all__ = ["add_parser", "run"]

_VIDEO = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".gif")


def add_parser(sub) -> None:
    p = sub.add_parser("clips", help="write clips of a run's data (or of --data) as .npy, or one as MP4/GIF, for "
                                     "predict and fvd")
    p.add_argument("--out", required=True, help="a .npy file (N clips) or a .mp4/.mkv/.mov/.avi/.webm/.gif (one clip)")
    p.add_argument("--checkpoint", default=None, metavar="RUN",
                   help="a run directory: its data, seed and clip shape (default data: synthetic:demo)")
    p.add_argument("--data", default=None, help="the data source (default: the run's, else synthetic:demo)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option (repeatable), as for trivd train")
    p.add_argument("--split", default="test", help="split to read (default test: clips no run trained on)")
    p.add_argument("-n", "--num", type=int, default=8, help="clips to write (default 8; a video holds the first)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the run's t_cond + t_pred, else 16)")
    p.add_argument("--resolution", type=int, default=None, help="height = width (default: the run's, else 32)")
    p.add_argument("--channels", type=int, default=None, help="1 or 3 (default: the run's, else 3)")
    p.add_argument("--seed", type=int, default=None, help="data seed (default: the run's, else 0)")
    p.add_argument("--fps", type=float, default=4.0, help="frames per second of a video output (default 4)")


def run(args: argparse.Namespace) -> int:
    """``trivd clips``: 0 with the file written, 2 on a usage or data error (one line)."""
    import numpy as np

    from trivd_core.data import DataError, make_dataset, readable_clips
    from trivd_core.evaluate import EvalError, open_run

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix != ".npy" and suffix not in _VIDEO:
        print(f"trivd clips: --out {out}: expected a .npy file or a video ({', '.join(_VIDEO)})", file=sys.stderr)
        return 2
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        print(f"trivd clips: --out {out}: its folder does not exist", file=sys.stderr)
        return 2
    for name in ("num", "frames", "resolution"):
        v = getattr(args, name)
        if v is not None and v < 1:
            print(f"trivd clips: --{name} must be >= 1, got {v}", file=sys.stderr)
            return 2
    if args.channels is not None and args.channels not in (1, 3):
        print(f"trivd clips: --channels must be 1 or 3, got {args.channels}", file=sys.stderr)
        return 2
    try:
        options = parse_options("clips", args.data_option)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    t, res, ch, seed, data = 16, 32, 3, 0, "synthetic:demo"
    if args.checkpoint is not None:
        try:
            ckpt = open_run(args.checkpoint)
        except EvalError as exc:
            print(f"trivd clips: --checkpoint {args.checkpoint}: {exc}", file=sys.stderr)
            return 2
        cfg = ckpt.config
        t, res, ch, seed = cfg.t_total, cfg.resolution, cfg.channels, ckpt.run_config.get("seed", 0)
        data = ckpt.data or data
        if args.data is None or args.data == ckpt.data:
            options = {**ckpt.data_options, **options}
    data = args.data or data
    t = args.frames or t
    res = args.resolution or res
    ch = args.channels or ch
    seed = seed if args.seed is None else args.seed
    try:
        ds = make_dataset(data, resolution=res, t=t, channels=ch, split=args.split, seed=seed, **options)
        clips, _ = readable_clips(ds, min(args.num, len(ds)), np.random.default_rng([int(seed), 0x636C]))
    except (DataError, ValueError) as exc:
        print(f"trivd clips: --data {data} --split {args.split}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    clips = np.stack([np.asarray(c, np.float32) for c in clips])
    if suffix == ".npy":
        np.save(out, clips)
        print(f"trivd clips: {out}: {clips.shape[0]} clips (N, T, H, W, C) = {tuple(clips.shape)} float32 in [-1, 1] "
              f"of {data} ({args.split} split, seed {seed})")
        return 0
    from trivd_core.media import to_uint8
    from trivd_core.predict import PredictError, write_frames

    frames = to_uint8(clips[0])
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    try:
        write_frames(out, frames, fps=args.fps)
    except PredictError as exc:
        print(f"trivd clips: {exc}", file=sys.stderr)
        return 2
    print(f"trivd clips: {out}: one clip of {t} frames, {res}x{res}, of {data} ({args.split} split, seed {seed})")
    return 0
