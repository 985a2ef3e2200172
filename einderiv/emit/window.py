"""Lowering of index arithmetic (:class:`~einderiv.ir.Window`) to strided views.

``x^{s·t+a}`` is ``S^u_{t,a} x^u`` in the IR.  Multiplying by S as a dense
array would be the convolution's doubly block circulant matrix of the paper's
§2.2; the generated code never does that.  A window contracted with exactly one
tensor on its ``u`` axis becomes a *view* of that tensor with ``u`` split into
(position t, tap a) — ``np.lib.stride_tricks.sliding_window_view`` plus a
strided slice, no copy — and the einsum then runs on the view:

    K^o_a x^{t+a}   →   einsum("oa,Bta->Bot", K, _window_view(x, 3, 1, 1, 4))

A window whose ``u`` is not carried by exactly one tensor (a derivative with
respect to a convolution's *input*, which only stacked convolutions' Hessian
blocks need) is lowered to a small explicit 0/1 array of shape (U, T, A) —
the selection tensor itself, not the circulant matrix.

:func:`apply` is called by :meth:`einderiv.emit.numpy._Scope.contract` on the
operands of every einsum; :class:`WinVal` marks a window operand.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Window

HELPERS = {
    "_window_view": '''def _window_view(a, size, axis, stride, count):
    """View of `a` with axis `axis` (positions u) split into (t, tap), the tap axis last:
    view[..., t, ..., tap] = a[..., stride*t + tap, ...] for t < count (valid padding).  No copy."""
    v = np.lib.stride_tricks.sliding_window_view(a, size, axis=axis)
    return v[(slice(None),) * axis + (slice(0, stride * (count - 1) + 1, stride),)]''',
    "_window_array": '''def _window_array(n, count, size, stride):
    """S[u, t, tap] = 1 where u = stride*t + tap: the selection tensor of index arithmetic as a
    small 0/1 array, for a window not contracted with one tensor on u (never the circulant matrix)."""
    s = np.zeros((n, count, size))
    t, k = np.meshgrid(np.arange(count), np.arange(size), indexing="ij")
    s[stride * t + k, t, k] = 1.0
    return s''',
}


@dataclass(frozen=True)
class WinVal:
    """A window operand, waiting for :func:`apply` to fold it into its neighbour."""

    win: Window
    code: str = "S"
    batched: bool = False

    @property
    def idx(self):
        return (self.win.u, self.win.t, self.win.a)


def show(w: Window, letter) -> str:
    """``S[u,t,a]`` for comments (``S2[u,t,a]`` with stride 2)."""
    return f"S{w.stride if w.stride != 1 else ''}[{letter(w.u)},{letter(w.t)},{letter(w.a)}]"


def apply(scope, ops: list, out: tuple) -> list:
    """``ops`` with every window folded into the one operand carrying its ``u`` (a strided view),
    or, where there is no such operand, replaced by an explicit 0/1 selection array."""
    if not any(isinstance(v, WinVal) for v in ops):
        return ops
    from .numpy import Val

    wins = [v.win for v in ops if isinstance(v, WinVal)]
    rest = [v for v in ops if not isinstance(v, WinVal)]
    for n, w in enumerate(wins):
        carriers = [k for k, v in enumerate(rest) if w.u in v.idx]
        others = [x for x in wins[n + 1:] if w.u in (x.u, x.t, x.a)]
        dims = (scope.g.dim(w.u), scope.g.dim(w.t), scope.g.dim(w.a))
        if len(carriers) == 1 and not others and w.u not in out:
            v = rest[carriers[0]]
            if v.idx.count(w.u) == 1 and w.t not in v.idx and w.a not in v.idx:
                scope.g.helpers.add("_window_view")
                axis = v.idx.index(w.u) + (1 if v.batched else 0)
                code = f"_window_view({v.code}, {dims[2]}, {axis}, {w.stride}, {dims[1]})"
                idx = tuple(w.t if i == w.u else i for i in v.idx) + (w.a,)
                hint = v.code + "_win" if v.code.isidentifier() else "win"
                rest[carriers[0]] = Val(scope.bind(hint, code), idx, v.batched)
                continue
        scope.g.helpers.add("_window_array")
        code = f"_window_array({dims[0]}, {dims[1]}, {dims[2]}, {w.stride})"
        rest.append(Val(scope.bind("window", code), (w.u, w.t, w.a), False))
    return rest
