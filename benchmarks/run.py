"""einderiv's generated NumPy kernels against the tools people use, side by side.

    pip install -e '.[bench]'          # torch (CPU), jax, jaxlib
    python benchmarks/run.py           # writes docs/benchmarks.md
    python benchmarks/run.py --tiny    # seconds; CI runs this to keep the script working

Every comparison runs in this one process, single-threaded (the thread variables
are set before numpy, torch and jax load), float64, on a tanh MLP with softmax
cross-entropy.  Each result is checked against its baseline before it is timed.
A *round* times every contender (best of ``inner`` calls) and takes the ratio
einderiv / baseline; the table reports the median ratio over ``rounds`` rounds,
after a warm-up.  Missing baselines (torch or jax not installed) are skipped.

``OPENBLAS_CORETYPE`` (which pins OpenBLAS to a slower kernel set on some machines)
is removed from this process's environment only, and the table says so.
"""
from __future__ import annotations

import os
import sys

_CORETYPE = os.environ.pop("OPENBLAS_CORETYPE", None)
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

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import backends  # noqa: E402  (benchmarks/backends.py: the torch and JAX backends' rows)
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
def numpy_backprop(params, data):
    """Hand-written matmul backprop of the same network (the target's yardstick)."""
    Ws = [params[f"W{k}"] for k in range(1, len(params) + 1)]
    x, y = data["x"], data["y"]
    B = x.shape[0]
    acts = [x]
    for W in Ws[:-1]:
        acts.append(np.tanh(acts[-1] @ W.T))
    p = acts[-1] @ Ws[-1].T
    e = np.exp(p - p.max(axis=1, keepdims=True))
    d = (e / e.sum(axis=1, keepdims=True) - y) / B
    grads = [None] * len(Ws)
    for k in range(len(Ws) - 1, -1, -1):
        grads[k] = d.T @ acts[k]
        if k:
            d = (d @ Ws[k]) * (1 - acts[k] ** 2)
    return {f"W{k + 1}": g for k, g in enumerate(grads)}


def torch_loss(flat, shapes, x, y):
    Ws, at = [], 0
    for s in shapes:
        n = s[0] * s[1]
        Ws.append(flat[at:at + n].reshape(s))
        at += n
    h = x
    for W in Ws[:-1]:
        h = torch.tanh(h @ W.T)
    p = h @ Ws[-1].T
    return (torch.logsumexp(p, dim=-1) - (y * p).sum(-1)).mean()


def jax_loss(flat, shapes, x, y):
    Ws, at = [], 0
    for s in shapes:
        n = s[0] * s[1]
        Ws.append(flat[at:at + n].reshape(s))
        at += n
    h = x
    for W in Ws[:-1]:
        h = jnp.tanh(h @ W.T)
    p = h @ Ws[-1].T
    return (jax.scipy.special.logsumexp(p, axis=-1) - (y * p).sum(-1)).mean()


def flatten(d, names):
    return np.concatenate([np.ravel(d[n]) for n in names])


# ------------------------------------------------------------------ timing
def best(fn, inner):
    t = float("inf")
    for _ in range(inner):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def compare(contenders: dict, rounds: int, inner: int, warmup: int = 3) -> dict:
    """name -> list of per-round best times; every contender runs in every round."""
    for fn in contenders.values():  # warm-up (and jit compilation)
        for _ in range(warmup):
            fn()
    times = {k: [] for k in contenders}
    for _ in range(rounds):
        for k, fn in contenders.items():
            times[k].append(best(fn, inner))
    return times


def ratio(times, a, b) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


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
    '< 1×', '≤ L^1'); '—' when the target is not a bound."""
    bound = re.match(r"\s*([≤<])\s*(L\^)?([0-9.]+)", target)
    value = re.search(r"(L\^)?([0-9]+\.?[0-9]*)", measured)
    if not bound or not value or bool(bound.group(2)) != bool(value.group(1)):
        return "—"
    limit, got = float(bound.group(3)), float(value.group(2))
    if got < limit or (bound.group(1) == "≤" and got == limit):
        return "met"
    return "borderline" if got <= NOISE * limit else "not met"


class Table:
    def __init__(self):
        self.rows = []

    def add(self, *cells):
        cells = cells + (verdict(str(cells[5]) if cells[5] else str(cells[2]), str(cells[6])),)
        self.rows.append(cells)
        print(" | ".join(str(c) for c in cells), flush=True)


def ms(t):
    return f"{t * 1e3:.3f} ms"


def run_config(tab, d_in, h, L, c, B, rounds, inner, with_hessian):
    cfg = f"L={L}, h={h}, B={B}"
    mod = kernels(d_in, h, L, c, 2)
    params, data = problem(d_in, h, L, c, B)
    names = list(mod["PARAMS"])
    shapes = [mod["PARAMS"][n] for n in names]
    P = sum(int(np.prod(s)) for s in shapes)
    ref = numpy_backprop(params, data)
    g = mod["gradient"](params, data)
    for n in names:
        close(g[n], ref[n], f"{cfg} gradient {n}")
    flat = flatten(params, names)
    contenders = {"einderiv": lambda: mod["gradient"](params, data),
                  "numpy": lambda: numpy_backprop(params, data)}
    if torch is not None:
        tx, ty = torch.tensor(data["x"]), torch.tensor(data["y"])
        tflat = torch.tensor(flat, requires_grad=True)

        def torch_grad():
            return torch.autograd.grad(torch_loss(tflat, shapes, tx, ty), tflat)[0]
        close(torch_grad().numpy(), flatten(g, names), f"{cfg} torch gradient")
        contenders["torch"] = torch_grad
    if jax is not None:
        jx, jy, jflat = jnp.asarray(data["x"]), jnp.asarray(data["y"]), jnp.asarray(flat)
        jgrad = jax.jit(jax.grad(lambda f: jax_loss(f, shapes, jx, jy)))
        close(np.asarray(jgrad(jflat)), flatten(g, names), f"{cfg} jax gradient")
        contenders["jax"] = lambda: jgrad(jflat).block_until_ready()

    # per-sample gradient norms, GGN diagonal, HVP: against the gradient (and baselines)
    norms = mod["per_sample_gradient_norms"](params, data)
    psg = mod["per_sample_gradient"](params, data)
    for n in names:
        close(norms[n], np.sqrt((psg[n].reshape(B, -1) ** 2).sum(1)), f"{cfg} norms {n}")
    contenders["norms"] = lambda: mod["per_sample_gradient_norms"](params, data)
    vector = {n: np.random.default_rng(1).normal(size=s) for n, s in mod["PARAMS"].items()}
    contenders["hvp"] = lambda: mod["hvp"](params, data, vector)
    contenders["ggn"] = lambda: mod["ggn_diagonal"](params, data)
    if torch is not None:
        def per_sample_loss(f, xb, yb):
            return torch_loss(f, shapes, xb[None], yb[None])

        vgrad = torch.func.vmap(torch.func.grad(per_sample_loss), in_dims=(None, 0, 0))

        def torch_norms():
            G = vgrad(tflat.detach(), tx, ty)
            out, at = [], 0
            for s in shapes:
                n = s[0] * s[1]
                out.append(G[:, at:at + n].norm(dim=1))
                at += n
            return out
        for n, got in zip(names, torch_norms()):
            close(got.numpy(), norms[n], f"{cfg} torch per-sample norms {n}")
        contenders["torch_norms"] = torch_norms
        tv = torch.tensor(flatten(vector, names))

        def torch_hvp():
            (gr,) = torch.autograd.grad(torch_loss(tflat, shapes, tx, ty), tflat, create_graph=True)
            return torch.autograd.grad(gr @ tv, tflat)[0]
        close(torch_hvp().numpy(), flatten(mod["hvp"](params, data, vector), names), f"{cfg} torch hvp")
        contenders["torch_hvp"] = torch_hvp
    if jax is not None:
        def jloss_ps(f, xb, yb):
            return jax_loss(f, shapes, xb[None], yb[None])
        jnorm = jax.jit(lambda f: jnp.linalg.norm(jax.vmap(jax.grad(jloss_ps), (None, 0, 0))(f, jx, jy), axis=1))
        contenders["jax_norms"] = lambda: jnorm(jflat).block_until_ready()
    t = compare(contenders, rounds, inner)
    med = {k: statistics.median(v) for k, v in t.items()}
    tab.add(cfg, "gradient", ms(med["einderiv"]), "hand-written NumPy matmul backprop",
            ms(med["numpy"]), f"{ratio(t, 'einderiv', 'numpy'):.2f}×", "≤ 1.2×")
    if "torch" in t:
        tab.add(cfg, "gradient", ms(med["einderiv"]), "torch autograd", ms(med["torch"]),
                f"{ratio(t, 'einderiv', 'torch'):.2f}×", "< 1×")
    if "jax" in t:
        tab.add(cfg, "gradient", ms(med["einderiv"]), "jax.grad (jit)", ms(med["jax"]),
                f"{ratio(t, 'einderiv', 'jax'):.2f}×", "—")
    tab.add(cfg, "per_sample_gradient_norms", ms(med["norms"]), "einderiv gradient", ms(med["einderiv"]),
            f"{ratio(t, 'norms', 'einderiv'):.2f}×", "≤ 1.2×")
    if "torch_norms" in t:
        tab.add(cfg, "per_sample_gradient_norms", ms(med["norms"]), "torch.func vmap(grad)",
                ms(med["torch_norms"]), f"{ratio(t, 'norms', 'torch_norms'):.3f}×", "≤ 0.1×")
    if "jax_norms" in t:
        tab.add(cfg, "per_sample_gradient_norms", ms(med["norms"]), "jax vmap(grad) (jit)",
                ms(med["jax_norms"]), f"{ratio(t, 'norms', 'jax_norms'):.2f}×", "—")
    tab.add(cfg, "hvp", ms(med["hvp"]), "einderiv gradient", ms(med["einderiv"]),
            f"{ratio(t, 'hvp', 'einderiv'):.2f}×", "≤ 2.5×")
    if "torch_hvp" in t:
        tab.add(cfg, "hvp", ms(med["hvp"]), "torch double backward", ms(med["torch_hvp"]),
                f"{ratio(t, 'hvp', 'torch_hvp'):.2f}×", "—")
    tab.add(cfg, "ggn_diagonal", ms(med["ggn"]), "einderiv gradient", ms(med["einderiv"]),
            f"{ratio(t, 'ggn', 'einderiv'):.2f}×", "≤ 3×")
    if with_hessian:
        run_hessian(tab, cfg, mod, params, data, names, shapes, P, B, min(rounds, 5), 2)


def matmul_rate(n=512) -> float:
    a, b = np.random.default_rng(0).normal(size=(2, n, n))
    t = best(lambda: a @ b, 5)
    return 2 * n ** 3 / t / 1e9


def run_hessian(tab, cfg, mod, params, data, names, shapes, P, B, rounds, inner):
    H = mod["hessian"](params, data)
    full = np.block([[H[(a, b)].reshape(int(np.prod(mod["PARAMS"][a])), -1) for b in names] for a in names])
    flat = flatten(params, names)
    contenders = {"einderiv": lambda: mod["hessian"](params, data)}
    if torch is not None:
        tx, ty, tflat = torch.tensor(data["x"]), torch.tensor(data["y"]), torch.tensor(flat)
        th = lambda: torch.func.hessian(lambda f: torch_loss(f, shapes, tx, ty))(tflat)  # noqa: E731
        close(th().numpy(), full, f"{cfg} torch hessian")
        contenders["torch"] = th
    if jax is not None:
        jx, jy, jflat = jnp.asarray(data["x"]), jnp.asarray(data["y"]), jnp.asarray(flat)
        jh = jax.jit(jax.hessian(lambda f: jax_loss(f, shapes, jx, jy)))
        close(np.asarray(jh(jflat)), full, f"{cfg} jax hessian")
        contenders["jax"] = lambda: jh(jflat).block_until_ready()
    t = compare(contenders, rounds, inner)
    med = {k: statistics.median(v) for k, v in t.items()}
    gflops = 2 * B * P * P / med["einderiv"] / 1e9
    rate = matmul_rate()
    label = f"{cfg}, P={P}"
    if "torch" in t:
        tab.add(label, "hessian", ms(med["einderiv"]), "torch.func.hessian", ms(med["torch"]),
                f"{ratio(t, 'einderiv', 'torch'):.3f}×", "≤ 0.1×")
    if "jax" in t:
        tab.add(label, "hessian", ms(med["einderiv"]), "jax.hessian (jit)", ms(med["jax"]),
                f"{ratio(t, 'einderiv', 'jax'):.3f}×", "≤ 0.2×")
    tab.add(label, "hessian rate", f"{gflops:.2f} GFLOP/s", "this machine's 512² matmul",
            f"{rate:.2f} GFLOP/s", f"{gflops / rate:.0%}", "report (2·B·P² flops)")


def depth_curves(tab, depths, engine_depths, B, h, rounds, inner):
    """Gradient time against depth (generated kernel), engine time against depth."""
    grad_t = []
    for L in depths:
        mod = kernels(h, h, L, 10, 1)
        params, data = problem(h, h, L, 10, B)
        close(mod["gradient"](params, data)["W1"], numpy_backprop(params, data)["W1"], f"depth {L} gradient")
        t = compare({"g": lambda: mod["gradient"](params, data),
                     "np": lambda: numpy_backprop(params, data)}, rounds, inner)
        grad_t.append(statistics.median(t["g"]))
        tab.add(f"L={L}, h={h}, B={B}", "gradient vs depth", ms(grad_t[-1]), "hand-written NumPy",
                ms(statistics.median(t["np"])), f"{ratio(t, 'g', 'np'):.2f}×", "linear in L")
    slope = np.polyfit(np.log(depths), np.log(grad_t), 1)[0]
    tab.add(f"L={depths[0]}..{depths[-1]}", "gradient growth", f"∝ L^{slope:.2f}", "", "", "", "≤ L^1")
    eng = []
    for L in engine_depths:
        net = load_text("e.ein", mlp_source(8, 8, L, 3))
        t0 = time.perf_counter()
        d = derive(net, 2, expanded=False)  # the `einderiv codegen` path
        t1 = time.perf_counter()
        src = generate(d)
        t2 = time.perf_counter()
        eng.append(t2 - t0)
        tab.add(f"L={L}, h=8", "engine: derive order 2 + generate", f"{t2 - t0:.2f} s",
                f"derive {t1 - t0:.2f} s, generate {t2 - t1:.2f} s", f"{len(src) / 1e6:.2f} MB", "",
                "< 2 s at L=16" if L == 16 else "")
    if len(engine_depths) > 1:
        first = 1 if len(engine_depths) > 2 else 0  # the smallest is mostly fixed cost
        slope = np.polyfit(np.log(engine_depths[first:]), np.log(eng[first:]), 1)[0]
        tab.add(f"L={engine_depths[first]}..{engine_depths[-1]}", "engine growth", f"∝ L^{slope:.2f}",
                "", "", "", "≤ L^2")


#: the section of docs/benchmarks.md that benchmarks/order3.py measures, kept when this script rewrites it
ORDER3 = "\n## Third derivatives"

#: how to read the rows (which targets are met is the verdict column's, computed in the run)
STATUS = """
## Reading the table

The verdict column is computed from each row's ratio and target in this run.  On a shared 2-core
machine the same ratio moves by up to ±20–30% between runs, so a ratio above its target by less
than that is called borderline, not met or missed.

* `gradient` against hand-written NumPy backprop: the matmuls are the same; the gap is fixed
  Python cost per call (a dict of every tensor, one function per named quantity, the objective's
  value computed though the gradient does not need it), so the ratio falls with size.
* `per_sample_gradient_norms` contracts the factors of each per-sample gradient: about one
  gradient's cost, nothing of size B × P formed (a test spies on array sizes).
* `hvp` is the R-operator derived from the gradient expression (forward tangents and
  R-adjoints, all vector-sized).
* `hessian` goes through the second-order adjoints hess[s,s'] (B × h × h per pair of layers)
  and assembles each block as hess ⊗ v ⊗ v plus the cross terms.
* The engine rows time `derive` (order 2, compact form: O(L²) terms) and `generate`; the printed,
  expanded form keeps the paper's O(L³) A″ terms and is not on this path.
* `ggn_diagonal`: the Gauss–Newton factors η[p,s] are accumulated backwards; with 10 classes each
  layer's is B × 10 × h, ten vector back-propagations' worth of matmuls, which is what the ratio
  to one gradient measures.  A symmetric factorisation of
  ∂²f/∂p∂p (rank c − 1 for softmax) would not change that count; a Monte-Carlo GGN would, but it
  is not exact.
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
the factors of each per-sample gradient (‖δ_b‖²‖x_b‖² for a dense layer) after one backward
pass, so its cost is about one gradient's: its ratio against vmap(grad) grows with B·P, and at
small sizes both sides are dominated by fixed per-call costs.  The JAX rows compile both sides
with `jax.jit`.  `benchmarks/run.py --device cuda` writes the same torch rows in float32 on a
GPU, with the exact Hessian against `torch.func.hessian` at P = 21,000, to
docs/benchmarks-cuda.md.
""".splitlines()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, few rounds (CI)")
    ap.add_argument("-o", "--output", default=None,
                    help="where the table goes (default docs/benchmarks.md; with --device, docs/benchmarks-DEVICE.md)")
    ap.add_argument("--device", default=None, metavar="DEV",
                    help="instead of the CPU suite, the torch backend's rows on DEV (e.g. cuda) in float32, and "
                         "the exact Hessian against torch.func.hessian at P = 21,000")
    args = ap.parse_args(argv)
    output = args.output or str(ROOT / "docs" / (f"benchmarks-{args.device}.md" if args.device else "benchmarks.md"))
    tab = Table()
    here = sys.modules[__name__]
    shared = (here, mlp_source, problem, close)
    if args.device:
        if torch is None:
            raise SystemExit("--device needs torch")
        configs = [(4, 5, 2, 3, 6)] if args.tiny else [(32, 32, 2, 10, 64), (64, 64, 4, 10, 256),
                                                       (256, 256, 4, 10, 1024)]
        for cfg in configs:
            backends.torch_rows(tab, *shared, cfg, 2 if args.tiny else 7, 2 if args.tiny else 20,
                                device=args.device, dtype="float32")
        backends.torch_hessian_rows(tab, *shared, (4, 5, 2, 3, 6) if args.tiny else (100, 100, 2, 10, 64),
                                    2 if args.tiny else 3, 1, device=args.device, dtype="float32")
    elif args.tiny:
        run_config(tab, 4, 5, 2, 3, 6, rounds=2, inner=2, with_hessian=True)
        depth_curves(tab, [2, 3], [2, 3], 6, 5, rounds=2, inner=2)
        if torch is not None:
            backends.torch_rows(tab, *shared, (4, 5, 2, 3, 6), 2, 2)
            backends.torch_hessian_rows(tab, *shared, (4, 5, 2, 3, 6), 2, 1)
        if jax is not None:
            backends.jax_rows(tab, *shared, (4, 5, 2, 3, 6), 2, 2)
    else:
        run_config(tab, 32, 32, 2, 10, 64, rounds=7, inner=50, with_hessian=True)
        run_config(tab, 64, 64, 4, 10, 256, rounds=5, inner=10, with_hessian=False)
        depth_curves(tab, [2, 4, 8, 16, 32], [2, 4, 8, 16], 64, 32, rounds=5, inner=20)
        if torch is not None:
            for cfg, rounds, inner in (((32, 32, 2, 10, 64), 7, 50), ((64, 64, 4, 10, 256), 7, 20)):
                backends.torch_rows(tab, *shared, cfg, rounds, inner)
            backends.torch_hessian_rows(tab, *shared, (32, 32, 2, 10, 64), 5, 2)
        if jax is not None:
            for cfg, rounds, inner in (((32, 32, 2, 10, 64), 7, 50), ((64, 64, 4, 10, 256), 7, 20)):
                backends.jax_rows(tab, *shared, cfg, rounds, inner)
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}", f"einderiv {einderiv.__version__}"
                if hasattr(einderiv, "__version__") else "einderiv (this commit)"]
    if torch is not None:
        versions.append(f"torch {torch.__version__}")
    if jax is not None:
        versions.append(f"jax {jax.__version__}")
    if backends.backpack is not None:
        versions.append(f"backpack-for-pytorch {importlib.metadata.version('backpack-for-pytorch')}")
    head = [
        "# Benchmarks",
        "",
        f"Generated {datetime.date.today().isoformat()} by `python benchmarks/run.py"
        f"{' --tiny' if args.tiny else ''}{' --device ' + args.device if args.device else ''}` (after "
        f"`pip install -e '.[bench]'`) on {platform.machine()}, {os.cpu_count()} cores, one thread everywhere, "
        + (f"float32 on {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda")
                                          and torch.cuda.is_available() else "") + "."
           if args.device else "float64."),
        "Versions: " + ", ".join(versions) + ".",
        ("`OPENBLAS_CORETYPE` was set in the environment and removed for this process."
         if _CORETYPE else "`OPENBLAS_CORETYPE` was not set."),
        "",
        "Network: tanh MLP, softmax cross-entropy, no biases, input width = h, 10 classes. "
        "Ratio = median over rounds of (einderiv time / baseline time), each time the best of "
        "several calls; every result was checked against its baseline first.  Verdict: computed "
        f"from the ratio and the target in this run (borderline: above the target by at most {NOISE}×, "
        "the run-to-run noise of this machine).  Rows named 'torch backend' / 'jax backend' time the "
        "module `einderiv codegen --backend torch|jax` writes (benchmarks/backends.py).",
        "",
        "| network | function | einderiv | baseline | baseline time | ratio | target | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    body = ["| " + " | ".join(str(c) for c in r) + " |" for r in tab.rows]
    status = BACKEND_STATUS if args.device else STATUS + BACKEND_STATUS
    out = pathlib.Path(output)
    kept = out.read_text(encoding="utf-8").partition(ORDER3)[2] if out.exists() else ""  # benchmarks/order3.py's
    out.write_text("\n".join(head + body + status) + "\n" + (ORDER3 + kept if kept else ""), encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
