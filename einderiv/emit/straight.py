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
``hessian`` is written straight by :func:`straight_hessian`, per requested block
(``blocks=``: :mod:`einderiv.emit.block_helpers`): each definition and block under a test of the
blocks that read it.
"""
from __future__ import annotations

from ..analysis.factor import as_terms
from ..ir import REDUCTIONS, Apply, Kind, Quantity, Ref, walk
from .kernel import Accumulate, Assign, Block, Define, Factors, Frame, Function, Into, Local, Module, Release, \
    Return, Run, SquaredNorm, Tensor, Use, When
from .kernel_arrays import BATCH, BatchSize, Call, DictOf, Item, Num, Py, Str, TupleOf, Var
from .kernel_build import PUBLIC_ARGS, forward_call
from .kernel_context import Context

#: functions written straight by their own rule: the Hessian, per requested block (:func:`straight_hessian`)
KEEP = ("hessian",)
#: the statements that may move up to the definitions they read
MOVABLE = (Block, Factors, SquaredNorm)
#: the back-propagated quantities: linear in the objective's adjoint and R-adjoint
ADJOINTS = (Kind.ADJ, Kind.RADJ)


def straighten(module: Module, ctx: Context) -> Module:
    """``module`` with each public function that calls ``_forward`` written straight (see above)."""
    items = tuple(_straight(ctx, it) if _eligible(it) else
                  straight_hessian(ctx, it) if isinstance(it, Function) and it.name == "hessian" else it
                  for it in module.items)
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
    deps = _dependencies(ctx)
    need: set = set()
    stack = [n for e in exprs for n in reads(ctx, e)]
    while stack:
        n = stack.pop()
        if n not in need:
            need.add(n)
            stack.extend(deps.get(n, ()))
    return need


def _dependencies(ctx: Context) -> dict:
    """Each node's and quantity's name -> the tensors its definition reads (found once per context:
    the Hessian asks for every block's, a few hundred times over thousands of definitions)."""
    deps = getattr(ctx, "straight_dependencies", None)
    if deps is None:
        d = ctx.d
        deps = {n.name: tuple(reads(ctx, n.expr)) for n in d.nodes}
        deps.update({q.name: tuple(reads(ctx, q.expr)) for q in d.quantities + d.hvp_quantities})
        ctx.straight_dependencies = deps
    return deps


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


HESSIAN_DOC = ("Batch-mean Hessian blocks: (a, b) -> array shape_a + shape_b, for every ordered pair of "
               "parameters, or for the pairs (a, b) of PARAMS names listed in `blocks` (under jax.jit: a tuple "
               "of tuples, static_argnames=\"blocks\"): only those blocks, and the tensors they read, are "
               "computed; (b, a) is the transpose of (a, b).")
BUFFER_DOC = ("  All blocks are views of one array H whose rows and columns are the parameters the blocks name "
              "(every parameter by default), in PARAMS order, each flattened in C order: `out` when given "
              "(that size squared, or flat; reused, nothing of its size is allocated), else a new one.")


def straight_hessian(ctx: Context, f: Function) -> Function:
    """``hessian(params, data, blocks=None[, out=None])`` as one straight body: the blocks of
    :meth:`~einderiv.emit.kernel_build.Builder.hessian` (each (a, b), a at or before b, once), every
    node and quantity they read, and each such statement under a :class:`When` of the blocks that read
    it, so that a call computes the requested blocks and nothing else; with the buffer (NumPy) the
    blocks are written into the rows and columns of the parameters the keys name (``_hessian_plan``)."""
    d = ctx.d
    blocks = [st for st in f.body if isinstance(st, Block)]
    derived = tuple(tuple(map(str, b.wrt)) for b in blocks)
    reads_of = {w: needed(ctx, [b.expr]) for w, b in zip(derived, blocks)}
    need = set().union(*reads_of.values())
    inputs = tuple(t.name for t in ctx.net.tensors if t.name in need or t.name == ctx.first_data)
    batch = BatchSize(Var(ctx.ident[ctx.first_data])) if ctx.first_data is not None else Num(1)
    keys, todo, rows, H, hess = Local("want"), Local("todo"), Local("rows"), Local("H"), Local("hess")
    head = [Use(inputs), Assign(BATCH, batch),
            Assign(TupleOf((keys, todo, rows if ctx.buffer else Var("_"))), Call("_hessian_plan", (Var("blocks"),)))]
    if ctx.buffer:
        like = Item(Var("params"), Str(str(ctx.params[0])))
        head.append(Assign(H, Call("_hessian_out", (Var("out"), Call("_hessian_size", (rows,)), like))))

    def bounds(p):
        at = Item(rows, Str(str(p)))
        return Item(at, Num(0)), Item(at, Num(1))

    def test(ws) -> tuple | None:  # (ws: blocks in derived order, each once)
        return None if len(ws) == len(derived) else tuple(ws)

    readers: dict = {}  # each tensor -> the blocks that read it, in derived order (found once: a
    for w in derived:   # scan of every block per statement was statements × blocks, L⁴)
        for n in reads_of[w]:
            readers.setdefault(n, []).append(w)

    defines = [Define(n.name, n.indices, n.expr) for n in d.nodes if n.name in need]
    defines += [Define(q.name, q.indices, q.expr) for q in d.quantities if q.name in need]
    position = {st.name: k for k, st in enumerate(defines)}
    after: list = [[] for _ in range(len(defines) + 1)]
    for w, b in zip(derived, blocks):
        st = b
        if ctx.buffer:
            a, c = b.wrt
            st = Block(b.target, b.wrt, b.indices, b.expr, b.keep_batch, b.label, b.shape, b.kind,
                       Into(H, *bounds(a), *bounds(c), False))
        moved = [When((w,), todo, (st,))]
        if ctx.buffer and w[0] != w[1]:
            mirror = Run(Call("_mirror", (H, *bounds(b.wrt[0]), *bounds(b.wrt[1]))))
            moved.append(When(((w[1], w[0]),), keys, (mirror,)))
        at = max((position[n] + 1 for n in reads(ctx, b.expr) if n in position), default=0)
        after[at] += moved
    body = head + after[0]
    for st, moved in zip(defines, after[1:]):
        body += [When(test(readers.get(st.name, [])), todo, (st,))] + moved
    body = _merged(body)
    out = [Assign(hess, DictOf(()))]
    for key, value in f.body[-1].value.items:  # every ordered pair, in the module's order
        a, c = (x.text for x in key.items)
        if ctx.buffer and (a, c) not in derived:  # the transpose of (c, a), mirrored into the buffer
            shape = Py(ctx.shape[_param(ctx, a)] + ctx.shape[_param(ctx, c)])
            value = Call("_block_view", (H, *bounds(a), *bounds(c), shape))
        out.append(When(((a, c),), keys, (Assign(Item(hess, key), value),)))
    args = PUBLIC_ARGS + ("blocks=None",) + (("out=None",) if ctx.buffer else ())
    doc = HESSIAN_DOC + (BUFFER_DOC if ctx.buffer else "")
    return Function(f.name, args, doc, tuple(body + out + [Return(hess)]), (), Frame.LOCALS)


def _param(ctx: Context, name: str):
    return next(p for p in ctx.params if str(p) == name)


def _merged(body: list) -> list:
    """Adjacent statements under the same test as one :class:`When`."""
    out: list = []
    for st in body:
        if isinstance(st, When) and out and isinstance(out[-1], When) \
                and (out[-1].keys, out[-1].of) == (st.keys, st.of):
            out[-1] = When(st.keys, st.of, out[-1].body + st.body)
        else:
            out.append(st)
    return out
