"""Built-in objectives, written in index notation as IR (the checker expands a call of one).

Each builder takes the output vector ``p^l`` and label ``y^l`` (as refs that
share the index ``l``) and returns the per-sample scalar.  Their gradients
and Hessians are then derived by the same engine as the network:

* ``squared_error(p, y)       = ½ (p^l − y^l)(p^l − y^l)``
* ``softmax_cross_entropy(p, y) = logsumexp_l(p^l) − y^l p^l``
  (equal to −y^l log softmax(p)^l for labels that sum to one; its gradient is
  ``s − y`` and its Hessian ``diag(s) − s sᵀ``)
* ``binary_cross_entropy(p, y) = softplus(p^l) − y^l p^l`` summed over l
  (logits; equals −y log σ(p) − (1−y) log(1−σ(p)))
"""
from __future__ import annotations

import sympy

from ..ir import Add, Apply, Const, Expr, Fn, LogSumExp, Prod, Ref

HALF = Const(sympy.Rational(1, 2))
MINUS = Const(sympy.Integer(-1))


def _diff(p: Ref, y: Ref) -> Expr:
    return Add((p, Prod((MINUS, y), y.free)))


def squared_error(p: Ref, y: Ref) -> Expr:
    (l,) = p.free
    d = _diff(p, y)
    return Prod((HALF, d, d), ())


def softmax_cross_entropy(p: Ref, y: Ref) -> Expr:
    (l,) = p.free
    return Add((LogSumExp(p, l), Prod((MINUS, y, p), ())))


def binary_cross_entropy(p: Ref, y: Ref) -> Expr:
    (l,) = p.free
    per = Add((Apply(Fn("softplus", (0,)), (p,)), Prod((MINUS, y, p), (l,))))
    return Prod((per,), ())


BUILDERS = {
    "squared_error": squared_error,
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
}


def objective_expr(name: str, p: Ref, y: Ref) -> Expr:
    """IR for built-in objective ``name`` applied to vector refs ``p`` and ``y``."""
    return BUILDERS[name](p, y)
