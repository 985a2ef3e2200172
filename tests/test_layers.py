"""The package's architecture, checked: layers that imports obey, no cycles, no hidden imports.

The pipeline's layers (docs/architecture.md) are the folders of ``einderiv/``:

    (errors, progress)  →  ir  →  frontend  →  calculus  →  analysis  →  emit  →  runtime  →  draws  →  (numcheck, api, dask, cli)

A module may import from its own layer and the layers before it, never after; no two
modules import each other, even through others; imports are at the top of a module (a
function-local import is how a cycle hides); no module reads another's private
(``_underscore``) names; no module is longer than about 500 lines.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "einderiv"
LAYERS = ["errors", "progress", "ir", "frontend", "calculus", "analysis", "emit", "runtime", "draws", "numcheck", "api",
          "dask", "cli", "__main__"]
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
