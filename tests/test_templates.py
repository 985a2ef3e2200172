"""Layer templates (`depth n`): instantiation equals the hand-written network, and the general
form (the paper's Eqs. 1-9 for any depth) is read off, validated, and printed."""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import einderiv
from einderiv.frontend.check import load
from einderiv.cli import main

from clirun import run_cli
from einderiv.calculus.derive import derive
from einderiv.emit.numpy import generate
from einderiv.errors import UsageError
from einderiv.numcheck import load as load_module
from einderiv.frontend.parse import paper_labels
from einderiv.analysis.template import FoldError, GeneralTerm, general_form, validate

ROOT = pathlib.Path(__file__).resolve().parent.parent

TEMPLATE = """dims n_in = 4, h = 3, c = 3
depth n
input  x^i : n_in
label  y^l : c
weight w^{{(1),j}}_i : h, n_in
weight w^{{(k),j}}_i : h, h        for k = 2..n
weight u^l_j : c, h
v^{{(0),i}} = x^i
v^{{(k),j}} = {act}(w^{{(k),j}}_i v^{{(k-1),i}})   for k = 1..n
p^l = u^l_j v^{{(n),j}}
f = softmax_cross_entropy(p, y)
"""


def hand_written(n: int, act: str) -> str:
    lines = ["dims n_in = 4, h = 3, c = 3", "input x^i : n_in", "label y^l : c",
             "weight W1^j_i : h, n_in"]
    lines += [f"weight W{k}^j_i : h, h" for k in range(2, n + 1)]
    lines += ["weight U^l_j : c, h", f"v1^j = {act}(W1^j_i x^i)"]
    lines += [f"v{k}^j = {act}(W{k}^j_i v{k - 1}^i)" for k in range(2, n + 1)]
    lines += [f"p^l = U^l_j v{n}^j", "f = softmax_cross_entropy(p, y)"]
    return "\n".join(lines) + "\n"


def to_hand(name: str) -> str:
    return "U" if name == "u" else "W" + name[2:-1]  # w(3) -> W3


# ------------------------------------------------------------------ front end
def test_paper_labels_are_family_members_and_keep_columns():
    assert paper_labels("w^{(k),j}_i v^{(k-1),i}") == "w(k)^{j} _i v(k-1)^{i} "
    assert paper_labels("w^{(2)}") == "w(2)   "  # 7 characters, as written


def test_symbolic_depth_is_a_template_and_a_concrete_one_is_not():
    text = TEMPLATE.format(act="relu")
    tpl = einderiv.load("t.ein", text)
    assert isinstance(tpl, einderiv.Template) and tpl.depth == "n"
    assert isinstance(einderiv.load("t.ein", text, depth={"n": 3}), einderiv.Network)
    assert isinstance(einderiv.load("t.ein", text, dims={"n": 3}), einderiv.Network)  # a depth is a size too
    net = tpl.instantiate(1)  # `for k = 2..n` is empty at n = 1
    assert [str(t.name) for t in net.tensors if t.role == "weight"] == ["w(1)", "u"]
    assert tpl.instantiate(3) is tpl.instantiate(3)  # checked once per depth
    assert einderiv.load("t.ein", text, depth={"n": 3}).definitions == tpl.instantiate(3).definitions


def test_load_does_not_change_its_arguments():
    dims, depth = {"h": 4}, {"n": 2}
    einderiv.load("t.ein", TEMPLATE.format(act="relu"), dims=dims, depth=depth)
    tpl = einderiv.load("t.ein", TEMPLATE.format(act="relu"), dims=dims)
    tpl.instantiate(2)
    assert dims == {"h": 4} and depth == {"n": 2} and dict(tpl.dims) == {"h": 4}


def test_template_is_checked_when_loaded():
    bad = TEMPLATE.format(act="relu").replace("u^l_j v^{(n),j}", "u^l_j v^{(n),k}")
    with pytest.raises(einderiv.EinderivError, match=r"^t\.ein:10:1: free indices differ"):
        einderiv.load("t.ein", bad)


# (arguments to einderiv.load, exact message) — the library names its own arguments
LOAD_ERRORS = [
    ({"depth": {"q": 2}}, "depth={'q': 2} names no depth 'q'; the file declares n"),
    ({"depth": {"n": 0}}, "depth={'n': 0}: a depth must be a positive integer"),
    ({"dims": {"q": 2}}, "dims={'q': 2} names no dimension 'q'; the file declares n_in, h, c, n"),
]


@pytest.mark.parametrize("kw,message", LOAD_ERRORS)
def test_load_errors_name_the_argument(kw, message):
    with pytest.raises(UsageError) as info:
        einderiv.load("t.ein", TEMPLATE.format(act="relu"), **kw)
    assert str(info.value) == message


def test_api_errors_for_templates():
    tpl = einderiv.load("t.ein", TEMPLATE.format(act="relu"))
    with pytest.raises(UsageError) as info:
        tpl.instantiate(0)
    assert str(info.value) == "depth={'n': 0}: a depth must be a positive integer"
    with pytest.raises(UsageError) as info:
        einderiv.check(tpl)
    assert str(info.value) == ("check() needs a network at a concrete depth, not a layer template: derive "
                               "template.instantiate(3) or load the file with depth={'n': 3}")
    with pytest.raises(UsageError) as info:
        einderiv.codegen(tpl, sizes={"h": 2})
    assert str(info.value) == ("sizes={'h': 2}: a layer template takes its sizes when it is loaded, "
                               "load(path, dims=...)")


def test_cli_depth_errors(tmp_path, capsys):
    f = tmp_path / "t.ein"
    f.write_text(TEMPLATE.format(act="relu"))
    assert main(["derive", str(f), "--depth", "q=2"]) == 2
    assert capsys.readouterr().err == "einderiv: error: --depth q=2 names no depth 'q'; the file declares n\n"
    assert main(["derive", str(f), "--depth", "n=0"]) == 2
    assert capsys.readouterr().err == "einderiv: error: --depth n=0: a depth must be a positive integer\n"
    assert main(["check", str(f)]) == 2
    assert capsys.readouterr().err == ("einderiv: error: 'check' needs a concrete depth for a layer template: "
                                       "add --depth n=3\n")
    assert main(["structure", str(f)]) == 2
    assert capsys.readouterr().err == ("einderiv: error: 'structure' needs a concrete depth for a layer "
                                       "template: add --depth n=3\n")
    assert main(["derive", str(f), "--order", "3"]) == 2
    assert capsys.readouterr().err == (
        "einderiv: error: the general form of a template goes to order 2 (gradients and Hessian blocks); "
        "for order 3 give a concrete depth, e.g. --depth n=3\n")
    assert main(["derive", str(f), "--form", "compact"]) == 2
    assert capsys.readouterr().err == (
        "einderiv: error: --form compact: the general form of a layer template writes its Hessian blocks "
        "expanded; the compact form needs a concrete depth\n")


# -------------------------------------------------------------- instantiation
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_instantiation_equals_the_hand_written_network(n, act):
    tpl = einderiv.load("t.ein", TEMPLATE.format(act=act))
    mine = load_module(generate(derive(tpl.instantiate(n), 2)))
    hand = load_module(generate(derive(load("h.ein", hand_written(n, act)), 2)))
    rng = np.random.default_rng(n)
    params = {k: rng.normal(size=s) for k, s in mine["PARAMS"].items()}
    hparams = {to_hand(k): v for k, v in params.items()}
    B = 4
    data = {"x": rng.normal(size=(B, 4)), "y": np.eye(3)[rng.integers(0, 3, B)]}
    np.testing.assert_allclose(mine["objective"](params, data), hand["objective"](hparams, data), rtol=0, atol=1e-12)
    g, hg = mine["gradient"](params, data), hand["gradient"](hparams, data)
    for k in params:
        np.testing.assert_allclose(g[k], hg[to_hand(k)], rtol=0, atol=1e-12)
    vec = {k: rng.normal(size=v.shape) for k, v in params.items()}
    hv, hhv = mine["hvp"](params, data, vec), hand["hvp"](hparams, data, {to_hand(k): v for k, v in vec.items()})
    for k in params:
        np.testing.assert_allclose(hv[k], hhv[to_hand(k)], rtol=0, atol=1e-12)
    H, hH = mine["hessian"](params, data), hand["hessian"](hparams, data)
    for (a, b), block in H.items():
        np.testing.assert_allclose(block, hH[(to_hand(a), to_hand(b))], rtol=0, atol=1e-12)


# --------------------------------------------------------------- general form
@pytest.fixture(scope="module")
def relu_form():
    return einderiv.derive(einderiv.load("t.ein", TEMPLATE.format(act="relu")))


@pytest.fixture(scope="module")
def tanh_form():
    return einderiv.derive(einderiv.load("t.ein", TEMPLATE.format(act="tanh")))


def test_relu_general_form_is_the_papers_eq_9(relu_form):
    text = einderiv.derivation_text(relu_form)
    # l is a layer label here (η[v(k),z_v(l)]): the file's index l is shown as a, summed ones from a, b, …
    assert "∂f/∂v(n)_j = ∂f/∂p_a u^a_j\n" in text
    assert "∂f/∂v(k)_j = ∂f/∂z_v(k+1)_a w(k+1)^a_j   for k = 1..n-1" in text
    assert "η[z_v(k),z_v(l)]^j_s = w(k)^j_a η[v(k-1),z_v(l)]^a_s   for 1 ≤ l < k ≤ n" in text
    # the recurrence's base case and its zero, which the paper leaves to prose
    assert "η[v(k),z_v(l)]^j_s = γ[v(l)]^j_s   for k = l\n" in text
    assert "η[v(k),z_v(l)]^j_s = 0   for k < l\n" in text
    assert "= (∂f/∂p_a u^a_b η[v(n),z_v(k)]^b_j) ⊗ v(k-1)^i   (Eq. 6 form)" in text
    eq9 = text[text.index("∂²f/∂w(k)^j_i∂w(r)^s_t ="):text.index("∂²f/∂w(k)^j_i∂u")]
    assert "(∂²f/∂p_a∂p_b η[p,z_v(k)]^a_j η[p,z_v(r)]^b_s) ⊗ v(k-1)^i ⊗ v(r-1)^t" in eq9
    assert "r > k :  η[v(r-1),z_v(k)]^t_j ⊗ v(k-1)^i ⊗ ∂f/∂z_v(r)_s" in eq9
    assert "r = k :  0" in eq9
    assert "r < k :  ∂f/∂z_v(k)_j ⊗ η[v(k-1),z_v(r)]^i_s ⊗ v(r-1)^t" in eq9
    assert "Σ_{m=" not in eq9  # ReLU: no A'' terms


def test_tanh_general_form_adds_the_A2_terms_as_a_sum_over_layers(tanh_form):
    text = einderiv.derivation_text(tanh_form)
    eq9 = text[text.index("∂²f/∂w(k)^j_i∂w(r)^s_t ="):text.index("∂²f/∂w(k)^j_i∂u")]
    a2 = next(line for line in eq9.splitlines() if "Σ_{m=max(k,r)+1..n}" in line)
    assert all(s in a2 for s in ("∂f/∂v(m)", "tanh″(z_v(m)", "η[z_v(m),z_v(k)]", "η[z_v(m),z_v(r)]"))
    assert "r = k :  (tanh″(z_v(k)^j) δ^j_s ∂f/∂v(k)_j) ⊗ v(k-1)^i ⊗ v(k-1)^t" in eq9


def test_validation_fails_loudly_on_a_wrong_general_formula(relu_form):
    ww = next(b for b in relu_form.blocks if b.bases == ("w", "w") and b.text == "r > k")
    saved = list(ww.terms)
    ww.terms.append(GeneralTerm(saved[0].term))  # a spurious extra term
    try:
        with pytest.raises(FoldError, match="does not reproduce the derived block"):
            validate(relu_form, derive(relu_form.template.instantiate(4), 2), 4)
    finally:
        ww.terms[:] = saved


def test_general_form_needs_order_at_most_2():
    with pytest.raises(UsageError) as info:
        general_form(einderiv.load("t.ein", TEMPLATE.format(act="relu")), order=3)
    assert str(info.value) == ("the general form of a template goes to order 2 (gradients and Hessian "
                               "blocks); for order 3 give a concrete depth, e.g. depth={'n': 3}")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_general_form_latex_compiles(tanh_form, tmp_path):
    tex = einderiv.latex(tanh_form)
    assert r"\begin{cases}" in tex and r"\sum_{m=\max(k,r)+1}^{n}" in tex
    (tmp_path / "g.tex").write_text(tex)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "g.tex"], cwd=tmp_path, capture_output=True)
    assert r.returncode == 0, r.stdout.decode()[-2000:]


def test_cli_derive_prints_the_general_form(capsys):
    assert main(["derive", str(ROOT / "derivations" / "deep_template.ein")]) == 0
    out = capsys.readouterr().out
    assert "general form" in out and "r > k" in out


# ------------------------------------------------------------- kept examples
def _regenerate():
    import importlib.util

    spec = importlib.util.spec_from_file_location("regenerate", ROOT / "derivations" / "regenerate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow  # regenerates the templates' kept outputs: ~13 s of CPU; .ci/run runs it
def test_template_examples_are_kept_current(monkeypatch):
    monkeypatch.chdir(ROOT)
    reg = _regenerate()
    names = {p.name for p in reg.templates()}
    assert {"deep_template.ein", "deep_template_tanh.ein"} <= names
    assert not names & {p.name for p in reg.networks()}
    for path in reg.templates():
        for out, text in reg.template_outputs(path).items():
            assert out.exists() and out.read_text(encoding="utf-8") == (text if text.endswith("\n") else text + "\n"), \
                f"{out.name} is stale: run python derivations/regenerate.py"


@pytest.mark.parametrize("name", ["deep_template", "deep_template_tanh"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_template_examples_check_numerically_at_each_depth(name, n, monkeypatch):
    from einderiv.numcheck import check

    monkeypatch.chdir(ROOT)
    net = load(f"derivations/{name}.ein", dims={"n": n})
    report = check(derive(net, 2), seed=n)
    assert report.rows and report.ok, report.format()


# ------------------------------------------------- codegen for a run-time depth
def _runtime_module(name: str) -> dict:
    code, src, err = run_cli("codegen", f"derivations/{name}.ein", cwd=ROOT)
    assert code == 0, err
    ns: dict = {}
    exec(compile(src, f"<{name}>", "exec"), ns)
    return ns


def _as_lists(params: dict) -> dict:
    """{'w(1)': a, 'w(2)': b, 'u': c} -> {'w': [a, b], 'u': c}"""
    out: dict = {}
    for key in sorted(params, key=lambda k: (k.split("(")[0], int(k[k.index("(") + 1:-1]) if "(" in k else 0)):
        if "(" in key:
            out.setdefault(key.split("(")[0], []).append(params[key])
        else:
            out[key] = params[key]
    return out


@pytest.mark.parametrize("name", ["deep_template", "deep_template_tanh"])
def test_codegen_without_depth_takes_the_depth_at_run_time(name, monkeypatch, draw):
    import numpy as np

    from einderiv.emit.numpy import generate

    monkeypatch.chdir(ROOT)
    ns = _runtime_module(name)
    for n in range(1, 6):
        ref: dict = {}
        exec(generate(derive(load(f"derivations/{name}.ein", dims={"n": n}), 1, expanded=False)), ref)
        params, data = draw(ref, n, batch=4)
        lp = _as_lists(params)
        assert ns["param_shapes"](n) == {k: [np.shape(a) for a in v] if isinstance(v, list) else np.shape(v)
                                         for k, v in lp.items()}
        np.testing.assert_allclose(ns["objective"](lp, data), ref["objective"](params, data), atol=1e-12)
        for fn in ("gradient", "per_sample_gradient"):
            want = ref[fn](params, data)
            flat = {}
            for k, v in ns[fn](lp, data).items():
                flat.update({f"{k}({j + 1})": a for j, a in enumerate(v)} if isinstance(v, list) else {k: v})
            assert set(flat) == set(want)
            for k in want:
                np.testing.assert_allclose(flat[k], want[k], rtol=1e-12, atol=1e-12, err_msg=f"{fn} {k} n={n}")


def test_runtime_depth_gradient_cost_is_linear_in_n(monkeypatch):
    """Count the matrix products the gradient runs: a + b·n, the same step for every added layer."""
    import numpy as np

    monkeypatch.chdir(ROOT)
    ns = _runtime_module("deep_template")
    calls = {"n": 0}

    class Counting(np.ndarray):
        def __matmul__(self, other):
            calls["n"] += 1
            return np.asarray(self) @ np.asarray(other)

        def __rmatmul__(self, other):
            calls["n"] += 1
            return np.asarray(other) @ np.asarray(self)

    counts = []
    for n in range(1, 9):
        rng = np.random.default_rng(0)
        shapes = ns["param_shapes"](n)
        params = {k: [rng.normal(size=s).view(Counting) for s in v] if isinstance(v, list)
                  else rng.normal(size=v).view(Counting) for k, v in shapes.items()}
        data = {k: rng.normal(size=(3,) + s).view(Counting) for k, s in ns["INPUTS"].items()}
        calls["n"] = 0
        ns["gradient"](params, data)
        counts.append(calls["n"])
    steps = np.diff(counts)  # e.g. [3, 6, 9, ...]: three products per layer (forward, back, gradient)
    assert counts[0] > 0 and len(set(steps[1:])) == 1 and steps[-1] > 0, counts


def test_run_time_depth_is_a_pass_over_statements():
    """Labels near the reference depth become Sym labels of the depth, loop bounds Sym expressions."""
    from einderiv.emit.kernel import Define, Function, Loop, Range
    from einderiv.emit.template_kernel import template_kernel
    from einderiv.ir import Kind, Name, Quantity, Sym

    module, _ = template_kernel(einderiv.load(str(ROOT / "derivations" / "deep_template.ein")))
    fns = {f.name: f for f in module.items if isinstance(f, Function)}
    assert [st.over for st in fns["_forward"].body if isinstance(st, Loop)] == [Range(2, Sym("n", 1))]
    assert [st.over for st in fns["_backward"].body if isinstance(st, Loop)] == [Range(Sym("n", -1), 0, -1)]
    base_case = Quantity(Kind.ADJ, (Name("v", (Sym("n"),)),))  # adj[v(n)] = U adj[p], before the loop
    assert base_case in {st.name for st in fns["_backward"].body if isinstance(st, Define)}
    assert set(fns) == {"param_shapes", "_forward", "_backward", "objective", "gradient", "per_sample_gradient"}
