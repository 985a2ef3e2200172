"""Every bad-input message of the front end, pinned with its file:line:col.

The table is the list of messages in docs/notation.md ("Error messages").
Each source is HEAD (lines 1-4) followed by the snippet, so line 5 is the
snippet's first line.
"""
from __future__ import annotations

import re

import pytest

from einderiv.frontend.check import load
from einderiv.ir import Name
from einderiv.errors import (EinderivError, FunctionError, IndexError_, NameError_, ParseError, ShapeError,
                             UsageError)

HEAD = """dims n0 = 4, n1 = 5, c = 3
input x^i : n0
label y^l : c
weight W^j_i : n1, n0
"""
OK = "\nf = x^i x^i"  # a valid objective, for snippets about something else

#: what a power in a network expression is told to be written as
INSTEAD = ("write square(...) for an elementwise square, a product such as x^j x^j for a sum of squares, or a "
           "function with the power in its body (function cube(z) = z^3)")

#: (snippet after HEAD, exception class, exact first line of str(err))
BAD = [
    # --- syntax
    ("f = (x^i x^i", ParseError,
     "t.ein:5:13: syntax error: unexpected end of line; expected one of: ')', '+', '-'"),
    ("f = x^i $ x^i", ParseError,
     "t.ein:5:9: syntax error: unexpected '$'; expected one of: '(', '*', '+', '-', '/', '^', '_', 'for', "
     "a function call, a number, a tensor name, end of line"),
    ("weight V^j_i : n1 n0", ParseError,
     "t.ein:5:19: syntax error: unexpected 'n0'; expected one of: ',', 'for', a domain (positive, probability, "
     "onehot), end of line"),
    ("dims h = x", ParseError, "t.ein:5:10: syntax error: unexpected 'x'; expected one of: an integer"),
    ("v^1 = x^i", ParseError, "t.ein:5:3: syntax error: unexpected '1'; expected one of: '{', an index"),
    # a power in a network expression names what to write instead (square(), x^j x^j, a function)
    ("f = x^i^2", ParseError, "t.ein:5:8: syntax error: a power is not written with '^' in a network "
     "expression ('^' starts an index group: x^i); " + INSTEAD),
    ("v^j = tanh(W^j_i x^i)^2" + OK, ParseError, "t.ein:5:22: syntax error: a power is not written with '^' in "
     "a network expression ('^' starts an index group: x^i); " + INSTEAD),
    ("f = (x^i x^i) ** 2", ParseError, "t.ein:5:15: syntax error: a power is not written with '**' in a "
     "network expression; " + INSTEAD),
    ("f = inputs^j^2", ParseError, "t.ein:5:13: syntax error: a power is not written with '^' in a network "
     "expression ('^' starts an index group: x^i); " + INSTEAD),  # a name that begins with a keyword
    # a statement keyword used as a tensor name
    ("padded^j = x^j" + OK, ParseError, "t.ein:5:1: syntax error: 'padded' begins a statement (padded x, v1) and "
     "cannot name a tensor; choose another name"),
    ("  input^j = x^j" + OK, ParseError, "t.ein:5:3: syntax error: 'input' begins a statement (input x^i : n) and "
     "cannot name a tensor; choose another name"),
    ("weight = x^i x^i", ParseError, "t.ein:5:1: syntax error: 'weight' begins a statement (weight W^j_i : h, n) "
     "and cannot name a tensor; choose another name"),
    ("function (z) = z", ParseError, "t.ein:5:10: syntax error: unexpected '('; expected one of: a name"),
    ("f = x^j1", ParseError,
     "t.ein:5:7: index group 'j1' mixes letters and digits; write one letter per index (^j) or a longer "
     "index in braces (^{j1})"),
    ("weight _a : 3", ParseError, "t.ein:5:8: syntax error: unexpected '_a'; expected one of: a tensor name"),
    ("function g(z) =", ParseError,
     "t.ein:5:16: syntax error: unexpected end of line; expected one of: a function body"),
    # --- names
    ("f = x^i z^i", NameError_,
     "t.ein:5:9: undefined tensor 'z'; expected a declared or defined tensor: x, y, W, f"),
    ("f = relu (x^i) x^i", NameError_,
     "t.ein:5:5: undefined tensor 'relu'; 'relu' is a function: write relu(...) with no space before '('"),
    ("weight B^j : n9" + OK, NameError_,
     "t.ein:5:14: undefined dimension 'n9' in the shape of B; declared dimensions: n0, n1, c"),
    ("weight x^i : n0" + OK, NameError_, "t.ein:5:1: redefinition of tensor 'x' (declared as input at line 2)"),
    ("v^j = W^j_i x^i\nv^j = W^j_i x^i" + OK, NameError_, "t.ein:6:1: redefinition of 'v' (first defined at line 5)"),
    ("function g(z) = z\nfunction g(z) = z" + OK, NameError_,
     "t.ein:6:1: redefinition of function 'g' (first defined at line 5)"),
    ("function relu(z) = z" + OK, NameError_, "t.ein:5:1: redefinition of built-in function 'relu'; choose another name"),
    ("dims n0 = 3" + OK, NameError_, "t.ein:5:6: redefinition of dimension 'n0' (first declared at line 1)"),
    ("weight n0" + OK, NameError_, "t.ein:5:1: 'n0' is a dimension; a scalar tensor may not reuse a dimension name (a "
     "bare n0 in an expression is the size n0); choose another name (a tensor with indices or a label, n0^j or "
     "n0(t), may share it)"),
    ("x^i = W^j_i" + OK, NameError_, "t.ein:5:1: 'x' is declared as input at line 2 and cannot also be defined by '='"),
    ("a = b\nb = c2\nc2 = a" + OK, NameError_, "t.ein:5:1: definition cycle: a -> b -> c2 -> a"),
    ("b = a\na = b" + OK, NameError_, "t.ein:5:1: definition cycle: b -> a -> b"),
    ("a^i = a^i + x^i" + OK, NameError_, "t.ein:5:1: definition cycle: a -> a"),
    ("weight lambda : 3" + OK, NameError_,
     "t.ein:5:1: 'lambda' is a Python keyword and cannot name a tensor; choose another name"),
    ("dims if = 3" + OK, NameError_,
     "t.ein:5:6: 'if' is a Python keyword and cannot name a dimension; choose another name"),
    ("function def(z) = z" + OK, NameError_,
     "t.ein:5:1: 'def' is a Python keyword and cannot name a function; choose another name"),
    ("function g(class) = 1" + OK, NameError_,
     "t.ein:5:12: 'class' is a Python keyword and cannot name a parameter; choose another name"),
    ("input u^{in,k} : n0, n0" + OK, NameError_,
     "t.ein:5:10: 'in' is a Python keyword and cannot name an index; choose another name"),
    # --- objectives
    ("v^j = W^j_i x^i", NameError_,
     "t.ein:5:1: no objective: expected exactly one scalar definition that no other definition uses, "
     "e.g. f = squared_error(p, y)"),
    ("f = x^i x^i\ng = y^l y^l", NameError_,
     "t.ein:6:1: several candidate objectives: f (line 5), g (line 6); expected exactly one scalar "
     "definition that no other definition uses, e.g. f = squared_error(p, y)"),
    ("f = squared_error(x, y)", ShapeError,
     "t.ein:5:22: squared_error needs two vectors of the same size, but x has size n0 (4) and y has size c (3)"),
    ("f = softmax_cross_entropy(W, y)", ShapeError,
     "t.ein:5:27: softmax_cross_entropy needs vectors (one index each), but W has 2 indices"),
    ("f = squared_error(x^i, y)", FunctionError,
     "t.ein:5:19: the arguments of squared_error must be bare tensor names, as in squared_error(p, y) "
     "(write x, not x^i)"),
    ("f = squared_error(2 x, y)", FunctionError,
     "t.ein:5:19: the arguments of squared_error must be bare tensor names, as in squared_error(p, y)"),
    ("f = squared_error(n0, y)", FunctionError,  # a dimension is a number, not a tensor
     "t.ein:5:19: the arguments of squared_error must be bare tensor names, as in squared_error(p, y)"),
    ("f = binary_cross_entropy(y)", FunctionError,
     "t.ein:5:5: objective 'binary_cross_entropy' takes 2 arguments (binary_cross_entropy(p, y)), got 1"),
    # --- indices
    ("f = W^j x^i", IndexError_,
     "t.ein:5:5: wrong number of indices for W: its declaration W^j_i (line 4) has 2, this use has 1"),
    ("v^j = W^j_i x^i\nf = v^j v^j v", IndexError_,
     "t.ein:6:13: wrong number of indices for v: its definition v^j (line 5) has 1, this use has 0"),
    ("f = x^i x^i x^i", IndexError_,
     "t.ein:5:15: index 'i' appears 3 times in one product; an index may appear at most twice (then it is "
     "summed) unless it is on the left side of f; for a second sum, rename one pair: 'k' is free"),
    # a bound index reused for a second sum: the message names a free one to rename a pair to
    ("f = x^i W^j_i x^i W^j_i", IndexError_,
     "t.ein:5:17: index 'i' appears 4 times in one product; an index may appear at most twice (then it is "
     "summed) unless it is on the left side of f; for a second sum, rename one pair: 'k' is free"),
    # a reduction written without its index, or one that does not exist, names the reductions
    ("f = softmax(x^i) x^i", FunctionError,
     "t.ein:5:5: 'softmax' reduces over an index, which goes after '_': write softmax_i(...) (the reductions "
     "are sum_i(...), mean_i(...), softmax_i(...), max_i(...), min_i(...), logsumexp_i(...))"),
    ("f = sum(W^j_i)", FunctionError,
     "t.ein:5:5: 'sum' reduces over an index, which goes after '_': write sum_k(...) (the reductions are "
     "sum_k(...), mean_k(...), softmax_k(...), max_k(...), min_k(...), logsumexp_k(...))"),
    ("f = logsumexp(x^i)", FunctionError,
     "t.ein:5:5: 'logsumexp' reduces over an index, which goes after '_': write logsumexp_i(...) (the "
     "reductions are sum_i(...), mean_i(...), softmax_i(...), max_i(...), min_i(...), logsumexp_i(...))"),
    ("f = prod_i(x^i)", FunctionError,
     "t.ein:5:5: unknown reduction 'prod_i'; the reductions are sum_i(...), mean_i(...), softmax_i(...), "
     "max_i(...), min_i(...), logsumexp_i(...), with the index after '_'"),
    ("v^j = W^j_i x^i + x^i\nf = v^j v^j", IndexError_,
     "t.ein:5:19: the terms of a sum have different free indices: {j} and {i}; every term must carry the "
     "same free indices, or a subset of another term's (it is then broadcast along the rest)"),
    ("v^j = W^j_i x^i x^k\nf = v^j v^j", IndexError_,
     "t.ein:5:1: free indices differ: the left side v^j has {j} but the right side has {j, k}; they must be "
     "the same"),
    ("f = x^i", IndexError_,
     "t.ein:5:1: free indices differ: the left side f has {} but the right side has {i}; they must be the same"),
    ("v^{jj} = x^j" + OK, IndexError_, "t.ein:5:5: index 'j' appears twice on the left side of v"),
    ("weight A^i_i : n0, n0" + OK, IndexError_,
     "t.ein:5:12: index 'i' appears twice in the declaration of A; give each axis its own index"),
    # division by a tensor is elementwise: its free indices count as a factor's do
    ("f = x^i x^i / x^k", IndexError_,
     "t.ein:5:1: free indices differ: the left side f has {} but the right side has {k}; they must be the same"),
    # --- sizes
    ("v^j = W^j_i x^j\nf = v^j v^j", ShapeError,
     "t.ein:5:15: size mismatch for index 'j': W axis 1 has size n1 (5) but x axis 1 has size n0 (4)"),
    ("f = x^l y^l", ShapeError,
     "t.ein:5:11: size mismatch for index 'l': x axis 1 has size n0 (4) but y axis 1 has size c (3)"),
    ("weight b^l : 4\nf = y^l b^l", ShapeError,
     "t.ein:6:11: size mismatch for index 'l': y axis 1 has size c (3) but b axis 1 has size 4"),
    ("weight A^i : n0, n0" + OK, ShapeError, "t.ein:5:14: A^i has 1 index but 2 sizes"),
    ("weight A^ij" + OK, ShapeError, "t.ein:5:1: A^ij has 2 indices but no sizes; expected `weight A^ij : n, n`"),
    ("weight b : 0" + OK, ShapeError, "t.ein:5:12: a size must be a positive integer, got 0"),
    ("dims h = 0" + OK, ShapeError, "t.ein:5:6: dimension 'h' must be a positive integer, got 0"),
    ("f = x^i x^i / 0", ShapeError, "t.ein:5:15: division by zero"),
    ("h(0)^j = 0\nh(t)^j = tanh(W^j_i x^i) for t = 1..2\nf = h(2)^j / h(0)^j", ShapeError,
     "t.ein:7:14: division by zero"),
    # --- functions
    ("v^j = foo(W^j_i x^i)\nf = v^j v^j", FunctionError,
     "t.ein:5:7: unknown function 'foo'; known functions: exp, identity, log, relu, sigmoid, softplus, "
     "sqrt, square, tanh, squared_error, softmax_cross_entropy, binary_cross_entropy"),
    ("v^j = relu(W^j_i x^i, x^i)\nf = v^j v^j", FunctionError, "t.ein:5:7: function 'relu' takes 1 argument, got 2"),
    ("function mix(a, b) = a*b\nf = mix(x^i) x^i", FunctionError, "t.ein:6:5: function 'mix' takes 2 arguments, got 1"),
    ("function g(z) = z +* 2" + OK, FunctionError, "t.ein:5:20: cannot read the body of function 'g': invalid syntax"),
    # juxtaposition multiplies in index expressions only; a body needs '*'
    ("function g(z) = z sigmoid(z)" + OK, FunctionError,
     "t.ein:5:19: function 'g' multiplies by juxtaposition, which only index expressions do; write '*' in a "
     "function body: z * sigmoid(z)"),
    ("function g(z) = 2z + (z + 1)(z - 1)" + OK, FunctionError,
     "t.ein:5:18: function 'g' multiplies by juxtaposition, which only index expressions do; write '*' in a "
     "function body: 2 * z + (z + 1)(z - 1)"),
    # a function no code printer writes: an error at its definition, at the function's name
    ("function g(z) = loggamma(z + 3)" + OK, FunctionError,
     "t.ein:5:17: function 'g' uses loggamma, which einderiv cannot write as NumPy, torch and JAX code; expected "
     "the built-in functions and exp, log, sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, asinh, acosh, "
     "atanh, erf, erfc, Abs, sign, sqrt, Max, Min, where"),
    ("function g(z) = q * z" + OK, FunctionError,
     "t.ein:5:17: function 'g' uses undefined name 'q'; expected only its parameters (z) and known functions"),
    ("function g(z) = chr(95)" + OK, FunctionError,
     "t.ein:5:17: function 'g' uses undefined name 'chr'; expected only its parameters (z) and known functions"),
    ("function g(z) = __import__('os')" + OK, FunctionError,
     "t.ein:5:17: unexpected character '_' in the body of function 'g'; expected numbers, + - * / ^ **, "
     "comparisons < <= > >= inside where(...), parentheses, its parameters and functions"),
    ("function g(z) = z.func" + OK, FunctionError,
     "t.ein:5:18: unexpected character '.' in the body of function 'g'; expected numbers, + - * / ^ **, "
     "comparisons < <= > >= inside where(...), parentheses, its parameters and functions"),
    ("function g(z) = sigmoid(z, z)" + OK, FunctionError, "t.ein:5:17: function 'sigmoid' takes 1 argument, got 2"),
    ("function g(z, z) = z" + OK, FunctionError, "t.ein:5:15: function 'g' has two parameters named 'z'"),
    ("function g(z) = floor(z)" + OK, FunctionError,
     "t.ein:5:17: function 'g' cannot be differentiated in closed form: SymPy leaves the derivative of "
     "floor(z) with respect to z (order 1) unevaluated; rewrite it with functions SymPy can differentiate"),
    ("function g(a, b) = Max(a, b) + floor(b)" + OK, FunctionError,
     "t.ein:5:20: function 'g' cannot be differentiated in closed form: SymPy leaves the derivative of "
     "floor(b) + Max(a, b) with respect to its argument b (order 1) unevaluated; rewrite it with functions "
     "SymPy can differentiate"),
    # --- reductions and sizes used as numbers
    ("function sum_i(z) = z" + OK, NameError_,
     "t.ein:5:1: 'sum_i' is reserved for the reduction sum over index 'i'; choose another function name"),
    ("f = sum_i(x^i, x^i)", FunctionError, "t.ein:5:5: sum_i takes 1 argument, got 2"),
    ("f = sum_i_j(x^i)", IndexError_,
     "t.ein:5:9: 'i_j' is not an index: sum_ must be followed by one index name (letters and digits), as in "
     "sum_k(...)"),
    ("f = sum_k(x^i x^i)", IndexError_,
     "t.ein:5:11: sum_k reduces over index 'k', but 'k' is not free in its argument (it has no free "
     "indices); expected an expression that carries k, e.g. sum_k(x^k)"),
    ("v^j = mean_j(W^j_i x^i)\nf = v^j v^j", IndexError_,
     "t.ein:5:12: mean_j sums over 'j', which is on the left side of v; an index on the left side stays free"),
    ("f = x^i x^i / n0^i", IndexError_,
     "t.ein:5:18: 'n0' is a dimension, a number: it takes no indices (write n0, not n0^i)"),
    # --- families (recurrence) and index arithmetic (convolution)
    ("dims T = 3\ninput z(t)^i : n0 for t = 1..T\nv^j = W^j_i z(T+1)^i\nf = v^j v^j", IndexError_,
     "t.ein:7:13: label out of range: z(4) is not a member of z, whose labels are 1..3"),
    ("input z^i : n0 for t = 1..3" + OK, IndexError_,
     "t.ein:5:20: 'for t = ...' unrolls a family, but z has no label; write z(t)"),
    ("dims T\ninput z(t)^i : n0 for t = 1..T" + OK, ShapeError,
     "t.ein:6:30: label 'T' needs a concrete size: dimension 'T' has none; give it in the file's dims (T = 4) or as dims={'T': 4}"),
    ("input z(t)^i : n0 for t = 3..1" + OK, ShapeError,
     "t.ein:5:23: empty range t = 3..1: the upper bound must be at least the lower bound"),
    ("input z(1)^i : n0 for t = 1..3" + OK, IndexError_,
     "t.ein:5:9: the label of z(1) does not use the range variable 't'; write z(t)"),
    ("input z(t)^i : n0 for t = 1..q" + OK, NameError_,
     "t.ein:5:30: unknown name 'q' in label 'q'; a label is integer arithmetic in the range variable and sizes "
     "(n0, n1, c)"),
    ("dims T = 2\ninput z(t)^i : n0 for t = 1..T\nf = z^i z(1)^i", NameError_,
     "t.ein:7:5: undefined tensor 'z'; 'z' is a family: name a member with its label, e.g. z(t) or z(2)"),
    ("v^j = W^j_i x(1)^i\nf = v^j v^j", IndexError_,
     "t.ein:5:13: 'x' is not a family: write x without a label, or declare x(t) ... for t = 1..T"),
    ("h(0)^j = 0\nv^j = W^j_i h(0)^i\nf = v^j v^j", IndexError_,
     "t.ein:6:7: this expression is identically zero: every term uses a zero member (h(0)); drop it or give the "
     "member a value"),
    ("weight K_a : 3\nv^t = K_a x^{0t+a}\nf = v^t v^t", ShapeError,
     "t.ein:6:14: the stride in x^{0t+a} must be a positive integer, got 0"),
    ("weight K_a : 2\nv^t = K_a x^{t+0a}\nf = v^t v^t", ShapeError,
     "t.ein:6:14: the dilation of 'a' in x^{t+0a} is 0; expected a nonzero integer (1: neighbouring taps, 2: "
     "every second position, -1: taps backwards)"),
    ("weight K_a : 5\nv^t = K_a x^{t+a}\nf = v^t v^t", ShapeError,
     "t.ein:6:14: x axis 1 has size n0 (4) but the window x^{t+a} spans 5: no valid position is left (valid "
     "padding needs the window inside the axis; 'padded x' reads zeros outside it)"),
    ("weight K_a : 3\nweight b^t : 4\nv^t = K_a x^{t+a} + b^t\nf = v^t v^t", ShapeError,
     "t.ein:7:23: size mismatch for index 't': x^{t+a} axis 1 has size n0 - 2 (2) but b axis 1 has size 4"),
    ("v^t = x^{t+a}\nf = v^t v^t", ShapeError,
     "t.ein:5:10: the offset 'a' in x^{t+a} has no size: no other tensor in the definition carries 'a'; "
     "expected one that does, as the kernel does in K_a x^{t+a}, or a stride, whose windows it then spans "
     "(max_a(x^{2t+a}))"),
]


@pytest.mark.parametrize("snippet, cls, message", BAD, ids=[m.split(": ", 1)[1][:40] for _, _, m in BAD])
def test_bad_input(snippet, cls, message):
    with pytest.raises(cls, match="^" + re.escape(message) + r"(\n|\Z)") as info:
        load("t.ein", HEAD + snippet)
    err = info.value
    assert isinstance(err, EinderivError)
    line, col = (int(v) for v in message.split(":")[1:3])
    assert (err.loc.file, err.loc.line, err.loc.column) == ("t.ein", line, col)


def test_every_error_class_is_covered():
    assert {cls for _, cls, _ in BAD} == {ParseError, NameError_, IndexError_, ShapeError, FunctionError}


def test_syntax_error_shows_line_and_caret():
    with pytest.raises(ParseError) as info:
        load("t.ein", HEAD + "f = x^i $ x^i")
    assert str(info.value).splitlines()[1:] == ["f = x^i $ x^i", "        ^"]
    assert info.value.context == "f = x^i $ x^i\n        ^"


def test_the_power_messages_advice_is_valid_and_means_what_it_says():
    """square(v^j) summed, v^j v^j and a function with the power in its body: the same objective."""
    import numpy as np

    import einderiv

    body = "v^j = W^j_i x^i\n"
    texts = [HEAD + body + "f = sum_j(square(v^j))", HEAD + body + "f = v^j v^j",
             HEAD + "function sq(z) = z^2\n" + body + "f = sum_j(sq(v^j))"]
    values, grads = [], []
    for text in texts:
        ns: dict = {}
        exec(einderiv.codegen(einderiv.derive(load("t.ein", text), 1)), ns)
        rng = np.random.default_rng(0)
        params = {"W": rng.normal(size=(5, 4))}
        data = {"x": rng.normal(size=(3, 4)), "y": rng.normal(size=(3, 3))}
        values.append(ns["objective"](params, data))
        grads.append(ns["gradient"](params, data)["W"])
    W, x = params["W"], data["x"]
    assert np.allclose(values[0], ((x @ W.T) ** 2).sum(axis=1), rtol=1e-12, atol=0)
    for v, g in zip(values[1:], grads[1:]):
        assert np.allclose(v, values[0], rtol=1e-12, atol=0) and np.allclose(g, grads[0], rtol=1e-12, atol=0)


def test_unknown_dim_override():
    """Library errors name the argument as Python writes it (the CLI words its own flags)."""
    with pytest.raises(UsageError) as info:
        load("t.ein", HEAD + "f = x^i x^i", dims={"q": 3})
    assert str(info.value) == "dims={'q': 3} names no dimension 'q'; the file declares n0, n1, c"
    with pytest.raises(UsageError) as info:
        load("t.ein", HEAD + "f = x^i x^i", dims={"n0": 0})
    assert str(info.value) == "dims={'n0': 0}: a size must be a positive integer"


def test_dim_override_changes_size_checks():
    src = HEAD + "f = x^l y^l"  # n0 = 4 vs c = 3 ...
    assert load("t.ein", src, dims={"c": 4}).objective == Name("f")  # ... agree once c is 4


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match=r"^cannot read '.*nope\.ein': No such file or directory\Z"):
        load(str(tmp_path / "nope.ein"))


# ------------------------------------------------------------ API arguments
PAPER = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "derivations" / "paper_mlp.ein")


def test_api_errors_name_their_arguments():
    import einderiv
    from einderiv.calculus.derive import derive

    net = einderiv.load(PAPER)
    with pytest.raises(UsageError) as info:
        einderiv.derive(net, order=0)
    assert str(info.value) == "order=0: the derivative order must be a positive integer"
    with pytest.raises(UsageError) as info:
        derive(net, 2.5)
    assert str(info.value) == "order=2.5: the derivative order must be a positive integer"
    with pytest.raises(UsageError) as info:
        einderiv.derivation_text(einderiv.derive(net), form="paper")
    assert str(info.value) == "form='paper': the Hessian form is 'expanded' or 'compact'"


def test_one_derivation_in_both_forms():
    import einderiv
    from einderiv.calculus.derive import in_form

    d = einderiv.derive(einderiv.load(PAPER))
    assert not d.expanded  # what the code generator uses
    e = in_form(d, "expanded")
    assert e.expanded and in_form(d, "expanded") is e and in_form(e, "compact") is d
    assert in_form(d, "compact") is d
    d3 = einderiv.derive(einderiv.load(PAPER), 3)
    assert in_form(d3, "compact") is d3  # orders >= 3 build on the expanded form


def test_a_second_symbolic_depth_is_an_error():
    text = "dims n0 = 2\ndepth n\ndepth m\ninput x^i : n0\nf = x^i x^i\n"
    with pytest.raises(UsageError) as info:
        __import__("einderiv").load("t.ein", text)
    assert str(info.value) == "a template may have one symbolic depth; n, m are all symbolic"


def test_a_network_without_weights_has_nothing_to_differentiate():
    import einderiv

    with pytest.raises(EinderivError) as info:
        einderiv.derive(load("t.ein", "dims n = 2\ninput x^i : n\nf = x^i x^i\n"))
    assert str(info.value) == ("t.ein:3:1: the network declares no weight to differentiate; declare one, "
                               "e.g. weight W^j_i : n, n")


# --------------------------------------------------------- directives in the leading comment
DIRECTIVES = [
    ("# einderiv: order x", "t.ein:1:19: '# einderiv: order x' needs a positive integer order; expected e.g. "
                            "'# einderiv: order 3'"),
    ("# einderiv: order 0", "t.ein:1:19: '# einderiv: order 0' needs a positive integer order; expected e.g. "
                            "'# einderiv: order 3'"),
    ("# a title\n  # einderiv: form fast", "t.ein:2:20: '# einderiv: form fast' names no Hessian form; expected "
                                         "one of: expanded, compact"),
    ("# einderiv: colour red", "t.ein:1:13: unknown directive '# einderiv: colour'; expected 'order N' or "
                               "'form expanded|compact'"),
]


@pytest.mark.parametrize("header, message", DIRECTIVES, ids=[h for h, _ in DIRECTIVES])
def test_bad_directive(header, message):
    """The message's first line; the source line and a caret under the key or value follow
    (tests/test_directives.py checks those)."""
    with pytest.raises(ParseError) as exc:
        load("t.ein", header + "\n" + HEAD + OK)
    assert str(exc.value).split("\n")[0] == message


def test_directives_and_title_are_read_from_the_leading_comment():
    net = load("t.ein", "# einderiv: order 3\n# A small net: one layer.\n\n# more\n# einderiv: form compact\n"
               + HEAD + OK + "\n# a comment that says einderiv: order 7\n")
    assert (net.header.order, net.header.form, net.header.title) == (3, "compact", "A small net")
    assert load("t.ein", HEAD + OK).header.order is None  # no comment: nothing said
