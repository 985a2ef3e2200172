"""The notation's built-in scalar functions and objectives, and user ``function`` definitions.

Each elementwise function is a SymPy expression in placeholder arguments
``z0, z1, …``: the built-ins here, a user's ``function swish(z) = z * sigmoid(z)``
parsed by :func:`parse_user_function` (which inlines the functions it calls).
Whether every derivative a derivation can need has a closed form is checked
when the file is read (:func:`check_differentiable`); the derivatives
themselves come from SymPy in :mod:`einderiv.calculus.functions`.
"""
from __future__ import annotations

import sympy

from ..errors import FunctionError, Location

ARG = tuple(sympy.Symbol(f"z{k}", real=True) for k in range(8))
_z = ARG[0]

#: name -> body in the placeholders z0, z1, …  (one concern: the definitions)
BUILTINS: dict[str, sympy.Expr] = {
    "relu": sympy.Max(0, _z),
    "tanh": sympy.tanh(_z),
    "sigmoid": 1 / (1 + sympy.exp(-_z)),
    "softplus": sympy.log(1 + sympy.exp(_z)),
    "exp": sympy.exp(_z),
    "log": sympy.log(_z),
    "square": _z**2,
    "identity": _z,
    "sqrt": sympy.sqrt(_z),
    # internal: division by a scalar expression
    "reciprocal": 1 / _z,
}

#: objectives f(p, y): vector logits/outputs p and labels y of the same size
OBJECTIVES = ("squared_error", "softmax_cross_entropy", "binary_cross_entropy")  # see objectives.py



def unevaluated(expr: sympy.Expr) -> bool:
    """Whether SymPy left a derivative unevaluated (no closed form)."""
    return expr.has(sympy.Derivative) or expr.has(sympy.Subs)


#: derivatives of user functions are checked up to this total order when the file is read
CHECKED_ORDER = 3

#: The SymPy functions a body and its derivatives may use: those that every code printer
#: (NumPy, torch, JAX) turns into array code (``tests/test_functions.py`` runs each of them).
#: ``DiracDelta`` only comes from differentiating a step and is dropped; ``Max`` and ``Min``
#: (and powers: ``sqrt``) are not SymPy ``Function``s and need no entry; ``Piecewise`` is what
#: ``where(comparison, a, b)`` builds.
PRINTABLE = ("exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
             "asinh", "acosh", "atanh", "erf", "erfc", "Abs", "sign", "Heaviside", "DiracDelta", "Piecewise")
_SHOWN = ", ".join(n for n in PRINTABLE if n not in ("Heaviside", "DiracDelta", "Piecewise")) + \
    ", sqrt, Max, Min, where"


def unprintable(expr: sympy.Expr) -> str | None:
    """The name of a function in ``expr`` that einderiv cannot write as array code, if any."""
    names = sorted({type(f).__name__ for f in expr.atoms(sympy.Function)} - set(PRINTABLE))
    return names[0] if names else None


def check_differentiable(name: str, params: tuple[str, ...], body: sympy.Expr, loc: Location,
                         locate=None) -> None:
    """Every partial derivative of ``body`` up to :data:`CHECKED_ORDER` must have a closed form,
    and it may use only :data:`PRINTABLE` functions (whose derivatives are printable too).

    SymPy leaves ``d/dz floor(z)`` as an unevaluated ``Derivative``; that must
    be an error naming the function, never a silently wrong kernel.  ``loggamma``
    differentiates to ``polygamma``, which no array library's printer writes: an
    error at the definition, never a crash when code is generated.  ``locate(fn)``
    gives where the body names ``fn`` (default: ``loc``).
    """
    frontier = [body]
    for order in range(1, CHECKED_ORDER + 1):
        nxt = []
        for expr in frontier:
            for k, p in enumerate(params):
                d = sympy.diff(expr, ARG[k])
                if not finite(d):
                    raise FunctionError(
                        f"function '{name}' has a derivative that is not finite everywhere: d/d{p} (order "
                        f"{order}) is {d.xreplace(dict(zip(ARG, map(sympy.Symbol, params))))}; expected finite "
                        "derivatives", loc)
                if unevaluated(d):
                    which = f"its argument {p}" if len(params) > 1 else p
                    raise FunctionError(
                        f"function '{name}' cannot be differentiated in closed form: SymPy leaves the "
                        f"derivative of {body.xreplace(dict(zip(ARG, map(sympy.Symbol, params))))} with "
                        f"respect to {which} (order {order}) unevaluated; rewrite it with functions "
                        "SymPy can differentiate", loc)
                if d != 0:
                    nxt.append(d)
        frontier = list(dict.fromkeys(nxt))
    bad = unprintable(body)
    if bad is not None:
        raise FunctionError(
            f"function '{name}' uses {bad}, which einderiv cannot write as NumPy, torch and JAX code; "
            f"expected the built-in functions and {_SHOWN}", (locate or (lambda f: loc))(bad))
    # (the derivatives of PRINTABLE functions are PRINTABLE: tests/test_functions.py)


def parse_user_function(name: str, params: tuple[str, ...], body: str, loc: Location,
                        known: dict[str, sympy.Expr]) -> sympy.Expr:
    """Parse ``body`` with SymPy; ``known`` maps earlier functions to their bodies.

    Calls of built-in or earlier user functions are inlined, so the stored
    body is a plain SymPy expression in the placeholders z0…zk.
    """
    if len(params) > len(ARG):
        raise FunctionError(f"function '{name}' has {len(params)} parameters; at most {len(ARG)} are supported", loc)
    local = {p: ARG[k] for k, p in enumerate(params)}

    def caller(fname: str, fbody: sympy.Expr):
        nargs = max((int(str(s)[1:]) + 1 for s in fbody.free_symbols if str(s)[:1] == "z"), default=1)

        def call(*args):
            if len(args) != nargs and fname in BUILTINS:
                raise FunctionError(f"function '{fname}' takes 1 argument, got {len(args)}", loc)
            return fbody.subs({ARG[k]: a for k, a in enumerate(args)}, simultaneous=True)
        return call

    names = {ARG[k]: sympy.Symbol(p) for k, p in enumerate(params)}  # the user's names, for messages

    def where(*args):
        """``where(z < d, a, b)``: a where the comparison holds, else b (a SymPy Piecewise)."""
        if len(args) != 3:
            raise FunctionError(f"where takes 3 arguments (where(z < d, a, b)), got {len(args)}", loc)
        if not isinstance(args[0], sympy.core.relational.Relational):
            raise FunctionError(f"the first argument of where must be a comparison (<, <=, >, >=), as in "
                                f"where(z < 1, a, b); got {sympy.sympify(args[0]).xreplace(names)}", loc)
        if any(isinstance(a, (sympy.logic.boolalg.Boolean)) for a in args[1:]):
            raise FunctionError("the branches of where must be numbers, not comparisons", loc)
        return sympy.Piecewise((args[1], args[0]), (args[2], True))

    namespace = {n: caller(n, b) for n, b in {**BUILTINS, **known}.items()}
    namespace.update({"where": where, "abs": sympy.Abs})
    namespace.update(local)
    try:
        expr = sympy.sympify(body, locals=namespace, convert_xor=True)
    except FunctionError:
        raise
    except Exception as exc:  # SymPy raises many types for bad text
        raise FunctionError(f"cannot read the body of function '{name}' as a SymPy expression: {exc}", loc) from None
    if isinstance(expr, sympy.core.relational.Relational):
        raise FunctionError(f"the body of function '{name}' is a comparison, not a number; a comparison "
                            "chooses between two values in where(z < d, a, b)", loc)
    if not isinstance(expr, sympy.Expr):
        raise FunctionError(f"the body of function '{name}' is not a scalar expression", loc)
    stray = sorted(str(s) for s in expr.free_symbols if s not in local.values())
    if stray:
        raise FunctionError(
            f"function '{name}' uses undefined name '{stray[0]}'; expected only its parameters "
            f"({', '.join(params)}) and known functions", loc)
    if expr.has(sympy.Derivative) or expr.has(sympy.Subs):
        raise FunctionError(f"function '{name}' cannot be differentiated in closed form", loc)
    if not finite(expr):
        raise FunctionError(f"the body of function '{name}' is not finite: SymPy reads it as {expr} (a division "
                            "by zero, or a number beyond float64's range?); expected a finite expression", loc)
    return expr


def finite(expr: sympy.Expr) -> bool:
    """Whether ``expr`` holds no infinity or NaN (``z/0`` is ``zoo*z``, ``z*0/0`` NaN)."""
    return not expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan)
