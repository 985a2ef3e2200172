"""Derivatives of scalar functions, from SymPy.

A :class:`FunctionTable` holds the built-in functions
(:data:`einderiv.frontend.builtins.BUILTINS`) and the user's ``function``
definitions as SymPy expressions in the placeholders ``z0, z1, …``; their
partial derivatives come from ``sympy.diff`` — nothing is hand-typed.
``DiracDelta`` (the derivative of ReLU's Heaviside) is zero almost everywhere
and is dropped, as autodiff frameworks do.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy

from ..errors import FunctionError
from ..frontend.builtins import ARG, BUILTINS, unevaluated


@dataclass(frozen=True)
class FunctionTable:
    """Built-ins plus the user's ``function`` definitions."""

    user: tuple[tuple[str, int, sympy.Expr], ...] = ()

    def arity(self, name: str) -> int | None:
        if name in BUILTINS:
            return 1
        for n, k, _ in self.user:
            if n == name:
                return k
        return None

    def body(self, name: str) -> sympy.Expr:
        if name in BUILTINS:
            return BUILTINS[name]
        for n, _, b in self.user:
            if n == name:
                return b
        raise FunctionError(f"unknown function '{name}'")

    def derivative(self, name: str, deriv: tuple[int, ...]) -> sympy.Expr:
        """The partial derivative ∂^deriv f as a SymPy expression in z0, z1, …"""
        return _derivative(self, name, deriv)


@lru_cache(maxsize=None)
def _derivative(table: FunctionTable, name: str, deriv: tuple[int, ...]) -> sympy.Expr:
    expr = table.body(name)
    for k, order in enumerate(deriv):
        if order:
            expr = sympy.diff(expr, ARG[k], order)
    if unevaluated(expr):
        raise FunctionError(f"function '{name}' has no closed-form derivative {deriv}: SymPy cannot "
                            f"differentiate {table.body(name)}")
    return expr.replace(lambda e: isinstance(e, sympy.DiracDelta), lambda e: sympy.Integer(0))


