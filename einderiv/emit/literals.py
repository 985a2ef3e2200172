"""Python literals a generated module writes from untrusted text (a file name, a title): they stay text."""
from __future__ import annotations

__all__ = ["docstring_literal"]


def docstring_literal(text: str) -> str:
    r"""``text`` as a triple-quoted Python literal that cannot end early or run anything: a
    backslash, a quote and every character that is not printable (a control character, a lone
    surrogate from an undecodable file name) is written as an escape, so that a file path such
    as ``net\"\"\";__import__("os").system("id");\"\"\".ein`` stays text (docs/security.md).

    Example:
        >>> docstring_literal('a"b\\c')[3:-3]   # between the triple quotes
        'a\\"b\\\\c'
    """
    out = []
    for ch in text:
        if ch == "\\" or ch == '"':
            out.append("\\" + ch)
        elif ch == "\n" or ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return '"""' + "".join(out) + '"""'
