"""The command line's cache: a command's output, kept by everything that decides it.

``einderiv derive|latex|codegen|structure FILE …`` is a pure function of the file's content,
the command line, einderiv's own code and the libraries that print it.  :func:`key` hashes
all of them; :class:`Transcript` records what a command wrote (its text, standard output or
``-o OUT``, and the warning lines on standard error); :func:`load` and :func:`store` keep it
as one JSON file per key.  The light entry point (:mod:`einderiv.launch`) answers a command
from here without importing SymPy or NumPy.  ``check`` is never cached: it exists to run the
kernels where it is asked.

Location: ``$EINDERIV_CACHE``, else ``$XDG_CACHE_HOME/einderiv``, else ``~/.cache/einderiv``.
Size: at most ``$EINDERIV_CACHE_MB`` megabytes (256 by default); storing an entry past it removes
the least recently used ones (a hit marks its entry used).
An entry that cannot be read, is not the expected JSON, or was stored under another key
(einderiv's files changed, another SymPy) is ignored; a cache that cannot be written is
skipped.  Nothing here imports more than the standard library.

Example:
    >>> t = Transcript()
    >>> t.wrote("x", None)
    >>> t.stdout()
    'x\\n'
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pathlib
import sys
import tempfile

from .errors import UsageError

__all__ = ["COMMANDS", "Transcript", "directory", "key", "load", "store", "write"]

#: the commands whose output is kept (``check`` runs the kernels: never answered from a cache)
COMMANDS = ("derive", "latex", "codegen", "structure")
#: the layout of an entry; another one is ignored
FORMAT = 1
#: variables that change what a command does (einderiv.frontend.limits)
ENVIRONMENT = ("EINDERIV_MAX_STEPS", "EINDERIV_MAX_SIZE")
#: the libraries whose code decides the output (printers, the grammar's parser)
LIBRARIES = ("sympy", "numpy", "lark")
#: the cache's size limit in megabytes, unless ``$EINDERIV_CACHE_MB`` says otherwise
DEFAULT_MB = 256

PACKAGE = pathlib.Path(__file__).resolve().parent


def directory() -> pathlib.Path:
    """Where entries are kept (see the module docstring)."""
    explicit = os.environ.get("EINDERIV_CACHE")
    if explicit:
        return pathlib.Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache"
    return base / "einderiv"


def _code_stamp() -> list:
    """Every source file of einderiv (its grammar included) and each library's location, with
    sizes and modification times: an edited file or an upgraded library is another key."""
    files = sorted(PACKAGE.rglob("*.py")) + sorted(PACKAGE.parent.joinpath("grammar").glob("*.lark")) + \
        sorted(PACKAGE.joinpath("grammar").glob("*.lark"))
    stamp = []
    for p in files:
        st = p.stat()
        stamp.append((str(p), st.st_size, st.st_mtime_ns))
    for lib in LIBRARIES:
        spec = importlib.util.find_spec(lib)
        origin = spec.origin if spec is not None and spec.origin else None
        st = os.stat(origin) if origin else None
        stamp.append((lib, origin, st.st_size if st else None, st.st_mtime_ns if st else None))
    return stamp


def key(version: str, argv: list[str], content: bytes) -> str:
    """The hash of everything a command's output depends on: einderiv's version and code, the
    libraries, the command line as given, the file's content, the limits set in the environment."""
    whole = {
        "format": FORMAT,
        "version": version,
        "python": sys.version,
        "code": _code_stamp(),
        "argv": list(argv),
        "content": hashlib.sha256(content).hexdigest(),
        "environment": {v: os.environ.get(v) for v in ENVIRONMENT},
    }
    return hashlib.sha256(json.dumps(whole, sort_keys=True).encode("utf-8", "surrogateescape")).hexdigest()


class Transcript:
    """What one command wrote: its text and where (``None``: standard output), and the lines it
    printed on standard error (warnings)."""

    def __init__(self):
        self.text: str | None = None
        self.output: str | None = None
        self.errors: list[str] = []

    def wrote(self, text: str, output: str | None) -> None:
        self.text, self.output = text, output

    def warned(self, line: str) -> None:
        self.errors.append(line)

    def stdout(self) -> str:
        """The text as standard output gets it (a final newline added)."""
        text = self.text or ""
        return text if text.endswith("\n") else text + "\n"

    def replay(self) -> None:
        """Write it again, byte for byte as the command did."""
        if self.text is not None:
            write(self.text, self.output)
        for line in self.errors:
            print(line, file=sys.stderr)


def write(text: str, output: str | None) -> None:
    """A command's text to the file ``output`` (as it is) or to standard output (with a final
    newline); a file name that is not UTF-8 keeps its bytes."""
    if output:
        try:
            with open(output, "w", encoding="utf-8", newline="\n", errors="surrogateescape") as fh:
                fh.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write '{output}': {exc.strerror or exc}") from None
    else:
        text = text if text.endswith("\n") else text + "\n"
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:  # a file name that is not UTF-8: its bytes as they were
            sys.stdout.flush()
            sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))


def load(k: str) -> Transcript | None:
    """The entry kept under ``k``, or None: missing, unreadable, corrupt or of another key."""
    try:
        raw = (directory() / f"{k}.json").read_text(encoding="utf-8")
        entry = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != k:
        return None
    text, output, errors = entry.get("text"), entry.get("output"), entry.get("errors")
    if not isinstance(text, str) or not (output is None or isinstance(output, str)) \
            or not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        return None
    t = Transcript()
    t.text, t.output, t.errors = text, output, list(errors)
    try:
        os.utime(directory() / f"{k}.json")  # used now: the last to be removed (see _evict)
    except OSError:
        pass
    return t


def store(k: str, t: Transcript) -> bool:
    """Keep ``t`` under ``k`` (written whole, then renamed into place, so a reader never sees half
    an entry); False if the cache cannot be written."""
    if t.text is None:
        return False
    entry = {"format": FORMAT, "key": k, "text": t.text, "output": t.output, "errors": t.errors}
    folder = directory()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".entry-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh)
            os.replace(tmp, folder / f"{k}.json")
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return False
    _evict(folder, f"{k}.json")
    return True


def limit_bytes() -> int:
    """The cache's size limit: ``$EINDERIV_CACHE_MB`` megabytes (a number), else :data:`DEFAULT_MB`."""
    try:
        mb = float(os.environ.get("EINDERIV_CACHE_MB", DEFAULT_MB))
    except ValueError:
        mb = DEFAULT_MB
    return int(max(mb, 0.0) * 1024 * 1024)


def _evict(folder: pathlib.Path, keep: str) -> None:
    """Remove the least recently used entries until the folder's entries fit :func:`limit_bytes`
    (the entry just stored, ``keep``, stays whatever its size)."""
    entries = []
    try:
        for path in folder.glob("*.json"):
            st = path.stat()
            entries.append((st.st_mtime_ns, path.name, st.st_size, path))
    except OSError:
        return
    total, budget = sum(e[2] for e in entries), limit_bytes()
    for _, name, size, path in sorted(entries):
        if total <= budget:
            break
        if name == keep:
            continue
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
