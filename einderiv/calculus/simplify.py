"""Simplification: expand to a sum of monomials, contract deltas, merge like terms.

A :class:`Term` is ``coef · Π factors`` summed over the indices not in ``out``
— the canonical shape every derivative is brought to.  Factors are atoms:
``Ref``, ``Delta``, ``Apply``, ``Softmax``, ``LogSumExp`` (the arguments of the
last three are simplified recursively but never distributed out of them).

Delta contraction: ``δ^a_b X^a`` with ``a`` summed becomes ``X^b``; a delta
between two free indices stays (it is the identity factor of ∂W/∂W or the
diagonal γ of the paper's Eq. 1).

Like terms are merged after putting bound indices in a canonical order, so
``½ (p−y)·δ + ½ δ·(p−y)`` becomes ``(p−y)``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy

from .functions import FunctionTable
from ..ir import (Add, Apply, ArgMax, Const, Delta, Expr, Index, Inv, LogSumExp, MatDet, Max, Prod, Ref,
                 Ones, Softmax, Window, ZERO, alpha_key, fresh, map_children, name_binders, rename, rename_touched,
                 walk)


@dataclass(frozen=True)
class Term:
    coef: sympy.Expr
    factors: tuple[Expr, ...]
    out: tuple[Index, ...]

    def expr(self) -> Expr:
        fs = self.factors
        if self.coef != 1 or not fs:
            fs = (Const(self.coef),) + fs
        if len(fs) == 1 and tuple(fs[0].free) == self.out:
            return fs[0]
        return Prod(fs, self.out)

    @property
    def bound(self) -> tuple[Index, ...]:
        outs = set(self.out)
        seen: dict[Index, None] = {}
        for f in self.factors:
            for ix in f.free:
                if ix not in outs:
                    seen.setdefault(ix, None)
        return tuple(seen)


class Simplifier:
    """Expands IR to terms; ``table`` folds functions whose derivative is constant."""

    def __init__(self, table: FunctionTable):
        self.table = table

    # ------------------------------------------------------------ public
    def simplify(self, e: Expr) -> Expr:
        """A simplified expression: Add of Prods, each a canonical monomial."""
        terms = self.terms(e)
        if not terms:
            return ZERO
        exprs = tuple(t.expr() for t in terms)
        return exprs[0] if len(exprs) == 1 else Add(exprs)

    def terms(self, e: Expr) -> list[Term]:
        return merge(self._expand(e))

    # ------------------------------------------------------------ expansion
    def _expand(self, e: Expr) -> list[Term]:
        if isinstance(e, Const):
            return [] if e.value == 0 else [Term(e.value, (), ())]
        if isinstance(e, (Ref, Delta, Window, Ones)):
            return [Term(sympy.Integer(1), (e,), e.free)]
        if isinstance(e, Add):
            out: list[Term] = []
            for t in e.terms:
                out.extend(self._expand(t))
            return out
        if isinstance(e, Prod):
            return self._expand_prod(e)
        if isinstance(e, Apply):
            return self._expand_apply(e)
        if isinstance(e, Softmax):
            return [_atom(Softmax(_keeping(self.simplify(e.arg), e.arg.free), e.over), e.free)]
        if isinstance(e, ArgMax):
            return [_atom(ArgMax(_keeping(self.simplify(e.arg), e.arg.free), e.over, e.kind), e.free)]
        if isinstance(e, (LogSumExp, Max)):  # like a product's dummies, its own gets a fresh name first
            over = fresh(e.over.dim, e.over.name)
            arg = rename(e.arg, {e.over: over})
            return [_atom(_rebuilt(e, _keeping(self.simplify(arg), arg.free), over), e.free)]
        if isinstance(e, Inv):
            return [_atom(Inv(_keeping(self.simplify(e.arg), e.arg.free), e.row, e.col), e.free)]
        if isinstance(e, MatDet):  # its two binders get fresh names first, as a product's dummies do
            row, col = fresh(e.row.dim, e.row.name), fresh(e.col.dim, e.col.name)
            arg = rename(e.arg, {e.row: row, e.col: col})
            return [_atom(MatDet(_keeping(self.simplify(arg), arg.free), row, col, e.kind), e.free)]
        raise TypeError(f"simplify: unknown node {type(e).__name__}")

    def _expand_apply(self, e: Apply) -> list[Term]:
        args = tuple(self.simplify(a) for a in e.args)
        body = self.table.derivative(e.fn.name, e.fn.deriv)
        if body.is_number:
            return [] if body == 0 else [_atom(None, e.free, sympy.sympify(body))]
        if e.fn.deriv == (0,) * len(args) and e.fn.name == "identity":
            return self._expand(args[0])
        return [_atom(Apply(e.fn, args), e.free)]

    def _expand_prod(self, e: Prod) -> list[Term]:
        # fresh names for this product's dummies: flattening can never capture
        mapping = {ix: fresh(ix.dim, ix.name) for ix in e.bound}
        # (untouched factors keep their own dummies: expanding them below freshens those)
        factors = [rename_touched(f, mapping) for f in e.factors]
        expanded = [self._expand(f) for f in factors]
        if any(not x for x in expanded):
            return []
        result = []
        for combo in itertools.product(*expanded):
            coef = sympy.Integer(1)
            fs: list[Expr] = []
            for t in combo:
                coef *= t.coef
                fs.extend(t.factors)
            term = contract_deltas(Term(coef, tuple(fs), e.out))
            if term is not None and any(_reducible(f) for f in term.factors):
                term = self._again(term)
            if term is not None:
                result.append(term)
        return result

    def _again(self, t: Term) -> Term | None:
        """``t`` with its function-like factors simplified once more: contracting a delta into
        one (δ^c_d with d summed, in tanh(δ^c_d x^a)) leaves δ^c_c, which simplifies further."""
        coef, fs = t.coef, []
        for f in t.factors:
            if not _reducible(f):
                fs.append(f)
                continue
            (sub,) = self._expand(f) or (None,)
            if sub is None:
                return None
            coef *= sub.coef
            fs.extend(sub.factors)
        return contract_deltas(Term(coef, tuple(fs), t.out))


def _rebuilt(e: LogSumExp | Max, arg: Expr, over: Index) -> Expr:
    return LogSumExp(arg, over) if isinstance(e, LogSumExp) else Max(arg, over, e.kind)


def _reducible(f: Expr) -> bool:
    """A factor with a sum inside it that renaming left with a trivial delta δ^c_c, or with a
    ones vector that another factor of its product now carries (tanh(𝟙^a s x^b) after b → a)."""
    return bool(f.CHILDREN) and any(isinstance(x, Delta) and x.a == x.b or _redundant_ones(x) for x in walk(f))


def _redundant_ones(e: Expr) -> bool:
    """A product with a ones vector 𝟙^i beside a factor that carries i (x^i 𝟙^i = x^i)."""
    if not isinstance(e, Prod):
        return False
    return any(isinstance(f, Ones) and any(f.index in g.free for g in e.factors if g is not f)
               for f in e.factors)


def _keeping(arg: Expr, free: tuple[Index, ...]) -> Expr:
    """A softmax's or log-sum-exp's simplified argument, still carrying the axes it had
    (``softmax_a(x^a − x^a)`` is over a constant along a, not over nothing)."""
    missing = tuple(Ones(ix) for ix in free if ix not in set(arg.free))
    return Prod((arg,) + missing, tuple(free)) if missing else arg


def _atom(node: Expr | None, free: tuple[Index, ...], coef=sympy.Integer(1)) -> Term:
    """A one-factor term that keeps the free indices of what it simplifies: where the
    simplified node lost some (``sigmoid(y^c − y^c)`` is ``sigmoid(0)``, constant along c),
    ones vectors carry them, so a sum's terms keep agreeing on their free indices."""
    have = set(node.free) if node is not None else set()
    ones = tuple(Ones(ix) for ix in free if ix not in have)
    return Term(coef, ((node,) if node is not None else ()) + ones, free)


def contract_deltas(t: Term) -> Term | None:
    """Eliminate every delta that has a summed index, and every ones vector that
    another factor makes redundant; ``None`` if the term vanishes."""
    coef, fs, out = t.coef, list(t.factors), t.out
    outs = set(out)
    changed = True
    while changed:
        changed = False
        for k, f in enumerate(fs):
            if isinstance(f, Ones):
                rest = fs[:k] + fs[k + 1:]
                if any(f.index in g.free for g in rest):
                    del fs[k]  # x^i 𝟙^i = x^i
                    changed = True
                    break
                if f.index not in outs:
                    del fs[k]  # Σ_i 𝟙^i = n
                    coef *= f.index.dim
                    changed = True
                    break
                continue
            if not isinstance(f, Delta):
                continue
            a, b = f.a, f.b
            if a == b:
                del fs[k]
                if a not in outs and not any(a in g.free for g in fs):
                    coef *= a.dim  # trace of the identity
                changed = True
                break
            if a not in outs or b not in outs:
                gone, keep = (a, b) if a not in outs else (b, a)
                rest = fs[:k] + fs[k + 1:]
                if any(_softmax_diagonal(g, gone, keep) for g in rest):
                    continue  # s[…, a, a] is not a softmax over a: the delta stays
                if keep in outs and not any(keep in g.free or gone in g.free for g in rest):
                    # Σ_gone δ^keep_gone = 1 for every keep: the only carrier of a free
                    # index (∂ Σ_j z^j / ∂z^k) becomes the ones vector
                    fs[k] = Ones(keep)
                    changed = True
                    break
                del fs[k]
                if keep not in outs and not any(keep in g.free or gone in g.free for g in rest):
                    coef *= keep.dim  # Σ_a Σ_b δ^a_b = n
                fs = [rename_touched(g, {gone: keep}) for g in fs]
                changed = True
                break
    if coef == 0:
        return None
    # every kept index is carried by a factor (δ^a_a with a kept leaves none): a ones vector
    # says the term is constant along it, so a product around it still sums over it
    carried = {ix for g in fs for ix in g.free}
    fs += [Ones(ix) for ix in out if ix not in carried]
    return Term(coef, tuple(fs), out)


def _softmax_diagonal(e: Expr, a: Index, b: Index) -> bool:
    """Whether identifying ``a`` and ``b`` in ``e`` would take the diagonal of a softmax along
    one of them (:meth:`~einderiv.ir.Softmax.renamed`)."""
    return any((isinstance(x, (Softmax, ArgMax)) and x.over in (a, b) and {a, b} <= set(x.free))
               or (isinstance(x, Inv) and {a, b} == {x.row, x.col}) for x in walk(e))


# ------------------------------------------------------------ canonical forms
def atom_key(f: Expr, bound: set[Index]) -> str:
    """A sort key for a factor that does not depend on the names of dummies."""

    def name(ix: Index) -> str:
        return "*" if ix in bound else ix.name

    if isinstance(f, Ref):
        return f"R:{f.name}:" + ",".join(name(i) for i in f.indices)
    if isinstance(f, Delta):
        return "D:" + ",".join(sorted((name(f.a), name(f.b))))
    if isinstance(f, Ones):
        return "1:" + name(f.index)
    if isinstance(f, Window):
        return f"W{f.mark() or 1}:" + ",".join(name(i) for i in f.free)
    return f"{type(f).__name__}:{_struct(f)}:" + ",".join(name(i) for i in f.free)


def _struct(e: Expr) -> str:
    """Structure of a subexpression with every index name erased."""
    if isinstance(e, Ref):
        return f"{e.name}({len(e.indices)})"
    if isinstance(e, Const):
        return str(e.value)
    if isinstance(e, Delta):
        return "d"
    if isinstance(e, Window):
        return f"S{e.mark() or 1}"
    if isinstance(e, Ones):
        return "1"
    if isinstance(e, Apply):
        return f"{e.fn.name}{e.fn.deriv}(" + ";".join(_struct(a) for a in e.args) + ")"
    if isinstance(e, (Prod, Add)):
        return type(e).__name__ + "(" + ";".join(_struct(c) for c in e.children()) + ")"
    if isinstance(e, (Softmax, LogSumExp)):
        return type(e).__name__ + "(" + _struct(e.arg) + ")"
    if isinstance(e, (Max, ArgMax, MatDet)):
        return type(e).__name__ + e.kind + "(" + _struct(e.arg) + ")"
    if isinstance(e, Inv):
        return "Inv(" + _struct(e.arg) + ")"
    return type(e).__name__


def canonical(t: Term) -> Term:
    """Sort factors and name dummies ``_c0, _c1, …`` in order of appearance; then, inside each
    factor (a function's argument with sums of its own), sort every product the same way and
    name its dummies by :func:`~einderiv.ir.name_binders`.  Sort keys never read a dummy's name,
    so putting a canonical term in canonical form changes nothing: simplification is idempotent."""
    bound = set(t.bound)
    fs = sorted(t.factors, key=lambda f: atom_key(f, bound))
    mapping: dict[Index, Index] = {}
    for f in fs:
        for ix in f.free:
            if ix in bound and ix not in mapping:
                mapping[ix] = Index(f"_c{len(mapping)}", ix.dim)
    return Term(t.coef, tuple(name_binders(_sorted_inside(rename_touched(f, mapping))) for f in fs), t.out)


def _sorted_inside(e: Expr) -> Expr:
    """``e`` with the factors of every product inside it in canonical order (innermost first)."""
    if not e.CHILDREN:
        return e
    e = map_children(e, _sorted_inside)
    if isinstance(e, Prod):
        inner = set(e.bound)
        return Prod(tuple(sorted(e.factors, key=lambda f: atom_key(f, inner))), e.out)
    return e


def term_key(e: Expr, slots: tuple[Index, ...], *, sizes: bool = True) -> tuple:
    """A key equal for sums of monomials that are equal up to the order of their terms and
    factors and the names of their indices (``slots`` are identified by position).

    Each term is put in :func:`canonical` order (with the slots renamed by position, so
    that a factor's place never depends on which member of a family it came from) and
    keyed by :func:`~einderiv.ir.alpha_key`; the term keys are then sorted.  Folding
    recognises members of a family with it, layer templates compare instantiated
    formulas with fresh derivations (``sizes=False``: a first layer's width differs),
    and the code generator groups loop steps.
    """
    at = {ix: Index(f"_s{k}", ix.dim) for k, ix in enumerate(slots)}
    named = tuple(at[ix] for ix in slots)
    keys = []
    for t in (e.terms if isinstance(e, Add) else (e,)):
        t = rename(t, at)
        if isinstance(t, Prod):
            c = canonical(Term(1, t.factors, t.out))
            t = Prod(c.factors, c.out)
        keys.append(alpha_key(t, named, sizes=sizes))
    return tuple(sorted(keys, key=repr))


def merge(terms: list[Term]) -> list[Term]:
    """Add up terms that are equal up to the names of their dummies."""
    acc: dict[tuple, Term] = {}
    summed: set[tuple] = set()
    for t in terms:
        c = canonical(t)
        # canonical order and names, then alpha_key: binders that kept different hints
        # (log Σ_a exp(x^a) and log Σ_b exp(x^b)) are still the same term
        # (free indices by name — the terms of a sum may list them in different orders)
        key = alpha_key(Prod(c.factors, c.out), tuple(sorted(c.out, key=lambda ix: ix.name)))
        if key in acc:
            prev = acc[key]
            acc[key] = Term(prev.coef + c.coef, prev.factors, prev.out)
            summed.add(key)
        else:
            acc[key] = c
    # only a sum of coefficients can cancel to zero without SymPy seeing it at once (simplify is slow)
    return [t for key, t in acc.items() if t.coef != 0 and (key not in summed or sympy.simplify(t.coef) != 0)]

