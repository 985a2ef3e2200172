"""Tensor roles: what each tensor of a derivation is, for whoever shows it.

:class:`Context` knows, for a derivation, which slots of a tensor are
written up or down (:meth:`Context.upper`: a declared or defined tensor as
the user wrote it, ``W^j_i``, ``s^{qk}``; a pre-activation as the node it
feeds; the adjoint ``∂f/∂z`` with its tensor's placement flipped, ``∂f/∂z_j``
for ``z^j``; a Jacobian ``η^{(a,s)}`` with a's placement and s's flipped), which
Jacobians are the paper's γ (Eq. 1), which adjoints are the objective's own
``∂f/∂p`` (left unevaluated, as in Eq. 6), which tensors ``softmax(p)`` is
written for (as ``p̂``), and which node a repeated definition is
(:meth:`Context.named`: ``a^{qk}``, not ``softmax_k(s^{qk})`` again).

It also knows every name of the document that is not an index — tensors,
sizes, family labels, functions (:attr:`Context.reserved`) — so that no index
letter looks like one of them, and the new letter of each index the user wrote
with such a name (:attr:`Context.renames`: attention's ``d``, a size, is shown
as another letter everywhere).

Roles are data: the printers (``einderiv.emit``) give each role its symbol.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from ..frontend.network import placement
from ..ir import (Apply, Expr, Index, Inv, Kind, LogSumExp, MatDet, Max, Name, Quantity, Ref, Softmax, Sym, TensorName,
                  all_indices, match_indices, shape_key, walk)

#: letters an index the user wrote is shown as when its own letter names something else
#: (the paper's letters first, then the rest of the alphabet)
RENAME_POOL = tuple("abcdeghoquvwxyzstrkmlnpfij")
#: symbols the printers use besides the tensors' names (z of a pre-activation, S of a selection
#: tensor, H of a second-order adjoint, D of a total derivative, the folding labels t and τ)
SYMBOLS = frozenset({"z", "S", "H", "D"})


def family(name: TensorName) -> TensorName:
    """A family member's role is its family's: ``h(3)`` and ``h(t-1)`` → ``h(*)``."""
    return name.family if isinstance(name, Name) else name


@dataclass
class Context:
    """What the printers need to know about a derivation's tensors.

    Built with :meth:`of` from a :class:`~einderiv.calculus.derivation.Derivation`; the
    default (empty) context serves printer unit tests: user tensors first
    index up, adjoints down, Jacobians split in half.
    """

    objective: Name = Name("f")
    objective_args: tuple[TensorName, ...] = ()
    arity: dict[TensorName, int] = field(default_factory=dict)
    gammas: frozenset[tuple[TensorName, TensorName]] = frozenset()
    #: the tensors whose softmax has a symbol of its own (``p̂`` for ``softmax_l(p^l)``)
    softmax: dict[TensorName, str] = field(default_factory=dict)
    #: node definitions a printed expression may repeat: (pattern, node name, node indices),
    #: keyed by :func:`~einderiv.ir.shape_key`; see :meth:`named`
    defined: dict[tuple, tuple[tuple[Expr, object, tuple[Index, ...]], ...]] = field(default_factory=dict)
    #: whether each slot of a tensor (by family) is written up, as the user wrote it
    placement: dict[TensorName, tuple[bool, ...]] = field(default_factory=dict)
    #: every name of the document an index letter must not look like (:func:`document_names`)
    reserved: frozenset[str] = frozenset()
    #: a user's index letter that is one of those names → the letter it is shown as
    renames: dict[str, str] = field(default_factory=dict)
    #: the index letters the user wrote, in file order
    user: tuple[str, ...] = ()
    #: the parameters (a penalty's ``U`` the objective uses itself is one of its arguments)
    params: frozenset[TensorName] = frozenset()

    @classmethod
    def of(cls, derivation, folded: bool = True) -> "Context":
        """The context of a derivation; ``folded``: its families are written once, over ``t``."""
        net = derivation.network
        arity = {family(t.name): len(t.indices) for t in net.tensors}
        arity.update({family(n.name): len(n.indices) for n in derivation.nodes})
        gammas = set()
        for n in derivation.nodes:
            if isinstance(n.expr, Apply):
                for a in n.expr.args:
                    if isinstance(a, Ref) and isinstance(a.name, Name):
                        gammas.add((family(n.name), family(a.name)))
        defined: dict[tuple, list] = {}
        for n in derivation.nodes:
            if n.name != net.objective and nameable(n.expr):
                defined.setdefault(shape_key(n.expr), []).append((n.expr, n.name, tuple(n.indices)))
        args: list[TensorName] = []
        for e in every_expr(derivation):
            for s in softmaxes(e):
                if (isinstance(s.arg, Ref) and s.arg.indices == (s.over,) and s.arg.name not in args
                        and shape_key(s) not in defined):  # a node's softmax goes by the node's name
                    args.append(s.arg.name)
        softmax = {a: "hat" for a in args}
        place = {family(t.name): t.placement for t in net.tensors}
        place.update({family(d.name): d.placement for d in net.definitions})
        for n in derivation.nodes:
            if n.pre and len(n.indices) == len(place.get(family(n.origin), ())):
                place[family(n.name)] = place[family(n.origin)]  # z_v1^j as v1^j
        reserved, user = document_names(derivation, folded), tuple(user_letters(derivation))
        return cls(net.objective, tuple(family(a) for a in derivation.objective_args), arity,
                   frozenset(gammas), softmax, {k: tuple(v) for k, v in defined.items()}, place,
                   reserved, renames(user, reserved), user, frozenset(family(t.name) for t in net.params))

    def reserving(self, names: Iterable[str]) -> "Context":
        """The same context with more names no index may look like (a template's layer labels)."""
        reserved = self.reserved | frozenset(names)
        return dataclasses.replace(self, reserved=reserved, renames=renames(self.user, reserved))

    def named(self, e: Expr) -> Ref | None:
        """The node ``e`` defines, as a reference with ``e``'s own indices, or None.

        A derivative that repeats a node's definition — ``softmax_k(s^{qk})`` for
        ``a^{qk}``, ``tanh(z_h^j)`` for ``h^j`` — prints the node's name, as the
        generated code reuses the node's value.

        >>> import sympy; from einderiv.ir import Index, Ref, Softmax
        >>> q, k, u, w = (Index(x, sympy.Symbol("t")) for x in "qkuw")
        >>> ctx = Context(defined={shape_key(Softmax(Ref("s", (q, k)), k)):
        ...                        ((Softmax(Ref("s", (q, k)), k), "a", (q, k)),)})
        >>> ctx.named(Softmax(Ref("s", (u, w)), w))
        Ref(name=Name('a'), indices=(u:t, w:t))
        >>> ctx.named(Softmax(Ref("s", (u, w)), u)) is None   # over the other index: not a
        True
        """
        for pattern, name, indices in self.defined.get(shape_key(e), ()):
            m = match_indices(pattern, e)
            if m is not None and all(ix in m for ix in indices):
                return Ref(name, tuple(m[ix] for ix in indices))
        return None

    def letters_taken(self, exprs: Iterable[Expr] = ()) -> tuple[str, ...]:
        """Names an index letter must not look like (:attr:`reserved`; the same for every statement
        of a document, so a letter means one thing throughout)."""
        return tuple(sorted(self.reserved))

    # -- slots -------------------------------------------------------------
    def n_indices(self, name: TensorName, default: int) -> int:
        return self.arity.get(family(name), default)

    def placed(self, name: TensorName, n: int) -> tuple[bool, ...]:
        """Which of the ``n`` slots of a tensor are up, as written (first up, the rest down by default)."""
        got = self.placement.get(family(name), ())
        return placement(got, n)

    def upper(self, name, n: int) -> tuple[bool, ...]:
        """Which of ``n`` slots of tensor ``name`` are written up.

        A tensor: as the user wrote it.  A derivative by a tensor flips that tensor's
        slots (covariant): ``∂f/∂z_j`` for ``z^j``, ``η^{(a,s),j}_m`` for ``a^j`` and ``s^m``;
        ∂²f/∂p∂p flips both; total derivatives and the rest are written down.
        """
        if isinstance(name, Quantity):
            kind, parts = name.kind, name.parts
            if kind in (Kind.JAC, Kind.BETA, Kind.ALPHA):
                k = self.n_indices(parts[0], n // 2)
                return self.placed(parts[0], k) + flipped(self.placed(parts[1], n - k))
            if kind in (Kind.ADJ, Kind.HOBJ, Kind.HESS) and all(isinstance(p, Name) for p in parts):
                sizes = self.split_parts(name, n)
                return tuple(u for p, m in zip(parts, sizes) for u in flipped(self.placed(p, m)))
            return (False,) * n
        return self.placed(name, n)

    def split_parts(self, q: Quantity, n: int) -> tuple[int, ...]:
        """How many of ``n`` slots belong to each part of a derivative (∂²f/∂p∂W: 1 and 2)."""
        sizes = [self.n_indices(p, 0) for p in q.parts]
        if sum(sizes) != n or 0 in sizes:
            k = len(q.parts)
            sizes = [n // k] * k
            sizes[-1] += n - sum(sizes)
        return tuple(sizes)

    def role(self, q: Quantity) -> str:
        """'dfdp' (the objective's own ∂f/∂p), 'adj', 'gamma', 'eta', 'hobj', 'd', 'beta', 'alpha' or
        the kind's name."""
        if q.kind is Kind.ADJ:
            return "dfdp" if family(q.parts[0]) in self.objective_args else "adj"
        if q.kind is Kind.JAC:
            same = len({p.labels for p in q.parts}) == 1  # γ[v(k)] relates a node to its own argument
            return "gamma" if same and tuple(map(family, q.parts)) in self.gammas else "eta"
        return q.kind.value

    def held(self, q: Quantity) -> tuple[Name, ...]:
        """The objective's other arguments, held fixed in its own derivative by a parameter it uses
        itself (∂²f/∂U∂U at fixed p for a penalty λ U U): () for any other quantity, whose symbol
        cannot be mistaken for a block."""
        if self.role(q) not in ("dfdp", "hobj") or not any(family(p) in self.params for p in q.parts):
            return ()
        return tuple(Name(a.base) if isinstance(a, Name) else a
                     for a in self.objective_args if a not in self.params)

    def of_objective(self, q: Quantity) -> bool:
        """Whether ``q`` is the objective's own derivative (∂f/∂p, ∂²f/∂p∂p), left named as in Eq. 6."""
        return self.role(q) in ("dfdp", "hobj")

    def split_jac(self, q: Quantity, indices: Sequence) -> tuple[tuple, tuple]:
        k = self.n_indices(q.parts[0], len(indices) // 2)
        return tuple(indices[:k]), tuple(indices[k:])


def flipped(up: Sequence[bool]) -> tuple[bool, ...]:
    return tuple(not u for u in up)


def spellings(name: str) -> set[str]:
    """How a user's name can look when printed: ``W1`` as itself and as ``W`` (LaTeX ``W^{(1)}``),
    ``n_in`` as ``n`` (LaTeX ``n_{in}``)."""
    out = {name}
    m = re.match(r"[A-Za-z]+?(?=\d+$)|[A-Za-z]+(?=_)", name)
    if m:
        out.add(m.group(0))
    return out


def document_names(derivation, folded: bool = True) -> frozenset[str]:
    """Every name of a derivation's document that is not an index: tensors (declared, defined,
    derived), sizes, family labels (``t`` and ``τ`` where families are ``folded``), functions,
    the printers' own symbols (:data:`SYMBOLS`)."""
    net = derivation.network
    out = set(SYMBOLS)
    names = [t.name for t in net.tensors] + [n.name for n in derivation.nodes] + [net.objective]
    for n in names:
        out |= spellings(n.base)
        for lab in n.labels:
            if folded:
                out |= {"t", "τ"}  # a family is folded over t (over τ inside a sum over t)
            if isinstance(lab, Sym):
                out.add(lab.symbol)
    for dim, _ in net.dims:
        out |= spellings(dim)
    for node in derivation.nodes:
        out |= {x.fn.name for x in walk(node.expr) if isinstance(x, Apply)}
    return frozenset(out)


def user_letters(derivation) -> list[str]:
    """The index letters the user wrote, in the order of the file."""
    net = derivation.network
    seen: dict[str, None] = {}
    for t in net.tensors:
        seen.update((ix.name, None) for ix in t.indices)
    for d in net.definitions:
        seen.update((ix.name, None) for ix in d.indices)
        seen.update((ix.name, None) for ix in all_indices(d.expr) if not ix.name.startswith("_"))
    return list(seen)


def renames(letters: Sequence[str], reserved: frozenset[str]) -> dict[str, str]:
    """A new letter for each user letter that is a reserved name: the first of :data:`RENAME_POOL`
    that is neither reserved nor a letter the user wrote."""
    out: dict[str, str] = {}
    taken = set(reserved) | set(letters)
    for ix in letters:
        if ix in reserved:
            new = next(c for c in RENAME_POOL if c not in taken)
            out[ix] = new
            taken.add(new)
    return out


def nameable(e: Expr) -> bool:
    """Definitions worth recognising inside derivatives: a function's value, a softmax, a
    log-sum-exp, a maximum (a product or a sum is printed as the factors it is made of)."""
    if isinstance(e, Apply):
        return not any(e.fn.deriv)
    return isinstance(e, (Softmax, LogSumExp, Max, MatDet, Inv))


def every_expr(derivation) -> Iterable[Expr]:
    """Every expression of a derivation: nodes, quantities, blocks."""
    for n in derivation.nodes:
        yield n.expr
    for q in derivation.quantities:
        yield q.expr
    for b in derivation.blocks.values():
        yield b.expr


def softmaxes(e: Expr) -> Iterator[Softmax]:
    """The softmaxes inside ``e``, outermost first."""
    return (x for x in walk(e) if isinstance(x, Softmax))
