"""Progress on standard error: shown on a terminal, silent when piped; the note on the two forms is true.

A terminal is a ``StringIO`` whose ``isatty()`` is True (in process) or a real pseudo-terminal
(a subprocess); :data:`einderiv.progress.DELAY` and ``INTERVAL`` are set to 0 so that a quick
example draws every step.
"""
from __future__ import annotations

import io
import os
import pathlib
import re
import subprocess
import sys

import pytest

import einderiv
from einderiv import api, progress
from einderiv.calculus.derive import in_form
from einderiv.cli import main
from einderiv.ir.tools import walk

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER = str(ROOT / "derivations" / "paper_mlp.ein")
ERASE = "\r\x1b[K"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def eager(monkeypatch):
    """Draw from the first moment, at every step."""
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "INTERVAL", 0.0)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ the display itself
def test_display_waits_draws_counts_nests_and_erases():
    term, clock = Terminal(), Clock()
    with progress.shown(term, clock=clock, tick=False) as display:
        with progress.stage("deriving"):
            with progress.stage("Hessian blocks", 4) as step:
                step()
                assert term.getvalue() == ""  # nothing before DELAY
                clock.now = 2.0
                step()
                assert display.drawn == "einderiv: deriving › Hessian blocks 2/4 · 2 s"
                progress.note("einderiv: note: a lasting line")
                clock.now = 2.1
                step()  # within INTERVAL of the last draw: not drawn yet
                assert display.drawn.endswith("2/4 · 2 s")
                clock.now = 3.5
                step()
                assert display.drawn == "einderiv: deriving › Hessian blocks 4/4 · 4 s"
            clock.now = 4.0
        assert progress.took("Hessian blocks") == 3.5 and progress.took("deriving") == 4.0
    out = term.getvalue()
    assert out.endswith(ERASE)
    assert (ERASE + "einderiv: note: a lasting line\n" + "einderiv: deriving › Hessian blocks 2/4 · 2 s") in out
    assert out.split(ERASE)[-2] == "einderiv: deriving · 4 s"  # the inner stage ended: its parent shown
    assert not progress.active() and progress.took("deriving") is None


def test_not_a_terminal_shows_nothing_and_stages_are_free():
    piped = io.StringIO()
    with progress.shown(piped) as display:
        assert display is None and not progress.active()
        with progress.stage("deriving", 2) as step:
            step()
        progress.note("nothing")
    assert piped.getvalue() == ""


# ------------------------------------------------- each command, on a terminal and piped
COMMANDS = {"derive": "writing the derivation", "latex": "writing the LaTeX document",
            "structure": "the structure table", "codegen": "generating the NumPy module",
            "check": "checking against finite differences"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_shows_its_stages_on_a_terminal(command, eager, monkeypatch, capsys):
    assert main([command, PAPER]) == 0
    piped = capsys.readouterr()
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main([command, PAPER]) == 0
    shown = term.getvalue()
    lines = [re.sub(r" · \d+ s$", " · N s", line) for line in shown.split(ERASE)]  # seconds vary
    assert "einderiv: deriving › Hessian blocks 9/9 · N s" in lines
    assert f"einderiv: {COMMANDS[command]} · N s" in lines
    assert shown.endswith(ERASE)  # the line is erased: the terminal keeps only the output
    assert capsys.readouterr().out == piped.out  # stdout is the same either way
    assert piped.err == ""  # piped (capsys is no terminal): nothing on stderr


CODE = """import sys
import einderiv.progress as p
from einderiv.cli import main
p.DELAY = 0.0
sys.exit(main(sys.argv[1:]))
"""


def _stderr_of(args, terminal: bool) -> str:
    if not terminal:
        p = subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True)
        assert p.returncode == 0
        return p.stderr
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-c", CODE, *args], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert p.wait() == 0
    return b"".join(chunks).decode("utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="no pseudo-terminals")
def test_a_real_terminal_gets_progress_and_a_pipe_gets_none():
    shown = _stderr_of(["derive", PAPER], terminal=True)
    assert "einderiv: deriving" in shown and "einderiv: writing the derivation" in shown
    assert shown.endswith(ERASE)
    assert _stderr_of(["derive", PAPER], terminal=False) == ""


# ------------------------------------------------------------------- the note on forms
def deep_tanh(layers: int) -> str:
    lines = ["dims n = 3, c = 2", "input x^i : n", "label y^l : c"]
    lines += [f"weight W{k}^j_i : n, n" for k in range(1, layers + 1)] + ["weight U^l_j : c, n"]
    lines += [f"v{k}^j = tanh(W{k}^j_i {'x' if k == 1 else f'v{k - 1}'}^i)" for k in range(1, layers + 1)]
    return "\n".join(lines + [f"p^l = U^l_j v{layers}^j", "f = squared_error(p, y)"]) + "\n"


def nodes(d) -> int:
    """Expression nodes of the Hessian blocks and quantities, counted here independently."""
    count = 0
    for wrt, block in d.blocks.items():
        count += len(list(walk(block.expr))) if len(wrt) == 2 else 0
    return count + sum(len(list(walk(q.expr))) for q in d.quantities)


@pytest.fixture(scope="module")
def deep():
    """A 14-layer tanh MLP, derived (compact) and in the expanded form (built once)."""
    d = einderiv.derive(einderiv.load("deep.ein", text=deep_tanh(14)))
    return d, in_form(d, "expanded")


def test_forms_note_states_the_true_sizes(deep):
    d, e = deep
    big, small = nodes(e), nodes(d)
    assert big >= 2 * small  # a deep tanh MLP: the expanded form is the larger
    note = api._forms_note(d, e, 7.25, 1.5)
    assert note == (f"einderiv: note: the expanded form took 7.2 s and is {big / small:.1f}× the size of the "
                    f"compact form ({big:,} vs {small:,} expression nodes), which took 1.5 s: add --form "
                    "compact for the compact form")
    small_net = einderiv.derive(einderiv.load(PAPER))  # here the expanded form is no larger: no note
    assert nodes(in_form(small_net, "expanded")) < 2 * nodes(small_net)
    assert api._forms_note(small_net, in_form(small_net, "expanded"), 9.0, 1.0) == ""


def test_the_note_waits_for_a_slow_expanded_form(deep, eager, monkeypatch):
    d, e = deep
    term = Terminal()
    with progress.shown(term, tick=False):
        monkeypatch.setattr(api, "NOTE_AFTER", 1e9)
        assert api._in_form(d, "expanded") is e
        assert "note" not in term.getvalue()
        monkeypatch.setattr(api, "NOTE_AFTER", 0.0)
        assert api._in_form(d, "expanded") is e
        assert api._in_form(d, "compact") is d and api._in_form(e, "expanded") is e  # nothing built: no note
    notes = [line for part in term.getvalue().split(ERASE) for line in part.split("\n") if "note" in line]
    assert len(notes) == 1 and f"({nodes(e):,} vs {nodes(d):,} expression nodes)" in notes[0]


def test_the_note_is_shown_by_the_command_line(deep, tmp_path, eager, monkeypatch, capsys):
    d, e = deep
    src = tmp_path / "deep.ein"
    src.write_text(deep_tanh(14))
    monkeypatch.setattr(api, "NOTE_AFTER", 0.0)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["structure", str(src)]) == 0
    notes = [line for part in term.getvalue().split(ERASE) for line in part.split("\n") if "note" in line]
    assert len(notes) == 1 and notes[0].startswith("einderiv: note: the expanded form took ")
    assert f"({nodes(e):,} vs {nodes(d):,} expression nodes), which took " in notes[0]
    assert capsys.readouterr().out == api.structure(d) + "\n"
