"""The straight-line public functions (einderiv.emit.straight) and the liveness pass
(einderiv.emit.liveness): gradient, hvp and the per-sample functions as one body of locals,
the objective's value not computed where it is not read, each local array deleted after its
last read — checked by numbers (hand-written backprop and R-operator, central differences), by
the deletions in the source, and by the peak memory against hand-written backprop."""
from __future__ import annotations

import ast
import tracemalloc

import numpy as np
import pytest

from einderiv.calculus.derive import derive
from einderiv.emit.kernel import Frame, Free, Return, When
from einderiv.emit.kernel_build import build
from einderiv.emit.kernel_context import Context
from einderiv.ir.heap import paused
from einderiv.emit.kernel_statements import lower_module
from einderiv.emit.liveness import free_dead, reads
from einderiv.emit.numpy import generate
from einderiv.emit.straight import straighten
from einderiv.frontend.check import load as load_network
from einderiv.numcheck import check, load

STRAIGHT = ("gradient", "per_sample_gradient", "gradient_factors", "per_sample_gradient_norms", "hvp",
            "ggn_diagonal")


def mlp_text(d_in, h, L, c, acts=None) -> str:
    """An L-hidden-layer MLP (tanh unless ``acts`` says otherwise) with softmax cross-entropy."""
    acts = acts or ["tanh"] * L
    dims = [d_in] + [h] * L + [c]
    lines = ["dims " + ", ".join(f"n{k} = {w}" for k, w in enumerate(dims)), "input x^i : n0", f"label y^l : n{L + 1}"]
    lines += [f"weight W{k}^j_i : n{k}, n{k - 1}" for k in range(1, L + 2)]
    prev = "x"
    for k in range(1, L + 1):
        lines.append(f"v{k}^j = {acts[k - 1]}(W{k}^j_i {prev}^i)")
        prev = f"v{k}"
    lines += [f"p^l = W{L + 1}^l_j {prev}^j", "f = softmax_cross_entropy(p, y)"]
    return "\n".join(lines) + "\n"


def problem(d_in, h, L, c, B, seed=0):
    rng = np.random.default_rng(seed)
    dims = [d_in] + [h] * L + [c]
    params = {f"W{k}": rng.normal(0, 1 / np.sqrt(dims[k - 1]), (dims[k], dims[k - 1])) for k in range(1, L + 2)}
    return params, {"x": rng.normal(size=(B, d_in)), "y": np.eye(c)[rng.integers(0, c, B)]}


def _forward(Ws, x):
    acts = [x]
    for W in Ws[:-1]:
        acts.append(np.tanh(acts[-1] @ W.T))
    p = acts[-1] @ Ws[-1].T
    e = np.exp(p - p.max(axis=1, keepdims=True))
    return acts, e / e.sum(axis=1, keepdims=True)


def backprop(params, data):
    """Hand-written batch-mean matmul backprop of the tanh MLP."""
    Ws = [params[f"W{k}"] for k in range(1, len(params) + 1)]
    acts, s = _forward(Ws, data["x"])
    d = (s - data["y"]) / data["x"].shape[0]
    grads = [None] * len(Ws)
    for k in range(len(Ws) - 1, -1, -1):
        grads[k] = d.T @ acts[k]
        if k:
            d = (d @ Ws[k]) * (1 - acts[k] ** 2)
    return {f"W{k + 1}": g for k, g in enumerate(grads)}


def r_operator(params, data, vector):
    """Hand-written batch-mean Hessian-vector product (Pearlmutter's R-operator)."""
    Ws = [params[f"W{k}"] for k in range(1, len(params) + 1)]
    Vs = [vector[f"W{k}"] for k in range(1, len(params) + 1)]
    x, y = data["x"], data["y"]
    acts, s = _forward(Ws, x)
    racts = [np.zeros_like(x)]
    for k, (W, V) in enumerate(zip(Ws[:-1], Vs[:-1])):
        racts.append((1 - acts[k + 1] ** 2) * (racts[-1] @ W.T + acts[k] @ V.T))
    rp = racts[-1] @ Ws[-1].T + acts[-1] @ Vs[-1].T
    g, rg = (s - y) / len(x), (s * rp - s * (s * rp).sum(axis=1, keepdims=True)) / len(x)
    out = [None] * len(Ws)
    for k in range(len(Ws) - 1, -1, -1):
        out[k] = rg.T @ acts[k] + g.T @ racts[k]
        if k:
            ga, rga, da = g @ Ws[k], rg @ Ws[k] + g @ Vs[k], 1 - acts[k] ** 2
            g, rg = ga * da, rga * da - 2 * acts[k] * racts[k] * ga
    return {f"W{k + 1}": v for k, v in enumerate(out)}


@pytest.fixture(scope="module")
def tanh_mlp():
    net = load_network("mlp.ein", mlp_text(6, 5, 3, 4))
    d = derive(net, 2, expanded=False)
    return d, load(generate(d))


def _body(source: str, name: str) -> ast.FunctionDef:
    return next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name)


def _close(got, want):
    assert got.keys() == want.keys()
    for k in want:
        assert np.max(np.abs(got[k] - want[k])) <= 1e-12 * max(1.0, np.max(np.abs(want[k]))), k


# ------------------------------------------------------------------ numbers
def test_gradient_and_hvp_equal_hand_written_backprop_and_r_operator(tanh_mlp):
    _, mod = tanh_mlp
    params, data = problem(6, 5, 3, 4, 9)
    vector = {k: np.random.default_rng(1).normal(size=v.shape) for k, v in params.items()}
    _close(mod["gradient"](params, data), backprop(params, data))
    _close(mod["hvp"](params, data, vector), r_operator(params, data, vector))
    psg = mod["per_sample_gradient"](params, data)
    _close({k: v.mean(axis=0) for k, v in psg.items()}, backprop(params, data))
    norms = mod["per_sample_gradient_norms"](params, data)
    _close(norms, {k: np.sqrt((v.reshape(9, -1) ** 2).sum(axis=1)) for k, v in psg.items()})


def test_hvp_is_the_derivative_of_the_gradient_by_central_differences(tanh_mlp):
    _, mod = tanh_mlp
    params, data = problem(6, 5, 3, 4, 7, seed=3)
    vector = {k: np.random.default_rng(4).normal(size=v.shape) for k, v in params.items()}
    eps = 1e-5
    up = mod["gradient"]({k: params[k] + eps * vector[k] for k in params}, data)
    down = mod["gradient"]({k: params[k] - eps * vector[k] for k in params}, data)
    hv = mod["hvp"](params, data, vector)
    for k in params:
        fd = (up[k] - down[k]) / (2 * eps)
        assert np.max(np.abs(hv[k] - fd)) < 1e-7 * max(1.0, np.max(np.abs(fd))), k
        assert np.max(np.abs(fd)) > 1e-3  # not vacuous


def test_smooth_mixed_activations_pass_the_finite_difference_check():
    net = load_network("mix.ein", mlp_text(4, 5, 3, 3, ["sigmoid", "tanh", "softplus"]))
    report = check(derive(net, 2, expanded=False), seed=2, batch=4)
    assert report.ok, report.format()
    names = {r.name.split()[0] for r in report.rows}
    assert {"gradient", "hvp"} <= names


# ------------------------------------------------------------------ the straight functions
def test_straight_functions_read_no_dict_call_no_quantity_and_skip_the_objective(tanh_mlp):
    d, _ = tanh_mlp
    src = generate(d)
    for name in STRAIGHT:
        fn = _body(src, name)
        text = ast.unparse(fn)
        calls = {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert calls <= {"_softmax"}, (name, calls)  # no _forward, no _adj_…(t)
        assert "t[" not in text and "_logsumexp" not in text, name  # no dict t; f is not computed
    assert "_logsumexp" in ast.unparse(_body(src, "_forward"))  # (the objective still is, where asked)


def test_gradient_interleaves_blocks_with_back_propagation(tanh_mlp):
    d, _ = tanh_mlp
    lines = ast.unparse(_body(generate(d), "gradient")).splitlines()
    at = {k: next(i for i, line in enumerate(lines) if line.strip().startswith(k + " =")) for k in
          ("grad_W4", "adj_v3", "grad_W1", "adj_z_v1")}
    assert at["grad_W4"] < at["adj_v3"] and at["adj_z_v1"] < at["grad_W1"]


def _deleted_and_read(fn: ast.FunctionDef):
    """Per top-level statement: the names it deletes, the names it reads, the names it assigns."""
    out = []
    for st in fn.body:
        dels = {t.id for n in ast.walk(st) if isinstance(n, ast.Delete) for t in n.targets}
        loads = {n.id for n in ast.walk(st) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        stores = {n.id for n in ast.walk(st) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        out.append((dels, loads, stores))
    return out


@pytest.mark.parametrize("name", ["gradient", "hvp", "per_sample_gradient_norms", "ggn_diagonal"])
def test_every_computed_array_is_deleted_after_its_last_read(tanh_mlp, name):
    d, _ = tanh_mlp
    fn = _body(generate(d), name)
    rows = _deleted_and_read(fn)
    returned = {n.id for n in ast.walk(fn.body[-1]) if isinstance(n, ast.Name)}
    inputs = {t.targets[0].id for t in fn.body if isinstance(t, ast.Assign) and isinstance(t.targets[0], ast.Name)
              and (isinstance(t.value, ast.Subscript) and isinstance(t.value.value, ast.Name)
                   and t.value.value.id in ("params", "data", "vector") or t.targets[0].id == "B")}
    computed = set().union(*(stores for _, _, stores in rows)) - inputs
    deleted = set()
    for k, (dels, _, _) in enumerate(rows):
        for v in dels:
            assert not any(v in loads for _, loads, _ in rows[k + 1:]), f"{name}: {v} read after del"
        deleted |= dels
    assert computed - returned == deleted, (name, computed - returned - deleted)
    assert len(deleted) >= 8


def test_liveness_pass_frees_after_the_last_read_in_the_kernel():
    net = load_network("mlp.ein", mlp_text(3, 4, 2, 3))
    with paused():
        ctx = Context(derive(net, 2, expanded=False))
        module = free_dead(lower_module(ctx, straighten(build(ctx), ctx)))
    fns = {f.name: f for f in module.items if getattr(f, "frame", None) is Frame.LOCALS}
    assert set(fns) == set(STRAIGHT) | {"hessian"}  # the Hessian: per requested block, under tests
    for fn in fns.values():
        freed = set()
        for st in fn.body:
            assert not freed & set(reads(st)), (fn.name, st)
            for free in [st] if isinstance(st, Free) else st.body if isinstance(st, When) else []:
                if isinstance(free, Free):
                    freed |= set(free.names)
        assert isinstance(fn.body[-1], Return) and freed


# ------------------------------------------------------------------ memory
def _peak(fn) -> int:
    fn()  # (first call: anything cached on first use is not counted)
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gradient_peak_memory_is_that_of_hand_written_backprop():
    """Every activation and adjoint alive to the end would be about 2× the hand-written peak at
    this size; freed after its last use, the generated gradient needs no more than it (≤ 1.2×)."""
    d_in, h, L, c, B = 32, 64, 3, 10, 2048
    mod = load(generate(derive(load_network("mlp.ein", mlp_text(d_in, h, L, c)), 1)))
    params, data = problem(d_in, h, L, c, B)
    _close(mod["gradient"](params, data), backprop(params, data))
    ours, hand = _peak(lambda: mod["gradient"](params, data)), _peak(lambda: backprop(params, data))
    assert ours <= 1.2 * hand, (ours / 2**20, hand / 2**20)

    def kept():  # the same kernels with every tensor kept in the dict t until the end
        t = mod["_forward"](params, data)
        for q in ("adj_p", "adj_v3", "adj_z_v3", "adj_v2", "adj_z_v2", "adj_v1", "adj_z_v1"):
            t[q] = mod["_" + q](t)
        return t
    assert ours < 0.75 * _peak(kept)  # what freeing saves is measurable


# ------------------------------------------------------------------ the batch mean, seeded once
def test_gradient_and_hvp_divide_the_top_adjoints_by_B_once(tanh_mlp):
    """As hand-written backprop: (s − y)/B at the top, not a division of every h × h block."""
    d, _ = tanh_mlp
    src = generate(d)
    grad, hvp = ast.unparse(_body(src, "gradient")), ast.unparse(_body(src, "hvp"))
    assert "adj_p = (softmax_p - y) / B" in grad and grad.count("/ B") == 1
    assert hvp.count("/ B") == 2 and "radj_p = (" in hvp  # the adjoint and the R-adjoint
    for name in ("per_sample_gradient", "gradient_factors", "per_sample_gradient_norms"):
        assert "/ B" not in ast.unparse(_body(src, name)), name


def test_a_term_without_a_batched_adjoint_keeps_the_division_per_block():
    """A weight penalty's gradient 2·0.01·W1 is no batch sum: seeding 1/B would scale it too, so
    the blocks divide their batch sums instead — and the numbers stay right."""
    text = mlp_text(3, 4, 1, 3).replace("f = softmax_cross_entropy(p, y)",
                                         "r = W1^j_i W1^j_i\nf = softmax_cross_entropy(p, y) + 0.01 r")
    d = derive(load_network("reg.ein", text), 2, expanded=False)
    grad = ast.unparse(_body(generate(d), "gradient"))
    assert "adj_p = softmax_p - y" in grad and "grad_W1 = adj_z_v1.T @ x / B + 2 * adj_r * W1" in grad
    report = check(d, seed=1, batch=5)
    assert report.ok, report.format()
