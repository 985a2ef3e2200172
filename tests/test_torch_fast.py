"""The torch backend's ``_tanh`` and ``_softmax`` helpers (einderiv.emit.torch.HELPERS): on the CPU
without autograd, on enough entries, they compute tanh and a short-row softmax from cheaper ops
than torch's own kernels; everywhere else they call torch's op.

* which branch runs is read from the torch calls themselves (a ``TorchFunctionMode`` records
  them): the cheaper form from 4096 entries (tanh) and 1024 entries of rows shorter than 16
  (softmax) with grad off on the CPU; torch's op below that, with autograd recording, on the
  meta device, for a long row, and for float16;
* the cheaper forms equal torch's ops to 2 ulp (tanh) and 6 ulp (softmax), relative, in float64
  and float32: tanh on values from 1e-300 to 800 of both signs, ±0, ±inf and NaN; softmax on rows
  from nearly flat to one-hot, with a -inf logit and a row of equal large ones;
* a tanh MLP's module at B = 1024 (both helpers on their cheap branch) gives
  ``per_sample_gradient_norms`` equal to torch.func vmap(grad)'s, the gradient equal to the NumPy
  module's, the same numbers under ``torch.compile(fullgraph=True)``, and an ``objective`` that
  autograd and ``torch.func.grad`` differentiate (the recording branch).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import einderiv
from einderiv.runtime import load

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")

MLP = """
dims n0 = 6, n1 = 8, n2 = 5, c = 10
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
B = 1024  # n1 * B = 8192 and n2 * B = 5120 entries: both tanh on the cheap branch, as the softmax


def _module(backend="torch", order=1):
    return load(einderiv.codegen(einderiv.derive(einderiv.load("mlp.ein", text=MLP), order), backend=backend))


def _calls(fn, *args):
    """(fn's result, the names of the torch functions and tensor methods it called)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class Record(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.names.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    with Record() as rec:
        out = fn(*args)
    assert rec.names  # the mode sees the calls (else the asserts on them below would prove nothing)
    return out, rec.names


def _values(dtype, n):
    """n entries: magnitudes from 1e-300 (float32: its smallest normal) to 800 of both signs, ±0,
    ±inf, NaN."""
    import torch
    tiny = -300 if dtype == torch.float64 else -37
    mags = np.logspace(tiny, np.log10(800.0), (n - 6) // 2)
    x = np.concatenate([mags, -mags, [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0]])
    x = np.concatenate([x, np.linspace(-3, 3, n - len(x))])
    return torch.as_tensor(x, dtype=dtype)


def _ulps(got, want):
    """The largest |got - want| in units of want's precision (relative; NaN where both NaN: 0)."""
    import torch
    eps = torch.finfo(want.dtype).eps
    both_nan = torch.isnan(got) & torch.isnan(want)
    same = (got == want) | both_nan
    err = (got.double() - want.double()).abs() / (want.double().abs() * eps)
    return float(torch.where(same, torch.zeros_like(err), err).max())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tanh_cheap_branch_equals_torch_tanh_to_a_few_ulp(dtype):
    import torch
    dtype = getattr(torch, dtype)
    tanh = _module()["_tanh"]
    x = _values(dtype, 8192)
    with torch.no_grad():
        got, names = _calls(tanh, x)
    assert "expm1_" in names and "tanh" not in names
    assert got.dtype == dtype and got.shape == x.shape
    assert torch.equal(torch.isnan(got), torch.isnan(x))
    assert _ulps(got, torch.tanh(x)) <= 2  # measured 1.7 (float64) and 1.7 (float32) on 400k entries
    assert torch.equal(got[x == np.inf], torch.ones(1, dtype=dtype))
    assert torch.equal(got[x == -np.inf], -torch.ones(1, dtype=dtype))
    assert not torch.signbit(got[(x == 0) & ~torch.signbit(x)]).any()  # tanh(+0) = +0, not -0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softmax_cheap_branch_equals_torch_softmax_to_a_few_ulp(dtype):
    import torch
    dtype = getattr(torch, dtype)
    softmax = _module()["_softmax"]
    g = torch.Generator().manual_seed(0)
    scale = torch.logspace(-3, 2.5, 300, dtype=torch.float64)[:, None]  # rows from nearly flat to one-hot
    a = (torch.randn(300, 10, generator=g, dtype=torch.float64) * scale).to(dtype)
    a[0, 3] = -np.inf  # one impossible class: probability exactly 0
    a[1] = 700.0  # a row of equal, large logits: 1/10 each, no overflow
    with torch.no_grad():
        got, names = _calls(softmax, a, 1)
    assert "amax" in names and "softmax" not in names
    want = torch.softmax(a, dim=1)
    assert got.dtype == dtype and got.shape == a.shape
    assert float(got[0, 3]) == 0.0 and torch.allclose(got[1], torch.full((10,), 0.1, dtype=dtype))
    assert _ulps(got, want) <= 6  # measured up to 4.7: both round exp and the sum
    assert float((got.double().sum(1) - 1).abs().max()) <= 8 * torch.finfo(dtype).eps


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("grad", [False, True])
def test_batch_last_branches_equal_torch_ops(dtype, grad):
    """On a transposed matrix (the layout of einderiv.emit.torch_fuse's batch-last products)
    _softmax is torch's softmax along the transpose's first axis and _rownorm the square root of
    vecdot; on a contiguous one each is torch's own op.  Both equal torch's ops on the same
    numbers (softmax to 4 ulp, norm to 2 ulp), keep the view's shape, and record for autograd."""
    import torch
    dtype = getattr(torch, dtype)
    mod = _module()
    softmax, rownorm = mod["_softmax"], mod["_rownorm"]
    g = torch.Generator().manual_seed(1)
    scale = torch.logspace(-3, 2, 700, dtype=torch.float64)
    view = (torch.randn(10, 700, generator=g, dtype=torch.float64) * scale).to(dtype).T  # (700, 10), batch last
    view.requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        got, names = _calls(softmax, view, 1)
        assert "softmax" in names and "amax" not in names and "contiguous" not in names
        # two kernels: measured 2.3 ulp (float64), 1.3 (float32)
        assert got.shape == view.shape and _ulps(got.detach(), torch.softmax(view.detach().contiguous(), 1)) <= 4
        norm, names = _calls(rownorm, view)
        assert "linalg_vecdot" in names and "linalg_vector_norm" not in names
        want = torch.linalg.vector_norm(view.detach().contiguous(), dim=-1)
        assert norm.shape == (700,) and _ulps(norm.detach(), want) <= 2
        _, names = _calls(rownorm, view.detach().contiguous())
        assert "linalg_vector_norm" in names and "linalg_vecdot" not in names
    if grad:  # autograd through both: d‖u‖/du = u / ‖u‖
        (d,) = torch.autograd.grad(rownorm(view).sum() + softmax(view, 1)[:, 0].sum(), view)
        p = torch.softmax(view.detach(), 1)
        want = view.detach() / want[:, None] + p[:, :1] * (torch.eye(10, dtype=dtype)[0] - p)
        assert torch.allclose(d, want, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)


def test_helpers_call_torch_op_where_the_cheap_form_does_not_pay_or_cannot_run():
    import torch
    mod = _module()
    tanh, softmax = mod["_tanh"], mod["_softmax"]
    big, rows = torch.randn(64, 128, dtype=torch.float64), torch.randn(256, 10, dtype=torch.float64)
    cases = {  # (function, argument list, grad enabled)
        "few entries": (tanh, [big[:4]], False),
        "autograd recording": (tanh, [big.clone().requires_grad_()], True),
        "meta device": (tanh, [big.to("meta")], False),
        "float16": (tanh, [big.half()], False),
        "softmax few entries": (softmax, [rows[:50], 1], False),
        "softmax long rows": (softmax, [big, 1], False),
        "softmax not the last axis": (softmax, [rows.T.contiguous(), 0], False),
        "softmax autograd recording": (softmax, [rows.clone().requires_grad_(), 1], True),
        "softmax meta device": (softmax, [rows.to("meta"), 1], False),
    }
    for what, (fn, args, grad) in cases.items():
        with torch.set_grad_enabled(grad):
            got, names = _calls(fn, *args)
        op = "tanh" if fn is tanh else "softmax"
        assert op in names and "expm1_" not in names and "amax" not in names, what
        want = getattr(torch, op)(*args) if op == "tanh" else torch.softmax(args[0], dim=args[1])
        if got.device.type != "meta":
            assert torch.equal(got, want), what
    # autograd through the recording branch: the derivative of tanh is 1 - tanh²
    x = big.clone().requires_grad_()
    (g,) = torch.autograd.grad(tanh(x).sum(), x)
    assert torch.allclose(g, 1 - torch.tanh(x.detach()) ** 2, rtol=1e-14, atol=1e-15)


def _problem(mod, dtype, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    params = {k: torch.randn(s, generator=g, dtype=torch.float64) / np.sqrt(s[1]) for k, s in mod["PARAMS"].items()}
    x = 2 * torch.randn((B,) + mod["INPUTS"]["x"], generator=g, dtype=torch.float64)
    c = mod["INPUTS"]["y"][0]
    y = torch.eye(c, dtype=torch.float64)[torch.randint(0, c, (B,), generator=g)]
    cast = getattr(torch, dtype)
    return {k: v.to(cast) for k, v in params.items()}, {"x": x.to(cast), "y": y.to(cast)}


def test_large_batch_norms_equal_vmap_grad_and_gradient_equals_numpy():
    import torch
    import torch.func
    mod, ref = _module(), _module("numpy")
    params, data = _problem(mod, "float64")
    _, names = _calls(mod["per_sample_gradient_norms"], params, data)
    # both tanh on the cheap branch; the softmax along the first axis of the batch-last logits
    assert names.count("expm1_") == 2 and "amax" not in names and names.count("softmax") == 1
    Ws = [params[n] for n in mod["PARAMS"]]

    def loss(W, xb, yb):
        h = torch.tanh(torch.tanh(xb @ W[0].T) @ W[1].T)
        p = h @ W[2].T
        return torch.logsumexp(p, dim=-1) - (yb * p).sum(-1)
    per_sample = torch.func.vmap(torch.func.grad(lambda W, xb, yb: loss(W, xb[None], yb[None])[0]),
                                 in_dims=(None, 0, 0))(Ws, data["x"], data["y"])
    norms = mod["per_sample_gradient_norms"](params, data)
    for n, g in zip(mod["PARAMS"], per_sample):
        assert torch.allclose(norms[n], g.reshape(B, -1).norm(dim=1), rtol=1e-12, atol=1e-14), n
    np_params = {k: v.numpy() for k, v in params.items()}
    np_data = {k: v.numpy() for k, v in data.items()}
    want, got = ref["gradient"](np_params, np_data), mod["gradient"](params, data)
    want_norms = ref["per_sample_gradient_norms"](np_params, np_data)
    for n in mod["PARAMS"]:
        np.testing.assert_allclose(got[n].numpy(), want[n], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(norms[n].numpy(), want_norms[n], rtol=1e-12, atol=1e-14)


def test_large_batch_float32_and_torch_compile():
    import torch
    mod = _module()
    p64, d64 = _problem(mod, "float64")
    p32, d32 = _problem(mod, "float32")
    want = mod["per_sample_gradient_norms"](p64, d64)
    got = mod["per_sample_gradient_norms"](p32, d32)
    for n in want:
        assert got[n].dtype == torch.float32
        assert float(((got[n].double() - want[n]) / want[n]).abs().max()) < 1e-4, n
    for params, data, tol in ((p64, d64, 1e-12), (p32, d32, 1e-5)):
        for fn in ("per_sample_gradient_norms", "gradient"):
            eager = mod[fn](params, data)
            compiled = torch.compile(mod[fn], backend="aot_eager", fullgraph=True)(params, data)
            for n in eager:
                assert torch.allclose(compiled[n], eager[n], rtol=tol, atol=tol * 1e-2), (fn, n)


def test_large_batch_objective_records_for_autograd_and_torch_func():
    import torch
    import torch.func
    mod = _module()
    params, data = _problem(mod, "float64")
    want = mod["gradient"](params, data)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    auto = torch.autograd.grad(mod["objective"](leaves, data).mean(), list(leaves.values()))
    func = torch.func.grad(lambda p: mod["objective"](p, data).mean())(params)
    for k, a in zip(leaves, auto):
        assert torch.allclose(a, want[k], rtol=1e-12, atol=1e-14), k
        assert torch.allclose(func[k], want[k], rtol=1e-12, atol=1e-14), k
