"""The README's numbered commands, read from README.md so that CI runs exactly what it says.

    python .ci/readme_commands.py 1      # prints command 1 (install and run)
    python .ci/readme_commands.py 2      # prints command 2 (tests)

A numbered command is the one line of the ```sh block under a heading that ends
``(command N)``.  ``.ci/run`` runs each in a fresh copy of the checkout and a new shell
with no virtual environment active; ``tests/test_readme.py`` checks that each one stands on
its own (it makes and activates its own environment) and that ``.ci/run`` runs them.
Standard library only: CI runs this before anything is installed.
"""
from __future__ import annotations

import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
_HEADING = re.compile(r"^#+ .*\(command (\d+)\)\s*$")


def commands(text: str) -> dict[int, str]:
    """``{N: the one-line command under the heading '… (command N)'}``, in the README's order."""
    found: dict[int, str] = {}
    lines = text.splitlines()
    for k, line in enumerate(lines):
        m = _HEADING.match(line)
        if not m:
            continue
        start = next(j for j in range(k + 1, len(lines)) if lines[j].startswith("```"))
        if lines[start].strip() != "```sh":
            raise ValueError(f"README.md:{start + 1}: command {m[1]} must be a ```sh block")
        end = next(j for j in range(start + 1, len(lines)) if lines[j].startswith("```"))
        body = [b for b in lines[start + 1:end] if b.strip()]
        if len(body) != 1:
            raise ValueError(f"README.md:{start + 2}: command {m[1]} must be one line, got {len(body)}")
        found[int(m[1])] = body[0].strip()
    return found


def main(argv: list[str]) -> int:
    number = int(argv[1])
    print(commands(README.read_text(encoding="utf-8"))[number])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
