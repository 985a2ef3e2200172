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

:func:`drop_unread` runs first, on every function: a load (``z = t["z"]``, ``B = x.shape[0]``) that no
later statement reads is not written — lowering loads what a formula names, and a printed formula
may not read it after all (tanh' is written from the activation, 1 − v², not from its argument).
"""
from __future__ import annotations

import re


from ..ir import Name, Quantity, Sym
from .kernel import (Assign, Comment, Contraction, Elementwise, Frame, Free, Function, Loop, Module, Python, Return,
                     When)
from .kernel_arrays import BatchSize, Code, Item, Num, Var


def free_dead(module: Module) -> Module:
    """``module`` with a :class:`Free` after each local array's last use in its straight-line functions."""
    items = tuple(free(it) if isinstance(it, Function) and it.frame is Frame.LOCALS else it for it in module.items)
    return Module(module.header, module.constants, items)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def drop_unread(module: Module) -> Module:
    """``module`` with every load that no later statement of its function reads left out."""
    items = tuple(_drop_loads(it) if isinstance(it, Function) else it for it in module.items)
    return Module(module.header, module.constants, items)


def _is_load(st) -> bool:
    return isinstance(st, Assign) and isinstance(st.target, Var) and isinstance(st.value, (Item, BatchSize))


def _drop_loads(fn: Function) -> Function:
    statements = fn.prologue + fn.body
    if any(isinstance(st, Loop) for st in statements) or _loads_under_tests(statements):
        body, read = _prune(fn.body, set())
        prologue, _ = _prune(fn.prologue, read)
    else:
        dead = _dead_loads(statements)
        n = len(fn.prologue)
        prologue = tuple(st for k, st in enumerate(fn.prologue) if k not in dead)
        body = tuple(st for k, st in enumerate(fn.body, n) if k not in dead)
    if (prologue, body) == (fn.prologue, fn.body):
        return fn
    return Function(fn.name, fn.args, fn.doc, body or (Python("pass"),), prologue, fn.frame)


def _loads_under_tests(statements) -> bool:
    """Whether a load sits in the body of a test (it may not run: what it loads again is not dead)."""
    return any(isinstance(st, When) and any(_is_load(x) or _loads_under_tests((x,)) for x in st.body)
               for st in statements)


def _dead_loads(statements: tuple) -> set:
    """The positions of the loads nothing after them reads, in a body without loops and without
    loads under tests (a test's body is read as part of the test: the per-block Hessian's): one
    walk forward that stops once every load so far is read and no load is left (a straight-line
    function's loads are its first lines: the walk rarely reaches its end)."""
    last_load = max((k for k, st in enumerate(statements) if _is_load(st)), default=-1)
    waiting: dict = {}  # a loaded name not read since -> where it was loaded
    dead: set = set()
    for k, st in enumerate(statements):
        if k > last_load and not waiting:
            break
        names: set = set()
        _mentions(st.value if _is_load(st) else st, names)
        for name in names & waiting.keys():
            del waiting[name]
        if _is_load(st):
            if st.target.name in waiting:  # loaded again before any read: the first load is dead
                dead.add(waiting[st.target.name])
            waiting[st.target.name] = k
    return dead | set(waiting.values())


def _prune(statements: tuple, after: set) -> tuple:
    """``(statements without the loads that nothing reads, what they and ``after`` read)``; ``after``:
    what the statements that follow them read.  A loop's body is pruned knowing that its next
    iteration reads whatever any of its statements reads; a test's body as statements in line."""
    names, out = set(after), []
    for st in reversed(statements):
        if _is_load(st) and st.target.name not in names:
            continue
        if isinstance(st, Loop):
            again: set = set()
            for inner in st.body:
                _mentions(inner.value if _is_load(inner) else inner, again)
            body, _ = _prune(st.body, names | again)
            st = Loop(st.var, st.over, body or (Python("pass"),))
        elif isinstance(st, When):  # a test: its body runs at most once, here
            body, _ = _prune(st.body, names)
            st = When(st.keys, st.of, body or (Python("pass"),))
        _mentions(st.value if _is_load(st) else st, names)
        out.append(st)
    return tuple(reversed(out)), names


def _mentions(x, names: set) -> None:
    """Collect what ``x`` may read: variable names, the symbols of labels (a loop's bounds, a key's
    ``h(T-1)``) and the words of raw code.  (An elementwise statement's SymPy body reads only its
    placeholders; the operands they stand for are walked as its other fields.)"""
    stack = [x]
    while stack:
        x = stack.pop()
        kind = _KIND.get(type(x))
        if kind is None:
            kind = _KIND[type(x)] = _kind(type(x))
        if kind == "var":
            names.add(x.name)
        elif kind == "items":
            stack.extend(x)
        elif kind == "text":
            names.update(_WORD.findall(x.text))
        elif kind == "sym":  # a label in the depth or a loop variable: h(T-1), f"h({k})"
            names.add(x.symbol)
        elif kind != "skip":
            stack.extend(getattr(x, field) for field in kind)


def _kind(cls) -> str | tuple:
    """How :func:`_mentions` walks an instance of ``cls``: a tag, or the fields to walk."""
    if issubclass(cls, Var):
        return "var"
    if issubclass(cls, (tuple, list)):
        return "items"
    if issubclass(cls, (Python, Code)):
        return "text"
    if issubclass(cls, Sym):
        return "sym"
    if issubclass(cls, (Name, Quantity)):
        return tuple(cls._FIELDS)
    if issubclass(cls, Comment) or not hasattr(cls, "__dataclass_fields__"):
        return "skip"  # a comment's text; numbers, strings, SymPy bodies, None
    return tuple(cls.__dataclass_fields__)


#: each class's kind for :func:`_mentions`, found once
_KIND: dict = {}


def variables(x, out: list) -> list:
    """The names of the variables an array expression or statement mentions, in order (depth
    first, fields in their order; what is not a node, a tuple or a variable is not walked)."""
    stack = [x]
    while stack:
        x = stack.pop()
        kind = _VARIABLE_KIND.get(type(x), _UNSEEN)
        if kind is _UNSEEN:
            kind = _VARIABLE_KIND[type(x)] = _variable_kind(type(x))
        if kind is _VAR:
            out.append(x.name)
        elif kind is _ITEMS:
            stack.extend(reversed(x))
        elif kind is not None:
            stack.extend(reversed([getattr(x, field) for field in kind]))
    return out


_UNSEEN, _VAR, _ITEMS = object(), object(), object()
#: each class's kind for :func:`variables`, found once: _VAR, _ITEMS, its fields, or None (not walked)
_VARIABLE_KIND: dict = {}


def _variable_kind(cls):
    if issubclass(cls, Var):
        return _VAR
    if issubclass(cls, tuple):
        return _ITEMS
    fields = getattr(cls, "__dataclass_fields__", None)
    return tuple(fields) if fields is not None else None


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
            st = When(st.keys, st.of, _free_within(st.body, inside))
        out.append(st)
        if [v for v in dead if v not in test]:
            out.append(Free(tuple(v for v in dead if v not in test)))
        for b in sorted({test[v] for v in dead if v in test and test[v] != k}):
            out.append(When(body[b].keys, body[b].of, (Free(tuple(v for v in dead if test.get(v) == b)),)))
    return Function(fn.name, fn.args, fn.doc, tuple(out), fn.prologue, fn.frame)


def _free_within(body: tuple, names: list) -> tuple:
    """``body`` (a test's) with a ``del`` of each of ``names`` (arrays born and dead in it) after the
    statement of ``body`` that reads or writes it last — not at the end of the test, where every
    intermediate of a chain (a block's second-order adjoints) would still be alive together."""
    life, last = lifetimes(body), len(body) - 1
    ending: dict = {}
    for v in names:
        ending.setdefault(life[v][1] if v in life else last, []).append(v)
    out: list = []
    for k, st in enumerate(body):
        out.append(st)
        if k in ending:
            out.append(Free(tuple(ending[k])))
    return tuple(out)

