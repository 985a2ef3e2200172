"""Third derivatives at the size of real blocks: symmetry, shared code, letters, module size.

* Mixed partial derivatives commute: one block per set of parameters is derived, the other
  orderings are its transposes (the same expression, axes regrouped) — in the derivation and
  in the generated module, where every ordering is still compared with finite differences.
* The generated module computes each intermediate once per call, however many blocks read it,
  and writes each formula once however many intermediates share it.
* The three networks of tests/networks/ (attention block, LSTM over 3 steps, GLU/highway/RMSNorm)
  generate at order 3, pass ``check`` (third derivatives against central differences of the
  Hessian, smooth activations throughout) and stay under 5 MB (their times: benchmarks/order3.py).
"""
from __future__ import annotations

import itertools
import math
import pathlib

import numpy as np
import pytest

import einderiv
from einderiv.calculus.derive import derive as derive_network
from einderiv.numcheck import central, error, load

NETWORKS = pathlib.Path(__file__).resolve().parent / "networks"

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


def test_every_ordering_against_finite_differences(draw):
    """All 64 orderings of a 4-parameter network (not only those check() looks at) equal the
    central differences of the Hessian block of their first two parameters along the third."""
    ns = load(einderiv.codegen(derive(GATED)))
    params, data = draw(ns, 1, batch=3)
    names = list(ns["PARAMS"])
    ref = {}
    for c in names:
        for idx, d in central(lambda p: ns["hessian"](p, data), params, c):
            for a, b in itertools.product(names, names):
                ref.setdefault((a, b, c), np.zeros(ns["PARAMS"][a] + ns["PARAMS"][b] + ns["PARAMS"][c]))
                ref[(a, b, c)][(Ellipsis,) + idx] = d[(a, b)]
    every = ns["third_derivatives"](params, data, list(ref))
    assert len(every) == 64 and len(ns["_THIRD"]) == math.comb(6, 3)
    for key, want in ref.items():
        assert error(every[key], want) < 1e-6, key
        assert error(ns["third_derivative"](params, data, key), want) < 1e-6, key
    with pytest.raises(KeyError, match="a third-derivative block takes three of"):
        ns["third_derivative"](params, data, ("A", "Q", "U"))


def test_each_intermediate_is_computed_once_per_call(draw):
    ns = load(einderiv.codegen(derive(GATED)))
    params, data = draw(ns, 2)
    calls = []
    for key, row in list(ns["_DERIVATIVES"].items()):
        def spy(*args, key=key, fn=row[0]):
            calls.append(key)
            return fn(*args)
        ns["_DERIVATIVES"][key] = (spy,) + row[1:]
    ns["third_derivatives"](params, data)
    assert sorted(calls) == sorted(ns["_DERIVATIVES"])  # every one, each once
    calls.clear()
    ns["third_derivative"](params, data, ("U", "U", "U"))
    assert 0 < len(calls) == len(set(calls)) < len(ns["_DERIVATIVES"])  # only what this block reads


def test_formulas_equal_up_to_their_tensors_share_one_function():
    src = einderiv.codegen(derive(GATED))
    ns = load(src)
    rows = list(ns["_DERIVATIVES"].values()) + list(ns["_THIRD"].values())
    functions = {row[0].__name__ for row in rows}
    assert len(functions) < len(rows)
    for name in functions:
        users = sum(row[0].__name__ == name for row in rows)
        assert name.startswith("_shared_") == (users > 1), name
        assert src.count(f"\ndef {name}(") == 1


@pytest.mark.slow  # the attention, LSTM and GLU networks at order 3: ~30 s of CPU; .ci/run runs it
@pytest.mark.parametrize("path", sorted(NETWORKS.glob("*.ein")), ids=lambda p: p.stem)
def test_real_blocks_pass_check_at_order_3(path):
    d = einderiv.derive(einderiv.load(str(path)), order=3)
    report = einderiv.check(d)
    third = [r for r in report.rows if r.name.startswith("third_derivative")]
    n = len(d.network.params)
    assert len(third) > math.comb(n + 2, 3) and report.ok, report.format()
    assert len(report.source.encode()) < 5_000_000


def test_documents_write_each_set_of_parameters_once():
    """The documents write each derived block once, naming the other orderings it stands for
    (each of the 44 once); the structure table has one row per derived block."""
    d = einderiv.derive(einderiv.load("t.ein", GATED), 3)
    text, tex, table = einderiv.derivation_text(d), einderiv.latex(d), einderiv.structure(d)
    blocks = text[text.index("Order-3 derivatives"):text.index("Outer-product forms")].splitlines()
    assert sum(line.startswith("  ∂³f/∂") for line in blocks) == 20
    same = ": the same block, its axes permuted)"
    named = [w for line in blocks if line.endswith(same) for w in line.strip()[1:-len(same)].split(", ")]
    params = ["A", "a", "B", "U"]
    transposes = {"∂³f/∂" + "∂".join(w) for w in itertools.product(params, repeat=3)
                  if list(w) != sorted(w, key=params.index)}
    assert len(named) == 44 and set(named) == transposes
    third = tex[tex.index(r"\section*{Derivatives of order 3}"):tex.index(r"\section*{Outer-product forms}")]
    assert third.count(r"\begin{equation}") == 20
    # one sentence before the blocks, then one per block with other orderings (all but A,A,A, a,a,a, …)
    assert third.count("axes permuted") == 1 + 20 - 4
    rows = [line.split()[0] for line in table.splitlines() if line.count(",") == 2]
    assert rows == [",".join(w) for w in itertools.combinations_with_replacement(params, 3)]
