"""Labels relative to anchors: how a layer template's general form writes a family member.

At the reference depth every name is concrete (``v(2)``, ``w(3)``).  Written relative to the
nearest *anchor* — a definition's own labels (``k``, ``l``), a block's layers (``k``, ``r``),
the depth ``n`` — members of a family become equal expressions (``v(k-1)``), which is what
:mod:`einderiv.analysis.template` groups; :func:`instantiate` goes back to concrete labels.
A summation range may start after two anchors at once: :class:`MaxOf` (``max(k,r)+1``).
:func:`key` compares expressions up to index names and sizes (``w(1)`` is ``n_in`` wide,
``w(2)`` is ``h``, one formula covers both).

Example:
    >>> str(sym_label(4, [("k", 5), ("n", 8)]))
    'k-1'
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from ..calculus.simplify import term_key
from ..ir import Expr, Index, Label, Name, Sym, TensorName, map_names, map_refs, names_in, refs
from .factor import as_terms

#: the farthest a label may sit from its anchor (``v(k-1)``, ``z_v(k+1)``)
MAX_OFFSET = 2


@dataclass(frozen=True)
class MaxOf:
    """The label ``max(k,r)+offset`` of a summation range (the A'' terms of Eq. 9)."""

    symbols: tuple[str, ...]
    offset: int = 0

    def __str__(self) -> str:
        return f"max({','.join(self.symbols)})" + (f"{self.offset:+d}" if self.offset else "")


def sym_label(value: int, anchors: Sequence[tuple[str, int]]) -> Sym | None:
    """``value`` as ``anchor±offset`` for the nearest anchor (first wins a tie); None if too far.

    Example:
        >>> str(sym_label(4, [("k", 5), ("n", 8)]))
        'k-1'
    """
    best = None
    for sym, v in anchors:
        if best is None or abs(value - v) < abs(best[1]):
            best = (sym, value - v)
    if best is None or abs(best[1]) > MAX_OFFSET:
        return None
    return Sym(*best)


def eval_label(label: Label | MaxOf, env: dict[str, int]) -> int:
    """``k-1`` or ``max(k,r)+1`` at concrete labels."""
    if isinstance(label, int):
        return label
    if isinstance(label, MaxOf):
        return max(env[x] for x in label.symbols) + label.offset
    return env[label.symbol] + label.offset


class TooFar(Exception):
    """A label farther than :data:`MAX_OFFSET` from every anchor (the name it is in is the argument)."""


def abstract_name(name: TensorName, anchors) -> TensorName:
    """Every integer label of ``name`` relative to its nearest anchor (raises :class:`TooFar`)."""
    def one(n: Name) -> Name:
        def lab(x):
            if not isinstance(x, int):
                return x
            s = sym_label(x, anchors)
            if s is None:
                raise TooFar(n)
            return s
        return n.relabel(lab)

    return map_names(name, one)


def abstract(e: Expr, anchors) -> Expr:
    """Every labelled name in ``e`` relative to its nearest anchor (raises TooFar)."""
    return map_refs(e, lambda n: abstract_name(n, anchors))


def concrete_name(name: TensorName, env: dict[str, int]) -> TensorName:
    """A symbolic name at concrete labels (``v(k-1)`` → ``v(2)`` with k = 3)."""
    return map_names(name, lambda n: n.relabel(lambda lab: eval_label(lab, env)))


def instantiate(e: Expr, env: dict[str, int]) -> Expr:
    """The symbolic expression at concrete labels (``v(k-1)`` → ``v(2)`` with k = 3)."""
    return map_refs(e, lambda n: concrete_name(n, env))


def uses_symbol(e: Expr, symbol: str) -> bool:
    """Whether a tensor name in ``e`` carries a label in ``symbol`` (the summation label m)."""
    return any(isinstance(lab, Sym) and lab.symbol == symbol
               for r in refs(e) for n in names_in(r.name) for lab in n.labels)


# ----------------------------------------------------------------- keys
def key(e: Expr, out: tuple[Index, ...]) -> tuple:
    """Equal for expressions equal up to index names *and sizes* (w(1) is n_in wide, w(2) h)."""
    return term_key(e, out, sizes=False)


def term_keys(e: Expr, out: tuple[Index, ...]) -> Counter:
    """The multiset of the keys of ``e``'s terms."""
    return Counter(key(t.expr(), out) for t in as_terms(e, out))
