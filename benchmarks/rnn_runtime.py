"""Recurrences at run-time length: per-sample gradient norms against the gradient, and module sizes.

    python benchmarks/rnn_runtime.py            # prints the Markdown of docs/benchmarks.md's section
    python benchmarks/rnn_runtime.py --tiny     # seconds: keeps the script working

One module, ``einderiv codegen derivations/rnn.ein`` without ``--depth`` (the length T read from
``data["x"]`` of shape (B, T, n)), at the sizes below; for each T the ratio of
``per_sample_gradient_norms`` (T x T Gram matrices of the gradient's factors) to ``gradient``
in process CPU time, single-threaded BLAS, float64: the median over ``rounds`` rounds of the
best of ``inner`` calls each.  The norms are checked against the per-sample gradients first.
The same module's ``gradient`` against hand-written NumPy back-propagation through time
(:func:`bptt`: one forward loop keeping h(t), one reversed loop accumulating each weight's
gradient as it goes), checked equal first, the verdict computed against the target ≤ 1.1×.
Then the fixed-length modules (``--depth T=8``, ``32`` and ``64``, order 1 and 2): lines and
generation time (CPU in a fresh process, ``einderiv.codegen(net, order=...)`` as ``einderiv codegen``
does) against the run-time-length module's.  Past T = 8 the order-2 module takes its Hessian and
GGN diagonal by loops over the steps (``einderiv.emit.columns``) and its Hessian blocks are not
derived.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import einderiv  # noqa: E402
from einderiv.runtime import load as load_source  # noqa: E402

RNN = str(ROOT / "derivations" / "rnn.ein")


def cpu_best(fn, inner: int) -> float:
    best = float("inf")
    for _ in range(inner):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def bptt(params, data) -> dict:
    """Hand-written NumPy BPTT of the Elman RNN of derivations/rnn.ein (squared error, batch mean)."""
    W, V, U = params["W"], params["V"], params["U"]
    x, y = data["x"], data["y"]
    B, T = x.shape[0], x.shape[1]
    hs = [np.zeros((B, W.shape[0]))]
    for t in range(T):
        hs.append(np.tanh(hs[-1] @ W.T + x[:, t] @ V.T))
    dp = (hs[-1] @ U.T - y) / B
    gU = dp.T @ hs[-1]
    dh = dp @ U
    gW, gV = np.zeros_like(W), np.zeros_like(V)
    for t in range(T, 0, -1):
        dz = dh * (1 - hs[t] ** 2)
        gW += dz.T @ hs[t - 1]
        gV += dz.T @ x[:, t - 1]
        dh = dz @ W
    return {"W": gW, "V": gV, "U": gU}


def gradient_vs_bptt(m, dims, B, T, rounds, inner, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 1.0 / np.sqrt(s[-1]), s) for k, s in m["PARAMS"].items()}
    data = {"x": rng.normal(size=(B, T, dims["n"])), "y": rng.normal(size=(B, dims["c"]))}
    ours, theirs = m["gradient"](params, data), bptt(params, data)
    for k in theirs:
        assert np.allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-13), k
    grad = lambda: m["gradient"](params, data)  # noqa: E731
    hand = lambda: bptt(params, data)  # noqa: E731
    for _ in range(2):
        grad(), hand()
    g, h = [], []
    for _ in range(rounds):
        g.append(cpu_best(grad, inner))
        h.append(cpu_best(hand, inner))
    return {"T": T, "gradient": statistics.median(g), "bptt": statistics.median(h),
            "ratio": statistics.median(a / b for a, b in zip(g, h))}


def norms_vs_gradient(m, dims, B, T, rounds, inner, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 1.0 / np.sqrt(s[-1]), s) for k, s in m["PARAMS"].items()}
    data = {"x": rng.normal(size=(B, T, dims["n"])), "y": rng.normal(size=(B, dims["c"]))}
    norms = m["per_sample_gradient_norms"](params, data)
    per_sample = m["per_sample_gradient"](params, data)
    for k in m["PARAMS"]:
        want = np.linalg.norm(per_sample[k].reshape(B, -1), axis=1)
        assert np.allclose(norms[k], want, rtol=1e-9, atol=1e-12), k
    grad = lambda: m["gradient"](params, data)  # noqa: E731
    norm = lambda: m["per_sample_gradient_norms"](params, data)  # noqa: E731
    for _ in range(2):
        grad(), norm()
    g, n = [], []
    for _ in range(rounds):
        g.append(cpu_best(grad, inner))
        n.append(cpu_best(norm, inner))
    return {"T": T, "gradient": statistics.median(g), "norms": statistics.median(n),
            "ratio": statistics.median(b / a for a, b in zip(g, n))}


GENERATE = r"""
import json, sys, time
import einderiv
import einderiv.api, einderiv.emit.numpy  # noqa: F401  (their imports, SymPy's among them, before the clock)
dims, depth, order = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
t0 = time.process_time()
if depth is None:
    src = einderiv.codegen(einderiv.load(sys.argv[4], dims=dims))
else:  # what `einderiv codegen --depth T=k --order N` does: derives what the module reads, then writes it
    src = einderiv.codegen(einderiv.load(sys.argv[4], dims=dims, depth={"T": depth}), order=order)
print(json.dumps({"seconds": time.process_time() - t0, "lines": len(src.splitlines())}))
"""


def generation(dims, depth, order) -> dict:
    """Derive and generate in a fresh process (nothing cached): its CPU seconds and the module's lines."""
    out = subprocess.run([sys.executable, "-c", GENERATE, json.dumps(dims), json.dumps(depth), str(order), RNN],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.splitlines()[-1])


def hessians(m, dims, B, T, rounds) -> dict:
    """hessian of the run-time-length module (columns from R-passes) against the module derived at
    that fixed length (its Hessian blocks derived, O(T²) of them): the same numbers, and their times."""
    f = load_source(einderiv.codegen(einderiv.derive(einderiv.load(RNN, dims=dims, depth={"T": T}), order=2)))
    rng = np.random.default_rng(1)
    params = {k: rng.normal(0.0, 1.0 / np.sqrt(s[-1]), s) for k, s in m["PARAMS"].items()}
    data = {"x": rng.normal(size=(B, T, dims["n"])), "y": rng.normal(size=(B, dims["c"]))}
    fdata = {"y": data["y"], **{f"x({t})": data["x"][:, t - 1] for t in range(1, T + 1)}}
    ours, theirs = m["hessian"](params, data), f["hessian"](params, fdata)
    for key, block in ours.items():
        assert np.allclose(block, theirs[key], rtol=1e-8, atol=1e-10), key
    a = [cpu_best(lambda: m["hessian"](params, data), 1) for _ in range(rounds)]
    b = [cpu_best(lambda: f["hessian"](params, fdata), 1) for _ in range(rounds)]
    return {"run_time": statistics.median(a), "fixed": statistics.median(b),
            "P": sum(int(np.prod(s)) for s in m["PARAMS"].values())}


def verdict(ratio: float, target: float) -> str:
    """'met', 'borderline' (above by at most the machine's noise, 1.25×) or 'not met', from this run."""
    return "met" if ratio <= target else "borderline" if ratio <= 1.25 * target else "not met"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args(argv)
    dims = {"n": 16, "h": 32, "c": 4}
    B, lengths, rounds, inner, fixed = 64, (8, 32, 128), 9, 3, (8, 32, 64)
    if args.tiny:
        dims, B, lengths, rounds, inner, fixed = {"n": 3, "h": 5, "c": 2}, 4, (8,), 1, 1, (8, 10)
    m = load_source(einderiv.codegen(einderiv.load(RNN, dims=dims)))
    rows = [norms_vs_gradient(m, dims, B, T, rounds, inner) for T in lengths]
    target = 2.0
    print(f"Sizes n={dims['n']}, h={dims['h']}, c={dims['c']}, B={B}; process CPU time, one BLAS thread, "
          f"median of {rounds} rounds (best of {inner} calls each).\n")
    print("| T | gradient | per_sample_gradient_norms | norms / gradient | target ≤ 2× at T = 128 |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        met = ("met" if r["ratio"] <= target else "not met") if r["T"] == 128 else ""
        print(f"| {r['T']} | {r['gradient'] * 1e3:.3g} ms | {r['norms'] * 1e3:.3g} ms | {r['ratio']:.3g}× | {met} |")
    bp = [gradient_vs_bptt(m, dims, B, T, rounds, inner) for T in lengths]
    print("\n| T | gradient | hand-written NumPy BPTT | gradient / BPTT | target | verdict |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in bp:
        print(f"| {r['T']} | {r['gradient'] * 1e3:.3g} ms | {r['bptt'] * 1e3:.3g} ms | {r['ratio']:.3g}× | ≤ 1.1× | "
              f"{verdict(r['ratio'], 1.1)} |")
    h = hessians(m, dims, B, fixed[0], 3 if not args.tiny else 1)
    print(f"\nhessian at T = {fixed[0]} (P = {h['P']}): run-time-length module (P R-passes) {h['run_time']:.3g} s, "
          f"`--depth T={fixed[0]}` module (derived blocks) {h['fixed']:.3g} s: "
          f"{h['run_time'] / h['fixed']:.3g}× (median of {3 if not args.tiny else 1}).")
    print()
    print("| module | lines | generation (CPU: derive and generate) |")
    print("| --- | --- | --- |")
    g = generation(dims, None, 2)
    print(f"| run-time length (every T), order 2 | {g['lines']} | {g['seconds']:.3g} s |")
    for T in fixed:
        for order in (1, 2):
            g = generation(dims, T, order)
            print(f"| `--depth T={T}`, order {order} | {g['lines']} | {g['seconds']:.3g} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
