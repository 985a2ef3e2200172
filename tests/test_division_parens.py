"""Elementwise division by a tensor (``z^j / s^j``) and a parenthesised product that means what
it says (``U^l_k (r^k g^k)``), through derive, structure, LaTeX, codegen and ``check`` (gradients,
Hessian blocks with smooth activations, HVP, GGN: every row against central differences)."""
from __future__ import annotations

import numpy as np
import pytest

import einderiv
from einderiv.errors import IndexError_
from einderiv.frontend.check import load as check_load
from einderiv.runtime import load

DIVISION = """dims n = 3, h = 4, c = 2
input x^i : n
label y^l : c
weight W^j_i : h, n
weight V^j_i : h, n
weight U^l_j : c, h
z^j = tanh(W^j_i x^i)
s^j = 1 + softplus(V^j_i x^i)
r^j = z^j / s^j
p^l = U^l_j r^j + U^l_j z^j / (s^j s^j)
f = softmax_cross_entropy(p, y) + z^j / s^j
"""

PARENS = """dims n = 3, h = 4, c = 2
input x^i : n
label y^l : c
weight W^j_i : h, n
weight V^j_i : h, n
weight U^l_k : c, h
r^k = sigmoid(W^k_i x^i)
g^k = tanh(V^k_i x^i)
p^l = U^l_k (r^k g^k)
f = softmax_cross_entropy(p, y)
"""


def derived(text: str, tmp_path, name: str = "t.ein", order: int = 2):
    path = tmp_path / name
    path.write_text(text)
    return einderiv.derive(einderiv.load(str(path)), order)


def values(text: str, tmp_path, name: str):
    """The objective and gradient of a network's generated module at one random point."""
    mod = load(einderiv.codegen(derived(text, tmp_path, name, 1)))
    rng = np.random.default_rng(3)
    params = {k: rng.normal(0, 0.5, s) for k, s in mod["PARAMS"].items()}
    data = {"x": rng.normal(size=(4, 3)), "y": rng.uniform(size=(4, 2))}
    return mod["objective"](params, data), mod["gradient"](params, data), params, data


def test_division_by_a_tensor_checks_to_second_order(tmp_path):
    d = derived(DIVISION, tmp_path)
    report = einderiv.check(d)
    assert report.ok and any(r.name == "hessian V,V" for r in report.rows), report.format()
    rows = {line.split()[0]: line for line in einderiv.structure(d).splitlines()[2:]}
    assert "one outer product" in rows["W"] and set(rows) >= {"W", "V", "U", "W,V", "V,V"}
    assert r"r^{j} = z^{j} \operatorname{reciprocal}(s^{j})" in einderiv.latex(d)


def test_division_by_a_tensor_is_elementwise_on_the_left_and_summed_otherwise(tmp_path):
    f, _, params, data = values(DIVISION, tmp_path, "d.ein")
    x, y = data["x"], data["y"]
    z = np.tanh(x @ params["W"].T)
    s = 1 + np.logaddexp(0, x @ params["V"].T)
    p = (z / s) @ params["U"].T + (z * np.sum(s * s, axis=1, keepdims=True) ** -1) @ params["U"].T
    want = np.log(np.exp(p).sum(axis=1)) - (y * p).sum(axis=1) + (z / s).sum(axis=1)
    assert np.abs(f - want).max() < 1e-12


def test_a_parenthesised_elementwise_product_is_contracted_outside(tmp_path):
    assert einderiv.check(derived(PARENS, tmp_path)).ok
    f, g, _, _ = values(PARENS, tmp_path, "p.ein")
    spelled = PARENS.replace("p^l = U^l_k (r^k g^k)", "rg^k = r^k g^k\np^l = U^l_k rg^k")
    f2, g2, _, _ = values(spelled, tmp_path, "q.ein")
    assert np.abs(f - f2).max() < 1e-14
    assert all(np.abs(g[k] - g2[k]).max() < 1e-14 for k in g)


def test_parentheses_change_nothing_else():
    head = "dims n = 3\ninput x^i : n\ninput A^i_j : n, n\n"
    flat = check_load("t.ein", head + "f = x^i A^i_j x^j\n").definition("f").expr
    paren = check_load("t.ein", head + "f = x^i (A^i_j x^j)\n").definition("f").expr
    assert flat == paren
    with pytest.raises(IndexError_, match="appears 3 times"):
        check_load("t.ein", head + "f = x^i A^i_j (x^i x^i)\n")
