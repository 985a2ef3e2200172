"""Derivatives at saturation: pre-activations and logits at ±800, ±1000 and random extremes.

SymPy writes sigmoid′ as ``exp(−z)/(1 + exp(−z))²`` and softplus′ as ``exp(z)/(exp(z) + 1)``:
``inf/inf = nan`` in float64 once |z| passes about 709.  The generated code prints stable forms
instead (:mod:`einderiv.emit.stable`).  Here every function of the generated module —
``gradient``, ``per_sample_gradient``, ``gradient_factors``, ``per_sample_gradient_norms``,
``hessian``, ``hvp``, ``ggn_diagonal`` and, at order 3, ``third_derivative`` — is evaluated at
such points for each built-in activation and objective (and user functions built from them), must
be finite, and must equal torch's float64 autograd (``torch.func``) of the same network written
independently in torch; the torch and JAX modules must be finite and equal to the NumPy module.
"""
from __future__ import annotations

import importlib.util
import itertools
import pathlib
import warnings

import numpy as np
import pytest
import sympy

import einderiv
import einderiv.cli
from einderiv.emit.numpy import ScalarPrinter
from einderiv.emit.stable import Sigmoid, Softplus, overflow_risks, stable
from einderiv.errors import EinderivWarning
from einderiv.runtime import load, numpy_view

torch = pytest.importorskip("torch")
F = torch.nn.functional
HAVE_JAX = importlib.util.find_spec("jax") is not None
ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


#: one hidden layer W (n × n) of an activation, output weights U, objective squared error
ACTIVATION_NET = """
dims n = 4, c = 2
function swish(z) = z * sigmoid(z)
function logsig(z) = -softplus(-z)
function mysigmoid(z) = 1 / (1 + exp(-z))
function mysoftplus(z) = log(1 + exp(z))
input  x^i   : n
label  y^l   : c
weight W^j_i : n, n
weight U^l_j : c, n
v^j = {act}(W^j_i x^i)
p^l = U^l_j v^j
f = squared_error(p, y)
"""

#: the logits p = U x (U = I at the test point: p = x), then an objective
OBJECTIVE_NET = """
dims n = 2, c = 2
function logsig(z) = -softplus(-z)
input  x^i   : n
label  y^l   : c
weight U^l_i : c, n
p^l = U^l_i x^i
f = {obj}
"""

def _softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^{−|z|}): its torch derivatives are finite at ±1000 and
    exact in the tails (torch.logaddexp's second derivative is NaN there, and F.logsigmoid's
    derivatives lose digits: 1 − σ(z) where σ(z) rounds towards 1)."""
    return F.relu(z) + torch.log1p(torch.exp(-z.abs()))


#: torch functions for the activations (autograd differentiates them; no derivative written by hand)
TORCH_ACT = {
    "sigmoid": torch.sigmoid,
    "mysigmoid": torch.sigmoid,
    "softplus": _softplus,
    "mysoftplus": _softplus,
    "swish": F.silu,
    "logsig": lambda z: -_softplus(-z),
    "tanh": torch.tanh,
}
#: objective text in the network -> torch's per-sample objective of logits p and label y
TORCH_OBJ = {
    "binary_cross_entropy(p, y)": lambda p, y: F.binary_cross_entropy_with_logits(p, y, reduction="sum"),
    "softmax_cross_entropy(p, y)": lambda p, y: -(y * F.log_softmax(p, dim=-1)).sum(),
    "squared_error(p, y)": lambda p, y: 0.5 * ((p - y) ** 2).sum(),
    "-logsig(p^l) y^l": lambda p, y: (_softplus(-p) * y).sum(),
}

EXTREME = [800.0, -800.0, 1000.0, -1000.0]


def _activation_point(seed: int):
    """W = I, so the pre-activations are x: ±800 and ±1000 in every sample (permuted), one random
    extreme sample (|z| up to 1000) and one moderate sample (where nothing saturates)."""
    rng = np.random.default_rng(seed)
    x = np.array([EXTREME, EXTREME[::-1], list(rng.permutation(EXTREME)),
                  list(rng.uniform(-1000, 1000, 4)), list(rng.normal(size=4))])
    params = {"W": np.eye(4) + 1e-3 * rng.normal(size=(4, 4)) * (np.abs(x).max(axis=0) < 10),
              "U": rng.normal(size=(2, 4))}
    data = {"x": x, "y": rng.normal(size=(5, 2))}
    return params, data


def _objective_point(seed: int, obj: str):
    """U = I: the logits are x, at ±800, ±1000, random extremes and moderate values."""
    rng = np.random.default_rng(seed)
    x = np.array([[800.0, -800.0], [1000.0, -1000.0], [-1000.0, 800.0], [-800.0, 1000.0],
                  list(rng.uniform(-1000, 1000, 2)), list(rng.normal(size=2))])
    y = rng.uniform(0, 1, size=(6, 2))
    if "softmax" in obj:
        y = y / y.sum(axis=1, keepdims=True)
    return {"U": np.eye(2)}, {"x": x, "y": y}


def _module(source: str, order: int, backend: str = "numpy") -> dict:
    """The generated module of ``source`` at ``order``, as NumPy-in NumPy-out functions (float64)."""
    d = einderiv.derive(einderiv.load("net.ein", text=source), order)
    return numpy_view(load(einderiv.codegen(d, backend=backend)), backend)


# ---------------------------------------------------------------- the torch reference
def _torch_reference(model, objective, params: dict, data: dict, order: int) -> dict:
    """Everything the module computes, by torch.func in float64 from ``model(params, x) -> p``
    (one sample) and ``objective(p, y)``: the same keys as the module's functions."""
    P = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    x, y = (torch.tensor(data[k], dtype=torch.float64) for k in ("x", "y"))
    vector = {k: torch.tensor(v, dtype=torch.float64) for k, v in _vector(params).items()}

    def sample(p, xb, yb):
        return objective(model(p, xb), yb)

    def mean(p):
        return torch.func.vmap(sample, in_dims=(None, 0, 0))(p, x, y).mean()

    out = {"objective": torch.func.vmap(sample, in_dims=(None, 0, 0))(P, x, y),
           "gradient": torch.func.grad(mean)(P),
           "per_sample_gradient": torch.func.vmap(torch.func.grad(sample), in_dims=(None, 0, 0))(P, x, y)}
    out["per_sample_gradient_norms"] = {k: g.reshape(len(x), -1).norm(dim=1)
                                        for k, g in out["per_sample_gradient"].items()}
    if order >= 2:
        hess = torch.func.hessian(mean)(P)
        out["hessian"] = {(a, b): hess[a][b] for a in P for b in P}
        out["hvp"] = {a: sum(torch.tensordot(hess[a][b], vector[b], dims=vector[b].dim()) for b in P) for a in P}
        jac = torch.func.vmap(torch.func.jacrev(model), in_dims=(None, 0))(P, x)  # {a: (B, c, *shape)}
        outputs = torch.func.vmap(model, in_dims=(None, 0))(P, x)
        curv = torch.func.vmap(torch.func.hessian(objective))(outputs, y)  # (B, c, c)
        out["ggn_diagonal"] = {a: torch.einsum("bk...,bkl,bl...->...", j, curv, j) / len(x) for a, j in jac.items()}
    if order >= 3:
        third = torch.func.jacfwd(torch.func.hessian(mean))(P)
        out["third_derivative"] = {(a, b, c): third[a][b][c] for a, b, c in itertools.product(P, repeat=3)}
    return _numpy(out)


def _numpy(tree):
    if isinstance(tree, dict):
        return {k: _numpy(v) for k, v in tree.items()}
    return tree.detach().numpy()


def _vector(params: dict) -> dict:
    rng = np.random.default_rng(7)
    return {k: rng.normal(size=np.shape(v)) for k, v in params.items()}


def _computed(mod: dict, params: dict, data: dict, order: int) -> dict:
    """The module's answers, keyed as :func:`_torch_reference`'s."""
    out = {name: mod[name](params, data) for name in
           ("objective", "gradient", "per_sample_gradient", "per_sample_gradient_norms")}
    factors = mod["gradient_factors"](params, data)
    out["gradient_factors"] = {k: mod["expand_factors"](k, terms) for k, terms in factors.items()}
    if order >= 2:
        out["hessian"] = mod["hessian"](params, data)
        out["hvp"] = mod["hvp"](params, data, _vector(params))
        out["ggn_diagonal"] = mod["ggn_diagonal"](params, data)
    if order >= 3:
        out["third_derivative"] = {wrt: mod["third_derivative"](params, data, wrt)
                                   for wrt in itertools.product(params, repeat=3)}
    return out


def _compare(got: dict, ref: dict, what: str, tol: float = 1e-9) -> int:
    """Every array of ``got`` finite and within ``tol`` of ``ref`` relative to the block's
    largest entry (at least 1); the number of entries compared that are not zero in ``ref``."""
    nonzero = 0
    for fn, blocks in got.items():
        expected = ref["per_sample_gradient" if fn == "gradient_factors" else fn]
        if not isinstance(blocks, dict):
            blocks, expected = {"": blocks}, {"": expected}
        for key, value in blocks.items():
            value, want = np.asarray(value, dtype=np.float64), np.asarray(expected[key])
            assert np.all(np.isfinite(value)), f"{what}: {fn}[{key}] is not finite: {value}"
            assert np.all(np.isfinite(want)), f"{what}: torch's {fn}[{key}] is not finite"
            assert value.shape == want.shape, f"{what}: {fn}[{key}] has shape {value.shape}, torch {want.shape}"
            scale = max(1.0, float(np.abs(want).max(initial=0.0)))
            err = float(np.abs(value - want).max(initial=0.0)) / scale
            assert err <= tol, f"{what}: {fn}[{key}] differs from torch by {err:.2e} (relative to {scale:.3g})"
            nonzero += int(np.count_nonzero(want))
    return nonzero


# ---------------------------------------------------------------- activations
@pytest.mark.parametrize("act", sorted(TORCH_ACT))
def test_activation_at_saturation_matches_torch(act):
    source = ACTIVATION_NET.format(act=act)
    mod = _module(source, 3)
    torch_act = TORCH_ACT[act]

    def model(p, x):
        return p["U"] @ torch_act(p["W"] @ x)

    for seed in (0, 1):
        params, data = _activation_point(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow, no invalid value, not even a warning
            got = _computed(mod, params, data, 3)
        ref = _torch_reference(model, TORCH_OBJ["squared_error(p, y)"], params, data, 3)
        assert _compare(got, ref, f"{act}, seed {seed}") > 0


@pytest.mark.parametrize("obj", sorted(TORCH_OBJ))
def test_objective_at_saturated_logits_matches_torch(obj):
    mod = _module(OBJECTIVE_NET.format(obj=obj), 3)

    def model(p, x):
        return p["U"] @ x

    for seed in (0, 1):
        params, data = _objective_point(seed, obj)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = _computed(mod, params, data, 3)
        ref = _torch_reference(model, TORCH_OBJ[obj], params, data, 3)
        assert _compare(got, ref, f"{obj}, seed {seed}") > 0


def test_swish_bce_example_at_saturation():
    """derivations/swish_bce.ein (swish, softplus, BCE and an L2 penalty) with every
    pre-activation and logit pushed to ±1000: finite, and equal to torch."""
    d = einderiv.derive(einderiv.load("derivations/swish_bce.ein"), 2)
    mod = numpy_view(load(einderiv.codegen(d)), "numpy")
    rng = np.random.default_rng(3)
    params = {k: 300.0 * rng.normal(size=s) for k, s in mod["PARAMS"].items()}
    data = {"x": 10.0 * rng.normal(size=(4, 3)), "y": rng.uniform(0, 1, size=(4, 2))}

    def model(p, x):
        v1 = F.silu(p["W1"] @ x)
        v2 = _softplus(p["W2"] @ v1)
        return p["U"] @ v2

    def objective(p, y, U=None):
        return F.binary_cross_entropy_with_logits(p, y, reduction="sum")

    P = {k: torch.tensor(v) for k, v in params.items()}
    x, y = torch.tensor(data["x"]), torch.tensor(data["y"])

    def mean(p):
        per = torch.func.vmap(lambda xb, yb: objective(model(p, xb), yb))(x, y)
        return per.mean() + 0.001 * (p["U"] ** 2).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grad, hess = mod["gradient"](params, data), mod["hessian"](params, data)
    z1 = np.einsum("ji,bi->bj", params["W1"], data["x"])
    assert np.abs(z1).max() > 709  # the point saturates
    ref_grad = _numpy(torch.func.grad(mean)(P))
    ref_hess = torch.func.hessian(mean)(P)
    got = {"gradient": grad, "hessian": hess}
    ref = {"gradient": ref_grad, "hessian": {(a, b): ref_hess[a][b].numpy() for a in P for b in P}}
    assert _compare(got, ref, "swish_bce") > 0


# ---------------------------------------------------------------- torch and JAX modules
BACKENDS = ["torch"] + (["jax"] if HAVE_JAX else [])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["sigmoid", "softplus", "swish", "mysigmoid"])
def test_other_backends_are_finite_at_saturation(backend, act):
    source = ACTIVATION_NET.format(act=act)
    params, data = _activation_point(0)
    want = _computed(_module(source, 3), params, data, 3)
    got = _computed(_module(source, 3, backend), params, data, 3)
    assert _compare(got, {**want, "per_sample_gradient": want["per_sample_gradient"]}, f"{backend} {act}") > 0


# ---------------------------------------------------------------- the rewrite itself
z = sympy.Symbol("z", real=True)


def test_stable_forms_of_the_builtins():
    sigma = 1 / (1 + sympy.exp(-z))
    assert stable(sigma) == Sigmoid(z)
    assert stable(sympy.diff(sigma, z)) == Sigmoid(z) * Sigmoid(-z)
    assert stable(sympy.log(1 + sympy.exp(z))) == Softplus(z)
    assert stable(sympy.diff(sympy.log(1 + sympy.exp(z)), z)) == Sigmoid(z)
    assert stable(sympy.tanh(z)) == sympy.tanh(z)  # nothing to do


@pytest.mark.parametrize("body", [z / (1 + sympy.exp(-z)), sympy.log(1 + sympy.exp(z)) * z,
                                  1 / (1 + sympy.exp(-2 * z)), sympy.exp(z) / (1 + sympy.exp(z)) ** 2])
def test_stable_is_an_identity(body):
    """The rewritten body and its three derivatives equal SymPy's at moderate points and are
    finite at ±1000, where SymPy's overflow."""
    for order in range(4):
        d = sympy.diff(body, z, order)
        fast = sympy.lambdify(z, stable(d).rewrite(sympy.exp), "mpmath")
        slow = sympy.lambdify(z, d, "mpmath")
        for point in (-3.0, -0.5, 0.0, 0.7, 4.0):
            assert abs(complex(fast(point)) - complex(slow(point))) < 1e-12 * max(1.0, abs(complex(slow(point))))
        assert overflow_risks(d) == []
        printed = ScalarPrinter({"allow_unknown_functions": False}).doprint(stable(d))
        assert "exp(" not in printed.replace("logaddexp(", "")


def test_overflow_risks_are_named():
    assert overflow_risks(sympy.exp(z) * z) == [sympy.exp(z)]
    assert overflow_risks(sympy.exp(-z**2)) == []  # bounded above: cannot overflow
    assert overflow_risks(sympy.cosh(z)) == [sympy.cosh(z)]
    assert overflow_risks(sympy.log(sympy.exp(z) + 2)) == [sympy.exp(z)]  # not a softplus: left as it is


# ---------------------------------------------------------------- user functions the rewrite cannot fix
RISKY = """dims n = 2
function g(z) = exp(z) - z
input x^i : n
label y^i : n
weight W^j_i : n, n
p^j = g(W^j_i x^i)
f = squared_error(p, y)
"""
WARNING = ("risky.ein:2:1: warning: function 'g': the generated code evaluates exp(z) (in g, g′, g″), which "
           "overflows to inf in float64 once its exponent passes about 709, and can then give inf or nan; "
           "write it with sigmoid or softplus (evaluated stably) or bound its argument")


def test_a_user_function_that_can_overflow_is_warned_about(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "risky.ein").write_text(RISKY, encoding="utf-8")
    assert einderiv.cli.main(["codegen", "risky.ein", "-o", "out.py"]) == 0  # warned, not refused
    assert capsys.readouterr().err.splitlines() == [WARNING]
    with pytest.warns(EinderivWarning) as caught:
        einderiv.codegen(einderiv.derive(einderiv.load("risky.ein")))
    assert [str(w.message) for w in caught] == [WARNING]


@pytest.mark.parametrize("name", ["swish_bce", "gru_cell", "tanh_mlp"])
def test_no_warning_where_the_code_is_stable(name, capsys):
    assert einderiv.cli.main(["codegen", f"derivations/{name}.ein", "-o", "/dev/null"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["sigmoid", "softplus", "swish"])
def test_float32_modules_are_finite_at_saturation(backend, act):
    """In float32 exp overflows past 88: the torch and JAX modules, which keep float32, stay
    finite at ±800 and ±1000 and agree with the float64 NumPy module to float32's precision."""
    source = ACTIVATION_NET.format(act=act)
    d = einderiv.derive(einderiv.load("net.ein", text=source), 2)
    mod = numpy_view(load(einderiv.codegen(d, backend=backend)), backend, dtype=np.float32)
    params, data = _activation_point(0)
    want = _computed(_module(source, 2), params, data, 2)
    got = _computed(mod, params, data, 2)
    assert all(np.asarray(v).dtype == np.float32 for v in got["gradient"].values())
    assert _compare(got, want, f"{backend} float32 {act}", tol=1e-4) > 0
