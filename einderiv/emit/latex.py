"""LaTeX documents: a standalone article in the paper's notation (``einderiv latex``).

:func:`render` prints the document of a derivation
(:func:`einderiv.analysis.document.document`) as an ``article`` (amsmath,
amssymb, geometry) with the sections of the text output: a Table-1-like
nomenclature (each input or label called a vector, matrix or tensor by its
number of indices), the objective's and the activations' derivatives, the
shared intermediates, one ``align*`` per derivative block with one term per
line, and the structure table.  An unrolled recurrence is written once per
family: the recurrence with its range
(``\\frac{\\partial f}{\\partial h^{(t)}_{j}} = \\dots \\quad t = 1,\\dots,3``), then
its base case at ``h^{(4)}`` (a derivation is at a concrete length: numbers); a shared
weight's gradient is ``\\sum_{t=1}^{4}`` of one outer product.  :func:`render_general`
prints a template's general form (:mod:`einderiv.analysis.general_document`): a layer
template's with Eq. 9's case split as ``\\begin{cases}``, a recurrence's with its sums over
steps ``\\sum_{t=3}^{T}\\sum_{\\tau=2}^{t-1}``.

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
                                 ObjectiveSection, OuterFormsSection, OuterItem, SoftmaxDef, StructureSection,
                                 Title, document)
from ..analysis.general_document import (CaseGroup, CaseSplit, GeneralBlocks, GeneralCase, GeneralIntermediates,
                                         GeneralTermItem, GeneralTitle, TemplateNetwork,
                                         general_document)
from ..analysis.structure import BlockStructure, Form, How
from ..analysis.order import sum_terms
from ..ir import Add, Name, Ref
from .base import DocumentPrinter
from .latex_expr import LatexIndexPrinter, ScalarLatexPrinter, escape, range_tex, sum_tex, tex_index, tex_tensor
from .text import bound, kind_words

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage{amsmath}
\usepackage{amssymb}
\usepackage[margin=2cm]{geometry}
\usepackage{longtable}
\allowdisplaybreaks
"""

#: a term with more outer-product factors than this is broken across lines at \otimes
WRAP_FACTORS = 4
#: an outer-product form's term longer than this (characters of source) has its merged sum broken
LONG_LINE = 200
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


def step_tex(symbol: str) -> str:
    """A step symbol in LaTeX: ``τ`` → ``\\tau``."""
    return {"τ": r"\tau", "σ": r"\sigma", "ρ": r"\rho"}.get(symbol, symbol)


def sc_text(x) -> str:
    """A size or count in LaTeX."""
    return ScalarLatexPrinter().doprint(x)


def tex_cond(text: str) -> str:
    """A condition (``1 ≤ l < k ≤ n``, ``k = 1..n``) in LaTeX."""
    for greek, tex in (("τ", r"\tau "), ("σ", r"\sigma "), ("ρ", r"\rho ")):
        text = text.replace(greek, tex)
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
        least = rf" \geq {min(t.checked)}" if t.checked and min(t.checked) > 1 else ""
        return (r"\title{General form of the derivatives of \texttt{" + escape(t.path) + r"} for any " + t.what + " $"
                + t.depth + least + "$}\n" + r"\date{}" + "\n" + r"\begin{document}" + "\n" + r"\maketitle" + "\n"
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
        rows = [f"${s.depth}$ & " + ("Number of steps" if s.steps else "Number of hidden layers") + " \\\\\n"]
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
        what = "generic steps (back-propagation through time)" if s.steps else "generic layers"
        return r"\section*{Intermediates (Eqs.~1--4), for " + what + "}" + "\n" + align(self._print(s.defs))

    # -- blocks -------------------------------------------------------------------
    def _print_BlocksSection(self, s: BlocksSection) -> str:
        title = BLOCK_TITLES.get(s.order, f"Derivatives of order {s.order}")
        return r"\section*{" + title + "}\n" + "".join(self._print(b) for b in s.blocks)

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

    def broken_sum(self, p: LatexIndexPrinter, t: FoldedTerm, out, lines: list[str]) -> list[str]:
        """A term whose merged factor (a sum) is too long for a line, that sum a summand per line:
        ``\\Big( a`` / ``+ b`` / ``+ c \\Big) \\otimes x``; other terms as they are."""
        groups = t.term.groups
        k = next((k for k, g in enumerate(groups) if len(g.factors) == 1 and isinstance(g.factors[0], Add)), None)
        if k is None or len(groups) > WRAP_FACTORS:
            return lines
        summands = [p._print(x) if one is None else p._with_coef(one, "")
                    for x, one in sum_terms(groups[k].factors[0], p.names.free)]
        _, printed = p.term_groups(t.term, out)
        head = lines[0][:len(lines[0]) - len(r" \otimes ".join(printed))]
        before, after = printed[:k], printed[k + 1:]
        out_lines = [head + "".join(g + r" \otimes " for g in before) + r"\Big(" + summands[0]]
        for x in summands[1:]:
            out_lines.append(r"&\qquad " + ("- " + x[1:].lstrip() if x.startswith("-") else "+ " + x))
        out_lines[-1] += r" \Big)" + "".join(r" \otimes " + g for g in after)
        return out_lines

    # -- outer-product forms --------------------------------------------------------
    def _print_OuterFormsSection(self, s: OuterFormsSection) -> str:
        return (r"\section*{Outer-product forms}" + "\n"
                + r"The blocks above with the terms that share outer factors merged and a sum over a shared "
                r"index written outside the outer product: $K$ counts these outer products." + "\n"
                + "".join(self._print(o) for o in s.items))

    def _print_OuterItem(self, o: OuterItem) -> str:
        """One ``align*``: a term per line, then ``(K = …)``."""
        r = o.row
        ix = r.block.indices
        p = self.statement(ix, [t.expr(ix) for t in r.outer.terms])
        lines = []
        for k, t in enumerate(o.terms(self.step_symbol(p, ix))):
            mine = self.term_lines(p, [t], ix)
            if k:  # term_lines leads a lone term with &=
                mine[0] = r"&\quad " + ("- " + mine[0][4:].lstrip() if mine[0].startswith("&= -")
                                        else "+ " + mine[0][3:])
            lines.extend(self.broken_sum(p, t, ix, mine) if len(mine[0]) > LONG_LINE else mine)
        self.outer_printers[r.wrt] = p
        lines[0] = self.lhs(p, o.params) + " " + lines[0]
        lines[-1] += r" \qquad (K = " + ScalarLatexPrinter().doprint(r.terms) + ")"
        return align(lines)

    # -- a template's general blocks ----------------------------------------------
    def _print_GeneralBlocks(self, s: GeneralBlocks) -> str:
        return r"\section*{" + GENERAL_BLOCK_TITLES[s.order] + "}\n" + "".join(self._print(g) for g in s.groups)

    def _print_GeneralTermItem(self, t: GeneralTermItem, printer: LatexIndexPrinter, out) -> str:
        body = printer.term(t.term, out)
        if t.steps:
            return "".join(r"\sum_{" + step_tex(r.symbol) + "=" + bound(r.lows, r"\max", step_tex) + "}^{"
                           + bound(r.highs, r"\min", step_tex) + "} " for r in t.steps) + body
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
               "$K$: the outer products a block is per sample. Per-sample storage: numbers held by the "
               "factored form against the dense block (\\emph{no saving} where it is not smaller).\n\n",
               "\\begin{longtable}{lrp{0.45\\textwidth}rr}\n\\hline\n",  # breaks across pages
               "Block & $K$ & Structure & Factored & Dense \\\\\n\\hline\n\\endhead\n"]
        for r in s.rows:
            k = len(r.wrt)
            p = self.statement(())
            name = (r"$\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + p.f + "/"
                    + "".join(r"\partial " + p.short(w) for w in r.wrt) + "$")
            kind = escape(kind_words(r))
            why = self.reason(r)
            if why:
                kind += " (" + why + ")"
            k = "--" if r.kind is Form.NONE else f"${sc.doprint(r.terms)}$"
            out.append(f"{name} & {k} & {kind} & ${sc.doprint(r.factored)}$ & ${sc.doprint(r.dense)}$ \\\\\n")
        out.append("\\hline\n\\end{longtable}\n")
        return "".join(out)

    def reason(self, r: BlockStructure) -> str:
        """Why a block is what it is, as the text table words it, with the block's letters."""
        why = self.why(r)
        if r.kind in (Form.OUTER, Form.SUM, Form.SHARED, Form.CORRELATION, Form.MIXED) and not r.saves:
            why += ("; " if why else "") + "no saving"
        return why

    def why(self, r: BlockStructure) -> str:
        if r.kind is Form.SUM and r.steps:
            rng = "$" + range_tex("t", r.steps[0], self.doc.horizon if self.doc else None) + "$"
            return f"one per step {rng}" + (": a weight shared over the steps" if len(r.wrt) == 1 else "")
        if r.kind is Form.MIXED:
            return "each over its own split of the axes"
        if r.coupling is None:
            return ""
        c = r.coupling
        if c.how is How.TERMS:
            return "each term splits the axes, but no split is common to the terms"
        p = self.coupling_printer(r)
        names = " and ".join(dict.fromkeys(f"${p.short(f)}$" for f in c.factors))
        letters = [f"${tex_index(p.names[ix])}$" for ix in c.indices]
        if c.how is How.SUMMED:
            shared = f": a weight shared over {letters[0]}" if len(r.wrt) == 1 else ""
            return f"over {letters[0]}, read by {names}{shared}"
        if c.how is How.DIAGONAL:
            return rf"a diagonal: $\delta$ ties {letters[0]} and {letters[1]}"
        if c.how is How.ELEMENTWISE:
            return f"elementwise product over {letters[0]} ties {names}"
        if c.how is How.POSITION:
            head = " and ".join(dict.fromkeys(f"${p.short(f)}$" for f in c.factors[:-1]))
            pos = ",".join(tex_index(p.names[ix]) for ix in c.indices[0::2])
            return (rf"$\sum_{{{pos}}}$ {head} $\otimes$ ${self.shifted(p, c)}$: "
                    f"${sc_text(r.terms)}$ outer products")
        return f"{names} carries axes {', '.join(letters)} together"

    @staticmethod
    def shifted(p: LatexIndexPrinter, c) -> str:
        """The tensor a correlation reads at the shifted positions: ``x^{2q+a}``, ``x^{q+a,r+b}``."""
        letters = [tex_index(p.names[ix]) for ix in c.indices]
        arith = ",".join(f"{st if st != 1 else ''}{t}+{a}" for st, t, a in zip(c.strides, letters[0::2], letters[1::2]))
        x = c.factors[-1]
        if isinstance(x, Ref) and isinstance(x.name, Name):
            base, label = tex_tensor(x.name)
            return base + "^{" + (f"({label})," if label else "") + arith + "}"
        return "{" + p.short(x) + "}^{" + arith + "}"
