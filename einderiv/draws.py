"""Random points for the numeric check: parameters scaled so the signal survives depth, data in
its declared domain, away from the kinks of non-smooth functions.

**Draws that keep the signal** (:func:`scales`).  A parameter that a definition contracts with a
tensor that is not a parameter (``W^j_i x^i``: over ``i``) is drawn with variance 1/fan-in —
2/fan-in in a network with ReLU (He's scaling), whose kinks halve it — where fan-in is the product
of the contracted sizes (the largest over its uses), so that the signal neither vanishes nor
explodes with depth; any other parameter (a bias, a gain) is drawn with scale 0.5.  A draw in
which no sample passes every ReLU layer (some argument positive in each; a layer whose arguments
are all negative zeroes everything after it) is repeated, as one near a kink is.

**Data** is drawn in its declared domain (:func:`data_values`: ``positive``, ``probability``,
``onehot``).

**Matrix functions** (:func:`matrix_args`): a weight or data tensor that is the argument of
``logdet``, ``det`` or ``inv`` is drawn near the identity, I + E with E's entries N(0, (0.2/√n)²)
(its eigenvalues within about 0.4 of 1: invertible, det > 0, condition number below about 3.5);
any matrix argument, a defined one too (``S = L Lᵀ + εI``), counts as a kink (:func:`kinks`) where its
reciprocal condition number is below :data:`KINK_MARGIN`, or, for ``logdet``, where det ≤ 0.

**Non-smooth places** (:func:`kinks`): if an argument of a non-smooth function is within
:data:`KINK_MARGIN` of a kink (ReLU's 0, a ``where`` threshold), or the two best entries along a
``max_k``/``min_k`` axis are that close, the draw is repeated (up to :data:`TRIES` times; the
caller's report notes it if that never succeeds).
"""
from __future__ import annotations

import math

import numpy as np
import sympy

from .frontend.builtins import ARG
from .ir import MATRIX_NODES, Apply, Const, MatDet, Max, Prod, Ref, walk

KINK_MARGIN = 1e-3
#: random points tried for one draw, for one away from kinks with a live sample (a forward pass each)
TRIES = 500
NON_SMOOTH = (sympy.Max, sympy.Min, sympy.Abs, sympy.Heaviside, sympy.Piecewise, sympy.sign)


def kink_points(body: sympy.Expr) -> list[sympy.Expr]:
    """Expressions in the function's placeholders that are zero where ``body`` has a kink:
    ``Max(a, b)`` → a − b, ``Abs(a)`` → a, a ``Piecewise`` condition ``a < b`` → a − b."""
    out = []
    for e in sympy.preorder_traversal(body):
        if isinstance(e, (sympy.Max, sympy.Min)) and len(e.args) == 2:
            out.append(e.args[0] - e.args[1])
        elif isinstance(e, (sympy.Abs, sympy.Heaviside, sympy.sign)):
            out.append(e.args[0])
        elif isinstance(e, sympy.Piecewise):
            conditions = (sympy.sympify(c) for _, c in e.args)
            out.extend(r.lhs - r.rhs for c in conditions for r in c.atoms(sympy.core.relational.Relational))
    return out


def kinks(derivation) -> list[tuple]:
    """Where the drawn values must keep away from a kink, as ``(what, distance)``: ``distance(t)``
    of the forward values ``t`` is the least distance to one (a non-smooth function's argument
    from its kink points; the best and second-best entries along a ``max_k``/``min_k`` axis)."""
    out: list[tuple] = []

    def visit(e):
        if isinstance(e, Apply) and derivation.table.body(e.fn.name).has(*NON_SMOOTH) \
                and all(isinstance(a, (Ref, Const)) for a in e.args):
            names = [str(a.name) if isinstance(a, Ref) else a.value for a in e.args]
            for point in kink_points(derivation.table.body(e.fn.name)):
                f = sympy.lambdify(ARG[:len(names)], point, "numpy")
                out.append((names[0] if len(names) == 1 else tuple(names),
                            lambda t, f=f, names=names: f(*(t[n] if isinstance(n, str) else float(n)
                                                            for n in names))))
        if isinstance(e, Max) and isinstance(e.arg, Ref):
            name, pos, rank = str(e.arg.name), e.arg.indices.index(e.over), len(e.arg.indices)
            out.append(((name, e.over.name), lambda t, name=name, pos=pos, rank=rank: gap(t[name], pos, rank)))
        if isinstance(e, MATRIX_NODES) and isinstance(e.arg, Ref):
            name, logdet = str(e.arg.name), isinstance(e, MatDet) and e.kind == "logdet"
            out.append((name, lambda t, name=name, logdet=logdet: conditioning(t[name], logdet)))
        for c in e.children():
            visit(c)

    for n in derivation.nodes:
        visit(n.expr)
    return out


def conditioning(a: np.ndarray, logdet: bool) -> np.ndarray:
    """The reciprocal condition number of each square matrix on the last two axes of ``a`` (0 far
    from invertible); for ``logdet`` 1e-300 where det ≤ 0 (NaN there: no draw keeps it)."""
    a = np.asarray(a, dtype=float)
    s = np.linalg.svd(a, compute_uv=False)
    r = s[..., -1] / np.maximum(s[..., 0], 1e-300)
    if logdet:
        r = np.where(np.linalg.slogdet(a)[0] > 0, r, 1e-300)
    return np.maximum(r, 1e-300)


def matrix_args(derivation) -> list[str]:
    """Weights and data that are the argument of a matrix function (``logdet(A)``, ``inv(A)^i_j``)."""
    declared = {str(t.name) for t in derivation.network.tensors}
    out: list[str] = []
    for n in derivation.nodes:
        for e in walk(n.expr):
            if isinstance(e, MATRIX_NODES) and isinstance(e.arg, Ref) and str(e.arg.name) in declared \
                    and str(e.arg.name) not in out:
                out.append(str(e.arg.name))
    return out


def near_identity(rng, shape: tuple) -> np.ndarray:
    """I + E on the last two axes, E's entries N(0, (0.2/√n)²): invertible with det > 0."""
    n = shape[-1]
    return np.eye(n) + rng.normal(0.0, 0.2 / math.sqrt(n), shape)


def gap(a: np.ndarray, pos: int, rank: int) -> np.ndarray:
    """The gap between the two largest and the two smallest entries along axis ``pos`` of a
    (possibly batched) tensor of ``rank`` indices: a max or min switches maximiser there."""
    a = np.sort(np.asarray(a), axis=a.ndim - rank + pos)
    if a.shape[a.ndim - rank + pos] < 2:
        return np.full(1, np.inf)
    a = np.moveaxis(a, a.ndim - rank + pos, 0)
    return np.minimum(a[-1] - a[-2], a[1] - a[0])


def data_values(rng, shape: tuple, role: str, domain: str | None) -> np.ndarray:
    """Random data of ``shape`` in its declared domain: ``positive`` log-normal (e^N(0, 0.5²)),
    ``probability`` rows that sum to 1 along the last axis (each entry at least 0.05 before
    normalising), ``onehot`` one 1 per row; otherwise labels uniform on [0, 1), inputs N(0, 1)."""
    if domain == "positive":
        return np.exp(rng.normal(0.0, 0.5, shape))
    if domain == "probability":
        u = rng.uniform(0.05, 1.0, shape)
        return u / u.sum(axis=-1, keepdims=True)
    if domain == "onehot":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    return rng.uniform(0.0, 1.0, shape) if role == "label" else rng.normal(0.0, 1.0, shape)


def relu_args(derivation) -> list[str]:
    """Nodes that are arguments of ReLU: a sample whose arguments of one are all negative is dead."""
    out: list[str] = []
    for n in derivation.nodes:
        for e in walk(n.expr):
            if isinstance(e, Apply) and e.fn.name == "relu":
                out.extend(str(a.name) for a in e.args if isinstance(a, Ref) and str(a.name) not in out)
    return out


def scales(derivation, shapes: dict) -> dict[str, float]:
    """The standard deviation of each parameter's draw: √(1/fan-in), √(2/fan-in) in a network with
    ReLU, for a parameter contracted with something that is not a parameter (fan-in: the product
    of the contracted sizes, the largest over its uses); 0.5 for any other."""
    fan: dict[str, int] = {}
    for d in derivation.network.definitions:
        for e in walk(d.expr):
            if not isinstance(e, Prod):
                continue
            bound = set(e.binds())
            for r in e.factors:
                if not isinstance(r, Ref) or str(r.name) not in shapes:
                    continue
                others = {ix for f in e.factors if not (isinstance(f, Ref) and str(f.name) in shapes) for ix in f.free}
                axes = [k for k, ix in enumerate(r.indices) if ix in bound and ix in others]
                if axes:
                    size = math.prod(shapes[str(r.name)][k] for k in axes)
                    fan[str(r.name)] = max(fan.get(str(r.name), 1), size)
    gain = 2.0 if relu_args(derivation) else 1.0
    return {n: math.sqrt(gain / fan[n]) if n in fan else 0.5 for n in shapes}


def draw(mod: dict, derivation, rng, batch: int) -> tuple[dict, dict, bool]:
    """Random params (scaled by :func:`scales`) and data (in its domain, :func:`data_values`), away
    from kinks and with a sample that every ReLU layer passes on (some argument positive) when
    possible (third item: whether it was)."""
    decls = {str(t.name): t for t in derivation.network.tensors}
    where, relus, matrices = kinks(derivation), relu_args(derivation), matrix_args(derivation)
    scale = scales(derivation, mod["PARAMS"])
    for _ in range(TRIES):
        params = {n: rng.normal(0.0, scale[n], s) for n, s in mod["PARAMS"].items()}
        data = {n: data_values(rng, (batch,) + s, decls[n].role, decls[n].domain) for n, s in mod["INPUTS"].items()}
        for n in matrices:  # arguments of logdet, det, inv: near the identity
            if n in params:
                params[n] = near_identity(rng, params[n].shape)
            elif n in data:
                data[n] = near_identity(rng, data[n].shape)
        t = {**params, **data, **mod["_forward"](params, data)}
        # a distance exactly 0 is a dead layer's output passed on: it stays 0 under every step
        away = all(np.min(d[d != 0], initial=np.inf) > KINK_MARGIN
                   for d in (np.abs(np.asarray(distance(t), dtype=float)) for _, distance in where))
        live = [np.asarray(t[k]).reshape(batch, -1).max(axis=1, initial=-np.inf) > 0
                for k in relus if np.ndim(t[k]) and np.shape(t[k])[0] == batch and k not in mod["PARAMS"]]
        alive = bool(np.any(np.all(live, axis=0))) if live else True  # one sample alive through every ReLU
        if away and alive:
            return params, data, True
    return params, data, False
