"""Surface syntax tree of a network file: what :mod:`einderiv.frontend.parse` produces.

Nodes are frozen dataclasses that record the 1-based ``line`` and ``column``
of the token they start at.  Nothing here is checked yet: names may be
undefined, indices may not add up.  :mod:`einderiv.frontend.check` turns a
:class:`Module` into a :class:`~einderiv.frontend.network.Network`; it never
changes a node (names stay the text written: the checker builds the
:class:`~einderiv.ir.Name` values, family members included, beside the tree).

Index groups are already split into single indices (``^jk`` → j, k;
``^{c,u}`` → c, u); whether an index was written up or down is kept in
``Idx.up`` for printing only — it has no meaning (see docs/notation.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .header import Header


@dataclass(frozen=True)
class Node:
    line: int
    column: int


@dataclass(frozen=True)
class Idx(Node):
    """One index occurrence, e.g. the ``i`` of ``W1^j_i``."""

    name: str
    up: bool
    #: index arithmetic ``2t+a`` → ((2, 't'), (1, 'a')); empty for a plain index
    terms: tuple[tuple[int, str], ...] = ()
    #: the constant of index arithmetic: ``t-1`` → -1 (terms ((1, 't'),))
    const: int = 0


@dataclass(frozen=True)
class Label(Node):
    """Integer arithmetic in family variables and sizes: ``t-1`` → const -1, terms (('t', 1),)."""

    const: int
    terms: tuple[tuple[str, int], ...]

    def text(self) -> str:
        out = ""
        for name, c in self.terms:
            sign = "-" if c < 0 else ("+" if out else "")
            out += sign + (f"{abs(c)}" if abs(c) != 1 else "") + name
        if self.const or not out:
            out += (("+" if self.const > 0 and out else "-" if self.const < 0 else "") + str(abs(self.const)))
        return out


@dataclass(frozen=True)
class Range(Node):
    """``for t = 1..T``: a declaration or definition unrolled over a label range."""

    var: str
    lo: Label
    hi: Label


# ------------------------------------------------------------------ statements
@dataclass(frozen=True)
class DimItem(Node):
    """``n0 = 4`` (size 4) or ``h`` (size None: symbolic) inside ``dims``."""

    name: str
    size: int | None


@dataclass(frozen=True)
class Dims(Node):
    items: tuple[DimItem, ...]


@dataclass(frozen=True)
class Depth(Node):
    """``depth n``: a number of layers, symbolic unless given (``depth n = 3``, ``--depth n=3``)."""

    item: DimItem


@dataclass(frozen=True)
class Size(Node):
    """One entry of a declared shape: a dimension name or an integer literal."""

    name: str | None
    value: int | None


@dataclass(frozen=True)
class Decl(Node):
    """``weight W1^j_i : n1, n0``; ``shape`` is None when no ``:`` was written."""

    role: str  # as written: input, label, weight or bias
    name: str  # as written; a family's members (``x(3)``) are the checker's Names
    indices: tuple[Idx, ...]
    shape: tuple[Size, ...] | None
    label: Label | None = None  # ``x(t)``: a family member
    range: Range | None = None
    domain: Domain | None = None  # ``input s^i : n positive``
    name_column: int = 0  # where the name starts (the node's own column is the role's)


@dataclass(frozen=True)
class Domain(Node):
    """The values a data tensor takes: ``positive``, ``probability`` (sums to 1 along its last
    axis) or ``onehot`` (one 1 along its last axis)."""

    kind: str


@dataclass(frozen=True)
class Param(Node):
    name: str


@dataclass(frozen=True)
class FunctionDef(Node):
    """``function swish(z) = z * sigmoid(z)``; ``body`` is SymPy text."""

    name: str
    params: tuple[Param, ...]
    body: str
    body_line: int
    body_column: int


@dataclass(frozen=True)
class Assign(Node):
    """``v1^j = relu(W1^j_i x^i)``: a definition."""

    name: str  # as written; a family's members (``h(3)``) are the checker's Names
    indices: tuple[Idx, ...]
    expr: "Expr"
    label: Label | None = None  # ``h(t)``: a family member
    range: Range | None = None


@dataclass(frozen=True)
class Padded(Node):
    """``padded x, v1``: reads of these tensors outside their axes are zero (zero padding)."""

    names: tuple["Use", ...]


Statement = Union[Dims, Depth, Decl, FunctionDef, Assign, Padded]


@dataclass(frozen=True)
class Module(Node):
    statements: tuple[Statement, ...]
    header: Header = Header()  # the leading comment's directives and title (:mod:`.header`)


# ----------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Use(Node):
    """A tensor with the indices written after it (``()`` for a bare name)."""

    name: str
    indices: tuple[Idx, ...]


@dataclass(frozen=True)
class Number(Node):
    text: str


@dataclass(frozen=True)
class Call(Node):
    """``relu(z^j)``; with ``indices`` (``h(t-1)^i``) a family member, resolved by the checker."""

    name: str
    args: tuple["Expr", ...]
    indices: tuple[Idx, ...] = ()


@dataclass(frozen=True)
class Mul(Node):
    """``a b`` or ``a * b``; ``paren``: written in parentheses, ``(r^k h^k)``."""

    left: "Expr"
    right: "Expr"
    paren: bool = False


@dataclass(frozen=True)
class Div(Node):
    left: "Expr"
    right: "Expr"
    paren: bool = False


@dataclass(frozen=True)
class Neg(Node):
    operand: "Expr"


@dataclass(frozen=True)
class Sum(Node):
    """``left + right`` or, with ``negate``, ``left - right``.

    Its position is that of ``right`` so errors about a term point at it.
    """

    left: "Expr"
    right: "Expr"
    negate: bool


Expr = Union[Use, Number, Call, Mul, Div, Neg, Sum]


# -------------------------------------------------------------------- helpers
def written(name, idx: tuple[Idx, ...]) -> str:
    """``W^j_i``; multi-letter indices in braces with commas, as they must be written."""
    out, k = str(name), 0
    while k < len(idx):
        group = [idx[k]]
        while k + len(group) < len(idx) and idx[k + len(group)].up == idx[k].up:
            group.append(idx[k + len(group)])
        names = [ix.name for ix in group]
        if all(len(n) == 1 for n in names):
            body = "".join(names)
        else:  # a lone multi-letter index needs its comma: {cu,}
            body = "{" + ",".join(names) + "," * (len(names) == 1) + "}"
        out += ("^" if group[0].up else "_") + body
        k += len(group)
    return out


def flat_sum(node: Expr, negate: bool = False):
    """``a - (b - c)`` → [(False, a), (True, b), (False, c)]."""
    if isinstance(node, Sum):
        return flat_sum(node.left, negate) + flat_sum(node.right, negate != node.negate)
    return [(negate, node)]


def flat_product(node: Expr, top: bool = True) -> list[tuple[str, Expr | None]]:
    """Factors of nested products: ("expr", n), ("recip", n), ("neg", None), or ("group", n) for a
    parenthesised product below the top (``U^j_k (r^k h^k)``: see ``Scope.product``)."""
    if not top and isinstance(node, (Mul, Div)) and node.paren:
        return [("group", node)]
    if isinstance(node, Mul):
        return flat_product(node.left, False) + flat_product(node.right, False)
    if isinstance(node, Div):
        return flat_product(node.left, False) + [("recip", node.right)]
    if isinstance(node, Neg):
        return [("neg", None)] + flat_product(node.operand, False)
    return [("expr", node)]


def direct_indices(node: Expr) -> list[str]:
    """The index names written on the tensors of a product (not inside calls or sums)."""
    if isinstance(node, (Mul, Div)):
        return direct_indices(node.left) + direct_indices(node.right)
    if isinstance(node, Neg):
        return direct_indices(node.operand)
    if isinstance(node, (Use, Call)):
        return [t for ix in node.indices for t in ([t for _, t in ix.terms] if ix.terms else [ix.name])]
    return []


def walk(node):
    """Every expression node below ``node`` (pre-order)."""
    yield node
    for child in (getattr(node, "left", None), getattr(node, "right", None), getattr(node, "operand", None)):
        if child is not None:
            yield from walk(child)
    for arg in getattr(node, "args", ()):
        yield from walk(arg)
