"""Recurrent families (x(t), h(t-1), sum_t) and index arithmetic (x^{t+a}): parse, derive,
print once per family, report structure, and check numerically."""
from __future__ import annotations

import pytest

from einderiv.frontend.check import load
from einderiv.calculus.derive import derive
from einderiv.emit.text import kind_words, reason, render
from einderiv.ir import Name, Window
from einderiv.numcheck import check
from einderiv.analysis.structure import summarize

RNN = """dims T = 3, n = 2, h = 3, c = 2
input  x(t)^k : n        for t = 1..T
label  y^l    : c
weight W^j_i  : h, h
weight V^j_k  : h, n
weight U^l_j  : c, h
h(0)^j = 0
h(t)^j = tanh(W^j_i h(t-1)^i + V^j_k x(t)^k)   for t = 1..T
p^l = U^l_j h(T)^j
f = squared_error(p, y)
"""

CNN = """dims N = 6, A = 3, c = 2
input  x^u : N
label  y^l : c
weight K_a : A
weight U^l_t : c, 4
v^t = relu(K_a x^{t+a})
p^l = U^l_t v^t
f = squared_error(p, y)
"""


def test_family_members_are_unrolled_with_labels():
    net = load("r.ein", RNN)
    assert [str(t.name) for t in net.tensors][:3] == ["x(1)", "x(2)", "x(3)"]
    assert [str(d.name) for d in net.definitions] == ["h(1)", "h(2)", "h(3)", "p", "f"]
    # h(0) = 0: the W h(0) term of step 1 is dropped
    assert "W" not in repr(net.definition(Name("h", (1,))).expr)


def test_recurrence_is_printed_once_with_its_base_case():
    text = render(derive(load("r.ein", RNN), 1))
    assert "h(t)^j = tanh(z_h(t)^j)   for t = 1..3" in text
    assert "∂f/∂h(t)_j = ∂f/∂z_h(t+1)_l W^l_j   for t = 1, 2" in text
    assert "∂f/∂h(3)_j = ∂f/∂p_l U^l_j" in text
    assert "∂f/∂V^j_k = Σ_{t=1..3} ∂f/∂z_h(t)_j ⊗ x(t)^k" in text


def test_shared_weight_structure_is_a_sum_over_steps():
    rows = {tuple(map(str, r.wrt)): r for r in summarize(derive(load("r.ein", RNN), 1))}
    assert kind_words(rows[("V",)]) == "sum of 3 outer products"
    assert rows[("V",)].steps == ((1, 2, 3),)
    assert "one per step t = 1..3" in reason(rows[("V",)])
    assert kind_words(rows[("U",)]) == "one outer product"


def test_window_from_index_arithmetic():
    net = load("c.ein", CNN)
    v = net.definition("v")
    assert int(v.indices[0].dim.subs({s: 6 for s in v.indices[0].dim.free_symbols if str(s) == "N"})
               .subs({s: 3 for s in v.indices[0].dim.free_symbols if str(s) == "A"})) == 4
    assert "Window" in repr(v.expr) and isinstance(Window, type)


def test_conv_kernel_has_no_outer_product_and_dense_after_keeps_it():
    rows = {tuple(map(str, r.wrt)): r for r in summarize(derive(load("c.ein", CNN), 1))}
    assert kind_words(rows[("K",)]) == "a vector"
    rows2 = {tuple(map(str, r.wrt)): r for r in summarize(derive(load("d.ein", CNN.replace("weight K_a : A", "weight K^o_a : 2, A")
                                                     .replace("K_a x", "K^o_a x").replace("v^t", "v^{o,t}")
                                                     .replace("U^l_t : c, 4", "U^l_{o,t} : c, 2, 4")
                                                     .replace("U^l_t v", "U^l_{o,t} v")), 1))}
    k = rows2[("K",)]
    assert kind_words(k) == "a correlation over positions" and k.terms == 4  # one per output position
    assert reason(k) == "Σ_l ∂f/∂z_v ⊗ x^{l+a}: 4 outer products; no saving"
    assert kind_words(rows2[("U",)]) == "one outer product"


def test_text_prints_index_arithmetic():
    text = render(derive(load("c.ein", CNN), 1))
    assert "weight K_a : A" in text and "z_v^t = K_a x^{t+a}" in text  # placed as declared


@pytest.mark.parametrize("src", [RNN, CNN, CNN.replace("x^{t+a}", "x^{2t+a}").replace("c, 4", "c, 2")])
def test_sequences_and_convolutions_check_numerically(src):
    report = check(derive(load("s.ein", src), 2), seed=1)
    assert report.rows and report.ok, report.format()
