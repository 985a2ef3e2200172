"""``# einderiv: order N`` and ``# einderiv: form F``: every command honours them, the command line wins.

A directive is the default of its option for ``derive``, ``latex``, ``structure``, ``codegen``
and ``check`` and for the API's functions; each command is run with the directive alone,
then with the opposite option on the command line, and compared with the API called with
that option spelled out.  Bad directives are one-line errors at their line and column.
"""
from __future__ import annotations

import pytest

import einderiv
from einderiv import api
from einderiv.cli import main
from einderiv.errors import ParseError

NET = """dims n = 2, c = 2
input x^i : n
label y^l : c
weight W^j_i : n, n
weight U^l_j : c, n
v^j = tanh(W^j_i x^i)
p^l = U^l_j v^j
f = squared_error(p, y)
"""


def write(tmp_path, *directives: str, name: str = "net.ein"):
    src = tmp_path / name
    src.write_text("# a small tanh network\n" + "".join(f"# einderiv: {d}\n" for d in directives) + NET)
    return str(src)


def cli(tmp_path, command: str, *args: str) -> str:
    """What a command writes (stdout for ``check``, the -o file otherwise)."""
    if command == "check":
        raise AssertionError("use check_form")
    out = tmp_path / f"{command}.out"
    assert main([command, *args, "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


PRINTERS = {"derive": api.derivation_text, "latex": api.latex, "structure": api.structure,
            "codegen": api.codegen}


# --------------------------------------------------------------------- order
@pytest.mark.parametrize("command", sorted(PRINTERS))
def test_order_directive_is_each_commands_default_and_the_flag_wins(command, tmp_path):
    path = write(tmp_path, "order 1")
    first, second = einderiv.derive(einderiv.load(path), 1), einderiv.derive(einderiv.load(path), 2)
    assert einderiv.derive(einderiv.load(path)).order == 1
    assert cli(tmp_path, command, path) == PRINTERS[command](first)
    assert cli(tmp_path, command, path, "--order", "2") == PRINTERS[command](second)
    assert PRINTERS[command](first) != PRINTERS[command](second)


def test_order_directive_for_check_and_the_flag_wins(tmp_path, capsys):
    path = write(tmp_path, "order 1")
    assert main(["check", path]) == 0
    rows = capsys.readouterr().out
    assert "gradient W" in rows and "hessian" not in rows
    assert main(["check", path, "--order", "2"]) == 0
    assert "hessian W,U" in capsys.readouterr().out


def test_order_3_directive_adds_the_third_derivative(tmp_path):
    path = write(tmp_path, "order 3")
    src = cli(tmp_path, "codegen", path)
    assert "def third_derivative(" in src and src == api.codegen(einderiv.derive(einderiv.load(path), 3))
    assert "def third_derivative(" not in cli(tmp_path, "codegen", path, "--order", "2")


# ---------------------------------------------------------------------- form
@pytest.mark.parametrize("command", sorted(PRINTERS))
def test_form_directive_is_each_commands_default_and_the_flag_wins(command, tmp_path, monkeypatch):
    d = einderiv.derive(einderiv.load(write(tmp_path, name="plain.ein")))
    built = []  # the form each call printed from
    real = api.in_form
    monkeypatch.setattr(api, "in_form", lambda derivation, form: built.append(form) or real(derivation, form))
    for form in ("compact", "expanded"):
        other = "expanded" if form == "compact" else "compact"
        path = write(tmp_path, f"form {form}", name=f"{form}.ein")
        here = einderiv.derive(einderiv.load(path))
        built.clear()
        assert cli(tmp_path, command, path) == PRINTERS[command](here, form=form)
        assert cli(tmp_path, command, path, "--form", other) == PRINTERS[command](here, form=other)
        assert PRINTERS[command](here) == PRINTERS[command](here, form=form)  # the API's default too
        assert built == [form, form, other, other, form, form]
        # and the directive is what changed it: the two forms differ, bar the file name (the
        # structure table of this one-layer network is the same in both: its K are proved alike)
        if command != "structure":
            assert (PRINTERS[command](d, form=form).replace("plain.ein", "")
                    != PRINTERS[command](d, form=other).replace("plain.ein", ""))


def test_form_directive_for_check_and_the_flag_wins(tmp_path, monkeypatch):
    checked = []
    real = api._check

    def spy(derivation, *args, **kwargs):
        checked.append("expanded" if derivation.expanded else "compact")
        return real(derivation, *args, **kwargs)

    monkeypatch.setattr(api, "_check", spy)
    assert main(["check", write(tmp_path, "form expanded", name="e.ein")]) == 0
    assert main(["check", write(tmp_path, "form expanded", name="e.ein"), "--form", "compact"]) == 0
    assert main(["check", write(tmp_path, name="plain.ein")]) == 0
    assert checked == ["expanded", "compact", "compact"]


def test_compact_form_prints_the_second_order_adjoints(tmp_path):
    path = write(tmp_path, "form compact")
    assert "H[" in cli(tmp_path, "derive", path)
    assert "H[" not in cli(tmp_path, "derive", path, "--form", "expanded")


def test_kept_example_is_derived_as_its_directive_says(capsys, monkeypatch):
    """``einderiv derive derivations/paper_mlp_order3.ein`` is its kept third-order derivation."""
    from test_derivations import ROOT

    monkeypatch.chdir(ROOT)
    for name in ("paper_mlp_order3", "gru_unrolled"):
        assert main(["derive", f"derivations/{name}.ein"]) == 0
        kept = (ROOT / "derivations" / f"{name}.txt").read_text(encoding="utf-8")
        assert capsys.readouterr().out == kept


# ------------------------------------------------------------------ templates
TEMPLATE = """dims n_in = 2, h = 2, c = 2
depth n
input x^i : n_in
label y^l : c
weight w(1)^j_i : h, n_in
weight w(k)^j_i : h, h          for k = 2..n
weight u^l_j : c, h
v(1)^j = relu(w(1)^j_i x^i)
v(k)^j = relu(w(k)^j_i v(k-1)^i)  for k = 2..n
p^l = u^l_j v(n)^j
f = squared_error(p, y)
"""


def test_template_form_directive_applies_at_a_depth_and_is_reported_for_the_general_form(tmp_path, capsys):
    src = tmp_path / "tpl.ein"
    src.write_text("# einderiv: form compact\n" + TEMPLATE)
    assert main(["derive", str(src), "--depth", "n=2", "-o", str(tmp_path / "out")]) == 0
    assert "H[" in (tmp_path / "out").read_text(encoding="utf-8")
    assert main(["derive", str(src)]) == 2
    assert capsys.readouterr().err == (
        f"{src}:1:13: directive 'form compact': the general form of a layer template writes its Hessian "
        "blocks expanded; the compact form needs a concrete depth, e.g. --depth n=3\n")
    assert main(["derive", str(src), "--form", "expanded", "-o", str(tmp_path / "general")]) == 0


# ---------------------------------------------------------------------- errors
BAD = [
    ("# einderiv: order three\n",
     "t.ein:1:19: '# einderiv: order three' needs a positive integer order; expected e.g. '# einderiv: order 3'"),
    ("# einderiv: order 0\n",
     "t.ein:1:19: '# einderiv: order 0' needs a positive integer order; expected e.g. '# einderiv: order 3'"),
    ("# einderiv: form dense\n",
     "t.ein:1:18: '# einderiv: form dense' names no Hessian form; expected one of: expanded, compact"),
    ("# einderiv: seed 3\n",
     "t.ein:1:13: unknown directive '# einderiv: seed'; expected 'order N' or 'form expanded|compact'"),
    ("# einderiv: order 3\n#einderiv:order 2\n",
     "t.ein:2:11: repeated directive '# einderiv: order' (first given at line 1); expected each directive once"),
    ("dims q = 1\n# einderiv: order 3\n",
     "t.ein:2:13: '# einderiv: order' comes after the first statement; expected directives among the comments "
     "that open the file"),
]


@pytest.mark.parametrize("head,message", BAD)
def test_bad_directive_is_a_located_error(head, message):
    with pytest.raises(ParseError) as err:
        einderiv.load("t.ein", text=head + NET)
    first, line, caret = str(err.value).split("\n")
    assert first == message
    column = int(message.split(":")[2])
    assert line == head.split("\n")[int(message.split(":")[1]) - 1] and caret == " " * (column - 1) + "^"


def test_bad_directive_exits_2_on_the_command_line(tmp_path, capsys):
    src = tmp_path / "bad.ein"
    src.write_text("# einderiv: order 0\n" + NET)
    assert main(["codegen", str(src)]) == 2
    assert capsys.readouterr().err.split("\n")[0] == (
        f"{src}:1:19: '# einderiv: order 0' needs a positive integer order; expected e.g. '# einderiv: order 3'")


def test_comments_that_only_mention_einderiv_are_not_directives():
    net = einderiv.load("t.ein", text="# `einderiv derive` prints this; einderiv: fast\n" + NET
                        + "# einderiv derive t.ein\n")
    assert net.header.directives == ()
