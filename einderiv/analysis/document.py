"""The document of a derivation: what its text and LaTeX show, decided once.

:func:`document` reads a derivation and returns a :class:`Document`, its
sections in order, each a frozen record that the printers
(:mod:`einderiv.emit.text`, :mod:`einderiv.emit.latex`) only print:

1. :class:`Title` — the objective, the source, the order;
2. :class:`NetworkSection` — the dims; the declarations, grouped into
   families (:class:`Declared`); the nodes as derived, every pre-activation
   named, and the definitions as the user wrote them (:class:`Defined`);
3. :class:`ObjectiveSection` — the symbol for ``softmax(p)``
   (:class:`SoftmaxDef`) and the objective's own derivatives ∂f/∂p,
   ∂²f/∂p∂p, left named as in the paper's Eq. 6;
4. :class:`FunctionsSection` — A′, A″, … of every function used
   (:class:`ClosedForm`, the right side from SymPy);
5. :class:`IntermediatesSection` — adjoints δ and Jacobians γ, η, each
   defined once, in dependency order;
6. :class:`BlocksSection`, one per order — each block (:class:`BlockItem`)
   as a sum of factored terms folded into sums over steps
   (:class:`FoldedTerm`), and for gradients the paper's Eq. 6 form;
7. :class:`OuterFormsSection` — each block whose outer-product form
   (:mod:`einderiv.analysis.outer`) differs from its terms as shown: terms that share
   outer factors merged, sums over shared indices pulled out, quantities written out
   where that proves a smaller K — the form the structure table's K counts;
8. :class:`StructureSection` — :func:`einderiv.analysis.structure.summarize`.

Decided here, so that every printer agrees: an unrolled recurrence is
written once per family (:func:`shown_families`, built on
:mod:`einderiv.analysis.fold`), and a single member completing a folded family
is its *base case* (shown in dependency order, or after the recurrence with
:func:`recurrences_first`); declared families are grouped only while their
members' shapes agree (:func:`declared_families`); which closed forms are
listed (:func:`wanted_functions`).  A derivation is at a concrete length, so its
labels and ranges are numbers (``t = 1..3``, ``h(4)``): only a template's general
form (:mod:`einderiv.analysis.general_document`) is written for any T.  Index
letters and symbols are the printers' (:mod:`einderiv.emit.letters`).

Example::

    >>> doc = document(derive(load("derivations/rnn.ein"), 1))        # doctest: +SKIP
    >>> [type(s).__name__ for s in doc.sections][:3]                   # doctest: +SKIP
    ['Title', 'NetworkSection', 'ObjectiveSection']
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import sympy

from ..calculus.derivation import Block
from ..ir import Expr, Index, Name, Ref, Softmax, Sym, TensorName, labels_of
from .closed_forms import SIGMA, ClosedForm, closed_forms, wanted_functions  # noqa: F401 (the model's items)
from .factor import FactoredTerm, as_terms, factored
from .fold import fold_definitions, fold_terms, shift_labels
from .order import axes_of, term_order
from .roles import Context
from .structure import BlockStructure, as_factored, folded_outer, summarize


# ------------------------------------------------------------------ items
@dataclass(frozen=True)
class Declared:
    """A declared tensor, or a family of them (``x(t)`` for ``x(1) … x(4)``)."""

    name: TensorName  # as shown: x(t) for a family
    indices: tuple[Index, ...]
    role: str  # input, label, weight, bias
    labels: tuple[int, ...] = ()  # a family's labels, () for a single tensor
    range: str = ""  # a layer template's family: ``k = 2..n``
    domain: str = ""  # data's declared values: positive, probability, onehot


@dataclass(frozen=True)
class Defined:
    """One displayed definition ``name = expr``: a single one, a folded family, or a base case."""

    name: TensorName  # h(t), adj[h(t)], or a single member's own name
    indices: tuple[Index, ...]
    expr: Expr
    labels: tuple[int, ...] = ()  # a folded family's labels, () otherwise
    first: TensorName | None = None  # the first member's unrolled name
    base_of: TensorName | None = None  # a base case: the folded family it completes
    pre: bool = False  # a pre-activation (a lifted function argument, ``z_v1``)
    objective: bool = False  # the objective's definition
    origin: TensorName | None = None  # a pre-activation: the node whose argument it is (``h(t)``)
    cond: str = ""  # a layer template's case, ``k < n`` ('' when its labels are pinned)
    paper_eq: int | None = None  # the paper's equation this definition is (β: 2, α: 3, η = α γ: 4)


@dataclass(frozen=True)
class Definitions:
    """Definitions in dependency order; ``as_written``: shown as the user wrote them (a node's
    definition inside is not replaced by the node's name)."""

    items: tuple[Defined, ...]
    as_written: bool = False

    def __iter__(self) -> Iterator[Defined]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def recurrences_first(self) -> tuple[Defined, ...]:
        """The same definitions with each base case right after its recurrence (as a paper writes it)."""
        return recurrences_first(self.items)

    def pre(self) -> "Definitions":
        """Only the pre-activations."""
        return Definitions(tuple(d for d in self.items if d.pre), self.as_written)


@dataclass(frozen=True)
class SoftmaxDef:
    """The symbol that stands for ``softmax_l(p^l)`` (:attr:`Context.softmax`), defined once."""

    arg: Ref  # p^l

    @property
    def expr(self) -> Softmax:
        return Softmax(self.arg, self.arg.indices[0])


@dataclass(frozen=True)
class FoldedTerm:
    """A term of a block; with ``labels`` it stands for Σ over the labels (``symbol`` in its names)."""

    term: FactoredTerm
    labels: tuple[int, ...] = ()
    symbol: str = "t"


@dataclass(frozen=True)
class BlockItem:
    """One derivative block ∂^k f/∂θ1…∂θk and the parameters with their slices of its axes.

    ``same``: the other orders of the same parameters (order ≥ 3), which are this block with its
    axes permuted (derivatives commute) and are not written again."""

    block: Block
    params: tuple[Ref, ...]  # θ1 with the block's first axes, θ2 with the next, …
    same: tuple[tuple[Name, ...], ...] = ()

    def terms(self, symbol: str = "t") -> tuple[FoldedTerm, ...]:
        """The block's terms, each family over steps folded into one (:func:`folded_terms`).
        ``symbol`` names the step; a printer whose letters for the axes use ``t`` picks another."""
        return folded_terms(self.block, symbol)

    @property
    def paper(self) -> Expr | None:
        """The paper's Eq. 6 form of a gradient, when it differs from the block's expression."""
        b = self.block
        return None if b.paper is None or b.paper == b.expr else b.paper

    def paper_terms(self, symbol: str = "t") -> tuple[FoldedTerm, ...] | None:
        """The terms of :attr:`paper`, folded like :meth:`terms`."""
        paper = self.paper
        return None if paper is None else folded_terms(self.block, symbol, paper)


# ------------------------------------------------------------------ sections
@dataclass(frozen=True)
class Title:
    """What is derived, from which file, to which order; ``heading`` is the file's own title
    (its leading comment's first sentence, :mod:`einderiv.frontend.header`), ``functions`` the
    activations used and ``recurrent`` whether a family is unrolled (to word a title without one)."""

    objective: Name
    path: str
    order: int
    heading: str = ""
    functions: tuple[str, ...] = ()
    recurrent: bool = False


@dataclass(frozen=True)
class NetworkSection:
    """The network: sizes, declared tensors, definitions."""

    dims: tuple[tuple[str, int | None], ...]
    declarations: tuple[Declared, ...]
    nodes: Definitions  # every node of the derivation (pre-activations named), dependency order
    written: Definitions  # the network's definitions as the user wrote them
    padded: tuple[str, ...] = ()  # ``padded x, v1``: read as zero outside their axes


@dataclass(frozen=True)
class ObjectiveSection:
    """The objective's own derivatives, left named in the blocks as in the paper's Eq. 6."""

    args: tuple[TensorName, ...]  # the objective's arguments (p): ∂f/∂p is left named
    softmaxes: tuple[SoftmaxDef, ...]
    defs: Definitions


@dataclass(frozen=True)
class FunctionsSection:
    """The closed forms of the functions' derivatives the derivation uses; ``symbols``: the special
    functions they are written with (``sigma``, the logistic σ; ``theta``, the unit step θ)."""

    forms: tuple[ClosedForm, ...]
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True)
class IntermediatesSection:
    """The shared intermediates (adjoints, Jacobians), each defined once."""

    defs: Definitions
    expanded: bool  # Hessian blocks expanded (else written through second-order adjoints H)
    recurrent: bool  # some recurrence is folded over steps


@dataclass(frozen=True)
class BlocksSection:
    """The derivative blocks of one order (gradients, Hessian blocks, …); from order 3 on, each
    set of parameters once, naming the orderings it stands for (:attr:`BlockItem.same`)."""

    order: int
    blocks: tuple[BlockItem, ...]


@dataclass(frozen=True)
class OuterItem:
    """A block's outer-product form: K outer products over a split of its axes (or over
    different splits: a mixed form)."""

    row: BlockStructure
    params: tuple[Ref, ...]  # as for :class:`BlockItem`

    def terms(self, symbol: str = "t") -> tuple[FoldedTerm, ...]:
        """The form's terms, a family over unrolled steps once (``symbol`` names the step)."""
        items = [FoldedTerm(as_factored(t), labels, symbol) for t, labels in folded_outer(self.row.outer, symbol)]
        order = term_order([it.term for it in items], axes_of(self.row.block.indices))
        rank = {id(ft): k for k, ft in enumerate(order)}
        return tuple(sorted(items, key=lambda it: rank[id(it.term)]))


@dataclass(frozen=True)
class OuterFormsSection:
    """The blocks whose outer-product form is not the form they are shown in."""

    items: tuple[OuterItem, ...]


@dataclass(frozen=True)
class StructureSection:
    """Which blocks are outer products, and the storage that saves."""

    rows: tuple[BlockStructure, ...]


@dataclass(frozen=True)
class Document:
    """A derivation's document: its sections in order, and what every section is printed with."""

    context: Context
    #: the size a family's last label stands for (``('T', 4)``, written ``T``): None — a derivation at
    #: a concrete length writes its labels as numbers (only a general form is written for any T)
    horizon: tuple[str, int] | None
    sections: tuple

    def reserved(self, exprs: Sequence[Expr]) -> tuple[str, ...]:
        """Symbols that no index letter of a statement over ``exprs`` may take (``s`` for softmax)."""
        return self.context.letters_taken(exprs)


def document(derivation, sizes: Mapping | None = None) -> Document:
    """Build the :class:`Document` of a derivation (``sizes`` complete the structure's storage)."""
    net = derivation.network
    ctx = Context.of(derivation)
    pre = {n.name for n in derivation.nodes if n.pre}
    origin = {n.name: n.origin for n in derivation.nodes}

    def node(d: Defined) -> Defined:
        of = None
        if d.first in pre:
            of = origin[d.first]
            if d.labels:  # the activation's family: h(1) -> h(t)
                of = of.relabel(lambda _: Sym("t"))
        return dataclasses.replace(d, pre=d.first in pre, objective=d.first == net.objective, origin=of)

    nodes = [node(d) for d in shown_families([(n.name, n.indices, n.expr) for n in derivation.nodes])]
    written = [dataclasses.replace(d, objective=d.first == net.objective)
               for d in shown_families([(d.name, d.indices, d.expr) for d in net.definitions])]
    own = [q for q in derivation.quantities if ctx.of_objective(q.name)]
    rest = [q for q in derivation.quantities if not ctx.of_objective(q.name)]
    recurrent = any(labels_of(n.name) for n in derivation.nodes)
    acts = tuple(dict.fromkeys(name for name, _ in wanted_functions(derivation)))
    sections: list = [
        Title(net.objective, net.path, derivation.order, net.header.title, acts, recurrent),
        NetworkSection(tuple(net.dims), tuple(declared_families(net.tensors)),
                       Definitions(tuple(nodes), True), Definitions(tuple(written), True), net.padded),
        ObjectiveSection(tuple(derivation.objective_args), softmax_defs(derivation, ctx),
                         Definitions(tuple(shown_families([(q.name, q.indices, q.expr) for q in own])))),
    ]
    forms = closed_forms(derivation)
    if forms:
        sections.append(functions_section(forms))
    if rest:
        sections.append(IntermediatesSection(
            Definitions(tuple(shown_families([(q.name, q.indices, q.expr) for q in rest]))),
            derivation.expanded, recurrent))
    shown = shown_blocks(derivation)
    for k in range(1, derivation.order + 1):
        items = tuple(BlockItem(b, block_params(derivation, b), shown[w]) for w, b in
                      derivation.blocks_of_order(k).items() if w in shown)
        if items:
            sections.append(BlocksSection(k, items))
    rows = tuple(summarize(derivation, sizes, ctx))  # one row per derived block
    outer = tuple(OuterItem(r, block_params(derivation, r.block)) for r in rows
                  if r.outer is not None and r.outer.rewritten)
    if outer:
        sections.append(OuterFormsSection(outer))
    sections.append(StructureSection(rows))
    return Document(ctx, None, tuple(sections))


def functions_section(forms: Sequence[ClosedForm]) -> FunctionsSection:
    """The closed forms, and the special functions they are written with."""
    used = {"sigma": SIGMA, "theta": sympy.Heaviside}
    symbols = tuple(k for k, fn in used.items() if any(f.expr.has(fn) for f in forms))
    return FunctionsSection(tuple(forms), symbols)


def shown_blocks(derivation) -> dict[tuple, tuple[tuple, ...]]:
    """The blocks a document writes, each with the other orders of its parameters it stands for.

    Derivatives commute, so from order 3 on one block per set of parameters is derived (its
    parameters in declaration order) and every other ordering is that block transposed
    (:attr:`~einderiv.calculus.derivation.Block.source`): the derived block is written, with the
    orderings it stands for, in derivation order.  Gradients and Hessian blocks are all written,
    as the paper does."""
    out: dict[tuple, list[tuple]] = {w: [] for w, b in derivation.blocks.items() if not b.transposed}
    for wrt, b in derivation.blocks.items():
        if b.transposed:
            out[b.source].append(wrt)
    return {w: tuple(same) for w, same in out.items()}


# ------------------------------------------------------------------ decisions
def block_params(derivation, block: Block) -> tuple[Ref, ...]:
    """The block's parameters, each with its slice of the block's axes: (W1^j_i, W2^s_t)."""
    out, pos = [], 0
    for w in block.wrt:
        n = len(derivation.network.tensor(w).indices)
        out.append(Ref(w, block.indices[pos:pos + n]))
        pos += n
    return tuple(out)


def softmax_defs(derivation, ctx: Context) -> tuple[SoftmaxDef, ...]:
    """A definition for each softmax symbol whose argument is a node over one index."""
    out = []
    for arg in ctx.softmax:
        n = derivation.node(arg)
        if n is not None and len(n.indices) == 1:
            out.append(SoftmaxDef(Ref(arg, n.indices)))
    return tuple(out)


def shown_families(defs: Sequence[tuple[TensorName, tuple[Index, ...], Expr]]) -> list[Defined]:
    """``(name, indices, expr)`` definitions grouped into families (:func:`~einderiv.analysis.fold.fold_definitions`),
    in dependency order.

    A family of one keeps its member's own form.  A single member whose name,
    written relative to its own label, is a folded family's name (``δ[h(4)]``
    next to ``δ[h(t)] for t = 1..3``) is that family's base case (``base_of``).
    """
    by_name = {d[0]: d for d in defs}
    out: list[Defined] = []
    for fam in fold_definitions(defs):
        if fam.folded:
            out.append(Defined(fam.name, fam.indices, fam.expr, fam.labels, fam.members[0]))
        else:
            name, indices, expr = by_name[fam.members[0]]
            out.append(Defined(name, indices, expr, (), name))
    folded = {d.name for d in out if d.labels}
    for k, d in enumerate(out):
        labs = labels_of(d.name) if not d.labels else ()
        if labs:
            fam = shift_labels(d.name, labs[0], "t")
            if fam in folded:
                out[k] = dataclasses.replace(d, base_of=fam)
    return out


def recurrences_first(items: Sequence[Defined]) -> tuple[Defined, ...]:
    """``items`` with each base case moved right after its folded family (a recurrence, then its
    base case, as a paper writes it); everything else keeps its dependency-order place."""
    result = [d for d in items if d.base_of is None]
    for d in items:
        if d.base_of is not None:
            at = next(k for k, r in enumerate(result) if r.labels and r.name == d.base_of)
            while at + 1 < len(result) and result[at + 1].base_of == d.base_of:
                at += 1
            result.insert(at + 1, d)
    return tuple(result)


def declared_families(tensors) -> list[Declared]:
    """Declarations, ``x(1) … x(4)`` declared once as ``x(t)``.

    Members are grouped only while their shapes agree: an unrolled layer template's
    ``w(1) : h × n_in`` stands alone and ``w(t) : h × h for t = 2, 3`` follows it, so
    no member is shown with another's shape.
    """
    out, last = [], {}
    for t in tensors:
        if not t.name.ints:
            out.append((t.name, t, []))
            continue
        base, (lab,) = t.name.base, t.name.ints
        shape = tuple(ix.dim for ix in t.indices)
        k = last.get(base)
        if k is not None and out[k][1].role == t.role and out[k][1].domain == t.domain \
                and tuple(ix.dim for ix in out[k][1].indices) == shape:
            out[k][2].append(lab)
        else:
            last[base] = len(out)
            out.append((t.name, t, [lab]))
    return [Declared(Name(n.base, (Sym("t"),)) if len(labs) > 1 else n, t.indices, shown_role(t),
                     tuple(labs) if len(labs) > 1 else (), domain=t.domain or "")
            for n, t, labs in out]


def shown_role(t) -> str:
    """A declaration's role as the file writes it: ``bias`` for a bias (a weight to the engine)."""
    return "bias" if t.bias else t.role


def folded_terms(block: Block, symbol: str = "t", expr: Expr | None = None) -> tuple[FoldedTerm, ...]:
    """A block's terms, one per family of steps (Σ over the labels), in display order
    (:func:`~einderiv.analysis.order.term_order`).  ``expr`` replaces the block's own
    expression (the Eq. 6 form)."""
    expr = block.expr if expr is None else expr
    fams = fold_terms([t.expr() for t in as_terms(expr, block.indices)], block.indices, symbol)
    items = [FoldedTerm(factored(f.term if f.folded else f.originals[0], block.indices)[0],
                        f.labels if f.folded else (), symbol) for f in fams]
    order = term_order([it.term for it in items], axes_of(block.indices))
    rank = {id(ft): k for k, ft in enumerate(order)}
    return tuple(sorted(items, key=lambda it: rank[id(it.term)]))
