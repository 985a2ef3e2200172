"""How benchmarks/run.py times one call: process CPU time (a library may compute on its own
threads, as jax does), with what other threads go on doing after a call returned charged to
that call and never to the next one.  Standard library only (tests/test_bench_timing.py)."""
from __future__ import annotations

import time


def settle(quiet: float = 0.1, limit: float = 5.0) -> float:
    """Wait until no thread of this process but this one has run for ``quiet`` seconds; the CPU
    seconds the others spent meanwhile.  A library's worker threads may go on after its call has
    returned: after ``jax.hessian``'s jitted call at P = 9928, a jax thread burns about 0.4 s of
    CPU over the next second, in bursts (measured: 375–450 ms), which process CPU time would
    otherwise charge to whatever is timed next — einderiv's call, timed right after jax's in each
    round, read 502 ms of CPU in 254 ms of wall time on one thread."""
    other, still, end = 0.0, 0.0, time.perf_counter() + limit
    while still < quiet and time.perf_counter() < end:
        c, t, w = time.process_time(), time.thread_time(), time.perf_counter()
        time.sleep(0.01)
        spent = (time.process_time() - c) - (time.thread_time() - t)
        other += spent
        still = still + time.perf_counter() - w if spent < 1e-4 else 0.0
    return other


def best(fn, inner):
    """(best process CPU time, best wall time) of ``inner`` calls.  A call's CPU time is the
    process's, other threads included (jax computes on its own); when other threads ran during
    the call, the CPU they go on spending after it returns is the call's too (:func:`settle`),
    and it is never charged to the next call."""
    cpu = wall = float("inf")
    settle()  # (what ran before: not this contender's)
    for _ in range(inner):
        c0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
        fn()
        w1, c1 = time.perf_counter(), time.process_time()
        if (c1 - c0) - (time.thread_time() - t0) > 1e-4:  # other threads worked: wait for them
            c1 += settle()
        cpu, wall = min(cpu, c1 - c0), min(wall, w1 - w0)
    return cpu, wall
