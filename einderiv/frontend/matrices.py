"""Matrix functions of a square tensor: ``logdet(S)``, ``det(S)``, ``trace(S)`` (numbers) and
``inv(S)^i_j`` (a matrix, its two indices written after the call as a family member's are).

The argument is a bare tensor name — declared (a weight, data) or defined — with two indices of
equal size; an expression is defined first (``S^a_b = L^a_k L^b_k + ...``), then named.  The
first index of the argument's declaration or definition is the matrix's row, the second its
column.  ``trace(S)`` is ``S^a_a``; the others are the IR nodes :class:`~einderiv.ir.MatDet` and
:class:`~einderiv.ir.Inv`, whose derivatives stay in closed form through the inverse.
"""
from __future__ import annotations

from .. import ir
from . import syntax as S
from ..errors import FunctionError, IndexError_, NameError_, ShapeError
from ..ir import Name

#: the matrix functions: name → whether its value is a matrix (``inv``) or a number
MATRIX_FUNCTIONS = {"logdet": False, "det": False, "trace": False, "inv": True}


def matrix_factor(scope, n: S.Call):
    """IR of ``logdet(S)``, ``det(S)``, ``trace(S)`` or ``inv(S)^i_j`` in ``scope`` (a
    :class:`~einderiv.frontend.summation.Scope`), with its index occurrences [(name, location)]."""
    c = scope.c
    example = f"{n.name}(S)^i_j" if MATRIX_FUNCTIONS[n.name] else f"{n.name}(S)"
    if len(n.args) != 1:
        raise FunctionError(f"{n.name} takes 1 argument, a square matrix, as in {example}; got {len(n.args)}",
                            c.loc(n))
    a = n.args[0]
    if not isinstance(a, S.Use) or a.indices or Name(a.name) not in c.shapes:
        shown = f" (write {a.name}, not {S.written(a.name, a.indices)})" if isinstance(a, S.Use) and a.indices else ""
        raise FunctionError(f"the argument of {n.name} must be the bare name of a square tensor{shown}, as in "
                            f"{example}; for an expression define it first (S^a_b = ...) and write {n.name}(S)",
                            c.loc(a))
    name = Name(a.name)
    shape = c.shapes[name]
    if len(shape.dims) != 2:
        raise ShapeError(f"{n.name} needs a square matrix (a tensor with two indices of equal size), but "
                         f"{shape.written} has {len(shape.dims)} ind{'ex' if len(shape.dims) == 1 else 'ices'}",
                         c.loc(a))
    rows, cols = shape.dims
    if not c.same(rows, cols):
        raise ShapeError(f"{n.name} needs a square matrix, but {shape.written} is {c.show(rows)} × {c.show(cols)}; "
                         "expected two indices of equal size", c.loc(a))
    if not MATRIX_FUNCTIONS[n.name]:
        if n.indices:
            raise IndexError_(f"{n.name}({a.name}) is a number: it takes no indices (write {n.name}({a.name}))",
                              c.loc(n.indices[0]))
        r, k = (ir.fresh(rows, "a"), ir.fresh(cols, "b"))
        if n.name == "trace":  # S^a_a
            return ir.Prod((ir.Ref(name, (r, k)), ir.Delta(r, k)), ()), []
        return ir.MatDet(ir.Ref(name, (r, k)), r, k, n.name), []
    if len(n.indices) != 2:
        raise IndexError_(f"inv({a.name}) is a matrix: write its two indices (row, column) after the call, as in "
                          f"inv({a.name})^i_j; got {len(n.indices)}", c.loc(n.indices[0]) if n.indices else c.loc(n))
    for ix in n.indices:
        if ix.terms:
            raise IndexError_(f"inv({a.name}) takes plain indices, not index arithmetic", c.loc(ix))
    shown = f"inv({a.name})"
    i = scope.bind(n.indices[0], rows, shown, 1)
    j = scope.bind(n.indices[1], cols, shown, 2)
    occurrences = [(ix.name, c.loc(ix)) for ix in n.indices]
    if i == j:  # inv(S)^i_i: the inverse's diagonal, summed as any repeated index is
        k = ir.fresh(cols, j.name)
        return ir.Prod((ir.Inv(ir.Ref(name, (i, k)), i, k), ir.Delta(i, k)), (i,)), occurrences
    return ir.Inv(ir.Ref(name, (i, j)), i, j), occurrences


def reserved_matrix_name(name: str, loc) -> None:
    """A user function may not take a matrix function's name."""
    if name in MATRIX_FUNCTIONS:
        raise NameError_(f"'{name}' is the built-in matrix function {name}(S); choose another function name", loc)
