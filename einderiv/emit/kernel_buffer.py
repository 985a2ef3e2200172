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
  written in, :func:`~einderiv.emit.kernel_build._diagonals`; ‖T − U Vᵀ‖²'s 2 δ[i,j] (VᵀV)[k,l]):
  the rest contracted with y renamed x (broadcast along x where it does not read it), added onto
  the view's diagonal (``_diagonal_view``), not broadcast against an identity;
* **gram** — ``c Σ_B w[B] x[B,i] x[B,j]`` over a vector parameter's block with c w ≥ 0 proved
  (:func:`_gram`: logistic regression's Xᵀ diag(σ(z)σ(−z)) X): ``(√(c w) x)ᵀ(√(c w) x)``, which
  NumPy computes with BLAS's syrk (``_gram_into``);
* any other term: contracted as in :func:`~einderiv.emit.kernel_statements.block`, then written.

Full writes come first (the first one overwrites what a reused buffer held); a block whose terms
are all diagonal is zeroed first.  A block (a, b) with a ≠ b is then copied, transposed, into
(b, a)'s rows and columns (``_mirror``).
"""
from __future__ import annotations

import re

import sympy

from ..analysis.factor import as_terms
from ..ir import Apply, Delta, Ref, rename
from .kernel import Block, Comment, Local, Run
from .kernel_arrays import BATCH, Call, Div, Item, Num, Py, Subscript, Transpose, TupleOf, Var, atom
from .kernel_lower import Scope
from .kernel_names import Letters


def block_into(s: Scope, st: Block) -> None:
    """Emit ``st`` (a block with ``into``) as writes into its view of the buffer."""
    into = st.into
    H = resolve_local(s, into.buffer)
    bounds = tuple(Num(b) if isinstance(b, int) else resolve_local(s, b)
                   for b in (into.r0, into.r1, into.c0, into.c1))
    s.emit(Comment(s.ctx.show(st.label, st.indices, st.expr)))
    view = s.bind(st.target.hint, Call("_block_view", (H,) + bounds + (st.shape,)))
    s.locals[st.target] = Var(view)
    terms = as_terms(st.expr, st.indices)
    square = len(s.ctx.shape[st.wrt[0]]) == 2 and len(s.ctx.shape[st.wrt[1]]) == 2
    kinds = [(_kind(s, t, st.indices, square), t) for t in terms]
    order = sorted(range(len(kinds)), key=lambda k: ("outer", "gram", "other", "diagonal").index(kinds[k][0][0]))
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
        if kind == "gram":
            x, rest = detail
            w, _ = s.contract([s.lower(f) for f in rest], 1, (), True)
            s.emit(Run(Call("_gram_into", (Var(view), s.lower(x).expr, w, _scale(s, t.coef, True), Py(written)))))
        elif kind == "diagonal":
            x, y = detail
            keep = tuple(ix for ix in st.indices if ix != st.indices[y])
            swap = {st.indices[y]: st.indices[x]}
            factors = [rename(f, swap) for f in t.factors if not (isinstance(f, Delta) and _delta_axes(f, st.indices))]
            diag = st.indices[x]
            read = keep if any(diag in f.free for f in factors) else tuple(ix for ix in keep if ix != diag)
            value, batched = s.contract([s.lower(f) for f in factors], 1, read, False, Letters(keep))
            if read != keep and not isinstance(value, Num):  # δ[i,j] V[c,k] V[c,l]: the same (k, l) at every i
                slots = [None if ix == diag else ":" for ix in keep]
                while slots[-1] == ":":
                    slots.pop()
                value = Subscript(atom(value), tuple(slots))
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


def resolve_local(s: Scope, e):
    """``e`` with the :class:`~einderiv.emit.kernel.Local` s it reads (``rows["U"][0]``) replaced by their variables."""
    if isinstance(e, Local):
        return s.locals[e]
    if isinstance(e, Item):
        return Item(resolve_local(s, e.obj), resolve_local(s, e.key))
    return e


def _kind(s: Scope, t, indices: tuple, square: bool):
    """("outer", (G, a, b)), ("diagonal", (x, y)) or ("other", None) for term ``t`` (outer: only
    between two matrix parameters, whose (k, l) axes are one run of the buffer's columns)."""
    deltas = [f for f in t.factors if isinstance(f, Delta) and _delta_axes(f, indices)]
    if len(deltas) == 1:  # written on the block's diagonal: the rest broadcast along it if it does not read it
        return "diagonal", _delta_axes(deltas[0], indices)
    gram = _gram(s, t, indices)
    if gram is not None:
        return "gram", gram
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


def _gram(s: Scope, t, indices: tuple):
    """``(x, weights)`` when the term is ``c Σ_B w[B] x[B,i] x[B,j]`` over the block's two axes with
    c > 0 and w ≥ 0 provably (logistic regression's σ(z)σ(−z) y y): then it is (√(c w) x)ᵀ(√(c w) x),
    a matrix times its own transpose (``_gram_into``: BLAS's syrk, half the multiplications of a
    general product); else None."""
    if len(indices) != 2 or not t.coef > 0 or not all(isinstance(f, Ref) for f in t.factors):
        return None
    i, j = indices
    xi = [f for f in t.factors if f.indices == (i,)]
    xj = [f for f in t.factors if f.indices == (j,)]
    rest = [f for f in t.factors if not f.indices]
    if len(xi) != 1 or len(xj) != 1 or xi[0].name != xj[0].name or len(rest) + 2 != len(t.factors) \
            or not s.is_batched(xi[0].name) or not _nonnegative(s, rest):
        return None
    return xi[0], rest


def _nonnegative(s: Scope, factors: list) -> bool:
    """Whether the product of these scalar factors is ≥ 0 for every value: each name either appears
    an even number of times (a square) or is defined as a function whose SymPy form is nonnegative
    for every real argument (softplus″ = eᶻ/(eᶻ + 1)²)."""
    d = s.ctx.d
    definition = {n.name: n.expr for n in d.nodes}
    definition.update({q.name: q.expr for q in d.quantities})
    names = [f.name for f in factors]
    for name in set(names):
        if names.count(name) % 2 == 0:
            continue
        e = definition.get(name)
        if not isinstance(e, Apply):
            return False
        body = sympy.factor(sympy.together(d.table.derivative(e.fn.name, e.fn.deriv)))
        if body.is_nonnegative is not True:
            return False
    return True
