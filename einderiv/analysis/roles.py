"""Tensor roles: what each tensor of a derivation is, for whoever shows it.

:class:`Context` knows, for a derivation, which slots of a tensor are
written up or down (parameters ``W^j_i``: first index up, the rest down;
adjoints ``∂f/∂z_j``: down; Jacobians ``η^{(a,s),m}_j``: a's indices up,
s's down), which Jacobians are the paper's γ (Eq. 1), which adjoints are the
objective's own ``∂f/∂p`` (left unevaluated, as in Eq. 6), what symbol
stands for ``softmax(p)``, and which node a repeated definition is
(:meth:`Context.named`: ``a^{qk}``, not ``softmax_k(s^{qk})`` again).

Roles are data: the printers (``einderiv.emit``) give each role its symbol.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from ..ir import (Apply, Expr, Index, Kind, LogSumExp, Name, Quantity, Ref, Softmax, TensorName, match_indices,
                  shape_key, walk)


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
    softmax: dict[TensorName, str] = field(default_factory=dict)  # arg tensor -> symbol
    #: node definitions a printed expression may repeat: (pattern, node name, node indices),
    #: keyed by :func:`~einderiv.ir.shape_key`; see :meth:`named`
    defined: dict[tuple, tuple[tuple[Expr, object, tuple[Index, ...]], ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, derivation) -> "Context":
        net = derivation.network
        arity = {family(t.name): len(t.indices) for t in net.tensors}
        arity.update({family(n.name): len(n.indices) for n in derivation.nodes})
        gammas = set()
        for n in derivation.nodes:
            if isinstance(n.expr, Apply):
                for a in n.expr.args:
                    if isinstance(a, Ref) and isinstance(a.name, Name):
                        gammas.add((family(n.name), family(a.name)))
        taken = {str(n) for n in arity} | {str(net.objective)}
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
        softmax = {}
        for a in args:
            sym = "s" if len(args) == 1 and "s" not in taken else f"s_{a}"
            softmax[a] = sym
        return cls(net.objective, tuple(family(a) for a in derivation.objective_args), arity,
                   frozenset(gammas), softmax, {k: tuple(v) for k, v in defined.items()})

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

    def letters_taken(self, exprs: Iterable[Expr]) -> tuple[str, ...]:
        """Symbols an index letter must not look like in these expressions (``s`` for softmax)."""
        if any(True for e in exprs for _ in softmaxes(e)):
            return tuple(sorted(self.softmax.values()))
        return ()

    # -- slots -------------------------------------------------------------
    def n_indices(self, name: TensorName, default: int) -> int:
        return self.arity.get(family(name), default)

    def upper(self, name, n: int) -> tuple[bool, ...]:
        """Which of ``n`` slots of tensor ``name`` are written up."""
        if isinstance(name, Quantity):
            if name.kind is Kind.JAC:
                k = self.n_indices(name.parts[0], n // 2)
                return tuple(i < k for i in range(n))
            return (False,) * n  # adjoints, ∂²f/∂p∂p, higher totals: covariant
        return tuple(i == 0 for i in range(n))

    def role(self, q: Quantity) -> str:
        """'dfdp' (the objective's own ∂f/∂p), 'adj', 'gamma', 'eta', 'hobj', 'd' or the kind."""
        if q.kind is Kind.ADJ:
            return "dfdp" if family(q.parts[0]) in self.objective_args else "adj"
        if q.kind is Kind.JAC:
            same = len({p.labels for p in q.parts}) == 1  # γ[v(k)] relates a node to its own argument
            return "gamma" if same and tuple(map(family, q.parts)) in self.gammas else "eta"
        return q.kind.value

    def of_objective(self, q: Quantity) -> bool:
        """Whether ``q`` is the objective's own derivative (∂f/∂p, ∂²f/∂p∂p), left named as in Eq. 6."""
        return self.role(q) in ("dfdp", "hobj")

    def split_jac(self, q: Quantity, indices: Sequence) -> tuple[tuple, tuple]:
        k = self.n_indices(q.parts[0], len(indices) // 2)
        return tuple(indices[:k]), tuple(indices[k:])


def nameable(e: Expr) -> bool:
    """Definitions worth recognising inside derivatives: a function's value, a softmax, a
    log-sum-exp (a product or a sum is printed as the factors it is made of)."""
    if isinstance(e, Apply):
        return not any(e.fn.deriv)
    return isinstance(e, (Softmax, LogSumExp))


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
