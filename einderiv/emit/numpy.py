"""NumPy code generation: a :class:`~einderiv.derive.Derivation` → a standalone module.

The generated module imports only numpy and defines (other tools call these names):

* ``PARAMS`` (name → shape), ``INPUTS`` (input/label name → per-sample shape);
* ``objective(params, data)`` → per-sample objective, shape ``(B,)``;
* ``gradient(params, data)`` → name → batch-mean gradient;
* ``per_sample_gradient(params, data)`` → name → ``(B, *shape)``;
* ``gradient_factors(params, data)`` → name → list of terms, each a tuple of
  per-sample factors whose outer product (factor k carries the parameter axes
  ``GRADIENT_FACTOR_AXES[name][term][k]``) summed over terms is the per-sample
  gradient; ``expand_factors(name, terms)`` rebuilds it (for checking);
* ``hessian(params, data)`` → ``(a, b)`` → batch-mean block, ``shape_a + shape_b``;
* ``hvp(params, data, vector)`` → name → Σ_b H[(name, b)]·vector[b], computed term
  by term with the vector as one more einsum operand — no block is formed;
* ``per_sample_gradient_norms(params, data)`` → name → ``(B,)`` norms ‖∂f_b/∂θ‖, from
  the factored terms (Σ_t Σ_u ⟨g_t, g_u⟩ as contractions of the factors; nothing of
  size B × P is formed);
* ``ggn_diagonal(params, data)`` → name → exact diagonal of the batch-mean generalised
  Gauss–Newton matrix Σ_ab J_aᵀ ∂²f/∂a∂b J_b (a, b the objective's arguments): the
  diagonal of the terms of each block ∂²f/∂θ∂θ that carry the objective's Hessian;
* ``third_derivative(params, data, (a, b, c))`` when the derivation has order ≥ 3.

Lowering, one NumPy idiom per IR node: ``Prod`` → an einsum whose contraction
path is chosen here by opt_einsum on the concrete sizes (and a nominal batch of
:data:`NOMINAL_BATCH`), unrolled into one BLAS-backed statement per pairwise step
(:mod:`einderiv.emit.lower`: ``@``, ``tensordot``, broadcast products) under a comment
with the einsum it implements — or, with ``literal_einsum=True``, one ``np.einsum``
call with the path written out as a literal; ``Add`` → a sum of operands
aligned to one axis order; ``Apply`` → SymPy's NumPy printout of the derivative
body; ``Softmax``/``LogSumExp`` → stable helpers.  Data, nodes and quantities carry
a leading batch axis (letter ``B`` in einsum strings); parameters do not.  A
batch-mean block sums the batch inside its einsums and divides by ``B``.

Output is deterministic and independent of machine-made index names: letters come
from an index's hint (``_j_36`` → ``j``) and the order of appearance.

Example:
    >>> src = generate(derive(network, 2), {"n1": 5})     # doctest: +SKIP
    >>> ns = {}; exec(src, ns); ns["gradient"](params, data)["W1"].shape  # doctest: +SKIP
    (5, 4)
"""
from __future__ import annotations

import functools
import itertools
import keyword
import re
from dataclasses import dataclass

import opt_einsum
import sympy
from sympy.printing.numpy import NumPyPrinter

from ..errors import SIZE, Argument, EinderivError, InternalError, ShapeError, UsageError
from ..analysis.factor import as_terms, factored
from ..frontend.builtins import ARG
from . import lower, window
from ..ir import (Add, Apply, Const, Delta, Expr, Index, Kind, LogSumExp, Prod, Quantity, Ref, alpha_key,
                  Ones, Softmax, Window, fresh, is_zero, refs, rename)

#: batch size assumed when choosing contraction paths (the path stays valid for any B)
NOMINAL_BATCH = 64
#: einsum letters for indices (``B`` is the batch axis)
_POOL = "ijklmnopqrstuvwxyzacdefgh" + "ACDEFGHIJKLMNOPQRSTUVWXYZ"
_RESERVED = {"np", "t", "B", "params", "data", "vector", "wrt", "PARAMS", "INPUTS",
             "GRADIENT_FACTOR_AXES", "objective", "gradient", "per_sample_gradient",
             "gradient_factors", "expand_factors", "hessian", "hvp", "third_derivative",
             "per_sample_gradient_norms", "ggn_diagonal"}

_HELPERS = {
    "_softmax": '''def _softmax(a, axis):
    """Softmax along ``axis``, shifted by the maximum for stability."""
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)''',
    "_logsumexp": '''def _logsumexp(a, axis):
    """log Σ exp(a) along ``axis``, shifted by the maximum for stability."""
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))''',
    **window.HELPERS,  # index arithmetic: strided views (emit/window.py)
}


# ------------------------------------------------------------ scalar bodies
class _ScalarPrinter(NumPyPrinter):
    """SymPy's NumPy printer with ``np.`` calls, ReLU's conventions and stable softplus."""

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        return "np." + text[len("numpy."):] if text.startswith("numpy.") else text

    def _print_Heaviside(self, e):  # relu'(0) = 0, as autodiff frameworks choose
        return f"np.heaviside({self._print(e.args[0])}, 0.0)"

    def _print_Max(self, e):
        return functools.reduce(lambda a, b: f"np.maximum({a}, {b})", (self._print(a) for a in e.args))

    def _print_Min(self, e):
        return functools.reduce(lambda a, b: f"np.minimum({a}, {b})", (self._print(a) for a in e.args))

    def _print_log(self, e):  # log(1 + exp(x)) overflows for large x; logaddexp does not
        x = sympy.Wild("x")
        m = e.args[0].match(1 + sympy.exp(x))
        if m is not None:
            return f"np.logaddexp(0, {self._print(m[x])})"
        return super()._print_log(e)


_PRINTER = _ScalarPrinter({"allow_unknown_functions": False})


# ------------------------------------------------------------------ names
def _ident(text: str) -> str:
    """A Python identifier for a tensor or quantity name: ``d[adj[p],W1]`` → ``d_adj_p__W1``."""
    s = re.sub(r"\W+", "_", text.replace(",", "__")).strip("_") or "v"
    return "v" + s if s[0].isdigit() else s


def _qname(name, label=None) -> str:
    """The identifier of a tensor or quantity: ``h(3)`` → ``h_3``, ``jac[v2,z_v1]`` → ``jac_v2__z_v1``,
    the R-derivative of ``jac[a,s]`` → ``Rjac_a__s`` (``label`` writes labels, see ``Name.text``)."""
    if isinstance(name, Quantity):
        head, parts = name.kind.value, name.parts
        if name.kind is Kind.R:
            head, parts = "R" + parts[0].kind.value, parts[0].parts
        return _ident(head + "_" + "__".join(_ident(p.text(label)) for p in parts))
    return _ident(name.text(label))


class _Namer:
    """Hands out unique identifiers, never a keyword or one of ``taken``."""

    def __init__(self, taken=()):
        self.taken = set(taken) | set(keyword.kwlist)
        self.next: dict[str, int] = {}  # base -> next suffix to try (a scan from 2 is quadratic)

    def new(self, hint: str) -> str:
        base = _ident(hint)
        name, k = base, self.next.get(base, 2)
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.next[base] = k
        self.taken.add(name)
        return name


def _hint(ix: Index) -> str:
    base = ix.name.lstrip("_").split("_")[0]
    return base if len(base) >= 1 and base[0].isascii() and base[0].isalpha() else ""


class _Letters:
    """Index → einsum letter for one statement (its comment uses the same letters)."""

    def __init__(self, first=()):
        self.of: dict[Index, str] = {}
        self.used = {"B"}
        for ix in first:
            self[ix]

    def __getitem__(self, ix: Index) -> str:
        if ix not in self.of:
            h = _hint(ix)[:1]
            c = h if h and h not in self.used else next((c for c in _POOL if c not in self.used), None)
            if c is None:
                raise EinderivError("a generated statement needs more than 51 einsum letters")
            self.of[ix] = c
            self.used.add(c)
        return self.of[ix]


# ----------------------------------------------------------------- display
def _show(e: Expr, L: _Letters, name) -> str:
    """One-line reading of an expression for comments: ``Σ_c hobj_p__p[c,j] v2[i]``."""
    def idx(ixs):
        return "[" + ",".join(L[i] for i in ixs) + "]" if ixs else ""

    if isinstance(e, Const):
        return str(e.value)
    if isinstance(e, Ref):
        return name(e.name) + idx(e.indices)
    if isinstance(e, Delta):
        return "δ" + idx((e.a, e.b))
    if isinstance(e, Window):
        return window.show(e, L.__getitem__)
    if isinstance(e, Ones):
        return "1" + idx((e.index,))
    if isinstance(e, Prod):
        coef = sympy.Mul(*[f.value for f in e.factors if isinstance(f, Const)])
        body = " ".join(f"({_show(f, L, name)})" if isinstance(f, Add) else _show(f, L, name)
                        for f in e.factors if not isinstance(f, Const)) or "1"
        if e.bound:
            body = "Σ_" + "".join(L[i] for i in e.bound) + " " + body
        return body if coef == 1 else "-" + body if coef == -1 else f"{coef} {body}"
    if isinstance(e, Add):
        return _join([_show(t, L, name) for t in e.terms])
    if isinstance(e, Apply):
        d = e.fn.deriv
        mark = "'" * d[0] if len(d) == 1 else "_d" + "".join(map(str, d))
        return f"{e.fn.name}{mark}(" + ", ".join(_show(a, L, name) for a in e.args) + ")"
    if isinstance(e, (Softmax, LogSumExp)):
        fn = "softmax" if isinstance(e, Softmax) else "logsumexp"
        return f"{fn}_{L[e.over]}({_show(e.arg, L, name)})"
    raise TypeError(f"no display for {type(e).__name__}")


def _join(codes: list[str]) -> str:
    """``a + b - c`` from ``["a", "b", "-c"]``."""
    out = codes[0] if codes else "0.0"
    for c in codes[1:]:
        out += f" - {c[1:]}" if c.startswith("-") else f" + {c}"
    return out


def _align(code: str, src: tuple, src_b: bool, dst: tuple, dst_b: bool) -> str:
    """``code`` (axes ``src``) transposed and expanded to broadcast against axes ``dst``."""
    off = 1 if src_b else 0
    order = sorted(range(len(src)), key=lambda k: dst.index(src[k]))
    if order != list(range(len(src))):
        code = f"np.transpose({code}, {tuple(([0] if src_b else []) + [k + off for k in order])})"
    slots = ([":" if src_b else "None"] if dst_b else []) + [":" if i in src else "None" for i in dst]
    while slots and slots[0] == "None":  # numpy broadcasts missing leading axes
        slots.pop(0)
    while slots and slots[-1] == ":":
        slots.pop()
    return f"{code}[{', '.join(slots)}]" if slots else code


def _operand(v: Val) -> str:
    return v.code if re.fullmatch(r"[\w.]+", v.code) else f"({v.code})"


@functools.lru_cache(maxsize=None)
def _path(eq: str, shapes: tuple) -> str:
    path, _ = opt_einsum.contract_path(eq, *shapes, shapes=True)
    return "['einsum_path', " + ", ".join(str(tuple(p)) for p in path) + "]"


# ----------------------------------------------------------------- lowering
@dataclass(frozen=True)
class Val:
    """A lowered array: Python expression ``code`` with axes ``idx`` (after ``B`` if batched)."""

    code: str
    idx: tuple[Index, ...]
    batched: bool


class _Scope:
    """The body of one generated function: lines, local names, a CSE cache."""

    def __init__(self, gen: "_Generator", load):
        self.g = gen
        self.load = load  # tensor name -> source expression (e.g. 't["x"]')
        self.lines: list[str] = []
        self.names = _Namer(gen.globals)
        self.loaded: dict = {}
        self.cache: dict = {}

    def bind(self, hint: str, code: str, exact: bool = False) -> str:
        var = hint if exact else self.names.new(hint)
        self.lines.append(f"{var} = {code}")
        return var

    def ref(self, name) -> str:
        if name not in self.loaded:
            self.loaded[name] = self.bind(self.g.ident[name], self.load(name), exact=True)
        return self.loaded[name]

    # -- einsum ------------------------------------------------------------
    def contract(self, ops: list[Val], coef, out: tuple, keep_batch: bool, L=None) -> tuple[str, bool]:
        """``coef · einsum(ops) → out``; returns (code, whether any operand is batched)."""
        ops = window.apply(self, ops, out)  # index arithmetic → strided views
        batched = any(v.batched for v in ops)
        coef = self.g.value(coef)
        if not ops:
            return self.g.num(coef), False
        L = L or _Letters()
        subs = [("B" if v.batched else "") + "".join(L[i] for i in v.idx) for v in ops]
        res = ("B" if batched and keep_batch else "") + "".join(L[i] for i in out)
        if all(sub == res for sub in subs) and len(set(res)) == len(res):
            code = " * ".join(_operand(v) for v in ops)  # same axes everywhere: elementwise
        else:
            eq = ",".join(subs) + "->" + res
            shapes = tuple(((NOMINAL_BATCH,) if v.batched else ()) + tuple(self.g.dim(i) for i in v.idx)
                           for v in ops)
            args = ", ".join(v.code for v in ops)
            if self.g.literal:
                code = f'np.einsum("{eq}", {args}, optimize={_path(eq, shapes)})'
            else:
                self.lines.append(f'# einsum("{eq}", {args})')
                code = lower.plan(eq, shapes, [v.code for v in ops], lambda c: self.bind("tmp", c))
        if coef == 1:
            return code, batched
        return (f"-{code}" if coef == -1 else f"{self.g.num(coef)} * {code}"), batched

    def terms(self, e: Expr, order: tuple, keep_batch: bool, L=None) -> list[tuple[str, bool]]:
        """Each term of ``e`` as code with axes ``order`` (batch summed unless ``keep_batch``)."""
        parts = []
        for t in (e.terms if isinstance(e, Add) else (e,)):
            if isinstance(t, Add):
                parts.extend(self.terms(t, order, keep_batch, L))
                continue
            factors = t.factors if isinstance(t, Prod) else (t,)
            coef = sympy.Mul(*[f.value for f in factors if isinstance(f, Const)])
            ops = [self.lower(f) for f in factors if not isinstance(f, Const)]
            parts.append(self.contract(ops, coef, order, keep_batch, L))
        return parts

    # -- nodes ---------------------------------------------------------------
    def lower(self, e: Expr, target: str | None = None) -> Val:
        """A Val for ``e`` (axes ``e.free``), emitting the statements it needs."""
        if isinstance(e, Const):
            return Val(self.g.num(e.value), (), False)
        if isinstance(e, Ref):
            v = Val(self.ref(e.name), e.indices, self.g.batched[e.name])
            if len(e.free) < len(e.indices):  # a repeated index: the diagonal
                code, _ = self.contract([v], 1, e.free, True)
                v = Val(self.bind(v.code + "_diag", code), e.free, v.batched)
            return v
        if isinstance(e, Delta):
            n = self.g.dim(e.a)
            return Val(str(n), (), False) if e.a == e.b else Val(f"np.eye({n})", (e.a, e.b), False)
        if isinstance(e, Window):
            return window.WinVal(e)  # folded into its neighbour by contract()
        if isinstance(e, Ones):
            return Val(f"np.ones({self.g.dim(e.index)})", (e.index,), False)
        key = alpha_key(e)
        if key in self.cache:
            code, batched = self.cache[key]
            return Val(code, e.free, batched)
        if isinstance(e, (Prod, Add)):
            parts = self.terms(e, e.free, True)
            val = Val(self.bind(target or "tmp", _join([c for c, _ in parts]), bool(target)),
                      e.free, any(b for _, b in parts))
        elif isinstance(e, Apply):
            val = self._apply(e, target)
        elif isinstance(e, (Softmax, LogSumExp)):
            val = self._reduce(e, target)
        else:
            raise TypeError(f"cannot lower {type(e).__name__}")
        self.cache[key] = (val.code, val.batched)
        return val

    def _known_value(self, e: Apply):
        """The node already holding ``fn(args)`` when ``e`` is a derivative of that same
        elementwise call of one tensor (same axes), so its value need not be recomputed."""
        if len(e.args) != 1 or not isinstance(e.args[0], Ref) or e.args[0].indices != e.free:
            return None
        name = self.g.applied.get((e.fn.name, e.args[0].name))
        return name if name is not None and name in self.g.batched and name != self.g.net.objective else None

    def _label(self, e: Expr) -> str:
        return self.g.ident[e.name] if isinstance(e, Ref) else "expr"

    def _apply(self, e: Apply, target) -> Val:
        args = [self.lower(a) for a in e.args]
        order, batched = e.free, any(v.batched for v in args)
        body = self.g.table.derivative(e.fn.name, e.fn.deriv)
        codes = [_align(v.code, v.idx, v.batched, order, batched) for v in args]
        codes = [c if re.fullmatch(r"[\w.]+", c) else self.bind(v.code + "_b", c) for c, v in zip(codes, args)]
        value, reused = self._known_value(e), False
        if value is not None and e.fn.deriv != (0,) * len(e.args):  # tanh' = 1 - tanh²: reuse v = tanh(z)
            sym = sympy.Symbol(self.ref(value), real=True)
            body = body.xreplace({self.g.table.derivative(e.fn.name, (0,) * len(e.args)): sym})
            reused = sym in body.free_symbols
        used = [k for k in range(len(args)) if ARG[k] in body.free_symbols]
        text = _PRINTER.doprint(body.xreplace({ARG[k]: sympy.Symbol(codes[k], real=True) for k in used}))
        covered = {i for k in used for i in args[k].idx}
        if not reused and (covered != set(order) or (batched and not any(args[k].batched for k in used))):
            shapes = ", ".join(f"np.shape({c})" for c in codes)
            text = f"np.broadcast_to({text}, np.broadcast_shapes({shapes}))"
        d = e.fn.deriv
        pre = ({0: "", 1: "d"}.get(d[0], f"d{d[0]}") + e.fn.name) if len(d) == 1 else \
            e.fn.name + "_d" + "".join(map(str, d))
        hint = target or "_".join([pre] + [self._label(a) for a in e.args])
        return Val(self.bind(hint, text, bool(target)), order, batched)

    def _reduce(self, e: Softmax | LogSumExp, target) -> Val:
        v = self.lower(e.arg)
        helper = "_softmax" if isinstance(e, Softmax) else "_logsumexp"
        self.g.helpers.add(helper)
        axis = v.idx.index(e.over) + (1 if v.batched else 0)
        hint = target or f"{helper[1:]}_{self._label(e.arg)}"
        return Val(self.bind(hint, f"{helper}({v.code}, axis={axis})", bool(target)), e.free, v.batched)


# ---------------------------------------------------------------- generator
class _Generator:
    def __init__(self, derivation, sizes, literal: bool = False):
        self.literal = literal
        self.d = derivation
        self.net = derivation.network
        self.table = derivation.table
        self.sizes = self._sizes(sizes or {})
        self._dims: dict = {}
        self.helpers: set[str] = set()
        names = _Namer(_RESERVED)
        self.ident: dict = {}
        for t in self.net.params + self.net.data:
            self.ident[t.name] = names.new(str(t.name))
        for n in self.d.nodes:
            self.ident.setdefault(n.name, names.new(str(n.name)))
        for q in self.d.quantities + self.d.hvp_quantities:
            self.ident[q.name] = names.new(_qname(q.name))
        #: the HVP's direction, one tensor per parameter (the ``vector`` argument)
        self.direction = {Quantity(Kind.DIR, (p.name,)): p.name for p in self.net.params}
        for q in self.direction:
            self.ident[q] = names.new(_qname(q))
        self.globals = set(names.taken)
        self.key = {n: (self.ident[n] if isinstance(n, Quantity) else str(n)) for n in self.ident}
        self.batched = {t.name: not t.is_param for t in self.net.tensors}
        self.batched.update({q: False for q in self.direction})
        self.params = [t.name for t in self.net.params]
        #: (function, argument tensor) -> node defined as that elementwise call, e.g. ("tanh", "z_v1") -> "v1"
        self.applied = {(n.expr.fn.name, n.expr.args[0].name): n.name for n in self.d.nodes
                        if isinstance(n.expr, Apply) and len(n.expr.args) == 1
                        and isinstance(n.expr.args[0], Ref) and n.expr.args[0].indices == n.indices
                        and n.expr.fn.deriv == (0,)}
        self.shape = {t.name: tuple(self.dim(i) for i in t.indices) for t in self.net.tensors}
        first_data = self.net.data[0].name if self.net.data else None
        self.batch_line = f'B = t["{first_data}"].shape[0]' if first_data else "B = 1"

    # -- sizes -----------------------------------------------------------
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

    def value(self, v) -> sympy.Expr:
        v = sympy.sympify(v)
        return v if v.is_number else v.xreplace(self.sizes)

    def num(self, v) -> str:
        v = self.value(v)
        if v.free_symbols:
            raise ShapeError(f"size of '{sorted(map(str, v.free_symbols))[0]}' is not given")
        return str(int(v)) if v.is_Integer else repr(float(v))

    def dim(self, ix: Index) -> int:
        if ix.dim not in self._dims:
            self._dims[ix.dim] = int(self.num(ix.dim))
        return self._dims[ix.dim]

    # -- pieces ------------------------------------------------------------
    def name(self, n) -> str:
        return self.ident.get(n) or _qname(n)

    def show(self, lhs, indices, expr: Expr) -> str:
        L = _Letters(indices)
        return str(lhs) + "".join(f"[{','.join(L[i] for i in indices)}]" if indices else "") + " = " + \
            _show(expr, L, self.name)

    def needed(self, exprs) -> list:
        """Quantities the expressions refer to, transitively, in dependency order."""
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

    def scope(self) -> _Scope:
        return _Scope(self, lambda n: f't["{self.key[n]}"]')

    def prologue(self, exprs, direction: bool = False) -> list[str]:
        """Forward pass, then the quantities ``exprs`` need, then ``B``."""
        lines = ["t = _forward(params, data)"]
        if direction:  # the HVP's vector, read by the tangent quantities
            lines += [f't["{self.key[q]}"] = vector["{p}"]' for q, p in self.direction.items()]
        lines += [f't["{self.key[q.name]}"] = _{self.ident[q.name]}(t)' for q in self.needed(exprs)]
        return lines + [self.batch_line]

    def function(self, sig: str, doc: str, body: list[str]) -> str:
        return "\n".join([f"def {sig}:", f'    """{doc}"""'] + ["    " + b for b in body])

    def block(self, s: _Scope, var: str, b, keep_batch: bool, label: str = "") -> str:
        """Emit one block (mean, or per-sample if ``keep_batch``); returns its variable."""
        L = _Letters(b.indices)
        s.lines.append("# " + self.show(label or "∂f/∂" + ",".join(map(str, b.wrt)), b.indices, b.expr))
        parts = [s.contract([s.lower(f) for f in t.factors], t.coef, b.indices, keep_batch, L)
                 for t in as_terms(b.expr, b.indices)]
        return s.bind(var, self.combine(parts, keep_batch))

    @staticmethod
    def combine(parts, keep_batch: bool) -> str:
        if keep_batch:
            return _join([c for c, _ in parts])
        summed = [c for c, b in parts if b]
        code = (f"({_join(summed)}) / B" if len(summed) > 1 else f"{summed[0]} / B") if summed else ""
        rest = [c for c, b in parts if not b]
        return _join(([code] if code else []) + rest)

    def shape_of(self, names) -> str:
        return " + ".join(f'PARAMS["{n}"]' for n in names)

    # -- functions -----------------------------------------------------------
    def forward(self) -> str:
        s = _Scope(self, lambda n: (f'params["{n}"]' if n in self.shape and n in self.params
                                    else f'data["{n}"]'))
        for t in self.net.tensors:
            s.ref(t.name)
        for n in self.d.nodes:
            var = self.ident[n.name]
            s.lines.append("# " + self.show(var, n.indices, n.expr))
            if isinstance(n.expr, (Apply, Softmax, LogSumExp)) and n.expr.free == n.indices:
                v = s.lower(n.expr, target=var)
                if v.code != var:
                    s.bind(var, v.code, exact=True)
                batched = v.batched
            else:
                parts = s.terms(n.expr, n.indices, True, _Letters(n.indices))
                s.bind(var, _join([c for c, _ in parts]), exact=True)
                batched = any(b for _, b in parts)
            s.loaded[n.name] = var
            self.batched[n.name] = batched
        ret = ", ".join(f'"{self.key[k]}": {v}' for k, v in s.loaded.items())
        return self.function("_forward(params, data)",
                             "Every tensor of the network by name: parameters, data and nodes "
                             "(data and nodes per sample).", s.lines + [f"return {{{ret}}}"])

    def quantity(self, q) -> str:
        s = self.scope()
        parts = s.terms(q.expr, q.indices, True, _Letters(q.indices))
        self.batched[q.name] = any(b for _, b in parts)
        var = self.ident[q.name]
        return self.function(f"_{var}(t)", self.show(var, q.indices, q.expr),
                             s.lines + [f"return {_join([c for c, _ in parts])}"])

    def blocks_function(self, sig, doc, wrts, prefix, keep_batch, key=lambda w: f'"{w[0]}"') -> str:
        blocks = [self.d.blocks[w] for w in wrts]
        s = self.scope()
        out = []
        for b in blocks:
            var = prefix + "__".join(map(str, b.wrt))
            shape = self.shape_of(b.wrt)
            if is_zero(b.expr):
                var = s.bind(var, f"np.zeros(((B,) + {shape}))" if keep_batch else f"np.zeros({shape})")
            else:
                var = self.block(s, var, b, keep_batch)
                if keep_batch and not any(self.batched_expr(b.expr)):
                    var = s.bind(var, f"np.broadcast_to({var}, (B,) + {shape})")
            out.append(f"{key(b.wrt)}: {var}")
        body = self.prologue([b.expr for b in blocks]) + s.lines + ["return {" + ", ".join(out) + "}"]
        return self.function(sig, doc, body)

    def batched_expr(self, e: Expr):
        return [self.batched.get(r.name, False) for r in refs(e)]

    def hvp(self) -> str:
        """HVP by the R-operator: forward tangents, R-adjoints, then Σ_s (radj ⊗ cofactor + adj ⊗ tangent)."""
        s = self.scope()
        out = []
        for a in self.params:
            var = self.block(s, f"hvp_{a}", self.d.hvp[a], False, label=f"Σ_b H[{a},b]·vector[b]")
            out.append(f'"{a}": {var}')
        body = (self.prologue([b.expr for b in self.d.hvp.values()], direction=True) + s.lines +
                ["return {" + ", ".join(out) + "}"])
        return self.function("hvp(params, data, vector)",
                             "Hessian-vector product Σ_b H[(a, b)]·vector[b] for every parameter a "
                             "(batch mean), by the R-operator: the directional derivative of the "
                             "gradient, through forward tangents tan[n] and R-adjoints radj[n] — "
                             "no Hessian block and no Jacobian is formed.", body)

    def norms(self) -> str:
        """‖per-sample gradient‖ per parameter from the factored terms, never forming (B, *shape):
        ‖Σ_t g_t‖² = Σ_t Σ_u ⟨g_t, g_u⟩, each inner product one contraction of both terms' factors."""
        s = self.scope()
        out, exprs = [], []
        for a in self.params:
            b = self.d.blocks[(a,)]
            exprs.append(b.expr)
            terms = as_terms(b.expr, b.indices)
            s.lines.append(f"# ‖∂f/∂{a}‖² = Σ over pairs of terms of their inner product: " +
                           _show(b.expr, _Letters(b.indices), self.name))
            parts = []
            for i, j in itertools.product(range(len(terms)), repeat=2):
                if j < i:
                    continue
                ti, tj = terms[i], terms[j]
                dummies = {ix: fresh(ix.dim, ix.name) for ix in tj.bound}  # not ti's
                other = tuple(rename(f, dummies) for f in tj.factors)
                coef = ti.coef * tj.coef * (1 if i == j else 2)
                parts.append(s.contract([s.lower(f) for f in ti.factors + other], coef, (), True))
            if not parts:
                var = s.bind(f"norm_{a}", "np.zeros(B)")
            else:
                sq = s.bind(f"sq_{a}", _join([c for c, _ in parts]))
                if not any(bt for _, bt in parts):
                    sq = s.bind(f"sq_{a}", f"np.broadcast_to({sq}, (B,))")
                var = s.bind(f"norm_{a}", f"np.sqrt(np.maximum({sq}, 0.0))")
            out.append(f'"{a}": {var}')
        body = self.prologue(exprs) + s.lines + ["return {" + ", ".join(out) + "}"]
        return self.function("per_sample_gradient_norms(params, data)",
                             "Euclidean norm of each sample's gradient, per parameter: name -> (B,), "
                             "from the gradient's outer-product factors (no (B, *shape) array).", body)

    def ggn(self) -> str:
        """Diagonal of the generalised Gauss–Newton matrix: the derivation's GGN block of each
        parameter (J_aᵀ ∂²f/∂a∂b J_b over the objective's arguments a, b), read on θ = φ."""
        s = self.scope()
        out, exprs = [], []
        for a in self.params:
            blk = self.d.ggn[a]
            k = len(self.shape[a])
            theta, phi = blk.indices[:k], blk.indices[k:]
            gn = as_terms(blk.expr, blk.indices)
            if not gn:
                out.append(f'"{a}": {s.bind(f"ggn_{a}", f"np.zeros(PARAMS[{str(a)!r}])")}')
                continue
            diag = dict(zip(phi, theta))
            terms = []
            for t in gn:
                fs = tuple(f for f in (rename(f, diag) for f in t.factors)
                           if not (isinstance(f, Delta) and f.a == f.b))
                terms.append((t.coef, fs))
                exprs.append(Prod(fs, theta))
            L = _Letters(theta)
            s.lines.append(f"# diag GGN[{a}] = " + _join(
                [_show(Prod((Const(c),) + fs, theta), L, self.name) for c, fs in terms]))
            parts = [s.contract([s.lower(f) for f in fs], c, theta, False, L) for c, fs in terms]
            out.append(f'"{a}": {s.bind(f"ggn_{a}", self.combine(parts, False))}')
        body = self.prologue(exprs) + s.lines + ["return {" + ", ".join(out) + "}"]
        return self.function("ggn_diagonal(params, data)",
                             "Exact diagonal of the (batch-mean) generalised Gauss–Newton matrix "
                             "Σ_ab J_aᵀ ∂²f/∂a∂b J_b over the objective's arguments: name -> array "
                             "of the parameter's shape.", body)

    def factor_codes(self, s: _Scope, ft) -> list[str]:
        """One per-sample array expression per outer-product factor of a factored term
        (scalar groups and the coefficient go into the first factor; unbatched factors
        are broadcast over the batch)."""
        scal = [f for g in ft.scalars for f in g.factors]
        codes = []
        for k, g in enumerate(ft.groups or [None]):
            fs = (list(g.factors) if g else []) + (scal if k == 0 else [])
            free = g.free if g else ()
            code, batched = s.contract([s.lower(f) for f in fs], ft.coef if k == 0 else 1, free, True)
            if not batched:
                code = f"np.broadcast_to({code}, (B,) + {tuple(self.dim(i) for i in free)})"
            codes.append(code)
        return codes

    def factors(self) -> tuple[str, dict]:
        s = self.scope()
        out, axes_of, exprs = [], {}, []
        for a in self.params:
            b = self.d.blocks[(a,)]
            exprs.append(b.expr)
            pos = {ix: k for k, ix in enumerate(b.indices)}
            terms, axes = [], []
            for n, ft in enumerate(factored(b.expr, b.indices)):
                groups = ft.groups or ()
                facs = [code if re.fullmatch(r"\w+", code) else s.bind(f"fac_{a}_{n}_{k}", code)
                        for k, code in enumerate(self.factor_codes(s, ft))]
                terms.append("(" + ", ".join(facs) + ("," if len(facs) == 1 else "") + ")")
                axes.append(tuple(tuple(pos[i] for i in g.free) for g in groups) or ((),))
            if not terms:
                terms = [f'(np.zeros((B,) + PARAMS["{a}"]),)']
                axes = [(tuple(range(len(self.shape[a]))),)]
            out.append(f'"{a}": [' + ", ".join(terms) + "]")
            axes_of[a] = axes
        body = self.prologue(exprs) + s.lines + ["return {" + ", ".join(out) + "}"]
        doc = ("Per-sample gradient of each parameter as a sum of outer products: name -> list of "
               "terms, each a tuple of per-sample factors (axes: GRADIENT_FACTOR_AXES).")
        return self.function("gradient_factors(params, data)", doc, body), axes_of

    # -- module ----------------------------------------------------------------
    def module(self) -> str:
        fwd = self.forward()
        quants = [self.quantity(q) for q in self.d.quantities + self.d.hvp_quantities]
        params = self.params
        grads = [(p,) for p in params]
        hess = [w for w in self.d.blocks if len(w) == 2]
        third = [w for w in self.d.blocks if len(w) == 3]
        fac_fn, axes = self.factors()
        publics = [
            self.function("objective(params, data)", "Per-sample objective, shape (B,).",
                          ["t = _forward(params, data)", self.batch_line,
                           f'return np.broadcast_to(t["{self.net.objective}"], (B,))']
                          if not self.batched[self.net.objective] else
                          [f'return _forward(params, data)["{self.net.objective}"]']),
            self.blocks_function("gradient(params, data)",
                                 "Batch-mean gradient: name -> array of the parameter's shape.",
                                 grads, "grad_", False),
            self.blocks_function("per_sample_gradient(params, data)",
                                 "Per-sample gradients: name -> array (B, *shape).",
                                 grads, "grad_", True),
            fac_fn,
            self.norms(),
            EXPAND_FACTORS,
        ]
        if hess:
            publics.append(self.blocks_function(
                "hessian(params, data)", "Batch-mean Hessian blocks: (a, b) -> array shape_a + shape_b.",
                hess, "hess_", False, key=lambda w: "(" + ", ".join(f'"{x}"' for x in w) + ")"))
            publics.append(self.hvp())
            publics.append(self.ggn())
        if third:
            for w in third:
                publics.append(self.blocks_function(
                    f"_third_{'__'.join(map(str, w))}(params, data)",
                    f"Batch-mean block ∂³f/∂{w[0]}∂{w[1]}∂{w[2]}.",
                    [w], "d3_", False, key=lambda w: '"block"'))
            table = ",\n".join(f'    {tuple(map(str, w))!r}: _third_{"__".join(map(str, w))}' for w in third)
            publics.append(f"_THIRD = {{\n{table},\n}}")
            publics.append(self.function(
                "third_derivative(params, data, wrt)",
                "Batch-mean third-derivative block for wrt = (a, b, c), shape_a + shape_b + shape_c.",
                ['return _THIRD[tuple(wrt)](params, data)["block"]']))
        head = [self.header(), "import numpy as np", "",
                "PARAMS = {\n" + "".join(f'    "{p}": {self.shape[p]!r},\n' for p in params) + "}",
                "INPUTS = {\n" + "".join(f'    "{t.name}": {self.shape[t.name]!r},\n' for t in self.net.data) + "}",
                "GRADIENT_FACTOR_AXES = {\n" + "".join(f'    "{p}": {axes[p]!r},\n' for p in params) + "}"]
        helpers = [_HELPERS[h] for h in sorted(self.helpers)]
        return "\n".join(head) + "\n\n\n" + "\n\n\n".join(helpers + [fwd] + quants + self.support_functions()
                                                          + publics) + "\n"

    def support_functions(self) -> list[str]:
        """Functions the public ones call beyond ``_forward`` and the quantities (a hook:
        :mod:`einderiv.emit.loops` adds its backward passes)."""
        return []

    def header(self) -> str:
        defs = []
        for d in self.net.definitions:
            defs.append("    " + self.show(d.name, d.indices, d.expr))
        sizes = ", ".join(f"{n}={self.sizes[sympy.Symbol(n, positive=True, integer=True)]}"
                          for n, _ in self.net.dims
                          if sympy.Symbol(n, positive=True, integer=True) in self.sizes)
        return "\n".join([
            f'"""Generated by einderiv from {self.net.path} — do not edit.',
            "",
            "Network (per sample; Σ_i sums over i):",
            *defs,
            "",
            f"Objective: {self.net.objective}.  Derivative order: {self.d.order}.  Sizes: {sizes}.",
            "Arrays in `data` and every per-sample result carry a leading batch axis B;",
            "parameters do not.  Parameter axes follow their declaration order.",
            '"""']).replace("\\", "\\\\")


EXPAND_FACTORS = '''def expand_factors(name, terms):
    """Rebuild the per-sample gradient of `name` from gradient_factors(...)[name] (for checking)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = "Z" + letters[:len(PARAMS[name])]
    total = 0.0
    for term, axes in zip(terms, GRADIENT_FACTOR_AXES[name]):
        subs = ",".join("Z" + "".join(letters[a] for a in ax) for ax in axes)
        total = total + np.einsum(subs + "->" + out, *term)
    return total'''


def generate(derivation, sizes: dict[str, int] | None = None, *, literal_einsum: bool = False) -> str:
    """The source of a standalone NumPy module for ``derivation`` (see the module docstring).

    Every size must be known, from the network's ``dims`` or from ``sizes``;
    otherwise a :class:`~einderiv.errors.ShapeError` names the missing one.
    ``literal_einsum=True`` writes each contraction as one ``np.einsum`` call with
    its path as a literal, instead of the BLAS-backed statements of
    :mod:`einderiv.emit.lower` (same numbers; slower on small sizes).
    """
    from .loops import LoopGenerator, has_families  # families: the gradient path as loops over labels

    gen = LoopGenerator if has_families(derivation) else _Generator
    return gen(derivation, sizes, literal_einsum).module()
