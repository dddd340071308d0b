"""Shared set-up of the test suite.

The project runs pytest with ``--import-mode=importlib``, which does not put test
folders on ``sys.path``.  The helpers shared by several test modules live in
``tests/_test_helpers.py``; it is loaded here by file path and registered as the
module ``_test_helpers``, so test modules can ``from _test_helpers import ...``.
``tests/`` itself is deliberately not put on ``sys.path``: its ``backends/``
folder would then shadow the project's ``backends`` package as a namespace package
(an editable install resolves the project's packages after the path scan).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if "_test_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("_test_helpers", Path(__file__).with_name("_test_helpers.py"))
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["_test_helpers"] = _module
    _spec.loader.exec_module(_module)
