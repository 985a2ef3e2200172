"""Index arithmetic beyond ``x^{t+a}`` (issue 12): constant offsets and signs (``x^{t+1}``,
``x^{t-1+a}``, ``x^{t-a}``), dilation (``x^{t+2a}``, ``x^{2s+3a}``), declared zero padding
(``padded x, v1``: "same" and causal convolutions, a stack of them) and pooling windows
(``max_q(v^{2s+q})``) — through every stage:

* bad input: one line ``file:line:col``, what is wrong and what was expected (table below);
* numbers: ``einderiv check`` (central differences of every gradient and Hessian block at
  order 2, float64), the independent reference evaluator of ``tests/reference.py`` (a dense
  selection tensor per window, never the generated views), and torch's own ``conv1d`` with
  ``padding``/``dilation``/``stride`` differentiated twice by ``torch.func.hessian`` — an
  implementation that shares nothing with einderiv;
* the structure report against numeric ranks (``test_structure_ranks.check_rows``);
* printers: the index as written (``x^{t+2a-1}``), deterministic bytes.
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import einderiv
from einderiv.errors import EinderivError, IndexError_, NameError_, ParseError, ShapeError
from einderiv.numcheck import load as load_module
from test_reference import assert_agrees, compare
from test_structure_ranks import check_rows

HEAD = """dims N = 6, A = 2, c = 2
input x^u : N
label y^l : c
weight K_a : A
"""

#: (snippet after HEAD (line 5 on), exception class, exact message)
ERRORS = [
    ("v^t = K_a x^{t-1+a}\nf = v^t v^t", ShapeError,
     "t.ein:5:14: x^{t-1+a} reads x axis 1 at position -1 (t = 0), outside the axis, and x is not padded; "
     "expected reads inside the axis, or 'padded x' for zeros outside it"),
    ("v^t = K_a x^{t-a}\nf = v^t v^t", ShapeError,
     "t.ein:5:14: x^{t-a} reads x axis 1 at position 1 - A (-1) (t = 0), outside the axis, and x is not padded; "
     "expected reads inside the axis, or 'padded x' for zeros outside it"),
    ("v^t = K_a x^{t+0.5a}\nf = v^t v^t", ParseError,
     "t.ein:5:16: the coefficient 0.5 in index arithmetic is not an integer; expected a whole number of "
     "positions, as in x^{t+2a} or x^{t-1}"),
    ("v^t = K_a x^{t+a/2}\nf = v^t v^t", ParseError, None),  # a syntax error: '/' inside braces
    ("v^t = x^{t+b}\nf = v^t v^t", ShapeError,
     "t.ein:5:10: the offset 'b' in x^{t+b} has no size: no other tensor in the definition carries 'b'; "
     "expected one that does, as the kernel does in K_b x^{t+b}, or a stride, whose windows it then "
     "spans (max_b(x^{2t+b}))"),
    ("weight b^t : 5\npadded x\nv^t = K_a x^{t+a} + b^t\nf = v^t v^t", ShapeError,
     "t.ein:7:23: size mismatch for index 't': x^{t+a} axis 1 has size N (6) but b axis 1 has size 5"),
    ("weight b^t : 6\nv^t = b^t K_a x^{t+a}\nf = v^t v^t", ShapeError,
     "t.ein:6:18: position sizes disagree: x^{t+a} has -A + N + 1 (5) positions 't' (valid padding) but b axis 1 "
     "gives 't' size 6; expected one size for a position"),
    ("v^t = K_a x^{t+t}\nf = v^t v^t", IndexError_,
     "t.ein:5:14: index arithmetic in x^{t+t} takes a position and at most one offset index, each once, and "
     "a constant; expected e.g. x^{t+a}, x^{t-1}, x^{2t+3a-1}"),
    ("weight B_b : 2\nv^t = K_a B_b x^{t+a+b}\nf = v^t v^t", IndexError_,
     "t.ein:6:18: index arithmetic in x^{t+a+b} takes a position and at most one offset index, each once, "
     "and a constant; expected e.g. x^{t+a}, x^{t-1}, x^{2t+3a-1}"),
    ("v^t = x^{1+2}\nf = v^t v^t", ParseError,
     "t.ein:5:10: index arithmetic without an index; expected a position plus or minus offsets, as in "
     "x^{t+1} or x^{t+a}"),
    ("v^t = K_a x^{a-t}\nf = v^t v^t", ShapeError,
     "t.ein:5:14: the stride in x^{a-t} must be a positive integer, got -1"),
    ("v^t = x^{t+7}\nf = v^t v^t", ShapeError,
     "t.ein:5:10: x axis 1 has size N (6) but the window x^{t+7} spans 8: no valid position is left (valid "
     "padding needs the window inside the axis; 'padded x' reads zeros outside it)"),
    ("padded q\nf = x^u x^u", NameError_,
     "t.ein:5:8: padded names 'q', which is no tensor; expected a declared or defined tensor: x, y, K, f"),
    ("padded x, x\nf = x^u x^u", NameError_,
     "t.ein:5:11: 'x' is padded twice (first at line 5); expected each tensor once"),
]


@pytest.mark.parametrize("snippet, cls, message", ERRORS, ids=[s.split("\n")[-2][:30] for s, _, _ in ERRORS])
def test_bad_index_arithmetic_is_one_located_line(snippet, cls, message):
    with pytest.raises(cls) as info:
        einderiv.load("t.ein", HEAD + snippet)
    err = info.value
    assert isinstance(err, EinderivError)
    first = str(err).split("\n")[0]
    assert "expected one of: an index" not in first and "K_t x^{t+t}" not in first
    if message is None:
        assert first.startswith("t.ein:5:"), first
        return
    assert first == message
    line, col = (int(v) for v in message.split(":")[1:3])
    assert (err.loc.line, err.loc.column) == (line, col)


def test_the_command_line_exits_2_with_one_line(tmp_path):
    path = tmp_path / "t.ein"
    path.write_text(HEAD + ERRORS[0][0] + "\n")
    run = subprocess.run([sys.executable, "-m", "einderiv.cli", "derive", str(path)], capture_output=True,
                         text=True)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].endswith(ERRORS[0][2].split(": ", 1)[1]), run.stderr
    assert "Traceback" not in run.stderr


# ---------------------------------------------------------------- networks
#: small networks, each with one construct: name → source (smooth activations, so Hessian
#: blocks have curvature of their own)
NETWORKS = {
    "shift": """dims N = 6, c = 2
input x^u : N
label y^l : c
weight w
weight U^l_t : c, 5
v^t = tanh(w x^{t+1} + 1)
p^l = U^l_t v^t
f = softmax_cross_entropy(p, y)
""",
    "back_shift_padded": """dims N = 5, c = 2
input x^u : N
label y^l : c
weight w
weight U^l_t : c, N
padded x
v^t = tanh(w x^{t-1} + x^t)
p^l = U^l_t v^t
f = softmax_cross_entropy(p, y)
""",
    "same_conv_offset": """dims N = 6, A = 3, O = 2, c = 2
input x^u : N
label y^l : c
weight K^o_a : O, A
weight U^l_{o,t} : c, O, N
padded x
v^{o,t} = tanh(K^o_a x^{t-1+a})
p^l = U^l_{o,t} v^{o,t}
f = softmax_cross_entropy(p, y)
""",
    "padded_plain": """dims N = 5, A = 2, O = 2, c = 2
input x^u : N
label y^l : c
weight K^o_a : O, A
weight U^l_{o,t} : c, O, N
padded x
v^{o,t} = tanh(K^o_a x^{t+a})
p^l = U^l_{o,t} v^{o,t}
f = softmax_cross_entropy(p, y)
""",
    "dilated_valid": """dims N = 9, A = 3, O = 2, c = 2
input x^u : N
label y^l : c
weight K^o_a : O, A
weight U^l_{o,t} : c, O, 5
v^{o,t} = sigmoid(K^o_a x^{t+2a})
p^l = U^l_{o,t} v^{o,t}
f = softmax_cross_entropy(p, y)
""",
    "strided_dilated": """dims N = 10, A = 2, O = 2, c = 2
input x^u : N
label y^l : c
weight K^o_a : O, A
weight U^l_{o,s} : c, O, 3       # floor((N - 1 - 1 - 3(A - 1))/2) + 1
v^{o,s} = tanh(K^o_a x^{2s+3a+1})
p^l = U^l_{o,s} v^{o,s}
f = squared_error(p, y)
""",
    "flipped_with_offset": """dims N = 6, A = 3, c = 2
input x^u : N
label y^l : c
weight K^a : A
weight U^l_t : c, 4
v^t = tanh(K^a x^{t-a+2})
p^l = U^l_t v^t
f = softmax_cross_entropy(p, y)
""",
    "causal_stack": """dims N = 6, A = 2, C = 2, H = 2, c = 2
input x^{i,u} : C, N
label y^l : c
weight K1^h_{i,a} : H, C, A
weight K2^g_{h,a} : H, H, A
weight U^l_{g,t} : c, H, N
padded x, v1
v1^{h,t} = tanh(K1^h_{i,a} x^{i,t-a})
v2^{g,t} = tanh(K2^g_{h,a} v1^{h,t-2a})
p^l = U^l_{g,t} v2^{g,t}
f = softmax_cross_entropy(p, y)
""",
    "strided_same_2d": """dims C = 1, H = 5, Wd = 4, O = 2, A = 3, Bk = 3, c = 2
input x^{c,u,w} : C, H, Wd
label y^l : c
weight K^o_{c,a,b} : O, C, A, Bk
weight U^l_{o,u,w} : c, O, 3, 4
padded x
v^{o,u,w} = tanh(K^o_{c,a,b} x^{c,2u+a-1,w+b-1})
p^l = U^l_{o,u,w} v^{o,u,w}
f = softmax_cross_entropy(p, y)
""",
    "pooled": """dims N = 8, A = 3, O = 2, c = 2
input x^u : N
label y^l : c
weight K^o_a : O, A
weight U^l_{o,s} : c, O, 4
padded x
v^{o,t} = tanh(K^o_a x^{t+a-1})
m^{o,s} = max_q(v^{o,2s+q})
p^l = U^l_{o,s} m^{o,s}
f = softmax_cross_entropy(p, y)
""",
}


def load(name: str):
    return einderiv.load(f"{name}.ein", text=NETWORKS[name])


@pytest.mark.parametrize("name", NETWORKS)
def test_every_block_matches_finite_differences(name):
    result = einderiv.check(einderiv.derive(load(name), 2), seed=0)
    assert result.ok, result


@pytest.mark.parametrize("name", NETWORKS)
def test_forward_and_gradient_match_the_independent_reference(name):
    assert_agrees(compare(lambda: load(name), seed=1), name)


@pytest.mark.parametrize("name", ["same_conv_offset", "causal_stack", "pooled"])
def test_structure_rows_against_numeric_ranks(name):
    check_rows(einderiv.derive(load(name), 2), 2, name)


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("name", ["causal_stack", "strided_same_2d", "shift", "flipped_with_offset"])
def test_other_backends_agree(name, backend):
    pytest.importorskip(backend)
    result = einderiv.check(einderiv.derive(load(name), 2), seed=0, backend=backend)
    assert result.ok, result


# ------------------------------------------------------------ against torch's own convolutions
def _torch_objective(name):
    """The network's objective for one sample, written with torch.nn.functional.conv1d/conv2d
    (padding, dilation, stride as torch spells them) — nothing shared with einderiv."""
    import torch
    F = torch.nn.functional

    def ce(p, y):
        return torch.logsumexp(p, 0) - (y * p).sum()

    if name == "causal_stack":  # left zero padding ·d, dilation d
        def f(K1, K2, U, x, y):
            v1 = torch.tanh(F.conv1d(F.pad(x[None], (1, 0)), K1.flip(-1), dilation=1))[0]
            v2 = torch.tanh(F.conv1d(F.pad(v1[None], (2, 0)), K2.flip(-1), dilation=2))[0]
            return ce(torch.einsum("lgt,gt->l", U, v2), y)
        return f, ("K1", "K2", "U")
    if name == "strided_same_2d":  # padding 1, stride (2, 1)
        def f(K, U, x, y):
            v = torch.tanh(F.conv2d(x[None], K, stride=(2, 1), padding=1))[0]
            return ce(torch.einsum("louw,ouw->l", U, v), y)
        return f, ("K", "U")
    if name == "padded_plain":  # zeros after the last entry: x^{t+a} keeps N positions
        def f(K, U, x, y):
            v = torch.tanh(F.conv1d(F.pad(x[None, None], (0, 1)), K[:, None]))[0]
            return ce(torch.einsum("lot,ot->l", U, v), y)
        return f, ("K", "U")
    if name == "dilated_valid":
        def f(K, U, x, y):
            v = torch.sigmoid(F.conv1d(x[None, None], K[:, None], dilation=2))[0]
            return ce(torch.einsum("lot,ot->l", U, v), y)
        return f, ("K", "U")
    raise KeyError(name)


@pytest.mark.parametrize("name", ["causal_stack", "strided_same_2d", "dilated_valid", "padded_plain"])
def test_hessian_blocks_match_torch_conv(name):
    torch = pytest.importorskip("torch")
    f, params = _torch_objective(name)
    mod = load_module(einderiv.codegen(einderiv.derive(load(name), 2)))
    rng = np.random.default_rng(3)
    shapes = {**mod["PARAMS"], **mod["INPUTS"]}
    values = {n: rng.normal(size=s) for n, s in shapes.items()}
    values["y"] = np.eye(shapes["y"][-1])[[1]]  # one sample, a one-hot label
    for n in mod["INPUTS"]:
        if n != "y":
            values[n] = rng.normal(size=(1,) + tuple(shapes[n]))
    theta = {n: values[n] for n in params}
    data = {n: values[n] for n in mod["INPUTS"]}
    t = {n: torch.tensor(v, dtype=torch.float64) for n, v in values.items()}
    args = [t[n] for n in params]
    sample = (t[n][0] for n in mod["INPUTS"] if n != "y")
    x, y = next(sample), t["y"][0]
    hess = torch.autograd.functional.hessian(lambda *a: f(*a, x, y), tuple(args))
    grad = torch.autograd.grad(f(*[a.requires_grad_() for a in args], x, y), args)
    got_grad = mod["gradient"](theta, data)
    got = mod["hessian"](theta, data)
    for i, a in enumerate(params):
        np.testing.assert_allclose(got_grad[a], grad[i].detach().numpy(), rtol=1e-10, atol=1e-12)
        for j, b in enumerate(params):
            want = hess[i][j].numpy()
            block = got[(a, b)] if isinstance(got, dict) else None
            assert block is not None, type(got)
            np.testing.assert_allclose(np.reshape(block, want.shape), want, rtol=1e-9, atol=1e-11,
                                       err_msg=f"{name}: hessian block {a},{b}")


# ------------------------------------------------------------------ printers and kernels
def test_printers_show_the_index_as_written():
    text = einderiv.derivation_text(einderiv.derive(load("strided_dilated"), 1))
    assert "x^{2s+3a+1}" in text
    text = einderiv.derivation_text(einderiv.derive(load("same_conv_offset"), 1))
    assert "x^{t+a-1}" in text and "padded x" in text
    tex = einderiv.latex(einderiv.derive(load("flipped_with_offset"), 1))
    assert re.search(r"x\^\{t-a\+2\}", tex), tex[:2000]
    assert "Zero padding" in einderiv.latex(einderiv.derive(load("causal_stack"), 1))


def test_generated_code_is_deterministic_and_uses_padded_views():
    d = einderiv.derive(load("causal_stack"), 2)
    first = einderiv.codegen(d)
    assert first == einderiv.codegen(einderiv.derive(load("causal_stack"), 2))
    assert "np.pad(" in first and "sliding_window_view" in first and "_shift_view(x, 2, 2, 1, 6, -1, 0, 1, 0)" in first
    # the adjoint of v1 (the second convolution's input) is scattered, one slice per tap: no U×T×A array
    assert "_shift_scatter(" in first and "_shift_array(" not in first and "_window_array(" not in first
    for backend in ("torch", "jax"):
        src = einderiv.codegen(d, backend=backend)
        assert src == einderiv.codegen(einderiv.derive(load("causal_stack"), 2), backend=backend)
        assert "_shift_view" in src


def test_zero_padding_reads_zeros_outside_the_axis():
    """v^t = x^{t-1}: the first position reads the zero before x, the last the last entry."""
    net = einderiv.load("t.ein", text="dims N = 4\ninput x^u : N\nweight w\npadded x\n"
                                      "v^t = w x^{t-1}\nf = v^t v^t\n")
    mod = load_module(einderiv.codegen(einderiv.derive(net, 1)))
    x = np.arange(1.0, 9.0).reshape(2, 4)
    v = mod["_forward"]({"w": np.array(1.0)}, {"x": x})["v"]
    np.testing.assert_array_equal(v, [[0, 1, 2, 3], [0, 5, 6, 7]])


# ------------------------------------------------------------ the generated helpers, every backend
def _helpers(backend: str) -> dict:
    """The window helpers of one backend's generated modules, as functions on NumPy arrays."""
    if backend == "numpy":
        from einderiv.emit.numpy_helpers import HELPERS
        space = {"np": np}
        wrap, back = (lambda a: a), np.asarray
    elif backend == "torch":
        torch = pytest.importorskip("torch")
        from einderiv.emit.torch import HELPERS
        space = {"torch": torch}
        wrap, back = (lambda a: torch.tensor(a, dtype=torch.float64)), (lambda a: a.numpy())
    else:
        jnp = pytest.importorskip("jax.numpy")
        import jax
        jax.config.update("jax_enable_x64", True)
        from einderiv.emit.jax import HELPERS
        space = {"jnp": jnp}
        wrap, back = jnp.asarray, np.asarray
    for name in ("_shift_view", "_shift_scatter", "_shift_array"):
        exec(HELPERS[name], space)
    # the selection array's creation arguments: torch (dtype, device), JAX (dtype)
    tail = {"numpy": (), "torch": ("torch.float64", "'cpu'"), "jax": ("jnp.float64",)}[backend]
    tail = tuple(eval(x, space) for x in tail)

    def array(*p):
        return space["_shift_array"](*p, *tail)
    return {"view": lambda a, *p: back(space["_shift_view"](wrap(a), *p)),
            "scatter": lambda g, *p: back(space["_shift_scatter"](wrap(g), *p)),
            "array": lambda *p: back(array(*p))}


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_window_helpers_against_their_definition(backend):
    """view[b, t, k] = a[b, s·t + d·k + c] (0 outside), the array is S itself, and the scatter is the
    view's transpose (<view(a), g> = <a, scatter(g)>), over strides, dilations (also negative),
    offsets, shifts without taps and reads before and after the axis."""
    h = _helpers(backend)
    rng = np.random.default_rng(5)
    cases = 0
    for n in (1, 4, 7):
        for stride in (1, 2, 3):
            for dil in (1, 2, -1, -3):
                for size in (0, 1, 3):
                    for const in (-2, 0, 3):
                        count = (n - 1) // stride + 1
                        taps = max(size, 1)
                        span = dil * (taps - 1)
                        lo = max(0, -(const + min(0, span)))
                        hi = max(0, stride * (count - 1) + const + max(0, span) - (n - 1))
                        a = rng.normal(size=(2, n))
                        want = np.zeros((2, count, taps))
                        for t in range(count):
                            for k in range(taps):
                                u = stride * t + dil * k + const
                                if 0 <= u < n:
                                    want[:, t, k] = a[:, u]
                        want = want if size else want[..., 0]
                        got = h["view"](a, size, 1, stride, count, dil, const, lo, hi)
                        np.testing.assert_array_equal(got, want)
                        S = h["array"](n, count, size, stride, dil, const)
                        np.testing.assert_array_equal(np.einsum("bu,ut...->bt...", a, S), want)
                        g = rng.normal(size=want.shape)
                        back = h["scatter"](g, n, 1, size, stride, dil, const)
                        assert back.shape == a.shape
                        np.testing.assert_allclose(np.sum(a * back), np.sum(want * g), rtol=1e-12, atol=1e-12)
                        cases += 1
    assert cases == 3 * 3 * 4 * 3 * 3
