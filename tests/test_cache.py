"""The ``einderiv`` command's cache (einderiv.cache, einderiv.launch): a kept answer is the
uncached one byte for byte, comes without SymPy, and is never served for another file
content, another command line or with ``--no-cache``."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from einderiv import __version__, cache, launch

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER = (ROOT / "derivations" / "paper_mlp.ein").read_text(encoding="utf-8")
RISKY = """dims n = 2
function g(z) = exp(z) - z
input x^i : n
label y^i : n
weight W^j_i : n, n
p^j = g(W^j_i x^i)
f = squared_error(p, y)
"""
#: runs the einderiv command in-process in a fresh interpreter, then says whether SymPy was imported
PROBE = ("import sys, einderiv.launch as l\n"
         "code = l.main(sys.argv[1:])\n"
         "sys.stdout.flush()\n"
         "print('SYMPY' if 'sympy' in sys.modules else 'NO-SYMPY', file=sys.stderr)\n"
         "sys.exit(code)\n")


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EINDERIV_CACHE", str(tmp_path / "cache"))
    (tmp_path / "net.ein").write_text(PAPER, encoding="utf-8")
    return tmp_path


def einderiv(*args):
    """The einderiv command (cached): (exit code, stdout bytes, stderr lines, SymPy imported)."""
    p = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True)
    err = p.stderr.decode().splitlines()
    return p.returncode, p.stdout, err[:-1], err[-1] == "SYMPY"


def uncached(*args):
    """The command line without any cache (``python -m einderiv.cli``)."""
    p = subprocess.run([sys.executable, "-m", "einderiv.cli", *args], capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode().splitlines()


def command_key(argv, work) -> str:
    """The key the einderiv command computes for ``argv`` on work/net.ein, computed by a fresh
    interpreter in ``work`` as the command is: this test process may have imported einderiv from
    the source tree (the repository root is on its path), the command the installed package,
    whose files stamp the key."""
    code = ("import sys, pathlib; from einderiv import __version__, cache; "
            "print(cache.key(__version__, sys.argv[1:], pathlib.Path('net.ein').read_bytes()))")
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True,
                          cwd=work).stdout.strip()


def entries(work) -> list[pathlib.Path]:
    folder = work / "cache"
    return sorted(folder.glob("*.json")) if folder.exists() else []


def test_a_kept_answer_is_the_uncached_one_byte_for_byte_without_sympy(work):
    code, first, _, loaded = einderiv("codegen", "net.ein")
    assert code == 0 and loaded and len(entries(work)) == 1  # a miss: derived, then kept
    code, again, _, loaded = einderiv("codegen", "net.ein")
    assert code == 0 and not loaded  # answered from the cache: no SymPy
    assert again == first == uncached("codegen", "net.ein")[1]


@pytest.mark.slow  # fresh interpreters, about 2.5 s of CPU: .ci/run runs it
def test_output_file_and_warnings_are_replayed(work):
    (work / "risky.ein").write_text(RISKY, encoding="utf-8")
    code, _, warned, _ = einderiv("codegen", "risky.ein", "-o", "out.py")
    first = (work / "out.py").read_bytes()
    (work / "out.py").unlink()
    code2, _, warned2, loaded = einderiv("codegen", "risky.ein", "-o", "out.py")
    assert code == code2 == 0 and not loaded
    assert (work / "out.py").read_bytes() == first
    assert warned2 == warned and len(warned) == 1 and "warning: function 'g'" in warned[0]
    assert warned == uncached("codegen", "risky.ein", "-o", "other.py")[2]


def test_another_file_content_or_command_line_is_not_answered_from_the_cache(work):
    einderiv("derive", "net.ein", "--order", "1")
    (work / "net.ein").write_text(PAPER.replace("relu(W1", "sigmoid(W1"), encoding="utf-8")
    code, out, _, loaded = einderiv("derive", "net.ein", "--order", "1")
    assert code == 0 and loaded and out == uncached("derive", "net.ein", "--order", "1")[1]
    assert b"sigmoid" in out
    code, out, _, loaded = einderiv("derive", "net.ein", "--order", "2")  # another option: derived
    assert code == 0 and loaded and b"\xe2\x88\x82\xc2\xb2f" in out  # ∂²f
    assert len(entries(work)) == 3


def test_no_cache_neither_reads_nor_keeps(work):
    argv = ["structure", "net.ein"]
    k = command_key(argv, work)
    forged = cache.Transcript()
    forged.wrote("FORGED", None)
    assert cache.store(k, forged)
    assert einderiv(*argv)[1] == b"FORGED\n"  # the lookup reads the entry of exactly this key
    code, out, _, loaded = einderiv(*argv, "--no-cache")
    assert code == 0 and loaded and out == uncached(*argv)[1] and b"FORGED" not in out
    assert len(entries(work)) == 1  # nothing kept for the --no-cache run


# each case starts fresh interpreters (about 2.5 s of CPU): the first in the default run, all in .ci/run
@pytest.mark.parametrize("garbage", [""] + [pytest.param(g, marks=pytest.mark.slow)
                                            for g in ("{not json", "[]", '{"format": 1}', '{"format": 1, "key": "x"}')])
def test_a_corrupt_entry_is_ignored_and_replaced(work, garbage):
    argv = ["structure", "net.ein", "--order", "1"]
    k = command_key(argv, work)
    (work / "cache").mkdir()
    (work / "cache" / f"{k}.json").write_text(garbage, encoding="utf-8")
    assert cache.load(k) is None
    code, out, _, loaded = einderiv(*argv)
    assert code == 0 and loaded and out == uncached(*argv)[1]
    assert cache.load(k) is not None and cache.load(k).stdout().encode() == out


def test_an_entry_of_another_key_is_not_served(work):
    argv = ["structure", "net.ein"]
    k = command_key(argv, work)
    other = cache.Transcript()
    other.wrote("OTHER", None)
    cache.store("0" * 64, other)
    (work / "cache" / f"{k}.json").write_bytes((work / "cache" / ("0" * 64 + ".json")).read_bytes())
    assert cache.load(k) is None  # the entry says it was kept under another key


@pytest.mark.slow  # fresh interpreters, about 2.5 s of CPU: .ci/run runs it
def test_check_and_failures_are_never_kept(work):
    assert einderiv("check", "net.ein")[0] == 0
    (work / "bad.ein").write_text("dims n = 2\ninput x^i : n\nf = x^i +\n", encoding="utf-8")
    code, _, err, _ = einderiv("derive", "bad.ein")
    assert code == 2 and err and err[0].startswith("bad.ein:")
    assert entries(work) == []


def test_the_key_covers_version_command_line_content_and_limits(monkeypatch):
    base = cache.key("1", ["derive", "a.ein"], b"x")
    assert base == cache.key("1", ["derive", "a.ein"], b"x")
    assert len({base, cache.key("2", ["derive", "a.ein"], b"x"), cache.key("1", ["latex", "a.ein"], b"x"),
                cache.key("1", ["derive", "a.ein"], b"y")}) == 4
    monkeypatch.setenv("EINDERIV_MAX_STEPS", "5")
    assert cache.key("1", ["derive", "a.ein"], b"x") != base


def test_what_the_cache_may_answer():
    assert launch.cacheable(["codegen", "a.ein", "--order", "2", "--dim=n=3", "-o", "x.py"]) == "a.ein"
    assert launch.cacheable(["--traceback", "derive", "a.ein"]) == "a.ein"
    for argv in (["check", "a.ein"], ["derive", "a.ein", "--no-cache"], ["derive", "--help"], ["derive"],
                 ["derive", "a.ein", "--ord", "2"], ["derive", "a.ein", "b.ein"], ["derive", "a.ein", "--order"],
                 ["--version"], []):
        assert launch.cacheable(argv) is None, argv


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("EINDERIV_CACHE", str(tmp_path / "a"))
    assert cache.directory() == tmp_path / "a"
    monkeypatch.delenv("EINDERIV_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache.directory() == tmp_path / "x" / "einderiv"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert cache.directory() == tmp_path / "h" / ".cache" / "einderiv"


def test_the_least_recently_used_entries_go_past_the_size_limit(monkeypatch, tmp_path):
    """In process (store/load): five entries of about 400 kB each under a 1 MB limit keep the newest
    two; an entry read (a hit) counts as used; a bad limit is the default."""
    import os

    monkeypatch.setenv("EINDERIV_CACHE", str(tmp_path))
    monkeypatch.setenv("EINDERIV_CACHE_MB", "1")
    keys = [f"{i:064x}" for i in range(5)]
    for i, k in enumerate(keys[:3]):
        t = cache.Transcript()
        t.wrote("x" * 400_000, None)
        assert cache.store(k, t)
        os.utime(tmp_path / f"{k}.json", ns=(10**18 + i * 10**9,) * 2)  # stored one second apart
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == keys[1:3]  # 1.2 MB: the oldest went
    assert cache.load(keys[1]).text == "x" * 400_000  # a hit: keys[1] is now the most recently used
    t = cache.Transcript()
    t.wrote("y" * 400_000, None)
    assert cache.store(keys[3], t)
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == [keys[1], keys[3]]  # keys[2] was least recent
    monkeypatch.setenv("EINDERIV_CACHE_MB", "0")
    assert cache.store(keys[4], t) and [p.stem for p in tmp_path.glob("*.json")] == [keys[4]]  # kept alone
    monkeypatch.setenv("EINDERIV_CACHE_MB", "lots")
    assert cache.limit_bytes() == cache.DEFAULT_MB * 1024 * 1024


@pytest.mark.slow  # fresh interpreters, about 2.5 s of CPU: .ci/run runs it
def test_an_unwritable_cache_is_skipped(work):
    (work / "cache").write_text("a file, not a folder", encoding="utf-8")
    code, out, _, _ = einderiv("structure", "net.ein", "--order", "1")
    assert code == 0 and out == uncached("structure", "net.ein", "--order", "1")[1]


def test_version_without_the_pipeline():
    p = subprocess.run([sys.executable, "-c", PROBE, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == f"einderiv {__version__}\n" and p.stderr.strip() == "NO-SYMPY"


@pytest.mark.slow  # fresh interpreters, about 2.5 s of CPU: .ci/run runs it
def test_a_kept_answer_that_cannot_be_written_is_reported_by_the_command_line(work):
    assert einderiv("latex", "net.ein", "-o", "out.tex")[0] == 0
    (work / "out.tex").unlink()
    (work / "out.tex").mkdir()  # the kept answer's destination is now a folder
    code, _, err, loaded = einderiv("latex", "net.ein", "-o", "out.tex")
    assert code == 2 and loaded and err == ["einderiv: error: -o out.tex: is a directory; expected a file name"]
