"""Newton's method with the exact Hessian on a small network, against the same with torch.func.hessian.

    pip install -e '.[examples]'                    # torch (CPU), scikit-learn
    python examples/newton_digits.py                # 15 damped Newton steps, both ways, compared

The network is ``examples/tanh_digits.ein`` (64 → 16 tanh → 10, biases, softmax
cross-entropy: P = 1,210 parameters) on 500 of scikit-learn's digits, full batch, float64.
Each step solves (H + λI) s = −g with the exact Hessian H (Levenberg–Marquardt damping: λ
shrinks when the loss falls and grows until it does).  The run is made twice, from two
independent pipelines:

* **einderiv**: ``gradient`` and ``hessian`` of the torch module ``einderiv.codegen(...,
  backend="torch")`` writes (every block, assembled P × P);
* **torch.func**: ``torch.func.grad`` and ``torch.func.hessian`` of the same loss written in
  torch over a list of weight tensors.

The Hessians must agree to 1e-10 (relative) at every point of the run, and the two runs' losses
to 1e-8; the script reports the loss after each step and the median time of each pipeline's
derivatives per step.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import einderiv  # noqa: E402
from einderiv.runtime import load  # noqa: E402

ORDER = ("W1", "b1", "W2", "b2")


def kernels(hidden: int = 16) -> dict:
    net = einderiv.load(str(HERE / "tanh_digits.ein"), dims={"n1": hidden})
    return load(einderiv.codegen(einderiv.derive(net, 2), backend="torch"))


def digits(n: int, seed: int = 0):
    from sklearn.datasets import load_digits
    x, labels = load_digits(return_X_y=True)
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    x = torch.as_tensor(x[idx] / 16.0, dtype=torch.float64)
    return {"x": x, "y": torch.nn.functional.one_hot(torch.as_tensor(labels[idx]), 10).double()}


def flat(d: dict) -> torch.Tensor:
    return torch.cat([d[n].reshape(-1) for n in ORDER])


def unflat(v: torch.Tensor, shapes: dict) -> dict:
    out, at = {}, 0
    for n in ORDER:
        size = int(np.prod(shapes[n]))
        out[n] = v[at:at + size].reshape(shapes[n])
        at += size
    return out


def einderiv_derivatives(mod: dict):
    """(loss, gradient, Hessian) of the flat parameter vector from the generated module."""
    shapes = mod["PARAMS"]

    def derivatives(theta, data):
        params = unflat(theta, shapes)
        H = mod["hessian"](params, data)
        full = torch.cat([torch.cat([H[(a, b)].reshape(H[(a, b)].shape[:len(shapes[a])].numel(), -1)
                                     for b in ORDER], dim=1) for a in ORDER], dim=0)
        return mod["objective"](params, data).mean(), flat(mod["gradient"](params, data)), full
    return derivatives


def torch_loss(Ws, data):
    W1, b1, W2, b2 = Ws
    p = torch.tanh(data["x"] @ W1.T + b1) @ W2.T + b2
    return (torch.logsumexp(p, dim=-1) - (data["y"] * p).sum(-1)).mean()


def torch_derivatives(shapes: dict):
    """(loss, gradient, Hessian) from torch.func over a list of weights."""
    sizes = [int(np.prod(shapes[n])) for n in ORDER]

    def derivatives(theta, data):
        Ws = [unflat(theta, shapes)[n] for n in ORDER]
        g = torch.func.grad(torch_loss)(Ws, data)
        H = torch.func.hessian(torch_loss)(Ws, data)
        full = torch.cat([torch.cat([H[i][j].reshape(sizes[i], sizes[j]) for j in range(4)], dim=1)
                          for i in range(4)], dim=0)
        return torch_loss(Ws, data), torch.cat([x.reshape(-1) for x in g]), full
    return derivatives


def newton(derivatives, loss, theta, data, steps: int, damping: float = 1e-2, log=None):
    """Levenberg–Marquardt-damped Newton steps: solve (H + λI) s = −g; accept s if the loss falls
    (then λ/3), else λ·4 and solve again.  Returns the points visited, the losses and the time
    of each (loss, gradient, Hessian) evaluation."""
    points, losses, times = [theta], [float(loss(theta, data))], []
    lam = damping
    for step in range(steps):
        t0 = time.perf_counter()
        f, g, H = derivatives(theta, data)
        times.append(time.perf_counter() - t0)
        eye = torch.eye(len(g), dtype=H.dtype)
        while True:
            s = torch.linalg.solve(H + lam * eye, -g)
            new = float(loss(theta + s, data))
            if new < float(f):
                lam = max(lam / 3, 1e-6)
                break
            lam *= 4
        theta = theta + s
        points.append(theta)
        losses.append(new)
        if log:
            log(f"step {step + 1:3d}: loss {new:.6f}  (λ = {lam:.3g})")
    return points, losses, times


def run(steps: int = 15, samples: int = 500, hidden: int = 16, seed: int = 0, log=print) -> dict:
    torch.manual_seed(seed)
    mod = kernels(hidden)
    data = digits(samples, seed)
    shapes = mod["PARAMS"]
    g = torch.Generator().manual_seed(seed)
    theta = 0.3 * torch.randn(sum(int(np.prod(s)) for s in shapes.values()), generator=g, dtype=torch.float64)

    def loss(th, d):
        return mod["objective"](unflat(th, shapes), d).mean()
    ours_d, theirs_d = einderiv_derivatives(mod), torch_derivatives(shapes)
    ours = newton(ours_d, loss, theta, data, steps, log=log)
    theirs = newton(theirs_d, loss, theta, data, steps)
    hdiff = 0.0  # both Hessians at every point of the einderiv run
    for point in ours[0][:-1]:
        a, b = ours_d(point, data)[2], theirs_d(point, data)[2]
        hdiff = max(hdiff, float((a - b).abs().max()) / max(1.0, float(b.abs().max())))
    return {"P": len(theta), "losses": ours[1], "torch_losses": theirs[1], "hessian_difference": hdiff,
            "hessian_s": float(np.median(ours[2])), "torch_hessian_s": float(np.median(theirs[2]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    r = run(args.steps, args.samples, args.hidden, args.seed)
    print(f"P = {r['P']}: loss {r['losses'][0]:.6f} -> {r['losses'][-1]:.6f} in {args.steps} Newton steps "
          f"(torch.func: {r['torch_losses'][-1]:.6f})")
    print(f"largest difference of a Hessian from torch.func.hessian's at the same point: "
          f"{r['hessian_difference']:.2e}")
    print(f"time per step's derivatives (loss, gradient, P × P Hessian; median, one thread): einderiv "
          f"{r['hessian_s'] * 1e3:.1f} ms, torch.func {r['torch_hessian_s'] * 1e3:.1f} ms "
          f"(einderiv / torch.func = {r['hessian_s'] / r['torch_hessian_s']:.3f})")
    gap = max(abs(a - b) for a, b in zip(r["losses"], r["torch_losses"]))
    print(f"largest difference between the two runs' losses: {gap:.2e}")
    if not (r["hessian_difference"] <= 1e-10 and gap <= 1e-8):
        print("error: the Hessians differ by more than 1e-10, or the runs' losses by more than 1e-8", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
