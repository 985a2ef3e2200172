"""What the text and LaTeX printers share: the structure of sums and products, and of documents.

:class:`IndexPrinter` is a SymPy ``Printer`` for einderiv's IR that knows how a
sum is joined, how a product pulls out its coefficient, when it needs an
explicit Σ (an index summed over other than exactly two factors), how index
arithmetic ``x^{t+a}`` replaces a selection tensor, and when a node's
definition met inside an expression is printed as the node's name.  The
subclasses (:class:`~einderiv.emit.text_expr.TextPrinter`,
:class:`~einderiv.emit.latex_expr.LatexIndexPrinter`) supply the notation through a
few hooks: ``minus``, :meth:`paren`, :meth:`sum_prefix`, :meth:`arith_entry`,
and the ``_print_<Node>`` methods of the atoms.

:class:`DocumentPrinter` is the base of the document printers
(:class:`~einderiv.emit.text.TextDocumentPrinter`,
:class:`~einderiv.emit.latex.LatexDocumentPrinter`): one ``_print_<Class>``
method per section and item of a document model
(:mod:`einderiv.analysis.document`), and a fresh expression printer, with its
own index letters, for every statement.
"""
from __future__ import annotations

from typing import Sequence

import sympy
from sympy.printing.printer import Printer

from ..analysis.document import OuterItem, folded_terms
from ..analysis.factor import FactoredTerm
from ..analysis.order import display_order, split_coef, sum_terms, term_parts, windows_shown
from ..analysis.roles import Context
from ..frontend.builtins import ARG
from ..ir import (Add, Apply, Const, Delta, Expr, Fn, Index, Inv, LogSumExp, MatDet, Max, Prod, Quantity, Ref,
                  Softmax, Window)
from .letters import IndexNames


def shown(text: str) -> str:
    r"""Free text from a file (its path, its title) as a printed header shows it: every character
    that is not printable (a control character such as ESC, which a terminal would obey; a newline;
    a lone surrogate from an undecodable file name) as its Python escape, ``\x1b``, ``\n``.

    Example:
        >>> print(shown("net\x1b[2J\n.ein"))
        net\x1b[2J\n.ein
    """
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def mul_parts(expr: sympy.Mul) -> tuple[sympy.Expr, list, list] | None:
    """A product without a denominator as (number, plain factors, bracketed sums), in the order a
    reader writes them (the closed forms: ``−2 tanh(z) (1 − tanh(z)²)``); None for a product with a
    denominator or without a sum, which SymPy's own printing writes well."""
    factors = list(expr.args)
    if not any(f.is_Add for f in factors) or any(f.is_Pow and f.exp.is_negative for f in factors):
        return None
    coef = sympy.Mul(*[f for f in factors if f.is_Number])
    plain = [f for f in factors if not f.is_Number and not f.is_Add]
    return coef, plain, [f for f in factors if f.is_Add]


class IndexPrinter(Printer):
    """Base of the index-notation printers (settings: ``names``, ``context``)."""

    _default_settings = {"names": None, "context": None}
    #: the minus sign of this notation
    minus = "-"

    def __init__(self, settings=None):
        super().__init__(settings)
        if self._settings["names"] is None:
            self._settings["names"] = IndexNames()
        if self._settings["context"] is None:
            self._settings["context"] = Context()
        self.names: IndexNames = self._settings["names"]
        self.ctx: Context = self._settings["context"]
        #: square tensors a product shows as their trace (``tr(S)``: S^a_b δ^a_b summed over both)
        self.traced: set = set()
        #: print a node's definition, met inside an expression, as the node's name (off for the
        #: Network section, which shows the definitions as written)
        self.name_nodes = True
        if self.names.alias is None:
            self.names.alias = self.node_named
        self.scalar = self.scalar_printer()
        #: indices shown as index arithmetic in the product being printed (u → what stands for it)
        self.arith: dict[Index, object] = {}

    # -- hooks ------------------------------------------------------------------
    def scalar_printer(self) -> Printer:
        raise NotImplementedError

    def paren(self, s: str) -> str:
        return f"({s})"

    def sum_prefix(self, sums: Sequence[Index]) -> str:
        """The explicit summation sign over ``sums``, followed by a space."""
        raise NotImplementedError

    def trace(self, r: Ref) -> str:
        """The trace of a square tensor, ``S^a_b δ^a_b`` summed over both (``trace(S)``)."""
        raise NotImplementedError

    def arith_entry(self, w: Window) -> object:
        """What :attr:`arith` holds for the index ``w.u`` shown as ``stride·t + a``."""
        return w

    # -- scalar closed forms --------------------------------------------------------
    def closed_form(self, form, eq: str) -> str:
        """``tanh′(z) = 1 − tanh(z)²`` for a :class:`~einderiv.analysis.document.ClosedForm`
        (the right side from SymPy); ``eq`` is the notation's equals sign."""
        scal = type(self.scalar)({"nargs": len(form.deriv)})
        args = ", ".join(scal.doprint(a) for a in ARG[:len(form.deriv)])
        return (self.fn_name(Apply(Fn(form.fn, form.deriv), ())) + "(" + args + ")" + eq
                + scal.doprint(form.expr))

    # -- node names ---------------------------------------------------------------
    def node_named(self, e: Expr) -> Ref | None:
        """The node ``e`` is the definition of (:meth:`Context.named`), if names are wanted."""
        if self.name_nodes and isinstance(e, (Apply, Softmax, LogSumExp, Max, MatDet, Inv)):
            return self.ctx.named(e)
        return None

    def _print(self, expr, **kwargs):
        shown = self.node_named(expr) if isinstance(expr, Expr) else None
        return super()._print(shown if shown is not None else expr, **kwargs)

    # -- sums and products ---------------------------------------------------------
    def _print_Const(self, e: Const) -> str:
        return self.scalar.doprint(e.value)

    def _print_Add(self, e: Add) -> str:
        out = ""
        for k, (t, one) in enumerate(sum_terms(e, self.names.free)):
            s = self._print(t) if one is None else self._with_coef(one, "")
            if k == 0:
                out = s
            elif s.startswith(self.minus):
                out += f" {self.minus} " + s[len(self.minus):].lstrip()
            else:
                out += " + " + s
        return out

    def _print_Prod(self, e: Prod) -> str:
        coef, fs = split_coef(e.factors)
        return self.product(coef, display_order(fs, e.out, self.names.free), e.out)

    def product(self, coef, factors: Sequence[Expr], out: Sequence[Index]) -> str:
        """``coef`` times the factors, with an explicit sum over indices that are not
        summed over exactly two factors, and index arithmetic for selection tensors."""
        c, factors = split_coef(factors)
        coef *= c
        outs = set(out)
        count: dict[Index, int] = {}
        for f in factors:
            for ix in f.free:
                if ix not in outs:
                    count[ix] = count.get(ix, 0) + 1
        sums = [ix for ix, n in count.items() if n != 2]
        traces = _traces(factors, count)
        factors = [f for f in factors if not any(f in pair for pair in traces)] + [pair[0] for pair in traces]
        shown = windows_shown(factors, out)
        for w in shown:  # x^{t+a} instead of S^u_{t,a} x^u
            self.arith[w.u] = self.arith_entry(w)
        saved, self.traced = self.traced, {pair[0] for pair in traces}
        try:
            body = " ".join(self._factor(f) for f in factors if f not in shown)
        finally:
            self.traced = saved
            for w in shown:
                self.arith.pop(w.u, None)
        if sums:
            body = self.sum_prefix(sums) + body
        return self._with_coef(coef, body)

    def _with_coef(self, coef, body: str) -> str:
        if coef == 1:
            return body or "1"
        if coef == -1:
            return self.minus + (body or "1")
        c = self.scalar.doprint(coef)
        if not body:
            return c
        if isinstance(coef, sympy.Add):
            c = self.paren(c)
        return f"{c} {body}"

    def _factor(self, f: Expr) -> str:
        if isinstance(f, Ref) and f in self.traced:
            return self.trace(f)
        s = self._print(f)
        return self.paren(s) if isinstance(f, Add) else s

    def term_parts(self, t: FactoredTerm, out: Sequence[Index]) -> tuple[sympy.Expr, list[str], list[str]]:
        """A term of a block as (coefficient, printed scalar weights, printed outer-product factors);
        a factor of several tensors is bracketed when there are several factors.  A term summed
        outside its product (``t.over``) starts with that sum: ``Σ_q ∂f/∂Q_{qd} ⊗ X^q_i``."""
        opened = tuple(out) + tuple(t.over)
        coef, scalars, groups_fs = term_parts(t, opened, self.names.free)
        pieces = ([self.sum_prefix(t.over).rstrip()] if t.over else []) + [self.product(1, fs, opened)
                                                                             for fs in scalars]
        many = len(groups_fs) > 1
        groups = []
        for fs in groups_fs:
            s = self.product(1, fs, opened)
            shown = len(fs) - len(windows_shown(fs, opened))  # x^{t+a} is one tensor
            groups.append(self.paren(s) if many and shown > 1 else s)
        return coef, pieces, groups


def outer_terms(row) -> tuple:
    """The folded terms of a structure row's outer-product form (as the document shows them)."""
    return OuterItem(row, ()).terms()


class DocumentPrinter(Printer):
    """Base of the document printers; ``expr_printer`` is the notation's :class:`IndexPrinter`."""

    expr_printer: type = IndexPrinter

    def __init__(self, settings=None):
        super().__init__(settings)
        self.doc = None
        #: each block's printer once its terms are printed: the structure section names the
        #: indices of a coupling with the letters the block was shown with
        self.block_printers: dict[tuple, IndexPrinter] = {}
        #: the same for each block's outer-product form, once printed
        self.outer_printers: dict[tuple, IndexPrinter] = {}

    def doprint(self, doc) -> str:
        self.doc = doc
        return self._print(doc)

    def statement(self, free: Sequence[Index], exprs: Sequence[Expr] = (), walk: bool = False,
                  ctx: Context | None = None, reserved: Sequence[str] | None = None) -> IndexPrinter:
        """A printer for one statement: letters for ``free`` first, none that ``exprs`` use or that
        the document reserves; with ``walk`` the indices of ``exprs`` are lettered in display order.
        ``ctx`` and ``reserved`` stand in for the document's when there is none."""
        ctx = ctx or self.doc.context
        reserved = self.doc.reserved(exprs) if reserved is None else reserved
        names = IndexNames(free, reserved, ctx.renames).reserve_user(exprs)
        p = self.expr_printer({"names": names, "context": ctx, **self.expr_settings()})
        if walk:
            for e in exprs:
                p.names.walk(e)
        return p

    def expr_settings(self) -> dict:
        """Settings every expression printer of this document gets besides its letters and context."""
        return {}

    def coupling_printer(self, row) -> IndexPrinter:
        """The printer of a structure row's block after its terms (or its outer-product form, when
        that is what the row's coupling names) and then the coupled term are printed, so the
        coupling's indices have the letters the block is shown with."""
        block, c = row.block, row.coupling
        own = row.outer is not None and row.outer.rewritten
        p = (self.outer_printers if own else self.block_printers).pop(row.wrt, None)
        if p is None:  # not shown: print its terms to letter them
            exprs = [t.expr(block.indices) for t in row.outer.terms] if own else [block.expr]
            p = self.statement(block.indices, exprs, ctx=c.context, reserved=c.context.letters_taken(exprs))
            for t in (outer_terms(row) if own else folded_terms(block, self.step_symbol(p, block.indices))):
                p.term_parts(t.term, block.indices)
        p.term_parts(c.term, block.indices)  # (a term folded over steps names its own indices)
        return p

    @staticmethod
    def step_symbol(p: IndexPrinter, axes: Sequence[Index]) -> str:
        """The label of a sum over steps: ``t``, or ``τ`` when an axis is lettered t (∂²f/∂W^j_i∂W^s_t)."""
        return "τ" if "t" in {p.names[ix] for ix in axes} else "t"


def _traces(factors: Sequence[Expr], count: dict) -> list[tuple[Ref, Delta]]:
    """(S^a_b, δ^a_b) pairs of a product whose a and b are summed between the two alone: a trace."""
    out = []
    for d in factors:
        if not isinstance(d, Delta) or d.a == d.b or count.get(d.a) != 2 or count.get(d.b) != 2:
            continue
        for r in factors:
            if isinstance(r, Ref) and not isinstance(r.name, Quantity) and set(r.indices) == {d.a, d.b} \
                    and len(r.indices) == 2:
                out.append((r, d))
                break
    return out
