"""Benchmarks of trivd: the cost columns of the paper's Table 1, the recurrent units' costs,
and the warps and the training step against the machine's measured limits.

``python -m benchmarks`` (``trivd bench``) runs them; see :mod:`benchmarks.run` for what is
measured, :mod:`benchmarks.worker` for how (child processes, memory and FLOP methods),
:mod:`benchmarks.counting` for the byte and FLOP formulas, :mod:`benchmarks.paper` for the
paper's numbers, and docs/benchmarks.md for results.  Benchmarks print tables; nothing here
asserts a timing.
"""

from . import counting, paper

__all__ = ["counting", "paper"]
