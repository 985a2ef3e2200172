"""Build small networks directly as IR (independent of the parser) for engine tests."""
from __future__ import annotations

import sympy

from einderiv.errors import Location
from einderiv.ir import Add, Apply, Fn, Index, Prod, Ref
from einderiv.network import Definition, Network, TensorDecl, dim_symbol
from einderiv.objectives import objective_expr

LOC = Location("<test>", 1, 1)


def mlp(widths, acts, objective="softmax_cross_entropy", bias=False):
    """widths = [n0, n1, ..., nL, c]; acts = activation per hidden layer."""
    dims = tuple((f"n{k}", w) for k, w in enumerate(widths))
    D = [dim_symbol(n) for n, _ in dims]
    tensors = [TensorDecl("x", "input", (Index("i", D[0]),), LOC)]
    defs = []
    prev = "x"
    L = len(widths) - 2
    for k in range(1, L + 2):
        j, i = Index("j", D[k]), Index("i", D[k - 1])
        W = f"W{k}"
        tensors.append(TensorDecl(W, "weight", (j, i), LOC))
        lin = Prod((Ref(W, (j, i)), Ref(prev, (i,))), (j,))
        if bias:
            tensors.append(TensorDecl(f"b{k}", "weight", (j,), LOC))
            lin = Add((lin, Ref(f"b{k}", (j,))))
        name = f"v{k}" if k <= L else "p"
        expr = Apply(Fn(acts[k - 1], (0,)), (lin,)) if k <= L else lin
        defs.append(Definition(name, (j,), expr, LOC))
        prev = name
    l = Index("l", D[-1])
    tensors.insert(1, TensorDecl("y", "label", (l,), LOC))
    defs.append(Definition("f", (), objective_expr(objective, Ref("p", (l,)), Ref("y", (l,))), LOC))
    return Network("<test>", dims, tuple(tensors), (), tuple(defs), "f")
