"""LaTeX documents: a standalone article in the paper's notation (``einderiv latex``).

:func:`render` prints the document of a derivation
(:func:`einderiv.analysis.document.document`) as an ``article`` (amsmath,
amssymb, geometry) with the sections of the text output: a Table-1-like
nomenclature (each input or label called a vector, matrix or tensor by its
number of indices), the objective's and the activations' derivatives, the
shared intermediates, one ``align*`` per derivative block with one term per
line, and the structure table.  An unrolled recurrence is written once per
family: the recurrence with its range
(``\\frac{\\partial f}{\\partial h^{(t)}_{j}} = \\dots \\quad t = 1,\\dots,T-1``), then
its base case at ``h^{(T)}``; a shared weight's gradient is ``\\sum_{t=1}^{T}``
of one outer product.  :func:`render_general` prints a layer template's general
form (:mod:`einderiv.analysis.general_document`) with Eq. 9's case split as
``\\begin{cases}``.

:class:`LatexDocumentPrinter` has one ``_print_<Class>`` method per section and
item of the document model; expressions are typeset by
:class:`~einderiv.emit.latex_expr.LatexIndexPrinter`.  The output is ASCII
only and depends only on the derivation.
"""
from __future__ import annotations

from typing import Sequence

import sympy

from ..analysis.document import (BlockItem, BlocksSection, ClosedForm, Declared, Defined, Definitions, Document,
                                 FoldedTerm, FunctionsSection, IntermediatesSection, NetworkSection,
                                 ObjectiveSection, SoftmaxDef, StructureSection, Title, document)
from ..analysis.general_document import (CaseGroup, CaseSplit, GeneralBlocks, GeneralCase, GeneralIntermediates,
                                         GeneralTermItem, GeneralTitle, TemplateNetwork,
                                         general_document)
from ..analysis.structure import BlockStructure, How
from ..ir import Name, Ref
from .base import DocumentPrinter
from .latex_expr import LatexIndexPrinter, ScalarLatexPrinter, escape, range_tex, sum_tex, tex_index, tex_tensor
from .text import kind_words

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage{amsmath}
\usepackage{amssymb}
\usepackage[margin=2cm]{geometry}
\allowdisplaybreaks
"""

#: a term with more outer-product factors than this is broken across lines at \otimes
WRAP_FACTORS = 4
BLOCK_TITLES = {1: "First derivatives", 2: "Second derivatives"}
GENERAL_BLOCK_TITLES = {1: "Gradients (Eqs.~5--6)", 2: "Hessian blocks (Eqs.~7--9)"}
TABLE_HEAD = "\\begin{center}\n\\begin{tabular}{ll}\n\\hline\nQuantity & Description \\\\\n\\hline\n"
TABLE_FOOT = "\\hline\n\\end{tabular}\n\\end{center}\n"


def render(derivation, sizes=None) -> str:
    """The whole derivation as a standalone LaTeX document."""
    return LatexDocumentPrinter().doprint(document(derivation, sizes))


def render_general(gf) -> str:
    """A layer template's general form (:class:`~einderiv.analysis.template.GeneralForm`) as LaTeX."""
    return LatexDocumentPrinter().doprint(general_document(gf))


def align(rows: Sequence[str]) -> str:
    """An ``align*`` environment, a row per line."""
    return "\\begin{align*}\n  " + " \\\\\n  ".join(rows) + "\n\\end{align*}\n"


def tex_cond(text: str) -> str:
    """A condition (``1 ≤ l < k ≤ n``, ``k = 1..n``) in LaTeX."""
    return text.replace("≥", r"\geq").replace("≤", r"\leq").replace("..", r",\dots,")


class LatexDocumentPrinter(DocumentPrinter):
    """Prints a document model as LaTeX: each ``_print_<Section>`` returns the section's source."""

    printmethod = "_einderiv_latex_document"
    expr_printer = LatexIndexPrinter

    def lhs(self, p: LatexIndexPrinter, params: Sequence[Ref]) -> str:
        """``\\frac{\\partial^{2} f}{\\partial W^{(1),j}_{i}\\, \\partial W^{(2),s}_{t}}``."""
        k = len(params)
        num = r"\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + p.f
        return r"\frac{" + num + "}{" + r"\, ".join(r"\partial " + p._print(r) for r in params) + "}"

    # -- documents --------------------------------------------------------------
    def _print_Document(self, doc: Document) -> str:
        return PREAMBLE + "".join(self._print(s) for s in doc.sections) + r"\end{document}" + "\n"

    _print_GeneralDocument = _print_Document

    def _print_Title(self, t: Title) -> str:
        f = self.statement(()).f
        return (r"\title{Derivatives of \texttt{" + escape(t.path) + r"}}" + "\n"
                + r"\date{}" + "\n" + r"\begin{document}" + "\n" + r"\maketitle" + "\n"
                + r"\noindent Index notation with the summation convention: an index repeated in a product is "
                r"summed unless it is free on the left-hand side (then the product is elementwise). "
                r"$\delta^{j}_{s}$ is the Kronecker delta, $\otimes$ separates the outer-product factors of a "
                r"term, $\gamma$ and $\eta$ are the Jacobians of the paper's Eqs.~1 and~4, and "
                r"$\partial " + f + r"/\partial z$ is the back-propagated adjoint." + "\n\n")

    def _print_GeneralTitle(self, t: GeneralTitle) -> str:
        return (r"\title{General form of the derivatives of \texttt{" + escape(t.path) + r"} for any depth $"
                + t.depth + "$}\n" + r"\date{}" + "\n" + r"\begin{document}" + "\n" + r"\maketitle" + "\n"
                + r"\noindent Index notation with the summation convention; bracketed layer labels are summed "
                r"only where a $\sum$ says so. The formulas were read off the derivation at $" + t.depth
                + f" = {t.reference}$" r" and reproduce the derivation exactly at $" + t.depth + " = "
                + ", ".join(map(str, t.checked))
                + r"$. $\gamma$ and $\eta$ are the Jacobians of the paper's Eqs.~1 and~4, with "
                r"$\eta^{(v^{(l)},z_{v}^{(l)})} = \gamma^{(l)}$; $\partial f/\partial z$ is the back-propagated "
                "adjoint.\n\n")

    # -- network: a table of quantities ---------------------------------------------
    def steps(self, labels: Sequence[int], base_of=None) -> str:
        """``, $t = 1,\\dots,T$`` after a family's description, ``, base case`` after a base case."""
        if base_of is not None:
            return ", base case"
        return f", ${range_tex('t', labels, self.doc.horizon)}$" if labels else ""

    def _print_NetworkSection(self, s: NetworkSection) -> str:
        rows = [self._print(d, sizes=dict(s.dims)) for d in s.declarations]
        for d in s.written.recurrences_first():
            what = (r"Output of \texttt{" + escape(str(d.name)) + "}" + self.steps(d.labels, d.base_of)
                    if not d.objective else "Scalar objective function value for a single sample")
            rows.append(self.network_row(d, what))
        rows += [self.network_row(d, r"Argument of the activation of \texttt{" + escape(str(d.origin))
                                  + "} (named)" + self.steps(d.labels, d.base_of))
                 for d in s.nodes.pre().recurrences_first()]
        return r"\section*{Network}" + "\n" + TABLE_HEAD + "".join(rows) + TABLE_FOOT + "\n"

    def _print_Declared(self, d: Declared, sizes: dict) -> str:
        """``$x^{(t),k}$ & Input vector for a single sample ($n = 3$), $t = 1,\\dots,T$``."""
        p = self.statement(d.indices)
        kind = {0: "scalar", 1: "vector", 2: "matrix"}.get(len(d.indices), "tensor")
        what = (f"{d.role.capitalize()} {kind} for a single sample" if d.role in ("input", "label")
                else "Weights" if d.role == "weight" else escape(d.role))
        parts = []
        for ix in d.indices:
            dim = sympy.sympify(ix.dim)
            size = sizes.get(str(dim))
            parts.append(ScalarLatexPrinter().doprint(dim) + (f" = {size}" if size is not None else ""))
        shape = r" \times ".join(parts)
        desc = f"{what} (${shape}$){self.steps(d.labels)}" if d.indices else what
        return f"${p._print(Ref(d.name, d.indices))}$ & {desc} \\\\\n"

    def network_row(self, d: Defined, desc: str) -> str:
        """A definition as written, and what it is."""
        p = self.statement(d.indices, [d.expr])
        p.name_nodes = False
        return f"${p._print(Ref(d.name, d.indices))} = {p._print(d.expr)}$ & {desc} \\\\\n"

    def _print_TemplateNetwork(self, s: TemplateNetwork) -> str:
        what = {"input": "Input vector for a single sample", "label": "Labels for a single sample",
                "weight": "Weights"}
        rows = [f"${s.depth}$ & Number of hidden layers \\\\\n"]
        for d in s.declarations:
            p = self.statement(d.indices)
            shape = r" \times ".join(ScalarLatexPrinter().doprint(sympy.sympify(ix.dim)) for ix in d.indices)
            rows.append(f"${p._print(Ref(d.name, d.indices))}$ & {what.get(d.role, escape(d.role))} (${shape}$)"
                        + (f", ${tex_cond(d.range)}$" if d.range else "") + " \\\\\n")
        for d in s.nodes:
            p = self.statement(d.indices, [d.expr], walk=True)
            rows.append(f"${p._print(Ref(d.name, d.indices))} = {p._print(d.expr)}$ & "
                        + (f"${tex_cond(d.cond)}$" if d.cond else "") + " \\\\\n")
        return r"\section*{Network (layer template)}" + "\n" + TABLE_HEAD + "".join(rows) + TABLE_FOOT + "\n"

    # -- definitions ----------------------------------------------------------------
    def _print_Defined(self, d: Defined, as_written: bool = False) -> str:
        """``lhs &= rhs && t = 1,\\dots,T-1`` (a family), ``&& \\text{(base case)}``, ``&& k < n`` (a case)."""
        d = d.at_horizon(self.doc.horizon)
        p = self.statement(d.indices, [d.expr], walk=not as_written)
        p.name_nodes = not as_written
        row = p._print(Ref(d.name, d.indices)) + " &= " + p._print(d.expr)
        if d.cond:
            row += r" && " + tex_cond(d.cond)
        elif d.labels:
            row += r" && " + range_tex("t", d.labels, self.doc.horizon)
        elif d.base_of is not None:
            row += r" && \text{(base case)}"
        return row

    def _print_Definitions(self, defs: Definitions) -> list[str]:
        """Rows of an ``align*``, each base case after its recurrence."""
        return [self._print(d, as_written=defs.as_written) for d in defs.recurrences_first()]

    def _print_ObjectiveSection(self, s: ObjectiveSection) -> str:
        rows = [self._print(x) for x in s.softmaxes] + self._print(s.defs)
        return r"\section*{Objective}" + "\n" + (align(rows) if rows else "")

    def _print_SoftmaxDef(self, s: SoftmaxDef) -> str:
        p = self.statement(s.arg.indices, [s.expr])
        return (p._print(s.expr) + r" &= \operatorname{softmax}_{" + p._print(s.expr.over)
                + r"}\!\left(" + p._print(s.arg) + r"\right)")

    def _print_FunctionsSection(self, s: FunctionsSection) -> str:
        return r"\section*{Activation derivatives}" + "\n" + align([self._print(f) for f in s.forms])

    def _print_ClosedForm(self, f: ClosedForm) -> str:
        return LatexIndexPrinter().closed_form(f, " &= ")

    def _print_IntermediatesSection(self, s: IntermediatesSection) -> str:
        return (r"\section*{Shared intermediates}" + "\n" r"Each is defined once, in dependency order." + (
            "" if s.expanded else
            r" $\mathcal{H}^{(s,s')} = \partial^2 f/\partial\varepsilon_s\,\partial\varepsilon_{s'}$ is the"
            r" second derivative of $f$ with respect to perturbations $\varepsilon$ added to nodes $s$"
            r" and $s'$ (second-order adjoint).") + (
            r" A recurrence over $t$ is written once, with its range, and followed by its base case."
            if s.recurrent else "") + "\n" + align(self._print(s.defs)))

    def _print_GeneralIntermediates(self, s: GeneralIntermediates) -> str:
        return r"\section*{Intermediates (Eqs.~1--4), for generic layers}" + "\n" + align(self._print(s.defs))

    # -- blocks -------------------------------------------------------------------
    def _print_BlocksSection(self, s: BlocksSection) -> str:
        title = BLOCK_TITLES.get(s.order, f"Derivatives of order {s.order}")
        note = (f"The other {s.transposes} orderings of the parameters are transposes of these blocks "
                "(mixed partial derivatives commute).\n") if s.transposes else ""
        return r"\section*{" + title + "}\n" + "".join(self._print(b) for b in s.blocks) + note

    def _print_BlockItem(self, b: BlockItem) -> str:
        """One ``align*``: a term per line, the Eq. 6 form below a gradient."""
        ix = b.block.indices
        p = self.statement(ix, [b.block.expr])
        lhs = self.lhs(p, b.params)
        lines = self.term_lines(p, b.terms(self.step_symbol(p, ix)), ix)
        self.block_printers[b.block.wrt] = p
        if b.paper is not None:
            pp = self.statement(ix, [b.paper])
            plines = self.term_lines(pp, b.paper_terms(self.step_symbol(pp, ix)), ix)
            lines.append(r"&= " + plines[0][len("&= "):])
            lines.extend(plines[1:])
        return "\\begin{align*}\n" + lhs + "\n  " + " \\\\\n  ".join(lines) + "\n\\end{align*}\n"

    def sum_prefix(self, t: FoldedTerm) -> str:
        """``\\sum_{t=1}^{T} `` before a family of terms ('' for a term that stands alone)."""
        return sum_tex(t.symbol, t.labels, self.doc.horizon) + " " if t.labels else ""

    def term_lines(self, p: LatexIndexPrinter, terms: Sequence[FoldedTerm], out) -> list[str]:
        """``&= …`` then ``&\\quad + …`` per term, a long term broken at ``\\otimes``."""
        if not terms:
            return ["&= 0"]
        lines = []
        for k, t in enumerate(terms):
            summed = self.sum_prefix(t)
            prefix, groups = p.term_groups(t.term, out)
            sign = ""
            if prefix.startswith("-"):
                sign, prefix = "-", prefix[1:].lstrip()
            if prefix == "1":
                prefix = ""
            lead = ("&= " + (sign and "-")) if k == 0 else (r"&\quad " + (sign or "+") + " ")
            chunks = [groups[i:i + WRAP_FACTORS] for i in range(0, len(groups), WRAP_FACTORS)] or [[]]
            first = (prefix + " " if prefix else "") + r" \otimes ".join(chunks[0])
            lines.append(lead + summed + (first.strip() or "1"))
            for c in chunks[1:]:
                lines.append(r"&\qquad \otimes " + r" \otimes ".join(c))
        return lines

    # -- a template's general blocks ----------------------------------------------
    def _print_GeneralBlocks(self, s: GeneralBlocks) -> str:
        return r"\section*{" + GENERAL_BLOCK_TITLES[s.order] + "}\n" + "".join(self._print(g) for g in s.groups)

    def _print_GeneralTermItem(self, t: GeneralTermItem, printer: LatexIndexPrinter, out) -> str:
        body = printer.term(t.term, out)
        if t.over is None:
            return body
        lo, hi = (str(x).replace("max(k,r)", r"\max(k,r)") for x in t.over)
        return r"\sum_{m=" + lo + "}^{" + hi + "} " + body

    def general_terms(self, p, terms, out) -> list[str]:
        """``&= …`` then ``&\\quad + …`` per term of a general block (``0`` without terms)."""
        body = [self._print(t, printer=p, out=out) for t in terms] or ["0"]
        return [("&= " if k == 0 else r"&\quad + ") + s for k, s in enumerate(body)]

    def _print_CaseGroup(self, g: CaseGroup) -> str:
        return align([line for c in g.cases for line in self._print(c)])

    def _print_GeneralCase(self, c: GeneralCase) -> list[str]:
        p = self.statement(c.indices, c.exprs, walk=True)
        lines = self.general_terms(p, c.terms, c.indices)
        lines[0] = self.lhs(p, c.params) + " " + lines[0] + (r" \qquad (" + tex_cond(c.cond) + ")" if c.cond else "")
        if c.paper is not None:
            lines.append("&= " + " + ".join(self._print(t, printer=p, out=c.indices) for t in c.paper)
                         + r" \qquad \text{(Eq.~6)}")
        return lines

    def _print_CaseSplit(self, c: CaseSplit) -> str:
        p = self.statement(c.indices, c.exprs, walk=True)
        lhs = self.lhs(p, c.params)
        lines = self.general_terms(p, c.common, c.indices) if c.common else []
        if lines:
            lines[0] = lhs + " " + lines[0]
        arms = []
        for a in c.arms:
            pa = self.statement(a.indices, a.exprs, walk=True)
            terms = [self._print(t, printer=pa, out=a.indices) for t in a.terms] or ["0"]
            body = (r"\begin{aligned}[t] &" + r" \\ &+ ".join(terms) + r"\end{aligned}") if len(terms) > 1 else terms[0]
            arms.append(body + " & " + tex_cond(a.cond))
        cases = r"\begin{cases} " + r" \\[4pt] ".join(arms) + r" \end{cases}"
        if lines:
            lines.append(r"&\quad + " + cases)
        else:
            lines = [lhs + " &= " + cases]
        return align(lines)

    # -- structure ----------------------------------------------------------------
    def _print_StructureSection(self, s: StructureSection) -> str:
        """The structure rows as a tabular (per-sample storage, factored against dense)."""
        sc = ScalarLatexPrinter()
        out = [r"\section*{Structure}" + "\n",
               "Per-sample storage: numbers held by the factored form against the dense block.\n\n",
               "\\begin{center}\n\\begin{tabular}{lrp{0.45\\textwidth}rr}\n\\hline\n",
               "Block & $K$ & Structure & Factored & Dense \\\\\n\\hline\n"]
        for r in s.rows:
            k = len(r.wrt)
            p = self.statement(())
            name = (r"$\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + p.f + "/"
                    + "".join(r"\partial " + p.short(w) for w in r.wrt) + "$")
            kind = escape(kind_words(r))
            if r.coupling is not None:
                kind += " (" + self.coupling(r) + ")"
            out.append(f"{name} & {r.terms} & {kind} & ${sc.doprint(r.factored)}$ & ${sc.doprint(r.dense)}$ \\\\\n")
        out.append("\\hline\n\\end{tabular}\n\\end{center}\n")
        return "".join(out)

    def coupling(self, r: BlockStructure) -> str:
        """What couples a block's axes, named with the letters the block was shown with."""
        c, p = r.coupling, self.coupling_printer(r)
        names = " and ".join(dict.fromkeys(f"${p.short(f)}$" for f in c.factors))
        letters = [f"${tex_index(p.names[ix])}$" for ix in c.indices]
        if c.how is How.SUMMED:
            return f"summed index {letters[0]} couples {names}"
        if c.how is How.DIAGONAL:
            return rf"a diagonal: $\delta$ ties {letters[0]} and {letters[1]}"
        if c.how is How.ELEMENTWISE:
            return f"elementwise product over {letters[0]} ties {names}"
        if c.how is How.POSITION:
            head = " and ".join(dict.fromkeys(f"${p.short(f)}$" for f in c.factors[:-1]))
            return (f"summed position {letters[0]} couples {head} and ${self.shifted(p, c)}$: "
                    "a correlation over positions")
        return f"{names} carries axes {', '.join(letters)} together"

    @staticmethod
    def shifted(p: LatexIndexPrinter, c) -> str:
        """The tensor a correlation reads at the shifted position: ``x^{2q+a}``."""
        t, a = (tex_index(p.names[ix]) for ix in c.indices)
        arith = f"{c.stride if c.stride != 1 else ''}{t}+{a}"
        x = c.factors[-1]
        if isinstance(x, Ref) and isinstance(x.name, Name):
            base, label = tex_tensor(x.name)
            return base + "^{" + (f"({label})," if label else "") + arith + "}"
        return "{" + p.short(x) + "}^{" + arith + "}"
