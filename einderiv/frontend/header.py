"""A network file's leading comment: its directives and its title.

The comment lines that open a file, before its first statement, may carry directives,
one per whole-line comment ``# einderiv: KEY VALUE`` (docs/notation.md, "Directives"):

    # einderiv: order 3          derive to third order (as --order 3 does)
    # einderiv: form compact     Hessian blocks through second-order adjoints (as --form compact)

A directive is the default of the option of the same name for every command (``derive``,
``latex``, ``structure``, ``codegen``, ``check``) and for the API's functions
(``derive(net)``, ``derivation_text(d)``, …); an option given on the command line, or an
argument given to the API, wins.

Everything else is an error (:class:`ParseError` at the directive's key or value, with the
line and a caret), never silently ignored: an unknown key, a bad value, a key given twice,
or a comment that starts with ``einderiv:`` after the first statement.

The first paragraph of the other opening comment lines is read for the file's *title*,
its first sentence, which ``einderiv latex`` puts at the top of the document (``# The
feedforward network of Table 1: ReLU hidden layers, …`` → ``The feedforward network of
Table 1``).

The parser reads the header once (``Module.header``); a checked :class:`Network` and a
:class:`Template` carry it as ``header``.

Example:
    >>> h = header("# einderiv: order 3\\n# A tiny net: two layers.\\ndims n = 2\\n", "a.ein")
    >>> h.order, h.form, h.title, str(h.where("order"))
    (3, None, 'A tiny net', 'a.ein:1:13')
    >>> header("dims n = 2\\n", "a.ein").directives
    ()
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import Location, ParseError

#: the Hessian forms a ``form`` directive may name (einderiv.calculus.derive.FORMS)
FORMS = ("expanded", "compact")
#: the keys a directive may set, and how a message spells each one's value
KEYS = {"order": "N", "form": "|".join(FORMS)}
#: a whole-line comment that is a directive: ``# einderiv: KEY VALUE``
_LINE = re.compile(r"(\s*#\s*einderiv\s*:\s*)(\S*)(\s*)(.*?)\s*$")
#: a title longer than this is cut at a comma (outside brackets) before it
TITLE_CHARS = 80


@dataclass(frozen=True)
class Directive:
    """``# einderiv: order 3`` → key ``order``, value ``3``, at the key's line and column."""

    key: str
    value: int | str
    loc: Location


@dataclass(frozen=True)
class Header:
    """What a file's leading comment says: its directives, in the order written, and its title."""

    directives: tuple[Directive, ...] = ()
    title: str = ""

    def get(self, key: str) -> int | str | None:
        """The value the file's directive gives ``key``, or None."""
        return next((d.value for d in self.directives if d.key == key), None)

    def where(self, key: str) -> Location | None:
        """Where the file's directive gives ``key`` (for messages), or None."""
        return next((d.loc for d in self.directives if d.key == key), None)

    @property
    def order(self) -> int | None:
        """``# einderiv: order N``, or None."""
        return self.get("order")

    @property
    def form(self) -> str | None:
        """``# einderiv: form expanded|compact``, or None."""
        return self.get("form")


def header(text: str, path: str) -> Header:
    """Read the directives and the title of network source ``text`` (``path`` only names it in
    messages; see the module docstring).  Raises :class:`ParseError` for a bad directive."""
    items: list[Directive] = []
    words: list[str] = []
    opening, in_title = True, True  # among the lines that open the file; in the title's paragraph
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            opening = False
            continue
        if not stripped:
            in_title = in_title and not words  # the title is the comment's first paragraph
            continue
        m = _LINE.match(line)
        if m is None:
            if opening and in_title:
                words.append(stripped.lstrip("#").strip())
            continue
        here = Location(path, number, len(m[1]) + 1)
        if not opening:
            raise _error(f"'# einderiv: {m[2]}' comes after the first statement; expected directives among "
                         "the comments that open the file", here, line)
        items.append(_directive(m, items, here, line))
    return Header(tuple(items), title(" ".join(w for w in words if w)))


def _directive(m: re.Match, items: list[Directive], here: Location, line: str) -> Directive:
    key, value = m[2], m[4]
    if key not in KEYS:
        expected = " or ".join(f"'{k} {v}'" for k, v in KEYS.items())
        raise _error(f"unknown directive '# einderiv: {key}'; expected {expected}", here, line)
    first = next((d for d in items if d.key == key), None)
    if first is not None:
        raise _error(f"repeated directive '# einderiv: {key}' (first given at line {first.loc.line}); "
                     "expected each directive once", here, line)
    at = Location(here.file, here.line, here.column + len(key) + len(m[3]))
    if key == "order":
        if not value.isdigit() or int(value) < 1:
            raise _error(f"'# einderiv: order {value}' needs a positive integer order; "
                         "expected e.g. '# einderiv: order 3'", at, line)
        return Directive(key, int(value), here)
    if value not in FORMS:
        raise _error(f"'# einderiv: form {value}' names no Hessian form; expected one of: {', '.join(FORMS)}",
                     at, line)
    return Directive(key, value, here)


def _error(message: str, loc: Location, line: str) -> ParseError:
    pad = "".join("\t" if ch == "\t" else " " for ch in line[: loc.column - 1])
    return ParseError(message, loc, f"{line}\n{pad}^")


def title(comment: str) -> str:
    """The first sentence of a comment, as a title: cut at ':', ';' or a full stop that ends a
    sentence; a long one at its last comma outside brackets before :data:`TITLE_CHARS`.

    >>> title("One step of a GRU cell (Cho et al. 2014) followed by a head: gates are products.")
    'One step of a GRU cell (Cho et al. 2014) followed by a head'
    """
    m = re.search(r"[:;]|\.(?=\s+[A-Z]|\s*$)", comment)
    head = (comment[:m.start()] if m else comment).strip()
    if len(head) <= TITLE_CHARS:
        return head
    depth, cut = 0, None
    for k, ch in enumerate(head[:TITLE_CHARS]):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            cut = k
    return head[:cut].strip() if cut else head
