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


#: a network with one line 6 that reads as batch norm in training mode
BATCH_NORM = ("dims n = 3\ninput x^i : n\nlabel y^j : n\nweight W^j_i : n, n\nz^j = W^j_i x^i\n{stat}\n"
              "h^j = z^j - m^j\nf = squared_error(h, y)\n")
BATCH_WHY = ("which nothing in its argument carries: the batch is not an index (each input is one sample, every "
             "definition per sample), so a statistic over the batch (batch norm in training mode) cannot be "
             "written; expected the statistic passed as data, e.g. input mu^j : n (docs/notation.md, statistics "
             "over the batch)")


@pytest.mark.parametrize("stat, expected", [
    ("m^j = mean_b(z^j)", "t.ein:6:14: mean_b reduces over 'b', " + BATCH_WHY),
    ("m^j = sum_batch(z^j)", "t.ein:6:17: sum_batch reduces over 'batch', " + BATCH_WHY),
    ("m^j = mean_sample(z^j z^j)", "t.ein:6:19: mean_sample reduces over 'sample', " + BATCH_WHY),
    # another name: the general message (a typo as likely as a batch)
    ("m^j = mean_k(z^j)", "t.ein:6:14: mean_k reduces over index 'k', but 'k' is not free in its argument (its "
     "free indices are {j}); expected an expression that carries k, e.g. mean_k(x^k)"),
    # the batch size as a tensor: not declared
    ("m^j = sum_i(z^j) / B", "t.ein:6:20: undefined tensor 'B'; expected a declared or defined tensor: x, y, W, "
     "z, m, h, f"),
])
def test_a_statistic_over_the_batch_is_refused_with_the_reason(stat, expected):
    with pytest.raises(EinderivError) as info:
        einderiv.load("t.ein", text=BATCH_NORM.format(stat=stat))
    assert str(info.value).splitlines()[0] == expected


def test_batch_statistics_passed_as_data_derive_and_check():
    """The pattern the refusal recommends (docs/notation.md): its gradient and Hessian blocks
    agree with finite differences (smooth: tanh after the normalisation)."""
    text = ("dims n = 3\ninput x^i : n\ninput mu^j : n\ninput v^j : n positive\nlabel y^j : n\n"
            "weight W^j_i : n, n\nweight U^k_j : n, n\nfunction nrm(z, m, s) = (z - m) / sqrt(s + 1/1000)\n"
            "h^j = tanh(nrm(W^j_i x^i, mu^j, v^j))\np^k = U^k_j h^j\nf = squared_error(p, y)\n")
    report = einderiv.check(einderiv.derive(einderiv.load("t.ein", text=text), 2), seed=5)
    assert report.ok and len(report.rows) >= 10, report.format()


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
    assert str(info.value) == (f"t.ein:4:1: check would allocate an array of {expected}; the limit is 100,000,000 "
                               "(--max-size or EINDERIV_MAX_SIZE sets it)")


def test_the_size_limit_is_settable(monkeypatch):
    d = einderiv.derive(einderiv.load("t.ein", text=NET), 2)  # 4 parameters: a 16-element Hessian
    assert einderiv.api.largest_array(d) == 16
    monkeypatch.setenv("EINDERIV_MAX_SIZE", "15")
    with pytest.raises(EinderivError, match="an array of 16 elements .* the limit is 15 "):
        einderiv.check(d)


BEYOND = ("(from its powers in the exact derivatives), beyond float64's range (about 1.8e+308); expected a smaller number "
          "(rescale the data or the weights instead)")
SIZE_LIMIT = "(--max-size or EINDERIV_MAX_SIZE sets it)"

#: (case, source text, order, job, EINDERIV_MAX_SIZE or None, the one line expected): refused when the
#: module is generated (codegen, and check, which runs it), at the line that asked for it
GENERATION = [
    # 1e300 is a legal literal, but the Hessian holds its square: the module raised OverflowError when run
    ("1e300 in the Hessian", with_p("1e300 W^j_i x^i"), 2, "codegen", None,
     "t.ein:5:7: number 1e300 gives the generated code the constant 1.00e+600 " + BEYOND),
    ("1e300 in check", with_p("1e300 W^j_i x^i"), 2, "check", None,
     "t.ein:5:7: number 1e300 gives the generated code the constant 1.00e+600 " + BEYOND),
    # at order 1 the per-sample gradient norms hold the square; the largest literal is the one named
    ("1e200 in the norms", with_p("3 W^j_i x^i + 1e200 W^j_i x^i"), 1, "codegen", None,
     "t.ein:5:21: number 1e200 gives the generated code the constant 1.00e+400 " + BEYOND),
    # 1e-300's square, 1e-600, was written 1/10**600: an OverflowError too (int too large to convert)
    ("1e-300 in the Hessian", with_p("1e-300 W^j_i x^i"), 2, "codegen", None,
     "t.ein:5:7: number 1e-300 gives the generated code the constant 1.00e-600 (from its powers in the exact "
     "derivatives), below float64's range (about 2.2e-308); expected a larger number (rescale the data or the "
     "weights instead)"),
    # (0.5 + 1e-300)² is about 0.25, but exact: a 600-digit numerator over a 600-digit denominator
    ("exact sum", with_p("0.5 W^j_i x^i + 1e-300 W^j_i x^i"), 2, "codegen", None,
     "t.ein:5:23: number 1e-300 gives the generated code the constant 2.50e+599 (from its powers in the exact "
     "derivatives), beyond float64's range (about 1.8e+308); expected a larger number (rescale the data or the "
     "weights instead)"),
    ("just beyond", with_p("2e154 W^j_i x^i"), 2, "codegen", None,
     "t.ein:5:7: number 2e154 gives the generated code the constant 4.00e+308 " + BEYOND),
    ("dense Hessian of codegen", NET.replace("n = 2", "n = 100000"), 2, "codegen", None,
     "t.ein:4:1: the generated module would allocate an array of 100,000,000,000,000,000,000 elements "
     "(10,000,000,000 parameters to the power 2, the dense derivatives); the limit is 100,000,000 " + SIZE_LIMIT),
    ("settable for codegen", NET, 2, "codegen", "15",
     "t.ein:4:1: the generated module would allocate an array of 16 elements (4 parameters to the power 2, "
     "the dense derivatives); the limit is 15 " + SIZE_LIMIT),
    ("a batch in check", NET, 1, "check", "5",
     "t.ein:2:1: check would allocate an array of 6 elements (a batch of x); the limit is 5 " + SIZE_LIMIT),
]


@pytest.mark.parametrize("source, order, job, limit, expected", [c[1:] for c in GENERATION],
                         ids=[c[0] for c in GENERATION])
def test_refused_when_generated(monkeypatch, source, order, job, limit, expected):
    if limit is not None:
        monkeypatch.setenv("EINDERIV_MAX_SIZE", limit)
    d = einderiv.derive(einderiv.load("t.ein", text=source), order)
    start = time.process_time()
    with pytest.raises(EinderivError) as info:
        getattr(einderiv, job)(d)
    assert time.process_time() - start < 2.0
    assert str(info.value) == expected


def test_constants_float64_holds_are_generated_and_right():
    """1e154 squared is 1e308, a float64: the module is generated, runs, and its gradient is
    the finite differences' (check: every block but the norms, whose values overflow)."""
    d = einderiv.derive(einderiv.load("t.ein", text=with_p("1e154 W^j_i x^i")), 2)
    src = einderiv.codegen(d)
    assert "100000000000000000000" in src  # the exact constants, written out
    d = einderiv.derive(einderiv.load("t.ein", text=with_p("1e50 W^j_i x^i")), 2)
    report = einderiv.check(d, seed=1)
    assert report.ok, report.format()


def test_codegen_order_1_has_no_dense_hessian_to_limit(monkeypatch):
    monkeypatch.setenv("EINDERIV_MAX_SIZE", "5")
    assert "def gradient" in einderiv.codegen(einderiv.derive(einderiv.load("t.ein", text=NET), 1))


@pytest.mark.parametrize("job, expected", [
    ("derivation_text", "einderiv: derivatives of f for a\\x1b[2Jb\\n\\x07.ein (order 1)"),
    ("latex", r"\texttt{a{\char92}x1b[2Jb{\char92}n{\char92}x07.ein}"),
])
def test_control_characters_of_a_path_are_shown_escaped(job, expected):
    """A path's ESC (which a terminal obeys), newline or bell is printed as its escape."""
    d = einderiv.derive(einderiv.load("a\x1b[2Jb\n\x07.ein", text=NET), 1)
    out = getattr(einderiv, job)(d)
    assert expected in out
    assert not any(ch in out for ch in "\x1b\x07")


@pytest.mark.parametrize("argv, expected", [
    (["check", "{f}", "--seed", "-1"], "einderiv: error: --seed must be a non-negative integer, got -1"),
    (["check", "{f}", "--tol", "nan"], "einderiv: error: --tol must be a non-negative number, got nan"),
    (["check", "{f}", "--tol", "-1"], "einderiv: error: --tol must be a non-negative number, got -1.0"),
    (["check", "{f}", "--max-size", "0"], "einderiv: error: --max-size must be a positive integer, got 0"),
    (["codegen", "{f}", "--max-size", "3"], "{f}:4:1: the generated module would allocate an array of 16 "
     "elements (4 parameters to the power 2, the dense derivatives); the limit is 3 (--max-size or "
     "EINDERIV_MAX_SIZE sets it)"),
    (["check", "{f}", "--max-size", "3"], "{f}:4:1: check would allocate an array of 16 elements "
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


@pytest.mark.parametrize("command", ["codegen", "check"])
def test_beyond_float64_on_the_command_line(tmp_path, capsys, command):
    """Exit 2 and the one line, no OverflowError from the module (nor a MemoryError showing its warning)."""
    f = tmp_path / "t.ein"
    f.write_text(with_p("1e300 W^j_i x^i"))
    assert main([command, str(f)]) == 2
    assert capsys.readouterr().err == f"{f}:5:7: number 1e300 gives the generated code the constant 1.00e+600 {BEYOND}\n"


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


@pytest.mark.slow  # a 600-link chain derived to its tangents: ~7 s of CPU; .ci/run runs it
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
