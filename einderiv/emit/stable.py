"""Elementwise bodies rewritten so that generated code stays finite at saturation.

SymPy differentiates ``sigmoid(z) = 1/(1 + exp(−z))`` and ``softplus(z) = log(1 + exp(z))``
into quotients of exponentials (``exp(z)/(exp(z) + 1)``) that are ``inf/inf = nan`` in float64
once ``|z|`` passes about 709.  :func:`stable` rewrites a body before it is printed:

* ``log(1 + exp(a))`` → :class:`Softplus` ``(a)``, printed as ``logaddexp(0, a)``;
* every ``exp(c·a)`` (``c`` a number) → ``(σ(a)/(1 − σ(a)))^c``, the quotient cancelled; kept
  only when the result has no ``σ(a)`` left in a denominator (then it is a polynomial in
  ``σ(a)``: ``sigmoid′ = σ(1 − σ)``, ``softplus′ = σ``, ``swish″ = …``), with each factor
  ``1 − σ(a)`` written ``σ(−a)`` (exact where ``σ(a)`` rounds to 1);
* :class:`Sigmoid` is printed as a stable logistic function (``exp(−logaddexp(0, −a))``,
  ``torch.sigmoid``).

The rewrite is an identity (``exp(a) = σ(a)/(1 − σ(a))`` for real ``a``); the documents keep
SymPy's forms (and :mod:`einderiv.analysis.closed_forms` their readable σ forms).  What the
rewrite cannot remove — an ``exp`` of an argument that is not bounded above, left in a body —
:func:`overflow_risks` reports, for a warning on a user's function.
"""
from __future__ import annotations

import functools

import sympy

from ..analysis.closed_forms import wanted_functions
from ..frontend.builtins import ARG

__all__ = ["Sigmoid", "Softplus", "stable", "overflow_risks", "overflow_warnings"]


class Sigmoid(sympy.Function):
    """The logistic function σ(a) = 1/(1 + e^{−a}), kept whole so that it is printed stably."""

    nargs = 1

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, a, **kwargs):
        return 1 / (1 + sympy.exp(-a))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


class Softplus(sympy.Function):
    """log(1 + e^{a}), kept whole so that it is printed stably (``logaddexp(0, a)``)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, a, **kwargs):
        return sympy.log(1 + sympy.exp(a))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


def _base(a: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """``a = c·b`` with ``c`` a number and ``b`` written without a leading minus sign."""
    c, b = a.as_coeff_Mul()
    if b.could_extract_minus_sign():
        c, b = -c, -b
    return c, b


def _softplus(expr: sympy.Expr) -> sympy.Expr:
    """``log(1 + exp(a))`` → ``Softplus(a)``."""
    def fix(e):
        arg = e.args[0]
        if arg.is_Add and len(arg.args) == 2 and sympy.S.One in arg.args:
            other = arg.args[1] if arg.args[0] == 1 else arg.args[0]
            if isinstance(other, sympy.exp):
                return Softplus(other.args[0])
        return e
    return expr.replace(lambda e: isinstance(e, sympy.log), fix)


def _in_sigmoid(expr: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
    """``expr`` with every ``exp(c·b)`` (``c`` rational) written in σ(b), or None when σ(b) stays
    in a denominator."""
    s = sympy.Dummy("s", positive=True)
    swap = {}
    for e in expr.atoms(sympy.exp):
        c = sympy.simplify(e.args[0] / b)
        if c.is_Rational:
            swap[e] = (s / (1 - s)) ** c
    cand = sympy.cancel(sympy.together(expr.xreplace(swap)))
    num, den = sympy.fraction(cand)
    if s in den.free_symbols or cand.has(sympy.exp(b)) or cand.has(sympy.exp(-b)):
        return None
    if any(s in f.free_symbols for f in cand.atoms(sympy.Function)):  # log(s/(1 − s) + 2): no gain
        return None
    num = sympy.factor(num, s) if s in num.free_symbols else num
    # a factor (s − 1)^k is (−σ(−b))^k: exact where σ(b) rounds to one
    t = sympy.Dummy("t", positive=True)
    num = num.replace(lambda e: e.is_Add and sympy.expand(e - (s - 1)) == 0, lambda e: -t)
    num = num.replace(lambda e: e.is_Add and sympy.expand(e - (1 - s)) == 0, lambda e: t)
    return (num / den).xreplace({s: Sigmoid(b), t: Sigmoid(-b)})


@functools.lru_cache(maxsize=None)
def stable(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` rewritten so that it does not overflow where its value is finite (see the module
    docstring); an expression without ``exp`` comes back unchanged.

    >>> z = sympy.Symbol("z", real=True)
    >>> stable(sympy.exp(z) / (sympy.exp(z) + 1))
    Sigmoid(z)
    >>> stable(sympy.log(1 + sympy.exp(z)))
    Softplus(z)
    """
    if not expr.has(sympy.exp):
        return expr
    expr = _softplus(expr)
    coefs: dict[sympy.Expr, list] = {}
    for e in expr.atoms(sympy.exp):
        if not e.args[0].is_number:
            c, b = _base(e.args[0])
            coefs.setdefault(b, []).append(abs(c))
    # exp(−2z) alone is in σ(2z), exp(−z) and exp(−2z) together in σ(z): the gcd of the coefficients
    bases = sorted((functools.reduce(sympy.gcd, cs) * b for b, cs in coefs.items()), key=sympy.default_sort_key)
    for b in bases:
        cand = _in_sigmoid(expr, b)
        if cand is not None:
            expr = cand
    return expr


def overflow_risks(expr: sympy.Expr) -> list[sympy.Expr]:
    """The terms left in ``stable(expr)`` that can overflow: ``exp(a)`` of an ``a`` not bounded
    above (``exp(−z²)`` is safe, ``exp(z)`` is not), ``cosh(a)``, ``sinh(a)``, ``2**a``."""
    body = stable(expr)
    risky = {e for e in body.atoms(sympy.exp) if not e.args[0].is_nonpositive}
    risky |= body.atoms(sympy.cosh, sympy.sinh)
    risky |= {e for e in body.atoms(sympy.Pow) if e.base.is_number and not e.exp.is_number}
    return sorted((e for e in risky if not e.is_number), key=sympy.default_sort_key)


#: how a warning writes the derivative of a function of one argument
PRIMES = {0: "", 1: "′", 2: "″", 3: "‴"}


def overflow_warnings(derivation) -> list[str]:
    """One line per user function whose generated code can overflow (:func:`overflow_risks` of
    its body or of a derivative the derivation uses), located at its definition:
    ``net.ein:3:1: warning: function 'g': the generated code evaluates exp(z) (in g, g′), …``."""
    used = {name: [d for n, d in wanted_functions(derivation) if n == name] for name, _ in wanted_functions(derivation)}
    lines = []
    for fn in derivation.network.functions:
        if fn.name not in used:
            continue
        names = dict(zip(ARG, (sympy.Symbol(p, real=True) for p in fn.params)))
        seen: dict[str, list[str]] = {}
        for deriv in [(0,) * len(fn.params)] + used[fn.name]:
            for term in overflow_risks(derivation.table.derivative(fn.name, deriv)):
                where = fn.name + (PRIMES.get(deriv[0], f"^({deriv[0]})") if len(deriv) == 1 else
                                   f" ∂{''.join(map(str, deriv))}" if any(deriv) else "")
                seen.setdefault(str(term.xreplace(names)), []).append(where)
        for term, where in seen.items():
            lines.append(f"{fn.loc}: warning: function '{fn.name}': the generated code evaluates {term} "
                         f"(in {', '.join(dict.fromkeys(where))}), which overflows to inf in float64 once its "
                         "exponent passes about 709, and can then give inf or nan; write it with sigmoid or "
                         "softplus (evaluated stably) or bound its argument")
    return lines
