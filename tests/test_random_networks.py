"""Randomised end-to-end check: seeded random MLPs, every derivative against finite differences.

Each network is drawn from its seed alone (depth 1–4 hidden layers, widths 1–6,
activations from ``ACTS``, a random built-in objective, bias or not), derived to
order 2, generated, executed and checked by :func:`einderiv.numcheck.check`:
every gradient and per-sample gradient against finite differences of the
objective, every Hessian block against finite differences of the gradient,
``hvp`` against ``hessian``·v, ``gradient_factors`` and
``per_sample_gradient_norms`` against ``per_sample_gradient``, and ``ggn_diagonal``
against J_aᵀ ∂²f/∂a∂b J_b with J from finite differences.  A failure prints the network and the report table.
"""
from __future__ import annotations

import random

import pytest

from einderiv.calculus.derive import derive
from einderiv.numcheck import check
from netbuild import mlp
from runs import default_share

ACTS = ("relu", "tanh", "sigmoid", "softplus", "square", "identity")
OBJECTIVES = ("squared_error", "softmax_cross_entropy", "binary_cross_entropy")
N_NETWORKS = 100


def random_network(seed: int):
    """``(network, description)`` drawn from ``seed`` (stdlib ``random``: stable across versions)."""
    rng = random.Random(seed)
    depth = rng.randint(1, 4)
    widths = [rng.randint(1, 6) for _ in range(depth + 2)]
    acts = [rng.choice(ACTS) for _ in range(depth)]
    objective = rng.choice(OBJECTIVES)
    bias = rng.random() < 0.5
    desc = f"widths={widths} acts={acts} objective={objective} bias={bias}"
    return mlp(widths, acts, objective, bias), desc


def test_generator_covers_the_space():
    nets = [random_network(s)[1] for s in range(N_NETWORKS)]
    assert len(set(nets)) == N_NETWORKS
    text = " ".join(nets)
    for word in ACTS + OBJECTIVES + ("bias=True", "bias=False"):
        assert word in text, word
    depths = {len(random_network(s)[0].definitions) - 2 for s in range(N_NETWORKS)}
    assert depths == {1, 2, 3, 4}


@pytest.mark.parametrize("seed", default_share(range(N_NETWORKS), 3))  # a third in the default run
def test_random_network(seed):
    """Even seeds: Hessian blocks in the expanded (printed) form; odd seeds: the compact form."""
    net, desc = random_network(seed)
    report = check(derive(net, 2, expanded=seed % 2 == 0), seed=seed, batch=2 + seed % 2)
    assert not report.notes, report.notes
    assert report.ok, f"{desc}\n{report.format()}"
    n = len(net.params)
    assert sum(r.name.startswith("hessian ") for r in report.rows) == n * n
    assert sum(r.name.startswith("gradient_factors ") for r in report.rows) == n
    assert sum(r.name.startswith("per_sample_gradient_norms ") for r in report.rows) == n
    assert sum(r.name.startswith("ggn_diagonal ") for r in report.rows) == n


@pytest.mark.parametrize("seed", range(0, N_NETWORKS, 5))
def test_compact_and_expanded_hessians_agree(seed, draw):
    """The two forms of every Hessian block give the same numbers (to rounding)."""
    import numpy as np

    from einderiv.emit.numpy import generate
    from einderiv.numcheck import load

    net, desc = random_network(seed)
    mods = [load(generate(derive(net, 2, expanded=e))) for e in (True, False)]
    params, data = draw(mods[0], seed, batch=3, data="uniform")
    h_exp, h_cmp = (m["hessian"](params, data) for m in mods)
    assert h_exp.keys() == h_cmp.keys()
    for key in h_exp:
        assert np.allclose(h_exp[key], h_cmp[key], rtol=1e-12, atol=1e-12), (desc, key)
