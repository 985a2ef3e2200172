"""Text and LaTeX of a template's general form: the paper's Eqs. 1–9 for any depth n.

:func:`render_text` (``einderiv derive`` on a template) and :func:`render_latex`
(``einderiv latex``) print a :class:`~einderiv.template.GeneralForm`:

1. the network as a layer template (families with their layer ranges);
2. the objective's and the activations' derivatives;
3. the intermediates of Eqs. 1–4 — δ, γ, η — each family once, with its base
   cases (``δ[v(n)] = …``, ``δ[v(k)] = δ[z_v(k+1)] w(k+1)  for k < n``);
4. the gradient of Eq. 6 for a generic layer k;
5. the Hessian blocks, Eq. 9 for generic layers k, r: the terms every case
   shares, then a case split ``r > k`` / ``r = k`` / ``r < k``; A'' terms
   (absent for ReLU) as ``Σ_{m=max(k,r)+1}^{n}``.

Labels are written relative to k, l, r, n and the summation label m; a case
that pins a label (``k = n``) is shown with the label substituted.
"""
from __future__ import annotations

from typing import Sequence

import sympy

from ..analysis.factor import factored
from ..frontend.builtins import ARG
from ..ir import Apply, Expr, Fn, Index, Label, Name, Ref, Softmax, Sym
from ..ir import map_names, map_refs
from ..analysis.template import (MAX_BOUND, Condition, GeneralBlock, GeneralDef, GeneralForm, GeneralTerm,
                        REF_DEPTH, split_common)
from .names import Context, IndexNames, term_order

#: letters that name layers in the general form; index letters keep clear of them
LAYER_LETTERS = ("k", "m", "n", "r")


# ----------------------------------------------------------- pinned labels
def pinned(cond: Condition, symbols: Sequence[str]) -> dict[str, Label]:
    """Symbols a case fixes: ``k = n`` → {'k': n}, ``k = 0`` → {'k': 0}."""
    out: dict[str, Label] = {}
    for x, y, lo, hi in cond.bounds:
        if x in symbols and lo is not None and lo == hi and y in ("0", "n") and x not in out:
            out[x] = lo if y == "0" else Sym("n", lo)
    return out


def pin_label(label, pins: dict[str, Label]):
    """``label`` with a pinned symbol replaced: ``k-1`` with k = n → ``n-1``."""
    if not isinstance(label, Sym) or label.symbol not in pins:
        return label
    base = pins[label.symbol]
    return base + label.offset if isinstance(base, int) else base.shift(label.offset)


def pin_name(name, pins):
    return map_names(name, lambda n: n.relabel(lambda lab: pin_label(lab, pins)))


def pin(e: Expr, pins: dict[str, Label]) -> Expr:
    return map_refs(e, lambda n: pin_name(n, pins)) if pins else e


# ---------------------------------------------------------------- printers
def _printer(cls, ctx: Context, free, exprs=()):
    names = IndexNames(free, LAYER_LETTERS).reserve_user(exprs)
    p = cls({"names": names, "context": ctx})
    for e in exprs:
        p.names.walk(e)
    return p


class _Style:
    """What differs between text and LaTeX: printers, symbols, layout."""

    def __init__(self, latex: bool):
        from .latex import LatexIndexPrinter
        from .text import TextPrinter

        self.latex = latex
        self.cls = LatexIndexPrinter if latex else TextPrinter

    def sum_prefix(self, over) -> str:
        lo, hi = map(str, over)
        if self.latex:
            lo = lo.replace("max(k,r)", r"\max(k,r)")
            return r"\sum_{m=" + lo + "}^{" + hi + "} "
        return f"Σ_{{m={lo}..{hi}}} "

    def cond(self, text: str) -> str:
        if not self.latex:
            return text
        return text.replace("≥", r"\geq").replace("≤", r"\leq")

    def term(self, p, gt: GeneralTerm, out, pins) -> str:
        ft = factored(pin(gt.term, pins), out)[0]
        body = p.term(ft, out)
        if gt.over is None:
            return body
        over = tuple(pin_label(x, pins) for x in gt.over)
        inner = body if not self.latex else body
        return self.sum_prefix(over) + (f"({inner})" if not self.latex and " + " in inner else inner)


def _ordered(p, terms: list[GeneralTerm], out, pins) -> list[GeneralTerm]:
    fts = [factored(pin(t.term, pins), out)[0] for t in terms]
    order = term_order(fts, p.names)
    rank = {id(ft): k for k, ft in enumerate(order)}
    return [t for _, t in sorted(zip(fts, terms), key=lambda pr: rank[id(pr[0])])]


def _lhs(style: _Style, p, gf: GeneralForm, block: GeneralBlock, pins) -> str:
    ref = gf.reference.network
    parts, pos = [], 0
    k = len(block.wrt)
    for w in block.wrt:
        n = len(ref.tensor(w.relabel(lambda _: 1)).indices)
        parts.append(Ref(pin_name(w, pins), block.indices[pos:pos + n]))
        pos += n
    if style.latex:
        num = r"\partial" + (f"^{{{k}}}" if k > 1 else "") + " " + p.f
        return r"\frac{" + num + "}{" + r"\, ".join(r"\partial " + p._print(r) for r in parts) + "}"
    f = ref.objective
    return f"∂{'²' if k == 2 else ''}{f}/" + "".join("∂" + p._print(r) for r in parts)


def _def_line(style: _Style, ctx, g: GeneralDef) -> tuple[str, str, str]:
    """(lhs, rhs, condition) of one general definition."""
    pins = pinned(g.cond, g.symbols)
    expr = pin(g.expr, pins)
    p = _printer(style.cls, ctx, g.indices, [expr])
    lhs = p._print(Ref(pin_name(g.name, pins), g.indices))
    rhs = p._print(expr)
    text = "" if pins and set(pins) == set(g.symbols) else g.text
    return lhs, rhs, style.cond(text)


def _declarations(gf: GeneralForm) -> list[tuple[str, tuple[Index, ...], str, str]]:
    """(shown name, indices, role, range) per declared tensor family and shape."""
    net = gf.reference.network
    out, seen = [], {}
    for t in net.tensors:
        if not t.name.ints:
            out.append((t.name, t.indices, t.role, ""))
            continue
        base, lab = t.name.base, t.name.ints[0]
        shape = tuple(str(ix.dim) for ix in t.indices)
        k = (base, shape)
        if k not in seen:
            seen[k] = len(out)
            out.append([base, t.indices, t.role, [lab]])
        else:
            out[seen[k]][3].append(lab)
    rows = []
    for item in out:
        if isinstance(item, tuple):
            rows.append(item)
            continue
        base, ixs, role, labs = item
        if len(labs) == 1 and labs[0] <= MAX_BOUND:
            rows.append((Name(base, (labs[0],)), ixs, role, ""))
        elif len(labs) == 1 and labs[0] == REF_DEPTH:
            rows.append((Name(base, (Sym("n"),)), ixs, role, ""))
        else:
            hi = REF_DEPTH - max(labs)
            rows.append((Name(base, (Sym("k"),)), ixs, role, f"k = {min(labs)}..n" + (f"{-hi:+d}" if hi else "")))
    return rows


def _case_rank(b: GeneralBlock) -> int:
    """The paper's order of Eq. 9's cases: r > k, r = k, r < k."""
    return 0 if ">" in b.text else 1 if "=" in b.text else 2


def _hessian_groups(gf: GeneralForm):
    """Blocks of one family pair together (the cases of Eq. 9), in first-appearance order."""
    groups: dict[tuple, list[GeneralBlock]] = {}
    for b in gf.blocks:
        groups.setdefault(b.bases, []).append(b)
    return [sorted(g, key=_case_rank) for g in groups.values()]


# ---------------------------------------------------------------- text
def render_text(gf: GeneralForm) -> str:
    from .text import ScalarStrPrinter, TextPrinter, wanted_functions

    st = _Style(False)
    ref = gf.reference
    net = ref.network
    ctx = Context.of(ref)
    tpl = gf.template
    out: list[str] = []
    w = out.append
    w(f"einderiv: general form of the derivatives of {net.objective} for {tpl.path} "
      f"(order {gf.order}, any depth {tpl.depth})")
    w(f"  read off the derivation at {tpl.depth} = {REF_DEPTH}; reproduced exactly at "
      f"{tpl.depth} = {', '.join(map(str, gf.checked))}")
    w("")
    w("Network (layer template)")
    dims = ", ".join(f"{n} = {s}" if s is not None else n for n, s in net.dims if n != tpl.depth)
    w(f"  dims  {dims}")
    w(f"  depth {tpl.depth}")
    for name, ixs, role, rng in _declarations(gf):
        p = _printer(TextPrinter, ctx, ixs)
        shape = " × ".join(sympy.sstr(ix.dim) for ix in ixs) or "scalar"
        w(f"  {role:<6} {p._print(Ref(name, ixs))} : {shape}" + (f"   for {rng}" if rng else ""))
    pre = {n.name for n in ref.nodes if n.pre}
    for g in gf.nodes:
        lhs, rhs, cond = _def_line(st, ctx, g)
        first = _first_member(g)
        note = "   (pre-activation)" if first in pre else ("   (objective)" if g.name == net.objective else "")
        w(f"  {lhs} = {rhs}" + (f"   for {cond}" if cond else "") + note)
    w("")
    obj = [g for g in gf.quantities if ctx.role(g.name) in ("dfdp", "hobj")]
    rest = [g for g in gf.quantities if g not in obj]
    w(f"Objective derivatives (∂{net.objective}/∂{', '.join(map(str, ref.objective_args))} left named, as in the paper)")
    for arg in ctx.softmax:
        n = ref.node(arg)
        if n is not None and len(n.indices) == 1:
            p = _printer(TextPrinter, ctx, n.indices)
            w(f"  {p._print(Softmax(Ref(arg, n.indices), n.indices[0]))} = softmax_{p._print(n.indices[0])}"
              f"({p._print(Ref(arg, n.indices))})")
    for g in obj:
        lhs, rhs, _ = _def_line(st, ctx, g)
        w(f"  {lhs} = {rhs}")
    w("")
    fns = wanted_functions(ref)
    if fns:
        w("Activation derivatives (SymPy)")
        for name, deriv in fns:
            scal = ScalarStrPrinter({"nargs": len(deriv)})
            args = ", ".join(scal.doprint(a) for a in ARG[:len(deriv)])
            shown = TextPrinter().fn_name(Apply(Fn(name, deriv), ()))
            w(f"  {shown}({args}) = {scal.doprint(ref.table.derivative(name, deriv))}")
        w("")
    w("Shared intermediates for generic layers (δ[n] = ∂f/∂n; γ[v(k)] = ∂v(k)/∂z_v(k), Eq. 1; "
      "η[a,s] = ∂a/∂s, Eq. 4; η[v(l),z_v(l)] = γ[v(l)])")
    for g in rest:
        lhs, rhs, cond = _def_line(st, ctx, g)
        w(f"  {lhs} = {rhs}" + (f"   for {cond}" if cond else ""))
    w("")
    for order in range(1, gf.order + 1):
        w({1: "First derivatives (Eqs. 5–6)", 2: "Second derivatives (Eqs. 7–9)"}[order])
        for cases in _hessian_groups(gf):
            if len(cases[0].bases) != order:
                continue
            out.extend("  " + line for line in _text_block(st, gf, ctx, cases))
        w("")
    return "\n".join(out) + "\n"


def _first_member(g: GeneralDef) -> str:
    from ..analysis.template import concrete_name

    return concrete_name(g.name, g.members[0]) if g.members else g.name


def _text_block(st: _Style, gf, ctx, cases: list[GeneralBlock]) -> list[str]:
    lines = []
    split = split_common(cases) if len(cases) > 1 else None
    if split is None:
        for b in cases:
            pins = pinned(b.cond, b.symbols)
            p = _printer(st.cls, ctx, b.indices, [t.term for t in b.terms])
            lhs = _lhs(st, p, gf, b, pins)
            body = [st.term(p, t, b.indices, pins) for t in _ordered(p, b.terms, b.indices, pins)] or ["0"]
            cond = b.text if not (pins and set(pins) == set(b.symbols)) else ""
            tail = f"   (for {cond})" if cond else ""
            if len(body) == 1:
                lines.append(f"{lhs} = {body[0]}{tail}")
            else:
                lines.append(f"{lhs} ={tail}")
                lines.extend(("      " if k == 0 else "    + ") + s for k, s in enumerate(body))
            if b.paper is not None:
                pp = [st.term(p, t, b.indices, pins) for t in b.paper]
                lines.append(" " * len(lhs) + " = " + " + ".join(pp) + "   (Eq. 6 form)")
        return lines
    common, own = split
    base = max(cases, key=lambda c: len(c.members))
    p = _printer(st.cls, ctx, base.indices, [t.term for c in cases for t in c.terms])
    lhs = _lhs(st, p, gf, base, {})
    lines.append(f"{lhs} =")
    body = [st.term(p, t, base.indices, {}) for t in _ordered(p, common, base.indices, {})]
    lines.extend(("      " if k == 0 else "    + ") + s for k, s in enumerate(body))
    width = max(len(c.text) for c in cases)
    lines.append(("    + " if body else "      ") + "{")
    for c, mine in zip(cases, own):
        pc = _printer(st.cls, ctx, c.indices, [t.term for t in mine])
        terms = [st.term(pc, t, c.indices, {}) for t in _ordered(pc, mine, c.indices, {})] or ["0"]
        head = f"        {c.text:<{width}} :  "
        lines.append(head + terms[0])
        lines.extend(" " * (len(head) - 4) + "  + " + s for s in terms[1:])
    lines.append("      }")
    return lines


# ---------------------------------------------------------------- LaTeX
def _tex_cond(text: str) -> str:
    return text.replace("≥", r"\geq ").replace("≤", r"\leq ").replace("..", r",\dots,")


def render_latex(gf: GeneralForm) -> str:
    from .latex import PREAMBLE, LatexIndexPrinter, ScalarLatexPrinter, escape
    from .text import wanted_functions

    st = _Style(True)
    ref = gf.reference
    ctx = Context.of(ref)
    tpl = gf.template
    P = LatexIndexPrinter
    doc = [PREAMBLE]
    w = doc.append
    w(r"\title{General form of the derivatives of \texttt{" + escape(tpl.path) + r"} for any depth $"
      + tpl.depth + "$}\n")
    w(r"\date{}" + "\n" + r"\begin{document}" + "\n" + r"\maketitle" + "\n")
    w(r"\noindent Index notation with the summation convention; bracketed layer labels are summed only "
      r"where a $\sum$ says so. The formulas were read off the derivation at $" + tpl.depth + f" = {REF_DEPTH}$"
      r" and reproduce the derivation exactly at $" + tpl.depth + " = " + ", ".join(map(str, gf.checked))
      + r"$. $\gamma$ and $\eta$ are the Jacobians of the paper's Eqs.~1 and~4, with "
      r"$\eta^{(v^{(l)},z_{v}^{(l)})} = \gamma^{(l)}$; $\partial f/\partial z$ is the back-propagated "
      "adjoint.\n\n")
    w(r"\section*{Network (layer template)}" + "\n")
    w("\\begin{center}\n\\begin{tabular}{ll}\n\\hline\nQuantity & Description \\\\\n\\hline\n")
    w(f"${tpl.depth}$ & Number of hidden layers \\\\\n")
    what = {"input": "Input vector for a single sample", "label": "Labels for a single sample",
            "weight": "Weights"}
    for name, ixs, role, rng in _declarations(gf):
        p = _printer(P, ctx, ixs)
        shape = r" \times ".join(ScalarLatexPrinter().doprint(sympy.sympify(ix.dim)) for ix in ixs)
        w(f"${p._print(Ref(name, ixs))}$ & {what.get(role, escape(role))} (${shape}$)"
          + (f", ${_tex_cond(rng)}$" if rng else "") + " \\\\\n")
    for g in gf.nodes:
        lhs, rhs, cond = _def_line(st, ctx, g)
        w(f"${lhs} = {rhs}$ & " + (f"${_tex_cond(cond)}$" if cond else "") + " \\\\\n")
    w("\\hline\n\\end{tabular}\n\\end{center}\n\n")

    def align(rows):
        return "\\begin{align*}\n  " + " \\\\\n  ".join(rows) + "\n\\end{align*}\n"

    def def_rows(gs):
        rows = []
        for g in gs:
            lhs, rhs, cond = _def_line(st, ctx, g)
            rows.append(f"{lhs} &= {rhs}" + (r" && " + _tex_cond(cond) if cond else ""))
        return rows

    obj = [g for g in gf.quantities if ctx.role(g.name) in ("dfdp", "hobj")]
    rest = [g for g in gf.quantities if g not in obj]
    w(r"\section*{Objective}" + "\n" + align(def_rows(obj)))
    fns = wanted_functions(ref)
    if fns:
        rows = []
        for name, deriv in fns:
            scal = ScalarLatexPrinter({"nargs": len(deriv)})
            args = ", ".join(scal.doprint(a) for a in ARG[:len(deriv)])
            rows.append(P().fn_name(Apply(Fn(name, deriv), ())) + "(" + args + ") &= "
                        + scal.doprint(ref.table.derivative(name, deriv)))
        w(r"\section*{Activation derivatives}" + "\n" + align(rows))
    w(r"\section*{Intermediates (Eqs.~1--4), for generic layers}" + "\n" + align(def_rows(rest)))
    for order in range(1, gf.order + 1):
        w(r"\section*{" + {1: "Gradients (Eqs.~5--6)", 2: "Hessian blocks (Eqs.~7--9)"}[order] + "}\n")
        for cases in _hessian_groups(gf):
            if len(cases[0].bases) == order:
                w(_tex_block(st, gf, ctx, cases))
    w(r"\end{document}" + "\n")
    return "".join(doc)


def _tex_terms(st, p, terms, out, pins, lead="&= ") -> list[str]:
    body = [st.term(p, t, out, pins) for t in _ordered(p, terms, out, pins)] or ["0"]
    return [(lead if k == 0 else r"&\quad + ") + s for k, s in enumerate(body)]


def _tex_block(st: _Style, gf, ctx, cases: list[GeneralBlock]) -> str:
    split = split_common(cases) if len(cases) > 1 else None
    rows = []
    if split is None:
        for b in cases:
            pins = pinned(b.cond, b.symbols)
            p = _printer(st.cls, ctx, b.indices, [t.term for t in b.terms])
            lhs = _lhs(st, p, gf, b, pins)
            cond = b.text if not (pins and set(pins) == set(b.symbols)) else ""
            lines = _tex_terms(st, p, b.terms, b.indices, pins)
            lines[0] = lhs + " " + lines[0] + (r" \qquad (" + _tex_cond(cond) + ")" if cond else "")
            if b.paper is not None:
                lines.append("&= " + " + ".join(st.term(p, t, b.indices, pins) for t in b.paper)
                             + r" \qquad \text{(Eq.~6)}")
            rows.extend(lines)
        return "\\begin{align*}\n  " + " \\\\\n  ".join(rows) + "\n\\end{align*}\n"
    common, own = split
    base = max(cases, key=lambda c: len(c.members))
    p = _printer(st.cls, ctx, base.indices, [t.term for c in cases for t in c.terms])
    lhs = _lhs(st, p, gf, base, {})
    lines = _tex_terms(st, p, common, base.indices, {}) if common else []
    if lines:
        lines[0] = lhs + " " + lines[0]
    arms = []
    for c, mine in zip(cases, own):
        pc = _printer(st.cls, ctx, c.indices, [t.term for t in mine])
        terms = [st.term(pc, t, c.indices, {}) for t in _ordered(pc, mine, c.indices, {})] or ["0"]
        body = (r"\begin{aligned}[t] &" + r" \\ &+ ".join(terms) + r"\end{aligned}") if len(terms) > 1 else terms[0]
        arms.append(body + " & " + _tex_cond(c.text))
    cases_tex = r"\begin{cases} " + r" \\[4pt] ".join(arms) + r" \end{cases}"
    if lines:
        lines.append(r"&\quad + " + cases_tex)
    else:
        lines = [lhs + " &= " + cases_tex]
    return "\\begin{align*}\n  " + " \\\\\n  ".join(lines) + "\n\\end{align*}\n"
