"""Lowering of index arithmetic (:class:`~einderiv.ir.Window`) to strided views.

``x^{s·t+a}`` is ``S^u_{t,a} x^u`` in the IR.  Multiplying by S as a dense
array would be the convolution's doubly block circulant matrix of the paper's
§2.2; the generated code never does that.  A window contracted with exactly one
tensor on its ``u`` axis becomes a *view* of that tensor with ``u`` split into
(position t, tap a) — a :class:`~einderiv.emit.kernel.WindowView` (NumPy:
``sliding_window_view`` plus a strided slice, no copy) — and the einsum then
runs on the view:

    K^o_a x^{t+a}   →   einsum("oa,Bta->Bot", K, _window_view(x, 3, 1, 1, 4))

A window whose ``u`` is a result axis that no other operand carries (the
adjoint of a convolution's *input*, which stacked convolutions' gradients need)
is a scatter: the rest is contracted to (…, t, a, …) and added back onto u one
slice per tap (:func:`scatter_target`, ``_shift_scatter``).  Any other window
whose ``u`` is not carried by exactly one tensor is lowered to a small explicit
0/1 array of shape (U, T, A) — a :class:`~einderiv.emit.kernel.SelectionArray`,
the selection tensor itself, not the circulant matrix.

A window with dilation, a constant offset, no tap index or reads outside the axis
(``x^{t-2a}``, ``x^{t+1}`` on a ``padded`` tensor) becomes a :class:`ShiftView`
(NumPy: ``np.pad`` with the zeros the reads need, ``sliding_window_view`` over
dilation·(A−1)+1 entries, every dilation-th taken) or a :class:`ShiftArray`.

:func:`fold` is applied to the operands of every einsum by
:meth:`einderiv.emit.kernel_lower.Scope.contract`; :class:`WinVal` marks a window operand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..ir import Index, Window
from .kernel_arrays import SelectionArray, ShiftArray, ShiftView, Var, WindowView
from .kernel_context import Val


@dataclass(frozen=True)
class WinVal:
    """A window operand, waiting for :func:`fold` to fold it into its neighbour."""

    win: Window
    batched: bool = False

    @property
    def idx(self):
        return self.win.free


def show(w: Window, letter) -> str:
    """``S[u,t,a]`` for comments (``S2[u,t,a]`` with stride 2, ``S[d2,-1][u,t,a]`` in general)."""
    mark = w.mark()
    return f"S{mark if w.plain else '[' + mark + ']' if mark else ''}[{','.join(letter(i) for i in w.free)}]"


def scatter_target(ops: list, out: tuple):
    """A window whose ``u`` is an output axis no other operand carries, its t and a summed against
    the other operands: the adjoint of a convolution's input, ``Σ_{t,a} g_{t,a} S^u_{t,a}``.  It is
    computed by contracting the rest to ``(…, t, a, …)`` (t and a where u is) and scattering that
    back onto u (``_shift_scatter``, the transpose of the view: one slice per tap), never through
    the U×T×A selection array.  Returns (u's place in ``out``, the window, the other operands)."""
    wins = [v for v in ops if isinstance(v, WinVal)]
    for v in wins:
        w, rest = v.win, [x for x in ops if x is not v]
        carried = {ix for x in rest if not isinstance(x, WinVal) for ix in x.idx}
        shared = any(set(w.free) & set(x.win.free) for x in wins if x is not v)
        if (out.count(w.u) == 1 and w.u not in carried and not shared
                and all(ix not in out and ix in carried for ix in w.free[1:])):
            return out.index(w.u), w, rest
    return None


def padding(w: Window, n: int, count: int, size: int) -> tuple[int, int]:
    """The zeros a view needs before and after an axis of ``n`` entries so that every read
    ``stride·t + dilation·tap + offset`` (t < count, tap < size) falls inside: (0, 0) for valid padding."""
    span = w.dilation * (size - 1)
    lo = w.offset + min(0, span)
    hi = w.stride * (count - 1) + w.offset + max(0, span)
    return max(0, -lo), max(0, hi - (n - 1))


def fold(ops: list, out: tuple, dim: Callable[[Index], int], bind: Callable[[str, object], str]) -> list:
    """``ops`` with every window folded into the one operand carrying its ``u`` (a strided view),
    or, where there is no such operand, replaced by an explicit 0/1 selection array
    (``bind(hint, expr)`` binds a new variable and returns its name)."""
    if not any(isinstance(v, WinVal) for v in ops):
        return ops
    wins = [v.win for v in ops if isinstance(v, WinVal)]
    rest = [v for v in ops if not isinstance(v, WinVal)]
    for n, w in enumerate(wins):
        carriers = [k for k, v in enumerate(rest) if w.u in v.idx]
        others = [x for x in wins[n + 1:] if w.u in x.free]
        size = dim(w.a) if w.a is not None else 0  # 0: no tap axis (x^{t+1})
        dims = (dim(w.u), dim(w.t), size)
        lo, hi = padding(w, dims[0], dims[1], max(size, 1))
        plain = w.plain and lo == hi == 0  # every read inside: the valid window's view
        if len(carriers) == 1 and not others and w.u not in out:
            v = rest[carriers[0]]
            if v.idx.count(w.u) == 1 and w.t not in v.idx and (w.a is None or w.a not in v.idx):
                axis = v.idx.index(w.u) + (1 if v.batched else 0)
                idx = tuple(w.t if i == w.u else i for i in v.idx) + w.free[2:]
                hint = v.expr.name + "_win" if isinstance(v.expr, Var) else "win"
                if plain:
                    view = WindowView(v.expr, dims[2], axis, w.stride, dims[1])
                else:
                    view = ShiftView(v.expr, size, axis, w.stride, dims[1], w.dilation, w.offset, lo, hi)
                rest[carriers[0]] = Val(Var(bind(hint, view)), idx, v.batched)
                continue
        if plain:
            sel = SelectionArray(dims[0], dims[1], dims[2], w.stride)
        else:
            sel = ShiftArray(dims[0], dims[1], size, w.stride, w.dilation, w.offset)
        rest.append(Val(Var(bind("window", sel)), w.free, False))
    return rest
