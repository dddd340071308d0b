"""``python -m trivd`` is the ``trivd`` command."""

import sys

from .cli import main

sys.exit(main())
