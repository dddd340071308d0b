"""Shared set-up of the test suite.

The project runs pytest with ``--import-mode=importlib``, which does not put test
folders on ``sys.path``; this folder is added so that test modules can share
``_test_helpers`` (a uniquely named helper module) instead of repeating helpers.
"""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
