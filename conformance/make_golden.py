"""Write the golden vectors: ``python -m conformance.make_golden [--out DIR] [--ops PATTERN] [--prune]``.

For every op record (or those matching ``--ops``) writes ``<DIR>/<record>.npz``
with float64 inputs from the record's fixed seeds and the reference's outputs
(format in :mod:`conformance.golden`).  ``DIR`` defaults to
``conformance/golden``.  ``--prune`` deletes ``.npz`` files in ``DIR`` that no
record writes any more (the tests require one file per record).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .golden import GOLDEN_DIR, golden_path, write
from .records import select


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.make_golden", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(GOLDEN_DIR), help="output directory (default: conformance/golden)")
    p.add_argument("--ops", metavar="PATTERN", help="comma-separated record names, base names or * globs")
    p.add_argument("--prune", action="store_true", help="delete .npz files that no record writes")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    records = select(args.ops)
    if not records:
        print(f"make_golden: no op record matches {args.ops!r}", file=sys.stderr)
        return 2
    total = 0
    for rec in records:
        path = write(rec, out)
        total += path.stat().st_size
        if not args.quiet:
            print(f"{path.name:36s} {path.stat().st_size:8d} bytes  ({len(rec.cases)} cases)")
    expected = {golden_path(r, out).name for r in select(None)}
    stale = sorted(f for f in out.glob("*.npz") if f.name not in expected)
    for f in stale:
        if args.prune:
            f.unlink()
        print(f"{'deleted' if args.prune else 'stale (use --prune)'}: {f.name}", file=sys.stderr)
    if not args.quiet:
        print(f"{len(records)} files, {total} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
