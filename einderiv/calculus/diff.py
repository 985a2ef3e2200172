"""The derivative rule table: ∂expr/∂T for a tensor T, one rule per IR node.

``partial(e, name, wrt)`` differentiates ``e`` with respect to every
occurrence of the tensor ``name``; ``wrt`` are fresh indices for T's axes, so
the result carries ``e.free + wrt`` as free indices.  Other tensors are held
fixed (a *partial* derivative: the network-level chain rule lives in
:mod:`einderiv.derive`).

Scalar derivatives are never typed here: ``Apply`` just moves to the next
derivative ``Fn.d(k)``, whose SymPy expression :mod:`einderiv.functions`
computes.  Like JAX's ``defbilinear``, products need one rule (Leibniz), not
one per shape.
"""
from __future__ import annotations

from functools import singledispatch

from ..errors import InternalError
from ..ir import (ZERO, Add, Apply, ArgMax, Const, Delta, Expr, Index, Inv, LogSumExp, MatDet, Max, Prod, Ref,
                 Ones, Softmax, TensorName, Window, add, fresh, prod,
                 rename)


def partial(e: Expr, name: TensorName, wrt: tuple[Index, ...]) -> Expr:
    """∂e/∂name, with ``wrt`` naming the derivative's new axes."""
    return _d(e, name, wrt)


@singledispatch
def _d(e: Expr, name: TensorName, wrt: tuple[Index, ...]) -> Expr:
    raise InternalError(f"no derivative rule for IR node {type(e).__name__}")


# ---- Constants: numbers, the Kronecker delta, index-arithmetic selections, ones
@_d.register(Const)
@_d.register(Delta)
@_d.register(Window)
@_d.register(Ones)
@_d.register(ArgMax)  # piecewise constant: the maximisers' weights change only across a tie
def _constant(e, name, wrt):
    return ZERO


@_d.register
def _(e: Ref, name, wrt):
    if e.name != name:
        return ZERO
    if len(e.indices) != len(wrt):
        raise InternalError(f"tensor {name} used with {len(e.indices)} indices, declared with {len(wrt)}")
    return prod((Delta(a, b) for a, b in zip(e.indices, wrt)), e.free + wrt)


@_d.register
def _(e: Add, name, wrt):
    return add(_d(t, name, wrt) for t in e.terms)


@_d.register
def _(e: Prod, name, wrt):
    # Leibniz: one term per factor that depends on `name`
    terms = []
    for k, f in enumerate(e.factors):
        df = _d(f, name, wrt)
        if isinstance(df, Const) and df.value == 0:
            continue
        terms.append(prod(e.factors[:k] + (df,) + e.factors[k + 1:], e.out + wrt))
    return add(terms)


@_d.register
def _(e: Apply, name, wrt):
    # chain rule, Hadamard over the function's free indices
    terms = []
    for k, a in enumerate(e.args):
        da = _d(a, name, wrt)
        if isinstance(da, Const) and da.value == 0:
            continue
        terms.append(prod((Apply(e.fn.d(k), e.args), da), e.free + wrt))
    return add(terms)


@_d.register
def _(e: Softmax, name, wrt):
    # ∂s^k = s^k (∂x^k − s^m ∂x^m),  m summed over the softmax axis
    dx = _d(e.arg, name, wrt)
    if isinstance(dx, Const) and dx.value == 0:
        return ZERO
    k = e.over
    m = fresh(k.dim, k.name)
    s_m = Softmax(rename(e.arg, {k: m}), m)
    dx_m = rename(dx, {k: m})
    inner = add((dx, prod((Const(-1), s_m, dx_m), e.free + wrt)))
    return prod((e, inner), e.free + wrt)


@_d.register
def _(e: LogSumExp, name, wrt):
    # ∂ log Σ_k exp x^k = softmax(x)^k ∂x^k
    dx = _d(e.arg, name, wrt)
    if isinstance(dx, Const) and dx.value == 0:
        return ZERO
    return prod((Softmax(e.arg, e.over), dx), e.free + wrt)


@_d.register
def _(e: Max, name, wrt):
    # ∂ max_k x^k = a^k ∂x^k with a = argmax weights (1 on the maximiser; 1/m each on m tied ones)
    dx = _d(e.arg, name, wrt)
    if isinstance(dx, Const) and dx.value == 0:
        return ZERO
    return prod((ArgMax(e.arg, e.over, e.kind), dx), e.free + wrt)


def _transposed_inverse(e: MatDet | Inv) -> Inv:
    """inv(X)^col_row: the inverse of ``e``'s argument X with its rows on ``e.col``, its columns on
    ``e.row`` (X's own free indices are ``row``, ``col``), so that it contracts with ∂X^row_col."""
    return Inv(rename(e.arg, {e.row: e.col, e.col: e.row}), e.col, e.row)


@_d.register
def _(e: MatDet, name, wrt):
    # ∂ logdet X = inv(X)^b_a ∂X^a_b;  ∂ det X = det X · inv(X)^b_a ∂X^a_b  (a, b = row, col)
    dx = _d(e.arg, name, wrt)
    if isinstance(dx, Const) and dx.value == 0:
        return ZERO
    scale = (e,) if e.kind == "det" else ()
    return prod(scale + (_transposed_inverse(e), dx), wrt)


@_d.register
def _(e: Inv, name, wrt):
    # ∂ inv(X)^i_j = −inv(X)^i_a ∂X^a_b inv(X)^b_j
    dx = _d(e.arg, name, wrt)
    if isinstance(dx, Const) and dx.value == 0:
        return ZERO
    i, j = e.row, e.col
    a, b = fresh(i.dim, i.name), fresh(j.dim, j.name)
    left = Inv(rename(e.arg, {j: a}), i, a)
    right = Inv(rename(e.arg, {i: b}), b, j)
    return prod((Const(-1), left, rename(dx, {i: a, j: b}), right), e.free + wrt)
