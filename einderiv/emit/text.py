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
7. the structure summary (:func:`structure_table`).

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
                                 ObjectiveSection, SoftmaxDef, StructureSection, Title, document)
from ..analysis.general_document import (CaseGroup, CaseSplit, GeneralBlocks, GeneralCase, GeneralIntermediates,
                                         GeneralTermItem, GeneralTitle, TemplateNetwork, general_document)
from ..analysis.structure import BlockStructure, Form, How
from ..ir import Index, Ref, label_range
from .base import DocumentPrinter
from .text_expr import MINUS, TextPrinter, sup

BLOCK_TITLES = {1: "First derivatives", 2: "Second derivatives (Hessian blocks)"}
GENERAL_BLOCK_TITLES = {1: "First derivatives (Eqs. 5–6)", 2: "Second derivatives (Eqs. 7–9)"}
KIND_WORDS = {Form.ZERO: "zero", Form.VECTOR: "a vector", Form.OUTER: "one outer product",
              Form.NONE: "no outer-product structure"}


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
        return [f"einderiv: derivatives of {t.objective} for {t.path} (order {t.order})", ""]

    def _print_GeneralTitle(self, t: GeneralTitle) -> list[str]:
        return [f"einderiv: general form of the derivatives of {t.objective} for {t.path} "
                f"(order {t.order}, any depth {t.depth})",
                f"  read off the derivation at {t.depth} = {t.reference}; reproduced exactly at "
                f"{t.depth} = {', '.join(map(str, t.checked))}", ""]

    # -- network ------------------------------------------------------------------
    @staticmethod
    def dims(dims) -> str:
        """``  dims  T = 4, n = 3`` (a size left open is its name alone)."""
        return "  dims  " + ", ".join(f"{n} = {s}" if s is not None else n for n, s in dims)

    def _print_NetworkSection(self, s: NetworkSection) -> list[str]:
        return (["Network", self.dims(s.dims)] + ["  " + self._print(d) for d in s.declarations]
                + self._print(s.nodes) + [""])

    def _print_TemplateNetwork(self, s: TemplateNetwork) -> list[str]:
        return (["Network (layer template)", self.dims(s.dims), f"  depth {s.depth}"]
                + ["  " + self._print(d) for d in s.declarations] + self._print(s.nodes) + [""])

    def _print_Declared(self, d: Declared) -> str:
        p = self.statement(d.indices)
        shape = " × ".join(sympy.sstr(ix.dim) for ix in d.indices) or "scalar"
        return f"{d.role:<6} {p._print(Ref(d.name, d.indices))} : {shape}{self.range(d.labels, d.range)}"

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
        return ["Activation derivatives (SymPy)"] + ["  " + self._print(f) for f in s.forms] + [""]

    def _print_ClosedForm(self, f: ClosedForm) -> str:
        return TextPrinter().closed_form(f, " = ")

    def _print_IntermediatesSection(self, s: IntermediatesSection) -> list[str]:
        head = ("Shared intermediates (dependency order; δ[n] = ∂f/∂n, γ[v] = ∂v/∂z_v, η[a,s] = ∂a/∂s" + (
            "" if s.expanded else ", H[s,s'] = ∂²f/∂ε_s∂ε_s' for perturbations ε of nodes s, s'") + ")")
        return [head] + self._print(s.defs) + [""]

    def _print_GeneralIntermediates(self, s: GeneralIntermediates) -> list[str]:
        head = ("Shared intermediates for generic layers (δ[n] = ∂f/∂n; γ[v(k)] = ∂v(k)/∂z_v(k), Eq. 1; "
                "η[a,s] = ∂a/∂s, Eq. 4; η[v(l),z_v(l)] = γ[v(l)])")
        return [head] + self._print(s.defs) + [""]

    # -- blocks -------------------------------------------------------------------
    def _print_BlocksSection(self, s: BlocksSection) -> list[str]:
        lines = [BLOCK_TITLES.get(s.order, f"Order-{s.order} derivatives")]
        for b in s.blocks:
            lines.extend("  " + line for line in self._print(b))
        if s.transposes:
            lines.append(f"  The other {s.transposes} orderings of the parameters are transposes of these blocks "
                         "(mixed partial derivatives commute).")
        return lines + [""]

    def _print_FoldedTerm(self, t: FoldedTerm, printer: TextPrinter, out: Sequence[Index]) -> str:
        """``Σ_{t=1..4} δ[z_h(t)]_j ⊗ h(t-1)^i`` for a family of steps, else the term alone."""
        head = f"Σ_{{{t.symbol}={label_range(t.labels)}}} " if t.labels else ""
        return head + printer.term(t.term, out)

    def _print_BlockItem(self, b: BlockItem) -> list[str]:
        """``LHS = term``, or ``LHS =`` then a term per line; the Eq. 6 form below a gradient."""
        ix = b.block.indices
        p = self.statement(ix, [b.block.expr])
        body = [self._print(t, printer=p, out=ix) for t in b.terms(self.step_symbol(p, ix))] or ["0"]
        self.block_printers[b.block.wrt] = p
        lhs = self.lhs(p, b.params)
        if len(body) == 1:
            lines = [f"{lhs} = {body[0]}"]
        else:
            lines = [f"{lhs} ="]
            for k, s in enumerate(body):
                if k == 0:
                    lines.append(f"      {s}")
                elif s.startswith(MINUS):
                    lines.append(f"    {MINUS} {s[1:].lstrip()}")
                else:
                    lines.append(f"    + {s}")
        if b.paper is not None:
            pp = self.statement(ix, [b.paper])
            paper = [self._print(t, printer=pp, out=ix) for t in b.paper_terms(self.step_symbol(pp, ix))]
            lines.append(" " * len(lhs) + " = " + " + ".join(paper) + "   (Eq. 6 form)")
        return lines

    # -- a template's general blocks ----------------------------------------------
    def _print_GeneralBlocks(self, s: GeneralBlocks) -> list[str]:
        lines = [GENERAL_BLOCK_TITLES[s.order]]
        for g in s.groups:
            lines.extend("  " + line for line in self._print(g))
        return lines + [""]

    def _print_GeneralTermItem(self, t: GeneralTermItem, printer: TextPrinter, out: Sequence[Index]) -> str:
        """A term, or ``Σ_{m=lo..hi} (…)`` over layers."""
        body = printer.term(t.term, out)
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
        return ["Structure (per sample; storage in numbers)"] + ["  " + line for line in self.table(s.rows)]

    def table(self, rows: Sequence[BlockStructure]) -> list[str]:
        """One line per block: parameters, K, what it is (and why), factored and dense storage."""
        head = ("block", "K", "structure", "factored", "dense")
        body = []
        for r in rows:
            why = self.reason(r)
            body.append((",".join(map(str, r.wrt)), str(r.terms), kind_words(r) + (f" ({why})" if why else ""),
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
        if r.kind is Form.MATRIX:
            return "each parameter is a vector: nothing to split"
        if r.kind is Form.SUM and r.steps:
            if len(r.wrt) == 1 and len(r.steps) == 1:
                return f"one per step t = {label_range(r.steps[0])}: a weight shared over the steps"
            return f"{len(r.steps)} families of terms over the steps"
        if r.coupling is None:
            return ""
        c, p = r.coupling, self.coupling_printer(r)
        letters = [p.names[ix] for ix in c.indices]
        names = " and ".join(dict.fromkeys(p.short(f) for f in c.factors))
        if c.how is How.POSITION:
            t, a = letters
            head = " and ".join(dict.fromkeys(p.short(f) for f in c.factors[:-1]))
            stride = str(c.stride) if c.stride != 1 else ""
            x = f"{p.short(c.factors[-1])}^{{{stride}{t}+{a}}}"
            return f"summed position {t} couples {head} and {x}: a correlation over positions"
        if c.how is How.SUMMED:
            return f"summed index {letters[0]} couples {names}"
        if c.how is How.DIAGONAL:
            return f"a diagonal: δ ties {letters[0]} and {letters[1]}"
        if c.how is How.ELEMENTWISE:
            return f"elementwise product over {letters[0]} ties {names}"
        return f"{names} carries axes {', '.join(letters)} together"


def reason(r: BlockStructure) -> str:
    """Why a block is what it is, as ``einderiv structure`` words it ('' when it goes without saying)."""
    return TextDocumentPrinter().reason(r)


def kind_words(r: BlockStructure) -> str:
    """What a block is: 'one outer product', 'sum of 3 outer products', 'a vector', …"""
    if r.kind is Form.MATRIX:
        return "a matrix" if len(r.wrt) == 2 else f"an order-{len(r.wrt)} tensor"
    if r.kind is Form.SUM:
        return f"sum of {r.terms} outer products"
    return KIND_WORDS[r.kind]
