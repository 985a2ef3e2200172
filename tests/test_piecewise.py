"""Piecewise functions: ``where(comparison, a, b)`` in a function body (the Huber loss).

The body becomes a SymPy ``Piecewise``; its derivatives are SymPy's, piecewise too, and each
derivative takes the branch whose comparison holds (at ``|z| = d`` the quadratic one of
``huber`` below).  Checked here: derivatives of derivations/huber_mlp.ein against central
differences of an independent evaluator, with residuals on both sides of the threshold; the
Hessian blocks (tanh: a smooth activation) against differences of the gradient; the printed
bodies; and every misuse as a located error.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
import sympy

import einderiv
from einderiv import runtime
from einderiv.errors import FunctionError, ParseError
from einderiv.frontend.builtins import ARG
from einderiv.frontend.check import load
from reference import Reference, error

ROOT = pathlib.Path(__file__).resolve().parents[1]
HUBER = ROOT / "derivations" / "huber_mlp.ein"


def module(path, order: int, backend: str = "numpy") -> dict:
    if backend != "numpy":
        pytest.importorskip(backend)
    source = einderiv.codegen(einderiv.derive(einderiv.load(str(path)), order), backend=backend)
    return runtime.numpy_view(runtime.load(source), backend)


def both_sides(mod, rng):
    """Parameters and a batch whose residuals p − y fall on both sides of the threshold 1
    (labels spread over [−3, 3]), none within 1e-3 of it."""
    for _ in range(50):
        params = {n: rng.normal(0.0, 0.5, s) for n, s in mod["PARAMS"].items()}
        data = {"x": rng.normal(0.0, 1.0, (4, 3)), "y": rng.uniform(-3.0, 3.0, (4, 2))}
        r = np.abs(mod["_forward"](params, data)["p"] - data["y"])
        if (r < 1).any() and (r > 1).any() and np.min(np.abs(r - 1)) > 1e-3:
            return params, data
    raise AssertionError("no draw straddles the threshold")


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_huber_gradient_matches_the_reference_on_both_branches(backend):
    mod = module(HUBER, 2, backend)
    ref = Reference(lambda: einderiv.load(str(HUBER)))
    params, data = both_sides(module(HUBER, 2), np.random.default_rng(0))
    want = ref.gradient(params, data)
    got = mod["per_sample_gradient"](params, data)
    for name in params:
        assert error(got[name], want[name]) < 1e-6, name
    np.testing.assert_allclose(mod["objective"](params, data), ref.objective(params, data), rtol=1e-12)


def test_huber_hessian_blocks_match_differences_of_the_gradient():
    mod = module(HUBER, 2)
    params, data = both_sides(mod, np.random.default_rng(1))
    hess = mod["hessian"](params, data)
    for a in params:
        for b in params:
            fd = np.zeros(params[a].shape + params[b].shape)
            for idx in np.ndindex(params[b].shape):
                h = 1e-5
                up = {**params, b: params[b].copy()}
                up[b][idx] += h
                down = {**params, b: params[b].copy()}
                down[b][idx] -= h
                fd[(Ellipsis,) + idx] = (mod["gradient"](up, data)[a] - mod["gradient"](down, data)[a]) / (2 * h)
            assert error(hess[(a, b)], fd) < 1e-6, (a, b)
    # beyond the threshold the loss is linear: a sample entirely there has no U,U curvature
    far = {"x": data["x"][:1], "y": np.full((1, 2), 50.0)}
    np.testing.assert_allclose(mod["hessian"](params, far)[("U", "U")], 0.0, atol=1e-15)


def test_huber_mlp_checks_at_order_2():
    report = einderiv.check(einderiv.derive(einderiv.load(str(HUBER)), 2), seed=0)
    assert not report.notes, report.notes
    assert report.ok, report.format()


def test_three_pieces_nest_and_check():
    """A nested where: three pieces, continuous with a continuous derivative (a smooth clip)."""
    text = """dims n = 3
input x^i : n
weight w^i : n
function clip(z) = where(z < -1, -2*z - 1, where(z > 1, 2*z - 1, z^2))
f = sum_i(clip(w^i + x^i)) + w^i w^i
"""
    d = einderiv.derive(load("t.ein", text), 2)
    text = einderiv.derivation_text(d)
    assert "clip′(z) = where(z < −1, −2, where(z > 1, 2, 2 z))" in text
    assert "clip″(z) = where(z < −1, 0, where(z > 1, 0, 2))" in text
    report = einderiv.check(d, seed=2)
    assert report.ok and not report.notes, report.format()
    mod = runtime.numpy_view(runtime.load(einderiv.codegen(d)), "numpy")
    x = np.array([[-3.0, 0.5, 2.0]])
    g = mod["gradient"]({"w": np.zeros(3)}, {"x": x})["w"]
    np.testing.assert_allclose(g, [-2.0, 1.0, 2.0])  # one argument in each piece


def test_the_derivative_takes_the_branch_whose_comparison_holds():
    d = einderiv.derive(einderiv.load(str(HUBER)), 2)
    z, t = ARG[0], ARG[1]
    second = d.table.derivative("huber", (2, 0))
    assert second.subs({z: 1, t: 1}) == 1  # |z| <= d holds at the threshold: the quadratic branch
    assert second.subs({z: 1.5, t: 1}) == 0
    text = einderiv.derivation_text(d)
    assert "∂₁huber(z₁, z₂) = where(z₂ ≥ |z₁|, z₁, z₂ sign(z₁))" in text
    assert "∂₁²huber(z₁, z₂) = where(z₂ ≥ |z₁|, 1, 0)" in text
    tex = einderiv.latex(d)
    assert r"\begin{cases}" in tex


def test_body_is_a_sympy_piecewise():
    net = einderiv.load(str(HUBER))
    (fn,) = net.functions
    assert isinstance(fn.body, sympy.Piecewise)


HEAD = "dims n = 3\ninput x^i : n\n"

#: (snippet after HEAD, exception class, the message with its location)
BAD = [
    ("function h(z) = where(z < 1, z)\nf = sum_i(h(x^i))", FunctionError,
     "t.ein:3:17: where takes 3 arguments (where(z < d, a, b)), got 2"),
    ("function h(z) = where(z, 1, 2)\nf = sum_i(h(x^i))", FunctionError,
     "t.ein:3:17: the first argument of where must be a comparison (<, <=, >, >=), as in where(z < 1, a, b); "
     "got z"),
    ("function h(z) = z < 1\nf = sum_i(h(x^i))", FunctionError,
     "t.ein:3:17: the body of function 'h' is a comparison, not a number; a comparison chooses between two "
     "values in where(z < d, a, b)"),
    ("function h(z) = where(z < 1, z < 2, 0)\nf = sum_i(h(x^i))", FunctionError,
     "t.ein:3:17: the branches of where must be numbers, not comparisons"),
    ("function h(z) = z = 1\nf = sum_i(h(x^i))", FunctionError,
     "t.ein:3:19: unexpected character '=' in the body of function 'h'; expected numbers, + - * / ^ **, "
     "comparisons < <= > >= inside where(...), parentheses, its parameters and functions"),
]


@pytest.mark.parametrize("snippet,cls,message", BAD)
def test_misuse_is_a_located_error(snippet, cls, message):
    with pytest.raises(cls) as info:
        load("t.ein", HEAD + snippet + "\n")
    assert str(info.value).splitlines()[0] == message


def test_a_comparison_in_a_network_expression_is_a_syntax_error():
    with pytest.raises(ParseError) as info:
        load("t.ein", HEAD + "f = sum_i(x^i) < 1\n")
    assert str(info.value).splitlines()[0].startswith("t.ein:3:16: syntax error: unexpected '<'")
