"""Finite-difference check of generated code, of any backend (the CLI's ``check`` command, the tests).

:func:`check` generates the module for a derivation, executes it in a fresh
namespace, draws random float64 parameters, inputs (standard normal) and labels
(uniform on [0, 1) — valid for all three built-in objectives), and compares in float64:

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

Random points (:mod:`einderiv.draws`): parameters scaled by fan-in so the signal survives depth,
data in its declared domain, away from kinks (ReLU's 0, a ``where`` threshold, near-ties of a
``max_k``); the report notes a draw that never got away from them.

**Vacuous checks.**  A row whose reference is below the tolerance everywhere checks nothing —
an answer of zeros would pass it.  If a block that is not zero symbolically (its expression in
the derivation is not the constant 0) gets such a row, the check is repeated at fresh draws (up
to :data:`DRAWS` in all) and the row is taken from the first draw where its reference is not
near zero; a row that stays near zero at every draw is reported ``vacuous`` and fails the
check (exit 1), as a disagreement does — unless reference and module are both exactly 0 at
every draw (and every draw kept a live sample): a block zero in exact arithmetic that SymPy does
not reduce to 0 (the Hessian diag(s) − s sᵀ of a softmax over one class), which the report
names (:attr:`CheckReport.zeros`, a line of its own).

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

from .draws import draw
from .emit.backends import PRINTERS
from .emit.numpy import generate, identifiers
from .ir import Kind, is_zero
from .runtime import library, load, numpy_view

STEP = 1e-5
#: draws tried before a row whose reference stays near zero is reported vacuous
DRAWS = 3


class Row(NamedTuple):
    name: str  # "gradient W1", "hessian W1,W2", …
    error: float
    ok: bool
    #: the reference is below the tolerance everywhere though the block is not zero symbolically
    vacuous: bool = False


@dataclass
class CheckReport:
    rows: list[Row]
    tol: float
    notes: list[str] = field(default_factory=list)
    source: str = field(default="", repr=False)  # the generated module
    #: rows exactly 0 at every draw, reference and module, though their blocks are not 0 symbolically
    zeros: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def vacuous(self) -> list[Row]:
        return [r for r in self.rows if r.vacuous]

    def format(self) -> str:
        width = max([len(r.name) for r in self.rows] + [5])
        lines = [f"{'check':<{width}}  {'error':>9}  result"]
        lines += [f"{r.name:<{width}}  {r.error:9.2e}  {'vacuous' if r.vacuous else 'ok' if r.ok else 'FAIL'}"
                  for r in self.rows]
        bad = sum(not r.ok and not r.vacuous for r in self.rows)
        empty = len(self.vacuous)
        if not bad and not empty:
            lines.append(f"all {len(self.rows)} checks pass (tol {self.tol:g})")
        if bad:
            lines.append(f"{bad} of {len(self.rows)} checks FAIL (tol {self.tol:g})")
        if empty:
            lines.append(f"{empty} of {len(self.rows)} checks are vacuous: their reference stays within the "
                         f"tolerance {self.tol:g} of zero at each of {DRAWS} draws, so an answer of zeros would "
                         "pass them, although the block is not zero symbolically")
        if self.zeros:
            lines.append(f"{len(self.zeros)} rows are exactly 0 at each of {DRAWS} draws, in the reference and in the "
                         "module, though their blocks are not 0 symbolically (as with a softmax over one class): "
                         + ", ".join(self.zeros[:4]) + (", …" if len(self.zeros) > 4 else ""))
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




def ggn_reference(mod: dict, derivation, params: dict, data: dict) -> dict:
    """diag(Σ_ab J_aᵀ ∂²f/∂a∂b J_b), batch mean, over the objective's arguments a, b.

    J_a = ∂a/∂θ by central differences of the generated ``_forward``; ∂²f/∂a∂b is
    the module's own ``hobj`` quantity (checked on its own: it is the Gauss–Newton
    term of every Hessian block, which is compared with finite differences), computed by
    the module's quantity functions, found by :func:`einderiv.emit.numpy.identifiers`.
    """
    t = mod["_forward"](params, data)
    batch = next(iter(data.values())).shape[0] if data else 1
    ranks = {str(n.name): len(n.indices) for n in derivation.nodes}
    ranks.update({str(d.name): len(d.indices) for d in derivation.network.tensors})
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
                    lambda p: _as_batch(mod["_forward"](p, data)[arg], ranks[arg], batch), params, theta)]
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


def _as_batch(value, rank: int, batch: int):
    """A tensor of ``_forward`` with a leading batch axis: a parameter, or an intermediate that
    reads parameters only (``w^i w^i``), has none (its per-sample ``rank`` axes only)."""
    value = np.array(value, dtype=float)  # a copy: _forward hands back the parameter itself
    return np.broadcast_to(value, (batch,) + value.shape) if value.ndim == rank else value


def check(derivation, sizes=None, seed: int = 0, batch: int = 3, tol: float = 1e-6,
          backend: str = "numpy") -> CheckReport:
    """Generate, execute and compare every derivative function with finite differences.

    ``backend`` ``"torch"`` or ``"jax"`` checks that library's module (float64; JAX's functions
    compiled with ``jax.jit``) through :func:`einderiv.runtime.numpy_view`: the same draws,
    the same references, the same tolerance.  Rows that are vacuous at the first draw are
    compared again at up to :data:`DRAWS` − 1 more (see the module docstring).
    """
    library(backend)  # a missing library is bad input (exit 2), named with the extra to install
    source = generate(derivation, sizes, printer=PRINTERS[backend])
    mod = numpy_view(load(source), backend, jit=True)
    # draws and the GGN's reference read the forward pass and quantities of the NumPy module
    # (the same for every backend; the checks below judge `mod`'s contract functions)
    ref_mod = mod if backend == "numpy" else load(generate(derivation, sizes))
    rng = np.random.default_rng(seed)
    notes = []
    if not mod["INPUTS"] and batch != 1:  # no data: one sample, as the module's B = 1 says
        notes.append(f"the network reads no data: one sample (batch 1, not {batch})")
        batch = 1
    zero = _zero_blocks(derivation)
    rows: list[Row] = []
    exact: list[bool] = []  # per row: reference and answer exactly 0 at every draw so far
    good = True  # every draw away from kinks, with a sample alive through every ReLU layer
    for attempt in range(DRAWS):
        params, data, smooth = draw(ref_mod, derivation, rng, batch)
        good = good and smooth
        found, zeros = _compare(derivation, mod, ref_mod, backend, params, data, batch, rng, tol, zero)
        if attempt == 0:
            rows, exact = found, zeros
        else:  # a vacuous row is taken from the first draw where it is not
            exact = [x and z for x, z in zip(exact, zeros)]
            rows = [r if not r.vacuous else f for r, f in zip(rows, found)]
        if not any(r.vacuous for r in rows):
            break
    if not good:
        notes.append("could not draw values away from a kink and with a sample alive through every "
                     "ReLU layer; expect FD mismatches or vacuous rows there")
    # exactly 0 at every live draw, both sides: zero in exact arithmetic though SymPy does not see it
    # (softmax over one class has Hessian diag(s) − s sᵀ = 1 − 1); zero is the answer, not a lost signal
    same = [k for k, r in enumerate(rows) if r.vacuous and exact[k] and good]
    if same:
        rows = [r._replace(vacuous=False, ok=r.error <= tol) if k in same else r for k, r in enumerate(rows)]
    return CheckReport(rows, tol, notes, source, zeros=[rows[k].name for k in same])


def _zero_blocks(derivation) -> set:
    """The rows' keys of the blocks that are zero symbolically: ``("gradient", "W")``,
    ``("hessian", "W", "U")``, ``("third_derivative", a, b, c)`` in every ordering,
    ``("ggn_diagonal", "W")``, ``("hvp", "W")``."""
    kinds = {1: "gradient", 2: "hessian", 3: "third_derivative"}
    out = set()
    for wrt, block in derivation.blocks.items():
        if is_zero(block.expr) and len(wrt) in kinds:
            out |= {(kinds[len(wrt)],) + tuple(map(str, p)) for p in itertools.permutations(wrt)}
    out |= {("ggn_diagonal", str(a)) for a, b in derivation.ggn.items() if is_zero(b.expr)}
    out |= {("hvp", str(a)) for a, b in derivation.hvp.items() if is_zero(b.expr)}
    return out


def _compare(derivation, mod, ref_mod, backend, params, data, batch, rng, tol,
             zero) -> tuple[list[Row], list[bool]]:
    """Every row at one draw (see the module docstring for what is compared with what), and for
    each whether its reference and the module's value are both exactly 0."""
    rows: list[Row] = []
    exact: list[bool] = []

    def row(name, got, ref, key=None):
        e = error(got, ref)
        ref = np.asarray(ref, dtype=float)
        small = float(np.max(np.abs(ref), initial=0.0)) <= tol
        vacuous = bool(small and key is not None and key not in zero)
        rows.append(Row(name, e, bool(e <= tol) and not vacuous, vacuous))
        exact.append(not np.any(ref) and not np.any(np.asarray(got, dtype=float)))

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
        row(f"gradient {a}", grad[a], ref.mean(axis=0), ("gradient", a))
        row(f"per_sample_gradient {a}", psg[a], ref, ("gradient", a))
        row(f"gradient_factors {a}", mod["expand_factors"](a, facs[a]), psg[a], ("gradient", a))
        ref_norm = np.sqrt(np.sum(psg[a].reshape(batch, -1) ** 2, axis=1))
        row(f"per_sample_gradient_norms {a}", norms[a], ref_norm, ("gradient", a))
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
            row(f"hessian {','.join(key)}", hess[key], ref[key], ("hessian",) + key)
        ggn = mod["ggn_diagonal"](params, data)
        ref = ggn_reference(ref_mod, derivation, params, data)
        for a in names:
            row(f"ggn_diagonal {a}", ggn[a], ref[a], ("ggn_diagonal", a))
        vector = {n: rng.normal(0.0, 1.0, shape[n]) for n in names}
        hvp = mod["hvp"](params, data, vector)
        for a in names:
            want = sum(np.tensordot(hess[(a, b)], vector[b], axes=len(shape[b])) for b in names)
            row(f"hvp {a}", hvp[a], want, ("hvp", a))
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
            row(f"third_derivative {','.join(key)}", value, ref[key], ("third_derivative",) + key)
            if key[::-1] in transposed:
                got[("third_derivatives", key[::-1])] = transposed[key[::-1]]
                row(f"third_derivative {','.join(key[::-1])}", transposed[key[::-1]], ref[key[::-1]],
                    ("third_derivative",) + key[::-1])
        for key in others[:1]:  # and one block on its own
            got[("third_derivative", key)] = mod["third_derivative"](params, data, key)
            row(f"third_derivative {','.join(key)} (alone)", got[("third_derivative", key)], ref[key],
                ("third_derivative",) + key)

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
            kind = "third_derivative" if fn.startswith("third") else "gradient" if "gradient" in fn else fn
            row(f"{fn}{' ' + label if label else ''} = numpy", value, want,
                None if fn == "objective" else (kind,) + (key if isinstance(key, tuple) else (key,)))
    return rows, exact
