"""An independent NumPy evaluator of checked networks and IR expressions (tests only).

Every other numeric check of the suite goes through the module einderiv generates, so a
wrong built-in formula (say, softmax cross-entropy) would be derived, generated and checked
against finite differences *of itself*, and pass.  This evaluator shares none of that
machinery: of einderiv it uses only the checked IR of each definition (``einderiv.load``, or
a network built by ``netbuild``) and the sizes; it evaluates

* each ``Prod`` with one ``np.einsum``, ``Add``, ``Softmax``, ``LogSumExp``, ``Max``/``ArgMax``,
  ``Inv``/``MatDet`` (``np.linalg.inv``, ``det``, ``slogdet``), ``Delta``,
  ``Ones`` and ``Window`` (S[u, t, a] = [u == stride·t + dilation·a + offset], zero for a read
  outside u's range: zero padding) directly;
* each ``Apply`` with the NumPy functions written out below (values and derivatives, by
  hand), user functions by ``sympy.lambdify`` of their bodies;
* each built-in objective call by its textbook formula (:data:`TEXTBOOK`), not by the IR the
  objective builders of ``einderiv.frontend.objectives`` expand it to: the network is loaded with
  those builders replaced by :func:`opaque_objectives`, which leaves a marker ``Ref`` whose
  name (a :class:`BuiltinObjective`) records the call.

The textbook formulas agree with einderiv's on the domain where the textbook defines them
(labels that sum to one for softmax cross-entropy, labels in [0, 1] for binary
cross-entropy): :func:`draw` draws labels there.

Tensors are keyed by ``str(name)`` everywhere (``"h(3)"`` for a family member), as the
generated module's ``PARAMS`` and ``INPUTS`` are.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Hashable
from unittest import mock

import numpy as np
import sympy

from einderiv import ir
from einderiv.frontend import objectives
from einderiv.frontend.builtins import ARG

STEP = 1e-5  # central-difference step for entry θ: STEP · max(1, |θ|)
KINK_MARGIN = 1e-3  # redraw when an argument of a non-smooth function is this close to its kink


# ------------------------------------------------------------ scalar functions, by hand
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softplus(z):
    return np.logaddexp(0.0, z)  # log(1 + e^z), without overflow


def _const(c):
    return lambda z: np.full(np.shape(z), float(c))


#: name -> [f, f′, f″, f‴] for the built-in elementwise functions
BUILTIN_FUNCTIONS: dict[str, list[Callable]] = {
    "relu": [lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float), _const(0), _const(0)],
    "tanh": [np.tanh,
             lambda z: 1 - np.tanh(z) ** 2,
             lambda z: -2 * np.tanh(z) * (1 - np.tanh(z) ** 2),
             lambda z: (6 * np.tanh(z) ** 2 - 2) * (1 - np.tanh(z) ** 2)],
    "sigmoid": [_sigmoid,
                lambda z: _sigmoid(z) * (1 - _sigmoid(z)),
                lambda z: _sigmoid(z) * (1 - _sigmoid(z)) * (1 - 2 * _sigmoid(z)),
                lambda z: _sigmoid(z) * (1 - _sigmoid(z)) * (1 - 6 * _sigmoid(z) + 6 * _sigmoid(z) ** 2)],
    "softplus": [_softplus,
                 _sigmoid,
                 lambda z: _sigmoid(z) * (1 - _sigmoid(z)),
                 lambda z: _sigmoid(z) * (1 - _sigmoid(z)) * (1 - 2 * _sigmoid(z))],
    "exp": [np.exp, np.exp, np.exp, np.exp],
    "log": [np.log, lambda z: 1 / z, lambda z: -1 / z ** 2, lambda z: 2 / z ** 3],
    "square": [lambda z: z * z, lambda z: 2 * z, _const(2), _const(0)],
    "identity": [lambda z: z, _const(1), _const(0), _const(0)],
    "sqrt": [np.sqrt, lambda z: 0.5 / np.sqrt(z), lambda z: -0.25 * z ** -1.5, lambda z: 0.375 * z ** -2.5],
    "reciprocal": [lambda z: 1 / z, lambda z: -1 / z ** 2, lambda z: 2 / z ** 3, lambda z: -6 / z ** 4],
}
NON_SMOOTH_BUILTINS = {"relu"}
_ERF = {"erf": np.vectorize(math.erf, otypes=[float]), "erfc": np.vectorize(math.erfc, otypes=[float])}
_NON_SMOOTH = (sympy.Max, sympy.Min, sympy.Abs, sympy.Heaviside, sympy.Piecewise, sympy.sign)


# ------------------------------------------------------------ built-in objectives, by hand
def _log_softmax(p):
    shifted = p - p.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def textbook_squared_error(p, y):
    """½ ‖p − y‖²."""
    return 0.5 * ((p - y) ** 2).sum(axis=-1)


def textbook_softmax_cross_entropy(p, y):
    """−Σ_l y_l log softmax(p)_l (y a probability vector)."""
    return -(y * _log_softmax(p)).sum(axis=-1)


def textbook_binary_cross_entropy(p, y):
    """−Σ_l [y_l log σ(p_l) + (1 − y_l) log(1 − σ(p_l))] (logits p, y in [0, 1])."""
    s = _sigmoid(p)
    return -(y * np.log(s) + (1 - y) * np.log(1 - s)).sum(axis=-1)


TEXTBOOK = {
    "squared_error": textbook_squared_error,
    "softmax_cross_entropy": textbook_softmax_cross_entropy,
    "binary_cross_entropy": textbook_binary_cross_entropy,
}


@dataclass(frozen=True)
class BuiltinObjective:
    """The name of the marker ``Ref`` that stands for ``kind(p, y)`` in an opaque network."""

    kind: str
    p: Hashable
    y: Hashable

    def __str__(self) -> str:
        return f"{self.kind}({self.p}, {self.y})"


@contextlib.contextmanager
def opaque_objectives():
    """While active, every built-in objective call checks to a marker scalar ``Ref`` instead of
    the builders' IR (the objective builders of einderiv are never called)."""
    def builder(kind):
        return lambda p, y: ir.Ref(BuiltinObjective(kind, p.name, y.name), ())

    with mock.patch.dict(objectives.BUILDERS, {k: builder(k) for k in TEXTBOOK}):
        yield


def builtin_calls(expr: ir.Expr) -> list[BuiltinObjective]:
    return [r.name for r in ir.refs(expr) if isinstance(r.name, BuiltinObjective)]


# ------------------------------------------------------------ the IR evaluator
class Evaluator:
    """Evaluates IR with a leading batch axis: ``evaluate(e, env, batch)`` has shape
    ``(batch, *sizes of e.free)``, axes in ``e.free`` order; ``env`` maps ``str(name)`` to an
    array of shape ``(batch, *shape)`` with the tensor's axes in its declared order."""

    def __init__(self, sizes: dict, functions=()):
        self.sizes = dict(sizes)  # SymPy dimension symbol -> int
        self.user = {f.name: f for f in functions}
        self._lambdified: dict = {}
        self.kink_distance = np.inf  # smallest |argument| of a non-smooth function seen

    # -- sizes and functions
    def dim(self, ix: ir.Index) -> int:
        return int(sympy.sympify(ix.dim).subs(self.sizes))

    def number(self, value) -> float:
        return float(sympy.sympify(value).subs(self.sizes))

    def function(self, fn: ir.Fn) -> Callable:
        if fn.name in BUILTIN_FUNCTIONS:
            (order,) = fn.deriv
            return BUILTIN_FUNCTIONS[fn.name][order]
        key = (fn.name, fn.deriv)
        if key not in self._lambdified:
            uf = self.user[fn.name]
            args = ARG[:len(uf.params)]
            body = uf.body
            for k, order in enumerate(fn.deriv):
                if order:
                    body = sympy.diff(body, args[k], order)
            # erf/erfc entry by entry with math's (NumPy has none; lambdify's default takes no arrays);
            # a Dirac delta at a kink (d/dz sign z) is 0 everywhere the values are drawn
            body = body.replace(sympy.DiracDelta, lambda *a: sympy.Integer(0))
            self._lambdified[key] = sympy.lambdify(args, body, [_ERF, "numpy"])
        return self._lambdified[key]

    def non_smooth(self, fn: ir.Fn) -> bool:
        if fn.name in BUILTIN_FUNCTIONS:
            return fn.name in NON_SMOOTH_BUILTINS
        return self.user[fn.name].body.has(*_NON_SMOOTH)

    def kink_points(self, fn: ir.Fn) -> list[Callable]:
        """Functions of the arguments that vanish at a kink: the argument itself for a built-in
        (ReLU's 0); for a user body, each ``Abs``/``sign`` argument, ``a − b`` of ``Max(a, b)`` and
        of each comparison ``a < b`` in a ``Piecewise`` (a Huber threshold)."""
        if fn.name in BUILTIN_FUNCTIONS:
            return [lambda z: z]
        uf = self.user[fn.name]
        points = []
        for x in sympy.preorder_traversal(uf.body):
            if isinstance(x, (sympy.Abs, sympy.sign, sympy.Heaviside)):
                points.append(x.args[0])
            elif isinstance(x, (sympy.Max, sympy.Min)):
                points += [x.args[0] - b for b in x.args[1:]]
            elif isinstance(x, sympy.core.relational.Relational):
                points.append(x.lhs - x.rhs)
        return [sympy.lambdify(ARG[:len(uf.params)], p, "numpy") for p in points]

    # -- evaluation
    def evaluate(self, e: ir.Expr, env: dict, batch: int) -> np.ndarray:
        out = self._eval(e, env, batch)
        want = (batch,) + tuple(self.dim(ix) for ix in e.free)
        assert out.shape == want, (type(e).__name__, out.shape, want)
        return out

    def _const(self, value: np.ndarray, batch: int) -> np.ndarray:
        return np.broadcast_to(value, (batch,) + np.shape(value))

    def _eval(self, e, env, batch):
        if isinstance(e, ir.Const):
            return np.full(batch, self.number(e.value))
        if isinstance(e, ir.Ref):
            if isinstance(e.name, BuiltinObjective):
                return TEXTBOOK[e.name.kind](env[str(e.name.p)], env[str(e.name.y)])
            value = env[str(e.name)]
            ids = _ids(e.indices)  # a repeated index takes the diagonal; copy: einsum may return a view
            return np.einsum(value, [0] + [ids[ix] for ix in e.indices], [0] + [ids[ix] for ix in e.free]).copy()
        if isinstance(e, ir.Delta):
            if e.a == e.b:  # δ^a_a with a free: the diagonal of the identity
                return self._const(np.ones(self.dim(e.a)), batch)
            return self._const(np.eye(self.dim(e.a)), batch)
        if isinstance(e, ir.Ones):
            return self._const(np.ones(self.dim(e.index)), batch)
        if isinstance(e, ir.Window):
            # S[u, t, a] = [u == stride·t + dilation·a + offset]: a read outside u's range has no u,
            # so it is zero (zero padding), written out densely here, independently of the views
            # (one index in two places, t = a after a renaming, takes the diagonal, as a Ref's does)
            u, t = np.arange(self.dim(e.u))[:, None], np.arange(self.dim(e.t))[None, :]
            if e.a is None:
                sel, written = (u == e.stride * t + e.offset).astype(float), (e.u, e.t)
            else:
                a = np.arange(self.dim(e.a))[None, None, :]
                sel = (u[:, :, None] == e.stride * t[:, :, None] + e.dilation * a + e.offset).astype(float)
                written = (e.u, e.t, e.a)
            ids = _ids(written)
            return self._const(np.einsum(sel, [ids[ix] for ix in written], [ids[ix] for ix in e.free]).copy(), batch)
        if isinstance(e, ir.Prod):
            assert len(set(e.out)) == len(e.out), f"ill-formed IR: a Prod repeats an output index: {e.out}"
            if not e.factors:  # the empty product (∂s/∂s of a scalar s)
                assert not e.out, e
                return np.ones(batch)
            ids = _ids([ix for f in e.factors for ix in f.free] + list(e.out))
            operands = []
            for f in e.factors:
                operands += [self._eval(f, env, batch), [0] + [ids[ix] for ix in f.free]]
            carried = {ix for f in e.factors for ix in f.free}
            for ix in e.out:  # an output index no factor carries: the product is constant along it
                if ix not in carried:  # (the rule for softmax builds s^k (∂x^k − s^m ∂x^m) so)
                    operands += [np.ones(self.dim(ix)), [ids[ix]]]
            return np.einsum(*operands, [0] + [ids[ix] for ix in e.out], optimize=len(e.factors) > 2)
        if isinstance(e, ir.Add):
            free = e.free
            total = 0.0
            for t in e.terms:
                assert set(t.free) == set(free), ("Add terms with different free indices", t.free, free)
                total = total + self.align(self._eval(t, env, batch), t.free, free)
            return total
        if isinstance(e, ir.Apply):
            args = [self.align(self._eval(a, env, batch), a.free, e.free) for a in e.args]
            if self.non_smooth(e.fn):
                for point in self.kink_points(e.fn):
                    distance = np.abs(point(*args)) * np.ones_like(args[0])
                    self.kink_distance = min(self.kink_distance, float(np.min(distance, initial=np.inf)))
            value = self.function(e.fn)(*args)
            return np.broadcast_to(value, (batch,) + tuple(self.dim(ix) for ix in e.free)) * 1.0
        if isinstance(e, ir.Softmax):
            x = self._eval(e.arg, env, batch)
            axis = 1 + e.arg.free.index(e.over)
            z = np.exp(x - x.max(axis=axis, keepdims=True))
            return z / z.sum(axis=axis, keepdims=True)
        if isinstance(e, ir.LogSumExp):
            x = self._eval(e.arg, env, batch)
            axis = 1 + e.arg.free.index(e.over)
            m = x.max(axis=axis, keepdims=True)
            return np.squeeze(m, axis) + np.log(np.exp(x - m).sum(axis=axis))
        if isinstance(e, (ir.Max, ir.ArgMax)):
            x = self._eval(e.arg, env, batch)
            axis = 1 + e.arg.free.index(e.over)
            best = (np.max if e.kind == "max" else np.min)(x, axis=axis, keepdims=True)
            if isinstance(e, ir.Max):  # a kink where the two best entries tie
                ranked = np.sort(x, axis=axis)
                if ranked.shape[axis] > 1:
                    gap = np.abs(np.take(ranked, -1 if e.kind == "max" else 0, axis)
                                 - np.take(ranked, -2 if e.kind == "max" else 1, axis))
                    self.kink_distance = min(self.kink_distance, float(np.min(gap, initial=np.inf)))
                return np.squeeze(best, axis)
            hit = np.isclose(x, best, rtol=0.0, atol=1e-12).astype(float)  # ties split equally
            return hit / hit.sum(axis=axis, keepdims=True)
        if isinstance(e, (ir.Inv, ir.MatDet)):  # the matrix on axes (row, col) after the batch axis
            m = self.align(self._eval(e.arg, env, batch), e.arg.free, (e.row, e.col))
            if isinstance(e, ir.Inv):
                return np.linalg.inv(m)
            if e.kind == "det":
                return np.linalg.det(m)
            sign, logabs = np.linalg.slogdet(m)
            return np.where(sign > 0, logabs, np.nan)
        raise TypeError(f"reference: unknown IR node {type(e).__name__}")

    def align(self, value, axes, target):
        """``value`` (axes ``axes`` after the batch axis) transposed and broadcast to ``target``."""
        order = sorted(range(len(axes)), key=lambda k: target.index(axes[k]))
        value = np.transpose(value, [0] + [k + 1 for k in order])
        have = [axes[k] for k in order]
        shape = [value.shape[0]] + [self.dim(ix) if ix in have else 1 for ix in target]
        full = (value.shape[0],) + tuple(self.dim(ix) for ix in target)
        return np.broadcast_to(value.reshape(shape), full)


def _ids(indices) -> dict:
    """einsum sublist numbers for indices (0 is the batch axis)."""
    out: dict = {}
    for ix in indices:
        out.setdefault(ix, len(out) + 1)
    assert len(out) < 52, "np.einsum takes at most 52 distinct subscripts"
    return out


# ------------------------------------------------------------ a network
class Reference:
    """The reference forward pass and objective of a network.

    ``build`` makes the network (``lambda: einderiv.load(path)``, ``lambda: mlp(...)``); it is
    called under :func:`opaque_objectives`, so the built-in objective calls are evaluated by
    :data:`TEXTBOOK`, never through einderiv's objective builders.
    """

    def __init__(self, build: Callable):
        with opaque_objectives():
            self.network = build()
        net = self.network
        self.evaluator = Evaluator(net.sizes(), net.functions)
        self.objective_name = str(net.objective)
        self.calls = [c for d in net.definitions for c in builtin_calls(d.expr)]
        sizes = net.sizes()
        shape = lambda t: tuple(int(sympy.sympify(d).subs(sizes)) for d in t.shape)  # noqa: E731
        self.param_shapes = {str(t.name): shape(t) for t in net.params}
        self.input_shapes = {str(t.name): shape(t) for t in net.data}
        self.roles = {str(t.name): t.role for t in net.tensors}
        self.domains = {str(t.name): t.domain for t in net.tensors}

    def forward(self, params: dict, data: dict) -> dict:
        """Every tensor (declared and defined) by ``str(name)``, with a leading batch axis."""
        batch = next(iter(data.values())).shape[0]
        env = {n: np.array(v, dtype=float) for n, v in data.items()}
        env.update({n: np.broadcast_to(np.asarray(v, dtype=float), (batch,) + np.shape(v))
                    for n, v in params.items()})
        ev = self.evaluator
        for d in self.network.definitions:
            value = ev.evaluate(d.expr, env, batch)
            env[str(d.name)] = ev.align(value, d.expr.free, d.indices)  # the left side's axis order
        return env

    def objective(self, params: dict, data: dict) -> np.ndarray:
        """Per-sample objective, shape (batch,)."""
        return self.forward(params, data)[self.objective_name]

    def draw(self, rng: np.random.Generator, batch: int) -> tuple[dict, dict]:
        """Parameters N(0, 0.5²), inputs N(0, 1), labels uniform on [0, 1); a label of softmax
        cross-entropy is a probability vector; declared domains as declared (positive: uniform
        on [0.2, 3), probability: rows that sum to 1, onehot: one 1 per row).  Redrawn (up to 50 times) while an argument of a
        non-smooth function is within KINK_MARGIN of its kink."""
        simplex = {str(c.y) for c in self.calls if c.kind == "softmax_cross_entropy"}
        for _ in range(50):
            params = {n: rng.normal(0.0, 0.5, s) for n, s in self.param_shapes.items()}
            data = {}
            for n, s in self.input_shapes.items():
                if self.domains[n] == "positive":
                    data[n] = rng.uniform(0.2, 3.0, (batch,) + s)
                elif self.domains[n] == "onehot":
                    data[n] = (np.arange(s[-1]) == rng.integers(0, s[-1], (batch,) + s[:-1] + (1,))) * 1.0
                elif n in simplex or self.domains[n] == "probability":
                    u = rng.uniform(0.05, 1.0, (batch,) + s)
                    data[n] = u / u.sum(axis=-1, keepdims=True)
                elif self.roles[n] == "label":
                    data[n] = rng.uniform(0.0, 1.0, (batch,) + s)
                else:
                    data[n] = rng.normal(0.0, 1.0, (batch,) + s)
            self.evaluator.kink_distance = np.inf
            self.forward(params, data)
            if self.evaluator.kink_distance > KINK_MARGIN:
                return params, data
        raise AssertionError("could not draw values away from a kink")

    def gradient(self, params: dict, data: dict) -> dict:
        """Per-sample gradient of the reference objective by central differences:
        ``name -> (batch, *shape)``."""
        out = {}
        for name, theta in params.items():
            theta = np.array(theta, dtype=float)
            grad = None
            for idx in np.ndindex(theta.shape):
                x0 = theta[idx]
                h = STEP * max(1.0, abs(x0))
                theta[idx] = x0 + h
                up = self.objective({**params, name: theta}, data)
                theta[idx] = x0 - h
                down = self.objective({**params, name: theta}, data)
                theta[idx] = x0
                if grad is None:
                    grad = np.zeros(up.shape + theta.shape)
                grad[(slice(None),) + idx] = (up - down) / (2 * h)
            out[name] = grad
        return out


def error(got, ref) -> float:
    """``max|got − ref| / max(1, max|ref|)`` (the error measure of the suite); inf on a shape mismatch."""
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    if got.shape != ref.shape:
        return float("inf")
    diff = float(np.max(np.abs(got - ref), initial=0.0))
    return diff / max(1.0, float(np.max(np.abs(ref), initial=0.0))) if np.isfinite(diff) else float("inf")


def relative_error(got, ref, floor: float = 1e-3) -> float:
    """``max_b |got_b − ref_b| / max(|ref_b|, floor)``: relative per sample, except that a value
    below ``floor`` (softmax cross-entropy over one class is exactly 0) is judged against
    ``floor``; inf on a shape mismatch or a non-finite value."""
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    if got.shape != ref.shape:
        return float("inf")
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), floor)
    return float(np.max(rel, initial=0.0)) if np.all(np.isfinite(rel)) else float("inf")
