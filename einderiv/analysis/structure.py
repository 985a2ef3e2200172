"""Structure summary: which derivative blocks are outer products, how many, and what that saves.

For every block of a :class:`~einderiv.calculus.derivation.Derivation` (each gradient
and each Hessian or higher block) :func:`summarize` finds the block's outer-product form
(:func:`einderiv.analysis.outer.outer_form`: a split of its axes into parts and the
smallest sum of outer products over them it can prove, after writing out quantities whose
definitions split further, :mod:`einderiv.analysis.inline`) and returns a
:class:`BlockStructure` row — data, which each printer words:

* ``terms``   K, the number of outer products (a sum over a shared index counts its size);
  across every bipartition of the block's axes into parts of the split and the rest,
  the block's rank is at most K;
* ``kind``    a :class:`Form`:

  - ``VECTOR`` a block with one axis (nothing to split); ``ZERO`` no term;
  - ``OUTER`` one outer product, ``SUM`` a sum of K of them — with ``steps``, the labels
    of an unrolled family when the K terms are one per step (a weight shared over steps);
  - ``SHARED`` a sum of K outer products of which some are summed over an index that
    factors of two parts read, ``Σ_q δ_q ⊗ x_q`` (K = |q| per such term): in a gradient,
    a weight shared over positions q (a token-wise weight of a transformer); in a Hessian
    block also a contraction the factors share (Σ_l over the outputs of ∂²f/∂p∂p);
  - ``CORRELATION`` the same, but the summed index is an output position read at a shifted
    input, ``Σ_l δ_l ⊗ x^{l+a}``: a convolution kernel's gradient, a correlation;
  - ``NONE`` no split exists: some term keeps every axis in one factor, or the terms tie
    the axes together between them (a diagonal δ^j_s, an elementwise product, one tensor
    carrying the axes, the L2 penalty's ``U^l_j``);

* ``coupling`` a :class:`Coupling` naming the indices and factors behind a ``SHARED``,
  ``CORRELATION`` or ``NONE`` row, in the letters the printers show the term with;
* ``factored`` per-sample storage of the outer-product form, ``dense`` of the block; a
  form that stores more than the dense block is no saving, and the printers say so.

Sizes are SymPy expressions in the dimension symbols, with the network's known sizes (and
``sizes``) substituted, so an unsized network gets symbolic storage like ``n0 + n1``.

Example::

    >>> rows = summarize(derive(net, 2))                # doctest: +SKIP
    >>> rows[0].kind, rows[0].terms, rows[0].factored   # doctest: +SKIP
    (<Form.OUTER: 'outer'>, 1, 9)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Mapping

import sympy

from ..calculus.derivation import Block
from ..calculus.simplify import Term
from ..frontend.network import dim_symbol
from ..ir import Add, Const, Delta, Expr, Index, Prod, Window, unique
from .factor import FactoredTerm, Group, as_terms, factor_term
from .fold import abstract, fold_terms, tensor_labels
from .inline import Inliner
from .order import display_order
from .outer import OuterForm, OuterTerm, Probe, components, mixed_form, number, outer_form
from .roles import Context


class Form(Enum):
    """What a block is per sample (the printers word it)."""

    ZERO = "zero"
    SCALAR = "scalar"  # no axis: a number (a scalar weight's gradient)
    VECTOR = "vector"  # one axis
    OUTER = "outer"  # one outer product
    SUM = "sum"  # a sum of K outer products
    SHARED = "shared"  # … some summed over an index read by factors of two parts: Σ_q a_q ⊗ b_q
    CORRELATION = "correlation"  # … summed over output positions read at shifted inputs: a convolution
    MIXED = "mixed"  # a sum of K outer products over different splits (no split is common to all terms)
    NONE = "none"  # no split of the axes: see the row's coupling


class How(Enum):
    """How a :class:`Coupling` keeps a factor's axes together (or sums outer products)."""

    SUMMED = "summed"  # an index summed outside the product, read by factors of different parts
    POSITION = "position"  # a summed output position against index arithmetic x^{t+a}: a correlation
    DIAGONAL = "diagonal"  # a Kronecker delta ties two axes
    ELEMENTWISE = "elementwise"  # an elementwise product over a free index ties factors
    CARRIES = "carries"  # one factor carries the axes together
    TERMS = "terms"  # each term splits, but the terms pair the axes differently


@dataclass(frozen=True)
class Coupling:
    """The indices and factors behind a row: why its axes stay together, or what it is summed over.

    ``indices``: SUMMED the summed index; POSITION each output position and its offset
    (``x^{stride·t+a}``, then ``x^{…, stride·u+b}`` in 2-D; ``windows`` one per position, whose
    :meth:`~einderiv.ir.Window.written` prints it, ``x^{t-2a+1}``, ``x^{t+1}`` without an offset);
    DIAGONAL the two tied axes; ELEMENTWISE the shared index; CARRIES the axes; TERMS none.
    ``factors`` are the factors involved, in display order (for POSITION the last is the
    tensor read at the shifted positions).  The indices are
    those of ``term`` as the printers show it, so a printer that prints ``term`` has a
    letter for each.
    """

    how: How
    indices: tuple[Index, ...]
    factors: tuple[Expr, ...]
    term: FactoredTerm
    context: Context  # the roles of the tensors named
    windows: tuple[Window, ...] = ()


@dataclass(frozen=True)
class BlockStructure:
    """One block's structure: what it is per sample and what its outer-product form stores."""

    wrt: tuple  # the parameters (names)
    shape: tuple[sympy.Expr, ...]  # axis sizes of the block
    terms: sympy.Expr  # K, the number of outer products
    kind: Form
    factored: sympy.Expr  # per-sample storage of the outer-product form
    dense: sympy.Expr  # per-sample storage of the dense block
    block: Block | None = None
    coupling: Coupling | None = None
    #: SUM: the labels of the unrolled family the K outer products are one per step of; ()
    steps: tuple[tuple[int, ...], ...] = ()
    outer: OuterForm | None = None  # the form K counts (None: no split exists, or a vector)

    @property
    def saving(self) -> sympy.Expr:
        """dense / factored (a number once sizes are known)."""
        return sympy.simplify(self.dense / self.factored) if self.factored != 0 else sympy.oo

    @property
    def saves(self) -> bool:
        """Whether the outer-product form stores less than the dense block (symbolic sizes: at 7)."""
        return number(self.factored, {}) < number(self.dense, {})


def _sizes(derivation, sizes: Mapping | None) -> dict[sympy.Symbol, int]:
    subs = dict(derivation.network.sizes())
    for k, v in (sizes or {}).items():
        subs[dim_symbol(k) if isinstance(k, str) else k] = v
    return subs


def summarize(derivation, sizes: Mapping | None = None, context: Context | None = None) -> list[BlockStructure]:
    """One :class:`BlockStructure` per block, in the derivation's block order (``context``: the
    derivation's tensor roles, when the caller has them); a block that is another's transpose
    (orders ≥ 3) has no row of its own."""
    subs = _sizes(derivation, sizes)
    ctx = context or Context.of(derivation)
    inliners = (Inliner(derivation, ctx), Inliner(derivation, ctx, chains=True))
    probe = Probe(subs)
    return [block_structure(wrt, block, subs, ctx, inliners, probe) for wrt, block in derivation.blocks.items()
            if not block.transposed]  # a transpose has its source's structure


def best_form(terms: list[Term], axes: tuple[Index, ...], probe: Probe,
              inliners: tuple[Inliner, ...]) -> OuterForm | None:
    """The outer-product form of ``terms`` with the smallest K: over a common split, or else (only
    when that proves a smaller K) a mixed one; with quantities written out only where that proves
    a smaller K — their split forms, and whole chains of them only where nothing else splits the
    block (a narrow layer inside a chain of Jacobians)."""
    best = None

    def consider(f: OuterForm | None) -> bool:
        nonlocal best
        if f is not None and (best is None or probe(f.K) < probe(best.K)):
            best = f
        return best is not None and probe(best.K) <= 1

    if consider(outer_form(terms, axes, probe)) or consider(mixed_form(terms, axes, probe)):
        return best
    split, chains = inliners
    written = split.terms(terms)
    if written and (consider(outer_form(written, axes, probe, True))
                    or consider(mixed_form(written, axes, probe, True))):
        return best
    if best is None:
        written = chains.terms(terms)
        if written:
            consider(outer_form(written, axes, probe, True)) or consider(mixed_form(written, axes, probe, True))
    return best


def block_structure(wrt, block: Block, subs: Mapping, ctx: Context, inliners: tuple[Inliner, ...],
                    probe: Probe) -> BlockStructure:
    """The row of one block."""
    shape = tuple(sympy.sympify(ix.dim).subs(subs) for ix in block.indices)
    dense = sympy.Mul(*shape)
    terms = as_terms(block.expr, block.indices)
    if not terms:
        return BlockStructure(wrt, shape, sympy.Integer(0), Form.ZERO, sympy.Integer(0), dense, block)
    if len(block.indices) <= 1:
        kind = Form.VECTOR if block.indices else Form.SCALAR
        return BlockStructure(wrt, shape, sympy.Integer(1), kind, dense, dense, block)
    form = best_form(terms, block.indices, probe, inliners)
    if form is None:
        return BlockStructure(wrt, shape, sympy.Integer(len(terms)), Form.NONE, dense, dense, block,
                              tie(terms, block.indices, ctx))
    K = sympy.sympify(form.K).subs(subs)
    store = sympy.sympify(form.storage).subs(subs)
    coupling, steps = None, ()
    if form.shifted:
        kind = Form.CORRELATION
        coupling = summed(next(t for t in form.terms if t.shifted), form, ctx)
    elif form.positions:
        kind = Form.SHARED
        coupling = summed(next(t for t in form.terms if t.over), form, ctx)
    elif form.mixed:
        kind = Form.MIXED
    elif len(form.terms) == 1:
        kind = Form.OUTER
    else:
        kind = Form.SUM
        steps = step_families(form)
    return BlockStructure(wrt, shape, K, kind, store, dense, block, coupling, steps, form)


# ------------------------------------------------------------------ the printers' view of a form
def as_factored(t: OuterTerm) -> FactoredTerm:
    """An outer-product form's term as a :class:`FactoredTerm` (one group per part) for the printers."""
    groups = []
    for e, part in zip(t.factors, t.parts):
        fs = e.factors if isinstance(e, Prod) and e.out == part + tuple(ix for ix in t.over if ix in e.out) \
            else (e,)
        groups.append(Group(tuple(fs), part, ()))
    scalars = (Group(t.scalars, (), ()),) if t.scalars else ()
    return FactoredTerm(t.coef, scalars, tuple(groups), t.over)


def atoms(e: Expr) -> list[Expr]:
    """The factors of ``e`` as a reader meets them: through sums and products, never into a function."""
    if isinstance(e, (Add, Prod)):
        return [a for c in e.children() for a in atoms(c)]
    return [] if isinstance(e, Const) else [e]


def summed(t: OuterTerm, form: OuterForm, ctx: Context) -> Coupling:
    """What a term summed outside its product is summed over: the shared index and, in each part,
    the first factor that reads it — or the output positions and the shifted input of a correlation."""
    ft = as_factored(t)
    parts = [[a for f in display_order(g.factors, g.free + t.over) for a in atoms(f)] for g in ft.groups]
    flat = [a for part in parts for a in part]
    first = next((a for a in flat if isinstance(a, Window) and a.t in t.over), None)
    if first is not None:
        x = next(a for a in flat if first.u in a.free and not isinstance(a, Window))  # the shifted input
        windows = sorted((a for a in dict.fromkeys(flat) if isinstance(a, Window) and a.u in x.free),
                         key=lambda w: x.free.index(w.u))  # x^{c, u+a, w+b}: one window per position axis
        at_t = tuple(dict.fromkeys(next(a for a in part if first.t in a.free and not isinstance(a, Window))
                                   for part in parts
                                   if any(first.t in a.free and not isinstance(a, Window) for a in part)))
        return Coupling(How.POSITION, tuple(ix for w in windows for ix in w.free[1:]), at_t + (x,), ft, ctx,
                        tuple(windows))
    q = t.over[0]
    readers = tuple(next(a for a in part if q in a.free) for part in parts if any(q in a.free for a in part))
    return Coupling(How.SUMMED, (q,), readers, ft, ctx)


def tie(terms: list[Term], axes: tuple[Index, ...], ctx: Context) -> Coupling:
    """Why no split exists: the factors (tied by a free axis) that carry the most axes, and how they
    tie them; TERMS when no term ties every axis and only the terms together do."""
    outs = set(axes)
    best = None
    for t in terms:
        for comp in components(t.factors, lambda ix: ix in outs):
            fs = [t.factors[k] for k in comp]
            carried = unique(ix for f in fs for ix in f.free if ix in outs)
            if best is None or len(carried) > len(best[2]):
                best = (t, fs, carried)
    t, fs, carried = best
    ft = factor_term(t)
    if len(carried) < len(axes):
        return Coupling(How.TERMS, (), (), ft, ctx)
    fs = display_order(fs, carried)
    for f in fs:
        if isinstance(f, Delta) and f.a in outs and f.b in outs:
            return Coupling(How.DIAGONAL, (f.a, f.b), (f,), ft, ctx)
    for ix in carried:
        users = tuple(f for f in fs if ix in f.free)
        if len(users) >= 2:
            return Coupling(How.ELEMENTWISE, (ix,), users, ft, ctx)
    carrier = max(fs, key=lambda f: len([ix for ix in f.free if ix in outs]))
    return Coupling(How.CARRIES, tuple(ix for ix in carrier.free if ix in outs), (carrier,), ft, ctx)


def step_families(form: OuterForm) -> tuple[tuple[int, ...], ...]:
    """The labels of the unrolled family the form's terms are one per step of: ``((2, 3, 4),)`` when
    the K terms are one term at steps 2, 3, 4; () otherwise."""
    axes = form.axes
    if len(form.terms) < 2 or any(not tensor_labels(t.expr(axes)) for t in form.terms):
        return ()
    exprs = [t.expr(axes) for t in form.terms]
    fams = fold_terms(exprs, axes)
    if len(fams) != 1 or not fams[0].folded:
        return ()
    return (fams[0].labels,)


def folded_outer(form: OuterForm, symbol: str = "t") -> list[tuple[OuterTerm, tuple[int, ...]]]:
    """The form's terms, each family over an unrolled label once: ``(term with symbolic labels,
    labels)``, or ``(term, ())`` for a term that stands alone."""
    axes = form.axes
    exprs = [t.expr(axes) for t in form.terms]
    out = []
    for fam in fold_terms(exprs, axes, symbol):
        first = form.terms[next(k for k, e in enumerate(exprs) if e is fam.originals[0])]
        if not fam.folded:
            out.append((first, ()))
            continue
        ref = max(tensor_labels(fam.originals[0]))
        out.append((OuterTerm(first.coef, first.parts, tuple(abstract(f, ref, symbol) for f in first.scalars),
                              tuple(abstract(f, ref, symbol) for f in first.factors), first.over, first.shifted,
                              first.part_storage, first.merged, first.pieces), fam.labels))
    return out
