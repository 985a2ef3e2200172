"""The order-2 engine does a bounded amount of work per Hessian block, whatever the depth.

An L-layer MLP has (L+1)² Hessian blocks, so deriving it cannot cost less than L²; what
must not come back is work per block that grows with L (the compact form's direct terms
once scanned every node of the network for every block: L³ in all, issue 13).  Counted,
not timed: the number of calls of the chain rule's per-node and simplification steps per
block stays flat from 4 to 16 layers.
"""
from __future__ import annotations

import pytest

from einderiv.calculus import derive as derive_module
from einderiv.calculus.second import SecondOrder
from einderiv.calculus.simplify import Simplifier
from einderiv.frontend.check import load


def mlp(L: int) -> str:
    dims = [3] + [3] * L + [2]
    lines = ["dims " + ", ".join(f"n{k} = {w}" for k, w in enumerate(dims)), "input x^i : n0",
             f"label y^l : n{L + 1}"]
    lines += [f"weight W{k}^j_i : n{k}, n{k - 1}" for k in range(1, L + 2)]
    prev = "x"
    for k in range(1, L + 1):
        lines.append(f"v{k}^j = tanh(W{k}^j_i {prev}^i)")
        prev = f"v{k}"
    lines += [f"p^l = W{L + 1}^l_j {prev}^j", "f = softmax_cross_entropy(p, y)"]
    return "\n".join(lines) + "\n"


def calls_per_block(L: int, monkeypatch) -> dict[str, float]:
    counts = {"node_args": 0, "simplify": 0}
    node_args, simplify = SecondOrder.node_args, Simplifier.simplify

    def counted_node_args(self, n):
        counts["node_args"] += 1
        return node_args(self, n)

    def counted_simplify(self, e):
        counts["simplify"] += 1
        return simplify(self, e)

    monkeypatch.setattr(SecondOrder, "node_args", counted_node_args)
    monkeypatch.setattr(Simplifier, "simplify", counted_simplify)
    d = derive_module.derive(load(f"mlp{L}.ein", mlp(L)), 2, expanded=False)
    monkeypatch.undo()
    blocks = sum(1 for wrt in d.blocks if len(wrt) == 2)
    assert blocks == (L + 1) ** 2
    return {k: v / blocks for k, v in counts.items()}


@pytest.mark.parametrize("step", ["node_args", "simplify"])
def test_work_per_hessian_block_does_not_grow_with_depth(step, monkeypatch):
    shallow, deep = calls_per_block(4, monkeypatch)[step], calls_per_block(16, monkeypatch)[step]
    assert deep <= 1.25 * shallow, f"{step}: {shallow:.1f} calls per block at L=4, {deep:.1f} at L=16"
