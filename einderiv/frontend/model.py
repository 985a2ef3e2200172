"""A model file → a :class:`~einderiv.frontend.network.Network`, or a layer :class:`Template`.

A file whose ``depth n`` stays symbolic — neither the file, ``dims`` nor ``depth``
gives it — is a *layer template* (docs/notation.md, "Layer templates"): a network
for every depth.  :func:`load` reads and parses the file once; a template keeps
the parsed module and checks it at each depth asked for (each depth once).

Example:
    >>> net = load("derivations/paper_mlp.ein")                       # doctest: +SKIP
    >>> tpl = load("derivations/deep_template.ein")                   # doctest: +SKIP
    >>> tpl.depth, tpl.instantiate(3).params[0].name                  # doctest: +SKIP
    ('n', Name('w(1)'))
    >>> load("derivations/deep_template.ein", depth={"n": 3})          # doctest: +SKIP
    Network(...)
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from . import syntax as S
from ..errors import Argument, Location, UsageError
from .check import check
from .network import Network
from .parse import parse, read

#: the depth a template is checked at when it is loaded, and the depth its general form is
#: read off at (:mod:`einderiv.analysis.template`): every case of the paper's Eq. 9 interior
REF_DEPTH = 8


class Template:
    """A network file with a symbolic depth: the parsed file, checked at any depth.

    ``path`` and ``text`` are the file's, ``depth`` the symbolic depth's name, ``dims``
    the sizes given when it was loaded (read-only), ``header`` the file's directives and
    title (:mod:`einderiv.frontend.header`).
    """

    def __init__(self, path: str, text: str, module: S.Module, depth: str, dims: Mapping[str, int]):
        self.path = path
        self.text = text
        self.module = module
        self.depth = depth
        self.dims = MappingProxyType(dict(dims))
        self.header = module.header
        self._networks: dict[int, Network] = {}

    @property
    def depth_loc(self) -> Location:
        """Where the file declares the symbolic depth (``depth T``)."""
        node = next(s for s in self.module.statements if isinstance(s, S.Depth) and s.item.name == self.depth)
        return Location(self.path, node.line, node.column)

    @property
    def sequence(self) -> bool:
        """Whether the depth counts the steps of a recurrence (weights shared over the steps), not
        layers (a weight per layer): no weight family grows with the depth."""
        net = self.instantiate(REF_DEPTH)
        return not any(t.is_param and any(lab > 1 for lab in t.name.ints) for t in net.tensors)

    def instantiate(self, n: int) -> Network:
        """The network at depth ``n`` (checked on first use, then kept: networks are immutable)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UsageError("{0}: a depth must be a positive integer",
                             arguments=(Argument("depth", self.depth, n),))
        if n not in self._networks:
            self._networks[n] = check(self.module, self.path, self.text, {**self.dims, self.depth: n})
        return self._networks[n]

    def __repr__(self) -> str:
        return f"Template({self.path!r}, depth={self.depth!r})"


def depths(module: S.Module) -> dict[str, int | None]:
    """``depth`` declarations of a parsed file: name → size (None while symbolic)."""
    return {s.item.name: s.item.size for s in module.statements if isinstance(s, S.Depth)}


def load(path: str, text: str | None = None, dims: Mapping[str, int] | None = None,
         depth: Mapping[str, int] | None = None) -> Network | Template:
    """Read, parse and check a model file: a :class:`Network`, or a :class:`Template` when
    its depth stays symbolic.

    ``text`` replaces the file's contents (``path`` still names it in messages);
    ``dims`` sets sizes by name (``{'n0': 4}``), ``depth`` the depth of a layer
    template (``{'n': 3}``: the network at that depth).  The arguments are only read.
    A template is checked at :data:`REF_DEPTH` before it is returned.
    """
    text = read(path) if text is None else text
    module = parse(text, path)
    declared = depths(module)
    given = dict(depth or {})
    for name, value in given.items():
        arg = (Argument("depth", name, value),)
        if name not in declared:
            have = ", ".join(declared) or "no depth"
            raise UsageError(f"{{0}} names no depth '{name}'; the file declares {have}", arguments=arg)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError("{0}: a depth must be a positive integer", arguments=arg)
    sizes = {**(dims or {}), **given}
    symbolic = [d for d, size in declared.items() if size is None and d not in sizes]
    if not symbolic:
        return check(module, path, text, sizes)
    if len(symbolic) > 1:
        raise UsageError(f"a template may have one symbolic depth; {', '.join(symbolic)} are all symbolic")
    template = Template(path, text, module, symbolic[0], sizes)
    template.instantiate(REF_DEPTH)  # bad input is reported now, not when the template is derived
    return template
