"""``hessian(params, data, blocks=None)``: the Hessian blocks a call asks for, and nothing else.

For a smooth network (tanh and sigmoid layers with biases, squared error: ``derivations/tanh_mlp.ein``)
and the matrix factorisation ‖T − U Vᵀ‖² (``benchmarks/laue/mf.ein``), in the NumPy, torch and JAX
modules: each requested block equals the same block of the full Hessian and the central
differences (float64) of the generated gradient; only the requested keys come back; a call that
asks for fewer blocks runs fewer operations (torch, counted) and never forms what only the others
read (the residual T − U Vᵀ for the (U, U) block); the NumPy module writes them into a buffer of
the named parameters only (``out=``); JAX compiles with the blocks static; a bad key is one line.
"""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import einderiv
from einderiv.runtime import load, numpy_view

ROOT = pathlib.Path(__file__).resolve().parents[1]
HAVE = {name: importlib.util.find_spec(name) is not None for name in ("torch", "jax")}
BACKENDS = ["numpy"] + [pytest.param(b, marks=pytest.mark.skipif(not HAVE[b], reason=f"{b} is not installed"))
                        for b in ("torch", "jax")]
NETWORKS = {"tanh_mlp": ROOT / "derivations" / "tanh_mlp.ein", "mf": ROOT / "benchmarks" / "laue" / "mf.ein"}
#: per network, the block lists asked for: one diagonal block, one ordering whose transpose is the
#: computed block, and a mixed list (with a repeat)
ASKS = {
    "tanh_mlp": [[("W1", "W1")], [("U", "W1")], [("b2", "W2"), ("W1", "U"), ("b2", "W2"), ("U", "U")]],
    "mf": [[("U", "U")], [("V", "U")], [("U", "V"), ("V", "V")]],
}
_SOURCES: dict = {}


def source(name: str, backend: str) -> str:
    key = (name, backend)
    if key not in _SOURCES:
        _SOURCES[key] = einderiv.codegen(einderiv.derive(einderiv.load(str(NETWORKS[name]))), backend=backend)
    return _SOURCES[key]


def draw(mod: dict, seed: int = 0, batch: int = 4):
    rng = np.random.default_rng(seed)
    params = {n: rng.normal(0.0, 0.5, s) for n, s in mod["PARAMS"].items()}
    data = {n: rng.normal(0.0, 1.0, (batch,) + tuple(s)) for n, s in mod["INPUTS"].items()}
    return params, data


def fd_block(mod: dict, params: dict, data: dict, a: str, b: str, h: float = 1e-5) -> np.ndarray:
    """∂/∂b of the batch-mean gradient of a (the generated NumPy gradient), by central differences."""
    shape_a, shape_b = mod["PARAMS"][a], mod["PARAMS"][b]
    out = np.zeros(shape_a + shape_b)
    for idx in np.ndindex(*shape_b):
        moved = {n: v.copy() for n, v in params.items()}
        moved[b][idx] += h
        up = mod["gradient"](moved, data)[a]
        moved[b][idx] -= 2 * h
        down = mod["gradient"](moved, data)[a]
        out[(Ellipsis,) + idx] = (up - down) / (2 * h)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_requested_blocks_equal_the_full_hessian_and_finite_differences(name, backend):
    reference = load(source(name, "numpy"))
    mod = numpy_view(load(source(name, backend)), backend, jit=True)
    params, data = draw(reference)
    full = mod["hessian"](params, data)
    names = list(reference["PARAMS"])
    assert sorted(full) == sorted((a, b) for a in names for b in names)
    for asked in ASKS[name]:
        got = mod["hessian"](params, data, asked)
        assert sorted(got) == sorted(set(asked))
        if backend != "jax":  # (a jitted function sorts a dict's keys) in the full Hessian's order
            assert list(got) == [k for k in full if k in got]
        for a, b in got:
            assert got[(a, b)].shape == reference["PARAMS"][a] + reference["PARAMS"][b]
            np.testing.assert_allclose(got[(a, b)], full[(a, b)], rtol=1e-12, atol=1e-14)
            fd = fd_block(reference, params, data, a, b)
            np.testing.assert_allclose(got[(a, b)], fd, rtol=1e-6, atol=1e-7 * max(1.0, np.abs(fd).max()))


def test_numpy_buffer_holds_the_named_parameters_only():
    mod = load(source("tanh_mlp", "numpy"))
    params, data = draw(mod)
    full = mod["hessian"](params, data)
    size = {n: int(np.prod(s)) for n, s in mod["PARAMS"].items()}
    H = np.full((size["U"], size["U"]), np.nan)
    got = mod["hessian"](params, data, [("U", "U")], out=H)
    assert np.shares_memory(got[("U", "U")], H) and not np.isnan(H).any()
    np.testing.assert_allclose(H, full[("U", "U")].reshape(size["U"], size["U"]), rtol=1e-12, atol=1e-14)
    # two parameters named: their rows in PARAMS order (W1 before U), whatever the order asked
    n = size["W1"] + size["U"]
    H2 = np.full((n, n), np.nan)
    got = mod["hessian"](params, data, [("U", "W1"), ("W1", "U")], out=H2)
    np.testing.assert_allclose(H2[:size["W1"], size["W1"]:], full[("W1", "U")].reshape(size["W1"], size["U"]),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(H2[size["W1"]:, :size["W1"]], H2[:size["W1"], size["W1"]:].T, rtol=0, atol=0)
    assert all(np.shares_memory(v, H2) for v in got.values())
    with pytest.raises(ValueError, match=r"out has shape \(9, 9\); expected \(8, 8\) or \(64,\)"):
        mod["hessian"](params, data, [("U", "U")], out=np.empty((9, 9)))


@pytest.mark.skipif(not HAVE["torch"], reason="torch is not installed")
def test_fewer_blocks_run_fewer_operations_and_skip_what_only_others_read():
    """Counted in torch (every torch function a call runs): the (U, U) block of ‖T − U Vᵀ‖² is 2 δ ⊗ VᵀV,
    so a call that asks for it alone never forms the residual T − U Vᵀ (shape (B, m, n)); the (U, U)
    block of the MLP reads the forward pass but no back-propagated adjoint of W1 or W2."""
    import torch
    from torch.overrides import TorchFunctionMode

    class Count(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.shapes = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.shapes.append(tuple(out.shape) if isinstance(out, torch.Tensor) else None)
            return out

    def run(name, blocks):
        mod = load(source(name, "torch"))
        params, data = draw(load(source(name, "numpy")))
        tp = {k: torch.from_numpy(v) for k, v in params.items()}
        td = {k: torch.from_numpy(v) for k, v in data.items()}
        with Count() as c:
            mod["hessian"](tp, td, blocks)
        return c.shapes

    full, uu = run("mf", None), run("mf", [("U", "U")])
    assert (4, 4, 5) in full and (4, 4, 5) not in uu  # batch 4, m = 4, n = 5: the residual
    assert len(uu) < len(full) / 2
    full, uu = run("tanh_mlp", None), run("tanh_mlp", [("U", "U")])
    assert len(uu) < len(full) / 3


@pytest.mark.skipif(not HAVE["jax"], reason="jax is not installed")
def test_jax_compiles_with_the_blocks_static():
    import jax

    jax.config.update("jax_enable_x64", True)
    mod = load(source("mf", "jax"))
    params, data = draw(load(source("mf", "numpy")))
    compiled = jax.jit(mod["hessian"], static_argnames="blocks")
    got = compiled(params, data, blocks=(("U", "U"),))
    assert list(got) == [("U", "U")]
    np.testing.assert_allclose(np.asarray(got[("U", "U")]), np.asarray(mod["hessian"](params, data)[("U", "U")]),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bad_block_is_one_line(backend):
    mod = load(source("mf", backend))
    params, data = draw(load(source("mf", "numpy")))
    if backend != "numpy":
        mod = numpy_view(mod, backend)
    names = "['U', 'V']"
    for blocks, shown in (([("U", "W")], "('U', 'W')"), (("U", "V"), "'U'"), ([("U",)], "('U',)")):
        with pytest.raises(KeyError) as info:
            mod["hessian"](params, data, blocks)
        message = info.value.args[0]
        assert message == (f"hessian block {shown}: a block is a pair (a, b) of names in {names}, "
                           f"and blocks a list of such pairs")
        assert "\n" not in message
