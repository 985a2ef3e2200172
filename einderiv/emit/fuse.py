"""A gradient's sums over steps added up inside the backward loop (back-propagation through time
as one reversed loop, the way it is written by hand).

The looped kernel (:func:`einderiv.emit.loops.fold_loops`) computes the gradient in two passes:
``_backward`` runs the reversed loop over the steps and stores each step's adjoints, then the
gradient's :class:`~einderiv.emit.kernel.Accumulate` statements loop over the steps again and read
them back.  :func:`fuse_gradient` writes one function instead: each weight's block starts at
zeros, and each term group of its sum over steps (``Σ_k δ[z_h(k)] ⊗ h(k-1)``) is added
(:class:`~einderiv.emit.kernel.AddTo`) inside the backward loop, at the iteration where its
adjoint has just been computed — shifted by the label offset ``d`` that makes the loop's
iterations fall inside the group's steps (``∂f/∂W``'s steps 2..T in a loop over T-1..1: the term
of step k + 1 at iteration k, reading ``δ[z_h(k+1)]``, which the iteration reads anyway).  Steps
of a group that no iteration covers (step T, whose adjoint is the base case before the loop)
are added one by one after the loop; a group that fits no loop keeps its own loop after them.

A term is placed at an iteration only where every back-propagated quantity it reads is defined
by then (checked member by member at the reference length), so each weight's sum has the terms
the two-pass gradient adds — equal up to rounding: the steps are added in the loop's order, and
1/B is applied once to the objective's adjoint where :func:`~einderiv.emit.straight.mean_seeds`
finds that exact.  ``tests/test_fuse.py`` checks the numbers against an independent BPTT, the
two-pass per-sample gradients and central differences.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..ir import Sym, map_names, map_refs, names_in, refs
from .kernel import (Accumulate, AddTo, Assign, Block, Comment, Contraction, Define, Elementwise, Function, Loop,
                     Module, Python, Range, Return, TermGroup)
from .kernel_arrays import Item, Key, Var
from .liveness import drop_unread, variables
from .straight import mean_seeds

FUSED_DOC = ("Batch-mean gradient from t (forward done): the reversed loop of _backward with each weight's sum over "
             "steps added up in it; what the next step reads is carried in variables, and only what a later "
             "statement reads back is stored into t.")
#: the forward pass of ``gradient`` (:func:`carry_fused`)
LEAN_FORWARD = "_forward_gradient"
LEAN_DOC = "The forward pass of gradient: _forward (its formulas are there) storing into t only what _gradient reads."
#: the forward and backward passes of the per-sample functions (:func:`carry_fused`)
FACTORS_FORWARD, FACTORS_BACKWARD = "_forward_factors", "_backward_factors"
#: what the per-sample functions read from ``t`` after those passes
FACTORS_READERS = ("_factors", "_per_sample")
FACTORS_DOC = ("The {} pass of the per-sample functions: {} (its formulas are there) storing into t only what "
               "the next pass, _factors and _per_sample read.")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: label offsets tried, nearest first
SHIFTS = (0, 1, -1, 2, -2)


def at_name(name, symbol: str, value):
    """``name`` with every label ``symbol ± o`` written as ``value ± o`` (an integer, or a label in
    the length: ``T-1``)."""
    def one(n):
        return n.relabel(lambda lab: (value.shift(lab.offset) if isinstance(value, Sym) else value + lab.offset)
                         if isinstance(lab, Sym) and lab.symbol == symbol else lab)

    return map_names(name, one)


def at(e, symbol: str, value: int):
    """``e`` with every label ``symbol ± o`` written as the integer ``value ± o``."""
    return map_refs(e, lambda name: at_name(name, symbol, value))


def shifted(e, symbol: str, d: int):
    """``e`` with every label ``symbol ± o`` moved by ``d``."""
    def one(n):
        return n.relabel(lambda lab: lab.shift(d) if isinstance(lab, Sym) and lab.symbol == symbol else lab)

    return map_refs(e, lambda name: map_names(name, one))


def steps(r: Range) -> list[int]:
    return list(range(r.start, r.stop, r.step))


def fuse_gradient(backward: tuple, gradient: tuple, ctx) -> tuple | None:
    """The statements of ``backward`` (definitions and loops over steps, integer labels) with the
    accumulations of ``gradient`` added up inside them, then its return; None when either is not
    of that shape."""
    if not all(isinstance(st, Define) or (isinstance(st, Loop) and isinstance(st.over, Range)
                                          and all(isinstance(d, Define) for d in st.body)) for st in backward):
        return None
    if not all(isinstance(st, (Accumulate, Return)) for st in gradient):
        return None
    when = {}  # each back-propagated member: (statement, iteration) that defines it
    for i, st in enumerate(backward):
        if isinstance(st, Define):
            when[st.name] = (i, 0)
            continue
        for j, lab in enumerate(steps(st.over)):
            for d in st.body:
                when[at_name(d.name, st.var, lab)] = (i, j)
    inside: dict[int, list] = {}
    after, starts = [], []
    for acc in gradient:
        if not isinstance(acc, Accumulate):
            continue
        starts.append(Accumulate(acc.target, acc.wrt, acc.indices, (), acc.keep_batch, acc.label, acc.shape, acc.var))
        for g in acc.groups:
            def add(group, var=acc.var, acc=acc):
                return AddTo(acc.target, acc.indices, group, acc.keep_batch, acc.label, var)
            placed = None if g.labels is None else _place(g, acc.var, backward, when)
            if placed is None:
                after.append(add(g))
                continue
            i, d = placed
            loop = backward[i]
            inside.setdefault(i, []).append(add(TermGroup(None, shifted(g.term, acc.var, d)), loop.var))
            covered = {lab + d for lab in steps(loop.over)}
            after += [add(TermGroup(None, at(g.term, acc.var, lab))) for lab in g.labels if lab not in covered]
    if not inside:
        return None  # nothing to fuse: the two-pass gradient is as good
    body = [Loop(st.var, st.over, st.body + tuple(inside[i])) if i in inside else st for i, st in enumerate(backward)]
    body, adds = _mean(ctx, body, inside, after)
    return tuple(starts) + tuple(body) + tuple(adds) + tuple(st for st in gradient if isinstance(st, Return))


def _mean(ctx, body: list, inside: dict, after: list) -> tuple[list, list]:
    """``body`` and ``after`` with the objective's adjoint divided by ``B`` once and no block
    divided (as hand-written BPTT seeds 1/B), where :func:`~einderiv.emit.straight.mean_seeds`
    finds that exact on the statements unrolled at the reference length; else as they are."""
    defines, blocks = [], []
    for st in body:
        for lab in steps(st.over) if isinstance(st, Loop) else [None]:
            for d in st.body if isinstance(st, Loop) else [st]:
                if not isinstance(d, Define):
                    continue
                one = (lambda e: at(e, st.var, lab)) if lab is not None else (lambda e: e)
                defines.append(Define(at_name(d.name, st.var, lab) if lab is not None else d.name, d.indices,
                                      one(d.expr)))
            for a in inside.get(body.index(st), ()) if isinstance(st, Loop) else ():
                blocks.append(Block(a.target, (), a.indices, at(a.group.term, st.var, lab), False, a.label, None))
    for a in after:
        terms = [a.group.term] if a.group.labels is None else [at(a.group.term, a.var, lab) for lab in a.group.labels]
        blocks += [Block(a.target, (), a.indices, term, False, a.label, None) for term in terms]
    seeds = mean_seeds(ctx, defines, blocks)
    if not seeds or any(isinstance(st, Loop) and any(isinstance(d, Define) and at_name(d.name, st.var, lab) in seeds
                                                     for d in st.body for lab in steps(st.over)) for st in body):
        return body, after
    body = [replace(st, mean=True) if isinstance(st, Define) and st.name in seeds else
            replace(st, body=tuple(replace(a, mean=True) if isinstance(a, AddTo) else a for a in st.body))
            if isinstance(st, Loop) else st for st in body]
    return body, [replace(a, mean=True) for a in after]


def _place(g: TermGroup, var: str, backward: tuple, when: dict) -> tuple[int, int] | None:
    """(the backward loop, label offset d) where the group's term of step k + d can be added at
    every iteration k: the steps k + d are the group's, and what the term reads is defined by then."""
    labels = set(g.labels)
    for i, st in enumerate(backward):
        if not isinstance(st, Loop) or st.var != var:
            continue
        its = steps(st.over)
        for d in SHIFTS:
            if all(lab + d in labels for lab in its) and all(_ready(at(g.term, var, lab + d), when, (i, j))
                                                            for j, lab in enumerate(its)):
                return i, d
    return None


def _ready(term, when: dict, now: tuple[int, int]) -> bool:
    """Whether every back-propagated member ``term`` reads is defined at or before ``now``."""
    return all(when.get(r.name, now) <= now for r in refs(term)) and all(
        not isinstance(lab, Sym) for r in refs(term) for n in names_in(r.name) for lab in n.labels)


# ------------------------------------------------------------- after lowering: no dict frame
def carry_fused(module: Module) -> Module:
    """``module`` (lowered) with :func:`carried` applied to its fused gradient, and before it
    :data:`LEAN_FORWARD`: ``_forward`` storing into ``t`` only the families the fused gradient
    loads (``h(*)``, not ``z_h(*)``: keeping every step's pre-activation alive cost about a third
    of the forward pass at T = 128)."""
    items = []
    fns = {f.name: f for f in module.items if isinstance(f, Function)}
    for it in module.items:
        if isinstance(it, Function) and it.doc == FUSED_DOC:
            it = drop_unread(Module("", (), (carried(it),))).items[0]  # (the loads its formulas do not read gone)
            forward = fns["_forward"]
            items.append(replace(forward, name=LEAN_FORWARD, doc=LEAN_DOC,
                                 body=uncommented(unused_dropped(_without_stores(list(forward.body), _loaded(it))))))
            items += _factors_passes(forward, fns)
        items.append(it)
    return Module(module.header, module.constants, tuple(items))


def _loaded(fn: Function) -> set:
    """The families of what ``fn`` loads from ``t``."""
    return {_family(st.value.key.name) for st in _walk(fn.prologue + fn.body) if _is_t(st.value)}


def _factors_passes(forward: Function, fns: dict) -> list:
    """:data:`FACTORS_FORWARD` and :data:`FACTORS_BACKWARD`: ``_forward`` and ``_backward`` storing
    into ``t`` only what the next pass and the per-sample functions' readers load (not the
    pre-activations, not ``adj[h(*)]``), the backward pass carrying what its next iteration reads
    in variables — per_sample_gradient_norms at T = 128 spent most of its time storing them."""
    if "_backward" not in fns or not all(r in fns for r in FACTORS_READERS):
        return []
    backward, *readers = drop_unread(Module("", (), (fns["_backward"],) + tuple(fns[r] for r in FACTORS_READERS))).items
    after = set().union(*(_loaded(r) for r in readers))  # (the loads their formulas do not read gone)
    lean_backward = replace(carried(backward, keep=after), name=FACTORS_BACKWARD,
                            doc=FACTORS_DOC.format("backward", "_backward"))
    before = after | _loaded(lean_backward)
    lean_forward = replace(forward, name=FACTORS_FORWARD, doc=FACTORS_DOC.format("forward", "_forward"),
                           body=uncommented(unused_dropped(_without_stores(list(forward.body), before))))
    return [lean_forward, lean_backward]


def carried(fn: Function, keep: set = frozenset()) -> Function:
    """The lowered fused gradient without the dict frame for what it computes: a value a loop
    iteration reads from the previous one (``adj_z_h_kp1 = t[f"adj[z_h({k+1})]"]``) carried in
    its variable (set before the loop from the base case, at the end of each iteration from the
    value just computed), and then every store into ``t`` that no load of the function reads
    (by family: ``adj[z_h(*)]``) left out — so each step's arrays are freed as the loop goes, as
    in hand-written BPTT, and the caller's ``t`` is not written.  ``keep``: families stored all
    the same (what the functions after it read)."""
    body = []
    for st in fn.body:
        if isinstance(st, Loop) and isinstance(st.over, Range):
            pre, st = _carry(st, body)
            body += pre
        body.append(st)
    body = _without_stores(body, _loaded(replace(fn, body=tuple(body))) | set(keep))  # (what it still loads)
    return replace(fn, body=tuple(body))


def _carry(loop: Loop, before: list) -> tuple[list, Loop]:
    stored, outside = _stores(loop.body), _stores(before)
    pre, body, tail = [], [], []
    for st in loop.body:
        if isinstance(st, Assign) and isinstance(st.target, Var) and _is_t(st.value):
            name = st.value.key.name
            prev, first = shifted_name(name, loop.var, loop.over.step), at_name(name, loop.var, loop.over.start)
            if name != prev and prev in stored and first in outside:
                pre.append(Assign(st.target, outside[first]))
                tail.append(Assign(st.target, stored[prev]))
                continue
        body.append(st)
    return pre, replace(loop, body=tuple(body + tail))


def _stores(statements) -> dict:
    """Each tensor stored into ``t`` from a variable -> that variable."""
    return {st.target.key.name: st.value for st in statements
            if isinstance(st, Assign) and _is_t(st.target) and isinstance(st.value, Var)}


def shifted_name(name, symbol: str, d: int):
    return map_names(name, lambda n: n.relabel(lambda lab: lab.shift(d) if isinstance(lab, Sym)
                                               and lab.symbol == symbol else lab))


def _is_t(x) -> bool:
    return isinstance(x, Item) and x.obj == Var("t") and isinstance(x.key, Key)


def _family(name):
    return map_names(name, lambda n: n.family)


def _walk(body):
    for st in body:
        yield from _walk(st.body) if isinstance(st, Loop) else (st,) if isinstance(st, Assign) else ()


def _without_stores(body: list, loaded: set) -> list:
    out = []
    for st in body:
        if isinstance(st, Loop):
            st = replace(st, body=tuple(_without_stores(list(st.body), loaded)) or (Python("pass"),))
        elif isinstance(st, Assign) and _is_t(st.target) and _family(st.target.key.name) not in loaded:
            continue
        out.append(st)
    return out


def unused_dropped(body: list) -> list:
    """``body`` without the straight-line statements whose values nothing after them reads (the
    objective's value in a forward pass that no longer stores it), with their comments; loops,
    stores and plain Python stay."""
    live: set = set()
    out, dropped = [], False
    for st in reversed(body):
        target = st.target if isinstance(st, Elementwise) else \
            st.target.name if isinstance(st, Assign) and isinstance(st.target, Var) else None
        if target is not None and target not in live:
            dropped = True
            continue
        if isinstance(st, Comment) and dropped:
            continue
        if isinstance(st, Contraction) and dropped and not {s.target for s in st.steps} & live:
            continue
        if target is not None:
            live.discard(target)
        if not isinstance(st, Comment):
            dropped = False
        live.update(_WORD.findall(st.text) if isinstance(st, Python) else variables(st, []))
        out.append(st)
    return out[::-1]


def uncommented(body) -> tuple:
    """``body`` without its comments and einsum notes (a copy of a function whose formulas are
    written in the original)."""
    return tuple(replace(st, body=uncommented(st.body)) if isinstance(st, Loop) else
                 replace(st, note=False) if isinstance(st, Contraction) else st
                 for st in body if not isinstance(st, Comment))
