"""Index letters: what each index of one displayed statement is called.

Machine-made indices (names starting with ``_``) never reach the reader.
:class:`IndexNames` gives every index of one displayed statement (a
definition, a derivative block) a letter: the block's axes get the declared
letters of their parameters (``W1^j_i``; the second parameter of a Hessian
block, whose letters clash, gets ``s, t`` as in the paper's Eq. 9), summed
indices get fresh letters in reading order from ``l, m, q, a, …`` — the
paper's choice — never clashing with a free one or a reserved name (a tensor,
size, label or function of the same document:
:attr:`~einderiv.analysis.roles.Context.reserved`); a letter the user wrote that
is such a name is shown as its replacement
(:attr:`~einderiv.analysis.roles.Context.renames`).

Letters are the printers' business; the order in which a printer meets the
indices (:mod:`einderiv.analysis.order`) decides which letter each gets.

Example::

    >>> from einderiv.ir import Index
    >>> import sympy
    >>> n = sympy.Symbol("n")
    >>> a, b = Index("_j_3", n), Index("_j_9", n)
    >>> names = IndexNames([a, b])
    >>> names[a], names[b]
    ('j', 's')
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from ..analysis.order import display_order, split_coef, sum_terms
from ..ir import REDUCTIONS, Add, Delta, Expr, Index, Ones, Prod, Ref, Window, all_indices

#: letters for free indices whose declared letter is taken (the paper's s, t)
FREE_POOL = ("s", "t", "r", "k", "a", "b", "c", "d", "e", "g", "h", "o", "u", "w")
#: letters for summed indices, in the order the paper uses them (Eqs. 6–9)
SUMMED_POOL = ("l", "m", "q", "a", "b", "c", "d", "e", "g", "h", "k", "o", "r", "u", "w", "s", "t")


def hint(ix: Index) -> str:
    """The letter an index would like to be shown as: ``_j_36`` → ``j``, ``i`` → ``i``."""
    if not ix.name.startswith("_"):
        return ix.name
    base = ix.name.lstrip("_").split("_")[0]
    return base if base.isalpha() else ""


class IndexNames:
    """Letters for the indices of one displayed statement.

    ``free`` are the statement's open indices in axis order (optionally with
    a preferred letter each); they are named first.  Other indices are named
    on first request, in the order :meth:`walk` or the printer meets them:
    user-written ones keep their names, machine-made ones take the next
    unused letter of :data:`SUMMED_POOL`.  ``reserved`` letters are never given.
    """

    def __init__(self, free: Iterable[Index | tuple[Index, str]] = (), reserved: Iterable[str] = (),
                 renames: Mapping[str, str] | None = None):
        #: what a printer shows in place of an expression (a node's name for its definition,
        #: :meth:`~einderiv.analysis.roles.Context.named`); :meth:`walk` follows it so letters
        #: come in printed order
        self.alias = None
        self.names: dict[Index, str] = {}
        self.used: set[str] = set(reserved)
        #: a user's letter that names something else in the document → the letter shown instead
        self.renames: dict[str, str] = dict(renames or {})
        self.free: dict[Index, int] = {}  # the statement's open indices, in axis order
        for item in free:
            ix, pref = item if isinstance(item, tuple) else (item, hint(item))
            if ix in self.names:
                continue
            self.free[ix] = len(self.free)
            self._take(ix, self.renames.get(pref, pref), FREE_POOL)

    def reserve_user(self, exprs: Iterable[Expr]) -> "IndexNames":
        """Keep letters that the user wrote (indices without ``_``) off-limits for others."""
        for e in exprs:
            for ix in all_indices(e):
                if not ix.name.startswith("_") and ix not in self.names:
                    self._take(ix, self.renames.get(ix.name, ix.name), SUMMED_POOL)
        return self

    def _take(self, ix: Index, pref: str, pool: Sequence[str]) -> str:
        if pref and pref not in self.used:
            name = pref
        else:
            name = next((c for c in pool if c not in self.used), None)
            k = 1
            while name is None:
                cand = f"{pool[0]}{k}"
                name = cand if cand not in self.used else None
                k += 1
        self.names[ix] = name
        self.used.add(name)
        return name

    def __getitem__(self, ix: Index) -> str:
        if ix in self.names:
            return self.names[ix]
        if not ix.name.startswith("_"):
            return self._take(ix, self.renames.get(ix.name, ix.name), SUMMED_POOL)
        return self._take(ix, "", SUMMED_POOL)

    def walk(self, e: Expr) -> "IndexNames":
        """Name every index of ``e`` in display order (what a printer would meet)."""
        shown = self.alias(e) if self.alias is not None else None
        if shown is not None:
            e = shown
        if isinstance(e, Ref):
            for ix in e.indices:
                self[ix]
        elif isinstance(e, Delta):
            self[e.a], self[e.b]
        elif isinstance(e, Window):
            self[e.t]
            if e.a is not None:
                self[e.a]
        elif isinstance(e, Ones):
            self[e.index]
        elif isinstance(e, Prod):
            for f in display_order(split_coef(e.factors)[1], e.out, self.free):
                self.walk(f)
        elif isinstance(e, Add):
            for t, _ in sum_terms(e, self.free):
                self.walk(t)
        elif isinstance(e, REDUCTIONS):
            self[e.over]
            self.walk(e.arg)
        else:
            for c in e.children():
                self.walk(c)
        return self
