"""einderiv: symbolic index-notation derivatives of neural networks.

The pipeline, one folder each (the imports obey this order):
``frontend`` (parse, check, summation → a ``Network`` of IR, or a layer ``Template``)
→ ``calculus`` (the rule table, simplify, derive: named adjoints, Jacobians, every
derivative block) → ``analysis`` (factor, fold, structure, the general form of a
template) → ``emit`` (text, LaTeX, NumPy/torch/JAX kernels); ``runtime`` runs a kernel module of
any backend from NumPy, ``numcheck`` checks kernels numerically, ``einderiv.dask`` runs them over
Dask arrays on a cluster.

See :mod:`einderiv.api` for the Python API and ``einderiv --help`` for the CLI.
"""
__version__ = "0.1.0"

from .api import (CheckReport, Derivation, GeneralForm, Network, Template, check, codegen,  # noqa: E402
                  derivation_text, derive, latex, load, structure)
from .errors import EinderivError, InternalError  # noqa: E402

__all__ = ["load", "derive", "derivation_text", "latex", "codegen", "check", "structure",
           "Network", "Template", "Derivation", "GeneralForm", "CheckReport", "EinderivError",
           "InternalError", "__version__"]
