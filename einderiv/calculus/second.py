"""Second and higher orders: Hessian blocks (expanded and compact), GGN, HVP by the R-operator.

Second order (Faà di Bruno on a DAG): every second-order contribution comes
from one node's local second partial, weighted by that node's adjoint and
pulled back along the first-order derivatives of its two arguments:

    ∂²f/∂θ∂φ = Σ_n Σ_{a,b ∈ args(n)} adj[n] · ∂²E_n/∂a∂b · (da/dθ) ⊗ (db/dφ)

with da/dθ = Σ_{s uses θ} jac[a,s] · ∂E_s/∂θ — an outer product for a dense
layer.  The objective node gives the Gauss–Newton term of Eqs. 7–9 (through
``hobj[p,p]`` = ∂²f/∂p∂p, left named as in the paper), bilinear nodes ``z = W v``
give the r ≠ k cross terms of Eq. 9, and activation nodes give the A'' terms
that Eq. 9 drops for ReLU.  :meth:`SecondOrder.hessian_compact` writes the same
blocks through second-order adjoints ``hess[s,s']`` (O(L²) terms instead of
O(L³)); :meth:`SecondOrder.hvp` is Pearlmutter's R-operator, derived.

Orders ≥ 3 apply a total derivative to the order-(N−1) blocks; named
quantities it meets are differentiated once and named (``d[...]``).  The
expanded form writes them out inline (every term shows its outer-product
factors); the compact form keeps them named, shared by every block that
needs them, and names each node's derivative ``d[n,θ]`` too.
"""
from __future__ import annotations

import itertools

from ..ir import (ONE, ZERO, Expr, Index, Kind, Name, Quantity, Ref, add, fresh, is_zero, prod, ref_names,
                  rename, substitute)
from .chain import ChainRule
from .derivation import Block, QDef, Rel
from .diff import partial


class SecondOrder(ChainRule):
    """The chain rule of :class:`~einderiv.calculus.chain.ChainRule`, to every order.

    ``named_totals``: orders ≥ 3 in the compact form (``d[...]`` quantities stay named).
    """

    named_totals = False

    def hessian(self, theta: Name, phi: Name) -> Block:
        """The expanded (paper) form: Faà di Bruno over every node and argument pair."""
        ti, pi, terms = self.faa_di_bruno(theta, phi, node_pairs=True)
        return Block((theta, phi), ti + pi, self.S.simplify(add(terms)))

    def faa_di_bruno(self, theta: Name, phi: Name, node_pairs: bool) -> tuple:
        """θ's and φ's slots and the unsimplified terms of ∂²f/∂θ∂φ, one per node and argument pair.

        With ``node_pairs=False`` only pairs where an argument *is* θ or φ are
        kept — the rest is what :meth:`hessian_compact` writes through ``hess[s,s']``.
        """
        ti, pi = self.slots(theta), self.slots(phi)
        terms = []
        nodes = [m.name for m in self.nodes]
        if not node_pairs:  # a pair with an argument that is not a node has θ or φ itself as that argument
            users = set(self.consumers(theta)) | set(self.consumers(phi))
            nodes = [n for n in nodes if n in users]
        for n in nodes:
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
        return ti, pi, terms

    def objective_hessians(self) -> tuple:
        """The objective's Hessian in its arguments, ∂²f/∂a∂b, as quantities ``hobj[a,b]`` (those
        not zero): the GGN's middle factor, for a module that takes the GGN from seeds."""
        args = self.node_args(self.f)
        out = []
        for r1, r2 in itertools.product(args, args):
            l2 = self.local2(self.f, r1, r2)
            if is_zero(l2.expr):
                continue
            q = Quantity(Kind.HOBJ, (r1, r2))
            if q not in self.quant:
                self.define(q, l2.indices, l2.expr)
            out.append(Ref(q, l2.indices))
        return tuple(out)

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
        ti, pi, terms = self.faa_di_bruno(theta, phi, node_pairs=False)  # simplified once, with the rest
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
        if isinstance(name, Quantity) and name.kind is Kind.DIR:
            return None
        if isinstance(name, Quantity) or name in self.node:
            q = self._tangent(name)[0]
            if q not in self.quant:
                self._define_tangents(name)
            return lambda w: self.qref(q, w)
        if name in self.params:
            q = Quantity(Kind.DIR, (name,))
            if q not in self.quant:
                self.quant[q] = QDef(q, self.decl[name].indices, ONE)  # an input: no definition
            return lambda w: Ref(q, w)
        return None  # data

    def _tangent(self, name):
        """The tangent quantity of a quantity or a node, with the indices and expression it
        differentiates."""
        if isinstance(name, Quantity):
            q = Quantity(Kind.RADJ, name.parts) if name.kind is Kind.ADJ else Quantity(Kind.R, (name,))
            d = self.quant[name]
            return q, d.indices, d.expr
        node = self.node[name]
        return Quantity(Kind.TAN, (name,)), node.indices, node.expr

    def _define_tangents(self, name) -> None:
        """Define ``name``'s tangent after those of everything it refers to, depth first, in
        the order a recursion would (so the module is the same), with an explicit stack: a
        chain of 250 definitions must not recurse 500 frames deep (issue 15)."""
        stack = [(name, False)]
        while stack:
            n, ready = stack.pop()
            q, indices, expr = self._tangent(n)
            if q in self.quant:
                continue
            if ready:  # every tangent it needs is defined: directional recurses no further
                self.define(q, indices, self.directional(expr))
                continue
            stack.append((n, True))
            stack.extend((dep, False) for dep in reversed(ref_names(expr))
                         if (isinstance(dep, Quantity) and dep.kind is not Kind.DIR) or dep in self.node)

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
        """d name / d θ: a ``d[...]`` quantity for a named one (and, in the compact form, for a
        node: its forward derivative, Σ_s η[n,s] ∂E_s/∂θ, named once instead of written out at
        each use), the forward derivative of a parameter (δ or 0)."""
        if isinstance(name, Quantity):
            q = Quantity(Kind.D, (name, theta))
            if q not in self.quant:
                d = self.quant[name]
                ti = self.slots(theta)
                body = self.objective_total(name, theta, ti) if self.objective_own(name) else \
                    self.total(d.expr, theta, ti)
                self.define(q, d.indices + ti, body)
            idx = self.slots(q)
            return Rel(idx, self.qref(q, idx))
        if name in self.node and self.named_totals:  # a node's tangent, named too
            q = Quantity(Kind.D, (name, theta))
            if q not in self.quant:
                f = self.fwd(name, theta)
                self.define(q, f.indices, f.expr)
            idx = self.slots(q)
            return Rel(idx, self.qref(q, idx))
        if name in self.node or name in self.params:
            return self.fwd(name, theta)
        ri, ti = self.slots(name), self.slots(theta)
        return Rel(ri + ti, ZERO)

    def objective_own(self, q: Quantity) -> bool:
        """Whether ``q`` is the objective's own derivative: ∂f/∂p of an argument only the objective
        uses, or ∂²f/∂p∂p, ∂³f/∂p∂p∂p, … (left named, as the paper leaves ∂f/∂p) — the compact
        form's second-order adjoint ``hess[p,p']`` of two such arguments included: it is ∂²f/∂p∂p'."""
        if q.kind is Kind.HOBJ:
            return True
        parts = q.parts[:1] if q.kind is Kind.ADJ else q.parts if q.kind is Kind.HESS else ()
        return bool(parts) and all(a in self.node_args(self.f) and self.consumers(a) == (self.f,) for a in parts)

    def objective_total(self, q: Quantity, theta: Name, ti: tuple[Index, ...]) -> Expr:
        """d q/d θ for the objective's own derivative q = ∂^k f/∂a…: Σ_c ∂^{k+1} f/∂a…∂c · dc/dθ
        over the objective's arguments c, each higher derivative a named ``hobj`` quantity."""
        d = self.quant[q]
        parts = q.parts
        terms = []
        for c in self.node_args(self.f):
            tot = self.total_of(c, theta)  # (in the compact form a node's d[c,θ], named)
            if is_zero(tot.expr):
                continue
            h = Quantity(Kind.HOBJ, parts + (c,))
            if h not in self.quant:
                w = self.slots(c)
                self.define(h, d.indices + w, partial(d.expr, c, w))
            ci = self.slots(c)
            terms.append(prod((self.qref(h, d.indices + ci), tot.at(ci + ti)), d.indices + ti))
        return add(terms)

    def higher(self, block: Block, psi: Name) -> Block:
        """d block / d ψ: ``d[...]`` quantities written out (expanded) or named (compact)."""
        pi = self.slots(psi)
        e = self.total(block.expr, psi, pi)
        if not self.named_totals:
            e = self.inline_totals(e)
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


