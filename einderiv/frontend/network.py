"""The checked representation of a network file: what `check` hands to `derive`.

A :class:`Network` holds declared tensors (inputs, labels, parameters), the
definitions in dependency order with their right-hand sides as IR
expressions (:mod:`einderiv.ir`, summation already resolved), user-defined
functions, the name of the scalar objective, and the file's header
(directives and title).  Declarations and definitions keep the index
placement the user wrote (``up``), for the printers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from ..errors import Location
from ..ir import Expr, Index, Name, ref_names
from .header import Header

ROLES = ("input", "label", "weight")


def dim_symbol(name: str) -> sympy.Symbol:
    """The SymPy symbol of a named size (positive integer)."""
    return sympy.Symbol(name, positive=True, integer=True)


def as_name(name: Name | str) -> Name:
    """A :class:`Name` for a plain user name given as a string (API convenience)."""
    return Name(name) if isinstance(name, str) else name


@dataclass(frozen=True)
class TensorDecl:
    """``weight W1^j_i : n1, n0`` → name W1, role weight, indices (j, i), shape (n1, n0)."""

    name: Name
    role: str  # one of ROLES
    indices: tuple[Index, ...]  # as written, each with its dimension
    loc: Location
    #: whether each index was written up (``W1^j_i`` → (True, False)); () for the default,
    #: first index up and the rest down.  For printing only: it has no meaning.
    up: tuple[bool, ...] = ()
    bias: bool = False  # declared ``bias`` (a weight, shown as a bias)
    #: the values data takes (``check`` draws them): None, "positive", "probability", "onehot"
    domain: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "name", as_name(self.name))

    @property
    def placement(self) -> tuple[bool, ...]:
        """Whether each index is written up, as declared (:func:`placement`)."""
        return placement(self.up, len(self.indices))

    @property
    def shape(self) -> tuple[sympy.Expr, ...]:
        return tuple(ix.dim for ix in self.indices)

    @property
    def is_param(self) -> bool:
        return self.role == "weight"


@dataclass(frozen=True)
class Definition:
    """``v1^j = relu(W1^j_i x^i)``: a named tensor defined by an expression."""

    name: Name
    indices: tuple[Index, ...]
    expr: Expr
    loc: Location
    up: tuple[bool, ...] = ()  # the left side's index placement, as :attr:`TensorDecl.up`

    def __post_init__(self):
        object.__setattr__(self, "name", as_name(self.name))

    @property
    def shape(self) -> tuple[sympy.Expr, ...]:
        return tuple(ix.dim for ix in self.indices)

    @property
    def placement(self) -> tuple[bool, ...]:
        return placement(self.up, len(self.indices))


def placement(up: tuple[bool, ...], n: int) -> tuple[bool, ...]:
    """``up`` when it gives every index a place, else the default: the first index up, the rest down."""
    return tuple(up) if len(up) == n else tuple(k == 0 for k in range(n))


@dataclass(frozen=True)
class UserFunction:
    """``function swish(z) = z * sigmoid(z)``: body is a SymPy expression in params."""

    name: str
    params: tuple[str, ...]
    body: sympy.Expr
    loc: Location


@dataclass(frozen=True)
class Network:
    path: str
    dims: tuple[tuple[str, int | None], ...]  # declaration order; None = symbolic
    tensors: tuple[TensorDecl, ...]
    functions: tuple[UserFunction, ...]
    definitions: tuple[Definition, ...]  # dependency order
    objective: Name  # name of the scalar definition that is minimised
    source: str = field(default="", compare=False, repr=False)
    #: the file's directives (``# einderiv: order 3``, ``form compact``) and title
    #: (:mod:`einderiv.frontend.header`)
    header: Header = field(default=Header(), compare=False, repr=False)
    #: tensors read as zero outside their axes (``padded x, v1``), in the file's order
    padded: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "objective", as_name(self.objective))

    # -- lookups -------------------------------------------------------
    def tensor(self, name: Name | str) -> TensorDecl | None:
        """The declaration of ``name`` (a plain string names a tensor without labels)."""
        name = as_name(name)
        return next((t for t in self.tensors if t.name == name), None)

    def definition(self, name: Name | str) -> Definition | None:
        name = as_name(name)
        return next((d for d in self.definitions if d.name == name), None)

    @property
    def params(self) -> tuple[TensorDecl, ...]:
        return tuple(t for t in self.tensors if t.is_param)

    @property
    def data(self) -> tuple[TensorDecl, ...]:
        return tuple(t for t in self.tensors if not t.is_param)

    def unused_weights(self) -> tuple[TensorDecl, ...]:
        """The weights the objective does not read, directly or through definitions (their
        gradient, Hessian rows and HVP are zero)."""
        by_name = {d.name: d for d in self.definitions}
        seen, todo = set(), [self.objective]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(ref_names(by_name[name].expr) if name in by_name else ())
        return tuple(t for t in self.params if t.name not in seen)

    def warnings(self) -> tuple[str, ...]:
        """One line per thing a user probably did not mean, ``file:line:col: warning: …``."""
        return tuple(f"{t.loc}: warning: weight '{t.name}' is declared but the objective {self.objective} "
                     "does not use it; its gradient, Hessian blocks and HVP are zero" for t in self.unused_weights())

    def sizes(self) -> dict[sympy.Symbol, int]:
        return {dim_symbol(n): s for n, s in self.dims if s is not None}

    def with_sizes(self, given: dict[str, int]) -> "Network":
        """A copy with the named sizes filled in (``--dim n0=4``)."""
        dims = tuple((n, given.get(n, s)) for n, s in self.dims)
        return Network(self.path, dims, self.tensors, self.functions,
                       self.definitions, self.objective, self.source, self.header)
