"""Underscores in tensor names: ``W_out^j_i``, ``v_1^j``, ``h_last``, ``f_total``.

The lexer reads a word such as ``W_out`` whole; where the name ends is decided from the names the
file declares (by the declared sizes) and defines (by the indices written on the right side): a
word names the longest declared or defined tensor its ``_``-parts spell, and the parts after it
are lower index groups.  ``W_i^j`` keeps its old meaning (W with i, j) wherever no tensor is
named ``W_i``.  Names that would read two ways are located errors.
"""
from __future__ import annotations

import pathlib

import pytest

import einderiv
from einderiv import runtime
from einderiv.errors import IndexError_, NameError_
from einderiv.frontend.check import load
from einderiv.ir import Index, Name, Ref

NET = """dims n_in = 3, h = 4, c = 2
input  x^i : n_in
label  y^l : c
weight W_in^j_i : h, n_in
weight W_out^l_j : c, h
weight K_a : h
v_1^j    = tanh(W_in^j_i x^i) + K_j
h_last^j = v_1^j v_1^j / n_in
p^l      = W_out^l_j h_last^j
f_total  = squared_error(p, y)
"""


def test_names_with_underscores_are_read_whole():
    net = load("t.ein", NET)
    assert [str(t.name) for t in net.tensors] == ["x", "y", "W_in", "W_out", "K"]
    assert [str(d.name) for d in net.definitions] == ["v_1", "h_last", "p", "f_total"]
    assert str(net.objective) == "f_total"
    assert [ix.name for ix in net.tensor("K").indices] == ["a"]  # weight K_a : h is K with index a
    p = net.definition("p").expr
    assert Ref(Name("W_out"), (Index("l", p.factors[0].indices[0].dim), p.factors[0].indices[1])) == p.factors[0]
    # n_in, a dimension, is a number in an expression
    assert "n_in" in str(net.definition("h_last").expr)


def test_a_network_with_underscored_names_checks_numerically():
    """Gradients and Hessian blocks (tanh: smooth) against central differences."""
    report = einderiv.check(einderiv.derive(load("t.ein", NET), 2), seed=2)
    assert report.ok, report.format()
    assert sum(r.name.startswith("hessian ") for r in report.rows) == 9


def test_printed_names_and_valid_identifiers():
    d = einderiv.derive(load("t.ein", NET), 2)
    text = einderiv.derivation_text(d)
    assert "p^l = W_out^l_j h_last^j" in text and "∂f_total/∂W_in^j_i" in text
    tex = einderiv.latex(d)
    assert r"W^{(\mathrm{out}),l}_{j}" in tex and r"v^{(1),j}" in tex
    for backend in ("numpy", "torch", "jax"):
        pytest.importorskip(backend)
        source = einderiv.codegen(d, backend=backend)
        compile(source, "kernels.py", "exec")  # every identifier valid
        mod = runtime.load(source)
        assert set(mod["PARAMS"]) == {"W_in", "W_out", "K"}


def test_the_old_reading_stays_where_no_tensor_has_the_longer_name():
    text = "dims n = 3, m = 2\ninput x^i : n\nweight W_i^j : n, m\nv_j = W_i^j x_i\nf = v^j v^j\n"
    net = load("t.ein", text)
    assert [ix.name for ix in net.tensor("W").indices] == ["i", "j"]
    assert [ix.name for ix in net.definition("v").indices] == ["j"]
    # the right side's indices written after '_' count too: v_j = W_ji x_i is v with j
    net = load("t.ein", "dims n = 3\ninput x^i : n\nweight W^j_i : n, n\nv_j = W_ji x_i\nf = v^j v^j\n")
    assert [str(d.name) for d in net.definitions] == ["v", "f"]


HEAD = "dims n = 3, c = 2\ninput x^i : n\nweight W^j_i : c, n\n"

#: (snippet after HEAD, exception class, the message with its location)
BAD = [
    # both W and W_out: W_out would also read as W with the lower indices o, u, t
    ("weight W_out^l_j : c, c\nf = W_out^l_j W^j_i x^i", NameError_,
     "t.ein:4:8: tensor names 'W' and 'W_out' clash: W_out also reads as W with the lower indices o, u, t; "
     "rename one (a name part after '_' that is not an index, such as a digit, does not clash: v_1)"),
    # a name einderiv gives a pre-activation
    ("v^j = tanh(W^j_i x^i)\nz_v^j = v^j\nf = z_v^j z_v^j", NameError_,
     "t.ein:5:1: 'z_v' is the name einderiv gives the pre-activation of v (the argument of its function, "
     "printed z_v); choose another tensor name"),
    # W_out not declared: the old reading, W with the lower indices o, u, t (and then j)
    ("f = W_out^j x^i", IndexError_,
     "t.ein:4:5: wrong number of indices for W: its declaration W^j_i (line 3) has 2, this use has 4"),
    # a part that cannot be an index keeps the word whole: an undefined tensor
    ("f = v_1^j x^j", NameError_,
     "t.ein:4:5: undefined tensor 'v_1'; expected a declared or defined tensor: x, W, f"),
]


@pytest.mark.parametrize("snippet,cls,message", BAD, ids=["clash", "pre-activation", "old reading", "undefined"])
def test_ambiguous_names_are_located_errors(snippet, cls, message):
    with pytest.raises(cls) as info:
        load("t.ein", HEAD + snippet + "\n")
    assert str(info.value).splitlines()[0] == message


def test_names_without_underscores_are_unchanged():
    """A file without ``_`` in tensor words parses exactly as before (the pass leaves it alone)."""
    from einderiv.frontend.parse import parse
    from einderiv.frontend.underscores import resolve
    text = (pathlib.Path(__file__).resolve().parents[1] / "derivations" / "paper_mlp.ein").read_text()
    module = parse(text, "paper_mlp.ein")
    assert resolve(module, "paper_mlp.ein") == module


FAMILY = """dims n = 2, h = 3, c = 2
input x_in(t)^k : n for t = 1..2
label y^l : c
weight W_hh^j_i : h, h
weight W_xh^j_k : h, n
weight U^l_j : c, h
h_st(0)^j = 0
h_st(t)^j = tanh(W_hh^j_i h_st(t-1)^i + W_xh^j_k x_in(t)^k) for t = 1..2
p^l = U^l_j h_st(2)^j
f = squared_error(p, y)
"""


def test_a_recurrence_with_underscored_names_checks_numerically():
    """``h_st(0)^j = 0`` writes no index on its right: its name is the one used elsewhere."""
    net = load("t.ein", FAMILY)
    assert {str(t.name) for t in net.tensors} >= {"x_in(1)", "W_hh", "W_xh"}
    report = einderiv.check(einderiv.derive(net, 2), seed=1)
    assert report.ok, report.format()
