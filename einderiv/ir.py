"""Index-expression IR: frozen, hashable nodes with explicit index structure.

Every expression has a tuple of *free* indices (``expr.free``).  Summation is
never implicit inside the IR: a :class:`Prod` is an einsum — it multiplies its
factors and sums over every index that occurs in a factor but not in
``Prod.out``.  So the surface notation's summation convention is resolved once,
by the checker, and the Hadamard (elementwise) product that the paper writes as
``δ^j_s A'(…)^j`` is simply a ``Prod`` whose ``out`` keeps ``j``.

Index hygiene: :func:`rename` substitutes free indices and gives every bound
index it meets a fresh name, so a substitution can never capture a dummy.
Fresh names come from a per-process counter, so a run is deterministic;
printers canonicalise bound names before showing them.

Nothing here iterates over a ``set`` of strings where order could leak into
output: free-index tuples keep first-occurrence order.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable, Union

import sympy


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


def _unique(indices: Iterable[Index]) -> tuple[Index, ...]:
    seen: dict[Index, None] = {}
    for ix in indices:
        seen.setdefault(ix, None)
    return tuple(seen)


# --------------------------------------------------------------- tensor names
@dataclass(frozen=True, order=True)
class Sym:
    """A symbolic label: a symbol plus an integer offset (``t-1``, ``k+1``, ``n``).

    Folding writes family members relative to a reference label (``h(3)`` next
    to ``h(4)`` reads ``h(t-1)``); layer templates write layers relative to
    anchors (``w(k)``, ``v(n)``).
    """

    symbol: str
    offset: int = 0

    def __str__(self) -> str:
        return self.symbol + (f"{self.offset:+d}" if self.offset else "")

    def shift(self, k: int) -> "Sym":
        return Sym(self.symbol, self.offset + k)


Label = Union[int, Sym]


@dataclass(frozen=True)
class Name:
    """The name of a tensor of the network: what the user wrote, plus what einderiv added.

    ``base`` is the user's name (``W1``, ``h``); ``labels`` are family labels —
    an integer for an unrolled member (``h(3)``), a :class:`Sym` once folded
    (``h(t-1)``); ``arg`` ≥ 1 marks the k-th lifted function argument of the
    definition ``base(labels)`` — the pre-activation the paper writes inline
    (``z_v1``, ``z2_g``).  ``str()`` is the form every printer started from:

    >>> str(Name("h", (3,))), str(Name("v1", arg=1)), str(Name("h", (Sym("t", -1),), 1))
    ('h(3)', 'z_v1', 'z_h(t-1)')
    """

    base: str
    labels: tuple[Label, ...] = ()
    arg: int = 0

    def __str__(self) -> str:
        return self.text()

    def text(self, label: Callable[[Label], str] | None = None) -> str:
        """``str(self)`` with each label written by ``label`` (default ``(3)``, ``(t-1)``)."""
        head = "" if not self.arg else ("z_" if self.arg == 1 else f"z{self.arg}_")
        return head + self.base + "".join(label(lab) if label else f"({lab})" for lab in self.labels)

    def __repr__(self) -> str:
        return f"Name({str(self)!r})"

    def __lt__(self, other: "Name") -> bool:  # sorted as their text, as before names had structure
        return str(self) < str(other)

    @property
    def of(self) -> "Name":
        """The definition a lifted argument belongs to (itself for any other name)."""
        return Name(self.base, self.labels) if self.arg else self

    @property
    def ints(self) -> tuple[int, ...]:
        """The integer labels (an unrolled member's)."""
        return tuple(lab for lab in self.labels if isinstance(lab, int))

    def relabel(self, f: Callable[[Label], Label]) -> "Name":
        return Name(self.base, tuple(f(lab) for lab in self.labels), self.arg) if self.labels else self

    @property
    def family(self) -> "Name":
        """The family of a member: its labels replaced by the wildcard ``*``."""
        return self.relabel(lambda _: ANY) if self.labels else self


#: the wildcard label of :attr:`Name.family`
ANY = Sym("*")


class Kind(Enum):
    """What a derived quantity is (the printers give each its symbol)."""

    ADJ = "adj"  # δ[n] = ∂f/∂n, the back-propagated adjoint
    JAC = "jac"  # η[a,s] = ∂a/∂s (γ of Eq. 1 when a is the activation of s)
    HOBJ = "hobj"  # ∂²f/∂a∂b for arguments a, b of the objective
    HESS = "hess"  # H[s,s'] = ∂²f/∂ε_s∂ε_s', the second-order adjoint
    DIR = "dir"  # the direction v[θ] of a Hessian-vector product
    TAN = "tan"  # the forward tangent of a node along v
    RADJ = "radj"  # the R-adjoint: the adjoint's derivative along v
    R = "R"  # the derivative along v of another quantity: parts = (quantity,)
    D = "d"  # the total derivative of a quantity by a parameter: parts = (quantity, parameter)


@dataclass(frozen=True)
class Quantity:
    """Name of a derived tensor (adjoint, Jacobian, local partial …).

    ``kind`` says what it is, ``parts`` the names (and, for :attr:`Kind.R` and
    :attr:`Kind.D`, the quantity) it relates.  Printers turn it into
    ``δ^{(z1)}``, ``η^{(v2,z1)}`` and so on.
    """

    kind: Kind
    parts: tuple["TensorName", ...]

    def __str__(self) -> str:
        return self.text()

    def text(self, label: Callable[[Label], str] | None = None) -> str:
        """``str(self)`` with each label of its names written by ``label`` (see :meth:`Name.text`)."""
        if self.kind is Kind.R:
            return "R" + self.parts[0].text(label)
        return f"{self.kind.value}[{','.join(p.text(label) for p in self.parts)}]"

    def __lt__(self, other: "Quantity") -> bool:
        return str(self) < str(other)

    def names(self) -> tuple[Name, ...]:
        """Every tensor name inside, in order (through nested quantities)."""
        return tuple(n for p in self.parts for n in (p.names() if isinstance(p, Quantity) else (p,)))


TensorName = Union[Name, Quantity]


def map_names(name: TensorName, f: Callable[[Name], Name]) -> TensorName:
    """``name`` with ``f`` applied to every :class:`Name` in it (through quantities)."""
    if isinstance(name, Quantity):
        return Quantity(name.kind, tuple(map_names(p, f) for p in name.parts))
    return f(name)


def names_in(name: TensorName) -> tuple[Name, ...]:
    return name.names() if isinstance(name, Quantity) else (name,)


def labels_of(name: TensorName) -> tuple[int, ...]:
    """Integer labels carried by a tensor name (a quantity may carry one per part)."""
    return tuple(lab for n in names_in(name) for lab in n.ints)


# ----------------------------------------------------------------------- nodes
class Expr:
    """Base class of IR nodes (all frozen dataclasses)."""

    __slots__ = ()

    @property
    def free(self) -> tuple[Index, ...]:
        raise NotImplementedError

    def children(self) -> tuple["Expr", ...]:
        return ()


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

    def __post_init__(self):
        if isinstance(self.name, str):  # a user tensor written by hand (tests, builders)
            object.__setattr__(self, "name", Name(self.name))

    @property
    def free(self) -> tuple[Index, ...]:
        return _unique(self.indices)


@dataclass(frozen=True)
class Delta(Expr):
    """Kronecker delta δ^a_b (a and b range over the same dimension)."""

    a: Index
    b: Index

    @property
    def free(self) -> tuple[Index, ...]:
        return _unique((self.a, self.b))


@dataclass(frozen=True)
class Ones(Expr):
    """The all-ones vector 𝟙^i: a sum's term that lacks index i is broadcast along it.

    ``v^{o,t} = K … + b^o`` reads ``K … + b^o 𝟙^t``; its derivative is zero and
    it simplifies away wherever another factor carries ``i``.
    """

    index: Index

    @property
    def free(self) -> tuple[Index, ...]:
        return (self.index,)


@dataclass(frozen=True)
class Window(Expr):
    """Selection tensor S^u_{t,a} = 1 if u = stride·t + a else 0 (index arithmetic).

    ``x^{t+a}`` is ``S^u_{t,a} x^u`` with u summed: a convolution is a dense
    layer whose weight ``K_a S^u_{t,a}`` is the doubly block circulant matrix
    of the paper's §2.2, and S is a constant, so its derivative is zero.
    ``a`` ranges over the kernel, ``t`` over the output positions, ``u`` over
    the input positions (valid padding: every u = stride·t + a is in range).
    """

    u: Index
    t: Index
    a: Index
    stride: int = 1

    @property
    def free(self) -> tuple[Index, ...]:
        return _unique((self.u, self.t, self.a))


@dataclass(frozen=True)
class Prod(Expr):
    """Einsum: product of ``factors`` summed over indices not in ``out``."""

    factors: tuple[Expr, ...]
    out: tuple[Index, ...]

    @property
    def free(self) -> tuple[Index, ...]:
        return self.out

    def children(self) -> tuple[Expr, ...]:
        return self.factors

    @functools.cached_property
    def bound(self) -> tuple[Index, ...]:
        outs = set(self.out)
        return _unique(ix for f in self.factors for ix in f.free if ix not in outs)


@dataclass(frozen=True)
class Add(Expr):
    """Sum of terms that all carry the same free indices."""

    terms: tuple[Expr, ...]

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

    @functools.cached_property
    def free(self) -> tuple[Index, ...]:
        return _unique(ix for a in self.args for ix in a.free)

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclass(frozen=True)
class Softmax(Expr):
    """``softmax`` of ``arg`` along index ``over`` (``over`` stays free)."""

    arg: Expr
    over: Index

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

    @property
    def free(self) -> tuple[Index, ...]:
        return tuple(ix for ix in self.arg.free if ix != self.over)

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


# ------------------------------------------------------------------- helpers
def is_zero(e: Expr) -> bool:
    return isinstance(e, Const) and e.value == 0


def refs(e: Expr) -> tuple[Ref, ...]:
    """Every Ref in ``e`` (first-occurrence order, duplicates kept once)."""
    out: dict[Ref, None] = {}

    def walk(x: Expr) -> None:
        if isinstance(x, Ref):
            out.setdefault(x, None)
        for c in x.children():
            walk(c)

    walk(e)
    return tuple(out)


def ref_names(e: Expr) -> tuple[TensorName, ...]:
    return _unique(r.name for r in refs(e))  # type: ignore[arg-type]


def rename(e: Expr, mapping: dict[Index, Index]) -> Expr:
    """Substitute free indices by ``mapping``; bound indices get fresh names.

    Freshening every bound index on every substitution is what keeps dummies
    from being captured, whatever the mapping's targets are.
    """
    if not mapping:
        return e
    if isinstance(e, Const):
        return e
    if isinstance(e, Ref):
        return Ref(e.name, tuple(mapping.get(ix, ix) for ix in e.indices))
    if isinstance(e, Delta):
        return Delta(mapping.get(e.a, e.a), mapping.get(e.b, e.b))
    if isinstance(e, Ones):
        return Ones(mapping.get(e.index, e.index))
    if isinstance(e, Window):
        return Window(mapping.get(e.u, e.u), mapping.get(e.t, e.t), mapping.get(e.a, e.a), e.stride)
    if isinstance(e, Prod):
        inner = dict(mapping)
        for ix in e.bound:
            inner[ix] = fresh(ix.dim, ix.name)
        return Prod(
            tuple(rename(f, inner) for f in e.factors),
            tuple(mapping.get(ix, ix) for ix in e.out),
        )
    if isinstance(e, Add):
        return Add(tuple(rename(t, mapping) for t in e.terms))
    if isinstance(e, Apply):
        return Apply(e.fn, tuple(rename(a, mapping) for a in e.args))
    if isinstance(e, Softmax):
        return Softmax(rename(e.arg, mapping), mapping.get(e.over, e.over))
    if isinstance(e, LogSumExp):
        inner = dict(mapping)
        inner[e.over] = fresh(e.over.dim, e.over.name)
        return LogSumExp(rename(e.arg, inner), inner[e.over])
    raise TypeError(f"rename: unknown node {type(e).__name__}")


def map_children(e: Expr, f: Callable[[Expr], Expr]) -> Expr:
    """Rebuild ``e`` with ``f`` applied to each direct child."""
    if isinstance(e, Prod):
        return Prod(tuple(f(c) for c in e.factors), e.out)
    if isinstance(e, Add):
        return Add(tuple(f(c) for c in e.terms))
    if isinstance(e, Apply):
        return Apply(e.fn, tuple(f(c) for c in e.args))
    if isinstance(e, Softmax):
        return Softmax(f(e.arg), e.over)
    if isinstance(e, LogSumExp):
        return LogSumExp(f(e.arg), e.over)
    return e


def substitute(e: Expr, name: TensorName, by: Callable[[Ref], Expr]) -> Expr:
    """Replace every ``Ref`` named ``name`` by ``by(ref)``."""
    if isinstance(e, Ref):
        return by(e) if e.name == name else e
    return map_children(e, lambda c: substitute(c, name, by))


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
