"""The symbols a general form writes its labels with, and the terms it writes.

A layer template (``depth n``, a weight per layer) writes a definition's own layers ``k``,
``l``, a block's layers ``k``, ``r``, a further layer summed over ``m``, and the depth ``n``
(:data:`LAYERS`).  A recurrence over ``t = 1..T`` with ``T`` symbolic (``depth T``, weights
shared over the steps) writes a definition's own steps ``t``, ``τ``, ``ρ``, sums over steps
with the same letters (and ``κ``), and the length ``T`` (:func:`sequence_labels`).  Never ``σ``:
the documents write the logistic function so.

A :class:`GeneralTerm` is one term of a general block: alone, a sum over one further layer
(``over`` = (lo, hi), the A'' terms of Eq. 9), or a sum over steps (``steps`` with the
difference bounds ``cond`` they range over: ``2 ≤ τ < t ≤ T``); :func:`expand` unrolls it
at concrete labels.

Example:
    >>> from einderiv.ir import Name, Ref, Sym
    >>> t = GeneralTerm(Ref(Name("h", (Sym("t"),)), ()), steps=("t",),
    ...                 cond=Condition((("t", "0", 1, None), ("t", "T", None, 0))))
    >>> [str(e.name) for e in expand([t], {"T": 3}, sequence_labels("T"))]
    ['h(1)', 'h(2)', 'h(3)']
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence

from ..errors import EinderivError
from ..ir import Expr, Label
from .anchors import MAX_OFFSET, MaxOf, eval_label, instantiate
from .conditions import Condition, closure

class FoldError(EinderivError):
    """The general form does not reproduce the unrolled derivation (or cannot be written)."""


#: lengths at which a recurrence's general form is instantiated and compared with a fresh derivation
STEP_CHECKS = (1, 2, 3, 4, 5, 6)


@dataclass(frozen=True)
class Labels:
    """The symbols of a general form: the depth (or length), a definition's own labels, a block's
    parameters' labels, and the symbols of sums over steps (none for a layer template)."""

    depth: str = "n"
    defs: tuple[str, ...] = ("k", "l", "q")
    blocks: tuple[str, ...] = ("k", "r", "q")
    steps: tuple[str, ...] = ()
    what: str = "depth"  # what the depth counts, in words: "depth" (layers) or "length" (steps)

    @property
    def reserved(self) -> tuple[str, ...]:
        """Letters no index may take in the printed form."""
        return tuple(dict.fromkeys(self.defs + self.blocks + self.steps + (self.depth, "m")))


#: a layer template's symbols
LAYERS = Labels()


def sequence_labels(depth: str) -> Labels:
    """A recurrence's symbols, its length called ``depth`` (``T``)."""
    return Labels(depth, ("t", "τ", "ρ"), ("k", "r", "q"), ("t", "τ", "ρ", "κ"), "length")


@dataclass
class GeneralTerm:
    """A term of a block: alone; with ``over`` = (lo, hi) Σ_{m=lo}^{hi} of ``term``; with ``steps``
    the sum of ``term`` over the points of ``cond`` (its labels use the ``steps`` symbols)."""

    term: Expr
    over: tuple[Label | MaxOf, Label | MaxOf] | None = None
    steps: tuple[str, ...] = ()
    cond: Condition | None = None


def points(steps: Sequence[str], cond: Condition, env: dict[str, int], labels: Labels) -> Iterator[dict]:
    """The concrete labels of a sum over steps at ``env`` (each step in 0..length + MAX_OFFSET)."""
    top = env[labels.depth] + MAX_OFFSET
    for values in itertools.product(range(0, top + 1), repeat=len(steps)):
        point = {**env, **dict(zip(steps, values))}
        if cond.holds(point):
            yield point


def expand(terms: Sequence[GeneralTerm], env: dict[str, int], labels: Labels = LAYERS) -> list[Expr]:
    """The unrolled terms of a general block at ``env`` (a sum over an empty range gives none)."""
    out = []
    for gt in terms:
        if gt.steps:
            out.extend(instantiate(gt.term, point) for point in points(gt.steps, gt.cond, env, labels))
        elif gt.over is None:
            out.append(instantiate(gt.term, env))
        else:
            lo, hi = (eval_label(x, env) for x in gt.over)
            out.extend(instantiate(gt.term, {**env, "m": m}) for m in range(lo, hi + 1))
    return out


@dataclass(frozen=True)
class StepRange:
    """One step of a sum over steps: ``symbol`` from the largest of ``lows`` to the smallest of
    ``highs``, each bound ``(y, c)`` standing for y + c (y a step before, the length, or "0")."""

    symbol: str
    lows: tuple[tuple[str, int], ...]
    highs: tuple[tuple[str, int], ...]


def _tightest(bounds: list, implies) -> tuple[tuple[str, int], ...]:
    """The bounds no other implies (``implies(a, b)``: bound a is always at least as tight as b)."""
    keep = []
    for k, b in enumerate(bounds):
        if not any(j != k and implies(a, b) and (not implies(b, a) or j < k) for j, a in enumerate(bounds)):
            keep.append((b[0], int(b[1])))
    return tuple(keep)


def step_ranges(steps: Sequence[str], cond: Condition, labels: Labels) -> tuple[StepRange, ...]:
    """A sum over steps as nested ranges, each step bounded by constants, the length and the steps
    before it, tightened by the others (τ ≥ 2 and τ < t give t ≥ 3): Σ_{t=3..T} Σ_{τ=2..t-1} is
    ``(StepRange("t", (("0", 3),), (("T", 0),)), StepRange("τ", (("0", 2),), (("t", -1),)))``.

    >>> c = Condition((("t", "0", 2, None), ("t", "T", None, 0), ("τ", "0", 2, None), ("τ", "t", None, -1)))
    >>> [(r.symbol, r.lows, r.highs) for r in step_ranges(("t", "τ"), c, sequence_labels("T"))]
    [('t', (('0', 3),), (('T', 0),)), ('τ', (('0', 2),), (('t', -1),))]
    """
    names = list(steps) + [labels.depth, "0"]
    ub = closure(cond.bounds, names)
    out = []
    for k, s in enumerate(steps):
        before = ["0", labels.depth] + list(steps[:k])
        lows = [(y, -ub[y][s]) for y in before if ub[y][s] != float("inf")]
        highs = [(y, ub[s][y]) for y in before if ub[s][y] != float("inf")]
        # keep the bounds no other bound implies (a lower y' + c' ≥ y + c always: y' − y ≥ c − c');
        # of two that imply each other (t = T), the first: a constant, the length, an earlier step
        lows = _tightest(lows, lambda a, b: -ub[b[0]][a[0]] >= b[1] - a[1])
        highs = _tightest(highs, lambda a, b: ub[a[0]][b[0]] <= b[1] - a[1])
        if not lows or not highs:
            raise FoldError(f"the sum over {s} has no {'lower' if not lows else 'upper'} bound")
        out.append(StepRange(s, lows, highs))
    return tuple(out)


def loop_points(ranges: Sequence[StepRange], env: dict[str, int]) -> Iterator[dict]:
    """The points nested loops over ``ranges`` visit at ``env`` (the length and any outer labels):
    what a generated module's ``for t in range(lo, hi + 1)`` loops run, in their order.

    >>> c = Condition((("t", "0", 2, None), ("t", "T", None, 0), ("τ", "0", 2, None), ("τ", "t", None, -1)))
    >>> [(p["t"], p["τ"]) for p in loop_points(step_ranges(("t", "τ"), c, sequence_labels("T")), {"T": 4})]
    [(3, 2), (4, 2), (4, 3)]
    """
    if not ranges:
        yield dict(env)
        return
    r, rest = ranges[0], ranges[1:]

    def value(y: str, c: int) -> int:
        return c if y == "0" else env[y] + c

    lo = max(value(y, c) for y, c in r.lows)
    hi = min(value(y, c) for y, c in r.highs)
    for v in range(lo, hi + 1):
        yield from loop_points(rest, {**env, r.symbol: v})
