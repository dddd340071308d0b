"""The dependency direction of ARCHITECTURE.md, checked on the source: reference <- conformance -> backends -> trivd_core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Top-level package names imported anywhere in ``path`` (absolute imports and importlib.import_module literals)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value).split(".")[0])
    return names


def _files(package: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in sorted((ROOT / package).rglob("*.py")) if p.name not in exclude and "test" not in p.name]


@pytest.mark.parametrize("path", _files("trivd_core", exclude=("cli.py",)), ids=lambda p: p.name)
def test_core_imports_no_other_layer(path):
    assert not _imports(path) & {"reference", "conformance", "backends"}


@pytest.mark.parametrize("path", _files("reference"), ids=lambda p: p.name)
def test_reference_imports_only_numpy(path):
    assert not _imports(path) & {"trivd_core", "conformance", "backends", "jax", "torch"}


def test_backends_do_not_import_each_other():
    for name, other in (("jax", "torch"), ("torch", "jax")):
        for path in _files(f"backends/{name}"):
            src = path.read_text()
            assert f"backends.{other}" not in src and f"import {other}\n" not in src, path


def test_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import importlib\nx = importlib.import_module('reference.ops')\nfrom conformance import runner\n")
    assert {"reference", "conformance"} <= _imports(bad)
