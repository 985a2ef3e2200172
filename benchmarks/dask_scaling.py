"""einderiv.dask on a LocalCluster: scaling from 1 to 2 workers, and memory per worker for a
dataset ten times one worker's memory budget.

    pip install -e '.[dask]'
    python benchmarks/dask_scaling.py            # writes docs/dask-scaling.md
    python benchmarks/dask_scaling.py --tiny     # seconds (a smoke test)

The dataset never exists in one place: x (N × d, float64) and one-hot labels y are drawn
chunk by chunk on the workers (``dask.array.random``), N chosen so that x alone is
``--ratio`` (10) times the per-worker ``--memory-limit``.  For 1 and then 2 worker processes
(one thread each, a fresh cluster each time) the script computes the batch-mean ``gradient``
(a tree reduction of per-chunk sums) and the per-sample gradient norms of a tanh MLP, and
reads each worker's peak resident memory (``ru_maxrss``) before and after.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from dask.distributed import Client, LocalCluster  # noqa: E402

import einderiv  # noqa: E402
from einderiv.dask import Kernels  # noqa: E402

MIB = 2 ** 20


def network(d: int, h: int, c: int) -> str:
    return "\n".join([f"dims d = {d}, h = {h}, c = {c}", "input x^i : d", "label y^l : c",
                      "weight W^j_i : h, d", "weight U^l_j : c, h",
                      "v^j = tanh(W^j_i x^i)", "p^l = U^l_j v^j", "f = softmax_cross_entropy(p, y)"]) + "\n"


def one_hot(labels, c):
    return np.eye(c)[labels]


def dataset(n: int, d: int, c: int, chunk: int) -> dict:
    rng = da.random.default_rng(0)
    x = rng.standard_normal((n, d), chunks=(chunk, d))
    labels = rng.integers(0, c, n, chunks=chunk)
    y = labels.map_blocks(one_hot, c, new_axis=1, chunks=(labels.chunks[0], (c,)), dtype=np.float64)
    return {"x": x, "y": y}


def peak_rss_mib(dask_worker=None) -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mib(dask_worker=None) -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def run(workers: int, limit_mib: int, kernels: Kernels, params: dict, data_args: tuple) -> dict:
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=f"{limit_mib}MiB")
    with Client(cluster) as client:
        client.run(lambda: kernels.module)  # load the module on every worker (not timed)
        base = client.run(current_rss_mib)
        load_before = os.getloadavg()[0]
        data = dataset(*data_args)
        t0 = time.perf_counter()
        (grad,) = dask.compute(kernels.gradient(params, data))
        t1 = time.perf_counter()
        (norms,) = dask.compute(kernels.per_sample_gradient_norms(params, data))
        t2 = time.perf_counter()
        peak = client.run(peak_rss_mib)
    cluster.close()
    return {"workers": workers, "gradient_s": t1 - t0, "norms_s": t2 - t1, "base": base, "peak": peak,
            "grad": grad, "norms": norms, "load": load_before}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="a small dataset (smoke test)")
    ap.add_argument("--memory-limit", type=int, default=768, metavar="MIB", help="per worker (default 768 MiB)")
    ap.add_argument("--ratio", type=float, default=10.0, help="dataset size / one worker's memory limit")
    ap.add_argument("--chunk", type=int, default=16384, help="samples per chunk")
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "dask-scaling.md"))
    args = ap.parse_args(argv)
    d, h, c = (256, 64, 10)
    limit = args.memory_limit
    n = int(args.ratio * limit * MIB / (8 * d))
    chunk = args.chunk
    if args.tiny:
        n, chunk = 4096, 512
    net = einderiv.load("mlp.ein", text=network(d, h, c))
    kernels = Kernels(einderiv.codegen(einderiv.derive(net, 1)))
    rng = np.random.default_rng(1)
    params = {k: rng.normal(0, 1 / np.sqrt(s[1]), s) for k, s in kernels.module["PARAMS"].items()}
    results = [run(w, limit, kernels, params, (n, d, c, chunk)) for w in (1, 2)]
    one, two = results
    for k in one["grad"]:  # the same data (seeded), the same reduction tree: the same sums
        err = float(np.max(np.abs(one["grad"][k] - two["grad"][k])))
        assert err <= 1e-12 * max(1.0, float(np.max(np.abs(one["grad"][k])))), (k, err)
    x_mib = n * d * 8 / MIB
    lines = [
        "# einderiv.dask: scaling and memory",
        "",
        f"Generated {datetime.date.today().isoformat()} by `python benchmarks/dask_scaling.py"
        f"{' --tiny' if args.tiny else ''}` on {platform.machine()}, {os.cpu_count()} cores (shared with other "
        f"work while it ran), dask {dask.__version__}, numpy {np.__version__}.",
        "",
        f"Network: tanh MLP {d} → {h} → {c}, softmax cross-entropy.  Dataset: N = {n:,} samples drawn on the "
        f"workers chunk by chunk ({chunk:,} samples, {chunk * d * 8 / MIB:.0f} MiB of x per chunk, "
        f"{-(-n // chunk)} chunks); x alone is {x_mib:,.0f} MiB = {x_mib / limit:.1f} × one worker's memory "
        f"limit of {limit} MiB.  Worker processes: one thread each, a fresh LocalCluster per row.  Time: the "
        "whole `dask.compute`, drawing the data included.  Peak memory: each worker process's `ru_maxrss` "
        "after both computations; baseline: its resident memory before them (Python, NumPy, einderiv, the "
        "module loaded).  The gradients of the two rows agree to 1e-12 (checked).  Load average: the machine's "
        "1-minute load just before the row's computations (other people's jobs share its cores; above ~2 the "
        "two workers compete with them, and the speed-up says little).",
        "",
        "| workers | gradient (tree of per-chunk sums) | per_sample_gradient_norms | speed-up (gradient) | "
        "baseline memory per worker | peak memory per worker | peak / limit | load average before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        peaks = sorted(r["peak"].values())
        lines.append(f"| {r['workers']} | {r['gradient_s']:.1f} s | {r['norms_s']:.1f} s | "
                     f"{one['gradient_s'] / r['gradient_s']:.2f}× | "
                     f"{', '.join(f'{v:.0f} MiB' for v in sorted(r['base'].values()))} | "
                     f"{', '.join(f'{v:.0f} MiB' for v in peaks)} | {max(peaks) / limit:.2f} | {r['load']:.1f} |")
    text = "\n".join(lines) + "\n"
    pathlib.Path(args.output).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
