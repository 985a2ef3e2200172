"""The generated module against an independent reference (tests/reference.py).

For every example network in derivations/ (layer templates aside) and a handful of the
random networks, every tensor of the generated forward pass must equal the reference's, the
generated ``objective`` must equal the reference's per sample (to 1e-12 relative), and the
generated ``gradient`` and ``per_sample_gradient`` must match central differences of the
*reference* objective — whose built-in objectives are the textbook formulas, not einderiv's.  A wrong objective builder is therefore caught, which
the finite-difference checks of the generated module alone cannot do (the mutation tests).
"""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest
import sympy

import einderiv
import test_random_networks as random_mlps
import test_random_rnn_cnn as random_sequences
from einderiv.frontend import objectives
from einderiv.ir import Add, Apply, Const, Fn, LogSumExp, Prod
from einderiv.numcheck import load as load_module
from reference import (BUILTIN_FUNCTIONS, TEXTBOOK, BuiltinObjective, Reference, error,
                       relative_error)
from runs import default_share

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("regenerate", ROOT / "derivations" / "regenerate.py")
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)

OBJECTIVE_TOL = 1e-12  # per-sample relative error of the generated objective
FORWARD_TOL = 1e-12  # every defined tensor of the generated forward pass (error measure of the suite)
GRADIENT_TOL = 1e-6  # the suite's finite-difference tolerance (central differences, float64)

MLP_SEEDS = range(10)
RNN_SEEDS = (1, 4, 5, 10)  # CE over all steps, zero initial state, relu + learnable state, CE at the end
CNN_SEEDS = (0, 2, 3, 7)  # 1-D CE, 1-D stride 2 over 3 positions, 2-D stride 2 over 2×2, relu


def compare(build, seed: int, batch: int = 3) -> dict[str, float]:
    """The worst errors of the generated module (``einderiv.derive(build(), 1)``) against the
    reference of ``build()``, at values drawn by the reference from ``seed``: every defined
    tensor of ``_forward``, the per-sample ``objective``, and ``gradient`` and
    ``per_sample_gradient`` against central differences of the reference objective."""
    ref = Reference(build)
    mod = load_module(einderiv.codegen(einderiv.derive(build(), 1)))
    assert mod["PARAMS"] == ref.param_shapes and mod["INPUTS"] == ref.input_shapes
    params, data = ref.draw(np.random.default_rng(seed), batch)
    want, got = ref.forward(params, data), mod["_forward"](params, data)
    defined = [str(d.name) for d in ref.network.definitions if str(d.name) != ref.objective_name]
    assert set(defined) <= set(got), sorted(set(defined) - set(got))
    fd = ref.gradient(params, data)
    grad, psg = mod["gradient"](params, data), mod["per_sample_gradient"](params, data)
    return {
        "forward": max([error(_batched(got[n], want[n].shape), want[n]) for n in defined], default=0.0),
        "objective": relative_error(mod["objective"](params, data), ref.objective(params, data)),
        "gradient": max(error(grad[n], fd[n].mean(axis=0)) for n in fd),
        "per_sample_gradient": max(error(psg[n], fd[n]) for n in fd),
    }


def _batched(value, shape):
    """A tensor of ``_forward`` with the batch axis (one that depends on parameters only may lack it)."""
    return np.broadcast_to(value, shape) if np.shape(value) == shape[1:] else value


def assert_agrees(errors: dict[str, float], what: str) -> None:
    assert errors["forward"] <= FORWARD_TOL, (what, errors)
    assert errors["objective"] <= OBJECTIVE_TOL, (what, errors)
    assert errors["gradient"] <= GRADIENT_TOL, (what, errors)
    assert errors["per_sample_gradient"] <= GRADIENT_TOL, (what, errors)


# ------------------------------------------------------------------ the networks
@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem == "transformer_block"
                                               else []) for p in regenerate.networks()])  # slow: ~20 s of CPU
def test_example_network_matches_the_reference(path):
    assert_agrees(compare(lambda: einderiv.load(str(path)), seed=0), path.name)


@pytest.mark.parametrize("seed", default_share(MLP_SEEDS, 3))
def test_random_mlp_matches_the_reference(seed):
    desc = random_mlps.random_network(seed)[1]
    assert_agrees(compare(lambda: random_mlps.random_network(seed)[0], seed=seed, batch=2 + seed % 2), desc)


NETWORKS = [("rnn", s) for s in RNN_SEEDS] + [("cnn", s) for s in CNN_SEEDS]


@pytest.mark.parametrize("kind,seed", default_share(NETWORKS, 2), ids=[f"{k}{s}" for k, s in NETWORKS])
def test_random_sequence_network_matches_the_reference(kind, seed):
    text = random_sequences.source(kind, seed)
    assert_agrees(compare(lambda: einderiv.load(f"{kind}{seed}.ein", text=text), seed=seed), text)


def test_the_networks_cover_every_objective_and_function():
    """The networks above call every built-in objective and use every function of the
    random generators, so each textbook formula and hand-written function is exercised."""
    builds = [lambda p=p: einderiv.load(str(p)) for p in regenerate.networks()]
    builds += [lambda s=s: random_mlps.random_network(s)[0] for s in MLP_SEEDS]
    builds += [lambda k=k, s=s: einderiv.load(f"{k}{s}.ein", text=random_sequences.source(k, s))
               for k, s in NETWORKS]
    kinds, fns = set(), set()
    for build in builds:
        ref = Reference(build)
        kinds |= {c.kind for c in ref.calls}
        fns |= {r.fn.name for d in ref.network.definitions for r in _applies(d.expr)}
    assert kinds == set(TEXTBOOK)
    assert set(random_mlps.ACTS) | set(random_sequences.ACTS) <= fns
    assert fns <= set(BUILTIN_FUNCTIONS) | {"swish", "lnorm", "huber", "gelu", "sd"}  # user bodies: lambdify


def _applies(e):
    if isinstance(e, Apply):
        yield e
    for c in e.children():
        yield from _applies(c)


def test_objective_calls_are_opaque_to_the_reference():
    """The reference never sees the builders' IR: the objective is the textbook call."""
    ref = Reference(lambda: einderiv.load(str(ROOT / "derivations" / "rnn_all_steps.ein")))
    assert [str(c) for c in ref.calls] == [f"squared_error(p({t}), y({t}))" for t in (1, 2, 3)]
    ref = Reference(lambda: einderiv.load(str(ROOT / "derivations" / "swish_bce.ein")))
    assert [str(c) for c in ref.calls] == ["binary_cross_entropy(p, y)"]
    assert all(isinstance(c, BuiltinObjective) for c in ref.calls)
    assert not any(isinstance(x, LogSumExp) for d in ref.network.definitions for x in _walk(d.expr))


def _walk(e):
    yield e
    for c in e.children():
        yield from _walk(c)


# ------------------------------------------------------------------ the reference itself
@pytest.mark.parametrize("name", sorted(BUILTIN_FUNCTIONS))
def test_hand_written_derivatives_are_consistent(name):
    """Each hand-written derivative is the central difference of the one before it."""
    z = np.linspace(0.3, 2.5, 9) if name in ("log", "sqrt", "reciprocal") else np.linspace(-2.5, 2.5, 10)
    h = 1e-6
    for k in range(3):
        f, df = BUILTIN_FUNCTIONS[name][k], BUILTIN_FUNCTIONS[name][k + 1]
        np.testing.assert_allclose((f(z + h) - f(z - h)) / (2 * h), df(z), rtol=1e-6, atol=1e-6,
                                   err_msg=f"{name} order {k + 1}")


def test_hand_written_functions_are_the_builtins():
    """The values agree with einderiv's SymPy definitions (which the generated code follows)."""
    from einderiv.frontend.builtins import ARG, BUILTINS
    assert set(BUILTIN_FUNCTIONS) == set(BUILTINS)
    for name, body in BUILTINS.items():
        z = np.linspace(0.3, 2.5, 7) if name in ("log", "sqrt", "reciprocal") else np.linspace(-2.5, 2.5, 7)
        want = sympy.lambdify(ARG[0], body, "numpy")(z)
        np.testing.assert_allclose(BUILTIN_FUNCTIONS[name][0](z), np.broadcast_to(want, z.shape), rtol=1e-14,
                                   err_msg=name)


def test_window_is_the_strided_selection():
    """S[u, t, a] = [u == stride·t + a]: x^{2t+a} picks x[0], x[1] | x[2], x[3] | x[4], x[5]."""
    from reference import Evaluator
    from einderiv.ir import Index, Prod, Ref, Window

    u, t, a = Index("u", 7), Index("t", 3), Index("a", 2)
    x = np.arange(7.0)[None] * 10
    got = Evaluator({}).evaluate(Prod((Window(u, t, a, 2), Ref("x", (u,))), (t, a)), {"x": x}, 1)
    np.testing.assert_array_equal(got[0], [[0, 10], [20, 30], [40, 50]])


def test_textbook_objectives_at_known_values():
    c = 4
    onehot = np.eye(c)[[2]]
    assert np.isclose(TEXTBOOK["softmax_cross_entropy"](np.zeros((1, c)), onehot)[0], np.log(c), rtol=1e-15)
    p = np.array([[0.0, np.log(3.0)]])  # softmax = (1/4, 3/4)
    assert np.isclose(TEXTBOOK["softmax_cross_entropy"](p, np.array([[0.5, 0.5]]))[0],
                      -0.5 * np.log(0.25) - 0.5 * np.log(0.75), rtol=1e-15)
    assert np.isclose(TEXTBOOK["binary_cross_entropy"](np.zeros((1, c)), np.full((1, c), 0.3))[0],
                      c * np.log(2), rtol=1e-15)
    p = np.array([[np.log(3.0)]])  # σ = 3/4
    assert np.isclose(TEXTBOOK["binary_cross_entropy"](p, np.array([[0.2]]))[0],
                      -0.2 * np.log(0.75) - 0.8 * np.log(0.25), rtol=1e-15)
    assert np.isclose(TEXTBOOK["squared_error"](np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]]))[0], 2.5)


# ------------------------------------------------------------------ mutations: the reference has teeth
HALF, MINUS = Const(sympy.Rational(1, 2)), Const(sympy.Integer(-1))


def per_class_logistic(p, y):
    """Σ_l softplus(p^l) − y^l p^l: the binary cross-entropy formula under the softmax name."""
    (l,) = p.free
    return Add((Prod((Apply(Fn("softplus", (0,)), (p,)),), ()), Prod((MINUS, y, p), ())))


def temperature_slip(p, y):
    """½ logsumexp_l(2 p^l) − y^l p^l: a softmax at temperature ½."""
    (l,) = p.free
    return Add((Prod((HALF, LogSumExp(Prod((Const(sympy.Integer(2)), p), (l,)), l)), ()),
                Prod((MINUS, y, p), ())))


@pytest.mark.parametrize("wrong", [per_class_logistic, temperature_slip], ids=lambda f: f.__name__)
def test_a_wrong_softmax_cross_entropy_is_caught(wrong, monkeypatch):
    paper = ROOT / "derivations" / "paper_mlp.ein"
    good = compare(lambda: einderiv.load(str(paper)), seed=0)
    assert_agrees(good, "paper_mlp with the real builder")
    monkeypatch.setitem(objectives.BUILDERS, "softmax_cross_entropy", wrong)
    # the generated module is consistent with itself: finite differences of its own objective pass
    assert einderiv.check(einderiv.derive(einderiv.load(str(paper)), 1), seed=0).ok
    # … but not with the textbook softmax cross-entropy
    bad = compare(lambda: einderiv.load(str(paper)), seed=0)
    assert bad["objective"] > 1e-3, bad
    assert bad["gradient"] > 1e-3 and bad["per_sample_gradient"] > 1e-3, bad
