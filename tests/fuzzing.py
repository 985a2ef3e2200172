"""A seeded, grammar-aware fuzzer of network files (issue 15, point 5): what tests/test_fuzz.py
runs in every test run and benchmarks/fuzz.py runs longer (docs/fuzzing.md).

Two sources of input:

* :func:`networks` — Hypothesis strategies over the grammar's constructs: dims, declarations
  with index groups, user functions whose bodies mix numbers (hostile ones included), powers
  and SymPy functions, definitions built from typed pieces (vector and scalar terms, so
  that many inputs are valid networks and reach the derivation), reductions, families with
  ranges, and objectives; plus untyped expressions, which mostly exercise the checker.
* :func:`mutants` — byte and token mutations of the kept examples (``derivations/*.ein``,
  ``tests/networks/*.ein``): spans deleted, lines duplicated or swapped, tokens from a
  vocabulary of constructs and hostile values inserted or substituted, bytes flipped.

:func:`answer` runs one input in-process as the command line would — load (parse and
check), then derive order 1 for what loads — and classifies the outcome: ``ok``, ``refused``
(an :class:`~einderiv.EinderivError`, whose first line must be ``t.ein:line:col: …``), or a
failure (any other exception, an error message that is not one located line, or over
:data:`TIME_LIMIT` seconds).
"""
from __future__ import annotations

import random
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

import einderiv
from einderiv.errors import EinderivError

ROOT = Path(__file__).resolve().parents[1]
#: seconds one input may take
TIME_LIMIT = 10.0
#: the kept examples the mutations start from (the general forms of gru.ein and rnn.ein take
#: seconds each: the long run only)
SEEDS = sorted(p for p in list((ROOT / "derivations").glob("*.ein")) + list((ROOT / "tests" / "networks").glob("*.ein")))
QUICK_SEEDS = [p for p in SEEDS if p.name not in ("gru.ein", "rnn.ein")]
#: a refusal's first line
LOCATED = re.compile(r"^t\.ein:\d+:\d+: \S")


# ------------------------------------------------------------------ running one input
class _Slow(BaseException):
    pass


def _alarm(signum, frame):
    raise _Slow()


@dataclass
class Tally:
    """Counts of outcomes, and the inputs that failed (with why)."""

    ok: int = 0
    refused: int = 0
    failures: list = field(default_factory=list)
    slowest: float = 0.0

    @property
    def total(self) -> int:
        return self.ok + self.refused + len(self.failures)

    def summary(self) -> str:
        return (f"{self.total} inputs: {self.ok} derived, {self.refused} refused with one line, "
                f"{len(self.failures)} failures; slowest {self.slowest:.2f} s")


def answer(source, tally: Tally, path: Path | None = None) -> str:
    """Run one input (text, or bytes written to ``path`` and read from there); record it in
    ``tally``; return its outcome."""
    old = signal.signal(signal.SIGALRM, _alarm)
    # repeating: an alarm that lands in a callback Python ignores exceptions from (a weakref's,
    # during garbage collection) is raised again a second later
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT, 1.0)
    start = time.perf_counter()
    outcome, why = "ok", ""
    try:
        if isinstance(source, bytes):
            path.write_bytes(source)
            model = einderiv.load(str(path))
        else:
            model = einderiv.load("t.ein", text=source)
        einderiv.derive(model, 1)
    except EinderivError as err:
        outcome = "refused"
        first = str(err).splitlines()[0] if str(err) else ""
        if isinstance(source, bytes):
            first = first.replace(str(path), "t.ein", 1)
        if not LOCATED.match(first):
            outcome, why = "failure", f"message not one located line: {str(err)[:300]!r}"
    except _Slow:
        outcome, why = "failure", f"over {TIME_LIMIT} s"
    except BaseException as exc:  # noqa: BLE001 - every other exception is what the fuzzer looks for
        if isinstance(exc, KeyboardInterrupt):
            raise
        outcome, why = "failure", f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - start
    tally.slowest = max(tally.slowest, seconds)
    if outcome == "ok":
        tally.ok += 1
    elif outcome == "refused":
        tally.refused += 1
    else:
        tally.failures.append((why, source if isinstance(source, str) else source.decode("utf-8", "replace")))
    return outcome


# ------------------------------------------------------------------ grammar strategies
HOSTILE_NUMBERS = ["0", "1", "0.5", "2", "1e-3", "1e300", "1e309", "1e-400", "1e100000000", "9**9**9",
                   "10**12", "0.0", "00", "1.", ".5", "3e+2", "123456789012345678901234567890"]
BODY_OPERATORS = ["+", "-", "*", "/", "^", "**", "//"]
BODY_FUNCTIONS = ["exp", "log", "tanh", "sigmoid", "erf", "Abs", "Max", "sqrt", "sin", "cos", "factorial",
                  "gamma", "primepi", "floor", "sign", "softplus", "relu", "square", "atan", "cbrt"]
NET_FUNCTIONS = ["relu", "tanh", "sigmoid", "softplus", "exp", "log", "square", "identity", "sqrt"]
OBJECTIVES = ["squared_error(p, y)", "softmax_cross_entropy(p, y)", "binary_cross_entropy(p, y)",
              "sum_j(p^j p^j)", "sum_j(p^j) / n"]


def _body() -> st.SearchStrategy[str]:
    leaf = st.one_of(st.just("z"), st.just("w"), st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(["pi", "2j", "j"]))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(BODY_OPERATORS), inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(st.sampled_from(BODY_FUNCTIONS), inner).map(lambda t: f"{t[0]}({t[1]})"),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"-{e}"),
    ), max_leaves=12)


def _vector() -> st.SearchStrategy[str]:
    """An expression with the one free index j (every size is n)."""
    leaf = st.sampled_from(["W^j_i x^i", "b^j", "x^j", "V^j_k x^k", "(x^j - y^j)"])
    scalar = st.sampled_from(["s", "2", "0.5", "x^i x^i", "sum_i(x^i)", "mean_i(x^i)", "n", "g(s)", "1e-3"])
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" + ", " - "]), inner).map("".join),
        st.tuples(inner, scalar).map(lambda t: f"{t[0]} {t[1]}"),
        st.tuples(scalar, inner).map(lambda t: f"{t[0]} * {t[1]}"),
        st.tuples(inner, scalar).map(lambda t: f"{t[0]} / ({t[1]})"),
        st.tuples(st.sampled_from(NET_FUNCTIONS + ["g"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]} {t[1]}"),
        inner.map(lambda e: f"softmax_j({e})"),
        inner.map(lambda e: f"-({e})"),
    ), max_leaves=10)


def _untyped() -> st.SearchStrategy[str]:
    """Any expression the grammar reads, indices at random: mostly the checker's business."""
    index = st.sampled_from(["", "^i", "^j", "_i", "^jk", "^{j,k}", "^{t+a}", "_{ij}", "^1", "^j^k", "^{t-1}",
                             "^{t+2a-1}", "^{2t-a}", "^{t+0.5a}", "^{1+2}", "^{i-j}"])
    leaf = st.one_of(st.tuples(st.sampled_from(["x", "y", "W", "b", "s", "p", "h", "n", "q", "relu"]), index)
                     .map("".join), st.sampled_from(HOSTILE_NUMBERS[:9]),
                     st.sampled_from(["h(t-1)^j", "h(0)^i", "x(t)^i", "h(T)^j", "h(t+1)^j"]))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" + ", " - ", " * ", " / ", " ", "^", "**"]), inner).map("".join),
        st.tuples(st.sampled_from(NET_FUNCTIONS + ["g", "sum_i", "mean_j", "softmax_k", "squared_error", "h"]),
                  st.lists(inner, min_size=0, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        inner.map(lambda e: f"({e})"),
    ), max_leaves=8)


@st.composite
def networks(draw) -> str:
    """A network file: mostly a valid skeleton with drawn parts, sometimes drawn statements."""
    size = draw(st.sampled_from(["2", "3", "1", "4", "", "0", "100000"]))
    lines = [f"# {draw(st.sampled_from(['A net', 'Title: with $%#{ chars', 'einderiv: order 1', 'x']))}"]
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["# einderiv: order 2", "# einderiv: form compact",
                                           "# einderiv: order 0", "# einderiv: color red"])))
    lines.append(f"dims n = {size}" if size else "dims n")
    lines += ["input x^i : n", "label y^i : n", "weight W^j_i : n, n", "weight V^j_k : n, n", "bias b^j : n",
              "weight s"]
    if draw(st.booleans()):
        params = draw(st.sampled_from(["z", "z, w", "", "z, z", "z, j"]))
        lines.append(f"function g({params}) = {draw(_body())}")
    else:
        lines.append("function g(z) = z * sigmoid(z)")
    if draw(st.integers(0, 5)) == 0:
        lines.append(f"q = {draw(_untyped())}")
    if draw(st.integers(0, 7)) == 0:  # zero padding (issue 12), sometimes of a name that is no tensor
        lines.append(f"padded {draw(st.sampled_from(['x', 'x, W', 'q', 'x, x', 'p']))}")
    if draw(st.integers(0, 4)) == 0:  # a recurrence
        steps = draw(st.sampled_from(["1..3", "1..T", "2..1", "0..2", "1..n"]))
        lines += ["h(0)^j = x^j", f"h(t)^j = {draw(_vector()).replace('x^i', 'h(t-1)^i')} for t = {steps}",
                  "p^j = h(3)^j"]
    else:
        lines.append(f"p^j = {draw(_vector())}")
    lines.append(f"f = {draw(st.sampled_from(OBJECTIVES))}")
    if draw(st.integers(0, 6)) == 0:
        k = draw(st.integers(0, len(lines) - 1))
        lines[k] = draw(st.sampled_from(["", "   ", "dims", "weight", "x^i = 1", lines[k] + " # c",
                                         lines[k] + " extra", "\t" + lines[k]]))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ mutations
VOCAB = ["(", ")", "^", "_", "{", "}", ",", "=", "+", "-", "*", "/", "**", "#", ":", "..", "for t = 1..3",
         "relu(", "tanh(", "sum_i(", "softmax_k(", "mean_j(", "h(t-1)", "h(0)", "x^i", "W^j_i", "^{j,k}",
         "^{t+a}", "^{t-1}", "^{t+2a-1}", "^{2i-j}", "padded", "padded x", "_{ij}", "dims", "input", "label", "weight", "bias", "function", "depth n", "lambda",
         "\n", "\ufeff", "\x00", "é", "∂", "1e309", "1e-400", "1e100000000", "0", "00", "9" * 120,
         "a" * 150, "9**9**9**9", "factorial(10**9)", "primepi(10**12)", "z/0", "1..1000000", "(" * 200,
         "tanh(" * 130, "n = 99999999", "\"\"\"", "'''", "\\", "$", "%", "~", "\\input{x}"]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[0-9.]+(?:[eE][+-]?[0-9]+)?|\s+|.", text)


def mutate(text: str, rng: random.Random) -> str | bytes:
    """One to three random edits of ``text``; some return bytes (a flipped byte)."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(7)
        toks = _tokens(text)
        if not toks:
            return text
        k = rng.randrange(len(toks))
        if kind == 0:  # delete a span of tokens
            del toks[k:k + rng.randint(1, 4)]
        elif kind == 1:  # insert a token of the vocabulary
            toks.insert(k, rng.choice(VOCAB))
        elif kind == 2:  # substitute one
            toks[k] = rng.choice(VOCAB + toks)
        elif kind == 3:  # duplicate a line
            lines = text.split("\n")
            j = rng.randrange(len(lines))
            lines.insert(j, lines[j])
            text = "\n".join(lines)
            continue
        elif kind == 4:  # swap two lines
            lines = text.split("\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
            continue
        elif kind == 5:  # a number replaced by another
            nums = [j for j, t in enumerate(toks) if t[:1].isdigit()]
            if nums:
                toks[rng.choice(nums)] = rng.choice(["0", "1", "3", "1e309", "99999999", "1e-400", "2.5", "-1"])
        else:  # flip a byte: the file may no longer be UTF-8
            data = bytearray(text.encode("utf-8"))
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data)
        text = "".join(toks)
    return text


def mutants(count: int, seed: int, seeds=QUICK_SEEDS):
    """``count`` mutated examples, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    texts = [p.read_text(encoding="utf-8") for p in seeds]
    for _ in range(count):
        yield mutate(rng.choice(texts), rng)


# ------------------------------------------------------------------ the same grammar, seeded
def _grow(rng: random.Random, leaves, rules, budget: int) -> str:
    """A random expression: a leaf, or a rule applied to smaller expressions (at most ``budget`` leaves)."""
    if budget <= 1 or rng.random() < 0.3:
        return rng.choice(leaves)
    rule = rng.choice(rules)
    return rule(rng, lambda: _grow(rng, leaves, rules, budget // 2))


_BODY_RULES = [
    lambda r, e: f"{e()} {r.choice(BODY_OPERATORS)} {e()}",
    lambda r, e: f"{r.choice(BODY_FUNCTIONS)}({e()})",
    lambda r, e: f"({e()})",
    lambda r, e: f"-{e()}",
]
_SCALARS = ["s", "2", "0.5", "x^i x^i", "sum_i(x^i)", "mean_i(x^i)", "n", "g(s)", "1e-3"]
_VECTOR_RULES = [
    lambda r, e: f"{e()}{r.choice([' + ', ' - '])}{e()}",
    lambda r, e: f"{e()} {r.choice(_SCALARS)}",
    lambda r, e: f"{r.choice(_SCALARS)} * {e()}",
    lambda r, e: f"{e()} / ({r.choice(_SCALARS)})",
    lambda r, e: f"{r.choice(NET_FUNCTIONS + ['g'])}({e()})",
    lambda r, e: f"{e()} {e()}",
    lambda r, e: f"softmax_j({e()})",
    lambda r, e: f"-({e()})",
]
_UNTYPED_LEAVES = [n + i for n in ("x", "y", "W", "b", "s", "p", "h", "n", "q", "relu")
                   for i in ("", "^i", "^j", "_i", "^jk", "^{j,k}", "^{t+a}", "_{ij}", "^1", "^j^k")]
_UNTYPED_LEAVES += HOSTILE_NUMBERS[:9] + ["h(t-1)^j", "h(0)^i", "x(t)^i", "h(T)^j", "h(t+1)^j"]
_UNTYPED_RULES = [
    lambda r, e: f"{e()}{r.choice([' + ', ' - ', ' * ', ' / ', ' ', '^', '**'])}{e()}",
    lambda r, e: (f"{r.choice(NET_FUNCTIONS + ['g', 'sum_i', 'mean_j', 'softmax_k', 'squared_error', 'h'])}"
                  f"({', '.join(e() for _ in range(r.randint(0, 3)))})"),
    lambda r, e: f"({e()})",
]


def random_network(rng: random.Random) -> str:
    """A network file drawn from the grammar's constructs as :func:`networks` draws it, from a
    seeded generator (thousands a second: the volume of the default run)."""
    size = rng.choice(["2", "3", "1", "4"] * 4 + ["", "0", "100000"])
    lines = [f"# {rng.choice(['A net', 'Title: with $%#{ chars', 'x'] * 3 + ['einderiv: order 1'])}"]
    if rng.random() < 0.2:
        lines.append(rng.choice(["# einderiv: order 2", "# einderiv: form compact", "# einderiv: order 0",
                                 "# einderiv: color red"]))
    lines.append(f"dims n = {size}" if size else "dims n")
    lines += ["input x^i : n", "label y^i : n", "weight W^j_i : n, n", "weight V^j_k : n, n", "bias b^j : n",
              "weight s"]
    body_leaves = ["z", "w", "pi", "2j", "j"] + HOSTILE_NUMBERS
    if rng.random() < 0.5:
        params = rng.choice(["z", "z, w"] * 4 + ["", "z, z", "z, j"])
        lines.append(f"function g({params}) = {_grow(rng, body_leaves, _BODY_RULES, 12)}")
    else:
        lines.append("function g(z) = z * sigmoid(z)")
    if rng.random() < 0.2:
        lines.append(f"q = {_grow(rng, _UNTYPED_LEAVES, _UNTYPED_RULES, 8)}")
    vector_leaves = ["W^j_i x^i", "b^j", "x^j", "V^j_k x^k", "(x^j - y^j)"]
    vector = _grow(rng, vector_leaves, _VECTOR_RULES, 10)
    if rng.random() < 0.2:
        steps = rng.choice(["1..3", "1..T", "2..1", "0..2", "1..n"])
        lines += ["h(0)^j = x^j", f"h(t)^j = {vector.replace('x^i', 'h(t-1)^i')} for t = {steps}", "p^j = h(3)^j"]
    else:
        lines.append(f"p^j = {vector}")
    lines.append(f"f = {rng.choice(OBJECTIVES)}")
    if rng.random() < 0.15:
        k = rng.randrange(len(lines))
        lines[k] = rng.choice(["", "   ", "dims", "weight", "x^i = 1", lines[k] + " # c", lines[k] + " extra",
                               "\t" + lines[k]])
    return "\n".join(lines) + "\n"


def grammar_inputs(count: int, seed: int):
    """``count`` drawn networks, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    for _ in range(count):
        yield random_network(rng)
