"""benchmarks/run.py --tiny: runs, prints its table to standard output (never over the measured
docs/benchmarks.md), and every verdict in it is the one its own ratio and target give."""
from __future__ import annotations

import importlib.util
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow  # every benchmark row at tiny sizes, torch and jax included: ~30 s of CPU; .ci/run runs it
def test_tiny_run_prints_and_leaves_the_measured_table_alone(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as running the script puts its folder first
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run", bench)  # the script looks itself up there
    spec.loader.exec_module(bench)
    kept = (ROOT / "docs" / "benchmarks.md").read_bytes()
    assert bench.main(["--tiny"]) == 0
    assert (ROOT / "docs" / "benchmarks.md").read_bytes() == kept
    out = capsys.readouterr().out
    assert "# Benchmarks" in out.splitlines() and "wrote" not in out  # progress lines come first
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| network") and not line.startswith("| ---")]
    judged = [r for r in rows if len(r) == 8 and r[7] != "—"]
    assert judged, out
    for r in judged:
        got, limit = (float(m.group(1)) for m in (re.search(r"([0-9]+\.?[0-9]*)", r[5] or r[2]),
                                                 re.search(r"([0-9]+\.?[0-9]*)", r[6])))
        near = any(abs(got - edge) <= 0.01 * edge for edge in (limit, limit * bench.NOISE))
        if not near:  # printed with three digits: at an edge the printed ratio may round across it
            assert r[7] == bench.verdict(r[5] or r[2], r[6]), r
