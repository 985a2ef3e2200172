"""Lowering one einsum to BLAS-backed NumPy calls, with the path fixed at generation time.

``np.einsum(eq, *ops, optimize=path)`` re-plans its contraction on every call
(tens of microseconds of Python), and even a fixed path goes through that
machinery; for the small contractions of a per-sample network that overhead
dominates.  Here the pairwise path opt_einsum picks (on the concrete sizes) is
unrolled into one statement per step, and each step becomes the NumPy idiom
that implements it directly:

* no summed index            → a broadcast product ``a[:, :, None] * b[:, None, :]``;
* a matrix product           → ``a @ b.T`` (and the other transposes);
* a shared kept batch axis   → a batched ``@`` (``(a[:, None, :] @ b)[:, 0, :]``);
* anything else pairwise     → ``np.tensordot`` (+ ``transpose``);
* an index summed in one operand only → ``.sum(axis=…)`` first;
* a repeated index (a diagonal) → ``np.einsum(step, a, optimize=False)``.

The einsum a lowered statement implements is kept in a comment beside it, so the
generated kernel still reads as the derivation.

Example:
    >>> pair("ji", "Bi", "Bj", "W1", "x")
    'x @ W1.T'
    >>> pair("Bj", "Bi", "ji", "d", "x")
    'd.T @ x'
"""
from __future__ import annotations

import functools
import re

import opt_einsum


def _atom(code: str) -> str:
    """``code`` parenthesised unless it is a name, attribute or subscript chain."""
    return code if re.fullmatch(r"[\w.]+(\[[^\[\]]*\])*", code) else f"({code})"


def _transpose(code: str, src: str, dst: str) -> str:
    """``code`` (axes ``src``) with its axes reordered to ``dst`` (same letters)."""
    if src == dst:
        return code
    if len(src) == 2:
        return f"{_atom(code)}.T"
    return f"{_atom(code)}.transpose({', '.join(str(src.index(c)) for c in dst)})"


def _reduce(code: str, sub: str, keep: set) -> tuple[str, str]:
    """Sum the axes of ``code`` whose letters are not in ``keep``."""
    gone = [k for k, c in enumerate(sub) if c not in keep]
    if not gone:
        return code, sub
    axis = str(gone[0]) if len(gone) == 1 else str(tuple(gone))
    return f"{_atom(code)}.sum(axis={axis})", "".join(c for c in sub if c in keep)


def _expand(code: str, sub: str, dst: str) -> str:
    """``code`` (axes ``sub`` ⊆ ``dst``) transposed and given None axes to broadcast against ``dst``."""
    order = "".join(c for c in dst if c in sub)
    code = _transpose(code, sub, order)
    slots = [":" if c in sub else "None" for c in dst]
    while slots and slots[0] == "None":  # numpy adds missing leading axes itself
        slots.pop(0)
    while slots and slots[-1] == ":":
        slots.pop()
    return f"{_atom(code)}[{', '.join(slots)}]" if slots else code


def single(sub: str, out: str, a: str) -> str:
    """One operand: a diagonal, a sum over axes and/or a transpose."""
    if len(set(sub)) < len(sub):
        return f'np.einsum("{sub}->{out}", {a}, optimize=False)'
    code, sub = _reduce(a, sub, set(out))
    return _transpose(code, sub, out)


def pair(sa: str, sb: str, out: str, a: str, b: str) -> str:
    """Two operands, ``sa,sb->out``, as a BLAS-backed expression (see the module docstring)."""
    if len(set(sa)) < len(sa) or len(set(sb)) < len(sb):
        return f'np.einsum("{sa},{sb}->{out}", {a}, {b}, optimize=False)'
    a, sa = _reduce(a, sa, set(sb) | set(out))
    b, sb = _reduce(b, sb, set(sa) | set(out))
    summed = [c for c in sa if c in sb and c not in out]
    if not summed:  # outer / Hadamard product
        return f"{_expand(a, sa, out)} * {_expand(b, sb, out)}"
    shared = [c for c in out if c in sa and c in sb]
    left = [c for c in out if c in sa and c not in sb]
    right = [c for c in out if c in sb and c not in sa]
    if shared:
        if len(summed) > 1 or len(left) > 1 or len(right) > 1:
            return f'np.einsum("{sa},{sb}->{out}", {a}, {b}, optimize=False)'
        g, k = "".join(shared), summed[0]
        x = _transpose(a, sa, g + "".join(left) + k)
        y = _transpose(b, sb, g + k + "".join(right))
        if not left:
            x = f"{_atom(x)}[..., None, :]"
        if not right:
            y = f"{_atom(y)}[..., None]"
        code = f"{_atom(x)} @ {_atom(y)}"
        if not left or not right:
            code = f"({code})[..., {'0, :' if not left and right else '0' if left else '0, 0'}]"
        return _transpose(code, g + "".join(left) + "".join(right), out)
    if len(summed) == 1 and len(sa) <= 2 and len(sb) <= 2:
        k = summed[0]
        if not left or (right and out.index(right[0]) < out.index(left[0])):
            a, sa, b, sb, left, right = b, sb, a, sa, right, left  # the first output axis comes first
        x = _transpose(a, sa, "".join(left) + k)
        y = _transpose(b, sb, k + "".join(right))
        return f"{_atom(x)} @ {_atom(y)}"
    ka = tuple(sa.index(c) for c in summed)
    kb = tuple(sb.index(c) for c in summed)
    res = "".join(c for c in sa if c not in summed) + "".join(c for c in sb if c not in summed)
    return _transpose(f"np.tensordot({a}, {b}, axes=({list(ka)}, {list(kb)}))", res, out)


@functools.lru_cache(maxsize=None)
def steps(eq: str, shapes: tuple) -> tuple[tuple[tuple[int, ...], str], ...]:
    """opt_einsum's pairwise plan: ((operand positions popped, step einsum), …)."""
    _, info = opt_einsum.contract_path(eq, *shapes, shapes=True)
    return tuple((tuple(c[0]), c[2]) for c in info.contraction_list)


def plan(eq: str, shapes: tuple, codes: list[str], bind) -> str:
    """Statements for ``einsum(eq, *codes)`` (``bind(code) -> name`` emits an intermediate);
    returns the expression of the last step."""
    cur = list(codes)
    todo = steps(eq, shapes)
    for n, (pos, step) in enumerate(todo):
        ops = [cur.pop(p) for p in pos]
        ins, out = step.split("->")
        subs = ins.split(",")
        if len(ops) == 1:
            code = single(subs[0], out, ops[0])
        elif len(ops) == 2:
            code = pair(subs[0], subs[1], out, ops[0], ops[1])
        else:
            code = f'np.einsum("{step}", {", ".join(ops)}, optimize=True)'
        cur.append(code if n == len(todo) - 1 else bind(code))
    return cur[0]
