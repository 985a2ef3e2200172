"""The command line: each command, exit codes, one-line errors without tracebacks."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from einderiv.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER = str(ROOT / "derivations" / "paper_mlp.ein")


def run(*args, cwd=None):
    p = subprocess.run([sys.executable, "-m", "einderiv.cli", *args], capture_output=True,
                       text=True, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def test_derive_prints_factored_gradient(capsys):
    assert main(["derive", PAPER]) == 0
    out = capsys.readouterr().out
    assert "∂f/∂W1^j_i = δ[z_v1]_j ⊗ x^i" in out
    assert "(∂f/∂p_l U^l_m η[v2,z_v1]^m_j) ⊗ x^i   (Eq. 6 form)" in out
    assert "one outer product" in out


def test_order_one_has_no_hessian(capsys):
    assert main(["derive", PAPER, "--order", "1"]) == 0
    out = capsys.readouterr().out
    assert "∂f/∂W1^j_i" in out and "∂²f" not in out.split("Objective derivatives")[1].split("First")[1]


def test_codegen_and_latex_write_files(tmp_path):
    py, tex = tmp_path / "k.py", tmp_path / "d.tex"
    assert main(["codegen", PAPER, "-o", str(py)]) == 0
    assert main(["latex", PAPER, "-o", str(tex)]) == 0
    assert "def hvp(params, data, vector):" in py.read_text()
    assert tex.read_text().startswith("\\documentclass")


def test_check_passes_and_prints_table(capsys):
    assert main(["check", PAPER, "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "hessian W1,W2" in out and "all 27 checks pass" in out  # 21 + per-sample norms and GGN diagonal of W1, W2, U


def test_check_fails_with_exit_1_when_tolerance_impossible(capsys):
    assert main(["check", PAPER, "--tol", "0"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_symbolic_size_needs_dim_for_codegen(tmp_path):
    src = tmp_path / "sym.ein"
    src.write_text("dims n, c = 2\ninput x^i : n\nlabel y^l : c\nweight W^l_i : c, n\n"
                   "p^l = W^l_i x^i\nf = squared_error(p, y)\n")
    code, out, err = run("derive", str(src))
    assert code == 0 and "n" in out
    code, out, err = run("codegen", str(src))
    assert code == 2 and err.strip() == "einderiv: error: size of 'n' is not given; pass --dim n=SIZE"
    code, out, err = run("check", str(src), "--dim", "n=3")
    assert code == 0, err


# (arguments, exact stderr line) — every usage message pinned
USAGE_ERRORS = [
    (["derive", "missing.ein"],
     "einderiv: error: cannot read 'missing.ein': No such file or directory"),
    (["derive", PAPER, "--dim", "q=3"],
     "einderiv: error: --dim names no dimension 'q'; the file declares n0, n1, n2, c"),
    (["derive", PAPER, "--dim", "n0"],
     "einderiv: error: --dim expects NAME=SIZE with an integer SIZE, got 'n0'"),
    (["derive", PAPER, "--order", "0"],
     "einderiv: error: --order must be a positive integer, got 0"),
    (["frobnicate", PAPER],
     "einderiv: error: argument COMMAND: invalid choice: 'frobnicate' "
     "(choose from 'derive', 'latex', 'codegen', 'check', 'structure')"),
]


@pytest.mark.parametrize("args,message", USAGE_ERRORS)
def test_usage_errors_are_one_line_exit_2(args, message):
    code, out, err = run(*args, cwd=ROOT)
    assert code == 2
    assert err.strip() == message
    assert "Traceback" not in err


def test_bad_file_one_line_with_location(tmp_path):
    bad = tmp_path / "bad.ein"
    bad.write_text("dims n = 3\ninput x^i : n\nweight W^j_i : n, n\nv^j = tanh(W^j_i x^i)\n"
                   "f = v^j v^j v^j\n")
    code, out, err = run("derive", str(bad))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"{bad}:5:15: index 'j' appears 3 times in one product; an index may "
                           "appear at most twice (then it is summed) unless it is on the left side of f")


def test_syntax_error_shows_line_and_caret(tmp_path):
    bad = tmp_path / "syn.ein"
    bad.write_text("dims n = 3\ninput x^i : n\nf = x^i * * x^i\n")
    code, out, err = run("derive", str(bad))
    lines = err.rstrip("\n").split("\n")
    assert code == 2 and "Traceback" not in err
    assert lines[0].startswith(f"{bad}:3:11: syntax error: unexpected '*'")
    assert "f = x^i * * x^i" in lines[1] and lines[2].strip() == "^"
