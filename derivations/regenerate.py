"""Regenerate what einderiv makes from every network in this folder.

    python derivations/regenerate.py

For each ``NAME.ein`` it writes ``NAME.txt`` (``einderiv derive``),
``NAME.tex`` (``einderiv latex``) and ``NAME_kernels.py`` (``einderiv
codegen``: Hessian blocks in the compact form), at order 2 unless a first-line directive
says otherwise (``# einderiv: order 3``; ``# einderiv: form compact`` prints the Hessian
blocks of a long unrolled network through second-order adjoints).  ``tests/test_derivations.py`` fails when a kept
file differs from what the current einderiv produces.
"""
from __future__ import annotations

import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ORDER = 2
_ORDER_LINE = re.compile(r"#\s*einderiv:\s*order\s+(\d+)\s*$")
_FORM_LINE = re.compile(r"#\s*einderiv:\s*form\s+(compact|expanded)\s*$")


def _directive(path: pathlib.Path, pattern: re.Pattern) -> str | None:
    """A ``# einderiv: …`` directive among the file's first two lines."""
    for line in path.read_text(encoding="utf-8").split("\n")[:2]:
        m = pattern.match(line.strip())
        if m:
            return m.group(1)
    return None


def order(path: pathlib.Path) -> int:
    """The derivative order a network is kept at: ``# einderiv: order N``, else ORDER."""
    found = _directive(path, _ORDER_LINE)
    return int(found) if found else ORDER


def expanded(path: pathlib.Path) -> bool:
    """Whether the kept text and LaTeX show Hessian blocks expanded (the default) or, with
    ``# einderiv: form compact``, through second-order adjoints (long unrolled networks)."""
    return _directive(path, _FORM_LINE) != "compact"


def outputs(path: pathlib.Path) -> dict[pathlib.Path, str]:
    """What einderiv generates for one network file, by output path."""
    import einderiv

    # paths relative to the repository root, so the outputs name the source portably
    rel = path.relative_to(HERE.parent).as_posix()
    network = einderiv.load(rel if pathlib.Path(rel).exists() else str(path))
    derivation = einderiv.derive(network, order(path), expanded=expanded(path))  # as printed
    compact = einderiv.derive(network, order(path), expanded=False)  # what `einderiv codegen` uses
    stem = path.with_suffix("")
    return {
        stem.with_suffix(".txt"): einderiv.derivation_text(derivation),
        stem.with_suffix(".tex"): einderiv.latex(derivation),
        stem.parent / f"{stem.name}_kernels.py": einderiv.codegen(compact),
    }


def is_template(path: pathlib.Path) -> bool:
    """A layer template (``depth n`` left symbolic): kept as its general form and a run-time-depth module."""
    from einderiv.analysis.template import load_template

    return load_template(str(path)) is not None


def networks() -> list[pathlib.Path]:
    return sorted(p for p in HERE.glob("*.ein") if not is_template(p))


def templates() -> list[pathlib.Path]:
    return sorted(p for p in HERE.glob("*.ein") if is_template(p))


def template_outputs(path: pathlib.Path) -> dict[pathlib.Path, str]:
    """``einderiv derive`` and ``einderiv latex`` of a template: the general form for any depth;
    ``einderiv codegen``: its module for a depth given at run time (emit/template_numpy.py)."""
    from einderiv.emit import latex, text
    from einderiv.analysis.template import general_form, load_template

    rel = path.relative_to(HERE.parent).as_posix()
    gf = general_form(load_template(rel if pathlib.Path(rel).exists() else str(path)), order(path))
    stem = path.with_suffix("")
    from einderiv.emit.template_numpy import generate_template

    kernels = generate_template(load_template(rel if pathlib.Path(rel).exists() else str(path)))
    return {stem.with_suffix(".txt"): text.render_general(gf), stem.with_suffix(".tex"): latex.render_general(gf),
            stem.parent / f"{stem.name}_kernels.py": kernels}


def main() -> int:
    import os

    os.chdir(HERE.parent)
    jobs = [(net, outputs) for net in networks()] + [(t, template_outputs) for t in templates()]
    for net, make in jobs:
        for out, text in make(net).items():
            out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            print(f"wrote {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
