"""docs/module.md stays true: its Python blocks run, in order, in one namespace, from the repository root.

A ``print(X)  # text`` line must print exactly ``text``.  The page's own assertions check the
contract (shapes, batch means, factors, norms, Hessian keys and symmetry, HVP, GGN diagonal,
third derivatives against finite differences, dtypes, purity).
"""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "module.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
_PRINT = re.compile(r"^print\(.*\)\s+#\s(.*)$", re.M)


def blocks() -> list[str]:
    return _BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def test_the_page_has_its_worked_example():
    code = "\n".join(blocks())
    for name in ("PARAMS", "INPUTS", "objective", "gradient", "per_sample_gradient", "gradient_factors",
                 "GRADIENT_FACTOR_AXES", "expand_factors", "per_sample_gradient_norms", "hessian", "hvp",
                 "ggn_diagonal", "third_derivative", "param_shapes", "FAMILIES"):
        assert f".{name}" in code, f"docs/module.md calls no {name}"


def test_the_pages_example_runs_and_prints_what_it_says(monkeypatch):
    monkeypatch.chdir(ROOT)
    printed: list[str] = []
    namespace = {"__name__": "module_doc", "print": lambda *a: printed.append(" ".join(map(str, a)))}
    expected = []
    for number, code in enumerate(blocks(), start=1):
        exec(compile(code, f"docs/module.md block {number}", "exec"), namespace)
        expected += _PRINT.findall(code)
    assert printed == expected
