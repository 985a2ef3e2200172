"""einderiv.emit.float64: its quick filter (a substring search over the module's bytes) says yes
exactly where the plain regex of what a number beyond float64 must contain matches, and
too_large finds such constants beside non-ASCII text."""
import random
import re

from einderiv.emit.float64 import candidate, too_large

#: what a number beyond float64 must contain: 309 digits in a row, or an exponent of 3 digits
CANDIDATE = re.compile(r"[0-9]{309}|[eE][+-]?[0-9]{3}")


def test_the_examples():
    assert too_large("y = 3 * x + 1e2") is None
    assert too_large("y = " + "1" + "0" * 400 + " * x") == "1.00e+400"
    assert too_large("y = x / " + "1" + "0" * 400) == "1.00e-400"
    assert too_large("Σ_c δ[c,j] = 1.5e+400 · x") == "1.50e+400"  # beside non-ASCII text
    assert too_large("z = x / 2E+999") == "5.00e-1000"
    assert too_large("z = 1e30 * w + 10**308") is None  # (a power is not a literal)
    assert too_large("é" * 2000 + " " + "9" * 309) == "1.00e+309"


def test_the_filter_agrees_with_the_regex_on_random_text():
    rng = random.Random(0)
    pieces = ["1", "0", "9", "e", "E", "+", "-", ".", " ", "x", "_", "Σ", "é", "(", "/", "\n"]
    hits = 0
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        if rng.random() < 0.2:
            text += "7" * rng.choice((308, 309, 400))
        expected = CANDIDATE.search(text) is not None
        assert candidate(text) == expected, text
        hits += expected
    assert 500 < hits < 4500  # both answers drawn often
