"""Fold unrolled families back into recurrences and sums over a label.

A recurrent network is derived unrolled: nodes ``h(1) … h(T)``, adjoints
``δ[h(1)] … δ[h(T)]``, a weight's gradient with one term per step.  A reader
wants each of these written once, with its base case:

    δ[h(t)] = δ[z_h(t+1)] W        for t = 1..T−1
    δ[h(T)] = ∂f/∂p U              (base case)
    ∂f/∂W   = Σ_{t=1..T} δ[z_h(t)] ⊗ h(t−1)

Labels live in tensor names (:class:`~einderiv.ir.Name`): ``h(3)`` carries the
integer label 3.  :func:`abstract` rewrites every integer label in an expression
relative to a reference label ``L`` — ``h(L−1)`` becomes ``h(t-1)``, a
:class:`~einderiv.ir.Sym` label — so that members of a family become *equal*
expressions; :func:`fold_definitions` groups definitions that way and
:func:`fold_terms` groups the terms of a block.  Folding only reads the
derivation: numbers always come from the unrolled form.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..calculus.simplify import term_key
from ..ir import (Expr, Index, Name, Sym, TensorName, distinct, label_range, labels_of, map_names, map_refs,
                 refs)


def shift_labels(name: TensorName, ref: int, symbol: str) -> TensorName:
    """Every integer label of ``name`` written relative to ``ref``: ``h(2)`` → ``h(t-1)`` for ref 3."""
    def one(n: Name) -> Name:
        return n.relabel(lambda lab: Sym(symbol, lab - ref) if isinstance(lab, int) else lab)

    return map_names(name, one)


def abstract(e: Expr, ref: int, symbol: str = "t") -> Expr:
    """Every labelled name in ``e`` written relative to label ``ref``."""
    return map_refs(e, lambda n: shift_labels(n, ref, symbol))


def tensor_labels(e: Expr) -> tuple[int, ...]:
    """Labels of the tensors ``e`` mentions, in order of first appearance."""
    return distinct(lab for r in refs(e) for lab in labels_of(r.name))


# ----------------------------------------------------------------- definitions
@dataclass(frozen=True)
class Family:
    """Definitions equal up to a label shift: ``name`` and ``expr`` use ``symbol``."""

    name: TensorName  # e.g. adj[h(t)] or h(t)
    indices: tuple[Index, ...]
    expr: Expr
    labels: tuple[int, ...]  # the members' labels, ascending
    members: tuple[TensorName, ...]  # the unrolled names, in label order
    symbol: str

    @property
    def folded(self) -> bool:
        return len(self.labels) > 1

    def range_text(self) -> str:
        """``'1..3'`` for a contiguous range, ``'1, 3, 4'`` otherwise."""
        return label_range(self.labels)


def fold_definitions(defs: Sequence[tuple[TensorName, tuple[Index, ...], Expr]],
                     symbol: str = "t") -> list[Family]:
    """Group ``(name, indices, expr)`` definitions into families.

    A definition's reference label is the first label of its own name; two
    definitions fold together when their names and expressions are equal
    after both are written relative to their own reference labels.  Order:
    a family stands where its first member stood.  Unlabelled definitions are
    families of one.
    """

    families: dict[tuple, list] = {}
    order: list[tuple] = []
    for name, indices, expr in defs:
        labs = labels_of(name)
        if not labs:
            key = ("single", name)
            families[key] = [(name, indices, expr, None)]
            order.append(key)
            continue
        ref = labs[0]
        aname = shift_labels(name, ref, symbol)
        aexpr = abstract(expr, ref, symbol)
        key = (aname, term_key(aexpr, indices))
        if key not in families:
            families[key] = []
            order.append(key)
        families[key].append((name, indices, aexpr, ref))
    out = []
    for key in order:
        members = families[key]
        name0, idx0, expr0, ref0 = members[0]
        if ref0 is None:
            out.append(Family(name0, idx0, expr0, (), (name0,), symbol))
            continue
        members.sort(key=lambda m: m[3])
        out.append(Family(key[0], idx0, expr0, tuple(m[3] for m in members),
                          tuple(m[0] for m in members), symbol))
    return out


# ----------------------------------------------------------------------- terms
@dataclass(frozen=True)
class TermFamily:
    """Terms of a sum equal up to a label shift: Σ over ``labels`` of ``term``."""

    term: Expr  # uses ``symbol`` in its names
    labels: tuple[int, ...]
    symbol: str
    originals: tuple[Expr, ...] = ()  # the unrolled terms, in label order

    @property
    def folded(self) -> bool:
        return len(self.labels) > 1


def fold_terms(terms: Sequence[Expr], out: tuple[Index, ...], symbol: str = "t") -> list[TermFamily]:
    """Group the terms of a block into sums over a label.

    Each term is written relative to the *largest* label among its tensors
    (for ``δ[z_h(3)] ⊗ h(2)`` that is 3: ``δ[z_h(t)] ⊗ h(t-1)``).
    """
    groups: dict[str, list] = {}
    order: list[str] = []
    for t in terms:
        labs = tensor_labels(t)
        if not labs:
            key = "single:" + repr(t)
            groups.setdefault(key, []).append((t, None, t))
            if key not in order:
                order.append(key)
            continue
        ref = max(labs)
        at = abstract(t, ref, symbol)
        key = term_key(at, out)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((at, ref, t))
    result = []
    for key in order:
        members = groups[key]
        if members[0][1] is None:
            result.extend(TermFamily(t, (), symbol, (t,)) for t, _, _ in members)
            continue
        members.sort(key=lambda m: m[1])
        result.append(TermFamily(members[0][0], tuple(m[1] for m in members), symbol,
                                 tuple(m[2] for m in members)))
    return result
