"""``python -m benchmarks [--quick] [--backends ...] [--config NAME] [--batch N] [--out DIR]``; see :mod:`benchmarks.run`."""

import sys

from .run import main

sys.exit(main())
