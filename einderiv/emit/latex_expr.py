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

import re
from typing import Sequence

from sympy.printing.latex import LatexPrinter

from ..analysis.factor import FactoredTerm
from ..frontend.builtins import ARG
from ..ir import Apply, Delta, Index, LogSumExp, Name, Ones, Quantity, Ref, Softmax, Window
from .base import IndexPrinter


GREEK = frozenset("""alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho
sigma tau upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega""".split())
#: functions LaTeX already typesets upright
TEX_FUNCTIONS = frozenset("exp log sin cos tan sinh cosh tanh".split())


# ------------------------------------------------------------ names
def escape(text: str) -> str:
    """Escape the characters of an identifier (or a plain phrase) for LaTeX."""
    out = []
    for ch in text:
        if ch in "_&%$#{}":
            out.append("\\" + ch)
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        elif ch in "^~":
            out.append(r"\^{}" if ch == "^" else r"\~{}")
        else:
            out.append(ch)
    return "".join(out)


def tex_word(word: str) -> str:
    """One identifier fragment without ``_``: a letter, a Greek name, or upright text."""
    if word in GREEK:
        return "\\" + word
    if len(word) == 1:
        return word
    return r"\mathrm{" + escape(word) + "}"


def _tex_plain(name: str, compact: bool) -> tuple[str, str | None]:
    """A user's name without labels: ``W1`` → (W, 1), ``z_v1`` → (z, v_{1}), ``x`` → (x, None)."""
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", name)
    if m:
        return tex_word(m[1]), m[2]
    if compact and name.isdigit():
        return name, None
    head, sep, tail = name.partition("_")
    if sep and head and tail:
        return tex_word(head), tex_compact(tail)
    return tex_word(name), None


def _tex_parts(name: Name | str) -> tuple[str, str | None]:
    """(base, label) of a name before its family labels are attached."""
    if isinstance(name, str):
        return _tex_plain(name, True)
    inner = Name(name.base)
    if name.arg:  # a lifted argument: z_v1 → (z, v_{1}); the second one z2_v1 → (\mathrm{z2}, v_{1})
        return tex_word("z" if name.arg == 1 else f"z{name.arg}"), tex_compact(inner)
    return _tex_plain(name.base, True)


def tex_compact(name: Name | str) -> str:
    """A name as a label inside brackets: ``v2`` → ``v_{2}``, ``z_v1`` → ``z_{v_{1}}``,
    a family member ``h(t-1)`` → ``h^{(t-1)}``."""
    if isinstance(name, Name) and name.labels:
        return f"{tex_compact(Name(name.base, name.labels[:-1], name.arg))}^{{({tex_label(str(name.labels[-1]))})}}"
    if isinstance(name, str) and name.isdigit():
        return name
    base, label = _tex_parts(name)
    return base if label is None else f"{base}_{{{label}}}"


def tex_tensor(name: Name | str) -> tuple[str, str | None]:
    """(base, bracketed label): ``W1`` → (W, 1), ``z_v1`` → (z, v_{1}), ``x`` → (x, None),
    ``h(t-1)`` → (h, t-1), ``z_h(t)`` → (z, h^{(t)})."""
    if isinstance(name, Name) and name.labels:
        base, label = tex_tensor(Name(name.base, name.labels[:-1], name.arg))
        lab = tex_label(str(name.labels[-1]))
        return (base, lab) if label is None else (base, f"{label}^{{({lab})}}")
    if isinstance(name, Name) and name.arg:
        return _tex_parts(name)
    return _tex_plain(str(name), False)


def tex_label(label: str) -> str:
    """A family label as written in a name: ``t-1`` stays, the step letters ``τ``, ``σ``, ``ρ`` become
    ``\\tau``, ``\\sigma``, ``\\rho``."""
    for greek, tex in (("τ", r"\tau"), ("σ", r"\sigma"), ("ρ", r"\rho")):
        label = label.replace(greek, tex + " ").replace(tex + " -", tex + "-").replace(tex + " +", tex + "+")
    return label.rstrip()


def tex_index(letter: str) -> str:
    if len(letter) == 1:
        return letter
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", letter)
    if m and len(m[1]) == 1:
        return f"{m[1]}_{{{m[2]}}}"
    return r"\mathit{" + escape(letter) + "}"


def tex_function(name: str) -> str:
    return "\\" + name if name in TEX_FUNCTIONS else r"\operatorname{" + escape(name) + "}"


def tex_primes(order: int) -> str:
    return "'" * order if order <= 3 else f"^{{({order})}}"


# ------------------------------------------------------------ scalar printer
class ScalarLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the placeholders z0, z1 shown as z (or z_1, z_2)."""

    _default_settings = dict(LatexPrinter._default_settings, nargs=1)

    def _print_Symbol(self, expr, style="plain"):
        if expr in ARG:
            k = ARG.index(expr)
            return "z" if self._settings["nargs"] == 1 else f"z_{{{k + 1}}}"
        return super()._print_Symbol(expr, style)


# ------------------------------------------------------------ index printer
class LatexIndexPrinter(IndexPrinter):
    """Prints einderiv IR as LaTeX math, one ``_print_<Node>`` per IR node.

    Settings: ``names`` (:class:`IndexNames`) and ``context`` (:class:`Context`).
    """

    printmethod = "_einderiv_latex"

    def scalar_printer(self):
        return ScalarLatexPrinter()

    def paren(self, s: str) -> str:
        return r"\left(" + s + r"\right)"

    def sum_prefix(self, sums) -> str:
        return r"\sum_{" + self._letters(sums) + "} "

    # -- indices ------------------------------------------------------------
    def _print_Index(self, ix: Index) -> str:
        if ix in self.arith:  # index arithmetic: x^{t+a}
            w = self.arith[ix]
            return f"{w.stride if w.stride != 1 else ''}{tex_index(self.names[w.t])}+{tex_index(self.names[w.a])}"
        return tex_index(self.names[ix])

    def _letters(self, ixs: Sequence[Index]) -> str:
        parts = [self._print(ix) for ix in ixs]
        return ("," if any(len(self.names[ix]) > 1 or ix in self.arith for ix in ixs) else "").join(parts)

    def tensor(self, base: str, label: str | None, up: Sequence[Index], down: Sequence[Index]) -> str:
        sup = ",".join(x for x in ((f"({label})" if label else ""), self._letters(up)) if x)
        out = base
        if sup:
            out += "^{" + sup + "}"
        if down:
            out += "_{" + self._letters(down) + "}"
        return out

    # -- symbols ------------------------------------------------------------
    @property
    def f(self) -> str:
        return self.tensor(*tex_tensor(self.ctx.objective), (), ())

    def dtensor(self, name: str, ixs: Sequence[Index]) -> str:
        """``\\partial p_{l}``: a tensor in a derivative's denominator, indices down."""
        return r"\partial " + self.tensor(*tex_tensor(name), (), ixs)

    def short(self, e) -> str:
        """A tensor's symbol without indices: ``W^{(1)}``, ``\\eta^{(v_{2},z_{v_{1}})}``."""
        if isinstance(e, Ref):
            return self.short(e.name)
        if isinstance(e, Quantity):
            return self._print_quantity(e, ())
        if isinstance(e, Apply):
            return self.fn_name(e)
        if isinstance(e, Delta):
            return r"\delta"
        if isinstance(e, Name):
            return self.tensor(*tex_tensor(e), (), ())
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
        base, label = tex_tensor(e.name)
        return self.tensor(base, label, [ix for ix, u in zip(e.indices, up) if u],
                           [ix for ix, u in zip(e.indices, up) if not u])

    def _print_quantity(self, q: Quantity, ixs: Sequence[Index]) -> str:
        role = self.ctx.role(q)
        if role in ("gamma", "eta"):
            a, s = self.ctx.split_jac(q, ixs) if ixs else ((), ())
            if role == "gamma":
                return self.tensor(r"\gamma", tex_compact(q.parts[0]), a, s)
            return self.tensor(r"\eta", ",".join(tex_compact(x) for x in q.parts), a, s)
        if role in ("dfdp", "adj"):
            return r"\frac{\partial " + self.f + "}{" + self.dtensor(q.parts[0], ixs) + "}"
        if role == "hobj":
            k = self.ctx.n_indices(q.parts[0], len(ixs) // 2) if ixs else 0
            return (r"\frac{\partial^{2} " + self.f + "}{" + self.dtensor(q.parts[0], ixs[:k])
                    + r"\, " + self.dtensor(q.parts[1], ixs[k:]) + "}")
        if role == "hess":  # second-order adjoint ∂²f/∂ε_s∂ε_s'
            label = ",".join(tex_compact(x) for x in q.parts)
            return r"\mathcal{H}^{(" + label + ")}" + ("_{" + self._letters(ixs) + "}" if ixs else "")
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
        """S^u_{t,a} = [u = stride·t + a], the selection tensor of index arithmetic."""
        mark = f"_{{({e.stride})}}" if e.stride != 1 else ""
        return r"S" + mark + "^{" + self._print(e.u) + "}_{" + self._letters((e.t, e.a)) + "}"

    def _print_Apply(self, e: Apply) -> str:
        args = ", ".join(self._print(a) for a in e.args)
        return self.fn_name(e) + "(" + args + ")"

    def _print_Softmax(self, e: Softmax) -> str:
        arg = e.arg
        if isinstance(arg, Ref) and arg.indices == (e.over,) and arg.name in self.ctx.softmax:
            base, label = ("s", None) if self.ctx.softmax[arg.name] == "s" else ("s", tex_compact(arg.name))
            up = self.ctx.upper(arg.name, 1)[0]
            return self.tensor(base, label, (e.over,) if up else (), () if up else (e.over,))
        return (r"\operatorname{softmax}_{" + self._print(e.over) + r"}\!\left("
                + self._print(arg) + r"\right)")

    def _print_LogSumExp(self, e: LogSumExp) -> str:
        return r"\log \sum_{" + self._print(e.over) + r"} \exp\!\left(" + self._print(e.arg) + r"\right)"

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
