"""Random networks with index arithmetic beyond ``x^{t+a}`` (issue 12), written as .ein text and
run through ``einderiv check`` at order 2 (every gradient and Hessian block against central
differences, float64).

Each network is drawn from its seed alone: 1–3 stacked 1-D convolutions over 1–2 channels, each
reading the layer below with a stride of 1–2, a kernel of 1–3 taps with dilation ±1..3 (negative:
taps backwards, a causal convolution), a constant offset −2..2, zero padding (``padded``) or valid
padding (the constant then shifted so that no read is before the first entry, padding taken where
no valid position would be left); sometimes a shift without a kernel (``g^c x^{c,t+1}``), and
sometimes max pooling over windows of 2 (``max_q(v^{o,2s+q})``); smooth activations (tanh,
sigmoid, softplus) so that every Hessian block is curved; a readout over every position and a
random built-in objective.

The default run checks 40 networks (about a second each on one core); ``-m slow`` runs 360 more.
"""
from __future__ import annotations

import random

import pytest

import einderiv

ACTS = ("tanh", "sigmoid", "softplus")
OBJECTIVES = ("squared_error", "softmax_cross_entropy", "binary_cross_entropy")
DEFAULT = 40
SLOW = 360


def _count(n: int, stride: int, dil: int, A: int, const: int, padded: bool) -> int:
    """The positions of ``x^{stride·t + dil·a + const}`` on an axis of n (docs/notation.md)."""
    if padded:
        return (n - 1) // stride + 1
    return (n - 1 - const - max(0, dil * (A - 1))) // stride + 1


def _reads_inside(n: int, stride: int, dil: int, A: int, const: int, count: int) -> bool:
    """Whether some read is inside the axis (a padded window that reads only zeros would make its
    kernel's derivatives zero at every draw: a vacuous check)."""
    return any(0 <= stride * t + dil * a + const < n for t in range(count) for a in range(A))


def random_offset_network(seed: int) -> str:
    rng = random.Random(7000 + seed)
    n, C = rng.randint(4, 7), rng.randint(1, 2)
    c = rng.randint(1, 3)  # (the head's dims line is written last: c may change)
    lines, padded, words = [], [], []
    decls = [f"input  x^{{i,u}} : C, {n}", "label  y^l : c"]
    below, width = "x", "C"
    layers = rng.randint(1, 3)
    for k in range(1, layers + 1):
        act = rng.choice(ACTS)
        O = rng.randint(1, 2)
        stride = rng.choice((1, 1, 2))
        if rng.random() < 0.15:  # a shift, no kernel: g^i x^{i,t+c}
            const = rng.randint(-2, 2) or 1
            pad = rng.random() < 0.5 or const < 0
            count = _count(n, stride, 1, 1, const, pad)
            if count < 1:
                pad, count = True, _count(n, stride, 1, 1, const, True)
            if not _reads_inside(n, stride, 1, 1, const, count):
                const = 0
            pos = (f"{stride}" if stride != 1 else "") + "t" + (f"{const:+d}" if const else "")
            decls.append(f"weight G{k}^i : {width}")
            lines.append(f"v{k}^{{i,t}} = {act}(G{k}^i {below}^{{i,{pos}}})")
            words.append(f"shift {pos}")
            O = width
        else:
            A = rng.randint(1, 3)
            dil = rng.choice((1, 1, 2, 3, -1, -2))
            const = rng.randint(-2, 2)
            pad = rng.random() < 0.5
            if not pad:
                const = max(const, -min(0, dil * (A - 1)))  # no read before the first entry
            count = _count(n, stride, dil, A, const, pad)
            if count < 1:
                pad, count = True, _count(n, stride, dil, A, const, True)
            if not _reads_inside(n, stride, dil, A, const, count):
                const = 0
            tap = ("+" if dil > 0 else "-") + (f"{abs(dil)}" if abs(dil) != 1 else "") + "a"
            pos = (f"{stride}" if stride != 1 else "") + "t" + tap + (f"{const:+d}" if const else "")
            decls.append(f"weight K{k}^o_{{i,a}} : {O}, {width}, {A}")
            lines.append(f"v{k}^{{o,t}} = {act}(K{k}^o_{{i,a}} {below}^{{i,{pos}}})")
            words.append(f"conv {pos} kernel {A}")
            O = str(O)
        if pad:
            padded.append(below)
            words[-1] += " padded"
        below, width, n = f"v{k}", O, count
    if n >= 2 and rng.random() < 0.3:  # max pooling over windows of 2, stride 2
        lines.append(f"m^{{o,s}} = max_q({below}^{{o,2s+q}})")
        below, n = "m", (n - 2) // 2 + 1
        words.append("max pooled")
    objective = rng.choice(OBJECTIVES)
    if objective == "softmax_cross_entropy" and c == 1:  # a softmax over one class has no curvature
        c = 2
    decls.append(f"weight U^l_{{o,t}} : c, {width}, {n}")
    lines += [f"p^l = U^l_{{o,t}} {below}^{{o,t}}", f"f = {objective}(p, y)"]
    head = [f"# offsets seed {seed}: " + "; ".join(words) + f"; {objective}", f"dims C = {C}, c = {c}"]
    pad_line = [f"padded {', '.join(padded)}"] if padded else []
    return "\n".join(head + decls + pad_line + lines) + "\n"


def check(seed: int) -> None:
    text = random_offset_network(seed)
    net = einderiv.load(f"offsets{seed}.ein", text=text)
    report = einderiv.check(einderiv.derive(net, 2), seed=seed, batch=2)
    assert report.ok, f"{text}\n{report.format()}"
    n = len(net.params)
    assert sum(r.name.startswith("hessian ") for r in report.rows) == n * n, text


def test_generator_draws_every_construct():
    heads = " ".join(random_offset_network(s).split("\n", 1)[0] for s in range(DEFAULT))
    for word in ("padded", "max pooled", "shift", "-a", "+2a", "-2a", "+3a", "2t", "-1", "+1", "+2",
                 "kernel 1", "kernel 3") + OBJECTIVES:
        assert word in heads, word
    texts = [random_offset_network(s) for s in range(DEFAULT)]
    assert any("v2^{o,t-" in t or "v2^{o,2t-" in t or "v2^{i," in t for t in texts)  # a padded stack
    assert sum("v3" in t for t in texts) > 10


@pytest.mark.parametrize("seed", range(DEFAULT))
def test_random_offset_network(seed):
    check(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(DEFAULT, DEFAULT + SLOW))
def test_random_offset_network_sweep(seed):
    check(seed)
