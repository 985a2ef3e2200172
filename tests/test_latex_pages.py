"""Every kept LaTeX document compiles cleanly and lies well on its pages.

Each ``derivations/*.tex`` is compiled with pdflatex (twice: the second run
resolves ``\\eqref``); its log may hold no warning but "No \\author given" and
no overfull or underfull box.  Each page is then rendered with pdftoppm
(:mod:`pdfpages`) and measured: no page before the last is less than 10% full
(a heading or an equation pushed on alone would leave one nearly empty), and
no glyph lies outside the text block (a formula running into the margin or off
the page).  CI installs both tools (``.ci/run``); elsewhere the tests skip
without them.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from pdfpages import compile_tex, layout, measure, page_lines, warnings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEPT = sorted((ROOT / "derivations").glob("*.tex"))
#: the least a page before the last must be filled (fraction of the text block's height)
LEAST_FULL = 0.10


@pytest.mark.parametrize("path", KEPT, ids=lambda p: p.stem)
def test_kept_document_compiles_without_warnings_and_fits_its_pages(path, tmp_path):
    pdf, log = compile_tex(path.read_text(encoding="utf-8"), tmp_path, path.stem)
    assert warnings(log) == []
    pages = layout(pdf)
    assert pages
    sparse = [(p.number, round(p.full, 3)) for p in pages[:-1] if p.full < LEAST_FULL]
    assert not sparse, f"pages less than {LEAST_FULL:.0%} full before the last: {sparse}"
    outside = [(p.number, p.outside, p.first_outside) for p in pages if p.outside]
    assert not outside, f"ink outside the text block (page, pixels, first at x,y pt): {outside}"
    headings = {h.replace("~", " ").replace("--", "–") for h in re.findall(r"\\section\*\{(.*)\}", path.read_text())}
    lines = page_lines(pdf)
    assert len(lines) == len(pages)
    stranded = [(k + 1, ln) for k, page in enumerate(lines[:-1]) for ln in page[-2:] if ln in headings]
    assert not stranded, f"a heading at the foot of a page, its content on the next: {stranded}"


def test_the_measure_sees_overflow_and_empty_pages(tmp_path):
    """The measure is not blind: a line running off the right margin, and a page with one line."""
    tex = (r"\documentclass[10pt]{article}\usepackage[letterpaper,margin=2cm]{geometry}\begin{document}"
           r"\noindent\hbox to 1.08\textwidth{x\hfil x}\newpage short\newpage last\end{document}")
    pdf, log = compile_tex(tex, tmp_path, "bad")
    assert any("Overfull" in w for w in warnings(log))
    pages = layout(pdf)
    assert pages[0].outside > 0 and pages[0].first_outside[0] > 500
    assert pages[1].full < LEAST_FULL and pages[1].outside == 0


def test_measure_of_a_blank_page():
    import numpy as np
    assert measure(np.full((550, 425), 255, dtype=np.uint8), 1).full == 0.0


def test_the_reader_sees_a_stranded_heading(tmp_path):
    """A heading pushed to the foot of a page by LaTeX's own rules is what the test above looks for."""
    filler = r"\par ".join(["text"] * 49)
    tex = (r"\documentclass[10pt]{article}\usepackage[letterpaper,margin=2cm]{geometry}\begin{document}"
           + filler + r"\section*{Lonely}\nopagebreak[0]\vspace*{40pt}\begin{center}\rule{1pt}{300pt}\\ after\end{center}"
           r"\end{document}")
    pdf, _ = compile_tex(tex, tmp_path, "stranded")
    lines = page_lines(pdf)
    assert len(lines) == 2 and "Lonely" in lines[0][-2:]
