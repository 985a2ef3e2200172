"""The training jobs in examples/, at small size: DP-SGD on digits (against a brute-force
reference and, when installed, Opacus) and damped Newton steps (against torch.func.hessian)."""
from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HAVE = {n: importlib.util.find_spec(n) is not None for n in ("torch", "sklearn", "opacus")}
pytestmark = pytest.mark.skipif(not (HAVE["torch"] and HAVE["sklearn"]),
                                reason="the examples need torch and scikit-learn: pip install '.[examples]'")
needs_opacus = pytest.mark.skipif(not HAVE["opacus"], reason="opacus is not installed")


def example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dp():
    return example("dp_sgd_digits")


def test_dp_sgd_gradient_equals_clipping_each_per_sample_gradient(dp):
    """The factored clipped sum against the textbook: form every per-sample gradient, clip it, sum,
    add the same noise.  The factored path never calls per_sample_gradient."""
    import torch
    mod = dp.kernels(hidden=6)
    (x, y, _), _ = dp.digits()
    params = dp.initial_params(mod, seed=3)
    batch = {"x": x[:24], "y": y[:24]}
    clip, sigma = 0.05, 0.7  # a small C: most samples are clipped
    psg = mod["per_sample_gradient"](params, batch)
    guarded = dict(mod, per_sample_gradient=None)  # calling it would raise TypeError
    got = dp.noisy_clipped_gradient(guarded, params, batch, clip, sigma, torch.Generator().manual_seed(7))
    flat = torch.cat([psg[n].reshape(24, -1) for n in dp.ORDER], dim=1)
    factor = (clip / (flat.norm(dim=1) + 1e-6)).clamp(max=1.0)
    assert (factor < 1).sum() >= 12
    gen = torch.Generator().manual_seed(7)
    for n in dp.ORDER:
        summed = torch.einsum("b,b...->...", factor, psg[n])
        noise = torch.normal(mean=0, std=sigma * clip, size=summed.shape, generator=gen, dtype=summed.dtype)
        want = (summed + noise) / 24
        assert float((got[n] - want).abs().max()) <= 1e-14 * max(1.0, float(want.abs().max())), n


@needs_opacus
def test_dp_sgd_noisy_gradients_equal_opacus(dp):
    r = dp.train(steps=4, batch=16, lr=0.5, clip=1.0, sigma=1.0, hidden=8, opacus=True, log=None)
    assert r["max_difference"] <= 1e-10
    assert r["step_s"] > 0 and r["opacus_step_s"] > 0


@pytest.mark.slow  # the script's command line in a fresh process; the test above checks its numbers
def test_dp_sgd_script_runs():
    args = [sys.executable, str(ROOT / "examples" / "dp_sgd_digits.py"), "--steps", "3", "--batch", "8",
            "--hidden", "4"] + (["--opacus"] if HAVE["opacus"] else [])
    run = subprocess.run(args, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "test accuracy" in run.stdout and "time per step" in run.stdout


def test_newton_steps_equal_torch_func_hessian():
    newton = example("newton_digits")
    r = newton.run(steps=3, samples=60, hidden=4, log=None)
    assert r["P"] == 64 * 4 + 4 + 4 * 10 + 10
    assert r["hessian_difference"] <= 1e-10
    assert max(abs(a - b) for a, b in zip(r["losses"], r["torch_losses"])) <= 1e-8
    assert all(b < a for a, b in zip(r["losses"], r["losses"][1:]))  # every accepted step lowers the loss


@pytest.mark.slow  # the script's command line in a fresh process; the test above checks its numbers
def test_newton_script_runs():
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "newton_digits.py"), "--steps", "2",
                          "--samples", "40", "--hidden", "3"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Newton steps" in run.stdout and "torch.func" in run.stdout
