"""Array expressions of the kernel representation: the operands of array statements.

Small frozen nodes, one per operation a generated kernel performs — :class:`Var`, numbers and
literals, :class:`Item` (``t["h(3)"]``, ``params["w"][k - 1]``), :class:`Subscript` with
``None`` axes, :class:`Transpose`, :class:`SumAxes`, :class:`MatMul`, :class:`TensorDot`,
:class:`Einsum`, arithmetic (:class:`Mul`, :class:`Sum`, :class:`Scale`, :class:`Div`), array
creation (:class:`Eye`, :class:`Ones`, :class:`Zeros`), :class:`Lib` for the array library's
elementwise helpers (``sqrt``, ``maximum``, ``broadcast_to``, ``shape``), :class:`Reduction`
(softmax, logsumexp), :class:`WindowView`/:class:`SelectionArray` (index arithmetic), and
containers.  No node names an array library: a printer (:mod:`einderiv.emit.numpy`) decides
the syntax.  Parentheses are explicit (:class:`Paren`): whoever builds an expression decides
them (:func:`atom`, :func:`operand`), so every printer writes the same grouping.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass
from typing import Union

from ..ir import Sym, TensorName


def node(cls):
    """A frozen, slotted dataclass whose ``__init__`` fills the slots directly (generation
    creates nodes by the hundred thousand; the frozen dataclass ``__init__`` is twice as slow)."""
    cls = dataclass(frozen=True, slots=True)(cls)
    params, lines, namespace = [], [], {}
    for k, f in enumerate(cls.__dataclass_fields__.values()):
        if f.default is not MISSING:
            namespace[f"_d{k}"] = f.default
        params.append(f.name if f.default is MISSING else f"{f.name}=_d{k}")
        namespace[f"_s{k}"] = cls.__dict__[f.name].__set__
        lines.append(f"    _s{k}(self, {f.name})")
    src = f"def __init__(self{''.join(', ' + p for p in params)}):\n" + "\n".join(lines or ["    pass"]) + "\n"
    exec(compile(src, f"<init {cls.__name__}>", "exec"), namespace)
    cls.__init__ = namespace["__init__"]
    return cls


# ============================================================ array expressions
@node
class Var:
    """A local variable (or a module-level name: ``PARAMS``, ``B``)."""

    name: str


@node
class Num:
    """A number: an ``int`` is written as is, a ``float`` by ``repr``."""

    value: Union[int, float]


@node
class Str:
    """A string literal, double-quoted: ``"W1"``."""

    text: str


@node
class Py:
    """A Python value written by ``repr``: a shape ``(5, 4)``, a key ``('W1', 'W2')``."""

    value: object


@node
class Code:
    """Plain Python written as is, the same for every array library (list bookkeeping)."""

    text: str


@node
class Label:
    """An integer expression in loop variables and the depth: ``3``, ``k - 1``, ``n + 1``."""

    value: Union[int, Sym]


@node
class Key:
    """The key of a tensor in the dict ``t``: ``"h(3)"``, or ``f"h({k-1})"`` with loop variables."""

    name: TensorName


@node
class Item:
    """``obj[key]``."""

    obj: "ArrayExpr"
    key: "ArrayExpr"


@node
class Paren:
    """``(x)``."""

    x: "ArrayExpr"


@node
class Subscript:
    """``x[slots]``: each slot ``":"``, ``"..."``, ``None`` (a new axis) or an integer."""

    x: "ArrayExpr"
    slots: tuple


@node
class Transpose:
    """``x`` with its axes permuted (``perm[k]`` is the source axis of axis k)."""

    x: "ArrayExpr"
    perm: tuple[int, ...]


@node
class SumAxes:
    """``x`` summed over ``axes``."""

    x: "ArrayExpr"
    axes: tuple[int, ...]


@node
class MatMul:
    """``a @ b`` (batched over leading axes)."""

    a: "ArrayExpr"
    b: "ArrayExpr"


@node
class TensorDot:
    """``tensordot(a, b)`` over ``axes = (axes of a, axes of b)``."""

    a: "ArrayExpr"
    b: "ArrayExpr"
    axes: tuple[tuple[int, ...], tuple[int, ...]]


@node
class Einsum:
    """``einsum(subscripts, *operands)``; ``optimize``: False, True or a fixed path (pairs of positions)."""

    subscripts: str
    operands: tuple
    optimize: object


@node
class Mul:
    """Elementwise (broadcasting) product of two or more factors."""

    factors: tuple


@node
class Sum:
    """``a + b - c``: a term that is a :class:`Scale` by a negative number, or a negative
    :class:`Num`, is subtracted; the empty sum is ``0.0``."""

    terms: tuple


@node
class Scale:
    """``coef * x``, or ``-x`` for ``coef == -1`` (``coef`` an int or float)."""

    coef: Union[int, float]
    x: "ArrayExpr"


@node
class Div:
    """``x / y``."""

    x: "ArrayExpr"
    y: "ArrayExpr"


@node
class Eye:
    """The ``n × n`` identity."""

    n: int


@node
class Ones:
    """The ones vector of length ``n``."""

    n: int


@node
class Zeros:
    """An array of zeros of ``shape`` (a shape expression: ``(B,) + PARAMS["W"]``, ``B``)."""

    shape: "ArrayExpr"


@node
class Lib:
    """An array-library function by its NumPy name: ``sqrt``, ``maximum``, ``broadcast_to``,
    ``broadcast_shapes``, ``shape``."""

    fn: str
    args: tuple


@node
class Reduction:
    """``softmax``, ``logsumexp`` (numerically stable), ``max``, ``min`` of ``x`` along ``axis``, or
    ``argmax``/``argmin``: the weights of their derivative (one-hot, split equally at ties)."""

    kind: str
    x: "ArrayExpr"
    axis: int


@node
class MatrixFn:
    """``inv``, ``det`` or ``logdet`` (NaN where det ≤ 0) of the square matrices on the last two
    axes of ``x`` (a batch of them when ``x`` has more)."""

    kind: str
    x: "ArrayExpr"


@node
class WindowView:
    """A strided view of ``x`` with axis ``axis`` split into (position, tap): index arithmetic
    (:mod:`einderiv.emit.window`), never the circulant matrix."""

    x: "ArrayExpr"
    size: int
    axis: int
    stride: int
    count: int


@node
class SelectionArray:
    """The 0/1 selection tensor ``S[u, t, tap]`` (u = stride·t + tap) as a small array."""

    n: int
    count: int
    size: int
    stride: int


@node
class ShiftView:
    """``x`` with axis ``axis`` split into (position, tap):
    ``view[..., t, ..., tap] = x[..., stride·t + dilation·tap + offset, ...]``, zero outside ``x``
    (``lo``/``hi`` zeros padded before/after the axis); ``size`` 0: no tap axis (``x^{t+1}``)."""

    x: "ArrayExpr"
    size: int
    axis: int
    stride: int
    count: int
    dilation: int
    offset: int
    lo: int
    hi: int


@node
class ShiftArray:
    """The 0/1 selection tensor ``S[u, t, tap]`` (u = stride·t + dilation·tap + offset); ``size`` 0: ``S[u, t]``."""

    n: int
    count: int
    size: int
    stride: int
    dilation: int
    offset: int


@node
class BatchSize:
    """The length of ``x``'s leading (batch) axis."""

    x: "ArrayExpr"


@node
class Call:
    """A call of a function of the generated module (or a builtin such as ``len``)."""

    fn: str
    args: tuple


@node
class TupleOf:
    """``(a, b)``, ``(a,)``."""

    items: tuple


@node
class ListOf:
    """``[a, b]``."""

    items: tuple


@node
class DictOf:
    """``{k: v, …}`` on one line, or one item per line (``multiline``: module constants)."""

    items: tuple
    multiline: bool = False


ArrayExpr = Union[Var, Num, Str, Py, Code, Label, Key, Item, Paren, Subscript, Transpose, SumAxes, MatMul,
                  TensorDot, Einsum, Mul, Sum, Scale, Div, Eye, Ones, Zeros, Lib, Reduction, MatrixFn, WindowView,
                  ShiftView, ShiftArray, SelectionArray, BatchSize, Call, TupleOf, ListOf, DictOf]


# ============================================================ builders' helpers
def is_identifier(e) -> bool:
    """A bare name or non-negative integer (what needs no variable of its own)."""
    return isinstance(e, Var) or (isinstance(e, Num) and isinstance(e.value, int) and e.value >= 0)


def is_dotted(e) -> bool:
    """A name, a non-negative number or a 2-D transpose of one (``x``, ``0.5``, ``x.T``):
    safe as a factor or operand without parentheses anywhere."""
    if isinstance(e, Var):
        return True
    if isinstance(e, Num):
        return e.value >= 0 and "-" not in repr(e.value)
    return isinstance(e, Transpose) and len(e.perm) == 2 and is_dotted(e.x)


def is_postfix(e) -> bool:
    """A name, number, subscript or 2-D transpose chain (``x.T[:, None]``): safe before ``.``/``[]``."""
    if isinstance(e, (Subscript, Item)):
        return is_postfix(e.obj if isinstance(e, Item) else e.x)
    return is_dotted(e)


def atom(e):
    """``e`` in parentheses unless it is a postfix chain."""
    return e if is_postfix(e) else Paren(e)


def operand(e):
    """``e`` in parentheses unless it is a dotted name (a factor of an elementwise product)."""
    return e if is_dotted(e) else Paren(e)


def mul(factors) -> ArrayExpr:
    """The product of ``factors`` (a single factor is itself)."""
    factors = tuple(factors)
    return factors[0] if len(factors) == 1 else Mul(factors)


def scaled(coef, x) -> ArrayExpr:
    """``coef * x`` (``coef`` an int or float; 1 leaves ``x``)."""
    return x if coef == 1 else Scale(coef, x)


def shape_sum(*parts) -> ArrayExpr:
    """The concatenation of shape expressions: ``(B,) + PARAMS["W"]``."""
    return parts[0] if len(parts) == 1 else Sum(tuple(parts))


BATCH = Var("B")
BATCH_SHAPE = TupleOf((BATCH,))


def param_shape(names) -> ArrayExpr:
    """``PARAMS["a"] + PARAMS["b"]``: the shape of a block of these parameters."""
    return shape_sum(*(Item(Var("PARAMS"), Str(str(n))) for n in names))
