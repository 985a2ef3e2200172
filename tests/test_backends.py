"""The torch and JAX backends: the NumPy module's contract, its numbers, and finite differences.

Every ``derivations/`` example is generated for each backend and run through
:func:`einderiv.check` with that backend: every function against central differences (as the
NumPy module is) and against the NumPy module's values on the same inputs (rows ``… = numpy``,
held here to 1e-10).  Then what each library adds: torch in float32 and float64, on the
inputs' device (the ``meta`` device: an array created elsewhere fails), without autograd,
under ``torch.compile``; JAX pure and jit-compiled (``check`` compiles every contract
function), float32 kept float32.  Tests of a library that is not installed are skipped
(CI installs both: ``pip install '.[torch,jax]'``).
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import sys

import numpy as np
import pytest

import einderiv
from einderiv.errors import UsageError
from einderiv.runtime import load, numpy_view, to_numpy

from clirun import run_cli
from test_codegen import EXOTIC
from test_templates import _as_lists

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("regenerate", ROOT / "derivations" / "regenerate.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)

HAVE = {name: importlib.util.find_spec(name) is not None for name in ("torch", "jax")}
BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(not HAVE[b], reason=f"{b} is not installed"))
            for b in ("torch", "jax")]
needs_torch = pytest.mark.skipif(not HAVE["torch"], reason="torch is not installed")
needs_jax = pytest.mark.skipif(not HAVE["jax"], reason="jax is not installed")

#: two stacked convolutions: the second's input-window derivative is a scatter (the view's transpose)
STACKED_CONV = """
dims N = 7, A = 2, K2 = 2, M = 6, P = 5, O = 2, c = 2
input  x^u : N
label  y^l : c
weight K^o_a : O, A
weight G^q_{o,b} : O, O, K2
weight U^l_{q,t} : c, O, P
v^{o,m} = tanh(K^o_a x^{m+a})
w^{q,t} = tanh(G^q_{o,b} v^{o,t+b})
p^l = U^l_{q,t} w^{q,t}
f = softmax_cross_entropy(p, y)
"""


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def assert_checked(report, same=1e-10):
    """Every finite-difference row passes, and every value equals NumPy's to ``same``."""
    assert report.rows and report.ok, report.format()
    agree = [r for r in report.rows if r.name.endswith("= numpy")]
    assert agree, "no comparison with the NumPy module"
    worst = max(agree, key=lambda r: r.error)
    assert worst.error <= same, f"{worst.name}: {worst.error:.2e}"


# ------------------------------------------------------------------ every example
@pytest.mark.slow  # every example in every backend: ~2 min of CPU; .ci/run runs it
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", regenerate.networks(), ids=lambda p: p.stem)
def test_every_example_against_finite_differences_and_numpy(path, backend):
    derivation = einderiv.derive(einderiv.load(os.path.relpath(path, ROOT)))  # the file's order
    assert_checked(einderiv.check(derivation, seed=1, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("text", [EXOTIC, STACKED_CONV], ids=["exotic", "stacked_conv"])
def test_scalar_weights_traces_divisions_and_selection_arrays(text, backend):
    derivation = einderiv.derive(einderiv.load("net.ein", text=text), 2)
    source = einderiv.codegen(derivation, backend=backend)
    if text is STACKED_CONV:  # the adjoint of the second convolution's input: a scatter (issue 12)
        assert "_shift_scatter(" in source and "_window_view(" in source
    assert_checked(einderiv.check(derivation, seed=2, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["deep_template", "deep_template_tanh"])
def test_runtime_depth_module_equals_numpy(name, backend, draw):
    """A layer template's module (depth = the length of the parameter lists) in each library."""
    tpl = einderiv.load(f"derivations/{name}.ein")
    ref = load(einderiv.codegen(tpl))
    mod = numpy_view(load(einderiv.codegen(tpl, backend=backend)), backend, jit=True)
    for n in (1, 3):
        concrete: dict = {}
        exec(einderiv.codegen(einderiv.derive(einderiv.load(f"derivations/{name}.ein", dims={"n": n}), 1)), concrete)
        params, data = draw(concrete, n, batch=4)
        lists = _as_lists(params)
        for fn in ("objective", "gradient", "per_sample_gradient"):
            got, want = _leaves(mod[fn](lists, data)), _leaves(ref[fn](lists, data))
            assert len(got) == len(want) == (1 if fn == "objective" else len(params))
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=f"{fn} n={n}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_literal_einsum_modules_equal_numpy(backend, draw):
    """With ``literal_einsum`` every contraction is one einsum call with its path as a literal."""
    from einderiv.emit.backends import PRINTERS
    from einderiv.emit.numpy import generate
    derivation = einderiv.derive(einderiv.load("derivations/attention.ein"), 2)
    ref = load(generate(derivation))
    source = generate(derivation, literal_einsum=True, printer=PRINTERS[backend])
    assert source.count("einsum(") > 20
    mod = numpy_view(load(source), backend, jit=True)
    params, data = draw(ref, 5, batch=3)
    for fn in ("gradient", "hessian", "ggn_diagonal"):
        for g, w in zip(_leaves(mod[fn](params, data)), _leaves(ref[fn](params, data))):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13, err_msg=fn)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_source_is_deterministic_and_names_only_its_library(backend):
    derivation = einderiv.derive(einderiv.load("derivations/layernorm_mlp.ein"), 2)
    first = einderiv.codegen(derivation, backend=backend)
    assert first == einderiv.codegen(derivation, backend=backend)
    assert not re.search(r"\bnp\.", first) and "import numpy" not in first
    assert "vmap" not in first and ".backward(" not in first and "autograd" not in first
    assert {"torch": "import torch", "jax": "import jax.numpy as jnp"}[backend] in first


def test_unknown_backend_is_a_usage_error():
    derivation = einderiv.derive(einderiv.load("derivations/paper_mlp.ein"), 1)
    with pytest.raises(UsageError) as err:
        einderiv.codegen(derivation, backend="tensorflow")
    assert str(err.value) == "backend='tensorflow': unknown backend; expected one of numpy, torch, jax"
    code, _, err = run_cli("codegen", "derivations/paper_mlp.ein", "--backend", "tensorflow", cwd=ROOT)
    assert code == 2
    assert err == ("einderiv: error: argument --backend: invalid choice: 'tensorflow' "
                   "(choose from 'numpy', 'torch', 'jax')\n")


def test_a_missing_library_is_named_with_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    derivation = einderiv.derive(einderiv.load("derivations/tanh_mlp.ein"), 1)
    assert "import torch" in einderiv.codegen(derivation, backend="torch")  # printing needs no torch
    with pytest.raises(UsageError) as err:
        einderiv.check(derivation, backend="torch")
    assert str(err.value) == "the torch backend needs torch: pip install 'einderiv[torch]'"


def test_cli_writes_each_backend():
    for backend, line in (("torch", "import torch"), ("jax", "import jax.numpy as jnp"), ("numpy", "import numpy as np")):
        code, out, err = run_cli("codegen", "derivations/tanh_mlp.ein", "--backend", backend, cwd=ROOT)
        assert code == 0, err
        assert line in out.split("\n")
        assert out == einderiv.codegen(einderiv.derive(einderiv.load("derivations/tanh_mlp.ein"), 2),
                                       backend=backend)


# ------------------------------------------------------------------ torch
def _torch_module(name="paper_mlp", order=2):
    return load(einderiv.codegen(einderiv.derive(einderiv.load(f"derivations/{name}.ein"), order), backend="torch"))


def _torch_inputs(mod, dtype, batch=5, seed=0, device="cpu"):
    import torch
    g = torch.Generator().manual_seed(seed)
    params = {k: (0.5 * torch.randn(s, generator=g, dtype=torch.float64)).to(dtype).to(device)
              for k, s in mod["PARAMS"].items()}
    data = {k: torch.randn((batch,) + s, generator=g, dtype=torch.float64).to(dtype).to(device)
            for k, s in mod["INPUTS"].items()}
    return params, data


FUNCTIONS = ("objective", "gradient", "per_sample_gradient", "gradient_factors", "per_sample_gradient_norms",
             "hessian", "ggn_diagonal")


def _leaves(x):
    """The arrays of a result, dicts in key order (jax.jit hands dicts back sorted by key)."""
    if isinstance(x, dict):
        return [a for k in sorted(x, key=str) for a in _leaves(x[k])]
    if isinstance(x, (list, tuple)):
        return [a for v in x for a in _leaves(v)]
    return [x]


@needs_torch
@pytest.mark.parametrize("name", ["paper_mlp", "layernorm_mlp", "cnn1d", "gru_cell"])
def test_torch_float32_in_float32_out(name):
    import torch
    mod = _torch_module(name)
    p64, d64 = _torch_inputs(mod, torch.float64)
    p32, d32 = {k: v.float() for k, v in p64.items()}, {k: v.float() for k, v in d64.items()}
    for fn in FUNCTIONS:
        got, want = _leaves(mod[fn](p32, d32)), _leaves(mod[fn](p64, d64))
        assert all(g.dtype == torch.float32 for g in got), fn
        assert all(w.dtype == torch.float64 for w in want), fn
        for g, w in zip(got, want):
            scale = max(1.0, float(w.abs().max()))
            assert float((g.double() - w).abs().max()) / scale < 1e-4, fn


@needs_torch
def test_torch_runs_on_the_inputs_device():
    """On the meta device every op must find its operands there: an identity or zeros made on
    the CPU would fail (the check below shows it does)."""
    import torch
    with pytest.raises(RuntimeError):
        torch.eye(3) * torch.ones(3, 3, device="meta")
    mod = _torch_module("cnn2d")
    params, data = _torch_inputs(mod, torch.float32, device="meta")
    vector = {k: torch.ones_like(v) for k, v in params.items()}
    outs = [mod[fn](params, data) for fn in FUNCTIONS] + [mod["hvp"](params, data, vector)]
    assert all(a.device.type == "meta" for a in _leaves(outs))


@needs_torch
def test_torch_needs_no_autograd():
    import torch
    mod = _torch_module()
    params, data = _torch_inputs(mod, torch.float64)
    want = mod["hessian"](params, data)
    with torch.inference_mode():
        got = mod["hessian"](params, data)
    assert all(not a.requires_grad for a in got.values())
    assert all(torch.equal(got[k], want[k]) for k in want)


@needs_torch
def test_torch_compile_traces_whole_functions():
    """``torch.compile(fullgraph=True)`` fails on any graph break; the compiled functions give the
    eager numbers (AOT autograd for every function; the inductor C++ backend for the gradient)."""
    import torch
    mod = _torch_module()
    params, data = _torch_inputs(mod, torch.float32)
    vector = {k: torch.ones_like(v) for k, v in params.items()}
    for fn in FUNCTIONS + ("hvp",):
        args = (params, data) + ((vector,) if fn == "hvp" else ())
        got = torch.compile(mod[fn], backend="aot_eager", fullgraph=True)(*args)
        for g, w in zip(_leaves(got), _leaves(mod[fn](*args))):
            assert torch.allclose(g, w, rtol=1e-5, atol=1e-6), fn
    got = torch.compile(mod["gradient"], fullgraph=True)(params, data)
    want = mod["gradient"](params, data)
    assert all(torch.allclose(got[k], want[k], rtol=1e-4, atol=1e-6) for k in want)


# ------------------------------------------------------------------ JAX
@needs_jax
def test_jax_float32_in_float32_out_with_x64_on():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    src = einderiv.codegen(einderiv.derive(einderiv.load("derivations/layernorm_mlp.ein"), 2), backend="jax")
    mod = load(src)
    ref = load(einderiv.codegen(einderiv.derive(einderiv.load("derivations/layernorm_mlp.ein"), 2)))
    rng = np.random.default_rng(0)
    params = {k: rng.normal(0, 0.5, s) for k, s in mod["PARAMS"].items()}
    data = {k: rng.normal(0, 1, (4,) + s) for k, s in mod["INPUTS"].items()}
    for fn in FUNCTIONS:
        jitted = jax.jit(mod[fn])
        got = jitted({k: jnp.asarray(v, jnp.float32) for k, v in params.items()},
                     {k: jnp.asarray(v, jnp.float32) for k, v in data.items()})
        want = ref[fn](params, data)
        assert all(a.dtype == jnp.float32 for a in _leaves(got)), fn
        for g, w in zip(_leaves(to_numpy(got)), _leaves(want)):
            assert np.max(np.abs(g - w)) / max(1.0, np.max(np.abs(w))) < 1e-4, fn
