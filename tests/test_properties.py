"""Property-based tests (Hypothesis) of the IR, the simplifier and the rule table.

Random well-formed IR expressions over small concrete dimensions (refs of a few tensors,
products with a random output, sums of terms with the same free indices, tanh / sigmoid /
softplus / square / a piecewise function, deltas, ones, index arithmetic (windows with stride, dilation
and offset, reads outside zero), softmax, log-sum-exp, max and min over an index) are checked for:

* ``Simplifier.simplify`` is idempotent, up to the names of bound indices;
* renaming bound indices (``ir.rename``, or one product's dummy by hand) preserves the
  alpha-equivalence key, while renaming a free index changes it;
* ``diff.partial`` agrees with central differences of a numeric evaluation (and the second
  partial with central differences of the first), and simplified and unsimplified
  expressions (and derivatives) evaluate equal.

The numbers come from the independent evaluator of tests/reference.py.  Examples are
derandomised and no example database is kept, so every run sees the same cases: a quarter of each
property's count in the README's default run, all of them in .ci/run (tests/runs.py).

Four simplifier bugs these properties found are pinned by regression tests at the end
(BUG 1–4, fixed); the generator produces the expressions that exposed them.
"""
from __future__ import annotations

import numpy as np
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from einderiv import ir
from einderiv.calculus.diff import partial
from einderiv.calculus.functions import FunctionTable
from einderiv.frontend.builtins import ARG
from einderiv.frontend.network import UserFunction
from einderiv.ir import Add, Apply, Const, Delta, Fn, Index, LogSumExp, Ones, Prod, Ref, Softmax
from einderiv.calculus.simplify import Simplifier
from reference import STEP, Evaluator, error
from runs import examples

PROPERTY = settings(max_examples=examples(300), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

TWO, THREE = sympy.Integer(2), sympy.Integer(3)
POOL = (Index("a", TWO), Index("b", TWO), Index("e", TWO), Index("c", THREE), Index("d", THREE),
        Index("g", THREE))
TENSORS = {"x": (2,), "y": (3,), "A": (2, 3), "B": (3, 3), "s": ()}
FUNCTIONS = ("tanh", "sigmoid", "softplus", "square", "pw")
#: a piecewise user function (as ``function pw(z) = where(z < 1/2, z^2/2, z/2 - 1/8)`` reads): a
#: Huber-like kink at 1/2, where the derivatives come from SymPy's Piecewise
_z = ARG[0]
PIECEWISE = UserFunction("pw", ("z",), sympy.Piecewise((_z ** 2 / 2, _z < sympy.Rational(1, 2)),
                                                      (_z / 2 - sympy.Rational(1, 8), True)), None)
CONSTS = (sympy.Rational(1, 2), sympy.Integer(-1), sympy.Integer(2), sympy.Rational(-3, 2))
SIMPLIFIER = Simplifier(FunctionTable(((PIECEWISE.name, 1, PIECEWISE.body),)))
EVAL = Evaluator({}, (PIECEWISE,))


# ------------------------------------------------------------------ alpha-equivalence
def alpha_key(e: ir.Expr):
    """A structural key of ``e`` in which bound indices (a product's summed indices, the index
    of a log-sum-exp) are numbered by scope and first appearance, and free indices keep their
    names: equal keys ⇔ equal up to renaming of bound indices.

    Written here independently of :func:`einderiv.ir.alpha_key` (which identifies free indices
    by position, not by name) so that each checks the other (:func:`test_alpha_key_tells_bound_from_free`);
    unlike it, this key treats a sum's terms as unordered.
    """

    def walk(x, env):
        def ix(i):
            return ("bound", env[i], i.dim) if i in env else ("free", i.name, i.dim)

        if isinstance(x, Const):
            return ("C", x.value)
        if isinstance(x, Ref):
            return ("R", x.name, tuple(ix(i) for i in x.indices))
        if isinstance(x, Delta):
            return ("D", ix(x.a), ix(x.b))
        if isinstance(x, Ones):
            return ("1", ix(x.index))
        if isinstance(x, ir.Window):
            return ("W", ix(x.u), ix(x.t), ix(x.a) if x.a is not None else None, x.stride, x.dilation, x.offset)
        if isinstance(x, Prod):  # dummies numbered by depth of scope (de Bruijn levels)
            level = max(env.values(), default=-1) + 1  # (a shadowed name still counts its level)
            inner = {**env, **{b: level + k for k, b in enumerate(x.bound)}}
            return ("P", tuple(walk(f, inner) for f in x.factors), tuple(ix(i) for i in x.out))
        if isinstance(x, Add):  # a sum is commutative: its terms' order does not count
            return ("+", tuple(sorted((walk(t, env) for t in x.terms), key=repr)))
        if isinstance(x, Apply):
            return ("F", x.fn, tuple(walk(a, env) for a in x.args))
        if isinstance(x, Softmax):
            return ("S", walk(x.arg, env), ix(x.over))
        if isinstance(x, (LogSumExp, ir.Max)):
            inner = {**env, x.over: max(env.values(), default=-1) + 1}
            return ("L", getattr(x, "kind", ""), walk(x.arg, inner), inner[x.over])
        if isinstance(x, ir.ArgMax):
            return ("A", x.kind, walk(x.arg, env), ix(x.over))
        if isinstance(x, ir.Inv):
            return ("I", walk(x.arg, env), ix(x.row), ix(x.col))
        if isinstance(x, ir.MatDet):  # binds the matrix's row and column
            level = max(env.values(), default=-1) + 1
            inner = {**env, x.row: level, x.col: level + 1}
            return ("M", x.kind, walk(x.arg, inner), level, inner[x.col] - level)
        raise TypeError(type(x).__name__)

    return walk(e, {})


def test_alpha_key_tells_bound_from_free():
    """The helper itself: renaming a dummy keeps the key; renaming a free index, or changing
    which index is summed, changes it."""
    a, b, c, d = (Index(n, THREE) for n in "abcd")
    e = Prod((Ref("B", (a, b)), Ref("y", (b,))), (a,))
    assert alpha_key(e) == alpha_key(Prod((Ref("B", (a, c)), Ref("y", (c,))), (a,)))
    assert alpha_key(e) != alpha_key(Prod((Ref("B", (d, b)), Ref("y", (b,))), (d,)))
    assert alpha_key(e) != alpha_key(Prod((Ref("B", (b, a)), Ref("y", (b,))), (a,)))
    lse = LogSumExp(Ref("B", (a, b)), b)
    assert alpha_key(lse) == alpha_key(LogSumExp(Ref("B", (a, c)), c))
    # einderiv's own key agrees wherever names of free indices are given as slots
    assert ir.alpha_key(e, (a,)) == ir.alpha_key(Prod((Ref("B", (a, c)), Ref("y", (c,))), (a,)), (a,))
    assert ir.alpha_key(e, (a,)) != ir.alpha_key(Prod((Ref("B", (b, a)), Ref("y", (b,))), (a,)), (a,))
    assert ir.alpha_key(lse, (a,)) == ir.alpha_key(LogSumExp(Ref("B", (a, c)), c), (a,))
    assert alpha_key(lse) != alpha_key(LogSumExp(Ref("B", (a, b)), a))


# ------------------------------------------------------------------ random expressions
def _dim(ix: Index) -> int:
    return int(ix.dim)


@st.composite
def leaves(draw, free: tuple[Index, ...]):
    """A product of refs, deltas and ones (or a single one of them) whose free indices are ``free``."""
    if not free:
        return draw(st.sampled_from([Ref("s", ())] + [Const(c) for c in CONSTS]))
    rest = list(draw(st.permutations(free)))
    factors: list[ir.Expr] = []
    while rest:
        i = rest.pop(0)
        other = [j for j in rest if _dim(j) != _dim(i)]
        same = [j for j in rest if _dim(j) == _dim(i)]
        pick = draw(st.integers(0, 4))
        if pick == 4:  # index arithmetic y^{s·i+d·j+c} (or y^{s·i+c}), reads outside y zero (issue 12)
            j = draw(st.sampled_from([None] + rest))
            if j is not None:
                rest.remove(j)
            u = ir.fresh(THREE, "u")
            w = ir.Window(u, i, j, draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, -1, 2])),
                          draw(st.sampled_from([0, 1, -1])))
            factors.append(Prod((w, Ref("y", (u,))), w.free[1:]))
        elif pick == 0 and other:
            j = other[0]
            rest.remove(j)
            factors.append(Ref("A", (i, j) if _dim(i) == 2 else (j, i)))
        elif pick == 1 and _dim(i) == 3 and same:
            rest.remove(same[0])
            factors.append(Ref("B", (i, same[0])))
        elif pick == 2 and same:  # with or without another carrier of its index (BUG 1 below)
            rest.remove(same[0])
            factors.append(Delta(i, same[0]))
            if draw(st.booleans()):
                factors.append(Ref("x" if _dim(i) == 2 else "y", (i,)))
        else:
            factors.append(Ref("x" if _dim(i) == 2 else "y", (i,)))
    extra = draw(st.integers(0, 5))
    if extra == 0:
        factors.append(Ref("s", ()))
    elif extra == 1:
        factors.append(Const(draw(st.sampled_from(CONSTS))))
    elif extra == 2:
        factors.append(Ones(draw(st.sampled_from(free))))
    if len(factors) == 1:
        return factors[0]
    return Prod(tuple(factors), tuple(draw(st.permutations(free))))


@st.composite
def expressions(draw, free: tuple[Index, ...], depth: int):
    """A well-formed expression whose free indices are ``free`` (as a set).

    Deltas may be summed over both indices (BUG 1 below), contracted into a function's
    argument (BUG 2), and an argument may cancel to zero (BUG 3).
    """
    if depth == 0:
        return draw(leaves(free))
    kind = draw(st.sampled_from(["prod", "prod", "add", "apply", "apply", "softmax", "lse", "max", "matrix"]))
    sub = lambda f: expressions(f, depth - 1)  # noqa: E731
    spare = [i for i in POOL if i not in free]  # indices free to be summed here
    if kind in ("lse", "max"):
        spare_lse = spare
        kind = kind if spare_lse else "prod"
    if kind == "prod":
        bound = draw(st.lists(st.sampled_from(spare), max_size=2, unique=True)) if spare else []
        n = draw(st.integers(1, 3))
        carriers = {i: draw(st.sets(st.integers(0, n - 1), min_size=1)) for i in free + tuple(bound)}
        factors = tuple(draw(sub(tuple(i for i in carriers if k in carriers[i]))) for k in range(n))
        return Prod(factors, tuple(draw(st.permutations(free))))
    if kind == "add":
        n = draw(st.integers(2, 3))
        return Add(tuple(draw(sub(tuple(draw(st.permutations(free))))) for _ in range(n)))
    if kind == "apply":
        return Apply(Fn(draw(st.sampled_from(FUNCTIONS)), (0,)), (draw(sub(free)),))
    if kind == "softmax" and free:
        return Softmax(draw(sub(free)), draw(st.sampled_from(free)))
    if kind == "lse":
        over = draw(st.sampled_from(spare_lse))
        return LogSumExp(draw(sub(free + (over,))), over)
    if kind == "max":  # max_k or min_k; its derivative brings the maximisers' weights (ArgMax)
        over = draw(st.sampled_from(spare_lse))
        return ir.Max(draw(sub(free + (over,))), over, draw(st.sampled_from(ir.EXTREMES)))
    if kind == "matrix":  # inv(M)^r_c for two free indices of one size; else logdet/det(M) times the rest
        if len(free) == 2 and _dim(free[0]) == _dim(free[1]):
            return ir.Inv(_near_identity(draw(sub(free)), *free), *free)
        pairs = [(r, c) for r in spare for c in spare if r != c and _dim(r) == _dim(c)]
        if pairs:
            r, c = draw(st.sampled_from(pairs))
            det = ir.MatDet(_near_identity(draw(sub((r, c))), r, c), r, c, draw(st.sampled_from(ir.MATRIX_SCALARS)))
            return Prod((det, draw(leaves(free))), free) if free else det
    return draw(leaves(free))


def _near_identity(e: ir.Expr, r: Index, c: Index) -> ir.Expr:
    """4 δ^r_c + e/4: a square matrix well away from singular (det > 0) for the values drawn."""
    return Add((Prod((Const(sympy.Integer(4)), Delta(r, c)), (r, c)), Prod((Const(sympy.Rational(1, 4)), e), (r, c))))


@st.composite
def cases(draw):
    """``(expression, values)``: values N(0, 0.5²) for every tensor, with a batch axis of 1."""
    free = tuple(draw(st.lists(st.sampled_from(POOL), max_size=2, unique=True)))
    e = draw(expressions(free, draw(st.sampled_from([2, 3, 3]))))
    assume(not isinstance(e, Const))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    env = {n: rng.normal(0.0, 0.5, (1,) + s) for n, s in TENSORS.items()}
    return e, env


def evaluate(e: ir.Expr, env: dict, axes: tuple[Index, ...] | None = None) -> np.ndarray:
    """``e`` at ``env`` (batch axis of 1), its axes in the order ``axes`` (default ``e.free``)."""
    value = EVAL.evaluate(e, env, 1)
    return value if axes is None else EVAL.align(value, e.free, axes)


def test_generator_covers_the_ir():
    """The strategy produces every node kind (so the properties below are about all of them)."""
    seen: set[str] = set()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(cases())
    def collect(case):
        def walk(x):
            seen.add(type(x).__name__)
            if isinstance(x, Apply):
                seen.add(x.fn.name)
            if isinstance(x, Prod) and x.bound:
                seen.add("bound")
            for c in x.children():
                walk(c)
        walk(case[0])

    collect()
    assert {"Const", "Ref", "Delta", "Ones", "Window", "Prod", "Add", "Apply", "Softmax", "LogSumExp", "Max", "bound",
            "pw", "Inv", "MatDet"} <= seen


# ------------------------------------------------------------------ (a) simplify is idempotent
@PROPERTY
@given(cases())
def test_simplify_is_idempotent(case):
    e, env = case
    once = SIMPLIFIER.simplify(e)
    assert not _like_terms(once), once  # BUG 4: terms equal up to dummies are merged
    twice = SIMPLIFIER.simplify(once)
    assert alpha_key(twice) == alpha_key(once), (e, once, twice)
    assert set(once.free) == set(e.free) or ir.is_zero(once)
    assert error(evaluate(once, env, e.free) if not ir.is_zero(once) else 0 * evaluate(e, env),
                 evaluate(e, env)) <= 1e-9


def _like_terms(e) -> bool:
    """Whether two terms of ``e`` differ only in their coefficient and the names of bound indices."""
    if not isinstance(e, Add):
        return False
    keys = [alpha_key(Prod(tuple(f for f in t.factors if not isinstance(f, Const)), t.out))
            if isinstance(t, Prod) else alpha_key(t) for t in e.terms]
    return len(set(keys)) < len(keys)


# ------------------------------------------------------------------ (b) renaming bound indices
@PROPERTY
@given(cases())
def test_renaming_bound_indices_preserves_the_key(case):
    e, env = case
    # a non-empty mapping of the free indices to themselves: rename freshens every bound index
    unused = Index("unused", TWO)
    renamed = ir.rename(e, {i: i for i in e.free} or {unused: unused})
    assert alpha_key(renamed) == alpha_key(e)
    if _binders(e):
        assert renamed != e  # the rename did rename something
    np.testing.assert_array_equal(evaluate(renamed, env, e.free), evaluate(e, env))
    # renaming a free index is not an alpha-equivalence
    if e.free:
        moved = ir.rename(e, {e.free[0]: Index("zz", e.free[0].dim)})
        assert alpha_key(moved) != alpha_key(e)


@PROPERTY
@given(cases(), st.data())
def test_rename_touched_is_rename_up_to_dummies_and_keeps_untouched_subtrees(case, data):
    """``ir.rename_touched`` (the simplifier's): the same expression as ``ir.rename`` up to the
    names of dummies — the same key, the same numbers — onto a new index or onto one already
    in the expression (a diagonal); a subtree without the renamed index free comes back as it is."""
    e, env = case
    assume(e.free)
    src = e.free[0]
    dst = data.draw(st.sampled_from([Index("zz", src.dim)] + [ix for ix in POOL if ix.dim == src.dim]))
    touched, plain = ir.rename_touched(e, {src: dst}), ir.rename(e, {src: dst})
    assert alpha_key(touched) == alpha_key(plain)
    np.testing.assert_array_equal(evaluate(touched, env, plain.free), evaluate(plain, env))
    if type(touched) is type(e):  # (not a softmax's diagonal, rebuilt as a product)
        renamed = {src, *e.binds()}  # the node's own dummies are renamed too
        for child, new in zip(e.children(), touched.children()):
            if renamed.isdisjoint(child.free):
                assert new is child
    assert ir.rename_touched(e, {Index("unused", TWO): dst}) is e


@PROPERTY
@given(cases(), st.data())
def test_renaming_one_products_dummy_by_hand_preserves_the_key(case, data):
    e, env = case
    prods = [p for p in _binders(e) if isinstance(p, Prod)]
    assume(prods)
    p = data.draw(st.sampled_from(prods))
    b = data.draw(st.sampled_from(p.bound))
    fresh = Index("q_fresh", b.dim)
    p2 = Prod(tuple(ir.rename(f, {b: fresh}) for f in p.factors), p.out)
    e2 = _replace(e, p, p2)
    assert e2 != e
    assert alpha_key(e2) == alpha_key(e)
    np.testing.assert_array_equal(evaluate(e2, env, e.free), evaluate(e, env))


def _binders(e):
    """Every Prod with a summed index and every LogSumExp in ``e``."""
    out = []
    if (isinstance(e, Prod) and e.bound) or isinstance(e, (LogSumExp, ir.Max)):
        out.append(e)
    for c in e.children():
        out += _binders(c)
    return out


def _replace(e, old, new):
    """``e`` with the subexpression ``old`` (by identity) replaced by ``new``."""
    if e is old:
        return new
    return ir.map_children(e, lambda c: _replace(c, old, new))


# ------------------------------------------------------------------ (c) derivatives
@PROPERTY
@given(cases(), st.data())
def test_partial_agrees_with_finite_differences(case, data):
    e, env = case
    names = list(ir.ref_names(e))
    assume(names)
    name = data.draw(st.sampled_from(names))
    d, got = _checked_partial(e, env, name, "w")
    # the simplified derivative is the same function
    s = SIMPLIFIER.simplify(d)
    simplified = np.zeros_like(got) if ir.is_zero(s) else evaluate(s, env, e.free + _wrt(name, "w"))
    assert error(simplified, got) <= 1e-9, (d, s)


@settings(PROPERTY, max_examples=examples(150))
@given(cases(), st.data())
def test_second_partial_agrees_with_finite_differences_of_the_first(case, data):
    """The rule table applied to its own output (f″ of every function, the softmax rule on a
    softmax), against central differences of the evaluated first derivative."""
    e, env = case
    names = list(ir.ref_names(e))
    assume(names)
    first, _ = _checked_partial(e, env, data.draw(st.sampled_from(names)), "w")
    assume(not ir.is_zero(first))
    _checked_partial(first, env, data.draw(st.sampled_from(names)), "v")


def _wrt(name, prefix):
    return tuple(Index(f"{prefix}{k}", sympy.Integer(n)) for k, n in enumerate(TENSORS[str(name)]))


def _checked_partial(e, env, name, prefix):
    """``(∂e/∂name, its value)`` after asserting that it agrees with central differences."""
    wrt = _wrt(name, prefix)
    EVAL.kink_distance = np.inf
    evaluate(e, env)
    assume(EVAL.kink_distance > 1e-3)  # near a tie of a max_k's two best entries, or pw's threshold
    d = partial(e, name, wrt)
    axes = e.free + wrt
    fd = _central(e, env, name)
    if ir.is_zero(d):
        got = np.zeros_like(fd)
    else:
        assert set(d.free) == set(axes), (d.free, axes)
        got = evaluate(d, env, axes)
    assert error(got, fd) <= 1e-6, (e, name)
    return d, got


def _central(e, env, name) -> np.ndarray:
    """∂e/∂name by central differences: axes ``e.free`` then the tensor's axes (batch axis first)."""
    theta = env[str(name)]
    out = np.zeros((1,) + tuple(_dim(i) for i in e.free) + theta.shape[1:])
    for idx in np.ndindex(theta.shape[1:]):
        at = (0,) + idx
        x0 = theta[at]
        h = STEP * max(1.0, abs(x0))
        theta[at] = x0 + h
        up = evaluate(e, env)
        theta[at] = x0 - h
        down = evaluate(e, env)
        theta[at] = x0
        out[(Ellipsis,) + idx] = (up - down) / (2 * h)
    return out


# ------------------------------------------------------------------ regressions (BUG 1–4, found by the properties)
_a, _b = Index("a", TWO), Index("b", TWO)
_i, _j = Index("i", THREE), Index("j", THREE)


def test_simplify_traces_a_delta_summed_over_both_indices():
    e = Prod((Delta(_a, _b), Ref("s", ())), ())  # Σ_ab δ^a_b s = 2 s
    assert SIMPLIFIER.simplify(e) == Prod((Const(TWO), Ref("s", ())), ())


def test_simplify_contracts_a_delta_into_a_function_argument():
    # Σ_j tanh(x^i x^j) δ^i_j = tanh(x^i x^i): expected a Prod with out (i,), not (i, i)
    e = Prod((Apply(Fn("tanh", (0,)), (Prod((Ref("y", (_i,)), Ref("y", (_j,))), (_i, _j)),)), Delta(_i, _j)),
             (_i,))
    s = SIMPLIFIER.simplify(e)
    assert all(len(set(p.out)) == len(p.out) for p in _walk(s) if isinstance(p, Prod)), s


def _walk(e):
    yield e
    for c in e.children():
        yield from _walk(c)


def test_simplify_keeps_the_free_indices_of_a_function_of_zero():
    e = Apply(Fn("sigmoid", (0,)), (Add((Ref("y", (_i,)), Prod((Const(-1), Ref("y", (_i,))), (_i,)))),))
    assert set(SIMPLIFIER.simplify(e).free) == {_i}


def test_simplify_merges_terms_equal_up_to_dummies_inside_a_function():
    inner = Apply(Fn("tanh", (0,)), (Prod((Ref("B", (_i, _j)), Ref("y", (_j,))), (_i,)),))
    t = Prod((Delta(_a, _b), Ref("x", (_a,)), inner), (_b, _i))
    once = SIMPLIFIER.simplify(Add((t, t)))
    assert not _like_terms(once), once


def test_a_softmax_diagonal_keeps_its_normaliser():
    """BUG 5 (found by the properties): contracting δ^a_b into softmax_b(t[a, b]) with b summed
    renamed the softmax's axis onto a, normalising over the wrong axis.  The diagonal s[a, a] is
    Σ_c softmax_c(t[a, c]) δ^c_a; renaming keeps that meaning and the simplifier keeps the delta."""
    t = Apply(Fn("tanh", (0,)), (Prod((Ref("B", (_i, _j)), Ref("y", (_j,))), (_i, _j)),))
    e = Prod((Softmax(t, _j), Delta(_i, _j)), (_i,))  # Σ_j softmax_j(B^{ij} y^j) δ^i_j
    env = {n: np.random.default_rng(5).normal(0, 0.5, (1,) + s) for n, s in TENSORS.items()}
    want = evaluate(e, env)
    assert error(evaluate(SIMPLIFIER.simplify(e), env, e.free), want) <= 1e-12
    renamed = ir.rename(Softmax(t, _j), {_j: _i})  # the diagonal, by renaming
    assert error(evaluate(renamed, env), want) <= 1e-12


def test_a_delta_contracted_into_a_function_leaves_no_trivial_delta():
    """BUG 6 (found by the properties): Σ_d δ^c_d tanh(δ^c_d x^a) renamed d → c inside the
    function's argument and left δ^c_c there; a second pass turned it into 𝟙^c (not idempotent)."""
    _c, _d = Index("c", THREE), Index("d", THREE)
    e = Prod((Delta(_c, _d), Apply(Fn("tanh", (0,)), (Prod((Delta(_c, _d), Ref("x", (_a,))), (_c, _d, _a)),))),
             (_c, _a))
    once = SIMPLIFIER.simplify(e)
    assert not any(isinstance(x, Delta) and x.a == x.b for x in _walk(once)), once
    assert alpha_key(SIMPLIFIER.simplify(once)) == alpha_key(once)


def test_a_softmax_of_a_cancelling_argument_keeps_its_axis():
    """BUG 7 (found by the properties): softmax_a(x^a − x^a) simplified its argument to 0, with
    no axis a left to normalise over; it is softmax_a of a constant along a (1/n each)."""
    arg = Add((Ref("x", (_a,)), Prod((Const(-1), Ref("x", (_a,))), (_a,))))
    once = SIMPLIFIER.simplify(Softmax(arg, _a))
    env = {n: np.random.default_rng(7).normal(0, 0.5, (1,) + s) for n, s in TENSORS.items()}
    np.testing.assert_allclose(evaluate(once, env, (_a,)), np.full((1, 2), 0.5))


def test_terms_equal_up_to_a_binders_letter_merge():
    """BUG 8 (found by the properties): log Σ_a exp(s x^a) + log Σ_b exp(s x^b) stayed two terms
    (their dummies keep their letters a and b); merging compares terms up to index names."""
    _i2 = Index("i", TWO)
    lse = lambda ix: LogSumExp(Prod((Ref("s", ()), Ref("x", (ix,))), (ix,)), ix)  # noqa: E731
    once = SIMPLIFIER.simplify(Add((lse(_a), lse(_i2))))
    assert not isinstance(once, Add) and not _like_terms(once), once


def test_terms_transposed_against_each_other_do_not_merge():
    """The merge key identifies free indices by name: B^{cd} s with outputs (d, c) and B^{dc} s
    with outputs (c, d) are different terms (a 4000-example run caught a key that took the
    outputs by position and summed B + Bᵀ into 2B)."""
    _c, _d = Index("c", THREE), Index("d", THREE)
    e = Add((Prod((Ref("B", (_c, _d)), Ref("s", ())), (_d, _c)), Prod((Ref("B", (_d, _c)), Ref("s", ())), (_c, _d))))
    env = {n: np.random.default_rng(8).normal(0, 0.5, (1,) + s) for n, s in TENSORS.items()}
    assert error(evaluate(SIMPLIFIER.simplify(e), env, e.free), evaluate(e, env)) <= 1e-12


def test_a_renaming_into_a_function_leaves_no_redundant_ones():
    """BUG 9 (found by the properties): Σ δ^a_e … tanh(x^b δ^a_e s) δ^a_b … simplified the
    argument to 𝟙^a s x^b, then renamed b → a outside it: tanh(𝟙^a s x^a) kept its ones vector,
    which a second pass dropped (not idempotent)."""
    _b, _e, _c = Index("b", TWO), Index("e", TWO), Index("c", THREE)
    s = Ref("s", ())
    inner = Apply(Fn("tanh", (0,)), (Prod((Ref("x", (_b,)), Delta(_a, _e), s), (_a, _b, _e)),))
    left = Prod((Prod((Delta(_a, _e), s), (_a, _e)), Prod((Ref("A", (_a, _c)), Ref("x", (_e,)), s), (_a, _c, _e)),
                 inner), (_a, _b))
    right = Prod((Delta(_a, _b), Ref("A", (_e, _c)), s), (_c, _a, _b, _e))
    e = Prod((left, right), (_c, _a))
    once = SIMPLIFIER.simplify(e)
    assert alpha_key(SIMPLIFIER.simplify(once)) == alpha_key(once), once
    env = {n: np.random.default_rng(9).normal(0, 0.5, (1,) + s) for n, s in TENSORS.items()}
    assert error(evaluate(once, env, e.free), evaluate(e, env)) <= 1e-12
