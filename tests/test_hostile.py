"""Hostile input: no code injection through what a file says (issue 15, point 1).

Every user-controlled string that reaches generated Python or LaTeX — the file's path and its
title comment; names, numbers and sizes are restricted by the grammar — is fed a hostile value
here.  The generated NumPy, PyTorch and JAX modules must import without side effects (no file
appears) and keep the path as text; the LaTeX document must compile with
``pdflatex -no-shell-escape -halt-on-error`` and show the literal text in the PDF.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import einderiv

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "derivations" / "deep_template.ein"

NET = """dims n = 2
input x^i : n
label y^i : n
weight W^j_i : n, n
p^j = W^j_i x^i
f = squared_error(p, y)
"""
#: a file name that closes a triple-quoted docstring (either kind) and runs a command on import
HOSTILE_NAMES = [
    'net"""; __import__("os").system("touch PWNED"); """.ein',
    "net'''; __import__('os').system('touch PWNED'); '''.ein",
    'net\\"""; open("PWNED", "w"); x = """\\.ein',
    'net\n"""\nopen("PWNED", "w")\n""".ein',
    'net\x1b\x7f"""\r\nopen("PWNED", "w")#.ein',
]
#: a title comment with every character TeX gives a meaning, and the commands an attacker wants
TITLE = (r"Evil \input{/etc/passwd} \write18{touch PWNED} \catcode`\{=12 {unbalanced"
         r" % # ~ ^ & $ _ < > | \def\x{y}\x end")


def _backends():
    out = ["numpy"]
    for lib in ("torch", "jax"):
        if importlib.util.find_spec(lib) is not None:
            out.append(lib)
    return out


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("k", range(len(HOSTILE_NAMES)))
def test_generated_module_keeps_a_hostile_path_as_text(tmp_path, monkeypatch, backend, k):
    monkeypatch.chdir(tmp_path)
    ein = tmp_path / HOSTILE_NAMES[k]
    ein.write_text(NET)
    src = einderiv.codegen(einderiv.derive(einderiv.load(str(ein)), 1), backend=backend)
    tree = ast.parse(src)
    # the path is in the docstring, whole, and the module's only top-level statements are the
    # docstring, imports, assignments and definitions: nothing that runs on import
    doc = ast.get_docstring(tree, clean=False)
    assert str(ein) in doc
    kinds = {type(node).__name__ for node in tree.body[1:]}
    assert kinds <= {"Import", "ImportFrom", "Assign", "FunctionDef"}, kinds
    out = tmp_path / "generated.py"
    out.write_text(src, encoding="utf-8")
    module = _import(out, f"hostile_{backend}_{k}")
    assert not (tmp_path / "PWNED").exists()
    assert str(ein) in module.__doc__
    assert set(module.PARAMS) == {"W"}


def test_template_module_keeps_a_hostile_path_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ein = tmp_path / HOSTILE_NAMES[0]
    shutil.copy(TEMPLATE, ein)
    src = einderiv.codegen(einderiv.load(str(ein)))
    assert str(ein) in ast.get_docstring(ast.parse(src), clean=False)
    out = tmp_path / "generated.py"
    out.write_text(src, encoding="utf-8")
    _import(out, "hostile_template")
    assert not (tmp_path / "PWNED").exists()


def test_undecodable_path_is_escaped_in_the_module(tmp_path):
    """A file name that is not UTF-8 (a lone surrogate in Python) is written as an escape."""
    path = os.fsdecode(b"net\xff.ein")
    src = einderiv.codegen(einderiv.derive(einderiv.load(str(tmp_path / path), text=NET), 1))
    src.encode("utf-8")  # writable as UTF-8
    assert "net\\udcff.ein" in src.splitlines()[0]
    assert str(tmp_path / path) in ast.get_docstring(ast.parse(src), clean=False)


def _pdf_text(tex: str, tmp_path) -> str:
    pdflatex, pdftotext = shutil.which("pdflatex"), shutil.which("pdftotext")
    if pdflatex is None or pdftotext is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex or pdftotext not installed (CI must install texlive and poppler-utils)")
        pytest.skip("pdflatex or pdftotext not on PATH")
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    run = subprocess.run([pdflatex, "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                          "doc.tex"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Font Warning" not in (tmp_path / "doc.log").read_text(errors="replace")  # each glyph as written
    assert "PWNED" not in os.listdir(tmp_path)
    subprocess.run([pdftotext, "-raw", "doc.pdf", "doc.txt"], cwd=tmp_path, check=True, timeout=60)
    return (tmp_path / "doc.txt").read_text(encoding="utf-8")


def _plain(text: str) -> str:
    """What pdftotext gives for the typewriter and roman glyphs of ASCII: straight quotes, no gaps."""
    for a, b in (("’", "'"), ("‘", "`"), ("”", '"'), ("“", '"'), ("\u02c6", "^"), ("\u02dc", "~")):
        text = text.replace(a, b)
    return "".join(text.split())


@pytest.mark.parametrize("general", [False, True], ids=["network", "template"])
def test_latex_keeps_a_hostile_title_and_path_as_text(tmp_path, general):
    name = 'ev$il%{x}#~^&_\\input{y}"\'.ein'
    if general:
        body = TEMPLATE.read_text().split("\n", 1)[1]
        model = einderiv.load(str(tmp_path / "src" / name), text=f"# {TITLE}\n" + body)
    else:
        model = einderiv.load(str(tmp_path / "src" / name), text=f"# {TITLE}\n{NET}")
    derived = einderiv.derive(model) if general else einderiv.derive(model, 1)
    text = _plain(_pdf_text(einderiv.latex(derived), tmp_path))
    # `\_` is drawn as a rule, which has no text in the PDF: the rest is compared
    text = text.replace("_", "")
    assert _plain(TITLE).replace("_", "") in text
    assert _plain(str(tmp_path / "src" / name)).replace("_", "") in text


def test_latex_escapes_control_characters(tmp_path):
    model = einderiv.load(str(tmp_path / "a\x0c\x1bb.ein"), text="# Bell\x07 and tab\there\n" + NET)
    text = _plain(_pdf_text(einderiv.latex(einderiv.derive(model, 1)), tmp_path))
    assert "Bellandtabhere" in text
    assert "a\\x0c\\x1bb.ein" in text  # the path's control characters as their escapes (test_bad_input)


def test_notebook_title_is_not_html():
    model = einderiv.load("x<script>.ein", text="# A <script>alert(1)</script> net\n" + NET)
    md = einderiv.derive(model, 1)._repr_markdown_()
    assert "<script>" not in md.split("`")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
