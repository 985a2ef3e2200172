"""Structure summary: which derivative blocks are outer products, and what that saves.

For every block of a :class:`~einderiv.derive.Derivation` (each gradient and
each Hessian or higher block) :func:`summarize` reads the factored form
(:func:`einderiv.factor.factored`) and reports

* ``terms``   K, the number of terms;
* ``kind``    ``"a vector"`` (a block with one axis), ``"a matrix"`` (a block
  between two vector parameters, e.g. two biases), ``"one outer product"``
  (one term, ≥ 2 outer-product factors), ``"sum of K outer products"``, or
  ``"no outer-product structure"`` — when some term keeps two axes of the
  *same* parameter in one factor (a convolution kernel's gradient), or is a
  single factor carrying every axis — with a one-line ``reason`` naming the
  summed index that couples which factors, in the letters the text output
  shows the block with (:func:`einderiv.emit.text.block_terms`);
* ``factored`` per-sample storage of the factored form: Σ over terms of Σ over
  factors of the product of the factor's axis sizes (axes tied by a Kronecker
  delta, the diagonal of γ = δ A′, count once);
* ``dense``    the product of all axis sizes.

A factor that carries one axis of each of two parameters (``η^t_j`` in the
r ≠ k cross term of the paper's Eq. 9, ``∂²f/∂p∂p η η`` in the Gauss–Newton
term) is a matrix factor of a tensor product: the paper counts those blocks as
outer-product structured, and so do we.

Sizes are SymPy expressions in the dimension symbols, with the network's
known sizes (and ``sizes``) substituted, so an unsized network gets symbolic
storage like ``n0 + n1`` against ``n0*n1``.

Example::

    >>> rows = summarize(derive(net, 2))                # doctest: +SKIP
    >>> rows[0].kind, rows[0].factored, rows[0].dense   # doctest: +SKIP
    ('one outer product', 9, 20)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import sympy

from .factor import FactoredTerm, Group, factored
from ..ir import Delta, Expr, Index, Ref, Window
from ..frontend.network import dim_symbol


@dataclass(frozen=True)
class BlockStructure:
    wrt: tuple[str, ...]
    shape: tuple[sympy.Expr, ...]  # axis sizes of the block
    terms: int  # K
    kind: str
    reason: str  # why there is no outer-product structure ('' otherwise)
    factored: sympy.Expr  # per-sample storage of the factored form
    dense: sympy.Expr  # per-sample storage of the dense block
    coupling: "Coupling | None" = None  # what the reason names, for other printers

    @property
    def saving(self) -> sympy.Expr:
        """dense / factored (a number once sizes are known)."""
        return sympy.simplify(self.dense / self.factored) if self.factored != 0 else sympy.oo


def _sizes(derivation, sizes: Mapping | None) -> dict[sympy.Symbol, int]:
    subs = dict(derivation.network.sizes())
    for k, v in (sizes or {}).items():
        subs[dim_symbol(k) if isinstance(k, str) else k] = v
    return subs


def group_storage(group: Group) -> sympy.Expr:
    """Product of the sizes of a factor's axes, axes tied by a delta counted once."""
    parent = {ix: ix for ix in group.free}

    def find(a: Index) -> Index:
        while parent[a] != a:
            a = parent[a]
        return a

    for f in group.factors:
        if isinstance(f, Delta) and f.a in parent and f.b in parent:
            parent[find(f.a)] = find(f.b)
    roots: dict[Index, None] = {}
    for ix in group.free:
        roots.setdefault(find(ix), None)
    return sympy.Mul(*(ix.dim for ix in roots))


def _slot_of(block_indices: tuple[Index, ...], wrt_arity: list[int]) -> dict[Index, int]:
    slot, k = {}, 0
    for s, n in enumerate(wrt_arity):
        for ix in block_indices[k:k + n]:
            slot[ix] = s
        k += n
    return slot


def _coupled(term: FactoredTerm, slot: dict[Index, int], n_axes: int) -> Group | None:
    """The group that breaks the outer-product form of ``term``, if any.

    A group keeping two axes of one parameter breaks it when something couples
    them — a summed index, a delta, an elementwise product.  A single tensor
    carrying them (``v^{o,t}`` after a convolution, read by a dense layer
    ``U^l_{o,t}``) is one factor over the flattened axes: still an outer product.
    """
    for g in term.groups:
        slots = [slot[ix] for ix in g.free]
        if len(slots) != len(set(slots)) and not _one_tensor(g):
            return g
    if len(term.groups) == 1 and n_axes >= 2:
        return term.groups[0]
    return None


def _one_tensor(g: Group) -> bool:
    """A group that is one named tensor carrying its axes as they are (no diagonal)."""
    return (len(g.factors) == 1 and isinstance(g.factors[0], Ref)
            and len(set(g.factors[0].indices)) == len(g.factors[0].indices))


@dataclass(frozen=True)
class Coupling:
    """Why a factor keeps several axes: ``how`` is 'summed', 'elementwise' or 'carries'."""

    how: str
    indices: tuple[str, ...]  # display letters
    factors: tuple[Expr, ...]

    def sentence(self, short) -> str:
        """'summed index t couples δ[z_k] and x', naming factors with ``short``."""
        names = " and ".join(dict.fromkeys(short(f) for f in self.factors))
        if self.how == "position":
            t, a, stride = self.indices
            head = " and ".join(dict.fromkeys(short(f) for f in self.factors[:-1]))
            x = f"{short(self.factors[-1])}^{{{stride}{t}+{a}}}"
            return f"summed position {t} couples {head} and {x}: a correlation over positions"
        if self.how == "summed":
            return f"summed index {self.indices[0]} couples {names}"
        if self.how == "diagonal":
            return f"a diagonal: δ ties {self.indices[0]} and {self.indices[1]}"
        if self.how == "elementwise":
            return f"elementwise product over {self.indices[0]} ties {names}"
        return f"{names} carries axes {', '.join(self.indices)} together"


def _coupling(g: Group, letter) -> Coupling:
    from ..emit.names import display_order

    g = Group(display_order(g.factors, g.free), g.free, g.bound)  # factors as the text shows them
    for w in (f for f in g.factors if isinstance(f, Window)):
        # index arithmetic x^{t+a}: the output position t is summed against the back-propagated map
        at_t = tuple(f for f in g.factors if w.t in f.free and not isinstance(f, Window))
        at_u = tuple(f for f in g.factors if w.u in f.free and not isinstance(f, Window))
        if w.t in g.bound and at_t and at_u:
            return Coupling("position", (letter(w.t), letter(w.a), str(w.stride) if w.stride != 1 else ""),
                            at_t + at_u[:1])
    for ix in g.bound:
        users = tuple(f for f in g.factors if ix in f.free)
        if len(users) >= 2:
            return Coupling("summed", (letter(ix),), users)
    for f in g.factors:
        if isinstance(f, Delta) and f.a in g.free and f.b in g.free:
            return Coupling("diagonal", (letter(f.a), letter(f.b)), (f,))
    for ix in g.free:
        users = tuple(f for f in g.factors if ix in f.free)
        if len(users) >= 2:
            return Coupling("elementwise", (letter(ix),), users)
    return Coupling("carries", tuple(letter(ix) for ix in g.free), g.factors[:1])


def summarize(derivation, sizes: Mapping | None = None) -> list[BlockStructure]:
    """One :class:`BlockStructure` per block, in the derivation's block order."""
    from ..emit.names import Context
    from ..emit.text import block_terms

    subs = _sizes(derivation, sizes)
    ctx = Context.of(derivation)
    net = derivation.network
    rows = []
    for wrt, block in derivation.blocks.items():
        arity = [len(net.tensor(w).indices) for w in wrt]
        slot = _slot_of(block.indices, arity)
        shape = tuple(sympy.sympify(ix.dim).subs(subs) for ix in block.indices)
        dense = sympy.Mul(*shape)
        terms = factored(block.expr, block.indices)
        store = sympy.Add(*(group_storage(g) for t in terms for g in t.groups)).subs(subs)
        reason, coupling = "", None
        if not terms:
            kind = "zero"
        elif len(block.indices) == 1:
            kind = "a vector"
        elif all(a == 1 for a in arity):
            # every parameter is a vector (biases): the block is a plain matrix
            # or tensor per sample, with no parameter axes to split apart
            kind = "a matrix" if len(arity) == 2 else f"an order-{len(arity)} tensor"
            reason = "each parameter is a vector: nothing to split"
        else:
            bad = [(t, g) for t in terms if (g := _coupled(t, slot, len(block.indices)))]
            if bad:
                # name the densest coupling: a contraction explains more than a diagonal
                bad = min(bad, key=lambda tg: 0 if tg[1].bound else 1)
                kind = "no outer-product structure"
                printer, _ = block_terms(block, ctx)  # the letters of the text output
                printer.term(bad[0], block.indices)  # (a term folded over steps names its own)
                coupling = _coupling(bad[1], printer.names.__getitem__)
                reason = coupling.sentence(printer.short)
            elif len(terms) == 1:
                kind = "one outer product"
            else:
                kind = f"sum of {len(terms)} outer products"
                reason = _shared_reason(terms, len(wrt))
        rows.append(BlockStructure(wrt, shape, len(terms), kind, reason, sympy.sympify(store), dense,
                                   coupling))
    return rows


def _shared_reason(terms: list[FactoredTerm], order: int) -> str:
    """'shared over T = 4 steps' when the terms are one term per step of a family (fold.py)."""
    from .factor import Term
    from .fold import fold_terms
    from ..ir import label_range

    exprs = []
    for t in terms:
        fs = tuple(f for g in t.scalars + t.groups for f in g.factors)
        out = tuple(ix for g in t.groups for ix in g.free)
        exprs.append(Term(t.coef, fs, out).expr())
    fams = fold_terms(exprs, ())
    if order == 1 and len(fams) == 1 and fams[0].folded:
        return f"one per step t = {label_range(fams[0].labels)}: a weight shared over the steps"
    if any(f.folded for f in fams):
        return f"{len(fams)} families of terms over the steps"
    return ""


def format_summary(rows: list[BlockStructure]) -> str:
    """A plain-text table, one line per block."""
    head = ("block", "K", "structure", "factored", "dense")
    body = []
    for r in rows:
        body.append((_wrt(r.wrt), str(r.terms), r.kind + (f" ({r.reason})" if r.reason else ""),
                     _num(r.factored), _num(r.dense)))
    widths = [max(len(row[k]) for row in [head] + body) for k in range(len(head))]
    lines = []
    for n, row in enumerate([head] + body):
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3]), row[4].rjust(widths[4])]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _wrt(wrt) -> str:
    return ",".join(map(str, wrt))


def _num(e: sympy.Expr) -> str:
    return sympy.sstr(e, order="lex")
