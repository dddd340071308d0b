"""``trivd conform``: check a backend or a third-party port against the reference (prints a table).

The options are the conformance runner's own (``trivd conform -h``).
"""

from __future__ import annotations

from conformance import runner

__all__ = ["run"]


def run(argv: list[str]) -> int:
    return int(runner.main(argv) or 0)
