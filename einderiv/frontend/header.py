"""A network file's leading comment: its directives and its title.

The comment lines before the first statement may carry directives, one per
line (docs/notation.md, "Directives"):

    # einderiv: order 3          derive to third order unless the caller says otherwise
    # einderiv: form compact     print Hessian blocks through second-order adjoints

and the first sentence of the rest of that comment is the file's *title*, what
``einderiv latex`` puts at the top of the document (``# The feedforward network
of Table 1: ReLU hidden layers, …`` → ``The feedforward network of Table 1``).

A directive that is not understood is an error at its line and column, as any
other bad input (``file:line:col: …``).

Example:
    >>> h = header("# einderiv: order 3\\n# A tiny net: two layers.\\ndims n = 2\\n", "a.ein")
    >>> h.order, h.form, h.title
    (3, None, 'A tiny net')
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import Location, ParseError

#: the Hessian forms a ``form`` directive may name (einderiv.calculus.derive.FORMS)
FORMS = ("expanded", "compact")
_DIRECTIVE = re.compile(r"#\s*einderiv\s*:\s*(?P<key>\S*)\s*(?P<value>.*?)\s*$")
#: a title longer than this is cut at a comma (outside brackets) before it
TITLE_CHARS = 80


@dataclass(frozen=True)
class Header:
    """What a file's leading comment says: the order and Hessian form to use, and its title."""

    order: int | None = None
    form: str | None = None
    title: str = ""


def header(text: str, path: str) -> Header:
    """Read the directives and the title of a file's leading comment (see the module docstring)."""
    order, form, words = None, None, []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            if words:
                break  # the title is the first paragraph of the comment
            continue
        if not stripped.startswith("#"):
            break
        m = _DIRECTIVE.match(stripped)
        if m is None:
            words.append(stripped.lstrip("#").strip())
            continue
        at = Location(path, number, line.index("#") + 1)
        key, value = m["key"], m["value"]
        if key == "order":
            if not value.isdigit() or int(value) < 1:
                raise ParseError(f"'# einderiv: order {value}' needs a positive integer order; "
                                 "expected e.g. '# einderiv: order 3'", at)
            order = int(value)
        elif key == "form":
            if value not in FORMS:
                raise ParseError(f"'# einderiv: form {value}' names no Hessian form; "
                                 f"expected one of: {', '.join(FORMS)}", at)
            form = value
        else:
            raise ParseError(f"unknown directive '# einderiv: {key}'; expected 'order N' or "
                             f"'form {'|'.join(FORMS)}'", at)
    return Header(order, form, title(" ".join(w for w in words if w)))


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
