"""Loops over a family's members in the generated module (emit/loops.py): backpropagation through
time as one reversed loop, code size independent of T, numbers equal to the unrolled module."""
from __future__ import annotations

import re

import numpy as np
import pytest

import einderiv
from einderiv.frontend.check import load
from einderiv.calculus.derive import derive
from einderiv.emit import numpy as emit_numpy
from einderiv.emit.kernel_arrays import Item, Key, Var
from einderiv.emit.kernel_names import local_hint
from einderiv.emit.loops import schedule

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
RNN = (ROOT / "derivations" / "rnn.ein").read_text()
RNN_ALL = (ROOT / "derivations" / "rnn_all_steps.ein").read_text()
GRADIENT_PATH = ("_forward", "_backward", "gradient", "per_sample_gradient", "gradient_factors",
                 "per_sample_gradient_norms", "hvp", "_r_pass")


def module(text: str, T: int, unrolled: bool = False) -> tuple[str, dict]:
    d = derive(load("r.ein", text, dims={"T": T}), 2, expanded=False)
    src = emit_numpy.generate(d, unrolled=unrolled)
    ns: dict = {}
    exec(compile(src, "<generated>", "exec"), ns)
    return src, ns


def function_lines(src: str) -> dict[str, int]:
    """Lines of each top-level function of a generated module."""
    out, name = {}, None
    for line in src.split("\n"):
        m = re.match(r"def (\w+)\(", line)
        if m:
            name = m[1]
            out[name] = 0
        elif line and not line.startswith(" "):
            name = None
        if name:
            out[name] += 1
    return out


def test_names_with_the_loop_variable():
    Name, Sym = einderiv.ir.Name, einderiv.ir.Sym

    def key(name):
        return emit_numpy.NumPyPrinter().doprint(Item(Var("t"), Key(name)))

    assert key(Name("h", (Sym("k", -1),))) == 't[f"h({k-1})"]'
    assert key(Name("h", (3,))) == 't["h(3)"]'
    q = einderiv.ir.Quantity(einderiv.ir.Kind.ADJ, (Name("h", (Sym("k", 1),), arg=1),))
    assert key(q) == 't[f"adj[z_h({k+1})]"]'
    assert local_hint(q, ("k", "m")) == "adj_z_h_kp1"


def test_backward_pass_is_one_reversed_loop_with_its_base_case_before():
    src, _ = module(RNN, 4)
    back = src[src.index("def _backward"):src.index("def _r_pass")]
    assert back.count("for k in") == 1
    assert "for k in range(3, 0, -1):" in back
    assert 't[f"adj[z_h({k+1})]"]' in back  # each step reads the next step's adjoint
    assert back.index('t["adj[h(4)]"] =') < back.index("for k in")  # base case first
    fwd = src[src.index("def _forward"):src.index("def _adj_p")]
    assert "for k in range(2, 5):" in fwd  # step 1 has no W h(0) term: straight-line


def test_two_layers_share_one_step_body():
    src, _ = module(RNN_ALL, 5)
    back = src[src.index("def _backward"):src.index("def _r_pass")]
    assert back.count("for k in") == 1
    body = back[back.index("for k in"):]
    order = [body.index(f't[f"adj[{n}({{k}})]"] =') for n in ("p", "r", "z_r", "h", "z_h")]
    assert order == sorted(order)  # every member of a step, in dependency order


@pytest.mark.parametrize("text", [RNN, pytest.param(RNN_ALL, marks=pytest.mark.slow)], ids=["rnn", "rnn_all_steps"])
def test_gradient_path_size_does_not_grow_with_T(text):
    sizes = {T: function_lines(module(text, T)[0]) for T in (4, 8, 16)}
    for name in GRADIENT_PATH:
        assert sizes[4][name] == sizes[8][name] == sizes[16][name], name
    unrolled = function_lines(module(text, 16, unrolled=True)[0])
    assert sum(sizes[16][n] for n in GRADIENT_PATH if n in sizes[16]) < \
        sum(v for n, v in unrolled.items() if n in GRADIENT_PATH or n.startswith(("_adj", "_tan", "_radj")))


@pytest.mark.parametrize("text", [RNN, RNN_ALL], ids=["rnn", "rnn_all_steps"])
@pytest.mark.parametrize("T", [2, 3, 6])
def test_loops_give_the_unrolled_numbers(text, T, draw):
    _, loop = module(text, T)
    _, flat = module(text, T, unrolled=True)
    params, data = draw(loop, T)
    vector = {k: np.random.default_rng(7).normal(size=v.shape) for k, v in params.items()}
    for fn in ("gradient", "per_sample_gradient", "per_sample_gradient_norms", "hessian", "ggn_diagonal"):
        a, b = loop[fn](params, data), flat[fn](params, data)
        for key in b:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-12, err_msg=f"{fn} {key}")
    a, b = loop["hvp"](params, data, vector), flat["hvp"](params, data, vector)
    for key in b:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(loop["objective"](params, data), flat["objective"](params, data), rtol=1e-13)
    factors = loop["gradient_factors"](params, data)
    psg = flat["per_sample_gradient"](params, data)
    for key, terms in factors.items():
        np.testing.assert_allclose(loop["expand_factors"](key, terms), psg[key], rtol=1e-12, atol=1e-12)


def test_schedule_falls_back_to_straight_line_without_families():
    net = einderiv.load(str(ROOT / "derivations" / "paper_mlp.ein"))
    d = derive(net, 1)
    items = schedule([(n.name, n.indices, n.expr) for n in d.nodes])
    assert all(kind == "def" for kind, *_ in items)


def test_loops_are_a_pass_over_the_unrolled_statements():
    """The builder writes one Define per member; the loop pass groups them by structure into a
    Loop whose statements carry the loop variable as a label (adj[h(k)]), never as text."""
    from einderiv.emit.kernel import Define, Function, Loop, Range
    from einderiv.emit.kernel_build import build
    from einderiv.emit.kernel_context import Context
    from einderiv.emit.loops import fold_loops

    ir = einderiv.ir
    ctx = Context(derive(load("r.ein", RNN, dims={"T": 4}), 2, expanded=False))
    unrolled = build(ctx)
    looped = fold_loops(unrolled, ctx)
    fns = {f.name: f for f in looped.items if isinstance(f, Function)}
    assert not any(isinstance(st, Loop) for f in unrolled.items if isinstance(f, Function) for st in f.body)
    (loop,) = [st for st in fns["_backward"].body if isinstance(st, Loop)]
    assert loop.over == Range(3, 0, -1) and loop.var == "k"
    adj_h = ir.Quantity(ir.Kind.ADJ, (ir.Name("h", (ir.Sym("k"),)),))
    assert adj_h in {st.name for st in loop.body if isinstance(st, Define)}
    assert any(isinstance(st, Loop) and st.over == Range(2, 5) for st in fns["_forward"].body)
