"""Resource limits on what a network file may ask for: every input is answered at once.

A file is untrusted text (docs/security.md).  Whatever it says, reading it must end
quickly with a network or one line naming what is too big and the limit — never a
traceback, a hang, or an attempt to allocate petabytes.  The limits, and what each
refuses:

* :data:`MAX_TOKEN` characters in a name or a number (a 1M-character name);
* :data:`MAX_NESTING` levels of nesting in one expression (calls, products, sums:
  the passes over an expression are recursive);
* numbers beyond float64's range, :data:`MAX_MAGNITUDE` (``1e100000000``, ``1e309``);
* :data:`MAX_BODY` characters in a function body, and in it (:func:`check_body`, before SymPy sees it, since SymPy evaluates
  numbers eagerly): a constant that is not finite or beyond :data:`MAX_MAGNITUDE`
  (``9**9**9**9``, ``1e999999``), a constant exponent beyond :data:`MAX_EXPONENT`, a
  function of a constant argument beyond :data:`MAX_CONSTANT_ARGUMENT`
  (``factorial(10**9)``, ``primepi(10**12)``);
* settable, through the environment (or the command line's ``--max-size`` and
  ``--max-steps``): :func:`max_steps`, the members one ``for t = lo..hi`` may unroll
  (``EINDERIV_MAX_STEPS``, default :data:`DEFAULT_MAX_STEPS`), and :func:`max_size`, the
  elements of the largest array ``check`` would allocate (``EINDERIV_MAX_SIZE``,
  default :data:`DEFAULT_MAX_SIZE`).

Example:
    >>> literal_error("1e400")
    'number 1e400 is out of range; expected at most 1e+300 in magnitude'
    >>> literal_error("0.5") is None
    True
"""
from __future__ import annotations

import ast
import math
import os
import re
from decimal import Decimal

import sympy

from ..errors import FunctionError, Location, UsageError

#: characters of one name or number
MAX_TOKEN = 100
#: nesting depth of one expression (its parse tree)
MAX_NESTING = 120
#: magnitude of a number or a constant (float64 ends near 1.8e308; room for a few products)
MAX_MAGNITUDE = 1e300
#: magnitude of a constant exponent in a function body
MAX_EXPONENT = 1000
#: magnitude of a constant argument of a function in a function body
MAX_CONSTANT_ARGUMENT = 100
#: characters of one function body
MAX_BODY = 2000
#: members a range ``for t = lo..hi`` may unroll, unless EINDERIV_MAX_STEPS says otherwise
DEFAULT_MAX_STEPS = 10_000
#: elements of the largest array ``check`` allocates (float64: 800 MB), unless EINDERIV_MAX_SIZE says
DEFAULT_MAX_SIZE = 100_000_000

_LONG = re.compile(r"[A-Za-z0-9_.]{%d,}" % (MAX_TOKEN + 1))


def _setting(var: str, default: int) -> int:
    raw = os.environ.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{var}={raw!r} must be a positive integer")
    return value


def max_steps() -> int:
    """Members one range may unroll (``EINDERIV_MAX_STEPS``, default :data:`DEFAULT_MAX_STEPS`)."""
    return _setting("EINDERIV_MAX_STEPS", DEFAULT_MAX_STEPS)


def max_size() -> int:
    """Elements of the largest array ``check`` may allocate (``EINDERIV_MAX_SIZE``)."""
    return _setting("EINDERIV_MAX_SIZE", DEFAULT_MAX_SIZE)


def long_token(text: str) -> tuple[int, int, int] | None:
    """The first name or number longer than :data:`MAX_TOKEN` characters: (line, column, length)."""
    m = _LONG.search(text)
    if m is None:
        return None
    line = text.count("\n", 0, m.start()) + 1
    return line, m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1, m.end() - m.start()


def literal_error(text: str) -> str | None:
    """Why a number literal is refused (beyond :data:`MAX_MAGNITUDE`, or so small that float64
    reads it as 0), else None."""
    value = Decimal(text).copy_abs()  # exact (no rounding); a literal has at most MAX_TOKEN characters
    if value != 0 and not Decimal(f"{1 / MAX_MAGNITUDE:g}") <= value <= Decimal(f"{MAX_MAGNITUDE:g}"):
        return f"number {text} is out of range; expected at most {MAX_MAGNITUDE:g} in magnitude" + (
            "" if value > 1 else f" and at least {1 / MAX_MAGNITUDE:g} unless 0")
    return None


# ------------------------------------------------------------ function bodies
class _Refused(Exception):
    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset, self.message = offset, message


#: a constant whose value the guard does not know (a function of constants): only its size matters
_UNKNOWN = object()


def _value(node: ast.AST, params: frozenset[str], user: frozenset[str], src: str = ""):
    """The float value of a constant subexpression, :data:`_UNKNOWN` for a function of constants,
    None when it depends on a parameter; :class:`_Refused` when it is too big or not finite.
    ``user``: the file's functions, whose constant arguments must be plain numbers."""
    where = getattr(node, "col_offset", 0)
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float)):  # `1j`: a complex literal (a parameter named j)
            raise _Refused(where, f"the number {ast.get_source_segment(src, node)} is not real; expected a real "
                                  "number")
        value = float(node.value)
        if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise _Refused(where, f"the number {ast.get_source_segment(src, node) or node.value} is too large; expected "
                                  f"at most {MAX_MAGNITUDE:g} in magnitude")
        return value
    if isinstance(node, ast.Name):  # a parameter, or a SymPy constant (pi, E, GoldenRatio, …)
        if node.id in params:
            return None
        try:
            return float(getattr(sympy, node.id, 1.0))
        except (TypeError, ValueError):  # a function named without a call: SymPy's parser says so
            return _UNKNOWN
    if isinstance(node, ast.UnaryOp):
        inner = _value(node.operand, params, user, src)
        return -inner if isinstance(inner, float) and isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        a, b = _value(node.left, params, user, src), _value(node.right, params, user, src)
        if isinstance(node.op, ast.Pow):
            if isinstance(b, float) and abs(b) > MAX_EXPONENT:
                raise _Refused(node.right.col_offset, f"the exponent {b:g} is too large; expected at most "
                                                 f"{MAX_EXPONENT} in magnitude")
            if b is _UNKNOWN and a is not None:
                raise _Refused(node.right.col_offset, "the exponent of a constant is not a plain number; "
                                                 "expected arithmetic in numbers")
            if a is _UNKNOWN and isinstance(b, float) and abs(b) > 4:
                raise _Refused(node.left.col_offset, "a function of constants is raised to a power beyond 4; "
                                                     "expected at most the 4th power")
        operation = {ast.Add: a.__add__, ast.Sub: a.__sub__, ast.Mult: a.__mul__, ast.Div: a.__truediv__,
                     ast.Pow: a.__pow__}.get(type(node.op)) if isinstance(a, float) else None
        if operation is not None and isinstance(b, float):  # (`//` of two numbers: SymPy's, bounded by them)
            try:
                value = operation(b)
            except ZeroDivisionError:
                raise _Refused(where, "division by zero; expected a nonzero divisor") from None
            except OverflowError:
                value = math.inf
            if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
                raise _Refused(where, f"the constant {ast.unparse(node)} is too large or not real; "
                                      f"expected a real number of at most {MAX_MAGNITUDE:g} in magnitude")
            return value
        if a is None or b is None:
            return None
        return _UNKNOWN
    if isinstance(node, ast.Call):
        args = [_value(arg, params, user, src) for arg in node.args]
        if any(a is None for a in args):
            return None
        func = ast.unparse(node.func)
        for arg, value in zip(node.args, args):
            if value is _UNKNOWN and func in user:
                raise _Refused(arg.col_offset, f"the constant argument of {func} is not a plain number; "
                                               "expected arithmetic in numbers")
            if isinstance(value, float) and abs(value) > MAX_CONSTANT_ARGUMENT:
                raise _Refused(arg.col_offset, f"the constant argument {value:g} of {func} is too large; "
                                               f"expected at most {MAX_CONSTANT_ARGUMENT} in magnitude")
        return _UNKNOWN
    return None


def check_body(name: str, params: tuple[str, ...], body: str, loc: Location, user=()) -> None:
    """Refuse a body (already tokenised and parsed as Python by the checker) whose constants
    SymPy would spend unbounded time or memory on; ``loc`` is the body's first character."""
    if len(body) > MAX_BODY:
        raise FunctionError(f"the body of function '{name}' has {len(body)} characters; expected at most {MAX_BODY} "
                            "(split it into several functions)", loc)
    try:
        python = body.replace("^", "**")
        _value(ast.parse(python, mode="eval").body, frozenset(params), frozenset(user), python)
    except (RecursionError, MemoryError):
        raise FunctionError(f"the body of function '{name}' is nested too deeply; split it into several "
                            "functions", loc) from None
    except _Refused as exc:
        # `^` → `**` shifts later columns by one each; count the carets before the offset
        col, seen = exc.offset, 0
        while seen < len(body) and col > 0:
            col -= 2 if body[seen] == "^" else 1
            seen += 1
        raise FunctionError(f"in the body of function '{name}': {exc.message} (limits: docs/security.md)",
                            Location(loc.file, loc.line, loc.column + seen)) from None


def nesting_error(depth: int) -> str:
    return (f"expression nested {depth} deep; expected at most {MAX_NESTING} levels (of calls, products, "
            "sums): split it into several definitions")
