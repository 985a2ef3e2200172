"""docs/gallery.md puts the paper's Eqs. 1–9 beside derivations/deep_template.tex: keep it true.

Every formula the gallery quotes from einderiv's document is in the kept document, with
the equation number the gallery gives it (read from the document's compiled labels).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from pdfpages import compile_tex  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GALLERY = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
DOC = (ROOT / "derivations" / "deep_template.tex").read_text(encoding="utf-8")


def rows() -> dict[int, str]:
    """Eq. number → the einderiv cell of its row."""
    out = {}
    for line in GALLERY.splitlines():
        m = re.match(r"\| (\d) \| .* \| (\(\d+\).*) \|$", line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def test_gallery_has_one_line_per_equation():
    assert sorted(rows()) == list(range(1, 10))


def test_every_quoted_formula_is_in_the_document():
    """Each indexed formula of an einderiv cell, side by side and term by term, is the document's."""
    squeeze = re.sub(r"\s+", " ", DOC)
    checked = 0
    for eq, cell in rows().items():
        for formula in re.findall(r"\$([^$]+)\$", cell):
            if "_{" not in formula:
                continue  # a condition (k = l) or a name in a sentence
            for side in formula.split(" = "):
                for term in side.split(" + "):
                    assert term.strip() in squeeze, (eq, term)
                    checked += 1
    assert checked >= 20


def test_equation_numbers_are_the_documents(tmp_path):
    _, _ = compile_tex(DOC, tmp_path, "deep_template")
    labels = dict(re.findall(r"\\newlabel\{([^}]*)\}\{\{(\d+)\}", (tmp_path / "deep_template.aux").read_text()))
    number = {}  # the first formula of each quoted number, found at its label
    for line in DOC.splitlines():
        m = re.search(r"\\label\{([^}]*)\}", line)
        if m and m.group(1) in labels:
            number[labels[m.group(1)]] = m.group(1)
    for eq, cell in rows().items():
        for n in re.findall(r"\((\d+)\)", cell):
            assert n in number, (eq, n)
    # the rows name the right equations: Eq. 2 is β's, Eq. 4's own is η = α γ, Eq. 9 is w(k), w(r)
    assert number[re.match(r"\((\d+)\)", rows()[2]).group(1)].startswith("eq:def-beta")
    assert number[re.match(r"\((\d+)\)", rows()[9]).group(1)] == "eq:d-w-k-w-r"
    assert number[re.match(r"\((\d+)\)", rows()[7]).group(1)] == "eq:d-u-u"
