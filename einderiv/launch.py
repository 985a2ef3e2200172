"""The ``einderiv`` command's entry point: answer from the cache, else run the command line.

The command line proper (:mod:`einderiv.cli`) imports the whole pipeline — SymPy, NumPy,
lark, every layer — which costs most of a second before any work.  A command whose output
is already kept (:mod:`einderiv.cache`: same file content, same command line, same einderiv
and libraries) needs none of it, so this module is the entry point (``einderiv`` and
``python -m einderiv``), and it imports only the standard library and the cache:

1. it reads the command line just enough to find a cacheable command (``derive``, ``latex``,
   ``codegen``, ``structure``) and its file, with only options it knows, written out in full
   (anything else — ``--help``, an abbreviated option, ``check`` — goes to the command line
   as it is, uncached);
2. on a hit it writes the kept output (and warnings) byte for byte and exits 0;
3. otherwise it imports :mod:`einderiv.cli` — the one import of the heavy half, and the
   only place where an einderiv module is imported at run time rather than at the top of
   a module (``tests/test_layers.py`` holds both to this) — runs the command, and keeps
   what it wrote if it succeeded and the file did not change meanwhile.

``--no-cache`` skips both the lookup and the keeping.  ``python -m einderiv.cli`` and
``einderiv.cli.main`` (the tests, the benchmarks) never use the cache.
"""
from __future__ import annotations

import gc
import importlib
import sys

from . import __version__, cache

__all__ = ["main", "cacheable"]

#: options that take a value (``--dim x=3`` or ``--dim=x=3``), as einderiv.cli defines them
VALUED = ("--order", "--dim", "--depth", "-o", "--output", "--max-steps", "--max-size", "--form", "--backend",
          "--naming", "--seed", "--batch", "--tol")
#: options that take none
FLAGS = ("--traceback", "--debug", "--no-cache")


def cacheable(argv: list[str]) -> str | None:
    """The file of a command the cache may answer, or None (another command, an option this
    reader does not know, ``--no-cache``)."""
    k = 0
    while k < len(argv) and argv[k] in ("--traceback", "--debug"):
        k += 1
    if k >= len(argv) or argv[k] not in cache.COMMANDS:
        return None
    files = []
    rest = argv[k + 1:]
    j = 0
    while j < len(rest):
        tok = rest[j]
        if tok == "--no-cache":
            return None
        if tok in FLAGS:
            j += 1
        elif tok in VALUED:
            if j + 1 >= len(rest):
                return None
            j += 2
        elif tok.startswith("--") and tok.partition("=")[0] in VALUED and "=" in tok:
            j += 1
        elif tok.startswith("-"):
            return None  # -h, an abbreviation, --, -oOUT, a negative number: the command line decides
        else:
            files.append(tok)
            j += 1
    return files[0] if len(files) == 1 else None


def _content(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """``einderiv ARGS``: the exit code (see :mod:`einderiv.cli`).  Without ``argv`` this is the
    process's command (``sys.argv``), and the process ends after it."""
    process = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["--version"]:
        print(f"einderiv {__version__}")
        return 0
    try:
        path = cacheable(argv)
        content = _content(path) if path is not None else None
        k = cache.key(__version__, argv, content) if content is not None else None
        kept = cache.load(k) if k is not None else None
        if kept is not None:
            kept.replay()
            return 0
    except KeyboardInterrupt:
        return 130
    except Exception:  # the cache never stops a command (an -o that cannot be written: the command line says so)
        path = content = k = None
    if process:
        # one command, then the process ends: the cyclic collector would only walk the
        # derivation's millions of acyclic objects again and again (about 0.4 s of a 32-layer
        # order-2 codegen); what is left is freed at exit
        gc.disable()
    cli = importlib.import_module("einderiv.cli")
    transcript = cache.Transcript()
    code = cli.main(argv, transcript)
    if k is not None and code == 0 and _content(path) == content:
        try:
            cache.store(k, transcript)
        except Exception:  # (store already skips a cache it cannot write)
            pass
    if process:
        # the interpreter's exit runs one full collection even with the collector off: it would
        # walk every object still alive (SymPy's, the interned IR nodes) only to free them next —
        # 0.3 s after an 8-layer order-2 codegen, 0.7 s after a 32-layer one.  Frozen objects are
        # left to the exit's teardown without that walk.
        gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
