"""Names of tensors: what the user wrote, plus what einderiv added — values, never strings to parse.

A :class:`Name` carries a user's base name, family labels (an integer for an
unrolled member ``h(3)``, a :class:`Sym` once folded ``h(t-1)`` or anchored in
a layer template ``w(k)``) and whether it is a lifted function argument (the
pre-activation ``z_v1``).  A :class:`Quantity` names a derived tensor: an
enumerated :class:`Kind` and the names (or quantity) it relates.  ``str()``
of either is the text every printer started from; printers and code
generators read the structure, never the text.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Sequence, Union


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


class _Interned:
    """Hash-consed immutable values: equal arguments give the same object, so equality and
    hashing are identity (names are dictionary keys in every step of a derivation)."""

    __slots__ = ("__weakref__",)
    _FIELDS: tuple[str, ...] = ()
    _table: "weakref.WeakValueDictionary"

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls._table = weakref.WeakValueDictionary()

    @classmethod
    def _make(cls, *values):
        obj = cls._table.get(values)
        if obj is None:
            obj = object.__new__(cls)
            for name, value in zip(cls._FIELDS, values):
                object.__setattr__(obj, name, value)
            cls._table[values] = obj
        return obj

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self):
        return (type(self), tuple(getattr(self, f) for f in self._FIELDS))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class Name(_Interned):
    """The name of a tensor of the network: what the user wrote, plus what einderiv added.

    ``base`` is the user's name (``W1``, ``h``); ``labels`` are family labels —
    an integer for an unrolled member (``h(3)``), a :class:`Sym` once folded
    (``h(t-1)``); ``arg`` ≥ 1 marks the k-th lifted function argument of the
    definition ``base(labels)`` — the pre-activation the paper writes inline
    (``z_v1``, ``z2_g``).  ``str()`` is the form every printer started from:

    >>> str(Name("h", (3,))), str(Name("v1", arg=1)), str(Name("h", (Sym("t", -1),), 1))
    ('h(3)', 'z_v1', 'z_h(t-1)')
    >>> Name("h", (3,)) is Name("h", (3,))
    True
    """

    __slots__ = ("base", "labels", "arg")
    _FIELDS = ("base", "labels", "arg")
    base: str
    labels: tuple[Label, ...]
    arg: int

    def __new__(cls, base: str, labels: tuple[Label, ...] = (), arg: int = 0):
        return cls._make(base, tuple(labels), arg)

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
    BETA = "beta"  # β[v(k)] = ∂v(k)/∂v(k-1), the paper's Eq. 2 (shown for a layer template)
    ALPHA = "alpha"  # α[v(k),v(l)] = ∂v(k)/∂v(l), the paper's Eq. 3 (shown for a layer template)


class Quantity(_Interned):
    """Name of a derived tensor (adjoint, Jacobian, local partial …).

    ``kind`` says what it is, ``parts`` the names (and, for :attr:`Kind.R` and
    :attr:`Kind.D`, the quantity) it relates.  Printers turn it into
    ``δ^{(z1)}``, ``η^{(v2,z1)}`` and so on.
    """

    __slots__ = ("kind", "parts")
    _FIELDS = ("kind", "parts")
    kind: Kind
    parts: tuple["TensorName", ...]

    def __new__(cls, kind: Kind, parts: tuple["TensorName", ...]):
        return cls._make(kind, tuple(parts))

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

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


def label_range(labels: Sequence[int]) -> str:
    """``'1..3'`` for a contiguous range of three or more, ``'1, 3'`` otherwise."""
    labels = sorted(labels)
    # contiguous: distinct and spanning exactly their count (never a list as long as the span:
    # labels 1, 2, 3, 99999999 are four numbers, not a range to build)
    if len(labels) > 2 and len(set(labels)) == len(labels) and labels[-1] - labels[0] + 1 == len(labels):
        return f"{labels[0]}..{labels[-1]}"
    return ", ".join(map(str, labels))
