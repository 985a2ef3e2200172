"""No index letter looks like another name of its document, and indices sit where the file puts them.

The printed documents are read back here, independently of the printers: every
superscript and subscript of every formula (text and LaTeX) that is an index is
collected (labels in brackets, sums over steps or layers, exponents and names
are told apart by their form), and compared with every other name of the same
document — its tensors as the file writes them and as LaTeX shows them (``W1``,
``W``), its sizes (``n0``, ``n``), family labels (``t``; a template's ``k, l, m,
n, r``), functions.  This runs over every network in derivations/ and 50
random ones (MLPs, RNNs, CNNs).  Then, for every tensor a file declares or
defines, the printed placement (which indices up, which down) is the one written.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import einderiv  # noqa: E402
from einderiv.calculus.derive import derive  # noqa: E402
from einderiv.emit import latex as latex_printer  # noqa: E402
from einderiv.emit import text as text_printer  # noqa: E402
from einderiv.frontend.parse import parse  # noqa: E402
from einderiv.frontend import syntax as S  # noqa: E402
from einderiv.ir import Apply, walk  # noqa: E402
from test_random_networks import random_network  # noqa: E402
from test_random_rnn_cnn import random_cnn, random_rnn  # noqa: E402
from runs import default_share  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "derivations").glob("*.ein"))
BUILTIN = {"softmax", "log", "exp", "relu", "tanh", "sigmoid", "softplus", "square", "identity", "lnorm", "swish",
           "sqrt", "max", "mean", "sum"}
#: the labels of a template's general form: layers k, r, the definitions' l, q, the summed m, the depth n
LAYER_LABELS = {"k", "l", "m", "n", "q", "r"}
#: the Latin labels of a recurrence's general form (`depth T`): its steps t (then τ, ρ, κ) up to T
STEP_LABELS = {"t", "T"}


# ---------------------------------------------------------------- the names of a document
def names_of(net, template: bool = False, sequence: bool = False) -> set[str]:
    """Every name of a network's documents that is not an index, as the file writes it and as
    LaTeX shows it (``W1`` and ``W``, ``n_in`` and ``n``); ``template``: of a general form (of a
    recurrence, with ``sequence``)."""
    out: set[str] = {"f", "z", "S", "H", "D"}
    bases = [t.name.base for t in net.tensors] + [d.name.base for d in net.definitions] + [net.objective.base]
    for base in bases:
        out |= {base, re.sub(r"\d+$", "", base)}
    for dim, _ in net.dims:
        out |= {dim, dim.split("_")[0], re.sub(r"\d+$", "", dim)}
    if any(t.name.labels for t in net.tensors) or any(d.name.labels for d in net.definitions):
        out |= (STEP_LABELS if sequence else LAYER_LABELS) if template else {"t"}
    for d in net.definitions:
        out |= {x.fn.name for x in walk(d.expr) if isinstance(x, Apply)}
    return out - {""}


# ---------------------------------------------------------------- reading indices back
def _groups(text: str):
    """``(mark, content)`` of every script: ``^x``, ``_x``, ``^{…}``, ``_{…}`` (braces balanced)."""
    k = 0
    while k < len(text):
        if text[k] in "^_" and (k == 0 or text[k - 1] != "\\"):
            mark, k = text[k], k + 1
            if k < len(text) and text[k] == "{":
                depth, start = 0, k
                while k < len(text):
                    depth += text[k] == "{"
                    depth -= text[k] == "}"
                    k += 1
                    if depth == 0:
                        break
                yield mark, text[start + 1:k - 1]
            elif k < len(text):
                yield mark, text[k]
                k += 1
        else:
            k += 1


def _strip_label(group: str) -> str:
    """``(1),j`` → ``j``: a bracketed label at the front of a superscript is a name, not an index."""
    if not group.startswith("("):
        return group
    depth = 0
    for k, ch in enumerate(group):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return group[k + 1:].lstrip(",")
    return ""


def _letters(group: str) -> list[str]:
    """Index letters of a script group: ``j``, ``qk``, ``l,m``, ``2t+a``, ``\\mathit{cu}``."""
    group = re.sub(r"\\mathit\{([^}]*)\}", r"\1", group)
    parts = group.split(",") if "," in group else [group]
    out = []
    for p in parts:
        for term in p.split("+"):
            term = term.strip().lstrip("0123456789")
            if not term or not term.isalpha():
                continue
            out += [term] if "," in group else list(term)
    return out


def latex_indices(tex: str, size_spellings: set[str]) -> set[str]:
    """Index letters in a LaTeX document's formulas."""
    body = tex[tex.index(r"\begin{document}"):]
    body = re.sub(r"\\(texttt|label|eqref|text|operatorname|mathrm|section\*|keep|title)\{[^{}]*\}", " ", body)
    body = re.sub(r"\\sum_\{[^{}]*(=|\\in)[^{}]*(\{[^{}]*\}[^{}]*)?\}(\^\{[^{}]*\})?", " ", body)  # Σ over steps
    body = re.sub(r"\\right\|_\{[^{}]*\}", " ", body)  # at fixed arguments
    body = body.replace(r"\_", " ")
    for s in sorted(size_spellings, key=len, reverse=True):
        body = body.replace(s, " ")
    found = set()
    for mark, group in _groups(body):
        group = _strip_label(group) if mark == "^" else group
        if "-" in group or group.strip().isdigit() or group.strip() in ("", "'"):
            continue
        found.update(_letters(group))
    return found


def text_indices(text: str, names: set[str]) -> set[str]:
    """Index letters in a text document's formulas: names (longest first, with their labels) and
    the brackets of η[…] are taken out first, then every script is an index or a range."""
    text = re.sub(r"\S+\.ein\b", " ", text)  # the file's path (gru_cell.ein)
    text = re.sub(r"\[[^\[\]]*\]", "[]", text)  # η[v2,z_v1], γ[h(t)], H[m,n]
    spelled = sorted({n for n in names if len(n) > 1} | {f"z_{n}" for n in names}, key=len, reverse=True)
    for n in spelled:
        text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(n)}(\([^()]*\))?(?![A-Za-z0-9])", "#", text)
    text = re.sub(r"(?<![A-Za-z0-9_])[A-Za-z](\([^()]*\))(?![A-Za-z0-9])", "#", text)  # x(t), h(t-1)
    found = set()
    for _, group in _groups(text):
        if "=" in group or group.strip().isdigit():
            continue
        found.update(_letters(group))
    return found


def size_spellings(net) -> set[str]:
    out = set()
    for dim, _ in net.dims:
        m = re.fullmatch(r"([A-Za-z]+)(\d+)", dim)
        if m:
            out.add(f"{m[1]}_{{{m[2]}}}")
        elif "_" in dim:
            head, tail = dim.split("_", 1)
            out.add(f"{head}_{{{tail}}}")
    return out


def clashes(net, text: str, tex: str, template: bool = False, sequence: bool = False) -> dict[str, set[str]]:
    names = names_of(net, template, sequence)
    return {"text": text_indices(text, names) & names,
            "latex": latex_indices(tex, size_spellings(net)) & names}


# ---------------------------------------------------------------- the tests
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_no_index_looks_like_another_name(path):
    """The kept documents (tests/test_derivations.py keeps them current) of every example."""
    model = einderiv.load(str(path))
    template = isinstance(model, einderiv.Template)
    net = model.instantiate(3) if template else model
    text = path.with_suffix(".txt").read_text(encoding="utf-8")
    tex = path.with_suffix(".tex").read_text(encoding="utf-8")
    sequence = template and model.sequence
    assert clashes(net, text, tex, template, sequence) == {"text": set(), "latex": set()}
    assert text_indices(text, names_of(net, template, sequence)) and latex_indices(tex, size_spellings(net))


def random_models(n: int = 50):
    """Networks of the random generators: 30 MLPs (order 2), 10 RNNs and 10 CNNs (order 1)."""
    out = []
    for seed in range(30):
        net, _ = random_network(seed)
        out.append((f"mlp{seed}", net, 2))
    for seed in range(10):
        out.append((f"rnn{seed}", einderiv.load(f"rnn{seed}.ein", text=random_rnn(seed)), 1))
        out.append((f"cnn{seed}", einderiv.load(f"cnn{seed}.ein", text=random_cnn(seed)), 1))
    return out[:n]


@pytest.mark.parametrize("name,net,order", default_share(random_models(), 2), ids=lambda x: x if isinstance(x, str) else "")
def test_no_index_looks_like_another_name_in_random_networks(name, net, order):
    d = derive(net, order)
    text, tex = text_printer.render(d), latex_printer.render(d)
    assert clashes(net, text, tex) == {"text": set(), "latex": set()}


def test_the_reader_finds_a_clash():
    """The reader is not blind: a document that used a size as an index would be caught."""
    net = einderiv.load(str(ROOT / "derivations" / "attention.ein"))
    text = "  p^l = 1/t U^l_d Σ_q o^q_d\n"  # attention before: d, a size, as an index
    assert "d" in text_indices(text, names_of(net)) & names_of(net)
    tex = r"\begin{document} $\eta^{(s,Q),qk}_{sd}$"
    assert {"s", "d"} <= latex_indices(tex, size_spellings(net)) & names_of(net)


# ---------------------------------------------------------------- placement round trip
def written_placements(path: Path) -> dict[str, tuple[bool, ...]]:
    """Each tensor's index placement as its file writes it (declarations and definitions' left sides)."""
    module = parse(path.read_text(encoding="utf-8"), str(path))
    out = {}
    for s in module.statements:
        if isinstance(s, (S.Decl, S.Assign)) and s.indices:
            out.setdefault(s.name, tuple(ix.up for ix in s.indices))
    return out


def printed_placement(script: str) -> tuple[bool, ...]:
    """``^j_i`` → (True, False); ``^{qk}`` → (True, True); ``_s^i`` → (False, True) (text scripts)."""
    out = []
    for mark, group in _groups(script):
        n = len(group.split(",")) if "," in group else len(group)
        out += [mark == "^"] * n
    return tuple(out)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_index_placement_round_trips(path):
    """Every tensor the file declares or defines is printed with its indices up and down as written
    (the Network section of the text: declarations, and definitions as written)."""
    model = einderiv.load(str(path))
    if isinstance(model, einderiv.Template):
        model = model.instantiate(2)
    text = einderiv.derivation_text(einderiv.derive(model, 1))
    network = text[text.index("Network"):text.index("\n\n", text.index("Network"))]
    seen = {}
    for line in network.splitlines():
        if line.endswith("(pre-activation)"):  # z_z(t) in gru.ein, whose gate is called z
            continue
        m = re.match(r"\s*(?:input|label|weight|bias)?\s*([A-Za-z][A-Za-z0-9]*)(\([^()]*\))?(\S*)", line)
        if m and m.group(1) not in ("dims", "depth") and (m.group(3).startswith("^") or m.group(3).startswith("_")):
            seen.setdefault(m.group(1), printed_placement(m.group(3).split(" ")[0]))
    written = written_placements(path)
    assert written and set(written) <= set(seen), (sorted(written), sorted(seen))
    assert {k: seen[k] for k in written} == written


def test_placement_is_carried_into_latex():
    """attention.ein writes X^s_i, s^{qk}, o^q_d: the LaTeX shows them so (its s and d renamed b, e),
    and the adjoint of X^s_i is flipped: ∂f/∂X_b{}^i."""
    tex = einderiv.latex(einderiv.derive(einderiv.load(str(ROOT / "derivations" / "attention.ein")), 1))
    assert r"$X^{b}_{i}$" in tex and r"$s^{qk} = " in tex and r"$o^{q}_{e} = " in tex
    assert r"\frac{\partial f}{\partial o_{q}{}^{e}}" in tex  # o^q_e: flipped in the derivative by it
    cnn = einderiv.latex(einderiv.derive(einderiv.load(str(ROOT / "derivations" / "cnn1d.ein")), 1))
    assert r"$v^{ot} = " in cnn  # v^{o,t}, not v^o_t
