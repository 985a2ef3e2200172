"""LaTeX index notation: how one expression is written in the paper's notation.

:class:`LatexIndexPrinter` typesets einderiv IR as in the paper's Section 2.1:
upper and lower indices (``W^{(1),j}_{i}`` for a tensor named ``W1`` — the
bracketed label is the paper's layer number ``w^{(k),j}_i``; ``z^{(v_{1}),j}``
for the pre-activation ``z_v1``); adjoints as
``\\frac{\\partial f}{\\partial z^{(v_{1})}_{j}}``; the Jacobians
``\\gamma^{(v_{1}),j}_{s}`` (Eq. 1) and ``\\eta^{(v_{2},z_{v_{1}}),m}_{j}`` (Eq. 4);
``\\otimes`` between outer-product factors.  The ``tex_*`` helpers turn names
and labels into LaTeX; :func:`range_tex` and :func:`sum_tex` write a family's
range (``t = 1,\\dots,T-1``) and a sum over its steps.  The output is ASCII
only (every user name is an identifier; ``_`` is turned into a label or escaped).

The document around the expressions is :mod:`einderiv.emit.latex`.

Example::

    >>> from einderiv.ir import Index, Ref
    >>> import sympy
    >>> j, i = Index("j", sympy.Symbol("n1")), Index("i", sympy.Symbol("n0"))
    >>> LatexIndexPrinter().doprint(Ref("W1", (j, i)))
    'W^{(1),j}_{i}'
"""
from __future__ import annotations

from typing import Sequence

from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from ..analysis.factor import FactoredTerm
from ..frontend.builtins import ARG
from ..ir import Apply, ArgMax, Inv, MatDet, Max, Delta, Index, LogSumExp, Name, Ones, Quantity, Ref, Softmax, Window
from .base import IndexPrinter, mul_parts
from .latex_names import Naming, escape, tex_function, tex_index, tex_primes, tex_tensor


# ------------------------------------------------------------ scalar printer
class ScalarLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the placeholders z0, z1 shown as z (or z_1, z_2)."""

    _default_settings = dict(LatexPrinter._default_settings, nargs=1)

    def _print_Symbol(self, expr, style="plain"):
        if expr in ARG:
            k = ARG.index(expr)
            return "z" if self._settings["nargs"] == 1 else f"z_{{{k + 1}}}"
        return super()._print_Symbol(expr, style)

    def _print_Mul(self, expr):
        """Factors side by side, the number first and bracketed sums last (:func:`mul_parts`)."""
        parts = mul_parts(expr)
        if parts is None:
            return super()._print_Mul(expr)
        coef, plain, brackets = parts
        body = " ".join([self.parenthesize(f, PRECEDENCE["Mul"]) for f in plain]
                        + [r"\left(" + self._print(f) + r"\right)" for f in brackets])
        return ("-" if coef == -1 else "" if coef == 1 else self._print(coef) + " ") + body


# ------------------------------------------------------------ index printer
class LatexIndexPrinter(IndexPrinter):
    """Prints einderiv IR as LaTeX math, one ``_print_<Node>`` per IR node.

    Settings: ``names`` (:class:`IndexNames`), ``context`` (:class:`Context`) and
    ``naming`` (a :class:`~einderiv.emit.latex_names.Naming`, or its mode: ``"compact"``,
    the paper's ``η^{(2,1)}``, or ``"nested"``, ``η^{(v_{2},z_{v_{1}})}``).
    """

    printmethod = "_einderiv_latex"
    _default_settings = dict(IndexPrinter._default_settings, naming="nested")

    def __init__(self, settings=None):
        super().__init__(settings)
        naming = self._settings["naming"]
        self.naming: Naming = naming if isinstance(naming, Naming) else Naming(self.ctx, naming)

    def scalar_printer(self):
        return ScalarLatexPrinter()

    def paren(self, s: str) -> str:
        return r"\left(" + s + r"\right)"

    def sum_prefix(self, sums) -> str:
        return r"\sum_{" + self._letters(sums) + "} "

    def trace(self, r: Ref) -> str:
        return r"\operatorname{tr} " + self.slots(*self.naming.tensor(r.name), [])

    # -- indices ------------------------------------------------------------
    def _print_Index(self, ix: Index) -> str:
        if ix in self.arith:  # index arithmetic: x^{t+a}
            w = self.arith[ix]
            return w.written(tex_index(self.names[w.t]), tex_index(self.names[w.a]) if w.a is not None else None)
        return tex_index(self.names[ix])

    def _letters(self, ixs: Sequence[Index]) -> str:
        parts = [self._print(ix) for ix in ixs]
        return ("," if any(len(self.names[ix]) > 1 or ix in self.arith for ix in ixs) else "").join(parts)

    def tensor(self, base: str, label: str | None, up: Sequence[Index], down: Sequence[Index]) -> str:
        """``base^{(label),up}_{down}``: every upper index before every lower one."""
        return self.slots(base, label, [(ix, True) for ix in up] + [(ix, False) for ix in down])

    def slots(self, base: str, label: str | None, slots: Sequence[tuple[Index, bool]]) -> str:
        """``base`` with its indices in order, each up or down: ``W^{(1),j}_{i}``; indices
        out of the usual up-then-down order are staggered, ``X_{s}{}^{i}``."""
        parts: list[list] = [["^", [f"({label})"]]] if label else []
        for ix, up in slots:
            mark = "^" if up else "_"
            if parts and parts[-1][0] == mark:
                parts[-1][1].append(ix)
            else:
                parts.append([mark, [ix]])
        out = base
        for k, (mark, items) in enumerate(parts):
            ixs = [x for x in items if isinstance(x, Index)]
            body = ",".join(x for x in ([items[0]] if isinstance(items[0], str) else []) + (
                [self._letters(ixs)] if ixs else []) if x)
            if k >= 2 or (k == 1 and parts[0][0] != "^"):
                out += "{}"
            out += mark + "{" + body + "}"
        return out

    # -- symbols ------------------------------------------------------------
    @property
    def f(self) -> str:
        return self.tensor(*tex_tensor(self.ctx.objective), (), ())

    def short(self, e) -> str:
        """A tensor's symbol without indices: ``W^{(1)}``, ``\\eta^{(2,1)}``."""
        if isinstance(e, Ref):
            return self.short(e.name)
        if isinstance(e, Quantity):
            return self._print_quantity(e, ())
        if isinstance(e, Apply):
            return self.fn_name(e)
        if isinstance(e, Delta):
            return r"\delta"
        if isinstance(e, Name):
            return self.tensor(*self.naming.tensor(e), (), ())
        return self._print(e)

    def fn_name(self, e: Apply) -> str:
        d = e.fn.deriv
        if len(d) == 1:
            return tex_function(e.fn.name) + tex_primes(d[0])
        marks = "".join(r"\partial_{%d}" % (k + 1) + (f"^{{{o}}}" if o > 1 else "")
                        for k, o in enumerate(d) if o)
        return marks + tex_function(e.fn.name)

    # -- nodes --------------------------------------------------------------
    def _print_Ref(self, e: Ref) -> str:
        if isinstance(e.name, Quantity):
            return self._print_quantity(e.name, e.indices)
        up = self.ctx.upper(e.name, len(e.indices))
        return self.slots(*self.naming.tensor(e.name), list(zip(e.indices, up)))

    def derivative(self, q: Quantity, ixs: Sequence[Index]) -> str:
        """``\\frac{\\partial^{k} f}{\\partial p_{l}\\, \\partial p_{m}}`` of the objective by the
        quantity's parts, each with its slots flipped; a parameter the objective uses itself is
        differentiated at fixed other arguments: ``\\left.…\\right|_{p}``."""
        up = self.ctx.upper(q, len(ixs)) if ixs else ()
        sizes = self.ctx.split_parts(q, len(ixs)) if ixs else (0,) * len(q.parts)
        dens, at = [], 0
        for part, n in zip(q.parts, sizes):
            dens.append(r"\partial " + self.slots(*self.naming.tensor(part), list(zip(ixs[at:at + n], up[at:at + n]))))
            at += n
        k = len(q.parts)
        frac = (r"\frac{\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + self.f + "}{" + r"\, ".join(dens) + "}")
        held = self.ctx.held(q)
        if not held:
            return frac
        return r"\left." + frac + r"\right|_{" + ",".join(self.short(h) for h in held) + "}"

    def _print_quantity(self, q: Quantity, ixs: Sequence[Index]) -> str:
        role = self.ctx.role(q)
        up = self.ctx.upper(q, len(ixs)) if ixs else ()
        if role in ("gamma", "eta"):
            label = self.naming.gamma(q) if role == "gamma" else self.naming.eta(q)
            return self.slots(r"\gamma" if role == "gamma" else r"\eta", label, list(zip(ixs, up)))
        if role in ("dfdp", "adj", "hobj"):
            return self.derivative(q, ixs)
        if role in ("beta", "alpha"):  # the paper's Eqs. 2–3: layers by their labels
            label = self.naming.alpha(q) if role == "alpha" else self.naming.gamma(q)
            return self.slots("\\" + role, label, list(zip(ixs, up)))
        if role == "hess":  # second-order adjoint ∂²f/∂ε_s∂ε_s'
            return self.slots(r"\mathcal{H}", self.naming.bracket(q), list(zip(ixs, up)))
        if role == "d":
            head = r"\mathrm{D}_{" + self.short(q.parts[1]) + r"}\!\left[" + self.short(q.parts[0]) + r"\right]"
            return head + ("_{" + self._letters(ixs) + "}" if ixs else "")
        return r"\mathrm{" + escape(str(q)) + "}" + ("_{" + self._letters(ixs) + "}" if ixs else "")

    def _print_Delta(self, e: Delta) -> str:
        return r"\delta^{" + self._print(e.a) + "}_{" + self._print(e.b) + "}"

    def _print_Ones(self, e: Ones) -> str:
        """The ones vector a broadcast term carries along an index it lacks."""
        return r"\mathbf{1}^{" + self._print(e.index) + "}"

    def _print_Window(self, e: Window) -> str:
        """S^u_{t,a} = [u = stride·t + a], the selection tensor of index arithmetic (``{S_{2}}`` for stride 2)."""
        base = f"{{S_{{{e.mark()}}}}}" if e.mark() else "S"
        return base + "^{" + self._print(e.u) + "}_{" + self._letters(e.free[1:]) + "}"

    def _print_Apply(self, e: Apply) -> str:
        args = ", ".join(self._print(a) for a in e.args)
        return self.fn_name(e) + "(" + args + ")"

    def _print_Softmax(self, e: Softmax) -> str:
        """``\\hat{p}^{l}`` = softmax_l(p^l) where the context names it so."""
        arg = e.arg
        if isinstance(arg, Ref) and arg.indices == (e.over,) and arg.name in self.ctx.softmax:
            base, label = self.naming.tensor(arg.name)
            up = self.ctx.upper(arg.name, 1)[0]
            return self.slots(r"\hat{" + base + "}", label, [(e.over, up)])
        return (r"\operatorname{softmax}_{" + self._print(e.over) + r"}\!\left("
                + self._print(arg) + r"\right)")

    def _print_LogSumExp(self, e: LogSumExp) -> str:
        return r"\log \sum_{" + self._print(e.over) + r"} \exp\!\left(" + self._print(e.arg) + r"\right)"

    def _print_Max(self, e: Max) -> str:
        return "\\" + e.kind + "_{" + self._print(e.over) + r"} \left(" + self._print(e.arg) + r"\right)"

    def _print_ArgMax(self, e: ArgMax) -> str:
        r"""The maximisers' weights (one-hot, split at ties), ``\operatorname{argmax}_{k}(x^{k})``."""
        return (r"\operatorname{arg" + e.kind + "}_{" + self._print(e.over) + r"}\!\left("
                + self._print(e.arg) + r"\right)")

    def _print_MatDet(self, e: MatDet) -> str:
        r"""``\log\det S``, ``\det S`` (over an expression, its rows and columns as subscripts)."""
        op = r"\log\det" if e.kind == "logdet" else r"\det"
        if isinstance(e.arg, Ref) and e.arg.indices == (e.row, e.col) and not isinstance(e.arg.name, Quantity):
            base, label = self.naming.tensor(e.arg.name)
            return op + " " + self.slots(base, label, [])
        return (op + "_{" + self._letters((e.row, e.col)) + r"}\!\left(" + self._print(e.arg) + r"\right)")

    def _print_Inv(self, e: Inv) -> str:
        r"""``(S^{-1})^{i}_{j}``: the inverse's indices in the slots of its argument's declaration."""
        if isinstance(e.arg, Ref) and e.arg.indices == (e.row, e.col) and not isinstance(e.arg.name, Quantity):
            base, label = self.naming.tensor(e.arg.name)
            up = self.ctx.upper(e.arg.name, 2)
            inner = self.slots(base, label, [])
            return self.slots(r"\left(" + inner + r"^{-1}\right)", None, list(zip((e.row, e.col), up)))
        return self.slots(r"\left(" + self._print(e.arg) + r"\right)^{-1}", None, [(e.row, True), (e.col, False)])

    # -- factored terms ----------------------------------------------------
    def term_groups(self, t: FactoredTerm, out: Sequence[Index]) -> tuple[str, list[str]]:
        """(sign-and-scalar prefix, outer-product factors) of one term of a block."""
        coef, pieces, groups = self.term_parts(t, out)
        prefix = self._with_coef(coef, " ".join(pieces)) if (pieces or coef != 1) else ""
        return prefix, groups

    def term(self, t: FactoredTerm, out: Sequence[Index]) -> str:
        prefix, groups = self.term_groups(t, out)
        body = r" \otimes ".join(groups)
        if prefix in ("", "1"):
            return body or "1"
        if prefix == "-":
            return "-" + body
        return f"{prefix} {body}".strip()


# ------------------------------------------------------------ ranges of a family
def label_tex(label: int, hz: tuple[str, int] | None) -> str:
    """A range's upper label: ``T``, ``T-1``, ``T-2`` near the horizon (:func:`~einderiv.analysis.document.horizon`)."""
    if hz is not None and label > 1 and 0 <= hz[1] - label <= 2:
        return tex_index(hz[0]) + (f"-{hz[1] - label}" if label != hz[1] else "")
    return str(label)


def _contiguous(labels) -> bool:
    return len(labels) > 1 and list(labels) == list(range(labels[0], labels[-1] + 1))


def range_tex(sym: str, labels, hz) -> str:
    """``t = 1,\\dots,T-1`` (``t = 3, 4`` for two labels; ``t \\in \\{1, 3\\}`` with gaps)."""
    v = r"\tau" if sym == "τ" else sym
    labels = sorted(labels)
    if _contiguous(labels) and len(labels) > 2:
        return f"{v} = {labels[0]},\\dots,{label_tex(labels[-1], hz)}"
    if _contiguous(labels):
        return f"{v} = {labels[0]}, {labels[1]}"
    return f"{v} \\in \\{{{', '.join(map(str, labels))}\\}}"


def sum_tex(sym: str, labels, hz) -> str:
    """``\\sum_{t=1}^{T}`` over a family of terms (``\\sum_{t \\in \\{1,3\\}}`` with gaps)."""
    v = r"\tau" if sym == "τ" else sym
    labels = sorted(labels)
    if _contiguous(labels):
        return f"\\sum_{{{v}={labels[0]}}}^{{{label_tex(labels[-1], hz)}}}"
    return f"\\sum_{{{v} \\in \\{{{','.join(map(str, labels))}\\}}}}"
