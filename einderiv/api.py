"""The Python API: the same jobs as the command line, one function each.

    >>> import einderiv
    >>> net = einderiv.load("derivations/paper_mlp.ein")          # parse + check
    >>> d = einderiv.derive(net, order=2)                          # derive + factor
    >>> print(einderiv.derivation_text(d))                         # doctest: +SKIP
    >>> tex = einderiv.latex(d)                                     # standalone document
    >>> src = einderiv.codegen(d)                                   # NumPy module source
    >>> einderiv.check(d, seed=0).ok
    True
"""
from __future__ import annotations

from .frontend.check import load
from .calculus.derive import Derivation, derive  # derive(network, order=2, expanded=True)
from .emit import latex as _latex
from .emit import numpy as _numpy
from .emit import text as _text
from .numcheck import CheckReport
from .numcheck import check as _check
from .analysis.structure import summarize

__all__ = ["load", "derive", "derivation_text", "latex", "codegen", "check", "structure",
           "Derivation", "CheckReport"]


def derivation_text(derivation: Derivation, sizes: dict[str, int] | None = None) -> str:
    """The derivation in readable index notation, with the structure summary."""
    return _text.render(derivation, sizes)


def latex(derivation: Derivation, sizes: dict[str, int] | None = None) -> str:
    """A standalone LaTeX (amsmath) document of the derivation."""
    return _latex.render(derivation, sizes)


def codegen(derivation: Derivation, sizes: dict[str, int] | None = None) -> str:
    """Source of a standalone NumPy module (``gradient``, ``hessian``, ``hvp``, …).

    Every size must be known: from the file's ``dims`` or from ``sizes``.
    """
    return _numpy.generate(derivation, sizes)


def check(derivation: Derivation, sizes: dict[str, int] | None = None, seed: int = 0,
          batch: int = 3, tol: float = 1e-6) -> CheckReport:
    """Run the generated kernels and compare every block with central differences."""
    return _check(derivation, sizes, seed=seed, batch=batch, tol=tol)


def structure(derivation: Derivation, sizes: dict[str, int] | None = None) -> str:
    """The per-block structure table (outer products, terms, storage)."""
    return _text.structure_table(summarize(derivation, sizes))
