"""Plain-text (Unicode) index notation: how one expression is written.

:class:`TextPrinter` prints einderiv IR as ``einderiv derive`` shows it:
``W1^j_i`` (indices up or down as the file writes them); ``∂f/∂z_v1_j`` (the
back-propagated adjoint, its tensor's indices flipped); ``γ[v1]^j_s`` =
∂v1/∂z_v1 = δ^j_s A′ (Eq. 1); ``η[v2,z_v1]^m_j`` = ∂v2/∂z_v1 (Eq. 4);
``∂²f/∂p_l∂p_q`` the objective's Hessian (``∂³f/∂p_l∂p_m∂p_q`` its third
derivative); ``p̂^l`` = softmax_l(p^l); ``δ^j_s`` the Kronecker delta, the only δ;
``relu′(z_v1^j)`` an elementwise derivative.  A repeated index is summed unless it is free on the left-hand
side (then the product is elementwise); ``Σ_l`` is written out only where an
index is summed over other than two factors.  :class:`ScalarStrPrinter` is
SymPy's str printer for the closed forms of A′, A″.

The document around the expressions is :mod:`einderiv.emit.text`.
"""
from __future__ import annotations

from typing import Sequence

import sympy
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from ..analysis.factor import FactoredTerm
from ..frontend.builtins import ARG
from ..ir import Apply, ArgMax, Inv, MatDet, Max, Delta, Index, LogSumExp, Name, Ones, Quantity, Ref, Softmax, Window
from .base import IndexPrinter, mul_parts

_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
PRIMES = {1: "′", 2: "″", 3: "‴"}
MINUS = "−"


#: subscript letters Unicode has (for ``(∂²f/∂U∂U)|ₚ``, at fixed p)
_SUB_LETTERS = dict(zip("aehijklmnoprstuvx", "ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))


def sub_name(name) -> str:
    """A name as a subscript where Unicode can write it (``p`` → ``ₚ``), else after ``at ``."""
    text = str(name)
    return "".join(_SUB_LETTERS[c] for c in text) if all(c in _SUB_LETTERS for c in text) else f" at {text}"


def hat(name) -> str:
    """``p̂`` (a combining circumflex on the name's first letter): the softmax of ``p``."""
    text = str(name)
    return text[0] + "\u0302" + text[1:]


def sup(n) -> str:
    return str(n).translate(_SUP)


def primes(order: int) -> str:
    return PRIMES.get(order, f"⁽{sup(order)}⁾")


# ------------------------------------------------------------ scalar printer
class ScalarStrPrinter(StrPrinter):
    """SymPy's str printer as a reader writes it: the placeholders z0, z1 as z (or z₁, z₂), products
    by juxtaposition (``2 tanh(z)``), powers as superscripts (``tanh(z)²``, ``1/t²``), ``−`` for minus,
    the unit step as θ, the logistic function as σ, a piecewise function as ``where(c, a, b)``."""

    _default_settings = dict(StrPrinter._default_settings, nargs=1)

    def _print_Symbol(self, expr):
        if expr in ARG:
            k = ARG.index(expr)
            return "z" if self._settings["nargs"] == 1 else f"z{str(k + 1).translate(_SUB)}"
        return super()._print_Symbol(expr)

    def _print_Pow(self, expr, rational=False):
        b, e = expr.as_base_exp()
        if e.is_Rational and e < 0:
            return "1/" + (self._print_Pow(sympy.Pow(b, -e, evaluate=False)) if e != -1
                           else self.parenthesize(b, PRECEDENCE["Pow"]))
        base = self._print(b)
        if not (b.is_Atom or b.is_Function):
            base = f"({base})"
        if e == sympy.S.Half:
            return f"√{base}"
        if e.is_Integer and e > 1:
            return base + sup(e)
        return f"{base}^({self._print(e)})"

    def _print_Mul(self, expr):
        """Factors side by side, the number first and bracketed sums last: ``−2 tanh(z) (1 − tanh(z)²)``."""
        parts = mul_parts(expr)
        if parts is None:
            return super()._print_Mul(expr).replace("*", " ")
        coef, plain, brackets = parts
        body = " ".join([self.parenthesize(f, PRECEDENCE["Mul"]) for f in plain]
                        + [f"({self._print(f)})" for f in brackets])
        return ("-" if coef == -1 else "" if coef == 1 else self._print(coef) + " ") + body

    def _print_Heaviside(self, expr):
        return f"θ({self._print(expr.args[0])})"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Relational(self, expr):
        op = {">=": "≥", "<=": "≤"}.get(expr.rel_op, expr.rel_op)
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def _print_Piecewise(self, expr):
        """As the notation writes it: ``where(z ≤ 1, a, b)``, nested for more pieces."""
        *rest, (last, cond) = expr.args
        out = self._print(last) if cond == sympy.true else f"where({self._print(cond)}, {self._print(last)}, nan)"
        for value, c in reversed(rest):
            out = f"where({self._print(c)}, {self._print(value)}, {out})"
        return out

    def _print_Function(self, expr):
        if expr.func.__name__ == "sigma":
            return f"σ({self._print(expr.args[0])})"
        return super()._print_Function(expr)

    def doprint(self, expr):
        return super().doprint(expr).replace("-", MINUS)


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

    def trace(self, r: Ref) -> str:
        return f"tr({r.name})"

    # -- indices ------------------------------------------------------------
    def _print_Index(self, ix: Index) -> str:
        return self.arith.get(ix) or self.names[ix]


    def arith_text(self, w: Window) -> str:
        return w.written(self.names[w.t], self.names[w.a] if w.a is not None else None)

    def script(self, up: Sequence[Index], down: Sequence[Index]) -> str:
        """``^{up}_{down}``: every upper index before every lower one."""
        return self.slots([(ix, True) for ix in up] + [(ix, False) for ix in down])

    def slots(self, slots: Sequence[tuple[Index, bool]]) -> str:
        """The indices in order, each run up or down: ``^j_i``, ``_s^i``."""
        out, run, mark = "", [], None
        for ix, up in list(slots) + [(None, None)]:
            m = None if ix is None else ("^" if up else "_")
            if m != mark and run:
                out += self._group(mark, run)
                run = []
            mark = m
            if ix is not None:
                run.append(ix)
        return out

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
        """A tensor's symbol without indices (for messages): ``W1``, ``∂f/∂z_v1``, ``η[v2,z_v1]``."""
        if isinstance(e, Ref):
            return self.short(e.name)
        if isinstance(e, Quantity):
            role = self.ctx.role(e)
            if role in ("dfdp", "adj", "hobj"):
                return self.derivative(e, ())
            if role == "gamma":
                return f"γ[{e.parts[0]}]"
            if role == "eta":
                return f"η[{','.join(map(str, e.parts))}]"
            if role == "beta":
                return f"β[{e.parts[0]}]"
            if role == "alpha":
                return f"α[{','.join(map(str, e.parts))}]"
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
        return str(name) + self.slots(list(zip(e.indices, self.ctx.upper(name, len(e.indices)))))

    def derivative(self, q: Quantity, ixs: Sequence[Index]) -> str:
        """``∂f/∂z_v1_j``, ``∂²f/∂p_l∂p_m``: the objective by the quantity's parts, each with its
        slots flipped; a parameter the objective uses itself at fixed other arguments
        (``(∂²f/∂U_{lj}∂U_{st})|_p``)."""
        up = self.ctx.upper(q, len(ixs)) if ixs else ()
        sizes = self.ctx.split_parts(q, len(ixs)) if ixs else (0,) * len(q.parts)
        k, at, out = len(q.parts), 0, ""
        for part, n in zip(q.parts, sizes):
            out += f"∂{part}" + self.slots(list(zip(ixs[at:at + n], up[at:at + n])))
            at += n
        head = f"∂{sup(k) if k > 1 else ''}{self.ctx.objective}/" + out
        held = self.ctx.held(q)
        return f"({head})|{','.join(map(sub_name, held))}" if held else head

    def _print_quantity(self, q: Quantity, ixs: tuple[Index, ...]) -> str:
        role = self.ctx.role(q)
        if role in ("dfdp", "adj", "hobj"):
            return self.derivative(q, ixs)
        up = self.ctx.upper(q, len(ixs))
        if role == "d":
            return f"({self.short(q)})" + self.script((), ixs)
        return self.short(q) + self.slots(list(zip(ixs, up)))

    def _print_Delta(self, e: Delta) -> str:
        return "δ" + self.script((e.a,), (e.b,))

    def _print_Ones(self, e: Ones) -> str:
        """The ones vector a broadcast term carries along an index it lacks."""
        return "𝟙" + self.script((e.index,), ())

    def _print_Window(self, e: Window) -> str:
        """The selection tensor S^u_{t,a} = [u = stride·t + a] (stride shown as S₂)."""
        mark = (str(e.stride).translate(_SUB) if e.plain else f"[{e.mark()}]") if e.mark() else ""
        return "S" + mark + self.script((e.u,), e.free[1:])

    def _print_Apply(self, e: Apply) -> str:
        return f"{self.fn_name(e)}({', '.join(self._print(a) for a in e.args)})"

    def _print_Softmax(self, e: Softmax) -> str:
        """``p̂^l`` = softmax_l(p^l) where the context names it so."""
        arg = e.arg
        if isinstance(arg, Ref) and arg.indices == (e.over,) and arg.name in self.ctx.softmax:
            up = self.ctx.upper(arg.name, 1)[0]
            return hat(arg.name) + self.slots([(e.over, up)])
        return f"softmax_{self._print(e.over)}({self._print(arg)})"

    def _print_LogSumExp(self, e: LogSumExp) -> str:
        return f"log Σ_{self._print(e.over)} exp({self._print(e.arg)})"

    def _print_Max(self, e: Max) -> str:
        return f"{e.kind}_{self._print(e.over)}({self._print(e.arg)})"

    def _print_ArgMax(self, e: ArgMax) -> str:
        """The maximisers' weights ∂ max_k(x)/∂x^k: ``argmax_k(x)`` (one-hot, split at ties)."""
        return f"arg{e.kind}_{self._print(e.over)}({self._print(e.arg)})"

    def _print_MatDet(self, e: MatDet) -> str:
        """``logdet(S)``, ``det(S)``; over an expression, its row and column indices after ``_``."""
        if isinstance(e.arg, Ref) and e.arg.indices == (e.row, e.col):
            return f"{e.kind}({e.arg.name})"
        return f"{e.kind}_{{{self._print(e.row)},{self._print(e.col)}}}({self._print(e.arg)})"

    def _print_Inv(self, e: Inv) -> str:
        """``inv(S)^i_j``: the inverse's indices in the slots of its argument's declaration."""
        if isinstance(e.arg, Ref) and e.arg.indices == (e.row, e.col) and not isinstance(e.arg.name, Quantity):
            up = self.ctx.upper(e.arg.name, 2)
            return f"inv({e.arg.name})" + self.slots(list(zip((e.row, e.col), up)))
        return f"inv({self._print(e.arg)})" + self.script((e.row,), (e.col,))

    # -- factored terms ----------------------------------------------------
    def term(self, t: FactoredTerm, out: Sequence[Index], sep: str = " ⊗ ") -> str:
        """One term of a block: scalar weights, then the outer-product factors joined by ⊗."""
        coef, pieces, groups = self.term_parts(t, out)
        body = " ".join(pieces + ([sep.join(groups)] if groups else []))
        return self._with_coef(coef, body)
