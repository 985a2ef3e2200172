"""Display naming shared by the text and LaTeX printers.

Two jobs, both deterministic:

* **Index letters.**  Machine-made indices (names starting with ``_``) never
  reach the reader.  :class:`IndexNames` gives every index of one displayed
  statement (a definition, a derivative block) a letter: the block's axes get
  the declared letters of their parameters (``W1^j_i``; the second parameter
  of a Hessian block, whose letters clash, gets ``s, t`` as in the paper's
  Eq. 9), summed indices get fresh letters in reading order from
  ``l, m, q, a, …`` — the paper's choice — never clashing with a free one.
* **Tensor roles.**  :class:`Context` knows, for a derivation, which slots of
  a tensor are written up or down (parameters ``W^j_i``: first index up, the
  rest down; adjoints ``∂f/∂z_j``: down; Jacobians ``η^{(a,s),m}_j``: a's
  indices up, s's down), which Jacobians are the paper's γ (Eq. 1), which
  adjoints are the objective's own ``∂f/∂p`` (left unevaluated, as in Eq. 6),
  and what symbol stands for ``softmax(p)``.

Factor order inside a contracted group follows the chain of summed indices
from the objective end (:func:`display_order`), so a back-propagated product
reads ``∂f/∂p_l W3^l_m η^m_j`` like the paper's Eq. 6.

What both printers show in place of what is stored, so the two agree:

* a node's definition met inside a derivative prints as the node
  (:meth:`Context.named`): ``a^{qk}``, not ``softmax_k(s^{qk})`` again;
* a product's constants, nested ones included, are one coefficient
  (:func:`split_coef`, :func:`term_parts`): ``1/(sqrt(d)*t) U^l_d Σ_q o^q_d``;
* a sum's term that is only the broadcast ones vector prints as its number,
  first (:func:`sum_terms`): ``(1 − z^j) h^j``; as a factor it stays ``𝟙^t``;
* declared families are grouped only while their members' shapes agree
  (:func:`declared_families`).

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

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import sympy

from ..ir import (Add, Apply, Const, Delta, Expr, Index, Kind, LogSumExp, Name, Ones, Prod, Quantity, Ref,
                  Softmax, Sym, TensorName, Window, all_indices, labels_of, match_indices, shape_key)

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
    unused letter of :data:`SUMMED_POOL`.
    """

    def __init__(self, free: Iterable[Index | tuple[Index, str]] = (), reserved: Iterable[str] = ()):
        #: what a printer shows in place of an expression (a node's name for its definition,
        #: :meth:`Context.named`); :meth:`walk` follows it so letters come in printed order
        self.alias = None
        self.names: dict[Index, str] = {}
        self.used: set[str] = set(reserved)
        self.free: dict[Index, int] = {}  # the statement's open indices, in axis order
        for item in free:
            ix, pref = item if isinstance(item, tuple) else (item, hint(item))
            if ix in self.names:
                continue
            self.free[ix] = len(self.free)
            self._take(ix, pref, FREE_POOL)

    def reserve_user(self, exprs: Iterable[Expr]) -> "IndexNames":
        """Keep letters that the user wrote (indices without ``_``) off-limits for others."""
        for e in exprs:
            for ix in all_indices(e):
                if not ix.name.startswith("_") and ix not in self.names:
                    self._take(ix, ix.name, SUMMED_POOL)
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
            return self._take(ix, ix.name, SUMMED_POOL)
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
            self[e.t], self[e.a]
        elif isinstance(e, Ones):
            self[e.index]
        elif isinstance(e, Prod):
            for f in display_order(split_coef(e.factors)[1], e.out, self):
                self.walk(f)
        elif isinstance(e, Add):
            for t, _ in sum_terms(e, self):
                self.walk(t)
        elif isinstance(e, (Softmax, LogSumExp)):
            self[e.over]
            self.walk(e.arg)
        else:
            for c in e.children():
                self.walk(c)
        return self


# ------------------------------------------------------------ factor order
_PRIORITY = {Kind.HOBJ: 0, Kind.ADJ: 1}


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
    elif isinstance(f, (Softmax, LogSumExp)):
        rank, name = 2, (type(f).__name__,)
    elif isinstance(f, Ref):
        rank, name = (4, (str(f.name),)) if isinstance(f.name, Quantity) else (3, (f.name,))
    else:
        rank, name = 5, (type(f).__name__,)
    return rank, name, tuple(rank_of(ix) for ix in f.free)


def term_order(terms: Sequence, names: "IndexNames | None" = None) -> list:
    """Terms of a sum (IR terms or factored terms) in an order independent of index names.

    The simplifier's order can follow generated names, which depend on what a
    process derived before; sorting by structure keeps the output byte-stable.
    """
    order = names.free if names is not None else {}

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


def display_order(factors: Sequence[Expr], out: Iterable[Index],
                  names: "IndexNames | None" = None) -> tuple[Expr, ...]:
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
        order = names.free if names is not None and names.free else {ix: k for k, ix in enumerate(out)}
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
    (3/2, (Prod(factors=(Ref(name='o', indices=(q:t,)),), out=()),))
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


def sum_terms(e: Add, names: "IndexNames | None" = None) -> list[tuple[Expr, sympy.Expr | None]]:
    """A sum's terms in display order, each with the number it prints as (:func:`broadcast_one`)
    or None.  Terms that print as numbers come first: ``1 − z^j``, not ``−z^j + 1``."""
    ordered = term_order(e.terms, names)
    pairs = [(t, broadcast_one(t, e.terms)) for t in ordered]
    return [p for p in pairs if p[1] is not None] + [p for p in pairs if p[1] is None]


def term_parts(t, out: Sequence[Index], names: "IndexNames | None" = None):
    """A factored term as ``(coef, scalar factor lists, outer-product factor lists)`` in display
    order, with every constant (nested ones included) folded into ``coef``."""
    coef = t.coef
    parts = []
    for g in t.scalars + t.groups:
        c, fs = split_coef(g.factors)
        coef *= c
        parts.append(display_order(fs, out, names))
    k = len(t.scalars)
    return coef, parts[:k], parts[k:]


# ------------------------------------------------------------ tensor roles
def family(name: TensorName) -> TensorName:
    """A family member's role is its family's: ``h(3)`` and ``h(t-1)`` → ``h(*)``."""
    return name.family if isinstance(name, Name) else name


def windows_shown(factors: Sequence[Expr], out: Iterable[Index]) -> dict[Window, Ref]:
    """Windows to print as index arithmetic: ``S^u_{t,a} x^u`` reads ``x^{t+a}`` when ``u`` is
    summed against exactly one tensor (the other factors then never mention ``u``)."""
    outs = set(out)
    shown: dict[Window, Ref] = {}
    taken: set[Ref] = set()
    for w in factors:
        if not isinstance(w, Window) or w.u in outs:
            continue
        users = [f for f in factors if f is not w and w.u in f.free]
        if len(users) == 1 and isinstance(users[0], Ref) and users[0].indices.count(w.u) == 1:
            shown[w] = users[0]
            taken.add(users[0])
    return shown


@dataclass
class Context:
    """What the printers need to know about a derivation's tensors.

    Built with :meth:`of` from a :class:`~einderiv.derive.Derivation`; the
    default (empty) context serves printer unit tests: user tensors first
    index up, adjoints down, Jacobians split in half.
    """

    objective: Name = Name("f")
    objective_args: tuple[TensorName, ...] = ()
    arity: dict[TensorName, int] = field(default_factory=dict)
    gammas: frozenset[tuple[TensorName, TensorName]] = frozenset()
    softmax: dict[TensorName, str] = field(default_factory=dict)  # arg tensor -> symbol
    #: node definitions a printed expression may repeat: (pattern, node name, node indices),
    #: keyed by :func:`~einderiv.ir.shape_key`; see :meth:`named`
    defined: dict[tuple, tuple[tuple[Expr, object, tuple[Index, ...]], ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, derivation) -> "Context":
        net = derivation.network
        arity = {family(t.name): len(t.indices) for t in net.tensors}
        arity.update({family(n.name): len(n.indices) for n in derivation.nodes})
        gammas = set()
        for n in derivation.nodes:
            if isinstance(n.expr, Apply):
                for a in n.expr.args:
                    if isinstance(a, Ref) and isinstance(a.name, Name):
                        gammas.add((family(n.name), family(a.name)))
        taken = {str(n) for n in arity} | {str(net.objective)}
        defined: dict[tuple, list] = {}
        for n in derivation.nodes:
            if n.name != net.objective and _nameable(n.expr):
                defined.setdefault(shape_key(n.expr), []).append((n.expr, n.name, tuple(n.indices)))
        args: list[TensorName] = []
        for e in _every_expr(derivation):
            for s in _softmaxes(e):
                if (isinstance(s.arg, Ref) and s.arg.indices == (s.over,) and s.arg.name not in args
                        and shape_key(s) not in defined):  # a node's softmax goes by the node's name
                    args.append(s.arg.name)
        softmax = {}
        for a in args:
            sym = "s" if len(args) == 1 and "s" not in taken else f"s_{a}"
            softmax[a] = sym
        return cls(net.objective, tuple(family(a) for a in derivation.objective_args), arity,
                   frozenset(gammas), softmax, {k: tuple(v) for k, v in defined.items()})

    def named(self, e: Expr) -> Ref | None:
        """The node ``e`` defines, as a reference with ``e``'s own indices, or None.

        A derivative that repeats a node's definition — ``softmax_k(s^{qk})`` for
        ``a^{qk}``, ``tanh(z_h^j)`` for ``h^j`` — prints the node's name, as the
        generated code reuses the node's value.

        >>> import sympy; from einderiv.ir import Index, Ref, Softmax
        >>> q, k, u, w = (Index(x, sympy.Symbol("t")) for x in "qkuw")
        >>> ctx = Context(defined={shape_key(Softmax(Ref("s", (q, k)), k)):
        ...                        ((Softmax(Ref("s", (q, k)), k), "a", (q, k)),)})
        >>> ctx.named(Softmax(Ref("s", (u, w)), w))
        Ref(name='a', indices=(u:t, w:t))
        >>> ctx.named(Softmax(Ref("s", (u, w)), u)) is None   # over the other index: not a
        True
        """
        for pattern, name, indices in self.defined.get(shape_key(e), ()):
            m = match_indices(pattern, e)
            if m is not None and all(ix in m for ix in indices):
                return Ref(name, tuple(m[ix] for ix in indices))
        return None

    def letters_taken(self, exprs: Iterable[Expr]) -> tuple[str, ...]:
        """Symbols an index letter must not look like in these expressions (``s`` for softmax)."""
        if any(True for e in exprs for _ in _softmaxes(e)):
            return tuple(sorted(self.softmax.values()))
        return ()

    # -- slots -------------------------------------------------------------
    def n_indices(self, name: TensorName, default: int) -> int:
        return self.arity.get(family(name), default)

    def upper(self, name, n: int) -> tuple[bool, ...]:
        """Which of ``n`` slots of tensor ``name`` are written up."""
        if isinstance(name, Quantity):
            if name.kind is Kind.JAC:
                k = self.n_indices(name.parts[0], n // 2)
                return tuple(i < k for i in range(n))
            return (False,) * n  # adjoints, ∂²f/∂p∂p, higher totals: covariant
        return tuple(i == 0 for i in range(n))

    def role(self, q: Quantity) -> str:
        """'dfdp' (the objective's own ∂f/∂p), 'adj', 'gamma', 'eta', 'hobj', 'd' or the kind."""
        if q.kind is Kind.ADJ:
            return "dfdp" if family(q.parts[0]) in self.objective_args else "adj"
        if q.kind is Kind.JAC:
            same = len({p.labels for p in q.parts}) == 1  # γ[v(k)] relates a node to its own argument
            return "gamma" if same and tuple(map(family, q.parts)) in self.gammas else "eta"
        return q.kind.value

    def split_jac(self, q: Quantity, indices: Sequence) -> tuple[tuple, tuple]:
        k = self.n_indices(q.parts[0], len(indices) // 2)
        return tuple(indices[:k]), tuple(indices[k:])


def _nameable(e: Expr) -> bool:
    """Definitions worth recognising inside derivatives: a function's value, a softmax, a
    log-sum-exp (a product or a sum is printed as the factors it is made of)."""
    if isinstance(e, Apply):
        return not any(e.fn.deriv)
    return isinstance(e, (Softmax, LogSumExp))


def _every_expr(derivation) -> Iterable[Expr]:
    for n in derivation.nodes:
        yield n.expr
    for q in derivation.quantities:
        yield q.expr
    for b in derivation.blocks.values():
        yield b.expr


def _softmaxes(e: Expr) -> Iterable[Softmax]:
    if isinstance(e, Softmax):
        yield e
    for c in e.children():
        yield from _softmaxes(c)


# ------------------------------------------------------------ folded families
# Both printers write an unrolled recurrence once per family (einderiv.fold);
# what to group, and where a base case goes, is decided here so that the text
# and the LaTeX documents agree.
@dataclass(frozen=True)
class Shown:
    """One displayed definition: a folded family (``labels`` non-empty) or a single one."""

    name: TensorName  # h(t), adj[h(t)], or an unfolded member's own name
    indices: tuple
    expr: Expr
    labels: tuple[int, ...]  # () unless folded
    first: TensorName  # the first member's unrolled name
    base_of: TensorName | None = None  # for a base case: the name of the folded family it completes


def shown_families(defs, base_cases_after: bool = False) -> list[Shown]:
    """``(name, indices, expr)`` definitions grouped into families (:func:`einderiv.fold.fold_definitions`).

    A family of one keeps its member's own form.  A single member whose name,
    written relative to its own label, is a folded family's name (``δ[h(4)]``
    next to ``δ[h(t)] for t = 1..3``) is that family's base case: with
    ``base_cases_after`` it is moved right after the family (a recurrence, then
    its base case, as a paper writes it); otherwise every definition keeps its
    dependency-order place.
    """
    from ..analysis.fold import fold_definitions, shift_labels

    by_name = {d[0]: d for d in defs}
    out: list[Shown] = []
    for fam in fold_definitions(defs):
        if fam.folded:
            out.append(Shown(fam.name, fam.indices, fam.expr, fam.labels, fam.members[0]))
        else:
            name, indices, expr = by_name[fam.members[0]]
            out.append(Shown(name, indices, expr, (), name))
    folded = {s.name for s in out if s.labels}
    for k, s in enumerate(out):
        labs = labels_of(s.name) if not s.labels else ()
        if labs:
            fam = shift_labels(s.name, labs[0], "t")
            if fam in folded:
                out[k] = Shown(s.name, s.indices, s.expr, (), s.first, fam)
    if not base_cases_after:
        return out
    result = [s for s in out if s.base_of is None]
    for s in out:
        if s.base_of is not None:
            at = next(k for k, r in enumerate(result) if r.labels and r.name == s.base_of)
            while at + 1 < len(result) and result[at + 1].base_of == s.base_of:
                at += 1
            result.insert(at + 1, s)
    return result


def declared_families(tensors) -> list[tuple[Name, object, list[int]]]:
    """(shown name, first member, labels): ``x(1) … x(4)`` declared once as ``x(t)``.

    Members are grouped only while their shapes agree: an unrolled layer template's
    ``w(1) : h × n_in`` stands alone and ``w(t) : h × h for t = 2, 3`` follows it, so
    no member is shown with another's shape.
    """
    out, last = [], {}
    for t in tensors:
        if not t.name.ints:
            out.append((t.name, t, []))
            continue
        base, (lab,) = t.name.base, t.name.ints
        shape = tuple(ix.dim for ix in t.indices)
        k = last.get(base)
        if k is not None and out[k][1].role == t.role and tuple(ix.dim for ix in out[k][1].indices) == shape:
            out[k][2].append(lab)
        else:
            last[base] = len(out)
            out.append((t.name, t, [lab]))
    return [(Name(n.base, (Sym("t"),)) if len(labs) > 1 else n, t, labs if len(labs) > 1 else [])
            for n, t, labs in out]


def folded_terms(block, names: IndexNames, expr: Expr | None = None) -> list[tuple[str, tuple[int, ...], object]]:
    """A block's terms as ``(symbol, labels, factored term)``: one term per family of steps (Σ over
    the labels; ``labels`` is () for a term that stands alone).  ``expr`` replaces the block's own
    expression (the Eq. 6 form).  The label is ``t`` unless the block's axes use that letter
    (∂²f/∂W^j_i∂W^s_t): then ``τ``."""
    from ..analysis.factor import as_terms, factored
    from ..analysis.fold import fold_terms

    expr = block.expr if expr is None else expr
    sym = "τ" if "t" in {names[ix] for ix in block.indices} else "t"
    fams = fold_terms([t.expr() for t in as_terms(expr, block.indices)], block.indices, sym)
    triples = [(sym, f.labels if f.folded else (),
                factored(f.term if f.folded else f.originals[0], block.indices)[0]) for f in fams]
    order = term_order([ft for _, _, ft in triples], names)
    rank = {id(ft): k for k, ft in enumerate(order)}
    return sorted(triples, key=lambda tr: rank[id(tr[2])])


def horizon(derivation) -> tuple[str, int] | None:
    """The size a family's last label stands for (``('T', 4)``), to write ranges as ``1..T-1``.

    It is the dimension whose size is the largest label any tensor carries;
    where several have that size, one named ``T`` wins, and otherwise none
    (a range is then written with numbers).
    """
    net = derivation.network
    labels = [lab for t in net.tensors for lab in labels_of(t.name)]
    labels += [lab for n in derivation.nodes for lab in labels_of(n.name)]
    if not labels:
        return None
    top = max(labels)
    cands = [name for name, size in net.dims if size == top]
    if len(cands) == 1:
        return cands[0], top
    return ("T", top) if "T" in cands else None
