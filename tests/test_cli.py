"""The command line: each command, exit codes, one-line errors without tracebacks."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from einderiv.cli import main

from clirun import run_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER = str(ROOT / "derivations" / "paper_mlp.ein")


def run(*args, cwd=None):
    """``einderiv ARGS`` in this process (tests/clirun.py); the real-process tests are below."""
    return run_cli(*args, cwd=cwd)


def test_derive_prints_factored_gradient(capsys):
    assert main(["derive", PAPER]) == 0
    out = capsys.readouterr().out
    assert "∂f/∂W1^j_i = ∂f/∂z_v1_j ⊗ x^i" in out
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
     "einderiv: error: --dim q=3 names no dimension 'q'; the file declares n0, n1, n2, c"),
    (["derive", PAPER, "--dim", "n0=0"],
     "einderiv: error: --dim n0=0: a size must be a positive integer"),
    (["check", PAPER, "--batch", "0"],
     "einderiv: error: --batch must be a positive integer, got 0"),
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


def test_a_real_process_exits_2_with_one_line():
    """What the in-process runner cannot show: the status a shell sees and nothing else on stderr."""
    p = subprocess.run([sys.executable, "-m", "einderiv.cli", "derive", PAPER, "--order", "0"],
                       capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == "einderiv: error: --order must be a positive integer, got 0\n"


def test_cli_words_file_errors_about_sizes_with_its_flag(tmp_path):
    src = tmp_path / "seq.ein"
    src.write_text("dims n = 2, T\ninput x(t)^i : n   for t = 1..T\nweight W^i : n\nf = W^i x(1)^i\n")
    code, out, err = run("derive", str(src))
    assert code == 2 and err == (f"{src}:2:31: label 'T' needs a concrete size: dimension 'T' has none; "
                                 "give it in the file's dims (T = 4) or as --dim T=4\n")
    code, out, err = run("derive", str(src), "--dim", "T=2")
    assert code == 0, err


def test_bad_file_one_line_with_location(tmp_path):
    bad = tmp_path / "bad.ein"
    bad.write_text("dims n = 3\ninput x^i : n\nweight W^j_i : n, n\nv^j = tanh(W^j_i x^i)\n"
                   "f = v^j v^j v^j\n")
    code, out, err = run("derive", str(bad))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"{bad}:5:15: index 'j' appears 3 times in one product; an index may "
                           "appear at most twice (then it is summed) unless it is on the left side of f; for a "
                           "second sum, rename one pair: 'k' is free")


def test_syntax_error_shows_line_and_caret(tmp_path):
    bad = tmp_path / "syn.ein"
    bad.write_text("dims n = 3\ninput x^i : n\nf = x^i * * x^i\n")
    code, out, err = run("derive", str(bad))
    lines = err.rstrip("\n").split("\n")
    assert code == 2 and "Traceback" not in err
    assert lines[0].startswith(f"{bad}:3:11: syntax error: unexpected '*'")
    assert "f = x^i * * x^i" in lines[1] and lines[2].strip() == "^"


# ---------------------------------------------------------------- exit codes
def test_internal_error_is_exit_3_with_one_line(monkeypatch, capsys):
    from einderiv import api
    from einderiv.errors import EinderivError, InternalError

    assert not issubclass(InternalError, EinderivError)  # never handled as bad input

    def broken(*args, **kwargs):
        raise InternalError("cyclic quantity adj[v1]")

    monkeypatch.setattr(api, "derive", broken)
    assert main(["derive", PAPER]) == 3
    assert capsys.readouterr().err == ("einderiv: internal error: cyclic quantity adj[v1] — this is a bug in "
                                       "einderiv; please report it (rerun with --traceback for the details)\n")


def test_unforeseen_exception_is_an_internal_error(monkeypatch, capsys):
    from einderiv import api

    monkeypatch.setattr(api, "codegen", lambda *a, **k: {}["x"])
    assert main(["codegen", PAPER]) == 3
    err = capsys.readouterr().err
    assert err == ("einderiv: internal error: KeyError: 'x' — this is a bug in einderiv; please report it "
                   "(rerun with --traceback for the details)\n")


@pytest.mark.parametrize("flag", ["--traceback", "--debug"])
def test_traceback_flag_shows_the_traceback(monkeypatch, capsys, flag):
    from einderiv import api
    from einderiv.errors import InternalError

    def broken(*args, **kwargs):
        raise InternalError("boom")

    monkeypatch.setattr(api, "derive", broken)
    assert main(["derive", PAPER, flag]) == 3
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "InternalError: boom" in err
    assert err.splitlines()[-1] == "einderiv: internal error: boom — this is a bug in einderiv; please report it"
    assert main([flag, "derive", PAPER]) == 3  # before the command too


def test_internal_error_in_a_subprocess_has_no_traceback(tmp_path):
    """A fresh interpreter: exit 3 and one line, nothing else on stderr."""
    code = ("import sys, einderiv.api as api, einderiv.cli as cli, einderiv.errors as e\n"
            "def broken(*args, **kwargs):\n    raise e.InternalError('no rule')\n"
            "api.derive = broken\n"
            f"sys.exit(cli.main(['derive', {PAPER!r}]))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 3 and "Traceback" not in p.stderr
    assert p.stderr == ("einderiv: internal error: no rule — this is a bug in einderiv; please report it "
                        "(rerun with --traceback for the details)\n")


def test_version(capsys):
    import einderiv

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"einderiv {einderiv.__version__}\n"


def test_version_is_the_packages_in_a_fresh_process():
    """``einderiv --version`` from a new interpreter, equal to pyproject.toml's and the installed metadata's."""
    import importlib.metadata
    import re

    import einderiv

    declared = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert einderiv.__version__ == declared == importlib.metadata.version("einderiv")
    assert run("--version") == (0, f"einderiv {declared}\n", "")


def test_no_command_names_the_commands():
    assert run() == (2, "", "einderiv: error: the following arguments are required: COMMAND; expected one "
                            "of: derive, latex, codegen, check, structure (einderiv --help)\n")


# -------------------------------------------- the CLI is a thin layer over the API
EXAMPLES = ["paper_mlp", "tanh_mlp", "rnn_all_steps", "gru_unrolled", "paper_mlp_order3"]


def _cli(args, tmp_path) -> str:
    out = tmp_path / "out"
    assert main([*args, "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", EXAMPLES)
def test_api_and_cli_agree(name, tmp_path, monkeypatch):
    import einderiv

    monkeypatch.chdir(ROOT)
    path = f"derivations/{name}.ein"
    order = 3 if name.endswith("order3") else 2
    d = einderiv.derive(einderiv.load(path), order)
    assert _cli(["derive", path, "--order", str(order)], tmp_path) == einderiv.derivation_text(d)
    assert _cli(["codegen", path, "--order", str(order)], tmp_path) == einderiv.codegen(d)
    if name == "paper_mlp":
        assert _cli(["latex", path], tmp_path) == einderiv.latex(d)
        assert _cli(["structure", path], tmp_path) == einderiv.structure(d)
        assert _cli(["derive", path, "--form", "compact"], tmp_path) == einderiv.derivation_text(d, form="compact")
        assert _cli(["codegen", path, "--form", "expanded"], tmp_path) == einderiv.codegen(d, form="expanded")


def test_cli_honours_the_files_directives(tmp_path, monkeypatch):
    """paper_mlp_order3.ein says '# einderiv: order 3': latex and derive go to order 3 without --order
    (the form directive, on every command: tests/test_directives.py)."""
    import einderiv

    monkeypatch.chdir(ROOT)
    path = "derivations/paper_mlp_order3.ein"
    tex = _cli(["latex", path], tmp_path)
    assert tex == einderiv.latex(einderiv.derive(einderiv.load(path), 3))
    assert r"\section*{Derivatives of order 3}" in tex
    assert "Order-3 derivatives" not in _cli(["derive", path, "--order", "2"], tmp_path)  # the flag wins


def test_api_and_cli_agree_on_a_template(tmp_path, monkeypatch):
    import einderiv

    monkeypatch.chdir(ROOT)
    path = "derivations/deep_template.ein"
    tpl = einderiv.load(path)
    general = einderiv.derive(tpl)
    assert _cli(["derive", path], tmp_path) == einderiv.derivation_text(general)
    assert _cli(["codegen", path], tmp_path) == einderiv.codegen(general) == einderiv.codegen(tpl)
    d = einderiv.derive(einderiv.load(path, depth={"n": 2}))
    assert _cli(["codegen", path, "--depth", "n=2"], tmp_path) == einderiv.codegen(d)
    assert _cli(["derive", path, "--depth", "n=2"], tmp_path) == einderiv.derivation_text(d)


def test_api_and_cli_agree_on_a_recurrence(tmp_path, monkeypatch):
    """rnn.ein's length is symbolic: derive and latex print its general form (either Hessian form);
    a concrete length gives the network at that length."""
    import einderiv

    monkeypatch.chdir(ROOT)
    path = "derivations/rnn.ein"
    general = einderiv.derive(einderiv.load(path), 1)
    assert _cli(["derive", path, "--order", "1"], tmp_path) == einderiv.derivation_text(general)
    assert _cli(["latex", path, "--order", "1"], tmp_path) == einderiv.latex(general)
    d = einderiv.derive(einderiv.load(path, depth={"T": 3}))
    assert _cli(["codegen", path, "--depth", "T=3"], tmp_path) == einderiv.codegen(d)
    assert _cli(["structure", path, "--depth", "T=3"], tmp_path) == einderiv.structure(d)


@pytest.mark.parametrize("args", [["derive"], ["latex"], ["codegen"], ["derive", "--depth", "n=3"],
                                  ["codegen", "--depth", "n=3"]])
def test_a_template_file_is_read_and_parsed_once(args, tmp_path, monkeypatch):
    import builtins

    import lark

    parses, reads = [], []
    real_parse, real_open = lark.Lark.parse, builtins.open
    src = str(ROOT / "derivations" / "deep_template.ein")

    def parse(self, *a, **k):
        parses.append(1)
        return real_parse(self, *a, **k)

    def opened(file, *a, **k):
        if str(file) == src:
            reads.append(1)
        return real_open(file, *a, **k)

    monkeypatch.setattr(lark.Lark, "parse", parse)
    monkeypatch.setattr(builtins, "open", opened)
    assert main([args[0], src, *args[1:], "-o", str(tmp_path / "out")]) == 0
    assert (len(reads), len(parses)) == (1, 1)
