"""LaTeX layout: the preamble, equation labels, and how a long formula is folded to fit the page.

The documents are ``article``s at 10 pt on US letter with 2 cm margins
(:data:`PREAMBLE`): a text block :data:`LINE_PT` wide.  A display never
overflows it: :func:`tex_width` estimates how wide a piece of math is (from
the widths of Computer Modern's glyphs, rounded up), and :func:`fold` breaks a
term's outer-product factors over as many lines as it needs, each
continuation indented further than a new term so it reads as one.  Every
derivative block is one numbered equation that LaTeX keeps on one page
(``equation`` + ``split``); definitions are numbered rows of an ``align``,
which may break between rows.  :class:`Labels` gives each equation a stable
``\\label`` the text refers to with ``\\eqref``.  A section heading is kept
with what follows it (:data:`KEEP`, a conditional page break).

The estimates are checked by the tests: every kept document is compiled and
rendered, and no glyph may lie outside the text block.
"""
from __future__ import annotations

import re
from typing import Sequence

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage{amsmath}
\usepackage{amssymb}
\usepackage{array}
\usepackage{longtable}
\usepackage[letterpaper,margin=2cm]{geometry}
\allowdisplaybreaks
\setlength{\topskip}{24pt}
% the last line of a page keeps its descenders inside the text block (a long table's row too)
\setlength{\maxdepth}{1pt}
\makeatletter
% \keep{N}: start a new page unless N lines fit on this one (a heading stays with what follows)
\newcommand{\keep}[1]{\par\penalty-100\begingroup\dimen@=#1\baselineskip
  \dimen@ii=\pagegoal\advance\dimen@ii-\pagetotal
  \ifdim\dimen@>\dimen@ii\ifdim\dimen@ii>\z@\vfil\fi\penalty-\@M\fi\endgroup}
\makeatother
"""
#: the lines a section heading needs after it on the same page
KEEP = 8
#: the text block's height in points (letter paper, 2 cm margins), and what one equation may use
PAGE_PT = 678.0
EQUATION_PT = PAGE_PT - 60.0
#: the text block's width in points (letter paper, 2 cm margins)
LINE_PT = 498.0
#: what a display line may use: the text block less the equation number and some air
DISPLAY_PT = LINE_PT - 42.0

# widths of Computer Modern at 10 pt, rounded up (points)
_CHAR = 5.6  # an italic letter or a digit
_WIDE = {"W": 9.5, "m": 8.8, "M": 9.8, "U": 7.0, "V": 6.0, "H": 8.3, "K": 8.4, "Q": 7.9, "w": 7.2}
_BIN = 12.3  # a binary operator with its spaces (+, -, \otimes)
_REL = 13.9  # a relation with its spaces (=)
_COMMANDS = {
    "partial": 5.8, "otimes": _BIN, "sum": 14.5, "quad": 10.0, "qquad": 20.0, ",": 1.7, "!": -1.7,
    ";": 2.8, "dots": 13.4, "cdot": _BIN, "times": _BIN, "leq": _REL, "geq": _REL, "in": _REL,
    "delta": 4.5, "gamma": 5.2, "eta": 5.0, "theta": 4.7, "sigma": 5.7, "tau": 4.4, "alpha": 6.4,
    "beta": 5.7, "log": 13.4, "exp": 15.1, "tanh": 21.7, "sinh": 20.0, "cosh": 20.0, "max": 18.0,
    "sqrt": 8.4, "mathcal": 0.0, "mathbf": 0.0, "hat": 0.0, "left": 0.0, "right": 0.0, "bigl": 0.0,
    "bigr": 0.0, "text": 0.0, "mathrm": 0.0, "mathit": 0.0, "operatorname": 0.0, "tilde": 0.0,
}
#: the size factor of a superscript or subscript
_SCRIPT = 0.72


def tex_width(tex: str) -> float:
    """A generous estimate of the width of LaTeX math, in points at 10 pt.

    >>> round(tex_width(r"W^{(1),j}_{i}")), round(tex_width(r"\\frac{\\partial f}{\\partial p_{l}}"))
    (23, 17)
    """
    return _width(tex, 0)[0]


def _group(tex: str, at: int) -> tuple[str, int]:
    """The braced group (or single token) at ``at``: its text and the position after it."""
    while at < len(tex) and tex[at] == " ":
        at += 1
    if at >= len(tex):
        return "", at
    if tex[at] != "{":
        if tex[at] == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[at:])
            return m.group(0), at + len(m.group(0))
        return tex[at], at + 1
    depth, k = 0, at
    while k < len(tex):
        depth += tex[k] == "{"
        depth -= tex[k] == "}"
        if depth == 0:
            return tex[at + 1:k], k + 1
        k += 1
    return tex[at + 1:], len(tex)


def _width(tex: str, at: int) -> tuple[float, int]:
    total, k = 0.0, at
    last_script = None  # (mark, width) of the script just set, to overlap ^ and _
    while k < len(tex):
        ch = tex[k]
        if ch in "^_":
            body, k = _group(tex, k + 1)
            w = _width(body, 0)[0] * _SCRIPT
            if last_script is not None and last_script[0] != ch:
                total += max(0.0, w - last_script[1])
                last_script = None
            else:
                total += w
                last_script = (ch, w)
            continue
        last_script = None
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[k:])
            name, k = m.group(1), k + len(m.group(0))
            if name == "frac":
                num, k = _group(tex, k)
                den, k = _group(tex, k)
                total += max(tex_width(num), tex_width(den)) + 2.4
            elif name in ("mathrm", "operatorname", "text", "mathit"):
                body, k = _group(tex, k)
                total += len(re.sub(r"\\.", "", body)) * _CHAR + (3.4 if name == "operatorname" else 0.0)
            elif name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr"):
                k += 1  # the delimiter
                total += 3.9
            elif name in ("hat", "mathbf", "mathcal", "tilde"):
                body, k = _group(tex, k)
                total += tex_width(body) + (1.0 if name == "mathbf" else 0.0)
            else:
                total += _COMMANDS.get(name, _CHAR)
            continue
        if ch in "{} \n&":
            k += 1
            continue
        if ch in "+-":
            total += _BIN
        elif ch == "=":
            total += _REL
        elif ch == ",":
            total += 4.5
        elif ch in "()[]|":
            total += 3.9
        else:
            total += _WIDE.get(ch, _CHAR)
        k += 1
    return total, k


def line_height(tex: str) -> float:
    """A generous estimate of a display line's height with its spacing (points), measured on
    rendered lines: a sum (its limits below and above), a fraction, or a line of symbols."""
    if "\\sum" in tex or "\\begin{cases}" in tex:
        return 36.0
    if "\\frac" in tex:
        return 29.0
    return 19.0


def piece_text(piece: str | tuple[str, str]) -> str:
    """A piece of a folded formula as text (a piece with its own separator: the two joined)."""
    return piece if isinstance(piece, str) else piece[0] + piece[1]


def fold(first: str, pieces: Sequence[str | tuple[str, str]], sep: str, room: float, more: float) -> list[str]:
    """``first`` then ``pieces`` joined by ``sep``, over as many lines as it takes: the first line
    holds ``room`` points, each further one ``more`` (it is indented further) and starts with ``sep``.
    A piece ``(own, text)`` is joined by its own separator (a summand of a sum opened over lines).

    >>> fold("a", ["b", "c"], " + ", 1000.0, 1000.0)
    ['a + b + c']
    >>> fold("(a", [(" + ", "b)"), "c"], r" \\otimes ", 30.0, 30.0)
    ['(a', '+ b)', '\\otimes c']
    """
    lines: list[str] = [first]
    budget = room - tex_width(first)
    for piece in pieces:
        join, p = (sep, piece) if isinstance(piece, str) else piece
        w = tex_width(join + p)
        if lines[-1] and w > budget:
            lines.append(join.lstrip() + p)
            budget = more - w
        else:
            lines[-1] = (lines[-1] + join + p) if lines[-1] else p
            budget -= w
    return lines


class Labels:
    """``\\label`` keys for the equations of one document: from the names they define, made
    unique in the order they are asked for (``eq:adj-z-v1``, ``eq:d2-W1-W2``)."""

    def __init__(self):
        self.given: dict[str, str] = {}
        self.used: set[str] = set()

    def __call__(self, kind: str, *names) -> str:
        key = kind + ":" + ":".join(map(str, names))
        if key not in self.given:
            base = "eq:" + re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-")
            label, n = base, 1
            while label in self.used:
                n += 1
                label = f"{base}-{n}"
            self.used.add(label)
            self.given[key] = label
        return self.given[key]
