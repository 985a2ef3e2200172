"""Every network in derivations/ runs end to end, and its kept outputs are current."""
from __future__ import annotations

import importlib.util
import os
import pathlib

import numpy as np
import pytest

import einderiv

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("regenerate", ROOT / "derivations" / "regenerate.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)

NETWORKS = regenerate.networks()
#: examples whose derivation alone takes tens of seconds of CPU (a 2-head transformer block at order 2):
#: their sweeps run in .ci/run (-m slow), not in the README's default run
HEAVY = {"transformer_block"}


def sweep(paths=NETWORKS):
    """Each example as a parameter, the heavy ones marked slow."""
    return [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in HEAVY else []) for p in paths]


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_examples_exist():
    names = {p.name for p in NETWORKS}
    assert {"paper_mlp.ein", "tanh_mlp.ein", "swish_bce.ein", "gru_cell.ein", "gru_unrolled.ein",
            "attention.ein", "layernorm_mlp.ein", "residual_mlp.ein", "tied_autoencoder.ein",
            "paper_mlp_order3.ein", "lstm_cell.ein", "transformer_block.ein"} <= names


def test_directives_of_the_examples_are_read():
    """Kept at the order and form their first line says (every command honours it: test_directives.py)."""
    assert einderiv.load("derivations/paper_mlp_order3.ein").header.order == 3
    assert einderiv.load("derivations/gru_unrolled.ein").header.form == "compact"
    plain = einderiv.load("derivations/paper_mlp.ein").header
    assert (plain.order, plain.form) == (None, None)
    assert "∂³f/" in (ROOT / "derivations" / "paper_mlp_order3.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sweep())
def test_kept_outputs_are_current(path):
    for out, text in regenerate.outputs(path).items():
        assert out.exists(), f"{out.name} is missing: run python derivations/regenerate.py"
        kept = out.read_text(encoding="utf-8")
        fresh = text if text.endswith("\n") else text + "\n"
        assert kept == fresh, f"{out.name} is stale: run python derivations/regenerate.py"


@pytest.mark.parametrize("path", sweep())
@pytest.mark.parametrize("form", ["expanded", "compact"])
def test_checks_numerically(path, form):
    """Both forms of the Hessian blocks: the printed (expanded) one and the generated (compact) one."""
    derivation = einderiv.derive(einderiv.load(os.path.relpath(path, ROOT)))  # at the file's order
    report = einderiv.check(derivation, seed=1, form=form)
    assert report.rows and report.ok, report.format()


@pytest.mark.parametrize("path", NETWORKS, ids=lambda p: p.stem)
def test_kept_kernels_run_and_agree_with_fresh_check(path, draw):
    """The committed kernel module itself (not only a fresh one) gives FD-correct gradients."""
    ns: dict = {}
    src = (path.parent / f"{path.stem}_kernels.py").read_text(encoding="utf-8")
    exec(compile(src, str(path), "exec"), ns)
    params, data = draw(ns, 3, batch=2, data="uniform")
    grad = ns["gradient"](params, data)
    h = 1e-6
    for name, theta in params.items():
        for idx in list(np.ndindex(theta.shape))[:6]:
            old = theta[idx]
            theta[idx] = old + h
            up = ns["objective"](params, data).mean()
            theta[idx] = old - h
            down = ns["objective"](params, data).mean()
            theta[idx] = old
            assert abs(grad[name][idx] - (up - down) / (2 * h)) < 1e-6
