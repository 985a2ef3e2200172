"""einderiv.ir.heap.paused: the cyclic collector off inside, restored after, and what the pass
allocated handed to the oldest generation without a collection walking it."""
import gc
import os
import pathlib
import subprocess
import sys

from einderiv.ir.heap import paused


class _Node:
    def __init__(self):
        self.me = self  # a cycle: only the cyclic collector frees it


def test_paused_turns_the_collector_off_and_restores_it():
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pass still runs
    assert gc.isenabled()


def test_paused_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_survivors_go_to_the_oldest_generation_and_cycles_are_still_collected():
    gc.collect()
    with paused():
        kept = [[k] for k in range(50_000)]
        for _ in range(100):
            _Node()
        assert gc.get_count()[0] > 50_000  # all of it waits in the youngest generation
    assert gc.get_count()[0] < 1000  # moved on, not walked by the next young collection
    assert gc.get_freeze_count() == 0  # nothing left frozen
    assert gc.collect() >= 100  # the cycles made inside are garbage for a full collection
    del kept


def test_objects_someone_else_froze_stay_frozen():
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused():
            [[k] for k in range(1000)]
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_the_command_leaves_its_heap_frozen_for_the_exit(tmp_path):
    """``einderiv`` as a process (launch.main without argv) freezes what is alive at its end, so
    the interpreter's exit does not walk it in one last full collection; called with argv (a
    library's caller goes on living) it leaves the collector as it was."""
    paper = pathlib.Path(__file__).resolve().parents[1] / "derivations" / "paper_mlp.ein"
    probe = ("import gc, sys, einderiv.launch as l\n"
             "sys.argv = ['einderiv', *sys.argv[1:]]\n"
             "lib = l.main(sys.argv[1:]), gc.get_freeze_count(), gc.isenabled()\n"
             "code = l.main()\n"
             "sys.stdout.flush()\n"
             "print(lib, code, gc.get_freeze_count() > 0, file=sys.stderr)\n")
    env = dict(os.environ, EINDERIV_CACHE=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-c", probe, "codegen", str(paper), "--no-cache"], capture_output=True,
                       text=True, env=env, check=True)
    assert p.stderr.strip() == "(0, 0, True) 0 True"
    assert p.stdout.count("def hessian(") == 2  # both commands wrote the whole module
