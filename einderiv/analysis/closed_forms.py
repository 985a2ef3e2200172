"""Closed forms of the functions' derivatives, as a reader writes them.

:func:`closed_forms` lists A′, A″, … of every function a derivation uses
(:func:`wanted_functions`), each from SymPy (:mod:`einderiv.calculus.functions`)
and then made readable (:func:`readable`): a derivative that SymPy writes in
``exp(−z)`` and ``1 + exp(−z)`` is written in the logistic function σ(z) =
1/(1 + e^{−z}) when that is no longer (``sigmoid′(z) = σ(z) (1 − σ(z))``,
``softplus′(z) = σ(z)``), and a product's factors are signed so each bracket
starts with its positive number (``(1 − σ(z))``, not ``−(σ(z) − 1)``).  The
forms the generated code evaluates are SymPy's; these are only shown, and
tests check that both are the same function.

Example::

    >>> from einderiv.calculus.functions import FunctionTable
    >>> from einderiv.frontend.builtins import ARG
    >>> str(readable(FunctionTable().derivative("sigmoid", (1,))))
    '(1 - sigma(z0))*sigma(z0)'
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..frontend.builtins import ARG
from ..ir import Apply, walk

#: the logistic function σ(z) = 1/(1 + e^{−z}), as the closed forms write it
SIGMA = sympy.Function("sigma")


@dataclass(frozen=True)
class ClosedForm:
    """A function's derivative, readable: ``tanh′(z) = 1 − tanh(z)²``."""

    fn: str
    deriv: tuple[int, ...]  # orders per argument
    expr: sympy.Expr  # in the placeholders einderiv.frontend.builtins.ARG


def wanted_functions(derivation) -> list[tuple[str, tuple[int, ...]]]:
    """(name, orders) of every derivative worth listing: A′ … A^(order) of each function used."""
    seen: dict[tuple[str, tuple[int, ...]], None] = {}
    exprs = [n.expr for n in derivation.nodes] + [q.expr for q in derivation.quantities]
    exprs += [b.expr for b in derivation.blocks.values()]
    for e in exprs:
        for x in walk(e):
            if isinstance(x, Apply):
                seen.setdefault((x.fn.name, x.fn.deriv), None)
    wanted: dict[tuple[str, tuple[int, ...]], None] = {}
    for name, deriv in sorted(seen):
        if len(deriv) == 1:
            for o in range(1, max(2, derivation.order) + 1):
                wanted.setdefault((name, (o,)), None)
        elif any(deriv):
            wanted.setdefault((name, deriv), None)
    return sorted(wanted)


def closed_forms(derivation) -> tuple[ClosedForm, ...]:
    """The readable closed form of each :func:`wanted_functions` derivative."""
    return tuple(ClosedForm(name, deriv, readable(derivation.table.derivative(name, deriv)))
                 for name, deriv in wanted_functions(derivation))


def readable(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` in σ where that is no longer and leaves no ``exp``; its brackets signed (:func:`signed`)."""
    for a in ARG:
        if a not in expr.free_symbols or not expr.has(sympy.exp):
            continue
        s = SIGMA(a)
        cand = sympy.factor(sympy.cancel(expr.subs(sympy.exp(-a), (1 - s) / s).subs(sympy.exp(a), s / (1 - s))))
        if not cand.has(sympy.exp) and sympy.count_ops(cand) <= sympy.count_ops(expr):
            expr = cand
    return signed(expr)


def signed(expr: sympy.Expr) -> sympy.Expr:
    """A product whose bracketed sums start with a positive number: ``−(σ − 1) σ`` → ``σ (1 − σ)``.

    The product is kept unevaluated (SymPy would multiply a lone −1 back into a bracket).
    """
    if not isinstance(expr, sympy.Mul) or not any(f.is_Add for f in expr.args):
        return expr
    coef, factors = sympy.Integer(1), []
    for f in expr.args:
        if f.is_Number:
            coef *= f
        elif f.is_Add and _negative_start(f):
            coef, f = -coef, -f
            factors.append(f)
        else:
            factors.append(f)
    plain = [f for f in factors if not f.is_Add]
    brackets = sorted((f for f in factors if f.is_Add), key=lambda f: (len(str(f)), str(f)))
    args = ([coef] if coef != 1 else []) + plain + brackets
    return sympy.Mul(*args, evaluate=False) if len(args) > 1 else args[0]


def _negative_start(s: sympy.Add) -> bool:
    """A sum whose number is negative (``σ − 1``), or without a number whose terms all are (``−σ − z``)."""
    const, _ = s.as_coeff_Add()
    if const != 0:
        return bool(const < 0)
    return all(t.could_extract_minus_sign() for t in s.args)
