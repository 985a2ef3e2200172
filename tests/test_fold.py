"""Folding unrolled recurrences: families written once, gradients as sums over t."""
from __future__ import annotations

import sys
import pathlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from netbuild import rnn  # noqa: E402

from einderiv.calculus.derive import derive
from einderiv.analysis.factor import as_terms
from einderiv.analysis.fold import abstract, fold_definitions, fold_terms, label_range
from einderiv.ir import Kind, Name, Quantity, Ref, Sym
from einderiv.numcheck import check


def test_names_carry_their_labels():
    assert str(Name("h", (3,))) == "h(3)" and Name("h", (3,)).ints == (3,)
    assert str(Name("h", (12,), arg=1)) == "z_h(12)" and Name("h", (12,), arg=1).of == Name("h", (12,))
    assert str(Name("W1")) == "W1" and Name("W1").ints == ()


def test_abstract_writes_names_relative_to_a_label():
    e = Ref(Quantity(Kind.ADJ, (Name("h", (4,), arg=1),)), ())
    assert abstract(e, 3).name == Quantity(Kind.ADJ, (Name("h", (Sym("t", 1),), arg=1),))
    assert str(abstract(e, 3).name) == "adj[z_h(t+1)]"
    assert abstract(Ref(Name("h", (2,)), ()), 3).name == Name("h", (Sym("t", -1),))
    assert abstract(Ref("W", ()), 3).name == Name("W")


def test_label_range():
    assert label_range([3, 1, 2]) == "1..3"
    assert label_range([1, 3]) == "1, 3"


@pytest.mark.parametrize("T", [2, 4, 6])
def test_adjoint_recurrence_is_one_family_plus_base_case(T):
    d = derive(rnn(T, 2, 3, 2), 1)
    adj = [(q.name, q.indices, q.expr) for q in d.quantities if q.name.kind is Kind.ADJ]
    fams = {(str(f.name), f.labels) for f in fold_definitions(adj)}
    assert ("adj[h(t)]", tuple(range(1, T))) in fams  # δ[h(t)] = δ[z_h(t+1)] W
    assert ("adj[h(t)]", (T,)) in fams  # base case from the output layer
    assert ("adj[z_h(t)]", tuple(range(1, T + 1))) in fams
    assert len(fold_definitions(adj)) == 4  # the two above, δ[z_h(t)], ∂f/∂p


@pytest.mark.parametrize("all_steps", [False, True])
def test_shared_weight_gradient_is_a_sum_over_t_of_one_outer_product(all_steps):
    T = 4
    d = derive(rnn(T, 2, 3, 2, all_steps=all_steps), 1)
    g = d.block("W")
    fams = fold_terms([t.expr() for t in as_terms(g.expr, g.indices)], g.indices)
    assert len(fams) == 1 and fams[0].labels == tuple(range(1, T + 1))
    names = [str(f.name) for f in fams[0].term.factors]
    assert names == ["adj[z_h(t)]", "h(t-1)"]
    if all_steps:  # the output weight: one term per step as well
        u = d.block("U")
        ufams = fold_terms([t.expr() for t in as_terms(u.expr, u.indices)], u.indices)
        assert len(ufams) == 1 and ufams[0].labels == tuple(range(1, T + 1))


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu"])
def test_unrolled_rnn_checks_numerically(act):
    report = check(derive(rnn(3, 2, 3, 2, act=act, all_steps=True), 2), seed=4)
    assert report.rows and report.ok, report.format()


# ---------------------------------------------------------------- the document model
def test_document_writes_a_recurrence_once_with_its_base_case():
    from einderiv.analysis.document import IntermediatesSection, document

    T = 4
    doc = document(derive(rnn(T, 2, 3, 2), 1))
    (inter,) = [s for s in doc.sections if isinstance(s, IntermediatesSection)]
    shown = [(str(d.name), d.labels, d.base_of) for d in inter.defs]
    rec = ("adj[h(t)]", tuple(range(1, T)), None)
    base = (f"adj[h({T})]", (), Quantity(Kind.ADJ, (Name("h", (Sym("t"),)),)))
    assert rec in shown and base in shown
    assert shown.index(base) < shown.index(rec)  # dependency order: the base case comes first
    after = [(str(d.name), d.labels, d.base_of) for d in inter.defs.recurrences_first()]
    assert after.index(base) == after.index(rec) + 1  # as a paper writes it
    assert doc.horizon is None  # no dimension is sized T here: ranges are written with numbers


def test_document_folds_a_shared_weight_gradient_over_steps():
    from einderiv.analysis.document import BlocksSection, document

    doc = document(derive(rnn(4, 2, 3, 2), 1))
    (grads,) = [s for s in doc.sections if isinstance(s, BlocksSection)]
    w = next(b for b in grads.blocks if b.block.wrt == (Name("W"),))
    assert [str(p.name) for p in w.params] == ["W"]
    (term,) = w.terms()
    assert term.labels == (1, 2, 3, 4) and term.symbol == "t"
    assert [str(f.name) for g in term.term.groups for f in g.factors] == ["adj[z_h(t)]", "h(t-1)"]
    (tau,) = w.terms("τ")  # a printer whose axes use the letter t names the step τ
    assert [str(f.name) for g in tau.term.groups for f in g.factors] == ["adj[z_h(τ)]", "h(τ-1)"]
