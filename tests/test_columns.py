"""A recurrence's order-2 module at a fixed length past the reference length (`--depth T=k`, k > 8):
`hessian` column by column from R-passes and `ggn_diagonal` from seeded BPTT passes, both loops
over the steps (einderiv.emit.columns).  Checked against central differences (`check`), against the
module with the derived per-pair blocks (the same numbers to 1e-12), and for size: a few lines per
step (INPUTS, GRADIENT_FACTOR_AXES), not a block per pair of steps."""
import numpy as np
import pytest

import einderiv
from einderiv.emit import columns
from einderiv.runtime import load as load_source


def derivation(path, length=None, dims=None):
    net = einderiv.load(path, dims=dims, depth={"T": length} if length else None)
    return einderiv.derive(net, order=2)


def derived_blocks(d, monkeypatch):
    """The module of ``d`` with its per-pair blocks written out (the column pass switched off)."""
    with monkeypatch.context() as m:
        m.setattr(columns, "LONG", 10 ** 9)
        return einderiv.codegen(d)


def sample(m, seed=0, batch=4):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 0.7, s) for k, s in m["PARAMS"].items()}
    data = {k: rng.normal(size=(batch,) + tuple(s)) for k, s in m["INPUTS"].items()}
    vector = {k: rng.normal(size=s) for k, s in m["PARAMS"].items()}
    return params, data, vector


def close(a, b, rtol=1e-12):
    scale = max(np.max(np.abs(b)), 1e-300)
    return np.max(np.abs(a - b)) <= rtol * scale


CASES = [("derivations/rnn.ein", 10, None), ("derivations/gru.ein", 9, None),
         ("derivations/rnn_all_steps.ein", None, {"T": 10})]


@pytest.mark.parametrize("path,length,dims", CASES)
def test_columns_equal_the_derived_blocks(path, length, dims, monkeypatch):
    d = derivation(path, length, dims)
    src = einderiv.codegen(d)
    old = derived_blocks(d, monkeypatch)
    assert "def _hvp(t):" in src and "def _hvp(t):" not in old
    m, o = load_source(src), load_source(old)
    params, data, vector = sample(m)
    ours, theirs = m["hessian"](params, data), o["hessian"](params, data)
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        assert ours[key].shape == theirs[key].shape, key
        assert close(ours[key], theirs[key]), key
        size = {name: int(np.prod(m["PARAMS"][name])) for name in key}
        ab = ours[key].reshape(size[key[0]], size[key[1]])
        ba = ours[key[::-1]].reshape(size[key[1]], size[key[0]])
        assert np.array_equal(ab, ba.T), key  # exactly symmetric
    g, h = m["ggn_diagonal"](params, data), o["ggn_diagonal"](params, data)
    for key in h:
        assert close(g[key], h[key]), key
    hv, hw = m["hvp"](params, data, vector), o["hvp"](params, data, vector)
    for key in hw:
        assert close(hv[key], hw[key]), key


def test_columns_hessian_writes_into_out():
    m = load_source(einderiv.codegen(derivation("derivations/rnn.ein", 10)))
    params, data, _ = sample(m, seed=1)
    P = sum(int(np.prod(s)) for s in m["PARAMS"].values())
    out = np.full(P * P, np.nan)
    blocks = m["hessian"](params, data, out=out)
    fresh = m["hessian"](params, data)
    for key, block in blocks.items():
        assert np.shares_memory(block, out), key
        assert np.array_equal(block, fresh[key]), key
    assert not np.isnan(out).any()
    with pytest.raises(ValueError, match=r"out has shape \(7,\); expected"):
        m["hessian"](params, data, out=np.zeros(7))


@pytest.mark.parametrize("path,length", [("derivations/rnn.ein", 10), ("derivations/gru.ein", 9)])
def test_columns_against_finite_differences(path, length):
    report = einderiv.check(derivation(path, length))
    assert report.ok, report.format()
    checked = {row.name.split()[0] for row in report.rows}
    assert {"hessian", "ggn_diagonal", "hvp"} <= checked


def test_columns_module_size_does_not_grow_with_pairs_of_steps():
    lines = {T: einderiv.codegen(derivation("derivations/rnn.ein", T)).splitlines() for T in (10, 20, 40)}
    # INPUTS has one entry per step, GRADIENT_FACTOR_AXES one per step of W and of V: 3 lines a step
    assert len(lines[20]) - len(lines[10]) <= 3 * 10
    assert len(lines[40]) - len(lines[20]) <= 3 * 20
    for src in lines.values():  # no per-pair quantity (jac[h(5),z_h(2)], hess[z_h(3),z_h(1)]) is written
        assert not any(line.startswith(("def _jac_", "def _hess_")) for line in src)


def test_columns_only_past_the_reference_length(monkeypatch):
    short = derivation("derivations/rnn.ein", columns.LONG)
    assert "def _hvp(t):" not in einderiv.codegen(short)
    assert einderiv.codegen(short) == derived_blocks(short, monkeypatch)
    torch = pytest.importorskip("torch")  # noqa: F841  (the other printers keep the derived blocks)
    assert "def _hvp(t):" not in einderiv.codegen(derivation("derivations/rnn.ein", 10), backend="torch")


def test_columns_module_is_deterministic():
    d = derivation("derivations/gru.ein", 9)
    assert einderiv.codegen(d) == einderiv.codegen(derivation("derivations/gru.ein", 9))


@pytest.mark.parametrize("path,length,dims", CASES + [("derivations/rnn.ein", 4, None),
                                                      ("derivations/paper_mlp.ein", None, None)])
def test_codegen_of_a_network_derives_only_what_the_module_reads(path, length, dims):
    net = einderiv.load(path, dims=dims, depth={"T": length} if length else None)
    assert einderiv.codegen(net) == einderiv.codegen(einderiv.derive(net, order=2))


def test_a_long_recurrence_module_without_its_hessian_blocks():
    """derive(pairs=False): no Hessian or GGN block (their O(T²) quantities), the objective's Hessian
    kept for the GGN's seeds; what the column pass needs and nothing it does not."""
    from einderiv.calculus.derive import derive
    net = einderiv.load("derivations/rnn.ein", depth={"T": 12})
    lean, full = derive(net, 2, expanded=False, pairs=False), einderiv.derive(net, order=2)
    assert not lean.blocks_of_order(2) and not lean.ggn and full.blocks_of_order(2)
    assert columns.without_pairs(lean) and columns.ggn_seed(lean) is not None
    assert len(lean.quantities) < len(full.quantities) / 4
    with pytest.raises(einderiv.InternalError, match="pairs=False"):
        derive(net, 2, expanded=True, pairs=False)
    steps = einderiv.load("derivations/rnn_all_steps.ein", dims={"T": 10})
    assert not columns.without_pairs(derive(steps, 2, expanded=False, pairs=False))  # its GGN: derived blocks


@pytest.mark.parametrize("order", [1, 2])
def test_cli_codegen_writes_the_module_of_the_derivation(tmp_path, order):
    from einderiv.cli import main
    out = tmp_path / "rnn.py"
    assert main(["codegen", "derivations/rnn.ein", "--depth", "T=10", "--order", str(order), "-o", str(out)]) == 0
    net = einderiv.load("derivations/rnn.ein", depth={"T": 10})
    assert out.read_text() == einderiv.codegen(einderiv.derive(net, order=order))


def test_a_stack_of_layers_keeps_its_derived_blocks():
    """A layer template at a given depth (w(1) … w(10): weights of their own per layer) is no recurrence:
    its order-2 module keeps the derived blocks."""
    from einderiv.calculus.derive import derive
    d = derive(einderiv.load("derivations/deep_template_tanh.ein", depth={"n": 10}), 2, expanded=False, pairs=False)
    assert columns.length(d) == 10 and columns.chain(d) > 10
    assert not columns.by_columns(d)
    rec = derive(einderiv.load("derivations/rnn.ein", depth={"T": 10}), 2, expanded=False, pairs=False)
    assert columns.by_columns(rec) and columns.chain(rec) > columns.length(rec)


def test_codegen_takes_an_order_for_a_network_only():
    d = einderiv.derive(einderiv.load("derivations/paper_mlp.ein"), order=1)
    with pytest.raises(einderiv.EinderivError, match=r"^order=2: a derivation \(or template\) has its order; "
                                                     r"order is for a network, e\.g\. codegen\(load\(path\), order=2\)$"):
        einderiv.codegen(d, order=2)
    net = einderiv.load("derivations/paper_mlp.ein")
    assert einderiv.codegen(net, order=1) == einderiv.codegen(d)
