"""One exception family: what went wrong with the input, and what went wrong in einderiv.

* :class:`EinderivError` and its subclasses are *user* errors — a file that does not
  parse or check, a bad argument.  ``str(err)`` is the single line a user reads:
  ``file:line:col: message`` (a syntax error adds the offending line and a caret);
  the command line prints it and exits 2.
* :class:`EinderivWarning` (a ``UserWarning``) is input that works but deserves a line: a user
  function whose generated code can overflow.  Its message is the line the command line prints
  on standard error (``file:line:col: warning: …``); the exit code does not change.
* :class:`InternalError` is a bug in einderiv, never bad input.  It is not an
  :class:`EinderivError`, so no ``except EinderivError`` swallows it; the command line
  prints one line asking for a report and exits 3.

A message about an argument names it as the caller wrote it: the library says
``dims={'x': 3} names no dimension 'x'``, the command line ``--dim x=3 names no
dimension 'x'``.  Such a message holds ``{0}``, ``{1}``, … where an :class:`Argument`
goes; ``str(err)`` spells them for Python, :meth:`EinderivError.worded` with any speller.

Example:
    >>> err = UsageError("{0} names no dimension 'x'", arguments=(Argument("dims", "x", 3),))
    >>> str(err)
    "dims={'x': 3} names no dimension 'x'"
    >>> err.worded(lambda a: f"--dim {a.key}={a.value}")
    "--dim x=3 names no dimension 'x'"
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Location:
    """Where something is in a source file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Placeholder(str):
    """A value for the reader to fill in, written bare: ``dims={'n': SIZE}``, ``--dim n=SIZE``."""

    def __repr__(self) -> str:
        return str(self)


#: the size a message asks for (``pass sizes={'n': SIZE}``)
SIZE = Placeholder("SIZE")


@dataclass(frozen=True)
class Argument:
    """An argument a message names: the API parameter (``dims``, ``depth``, ``order``, ``sizes``,
    ``form``), and for a mapping the entry's ``key``, with the ``value`` given (or asked for)."""

    name: str
    key: str | None = None
    value: object = None

    def python(self) -> str:
        """As a Python caller writes it: ``dims={'x': 3}``, ``order=0``."""
        if self.key is None:
            return f"{self.name}={self.value!r}"
        return f"{self.name}={{{self.key!r}: {self.value!r}}}"


class EinderivError(Exception):
    """Base of every error einderiv reports to a user (CLI exit code 2)."""

    def __init__(self, message: str, loc: Location | None = None, context: str = "",
                 arguments: tuple[Argument, ...] = ()):
        self.message = message
        self.loc = loc
        self.context = context
        self.arguments = tuple(arguments)
        super().__init__(str(self))

    def worded(self, spell: Callable[[Argument], str] = Argument.python) -> str:
        """The message with each argument spelled by ``spell`` (default: as Python writes it)."""
        message = self.message
        for k, arg in enumerate(self.arguments):
            message = message.replace("{%d}" % k, spell(arg))
        head = f"{self.loc}: {message}" if self.loc else message
        return head + (("\n" + self.context.rstrip("\n")) if self.context else "")

    def __str__(self) -> str:
        return self.worded()


class ParseError(EinderivError):
    """The text does not follow the grammar."""


class NameError_(EinderivError):
    """Undefined, redefined or misused names; definition cycles."""


class IndexError_(EinderivError):
    """Summation-convention violations: index used three times, free indices differ."""


class ShapeError(EinderivError):
    """Sizes that do not agree, or sizes missing where numbers are needed."""


class FunctionError(EinderivError):
    """Unknown functions, bad user-defined functions, non-differentiable expressions."""


class UsageError(EinderivError):
    """A bad argument: to an API function (``dims=``, ``depth=``, ``order=``) or on the command
    line (``--dim``, ``--depth``), or a file that cannot be read."""


class EinderivWarning(UserWarning):
    """Input einderiv accepts but warns about; ``str(w)`` is the one line to print."""


class InternalError(Exception):
    """A bug in einderiv, never bad input (CLI exit code 3, with a request to report it).

    Deliberately not an :class:`EinderivError`: code that handles user errors never catches it.
    """
