"""What a derivation is, as data: nodes, named quantities, blocks.

:func:`lift` turns a checked network into a DAG of *nodes* — one per definition,
plus one per function argument that is not a bare tensor (the pre-activation
``z_v1`` the paper writes inline as ``A'(w v)``).  :class:`Derivation` holds what
:func:`einderiv.calculus.derive.derive` builds from them: the named quantities
(adjoints, Jacobians, …) in dependency order and every derivative block.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from typing import Callable

from ..errors import InternalError
from ..frontend.network import Network
from ..ir import REDUCTIONS, Apply, Const, Expr, Index, Name, Quantity, Ref, map_children, rename
from .functions import FunctionTable
from .to_sympy import SympyBlock, sympy_block, sympy_definitions


# ------------------------------------------------------------------- records
@dataclass(frozen=True)
class Rel:
    """An expression with an ordered tuple of slot indices (a tensor template)."""

    indices: tuple[Index, ...]
    expr: Expr

    def at(self, indices: tuple[Index, ...]) -> Expr:
        """The expression with its slots renamed to ``indices``."""
        if len(indices) != len(self.indices):
            raise ValueError("slot count mismatch")
        return rename(self.expr, dict(zip(self.indices, indices)))


@dataclass(frozen=True)
class Node:
    name: Name
    indices: tuple[Index, ...]
    expr: Expr
    origin: Name  # the user definition it comes from
    pre: bool  # a lifted function argument (pre-activation)


@dataclass(frozen=True)
class QDef:
    """Definition of a named derived quantity."""

    name: Quantity
    indices: tuple[Index, ...]
    expr: Expr


@dataclass(frozen=True)
class Block:
    """One derivative block ∂^k f / ∂θ1 … ∂θk (per sample).

    From order 3 on, one block per *set* of parameters is derived (``wrt`` in declaration
    order); every other ordering is that block transposed: ``source`` names the derived
    block, and ``groups[k]`` says which of its parameter groups this block's k-th parameter
    is.  A transposed block shares the source's expression (``expr`` is the same object),
    with its ``indices`` permuted accordingly.
    """

    wrt: tuple[Name, ...]
    indices: tuple[Index, ...]  # θ1's axes, then θ2's, …
    expr: Expr  # simplified sum of monomials
    paper: Expr | None = None  # the paper's form (first order), for display
    source: tuple[Name, ...] | None = None  # the derived block this one transposes
    groups: tuple[int, ...] | None = None  # this block's parameter k is the source's groups[k]

    @property
    def transposed(self) -> bool:
        """Whether this block is another block's transpose (not derived on its own)."""
        return self.source is not None


def canonical(wrt: tuple[Name, ...], position: dict[Name, int]) -> tuple[tuple[Name, ...], tuple[int, ...]]:
    """The derived ordering of ``wrt`` (parameters by ``position``: declaration order) and, for
    each parameter of ``wrt``, its group in that ordering (equal parameters keep their order).

    >>> a, b = Name("a"), Name("b")
    >>> canonical((b, a, a), {a: 0, b: 1})
    ((Name('a'), Name('a'), Name('b')), (2, 0, 1))
    """
    order = sorted(range(len(wrt)), key=lambda k: position[wrt[k]])
    groups = [0] * len(wrt)
    for g, k in enumerate(order):
        groups[k] = g
    return tuple(wrt[k] for k in order), tuple(groups)


def transpose(block: Block, wrt: tuple[Name, ...], groups: tuple[int, ...], ranks: dict[Name, int]) -> Block:
    """``block`` seen with its parameters in the order ``wrt`` (see :func:`canonical`): the same
    expression, its axes regrouped — ∂³f/∂b∂a∂c is ∂³f/∂a∂b∂c with a's and b's axes swapped."""
    cut, pos = [], 0
    for w in block.wrt:
        cut.append(block.indices[pos:pos + ranks[w]])
        pos += ranks[w]
    indices = tuple(ix for g in groups for ix in cut[g])
    return Block(wrt, indices, block.expr, source=block.wrt, groups=groups)


@dataclass
class Derivation:
    network: Network
    table: FunctionTable
    order: int
    nodes: tuple[Node, ...]
    quantities: tuple[QDef, ...]  # dependency order
    blocks: dict[tuple[Name, ...], Block]
    objective_args: tuple[Name, ...] = field(default=())
    #: Hessian-vector product by the R-operator (order ≥ 2): θ → Block whose
    #: expression is Σ_φ H[θ,φ]·v[φ], written with the direction ``dir[φ]``,
    #: forward tangents ``tan[n]`` and R-adjoints ``radj[n]`` (all vectors)
    hvp: dict[Name, Block] = field(default_factory=dict)
    hvp_quantities: tuple[QDef, ...] = field(default=())
    #: the Gauss–Newton part of each diagonal block ∂²f/∂θ∂θ (order ≥ 2)
    ggn: dict[Name, Block] = field(default_factory=dict)
    #: whether Hessian blocks are in the expanded (paper) form or through hess[s,s']
    expanded: bool = True
    #: the same derivation in the other Hessian form, once built (``calculus.derive.in_form``)
    forms: dict[str, "Derivation"] = field(default_factory=dict, repr=False, compare=False)

    def quantity(self, q: Quantity) -> QDef:
        # a table by name, built on first use (a scan per call was quadratic in a deep
        # network's 3,400 quantities); rebuilt if ``quantities`` is another tuple now
        index = self.__dict__.get("_quantity_index")
        if index is None or index[0] is not self.quantities:
            index = self.__dict__["_quantity_index"] = (self.quantities, {d.name: d for d in self.quantities})
        return index[1][q]

    def node(self, name: Name) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def block(self, *wrt: Name | str) -> Block:
        """The block ∂^k f/∂wrt[0]…∂wrt[k-1]; plain strings name tensors without labels."""
        return self.blocks[tuple(Name(w) if isinstance(w, str) else w for w in wrt)]

    def blocks_of_order(self, k: int) -> dict[tuple[Name, ...], Block]:
        return {w: b for w, b in self.blocks.items() if len(w) == k}

    # -- going on elsewhere: SymPy, a notebook ---------------------------------------
    def sympy_block(self, *wrt: Name | str, inline: bool = True) -> SympyBlock:
        """The block ∂^k f/∂wrt[0]…∂wrt[k-1] as a SymPy expression (``IndexedBase``, ``Idx``, ``Sum``):
        ``.expr``, ``.axes``, ``.evaluate({...})``; see :mod:`einderiv.calculus.to_sympy`."""
        return sympy_block(self, wrt, inline)

    def sympy_definitions(self):
        """Every node and derived quantity as SymPy (what ``sympy_block(..., inline=False)`` names)."""
        return sympy_definitions(self)

    def _repr_latex_(self) -> str:
        return display("latex", self)

    def _repr_markdown_(self) -> str:
        return display("markdown", self)


#: how a derivation (or a layer template's general form) shows itself in a notebook, by format:
#: filled in by the printers (:mod:`einderiv.emit.notebook`), which the calculus cannot import
DISPLAYS: dict[str, Callable] = {}


def display(kind: str, obj) -> str:
    """``obj`` in a notebook's ``kind`` (``latex``: the blocks; ``markdown``: the whole document)."""
    if kind not in DISPLAYS:
        raise InternalError(f"no {kind} display registered: import einderiv (its printers register them)")
    return DISPLAYS[kind](obj)


# --------------------------------------------------------------------- lifting
def lift(network: Network) -> tuple[Node, ...]:
    """One node per definition plus one per non-trivial function argument."""
    nodes: list[Node] = []
    for d in network.definitions:
        count = itertools.count(1)

        def visit(e: Expr) -> Expr:
            e = map_children(e, visit)
            if isinstance(e, Apply):
                return Apply(e.fn, tuple(hoist(a) for a in e.args))
            if isinstance(e, REDUCTIONS):
                return replace(e, arg=hoist(e.arg))
            return e

        def hoist(a: Expr) -> Expr:
            if isinstance(a, (Ref, Const)):
                return a
            name = Name(d.name.base, d.name.labels, next(count))
            nodes.append(Node(name, a.free, a, d.name, True))
            return Ref(name, a.free)

        expr = visit(d.expr)
        nodes.append(Node(d.name, d.indices, expr, d.name, False))
    return tuple(nodes)

