"""LaTeX rendering: exact printer units, and whole documents compiled with pdflatex."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sympy

sys.path.insert(0, str(Path(__file__).parent))
from netbuild import mlp  # noqa: E402

from einderiv.calculus.derive import derive  # noqa: E402
from einderiv.emit.latex import render  # noqa: E402
from einderiv.emit.latex_expr import LatexIndexPrinter, ScalarLatexPrinter, tex_compact, tex_tensor  # noqa: E402
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
              gammas=frozenset({(Name("v1"), Z_V1)}), softmax={Name("p"): "s"})


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
    assert tex(Softmax(Ref("p", (l,)), l)) == "s^{l}"
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
    assert doc.count(r"\begin{align*}") == doc.count(r"\end{align*}")
    assert r"\otimes" in doc and doc.rstrip().endswith(r"\end{document}")
    assert "_c0" not in doc and "_j_" not in doc


def test_paper_document_content():
    doc = DOCS["paper_mlp"]()
    assert r"\frac{\partial f}{\partial W^{(1),j}_{i}}" in doc
    assert r"&= \frac{\partial f}{\partial z^{(v_{1})}_{j}} \otimes x^{i}" in doc
    assert r"\gamma^{(v_{1}),j}_{s} &= \operatorname{relu}'(z^{(v_{1}),j}) \delta^{j}_{s}" in doc
    assert r"\frac{\partial^{2} f}{\partial W^{(1),j}_{i}\, \partial W^{(2),s}_{t}}" in doc
    assert r"&= \gamma^{(v_{1}),t}_{j} \otimes x^{i} \otimes \frac{\partial f}{\partial z^{(v_{2})}_{s}}" in doc


def test_deterministic():
    assert DOCS["tanh_mlp"]() == DOCS["tanh_mlp"]()


def test_compiles_with_pdflatex(document, tmp_path):
    name, doc = document
    exe = shutil.which("pdflatex")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is not installed (CI must install texlive)")
        pytest.skip("pdflatex not on PATH")
    (tmp_path / f"{name}.tex").write_text(doc)
    run = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / f"{name}.log").read_text(errors="replace")
    assert run.returncode == 0, log[-3000:]
    assert "Undefined control sequence" not in log
    assert "Missing" not in log
    assert (tmp_path / f"{name}.pdf").stat().st_size > 0


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
    # δ[h(t)] = δ[z_h(t+1)] W for t = 1..3, then its base case δ[h(4)] = ∂f/∂p U
    rec = (r"\frac{\partial f}{\partial h^{(t)}_{j}} &= \frac{\partial f}{\partial z^{(h^{(t+1)})}_{l}} "
           r"W^{l}_{j} && t = 1,\dots,3")
    base = r"\frac{\partial f}{\partial h^{(4)}_{j}} &= \frac{\partial f}{\partial p_{l}} U^{l}_{j} && \text{(base case)}"
    assert rec in doc and base in doc and doc.index(rec) < doc.index(base)
    assert r"&= \sum_{t=1}^{4} \frac{\partial f}{\partial z^{(h^{(t)})}_{j}} \otimes x^{(t),k}" in doc
    assert r"$x^{(t),k}$ & Input vector for a single sample ($n = 3$), $t = 1,\dots,4$" in doc
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
    assert (r"\frac{\partial f}{\partial s_{qk}} &= a^{q}_{k} \frac{\partial f}{\partial a_{qk}}"
            r" - \frac{\partial f}{\partial a_{ql}} a^{q}_{l} a^{q}_{k} \\") in attention_tex
    assert r"$a^{q}_{k} = \operatorname{softmax}_{k}\!\left(s^{q}_{k}\right)$ & Output of \texttt{a} \\" \
        in attention_tex


def test_constant_factors_fold_into_one_coefficient(attention_tex):
    d, t = sympy.symbols("d t", positive=True)
    q, dd = Index("q", t), Index("d", d)
    e = Prod((Const(1 / sympy.sqrt(d)), Ref("U", (l, dd)),
              Prod((Const(1 / t), Ref("o", (q, dd))), (dd,))), (l,))
    assert tex(e) == r"\frac{1}{\sqrt{d} t} U^{l}_{d} \sum_{q} o^{q}_{d}"
    assert r"$p^{l} = \frac{1}{t} U^{l}_{d} \sum_{q} o^{q}_{d}$ & Output of \texttt{p} \\" in attention_tex


def test_table_says_vector_matrix_or_tensor(attention_tex):
    assert r"$X^{s}_{i}$ & Input matrix for a single sample ($t = 3 \times n = 2$) \\" in attention_tex
    assert r"$y^{l}$ & Label vector for a single sample ($c = 2$) \\" in attention_tex
    cnn = example_tex("cnn2d.ein")
    assert r"$x^{c}_{uw}$ & Input tensor for a single sample ($C = 2 \times H = 4 \times Wd = 4$) \\" in cnn


def test_broadcast_ones_in_a_sum_print_as_one():
    gru = example_tex("gru_cell.ein")
    assert (r"$h^{(1),j} = \mathrm{zg}^{j} h^{(0),j} + \left(1 - \mathrm{zg}^{j}\right) \mathrm{hc}^{j}$"
            r" & Output of \texttt{h1} \\") in gru
    ln = example_tex("layernorm_mlp.ein")
    assert r"\eta^{(m,z)}_{j} &= \frac{1}{h} \mathbf{1}^{j} \\" in ln  # a factor keeps its ones vector


def test_unrolled_template_rows_per_shape():
    doc = example_tex("deep_template.ein", dims={"n": 3})
    assert (r"$w^{(1),j}_{i}$ & Weights ($h = 5 \times n_{in} = 4$) \\" + "\n"
            r"$w^{(t),j}_{i}$ & Weights ($h = 5 \times h = 5$), $t = 2, 3$ \\") in doc
