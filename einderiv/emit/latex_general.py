"""LaTeX of a layer template's general form: the parts of the document only a template has.

:class:`GeneralLatex` is a mixin of :class:`~einderiv.emit.latex.LatexDocumentPrinter`
with one ``_print_<Class>`` method per section and item of
:mod:`einderiv.analysis.general_document`: the title (the depth symbol, the depths the
formulas were checked at), the network as a table of families over layers (or
steps), the intermediates for generic layers (or steps) with the paper's Eqs. 2–4 (β, α, η = α γ^{(l)} and
the note on the paper's printed γ^{(k)}), and the blocks — each case of a family pair
an equation of its own, Eq. 9 as the shared terms and a ``\\begin{cases}`` split; a
recurrence's terms with their sums over steps ``\\sum_{t=3}^{T}\\sum_{\\tau=2}^{t-1}``.
It uses the document printer's hooks (``heading``, ``table``, ``align``,
``equation``, ``ref``, ``label``), so the notebook printer prints it too.
"""
from __future__ import annotations

from typing import Sequence

from ..analysis.document import FoldedTerm
from ..analysis.general_document import (CaseGroup, CaseSplit, GeneralBlocks, GeneralCase, GeneralIntermediates,
                                         GeneralTermItem, GeneralTitle, TemplateNetwork)
from ..ir import Ref
from .latex_expr import LatexIndexPrinter
from .latex_names import STEP_TEX
from .text import bound

GENERAL_BLOCK_TITLES = {1: "Gradients (Eqs.~5--6)", 2: "Hessian blocks (Eqs.~7--9)"}


def tex_cond(text: str) -> str:
    """A condition (``1 ≤ l < k ≤ n``, ``k = 1..n``, ``2 ≤ τ < t ≤ T``) in LaTeX."""
    for greek, tex in STEP_TEX.items():
        text = text.replace(greek, tex + " ")
    return text.replace("≥", r"\geq").replace("≤", r"\leq").replace("..", r",\dots,")


def step_tex(symbol: str) -> str:
    """A step symbol in LaTeX: ``τ`` → ``\\tau``."""
    return STEP_TEX.get(symbol, symbol)


def steps_tex(steps) -> str:
    """``\\sum_{t=3}^{T}\\sum_{\\tau=2}^{t-1}`` for a sum over steps (its ranges' bounds)."""
    return " ".join(r"\sum_{" + step_tex(r.symbol) + "=" + bound(r.lows, r"\max", step_tex) + "}^{"
                    + bound(r.highs, r"\min", step_tex) + "}" for r in steps)


def over_tex(over) -> str:
    """``\\sum_{m=max(k,r)+1}^{n}`` for a sum over layers."""
    lo, hi = (str(x).replace("max(k,r)", r"\max(k,r)") for x in over)
    return r"\sum_{m=" + lo + "}^{" + hi + "}"


class GeneralLatex:
    """The ``_print_<Class>`` methods for a template's general form (a mixin of the document printer)."""

    def _print_GeneralTitle(self, t: GeneralTitle) -> str:
        f = self.statement(()).f
        least = rf" \geq {min(t.checked)}" if t.checked and min(t.checked) > 1 else ""
        what = self.order_words(t.order) + f" of ${f}$ for any {t.what} ${t.depth}{least}$"
        steps = t.what == "length"
        return (self.title(t.heading or ("A recurrence" if steps else "A layer template"), what, t.path)
                + self.para(r"Index notation with the summation convention; bracketed layer labels are summed "
                            r"only where a $\sum$ says so. The formulas were read off the derivation at $"
                            + t.depth + f" = {t.reference}$" r" and reproduce the derivation exactly at $"
                            + t.depth + " = " + ", ".join(map(str, t.checked)) + r"$. $\partial " + f
                            + r"/\partial z$ is the back-propagated adjoint and "
                            + self.legend(("t", r"\tau") if steps else ("k", "l"))))

    def _print_TemplateNetwork(self, s: TemplateNetwork) -> str:
        rows = [[f"${s.depth}$", "Number of steps" if s.steps else "Number of hidden layers"]]
        for d in s.declarations:
            p = self.statement(d.indices)
            rows.append([f"${p._print(Ref(d.name, d.indices))}$",
                         self.declared_what(d) + self.shape(d, dict(s.dims))
                         + (f", ${tex_cond(d.range)}$" if d.range else "")])
        for d in s.nodes:
            p = self.statement(d.indices, [d.expr], walk=True)
            rows.append([f"${p._print(Ref(d.name, d.indices))} = {p._print(d.expr)}$",
                         f"${tex_cond(d.cond)}$" if d.cond else ""])
        head = (f"Network (a recurrence over ${s.steps} = 1,\\dots,{s.depth}$)" if s.steps
                else "Network (layer template)")
        return self.heading(head) + self.quantities(rows)

    def _print_GeneralIntermediates(self, s: GeneralIntermediates) -> str:
        what = "generic steps (back-propagation through time)" if s.steps else "generic layers"
        out = self.heading(r"Intermediates (Eqs.~1--4), for " + what) + self.align(self._print(s.defs))
        if s.paper is None:
            return out
        last = s.paper.items[-1]
        eq4 = self.ref(self.def_label(last.name, last.cond)) or "the last row"
        return (out + r"In the paper's terms, with $\beta^{(k)} = \partial v^{(k)}/\partial v^{(k-1)}$ and "
                r"$\alpha^{(k,l)} = \partial v^{(k)}/\partial v^{(l)}$ (Eqs.~2--3):" + "\n"
                + self.align(self._print(s.paper))
                + r"The paper prints Eq.~4 with $\gamma^{(k)}$; the Jacobian of layer $k$ by the argument of "
                r"layer $l$ needs $\gamma^{(l)}$, as " + eq4 + r" has it (and as the recurrence above gives)."
                + "\n\n")

    def _print_GeneralBlocks(self, s: GeneralBlocks) -> str:
        return self.heading(GENERAL_BLOCK_TITLES[s.order]) + "".join(self._print(g) for g in s.groups)

    def _print_GeneralTermItem(self, t: GeneralTermItem, printer: LatexIndexPrinter, out) -> str:
        """A term on one line (inside a case of Eq. 9), with its Σ over layers or over steps."""
        body = printer.term(t.term, out)
        if t.steps:
            return steps_tex(t.steps) + " " + body
        return body if t.over is None else over_tex(t.over) + " " + body

    def general_terms(self, p, terms: Sequence[GeneralTermItem], out) -> list[list[str]]:
        """Each term's pieces (:meth:`term_pieces`), a Σ over layers or steps in its head; ``= 0`` without terms."""
        pieces = []
        for k, t in enumerate(terms):
            item = self.term_pieces(p, FoldedTerm(t.term), out, k)
            if t.over is not None or t.steps:
                head, groups = item[0], item[1:]
                summed = steps_tex(t.steps) if t.steps else over_tex(t.over)
                item = [" ".join(filter(None, (head[:1], summed, head[1:].strip())))] + groups
            pieces.append(item)
        return pieces or [["= 0"]]

    def _print_CaseGroup(self, g: CaseGroup) -> str:
        return "".join(self._print(c) for c in g.cases)

    def _print_GeneralCase(self, c: GeneralCase) -> str:
        p = self.statement(c.indices, c.exprs, walk=True)
        terms = self.general_terms(p, c.terms, c.indices)
        if c.cond:
            terms[0][-1] += r" \qquad (" + tex_cond(c.cond) + ")"
        if c.paper is not None:
            terms.append(["= " + " + ".join(self._print(t, printer=p, out=c.indices) for t in c.paper)])
        label = self.labels("d", *[r.name for r in c.params], c.cond)
        out = self.equation(self.lhs(p, c.params), terms, label)
        if c.paper is not None:
            out += self.para(f"The second line of {self.ref(label) or 'this gradient'} is the paper's Eq.~6.")
        return out

    def _print_CaseSplit(self, c: CaseSplit) -> str:
        p = self.statement(c.indices, c.exprs, walk=True)
        terms = self.general_terms(p, c.common, c.indices) if c.common else []
        arms = []
        for a in c.arms:
            pa = self.statement(a.indices, a.exprs, walk=True)
            body = [self._print(t, printer=pa, out=a.indices) for t in a.terms] or ["0"]
            text = (r"\begin{aligned}[t] &" + r" \\ &+ ".join(body) + r"\end{aligned}") if len(body) > 1 else body[0]
            arms.append(text + " & " + tex_cond(a.cond))
        cases = r"\begin{cases} " + r" \\[4pt] ".join(arms) + r" \end{cases}"
        terms.append([("+ " if terms else "= ") + cases])
        return self.equation(self.lhs(p, c.params), terms, self.labels("d", *[r.name for r in c.params]))
