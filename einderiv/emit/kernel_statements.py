"""Lowering tensor statements to array statements, one function at a time.

:func:`lower_module` gives each function of a kernel module its own
:class:`~einderiv.emit.kernel_lower.Scope` and turns every tensor statement of its body
(:class:`~einderiv.emit.kernel.Define`, :class:`~einderiv.emit.kernel.Block`, …) into the
array statements a printer prints; array statements pass through, with the tensor-level
expressions they mention (:class:`~einderiv.emit.kernel.Local`,
:class:`~einderiv.emit.kernel.Tensor`, :class:`~einderiv.emit.kernel.Value`) resolved.

A term group with labels (:class:`~einderiv.emit.kernel.TermGroup`, from the loop pass)
becomes a loop that accumulates one term per step; the squared norm of a gradient that is a
sum over steps is a double loop over pairs of steps (O(T²) small contractions, constant code).
"""
from __future__ import annotations

import itertools
from typing import Callable

from ..analysis.factor import as_terms, factored
from ..errors import InternalError
from ..ir import MATRIX_NODES, REDUCTIONS, Add, Apply, fresh, is_zero, refs, rename
from .kernel import (Accumulate, AddInto, AddTo, Append, Assign, Block, Comment, Contraction, Define, Factors, Frame,
                     Function, Local, Loop, Module, Python, Release, Return, Run, SquaredNorm, Tensor, Use, Value,
                     When)
from .kernel_arrays import (BATCH, BATCH_SHAPE, Call, DictOf, Div, Item, Key, Lib, ListOf, Num, Paren, Py, Sum,
                            Transpose, TupleOf, Var, Zeros, is_identifier, operand, param_shape, shape_sum)
from .kernel_buffer import block_into
from .kernel_context import Context
from .kernel_lower import Scope, combine, total
from .kernel_names import Letters, Namer, join, local_hint


def lower_module(ctx: Context, module: Module) -> Module:
    """``module`` with every function's tensor statements lowered to array statements."""
    items = tuple(lower_function(ctx, it) if isinstance(it, Function) else it for it in module.items)
    return Module(module.header, module.constants, items)


def lower_function(ctx: Context, fn: Function) -> Function:
    """One function's body as array statements (a function with nothing to do says ``pass``)."""
    s = Scope(ctx, fn.frame, Namer(ctx.globals))
    if fn.frame is Frame.NAMES:  # loop variables and the depth
        s.names.taken.update(ctx.symbols)
    if fn.frame is Frame.ARGS:
        s.names.taken.update(fn.args)
    for st in fn.body:
        lower_statement(s, st)
    body = tuple(s.out) if s.out or fn.prologue else (Python("pass"),)
    return Function(fn.name, fn.args, fn.doc, body, fn.prologue, fn.frame)


def lower_statement(s: Scope, st) -> None:
    """Emit the array statements of ``st`` into ``s``."""
    rule = _RULES.get(type(st))
    if rule is not None:
        rule(s, st)
    elif isinstance(st, Return):
        s.emit(Return(resolve(s, st.value)))
    elif isinstance(st, Assign) and isinstance(st.target, Local) and st.target not in s.locals:
        s.locals[st.target] = Var(s.bind(st.target.hint, resolve(s, st.value)))  # a new local variable
    elif isinstance(st, Assign) and isinstance(st.target, TupleOf) and \
            all(isinstance(x, Local) or x == Var("_") for x in st.target.items):
        for x in st.target.items:  # new local variables, unpacked from one value (_: a value not kept)
            if isinstance(x, Local):
                s.locals[x] = Var(s.names.new(x.hint))
        s.emit(Assign(resolve(s, st.target), resolve(s, st.value)))
    elif isinstance(st, Assign) and isinstance(st.target, Tensor):  # a tensor given, not computed (the direction)
        s.loaded[st.target.name] = s.bind(s.ctx.ident[st.target.name], resolve(s, st.value), exact=True)
    elif isinstance(st, (Assign, Append)):
        s.emit(type(st)(resolve(s, st.target), resolve(s, st.value)))
    elif isinstance(st, Run):
        s.emit(Run(resolve(s, st.call)))
    else:
        s.emit(st)


def resolve(s: Scope, e):
    """``e`` with its tensor-level parts replaced by what lowering made of them."""
    if isinstance(e, Local):
        return s.locals[e]
    if isinstance(e, Tensor):
        return Var(s.ref(e.name))
    if isinstance(e, Value):
        return total([c for c, _ in s.terms(e.expr, e.indices, True, Letters(e.indices))])
    if isinstance(e, (TupleOf, ListOf)):
        return type(e)(tuple(resolve(s, x) for x in e.items))
    if isinstance(e, DictOf):
        return DictOf(tuple((resolve(s, k), resolve(s, v)) for k, v in e.items), e.multiline)
    if isinstance(e, Item):
        return Item(resolve(s, e.obj), resolve(s, e.key))
    if isinstance(e, Transpose):
        return Transpose(resolve(s, e.x), e.perm)
    if isinstance(e, Call):
        return Call(e.fn, tuple(resolve(s, a) for a in e.args))
    return e


# ------------------------------------------------------------------ definitions
def define(s: Scope, st: Define) -> None:
    """A tensor computed into its variable (stored in ``t`` in a :attr:`Frame.NAMES` function)."""
    ctx, name, indices, expr = s.ctx, st.name, st.indices, st.expr
    var = s.names.new(local_hint(name, ctx.symbols)) if s.frame is Frame.NAMES and ctx.symbolic(name) \
        else ctx.ident[name]
    if st.groups:  # a sum over steps: accumulated in loops
        letters = [Letters(indices) for _ in st.groups]  # the comment names each group's einsum letters
        s.emit(Comment(var + letters[0].subscripts(indices) + " = " + " + ".join(
            ("Σ_" + ctx.loop_vars[0] + " " if g.labels else "") + ctx.formula(g.term, L)
            for g, L in zip(st.groups, letters))))
        s.bind(var, Num(0.0), exact=True)
        for g, L in zip(st.groups, letters):
            def emit(g=g, L=L):
                t = as_terms(g.term, indices)[0]
                value, _ = s.contract([s.lower(f) for f in t.factors], t.coef, indices, True, L)
                s.emit(Assign(Var(var), Sum((Var(var), value))))
            s.each(g.labels, emit, exprs=[g.term])
    else:
        s.emit(Comment(ctx.show(var, indices, expr) + (" (÷ B: the batch mean seeded once)" if st.mean else "")))
        if isinstance(expr, (Apply,) + REDUCTIONS + MATRIX_NODES) and expr.free == indices and not st.mean:
            v = s.lower(expr, target=var)
            if v.expr != Var(var):
                s.bind(var, v.expr, exact=True)
        else:
            value = total([c for c, _ in s.terms(expr, indices, True, Letters(indices))])
            s.bind(var, Div(operand(value), BATCH) if st.mean else value, exact=True)
    s.loaded[name] = var
    if s.frame is Frame.NAMES:
        s.emit(Assign(Item(Var("t"), Key(name)), Var(var)))


def loop(s: Scope, st: Loop) -> None:
    """A loop of tensor statements (a family's steps, written with the loop variable)."""
    def body():
        for b in st.body:
            lower_statement(s, b)

    s.loop(st.var, st.over, body, [e for b in st.body for e in _exprs(b)])


def _exprs(st) -> list:
    """The IR expressions a tensor statement reads (the parameters a loop reads before it starts)."""
    if isinstance(st, Define):
        return [st.expr]
    if isinstance(st, Accumulate):
        return [g.term for g in st.groups]
    return []


def when(s: Scope, st: When) -> None:
    """Statements only some requested Hessian blocks need, under their test.  The tensors they
    define stay known after it (every later reader is under a test that implies this one); the
    subexpressions they cached do not (a statement under another test must not read them)."""
    cache, cache_reads, start = dict(s.cache), dict(s.cache_reads), len(s.out)
    for b in st.body:
        lower_statement(s, b)
    body = tuple(s.out[start:])
    del s.out[start:]
    s.emit(When(st.keys, resolve(s, st.of), body))
    s.cache, s.cache_reads = cache, cache_reads


def use(s: Scope, st: Use) -> None:
    for name in st.names:
        s.ref(name)


def release(s: Scope, st: Release) -> None:
    """``del`` the released quantities' entries in ``t``; the variables of the released tensors
    and the cached values computed from them (no later statement reads them); the intermediate
    steps of the contractions emitted since the last release (no cached value names those)."""
    if s.frame is not Frame.IDENT:
        raise InternalError("Release reads tensors by identifier only")
    dead = [f't["{s.ctx.key[name]}"]' for name in st.names]
    dead += [s.loaded.pop(name) for name in st.scope if name in s.loaded]
    for key in [k for k, names in s.cache_reads.items() if names & set(st.scope)]:
        del s.cache_reads[key]
        value, _ = s.cache.pop(key, (None, None))  # (a loop's values left the cache with it)
        if isinstance(value, Var) and value.name not in dead:
            dead.append(value.name)
    dead += [step.target for c in s.out[s.mark:] if isinstance(c, Contraction) for step in c.steps if step.target]
    if dead:
        s.emit(Python("del " + ", ".join(dead)))
    s.mark = len(s.out)


# ------------------------------------------------------------------ blocks
def _zeros(shape, keep_batch: bool):
    return Zeros(Paren(shape_sum(BATCH_SHAPE, shape))) if keep_batch else Zeros(shape)


def block(s: Scope, st: Block) -> None:
    """A block as one sum of contractions (batch mean unless ``keep_batch``); a Hessian block
    written into a buffer: :func:`~einderiv.emit.kernel_buffer.block_into`."""
    if st.into is not None:
        block_into(s, st)
        return
    if is_zero(st.expr):
        var = s.bind(st.target.hint, _zeros(st.shape, st.keep_batch))
    else:
        terms = as_terms(st.expr, st.indices)
        letters = [Letters(st.indices) for _ in terms]  # each term's einsum letters its own dummies
        if st.kind == "ggn":  # the comment names the contractions' letters
            items = st.expr.terms if isinstance(st.expr, Add) else (st.expr,)
            s.emit(Comment(st.label + " = " + join([s.ctx.formula(e, L) for e, L in zip(items, letters)])))
        elif s.frame is not Frame.ARGS:  # (a function of tensors has its formula as its docstring)
            s.emit(Comment(s.ctx.show(st.label, st.indices, st.expr)))
        parts = [s.contract([s.lower(f) for f in t.factors], t.coef, st.indices, st.keep_batch, L)
                 for t, L in zip(terms, letters)]
        value = total([c for c, _ in parts]) if st.mean else combine(parts, st.keep_batch)
        if not refs(st.expr):  # a number (∂(w^i x^i + s)/∂s = 1): an array of the block's shape
            value = Sum((Zeros(st.shape), value))
        var = s.bind(st.target.hint, value)
        if st.keep_batch and not any(s.is_batched(r.name) for r in refs(st.expr)):
            var = s.bind(var, Lib("broadcast_to", (Var(var), shape_sum(BATCH_SHAPE, st.shape))))
    s.locals[st.target] = Var(var)


def accumulate(s: Scope, st: Accumulate) -> None:
    """A block added up term group by term group; a group with labels is a loop over them."""
    var = s.bind(st.target.hint, _zeros(st.shape, st.keep_batch))
    s.locals[st.target] = Var(var)
    if not st.groups:
        return
    letters = [Letters(st.indices) for _ in st.groups]  # the comment names each group's einsum letters
    s.emit(Comment(st.label + " = " + " + ".join(("Σ_" + st.var + " " if g.labels else "") +
                                                 s.ctx.formula(g.term, L) for g, L in zip(st.groups, letters))))
    for g, L in zip(st.groups, letters):
        def emit(g=g, L=L):
            t = as_terms(g.term, st.indices)[0]
            value, batched = s.contract([s.lower(f) for f in t.factors], t.coef, st.indices, st.keep_batch, L)
            if batched and not st.keep_batch:
                value = Div(operand(value), BATCH)
            s.emit(Assign(Var(var), Sum((Var(var), value))))
        s.each(g.labels, emit, st.var, exprs=[g.term])


def add_to(s: Scope, st: AddTo) -> None:
    """One term group added into a block an :class:`Accumulate` started (in a loop of its own if
    it has labels; a term written with an enclosing loop's variable reads that loop's values)."""
    var, g, L = s.locals[st.target], st.group, Letters(st.indices)
    s.emit(Comment(st.label + " += " + ("Σ_" + st.var + " " if g.labels else "") + s.ctx.formula(g.term, L)))

    def emit():
        t = as_terms(g.term, st.indices)[0]
        value, batched = s.contract([s.lower(f) for f in t.factors], t.coef, st.indices, st.keep_batch, L)
        if batched and not st.keep_batch and not st.mean:
            value = Div(operand(value), BATCH)
        s.emit(AddInto(var, value))
    s.each(g.labels, emit, st.var, exprs=[g.term])


# ------------------------------------------------------------------ factors and norms
def factor_values(s: Scope, ft) -> list:
    """One per-sample array per outer-product factor of a factored term (scalar groups and the
    coefficient go into the first factor; unbatched factors are broadcast over the batch)."""
    scal = [f for g in ft.scalars for f in g.factors]
    values = []
    for k, g in enumerate(ft.groups or [None]):
        fs = (list(g.factors) if g else []) + (scal if k == 0 else [])
        free = g.free if g else ()
        value, batched = s.contract([s.lower(f) for f in fs], ft.coef if k == 0 else 1, free, True)
        if not batched:
            shape = shape_sum(BATCH_SHAPE, Py(tuple(s.ctx.dim(i) for i in free)))
            # a number (no factor: ∂s/∂s = 1) is no array in torch: zeros of the shape plus it
            value = Sum((Zeros(shape), value)) if not fs else Lib("broadcast_to", (value, shape))
        values.append(value)
    return values


def factors(s: Scope, st: Factors) -> None:
    """The list of factor tuples of one parameter's gradient (appended in loops for groups)."""
    a = st.param
    zeros = TupleOf((Zeros(shape_sum(BATCH_SHAPE, param_shape([a]))),))
    if st.groups is None:
        terms = []
        for n, ft in enumerate(factored(st.expr, st.indices)):
            terms.append(TupleOf(tuple(v if is_identifier(v) else Var(s.bind(f"fac_{a}_{n}_{k}", v))
                                       for k, v in enumerate(factor_values(s, ft)))))
        s.locals[st.target] = ListOf(tuple(terms) or (zeros,))
        return
    var = Var(s.bind(f"terms_{a}", ListOf(())))
    for g in st.groups:
        ft = factored(g.term, st.indices)[0]
        s.each(g.labels, lambda ft=ft: s.emit(Append(var, TupleOf(tuple(factor_values(s, ft))))), exprs=[g.term])
    if not st.groups:
        s.emit(Append(var, zeros))
    s.locals[st.target] = var


def _inner(s: Scope, ti, tj, coef):
    """⟨term i, term j⟩ per sample: one contraction of both terms' factors."""
    dummies = {ix: fresh(ix.dim, ix.name) for ix in tj.bound}  # not ti's
    other = tuple(rename(f, dummies) for f in tj.factors)
    return s.contract([s.lower(f) for f in ti.factors + other], coef, (), True)


def _norm(sq: str):
    return Lib("sqrt", (Lib("maximum", (Var(sq), Num(0.0))),))


def squared_norm(s: Scope, st: SquaredNorm) -> None:
    """‖Σ_t g_t‖² = Σ_t Σ_u ⟨g_t, g_u⟩ per sample, never forming (B, *shape)."""
    a = st.param
    if st.groups is None:
        terms = as_terms(st.expr, st.indices)
        s.emit(Comment(f"‖∂f/∂{a}‖² = Σ over pairs of terms of their inner product: " +
                       s.ctx.formula(st.expr, Letters(st.indices))))
        parts = [_inner(s, terms[i], terms[j], terms[i].coef * terms[j].coef * (1 if i == j else 2))
                 for i, j in itertools.product(range(len(terms)), repeat=2) if j >= i]
        if not parts:
            var = s.bind(f"norm_{a}", Zeros(BATCH))
        else:
            sq = s.bind(f"sq_{a}", total([c for c, _ in parts]))
            if not any(b for _, b in parts):  # (Zeros + …: a number is no array in torch)
                sq = s.bind(f"sq_{a}", Sum((Zeros(BATCH), Var(sq))))
            var = s.bind(f"norm_{a}", _norm(sq))
        s.locals[st.target] = Var(var)
        return
    k, m = s.ctx.loop_vars
    first, second = st.groups
    sq = s.bind(f"sq_{a}", Zeros(BATCH))
    s.emit(Comment(f"‖∂f/∂{a}‖² = Σ over pairs of terms (steps {k}, {m}) of their inner product"))
    for i, gi in enumerate(first):
        for j in range(i, len(first)):
            gj = second[j]
            ti, tj = as_terms(gi.term, st.indices)[0], as_terms(gj.term, st.indices)[0]

            def inner(ti=ti, tj=tj, coef=ti.coef * tj.coef * (1 if i == j else 2)):
                value, _ = _inner(s, ti, tj, coef)
                s.emit(Assign(Var(sq), Sum((Var(sq), value))))

            s.each(gi.labels, lambda gj=gj, inner=inner: s.each(gj.labels, inner, m, [gj.term]), k,
                   [gi.term, gj.term])
    s.locals[st.target] = Var(s.bind(f"norm_{a}", _norm(sq)))


_RULES: dict[type, Callable] = {
    Define: define, Loop: loop, Use: use, Block: block, Accumulate: accumulate, Factors: factors,
    SquaredNorm: squared_norm, Release: release, AddTo: add_to, When: when,
}
