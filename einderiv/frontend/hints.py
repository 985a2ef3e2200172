"""Why a syntax error happened, where the grammar's "unexpected X; expected one of …" would not say.

Two mistakes get a sentence of their own: a power written in a network expression (``v^j^2``,
``(a)^2``, ``x**2``: the notation has no power operator outside function bodies), and a statement
keyword used as a tensor name (``padded^j = …``, ``input^j = …``).  :func:`explain` is called by
the parser with the error's position and returns the message and the column to point at, or None.
"""
from __future__ import annotations

import re

#: the words that begin a statement (grammar/einderiv.lark): they cannot name a tensor
STATEMENT_WORDS = ("dims", "depth", "input", "label", "weight", "bias", "function", "padded")
#: what each keyword's statement looks like, for the message
_EXAMPLE = {"dims": "dims n = 4", "depth": "depth n", "input": "input x^i : n", "label": "label y^l : c",
            "weight": "weight W^j_i : h, n", "bias": "bias b^j : h", "function": "function cube(z) = z^3",
            "padded": "padded x, v1"}
#: why the operator is not a power, after "a power is not written with OP in a network expression"
POWER_HINT = {"^": " ('^' starts an index group: x^i)", "**": ""}
_FIRST_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")


def explain(lines: list[str], line: int, column: int) -> tuple[str, int] | None:
    """``(message, column)`` for a syntax error at ``line:column`` that is one of the mistakes above."""
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    head = src.split("#", 1)[0]
    first = _FIRST_WORD.match(head)
    word = first.group(1) if first else ""
    if word in STATEMENT_WORDS:
        rest = head[first.end():]  # a name's index group or family label follows it at once, '=' after blanks
        if column > first.end() and (rest[:1] in ("^", "_", "(") and word != "function" or rest.lstrip()[:1] == "="):
            return (f"'{word}' begins a statement ({_EXAMPLE[word]}) and cannot name a tensor; "
                    "choose another name", first.start(1) + 1)
        return None
    power = _power_at(src, head, column)
    if power is None:
        return None
    operator, at = power
    return (f"a power is not written with '{operator}' in a network expression{POWER_HINT[operator]}; write "
            "square(...) for an elementwise square, a product such as x^j x^j for a sum of squares, or a "
            "function with the power in its body (function cube(z) = z^3)", at)


def _power_at(src: str, head: str, column: int) -> tuple[str, int] | None:
    """A syntax error at ``column`` of a definition line that is a power on its right side: the
    operator and its column, else None."""
    if "=" not in head[: column - 1]:
        return None
    before, rest = src[: column - 1].rstrip(), src[column - 1:]
    if rest.startswith("*") and src[: column - 1].endswith("*"):  # `**`, not `* *`
        return "**", column - 1
    if rest.startswith("^") and rest[1:].lstrip()[:1].isdigit():
        return "^", column
    if rest[:1].isdigit() and (before.endswith("^") or before.endswith("^{")):
        return "^", before.rindex("^") + 1
    return None
