"""The one toolkit for walking and rebuilding IR expressions.

Everything here is written against the structure each node declares
(:class:`~einderiv.ir.nodes.Expr`: ``CHILDREN``, ``INDICES``, ``binds()``), so no
function switches on node types:

* :func:`map_children`, :func:`map_indices` — rebuild a node;
* :func:`walk`, :func:`refs`, :func:`ref_names`, :func:`all_indices` — read it;
* :func:`rename` (capture-free substitution of indices; :func:`rename_touched` leaves untouched
  subtrees as they are), :func:`substitute`
  (of tensors), :func:`map_refs` (of tensor names);
* :func:`alpha_key` — *the* key for "equal up to renaming of indices", used by
  simplification, folding, layer templates and the code generator alike;
  :func:`match_indices` — the renaming itself, when there is one.

Example:
    >>> import sympy
    >>> n = sympy.Symbol("n")
    >>> i, j, k = Index("i", n), Index("j", n), Index("k", n)
    >>> a = Prod((Ref("W", (j, i)), Ref("x", (i,))), (j,))
    >>> b = Prod((Ref("W", (j, k)), Ref("x", (k,))), (j,))
    >>> alpha_key(a, (j,)) == alpha_key(b, (j,))
    True
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator, Sequence

from .names import TensorName
from .nodes import Expr, Index, Ref, fresh, unique


# ------------------------------------------------------------- structure
def _items(value) -> tuple:
    return value if isinstance(value, tuple) else () if value is None else (value,)


_REBUILDERS: dict[type, Callable] = {}


def _rebuilder(cls: type) -> Callable:
    """A function ``(e, on_index, on_child) -> e'`` specialised to one node class.

    It is generated once per class from the class's declared ``INDICES`` and
    ``CHILDREN`` (a field annotated ``tuple[...]`` holds several), because
    rebuilding is the innermost loop of renaming and substitution.
    """
    args = []
    for name, fld in cls.__dataclass_fields__.items():
        many = str(fld.type).startswith("tuple")
        f = "fi" if name in cls.INDICES else "fc" if name in cls.CHILDREN else None
        if f is None:
            args.append(f"e.{name}")
        elif many:
            args.append(f"tuple([{f}(x) for x in e.{name}]) if {f} else e.{name}")
        else:
            args.append(f"{f}(e.{name}) if {f} and e.{name} is not None else e.{name}")
    src = f"def rebuild(e, fi, fc):\n    return cls({', '.join(args)})\n"
    namespace = {"cls": cls}
    exec(compile(src, f"<rebuild {cls.__name__}>", "exec"), namespace)
    return namespace["rebuild"]


def _rebuild(e: Expr, on_index, on_child) -> Expr:
    """``e`` with ``on_index`` applied to its own indices and ``on_child`` to its children
    (either may be None: that part is kept)."""
    cls = type(e)
    fn = _REBUILDERS.get(cls)
    if fn is None:
        fn = _REBUILDERS[cls] = _rebuilder(cls)
    return fn(e, on_index, on_child)


def map_children(e: Expr, f: Callable[[Expr], Expr]) -> Expr:
    """``e`` rebuilt with ``f`` applied to each direct sub-expression."""
    return _rebuild(e, None, f) if e.CHILDREN else e


def own_indices(e: Expr) -> tuple[Index, ...]:
    """The index occurrences written on ``e`` itself (not inside its children)."""
    return tuple(ix for name in e.INDICES for ix in _items(getattr(e, name)))


def map_indices(e: Expr, f: Callable[[Index], Index]) -> Expr:
    """``e`` rebuilt with ``f`` applied to its own index occurrences (children untouched)."""
    return _rebuild(e, f, None) if e.INDICES else e


def walk(e: Expr) -> Iterator[Expr]:
    """Every node of ``e``, pre-order."""
    yield e
    for c in e.children():
        yield from walk(c)


# ------------------------------------------------------------- reading
def refs(e: Expr) -> tuple[Ref, ...]:
    """Every Ref in ``e`` (first-occurrence order, duplicates kept once)."""
    out: dict[Ref, None] = {}

    def go(x: Expr) -> None:
        if isinstance(x, Ref):
            out.setdefault(x, None)
        for c in x.children():
            go(c)

    go(e)
    return tuple(out)


def ref_names(e: Expr) -> tuple[TensorName, ...]:
    return unique(r.name for r in refs(e))  # type: ignore[arg-type]


def all_indices(e: Expr) -> tuple[Index, ...]:
    """Every index occurring anywhere in ``e`` (first-occurrence order, a node's own before its children's)."""
    seen: dict[Index, None] = {}
    for x in walk(e):
        for ix in own_indices(x):
            seen.setdefault(ix, None)
    return tuple(seen)


# ------------------------------------------------------------- rebuilding
def rename(e: Expr, mapping: dict[Index, Index]) -> Expr:
    """Substitute free indices by ``mapping``; bound indices get fresh names.

    Freshening every bound index on every substitution is what keeps dummies
    from being captured, whatever the mapping's targets are.
    """
    return _rename(e, mapping, rename)


def rename_touched(e: Expr, mapping: dict[Index, Index]) -> Expr:
    """:func:`rename`, except that a subtree in which no index of ``mapping`` is free is kept
    as it is, its dummies not freshened (nothing in it changes, so nothing can be captured).
    For a caller that freshens or canonically names the dummies itself next — the
    simplifier's expansion: most of a deep derivation's subtrees are untouched, and
    rebuilding them only to rename their dummies was a tenth of deriving.
    """
    if not mapping or mapping.keys().isdisjoint(e.free):
        return e
    return _rename(e, mapping, rename_touched)


def _rename(e: Expr, mapping: dict[Index, Index], again: Callable) -> Expr:
    """One node of :func:`rename` (``again``: how its children are renamed)."""
    if not mapping:
        return e
    if not e.INDICES and not e.CHILDREN:
        return e
    special = e.renamed(mapping, again)
    if special is not None:
        return special
    bound = e.binds()
    if bound:
        mapping = dict(mapping)
        for ix in bound:
            mapping[ix] = fresh(ix.dim, ix.name)
    get = mapping.get
    return _rebuild(e, lambda ix: get(ix, ix), lambda c: again(c, mapping))


def name_binders(e: Expr) -> Expr:
    """``e`` with every index bound inside it renamed in pre-order, deterministically:
    the k-th binder with hint ``j`` becomes ``_j_nk`` (the hint, which printers letter by,
    is kept).  Two expressions equal up to their dummies' names become equal."""
    count = itertools.count()

    def go(x: Expr, mapping: dict[Index, Index]) -> Expr:
        if not x.INDICES and not x.CHILDREN:
            return x
        bound = x.binds()
        if bound:
            mapping = dict(mapping)
            for ix in bound:
                hint = ix.name.lstrip("_").split("_")[0] or "i"
                mapping[ix] = Index(f"_{hint}_n{next(count)}", ix.dim)
        get = mapping.get
        return _rebuild(x, lambda ix: get(ix, ix), lambda c: go(c, mapping))

    return go(e, {})


def substitute(e: Expr, name: TensorName, by: Callable[[Ref], Expr]) -> Expr:
    """Replace every ``Ref`` named ``name`` by ``by(ref)``."""
    if isinstance(e, Ref):
        return by(e) if e.name == name else e
    return map_children(e, lambda c: substitute(c, name, by))


def map_refs(e: Expr, f: Callable[[TensorName], TensorName]) -> Expr:
    """``e`` with every tensor name passed through ``f`` (folding, templates: relabelling)."""
    if isinstance(e, Ref):
        return Ref(f(e.name), e.indices)
    return map_children(e, lambda c: map_refs(c, f))


# ------------------------------------------------------------- keys
def _fields(e: Expr) -> tuple:
    """What distinguishes a node beyond its children and indices (a name, a function, a value)."""
    skip = set(e.CHILDREN) | set(e.INDICES)
    return tuple(getattr(e, k) for k in e.__dataclass_fields__ if k not in skip)


def alpha_key(e: Expr, slots: Sequence[Index] = (), *, sizes: bool = True) -> tuple:
    """A key equal for expressions that differ only in the names of their indices.

    The indices in ``slots`` are identified by their position there (a definition's
    or block's own axes); every other index is numbered in order of first
    appearance, so renaming dummies — or any index not in ``slots`` — consistently
    leaves the key unchanged.  ``sizes=False`` also forgets what each index ranges
    over (a layer template's ``w(1)`` is ``n_in`` wide, ``w(2)`` is ``h``).
    """
    number: dict[Index, tuple] = {ix: ("s", k) for k, ix in enumerate(slots)}

    def ix(i: Index) -> tuple:
        tag = number.setdefault(i, ("b", len(number)))
        return tag + ((i.dim,) if sizes else ())

    def go(x: Expr) -> tuple:
        return (type(x).__name__, _fields(x), tuple(ix(i) for i in own_indices(x)),
                tuple(go(c) for c in x.children()))

    return go(e)


def shape_key(e: Expr) -> tuple:
    """What expressions equal up to index names share, whatever the indices (a bucket for
    :func:`match_indices`)."""
    return (type(e).__name__, _fields(e), len(own_indices(e)), tuple(shape_key(c) for c in e.children()))


def match_indices(pattern: Expr, e: Expr, m: dict[Index, Index] | None = None) -> dict[Index, Index] | None:
    """The one-to-one renaming of ``pattern``'s indices that turns it into ``e``, or None."""
    m = {} if m is None else m

    def bind(a: Index, b: Index) -> bool:
        if a in m:
            return m[a] == b
        if b in m.values() or a.dim != b.dim:
            return False
        m[a] = b
        return True

    if type(pattern) is not type(e) or _fields(pattern) != _fields(e):
        return None
    pi, ei = own_indices(pattern), own_indices(e)
    if len(pi) != len(ei) or not all(bind(a, b) for a, b in zip(pi, ei)):
        return None
    pc, ec = pattern.children(), e.children()
    if len(pc) != len(ec):
        return None
    for a, b in zip(pc, ec):
        if match_indices(a, b, m) is None:
            return None
    return m


def distinct(items: Iterable) -> tuple:
    """``items`` without repeats, first occurrence kept."""
    return tuple(dict.fromkeys(items))
