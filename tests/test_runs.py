"""The split between the README's default run and .ci/run (tests/runs.py, conftest.HEAVY): every case
the default run leaves out is selected by .ci/run's second pass."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from runs import default_share

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_default_share_keeps_every_kth_and_marks_the_rest_slow():
    params = default_share([("a", 0), ("b", 1), ("c", 2), ("d", 3)], 3)
    assert params[0] == ("a", 0) and params[3] == ("d", 3)
    for p in params[1:3]:
        assert [m.name for m in p.marks] == ["slow"]
    assert [p.values for p in params[1:3]] == [("b", 1), ("c", 2)]
    assert default_share(range(3), 2)[1].values == (1,)


def _collected(marks: str, all_examples: bool) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "EINDERIV_ALL_EXAMPLES"}
    if all_examples:
        env["EINDERIV_ALL_EXAMPLES"] = "1"
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-m", marks, "tests/test_properties.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode in (0, 5), out.stdout + out.stderr  # 5: nothing collected
    return {line for line in out.stdout.splitlines() if "::" in line}


@pytest.mark.slow  # two pytest start-ups
def test_properties_run_by_default_and_in_full_in_the_second_pass():
    properties = {"tests/test_properties.py::test_simplify_is_idempotent",
                  "tests/test_properties.py::test_partial_agrees_with_finite_differences",
                  "tests/test_properties.py::test_second_partial_agrees_with_finite_differences_of_the_first"}
    assert properties <= _collected("not slow", all_examples=False)
    assert not properties & _collected("slow", all_examples=False)
    in_full = _collected("slow", all_examples=True)
    assert properties <= in_full
    assert "tests/test_properties.py::test_alpha_key_tells_bound_from_free" not in in_full  # not a property
