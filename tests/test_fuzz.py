"""Fuzzing in the test suite (issue 15, point 5): at least 2,000 inputs in every run.

Each input is loaded (parsed and checked) and, when it loads, derived to order 1, in-process
(tests/fuzzing.py).  Every input must end either in a derivation or in one
``t.ein:line:col: …`` line — 0 tracebacks, 0 internal errors — and within 10 s.  The inputs
are seeded: the same in every run, so a failure reproduces (the failing text is printed).
A longer run: ``python benchmarks/fuzz.py`` (docs/fuzzing.md).
"""
from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, Phase, given, settings

import einderiv
import fuzzing as F
from einderiv.errors import EinderivError
from einderiv.ir.names import label_range

#: inputs of each kind in the default run (docs/fuzzing.md)
GRAMMAR_COUNT = 1200
MUTANT_COUNT = 700
HYPOTHESIS_COUNT = 100


def _report(tally: F.Tally) -> str:
    shown = "\n".join(f"--- {why}\n{text[:2000]}" for why, text in tally.failures[:5])
    return f"{tally.summary()}\n{shown}"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow in SymPy's numbers of hostile constants
        yield


def test_drawn_networks_are_derived_or_refused_with_one_line():
    tally = F.Tally()
    for source in F.grammar_inputs(GRAMMAR_COUNT, seed=15):
        F.answer(source, tally)
    assert tally.total == GRAMMAR_COUNT
    assert not tally.failures, _report(tally)
    assert tally.ok > GRAMMAR_COUNT // 5, tally.summary()  # the fuzzer reaches the derivation, not only the parser
    assert tally.slowest < F.TIME_LIMIT


def test_mutated_examples_are_derived_or_refused_with_one_line(tmp_path):
    tally = F.Tally()
    for source in F.mutants(MUTANT_COUNT, seed=15):
        F.answer(source, tally, tmp_path / "t.ein")
    assert tally.total == MUTANT_COUNT
    assert not tally.failures, _report(tally)
    assert tally.ok > MUTANT_COUNT // 10, tally.summary()
    assert tally.slowest < F.TIME_LIMIT


_HYPOTHESIS = F.Tally()


@settings(max_examples=HYPOTHESIS_COUNT, derandomize=True, database=None, deadline=None,
          phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck))
@given(F.networks())
def test_grammar_strategies(source):
    """The Hypothesis strategies over the grammar: a failure shrinks to a small network."""
    before = len(_HYPOTHESIS.failures)
    F.answer(source, _HYPOTHESIS)
    assert len(_HYPOTHESIS.failures) == before, _HYPOTHESIS.failures[-1][0]


def test_the_default_run_has_at_least_2000_inputs():
    assert GRAMMAR_COUNT + MUTANT_COUNT + HYPOTHESIS_COUNT >= 2000


# ------------------------------------------------------------ what the fuzzer found, pinned
def test_labels_far_apart_are_listed_not_spanned():
    """A mutant wrote r(99999999) beside r(1..3): the 'label out of range' message built a list
    of 10^8 labels to test for a range (27 s)."""
    assert label_range([1, 2, 3, 99999999]) == "1, 2, 3, 99999999"
    assert label_range([3, 1, 2]) == "1..3"
    rnn = (F.ROOT / "derivations" / "rnn_all_steps.ein").read_text().replace("r(0)^m = 0", "r(99999999)^m = 0")
    tally = F.Tally()
    assert F.answer(rnn, tally) == "refused", _report(tally)
    assert tally.slowest < 2.0
    with pytest.raises(EinderivError, match=r"^t.ein:18:21: label out of range: r\(0\) is not a member of r, whose "
                       r"labels are 1, 2, 3, 99999999$"):
        einderiv.load("t.ein", text=rnn)


def test_a_control_character_before_a_comment_is_a_syntax_error():
    """A flipped byte put \\x1c (a 'file separator', which str.lstrip() strips) before a comment:
    the syntax-error message looked for the first non-blank character of '\\x1c   ' with
    str.lstrip() and found none (AttributeError, exit 3).  Its line is counted as the grammar
    counts lines (str.splitlines() would split at \\x1c too)."""
    text = (F.ROOT / "derivations" / "deep_template.ein").read_text()
    text = text.replace("weight w^{(1),j}_i : h, n_in ", "weight w^{(1),j}_i : h, n_in\x1c", 1)
    with pytest.raises(EinderivError) as info:
        einderiv.load("t.ein", text=text)
    lines = str(info.value).split("\n")
    assert lines[0] == (r"t.ein:8:29: syntax error: unexpected '\x1c'; expected one of: ',', 'for', "
                        "a domain (positive, probability, onehot), end of line")
    assert lines[1].startswith("weight w(1)^{j} _i : h, n_in\x1c")
    assert lines[2] == " " * 28 + "^"
