"""The torch backend's straight-line first-order functions (einderiv.emit.torch_fuse) and
``torch.no_grad()``: what runs is what the docs say, and the numbers are autograd's.

* ``per_sample_gradient_norms`` of a tanh MLP is one straight body: no forward dict, no objective,
  the norm of each dense layer's gradient as ‖δ_b‖ ‖x_b‖ (vector norms, no B × P array) — and it
  equals the norms of torch.func's per-sample gradients (vmap(grad)) in float64;
* ``gradient`` equals torch autograd's, for tanh and for a sigmoid/softplus network (smooth);
* derivative functions record no graph when the inputs require grad; ``objective`` does, and its
  autograd gradient equals the module's;
* a module the pass cannot follow (a template's loops) is printed as before and still right.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

import einderiv
from einderiv.runtime import load

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")

ROOT = pathlib.Path(__file__).resolve().parents[1]

TANH_MLP = """
dims n0 = 6, n1 = 5, n2 = 4, c = 3
input x^i : n0
label y^l : c
weight W1^j_i : n1, n0
weight W2^k_j : n2, n1
weight W3^l_k : c, n2
v1^j = tanh(W1^j_i x^i)
v2^k = tanh(W2^k_j v1^j)
p^l = W3^l_k v2^k
f = softmax_cross_entropy(p, y)
"""

SMOOTH_MLP = """
dims n0 = 4, n1 = 5, n2 = 3, c = 2
input x^i : n0
label y^l : c
weight W1^j_i : n1, n0
weight W2^k_j : n2, n1
weight W3^l_k : c, n2
v1^j = sigmoid(W1^j_i x^i)
v2^k = softplus(W2^k_j v1^j)
p^l = W3^l_k v2^k
f = softmax_cross_entropy(p, y)
"""


def _source(text, order=1):
    return einderiv.codegen(einderiv.derive(einderiv.load("net.ein", text=text), order), backend="torch")


def _function(src, name):
    """The source of one top-level function of a generated module."""
    m = re.search(rf"^def {name}\(.*?(?=^\S)", src + "\nEND", re.S | re.M)
    assert m, name
    return m.group(0)


def _inputs(mod, batch=7, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    params = {k: 0.7 * torch.randn(s, generator=g, dtype=torch.float64) for k, s in mod["PARAMS"].items()}
    x = torch.randn((batch,) + mod["INPUTS"]["x"], generator=g, dtype=torch.float64)
    c = mod["INPUTS"]["y"][0]
    y = torch.eye(c, dtype=torch.float64)[torch.randint(0, c, (batch,), generator=g)]
    return params, {"x": x, "y": y}


def _loss(activations):
    """The network's per-sample objective in plain torch (for autograd and torch.func)."""
    import torch

    def f(Ws, x, y):
        h = x
        for W, act in zip(Ws[:-1], activations):
            h = act(h @ W.T)
        p = h @ Ws[-1].T
        return torch.logsumexp(p, dim=-1) - (y * p).sum(-1)
    return f


def test_norms_are_one_straight_body_of_vector_norms():
    body = _function(_source(TANH_MLP), "per_sample_gradient_norms")
    assert "_forward(" not in body and "t[" not in body and "_adj" not in body  # inlined
    assert "logsumexp" not in body  # the objective's value is not computed
    assert "einsum" not in body.replace("# einsum", "")
    assert body.count("_rownorm(") == 6  # ‖δ‖ and ‖x‖ of each of 3 layers
    assert body.count("torch.ops.aten.tanh_backward(") == 2
    assert "with torch.no_grad():" in body
    # the three forward and two backward products through _rows_times (the batch axis last from
    # 256 samples), no other product
    assert body.count("_rows_times(") == 5 and " @ " not in body


def test_batch_last_products_only_where_results_are_not_per_sample_arrays():
    """per_sample_gradient and gradient_factors return per-sample arrays: their products keep the
    batch axis first; gradient, the norms and hvp (its sums of products too) take theirs through
    _rows_times; every result of every function is a contiguous tensor, on both sides of the
    threshold, and the functions agree with each other."""
    import torch
    src = _source(TANH_MLP, order=2)
    for name in ("per_sample_gradient", "gradient_factors"):
        assert "_rows_times(" not in _function(src, name), name
    for name in ("gradient", "per_sample_gradient_norms", "hvp"):
        assert "_rows_times(" in _function(src, name), name
    mod = load(src)
    for batch in (7, 300):  # both sides of _rows_times' threshold
        params, data = _inputs(mod, batch=batch)
        vector = {k: torch.ones_like(v) for k, v in params.items()}
        fns = ("gradient", "per_sample_gradient_norms", "per_sample_gradient", "gradient_factors", "hvp", "ggn_diagonal")
        outs = {fn: mod[fn](params, data, vector) if fn == "hvp" else mod[fn](params, data) for fn in fns}
        for fn, out in outs.items():
            assert all(t.is_contiguous() for t in _flat(out)), (fn, batch)
        squares = {n: (g.reshape(batch, -1) ** 2).sum(1) for n, g in outs["per_sample_gradient"].items()}
        for n, g in outs["per_sample_gradient"].items():
            assert torch.allclose(outs["gradient"][n], g.mean(0), rtol=1e-12, atol=1e-15), (n, batch)
            assert torch.allclose(outs["per_sample_gradient_norms"][n] ** 2, squares[n], rtol=1e-12, atol=1e-15)


def test_rows_times_switches_layout_at_256_rows():
    """_rows_times(x, w) is x @ w: below 256 rows as written, from 256 rows with the batch axis last
    (a transposed view of w.T @ x.T) — the same numbers either way, for w a weight or its transpose."""
    import torch
    rows_times = load(_source(TANH_MLP))["_rows_times"]
    g = torch.Generator().manual_seed(2)
    w = torch.randn(5, 6, generator=g, dtype=torch.float64)
    for n in (255, 256, 1000):
        x = torch.randn(n, 6, generator=g, dtype=torch.float64)
        for right in (w.T, w.T.contiguous()):
            got = rows_times(x, right)
            assert got.is_contiguous() == (n < 256) and got.T.is_contiguous() == (n >= 256)
            assert torch.allclose(got, x @ right, rtol=1e-14, atol=1e-15)


def test_norms_equal_torch_func_per_sample_gradients():
    import torch
    import torch.func
    mod = load(_source(TANH_MLP))
    params, data = _inputs(mod)
    names = list(mod["PARAMS"])
    loss = _loss([torch.tanh, torch.tanh])
    per_sample = torch.func.vmap(torch.func.grad(lambda W, xb, yb: loss(W, xb[None], yb[None])[0]),
                                 in_dims=(None, 0, 0))([params[n] for n in names], data["x"], data["y"])
    got = mod["per_sample_gradient_norms"](params, data)
    for n, g in zip(names, per_sample):
        want = g.reshape(g.shape[0], -1).norm(dim=1)
        assert got[n].shape == want.shape
        assert torch.allclose(got[n], want, rtol=1e-12, atol=1e-14), n
    grads = mod["per_sample_gradient"](params, data)
    factors = mod["gradient_factors"](params, data)
    for n, g in zip(names, per_sample):
        assert torch.allclose(grads[n], g, rtol=1e-12, atol=1e-14), n
        assert torch.allclose(mod["expand_factors"](n, factors[n]), g, rtol=1e-12, atol=1e-14), n


@pytest.mark.parametrize("text, acts", [(TANH_MLP, ("tanh", "tanh")), (SMOOTH_MLP, ("sigmoid", "softplus"))])
def test_gradient_and_objective_equal_autograd(text, acts):
    import torch
    mod = load(_source(text))
    params, data = _inputs(mod, seed=3)
    names = list(mod["PARAMS"])
    fns = [getattr(torch.nn.functional, a) if a == "softplus" else getattr(torch, a) for a in acts]
    Ws = [params[n].clone().requires_grad_() for n in names]
    f = _loss(fns)(Ws, data["x"], data["y"])
    assert torch.allclose(mod["objective"](params, data), f.detach(), rtol=1e-12, atol=1e-14)
    want = torch.autograd.grad(f.mean(), Ws)
    got = mod["gradient"](params, data)
    for n, w in zip(names, want):
        assert torch.allclose(got[n], w, rtol=1e-11, atol=1e-14), n


def test_inputs_that_require_grad_record_no_graph_except_the_objective():
    import torch
    mod = load(_source(TANH_MLP, order=2))
    params, data = _inputs(mod)
    plain = {fn: mod[fn](params, data) for fn in ("gradient", "per_sample_gradient_norms", "hessian")}
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    for fn, want in plain.items():
        got = mod[fn](leaves, data)
        assert all(not v.requires_grad and v.grad_fn is None for v in got.values()), fn
        assert all(torch.equal(got[k], want[k]) for k in want), fn
    # the objective records: autograd through it gives the module's own gradient
    f = mod["objective"](leaves, data).mean()
    assert f.requires_grad
    auto = torch.autograd.grad(f, [leaves[k] for k in params])
    for k, a in zip(params, auto):
        assert torch.allclose(a, plain["gradient"][k], rtol=1e-12, atol=1e-14), k


def test_looped_module_is_left_as_it_was_and_checks():
    """A layer template at depth 4 is written with a loop over its layers (``_backward(t)``):
    the pass leaves those functions as they were, and every function still passes the check
    against finite differences and the NumPy module."""
    net = einderiv.load(str(ROOT / "derivations" / "deep_template_tanh.ein"), depth={"n": 4})
    derivation = einderiv.derive(net, 1)
    body = _function(einderiv.codegen(derivation, backend="torch"), "per_sample_gradient_norms")
    assert "t = _forward(params, data)" in body and "_backward(t)" in body  # not straightened
    report = einderiv.check(derivation, backend="torch")
    assert report.rows and report.ok, report.format()
    agree = [r for r in report.rows if r.name.endswith("= numpy")]
    assert agree and max(r.error for r in agree) <= 1e-10


def _flat(result):
    """The tensors of a result (dicts in key order, lists and tuples of factors)."""
    if isinstance(result, dict):
        return [a for k in sorted(result) for a in _flat(result[k])]
    if isinstance(result, (list, tuple)):
        return [a for v in result for a in _flat(v)]
    return [result]


def test_source_is_deterministic():
    assert _source(TANH_MLP, order=2) == _source(TANH_MLP, order=2)


@pytest.mark.slow  # loads the benchmark script with torch, jax and backpack: ~5 s of CPU; .ci/run runs it
def test_benchmark_device_run_does_not_assume_a_gpu(tmp_path):
    """``benchmarks/run.py --device cuda`` on a machine without one: one line naming the device,
    exit 1, nothing written (the table is only ever measured, never fixed text)."""
    import subprocess
    import sys

    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: benchmarks/run.py --device cuda would run")
    out = tmp_path / "cuda.md"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--device", "cuda", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().startswith("--device cuda: torch cannot use it (")
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not out.exists()


def test_straight_functions_trace_under_torch_compile_and_run_on_meta():
    """tanh_backward, vecdot and vector_norm trace without a graph break (fullgraph), give the eager
    numbers, and find their operands on the inputs' device (meta: a CPU array would fail)."""
    import torch
    mod = load(_source(TANH_MLP))
    params, data = _inputs(mod)
    for fn in ("objective", "gradient", "per_sample_gradient_norms", "gradient_factors"):
        got = torch.compile(mod[fn], backend="aot_eager", fullgraph=True)(params, data)
        want = mod[fn](params, data)
        assert len(_flat(got)) == len(_flat(want)) > 0
        for g, w in zip(_flat(got), _flat(want)):
            assert torch.allclose(g, w, rtol=1e-12, atol=1e-14), fn
    meta = ({k: v.to("meta") for k, v in params.items()}, {k: v.to("meta") for k, v in data.items()})
    norms = mod["per_sample_gradient_norms"](*meta)
    assert all(v.device.type == "meta" and v.shape == (7,) for v in norms.values())
