"""Randomised end-to-end check of recurrent and convolutional networks, written as .ein text.

Each network is drawn from its seed alone and written as a network file, so the
front end (families ``for t = 1..T``, ``h(t-1)``, zero members, ``sum_t``, index
arithmetic ``x^{c,2t+a}``) is exercised as well as the engine:

* **RNN**: T = 2–4 steps, input and hidden widths 1–3, 1–2 stacked layers with
  relu/tanh/sigmoid/softplus, an initial state that is zero (``h1(0)^j = 0``),
  data (``input``) or learnable (``weight``), the loss at the last step or summed
  over every step, a random built-in objective;
* **CNN**: 1-D or 2-D, stride 1–2, kernel 1–3, input and output channels 1–2
  (valid padding), then 0–2 hidden dense layers and a linear readout;
* **tokens**: a sequence of T = 2–4 tokens ``X^s_i``, a token-wise layer (a weight shared over
  positions, with or without a residual connection) and/or single-head self-attention
  (query, key and value weights shared over positions; scores scaled or not), pooled by
  ``mean_q``, ``sum_q``, ``max_q``, ``min_q``, ``logsumexp_q`` or a readout over every position, a
  random built-in objective.

Each is derived to order 2 and checked by :func:`einderiv.numcheck.check`:
gradients, per-sample gradients and their factors, every Hessian block, ``hvp``
and the GGN diagonal against finite differences.  A failure prints the file.
"""
from __future__ import annotations

import random

import pytest

import einderiv
from runs import default_share

ACTS = ("relu", "tanh", "sigmoid", "softplus")
TOKEN_ACTS = ACTS + ("identity",)
OBJECTIVES = ("squared_error", "softmax_cross_entropy", "binary_cross_entropy")
INITS = ("zero", "data", "learnable")
N_RNN = 14
N_CNN = 12
N_TOKEN = 23


def random_rnn(seed: int) -> str:
    """An unrolled Elman network as .ein text, drawn from ``seed``."""
    rng = random.Random(seed)
    layers = rng.randint(1, 2)
    # two stacked layers over four steps cost ~10 s each at order 2: keep the file under a minute
    T, n, c = rng.randint(2, 4 if layers == 1 else 3), rng.randint(1, 3), rng.randint(1, 3)
    widths = [rng.randint(1, 3) for _ in range(layers)]
    acts = [rng.choice(ACTS) for _ in range(layers)]
    inits = [rng.choice(INITS) for _ in range(layers)]
    all_steps = rng.random() < 0.5
    objective = rng.choice(OBJECTIVES)
    dims = ", ".join([f"T = {T}", f"n = {n}", f"c = {c}"] + [f"d{k + 1} = {w}" for k, w in enumerate(widths)])
    lines = [f"# rnn seed {seed}: layers {widths} {acts} init {inits} "
             f"{'all steps' if all_steps else 'last step'} {objective}",
             f"dims {dims}",
             "input  x(t)^k : n   for t = 1..T",
             "label  y(t)^l : c   for t = 1..T" if all_steps else "label  y^l : c"]
    below, below_ix, below_dim = "x", "k", "n"
    for k, (act, init) in enumerate(zip(acts, inits), start=1):
        h, j, i, d = f"h{k}", "jm"[k - 1], "iq"[k - 1], f"d{k}"
        lines += [f"weight W{k}^{j}_{i} : {d}, {d}", f"weight V{k}^{j}_{below_ix} : {d}, {below_dim}"]
        if init == "zero":
            lines.append(f"{h}(0)^{j} = 0")
        else:
            lines.append(f"{'input ' if init == 'data' else 'weight'} {h}(0)^{j} : {d}")
        lines.append(f"{h}(t)^{j} = {act}(W{k}^{j}_{i} {h}(t-1)^{i} + V{k}^{j}_{below_ix} {below}(t)^{below_ix})"
                     "   for t = 1..T")
        below, below_ix, below_dim = h, j, d
    lines.append(f"weight U^l_{below_ix} : c, {below_dim}")
    if all_steps:
        lines += [f"p(t)^l = U^l_{below_ix} {below}(t)^{below_ix}   for t = 1..T",
                  f"f = sum_t({objective}(p(t), y(t)))"]
    else:
        lines += [f"p^l = U^l_{below_ix} {below}(T)^{below_ix}", f"f = {objective}(p, y)"]
    return "\n".join(lines) + "\n"


def random_cnn(seed: int) -> str:
    """A 1-D or 2-D convolution (valid padding), 0–2 hidden dense layers and a readout, as .ein text."""
    rng = random.Random(1000 + seed)
    two_d = rng.random() < 0.5
    stride, A = rng.randint(1, 2), rng.randint(1, 3)
    C, O, c = rng.randint(1, 2), rng.randint(1, 2), rng.randint(1, 3)
    act = rng.choice(ACTS)
    dense = [(rng.randint(1, 3), rng.choice(ACTS)) for _ in range(rng.randint(0, 2))]
    objective = rng.choice(OBJECTIVES)
    # positions P along each axis: the input length N = A + stride (P - 1)
    P = rng.randint(1, 2) if two_d else rng.randint(1, 3)
    N = A + stride * (P - 1)
    pos = (f"{stride}u+a", f"{stride}w+b") if stride != 1 else ("u+a", "w+b")
    lines = [f"# cnn seed {seed}: {'2-D' if two_d else '1-D'} stride {stride} kernel {A} channels {C}->{O} "
             f"{act} dense {dense} {objective}",
             f"dims N = {N}, A = {A}, C = {C}, O = {O}, c = {c}"
             + "".join(f", n{k + 1} = {w}" for k, (w, _) in enumerate(dense)),
             "label  y^l : c"]
    if two_d:
        lines += ["input  x^{c,u,w} : C, N, N", "weight K^o_{c,a,b} : O, C, A, A",
                  f"v^{{o,u,w}} = {act}(K^o_{{c,a,b}} x^{{c,{pos[0]},{pos[1]}}})"]
        flat, flat_shape = "o,u,w", f"O, {P}, {P}"
    else:
        lines += ["input  x^{c,u} : C, N", "weight K^o_{c,a} : O, C, A",
                  f"v^{{o,u}} = {act}(K^o_{{c,a}} x^{{c,{pos[0]}}})"]
        flat, flat_shape = "o,u", f"O, {P}"
    below, below_ix, below_shape = "v", flat, flat_shape
    for k, (w, a) in enumerate(dense, start=1):
        j = "jm"[k - 1]
        lines += [f"weight W{k}^{j}_{{{below_ix}}} : n{k}, {below_shape}",
                  f"h{k}^{j} = {a}(W{k}^{j}_{{{below_ix}}} {below}^{{{below_ix}}})"]
        below, below_ix, below_shape = f"h{k}", j, f"n{k}"
    lines += [f"weight U^l_{{{below_ix}}} : c, {below_shape}",
              f"p^l = U^l_{{{below_ix}}} {below}^{{{below_ix}}}", f"f = {objective}(p, y)"]
    return "\n".join(lines) + "\n"


def random_token(seed: int) -> str:
    """Token-wise layers and/or self-attention over T tokens, pooled, as .ein text (from ``seed``)."""
    rng = random.Random(2000 + seed)
    T, n, c = rng.randint(2, 4), rng.randint(1, 3), rng.randint(1, 3)
    dims = {"t": T, "n": n, "c": c}
    layer, attention = rng.random() < 0.7, rng.random() < 0.6
    if not (layer or attention):
        layer = True  # at least one weight shared over the positions
    decls, defs, what = ["input  X^s_i : t, n", "label  y^l : c"], [], []
    cur, cur_dim = "X", "n"
    if layer:
        h, act = rng.randint(1, 3), rng.choice(TOKEN_ACTS)
        dims["h"] = h
        residual = h == n and rng.random() < 0.5
        decls.append("weight W1^j_i : h, n")
        defs.append(f"Y^s_j = {'X^s_j + ' if residual else ''}{act}(W1^j_i X^s_i)")
        what.append(f"layer {act}{' residual' if residual else ''}")
        cur, cur_dim = "Y", "h"
    if attention:
        dims["d"] = rng.randint(1, 3)
        scaled = rng.random() < 0.5
        decls += [f"weight W{x}^e_j : d, {cur_dim}" for x in "QKV"]
        defs += [f"Q^s_e = WQ^e_j {cur}^s_j", f"K^s_e = WK^e_j {cur}^s_j", f"V^s_e = WV^e_j {cur}^s_j",
                 "S^{qk} = Q^q_e K^k_e" + (" / sqrt(d)" if scaled else ""),
                 "A^{qk} = softmax_k(S^{qk})", "O^q_e = A^{qk} V^k_e"]
        what.append("attention" + (" scaled" if scaled else ""))
        cur, cur_dim = "O", "d"
    pooling, objective = rng.choice(("mean", "sum", "every position")), rng.choice(OBJECTIVES)
    if pooling != "every position" and rng.random() < 0.5:  # drawn last: the draws above stay as they were
        pooling = rng.choice(("max", "min", "logsumexp"))
    if pooling == "every position":
        decls.append(f"weight U^l_{{q,j}} : c, t, {cur_dim}")
        defs.append(f"p^l = U^l_{{q,j}} {cur}^{{q,j}}")
    else:
        decls.append(f"weight U^l_j : c, {cur_dim}")
        defs.append(f"p^l = U^l_j {pooling}_q({cur}^q_j)")
    defs.append(f"f = {objective}(p, y)")
    head = f"# tokens seed {seed}: {' + '.join(what)} pooled by {pooling} {objective}"
    return "\n".join([head, "dims " + ", ".join(f"{k} = {v}" for k, v in dims.items())] + decls + defs) + "\n"


NETWORKS = ([("rnn", s) for s in range(N_RNN)] + [("cnn", s) for s in range(N_CNN)]
            + [("tokens", s) for s in range(N_TOKEN)])
GENERATORS = {"rnn": random_rnn, "cnn": random_cnn, "tokens": random_token}


def source(kind: str, seed: int) -> str:
    return GENERATORS[kind](seed)


def test_generator_covers_the_space():
    rnns = " ".join(random_rnn(s).split("\n", 1)[0] for s in range(N_RNN))
    cnns = " ".join(random_cnn(s).split("\n", 1)[0] for s in range(N_CNN))
    for word in ACTS + INITS + ("all steps", "last step") + OBJECTIVES:
        assert word in rnns, word
    assert "layers [" in rnns and any(len(random_rnn(s).split("weight W2")) > 1 for s in range(N_RNN))
    for word in ("1-D", "2-D", "stride 1", "stride 2", "kernel 1", "kernel 2", "kernel 3",
                 "channels 1->", "channels 2->", "->1", "->2", "dense []"):
        assert word in cnns, word
    assert any(random_cnn(s).count("weight W") == 2 for s in range(N_CNN))
    assert any(random_cnn(s).count("weight W") == 1 for s in range(N_CNN))
    tokens = " ".join(random_token(s).split("\n", 1)[0] for s in range(N_TOKEN))
    for word in ("layer", "residual", "attention", "attention scaled", "layer identity", "pooled by mean",
                 "pooled by sum", "pooled by every position", "pooled by max", "pooled by min",
                 "pooled by logsumexp") + OBJECTIVES:
        assert word in tokens, word


@pytest.mark.parametrize("kind,seed", default_share(NETWORKS, 2), ids=[f"{k}{s}" for k, s in NETWORKS])
def test_random_sequence_network(kind, seed):
    text = source(kind, seed)
    net = einderiv.load(f"{kind}{seed}.ein", text=text)
    report = einderiv.check(einderiv.derive(net, 2), seed=seed, batch=2 + seed % 2, form="expanded")
    assert report.ok, f"{text}\n{report.format()}"
    n = len(net.params)
    assert sum(r.name.startswith("hessian ") for r in report.rows) == n * n, text
    assert sum(r.name.startswith("gradient_factors ") for r in report.rows) == n, text
