"""One exception family. Every user-facing error carries a source location.

``str(err)`` is the single line the CLI prints: ``file:line:col: message``,
optionally followed by the offending source line and a caret (syntax errors).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where something is in a source file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class EinderivError(Exception):
    """Base of every error einderiv reports to a user (CLI exit code 2)."""

    def __init__(self, message: str, loc: Location | None = None, context: str = ""):
        self.message = message
        self.loc = loc
        self.context = context
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.loc}: {self.message}" if self.loc else self.message
        return head + (("\n" + self.context.rstrip("\n")) if self.context else "")


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
    """Bad command-line usage (e.g. a --dim that names no dimension)."""
