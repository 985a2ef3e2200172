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
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from ..calculus.derivation import display
from ..calculus.derive import Derivation, derive
from ..errors import Argument, UsageError
from ..frontend.model import REF_DEPTH, Template
from ..ir import Expr, Index, TensorName, add, labels_of, rename
from .anchors import (MAX_OFFSET, MaxOf, TooFar, abstract, abstract_name, concrete_name, eval_label,
                      instantiate, key, sym_label, term_keys, uses_symbol)
from .conditions import MAX_BOUND, Condition, condition_of, describe, range_text
from .factor import as_terms
from .fold import tensor_labels
from .labels import LAYERS, STEP_CHECKS, FoldError, GeneralTerm, Labels, expand, sequence_labels
from .steps import fold_step_terms

__all__ = ["REF_DEPTH", "CHECK_DEPTHS", "STEP_CHECKS", "MAX_BOUND", "MAX_OFFSET", "FoldError", "Template",
           "Condition", "MaxOf", "Labels", "GeneralDef", "GeneralTerm", "GeneralBlock", "GeneralForm",
           "general_form", "in_general_form", "validate", "written_at", "fold_defs", "fold_blocks", "fold_block_terms", "expand", "expand_keys",
           "concrete_name", "eval_label", "instantiate", "sym_label"]

#: depths at which the general form is instantiated and compared with a fresh derivation
CHECK_DEPTHS = (1, 2, 3, 5)


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


def _def_symbols(name: TensorName, labels: Labels = LAYERS) -> tuple[tuple[str, ...], tuple[int, ...]]:
    labs = tuple(dict.fromkeys(labels_of(name)))
    if len(labs) > len(labels.defs):
        raise FoldError(f"cannot write {name} with at most {len(labels.defs)} symbolic labels")
    return labels.defs[:len(labs)], labs


def _env(symbols, labs, depth, labels: Labels = LAYERS) -> dict[str, int]:
    return {**dict(zip(symbols, labs)), labels.depth: depth}


def fold_defs(defs: Sequence[tuple[TensorName, tuple[Index, ...], Expr]], depth: int,
              labels: Labels = LAYERS) -> list[GeneralDef]:
    """Definitions at ``depth`` as general cases (in order of first appearance)."""
    groups: dict[tuple, GeneralDef] = {}
    concrete: dict[int, list] = {}
    for name, indices, expr in defs:
        symbols, labs = _def_symbols(name, labels)
        env = _env(symbols, labs, depth, labels)
        anchors = list(zip(symbols, labs)) + [(labels.depth, depth)]
        try:
            aname, aexpr = abstract_name(name, anchors), abstract(expr, anchors)
        except TooFar as exc:
            raise FoldError(f"cannot write {name} in terms of its own labels and {labels.depth}: {exc} is too "
                            "far from them") from None
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
    dn = labels.depth
    out = [h for g in out for h in _convex(g, depth, dn)]
    for g in out:
        siblings = [h for h in out if h.name == g.name]
        if len(g.symbols) == 1 and range_text(g.cond, g.symbols[0], dn):
            g.text = f"{g.symbols[0]} = {range_text(g.cond, g.symbols[0], dn)}"
        elif len(siblings) == 1:
            g.text = describe(g.cond, Condition(()), g.symbols, None, dn) if g.symbols else ""
        else:
            domain = condition_of([m for h in siblings for m in h.members], g.symbols, dn)
            g.text = describe(g.cond, domain, g.symbols, None, dn)
    return out


def _convex(g: GeneralDef, depth: int, dn: str) -> list[GeneralDef]:
    """``g`` with the condition its members satisfy; split by the order of its labels (``τ < t``,
    ``τ > t``) when that condition also holds where there is no member (``t = τ`` is another name:
    a member with equal labels has fewer symbols)."""
    g.cond = condition_of(g.members, g.symbols, dn)
    if len(g.symbols) < 2:
        return [g]
    have = {tuple(m[x] for x in g.symbols) for m in g.members}
    if all(tuple(env[x] for x in g.symbols) in have for env in _envs(g.symbols, g.cond, depth, Labels(dn))):
        return [g]
    parts: dict[tuple, list] = {}
    for m in g.members:
        sign = tuple((m[a] > m[b]) - (m[a] < m[b]) for k, a in enumerate(g.symbols) for b in g.symbols[k + 1:])
        parts.setdefault(sign, []).append(m)
    out = []
    for members in parts.values():
        h = GeneralDef(g.name, g.indices, g.expr, g.symbols, members)
        h.cond = condition_of(members, g.symbols, dn)
        out.append(h)
    return out


# ----------------------------------------------------------------- blocks
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


def expand_keys(terms: Sequence[GeneralTerm], env, out, src: tuple[Index, ...] | None = None,
                labels: Labels = LAYERS) -> Counter:
    """Keys of the unrolled terms; ``src``: the terms' own slot indices, when not ``out``."""
    ts = expand(terms, env, labels)
    if src is not None and src != out:
        ts = [rename(t, dict(zip(src, out))) for t in ts]
    return Counter(key(t, out) for t in ts)


def fold_block_terms(terms: Sequence[Expr], out: tuple[Index, ...], anchors, env,
                     labels: Labels = LAYERS) -> list[GeneralTerm]:
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


def fold_blocks(derivation: Derivation, depth: int, order: int, labels: Labels = LAYERS) -> list[GeneralBlock]:
    """Every block up to ``order`` as general cases, grouped by the families it differentiates;
    a recurrence's terms are folded into sums over steps (:func:`~.steps.fold_step_terms`)."""
    symbols_by_pos = labels.blocks
    dn = labels.depth
    fold = fold_step_terms if labels.steps else fold_block_terms
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
        anchors.append((dn, depth))
        env = {**dict(anchors)}
        gterms = fold([t.expr() for t in as_terms(block.expr, block.indices)], block.indices, anchors, env,
                      labels)
        gkey = (tuple(bases), tuple(sorted(((key(g.term, block.indices), g.over, g.steps, g.cond)
                                            for g in gterms), key=repr)))
        if gkey not in groups:
            paper = None
            if block.paper is not None and block.paper != block.expr:
                paper = fold([t.expr() for t in as_terms(block.paper, block.indices)], block.indices, anchors,
                             env, labels)
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
            if all(expand_keys(g.terms, env, g.indices, labels=labels) == term_keys(b.expr, b.indices)
                   for env, b in zip(h.members, concrete[id(h)])):
                g.members.extend(h.members)
                concrete[id(g)].extend(concrete[id(h)])
                merged.add(id(h))
    out = [g for g in out if id(g) not in merged]
    for g in out:
        # keep the paper's form only where it holds for every member
        if g.paper is not None and not all(expand_keys(g.paper, env, g.indices, labels=labels)
                                           == term_keys(b.paper, b.indices)
                                           for env, b in zip(g.members, concrete[id(g)])):
            g.paper = None
        g.cond = condition_of(g.members, g.symbols, dn)
    for g in out:
        siblings = [h for h in out if h.bases == g.bases]
        if len(siblings) == 1 and len(g.symbols) == 1 and range_text(g.cond, g.symbols[0], dn):
            g.text = f"{g.symbols[0]} = {range_text(g.cond, g.symbols[0], dn)}"
        elif len(siblings) == 1:
            g.text = describe(g.cond, Condition(()), g.symbols, g.symbols[-1] if g.symbols else None, dn)
        else:
            domain = condition_of([m for h in siblings for m in h.members], g.symbols, dn)
            g.text = describe(g.cond, domain, g.symbols, g.symbols[-1], dn)
    return out


# ------------------------------------------------------------- the whole
@dataclass
class GeneralForm:
    """The derivation of a template for any depth (or length), validated at ``checked``."""

    template: Template
    order: int
    reference: Derivation  # at REF_DEPTH: the source of every general formula
    nodes: list[GeneralDef]
    quantities: list[GeneralDef]
    blocks: list[GeneralBlock]
    checked: tuple[int, ...] = ()
    labels: Labels = LAYERS  # the symbols it is written with
    expanded: bool = True  # Hessian blocks expanded (else through second-order adjoints H[s,s'])
    #: the same general form with the other Hessian form, once built (:func:`in_general_form`)
    forms: dict = field(default_factory=dict, repr=False, compare=False)

    def _repr_latex_(self) -> str:  # a notebook shows the blocks …
        return display("latex", self)

    def _repr_markdown_(self) -> str:  # … or the whole general form
        return display("markdown", self)


_DERIVED: "weakref.WeakKeyDictionary[Template, dict]" = weakref.WeakKeyDictionary()


def derived(tpl: Template, depth: int, order: int, expanded: bool) -> Derivation:
    """The derivation of ``tpl`` at ``depth`` (kept with the template: a general form, its other
    Hessian form and :func:`written_at` all derive the same lengths)."""
    kept = _DERIVED.setdefault(tpl, {})
    if (depth, order, expanded) not in kept:
        kept[(depth, order, expanded)] = derive(tpl.instantiate(depth), order, expanded)
    return kept[(depth, order, expanded)]


def general_form(tpl: Template, order: int = 2, check_depths: Sequence[int] | None = None,
                 expanded: bool = True) -> GeneralForm:
    """Derive ``tpl`` at :data:`REF_DEPTH`, fold it with symbolic labels, validate it at
    ``check_depths`` (layers: :data:`CHECK_DEPTHS`; a recurrence's lengths: :data:`STEP_CHECKS`).

    A recurrence (``tpl.sequence``) may write its Hessian blocks compact (``expanded=False``,
    through second-order adjoints H[s,s'] that are themselves recurrences); a layer template's
    are expanded.  A general form that cannot be written, or that a fresh derivation at another
    depth contradicts, raises :class:`FoldError` at the file's ``depth`` line.
    """
    if order > 2:
        raise UsageError(f"the general form of a template goes to order 2 (gradients and Hessian blocks); "
                         f"for order {order} give a concrete depth, e.g. {{0}}",
                         arguments=(Argument("depth", tpl.depth, 3),))
    labels = sequence_labels(tpl.depth) if tpl.sequence else LAYERS
    if check_depths is None:
        check_depths = STEP_CHECKS if tpl.sequence else CHECK_DEPTHS
    try:
        ref = derived(tpl, REF_DEPTH, order, expanded)
        gf = GeneralForm(tpl, order, ref,
                         fold_defs([(n.name, n.indices, n.expr) for n in ref.nodes], REF_DEPTH, labels),
                         fold_defs([(q.name, q.indices, q.expr) for q in ref.quantities], REF_DEPTH, labels),
                         fold_blocks(ref, REF_DEPTH, order, labels), labels=labels, expanded=expanded)
        checked = []
        for depth in check_depths:
            try:
                validate(gf, derived(tpl, depth, order, expanded), depth)
            except FoldError:
                if not (tpl.sequence and depth == min(check_depths)):
                    raise
                continue  # a recurrence whose families start later: the form holds from the next length on
            checked.append(depth)
    except FoldError as err:
        if err.loc is not None:
            raise
        raise FoldError(f"{err.message}; einderiv writes no general formula it cannot check: give the "
                        f"{labels.what}, e.g. {{0}}", tpl.depth_loc,
                        arguments=(Argument("depth", tpl.depth, 4),)) from None
    gf.checked = tuple(checked)
    return gf


def in_general_form(gf: GeneralForm, form: str) -> GeneralForm:
    """``gf`` with its Hessian blocks in ``form`` ("expanded" or "compact"), built once and kept.
    Only a recurrence's general form has a compact form (its H[s,s'] are recurrences too)."""
    expanded = form == "expanded"
    if gf.expanded == expanded or gf.order < 2:
        return gf
    if not gf.template.sequence:
        raise UsageError("{0}: the general form of a layer template writes its Hessian blocks expanded; "
                         "the compact form needs a concrete depth", arguments=(Argument("form", None, form),))
    if form not in gf.forms:
        gf.forms[form] = general_form(gf.template, gf.order, gf.checked, expanded)
    return gf.forms[form]


def validate(gf: GeneralForm, d: Derivation, depth: int) -> None:
    """Instantiate every general definition and block at ``depth`` and compare with ``d``.

    Raises :class:`FoldError` naming the first member that differs, is missing, or is
    predicted but absent.
    """
    labels = gf.labels
    where = f"at {labels.what} {gf.template.depth} = {depth}"
    _validate_defs(gf.nodes, [(n.name, n.indices, n.expr) for n in d.nodes], depth, where, labels)
    _validate_defs(gf.quantities, [(q.name, q.indices, q.expr) for q in d.quantities], depth, where, labels)
    have = {}
    for wrt, block in d.blocks.items():
        if len(wrt) > gf.order:
            continue
        bases, env = _block_env(wrt, depth, labels)
        have[(bases, tuple(sorted(env.items())))] = block
        cases = [g for g in gf.blocks if g.bases == bases and g.cond.holds(env)]
        if not cases:
            raise FoldError(f"the general form has no case for the block {wrt} {where}")
        if expand_keys(cases[0].terms, env, cases[0].indices, labels=labels) != term_keys(block.expr,
                                                                                          block.indices):
            raise FoldError(f"the general form of the block {cases[0].wrt} ({cases[0].text or 'all'}) does not "
                            f"reproduce the derived block {wrt} {where}")
    for g in gf.blocks:
        for env in _envs(g.symbols, g.cond, depth, labels):
            if (g.bases, tuple(sorted(env.items()))) not in have:
                raise FoldError(f"the general block {g.wrt} ({g.text}) predicts a block at {env} that the "
                                f"derivation {where} does not have")


def written_at(gf: GeneralForm, depth: int):
    """The general form written out at ``depth`` from its general formulas alone: ``(definitions,
    blocks)`` — every node and quantity of a derivation at that depth as ``(name, indices, expr)``
    in its order, and each block as ``wrt -> (axes, expr)``.  (The fresh
    derivation supplies only names, axes and order; a test evaluates these numerically.)"""
    labels = gf.labels
    d = derived(gf.template, depth, gf.order, gf.expanded)
    defs = []
    for general, items in ((gf.nodes, d.nodes), (gf.quantities, d.quantities)):
        for item in items:
            symbols, labs = _def_symbols(item.name, labels)
            env = _env(symbols, labs, depth, labels)
            aname = abstract_name(item.name, list(zip(symbols, labs)))
            case = next(g for g in general if g.name == aname and g.cond.holds(env))
            defs.append((item.name, item.indices,
                         rename(instantiate(case.expr, env), dict(zip(case.indices, item.indices)))))
    blocks = {}
    for wrt, block in d.blocks.items():
        if len(wrt) > gf.order:
            continue
        bases, env = _block_env(wrt, depth, labels)
        case = next(g for g in gf.blocks if g.bases == bases and g.cond.holds(env))
        terms = [rename(t, dict(zip(case.indices, block.indices))) for t in expand(case.terms, env, labels)]
        blocks[wrt] = (block.indices, add(terms))
    return defs, blocks


def _block_env(wrt, depth, labels: Labels = LAYERS):
    bases, env = [], {labels.depth: depth}
    for pos, w in enumerate(wrt):
        bases.append(w.base)
        if w.ints:
            env[labels.blocks[pos]] = w.ints[0]
    return tuple(bases), env


def _envs(symbols, cond: Condition, depth: int, labels: Labels = LAYERS):
    for labs in itertools.product(range(0, depth + 2), repeat=len(symbols)):
        env = _env(symbols, labs, depth, labels)
        if cond.holds(env):
            yield env


def _validate_defs(general: list[GeneralDef], defs, depth: int, where: str, labels: Labels = LAYERS) -> None:
    have = {}
    for name, indices, expr in defs:
        symbols, labs = _def_symbols(name, labels)
        env = _env(symbols, labs, depth, labels)
        aname = abstract_name(name, list(zip(symbols, labs)))
        have[(aname, tuple(sorted(env.items())))] = True
        cases = [g for g in general if g.name == aname and g.cond.holds(env)]
        if not cases:
            raise FoldError(f"the general form has no definition for {name} {where}")
        if key(instantiate(cases[0].expr, env), cases[0].indices) != key(expr, indices):
            raise FoldError(f"the general definition of {aname} ({cases[0].text or 'all'}) does not reproduce "
                            f"{name} {where}")
    for g in general:
        for env in _envs(g.symbols, g.cond, depth, labels):
            if (g.name, tuple(sorted(env.items()))) not in have:
                raise FoldError(f"the general definition {g.name} ({g.text}) predicts a member at {env} that "
                                f"the derivation {where} does not have")
