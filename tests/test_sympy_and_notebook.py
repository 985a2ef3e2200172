"""A derivation continued elsewhere: each block as SymPy, and the derivation in a notebook.

``Derivation.sympy_block`` writes a block with ``IndexedBase``/``Idx``/``Sum``;
evaluated with ``lambdify`` on small random arrays (one sample) it must give
the generated kernel's block.  ``_repr_markdown_`` / ``_repr_latex_`` are what
Jupyter shows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy

import einderiv

ROOT = Path(__file__).resolve().parents[1]
CASES = [("paper_mlp_order3", ("W1",)), ("paper_mlp_order3", ("U", "W2")), ("paper_mlp_order3", ("W1", "W2")),
         ("tied_autoencoder", ("W", "W")), ("tied_autoencoder", ("W", "b")), ("swish_bce", ("U", "U")),
         ("cnn1d", ("G", "U"))]


def one_sample(ns, seed):
    rng = np.random.default_rng(seed)
    params = {n: rng.normal(0, 0.5, s) for n, s in ns["PARAMS"].items()}
    data = {n: rng.uniform(0.1, 0.9, (1,) + s) for n, s in ns["INPUTS"].items()}
    return params, data


@pytest.mark.parametrize("name,wrt", CASES, ids=[f"{n}-{','.join(w)}" for n, w in CASES])
def test_sympy_block_evaluates_to_the_kernel_block(name, wrt):
    d = einderiv.derive(einderiv.load(str(ROOT / "derivations" / f"{name}.ein")), 2)
    ns: dict = {}
    exec(einderiv.codegen(d), ns)
    params, data = one_sample(ns, 7)
    b = d.sympy_block(*wrt)
    assert b.expr.has(sympy.Indexed) and (b.expr.has(sympy.Sum) or len(wrt) == 1)
    assert {str(ix) for ix in b.axes} and all(isinstance(ix, sympy.Idx) for ix in b.axes)
    values = {**params, **{k: v[0] for k, v in data.items()}}
    got = b.evaluate(values)
    want = ns["gradient"](params, data)[wrt[0]] if len(wrt) == 1 else ns["hessian"](params, data)[wrt]
    assert got.shape == np.shape(want)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12)


def test_sympy_block_names_and_keeps_intermediates_when_asked():
    d = einderiv.derive(einderiv.load(str(ROOT / "derivations" / "paper_mlp.ein")), 2)
    b = d.sympy_block("W1", "W2")
    assert [str(ix) for ix in b.axes] == ["j", "i", "j2", "i2"]
    assert [ix.upper for ix in b.axes] == [4, 3, 4, 4]  # n1 = 5, n0 = 4, n2 = 5, n1 = 5
    assert sorted(b.tensors) == ["U", "W1", "W2", "x", "y"]
    named = d.sympy_block("W1", inline=False)
    assert {str(x.base) for x in named.expr.atoms(sympy.Indexed)} == {"adj_z_v1", "x"}
    defs = {str(k): v for k, v in d.sympy_definitions().items()}
    assert "adj_z_v1" in defs and "v1" in defs
    with pytest.raises(einderiv.EinderivError, match="no block W9"):
        d.sympy_block("W9")


def test_derivation_shows_itself_in_a_notebook():
    d = einderiv.derive(einderiv.load(str(ROOT / "derivations" / "paper_mlp.ein")), 2)
    md = d._repr_markdown_()
    assert md.startswith("## The feedforward network of Table 1")
    assert "### Second derivatives" in md and "| Block |" in md and "\\label" not in md and "\\keep" not in md
    assert r"\frac{\partial f}{\partial W^{(1),j}_{i}} &= \frac{\partial f}{\partial z^{(1)}_{j}} \otimes x^{i}" in md
    tex = d._repr_latex_()
    assert tex.startswith("$$\n\\begin{aligned}") and tex.endswith("\\end{aligned}\n$$")
    assert tex.count(r"\\[6pt]") == 3 + 9 - 1 and "section" not in tex  # 3 gradients, 9 Hessian blocks


def test_general_form_shows_itself_in_a_notebook():
    g = einderiv.derive(einderiv.load(str(ROOT / "derivations" / "deep_template.ein")))
    assert "\\begin{cases}" in g._repr_latex_()
    assert "### Intermediates" in g._repr_markdown_() and r"\beta^{(k),j}_{i}" in g._repr_markdown_()
