"""Third derivatives at the size of real blocks: what generating and checking them costs.

    python benchmarks/order3.py                       # the three networks of tests/networks/
    python benchmarks/order3.py FILE.ein ... --timeout 900 --no-check

For each network, one fresh process does what ``einderiv codegen FILE --order 3`` does (derive,
then generate the module) and imports the module; a second fresh process runs
``einderiv check FILE --order 3`` (every distinct third-derivative block, and its reversed
ordering, against central differences of the Hessian).  Each is reported with its wall time,
its CPU time (user + system: what the machine's other load does not inflate), its peak
resident memory, and the module's size.  A process that runs past ``--timeout`` seconds of wall
time is stopped and reported with what it had used.  The table is Markdown (the section "Third
derivatives" of ``docs/benchmarks.md``).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
NETWORKS = sorted((ROOT / "tests" / "networks").glob("*.ein"))

CODEGEN = r"""
import json, sys, time
import einderiv
t0, c0 = time.perf_counter(), time.process_time()
d = einderiv.derive(einderiv.load(sys.argv[1]), order=3)
t1, c1 = time.perf_counter(), time.process_time()
src = einderiv.codegen(d)
t2, c2 = time.perf_counter(), time.process_time()
ns = {}
exec(compile(src, "m", "exec"), ns)
t3 = time.perf_counter()
print(json.dumps({"derive": t1 - t0, "generate": t2 - t1, "cpu_derive": c1 - c0, "cpu_generate": c2 - c1,
                  "import": t3 - t2, "bytes": len(src.encode()), "functions": src.count("\ndef ")}))
"""

CHECK = r"""
import json, sys
import einderiv
r = einderiv.check(einderiv.derive(einderiv.load(sys.argv[1]), order=3))
print(json.dumps({"ok": r.ok, "rows": len(r.rows), "worst": max(x.error for x in r.rows if x.name.startswith("third"))}))
"""


def run(script: str, path: pathlib.Path, timeout: float) -> dict:
    """Run ``script`` on ``path`` in a fresh Python: its JSON line (or how it ended), with the
    process's wall and CPU seconds and peak memory (MB), also when it is stopped."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=out, stderr=err, cwd=ROOT)
        stopped = False
        while True:  # reap it ourselves: wait4 gives its resource usage, also once it is killed
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t > timeout and not stopped:
                p.kill()
                stopped = True
            time.sleep(0.05)
        p.returncode = status  # (reaped here: Popen must not wait for it again)
        info = {"wall": time.perf_counter() - t, "cpu": usage.ru_utime + usage.ru_stime,
                "rss": usage.ru_maxrss / 1024}
        out.seek(0)
        err.seek(0)
        if stopped:
            info["stopped"] = True
        elif status:
            info["error"] = (err.read().strip().splitlines() or ["?"])[-1]
        else:
            info.update(json.loads(out.read().strip().splitlines()[-1]))
        return info


def row(path: pathlib.Path, gen: dict, chk: dict | None) -> str:
    used = f"{gen['wall']:.0f} s wall, {gen['cpu']:.0f} s CPU, {gen['rss']:.0f} MB"
    if gen.get("stopped"):
        cells = [f"stopped after {used}", "", "", ""]
    elif "error" in gen:
        cells = [f"failed after {used}: {gen['error']}", "", "", ""]
    else:
        cells = [f"{gen['derive'] + gen['generate']:.1f} s (CPU {gen['cpu_derive'] + gen['cpu_generate']:.1f} s: "
                 f"derive {gen['cpu_derive']:.1f}, generate {gen['cpu_generate']:.1f})", f"{gen['rss']:.0f} MB",
                 f"{gen['bytes'] / 1e6:.2f} MB, {gen['functions']} functions", f"{gen['import']:.2f} s"]
    if chk is None:
        cells.append("")
    elif "ok" in chk:
        cells.append(f"{'pass' if chk['ok'] else 'FAIL'}: {chk['rows']} rows, third-order error ≤ {chk['worst']:.1e}; "
                     f"{chk['wall']:.0f} s (CPU {chk['cpu']:.0f} s), {chk['rss']:.0f} MB")
    else:
        cells.append(f"stopped after {chk['wall']:.0f} s" if chk.get("stopped") else f"failed: {chk['error']}")
    return f"| {path.stem} | " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=pathlib.Path)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds of wall time per process")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args(argv)
    print("| network | derive + generate, order 3 (wall) | peak memory | module | import | check --order 3 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path in args.files or NETWORKS:
        gen = run(CODEGEN, path.resolve(), args.timeout)
        chk = None if args.no_check or "bytes" not in gen else run(CHECK, path.resolve(), args.timeout)
        print(row(path, gen, chk), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
