"""The ``trivd`` command line: one parser, one front end per subcommand.

* ``trivd info``     - version, backends and whether they start here, fast paths, cell kinds;
  ``--config NAME`` prints parameter and pixel counts (:mod:`trivd.info`).
* ``trivd conform``  - a backend or a third-party port against the reference (:mod:`trivd.conform`).
* ``trivd bench``    - cost tables (Table 1 decompositions, Table 2 cells, warps vs bandwidth) (:mod:`trivd.bench`).
* ``trivd train``    - train (default: the ``demo`` config on synthetic shapes with JAX) (:mod:`trivd.train`).
* ``trivd eval``     - SSIM/PSNR (best of l) against the copy-last-frame baseline, FVD/IS (:mod:`trivd.evaluate`).
* ``trivd predict``  - the continuation of a real clip as MP4/GIF/``.npy`` (:mod:`trivd.predict`).
* ``trivd fvd``      - FVD between two clip sets, IS of the fake one, I3D features and weights (:mod:`trivd.fvd`).

This package is the application: the one layer that imports all the others
(reference < trivd_core < backends < conformance, benchmarks < trivd); nothing imports it.
Results go to stdout, logs and progress to stderr; usage errors exit 2 with one line.
"""

from __future__ import annotations

import argparse
import sys

from trivd_core import __version__

from . import bench, conform, info, predict, train
from . import evaluate as eval_cmd
from . import fvd as fvd_cmd

__all__ = ["main", "build_parser"]


def main(argv: list[str] | None = None) -> int:
    """Run ``trivd`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting up (training itself saves and exits 130 on its own)
        print("\ntrivd: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``trivd info/train/eval/predict`` (``conform`` and ``bench`` parse their own arguments)."""
    parser = argparse.ArgumentParser(prog="trivd", description="TrIVD-GAN-FP: reference, core, backends, conformance")
    parser.add_argument("--version", action="version", version=f"trivd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info.add_parser(sub)
    sub.add_parser("conform", help="check a backend or a port against the reference (see `trivd conform -h`)",
                   add_help=False)
    sub.add_parser("bench", help="cost tables of Table 1 / Table 2 per backend (see `trivd bench -h`)", add_help=False)
    train.add_parser(sub)
    eval_cmd.add_parser(sub)
    predict.add_parser(sub)
    fvd_cmd.add_parser(sub)
    return parser


#: subcommand -> its front end (each module's ``run``, looked up when called); conform and bench parse their own
_OWN_PARSERS = {"conform": conform, "bench": bench}
_FRONT_ENDS = {"info": info, "train": train, "eval": eval_cmd, "predict": predict, "fvd": fvd_cmd}


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _OWN_PARSERS:
        return _OWN_PARSERS[argv[0]].run(argv[1:])
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage, not the top-level one
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 2
    return _FRONT_ENDS[args.command].run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
