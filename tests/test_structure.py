"""Structure summary: kinds, term counts and per-sample storage of derivative blocks."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from netbuild import LOC, mlp  # noqa: E402
from einderiv.frontend.check import load  # noqa: E402

from einderiv.calculus.derive import derive  # noqa: E402
from einderiv.analysis.factor import factored  # noqa: E402
from einderiv.ir import Apply, Fn, Index, Prod, Ref  # noqa: E402
from einderiv.frontend.network import Definition, Network, TensorDecl, dim_symbol  # noqa: E402
from einderiv.frontend.objectives import objective_expr  # noqa: E402
from einderiv.analysis.structure import Form, How, summarize  # noqa: E402
from einderiv.emit.text import kind_words, reason, structure_table  # noqa: E402

ROOT = Path(__file__).parent.parent
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


def test_hessian_cross_block_shares_its_input_factor(relu_rows):
    """Eq. 9's two terms for r > k, γ^t_j ⊗ x^i ⊗ δ_s and (∂²f/∂p∂p η η)_{js} ⊗ x^i ⊗ v1^t, share x^i:
    across i | (j, s, t) the block is one outer product, x^i ⊗ (γ^t_j δ_s + (…)_{js} v1^t)."""
    d = derive(mlp(PAPER, ["relu", "relu"]), 2)
    block = d.block("W1", "W2")
    assert len(factored(block.expr, block.indices)) == 2  # Gauss-Newton term + the r > k cross term of Eq. 9
    r = relu_rows[("W1", "W2")]
    assert (r.kind, r.terms) == (Form.OUTER, 1) and kind_words(r) == "one outer product"
    j, i, s, t = block.indices
    assert r.outer.parts == ((j, s, t), (i,)) and r.outer.rewritten
    # x (4) + γ^t_j (25) + δ[z_v2] (5) + (∂²f/∂p∂p η η)_{js} (25) + v1 (5): the summands, cheaper than dense 125
    assert (r.factored, r.dense) == (64, 500)


def test_relu_diagonal_block_has_no_second_derivative_term(relu_rows, tanh_rows):
    r = relu_rows[("W1", "W1")]
    assert (r.kind, r.terms, r.factored, r.dense) == (Form.OUTER, 1, 33, 400) and not r.outer.rewritten
    t = tanh_rows[("W1", "W1")]
    # tanh adds A'' and η'' terms; all three end in ⊗ x^i ⊗ x^t: one outer product after merging,
    # (A''-term + Gauss-Newton + η'' term)_{js} ⊗ x^i ⊗ x^t, the js factor dense (25) + x + x
    assert (t.kind, t.terms, t.dense) == (Form.OUTER, 1, 400)
    assert kind_words(t) == "one outer product" and t.steps == ()
    assert t.factored == 25 + 4 + 4 and t.outer.rewritten and len(t.outer.terms[0].factors[0].terms) == 3


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
    assert r[("W2", "W2")].factored == 2 * n1 + n2**2  # (A''-term + Gauss–Newton)_{js} merged, ⊗ v1 ⊗ v1
    assert r[("W1", "W1")].factored == 2 * n0 + n1**2
    assert r[("W1", "W2")].terms == 1  # x^i shared by every term
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


def test_weight_shared_over_an_index_is_a_sum_over_it():
    """K^o_a is applied at every t (z^{ot} = K^o_a X^{ta}): its gradient is Σ_t δ[z]_{ot} ⊗ X^{ta},
    a sum of |t| = 6 outer products — not "no outer-product structure" (issue 10, case 2)."""
    r = rows(_batched_net(), order=1)[("K",)]
    assert r.kind is Form.SHARED and r.terms == 6 and kind_words(r) == "sum of 6 outer products"
    c = r.coupling
    assert c.how is How.SUMMED and c.indices == c.term.over  # the index summed outside the product
    assert [str(f.name) for f in c.factors] == ["adj[z]", "X"]
    assert reason(r) == ("over l, read by ∂f/∂z and X: a weight shared over l; "
                         "no saving")
    assert (r.factored, r.dense) == (6 * (3 + 4), 12) and not r.saves


def test_no_split_names_what_ties_the_axes():
    """An L2 penalty's U^l_j carries both axes of U's gradient: no split exists."""
    net = load("s.ein", (ROOT / "derivations" / "swish_bce.ein").read_text())
    r = {tuple(map(str, x.wrt)): x for x in summarize(derive(net, 1))}[("U",)]
    assert r.kind is Form.NONE and r.outer is None and r.coupling.how is How.CARRIES
    assert reason(r) == "U carries axes l, j together"


def test_structure_table(relu_rows):
    text = structure_table(list(relu_rows.values()))
    lines = text.splitlines()
    assert lines[0].split() == ["block", "K", "structure", "factored", "dense"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["W1", "1", "one", "outer", "product", "9", "20"]
    assert any(line.split()[:2] == ["W1,W2", "1"] and line.split()[-2:] == ["64", "500"] for line in lines)


def test_coupling_reason_uses_the_letters_of_the_text_output():
    """The WQ,WK block's outer-product form is Σ_l (…) ⊗ X^l_i: the reason names l, as printed."""
    from einderiv.emit.text import render

    d = derive(load(str(ROOT / "derivations" / "attention.ein")), 2)
    r = {tuple(map(str, x.wrt)): x for x in summarize(d)}[("WQ", "WK")]
    assert reason(r) == "over l, read by ∂f/∂s and X; no saving"
    text = render(d)
    forms = text[text.index("Outer-product forms"):text.index("Structure (per sample")]
    line = next(x for x in forms.splitlines() if x.startswith("  ∂²f/∂WQ^e_i∂WK^r_k = "))
    assert line.startswith("  ∂²f/∂WQ^e_i∂WK^r_k = Σ_l (") and line.endswith(") ⊗ X^l_i   (K = 3)")
    assert "  WQ,WK  3  sum of 3 outer products (over l, read by ∂f/∂s and X; no saving" in text


# ------------------------------------------------------------------ the cases of issue 10
POOLED = """dims t = 3, n = 2, c = 2
input X^s_i : t, n
label y^l : c
weight W^j_i : n, n
weight U^l_j : c, n
Y^q_j = X^q_j + W^j_i X^q_i
p^l = U^l_j mean_q(Y^q_j)
f = softmax_cross_entropy(p, y)
"""


def test_report_agrees_with_the_eq6_form():
    """δ[Y]_{qj} = 1/t ∂f/∂p_l U^l_j 𝟙^q is the same at every position: the Eq. 6 form prints one outer
    product, and the report says so (it writes δ[Y] out to see it)."""
    from einderiv.emit.text import render

    d = derive(load("pooled.ein", POOLED), 1)
    r = {tuple(map(str, x.wrt)): x for x in summarize(d)}[("W",)]
    assert (r.kind, r.terms) == (Form.OUTER, 1) and r.outer.inlined
    text = render(d)
    assert "= 1/t (∂f/∂p_l U^l_j) ⊗ Σ_m X^m_i   (Eq. 6 form)" in text
    assert "  ∂f/∂W^j_i = 1/t (∂f/∂p_l U^l_j) ⊗ Σ_m X^m_i   (K = 1)" in text
    assert "  W      1  one outer product" in text


MIXTURE = """dims n = 3, e = 2, h = 3, c = 2
input x^i : n
label y^l : c
weight G^k_i : e, n
weight W^{k,j}_i : e, h, n
weight U^l_j : c, h
g^k = softmax_k(G^k_i x^i)
m^j = g^k tanh(W^{k,j}_i x^i)
p^l = U^l_j m^j
f = softmax_cross_entropy(p, y)
"""


def test_mixture_of_experts_weights_agree_with_their_eq6_form():
    """The experts' weight W^{k,j}_i: δ[z_m]_{kj} carries the expert and the unit together, one factor
    over (k, j) against x^i — one outer product, as its Eq. 6 form prints."""
    from einderiv.emit.text import render

    d = derive(load("moe.ein", MIXTURE), 1)
    rows = {tuple(map(str, x.wrt)): x for x in summarize(d)}
    assert [(rows[(w,)].kind, rows[(w,)].terms) for w in ("G", "W", "U")] == [(Form.OUTER, 1)] * 3
    k, j, i = rows[("W",)].block.indices
    assert rows[("W",)].outer.parts == ((k, j), (i,))
    assert "= (∂f/∂p_l U^l_q η[m,z_m]^q_k^j) ⊗ x^i   (Eq. 6 form)" in render(d)


def test_attention_value_weight_with_mean_pooling_is_rank_one():
    d = derive(load(str(ROOT / "derivations" / "attention.ein")), 2)
    r = {tuple(map(str, x.wrt)): x for x in summarize(d)}
    assert (r[("WV",)].kind, r[("WV",)].terms) == (Form.OUTER, 1)  # δ[m] ⊗ the attention-averaged input
    assert (r[("WV", "WV")].kind, r[("WV", "WV")].terms) == (Form.OUTER, 1)
    for w in ("WQ", "WK"):  # the query and key weights: a sum over the t = 3 positions
        assert (r[(w,)].kind, r[(w,)].terms) == (Form.SHARED, 3)


CNN = """dims N = 6, A = 3, O = 2, c = 2
input  x^u : N
input  x2^{u,w} : N, N
label  y^l : c
weight K^o_a : O, A
weight K2^o_{a,b} : O, A, A
weight U^l_{o,t} : c, O, 4
weight U2^l_{o,t,s} : c, O, 4, 4
v^{o,t} = tanh(K^o_a x^{t+a})
w^{o,t,s} = tanh(K2^o_{a,b} x2^{t+a,s+b})
p^l = U^l_{o,t} v^{o,t} + U2^l_{o,t,s} w^{o,t,s}
f = squared_error(p, y)
"""


def test_convolution_is_a_correlation_in_1d_and_2d():
    r = {tuple(map(str, x.wrt)): x for x in summarize(derive(load("c.ein", CNN), 1))}
    one, two = r[("K",)], r[("K2",)]
    assert one.kind is two.kind is Form.CORRELATION
    assert (one.terms, two.terms) == (4, 16)  # one outer product per output position
    assert kind_words(one) == kind_words(two) == "a correlation over positions"
    assert reason(one).startswith("Σ_l ∂f/∂z_v ⊗ x^{l+a}: 4 outer products")
    assert reason(two).startswith("Σ_lm ∂f/∂z_w ⊗ x2^{l+a,m+b}: 16 outer products")
    assert kind_words(r[("U",)]) == kind_words(r[("U2",)]) == "one outer product"


LSTM_STEP = """zi{t}^j = sigmoid(Wi^j_k x{t}^k + Ui^j_m h{s}^m)
zf{t}^j = sigmoid(Wf^j_k x{t}^k + Uf^j_m h{s}^m)
zo{t}^j = sigmoid(Wo^j_k x{t}^k + Uo^j_m h{s}^m)
g{t}^j = tanh(Wg^j_k x{t}^k + Ug^j_m h{s}^m)
c{t}^j = zf{t}^j c{s}^j + zi{t}^j g{t}^j
h{t}^j = zo{t}^j tanh(c{t}^j)
"""


def lstm(steps: int = 3) -> str:
    lines = ["dims n = 2, h = 2, c = 2"] + [f"input x{t}^k : n" for t in range(1, steps + 1)]
    lines += ["input h0^j : h", "input c0^j : h", "label y^l : c"]
    lines += [f"weight {g}^j_k : h, n" for g in ("Wi", "Wf", "Wo", "Wg")]
    lines += [f"weight {g}^j_m : h, h" for g in ("Ui", "Uf", "Uo", "Ug")] + ["weight V^l_j : c, h"]
    lines += [LSTM_STEP.format(t=t, s=t - 1) for t in range(1, steps + 1)]
    lines += [f"p^l = V^l_j h{steps}^j", "f = softmax_cross_entropy(p, y)"]
    return "\n".join(lines) + "\n"


def test_lstm_block_merges_and_shows_no_false_saving():
    """An LSTM over three steps: each Wi,Wi term ends in x_a^k ⊗ x_b^t; grouped by the step of x^k the
    block is three outer products (not 94), and 3 × (2 + 8) numbers are no saving on a dense 16."""
    d = derive(load("lstm.ein", lstm()), 2)
    r = {tuple(map(str, x.wrt)): x for x in summarize(d)}[("Wi", "Wi")]
    assert len(factored(r.block.expr, r.block.indices)) > 60 and r.terms == 3
    assert (r.factored, r.dense) == (30, 16) and not r.saves
    assert reason(r).endswith("no saving")
