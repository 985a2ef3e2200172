"""Plain-text (Unicode) rendering of a derivation: what ``einderiv derive FILE`` prints.

:func:`render` writes, one line per definition or term:

1. the network — declarations and definitions, pre-activations named
   (``z_v1^j = W1^j_i x^i``, ``v1^j = relu(z_v1^j)``);
2. the objective's closed-form derivatives (``∂f/∂p_l = s^l − y^l``);
3. the activations' derivatives A′, A″ as SymPy gives them;
4. the shared intermediates in dependency order, each defined once;
5. the gradients, factored with ``⊗`` between outer-product factors, and the
   paper's Eq. 6 form ``(∂f/∂p_l W3^l_m η[v2,z_v1]^m_j) ⊗ x^i``;
6. every higher block as a sum of factored terms;
7. the structure summary (:mod:`einderiv.structure`).

Notation: ``W1^j_i`` (first index up, the rest down); ``δ[z_v1]_j`` = ∂f/∂z_v1
(the back-propagated adjoint); ``γ[v1]^j_s`` = ∂v1/∂z_v1 = δ^j_s A′ (Eq. 1);
``η[v2,z_v1]^m_j`` = ∂v2/∂z_v1 (Eq. 4); ``∂²f/∂p_l∂p_q`` the objective's
Hessian; ``δ^j_s`` a Kronecker delta; ``relu′(z_v1^j)`` an elementwise
derivative.  A repeated index is summed unless it is free on the left-hand
side (then the product is elementwise); ``Σ_l`` is written out only where an
index is summed over other than two factors.  A derivative that repeats a
node's definition names the node (``a^q_k`` for ``softmax_k(s^q_k)``), a
product's constants are one coefficient, and a broadcast ``1`` in a sum is
written ``1`` (``(1 − zg^j) hc^j``) — see :mod:`einderiv.emit.names`.

The output depends only on the derivation: same input, same bytes.
"""
from __future__ import annotations

from typing import Sequence

import sympy
from sympy.printing.str import StrPrinter

from ..analysis.factor import FactoredTerm
from ..ir import label_range
from ..frontend.builtins import ARG
from ..ir import Apply, Delta, Expr, Index, LogSumExp, Name, Ones, Quantity, Ref, Softmax, Window
from .base import IndexPrinter
from .names import Context, IndexNames, declared_families, folded_terms, shown_families, term_parts

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
        coef, scalars, groups_fs = term_parts(t, out, self.names)
        pieces = [self.product(1, fs, out) for fs in scalars]
        many = len(groups_fs) > 1
        groups = []
        for fs in groups_fs:
            s = self.product(1, fs, out)
            groups.append(f"({s})" if many and len(fs) > 1 else s)
        body = " ".join(pieces + ([sep.join(groups)] if groups else []))
        return self._with_coef(coef, body)


# ------------------------------------------------------------ document
def _block_lhs(p: TextPrinter, derivation, block) -> str:
    f = derivation.network.objective
    k = len(block.wrt)
    head = f"∂{sup(k) if k > 1 else ''}{f}/"
    parts, pos = [], 0
    for w in block.wrt:
        n = len(derivation.network.tensor(w).indices)
        parts.append("∂" + p._print(Ref(w, block.indices[pos:pos + n])))
        pos += n
    return head + "".join(parts)


def _statement_printer(ctx, free, exprs=()) -> TextPrinter:
    names = IndexNames(free, ctx.letters_taken(exprs)).reserve_user(exprs)
    return TextPrinter({"names": names, "context": ctx})


def wanted_functions(derivation) -> list[tuple[str, tuple[int, ...]]]:
    """(name, orders) of every derivative worth listing: A′ … A^(order) of each function used."""
    seen: dict[tuple[str, tuple[int, ...]], None] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, Apply):
            seen.setdefault((e.fn.name, e.fn.deriv), None)
        for c in e.children():
            walk(c)

    for n in derivation.nodes:
        walk(n.expr)
    for q in derivation.quantities:
        walk(q.expr)
    for b in derivation.blocks.values():
        walk(b.expr)
    wanted: dict[tuple[str, tuple[int, ...]], None] = {}
    for name, deriv in sorted(seen):
        if len(deriv) == 1:
            for o in range(1, max(2, derivation.order) + 1):
                wanted.setdefault((name, (o,)), None)
        elif any(deriv):
            wanted.setdefault((name, deriv), None)
    return sorted(wanted)


def _fn_closed_forms(derivation) -> list[str]:
    """``tanh′(z) = 1 − tanh(z)²`` for every function the derivation differentiates."""
    return TextPrinter().closed_forms(derivation, wanted_functions(derivation), " = ")


def render(derivation, sizes=None) -> str:
    """The whole derivation as text (see the module docstring for the sections)."""
    from ..analysis.structure import format_summary, summarize

    net = derivation.network
    ctx = Context.of(derivation)
    out: list[str] = []
    w = out.append
    w(f"einderiv: derivatives of {net.objective} for {net.path} (order {derivation.order})")
    w("")
    w("Network")
    dims = ", ".join(f"{n} = {s}" if s is not None else n for n, s in net.dims)
    w(f"  dims  {dims}")
    for name, t, labels in declared_families(net.tensors):
        p = _statement_printer(ctx, t.indices)
        shape = " × ".join(sympy.sstr(ix.dim) for ix in t.indices) or "scalar"
        w(f"  {t.role:<6} {p._print(Ref(name, t.indices))} : {shape}{_for(labels)}")
    pre = {n.name for n in derivation.nodes if n.pre}
    for s in shown_families([(n.name, n.indices, n.expr) for n in derivation.nodes]):
        p = _statement_printer(ctx, s.indices, [s.expr])
        p.name_nodes = False
        note = "   (pre-activation)" if s.first in pre else ("   (objective)" if s.first == net.objective else "")
        w(f"  {p._print(Ref(s.name, s.indices))} = {p._print(s.expr)}{_for(s.labels)}{note}")
    w("")

    obj_q = [q for q in derivation.quantities if ctx.role(q.name) in ("dfdp", "hobj")]
    rest_q = [q for q in derivation.quantities if q not in obj_q]
    w(f"Objective derivatives (∂{net.objective}/∂{', '.join(map(str, derivation.objective_args))} left named, as in the paper)")
    for arg, sym in ctx.softmax.items():
        n = derivation.node(arg)
        ix = n.indices if n is not None and len(n.indices) == 1 else None
        if ix:
            p = _statement_printer(ctx, ix)
            w(f"  {p._print(Softmax(Ref(arg, ix), ix[0]))} = softmax_{p._print(ix[0])}({p._print(Ref(arg, ix))})")
    for line in _qdefs(ctx, obj_q):
        w("  " + line)
    w("")
    fns = _fn_closed_forms(derivation)
    if fns:
        w("Activation derivatives (SymPy)")
        for line in fns:
            w("  " + line)
        w("")
    if rest_q:
        w("Shared intermediates (dependency order; δ[n] = ∂f/∂n, γ[v] = ∂v/∂z_v, η[a,s] = ∂a/∂s"
          + ("" if derivation.expanded else ", H[s,s'] = ∂²f/∂ε_s∂ε_s' for perturbations ε of nodes s, s'")
          + ")")
        for line in _qdefs(ctx, rest_q):
            w("  " + line)
        w("")
    for k in range(1, derivation.order + 1):
        blocks = derivation.blocks_of_order(k)
        if not blocks:
            continue
        w({1: "First derivatives", 2: "Second derivatives (Hessian blocks)"}.get(k, f"Order-{k} derivatives"))
        for block in blocks.values():
            out.extend("  " + line for line in block_lines(derivation, block, ctx))
        w("")
    w("Structure (per sample; storage in numbers)")
    out.extend("  " + line for line in format_summary(summarize(derivation, sizes)).splitlines())
    return "\n".join(out) + "\n"


def _qdef(ctx: Context, q) -> str:
    p = _statement_printer(ctx, q.indices, [q.expr])
    p.names.walk(q.expr)
    return f"{p._print(Ref(q.name, q.indices))} = {p._print(q.expr)}"


def _for(labels) -> str:
    """``   for t = 1..4`` after a folded family (nothing for a single definition)."""
    return f"   for t = {label_range(labels)}" if len(labels) > 1 else ""


def _qdefs(ctx: Context, qs) -> list[str]:
    """Quantity definitions, each family of members equal up to a label shift written once."""
    lines = []
    for s in shown_families([(q.name, q.indices, q.expr) for q in qs]):
        p = _statement_printer(ctx, s.indices, [s.expr])
        p.names.walk(s.expr)
        lines.append(f"{p._print(Ref(s.name, s.indices))} = {p._print(s.expr)}{_for(s.labels)}")
    return lines


def _sum_over(sym: str, labels) -> str:
    """``Σ_{t=1..4} `` before a family of terms (nothing for a term that stands alone)."""
    return f"Σ_{{{sym}={label_range(labels)}}} " if labels else ""


def block_terms(block, ctx: Context) -> tuple[TextPrinter, list[str]]:
    """The printer of a block, its letters given in reading order, and the block's terms as printed.

    :mod:`einderiv.structure` names indices with this printer, so a reason like
    ``summed index l couples …`` uses the letters the block is displayed with.
    """
    p = _statement_printer(ctx, block.indices, [block.expr])
    body = [_sum_over(sym, labels) + p.term(t, block.indices)
            for sym, labels, t in folded_terms(block, p.names)]
    return p, body


def block_lines(derivation, block, ctx: Context | None = None) -> list[str]:
    """Lines of one block: ``LHS = term`` or ``LHS =`` then ``  + term`` per line."""
    ctx = ctx or Context.of(derivation)
    p, body = block_terms(block, ctx)
    lhs = _block_lhs(p, derivation, block)
    body = body or ["0"]
    lines = []
    if len(body) == 1:
        lines.append(f"{lhs} = {body[0]}")
    else:
        lines.append(f"{lhs} =")
        for k, s in enumerate(body):
            if k == 0:
                lines.append(f"      {s}")
            elif s.startswith(MINUS):
                lines.append(f"    {MINUS} {s[1:].lstrip()}")
            else:
                lines.append(f"    + {s}")
    if block.paper is not None and block.paper != block.expr:
        pp = _statement_printer(ctx, block.indices, [block.paper])
        pterms = [_sum_over(sym, labels) + pp.term(t, block.indices)
                  for sym, labels, t in folded_terms(block, pp.names, block.paper)]
        pad = " " * len(lhs)
        lines.append(f"{pad} = " + " + ".join(pterms) + "   (Eq. 6 form)")
    return lines
