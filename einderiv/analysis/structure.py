"""Structure summary: which derivative blocks are outer products, and what that saves.

For every block of a :class:`~einderiv.calculus.derivation.Derivation` (each
gradient and each Hessian or higher block) :func:`summarize` reads the
factored form (:func:`einderiv.analysis.factor.factored`) and returns a
:class:`BlockStructure` row — data, which each printer words:

* ``terms``   K, the number of terms;
* ``kind``    a :class:`Form`: a vector (a block with one axis), a matrix or
  higher tensor between vector parameters (e.g. two biases: nothing to split),
  one outer product (one term, ≥ 2 outer-product factors), a sum of K outer
  products — with ``steps``, the labels of each family of terms when the terms
  are one per step of an unrolled family (:mod:`einderiv.analysis.fold`) — or
  no outer-product structure, when some term keeps two axes of the *same*
  parameter in one factor (a convolution kernel's gradient) or is a single
  factor carrying every axis;
* ``coupling`` for the last kind, a :class:`Coupling`: which indices (as
  :class:`~einderiv.ir.Index` objects of the block's term) couple which
  factors, and how — a summed index, an elementwise product, a diagonal δ, a
  correlation over positions (index arithmetic), or one factor carrying the
  axes together; a printer names the indices with the letters it shows the
  block with;
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
    (<Form.OUTER: 'outer'>, 9, 20)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Mapping

import sympy

from ..calculus.derivation import Block
from ..calculus.simplify import Term
from ..frontend.network import dim_symbol
from ..ir import Delta, Expr, Index, Ref, Window
from .factor import FactoredTerm, Group, factored
from .fold import fold_terms
from .order import display_order
from .roles import Context


class Form(Enum):
    """What a block is per sample (the printers word it)."""

    ZERO = "zero"
    VECTOR = "vector"  # one axis
    MATRIX = "matrix"  # every parameter a vector (biases): a matrix, or a tensor of order len(wrt)
    OUTER = "outer"  # one outer product
    SUM = "sum"  # a sum of K outer products
    NONE = "none"  # no outer-product structure: see the row's coupling


class How(Enum):
    """How a :class:`Coupling` keeps a factor's axes together."""

    SUMMED = "summed"  # a summed index couples factors
    POSITION = "position"  # a summed output position against index arithmetic x^{t+a}: a correlation
    DIAGONAL = "diagonal"  # a Kronecker delta ties two axes
    ELEMENTWISE = "elementwise"  # an elementwise product over a free index ties factors
    CARRIES = "carries"  # one factor carries the axes together


@dataclass(frozen=True)
class Coupling:
    """Why a factor of ``term`` keeps several axes of one parameter together.

    ``indices``: for SUMMED and ELEMENTWISE the index; for DIAGONAL the two tied
    axes; for POSITION the output position and the offset (``x^{stride·t+a}``);
    for CARRIES the axes.  ``factors`` are the factors involved, in display order
    (for POSITION the last is the tensor read at the shifted position).  The
    indices are those of ``term`` as the block shows it, so a printer that
    prints the block and then ``term`` has a letter for each.
    """

    how: How
    indices: tuple[Index, ...]
    factors: tuple[Expr, ...]
    term: FactoredTerm
    context: Context  # the roles of the tensors named
    stride: int = 1


@dataclass(frozen=True)
class BlockStructure:
    """One block's structure: what it is per sample and what its factored form stores."""

    wrt: tuple  # the parameters (names)
    shape: tuple[sympy.Expr, ...]  # axis sizes of the block
    terms: int  # K
    kind: Form
    factored: sympy.Expr  # per-sample storage of the factored form
    dense: sympy.Expr  # per-sample storage of the dense block
    block: Block | None = None
    coupling: Coupling | None = None  # Form.NONE: what breaks the outer-product form
    #: Form.SUM: the labels of each family of terms over an unrolled family's steps (a
    #: family of one term has one label or none); () when no terms fold
    steps: tuple[tuple[int, ...], ...] = ()

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


def coupling(g: Group, term: FactoredTerm, ctx: Context) -> Coupling:
    """What couples the axes that group ``g`` of ``term`` keeps together (the densest reason first:
    index arithmetic, a summed index, a diagonal, an elementwise product, else one carrier)."""
    fs = display_order(g.factors, g.free)  # the factors in the order they are shown
    for w in (f for f in fs if isinstance(f, Window)):
        # index arithmetic x^{t+a}: the output position t is summed against the back-propagated map
        at_t = tuple(f for f in fs if w.t in f.free and not isinstance(f, Window))
        at_u = tuple(f for f in fs if w.u in f.free and not isinstance(f, Window))
        if w.t in g.bound and at_t and at_u:
            return Coupling(How.POSITION, (w.t, w.a), at_t + at_u[:1], term, ctx, w.stride)
    for ix in g.bound:
        users = tuple(f for f in fs if ix in f.free)
        if len(users) >= 2:
            return Coupling(How.SUMMED, (ix,), users, term, ctx)
    for f in fs:
        if isinstance(f, Delta) and f.a in g.free and f.b in g.free:
            return Coupling(How.DIAGONAL, (f.a, f.b), (f,), term, ctx)
    for ix in g.free:
        users = tuple(f for f in fs if ix in f.free)
        if len(users) >= 2:
            return Coupling(How.ELEMENTWISE, (ix,), users, term, ctx)
    return Coupling(How.CARRIES, g.free, fs[:1], term, ctx)


def summarize(derivation, sizes: Mapping | None = None, context: Context | None = None) -> list[BlockStructure]:
    """One :class:`BlockStructure` per block, in the derivation's block order (``context``: the
    derivation's tensor roles, when the caller has them); a block that is another's transpose
    (orders ≥ 3) has no row of its own."""
    subs = _sizes(derivation, sizes)
    net = derivation.network
    rows = []
    for wrt, block in derivation.blocks.items():
        if block.transposed:  # another block's transpose: the same structure
            continue
        arity = [len(net.tensor(w).indices) for w in wrt]
        slot = _slot_of(block.indices, arity)
        shape = tuple(sympy.sympify(ix.dim).subs(subs) for ix in block.indices)
        dense = sympy.Mul(*shape)
        terms = factored(block.expr, block.indices)
        store = sympy.Add(*(group_storage(g) for t in terms for g in t.groups)).subs(subs)
        found, steps = None, ()
        if not terms:
            kind = Form.ZERO
        elif len(block.indices) == 1:
            kind = Form.VECTOR
        elif all(a == 1 for a in arity):
            # every parameter is a vector (biases): the block is a plain matrix
            # or tensor per sample, with no parameter axes to split apart
            kind = Form.MATRIX
        else:
            bad = [(t, g) for t in terms if (g := _coupled(t, slot, len(block.indices)))]
            if bad:
                # name the densest coupling: a contraction explains more than a diagonal
                term, group = min(bad, key=lambda tg: 0 if tg[1].bound else 1)
                kind = Form.NONE
                context = context or Context.of(derivation)
                found = coupling(group, term, context)
            elif len(terms) == 1:
                kind = Form.OUTER
            else:
                kind = Form.SUM
                steps = step_families(terms)
        rows.append(BlockStructure(wrt, shape, len(terms), kind, sympy.sympify(store), dense, block,
                                   found, steps))
    return rows


def step_families(terms: list[FactoredTerm]) -> tuple[tuple[int, ...], ...]:
    """The labels of each family of ``terms`` over an unrolled family's steps (:func:`fold_terms`);
    () when no two terms are one term at different steps."""
    exprs = []
    for t in terms:
        fs = tuple(f for g in t.scalars + t.groups for f in g.factors)
        out = tuple(ix for g in t.groups for ix in g.free)
        exprs.append(Term(t.coef, fs, out).expr())
    fams = fold_terms(exprs, ())
    if not any(f.folded for f in fams):
        return ()
    return tuple(f.labels for f in fams)
