"""Plain-text (Unicode) index notation: how one expression is written.

:class:`TextPrinter` prints einderiv IR as ``einderiv derive`` shows it:
``W1^j_i`` (first index up, the rest down); ``δ[z_v1]_j`` = ∂f/∂z_v1 (the
back-propagated adjoint); ``γ[v1]^j_s`` = ∂v1/∂z_v1 = δ^j_s A′ (Eq. 1);
``η[v2,z_v1]^m_j`` = ∂v2/∂z_v1 (Eq. 4); ``∂²f/∂p_l∂p_q`` the objective's
Hessian; ``δ^j_s`` a Kronecker delta; ``relu′(z_v1^j)`` an elementwise
derivative.  A repeated index is summed unless it is free on the left-hand
side (then the product is elementwise); ``Σ_l`` is written out only where an
index is summed over other than two factors.  :class:`ScalarStrPrinter` is
SymPy's str printer for the closed forms of A′, A″.

The document around the expressions is :mod:`einderiv.emit.text`.
"""
from __future__ import annotations

from typing import Sequence

from sympy.printing.str import StrPrinter

from ..analysis.factor import FactoredTerm
from ..frontend.builtins import ARG
from ..ir import Apply, Delta, Index, LogSumExp, Name, Ones, Quantity, Ref, Softmax, Window
from .base import IndexPrinter

_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
PRIMES = {1: "′", 2: "″", 3: "‴"}
MINUS = "−"


def sup(n) -> str:
    return str(n).translate(_SUP)


def primes(order: int) -> str:
    return PRIMES.get(order, f"⁽{sup(order)}⁾")


# ------------------------------------------------------------ scalar printer
class ScalarStrPrinter(StrPrinter):
    """SymPy's str printer with the placeholders z0, z1 shown as z (or z₁, z₂) and x² powers."""

    _default_settings = dict(StrPrinter._default_settings, nargs=1)

    def _print_Symbol(self, expr):
        if expr in ARG:
            k = ARG.index(expr)
            return "z" if self._settings["nargs"] == 1 else f"z{str(k + 1).translate(_SUB)}"
        return super()._print_Symbol(expr)

    def _print_Pow(self, expr, rational=False):
        b, e = expr.as_base_exp()
        if e.is_Integer and 1 < e < 10:
            base = self._print(b)
            if not (b.is_Atom or b.is_Function):
                base = f"({base})"
            return base + sup(e)
        return super()._print_Pow(expr, rational)

    def doprint(self, expr):
        s = super().doprint(expr)
        return s.replace(" - ", f" {MINUS} ").replace("-", MINUS) if s.startswith("-") or " - " in s else s


# ------------------------------------------------------------ index printer
class TextPrinter(IndexPrinter):
    """Prints einderiv IR in index notation, one ``_print_<Node>`` per IR node.

    Settings: ``names`` (an :class:`IndexNames`: letters for this statement's
    indices) and ``context`` (a :class:`Context`: index positions and symbols).

    >>> import sympy; from einderiv.ir import Index, Ref
    >>> j, i = Index("j", sympy.Symbol("n1")), Index("i", sympy.Symbol("n0"))
    >>> TextPrinter().doprint(Ref("W1", (j, i)))
    'W1^j_i'
    """

    printmethod = "_einderiv_text"
    minus = MINUS

    def scalar_printer(self):
        return ScalarStrPrinter()

    def sum_prefix(self, sums) -> str:
        return "Σ_" + "".join(self._print(ix) for ix in sums) + " "

    def arith_entry(self, w: Window) -> str:
        return self.arith_text(w)

    # -- indices ------------------------------------------------------------
    def _print_Index(self, ix: Index) -> str:
        return self.arith.get(ix) or self.names[ix]


    def arith_text(self, w: Window) -> str:
        return f"{w.stride if w.stride != 1 else ''}{self.names[w.t]}+{self.names[w.a]}"

    def script(self, up: Sequence[Index], down: Sequence[Index]) -> str:
        return self._group("^", up) + self._group("_", down)

    def _group(self, mark: str, ixs: Sequence[Index]) -> str:
        if not ixs:
            return ""
        letters = [self._print(ix) for ix in ixs]
        if len(letters) == 1 and len(letters[0]) == 1:
            return mark + letters[0]
        sep = "," if any(len(s) > 1 for s in letters) else ""
        return mark + "{" + sep.join(letters) + "}"

    # -- symbols ------------------------------------------------------------
    def short(self, e) -> str:
        """A tensor's symbol without indices (for messages): ``W1``, ``δ[z_v1]``, ``η[v2,z_v1]``."""
        if isinstance(e, Ref):
            return self.short(e.name)
        if isinstance(e, Quantity):
            role = self.ctx.role(e)
            f = self.ctx.objective
            if role == "dfdp":
                return f"∂{f}/∂{e.parts[0]}"
            if role == "adj":
                return f"δ[{e.parts[0]}]"
            if role == "gamma":
                return f"γ[{e.parts[0]}]"
            if role == "eta":
                return f"η[{','.join(map(str, e.parts))}]"
            if role == "hobj":
                return f"∂²{f}/∂{e.parts[0]}∂{e.parts[1]}"
            if role == "hess":  # second-order adjoint ∂²f/∂ε_s∂ε_s'
                return f"H[{e.parts[0]},{e.parts[1]}]"
            if role == "d":
                return f"∂({self.short(e.parts[0])})/∂{e.parts[1]}"
            return str(e)
        if isinstance(e, Apply):
            return self.fn_name(e)
        if isinstance(e, Delta):
            return "δ"
        if isinstance(e, Name):
            return str(e)
        return self._print(e)

    def fn_name(self, e: Apply) -> str:
        d = e.fn.deriv
        if len(d) == 1:
            return e.fn.name + (primes(d[0]) if d[0] else "")
        marks = "".join(f"∂{str(k + 1).translate(_SUB)}" + (sup(o) if o > 1 else "")
                        for k, o in enumerate(d) if o)
        return marks + e.fn.name

    # -- nodes --------------------------------------------------------------
    def _print_Ref(self, e: Ref) -> str:
        name = e.name
        if isinstance(name, Quantity):
            return self._print_quantity(name, e.indices)
        up = self.ctx.upper(name, len(e.indices))
        return str(name) + self.script([ix for ix, u in zip(e.indices, up) if u],
                                  [ix for ix, u in zip(e.indices, up) if not u])

    def _print_quantity(self, q: Quantity, ixs: tuple[Index, ...]) -> str:
        role = self.ctx.role(q)
        f = self.ctx.objective
        if role in ("gamma", "eta"):
            a, s = self.ctx.split_jac(q, ixs)
            return self.short(q) + self.script(a, s)
        if role == "dfdp":
            return f"∂{f}/∂{q.parts[0]}" + self.script((), ixs)
        if role == "hobj":
            k = self.ctx.n_indices(q.parts[0], len(ixs) // 2)
            return (f"∂²{f}/∂{q.parts[0]}" + self.script((), ixs[:k])
                    + f"∂{q.parts[1]}" + self.script((), ixs[k:]))
        if role == "d":
            return f"({self.short(q)})" + self.script((), ixs)
        return self.short(q) + self.script((), ixs)

    def _print_Delta(self, e: Delta) -> str:
        return "δ" + self.script((e.a,), (e.b,))

    def _print_Ones(self, e: Ones) -> str:
        """The ones vector a broadcast term carries along an index it lacks."""
        return "𝟙" + self.script((e.index,), ())

    def _print_Window(self, e: Window) -> str:
        """The selection tensor S^u_{t,a} = [u = stride·t + a] (stride shown as S₂)."""
        mark = str(e.stride).translate(_SUB) if e.stride != 1 else ""
        return "S" + mark + self.script((e.u,), (e.t, e.a))

    def _print_Apply(self, e: Apply) -> str:
        return f"{self.fn_name(e)}({', '.join(self._print(a) for a in e.args)})"

    def _print_Softmax(self, e: Softmax) -> str:
        arg = e.arg
        if isinstance(arg, Ref) and arg.indices == (e.over,) and arg.name in self.ctx.softmax:
            up = self.ctx.upper(arg.name, 1)[0]
            sym = self.ctx.softmax[arg.name]
            return sym + (self.script((e.over,), ()) if up else self.script((), (e.over,)))
        return f"softmax_{self._print(e.over)}({self._print(arg)})"

    def _print_LogSumExp(self, e: LogSumExp) -> str:
        return f"log Σ_{self._print(e.over)} exp({self._print(e.arg)})"

    # -- factored terms ----------------------------------------------------
    def term(self, t: FactoredTerm, out: Sequence[Index], sep: str = " ⊗ ") -> str:
        """One term of a block: scalar weights, then the outer-product factors joined by ⊗."""
        coef, pieces, groups = self.term_parts(t, out)
        body = " ".join(pieces + ([sep.join(groups)] if groups else []))
        return self._with_coef(coef, body)
