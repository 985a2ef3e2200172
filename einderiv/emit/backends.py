"""The array libraries einderiv writes kernels for, by name: ``numpy``, ``torch``, ``jax``.

Each is a printer of the same lowered kernel (:mod:`einderiv.emit.numpy` describes the module
contract; :mod:`einderiv.emit.torch` and :mod:`einderiv.emit.jax` what differs).  Printing a
module needs none of the libraries; running it needs its own.
"""
from __future__ import annotations

from .jax import JaxPrinter
from .numpy import NumPyPrinter
from .torch import TorchPrinter

__all__ = ["BACKENDS", "PRINTERS"]

#: backend name → printer class
PRINTERS = {"numpy": NumPyPrinter, "torch": TorchPrinter, "jax": JaxPrinter}
BACKENDS = tuple(PRINTERS)
