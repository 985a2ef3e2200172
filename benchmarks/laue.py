"""The matrix-calculus Hessian benchmarks of Laue, Mitterreiter & Giesen (NeurIPS 2018) against jax and torch.

    python benchmarks/laue.py            # the sizes of the table in docs/benchmarks.md (16 min on 2 cores)
    python benchmarks/laue.py --tiny     # small sizes, seconds

Three problems, each an einderiv network under ``benchmarks/laue/``:

1. ``quad.ein``:   f(x) = xᵀ A x, the Hessian by x (A data, one sample: batch 1);
2. ``logreg.ein``: logistic regression, one term log(1 + exp(−y xᵀ w)) per sample; the module's
   ``hessian`` is that of the batch mean over the m samples, and so is the baselines' function;
3. ``mf.ein``:     matrix factorisation ‖T − U Vᵀ‖², the (U, U) block (T data, batch 1).

For each size, einderiv's generated NumPy module's ``hessian(params, data, [key])`` — the one
block the baselines compute (for ``mf`` the (U, U) block alone: the module computes only the
blocks a call asks for, and what they read) — is timed against ``jax.jit(jax.hessian(f))`` and
``torch.func.hessian(f)`` of the same function, by the weight the block is of.  The three
results are compared (allclose) before anything is timed; a disagreement stops the run.  Times
are process CPU time (user + system of every thread), the median of several rounds, with one
thread for NumPy's BLAS, torch and XLA (set before they are imported); the jitted
function is compiled (and its result waited for) before timing.  The ratio is baseline / einderiv;
the verdict of a row is computed from that row's two ratios and the target (einderiv ≥ 10× faster
than each).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

if __name__ == "__main__":
    # One thread for every library, set before NumPy, torch and jax are imported: on a loaded machine
    # a multi-threaded BLAS spins waiting for its threads, and process CPU time would count the spinning.
    # (Only when run as a script: importing this file, as tests/test_laue.py does, changes nothing.)
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent / "laue"
TARGET = 10.0

#: problem -> (file, block key, list of sizes for the full run, list for --tiny)
PROBLEMS = {
    "quad": ("quad.ein", ("x", "x"), [{"n": 100}, {"n": 1000}, {"n": 3000}], [{"n": 30}]),
    "logreg": ("logreg.ein", ("w", "w"), [{"n": 100, "m": 200}, {"n": 1000, "m": 2000}, {"n": 3000, "m": 6000}],
               [{"n": 20, "m": 40}]),
    "mf": ("mf.ein", ("U", "U"), [{"m": 20, "n": 20, "r": 5}, {"m": 50, "n": 50, "r": 5}, {"m": 70, "n": 70, "r": 5}],
           [{"m": 6, "n": 5, "r": 2}]),
}


def network_dims(name: str, sizes: dict) -> dict:
    """The dimensions of the .ein file among ``sizes`` (logreg's m is the batch, not a dimension)."""
    return {k: v for k, v in sizes.items() if not (name == "logreg" and k == "m")}


def module(name: str, sizes: dict) -> dict:
    """The namespace of einderiv's generated NumPy module for problem ``name`` at ``sizes``."""
    import einderiv
    import einderiv.runtime

    net = einderiv.load(str(HERE / PROBLEMS[name][0]), dims=network_dims(name, sizes))
    return einderiv.runtime.load(einderiv.codegen(einderiv.derive(net)))


def problem_data(name: str, sizes: dict, rng) -> tuple[dict, dict]:
    """(params, data) of the generated module, float64."""
    if name == "quad":
        n = sizes["n"]
        return {"x": rng.normal(size=n)}, {"A": rng.normal(size=(1, n, n))}
    if name == "logreg":
        n, m = sizes["n"], sizes["m"]
        return ({"w": rng.normal(size=n) / np.sqrt(n)},
                {"x": rng.normal(size=(m, n)), "y": rng.choice([-1.0, 1.0], size=m)})
    m, n, r = sizes["m"], sizes["n"], sizes["r"]
    return ({"U": rng.normal(size=(m, r)), "V": rng.normal(size=(n, r))}, {"T": rng.normal(size=(1, m, n))})


def baselines(name: str, params: dict, data: dict) -> dict:
    """{'jax': fn, 'torch': fn}: each a function of no arguments returning the block as NumPy, the
    Hessian of the same objective (the batch mean) by the block's weight, the rest held fixed."""
    import jax
    import jax.numpy as jnp
    import torch

    jax.config.update("jax_enable_x64", True)
    if os.environ.get("OMP_NUM_THREADS") == "1":
        torch.set_num_threads(1)
    if name == "quad":
        A = data["A"][0]
        jf, tf = (lambda x, A=jnp.asarray(A): x @ A @ x), (lambda x, A=torch.from_numpy(A): x @ A @ x)
        arg = params["x"]
    elif name == "logreg":
        X, y = data["x"], data["y"]
        jX, jy, tX, ty = jnp.asarray(X), jnp.asarray(y), torch.from_numpy(X), torch.from_numpy(y)
        jf = lambda w: jnp.mean(jnp.logaddexp(0.0, -jy * (jX @ w)))  # noqa: E731
        tf = lambda w: torch.nn.functional.softplus(-ty * (tX @ w)).mean()  # noqa: E731
        arg = params["w"]
    else:
        T, V = data["T"][0], params["V"]
        jT, jV, tT, tV = jnp.asarray(T), jnp.asarray(V), torch.from_numpy(T), torch.from_numpy(V)
        jf = lambda U: jnp.sum((jT - U @ jV.T) ** 2)  # noqa: E731
        tf = lambda U: ((tT - U @ tV.T) ** 2).sum()  # noqa: E731
        arg = params["U"]
    jh, th = jax.jit(jax.hessian(jf)), torch.func.hessian(tf)
    jarg, targ = jnp.asarray(arg), torch.from_numpy(arg.copy())
    jh(jarg).block_until_ready()  # compile before timing
    return {"jax": lambda: np.asarray(jh(jarg).block_until_ready()), "torch": lambda: th(targ).numpy()}


def cpu_median(fn, rounds: int) -> float:
    """Median process CPU seconds of one call of ``fn`` over ``rounds`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(rounds):
        c0 = time.process_time()
        fn()
        times.append(time.process_time() - c0)
    return statistics.median(times)


def sig(x: float, n: int = 3) -> str:
    """``x`` to ``n`` significant digits, never in exponent notation."""
    if x == 0 or not np.isfinite(x):
        return str(x)
    x = float(f"{x:.{n}g}")  # rounded to n significant digits first: 1799 -> 1800
    digits = max(0, n - 1 - int(np.floor(np.log10(abs(x)))))
    return f"{x:.{digits}f}"


def verdict(ratios: dict, target: float = TARGET) -> str:
    """'met' when every baseline / einderiv ratio is at least ``target``, else 'not met (…)' naming
    the baselines that fall short."""
    short = [k for k, r in sorted(ratios.items()) if not r >= target]
    return "met" if not short else "not met (" + ", ".join(short) + ")"


def measure(name: str, sizes: dict, rounds: int, seed: int = 0) -> dict:
    """Check the three results against each other, then time them: a row of the table."""
    rng = np.random.default_rng(seed)
    params, data = problem_data(name, sizes, rng)
    ns = module(name, sizes)
    key = PROBLEMS[name][1]
    ours = lambda: ns["hessian"](params, data, [key])[key]  # noqa: E731  (that block only, like the baselines)
    others = baselines(name, params, data)
    want = ours()
    for who, fn in others.items():
        got = fn()
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9, atol=1e-9):
            err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("nan")
            raise SystemExit(f"{name} {sizes}: {who} differs from einderiv (shapes {got.shape}, {want.shape}; "
                             f"max difference {err:.2e})")
    times = {"einderiv": cpu_median(ours, rounds)}
    times.update({who: cpu_median(fn, rounds) for who, fn in others.items()})
    ratios = {who: times[who] / times["einderiv"] for who in others}
    return {"problem": name, "sizes": sizes, "times": times, "ratios": ratios, "verdict": verdict(ratios)}


def row(r: dict) -> str:
    sizes = ", ".join(f"{k}={v}" for k, v in r["sizes"].items())
    t, q = r["times"], r["ratios"]
    return (f"| {r['problem']} | {sizes} | {sig(t['einderiv'] * 1e3)} ms | {sig(t['jax'] * 1e3)} ms | "
            f"{sig(t['torch'] * 1e3)} ms | {sig(q['jax'])}× | {sig(q['torch'])}× | {r['verdict']} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="small sizes: a run of seconds")
    ap.add_argument("--rounds", type=int, default=None, help="timed calls per contender (default 7, --tiny 3)")
    ap.add_argument("--only", choices=sorted(PROBLEMS), action="append", help="run only these problems")
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.tiny else 7)
    threads = "one thread per library" if os.environ.get("OMP_NUM_THREADS") == "1" else "default threads"
    print(f"process CPU time, median of {rounds} calls after one warm-up, {threads}; {os.cpu_count()} CPUs; "
          f"target: einderiv ≥ {sig(TARGET)}× faster than each baseline")
    print("| problem | sizes | einderiv hessian | jax.jit(jax.hessian) | torch.func.hessian | jax / einderiv | "
          "torch / einderiv | verdict |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    results = []
    for name in args.only or PROBLEMS:
        for sizes in PROBLEMS[name][3 if args.tiny else 2]:
            results.append(measure(name, sizes, rounds))
            print(row(results[-1]), flush=True)
    met = sum(r["verdict"] == "met" for r in results)
    print(f"target met in {met} of {len(results)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
