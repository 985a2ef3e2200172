"""Directives: comment lines that open a network file and set a default for every command.

    # einderiv: order 3          derive to third order (as --order 3 does)
    # einderiv: form compact     Hessian blocks through second-order adjoints (as --form compact)

A directive is a whole-line comment ``# einderiv: KEY VALUE`` among the comments that
open the file, before its first statement.  It is the default of the option of the
same name for every command (``derive``, ``latex``, ``structure``, ``codegen``,
``check``) and for the API's functions (``derive(net)``, ``derivation_text(d)``, …); an
option given on the command line, or an argument given to the API, wins.

Everything else is an error (:class:`ParseError`, located at the directive), never
silently ignored: an unknown key, a bad value, a key given twice, or a comment that
starts with ``einderiv:`` after the first statement.

Example:
    >>> d = read("# einderiv: order 3\\n# einderiv: form compact\\ndims n = 2\\n", "a.ein")
    >>> d.order, d.form, str(d.where("order"))
    (3, 'compact', 'a.ein:1:13')
    >>> read("dims n = 2\\n", "a.ein").order is None
    True
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import Location, ParseError

#: the keys a directive may set, with what their value must be (for messages)
KEYS = {"order": "a positive integer", "form": "'expanded' or 'compact'"}
FORMS = ("expanded", "compact")

#: a whole-line comment that is a directive: ``# einderiv: KEY VALUE``
_LINE = re.compile(r"(\s*#\s*einderiv\s*:\s*)(\S*)(\s*)(.*?)\s*$")


@dataclass(frozen=True)
class Directive:
    """``# einderiv: order 3`` → key ``order``, value ``3``, at the key's line and column."""

    key: str
    value: int | str
    loc: Location


@dataclass(frozen=True)
class Directives:
    """The directives of one file, in the order written (none: every value is None)."""

    items: tuple[Directive, ...] = ()

    def get(self, key: str) -> int | str | None:
        """The value the file gives ``key``, or None."""
        return next((d.value for d in self.items if d.key == key), None)

    def where(self, key: str) -> Location | None:
        """Where the file gives ``key`` (for messages), or None."""
        return next((d.loc for d in self.items if d.key == key), None)

    @property
    def order(self) -> int | None:
        """``# einderiv: order N``."""
        return self.get("order")

    @property
    def form(self) -> str | None:
        """``# einderiv: form expanded|compact``."""
        return self.get("form")


def read(text: str, path: str) -> Directives:
    """The directives of network source ``text`` (``path`` only names it in messages).

    Raises :class:`ParseError` with the line and a caret for a bad directive.
    """
    items: list[Directive] = []
    opening = True  # still among the blank and comment lines that open the file
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            opening = False
            continue
        m = _LINE.match(line)
        if not m:
            continue
        column = len(m[1]) + 1
        here = Location(path, number, column)
        if not opening:
            raise _error("a directive must come before the first statement, among the comments that "
                         "open the file", here, line)
        key, value = m[2], m[4]
        if key not in KEYS:
            expected = "; ".join(f"'einderiv: {k} …' ({v})" for k, v in KEYS.items())
            raise _error(f"unknown directive '{key}'; expected one of: {expected}", here, line)
        first = next((d for d in items if d.key == key), None)
        if first is not None:
            raise _error(f"repeated directive '{key}' (first given at line {first.loc.line})", here, line)
        items.append(Directive(key, _value(key, value, Location(path, number, column + len(key) + len(m[3])),
                                           line), here))
    return Directives(tuple(items))


def _value(key: str, value: str, loc: Location, line: str) -> int | str:
    if key == "order":
        if value.isdigit() and int(value) >= 1:
            return int(value)
    elif value in FORMS:
        return value
    raise _error(f"directive '{key}' needs {KEYS[key]}, got '{value}'", loc, line)


def _error(message: str, loc: Location, line: str) -> ParseError:
    pad = "".join("\t" if ch == "\t" else " " for ch in line[: loc.column - 1])
    return ParseError(message, loc, f"{line}\n{pad}^")
