"""Lowering IR expressions to array statements: one idiom per IR node.

A :class:`Scope` is the body of one generated function being written: its statements, its
local names, which tensors are loaded into which variable, and a cache of lowered
subexpressions (common subexpressions are computed once).  :meth:`Scope.lower` turns an
expression into a :class:`~einderiv.emit.kernel_context.Val` (an array expression with its axes)
and emits the statements it needs:

* ``Prod`` → an einsum (:meth:`Scope.contract`) whose contraction path is chosen here by
  opt_einsum on the concrete sizes (and a nominal batch of :data:`NOMINAL_BATCH`), kept as a
  :class:`~einderiv.emit.kernel.Contraction` with one BLAS-lowered step per pairwise
  contraction (:mod:`einderiv.emit.lower`) — or, with ``literal_einsum``, one
  :class:`~einderiv.emit.kernel.Einsum` with the path as a literal;
* ``Add`` → a sum of operands aligned to one axis order;
* ``Apply`` → an :class:`~einderiv.emit.kernel.Elementwise` statement: the SymPy body of the
  derivative with its operands bound (``tanh'`` reuses the node holding ``tanh``);
* ``Softmax``/``LogSumExp``/``Max``/``ArgMax`` → a stable :class:`~einderiv.emit.kernel.Reduction`;
* ``Inv``/``MatDet`` → a :class:`~einderiv.emit.kernel.MatrixFn` on the last two axes;
* ``Window`` → a strided view of its neighbour (:mod:`einderiv.emit.window`).

Data, nodes and quantities carry a leading batch axis (letter ``B`` in einsum strings);
parameters do not.  A batch-mean block sums the batch inside its einsums and divides by ``B``.
"""
from __future__ import annotations

import functools
from typing import Callable

import sympy

from ..frontend.builtins import ARG
from ..ir import (Add, Apply, ArgMax, Const, Delta, Expr, Inv, LogSumExp, MatDet, Max, Ones, Prod, Ref, Softmax, Window,
                  alpha_key, labels_of, refs)
from . import lower, window
from .kernel import Assign, Contraction, Elementwise, Frame, Loop, Python, Range
from .kernel_arrays import (BATCH, ArrayExpr, Call, Div, Einsum, Eye, Item, Key, MatrixFn, Num, Paren, Reduction, Str,
                            Subscript, Sum, Transpose, Var, atom, is_dotted, mul, operand, scaled)
from .kernel_arrays import Ones as OnesArray
from .kernel_context import Context, Val
from .kernel_names import Letters, local_hint
from .stable import stable

#: batch size assumed when choosing contraction paths (the path stays valid for any B)
NOMINAL_BATCH = 64
#: stands for the node's own value in a derivative body (tanh' = 1 - tanh² reads the node tanh)
KNOWN = sympy.Symbol("_known_value", real=True)


def total(terms: list) -> ArrayExpr:
    """The sum of ``terms`` (one term is itself)."""
    return terms[0] if len(terms) == 1 else Sum(tuple(terms))


def combine(parts: list[tuple[ArrayExpr, bool]], keep_batch: bool) -> ArrayExpr:
    """Terms of a block as one expression: per sample, or the batch mean (batched terms ÷ B)."""
    if keep_batch:
        return total([c for c, _ in parts])
    summed = [c for c, b in parts if b]
    lead = (Div(Paren(total(summed)), BATCH) if len(summed) > 1 else Div(summed[0], BATCH)) if summed else None
    return total(([lead] if lead else []) + [c for c, b in parts if not b])


def over(labels) -> Range | tuple:
    """What a loop over ``labels`` iterates: a range, or the labels themselves (a
    :class:`Range` — a term group relative to a run-time length — as it is)."""
    if isinstance(labels, Range):
        return labels
    lo, hi = labels[0], labels[-1]
    if list(labels) == list(range(lo, hi + 1)):
        return Range(lo, hi + 1)
    if list(labels) == list(range(lo, hi - 1, -1)):
        return Range(lo, hi - 1, -1)
    return tuple(labels)


def align(v: Val, dst: tuple, dst_b: bool) -> ArrayExpr:
    """``v`` transposed and expanded to broadcast against axes ``dst`` (batched if ``dst_b``)."""
    src, src_b = v.idx, v.batched
    off = 1 if src_b else 0
    order = sorted(range(len(src)), key=lambda k: dst.index(src[k]))
    x = v.expr
    if order != list(range(len(src))):
        x = Transpose(atom(x), tuple(([0] if src_b else []) + [k + off for k in order]))
    slots = ([":" if src_b else None] if dst_b else []) + [":" if i in src else None for i in dst]
    while slots and slots[0] is None:  # numpy broadcasts missing leading axes
        slots.pop(0)
    while slots and slots[-1] == ":":
        slots.pop()
    return Subscript(x, tuple(slots)) if slots else x


class Scope:
    """The body of one generated function: statements, local names, loads, a CSE cache.

    ``frame`` says where tensors are read (see :class:`~einderiv.emit.kernel.Function`);
    ``env`` maps each enclosing loop variable to its first label (and a run-time depth to its
    reference value), so that a tensor written with them is looked up through a member.
    """

    def __init__(self, ctx: Context, frame: Frame | None, namer):
        self.ctx = ctx
        self.frame = frame
        self.names = namer
        self.out: list = []
        self.loaded: dict = {}
        self.cache: dict = {}
        #: what each tensor statement computed (kernel_statements), by its Local
        self.locals: dict = {}
        self.env: dict = dict([ctx.depth]) if ctx.depth else {}
        self.params = set(ctx.params) | set(ctx.direction)
        #: where the statements after the last :class:`~einderiv.emit.kernel.Release` start
        self.mark = 0
        #: the tensors each cached value reads (a released tensor's cached values go with it)
        self.cache_reads: dict = {}

    # -- statements and names ---------------------------------------------------------
    def emit(self, stmt) -> None:
        self.out.append(stmt)

    def bind(self, hint: str, value: ArrayExpr, exact: bool = False) -> str:
        var = hint if exact else self.names.new(hint)
        self.out.append(Assign(Var(var), value))
        return var

    def source(self, name) -> ArrayExpr:
        """Where the function reads tensor ``name``."""
        if self.frame in (Frame.INPUTS, Frame.LOCALS):
            return Item(Var("params" if name in self.ctx.shape and name in self.params else "data"), Str(str(name)))
        if self.frame is Frame.NAMES:
            return Item(Var("t"), Key(name))
        return Item(Var("t"), Str(self.ctx.key[name]))

    def ref(self, name) -> str:
        """The variable holding tensor ``name``, loaded on first use."""
        if name not in self.loaded:
            if self.frame is Frame.ARGS:  # an argument of the function: nothing to load
                self.loaded[name] = self.ctx.ident[name]
                return self.loaded[name]
            if self.frame is Frame.NAMES and self.ctx.symbolic(name):  # h(k-1) -> h_km1
                var = self.names.new(local_hint(name, self.ctx.symbols))
            else:
                var = self.ctx.ident[name]
            self.out.append(Assign(Var(var), self.source(name)))
            self.loaded[name] = var
        return self.loaded[name]

    def is_batched(self, name) -> bool:
        return self.ctx.is_batched(name, self.env)

    def label_value(self, lab) -> int:
        return lab if isinstance(lab, int) else self.env[lab.symbol] + lab.offset

    def loop(self, var: str, iterate, emit_body: Callable[[], None], exprs=()) -> None:
        """``for var in iterate:`` around what ``emit_body()`` emits; names bound inside stay
        inside.  Parameters that ``exprs`` use are read before the loop."""
        for e in exprs:
            for r in refs(e):
                if r.name in self.params and not labels_of(r.name):
                    self.ref(r.name)
        loaded, cache, env, start = dict(self.loaded), dict(self.cache), dict(self.env), len(self.out)
        self.env[var] = self.label_value(iterate.start if isinstance(iterate, Range) else iterate[0])
        emit_body()
        body = tuple(self.out[start:]) or (Python("pass"),)
        del self.out[start:]
        self.out.append(Loop(var, iterate, body))
        self.loaded, self.cache, self.env = loaded, cache, env

    def each(self, labels, fn: Callable[[], None], var: str | None = None, exprs=()) -> None:
        """``fn()`` once (``labels`` None), or in a loop over ``labels``."""
        if labels is None:
            fn()
        else:
            self.loop(var or self.ctx.loop_vars[0], over(labels), fn, exprs)

    # -- einsum ----------------------------------------------------------------------
    def contract(self, ops: list, coef, out: tuple, keep_batch: bool, L: Letters | None = None):
        """``coef · einsum(ops) → out`` as (expression, whether any operand is batched)."""
        scatter = window.scatter_target(ops, out)
        if scatter is not None:  # the adjoint of a convolution's input: contract, then scatter
            k, w, rest = scatter
            value, batched = self.contract(rest, coef, out[:k] + w.free[1:] + out[k + 1:], keep_batch, L)
            size = self.ctx.dim(w.a) if w.a is not None else 0
            args = (self.ctx.dim(w.u), k + (1 if batched and keep_batch else 0), size, w.stride, w.dilation, w.offset)
            return Call("_shift_scatter", (value,) + tuple(Num(a) for a in args)), batched
        ops = window.fold(ops, out, self.ctx.dim, self.bind)  # index arithmetic → strided views
        batched = any(v.batched for v in ops)
        coef = self.ctx.number(coef)
        if not ops:
            return Num(coef), False
        L = L or Letters()
        subs = [("B" if v.batched else "") + "".join(L[i] for i in v.idx) for v in ops]
        res = ("B" if batched and keep_batch else "") + "".join(L[i] for i in out)
        if all(sub == res for sub in subs) and len(set(res)) == len(res):
            value = mul(operand(v.expr) for v in ops)  # same axes everywhere: elementwise
        else:
            eq = ",".join(subs) + "->" + res
            shapes = tuple(((NOMINAL_BATCH,) if v.batched else ()) + tuple(self.ctx.dim(i) for i in v.idx)
                           for v in ops)
            args = tuple(v.expr for v in ops)
            if self.ctx.literal:
                value = Einsum(eq, args, lower.path(eq, shapes))
            else:
                steps, value = lower.plan(eq, shapes, args, lambda: self.names.new("tmp"))
                self.out.append(Contraction(eq, args, steps, value, self.frame is not Frame.ARGS))
        return scaled(coef, value), batched

    def terms(self, e: Expr, order: tuple, keep_batch: bool, L: Letters | None = None) -> list:
        """Each term of ``e`` as (expression, batched) with axes ``order`` (batch summed unless
        ``keep_batch``); each term's einsum letters its dummies afresh (a fork of ``L``)."""
        parts = []
        for t in (e.terms if isinstance(e, Add) else (e,)):
            if isinstance(t, Add):
                parts.extend(self.terms(t, order, keep_batch, L))
                continue
            factors = t.factors if isinstance(t, Prod) else (t,)
            coef = sympy.Mul(*[f.value for f in factors if isinstance(f, Const)])
            ops = [self.lower(f) for f in factors if not isinstance(f, Const)]
            parts.append(self.contract(ops, coef, order, keep_batch, L.fork() if L else None))
        return parts

    # -- nodes ------------------------------------------------------------------------
    def lower(self, e: Expr, target: str | None = None):
        """A Val for ``e`` (axes ``e.free``), emitting the statements it needs."""
        leaf = _LEAVES.get(type(e))
        if leaf is not None:
            return leaf(self, e)
        key = alpha_key(e)
        if key in self.cache:
            expr, batched = self.cache[key]
            return Val(expr, e.free, batched)
        rule = _COMPOUND.get(type(e))
        if rule is None:
            raise TypeError(f"cannot lower {type(e).__name__}")
        val = rule(self, e, target)
        self.cache[key] = (val.expr, val.batched)
        self.cache_reads[key] = {r.name for r in refs(e)}
        return val

    def label(self, e: Expr) -> str:
        return self.ctx.name(e.name) if isinstance(e, Ref) else "expr"

    def _ref(self, e: Ref) -> Val:
        v = Val(Var(self.ref(e.name)), e.indices, self.is_batched(e.name))
        if len(e.free) < len(e.indices):  # a repeated index: the diagonal
            value, _ = self.contract([v], 1, e.free, True)
            v = Val(Var(self.bind(v.expr.name + "_diag", value)), e.free, v.batched)
        return v

    def _sum(self, e: Prod | Add, target) -> Val:
        parts = self.terms(e, e.free, True)
        var = self.bind(target or "tmp", total([c for c, _ in parts]), bool(target))
        return Val(Var(var), e.free, any(b for _, b in parts))

    def _apply(self, e: Apply, target) -> Val:
        args = [self.lower(a) for a in e.args]
        order, batched = e.free, any(v.batched for v in args)
        codes = [align(v, order, batched) for v in args]
        codes = [c if is_dotted(c) else Var(self.bind((v.expr.name if isinstance(v.expr, Var) else "arg") + "_b", c))
                 for c, v in zip(codes, args)]
        value, known = self.ctx.known_value(e), ()
        if value is not None and e.fn.deriv != (0,) * len(e.args):  # tanh' = 1 - tanh²: reuse v = tanh(z)
            var = self.ref(value)
            body, used, reused = derivative_body(self.ctx.table, e.fn.name, e.fn.deriv, True)
            known = ((KNOWN, Var(var)),) if reused else ()
        else:
            body, used, reused = derivative_body(self.ctx.table, e.fn.name, e.fn.deriv, False)
        covered = {i for k in used for i in args[k].idx}
        broadcast = None
        if not reused and (covered != set(order) or (batched and not any(args[k].batched for k in used))):
            broadcast = tuple(codes)
        d = e.fn.deriv
        pre = ({0: "", 1: "d"}.get(d[0], f"d{d[0]}") + e.fn.name) if len(d) == 1 else \
            e.fn.name + "_d" + "".join(map(str, d))
        var = target or self.names.new("_".join([pre] + [self.label(a) for a in e.args]))
        self.out.append(Elementwise(var, body, tuple((ARG[k], codes[k]) for k in used) + known, broadcast))
        return Val(Var(var), order, batched)

    def _reduce(self, e: Softmax | LogSumExp | Max | ArgMax, target) -> Val:
        v = self.lower(e.arg)
        kind = {Softmax: "softmax", LogSumExp: "logsumexp"}.get(type(e)) or \
            ("arg" if isinstance(e, ArgMax) else "") + e.kind
        axis = v.idx.index(e.over) + (1 if v.batched else 0)
        var = self.bind(target or f"{kind}_{self.label(e.arg)}", Reduction(kind, v.expr, axis), bool(target))
        return Val(Var(var), e.free, v.batched)

    def _matrix(self, e: Inv | MatDet, target) -> Val:
        """``inv``/``det``/``logdet`` of the argument, its rows and columns moved to the last axes."""
        v = self.lower(e.arg)
        code = align(v, (e.row, e.col), v.batched)
        if not is_dotted(code):
            code = Var(self.bind(self.label(e.arg) + "_m", code))
        kind = "inv" if isinstance(e, Inv) else e.kind
        var = self.bind(target or f"{kind}_{self.label(e.arg)}", MatrixFn(kind, code), bool(target))
        return Val(Var(var), e.free, v.batched)


@functools.lru_cache(maxsize=None)
def derivative_body(table, fn: str, deriv: tuple, known: bool) -> tuple:
    """The derivative's SymPy body, rewritten to stay finite at saturation (:func:`stable`), with
    the function's own value as :data:`KNOWN` if ``known``; the arguments it uses; and whether it
    reads the known value."""
    body = stable(table.derivative(fn, deriv))  # finite where the value is: sigmoid' = σ(z) σ(−z)
    if known:
        body = body.xreplace({stable(table.derivative(fn, (0,) * len(deriv))): KNOWN})
    free = body.free_symbols
    return body, tuple(k for k in range(len(deriv)) if ARG[k] in free), KNOWN in free


def _delta(s: Scope, e: Delta) -> Val:
    n = s.ctx.dim(e.a)
    return Val(Num(n), (), False) if e.a == e.b else Val(Eye(n), (e.a, e.b), False)


_LEAVES: dict[type, Callable] = {
    Const: lambda s, e: Val(Num(s.ctx.number(e.value)), (), False),
    Ref: Scope._ref,
    Delta: _delta,
    Window: lambda s, e: window.WinVal(e),  # folded into its neighbour by contract()
    Ones: lambda s, e: Val(OnesArray(s.ctx.dim(e.index)), (e.index,), False),
}
_COMPOUND: dict[type, Callable] = {
    Prod: Scope._sum, Add: Scope._sum, Apply: Scope._apply, Softmax: Scope._reduce, LogSumExp: Scope._reduce,
    Max: Scope._reduce, ArgMax: Scope._reduce, Inv: Scope._matrix, MatDet: Scope._matrix,
}
