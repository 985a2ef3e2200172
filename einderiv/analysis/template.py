"""Layer templates: derive once for a symbolic number of layers, read off the general equations.

A network file with ``depth n`` and families over ``for k = 1..n`` is a *layer
template* (docs/notation.md, "Layer templates"):

    depth n
    weight w^{(1),j}_i : h, n_in
    weight w^{(k),j}_i : h, h              for k = 2..n
    v^{(0),i} = x^i
    v^{(k),j} = relu(w^{(k),j}_i v^{(k-1),i})   for k = 1..n
    p^l = u^l_j v^{(n),j}

With a concrete depth (``depth={'n': 3}``) it unrolls like any family and runs
through the ordinary pipeline.  With a symbolic depth, :func:`general_form`
derives it at a *reference depth* where every case is interior, and folds
the unrolled derivation back with symbolic layer labels:

* every name's integer labels are written relative to the nearest *anchor* —
  the definition's own labels (``k``, ``l``), a block's layers (``k``, ``r``)
  or the depth ``n`` — so members of a family become equal expressions;
* terms of a block that differ only in one further layer become a sum over
  a *summation label* ``m`` whose range is written relative to the anchors
  (the A'' terms ``Σ_{m=r+1}^{n}``);
* groups that are the same formula under another anchoring are merged by
  *instantiating* the symbolic form and comparing it with the unrolled one
  (so ``η[v(r-1),z_v(k)]`` covers ``γ[v(k)]`` at ``r = k+1``);
* each group gets the condition its members satisfy (``k = n``, ``k < n``,
  ``r > k``), read off as difference bounds between anchors.

**Validation.**  The general form is then instantiated at other depths
(:data:`CHECK_DEPTHS`) for every member and block, and compared term by term
with the derivation of that depth.  A mismatch raises :class:`FoldError`:
einderiv never prints a general formula it has not reproduced.

Labels relative to anchors are :mod:`.anchors`'s, conditions :mod:`.conditions`'s.
Loading a template (:class:`~einderiv.frontend.model.Template`) is the front end's.

Example:
    >>> g = general_form(einderiv.load("derivations/deep_template.ein"))  # doctest: +SKIP
    >>> [str(f.name) for f in g.quantities][:2]                         # doctest: +SKIP
    ['adj[v(k)]', 'adj[v(k)]']
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from ..calculus.derivation import display
from ..calculus.derive import Derivation, derive
from ..errors import Argument, EinderivError, UsageError
from ..frontend.model import REF_DEPTH, Template
from ..ir import Expr, Index, Label, Sym, TensorName, labels_of, rename
from .anchors import (MAX_OFFSET, MaxOf, TooFar, abstract, abstract_name, concrete_name, eval_label,
                      instantiate, key, sym_label, term_keys, uses_symbol)
from .conditions import MAX_BOUND, Condition, condition_of, describe, range_text
from .factor import as_terms
from .fold import tensor_labels

__all__ = ["REF_DEPTH", "CHECK_DEPTHS", "MAX_BOUND", "MAX_OFFSET", "FoldError", "Template", "Condition",
           "MaxOf", "GeneralDef", "GeneralTerm", "GeneralBlock", "GeneralForm", "general_form", "validate",
           "fold_defs", "fold_blocks", "fold_block_terms", "expand", "expand_keys", "split_common",
           "concrete_name", "eval_label", "instantiate", "sym_label"]

#: depths at which the general form is instantiated and compared with a fresh derivation
CHECK_DEPTHS = (1, 2, 3, 5)


class FoldError(EinderivError):
    """The general form does not reproduce the unrolled derivation (or cannot be written)."""


# ------------------------------------------------------------ definitions
@dataclass
class GeneralDef:
    """One case of a family of definitions, with symbolic labels: ``δ[v(k)] = … for k < n``."""

    name: TensorName
    indices: tuple[Index, ...]
    expr: Expr
    symbols: tuple[str, ...]
    members: list = field(default_factory=list)  # envs at the reference depth
    cond: Condition = Condition(())
    text: str = ""  # the condition as the printers show it


def _def_symbols(name: TensorName) -> tuple[tuple[str, ...], tuple[int, ...]]:
    labs = tuple(dict.fromkeys(labels_of(name)))
    return ("k", "l", "q")[:len(labs)], labs


def _env(symbols, labs, depth) -> dict[str, int]:
    return {**dict(zip(symbols, labs)), "n": depth}


def fold_defs(defs: Sequence[tuple[TensorName, tuple[Index, ...], Expr]], depth: int) -> list[GeneralDef]:
    """Definitions at ``depth`` as general cases (in order of first appearance)."""
    groups: dict[tuple, GeneralDef] = {}
    concrete: dict[int, list] = {}
    for name, indices, expr in defs:
        symbols, labs = _def_symbols(name)
        env = _env(symbols, labs, depth)
        anchors = list(zip(symbols, labs)) + [("n", depth)]
        try:
            aname, aexpr = abstract_name(name, anchors), abstract(expr, anchors)
        except TooFar as exc:
            raise FoldError(f"cannot write {name} in terms of its own layers and n: {exc} is too far "
                            "from them") from None
        k = (aname, key(aexpr, indices))
        g = groups.setdefault(k, GeneralDef(aname, indices, aexpr, symbols))
        g.members.append(env)
        concrete.setdefault(id(g), []).append((indices, expr))
    out = list(groups.values())
    # merge cases that are one formula under another anchoring (γ[v(l)] is η[v(k-1),z_v(l)] at k = l+1)
    by_size = sorted(out, key=lambda g: -len(g.members))
    merged: set[int] = set()
    for g in by_size:
        if id(g) in merged:
            continue
        for h in by_size:
            if h is g or id(h) in merged or h.name != g.name:
                continue
            if all(key(instantiate(g.expr, env), g.indices) == key(e, ix)
                   for env, (ix, e) in zip(h.members, concrete[id(h)])):
                g.members.extend(h.members)
                merged.add(id(h))
    out = [g for g in out if id(g) not in merged]
    for g in out:
        g.cond = condition_of(g.members, g.symbols)
    for g in out:
        siblings = [h for h in out if h.name == g.name]
        if len(g.symbols) == 1 and range_text(g.cond, g.symbols[0]):
            g.text = f"{g.symbols[0]} = {range_text(g.cond, g.symbols[0])}"
        elif len(siblings) == 1:
            g.text = describe(g.cond, Condition(()), g.symbols, None) if g.symbols else ""
        else:
            domain = condition_of([m for h in siblings for m in h.members], g.symbols)
            g.text = describe(g.cond, domain, g.symbols, None)
    return out


# ----------------------------------------------------------------- blocks
@dataclass
class GeneralTerm:
    """A term of a block; with ``over`` = (lo, hi) it is Σ_{m=lo}^{hi} of ``term``."""

    term: Expr
    over: tuple[Label | MaxOf, Label | MaxOf] | None = None


@dataclass
class GeneralBlock:
    """One case of a family of blocks ∂f/∂w(k), ∂²f/∂w(k)∂w(r): terms with symbolic labels."""

    bases: tuple[str, ...]
    wrt: tuple[TensorName, ...]  # symbolic names, e.g. (w(k), w(r))
    indices: tuple[Index, ...]
    terms: list[GeneralTerm]
    symbols: tuple[str, ...]
    paper: list[GeneralTerm] | None = None
    members: list = field(default_factory=list)
    cond: Condition = Condition(())
    text: str = ""


def expand(terms: Sequence[GeneralTerm], env: dict[str, int]) -> list[Expr]:
    """The unrolled terms of a general block at ``env`` (a Σ over an empty range gives none)."""
    out = []
    for gt in terms:
        if gt.over is None:
            out.append(instantiate(gt.term, env))
            continue
        lo, hi = (eval_label(x, env) for x in gt.over)
        out.extend(instantiate(gt.term, {**env, "m": m}) for m in range(lo, hi + 1))
    return out


def expand_keys(terms: Sequence[GeneralTerm], env, out, src: tuple[Index, ...] | None = None) -> Counter:
    """Keys of the unrolled terms; ``src``: the terms' own slot indices, when not ``out``."""
    ts = expand(terms, env)
    if src is not None and src != out:
        ts = [rename(t, dict(zip(src, out))) for t in ts]
    return Counter(key(t, out) for t in ts)


def fold_block_terms(terms: Sequence[Expr], out: tuple[Index, ...], anchors, env) -> list[GeneralTerm]:
    """Terms relative to the block's anchors; runs of one pattern over a further layer become Σ_m."""
    remaining = Counter(key(t, out) for t in terms)
    result = []
    top = max(v for _, v in anchors) + 1
    for t in terms:
        if remaining[key(t, out)] == 0:
            continue
        best = None
        cands = [None] + sorted(set(tensor_labels(t)))
        for v in cands:
            try:
                at = abstract(t, anchors if v is None else [("m", v)] + list(anchors))
            except TooFar:
                continue
            if v is None:
                run = [None]
            else:
                if not uses_symbol(at, "m"):
                    continue
                run = [v]
                for step in (-1, 1):
                    w = v + step
                    while 0 <= w <= top and remaining[key(instantiate(at, {**env, "m": w}), out)] > 0:
                        run.append(w)
                        w += step
                run.sort()
            if best is None or len(run) > len(best[1]):
                best = (at, run, v)
        if best is None:
            raise FoldError(f"cannot write a term in terms of the block's layers and n: {t}")
        at, run, v = best
        if v is None or len(run) < 2:
            at = abstract(t, anchors) if v is not None else at
            result.append(GeneralTerm(at))
            remaining[key(t, out)] -= 1
            continue
        lo, hi = sym_label(run[0], anchors), sym_label(run[-1], anchors)
        if lo is None or hi is None:
            raise FoldError(f"the range {run[0]}..{run[-1]} of a sum is not relative to the block's layers")
        for w in run:
            remaining[key(instantiate(at, {**env, "m": w}), out)] -= 1
        result.append(GeneralTerm(at, (lo, hi)))
    return result


def fold_blocks(derivation: Derivation, depth: int, order: int) -> list[GeneralBlock]:
    """Every block up to ``order`` as general cases, grouped by the families it differentiates."""
    symbols_by_pos = ("k", "r", "q")
    groups: dict[tuple, GeneralBlock] = {}
    concrete: dict[int, list] = {}
    for wrt, block in derivation.blocks.items():
        if len(wrt) > order:
            continue
        bases, syms, anchors = [], [], []
        for pos, w in enumerate(wrt):
            bases.append(w.base)
            if w.ints:
                syms.append(symbols_by_pos[pos])
                anchors.append((symbols_by_pos[pos], w.ints[0]))
        anchors.append(("n", depth))
        env = {**dict(anchors)}
        gterms = fold_block_terms([t.expr() for t in as_terms(block.expr, block.indices)],
                                  block.indices, anchors, env)
        gkey = (tuple(bases), tuple(sorted(((key(g.term, block.indices), g.over) for g in gterms), key=repr)))
        if gkey not in groups:
            paper = None
            if block.paper is not None and block.paper != block.expr:
                paper = fold_block_terms([t.expr() for t in as_terms(block.paper, block.indices)],
                                         block.indices, anchors, env)
            groups[gkey] = GeneralBlock(tuple(bases), tuple(abstract_name(w, anchors) for w in wrt),
                                        block.indices, gterms, tuple(syms), paper)
        g = groups[gkey]
        g.members.append(env)
        concrete.setdefault(id(g), []).append(block)
    out = list(groups.values())
    by_size = sorted(out, key=lambda g: -len(g.members))
    merged: set[int] = set()
    for g in by_size:
        if id(g) in merged:
            continue
        for h in by_size:
            if h is g or id(h) in merged or h.bases != g.bases:
                continue
            if all(expand_keys(g.terms, env, g.indices) == term_keys(b.expr, b.indices)
                   for env, b in zip(h.members, concrete[id(h)])):
                g.members.extend(h.members)
                concrete[id(g)].extend(concrete[id(h)])
                merged.add(id(h))
    out = [g for g in out if id(g) not in merged]
    for g in out:
        # keep the paper's form only where it holds for every member
        if g.paper is not None and not all(expand_keys(g.paper, env, g.indices) == term_keys(b.paper, b.indices)
                                           for env, b in zip(g.members, concrete[id(g)])):
            g.paper = None
        g.cond = condition_of(g.members, g.symbols)
    for g in out:
        siblings = [h for h in out if h.bases == g.bases]
        if len(siblings) == 1 and len(g.symbols) == 1 and range_text(g.cond, g.symbols[0]):
            g.text = f"{g.symbols[0]} = {range_text(g.cond, g.symbols[0])}"
        elif len(siblings) == 1:
            g.text = describe(g.cond, Condition(()), g.symbols, g.symbols[-1] if g.symbols else None)
        else:
            domain = condition_of([m for h in siblings for m in h.members], g.symbols)
            g.text = describe(g.cond, domain, g.symbols, g.symbols[-1])
    return out


# ------------------------------------------------------------- the whole
@dataclass
class GeneralForm:
    """The derivation of a template for any depth, validated at :data:`CHECK_DEPTHS`."""

    template: Template
    order: int
    reference: Derivation  # at REF_DEPTH: the source of every general formula
    nodes: list[GeneralDef]
    quantities: list[GeneralDef]
    blocks: list[GeneralBlock]
    checked: tuple[int, ...] = ()

    def _repr_latex_(self) -> str:  # a notebook shows the blocks …
        return display("latex", self)

    def _repr_markdown_(self) -> str:  # … or the whole general form
        return display("markdown", self)


def general_form(tpl: Template, order: int = 2, check_depths: Sequence[int] = CHECK_DEPTHS) -> GeneralForm:
    """Derive ``tpl`` at :data:`REF_DEPTH`, fold it with symbolic labels, validate it."""
    if order > 2:
        raise UsageError(f"the general form of a template goes to order 2 (gradients and Hessian blocks); "
                         f"for order {order} give a concrete depth, e.g. {{0}}",
                         arguments=(Argument("depth", tpl.depth, 3),))
    ref = derive(tpl.instantiate(REF_DEPTH), order)
    gf = GeneralForm(tpl, order, ref,
                     fold_defs([(n.name, n.indices, n.expr) for n in ref.nodes], REF_DEPTH),
                     fold_defs([(q.name, q.indices, q.expr) for q in ref.quantities], REF_DEPTH),
                     fold_blocks(ref, REF_DEPTH, order))
    for depth in check_depths:
        validate(gf, derive(tpl.instantiate(depth), order), depth)
    gf.checked = tuple(check_depths)
    return gf


def validate(gf: GeneralForm, d: Derivation, depth: int) -> None:
    """Instantiate every general definition and block at ``depth`` and compare with ``d``.

    Raises :class:`FoldError` naming the first member that differs, is missing, or is
    predicted but absent.
    """
    where = f"at depth {gf.template.depth} = {depth}"
    _validate_defs(gf.nodes, [(n.name, n.indices, n.expr) for n in d.nodes], depth, where)
    _validate_defs(gf.quantities, [(q.name, q.indices, q.expr) for q in d.quantities], depth, where)
    have = {}
    for wrt, block in d.blocks.items():
        if len(wrt) > gf.order:
            continue
        bases, env = _block_env(wrt, depth)
        have[(bases, tuple(sorted(env.items())))] = block
        cases = [g for g in gf.blocks if g.bases == bases and g.cond.holds(env)]
        if not cases:
            raise FoldError(f"the general form has no case for the block {wrt} {where}")
        if expand_keys(cases[0].terms, env, cases[0].indices) != term_keys(block.expr, block.indices):
            raise FoldError(f"the general form of the block {cases[0].wrt} ({cases[0].text or 'all'}) does not "
                            f"reproduce the derived block {wrt} {where}")
    for g in gf.blocks:
        for env in _envs(g.symbols, g.cond, depth):
            if (g.bases, tuple(sorted(env.items()))) not in have:
                raise FoldError(f"the general block {g.wrt} ({g.text}) predicts a block at {env} that the "
                                f"derivation {where} does not have")


def _block_env(wrt, depth):
    bases, env = [], {"n": depth}
    for pos, w in enumerate(wrt):
        bases.append(w.base)
        if w.ints:
            env[("k", "r", "q")[pos]] = w.ints[0]
    return tuple(bases), env


def _envs(symbols, cond: Condition, depth: int):
    for labs in itertools.product(range(0, depth + 2), repeat=len(symbols)):
        env = _env(symbols, labs, depth)
        if cond.holds(env):
            yield env


def _validate_defs(general: list[GeneralDef], defs, depth: int, where: str) -> None:
    have = {}
    for name, indices, expr in defs:
        symbols, labs = _def_symbols(name)
        env = _env(symbols, labs, depth)
        aname = abstract_name(name, list(zip(symbols, labs)))
        have[(aname, tuple(sorted(env.items())))] = True
        cases = [g for g in general if g.name == aname and g.cond.holds(env)]
        if not cases:
            raise FoldError(f"the general form has no definition for {name} {where}")
        if key(instantiate(cases[0].expr, env), cases[0].indices) != key(expr, indices):
            raise FoldError(f"the general definition of {aname} ({cases[0].text or 'all'}) does not reproduce "
                            f"{name} {where}")
    for g in general:
        for env in _envs(g.symbols, g.cond, depth):
            if (g.name, tuple(sorted(env.items()))) not in have:
                raise FoldError(f"the general definition {g.name} ({g.text}) predicts a member at {env} that "
                                f"the derivation {where} does not have")


# ------------------------------------------------------------ case splits
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
