"""Liveness of local arrays in a lowered straight-line function: each one deleted after its last read.

A function written by :mod:`einderiv.emit.straight` (:attr:`~einderiv.emit.kernel.Frame.LOCALS`)
computes its forward pass, its back-propagated quantities and its blocks into local variables.
Without deletions every one of them stays alive until the function returns, and the peak memory is
every activation and every adjoint at once.  :func:`free_dead` reads the lowered array statements
— which variables each statement writes and reads — and puts a :class:`~einderiv.emit.kernel.Free`
(``del``) right after the last statement that reads (or writes) each computed array.  Loads of
inputs (``x = data["x"]``) and the batch size are not deleted (nothing would be freed), nor is
anything the function returns.  A body with a loop is left as it is.  An array computed under a test
(:class:`~einderiv.emit.kernel.When`: only some requested Hessian blocks read it) is deleted under the
same test: inside it when nothing after it reads the array, else after its last reader.
"""
from __future__ import annotations

from .kernel import Assign, Contraction, Elementwise, Frame, Free, Function, Loop, Module, Python, Return, When
from .kernel_arrays import BatchSize, Item, Num, Var


def free_dead(module: Module) -> Module:
    """``module`` with a :class:`Free` after each local array's last use in its straight-line functions."""
    items = tuple(free(it) if isinstance(it, Function) and it.frame is Frame.LOCALS else it for it in module.items)
    return Module(module.header, module.constants, items)


def variables(x, out: list) -> list:
    """The names of the variables an array expression or statement mentions, in order."""
    if isinstance(x, Var):
        out.append(x.name)
    elif isinstance(x, tuple):
        for y in x:
            variables(y, out)
    elif hasattr(x, "__dataclass_fields__"):
        for name in x.__dataclass_fields__:
            variables(getattr(x, name), out)
    return out


def writes(st) -> list:
    """The arrays a statement computes (not a load of an input, not the batch size)."""
    if isinstance(st, When):
        return [v for inner in st.body for v in writes(inner)]
    if isinstance(st, Contraction):
        return [step.target for step in st.steps if step.target is not None]
    if isinstance(st, Elementwise):
        return [st.target]
    if isinstance(st, Assign) and isinstance(st.target, Var) and not isinstance(st.value, (Item, BatchSize, Num)):
        return [st.target.name]
    return []


def stores(st) -> bool:
    """Whether ``st`` only stores values into a dict (``hess[("U", "U")] = hess_U__U``): what it
    reads lives on in the dict, so deleting the name after it frees nothing."""
    if isinstance(st, When):
        return all(stores(inner) for inner in st.body)
    return isinstance(st, Assign) and isinstance(st.target, Item)


def reads(st) -> list:
    if isinstance(st, Assign) and isinstance(st.target, Var):
        return variables(st.value, [])
    return variables(st, [])


def lifetimes(body) -> dict:
    """Each computed array -> (the statement that first writes it, the last that reads or writes it);
    an array the function returns lives to the end (the index of the :class:`Return`)."""
    born, end = {}, {}
    for k, st in enumerate(body):
        for v in reads(st):
            end[v] = k
        for v in writes(st):
            born.setdefault(v, k)
            end[v] = max(end.get(v, k), k)
    return {v: (k, end[v]) for v, k in born.items()}


def free(fn: Function) -> Function:
    """``fn`` with ``del`` after the last use of each array it computes (straight-line bodies only)."""
    body = fn.body
    if any(isinstance(st, (Loop, Python)) for st in body):
        return fn
    last = len(body) - 1
    ending: dict = {}
    for v, (born, end) in sorted(lifetimes(body).items(), key=lambda item: item[1]):
        if not (end == last and isinstance(body[last], Return)) and not stores(body[end]):
            ending.setdefault(end, []).append(v)
    test = {v: k for k, st in enumerate(body) if isinstance(st, When) for v in writes(st)}  # born under a test
    out = []
    for k, st in enumerate(body):
        dead = ending.get(k, [])
        inside = [v for v in dead if test.get(v) == k]
        if inside:
            st = When(st.keys, st.of, st.body + (Free(tuple(inside)),))
        out.append(st)
        if [v for v in dead if v not in test]:
            out.append(Free(tuple(v for v in dead if v not in test)))
        for b in sorted({test[v] for v in dead if v in test and test[v] != k}):
            out.append(When(body[b].keys, body[b].of, (Free(tuple(v for v in dead if test.get(v) == b)),)))
    return Function(fn.name, fn.args, fn.doc, tuple(out), fn.prologue, fn.frame)
