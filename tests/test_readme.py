"""What the README promises a new user, checked: its two commands and the commands it quotes.

``.ci/run`` runs README.md's two commands exactly as written (read by
``.ci/readme_commands.py``), each in a fresh copy of the checkout and a new shell; these
tests keep the commands runnable that way without installing anything: each makes and
activates its own environment, names files that exist and options that its extras provide,
and every ``einderiv … -o FILE`` sentence writes what it says.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

import einderiv
from einderiv.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
_spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
readme_commands = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_commands)
COMMANDS = readme_commands.commands(README)
#: what makes a command stand on its own in a new shell: its own environment, activated
PREAMBLE = ["python3 -m venv .venv", ". .venv/bin/activate"]


def steps(command: str) -> list[list[str]]:
    return [shlex.split(part) for part in command.split("&&")]


def test_the_readme_has_commands_1_and_2():
    assert sorted(COMMANDS) == [1, 2]


@pytest.mark.parametrize("number", [1, 2])
def test_each_command_makes_and_activates_its_own_environment(number):
    parts = [p.strip() for p in COMMANDS[number].split("&&")]
    assert parts[:2] == PREAMBLE, COMMANDS[number]


def test_command_1_installs_and_derives_an_example(capsys, monkeypatch):
    install, run = steps(COMMANDS[1])[2:]
    assert install == ["pip", "install", "."]
    assert run[:2] == ["einderiv", "derive"] and (ROOT / run[2]).is_file() and len(run) == 3
    monkeypatch.chdir(ROOT)
    assert main(run[1:]) == 0
    assert "one outer product" in capsys.readouterr().out  # what .ci/run looks for


#: what command 2 installs: the test extras and every optional library a test uses (so that
#: CI, which runs the command as written, skips none), with the constraints that pin torch's CPU build
EXTRAS = ["test", "torch", "jax", "dask", "examples", "bench"]


def test_command_2_installs_the_test_extras_and_each_option_they_need():
    install, run = steps(COMMANDS[2])[2:]
    assert install == ["pip", "install", "-c", ".ci/constraints.txt", f".[{','.join(EXTRAS)}]"]
    assert (ROOT / ".ci" / "constraints.txt").is_file()
    section = (ROOT / "pyproject.toml").read_text(encoding="utf-8").split("[project.optional-dependencies]")[1]
    declared = re.findall(r"^(\w+) = \[", section.split("\n[")[0], re.M)
    assert sorted(EXTRAS) == sorted(declared), "command 2 leaves out an extra (or names one not declared)"
    assert run[:3] == ["python", "-m", "pytest"]
    extras = re.search(r"^test = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M).group(1)
    needs = {"-n": "pytest-xdist"}  # option -> the plugin that provides it
    for option in (o for o in run[3:] if o.startswith("-")):
        assert option in needs, f"which extra provides the README's pytest option {option}?"
        assert f'"{needs[option]}' in extras, f"{needs[option]} is not in the test extras"


def test_ci_runs_the_readme_commands_then_the_slow_tests():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'cmd1="$(python3 .ci/readme_commands.py 1)"' in ci and 'cmd2="$(python3 .ci/readme_commands.py 2)"' in ci
    assert 'new_shell "$one" "$cmd1"' in ci and 'new_shell "$two" "$cmd2"' in ci
    assert "EINDERIV_ALL_EXAMPLES=1 python -m pytest -q -n auto -m slow" in ci  # what the default run leaves out
    assert "-m 'not slow'" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_readme_commands_reader_rejects_what_ci_could_not_run():
    with pytest.raises(ValueError, match="must be one line"):
        readme_commands.commands("## Tests (command 2)\n\n```sh\na\nb\n```\n")
    with pytest.raises(ValueError, match="must be a ```sh block"):
        readme_commands.commands("## Tests (command 2)\n\n```python\na\n```\n")


#: "`einderiv CMD ARGS -o OUT` writes ... `OUT`" sentences of README.md and docs/
WRITES = re.compile(r"`einderiv (\w+) ([^`]*)` writes (?:the module to )?`([^`]+)`")


def sentences():
    texts = [README] + [p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))]
    return [m.groups() for text in texts for m in WRITES.finditer(text.replace("\n", " "))]


def test_readme_says_codegen_writes_a_file_only_with_o():
    assert sentences(), "README.md lost its codegen sentence"
    for command, args, out in sentences():
        assert args.split()[-2:] == ["-o", out], f"`einderiv {command} {args}` does not write {out}"


def test_each_writes_sentence_is_true(tmp_path, monkeypatch, capsys):
    for command, args, out in sentences():
        argv = args.split()
        source = str(ROOT / argv[0])
        monkeypatch.chdir(tmp_path)
        assert main([command, source, *argv[1:]]) == 0
        assert capsys.readouterr().out == ""
        written = (tmp_path / out).read_text(encoding="utf-8")
        made = {"codegen": einderiv.codegen, "derive": einderiv.derivation_text, "latex": einderiv.latex}
        assert written == made[command](einderiv.derive(einderiv.load(source)))


#: a fresh interpreter in which the package ``einderiv.grammar`` cannot be imported, as when the
#: tests import the source tree beside a non-editable install (README command 2)
NO_GRAMMAR_PACKAGE = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "einderiv.grammar":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Block())
import einderiv
net = einderiv.load("derivations/paper_mlp.ein")
print(einderiv.__file__, len(net.params))
"""


def test_the_source_tree_finds_its_grammar_without_the_installed_package():
    p = subprocess.run([sys.executable, "-c", NO_GRAMMAR_PACKAGE], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(ROOT / "einderiv" / "__init__.py"), "3"]
