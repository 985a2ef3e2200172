"""The network-level chain rule, first order: adjoints, Jacobians, gradients.

For a node ``n = E_n(…)``, local partials ``∂E_n/∂R`` come from the rule table
(:mod:`einderiv.calculus.diff`).  From them :class:`ChainRule` builds named,
shared intermediates, each defined once in terms of the others — the roles of
the paper's Eqs. 1–4:

* ``adj[n]``    = ∂f/∂n, by reverse accumulation over n's consumers
                   (for a layer's pre-activation this is the back-propagated
                   quantity ∂f/∂p_l u^l_m η^{(n,k),m}_i of Eq. 6);
* ``jac[a,s]``  = ∂a/∂s, by forward accumulation (η^{(k,l)} of Eq. 4 when a
                   is a layer output and s a pre-activation).

First order:  ∂f/∂θ = Σ_{s uses θ} adj[s] · ∂E_s/∂θ            (Eqs. 5–6)
"""
from __future__ import annotations

from ..frontend.network import Network
from ..ir import (ONE, ZERO, Delta, Expr, Index, Kind, Name, Quantity, Ref, add, fresh, is_zero, prod,
                  ref_names, reset_fresh)
from .derivation import Block, QDef, Rel, lift
from .diff import partial
from .functions import FunctionTable
from .simplify import Simplifier



# ------------------------------------------------------------------- deriver
class ChainRule:
    """Builds the named first-order intermediates and the gradients of a network."""

    def __init__(self, network: Network, table: FunctionTable | None = None):
        reset_fresh()
        self.net = network
        self.table = table or FunctionTable(tuple(
            (u.name, len(u.params), u.body) for u in network.functions))
        self.S = Simplifier(self.table)
        self.nodes = lift(network)
        self.node = {n.name: n for n in self.nodes}
        self.f = network.objective
        self.params = {t.name: t for t in network.params}
        self.decl = {t.name: t for t in network.tensors}
        self.quant: dict[Quantity, QDef] = {}
        self._local: dict[tuple, Rel] = {}
        self._deps: dict[str, frozenset[str]] = {}
        self._refs = {n.name: ref_names(n.expr) for n in self.nodes}  # asked for on every rule
        self._consumers: dict = {}  # name -> the nodes that read it, in node order (asked O(L²) times)
        for n in self.nodes:
            direct = {r for r in self._refs[n.name] if r in self.node}
            self._deps[n.name] = frozenset(direct.union(*(self._deps[r] for r in direct)))
            for r in self._refs[n.name]:
                users = self._consumers.setdefault(r, [])
                if not users or users[-1] != n.name:
                    users.append(n.name)
        self._consumers = {r: tuple(users) for r, users in self._consumers.items()}

    # -- small helpers ---------------------------------------------------
    def slots(self, name) -> tuple[Index, ...]:
        """Fresh indices for the axes of a node, parameter or quantity."""
        if isinstance(name, Quantity):
            return tuple(fresh(ix.dim, ix.name) for ix in self.quant[name].indices)
        if name in self.node:
            src = self.node[name].indices
        else:
            src = self.decl[name].indices
        return tuple(fresh(ix.dim, ix.name) for ix in src)

    def depends(self, a: Name, s: Name) -> bool:
        return a in self._deps and s in self._deps[a]

    def consumers(self, n: Name) -> tuple[Name, ...]:
        return self._consumers.get(n, ())

    def sites(self, theta: Name) -> tuple[Name, ...]:
        """Nodes whose expression uses parameter θ directly (the objective included)."""
        return self.consumers(theta)

    def node_args(self, n: Name) -> tuple[Name, ...]:
        """Tensors in n's expression that can carry a derivative."""
        return tuple(r for r in self._refs[n] if r in self.node or r in self.params)

    def define(self, q: Quantity, indices: tuple[Index, ...], expr: Expr) -> Quantity:
        self.quant[q] = QDef(q, indices, self.S.simplify(expr))
        return q

    def qref(self, q: Quantity, indices: tuple[Index, ...]) -> Expr:
        """A reference to a quantity; zero quantities are folded away."""
        d = self.quant[q]
        return ZERO if is_zero(d.expr) else Ref(q, indices)

    # -- local partials ---------------------------------------------------
    def local(self, n: Name, r: Name) -> Rel:
        """∂E_n/∂r, slots: n's axes then r's axes."""
        key = (n, r)
        if key not in self._local:
            node = self.node[n]
            w = self.slots(r)
            self._local[key] = Rel(node.indices + w, self.S.simplify(partial(node.expr, r, w)))
        return self._local[key]

    def local2(self, n: Name, r1: Name, r2: Name) -> Rel:
        """∂²E_n/∂r1∂r2, slots: n's axes, r1's, r2's."""
        key = (n, r1, r2)
        if key not in self._local:
            first = self.local(n, r1)
            w = self.slots(r2)
            self._local[key] = Rel(first.indices + w, self.S.simplify(partial(first.expr, r2, w)))
        return self._local[key]

    # -- adjoints ∂f/∂n ---------------------------------------------------
    def adj(self, n: Name) -> Quantity:
        q = Quantity(Kind.ADJ, (n,))
        if q in self.quant:
            return q
        idx = self.slots(n)
        terms = []
        for c in self.consumers(n):
            loc = self.local(c, n)
            ci = self.slots(c)
            if c == self.f:
                terms.append(loc.at(idx))
            else:
                cq = self.adj(c)
                terms.append(prod((self.qref(cq, ci), loc.at(ci + idx)), idx))
        return self.define(q, idx, add(terms))

    def adj_ref(self, n: Name, indices: tuple[Index, ...]) -> Expr:
        return ONE if n == self.f else self.qref(self.adj(n), indices)

    # -- Jacobians ∂a/∂s ---------------------------------------------------
    def jac(self, a: Name, s: Name) -> Quantity:
        q = Quantity(Kind.JAC, (a, s))
        if q in self.quant:
            return q
        ai, si = self.slots(a), self.slots(s)
        terms = []
        if a in self.node_args(self.f):
            # an argument of the objective (the output p): accumulate backwards
            # from it, η[p,s] = Σ_c η[p,c] ∂E_c/∂s, so every layer's η[p,·] is
            # out × width (c × h) and they share work — the Gauss–Newton factors
            for c in self.consumers(s):
                if c != a and not self.depends(a, c):
                    continue
                ci = self.slots(c)
                outer = self.delta(ai, ci) if c == a else self.qref(self.jac(a, c), ai + ci)
                terms.append(prod((outer, self.local(c, s).at(ci + si)), ai + si))
            return self.define(q, ai + si, add(terms))
        for r in self.node_args(a):
            if r != s and not self.depends(r, s):
                continue
            ri = self.slots(r)
            loc = self.local(a, r).at(ai + ri)
            inner = self.delta(ri, si) if r == s else self.qref(self.jac(r, s), ri + si)
            terms.append(prod((loc, inner), ai + si))
        return self.define(q, ai + si, add(terms))

    @staticmethod
    def delta(a: tuple[Index, ...], b: tuple[Index, ...]) -> Expr:
        return prod((Delta(x, y) for x, y in zip(a, b)), a + b)

    # -- forward derivative of a tensor w.r.t. a parameter -----------------
    def fwd(self, r: Name, theta: Name) -> Rel:
        """d r / d θ (total), slots: r's axes then θ's axes."""
        key = ("fwd", r, theta)
        if key in self._local:
            return self._local[key]
        ri, ti = self.slots(r), self.slots(theta)
        if r == theta:
            rel = Rel(ri + ti, self.delta(ri, ti))
        elif r not in self.node:
            rel = Rel(ri + ti, ZERO)
        else:
            terms = []
            for s in self.sites(theta):
                if s == self.f or (s != r and not self.depends(r, s)):
                    continue
                si = self.slots(s)
                j = self.delta(ri, si) if s == r else self.qref(self.jac(r, s), ri + si)
                terms.append(prod((j, self.local(s, theta).at(si + ti)), ri + ti))
            rel = Rel(ri + ti, add(terms))
        self._local[key] = rel
        return rel

    # -- blocks ---------------------------------------------------------------
    def gradient(self, theta: Name) -> Block:
        ti = self.slots(theta)
        terms, paper = [], []
        for s in self.sites(theta):
            si = self.slots(s)
            loc = self.local(s, theta).at(si + ti)
            terms.append(prod((self.adj_ref(s, si), loc), ti))
            paper.append(self.paper_adjoint(s, si, loc, ti))
        return Block((theta,), ti, self.S.simplify(add(terms)), self.S.simplify(add(paper)))

    def paper_adjoint(self, s: Name, si, loc: Expr, ti) -> Expr:
        """adj[s]·loc written as ∂f/∂p · (∂p/∂v) η · loc, the form of Eq. 6."""
        if s == self.f:
            return loc
        terms = []
        for r in self.node_args(self.f):
            if r not in self.node or (r != s and not self.depends(r, s)):
                continue
            if r == s:
                terms.append(prod((self.qref(self.adj(r), si), loc), ti))
                continue
            ri = self.slots(r)
            dfdr = self.qref(self.adj(r), ri)
            # inline jac[r, s] one level so the layer weights show, as in the paper
            for r2 in self.node_args(r):
                if r2 != s and not self.depends(r2, s):
                    continue
                r2i = self.slots(r2)
                inner = self.delta(r2i, si) if r2 == s else self.qref(self.jac(r2, s), r2i + si)
                terms.append(prod((dfdr, self.local(r, r2).at(ri + r2i), inner, loc), ti))
        return add(terms)

