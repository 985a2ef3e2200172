"""The straight-line pass: each public function of an unrolled module as one body of local variables.

:func:`~einderiv.emit.kernel_build.build` writes ``gradient``, ``hvp``, … as a prologue that calls
``_forward`` (a dict ``t`` of every tensor, the objective's value included) and one function
``_<id>(t)`` per quantity, then the blocks.  That costs a dict store, a dict load and a call per
named quantity — fixed Python cost that shows at small sizes — and keeps every tensor alive until
the function returns.  :func:`straighten` rewrites each such function (:attr:`Frame.LOCALS`) as

* its inputs (a :class:`~einderiv.emit.kernel.Use`), the batch size and, for ``hvp``, the direction;
* the nodes and quantities its statements read, transitively, as
  :class:`~einderiv.emit.kernel.Define` statements in the derivation's order — a derivative that
  reuses a node's value (``tanh' = 1 − v²``) reads that node — and nothing else: ``gradient`` does
  not compute the objective's value;
* each block (or factor list, or norm) right after the last definition it reads, so that
  back-propagation and the gradients interleave as in hand-written backprop;
* in a function of batch means (``gradient``, ``hvp``), where it is exact (:func:`mean_seeds`), the
  objective's adjoint (and R-adjoint) divided by ``B`` once, as hand-written backprop does, instead
  of every parameter's block: at B = 16, h = 256 that division of each h × h block cost 10–20%.

After lowering, :func:`einderiv.emit.liveness.free_dead` deletes each local array after its last
read.  ``_forward`` and the ``_<id>(t)`` functions stay (the module contract: checking tools call
them).  A module with families goes through the loop pass instead (:mod:`einderiv.emit.loops`);
``hessian`` keeps its prologue (its blocks go into one buffer, :mod:`einderiv.emit.kernel_buffer`).
"""
from __future__ import annotations

from ..analysis.factor import as_terms
from ..ir import REDUCTIONS, Apply, Kind, Quantity, Ref, walk
from .kernel import Accumulate, Assign, Block, Define, Factors, Frame, Function, Module, Release, Return, \
    SquaredNorm, Tensor, Use
from .kernel_arrays import BATCH, BatchSize, Item, Num, Str, Var
from .kernel_build import forward_call
from .kernel_context import Context

#: functions that keep their prologue: the Hessian writes its blocks into one buffer
KEEP = ("hessian",)
#: the statements that may move up to the definitions they read
MOVABLE = (Block, Factors, SquaredNorm)
#: the back-propagated quantities: linear in the objective's adjoint and R-adjoint
ADJOINTS = (Kind.ADJ, Kind.RADJ)


def straighten(module: Module, ctx: Context) -> Module:
    """``module`` with each public function that calls ``_forward`` written straight (see above)."""
    items = tuple(_straight(ctx, it) if _eligible(it) else it for it in module.items)
    return Module(module.header, module.constants, items)


def _eligible(f) -> bool:
    return isinstance(f, Function) and f.frame is Frame.IDENT and f.prologue[:1] == (forward_call(),) \
        and f.name not in KEEP


def reads(ctx: Context, e) -> list:
    """The tensors an expression reads when lowered: its references, and the node whose value a
    derivative reuses (:meth:`~einderiv.emit.kernel_context.Context.known_value`)."""
    out: dict = {}
    for x in walk(e):
        if isinstance(x, Ref):
            out.setdefault(x.name)
        elif isinstance(x, Apply) and x.fn.deriv != (0,) * len(x.args):
            known = ctx.known_value(x)
            if known is not None:
                out.setdefault(known)
    return list(out)


def _exprs(st) -> list:
    if isinstance(st, (Block, Factors, SquaredNorm, Define)):
        return [st.expr]
    if isinstance(st, Accumulate):
        return [g.term for g in st.groups]
    return []


def needed(ctx: Context, exprs) -> set:
    """Every tensor ``exprs`` read, transitively through the nodes' and quantities' definitions."""
    d = ctx.d
    definition = {n.name: n.expr for n in d.nodes}
    definition.update({q.name: q.expr for q in d.quantities + d.hvp_quantities})
    need: set = set()
    stack = [n for e in exprs for n in reads(ctx, e)]
    while stack:
        n = stack.pop()
        if n not in need:
            need.add(n)
            if n in definition:
                stack.extend(reads(ctx, definition[n]))
    return need


def _adjoint_counts(e, indices, adjoints: set) -> list | None:
    """Per term of ``e``, how many of its factors are adjoints; None if an adjoint sits deeper
    (inside a sum or a function: not linear as a factor)."""
    counts = []
    for t in as_terms(e, indices):
        direct = [f for f in t.factors if isinstance(f, Ref) and f.name in adjoints]
        if any(isinstance(x, Ref) and x.name in adjoints for f in t.factors if f not in direct for x in walk(f)):
            return None
        counts.append(len(direct))
    return counts


def mean_seeds(ctx: Context, defines: list, statements: list) -> set:
    """The adjoints to define divided by ``B`` so that each batch-mean block of ``statements`` is the
    plain batch sum of its terms; empty where that would not be exact.  It is exact when every
    term of every block, and of every adjoint that reads adjoints, has exactly one adjoint as a
    factor (then 1/B passes linearly down the chain), the seeds — the batched adjoints that read
    none, ``adj[p] = softmax(p) − y`` and ``radj[p]`` — are sums, and nothing else reads an adjoint."""
    adjoints = {st.name for st in defines if isinstance(st.name, Quantity) and st.name.kind in ADJOINTS}
    if not adjoints or not all(isinstance(st, Block) and not st.keep_batch for st in statements):
        return set()
    seeds = set()
    for st in defines:
        counts = _adjoint_counts(st.expr, st.indices, adjoints)
        if st.name not in adjoints:
            if counts is None or any(counts):
                return set()
        elif counts is not None and counts and not any(counts) and ctx.batched[st.name] \
                and not isinstance(st.expr, (Apply,) + REDUCTIONS):
            seeds.add(st.name)
        elif counts is None or not counts or any(c != 1 for c in counts):
            return set()
    for st in statements:
        counts = _adjoint_counts(st.expr, st.indices, adjoints)
        if not counts or any(c != 1 for c in counts):
            return set()
    return seeds


def _straight(ctx: Context, f: Function) -> Function:
    d = ctx.d
    # what the dict frame schedules (kernel_build.schedule: each quantity stored in t, a Release after its
    # last reader) has no place here: the quantities become local definitions, liveness frees them
    statements = [st for st in f.body if not isinstance(st, (Return, Release))
                  and not (isinstance(st, Assign) and isinstance(st.target, Item))]
    need = needed(ctx, [e for st in statements for e in _exprs(st)])
    inputs = tuple(t.name for t in ctx.net.tensors if t.name in need or t.name == ctx.first_data)
    batch = BatchSize(Var(ctx.ident[ctx.first_data])) if ctx.first_data is not None else Num(1)
    head = [Use(inputs), Assign(BATCH, batch)]
    head += [Assign(Tensor(q), Item(Var("vector"), Str(str(p)))) for q, p in ctx.direction.items() if q in need]
    defines = [Define(n.name, n.indices, n.expr) for n in d.nodes if n.name in need]
    defines += [Define(q.name, q.indices, q.expr) for q in d.quantities + d.hvp_quantities if q.name in need]
    seeds = mean_seeds(ctx, defines, statements)
    if seeds:
        defines = [Define(st.name, st.indices, st.expr, None, True) if st.name in seeds else st for st in defines]
        statements = [Block(st.target, st.wrt, st.indices, st.expr, st.keep_batch, st.label, st.shape, st.kind,
                            st.into, True) for st in statements]
    if all(isinstance(st, MOVABLE) for st in statements):  # each as early as what it reads allows
        position = {st.name: k for k, st in enumerate(defines)}
        after: list = [[] for _ in range(len(defines) + 1)]
        for st in statements:
            after[max((position[n] + 1 for e in _exprs(st) for n in reads(ctx, e) if n in position), default=0)] \
                .append(st)
        body = head + after[0]
        for st, moved in zip(defines, after[1:]):
            body += [st] + moved
    else:
        body = head + defines + statements
    body += [st for st in f.body if isinstance(st, Return)]
    return Function(f.name, f.args, f.doc, tuple(body), (), Frame.LOCALS)
