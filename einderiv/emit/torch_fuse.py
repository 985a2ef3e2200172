"""Torch-specific rewrites of the straight-line functions: fewer torch calls per call.

At the sizes a per-sample network runs at, a torch function's time is mostly the fixed cost of
each op it dispatches (microseconds each, on the CPU), not the arithmetic.  The shared
straight-line pass (:mod:`einderiv.emit.straight`) already writes each public function as one
body of local variables with only what it reads; :func:`fuse` rewrites such a body
(:attr:`~einderiv.emit.kernel.Frame.LOCALS`) where torch has a cheaper spelling of the same
numbers:

* the norm of a per-sample gradient that is one outer product of two vectors per sample,
  ``sqrt(max(‖u_b‖² ‖w_b‖², 0))`` from two row-wise dot products, is written
  ``‖u_b‖ ‖w_b‖`` with ``torch.linalg.vector_norm`` (three ops, no (B, P) array);
* ``d = 1 - v**2; a = d * g`` (tanh's derivative times an adjoint, ``d`` read once) is
  ``torch.ops.aten.tanh_backward(g, v)``, the op autograd itself calls: one op for three;
* in the functions whose results are parameter-shaped or one number per sample
  (:data:`BATCH_LAST`), a product of a per-sample matrix by a parameter, ``x @ W.T``, is
  written ``_rows_times(x, W.T)``: from 256 samples it computes ``(W @ x.T).T``, the same
  numbers with the batch axis last.  MKL's double-precision product is 1.1–2.2× faster that way
  round from 256 rows at a per-sample network's shapes (a (1024, 32) batch by a 32 × 32 weight:
  50 µs against 80 µs; by a 10 × 32 one: 23 against 51), and the result, a transposed view,
  makes the next product's operand contiguous; below 256 rows the two views' dispatch costs
  more than it saves.  Elementwise ops keep the layout; the two that would not — a norm along
  the last axis, a softmax along it — go through the helpers ``_rownorm`` and ``_softmax``,
  which read the layout at run time.  Functions that return per-sample arrays
  (``per_sample_gradient``, ``gradient_factors``) keep the batch axis first: their results are
  what users reshape.

The ``del`` statements are then placed again (:func:`einderiv.emit.liveness.free`) for the
rewritten body.  Functions of other frames (loops over a family's steps, the Hessian's buffer)
are left as they are, and so is a per-block Hessian (its statements under tests).
"""
from __future__ import annotations

import dataclasses

import sympy

from .kernel import Assign, Comment, Contraction, Elementwise, Free, Frame, Function, Module, Return, Step, When
from .kernel_arrays import Call, Code, Einsum, Lib, MatMul, Mul, Num, Paren, Subscript, TensorDot, Transpose, Var
from .liveness import free, variables

__all__ = ["BATCH_LAST", "fuse", "rowdot"]

#: functions whose results are parameter-shaped arrays or one number per sample: their per-sample
#: intermediates may be kept with the batch axis last (module docstring)
BATCH_LAST = frozenset({"gradient", "per_sample_gradient_norms", "hvp", "ggn_diagonal"})


def fuse(module: Module) -> Module:
    """``module`` with each straight-line function's torch rewrites (module docstring)."""
    return Module(module.header, module.constants,
                  tuple(_fused(it) if isinstance(it, Function) and it.frame is Frame.LOCALS else it
                        for it in module.items))


def _fused(f: Function) -> Function:
    if any(isinstance(st, When) for st in f.body):  # a per-block Hessian: its dels are placed per test
        return f
    body = [st for st in f.body if not isinstance(st, Free)]
    last = _batch_last(body) if f.name in BATCH_LAST else body
    body = _fuse_backward(_norms(last, last is not body))
    return free(Function(f.name, f.args, f.doc, tuple(body), f.prologue, f.frame))


# -- what a statement reads and writes ------------------------------------------------------------
def _uses(st) -> tuple[set, set]:
    """(variables ``st`` defines, variables it reads), as printed."""
    if isinstance(st, Assign):
        return {st.target.name}, set(variables(st.value, []))
    if isinstance(st, Elementwise):
        return {st.target}, set(variables(tuple(x for _, x in st.operands) + (st.broadcast or ()), []))
    if isinstance(st, Contraction):
        done = [s for s in st.steps if s.target is not None]
        return {s.target for s in done}, set(variables(tuple(s.expr for s in done), []))
    if isinstance(st, Return):
        return set(), set(variables(st.value, []))
    return set(), set()


# -- norms of one outer product ----------------------------------------------------------------
def rowdot(e):
    """``(u, w)`` when ``e`` is the row-wise dot product ``(u[..., None, :] @ w[..., None])[..., 0, 0]``
    (:func:`einderiv.emit.lower.pair` of ``Bj,Bj->B``), else None."""
    if isinstance(e, Subscript) and e.slots == ("...", 0, 0) and isinstance(e.x, Paren) and \
            isinstance(e.x.x, MatMul):
        a, b = e.x.x.a, e.x.x.b
        if isinstance(a, Subscript) and isinstance(b, Subscript) and a.slots == ("...", None, ":") and \
                b.slots == ("...", None):
            return a.x, b.x
    return None


def _square(e):
    """``u`` when ``e`` is the row-wise dot product of ``u`` with itself."""
    pair = rowdot(e)
    return pair[0] if pair is not None and pair[0] == pair[1] else None


def _norms(body: list, batch_last: bool = False) -> list:
    """``norm = sqrt(max(sq, 0))`` with ``sq = p * q``, ``p`` and ``q`` row-wise squared norms (each
    read once) → ``p = ‖u‖``, ``q = ‖w‖``, ``norm = p * q``; ``sq`` itself a row-wise squared norm
    ``‖u‖²`` (one vector per sample) → ``norm = ‖u‖``: two norms do not overflow where their
    squares' product would, and the product saves ops.  ``batch_last``: each norm through the
    helper ``_rownorm`` (its operand may be a transposed view)."""
    count: dict = {}
    for st in body:
        for name in _uses(st)[1]:
            count[name] = count.get(name, 0) + 1
    steps = {}  # variable → (statement index, step index) of a row-wise squared norm
    for i, st in enumerate(body):
        if isinstance(st, Contraction):
            for j, s in enumerate(st.steps):
                if s.target is not None and _square(s.expr) is not None:
                    steps[s.target] = (i, j)
    defs = {st.target.name: i for i, st in enumerate(body) if isinstance(st, Assign)}
    out = list(body)
    for i, st in enumerate(body):
        v = st.value if isinstance(st, Assign) else None
        if not (isinstance(v, Lib) and v.fn == "sqrt" and isinstance(v.args[0], Lib) and v.args[0].fn == "maximum"
                and v.args[0].args[1] == Num(0.0) and isinstance(v.args[0].args[0], Var)):
            continue
        sq = v.args[0].args[0].name
        one = body[defs[sq]].value if sq in defs and count.get(sq) == 1 else None
        if one is not None and _square(one) is not None:  # one vector per sample (a bias's gradient)
            out[defs[sq]] = Comment("one vector per sample: its norm directly")
            out[i] = Assign(st.target, _norm(_square(one), batch_last))
            continue
        prod = body[defs[sq]].value if sq in defs and count.get(sq) == 1 else None
        if not (isinstance(prod, Mul) and len(prod.factors) == 2 and all(
                isinstance(f, Var) and f.name in steps and count.get(f.name) == 1 for f in prod.factors)):
            continue
        for f in prod.factors:
            k, j = steps[f.name]
            out[k] = _as_norm(out[k], j, batch_last)
        out[defs[sq]] = Comment("one outer product per sample: its norm is the product of its factors' norms")
        out[i] = Assign(st.target, prod)
    return out


def _norm(u, batch_last: bool):
    """``‖u‖`` along the last axis: torch's vector_norm, or the helper that also takes a transposed view."""
    return Call("_rownorm", (u,)) if batch_last else Lib("linalg.vector_norm", (u, Code("dim=-1")))


def _as_norm(c: Contraction, j: int, batch_last: bool) -> Contraction:
    """``c`` with its step ``j``, a row-wise squared norm ``‖u‖²``, computing ``‖u‖`` instead."""
    s = c.steps[j]
    norm = _norm(_square(s.expr), batch_last)
    return Contraction(c.subscripts, c.operands, c.steps[:j] + (Step(s.subscripts, norm, s.target),) + c.steps[j + 1:],
                       c.value, False)


# -- products with the batch axis last ----------------------------------------------------------
def _batch_last_product(s: Step):
    """``_rows_times(a, b)`` for a step ``Bk,kj->Bj`` printed ``a @ b`` (two matrices, the batch
    axis first in the result), else None."""
    ins, out = s.subscripts.split("->")
    subs = ins.split(",")
    if not (isinstance(s.expr, MatMul) and len(out) == 2 and out[0] == "B" and len(subs) == 2
            and all(len(x) == 2 for x in subs) and sum("B" in x for x in subs) == 1):
        return None
    a, b = s.expr.a, s.expr.b
    if not all(isinstance(x, (Var, Transpose)) for x in (a, b)):
        return None
    return Call("_rows_times", (a, b))


def _products(e, known: set):
    """The products (matrix, tensordot, einsum) in the array expression ``e``, except those in ``known``."""
    if e in known:
        return
    if isinstance(e, (MatMul, TensorDot, Einsum)):
        yield e
    if isinstance(e, tuple):
        for x in e:
            yield from _products(x, known)
    elif dataclasses.is_dataclass(e) and not isinstance(e, type):
        for f in dataclasses.fields(e):
            yield from _products(getattr(e, f.name), known)


def _replaced(e, new: dict):
    """``e`` with each sub-expression that is a key of ``new`` replaced by its value."""
    if e in new:
        return new[e]
    if isinstance(e, tuple):
        return tuple(_replaced(x, new) for x in e)
    if dataclasses.is_dataclass(e) and not isinstance(e, type):
        return type(e)(*(_replaced(getattr(e, f.name), new) for f in dataclasses.fields(e)))
    return e


def _summed_batch(s: Step) -> bool:
    """Whether step ``s`` is a product of two matrices that sums the batch axis away
    (``Bj,Bi->ji``: a gradient): torch takes a transposed operand there as it is."""
    ins, out = s.subscripts.split("->")
    subs = ins.split(",")
    return isinstance(s.expr, MatMul) and "B" not in out and len(subs) == 2 and all(len(x) == 2 for x in subs)


def _batch_last(body: list) -> list:
    """Each product of a per-sample matrix by a parameter written with the batch axis last
    (module docstring), and so wherever the statements after its contraction read its value
    (``x @ W.T + b``).  ``body`` itself unless every product in it is of that kind, sums the
    batch axis away, or is a row-wise dot product (printed ``linalg.vecdot``, which takes any
    layout): torch copies a transposed view for a product of two transposed operands (``v @ W.T``
    with ``v`` a view: 4–7× the time), and for an einsum or a batched product."""
    new, values = {}, set()
    out = []
    for st in body:
        if isinstance(st, Contraction):
            steps = []
            for s in st.steps:
                e = _batch_last_product(s)
                if e is None and not _summed_batch(s) and rowdot(s.expr) is None and \
                        any(True for _ in _products(s.expr, values)):
                    return body
                if e is not None:
                    new[s.expr] = e
                steps.append(s if e is None else Step(s.subscripts, e, s.target))
            values.add(st.value)
            st = Contraction(st.subscripts, st.operands, tuple(steps), new.get(st.value, st.value), st.note)
        elif isinstance(st, (Assign, Elementwise, Return)):
            if any(True for _ in _products(st, values)):
                return body
            st = _replaced(st, new)
        out.append(st)
    return out if new else body


# -- an activation's derivative times an adjoint ---------------------------------------------------
_Z = sympy.Symbol("z", real=True)
#: derivative of an activation in its output z → the aten op that multiplies an adjoint by it
#: (what autograd itself calls): one op for three.  Not sigmoid: its derivative is written
#: ``v * sigmoid(-z)``, exact where ``v * (1 - v)`` (sigmoid_backward) loses digits as v → 1.
BACKWARD = {"tanh_backward": 1 - _Z ** 2}


def _backward_op(st) -> tuple | None:
    """(op, the activation's output) when ``st`` computes one of :data:`BACKWARD`'s derivatives."""
    if not isinstance(st, Elementwise) or st.broadcast is not None or len(st.operands) != 1:
        return None
    sym, x = st.operands[0]
    body = st.body.xreplace({sym: _Z})
    for op, want in BACKWARD.items():
        if sympy.expand(body - want) == 0:
            return op, x
    return None


def _fuse_backward(body: list) -> list:
    """``d = 1 - v**2; a = d * g`` (``d`` read once) → ``a = tanh_backward(g, v)``."""
    count: dict = {}
    for st in body:
        for name in _uses(st)[1]:
            count[name] = count.get(name, 0) + 1
    found = {}
    for i, st in enumerate(body):
        hit = _backward_op(st)
        if hit is not None and count.get(st.target) == 1:
            found[st.target] = (i, hit)
    out = list(body)
    for i, st in enumerate(body):
        v = st.value if isinstance(st, Assign) else None
        if not (isinstance(v, Mul) and len(v.factors) == 2 and all(isinstance(f, Var) for f in v.factors)):
            continue
        names = [f.name for f in v.factors]
        d = next((n for n in names if n in found), None)
        if d is None or names[0] == names[1]:
            continue
        k, (op, x) = found[d]
        grad = v.factors[1 - names.index(d)]
        out[k] = None
        out[i] = Assign(st.target, Lib("ops.aten." + op, (grad, x)))
    return [st for st in out if st is not None]
