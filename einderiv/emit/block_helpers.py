"""The helper of a per-block Hessian, ``hessian(params, data, blocks=None)``: plain Python, the same
in the NumPy, torch and JAX modules (each printer merges it into its helpers).

``blocks`` is a list of keys ``(a, b)`` of parameter names (a tuple of such tuples under
``jax.jit(hessian, static_argnames="blocks")``, where it must be hashable); ``None`` asks for every
ordered pair.  ``_hessian_plan`` checks it once per distinct request (the plan is kept: a call
at small sizes costs microseconds, and its bookkeeping would be a visible part of them) and gives

* the keys asked for (repeats dropped), which the call returns, in the module's order;
* the blocks to compute, each (a, b) with a at or before b in ``PARAMS`` order (the block (b, a)
  is its transpose); the generated body computes a tensor only where one of the blocks that read
  it is among them (:mod:`einderiv.emit.straight`);
* the rows (first, end) of each parameter the keys name in the NumPy module's Hessian buffer:
  those parameters in ``PARAMS`` order, each flattened in C order (every parameter by default).
"""
from __future__ import annotations

__all__ = ["BLOCK_HELPERS"]

BLOCK_HELPERS = {
    "_hessian_plan": '''_PLANS = {}


def _hessian_plan(blocks):
    """(keys, todo, rows) of a Hessian call: the keys (a, b) asked for (every ordered pair of PARAMS
    names when blocks is None; repeats dropped), the blocks computed (each (a, b) with a at or
    before b in PARAMS order; (b, a) is its transpose), and the rows (first, end) of each parameter
    the keys name in the Hessian buffer (those parameters in PARAMS order, each flattened)."""
    try:
        request = None if blocks is None else tuple(tuple(k) if isinstance(k, list) else k for k in blocks)
        plan = _PLANS.get(request)
    except TypeError:  # an unhashable key: checked below
        request, plan = (), None
    if plan is not None:
        return plan
    names = list(PARAMS)
    if blocks is None:
        keys = [(a, b) for a in names for b in names]
    else:
        keys = []
        for key in blocks:
            if not (isinstance(key, (tuple, list)) and len(key) == 2
                    and all(isinstance(k, str) and k in PARAMS for k in key)):
                raise KeyError(f"hessian block {key!r}: a block is a pair (a, b) of names in {names}, "
                               f"and blocks a list of such pairs")
            if tuple(key) not in keys:
                keys.append(tuple(key))
    todo = {(a, b) if names.index(a) <= names.index(b) else (b, a) for a, b in keys}
    named = {p for key in keys for p in key}
    rows, n = {}, 0
    for p, shape in PARAMS.items():
        if p in named:
            size = 1
            for k in shape:
                size *= k
            rows[p] = (n, n + size)
            n += size
    plan = (keys, todo, rows)
    if request != ():
        _PLANS[request] = plan
    return plan''',
}
