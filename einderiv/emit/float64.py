"""The constants of a generated module must be float64 numbers.

A literal the grammar accepts (``1e300``, limits: :mod:`einderiv.frontend.limits`) can grow
in the derivatives beyond float64: ``p^j = 1e300 W^j_i x^i`` puts ``1e300**2`` in the
Hessian and in the per-sample gradient norms.  SymPy keeps it exact, so the printer writes a
600-digit integer, and the module raised ``OverflowError`` (int too large to convert to
float) when run.  :func:`too_large` finds such a constant in the generated text; the API
refuses the module at the literal that made it (``api.codegen``, ``api.check``).

Example:
    >>> too_large("y = 3 * x + 1e2")
    >>> too_large("y = " + "1" + "0" * 400 + " * x")
    '1.00e+400'
    >>> too_large("y = x / " + "1" + "0" * 400)
    '1.00e-400'
"""
from __future__ import annotations

import math
import re
from decimal import Decimal

#: a number in Python source, not part of a name (``tmp_2``) or of another number
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)(?![\w.])")
#: what a number beyond float64 must contain: 309 digits in a row, or an exponent of 3 digits —
#: looked for in the module's UTF-8 bytes with every ASCII digit made ``0``, ``E`` made ``e``, a
#: sign ``s`` and every other byte ``.``, by substring search (C's, no regex: a regex for this took
#: 0.1 s per pass over a 32-layer module's 1.9 MB, it tries the pattern at every position).
#: Printed constants are ASCII (SymPy's and Python's printers).
_CLASSES = bytes(48 if 48 <= k <= 57 else 101 if k in (69, 101) else 115 if k in (43, 45) else 46
                 for k in range(256))
_CANDIDATES = (b"0" * 309, b"e000", b"es000")


class Float64Overflow(OverflowError):
    """A constant of the generated module beyond float64 (``value``, as ``'1.00e+600'``)."""

    def __init__(self, value: str):
        super().__init__(f"the generated code has the constant {value}, beyond float64's range")
        self.value = value


def refuse_too_large(source: str) -> str:
    """``source``, or :class:`Float64Overflow` when a number in it is beyond float64."""
    value = too_large(source)
    if value is not None:
        raise Float64Overflow(value)
    return source


def candidate(source: str) -> bool:
    """Whether ``source`` has 309 ASCII digits in a row or an exponent of 3 (``e+300``, ``E999``):
    what a constant beyond float64 must contain."""
    classes = source.encode("utf-8", "surrogatepass").translate(_CLASSES)  # (C passes over megabytes)
    return any(c in classes for c in _CANDIDATES)


def too_large(source: str) -> str | None:
    """The first constant written in ``source`` that float64 cannot hold (``'1.00e+600'``; a division
    by such a number: ``'1.00e-600'``), else None."""
    if not candidate(source):
        return None
    for m in _NUMBER.finditer(source):
        text = m.group(1)
        if len(text) < 309 and "e" not in text.lower():  # below 1e308: every float64 holds it
            continue
        try:
            if math.isfinite(float(text)):
                continue
        except OverflowError:  # an integer literal beyond float64
            pass
        divisor = source[:m.start()].rstrip().endswith("/")  # 1/10**600: a constant below float64's range
        return f"{1 / Decimal(text) if divisor else Decimal(text):.2e}"
    return None
