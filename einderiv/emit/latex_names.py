"""LaTeX names: how a tensor, a label and an intermediate are spelled in the paper's notation.

The ``tex_*`` helpers turn a user's names into LaTeX: ``W1`` → ``W^{(1)}`` (the
bracketed label is the paper's layer number ``w^{(k),j}_i``), ``h(t-1)`` →
``h^{(t-1)}``, ``WQ`` → ``\\mathrm{WQ}``; :func:`escape` makes any identifier or
phrase safe for LaTeX.  Every user name is an identifier, so the output is ASCII.

:class:`Naming` decides how the intermediates are named, in one of two modes:

* ``"compact"`` (the default of ``einderiv latex``) reads like the paper.  When
  the activations that have a named argument (the *layers*) are one family
  ``v1, v2, …`` or ``v(k)``, a layer is its label: its argument is ``z^{(1)}``,
  its Jacobian ``γ^{(1)}`` (Eq. 1), and ``η^{(2,1)}`` = ∂v^{(2)}/∂z^{(1)}
  (Eq. 4) — a label in the first place is the layer ``v^{(2)}``, in the second
  the argument ``z^{(1)}``; any other name in a bracket is written short
  (``η^{(p,1)}``, ``η^{(z_{2},1)}`` = ∂z^{(2)}/∂z^{(1)}, ``η^{(p,v_{2})}`` = ∂p/∂v^{(2)}).
  Without one such family the names are short but explicit (``γ^{(\\mathrm{zg})}``,
  ``η^{(p,z_{\\mathrm{zg}})}``).  Where two names would be spelled alike the
  whole document falls back to ``"nested"``.
* ``"nested"`` spells every name out: ``z^{(v_{1})}``, ``η^{(v_{2},z_{v_{1}})}``.

Example::

    >>> tex_tensor("W1"), tex_tensor("z_v1"), tex_compact("v2")
    (('W', '1'), ('z', 'v_{1}'), 'v_{2}')
"""
from __future__ import annotations

import re
from typing import Iterable

from ..analysis.roles import Context
from ..ir import ANY, Name, Quantity, TensorName, names_in

GREEK = frozenset("""alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho
sigma tau upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega""".split())
#: functions LaTeX already typesets upright
TEX_FUNCTIONS = frozenset("exp log sin cos tan sinh cosh tanh".split())
#: the step symbols of a recurrence's general form (:func:`einderiv.analysis.labels.sequence_labels`)
STEP_TEX = {"τ": r"\tau", "ρ": r"\rho", "κ": r"\kappa"}
#: the naming modes (see :class:`Naming`)
NAMINGS = ("compact", "nested")
#: characters of free text (a file's title) written in LaTeX
TEXT_CHARS = {"§": r"\S{}", "–": "--", "—": "---", "’": "'", "‘": "`", "“": "``", "”": "''", "×": r"$\times$",
              "≤": r"$\leq$", "≥": r"$\geq$", "…": r"\dots{}",
              # ASCII that OT1 fonts set as other glyphs (¡ ¿ —); math works in roman and typewriter
              "<": r"$<$", ">": r"$>$", "|": r"$|$"}


# ------------------------------------------------------------ names
def escape(text: str) -> str:
    r"""Escape the characters of an identifier (or a plain phrase) for LaTeX; the output is ASCII
    (a character LaTeX has no ASCII spelling for here becomes ``?``, a control character a space).

    Free text from a file (its title, its path) goes through here, so every character TeX gives
    a meaning is escaped: ``\input``, ``\write18``, ``\catcode`` are text, braces balance.

    Example:
        >>> print(escape(r"\write18{rm} 100% #1 ~a^b"))
        \textbackslash{}write18\{rm\} 100\% \#1 \~{}a\^{}b
    """
    out = []
    for ch in text:
        if ch in "_&%$#{}":
            out.append("\\" + ch)
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        elif ch in "^~":
            out.append(r"\^{}" if ch == "^" else r"\~{}")
        elif ch in TEXT_CHARS:
            out.append(TEXT_CHARS[ch])
        elif ch.isascii() and ch.isprintable():
            out.append(ch)
        elif ch.isspace() or ch.isascii():
            out.append(" ")
        else:
            out.append(TEXT_CHARS.get(ch, "?"))
    return "".join(out)


def tex_word(word: str) -> str:
    """One identifier fragment without ``_``: a letter, a Greek name, or upright text."""
    if word in GREEK:
        return "\\" + word
    if len(word) == 1:
        return word
    return r"\mathrm{" + escape(word) + "}"


def tex_plain(name: str, compact: bool) -> tuple[str, str | None]:
    """A user's name without labels: ``W1`` → (W, 1), ``z_v1`` → (z, v_{1}), ``x`` → (x, None)."""
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", name)
    if m:
        return tex_word(m[1]), m[2]
    if compact and name.isdigit():
        return name, None
    head, sep, tail = name.partition("_")
    if sep and head and tail:
        return tex_word(head), tex_compact(tail)
    return tex_word(name), None


def tex_parts(name: Name | str) -> tuple[str, str | None]:
    """(base, label) of a name before its family labels are attached."""
    if isinstance(name, str):
        return tex_plain(name, True)
    inner = Name(name.base)
    if name.arg:  # a lifted argument: z_v1 → (z, v_{1}); the second one z2_v1 → (\mathrm{z2}, v_{1})
        return tex_word("z" if name.arg == 1 else f"z{name.arg}"), tex_compact(inner)
    return tex_plain(name.base, True)


def tex_compact(name: Name | str) -> str:
    """A name as a label inside brackets: ``v2`` → ``v_{2}``, ``z_v1`` → ``z_{v_{1}}``,
    a family member ``h(t-1)`` → ``h^{(t-1)}``."""
    if isinstance(name, Name) and name.labels:
        return f"{tex_compact(Name(name.base, name.labels[:-1], name.arg))}^{{({tex_label(str(name.labels[-1]))})}}"
    if isinstance(name, str) and name.isdigit():
        return name
    base, label = tex_parts(name)
    return base if label is None else f"{base}_{{{label}}}"


def tex_tensor(name: Name | str) -> tuple[str, str | None]:
    """(base, bracketed label): ``W1`` → (W, 1), ``z_v1`` → (z, v_{1}), ``x`` → (x, None),
    ``h(t-1)`` → (h, t-1), ``z_h(t)`` → (z, h^{(t)})."""
    if isinstance(name, Name) and name.labels:
        base, label = tex_tensor(Name(name.base, name.labels[:-1], name.arg))
        lab = tex_label(str(name.labels[-1]))
        return (base, lab) if label is None else (base, f"{label}^{{({lab})}}")
    if isinstance(name, Name) and name.arg:
        return tex_parts(name)
    return tex_plain(str(name), False)


def tex_label(label: str) -> str:
    """A family label as written in a name: ``t-1`` stays, the step letters ``τ``, ``ρ``, ``κ``
    (:data:`STEP_TEX`) become ``\\tau``, ``\\rho``, ``\\kappa``."""
    for greek, tex in STEP_TEX.items():
        label = label.replace(greek, tex + " ").replace(tex + " -", tex + "-").replace(tex + " +", tex + "+")
    return label.rstrip()


def tex_index(letter: str) -> str:
    if len(letter) == 1:
        return letter
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", letter)
    if m and len(m[1]) == 1:
        return f"{m[1]}_{{{m[2]}}}"
    return r"\mathit{" + escape(letter) + "}"


def tex_function(name: str) -> str:
    return "\\" + name if name in TEX_FUNCTIONS else r"\operatorname{" + escape(name) + "}"


def tex_primes(order: int) -> str:
    return "'" * order if order <= 3 else f"^{{({order})}}"


# ------------------------------------------------------------ naming
def stem(name: Name) -> tuple[str, str | None]:
    """(stem, label) of a node: ``v2`` → (v, 2), ``h(t-1)`` → (h, t-1), ``zg`` → (\\mathrm{zg}, None)."""
    if name.labels:
        if len(name.labels) > 1:
            return tex_compact(Name(name.base, name.labels[:-1])), tex_label(str(name.labels[-1]))
        return tex_word(name.base) if not re.search(r"\d$", name.base) else tex_compact(name.base), \
            tex_label(str(name.labels[-1]))
    return tex_plain(name.base, True)


class Naming:
    """How the LaTeX printer writes tensors and intermediates (see the module docstring)."""

    def __init__(self, ctx: Context, mode: str = "compact"):
        if mode not in NAMINGS:
            raise ValueError(f"naming {mode!r}: expected one of {', '.join(NAMINGS)}")
        self.ctx = ctx
        names = [n for key in ctx.arity for n in names_in(key)] + list(ctx.placement) + [ctx.objective]
        names = list(dict.fromkeys(n.relabel(lambda _: ANY) for n in names if isinstance(n, Name)))
        #: nodes whose argument is named (``v1`` for ``z_v1``): the layers (as families, ``v(*)``)
        self.layers = {n.of for n in names if n.arg == 1}
        stems = {stem(n)[0] for n in self.layers}
        labelled = all(stem(n)[1] is not None for n in self.layers)
        #: the one family of layers, when there is one: its members are written as their labels
        self.family = next(iter(stems)) if len(stems) == 1 and labelled else None
        self.mode = mode
        if mode == "compact" and not self.distinct(names):
            self.mode = "nested"

    @property
    def compact(self) -> bool:
        return self.mode == "compact"

    def distinct(self, names: Iterable[Name]) -> bool:
        """Whether the compact spellings of ``names`` (as tensors, and inside brackets) are all different."""
        tensors = {self.tensor(n) for n in names}
        inner = {self.inner(n) for n in names}
        count = len(set(names))
        return len(tensors) == count and len(inner) == count

    # -- pieces -------------------------------------------------------------
    def label(self, node: Name) -> str | None:
        """A layer's label when the layers are one family (``v2`` → ``2``), else None."""
        if self.family is None or node.arg or node.relabel(lambda _: ANY) not in self.layers:
            return None
        return stem(node)[1]

    def short(self, node: Name) -> str:
        """A node written short: its label (a layer of the one family), ``v_{2}``, ``p``, ``\\mathrm{zg}``."""
        lab = self.label(node)
        if lab is not None:
            return lab
        base, lab = stem(node)
        return base if lab is None else f"{base}_{{{lab}}}"

    def inner(self, name: TensorName) -> str:
        """A name inside a bracket (η's places, H's): ``v_{2}``, ``p``, ``z_{1}`` for ``z_v1``."""
        if not self.compact or not isinstance(name, Name):
            return tex_compact(name)
        if name.arg:
            head = "z" if name.arg == 1 else f"z{name.arg}"
            return f"{head}_{{{self.short(name.of)}}}"
        base, lab = stem(name)
        return base if lab is None else f"{base}_{{{lab}}}"

    # -- what the printer asks for ------------------------------------------------
    def tensor(self, name: Name | str) -> tuple[str, str | None]:
        """(base, bracketed label) of a tensor: ``z_v1`` → (z, 1) in compact mode, (z, v_{1}) nested."""
        if self.compact and isinstance(name, Name) and name.arg:
            return tex_word("z" if name.arg == 1 else f"z{name.arg}"), self.short(name.of)
        return tex_tensor(name)

    def gamma(self, q: Quantity) -> str:
        """γ's bracket: ``1`` (compact, a layer), ``v_{1}`` (nested)."""
        node = q.parts[0]
        return self.short(node) if self.compact and isinstance(node, Name) else tex_compact(node)

    def eta(self, q: Quantity) -> str:
        """η's bracket: ``2,1`` for ∂v^{(2)}/∂z^{(1)} (compact), ``v_{2},z_{v_{1}}`` (nested)."""
        a, s = q.parts
        if not self.compact:
            return ",".join(tex_compact(x) for x in q.parts)
        first = self.label(a) if isinstance(a, Name) else None
        second = self.label(s.of) if isinstance(s, Name) and s.arg == 1 else None
        return f"{first if first is not None else self.inner(a)},{second if second is not None else self.inner(s)}"

    def alpha(self, q: Quantity) -> str:
        """α's bracket: both layers short (``k,l``), or spelled out (nested)."""
        if not self.compact:
            return ",".join(tex_compact(x) for x in q.parts)
        return ",".join(self.short(x) for x in q.parts)

    def bracket(self, q: Quantity) -> str:
        """The bracket of another intermediate (H's): its names, short."""
        return ",".join(self.inner(x) for x in q.parts)
