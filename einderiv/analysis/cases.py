"""Case splits of a layer template's general blocks: the terms every case shares (Eq. 9).

The cases ``r > k``, ``r = k``, ``r < k`` of ∂²f/∂w(k)∂w(r) share the Gauss–Newton term and,
for a smooth activation, the A'' terms; :func:`split_common` finds the shared terms and each
case's own, so the document prints Eq. 9 as the paper does (shared terms, then
``{ r > k : … ; r = k : … ; r < k : … }``).
"""
from __future__ import annotations

from typing import Sequence

from ..ir import Sym
from .labels import GeneralTerm
from .anchors import MaxOf
from .template import GeneralBlock, expand_keys


def split_common(cases: Sequence[GeneralBlock]) -> tuple[list[GeneralTerm], list[list[GeneralTerm]]] | None:
    """Terms shared by every case (as in Eq. 9's first term), and each case's own terms.

    A sum whose range starts after one block layer is tried with the range starting after
    both (``Σ_{m=max(k,r)+1}^{n}``), which is what makes the A'' terms common to r > k and
    r < k.  None when the cases do not decompose that way.
    """
    if len(cases) < 2:
        return None
    remaining = {(ci, mi): expand_keys(c.terms, env, c.indices)
                 for ci, c in enumerate(cases) for mi, env in enumerate(c.members)}
    base = max(cases, key=lambda c: len(c.members))

    def fits(terms, src, ci_set=None) -> bool:
        for (ci, mi), rest in remaining.items():
            if ci_set is not None and ci not in ci_set:
                continue
            c = cases[ci]
            if expand_keys(terms, c.members[mi], c.indices, src) - rest:
                return False
        return True

    def take(terms, src, ci_set=None) -> None:
        for (ci, mi) in remaining:
            if ci_set is not None and ci not in ci_set:
                continue
            c = cases[ci]
            remaining[(ci, mi)] = remaining[(ci, mi)] - expand_keys(terms, c.members[mi], c.indices, src)

    common = []
    for gt in base.terms:
        variants = [gt]
        if gt.over is not None:
            lo = gt.over[0]
            if isinstance(lo, Sym) and lo.symbol in ("k", "r"):
                variants.insert(0, GeneralTerm(gt.term, (MaxOf(("k", "r"), lo.offset), gt.over[1])))
        for v in variants:
            if fits([v], base.indices):
                take([v], base.indices)
                common.append(v)
                break
    own = []
    for ci, c in enumerate(cases):
        mine = []
        for gt in c.terms:
            if fits([gt], c.indices, {ci}):
                take([gt], c.indices, {ci})
                mine.append(gt)
        own.append(mine)
    if any(remaining.values()):
        return None
    return common, own
