"""Progress of long jobs, for a person watching a terminal; silent otherwise.

Library code marks its stages, and the steps of a stage whose count it knows::

    with progress.stage("Hessian blocks", total=len(pairs)) as step:
        for a, b in pairs:
            ...
            step()

Nothing is shown, and almost nothing is done, unless a display is installed: the
command line installs one with :func:`shown` for its standard error, which shows
only when that is a terminal.  A display waits :data:`DELAY` seconds before it draws
anything (a quick command prints nothing), then keeps one line up to date — the stages
under way, the innermost one's count, the seconds since the command started — and
erases it when the command ends, so the terminal is left as the command's output made it.
:func:`note` prints a lasting line on a display (and nothing without one).
:func:`took` is how long a finished stage took, for notes that compare stages.

Stages nest (``with stage(…)`` inside another): the line shows their labels joined by
``›``.  Everything here runs on the calling thread except the redraw, which a daemon
thread does every :data:`INTERVAL` seconds so that a long step still shows time passing.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator, TextIO

#: seconds a command runs before its progress line appears
DELAY = 1.0
#: seconds between redraws of the line
INTERVAL = 0.25


class _Stage:
    def __init__(self, label: str, total: int | None):
        self.label, self.total, self.done = label, total, 0

    def __str__(self) -> str:
        return self.label if self.total is None else f"{self.label} {self.done}/{self.total}"


class Display:
    """One progress line on ``stream`` (a terminal), redrawn by a daemon thread.

    ``clock`` gives seconds (``time.monotonic``); ``tick`` False leaves redrawing to the
    stages' own steps (tests).
    """

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic, tick: bool = True):
        self.stream, self.clock = stream, clock
        self.start = clock()
        self.stages: list[_Stage] = []
        self.durations: dict[str, float] = {}
        self.drawn = ""
        self.drawn_at = self.start
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True) if tick else None
        if self.thread:
            self.thread.start()

    def line(self) -> str:
        """What the line shows now (empty before :data:`DELAY` or outside every stage)."""
        elapsed = self.clock() - self.start
        if elapsed < DELAY or not self.stages:
            return ""
        return f"einderiv: {' › '.join(map(str, self.stages))} · {elapsed:.0f} s"

    def draw(self, soon: bool = False) -> None:
        """Redraw the line if it changed (``soon``: only if :data:`INTERVAL` has passed since the last)."""
        if soon and self.clock() - self.drawn_at < INTERVAL:
            return
        with self.lock:
            text = self.line()
            if text != self.drawn:
                self.stream.write("\r\x1b[K" + text)
                self.stream.flush()
                self.drawn, self.drawn_at = text, self.clock()

    def note(self, text: str) -> None:
        with self.lock:
            self.stream.write("\r\x1b[K" + text + "\n" + self.drawn)
            self.stream.flush()

    def close(self) -> None:
        self.stopped.set()
        if self.thread:
            self.thread.join()
        with self.lock:
            if self.drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self.drawn = ""

    def _tick(self) -> None:
        while not self.stopped.wait(max(INTERVAL, 0.05)):
            self.draw()


_display: Display | None = None


@contextlib.contextmanager
def shown(stream: TextIO, **options) -> Iterator[Display | None]:
    """Show progress on ``stream`` while the block runs, if it is a terminal (else nothing)."""
    global _display
    isatty = getattr(stream, "isatty", None)
    if _display is not None or not (isatty and isatty()):
        yield None
        return
    _display = Display(stream, **options)
    try:
        yield _display
    finally:
        display, _display = _display, None
        display.close()


def _nothing() -> None:
    return None


@contextlib.contextmanager
def stage(label: str, total: int | None = None) -> Iterator[Callable[[], None]]:
    """A stage of a job (``total`` steps, if known): yields ``step()``, to call after each step."""
    display = _display
    if display is None:
        yield _nothing
        return
    current = _Stage(label, total)
    began = display.clock()

    def step() -> None:
        current.done += 1
        display.draw(soon=True)

    display.stages.append(current)
    display.draw()
    try:
        yield step
    finally:
        display.stages.remove(current)
        display.durations[label] = display.clock() - began
        display.draw()


def note(text: str) -> None:
    """Print ``text`` as a lasting line on the display, if one is shown."""
    if _display is not None:
        _display.note(text)


def active() -> bool:
    """Whether progress is being shown (worth computing a note for)."""
    return _display is not None


def took(label: str) -> float | None:
    """Seconds the last finished stage called ``label`` took, on the display shown; else None."""
    return None if _display is None else _display.durations.get(label)
