"""Sums over steps with symbolic bounds: a recurrence's blocks for any length T.

Unrolled at a reference length, a block of a recurrence (a weight shared over the steps)
has terms that are one pattern at many steps: the Gauss–Newton term of ∂²f/∂W∂W is
``(∂²f/∂p∂p η[p,z_h(a)] η[p,z_h(b)]) ⊗ h(a-1) ⊗ h(b-1)`` for every pair of steps a, b; an
A'' term adds a third step c ≥ max(a, b).  :func:`fold_step_terms` writes each pattern
once, as a sum over its steps with difference bounds between them:

    Σ_{t=2..T} Σ_{τ=2..T} (∂²f/∂p∂p η[p,z_h(t)] η[p,z_h(τ)]) ⊗ h(t-1) ⊗ h(τ-1)

How: each term is read as its *skeleton* (every step label blanked) and its *label
vector* (its labels in an order fixed by the skeleton: factors in canonical order, names
in reading order).  Terms with one skeleton are one pattern when the labels that move
together keep constant differences: each such class becomes a step symbol (``t``, ``τ``,
…) and a label is written relative to it (``h(t-1)``); a class that does not move is a
constant (``1`` … :data:`~.conditions.MAX_BOUND`) or sits at the end (``T``, ``T-1``).
The steps' values over the pattern's terms are read off as difference bounds
(:func:`~.conditions.condition_of`); they must describe exactly those values, else the
terms are split by the order of their steps (``τ < t``, ``τ = t``, ``τ > t``) and tried
again.  What still does not fold raises :class:`FoldError`: a formula true at one length
only is never written.  The caller validates the result at other lengths.
"""
from __future__ import annotations

from typing import Sequence

from ..calculus.simplify import Term, atom_key
from ..ir import Expr, Index, Name, Ref, Sym, map_names, map_refs, walk
from .anchors import key, sym_label
from .conditions import MAX_BOUND, condition_of
from .factor import as_terms
from .labels import FoldError, GeneralTerm, Labels, points

BLANK = Sym("*")


def _blank(e: Expr) -> Expr:
    return map_refs(e, lambda name: map_names(name, lambda n: n.relabel(
        lambda lab: BLANK if isinstance(lab, int) else lab)))


def _refs_in_order(e: Expr) -> list[Ref]:
    """Every Ref occurrence, in the order :func:`~einderiv.ir.map_refs` visits them."""
    return [x for x in walk(e) if isinstance(x, Ref)]


def read(term: Expr, out: tuple[Index, ...]) -> tuple[tuple, tuple[int, ...], list[int]]:
    """``(skeleton key, label vector, factor order)`` of one term (a monomial)."""
    (t,) = as_terms(term, out)
    bound = set(t.bound)
    blanks = [_blank(f) for f in t.factors]
    order = sorted(range(len(t.factors)), key=lambda k: atom_key(blanks[k], bound))
    labels = [lab for k in order for r in _refs_in_order(t.factors[k])
              for n in (r.name.names() if not isinstance(r.name, Name) else (r.name,))
              for lab in n.labels if isinstance(lab, int)]
    return key(_blank(term), out), tuple(labels), order


def relabel(term: Expr, out: tuple[Index, ...], order: list[int], new: Sequence) -> Expr:
    """``term`` with its label occurrences (in :func:`read`'s order) replaced by ``new``."""
    (t,) = as_terms(term, out)
    it = iter(new)

    def one(n: Name) -> Name:
        return n.relabel(lambda lab: next(it) if isinstance(lab, int) else lab)

    factors = list(t.factors)
    for k in order:
        factors[k] = map_refs(factors[k], lambda name: map_names(name, one))
    return Term(t.coef, tuple(factors), t.out).expr()


def fold_step_terms(terms: Sequence[Expr], out: tuple[Index, ...], anchors, env,
                    labels: Labels) -> list[GeneralTerm]:
    """The terms of a block as sums over steps (see the module docstring)."""
    groups: dict[tuple, list] = {}
    for t in terms:
        sk, vec, order = read(t, out)
        groups.setdefault(sk, []).append((t, vec, order))
    result = []
    for members in groups.values():
        result.extend(_fold(members, out, anchors, env, labels))
    return result


def _fold(members: list, out, anchors, env, labels: Labels, split: bool = True) -> list[GeneralTerm]:
    vecs = [v for _, v, _ in members]
    p = len(vecs[0])
    first = vecs[0]
    rep = list(range(p))  # the occurrence each one moves with
    for j in range(p):
        for i in range(j):
            if rep[i] == i and all(v[j] - v[i] == first[j] - first[i] for v in vecs):
                rep[j] = i
                break
    classes = [i for i in range(p) if rep[i] == i]
    moving = [i for i in classes if any(v[i] != first[i] for v in vecs)]
    if len(moving) > len(labels.steps):
        raise FoldError(f"a term moves with {len(moving)} steps; at most {len(labels.steps)} are written")
    symbol = {i: labels.steps[k] for k, i in enumerate(moving)}
    # a step stands for the largest label that moves with it: δ[z_h(t)] ⊗ h(t-1), as BPTT is written
    top = {i: max(first[j] for j in range(p) if rep[j] == i) - first[i] for i in moving}
    new = []
    for j in range(p):
        i = rep[j]
        if i in symbol:
            new.append(Sym(symbol[i], first[j] - first[i] - top[i]))
            continue
        value = first[j]
        s = sym_label(value, anchors)
        if s is not None:
            new.append(s)
        elif 0 <= value <= MAX_BOUND:
            new.append(value)
        else:
            raise FoldError(f"the label {value} of a term is neither near a step of its own, the start, "
                                f"nor the end {labels.depth}")
    term, _, order = members[0]
    pattern = relabel(term, out, order, new)
    if not moving:
        if len(members) != 1:
            raise FoldError("equal terms that do not move with a step")
        return [GeneralTerm(pattern)]
    steps = tuple(symbol[i] for i in moving)
    seen = [{symbol[i]: v[i] + top[i] for i in moving} for v in vecs]
    cond = condition_of([{**s, labels.depth: env[labels.depth]} for s in seen], steps, labels.depth)
    want = sorted(tuple(s[x] for x in steps) for s in seen)
    got = sorted(tuple(pt[x] for x in steps) for pt in points(steps, cond, env, labels))
    if got == want:
        return [GeneralTerm(pattern, steps=steps, cond=cond)]
    if not split:
        raise FoldError(f"the steps of a term do not fill a range with bounds of their own: {want}")
    parts: dict[tuple, list] = {}
    for m, s in zip(members, seen):
        sign = tuple((s[a] > s[b]) - (s[a] < s[b]) for k, a in enumerate(steps) for b in steps[k + 1:])
        parts.setdefault(sign, []).append(m)
    if len(parts) == 1:
        raise FoldError(f"the steps of a term do not fill a range with bounds of their own: {want}")
    return [g for part in parts.values() for g in _fold(part, out, anchors, env, labels, split=False)]
