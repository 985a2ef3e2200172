"""A layer template's run-time-depth module (`einderiv codegen` of a `depth n` file without
`--depth`) has every function of the module contract: hessian, hvp, gradient_factors,
per_sample_gradient_norms and ggn_diagonal besides objective/gradient/per_sample_gradient.
Each is checked at depths 1..5 against central differences of the module's own objective and
against the module generated at that fixed depth (smooth tanh layers and ReLU layers)."""
import numpy as np
import pytest

import einderiv
from einderiv.runtime import load as load_source

FILES = ("derivations/deep_template_tanh.ein", "derivations/deep_template.ein")
DEPTHS = (1, 2, 3, 4, 5)
H = 1e-5
MODULES = {}


def module(path):
    if path not in MODULES:
        MODULES[path] = load_source(einderiv.codegen(einderiv.load(path)))
    return MODULES[path]


def fixed(path, depth):
    if (path, depth) not in MODULES:
        net = einderiv.load(path, depth={"n": depth})
        MODULES[(path, depth)] = load_source(einderiv.codegen(einderiv.derive(net, order=2)))
    return MODULES[(path, depth)]


def sample(m, depth, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    shapes = m["param_shapes"](depth)
    params = {name: ([rng.normal(0.0, 0.6, s) for s in shape] if name in m["FAMILIES"] else
                     rng.normal(0.0, 0.6, shape)) for name, shape in shapes.items()}
    data = {"x": rng.normal(size=(batch, m["INPUTS"]["x"][0]))}
    c = m["INPUTS"]["y"][0]
    data["y"] = np.eye(c)[rng.integers(0, c, batch)]
    return params, data


def flat(m, tree):
    return m["_members"](tree)


def like(m, params, value):
    """A params-shaped tree (a family as a list) from member name -> array."""
    return {name: ([value[f"{name}({k})"] for k in range(1, len(params[name]) + 1)] if name in m["FAMILIES"]
                   else value[name]) for name in params}


@pytest.mark.parametrize("path", FILES)
@pytest.mark.parametrize("depth", DEPTHS)
def test_every_function_against_differences_and_the_fixed_depth_module(path, depth):
    m, f = module(path), fixed(path, depth)
    params, data = sample(m, depth)
    members = flat(m, params)
    assert list(members) == list(f["PARAMS"])  # member names and order as the --depth module
    B = data["x"].shape[0]

    def mean_objective(p):
        return m["objective"](like(m, params, p), data).mean()

    grad = flat(m, m["gradient"](params, data))
    for name, value in members.items():  # central differences of the objective
        for idx in list(np.ndindex(value.shape))[::3]:
            e = np.zeros(value.shape)
            e[idx] = H
            num = (mean_objective(dict(members, **{name: value + e}))
                   - mean_objective(dict(members, **{name: value - e}))) / (2 * H)
            assert abs(num - grad[name][idx]) < 1e-7 + 1e-6 * abs(num), (name, idx)
    rng = np.random.default_rng(7)
    v = {name: rng.normal(size=value.shape) for name, value in members.items()}
    hv = flat(m, m["hvp"](params, data, like(m, params, v)))
    up = flat(m, m["gradient"](like(m, params, {n: members[n] + H * v[n] for n in members}), data))
    down = flat(m, m["gradient"](like(m, params, {n: members[n] - H * v[n] for n in members}), data))
    hess = m["hessian"](params, data)
    assert sorted(hess) == sorted((a, b) for a in members for b in members)
    for a in members:
        assert np.allclose(hv[a], (up[a] - down[a]) / (2 * H), rtol=1e-6, atol=1e-8), a
        dense = sum(np.tensordot(hess[(a, b)], v[b], axes=v[b].ndim) for b in members)
        assert np.allclose(dense, hv[a], rtol=1e-10, atol=1e-12), a

    # the fixed-depth module (its blocks derived, not assembled from R-passes) gives the same numbers
    ref_hess = f["hessian"](members, data)
    for key, block in hess.items():
        assert np.allclose(block, ref_hess[key], rtol=1e-9, atol=1e-11), key
    ref_ggn = f["ggn_diagonal"](members, data)
    ggn = flat(m, m["ggn_diagonal"](params, data))
    per_sample = flat(m, m["per_sample_gradient"](params, data))
    norms = flat(m, m["per_sample_gradient_norms"](params, data))
    factors = m["gradient_factors"](params, data)
    factor_list = flat(m, factors)
    for name in members:
        assert np.allclose(ggn[name], ref_ggn[name], rtol=1e-10, atol=1e-12), name
        base = name.split("(")[0]
        assert np.allclose(m["expand_factors"](base, factor_list[name]), per_sample[name], rtol=1e-12, atol=1e-14)
        assert np.allclose(norms[name], np.linalg.norm(per_sample[name].reshape(B, -1), axis=1), rtol=1e-10)
        assert np.allclose(per_sample[name].mean(axis=0), grad[name], rtol=1e-12, atol=1e-14)


def test_size_does_not_depend_on_depth():
    source = einderiv.codegen(einderiv.load(FILES[0]))
    assert source == einderiv.codegen(einderiv.load(FILES[0]))  # deterministic
    assert len(source.splitlines()) < 700
    for backend in ("torch", "jax"):  # the other libraries: the first-order functions only
        other = einderiv.codegen(einderiv.load(FILES[0]), backend=backend)
        assert "def per_sample_gradient(" in other and "def hessian(" not in other


def test_an_objective_of_two_nodes_keeps_the_first_order_module(tmp_path):
    """f reads p and q: the GGN diagonal has no single seed, so the run-time-depth module is the
    first-order one (objective, gradient, per_sample_gradient), still equal to the fixed-depth module."""
    src = open(FILES[0], encoding="utf-8").read().replace(
        "f = softmax_cross_entropy(p, y)",
        "q^l = u^l_j v^{(1),j}\nf = softmax_cross_entropy(p, y) + softmax_cross_entropy(q, y)")
    path = tmp_path / "two.ein"
    path.write_text(src, encoding="utf-8")
    m = load_source(einderiv.codegen(einderiv.load(str(path))))
    assert "hessian" not in m and "per_sample_gradient" in m
    params, data = sample(m, 3)
    f = load_source(einderiv.codegen(einderiv.derive(einderiv.load(str(path), depth={"n": 3}), order=1)))
    members = {**{f"w({k})": w for k, w in enumerate(params["w"], 1)}, "u": params["u"]}
    grad, ref = m["gradient"](params, data), f["gradient"](members, data)
    assert np.allclose(grad["u"], ref["u"], rtol=1e-12, atol=1e-14)
    for k, g in enumerate(grad["w"], 1):
        assert np.allclose(g, ref[f"w({k})"], rtol=1e-12, atol=1e-14)
