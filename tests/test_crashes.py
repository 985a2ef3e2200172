"""Accepted input never crashes (issue 12): each case through the real pipeline — load, derive,
codegen in every backend, and ``check`` against central differences.

* erf/erfc in a function body (the GELU of the docs) run on arrays in NumPy, torch and JAX;
* a SymPy function no printer can write (``loggamma``, ``besselj``) is an error at its definition;
  every function that is accepted is printed and run on arrays, with its derivatives, in every
  backend, and compared with SymPy's own values;
* a network without data, objective arguments that read weights only, a constant gradient,
  an unused weight: every function returns arrays of the parameter's shape, ``check`` passes,
  and an unused weight is warned about;
* a tensor with indices, or a family, may share a dimension's name (one rule for both).
"""
from __future__ import annotations

import importlib
import importlib.util
import math

import numpy as np
import pytest
import sympy

import einderiv
from einderiv.cli import main
from einderiv.emit.jax import JaxScalarPrinter
from einderiv.emit.numpy import ScalarPrinter
from einderiv.emit.torch import TorchScalarPrinter
from einderiv.errors import FunctionError
from einderiv.frontend.builtins import ARG, CHECKED_ORDER, PRINTABLE
from einderiv.frontend.check import load as check_load
from einderiv.runtime import load, numpy_view

HAVE = {name: importlib.util.find_spec(name) is not None for name in ("torch", "jax")}
BACKENDS = ["numpy"] + [pytest.param(b, marks=pytest.mark.skipif(not HAVE[b], reason=f"{b} is not installed"))
                        for b in ("torch", "jax")]

GELU = """dims n0 = 3, n1 = 4, c = 2
input x^i : n0
label y^l : c
weight W^j_i : n1, n0
weight U^l_j : c, n1
function gelu(z) = z/2 * (1 + erf(z/sqrt(2)))
function tail(z) = erfc(z) + z
h^j = gelu(W^j_i x^i)
p^l = U^l_j tail(h^j)
f = softmax_cross_entropy(p, y)
"""

NO_DATA = """dims n = 3
weight x^i : n
weight A^i_j : n, n
f = tanh(x^i A^i_j x^j)
"""

#: objective arguments that read weights only: a penalty, a log of a norm, a Rayleigh-like ratio
WEIGHTS_ONLY = """dims n = 3, c = 2
input x^i : n
label y^l : c
weight X^i_j : n, n
weight U^l_i : c, n
weight w^i : n
h^i = tanh(X^i_j x^j)
p^l = U^l_i h^i
r = X^i_j X^i_j
q = w^i X^i_j w^j / (w^k w^k)
f = softmax_cross_entropy(p, y) + 0.01 log(1 + r) + sqrt(X^i_j X^i_j) + log(1 + w^i w^i) + w^i x^i + q
"""

#: v is never used; b's Hessian row is identically zero; s's gradient is the number 1
UNUSED = """dims n = 3
input x^i : n
weight w^i : n
weight b^i : n
weight v^i : n
weight s
f = tanh(w^i x^i) + b^i x^i + s
"""


def derive(text: str, tmp_path, order: int = 2, name: str = "t.ein"):
    path = tmp_path / name
    path.write_text(text)
    return einderiv.derive(einderiv.load(str(path)), order)


def assert_checked(report):
    assert report.rows and report.ok, report.format()


# ------------------------------------------------------------------ erf, erfc: GELU
@pytest.mark.parametrize("backend", BACKENDS)
def test_gelu_with_erf_checks_in_every_backend(backend, tmp_path):
    d = derive(GELU, tmp_path)
    assert_checked(einderiv.check(d, backend=backend))


def test_gelu_kernels_need_no_scipy_and_work_on_arrays(tmp_path):
    d = derive(GELU, tmp_path)
    source = einderiv.codegen(d)
    assert "scipy" not in source and "math.erf(" not in source.replace("np.vectorize(math.erf", "")
    mod = load(source)
    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=s) for k, s in mod["PARAMS"].items()}
    data = {"x": rng.normal(size=(5, 3)), "y": rng.uniform(size=(5, 2))}
    t = mod["_forward"](params, data)
    z = np.einsum("ji,bi->bj", params["W"], data["x"])
    want = z / 2 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    assert np.abs(t["h"] - want).max() < 1e-14


# ------------------------------------------------------------------ which functions print
def _printers():
    out = [("numpy", ScalarPrinter, lambda x: x)]
    if HAVE["torch"]:
        import torch
        out.append(("torch", TorchScalarPrinter, torch.tensor))
    if HAVE["jax"]:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        out.append(("jax", JaxScalarPrinter, jnp.asarray))
    return out


def _helpers(backend):
    """The helper functions a scalar body may call, from the backend's printer."""
    mod = {"numpy": "einderiv.emit.numpy", "torch": "einderiv.emit.torch", "jax": "einderiv.emit.jax"}[backend]
    helpers = importlib.import_module(mod).HELPERS
    ns: dict = {}
    exec(("import numpy as np\nimport torch\n" if backend == "torch" else "import numpy as np\n")
         + ("import jax.numpy as jnp\n" if backend == "jax" else "") + "\n".join(helpers.values()), ns)
    return ns


#: a point inside each function's domain (acosh needs > 1, asin/acos/atanh |z| < 1)
POINTS = {"acosh": [1.3, 1.9], "asin": [0.2, -0.6], "acos": [0.2, -0.6], "atanh": [0.2, -0.6],
          "log": [0.4, 1.7], "Piecewise": [0.3, -1.7]}
#: a body for what is not a one-argument function: where(|z| <= 1, z²/2, |z| − 1/2), both branches drawn
BODIES = {"Piecewise": lambda z: sympy.Piecewise((z**2 / 2, sympy.Abs(z) <= 1),
                                                 (sympy.Abs(z) - sympy.Rational(1, 2), True))}


@pytest.mark.parametrize("fn", [n for n in PRINTABLE if n != "DiracDelta"])
def test_every_accepted_function_and_its_derivatives_run_on_arrays_in_every_backend(fn):
    z = ARG[0]
    body = BODIES[fn](z) if fn in BODIES else getattr(sympy, fn)(z)
    exprs, frontier = [body], [body]
    for _ in range(CHECKED_ORDER):
        frontier = [sympy.diff(e, z).replace(lambda e: isinstance(e, sympy.DiracDelta),
                                             lambda e: sympy.Integer(0)) for e in frontier]
        exprs += frontier
    points = np.array(POINTS.get(fn, [0.3, -0.7]))
    for backend, printer, array in _printers():
        ns = _helpers(backend)
        for e in exprs:
            assert {type(f).__name__ for f in e.atoms(sympy.Function)} <= set(PRINTABLE), e
            text = printer({"allow_unknown_functions": False}).doprint(e)
            got = np.asarray(eval(text, ns, {"z0": array(points)}), dtype=float)
            want = np.array([float(e.subs(z, p).evalf(30)) for p in points])
            assert np.broadcast_to(got, want.shape) == pytest.approx(want, rel=1e-12, abs=1e-12), \
                (backend, e, text)


UNPRINTABLE = [
    ("function g(z) = loggamma(z + 3)", "t.ein:5:17: function 'g' uses loggamma"),
    ("function g(z) = 2 * besselj(0, z)", "t.ein:5:21: function 'g' uses besselj"),
    ("function g(z) = z + gamma(z)", "t.ein:5:21: function 'g' uses gamma"),
    ("function g(z) = cot(z)", "t.ein:5:17: function 'g' uses cot"),
]


@pytest.mark.parametrize("line, head", UNPRINTABLE, ids=[u[0].split("= ")[1] for u in UNPRINTABLE])
def test_a_function_no_printer_writes_is_an_error_at_its_definition(line, head, tmp_path, capsys):
    text = "dims n = 3\ninput x^i : n\nweight w^i : n\nf = w^i x^i\n" + line + "\n"
    with pytest.raises(FunctionError) as info:
        check_load("t.ein", text)
    assert str(info.value).startswith(head + ", which einderiv cannot write as NumPy, torch and JAX code; "
                                      "expected the built-in functions and exp, log, sin")
    path = tmp_path / "t.ein"
    path.write_text(text)
    assert main(["check", str(path)]) == 2  # a located error, not an internal error (3)
    assert capsys.readouterr().err.count("\n") == 1


# ------------------------------------------------------------------ no data, weight-only arguments
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_without_data_checks_as_one_sample(backend, tmp_path):
    d = derive(NO_DATA, tmp_path)
    report = einderiv.check(d, backend=backend, batch=3)
    assert_checked(report)
    assert "the network reads no data: one sample (batch 1, not 3)" in report.notes
    mod = load(einderiv.codegen(d))
    params = {"x": np.ones(3), "A": np.eye(3)}
    assert mod["per_sample_gradient"](params, {})["A"].shape == (1, 3, 3)
    assert mod["per_sample_gradient_norms"](params, {})["x"].shape == (1,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_objective_arguments_that_read_weights_only(backend, tmp_path):
    assert_checked(einderiv.check(derive(WEIGHTS_ONLY, tmp_path), backend=backend))


# ------------------------------------------------------------------ unused weights, constant blocks
@pytest.mark.parametrize("backend", BACKENDS)
def test_unused_and_constant_blocks_have_the_parameters_shape_in_every_function(backend, tmp_path):
    d = derive(UNUSED, tmp_path)
    assert_checked(einderiv.check(d, backend=backend))
    mod = numpy_view(load(einderiv.codegen(d, backend=backend)), backend)
    shapes = mod["PARAMS"]
    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    data = {"x": rng.normal(size=(4, 3))}
    vector = {k: rng.normal(size=s) for k, s in shapes.items()}
    for fn, lead in (("gradient", ()), ("ggn_diagonal", ()), ("per_sample_gradient", (4,))):
        out = mod[fn](params, data)
        assert {k: np.shape(v) for k, v in out.items()} == {k: lead + s for k, s in shapes.items()}, fn
    hvp = mod["hvp"](params, data, vector)
    assert {k: np.shape(v) for k, v in hvp.items()} == dict(shapes)
    assert not np.any(hvp["v"]) and not np.any(hvp["b"]) and not np.any(hvp["s"])
    assert np.all(mod["gradient"](params, data)["s"] == 1.0)
    assert {k: np.shape(v) for k, v in mod["per_sample_gradient_norms"](params, data).items()} == \
        {k: (4,) for k in shapes}


def test_an_unused_weight_is_warned_about(tmp_path, capsys):
    path = tmp_path / "t.ein"
    path.write_text(UNUSED)
    net = einderiv.load(str(path))
    line = (f"{path}:5:1: warning: weight 'v' is declared but the objective f does not use it; its gradient, "
            "Hessian blocks and HVP are zero")
    assert net.warnings() == (line,)
    assert main(["derive", str(path)]) == 0
    assert capsys.readouterr().err == line + "\n"
    used = tmp_path / "u.ein"
    used.write_text(GELU)
    assert einderiv.load(str(used)).warnings() == ()


# ------------------------------------------------------------------ names shared with dimensions
SHARED = """dims n = 3, h = 3, c = 2
input x(t)^i : n   for t = 1..2
label y^l : c
weight W^j_i : h, n
weight V^j_k : h, h
weight U^l_j : c, h
g(0)^j = 0
g(t)^j = tanh(W^j_i x(t)^i + V^j_k g(t-1)^k)   for t = 1..2
h^j = g(2)^j / h
p^l = U^l_j h^j
f = softmax_cross_entropy(p, y)
"""


def test_a_tensor_with_indices_may_share_a_dimensions_name_as_a_family_may(tmp_path):
    d = derive(SHARED, tmp_path)
    assert_checked(einderiv.check(d))
    family = derive(SHARED.replace("g(", "h(").replace("h^j = h(2)^j / h", "z^j = h(2)^j / h")
                    .replace("U^l_j h^j", "U^l_j z^j"), tmp_path, name="f.ein")
    assert_checked(einderiv.check(family))
