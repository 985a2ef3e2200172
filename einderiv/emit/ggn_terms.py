"""The terms of the Gauss–Newton diagonal, with the objective's Hessian factored where it can be.

diag GGN[θ] = Σ_ab J_a[c,θ] hobj[c,k] J_b[k,θ], where J_a = ∂a/∂θ is back-propagated from the
objective's argument a (the Jacobian-transposed pass: one row per output c, B·c·h per layer).
Contracting a dense per-sample ``hobj`` (B × c × c) with J on every layer costs B·c²·h there.

Most objectives' Hessians have a symbolic factorisation that avoids it.  Every term of
``hobj[c,k]`` is read off its (simplified) definition; when each term is either *diagonal* (a
δ[c,k]: MSE's const·δ, BCE's σ(p)σ(−p)·δ) or an *outer product* u[c]·w[k] (no factor couples c
and k), the definition is written into the GGN's terms and simplified, so that the diagonal
becomes Σ_c d[c] J[c,θ]² + Σ_m (u_m·J)(w_m·J): c back-propagated rows squared and weighted,
B·c·h per layer and term, no c × c matrix per sample and no square root.  Softmax
cross-entropy's diag(s) − s sᵀ (= AᵀA with A = diag(√s) − √s sᵀ) is of this kind:
Σ_c s_c J_c² − (Σ_c s_c J_c)², exactly Σ_r (A J)_r², the hand-written one's c rows.

An objective whose Hessian has a term coupling c and k otherwise (a user's matrix M[c,k], or a
sum over a shared index) keeps the dense path: ``hobj`` formed per sample and contracted with
J on both sides (B·c²·h per layer).  No numerical factorisation (eigh) is made there.
"""
from __future__ import annotations

from ..analysis.factor import as_terms
from ..calculus.derivation import Derivation, QDef
from ..calculus.simplify import Simplifier, Term
from ..ir import Add, Const, Delta, Expr, Index, Kind, Prod, Quantity, Ref, rename


def _couples(t: Term, left: set, right: set) -> bool:
    """Whether a factor of ``t`` (other than a δ between the two sides) links a ``left`` index
    with a ``right`` one, directly or through summed indices (connected components)."""
    parent: dict[Index, Index] = {}

    def root(ix: Index) -> Index:
        while parent.setdefault(ix, ix) != ix:
            ix = parent[ix]
        return ix

    for f in t.factors:
        if isinstance(f, Delta) and {f.a, f.b} & left and {f.a, f.b} & right:
            continue
        free = list(f.free)
        for ix in free[1:]:
            parent[root(ix)] = root(free[0])
    sides = {}
    for ix in left | right:
        sides.setdefault(root(ix), set()).add(ix in left)
    return any(len(s) == 2 for s in sides.values())


def factorable(q: QDef, split: int) -> bool:
    """Whether the objective's Hessian ``q`` (slots: the first argument's ``split``, then the
    second's) is a sum of diagonal and outer-product terms (see the module docstring)."""
    left, right = set(q.indices[:split]), set(q.indices[split:])
    return all(not _couples(t, left, right) for t in as_terms(q.expr, q.indices))


def _rank(d: Derivation, name) -> int:
    node = d.node(name)
    if node is not None:
        return len(node.indices)
    return len(next(t for t in d.network.tensors if t.name == name).indices)


def hobj_refs(fs: tuple[Expr, ...]) -> list[Ref]:
    return [f for f in fs if isinstance(f, Ref) and isinstance(f.name, Quantity) and f.name.kind is Kind.HOBJ]


def diagonal_terms(d: Derivation, coef, fs: tuple[Expr, ...], out: tuple[Index, ...]) -> list[Prod]:
    """One term ``coef · Π fs`` of a GGN diagonal (indices ``out``) as the terms to compute:
    itself, or, when it reads one factorable objective Hessian, that Hessian written out and
    the product simplified (its δ contracted into the Jacobians' rows)."""
    refs = hobj_refs(fs)
    if len(refs) == 1:
        ref = refs[0]
        q = d.quantity(ref.name)
        if factorable(q, _rank(d, ref.name.parts[0])):
            rest = tuple(f for f in fs if f is not ref)
            body = rename(q.expr, dict(zip(q.indices, ref.indices)))
            simplifier = Simplifier(d.table)
            attached, detached = _attached(rest, set(ref.indices), set(out))
            inner_out = tuple(ix for ix in out if any(ix in f.free for f in attached + (body,)))
            inner = simplifier.terms(Prod((body,) + attached, inner_out))
            if len(inner) > 1:  # Σ_c s J² − (s·J)², once, then the parameter's other side
                return [Prod((Const(coef), Add(tuple(_squares(t, inner_out) for t in inner))) + detached, out)]
            return [_expr(t, out) for t in simplifier.terms(Prod((Const(coef), body) + rest, out))]
    return [Prod((Const(coef),) + fs, out)]


def _expr(t: Term, out: tuple) -> Prod:
    return Prod(((Const(t.coef),) if t.coef != 1 else ()) + t.factors, out)


def _squares(t: Term, out: tuple) -> Prod:
    """``t`` with its factors of equal axes (two or more indices) multiplied first: J[c,j] J[c,j]
    → (J∘J)[c,j], then s[c] against it, a batched matrix-vector product (rather than a dot
    product per sample and j)."""
    groups: dict = {}
    for f in t.factors:
        groups.setdefault(tuple(f.free), []).append(f)
    fs = []
    for axes, g in groups.items():
        if len(g) > 1 and len(g) < len(t.factors) and len(axes) > 1:
            fs.append(Prod(tuple(g), axes))
        else:
            fs.extend(g)
    return Prod(((Const(t.coef),) if t.coef != 1 else ()) + tuple(fs), out)


def _attached(fs: tuple, seed: set, out: set) -> tuple[tuple, tuple]:
    """The factors of ``fs`` linked to the indices ``seed`` through indices not in ``out``
    (the Jacobians' rows the objective's Hessian contracts), and the others."""
    linked, attached = set(seed), []
    grew = True
    while grew:
        grew = False
        for f in fs:
            if f not in attached and (set(f.free) - out) & linked:
                attached.append(f)
                linked |= set(f.free) - out
                grew = True
    return tuple(f for f in fs if f in attached), tuple(f for f in fs if f not in attached)


def uses_dense_hobj(d: Derivation) -> bool:
    """Whether some GGN block reads an objective Hessian that stays a dense per-sample matrix."""
    for blk in d.ggn.values():
        for t in as_terms(blk.expr, blk.indices):
            for ref in hobj_refs(t.factors):
                if not factorable(d.quantity(ref.name), _rank(d, ref.name.parts[0])):
                    return True
    return False
