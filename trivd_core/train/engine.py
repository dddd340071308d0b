"""The engine contract: what the training loop needs from a backend, with the checks every engine shares.

A backend trains through an *engine* (``backend.engine(config, devices=None, steps=None,
saved_run=None)``): one :class:`~trivd_core.configs.Config` on the backend's device(s).
The loop (:mod:`trivd_core.train.loop`) is written against :class:`Engine` only:

* ``init(seed) -> ts``: fresh weights from ``np.random.default_rng(seed)`` (G with E
  first, then D; Adam moments zero; the EMA a copy of G), placed on the device(s);
* ``step(ts, inputs) -> (ts, metrics)``: ``d_steps`` D updates, one G update, the EMA;
  ``ts`` must not be modified in place (the loop keeps it for Ctrl-C);
* ``export(ts) -> tree``: the backend-neutral NumPy tree with the keys :data:`EXPORT_KEYS`
  (``opt_g`` / ``opt_d`` as ``{"mu", "nu", "count"}``): what checkpoints hold and any
  other engine restores;
* ``restore(tree) -> ts``: the inverse; :meth:`Engine.check_tree` first compares every
  key and every leaf shape with this engine's config, so a checkpoint of another config
  fails with the path of the first leaf that differs, on every backend alike;
* ``predict(ts, cond, z, *, ema=True) -> frames`` (NumPy);
* the job: ``process_index`` and ``process_count`` (``0`` and ``1`` unless the backend's
  distributed runtime joined several processes; then each process's ``step`` gets its
  slice of the global batch, see :mod:`trivd_core.train.loop`), ``agree(code)`` (the
  largest code of all processes) and ``barrier(name)``; a collective whose peer died
  raises :class:`ProcessLost`;
* ``name``, ``devices`` (descriptions), ``compiles`` (the first step compiles: the loop
  says so and leaves it out of the rate), ``run_info`` (backend choices that a resumed
  run must reuse, recorded in ``config.json``) and ``note`` (a phrase for the start line).

Subclasses implement :meth:`_restore`, :meth:`step`, :meth:`export`, :meth:`predict`
and ``devices``; the shared parts (config coercion, the initial tree, the layout check of
a restored tree, the check of a step's inputs: :meth:`Engine.check_inputs`) live here so
that the JAX, torch and XLA engines agree on them.
"""

from __future__ import annotations

import abc

import numpy as np

from ..configs import as_config
from ..discriminator import init_discriminator
from ..generator import init_generator
from ..tree import tree_map

__all__ = ["Engine", "ProcessLost", "EXPORT_KEYS", "OPT_KEYS"]

#: Keys of an exported (backend-neutral) training state.
EXPORT_KEYS = ("step", "g_params", "g_state", "d_params", "d_state", "ema", "opt_g", "opt_d")
#: Keys of each exported optimiser state (Adam's moments and its step count).
OPT_KEYS = ("count", "mu", "nu")


class ProcessLost(RuntimeError):
    """Another process of a multi-process job died or stopped answering (a collective failed or timed out)."""


def _layout(tree):
    if isinstance(tree, dict):
        return {k: _layout(v) for k, v in tree.items()}
    return tuple(np.shape(tree))


def _check_layout(what, got, want, path=""):
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            found = sorted(got) if isinstance(got, dict) else type(got).__name__
            raise ValueError(f"restore(): argument 'tree' at {what}{path or ''} must have keys {sorted(want)} "
                             f"(the layout of this engine's config), got {found}")
        for k in want:
            _check_layout(what, got[k], want[k], f"{path}/{k}")
        return
    shape = tuple(np.shape(got))
    if isinstance(got, dict) or shape != want:
        raise ValueError(f"restore(): argument 'tree' at {what}{path} must have shape {want}, got "
                         f"{type(got).__name__ if isinstance(got, dict) else shape}")


def _as_count(what, v) -> int:
    a = np.asarray(v)
    if a.shape != () or not np.issubdtype(a.dtype, np.integer) or int(a) < 0:
        raise ValueError(f"restore(): argument 'tree' at {what} must be a non-negative 0-d integer, got {v!r}")
    return int(a)


class Engine(abc.ABC):
    """Base class of the training engines (see the module docstring for the contract)."""

    name = "engine"
    #: True where the first step compiles (JAX, XLA); the loop says so and leaves it out of the rate.
    compiles = False

    def __init__(self, config):
        self.config = as_config(type(self).__name__, config)
        self._layout = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(config={self.config.name!r}, devices={len(self.devices)})"

    @property
    @abc.abstractmethod
    def devices(self) -> list[str]:
        """Descriptions of the devices the engine trains on."""

    @property
    def run_info(self) -> dict:
        """Backend choices a resumed run must reuse (recorded in the run's config.json); none by default."""
        return {}

    @property
    def note(self) -> str:
        """A phrase for the start line of ``trivd train`` (e.g. the compile option); empty by default."""
        return ""

    # -- the job (one process unless a backend's distributed runtime says otherwise) --------

    @property
    def process_index(self) -> int:
        """This process's index ``p`` in the job (process 0 writes the run directory)."""
        return 0

    @property
    def process_count(self) -> int:
        """``P``, the processes of the job; each one's ``step`` takes ``1/P`` of the global batch."""
        return 1

    def agree(self, code: int) -> int:
        """The largest of every process's ``code``; every process calls it at the same point (one process:
        ``code``).  The loop agrees on whether to stop before each step."""
        return int(code)

    def barrier(self, name: str, *, side_work: bool = False) -> None:
        """Return when every process of the job has reached the barrier ``name`` (one process: at once).

        ``side_work=True``: the others wait here while process 0 does the job's side work (writes a
        checkpoint, samples, plots, validates), which may take far longer than a collective should: the
        wait is bounded by the job's side-work timeout, not by the collective timeout.
        """
        return None

    # -- the shared state logic ------------------------------------------------

    def initial_tree(self, seed: int) -> dict:
        """The exported tree of a fresh run: ``init_generator`` then ``init_discriminator`` from ``default_rng(seed)``."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"init(): argument 'seed' must be an int, got {seed!r}")
        rng = np.random.default_rng(int(seed))
        g_params, g_state = init_generator(self.config, rng)
        d_params, d_state = init_discriminator(self.config, rng)

        def zeros(tree):
            return tree_map(lambda a: np.zeros_like(a, dtype=np.float32), tree)

        return {
            "step": np.int64(0),
            "g_params": g_params, "g_state": g_state, "d_params": d_params, "d_state": d_state,
            "ema": g_params,
            "opt_g": {"mu": zeros(g_params), "nu": zeros(g_params), "count": np.int64(0)},
            "opt_d": {"mu": zeros(d_params), "nu": zeros(d_params), "count": np.int64(0)},
        }

    def init(self, seed: int):
        """Fresh training state on the engine's device(s) (see :meth:`initial_tree`)."""
        return self.restore(self.initial_tree(seed))

    def expected_layout(self) -> dict:
        """Shapes of ``g_params``, ``g_state``, ``d_params``, ``d_state`` for this config (computed once)."""
        if self._layout is None:
            rng = np.random.default_rng(0)
            g_params, g_state = init_generator(self.config, rng)
            d_params, d_state = init_discriminator(self.config, rng)
            self._layout = {k: _layout(v) for k, v in (("g_params", g_params), ("g_state", g_state),
                                                       ("d_params", d_params), ("d_state", d_state))}
        return self._layout

    def check_tree(self, tree) -> dict:
        """``tree`` checked against this config's layout (every key, every leaf shape); ``step`` and the Adam
        counts as Python ints.  ``g_state`` may also hold standing statistics (``"standing"``)."""
        if not isinstance(tree, dict) or set(tree) != set(EXPORT_KEYS):
            found = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
            raise ValueError(f"restore(): argument 'tree' must have keys {list(EXPORT_KEYS)}, got {found}")
        want = self.expected_layout()
        g_state = tree["g_state"]
        if isinstance(g_state, dict) and "standing" in g_state:
            g_state = {k: v for k, v in g_state.items() if k != "standing"}
        for key, part in (("g_params", tree["g_params"]), ("g_state", g_state), ("d_params", tree["d_params"]),
                          ("d_state", tree["d_state"])):
            _check_layout(key, part, want[key])
        _check_layout("ema", tree["ema"], want["g_params"])
        out = dict(tree)
        out["step"] = _as_count("step", tree["step"])
        for opt, params in (("opt_g", "g_params"), ("opt_d", "d_params")):
            o = tree[opt]
            if not isinstance(o, dict) or set(o) != set(OPT_KEYS):
                raise ValueError(f"restore(): argument 'tree' at {opt} must have keys {list(OPT_KEYS)}")
            _check_layout(f"{opt}/mu", o["mu"], want[params])
            _check_layout(f"{opt}/nu", o["nu"], want[params])
            out[opt] = {**o, "count": _as_count(f"{opt}/count", o["count"])}
        return out

    def check_inputs(self, inputs) -> dict:
        """The step's ``inputs`` checked against the config (the layout in :mod:`trivd_core.train.loop`): keys,
        shapes, dtypes; returns them as NumPy arrays (``real``, ``z_*`` float32, the randomness int64)."""
        cfg = self.config
        if not isinstance(inputs, dict):
            raise TypeError(f"step(): argument 'inputs' must be a dict, got {type(inputs).__name__}")
        for key in ("real", "z_d", "z_g", "rand_d", "rand_g"):
            if key not in inputs:
                raise ValueError(f"step(): argument 'inputs' must have key {key!r}; found {sorted(inputs)}")
        r, t = cfg.resolution, cfg.t_total
        real = np.asarray(inputs["real"])
        if real.ndim != 6 or real.shape[0] != cfg.d_steps or real.shape[2:] != (t, r, r, cfg.channels):
            raise ValueError(f"step(): argument inputs['real'] must have shape (d_steps={cfg.d_steps}, B, {t}, {r}, "
                             f"{r}, {cfg.channels}), got {real.shape}")
        B = real.shape[1]
        out = {"real": real.astype(np.float32, copy=False)}
        for key, shape in (("z_d", (cfg.d_steps, B, cfg.z_dim)), ("z_g", (B, cfg.z_dim))):
            if np.shape(inputs[key]) != shape:
                raise ValueError(f"step(): argument inputs[{key!r}] must have shape {shape}, "
                                 f"got {np.shape(inputs[key])}")
            out[key] = np.asarray(inputs[key], np.float32)
        for key, lead in (("rand_d", (cfg.d_steps, B)), ("rand_g", (B,))):
            rand = inputs[key]
            if not isinstance(rand, dict):
                raise TypeError(f"step(): argument inputs[{key!r}] must be a dict, got {type(rand).__name__}")
            out[key] = {}
            for k, v in rand.items():
                v = np.asarray(v)
                if not np.issubdtype(v.dtype, np.integer) or v.shape[: len(lead)] != lead:
                    raise ValueError(f"step(): argument inputs[{key!r}][{k!r}] must be an integer array with "
                                     f"leading shape {lead}, got {v.dtype} {v.shape}")
                out[key][k] = v.astype(np.int64, copy=False)
        return out

    def restore(self, tree: dict):
        """The training state of an exported tree (:meth:`export` of any engine), after :meth:`check_tree`."""
        return self._restore(self.check_tree(tree))

    # -- what each backend supplies --------------------------------------------

    @abc.abstractmethod
    def _restore(self, tree: dict):
        """A checked exported tree -> this engine's training state on its device(s)."""

    @abc.abstractmethod
    def step(self, ts, inputs: dict):
        """One training step: ``(ts, metrics)``; must not modify ``ts`` in place.

        ``metrics`` maps names to floats or 0-d arrays that ``float()`` reads: an engine may return before
        the step has finished (JAX queues it), and the loop reads the metrics of step k after it has
        queued step k + 1, so that the device is not left idle while the host logs and draws inputs.
        """

    @abc.abstractmethod
    def export(self, ts) -> dict:
        """The backend-neutral NumPy tree of ``ts`` (keys :data:`EXPORT_KEYS`)."""

    @abc.abstractmethod
    def predict(self, ts, cond_frames, z, *, ema: bool = True):
        """Predicted frames (NumPy) from conditioning frames and latents, in evaluation mode."""
