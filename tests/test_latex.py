"""LaTeX rendering: exact printer units, and whole documents compiled with pdflatex."""
import sys
from pathlib import Path

import pytest
import sympy

sys.path.insert(0, str(Path(__file__).parent))
from netbuild import mlp  # noqa: E402
from pdfpages import compile_tex, layout, warnings  # noqa: E402

from einderiv.calculus.derive import derive  # noqa: E402
from einderiv.emit.latex import render  # noqa: E402
from einderiv.emit.latex_expr import LatexIndexPrinter, ScalarLatexPrinter  # noqa: E402
from einderiv.emit.latex_names import tex_compact, tex_tensor  # noqa: E402
from einderiv.analysis.roles import Context  # noqa: E402
from einderiv.emit.letters import IndexNames  # noqa: E402
from einderiv.calculus.functions import FunctionTable  # noqa: E402
from einderiv.frontend.builtins import ARG  # noqa: E402
from einderiv.ir import (Apply, Const, Delta, Fn, Index, Kind, LogSumExp, Name, Prod, Quantity,  # noqa: E402
                         Ref, Softmax)

ROOT = Path(__file__).parent.parent
n0, n1, c = sympy.symbols("n0 n1 c", positive=True, integer=True)
j, i, l = Index("j", n1), Index("i", n0), Index("l", c)
Z_V1 = Name("v1", arg=1)  # the pre-activation z_v1 of v1
CTX = Context(objective_args=(Name("p"),), arity={Name("p"): 1, Name("v1"): 1, Name("v2"): 1, Z_V1: 1},
              gammas=frozenset({(Name("v1"), Z_V1)}), softmax={Name("p"): "hat"})


def tex(e, free=(), ctx=CTX) -> str:
    return LatexIndexPrinter({"names": IndexNames(free), "context": ctx}).doprint(e)


# ---------------------------------------------------------------- printer units
def test_names():
    assert tex_tensor("W1") == ("W", "1")
    assert tex_tensor("z_v1") == ("z", "v_{1}")
    assert tex_tensor(Z_V1) == ("z", "v_{1}")
    assert tex_tensor(Name("h", (3,), arg=1)) == ("z", "h^{(3)}")
    assert tex_compact(Name("h", (3,), arg=1)) == "z_{h}^{(3)}"
    assert tex_tensor("x") == ("x", None)
    assert tex_tensor("hidden") == (r"\mathrm{hidden}", None)
    assert tex_tensor("W_out") == ("W", r"\mathrm{out}")
    assert tex_tensor("alpha") == (r"\alpha", None)
    assert tex_compact("a__b") == r"a_{\mathrm{\_b}}"


def test_ref_up_down():
    assert tex(Ref("W1", (j, i))) == "W^{(1),j}_{i}"
    assert tex(Ref("x", (i,))) == "x^{i}"
    assert tex(Ref(Z_V1, (j,))) == "z^{(v_{1}),j}"
    assert tex(Ref("f", ())) == "f"


def test_quantities():
    s = Index("_j_9", n1)
    assert tex(Ref(Quantity(Kind.ADJ, (Z_V1,)), (j,))) == r"\frac{\partial f}{\partial z^{(v_{1})}_{j}}"
    assert tex(Ref(Quantity(Kind.ADJ, (Name("p"),)), (l,))) == r"\frac{\partial f}{\partial p_{l}}"
    assert tex(Ref(Quantity(Kind.JAC, (Name("v1"), Z_V1)), (j, s)), [j, s]) == r"\gamma^{(v_{1}),j}_{s}"
    assert tex(Ref(Quantity(Kind.JAC, (Name("v2"), Z_V1)), (j, s)), [j, s]) == r"\eta^{(v_{2},z_{v_{1}}),j}_{s}"
    m = Index("_j_4", c)
    assert tex(Ref(Quantity(Kind.HOBJ, (Name("p"), Name("p"))), (l, m)), [l, m]) == \
        r"\frac{\partial^{2} f}{\partial p_{l}\, \partial p_{j}}"


def test_delta():
    s = Index("_j_3", n1)
    assert tex(Delta(j, s), [j, s]) == r"\delta^{j}_{s}"


def test_hadamard_product():
    had = Prod((Apply(Fn("relu", (1,)), (Ref(Z_V1, (j,)),)), Ref(Quantity(Kind.ADJ, (Name("v1"),)), (j,))), (j,))
    assert tex(had, [j]) == r"\operatorname{relu}'(z^{(v_{1}),j}) \frac{\partial f}{\partial v^{(1)}_{j}}"


def test_apply_derivatives():
    z = Ref(Z_V1, (j,))
    assert tex(Apply(Fn("relu", (0,)), (z,))) == r"\operatorname{relu}(z^{(v_{1}),j})"
    assert tex(Apply(Fn("tanh", (2,)), (z,))) == r"\tanh''(z^{(v_{1}),j})"
    assert tex(Apply(Fn("my_act", (4,)), (z,))) == r"\operatorname{my\_act}^{(4)}(z^{(v_{1}),j})"
    assert tex(Apply(Fn("g", (1, 2)), (z, z))) == \
        r"\partial_{1}\partial_{2}^{2}\operatorname{g}(z^{(v_{1}),j}, z^{(v_{1}),j})"


def test_softmax_and_logsumexp():
    assert tex(Softmax(Ref("p", (l,)), l)) == r"\hat{p}^{l}"
    assert tex(Softmax(Ref("q", (l,)), l)) == r"\operatorname{softmax}_{l}\!\left(q^{l}\right)"
    assert tex(LogSumExp(Ref("p", (l,)), l)) == r"\log \sum_{l} \exp\!\left(p^{l}\right)"


def test_contraction_gets_paper_letters():
    a, b = Index("_c0", c), Index("_c1", n1)
    e = Prod((Const(sympy.Integer(-1)), Ref("W3", (a, b)), Ref(Quantity(Kind.ADJ, (Name("p"),)), (a,)),
              Ref(Quantity(Kind.JAC, (Name("v2"), Z_V1)), (b, j))), (j,))
    assert tex(e, [j]) == r"-\frac{\partial f}{\partial p_{l}} W^{(3),l}_{m} \eta^{(v_{2},z_{v_{1}}),m}_{j}"


def test_scalar_printer_closed_forms():
    t = FunctionTable()
    assert ScalarLatexPrinter().doprint(t.derivative("tanh", (1,))) == r"1 - \tanh^{2}{\left(z \right)}"
    assert ScalarLatexPrinter({"nargs": 2}).doprint(ARG[0] * ARG[1]) == "z_{1} z_{2}"


# ---------------------------------------------------------------- documents
def paper_net():
    try:
        from einderiv.frontend.check import load
    except ImportError:
        return mlp([4, 5, 5, 3], ["relu", "relu"])
    return load(str(ROOT / "derivations" / "paper_mlp.ein"))


DOCS = {
    "paper_mlp": lambda: render(derive(paper_net(), 2)),
    "tanh_mlp": lambda: render(derive(mlp([4, 5, 5, 3], ["tanh", "tanh"], bias=True), 2)),
}


@pytest.fixture(scope="module", params=sorted(DOCS))
def document(request):
    return request.param, DOCS[request.param]()


def test_document_shape(document):
    name, doc = document
    assert doc.isascii()
    assert doc.startswith("\\documentclass")
    assert doc.count(r"\begin{equation}") == doc.count(r"\end{equation}") > 0
    assert "align*" not in doc and doc.count(r"\label{") > doc.count(r"\begin{equation}")
    assert r"\otimes" in doc and doc.rstrip().endswith(r"\end{document}")
    assert "_c0" not in doc and "_j_" not in doc


def test_paper_document_content():
    doc = DOCS["paper_mlp"]()
    assert r"\frac{\partial f}{\partial W^{(1),j}_{i}}" in doc
    # the paper's names: z^{(1)} the argument of v^{(1)}, γ^{(1)} (Eq. 1), η^{(2,1)} = ∂v^{(2)}/∂z^{(1)} (Eq. 4)
    assert (r"\frac{\partial f}{\partial W^{(1),j}_{i}} &= \frac{\partial f}{\partial z^{(1)}_{j}} \otimes x^{i} \\"
            "\n" r"&= \left(\frac{\partial f}{\partial p_{l}} U^{l}_{m} \eta^{(2,1),m}_{j}\right) \otimes x^{i}") in doc
    assert r"\gamma^{(1),j}_{s} &= \operatorname{relu}'(z^{(1),j}) \delta^{j}_{s}" in doc
    assert (r"\frac{\partial^{2} f}{\partial W^{(1),j}_{i}\, \partial W^{(2),s}_{t}} &= \gamma^{(1),t}_{j} "
            r"\otimes x^{i} \otimes \frac{\partial f}{\partial z^{(2)}_{s}}") in doc
    nested = render(derive(paper_net(), 2), naming="nested")  # today's spelled-out names, on request
    assert r"\gamma^{(v_{1}),t}_{j} \otimes x^{i} \otimes \frac{\partial f}{\partial z^{(v_{2})}_{s}}" in nested
    assert r"\eta^{(v_{2},z_{v_{1}}),m}_{j}" in nested


def test_deterministic():
    assert DOCS["tanh_mlp"]() == DOCS["tanh_mlp"]()


def test_compiles_with_pdflatex(document, tmp_path):
    """Compiled twice (for \\eqref): no warning but the untitled author, no bad box; every page fits."""
    name, doc = document
    pdf, log = compile_tex(doc, tmp_path, name)
    assert warnings(log) == []
    assert all(p.outside == 0 for p in layout(pdf))


def test_document_does_not_depend_on_earlier_derivations():
    net = mlp([3, 4, 2], ["tanh"], bias=True)
    first = render(derive(net, 3))
    derive(mlp([2, 3, 2], ["relu"], bias=True), 2)
    assert render(derive(net, 3)) == first


def test_recurrence_is_typeset_once_with_its_base_case():
    """At a concrete length (T = 4) the labels are numbers: only the general form is written for any T."""
    from einderiv.frontend.check import load

    src = (ROOT / "derivations" / "rnn.ein").read_text()
    doc = render(derive(load("rnn.ein", src, dims={"T": 4}), 1))  # the recurrence at length 4
    # ∂f/∂h(t) = ∂f/∂z_h(t+1) W for t = 1..3, then its base case ∂f/∂h(4) = ∂f/∂p U, which refers to it
    rec = (r"\frac{\partial f}{\partial h^{(t)}_{j}} &= \frac{\partial f}{\partial z^{(t+1)}_{l}} "
           r"W^{l}_{j} && t = 1,\dots,3 \label{eq:def-adj-h-t}")
    base = (r"\frac{\partial f}{\partial h^{(4)}_{j}} &= \frac{\partial f}{\partial p_{l}} U^{l}_{j} && "
            r"\text{base case of \eqref{eq:def-adj-h-t}}")
    assert rec in doc and base in doc and doc.index(rec) < doc.index(base)
    assert r"&= \sum_{t=1}^{4} \frac{\partial f}{\partial z^{(t)}_{j}} \otimes x^{(t),k}" in doc
    assert r"$x^{(t),k}$ & Input vector for a single sample, $n$ ($3$), $t = 1,\dots,4$" in doc
    assert r"h^{(4),j} = \tanh" not in doc  # the network's recurrence is one row too
    assert "T-1" not in doc and "h^{(T)}" not in doc


# ---------------------------------------------------------------- readability
def example_tex(name: str, **kw) -> str:
    from einderiv.frontend.check import load
    return render(derive(load(str(ROOT / "derivations" / name), **kw), 2))


@pytest.fixture(scope="module")
def attention_tex():
    return example_tex("attention.ein")


def test_node_definition_prints_the_node_name(attention_tex):
    assert (r"\frac{\partial f}{\partial s_{qk}} &= a^{qk} \frac{\partial f}{\partial a_{qk}}"
            r" - \frac{\partial f}{\partial a_{ql}} a^{ql} a^{qk} \label{") in attention_tex
    assert r"$a^{qk} = \operatorname{softmax}_{k}\!\left(s^{qk}\right)$ & Output of \texttt{a} \\" \
        in attention_tex


def test_constant_factors_fold_into_one_coefficient(attention_tex):
    d, t = sympy.symbols("d t", positive=True)
    q, dd = Index("q", t), Index("d", d)
    e = Prod((Const(1 / sympy.sqrt(d)), Ref("U", (l, dd)),
              Prod((Const(1 / t), Ref("o", (q, dd))), (dd,))), (l,))
    assert tex(e) == r"\frac{1}{\sqrt{d} t} U^{l}_{d} \sum_{q} o^{q}_{d}"
    # d is a size of attention.ein: its index d is shown as e
    assert r"$p^{l} = \frac{1}{t} U^{l}_{e} \sum_{q} o^{q}_{e}$ & Output of \texttt{p} \\" in attention_tex


def test_table_says_vector_matrix_or_tensor(attention_tex):
    # the file's X^s_i: s (a tensor's name there) is shown as b; the sizes, then their values
    assert r"$X^{b}_{i}$ & Input matrix for a single sample, $t \times n$ ($3 \times 2$) \\" in attention_tex
    assert r"$y^{l}$ & Label vector for a single sample, $c$ ($2$) \\" in attention_tex
    cnn = example_tex("cnn2d.ein")
    # x^{c,u,w} as written (all up); c is a size, shown as d
    assert r"$x^{duw}$ & Input tensor for a single sample, $C \times H \times Wd$ ($2 \times 4 \times 4$) \\" in cnn
    assert r"$b^{o}$ & Biases, $O$ ($2$) \\" in cnn  # a bias is listed as a bias


def test_broadcast_ones_in_a_sum_print_as_one():
    gru = example_tex("gru_cell.ein")
    assert (r"$h^{(1),j} = \mathrm{zg}^{j} h^{(0),j} + \left(1 - \mathrm{zg}^{j}\right) \mathrm{hc}^{j}$"
            r" & Output of \texttt{h1} \\") in gru
    ln = example_tex("layernorm_mlp.ein")
    assert r"\eta^{(m,z)}_{j} &= \frac{1}{h} \mathbf{1}^{j} \label{" in ln  # a factor keeps its ones vector


def test_unrolled_template_rows_per_shape():
    doc = example_tex("deep_template.ein", dims={"n": 3})
    assert (r"$w^{(1),j}_{i}$ & Weights, $h \times n_{in}$ ($5 \times 4$) \\" + "\n"
            r"$w^{(t),j}_{i}$ & Weights, $h \times h$ ($5 \times 5$), $t = 2, 3$ \\") in doc


def test_strided_selection_tensor_is_one_symbol(tmp_path):
    """S^u_{t,a} with stride 2, where no index arithmetic replaces it, is {S_{2}}^{u}_{lm}: no double
    subscript for pdflatex."""
    from einderiv.ir import Window
    u, t, a = Index("u", n0), Index("_t_1", n1), Index("_a_2", c)
    s = tex(Window(u, t, a, 2), [u])
    assert s == r"{S_{2}}^{u}_{lm}"
    doc = "\\documentclass{article}\\usepackage{amsmath}\\begin{document}$" + s + "$\\end{document}\n"
    pdf, log = compile_tex(doc, tmp_path, "window")
    assert warnings(log) == [] and "Double subscript" not in log


def test_title_is_the_files_own_and_the_path_is_below_it():
    doc = example_tex("paper_mlp.ein")
    assert (r"\title{The feedforward network of Table 1\\[6pt] \large Gradients and Hessian blocks of $f$\\[2pt] "
            r"\normalsize\texttt{") in doc and r"derivations/paper\_mlp.ein}}" in doc
    from einderiv.frontend.check import load
    lines = (ROOT / "derivations" / "rnn.ein").read_text().splitlines()
    src = "\n".join(x for x in lines if not x.startswith("#")) + "\n"  # a file without a comment
    assert r"\title{A recurrent tanh network" in render(derive(load("rnn.ein", src, dims={"T": 4}), 1))


def test_long_terms_fold_with_a_deeper_indent():
    """A term longer than the line continues on the next one at ⊗, indented past a new term's +,
    and no line is estimated wider than the display."""
    from einderiv.emit.latex import CONTINUED, NEW_TERM, LatexDocumentPrinter
    from einderiv.emit.latex_layout import DISPLAY_PT, tex_width
    lhs = r"\frac{\partial^{3} f}{\partial W^{(1),j}_{i}\, \partial W^{(1),s}_{t}\, \partial U^{l}_{r}}"
    factor = r"\left(\frac{\partial^{2} f}{\partial p_{l}\, \partial p_{m}} \eta^{(p,1),m}_{s}\right)"
    rows = LatexDocumentPrinter().equation_lines(lhs, [["= 2", factor, "x^{i}"] * 4, ["+", factor, "x^{t}"]])
    first, second = rows
    assert len(first) > 1 and all(line.startswith(CONTINUED + r"\otimes ") for line in first[1:])
    assert second[0].startswith(NEW_TERM + "+ ")
    assert len(CONTINUED) > len(NEW_TERM)  # \qquad\qquad against \quad
    assert all(tex_width(line) <= DISPLAY_PT for row in rows for line in row[1:])


# ---------------------------------------------------------------- structure rows with their equations
def test_structure_row_names_its_block_and_its_outer_product_form():
    """The table refers to each block's numbered equation; where K counts a form other than the
    block's own (terms sharing an outer factor merged), that form is a numbered equation too."""
    tex = (ROOT / "derivations" / "paper_mlp.tex").read_text()
    row = (r"$\partial^{2} f/\partial W^{(1)}\partial W^{(2)}$ \eqref{eq:d-W1-W2} & $1$ & one outer product, "
           r"as \eqref{eq:outer-W1-W2} & $64$ & $500$ \\")
    assert row in tex and r"\label{eq:d-W1-W2}" in tex and r"\label{eq:outer-W1-W2}" in tex
    assert r"\otimes x^{i} \qquad (K = 1)" in tex[tex.index(r"\section*{Outer-product forms}"):]
    swish = (ROOT / "derivations" / "swish_bce.tex").read_text()  # no outer-product structure: K is --
    assert r"\eqref{eq:d-U-U} & -- & no outer-product structure (" in swish


def test_long_merged_sum_and_long_definition_fold_inside_the_page():
    """A merged factor that is a long sum opens between its summands (attention's WQ,WK form); a
    definition wider than the line continues on an unnumbered line (the GRU's H recurrences)."""
    from einderiv.emit.latex_layout import DISPLAY_PT, tex_width

    att = (ROOT / "derivations" / "attention.tex").read_text()
    form = att[att.index(r"\section*{Outer-product forms}"):att.index(r"\section*{Structure}")]
    eq = form[:form.index(r"\label{eq:outer-WQ-WK}")]
    eq = eq[eq.rindex(r"\begin{equation}"):]
    lines = eq.split(" \\\\\n")
    assert r"\Big(" in lines[0] and r"\Big) \otimes X^{l}_{i} \qquad (K = 3)" in lines[-1] and len(lines) > 3
    assert all(tex_width(x.split("&", 1)[-1]) <= DISPLAY_PT for x in lines[1:])
    gru = (ROOT / "derivations" / "gru.tex").read_text()
    assert "\\nonumber \\\\\n  &\\qquad + " in gru
