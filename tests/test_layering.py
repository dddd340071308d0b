"""The dependency direction of ARCHITECTURE.md, read from every import of every module, with no file exempt.

Layers, lowest first: ``reference < trivd_core < backends < conformance, benchmarks < trivd``.
A module may import only layers below its own (and its own package); ``reference`` is read
only by ``conformance``; backends never import each other; no two modules import each
other, directly or through others (no cycle), counting imports inside functions too.

Every form of import is read: ``import a.b``, ``from a import b``, relative imports,
``importlib.import_module(...)`` and ``__import__(...)`` with a string, or an f-string
whose leading text (or ``{__name__}``) names the package.  A dynamic import whose
package cannot be read from the source is allowed only in :data:`PLUGIN_LOADERS`: the
functions that load what the *user* names (a backend's entry point, a port's module, a
record's reference function); each of them is listed with the reason.

One kind of upward import is allowed, and only in one form: a deprecation shim (a
module-level ``__getattr__`` that warns ``DeprecationWarning`` and then imports the new
home of a moved name; :data:`SHIMS` lists every one).  Shims are not edges of the graph (they are not cycles either),
and :func:`test_deprecation_shims_warn_and_are_few` keeps their list short and explicit.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: layer rank per top-level package (equal ranks may not import each other)
LAYERS = {"reference": 0, "trivd_core": 1, "backends": 2, "conformance": 3, "benchmarks": 3, "trivd": 4}
#: packages only ``conformance`` may import from below (the spec is read by the suite and the tests alone)
READ_ONLY_BY_CONFORMANCE = {"reference"}
#: frameworks the numerical layers do not import (the core works through the array API; the reference is NumPy)
FRAMEWORKS = {"jax", "jaxlib", "optax", "torch", "torch_xla"}
#: the one framework import of the core: torch's TensorBoard writer (an optional metrics sink, not a backend)
CORE_FRAMEWORK_ALLOWED = {"torch.utils.tensorboard"}

#: (module, function) -> why it imports a module named at run time
PLUGIN_LOADERS = {
    ("backends", "load"): "a backend by name: the entry point of group trivd.backends (third-party backends)",
    ("conformance.targets", "_lookup"): "a record's function in the target package (reference, trivd_core, a port)",
    ("conformance.targets", "PortTarget.__init__"): "the third-party port the user names (trivd conform --port M)",
}
#: modules allowed to hold deprecation shims, and the new home each one forwards to (all go in 0.3)
SHIMS = {
    "trivd_core.cli": "trivd.cli",
    "trivd_core.train": "conformance.gate",
    "trivd_core.train.gate": "conformance.gate",
    "backends.numpy_backend": "backends.numpy",
    "backends.torch.xla": "backends.torch.sharding",
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (as written, resolved for relative imports)
    line: int
    where: str  # the enclosing function ("" at module level), e.g. "Klass.method"
    dynamic: bool = False  # importlib / __import__
    unresolved: bool = False  # a dynamic import whose package is not in the source
    shim: bool = False  # inside a module __getattr__ that warns DeprecationWarning


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module of the six layers (tests inside conformance/ included)."""
    out = {}
    for pkg in LAYERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _warns_deprecation(fn: ast.FunctionDef) -> bool:
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "warn":
            if any(isinstance(a, ast.Name) and a.id == "DeprecationWarning" for a in ast.walk(node)):
                return True
    return False


def _dynamic_target(arg: ast.expr, module: str) -> str | None:
    """The module named by an import_module/__import__ argument, as far as the source says (None: unknown)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values:
        text = ""
        for part in arg.values:
            if isinstance(part, ast.Constant):
                text += str(part.value)
            elif isinstance(part.value, ast.Name) and part.value.id == "__name__" and not text:
                text += module
            else:
                break
        # the text up to the first unknown part must name at least a package
        name = text.split(".")[0] if "." in text or text == module else ""
        return text.rstrip(".") if name else None
    return None


def imports_of(path: Path, module: str | None = None) -> list[Import]:
    """Every import in ``path`` (see the module docstring for the forms read)."""
    module = module or _module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def resolve(level: int, name: str | None) -> str:
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        if level > 1:
            base = base[: len(base) - (level - 1)]
        return ".".join(base + ([name] if name else []))

    def visit(node, where: str, shim: bool) -> None:
        for child in ast.iter_child_nodes(node):
            w, s = where, shim
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                w = f"{where}.{child.name}" if where else child.name
                s = shim or (not where and child.name == "__getattr__" and _warns_deprecation(child))
            elif isinstance(child, ast.ClassDef):
                w = f"{where}.{child.name}" if where else child.name
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, child.lineno, w, shim=s) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = resolve(child.level, child.module) if child.level else child.module
                for a in child.names:  # `from pkg import sub` imports the submodule pkg.sub when there is one
                    found.append(Import(module, f"{base}.{a.name}", child.lineno, w, shim=s))
            elif isinstance(child, ast.Call) and child.args and (
                    getattr(child.func, "attr", None) == "import_module"
                    or getattr(child.func, "id", None) in ("import_module", "__import__")):
                target = _dynamic_target(child.args[0], module)
                found.append(Import(module, target or ast.unparse(child.args[0]), child.lineno, w, dynamic=True,
                                    unresolved=target is None, shim=s))
            visit(child, w, s)

    visit(tree, "", False)
    return found


def _owner(name: str, modules) -> str | None:
    """The project module an imported name belongs to (``a.b.c`` -> the longest known prefix)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _top(name: str) -> str:
    return name.split(".")[0]


def layer_problems(modules: dict[str, Path]) -> list[str]:
    problems = []
    for mod, path in modules.items():
        for imp in imports_of(path, mod):
            src, dst = _top(mod), _top(imp.target)
            at = f"{path.relative_to(ROOT)}:{imp.line}"
            if imp.unresolved:
                key = (mod, imp.where)
                if key not in PLUGIN_LOADERS:
                    problems.append(f"{at}: a dynamic import of {imp.target!r} whose package the source does not "
                                    "name (only PLUGIN_LOADERS may load modules named at run time)")
                continue
            if imp.shim:
                if SHIMS.get(mod) != _owner(imp.target, modules) and SHIMS.get(mod) != imp.target:
                    problems.append(f"{at}: {mod} forwards to {imp.target}, not a listed shim (SHIMS)")
                continue
            if src in ("reference", "trivd_core") and (dst in FRAMEWORKS) and not (
                    src == "trivd_core" and any(imp.target.startswith(a) for a in CORE_FRAMEWORK_ALLOWED)):
                problems.append(f"{at}: {mod} imports the framework {imp.target}")
            if dst not in LAYERS or dst == src:
                continue
            if dst in READ_ONLY_BY_CONFORMANCE and src != "conformance":
                problems.append(f"{at}: {mod} imports {imp.target}: only conformance reads the reference")
            elif LAYERS[dst] >= LAYERS[src]:
                problems.append(f"{at}: {mod} imports {imp.target}, a layer at or above its own")
        if mod.startswith("backends."):
            own = mod.split(".")[1]
            for imp in imports_of(path, mod):
                t = imp.target.split(".")
                if not imp.shim and t[0] == "backends" and len(t) > 1 and t[1] not in (own, "common") and _owner(
                        imp.target, modules) not in ("backends",):
                    problems.append(f"{path.relative_to(ROOT)}:{imp.line}: backend {own} imports {imp.target}")
    return problems


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (any depth in the file; shims and plugin loads left out)."""
    graph = {m: set() for m in modules}
    for mod, path in modules.items():
        for imp in imports_of(path, mod):
            if imp.shim or imp.unresolved:
                continue
            owner = _owner(imp.target, modules)
            if owner is not None and owner != mod:
                graph[mod].add(owner)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


MODULES = project_modules()


def test_every_import_runs_downward():
    problems = layer_problems(MODULES)
    assert not problems, "\n".join(problems)


def test_no_import_cycle():
    found = cycles(import_graph(MODULES))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_layer_is_read():
    """The walk covers every layer (an empty layer would pass the checks above vacuously)."""
    assert {_top(m) for m in MODULES} == set(LAYERS)
    assert len(MODULES) > 80


def test_plugin_loaders_exist_and_are_the_only_unresolved_imports():
    unresolved = {(m, i.where) for m, p in MODULES.items() for i in imports_of(p, m) if i.unresolved}
    assert unresolved == set(PLUGIN_LOADERS), unresolved ^ set(PLUGIN_LOADERS)


def test_deprecation_shims_warn_and_are_few():
    shims = {m for m, p in MODULES.items() for i in imports_of(p, m) if i.shim}
    assert shims == set(SHIMS), shims ^ set(SHIMS)


# -- the checker itself: each rule catches what it is for ------------------------------------------------


def _fake(tmp_path, name: str, text: str) -> dict[str, Path]:
    path = tmp_path.joinpath(*name.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return {name: path}


@pytest.mark.parametrize("module,text,expected", [
    ("trivd_core.bad", "import importlib\nx = importlib.import_module('reference.ops')\n", "only conformance reads"),
    ("trivd_core.bad", "def f():\n    from backends import load\n", "a layer at or above"),
    ("trivd_core.bad", "import importlib\ndef f(p):\n    return importlib.import_module(f'backends.{p}')\n",
     "a layer at or above"),
    ("trivd_core.bad", "def f(p):\n    return __import__(p)\n", "does not name"),
    ("trivd_core.bad", "import jax.numpy\n", "the framework jax.numpy"),
    ("backends.bad", "from trivd import cli\n", "a layer at or above"),
    ("conformance.bad", "import benchmarks.run\n", "a layer at or above"),
    ("backends.jax.bad", "from backends.torch import BACKEND\n", "backend jax imports backends.torch"),
    ("trivd_core.bad", "def __getattr__(name):\n    import trivd.cli\n    return trivd.cli\n", "a layer at or above"),
])
def test_checker_catches(tmp_path, monkeypatch, module, text, expected):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    problems = layer_problems(_fake(tmp_path, module, text))
    assert any(expected in p for p in problems), problems


def test_checker_resolves_relative_and_name_imports_and_finds_cycles(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    mods = {}
    mods.update(_fake(tmp_path, "conformance.a", "from . import b\n"))
    mods.update(_fake(tmp_path, "conformance.b", "def f():\n    from .c import x\n"))
    mods.update(_fake(tmp_path, "conformance.c", "import importlib\ny = importlib.import_module(f'{__name__}'[:0] or "
                                                 "'conformance.a')\n"))
    mods.update(_fake(tmp_path, "conformance.d", "import importlib\nz = importlib.import_module(f'{__name__}.e')\n"))
    graph = import_graph(mods)
    assert graph["conformance.a"] == {"conformance.b"} and graph["conformance.b"] == {"conformance.c"}
    assert [i.target for i in imports_of(mods["conformance.d"], "conformance.d")][-1] == "conformance.d.e"
    mods.update(_fake(tmp_path, "conformance.c", "from .a import q\n"))
    assert cycles(import_graph(mods)) == [["conformance.a", "conformance.b", "conformance.c"]]
