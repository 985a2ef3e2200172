"""Hand-written baselines of ``benchmarks/run.py`` for the tanh MLP with softmax cross-entropy (no biases).

NumPy, written the way a careful person writes them by hand: matmul backprop, the R-operator
(Pearlmutter) for the Hessian-vector product, and the exact Gauss–Newton diagonal with the
softmax Hessian factored once at the top, diag(s) − s sᵀ = AᵀA with A = diag(√s) − √s sᵀ, so
that c rows are back-propagated (B × c × h per layer).  torch and JAX losses take a *list* of
weight tensors, as their users write them; BackPACK's ``DiagGGNExact`` runs on an
``nn.Sequential``.  Every one is checked against einderiv's result before it is timed.
"""
from __future__ import annotations

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - optional
    torch = None
try:
    import jax
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - optional
    jax = None
try:
    import backpack
    import backpack.extensions
except ImportError:  # pragma: no cover - optional
    backpack = None


def weights(params):
    return [params[f"W{k}"] for k in range(1, len(params) + 1)]


def _forward(Ws, x):
    acts = [x]
    for W in Ws[:-1]:
        acts.append(np.tanh(acts[-1] @ W.T))
    p = acts[-1] @ Ws[-1].T
    e = np.exp(p - p.max(axis=1, keepdims=True))
    return acts, e / e.sum(axis=1, keepdims=True)


def backprop(params, data):
    """Batch-mean gradient by matmul backprop."""
    Ws = weights(params)
    x, y = data["x"], data["y"]
    acts, s = _forward(Ws, x)
    d = (s - y) / x.shape[0]
    grads = [None] * len(Ws)
    for k in range(len(Ws) - 1, -1, -1):
        grads[k] = d.T @ acts[k]
        if k:
            d = (d @ Ws[k]) * (1 - acts[k] ** 2)
    return {f"W{k + 1}": g for k, g in enumerate(grads)}


def r_operator(params, data, vector):
    """Batch-mean Hessian-vector product by the R-operator: tangents forward, R-adjoints back."""
    Ws, Vs = weights(params), weights(vector)
    x, y = data["x"], data["y"]
    B = x.shape[0]
    acts, s = _forward(Ws, x)
    racts = [np.zeros_like(x)]
    for k, (W, V) in enumerate(zip(Ws[:-1], Vs[:-1])):
        rz = racts[-1] @ W.T + acts[k] @ V.T
        racts.append((1 - acts[k + 1] ** 2) * rz)
    rp = racts[-1] @ Ws[-1].T + acts[-1] @ Vs[-1].T
    g = (s - y) / B
    rg = (s * rp - s * (s * rp).sum(axis=1, keepdims=True)) / B
    out = [None] * len(Ws)
    for k in range(len(Ws) - 1, -1, -1):
        out[k] = rg.T @ acts[k] + g.T @ racts[k]
        if k:
            ga, rga = g @ Ws[k], rg @ Ws[k] + g @ Vs[k]
            da = 1 - acts[k] ** 2
            g, rg = ga * da, rga * da - 2 * acts[k] * racts[k] * ga
    return {f"W{k + 1}": v for k, v in enumerate(out)}


def ggn_diagonal(params, data):
    """Exact batch-mean GGN diagonal, the softmax Hessian factored once as AᵀA at the top."""
    Ws = weights(params)
    x = data["x"]
    B = x.shape[0]
    acts, s = _forward(Ws, x)
    q = np.sqrt(s)
    G = np.einsum("bc,cd->bcd", q, np.eye(s.shape[1])) - q[:, :, None] * s[:, None, :]  # A per sample
    out = [None] * len(Ws)
    for k in range(len(Ws) - 1, -1, -1):
        out[k] = (G * G).sum(axis=1).T @ (acts[k] * acts[k]) / B
        if k:
            G = (G @ Ws[k]) * (1 - acts[k] ** 2)[:, None, :]
    return {f"W{k + 1}": v for k, v in enumerate(out)}


def torch_loss(Ws, x, y):
    """Mean softmax cross-entropy from a list of weight tensors (torch)."""
    h = x
    for W in Ws[:-1]:
        h = torch.tanh(h @ W.T)
    p = h @ Ws[-1].T
    return (torch.logsumexp(p, dim=-1) - (y * p).sum(-1)).mean()


def jax_loss(Ws, x, y):
    """Mean softmax cross-entropy from a list of weight arrays (JAX)."""
    h = x
    for W in Ws[:-1]:
        h = jnp.tanh(h @ W.T)
    p = h @ Ws[-1].T
    return (jax.scipy.special.logsumexp(p, axis=-1) - (y * p).sum(-1)).mean()


def backpack_diag_ggn(params, data):
    """BackPACK's DiagGGNExact on an nn.Sequential of the same network: a function that runs one
    backward pass with the extension and returns the diagonals (by weight name)."""
    Ws = weights(params)
    layers = []
    for k, W in enumerate(Ws):
        lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W))
        layers += [lin] + ([torch.nn.Tanh()] if k < len(Ws) - 1 else [])
    model = backpack.extend(torch.nn.Sequential(*layers))
    lossfn = backpack.extend(torch.nn.CrossEntropyLoss(reduction="mean"))
    x = torch.tensor(data["x"])
    target = torch.tensor(np.argmax(data["y"], axis=1))

    def run():
        model.zero_grad()
        loss = lossfn(model(x), target)
        with backpack.backpack(backpack.extensions.DiagGGNExact()):
            loss.backward()
        return {f"W{k + 1}": lin.weight.diag_ggn_exact for k, lin in enumerate(m for m in model if
                                                                              isinstance(m, torch.nn.Linear))}
    return run
