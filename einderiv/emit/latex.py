"""LaTeX rendering of a derivation: a standalone document in the paper's notation.

:func:`render` writes an ``article`` (amsmath, amssymb, geometry) with the
sections of the text output (:mod:`einderiv.emit.text`), typeset as in the
paper's Section 2.1: a Table-1-like nomenclature; upper and lower indices
(``W^{(1),j}_{i}`` for a tensor named ``W1`` — the bracketed label is the
paper's layer number ``w^{(k),j}_i``; ``z^{(v_{1}),j}`` for the pre-activation
``z_v1``); adjoints as ``\\frac{\\partial f}{\\partial z^{(v_{1})}_{j}}``; the
Jacobians ``\\gamma^{(v_{1}),j}_{s}`` (Eq. 1) and ``\\eta^{(v_{2},z_{v_{1}}),m}_{j}``
(Eq. 4); ``\\otimes`` between outer-product factors; one ``align*`` per
derivative block with one term per line.  An unrolled recurrence is written
once per family (:func:`~einderiv.emit.names.shown_families`): the recurrence with
its range (``\\frac{\\partial f}{\\partial h^{(t)}_{j}} = \\dots \\quad t = 1,\\dots,T-1``),
then its base case at ``h^{(T)}``; a shared weight's gradient is ``\\sum_{t=1}^{T}`` of
one outer product, and Hessian terms are grouped per family as in the text output.
What is named, folded or written ``1`` follows the text output (shared in
:mod:`einderiv.emit.names`); the nomenclature calls each input or label a
vector, matrix or tensor by its number of indices.

The output is ASCII only (every user name is an identifier; ``_`` is turned
into a label or escaped) and depends only on the derivation.

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

import sympy
from sympy.printing.latex import LatexPrinter

from ..analysis.factor import FactoredTerm
from ..frontend.builtins import ARG
from ..ir import Apply, Delta, Index, LogSumExp, Name, Ones, Quantity, Ref, Softmax, Sym, Window, labels_of
from ..ir import map_names, map_refs
from .base import IndexPrinter
from .names import (Context, IndexNames, declared_families, folded_terms, horizon,
                    shown_families, term_parts)


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
    """A family label as written in a name: ``t-1`` stays, the folding letter ``τ`` becomes ``\\tau``."""
    return label.replace("τ", r"\tau ").replace(r"\tau -", r"\tau-").replace(r"\tau +", r"\tau+").rstrip()


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
        coef, scalars, groups_fs = term_parts(t, out, self.names)
        pieces = [self.product(1, fs, out) for fs in scalars]
        many = len(groups_fs) > 1
        groups = []
        for fs in groups_fs:
            s = self.product(1, fs, out)
            groups.append(r"\left(" + s + r"\right)" if many and len(fs) > 1 else s)
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


# ------------------------------------------------------------ document
PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage{amsmath}
\usepackage{amssymb}
\usepackage[margin=2cm]{geometry}
\allowdisplaybreaks
"""

#: a term with more outer-product factors than this is broken across lines at \otimes
WRAP_FACTORS = 4


def _printer(ctx: Context, free, exprs=()) -> LatexIndexPrinter:
    names = IndexNames(free, ctx.letters_taken(exprs)).reserve_user(exprs)
    return LatexIndexPrinter({"names": names, "context": ctx})


def block_lhs(p: LatexIndexPrinter, derivation, block) -> str:
    k = len(block.wrt)
    num = r"\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + p.f
    parts, pos = [], 0
    for w in block.wrt:
        n = len(derivation.network.tensor(w).indices)
        parts.append(r"\partial " + p._print(Ref(w, block.indices[pos:pos + n])))
        pos += n
    return r"\frac{" + num + "}{" + r"\, ".join(parts) + "}"


def block_equation(derivation, block, ctx: Context | None = None) -> str:
    """One ``align*`` for a block: a term per line, the Eq. 6 form for gradients."""
    ctx = ctx or Context.of(derivation)
    p = _printer(ctx, block.indices, [block.expr])
    lhs = block_lhs(p, derivation, block)
    hz = horizon(derivation)
    lines = _term_lines(p, _summed(folded_terms(block, p.names), hz), block.indices)
    if block.paper is not None and block.paper != block.expr:
        pp = _printer(ctx, block.indices, [block.paper])
        plines = _term_lines(pp, _summed(folded_terms(block, pp.names, block.paper), hz), block.indices)
        lines.append(r"&= " + plines[0][len("&= "):])
        lines.extend(plines[1:])
    return "\\begin{align*}\n" + lhs + "\n  " + " \\\\\n  ".join(lines) + "\n\\end{align*}\n"


def _summed(triples, hz) -> list[tuple[str, FactoredTerm]]:
    """(``\\sum_{t=1}^{T} `` or '', term) from :func:`~einderiv.emit.names.folded_terms`."""
    return [(sum_tex(sym, labels, hz) + " " if labels else "", t) for sym, labels, t in triples]


def _term_lines(p: LatexIndexPrinter, terms: list[tuple[str, FactoredTerm]], out) -> list[str]:
    if not terms:
        return ["&= 0"]
    lines = []
    for k, (summed, t) in enumerate(terms):
        prefix, groups = p.term_groups(t, out)
        sign = ""
        if prefix.startswith("-"):
            sign, prefix = "-", prefix[1:].lstrip()
        if prefix == "1":
            prefix = ""
        lead = ("&= " + (sign and "-")) if k == 0 else (r"&\quad " + (sign or "+") + " ")
        chunks = [groups[i:i + WRAP_FACTORS] for i in range(0, len(groups), WRAP_FACTORS)] or [[]]
        first = (prefix + " " if prefix else "") + r" \otimes ".join(chunks[0])
        lines.append(lead + summed + (first.strip() or "1"))
        for c in chunks[1:]:
            lines.append(r"&\qquad \otimes " + r" \otimes ".join(c))
    return lines


def label_tex(label: int, hz: tuple[str, int] | None) -> str:
    """A range's upper label: ``T``, ``T-1``, ``T-2`` near the horizon (:func:`~einderiv.emit.names.horizon`)."""
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


def _fn_closed_forms(derivation) -> list[str]:
    """``\\tanh'(z) &= 1 - \\tanh^{2}(z)`` rows, for the functions the text output lists."""
    from .text import wanted_functions

    return LatexIndexPrinter().closed_forms(derivation, wanted_functions(derivation), " &= ")


def _align(rows: list[str]) -> str:
    return "\\begin{align*}\n  " + " \\\\\n  ".join(rows) + "\n\\end{align*}\n"


def _table_rows(derivation, ctx: Context) -> list[tuple[str, str]]:
    net = derivation.network
    rows = []
    dims = dict(net.dims)

    def shape(t) -> str:
        parts = []
        for ix in t.indices:
            d = sympy.sympify(ix.dim)
            size = dims.get(str(d))
            parts.append(ScalarLatexPrinter().doprint(d) + (f" = {size}" if size is not None else ""))
        return r" \times ".join(parts)

    def what(t) -> str:
        """``Input matrix for a single sample``: the role, and what kind of array by its indices."""
        kind = {0: "scalar", 1: "vector", 2: "matrix"}.get(len(t.indices), "tensor")
        if t.role in ("input", "label"):
            return f"{t.role.capitalize()} {kind} for a single sample"
        return "Weights" if t.role == "weight" else escape(t.role)

    hz = horizon(derivation)

    def steps(labels, base_of=None) -> str:
        if base_of is not None:
            return ", base case"
        return f", ${range_tex('t', labels, hz)}$" if labels else ""

    for name, t, labels in declared_families(net.tensors):
        p = _printer(ctx, t.indices)
        rows.append((f"${p._print(Ref(name, t.indices))}$",
                     f"{what(t)} (${shape(t)}$){steps(labels)}" if t.indices else what(t)))
    for d in shown_families([(d.name, d.indices, d.expr) for d in net.definitions], base_cases_after=True):
        p = _printer(ctx, d.indices, [d.expr])
        p.name_nodes = False
        lhs = p._print(Ref(d.name, d.indices))
        desc = ("Scalar objective function value for a single sample" if d.name == net.objective
                else r"Output of \texttt{" + escape(str(d.name)) + "}" + steps(d.labels, d.base_of))
        rows.append((f"${lhs} = {p._print(d.expr)}$", desc))
    origin = {n.name: n.origin for n in derivation.nodes}
    for n in shown_families([(n.name, n.indices, n.expr) for n in derivation.nodes if n.pre],
                            base_cases_after=True):
        p = _printer(ctx, n.indices, [n.expr])
        p.name_nodes = False
        of = origin[n.first]
        if n.labels:  # the activation's family: h(1) -> h(t)
            of = of.relabel(lambda _: Sym("t"))
        rows.append((f"${p._print(Ref(n.name, n.indices))} = {p._print(n.expr)}$",
                     r"Argument of the activation of \texttt{" + escape(str(of)) + "} (named)" + steps(n.labels, n.base_of)))
    return rows


def render(derivation, sizes=None) -> str:
    """The whole derivation as a standalone LaTeX document."""
    from ..analysis.structure import summarize

    net = derivation.network
    ctx = Context.of(derivation)
    f = _printer(ctx, ()).f
    doc = [PREAMBLE]
    w = doc.append
    w(r"\title{Derivatives of \texttt{" + escape(net.path) + r"}}" + "\n")
    w(r"\date{}" + "\n" + r"\begin{document}" + "\n" + r"\maketitle" + "\n")
    w(r"\noindent Index notation with the summation convention: an index repeated in a product is "
      r"summed unless it is free on the left-hand side (then the product is elementwise). "
      r"$\delta^{j}_{s}$ is the Kronecker delta, $\otimes$ separates the outer-product factors of a "
      r"term, $\gamma$ and $\eta$ are the Jacobians of the paper's Eqs.~1 and~4, and "
      r"$\partial " + f + r"/\partial z$ is the back-propagated adjoint." + "\n\n")

    w(r"\section*{Network}" + "\n")
    w("\\begin{center}\n\\begin{tabular}{ll}\n\\hline\nQuantity & Description \\\\\n\\hline\n")
    for a, b in _table_rows(derivation, ctx):
        w(f"{a} & {b} \\\\\n")
    w("\\hline\n\\end{tabular}\n\\end{center}\n\n")

    w(r"\section*{Objective}" + "\n")
    rows = []
    for arg, sym in ctx.softmax.items():
        n = derivation.node(arg)
        if n is not None and len(n.indices) == 1:
            ix = n.indices
            p = _printer(ctx, ix, [Softmax(Ref(arg, ix), ix[0])])
            rows.append(p._print(Softmax(Ref(arg, ix), ix[0])) + r" &= \operatorname{softmax}_{"
                        + p._print(ix[0]) + r"}\!\left(" + p._print(Ref(arg, ix)) + r"\right)")
    obj_q = [q for q in derivation.quantities if ctx.role(q.name) in ("dfdp", "hobj")]
    rest_q = [q for q in derivation.quantities if q not in obj_q]
    rows.extend(_qdefs(ctx, obj_q, horizon(derivation)))
    if rows:
        w(_align(rows))

    fns = _fn_closed_forms(derivation)
    if fns:
        w(r"\section*{Activation derivatives}" + "\n" + _align(fns))
    if rest_q:
        w(r"\section*{Shared intermediates}" + "\n"
          r"Each is defined once, in dependency order." + (
              "" if derivation.expanded else
              r" $\mathcal{H}^{(s,s')} = \partial^2 f/\partial\varepsilon_s\,\partial\varepsilon_{s'}$ is the"
              r" second derivative of $f$ with respect to perturbations $\varepsilon$ added to nodes $s$"
              r" and $s'$ (second-order adjoint).") + (
              r" A recurrence over $t$ is written once, with its range, and followed by its base case."
              if horizon(derivation) else "") + "\n" + _align(_qdefs(ctx, rest_q, horizon(derivation))))
    for k in range(1, derivation.order + 1):
        blocks = derivation.blocks_of_order(k)
        if not blocks:
            continue
        title = {1: "First derivatives", 2: "Second derivatives"}.get(k, f"Derivatives of order {k}")
        w(r"\section*{" + title + "}\n")
        for block in blocks.values():
            w(block_equation(derivation, block, ctx))
    w(r"\section*{Structure}" + "\n" + structure_table(derivation, summarize(derivation, sizes), ctx))
    w(r"\end{document}" + "\n")
    return "".join(doc)


def _qdefs(ctx: Context, qs, hz) -> list[str]:
    """Quantity definitions, a family of members equal up to a label shift written once with its
    range (``\\quad t = 1,\\dots,T-1``), then its base case."""
    rows = []
    for s in shown_families([(q.name, q.indices, q.expr) for q in qs], base_cases_after=True):
        name, expr = s.name, s.expr
        if s.base_of is not None:
            name, expr = _at_horizon(name, hz), map_refs(expr, lambda n: _at_horizon(n, hz))
        p = _printer(ctx, s.indices, [expr])
        p.names.walk(expr)
        row = p._print(Ref(name, s.indices)) + " &= " + p._print(expr)
        if s.labels:
            row += r" && " + range_tex("t", s.labels, hz)
        elif s.base_of is not None:
            row += r" && \text{(base case)}"
        rows.append(row)
    return rows


def _at_horizon(name, hz):
    """``h(4)`` → ``h(T)`` and ``h(3)`` → ``h(T-1)`` when T = 4: a base case at the last step reads as one."""
    if hz is None or not labels_of(name):
        return name
    symbol, top = hz

    def one(lab):
        return Sym(symbol, lab - top) if isinstance(lab, int) and 0 <= top - lab <= 1 else lab

    return map_names(name, lambda n: n.relabel(one))


def structure_table(derivation, rows, ctx: Context) -> str:
    """The structure summary as a tabular (per-sample storage, factored against dense)."""
    sc = ScalarLatexPrinter()
    out = ["Per-sample storage: numbers held by the factored form against the dense block.\n\n",
           "\\begin{center}\n\\begin{tabular}{lrp{0.45\\textwidth}rr}\n\\hline\n",
           "Block & $K$ & Structure & Factored & Dense \\\\\n\\hline\n"]
    for r in rows:
        k = len(r.wrt)
        name = (r"$\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + _printer(ctx, ()).f + "/"
                + "".join(r"\partial " + _printer(ctx, ()).short(w) for w in r.wrt) + "$")
        kind = escape(r.kind)
        if r.coupling is not None:
            p = _printer(ctx, ())
            kind += " (" + _coupling_tex(r.coupling, p) + ")"
        out.append(f"{name} & {r.terms} & {kind} & ${sc.doprint(r.factored)}$ & ${sc.doprint(r.dense)}$ \\\\\n")
    out.append("\\hline\n\\end{tabular}\n\\end{center}\n")
    return "".join(out)


def _coupling_tex(c, p: LatexIndexPrinter) -> str:
    names = " and ".join(dict.fromkeys(f"${p.short(f)}$" for f in c.factors))
    letters = [f"${tex_index(x)}$" for x in c.indices]
    if c.how == "summed":
        return f"summed index {letters[0]} couples {names}"
    if c.how == "diagonal":
        return rf"a diagonal: $\delta$ ties {letters[0]} and {letters[1]}"
    if c.how == "elementwise":
        return f"elementwise product over {letters[0]} ties {names}"
    return f"{names} carries axes {', '.join(letters)} together"
