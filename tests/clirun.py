"""Run the command line in this process: ``einderiv ARGS`` as a test sees it, without a new interpreter.

Starting ``python -m einderiv.cli`` costs a fresh import of SymPy (about a second of CPU per call on a
small machine); most command-line tests only need what ``main`` prints and returns, so they call it here
with stdout and stderr captured and the working directory set.  What only a real process shows — the exit
status the shell sees, a console script, a fresh interpreter's imports — keeps its own subprocess tests
(tests/test_cli.py: ``test_a_real_process_exits_2_with_one_line``, test_version_is_the_packages_in_a_fresh_process).
"""
from __future__ import annotations

import contextlib
import io
import os

from einderiv.cli import main


def run_cli(*args, cwd=None) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``einderiv ARGS`` run in ``cwd`` (default: the current one)."""
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()
