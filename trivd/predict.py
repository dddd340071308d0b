"""``trivd predict``: the continuation of a video, a frame folder or ``.npy`` clips.

A video or GIF shows the ground truth beside the prediction and, with ``--motion``, the
multi-scale motion field of Fig. 3; ``--out .npy`` writes the predicted clips as an array.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._common import parse_options
from .evaluate import add_model_args, merged_options, model_from_args, standing_stats

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict the continuation of a real clip; MP4/GIF with truth | prediction "
                                       "[| motion field]")
    add_model_args(p)
    p.add_argument("--input", required=True,
                   help="a video file, a folder of image frames, or a .npy clip; with --out .npy a .npy array of N "
                        "clips (N, T, H, W, C) in [-1, 1], T >= t_cond")
    p.add_argument("--out", required=True,
                   help="output .mp4 (.mkv, .mov, .avi, .webm) or .gif; or .npy: the clips (N, t_cond + t_pred, H, W, C) "
                        "float32 in [-1, 1], conditioning frames then predicted ones")
    p.add_argument("--batch-size", type=int, default=32, help="clips per forward pass with --out .npy (default 32)")
    p.add_argument("--motion", action="store_true", help="add the multi-scale motion field of Fig. 3 and its colour key")
    p.add_argument("--motion-stages", default=None, metavar="LIST",
                   help="generator stages combined into the motion field, coarse to fine: e.g. 1,2, 0,1,2 or all "
                        "(default: the two coarsest stages of at least 16x16; (2,) at 32x32, the paper's 0,1 at 128x128)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent (default 0)")
    p.add_argument("--data", default=None,
                   help="data for the standing statistics (default: the run's training data)")
    p.add_argument("--fps", type=float, default=4.0, help="frames per second of the output (default 4)")
    p.add_argument("--scale", type=int, default=None, help="enlarge each panel by this factor (default: >= 128 px)")


def run(args: argparse.Namespace) -> int:
    """``trivd predict``: 0 with the output written, 2 on a usage or data error."""
    from trivd_core.data import DataError, make_dataset
    from trivd_core.evaluate import EvalError
    from trivd_core.predict import (
        check_motion_cell,
        input_notes,
        predict_batch,
        predict_clip,
        read_clips,
        read_input,
        render_prediction,
        source_size,
        write_frames,
    )

    batch_mode = str(args.out).lower().endswith(".npy")
    if batch_mode and args.motion:
        print("trivd predict: --motion draws the motion field into a video; it does not apply to --out .npy",
              file=sys.stderr)
        return 2
    out_parent = os.path.dirname(os.path.abspath(str(args.out)))
    if not os.path.isdir(out_parent):
        print(f"trivd predict: --out {args.out}: the folder {out_parent} does not exist", file=sys.stderr)
        return 2
    try:
        stages = None  # predict_clip: default_stages(config)
        if args.motion_stages is not None:
            text = args.motion_stages.strip().lower()
            try:
                stages = "all" if text == "all" else tuple(int(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise EvalError(f"--motion-stages must be 'all' or a comma-separated list of stage indices, got "
                                f"{args.motion_stages!r}") from None
        if args.fps <= 0:
            raise EvalError(f"--fps must be positive, got {args.fps}")
        if args.batch_size < 1:
            raise EvalError(f"--batch-size must be >= 1, got {args.batch_size}")
        options = parse_options("predict", args.data_option)
        run, model, backend_name = model_from_args("predict", args)
        cfg = run.config
        options = merged_options(run, args, options)
        frames = read_clips(args.input, cfg) if batch_mode else read_input(args.input, cfg)
        if args.motion:
            check_motion_cell(cfg)  # before any standing-statistics work
        print(args.threads_line, file=sys.stderr)
        ds = None
        data = args.data or run.data or "synthetic"
        if not args.no_standing:
            try:
                ds = make_dataset(data, split="train", resolution=cfg.resolution, t=cfg.t_total,
                                  channels=cfg.channels, seed=run.seed, **options)
            except DataError as exc:
                print(f"trivd predict: the run's data {data!r} cannot be opened for the standing statistics ({exc})",
                      file=sys.stderr)
        standing = standing_stats("predict", args, model, [(f"{data} (train split)", ds)])
        if batch_mode:
            from trivd_core.files import atomic_write_bytes

            clips = predict_batch(model, frames, seed=args.seed, batch_size=args.batch_size)
            import io

            import numpy as np

            buf = io.BytesIO()
            np.save(buf, clips, allow_pickle=False)
            atomic_write_bytes(args.out, buf.getvalue())
            print(f"trivd predict: {cfg.name} step {run.step} on {backend_name} ({'EMA' if model.ema else 'live'} "
                  f"weights, standing statistics: {standing}): wrote {args.out} {clips.shape} float32 "
                  f"({cfg.t_cond} conditioning + {cfg.t_pred} predicted frames per clip, in [-1, 1])")
            return 0
        pred = predict_clip(model, frames, seed=args.seed, motion=args.motion, stages=stages)
        notes = input_notes(source_size(args.input), pred.cond, cfg, data)
        for note in notes:
            print(f"trivd predict: note: {note}", file=sys.stderr)
        video = render_prediction(pred, scale=args.scale, notes=notes,
                                  title=f"trivd predict: {cfg.name} step {run.step}, {os.path.basename(str(args.input))}")
        path = write_frames(args.out, video, fps=args.fps)
    except (EvalError, ValueError) as exc:
        msg = str(exc)
        print(msg if msg.startswith("trivd predict") else f"trivd predict: {msg}", file=sys.stderr)
        return 2
    have = pred.truth.shape[0]
    print(f"trivd predict: {cfg.name} step {run.step} on {backend_name} ({'EMA' if model.ema else 'live'} weights, "
          f"standing statistics: {standing}): {cfg.t_cond} conditioning + {cfg.t_pred} predicted frames"
          + ("" if have == cfg.t_pred else f" (the input has ground truth for {have} of them)"))
    if pred.motion is not None:
        import numpy as np

        speed = np.hypot(pred.motion[..., 0], pred.motion[..., 1])
        print(f"trivd predict: motion field of stage{'s' if len(pred.stages) > 1 else ''} "
              f"{','.join(map(str, pred.stages))} (coarse to fine), colour = "
              f"direction (red right, cyan left), brightness = speed, full at {pred.speed_scale:.2f} px/frame (the "
              f"most these stages can express); this clip: median {float(np.median(speed)):.2f}, fastest "
              f"{float(speed.max()):.2f} px/frame; key: the colour wheel")
    print(f"trivd predict: wrote {path} ({video.shape[0]} frames of {video.shape[2]}x{video.shape[1]})")
    return 0
