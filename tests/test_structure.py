"""Structure summary: kinds, term counts and per-sample storage of derivative blocks."""
import sys
from pathlib import Path

import pytest
import sympy

sys.path.insert(0, str(Path(__file__).parent))
from netbuild import LOC, mlp  # noqa: E402

from einderiv.calculus.derive import derive  # noqa: E402
from einderiv.analysis.factor import factored  # noqa: E402
from einderiv.ir import Apply, Fn, Index, Prod, Ref  # noqa: E402
from einderiv.frontend.network import Definition, Network, TensorDecl, dim_symbol  # noqa: E402
from einderiv.frontend.objectives import objective_expr  # noqa: E402
from einderiv.analysis.structure import Form, How, summarize  # noqa: E402
from einderiv.emit.text import kind_words, reason, structure_table  # noqa: E402

PAPER = [4, 5, 5, 3]  # n0, n1, n2, c of the paper's Table 1 network


def rows(net, order=2, sizes=None):
    return {tuple(map(str, r.wrt)): r for r in summarize(derive(net, order), sizes)}


@pytest.fixture(scope="module")
def relu_rows():
    return rows(mlp(PAPER, ["relu", "relu"]))


@pytest.fixture(scope="module")
def tanh_rows():
    return rows(mlp(PAPER, ["tanh", "tanh"]))


def test_gradients_are_single_outer_products(relu_rows):
    w1 = relu_rows[("W1",)]
    assert (w1.kind, w1.terms, w1.factored, w1.dense) == (Form.OUTER, 1, 9, 20)
    assert kind_words(w1) == "one outer product"
    assert w1.shape == (5, 4)
    assert (relu_rows[("W2",)].factored, relu_rows[("W2",)].dense) == (10, 25)
    assert (relu_rows[("W3",)].factored, relu_rows[("W3",)].dense) == (8, 15)
    assert all(reason(r) == "" for r in relu_rows.values())


def test_hessian_cross_block_is_sum_of_outer_products(relu_rows):
    d = derive(mlp(PAPER, ["relu", "relu"]), 2)
    block = d.block("W1", "W2")
    k = len(factored(block.expr, block.indices))
    r = relu_rows[("W1", "W2")]
    assert k == 2  # Gauss-Newton term + the r > k cross term of Eq. 9
    assert r.terms == k and r.kind is Form.SUM and kind_words(r) == "sum of 2 outer products"
    # γ^t_j (25) + x (4) + δ[z_v2] (5)  +  (∂²f/∂p∂p η η)_{js} (25) + x (4) + v1 (5)
    assert (r.factored, r.dense) == (68, 500)


def test_relu_diagonal_block_has_no_second_derivative_term(relu_rows, tanh_rows):
    r = relu_rows[("W1", "W1")]
    assert (r.kind, r.terms, r.factored, r.dense) == (Form.OUTER, 1, 33, 400)
    t = tanh_rows[("W1", "W1")]
    # tanh adds A'' and η'' terms; the A'' factor δ^j_s tanh''(z^j) δ[v1]_j is a diagonal: 5 numbers
    assert (t.kind, t.terms, t.dense) == (Form.SUM, 3, 400)
    assert kind_words(t) == "sum of 3 outer products" and t.steps == ()
    assert t.factored == 79


def test_output_layer_blocks(relu_rows):
    r = relu_rows[("W3", "W3")]
    assert (r.kind, r.factored, r.dense) == (Form.OUTER, 3 * 3 + 5 + 5, 225)


def test_bias_gradient_is_a_vector():
    r = rows(mlp([4, 5, 3], ["tanh"], bias=True), order=1)
    assert r[("b1",)].kind is Form.VECTOR and kind_words(r[("b1",)]) == "a vector"
    assert (r[("b1",)].factored, r[("b1",)].dense) == (5, 5)


def test_symbolic_storage():
    net = mlp([None, None, None], ["tanh"])
    n0, n1, n2 = (dim_symbol(f"n{k}") for k in range(3))
    r = rows(net)
    assert r[("W1",)].factored == n0 + n1 and r[("W1",)].dense == n0 * n1
    assert r[("W2", "W2")].factored == 2 * n1 + n2**2
    assert sympy.expand(r[("W1", "W1")].factored - (4 * n0 + n1**2 + n1)) == 0
    # partly known sizes are substituted
    r4 = rows(net, sizes={"n0": 4})
    assert r4[("W1",)].factored == n1 + 4 and r4[("W1",)].dense == 4 * n1


def _batched_net():
    """z^{o t} = K^o_a X^{t a}: a weight shared across t — its gradient couples o and a."""
    O, A, T = (dim_symbol(n) for n in ("no", "na", "nt"))
    o, a, t = Index("o", O), Index("a", A), Index("t", T)
    z = Prod((Ref("K", (o, a)), Ref("X", (t, a))), (o, t))
    p = Prod((Apply(Fn("tanh", (0,)), (Ref("z", (o, t)),)),), (o,))
    tensors = (TensorDecl("X", "input", (t, a), LOC), TensorDecl("y", "label", (o,), LOC),
               TensorDecl("K", "weight", (o, a), LOC))
    defs = (Definition("z", (o, t), z, LOC), Definition("p", (o,), p, LOC),
            Definition("f", (), objective_expr("squared_error", Ref("p", (o,)), Ref("y", (o,))), LOC))
    dims = (("no", 3), ("na", 4), ("nt", 6))
    return Network("<test>", dims, tensors, (), defs, "f")


def test_no_outer_product_structure_names_the_coupling():
    r = rows(_batched_net(), order=1)[("K",)]
    assert r.kind is Form.NONE and kind_words(r) == "no outer-product structure"
    c = r.coupling
    assert c.how is How.SUMMED and len(c.indices) == 1  # an Index summed inside the coupled factor
    assert any(c.indices[0] in g.bound for g in c.term.groups)
    assert [str(f.name) for f in c.factors] == ["adj[z]", "X"]
    assert reason(r) == "summed index l couples ∂f/∂z and X"
    assert (r.factored, r.dense) == (12, 12)


def test_structure_table(relu_rows):
    text = structure_table(list(relu_rows.values()))
    lines = text.splitlines()
    assert lines[0].split() == ["block", "K", "structure", "factored", "dense"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["W1", "1", "one", "outer", "product", "9", "20"]
    assert any(line.split()[:2] == ["W1,W2", "2"] and line.split()[-2:] == ["68", "500"] for line in lines)


def test_coupling_reason_uses_the_letters_of_the_text_output():
    """The WQ,WK block of attention shows η[s,Q]^{gh}_l^e X^l_i: the reason names l, as printed."""
    from einderiv.frontend.check import load
    from einderiv.emit.text import render

    root = Path(__file__).parent.parent
    d = derive(load(str(root / "derivations" / "attention.ein")), 2)
    r = {tuple(map(str, x.wrt)): x for x in summarize(d)}[("WQ", "WK")]
    assert reason(r) == "summed index l couples η[s,Q] and X"
    text = render(d)
    # d (a size) and s (a tensor) are attention's own names: its indices d, s are shown as e, b
    block = text[text.index("∂²f/∂WQ^e_i∂WK^r_k ="):text.index("∂²f/∂WQ^e_i∂WV^r_k =")]
    assert "η[s,Q]^{gh}_l^e X^l_i" in block
    assert "  WQ,WK  7  no outer-product structure (summed index l couples η[s,Q] and X)" in text
