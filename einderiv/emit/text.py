"""Plain-text (Unicode) documents: what ``einderiv derive`` and ``einderiv structure`` print.

:func:`render` prints the document of a derivation
(:func:`einderiv.analysis.document.document`), one line per definition or term:

1. the network — declarations and definitions, pre-activations named
   (``z_v1^j = W1^j_i x^i``, ``v1^j = relu(z_v1^j)``);
2. the objective's closed-form derivatives (``∂f/∂p_l = s^l − y^l``);
3. the activations' derivatives A′, A″ as SymPy gives them;
4. the shared intermediates in dependency order, each defined once;
5. the gradients, factored with ``⊗`` between outer-product factors, and the
   paper's Eq. 6 form ``(∂f/∂p_l W3^l_m η[v2,z_v1]^m_j) ⊗ x^i``;
6. every higher block as a sum of factored terms;
7. the outer-product forms that differ from the blocks as shown (terms sharing outer
   factors merged, sums over shared indices pulled out: what K counts);
8. the structure summary (:func:`structure_table`).

:func:`render_general` prints a layer template's general form
(:mod:`einderiv.analysis.general_document`): the same sections for generic
layers k, r, with each case's condition and Eq. 9's case split.

:class:`TextDocumentPrinter` has one ``_print_<Class>`` method per section and
item of the document model; expressions are written by
:class:`~einderiv.emit.text_expr.TextPrinter`.  The output depends only on the
derivation: same input, same bytes.
"""
from __future__ import annotations

from typing import Sequence

import sympy

from ..analysis.document import (BlockItem, BlocksSection, ClosedForm, Declared, Defined, Definitions, Document,
                                 FoldedTerm, FunctionsSection, IntermediatesSection, NetworkSection,
                                 ObjectiveSection, OuterFormsSection, OuterItem, SoftmaxDef, StructureSection,
                                 Title, document)
from ..analysis.general_document import (CaseGroup, CaseSplit, GeneralBlocks, GeneralCase, GeneralIntermediates,
                                         GeneralTermItem, GeneralTitle, TemplateNetwork, general_document)
from ..analysis.structure import BlockStructure, Form, How
from ..ir import Index, Ref, label_range
from .base import DocumentPrinter, shown
from .text_expr import MINUS, TextPrinter, sup

BLOCK_TITLES = {1: "First derivatives", 2: "Second derivatives (Hessian blocks)"}
GENERAL_BLOCK_TITLES = {1: "First derivatives (Eqs. 5–6)", 2: "Second derivatives (Eqs. 7–9)"}
KIND_WORDS = {Form.ZERO: "zero", Form.SCALAR: "a number", Form.VECTOR: "a vector", Form.OUTER: "one outer product",
              Form.CORRELATION: "a correlation over positions", Form.NONE: "no outer-product structure"}


def render(derivation, sizes=None) -> str:
    """The whole derivation as text (see the module docstring for the sections)."""
    return TextDocumentPrinter().doprint(document(derivation, sizes))


def render_general(gf) -> str:
    """A layer template's general form (:class:`~einderiv.analysis.template.GeneralForm`) as text."""
    return TextDocumentPrinter().doprint(general_document(gf))


def structure_table(rows: Sequence[BlockStructure]) -> str:
    """The structure rows (:func:`~einderiv.analysis.structure.summarize`) as a plain-text table."""
    return "\n".join(TextDocumentPrinter().table(rows))


class TextDocumentPrinter(DocumentPrinter):
    """Prints a document model as text: each ``_print_<Section>`` returns the section's lines."""

    printmethod = "_einderiv_text_document"
    expr_printer = TextPrinter

    def lhs(self, p: TextPrinter, params: Sequence[Ref]) -> str:
        """``∂²f/∂W1^j_i∂W2^s_t``."""
        k = len(params)
        return f"∂{sup(k) if k > 1 else ''}{p.ctx.objective}/" + "".join("∂" + p._print(r) for r in params)

    # -- documents --------------------------------------------------------------
    def _print_Document(self, doc: Document) -> str:
        return "\n".join(line for s in doc.sections for line in self._print(s)) + "\n"

    _print_GeneralDocument = _print_Document

    def _print_Title(self, t: Title) -> list[str]:
        head = f"einderiv: derivatives of {t.objective} for {shown(t.path)} (order {t.order})"
        return [head] + ([f"  {shown(t.heading)}"] if t.heading else []) + [""]

    def _print_GeneralTitle(self, t: GeneralTitle) -> list[str]:
        least = f" ≥ {min(t.checked)}" if t.checked and min(t.checked) > 1 else ""
        return ([f"einderiv: general form of the derivatives of {t.objective} for {shown(t.path)} "
                 f"(order {t.order}, any {t.what} {t.depth}{least})"] + ([f"  {shown(t.heading)}"] if t.heading else [])
                + [f"  read off the derivation at {t.depth} = {t.reference}; reproduced exactly at "
                   f"{t.depth} = {', '.join(map(str, t.checked))}", ""])

    # -- network ------------------------------------------------------------------
    @staticmethod
    def dims(dims) -> str:
        """``  dims  T = 4, n = 3`` (a size left open is its name alone)."""
        return "  dims  " + ", ".join(f"{n} = {s}" if s is not None else n for n, s in dims)

    def _print_NetworkSection(self, s: NetworkSection) -> list[str]:
        return (["Network", self.dims(s.dims)] + ["  " + self._print(d) for d in s.declarations]
                + ([f"  padded {', '.join(s.padded)}   (read as 0 outside their axes)"] if s.padded else [])
                + self._print(s.nodes) + [""])

    def _print_TemplateNetwork(self, s: TemplateNetwork) -> list[str]:
        head = f"Network (a recurrence over {s.steps} = 1..{s.depth})" if s.steps else "Network (layer template)"
        return ([head, self.dims(s.dims), f"  depth {s.depth}"]
                + ["  " + self._print(d) for d in s.declarations] + self._print(s.nodes) + [""])

    def _print_Declared(self, d: Declared) -> str:
        p = self.statement(d.indices)
        shape = " × ".join(sympy.sstr(ix.dim) for ix in d.indices) or "scalar"
        domain = f" {d.domain}" if d.domain else ""
        return f"{d.role:<6} {p._print(Ref(d.name, d.indices))} : {shape}{domain}{self.range(d.labels, d.range)}"

    @staticmethod
    def range(labels: Sequence[int], cond: str = "") -> str:
        """``   for t = 1..4`` after a folded family, ``   for k < n`` after a template's case."""
        if not cond and len(labels) > 1:
            cond = f"t = {label_range(labels)}"
        return f"   for {cond}" if cond else ""

    def _print_Definitions(self, defs: Definitions) -> list[str]:
        return ["  " + self._print(d, as_written=defs.as_written) for d in defs]

    def _print_Defined(self, d: Defined, as_written: bool = False) -> str:
        p = self.statement(d.indices, [d.expr], walk=not as_written)
        p.name_nodes = not as_written
        note = "   (pre-activation)" if d.pre else ("   (objective)" if d.objective else "")
        if d.paper_eq is not None:
            note = f"   (the paper's Eq. {d.paper_eq})"
        return f"{p._print(Ref(d.name, d.indices))} = {p._print(d.expr)}{self.range(d.labels, d.cond)}{note}"

    # -- objective and functions ------------------------------------------------
    def _print_ObjectiveSection(self, s: ObjectiveSection) -> list[str]:
        head = (f"Objective derivatives (∂{self.doc.context.objective}/∂{', '.join(map(str, s.args))} "
                "left named, as in the paper)")
        return [head] + ["  " + self._print(x) for x in s.softmaxes] + self._print(s.defs) + [""]

    def _print_SoftmaxDef(self, s: SoftmaxDef) -> str:
        p = self.statement(s.arg.indices)
        return f"{p._print(s.expr)} = softmax_{p._print(s.expr.over)}({p._print(s.arg)})"

    def _print_FunctionsSection(self, s: FunctionsSection) -> list[str]:
        words = {"sigma": "σ(z) = 1/(1 + exp(−z))", "theta": "θ the unit step"}
        legend = "".join(f"; {words[k]}" for k in s.symbols)
        return [f"Activation derivatives (SymPy{legend})"] + ["  " + self._print(f) for f in s.forms] + [""]

    def _print_ClosedForm(self, f: ClosedForm) -> str:
        return TextPrinter().closed_form(f, " = ")

    def _print_IntermediatesSection(self, s: IntermediatesSection) -> list[str]:
        head = ("Shared intermediates (dependency order; ∂f/∂n the back-propagated adjoint, γ[v] = ∂v/∂z_v, "
                "η[a,s] = ∂a/∂s" + (
            "" if s.expanded else ", H[m,n] = ∂²f/∂εₘ∂εₙ for perturbations ε of two nodes m, n") + ")")
        return [head] + self._print(s.defs) + [""]

    def _print_GeneralIntermediates(self, s: GeneralIntermediates) -> list[str]:
        if s.steps:
            head = ("Shared intermediates for generic steps (∂f/∂n the adjoint, back-propagated through time; "
                    "γ[v(t)] = ∂v(t)/∂z_v(t); η[a,s] = ∂a/∂s; each recurrence with its base cases)")
        else:
            head = ("Shared intermediates for generic layers (∂f/∂n the back-propagated adjoint; "
                    "γ[v(k)] = ∂v(k)/∂z_v(k), Eq. 1; η[a,s] = ∂a/∂s, Eq. 4)")
        lines = [head] + self._print(s.defs) + [""]
        if s.paper is not None:
            lines += (["The paper's Eqs. 2–4 for these layers (β[v(k)] = ∂v(k)/∂v(k-1), α[v(k),v(l)] = "
                       "∂v(k)/∂v(l)); the paper prints Eq. 4 with γ[v(k)], where ∂v(k)/∂z_v(l) needs γ[v(l)]"]
                      + self._print(s.paper) + [""])
        return lines

    # -- blocks -------------------------------------------------------------------
    def _print_BlocksSection(self, s: BlocksSection) -> list[str]:
        lines = [BLOCK_TITLES.get(s.order, f"Order-{s.order} derivatives")]
        for b in s.blocks:
            lines.extend("  " + line for line in self._print(b))
        return lines + [""]

    def _print_FoldedTerm(self, t: FoldedTerm, printer: TextPrinter, out: Sequence[Index]) -> str:
        """``Σ_{t=1..4} δ[z_h(t)]_j ⊗ h(t-1)^i`` for a family of steps, else the term alone."""
        head = f"Σ_{{{t.symbol}={label_range(t.labels)}}} " if t.labels else ""
        return head + printer.term(t.term, out)

    @staticmethod
    def sum_lines(lhs: str, body: Sequence[str], tail: str = "") -> list[str]:
        """``LHS = term``, or ``LHS =`` then a term per line (``tail`` after the last)."""
        if len(body) == 1:
            return [f"{lhs} = {body[0]}{tail}"]
        lines = [f"{lhs} ="]
        for k, s in enumerate(body):
            end = tail if k == len(body) - 1 else ""
            if k == 0:
                lines.append(f"      {s}{end}")
            elif s.startswith(MINUS):
                lines.append(f"    {MINUS} {s[1:].lstrip()}{end}")
            else:
                lines.append(f"    + {s}{end}")
        return lines

    def _print_BlockItem(self, b: BlockItem) -> list[str]:
        """``LHS = term``, or ``LHS =`` then a term per line; the Eq. 6 form below a gradient."""
        ix = b.block.indices
        p = self.statement(ix, [b.block.expr])
        body = [self._print(t, printer=p, out=ix) for t in b.terms(self.step_symbol(p, ix))] or ["0"]
        self.block_printers[b.block.wrt] = p
        lhs = self.lhs(p, b.params)
        lines = self.sum_lines(lhs, body)
        if b.paper is not None:
            pp = self.statement(ix, [b.paper])
            paper = [self._print(t, printer=pp, out=ix) for t in b.paper_terms(self.step_symbol(pp, ix))]
            lines.append(" " * len(lhs) + " = " + " + ".join(paper) + "   (Eq. 6 form)")
        if b.same:
            k = len(b.block.wrt)
            others = ", ".join(f"∂{sup(k)}{p.ctx.objective}/" + "".join(f"∂{w}" for w in wrt) for wrt in b.same)
            lines.append(f"    ({others}: the same block, its axes permuted)")
        return lines

    # -- outer-product forms --------------------------------------------------------
    def _print_OuterFormsSection(self, s: OuterFormsSection) -> list[str]:
        lines = ["Outer-product forms (the blocks above with terms that share outer factors merged, sums over "
                 "a shared index written outside ⊗: K counts these outer products)"]
        for o in s.items:
            lines.extend("  " + line for line in self._print(o))
        return lines + [""]

    def _print_OuterItem(self, o: OuterItem) -> list[str]:
        """``LHS = term`` (a term per line) and the count K."""
        r = o.row
        ix = r.block.indices
        p = self.statement(ix, [t.expr(ix) for t in r.outer.terms])
        body = [self._print(t, printer=p, out=ix) for t in o.terms(self.step_symbol(p, ix))]
        self.outer_printers[r.wrt] = p
        return self.sum_lines(self.lhs(p, o.params), body, f"   (K = {r.terms})")

    # -- a template's general blocks ----------------------------------------------
    def _print_GeneralBlocks(self, s: GeneralBlocks) -> list[str]:
        lines = [GENERAL_BLOCK_TITLES[s.order]]
        for g in s.groups:
            lines.extend("  " + line for line in self._print(g))
        return lines + [""]

    def _print_GeneralTermItem(self, t: GeneralTermItem, printer: TextPrinter, out: Sequence[Index]) -> str:
        """A term, ``Σ_{m=lo..hi} (…)`` over layers, or ``Σ_{t=2..T} Σ_{τ=2..t-1} (…)`` over steps."""
        body = printer.term(t.term, out)
        if t.steps:
            head = " ".join(f"Σ_{{{r.symbol}={bound(r.lows, 'max')}..{bound(r.highs, 'min')}}}" for r in t.steps)
            return f"{head} " + (f"({body})" if " + " in body else body)
        if t.over is None:
            return body
        lo, hi = map(str, t.over)
        return f"Σ_{{m={lo}..{hi}}} " + (f"({body})" if " + " in body else body)

    def _print_CaseGroup(self, g: CaseGroup) -> list[str]:
        return [line for c in g.cases for line in self._print(c)]

    def _print_GeneralCase(self, c: GeneralCase) -> list[str]:
        p = self.statement(c.indices, c.exprs, walk=True)
        lhs = self.lhs(p, c.params)
        body = [self._print(t, printer=p, out=c.indices) for t in c.terms] or ["0"]
        tail = f"   (for {c.cond})" if c.cond else ""
        if len(body) == 1:
            lines = [f"{lhs} = {body[0]}{tail}"]
        else:
            lines = [f"{lhs} ={tail}"] + [("      " if k == 0 else "    + ") + s for k, s in enumerate(body)]
        if c.paper is not None:
            paper = [self._print(t, printer=p, out=c.indices) for t in c.paper]
            lines.append(" " * len(lhs) + " = " + " + ".join(paper) + "   (Eq. 6 form)")
        return lines

    def _print_CaseSplit(self, c: CaseSplit) -> list[str]:
        """The shared terms, then ``{ r > k : … }`` one arm per line."""
        p = self.statement(c.indices, c.exprs, walk=True)
        lines = [f"{self.lhs(p, c.params)} ="]
        body = [self._print(t, printer=p, out=c.indices) for t in c.common]
        lines.extend(("      " if k == 0 else "    + ") + s for k, s in enumerate(body))
        width = max(len(a.cond) for a in c.arms)
        lines.append(("    + " if body else "      ") + "{")
        for a in c.arms:
            pa = self.statement(a.indices, a.exprs, walk=True)
            terms = [self._print(t, printer=pa, out=a.indices) for t in a.terms] or ["0"]
            head = f"        {a.cond:<{width}} :  "
            lines.append(head + terms[0])
            lines.extend(" " * (len(head) - 4) + "  + " + s for s in terms[1:])
        lines.append("      }")
        return lines

    # -- structure ----------------------------------------------------------------
    def _print_StructureSection(self, s: StructureSection) -> list[str]:
        return (["Structure (per sample: K outer products; storage in numbers, factored against dense, "
                 "\"no saving\" where it is not smaller)"] + ["  " + line for line in self.table(s.rows)])

    def table(self, rows: Sequence[BlockStructure]) -> list[str]:
        """One line per block: parameters, K, what it is (and why), factored and dense storage."""
        head = ("block", "K", "structure", "factored", "dense")
        body = []
        for r in rows:
            why = self.reason(r)
            body.append((",".join(map(str, r.wrt)), k_text(r), kind_words(r) + (f" ({why})" if why else ""),
                          sympy.sstr(r.factored, order="lex"), sympy.sstr(r.dense, order="lex")))
        widths = [max(len(row[k]) for row in [head] + body) for k in range(len(head))]
        lines = []
        for n, row in enumerate([head] + body):
            cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                     row[3].rjust(widths[3]), row[4].rjust(widths[4])]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return lines

    def reason(self, r: BlockStructure) -> str:
        """Why a block is what it is, in words ('' when it goes without saying)."""
        why = self.why(r)
        if r.kind in (Form.OUTER, Form.SUM, Form.SHARED, Form.CORRELATION, Form.MIXED) and not r.saves:
            why += ("; " if why else "") + "no saving"
        return why

    def why(self, r: BlockStructure) -> str:
        if r.kind is Form.SUM and r.steps:
            if len(r.wrt) == 1 and len(r.steps) == 1:
                return f"one per step t = {label_range(r.steps[0])}: a weight shared over the steps"
            return f"one per step t = {label_range(r.steps[0])}"
        if r.kind is Form.MIXED:
            return "each over its own split of the axes"
        if r.coupling is None:
            return ""
        c = r.coupling
        if c.how is How.TERMS:
            return "each term splits the axes, but no split is common to the terms"
        p = self.coupling_printer(r)
        letters = [p.names[ix] for ix in c.indices]
        names = " and ".join(dict.fromkeys(p.short(f) for f in c.factors))
        if c.how is How.POSITION:
            pos = [p.names[w.t] for w in c.windows]
            head = " and ".join(dict.fromkeys(p.short(f) for f in c.factors[:-1]))
            arith = ",".join(w.written(p.names[w.t], p.names[w.a] if w.a is not None else None) for w in c.windows)
            return f"Σ_{''.join(pos)} {head} ⊗ {p.short(c.factors[-1])}^{{{arith}}}: {r.terms} outer products"
        if c.how is How.SUMMED:
            shared = f": a weight shared over {letters[0]}" if len(r.wrt) == 1 else ""
            return f"over {letters[0]}, read by {names}{shared}"
        if c.how is How.DIAGONAL:
            return f"a diagonal: δ ties {letters[0]} and {letters[1]}"
        if c.how is How.ELEMENTWISE:
            return f"elementwise product over {letters[0]} ties {names}"
        return f"{names} carries axes {', '.join(letters)} together"


def bound(terms, many: str, symbol=str) -> str:
    """A bound of a sum over steps: ``2``, ``t-1``, ``T``, or ``max(t+1,τ)`` (``symbol`` writes a step)."""
    parts = [str(c) if y == "0" else symbol(y) + (f"{c:+d}" if c else "") for y, c in terms]
    return parts[0] if len(parts) == 1 else f"{many}(" + ",".join(parts) + ")"


def reason(r: BlockStructure) -> str:
    """Why a block is what it is, as ``einderiv structure`` words it ('' when it goes without saying)."""
    return TextDocumentPrinter().reason(r)


def k_text(r: BlockStructure) -> str:
    """The K column: the number of outer products, '-' where there is no outer-product structure."""
    return "-" if r.kind is Form.NONE else str(r.terms)


def kind_words(r: BlockStructure) -> str:
    """What a block is: 'one outer product', 'sum of 3 outer products', 'a vector', …"""
    if r.kind in (Form.SUM, Form.SHARED, Form.MIXED):
        return f"sum of {r.terms} outer products"
    return KIND_WORDS[r.kind]
