"""The long fuzzing run (docs/fuzzing.md): ``python benchmarks/fuzz.py [--count N] [--seed S]``.

Runs ``N`` drawn networks and ``N`` mutated examples (every kept example, gru.ein's general
form included) through load → derive order 1, in-process, as tests/test_fuzz.py does for
its 2,000 inputs; prints the counts, the slowest answer, and every failure (an exception
other than one located EinderivError line, or over 10 s), and exits 1 if there was one.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzzing as F  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=25_000, help="inputs of each kind (default 25000)")
    p.add_argument("--seed", type=int, default=2026, help="seed of both generators (default 2026)")
    p.add_argument("--kind", choices=("both", "drawn", "mutated"), default="both", help="which inputs (default both)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for kind, inputs in (("drawn networks", F.grammar_inputs(args.count, args.seed)),
                             ("mutated examples", F.mutants(args.count, args.seed, F.SEEDS))):
            if args.kind != "both" and not kind.startswith(args.kind):
                continue
            tally, start = F.Tally(), time.perf_counter()
            for source in inputs:
                F.answer(source, tally, Path(tmp) / "t.ein")
            print(f"{kind}: {tally.summary()}; {time.perf_counter() - start:.0f} s in all", flush=True)
            for why, text in tally.failures:
                print(f"--- {why}\n{text}", flush=True)
            failed += len(tally.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
