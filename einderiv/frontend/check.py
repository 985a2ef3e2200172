"""Syntax tree → :class:`einderiv.network.Network`: names, indices, sizes.

This is where the notation gets its meaning (docs/notation.md):

* every name is resolved (dimensions, tensors, functions, definitions), no
  name is defined twice, definitions form no cycle and are put in dependency
  order (file order wherever the dependencies allow);
* the summation convention is resolved into explicit IR.  With L the indices
  on a definition's left side, an index that occurs twice in one product and
  is not in L is summed; one that occurs once, or is in L (the elementwise
  product ``g^j = a^j b^j``), stays free; three occurrences outside L are an
  error.  Function arguments and parenthesised sums are sub-expressions with
  their own free indices, computed bottom-up with the same L;
* every index takes its size from the tensor axis it sits on, and two
  occurrences with different sizes are a :class:`ShapeError`.

Every problem is raised as an :class:`EinderivError` subclass whose location
points at the offending token.

Example:
    >>> net = load("t.ein", "dims n = 3\\ninput x^i : n\\nf = x^i x^i\\n")
    >>> net.objective, net.definition("f").expr.out
    ('f', ())
"""
from __future__ import annotations

import ast
import keyword
import re
import sys
from dataclasses import dataclass

import sympy

from .. import ir
from . import syntax as S
from ..errors import (EinderivError, FunctionError, IndexError_, Location, NameError_, ShapeError,
                     UsageError)
from .families import Families, to_label
from .builtins import ARG, BUILTINS, OBJECTIVES, check_differentiable, parse_user_function
from ..ir import Name
from .network import Definition, Network, TensorDecl, UserFunction, as_name, dim_symbol
from .objectives import objective_expr
from .parse import parse

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_MINUS_ONE = ir.Const(sympy.Integer(-1))
#: shown in "known functions" lists; `reciprocal` is internal (division)
_PUBLIC_BUILTINS = tuple(sorted(n for n in BUILTINS if n != "reciprocal"))
#: ``sum_i(…)``, ``mean_i(…)``, ``softmax_k(…)``: a reduction over the index after the ``_``
#: (the lexer reads ``sum_i(`` as one call name, since tensor names cannot contain ``_``)
REDUCTIONS = ("sum", "mean", "softmax")
_REDUCTION = re.compile(r"(sum|mean|softmax)_(.+)\Z")


# --------------------------------------------------------------------- public
def load(path: str, text: str | None = None, dims: dict[str, int] | None = None) -> Network:
    """Read, parse and check a network file.

    ``text`` replaces the file's contents (``path`` still names it in
    messages); ``dims`` sets sizes by name, as ``--dim n0=4`` does.

    Example:
        >>> load("paper_mlp.ein", open("derivations/paper_mlp.ein").read()).objective
        'f'
    """
    if text is None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise UsageError(f"cannot read '{path}': {exc.strerror or exc}") from None
    return check(parse(text, path), path, text, dims)


def check(module: S.Module, path: str, text: str = "", dims: dict[str, int] | None = None) -> Network:
    """Check a parsed module (see :func:`load`)."""
    return _Checker(path, text, dims or {}).run(module)


# -------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class _Shape:
    """What a use of a tensor is checked against."""

    dims: tuple[sympy.Expr, ...]
    written: str  # "W1^j_i"
    kind: str  # "declaration" or "definition"
    line: int
    role: str = ""  # for declarations

    @property
    def where(self) -> str:
        if self.kind == "declaration":
            return f"declared as {self.role} at line {self.line}"
        return f"defined at line {self.line}"


def _fmt(names) -> str:
    return "{" + ", ".join(names) + "}"


def _number(text: str) -> sympy.Rational:
    # Rational("0.5") == 1/2 and Rational("1e-3") == 1/1000: exact, like nsimplify.
    return sympy.Rational(text)


def _sympy_allowed(name: str) -> bool:
    """SymPy functions and constants a function body may name (erf, Abs, pi …)."""
    obj = getattr(sympy, name, None)
    return (isinstance(obj, sympy.FunctionClass) or isinstance(obj, sympy.NumberSymbol)
            or name in ("sqrt", "cbrt", "E"))


_BODY_TOKEN = re.compile(r"\s+|(?P<num>([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)"
                         r"|(?P<name>[A-Za-z][A-Za-z0-9_]*)|\*\*|[-+*/^(),]")


# -------------------------------------------------------------------- checker
class _Checker:
    def __init__(self, path: str, text: str, overrides: dict[str, int]):
        self.path = path
        self.text = text
        self.overrides = overrides
        self.sizes: dict[str, int | None] = {}
        self.arity: dict[str, int] = {}
        self.shapes: dict[Name, _Shape] = {}
        self.bodies: dict[str, sympy.Expr] = {}  # user functions, for folding calls on numbers
        self.fam = Families(path, self.sizes)

    def loc(self, node: S.Node) -> Location:
        return Location(self.path, node.line, node.column)

    def at(self, line: int, column: int) -> Location:
        return Location(self.path, line, column)

    def ident(self, name: str | Name, what: str, node: S.Node) -> None:
        """Names reach generated code: only plain identifiers, never keywords."""
        if isinstance(name, Name):  # a family member h(3): its base name
            name = name.base
        if not _IDENT.match(name):
            raise NameError_(f"'{name}' is not a valid {what} name; expected a letter followed by "
                             "letters, digits or '_'", self.loc(node))
        if keyword.iskeyword(name):
            article = "an" if what[0] in "aeiou" else "a"
            raise NameError_(f"'{name}' is a Python keyword and cannot name {article} {what}; choose another name",
                             self.loc(node))

    # ------------------------------------------------------------ pipeline
    def run(self, module: S.Module) -> Network:
        st = module.statements
        depths = [s.item for s in st if isinstance(s, S.Depth)]
        self.fam.depths.update(d.name for d in depths)
        dims = self.dims([d for s in st if isinstance(s, S.Dims) for d in s.items] + depths)
        functions = self.functions([s for s in st if isinstance(s, S.FunctionDef)])
        tensors = self.tensors([m for s in st if isinstance(s, S.Decl) for m in self.fam.unroll_decl(s)])
        assigns = [m for s in st if isinstance(s, S.Assign) for m in self.fam.unroll_assign(s)]
        self.names(assigns, tensors)
        definitions = [self.definition(a) for a in self.order(assigns)]
        objective = self.objective(definitions, assigns)
        return Network(self.path, dims, tuple(tensors), tuple(functions), tuple(definitions),
                       objective, self.text)

    # ---------------------------------------------------------------- dims
    def dims(self, items: list[S.DimItem]) -> tuple[tuple[str, int | None], ...]:
        first: dict[str, S.DimItem] = {}
        for d in items:
            self.ident(d.name, "dimension", d)
            if d.name in first:
                raise NameError_(f"redefinition of dimension '{d.name}' (first declared at line "
                                 f"{first[d.name].line})", self.loc(d))
            if d.size is not None and d.size < 1:
                raise ShapeError(f"dimension '{d.name}' must be a positive integer, got {d.size}", self.loc(d))
            first[d.name] = d
            self.sizes[d.name] = d.size
        for name, value in self.overrides.items():
            if name not in self.sizes:
                have = ", ".join(self.sizes) or "no dimensions"
                raise UsageError(f"--dim names no dimension '{name}'; the file declares {have}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"--dim {name}={value}: a size must be a positive integer")
            self.sizes[name] = value
        return tuple(self.sizes.items())

    def value(self, dim: sympy.Expr) -> int | None:
        if dim.is_Integer:
            return int(dim)
        if dim.is_Symbol:
            return self.sizes.get(str(dim))
        v = dim.xreplace({dim_symbol(n): s for n, s in self.sizes.items() if s is not None})
        return int(v) if v.is_Integer else None  # a window's position count, N - A + 1

    def same(self, a: sympy.Expr, b: sympy.Expr) -> bool:
        """Symbolically equal, or both known and numerically equal."""
        if a == b:
            return True
        va, vb = self.value(a), self.value(b)
        return va is not None and va == vb

    def show(self, dim: sympy.Expr) -> str:
        v = self.value(dim)
        if dim.is_Integer:
            return str(dim)
        return f"{dim} ({v})" if v is not None else str(dim)

    # ----------------------------------------------------------- functions
    def functions(self, defs: list[S.FunctionDef]) -> list[UserFunction]:
        out: list[UserFunction] = []
        bodies: dict[str, sympy.Expr] = {}
        first: dict[str, S.FunctionDef] = {}
        for fd in defs:
            self.ident(fd.name, "function", fd)
            if fd.name in BUILTINS or fd.name in OBJECTIVES:
                raise NameError_(f"redefinition of built-in function '{fd.name}'; choose another name",
                                 self.loc(fd))
            m = _REDUCTION.match(fd.name)
            if m:
                raise NameError_(f"'{fd.name}' is reserved for the reduction {m.group(1)} over index "
                                 f"'{m.group(2)}'; choose another function name", self.loc(fd))
            if fd.name in first:
                raise NameError_(f"redefinition of function '{fd.name}' (first defined at line "
                                 f"{first[fd.name].line})", self.loc(fd))
            params = tuple(p.name for p in fd.params)
            for k, p in enumerate(fd.params):
                self.ident(p.name, "parameter", p)
                if p.name in params[:k]:
                    raise FunctionError(f"function '{fd.name}' has two parameters named '{p.name}'", self.loc(p))
            self.safe_body(fd, params, bodies)
            body_loc = self.at(fd.body_line, fd.body_column)
            body = parse_user_function(fd.name, params, fd.body, body_loc, dict(bodies))
            check_differentiable(fd.name, params, body, body_loc)
            first[fd.name] = fd
            bodies[fd.name] = body
            self.bodies[fd.name] = body
            self.arity[fd.name] = len(params)
            out.append(UserFunction(fd.name, params, body, self.loc(fd)))
        return out

    def safe_body(self, fd: S.FunctionDef, params: tuple[str, ...], known: dict) -> None:
        """Let only numbers, operators and known names reach SymPy's parser (it uses eval)."""
        pos = 0
        while pos < len(fd.body):
            m = _BODY_TOKEN.match(fd.body, pos)
            where = self.at(fd.body_line, fd.body_column + pos)
            if m is None:
                raise FunctionError(
                    f"unexpected character '{fd.body[pos]}' in the body of function '{fd.name}'; expected "
                    "numbers, + - * / ^ **, parentheses, its parameters and functions", where)
            name = m.group("name")
            if name is not None and not (name in params or name in BUILTINS or name in known
                                         or (_sympy_allowed(name) and not keyword.iskeyword(name))):
                raise FunctionError(
                    f"function '{fd.name}' uses undefined name '{name}'; expected only its parameters "
                    f"({', '.join(params)}) and known functions", where)
            pos = m.end()
        try:  # parse only (never run) to give a one-line message for bad syntax
            ast.parse(fd.body.replace("^", "**"), mode="eval")
        except SyntaxError as exc:
            col = fd.body_column + max((exc.offset or 1) - 1, 0)
            raise FunctionError(f"cannot read the body of function '{fd.name}': {exc.msg}",
                                self.at(fd.body_line, min(col, fd.body_column + len(fd.body)))) from None

    # ------------------------------------------------------------- tensors
    def tensors(self, decls: list[S.Decl]) -> list[TensorDecl]:
        out: list[TensorDecl] = []
        for d in decls:
            self.ident(d.name, "tensor", d)
            if d.name in self.shapes:
                raise NameError_(f"redefinition of tensor '{d.name}' ({self.shapes[d.name].where})", self.loc(d))
            if not d.name.labels and d.name.base in self.sizes:
                raise NameError_(f"'{d.name}' is a dimension; a tensor may not reuse a dimension name", self.loc(d))
            names = [ix.name for ix in d.indices]
            for k, ix in enumerate(d.indices):
                self.ident(ix.name, "index", ix)
                if ix.name in names[:k]:
                    raise IndexError_(f"index '{ix.name}' appears twice in the declaration of {d.name}; "
                                      "give each axis its own index", self.loc(ix))
            shape = self.shape(d)
            if not names:  # `weight b : 3` names no indices: make some up
                pool = [c for c in "ijklmnopqrstuvwxyzabcdefgh"]
                names = pool[: len(shape)]
            indices = tuple(ir.Index(n, s) for n, s in zip(names, shape))
            role = "weight" if d.role == "bias" else d.role
            out.append(TensorDecl(d.name, role, indices, self.loc(d)))
            self.shapes[d.name] = _Shape(shape, S.written(d.name, d.indices), "declaration", d.line, role)
        return out

    def shape(self, d: S.Decl) -> tuple[sympy.Expr, ...]:
        n = len(d.indices)
        if d.shape is None:
            if n:
                sizes = ", ".join("n" for _ in range(n))
                raise ShapeError(f"{S.written(d.name, d.indices)} has {n} ind{'ex' if n == 1 else 'ices'} but "
                                 f"no sizes; expected `{d.role} {S.written(d.name, d.indices)} : {sizes}`",
                                 self.loc(d))
            return ()
        if n and len(d.shape) != n:
            raise ShapeError(f"{S.written(d.name, d.indices)} has {n} ind{'ex' if n == 1 else 'ices'} but "
                             f"{len(d.shape)} size{'' if len(d.shape) == 1 else 's'}", self.loc(d.shape[0]))
        out = []
        for s in d.shape:
            if s.name is None:
                if s.value < 1:
                    raise ShapeError(f"a size must be a positive integer, got {s.value}", self.loc(s))
                out.append(sympy.Integer(s.value))
            elif s.name not in self.sizes:
                have = ", ".join(self.sizes) or "none"
                raise NameError_(f"undefined dimension '{s.name}' in the shape of {d.name}; "
                                 f"declared dimensions: {have}", self.loc(s))
            else:
                out.append(dim_symbol(s.name))
        return tuple(out)

    # --------------------------------------------------------------- names
    def names(self, assigns: list[S.Assign], tensors: list[TensorDecl]) -> None:
        first: dict[Name, S.Assign] = {}
        for a in assigns:
            self.ident(a.name, "tensor", a)
            if a.name in self.shapes:
                raise NameError_(f"'{a.name}' is {self.shapes[a.name].where} and cannot also be defined "
                                 "by '='", self.loc(a))
            if a.name in first:
                raise NameError_(f"redefinition of '{a.name}' (first defined at line {first[a.name].line})",
                                 self.loc(a))
            if not a.name.labels and a.name.base in self.sizes:
                raise NameError_(f"'{a.name}' is a dimension; a definition may not reuse a dimension name",
                                 self.loc(a))
            first[a.name] = a
        for a in assigns:
            for node in self.walk(a.expr):
                if (isinstance(node, S.Use) and as_name(node.name) not in self.shapes
                        and as_name(node.name) not in first and node.name not in self.sizes):
                    hint = ""
                    if node.name in self.fam.members:
                        hint = (f"; '{node.name}' is a family: name a member with its label, e.g. "
                                f"{node.name}(t) or {node.name}({max(self.fam.members[node.name])})")
                    elif node.name in BUILTINS or node.name in self.arity or node.name in OBJECTIVES:
                        hint = f"; '{node.name}' is a function: write {node.name}(...) with no space before '('"
                    else:
                        known = ", ".join(map(str, [t.name for t in tensors] + list(first)))
                        hint = f"; expected a declared or defined tensor: {known or 'none so far'}"
                    raise NameError_(f"undefined tensor '{node.name}'{hint}", self.loc(node))
                if (isinstance(node, S.Call) and as_name(node.name) in self.shapes
                        and node.name not in self.fam.members):
                    raise IndexError_(f"'{node.name}' is not a family: write {node.name} without a label, "
                                      f"or declare {node.name}(t) ... for t = 1..T", self.loc(node))

    def order(self, assigns: list[S.Assign]) -> list[S.Assign]:
        """Dependency order, stable: the earliest definition whose inputs are ready goes next."""
        by_name = {a.name: a for a in assigns}
        deps = {a.name: [n for n in self.uses(a) if n in by_name] for a in assigns}
        done: set[Name] = set()
        out: list[S.Assign] = []
        remaining = list(assigns)
        while remaining:
            ready = next((a for a in remaining if all(d in done for d in deps[a.name])), None)
            if ready is None:
                raise self.cycle(remaining, deps, by_name)
            remaining.remove(ready)
            done.add(ready.name)
            out.append(ready)
        return out

    def walk(self, node: S.Expr):
        """:func:`syntax.walk` without the labels of family uses (the ``t`` of ``h(t-1)``)."""
        yield node
        if isinstance(node, S.Call) and node.name in self.fam.members:
            return
        for child in (getattr(node, "left", None), getattr(node, "right", None), getattr(node, "operand", None)):
            if child is not None:
                yield from self.walk(child)
        for arg in getattr(node, "args", ()):
            yield from self.walk(arg)

    def uses(self, a: S.Assign) -> list[Name]:
        """Tensors ``a`` refers to; a family use whose label is summed over (sum_t) uses every member."""
        out = []
        for n in self.walk(a.expr):
            if isinstance(n, S.Use):
                out.append(as_name(n.name))
            elif isinstance(n, S.Call) and n.name in self.fam.members and len(n.args) == 1:
                try:
                    out.append(self.fam.resolve(n, self.fam.env.get(a.name, {})))
                except EinderivError:  # a label summed over, or an error the checker reports in place
                    out.extend(self.fam.members[n.name].values())
        return out

    def cycle(self, remaining, deps, by_name) -> NameError_:
        left = {a.name for a in remaining}
        path: list[str] = []
        node = remaining[0].name
        while node not in path:
            path.append(node)
            node = next(d for d in deps[node] if d in left)
        loop = path[path.index(node):]
        start = min(range(len(loop)), key=lambda k: (by_name[loop[k]].line, by_name[loop[k]].column))
        loop = loop[start:] + loop[:start]
        return NameError_("definition cycle: " + " -> ".join(map(str, loop + [loop[0]])),
                          self.loc(by_name[loop[0]]))

    # --------------------------------------------------------- definitions
    def definition(self, a: S.Assign) -> Definition:
        scope = _Scope(self, a, self.fam.env.get(a.name, {}))
        lhs = [ix.name for ix in a.indices]
        for k, ix in enumerate(a.indices):
            self.ident(ix.name, "index", ix)
            if ix.name in lhs[:k]:
                raise IndexError_(f"index '{ix.name}' appears twice on the left side of {a.name}", self.loc(ix))
        expr, locs = scope.expr(a.expr)
        if ir.is_zero(expr):
            raise scope.all_zero(a.expr)
        if set(locs) != set(lhs):
            raise IndexError_(
                f"free indices differ: the left side {S.written(a.name, a.indices)} has {_fmt(lhs)} but the "
                f"right side has {_fmt(locs)}; they must be the same", self.loc(a))
        indices = tuple(scope.index[n] for n in lhs)
        self.shapes[a.name] = _Shape(tuple(ix.dim for ix in indices), S.written(a.name, a.indices),
                                     "definition", a.line)
        return Definition(a.name, indices, expr, self.loc(a))

    def objective(self, definitions: list[Definition], assigns: list[S.Assign]) -> Name:
        used = {n for d in definitions for n in ir.ref_names(d.expr)}
        cands = [d for d in sorted(definitions, key=lambda d: (d.loc.line, d.loc.column))
                 if not d.indices and d.name not in used]
        want = "expected exactly one scalar definition that no other definition uses, e.g. f = squared_error(p, y)"
        if not cands:
            where = self.loc(assigns[-1]) if assigns else self.at(1, 1)
            raise NameError_(f"no objective: {want}", where)
        if len(cands) > 1:
            names = ", ".join(f"{d.name} (line {d.loc.line})" for d in cands)
            raise NameError_(f"several candidate objectives: {names}; {want}", cands[1].loc)
        return cands[0].name


class _Scope:
    """The indices of one definition: one :class:`ir.Index` per name."""

    def __init__(self, checker: _Checker, a: S.Assign, env: dict[str, int]):
        self.c = checker
        self.env = dict(env)  # range variables: {'t': 3} inside h(3)
        self.name = a.name
        self.L = {ix.name for ix in a.indices}
        self.index: dict[str, ir.Index] = {}
        self.origin: dict[str, tuple[str, int, sympy.Expr]] = {}
        self.written = {ix.name for ix in a.indices} | {
            ix.name for n in S.walk(a.expr) if isinstance(n, (S.Use, S.Call)) for ix in n.indices}
        #: sizes of plain indices known from any use in the definition (for index arithmetic)
        self.known: dict[str, sympy.Expr] = {}
        for n in S.walk(a.expr):
            name = as_name(n.name) if isinstance(n, S.Use) else self.member_of(n)
            if name in checker.shapes and len(checker.shapes[name].dims) == len(n.indices):
                for ix, dim in zip(n.indices, checker.shapes[name].dims):
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
            raise self.all_zero(node)
        widest = max((locs for _, locs, _ in terms), key=len)
        for _, locs, t in terms:
            if not set(locs) <= set(widest):
                raise IndexError_(f"the terms of a sum have different free indices: {_fmt(widest)} and "
                                  f"{_fmt(locs)}; every term must carry the same free indices, or a "
                                  "subset of another term's (it is then broadcast along the rest)",
                                  self.c.loc(t))
        out = tuple(self.index[name] for name in widest)
        exprs = []
        for e, locs, _ in terms:
            missing = tuple(ix for ix in out if ix.name not in locs)
            exprs.append(ir.Prod((e,) + tuple(ir.Ones(ix) for ix in missing), out) if missing else e)
        return (ir.Add(tuple(exprs)) if len(exprs) > 1 else exprs[0]), widest

    def all_zero(self, node: S.Expr) -> IndexError_:
        names = ", ".join(sorted(map(str, self.c.fam.zero)))
        return IndexError_(f"this expression is identically zero: every term uses a zero member ({names}); "
                           "drop it or give the member a value", self.c.loc(node))

    def product(self, factors, node: S.Expr):
        if len(factors) == 1 and factors[0][0] == "expr":
            factors = S.flat_product(factors[0][1])
        irs: list[ir.Expr] = []
        occ: dict[str, list[Location]] = {}
        zero = False
        for kind, n in factors:
            if kind == "neg":
                irs.append(_MINUS_ONE)
                continue
            if kind == "recip":
                irs.append(self.reciprocal(n))
                continue
            e, seen = self.factor(n)
            zero = zero or ir.is_zero(e)
            irs.append(e)
            for name, where in seen:
                occ.setdefault(name, []).append(where)
        for name, where in occ.items():
            if len(where) >= 3 and name not in self.L:
                raise IndexError_(f"index '{name}' appears {len(where)} times in one product; an index may "
                                  f"appear at most twice (then it is summed) unless it is on the left side "
                                  f"of {self.name}", where[2])
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
        if isinstance(n, S.Call) and n.name in self.c.fam.members:  # h(t-1)^i: a family member
            n = S.Use(n.line, n.column, self.c.fam.resolve(n, self.env), n.indices)
            if n.name in self.c.fam.zero:
                return ir.ZERO, [(ix.name, self.c.loc(ix)) for ix in n.indices]
        if isinstance(n, S.Use) and as_name(n.name) not in self.c.shapes:  # a dimension used as a number
            if n.indices:
                raise IndexError_(f"'{n.name}' is a dimension, a number: it takes no indices (write "
                                  f"{n.name}, not {S.written(n.name, n.indices)})", self.c.loc(n.indices[0]))
            return ir.Const(dim_symbol(n.name)), []
        if isinstance(n, S.Use):
            return self.ref(n), [(name, self.c.loc(ix)) for ix in n.indices
                                 for name in ([t for _, t in ix.terms] if ix.terms else [ix.name])]
        if isinstance(n, S.Number):
            return ir.Const(_number(n.text)), []
        if isinstance(n, S.Call):
            e, locs = self.call(n)
        else:  # a parenthesised sum
            e, locs = self.expr(n)
        return e, list(locs.items())

    def reciprocal(self, n: S.Expr) -> ir.Expr:
        if isinstance(n, S.Number):
            v = _number(n.text)
            if v == 0:
                raise ShapeError("division by zero", self.c.loc(n))
            return ir.Const(1 / v)
        e, locs = self.expr(n)
        if locs:
            raise IndexError_(f"division by an expression with free indices {_fmt(locs)}; only a number or "
                              "an index-free (scalar) expression can divide", self.c.loc(n))
        if isinstance(e, ir.Const):  # a size or a function of sizes: `/ n`, `/ sqrt(d)`
            return ir.Const(1 / e.value)
        return ir.Apply(ir.Fn("reciprocal", (0,)), (e,))

    def ref(self, use: S.Use) -> ir.Expr:
        shape = self.c.shapes[as_name(use.name)]
        if len(use.indices) != len(shape.dims):
            n = len(shape.dims)
            raise IndexError_(f"wrong number of indices for {use.name}: its {shape.kind} {shape.written} "
                              f"(line {shape.line}) has {n}, this use has {len(use.indices)}", self.c.loc(use))
        if not any(ix.terms for ix in use.indices):
            return ir.Ref(use.name, tuple(self.bind(ix, dim, use.name, k + 1)
                                          for k, (ix, dim) in enumerate(zip(use.indices, shape.dims))))
        indices, windows, out = [], [], []
        for k, (ix, dim) in enumerate(zip(use.indices, shape.dims)):
            if not ix.terms:
                indices.append(self.bind(ix, dim, use.name, k + 1))
                out.append(indices[-1])
                continue
            w = self.window(use, ix, dim, k + 1)
            indices.append(w.u)
            windows.append(w)
            out += [w.t, w.a]
        return ir.Prod(tuple(windows) + (ir.Ref(use.name, tuple(indices)),), ir.unique(out))

    def window(self, use: S.Use, ix: S.Idx, dim: sympy.Expr, axis: int) -> ir.Window:
        """``x^{s·t+a}`` on an axis of size N: S^u_{t,a} x^u, t over the valid positions
        floor((N − A)/s) + 1 (valid padding: every s·t + a < N)."""
        shown = f"{use.name}^{{{ix.name}}}"
        if len(ix.terms) != 2 or ix.terms[0][1] == ix.terms[1][1]:
            raise IndexError_(f"index arithmetic in {shown} takes two different indices, a position and an "
                              "offset, as in x^{t+a} or x^{2t+a}", self.c.loc(ix))
        strided = [k for k, (c, _) in enumerate(ix.terms) if c != 1]
        for c, name in ix.terms:
            if c < 1:
                raise ShapeError(f"the stride in {shown} must be a positive integer, got {c}", self.c.loc(ix))
        if len(strided) == 2:
            raise IndexError_(f"index arithmetic in {shown} may give a stride to one index only (the position, "
                              "2t+a); the offset counts kernel taps one by one", self.c.loc(ix))
        if strided:
            pos = strided[0]
        else:  # the offset is the index whose size another tensor gives (the kernel's K_a)
            sized = [k for k, (_, name) in enumerate(ix.terms) if name in self.known]
            pos = 0 if len(sized) != 1 else 1 - sized[0]
        (stride, t), (_, a) = ix.terms[pos], ix.terms[1 - pos]
        if a not in self.known:
            raise ShapeError(f"the size of the offset '{a}' in {shown} is unknown: it must also index a tensor, "
                             f"as the kernel does in K_{a} x^{{t+{a}}}", self.c.loc(ix))
        A = self.known[a]
        count = sympy.floor((dim - A) / stride) + 1
        value = self.c.value(count)
        if value is not None and value < 1:
            raise ShapeError(f"{use.name} axis {axis} has size {self.c.show(dim)} but the offset '{a}' in {shown} "
                             f"has size {self.c.show(A)}: no valid position is left (valid padding needs the window "
                             "inside the axis)", self.c.loc(ix))
        if t in self.index and not self.c.same(self.index[t].dim, count):
            t0, a0, d0 = self.origin[t]
            raise ShapeError(f"index arithmetic out of range: {shown} has {self.c.show(count)} valid positions "
                             f"'{t}' (valid padding) but {t0} axis {a0} gives '{t}' size {self.c.show(d0)}",
                             self.c.loc(ix))
        if t not in self.index:
            self.index[t] = ir.Index(t, count)
            self.origin[t] = (shown, axis, count)
        a_ix = self.bind(S.Idx(ix.line, ix.column, a, ix.up), A, shown, axis)
        u = ir.fresh(dim, "u")
        return ir.Window(u, self.index[t], a_ix, stride)

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
        if arity is None and _REDUCTION.match(n.name):
            return self.reduction(n, *_REDUCTION.match(n.name).groups())
        if arity is None:
            known = ", ".join(list(_PUBLIC_BUILTINS) + list(self.c.arity) + list(OBJECTIVES))
            raise FunctionError(f"unknown function '{n.name}'; known functions: {known}", self.c.loc(n))
        if len(n.args) != arity:
            raise FunctionError(f"function '{n.name}' takes {arity} argument{'' if arity == 1 else 's'}, "
                                f"got {len(n.args)}", self.c.loc(n))
        args, locs = [], {}
        for a in n.args:
            e, l = self.expr(a)
            if ir.is_zero(e):
                raise self.all_zero(a)
            args.append(e)
            for k, v in l.items():
                locs.setdefault(k, v)
        if all(isinstance(a, ir.Const) for a in args):  # sqrt(d): a number, not a node
            body = self.c.bodies.get(n.name, BUILTINS.get(n.name))
            return ir.Const(body.subs({ARG[k]: a.value for k, a in enumerate(args)}, simultaneous=True)), {}
        return ir.Apply(ir.Fn(n.name, (0,) * arity), tuple(args)), locs

    def reduction(self, n: S.Call, kind: str, k: str):
        """``sum_k(e)``, ``mean_k(e)``, ``softmax_k(e)``.

        Inside the argument ``k`` is held like a left-side index (repeats are
        elementwise, never summed), so ``mean_j(c^j c^j)`` is a mean of squares.
        """
        if len(n.args) != 1:
            raise FunctionError(f"{n.name} takes 1 argument, got {len(n.args)}", self.c.loc(n))
        where = Location(self.c.path, n.line, n.column + len(kind) + 1)
        if kind != "softmax" and k not in self.env and self.c.fam.uses_var(n.args[0], k):
            return self.label_sum(n, kind, k)
        if not _IDENT.match(k) or "_" in k:
            raise IndexError_(f"'{k}' is not an index: {kind}_ must be followed by one index name "
                              f"(letters and digits), as in {kind}_k(...)", where)
        held = self.L
        if kind != "softmax" and k in held:
            raise IndexError_(f"{n.name} sums over '{k}', which is on the left side of {self.name}; an index "
                              "on the left side stays free", where)
        self.L = held | {k}
        try:
            e, locs = self.expr(n.args[0])
        finally:
            self.L = held
        if k not in locs:
            have = f"its free indices are {_fmt(locs)}" if locs else "it has no free indices"
            raise IndexError_(f"{n.name} reduces over index '{k}', but '{k}' is not free in its argument "
                              f"({have}); expected an expression that carries {k}, e.g. {kind}_{k}(x^{k})",
                              self.c.loc(n.args[0]))
        ix = self.index[k]
        if kind == "softmax":
            return ir.Softmax(e, ix), locs
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
            have = set()
            for m in self.c.fam.members[use.name]:
                for v in range(-1000, 1001):  # labels are small integers; solve lab(v) == m
                    if self.c.fam.value(lab, {**self.env, k: v}) == m:
                        have.add(v)
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
            raise self.all_zero(n.args[0])
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
                a = S.Use(a.line, a.column, self.c.fam.resolve(a, self.env), ())  # p(t): a member
            args.append(a)
            if not isinstance(a, S.Use) or a.indices:
                shown = f" (write {a.name}, not {S.written(a.name, a.indices)})" if isinstance(a, S.Use) else ""
                raise FunctionError(f"the arguments of {n.name} must be bare tensor names, as in "
                                    f"{n.name}(p, y){shown}", self.c.loc(a))
            dims = self.c.shapes[as_name(a.name)].dims
            if len(dims) != 1:
                raise ShapeError(f"{n.name} needs vectors (one index each), but {a.name} has {len(dims)} "
                                 f"ind{'ex' if len(dims) == 1 else 'ices'}", self.c.loc(a))
            shapes.append(dims[0])
        p, y = args
        if not self.c.same(shapes[0], shapes[1]):
            raise ShapeError(f"{n.name} needs two vectors of the same size, but {p.name} has size "
                             f"{self.c.show(shapes[0])} and {y.name} has size {self.c.show(shapes[1])}",
                             self.c.loc(y))
        name = next(c for c in ["l"] + [f"l{k}" for k in range(1, 100)] if c not in self.written)
        l = ir.Index(name, shapes[0])
        return objective_expr(n.name, ir.Ref(p.name, (l,)), ir.Ref(y.name, (l,)))


# ------------------------------------------------------------------ manual use
def _main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m einderiv.check FILE.ein", file=sys.stderr)
        return 2
    try:
        net = load(argv[1])
    except EinderivError as err:
        print(str(err), file=sys.stderr)
        return 2
    for d in net.definitions:
        print(f"{d.name}{list(d.indices)} = {d.expr!r}")
    print(f"objective: {net.objective}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
