"""Finite-difference check of generated code, of any backend (the CLI's ``check`` command, the tests).

:func:`check` generates the module for a derivation, executes it in a fresh
namespace, draws random float64 parameters (normal, scale 0.5), inputs
(standard normal) and labels (uniform on [0, 1) — valid for all three built-in
objectives), and compares in float64:

* ``gradient``             with central differences of the batch-mean objective;
* ``per_sample_gradient``  with central differences of the per-sample objective;
* ``gradient_factors``     (rebuilt by ``expand_factors``) with ``per_sample_gradient``;
* ``hessian``              with central differences of the generated ``gradient``;
* ``hvp``                  with Σ_b ``hessian[(a, b)]``·v[b] for a random v;
* ``per_sample_gradient_norms`` with the norms of ``per_sample_gradient``;
* ``ggn_diagonal``         with diag(Σ_ab J_aᵀ ∂²f/∂a∂b J_b), J by central differences
                           of the forward pass (:func:`ggn_reference`);
* ``third_derivatives``    with central differences of ``hessian`` (order ≥ 3): each distinct
                           block ∂³f/∂a∂b∂c against the differences of ∂²f/∂a∂b along c, and
                           its reversed ordering ∂³f/∂c∂b∂a — another Hessian block, differenced
                           along another parameter: the transposition checked; ``third_derivative``
                           for one of them on its own;
* for a backend other than NumPy, every value above with the NumPy module's (rows ``… = numpy``).

The module may be of any backend (``backend="torch"``, ``"jax"``): its functions are run
through :func:`einderiv.runtime.numpy_view`, in float64 (JAX's compiled with ``jax.jit``); the
draws and the GGN's reference use the NumPy module's forward pass and ``hobj`` quantity, so
every backend is judged against the same numbers.

The step for entry θ_i is ``h = 1e-5 · max(1, |θ_i|)``.  The error of a block is
``max|got − ref| / max(1, max|ref|)``: absolute for blocks of size ≲ 1, relative
for larger ones, so neither tiny nor huge blocks are judged unfairly.

Non-smooth functions (ReLU's kink): if an argument of one is within
:data:`KINK_MARGIN` of a kink (0) for the drawn values, the draw is repeated
(up to 50 times; the report notes it if that never succeeds).

Example:
    >>> report = check(derive(network, 2))                          # doctest: +SKIP
    >>> report.ok, report.rows[0]                                    # doctest: +SKIP
    (True, Row(name='gradient W1', error=3.2e-11, ok=True))
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import sympy

from .emit.backends import PRINTERS
from .emit.numpy import generate, identifiers
from .ir import Apply, Kind, Ref
from .runtime import library, load, numpy_view

STEP = 1e-5
KINK_MARGIN = 1e-3
_NON_SMOOTH = (sympy.Max, sympy.Min, sympy.Abs, sympy.Heaviside, sympy.Piecewise, sympy.sign)


class Row(NamedTuple):
    name: str  # "gradient W1", "hessian W1,W2", …
    error: float
    ok: bool


@dataclass
class CheckReport:
    rows: list[Row]
    tol: float
    notes: list[str] = field(default_factory=list)
    source: str = field(default="", repr=False)  # the generated module

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def format(self) -> str:
        width = max([len(r.name) for r in self.rows] + [5])
        lines = [f"{'check':<{width}}  {'error':>9}  result"]
        lines += [f"{r.name:<{width}}  {r.error:9.2e}  {'ok' if r.ok else 'FAIL'}" for r in self.rows]
        bad = sum(not r.ok for r in self.rows)
        lines.append(f"all {len(self.rows)} checks pass (tol {self.tol:g})" if not bad else
                     f"{bad} of {len(self.rows)} checks FAIL (tol {self.tol:g})")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def error(got, ref) -> float:
    """``max|got − ref| / max(1, max|ref|)``; infinite if the shapes differ."""
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    if got.shape != ref.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    diff = float(np.max(np.abs(got - ref)))
    return diff / max(1.0, float(np.max(np.abs(ref)))) if np.isfinite(diff) else float("inf")


def central(fn, params: dict, name: str):
    """Yield ``(index, (fn(θ+h) − fn(θ−h)) / 2h)`` for every entry of ``params[name]``.

    ``fn`` returns an array or a dict of arrays; ``params`` is restored afterwards.
    """
    theta = params[name]
    for idx in np.ndindex(theta.shape):
        x0 = theta[idx]
        h = STEP * max(1.0, abs(x0))
        theta[idx] = x0 + h
        up = fn(params)
        theta[idx] = x0 - h
        down = fn(params)
        theta[idx] = x0
        if isinstance(up, dict):
            yield idx, {k: (up[k] - down[k]) / (2 * h) for k in up}
        else:
            yield idx, (up - down) / (2 * h)


def kink_args(derivation) -> list[str]:
    """Nodes that are arguments of a non-smooth function (ReLU's pre-activations)."""
    out: list[str] = []

    def walk(e):
        if isinstance(e, Apply) and derivation.table.body(e.fn.name).has(*_NON_SMOOTH):
            out.extend(str(a.name) for a in e.args if isinstance(a, Ref) and str(a.name) not in out)
        for c in e.children():
            walk(c)

    for n in derivation.nodes:
        walk(n.expr)
    return out


def draw(mod: dict, derivation, rng, batch: int) -> tuple[dict, dict, bool]:
    """Random params and data, away from kinks when possible (third item: whether it was)."""
    roles = {str(t.name): t.role for t in derivation.network.tensors}
    kinks = kink_args(derivation)
    for _ in range(50):
        params = {n: rng.normal(0.0, 0.5, s) for n, s in mod["PARAMS"].items()}
        data = {n: (rng.uniform(0.0, 1.0, (batch,) + s) if roles[n] == "label"
                    else rng.normal(0.0, 1.0, (batch,) + s)) for n, s in mod["INPUTS"].items()}
        t = mod["_forward"](params, data)
        if all(np.min(np.abs(t[k]), initial=np.inf) > KINK_MARGIN for k in kinks):
            return params, data, True
    return params, data, False


def ggn_reference(mod: dict, derivation, params: dict, data: dict) -> dict:
    """diag(Σ_ab J_aᵀ ∂²f/∂a∂b J_b), batch mean, over the objective's arguments a, b.

    J_a = ∂a/∂θ by central differences of the generated ``_forward``; ∂²f/∂a∂b is
    the module's own ``hobj`` quantity (checked on its own: it is the Gauss–Newton
    term of every Hessian block, which is compared with finite differences), computed by
    the module's quantity functions, found by :func:`einderiv.emit.numpy.identifiers`.
    """
    t = mod["_forward"](params, data)
    batch = next(iter(data.values())).shape[0] if data else 1
    ids = identifiers(derivation)  # quantity q: function "_" + ids[q], key ids[q] in t
    for q in derivation.quantities:  # dependency order: hobj's inputs come first
        # (derivatives d[q,θ] are third-order rows: not needed here; a looped module has no function
        # for a step's adjoint that only its loops compute — never an input of hobj)
        if q.name.kind is not Kind.D and "_" + ids[q.name] in mod:
            t[ids[q.name]] = mod["_" + ids[q.name]](t)
    out = {}
    for theta, shape in mod["PARAMS"].items():
        size = int(np.prod(shape, dtype=int))
        jac: dict = {}

        def J(arg):
            if arg not in jac:
                cols = [d.reshape(batch, -1) for _, d in central(
                    lambda p: _as_batch(mod["_forward"](p, data)[arg], arg, mod, batch), params, theta)]
                jac[arg] = np.stack(cols, axis=2)  # (B, size of arg, size of θ)
            return jac[arg]

        total = np.zeros(size)
        for q in derivation.quantities:
            if q.name.kind is not Kind.HOBJ or len(q.name.parts) != 2:
                continue
            a, b = map(str, q.name.parts)
            Ja, Jb = J(a), J(b)
            H = np.asarray(t[ids[q.name]], dtype=float)
            if H.ndim == len(q.indices):  # the same for every sample (squared error: δ)
                H = np.broadcast_to(H, (batch,) + H.shape)
            H = H.reshape(batch, Ja.shape[1], Jb.shape[1])
            total += np.einsum("bip,bij,bjp->p", Ja, H, Jb) / batch
        out[theta] = total.reshape(shape)
    return out


def _as_batch(value, name, mod, batch):
    """A tensor of ``_forward`` with a leading batch axis (parameters have none)."""
    value = np.array(value, dtype=float)  # a copy: _forward hands back the parameter itself
    return np.broadcast_to(value, (batch,) + value.shape) if name in mod["PARAMS"] else value


def check(derivation, sizes=None, seed: int = 0, batch: int = 3, tol: float = 1e-6,
          backend: str = "numpy") -> CheckReport:
    """Generate, execute and compare every derivative function with finite differences.

    ``backend`` ``"torch"`` or ``"jax"`` checks that library's module (float64; JAX's functions
    compiled with ``jax.jit``) through :func:`einderiv.runtime.numpy_view`: the same draws,
    the same references, the same tolerance.
    """
    library(backend)  # a missing library is bad input (exit 2), named with the extra to install
    source = generate(derivation, sizes, printer=PRINTERS[backend])
    mod = numpy_view(load(source), backend, jit=True)
    # draws and the GGN's reference read the forward pass and quantities of the NumPy module
    # (the same for every backend; the checks below judge `mod`'s contract functions)
    ref_mod = mod if backend == "numpy" else load(generate(derivation, sizes))
    rng = np.random.default_rng(seed)
    params, data, smooth = draw(ref_mod, derivation, rng, batch)
    notes = [] if smooth else ["could not draw values away from a kink; expect FD mismatches there"]
    rows: list[Row] = []

    def row(name, got, ref):
        e = error(got, ref)
        rows.append(Row(name, e, bool(e <= tol)))

    names = list(mod["PARAMS"])
    shape = mod["PARAMS"]
    got: dict = {}  # (function, key) -> value at the drawn point, compared with NumPy's below
    grad = mod["gradient"](params, data)
    psg = mod["per_sample_gradient"](params, data)
    facs = mod["gradient_factors"](params, data)
    norms = mod["per_sample_gradient_norms"](params, data)
    got[("objective", "")] = mod["objective"](params, data)
    for a in names:
        ref = np.zeros((batch,) + shape[a])
        for idx, d in central(lambda p: mod["objective"](p, data), params, a):
            ref[(slice(None),) + idx] = d
        row(f"gradient {a}", grad[a], ref.mean(axis=0))
        row(f"per_sample_gradient {a}", psg[a], ref)
        row(f"gradient_factors {a}", mod["expand_factors"](a, facs[a]), psg[a])
        ref_norm = np.sqrt(np.sum(psg[a].reshape(batch, -1) ** 2, axis=1))
        row(f"per_sample_gradient_norms {a}", norms[a], ref_norm)
        got.update({("gradient", a): grad[a], ("per_sample_gradient", a): psg[a],
                    ("per_sample_gradient_norms", a): norms[a]})

    if derivation.order >= 2:
        hess = mod["hessian"](params, data)
        ref = {(a, b): np.zeros(shape[a] + shape[b]) for a, b in itertools.product(names, names)}
        for b in names:
            for idx, d in central(lambda p: mod["gradient"](p, data), params, b):
                for a in names:
                    ref[(a, b)][(Ellipsis,) + idx] = d[a]
        for key in ref:
            row(f"hessian {','.join(key)}", hess[key], ref[key])
        ggn = mod["ggn_diagonal"](params, data)
        ref = ggn_reference(ref_mod, derivation, params, data)
        for a in names:
            row(f"ggn_diagonal {a}", ggn[a], ref[a])
        vector = {n: rng.normal(0.0, 1.0, shape[n]) for n in names}
        hvp = mod["hvp"](params, data, vector)
        for a in names:
            want = sum(np.tensordot(hess[(a, b)], vector[b], axes=len(shape[b])) for b in names)
            row(f"hvp {a}", hvp[a], want)
        got.update({("hessian", k): v for k, v in hess.items()})
        got.update({("ggn_diagonal", a): ggn[a] for a in names})
        got.update({("hvp", a): hvp[a] for a in names})

    if derivation.order >= 3:
        ref = {k: np.zeros(shape[k[0]] + shape[k[1]] + shape[k[2]])
               for k in itertools.product(names, repeat=3)}
        for c in names:
            for idx, d in central(lambda p: mod["hessian"](p, data), params, c):
                for a, b in itertools.product(names, names):
                    ref[(a, b, c)][(Ellipsis,) + idx] = d[(a, b)]
        distinct = mod["third_derivatives"](params, data)  # each distinct block once
        # the reversed ordering of each: another Hessian block's differences, along another parameter
        others = [k[::-1] for k in distinct if k[::-1] != k]
        transposed = mod["third_derivatives"](params, data, others)
        for key, value in distinct.items():
            got[("third_derivatives", key)] = value
            row(f"third_derivative {','.join(key)}", value, ref[key])
            if key[::-1] in transposed:
                got[("third_derivatives", key[::-1])] = transposed[key[::-1]]
                row(f"third_derivative {','.join(key[::-1])}", transposed[key[::-1]], ref[key[::-1]])
        for key in others[:1]:  # and one block on its own
            got[("third_derivative", key)] = mod["third_derivative"](params, data, key)
            row(f"third_derivative {','.join(key)} (alone)", got[("third_derivative", key)], ref[key])

    if backend != "numpy":  # the same numbers as the NumPy module, on the same inputs
        third = [key for fn, key in got if fn == "third_derivatives"]
        third = ref_mod["third_derivatives"](params, data, third) if third else {}  # in one call
        for (fn, key), value in got.items():
            if fn == "third_derivatives":
                want = third[key]
            else:
                args = (params, data) + ((vector,) if fn == "hvp" else (key,) if fn == "third_derivative" else ())
                want = ref_mod[fn](*args)
                want = want if fn in ("objective", "third_derivative") else want[key]
            label = ",".join(key) if isinstance(key, tuple) else key
            row(f"{fn}{' ' + label if label else ''} = numpy", value, want)
    return CheckReport(rows, tol, notes, source)
