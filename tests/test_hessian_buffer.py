"""The NumPy Hessian assembled in one P × P buffer (emit/kernel_buffer.py, emit/numpy_buffer.py).

Each block pair is computed once, written into its rows and columns of the buffer, and
mirrored; the dominant outer-product terms are matmuls that write into the buffer and a
diagonal Jacobian's term is added on the block's diagonal.  These tests hold the numbers
to central differences of the gradient (smooth activations, biases, a scalar weight), and
the buffer to its contract: reused without a trace of what it held, flat or square, no
temporary of its size.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from einderiv.calculus.derive import derive
from einderiv.emit.numpy import generate
from einderiv.frontend.check import load as load_network
from einderiv.numcheck import load
from netbuild import mlp

SMOOTH = """
dims n0 = 3, n1 = 4, n2 = 5, c = 3
input  x^i    : n0
label  y^l    : c
weight W1^j_i : n1, n0
bias   b1^j   : n1
weight W2^j_i : n2, n1
weight U^l_j  : c, n2
weight s
v1^j = tanh(W1^j_i x^i + b1^j)
v2^j = sigmoid(W2^j_i v1^i)
p^l  = U^l_j v2^j
f    = softmax_cross_entropy(p, y) + 0.1 s s W1^j_i W1^j_i
"""


def dense_reference(mod, params, data, eps=1e-5):
    """The dense Hessian by central differences of the generated gradient (float64)."""
    names = list(mod["PARAMS"])
    flat = np.concatenate([np.ravel(params[n]) for n in names])
    sizes = [int(np.prod(mod["PARAMS"][n], dtype=int)) for n in names]

    def grad(v):
        at, p = 0, {}
        for n, k in zip(names, sizes):
            p[n] = v[at:at + k].reshape(mod["PARAMS"][n])
            at += k
        g = mod["gradient"](p, data)
        return np.concatenate([np.ravel(g[n]) for n in names])
    cols = []
    for k in range(flat.size):
        e = np.zeros_like(flat)
        e[k] = eps
        cols.append((grad(flat + e) - grad(flat - e)) / (2 * eps))
    return np.stack(cols, axis=1)


@pytest.fixture(scope="module")
def smooth():
    return load(generate(derive(load_network("smooth.ein", SMOOTH), 2, expanded=False)))


def test_buffer_is_the_dense_hessian(smooth, draw):
    params, data = draw(smooth, 0, batch=6)
    params["s"] = np.array(0.7)
    P = sum(int(np.prod(s, dtype=int)) for s in smooth["PARAMS"].values())
    out = np.full((P, P), np.nan)  # a reused buffer: every entry must be written
    H = smooth["hessian"](params, data, out=out)
    ref = dense_reference(smooth, params, data)
    assert np.max(np.abs(out - ref)) < 1e-7
    assert np.max(np.abs(out - out.T)) < 1e-12
    names = list(smooth["PARAMS"])
    assert set(H) == {(a, b) for a in names for b in names}
    for key, block in H.items():  # every block is a view of the buffer, in its shape
        assert np.shares_memory(block, out), key
        assert block.shape == tuple(smooth["PARAMS"][key[0]]) + tuple(smooth["PARAMS"][key[1]])
    fresh = smooth["hessian"](params, data)
    for key in H:
        assert np.array_equal(fresh[key], H[key]), key


def test_flat_buffer_and_wrong_shapes(smooth, draw):
    params, data = draw(smooth, 1, batch=4)
    P = sum(int(np.prod(s, dtype=int)) for s in smooth["PARAMS"].values())
    flat = np.zeros(P * P)
    smooth["hessian"](params, data, out=flat)
    square = smooth["hessian"](params, data)
    assert np.array_equal(flat.reshape(P, P), np.block(
        [[square[(a, b)].reshape(int(np.prod(smooth["PARAMS"][a], dtype=int)), -1) for b in smooth["PARAMS"]]
         for a in smooth["PARAMS"]]))
    with pytest.raises(ValueError, match=rf"out has shape \({P}, {P + 1}\); expected \({P}, {P}\)"):
        smooth["hessian"](params, data, out=np.zeros((P, P + 1)))


def test_deep_softmax_network_against_differences(draw):
    """Three tanh layers: the cross-layer blocks (outer terms with G on either b axis, diagonal
    Jacobian terms) of every layer pair."""
    mod = load(generate(derive(mlp([3, 4, 3, 4, 3], ["tanh"] * 3), 2, expanded=False)))
    params, data = draw(mod, 2, batch=5)
    data["y"] = np.eye(3)[[0, 2, 1, 1, 0]]
    P = sum(int(np.prod(s, dtype=int)) for s in mod["PARAMS"].values())
    out = np.full((P, P), 1e300)
    mod["hessian"](params, data, out=out)
    assert np.max(np.abs(out - dense_reference(mod, params, data))) < 1e-7


def test_no_temporary_of_the_buffers_size(draw):
    """With out=, what a call allocates beyond the buffer stays under a tenth of it."""
    mod = load(generate(derive(mlp([40, 40, 40, 10], ["tanh"] * 2), 2, expanded=False)))
    params, data = draw(mod, 3, batch=16)
    P = sum(int(np.prod(s, dtype=int)) for s in mod["PARAMS"].values())
    out = np.empty((P, P))
    mod["hessian"](params, data, out=out)
    tracemalloc.start()
    try:
        mod["hessian"](params, data, out=out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.1 * out.nbytes, (peak, out.nbytes)
    assert np.max(np.abs(out - out.T)) < 1e-12


def test_symmetric_blocks_in_tiles_and_shared_matmuls_against_differences(draw):
    """Widths that do not divide the helper's tiles: the W2 × W2 block (20 × 20 rows per j, 12 j
    per tile: a full tile and a partial one) multiplied in row chunks of 4 j above its diagonal
    and copied below it, tanh then sigmoid (smooth); the blocks with the last layer, whose two
    outer terms share one matmul, all held to central differences."""
    net = mlp([3, 20, 20, 4], ["tanh", "sigmoid"])
    src = generate(derive(net, 2, expanded=False))
    call = next(line for line in src.splitlines() if line.strip().startswith("_outer_into(hess_W1__W3,"))
    assert call.count("1 / B") == 2, call  # (the two terms of that block: one call)
    mod = load(src)
    params, data = draw(mod, 4, batch=40)
    data["y"] = np.eye(4)[np.arange(40) % 4]
    P = sum(int(np.prod(s, dtype=int)) for s in mod["PARAMS"].values())
    out = np.full((P, P), np.nan)
    mod["hessian"](params, data, out=out)
    ref = dense_reference(mod, params, data)
    assert np.max(np.abs(out - ref)) < 1e-7 * max(1.0, np.max(np.abs(ref)))
    assert np.max(np.abs(out - out.T)) < 1e-12


def test_peak_memory_at_the_benchmarks_smallest_size(draw):
    """docs/benchmarks.md's L=2, h=32, B=64 row (P = 2368, a 43 MB buffer): a call holds the
    forward pass and only the second-order adjoints (B × h × h each) that blocks still need, so
    what it allocates beyond out= stays under a tenth of the buffer (1.21× before they were
    dropped after their last reader)."""
    mod = load(generate(derive(mlp([32, 32, 32, 10], ["tanh"] * 2), 2, expanded=False)))
    params, data = draw(mod, 5, batch=64)
    P = sum(int(np.prod(s, dtype=int)) for s in mod["PARAMS"].values())
    assert P == 2368
    out = np.empty((P, P))
    mod["hessian"](params, data, out=out)
    tracemalloc.start()
    try:
        mod["hessian"](params, data, out=out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.1 * out.nbytes, (peak, out.nbytes)
