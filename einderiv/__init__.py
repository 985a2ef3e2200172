"""einderiv: symbolic index-notation derivatives of neural networks.

The pipeline, one module each:  parse (``parse``, ``grammar/einderiv.lark``)
→ check (``check``: summation convention, sizes → ``network.Network`` of IR)
→ derive (``diff`` rule table, ``simplify``, ``derive``: named adjoints,
Jacobians, every derivative block) → factor (``factor``, ``structure``)
→ emit (``emit.text``, ``emit.latex``, ``emit.numpy``; ``numcheck``).

See :mod:`einderiv.api` for the Python API and ``einderiv --help`` for the CLI.
"""
from .api import (CheckReport, Derivation, check, codegen, derivation_text, derive, latex, load,
                  structure)
from .errors import EinderivError

__all__ = ["load", "derive", "derivation_text", "latex", "codegen", "check", "structure",
           "Derivation", "CheckReport", "EinderivError"]
__version__ = "0.1.0"
