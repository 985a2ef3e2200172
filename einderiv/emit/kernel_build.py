"""From a derivation to its kernel: the functions of the generated module, as tensor statements.

:func:`build` writes every family member out (the *unrolled* module); the loop pass
(:mod:`einderiv.emit.loops`) and the run-time-depth pass (:mod:`einderiv.emit.template_kernel`)
rewrite it, :mod:`einderiv.emit.kernel_statements` lowers it and a printer prints it.  The
functions (the module contract, :mod:`einderiv.emit.numpy`):

* ``_forward(params, data)`` — every tensor by name; ``_<identifier>(t)`` — one per quantity;
* ``objective``, ``gradient``, ``per_sample_gradient``, ``gradient_factors`` (with the constant
  ``GRADIENT_FACTOR_AXES``), ``per_sample_gradient_norms``, ``expand_factors``;
* at order ≥ 2 ``hessian``, ``hvp`` (through the R-operator quantities: the direction is the
  ``vector`` argument), ``ggn_diagonal``;
* at order ≥ 3 ``third_derivatives`` and ``third_derivative``, through a row per derived block
  (``_THIRD``: parameters in declaration order; any other ordering is its transpose) and per
  derivative ``d[q,θ]`` of an intermediate (``_DERIVATIVES``, by identifier): a function of
  tensors, then their keys in ``t`` (:mod:`einderiv.emit.share`: formulas equal up to the
  tensors they read share one function).  ``t`` is a ``_Tensors`` dict, which computes a
  quantity the first time it is read.

Each other public function starts with a prologue (the forward pass, then the quantities its
blocks read, then the batch size ``B``) and holds one tensor statement per parameter or block.
"""
from __future__ import annotations

from ..analysis.factor import as_terms, factored
from ..ir import Const, Delta, Kind, Prod, Quantity, Ref, add, refs, rename
from .kernel import (Assign, Block, Constant, Define, Factors, Frame, Function, Helpers, Into, Local, Module,
                     Release, Return, SquaredNorm, Support, Tensor, Use, Value)
from .kernel_arrays import (BATCH, BATCH_SHAPE, BatchSize, Call, DictOf, Item, Lib, Num, Py, Str, Transpose,
                            TupleOf, Var, param_shape)
from ..calculus.simplify import Simplifier
from .ggn_terms import diagonal_terms, uses_dense_hobj
from .kernel_context import Context
from .share import Sharing, Spec

T, PARAMS_VAR = Var("t"), Var("PARAMS")
DOCS = {
    "_forward": "Every tensor of the network by name: parameters, data and nodes (data and nodes per sample).",
    "objective": "Per-sample objective, shape (B,).",
    "gradient": "Batch-mean gradient: name -> array of the parameter's shape.",
    "per_sample_gradient": "Per-sample gradients: name -> array (B, *shape).",
    "gradient_factors": "Per-sample gradient of each parameter as a sum of outer products: name -> list of "
                        "terms, each a tuple of per-sample factors (axes: GRADIENT_FACTOR_AXES).",
    "per_sample_gradient_norms": "Euclidean norm of each sample's gradient, per parameter: name -> (B,), "
                                 "from the gradient's outer-product factors (no (B, *shape) array).",
    "hessian": "Batch-mean Hessian blocks: (a, b) -> array shape_a + shape_b.",
    "hvp": "Hessian-vector product Σ_b H[(a, b)]·vector[b] for every parameter a (batch mean), by the "
           "R-operator: the directional derivative of the gradient, through forward tangents tan[n] and "
           "R-adjoints radj[n] — no Hessian block and no Jacobian is formed.",
    "ggn_diagonal": "Exact diagonal of the (batch-mean) generalised Gauss–Newton matrix "
                    "Σ_ab J_aᵀ ∂²f/∂a∂b J_b over the objective's arguments: name -> array of the "
                    "parameter's shape.",
}
GGN_FACTORED = ("  The objective's Hessian in its arguments is written into the diagonal symbolically (a diagonal "
                "plus outer products): each layer's back-propagated rows are squared and weighted, no per-sample "
                "Hessian is formed.")
GGN_DENSE = ("  The objective's Hessian in its arguments couples them beyond a diagonal plus outer products: it is "
             "formed per sample and contracted with each layer's back-propagated rows on both sides.")
PUBLIC_ARGS = ("params", "data")
BUFFER_DOC = ("  All blocks are views of one (P, P) array (parameters in PARAMS order, each flattened in C "
              "order): `out` when given (P × P, or flat P²; reused, nothing of its size is allocated), "
              "else a new one.")


def _pair(w) -> TupleOf:
    """The key ``("a", "b")`` of a Hessian block."""
    return TupleOf(tuple(Str(str(x)) for x in w))


def _diagonals(d) -> dict:
    """The quantities that are diagonal, ``q[a,b] = g(…[a]) δ[a,b]`` (an activation's Jacobian):
    name -> definition.  A block that reads one as a dense (B, n, n) array contracts n times more
    than it needs; written into the block's term, its δ is a broadcast (an identity matrix)."""
    out = {}
    for q in d.quantities:
        if not isinstance(q.expr, Prod) or len(q.indices) != 2 or q.expr.out != q.indices:
            continue
        deltas = [f for f in q.expr.factors if isinstance(f, Delta)]
        if len(deltas) == 1 and {deltas[0].a, deltas[0].b} == set(q.indices) and all(
                isinstance(f, Delta) or set(f.free) <= {q.indices[0]} for f in q.expr.factors):
            out[q.name] = q
    return out


def _kronecker(d) -> dict:
    """The quantities that are a number times Kronecker deltas only (‖T − U Vᵀ‖²'s second-order
    adjoint 2 δ[i,k] δ[j,l]): name -> definition.  Formed, such a quantity is a dense
    (m·n)² array that a block contracts at (m·n)²·r cost; written into the block's terms, its
    deltas contract symbolically (2 δ[i,j] (VᵀV)[k,l]: the block's own size)."""
    return {q.name: q for q in d.quantities if isinstance(q.expr, Prod) and q.expr.out == q.indices
            and q.expr.factors and all(isinstance(f, (Const, Delta)) for f in q.expr.factors)
            and any(isinstance(f, Delta) for f in q.expr.factors)}


def _inline(expr, indices, diagonal: dict, table=None):
    """``expr`` (a block) with each factor that reads a quantity of ``diagonal`` replaced by that
    quantity's factors, renamed to the factor's indices; with ``table``, a term that took in a
    quantity of deltas only (:func:`_kronecker`) is simplified (its deltas contracted)."""
    terms = []
    for t in as_terms(expr, indices):
        fs, deltas = [], False
        for f in t.factors:
            q = diagonal.get(f.name) if isinstance(f, Ref) else None
            if q is None:
                fs.append(f)
            else:
                fs += rename(q.expr, dict(zip(q.indices, f.indices))).factors
                deltas = deltas or all(isinstance(g, (Const, Delta)) for g in q.expr.factors)
        term = Prod((Const(t.coef),) + tuple(fs), t.out)
        if deltas and table is not None:
            terms += [Prod(((Const(u.coef),) if u.coef != 1 else ()) + u.factors, t.out)
                      for u in Simplifier(table).terms(term)]
        else:
            terms.append(term)
    return add(terms) if terms else expr


def _size(shape) -> int:
    n = 1
    for k in shape:
        n *= k
    return n


def _into(st, buffer: Local, start: dict, shape: dict):
    """A Hessian block statement written into ``buffer`` at its parameters' rows and columns."""
    if not isinstance(st, Block):
        return st
    a, b = st.wrt
    into = Into(buffer, start[a], start[a] + _size(shape[a]), start[b], start[b] + _size(shape[b]), a != b)
    return Block(st.target, st.wrt, st.indices, st.expr, st.keep_batch, st.label, st.shape, st.kind, into)


def _quantities(exprs) -> set:
    return {r.name for e in exprs for r in refs(e) if isinstance(r.name, Quantity)}


def schedule(ctx: Context, blocks: list) -> list:
    """The quantities that ``blocks`` ((Block, its terms) pairs) read, each computed into ``t``
    in dependency order, every block as soon as what it reads is there, and a
    :class:`Release` of each quantity after the statement that reads it last."""
    d = ctx.d
    direct = _quantities(e for _, terms in blocks for e in terms)
    need = {q.name for q in ctx.needed([d.quantity(q).expr for q in direct])} | direct
    order = [q for q in d.quantities if q.name in need]
    statements, reads = [], []
    # each block is ready right after the last quantity it reads (in order; -1: none), in block order
    position = {q.name: k for k, q in enumerate(order)}
    ready: dict = {}
    for b, terms in blocks:
        qs = _quantities(terms)
        if qs <= position.keys():  # (a quantity outside order never comes: nor does the block)
            ready.setdefault(max((position[q] for q in qs), default=-1), []).append((b, qs))

    def release(k):
        for b, qs in ready.get(k, ()):
            statements.append(b)
            reads.append(qs)

    release(-1)
    for k, q in enumerate(order):
        statements.append(Assign(Item(T, Str(ctx.key[q.name])), Call("_" + ctx.ident[q.name], (T,))))
        reads.append(_quantities([q.expr]))
        release(k)
    last = {q: k for k, r in enumerate(reads) for q in r}  # in t: read by a quantity or a block
    seen = {q: k for k, (st, r) in enumerate(zip(statements, reads)) if isinstance(st, Block) for q in r}
    dying: dict = {}  # k -> the quantities (in order) read last by statement k; read by block k
    read_by_block: dict = {}
    for q in order:
        if q.name in last:
            dying.setdefault(last[q.name], []).append(q.name)
        if q.name in seen:
            read_by_block.setdefault(seen[q.name], []).append(q.name)
    out = []
    for k, st in enumerate(statements):
        out.append(st)
        dead = tuple(dying.get(k, ()))
        if dead or isinstance(st, Block):  # (after a block: its contractions' intermediate steps)
            out.append(Release(dead, tuple(read_by_block.get(k, ()))))
    return out


def build(ctx: Context) -> Module:
    """The unrolled kernel module of the derivation of ``ctx``."""
    return Builder(ctx).module()


def batch_line(ctx: Context) -> Assign:
    """``B = t["x"].shape[0]`` (the batch size, from the first input)."""
    if ctx.first_data is None:
        return Assign(BATCH, Num(1))
    return Assign(BATCH, BatchSize(Item(T, Str(str(ctx.first_data)))))


def forward_call() -> Assign:
    return Assign(T, Call("_forward", (Var("params"), Var("data"))))


def factor_axes(ft, indices) -> tuple:
    """The block axes each factor of a factored term carries (GRADIENT_FACTOR_AXES)."""
    pos = {ix: k for k, ix in enumerate(indices)}
    return tuple(tuple(pos[i] for i in g.free) for g in ft.groups or ()) or ((),)


def factor_axes_constant(ctx: Context, axes: dict) -> Constant:
    return Constant("GRADIENT_FACTOR_AXES", DictOf(tuple((Str(str(p)), Py(axes[p])) for p in ctx.params), True))


class Builder:
    """Writes the unrolled module of one derivation (see the module docstring)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.d = ctx.d

    def prologue(self, exprs, direction: bool = False) -> tuple:
        """Forward pass, then the quantities ``exprs`` need (and the HVP's vector), then ``B``."""
        ctx = self.ctx
        lines = [forward_call()]
        if direction:
            lines += [Assign(Item(T, Str(ctx.key[q])), Item(Var("vector"), Str(str(p))))
                      for q, p in ctx.direction.items()]
        lines += [Assign(Item(T, Str(ctx.key[q.name])), Call("_" + ctx.ident[q.name], (T,)))
                  for q in ctx.needed(exprs)]
        return tuple(lines) + (batch_line(ctx),)

    # -- functions -------------------------------------------------------------------------
    def forward(self) -> Function:
        net = self.ctx.net
        names = [t.name for t in net.tensors] + [n.name for n in self.d.nodes]
        body = [Use(tuple(t.name for t in net.tensors))]
        body += [Define(n.name, n.indices, n.expr) for n in self.d.nodes]
        body.append(Return(DictOf(tuple((Str(str(n)), Tensor(n)) for n in names))))
        return Function("_forward", PUBLIC_ARGS, DOCS["_forward"], tuple(body), frame=Frame.INPUTS)

    def quantity(self, q) -> Function:
        var = self.ctx.ident[q.name]
        return Function(f"_{var}", ("t",), self.ctx.show(var, q.indices, q.expr),
                        (Return(Value(q.expr, q.indices)),), frame=Frame.IDENT)

    def objective(self) -> Function:
        ctx, f = self.ctx, str(self.ctx.net.objective)
        if ctx.batched[ctx.net.objective]:
            body = (Return(Item(Call("_forward", (Var("params"), Var("data"))), Str(f))),)
        else:
            body = (forward_call(), batch_line(ctx), Return(Lib("broadcast_to", (Item(T, Str(f)), BATCH_SHAPE))))
        return Function("objective", PUBLIC_ARGS, DOCS["objective"], body)

    def blocks(self, name: str, wrts, prefix: str, keep_batch: bool) -> Function:
        """One block per parameter in ``wrts`` (the gradient's), keyed by the parameter's name."""
        blocks = [self.d.blocks[w] for w in wrts]
        body, out = [], []
        for b in blocks:
            target = Local(prefix + "__".join(map(str, b.wrt)))
            body.append(Block(target, b.wrt, b.indices, b.expr, keep_batch, "∂f/∂" + ",".join(map(str, b.wrt)),
                              param_shape(b.wrt)))
            out.append((Str(str(b.wrt[0])), target))
        body.append(Return(DictOf(tuple(out))))
        return Function(name, PUBLIC_ARGS, DOCS[name], tuple(body), self.prologue([b.expr for b in blocks]),
                        Frame.IDENT)

    def hessian(self, wrts) -> Function:
        """The Hessian blocks: (a, b) with a at or before b in declaration order computed, (b, a)
        its transpose (mixed partials commute), so each symmetric pair costs one block and the
        second-order adjoints only one ordering needs are not computed.  The quantities are
        computed in dependency order, each block as soon as what it reads exists, and each
        quantity released after its last reader (:func:`schedule`): a call holds a few
        second-order adjoints (B × h × h each), not every layer pair's.  With ``ctx.buffer``
        (NumPy) every block is written into one P × P array (``out=``; see
        :mod:`einderiv.emit.kernel_buffer`) and the dict holds views of it."""
        ctx = self.ctx
        position = {p: k for k, p in enumerate(ctx.params)}
        derived = [w for w in wrts if position[w[0]] <= position[w[1]]]
        inline = _diagonals(self.d) | _kronecker(self.d)
        blocks, targets = [], {}
        for w in derived:
            b = self.d.blocks[w]
            e = _inline(b.expr, b.indices, inline, self.d.table) if inline else b.expr
            target = Local("hess_" + "__".join(map(str, b.wrt)))
            blocks.append((Block(target, b.wrt, b.indices, e, False, "∂f/∂" + ",".join(map(str, b.wrt)),
                                 param_shape(b.wrt)), [e]))
            targets[_pair(w)] = target
        body = tuple(schedule(ctx, blocks))
        fn = Function("hessian", PUBLIC_ARGS, DOCS["hessian"], body, self.prologue([]), Frame.IDENT)
        args, doc = fn.args, fn.doc
        if ctx.buffer:
            start, at = {}, 0
            for p in ctx.params:
                start[p], at = at, at + _size(ctx.shape[p])
            buffer = Local("H")
            body = tuple(_into(st, buffer, start, ctx.shape) for st in body)
            like = Item(Var("params"), Str(str(ctx.params[0])))
            body = (Assign(buffer, Call("_hessian_out", (Var("out"), Num(at), like))),) + body
            args, doc = args + ("out=None",), doc + BUFFER_DOC
        out, computed = [], set(derived)
        for a, b in wrts:
            if (a, b) in computed:
                out.append((_pair((a, b)), targets[_pair((a, b))]))
            elif ctx.buffer:
                rows, cols = (start[a], start[a] + _size(ctx.shape[a])), (start[b], start[b] + _size(ctx.shape[b]))
                out.append((_pair((a, b)), Call("_block_view", (buffer, Num(rows[0]), Num(rows[1]), Num(cols[0]),
                                                                Num(cols[1]), Py(ctx.shape[a] + ctx.shape[b])))))
            else:
                ra, rb = len(ctx.shape[a]), len(ctx.shape[b])
                perm = tuple(range(rb, rb + ra)) + tuple(range(rb))
                source = targets[_pair((b, a))]  # (a scalar parameter's block needs no transpose)
                out.append((_pair((a, b)), source if perm == tuple(range(ra + rb)) else Transpose(source, perm)))
        return Function(fn.name, args, doc, body + (Return(DictOf(tuple(out))),), fn.prologue, fn.frame)

    def _per_param(self, name: str, make) -> Function:
        body, out, exprs = [], [], []
        for a in self.ctx.params:
            b = self.d.blocks[(a,)]
            exprs.append(b.expr)
            target = Local(name)
            body.append(make(target, a, b))
            out.append((Str(str(a)), target))
        body.append(Return(DictOf(tuple(out))))
        return Function(name, PUBLIC_ARGS, DOCS[name], tuple(body), self.prologue(exprs), Frame.IDENT)

    def factors(self) -> Function:
        return self._per_param("gradient_factors", lambda t, a, b: Factors(t, a, b.indices, b.expr))

    def norms(self) -> Function:
        return self._per_param("per_sample_gradient_norms", lambda t, a, b: SquaredNorm(t, a, b.indices, b.expr))

    def hvp(self) -> Function:
        body, out = [], []
        for a in self.ctx.params:
            b = self.d.hvp[a]
            target = Local(f"hvp_{a}")
            body.append(Block(target, (a,), b.indices, b.expr, False, f"Σ_b H[{a},b]·vector[b]", param_shape([a])))
            out.append((Str(str(a)), target))
        body.append(Return(DictOf(tuple(out))))
        return Function("hvp", ("params", "data", "vector"), DOCS["hvp"], tuple(body),
                        self.prologue([b.expr for b in self.d.hvp.values()], direction=True), Frame.IDENT)

    def ggn(self) -> Function:
        """Diagonal of the generalised Gauss–Newton matrix: the derivation's GGN block of each
        parameter (J_aᵀ ∂²f/∂a∂b J_b over the objective's arguments a, b), read on θ = φ, with
        the objective's Hessian written into its terms where it factors (:mod:`.ggn_terms`).

        The rows J are back-propagated from the objective (one quantity per node); each block
        is computed as soon as its rows are, and every row is released after its last reader
        (:func:`schedule`), so that a call holds about one layer's rows at a time."""
        blocks = []
        for a in self.ctx.params:
            blk = self.d.ggn[a]
            k = len(self.ctx.shape[a])
            theta, phi = blk.indices[:k], blk.indices[k:]
            diag = dict(zip(phi, theta))
            terms = []
            for t in as_terms(blk.expr, blk.indices):
                fs = tuple(f for f in (rename(f, diag) for f in t.factors)
                           if not (isinstance(f, Delta) and f.a == f.b))
                terms += diagonal_terms(self.d, t.coef, fs, theta)
            target = Local(f"ggn_{a}")
            blocks.append((Block(target, (a,), theta, add(terms), False, f"diag GGN[{a}]",
                                 Item(PARAMS_VAR, Py(str(a))), "ggn"), terms))
        body = schedule(self.ctx, blocks)
        out = tuple((Str(str(b.wrt[0])), b.target) for b, _ in blocks)
        doc = DOCS["ggn_diagonal"] + (GGN_DENSE if uses_dense_hobj(self.d) else GGN_FACTORED)
        return Function("ggn_diagonal", PUBLIC_ARGS, doc, tuple(body) + (Return(DictOf(out)),),
                        self.prologue([]), Frame.IDENT)

    def third(self, wrts) -> list:
        """The third-derivative functions: one per derived block (the others are its transposes)
        and one per derivative ``d[q,θ]`` of an intermediate, those equal up to the tensors they
        read sharing one function (:mod:`einderiv.emit.share`); the rows that apply them
        (``_DERIVATIVES``, ``_THIRD``); ``third_derivatives`` and ``third_derivative``."""
        ctx, d = self.ctx, self.d
        specs = [Spec(q.name, "_" + ctx.ident[q.name], str(q.name), q.indices, q.expr)
                 for q in d.quantities if q.name.kind is Kind.D]
        derived = [w for w in wrts if not d.blocks[w].transposed]
        for w in derived:
            b = d.blocks[w]
            specs.append(Spec(w, "_third_" + "__".join(ctx.ident[p] for p in w),
                              "Batch-mean block ∂³f/∂" + "∂".join(map(str, w)), b.indices, b.expr, w))
        functions, rows = Sharing(ctx).share(specs)
        quantities = DictOf(tuple((Str(ctx.key[s.key]), rows[s.key]) for s in specs if s.block is None), True)
        blocks = DictOf(tuple((Py(tuple(map(str, w))), rows[w]) for w in derived), True)
        return [Support("_Tensors")] + functions + [
            Constant("_DERIVATIVES", quantities), Constant("_THIRD", blocks),
            Support("third_derivatives"), Support("third_derivative")]

    # -- module ------------------------------------------------------------------------------
    def module(self) -> Module:
        ctx, d = self.ctx, self.d
        grads = [(p,) for p in ctx.params]
        hess = [w for w in d.blocks if len(w) == 2]
        third = [w for w in d.blocks if len(w) == 3]
        axes = {}
        for a in ctx.params:
            b = d.blocks[(a,)]
            axes[a] = [factor_axes(ft, b.indices) for ft in factored(b.expr, b.indices)] or \
                [(tuple(range(len(ctx.shape[a]))),)]
        items = [Helpers(), self.forward()] + [self.quantity(q) for q in d.quantities + d.hvp_quantities
                                                if q.name.kind is not Kind.D]
        items += [self.objective(), self.blocks("gradient", grads, "grad_", False),
                  self.blocks("per_sample_gradient", grads, "grad_", True), self.factors(), self.norms(),
                  Support("expand_factors")]
        if hess or d.hvp:  # (those the column pass writes by loops are left to it)
            items += [build() for name, build in (("hessian", lambda: self.hessian(hess)), ("hvp", self.hvp),
                                                  ("ggn_diagonal", self.ggn)) if name not in ctx.by_columns]
        if third:
            items += self.third(third)
        constants = (
            Constant("PARAMS", DictOf(tuple((Str(str(p)), Py(ctx.shape[p])) for p in ctx.params), True)),
            Constant("INPUTS", DictOf(tuple((Str(str(t.name)), Py(ctx.shape[t.name])) for t in ctx.net.data), True)),
            factor_axes_constant(ctx, axes))
        return Module(ctx.header(), constants, tuple(items))
