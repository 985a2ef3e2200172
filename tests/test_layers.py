"""The package's architecture, checked: layers that imports obey, no cycles, no hidden imports.

The pipeline's layers (docs/architecture.md) are the folders of ``einderiv/``:

    (errors, progress)  →  ir  →  frontend  →  calculus  →  analysis  →  emit  →  runtime  →  draws  →  (numcheck, api, dask, cli)

A module may import from its own layer and the layers before it, never after; no two
modules import each other, even through others; imports are at the top of a module (a
function-local import is how a cycle hides); no module reads another's private
(``_underscore``) names; no module is longer than about 500 lines.  The light entry point
(``einderiv.launch``, with the cache and the package itself) imports only the standard library,
and only it and the package import einderiv modules at run time (``importlib``).
"""
from __future__ import annotations

import ast
import pathlib
import sys

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "einderiv"
LAYERS = ["errors", "progress", "cache", "ir", "frontend", "calculus", "analysis", "emit", "runtime", "draws",
          "numcheck", "api", "dask", "cli", "launch", "__main__"]
#: the light half of the command line (a cached answer): these import only the standard library
#: and each other, so that answering from the cache never loads SymPy, NumPy or lark
LIGHT = {"einderiv", "einderiv.errors", "einderiv.cache", "einderiv.launch", "einderiv.__main__"}
#: the only modules that import an einderiv module at run time (importlib), each for a reason its
#: docstring gives: the package's names on first use (PEP 562), the entry point's heavy half on a miss
DYNAMIC = {"einderiv", "einderiv.launch"}
MAX_LINES = 500


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = modules()


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself
        return len(LAYERS)
    return LAYERS.index(parts[1])


def resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """Absolute einderiv modules an ``import from`` statement reads."""
    if node.level:
        base = module.split(".")
        is_pkg = MODULES[module].name == "__init__.py"
        base = base[: len(base) - node.level + (1 if is_pkg else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("einderiv"):
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


def imports(module: str):
    """(imported module, imported name, whether at top level, line) for every einderiv import."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for target, alias in zip(resolve(module, node), node.names):
                yield target, alias.name, id(node) in top, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("einderiv"):
                    yield alias.name, "", id(node) in top, node.lineno


def test_imports_obey_the_layers():
    bad = [f"{m}:{line} imports {t} (layer {LAYERS[layer(t)]} after {LAYERS[layer(m)]})"
           for m in MODULES for t, _, _, line in imports(m)
           if t in MODULES and layer(t) > layer(m) and t != "einderiv"]
    assert not bad, "\n".join(bad)


def test_no_function_local_imports():
    bad = [f"{m}:{line} imports {t} inside a function" for m in MODULES
           for t, _, at_top, line in imports(m) if not at_top]
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules():
    bad = [f"{m}:{line} imports {name} from {t}" for m in MODULES for t, name, _, line in imports(m)
           if name.startswith("_") and not name.startswith("__") and t != m]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {m: {t for t, _, _, _ in imports(m) if t in MODULES and t != m and not m.startswith(t + ".")
                 and t != "einderiv"} for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    n = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines; split it by concern (at most about {MAX_LINES})"


def test_the_light_entry_point_imports_only_the_standard_library():
    bad = []
    for m in sorted(LIGHT):
        tree = ast.parse(MODULES[m].read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level or (node.module or "").startswith("einderiv"):
                    bad += [f"{m} imports {t}" for t in resolve(m, node) if t in MODULES and t not in LIGHT]
                    continue
                names = [node.module or ""]
            else:
                continue
            bad += [f"{m} imports {n}" for n in names
                    if n.split(".")[0] not in sys.stdlib_module_names and n != "__future__"]
    assert not bad, "\n".join(bad)


def test_einderiv_modules_are_imported_at_run_time_only_by_the_entry_point():
    bad = []
    for m in MODULES:
        for node in ast.walk(ast.parse(MODULES[m].read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                    "import_module", "__import__"):
                first = node.args[0] if node.args else None
                target = first.value if isinstance(first, ast.Constant) else None
                if m not in DYNAMIC and target is not None and target.startswith((".", "einderiv")):
                    bad.append(f"{m}:{node.lineno} imports {target} at run time")
    assert not bad, "\n".join(bad)
