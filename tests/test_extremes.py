"""The reductions ``max_k``, ``min_k`` and ``logsumexp_k``: derived, generated and checked.

``max_k(x^k)`` binds k; its derivative is ``argmax_k(x^k) ∂x^k``, where ``argmax_k`` is 1 at the
maximiser, and at a tie of m entries 1/m at each (the rule of ``torch.amax`` and ``jnp.max``);
its own derivative is zero.  ``logsumexp_k`` is the log-sum-exp node of softmax cross-entropy,
written by the user; generated code shifts it by the maximum.  Every derivative here is
compared with central differences (``einderiv.check``, away from ties) and with the independent
evaluator of tests/reference.py; the tie rule is checked against the one-sided gradients.
"""
from __future__ import annotations

import numpy as np
import pytest

import einderiv
from einderiv import runtime
from einderiv.errors import FunctionError, IndexError_, NameError_
from einderiv.frontend.check import load
from einderiv.ir import ArgMax, LogSumExp, Max, walk
from einderiv.numcheck import load as load_module
from reference import Reference, error

POOLING = """# max, min and log-sum-exp pooling over positions after a tanh layer
dims n = 3, h = 4, t = 3, c = 2
input  X^q_i : t, n
label  y^l   : c
weight W^j_i : h, n
weight U^l_j : c, h
weight V^l_j : c, h
z^{q,j} = tanh(W^j_i X^q_i)
m^j = max_q(z^{q,j})
s^j = min_q(z^{q,j})
r = logsumexp_j(m^j)
p^l = U^l_j m^j + V^l_j s^j + r
f = softmax_cross_entropy(p, y)
"""


def derive(text: str, order: int = 2):
    return einderiv.derive(load("t.ein", text), order)


def test_the_reductions_parse_to_their_nodes():
    net = load("t.ein", POOLING)
    m, s, r = (net.definition(n).expr for n in ("m", "s", "r"))
    assert isinstance(m, Max) and m.kind == "max" and m.over.name == "q" and [i.name for i in m.free] == ["j"]
    assert isinstance(s, Max) and s.kind == "min"
    assert isinstance(r, LogSumExp) and r.free == ()


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_pooling_checks_at_order_2(backend):
    """Gradients, Hessian blocks (through tanh, a smooth activation: tanh″ terms), HVPs and the
    GGN against central differences; torch and JAX also against the NumPy module's values."""
    if backend != "numpy":
        pytest.importorskip(backend)
    report = einderiv.check(derive(POOLING), seed=3, backend=backend)
    assert not report.notes, report.notes
    assert report.ok, report.format()
    assert sum(r.name.startswith("hessian ") for r in report.rows) >= 9


def test_pooling_checks_at_order_3():
    report = einderiv.check(derive(POOLING, 3), seed=5)
    assert any(r.name.startswith("third_derivative") for r in report.rows)
    assert report.ok, report.format()


def test_the_derivative_is_the_maximisers_weights_and_its_own_is_zero():
    d = derive(POOLING)
    text = einderiv.derivation_text(d)
    assert "argmax_q(z^{qj})" in text and "argmin_q(z^{qj})" in text
    # no derivative of an ArgMax survives: it is piecewise constant
    for block in d.blocks.values():
        for e in walk(block.expr):
            assert not (isinstance(e, ArgMax) and isinstance(e.arg, ArgMax))


def test_generated_gradient_matches_the_independent_reference():
    ref = Reference(lambda: load("t.ein", POOLING))
    mod = load_module(einderiv.codegen(derive(POOLING, 1)))
    params, data = ref.draw(np.random.default_rng(0), 3)
    want = ref.gradient(params, data)
    got = mod["per_sample_gradient"](params, data)
    for name in params:
        assert error(got[name], want[name]) < 1e-6, name
    np.testing.assert_allclose(mod["objective"](params, data), ref.objective(params, data), rtol=1e-12)


TIE = """dims n = 2, t = 2
input X^q_i : t, n
weight w^i : n
z^q = w^i X^q_i
f = max_q(z^q)
"""


def module(text: str, order: int, backend: str = "numpy") -> dict:
    """The generated module of ``text`` in ``backend``, taking and returning NumPy arrays."""
    if backend != "numpy":
        pytest.importorskip(backend)
    source = einderiv.codegen(derive(text, order), backend=backend)
    return runtime.numpy_view(runtime.load(source), backend)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_at_a_tie_the_gradient_splits_equally(backend):
    """z = w·X^q with w = (1, 1), X^1 = (1, 2), X^2 = (2, 1): z^1 = z^2 = 3, a tie.  Moving w
    along e1 makes row 2 win (gradient X^2), against it row 1 (X^1); at the tie the gradient is
    the mean of the two one-sided gradients, (1.5, 1.5)."""
    mod = module(TIE, 1, backend)
    data = {"X": np.array([[[1.0, 2.0], [2.0, 1.0]]])}
    grad = lambda w: mod["gradient"]({"w": np.array(w)}, data)["w"]  # noqa: E731
    np.testing.assert_allclose(grad([1.0 + 1e-3, 1.0]), [2.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(grad([1.0 - 1e-3, 1.0]), [1.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(grad([1.0, 1.0]), [1.5, 1.5], atol=1e-12)


def test_a_three_way_tie_gives_a_third_to_each():
    text = "dims t = 3\nweight w^q : t\ninput x^q : t\nf = max_q(w^q + x^q)\n"
    mod = module(text, 1)
    g = mod["gradient"]({"w": np.zeros(3)}, {"x": np.ones((1, 3))})["w"]
    np.testing.assert_allclose(g, np.full(3, 1 / 3), atol=1e-15)
    g = mod["gradient"]({"w": np.zeros(3)}, {"x": np.array([[1.0, 2.0, 2.0]])})["w"]
    np.testing.assert_allclose(g, [0.0, 0.5, 0.5], atol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_logsumexp_is_stable_in_generated_code(backend):
    """Logits near 1000 overflow exp in float64; the generated objective and gradient stay
    finite and equal to the shifted formula."""
    text = "dims c = 3\nweight w^l : c\ninput x^l : c\nf = logsumexp_l(w^l + x^l)\n"
    mod = module(text, 2, backend)
    x = np.array([[1000.0, 999.0, 990.0]])
    params = {"w": np.array([0.5, 0.0, -0.5])}
    z = params["w"] + x[0]
    want = z.max() + np.log(np.exp(z - z.max()).sum())
    assert np.isfinite(mod["objective"](params, {"x": x}))
    assert abs(mod["objective"](params, {"x": x}) - want) < 1e-9
    soft = np.exp(z - want)
    np.testing.assert_allclose(mod["gradient"](params, {"x": x})["w"], soft, rtol=1e-12)
    np.testing.assert_allclose(mod["hessian"](params, {"x": x})[("w", "w")],
                               np.diag(soft) - np.outer(soft, soft), atol=1e-12)


def test_max_prints_in_latex_and_output_is_deterministic():
    d = derive(POOLING)
    tex = einderiv.latex(d)
    assert r"\max_{q} \left(z^{qj}\right)" in tex and r"\min_{q}" in tex
    assert r"\operatorname{argmax}_{q}" in tex
    assert tex == einderiv.latex(derive(POOLING))
    assert einderiv.codegen(d) == einderiv.codegen(derive(POOLING))


def test_sympy_block_writes_max_out_and_evaluates_to_the_block():
    d = derive(POOLING, 1)
    mod = load_module(einderiv.codegen(d))
    rng = np.random.default_rng(1)
    params = {n: rng.normal(0, 0.5, s) for n, s in mod["PARAMS"].items()}
    data = {"X": rng.normal(0, 1, (1, 3, 3)), "y": rng.uniform(0, 1, (1, 2))}
    block = d.sympy_block("W")
    got = block.evaluate({**params, "X": data["X"][0], "y": data["y"][0]})
    assert error(got, mod["per_sample_gradient"](params, data)["W"][0]) < 1e-10


HEAD = """dims n = 3, c = 2
input x^i : n
label y^l : c
weight W^l_i : c, n
"""

#: (snippet after HEAD, exception class, the message with its location)
BAD = [
    ("f = max_k(x^i W^l_i y^l)", IndexError_,
     "t.ein:5:11: max_k reduces over index 'k', but 'k' is not free in its argument (it has no free indices); "
     "expected an expression that carries k, e.g. max_k(x^k)"),
    ("p^i = min_i(x^i)\nf = p^i p^i", IndexError_,
     "t.ein:5:11: min_i reduces over 'i', which is on the left side of p; an index on the left side stays free"),
    ("f = logsumexp_i(x^i, x^i)", FunctionError, "t.ein:5:5: logsumexp_i takes 1 argument, got 2"),
    ("function max_q(z) = z\nf = W^l_i x^i y^l", NameError_,
     "t.ein:5:1: 'max_q' is reserved for the reduction max over index 'q'; choose another function name"),
    ("f = max_i_j(x^i)", IndexError_,
     "t.ein:5:9: 'i_j' is not an index: max_ must be followed by one index name (letters and digits), "
     "as in max_k(...)"),
]


@pytest.mark.parametrize("snippet,cls,message", BAD)
def test_misuse_is_a_located_error(snippet, cls, message):
    with pytest.raises(cls) as info:
        load("t.ein", HEAD + snippet + "\n")
    assert str(info.value).splitlines()[0] == message


def test_a_family_label_is_not_maximised_over():
    text = ("dims n = 2, c = 2\ninput x(t)^i : n for t = 1..3\nlabel y^l : c\nweight W^l_i : c, n\n"
            "p(t)^l = W^l_i x(t)^i for t = 1..3\nf = max_t(p(t)^l y^l)\n")
    with pytest.raises(IndexError_) as info:
        load("t.ein", text)
    assert str(info.value).splitlines()[0] == (
        "t.ein:6:9: max_t reduces over 't', a family label; only sum_t and mean_t run over labels: write a "
        "tensor with an index t instead of a family")
