"""Write out named quantities whose own definition is already an outer product.

A block's term names its intermediates (``δ[V]_{sd}``, ``η[s,Q]^{qk}_{sd}``), and a
named tensor is one factor: whatever structure its definition has is hidden.  When
that definition is a single product that falls apart into several factors over the
quantity's own axes — ``δ[o]_{qd} = 1/t ∂f/∂p_l U^l_d 𝟙^q`` (mean pooling: the same
adjoint at every position q), ``η[s,Q]^{qk}_{sd} = δ^q_s K^k_d / sqrt(d)`` — writing it
out can split a block's factor further: the value weight of attention with mean pooling,
``δ[V]_{ld} X^l_i``, becomes ``1/t (∂f/∂p_l U^l_d) ⊗ Σ_{q,l} a^{ql} X^l_i``, one outer
product where the named form is a sum over positions.

:class:`Inliner` finds, once per derivation, the *split form* of each quantity: its
definition with the split forms of the quantities it names written in, kept when it is a
single product of at least two factors over the quantity's axes (recursively, so
``δ[a]_{qk} = δ[o]_{ql} V^k_l`` splits through ``δ[o]``).  Sums are never written out
(the number of terms must not grow), nor the objective's own derivatives, which the paper
leaves named.  :meth:`Inliner.terms` writes the split forms into a block's terms; the
structure report (:mod:`einderiv.analysis.structure`) uses them only where they prove a
smaller K, and then shows that form.

Example::

    >>> inl = Inliner(derive(load("derivations/attention.ein"), 1))          # doctest: +SKIP
    >>> str(inl.split_form(Quantity(Kind.ADJ, (Name("o"),))).expr)           # doctest: +SKIP
"""
from __future__ import annotations

from ..calculus.derivation import QDef, Rel
from ..calculus.simplify import Simplifier, Term
from ..ir import Expr, Quantity, add, ref_names, rename, substitute
from .factor import as_terms, factor_term
from .roles import Context


class Inliner:
    """Split forms of a derivation's quantities (see the module docstring).

    With ``chains=True`` every quantity whose definition is a single product is written out,
    split or not: a chain of Jacobians through a narrow layer (``η[z_v4,z_v1]`` through a
    layer of width 1) then shows the narrow index, which a cut can use.
    """

    def __init__(self, derivation, context: Context | None = None, chains: bool = False):
        self.ctx = context or Context.of(derivation)
        self.S = Simplifier(derivation.table)
        self.defs: dict[Quantity, QDef] = {q.name: q for q in derivation.quantities}
        self.chains = chains
        self._forms: dict[Quantity, Rel | None] = {}

    def split_form(self, q: Quantity) -> Rel | None:
        """The split form of ``q`` (slots: its axes), or None when it has none."""
        if q not in self._forms:
            self._forms[q] = None  # a cycle (there is none in a derivation) would stop here
            self._forms[q] = self._split_form(q)
        return self._forms[q]

    def _split_form(self, q: Quantity) -> Rel | None:
        d = self.defs.get(q)
        if d is None or self.ctx.of_objective(q):
            return None
        terms = as_terms(d.expr, d.indices)
        if len(terms) != 1:
            return None
        own = terms[0].expr()
        out = self.S.terms(self.write_in(own) or own)
        if len(out) != 1:
            return None
        t = Term(out[0].coef, out[0].factors, d.indices)
        if factor_term(t).rank < 2 and not self.chains:
            return None
        return Rel(d.indices, t.expr())

    def write_in(self, e: Expr) -> Expr | None:
        """``e`` with every quantity that has a split form written out (None: none has)."""
        changed = False
        for name in ref_names(e):
            if not isinstance(name, Quantity):
                continue
            form = self.split_form(name)
            if form is None:
                continue
            e = substitute(e, name, lambda r, f=form: rename(f.expr, dict(zip(f.indices, r.indices))))
            changed = True
        return e if changed else None

    def terms(self, terms: list[Term]) -> list[Term] | None:
        """A block's terms with split forms written in, simplified (None: nothing to write in)."""
        out, changed = [], False
        for t in terms:
            written = self.write_in(t.expr())
            if written is None:
                out.append(t)
                continue
            changed = True
            out.extend(Term(x.coef, x.factors, t.out) for x in self.S.terms(written))
        if not changed:
            return None
        merged = self.S.terms(add(t.expr() for t in out))
        return [Term(x.coef, x.factors, terms[0].out) for x in merged]
