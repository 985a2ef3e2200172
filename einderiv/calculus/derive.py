"""The network-level chain rule: gradients, every Hessian block, higher orders.

The network becomes a DAG of *nodes*: one per definition, plus one per
function argument that is not a bare tensor (the pre-activations ``z``, which
the paper writes inline as ``A'(w v)``).  For a node ``n = E_n(…)``, local
partials ``∂E_n/∂R`` come from the rule table (:mod:`einderiv.diff`).  From
them we build named, shared intermediates, each defined once in terms of the
others — the roles of the paper's Eqs. 1–4:

* ``adj[n]``    = ∂f/∂n, by reverse accumulation over n's consumers
                   (for a layer's pre-activation this is the back-propagated
                   quantity ∂f/∂p_l u^l_m η^{(n,k),m}_i of Eq. 6);
* ``jac[a,s]``  = ∂a/∂s, by forward accumulation (η^{(k,l)} of Eq. 4 when a
                   is a layer output and s a pre-activation);
* ``hobj[p,p]`` = ∂²f/∂p∂p, the objective's own Hessian (left named, as in the
                   paper, and given in closed form by its definition).

First order:  ∂f/∂θ = Σ_{s uses θ} adj[s] · ∂E_s/∂θ            (Eqs. 5–6)

Second order (Faà di Bruno on a DAG): every second-order contribution comes
from one node's local second partial, weighted by that node's adjoint and
pulled back along the first-order derivatives of its two arguments:

    ∂²f/∂θ∂φ = Σ_n Σ_{a,b ∈ args(n)} adj[n] · ∂²E_n/∂a∂b · (da/dθ) ⊗ (db/dφ)

with da/dθ = Σ_{s uses θ} jac[a,s] · ∂E_s/∂θ — an outer product for a dense
layer.  The objective node gives the Gauss–Newton term of Eqs. 7–9, bilinear
nodes ``z = W v`` give the r ≠ k cross terms of Eq. 9, and activation nodes
give the A'' terms that Eq. 9 drops for ReLU.

Orders ≥ 3 apply a total derivative to the order-(N−1) blocks; named
quantities it meets are differentiated once and named (``d[...]``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field


from .diff import partial
from ..errors import EinderivError
from .functions import FunctionTable
from ..ir import (ONE, ZERO, Apply, Const, Delta, Expr, Index, Kind, LogSumExp, Name, Quantity,
                 Ref, Softmax, add, fresh, is_zero, reset_fresh, map_children, prod, ref_names,
                 rename, substitute)
from ..frontend.network import Network
from .simplify import Simplifier


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
    """One derivative block ∂^k f / ∂θ1 … ∂θk (per sample)."""

    wrt: tuple[Name, ...]
    indices: tuple[Index, ...]  # θ1's axes, then θ2's, …
    expr: Expr  # simplified sum of monomials
    paper: Expr | None = None  # the paper's form (first order), for display


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

    def quantity(self, q: Quantity) -> QDef:
        return next(d for d in self.quantities if d.name == q)

    def node(self, name: Name) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def block(self, *wrt: Name | str) -> Block:
        """The block ∂^k f/∂wrt[0]…∂wrt[k-1]; plain strings name tensors without labels."""
        return self.blocks[tuple(Name(w) if isinstance(w, str) else w for w in wrt)]

    def blocks_of_order(self, k: int) -> dict[tuple[Name, ...], Block]:
        return {w: b for w, b in self.blocks.items() if len(w) == k}


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
            if isinstance(e, (Softmax, LogSumExp)):
                return type(e)(hoist(e.arg), e.over)
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


# ------------------------------------------------------------------- deriver
class Deriver:
    """Builds the named intermediates and derivative blocks of a network."""

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
        for n in self.nodes:
            direct = {r for r in self._refs[n.name] if r in self.node}
            self._deps[n.name] = frozenset(direct.union(*(self._deps[r] for r in direct)))

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
        return tuple(m.name for m in self.nodes if n in self._refs[m.name])

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
            paper.append(self._paper_adjoint(s, si, loc, ti))
        return Block((theta,), ti, self.S.simplify(add(terms)), self.S.simplify(add(paper)))

    def _paper_adjoint(self, s: Name, si, loc: Expr, ti) -> Expr:
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

    def hessian(self, theta: Name, phi: Name, node_pairs: bool = True) -> Block:
        """The expanded (paper) form: Faà di Bruno over every node and argument pair.

        With ``node_pairs=False`` only pairs where an argument *is* θ or φ are
        kept — the rest is what :meth:`hessian_compact` writes through ``hess[s,s']``.
        """
        ti, pi = self.slots(theta), self.slots(phi)
        terms = []
        for n in [m.name for m in self.nodes]:
            args = self.node_args(n)
            for r1, r2 in itertools.product(args, args):
                if not node_pairs and r1 in self.node and r2 in self.node:
                    continue
                d1, d2 = self.fwd(r1, theta), self.fwd(r2, phi)
                if is_zero(d1.expr) or is_zero(d2.expr):
                    continue
                l2 = self.local2(n, r1, r2)
                if is_zero(l2.expr):
                    continue
                ni = self.slots(n)
                i1, i2 = self.slots(r1), self.slots(r2)
                if n == self.f:
                    q = Quantity(Kind.HOBJ, (r1, r2))
                    if q not in self.quant:
                        self.define(q, l2.indices[len(ni):], l2.expr)
                    weight_l2 = self.qref(q, i1 + i2)
                else:
                    weight_l2 = prod((self.adj_ref(n, ni), l2.at(ni + i1 + i2)), i1 + i2)
                terms.append(prod((weight_l2, d1.at(i1 + ti), d2.at(i2 + pi)), ti + pi))
        return Block((theta, phi), ti + pi, self.S.simplify(add(terms)))

    def gauss_newton(self, theta: Name) -> Block:
        """The objective node's part of ∂²f/∂θ∂θ: J_aᵀ ∂²f/∂a∂b J_b over the objective's
        arguments a, b (the GGN block: f's Hessian pulled back through the network's
        Jacobian; a parameter the objective uses directly, a penalty, has J = identity)."""
        ti, pi = self.slots(theta), self.slots(theta)
        terms = []
        args = self.node_args(self.f)
        for r1, r2 in itertools.product(args, args):
            d1, d2 = self.fwd(r1, theta), self.fwd(r2, theta)
            l2 = self.local2(self.f, r1, r2)
            if is_zero(d1.expr) or is_zero(d2.expr) or is_zero(l2.expr):
                continue
            q = Quantity(Kind.HOBJ, (r1, r2))
            if q not in self.quant:
                self.define(q, l2.indices, l2.expr)
            i1, i2 = self.slots(r1), self.slots(r2)
            terms.append(prod((self.qref(q, i1 + i2), d1.at(i1 + ti), d2.at(i2 + pi)), ti + pi))
        return Block((theta, theta), ti + pi, self.S.simplify(add(terms)))

    # -- compact Hessians: the second-order adjoint -----------------------------
    def hess(self, s: Name, s2: Name) -> Quantity:
        """``hess[s,s']`` = ∂²f/∂ε_s∂ε_s' for additive perturbations ε at nodes s, s'.

        Recursion over s's consumers (the second-order analogue of the adjoint):
        hess[s,s'] = Σ_c hess[c,s'] ∂E_c/∂s + δ[c] Σ_b ∂²E_c/∂s∂b η[b,s'],
        ending at the objective, where δ[f] = 1 and ∂²E_f is ∂²f/∂p∂p.  Every
        (s, s') pair has O(1) terms, so all blocks together cost O(L²) terms
        instead of the expanded form's O(L³) A″ terms.
        """
        q = Quantity(Kind.HESS, (s, s2))
        if q in self.quant:
            return q
        si, s2i = self.slots(s), self.slots(s2)
        terms = []
        for c in self.consumers(s):
            ci = self.slots(c)
            if c != self.f:
                terms.append(prod((self.qref(self.hess(c, s2), ci + s2i),
                                   self.local(c, s).at(ci + si)), si + s2i))
            for b in self.node_args(c):
                if b not in self.node or (b != s2 and not self.depends(b, s2)):
                    continue
                l2 = self.local2(c, s, b)
                if is_zero(l2.expr):
                    continue
                bi = self.slots(b)
                j = self.delta(bi, s2i) if b == s2 else self.qref(self.jac(b, s2), bi + s2i)
                terms.append(prod((self.adj_ref(c, ci), l2.at(ci + si + bi), j), si + s2i))
        return self.define(q, si + s2i, add(terms))

    def hessian_compact(self, theta: Name, phi: Name) -> Block:
        """∂²f/∂θ∂φ = Σ_{s,s'} ∂E_s/∂θ · hess[s,s'] · ∂E_s'/∂φ + the terms where an
        argument of a node is θ or φ itself (the r ≠ k cross terms of Eq. 9)."""
        direct = self.hessian(theta, phi, node_pairs=False)
        ti, pi = direct.indices[:len(direct.indices) - len(self.decl[phi].indices)], \
            direct.indices[len(direct.indices) - len(self.decl[phi].indices):]
        terms = [direct.expr]
        for s in self.sites(theta):
            for s2 in self.sites(phi):
                if self.f in (s, s2):
                    continue
                si, s2i = self.slots(s), self.slots(s2)
                terms.append(prod((self.local(s, theta).at(si + ti), self.qref(self.hess(s, s2), si + s2i),
                                   self.local(s2, phi).at(s2i + pi)), ti + pi))
        return Block((theta, phi), ti + pi, self.S.simplify(add(terms)))

    # -- Hessian-vector products: the R-operator ------------------------------
    def directional(self, e: Expr) -> Expr:
        """d e along the direction v (free: e.free): Σ_T ∂e/∂T · (dT along v).

        The direction is one tensor ``dir[φ]`` per parameter (the ``vector``
        of ``hvp``); every derivative is contracted with it at once, so every
        quantity made here has the shape of the one it differentiates — a
        vector per node — and an HVP costs a few gradients (Pearlmutter's
        R-operator, derived rather than hand-written).
        """
        terms = []
        for name in ref_names(e):
            tan = self.tangent_of(name)
            if tan is None:
                continue
            w = self.slots(name)
            terms.append(prod((partial(e, name, w), tan(w)), e.free))
        return add(terms)

    def tangent_of(self, name):
        """``indices -> expression`` of name's derivative along v, or None if it has none."""
        if isinstance(name, Quantity):
            if name.kind is Kind.DIR:
                return None
            q = Quantity(Kind.RADJ, name.parts) if name.kind is Kind.ADJ else Quantity(Kind.R, (name,))
            if q not in self.quant:
                d = self.quant[name]
                self.define(q, d.indices, self.directional(d.expr))
            return lambda w: self.qref(q, w)
        if name in self.params:
            q = Quantity(Kind.DIR, (name,))
            if q not in self.quant:
                self.quant[q] = QDef(q, self.decl[name].indices, ONE)  # an input: no definition
            return lambda w: Ref(q, w)
        if name in self.node:
            q = Quantity(Kind.TAN, (name,))
            if q not in self.quant:
                node = self.node[name]
                self.define(q, node.indices, self.directional(node.expr))
            return lambda w: self.qref(q, w)
        return None  # data

    def hvp(self, theta: Name, gradient: Block) -> Block:
        """Σ_φ ∂²f/∂θ∂φ v[φ] as the directional derivative of θ's gradient."""
        return Block((theta, Name("v")), gradient.indices, self.S.simplify(self.directional(gradient.expr)))

    # -- total derivatives (orders ≥ 3) ---------------------------------------
    def total(self, e: Expr, theta: Name, ti: tuple[Index, ...]) -> Expr:
        """d e / d θ through every tensor e mentions (free: e.free + ti)."""
        terms = []
        for name in ref_names(e):
            tot = self.total_of(name, theta)
            if is_zero(tot.expr):
                continue
            w = tot.indices[: len(tot.indices) - len(ti)]
            w = tuple(fresh(ix.dim, ix.name) for ix in w)
            terms.append(prod((partial(e, name, w), tot.at(w + ti)), e.free + ti))
        return add(terms)

    def total_of(self, name, theta: Name) -> Rel:
        if isinstance(name, Quantity):
            q = Quantity(Kind.D, (name, theta))
            if q not in self.quant:
                d = self.quant[name]
                ti = self.slots(theta)
                self.define(q, d.indices + ti, self.total(d.expr, theta, ti))
            idx = self.slots(q)
            return Rel(idx, self.qref(q, idx))
        if name in self.node or name in self.params:
            return self.fwd(name, theta)
        ri, ti = self.slots(name), self.slots(theta)
        return Rel(ri + ti, ZERO)

    def higher(self, block: Block, psi: Name) -> Block:
        pi = self.slots(psi)
        e = self.inline_totals(self.total(block.expr, psi, pi))
        return Block(block.wrt + (psi,), block.indices + pi, self.S.simplify(e))

    def inline_totals(self, e: Expr) -> Expr:
        """Replace each ``d[...]`` quantity by its definition, recursively.

        The derivative of a named intermediate is a sum of products of
        first-order intermediates; written out, every term of a higher-order
        block shows its outer-product factors (``x^i ⊗ η …``) instead of
        hiding them inside one named higher-rank tensor.
        """
        for name in ref_names(e):
            if isinstance(name, Quantity) and name.kind is Kind.D:
                d = self.quant[name]
                body = self.inline_totals(d.expr)
                e = substitute(e, name, lambda r, d=d, body=body: rename(body, dict(zip(d.indices, r.indices))))
        return e


# -------------------------------------------------------------------- driver
def derive(network: Network, order: int = 2, expanded: bool = True) -> Derivation:
    """Every derivative block up to ``order`` (1: gradients, 2: + Hessian blocks, …).

    ``expanded=True`` writes Hessian blocks in the paper's expanded form (every
    Gauss–Newton and A″ term spelled out, Eqs. 7–9) — what the printers show;
    ``expanded=False`` writes them through the second-order adjoints
    ``hess[s,s']`` (O(L²) terms in all, for the code generator).  Both are
    checked numerically; orders ≥ 3 always build on the expanded form.
    """
    if order < 1:
        raise EinderivError(f"--order must be at least 1, got {order}")
    expanded = expanded or order >= 3
    d = Deriver(network)
    params = tuple(d.params)
    if not params:
        raise EinderivError(f"{network.path}: the network declares no weight to differentiate")
    blocks: dict[tuple[str, ...], Block] = {}
    for t in params:
        blocks[(t,)] = d.gradient(t)
    ggn: dict[str, Block] = {}
    if order >= 2:
        for a, b in itertools.product(params, params):
            blocks[(a, b)] = d.hessian(a, b) if expanded else d.hessian_compact(a, b)
        ggn = {t: d.gauss_newton(t) for t in params}
    for k in range(3, order + 1):
        for wrt in itertools.product(params, repeat=k):
            blocks[wrt] = d.higher(blocks[wrt[:-1]], wrt[-1])
    quantities = _dependency_order(d.quant, tuple(b.expr for b in (*blocks.values(), *ggn.values())))
    hvp: dict[str, Block] = {}
    hvp_quantities: tuple[QDef, ...] = ()
    if order >= 2:
        hvp = {t: d.hvp(t, blocks[(t,)]) for t in params}
        known = {q.name for q in quantities}
        hvp_quantities = tuple(q for q in _dependency_order(d.quant, tuple(b.expr for b in hvp.values()))
                               if q.name not in known and q.name.kind is not Kind.DIR)
    obj_args = tuple(r for r in d.node_args(d.f) if r in d.node)
    return Derivation(network, d.table, order, d.nodes, quantities, blocks, obj_args, hvp,
                      hvp_quantities, ggn, expanded)


def _dependency_order(quant: dict[Quantity, QDef], roots: tuple[Expr, ...]) -> tuple[QDef, ...]:
    """The quantities the blocks use, each after those it refers to (creation order otherwise).

    Gradients use every adjoint they are written with; quantities made only
    on the way (``d[...]`` ones inlined into higher-order blocks) are dropped.
    """
    done: dict[Quantity, QDef] = {}
    used: set[Quantity] = set()

    def mark(e: Expr) -> None:
        for r in ref_names(e):
            if isinstance(r, Quantity) and r not in used:
                used.add(r)
                mark(quant[r].expr)

    for e in roots:
        mark(e)

    def visit(q: Quantity, stack: tuple = ()) -> None:
        if q in done:
            return
        if q in stack:
            raise EinderivError(f"internal error: cyclic quantity {q}")
        for r in ref_names(quant[q].expr):
            if isinstance(r, Quantity):
                visit(r, stack + (q,))
        done[q] = quant[q]

    for q in quant:
        if q in used:
            visit(q)
    return tuple(v for v in done.values() if not is_zero(v.expr))
