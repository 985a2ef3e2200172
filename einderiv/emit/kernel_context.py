"""What code generation knows about one derivation: sizes, identifiers, which tensors are batched.

A :class:`Context` is built once per generated module and read by the builder, the passes and
the lowering: the concrete sizes (validated), the module-wide identifier of every tensor and
quantity, whether each tensor carries the batch axis, which node already holds ``fn(arg)``
(so ``tanh'`` reuses ``tanh``), and the display of formulas in comments.

Tensors written with loop variables (``h(k-1)``) or relative to a run-time depth (``v(n)``)
are looked up through a representative member: a lowering keeps an *environment* (loop
variable → the label of its first iteration, depth → the reference depth).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..errors import SIZE, Argument, InternalError, ShapeError, UsageError
from ..ir import Apply, Expr, Index, Kind, Quantity, Ref, Sym, TensorName, labels_of, map_names, names_in, refs
from .kernel_arrays import ArrayExpr
from .kernel_names import RESERVED, Letters, Namer, formula, local_hint, quantity_identifier


@dataclass(frozen=True)
class Val:
    """A lowered array: expression ``expr`` with axes ``idx`` (after the batch axis if ``batched``)."""

    expr: ArrayExpr
    idx: tuple[Index, ...]
    batched: bool


def has_symbols(name: TensorName) -> bool:
    """Whether a name carries a symbolic label (a loop variable or the depth)."""
    return any(isinstance(lab, Sym) for n in names_in(name) for lab in n.labels)


def concretize(name: TensorName, env: dict) -> TensorName:
    """``name`` with each symbolic label replaced by its value in ``env`` (``h(k-1)``, k=3 → ``h(2)``)."""
    def one(n):
        return n.relabel(lambda lab: env[lab.symbol] + lab.offset if isinstance(lab, Sym) else lab)

    return map_names(name, one)


def _shift(name: TensorName, ref: int, symbol: str) -> TensorName:
    return map_names(name, lambda n: n.relabel(lambda lab: Sym(symbol, lab - ref) if isinstance(lab, int) else lab))


def direction(derivation) -> dict:
    """The HVP's direction, one tensor ``dir[θ]`` per parameter θ (the ``vector`` argument)."""
    return {Quantity(Kind.DIR, (p.name,)): p.name for p in derivation.network.params}


def _identifiers(derivation) -> tuple[dict, frozenset]:
    names = Namer(frozenset(RESERVED))
    ident: dict = {}
    for t in derivation.network.params + derivation.network.data:
        ident[t.name] = names.new(str(t.name))
    for n in derivation.nodes:
        ident.setdefault(n.name, names.new(str(n.name)))
    for q in derivation.quantities + derivation.hvp_quantities:
        ident[q.name] = names.new(quantity_identifier(q.name))
    for q in direction(derivation):
        ident[q] = names.new(quantity_identifier(q))
    return ident, frozenset(names.taken | names.fixed)


def identifiers(derivation) -> dict[TensorName, str]:
    """The Python identifier of every tensor, node and quantity in the module generated for
    ``derivation``: a tensor's variable; a quantity ``q``'s function is ``"_" + identifiers[q]``
    and, in the functions that call it, its key in the dict ``t`` is ``identifiers[q]``."""
    return _identifiers(derivation)[0]


class Context:
    """Sizes, identifiers and batch flags of one derivation's generated module."""

    def __init__(self, derivation, sizes: dict[str, int] | None = None, literal: bool = False,
                 depth: tuple[str, int] | None = None):
        self.d = derivation
        self.net = derivation.network
        self.table = derivation.table
        self.literal = literal
        self.sizes = self._sizes(sizes or {})
        self._dims: dict = {}
        self.ident, self.globals = _identifiers(derivation)
        #: the HVP's direction, one tensor per parameter (the ``vector`` argument)
        self.direction = direction(derivation)
        #: the key of each tensor in the dict ``t`` of unrolled functions
        self.key = {n: (self.ident[n] if isinstance(n, Quantity) else str(n)) for n in self.ident}
        self.params = [t.name for t in self.net.params]
        self.shape = {t.name: tuple(self.dim(i) for i in t.indices) for t in self.net.tensors}
        self.first_data = self.net.data[0].name if self.net.data else None
        #: loop variables; with a run-time depth (symbol, reference depth) its symbol too
        self.loop_vars = tuple(s if s not in self.globals else "_" + s for s in ("k", "m"))
        self.depth = depth
        self.symbols = self.loop_vars + ((depth[0],) if depth else ())
        self.batched = self._batched()
        self.applied = self._applied()
        self._needed: dict = {}
        self._symbolic: dict = {}
        #: whether ``hessian`` writes its blocks into one P × P buffer (a printer whose arrays
        #: are written in place: NumPy; :mod:`einderiv.emit.kernel_buffer`)
        self.buffer = False
        #: the public functions the column pass writes by loops (:mod:`einderiv.emit.columns`): not built
        self.by_columns: frozenset = frozenset()

    # -- sizes ---------------------------------------------------------------
    def _sizes(self, given: dict) -> dict:
        known = [n for n, _ in self.net.dims]
        for name in given:
            if name not in known:
                raise UsageError(f"{{0}} names no dimension '{name}'; the network declares {', '.join(known)}",
                                 arguments=(Argument("sizes", name, given[name]),))
        used: set = set()
        for t in self.net.tensors:
            for ix in t.indices:
                used |= sympy.sympify(ix.dim).free_symbols
        for n in self.d.nodes:
            for ix in n.indices:
                used |= sympy.sympify(ix.dim).free_symbols
        out = {}
        for name, size in self.net.dims:
            size = given.get(name, size)
            sym = sympy.Symbol(name, positive=True, integer=True)
            if size is None and sym in used:
                raise ShapeError(f"size of '{name}' is not given; pass {{0}}",
                                 arguments=(Argument("sizes", name, SIZE),))
            if size is not None:
                out[sym] = sympy.Integer(size)
        return out

    def number(self, v) -> int | float:
        """A scalar with every size substituted: an int, or else a float."""
        v = sympy.sympify(v)
        if not v.is_number:
            v = v.xreplace(self.sizes)
        if v.free_symbols:
            raise ShapeError(f"size of '{sorted(map(str, v.free_symbols))[0]}' is not given")
        return int(v) if v.is_Integer else float(v)

    def dim(self, ix: Index) -> int:
        if ix.dim not in self._dims:
            self._dims[ix.dim] = int(self.number(ix.dim))
        return self._dims[ix.dim]

    # -- tensors ---------------------------------------------------------------
    def _batched(self) -> dict:
        """Whether each tensor carries the batch axis: data and every node or quantity that reads
        a batched tensor (the order of the derivation is a dependency order)."""
        out = {t.name: not t.is_param for t in self.net.tensors}
        out.update({q: False for q in self.direction})
        for name, expr in [(n.name, n.expr) for n in self.d.nodes] + \
                [(q.name, q.expr) for q in self.d.quantities + self.d.hvp_quantities]:
            out[name] = any(out.get(r.name, False) for r in refs(expr))
        return out

    def _applied(self) -> dict:
        """(function, argument) → the node defined as that elementwise call (``("tanh", z_v1)`` →
        ``v1``), also written relative to nearby labels with each loop variable (``z_h(k+1)`` →
        ``h(k+1)``) and to a run-time depth (``z_h(T)`` → ``h(T)``), so that a derivative reuses the
        node's value inside loops and at the last step too."""
        out = {(n.expr.fn.name, n.expr.args[0].name): n.name for n in self.d.nodes
               if isinstance(n.expr, Apply) and len(n.expr.args) == 1 and isinstance(n.expr.args[0], Ref)
               and n.expr.args[0].indices == n.indices and n.expr.fn.deriv == (0,)}
        for (fn, arg), node in list(out.items()):
            for lab in labels_of(node)[:1]:
                for sym in self.loop_vars:
                    for ref in range(lab - 2, lab + 3):
                        out[(fn, _shift(arg, ref, sym))] = _shift(node, ref, sym)
                if self.depth and abs(lab - self.depth[1]) <= 2:  # and relative to a run-time depth: h(T)
                    out[(fn, _shift(arg, self.depth[1], self.depth[0]))] = _shift(node, self.depth[1], self.depth[0])
        return out

    def symbolic(self, name: TensorName) -> bool:
        """:func:`has_symbols`, remembered (asked for every tensor a lowering reads)."""
        known = self._symbolic.get(name)
        if known is None:
            known = self._symbolic[name] = has_symbols(name)
        return known

    def batched_member(self, name: TensorName) -> bool:
        """Whether a family member (or any tensor with integer labels) carries the batch axis."""
        return self.batched.get(name, False)

    def is_batched(self, name: TensorName, env: dict) -> bool:
        if name in self.batched:
            return self.batched[name]
        return self.batched[concretize(name, env)]

    def bind_arguments(self, arguments: dict, applied: dict) -> None:
        """Make the placeholder tensors of a shared function (:mod:`einderiv.emit.share`) known:
        ``arguments`` maps each to (its argument's name, whether it carries the batch axis);
        ``applied`` maps (function, placeholder argument) to the placeholder holding that call."""
        for name, (ident, batched) in arguments.items():
            self.ident[name] = ident
            self.batched[name] = batched
        self.applied.update(applied)

    def known_value(self, e: Apply) -> TensorName | None:
        """The node already holding ``fn(args)`` when ``e`` is a derivative of that same
        elementwise call of one tensor (same axes), so its value need not be recomputed."""
        if len(e.args) != 1 or not isinstance(e.args[0], Ref) or e.args[0].indices != e.free:
            return None
        name = self.applied.get((e.fn.name, e.args[0].name))
        return name if name is not None and name != self.net.objective else None

    def needed(self, exprs) -> list:
        """Quantities the expressions refer to, transitively, in dependency order."""
        key = tuple(map(id, exprs))  # the derivation's own expressions, alive as long as self
        if key not in self._needed:
            self._needed[key] = self._closure(exprs)
        return self._needed[key]

    def _closure(self, exprs) -> list:
        defs = {q.name: q for q in self.d.quantities + self.d.hvp_quantities}
        need: set = set()
        stack = [r.name for e in exprs for r in refs(e)
                 if isinstance(r.name, Quantity) and r.name not in self.direction]
        while stack:
            q = stack.pop()
            if q not in need:
                if q not in defs:
                    raise InternalError(f"quantity {q} is used but not defined")
                need.add(q)
                stack.extend(r.name for r in refs(defs[q].expr)
                             if isinstance(r.name, Quantity) and r.name not in self.direction)
        return [q for q in self.d.quantities + self.d.hvp_quantities if q.name in need]

    # -- names and formulas -------------------------------------------------------
    def name(self, n: TensorName) -> str:
        """The identifier of a tensor in generated code (``h_km1`` for ``h(k-1)``)."""
        if self.symbolic(n):
            return local_hint(n, self.symbols)
        return self.ident.get(n) or quantity_identifier(n)

    def formula(self, e: Expr, letters: Letters) -> str:
        return formula(e, letters, self.name)

    def show(self, lhs, indices, expr: Expr) -> str:
        """``lhs[j,i] = <formula>`` (comments and docstrings)."""
        L = Letters(indices)
        return str(lhs) + L.subscripts(indices) + " = " + self.formula(expr, L)

    def header(self, omit: str | None = None, sizes_prefix: str = "") -> str:
        """The module docstring's text: the network, objective, order and sizes."""
        defs = ["    " + self.show(d.name, d.indices, d.expr) for d in self.net.definitions]
        sizes = ", ".join(f"{n}={self.sizes[sympy.Symbol(n, positive=True, integer=True)]}"
                          for n, _ in self.net.dims
                          if sympy.Symbol(n, positive=True, integer=True) in self.sizes and n != omit)
        return "\n".join([
            f"Generated by einderiv from {self.net.path} — do not edit.",
            "",
            "Network (per sample; Σ_i sums over i):",
            *defs,
            "",
            f"Objective: {self.net.objective}.  Derivative order: {self.d.order}.  "
            f"{sizes_prefix}Sizes: {sizes}.",
            "Arrays in `data` and every per-sample result carry a leading batch axis B;",
            "parameters do not.  Parameter axes follow their declaration order."])
