"""Sums whose terms lack some free indices broadcast them (a ones vector 𝟙)."""
from __future__ import annotations

import pytest

import einderiv
from einderiv.analysis.structure import Form
from einderiv.errors import IndexError_
from einderiv.ir import Ones, Prod

HEAD = "dims n = 3, h = 2, c = 2\ninput x^i : n\nlabel y^l : c\n"

GRU_MIX = HEAD + """input h0^j : h
weight Wz^j_i : h, n
weight Wh^j_i : h, n
weight V^l_j : c, h
zg^j = sigmoid(Wz^j_i x^i)
hc^j = tanh(Wh^j_i x^i)
h1^j = (1 - zg^j) hc^j + zg^j h0^j
p^l = V^l_j h1^j
f = softmax_cross_entropy(p, y)
"""

CENTRED = HEAD + """weight W^j_i : h, n
weight m
weight V^l_j : c, h
v^j = tanh(W^j_i x^i) - m
p^l = V^l_j v^j
f = squared_error(p, y)
"""

CONV_BIAS = """dims N = 5, A = 2, O = 2, c = 2
input x^u : N
label y^l : c
weight K^o_a : O, A
weight b^o : O
weight U^l_{o,t} : c, O, 4
v^{o,t} = tanh(K^o_a x^{t+a} + b^o)
p^l = U^l_{o,t} v^{o,t}
f = softmax_cross_entropy(p, y)
"""


def ones_in(e) -> list:
    out = []

    def walk(x):
        if isinstance(x, Ones):
            out.append(x)
        for c in x.children():
            walk(c)
    walk(e)
    return out


def test_scalar_term_is_broadcast_with_a_ones_vector():
    net = einderiv.load("gru.ein", GRU_MIX)
    mix = net.definition("h1").expr
    (one,) = ones_in(mix)
    assert one.index.name == "j" and one.index.dim == net.definition("h1").indices[0].dim
    # printed as the number it stands for: another term of the sum carries j
    assert "(1 − zg^j) hc^j" in einderiv.derivation_text(einderiv.derive(net, 1))


def test_bias_is_broadcast_across_positions():
    net = einderiv.load("conv.ein", CONV_BIAS)
    (one,) = ones_in(net.definition("v").expr)
    assert one.index.name == "t"
    rows = {tuple(map(str, r.wrt)): r for r in einderiv.api.summarize(einderiv.derive(net, 1))}
    assert rows[("b",)].kind is Form.VECTOR


@pytest.mark.parametrize("text", [GRU_MIX, CENTRED, CONV_BIAS], ids=["gru-mix", "centred", "conv-bias"])
def test_broadcast_networks_check_numerically(text):
    report = einderiv.check(einderiv.derive(einderiv.load("b.ein", text), 2), seed=5, form="expanded")
    assert report.rows and report.ok, report.format()


def test_ones_vanish_where_another_factor_carries_the_index():
    """∂f/∂m sums the adjoint over j: the ones vector is contracted away, not kept."""
    d = einderiv.derive(einderiv.load("c.ein", CENTRED), 1)
    grad_m = d.block("m").expr
    assert not ones_in(grad_m)
    assert isinstance(grad_m, Prod) and grad_m.out == ()


def test_unnested_index_sets_are_still_an_error():
    with pytest.raises(IndexError_, match=r"^u\.ein:6:19: the terms of a sum have different free indices: "
                                          r"\{j\} and \{l\}"):
        einderiv.load("u.ein", HEAD + "weight W^j_i : h, n\nweight b^l : c\nv^j = W^j_i x^i + b^l\n"
                      "f = v^j v^j\n")
