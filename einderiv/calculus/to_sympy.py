"""A derivative block as a SymPy expression, for a user to continue in SymPy.

:func:`sympy_block` writes one block of a :class:`~einderiv.calculus.derivation.Derivation`
with SymPy's tensor types: every tensor is an ``IndexedBase`` (``W1[j, i]``),
every index an ``Idx`` with its range (``Idx('i', (0, 3))`` for a size 4), every
contraction a ``Sum`` over the summed indices, a Kronecker delta
``KroneckerDelta``, a function's derivative SymPy's own
(:class:`~einderiv.calculus.functions.FunctionTable`), a softmax
``exp(p[l])/Sum(exp(p[c]), c)``.  With ``inline=True`` (the default) every node and
derived quantity is replaced by its definition, so the expression depends on the
declared tensors only (inputs, labels, weights) and evaluates — with ``.doit()``
or ``lambdify`` — to the block's numbers; with ``inline=False`` it keeps the
named intermediates (``adj_z_v1[j]``, ``jac_p__z_v1[l, j]``), whose definitions
:func:`sympy_definitions` gives.

The block's axes are the block's own indices in order (``j, i`` of ``W1`` then
``s, t`` of the second parameter: the letters the documents show, numbered when
they repeat), available as :attr:`SympyBlock.axes`.

Example::

    >>> b = derive(load("derivations/paper_mlp.ein"), 2).sympy_block("W1", "W2")   # doctest: +SKIP
    >>> b.axes                                                                        # doctest: +SKIP
    (j, i, j2, i2)
    >>> b.evaluate({"x": x, "y": y, "W1": W1, "W2": W2, "U": U})                      # doctest: +SKIP
    array([...])    # shape (5, 4, 5, 5)
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import sympy
from sympy.printing.printer import Printer
from sympy.utilities.lambdify import implemented_function

from ..errors import UsageError
from ..frontend.builtins import ARG
from ..ir import Add, Apply, ArgMax, Const, Delta, Index, LogSumExp, Max, Name, Ones, Prod, Ref, Softmax, Window


_STEP = implemented_function("unit_step", lambda v: 0.5 * (np.sign(v) + 1.0))
_MAX = implemented_function("maximum", lambda *v: max(v))
_MIN = implemented_function("minimum", lambda *v: min(v))


def _weight(pick):
    """The weight of ``v`` among ``xs`` in ∂ max: ``1/m`` on each of the ``m`` extremes, else 0."""
    def weight(v, *xs):
        best = pick(xs)
        return float(v == best) / sum(x == best for x in xs)
    return weight


_ARG = {"max": implemented_function("argmax_weight", _weight(max)),
        "min": implemented_function("argmin_weight", _weight(min))}


def symbol_name(name) -> str:
    """A tensor's name as a Python identifier: ``W1``, ``h(3)`` → ``h_3``, ``adj[z_v1]`` → ``adj_z_v1``."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", str(name)).strip("_")
    return text if not text[:1].isdigit() else "t_" + text


@dataclass(frozen=True)
class SympyBlock:
    """A block as SymPy: ``expr`` with the free indices ``axes`` (in the block's order) and the
    declared tensors it reads (``IndexedBase`` by the name the network file gives)."""

    wrt: tuple
    expr: sympy.Expr
    axes: tuple[sympy.Idx, ...]
    tensors: Mapping[str, sympy.IndexedBase | sympy.Symbol]

    def evaluate(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """The block's numbers for one sample: ``values`` gives every declared tensor the
        expression reads (by name); the expression is compiled with ``lambdify``."""
        missing = [n for n in self.tensors if n not in values]
        if missing:
            raise UsageError(f"sympy block {','.join(map(str, self.wrt))} needs values for {', '.join(missing)}")
        bases = list(self.tensors.values())
        # piecewise functions opaque to lambdify (it rewrites them to conditions on sums' variables)
        expr = self.expr.replace(sympy.Heaviside, lambda *a: _STEP(a[0])).replace(sympy.Max, _MAX).replace(
            sympy.Min, _MIN)
        fn = sympy.lambdify(bases + list(self.axes), expr, modules=["numpy", "sympy"])
        arrays = [np.asarray(values[n], dtype=float) for n in self.tensors]
        shape = tuple(int(ix.upper) + 1 for ix in self.axes)
        out = np.empty(shape)
        for at in itertools.product(*(range(n) for n in shape)):
            out[at] = float(fn(*arrays, *at))
        return out


class SympyWriter(Printer):
    """IR → SymPy, one ``_print_<Node>`` per IR node (a printer whose output is SymPy objects).

    ``env`` maps an IR index to the SymPy index it is (free indices are given, summed ones
    get fresh ``Idx`` objects each time, so inlining a definition twice never captures one)."""

    printmethod = "_einderiv_sympy"
    _default_settings = {"derivation": None, "inline": True}

    def __init__(self, settings=None):
        super().__init__(settings)
        d = self._settings["derivation"]
        self.d = d
        self.inline = self._settings["inline"]
        self.sizes = d.network.sizes()
        self.defs: dict = {n.name: (n.indices, n.expr) for n in d.nodes}
        self.defs.update({q.name: (q.indices, q.expr) for q in (*d.quantities, *d.hvp_quantities)})
        self.count = itertools.count(1)
        self.env: dict[Index, sympy.Expr] = {}
        self.read: dict[str, sympy.IndexedBase] = {}  # declared tensors met, by name

    def idx(self, ix: Index, name: str | None = None) -> sympy.Idx:
        """A SymPy index for ``ix``: its range from the network's sizes."""
        size = sympy.sympify(ix.dim).subs(self.sizes)
        base = name or (re.sub(r"[^A-Za-z]", "", ix.name)[:1] or "i") + f"_{next(self.count)}"
        return sympy.Idx(base, (0, size - 1))

    def under(self, binds, build):
        """``build()`` with fresh SymPy indices for the indices an expression binds."""
        saved = dict(self.env)
        new = {ix: self.idx(ix) for ix in binds}
        self.env.update(new)
        try:
            return build(new)
        finally:
            self.env = saved

    def index(self, ix: Index) -> sympy.Expr:
        if ix not in self.env:
            raise KeyError(f"index {ix.name} is not in scope")
        return self.env[ix]

    # -- nodes ---------------------------------------------------------------
    def _print_Const(self, e: Const):
        return sympy.sympify(e.value)

    def _print_Ref(self, e: Ref):
        name = e.name
        if self.inline and name in self.defs:
            indices, body = self.defs[name]
            saved = dict(self.env)
            args = [self.index(ix) for ix in e.indices]
            self.env = dict(zip(indices, args))
            try:
                return self._print(body)
            finally:
                self.env = saved
        base = sympy.IndexedBase(symbol_name(name)) if e.indices else sympy.Symbol(symbol_name(name))
        if isinstance(name, Name) and name not in self.defs:
            self.read[str(name)] = base
        return base[tuple(self.index(ix) for ix in e.indices)] if e.indices else base

    def _print_Delta(self, e: Delta):
        return sympy.KroneckerDelta(self.index(e.a), self.index(e.b))

    def _print_Ones(self, e: Ones):
        return sympy.Integer(1)

    def _print_Window(self, e: Window):
        tap = e.dilation * self.index(e.a) if e.a is not None else 0
        return sympy.KroneckerDelta(self.index(e.u), e.stride * self.index(e.t) + tap + e.offset)

    def _print_Prod(self, e: Prod):
        def build(new):
            body = sympy.Mul(*(self._print(f) for f in e.factors))
            return sympy.Sum(body, *((s, s.lower, s.upper) for s in new.values())) if new else body
        return self.under(e.bound, build)

    def _print_Add(self, e: Add):
        return sympy.Add(*(self._print(t) for t in e.terms))

    def _print_Apply(self, e: Apply):
        f = self.d.table.derivative(e.fn.name, e.fn.deriv) if any(e.fn.deriv) else self.d.table.body(e.fn.name)
        return f.subs(dict(zip(ARG, (self._print(a) for a in e.args))), simultaneous=True)

    def _print_Softmax(self, e: Softmax):
        top = sympy.exp(self._print(e.arg))

        def bottom(new):
            return sympy.Sum(sympy.exp(self._print(e.arg)), (new[e.over], new[e.over].lower, new[e.over].upper))
        return top / self.under((e.over,), bottom)

    def members(self, e: Max | ArgMax) -> list:
        """``e.arg`` at each value of ``e.over`` (a maximum is not a SymPy sum: it lists them)."""
        def build(new):
            c = new[e.over]
            if not c.upper.is_Integer:
                raise UsageError(f"a sympy block writes {e.kind}_{e.over.name} out term by term: it needs "
                                 "concrete sizes")
            body = self._print(e.arg)
            return [body.subs(c, v) for v in range(int(c.upper) + 1)]
        return self.under((e.over,), build)

    def _print_MatDet(self, e):
        raise UsageError(f"a sympy block cannot write {e.kind}(...) (a matrix function); use the generated "
                         "code, or einderiv derive for the formula")

    def _print_Inv(self, e):
        raise UsageError("a sympy block cannot write inv(...) (a matrix function); use the generated "
                         "code, or einderiv derive for the formula")

    def _print_Max(self, e: Max):
        return (sympy.Max if e.kind == "max" else sympy.Min)(*self.members(e))

    def _print_ArgMax(self, e: ArgMax):
        return _ARG[e.kind](self._print(e.arg), *self.members(e))

    def _print_LogSumExp(self, e: LogSumExp):
        def build(new):
            c = new[e.over]
            return sympy.log(sympy.Sum(sympy.exp(self._print(e.arg)), (c, c.lower, c.upper)))
        return self.under((e.over,), build)


def block_axes(derivation, block, writer: SympyWriter) -> tuple[sympy.Idx, ...]:
    """The block's axes as SymPy indices named by the parameters' declared letters (``j, i``;
    ``j2, i2`` for the second parameter when they repeat)."""
    names: list[str] = []
    for k, w in enumerate(block.wrt):
        for ix in derivation.network.tensor(w).indices:
            name = re.sub(r"[^A-Za-z0-9]", "", ix.name) or "i"
            names.append(name if name not in names else f"{name}{k + 1}")
    return tuple(writer.idx(ix, n) for ix, n in zip(block.indices, names))


def sympy_block(derivation, wrt, inline: bool = True) -> SympyBlock:
    """The block ``∂^k f/∂wrt…`` as a :class:`SympyBlock` (see the module docstring)."""
    key = tuple(Name(w) if isinstance(w, str) else w for w in wrt)
    if key not in derivation.blocks:
        have = ", ".join(",".join(map(str, k)) for k in derivation.blocks)
        raise UsageError(f"no block {','.join(map(str, key))}: the derivation has {have}")
    block = derivation.blocks[key]
    writer = SympyWriter({"derivation": derivation, "inline": inline})
    axes = block_axes(derivation, block, writer)
    writer.env = dict(zip(block.indices, axes))
    expr = writer._print(block.expr)
    return SympyBlock(key, expr, axes, dict(sorted(writer.read.items())))


def sympy_definitions(derivation) -> dict[sympy.IndexedBase, tuple[tuple[sympy.Idx, ...], sympy.Expr]]:
    """Each node and derived quantity as SymPy: ``IndexedBase → (its indices, its definition)``,
    the definitions written in the named intermediates (what ``inline=False`` leaves named)."""
    writer = SympyWriter({"derivation": derivation, "inline": False})
    out = {}
    for name, (indices, body) in writer.defs.items():
        axes = tuple(writer.idx(ix) for ix in indices)
        writer.env = dict(zip(indices, axes))
        out[sympy.IndexedBase(symbol_name(name))] = (axes, writer._print(body))
    return out
