"""Syntax tree → :class:`~einderiv.frontend.network.Network`: declarations, names, order, objective.

This is where a file's statements get their meaning (docs/notation.md):

* every name is resolved (dimensions, tensors, functions, definitions), no
  name is defined twice, and names are identifiers that can reach generated code;
* declarations get their shapes; sizes given by the caller (``dims``) replace
  the file's;
* families are unrolled (:mod:`.families`), definitions form no cycle and are put
  in dependency order (file order wherever the dependencies allow);
* the objective is the one scalar definition nothing else uses.

The right side of each definition — the summation convention and index sizes — is
:mod:`.summation`'s.  Every problem is raised as an :class:`EinderivError` subclass
whose location points at the offending token.

Example:
    >>> net = load("t.ein", "dims n = 3\\ninput x^i : n\\nf = x^i x^i\\n")
    >>> net.objective, net.definition("f").expr.out
    (Name('f'), ())
"""
from __future__ import annotations

import ast
import keyword
import re
import sys
from typing import Mapping

import sympy

from .. import ir
from . import syntax as S
from ..errors import (Argument, EinderivError, FunctionError, IndexError_, NameError_, ShapeError,
                      UsageError)
from ..ir import Index, Name
from .builtins import BUILTINS, OBJECTIVES, check_differentiable, parse_user_function
from .matrices import reserved_matrix_name
from .context import REDUCTION, Context, Shape, fmt
from .families import Member, to_label
from .limits import check_body
from .network import Definition, Network, TensorDecl, UserFunction, dim_symbol
from .parse import parse, read
from .summation import Scope, all_zero

_BODY_TOKEN = re.compile(r"\s+|(?P<num>([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)"
                         r"|(?P<name>[A-Za-z][A-Za-z0-9_]*)|\*\*|<=|>=|[-+*/^(),<>]")
#: the declared domains of data (grammar rule ``domain``)
DOMAINS = ("positive", "probability", "onehot")
#: names a function body may use besides its parameters, functions and SymPy's (piecewise bodies)
_BODY_NAMES = ("where", "abs")


# --------------------------------------------------------------------- public
def load(path: str, text: str | None = None, dims: Mapping[str, int] | None = None) -> Network:
    """Read, parse and check a network file (at a concrete depth; :func:`einderiv.load`
    also returns layer templates).

    ``text`` replaces the file's contents (``path`` still names it in
    messages); ``dims`` sets sizes by name (``dims={'n0': 4}``).

    Example:
        >>> load("paper_mlp.ein", open("derivations/paper_mlp.ein").read()).objective
        Name('f')
    """
    text = read(path) if text is None else text
    return check(parse(text, path), path, text, dims)


def check(module: S.Module, path: str, text: str = "", dims: Mapping[str, int] | None = None) -> Network:
    """Check a parsed module (see :func:`load`).  ``dims`` is only read."""
    return Checker(path, text, dims or {}).run(module)


def _juxtaposed(body: str) -> int | None:
    """Where a function body puts two operands side by side (``2z``, ``z sigmoid(z)``, ``(z)(z)``):
    the offset of the second, else None."""
    prev, pos = None, 0
    while pos < len(body):
        m = _BODY_TOKEN.match(body, pos)
        if m is None:
            return None
        text = m.group()
        kind = "num" if m.group("num") else "name" if m.group("name") else None if text.isspace() else text
        if kind is not None:
            if prev in ("num", "name", ")") and kind in ("num", "name") or prev in ("num", ")") and kind == "(":
                return pos
            prev = kind
        pos = m.end()
    return None


def _sympy_allowed(name: str) -> bool:
    """SymPy functions and constants a function body may name (erf, Abs, pi …)."""
    obj = getattr(sympy, name, None)
    return (isinstance(obj, sympy.FunctionClass) or isinstance(obj, sympy.NumberSymbol)
            or name in ("sqrt", "cbrt", "E"))


def same_as_dimension(name: Name) -> str:
    """The one rule for names shared with a dimension: a tensor written with indices (``h^j``) or a
    label (``h(t)``) may share one; a bare name in an expression is the size, so a scalar may not."""
    return (f"'{name}' is a dimension; a scalar tensor may not reuse a dimension name (a bare {name} in an "
            f"expression is the size {name}); choose another name (a tensor with indices or a label, "
            f"{name}^j or {name}(t), may share it)")


# -------------------------------------------------------------------- checker
class Checker(Context):
    """Checks one module, statement kind by statement kind (see the module docstring)."""

    def __init__(self, path: str, text: str, overrides: Mapping[str, int]):
        super().__init__(path, text)
        self.overrides = dict(overrides)

    def run(self, module: S.Module) -> Network:
        st = module.statements
        depths = [s.item for s in st if isinstance(s, S.Depth)]
        self.fam.depths.update(d.name for d in depths)
        dims = self.dims([d for s in st if isinstance(s, S.Dims) for d in s.items] + depths)
        functions = self.functions([s for s in st if isinstance(s, S.FunctionDef)])
        tensors = self.tensors([m for s in st if isinstance(s, S.Decl) for m in self.fam.unroll_decl(s)])
        assigns = [m for s in st if isinstance(s, S.Assign) for m in self.fam.unroll_assign(s)]
        self.names(assigns, tensors)
        self.pad([u for s in st if isinstance(s, S.Padded) for u in s.names], tensors, assigns)
        definitions = [self.definition(a) for a in self.order(assigns)]
        objective = self.objective(definitions, assigns)
        return Network(self.path, dims, tuple(tensors), tuple(functions), tuple(definitions),
                       objective, self.text, module.header, tuple(self.padded))

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
            given = (Argument("dims", name, value),)
            if name not in self.sizes:
                have = ", ".join(self.sizes) or "no dimensions"
                raise UsageError(f"{{0}} names no dimension '{name}'; the file declares {have}", arguments=given)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError("{0}: a size must be a positive integer", arguments=given)
            self.sizes[name] = value
        return tuple(self.sizes.items())

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
            reserved_matrix_name(fd.name, self.loc(fd))
            m = REDUCTION.match(fd.name)
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
            check_body(fd.name, params, fd.body, body_loc, bodies)
            body = parse_user_function(fd.name, params, fd.body, body_loc, dict(bodies))
            check_differentiable(fd.name, params, body, body_loc, lambda fn, fd=fd: self.named_in(fd, fn))
            first[fd.name] = fd
            bodies[fd.name] = body
            self.bodies[fd.name] = body
            self.arity[fd.name] = len(params)
            out.append(UserFunction(fd.name, params, body, self.loc(fd)))
        return out

    def named_in(self, fd: S.FunctionDef, fn: str):
        """Where the body of ``fd`` first names the function ``fn`` (else where the body starts)."""
        m = re.search(rf"\b{re.escape(fn)}\s*\(", fd.body)
        return self.at(fd.body_line, fd.body_column + (m.start() if m else 0))

    def safe_body(self, fd: S.FunctionDef, params: tuple[str, ...], known: dict) -> None:
        """Let only numbers, operators and known names reach SymPy's parser (it uses eval)."""
        pos = 0
        while pos < len(fd.body):
            m = _BODY_TOKEN.match(fd.body, pos)
            where = self.at(fd.body_line, fd.body_column + pos)
            if m is None:
                raise FunctionError(
                    f"unexpected character '{fd.body[pos]}' in the body of function '{fd.name}'; expected "
                    "numbers, + - * / ^ **, comparisons < <= > >= inside where(...), parentheses, its parameters "
                    "and functions", where)
            name = m.group("name")
            if name is not None and not (name in params or name in BUILTINS or name in known or name in _BODY_NAMES
                                         or (_sympy_allowed(name) and not keyword.iskeyword(name))):
                raise FunctionError(
                    f"function '{fd.name}' uses undefined name '{name}'; expected only its parameters "
                    f"({', '.join(params)}) and known functions", where)
            pos = m.end()
        at = _juxtaposed(fd.body)
        if at is not None:
            raise FunctionError(
                f"function '{fd.name}' multiplies by juxtaposition, which only index expressions do; "
                f"write '*' in a function body: {fd.body[:at].rstrip()} * {fd.body[at:].strip()}",
                self.at(fd.body_line, fd.body_column + at))
        try:  # parse only (never run) to give a one-line message for bad syntax
            ast.parse(fd.body.replace("^", "**"), mode="eval")
        except SyntaxError as exc:
            col = fd.body_column + max((exc.offset or 1) - 1, 0)
            raise FunctionError(f"cannot read the body of function '{fd.name}': {exc.msg}",
                                self.at(fd.body_line, min(col, fd.body_column + len(fd.body)))) from None

    # ------------------------------------------------------------- tensors
    def tensors(self, decls: list[Member]) -> list[TensorDecl]:
        out: list[TensorDecl] = []
        for m in decls:
            d, name = m.node, m.name
            self.ident(name, "tensor", d)
            if name in self.shapes:
                raise NameError_(f"redefinition of tensor '{name}' ({self.shapes[name].where})", self.loc(d))
            if not name.labels and d.shape is None and name.base in self.sizes:
                raise NameError_(same_as_dimension(name), self.loc(d))
            names = [ix.name for ix in d.indices]
            for k, ix in enumerate(d.indices):
                self.ident(ix.name, "index", ix)
                if ix.name in names[:k]:
                    raise IndexError_(f"index '{ix.name}' appears twice in the declaration of {name}; "
                                      "give each axis its own index", self.loc(ix))
            shape = self.shape(d, name)
            if not names:  # `weight b : 3` names no indices: make some up
                names = list("ijklmnopqrstuvwxyzabcdefgh"[: len(shape)])
            indices = tuple(Index(n, s) for n, s in zip(names, shape))
            role = "weight" if d.role == "bias" else d.role
            up = tuple(ix.up for ix in d.indices)
            domain = self.domain(d, name, indices)
            out.append(TensorDecl(name, role, indices, self.loc(d), up, d.role == "bias", domain))
            self.shapes[name] = Shape(shape, S.written(name, d.indices), "declaration", d.line, role)
        return out

    def domain(self, d: S.Decl, name: Name, indices: tuple[Index, ...]) -> str | None:
        """The declared domain of data: weights take none, and ``probability``/``onehot`` run
        along an axis (the last)."""
        if d.domain is None:
            return None
        kind = d.domain.kind
        if d.role not in ("input", "label"):
            raise NameError_(f"'{kind}' declares the values of data, but {name} is a {d.role}; a domain "
                             "follows the sizes of an input or a label (input s^i : n positive)",
                             self.loc(d.domain))
        if kind != "positive" and not indices:
            raise ShapeError(f"'{kind}' runs along the last axis of {name}, which has none; declare a vector "
                             f"(input {name}^l : c {kind}) or use 'positive'", self.loc(d.domain))
        return kind

    def shape(self, d: S.Decl, name: Name) -> tuple[sympy.Expr, ...]:
        n = len(d.indices)
        written = S.written(name, d.indices)
        if d.shape is None:
            if n:
                sizes = ", ".join("n" for _ in range(n))
                raise ShapeError(f"{written} has {n} ind{'ex' if n == 1 else 'ices'} but "
                                 f"no sizes; expected `{d.role} {written} : {sizes}`", self.loc(d))
            return ()
        if n and len(d.shape) != n:
            raise ShapeError(f"{written} has {n} ind{'ex' if n == 1 else 'ices'} but "
                             f"{len(d.shape)} size{'' if len(d.shape) == 1 else 's'}", self.loc(d.shape[0]))
        out = []
        for s in d.shape:
            if s.name is None:
                if s.value < 1:
                    raise ShapeError(f"a size must be a positive integer, got {s.value}", self.loc(s))
                out.append(sympy.Integer(s.value))
            elif s.name not in self.sizes and s.name in DOMAINS:
                scalar = f", or with no ':' for a scalar (input {name} positive)" if s.name == "positive" else ""
                raise NameError_(f"'{s.name}' is a domain, not a dimension: write it after the sizes "
                                 f"(input {name}^i : n {s.name}){scalar}", self.loc(s))
            elif s.name not in self.sizes:
                have = ", ".join(self.sizes) or "none"
                raise NameError_(f"undefined dimension '{s.name}' in the shape of {name}; "
                                 f"declared dimensions: {have}", self.loc(s))
            else:
                out.append(dim_symbol(s.name))
        return tuple(out)

    # --------------------------------------------------------------- names
    def names(self, assigns: list[Member], tensors: list[TensorDecl]) -> None:
        first: dict[Name, Member] = {}
        for m in assigns:
            a, name = m.node, m.name
            self.ident(name, "tensor", a)
            if name in self.shapes:
                raise NameError_(f"'{name}' is {self.shapes[name].where} and cannot also be defined "
                                 "by '='", self.loc(a))
            if name in first:
                raise NameError_(f"redefinition of '{name}' (first defined at line {first[name].node.line})",
                                 self.loc(a))
            if not name.labels and not a.indices and name.base in self.sizes:
                raise NameError_(same_as_dimension(name), self.loc(a))
            first[name] = m
        for m in assigns:
            for node in self.walk(m.node.expr):
                if (isinstance(node, S.Use) and Name(node.name) not in self.shapes
                        and Name(node.name) not in first and node.name not in self.sizes):
                    raise NameError_(f"undefined tensor '{node.name}'{self.hint(node.name, tensors, first)}",
                                     self.loc(node))
                if (isinstance(node, S.Call) and Name(node.name) in self.shapes
                        and node.name not in self.fam.members):
                    raise IndexError_(f"'{node.name}' is not a family: write {node.name} without a label, "
                                      f"or declare {node.name}(t) ... for t = 1..T", self.loc(node))

    def pad(self, uses: list[S.Use], tensors: list[TensorDecl], assigns: list[Member]) -> None:
        """``padded x, v1``: each name a tensor, once (docs/notation.md, zero padding)."""
        bases = {t.name.base for t in tensors} | {m.name.base for m in assigns}
        for u in uses:
            if u.name not in bases:
                raise NameError_(f"padded names '{u.name}', which is no tensor"
                                 f"{self.hint(u.name, tensors, [m.name for m in assigns])}",
                                 self.loc(u))
            if u.name in self.padded:
                raise NameError_(f"'{u.name}' is padded twice (first at line {self.padded[u.name].line}); "
                                 "expected each tensor once", self.loc(u))
            self.padded[u.name] = u

    def hint(self, name: str, tensors: list[TensorDecl], defined) -> str:
        """What an undefined tensor name may have meant."""
        if name in self.fam.members:
            return (f"; '{name}' is a family: name a member with its label, e.g. "
                    f"{name}(t) or {name}({max(self.fam.members[name])})")
        if name in BUILTINS or name in self.arity or name in OBJECTIVES:
            return f"; '{name}' is a function: write {name}(...) with no space before '('"
        known = ", ".join(map(str, [t.name for t in tensors] + list(defined)))
        return f"; expected a declared or defined tensor: {known or 'none so far'}"

    def order(self, assigns: list[Member]) -> list[Member]:
        """Dependency order, stable: the earliest definition whose inputs are ready goes next."""
        by_name = {m.name: m for m in assigns}
        deps = {m.name: [n for n in self.uses(m) if n in by_name] for m in assigns}
        done: set[Name] = set()
        out: list[Member] = []
        remaining = list(assigns)
        while remaining:
            ready = next((m for m in remaining if all(d in done for d in deps[m.name])), None)
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

    def uses(self, m: Member) -> list[Name]:
        """Tensors ``m`` refers to; a family use whose label is summed over (sum_t) uses every member."""
        out = []
        for n in self.walk(m.node.expr):
            if isinstance(n, S.Use) and (n.indices or n.name not in self.sizes):  # (a bare size: no tensor)
                out.append(Name(n.name))
            elif isinstance(n, S.Call) and n.name in self.fam.members and len(n.args) == 1:
                try:
                    out.append(self.fam.resolve(n, dict(m.env)))
                except EinderivError:  # a label summed over, or an error the checker reports in place
                    if not self.out_of_range(n, m):
                        out.extend(self.fam.members[n.name].values())
        return out

    def out_of_range(self, call: S.Call, m: Member) -> bool:
        """Whether a family use's label is a number (under ``m``'s range variable) that names no
        member: no dependency, so the checker reports it where it is, not as a cycle."""
        try:
            return self.fam.value(to_label(call.args[0], self.path), dict(m.env)) not in self.fam.members[call.name]
        except EinderivError:
            return False

    def cycle(self, remaining: list[Member], deps, by_name) -> NameError_:
        left = {m.name for m in remaining}
        path: list[Name] = []
        node = remaining[0].name
        while node not in path:
            path.append(node)
            node = next(d for d in deps[node] if d in left)
        loop = path[path.index(node):]
        start = min(range(len(loop)), key=lambda k: (by_name[loop[k]].node.line, by_name[loop[k]].node.column))
        loop = loop[start:] + loop[:start]
        return NameError_("definition cycle: " + " -> ".join(map(str, loop + [loop[0]])),
                          self.loc(by_name[loop[0]].node))

    # --------------------------------------------------------- definitions
    def definition(self, m: Member) -> Definition:
        a = m.node
        lhs = [ix.name for ix in a.indices]
        for k, ix in enumerate(a.indices):
            self.ident(ix.name, "index", ix)
            if ix.name in lhs[:k]:
                raise IndexError_(f"index '{ix.name}' appears twice on the left side of {m.name}", self.loc(ix))
        scope = Scope(self, m)
        expr, locs = scope.expr(a.expr)
        if ir.is_zero(expr):
            raise all_zero(self, a.expr)
        if set(locs) != set(lhs):
            raise IndexError_(
                f"free indices differ: the left side {S.written(m.name, a.indices)} has {fmt(lhs)} but the "
                f"right side has {fmt(locs)}; they must be the same", self.loc(a))
        indices = tuple(scope.index[n] for n in lhs)
        self.shapes[m.name] = Shape(tuple(ix.dim for ix in indices), S.written(m.name, a.indices),
                                    "definition", a.line)
        return Definition(m.name, indices, expr, self.loc(a), tuple(ix.up for ix in a.indices))

    def objective(self, definitions: list[Definition], assigns: list[Member]) -> Name:
        used = {n for d in definitions for n in ir.ref_names(d.expr)}
        cands = [d for d in sorted(definitions, key=lambda d: (d.loc.line, d.loc.column))
                 if not d.indices and d.name not in used]
        want = "expected exactly one scalar definition that no other definition uses, e.g. f = squared_error(p, y)"
        if not cands:
            where = self.loc(assigns[-1].node) if assigns else self.at(1, 1)
            raise NameError_(f"no objective: {want}", where)
        if len(cands) > 1:
            names = ", ".join(f"{d.name} (line {d.loc.line})" for d in cands)
            raise NameError_(f"several candidate objectives: {names}; {want}", cands[1].loc)
        return cands[0].name


# ------------------------------------------------------------------ manual use
def _main(argv: list[str]) -> int:
    """``python -m einderiv.frontend.check FILE``: the checked definitions, for debugging."""
    if len(argv) != 2:
        print("usage: python -m einderiv.frontend.check FILE.ein", file=sys.stderr)
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
