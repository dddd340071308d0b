"""Evaluation of a trained run (``trivd eval``): SSIM/PSNR best-of-l, the copy baseline, FVD/IS.

Paper section 4.1 (FVD, IS), appendix C.1 (per-frame SSIM of the best of l sampled
continuations, Fig. 5), appendix D.3 (the copy-last-frame baseline) and E.2 (EMA
weights and standing statistics for every evaluation).  NumPy at the boundary: the
generator runs on a backend (an engine's compiled ``predict`` where the backend has
an engine, otherwise trivd_core's ``generate`` on the backend's arrays); this module
imports no backend - the caller (the CLI) passes one in.

Pieces:

* :func:`open_run` - a run directory (or a checkpoint ``.json``, or a ``checkpoints/``
  folder) -> :class:`RunCheckpoint`: the newest intact checkpoint's arrays, the
  config, the run's ``config.json``.
* :class:`Model` - a generator ready to sample: EMA weights by default, standing
  statistics (:meth:`Model.accumulate_standing_stats`, appendix E.2), latents with
  optional truncation (:meth:`Model.latents`), ``predict`` and ``predict_with_warps``
  (the recurrent transformations, for :mod:`trivd_core.predict`).
* :func:`standing_batches` - ``(cond, z)`` batches of real conditioning frames.
* :func:`evaluate` - the protocol; :func:`write_report` - ``eval.json`` and the plots.

Decisions (also in docs/evaluation.md):

* **Clips.**  ``min(num_samples, len(dataset))`` clips of the split, drawn by a
  :class:`~trivd_core.data.Loader` with ``shuffle=True`` and the evaluation seed (a
  random subset when the split is larger, every clip otherwise), first ``t_cond``
  frames conditioning, the next ``t_pred`` the ground truth.
* **Latents.**  One generator ``default_rng([seed, 0x6576616C])`` draws, per batch,
  ``(l, B, z_dim)`` latents (truncated normal at ``truncation`` if given).
* **Best of l** is :func:`trivd_core.metrics.best_of` per batch (the sample with the
  highest mean SSIM per clip); the curves are means over all clips of the kept
  samples' per-frame values.  The copy baseline is the same computation on
  ``copy_last_frame(cond, t_pred)`` as a single (l = 1) sample.
* **Standing statistics** (E.2) are recomputed for every evaluation from
  ``config.standing_batches`` batches of real conditioning frames (the training split
  of the evaluated source when it has one, else the evaluated split) with latents
  from the same distribution as the samples (truncation included), for the weights
  being evaluated (EMA or live).  Per-batch statistics are averaged in float64.
* **Padding.**  With standing statistics a short last batch is padded to the batch
  size (repeating its last clip; the extra rows are dropped), so a compiled
  ``predict`` keeps one shape; without them the batch is run as it is (padding would
  change the batch statistics).
* **FVD / IS** (only with an extractor, e.g. I3D weights): features of the whole clip
  ``[cond; continuation]`` (16 frames for the paper's 5 + 11), real ``[cond; truth]``
  against the model's first sample and against the copy baseline, and the real-vs-real
  floor: the same real clips against ``N`` further, disjoint real clips of the split (the
  same N and pipeline; when the split is too small, two halves of the real clips, with a
  note); IS from the model's logits (``splits = min(10, N)``).
* **JSON.**  Non-finite numbers (PSNR is ``+inf`` for a frame equal to the truth) are
  written as ``null``; ``psnr_infinite`` counts such clip-frames.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import generator, metrics
from .configs import Config, config_from_mapping
from .data import Loader
from .fvd import extract_features
from .media import plot_curves
from .train import rundir
from .train.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    checkpoint_problem,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from .tree import tree_map

__all__ = [
    "EvalError",
    "RunCheckpoint",
    "Model",
    "open_run",
    "config_from_dict",
    "check_data_fits",
    "standing_batches",
    "evaluate",
    "write_report",
    "plot_curves",
    "EVAL_FORMAT",
]

EVAL_FORMAT = "trivd-eval/1"
_LATENT_STREAM = 0x6576616C  # "eval"
_STANDING_STREAM = 0x7374616E  # "stan"


class EvalError(ValueError):
    """A run, checkpoint, data source or option that evaluation or prediction cannot use (a usage error)."""


# ---------------------------------------------------------------------------
# runs and checkpoints


def config_from_dict(d: Mapping) -> Config:
    """The :class:`Config` of a saved ``config.to_dict()`` (:func:`~trivd_core.configs.config_from_mapping`; an
    unknown or invalid field is an :class:`EvalError`)."""
    try:
        return config_from_mapping(dict(d), source="the saved config")
    except (TypeError, ValueError) as exc:
        raise EvalError(str(exc)) from exc


@dataclass
class RunCheckpoint:
    """One checkpoint of a run: its arrays (``engine.export`` layout), config and the run's ``config.json``."""

    path: Path  # the checkpoint's .json commit marker
    step: int
    config: Config
    tree: dict
    meta: dict
    run_dir: Path | None = None
    run_config: dict = field(default_factory=dict)
    damaged: list = field(default_factory=list)  # (newer checkpoint, why it cannot be loaded), passed over

    @property
    def backend(self) -> str | None:
        """The backend that trained the run (``config.json``, else the checkpoint's record)."""
        return self.run_config.get("backend") or self.meta.get("backend")

    @property
    def data(self) -> str | None:
        """The run's ``--data`` (None if unknown)."""
        return (self.run_config.get("args") or {}).get("data")

    @property
    def data_options(self) -> dict:
        """The run's ``--data-option`` values (``{}`` if none or unknown)."""
        return dict((self.run_config.get("args") or {}).get("data_options") or {})

    @property
    def seed(self) -> int:
        return int(self.run_config.get("seed", self.meta.get("seed", 0)) or 0)


def open_run(path) -> RunCheckpoint:
    """The newest intact checkpoint of a run directory, a ``checkpoints/`` folder or a checkpoint ``.json``.

    Raises :class:`EvalError` for a missing path, a folder that is not a run, no
    intact checkpoint, a damaged or unreadable checkpoint file.
    """
    path = Path(path)
    if not path.exists():
        raise EvalError(f"{path}: no such run directory or checkpoint")
    if path.is_file():
        if path.suffix != ".json":
            raise EvalError(f"{path}: a checkpoint is named by its .json commit marker (step_XXXXXXXX.json) or by "
                            "the run directory")
        ckpt = path
        ckpt_dir = path.parent
    else:
        try:
            ckpt_dir, _ = rundir.checkpoint_dir(path)
        except rundir.RunDirError as exc:
            raise EvalError(str(exc)) from exc
        ckpt = latest_checkpoint(ckpt_dir)
        if ckpt is None:
            raise EvalError(f"{path}: no intact checkpoint in {ckpt_dir} (train longer, or past --ckpt-every)")
    damaged = [(p, checkpoint_problem(p)) for p in list_checkpoints(ckpt_dir) if p.name > ckpt.name]
    try:
        tree, meta = load_checkpoint(ckpt)
    except (CheckpointError, OSError, ValueError, KeyError) as exc:
        raise EvalError(f"{ckpt}: cannot load the checkpoint ({exc})") from exc
    run_dir = ckpt_dir.parent if ckpt_dir.name == rundir.CHECKPOINTS else None
    run_config: dict = {}
    if run_dir is not None:
        try:
            run_config = rundir.read_run_config(run_dir, missing_ok=True)
        except rundir.RunDirError as exc:
            raise EvalError(str(exc)) from exc
    cfg = meta.get("config") or run_config.get("config")
    if not isinstance(cfg, Mapping):
        raise EvalError(f"{ckpt}: neither the checkpoint nor config.json records the model's config")
    for key in ("g_params", "g_state", "ema"):
        if key not in tree:
            raise EvalError(f"{ckpt}: the checkpoint lacks {key!r} (not a trivd training checkpoint)")
    try:
        config = config_from_dict(cfg)
    except (TypeError, ValueError) as exc:
        raise EvalError(f"{ckpt}: the recorded config is not valid ({str(exc).splitlines()[0]})") from exc
    from .generator import generator_shapes

    want = generator_shapes(config)
    for key in ("ema", "g_params"):
        problem = _layout_problem(tree[key], want, key)
        if problem:
            raise EvalError(f"{ckpt}: the checkpoint does not fit its config {config.name!r}: {problem}")
    return RunCheckpoint(path=ckpt, step=int(meta.get("step", -1)), config=config, tree=tree,
                         meta=meta, run_dir=run_dir, run_config=run_config, damaged=damaged)


def _layout_problem(tree, shapes, path: str) -> str | None:
    """The first difference between a tree of arrays and a tree of shape tuples (``None`` if they agree)."""
    if isinstance(shapes, Mapping):
        if not isinstance(tree, Mapping):
            return f"{path} is an array, expected a group of {sorted(shapes)}"
        missing = sorted(set(shapes) - set(tree))
        if missing:
            return f"{path} lacks {missing}"
        for k in shapes:
            problem = _layout_problem(tree[k], shapes[k], f"{path}/{k}")
            if problem:
                return problem
        return None
    if isinstance(tree, Mapping):
        return f"{path} is a group, expected an array of shape {tuple(shapes)}"
    if tuple(np.shape(tree)) != tuple(shapes):
        return f"{path} has shape {tuple(np.shape(tree))}, expected {tuple(shapes)}"
    return None


def check_data_fits(dataset, config: Config) -> None:
    """:class:`EvalError` unless ``dataset`` gives clips ``(t_cond + t_pred, R, R, C)`` the model can use.

    Array data stored at a lower resolution than the model's would have to be
    upsampled; that is refused (the scores would measure the upsampling).
    """
    want = (config.t_total, config.resolution, config.resolution, config.channels)
    if tuple(dataset.shape) != want:
        raise EvalError(f"the data gives clips of shape {tuple(dataset.shape)} (T, H, W, C), the model "
                        f"{config.name!r} needs {want} (t_cond + t_pred, resolution, resolution, channels)")
    stored = getattr(dataset, "stored_hw", None)
    if stored is not None and min(stored) < config.resolution:
        raise EvalError(f"the data's frames are {stored[0]}x{stored[1]}, smaller than the model's resolution "
                        f"{config.resolution}x{config.resolution}; refusing to upsample them for evaluation")


# ---------------------------------------------------------------------------
# the model


def _standing_of_one_batch(params, state, cond, z):
    return generator.accumulate_standing_stats(params, state, [(cond, z)])["standing"]


def _generate_eval(params, state, cond, z):
    return generator.generate(params, state, cond, z, train=False)[0]


def _generate_with_warps(params, state, cond, z):
    frames, _, warps = generator.generate(params, state, cond, z, train=False, return_warps=True)
    return frames, warps


class Model:
    """A generator of a :class:`RunCheckpoint` ready to sample on ``backend``.

    Args:
        run: from :func:`open_run`.
        backend: a trivd backend object (``backends.load(name)``): ``asarray``,
            ``to_numpy``, ``jit``.
        engine: the backend's training engine for the run's config, or ``None``
            (then sampling runs trivd_core's ``generate`` on the backend's arrays).
            The checkpoint is restored into it (``engine.restore``) and its
            compiled ``predict`` samples.
        ema: the EMA of G's weights (default, E.2) or the live weights.
        truncation: latents ``|z| <= truncation`` (None: the config's, normally none).
    """

    def __init__(self, run: RunCheckpoint, backend, *, engine=None, ema: bool = True,
                 truncation: float | None = None):
        self.run = run
        self.config = run.config
        self.backend = backend
        self.engine = engine
        self.ema = bool(ema)
        self.truncation = self.config.truncation if truncation is None else float(truncation)
        if self.truncation is not None and not (math.isfinite(self.truncation) and self.truncation >= 0):
            raise EvalError(f"truncation must be a finite threshold >= 0, got {truncation!r}")
        self._params_np = run.tree["ema" if self.ema else "g_params"]
        self._state_np = dict(run.tree["g_state"])
        self._arrays = None
        self._fns: dict[str, Callable] = {}
        self.standing: dict | None = None  # how the standing statistics were made (None: none)
        self._ts = None
        if engine is not None:
            try:
                self._ts = engine.restore(run.tree)
            except (ValueError, TypeError, KeyError) as exc:
                raise EvalError(f"{run.path}: the checkpoint does not fit the {getattr(engine, 'name', '?')} engine "
                                f"of config {self.config.name!r}: {exc}") from exc

    @property
    def has_standing(self) -> bool:
        return "standing" in self._state_np

    def _fn(self, name, fn):
        if name not in self._fns:
            self._fns[name] = self.backend.jit(fn)
        return self._fns[name]

    def _device_arrays(self):
        if self._arrays is None:
            self._arrays = (self.backend.asarray(self._params_np), self.backend.asarray(self._state_np))
        return self._arrays

    def latents(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """``(batch, z_dim)`` float32 latents (standard normal, or truncated at ``self.truncation``), times the
        config's ``latent_std`` (1 in the paper's configs)."""
        z = generator.truncated_normal_latents(rng, (batch, self.config.z_dim), self.truncation)
        return z if self.config.latent_std == 1.0 else (z * np.float32(self.config.latent_std)).astype(np.float32)

    def accumulate_standing_stats(self, batches: Iterable, *, source: str = "") -> None:
        """Standing statistics (E.2) from ``(cond, z)`` NumPy batches; replaces any earlier ones.

        Each batch runs G with batch statistics (trivd_core's
        ``accumulate_standing_stats`` on the backend, compiled by ``backend.jit``); the
        per-batch means and variances are averaged (float64) and stored in the
        generator state used by :meth:`predict` (and restored into the engine).
        """
        fn = self._fn("standing", _standing_of_one_batch)
        params, state = self._device_arrays()
        state = {k: v for k, v in state.items() if k != "standing"}
        total, n = None, 0
        for cond, z in batches:
            stats = self.backend.to_numpy(fn(params, state, self.backend.asarray(np.asarray(cond, np.float32)),
                                              self.backend.asarray(np.asarray(z, np.float32))))
            stats = tree_map(lambda a: np.asarray(a, np.float64), stats)
            total = stats if total is None else tree_map(np.add, total, stats)
            n += 1
        if n == 0:
            raise EvalError("standing statistics need at least one batch of conditioning frames")
        standing = tree_map(lambda a: (a / n).astype(np.float32), total)
        self._state_np = {**{k: v for k, v in self._state_np.items() if k != "standing"}, "standing": standing}
        self._arrays = None
        self.standing = {"batches": n, "source": source}
        if self.engine is not None:
            self._ts = self.engine.restore({**self.run.tree, "g_state": self._state_np})

    def predict(self, cond, z) -> np.ndarray:
        """Predicted frames ``(B, t_pred, R, R, C)`` float32 for ``cond (B, t_cond, R, R, C)`` and ``z (B, z_dim)``."""
        cond = np.asarray(cond, np.float32)
        z = np.asarray(z, np.float32)
        if self.engine is not None:
            return np.asarray(self.engine.predict(self._ts, cond, z, ema=self.ema), np.float32)
        params, state = self._device_arrays()
        fn = self._fn("generate", _generate_eval)
        out = fn(params, state, self.backend.asarray(cond), self.backend.asarray(z))
        return np.asarray(self.backend.to_numpy(out), np.float32)

    def predict_with_warps(self, cond, z) -> tuple[np.ndarray, dict]:
        """``(frames, warps)`` from one forward pass: ``generate(..., return_warps=True)`` on the backend.

        ``warps`` is the NumPy version of generate's third output (per stage the cell's
        transformation, stacked over the predicted steps).
        """
        params, state = self._device_arrays()
        fn = self._fn("warps", _generate_with_warps)
        frames, warps = fn(params, state, self.backend.asarray(np.asarray(cond, np.float32)),
                           self.backend.asarray(np.asarray(z, np.float32)))
        return np.asarray(self.backend.to_numpy(frames), np.float32), self.backend.to_numpy(warps)


def standing_batches(dataset, model: Model, *, n_batches: int, batch_size: int, seed: int = 0,
                     workers: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n_batches`` ``(cond, z)`` pairs: real conditioning frames of ``dataset`` and the model's latents.

    Clips come from a shuffled :class:`Loader` seeded with ``[seed, "stan"]`` (a stream
    apart from the evaluation clips), latents from a generator on the same seed.
    The batch is ``min(batch_size, len(dataset))``.
    """
    batch = min(int(batch_size), len(dataset))
    rng = np.random.default_rng([int(seed), _STANDING_STREAM])
    loader_seed = int(np.random.default_rng([int(seed), _STANDING_STREAM, 1]).integers(2**31))
    t_cond = model.config.t_cond
    with Loader(dataset, batch, seed=loader_seed, shuffle=True, drop_last=True, workers=workers) as loader:
        for _ in range(int(n_batches)):
            clips = loader.next_batch()
            yield clips[:, :t_cond], model.latents(rng, batch)


# ---------------------------------------------------------------------------
# the protocol


def _finite_or_none(x):
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    x = float(x)
    return x if math.isfinite(x) else None


def _curves(ssim_pc: np.ndarray, psnr_pc: np.ndarray) -> dict:
    ssim_c = ssim_pc.mean(axis=0)
    psnr_c = psnr_pc.mean(axis=0)
    return {
        "ssim": _finite_or_none(ssim_c.tolist()),
        "psnr": _finite_or_none(psnr_c.tolist()),
        "ssim_mean": _finite_or_none(float(ssim_c.mean())),
        "psnr_mean": _finite_or_none(float(psnr_c.mean())),
        "psnr_infinite": int(np.sum(~np.isfinite(psnr_pc))),
    }


def _check_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise EvalError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def protocols(*, ssim_protocol: str = "savp", best_of: int = 1, extractor=None, frames: int | None = None,
              splits: int = 10) -> dict:
    """The convention of every metric of an evaluation, as recorded in ``eval.json`` (docs/evaluation.md)."""
    ssim_range = {"savp": ("[0, 1]", 1.0), "pm1": ("[-1, 1]", 2.0)}[ssim_protocol]
    rec = {
        "ssim": {"protocol": ssim_protocol, "frames_in": ssim_range[0], "data_range": ssim_range[1],
                 "window": "gaussian 11x11, sigma 1.5", "K1": 0.01, "K2": 0.03, "statistics": "population",
                 "mean": "valid window positions, then channels", "per": "frame",
                 "follows": "SAVP video_prediction/metrics.py" if ssim_protocol == "savp" else "none (trivd option)"},
        "psnr": {"frames_in": "[-1, 1]", "data_range": 2.0, "per": "frame", "infinite": "identical frames",
                 "follows": "SAVP video_prediction/metrics.py (the same value on [0, 1] with range 1)"},
        "best_of": {"samples": best_of, "kept": "the sample with the highest mean SSIM over the predicted frames",
                    "follows": "SAVP / the paper's appendix C.1"},
        "fvd": None,
        "inception_score": None,
    }
    if extractor is not None:
        rec["fvd"] = {"features": "I3D logits", "resize": getattr(extractor, "resize", None),
                      "image_size": list(getattr(extractor, "image_size", None) or []) or None,
                      "covariance": "unbiased (1/(N-1))", "clip_frames": frames,
                      "pool": getattr(extractor, "pool", None),
                      "follows": "google-research frechet_video_distance.py (TF1 bilinear resize)"
                      if getattr(extractor, "resize", None) == "tf1" else "half-pixel resize (trivd option)"}
        rec["inception_score"] = {"splits": splits, "shuffle": False, "std_ddof": 0,
                                  "follows": "the original Inception Score code (ddof 0, no shuffling)"}
    return rec


def evaluate(model: Model, dataset, *, num_samples: int = 256, best_of: int = 1, batch_size: int | None = None,
             seed: int = 0, extractor: Callable | None = None, progress: bool = True, workers: int = 2,
             log: Callable[[str], None] | None = None, ssim_protocol: str = "savp") -> dict:
    """Per-frame SSIM/PSNR (best of ``best_of``) of ``model`` and the copy baseline on ``dataset``; FVD/IS optional.

    Returns the measurement part of ``eval.json`` (see the module docstring and
    docs/evaluation.md): ``num_samples`` (clips used), ``best_of``, ``model`` and
    ``copy_baseline`` (``ssim``/``psnr`` curves of length ``t_pred``, their means,
    ``psnr_infinite``), ``chosen_histogram`` (how often each of the l samples was kept),
    ``fvd``/``inception_score`` (dicts, or ``None`` without an ``extractor``),
    ``skipped_sources``, ``seconds`` and ``protocols`` (:func:`protocols`: the convention
    of every metric, so that two eval.json files say whether they are comparable).
    ``extractor``: ``videos (B, T, H, W, C) in [-1, 1] -> (B, d)`` logits/features (I3D).
    ``ssim_protocol``: ``"savp"`` (default, the published one) or ``"pm1"`` (:func:`metrics.ssim`).
    """
    if ssim_protocol not in metrics.SSIM_PROTOCOLS:
        raise EvalError(f"ssim_protocol must be one of {', '.join(metrics.SSIM_PROTOCOLS)}, got {ssim_protocol!r}")
    cfg = model.config
    num_samples = _check_int("num_samples", num_samples)
    best_of = _check_int("best_of (l)", best_of)
    batch_size = _check_int("batch_size", batch_size if batch_size is not None else min(cfg.batch_size, 64))
    check_data_fits(dataset, cfg)
    n = min(num_samples, len(dataset))
    batch = min(batch_size, n)
    rng = np.random.default_rng([int(seed), _LATENT_STREAM])
    t0 = time.perf_counter()
    ssim_m, psnr_m, ssim_c, psnr_c, chosen = [], [], [], [], []
    feats: dict[str, list] = {"real": [], "model": [], "copy": [], "floor": []}
    n_batches = -(-n // batch)
    if extractor is not None and -(-n // batch) * batch + n <= len(dataset):
        n_batches += -(-n // batch)  # the floor's clips
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_batches, unit="batch", desc="trivd eval", dynamic_ncols=True, file=sys.stderr)
    done = 0
    try:
        with Loader(dataset, batch, seed=int(seed), shuffle=True, drop_last=False, workers=workers) as loader:
            while done < n:
                clips = np.asarray(loader.next_batch(), np.float32)[: n - done]
                b = clips.shape[0]
                cond, truth = clips[:, : cfg.t_cond], clips[:, cfg.t_cond:]
                z = np.stack([model.latents(rng, b) for _ in range(best_of)])  # (l, b, z_dim)
                pad = batch - b if model.has_standing else 0
                samples = []
                for zi in z:
                    c_in, z_in = cond, zi
                    if pad:
                        c_in = np.concatenate([cond, np.repeat(cond[-1:], pad, axis=0)])
                        z_in = np.concatenate([zi, np.repeat(zi[-1:], pad, axis=0)])
                    samples.append(model.predict(c_in, z_in)[:b])
                samples = np.stack(samples)
                if not np.all(np.isfinite(samples)):
                    raise EvalError(f"the generator produced non-finite (NaN/Inf) frames for {b} clip(s); the "
                                    f"checkpoint {model.run.path} looks diverged")
                samples = np.clip(samples, -1.0, 1.0)  # tanh output; guards against rounding just past +-1
                res = metrics.best_of(samples, truth, protocol=ssim_protocol)
                copy = metrics.copy_last_frame(cond, cfg.t_pred)
                base = metrics.best_of(copy[None], truth, protocol=ssim_protocol)
                ssim_m.append(res.ssim_per_clip)
                psnr_m.append(res.psnr_per_clip)
                chosen.append(res.chosen)
                ssim_c.append(base.ssim_per_clip)
                psnr_c.append(base.psnr_per_clip)
                if extractor is not None:
                    feats["real"].append(extract_features(clips, extractor, name="real"))
                    feats["model"].append(extract_features(np.concatenate([cond, samples[0]], axis=1), extractor,
                                                           name="model"))
                    feats["copy"].append(extract_features(np.concatenate([cond, copy.astype(np.float32)], axis=1),
                                                          extractor, name="copy_baseline"))
                done += b
                if bar is not None:
                    bar.update(1)
            if extractor is not None:
                # The real-vs-real floor: n further clips of the split, disjoint from the evaluated ones when
                # the split holds them (the loader's epoch is one permutation; the rows cut from the last
                # batch above are passed over, not reused); else the evaluated clips' two halves.
                if -(-n // batch) * batch + n <= len(dataset):
                    got = 0
                    while got < n:
                        extra = np.asarray(loader.next_batch(), np.float32)[: n - got]
                        feats["floor"].append(extract_features(extra, extractor, name="real (floor)"))
                        got += extra.shape[0]
                        if bar is not None:
                            bar.update(1)
            skipped = int(loader.skipped)
    finally:
        if bar is not None:
            bar.close()
    kept = np.concatenate(chosen)
    record = {
        "num_samples": n,
        "best_of": best_of,
        "ssim_protocol": ssim_protocol,
        "protocols": protocols(ssim_protocol=ssim_protocol, best_of=best_of, extractor=extractor,
                               frames=cfg.t_total, splits=min(10, n)),
        "batch_size": batch,
        "model": _curves(np.concatenate(ssim_m), np.concatenate(psnr_m)),
        "copy_baseline": _curves(np.concatenate(ssim_c), np.concatenate(psnr_c)),
        "chosen_histogram": np.bincount(kept, minlength=best_of).tolist(),
        "fvd": None,
        "inception_score": None,
        "skipped_sources": skipped,
    }
    if n < num_samples and log is not None:
        log(f"trivd eval: the split holds {n} clips; evaluated all of them (asked for {num_samples})")
    if extractor is not None:
        real = np.concatenate(feats["real"])
        fake = np.concatenate(feats["model"])
        copy_f = np.concatenate(feats["copy"])
        if feats["floor"]:
            floor_a, floor_b, floor_how = real, np.concatenate(feats["floor"]), "disjoint"
        else:
            half = n // 2
            floor_a, floor_b, floor_how = real[:half], real[half : 2 * half], "halves"
        with warnings.catch_warnings():  # said once, in the record, in terms of clips
            warnings.simplefilter("ignore", metrics.FewSamplesWarning)
            record["fvd"] = {"model": metrics.frechet_distance_from_features(real, fake),
                             "copy_baseline": metrics.frechet_distance_from_features(real, copy_f),
                             "real_floor": (metrics.frechet_distance_from_features(floor_a, floor_b)
                                            if floor_a.shape[0] >= 2 else None),
                             "floor_samples": int(floor_a.shape[0]), "floor_sets": floor_how,
                             "frames": cfg.t_total, "samples": n, "features": int(real.shape[1])}
        if floor_how == "halves":
            record["fvd"]["floor_note"] = (f"the split holds too few clips for a second, disjoint set of {n}: the floor "
                                           f"compares two halves of the evaluated real clips ({floor_a.shape[0]} each), "
                                           "and a smaller N raises an FVD, so it overstates the floor")
        splits = min(10, n)
        mean, std = metrics.inception_score(fake, splits)
        record["inception_score"] = {"model": {"mean": mean, "std": std}, "splits": splits}
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return record


# ---------------------------------------------------------------------------
# report: eval.json and the plots


def write_report(out_dir, record: Mapping, *, title: str = "") -> dict[str, Path]:
    """``eval.json``, ``ssim.png`` and ``psnr.png`` (model vs copy baseline per predicted frame) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "eval.json"}
    atomic_write_bytes(paths["json"], (json.dumps(record, indent=1, allow_nan=False) + "\n").encode())
    T = len(record["model"]["ssim"])
    x = np.arange(1, T + 1)
    ell = record.get("best_of", 1)
    for key, label in (("ssim", "SSIM"), ("psnr", "PSNR (dB)")):
        curves = {
            f"model (best of {ell})" if ell > 1 else "model": (record["model"][key], _COLOURS[0]),
            "copy last frame": (record["copy_baseline"][key], _COLOURS[1]),
        }
        paths[key] = plot_curves(out / f"{key}.png", x, curves, title=title,
                                 xlabel="predicted frame", ylabel=label)
    return paths


_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44))


