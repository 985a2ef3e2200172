"""The document of a layer template's general form: the paper's Eqs. 1–9 for any depth n.

:func:`general_document` reads a :class:`~einderiv.analysis.template.GeneralForm`
and returns a :class:`GeneralDocument` that the printers
(:func:`einderiv.emit.text.render_general`, :func:`einderiv.emit.latex.render_general`)
only print.  Its sections, in order:

1. :class:`GeneralTitle` — the depth symbol, the reference depth the formulas
   were read off, the depths they were checked at;
2. :class:`TemplateNetwork` — the network as a layer template: declared
   families with their layer ranges (:class:`~einderiv.analysis.document.Declared`),
   definitions with their conditions (:class:`~einderiv.analysis.document.Defined`);
3. :class:`~einderiv.analysis.document.ObjectiveSection` and
   :class:`~einderiv.analysis.document.FunctionsSection`, as for a derivation;
4. :class:`GeneralIntermediates` — δ, γ, η for generic layers, each case once;
5. :class:`GeneralBlocks`, one per order — for each pair of families
   differentiated, either its cases one by one (:class:`CaseGroup` of
   :class:`GeneralCase`) or, for Eq. 9, the terms every case shares and a
   case split ``r > k`` / ``r = k`` / ``r < k`` (:class:`CaseSplit`).

Decided here: a case that pins a label (``k = n``) is shown with the label
substituted and without its condition (:func:`pinned`); the cases of a block
are in the paper's order; terms are in display order; a Σ over layers
(``Σ_{m=max(k,r)+1}^{n}``) keeps its range as labels (:class:`GeneralTermItem`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import sympy

from ..ir import (Apply, Const, Delta, Expr, Index, Kind, Label, Name, Prod, Quantity, Ref, Sym, TensorName,
                  map_names, map_refs)
from .document import (ClosedForm, Declared, Defined, Definitions, ObjectiveSection,
                       closed_forms, functions_section, shown_role, softmax_defs)
from .factor import FactoredTerm, factored
from .order import axes_of, term_order
from .roles import Context
from .labels import LAYERS, Labels, StepRange, step_ranges
from .cases import split_common
from .conditions import describe, range_text
from .template import (MAX_BOUND, REF_DEPTH, Condition, GeneralBlock, GeneralDef, GeneralForm, GeneralTerm,
                       MaxOf, concrete_name)

#: letters that name layers in the general form (k, r of the blocks, l, q of definitions, m summed
#: over, the depth n); index letters keep clear of them
LAYER_LETTERS = ("k", "l", "m", "n", "q", "r")


# ----------------------------------------------------------- pinned labels
def pinned(cond: Condition, symbols: Sequence[str], depth: str = "n") -> dict[str, Label]:
    """Symbols a case fixes: ``k = n`` → {'k': n}, ``k = 0`` → {'k': 0} (``depth``: the depth's symbol)."""
    out: dict[str, Label] = {}
    for x, y, lo, hi in cond.bounds:
        if x in symbols and lo is not None and lo == hi and y in ("0", depth) and x not in out:
            out[x] = lo if y == "0" else Sym(depth, lo)
    return out


def pin_label(label, pins: dict[str, Label]):
    """``label`` with a pinned symbol replaced: ``k-1`` with k = n → ``n-1``."""
    if not isinstance(label, Sym) or label.symbol not in pins:
        return label
    base = pins[label.symbol]
    return base + label.offset if isinstance(base, int) else base.shift(label.offset)


def pin_name(name: TensorName, pins: dict[str, Label]) -> TensorName:
    """``name`` with pinned symbols replaced in its labels: ``v(k-1)`` with k = n → ``v(n-1)``."""
    return map_names(name, lambda n: n.relabel(lambda lab: pin_label(lab, pins)))


def pin(e: Expr, pins: dict[str, Label]) -> Expr:
    """Every tensor name of ``e`` with pinned symbols replaced."""
    return map_refs(e, lambda n: pin_name(n, pins)) if pins else e


def all_pinned(pins: dict[str, Label], symbols: Sequence[str]) -> bool:
    """Whether the pins fix every label of a case (its condition then goes without saying)."""
    return bool(pins) and set(pins) == set(symbols)


# ------------------------------------------------------------------ items
@dataclass(frozen=True)
class GeneralTermItem:
    """A term of a general block; with ``over`` = (lo, hi) it is Σ_{m=lo}^{hi} of ``term``; with
    ``steps`` (:class:`~einderiv.analysis.labels.StepRange`, outermost first) it is
    Σ_{t=lo..hi} Σ_{τ=lo..hi} … of ``term``."""

    term: FactoredTerm
    over: tuple[Label | MaxOf, Label | MaxOf] | None = None
    steps: tuple[StepRange, ...] = ()


@dataclass(frozen=True)
class GeneralCase:
    """One case of a family of blocks, ``∂²f/∂w(k)∂u = … (for k = 1..n)``."""

    params: tuple[Ref, ...]  # the parameters (labels pinned) with their slices of the axes
    indices: tuple[Index, ...]
    terms: tuple[GeneralTermItem, ...]
    paper: tuple[GeneralTermItem, ...] | None  # the Eq. 6 form
    cond: str  # '' when pins fix every label
    exprs: tuple[Expr, ...]  # the terms as derived: their indices are lettered first


@dataclass(frozen=True)
class CaseGroup:
    """Cases of one family pair, each printed on its own."""

    cases: tuple[GeneralCase, ...]


@dataclass(frozen=True)
class CaseArm:
    """One arm of a :class:`CaseSplit`: a condition and the terms only it has."""

    cond: str
    indices: tuple[Index, ...]
    terms: tuple[GeneralTermItem, ...]
    exprs: tuple[Expr, ...]


@dataclass(frozen=True)
class CaseSplit:
    """Eq. 9: the terms every case shares, then ``{ r > k: … ; r = k: … ; r < k: … }``."""

    params: tuple[Ref, ...]
    indices: tuple[Index, ...]
    common: tuple[GeneralTermItem, ...]
    arms: tuple[CaseArm, ...]
    exprs: tuple[Expr, ...]


# ------------------------------------------------------------------ sections
@dataclass(frozen=True)
class GeneralTitle:
    """What is derived, for which depth symbol, and how it was validated."""

    objective: Name
    path: str
    order: int
    depth: str  # the depth's symbol, n
    reference: int  # the depth the formulas were read off
    checked: tuple[int, ...]  # the depths they reproduce exactly
    heading: str = ""  # the file's own title (its leading comment's first sentence)
    what: str = "depth"  # what the depth counts: "depth" (layers) or "length" (steps of a recurrence)


@dataclass(frozen=True)
class TemplateNetwork:
    """The network as a layer template: families over layers with their ranges."""

    dims: tuple[tuple[str, int | None], ...]  # without the depth
    depth: str
    declarations: tuple[Declared, ...]
    nodes: Definitions
    steps: str = ""  # a recurrence: its step symbol (t); '' for a layer template


@dataclass(frozen=True)
class GeneralIntermediates:
    """δ, γ, η of Eqs. 1–4 for generic layers (or steps), each case once; ``paper``: for layers of
    the paper's form v(k) = A(w(k) v(k−1)), its Eqs. 2–4 (β, α, and η = α γ) as definitions
    (:func:`paper_forms`)."""

    defs: Definitions
    paper: Definitions | None = None
    steps: bool = False  # a recurrence's: cases are steps, not layers


@dataclass(frozen=True)
class GeneralBlocks:
    """The blocks of one order for generic layers (Eqs. 5–6, Eqs. 7–9)."""

    order: int
    groups: tuple[CaseGroup | CaseSplit, ...]


@dataclass(frozen=True)
class GeneralDocument:
    """A template's general form as a document: its sections in order."""

    context: Context
    sections: tuple
    horizon: None = None  # labels are symbolic: no range is written against a size

    def reserved(self, exprs: Sequence[Expr] = ()) -> tuple[str, ...]:
        """Names no index letter may take: the labels' symbols, and every name of the document."""
        return self.context.letters_taken()


def general_document(gf: GeneralForm) -> GeneralDocument:
    """Build the :class:`GeneralDocument` of a template's general form."""
    ref = gf.reference
    net = ref.network
    tpl = gf.template
    labels = gf.labels
    ctx = Context.of(ref, folded=False).reserving(labels.reserved if labels.steps else LAYER_LETTERS)
    pre = {n.name for n in ref.nodes if n.pre}
    nodes = []
    for g in gf.nodes:
        first = concrete_name(g.name, g.members[0]) if g.members else g.name
        nodes.append(general_def(g, pre=first in pre, objective=g.name == net.objective, depth=labels.depth))
    own = [general_def(g, depth=labels.depth) for g in gf.quantities if ctx.of_objective(g.name)]
    rest = [general_def(g, depth=labels.depth) for g in gf.quantities if not ctx.of_objective(g.name)]
    sections: list = [
        GeneralTitle(net.objective, tpl.path, gf.order, tpl.depth, REF_DEPTH, tuple(gf.checked), tpl.header.title,
                     labels.what),
        TemplateNetwork(tuple((n, s) for n, s in net.dims if n != tpl.depth), tpl.depth,
                        tuple(general_declarations(gf)), Definitions(tuple(nodes)),
                        labels.defs[0] if labels.steps else ""),
        ObjectiveSection(tuple(ref.objective_args), softmax_defs(ref, ctx), Definitions(tuple(own))),
    ]
    forms: tuple[ClosedForm, ...] = closed_forms(ref)
    if forms:
        sections.append(functions_section(forms))
    layers = paper_layers(gf)
    rest += complete_eta(layers) if layers else []
    sections.append(GeneralIntermediates(Definitions(tuple(rest)), paper_forms(layers) if layers else None,
                                         bool(labels.steps)))
    for order in range(1, gf.order + 1):
        groups = [case_group(gf, cases) for cases in block_families(gf) if len(cases[0].bases) == order]
        sections.append(GeneralBlocks(order, tuple(groups)))
    return GeneralDocument(ctx, tuple(sections))


def paper_layers(gf: GeneralForm) -> tuple[Name, Name, tuple[Index, Index]] | None:
    """``(v(k), w(k), (j, i))`` when the template's layers are the paper's ``v(k) = A(w(k)^j_i v(k-1)^i)``
    for every k (Table 1), else None."""
    k = Sym("k")
    for g in gf.nodes:
        name = g.name
        if not (isinstance(name, Name) and name.arg == 1 and name.labels == (k,)):
            continue
        layer = Name(name.base, (k,))
        e = g.expr
        if not any(isinstance(n.expr, Apply) and n.expr.args == (Ref(name, g.indices),) for n in gf.nodes
                   if n.name == layer) or not isinstance(e, Prod) or len(e.factors) != 2:
            continue
        w, v = e.factors
        if (isinstance(w, Ref) and isinstance(v, Ref) and isinstance(w.name, Name) and w.name.labels == (k,)
                and v.name == Name(name.base, (Sym("k", -1),)) and len(w.indices) == 2
                and w.indices[0] == g.indices[0] and w.indices[1] == v.indices[0]):
            return layer, w.name, (g.indices[0], v.indices[0])
    return None


def paper_forms(layers: tuple[Name, Name, tuple[Index, Index]]) -> Definitions:
    """The paper's Eqs. 2–4 for layers v(k) = A(w(k) v(k−1)), as definitions (β, α, and η = α γ⁽ˡ⁾:
    the paper prints γ⁽ᵏ⁾ in Eq. 4, but ∂v(k)/∂z(l) = ∂v(k)/∂v(l) ∂v(l)/∂z(l) needs γ⁽ˡ⁾)."""
    v_k, w_k, (j, i) = layers
    base = v_k.base
    v_l, v_prev = Name(base, (Sym("l"),)), Name(base, (Sym("k", -1),))
    s = Index("s", j.dim)  # written as the paper writes it: the stored order of each product is kept
    jac = Quantity(Kind.JAC, (v_k, Name(base, (Sym("k"),), 1)))
    beta, alpha = Quantity(Kind.BETA, (v_k, v_prev)), Quantity(Kind.ALPHA, (v_k, v_l))
    gamma_l = Quantity(Kind.JAC, (v_l, Name(base, (Sym("l"),), 1)))
    eta = Quantity(Kind.JAC, (v_k, Name(base, (Sym("l"),), 1)))
    rows = (
        Defined(beta, (j, i), Prod((Ref(jac, (j, s)), Ref(w_k, (s, i))), (j, i)), cond="k = 1..n", paper_eq=2),
        Defined(alpha, (j, i), Prod((Ref(beta, (j, s)), Ref(Quantity(Kind.ALPHA, (v_prev, v_l)), (s, i))), (j, i)),
                cond="1 ≤ l < k ≤ n", paper_eq=3),
        Defined(alpha, (j, i), Delta(j, i), cond="k = l", paper_eq=3),
        Defined(alpha, (j, i), Const(sympy.Integer(0)), cond="k < l", paper_eq=3),
        Defined(eta, (j, i), Prod((Ref(alpha, (j, s)), Ref(gamma_l, (s, i))), (j, i)), cond="1 ≤ l ≤ k ≤ n",
                paper_eq=4),
    )
    return Definitions(rows)


def complete_eta(layers: tuple[Name, Name, tuple[Index, Index]]) -> list[Defined]:
    """The cases the η recurrence leaves to prose: η[v(k),z_v(l)] = γ[v(l)] at k = l, and 0 for k < l."""
    v_k, _, (j, _) = layers
    z_l = Name(v_k.base, (Sym("l"),), 1)
    eta = Quantity(Kind.JAC, (v_k, z_l))
    gamma_l = Quantity(Kind.JAC, (Name(v_k.base, (Sym("l"),)), z_l))
    a, b = Index("_" + j.name + "_eta", j.dim), Index("_" + j.name + "_eta2", j.dim)  # lettered as the recurrence
    return [Defined(eta, (a, b), Ref(gamma_l, (a, b)), cond="k = l"),
            Defined(eta, (a, b), Const(sympy.Integer(0)), cond="k < l")]


def general_def(g: GeneralDef, pre: bool = False, objective: bool = False, depth: str = "n") -> Defined:
    """A general definition with its pinned labels substituted and its condition."""
    pins = pinned(g.cond, g.symbols, depth)
    if all_pinned(pins, g.symbols):
        cond = ""
    elif pins:  # the pinned labels are in the name (H[h(T),z_h(τ)]): the condition is about the rest
        free = tuple(x for x in g.symbols if x not in pins)
        rest = pin_condition(g.cond, pins, depth)
        rng = range_text(rest, free[0], depth) if len(free) == 1 else None
        cond = f"{free[0]} = {rng}" if rng else describe(rest, Condition(()), free, None, depth)
    else:
        cond = g.text
    return Defined(pin_name(g.name, pins), g.indices, pin(g.expr, pins), pre=pre, objective=objective, cond=cond)


def pin_condition(cond: Condition, pins: dict[str, Label], depth: str) -> Condition:
    """``cond`` with pinned symbols replaced by their values: with t = T, ``t − τ ≥ 2`` is ``τ − T ≤ −2``."""
    def at(x):
        p = pins.get(x)
        return (x, 0) if p is None else ("0", p) if isinstance(p, int) else (depth, p.offset)

    out = []
    for x, y, lo, hi in cond.bounds:
        (a, oa), (b, ob) = at(x), at(y)
        if a == b:
            continue  # both pinned: a fact about the case, not a condition on the rest
        shift = oa - ob  # x − y = (a − b) + shift
        lo2 = None if lo is None else lo - shift
        hi2 = None if hi is None else hi - shift
        if a in pins or a in ("0", depth) and b not in ("0", depth):  # keep the free symbol first
            a, b, lo2, hi2 = b, a, (None if hi2 is None else -hi2), (None if lo2 is None else -lo2)
        out.append((a, b, lo2, hi2))
    return Condition(tuple(out))


def general_declarations(gf: GeneralForm) -> list[Declared]:
    """Declared tensors, a family per shape with its layer range: ``w(k) : h × h  for k = 2..n``."""
    net = gf.reference.network
    sym, depth = gf.labels.defs[0], gf.labels.depth
    out, seen = [], {}
    for t in net.tensors:
        if not t.name.ints:
            out.append(Declared(t.name, t.indices, shown_role(t), domain=t.domain or ""))
            continue
        base, lab = t.name.base, t.name.ints[0]
        key = (base, tuple(str(ix.dim) for ix in t.indices))
        if key not in seen:
            seen[key] = len(out)
            out.append([base, t.indices, shown_role(t), [lab]])
        else:
            out[seen[key]][3].append(lab)
    rows = []
    for item in out:
        if isinstance(item, Declared):
            rows.append(item)
            continue
        base, ixs, role, labs = item
        if len(labs) == 1 and labs[0] <= MAX_BOUND:
            rows.append(Declared(Name(base, (labs[0],)), ixs, role))
        elif len(labs) == 1 and labs[0] == REF_DEPTH:
            rows.append(Declared(Name(base, (Sym(depth),)), ixs, role))
        else:
            hi = REF_DEPTH - max(labs)
            rows.append(Declared(Name(base, (Sym(sym),)), ixs, role, (),
                                 f"{sym} = {min(labs)}..{depth}" + (f"{-hi:+d}" if hi else "")))
    return rows


def _case_rank(b: GeneralBlock) -> int:
    """The paper's order of Eq. 9's cases: r > k, r = k, r < k."""
    return 0 if ">" in b.text else 1 if "=" in b.text else 2


def block_families(gf: GeneralForm) -> list[list[GeneralBlock]]:
    """Blocks of one family pair together (the cases of Eq. 9), in first-appearance order."""
    groups: dict[tuple, list[GeneralBlock]] = {}
    for b in gf.blocks:
        groups.setdefault(b.bases, []).append(b)
    return [sorted(g, key=_case_rank) for g in groups.values()]


def term_items(terms: Sequence[GeneralTerm], out: tuple[Index, ...], pins, ordered: bool = True,
               labels: Labels = LAYERS) -> tuple[GeneralTermItem, ...]:
    """General terms with pins substituted, factored over ``out``, in display order (``ordered``)."""
    items = [GeneralTermItem(factored(pin(t.term, pins), out)[0],
                             None if t.over is None else tuple(pin_label(x, pins) for x in t.over),
                             step_ranges(t.steps, t.cond, labels) if t.steps else ())
             for t in terms]
    if not ordered:
        return tuple(items)
    order = term_order([it.term for it in items], axes_of(out))
    rank = {id(ft): k for k, ft in enumerate(order)}
    return tuple(sorted(items, key=lambda it: rank[id(it.term)]))


def params(gf: GeneralForm, b: GeneralBlock, pins) -> tuple[Ref, ...]:
    """The block's parameters, labels pinned, each with its slice of the block's axes."""
    ref = gf.reference.network
    out, pos = [], 0
    for w in b.wrt:
        n = len(ref.tensor(w.relabel(lambda _: 1)).indices)
        out.append(Ref(pin_name(w, pins), b.indices[pos:pos + n]))
        pos += n
    return tuple(out)


def case_group(gf: GeneralForm, cases: list[GeneralBlock]) -> CaseGroup | CaseSplit:
    """The cases of one family pair: shared terms and a case split where they decompose so."""
    split = split_common(cases) if len(cases) > 1 else None
    if split is None:
        out = []
        for b in cases:
            pins = pinned(b.cond, b.symbols, gf.labels.depth)
            paper = None if b.paper is None else term_items(b.paper, b.indices, pins, False, gf.labels)
            out.append(GeneralCase(params(gf, b, pins), b.indices, term_items(b.terms, b.indices, pins, True,
                                                                                gf.labels), paper,
                                   "" if all_pinned(pins, b.symbols) else b.text,
                                   tuple(t.term for t in b.terms)))
        return CaseGroup(tuple(out))
    common, own = split
    base = max(cases, key=lambda c: len(c.members))
    arms = tuple(CaseArm(c.text, c.indices, term_items(mine, c.indices, {}, True, gf.labels),
                         tuple(t.term for t in mine)) for c, mine in zip(cases, own))
    return CaseSplit(params(gf, base, {}), base.indices, term_items(common, base.indices, {}, True, gf.labels), arms,
                     tuple(t.term for c in cases for t in c.terms))
