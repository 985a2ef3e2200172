"""Regenerate what einderiv makes from every network in this folder.

    python derivations/regenerate.py

For each ``NAME.ein`` it writes ``NAME.txt`` (``einderiv derive NAME.ein``),
``NAME.tex`` (``einderiv latex``) and ``NAME_kernels.py`` (``einderiv codegen``), each with
the commands' defaults — which a file's directives set, as they do for every command
(``# einderiv: order 3``; ``# einderiv: form compact`` prints the Hessian blocks of a long
unrolled network through second-order adjoints; read by :mod:`einderiv.frontend.header`).
``tests/test_derivations.py`` fails when a kept file differs from what the current einderiv
produces.
"""
from __future__ import annotations

import os
import pathlib
import sys

import einderiv

HERE = pathlib.Path(__file__).resolve().parent


def _load(path: pathlib.Path):
    # paths relative to the repository root, so the outputs name the source portably
    rel = path.relative_to(HERE.parent).as_posix()
    return einderiv.load(rel if pathlib.Path(rel).exists() else str(path))


def outputs(path: pathlib.Path) -> dict[pathlib.Path, str]:
    """What einderiv generates for one network file, by output path (``einderiv derive``,
    ``latex``, ``codegen``, with the file's directives)."""
    derivation = einderiv.derive(_load(path))  # the file's directives, as the command line reads them
    stem = path.with_suffix("")
    return {
        stem.with_suffix(".txt"): einderiv.derivation_text(derivation),
        stem.with_suffix(".tex"): einderiv.latex(derivation),
        stem.parent / f"{stem.name}_kernels.py": einderiv.codegen(derivation),
    }


def is_template(path: pathlib.Path) -> bool:
    """A layer template (``depth n`` left symbolic): kept as its general form and a run-time-depth module."""
    return isinstance(_load(path), einderiv.Template)


def networks() -> list[pathlib.Path]:
    return sorted(p for p in HERE.glob("*.ein") if not is_template(p))


def templates() -> list[pathlib.Path]:
    return sorted(p for p in HERE.glob("*.ein") if is_template(p))


def template_outputs(path: pathlib.Path) -> dict[pathlib.Path, str]:
    """``einderiv derive`` and ``einderiv latex`` of a template: the general form for any depth
    (a recurrence: any length, in the file's Hessian form); ``einderiv codegen``: the module for
    a depth (a recurrence: a length) given at run time."""
    template = _load(path)
    general = einderiv.derive(template)  # the file's directives, as the command line reads them
    stem = path.with_suffix("")
    out = {stem.with_suffix(".txt"): einderiv.derivation_text(general),
           stem.with_suffix(".tex"): einderiv.latex(general)}
    out[stem.parent / f"{stem.name}_kernels.py"] = einderiv.codegen(template)
    return out


def main() -> int:
    os.chdir(HERE.parent)
    jobs = [(net, outputs) for net in networks()] + [(t, template_outputs) for t in templates()]
    for net, make in jobs:
        for out, text in make(net).items():
            out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            print(f"wrote {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
