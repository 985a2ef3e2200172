"""The network-level chain rule: gradients, every Hessian block, higher orders.

The network becomes a DAG of *nodes* (:mod:`.derivation`): one per definition, plus one per
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
quantities it meets are differentiated once and named (``d[...]``).  Mixed
partial derivatives commute, so one block per set of parameters is derived
(the parameters in declaration order, differentiated in that order); every
other ordering is that block transposed (:func:`~einderiv.calculus.derivation.transpose`).
"""
from __future__ import annotations

import dataclasses
import itertools

from .. import progress
from ..errors import Argument, EinderivError, InternalError, UsageError
from ..frontend.network import Network
from ..ir import Expr, Kind, Quantity, is_zero, paused, ref_names
from .derivation import Block, Derivation, QDef, canonical, transpose
from .second import SecondOrder

__all__ = ["derive", "in_form", "Derivation", "FORMS"]

#: the two ways of writing Hessian blocks (see :func:`derive`)
FORMS = ("expanded", "compact")


# -------------------------------------------------------------------- driver
def derive(network: Network, order: int = 2, expanded: bool = True, pairs: bool = True) -> Derivation:
    """Every derivative block up to ``order`` (1: gradients, 2: + Hessian blocks, …).

    ``expanded=True`` writes Hessian blocks in the paper's expanded form (every
    Gauss–Newton and A″ term spelled out, Eqs. 7–9) and higher orders with every
    derivative of an intermediate written out — what the printers show;
    ``expanded=False`` writes Hessian blocks through the second-order adjoints
    ``hess[s,s']`` (O(L²) terms in all) and higher orders through named derivatives
    ``d[q,θ]`` of the intermediates, shared by all blocks — for the code generator.
    Both are checked numerically.  :func:`in_form` gives a derivation in the other form.
    From order 3 on, each set of parameters is derived once; the other orderings of it
    are transposes (:attr:`~einderiv.calculus.derivation.Block.source`).
    ``pairs=False`` (order 2, compact form only) leaves out the Hessian and Gauss–Newton
    blocks: the gradients and the HVP with their quantities, all that the module of a long
    recurrence reads (:mod:`einderiv.emit.columns`); it is for the code generator only.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise UsageError("{0}: the derivative order must be a positive integer",
                         arguments=(Argument("order", None, order),))
    if not pairs and (order != 2 or expanded):
        raise InternalError("derive(pairs=False) is for the compact form at order 2")
    with paused():  # millions of small acyclic objects (einderiv.ir.heap)
        return _derive(network, order, expanded, pairs)


def _derive(network: Network, order: int, expanded: bool, pairs: bool = True) -> Derivation:
    d = SecondOrder(network)
    d.named_totals = not expanded
    params = tuple(d.params)
    if not params:
        objective = network.definition(network.objective)
        raise EinderivError("the network declares no weight to differentiate; declare one, e.g. "
                            "weight W^j_i : n, n", objective.loc if objective else None)
    blocks: dict[tuple[str, ...], Block] = {}
    with progress.stage("gradients", len(params)) as step:
        for t in params:
            blocks[(t,)] = d.gradient(t)
            step()
    ggn: dict[str, Block] = {}
    if order >= 2 and pairs:
        with progress.stage("Hessian blocks", len(params) ** 2) as step:
            for a, b in itertools.product(params, params):
                blocks[(a, b)] = d.hessian(a, b) if expanded else d.hessian_compact(a, b)
                step()
        ggn = {t: d.gauss_newton(t) for t in params}
    position = {p: k for k, p in enumerate(params)}
    ranks = {p: len(d.decl[p].indices) for p in params}
    for k in range(3, order + 1):
        with progress.stage(f"order-{k} blocks", len(params) ** k) as step:
            for wrt in itertools.product(params, repeat=k):  # a set's own ordering comes first
                key, groups = canonical(wrt, position)
                blocks[wrt] = d.higher(blocks[wrt[:-1]], wrt[-1]) if key == wrt else \
                    transpose(blocks[key], wrt, groups, ranks)
                step()
    hobj = () if pairs or order < 2 else d.objective_hessians()  # (the GGN from seeds)
    quantities = _dependency_order(d.quant, tuple(b.expr for b in (*blocks.values(), *ggn.values())) + hobj)
    hvp: dict[str, Block] = {}
    hvp_quantities: tuple[QDef, ...] = ()
    if order >= 2:
        with progress.stage("Hessian-vector products"):
            hvp = {t: d.hvp(t, blocks[(t,)]) for t in params}
        known = {q.name for q in quantities}
        hvp_quantities = tuple(q for q in _dependency_order(d.quant, tuple(b.expr for b in hvp.values()))
                               if q.name not in known and q.name.kind is not Kind.DIR)
    obj_args = tuple(r for r in d.node_args(d.f) if r in d.node)
    return Derivation(network, d.table, order, d.nodes, quantities, blocks, obj_args, hvp,
                      hvp_quantities, ggn, expanded)


def in_form(derivation: Derivation, form: str) -> Derivation:
    """The derivation with its Hessian blocks in ``form``: ``"expanded"`` (the paper's) or
    ``"compact"`` (through ``hess[s,s']``).  Built on first use and kept with the derivation;
    at order 1 they differ only in the flag.
    """
    if form not in FORMS:
        raise UsageError("{0}: the Hessian form is 'expanded' or 'compact'",
                         arguments=(Argument("form", None, form),))
    expanded = form == "expanded"
    if derivation.expanded == expanded:
        return derivation
    if form not in derivation.forms:
        if derivation.order < 2:  # no Hessian block: the same derivation, printed as the other form
            other = dataclasses.replace(derivation, expanded=expanded, forms={})
        else:
            other = derive(derivation.network, derivation.order, expanded)
        other.forms["expanded" if derivation.expanded else "compact"] = derivation
        derivation.forms[form] = other
    return derivation.forms[form]


def expanded_size(derivation: Derivation) -> int:
    """How large the expanded Hessian form would be, known before it is built: the number of
    (node, parameter, parameter) triples with both parameters upstream of the node — each node
    contributes its A″ or cross terms to the blocks of those pairs.  An L-layer MLP has about
    2·L³/3 of them (the expanded form grows as L³; the compact one as L²)."""
    params = {t.name for t in derivation.network.params}
    upstream: dict = {}
    total = 0
    for n in derivation.nodes:  # dependency order
        ups = set()
        for r in ref_names(n.expr):
            ups |= {r} if r in params else upstream.get(r, set())
        upstream[n.name] = ups
        total += len(ups) ** 2
    return total


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
            raise InternalError(f"cyclic quantity {q}")
        for r in ref_names(quant[q].expr):
            if isinstance(r, Quantity):
                visit(r, stack + (q,))
        done[q] = quant[q]

    for q in quant:
        if q in used:
            visit(q)
    return tuple(v for v in done.values() if not is_zero(v.expr))

