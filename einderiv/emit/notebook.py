"""A derivation in a notebook: Markdown with MathJax math, and the blocks as one LaTeX display.

Jupyter shows an object through its ``_repr_markdown_`` / ``_repr_latex_``
(:class:`~einderiv.calculus.derivation.Derivation` and
:class:`~einderiv.analysis.template.GeneralForm` have both).  The calculus cannot
import the printers, so this module registers them in
:data:`einderiv.calculus.derivation.DISPLAYS` when it is imported (as ``import
einderiv`` does):

* ``markdown`` — the whole document (:class:`NotebookPrinter`): the LaTeX
  document printer's sections with Markdown headings and tables and ``$$``
  displays (``aligned``, no numbers: MathJax in a notebook keeps no labels);
* ``latex`` — the derivative blocks only (not their outer-product forms), one
  ``$$\\begin{aligned}…$$`` display.

A derivation is shown with its Hessian blocks in the form its file prints (expanded
unless it says ``# einderiv: form compact``), as ``einderiv latex`` does.

The names, letters and folding are the LaTeX document's (compact naming).
"""
from __future__ import annotations

import html

from typing import Sequence

from ..analysis.document import document
from ..analysis.general_document import general_document
from ..analysis.template import GeneralForm
from ..calculus.derivation import DISPLAYS
from ..calculus.derive import in_form
from .latex import LatexDocumentPrinter


class NotebookPrinter(LatexDocumentPrinter):
    """The LaTeX document printer with Markdown around the math (see the module docstring)."""

    printmethod = "_einderiv_notebook"

    def heading(self, title: str) -> str:
        return "\n### " + title.replace("~", " ").replace("--", "–") + "\n\n"

    def tt(self, name) -> str:
        return f"`{name}`"

    def para(self, text: str) -> str:
        return text.replace("~", " ").replace("--", "–") + "\n\n"

    def label(self, key: str) -> str:
        return ""

    def ref(self, key: str) -> str:
        return ""

    def numbered(self) -> str:
        return ""

    def nonumber(self) -> str:
        return ""

    def table(self, columns: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
        def line(cells):
            return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |\n"
        return line(head) + line(["---"] * len(head)) + "".join(line(r) for r in rows)

    def align(self, rows: Sequence[str]) -> str:
        return self.display(rows) if rows else ""

    def equation(self, lhs: str, terms, label: str) -> str:
        return self.display([line for row in self.equation_lines(lhs, terms) for line in row])

    @staticmethod
    def display(lines: Sequence[str]) -> str:
        return "$$\n\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}\n$$\n\n"

    def title(self, heading: str, what: str, path: str) -> str:
        # free text from the file: the title is HTML-escaped, the path kept inside its code span
        path = " ".join(str(path).split()).replace("`", "'")
        return f"## {html.escape(' '.join(heading.split()))}\n\n{what} — `{path}`\n\n"

    def _print_Document(self, doc) -> str:
        return "".join(self._print(s) for s in doc.sections)

    _print_GeneralDocument = _print_Document


class BlockCollector(NotebookPrinter):
    """Prints a document and keeps only its derivative blocks' lines (:func:`latex_blocks`)."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self.blocks: list[str] = []

    def equation(self, lhs: str, terms, label: str) -> str:
        self.blocks.append(" \\\\\n".join(line for row in self.equation_lines(lhs, terms) for line in row))
        return ""

    def _print_OuterFormsSection(self, s) -> str:
        return ""  # the blocks only: their outer-product forms are the document's


def markdown(obj) -> str:
    """A derivation (or a template's general form) as Markdown with math."""
    return NotebookPrinter().doprint(document_of(obj))


def latex_blocks(obj) -> str:
    """Every derivative block of a derivation (or general form) as one LaTeX display."""
    c = BlockCollector()
    c.doprint(document_of(obj))
    return "$$\n\\begin{aligned}\n" + " \\\\[6pt]\n".join(c.blocks) + "\n\\end{aligned}\n$$"


def document_of(obj):
    """The document model of a derivation (in the Hessian form its file prints) or of a layer
    template's general form."""
    if isinstance(obj, GeneralForm):
        return general_document(obj)
    return document(in_form(obj, obj.network.header.form or "expanded"))


DISPLAYS["markdown"] = markdown
DISPLAYS["latex"] = latex_blocks
