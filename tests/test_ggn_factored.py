"""The GGN diagonal with the objective's Hessian factored (einderiv.emit.ggn_terms): every
objective's diagonal against a reference made here from central differences alone (the
network's Jacobian J_b = ∂p/∂θ of the forward pass, the objective's Hessian ∂²f/∂p² of a NumPy
re-implementation of the objective), smooth hidden layers; which path each objective takes;
and that a call releases each layer's rows (peak memory against the hand-written code)."""
from __future__ import annotations

import sys
import pathlib
import tracemalloc

import numpy as np
import pytest

from einderiv.calculus.derive import derive
from einderiv.emit.ggn_terms import factorable, uses_dense_hobj
from einderiv.emit.numpy import generate
from einderiv.frontend.check import load as load_text
from einderiv.ir import Kind
from einderiv.numcheck import load

ROOT = pathlib.Path(__file__).resolve().parent.parent


def softplus(z):
    return np.logaddexp(0.0, z)


#: objective name → (its line in the network, f(p, data) per sample in NumPy)
OBJECTIVES = {
    "softmax_cross_entropy": ("f = softmax_cross_entropy(p, y)",
                              lambda p, d: np.logaddexp.reduce(p, axis=-1) - (d["y"] * p).sum(-1)),
    "squared_error": ("f = squared_error(p, y)", lambda p, d: 0.5 * ((p - d["y"]) ** 2).sum(-1)),
    "binary_cross_entropy": ("f = binary_cross_entropy(p, y)",
                             lambda p, d: (softplus(p) - d["y"] * p).sum(-1)),
    # a general objective: its Hessian M + Mᵀ couples the outputs through a data matrix (the dense path)
    "quadratic_form": ("f = p^l M^l_k p^k + 0.5 p^l p^l",
                       lambda p, d: np.einsum("bl,blk,bk->b", p, d["M"], p) + 0.5 * (p * p).sum(-1)),
}


def network(objective: str, acts: tuple) -> str:
    lines = ["dims n0 = 4, n1 = 5, n2 = 4, c = 3", "input x^i : n0", "label y^l : c"]
    if objective == "quadratic_form":
        lines.append("input M^l_k : c, c")
    lines += ["weight W1^j_i : n1, n0", "weight W2^j_i : n2, n1", "weight U^l_j : c, n2",
              f"v1^j = {acts[0]}(W1^j_i x^i)", f"v2^j = {acts[1]}(W2^j_i v1^i)", "p^l = U^l_j v2^j",
              OBJECTIVES[objective][0]]
    return "\n".join(lines) + "\n"


def draw(ns, objective, B=6, seed=0):
    rng = np.random.default_rng(seed)
    params = {a: rng.normal(0, 0.8, s) for a, s in ns["PARAMS"].items()}
    data = {"x": rng.normal(size=(B, 4))}
    if objective == "softmax_cross_entropy":
        data["y"] = np.eye(3)[rng.integers(0, 3, B)]
    else:
        data["y"] = rng.uniform(0.1, 0.9, (B, 3))
    if objective == "quadratic_form":
        data["M"] = rng.normal(size=(B, 3, 3))
    return params, data


def reference(ns, objective, params, data, h=1e-4):
    """mean_b Σ_ck H_b[c,k] J_b[c,θ] J_b[k,θ], J and H by central differences (H: second
    differences with step 1e-4, whose truncation and rounding errors are both about 1e-8)."""
    f = OBJECTIVES[objective][1]
    p0 = ns["_forward"](params, data)["p"]
    B, c = p0.shape
    H = np.zeros((B, c, c))
    for k in range(c):
        for m in range(c):
            def at(sk, sm):
                p = p0.copy()
                p[:, k] += sk * h
                p[:, m] += sm * h
                return f(p, data)
            H[:, k, m] = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * h * h)
    out = {}
    for a, shape in ns["PARAMS"].items():
        flat = params[a].ravel()
        cols = []
        for i in range(flat.size):
            hi, lo = dict(params), dict(params)
            e = np.zeros(flat.size)
            e[i] = 1e-6
            hi[a], lo[a] = (flat + e).reshape(shape), (flat - e).reshape(shape)
            cols.append((ns["_forward"](hi, data)["p"] - ns["_forward"](lo, data)["p"]) / 2e-6)
        J = np.stack(cols, axis=2)  # (B, c, size of a)
        out[a] = np.einsum("bkp,bkm,bmp->p", J, H, J).reshape(shape) / B
    return out


CASES = [("softmax_cross_entropy", ("tanh", "sigmoid")), ("softmax_cross_entropy", ("softplus", "tanh")),
         ("squared_error", ("softplus", "tanh")), ("squared_error", ("sigmoid", "sigmoid")),
         ("binary_cross_entropy", ("sigmoid", "softplus")), ("binary_cross_entropy", ("tanh", "tanh")),
         ("quadratic_form", ("softplus", "tanh")), ("quadratic_form", ("tanh", "sigmoid"))]


@pytest.mark.parametrize("objective,acts", CASES)
def test_ggn_diagonal_against_central_differences(objective, acts):
    d = derive(load_text(f"{objective}.ein", network(objective, acts)), 2, expanded=False)
    ns = load(generate(d))
    params, data = draw(ns, objective)
    got, want = ns["ggn_diagonal"](params, data), reference(ns, objective, params, data)
    for a in want:
        scale = max(1.0, float(np.abs(want[a]).max()))
        assert np.abs(got[a] - want[a]).max() / scale < 1e-6, (objective, acts, a)
        assert np.abs(want[a]).max() > 1e-3, (objective, a)  # not a vacuous comparison


@pytest.mark.parametrize("objective,dense", [("softmax_cross_entropy", False), ("squared_error", False),
                                             ("binary_cross_entropy", False), ("quadratic_form", True)])
def test_which_objective_hessians_are_factored(objective, dense):
    """Diagonal or outer-product terms are written into the GGN (no c × c array per sample);
    a Hessian with a term that couples its two axes otherwise is formed and contracted."""
    d = derive(load_text(f"{objective}.ein", network(objective, ("tanh", "tanh"))), 2, expanded=False)
    hobj = [q for q in d.quantities if q.name.kind is Kind.HOBJ]
    assert [factorable(q, 1) for q in hobj] == [not dense]
    assert uses_dense_hobj(d) is dense
    src = generate(d)
    body = src[src.index("def ggn_diagonal"):]
    assert ("hobj_p__p" in body) is dense
    doc = body.split('"""')[1]  # the function's docstring says which path it takes
    assert ("formed per sample" in doc) is dense and ("no per-sample Hessian is formed" in doc) is not dense


def test_factored_softmax_term_is_weighted_squares():
    """Softmax cross-entropy: Σ_c s_c J_c² − (Σ_c s_c J_c)², computed once per layer and then
    contracted with the layer's input (one matmul), s·J computed once."""
    d = derive(load_text("ce.ein", network("softmax_cross_entropy", ("tanh", "tanh"))), 2, expanded=False)
    body = generate(d).split("def ggn_diagonal")[1]
    assert body.count("(softmax_p[..., None, :] @ jac_p__z_v1)") == 1
    assert "ggn_W1 = tmp" in body and body.count(" @ ") >= 4


def test_ggn_diagonal_releases_each_layers_rows():
    """A call holds about one layer's back-propagated rows (B × c × h) at a time: its peak
    memory is within 1.5× that of the hand-written code (benchmarks/baselines.py), which drops
    each layer's rows as it goes (held all at once, the rows of 6 layers are about 5×)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import baselines as bl
    d_in, h, L, c, B = 16, 64, 6, 10, 128
    dims = [d_in] + [h] * L + [c]
    lines = ["dims " + ", ".join(f"n{k} = {w}" for k, w in enumerate(dims)), "input x^i : n0",
             f"label y^l : n{L + 1}"] + [f"weight W{k}^j_i : n{k}, n{k - 1}" for k in range(1, L + 2)]
    prev = "x"
    for k in range(1, L + 1):
        lines.append(f"v{k}^j = tanh(W{k}^j_i {prev}^i)")
        prev = f"v{k}"
    lines += [f"p^l = W{L + 1}^l_j {prev}^j", "f = softmax_cross_entropy(p, y)"]
    ns = load(generate(derive(load_text("deep.ein", "\n".join(lines) + "\n"), 2, expanded=False)))
    rng = np.random.default_rng(0)
    params = {f"W{k}": rng.normal(0, 1 / np.sqrt(dims[k - 1]), (dims[k], dims[k - 1])) for k in range(1, L + 2)}
    data = {"x": rng.normal(size=(B, d_in)), "y": np.eye(c)[rng.integers(0, c, B)]}

    def peak(fn):
        tracemalloc.start()
        result = fn(params, data)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, result

    ours, got = peak(ns["ggn_diagonal"])
    theirs, want = peak(bl.ggn_diagonal)
    for a in want:
        assert np.abs(got[a] - want[a]).max() <= 1e-10 * max(1.0, np.abs(want[a]).max())
    assert ours < 1.5 * theirs, (ours, theirs)
