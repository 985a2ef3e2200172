"""Building blocks of today's networks, each derived and checked by finite differences.

Gating (elementwise products of two expressions), residual connections, weight
tying and transposes, reductions (sum_i, mean_i), softmax over a named index
inside the network, layer normalisation, user functions of several arguments,
and third derivatives.  The full examples live in derivations/; these are the
smallest networks that exercise each construct.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy

import einderiv
from einderiv.frontend.check import load
from einderiv.errors import FunctionError
from einderiv.calculus.functions import FunctionTable

HEAD = """dims n = 3, h = 2, c = 2
input  x^i    : n
label  y^l    : c
"""

NETWORKS = {
    "gating": """
weight A^j_i : h, n
weight B^j_i : h, n
weight U^l_j : c, h
g^j = sigmoid(A^j_i x^i) * tanh(B^j_i x^i)
p^l = U^l_j g^j
f = squared_error(p, y)
""",
    "residual": """
weight W1^j_i : h, n
weight W2^j_k : h, h
weight U^l_j : c, h
v1^j = tanh(W1^j_i x^i)
v2^j = v1^j + tanh(W2^j_k v1^k)
p^l = U^l_j v2^j + U^l_j v1^j
f = softmax_cross_entropy(p, y)
""",
    "tied": """
weight W^j_i : h, n
h1^j = tanh(W^j_i x^i)
r^i = W^j_i h1^j
f = squared_error(r, x)
""",
    "reductions": """
weight W^j_i : h, n
v^j = tanh(W^j_i x^i)
m = mean_j(v^j)
s = sum_j(v^j v^j) / h
f = m m + s + sum_i(x^i) m
""",
    "attention": """
dims t = 3, d = 2
input X^s_i : t, n
weight WQ^d_i : d, n
weight WK^d_i : d, n
weight U^l_d : c, d
Q^s_d = WQ^d_i X^s_i
K^s_d = WK^d_i X^s_i
sc^{qk} = Q^q_d K^k_d / sqrt(d)
a^{qk} = softmax_k(sc^{qk})
o^q_d = a^{qk} K^k_d
p^l = U^l_d mean_q(o^q_d)
f = softmax_cross_entropy(p, y)
""",
    "layernorm": """
function lnorm(z, m, q) = (z - m) / sqrt(q + 1/10)
weight W^j_i : h, n
weight g^j : h
weight U^l_j : c, h
z^j = W^j_i x^i
m = mean_j(z^j)
q = mean_j(z^j z^j) - m m
u^j = g^j lnorm(z^j, m, q)
p^l = U^l_j u^j
f = squared_error(p, y)
""",
}


def derive(body: str, order: int = 2):
    return einderiv.derive(load("t.ein", HEAD + body), order)


@pytest.mark.parametrize("name", NETWORKS)
def test_derives_and_checks_numerically(name):
    report = einderiv.check(derive(NETWORKS[name]), seed=2, form="expanded")
    assert report.rows and report.ok, report.format()


@pytest.mark.parametrize("name", ["gating", "tied"])
def test_third_derivatives_check_numerically(name):
    d = derive(NETWORKS[name], order=3)
    assert any(len(w) == 3 for w in d.blocks)
    report = einderiv.check(d, seed=4)
    assert any("third_derivative" in str(r) for r in report.rows)
    assert report.ok, report.format()


def test_third_derivative_kernel_is_symmetric(draw):
    ns: dict = {}
    exec(compile(einderiv.codegen(derive(NETWORKS["gating"], order=3)), "gating", "exec"), ns)
    params, data = draw(ns, 0, batch=2, data="uniform")
    abc = ns["third_derivative"](params, data, ("A", "B", "U"))
    cba = ns["third_derivative"](params, data, ("U", "B", "A"))
    assert abc.shape == (2, 3, 2, 3, 2, 2)
    np.testing.assert_allclose(abc, np.transpose(cba, (4, 5, 2, 3, 0, 1)), atol=1e-12)


def test_tied_weight_gradient_is_the_sum_of_both_uses():
    grad = derive(NETWORKS["tied"], order=1).block("W").expr
    # the encoder use (through h1) and the decoder use (transposed) each give a term
    assert len(grad.terms) == 2


def test_no_closed_form_derivative_is_an_error_not_a_wrong_answer():
    x = sympy.Symbol("z0", real=True)
    table = FunctionTable((("g", 1, sympy.floor(x)),))
    with pytest.raises(FunctionError, match="function 'g' has no closed-form derivative"):
        table.derivative("g", (1,))
