"""Compile a LaTeX document and measure its pages: what the layout tests read.

:func:`compile_tex` runs pdflatex twice (the second run resolves ``\\eqref``) and
returns the log of the last run; :func:`pages` renders each page to a grey
image with ``pdftoppm`` (poppler-utils) and :func:`measure` reads, for each
page, where its ink is against the text block of the documents' geometry
(US letter, 2 cm margins: :mod:`einderiv.emit.latex_layout`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

PAGE_PT = (612.0, 792.0)  # US letter
MARGIN_PT = 2 / 2.54 * 72
DPI = 50
#: how far (points) ink may stray past the text block before it counts as outside it (a pixel at
#: DPI is 1.44 pt).  At the top edge TeX sets a page's first box flush with the block, and the
#: glyphs of a display (a fraction's ∂²) overshoot their box by up to about 3.5 pt: TOP_PT there.
TOLERANCE_PT = 2.0
TOP_PT = 4.5
#: the page number: centred under the text block, within this box (points)
FOOTER_PT = (40.0, 45.0)


def _need(names: tuple[str, ...]) -> tuple[str, ...]:
    """The tools' paths, or a skip (a failure on CI, which installs them)."""
    found = tuple(shutil.which(n) for n in names)
    if None in found:
        missing = ", ".join(n for n, f in zip(names, found) if f is None)
        if os.environ.get("CI"):
            pytest.fail(f"{missing} not installed (CI must install texlive and poppler-utils)")
        pytest.skip(f"{missing} not on PATH")
    return found


def tools() -> tuple[str, str]:
    """pdflatex and pdftoppm, or a skip (a failure on CI, which installs them)."""
    return _need(("pdflatex", "pdftoppm"))


def page_lines(pdf: Path) -> list[list[str]]:
    """The text lines of each page (pdftotext, poppler-utils), blank lines and the page number dropped."""
    (exe,) = _need(("pdftotext",))
    text = subprocess.run([exe, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True,
                          timeout=300).stdout
    pages = []
    for page in text.split("\f"):
        lines = [ln.strip() for ln in page.splitlines() if ln.strip()]
        if lines and lines[-1].isdigit():
            lines.pop()
        pages.append(lines)
    return [p for p in pages if p]


def compile_tex(tex: str, workdir: Path, name: str = "doc") -> tuple[Path, str]:
    """Write and compile ``tex`` twice in ``workdir``: (the PDF, the last run's log)."""
    pdflatex, _ = tools()
    (workdir / f"{name}.tex").write_text(tex, encoding="ascii")
    for _ in range(2):
        run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                             cwd=workdir, capture_output=True, text=True, timeout=300)
        log = (workdir / f"{name}.log").read_text(errors="replace")
        assert run.returncode == 0, log[-3000:]
    return workdir / f"{name}.pdf", log


def warnings(log: str) -> list[str]:
    """The log's warnings and bad boxes, but for the one every untitled-author article has."""
    lines = log.replace("\n(", " (").split("\n")
    bad = [ln for ln in lines if ("Warning" in ln or "Overfull" in ln or "Underfull" in ln)
           and "No \\author given" not in ln]
    return bad


def pages(pdf: Path, dpi: int = DPI) -> list[np.ndarray]:
    """Each page as a grey image (0 black … 255 white)."""
    _, pdftoppm = tools()
    prefix = pdf.with_name(pdf.stem + "-page")
    subprocess.run([pdftoppm, "-gray", "-r", str(dpi), str(pdf), str(prefix)], check=True, timeout=300)
    out = []
    for f in sorted(pdf.parent.glob(prefix.name + "-*.pgm"), key=lambda p: int(p.stem.rsplit("-", 1)[1])):
        data = f.read_bytes()
        magic, w, h, maxval, rest = data.split(maxsplit=4)
        assert magic == b"P5" and int(maxval) == 255
        out.append(np.frombuffer(rest[: int(w) * int(h)], dtype=np.uint8).reshape(int(h), int(w)))
    return out


@dataclass(frozen=True)
class Page:
    """Where a page's ink is: the fraction of the text block's height it fills (from the top of the
    block to the lowest ink), and the ink outside the block (pixels, and where the first one is, in points)."""

    number: int
    full: float
    outside: int
    first_outside: tuple[float, float] | None


def measure(image: np.ndarray, number: int, dpi: int = DPI) -> Page:
    scale = dpi / 72.0
    h, w = image.shape
    ink = image < 160
    left, right = MARGIN_PT * scale, (PAGE_PT[0] - MARGIN_PT) * scale
    top, bottom = MARGIN_PT * scale, (PAGE_PT[1] - MARGIN_PT) * scale
    tol = TOLERANCE_PT * scale
    ys, xs = np.nonzero(ink)
    footer = ((np.abs(xs - w / 2) <= FOOTER_PT[0] * scale) & (ys > bottom) & (ys <= bottom + FOOTER_PT[1] * scale))
    out = ((xs < left - tol) | (xs > right + tol) | (ys < top - TOP_PT * scale) | (ys > bottom + tol)) & ~footer
    body = ys[(ys >= top - tol) & (ys <= bottom + tol)]
    full = float((body.max() - top) / (bottom - top)) if body.size else 0.0
    first = (float(xs[out][0] / scale), float(ys[out][0] / scale)) if out.any() else None
    return Page(number, full, int(out.sum()), first)


def layout(pdf: Path) -> list[Page]:
    """Every page of a PDF, measured."""
    return [measure(img, k + 1) for k, img in enumerate(pages(pdf))]
