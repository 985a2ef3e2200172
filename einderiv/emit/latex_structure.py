"""LaTeX of what a document says about structure: the outer-product forms and the structure table.

:class:`StructureLatex` is a mixin of :class:`~einderiv.emit.latex.LatexDocumentPrinter`
with the ``_print_<Class>`` methods of the last two sections of a document
(:mod:`einderiv.analysis.document`):

* :class:`~einderiv.analysis.document.OuterFormsSection` — each block whose
  outer-product form (:mod:`einderiv.analysis.outer`) is not the form it is shown
  in, as a numbered equation like the blocks', ending in ``(K = …)``; a merged
  factor that is a long sum is written ``\\Big( a + b + … \\Big)`` and folded
  between its summands like any other term;
* :class:`~einderiv.analysis.document.StructureSection` — a table (it may break
  across pages) with a row per block: the block named with the number of its
  equation (``\\eqref``), K (``--`` where there is no outer-product structure),
  what the block is and why, worded as the text table words it (``no saving``
  where the factored form is not smaller than the dense block) and the number of
  its outer-product form where it has one, and the per-sample storage of both.

It writes through the document printer's hooks (``heading``, ``table``,
``equation``, ``ref``, ``para``), so the notebook printer prints it too.
"""
from __future__ import annotations

from ..analysis.document import FoldedTerm, OuterFormsSection, OuterItem, StructureSection
from ..analysis.order import sum_terms
from ..analysis.structure import BlockStructure, Form, How
from ..ir import Add, Name, Ref
from .latex_expr import LatexIndexPrinter, ScalarLatexPrinter, escape, range_tex, tex_index
from .latex_layout import DISPLAY_PT, tex_width
from .text import kind_words

#: the structure table: the block with its equation, K, what it is, factored and dense storage
STRUCTURE_COLUMNS = (r">{\raggedright\arraybackslash}p{0.28\textwidth}r"
                     r">{\raggedright\arraybackslash}p{0.4\textwidth}rr")
#: the forms that are outer products, where a factored form may still fail to save storage
OUTER_FORMS = (Form.OUTER, Form.SUM, Form.SHARED, Form.CORRELATION, Form.MIXED)


def sc_text(x) -> str:
    """A size or count in LaTeX."""
    return ScalarLatexPrinter().doprint(x)


#: a summand wider than this is split between its factors (no line holds it: the continuation
#: indent and the equation number take the rest)
SUMMAND_PT = DISPLAY_PT - 80.0


def split_wide(piece) -> list:
    """A summand piece wider than :data:`SUMMAND_PT` as several pieces, split at the spaces between
    its factors (never inside braces or a ``\\left … \\right`` pair), each but the first joined by a
    space; a narrower piece as it is."""
    join, text = piece if isinstance(piece, tuple) else (None, piece)
    if tex_width(text) <= SUMMAND_PT:
        return [piece]
    cuts, depth, pairs = [], 0, 0
    for k, ch in enumerate(text):
        depth += (ch == "{") - (ch == "}")
        if text.startswith("\\left", k):
            pairs += 1
        elif text.startswith("\\right", k):
            pairs -= 1
        elif ch == " " and depth == 0 and pairs == 0:
            cuts.append(k)
    chunks, start, line = [], 0, ""
    for end in cuts + [len(text)]:
        part = text[start:end].strip()
        if line and tex_width(line + " " + part) > SUMMAND_PT:
            chunks.append(line)
            line = part
        else:
            line = (line + " " + part) if line else part
        start = end
    chunks.append(line)
    first = (join, chunks[0]) if join is not None else chunks[0]
    return [first] + [(" ", c) for c in chunks[1:]]


def with_tail(piece, tail: str):
    """A piece (text, or a separator with its text) with ``tail`` written after it."""
    return (piece[0], piece[1] + tail) if isinstance(piece, tuple) else piece + tail


class StructureLatex:
    """The ``_print_<Class>`` methods for outer-product forms and the structure table (a mixin
    of the document printer)."""

    # -- outer-product forms --------------------------------------------------------
    def _print_OuterFormsSection(self, s: OuterFormsSection) -> str:
        return (self.heading("Outer-product forms")
                + self.para(r"The blocks above with the terms that share outer factors merged and a sum over a "
                            r"shared index written outside the outer product: $K$ counts these outer products.")
                + "".join(self._print(o) for o in s.items))

    def _print_OuterItem(self, o: OuterItem) -> str:
        """One numbered equation kept on one page, a term per line, ending in ``(K = …)``."""
        r = o.row
        ix = r.block.indices
        p = self.statement(ix, [t.expr(ix) for t in r.outer.terms])
        terms = [self.sum_pieces(p, t, ix, k) for k, t in enumerate(o.terms(self.step_symbol(p, ix)))]
        self.outer_printers[r.wrt] = p
        terms[-1][-1] = with_tail(terms[-1][-1], r" \qquad (K = " + sc_text(r.terms) + ")")
        return self.equation(self.lhs(p, o.params), terms, self.labels("outer", *r.wrt))

    def sum_pieces(self, p: LatexIndexPrinter, t: FoldedTerm, out, k: int) -> list:
        """A term's pieces (:meth:`term_pieces`: its head, then a piece per outer factor); where the
        whole term is wider than a line and an outer factor is a merged sum, that sum opened into
        its summands — ``\\Big( a``, ``(" + ", b)``, …, ``(" + ", c \\Big)``) — so the term folds
        between them too (:func:`~einderiv.emit.latex_layout.fold`)."""
        pieces = self.term_pieces(p, t, out, k)
        groups = t.term.groups
        n = next((n for n, g in enumerate(groups) if len(g.factors) == 1 and isinstance(g.factors[0], Add)), None)
        if n is None or len(pieces) != len(groups) + 1 or tex_width(" ".join(pieces)) <= DISPLAY_PT - 20.0:
            return pieces
        summands = [p._print(x) if one is None else p._with_coef(one, "")
                    for x, one in sum_terms(groups[n].factors[0], p.names.free)]
        opened: list = [r"\Big(" + summands[0]]
        opened += [(" - ", x[1:].lstrip()) if x.startswith("-") else (" + ", x) for x in summands[1:]]
        opened[-1] = with_tail(opened[-1], r" \Big)")
        return pieces[:1 + n] + [q for piece in opened for q in split_wide(piece)] + pieces[2 + n:]

    # -- structure ----------------------------------------------------------------
    def _print_StructureSection(self, s: StructureSection) -> str:
        """The structure rows as a table (per-sample storage, factored against dense), each block
        named with the number of its equation."""
        rows = []
        for r in s.rows:
            p = self.statement(())
            name = f"${self.short_lhs(p, r.wrt)}$ " + self.ref(self.block_label(r.wrt))
            kind = escape(kind_words(r))
            why = self.reason(r)
            if why:
                kind += " (" + why + ")"
            form = self.ref(self.labels("outer", *r.wrt)) if r.outer is not None and r.outer.rewritten else ""
            if form:  # the form K counts, when it is not the block's own
                kind += ", as " + form
            k = "--" if r.kind is Form.NONE else f"${sc_text(r.terms)}$"
            rows.append([name.strip(), k, kind, f"${sc_text(r.factored)}$", f"${sc_text(r.dense)}$"])
        return (self.heading("Structure")
                + r"$K$: the outer products a block is per sample. Per-sample storage: numbers held by the "
                r"factored form against the dense block (\emph{no saving} where it is not smaller)." + "\n\n"
                + self.table(STRUCTURE_COLUMNS, ("Block", "$K$", "Structure", "Factored", "Dense"), rows))

    def reason(self, r: BlockStructure) -> str:
        """Why a block is what it is, as the text table words it, with the block's letters."""
        why = self.why(r)
        if r.kind in OUTER_FORMS and not r.saves:
            why += ("; " if why else "") + "no saving"
        return why

    def why(self, r: BlockStructure) -> str:
        """What couples a block's axes (or how its terms split them), in the block's letters."""
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
            pos = ",".join(tex_index(p.names[w.t]) for w in c.windows)
            return (rf"$\sum_{{{pos}}}$ {head} $\otimes$ ${self.shifted(p, c)}$: "
                    f"${sc_text(r.terms)}$ outer products")
        return f"{names} carries axes {', '.join(letters)} together"

    @staticmethod
    def shifted(p: LatexIndexPrinter, c) -> str:
        """The tensor a correlation reads at the shifted positions: ``x^{2q+a}``, ``x^{q+a,r+b}``."""
        arith = ",".join(w.written(tex_index(p.names[w.t]), tex_index(p.names[w.a]) if w.a is not None else None)
                         for w in c.windows)
        x = c.factors[-1]
        if isinstance(x, Ref) and isinstance(x.name, Name):
            base, label = p.naming.tensor(x.name)
            return base + "^{" + (f"({label})," if label else "") + arith + "}"
        return "{" + p.short(x) + "}^{" + arith + "}"
