"""Data domains: ``input s^i : n positive``, ``label y^l : c probability``, ``... onehot``.

A domain tells ``check`` (and anyone reading the documents) which values the data takes, so
that a batch-norm-style ``sqrt`` of a variance given as data is drawn where it is defined.
Checked here: what is drawn, that such a network checks cleanly with the domain (and not
without it: the domain is what makes it pass), the printed declarations, a seeded generator of
small networks with random domains (every derivative against central differences), and each
misuse as a located error.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

import einderiv
from einderiv.errors import NameError_, ParseError, ShapeError
from einderiv.frontend.check import load
from einderiv.draws import data_values
from einderiv.numcheck import load as load_module
from reference import Reference, error

BATCHNORM = """# a batch-norm-style layer: data scaled by the square root of a variance given as data
dims n = 3, h = 2, c = 2
input  x^i   : n
input  s^i   : n positive
label  y^l   : c probability
weight W^j_i : h, n
weight U^l_j : c, h
function nrm(z, v) = z / sqrt(v + 1/1000)
u^i = nrm(x^i, s^i)
v^j = tanh(W^j_i u^i)
p^l = U^l_j v^j
f = softmax_cross_entropy(p, y)
"""


def test_domains_are_declared_on_the_data():
    net = load("t.ein", BATCHNORM)
    assert {str(t.name): t.domain for t in net.tensors} == {
        "x": None, "s": "positive", "y": "probability", "W": None, "U": None}


def test_drawn_values_lie_in_their_domain():
    rng = np.random.default_rng(0)
    pos = data_values(rng, (200, 3), "input", "positive")
    assert pos.min() > 0
    prob = data_values(rng, (200, 4), "label", "probability")
    np.testing.assert_allclose(prob.sum(axis=-1), 1.0, atol=1e-12)
    assert prob.min() > 0
    hot = data_values(rng, (200, 2, 5), "label", "onehot")
    assert set(np.unique(hot)) == {0.0, 1.0}
    np.testing.assert_array_equal(hot.sum(axis=-1), 1.0)
    assert len(np.unique(hot.argmax(axis=-1))) == 5  # every class is drawn
    plain = data_values(rng, (200, 3), "input", None)
    assert plain.min() < 0  # without a domain an input is N(0, 1)


def test_sqrt_of_positive_data_checks_cleanly_and_only_with_the_domain():
    report = einderiv.check(einderiv.derive(load("t.ein", BATCHNORM), 2), seed=0)
    assert not report.notes, report.notes
    assert report.ok, report.format()
    # the same network with the variance undeclared: N(0, 1) data, sqrt of negatives, NaN
    bare = BATCHNORM.replace(" : n positive", " : n")
    with np.errstate(invalid="ignore"):
        report = einderiv.check(einderiv.derive(load("t.ein", bare), 2), seed=0)
    assert not report.ok


def test_domain_network_matches_the_independent_reference():
    ref = Reference(lambda: load("t.ein", BATCHNORM))
    params, data = ref.draw(np.random.default_rng(3), 4)
    assert data["s"].min() > 0 and np.allclose(data["y"].sum(axis=-1), 1.0)
    mod = load_module(einderiv.codegen(einderiv.derive(load("t.ein", BATCHNORM), 1)))
    got, want = mod["per_sample_gradient"](params, data), ref.gradient(params, data)
    for name in params:
        assert error(got[name], want[name]) < 1e-6, name


def test_documents_show_the_domain():
    d = einderiv.derive(load("t.ein", BATCHNORM), 1)
    text = einderiv.derivation_text(d)
    assert "  input  s^i : n positive\n" in text and "  label  y^l : c probability\n" in text
    tex = einderiv.latex(d)
    assert "Input vector for a single sample, positive" in tex
    assert "Label vector for a single sample, sums to 1 along its last axis" in tex


def random_domain_network(seed: int) -> str:
    """A small network whose data has random domains, each used where it matters: a positive
    input under log or sqrt, a probability input under log, a one-hot or probability label of
    softmax cross-entropy (or a plain label of squared error), as .ein text."""
    rng = random.Random(3000 + seed)
    n, h, c = rng.randint(1, 3), rng.randint(1, 3), rng.randint(2, 3)
    use = rng.choice(("log", "sqrt", "probability"))
    label = rng.choice(("onehot", "probability", "none"))
    act = rng.choice(("tanh", "sigmoid", "softplus"))
    lines = [f"# domains seed {seed}: {use} {label} {act}", f"dims n = {n}, h = {h}, c = {c}",
             "input  x^i : n", "weight W^j_i : h, n", "weight U^l_j : c, h"]
    if use == "probability":
        lines += ["input  s^i : n probability", "u^i = x^i + log(s^i)"]
    else:
        lines += ["input  s^i : n positive", f"u^i = x^i {'* ' if use == 'log' else ''}{use}(s^i)"]
    lines += [f"v^j = {act}(W^j_i u^i)", "p^l = U^l_j v^j"]
    if label == "none":
        lines += ["label  y^l : c", "f = squared_error(p, y)"]
    else:
        lines += [f"label  y^l : c {label}", "f = softmax_cross_entropy(p, y)"]
    return "\n".join(lines) + "\n"


N_DOMAIN = 12


def test_generator_covers_the_domains():
    heads = " ".join(random_domain_network(s).split("\n", 1)[0] for s in range(N_DOMAIN))
    for word in ("log", "sqrt", "probability", "onehot", "none"):
        assert word in heads, word


@pytest.mark.parametrize("seed", range(N_DOMAIN))
def test_random_domain_network(seed):
    text = random_domain_network(seed)
    report = einderiv.check(einderiv.derive(load(f"d{seed}.ein", text), 2), seed=seed, batch=2 + seed % 2)
    assert not report.notes, f"{text}\n{report.notes}"
    assert report.ok, f"{text}\n{report.format()}"


HEAD = "dims n = 3, c = 2\ninput x^i : n\n"

#: (snippet after HEAD, exception class, the message with its location)
BAD = [
    ("weight s^i : n positive\nf = s^i x^i", NameError_,
     "t.ein:3:16: 'positive' declares the values of data, but s is a weight; a domain follows the sizes of an "
     "input or a label (input s^i : n positive)"),
    ("input s probability\nweight w^i : n\nf = s w^i x^i", ShapeError,
     "t.ein:3:9: 'probability' runs along the last axis of s, which has none; declare a vector "
     "(input s^l : c probability) or use 'positive'"),
    ("input s : positive\nweight w^i : n\nf = s w^i x^i", NameError_,
     "t.ein:3:11: 'positive' is a domain, not a dimension: write it after the sizes (input s^i : n positive), "
     "or with no ':' for a scalar (input s positive)"),
    ("input s^i : onehot\nweight w^i : n\nf = s^i w^i", NameError_,
     "t.ein:3:13: 'onehot' is a domain, not a dimension: write it after the sizes (input s^i : n onehot)"),
    ("input s^i : n negative\nweight w^i : n\nf = s^i w^i", ParseError,
     "t.ein:3:15: syntax error: unexpected 'negative'; expected one of: ',', 'for', a domain (positive, "
     "probability, onehot), end of line"),
]


@pytest.mark.parametrize("snippet,cls,message", BAD)
def test_misuse_is_a_located_error(snippet, cls, message):
    with pytest.raises(cls) as info:
        load("t.ein", HEAD + snippet + "\n")
    assert str(info.value).splitlines()[0] == message


def test_domain_words_stay_free_as_names():
    """The words are keywords only after a declaration's sizes: a dimension or tensor may still
    be called so."""
    net = load("t.ein", "dims positive = 2\ninput onehot^i : positive\nweight w^i : positive\n"
                        "f = onehot^i w^i\n")
    assert [str(t.name) for t in net.tensors] == ["onehot", "w"]
