"""Differentially private SGD on scikit-learn's digits, with kernels einderiv writes for torch.

    pip install -e '.[examples]'                     # torch (CPU), scikit-learn, opacus
    python examples/dp_sgd_digits.py                 # train, report accuracy and time per step
    python examples/dp_sgd_digits.py --opacus        # and the same steps through Opacus, compared

The network is ``examples/mlp_digits.ein`` (64 → 32 ReLU → 10, biases, softmax cross-entropy);
``einderiv.codegen(..., backend="torch")`` writes its kernels.  Each DP-SGD step (Abadi et al.
2016, with Opacus's conventions) on a batch of B samples:

1. per-sample gradient norms ‖g_b‖ = (Σ_θ ‖∂f_b/∂θ‖²)^½ from ``per_sample_gradient_norms``;
2. clip factors c_b = min(1, C / (‖g_b‖ + 10⁻⁶));
3. the clipped sum Σ_b c_b g_b from ``gradient_factors``: each per-sample gradient is a sum of
   outer products of per-sample factors (δ_b ⊗ x_b for a dense layer), so Σ_b c_b δ_b ⊗ x_b is one
   contraction over b with the weights c — the B × P per-sample gradients are never formed;
4. Gaussian noise of standard deviation σC per parameter (drawn from a ``torch.Generator`` in
   the order of ``torch.nn.Sequential.parameters()``, as Opacus draws it), and division by B.

With ``--opacus`` the same model (``nn.Sequential`` of ``nn.Linear``/``nn.ReLU`` holding the same
weights) is stepped by Opacus's ``GradSampleModule`` + ``DPOptimizer`` on the same batches with a
generator of the same seed: the noisy gradients must agree to 1e-10 (float64), every step, and
the script reports the time per step of each.  Batches are drawn uniformly without replacement
(fixed size B, ``expected_batch_size=B`` for Opacus); privacy accounting is left to the user.
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

#: the .ein parameters in the order of nn.Sequential(Linear, ReLU, Linear).parameters()
ORDER = ("W1", "b1", "W2", "b2")


def kernels(hidden: int = 32) -> dict:
    """The torch module einderiv writes for examples/mlp_digits.ein (gradients only)."""
    net = einderiv.load(str(HERE / "mlp_digits.ein"), dims={"n1": hidden})
    return load(einderiv.codegen(einderiv.derive(net, 1), backend="torch"))


def digits(dtype=torch.float64, seed: int = 0):
    """scikit-learn's bundled digits (no download), pixels scaled to [0, 1], one-hot labels, split
    into 1,500 training and 297 test images."""
    from sklearn.datasets import load_digits
    x, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, labels = torch.as_tensor(x[order] / 16.0, dtype=dtype), torch.as_tensor(labels[order])
    y = torch.nn.functional.one_hot(labels, 10).to(dtype)
    return (x[:1500], y[:1500], labels[:1500]), (x[1500:], y[1500:], labels[1500:])


def initial_params(mod: dict, dtype=torch.float64, seed: int = 0) -> dict:
    """nn.Linear's default initialisation, drawn once."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for w, b in (("W1", "b1"), ("W2", "b2")):
        out, inp = mod["PARAMS"][w]
        bound = 1 / np.sqrt(inp)
        params[w] = (torch.rand(out, inp, generator=g, dtype=dtype) * 2 - 1) * bound
        params[b] = (torch.rand(out, generator=g, dtype=dtype) * 2 - 1) * bound
    return params


def weighted_sum(mod: dict, name: str, terms: list, weights: torch.Tensor) -> torch.Tensor:
    """Σ_b weights[b] · (per-sample gradient of ``name``)[b], from its outer-product factors
    (``gradient_factors(...)[name]``): one einsum per term, never a (B, *shape) array."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = letters[:len(mod["PARAMS"][name])]
    total = 0.0
    for term, axes in zip(terms, mod["GRADIENT_FACTOR_AXES"][name]):
        subs = ",".join("Z" + "".join(letters[a] for a in ax) for ax in axes)
        total = total + torch.einsum(f"{subs},Z->{out}", *term, weights)
    return total


def noisy_clipped_gradient(mod: dict, params: dict, batch: dict, clip: float, sigma: float,
                           generator: torch.Generator) -> dict:
    """One DP-SGD gradient (see the module docstring): name → tensor of the parameter's shape."""
    norms = mod["per_sample_gradient_norms"](params, batch)
    total = torch.sqrt(sum(norms[n] ** 2 for n in ORDER))
    factor = (clip / (total + 1e-6)).clamp(max=1.0)
    factors = mod["gradient_factors"](params, batch)
    B = batch["x"].shape[0]
    out = {}
    for name in ORDER:  # the noise is drawn in the order of the torch module's parameters
        summed = weighted_sum(mod, name, factors[name], factor)
        noise = torch.normal(mean=0, std=sigma * clip, size=summed.shape, generator=generator, dtype=summed.dtype)
        out[name] = (summed + noise) / B
    return out


class OpacusTwin:
    """The same network as an ``nn.Sequential`` stepped by Opacus (``GradSampleModule`` and
    ``DPOptimizer`` over plain SGD), from the same weights and noise seed."""

    def __init__(self, params: dict, lr: float, clip: float, sigma: float, batch: int, seed: int):
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer
        W1, W2 = params["W1"], params["W2"]
        model = torch.nn.Sequential(torch.nn.Linear(W1.shape[1], W1.shape[0]), torch.nn.ReLU(),
                                    torch.nn.Linear(W2.shape[1], W2.shape[0])).to(W1.dtype)
        with torch.no_grad():
            for p, name in zip(model.parameters(), ORDER):
                p.copy_(params[name])
        self.model = GradSampleModule(model)
        self.loss = torch.nn.CrossEntropyLoss()
        self.optimizer = DPOptimizer(torch.optim.SGD(self.model.parameters(), lr=lr), noise_multiplier=sigma,
                                     max_grad_norm=clip, expected_batch_size=batch, loss_reduction="mean",
                                     generator=torch.Generator().manual_seed(seed))

    def step(self, x, labels) -> dict:
        """One DP-SGD step; the noisy gradient it applied, by .ein name."""
        self.optimizer.zero_grad()
        self.loss(self.model(x), labels).backward()
        self.optimizer.pre_step()
        grads = {name: p.grad.detach().clone() for name, p in zip(ORDER, self.model.parameters())}
        self.optimizer.original_optimizer.step()
        return grads


def accuracy(mod: dict, params: dict, x, labels) -> float:
    p = mod["_forward"](params, {"x": x, "y": torch.zeros(len(x), 10, dtype=x.dtype)})["p"]
    return float((p.argmax(dim=1) == labels).double().mean())


def train(steps: int, batch: int, lr: float, clip: float, sigma: float, seed: int = 0, hidden: int = 32,
          opacus: bool = False, log=print) -> dict:
    """DP-SGD for ``steps`` steps; with ``opacus``, Opacus steps alongside and every noisy gradient
    is compared.  Returns accuracies, times per step and the largest difference from Opacus."""
    torch.manual_seed(seed)
    mod = kernels(hidden)
    (x, y, labels), (xt, _, lt) = digits()
    params = initial_params(mod, seed=seed)
    twin = OpacusTwin(params, lr, clip, sigma, batch, seed + 1) if opacus else None
    generator = torch.Generator().manual_seed(seed + 1)
    sampler = np.random.default_rng(seed)
    ours, theirs, diff = [], [], 0.0
    for step in range(steps):
        idx = torch.as_tensor(sampler.choice(len(x), batch, replace=False))
        data = {"x": x[idx], "y": y[idx]}
        t0 = time.perf_counter()
        grad = noisy_clipped_gradient(mod, params, data, clip, sigma, generator)
        params = {n: params[n] - lr * grad[n] for n in ORDER}
        ours.append(time.perf_counter() - t0)
        if twin is not None:
            t0 = time.perf_counter()
            g = twin.step(data["x"], labels[idx])
            theirs.append(time.perf_counter() - t0)
            scale = max(1.0, max(float(g[n].abs().max()) for n in ORDER))
            diff = max(diff, max(float((grad[n] - g[n]).abs().max()) for n in ORDER) / scale)
        if log and (step + 1) % max(1, steps // 5) == 0:
            log(f"step {step + 1:4d}: test accuracy {accuracy(mod, params, xt, lt):.3f}")
    return {"train_accuracy": accuracy(mod, params, x, labels), "test_accuracy": accuracy(mod, params, xt, lt),
            "step_s": float(np.median(ours)), "opacus_step_s": float(np.median(theirs)) if theirs else None,
            "max_difference": diff if twin is not None else None, "params": params}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--clip", type=float, default=1.0, help="clipping norm C")
    ap.add_argument("--sigma", type=float, default=1.0, help="noise multiplier σ")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opacus", action="store_true", help="step Opacus alongside and compare every noisy gradient")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    r = train(args.steps, args.batch, args.lr, args.clip, args.sigma, args.seed, args.hidden, args.opacus)
    print(f"train accuracy {r['train_accuracy']:.3f}, test accuracy {r['test_accuracy']:.3f}")
    print(f"time per step (median, one thread): einderiv {r['step_s'] * 1e3:.3f} ms")
    if args.opacus:
        print(f"time per step (median, one thread): Opacus {r['opacus_step_s'] * 1e3:.3f} ms "
              f"(einderiv / Opacus = {r['step_s'] / r['opacus_step_s']:.2f})")
        print(f"largest difference of a noisy gradient from Opacus's: {r['max_difference']:.2e}")
        if not r["max_difference"] <= 1e-10:
            print("error: the noisy gradients differ from Opacus's by more than 1e-10", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
