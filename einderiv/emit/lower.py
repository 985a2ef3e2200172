"""Lowering one einsum to BLAS-backed steps, with the path fixed at generation time — as data.

``np.einsum(eq, *ops, optimize=path)`` re-plans its contraction on every call
(tens of microseconds of Python), and even a fixed path goes through that
machinery; for the small contractions of a per-sample network that overhead
dominates.  Here the pairwise path opt_einsum picks (on the concrete sizes) is
unrolled into one :class:`~einderiv.emit.kernel.Step` per pairwise contraction,
each lowered to the array operation that implements it directly, as a
:mod:`kernel <einderiv.emit.kernel>` expression (a printer writes it):

* no summed index            → a broadcast product (:class:`Mul` of :class:`Subscript` s with
  ``None`` axes): ``a[:, :, None] * b[:, None, :]``;
* a matrix product           → :class:`MatMul` (and :class:`Transpose`): ``a @ b.T``;
* a shared kept batch axis   → a batched :class:`MatMul`: ``(a[:, None, :] @ b)[:, 0, :]``;
* anything else pairwise     → :class:`TensorDot` (+ :class:`Transpose`);
* an index summed in one operand only → :class:`SumAxes` first;
* a repeated index (a diagonal) → a one-step :class:`Einsum` (``optimize=False``).

Example (written by the NumPy printer):
    >>> pair("ji", "Bi", "Bj", Var("W1"), Var("x"))          # x @ W1.T
    MatMul(a=Var(name='x'), b=Transpose(x=Var(name='W1'), perm=(1, 0)))
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import opt_einsum

from .kernel import Step
from .kernel_arrays import (ArrayExpr, Einsum, MatMul, Paren, SumAxes, Subscript, TensorDot, Transpose, Var, atom,
                            mul)


def _transpose(x: ArrayExpr, src: str, dst: str) -> ArrayExpr:
    """``x`` (axes ``src``) with its axes reordered to ``dst`` (same letters)."""
    if src == dst:
        return x
    return Transpose(atom(x), tuple(src.index(c) for c in dst))


def _reduce(x: ArrayExpr, sub: str, keep: set) -> tuple[ArrayExpr, str]:
    """Sum the axes of ``x`` whose letters are not in ``keep``."""
    gone = tuple(k for k, c in enumerate(sub) if c not in keep)
    if not gone:
        return x, sub
    return SumAxes(atom(x), gone), "".join(c for c in sub if c in keep)


def _expand(x: ArrayExpr, sub: str, dst: str) -> ArrayExpr:
    """``x`` (axes ``sub`` ⊆ ``dst``) transposed and given None axes to broadcast against ``dst``."""
    x = _transpose(x, sub, "".join(c for c in dst if c in sub))
    slots = [":" if c in sub else None for c in dst]
    while slots and slots[0] is None:  # numpy adds missing leading axes itself
        slots.pop(0)
    while slots and slots[-1] == ":":
        slots.pop()
    return Subscript(atom(x), tuple(slots)) if slots else x


def single(sub: str, out: str, a: ArrayExpr) -> ArrayExpr:
    """One operand: a diagonal, a sum over axes and/or a transpose."""
    if len(set(sub)) < len(sub):
        return Einsum(f"{sub}->{out}", (a,), False)
    x, sub = _reduce(a, sub, set(out))
    return _transpose(x, sub, out)


def pair(sa: str, sb: str, out: str, a: ArrayExpr, b: ArrayExpr) -> ArrayExpr:
    """Two operands, ``sa,sb->out``, as a BLAS-backed expression (see the module docstring)."""
    if len(set(sa)) < len(sa) or len(set(sb)) < len(sb):
        return Einsum(f"{sa},{sb}->{out}", (a, b), False)
    a, sa = _reduce(a, sa, set(sb) | set(out))
    b, sb = _reduce(b, sb, set(sa) | set(out))
    summed = [c for c in sa if c in sb and c not in out]
    if not summed:  # outer / Hadamard product
        return mul((_expand(a, sa, out), _expand(b, sb, out)))
    shared = [c for c in out if c in sa and c in sb]
    left = "".join(c for c in out if c in sa and c not in sb)
    right = "".join(c for c in out if c in sb and c not in sa)
    if shared:
        if len(summed) > 1 or len(left) > 1 or len(right) > 1:
            return Einsum(f"{sa},{sb}->{out}", (a, b), False)
        g, k = "".join(shared), summed[0]
        x = _transpose(a, sa, g + left + k)
        y = _transpose(b, sb, g + k + right)
        if not left:
            x = Subscript(atom(x), ("...", None, ":"))
        if not right:
            y = Subscript(atom(y), ("...", None))
        prod: ArrayExpr = MatMul(atom(x), atom(y))
        if not left or not right:
            prod = Subscript(Paren(prod), ("...", 0, ":") if not left and right else ("...", 0) if left
                             else ("...", 0, 0))
        return _transpose(prod, g + left + right, out)
    if len(summed) == 1 and len(sa) <= 2 and len(sb) <= 2:
        k = summed[0]
        if not left or (right and out.index(right[0]) < out.index(left[0])):
            a, sa, b, sb, left, right = b, sb, a, sa, right, left  # the first output axis comes first
        return MatMul(atom(_transpose(a, sa, left + k)), atom(_transpose(b, sb, k + right)))
    ka = tuple(sa.index(c) for c in summed)
    kb = tuple(sb.index(c) for c in summed)
    res = "".join(c for c in sa if c not in summed) + "".join(c for c in sb if c not in summed)
    return _transpose(TensorDot(a, b, (ka, kb)), res, out)


@functools.lru_cache(maxsize=None)
def steps(eq: str, shapes: tuple) -> tuple[tuple[tuple[int, ...], str], ...]:
    """opt_einsum's pairwise plan: ((operand positions popped, step einsum), …)."""
    _, info = opt_einsum.contract_path(eq, *shapes, shapes=True)
    return tuple((tuple(c[0]), c[2]) for c in info.contraction_list)


@functools.lru_cache(maxsize=None)
def path(eq: str, shapes: tuple) -> tuple:
    """opt_einsum's path for ``eq`` on ``shapes``, for a literal ``einsum(..., optimize=path)``."""
    found, _ = opt_einsum.contract_path(eq, *shapes, shapes=True)
    return tuple(tuple(p) for p in found)


def _renamed(e, names: dict):
    """Array expression ``e`` with the variables of ``names`` renamed."""
    if isinstance(e, Var):
        return Var(names.get(e.name, e.name))
    if isinstance(e, tuple):
        return tuple(_renamed(x, names) for x in e)
    if not dataclasses.is_dataclass(e):
        return e
    return type(e)(*(_renamed(getattr(e, f.name), names) for f in dataclasses.fields(e)))


def plan(eq: str, shapes: tuple, operands: Sequence[ArrayExpr],
         fresh: Callable[[], str]) -> tuple[tuple[Step, ...], ArrayExpr]:
    """The steps of ``einsum(eq, *operands)`` (``fresh()`` names each intermediate) and the
    contraction's value, the expression of the last step.  A step equal to an earlier one
    (``Σ_c s[c] J[c,j] · Σ_k s[k] J[k,j]``: the same product twice) is not computed again."""
    cur = list(operands)
    todo = steps(eq, shapes)
    out, seen, same = [], {}, {}
    for n, (pos, step) in enumerate(todo):
        ops = [cur.pop(p) for p in pos]
        ins, res = step.split("->")
        subs = ins.split(",")
        if len(ops) == 1:
            expr = single(subs[0], res, ops[0])
        elif len(ops) == 2:
            expr = pair(subs[0], subs[1], res, ops[0], ops[1])
        else:
            expr = Einsum(step, tuple(ops), True)
        if same:  # (a rebuild of every step for nothing, when no step repeated)
            expr = _renamed(expr, same)
        last = n == len(todo) - 1
        if not last and expr in seen:
            same_as = seen[expr]
            cur.append(Var(same_as))
            continue
        out.append(Step(step, expr, None if last else fresh()))
        if not last:
            seen[expr] = out[-1].target
        cur.append(expr if last else Var(out[-1].target))
    return tuple(out), cur[0]
