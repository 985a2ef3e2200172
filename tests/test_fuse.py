"""The run-time-length gradient as hand-written BPTT (einderiv.emit.fuse): each weight's sum over
steps added up inside the reversed loop, the step's adjoints carried in variables, 1/B seeded
once, and a forward pass that keeps only what the gradient reads.  Numbers first: against an
independent NumPy BPTT of the Elman RNN at lengths past the reference length, against the
two-pass per-sample gradients (rnn and GRU), and against central differences on a tanh RNN."""
import ast
import re

import numpy as np
import pytest
import sympy

import einderiv
import einderiv.emit.sequence_kernel as sequence_kernel
from einderiv.emit.fuse import fuse_gradient
from einderiv.emit.kernel import Accumulate, Define, Local, Loop, Range, Return, TermGroup
from einderiv.ir import Const, Index, Name, Prod, Ref, Sym
from einderiv.runtime import load as load_source

RNN, GRU = "derivations/rnn.ein", "derivations/gru.ein"
DIMS = {"n": 4, "h": 6, "c": 3}
MODULES = {}


def module(path, dims=None):
    key = (path, str(dims))
    if key not in MODULES:
        src = einderiv.codegen(einderiv.load(path, dims=dims) if dims else einderiv.load(path))
        MODULES[key] = (src, load_source(src))
    return MODULES[key]


def sample(m, B, T, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 0.7, s) for k, s in m["PARAMS"].items()}
    data = {"x": rng.normal(size=(B, T, m["INPUTS"]["x"][1]))}
    c = m["INPUTS"]["y"][0]
    data["y"] = np.eye(c)[rng.integers(0, c, B)]
    return params, data


def bptt(params, data):
    """An independent BPTT of derivations/rnn.ein (h(t) = tanh(W h(t-1) + V x(t)), squared error)."""
    W, V, U = params["W"], params["V"], params["U"]
    x, y = data["x"], data["y"]
    B, T = x.shape[:2]
    hs = [np.zeros((B, W.shape[0]))]
    for t in range(T):
        hs.append(np.tanh(hs[-1] @ W.T + x[:, t] @ V.T))
    dp = hs[-1] @ U.T - y
    grads = {"U": dp.T @ hs[-1] / B, "W": np.zeros_like(W), "V": np.zeros_like(V)}
    dh = dp @ U
    for t in range(T, 0, -1):
        dz = dh * (1 - hs[t] ** 2)
        grads["W"] += dz.T @ hs[t - 1] / B
        grads["V"] += dz.T @ x[:, t - 1] / B
        dh = dz @ W
    return grads


@pytest.mark.parametrize("T", [1, 2, 3, 9, 17, 40])
def test_rnn_gradient_is_bptt(T):
    _, m = module(RNN, DIMS)
    params, data = sample(m, 5, T, seed=T)
    got, want = m["gradient"](params, data), bptt(params, data)
    for k in want:
        assert got[k].shape == want[k].shape
        assert np.allclose(got[k], want[k], rtol=1e-12, atol=1e-14), k


@pytest.mark.parametrize("path", [RNN, GRU])
@pytest.mark.parametrize("T", [2, 5, 12])
def test_fused_gradient_is_the_mean_of_the_two_pass_per_sample_gradients(path, T):
    """per_sample_gradient still runs _backward and the separate sums: the fused gradient agrees."""
    _, m = module(path)
    params, data = sample(m, 4, T)
    grad, per = m["gradient"](params, data), m["per_sample_gradient"](params, data)
    for k in m["PARAMS"]:
        assert np.allclose(grad[k], per[k].mean(axis=0), rtol=1e-11, atol=1e-13), k


def test_fused_gradient_against_central_differences_past_the_reference_length():
    _, m = module(RNN, DIMS)
    params, data = sample(m, 3, 11)
    grad, h = m["gradient"](params, data), 1e-5
    for k, v in params.items():
        for idx in [(0, 0), (1, 2), (v.shape[0] - 1, v.shape[1] - 1)]:
            e = np.zeros(v.shape)
            e[idx] = h
            up = m["objective"](dict(params, **{k: v + e}), data).mean()
            down = m["objective"](dict(params, **{k: v - e}), data).mean()
            assert abs((up - down) / (2 * h) - grad[k][idx]) < 1e-7 * max(1.0, abs(grad[k][idx])), (k, idx)


def function_source(src, name):
    tree = ast.parse(src)
    fn = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == name)
    return ast.get_source_segment(src, fn)


def test_gradient_is_one_reversed_loop_without_the_dict_frame():
    """gradient: the lean forward, then _gradient — one loop, weights added in place, no store into t."""
    src, m = module(RNN, DIMS)
    gradient, fused, lean = (function_source(src, n) for n in ("gradient", "_gradient", "_forward_gradient"))
    assert "_backward" not in gradient and "_forward_gradient(params, data)" in gradient
    assert fused.count("for k in range(") == 1
    assert "grad_W += " in fused and "grad_V += " in fused
    assert fused.count("/ B") == 1 and "(p - y) / B" in fused  # the batch mean seeded once
    assert not [line for line in fused.splitlines() if line.lstrip().startswith("t[")]  # no store into t
    assert "adj_z_h_kp1 = adj_z_h_k" in fused  # the previous step's adjoint carried in its variable
    assert 'z_h(' not in lean and 't[f"h({k})"] = h_k' in lean  # nothing stored that _gradient does not read
    assert "f = " not in lean  # nor the objective computed
    assert 't[f"z_h({k})"]' in function_source(src, "_forward")  # _forward still has every tensor
    # _gradient leaves the caller's t as it was
    params, data = sample(m, 3, 6)
    t = m["_forward_gradient"](params, data)
    keys = set(t)
    m["_gradient"](t)
    assert set(t) == keys



@pytest.mark.parametrize("path", [RNN, GRU])
def test_per_sample_functions_run_lean_passes_with_the_same_numbers(path):
    """per_sample_gradient and gradient_factors run _forward_factors and _backward_factors: the
    forward pass computes no objective (the RNN's stores no pre-activation), the backward pass
    carries the next step's adjoint in its variable (the RNN's stores no adj[h(*)]); every store is
    something a later pass or _factors/_per_sample loads — and the numbers equal those of
    _forward and _backward."""
    src, m = module(path)
    for name in ("per_sample_gradient", "gradient_factors"):
        text = function_source(src, name)
        assert "_forward_factors(params, data)" in text and "_backward_factors(t)" in text, name
    forward, backward = function_source(src, "_forward_factors"), function_source(src, "_backward_factors")
    assert "f = " not in forward and "_kp1 = " in backward
    if path == RNN:  # (a GRU's backward pass reads its gates' pre-activations back)
        assert 't[f"z_h' not in forward and "adj[h(" not in backward
    def families(fn, ctx):  # the keys of t a function loads or stores, each step label as (*)
        return {re.sub(r"\([^()]*\)", "(*)", ast.unparse(n.slice).strip("f'\""))
                for n in ast.walk(ast.parse(fn)) if isinstance(n, ast.Subscript) and isinstance(n.ctx, ctx)
                and isinstance(n.value, ast.Name) and n.value.id == "t"}
    loads = set().union(*(families(function_source(src, r), ast.Load)
                          for r in ("_backward_factors", "_factors", "_per_sample")))
    for fn in (forward, backward):
        assert families(fn, ast.Store) <= loads, sorted(families(fn, ast.Store) - loads)
    params, data = sample(m, 4, 7)
    t = m["_forward"](params, data)
    m["_backward"](t)
    want = m["_per_sample"](t)
    got = m["per_sample_gradient"](params, data)
    for k in m["PARAMS"]:
        assert np.array_equal(got[k], want[k]), k


def _term(*names):
    i = Index("i", sympy.Symbol("h"))
    return Prod((Const(1),) + tuple(Ref(n, (i,)) for n in names), (i,)), (i,)


def test_a_sum_that_fits_no_loop_keeps_its_own_loop_after_it():
    """A group whose steps the backward loop does not cover keeps its loop (after the backward
    statements); a group that fits is added inside the loop at the shift that covers it."""
    k, i = "k", Index("i", sympy.Symbol("h"))
    body_def = Define(Name("a", (Sym(k),)), (i,), Ref(Name("a", (Sym(k, 1),)), (i,)))
    backward = (Define(Name("a", (8,)), (i,), Ref(Name("s"), (i,))), Loop(k, Range(7, 0, -1), (body_def,)))
    inside, idx = _term(Name("a", (Sym(k),)))
    far, _ = _term(Name("a", (Sym(k),)), Name("x", (Sym(k),)))
    acc = Accumulate(Local("g"), (), idx, (TermGroup(tuple(range(1, 9)), inside), TermGroup((20, 21, 22), far)),
                     False, "g", None)
    fused = fuse_gradient(backward, (acc, Return(Local("g"))), None)
    assert fused is not None
    loop = next(st for st in fused if isinstance(st, Loop))
    assert len(loop.body) == 2 and loop.body[1].group.labels is None  # steps 1..7 inside (shift 0)
    after = [st for st in fused[fused.index(loop) + 1:] if not isinstance(st, Return)]
    assert [st.group.labels for st in after] == [None, (20, 21, 22)]  # step 8 alone, the far group's loop


def test_without_fusion_gradient_runs_backward_then_the_sums(monkeypatch):
    """Where the sums do not fit the backward loop, gradient is the two-pass one (same numbers)."""
    monkeypatch.setattr(sequence_kernel, "fuse_gradient", lambda *args: None)
    src = einderiv.codegen(einderiv.load(RNN, dims=DIMS))
    gradient = function_source(src, "gradient")
    assert "_forward(params, data)" in gradient and "_backward(t)" in gradient and "_forward_gradient" not in src
    m = load_source(src)
    params, data = sample(m, 4, 13)
    got, want = m["gradient"](params, data), bptt(params, data)
    for k in want:
        assert np.allclose(got[k], want[k], rtol=1e-12, atol=1e-14), k


def test_norms_stack_each_run_of_arrays_once():
    """per_sample_gradient_norms stacks a factor's per-step arrays once per call: W's adjoints
    (steps 2..T) are a slice of V's (1..T), the inputs x(k) a read-only strided view of data["x"]
    (no copy); the stacks equal np.stack's and the norms the per-sample gradients'."""
    _, m = module(RNN, DIMS)
    params, data = sample(m, 5, 9)
    factors, memo = m["gradient_factors"](params, data), {}
    stacked = m["_stacked"]
    adj_v = stacked([t[0] for t in factors["V"]], memo)
    x_v = stacked([t[1] for t in factors["V"]], memo)
    adj_w = stacked([t[0] for t in factors["W"]], memo)
    assert np.shares_memory(adj_w, adj_v) and np.shares_memory(x_v, data["x"]) and not x_v.flags.writeable
    for got, terms in ((adj_v, [t[0] for t in factors["V"]]), (x_v, [t[1] for t in factors["V"]]),
                       (adj_w, [t[0] for t in factors["W"]])):
        assert np.array_equal(got, np.stack(terms, axis=1))
    other = np.array(data["x"][:, ::-1])  # same base, but not the arrays of any stack: copied
    assert np.array_equal(stacked([other[:, k] for k in (0, 2, 3)], {}), other[:, [0, 2, 3]])
    norms, per = m["per_sample_gradient_norms"](params, data), m["per_sample_gradient"](params, data)
    for k in m["PARAMS"]:
        assert np.allclose(norms[k], np.linalg.norm(per[k].reshape(5, -1), axis=1), rtol=1e-12, atol=1e-14), k
