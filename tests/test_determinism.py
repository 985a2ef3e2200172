"""Every kept output of derivations/ is the same bytes whatever the string-hash seed.

The printers and the code generator must never let the iteration order of a ``set`` or a
``dict`` keyed by strings leak into their output.  Within one process that order is fixed,
so only separate processes with different ``PYTHONHASHSEED`` values can catch such a leak:
two of them (run side by side) regenerate every ``.txt``, ``.tex`` and ``_kernels.py`` of
derivations/ — networks and layer templates — with ``derivations/regenerate.py``, and the
bytes must be identical to each other and to the kept files.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest


ROOT = pathlib.Path(__file__).resolve().parents[1]
SEEDS = (0, 12345)

#: run in a fresh interpreter: argv = [repository root, output folder]
SCRIPT = r"""
import importlib.util, os, pathlib, sys
root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
os.chdir(root)
spec = importlib.util.spec_from_file_location("regenerate", root / "derivations" / "regenerate.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)
import einderiv
jobs = [(p, regenerate.outputs) for p in regenerate.networks()]
jobs += [(p, regenerate.template_outputs) for p in regenerate.templates()]
for path, make in jobs:
    for target, text in make(path).items():
        # exactly what regenerate.main() writes
        data = (text if text.endswith("\n") else text + "\n").encode("utf-8")
        (out / target.name).write_bytes(data)
print(einderiv.__file__)
print(hash("einderiv determinism"))
"""


def _regenerate_all(tmp_path: pathlib.Path) -> dict[int, tuple[pathlib.Path, list[str]]]:
    """Start one process per seed (in parallel), wait for all: seed -> (output folder, stdout lines)."""
    procs = {}
    for seed in SEEDS:
        out = tmp_path / f"seed{seed}"
        out.mkdir()
        env = dict(os.environ, PYTHONHASHSEED=str(seed),
                   PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        procs[seed] = (out, subprocess.Popen([sys.executable, "-c", SCRIPT, str(ROOT), str(out)], cwd=ROOT,
                                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for seed, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"PYTHONHASHSEED={seed}:\n{stderr}"
        results[seed] = (out, stdout.split("\n"))
    return results


@pytest.mark.slow  # two processes regenerate every example: ~40 s of CPU; .ci/run runs it
def test_outputs_do_not_depend_on_the_hash_seed(tmp_path):
    results = _regenerate_all(tmp_path)
    stdouts = [lines for _, lines in results.values()]
    # each process used this tree's einderiv, and the seeds really did differ
    for lines in stdouts:
        assert pathlib.Path(lines[0]).resolve().is_relative_to(ROOT), lines[0]
    assert stdouts[0][1] != stdouts[1][1], "PYTHONHASHSEED had no effect on str hashes"

    (first, _), (second, _) = results[SEEDS[0]], results[SEEDS[1]]
    names = sorted(p.name for p in first.iterdir())
    kept = sorted(p.name for p in (ROOT / "derivations").iterdir()
                  if p.suffix in (".txt", ".tex") or p.name.endswith("_kernels.py"))
    assert names == sorted(p.name for p in second.iterdir())
    assert names == kept, "the regenerated files are not the kept ones"
    sources = list((ROOT / "derivations").glob("*.ein"))
    # every network, template and recurrence of symbolic length (its module reads T at run time)
    # is kept as .txt, .tex and _kernels.py
    assert len(names) == 3 * len(sources)
    for name in names:
        a, b = (first / name).read_bytes(), (second / name).read_bytes()
        assert a == b, f"{name} differs between PYTHONHASHSEED={SEEDS[0]} and {SEEDS[1]}"
        assert a == (ROOT / "derivations" / name).read_bytes(), \
            f"{name} is stale: run python derivations/regenerate.py"
