"""Build small networks directly as IR (independent of the parser) for engine tests."""
from __future__ import annotations


from einderiv.errors import Location
from einderiv.ir import Add, Apply, Fn, Index, Name, Prod, Ref
from einderiv.frontend.network import Definition, Network, TensorDecl, dim_symbol
from einderiv.frontend.objectives import objective_expr

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


def rnn(T, n, h, c, act="tanh", objective="squared_error", all_steps=False):
    """An Elman RNN unrolled over T steps, members named ``h(t)``, ``x(t)``."""
    dims = (("n", n), ("h", h), ("c", c))
    Dn, Dh, Dc = (dim_symbol(d) for d, _ in dims)
    j, i, k, l = Index("j", Dh), Index("i", Dh), Index("k", Dn), Index("l", Dc)
    tensors = [TensorDecl(Name("x", (t,)), "input", (k,), LOC) for t in range(1, T + 1)]
    tensors += [TensorDecl("y", "label", (l,), LOC), TensorDecl("W", "weight", (j, i), LOC),
                TensorDecl("V", "weight", (j, k), LOC), TensorDecl("U", "weight", (l, j), LOC),
                TensorDecl(Name("h", (0,)), "input", (j,), LOC)]
    defs = []
    for t in range(1, T + 1):
        lin = Add((Prod((Ref("W", (j, i)), Ref(Name("h", (t - 1,)), (i,))), (j,)),
                   Prod((Ref("V", (j, k)), Ref(Name("x", (t,)), (k,))), (j,))))
        defs.append(Definition(Name("h", (t,)), (j,), Apply(Fn(act, (0,)), (lin,)), LOC))
    steps = range(1, T + 1) if all_steps else (T,)
    for t in steps:
        defs.append(Definition(Name("p", (t,)), (l,), Prod((Ref("U", (l, j)), Ref(Name("h", (t,)), (j,))), (l,)), LOC))
    obj = [objective_expr(objective, Ref(Name("p", (t,)), (l,)), Ref("y", (l,))) for t in steps]
    defs.append(Definition("f", (), obj[0] if len(obj) == 1 else Add(tuple(obj)), LOC))
    return Network("<test>", dims, tuple(tensors), (), tuple(defs), "f")
