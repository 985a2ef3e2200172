"""Hostile and extreme input is answered at once with one line (issue 15, point 3).

Each case below ended on main in an internal error (exit 3), a wrong message, or minutes of
eager evaluation; each must now be one ``file:line:col: what; expected …`` line (exit 2 on
the command line), in well under a second.  The limits are einderiv.frontend.limits's
(docs/security.md).
"""
from __future__ import annotations

import inspect
import sys
import time

import numpy as np
import pytest

import einderiv
from einderiv.cli import main
from einderiv.errors import EinderivError
from einderiv.numcheck import load as load_module

NET = ("dims n = 2\ninput x^i : n\nlabel y^i : n\nweight W^j_i : n, n\np^j = W^j_i x^i\n"
       "f = squared_error(p, y)\n")
REC = ("dims n = 2\ninput x^i : n\nweight W^j_i : n, n\nh(0)^j = x^j\n"
       "h(t)^j = tanh(W^j_i h(t-{lag})^i) for t = 1..{T}\nf = sum_j(h({T})^j)\n")
#: the limits' common ending
LIMITS = " (limits: docs/security.md)"
NESTED = "; expected at most 120 levels (of calls, products, sums): split it into several definitions"


def with_p(expr: str) -> str:
    return NET.replace("p^j = W^j_i x^i", "p^j = " + expr)


def with_fn(body: str) -> str:
    return NET.replace("p^j = W^j_i x^i", f"function g(z) = {body}\np^j = g(W^j_i x^i)")


#: (case, source text, the one line expected; its file is t.ein)
CASES = [
    ("nested calls", with_p("tanh(" * 300 + "W^j_i x^i" + ")" * 300),
     "t.ein:5:1: expression nested 303 deep" + NESTED),
    ("long product", with_p("W^j_i x^i" + " x^k x^k" * 200), "t.ein:5:1: expression nested 403 deep" + NESTED),
    ("long sum", with_p(" + ".join(["W^j_i x^i"] * 300)), "t.ein:5:1: expression nested 302 deep" + NESTED),
    ("inf in a body", with_fn("1e309*z"),
     "t.ein:5:17: in the body of function 'g': the number 1e309 is too large; expected at most 1e+300 in "
     "magnitude" + LIMITS),
    ("zoo body", with_fn("z/0"),
     "t.ein:5:17: the body of function 'g' is not finite: SymPy reads it as zoo*z0 (a division by zero, or a "
     "number beyond float64's range?); expected a finite expression"),
    ("nan body", with_fn("z*0/0"),
     "t.ein:5:17: the body of function 'g' is not finite: SymPy reads it as nan (a division by zero, or a number "
     "beyond float64's range?); expected a finite expression"),
    ("power tower", with_fn("z * 9**9**9**9"),
     "t.ein:5:27: in the body of function 'g': the exponent 3.8742e+08 is too large; expected at most 1000 in "
     "magnitude" + LIMITS),
    ("factorial", with_fn("factorial(10**9) * z"),
     "t.ein:5:27: in the body of function 'g': the constant argument 1e+09 of factorial is too large; expected "
     "at most 100 in magnitude" + LIMITS),
    ("1e999999 in a body", with_fn("1e999999 * z"),
     "t.ein:5:17: in the body of function 'g': the number 1e999999 is too large; expected at most 1e+300 in "
     "magnitude" + LIMITS),
    ("primepi", with_fn("z * primepi(10**12)"),
     "t.ein:5:29: in the body of function 'g': the constant argument 1e+12 of primepi is too large; expected "
     "at most 100 in magnitude" + LIMITS),
    ("big exponent", with_fn("z**100000"),
     "t.ein:5:20: in the body of function 'g': the exponent 100000 is too large; expected at most 1000 in "
     "magnitude" + LIMITS),
    ("constant of a constant", NET.replace("p^j = W^j_i x^i", "function h(z) = z^1000\nfunction g(z) = "
                                           "h(h(100)) * z\np^j = g(W^j_i x^i)"),
     "t.ein:6:19: in the body of function 'g': the constant argument of h is not a plain number; expected "
     "arithmetic in numbers" + LIMITS),
    # a parameter named j makes `1j` a complex literal to Python's parser (the fuzzer's find); in a
    # function body it is the number 1 written beside j, which the juxtaposition rule answers first
    ("complex literal", with_fn("z*1j").replace("g(z)", "g(z, j)").replace("g(W^j_i x^i)", "g(W^j_i x^i, 1)"),
     "t.ein:5:23: function 'g' multiplies by juxtaposition, which only index expressions do; write '*' in a "
     "function body: z*1 * j"),
    ("constant not real", with_fn("z*(-8)**0.5"),
     "t.ein:5:19: in the body of function 'g': the constant (-8) ** 0.5 is too large or not real; expected a real "
     "number of at most 1e+300 in magnitude" + LIMITS),
    ("long body", with_fn("z" + " + z" * 1000),
     "t.ein:5:17: the body of function 'g' has 4001 characters; expected at most 2000 (split it into several "
     "functions)"),
    ("huge literal", with_p("1e100000000 W^j_i x^i"),
     "t.ein:5:7: number 1e100000000 is out of range; expected at most 1e+300 in magnitude"),
    ("tiny literal", with_p("1e-400 W^j_i x^i"),
     "t.ein:5:7: number 1e-400 is out of range; expected at most 1e+300 in magnitude and at least 1e-300 unless 0"),
    ("long name", NET.replace("p^j", "p" + "a" * 1_000_000 + "^j", 1),
     "t.ein:5:1: a name or number of 1000001 characters; expected at most 100"),
    ("long number", with_p("1" * 5000 + " W^j_i x^i"), "t.ein:5:7: a name or number of 5000 characters; expected "
     "at most 100"),
    ("long unroll", REC.format(lag=1, T=1_000_000),
     "t.ein:5:35: range t = 1..1000000 unrolls 1000000 members; expected at most 10000 (EINDERIV_MAX_STEPS or "
     "--max-steps sets the limit)"),
    ("label out of range", REC.format(lag=2, T=3),
     "t.ein:5:21: label out of range: h(-1) is not a member of h, whose labels are 0..3"),
    # a network multiplied by 0 is refused (its derivatives would all be 0), with the reason
    ("zero network", with_p("0 W^j_i x^i"),
     "t.ein:5:7: this expression is identically zero: every term is multiplied by the number 0; expected an "
     "expression with a nonzero term"),
]


@pytest.mark.parametrize("source, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_at_once_with_one_line(source, expected):
    start = time.process_time()  # CPU seconds: the test machine's other load does not count
    with pytest.raises(EinderivError) as info:
        einderiv.derive(einderiv.load("t.ein", text=source), 1)
    assert time.process_time() - start < 1.0
    assert str(info.value).splitlines()[0] == expected


def test_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "t.ein"
    path.write_bytes(NET.encode() + b"# caf\xe9\n")
    with pytest.raises(EinderivError) as info:
        einderiv.load(str(path))
    assert str(info.value) == f"{path}:7:6: byte 0xe9 is not UTF-8; expected a UTF-8 text file"


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "t.ein"
    path.write_bytes(b"\xef\xbb\xbf" + NET.encode())
    net = einderiv.load(str(path))
    assert str(net.objective) == "f"
    assert einderiv.check(einderiv.derive(net, 2), seed=1).ok
    assert str(einderiv.load("t.ein", text="\ufeff" + NET).objective) == "f"


def test_nesting_just_inside_the_limit_is_derived_and_checked():
    """The limit is not a guess: 115 nested smooth calls derive, and their gradient is right."""
    text = with_p("tanh(" * 115 + "W^j_i x^i" + ")" * 115)
    assert einderiv.check(einderiv.derive(einderiv.load("t.ein", text=text), 1), seed=2).ok


def test_the_unroll_limit_is_settable(monkeypatch):
    source = REC.format(lag=1, T=20)
    monkeypatch.setenv("EINDERIV_MAX_STEPS", "10")
    with pytest.raises(EinderivError, match=r"unrolls 20 members; expected at most 10 "):
        einderiv.load("t.ein", text=source)
    monkeypatch.setenv("EINDERIV_MAX_STEPS", "20")
    assert einderiv.load("t.ein", text=source).objective is not None


@pytest.mark.parametrize("size, expected", [
    (99999999, "99,999,996,000,000,059,999,999,600,000,001 elements (9,999,999,800,000,001 parameters to the "
               "power 2, the dense derivatives)"),
    (100000, "100,000,000,000,000,000,000 elements (10,000,000,000 parameters to the power 2, the dense "
             "derivatives)"),
])
def test_check_refuses_huge_sizes_at_once(size, expected):
    d = einderiv.derive(einderiv.load("t.ein", text=NET.replace("n = 2", f"n = {size}")), 2)
    start = time.process_time()
    with pytest.raises(EinderivError) as info:
        einderiv.check(d)
    assert time.process_time() - start < 1.0
    assert str(info.value) == (f"t.ein: check would allocate an array of {expected}; the limit is 100,000,000 "
                               "(--max-size or EINDERIV_MAX_SIZE sets it)")


def test_the_size_limit_is_settable(monkeypatch):
    d = einderiv.derive(einderiv.load("t.ein", text=NET), 2)  # 4 parameters: a 16-element Hessian
    assert einderiv.api.largest_array(d) == 16
    monkeypatch.setenv("EINDERIV_MAX_SIZE", "15")
    with pytest.raises(EinderivError, match="an array of 16 elements .* the limit is 15 "):
        einderiv.check(d)


def test_constants_beyond_float64_in_check_are_one_line():
    """1e300 is a legal literal, but its square in the Hessian is not a float64."""
    d = einderiv.derive(einderiv.load("t.ein", text=with_p("1e300 W^j_i x^i")), 2)
    with pytest.raises(EinderivError, match=r"^t.ein: a constant of the derivatives is beyond float64's range"):
        with pytest.warns(RuntimeWarning):
            einderiv.check(d)


@pytest.mark.parametrize("argv, expected", [
    (["check", "{f}", "--seed", "-1"], "einderiv: error: --seed must be a non-negative integer, got -1"),
    (["check", "{f}", "--tol", "nan"], "einderiv: error: --tol must be a non-negative number, got nan"),
    (["check", "{f}", "--tol", "-1"], "einderiv: error: --tol must be a non-negative number, got -1.0"),
    (["check", "{f}", "--max-size", "0"], "einderiv: error: --max-size must be a positive integer, got 0"),
    (["check", "{f}", "--max-size", "3"], "einderiv: error: {f}: check would allocate an array of 16 elements "
     "(4 parameters to the power 2, the dense derivatives); the limit is 3 (--max-size or EINDERIV_MAX_SIZE "
     "sets it)"),
    (["codegen", "{f}", "-o", "/nonexistent/x"],
     "einderiv: error: -o /nonexistent/x: no directory /nonexistent; expected a file in an existing directory"),
    (["codegen", "{f}", "-o", "{d}"], "einderiv: error: -o {d}: is a directory; expected a file name"),
    (["derive", "{f}", "--max-steps", "x"],
     "einderiv: error: argument --max-steps: invalid int value: 'x'"),
])
def test_command_line_options_exit_2_with_one_line(tmp_path, capsys, argv, expected):
    f = tmp_path / "t.ein"
    f.write_text(NET)
    argv = [a.format(f=f, d=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == expected.format(f=f, d=tmp_path) + "\n"


def test_max_steps_on_the_command_line(tmp_path, capsys):
    f = tmp_path / "r.ein"
    f.write_text(REC.format(lag=1, T=5))
    assert main(["derive", str(f), "--order", "1", "--max-steps", "4"]) == 2
    assert "unrolls 5 members; expected at most 4 (" in capsys.readouterr().err
    assert main(["derive", str(f), "--order", "1", "--max-steps", "5"]) == 0


# ------------------------------------------------------------ long chains of definitions
def chain(length: int) -> str:
    """``length`` linear layers with no activation between them (one weight, shared)."""
    return ("dims n = 2\ninput x^i : n\nlabel y^i : n\nweight W^j_i : n, n\nh0^j = W^j_i x^i\n"
            + "".join(f"h{k + 1}^j = W^j_i h{k}^i\n" for k in range(length)) + f"f = squared_error(h{length}, y)\n")


def test_tangents_of_a_long_chain_do_not_recurse_per_link():
    """The Hessian-vector pass defined each tangent inside the one after it: two frames per
    definition, a RecursionError at 250 chained definitions.  It is iterative now: 40 links
    derive with about 100 frames to spare, where they needed 135."""
    net = einderiv.load("t.ein", text=chain(40))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 110)
    try:
        d = einderiv.derive(net, 2)
    finally:
        sys.setrecursionlimit(limit)
    assert einderiv.check(d, seed=3).ok


def test_a_sum_of_thousands_of_terms_compiles():
    """120 chained layers: the per-sample gradient norms of W sum 7,381 products of factors;
    written flat, Python's compiler hit its recursion limit (exit 3 in check).  The values are
    compared with the closed form ∂f/∂W = Σ_k (Wᵀ)^(120−k) r (W^k x)ᵀ, r = W^121 x − y, at a
    rotation W (its powers stay of size 1); central differences of a degree-242 polynomial are
    not accurate to 1e-6, so ``check`` is not the reference here."""
    d = einderiv.derive(einderiv.load("t.ein", text=chain(120)), 1)
    src = einderiv.codegen(d)
    assert max(line.count(" + ") for line in src.splitlines()) > 7000
    compile(src, "chain120", "exec")
    mod = load_module(src)
    rng = np.random.default_rng(4)
    a = 0.3
    w = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * 1.001
    x, y = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    powers = [np.eye(2)]
    for _ in range(121):
        powers.append(w @ powers[-1])
    want = []
    for xb, yb in zip(x, y):
        r = powers[121] @ xb - yb
        want.append(sum(np.outer(powers[120 - k].T @ r, powers[k] @ xb) for k in range(121)))
    want = np.array(want)
    params, data = {"W": w}, {"x": x, "y": y}
    np.testing.assert_allclose(mod["per_sample_gradient"](params, data)["W"], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mod["gradient"](params, data)["W"], want.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mod["per_sample_gradient_norms"](params, data)["W"],
                               np.linalg.norm(want.reshape(3, -1), axis=1), rtol=1e-12)
