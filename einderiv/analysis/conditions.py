"""Conditions of a general formula: difference bounds ``lo ≤ x − y ≤ hi`` between layer symbols.

Each case of a layer template's general form holds for some members — ``k = n``, ``r > k``,
``1 ≤ l < k ≤ n``.  :func:`condition_of` reads the bounds every member satisfies off the
members themselves (keeping only those that do not grow with the depth), :func:`describe`
writes the ones the context does not already imply (a Floyd–Warshall closure decides), and
:func:`range_text` writes a single symbol's range (``k = 2..n``).

Example:
    >>> c = condition_of([{"k": 1, "n": 8}, {"k": 2, "n": 8}], ["k"])
    >>> c.holds({"k": 2, "n": 8}), c.holds({"k": 3, "n": 8})
    (True, False)
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

#: a bound farther from zero than this is an artifact of the reference depth, not a condition
MAX_BOUND = 3


@dataclass(frozen=True)
class Condition:
    """Difference bounds ``lo ≤ x − y ≤ hi`` between symbols and the constant ``0``."""

    bounds: tuple[tuple[str, str, int | None, int | None], ...]

    def holds(self, env: dict[str, int]) -> bool:
        for x, y, lo, hi in self.bounds:
            d = env.get(x, 0) - env.get(y, 0)
            if (lo is not None and d < lo) or (hi is not None and d > hi):
                return False
        return True


def condition_of(members: Sequence[dict[str, int]], symbols: Sequence[str], depth: str = "n") -> Condition:
    """The bounds every member satisfies, keeping only those that do not grow with the depth
    (``depth``: the depth's symbol, a key of every member)."""
    names = list(symbols) + [depth, "0"]
    out = []
    for x, y in itertools.combinations(names, 2):
        if x not in symbols and y not in symbols:
            continue
        ds = [m.get(x, 0) - m.get(y, 0) for m in members]
        lo, hi = min(ds), max(ds)
        lo = lo if abs(lo) <= MAX_BOUND else None
        hi = hi if abs(hi) <= MAX_BOUND else None
        if lo is not None or hi is not None:
            out.append((x, y, lo, hi))
    return Condition(tuple(out))


def closure(bounds, names):
    """Tightest upper bounds ub[x][y] ≥ x − y implied by ``bounds`` (Floyd–Warshall)."""
    inf = float("inf")
    ub = {x: {y: (0 if x == y else inf) for y in names} for x in names}
    for x, y, lo, hi in bounds:
        if hi is not None:
            ub[x][y] = min(ub[x][y], hi)
        if lo is not None:
            ub[y][x] = min(ub[y][x], -lo)
    for k in names:
        for i in names:
            for j in names:
                if ub[i][k] + ub[k][j] < ub[i][j]:
                    ub[i][j] = ub[i][k] + ub[k][j]
    return ub


def describe(cond: Condition, domain: Condition, symbols: Sequence[str], lead: str | None = None,
             depth: str = "n") -> str:
    """The bounds of ``cond`` that ``domain`` (and its other bounds) do not imply, as text.

    ``lead`` is the symbol written first in a comparison (``r > k`` for a block).
    """
    names = list(symbols) + [depth, "0"]
    atoms = []  # (x, y, op, c): x op y + c
    for x, y, lo, hi in cond.bounds:
        if lo is not None and lo == hi:
            atoms.append((x, y, "=", lo, (x, y, lo, hi)))
            continue
        if lo is not None:
            atoms.append((x, y, "≥", lo, (x, y, lo, None)))
        if hi is not None:
            atoms.append((x, y, "≤", hi, (x, y, None, hi)))
    kept = list(atoms)
    for a in list(atoms):
        others = [b[4] for b in kept if b is not a] + list(domain.bounds)
        ub = closure(others, names)
        x, y, op, c, _ = a
        implied = ((op in "≤=" and ub[x][y] <= c) or op == "≥") and ((op in "≥=" and -ub[y][x] >= c) or op == "≤")
        if implied:
            kept.remove(a)
    parts = [_atom_text(x, y, op, c, lead) for x, y, op, c, _ in kept]
    if len(symbols) == 2 and sorted(parts) == sorted([f"{symbols[0]} > {symbols[1]}", f"{symbols[0]} ≤ {depth}",
                                                      f"{symbols[1]} ≥ 1"]):
        return f"1 ≤ {symbols[1]} < {symbols[0]} ≤ {depth}"  # the paper's layer pair (k, l)
    return ", ".join(parts)


def _atom_text(x, y, op, c, lead) -> str:
    if y == "0":  # x op c
        return {"=": f"{x} = {c}", "≥": f"{x} ≥ {c}", "≤": f"{x} ≤ {c}"}[op]
    if op in "≤≥" and c == 0:
        return f"{x} {op} {y}"
    if op == "=":
        if c < 0 or (c == 0 and lead == y):
            x, y, c = y, x, -c
        return f"{x} = {y}" + (f"+{c}" if c else "")
    # x − y ≥ c  ⇔  x > y + (c−1);  x − y ≤ c  ⇔  x < y + (c+1)
    if op == "≥":
        rel, c = ">", c - 1
    else:
        rel, c = "<", c + 1
    if lead == y or (lead is None and c < 0):
        x, y, c, rel = y, x, -c, {"<": ">", ">": "<"}[rel]
    return f"{x} {rel} {y}" + (f"{c:+d}" if c else "")


def range_text(cond: Condition, sym: str, depth: str = "n") -> str | None:
    """``1..n`` or ``2..n`` when ``cond`` bounds ``sym`` between a constant and the depth (else None)."""
    lo = hi = None
    for x, y, blo, bhi in cond.bounds:
        if x == sym and y == depth and bhi is not None:
            hi = depth if bhi == 0 else f"{depth}{bhi:+d}"
        if x == sym and y == "0" and blo is not None:
            lo = str(blo)
    return f"{lo}..{hi}" if lo is not None and hi is not None else None
