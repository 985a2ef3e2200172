"""Text → :class:`einderiv.frontend.syntax.Module`, and nothing more (and :func:`read`, the text of a file).

The grammar (``grammar/einderiv.lark``, shipped as the package data
``einderiv.grammar``) is parsed with lark's LALR parser; a Transformer builds
the frozen syntax nodes.  The only errors raised here are syntax errors
(:class:`ParseError`, with the offending line and a caret as context); every
question of meaning — names, indices, sizes — is :mod:`einderiv.frontend.check`'s.

Example:
    >>> m = parse("dims n = 3\\ninput x^i : n\\nf = x^i x^i\\n", "a.ein")
    >>> [type(s).__name__ for s in m.statements]
    ['Dims', 'Decl', 'Assign']
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import dataclasses

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from . import syntax as S
from ..errors import EinderivError, Location, ParseError, UsageError
from . import hints
from .header import Header, header
from .underscores import resolve
from .limits import MAX_NESTING, MAX_TOKEN, literal_error, long_token, nesting_error

#: how terminals are named in "expected one of: ..." lists
_TERMINAL_WORDS = {
    "TNAME": "a tensor name",
    "NAME": "a name",
    "CALLNAME": "a function call",
    "IDX": "an index",
    "IDXNAME": "an index",
    "INT": "an integer",
    "NUMBER": "a number",
    "BODY": "a function body",
    "DOMAIN": "a domain (positive, probability, onehot)",
    "_NL": "end of line",
    "$END": "end of file",
}


#: the grammar in a source checkout (the repository's top-level grammar/ folder)
SOURCE_GRAMMAR = Path(__file__).resolve().parents[2] / "grammar" / "einderiv.lark"


def _grammar_text() -> str:
    try:
        return resources.files("einderiv.grammar").joinpath("einderiv.lark").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        # Running from a source checkout that is not installed (or beside a non-editable
        # install, as the README's test command does): setuptools maps the top-level
        # grammar/ folder to einderiv.grammar only on install.
        return SOURCE_GRAMMAR.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser, built once per process."""
    return Lark(_grammar_text(), parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=False)


# ------------------------------------------------------------------ transformer
def _split(tok: Token, up: bool) -> tuple[S.Idx, ...]:
    """A bare group ``jk`` is one index per letter."""
    text = str(tok)
    if not text.isalpha():
        mark = "^" if up else "_"
        raise _syntax_error_at(
            tok.line, tok.column, f"index group '{text}' mixes letters and digits; write one letter "
            f"per index ({mark}{text[0]}) or a longer index in braces ({mark}{{{text}}})")
    return tuple(S.Idx(tok.line, tok.column + k, ch, up) for k, ch in enumerate(text))


class _ToSyntax(Transformer):
    """Parse tree → syntax nodes; one method per grammar rule."""

    def __init__(self, path: str, text: str, found: Header):
        super().__init__()
        self._path = path
        self._text = text
        self._header = found

    # -- index groups --------------------------------------------------
    def braced(self, toks):
        names = [t for t in toks if isinstance(t, tuple) or t.type == "IDXNAME"]
        comma = any(not isinstance(t, tuple) and t.type == "COMMA" for t in toks)
        return names, comma or any(isinstance(t, tuple) for t in names)

    def aterm(self, toks):
        return (self._coef(toks[0]) if len(toks) == 2 else 1), toks[-1], toks[0]

    @staticmethod
    def _coef(tok: Token) -> int:
        """A coefficient in index arithmetic: a whole number (``2a``), never ``0.5a`` or ``1e1a``."""
        if not str(tok).isdigit():
            raise _syntax_error_at(tok.line, tok.column, f"the coefficient {tok} in index arithmetic is not an "
                                   "integer; expected a whole number of positions, as in x^{t+2a} or x^{t-1}")
        return int(tok)

    def aconst(self, toks):
        return self._coef(toks[0]), None, toks[0]

    def aplus(self, toks):
        return toks[0]

    def aminus(self, toks):
        term = toks[0]
        return (-term[0],) + tuple(term[1:])

    def arith(self, terms):
        """``2t+a-1`` → (text, first token, ((2, 't'), (1, 'a')), -1): the indices with their
        coefficients, and the constant."""
        if all(name is None for _, name, _ in terms):
            tok = terms[0][2]
            raise _syntax_error_at(tok.line, tok.column, "index arithmetic without an index; expected a position "
                                   "plus or minus offsets, as in x^{t+1} or x^{t+a}")
        text = ""
        for c, name, _ in terms:
            sign = "-" if c < 0 else "+" if text else ""
            mag = abs(c)
            text += sign + (str(mag) if name is None else (f"{mag}" if mag != 1 else "") + str(name))
        const = sum(c for c, name, _ in terms if name is None)
        return text, terms[0][2], tuple((c, str(name)) for c, name, _ in terms if name is not None), const

    # -- labels and ranges -------------------------------------------------
    def lint(self, toks):
        (t,) = toks
        return S.Label(t.line, t.column, int(t), ())

    def lname(self, toks):
        (t,) = toks
        return S.Label(t.line, t.column, 0, ((str(t), 1),))

    @staticmethod
    def _lcombine(a: S.Label, b: S.Label, sign: int) -> S.Label:
        terms = dict(a.terms)
        for n, c in b.terms:
            terms[n] = terms.get(n, 0) + sign * c
        return S.Label(a.line, a.column, a.const + sign * b.const, tuple((n, c) for n, c in terms.items() if c))

    def lplus(self, toks):
        return self._lcombine(toks[0], toks[1], 1)

    def lminus(self, toks):
        return self._lcombine(toks[0], toks[1], -1)

    def label(self, toks):
        return toks[0]

    def range(self, toks):
        var, lo, hi = toks
        return S.Range(var.line, var.column, str(var), lo, hi)

    def _group(self, children, up: bool):
        (x,) = children
        if isinstance(x, Token):
            return _split(x, up)
        names, comma = x
        if not comma:
            return _split(names[0], up)  # {jk} is j, k, like ^jk
        return tuple(S.Idx(t[1].line, t[1].column, t[0], up, t[2], t[3]) if isinstance(t, tuple)
                     else S.Idx(t.line, t.column, str(t), up) for t in names)

    def up(self, children):
        return self._group(children, True)

    def down(self, children):
        return self._group(children, False)

    @staticmethod
    def _indices(groups) -> tuple[S.Idx, ...]:
        return tuple(ix for g in groups for ix in g)

    # -- statements ----------------------------------------------------
    def start(self, stmts):
        return S.Module(1, 1, tuple(stmts), self._header)

    def dim_item(self, children):
        name = children[0]
        size = int(children[1]) if len(children) > 1 else None
        return S.DimItem(name.line, name.column, str(name), size)

    @v_args(meta=True)
    def dims(self, meta, items):
        return S.Dims(meta.line, meta.column, tuple(items))

    @v_args(meta=True)
    def depth(self, meta, items):
        return S.Depth(meta.line, meta.column, items[0])

    @v_args(meta=True)
    def padded(self, meta, names):
        return S.Padded(meta.line, meta.column, tuple(S.Use(t.line, t.column, str(t), ()) for t in names))

    def role(self, children):
        return children[0]

    def domain(self, children):
        (t,) = children
        return S.Domain(t.line, t.column, str(t))

    def size(self, children):
        (t,) = children
        if t.type == "INT":
            return S.Size(t.line, t.column, None, int(t))
        return S.Size(t.line, t.column, str(t), None)

    def decl(self, children):
        role, name, *rest = children
        groups = [c for c in rest if isinstance(c, tuple)]
        sizes = [c for c in rest if isinstance(c, S.Size)]
        label = next((c for c in rest if isinstance(c, S.Label)), None)
        rng = next((c for c in rest if isinstance(c, S.Range)), None)
        domain = next((c for c in rest if isinstance(c, S.Domain)), None)
        has_colon = len(sizes) > 0
        return S.Decl(role.line, role.column, str(role), str(name), self._indices(groups),
                      tuple(sizes) if has_colon else None, label, rng, domain, name.column)

    @v_args(meta=True)
    def function(self, meta, children):
        name, *params, body = children
        stripped = str(body).lstrip()
        col = body.column + len(str(body)) - len(stripped)
        return S.FunctionDef(meta.line, meta.column, str(name),
                             tuple(S.Param(p.line, p.column, str(p)) for p in params),
                             stripped.rstrip(), body.line, col)

    def definition(self, children):
        name, *rest = children
        rng = rest.pop() if isinstance(rest[-1], S.Range) else None
        label = rest.pop(0) if rest and isinstance(rest[0], S.Label) else None
        *groups, expr = rest
        return S.Assign(name.line, name.column, str(name), self._indices(groups), expr, label, rng)

    # -- expressions ---------------------------------------------------
    def use(self, children):
        name, *groups = children
        return S.Use(name.line, name.column, str(name), self._indices(groups))

    def number(self, children):
        (t,) = children
        why = literal_error(str(t))
        if why is not None:
            raise _syntax_error_at(t.line, t.column, why)
        return S.Number(t.line, t.column, str(t))

    def call(self, children):
        name, *args = children
        groups = [a for a in args if isinstance(a, tuple)]
        args = [a for a in args if not isinstance(a, tuple)]
        return S.Call(name.line, name.column, str(name), tuple(args), self._indices(groups))

    def paren(self, children):
        """A parenthesised product is marked (:func:`syntax.flat_product`); anything else is itself."""
        (a,) = children
        return dataclasses.replace(a, paren=True) if isinstance(a, (S.Mul, S.Div)) else a

    def mul(self, children):
        a, b = children
        return S.Mul(a.line, a.column, a, b)

    def div(self, children):
        a, b = children
        return S.Div(a.line, a.column, a, b)

    @v_args(meta=True)
    def neg(self, meta, children):
        (a,) = children
        return S.Neg(meta.line, meta.column, a)

    def add(self, children):
        a, b = children
        return S.Sum(b.line, b.column, a, b, False)

    @v_args(meta=True)
    def sub(self, meta, children):
        a, b = children
        return S.Sum(b.line, b.column, a, b, True)


# ------------------------------------------------------------------ errors
class _SyntaxErrorAt(Exception):
    """Raised inside the Transformer; turned into ParseError once the path is known."""

    def __init__(self, line: int, column: int, message: str):
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def _syntax_error_at(line: int, column: int, message: str) -> _SyntaxErrorAt:
    return _SyntaxErrorAt(line, column, message)


def _lines(text: str) -> list[str]:
    """The lines as the grammar counts them (``\n`` ends a line; ``str.splitlines`` would also
    split at ``\x0b``, ``\x1c``, ``\u2028``, … and shift every later line)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def caret_context(text: str, line: int, column: int) -> str:
    """The source line and a caret under ``column`` (both 1-based)."""
    lines = _lines(text)
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    pad = "".join("\t" if ch == "\t" else " " for ch in src[: column - 1])
    return f"{src}\n{pad}^"


def _describe(term: str) -> str:
    if term in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[term]
    for t in _parser().terminals:
        if t.name == term:
            if t.pattern.type == "str":
                return repr(t.pattern.value)
            return term.lower()
    return term


def _expected(names) -> str:
    words = sorted({_describe(n) for n in names})
    return ", ".join(words)


def _token_text(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "$END":
        return "end of file"
    return repr(str(tok))


def _syntax_error(e: UnexpectedInput, text: str, path: str) -> ParseError:
    line, column = max(e.line, 1), max(e.column, 1)
    if isinstance(e, UnexpectedToken):
        got = _token_text(e.token)
        if e.token.type == "BODY" and "BODY" not in e.expected:
            # The contextual lexer fell back to the whole grammar, where the
            # rest-of-line BODY matches anything: report just the first lexeme.
            raw = str(e.token)
            rest = raw.lstrip(" \t\f\r")  # the grammar's blanks only: str.lstrip() also eats \x1c
            column += len(raw) - len(rest)
            got = repr(re.match(r"[A-Za-z0-9_.]+|.", rest, re.S).group(0) if rest else raw[:1])
        if e.token.type == "$END":  # lark gives no position for the end
            lines = text.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        expected = e.expected
        try:  # LALR merges states; a trial parse gives the exact set
            expected = e.interactive_parser.accepts() or expected
        except Exception:  # pragma: no cover - accepts() is best effort
            pass
    elif isinstance(e, UnexpectedCharacters):
        got = repr(e.char)
        expected = e.allowed or ()
    else:  # pragma: no cover - LALR raises only the two above
        got, expected = "input", ()
    hint = hints.explain(_lines(text), line, column)
    if hint is not None:
        message, column = hint
        return ParseError(f"syntax error: {message}", Location(path, line, column), caret_context(text, line, column))
    msg = f"syntax error: unexpected {got}"
    if expected:
        msg += f"; expected one of: {_expected(expected)}"
    return ParseError(msg, Location(path, line, column), caret_context(text, line, column))


#: the paper's layer label inside an upper index group: ``w^{(k),j}_i``, ``v^{(k-1),i}``, ``w^{(k)}``
_PAPER_LABEL = re.compile(r"([A-Za-z][A-Za-z0-9]*)\^\{\(([^(){}]*)\)(?:,([^{}]*))?\}")


def paper_labels(text: str) -> str:
    """Write the paper's ``w^{(k),j}_i`` as the family member ``w(k)^{j}_i`` (same meaning).

    The rewrite is padded with spaces so that every later column on the line is unchanged.

    Example:
        >>> paper_labels("v^{(k),j} = relu(w^{(k),j}_i v^{(k-1),i})")
        'v(k)^{j}  = relu(w(k)^{j} _i v(k-1)^{i} )'
    """
    def one(m: re.Match) -> str:
        name, label, rest = m[1], m[2], m[3]
        out = f"{name}({label})"
        if rest and rest.strip():
            items = [x.strip() for x in rest.split(",") if x.strip()]
            out += "^{" + ",".join(items) + ("," if len(items) == 1 and len(items[0]) > 1 else "") + "}"
        return out + " " * max(0, len(m[0]) - len(out))

    return _PAPER_LABEL.sub(one, text)


# ------------------------------------------------------------------ public
def read(path: str) -> str:
    """The text of a network file (UTF-8, a byte-order mark allowed); :class:`UsageError` when it
    cannot be read, :class:`ParseError` at the first byte that is not UTF-8."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read '{path}': {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")  # parse() drops a byte-order mark
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        head = data[data.rfind(b"\n", 0, start) + 1:start].decode("utf-8", "replace")
        raise ParseError(f"byte 0x{data[start]:02x} is not UTF-8; expected a UTF-8 text file",
                         Location(path, line, len(head) + 1)) from None


def _depth_error(tree, path: str) -> ParseError | None:
    """An error at the first statement whose parse tree is nested deeper than MAX_NESTING (the
    passes over an expression recurse), naming its depth; None if none is."""
    for statement in tree.children:
        deepest, stack = 0, [(statement, 0)]
        while stack:
            node, depth = stack.pop()
            deepest = max(deepest, depth)
            stack.extend((c, depth + 1) for c in getattr(node, "children", ()) if hasattr(c, "children"))
        if deepest > MAX_NESTING:
            meta = statement.meta
            return ParseError(nesting_error(deepest),
                              Location(path, getattr(meta, "line", 1), getattr(meta, "column", 1)))
    return None


def parse(text: str, path: str) -> S.Module:
    """Parse network source ``text`` (``path`` is only used in messages).

    Raises :class:`ParseError` (``file:line:col: syntax error: ...``).  The file's
    header (directives ``# einderiv: order 3``, title) is read too, into ``Module.header``.
    """
    text = text[1:] if text.startswith("\ufeff") else text  # a UTF-8 byte-order mark
    long = long_token(text)
    if long is not None:
        line, column, length = long
        raise ParseError(f"a name or number of {length} characters; expected at most {MAX_TOKEN}",
                         Location(path, line, column))
    found = header(text, path)
    text = paper_labels(text)
    padded = text if text.endswith("\n") else text + "\n"
    try:
        tree = _parser().parse(padded)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, path) from None
    deep = _depth_error(tree, path)
    if deep is not None:
        raise deep
    try:
        return resolve(_ToSyntax(path, text, found).transform(tree), path)
    except VisitError as e:
        orig = e.orig_exc
        if isinstance(orig, _SyntaxErrorAt):
            loc = Location(path, orig.line, orig.column)
            raise ParseError(orig.message, loc, caret_context(text, orig.line, orig.column)) from None
        if isinstance(orig, EinderivError):
            raise orig from None
        raise
