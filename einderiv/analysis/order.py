"""Display order: what a product, a sum and a factored term show, and in which order.

Every printer (text, LaTeX, a future Markdown one) shows the same factors in
the same order, and the structure summary names the factors as they are
shown; so the order is decided here, from structure and axis positions only,
never from index names (generated names follow a process-wide counter):

* factors of a contracted product follow the chain of summed indices from the
  objective end (:func:`display_order`), so a back-propagated product reads
  ``∂f/∂p_l W3^l_m η^m_j`` like the paper's Eq. 6;
* terms of a sum are sorted by structure (:func:`term_order`);
* a product's constants, nested ones included, are one coefficient
  (:func:`split_coef`, :func:`term_parts`): ``1/(sqrt(d)*t) U^l_d Σ_q o^q_d``;
* a sum's term that is only the broadcast ones vector shows as its number,
  first (:func:`sum_terms`): ``(1 − z^j) h^j``; as a factor it stays ``𝟙^t``;
* a selection tensor summed against one tensor shows as index arithmetic
  (:func:`windows_shown`): ``x^{t+a}`` for ``S^u_{t,a} x^u``.

``axes`` arguments map a statement's open indices to their positions (the
block's axes); without them a product's own ``out`` order is used.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import sympy

from ..ir import (REDUCTIONS, Add, Apply, Const, Delta, Expr, Index, Kind, Ones, Prod, Quantity, Ref,
                  Window)

Axes = Mapping[Index, int]

#: where a chain of contractions starts: the objective's Hessian, then an adjoint
_PRIORITY = {Kind.HOBJ: 0, Kind.ADJ: 1}


def axes_of(indices: Iterable[Index]) -> dict[Index, int]:
    """The positions of a statement's open indices (the first occurrence of each)."""
    out: dict[Index, int] = {}
    for ix in indices:
        out.setdefault(ix, len(out))
    return out


def _priority(f: Expr) -> int | None:
    if isinstance(f, Ref) and isinstance(f.name, Quantity):
        return _PRIORITY.get(f.name.kind)
    return None


def _stable_key(f: Expr, rank_of) -> tuple:
    """Sort key from structure and the positions of free indices, never from index names."""
    if isinstance(f, Apply):
        rank, name = 0, (f.fn.name, f.fn.deriv)
    elif isinstance(f, Delta):
        rank, name = 1, ()
    elif isinstance(f, REDUCTIONS):
        rank, name = 2, (type(f).__name__, getattr(f, "kind", ""))
    elif isinstance(f, Ref):
        rank, name = (4, (str(f.name),)) if isinstance(f.name, Quantity) else (3, (f.name,))
    else:
        rank, name = 5, (type(f).__name__,)
    return rank, name, tuple(rank_of(ix) for ix in f.free)


def term_order(terms: Sequence, axes: Axes | None = None) -> list:
    """Terms of a sum (IR terms or factored terms) in an order independent of index names.

    The simplifier's order can follow generated names, which depend on what a
    process derived before; sorting by structure keeps the output byte-stable.
    """
    order = axes or {}

    def factors(t) -> tuple:
        if hasattr(t, "groups"):  # a FactoredTerm
            return tuple(f for g in t.scalars + t.groups for f in g.factors)
        if isinstance(t, Prod):
            return t.factors
        return (t,)

    def key(t) -> tuple:
        fs = [f for f in factors(t) if not isinstance(f, Const)]
        return (len(fs), sorted(_stable_key(f, lambda ix: order.get(ix, len(order))) for f in fs))

    return sorted(terms, key=key)


def display_order(factors: Sequence[Expr], out: Iterable[Index], axes: Axes | None = None) -> tuple[Expr, ...]:
    """Order a product's factors along its chain of summed indices.

    The chain starts at the objective end (∂²f/∂p∂p, then an adjoint) when
    one takes part in a contraction, so ``W3^{c0}_{c1} adj[p]_{c0} η^{c1}_j``
    reads ``∂f/∂p_l W3^l_m η^m_j``.  Products with no such start (and pure
    Hadamard products) keep their stored order.  Constants stay in front.
    """
    outs = set(out)
    consts = [f for f in factors if isinstance(f, Const)]
    rest = [f for f in factors if not isinstance(f, Const)]
    if any(ix.name.startswith("_") for f in rest for ix in f.free):
        # machine-made: the stored order may follow generated index names, which
        # depend on what was derived before; put it in an order that does not
        # (the statement's axis order when known, else the product's own ``out``)
        order = axes if axes else {ix: k for k, ix in enumerate(out)}
        rest.sort(key=lambda f: _stable_key(f, lambda ix: order.get(ix, len(order))))
    bound = [set(ix for ix in f.free if ix not in outs) for f in rest]
    starts = [(p, k) for k, f in enumerate(rest)
              if (p := _priority(f)) is not None
              and any(bound[k] & bound[m] for m in range(len(rest)) if m != k)]
    if not starts:
        return tuple(consts) + tuple(rest)
    first = min(starts)[1]
    placed = [first]
    remaining = [k for k in range(len(rest)) if k != first]
    while remaining:
        pick = None
        for p in reversed(placed):
            # follow p's summed indices in slot order: ∂²f/∂p_l∂p_m meets its l partner first
            for ix in rest[p].free:
                cands = [k for k in remaining if ix in bound[p] and ix in bound[k]]
                if cands:
                    pick = cands[0]
                    break
            if pick is not None:
                break
        if pick is None:
            pick = remaining[0]
        placed.append(pick)
        remaining.remove(pick)
    return tuple(consts) + tuple(rest[k] for k in placed)


# ------------------------------------------------------------ coefficients and sums
def split_coef(factors: Sequence[Expr]) -> tuple[sympy.Expr, tuple[Expr, ...]]:
    """A product's constant factors, those of nested products included, folded into one coefficient.

    Constants commute with every factor, so ``U^l_d (1/t Σ_q o^q_d) / sqrt(d)`` prints
    ``1/(sqrt(d)*t) U^l_d Σ_q o^q_d`` instead of two numbers side by side.

    >>> import sympy; from einderiv.ir import Const, Index, Prod, Ref
    >>> q = Index("q", sympy.Symbol("t"))
    >>> coef, rest = split_coef((Const(sympy.Rational(1, 2)), Prod((Const(sympy.Integer(3)), Ref("o", (q,))), ())))
    >>> coef, rest
    (3/2, (Prod(factors=(Ref(name=Name('o'), indices=(q:t,)),), out=()),))
    """
    coef = sympy.Integer(1)
    rest: list[Expr] = []
    for f in factors:
        if isinstance(f, Const):
            coef *= f.value
        elif isinstance(f, Prod):
            c, inner = split_coef(f.factors)
            coef *= c
            if not inner:
                continue
            rest.append(f if c == 1 else Prod(inner, f.out))
        else:
            rest.append(f)
    return coef, tuple(rest)


def broadcast_one(term: Expr, siblings: Sequence[Expr]) -> sympy.Expr | None:
    """The number a sum's term stands for when it is only the ones vector (times constants).

    In ``(1 − z^j) h^j`` the ``1`` is stored as 𝟙^j, broadcast along ``j``; where
    another term of the sum carries ``j`` the reader needs no 𝟙 to see that, so
    the term prints as its coefficient.  Elsewhere (a factor of a product, a sum
    of broadcast terms only) it keeps its 𝟙.
    """
    if isinstance(term, Ones):
        coef, ones = sympy.Integer(1), term
    elif isinstance(term, Prod):
        coef, rest = split_coef(term.factors)
        if len(rest) != 1 or not isinstance(rest[0], Ones) or term.out != rest[0].free:
            return None
        ones = rest[0]
    else:
        return None
    if any(t is not term and ones.index in t.free and broadcast_one(t, ()) is None for t in siblings):
        return coef
    return None


def sum_terms(e: Add, axes: Axes | None = None) -> list[tuple[Expr, sympy.Expr | None]]:
    """A sum's terms in display order, each with the number it prints as (:func:`broadcast_one`)
    or None.  Terms that print as numbers come first: ``1 − z^j``, not ``−z^j + 1``."""
    ordered = term_order(e.terms, axes)
    pairs = [(t, broadcast_one(t, e.terms)) for t in ordered]
    return [p for p in pairs if p[1] is not None] + [p for p in pairs if p[1] is None]


def term_parts(t, out: Sequence[Index], axes: Axes | None = None):
    """A factored term as ``(coef, scalar factor lists, outer-product factor lists)`` in display
    order, with every constant (nested ones included) folded into ``coef``."""
    coef = t.coef
    parts = []
    for g in t.scalars + t.groups:
        c, fs = split_coef(g.factors)
        coef *= c
        parts.append(display_order(fs, out, axes))
    k = len(t.scalars)
    return coef, parts[:k], parts[k:]


def windows_shown(factors: Sequence[Expr], out: Iterable[Index]) -> dict[Window, Ref]:
    """Windows to print as index arithmetic: ``S^u_{t,a} x^u`` reads ``x^{t+a}`` when ``u`` is
    summed against exactly one tensor (the other factors then never mention ``u``)."""
    outs = set(out)
    shown: dict[Window, Ref] = {}
    for w in factors:
        if not isinstance(w, Window) or w.u in outs:
            continue
        users = [f for f in factors if f is not w and w.u in f.free]
        if len(users) == 1 and isinstance(users[0], Ref) and users[0].indices.count(w.u) == 1:
            shown[w] = users[0]
    return shown
