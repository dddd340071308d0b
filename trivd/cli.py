"""The ``trivd`` command line: one parser, one front end per subcommand.

* ``trivd info``     - version, backends and whether they start here, fast paths, cell kinds;
  ``--config NAME`` prints parameter and pixel counts (:mod:`trivd.info`).
* ``trivd conform``  - a backend or a third-party port against the reference (:mod:`trivd.conform`).
* ``trivd bench``    - cost tables (Table 1 decompositions, Table 2 cells, warps vs bandwidth) (:mod:`trivd.bench`).
* ``trivd train``    - train (default: the ``demo`` config on synthetic shapes with JAX) (:mod:`trivd.train`).
* ``trivd eval``     - SSIM/PSNR (best of l) against the copy-last-frame baseline, FVD/IS (:mod:`trivd.evaluate`).
* ``trivd predict``  - the continuation of a real clip as MP4/GIF/``.npy`` (:mod:`trivd.predict`).
* ``trivd fvd``      - FVD between two clip sets, IS of the fake one, I3D features and weights (:mod:`trivd.fvd`).
* ``trivd clips``    - clips of a run's data (or any source) as ``.npy`` or a video, for predict and fvd (:mod:`trivd.clips`).

This package is the application: the one layer that imports all the others
(reference < trivd_core < backends < conformance, benchmarks < trivd); nothing imports it.
Results go to stdout, logs and progress to stderr; usage errors exit 2 with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import warnings

__all__ = ["main", "build_parser"]

#: subcommand -> the module of its front end (``run(args)``; conform and bench parse their own arguments).  Imported
#: inside :func:`main`, so that a Ctrl-C during the imports (NumPy, SciPy, a framework) is reported like any other.
_MODULES = {"info": "info", "conform": "conform", "bench": "bench", "train": "train", "eval": "evaluate",
            "predict": "predict", "fvd": "fvd", "clips": "clips"}
_OWN_PARSERS = ("conform", "bench")


def _front_end(command: str):
    """The front end of ``command``, imported now (static imports: the layering test reads them)."""
    if command == "info":
        from . import info as module
    elif command == "conform":
        from . import conform as module
    elif command == "bench":
        from . import bench as module
    elif command == "train":
        from . import train as module
    elif command == "eval":
        from . import evaluate as module
    elif command == "predict":
        from . import predict as module
    elif command == "fvd":
        from . import fvd as module
    elif command == "clips":
        from . import clips as module
    else:
        raise KeyError(command)
    return module


def main(argv: list[str] | None = None) -> int:
    """Run ``trivd`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in _MODULES else None
    with _warnings_in_words(f"trivd {command}" if command else "trivd"):
        return _main_with_signals(argv)


@contextlib.contextmanager
def _warnings_in_words(prog: str):
    """Show a data warning (:class:`~trivd_core.data.DataWarning`) as one line ``<prog>: warning: <message>``.

    Python's default display adds the file and code line that raised it, which says nothing to a user of
    the command; other warnings keep that display (they are for developers).
    """
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        from trivd_core.data import DataWarning  # imported by then: only trivd_core.data warns with it

        if issubclass(category, DataWarning):
            print(f"{prog}: warning: {message}", file=sys.stderr if file is None else file, flush=True)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _main_with_signals(argv: list[str]) -> int:
    try:
        pending = _import_quietly(argv[0] if argv and argv[0] in _MODULES else None)
        if pending:
            print(f"\ntrivd: {'terminated' if pending[0] == signal.SIGTERM else 'interrupted'} while starting",
                  file=sys.stderr)
            return 143 if pending[0] == signal.SIGTERM else 130
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting up (training itself saves and exits 130 on its own)
        print("\ntrivd: interrupted", file=sys.stderr)
        return 130


def _import_quietly(command: str | None) -> list[int]:
    """Import the front ends (``command``'s, or all of them) with SIGINT / SIGTERM only noted; the signals noted.

    A ``KeyboardInterrupt`` raised while a framework's native library is being imported can crash the
    process (SIGSEGV, measured with jaxlib) instead of stopping it: the imports finish, then the command stops.
    """
    pending: list[int] = []
    main_thread = threading.current_thread() is threading.main_thread()
    old = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
           for sig in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        for name in ([command] if command else _MODULES):
            _front_end(name)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return pending


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``trivd info/train/eval/predict`` (``conform`` and ``bench`` parse their own arguments)."""
    from trivd_core import __version__

    parser = argparse.ArgumentParser(prog="trivd", description="TrIVD-GAN-FP: reference, core, backends, conformance")
    parser.add_argument("--version", action="version", version=f"trivd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _front_end("info").add_parser(sub)
    sub.add_parser("conform", help="check a backend or a port against the reference (see `trivd conform -h`)",
                   add_help=False)
    sub.add_parser("bench", help="cost tables of Table 1 / Table 2 per backend (see `trivd bench -h`)", add_help=False)
    for command in ("train", "eval", "predict", "fvd", "clips"):
        _front_end(command).add_parser(sub)
    return parser


def _main(argv: list[str]) -> int:
    if argv and argv[0] in _OWN_PARSERS:
        return _front_end(argv[0]).run(argv[1:])
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage, not the top-level one
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 2
    return _front_end(args.command).run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
