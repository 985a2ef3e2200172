"""The cyclic garbage collector, paused while a pass builds many small IR objects.

Deriving and generating a deep network allocates millions of small, immutable, mostly
acyclic objects (nodes, index tuples, terms) and frees most of them at once by reference
counting.  CPython's cyclic collector runs after every 700 net allocations and, in its
oldest generation, walks every live object: on a 32-layer order-2 derivation it took about
a quarter of the CPU time, and a share that grows with the heap.  :func:`paused` turns it off
for the length of such a pass (the little cyclic garbage made meanwhile — a closure that
refers to itself — is collected after it, at the next full collection).

When it ends, everything the pass allocated is still in the youngest generation, and the
first collection after :func:`gc.enable` would walk all of it (0.37 s after a 32-layer
order-2 derivation, another pass over the same heap).  So the pass's survivors are moved to
the oldest generation first, as a full collection would leave them, without walking them:
:func:`gc.freeze` then :func:`gc.unfreeze` (two list splices).  Not when something else has
frozen objects (a server before it forks): unfreezing would release those too.

Example:
    >>> with paused():
    ...     pass
"""
from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

__all__ = ["paused"]

_lock = threading.Lock()
_depth = 0  # passes running now (nested, or in several threads)
_was_enabled = False  # whether the collector ran before the first of them


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Pause cyclic garbage collection inside the block; restore it as it was after the last
    of the blocks running at once (nested or in other threads) ends."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                if not gc.get_freeze_count():
                    gc.freeze()  # every tracked object to the permanent generation,
                    gc.unfreeze()  # and from there to the oldest one
                gc.enable()
