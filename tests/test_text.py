"""Text rendering: printer units, the paper MLP's derivation, determinism."""
import re
import sys
from pathlib import Path

import pytest
import sympy

sys.path.insert(0, str(Path(__file__).parent))
from netbuild import mlp  # noqa: E402

from einderiv.calculus.derive import derive  # noqa: E402
from einderiv.analysis.roles import Context  # noqa: E402
from einderiv.emit.letters import IndexNames  # noqa: E402
from einderiv.emit.text import TextPrinter, render  # noqa: E402
from einderiv.ir import Apply, Const, Delta, Fn, Index, Kind, Name, Prod, Quantity, Ref, Softmax  # noqa: E402

Z_V1 = Name("v1", arg=1)  # the pre-activation z_v1 of v1

ROOT = Path(__file__).parent.parent
n0, n1, c = sympy.symbols("n0 n1 c", positive=True, integer=True)
j, i, l = Index("j", n1), Index("i", n0), Index("l", c)


def paper_net():
    try:
        from einderiv.frontend.check import load
    except ImportError:  # parser not there yet: the same network, built directly
        net = mlp([4, 5, 5, 3], ["relu", "relu"])
        return net, "W3", "W3^l_m", "∂f/∂W3^j_i = ∂f/∂p_j ⊗ v2^i"
    return load(str(ROOT / "derivations" / "paper_mlp.ein")), "U", "U^l_m", "∂f/∂U^l_j = ∂f/∂p_l ⊗ v2^j"


@pytest.fixture(scope="module")
def paper():
    net, out, out_ref, out_grad = paper_net()
    return render(derive(net, 2)), out, out_ref, out_grad


@pytest.fixture(scope="module")
def tanh_text():
    return render(derive(mlp([4, 5, 5, 3], ["tanh", "tanh"]), 2))


def block(text: str, lhs: str) -> str:
    """The lines of one block, from its left-hand side to the next block."""
    start = text.index(lhs)
    end = text.find("\n  ∂", start + 1)
    return text[start:end]


# ---------------------------------------------------------------- printer units
def test_ref_up_down():
    assert TextPrinter().doprint(Ref("W1", (j, i))) == "W1^j_i"
    assert TextPrinter().doprint(Ref("x", (i,))) == "x^i"


def test_delta_and_hadamard():
    s = Index("_j_7", n1)
    names = IndexNames([j, s])
    p = TextPrinter({"names": names})
    assert p.doprint(Delta(j, s)) == "δ^j_s"
    had = Prod((Apply(Fn("relu", (1,)), (Ref(Z_V1, (j,)),)), Ref(Quantity(Kind.ADJ, (Name("v1"),)), (j,))), (j,))
    assert p.doprint(had) == "relu′(z_v1^j) ∂f/∂v1_j"  # the adjoint is not written δ: δ is Kronecker's


def test_machine_indices_get_letters():
    a, b = Index("_c0", c), Index("_c1", n1)
    ctx = Context(objective_args=(Name("p"),), arity={Name("p"): 1, Name("v2"): 1, Z_V1: 1})
    e = Prod((Ref("W3", (a, b)), Ref(Quantity(Kind.ADJ, (Name("p"),)), (a,)),
              Ref(Quantity(Kind.JAC, (Name("v2"), Z_V1)), (b, j))), (j,))
    p = TextPrinter({"names": IndexNames([j]), "context": ctx})
    assert p.doprint(e) == "∂f/∂p_l W3^l_m η[v2,z_v1]^m_j"


def test_coefficients_and_softmax():
    ctx = Context(softmax={Name("p"): "hat"})
    p = TextPrinter({"context": ctx})
    assert p.doprint(Softmax(Ref("p", (l,)), l)) == "p̂^l"
    assert TextPrinter().doprint(Softmax(Ref("p", (l,)), l)) == "softmax_l(p^l)"
    assert p.doprint(Prod((Const(sympy.Integer(-1)), Ref("y", (l,))), (l,))) == "−y^l"
    assert p.doprint(Prod((Const(sympy.Rational(1, 2)), Ref("y", (l,))), (l,))) == "1/2 y^l"
    # an index summed over a single factor is written out
    assert p.doprint(Prod((Ref("y", (l,)),), ())) == "Σ_l y^l"


def test_unknown_setting_rejected():
    with pytest.raises(TypeError):
        TextPrinter({"colour": True})


# ---------------------------------------------------------------- paper network
def test_network_and_objective_sections(paper):
    text = paper[0]
    assert "  z_v1^j = W1^j_i x^i   (pre-activation)\n" in text
    assert "  v1^j = relu(z_v1^j)\n" in text
    assert "  p̂^l = softmax_l(p^l)\n" in text
    assert "  ∂f/∂p_l = p̂^l − y^l\n" in text
    assert "\n  ∂²f/∂p_l∂p_s = δ^l_s p̂^l − p̂^l p̂^s\n" in text  # diag(p̂) − p̂ p̂ᵀ, with the paper's s
    assert "  relu′(z) = θ(z)\n  relu″(z) = 0\n" in text


def test_intermediates_defined_once_in_order(paper):
    text, out = paper[0], paper[1]
    lines = text[text.index("Shared intermediates"):text.index("First derivatives")].splitlines()[1:]
    defs = [ln.split(" = ")[0].strip() for ln in lines if " = " in ln]
    assert len(defs) == len(set(defs))
    assert f"  ∂f/∂v2_j = ∂f/∂p_l {out}^l_j" in lines
    assert "  ∂f/∂z_v2_j = relu′(z_v2^j) ∂f/∂v2_j" in lines
    assert "  ∂f/∂v1_j = ∂f/∂z_v2_l W2^l_j" in lines
    assert "  γ[v1]^j_s = relu′(z_v1^j) δ^j_s" in lines  # the paper's Eq. 1
    assert defs.index("∂f/∂v1_j") > defs.index("∂f/∂z_v2_j") > defs.index("∂f/∂v2_j")


def test_gradients_are_outer_products(paper):
    text, out, out_ref, out_grad = paper
    assert "  ∂f/∂W1^j_i = ∂f/∂z_v1_j ⊗ x^i\n" in text
    assert f"= (∂f/∂p_l {out_ref} η[v2,z_v1]^m_j) ⊗ x^i   (Eq. 6 form)" in text
    assert "  ∂f/∂W2^j_i = ∂f/∂z_v2_j ⊗ v1^i\n" in text
    assert f"= (∂f/∂p_l {out_ref} γ[v2]^m_j) ⊗ v1^i   (Eq. 6 form)" in text
    assert f"  {out_grad}\n" in text  # Eq. 5


def test_eq9_cross_terms(paper):
    text = paper[0]
    w12 = block(text, "∂²f/∂W1^j_i∂W2^s_t =")
    assert "      γ[v1]^t_j ⊗ x^i ⊗ ∂f/∂z_v2_s\n" in w12  # r > k: η^{(r-1,k)} cross term
    assert "    + (∂²f/∂p_l∂p_m η[p,z_v1]^l_j η[p,z_v2]^m_s) ⊗ x^i ⊗ v1^t" in w12  # Gauss-Newton
    w21 = block(text, "∂²f/∂W2^j_i∂W1^s_t =")
    assert "      ∂f/∂z_v2_j ⊗ γ[v1]^i_s ⊗ x^t\n" in w21  # r < k
    w11 = block(text, "∂²f/∂W1^j_i∂W1^s_t =")
    assert w11.count("⊗") == 2 and "γ" not in w11  # r = k: no cross term for ReLU


def test_relu_has_no_second_derivative_terms(paper, tanh_text):
    blocks = paper[0][paper[0].index("Second derivatives"):]
    assert "relu″(" not in blocks
    tblocks = tanh_text[tanh_text.index("Second derivatives"):]
    assert "(tanh″(z_v1^j) δ^j_s ∂f/∂v1_j) ⊗ x^i ⊗ x^t" in tblocks
    assert "tanh′(z) = 1 − tanh(z)²" in tanh_text


def test_structure_table_at_the_end(paper):
    tail = paper[0][paper[0].index("Structure"):]
    assert re.search(r"\n  W1 +1  one outer product +9 +20\n", tail)
    assert re.search(r"\n  W1,W2 +1  one outer product +64 +500\n", tail)
    forms = paper[0][paper[0].index("Outer-product forms"):paper[0].index("Structure")]
    assert ("  ∂²f/∂W1^j_i∂W2^s_t = (∂f/∂z_v2_s γ[v1]^t_j + ∂²f/∂p_l∂p_m η[p,z_v1]^l_j η[p,z_v2]^m_s v1^t) ⊗ x^i"
            "   (K = 1)\n") in forms


def test_no_machine_names_leak(paper, tanh_text):
    for text in (paper[0], tanh_text):
        assert not re.search(r"_c\d|_[a-z]_\d", text)


def test_deterministic():
    net = mlp([4, 5, 5, 3], ["tanh", "relu"])
    a = render(derive(net, 2))
    b = render(derive(net, 2))  # fresh machine indices, same bytes
    assert a == b
    d = derive(net, 2)
    assert render(d) == render(d)


def test_output_does_not_depend_on_earlier_derivations():
    """Generated index names follow a process-wide counter; the text must not."""
    net = mlp([3, 4, 2], ["tanh"], bias=True)
    first = render(derive(net, 3))
    derive(mlp([2, 3, 2], ["relu"], bias=True), 2)  # advances the counter
    assert render(derive(net, 3)) == first


# ---------------------------------------------------------------- readability
def derivation_text(path: str, **kw) -> str:
    from einderiv.frontend.check import load
    return render(derive(load(str(ROOT / "derivations" / path), **kw), 2))


@pytest.fixture(scope="module")
def attention_text():
    return derivation_text("attention.ein")


def test_node_definition_inside_a_derivative_prints_the_node_name(attention_text):
    # a^{qk} = softmax_k(s^{qk}) is named a wherever a derivative repeats it ...
    assert "  ∂f/∂s_{qk} = a^{qk} ∂f/∂a_{qk} − ∂f/∂a_{ql} a^{ql} a^{qk}\n" in attention_text
    assert "softmax_k(" not in attention_text[attention_text.index("Shared intermediates"):]
    # ... and its own definition, in the Network section, reads as written
    assert "  a^{qk} = softmax_k(s^{qk})\n" in attention_text  # placed as the file writes it


def test_named_node_unit():
    q, k, u, w = (Index(x, c) for x in "qkuw")
    sm = Softmax(Ref("s", (q, k)), k)
    from einderiv.ir import shape_key
    ctx = Context(defined={shape_key(sm): ((sm, "a", (q, k)),)})
    p = TextPrinter({"names": IndexNames([u, w]), "context": ctx})
    assert p.doprint(Prod((Softmax(Ref("s", (u, w)), w), Ref("x", (w,))), (u, w))) == "a^u_w x^w"
    # softmax over the other index is not a's definition
    assert p.doprint(Softmax(Ref("s", (u, w)), u)) == "softmax_u(s^u_w)"


def test_constant_factors_fold_into_one_coefficient(attention_text):
    d, t = sympy.symbols("d t", positive=True)
    q, dd = Index("q", t), Index("d", d)
    mean = Prod((Const(1 / t), Ref("o", (q, dd))), (dd,))
    e = Prod((Const(1 / sympy.sqrt(d)), Ref("U", (l, dd)), mean), (l,))
    assert TextPrinter().doprint(e) == "1/(√d t) U^l_d Σ_q o^q_d"
    # d is a size of attention.ein: its index d is shown as e
    assert "  p^l = 1/t U^l_e Σ_q o^q_e\n" in attention_text  # was U^l_d 1/t Σ_q o^q_d


def test_broadcast_ones_in_a_sum_print_as_one():
    text = derivation_text("gru_cell.ein")
    assert "  h1^j = zg^j h0^j + (1 − zg^j) hc^j\n" in text  # was (−zg^j + 𝟙^j) hc^j
    ln = derivation_text("layernorm_mlp.ein")
    # a factor of a product keeps its ones vector
    assert "  η[m,z]_j = 1/h 𝟙^j\n" in ln
    assert "  ∂f/∂z_j = ∂₁lnorm(z^j, m, q) ∂f/∂u_j + 2/h z^j ∂f/∂q + 1/h ∂f/∂m 𝟙^j\n" in ln


def test_unrolled_template_declares_each_shape_once():
    # --depth n=3: w(1) is h × n_in, w(2), w(3) are h × h; no member borrows another's shape
    text = derivation_text("deep_template.ein", dims={"n": 3})
    assert ("  weight w(1)^j_i : h × n_in\n"
            "  weight w(t)^j_i : h × h   for t = 2, 3\n"
            "  weight u^l_j : c × h\n") in text


# ---------------------------------------------------------------- the document model
MODEL_MODULES = ("einderiv.analysis.document", "einderiv.analysis.general_document",
                 "einderiv.analysis.closed_forms")


def _model_classes(obj, seen=None) -> set[type]:
    """Every document-model class reachable from a document (sections, items, nested items)."""
    import dataclasses
    seen = set() if seen is None else seen
    if dataclasses.is_dataclass(obj) and type(obj).__module__ in MODEL_MODULES:
        seen.add(type(obj))
        for f in dataclasses.fields(obj):
            _model_classes(getattr(obj, f.name), seen)
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            _model_classes(x, seen)
    return seen


def test_each_printer_prints_every_kind_of_section_and_item():
    """The printers only print the model: one method per section and item kind, in both."""
    from einderiv.analysis.document import document
    from einderiv.analysis.general_document import general_document
    from einderiv.analysis.template import general_form
    from einderiv.frontend.model import load as load_model
    from einderiv.emit.latex import LatexDocumentPrinter
    from einderiv.emit.text import TextDocumentPrinter
    from einderiv.frontend.check import load

    rnn = document(derive(load(str(ROOT / "derivations" / "rnn.ein"), dims={"T": 4}), 2))
    tpl = general_document(general_form(load_model(str(ROOT / "derivations" / "deep_template_tanh.ein"))))
    classes = _model_classes(rnn) | _model_classes(tpl)
    parts = {"Document", "GeneralDocument", "Title", "NetworkSection", "ObjectiveSection", "FunctionsSection",
             "IntermediatesSection", "BlocksSection", "StructureSection", "GeneralTitle", "TemplateNetwork",
             "GeneralIntermediates", "GeneralBlocks", "CaseGroup", "CaseSplit", "GeneralCase", "Defined",
             "Definitions", "Declared", "ClosedForm", "SoftmaxDef", "BlockItem", "OuterFormsSection", "OuterItem"}
    assert parts <= {c.__name__ for c in classes}
    for printer in (TextDocumentPrinter, LatexDocumentPrinter):
        missing = [c for c in sorted(parts) if not hasattr(printer, f"_print_{c}")]
        assert not missing, f"{printer.__name__} cannot print {missing}"


# ---------------------------------------------------------------- no Python, no SymPy, one δ
KEPT_TEXT = sorted((ROOT / "derivations").glob("*.txt"))


@pytest.mark.parametrize("path", KEPT_TEXT, ids=lambda p: p.stem)
def test_text_reads_as_mathematics(path):
    """No ``**`` or ``*``, no ``Heaviside``, no ASCII minus in a formula; δ only as Kronecker's
    (δ^j_s), never an adjoint's name; the logistic function as σ."""
    text = path.read_text(encoding="utf-8")
    assert "*" not in text and "Heaviside" not in text and "sqrt(" not in text
    assert "δ[" not in text and "exp(−z)/(1 + exp(−z))²" not in text
    for line in text.splitlines():
        if " = " in line and "for " not in line and "dims" not in line and "read off" not in line:
            formula = line.split("   (")[0]
            # (a continuation line of a sum has no left side; "(K = 3)" after it is not a formula)
            assert not re.search(r"(?<![A-Za-z(0-9,])-(?![0-9])|\s-\s", formula.split(" = ", 1)[-1]), line


def test_explicit_parameter_term_has_its_own_symbol():
    """swish_bce's penalty 0.001 U U: its own ∂²f/∂U∂U is written at fixed p, apart from the block."""
    text = (ROOT / "derivations" / "swish_bce.txt").read_text(encoding="utf-8")
    assert "  (∂²f/∂U_l^j∂U_s^t)|ₚ = 1/500 δ^l_s δ^j_t\n" in text
    assert "  ∂²f/∂U^l_j∂U^s_t =\n        (∂²f/∂U_l^j∂U_s^t)|ₚ\n" in text


def test_third_derivative_of_the_objective_stays_named():
    text = (ROOT / "derivations" / "paper_mlp_order3.txt").read_text(encoding="utf-8")
    assert "  ∂³f/∂p_l∂p_s∂p_t = δ^l_s δ^l_t p̂^l − " in text
    blocks = text[text.index("Order-3 derivatives"):text.index("Outer-product forms")]
    assert "∂³f/∂p_l∂p_m∂p_q η[p,z_v1]^l_j η[p,z_v1]^m_s η[p,z_v1]^q_r" in blocks
    assert "p̂" not in blocks  # the softmax's derivatives are not spelled out in the blocks
    assert blocks.count("  ∂³f/∂") == 10  # one per set of parameters; permutations named, not rewritten
    assert "(∂³f/∂W1∂W2∂W1, ∂³f/∂W2∂W1∂W1: the same block, its axes permuted)" in blocks
