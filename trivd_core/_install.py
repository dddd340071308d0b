"""Install hints that work from where the user stands.

trivd is not on the package index: ``pip install 'trivd[torch]'`` fails with "No matching
distribution".  From a checkout (the usual case: an editable install) the line is
``<this python> -m pip install -e '<checkout>[extra]'``, with ``.`` when the current folder is
the checkout; otherwise the source must be named (a clone or a git URL).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["install_hint"]


def _checkout() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "trivd_core").is_dir() else None


def _shown(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def install_hint(extra: str) -> str:
    """A pip command line that adds the ``extra`` (``"jax"``, ``"torch"``, ``"video"``, ...) to this install."""
    python = _shown(Path(sys.executable))
    if " " in python:
        python = f'"{python}"'
    root = _checkout()
    if root is not None:
        return f"{python} -m pip install -e '{_shown(root)}[{extra}]'"
    return f"{python} -m pip install 'trivd[{extra}] @ git+<the trivd repository URL>'  (trivd is not on PyPI)"
