"""``trivd bench``: the cost tables of Table 1 / Table 2 per backend (``trivd bench -h``; benchmarks/)."""

from __future__ import annotations

import sys

from benchmarks import run as bench_run
from trivd_core.threads import default_threads

__all__ = ["run"]


def run(argv: list[str]) -> int:
    rest = list(argv)
    if "--threads" not in rest and not any(a.startswith("--threads=") for a in rest) and not (
            {"-h", "--help", "--quick"} & set(rest)):
        rest = [*rest, "--threads", str(default_threads())]  # the children would oversubscribe otherwise
        print(f"trivd bench: --threads {rest[-1]} (the CPUs not already busy; pass --threads N to change)",
              file=sys.stderr, flush=True)
    return int(bench_run.main(rest, prog="trivd bench") or 0)
