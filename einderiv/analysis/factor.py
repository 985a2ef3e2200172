"""Factored forms: split each term of a derivative block into outer-product factors.

Two factors of a monomial belong to the same *group* when they share an index
(summed — they are contracted together — or free — a Hadamard product).  A
term whose groups each carry their own free indices is a tensor product of
those groups: ``(∂f/∂p_l u^l_m η^{m}_i) ⊗ v^j`` has groups ``{∂f/∂p, u, η}``
and ``{v}``.  Groups without free indices are scalar weights.

:mod:`einderiv.analysis.outer` regroups, cuts and merges such terms into a block's
outer-product form; :mod:`einderiv.analysis.structure` turns that into the report.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..ir import Add, Const, Expr, Index, Prod, is_zero
from ..calculus.simplify import Term


@dataclass(frozen=True)
class Group:
    factors: tuple[Expr, ...]
    free: tuple[Index, ...]  # the block's free indices this group carries
    bound: tuple[Index, ...]  # indices summed inside the group

    def expr(self) -> Expr:
        if len(self.factors) == 1 and tuple(self.factors[0].free) == self.free:
            return self.factors[0]
        return Prod(self.factors, self.free)


@dataclass(frozen=True)
class FactoredTerm:
    coef: sympy.Expr
    scalars: tuple[Group, ...]  # groups with no free index
    groups: tuple[Group, ...]  # groups with free indices, in order of the block's axes
    #: indices summed outside the outer product (Σ_q a_q ⊗ b_q): every group may read them
    over: tuple[Index, ...] = ()

    @property
    def rank(self) -> int:
        return len(self.groups)


def as_terms(e: Expr, out: tuple[Index, ...]) -> list[Term]:
    """Read a simplified expression back as terms (it is an Add of monomials)."""
    if is_zero(e):
        return []
    items = e.terms if isinstance(e, Add) else (e,)
    terms = []
    for t in items:
        if isinstance(t, Prod):
            coef = sympy.Integer(1)
            fs = []
            for f in t.factors:
                if isinstance(f, Const):
                    coef *= f.value
                else:
                    fs.append(f)
            terms.append(Term(coef, tuple(fs), t.out))
        elif isinstance(t, Const):
            terms.append(Term(t.value, (), ()))
        else:
            terms.append(Term(sympy.Integer(1), (t,), t.free))
    return terms


def factor_term(t: Term) -> FactoredTerm:
    """Group a monomial's factors into connected components by shared indices."""
    n = len(t.factors)
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner: dict[Index, int] = {}
    for k, f in enumerate(t.factors):
        for ix in f.free:
            if ix in owner:
                parent[find(k)] = find(owner[ix])
            else:
                owner[ix] = k
    comps: dict[int, list[int]] = {}
    for k in range(n):
        comps.setdefault(find(k), []).append(k)
    outs = set(t.out)
    groups, scalars = [], []
    for members in comps.values():
        fs = tuple(t.factors[k] for k in members)
        idx: dict[Index, None] = {}
        for f in fs:
            for ix in f.free:
                idx.setdefault(ix, None)
        free = tuple(ix for ix in t.out if ix in idx)
        bound = tuple(ix for ix in idx if ix not in outs)
        (groups if free else scalars).append(Group(fs, free, bound))
    pos = {ix: k for k, ix in enumerate(t.out)}
    groups.sort(key=lambda g: min(pos[ix] for ix in g.free))
    return FactoredTerm(t.coef, tuple(scalars), tuple(groups))


def factored(e: Expr, out: tuple[Index, ...]) -> list[FactoredTerm]:
    return [factor_term(t) for t in as_terms(e, out)]
