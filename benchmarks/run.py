"""einderiv's generated NumPy kernels against the tools people use, side by side.

    pip install -e '.[bench]'          # torch (CPU), jax, jaxlib, backpack-for-pytorch
    python benchmarks/run.py           # writes docs/benchmarks.md
    python benchmarks/run.py --tiny    # seconds, to standard output; CI runs this to keep the script working

Every comparison runs in this one process, single-threaded (the thread variables
are set before numpy, torch and jax load), float64, on a tanh MLP with softmax
cross-entropy.  Each result is checked against its baseline before it is timed.
A *round* times every contender (best of ``inner`` calls, process CPU time and wall
time) and takes the ratio einderiv / baseline of the CPU times; the table reports the
median ratio over ``rounds`` rounds, after a warm-up.  CPU time is what the ratio uses
because the machine may be shared: another process's load moves wall time much more.
Missing baselines (torch, jax, BackPACK not installed) are skipped.  Every verdict is
computed from this run's numbers (:func:`verdict`).

``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (which pin OpenBLAS to another kernel set
on some machines) are removed from this process's environment together, and the table
says whether they were set and which BLAS ran (threadpoolctl, else numpy.show_config).
"""
from __future__ import annotations

import os
import sys

_PINNED = {v: os.environ.pop(v) for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ}
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_CPU_THREADS"):
    os.environ[_v] = "1"
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import backends  # noqa: E402  (benchmarks/backends.py: the torch and JAX backends' rows)
import baselines as bl  # noqa: E402  (benchmarks/baselines.py: hand-written NumPy, list-of-weights losses)
from timing import best  # noqa: E402  (benchmarks/timing.py: a call's CPU time, other threads' included)
import einderiv  # noqa: E402
from einderiv.frontend.check import load as load_text  # noqa: E402
from einderiv.calculus.derive import derive  # noqa: E402
from einderiv.emit.numpy import generate  # noqa: E402
from einderiv.numcheck import load as load_module  # noqa: E402

try:
    import torch
    import torch.func
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
except ImportError:  # pragma: no cover - optional baseline
    torch = None
try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - optional baseline
    jax = None


# ------------------------------------------------------------------ networks
def mlp_source(d_in: int, h: int, L: int, c: int) -> str:
    """An L-hidden-layer tanh MLP with softmax cross-entropy, in einderiv's notation."""
    dims = [d_in] + [h] * L + [c]
    lines = ["dims " + ", ".join(f"n{k} = {w}" for k, w in enumerate(dims)),
             "input x^i : n0", f"label y^l : n{L + 1}"]
    for k in range(1, L + 2):
        lines.append(f"weight W{k}^j_i : n{k}, n{k - 1}")
    prev = "x"
    for k in range(1, L + 1):
        lines.append(f"v{k}^j = tanh(W{k}^j_i {prev}^i)")
        prev = f"v{k}"
    lines.append(f"p^l = W{L + 1}^l_j {prev}^j")
    lines.append("f = softmax_cross_entropy(p, y)")
    return "\n".join(lines) + "\n"


def kernels(d_in, h, L, c, order):
    net = load_text(f"mlp_L{L}_h{h}.ein", mlp_source(d_in, h, L, c))
    return load_module(generate(derive(net, order, expanded=False)))  # what `einderiv codegen` writes


def problem(d_in, h, L, c, B, seed=0):
    rng = np.random.default_rng(seed)
    dims = [d_in] + [h] * L + [c]
    params = {f"W{k}": rng.normal(0, 1 / np.sqrt(dims[k - 1]), (dims[k], dims[k - 1])) for k in range(1, L + 2)}
    x = rng.normal(size=(B, d_in))
    y = np.eye(c)[rng.integers(0, c, B)]
    return params, {"x": x, "y": y}


# ------------------------------------------------------------------ baselines
def flatten(d, names):
    return np.concatenate([np.ravel(d[n]) for n in names])


# ------------------------------------------------------------------ timing
class Times(dict):
    """name -> list of per-round best CPU times (seconds); ``wall``: the same for wall time."""

    def __init__(self, names):
        super().__init__({k: [] for k in names})
        self.wall = {k: [] for k in names}


def compare(contenders: dict, rounds: int, inner: int, warmup: int = 3) -> Times:
    """Every contender in every round; per round its best CPU and wall time."""
    for fn in contenders.values():  # warm-up (and jit compilation)
        for _ in range(warmup):
            fn()
    times = Times(contenders)
    for _ in range(rounds):
        for k, fn in contenders.items():
            cpu, wall = best(fn, inner)
            times[k].append(cpu)
            times.wall[k].append(wall)
    return times


def ratio(times, a, b, wall: bool = False) -> float:
    """Median over rounds of the CPU-time ratio a / b (``wall``: of the wall times — on a GPU,
    whose work is not this process's CPU time)."""
    ta, tb = (times.wall[a], times.wall[b]) if wall else (times[a], times[b])
    return statistics.median(x / y for x, y in zip(ta, tb))


def sig(x: float, n: int = 3) -> str:
    """``x`` to ``n`` significant digits, never in exponent notation (the verdict parses it)."""
    if x == 0 or not np.isfinite(x):
        return str(x)
    digits = max(0, n - 1 - int(np.floor(np.log10(abs(x)))))
    return f"{x:.{digits}f}"


def rx(r: float) -> str:
    return sig(r) + "×"


def ms(t):
    return sig(t * 1e3) + " ms"


def cw(times, k) -> str:
    """A contender's median CPU time and median wall time."""
    cpu, wall = statistics.median(times[k]), statistics.median(times.wall[k])
    return f"{ms(cpu)} (wall {ms(wall)})"


def close(got, want, what, tol=1e-9):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    err = float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))
    if not err <= tol:
        raise SystemExit(f"{what}: einderiv differs from the baseline by {err:.2e}")
    return err


# ------------------------------------------------------------------ the runs
#: a ratio within this factor above its target is reported as borderline (run-to-run noise
#: on the shared 2-core machine is ±20–30%)
NOISE = 1.25


def verdict(measured: str, target: str) -> str:
    """'met', 'borderline' or 'not met' from a row's measured cell and its target ('≤ 1.1×',
    '< 1×', '≤ L^1', '≥ 50%'); '—' when the target is not a bound."""
    bound = re.match(r"\s*([≤<≥>])\s*(L\^)?([0-9.]+)", target)
    value = re.search(r"(L\^)?([0-9]+\.?[0-9]*)", measured)
    if not bound or not value or bool(bound.group(2)) != bool(value.group(1)):
        return "—"
    op, limit, got = bound.group(1), float(bound.group(3)), float(value.group(2))
    if op in "≥>":
        if got > limit or (op == "≥" and got == limit):
            return "met"
        return "borderline" if got * NOISE >= limit else "not met"
    if got < limit or (op == "≤" and got == limit):
        return "met"
    return "borderline" if got <= NOISE * limit else "not met"


class Table:
    def __init__(self):
        self.rows = []

    def add(self, *cells):
        cells = cells + (verdict(str(cells[5]) if cells[5] else str(cells[2]), str(cells[6])),)
        self.rows.append(cells)
        print(" | ".join(str(c) for c in cells), flush=True)


def torch_list(params, data):
    Ws = [torch.tensor(W) for W in bl.weights(params)]
    return Ws, torch.tensor(data["x"]), torch.tensor(data["y"])


def jax_list(params, data):
    return [jnp.asarray(W) for W in bl.weights(params)], jnp.asarray(data["x"]), jnp.asarray(data["y"])


def run_config(tab, d_in, h, L, c, B, rounds, inner):
    """gradient, per-sample norms, hvp and the GGN diagonal against hand-written NumPy and the libraries."""
    cfg = f"L={L}, h={h}, B={B}"
    mod = kernels(d_in, h, L, c, 2)
    params, data = problem(d_in, h, L, c, B)
    names = list(mod["PARAMS"])
    g = mod["gradient"](params, data)
    vector = {n: np.random.default_rng(1).normal(size=s) for n, s in mod["PARAMS"].items()}
    hv, ggn = mod["hvp"](params, data, vector), mod["ggn_diagonal"](params, data)
    want = {"gradient": bl.backprop(params, data), "hvp": bl.r_operator(params, data, vector),
            "ggn": bl.ggn_diagonal(params, data)}
    for n in names:
        close(g[n], want["gradient"][n], f"{cfg} gradient {n}")
        close(hv[n], want["hvp"][n], f"{cfg} hvp {n}")
        close(ggn[n], want["ggn"][n], f"{cfg} ggn_diagonal {n}")
    contenders = {"einderiv": lambda: mod["gradient"](params, data), "numpy": lambda: bl.backprop(params, data),
                  "norms": lambda: mod["per_sample_gradient_norms"](params, data),
                  "hvp": lambda: mod["hvp"](params, data, vector),
                  "numpy_hvp": lambda: bl.r_operator(params, data, vector),
                  "ggn": lambda: mod["ggn_diagonal"](params, data), "numpy_ggn": lambda: bl.ggn_diagonal(params, data)}
    norms = mod["per_sample_gradient_norms"](params, data)
    psg = mod["per_sample_gradient"](params, data)
    for n in names:
        close(norms[n], np.sqrt((psg[n].reshape(B, -1) ** 2).sum(1)), f"{cfg} norms {n}")
    if torch is not None:
        Ws, tx, ty = torch_list(params, data)
        Wr = [W.clone().requires_grad_() for W in Ws]

        def torch_grad():
            return torch.autograd.grad(bl.torch_loss(Wr, tx, ty), Wr)
        for n, a in zip(names, torch_grad()):
            close(a.numpy(), g[n], f"{cfg} torch gradient {n}")
        contenders["torch"] = torch_grad
        vgrad = torch.func.vmap(torch.func.grad(lambda W, xb, yb: bl.torch_loss(W, xb[None], yb[None])),
                                in_dims=(None, 0, 0))

        def torch_norms():
            return [G.reshape(B, -1).norm(dim=1) for G in vgrad(Ws, tx, ty)]
        for n, got in zip(names, torch_norms()):
            close(got.numpy(), norms[n], f"{cfg} torch per-sample norms {n}")
        contenders["torch_norms"] = torch_norms
        tv = [torch.tensor(vector[n]) for n in names]

        def torch_hvp():
            gr = torch.autograd.grad(bl.torch_loss(Wr, tx, ty), Wr, create_graph=True)
            return torch.autograd.grad(sum((a * v).sum() for a, v in zip(gr, tv)), Wr)
        for n, got in zip(names, torch_hvp()):
            close(got.numpy(), hv[n], f"{cfg} torch hvp {n}")
        contenders["torch_hvp"] = torch_hvp
        if bl.backpack is not None:
            diag = bl.backpack_diag_ggn(params, data)
            for n, got in diag().items():
                close(got.detach().numpy(), ggn[n], f"{cfg} BackPACK DiagGGNExact {n}")
            contenders["backpack_ggn"] = diag
    if jax is not None:
        jW, jx, jy = jax_list(params, data)
        jgrad = jax.jit(jax.grad(bl.jax_loss))
        for n, a in zip(names, jgrad(jW, jx, jy)):
            close(np.asarray(a), g[n], f"{cfg} jax gradient {n}")
        contenders["jax"] = lambda: jax.block_until_ready(jgrad(jW, jx, jy))
        jnorm = jax.jit(lambda W, x, y: [jnp.linalg.norm(G.reshape(B, -1), axis=1) for G in jax.vmap(
            jax.grad(lambda W, xb, yb: bl.jax_loss(W, xb[None], yb[None])), (None, 0, 0))(W, x, y)])
        for n, got in zip(names, jnorm(jW, jx, jy)):
            close(np.asarray(got), norms[n], f"{cfg} jax per-sample norms {n}")
        contenders["jax_norms"] = lambda: jax.block_until_ready(jnorm(jW, jx, jy))
    t = compare(contenders, rounds, inner)
    rows = [("gradient", "einderiv", "numpy", "hand-written NumPy matmul backprop", "≤ 1.1×"),
            ("gradient", "einderiv", "torch", "torch autograd, list of weights", "< 1×"),
            ("gradient", "einderiv", "jax", "jax.grad (jit), list of weights", "—"),
            ("per_sample_gradient_norms", "norms", "einderiv", "einderiv gradient", "≤ 1.2×"),
            ("per_sample_gradient_norms", "norms", "torch_norms", "torch.func vmap(grad), list of weights",
             "≤ 0.1×"),
            ("per_sample_gradient_norms", "norms", "jax_norms", "jax vmap(grad) (jit), list of weights", "—"),
            ("hvp", "hvp", "numpy_hvp", "hand-written NumPy R-operator", "≤ 1.1×"),
            ("hvp", "hvp", "torch_hvp", "torch double backward, list of weights", "—"),
            ("ggn_diagonal", "ggn", "numpy_ggn", "hand-written NumPy, softmax Hessian as AᵀA", "≤ 1.1×"),
            ("ggn_diagonal", "ggn", "backpack_ggn", "BackPACK DiagGGNExact", "≤ 0.5×"),
            ("ggn_diagonal", "ggn", "einderiv", "einderiv gradient", "—")]
    for fn, a, b, label, target in rows:
        if a in t and b in t:
            tab.add(cfg, fn, cw(t, a), label, cw(t, b), rx(ratio(t, a, b)), target)


def gradient_sweep(tab, sizes, rounds, inner, memory_batch):
    """The gradient against hand-written backprop over batch sizes and depths; peak memory."""
    for d_in, h, L, c, B in sizes:
        mod = kernels(d_in, h, L, c, 1)
        params, data = problem(d_in, h, L, c, B)
        g, want = mod["gradient"](params, data), bl.backprop(params, data)
        for n in g:
            close(g[n], want[n], f"sweep gradient {n}")
        t = compare({"einderiv": lambda: mod["gradient"](params, data),
                     "numpy": lambda: bl.backprop(params, data)}, rounds, inner)
        label = f"L={L}, h={h}, B={B}" if (d_in, c) == (h, 10) else f"L={L}, h={h}, n={d_in}, c={c}, B={B}"
        tab.add(label, "gradient (sweep)", cw(t, "einderiv"), "hand-written NumPy backprop",
                cw(t, "numpy"), rx(ratio(t, "einderiv", "numpy")), "≤ 1.1×")
        if B == memory_batch:
            peaks = {k: peak_memory(fn) for k, fn in (("einderiv", lambda: mod["gradient"](params, data)),
                                                       ("numpy", lambda: bl.backprop(params, data)))}
            tab.add(label, "gradient peak memory", f"{sig(peaks['einderiv'] / 2**20)} MB",
                    "hand-written NumPy backprop", f"{sig(peaks['numpy'] / 2**20)} MB",
                    rx(peaks["einderiv"] / peaks["numpy"]), "≤ 1.2×")


def peak_memory(fn) -> int:
    """Bytes allocated at the peak of one call (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def matmul_rate(n=2048) -> float:
    """This machine's one-thread DGEMM rate (GFLOP/s, CPU time), the best of five n × n products."""
    a, b = np.random.default_rng(0).normal(size=(2, n, n))
    return 2 * n ** 3 / best(lambda: a @ b, 5)[0] / 1e9


def run_hessian(tab, d_in, h, L, c, B, rounds, inner, libraries=True):
    """The full P × P Hessian: useful rate 2·B·P² / DGEMM rate, peak memory, and the libraries."""
    cfg = f"L={L}, h={h}, B={B}"
    mod = kernels(d_in, h, L, c, 2)
    params, data = problem(d_in, h, L, c, B)
    names = list(mod["PARAMS"])
    P = sum(int(np.prod(s)) for s in mod["PARAMS"].values())
    label = f"{cfg}, P={P}"
    out = np.zeros((P, P))
    H = mod["hessian"](params, data, out=out)
    assert np.shares_memory(H[(names[0], names[-1])], out)
    contenders = {"einderiv": lambda: mod["hessian"](params, data, out=out)}
    if libraries and torch is not None:
        Ws, tx, ty = torch_list(params, data)
        idx = tuple(range(len(Ws)))
        th = lambda: torch.func.hessian(lambda *W: bl.torch_loss(W, tx, ty), argnums=idx)(*Ws)  # noqa: E731
        got = th()
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                close(got[i][j].numpy(), H[(a, b)], f"{cfg} torch hessian {a},{b}")
        del got
        contenders["torch"] = th
    if libraries and jax is not None:
        jW, jx, jy = jax_list(params, data)
        jh = jax.jit(jax.hessian(lambda W: bl.jax_loss(W, jx, jy)))
        got = jh(jW)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                close(np.asarray(got[i][j]), H[(a, b)], f"{cfg} jax hessian {a},{b}")
        del got
        contenders["jax"] = lambda: jax.block_until_ready(jh(jW))
    t = compare(contenders, rounds, inner, warmup=1)
    cpu = statistics.median(t["einderiv"])
    gflops, rate = 2 * B * P * P / cpu / 1e9, matmul_rate()
    if "torch" in t:
        tab.add(label, "hessian", cw(t, "einderiv"), "torch.func.hessian, list of weights", cw(t, "torch"),
                rx(ratio(t, "einderiv", "torch")), "≤ 0.07×")
    if "jax" in t:
        tab.add(label, "hessian", cw(t, "einderiv"), "jax.hessian (jit), list of weights", cw(t, "jax"),
                rx(ratio(t, "einderiv", "jax")), "≤ 0.1×")
    tab.add(label, "hessian rate (out= buffer)", f"{sig(gflops)} GFLOP/s", "one-thread DGEMM, 2048²",
            f"{sig(rate)} GFLOP/s", f"{sig(100 * gflops / rate)}%", "≥ 50% (2·B·P² flops)" if P >= 6000 else "—")
    extra = peak_memory(lambda: mod["hessian"](params, data, out=out))
    fresh = peak_memory(lambda: mod["hessian"](params, data))
    dense = 8 * P * P
    tab.add(label, "hessian peak memory", f"{sig(extra / 2**20)} MB beyond out=", "the dense Hessian",
            f"{sig(dense / 2**20)} MB", rx((dense + extra) / dense), "≤ 1.1×")
    tab.add(label, "hessian peak memory, no out=", f"{sig(fresh / 2**20)} MB", "the dense Hessian",
            f"{sig(dense / 2**20)} MB", rx(fresh / dense), "≤ 1.1×")


def depth_curves(tab, depths, engine_depths, B, h, rounds, inner, cli_depth=None):
    """Gradient time against depth (generated kernel), engine time against depth, and
    ``einderiv codegen --order 2`` through the CLI (a fresh process: import included)."""
    grad_t = []
    for L in depths:
        mod = kernels(h, h, L, 10, 1)
        params, data = problem(h, h, L, 10, B)
        close(mod["gradient"](params, data)["W1"], bl.backprop(params, data)["W1"], f"depth {L} gradient")
        t = compare({"g": lambda: mod["gradient"](params, data),
                     "np": lambda: bl.backprop(params, data)}, rounds, inner)
        grad_t.append(statistics.median(t["g"]))
        tab.add(f"L={L}, h={h}, B={B}", "gradient vs depth", cw(t, "g"), "hand-written NumPy",
                cw(t, "np"), rx(ratio(t, "g", "np")), "≤ 1.1×")
    slope = np.polyfit(np.log(depths), np.log(grad_t), 1)[0]
    tab.add(f"L={depths[0]}..{depths[-1]}", "gradient growth", f"∝ L^{slope:.2f}", "", "", "", "≤ L^1")
    eng = []
    for L in engine_depths:
        net = load_text("e.ein", mlp_source(8, 8, L, 3))
        c0 = time.process_time()
        d = derive(net, 2, expanded=False)  # the `einderiv codegen` path
        c1 = time.process_time()
        src = generate(d)
        c2 = time.process_time()
        eng.append(c2 - c0)
        tab.add(f"L={L}, h=8", "engine: derive order 2 + generate (in process, CPU)", f"{sig(c2 - c0)} s",
                f"derive {sig(c1 - c0)} s, generate {sig(c2 - c1)} s", f"{sig(len(src) / 1e6)} MB", "", "")
    if len(engine_depths) > 1:
        first = 1 if len(engine_depths) > 2 else 0  # the smallest is mostly fixed cost
        slope = np.polyfit(np.log(engine_depths[first:]), np.log(eng[first:]), 1)[0]
        tab.add(f"L={engine_depths[first]}..{engine_depths[-1]}", "engine growth", f"∝ L^{slope:.2f}",
                "", "", "", "≤ L^1.5")
    if cli_depth:
        cli_rows(tab, cli_depth)


def cli_rows(tab, L: int, repeats: int = 5):
    """``einderiv codegen --order 2`` of the L-layer network as a user runs it (``python -m einderiv``,
    a fresh process each time: imports included): once with ``--no-cache`` (the whole derivation),
    then answered from a warm cache (the start-up), each answer checked byte-identical to the
    uncached one.  CPU time of the child process (the median of ``repeats`` for the start-up)."""
    folder = pathlib.Path(tempfile.mkdtemp())
    path = folder / f"mlp{L}.ein"
    path.write_text(mlp_source(8, 8, L, 3), encoding="utf-8")
    env = dict(os.environ, EINDERIV_CACHE=str(folder / "cache"))

    def fresh(*extra):
        w0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([sys.executable, "-m", "einderiv", "codegen", str(path), "--order", "2", *extra],
                             check=True, stdout=subprocess.PIPE, cwd=ROOT, env=env).stdout
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), time.perf_counter() - w0, out

    cpu, wall, uncached = fresh("--no-cache")
    tab.add(f"L={L}, h=8", "engine: `einderiv codegen --order 2` (CLI, --no-cache)", f"{sig(cpu)} s CPU",
            f"wall {sig(wall)} s", "", "", "< 2 s")
    fresh()  # derives once more and keeps the module
    warm = [fresh() for _ in range(repeats)]
    if any(out != uncached for _, _, out in warm):
        raise AssertionError("the cached module differs from the uncached one")
    tab.add(f"L={L}, h=8", "CLI start-up: `einderiv codegen` answered from a warm cache (fresh process)",
            f"{sig(statistics.median(c for c, _, _ in warm))} s CPU",
            f"wall {sig(statistics.median(w for _, w, _ in warm))} s", "", "", "≤ 0.3 s")


#: the width of the largest Hessian run against torch and JAX (P = 2h² + 10h)
HESSIAN_H = 68
#: the width of the largest Hessian run alone (P ≈ 15,000): torch and JAX there need more memory
#: than a shared machine can promise
SOLO_H = 84


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def blas() -> str:
    """The BLAS NumPy runs on: threadpoolctl's account, else numpy.show_config's."""
    try:
        import threadpoolctl
        infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            return (f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')} kernels, "
                    f"{i.get('num_threads')} thread{'s' if i.get('num_threads') != 1 else ''}; threadpoolctl)")
    except ImportError:
        pass
    cfg = np.show_config(mode="dicts") or {}
    lib = cfg.get("Build Dependencies", {}).get("blas", {})
    return f"{lib.get('name', 'unknown')} {lib.get('version', '')} (numpy.show_config)"


#: why a target can be missed, and what would reach it (function name prefix -> text)
REASONS = {
    "gradient peak memory":
        "Why: the generated gradient deletes each array after its last read (emit/liveness.py) and makes "
        "each parameter's gradient as soon as its adjoint exists (emit/straight.py), as hand-written "
        "backprop does; what is left are NumPy's temporaries inside one statement (v², 1 − v², the "
        "product), the same on both sides.  What would reach it: elementwise updates in place (out=).",
    "gradient":
        "Why: the generated gradient is one straight-line function of locals doing hand-written "
        "backprop's operations (the matmuls, (s − y)/B once at the top, 1 − v², each array deleted after "
        "its last read); a miss here is run-to-run noise at the smallest sizes, where a call takes tens "
        "of µs.  What would reach it: more rounds on a quieter machine.",
    "hvp":
        "Why: the generated hvp is one straight-line function of locals doing the R-operator's matmuls, "
        "the softmax's R-adjoint as s⊙Rp − s(s·Rp) (no B × c × c Hessian), the adjoint and R-adjoint "
        "divided by B once; a miss here is run-to-run noise at the smallest sizes.  What would reach it: "
        "more rounds on a quieter machine.",
    "ggn_diagonal":
        "Why: both back-propagate c rows per sample (B·c·h per layer) and release them layer by layer; "
        "einderiv weights the squared rows by the factored softmax Hessian (Σ_c s_c J_c² − (s·J)², three "
        "B·c·h passes) where the hand-written code squares A's rows (two), and it calls one function per "
        "back-propagated quantity through the dict t.  What would reach it: the rows of A = diag(√s) − √s sᵀ "
        "back-propagated instead of the identity's (one B·c·c product at the top), and straight-line "
        "functions as for the gradient.",
    "hessian peak memory, no out=":
        "Why: without out= the call allocates the P × P result itself; beyond it, as with out=, the "
        "forward pass, the second-order adjoints that blocks still read (B × h × h each, deleted "
        "after their last reader) and one chunk of Khatri–Rao rows.  What would reach it: pass out= "
        "(the row above is the same call), or row chunks sized to a share of P² instead of a fixed 512 KB.",
    "hessian peak memory":
        "Why: beyond out=, a call holds the forward pass, the second-order adjoints hess[s,s'] that "
        "blocks still read (B × h × h each, deleted after their last reader: at most a few at once) "
        "and one chunk of Khatri–Rao rows; at small P these are a larger share of the P² buffer "
        "(they grow as B·h², the buffer as h⁴).  What would reach it: row chunks sized to a share "
        "of P² instead of a fixed 512 KB.",
    "hessian rate":
        "Why: every block between two dense layers is Σ_B G[B,j,k] a[B,i] b[B,l], a matmul per row j "
        "with inner dimension B (64) and I = h rows, which alone runs at about 80% of the 2048² DGEMM "
        "rate; the Khatri–Rao rows G[B,j,k] b[B,l] are formed (memory-bound) before each, the "
        "mirrored blocks are a transposed copy, and the second-order adjoints are B × h × h "
        "elementwise passes (at h = 68: about 60% of the time in the three h⁴ blocks' row loops, "
        "10% mirroring, 10% the adjoints and diagonal terms, the rest the blocks with the output "
        "layer).  The memory-bound parts suffer most when other jobs share the memory bus and "
        "caches.  What would reach it: a fused kernel (the Khatri–Rao product formed inside the "
        "GEMM's packing, the mirror written from the GEMM's output tile), or a larger batch per "
        "call (K = B).",
    "hessian":
        "Why: see the rate row: the einderiv side is DGEMM-bound with small inner dimension, and the "
        "libraries' side grows as P² · B · h too (forward-over-reverse, one HVP per column); the "
        "ratio is the two constants (jax's includes the CPU its worker thread spends after the call "
        "returns, benchmarks/timing.py).  What would reach it: a faster assembly (rate row).",
    "engine":
        "Why: an order-2 module has one block per pair of layers, (L+1)² of them, each derived, "
        "simplified, lowered and printed on its own (the module itself grows as L², the MB "
        "column), so past the fixed costs the time grows as L²; the work per block no longer "
        "grows with L (no scan of every node per block), and the cyclic GC is off while deriving.  "
        "Since the per-block `hessian(…, blocks=)` each of its statements sits under a test of the "
        "blocks that read it, lowered and freed inside that test, and those tests list the blocks by "
        "key: the lists grow as L³ (1.4 of the 4.15 MB at L = 32; tests/test_engine_scaling.py names "
        "it).  Profile at L = 32: derive about a third (calculus/simplify.py's expansion most), "
        "lowering a fifth, liveness a fifth, printing a tenth.  "
        "A fresh CLI process also pays its imports (about 0.5 s: SymPy, NumPy, lark and opt_einsum "
        "0.3 s, einderiv's modules the rest; about 0.1 s more where Python writes no bytecode and "
        "compiles einderiv's sources each time).  What would reach it: "
        "blocks of equal structure derived once and printed as one loop over layer pairs "
        "(as order 3 shares formulas with emit/share.py); a repeated command is answered "
        "from the cache (the start-up row).",
    "CLI start-up":
        "Why: a fresh Python process with the cache's key (a stat of each of einderiv's source files) "
        "and the replay; SymPy and NumPy are not imported.  What would reach it: a lighter key "
        "(einderiv's version alone, at the price of stale answers under an editable install).",
    "torch backend: per_sample_gradient_norms":
        "Why: the generated function is straight-line at one torch op per matmul, activation, activation "
        "backward and factor norm (einderiv/emit/straight.py, with torch_fuse.py); its products with a weight "
        "are computed with the batch axis last, (W @ x.T).T (MKL's faster way round: a (1024, 32) batch by a "
        "32 × 32 weight in 50 µs against 80 µs), and tanh and a softmax come from cheaper ops than torch's "
        "CPU kernels (torch.py's _tanh from 4096 entries; _softmax along the transposed logits' first axis). "
        "What is left is mostly the forward and backward matmuls, which vmap(grad) also pays (half or more of "
        "the CPU time from B = 256), and tanh (expm1 costs about 1.5 ns an entry in float64: a quarter of the "
        "time at L=4, h=64); at L=2, h=32, B=64 each op's fixed dispatch cost (about 24 ops at 2–4 µs, a "
        "64 × 32 matmul ≈6 µs).  What would reach it: fewer ops than one per layer (torch.compile of the "
        "module), a cheaper float64 tanh than torch's expm1.",
}


#: the section of docs/benchmarks.md that benchmarks/order3.py measures, kept when this script rewrites it
ORDER3 = "\n## Third derivatives"

#: how to read the rows (which targets are met is the verdict column's, computed in the run)
STATUS = """
## Reading the table

The verdict column is computed from each row's ratio and target in this run.  On a shared 2-core
machine the same ratio moves by up to ±20–30% between runs, so a ratio above its target by less
than that is called borderline, not met or missed.  Ratios are of process CPU times (the other
jobs on the machine move wall times much more); both are shown.

* `gradient` against hand-written NumPy backprop: the matmuls are the same; the generated
  gradient is one straight-line function of locals (no dict of tensors, no call per named
  quantity, the objective's value not computed), each array deleted after its last read.
* `per_sample_gradient_norms` contracts the factors of each per-sample gradient: about one
  gradient's cost, nothing of size B × P formed (a test spies on array sizes).
* `hvp` is the R-operator derived from the gradient expression (forward tangents and
  R-adjoints, all vector-sized), against Pearlmutter's R-operator written by hand
  (benchmarks/baselines.py).
* `ggn_diagonal` against the hand-written exact GGN diagonal that factors the softmax Hessian
  once at the top (diag(s) − s sᵀ = AᵀA, c rows back-propagated), and against BackPACK's
  `DiagGGNExact`, measured in this run.  einderiv writes the objective's Hessian into the
  diagonal symbolically (Σ_c s_c J_c² − (Σ_c s_c J_c)² over its c back-propagated rows J: the
  same B·c·h per layer, no c × c array per sample) and releases each layer's rows after their
  last reader.
* `hessian` goes through the second-order adjoints hess[s,s'] (B × h × h per pair of layers),
  each deleted after the last block that reads it.  Each pair of blocks (a, b), (b, a) is
  computed once; the NumPy module writes every block into one P × P array (`out=`, reused
  across calls, so no fresh gigabyte array is paged in), the terms Σ_B hess[B,j,k] v[B,i] v'[B,l]
  as a matmul per row j straight into it (one for the terms that share v), an activation's
  diagonal Jacobian as a write on the block's diagonal, and the transposed block by a tiled
  copy.  Rate = useful 2·B·P² flops / CPU time, against this machine's one-thread 2048² DGEMM
  (the best of five).
  torch.func.hessian and jax.hessian differentiate a list of weight tensors (no slicing of a flat
  vector).  The largest torch/JAX comparison is at P ≈ 10,000: at P ≈ 15,000 their
  forward-over-reverse Hessians need several GB beyond the 1.8 GB result, more than this shared
  machine could promise; einderiv alone is measured there.
* The engine rows time `derive` (order 2, compact form: O(L²) terms) and `generate` in process
  (CPU), and `einderiv codegen --order 2` of the 32-layer network through the CLI in a fresh
  process with `--no-cache` (its CPU time, SymPy's import included).  The start-up row runs the
  same command answered from a warm cache (einderiv.cache: keyed by file content, command line,
  einderiv's code and the libraries), in a fresh process each time, its output checked
  byte-identical to the uncached one: it imports neither SymPy nor NumPy.
""".splitlines()


#: how to read the backend rows (their verdicts are in the table)
BACKEND_STATUS = """
## The torch and JAX backends

The torch rows time the generated torch module against what a torch user writes for the same
network: autograd and `torch.func.vmap(grad)` over a list of weight tensors, BackPACK's
`BatchL2Grad` (one backward pass with its extension; its per-sample gradients are those of
f_b / B, rescaled before the comparison), and `torch.func.hessian`.  The generated gradient and
autograd do the same matmuls; what separates them is per-op overhead (Python dispatch in the
generated functions against autograd's graph recording).  `per_sample_gradient_norms` contracts
the factors of each per-sample gradient (‖δ_b‖ ‖x_b‖ for a dense layer: two vector norms and a
product, no B × P array) after one backward pass without the weight-gradient matmuls, in a
straight-line function (forward pass and adjoints inlined, no objective value, a tanh's
backward one op; each product with a weight computed with the batch axis last, `(W @ x.T).T`,
MKL's faster way round from B = 256, and the softmax then along the first axis of the
transposed logits; on the CPU from 4096 entries tanh from expm1, about half torch's own
kernel's time): its cost is below one gradient's, while vmap(grad) forms every per-sample
gradient.  `gradient` takes its products the same way.
The JAX rows compile both sides with `jax.jit`.  `benchmarks/run.py --device cuda` writes the same torch rows in float32 on a
GPU, with the exact Hessian against `torch.func.hessian` at P = 21,000, to
docs/benchmarks-cuda.md.
""".splitlines()


def unmet(tab) -> list:
    """The rows of this run whose target was not met (or only borderline), each with why (REASONS)."""
    lines = ["", "## Targets not met in this run", ""]
    rows = [r for r in tab.rows if r[-1] in ("not met", "borderline")]
    if not rows:
        return lines + ["Every row with a target met it in this run."]
    lines += ["Computed from the table above; the reasons are what profiling found (see below).", ""]
    for r in rows:
        why = next((text for key, text in REASONS.items() if r[1].startswith(key)), "")
        versus = f" vs {r[3]}" if r[3] and r[5] else ""  # (a row without a baseline: a time or a growth)
        lines.append(f"* {r[1]}, {r[0]}: {r[5] or r[2]} against {r[6]} ({r[-1]}){versus}. {why}".rstrip())
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, few rounds (CI)")
    ap.add_argument("-o", "--output", default=None,
                    help="where the table goes (default docs/benchmarks.md; with --device, docs/benchmarks-DEVICE.md; "
                         "with --tiny, standard output: tiny sizes never overwrite the measured table)")
    ap.add_argument("--device", default=None, metavar="DEV",
                    help="instead of the CPU suite, the torch backend's rows on DEV (e.g. cuda) in float32, and "
                         "the exact Hessian against torch.func.hessian at P = 21,000")
    args = ap.parse_args(argv)
    output = args.output or ("-" if args.tiny else
                             str(ROOT / "docs" / (f"benchmarks-{args.device}.md" if args.device else "benchmarks.md")))
    tab = Table()
    here = sys.modules[__name__]
    shared = (here, mlp_source, problem, close)
    if args.device:
        if torch is None:
            raise SystemExit("--device needs torch")
        try:  # the device must exist here: nothing below assumes a GPU
            torch.empty(1, device=args.device)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise SystemExit(f"--device {args.device}: torch cannot use it ({str(exc).splitlines()[0]})")
        configs = [(4, 5, 2, 3, 6)] if args.tiny else [(32, 32, 2, 10, 64), (64, 64, 4, 10, 256),
                                                       (256, 256, 4, 10, 1024)]
        for cfg in configs:
            backends.torch_rows(tab, *shared, cfg, 2 if args.tiny else 7, 2 if args.tiny else 20,
                                device=args.device, dtype="float32")
        backends.torch_hessian_rows(tab, *shared, (4, 5, 2, 3, 6) if args.tiny else (100, 100, 2, 10, 64),
                                    2 if args.tiny else 3, 1, device=args.device, dtype="float32")
    elif args.tiny:
        run_config(tab, 4, 5, 2, 3, 6, rounds=2, inner=2)
        run_hessian(tab, 4, 5, 2, 3, 6, rounds=2, inner=1)
        gradient_sweep(tab, [(4, 5, 2, 3, 16)], 2, 2, memory_batch=16)
        depth_curves(tab, [2, 3], [2, 3], 6, 5, rounds=2, inner=2, cli_depth=3)
        if torch is not None:
            backends.torch_rows(tab, *shared, (4, 5, 2, 3, 6), 2, 2)
            backends.torch_hessian_rows(tab, *shared, (4, 5, 2, 3, 6), 2, 1)
        if jax is not None:
            backends.jax_rows(tab, *shared, (4, 5, 2, 3, 6), 2, 2)
    else:
        run_config(tab, 32, 32, 2, 10, 64, rounds=9, inner=50)
        run_config(tab, 64, 64, 4, 10, 256, rounds=9, inner=10)
        gradient_sweep(tab, [(16, 32, 2, 4, 64)] + [(32, 32, 2, 10, B) for B in (16, 64, 256, 1024, 4096)]
                       + [(256, 256, 2, 10, 4096)], 9, 5, memory_batch=4096)
        run_hessian(tab, 32, 32, 2, 10, 64, rounds=5, inner=2)
        run_hessian(tab, 54, 54, 2, 10, 64, rounds=5, inner=2, libraries=False)
        run_hessian(tab, HESSIAN_H, HESSIAN_H, 2, 10, 64, rounds=3, inner=1)
        run_hessian(tab, SOLO_H, SOLO_H, 2, 10, 64, rounds=3, inner=1, libraries=False)
        depth_curves(tab, [2, 4, 8, 16, 32], [4, 8, 16, 32], 64, 32, rounds=9, inner=20, cli_depth=32)
        if torch is not None:
            for cfg, rounds, inner in (((32, 32, 2, 10, 64), 9, 50), ((64, 64, 4, 10, 256), 9, 20),
                                       ((32, 32, 2, 10, 1024), 9, 10), ((64, 64, 4, 10, 1024), 5, 3)):
                backends.torch_rows(tab, *shared, cfg, rounds, inner)  # B = 1024: where tanh and softmax weigh
            backends.torch_hessian_rows(tab, *shared, (32, 32, 2, 10, 64), 5, 2)
        if jax is not None:
            for cfg, rounds, inner in (((32, 32, 2, 10, 64), 9, 50), ((64, 64, 4, 10, 256), 9, 20)):
                backends.jax_rows(tab, *shared, cfg, rounds, inner)
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}", f"einderiv {einderiv.__version__}"
                if hasattr(einderiv, "__version__") else "einderiv (this commit)"]
    if torch is not None:
        versions.append(f"torch {torch.__version__}")
    if jax is not None:
        versions.append(f"jax {jax.__version__}")
    if backends.backpack is not None:
        versions.append(f"backpack-for-pytorch {importlib.metadata.version('backpack-for-pytorch')}")
    clock = "wall" if args.device and args.device != "cpu" else "CPU"  # what the ratios divide
    head = [
        "# Benchmarks",
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by "
        f"`python benchmarks/run.py{' --tiny' if args.tiny else ''}"
        f"{' --device ' + args.device if args.device else ''}` "
        f"(after `pip install -e '.[bench]'`) on {platform.machine()} ({cpu_name()}), "
        f"{os.cpu_count()} cores, one thread everywhere, "
        + (f"float32 on {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda")
                                          and torch.cuda.is_available() else "") + "."
           if args.device else "float64."),
        "Versions: " + ", ".join(versions) + ".",
        f"BLAS: {blas()}.  " + (f"{' and '.join(f'`{k}`' for k in _PINNED)} "
                                f"{'was' if len(_PINNED) == 1 else 'were'} set in the environment; "
                                "`OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` are both unset for this process."
                                if _PINNED else "`OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` were not set."),
        "The machine was shared with other jobs during the run (load average "
        f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores): "
        + (f"ratios are of wall times on {args.device} (every timed call ends with a synchronisation; a "
           "device's work is not process CPU time), medians over rounds; CPU times are shown first."
           if args.device and args.device != "cpu" else
           "ratios are of process CPU times, medians over rounds; wall times are shown in parentheses."),
        "",
        "Network: tanh MLP, softmax cross-entropy, no biases, input width = h, 10 classes. "
        f"Ratio = median over rounds of (einderiv {clock} time / baseline {clock} time), each time the best of "
        "several calls; times are medians, three significant digits; every result was checked against "
        "its baseline first.  Verdict: computed "
        f"from the ratio and the target in this run (borderline: above the target by at most {NOISE}×, "
        "the run-to-run noise of this machine).  Rows named 'torch backend' / 'jax backend' time the "
        "module `einderiv codegen --backend torch|jax` writes (benchmarks/backends.py).",
        "",
        "| network | function | einderiv (CPU) | baseline | baseline (CPU) | ratio | target | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    body = ["| " + " | ".join(str(c) for c in r) + " |" for r in tab.rows]
    status = unmet(tab) + (BACKEND_STATUS if args.device else STATUS + BACKEND_STATUS)
    if output == "-":
        print("\n".join(head + body + status))
        return 0
    out = pathlib.Path(output)
    kept = out.read_text(encoding="utf-8").partition(ORDER3)[2] if out.exists() else ""  # benchmarks/order3.py's
    out.write_text("\n".join(head + body + status) + "\n" + (ORDER3 + kept if kept else ""), encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
