"""Families: sequences of tensors with an integer label, unrolled by the checker.

A recurrent network is written once per step and unrolled over a concrete
range (docs/notation.md, "Sequences and recurrence"):

    input  x(t)^k : n                                  for t = 1..T
    h(0)^j = 0
    h(t)^j = tanh(W^j_i h(t-1)^i + V^j_k x(t)^k)      for t = 1..T
    p^l    = U^l_j h(T)^j

Each member becomes an ordinary tensor whose :class:`~einderiv.ir.Name`
carries its label — ``x(1)``, ``h(3)`` — which is what :mod:`einderiv.analysis.fold`
reads to write the derivation once per family.  This module does the unrolling: labels are
integer arithmetic in the range variable and sizes (``t-1``, ``T``), ranges
need concrete sizes, and a member definition ``h(0)^j = 0`` is a *zero
member*: every product that uses it is dropped.  The syntax tree is not
changed: unrolling gives :class:`Member` records, each the statement as
written with the name and range value it stands for.

Example:
    >>> member_name("h", 3)
    Name('h(3)')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Union

from . import syntax as S
from ..errors import Argument, IndexError_, Location, NameError_, ShapeError
from ..ir import Name, label_range
from .limits import max_steps


def member_name(base: str, label: int) -> Name:
    return Name(base, (label,))


@dataclass(frozen=True, eq=False)
class Member:
    """One unrolled declaration or definition: the name it defines (``h(3)``, or ``h``
    outside a family), the statement as written, and the range variable's value (``{'t': 3}``)."""

    name: Name
    node: Union[S.Decl, S.Assign]
    env: Mapping[str, int]


@dataclass
class Families:
    """Members of every family: base name → {label: member name}; zero members apart."""

    path: str
    sizes: dict[str, int | None]
    members: dict[str, dict[int, Name]] = field(default_factory=dict)
    zero: set[Name] = field(default_factory=set)
    #: ``depth n`` names: a range bounded by one may be empty (``for k = 2..n`` with n = 1)
    depths: set[str] = field(default_factory=set)

    def loc(self, node: S.Node) -> Location:
        return Location(self.path, node.line, node.column)

    # ------------------------------------------------------------- labels
    def value(self, label: S.Label, env: dict[str, int]) -> int:
        """The integer a label stands for, with ``env`` giving range variables."""
        total = label.const
        for name, coef in label.terms:
            if name in env:
                total += coef * env[name]
            elif name in self.sizes:
                if self.sizes[name] is None:
                    raise ShapeError(f"label '{label.text()}' needs a concrete size: dimension '{name}' has "
                                     f"none; give it in the file's dims ({name} = 4) or as {{0}}", self.loc(label),
                                     arguments=(Argument("dims", name, 4),))
                total += coef * self.sizes[name]
            else:
                known = ", ".join(list(env) + [d for d in self.sizes]) or "none"
                raise NameError_(f"unknown name '{name}' in label '{label.text()}'; a label is integer "
                                 f"arithmetic in the range variable and sizes ({known})", self.loc(label))
        return total

    def solve(self, label: S.Label, var: str, target: int, env: dict[str, int]) -> int | None:
        """The value of ``var`` for which ``label`` is ``target`` (None if no integer is).

        A label is affine in each name, ``c·t + k``, so ``t = (target − k) / c`` when that is
        an integer.

        Example: ``2t-1`` is 5 at t = 3 and never 4.
        """
        c = dict(label.terms).get(var, 0)
        k = self.value(label, {**env, var: 0})
        if c == 0:
            return None
        t, rest = divmod(target - k, c)
        return t if rest == 0 else None

    def labels(self, rng: S.Range | None, node: S.Node) -> list[dict[str, int]]:
        """One environment per label value of ``for t = lo..hi`` ([{}] without a range)."""
        if rng is None:
            return [{}]
        if rng.var in self.sizes:
            raise NameError_(f"'{rng.var}' is a dimension and cannot be a range variable; "
                             "choose another name, e.g. for t = 1..T", self.loc(rng))
        lo, hi = self.value(rng.lo, {}), self.value(rng.hi, {})
        if hi < lo and any(name in self.depths for name, _ in rng.lo.terms + rng.hi.terms):
            return []  # a layer template at a small depth: no member in this range
        if hi < lo:
            raise ShapeError(f"empty range {rng.var} = {lo}..{hi}: the upper bound must be at least the "
                             "lower bound", self.loc(rng))
        if hi - lo + 1 > max_steps():
            raise ShapeError(f"range {rng.var} = {lo}..{hi} unrolls {hi - lo + 1} members; expected at most {max_steps()} "
                             "(EINDERIV_MAX_STEPS or --max-steps sets the limit)", self.loc(rng))
        return [{rng.var: v} for v in range(lo, hi + 1)]

    # -------------------------------------------------------- unrolling
    def unroll_decl(self, d: S.Decl) -> list[Member]:
        """One member per label value of the declaration's range (itself, outside a family)."""
        return [Member(self.member(d, env), d, env) for env in self._envs(d)]

    def unroll_assign(self, a: S.Assign) -> list[Member]:
        """One member per label value of the definition's range; zero members are kept apart."""
        out = []
        for env in self._envs(a):
            name = self.member(a, env)
            if a.label is not None and isinstance(a.expr, S.Number) and float(a.expr.text) == 0:
                self.zero.add(name)  # `h(0)^j = 0`: a zero initial state
                continue
            out.append(Member(name, a, env))
        return out

    def _envs(self, node) -> list[dict[str, int]]:
        if node.range is not None and node.label is None:
            raise IndexError_(f"'for {node.range.var} = ...' unrolls a family, but {node.name} has no label; "
                              f"write {node.name}({node.range.var})", self.loc(node.range))
        if node.range is not None and all(n != node.range.var for n, _ in node.label.terms):
            raise IndexError_(f"the label of {node.name}({node.label.text()}) does not use the range variable "
                              f"'{node.range.var}'; write {node.name}({node.range.var})", self.loc(node.label))
        return self.labels(node.range, node)

    def member(self, node, env: dict[str, int]) -> Name:
        if node.label is None:
            return Name(node.name)
        lab = self.value(node.label, env)
        self.members.setdefault(node.name, {})
        # a redefinition of a member is reported by the checker under the member's name
        self.members[node.name].setdefault(lab, member_name(node.name, lab))
        return member_name(node.name, lab)

    # ---------------------------------------------------------- uses
    def resolve(self, call: S.Call, env: dict[str, int]) -> Name:
        """The member a use ``h(t-1)`` names under ``env``."""
        if len(call.args) != 1:
            raise IndexError_(f"a family member takes one label, as in {call.name}(t-1); got "
                              f"{len(call.args)}", self.loc(call))
        lab = self.value(to_label(call.args[0], self.path), env)
        have = self.members[call.name]
        if lab not in have:
            raise IndexError_(f"label out of range: {call.name}({lab}) is not a member of {call.name}, whose "
                              f"labels are {label_range(sorted(have))}", self.loc(call))
        return have[lab]

    def uses_var(self, node: S.Expr, var: str) -> list[S.Call]:
        """The family uses under ``node`` whose label mentions ``var``."""
        out = []
        for n in S.walk(node):
            if isinstance(n, S.Call) and n.name in self.members and len(n.args) == 1:
                try:
                    lab = to_label(n.args[0], self.path)
                except IndexError_:
                    continue
                if any(name == var for name, _ in lab.terms):
                    out.append(n)
        return out


def to_label(node: S.Expr, path: str) -> S.Label:
    """The argument of ``h(...)`` as a label: integers, names, + and -, integer multiples."""
    if isinstance(node, S.Use) and not node.indices:
        return S.Label(node.line, node.column, 0, ((node.name, 1),))
    if isinstance(node, S.Number) and node.text.isdigit():
        return S.Label(node.line, node.column, int(node.text), ())
    if isinstance(node, S.Sum):
        a, b = to_label(node.left, path), to_label(node.right, path)
        terms = dict(a.terms)
        sign = -1 if node.negate else 1
        for n, c in b.terms:
            terms[n] = terms.get(n, 0) + sign * c
        return S.Label(a.line, a.column, a.const + sign * b.const, tuple((n, c) for n, c in terms.items() if c))
    if isinstance(node, S.Neg):
        a = to_label(node.operand, path)
        return S.Label(node.line, node.column, -a.const, tuple((n, -c) for n, c in a.terms))
    raise IndexError_("a label must be integer arithmetic in the range variable and sizes, as in h(t-1) "
                      "or h(T)", Location(path, node.line, node.column))
