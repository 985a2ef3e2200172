"""``check`` must compare something: draws that keep the signal alive at depth, and "vacuous" rows.

On a deep ReLU MLP the old draws (every parameter normal with scale 0.5) made the signal vanish:
16 layers, seeds 1–3, every error exactly 0.00e+00, and "all … checks pass".  The draws are now
variance-preserving per parameter (√(2/fan-in) with ReLU, fan-in from the contracted sizes) with
no dead ReLU layer, and a row whose reference stays within the tolerance of zero at every draw
is reported ``vacuous`` and fails, unless its block is zero symbolically.
"""
from __future__ import annotations

import math

import pytest

import einderiv
import einderiv.cli
from einderiv.draws import scales
from einderiv.numcheck import DRAWS


def relu_mlp(depth: int, width: int = 4) -> str:
    """A ReLU MLP of ``depth`` hidden layers of ``width``, softmax cross-entropy on 3 classes."""
    lines = [f"dims n = {width}, c = 3", "input x^i : n", "label y^l : c"]
    lines += [f"weight W{k}^j_i : n, n" for k in range(1, depth + 1)] + ["weight U^l_j : c, n"]
    prev = "x"
    for k in range(1, depth + 1):
        lines.append(f"v{k}^j = relu(W{k}^j_i {prev}^i)")
        prev = f"v{k}"
    lines += [f"p^l = U^l_j {prev}^j", "f = softmax_cross_entropy(p, y)"]
    return "\n".join(lines) + "\n"


def _report(text: str, order: int, seed: int = 0):
    return einderiv.check(einderiv.derive(einderiv.load("net.ein", text=text), order), seed=seed)


@pytest.mark.parametrize("depth, order, seed", [(16, 1, 1), (16, 1, 2), (16, 1, 3), (32, 1, 1), (16, 2, 1)])
def test_deep_relu_mlp_is_checked_for_real(depth, order, seed):
    """Every gradient row compares a reference that is not zero: finite differences of a live
    network never agree to the last bit, so each gradient error is above 0 (they were all exactly
    0 when the signal vanished), and no row is vacuous."""
    report = _report(relu_mlp(depth), order, seed)
    assert report.ok and not report.vacuous and not report.notes, report.format()
    gradients = [r for r in report.rows if r.name.startswith("gradient ")]
    assert len(gradients) == depth + 1
    assert all(r.error > 0 for r in gradients), report.format()
    if order >= 2:
        hessians = [r for r in report.rows if r.name.startswith("hessian ")]
        assert sum(r.error > 0 for r in hessians) > 0.9 * len(hessians), report.format()


TINY = """dims n = 3, c = 2
function tiny(z) = z / 1000000000000
input x^i : n
label y^l : c
weight W^j_i : n, n
weight U^l_j : c, n
v^j = tanh(W^j_i x^i)
p^l = U^l_j tiny(v^j)
f = squared_error(p, y)
"""
VACUOUS_LINE = (f"16 of 16 checks are vacuous: their reference stays within the tolerance 1e-06 of zero at each "
                f"of {DRAWS} draws, so an answer of zeros would pass them, although the block is not zero "
                "symbolically")


def test_a_reference_that_stays_near_zero_is_vacuous_and_fails(tmp_path, capsys, monkeypatch):
    """Derivatives of size 1e-12 at every draw: nothing is compared at tol 1e-6 (zeros would
    pass), so every row is vacuous, the report is not ok and the command exits 1."""
    report = _report(TINY, 2)
    assert not report.ok and len(report.vacuous) == len(report.rows) == 16
    assert all(r.error <= 1e-6 for r in report.rows)  # each would have "passed"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.ein").write_text(TINY, encoding="utf-8")
    assert einderiv.cli.main(["check", "tiny.ein"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == VACUOUS_LINE
    assert out[1].split() == ["gradient", "W", out[1].split()[2], "vacuous"]


def test_a_block_that_is_zero_symbolically_is_not_vacuous():
    """∂³f/∂U³ of a linear model under squared error is the constant 0: its reference is zero at
    every draw, and that is a real check (the kernel must return zeros), not a vacuous one."""
    text = ("dims n = 3, c = 2\ninput x^i : n\nlabel y^l : c\nweight U^l_i : c, n\n"
            "p^l = U^l_i x^i\nf = squared_error(p, y)\n")
    report = _report(text, 3)
    third = [r for r in report.rows if r.name.startswith("third_derivative")]
    assert third and all(r.error == 0 and r.ok and not r.vacuous for r in third), report.format()
    assert report.ok


def test_scales_are_variance_preserving():
    """√(2/fan-in) with ReLU (fan-in: the contracted sizes), √(1/fan-in) without; 0.5 for a bias
    and for a parameter contracted only with parameters (an L2 penalty)."""
    text = """dims n = 3, h = 5, c = 2
input x^i : n
label y^l : c
weight W^j_i : h, n
bias b^j : h
weight U^l_j : c, h
v^j = {act}(W^j_i x^i + b^j)
p^l = U^l_j v^j
f = squared_error(p, y) + 0.001 U^l_j U^l_j
"""
    for act, gain in (("relu", 2.0), ("tanh", 1.0)):
        d = einderiv.derive(einderiv.load("net.ein", text=text.format(act=act)), 1)
        got = scales(d, {"W": (5, 3), "b": (5,), "U": (2, 5)})
        assert got == pytest.approx({"W": math.sqrt(gain / 3), "b": 0.5, "U": math.sqrt(gain / 5)})


ONE_CLASS = """dims n = 3, c = 1
input x^i : n
label y^l : c
weight W^j_i : n, n
weight U^l_j : c, n
v^j = tanh(W^j_i x^i)
p^l = U^l_j v^j
f = softmax_cross_entropy(p, y)
"""


def test_a_block_zero_in_exact_arithmetic_is_named_not_vacuous():
    """A softmax over one class: f = (1 − y) p, whose Hessian in p is diag(s) − s sᵀ = 1 − 1 = 0,
    which SymPy does not reduce to 0.  Reference and module are exactly 0 at every draw: zero is the
    answer, not a vanished signal; the report names those rows and passes."""
    report = _report(ONE_CLASS, 2)
    assert report.ok and not report.vacuous, report.format()
    assert report.zeros == ["hessian U,U", "ggn_diagonal W", "ggn_diagonal U"]
    assert report.format().splitlines()[-1] == (
        f"3 rows are exactly 0 at each of {DRAWS} draws, in the reference and in the module, though their blocks "
        "are not 0 symbolically (as with a softmax over one class): hessian U,U, ggn_diagonal W, ggn_diagonal U")
    hessian_w = next(r for r in report.rows if r.name == "hessian W,W")
    assert 0 < hessian_w.error <= 1e-6  # tanh″ keeps that block alive: a real comparison
