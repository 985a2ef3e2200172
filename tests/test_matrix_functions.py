"""Matrix functions ``logdet(S)``, ``det(S)``, ``trace(S)`` and ``inv(S)^i_j``: derived, generated, checked.

Their derivatives are closed forms through the inverse (∂ logdet X/∂X^a_b = inv(X)^b_a,
∂ det X = det X · inv(X)^b_a, ∂ inv(X)^i_j = −inv(X)^i_a ∂X^a_b inv(X)^b_j), so every order stays
closed.  The classic matrix-calculus problems — the log-det barrier, xᵀA⁻¹x, trace(AB), det — are
compared at orders 1 and 2 with their textbook closed forms (written out below in NumPy, not
through einderiv) and with central differences (``einderiv.check``); an argument that depends on
the sample (a batch of inverses) and one defined as L Lᵀ + A are also compared with torch's
autodiff (``torch.func.hessian``) and with the independent evaluator of tests/reference.py.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import einderiv
from einderiv import runtime
from einderiv.draws import conditioning, matrix_args, near_identity
from einderiv.errors import FunctionError, IndexError_, NameError_, ShapeError
from einderiv.frontend.check import load
from einderiv.ir import Inv, MatDet, walk
from reference import Reference, error

BACKENDS = ["numpy", "torch", "jax"]
ROOT = pathlib.Path(__file__).resolve().parents[1]


def derive(text: str, order: int = 2):
    return einderiv.derive(load("t.ein", text), order)


def module(text: str, order: int = 2, backend: str = "numpy") -> dict:
    """The generated module of ``text`` in ``backend``, taking and returning NumPy arrays."""
    if backend != "numpy":
        pytest.importorskip(backend)
    return runtime.numpy_view(runtime.load(einderiv.codegen(derive(text, order), backend=backend)), backend)


def spd_free(rng, n: int) -> np.ndarray:
    """A well-conditioned matrix with det > 0 (not symmetric: transposes must be right)."""
    return near_identity(rng, (n, n))


BARRIER = "dims n = 3\nweight X^i_j : n, n\nf = -logdet(X)\n"
QUADRATIC = "dims n = 3\ninput x^i : n\nweight A^i_j : n, n\nf = x^i inv(A)^i_j x^j\n"
TRACE = "dims n = 3, m = 2\nweight A^i_j : n, m\nweight B^j_k : m, n\nC^i_k = A^i_j B^j_k\nf = trace(C)\n"
DET = "dims n = 3\nweight A^i_j : n, n\nf = det(A)\n"


def test_the_calls_parse_to_their_nodes():
    net = load("t.ein", "dims n = 3\ninput x^i : n\nweight A^i_j : n, n\nf = logdet(A) + det(A) + trace(A) "
                        "+ x^i inv(A)^i_j x^j\n")
    nodes = list(walk(net.definition("f").expr))
    kinds = sorted(e.kind for e in nodes if isinstance(e, MatDet))
    assert kinds == ["det", "logdet"]
    (inv,) = [e for e in nodes if isinstance(e, Inv)]
    assert [ix.name for ix in inv.free] == ["i", "j"] and inv.arg.indices == (inv.row, inv.col)


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_det_barrier_against_its_closed_form(backend):
    """f = −log det X: ∇f = −X⁻ᵀ; ∂²f/∂X_ab∂X_st = X⁻¹_bs X⁻¹_ta."""
    mod = module(BARRIER, 2, backend)
    X = spd_free(np.random.default_rng(0), 3)
    Xi = np.linalg.inv(X)
    params = {"X": X}
    assert abs(float(np.mean(mod["objective"](params, {}))) + np.linalg.slogdet(X)[1]) < 1e-12
    assert error(mod["gradient"](params, {})["X"], -Xi.T) < 1e-12
    want = np.einsum("bs,ta->abst", Xi, Xi)
    assert error(mod["hessian"](params, {})[("X", "X")], want) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_quadratic_form_with_an_inverse_against_its_closed_form(backend):
    """f = xᵀA⁻¹x, u = A⁻ᵀx, v = A⁻¹x: ∇f = −u vᵀ; ∂²f/∂A_ab∂A_st = u_s A⁻¹_ta v_b + u_a A⁻¹_bs v_t
    (the batch mean of each)."""
    mod = module(QUADRATIC, 2, backend)
    rng = np.random.default_rng(1)
    A, x = spd_free(rng, 3), rng.normal(size=(4, 3))
    Ai = np.linalg.inv(A)
    u, v = x @ Ai, x @ Ai.T  # rows: u = A⁻ᵀx, v = A⁻¹x per sample
    params, data = {"A": A}, {"x": x}
    np.testing.assert_allclose(mod["objective"](params, data), np.einsum("bi,bi->b", x, v), rtol=1e-12)
    assert error(mod["gradient"](params, data)["A"], -np.einsum("ba,bc->ac", u, v) / 4) < 1e-12
    want = (np.einsum("bs,ta,bc->acst", u, Ai, v) + np.einsum("ba,cs,bt->acst", u, Ai, v)) / 4
    assert error(mod["hessian"](params, data)[("A", "A")], want) < 1e-12


def test_trace_of_a_product_against_its_closed_form():
    """f = tr(AB): ∇_A f = Bᵀ, ∇_B f = Aᵀ, ∂²f/∂A_ij∂B_st = δ_js δ_it, ∂²f/∂A∂A = 0."""
    mod = module(TRACE)
    rng = np.random.default_rng(2)
    params = {"A": rng.normal(size=(3, 2)), "B": rng.normal(size=(2, 3))}
    np.testing.assert_allclose(mod["objective"](params, {}), np.trace(params["A"] @ params["B"]), rtol=1e-12)
    grad = mod["gradient"](params, {})
    assert error(grad["A"], params["B"].T) < 1e-14 and error(grad["B"], params["A"].T) < 1e-14
    hess = mod["hessian"](params, {})
    assert error(hess[("A", "B")], np.einsum("js,it->ijst", np.eye(2), np.eye(3))) < 1e-14
    assert not np.any(hess[("A", "A")])


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_against_its_closed_form(backend):
    """f = det A: ∇f = det A · A⁻ᵀ; ∂²f/∂A_ab∂A_st = det A (A⁻¹_ts A⁻¹_ba − A⁻¹_bs A⁻¹_ta)."""
    mod = module(DET, 2, backend)
    A = spd_free(np.random.default_rng(3), 3)
    Ai, det = np.linalg.inv(A), np.linalg.det(A)
    assert error(mod["gradient"]({"A": A}, {})["A"], det * Ai.T) < 1e-12
    want = det * (np.einsum("ts,ba->abst", Ai, Ai) - np.einsum("bs,ta->abst", Ai, Ai))
    assert error(mod["hessian"]({"A": A}, {})[("A", "A")], want) < 1e-12


@pytest.mark.parametrize("text", [BARRIER, QUADRATIC, TRACE, DET], ids=["barrier", "quadratic", "trace", "det"])
@pytest.mark.parametrize("order", [2, 3])
def test_classic_problems_pass_check(text, order):
    """Central differences of every generated function, to the third derivative."""
    report = einderiv.check(derive(text, order), seed=4)
    assert report.ok, report.format()
    assert not report.notes or all("reads no data" in n for n in report.notes), report.notes


#: an argument that depends on the sample (a batch of inverses) and is defined, not declared
SAMPLE = """dims d = 3, k = 2, n = 2
input  x^a   : d
input  z^i   : n
label  y^a   : d
weight A^a_b : d, d
weight L^a_k : d, k
weight W^a_i : d, n
g^a   = tanh(W^a_i z^i)
S^a_b = A^a_b + L^a_k L^b_k + x^a x^b
f     = logdet(S) + g^a inv(S)^a_b g^b + 0.1 det(S) - 0.5 y^a g^a
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sample_dependent_argument_passes_check(backend):
    """Gradients, Hessian blocks (tanh: smooth), GGN and HVPs of a batch of 3×3 inverses and
    determinants against central differences; torch and JAX also against the NumPy module."""
    if backend != "numpy":
        pytest.importorskip(backend)
    report = einderiv.check(derive(SAMPLE), seed=5, backend=backend)
    assert not report.notes, report.notes
    assert report.ok, report.format()
    assert sum(r.name.startswith("hessian ") for r in report.rows) >= 9


def test_a_sample_dependent_argument_against_torch_autodiff():
    """The generated per-sample gradient and Hessian against torch.func of the same formula."""
    torch = pytest.importorskip("torch")
    mod = module(SAMPLE)
    rng = np.random.default_rng(6)
    params = {"A": near_identity(rng, (3, 3)), "L": rng.normal(0, 0.3, (3, 2)), "W": rng.normal(0, 0.5, (3, 2))}
    data = {"x": rng.normal(0, 0.5, (2, 3)), "z": rng.normal(size=(2, 2)), "y": rng.uniform(size=(2, 3))}
    names = ["A", "L", "W"]

    def f(A, L, W, x, z, y):
        g = torch.tanh(W @ z)
        S = A + L @ L.T + torch.outer(x, x)
        return torch.logdet(S) + g @ torch.linalg.inv(S) @ g + 0.1 * torch.det(S) - 0.5 * y @ g

    t = {k: torch.tensor(v) for k, v in {**params, **data}.items()}
    hess = {(a, b): 0.0 for a in names for b in names}
    for s in range(2):
        args = [t[n] for n in names] + [t[n][s] for n in ("x", "z", "y")]
        h = torch.func.hessian(f, argnums=(0, 1, 2))(*args)
        g = torch.func.grad(f, argnums=(0, 1, 2))(*args)
        for k, a in enumerate(names):
            assert error(mod["per_sample_gradient"](params, data)[a][s], g[k].numpy()) < 1e-10
            for m, b in enumerate(names):
                hess[(a, b)] = hess[(a, b)] + h[k][m].numpy() / 2
    got = mod["hessian"](params, data)
    for key, want in hess.items():
        assert error(got[key], want) < 1e-10, key


def test_the_reference_evaluator_agrees():
    ref = Reference(lambda: load("t.ein", SAMPLE))
    mod = module(SAMPLE, 1)
    rng = np.random.default_rng(7)
    params = {"A": near_identity(rng, (3, 3)), "L": rng.normal(0, 0.3, (3, 2)), "W": rng.normal(0, 0.5, (3, 2))}
    data = {"x": rng.normal(0, 0.5, (3, 3)), "z": rng.normal(size=(3, 2)), "y": rng.uniform(size=(3, 3))}
    np.testing.assert_allclose(mod["objective"](params, data), ref.objective(params, data), rtol=1e-12)
    want = ref.gradient(params, data)
    got = mod["per_sample_gradient"](params, data)
    for name in params:
        assert error(got[name], want[name]) < 1e-7, name


@pytest.mark.parametrize("backend", BACKENDS)
def test_logdet_of_a_negative_determinant_is_nan(backend):
    """slogdet's sign ≤ 0: the generated logdet is NaN (documented), never log|det|."""
    mod = module(BARRIER, 1, backend)
    X = np.diag([1.0, 1.0, -1.0])
    assert np.isnan(mod["objective"]({"X": X}, {}))
    assert np.isfinite(mod["objective"]({"X": np.eye(3)}, {}))


def test_check_draws_matrix_arguments_near_the_identity():
    d = derive(SAMPLE)
    assert matrix_args(d) == []  # S is defined: its draws are redrawn while ill-conditioned instead
    d = derive(QUADRATIC)
    assert matrix_args(d) == ["A"]
    rng = np.random.default_rng(8)
    draws = near_identity(rng, (200, 5, 5))
    assert np.all(np.linalg.slogdet(draws)[0] > 0) and np.all(np.linalg.cond(draws) < 10)
    assert conditioning(np.diag([1.0, 1.0, -1.0]), logdet=True) < 1e-200
    assert conditioning(np.diag([1.0, 1.0, -1.0]), logdet=False) == pytest.approx(1.0)


def test_printed_forms_and_determinism():
    d = derive(QUADRATIC)
    text = einderiv.derivation_text(d)
    assert "x^i inv(A)^i_j x^j" in text
    assert "∂f/∂A^i_j = −(x^l inv(A)^l_i) ⊗ (x^m inv(A)^j_m)" in text
    tex = einderiv.latex(d)
    assert r"\left(A^{-1}\right)^{i}_{j}" in tex
    assert r"\log\det X" in einderiv.latex(derive(BARRIER))
    trace = derive(TRACE)
    assert "f = tr(C)" in einderiv.derivation_text(trace) and r"\operatorname{tr} C" in einderiv.latex(trace)
    assert tex == einderiv.latex(derive(QUADRATIC)) and text == einderiv.derivation_text(derive(QUADRATIC))
    assert einderiv.codegen(d) == einderiv.codegen(derive(QUADRATIC))
    assert "np.linalg.inv" in einderiv.codegen(d) and "np.linalg.slogdet" in einderiv.codegen(derive(BARRIER))


def test_sympy_block_says_it_cannot_write_a_matrix_function():
    with pytest.raises(einderiv.errors.UsageError, match="cannot write inv"):
        derive(QUADRATIC, 1).sympy_block("A")


HEAD = "dims n = 3, m = 2\ninput x^i : n\nweight A^i_j : n, n\nweight B^i_j : n, m\nweight v^i : n\n"

#: (snippet after HEAD, exception class, the message with its location)
BAD = [
    ("f = logdet(B)", ShapeError,
     "t.ein:6:12: logdet needs a square matrix, but B^i_j is n (3) × m (2); expected two indices of equal size"),
    ("f = trace(B)", ShapeError,
     "t.ein:6:11: trace needs a square matrix, but B^i_j is n (3) × m (2); expected two indices of equal size"),
    ("f = logdet(v)", ShapeError,
     "t.ein:6:12: logdet needs a square matrix (a tensor with two indices of equal size), but v^i has 1 index"),
    ("s = 2\nf = det(s)", ShapeError,
     "t.ein:7:9: det needs a square matrix (a tensor with two indices of equal size), but s has 0 indices"),
    ("f = x^i inv(A) x^i", IndexError_,
     "t.ein:6:9: inv(A) is a matrix: write its two indices (row, column) after the call, as in inv(A)^i_j; got 0"),
    ("f = x^i inv(A)^i x^i", IndexError_,
     "t.ein:6:16: inv(A) is a matrix: write its two indices (row, column) after the call, as in inv(A)^i_j; got 1"),
    ("f = x^i inv(A)^{i,j,k}", IndexError_,
     "t.ein:6:17: inv(A) is a matrix: write its two indices (row, column) after the call, as in inv(A)^i_j; got 3"),
    ("f = logdet(A)^i x^i", IndexError_, "t.ein:6:15: logdet(A) is a number: it takes no indices (write logdet(A))"),
    ("f = logdet(A^i_j)", FunctionError,
     "t.ein:6:12: the argument of logdet must be the bare name of a square tensor (write A, not A^i_j), as in "
     "logdet(S); for an expression define it first (S^a_b = ...) and write logdet(S)"),
    ("f = logdet(x^i A^i_j)", FunctionError,
     "t.ein:6:12: the argument of logdet must be the bare name of a square tensor, as in logdet(S); for an "
     "expression define it first (S^a_b = ...) and write logdet(S)"),
    ("f = logdet(A, A)", FunctionError, "t.ein:6:5: logdet takes 1 argument, a square matrix, as in logdet(S); got 2"),
    ("f = det(C)", NameError_, "t.ein:6:9: undefined tensor 'C'; expected a declared or defined tensor: x, A, B, v, f"),
    ("function inv(z) = z\nf = logdet(A)", NameError_,
     "t.ein:6:1: 'inv' is the built-in matrix function inv(S); choose another function name"),
]


@pytest.mark.parametrize("snippet,cls,message", BAD, ids=[b[0] for b in BAD])
def test_misuse_is_a_located_error(snippet, cls, message):
    with pytest.raises(cls) as info:
        load("t.ein", HEAD + snippet + "\n")
    assert str(info.value).splitlines()[0] == message


def test_misuse_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "t.ein"
    path.write_text(HEAD + "f = logdet(B)\n")
    from einderiv.cli import main
    assert main(["derive", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "logdet needs a square matrix" in err[0]


def test_structure_report_agrees_with_numeric_ranks():
    """logdet_gaussian.ein: the report says the covariance's gradient has no outer-product
    structure and the mean's weights one outer product; per sample, the numeric ranks of the
    generated gradients are d (full) and 1."""
    d = einderiv.derive(einderiv.load(str(ROOT / "derivations" / "logdet_gaussian.ein")))
    rows = {line.split()[0]: line for line in einderiv.structure(d).splitlines() if line[:1] in "WUS"}
    assert "no outer-product structure" in rows["S"] and "one outer product" in rows["W"]
    mod = runtime.numpy_view(runtime.load(einderiv.codegen(d)), "numpy")
    rng = np.random.default_rng(9)
    params = {"W": rng.normal(0, 0.5, (5, 4)), "U": rng.normal(0, 0.5, (3, 5)), "S": near_identity(rng, (3, 3))}
    data = {"x": rng.normal(size=(4, 4)), "y": rng.normal(size=(4, 3))}
    grads = mod["per_sample_gradient"](params, data)
    for b in range(4):
        assert np.linalg.matrix_rank(grads["S"][b], tol=1e-9) == 3
        assert np.linalg.matrix_rank(grads["W"][b], tol=1e-9) == 1


def test_inv_of_a_singular_matrix_raises_in_numpy_and_torch_and_is_not_finite_in_jax():
    """What docs/notation.md says of a singular argument."""
    singular = {"A": np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]])}
    data = {"x": np.ones((1, 3))}
    with pytest.raises(np.linalg.LinAlgError):
        module(QUADRATIC, 1)["objective"](singular, data)
    torch = pytest.importorskip("torch")
    with pytest.raises(torch.linalg.LinAlgError):
        module(QUADRATIC, 1, "torch")["objective"](singular, data)
    assert not np.all(np.isfinite(module(QUADRATIC, 1, "jax")["objective"](singular, data)))
