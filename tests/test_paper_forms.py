"""What the documents say beyond the blocks, proved by numbers.

* The paper's Eqs. 2–4 as the general form of a layer template prints them —
  β(k) = γ(k) w(k), α(k,l) = β(k) α(k−1,l) with α(l,l) = δ and α(k,l) = 0 for
  k < l, η(k,l) = α(k,l) γ(l) — are the Jacobians ∂v(k)/∂z(l) of the network
  (central differences of its forward pass), and the paper's printed γ(k) in
  Eq. 4 is not (the note the document makes).
* Order-3 blocks written once: the blocks of one set of parameters are one
  block with its axes permuted (the generated kernels, compared).
* The closed forms shown (σ(1−σ) for sigmoid′, …) are the functions SymPy
  derived and the hand-written derivatives of ``tests/reference.py``.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

sys.path.insert(0, str(Path(__file__).parent))
import einderiv  # noqa: E402
from einderiv.analysis.closed_forms import SIGMA, readable  # noqa: E402
from einderiv.analysis.document import shown_blocks  # noqa: E402
from einderiv.calculus.functions import FunctionTable  # noqa: E402
from einderiv.frontend.builtins import ARG  # noqa: E402
from reference import BUILTIN_FUNCTIONS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- Eqs. 2-4
def layers(depth: int, act, dact, rng):
    ws = [rng.normal(0, 0.8, (5, 4))] + [rng.normal(0, 0.8, (5, 5)) for _ in range(depth - 1)]
    x = rng.normal(0, 1, 4)

    def forward(start: int, z_start):
        """v(k) for k ≥ start, from a given z(start)."""
        vs = {start: act(z_start)}
        for k in range(start + 1, depth + 1):
            vs[k] = act(ws[k - 1] @ vs[k - 1])
        return vs

    zs, v = {}, x
    for k in range(1, depth + 1):
        zs[k] = ws[k - 1] @ v
        v = act(zs[k])
    return ws, zs, forward


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_eqs_2_to_4_as_printed_are_the_jacobians(name):
    act, dact = BUILTIN_FUNCTIONS[name][0], BUILTIN_FUNCTIONS[name][1]
    rng = np.random.default_rng(4)
    depth = 4
    ws, zs, forward = layers(depth, act, dact, rng)
    gamma = {k: np.diag(dact(zs[k])) for k in zs}
    beta = {k: gamma[k] @ ws[k - 1] for k in range(2, depth + 1)}  # Eq. 2: β(k) = γ(k) w(k)

    def alpha(k, l):  # Eq. 3 as printed: the recurrence, δ at k = l, 0 for k < l
        if k < l:
            return np.zeros((5, 5))
        return np.eye(5) if k == l else beta[k] @ alpha(k - 1, l)

    h = 1e-6
    for k, l in itertools.product(range(1, depth + 1), repeat=2):
        jac = np.stack([(forward(l, zs[l] + h * e).get(k, 0 * zs[k]) - forward(l, zs[l] - h * e).get(k, 0 * zs[k]))
                        / (2 * h) for e in np.eye(5)], axis=1) if k >= l else np.zeros((5, 5))
        eta = alpha(k, l) @ gamma[l]  # Eq. 4 with γ(l), as einderiv prints it
        assert np.allclose(eta, jac, atol=1e-7), (k, l)
        if k > l:  # the paper's printed γ(k) is another matrix
            assert not np.allclose(alpha(k, l) @ gamma[k], jac, atol=1e-3), (k, l)


def test_general_form_prints_eqs_2_to_4_and_the_whole_eta_recurrence():
    g = einderiv.derive(einderiv.load(str(ROOT / "derivations" / "deep_template_tanh.ein")))
    text = einderiv.derivation_text(g)
    for row in ("β[v(k)]^j_i = γ[v(k)]^j_s w(k)^s_i   for k = 1..n   (the paper's Eq. 2)",
                "α[v(k),v(l)]^j_i = β[v(k)]^j_s α[v(k-1),v(l)]^s_i   for 1 ≤ l < k ≤ n   (the paper's Eq. 3)",
                "α[v(k),v(l)]^j_i = δ^j_i   for k = l   (the paper's Eq. 3)",
                "α[v(k),v(l)]^j_i = 0   for k < l   (the paper's Eq. 3)",
                "η[v(k),z_v(l)]^j_i = α[v(k),v(l)]^j_s γ[v(l)]^s_i   for 1 ≤ l ≤ k ≤ n   (the paper's Eq. 4)",
                "η[v(k),z_v(l)]^j_s = γ[v(l)]^j_s   for k = l",
                "η[v(k),z_v(l)]^j_s = 0   for k < l"):
        assert "  " + row + "\n" in text, row
    tex = einderiv.latex(g)
    assert r"\beta^{(k),j}_{i} &= \gamma^{(k),j}_{s} w^{(k),s}_{i}" in tex
    assert r"\eta^{(k,l),j}_{i} &= \alpha^{(k,l),j}_{s} \gamma^{(l),s}_{i}" in tex
    assert r"The paper prints Eq.~4 with $\gamma^{(k)}$" in tex


# ---------------------------------------------------------------- symmetric blocks
def test_order_3_blocks_written_once_are_their_permutations(draw):
    """Each order-3 block the document writes stands for its permutations: the kernels agree."""
    path = ROOT / "derivations" / "paper_mlp_order3.ein"
    d = einderiv.derive(einderiv.load(str(path)))
    assert d.order == 3  # the file's directive
    ns: dict = {}
    exec(einderiv.codegen(d), ns)
    params, data = draw(ns, 2, batch=2, data="uniform")
    shown = shown_blocks(d)
    written = [w for w in shown if len(w) == 3]
    assert len(written) == 10 and sum(len(shown[w]) for w in written) == 27 - 10
    arity = {t.name: len(t.indices) for t in d.network.params}
    for w in written:
        for other in shown[w]:
            perm = _matching(w, other)
            axes = []
            starts = [sum(arity[x] for x in w[:k]) for k in range(3)]
            for k in perm:
                axes += list(range(starts[k], starts[k] + arity[w[k]]))
            a, b = (np.asarray(ns["third_derivative"](params, data, tuple(map(str, x)))) for x in (w, other))
            assert np.allclose(np.transpose(a, axes), b, rtol=1e-10, atol=1e-12), (w, other)


def _matching(w, other):
    """The positions of ``w`` that ``other`` takes, in order (repeated parameters in their order)."""
    used, out = set(), []
    for p in other:
        k = next(k for k, q in enumerate(w) if q == p and k not in used)
        used.add(k)
        out.append(k)
    return out


# ---------------------------------------------------------------- closed forms
@pytest.mark.parametrize("name", ["sigmoid", "softplus", "tanh", "relu"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_readable_closed_forms_are_the_derivatives(name, order):
    shown = readable(FunctionTable().derivative(name, (order,)))
    assert not shown.has(sympy.exp) or name == "tanh"
    f = sympy.lambdify(ARG[0], shown.replace(SIGMA, lambda a: 1 / (1 + sympy.exp(-a))), modules="numpy")
    z = np.linspace(-3, 3, 13) + 0.05
    assert np.allclose(f(z), BUILTIN_FUNCTIONS[name][order](z), rtol=1e-10, atol=1e-12)


def test_sigmoid_prime_is_written_in_sigma():
    from einderiv.emit.text_expr import ScalarStrPrinter
    assert ScalarStrPrinter().doprint(readable(FunctionTable().derivative("sigmoid", (1,)))) == "σ(z) (1 − σ(z))"
    assert ScalarStrPrinter().doprint(readable(FunctionTable().derivative("softplus", (1,)))) == "σ(z)"
