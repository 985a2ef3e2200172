"""Deep networks are printed in the compact form by default (issue 15, point 4).

The expanded Hessian form has O(L³) A″ terms: ``einderiv derive --order 2`` of a 32-layer tanh
MLP took 27 s of CPU in it (64 layers: 167 s, 10 MB).  Past
:data:`einderiv.api.EXPANDED_LIMIT` (node, parameter, parameter) triples the printers default to the
compact form, and a note on standard error says so; ``--form expanded`` (or the file's directive)
still gives the expanded form.
"""
from __future__ import annotations

import pytest

import einderiv
from einderiv import api
from einderiv.calculus.derive import expanded_size
from einderiv.cli import main
from einderiv.errors import EinderivWarning


def tanh_mlp(layers: int) -> str:
    lines = ["dims n = 3, c = 2", "input x^i : n", "label y^l : c"]
    lines += [f"weight W{k}^j_i : n, n" for k in range(1, layers + 1)] + ["weight U^l_j : c, n"]
    lines += [f"v{k}^j = tanh(W{k}^j_i {'x' if k == 1 else f'v{k - 1}'}^i)" for k in range(1, layers + 1)]
    return "\n".join(lines + [f"p^l = U^l_j v{layers}^j", "f = squared_error(p, y)"]) + "\n"


def note(size: int) -> str:
    return ("einderiv: note: Hessian blocks in the compact form (through second-order adjoints H[s,s′]): the "
            f"expanded form would spell out terms for {size:,} (node, parameter, parameter) triples, over the limit of "
            f"{api.EXPANDED_LIMIT:,} (it grows as depth cubed); --form expanded prints it")


def test_expanded_size_counts_the_triples():
    """Node k of an L-layer MLP (z_k and v_k) has k weights upstream: Σ 2k², then p and f."""
    for layers in (1, 4, 9):
        d = einderiv.derive(einderiv.load("net.ein", text=tanh_mlp(layers)), 1)
        assert expanded_size(d) == sum(2 * k * k for k in range(1, layers + 1)) + 2 * (layers + 1) ** 2


def printed(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def test_a_20_layer_mlp_is_printed_compact_with_a_note(tmp_path, capsys):
    """20 layers: 6,622 triples (32 layers: 25,058); the compact form names H[m,n]."""
    src = tmp_path / "deep.ein"
    src.write_text(tanh_mlp(20))
    assert main(["derive", str(src), "--order", "2"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [note(6622)]
    assert "H[m,n] = ∂²f/∂εₘ∂εₙ" in out


def test_small_networks_keep_the_expanded_form(tmp_path, capsys):
    src = tmp_path / "small.ein"
    src.write_text(tanh_mlp(4))
    assert main(["derive", str(src)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    d = einderiv.derive(einderiv.load(str(src)))
    assert out == printed(einderiv.derivation_text(d, form="expanded"))
    assert "H[m,n]" not in out


def test_the_expanded_form_on_request(tmp_path, capsys, monkeypatch):
    """Over the limit (lowered here, so that the expanded form stays cheap), ``--form expanded``
    and the directive ``# einderiv: form expanded`` print it, without the note."""
    monkeypatch.setattr(api, "EXPANDED_LIMIT", 50)
    src = tmp_path / "net.ein"
    src.write_text(tanh_mlp(4))
    d = einderiv.derive(einderiv.load(str(src)))
    assert main(["derive", str(src)]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [note(expanded_size(d)).replace("4,000", "50")]
    assert out == printed(einderiv.derivation_text(d, form="compact"))
    assert main(["derive", str(src), "--form", "expanded"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out == printed(einderiv.derivation_text(d, form="expanded"))
    src.write_text("# einderiv: form expanded\n" + tanh_mlp(4))
    assert main(["latex", str(src)]) == 0
    assert capsys.readouterr().err == ""
    with pytest.warns(EinderivWarning):
        assert api.printed_form(d, None) == "compact"
