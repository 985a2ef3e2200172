"""LaTeX documents: a standalone article in the paper's notation (``einderiv latex``).

:func:`render` prints the document of a derivation
(:func:`einderiv.analysis.document.document`) as an ``article`` (amsmath,
amssymb, longtable, geometry; :mod:`einderiv.emit.latex_layout`) with the
sections of the text output: a title (the file's own, from its leading
comment, with the path below it), a Table-1-like nomenclature (each input or
label called a vector, matrix or tensor by its number of indices, biases
apart from weights), the objective's and the activations' derivatives, the
shared intermediates, one numbered equation per derivative block (a term per
line, a long term folded with a deeper indent), the outer-product forms and
the structure table, which refers to each block's equation with ``\\eqref``
(:mod:`einderiv.emit.latex_structure`).  Every equation is numbered and
labelled; a block never breaks across pages and a heading stays with what
follows.  An unrolled recurrence is written once per family: the recurrence
with its range (``\\frac{\\partial f}{\\partial h^{(t)}_{j}} = \\dots \\quad
t = 1,\\dots,3``), then its base case at ``h^{(4)}`` (a derivation is at a
concrete length: numbers); a shared weight's gradient is ``\\sum_{t=1}^{4}`` of
one outer product.  :func:`render_general` prints a template's general form
(:mod:`einderiv.emit.latex_general`): a layer template's, or a recurrence's
with its sums over steps ``\\sum_{t=3}^{T}\\sum_{\\tau=2}^{t-1}``.

Names are :class:`~einderiv.emit.latex_names.Naming`'s: ``naming="compact"`` (the
default) writes intermediates as the paper does (``z^{(1)}``, ``\\gamma^{(1)}``,
``\\eta^{(2,1)}``), ``"nested"`` spells them out.  :class:`LatexDocumentPrinter` has
one ``_print_<Class>`` method per section and item of the document model, and
writes headings, tables, equations and references through a few hooks
(:meth:`~LatexDocumentPrinter.heading`, ``table``, ``align``, ``equation``,
``ref``, ``label``, ``para``, ``tt``) that the notebook printer
(:mod:`einderiv.emit.notebook`) overrides.  Expressions are typeset by
:class:`~einderiv.emit.latex_expr.LatexIndexPrinter`.  The output is ASCII only and
depends only on the derivation.
"""
from __future__ import annotations

from typing import Sequence

import sympy

from ..analysis.document import (BlockItem, BlocksSection, ClosedForm, Declared, Defined, Definitions, Document,
                                 FoldedTerm, FunctionsSection, IntermediatesSection, NetworkSection,
                                 ObjectiveSection, SoftmaxDef, Title, document)
from ..analysis.general_document import general_document
from ..analysis.order import sum_terms
from ..ir import Add, Name, Ref, Sym
from .base import DocumentPrinter, shown
from .latex_expr import LatexIndexPrinter, ScalarLatexPrinter, escape, range_tex, sum_tex
from .latex_general import GeneralLatex, tex_cond
from .latex_layout import DISPLAY_PT, EQUATION_PT, KEEP, PREAMBLE, Labels, fold, line_height, piece_text, tex_width
from .latex_names import Naming
from .latex_structure import StructureLatex

BLOCK_TITLES = {1: "First derivatives", 2: "Second derivatives"}
ORDER_WORDS = {1: "Gradients", 2: "Gradients and Hessian blocks", 3: "Gradients, Hessian blocks and third derivatives"}
#: the indent of a new term (after the first) and of a folded term's continuation
NEW_TERM, CONTINUED = r"&\quad ", r"&\qquad\qquad "
KIND = {0: "scalar", 1: "vector", 2: "matrix"}
WHAT = {"weight": "Weights", "bias": "Biases"}
#: the network table: formulas that wrap at their operators, and what they are
QUANTITY_COLUMNS = (r">{\raggedright\arraybackslash}p{0.55\textwidth}>{\raggedright\arraybackslash}"
                    r"p{0.38\textwidth}")


def render(derivation, sizes=None, naming: str = "compact") -> str:
    """The whole derivation as a standalone LaTeX document."""
    return LatexDocumentPrinter({"naming": naming}).doprint(document(derivation, sizes))


def render_general(gf, naming: str = "compact") -> str:
    """A layer template's general form (:class:`~einderiv.analysis.template.GeneralForm`) as LaTeX."""
    return LatexDocumentPrinter({"naming": naming}).doprint(general_document(gf))


class LatexDocumentPrinter(GeneralLatex, StructureLatex, DocumentPrinter):
    """Prints a document model as LaTeX: each ``_print_<Section>`` returns the section's source.

    Settings: ``naming``, ``"compact"`` (the paper's names) or ``"nested"``."""

    printmethod = "_einderiv_latex_document"
    expr_printer = LatexIndexPrinter
    _default_settings = {"naming": "compact"}

    def doprint(self, doc) -> str:
        self.naming = Naming(doc.context, self._settings["naming"])
        self.labels = Labels()
        return super().doprint(doc)

    def expr_settings(self) -> dict:
        return {"naming": self.naming}

    # -- hooks: how a heading, a table, an equation, a reference is written ----------------
    def heading(self, title: str) -> str:
        """A section heading that stays on the page of what follows it."""
        return f"\\keep{{{KEEP}}}\n\\section*{{{title}}}\n"

    def tt(self, name) -> str:
        """A name as the file writes it, in typewriter type (a backslash or a brace, from a file's
        path, as the typewriter font's own glyph: ``\\{`` would borrow another font's)."""
        return r"\texttt{" + "".join("{\\char%d}" % ord(ch) if ch in "\\{}" else escape(ch)
                                     for ch in shown(str(name))) + "}"

    def para(self, text: str) -> str:
        """A paragraph flush with the margin."""
        return r"\noindent " + text + "\n\n"

    def label(self, key: str) -> str:
        return r" \label{" + key + "}"

    def ref(self, key: str) -> str:
        """A reference to an equation (``''`` where there are no numbers)."""
        return r"\eqref{" + key + "}"

    def table(self, columns: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
        """A table that may run over pages, its head repeated."""
        line = " & ".join(head) + " \\\\\n"
        return ("\\begin{longtable}{" + columns + "}\n\\hline\n" + line + "\\hline\n\\endhead\n\\hline\n\\endfoot\n"
                + "".join(" & ".join(r) + " \\\\\n" for r in rows) + "\\end{longtable}\n")

    def quantities(self, rows: Sequence[Sequence[str]]) -> str:
        return self.table(QUANTITY_COLUMNS, ("Quantity", "Description"), rows) + "\n"

    def align(self, rows: Sequence[str]) -> str:
        """A numbered ``align``, a row per line (each row labels itself); it may break between rows."""
        return "\\begin{align}\n  " + " \\\\\n  ".join(rows) + "\n\\end{align}\n" if rows else ""

    def equation(self, lhs: str, terms: Sequence[list[str]], label: str) -> str:
        """A numbered ``equation`` + ``split``, kept on one page (:meth:`equation_lines`).  A block
        taller than a page is an ``align`` that may break between terms (never inside one),
        numbered on its last line."""
        rows = self.equation_lines(lhs, terms)
        if sum(line_height(line) for row in rows for line in row) <= EQUATION_PT:
            body = " \\\\\n".join(line for row in rows for line in row)
            return "\\begin{equation}\n\\begin{split}\n" + body + "\n\\end{split}" + self.label(label) + \
                "\n\\end{equation}\n"
        lines = [" \\\\*\n".join(row) for row in rows]  # too tall for a page: break between terms only
        return "\\begin{align}\n" + " \\nonumber \\\\\n".join(lines) + self.label(label) + "\n\\end{align}\n"

    def equation_lines(self, lhs: str, terms: Sequence[list[str]]) -> list[list[str]]:
        """The lines of a block, a list per term: each term's pieces folded to the page width, a
        continuation indented further than a new term; the left side on a line of its own when
        the terms need the room."""
        lw = tex_width(lhs)
        widest = max(tex_width(" ".join(map(piece_text, t))) for t in terms)
        inline = lw + widest + 10.0 <= DISPLAY_PT or lw <= DISPLAY_PT / 4
        room = DISPLAY_PT - (lw if inline else 0.0) - 10.0
        rows: list[list[str]] = [] if inline else [["&" + lhs]]
        for k, pieces in enumerate(terms):
            head, groups = pieces[0], pieces[1:]
            first = head + (" " + groups[0] if groups else "")
            row = []
            for n, line in enumerate(fold(first, groups[1:], r" \otimes ", room, room - 10.0)):
                if n:
                    row.append(CONTINUED + line)
                elif inline and line.startswith("="):
                    row.append((lhs + " " if k == 0 else "") + "&" + line)
                else:
                    row.append(NEW_TERM + line)
            rows.append(row)
        return rows

    def title(self, heading: str, what: str, path: str) -> str:
        return (r"\title{" + escape(heading) + r"\\[6pt] \large " + what + r"\\[2pt] \normalsize" + self.tt(path)
                + "}\n" + r"\date{}" + "\n" + r"\begin{document}" + "\n" + r"\maketitle" + "\n")

    # -- documents --------------------------------------------------------------
    def _print_Document(self, doc: Document) -> str:
        return PREAMBLE + "".join(self._print(s) for s in doc.sections) + r"\end{document}" + "\n"

    _print_GeneralDocument = _print_Document

    def lhs(self, p: LatexIndexPrinter, params: Sequence[Ref]) -> str:
        """``\\frac{\\partial^{2} f}{\\partial W^{(1),j}_{i}\\, \\partial W^{(2),s}_{t}}``."""
        k = len(params)
        num = r"\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + p.f
        return r"\frac{" + num + "}{" + r"\, ".join(r"\partial " + p._print(r) for r in params) + "}"

    def short_lhs(self, p: LatexIndexPrinter, wrt: Sequence) -> str:
        """``\\partial^{2} f/\\partial W^{(1)}\\partial U`` (a block named without its indices)."""
        k = len(wrt)
        return (r"\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + p.f + "/"
                + "".join(r"\partial " + p.short(w) for w in wrt))

    @staticmethod
    def order_words(order: int) -> str:
        return ORDER_WORDS.get(order, f"Derivatives to order {order}")

    def _print_Title(self, t: Title) -> str:
        f = self.statement(()).f
        acts = ", ".join(t.functions)
        heading = t.heading or (("A recurrent " if t.recurrent else "A ") + (acts + " " if acts else "") + "network")
        return (self.title(heading, self.order_words(t.order) + f" of ${f}$", t.path)
                + self.para(r"Index notation with the summation convention: an index repeated in a product is "
                            r"summed unless it is free on the left-hand side (then the product is elementwise); an "
                            r"index is written up or down as the network file writes it, and flipped in a "
                            r"derivative by it. $\delta$ with two indices is the Kronecker delta, $\otimes$ "
                            r"separates the outer-product factors of a term, $\partial " + f + r"/\partial z$ is "
                            r"the back-propagated adjoint, and " + self.legend(("t", "t-1") if t.recurrent else None)
                            + self.numbered()))

    def numbered(self) -> str:
        return " Every equation is numbered; the structure table at the end refers to them."

    def legend(self, example: tuple[str, str] | None) -> str:
        """What γ and η stand for in the document's naming, with an example from its own layers."""
        n = self.naming
        if n.compact and n.family is not None:
            layers = sorted(str(n.label(x)) for x in n.layers)
            k, l = example or ((layers[1], layers[0]) if len(layers) > 1 else (layers[0], layers[0]))
            v = n.family
            return (f"$z^{{({k})}}$ is the argument of the activation of layer ${v}^{{({k})}}$, "
                    f"$\\gamma^{{({k})}} = \\partial {v}^{{({k})}}/\\partial z^{{({k})}}$ is the paper's Eq.~1 and "
                    f"$\\eta^{{({k},{l})}} = \\partial {v}^{{({k})}}/\\partial z^{{({l})}}$ its Eq.~4: in the bracket "
                    f"of $\\eta$ a layer's label stands for the layer in the first place and for its argument in "
                    f"the second, and any other name is written short: $\\eta^{{(z_{{{k}}},{l})}} = "
                    f"\\partial z^{{({k})}}/\\partial z^{{({l})}}$, $\\eta^{{(p,{v}_{{{k}}})}} = "
                    f"\\partial p/\\partial {v}^{{({k})}}$.")
        if n.compact and n.layers:
            layer = min(n.layers, key=str).relabel(lambda _: Sym(example[0] if example else "t"))
            p = self.statement(())
            v, z, s = p.short(layer), p.short(Name(layer.base, layer.labels, 1)), n.short(layer)
            return (f"$\\gamma^{{({s})}} = \\partial {v}/\\partial {z}$ is the Jacobian of the paper's Eq.~1 "
                    f"(${z}$ the argument of the activation of ${v}$, written with a $z$ in a bracket) and "
                    r"$\eta$ that of Eq.~4, by the second name in its bracket.")
        return (r"$\gamma$ and $\eta$ are the Jacobians of the paper's Eqs.~1 and~4, the second by the second "
                r"name in its bracket.")

    # -- network: a table of quantities ---------------------------------------------
    def steps(self, labels: Sequence[int], base_of=None) -> str:
        """``, $t = 1,\\dots,T$`` after a family's description, ``, base case`` after a base case."""
        if base_of is not None:
            return ", base case"
        return f", ${range_tex('t', labels, self.doc.horizon)}$" if labels else ""

    @staticmethod
    def shape(d: Declared, sizes: dict | None = None) -> str:
        """``, $n_{1} \\times n_{0}$ ($5 \\times 4$)``: the sizes' names, then their values when known."""
        if not d.indices:
            return ""
        dims = [sympy.sympify(ix.dim) for ix in d.indices]
        names = r" \times ".join(ScalarLatexPrinter().doprint(x) for x in dims)
        values = [(sizes or {}).get(str(x)) if not x.is_Integer else int(x) for x in dims]
        known = "" if any(v is None for v in values) or not sizes else \
            r" ($" + r" \times ".join(map(str, values)) + "$)"
        return f", ${names}${known}"

    def declared_what(self, d: Declared) -> str:
        if d.role in ("input", "label"):
            domain = {"positive": ", positive", "probability": ", sums to 1 along its last axis",
                      "onehot": ", one-hot along its last axis"}.get(d.domain, "")
            return f"{d.role.capitalize()} {KIND.get(len(d.indices), 'tensor')} for a single sample{domain}"
        return WHAT.get(d.role, escape(d.role))

    def _print_NetworkSection(self, s: NetworkSection) -> str:
        rows = [self._print(d, sizes=dict(s.dims)) for d in s.declarations]
        for d in s.written.recurrences_first():
            what = ("Output of " + self.tt(d.name) + self.steps(d.labels, d.base_of)
                    if not d.objective else "Scalar objective function value for a single sample")
            rows.append(self.network_row(d, what))
        rows += [self.network_row(d, "Argument of the activation of " + self.tt(d.origin) + " (named)"
                                  + self.steps(d.labels, d.base_of))
                 for d in s.nodes.pre().recurrences_first()]
        pad = (self.para("Zero padding: " + ", ".join(self.tt(n) for n in s.padded) + " read as 0 outside "
                         "their axes (a window's position runs over the padded axis).") if s.padded else "")
        return self.heading("Network") + self.quantities(rows) + pad

    def _print_Declared(self, d: Declared, sizes: dict) -> list[str]:
        """``$x^{(t),k}$``, ``Input vector for a single sample, $n$ ($3$), $t = 1,\\dots,T$``."""
        p = self.statement(d.indices)
        return [f"${p._print(Ref(d.name, d.indices))}$",
                self.declared_what(d) + self.shape(d, sizes) + self.steps(d.labels)]

    def network_row(self, d: Defined, desc: str) -> list[str]:
        """A definition as written, and what it is."""
        p = self.statement(d.indices, [d.expr])
        p.name_nodes = False
        return [f"${p._print(Ref(d.name, d.indices))} = {p._print(d.expr)}$", desc]

    # -- definitions ----------------------------------------------------------------
    def def_label(self, name, cond: str = "") -> str:
        """The label of the definition of ``name`` (in the case ``cond``)."""
        return self.labels("def", name, cond)

    def _print_Defined(self, d: Defined, as_written: bool = False) -> str:
        """``lhs &= rhs && t = 1,\\dots,T-1 \\label{…}`` (a family), ``&& \\text{base case of (3)}``,
        ``&& k < n`` (a case)."""
        p = self.statement(d.indices, [d.expr], walk=not as_written)
        p.name_nodes = not as_written
        notes = []
        if d.cond:
            notes.append(tex_cond(d.cond))
        elif d.labels:
            notes.append(range_tex("t", d.labels, self.doc.horizon))
        elif d.base_of is not None:
            ref = self.ref(self.def_label(d.base_of))
            notes.append(r"\text{base case" + (" of " + ref if ref else "") + "}")
        if d.paper_eq is not None:
            notes.append(rf"\text{{the paper's Eq.~{d.paper_eq}}}")
        note = r",\quad ".join(notes)
        lhs = p._print(Ref(d.name, d.indices))
        row = lhs + " &= " + self.definition_lines(p, d.expr, DISPLAY_PT - tex_width(lhs) - tex_width(note) - 40.0)
        if notes:
            row += r" && " + note
        return row + self.label(self.def_label(d.name, d.cond))

    def nonumber(self) -> str:
        """What keeps a line of a numbered row from taking a number of its own."""
        return r" \nonumber"

    def definition_lines(self, p: LatexIndexPrinter, e, room: float) -> str:
        """A definition's right side; a sum wider than ``room`` folded between its terms, each
        further line indented and unnumbered but the last (which carries the row's number)."""
        text = p._print(e)
        if not isinstance(e, Add) or tex_width(text) <= room:
            return text
        terms = [p._print(t) if one is None else p._with_coef(one, "") for t, one in sum_terms(e, p.names.free)]
        pieces = [(" - ", x[1:].lstrip()) if x.startswith("-") else (" + ", x) for x in terms[1:]]
        lines = fold(terms[0], pieces, " + ", room, room - 20.0)
        return (self.nonumber() + " \\\\\n  &\\qquad ").join(lines)

    def _print_Definitions(self, defs: Definitions) -> list[str]:
        """Rows of an ``align``, each base case after its recurrence."""
        return [self._print(d, as_written=defs.as_written) for d in defs.recurrences_first()]

    def _print_ObjectiveSection(self, s: ObjectiveSection) -> str:
        rows = [self._print(x) for x in s.softmaxes] + self._print(s.defs)
        return self.heading("Objective") + self.align(rows)

    def _print_SoftmaxDef(self, s: SoftmaxDef) -> str:
        p = self.statement(s.arg.indices, [s.expr])
        return (p._print(s.expr) + r" &= \operatorname{softmax}_{" + p._print(s.expr.over)
                + r"}\!\left(" + p._print(s.arg) + r"\right)" + self.label(self.labels("softmax", s.arg.name)))

    def _print_FunctionsSection(self, s: FunctionsSection) -> str:
        words = {"sigma": r"$\sigma(z) = 1/(1 + e^{-z})$ is the logistic function",
                 "theta": r"$\theta$ is the unit step"}
        note = "; ".join(words[k] for k in s.symbols)
        return (self.heading("Activation derivatives") + (note[0].upper() + note[1:] + ".\n" if note else "")
                + self.align([self._print(f) for f in s.forms]))

    def _print_ClosedForm(self, f: ClosedForm) -> str:
        return (LatexIndexPrinter({"naming": self.naming}).closed_form(f, " &= ")
                + self.label(self.labels("fn", f.fn, *f.deriv)))

    def _print_IntermediatesSection(self, s: IntermediatesSection) -> str:
        return (self.heading("Shared intermediates") + r"Each is defined once, in dependency order." + (
            "" if s.expanded else
            r" $\mathcal{H}$ with two nodes in its bracket is the second derivative of $f$ with respect to"
            r" perturbations added to those nodes (the second-order adjoint).") + (
            r" A recurrence over $t$ is written once, with its range, and followed by its base case."
            if s.recurrent else "") + "\n" + self.align(self._print(s.defs)))

    # -- blocks -------------------------------------------------------------------
    def block_label(self, wrt) -> str:
        return self.labels("d", *wrt)

    def _print_BlocksSection(self, s: BlocksSection) -> str:
        title = BLOCK_TITLES.get(s.order, f"Derivatives of order {s.order}")
        papers = [b for b in s.blocks if b.paper is not None]
        intro = ""
        if papers:
            refs = ", ".join(filter(None, (self.ref(self.block_label(b.block.wrt)) for b in papers)))
            intro = (f"The second line of {refs or 'a gradient'} is the gradient in the paper's Eq.~6 form: the "
                     r"objective's $\partial f/\partial p$, the output layer and $\eta$." + "\n")
        if s.order >= 3:
            intro += ("Derivatives commute: each block is written for one order of its parameters, the "
                      "others are the same block with its axes permuted.\n")
        return self.heading(title) + intro + "".join(self._print(b) for b in s.blocks)

    def _print_BlockItem(self, b: BlockItem) -> str:
        """One numbered equation kept on one page: a term per line, the Eq. 6 form below a gradient."""
        ix = b.block.indices
        p = self.statement(ix, [b.block.expr])
        terms = [self.term_pieces(p, t, ix, k) for k, t in enumerate(b.terms(self.step_symbol(p, ix)))]
        self.block_printers[b.block.wrt] = p
        if b.paper is not None:
            pp = self.statement(ix, [b.paper])
            terms += [self.term_pieces(pp, t, ix, k) for k, t in enumerate(b.paper_terms(self.step_symbol(pp, ix)))]
        label = self.block_label(b.block.wrt)
        out = self.equation(self.lhs(p, b.params), terms or [["= 0"]], label)
        if b.same:
            others = ", ".join(f"${self.short_lhs(p, w)}$" for w in b.same)
            out += self.para(others + (" is " if len(b.same) == 1 else " are ") + (self.ref(label) or "this block")
                             + " with its axes permuted.")
        return out

    def sum_prefix(self, t: FoldedTerm) -> str:
        """``\\sum_{t=1}^{T} `` before a family of terms ('' for a term that stands alone)."""
        return sum_tex(t.symbol, t.labels, self.doc.horizon) + " " if t.labels else ""

    def term_pieces(self, p: LatexIndexPrinter, t: FoldedTerm, out, k: int) -> list[str]:
        """One term as pieces :meth:`equation` folds over lines: its sign (``=`` before the first), Σ
        over steps and scalar prefix, then each outer-product factor."""
        prefix, groups = p.term_groups(t.term, out)
        sign = ""
        if prefix.startswith("-"):
            sign, prefix = "-", prefix[1:].lstrip()
        if prefix == "1":
            prefix = ""
        head = (("= " + sign) if k == 0 else (sign or "+") + " ") + self.sum_prefix(t) + prefix
        return [head.rstrip()] + (groups or ([] if prefix else ["1"]))
