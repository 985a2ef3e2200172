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
  ``torch.ops.aten.tanh_backward(g, v)``, the op autograd itself calls: one op for three.

The ``del`` statements are then placed again (:func:`einderiv.emit.liveness.free`) for the
rewritten body.  Functions of other frames (loops over a family's steps, the Hessian's buffer)
are left as they are, and so is a per-block Hessian (its statements under tests).
"""
from __future__ import annotations

import sympy

from .kernel import Assign, Comment, Contraction, Elementwise, Free, Frame, Function, Module, Return, Step, When
from .kernel_arrays import Code, Lib, MatMul, Mul, Num, Paren, Subscript, Var
from .liveness import free, variables

__all__ = ["fuse", "rowdot"]


def fuse(module: Module) -> Module:
    """``module`` with each straight-line function's torch rewrites (module docstring)."""
    return Module(module.header, module.constants,
                  tuple(_fused(it) if isinstance(it, Function) and it.frame is Frame.LOCALS else it
                        for it in module.items))


def _fused(f: Function) -> Function:
    if any(isinstance(st, When) for st in f.body):  # a per-block Hessian: its dels are placed per test
        return f
    body = _fuse_backward(_norms([st for st in f.body if not isinstance(st, Free)]))
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


def _norms(body: list) -> list:
    """``norm = sqrt(max(sq, 0))`` with ``sq = p * q``, ``p`` and ``q`` row-wise squared norms (each
    read once) → ``p = ‖u‖``, ``q = ‖w‖``, ``norm = p * q``; ``sq`` itself a row-wise squared norm
    ``‖u‖²`` (one vector per sample) → ``norm = ‖u‖``: vector_norm keeps the (B,) result free of
    over- and underflow and saves ops."""
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
            out[i] = Assign(st.target, Lib("linalg.vector_norm", (_square(one), Code("dim=-1"))))
            continue
        prod = body[defs[sq]].value if sq in defs and count.get(sq) == 1 else None
        if not (isinstance(prod, Mul) and len(prod.factors) == 2 and all(
                isinstance(f, Var) and f.name in steps and count.get(f.name) == 1 for f in prod.factors)):
            continue
        for f in prod.factors:
            k, j = steps[f.name]
            out[k] = _as_norm(out[k], j)
        out[defs[sq]] = Comment("one outer product per sample: its norm is the product of its factors' norms")
        out[i] = Assign(st.target, prod)
    return out


def _as_norm(c: Contraction, j: int) -> Contraction:
    """``c`` with its step ``j``, a row-wise squared norm ``‖u‖²``, computing ``‖u‖`` instead."""
    s = c.steps[j]
    norm = Lib("linalg.vector_norm", (_square(s.expr), Code("dim=-1")))
    return Contraction(c.subscripts, c.operands, c.steps[:j] + (Step(s.subscripts, norm, s.target),) + c.steps[j + 1:],
                       c.value, False)


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
