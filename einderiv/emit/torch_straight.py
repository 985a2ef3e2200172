"""Straight-line first-order functions for the torch printer: fewer torch calls per call.

At the sizes a per-sample network runs at, a torch function's time is mostly the fixed cost of
each op it dispatches (microseconds each, on the CPU), not the arithmetic.  The lowered kernel
(:mod:`einderiv.emit.kernel_statements`) writes each public function as a forward pass
(``t = _forward(params, data)``, every node, the objective included), then one call per
quantity it needs (``t["adj_p"] = _adj_p(t)``), then its own statements.  :func:`straighten`
rewrites the first-order public functions (:data:`STRAIGHT`) of a module as one straight-line
body over local variables:

* the forward pass and each quantity's function are inlined, every local renamed to a name of
  its own (``tmp``, ``tmp_2`` …: two inlined functions never share one), loads from ``t`` become
  the variables that hold them;
* statements whose values nothing reads are dropped (the objective's logsumexp in
  ``gradient``, in ``per_sample_gradient_norms`` …), with the comments that announced them;
* the norm of a per-sample gradient that is one outer product of two vectors per sample,
  ``sqrt(max(‖u_b‖² ‖w_b‖², 0))`` from two row-wise dot products, is written
  ``‖u_b‖ ‖w_b‖`` with ``torch.linalg.vector_norm`` (three ops, no (B, P) array).

A function the pass cannot follow — a loop, a store under a computed key, a quantity's function
that stores or runs anything — is left as it was (the printer prints it like the NumPy one):
the pass only ever removes dispatches, never changes what is computed beyond rounding.
The quantity functions ``_<id>(t)`` and ``_forward`` stay in the module for checking tools.
"""
from __future__ import annotations

import re
from dataclasses import fields

import sympy

from .kernel import Assign, Comment, Contraction, Elementwise, Function, Module, Return, Step
from .kernel_arrays import Call, Code, DictOf, Item, Key, Lib, MatMul, Mul, Num, Paren, Str, Subscript, Var

__all__ = ["STRAIGHT", "rowdot", "straighten"]

#: the public functions written straight-line (first order: where per-op dispatch dominates)
STRAIGHT = ("objective", "gradient", "per_sample_gradient", "gradient_factors", "per_sample_gradient_norms")

_T = object()  # the value of ``t`` in a scope: the per-call dict, held as variables


class _Refuse(Exception):
    """A function :func:`straighten` leaves as it is."""


def straighten(module: Module) -> Module:
    """``module`` with its :data:`STRAIGHT` functions inlined and pruned (module docstring)."""
    funcs = {it.name: it for it in module.items if isinstance(it, Function)}
    reserved = set(funcs) | {c.name for c in module.constants} | {"torch", "t", "params", "data", "vector",
                                                                     "_dtype", "_device"}
    items = []
    for it in module.items:
        if isinstance(it, Function) and it.name in STRAIGHT:
            try:
                it = _Inliner(funcs, reserved | set(it.args)).function(it)
            except _Refuse:
                pass
        items.append(it)
    return Module(module.header, module.constants, tuple(items))


def _node(x) -> bool:
    return hasattr(x, "__dataclass_fields__")


class _Inliner:
    """Inlines one public function (see :func:`straighten`)."""

    def __init__(self, funcs: dict, reserved: set):
        self.funcs = funcs
        self.taken = set(reserved)
        self.tkeys: dict = {}  # key of t → the variable holding it
        self.out: list = []

    def fresh(self, name: str) -> str:
        base = re.sub(r"\W", "_", name)
        base = base if base and not base[0].isdigit() else "v_" + base
        new, k = base, 1
        while new in self.taken:
            k += 1
            new = f"{base}_{k}"
        self.taken.add(new)
        return new

    # -- functions ----------------------------------------------------------------------
    def function(self, f: Function) -> Function:
        value = self.body(f.prologue + f.body, {})
        if value is None:
            raise _Refuse
        body = _prune(self.out + [Return(value)])
        return Function(f.name, f.args, f.doc, tuple(_fuse_backward(_norms(body))), (), f.frame)

    def callee(self, call, scope) -> Function:
        """The generated function a statement calls with ``t`` (or ``params, data``)."""
        f = self.funcs.get(call.fn) if isinstance(call, Call) else None
        if f is None:
            raise _Refuse
        return f

    def forward(self, call: Call, scope: dict) -> None:
        """Inline ``_forward(params, data)``: its variables become the keys of ``t``."""
        f = self.callee(call, scope)
        if self.tkeys or tuple(self.expr(a, scope) for a in call.args) != tuple(Var(a) for a in f.args):
            raise _Refuse
        value = self.body(f.prologue + f.body, {})
        if not isinstance(value, DictOf):
            raise _Refuse
        for k, v in value.items:
            if not isinstance(k, Str):
                raise _Refuse
            self.tkeys[k.text] = self.bind(k.text, v)

    def quantity(self, call, scope) -> object:
        """Inline ``_<id>(t)``: its value (an expression over the new variables)."""
        f = self.callee(call, scope)
        if f.args != ("t",) or len(call.args) != 1 or scope.get(getattr(call.args[0], "name", None)) is not _T:
            raise _Refuse
        self.out += [Comment(line) for line in f.doc.splitlines()]  # what it computes, as its docstring said
        value = self.body(f.prologue + f.body, {"t": _T})
        if value is None:
            raise _Refuse
        return value

    def bind(self, name: str, value) -> str:
        """The variable holding ``value``: itself if it is one, else a new one assigned it."""
        if isinstance(value, Var):
            return value.name
        new = self.fresh(name)
        self.out.append(Assign(Var(new), value))
        return new

    def body(self, stmts, scope: dict):
        """Append ``stmts`` (renamed in ``scope``) to the output; the value they return, or None."""
        for st in stmts:
            if isinstance(st, Comment):
                self.out.append(st)
            elif isinstance(st, Assign):
                self.assign(st, scope)
            elif isinstance(st, Elementwise):
                ops = tuple((s, self.expr(x, scope)) for s, x in st.operands)
                bc = None if st.broadcast is None else tuple(self.expr(x, scope) for x in st.broadcast)
                scope[st.target] = new = self.fresh(st.target)
                self.out.append(Elementwise(new, st.body, ops, bc))
            elif isinstance(st, Contraction):
                ops = tuple(self.expr(x, scope) for x in st.operands)
                steps = []
                for s in st.steps:
                    e = self.expr(s.expr, scope)
                    if s.target is not None:
                        scope[s.target] = self.fresh(s.target)
                    steps.append(Step(s.subscripts, e, None if s.target is None else scope[s.target]))
                self.out.append(Contraction(st.subscripts, ops, tuple(steps), self.expr(st.value, scope), st.note))
            elif isinstance(st, Return):
                return self.expr(st.value, scope)
            else:
                raise _Refuse
        return None

    def assign(self, st: Assign, scope: dict) -> None:
        target, value = st.target, st.value
        if isinstance(target, Var):
            if isinstance(value, Call) and value.fn == "_forward":
                self.forward(value, scope)
                scope[target.name] = _T
            elif self.t_item(value, scope):  # a load from t: the variable that holds it
                scope[target.name] = self.expr(value, scope).name
            else:
                value = self.expr(value, scope)
                scope[target.name] = new = self.fresh(target.name)
                self.out.append(Assign(Var(new), value))
        elif self.t_item(target, scope):
            key = target.key.text
            value = self.quantity(value, scope) if isinstance(value, Call) and value.fn in self.funcs \
                else self.expr(value, scope)
            self.tkeys[key] = self.bind(key, value)
        else:
            raise _Refuse

    @staticmethod
    def t_item(e, scope) -> bool:
        return isinstance(e, Item) and isinstance(e.obj, Var) and scope.get(e.obj.name) is _T and \
            isinstance(e.key, Str)

    # -- expressions ----------------------------------------------------------------------
    def expr(self, e, scope: dict):
        if isinstance(e, Var):
            new = scope.get(e.name, e.name)
            if new is _T:
                raise _Refuse  # t itself escapes (passed on, returned)
            return Var(new)
        if isinstance(e, (Key, Code)):  # a computed key; literal code may name any variable
            raise _Refuse
        if isinstance(e, Item):
            if isinstance(e.obj, Call) and e.obj.fn == "_forward":  # objective: _forward(params, data)["f"]
                self.forward(e.obj, {})
                scope = {**scope, "t": _T}
                e = Item(Var("t"), e.key)
            if self.t_item(e, scope):
                if e.key.text not in self.tkeys:
                    raise _Refuse
                return Var(self.tkeys[e.key.text])
        if isinstance(e, Call) and e.fn in self.funcs:
            raise _Refuse
        if not _node(e):
            return e
        return type(e)(*(self._map(getattr(e, f.name), scope) for f in fields(e)))

    def _map(self, v, scope):
        if isinstance(v, tuple):
            return tuple(self._map(x, scope) for x in v)
        return self.expr(v, scope) if _node(v) else v


# -- pruning ---------------------------------------------------------------------------------
def _reads(e, acc: set) -> set:
    """The variables expression (or statement part) ``e`` reads."""
    if isinstance(e, Var):
        acc.add(e.name)
    elif isinstance(e, tuple):
        for x in e:
            _reads(x, acc)
    elif _node(e):
        for f in fields(e):
            _reads(getattr(e, f.name), acc)
    return acc


def _uses(st) -> tuple[set, set]:
    """(variables ``st`` defines, variables it reads), as printed."""
    if isinstance(st, Assign):
        return {st.target.name}, _reads(st.value, set())
    if isinstance(st, Elementwise):
        return {st.target}, _reads(tuple(x for _, x in st.operands) + (st.broadcast or ()), set())
    if isinstance(st, Contraction):
        done = [s for s in st.steps if s.target is not None]
        return {s.target for s in done}, _reads(tuple(s.expr for s in done), set())
    if isinstance(st, Return):
        return set(), _reads(st.value, set())
    return set(), set()


def _prune(body: list) -> list:
    """``body`` without the statements whose values nothing reads (and their comments)."""
    live, kept, after = set(), [], True
    for st in reversed(body):
        defs, reads = _uses(st)
        if isinstance(st, Comment) or (isinstance(st, Contraction) and not defs):
            keep = after  # a comment or an einsum note goes with the statement it announces
        else:
            keep = isinstance(st, Return) or bool(defs & live)
            after = keep
        if keep:
            live |= reads
            kept.append(st)
    return kept[::-1]


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
    read once) → ``p = ‖u‖``, ``q = ‖w‖``, ``norm = p * q``: vector_norm keeps the (B,) result
    free of over- and underflow and saves two ops."""
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
        prod = body[defs[sq]].value if sq in defs and count.get(sq) == 1 else None
        if not (isinstance(prod, Mul) and len(prod.factors) == 2 and all(
                isinstance(f, Var) and f.name in steps and count.get(f.name) == 1 for f in prod.factors)):
            continue
        for f in prod.factors:
            k, j = steps[f.name]
            c = out[k]
            s = c.steps[j]
            norm = Lib("linalg.vector_norm", (_square(s.expr), Code("dim=-1")))
            new = c.steps[:j] + (Step(s.subscripts, norm, s.target),) + c.steps[j + 1:]
            out[k] = Contraction(c.subscripts, c.operands, new, c.value, False)
        out[defs[sq]] = Comment("one outer product per sample: its norm is the product of its factors' norms")
        out[i] = Assign(st.target, prod)
    return out


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
