"""Front end: the notation parses and checks into the expected IR structure."""
from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from einderiv.frontend import syntax as S
from einderiv.frontend.check import load
from einderiv.frontend.builtins import ARG
from einderiv.ir import Add, Apply, Const, Fn, Index, LogSumExp, Name, Prod, Ref
from einderiv.frontend.network import dim_symbol
from einderiv.frontend.objectives import objective_expr
from einderiv.frontend.parse import _parser, parse

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "derivations" / "paper_mlp.ein"
n0, n1, n2, c = (dim_symbol(n) for n in ("n0", "n1", "n2", "c"))

HEAD = """dims n0 = 4, n1 = 5, c = 3
input x^i : n0
label y^l : c
weight W^j_i : n1, n0
"""


def net(body: str, head: str = HEAD, **kw):
    return load("t.ein", head + body, **kw)


def defn(body: str, name: str, head: str = HEAD):
    return net(body, head).definition(name)


# ------------------------------------------------------------------ the paper
def test_paper_network_structure():
    n = load(str(PAPER))
    assert n.path == str(PAPER)
    assert n.dims == (("n0", 4), ("n1", 5), ("n2", 5), ("c", 3))
    assert [(str(t.name), t.role, t.indices) for t in n.tensors] == [
        ("x", "input", (Index("i", n0),)),
        ("y", "label", (Index("l", c),)),
        ("W1", "weight", (Index("j", n1), Index("i", n0))),
        ("W2", "weight", (Index("j", n2), Index("i", n1))),
        ("U", "weight", (Index("l", c), Index("j", n2))),
    ]
    assert [str(p.name) for p in n.params] == ["W1", "W2", "U"]
    assert [str(d.name) for d in n.definitions] == ["v1", "v2", "p", "f"]
    assert n.objective == Name("f")
    assert n.functions == ()
    assert n.source == PAPER.read_text()

    j1, i0 = Index("j", n1), Index("i", n0)
    v1 = n.definition("v1")
    assert v1.indices == (j1,) and v1.shape == (n1,)
    assert v1.expr == Apply(Fn("relu", (0,)), (Prod((Ref("W1", (j1, i0)), Ref("x", (i0,))), (j1,)),))
    assert v1.expr.args[0].bound == (i0,)
    assert (v1.loc.line, v1.loc.column) == (11, 1)

    j2, i1 = Index("j", n2), Index("i", n1)
    v2 = n.definition("v2")
    assert v2.expr == Apply(Fn("relu", (0,)), (Prod((Ref("W2", (j2, i1)), Ref("v1", (i1,))), (j2,)),))

    lc = Index("l", c)
    p = n.definition("p")
    assert p.indices == (lc,)
    assert p.expr == Prod((Ref("U", (lc, j2)), Ref("v2", (j2,))), (lc,))
    assert p.expr.bound == (j2,)

    f = n.definition("f")
    assert f.indices == ()
    assert f.expr == objective_expr("softmax_cross_entropy", Ref("p", (lc,)), Ref("y", (lc,)))
    assert isinstance(f.expr, Add) and isinstance(f.expr.terms[0], LogSumExp)


def test_paper_syntax_tree_positions():
    m = parse(PAPER.read_text(), "paper_mlp.ein")
    kinds = [type(s).__name__ for s in m.statements]
    assert kinds == ["Dims"] + ["Decl"] * 5 + ["Assign"] * 4
    w1 = m.statements[3]
    assert (w1.role, w1.name, w1.line, w1.column) == ("weight", "W1", 7, 1)
    assert [(ix.name, ix.up, ix.column) for ix in w1.indices] == [("j", True, 11), ("i", False, 13)]
    assert [(s.name, s.column) for s in w1.shape] == [("n1", 17), ("n0", 21)]
    v1 = m.statements[6]
    assert isinstance(v1.expr, S.Call) and v1.expr.name == "relu" and v1.expr.column == 8
    mul = v1.expr.args[0]
    assert isinstance(mul, S.Mul) and mul.left.name == "W1" and mul.right.name == "x"
    assert (mul.right.line, mul.right.column) == (11, 20)


def test_parser_is_built_once():
    assert _parser() is _parser()


def test_grammar_is_package_data():
    assert (ROOT / "grammar" / "__init__.py").exists()
    assert (ROOT / "grammar" / "einderiv.lark").exists()


# ------------------------------------------------------------------ indices
@pytest.mark.parametrize("text", [
    "v^j = W^j_i x^i", "v^j = W_j^i x^i", "v_j = W_{j}^{i} x_i", "v^j = W_j_i x^i", "v^{j} = W^{j,i} x^{i}",
])
def test_index_placement_is_cosmetic(text):
    d = defn(text + "\nf = v^j v^j", "v")
    j, i = Index("j", n1), Index("i", n0)
    assert d.expr == Prod((Ref("W", (j, i)), Ref("x", (i,))), (j,))
    assert d.indices == (j,)


def test_use_axes_follow_written_order():
    head = "dims n0 = 4, n1 = 5\ninput x^i : n0\nweight W_i^j : n0, n1\n"
    d = defn("v^j = W_i^j x^i\nf = v^j v^j", "v", head)
    assert d.expr.factors[0] == Ref("W", (Index("i", n0), Index("j", n1)))
    n = net("v^j = W_i^j x^i\nf = v^j v^j", head)
    assert n.tensor("W").indices == (Index("i", n0), Index("j", n1))
    assert n.tensor("W").shape == (n0, n1)


@pytest.mark.parametrize("written", ["A^{jk}_{i}", "A^{j,k}_i", "A^jk_i", "A_i^{jk}"])
def test_multi_index_groups(written):
    head = "dims a = 2, b = 3, d = 4\nweight A^jk_i : a, b, d\nweight B_i^jk : d, a, b\n"
    axes = ("i", "j", "k") if written.startswith("A_i") else ("j", "k", "i")
    name = "B" if written.startswith("A_i") else "A"
    text = written.replace("A", name, 1)
    n = net(f"t^{{jk}}_i = {text}\nf = t^jk_i t^jk_i", head)
    sizes = {"j": dim_symbol("a"), "k": dim_symbol("b"), "i": dim_symbol("d")}
    assert n.definition("t").expr == Ref(name, tuple(Index(a, sizes[a]) for a in axes))
    assert n.definition("t").indices == tuple(Index(a, sizes[a]) for a in ("j", "k", "i"))


def test_multi_letter_indices_in_braces():
    head = "dims a = 2, b = 3\ninput x^{cu,v} : a, b\n"
    n = net("s^{cu,} = x^{cu,v} x^{cu,v}\nf = s^{cu,} s^{cu,}", head)
    cu, v = Index("cu", dim_symbol("a")), Index("v", dim_symbol("b"))
    s = n.definition("s")
    assert s.indices == (cu,)
    assert s.expr == Prod((Ref("x", (cu, v)), Ref("x", (cu, v))), (cu,))
    assert s.expr.bound == (v,)
    assert parse("x^{c,u} = 1\n", "t").statements[0].indices[1].name == "u"
    assert [ix.name for ix in parse("x^{j1,j2} = 1\n", "t").statements[0].indices] == ["j1", "j2"]
    assert [ix.name for ix in parse("x^{jk} = 1\n", "t").statements[0].indices] == ["j", "k"]


def test_same_index_name_is_one_index_object():
    d = defn("v^j = W^j_i x^i\nf = v^j v^j", "v")
    w, x = d.expr.factors
    assert w.indices[1] is x.indices[0] or w.indices[1] == x.indices[0]
    assert d.indices[0] == w.indices[0]


# ------------------------------------------------------------ summation rule
def test_repeated_index_is_summed():
    d = defn("s = x^i x^i\nf = s", "s", head=HEAD)
    i = Index("i", n0)
    assert d.expr == Prod((Ref("x", (i,)), Ref("x", (i,))), ())
    assert d.expr.bound == (i,)


def test_lhs_index_repeated_is_hadamard():
    d = defn("g^i = x^i * x^i\nf = g^i g^i", "g")
    i = Index("i", n0)
    assert d.expr == Prod((Ref("x", (i,)), Ref("x", (i,))), (i,))
    assert d.expr.bound == ()


def test_lhs_index_may_appear_three_times():
    d = defn("g^i = x^i x^i x^i\nf = g^i g^i", "g")
    assert d.expr.out == (Index("i", n0),) and len(d.expr.factors) == 3


def test_outer_product_keeps_both_indices():
    d = defn("o^il = x^i y^l\nf = o^il o^il", "o")
    assert d.expr == Prod((Ref("x", (Index("i", n0),)), Ref("y", (Index("l", c),))), (Index("i", n0), Index("l", c)))


def test_trace_within_one_tensor():
    head = "dims n = 3\nweight A^i_j : n, n\n"
    n = net("t = A^i_i\nd^i = A^i_i\nf = t + d^i d^i", head)
    i = Index("i", dim_symbol("n"))
    assert n.definition("t").expr == Prod((Ref("A", (i, i)),), ())
    assert n.definition("d").expr == Ref("A", (i, i))


def test_function_argument_is_its_own_subexpression():
    i = Index("i", n0)
    d = defn("s = relu(x^i) x^i\nf = s", "s")
    assert d.expr == Prod((Apply(Fn("relu", (0,)), (Ref("x", (i,)),)), Ref("x", (i,))), ())
    d = defn("s = relu(x^i x^i)\nf = s", "s")
    assert d.expr == Apply(Fn("relu", (0,)), (Prod((Ref("x", (i,)), Ref("x", (i,))), ()),))


def test_nested_products_flatten():
    i = Index("i", n0)
    d = defn("s = (x^i * 2) (3 x^i)\nf = s", "s")
    assert d.expr == Prod((Ref("x", (i,)), Const(2), Const(3), Ref("x", (i,))), ())


def test_parenthesised_sum_is_a_factor():
    l = Index("l", c)
    d = defn("f = 0.5 (y^l - y^l) (y^l + y^l)", "f")
    diff = Add((Ref("y", (l,)), Prod((Const(-1), Ref("y", (l,))), (l,))))
    assert d.expr == Prod((Const(sympy.Rational(1, 2)), diff, Add((Ref("y", (l,)), Ref("y", (l,))))), ())


def test_written_out_squared_error_objective():
    head = HEAD + "weight U^l_j : c, n1\n"
    n = net("v^j = W^j_i x^i\np^l = U^l_j v^j\nf = 0.5 (p^l - y^l) (p^l - y^l)", head)
    l = Index("l", c)
    assert n.objective == Name("f")
    assert n.definition("f").expr == objective_expr("squared_error", Ref("p", (l,)), Ref("y", (l,)))


# -------------------------------------------------------------- expressions
def test_star_and_juxtaposition_are_the_same():
    assert defn("s = x^i * x^i\nf = s", "s").expr == defn("s = x^i x^i\nf = s", "s").expr


def test_numbers_are_exact():
    n = net("s = 2 x^i x^i + 0.5 + 1e-3 + 2.5E2\nf = s")
    consts = [t for t in n.definition("s").expr.terms if isinstance(t, Const)]
    assert [k.value for k in consts] == [sympy.Rational(1, 2), sympy.Rational(1, 1000), sympy.Integer(250)]
    assert n.definition("s").expr.terms[0].factors[0] == Const(sympy.Integer(2))


def test_subtraction_and_negation():
    i = Index("i", n0)
    x = Ref("x", (i,))
    e = defn("g^i = x^i - x^i\nf = g^i g^i", "g").expr
    assert e == Add((x, Prod((Const(-1), x), (i,))))
    e = defn("g^i = -x^i\nf = g^i g^i", "g").expr
    assert e == Prod((Const(-1), x), (i,))
    e = defn("g^i = -(x^i + x^i)\nf = g^i g^i", "g").expr
    assert e == Prod((Const(-1), Add((x, x))), (i,))
    e = defn("g^i = x^i - (x^i - x^i)\nf = g^i g^i", "g").expr  # sums flatten with signs
    assert e == Add((x, Prod((Const(-1), x), (i,)), x))
    e = defn("g^i = x^i * -x^i\nf = g^i g^i", "g").expr
    assert e == Prod((x, Const(-1), x), (i,))


def test_division_by_number_and_by_scalar():
    i = Index("i", n0)
    x = Ref("x", (i,))
    assert defn("g^i = x^i / 2\nf = g^i g^i", "g").expr == Prod((x, Const(sympy.Rational(1, 2))), (i,))
    head = HEAD + "weight s\n"
    e = defn("g^i = x^i / s\nf = g^i g^i", "g", head).expr
    assert e == Prod((x, Apply(Fn("reciprocal", (0,)), (Ref("s", ()),))), (i,))
    e = defn("g^i = x^i / (x^k x^k)\nf = g^i g^i", "g").expr
    k = Index("k", n0)
    assert e.factors[1] == Apply(Fn("reciprocal", (0,)), (Prod((Ref("x", (k,)), Ref("x", (k,))), ()),))


def test_biases_and_declaration_roles():
    head = HEAD + "bias b^j : n1\nweight s\nweight v : 3\n"
    n = net("h^j = relu(W^j_i x^i + b^j)\nf = s h^j h^j", head)
    j, i = Index("j", n1), Index("i", n0)
    assert n.tensor("b").role == "weight" and n.tensor("b").is_param
    assert n.tensor("s").indices == () and n.tensor("s").role == "weight"
    assert n.tensor("v").shape == (sympy.Integer(3),) and len(n.tensor("v").indices) == 1
    assert n.definition("h").expr == Apply(
        Fn("relu", (0,)), (Add((Prod((Ref("W", (j, i)), Ref("x", (i,))), (j,)), Ref("b", (j,)))),))


def test_integer_shape_matches_known_dimension():
    n = net("g^l = y^l v^l\nf = g^l g^l", head=HEAD + "weight v^l : 3\n")
    assert n.definition("g").indices == (Index("l", c),)


@pytest.mark.parametrize("obj", ["squared_error", "softmax_cross_entropy", "binary_cross_entropy"])
def test_objective_calls(obj):
    head = HEAD + "weight U^l_j : c, n1\n"
    n = net(f"p^l = U^l_j W^j_i x^i\nf = {obj}(p, y)", head)
    l = Index("l", c)
    assert n.definition("f").expr == objective_expr(obj, Ref("p", (l,)), Ref("y", (l,)))


def test_objective_index_avoids_names_in_use():
    n = net("q^l = y^l\nf = squared_error(q, y) + y^l y^l")
    first = n.definition("f").expr.terms[0]
    (ix,) = first.factors[1].free
    assert ix.name == "l1" and ix.dim == c


# ------------------------------------------------------------- functions
def test_user_functions():
    head = HEAD + ("function swish(z) = z * sigmoid(z)\n"
                   "function mix(a, b) = a*b + b^2\n"
                   "function twice(z) = swish(z) + swish(z)   # calls an earlier one\n")
    n = net("h^j = swish(W^j_i x^i)\ng^j = mix(h^j, 2)\nk^j = twice(g^j)\nf = k^j k^j", head)
    z0, z1 = ARG[0], ARG[1]
    assert [(u.name, u.params) for u in n.functions] == [("swish", ("z",)), ("mix", ("a", "b")), ("twice", ("z",))]
    assert sympy.simplify(n.functions[0].body - z0 / (1 + sympy.exp(-z0))) == 0
    assert n.functions[1].body == z0 * z1 + z1**2
    assert sympy.simplify(n.functions[2].body - 2 * z0 / (1 + sympy.exp(-z0))) == 0
    assert n.definition("h").expr.fn == Fn("swish", (0,))
    g = n.definition("g").expr
    assert g.fn == Fn("mix", (0, 0)) and g.args[1] == Const(2)


def test_user_function_may_use_sympy_functions():
    n = net("h^i = gelu(x^i)\nf = h^i h^i", HEAD + "function gelu(z) = z/2 * (1 + erf(z/sqrt(2)))\n")
    assert n.functions[0].body.has(sympy.erf)


# -------------------------------------------------- dims, comments, order
def test_symbolic_dims():
    head = "dims n0 = 4, h, c\ninput x^i : n0\nweight W^j_i : h, n0\nweight b^j : h\n"
    n = net("v^j = W^j_i x^i + b^j\nf = v^j v^j", head)
    assert n.dims == (("n0", 4), ("h", None), ("c", None))
    assert n.definition("v").indices == (Index("j", dim_symbol("h")),)
    assert n.sizes() == {n0: 4}


def test_dim_overrides():
    head = "dims n0 = 4, h\ninput x^i : n0\nweight W^j_i : h, n0\n"
    n = net("v^j = W^j_i x^i\nf = v^j v^j", head, dims={"h": 7, "n0": 2})
    assert n.dims == (("n0", 2), ("h", 7))


def test_comments_blank_lines_crlf_and_no_final_newline():
    text = ("# header\n\n  dims n = 2  # sizes\n# between\n\ninput x^i : n   # vector\n\n"
            "f = x^i x^i # objective")
    n = load("t.ein", text)
    assert n.objective == Name("f") and n.dims == (("n", 2),)
    n2 = load("t.ein", text.replace("\n", "\r\n"))
    assert n2.definitions == n.definitions


def test_several_dims_statements_and_declaration_order_free():
    text = "f = x^i x^i\ninput x^i : n\ndims n = 2\n"
    assert load("t.ein", text).objective == Name("f")


def test_definitions_out_of_order():
    text = HEAD + "weight U^l_j : c, n1\nf = softmax_cross_entropy(p, y)\np^l = U^l_j v^j\nv^j = relu(W^j_i x^i)\n"
    n = load("t.ein", text)
    assert [str(d.name) for d in n.definitions] == ["v", "p", "f"]
    assert n.objective == Name("f")


def test_dependency_order_is_stable():
    text = HEAD + "a^i = x^i\nb^i = c2^i\nc2^i = a^i\nd^i = x^i\nf = b^i d^i\n"
    assert [str(d.name) for d in load("t.ein", text).definitions] == ["a", "c2", "b", "d", "f"]


def test_load_reads_the_file(tmp_path):
    p = tmp_path / "m.ein"
    p.write_text("dims n = 2\ninput x^i : n\nf = x^i x^i\n")
    n = load(str(p))
    assert n.path == str(p) and n.definition("f").loc.file == str(p)


def test_check_main(tmp_path, capsys):
    from einderiv.frontend.check import _main
    assert _main(["check", str(PAPER)]) == 0
    assert "objective: f" in capsys.readouterr().out
    bad = tmp_path / "bad.ein"
    bad.write_text("f = \n")
    assert _main(["check", str(bad)]) == 2
    assert "bad.ein:1:5: syntax error" in capsys.readouterr().err


def test_label_sum_solves_each_label_arithmetically():
    """sum_t/mean_t over a family label: t = (member − k)/c for each member, at any label size."""
    text = ("dims n = 2\ninput x(t)^i : n     for t = 1001..1003\nweight W^j_i : n, n\n"
            "p(t)^j = W^j_i x(t)^i   for t = 1001..1003\nq(s)^j = p(s+1)^j   for s = 1000..1001\n"
            "f = sum_s(q(s)^j q(s)^j) + mean_t(p(1004-t)^j p(1004-t)^j)\n")
    f = load("t.ein", text).definition("f").expr
    qs, ps = f.terms
    assert [str(r.name) for t in qs.terms for r in t.factors] == ["q(1000)"] * 2 + ["q(1001)"] * 2
    assert ps.factors[0] == Const(sympy.Rational(1, 3))
    assert [str(t.factors[0].name) for t in ps.factors[1].terms] == ["p(1003)", "p(1002)", "p(1001)"]


def test_family_label_solve_is_affine():
    from einderiv.frontend.families import Families

    fam = Families("t.ein", {"T": 5})
    two_t_minus_1 = S.Label(1, 1, -1, (("t", 2),))
    assert fam.solve(two_t_minus_1, "t", 5, {}) == 3 and fam.solve(two_t_minus_1, "t", 4, {}) is None
    assert fam.solve(S.Label(1, 1, 0, (("T", 1), ("t", -1))), "t", 2, {}) == 3  # T - t = 2
    assert fam.solve(S.Label(1, 1, 0, (("s", 1),)), "t", 2, {"s": 1}) is None  # no t in the label


# ------------------------------------------------------- spelling property
from hypothesis import given, settings, strategies as st  # noqa: E402


@st.composite
def _spelled(draw):
    """A list of distinct indices, written as random ^/_ groups in a random style."""
    names = draw(st.lists(st.sampled_from("abcdeghijkmnpqrstuvwxz"), min_size=1, max_size=5, unique=True))
    text, k = "", 0
    while k < len(names):
        size = draw(st.integers(1, len(names) - k))
        group = names[k:k + size]
        mark = draw(st.sampled_from("^_"))
        style = draw(st.sampled_from(["bare", "braces", "commas"]))
        body = {"bare": "".join(group), "braces": "{" + "".join(group) + "}",
                "commas": "{" + ",".join(group) + ("," if size == 1 else "") + "}"}[style]
        text += mark + body
        k += size
    return names, text


@settings(max_examples=60, deadline=None)
@given(_spelled())
def test_index_spellings_give_written_order(case):
    names, written = case
    # the right side writes the indices: where a word such as t_ab ends is decided by them (a left
    # side's index must be written on the right; docs/notation.md, names and indices)
    stmt = parse(f"t{written} = u^{{{','.join(names)},}}\n", "t").statements[0]
    assert [ix.name for ix in stmt.indices] == names


# ------------------------------------------------ reductions, sizes as numbers
def test_sum_over_an_index():
    i = Index("i", n0)
    e = defn("s = sum_i(x^i)\nf = s s", "s").expr
    assert e == Prod((Ref("x", (i,)),), ())


def test_mean_over_an_index_holds_it_elementwise():
    # inside mean_i the index is held like a left-side index: x^i x^i is a square, not a dot product
    i = Index("i", n0)
    e = defn("q = mean_i(x^i x^i)\nf = q q", "q").expr
    assert e == Prod((Const(1 / n0), Ref("x", (i,)), Ref("x", (i,))), ())


def test_reduction_keeps_other_indices_and_sums_repeated_ones():
    j, i = Index("j", n1), Index("i", n0)
    e = defn("m = mean_j(W^j_i x^i)\nf = m m", "m").expr
    assert e == Prod((Const(1 / n1), Ref("W", (j, i)), Ref("x", (i,))), ())
    e = defn("v^i = sum_j(W^j_i)\nf = v^i v^i", "v").expr
    assert e == Prod((Ref("W", (j, i)),), (i,))


def test_softmax_over_a_named_index():
    from einderiv.ir import Softmax
    head = HEAD + "input S^{qk} : c, c\n"
    q, k = Index("q", c), Index("k", c)
    e = defn("a^{qk} = softmax_k(S^{qk})\nf = a^{qk} a^{qk}", "a", head).expr
    assert e == Softmax(Ref("S", (q, k)), k)


def test_dimensions_are_numbers_in_expressions():
    i = Index("i", n0)
    e = defn("g^i = x^i / sqrt(n0)\nf = g^i g^i", "g").expr
    assert e == Prod((Ref("x", (i,)), Const(1 / sympy.sqrt(n0))), (i,))
    e = defn("g^i = n1 x^i / c\nf = g^i g^i", "g").expr
    assert e == Prod((Const(n1), Ref("x", (i,)), Const(1 / c)), (i,))


def test_user_function_of_numbers_is_folded():
    e = defn("g^i = x^i twice(3)\nf = g^i g^i", "g", HEAD + "function twice(z) = 2*z\n").expr
    assert e.factors[1] == Const(6)


def test_reduction_names_do_not_shadow_functions_or_objectives():
    n = net("p^l = W^l_i x^i\nf = softmax_cross_entropy(p, y)",
            head=HEAD.replace("W^j_i : n1, n0", "W^j_i : c, n0"))
    assert isinstance(n.definition("f").expr, Add)
    assert n.definition("f").expr.terms[0] == LogSumExp(Ref("p", (Index("l", c),)), Index("l", c))


def test_multi_argument_function_broadcasts():
    head = HEAD + "weight s\nfunction shift(v, m) = v - m\n"
    j = Index("j", n1)
    e = defn("u^j = shift(W^j_i x^i, s)\nf = u^j u^j", "u", head).expr
    assert e.fn == Fn("shift", (0, 0)) and e.args[1] == Ref("s", ()) and e.free == (j,)
