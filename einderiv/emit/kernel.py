"""The kernel representation: what a generated module computes, before any array library's syntax.

A :class:`Module` is a header, constants and functions; a :class:`Function` is a prologue and a
body of statements.  Every node is a frozen dataclass.  Statements come at two levels that share
one tree:

* **tensor statements** — what :mod:`einderiv.emit.kernel_build` makes of a derivation, with IR
  expressions (:mod:`einderiv.ir`) over structured tensor names as operands: :class:`Define` (a
  node or quantity), :class:`Block` (a derivative block summed in one expression),
  :class:`Accumulate` (a block added up term group by term group), :class:`Factors`,
  :class:`SquaredNorm`, :class:`Use` (a Hessian block may be written :class:`Into` a buffer).
  Passes rewrite them — :mod:`einderiv.emit.loops` groups members of a family into
  :class:`Loop` statements and a sum's terms into :class:`TermGroup` s,
  :mod:`einderiv.emit.template_kernel` writes labels relative to a run-time depth — and
  :mod:`einderiv.emit.kernel_lower` turns them into array statements;
* **array statements** — what printers print: :class:`Assign` (loads from and stores into the
  per-call dict ``t`` are assignments to and from :class:`Item`), :class:`Contraction` (an einsum
  with the pairwise plan fixed at generation time and each step's BLAS lowering as data),
  :class:`Elementwise` (a SymPy body with its operands bound), :class:`Loop`, :class:`Comment`,
  :class:`Return`, :class:`Append`, :class:`Run`, :class:`Free`, :class:`When`, :class:`Python`; operands are the array
  expressions of :mod:`einderiv.emit.kernel_arrays` (``Var``, ``Subscript`` with ``None`` axes,
  ``Transpose``, ``MatMul``, ``TensorDot``, ``Zeros``, ``Lib`` for ``sqrt``/``maximum`` …).

Tensor statements may refer to values before lowering has named them: :class:`Local` (what a
statement computes), :class:`Tensor` (a tensor's variable), :class:`Value` (an IR expression
as one array expression).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Union

import sympy

from ..ir import Expr, Index, Name, Sym, TensorName
from .kernel_arrays import ArrayExpr, node


# tensor-level expressions: resolved by kernel_lower ------------------------------------
@dataclass(frozen=True, eq=False)
class Local:
    """What one tensor statement computes (its variable, or a value such as a factor list),
    referred to by later statements before lowering has named it; ``hint`` names it."""

    hint: str


@node
class Tensor:
    """The variable holding tensor ``name`` (loaded where it is first used)."""

    name: TensorName


@node
class Value:
    """``expr`` lowered with axes ``indices`` (batch axis kept), as one expression."""

    expr: Expr
    indices: tuple[Index, ...]


# ============================================================ array statements
@node
class Assign:
    """``target = value`` (a load when ``value`` is an :class:`Item` of ``t``, ``params`` or
    ``data``; a store when ``target`` is one)."""

    target: ArrayExpr
    value: ArrayExpr


@node
class Run:
    """A call made for its effect: ``_backward(t)``."""

    call: ArrayExpr


@node
class Comment:
    text: str


@node
class Step:
    """One pairwise step of a contraction: its einsum, its BLAS lowering (an array expression of
    :class:`MatMul`, :class:`TensorDot`, :class:`Mul`, :class:`SumAxes`, :class:`Transpose`,
    :class:`Subscript`, or a diagonal :class:`Einsum`) and the variable it is bound to (None for the
    last step, which is the contraction's value)."""

    subscripts: str
    expr: ArrayExpr
    target: Union[str, None]


@node
class Contraction:
    """``einsum(subscripts, *operands)`` with its pairwise plan chosen at generation time
    (opt_einsum on the concrete sizes).  Printing it writes the einsum as a comment (unless
    ``note`` is false: a function whose docstring holds its formula) and binds the intermediate
    steps; ``value`` (the last step) is what the enclosing statement uses."""

    subscripts: str
    operands: tuple
    steps: tuple[Step, ...]
    value: ArrayExpr
    note: bool = True


@node
class Elementwise:
    """``target = body`` with each placeholder symbol of the SymPy ``body`` standing for an
    operand (each printer writes the body with its own SymPy printer); ``broadcast`` (operands)
    when the result must be broadcast to their common shape."""

    target: str
    body: sympy.Expr
    operands: tuple[tuple[sympy.Symbol, ArrayExpr], ...]
    broadcast: Union[tuple, None] = None


@node
class Range:
    """``start, start ± 1, …`` up to but excluding ``stop`` (bounds: ints or :class:`Sym` in the
    depth); ``step`` is 1 or -1."""

    start: Union[int, Sym]
    stop: Union[int, Sym]
    step: int = 1


@node
class Loop:
    """``for var in over: body`` — over a :class:`Range` or a tuple of labels.  In a tensor-level
    body the statements are written with ``var`` in their labels (``h(k-1)``)."""

    var: str
    over: Union[Range, tuple]
    body: tuple

    @property
    def first(self) -> Union[int, Sym]:
        """The label of the first iteration."""
        return self.over.start if isinstance(self.over, Range) else self.over[0]


@node
class Return:
    value: ArrayExpr


@node
class Append:
    """``target.append(value)``."""

    target: ArrayExpr
    value: ArrayExpr


@node
class AddInto:
    """``target += value``: an accumulator the function started itself (zeros, never an alias of
    an input), added into in place."""

    target: ArrayExpr
    value: ArrayExpr


@node
class Free:
    """``del names``: local arrays past their last use (:mod:`einderiv.emit.liveness`)."""

    names: tuple[str, ...]


@node
class When:
    """``if <any of the Hessian blocks keys is in of>: body`` (``keys`` None: ``of`` is not empty) —
    a statement that only some requested blocks need (:mod:`einderiv.emit.straight`).  At the tensor
    level ``of`` is a :class:`Local` and ``body`` tensor statements; lowered, a variable and array
    statements."""

    keys: Union[tuple, None]
    of: object
    body: tuple


@node
class Python:
    """Plain Python bookkeeping (the dict ``t``), the same for every array library."""

    text: str


# ============================================================ tensor statements
@node
class TermGroup:
    """Terms of a sum equal up to a label shift: ``term`` (written with the loop variable) once
    for each of ``labels`` — or a single term (``labels`` None)."""

    labels: Union[tuple[int, ...], None]
    term: Expr


@node
class Use:
    """Bring these tensors into variables now (the forward pass reads its inputs first)."""

    names: tuple


@node
class Define:
    """The tensor ``name`` (a node or quantity) = ``expr``, computed into its variable (and stored
    in ``t`` in functions that keep tensors there).  ``groups``: a sum over steps, found by the
    loop pass, accumulated in loops."""

    name: TensorName
    indices: tuple[Index, ...]
    expr: Expr
    groups: Union[tuple[TermGroup, ...], None] = None
    mean: bool = False  # divided by the batch size (an adjoint seeded with 1/B: emit/straight.py)


@node
class Release:
    """Drop what no later statement reads, so that its memory goes back to the allocator (the
    GGN diagonal's per-layer rows): the quantities ``names`` from ``t``; the variables holding
    the tensors ``scope`` and every value computed from them; the intermediate steps of the
    contractions since the last release."""

    names: tuple
    scope: tuple = ()


@node
class Block:
    """A derivative block (batch mean, or per sample if ``keep_batch``) as one sum into ``target``;
    ``shape`` is its shape expression (zeros when the block is zero).  ``kind`` ``"ggn"``: the
    Gauss–Newton diagonal, whose comment shares the contraction's letters."""

    target: Local
    wrt: tuple
    indices: tuple[Index, ...]
    expr: Expr
    keep_batch: bool
    label: str
    shape: ArrayExpr
    kind: str = "block"
    into: Union["Into", None] = None
    mean: bool = False  # its adjoints carry 1/B already: the batch sum is the mean (emit/straight.py)


@node
class Into:
    """Where a Hessian block is written (:mod:`einderiv.emit.kernel_buffer`): rows ``r0:r1`` and
    columns ``c0:c1`` of the P × P buffer ``buffer`` (a :class:`Local`); ``mirror``: its transpose
    into rows ``c0:c1``, columns ``r0:r1`` as well.  The bounds are ints, or array expressions read
    at run time (the rows of the parameters a call's blocks name: :mod:`einderiv.emit.straight`)."""

    buffer: Local
    r0: Union[int, ArrayExpr]
    r1: Union[int, ArrayExpr]
    c0: Union[int, ArrayExpr]
    c1: Union[int, ArrayExpr]
    mirror: bool


@node
class Accumulate:
    """A block added up group by group into ``target`` (zeros first): a group with labels is a loop."""

    target: Local
    wrt: tuple
    indices: tuple[Index, ...]
    groups: tuple[TermGroup, ...]
    keep_batch: bool
    label: str
    shape: ArrayExpr
    var: str = "k"


@node
class AddTo:
    """``group`` added into the block ``target`` that an :class:`Accumulate` started (zeros):
    a group with labels is a loop over them; without labels one term, which may be written with
    the variable of an enclosing loop (a weight's sum over steps added up inside the backward
    loop: :mod:`einderiv.emit.fuse`)."""

    target: Local
    indices: tuple[Index, ...]
    group: TermGroup
    keep_batch: bool
    label: str
    var: str = "k"
    mean: bool = False  # its adjoints carry 1/B already: the batch sum is the mean


@node
class Factors:
    """The per-sample gradient of ``param`` as a list of outer-product factor tuples; ``groups``
    (loop pass): appended in loops."""

    target: Local
    param: Name
    indices: tuple[Index, ...]
    expr: Expr
    groups: Union[tuple[TermGroup, ...], None] = None


@node
class SquaredNorm:
    """‖per-sample gradient of ``param``‖ from inner products of the block's terms; ``groups``
    (loop pass): the term groups written with each of the two loop variables."""

    target: Local
    param: Name
    indices: tuple[Index, ...]
    expr: Expr
    groups: Union[tuple[tuple[TermGroup, ...], tuple[TermGroup, ...]], None] = None


# ============================================================ module
class Frame(Enum):
    """Where a function's tensor statements read tensors (and whether they store them)."""

    INPUTS = "inputs"  # params["W1"], data["x"]: the forward pass of an unrolled module
    LOCALS = "locals"  # read as INPUTS; every node and quantity a local (a straight-line function)
    IDENT = "ident"  # t["adj_p"]: a quantity by its identifier (unrolled functions)
    NAMES = "names"  # t["adj[p]"], t[f"h({k-1})"]: by name, definitions stored back (loops)
    ARGS = "args"  # the function's arguments, named by their identifiers (shared functions)


@node
class Function:
    """``def name(args): doc; prologue; body``; ``frame`` (a :class:`Frame`, or None when the
    body reads no tensor) says where its tensor statements read tensors."""

    name: str
    args: tuple[str, ...]
    doc: str
    body: tuple
    prologue: tuple = ()
    frame: Union[Frame, None] = None


@node
class Support:
    """A fixed support function of the module contract that each printer writes (``expand_factors``)."""

    name: str


@node
class Source:
    """Module-level source written verbatim (the NumPy module of a recurrence at run-time length)."""

    text: str


@node
class Helpers:
    """Where the printer writes the helper functions the module's statements need."""


@node
class Constant:
    name: str
    value: ArrayExpr


@node
class Module:
    """A generated module: docstring ``header``, ``constants`` (after the imports), ``items``."""

    header: str
    constants: tuple[Constant, ...]
    items: tuple
