"""Lowering a Hessian block written into the P × P buffer (a :class:`~einderiv.emit.kernel.Block`
with :class:`~einderiv.emit.kernel.Into`; NumPy helpers in :mod:`einderiv.emit.numpy_buffer`).

The block's variable is its view of the buffer.  Each term of the block is written into that
view, batch mean included (the 1/B scales the smallest operand or the write itself):

* **outer** — ``G[j,k] a[i] b[l]`` over the block's axes (j, i, k, l), the Gauss–Newton and
  second-order-adjoint term of two dense layers: ``_outer_into``, a matmul per row chunk straight
  into the buffer, one for all the outer terms with the same ``a`` (their rows G b summed
  first: the block with the last layer, adj_p[k] J[l,j] x[i] + hess[j,k] v[l] x[i], is one
  matmul); a diagonal block that is this one term with G = hess[z,z], symmetric, and a = b:
  only its upper half multiplied, the rest copied;
* **diagonal** — a term with ``δ[x,y]`` over two of the block's axes (an activation's Jacobian
  written in, :func:`~einderiv.emit.kernel_build._diagonals`): the rest contracted with y renamed
  x, added onto the view's diagonal (``_diagonal_view``), not broadcast against an identity;
* any other term: contracted as in :func:`~einderiv.emit.kernel_statements.block`, then written.

Full writes come first (the first one overwrites what a reused buffer held); a block whose terms
are all diagonal is zeroed first.  A block (a, b) with a ≠ b is then copied, transposed, into
(b, a)'s rows and columns (``_mirror``).
"""
from __future__ import annotations

import re

from ..analysis.factor import as_terms
from ..ir import Delta, Ref, rename
from .kernel import Block, Comment, Run
from .kernel_arrays import BATCH, Call, Div, Num, Py, Transpose, TupleOf, Var
from .kernel_lower import Scope
from .kernel_names import Letters


def block_into(s: Scope, st: Block) -> None:
    """Emit ``st`` (a block with ``into``) as writes into its view of the buffer."""
    into = st.into
    H = s.locals[into.buffer]
    bounds = (Num(into.r0), Num(into.r1), Num(into.c0), Num(into.c1))
    s.emit(Comment(s.ctx.show(st.label, st.indices, st.expr)))
    view = s.bind(st.target.hint, Call("_block_view", (H,) + bounds + (st.shape,)))
    s.locals[st.target] = Var(view)
    terms = as_terms(st.expr, st.indices)
    square = len(s.ctx.shape[st.wrt[0]]) == 2 and len(s.ctx.shape[st.wrt[1]]) == 2
    kinds = [(_kind(s, t, st.indices, square), t) for t in terms]
    order = sorted(range(len(kinds)), key=lambda k: ("outer", "other", "diagonal").index(kinds[k][0][0]))
    written = False
    if not terms or kinds[order[0]][0][0] == "diagonal":
        s.emit(Run(Call("_add_into", (Var(view), Num(0.0), Num(1), Py(False)))))
        written = True
    shared = {}  # a -> its outer terms (G, b, scale, swap): one matmul per row chunk for them all
    symmetric = False
    for k in order:
        (kind, detail), t = kinds[k]
        if kind == "outer":
            G, a, b, swap, symmetric = detail
            shared.setdefault(a, []).append(TupleOf((G, b, _scale(s, t.coef, True), Py(swap))))
    for a, outers in shared.items():
        args = (Var(view), a, TupleOf(tuple(outers)), Py(written))
        if symmetric and len(terms) == 1 and st.wrt[0] == st.wrt[1]:  # one symmetric term: half of it
            args += (Py(True),)
        s.emit(Run(Call("_outer_into", args)))
        written = True
    for k in order:
        (kind, detail), t = kinds[k]
        if kind == "outer":
            continue
        if kind == "diagonal":
            x, y = detail
            keep = tuple(ix for ix in st.indices if ix != st.indices[y])
            swap = {st.indices[y]: st.indices[x]}
            factors = [rename(f, swap) for f in t.factors if not (isinstance(f, Delta) and _delta_axes(f, st.indices))]
            value, batched = s.contract([s.lower(f) for f in factors], 1, keep, False, Letters(keep))
            target = Call("_diagonal_view", (Var(view), Num(x), Num(y)))
            s.emit(Run(Call("_add_into", (target, value, _scale(s, t.coef, batched), Py(written)))))
        else:
            value, batched = s.contract([s.lower(f) for f in t.factors], 1, st.indices, False, Letters(st.indices))
            s.emit(Run(Call("_add_into", (Var(view), value, _scale(s, t.coef, batched), Py(written)))))
        written = True
    if into.mirror:
        s.emit(Run(Call("_mirror", (H,) + bounds)))


#: a per-sample Hessian of f with respect to one node twice, hess[z,z]: symmetric in its two axes
_SYMMETRIC = re.compile(r"hess\[([^,\]]+),\1\]")


def _scale(s: Scope, coef, batched: bool):
    """The term's coefficient, divided by B for a batch mean."""
    c = s.ctx.number(coef)
    return Div(Num(c), BATCH) if batched else Num(c)


def _delta_axes(f: Delta, indices: tuple):
    """The axes (x < y) of the block that δ[x,y] pairs, or None."""
    if f.a == f.b or f.a not in indices or f.b not in indices:
        return None
    x, y = sorted((indices.index(f.a), indices.index(f.b)))
    return x, y


def _kind(s: Scope, t, indices: tuple, square: bool):
    """("outer", (G, a, b)), ("diagonal", (x, y)) or ("other", None) for term ``t`` (outer: only
    between two matrix parameters, whose (k, l) axes are one run of the buffer's columns)."""
    deltas = [f for f in t.factors if isinstance(f, Delta) and _delta_axes(f, indices)]
    if len(deltas) == 1:  # (and the diagonal's index is read by another factor)
        d = deltas[0]
        if any({d.a, d.b} & set(f.free) for f in t.factors if f is not d):
            return "diagonal", _delta_axes(d, indices)
        return "other", None
    if not square or len(t.factors) != 3 or not all(isinstance(f, Ref) for f in t.factors):
        return "other", None
    j, i, k, l = indices
    by = {f.indices: f for f in t.factors}
    for kk, ll, swap in ((k, l, False), (l, k, True)):  # G pairs j with k (or with l)
        g = by.get((j, kk)) or by.get((kk, j))
        a, b = by.get((i,)), by.get((ll,))
        if g is not None and a is not None and b is not None and all(s.is_batched(f.name) for f in (g, a, b)):
            G = s.lower(g).expr if g.indices == (j, kk) else Transpose(s.lower(g).expr, (0, 2, 1))
            symmetric = not swap and a.name == b.name and _SYMMETRIC.fullmatch(str(g.name)) is not None
            return "outer", (G, s.lower(a).expr, s.lower(b).expr, swap, symmetric)
    return "other", None
