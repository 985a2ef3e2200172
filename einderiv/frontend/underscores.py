"""Underscores in tensor names (``W_out^j_i``, ``v_1^j``): which ``_`` belongs to the name.

The lexer reads a word such as ``W_out`` or ``W_i`` whole; this pass, run on the parsed module
before anything reads a name, decides where the name ends.  The rule (docs/notation.md, "Names
and indices"): **a word names the longest tensor its ``_``-parts spell that the file declares or
defines; every ``_``-part after that name is a lower index group** (one index per letter, as in
``W_ij``).  A word that names no tensor keeps the old reading: its first ``_`` opens lower
groups (``W_i^j`` is W with i, j), unless a part cannot be an index group (``v_1``: a digit),
when the word stays whole (and is then an undefined tensor, reported where it is used).

Where the name ends on a left side:

* a **declaration** with sizes: where the indices (the ``_``-parts' letters and the written
  groups) number the sizes — different splits give different counts, so exactly one can fit;
* a **definition**: a split is possible if every index of its left side is written somewhere on
  the right; of the possible ones, the longest name used elsewhere in the file, else the old
  reading (first ``_``) if it is possible, else the longest; if none is possible (``h_st(0)^j =
  0`` writes no index), the longest name used elsewhere, else the old reading.

Two tensor names where one is the other followed by ``_`` and letters (``W`` and ``W_out``) are an
error: ``W_out`` would also read as W with the lower indices o, u, t.  So is a name ``z_v`` beside a
tensor ``v``: ``z_v`` is how einderiv names v's pre-activation.
"""
from __future__ import annotations

import dataclasses
import re

from . import syntax as S
from ..errors import Location, NameError_


def _splits(word: str) -> list[tuple[str, list[str]]]:
    """(name, the ``_``-parts after it) for each place the name may end, shortest name first."""
    parts = word.split("_")
    return [("_".join(parts[:k]), parts[k:]) for k in range(1, len(parts) + 1)]


def _lower(node: S.Node, name: str, rest: list[str]) -> tuple[S.Idx, ...]:
    """The lower indices the parts ``rest`` after ``name`` make: one per letter."""
    out, col = [], (_column(node) if isinstance(node, (S.Decl, S.Assign)) else node.column) + len(name) + 1
    for part in rest:
        out += [S.Idx(node.line, col + k, ch, False) for k, ch in enumerate(part)]
        col += len(part) + 1
    return tuple(out)


def _column(st) -> int:
    """Where the name of a declaration or definition starts."""
    return st.name_column if isinstance(st, S.Decl) else st.column


def _letters(rest: list[str]) -> bool:
    return all(p.isalpha() for p in rest)


def _expr_indices(node) -> set[str]:
    """Every index that may be written in ``node``: in its groups, and the letters of every
    ``_``-part of a word (``x_i``: where that word's name ends is not decided yet)."""
    out = {t for n in S.walk(node) if isinstance(n, (S.Use, S.Call))
           for ix in n.indices for t in ([x for _, x in ix.terms] or [ix.name])}
    return out | {ch for n in S.walk(node) if isinstance(n, S.Use)
                  for part in n.name.split("_")[1:] if part.isalpha() for ch in part}


def _words(module: S.Module) -> set[str]:
    """Every word written where a tensor (or a family member, ``h_st(t-1)``) is used."""
    out = set()
    for st in module.statements:
        if isinstance(st, S.Assign):
            out |= {n.name for n in S.walk(st.expr) if isinstance(n, (S.Use, S.Call))}
    return out


def _head(st, used: set[str]) -> tuple[str, list[str]]:
    """Where the name on the left side of a declaration or definition ends."""
    options = [(n, r) for n, r in _splits(st.name) if _letters(r)]
    if isinstance(st, S.Decl):
        if st.shape is not None:
            fit = [(n, r) for n, r in options if sum(map(len, r)) + len(st.indices) == len(st.shape)]
            if fit:
                return fit[0]
        return options[0]
    written = _expr_indices(st.expr)
    fit = [(n, r) for n, r in options if set("".join(r)) | {ix.name for ix in st.indices} <= written]
    if not fit:  # h_st(0)^j = 0 writes no index: the name used elsewhere (h_st(t-1)^i), else the old reading
        return next(((n, r) for n, r in reversed(options) if n in used), options[0])
    for n, r in reversed(fit):
        if n in used:
            return n, r
    return fit[0] if fit[0] == options[0] else fit[-1]


def _use(node: S.Use, known: set[str], dims: set[str]) -> S.Use:
    if "_" not in node.name:
        return node
    splits = _splits(node.name)
    for name, rest in reversed(splits):
        if name in known and _letters(rest):
            return dataclasses.replace(node, name=name, indices=_lower(node, name, rest) + node.indices)
    if node.name in dims and not node.indices:  # a size written as a number: n_hidden
        return node
    name, rest = splits[0]
    if not _letters(rest):
        return node
    return dataclasses.replace(node, name=name, indices=_lower(node, name, rest) + node.indices)


def _rebuild(node, f):
    """``node`` with ``f`` applied to every :class:`S.Use` below it."""
    if isinstance(node, S.Use):
        return f(node)
    changes = {}
    for field in ("left", "right", "operand"):
        child = getattr(node, field, None)
        if child is not None:
            changes[field] = _rebuild(child, f)
    if isinstance(node, S.Call):
        changes["args"] = tuple(_rebuild(a, f) for a in node.args)
    return dataclasses.replace(node, **changes) if changes else node


def resolve(module: S.Module, path: str) -> S.Module:
    """``module`` with every tensor name ending where the rule above says."""
    used = _words(module)
    dims = {item.name for st in module.statements if isinstance(st, S.Dims) for item in st.items}
    heads: dict[int, tuple[str, list[str]]] = {}
    first: dict[str, S.Node] = {}
    for k, st in enumerate(module.statements):
        if isinstance(st, (S.Decl, S.Assign)) and "_" in st.name:
            heads[k] = _head(st, used)
        if isinstance(st, (S.Decl, S.Assign)):
            name = heads[k][0] if k in heads else st.name
            first.setdefault(name, st)
    for name, st in sorted(first.items(), key=lambda kv: (kv[1].line, kv[1].column)):
        for shorter, rest in _splits(name)[:-1]:
            if shorter in first and _letters(rest):
                later = st if (st.line, st.column) > (first[shorter].line, first[shorter].column) else first[shorter]
                letters = ", ".join("".join(rest))
                raise NameError_(f"tensor names '{shorter}' and '{name}' clash: {name} also reads as {shorter} with "
                                 f"the lower indices {letters}; rename one (a name part after '_' that is not "
                                 "an index, such as a digit, does not clash: v_1)",
                                 Location(path, later.line, _column(later)))
    for name, st in first.items():
        m = re.fullmatch(r"z\d*_(.+)", name)
        if m and m.group(1) in first:
            raise NameError_(f"'{name}' is the name einderiv gives the pre-activation of {m.group(1)} (the argument "
                             f"of its function, printed {name}); choose another tensor name",
                             Location(path, st.line, _column(st)))
    known = set(first)
    out = []
    for k, st in enumerate(module.statements):
        if k in heads:
            name, rest = heads[k]
            st = dataclasses.replace(st, name=name, indices=_lower(st, name, rest) + st.indices)
        if isinstance(st, S.Assign):
            st = dataclasses.replace(st, expr=_rebuild(st.expr, lambda u: _use(u, known, dims)))
        out.append(st)
    return dataclasses.replace(module, statements=tuple(out))
