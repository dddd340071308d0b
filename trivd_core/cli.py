"""The ``trivd`` command line.

Subcommands:

* ``trivd info``     - version, backends and whether they start here, ops fast paths, cell kinds;
  ``trivd info --config NAME`` prints parameter counts of G, E and every sub-discriminator and the
  pixels each discriminator processes per video (section 3.1).
* ``trivd conform``  - check a backend or a third-party port against the reference (prints a table).

The backend is chosen with ``--backend`` or ``TRIVD_BACKEND``.  The CLI is the
one place where the layers meet, so subcommands import ``backends`` and
``conformance`` lazily, inside the command; the computational modules of
trivd_core never import them (see docs/architecture-notes.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys

from . import __version__


def _cmd_info(args: argparse.Namespace) -> int:
    if args.config:
        from .summary import describe

        print(describe(args.config))
        return 0
    backends = importlib.import_module("backends")
    from . import ops

    print(f"trivd {__version__} (Python {platform.python_version()}, {platform.machine()})")
    print(f"default backend: {backends.default_name()}  (set TRIVD_BACKEND or --backend)")
    print("backends:")
    for name in backends.names():
        try:
            b = backends.load(name)
            xp = b.namespace()
            fast = sorted(ops.fast_paths(xp))
            f64 = "float64" if b.supports_float64 else "float32 only"
            print(f"  {name:<8} available   {f64:<13} fast paths: {', '.join(fast) or '-'}")
        except Exception as exc:  # a backend that cannot start is reported, not fatal
            print(f"  {name:<8} unavailable ({exc.__class__.__name__}: {str(exc).splitlines()[0][:90]})")
    try:
        from .cells import KINDS

        print(f"cell kinds: {', '.join(KINDS)}")
    except ImportError:
        pass
    return 0


def _cmd_conform(argv: list[str]) -> int:
    runner = importlib.import_module("conformance.runner")
    return int(runner.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="trivd", description="TrIVD-GAN-FP: reference, core, backends, conformance")
    parser.add_argument("--version", action="version", version=f"trivd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="versions, backends, fast paths and cell kinds")
    p_info.add_argument("--config", default=None, help="print parameter and pixel counts of a named config instead")
    sub.add_parser("conform", help="check a backend or a port against the reference (see `trivd conform -h`)", add_help=False)
    if argv and argv[0] == "conform":
        return _cmd_conform(argv[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "backend", None):
        os.environ["TRIVD_BACKEND"] = args.backend
    return {"info": _cmd_info}[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
