"""Index-expression IR: frozen, hashable nodes with explicit index structure.

Every expression has a tuple of *free* indices (``expr.free``).  Summation is
never implicit inside the IR: a :class:`Prod` is an einsum — it multiplies its
factors and sums over every index that occurs in a factor but not in
``Prod.out``.  So the surface notation's summation convention is resolved once,
by the checker, and the Hadamard (elementwise) product that the paper writes as
``δ^j_s A'(…)^j`` is simply a ``Prod`` whose ``out`` keeps ``j``.

Each node class declares its structure once, as data: ``CHILDREN`` (the fields
holding sub-expressions) and ``INDICES`` (the fields holding its own index
occurrences), and :meth:`Expr.binds` the indices it sums over.  Everything
that walks or rebuilds expressions — renaming, substitution, the keys for
"equal up to renaming of indices" — is written once against that protocol in
:mod:`einderiv.ir.tools`; adding a node means declaring it here and giving it
a derivative rule (:mod:`einderiv.calculus.diff`) and a printer method.

Nothing here iterates over a ``set`` of strings where order could leak into
output: free-index tuples keep first-occurrence order.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Iterable

import sympy

from .names import Name, TensorName


# --------------------------------------------------------------------- indices
@dataclass(frozen=True, order=True)
class Index:
    """A named index ranging over ``dim`` (a SymPy expression: symbol or integer)."""

    name: str
    dim: sympy.Expr = field(compare=True)

    def __hash__(self) -> int:
        # indices are hashed constantly (dict keys in every rule); equal indices
        # have equal names, and hashing a SymPy dimension is comparatively slow
        return hash(self.name)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"{self.name}:{self.dim}"


_fresh_counter = itertools.count()


def reset_fresh() -> None:
    """Restart machine-made index numbering (each derivation does, so that its
    output never depends on what the process derived before)."""
    global _fresh_counter
    _fresh_counter = itertools.count()


def fresh(dim: sympy.Expr, hint: str = "i") -> Index:
    """A brand-new index over ``dim``; the ``_`` prefix marks it machine-made."""
    base = hint.lstrip("_").split("_")[0] or "i"
    return Index(f"_{base}_{next(_fresh_counter)}", dim)


def unique(indices: Iterable[Index]) -> tuple[Index, ...]:
    """The indices, each once, in order of first occurrence."""
    return tuple(dict.fromkeys(indices))


# ----------------------------------------------------------------------- nodes
class Expr:
    """Base class of IR nodes (all frozen dataclasses).

    ``CHILDREN`` and ``INDICES`` name the dataclass fields holding the node's
    sub-expressions and its own index occurrences (each field one item or a
    tuple of them), in the order a reader meets them.
    """

    __slots__ = ()
    CHILDREN: tuple[str, ...] = ()
    INDICES: tuple[str, ...] = ()

    @property
    def free(self) -> tuple[Index, ...]:
        raise NotImplementedError

    def children(self) -> tuple["Expr", ...]:
        return ()

    def binds(self) -> tuple[Index, ...]:
        """Indices this node sums over (its dummies): none for most nodes."""
        return ()

    def renamed(self, mapping: dict[Index, Index], rename) -> "Expr | None":
        """A node whose meaning a plain renaming would change says how to rename it
        (see :meth:`Softmax.renamed`); None: rename its indices and children as usual."""
        return None


@dataclass(frozen=True)
class Const(Expr):
    """A scalar (SymPy number or expression in dimension symbols)."""

    value: sympy.Expr

    @property
    def free(self) -> tuple[Index, ...]:
        return ()


ZERO = Const(sympy.Integer(0))
ONE = Const(sympy.Integer(1))


@dataclass(frozen=True)
class Ref(Expr):
    """A named tensor with its indices, e.g. ``W1^j_i`` → ``Ref('W1', (j, i))``."""

    name: TensorName
    indices: tuple[Index, ...]
    INDICES = ("indices",)

    def __post_init__(self):
        if isinstance(self.name, str):  # a user tensor written by hand (tests, builders)
            object.__setattr__(self, "name", Name(self.name))

    @property
    def free(self) -> tuple[Index, ...]:
        ixs = self.indices
        # (asked 180,000 times in a deep derivation: indices of different names are distinct,
        # and a set of their names is built in C, where unique hashes each index in Python)
        if len(ixs) < 2 or len({ix.name for ix in ixs}) == len(ixs):
            return ixs
        return unique(ixs)


@dataclass(frozen=True)
class Delta(Expr):
    """Kronecker delta δ^a_b (a and b range over the same dimension)."""

    a: Index
    b: Index
    INDICES = ("a", "b")

    @property
    def free(self) -> tuple[Index, ...]:
        return (self.a, self.b) if self.a.name != self.b.name else unique((self.a, self.b))


@dataclass(frozen=True)
class Ones(Expr):
    """The all-ones vector 𝟙^i: a sum's term that lacks index i is broadcast along it.

    ``v^{o,t} = K … + b^o`` reads ``K … + b^o 𝟙^t``; its derivative is zero and
    it simplifies away wherever another factor carries ``i``.
    """

    index: Index
    INDICES = ("index",)

    @property
    def free(self) -> tuple[Index, ...]:
        return (self.index,)


@dataclass(frozen=True)
class Window(Expr):
    """Selection tensor S^u_{t,a} = 1 if u = stride·t + dilation·a + offset else 0 (index arithmetic).

    ``x^{t+a}`` is ``S^u_{t,a} x^u`` with u summed: a convolution is a dense
    layer whose weight ``K_a S^u_{t,a}`` is the doubly block circulant matrix
    of the paper's §2.2, and S is a constant, so its derivative is zero.
    ``a`` ranges over the kernel (None for a shift without one, ``x^{t+1}``: S^u_t),
    ``t`` over the output positions, ``u`` over the input positions.  A read
    outside the input's axis has no u, so S is zero there: that is zero padding
    (``padded x``), and valid padding is the choice of a range of t with every
    read inside.  ``dilation`` may be negative (``x^{t-a}``, a causal convolution).
    """

    u: Index
    t: Index
    a: Index | None
    stride: int = 1
    dilation: int = 1
    offset: int = 0
    INDICES = ("u", "t", "a")

    @property
    def free(self) -> tuple[Index, ...]:
        return unique((self.u, self.t) + (() if self.a is None else (self.a,)))

    @property
    def plain(self) -> bool:
        """``x^{s·t+a}``: a window that needs neither dilation, offset nor taps' absence."""
        return self.a is not None and self.dilation == 1 and self.offset == 0

    def written(self, t: str, a: str | None = None) -> str:
        """The index as the file writes it, in the order position, offset, constant: ``2t+2a-1``."""
        text = (f"{self.stride}" if self.stride != 1 else "") + t
        if self.a is not None:
            d = self.dilation
            text += ("+" if d > 0 else "-") + (f"{abs(d)}" if abs(d) != 1 else "") + (a or "")
        if self.offset:
            text += f"{self.offset:+d}"
        return text

    def mark(self) -> str:
        """What tells this S from the plain one in a name: ``2`` for stride 2, ``d-4`` for dilation
        −4, ``2,d3,+1`` for stride 2, dilation 3 and offset 1 ("" for ``x^{t+a}``)."""
        parts = [f"{self.stride}" if self.stride != 1 else "", f"d{self.dilation}" if self.dilation != 1 else "",
                 f"{self.offset:+d}" if self.offset else ""]
        return ",".join(p for p in parts if p)


@dataclass(frozen=True)
class Prod(Expr):
    """Einsum: product of ``factors`` summed over indices not in ``out``."""

    factors: tuple[Expr, ...]
    out: tuple[Index, ...]
    CHILDREN = ("factors",)
    INDICES = ("out",)

    def __post_init__(self):
        if len(set(self.out)) != len(self.out):  # renaming j → i in out (i, j): the diagonal, i once
            object.__setattr__(self, "out", unique(self.out))

    @property
    def free(self) -> tuple[Index, ...]:
        return self.out

    def children(self) -> tuple[Expr, ...]:
        return self.factors

    def binds(self) -> tuple[Index, ...]:
        return self.bound

    @functools.cached_property
    def bound(self) -> tuple[Index, ...]:
        outs = set(self.out)
        return unique(ix for f in self.factors for ix in f.free if ix not in outs)


@dataclass(frozen=True)
class Add(Expr):
    """Sum of terms that all carry the same free indices."""

    terms: tuple[Expr, ...]
    CHILDREN = ("terms",)

    @property
    def free(self) -> tuple[Index, ...]:
        return self.terms[0].free if self.terms else ()

    def children(self) -> tuple[Expr, ...]:
        return self.terms


@dataclass(frozen=True)
class Fn:
    """A scalar function, possibly differentiated: ``deriv[k]`` = order in arg k."""

    name: str
    deriv: tuple[int, ...]

    def d(self, k: int) -> "Fn":
        return Fn(self.name, tuple(o + (1 if i == k else 0) for i, o in enumerate(self.deriv)))


@dataclass(frozen=True)
class Apply(Expr):
    """Elementwise scalar function of its arguments (broadcast over free indices)."""

    fn: Fn
    args: tuple[Expr, ...]
    CHILDREN = ("args",)

    @functools.cached_property
    def free(self) -> tuple[Index, ...]:
        return unique(ix for a in self.args for ix in a.free)

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclass(frozen=True)
class Softmax(Expr):
    """``softmax`` of ``arg`` along index ``over`` (``over`` stays free)."""

    arg: Expr
    over: Index
    CHILDREN = ("arg",)
    INDICES = ("over",)

    def renamed(self, mapping: dict[Index, Index], rename) -> Expr | None:
        """``over`` is both an output axis and the axis normalised over: renaming it onto
        another index of the argument (the diagonal ``s[a, a]`` that contracting δ^a_b makes)
        must keep the normaliser's own axis, so it becomes Σ_c softmax_c(arg[…, c]) δ^c_a."""
        return _diagonal(self, mapping, rename, lambda inner, c: Softmax(inner, c))

    @property
    def free(self) -> tuple[Index, ...]:
        return self.arg.free

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


@dataclass(frozen=True)
class LogSumExp(Expr):
    """``log Σ_over exp(arg)`` — binds ``over``."""

    arg: Expr
    over: Index
    CHILDREN = ("arg",)
    INDICES = ("over",)

    @property
    def free(self) -> tuple[Index, ...]:
        return tuple(ix for ix in self.arg.free if ix != self.over)

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)

    def binds(self) -> tuple[Index, ...]:
        return (self.over,)


def _diagonal(e, mapping: dict[Index, Index], rename, make) -> Expr | None:
    """The renaming of a node whose ``over`` axis is both free and reduced over (softmax, the
    maximiser's weights): renamed onto another index of its argument it keeps its own axis."""
    target = mapping.get(e.over, e.over)
    if target not in {mapping.get(ix, ix) for ix in e.arg.free if ix != e.over}:
        return None
    c = fresh(e.over.dim, e.over.name)
    inner = rename(e.arg, {**mapping, e.over: c})
    return Prod((make(inner, c), Delta(c, target)), unique(mapping.get(ix, ix) for ix in e.free))


#: the extreme-value reductions: ``max_k`` and ``min_k``
EXTREMES = ("max", "min")


@dataclass(frozen=True)
class Max(Expr):
    """``max_over arg`` (``kind`` "max") or ``min_over arg`` (``kind`` "min") — binds ``over``.

    Its derivative is :class:`ArgMax`: at a tie the subgradient splits equally between the
    maximisers (the rule of ``torch.amax`` and ``jnp.max``)."""

    arg: Expr
    over: Index
    kind: str = "max"
    CHILDREN = ("arg",)
    INDICES = ("over",)

    @property
    def free(self) -> tuple[Index, ...]:
        return tuple(ix for ix in self.arg.free if ix != self.over)

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)

    def binds(self) -> tuple[Index, ...]:
        return (self.over,)


@dataclass(frozen=True)
class ArgMax(Expr):
    """The weights ∂ max_over(arg)/∂arg^over: ``1/m`` on each of the ``m`` maximisers along
    ``over`` (minimisers for ``kind`` "min"), 0 elsewhere; ``over`` stays free.  Piecewise
    constant, so its own derivative is zero."""

    arg: Expr
    over: Index
    kind: str = "max"
    CHILDREN = ("arg",)
    INDICES = ("over",)

    def renamed(self, mapping: dict[Index, Index], rename) -> Expr | None:
        return _diagonal(self, mapping, rename, lambda inner, c: ArgMax(inner, c, self.kind))

    @property
    def free(self) -> tuple[Index, ...]:
        return self.arg.free

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


#: the scalar matrix functions of :class:`MatDet`: ``logdet(S)`` and ``det(S)``
MATRIX_SCALARS = ("logdet", "det")


@dataclass(frozen=True)
class MatDet(Expr):
    """``logdet`` (``kind`` "logdet": log det, NaN where det ≤ 0) or ``det`` of the square matrix
    ``arg``, whose free indices are ``row`` and ``col`` — binds both.

    ∂ logdet X/∂X^a_b = inv(X)^b_a and ∂ det X = det X · inv(X)^b_a (:class:`Inv`)."""

    arg: Expr
    row: Index
    col: Index
    kind: str = "logdet"
    CHILDREN = ("arg",)
    INDICES = ("row", "col")

    @property
    def free(self) -> tuple[Index, ...]:
        return ()

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)

    def binds(self) -> tuple[Index, ...]:
        return (self.row, self.col)


@dataclass(frozen=True)
class Inv(Expr):
    """The matrix inverse ``inv(arg)^row_col`` of the square matrix ``arg``, whose free indices
    are ``row`` (its rows) and ``col`` (its columns); both stay free.

    ∂ inv(X)^i_j = −inv(X)^i_a ∂X^a_b inv(X)^b_j, so every order stays in closed form."""

    arg: Expr
    row: Index
    col: Index
    CHILDREN = ("arg",)
    INDICES = ("row", "col")

    def renamed(self, mapping: dict[Index, Index], rename) -> Expr | None:
        """Renaming ``row`` and ``col`` onto one index takes the inverse's diagonal, not the
        inverse of the argument's diagonal: ``Σ inv(X)^c_d δ^c_t δ^d_t``."""
        target = mapping.get(self.row, self.row)
        if target != mapping.get(self.col, self.col):
            return None
        c, d = fresh(self.row.dim, self.row.name), fresh(self.col.dim, self.col.name)
        inner = rename(self.arg, {**mapping, self.row: c, self.col: d})
        return Prod((Inv(inner, c, d), Delta(c, target), Delta(d, target)), (target,))

    @property
    def free(self) -> tuple[Index, ...]:
        return (self.row, self.col)

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


#: the matrix functions: their argument is a square matrix, evaluated whole
MATRIX_NODES = (MatDet, Inv)

#: the reductions along one axis, whose argument is evaluated whole (lifted, lowered to one call)
REDUCTIONS = (Softmax, LogSumExp, Max, ArgMax)


# ------------------------------------------------------------- constructors
def is_zero(e: Expr) -> bool:
    return isinstance(e, Const) and e.value == 0


def prod(factors: Iterable[Expr], out: Iterable[Index]) -> Expr:
    """Build a Prod, short-circuiting zeros and single identity-layout factors."""
    fs = tuple(factors)
    out_t = tuple(out)
    if any(is_zero(f) for f in fs):
        return ZERO
    if len(fs) == 1 and tuple(fs[0].free) == out_t:
        return fs[0]
    return Prod(fs, out_t)


def add(terms: Iterable[Expr]) -> Expr:
    ts = tuple(t for t in terms if not is_zero(t))
    if not ts:
        return ZERO
    if len(ts) == 1:
        return ts[0]
    return Add(ts)
