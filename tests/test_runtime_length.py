"""A recurrence of symbolic length (`depth T`) generated without `--depth`: the length is read from
data["x"] of shape (B, T, n) and every function of the module contract is there, its size the
same for every T.  Each function is checked at T = 2..6 against central differences of the
module's own objective (float64) and against the module generated at that fixed length."""
import numpy as np
import pytest

import einderiv
from einderiv.runtime import load as load_source

FILES = ("derivations/rnn.ein", "derivations/gru.ein")
SHORTEST = {"derivations/rnn.ein": 1, "derivations/gru.ein": 2}  # the GRU's step 1 is a base case
CASES = [(path, length) for path in FILES for length in range(SHORTEST[path], 7)]
H = 1e-5


MODULES = {}


def module(path):
    if path not in MODULES:
        MODULES[path] = load_source(einderiv.codegen(einderiv.load(path)))
    return MODULES[path]


def fixed(path, length):
    key = (path, length)
    if key not in MODULES:
        net = einderiv.load(path, depth={"T": length})
        MODULES[key] = load_source(einderiv.codegen(einderiv.derive(net, order=2)))
    return MODULES[key]


def sample(m, length, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    params = {name: rng.normal(0.0, 0.6, shape) for name, shape in m["PARAMS"].items()}
    data = {}
    for name, shape in m["INPUTS"].items():
        shape = tuple(length if s == "T" else s for s in shape)
        data[name] = rng.normal(size=(batch,) + shape)
    if "y" in data:  # one-hot labels (fine for the squared error too)
        c = data["y"].shape[1]
        data["y"] = np.eye(c)[rng.integers(0, c, batch)]
    return params, data


def mean_objective(m, params, data):
    return m["objective"](params, data).mean()


def numeric_gradient(m, params, data):
    out = {}
    for name, value in params.items():
        g = np.zeros(value.shape)
        for idx in np.ndindex(value.shape):
            e = np.zeros(value.shape)
            e[idx] = H
            up = mean_objective(m, dict(params, **{name: value + e}), data)
            down = mean_objective(m, dict(params, **{name: value - e}), data)
            g[idx] = (up - down) / (2 * H)
        out[name] = g
    return out


def fixed_data(data, length):
    """The data of a fixed-length module: one member x(t) per step."""
    out = {k: v for k, v in data.items() if v.ndim == 2}
    for name, v in data.items():
        if v.ndim == 3:
            out.update((f"{name}({t})", v[:, t - 1]) for t in range(1, length + 1))
    return out


def test_shortest_length():
    """The GRU's general form starts at T = 2 (h(T-1) is read outside the loops); shorter data is refused."""
    m = module("derivations/gru.ein")
    assert m["MIN_LENGTH"] == 2 and module("derivations/rnn.ein")["MIN_LENGTH"] == 1
    params, data = sample(m, 1)
    with pytest.raises(ValueError, match=r"this recurrence is written for T >= 2 steps: data\['x'\] has 1"):
        m["objective"](params, data)


@pytest.mark.parametrize("path, length", CASES)
def test_first_order_against_central_differences(path, length):
    m = module(path)
    params, data = sample(m, length)
    B = data["y"].shape[0]
    grad = m["gradient"](params, data)
    numeric = numeric_gradient(m, params, data)
    per_sample = m["per_sample_gradient"](params, data)
    factors = m["gradient_factors"](params, data)
    norms = m["per_sample_gradient_norms"](params, data)
    for name, shape in m["PARAMS"].items():
        assert grad[name].shape == shape
        assert np.allclose(grad[name], numeric[name], rtol=1e-6, atol=1e-8), name
        assert per_sample[name].shape == (B,) + shape
        assert np.allclose(per_sample[name].mean(axis=0), grad[name], rtol=1e-12, atol=1e-14)
        assert np.allclose(m["expand_factors"](name, factors[name]), per_sample[name], rtol=1e-12, atol=1e-14)
        assert np.allclose(norms[name], np.linalg.norm(per_sample[name].reshape(B, -1), axis=1),
                           rtol=1e-10, atol=1e-13)
    # the per-sample gradient of one sample is the gradient of a batch of that sample alone
    one = {k: v[1:2] for k, v in data.items()}
    alone = m["gradient"](params, one)
    for name in m["PARAMS"]:
        assert np.allclose(per_sample[name][1], alone[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("path, length", CASES)
def test_second_order_against_central_differences(path, length):
    m = module(path)
    params, data = sample(m, length, seed=1)
    names = list(m["PARAMS"])
    hess = m["hessian"](params, data)
    assert sorted(hess) == sorted((a, b) for a in names for b in names)
    rng = np.random.default_rng(5)
    v = {name: rng.normal(size=shape) for name, shape in m["PARAMS"].items()}

    def grad_along(s):
        return m["gradient"]({n: params[n] + s * v[n] for n in names}, data)

    up, down = grad_along(H), grad_along(-H)
    hv = m["hvp"](params, data, v)
    for a in names:
        numeric = (up[a] - down[a]) / (2 * H)
        assert np.allclose(hv[a], numeric, rtol=1e-6, atol=1e-8), a
        dense = sum(np.tensordot(hess[(a, b)], v[b], axes=len(m["PARAMS"][b])) for b in names)
        assert np.allclose(dense, hv[a], rtol=1e-10, atol=1e-12), a
    # each block against the module derived at this fixed length (its Hessian blocks derived, not columns)
    f = fixed(path, length)
    fdata = fixed_data(data, length)
    reference = f["hessian"](params, fdata)
    ggn = m["ggn_diagonal"](params, data)
    ggn_ref = f["ggn_diagonal"](params, fdata)
    for a in names:
        assert np.allclose(ggn[a], ggn_ref[a], rtol=1e-10, atol=1e-12), a
        for b in names:
            assert np.allclose(hess[(a, b)], reference[(a, b)], rtol=1e-9, atol=1e-11), (a, b)


def test_ggn_diagonal_against_jacobians():
    """diag of Jᵀ H_f J with J the per-sample Jacobian of the output by central differences."""
    path, length = "derivations/gru.ein", 4
    m = module(path)
    params, data = sample(m, length, seed=2)
    f = fixed(path, length)
    fdata = fixed_data(data, length)
    ggn = m["ggn_diagonal"](params, data)
    B, c = data["y"].shape
    p = lambda q: f["_forward"](q, fdata)["p"]  # noqa: E731  (the objective's argument)
    for name, value in params.items():
        jac = np.zeros((B, c) + value.shape)
        for idx in np.ndindex(value.shape):
            e = np.zeros(value.shape)
            e[idx] = H
            jac[(slice(None), slice(None)) + idx] = (p(dict(params, **{name: value + e}))
                                                     - p(dict(params, **{name: value - e}))) / (2 * H)
        s = np.exp(p(params) - p(params).max(axis=1, keepdims=True))
        s = s / s.sum(axis=1, keepdims=True)
        hf = np.einsum("bc,cd->bcd", s, np.eye(c)) - np.einsum("bc,bd->bcd", s, s)  # softmax CE in p
        expected = np.einsum("bc...,bcd,bd...->...", jac, hf, jac) / B
        assert np.allclose(ggn[name], expected, rtol=1e-6, atol=1e-9), name


# the GRU (about 6 s of CPU) runs in .ci/run
@pytest.mark.parametrize("path", ["derivations/rnn.ein", pytest.param("derivations/gru.ein", marks=pytest.mark.slow)])
def test_module_size_does_not_grow_with_length(path):
    """One module serves every T: the same text whatever length it is later called with, and the
    length read from the data (a T that differs from the reference one gives a different objective)."""
    source = einderiv.codegen(einderiv.load(path))
    assert source == einderiv.codegen(einderiv.load(path))  # deterministic
    # GRU: 1,353 lines (1,183 before the per-sample functions' lean passes); the RNN's order-2
    # module at a fixed T = 32, written per pair of steps, had 50,351
    assert len(source.splitlines()) < 1400
    m = module(path)
    assert m["INPUTS"]["x"][0] == "T"
    for length in (2, 9, 17):
        params, data = sample(m, length)
        assert m["objective"](params, data).shape == (3,)


def _read_at(tmp_path, step):
    src = open("derivations/rnn.ein", encoding="utf-8").read()
    path = tmp_path / f"read_at_{step}.ein"
    path.write_text(src.replace("p^l = U^l_j h(T)^j", f"p^l = U^l_j h({step})^j"), encoding="utf-8")
    return str(path)


def test_output_at_a_fixed_step(tmp_path):
    """Read out at step 4 (not at T): a base case at the start, so T >= 4, and the later steps do not
    matter — the same numbers as the module of that length."""
    path = _read_at(tmp_path, 4)
    m = load_source(einderiv.codegen(einderiv.load(path)))
    assert m["MIN_LENGTH"] == 4
    for length in (4, 5, 7):
        params, data = sample(m, length, seed=length)
        f = load_source(einderiv.codegen(einderiv.derive(einderiv.load(path, depth={"T": length}), order=2)))
        fdata = fixed_data(data, length)
        v = {name: np.ones(shape) for name, shape in m["PARAMS"].items()}
        for name, value in m["gradient"](params, data).items():
            assert np.allclose(value, f["gradient"](params, fdata)[name], rtol=1e-12, atol=1e-14)
            assert np.allclose(m["hvp"](params, data, v)[name], f["hvp"](params, fdata, v)[name],
                               rtol=1e-12, atol=1e-14)
    params, data = sample(m, 3)
    with pytest.raises(ValueError, match="written for T >= 4 steps"):
        m["gradient"](params, data)


def test_a_step_that_does_not_fold_is_refused(tmp_path, capsys):
    """Step 5 of the reference length 8 is neither near the start nor near the end: a module with it
    written out would be right at one length only, so codegen refuses (one line, exit 2)."""
    from einderiv.cli import main

    path = _read_at(tmp_path, 5)
    assert main(["codegen", path]) == 2
    assert capsys.readouterr().err == (
        "einderiv: error: the steps (layers) do not all fold into loops over T (step 5 of the reference length 8 "
        "is written out): its module is generated at a given length, e.g. --depth T=4\n")
