"""``einderiv derive`` in the expanded and the compact Hessian form, on deep tanh MLPs.

    python benchmarks/forms.py                 # depths 8 16 32 48 64 (minutes at 64)
    python benchmarks/forms.py --depths 8 16   # seconds

For each depth L (L tanh layers of width 3, a linear head, squared error) and each form, a
fresh process runs what ``einderiv derive FILE [--form F]`` runs — load, derive, write the
text — and reports its CPU time; the table gives both times, their ratio, and the ratio of
the two forms' sizes (expression nodes in the Hessian blocks and named quantities: what the
note of ``einderiv derive`` quotes).  The figures in docs/derivation.md ("Two forms of the
Hessian blocks") come from this script.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import einderiv
from einderiv import api
from einderiv.calculus.derive import in_form
depth, form = int(sys.argv[1]), sys.argv[2]
lines = ["dims n = 3, c = 2", "input x^i : n", "label y^l : c"]
lines += [f"weight W{k}^j_i : n, n" for k in range(1, depth + 1)] + ["weight U^l_j : c, n"]
lines += [f"v{k}^j = tanh(W{k}^j_i {'x' if k == 1 else f'v{k - 1}'}^i)" for k in range(1, depth + 1)]
lines += [f"p^l = U^l_j v{depth}^j", "f = squared_error(p, y)"]
usage = resource.getrusage(resource.RUSAGE_SELF)
start = usage.ru_utime + usage.ru_stime
d = einderiv.derive(einderiv.load(f"tanh{depth}.ein", text="\n".join(lines) + "\n"))
text = einderiv.derivation_text(d, form=form)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime - start, "size": api._size(in_form(d, form)),
                  "lines": text.count("\n")}))
"""


def measure(depth: int, form: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(depth), form], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 16, 32, 48, 64])
    args = parser.parse_args(argv)
    print("| layers | compact: CPU s | expanded: CPU s | time ratio | size ratio | lines (compact / expanded) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for depth in args.depths:
        c, e = measure(depth, "compact"), measure(depth, "expanded")
        print(f"| {depth} | {c['cpu']:.1f} | {e['cpu']:.1f} | {e['cpu'] / c['cpu']:.1f}× | "
              f"{e['size'] / c['size']:.1f}× | {c['lines']:,} / {e['lines']:,} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
