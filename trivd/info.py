"""``trivd info``: version, backends and whether they start here, fast paths, cell kinds; ``--config`` summaries.

``trivd info --config NAME`` prints the parameter counts of G, E and every
sub-discriminator and the pixels each discriminator processes per video (section 3.1).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import backends
from trivd_core import __version__, ops

from ._common import default_backend

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="versions, backends, fast paths and cell kinds")
    p.add_argument("--config", default=None, metavar="NAME|FILE",
                   help="print parameter and pixel counts of a config (a name or a .json/.toml file) instead")


def run(args: argparse.Namespace) -> int:
    """``trivd info``: 0, or 2 for a --config that does not load."""
    if args.config:
        from trivd_core.configs import load_config
        from trivd_core.summary import describe

        try:
            config = load_config(args.config)
        except ValueError as exc:
            print(f"trivd info: --config: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        print(describe(config))
        return 0

    print(f"trivd {__version__} (Python {platform.python_version()}, {platform.machine()})")
    try:
        trains = os.environ.get("TRIVD_TRAIN_BACKEND") or default_backend()
    except SystemExit:
        trains = "none (install jax or torch)"
    print(f"default backend of train/eval/predict: {trains}  (--backend, or TRIVD_TRAIN_BACKEND; the first of jax, "
          "torch that is installed)")
    print(f"default array backend of backends.load() and trivd conform: {backends.default_name()}  (TRIVD_BACKEND)")
    print("backends:")
    for name in backends.names():
        try:
            b = backends.load(name)
            xp = b.namespace()
            fast = sorted(ops.fast_paths(xp))
            f64 = "float64" if b.supports_float64 else "float32 only"
            print(f"  {name:<8} available   {f64:<13} fast paths: {', '.join(fast) or '-'}")
        except Exception as exc:  # a backend that cannot start is reported, not fatal
            print(f"  {name:<8} unavailable ({exc.__class__.__name__}: {str(exc).splitlines()[0]})")
    try:
        from trivd_core.cells import KINDS  # noqa: PLC0415

        print(f"cell kinds: {', '.join(KINDS)}")
    except ImportError:
        pass
    return 0
