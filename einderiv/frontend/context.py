"""What the checker knows about a file while it reads it: sizes, tensor shapes, families, functions.

:class:`Context` is the state :mod:`.check` builds statement by statement (dimensions,
declarations, user functions, the shape of each definition once resolved) and
:mod:`.summation` reads when it turns one definition's right side into IR.  It also
holds the helpers both word their messages with: locations, identifier rules, and
sizes shown with their values (``n1 (5)``).

Example:
    >>> c = Context("t.ein", "")
    >>> c.sizes["n"] = 3
    >>> c.show(dim_symbol("n")), c.same(dim_symbol("n"), sympy.Integer(3))
    ('n (3)', True)
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import sympy

from . import syntax as S
from ..errors import Location, NameError_
from ..ir import Name
from .builtins import BUILTINS
from .families import Families
from .network import dim_symbol

IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
#: shown in "known functions" lists; `reciprocal` is internal (division)
PUBLIC_BUILTINS = tuple(sorted(n for n in BUILTINS if n != "reciprocal"))
#: ``sum_i(…)``, ``mean_i(…)``, ``softmax_k(…)``, ``max_k``, ``min_k``, ``logsumexp_k``: a reduction
#: over the index after the ``_`` (the lexer reads ``sum_i(`` as one call name, since tensor names
#: cannot contain ``_``)
REDUCTIONS = ("sum", "mean", "softmax", "max", "min", "logsumexp")
REDUCTION = re.compile(r"(sum|mean|softmax|max|min|logsumexp)_(.+)\Z")


@dataclass(frozen=True)
class Shape:
    """What a use of a tensor is checked against."""

    dims: tuple[sympy.Expr, ...]
    written: str  # "W1^j_i"
    kind: str  # "declaration" or "definition"
    line: int
    role: str = ""  # for declarations

    @property
    def where(self) -> str:
        if self.kind == "declaration":
            return f"declared as {self.role} at line {self.line}"
        return f"defined at line {self.line}"


def fmt(names) -> str:
    """``{i, j}``: a set of index names in a message."""
    return "{" + ", ".join(names) + "}"


def number(text: str) -> sympy.Rational:
    """A numeric literal, exactly: ``Rational("0.5") == 1/2``, ``Rational("1e-3") == 1/1000``."""
    return sympy.Rational(text)


class Context:
    """Sizes, shapes, families and user functions known so far in one file."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.sizes: dict[str, int | None] = {}  # dimension → size (None: symbolic)
        self.arity: dict[str, int] = {}  # user function → number of parameters
        self.shapes: dict[Name, Shape] = {}  # declared and (once resolved) defined tensors
        self.bodies: dict[str, sympy.Expr] = {}  # user functions, for folding calls on numbers
        self.fam = Families(path, self.sizes)
        #: tensors read as zero outside their axes (``padded x``): base name → where it was said
        self.padded: dict[str, S.Node] = {}

    # ------------------------------------------------------------ messages
    def loc(self, node: S.Node) -> Location:
        return Location(self.path, node.line, node.column)

    def at(self, line: int, column: int) -> Location:
        return Location(self.path, line, column)

    def ident(self, name: str | Name, what: str, node: S.Node) -> None:
        """Names reach generated code: only plain identifiers, never keywords."""
        if isinstance(name, Name):  # a family member h(3): its base name
            name = name.base
        if not IDENT.match(name):
            raise NameError_(f"'{name}' is not a valid {what} name; expected a letter followed by "
                             "letters, digits or '_'", self.loc(node))
        if keyword.iskeyword(name):
            article = "an" if what[0] in "aeiou" else "a"
            raise NameError_(f"'{name}' is a Python keyword and cannot name {article} {what}; choose another name",
                             self.loc(node))

    # --------------------------------------------------------------- sizes
    def value(self, dim: sympy.Expr) -> int | None:
        """The number a size stands for, or None while it is symbolic."""
        if dim.is_Integer:
            return int(dim)
        if dim.is_Symbol:
            return self.sizes.get(str(dim))
        v = dim.xreplace({dim_symbol(n): s for n, s in self.sizes.items() if s is not None})
        return int(v) if v.is_Integer else None  # a window's position count, N - A + 1

    def same(self, a: sympy.Expr, b: sympy.Expr) -> bool:
        """Symbolically equal, or both known and numerically equal."""
        if a == b:
            return True
        va, vb = self.value(a), self.value(b)
        return va is not None and va == vb

    def show(self, dim: sympy.Expr) -> str:
        """A size as messages show it: ``3``, ``n1 (5)``, or ``n`` while symbolic."""
        v = self.value(dim)
        if dim.is_Integer:
            return str(dim)
        return f"{dim} ({v})" if v is not None else str(dim)
