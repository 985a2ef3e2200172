"""Third derivatives: mixed partial derivatives commute, so one block per set of parameters is
derived and the other orderings are its transposes (the same expression, axes regrouped); the
documents write each derived block once."""
from __future__ import annotations

import itertools
import math

import pytest

import einderiv
from einderiv.calculus.derive import derive as derive_network

GATED = """dims n = 3, h = 2, c = 2
input  x^i    : n
label  y^l    : c
weight A^j_i  : h, n
bias   a^j    : h
weight B^j_i  : h, n
weight U^l_j  : c, h
g^j = sigmoid(A^j_i x^i + a^j) * tanh(B^j_i x^i)
p^l = U^l_j g^j
f = softmax_cross_entropy(p, y)
"""


def derive(text: str, order: int = 3, expanded: bool = False):
    return derive_network(einderiv.load("t.ein", text), order, expanded)


@pytest.mark.parametrize("expanded", [False, True])
def test_each_set_of_parameters_is_derived_once(expanded):
    d = derive(GATED, expanded=expanded)
    params = [t.name for t in d.network.params]
    third = d.blocks_of_order(3)
    derived = [w for w, b in third.items() if not b.transposed]
    assert len(third) == len(params) ** 3
    assert derived == list(itertools.combinations_with_replacement(params, 3))
    assert len(derived) == math.comb(len(params) + 2, 3)
    for w, b in third.items():
        if not b.transposed:
            continue
        src = third[b.source]
        assert sorted(w, key=params.index) == list(b.source) and b.expr is src.expr
        assert sorted(b.indices, key=id) == sorted(src.indices, key=id)  # the same axes, regrouped
        assert tuple(b.source[g] for g in b.groups) == w


def test_documents_write_each_set_of_parameters_once():
    d = einderiv.derive(einderiv.load("t.ein", GATED), 3)
    text, tex, table = einderiv.derivation_text(d), einderiv.latex(d), einderiv.structure(d)
    note = "The other 44 orderings of the parameters are transposes of these blocks"
    assert text.count("∂³f/∂") == 20 and note in text and note in tex
    assert tex.split(r"\section*{Structure}")[0].count(r"\partial^{3}") == 20
    rows = [line.split()[0] for line in table.splitlines() if line.count(",") == 2]
    assert rows == [",".join(w) for w in itertools.combinations_with_replacement(["A", "a", "B", "U"], 3)]
