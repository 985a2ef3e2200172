"""Names in generated code: Python identifiers, einsum letters, and the formulas of comments.

Output is deterministic and independent of machine-made index names: letters come from an
index's hint (``_j_36`` → ``j``) and the order of appearance; identifiers come from the
structured tensor names (:class:`~einderiv.ir.Name`, :class:`~einderiv.ir.Quantity`), never
from reading text back.

* :func:`identifier` — a Python identifier for any text; :func:`quantity_identifier` for a
  tensor or quantity (``jac[v2,z_v1]`` → ``jac_v2__z_v1``); :func:`local_hint` for a name
  written with loop variables (``h(k-1)`` → ``h_km1``);
* :class:`Namer` — unique identifiers within a module or function;
* :class:`Letters` — index → einsum letter for one statement;
* :class:`FormulaPrinter` / :func:`formula` — the one-line reading of an IR expression that
  comments and docstrings show (``Σ_c hobj_p__p[c,j] v2[i]``).
"""
from __future__ import annotations

import functools
import keyword
import re
from typing import Callable

import sympy
from sympy.printing.printer import Printer

from ..errors import EinderivError
from ..ir import Add, Const, Index, Kind, Quantity, Sym, TensorName

#: einsum letters for indices (``B`` is the batch axis)
POOL = "ijklmnopqrstuvwxyz" + "acdefgh" + "ACDEFGHIJKLMNOPQRSTUVWXYZ"
#: names the module contract uses: never a tensor's identifier
RESERVED = {"np", "t", "B", "params", "data", "vector", "wrt", "PARAMS", "INPUTS",
            "GRADIENT_FACTOR_AXES", "objective", "gradient", "per_sample_gradient",
            "gradient_factors", "expand_factors", "hessian", "hvp", "third_derivative", "third_derivatives",
            "per_sample_gradient_norms", "ggn_diagonal"}


# ------------------------------------------------------------------ identifiers
def identifier(text: str) -> str:
    """A Python identifier for ``text``: ``d[adj[p],W1]`` → ``d_adj_p__W1``."""
    s = re.sub(r"\W+", "_", text.replace(",", "__")).strip("_") or "v"
    return "v" + s if s[0].isdigit() else s


def quantity_identifier(name: TensorName, label: Callable | None = None) -> str:
    """The identifier of a tensor or quantity: ``h(3)`` → ``h_3``, ``jac[v2,z_v1]`` →
    ``jac_v2__z_v1``, the R-derivative of ``jac[a,s]`` → ``Rjac_a__s`` (``label`` writes labels,
    see :meth:`~einderiv.ir.Name.text`)."""
    if isinstance(name, Quantity):
        head, parts = name.kind.value, name.parts
        if name.kind is Kind.R:
            head, parts = "R" + parts[0].kind.value, parts[0].parts
        return identifier(head + "_" + "__".join(identifier(p.text(label)) for p in parts))
    return identifier(name.text(label))


def local_hint(name: TensorName, syms: tuple[str, ...]) -> str:
    """A variable name for a tensor written with loop variables: ``h(k-1)`` → ``h_km1``,
    ``adj[z_h(k+1)]`` → ``adj_z_h_kp1``."""
    def part(lab) -> str:
        if not (isinstance(lab, Sym) and lab.symbol in syms):
            return f"({lab})"
        off = lab.offset
        return "_" + lab.symbol + ("" if not off else ("m" if off < 0 else "p") + str(abs(off)))

    return quantity_identifier(name, part)


class Namer:
    """Hands out unique identifiers, never a keyword or one of ``taken`` (a module's names,
    shared by the namers of all its functions: read, never copied)."""

    def __init__(self, taken=frozenset()):
        self.fixed = taken
        self.taken = set(keyword.kwlist)
        self.next: dict[str, int] = {}  # base -> next suffix to try (a scan from 2 is quadratic)

    def new(self, hint: str) -> str:
        base = identifier(hint)
        name, k = base, self.next.get(base, 2)
        while name in self.taken or name in self.fixed:
            name, k = f"{base}_{k}", k + 1
        self.next[base] = k
        self.taken.add(name)
        return name


# ----------------------------------------------------------------- letters
def _hint(ix: Index) -> str:
    return _name_hint(ix.name)


@functools.lru_cache(maxsize=4096)
def _name_hint(name: str) -> str:
    """The letter hint of an index name (``_j_36`` → ``j``), by name: asked 80,000 times by a
    32-layer module's statements, for a few thousand names."""
    base = name.lstrip("_").split("_")[0]
    return base if len(base) >= 1 and base[0].isascii() and base[0].isalpha() else ""


class Letters:
    """Index → einsum letter for one statement (its comment uses the same letters).

    A sum's terms are separate statements: each takes a :meth:`fork` of the letters of the
    sum's own axes, so the dummies of one term never use up the letters of the next — a
    block of hundreds of terms needs only as many letters as its largest term.
    """

    def __init__(self, first=()):
        self.of: dict[Index, str] = {}
        self.used = {"B"}
        for ix in first:
            self[ix]

    def fork(self) -> "Letters":
        """A copy for one term: letters it adds are its own."""
        other = Letters()
        other.of, other.used = dict(self.of), set(self.used)
        return other

    def __getitem__(self, ix: Index) -> str:
        c = self.of.get(ix)  # (one hash of the index, not two: asked 80,000 times in a deep module)
        if c is None:
            h = _hint(ix)[:1]
            c = h if h and h not in self.used else next((c for c in POOL if c not in self.used), None)
            if c is None:
                raise EinderivError("a generated statement needs more than 51 einsum letters")
            self.of[ix] = c
            self.used.add(c)
        return c

    def subscripts(self, indices) -> str:
        """``[j,i]`` (empty for a scalar)."""
        return "[" + ",".join(self[i] for i in indices) + "]" if indices else ""


# ----------------------------------------------------------------- formulas
def join(texts: list[str]) -> str:
    """``a + b - c`` from ``["a", "b", "-c"]``."""
    out = texts[0] if texts else "0.0"
    for c in texts[1:]:
        out += f" - {c[1:]}" if c.startswith("-") else f" + {c}"
    return out


class FormulaPrinter(Printer):
    """The one-line reading of an IR expression in comments: ``Σ_c hobj_p__p[c,j] v2[i]``.

    Settings: ``letters`` (a :class:`Letters`) and ``name`` (tensor name → identifier)."""

    _default_settings = {"letters": None, "name": None}

    def __init__(self, settings=None):
        super().__init__(settings)
        self.L: Letters = self._settings["letters"] or Letters()
        self.name = self._settings["name"] or quantity_identifier

    def _print(self, e, **kwargs):  # one method per node class, found once per printer class
        methods = _METHODS.setdefault(type(self), {})
        method = methods.get(type(e))
        if method is None:
            method = methods[type(e)] = getattr(type(self), "_print_" + type(e).__name__, type(self).emptyPrinter)
        return method(self, e)

    def _print_Const(self, e) -> str:
        return str(e.value)

    def _print_Ref(self, e) -> str:
        return self.name(e.name) + self.L.subscripts(e.indices)

    def _print_Delta(self, e) -> str:
        return "δ" + self.L.subscripts((e.a, e.b))

    def _print_Window(self, w) -> str:
        mark = w.mark()
        return f"S{mark if w.plain else '[' + mark + ']' if mark else ''}[{','.join(self.L[i] for i in w.free)}]"

    def _print_Ones(self, e) -> str:
        return "1" + self.L.subscripts((e.index,))

    def _print_Prod(self, e) -> str:
        coef = sympy.Mul(*[f.value for f in e.factors if isinstance(f, Const)])
        body = " ".join(f"({self._print(f)})" if isinstance(f, Add) else self._print(f)
                        for f in e.factors if not isinstance(f, Const)) or "1"
        if e.bound:
            body = "Σ_" + "".join(self.L[i] for i in e.bound) + " " + body
        return body if coef == 1 else "-" + body if coef == -1 else f"{coef} {body}"

    def _print_Add(self, e) -> str:
        base, texts = self.L, []
        for t in e.terms:  # each term letters its own dummies (Letters.fork)
            self.L = base.fork()
            texts.append(self._print(t))
        self.L = base
        return join(texts)

    def _print_Apply(self, e) -> str:
        d = e.fn.deriv
        mark = "'" * d[0] if len(d) == 1 else "_d" + "".join(map(str, d))
        return f"{e.fn.name}{mark}(" + ", ".join(self._print(a) for a in e.args) + ")"

    def _print_Softmax(self, e) -> str:
        return f"softmax_{self.L[e.over]}({self._print(e.arg)})"

    def _print_LogSumExp(self, e) -> str:
        return f"logsumexp_{self.L[e.over]}({self._print(e.arg)})"

    def _print_Max(self, e) -> str:
        return f"{e.kind}_{self.L[e.over]}({self._print(e.arg)})"

    def _print_ArgMax(self, e) -> str:
        return f"arg{e.kind}_{self.L[e.over]}({self._print(e.arg)})"

    def _print_MatDet(self, e) -> str:
        return f"{e.kind}_{self.L[e.row]}{self.L[e.col]}({self._print(e.arg)})"

    def _print_Inv(self, e) -> str:
        return f"inv_{self.L[e.row]}{self.L[e.col]}({self._print(e.arg)})"

    def emptyPrinter(self, e):
        raise TypeError(f"no formula for {type(e).__name__}")


_METHODS: dict = {}


def formula(e, letters: Letters, name: Callable[[TensorName], str]) -> str:
    """``e`` as comments read it, with ``letters`` for indices and ``name`` for tensors."""
    return FormulaPrinter({"letters": letters, "name": name}).doprint(e)
