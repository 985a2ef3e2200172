"""Recurrences of symbolic length (`depth T`): the general form of back-propagation through time.

`derivations/rnn.ein` and `derivations/gru.ein` declare their length symbolically; `einderiv
derive` prints formulas for every T, read off at T = 8 and validated against fresh derivations
at other lengths (a FoldError, located at the `depth` line, where they disagree).  Here the
printed general form is also written out at T = 2..6 and evaluated numerically, independently
of any symbolic comparison: its gradients against central differences of the reference
evaluator's objective, its Hessian blocks against the generated module of that length.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import einderiv
from einderiv.analysis.labels import loop_points, points, step_ranges
from einderiv.analysis.template import FoldError, derived, general_form, written_at
from einderiv.cli import main
from einderiv.emit.numpy import generate
from einderiv.numcheck import load as load_module
from reference import Evaluator, Reference

ROOT = pathlib.Path(__file__).resolve().parents[1]
RNN = str(ROOT / "derivations" / "rnn.ein")
GRU = str(ROOT / "derivations" / "gru.ein")
SMALL = {"n": 2, "h": 2, "c": 2}  # sizes small enough for finite differences at every length


@pytest.fixture(scope="module")
def rnn_form():
    return einderiv.derive(einderiv.load(RNN, dims=SMALL))


@pytest.fixture(scope="module")
def rnn_compact(rnn_form):
    return general_form(rnn_form.template, 2, expanded=False)


# ------------------------------------------------------------------ what is printed
def test_rnn_general_form_is_bptt_for_any_length(rnn_form):
    text = einderiv.derivation_text(einderiv.derive(einderiv.load(RNN)))
    assert "(order 2, any length T)" in text and "reproduced exactly at T = 1, 2, 3, 4, 5, 6" in text
    assert "Network (a recurrence over t = 1..T)" in text
    # the zero initial state: step 1 has no W term, a base case
    assert "  z_h(1)^j = V^j_a x(1)^a   (pre-activation)" in text
    assert "  z_h(t)^j = V^j_a x(t)^a + W^j_i h(t-1)^i   for t = 2..T   (pre-activation)" in text
    # back-propagation through time, with its base case at t = T
    assert "  ∂f/∂h(T)_j = ∂f/∂p_l U^l_j\n" in text
    assert "  ∂f/∂h(t)_j = ∂f/∂z_h(t+1)_l W^l_j   for t = 1..T-1" in text
    assert "  ∂f/∂W^j_i = Σ_{t=2..T} ∂f/∂z_h(t)_j ⊗ h(t-1)^i\n" in text
    assert "  ∂f/∂V^j_a = Σ_{t=1..T} ∂f/∂z_h(t)_j ⊗ x(t)^a\n" in text
    ww = text[text.index("∂²f/∂W^j_i∂W^s_a ="):text.index("∂²f/∂W^j_i∂V^s_a =")]
    assert ("Σ_{t=2..T} Σ_{τ=2..T} (∂²f/∂p_b∂p_d η[p,z_h(t)]^b_j η[p,z_h(τ)]^d_s) ⊗ h(t-1)^i ⊗ h(τ-1)^a"
            in ww)  # Gauss-Newton: every pair of steps
    assert "Σ_{t=3..T} Σ_{τ=2..t-1} η[h(t-1),z_h(τ)]^a_j ⊗ h(τ-1)^i ⊗ ∂f/∂z_h(t)_s" in ww  # the cross term
    assert "Σ_{t=3..T} Σ_{τ=2..t-1} Σ_{ρ=2..t-1} (Σ_l ∂f/∂h(t)_l tanh″(z_h(t)^l)" in ww  # A'': three steps
    assert "h(4)" not in text and "h(8)" not in text  # no term fixed at the reference length


def test_compact_form_sums_second_order_adjoints_over_pairs_of_steps(rnn_compact):
    text = einderiv.derivation_text(rnn_compact, form="compact")
    assert "  ∂²f/∂V^j_a∂V^s_b = Σ_{t=1..T} Σ_{τ=1..T} H[z_h(t),z_h(τ)]_{js} ⊗ x(t)^a ⊗ x(τ)^b\n" in text


# ------------------------------------------------------------------ numbers at T = 2..6
def _values(defs, env, evaluator, batch) -> dict:
    for name, indices, expr in defs:
        out = evaluator.evaluate(expr, env, batch)
        env[str(name)] = np.array(evaluator.align(out, expr.free, indices))
    return env


def check_at(gf, T: int, seed: int) -> None:
    """The general form written out at length T: gradients = central differences of the reference
    objective; Hessian blocks = the generated module's (batch means)."""
    defs, blocks = written_at(gf, T)
    net = gf.template.instantiate(T)
    ref = Reference(lambda: net)
    rng = np.random.default_rng(seed)
    params, data = ref.draw(rng, batch=2)
    evaluator = Evaluator(net.sizes(), net.functions)
    env = {k: np.array(v) for k, v in data.items()}
    env.update({k: np.broadcast_to(v, (2,) + np.shape(v)) for k, v in params.items()})
    env = _values(defs, env, evaluator, 2)
    fd = ref.gradient(params, data)
    hess = load_module(generate(derived(gf.template, T, 2, False)))["hessian"](params, data)
    for wrt, (axes, expr) in blocks.items():
        got = np.array(evaluator.align(evaluator.evaluate(expr, env, 2), expr.free, axes))
        if len(wrt) == 1:
            want = fd[str(wrt[0])]
        else:
            want, got = hess[tuple(map(str, wrt))], got.mean(axis=0)
        assert got.shape == want.shape, (wrt, T)
        scale = max(1.0, float(np.max(np.abs(want))))
        assert np.max(np.abs(got - want)) <= 1e-6 * scale, f"{wrt} at T = {T}"


@pytest.mark.parametrize("T", [2, 3, 4, 5, 6])
def test_rnn_general_form_at_each_length(rnn_form, T):
    check_at(rnn_form, T, seed=T)


@pytest.mark.parametrize("T", [2, 4, 6])
def test_rnn_compact_general_form_at_each_length(rnn_compact, T):
    check_at(rnn_compact, T, seed=10 + T)


@pytest.fixture(scope="module")
def gru_compact():
    return general_form(einderiv.load(GRU), 2, expanded=False)


@pytest.mark.slow  # the GRU's general form is derived and checked at T = 2..6 (~8 s of CPU): its tests run in .ci/run;
def test_gru_general_form_holds_from_length_two(gru_compact):  # the RNN's above stay in the default run
    """The reset gate starts at step 2: at T = 1 the form does not hold, and it says T ≥ 2."""
    assert gru_compact.checked == (2, 3, 4, 5, 6)
    text = einderiv.derivation_text(gru_compact, form="compact")
    assert "(order 2, any length T ≥ 2)" in text and "reproduced exactly at T = 2, 3, 4, 5, 6" in text
    assert "  z_c(1)^j = Wh^j_i x(1)^i   (pre-activation)" in text  # step 1: no reset, no old state
    assert "  ∂f/∂Ur^j_a = Σ_{t=2..T} ∂f/∂z_r(t)_j ⊗ h(t-1)^a\n" in text


@pytest.mark.slow  # with the GRU's general form (above)
@pytest.mark.parametrize("T", [2, 3, 4, 5, 6])
def test_gru_general_form_at_each_length(gru_compact, T):
    check_at(gru_compact, T, seed=20 + T)


# ------------------------------------------------------------------ what a generator reads
@pytest.mark.parametrize("which", ["rnn", pytest.param("gru", marks=pytest.mark.slow)])
def test_loop_bounds_visit_exactly_the_steps(which, rnn_form, gru_compact):
    """Every recurrence and every sum over steps of the general form, as the nested loops a module
    that reads T at run time would run (step_ranges → loop_points), visits exactly the steps its
    condition holds for, at T = 2..6."""
    gf = rnn_form if which == "rnn" else gru_compact
    labels = gf.labels
    items = [(g.symbols, g.cond) for g in gf.nodes + gf.quantities if g.symbols]
    items += [(t.steps, t.cond) for b in gf.blocks for t in b.terms if t.steps]
    assert len(items) > 10
    for T in range(2, 7):
        env = {labels.depth: T}
        for symbols, cond in items:
            loops = [tuple(p[s] for s in symbols) for p in loop_points(step_ranges(symbols, cond, labels), env)]
            want = sorted(tuple(p[s] for s in symbols) for p in points(symbols, cond, env, labels))
            assert loops == sorted(loops) == want, (symbols, cond, T)


# ------------------------------------------------------------------ errors and commands
def test_a_form_that_does_not_fold_is_a_located_error(tmp_path):
    """A recurrence read at a fixed middle step (h(4)) has no general form: the error names the
    file's depth line and says what to give instead, never a formula valid at one length."""
    src = (ROOT / "derivations" / "rnn.ein").read_text().replace("p^l = U^l_j h(T)^j", "p^l = U^l_j h(4)^j")
    f = tmp_path / "mid.ein"
    f.write_text(src)
    line = next(k for k, text in enumerate(src.splitlines(), 1) if text.startswith("depth T"))
    with pytest.raises(FoldError) as info:
        einderiv.derive(einderiv.load(str(f)), 1)
    assert str(info.value).startswith(f"{f}:{line}:1: ")
    assert str(info.value).endswith("einderiv writes no general formula it cannot check: give the length, "
                                    "e.g. depth={'T': 4}")
    assert main(["derive", str(f)]) == 2


def test_commands_on_a_recurrence(tmp_path, capsys):
    assert main(["check", RNN, "--depth", "T=3"]) == 0
    capsys.readouterr()
    for cmd in ("check", "structure"):
        assert main([cmd, RNN]) == 2
        assert capsys.readouterr().err == (f"einderiv: error: '{cmd}' needs a concrete length for a recurrence "
                                           "over T steps: add --depth T=4\n")
    assert main(["codegen", RNN, "-o", str(tmp_path / "any.py")]) == 0  # T read from data["x"] at run time
    assert "INPUTS = {'x': ('T', 3), 'y': (2,)}" in (tmp_path / "any.py").read_text()
    for backend, library in (("torch", "PyTorch"), ("jax", "JAX")):
        assert main(["codegen", RNN, "--backend", backend]) == 2
        assert capsys.readouterr().err == (
            f"einderiv: error: the {library} module of a recurrence over T steps is generated at a given length "
            "(the module that reads T at run time is NumPy only): give it, e.g. --depth T=4\n")
    assert main(["codegen", RNN, "--depth", "T=4", "-o", str(tmp_path / "m.py")]) == 0
    assert 'INPUTS = {\n    "x(1)"' in (tmp_path / "m.py").read_text()
