"""Outer-product forms: a block as the smallest sum of outer products that can be proved.

A block ∂^k f/∂θ1…∂θk is a sum of terms, each a product of factors.  Its *outer-product
form* is a **split** of the block's axes into parts and a sum

    Σ_{k=1..K} c_k · Σ_{over_k} F_{k,1} ⊗ F_{k,2} ⊗ … ⊗ F_{k,m}

where ``F_{k,p}`` carries exactly the axes of part p (and may read the indices ``over_k``
that are summed outside the product).  K counts outer products: a term summed over
``over`` counts ``Π |over|``.  So across every bipartition of the block's axes into a
union of parts and the rest, the block's matrix rank is at most K — the claim the
structure report makes, and what ``tests/test_structure_ranks.py`` checks numerically.

How it is found, for the terms of one block:

1. **The join.**  Factors that share a *free* axis (an elementwise product, a diagonal
   δ^j_s, one tensor carrying several axes) cannot be pulled apart.  The finest split that
   every term allows is the join of these forced groups over all terms; when it is a
   single part no split exists (the report's "no outer-product structure").
2. **Candidate splits**: the join and its coarsenings (all of them up to
   :data:`ALL_COARSENINGS` parts, else the join and its two-part coarsenings).
3. **Cuts.**  For a split, each term's factors are connected through their indices; a
   connected piece that carries axes of two parts is separated by summing some of its
   indices *outside* the product: ``δ[Q]_{ld} X^l_i`` is ``Σ_l δ[Q]_{ld} ⊗ X^l_i``, a sum
   of |l| outer products — a weight shared over positions.  The cheapest cut (fewest
   indices, then fewest outer products) is taken; a cut index that is the output
   position of index arithmetic (``x^{l+a}``) makes the term a correlation (a convolution
   kernel's gradient).
4. **Merging.**  Terms equal on every part but one are one outer product:
   ``Σ_k a_k ⊗ b ⊗ c = (Σ_k a_k) ⊗ b ⊗ c``; this is repeated over every part until
   nothing merges.
5. **Choice**: the smallest K, then the most parts, then the least storage.

Storage (numbers per sample) counts each factor's axes (axes tied by a Kronecker delta
once); a merged factor is stored as the cheaper of its dense part and its summands.

Example::

    >>> form = outer_form(as_terms(block.expr, block.indices), block.indices, {})   # doctest: +SKIP
    >>> form.K, [len(p) for p in form.parts]                                         # doctest: +SKIP
    (1, [2, 1, 1])
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import sympy

from ..calculus.simplify import Term
from ..ir import Add, Const, Delta, Expr, Index, Ones, Prod, Window, alpha_key, rename
from .factor import Group

#: joins with more parts than this try only the join itself and its two-part coarsenings
ALL_COARSENINGS = 4
#: the most indices one term is cut at before every summed index is
MAX_CUT = 3
#: the value a size left symbolic takes when two candidate forms are compared
PROBE = 7


# ------------------------------------------------------------------ data
@dataclass(frozen=True)
class OuterTerm:
    """``coef · scalars · Σ_over factors[0] ⊗ factors[1] ⊗ …``, one factor per part of the split."""

    coef: sympy.Expr
    parts: tuple[tuple[Index, ...], ...]  # the split it is over: the block's axes in parts
    scalars: tuple[Expr, ...]  # factors carrying no axis of the block (scalar weights)
    factors: tuple[Expr, ...]  # one per part: its free indices are the part's axes, then the ``over`` it reads
    over: tuple[Index, ...] = ()  # indices summed outside the product
    shifted: bool = False  # ``over`` are output positions read at shifted inputs: a correlation
    part_storage: tuple[sympy.Expr, ...] = ()
    merged: bool = False  # a sum of the block's terms
    pieces: int = 0  # connected pieces its factors came from (more than the parts: regrouped)

    @property
    def count(self) -> sympy.Expr:
        """How many outer products this term is: Π |over|."""
        return sympy.Mul(*(ix.dim for ix in self.over))

    @property
    def storage(self) -> sympy.Expr:
        return sympy.Add(*self.part_storage)

    def expr(self, axes: Sequence[Index]) -> Expr:
        """The term as one product over the block's ``axes`` (``over`` summed)."""
        head = (Const(self.coef),) if self.coef != 1 else ()
        return Prod(head + self.scalars + self.factors, tuple(axes))


@dataclass(frozen=True)
class OuterForm:
    """A block as a sum of outer products over ``parts`` (see the module docstring); ``parts`` is ()
    for a *mixed* form, whose terms are outer products over splits of their own (no split is
    common to all: the paper's Eq. 8 for a bias and a weight)."""

    parts: tuple[tuple[Index, ...], ...]
    terms: tuple[OuterTerm, ...]
    inlined: bool = False  # named quantities were written out (:mod:`.inline`) to find it
    rewritten: bool = field(default=False)  # it differs from the block's terms as displayed
    axes: tuple[Index, ...] = ()  # the block's axes, in order

    @property
    def K(self) -> sympy.Expr:
        return sympy.Add(*(t.count for t in self.terms))

    @property
    def storage(self) -> sympy.Expr:
        return sympy.Add(*(t.storage for t in self.terms))

    @property
    def mixed(self) -> bool:
        return not self.parts

    @property
    def positions(self) -> bool:
        return any(t.over for t in self.terms)

    @property
    def shifted(self) -> bool:
        return any(t.shifted for t in self.terms)


# ------------------------------------------------------------------ storage
def group_storage(group: Group) -> sympy.Expr:
    """Product of the sizes of a factor's axes, axes tied by a delta counted once."""
    parent = {ix: ix for ix in group.free}

    def find(a: Index) -> Index:
        while parent[a] != a:
            a = parent[a]
        return a

    for f in group.factors:
        if isinstance(f, Delta) and f.a in parent and f.b in parent:
            parent[find(f.a)] = find(f.b)
    roots: dict[Index, None] = {}
    for ix in group.free:
        roots.setdefault(find(ix), None)
    return sympy.Mul(*(ix.dim for ix in roots))


class Probe:
    """Sizes to compare candidate forms at: the known ``sizes``, every other size :data:`PROBE`."""

    def __init__(self, sizes: Mapping | None = None):
        self.sizes = dict(sizes or {})
        self._cache: dict = {}

    def __call__(self, x) -> float:
        value = self._cache.get(x)
        if value is None:
            y = sympy.sympify(x)
            value = self._cache[x] = float(y.xreplace({s: self.sizes.get(s, PROBE) for s in y.free_symbols}))
        return value

    def size(self, ixs: Sequence[Index]) -> float:
        out = 1.0
        for ix in ixs:
            out *= self(ix.dim)
        return out


def number(x: sympy.Expr, sizes: Mapping | None = None) -> float:
    """``x`` at the known ``sizes``, every other size at :data:`PROBE`."""
    return Probe(sizes)(x)


# ------------------------------------------------------------------ components
def components(factors: Sequence[Expr], linking, frees: Sequence[tuple[Index, ...]] | None = None
               ) -> list[list[int]]:
    """Factors connected through the indices ``linking(ix)`` accepts (union–find), in order
    (``frees``: the factors' free indices, when the caller has them)."""
    frees = frees if frees is not None else [f.free for f in factors]
    parent = list(range(len(frees)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner: dict[Index, int] = {}
    for k, free in enumerate(frees):
        for ix in free:
            if not linking(ix):
                continue
            if ix in owner:
                parent[find(k)] = find(owner[ix])
            else:
                owner[ix] = k
    comps: dict[int, list[int]] = {}
    for k in range(len(frees)):
        comps.setdefault(find(k), []).append(k)
    return list(comps.values())


def join(terms: Sequence[Term], axes: tuple[Index, ...]) -> tuple[tuple[Index, ...], ...]:
    """The finest split every term allows: axes of factors tied by a free axis stay together."""
    parent = {a: a for a in axes}

    def find(a: Index) -> Index:
        while parent[a] != a:
            a = parent[a]
        return a

    outs = set(axes)
    for t in terms:
        for comp in components(t.factors, lambda ix: ix in outs):
            carried = [ix for k in comp for ix in t.factors[k].free if ix in outs]
            for ix in carried[1:]:
                ra, rb = find(carried[0]), find(ix)
                if ra != rb:
                    parent[rb] = ra
    parts: dict[Index, list[Index]] = {}
    for a in axes:
        parts.setdefault(find(a), []).append(a)
    return tuple(tuple(p) for p in parts.values())


def coarsenings(parts: tuple[tuple[Index, ...], ...],
                axes: tuple[Index, ...]) -> list[tuple[tuple[Index, ...], ...]]:
    """Splits coarser than (or equal to) ``parts`` with at least two parts, the finest first; each
    part's axes, and the parts by their first axis, in the order of ``axes``."""
    m = len(parts)
    if m < 2:
        return []
    if m <= ALL_COARSENINGS:
        blocks = list(_set_partitions(list(range(m))))
    else:
        blocks = [[[k] for k in range(m)]]
        for mask in range(1, 2 ** (m - 1)):
            left = [k for k in range(m) if mask >> k & 1]
            blocks.append([left, [k for k in range(m) if not mask >> k & 1]])
    pos = {ix: n for n, ix in enumerate(axes)}
    out = []
    for b in blocks:
        if len(b) < 2:
            continue
        split = [tuple(sorted((ix for k in blk for ix in parts[k]), key=pos.get)) for blk in b]
        out.append(tuple(sorted(split, key=lambda p: min(pos[ix] for ix in p))))
    out.sort(key=lambda s: -len(s))
    return out


def _set_partitions(items: list[int]) -> Iterator[list[list[int]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for p in _set_partitions(rest):
        yield [[first]] + p
        for k in range(len(p)):
            yield p[:k] + [[first] + p[k]] + p[k + 1:]


# ------------------------------------------------------------------ one term, one split
def _cuts(bound: tuple[Index, ...], probe: Probe, positions=frozenset()) -> Iterator[tuple[Index, ...]]:
    """Sets of summed indices to cut at: fewest first, then fewest outer products, then (a padded
    window's input and output positions are as many) at output ``positions``; at last all."""
    for r in range(1, min(MAX_CUT, len(bound)) + 1):
        yield from sorted(itertools.combinations(bound, r),
                          key=lambda c: (probe.size(c), -sum(ix in positions for ix in c)))
    if len(bound) > MAX_CUT:
        yield bound


def split_term(t: Term, parts: tuple[tuple[Index, ...], ...], probe: Probe) -> OuterTerm | None:
    """``t`` as one term of an outer-product form over ``parts``: each connected piece of its factors
    that carries axes of two parts is cut at the cheapest set of its summed indices."""
    part_of = {a: p for p, part in enumerate(parts) for a in part}
    frees = [f.free for f in t.factors]
    owns = [{part_of[a] for a in free if a in part_of} for free in frees]
    cut: list[Index] = []
    for group in components(t.factors, lambda ix: True, frees):
        if len(set().union(*(owns[k] for k in group))) <= 1:
            continue
        gfrees = [frees[k] for k in group]
        inner = tuple(dict.fromkeys(ix for free in gfrees for ix in free if ix not in part_of))
        for c in _cuts(inner, probe, {f.t for f in t.factors if isinstance(f, Window)}):
            cs = set(c)
            if all(len(set().union(*(owns[group[k]] for k in sub))) <= 1
                   for sub in components((), lambda ix: ix not in cs, gfrees)):
                cut.extend(c)
                break
        else:
            return None
    cutset = set(cut)
    info = []
    for comp in components(t.factors, lambda ix: ix not in cutset, frees):
        own = set().union(*(owns[k] for k in comp))
        info.append(([t.factors[k] for k in comp], {ix for k in comp for ix in frees[k]},
                     own.pop() if own else None))
    return _build(t, parts, tuple(cut), info)


def _build(t: Term, parts, cut: tuple[Index, ...], info) -> OuterTerm:
    m = len(parts)
    assigned: list[list] = [[] for _ in range(m)]
    scalars: list[Expr] = []
    for fs, carried, p in info:
        if p is not None:
            assigned[p].append((fs, carried))
    for fs, carried, p in info:
        if p is not None:
            continue
        if not carried & set(cut):
            scalars.extend(fs)
            continue
        # a weight per position: it goes with a part that reads the same cut index
        near = next((q for q in range(m) if any(carried & c & set(cut) for _, c in assigned[q])), 0)
        assigned[near].append((fs, carried))
    used = [ix for ix in cut if any(ix in c for _, c in (x for a in assigned for x in a))]
    over = tuple(Index(f"_o{k}", ix.dim) for k, ix in enumerate(used))
    to_over = dict(zip(used, over))
    shifted = any(isinstance(f, Window) and f.t in to_over for f in t.factors)
    factors, storage = [], []
    for p, part in enumerate(parts):
        fs = [f for comp, _ in assigned[p] for f in comp]
        reads = tuple(ix for ix in used if any(ix in c for _, c in assigned[p]))
        out = part + reads
        e = fs[0] if len(fs) == 1 and tuple(fs[0].free) == out else Prod(tuple(fs), out)
        factors.append(rename(e, to_over) if to_over else e)
        storage.append(sympy.Add(*(group_storage(Group(tuple(comp), tuple(ix for ix in out if ix in c), ()))
                                   for comp, c in assigned[p])))
    pieces = sum(len(a) for a in assigned)
    return OuterTerm(t.coef, parts, tuple(scalars), tuple(factors), over, shifted, tuple(storage), False, pieces)


# ------------------------------------------------------------------ merging
def _summand(t: OuterTerm, p: int, out: tuple[Index, ...]) -> list[Expr]:
    """Part p of ``t`` with its coefficient and scalar weights, as summands over ``out``."""
    e = t.factors[p]
    if t.coef == 1 and not t.scalars and isinstance(e, Add):
        return list(e.terms)
    missing = tuple(Ones(ix) for ix in out if ix not in e.free)
    head = (Const(t.coef),) if t.coef != 1 else ()
    return [Prod(head + t.scalars + (e,) + missing, out)]


def _combine(members: list[OuterTerm], p: int, parts, probe: Probe) -> OuterTerm:
    first = members[0]
    reads = tuple(ix for ix in first.over if any(ix in m.factors[p].free for m in members))
    out = parts[p] + reads
    summands = [s for m in members for s in _summand(m, p, out)]
    dense = sympy.Mul(*(ix.dim for ix in out))
    each = sympy.Add(*(m.part_storage[p] for m in members))
    store = each if probe(each) < probe(dense) else dense
    factors = first.factors[:p] + (Add(tuple(summands)),) + first.factors[p + 1:]
    storage = first.part_storage[:p] + (store,) + first.part_storage[p + 1:]
    return OuterTerm(sympy.Integer(1), parts, (), factors, first.over, any(m.shifted for m in members), storage, True,
                     first.pieces)


def merge(terms: list[OuterTerm], parts, probe: Probe) -> list[OuterTerm]:
    """Merge terms equal on every part but one, over every part, until nothing merges."""
    m = len(parts)
    keys: dict[int, tuple] = {}

    def key(e: Expr, slots: tuple[Index, ...]) -> tuple:
        found = keys.get(id(e))
        if found is None or found[0] is not e or found[1] != slots:
            found = keys[id(e)] = (e, slots, alpha_key(e, slots))
        return found[2]

    changed = True
    while changed and len(terms) > 1:
        changed = False
        for p in range(m):
            groups: dict[tuple, list[OuterTerm]] = {}
            for t in terms:
                key_ = (tuple(ix.dim for ix in t.over), t.shifted,
                        tuple(key(t.factors[r], parts[r] + t.over) for r in range(m) if r != p))
                groups.setdefault(key_, []).append(t)
            if len(groups) == len(terms):
                continue
            terms = [g[0] if len(g) == 1 else _combine(g, p, parts, probe) for g in groups.values()]
            changed = True
    return terms


# ------------------------------------------------------------------ the form
def outer_form(terms: Sequence[Term], axes: tuple[Index, ...], probe: Probe,
               inlined: bool = False) -> OuterForm | None:
    """The outer-product form of a block's ``terms`` over its ``axes`` (None: no split exists)."""
    if not terms:
        return None
    finest = join(terms, axes)
    best, best_key = None, None
    for parts in coarsenings(finest, axes):
        split = []
        for t in terms:
            o = split_term(t, parts, probe)
            if o is None:
                break
            split.append(o)
        else:
            merged = merge(split, parts, probe)
            K = sympy.Add(*(t.count for t in merged))
            # at a tie, a correlation over output positions (a padded window's inputs are as many)
            key = (probe(K), -len(parts), probe(sympy.Add(*(t.storage for t in merged))),
                   not any(t.shifted for t in merged))
            if best_key is None or key < best_key:
                best, best_key = (parts, merged), key
    if best is None:
        return None
    parts, merged = best
    rewritten = (inlined or len(merged) != len(terms) or any(t.over or t.merged or t.pieces > len(parts)
                                                               for t in merged))
    return OuterForm(parts, tuple(merged), inlined, rewritten, axes)


def mixed_form(terms: Sequence[Term], axes: tuple[Index, ...], probe: Probe,
               inlined: bool = False) -> OuterForm | None:
    """The terms as outer products over each one's own finest split (its factors connected through
    any index stay together), merged within each split; None when some term is one factor."""
    classes: dict[tuple, list[OuterTerm]] = {}
    for t in terms:
        comps = components(t.factors, lambda ix: True)
        free = [tuple(ix for ix in axes if any(ix in t.factors[k].free for k in c)) for c in comps]
        parts = tuple(p for p in sorted((p for p in free if p), key=lambda p: axes.index(p[0])))
        if len(parts) < 2:
            return None
        o = split_term(t, parts, probe)
        classes.setdefault(parts, []).append(o)
    merged = [t for parts, ts in classes.items() for t in merge(ts, parts, probe)]
    return OuterForm((), tuple(merged), inlined, True, axes)
