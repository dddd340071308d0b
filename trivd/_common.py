"""What the front ends of the ``trivd`` command share: threads, defaults, option parsing, usage checks."""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["add_threads_option", "setup_threads", "default_backend", "file_in_the_way", "parse_options"]


def add_threads_option(p) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads of torch and BLAS (default: the CPUs not already busy, from the load average; "
                        "a resumed run keeps its count)")


def setup_threads(cmd: str, requested: int | None, recorded: int | None = None, *, say: bool = True) -> tuple:
    """Apply ``--threads`` (or the run's recorded count, or the default): ``(n, the line that says which)``."""
    from trivd_core.threads import apply_threads, default_threads, describe_threads

    n = requested or recorded or default_threads()
    apply_threads(n)
    line = f"trivd {cmd}: {describe_threads(n, 'option' if requested else ('run' if recorded else 'default'))}"
    if say:
        print(line, file=sys.stderr, flush=True)
    return n, line


def default_backend() -> str:
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            return name
    from trivd_core._install import install_hint

    raise SystemExit("trivd train: neither JAX nor PyTorch is installed (the numpy backend cannot train: it has no "
                     f"autodiff); install one: {install_hint('jax')}")



def file_in_the_way(folder) -> str | None:
    """The existing file at ``folder`` or at its nearest existing ancestor (``None`` when that is a folder)."""
    p = os.path.abspath(folder)
    while p and not os.path.exists(p):
        p = os.path.dirname(p) if os.path.dirname(p) != p else ""
    return p if p and not os.path.isdir(p) else None



def parse_options(cmd: str, items: list[str]) -> dict:
    from trivd_core.configs import parse_assignments

    return parse_assignments(items, option=f"trivd {cmd}: --data-option")
