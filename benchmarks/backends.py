"""Rows of ``benchmarks/run.py`` for the torch and JAX backends, against the libraries' own tools.

The same tanh MLP as run.py, generated with ``einderiv.codegen(..., backend="torch"|"jax")``;
the baselines are written the way their users write them: torch autograd and
``torch.func.vmap(grad)`` over a *list* of weight tensors, BackPACK's ``BatchL2Grad`` on an
``nn.Sequential``, ``torch.func.hessian``, ``jax.grad``/``jax.vmap`` under ``jax.jit``.  Every
result is compared with the NumPy module (or the baseline) before anything is timed.  On a
device other than the CPU every timed call ends with the device's ``synchronize()`` and the
ratios are of wall times (a GPU's work is not this process's CPU time).
"""
from __future__ import annotations

import statistics

import numpy as np

import einderiv
from einderiv.runtime import load

try:
    import torch
    import torch.func
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


def module(source_fn, backend, order, *shape):
    net = einderiv.load("mlp.ein", text=source_fn(*shape))
    return load(einderiv.codegen(einderiv.derive(net, order), backend=backend))


def _sync(device):
    """Each timed call followed by the device's synchronize (cuda, xpu, mps …): its wall time is
    then the work's.  Nothing on the CPU."""
    kind = torch.device(device).type
    if kind == "cpu":
        return lambda fn: fn
    sync = getattr(getattr(torch, kind, None), "synchronize", None)
    if sync is None:
        raise SystemExit(f"--device {device}: torch has no {kind}.synchronize() to time it with")
    return lambda fn: (lambda: (fn(), sync()))


def torch_loss(Ws, x, y):
    """The network's mean softmax cross-entropy from a list of weights (torch)."""
    h = x
    for W in Ws[:-1]:
        h = torch.tanh(h @ W.T)
    p = h @ Ws[-1].T
    return (torch.logsumexp(p, dim=-1) - (y * p).sum(-1)).mean()


def torch_rows(tab, run, mlp_source, problem, close, cfg_args, rounds, inner, device="cpu", dtype="float64"):
    """gradient vs torch autograd; per_sample_gradient_norms vs vmap(grad) and BackPACK."""
    d_in, h, L, c, B = cfg_args
    cfg = f"L={L}, h={h}, B={B}, {dtype}" + (f", {device}" if device != "cpu" else "")
    tdtype = getattr(torch, dtype)
    ref = module(mlp_source, "numpy", 1, d_in, h, L, c)
    mod = module(mlp_source, "torch", 1, d_in, h, L, c)
    params_np, data_np = problem(d_in, h, L, c, B)
    params = {k: torch.as_tensor(v, dtype=tdtype, device=device) for k, v in params_np.items()}
    data = {k: torch.as_tensor(v, dtype=tdtype, device=device) for k, v in data_np.items()}
    names = list(mod["PARAMS"])
    tol = 1e-9 if dtype == "float64" else 1e-4
    want, want_norms = ref["gradient"](params_np, data_np), ref["per_sample_gradient_norms"](params_np, data_np)
    got, norms = mod["gradient"](params, data), mod["per_sample_gradient_norms"](params, data)
    for n in names:
        close(got[n].cpu().double().numpy(), want[n], f"{cfg} torch backend gradient {n}", tol)
        close(norms[n].cpu().double().numpy(), want_norms[n], f"{cfg} torch backend norms {n}", tol)
    Ws = [params[n].clone().requires_grad_() for n in names]
    x, y = data["x"], data["y"]
    Wd = [w.detach() for w in Ws]
    per_sample = torch.func.vmap(torch.func.grad(lambda W, xb, yb: torch_loss(W, xb[None], yb[None])),
                                 in_dims=(None, 0, 0))
    sync = _sync(device)
    contenders = {
        "einderiv": sync(lambda: mod["gradient"](params, data)),
        "autograd": sync(lambda: torch.autograd.grad(torch_loss(Ws, x, y), Ws)),
        "norms": sync(lambda: mod["per_sample_gradient_norms"](params, data)),
        "vmap": sync(lambda: [g.reshape(B, -1).norm(dim=1) for g in per_sample(Wd, x, y)]),
    }
    for n, a in zip(names, torch.autograd.grad(torch_loss(Ws, x, y), Ws)):
        close(a.detach().cpu().double().numpy(), want[n], f"{cfg} autograd {n}", tol)
    for n, g in zip(names, [g.reshape(B, -1).norm(dim=1) for g in per_sample(Wd, x, y)]):
        close(g.cpu().double().numpy(), want_norms[n], f"{cfg} vmap(grad) norms {n}", tol)
    if backpack is not None:
        layers = []
        for k, W in enumerate(Wd):
            lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False).to(device=device, dtype=tdtype)
            with torch.no_grad():
                lin.weight.copy_(W)
            layers += [lin] + ([torch.nn.Tanh()] if k < len(Wd) - 1 else [])
        model = backpack.extend(torch.nn.Sequential(*layers))
        lossf = backpack.extend(torch.nn.CrossEntropyLoss())
        labels = y.argmax(dim=1)
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]

        def batch_l2():
            model.zero_grad()
            with backpack.backpack(backpack.extensions.BatchL2Grad()):
                lossf(model(x), labels).backward()
            return [m.weight.batch_l2 for m in linears]
        for n, sq in zip(names, batch_l2()):  # BackPACK's per-sample gradients are of f_b / B
            close((B * sq.sqrt()).detach().cpu().double().numpy(), want_norms[n], f"{cfg} BackPACK {n}", tol)
        contenders["backpack"] = sync(batch_l2)
    t = run.compare(contenders, rounds, inner)
    wall = device != "cpu"  # a GPU's work is not process CPU time: compare wall times there
    what = "torch backend: "
    tab.add(cfg, what + "gradient", run.cw(t, "einderiv"), "torch autograd, list of weights",
            run.cw(t, "autograd"), run.rx(run.ratio(t, 'einderiv', 'autograd', wall)), "≤ 1.1×")
    tab.add(cfg, what + "per_sample_gradient_norms", run.cw(t, "norms"), "torch.func vmap(grad), list of weights",
            run.cw(t, "vmap"), run.rx(run.ratio(t, 'norms', 'vmap', wall)), "≤ 0.1×")
    if "backpack" in t:
        tab.add(cfg, what + "per_sample_gradient_norms", run.cw(t, "norms"), "BackPACK BatchL2Grad",
                run.cw(t, "backpack"), run.rx(run.ratio(t, 'norms', 'backpack', wall)), "≤ 1×")


def torch_hessian_rows(tab, run, mlp_source, problem, close, cfg_args, rounds, inner, device="cpu",
                       dtype="float64"):
    """The exact Hessian (every block, assembled P × P) vs torch.func.hessian on a list of weights."""
    d_in, h, L, c, B = cfg_args
    tdtype = getattr(torch, dtype)
    mod = module(mlp_source, "torch", 2, d_in, h, L, c)
    params_np, data_np = problem(d_in, h, L, c, B)
    params = {k: torch.as_tensor(v, dtype=tdtype, device=device) for k, v in params_np.items()}
    data = {k: torch.as_tensor(v, dtype=tdtype, device=device) for k, v in data_np.items()}
    names = list(mod["PARAMS"])
    sizes = [int(np.prod(mod["PARAMS"][n])) for n in names]
    P = sum(sizes)
    cfg = f"L={L}, h={h}, B={B}, P={P}, {dtype}" + (f", {device}" if device != "cpu" else "")
    x, y = data["x"], data["y"]
    Ws = [params[n] for n in names]

    def einderiv_full():
        H = mod["hessian"](params, data)
        return torch.cat([torch.cat([H[(a, b)].reshape(sa, sb) for b, sb in zip(names, sizes)], dim=1)
                          for a, sa in zip(names, sizes)], dim=0)

    def torch_full():
        H = torch.func.hessian(lambda W: torch_loss(W, x, y))(Ws)
        return torch.cat([torch.cat([H[i][j].reshape(sa, sb) for j, sb in enumerate(sizes)], dim=1)
                          for i, sa in enumerate(sizes)], dim=0)
    close(einderiv_full().cpu().double().numpy(), torch_full().cpu().double().numpy(), f"{cfg} hessian",
          1e-9 if dtype == "float64" else 1e-4)
    sync = _sync(device)
    t = run.compare({"einderiv": sync(einderiv_full), "torch": sync(torch_full)}, rounds, inner, warmup=1)
    wall = device != "cpu"
    tab.add(cfg, "torch backend: hessian (P × P)", run.cw(t, "einderiv"), "torch.func.hessian, list of weights",
            run.cw(t, "torch"), run.rx(run.ratio(t, 'einderiv', 'torch', wall)), "≤ 0.25×")


def jax_rows(tab, run, mlp_source, problem, close, cfg_args, rounds, inner):
    """The JAX backend's gradient and norms (jit) vs jax.grad and jax.vmap(jax.grad) (jit)."""
    d_in, h, L, c, B = cfg_args
    cfg = f"L={L}, h={h}, B={B}, float64"
    jax.config.update("jax_enable_x64", True)
    ref = module(mlp_source, "numpy", 1, d_in, h, L, c)
    mod = module(mlp_source, "jax", 1, d_in, h, L, c)
    params_np, data_np = problem(d_in, h, L, c, B)
    params = {k: jnp.asarray(v) for k, v in params_np.items()}
    data = {k: jnp.asarray(v) for k, v in data_np.items()}
    names = list(mod["PARAMS"])

    def loss(Ws, x, y):
        hh = x
        for W in Ws[:-1]:
            hh = jnp.tanh(hh @ W.T)
        p = hh @ Ws[-1].T
        return (jax.scipy.special.logsumexp(p, axis=-1) - (y * p).sum(-1)).mean()
    grad = jax.jit(mod["gradient"])
    norms = jax.jit(mod["per_sample_gradient_norms"])
    jgrad = jax.jit(jax.grad(loss))
    per_sample = jax.jit(lambda Ws, x, y: [jnp.linalg.norm(g.reshape(B, -1), axis=1) for g in jax.vmap(
        jax.grad(lambda W, xb, yb: loss(W, xb[None], yb[None])), in_axes=(None, 0, 0))(Ws, x, y)])
    Ws = [params[n] for n in names]
    want, want_norms = ref["gradient"](params_np, data_np), ref["per_sample_gradient_norms"](params_np, data_np)
    for n, a, b in zip(names, jgrad(Ws, data["x"], data["y"]), per_sample(Ws, data["x"], data["y"])):
        close(np.asarray(grad(params, data)[n]), want[n], f"{cfg} jax backend gradient {n}")
        close(np.asarray(a), want[n], f"{cfg} jax.grad {n}")
        close(np.asarray(norms(params, data)[n]), want_norms[n], f"{cfg} jax backend norms {n}")
        close(np.asarray(b), want_norms[n], f"{cfg} jax vmap(grad) {n}")
    t = run.compare({
        "einderiv": lambda: jax.block_until_ready(grad(params, data)),
        "grad": lambda: jax.block_until_ready(jgrad(Ws, data["x"], data["y"])),
        "norms": lambda: jax.block_until_ready(norms(params, data)),
        "vmap": lambda: jax.block_until_ready(per_sample(Ws, data["x"], data["y"])),
    }, rounds, inner)
    tab.add(cfg, "jax backend (jit): gradient", run.cw(t, "einderiv"), "jax.grad (jit), list of weights",
            run.cw(t, "grad"), run.rx(run.ratio(t, 'einderiv', 'grad')), "—")
    tab.add(cfg, "jax backend (jit): per_sample_gradient_norms", run.cw(t, "norms"),
            "jax vmap(grad) (jit), list of weights", run.cw(t, "vmap"), run.rx(run.ratio(t, 'norms', 'vmap')), "—")
