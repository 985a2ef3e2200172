"""The summation convention: the right side of one definition → IR with explicit sums.

With L the indices on a definition's left side, an index that occurs twice in
one product and is not in L is summed; one that occurs once, or is in L (the
elementwise product ``g^j = a^j b^j``), stays free; three occurrences outside L
are an error.  Function arguments and parenthesised sums are sub-expressions
with their own free indices, computed bottom-up with the same L.  A sum's terms
may leave out free indices of the widest term (they are broadcast).  Every index
takes its size from the tensor axis it sits on, and two occurrences with
different sizes are a :class:`ShapeError`.  Also here: index arithmetic
(``x^{2t+a}``: a window), reductions (``sum_k``, ``mean_k``, ``softmax_k``), a sum
over a family label (``sum_t(squared_error(p(t), y(t)))``), and the built-in
objectives.

:class:`Scope` reads the declarations, shapes and families the checker has
gathered (:class:`~einderiv.frontend.context.Context`); every method returns the
IR and ``{free index name: location of its first occurrence}``.

Example:
    >>> from einderiv.frontend.check import load
    >>> str(load("t.ein", "dims n = 3\ninput x^i : n\nf = sum_i(x^i)\n").definition("f").expr)  # doctest: +SKIP
"""
from __future__ import annotations

import re

import sympy

from .. import ir
from . import syntax as S
from ..errors import EinderivError, FunctionError, IndexError_, Location, ShapeError
from ..ir import Name
from .builtins import ARG, BUILTINS, OBJECTIVES
from .context import IDENT, PUBLIC_BUILTINS, REDUCTION, REDUCTIONS, Context, fmt, number
from .families import Member, to_label
from .matrices import MATRIX_FUNCTIONS, matrix_factor
from .network import dim_symbol
from .objectives import objective_expr

_MINUS_ONE = ir.Const(sympy.Integer(-1))
#: index names that read as the batch (per-sample notation has none): a reduction over one that
#: nothing carries is a batch statistic
BATCH_NAMES = frozenset({"b", "batch", "bs", "sample", "samples"})

#: names a user may expect to be reductions; a call of one (``max_j(…)``, ``logsumexp(…)``) is
#: told which reductions there are
REDUCTION_LIKE = ("max", "min", "logsumexp", "prod", "argmax", "argmin", "norm", "std", "var")


def all_zero(c: Context, node: S.Expr) -> IndexError_:
    """The error for an expression every term of which uses a zero member (``h(0) = 0``)."""
    used = {n.name for n in S.walk(node) if isinstance(n, S.Call)}
    names = ", ".join(sorted(str(z) for z in c.fam.zero if z.base in used))
    if not names:  # `p^j = 0 W^j_i x^i`: a product with the number 0
        return IndexError_("this expression is identically zero: every term is multiplied by the number 0; "
                           "expected an expression with a nonzero term", c.loc(node))
    return IndexError_(f"this expression is identically zero: every term uses a zero member ({names}); "
                       "drop it or give the member a value", c.loc(node))


class Scope:
    """The indices of one definition: one :class:`ir.Index` per name."""

    def __init__(self, context: Context, member: Member):
        self.c = context
        a = member.node
        self.env = dict(member.env)  # range variables: {'t': 3} inside h(3)
        self.name = member.name
        self.L = {ix.name for ix in a.indices}
        self.index: dict[str, ir.Index] = {}
        self.origin: dict[str, tuple[Name | str, int, sympy.Expr]] = {}  # index → (tensor, axis, size)
        self.written = {ix.name for ix in a.indices} | {
            ix.name for n in S.walk(a.expr) if isinstance(n, (S.Use, S.Call)) for ix in n.indices}
        #: sizes of plain indices known from any use in the definition (for index arithmetic)
        self.known: dict[str, sympy.Expr] = {}
        for n in S.walk(a.expr):
            name = Name(n.name) if isinstance(n, S.Use) else self.member_of(n)
            if name in context.shapes and len(context.shapes[name].dims) == len(n.indices):
                for ix, dim in zip(n.indices, context.shapes[name].dims):
                    if not ix.terms:
                        self.known.setdefault(ix.name, dim)

    def member_of(self, n) -> Name | None:
        """The member name of a family use ``h(t-1)`` (None if it is something else or out of range)."""
        if not isinstance(n, S.Call) or n.name not in self.c.fam.members:
            return None
        try:
            return self.c.fam.resolve(n, self.env)
        except EinderivError:
            return None

    # Each method returns (IR, {free index name: location of its first occurrence}).
    def expr(self, node: S.Expr):
        if isinstance(node, S.Sum):
            return self.sum(node)
        return self.product([("expr", node)], node)

    def sum(self, node: S.Sum):
        """A sum.  A term may leave out some of the free indices the widest term carries
        (``1 - z^j``, ``K^o_a x^{t+a} + b^o``): it is broadcast along them.  Terms whose
        index sets are not nested (``a^j + b^k``) are an error."""
        terms, first = [], None
        for negate, t in S.flat_sum(node):
            factors = ([("neg", None)] if negate else []) + S.flat_product(t)
            e, locs = self.product(factors, t)
            first = locs if first is None else first
            if not ir.is_zero(e):  # a product with a zero member (h(0) = 0) drops out
                terms.append((e, locs, t))
        if not terms:
            raise all_zero(self.c, node)
        widest = max((locs for _, locs, _ in terms), key=len)
        for _, locs, t in terms:
            if not set(locs) <= set(widest):
                raise IndexError_(f"the terms of a sum have different free indices: {fmt(widest)} and "
                                  f"{fmt(locs)}; every term must carry the same free indices, or a "
                                  "subset of another term's (it is then broadcast along the rest)",
                                  self.c.loc(t))
        out = tuple(self.index[name] for name in widest)
        exprs = []
        for e, locs, _ in terms:
            missing = tuple(ix for ix in out if ix.name not in locs)
            exprs.append(ir.Prod((e,) + tuple(ir.Ones(ix) for ix in missing), out) if missing else e)
        return (ir.Add(tuple(exprs)) if len(exprs) > 1 else exprs[0]), widest

    def groups(self, factors) -> list:
        """Splice each parenthesised product into the product around it, unless an index repeats
        inside it and occurs outside too: ``U^j_k (r^k h^k)`` is U contracted with the elementwise
        product r∘h (k held inside, then summed once outside), ("held", node, indices)."""
        out = []
        for k, (kind, n) in enumerate(factors):
            if kind != "group":
                out.append((kind, n))
                continue
            inside = S.direct_indices(n)
            outside = {i for j, (_, m) in enumerate(factors) if j != k and m is not None
                       for i in S.direct_indices(m)}
            held = {i for i in inside if inside.count(i) >= 2 and i in outside and i not in self.L}
            out += [("held", n, held)] if held else self.groups(S.flat_product(n))
        return out

    def product(self, factors, node: S.Expr):
        if len(factors) == 1 and factors[0][0] == "expr":
            factors = S.flat_product(factors[0][1])
        factors = self.groups(factors)
        irs: list[ir.Expr] = []
        occ: dict[str, list[Location]] = {}
        zero = False
        for kind, n, *held in factors:
            if kind == "neg":
                irs.append(_MINUS_ONE)
                continue
            if kind == "held":
                saved, self.L = self.L, self.L | held[0]
                try:
                    e, locs = self.product(S.flat_product(n), n)
                finally:
                    self.L = saved
                seen = list(locs.items())
            else:
                e, seen = self.reciprocal(n) if kind == "recip" else self.factor(n)
            zero = zero or ir.is_zero(e)
            irs.append(e)
            for name, where in seen:
                occ.setdefault(name, []).append(where)
        for name, where in occ.items():
            if len(where) >= 3 and name not in self.L:
                taken = set(self.index) | set(self.L) | set(occ)
                fresh = next(c for c in "klmnpqrstuvwabcdefghij" + "".join(f"k{d}" for d in range(99))
                             if c not in taken)
                raise IndexError_(f"index '{name}' appears {len(where)} times in one product; an index may "
                                  f"appear at most twice (then it is summed) unless it is on the left side "
                                  f"of {self.name}; for a second sum, rename one pair: '{fresh}' is free",
                                  where[2])
        if zero:
            return ir.ZERO, {n: w[0] for n, w in occ.items() if len(w) == 1 or n in self.L}
        out = tuple(self.index[n] for n, w in occ.items() if len(w) == 1 or n in self.L)
        if len(irs) == 1 and irs[0].free == out:
            e = irs[0]
        else:
            e = ir.Prod(tuple(irs), out)
        return e, {ix.name: occ[ix.name][0] for ix in out}

    def factor(self, n: S.Expr):
        """IR of one factor and its index occurrences [(name, location)]."""
        if isinstance(n, S.Call) and n.name in MATRIX_FUNCTIONS:  # logdet(S), inv(S)^i_j
            return matrix_factor(self, n)
        if isinstance(n, S.Call) and n.name in self.c.fam.members:  # h(t-1)^i: a family member
            name = self.c.fam.resolve(n, self.env)
            if name in self.c.fam.zero:
                return ir.ZERO, [(ix.name, self.c.loc(ix)) for ix in n.indices]
            return self.use(name, n)
        if isinstance(n, S.Use) and (Name(n.name) not in self.c.shapes  # a dimension used as a number
                                     or (not n.indices and n.name in self.c.sizes)):
            if n.indices:
                raise IndexError_(f"'{n.name}' is a dimension, a number: it takes no indices (write "
                                  f"{n.name}, not {S.written(n.name, n.indices)})", self.c.loc(n.indices[0]))
            return ir.Const(dim_symbol(n.name)), []
        if isinstance(n, S.Use):
            return self.use(Name(n.name), n)
        if isinstance(n, S.Number):
            return ir.Const(number(n.text)), []
        if isinstance(n, S.Call):
            e, locs = self.call(n)
        else:  # a parenthesised sum
            e, locs = self.expr(n)
        return e, list(locs.items())

    def reciprocal(self, n: S.Expr):
        """IR of ``1 / n`` and its index occurrences: elementwise over the free indices of ``n``
        (``z^j / s^j``), which then count in the product like any factor's."""
        if isinstance(n, S.Number):
            v = number(n.text)
            if v == 0:
                raise ShapeError("division by zero", self.c.loc(n))
            return ir.Const(1 / v), []
        e, locs = self.expr(n)
        if ir.is_zero(e):
            raise ShapeError("division by zero", self.c.loc(n))
        if isinstance(e, ir.Const):  # a size or a function of sizes: `/ n`, `/ sqrt(d)`
            return ir.Const(1 / e.value), []
        return ir.Apply(ir.Fn("reciprocal", (0,)), (e,)), list(locs.items())

    def use(self, name: Name, node: S.Use | S.Call):
        """A tensor written with indices (``W^j_i``, ``h(t-1)^i``): its IR and index occurrences."""
        return self.ref(name, node), [(i, self.c.loc(ix)) for ix in node.indices
                                      for i in ([t for _, t in ix.terms] if ix.terms else [ix.name])]

    def ref(self, name: Name, use: S.Use | S.Call) -> ir.Expr:
        shape = self.c.shapes[name]
        if len(use.indices) != len(shape.dims):
            n = len(shape.dims)
            raise IndexError_(f"wrong number of indices for {name}: its {shape.kind} {shape.written} "
                              f"(line {shape.line}) has {n}, this use has {len(use.indices)}", self.c.loc(use))
        if not any(ix.terms for ix in use.indices):
            return ir.Ref(name, tuple(self.bind(ix, dim, name, k + 1)
                                      for k, (ix, dim) in enumerate(zip(use.indices, shape.dims))))
        indices, windows, out = [], [], []
        for k, (ix, dim) in enumerate(zip(use.indices, shape.dims)):
            if not ix.terms:
                indices.append(self.bind(ix, dim, name, k + 1))
                out.append(indices[-1])
                continue
            w = self.window(name, ix, dim, k + 1)
            indices.append(w.u)
            windows.append(w)
            out += [ix for ix in (w.t, w.a) if ix is not None]
        return ir.Prod(tuple(windows) + (ir.Ref(name, tuple(indices)),), ir.unique(out))

    def window(self, tensor: Name, ix: S.Idx, dim: sympy.Expr, axis: int) -> ir.Window:
        """``x^{s·t+d·a+c}`` on an axis of size N: S^u_{t,a} x^u.  Without padding, t runs over the
        positions whose every read is inside the axis (valid padding); ``padded x`` makes reads
        outside zero and gives t the axis's own positions, floor((N − 1)/s) + 1."""
        shown, loc = f"{tensor}^{{{ix.name}}}", self.c.loc(ix)
        names = [name for _, name in ix.terms]
        if len(names) > 2 or len(set(names)) != len(names):
            raise IndexError_(f"index arithmetic in {shown} takes a position and at most one offset index, "
                              "each once, and a constant; expected e.g. x^{t+a}, x^{t-1}, x^{2t+3a-1}", loc)
        if len(names) == 1:
            pos = 0
        else:  # the offset is the index whose size another tensor gives (the kernel's K_a)
            sized = [k for k, name in enumerate(names) if name in self.known]
            pos = 0 if len(sized) != 1 else 1 - sized[0]
        stride, t = ix.terms[pos]
        if stride < 1:
            raise ShapeError(f"the stride in {shown} must be a positive integer, got {stride}", loc)
        dil, a = ix.terms[1 - pos] if len(names) == 2 else (1, None)
        if dil == 0:
            raise ShapeError(f"the dilation of '{a}' in {shown} is 0; expected a nonzero integer (1: "
                             "neighbouring taps, 2: every second position, -1: taps backwards)", loc)
        if a is not None and a not in self.known and stride == 1:
            raise ShapeError(f"the offset '{a}' in {shown} has no size: no other tensor in the definition "
                             f"carries '{a}'; expected one that does, as the kernel does in "
                             f"K_{a} {tensor}^{{{t}+{a}}}, or a stride, whose windows it then spans "
                             f"(max_{a}({tensor}^{{2{t}+{a}}}))", loc)
        # an offset nothing else sizes spans the stride: non-overlapping windows (pooling)
        A = sympy.Integer(1) if a is None else self.known.get(a, sympy.Integer(stride))
        span = dil * (A - 1)
        padded = tensor.base in self.c.padded
        if padded:
            count = dim if stride == 1 else sympy.floor((dim - 1) / stride) + 1
        else:
            first = ix.const + sympy.Min(0, span)
            value = self.c.value(first)
            if (first.is_nonnegative is not True) and (value is None or value < 0):
                at = self.c.show(first) if first.free_symbols else str(first)
                raise ShapeError(f"{shown} reads {tensor} axis {axis} at position {at} (t = 0), outside the axis, "
                                 f"and {tensor} is not padded; expected reads inside the axis, or "
                                 f"'padded {tensor.base}' for zeros outside it", loc)
            count = sympy.floor((dim - 1 - ix.const - sympy.Max(0, span)) / stride) + 1
            value = self.c.value(count)
            if value is not None and value < 1:
                raise ShapeError(f"{tensor} axis {axis} has size {self.c.show(dim)} but the window {shown} "
                                 f"spans {self.c.show(sympy.Abs(span) + 1 + abs(ix.const))}: no valid "
                                 f"position is left (valid padding needs the window inside the axis; "
                                 f"'padded {tensor.base}' reads zeros outside it)", loc)
        if t in self.index and not self.c.same(self.index[t].dim, count):
            t0, a0, d0 = self.origin[t]
            rule = "zero padding" if padded else "valid padding"
            raise ShapeError(f"position sizes disagree: {shown} has {self.c.show(count)} positions '{t}' "
                             f"({rule}) but {t0} axis {a0} gives '{t}' size {self.c.show(d0)}; expected one "
                             "size for a position", loc)
        if t not in self.index:
            self.index[t] = ir.Index(t, count)
            self.origin[t] = (shown, axis, count)
        a_ix = None if a is None else self.bind(S.Idx(ix.line, ix.column, a, ix.up), A, shown, axis)
        u = ir.fresh(dim, "u")
        return ir.Window(u, self.index[t], a_ix, stride, dil, ix.const)

    def bind(self, ix: S.Idx, dim: sympy.Expr, tensor: str, axis: int) -> ir.Index:
        """The scope's Index for ``ix``, checking it has the same size everywhere."""
        self.c.ident(ix.name, "index", ix)
        if ix.name not in self.index:
            self.index[ix.name] = ir.Index(ix.name, dim)
            self.origin[ix.name] = (tensor, axis, dim)
        else:
            t0, a0, d0 = self.origin[ix.name]
            if not self.c.same(d0, dim):
                raise ShapeError(f"size mismatch for index '{ix.name}': {t0} axis {a0} has size "
                                 f"{self.c.show(d0)} but {tensor} axis {axis} has size {self.c.show(dim)}",
                                 self.c.loc(ix))
        return self.index[ix.name]

    def call(self, n: S.Call):
        if n.name in OBJECTIVES:
            return self.objective_call(n), {}
        arity = 1 if n.name in BUILTINS else self.c.arity.get(n.name)
        if arity is None and REDUCTION.match(n.name):
            return self.reduction(n, *REDUCTION.match(n.name).groups())
        if arity is None:
            raise self.unknown_call(n)
        if len(n.args) != arity:
            raise FunctionError(f"function '{n.name}' takes {arity} argument{'' if arity == 1 else 's'}, "
                                f"got {len(n.args)}", self.c.loc(n))
        args, locs = [], {}
        for a in n.args:
            e, l = self.expr(a)
            if ir.is_zero(e):
                raise all_zero(self.c, a)
            args.append(e)
            for k, v in l.items():
                locs.setdefault(k, v)
        if all(isinstance(a, ir.Const) for a in args):  # sqrt(d): a number, not a node
            body = self.c.bodies.get(n.name, BUILTINS.get(n.name))
            return ir.Const(body.subs({ARG[k]: a.value for k, a in enumerate(args)}, simultaneous=True)), {}
        return ir.Apply(ir.Fn(n.name, (0,) * arity), tuple(args)), locs

    def unknown_call(self, n: S.Call) -> FunctionError:
        """An unknown call; a reduction written without its index (``softmax(…)``) or one that does
        not exist (``max_j(…)``) is told which reduction to write."""
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)_([A-Za-z][A-Za-z0-9]*)", n.name)
        word, k = (m.group(1), m.group(2)) if m else (n.name, self.only_index(n))
        which = ", ".join(f"{r}_{k}(...)" for r in REDUCTIONS)
        if not m and word in REDUCTIONS:
            return FunctionError(f"'{word}' reduces over an index, which goes after '_': write {word}_{k}(...) "
                                 f"(the reductions are {which})", self.c.loc(n))
        if word in REDUCTION_LIKE:
            return FunctionError(f"unknown reduction '{n.name}'; the reductions are {which}, with the index "
                                 "after '_'", self.c.loc(n))
        known = ", ".join(list(PUBLIC_BUILTINS) + list(self.c.arity) + list(OBJECTIVES))
        return FunctionError(f"unknown function '{n.name}'; known functions: {known}", self.c.loc(n))

    def only_index(self, n: S.Call) -> str:
        """The free index of a one-argument call's argument when it has exactly one, else ``k``."""
        try:
            _, locs = self.expr(n.args[0]) if len(n.args) == 1 else (None, {})
        except EinderivError:
            locs = {}
        return next(iter(locs)) if len(locs) == 1 else "k"

    def reduction(self, n: S.Call, kind: str, k: str):
        """``sum_k(e)``, ``mean_k(e)``, ``softmax_k(e)``, ``max_k(e)``, ``min_k(e)``, ``logsumexp_k(e)``.

        Inside the argument ``k`` is held like a left-side index (repeats are
        elementwise, never summed), so ``mean_j(c^j c^j)`` is a mean of squares.
        """
        if len(n.args) != 1:
            raise FunctionError(f"{n.name} takes 1 argument, got {len(n.args)}", self.c.loc(n))
        where = Location(self.c.path, n.line, n.column + len(kind) + 1)
        if k not in self.env and self.c.fam.uses_var(n.args[0], k):
            if kind not in ("sum", "mean"):
                raise IndexError_(f"{n.name} reduces over '{k}', a family label; only sum_{k} and mean_{k} "
                                  f"run over labels: write a tensor with an index {k} instead of a family", where)
            return self.label_sum(n, kind, k)
        if not IDENT.match(k) or "_" in k:
            raise IndexError_(f"'{k}' is not an index: {kind}_ must be followed by one index name "
                              f"(letters and digits), as in {kind}_k(...)", where)
        held = self.L
        if kind != "softmax" and k in held:
            verb = "sums" if kind in ("sum", "mean") else "reduces"
            raise IndexError_(f"{n.name} {verb} over '{k}', which is on the left side of {self.name}; an index "
                              "on the left side stays free", where)
        self.L = held | {k}
        try:
            e, locs = self.expr(n.args[0])
        finally:
            self.L = held
        if k not in locs and k.lower() in BATCH_NAMES:  # a statistic over the batch, written per sample
            raise IndexError_(f"{n.name} reduces over '{k}', which nothing in its argument carries: the batch is not an "
                              "index (each input is one sample, every definition per sample), so a statistic over "
                              "the batch (batch norm in training mode) cannot be written; expected the statistic "
                              "passed as data, e.g. input mu^j : n (docs/notation.md, statistics over the batch)",
                              self.c.loc(n.args[0]))
        if k not in locs:
            have = f"its free indices are {fmt(locs)}" if locs else "it has no free indices"
            raise IndexError_(f"{n.name} reduces over index '{k}', but '{k}' is not free in its argument "
                              f"({have}); expected an expression that carries {k}, e.g. {kind}_{k}(x^{k})",
                              self.c.loc(n.args[0]))
        ix = self.index[k]
        if kind == "softmax":
            return ir.Softmax(e, ix), locs
        rest = {m: w for m, w in locs.items() if m != k}
        if kind in ir.EXTREMES:
            return ir.Max(e, ix, kind), rest
        if kind == "logsumexp":
            return ir.LogSumExp(e, ix), rest
        out = tuple(self.index[m] for m in locs if m != k)
        factors = e.factors if isinstance(e, ir.Prod) else (e,)
        if kind == "mean":
            factors = (ir.Const(1 / ix.dim),) + factors
        return ir.Prod(factors, out), {m: w for m, w in locs.items() if m != k}

    def label_sum(self, n: S.Call, kind: str, k: str):
        """``sum_t(e)`` over a family label: one copy of ``e`` per label value every family use in
        ``e`` has a member for (``sum_t(squared_error(p(t), y(t)))`` over the steps of p)."""
        values = None
        for use in self.c.fam.uses_var(n.args[0], k):
            lab = to_label(use.args[0], self.c.path)
            have = {self.c.fam.solve(lab, k, m, self.env) for m in self.c.fam.members[use.name]} - {None}
            values = have if values is None else values & have
        if not values:
            raise IndexError_(f"{n.name} sums over label '{k}', but no value of {k} names a member of every "
                              "family used inside", self.c.loc(n))
        terms, first = [], None
        for v in sorted(values):
            self.env[k] = v
            try:
                e, locs = self.expr(n.args[0])
            finally:
                del self.env[k]
            first = locs if first is None else first
            if not ir.is_zero(e):
                terms.append(e)
        if not terms:
            raise all_zero(self.c, n.args[0])
        e = ir.Add(tuple(terms)) if len(terms) > 1 else terms[0]
        if kind == "mean":
            e = ir.Prod((ir.Const(sympy.Rational(1, len(values))), e), e.free)
        return e, first

    def objective_call(self, n: S.Call) -> ir.Expr:
        if len(n.args) != 2:
            raise FunctionError(f"objective '{n.name}' takes 2 arguments ({n.name}(p, y)), got {len(n.args)}",
                                self.c.loc(n))
        shapes = []
        args = []
        for a in n.args:
            if isinstance(a, S.Call) and a.name in self.c.fam.members and not a.indices:
                name = self.c.fam.resolve(a, self.env)  # p(t): a member
            elif isinstance(a, S.Use) and not a.indices and Name(a.name) in self.c.shapes:
                name = Name(a.name)
            else:
                shown = (f" (write {a.name}, not {S.written(a.name, a.indices)})"
                         if isinstance(a, S.Use) and a.indices else "")
                raise FunctionError(f"the arguments of {n.name} must be bare tensor names, as in "
                                    f"{n.name}(p, y){shown}", self.c.loc(a))
            args.append((name, a))
            dims = self.c.shapes[name].dims
            if len(dims) != 1:
                raise ShapeError(f"{n.name} needs vectors (one index each), but {name} has {len(dims)} "
                                 f"ind{'ex' if len(dims) == 1 else 'ices'}", self.c.loc(a))
            shapes.append(dims[0])
        (p, _), (y, y_node) = args
        if not self.c.same(shapes[0], shapes[1]):
            raise ShapeError(f"{n.name} needs two vectors of the same size, but {p} has size "
                             f"{self.c.show(shapes[0])} and {y} has size {self.c.show(shapes[1])}",
                             self.c.loc(y_node))
        name = next(c for c in ["l"] + [f"l{k}" for k in range(1, 100)] if c not in self.written)
        l = ir.Index(name, shapes[0])
        return objective_expr(n.name, ir.Ref(p, (l,)), ir.Ref(y, (l,)))
