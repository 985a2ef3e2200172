"""einderiv: symbolic index-notation derivatives of neural networks.

The pipeline, one folder each (the imports obey this order):
``frontend`` (parse, check, summation → a ``Network`` of IR, or a layer ``Template``)
→ ``calculus`` (the rule table, simplify, derive: named adjoints, Jacobians, every
derivative block) → ``analysis`` (factor, fold, structure, the general form of a
template) → ``emit`` (text, LaTeX, NumPy/torch/JAX kernels); ``runtime`` runs a kernel module of
any backend from NumPy, ``numcheck`` checks kernels numerically, ``einderiv.dask`` runs them over
Dask arrays on a cluster.

See :mod:`einderiv.api` for the Python API and ``einderiv --help`` for the CLI.

The API's names are loaded on first use (``einderiv.derive`` imports :mod:`einderiv.api`,
and with it SymPy and NumPy): ``import einderiv`` alone costs little, so that the
``einderiv`` command can answer from its cache without them (:mod:`einderiv.launch`).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .errors import EinderivError, InternalError  # noqa: E402

#: the API's names, served from einderiv.api on first use
API = ("load", "derive", "derivation_text", "latex", "codegen", "check", "structure",
       "Network", "Template", "Derivation", "GeneralForm", "CheckReport")
#: the subpackages and modules that ``einderiv.<name>`` reaches without importing it first
SUBMODULES = ("ir", "frontend", "calculus", "analysis", "emit", "runtime", "draws", "numcheck", "api",
              "dask", "cli", "cache", "launch", "errors", "progress")

__all__ = [*API, "EinderivError", "InternalError", "__version__"]


def __getattr__(name: str):
    """The API's names and the submodules, imported when first asked for (PEP 562)."""
    if name in API:
        value = getattr(importlib.import_module(".api", __name__), name)
    elif name in SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'einderiv' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API) | set(SUBMODULES))
