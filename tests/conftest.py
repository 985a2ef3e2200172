"""Shared test setup: random parameters, data and direction vectors for a generated module.

Every numeric test draws the same way — parameters ``N(0, 0.5²)`` (or another scale),
then a batch of data (standard normal, or uniform on [0, 1) where labels must be
valid for every built-in objective), then perhaps a direction vector ``N(0, 1)`` —
from one ``np.random.default_rng(seed)`` stream in that order.  The ``draw`` fixture
is that recipe; a test that needs something else (one-hot labels, array subclasses)
still writes its own.

Helper modules of the suite (``netbuild``, ``reference``) are imported by name: pytest's
default ``prepend`` import mode puts this folder on ``sys.path`` already; the insert
below keeps that true under ``--import-mode=importlib`` too.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def random_params(shapes: dict, rng: np.random.Generator, scale: float = 0.5) -> dict:
    """``name -> N(0, scale²)`` array of each shape (a module's ``PARAMS``)."""
    return {n: rng.normal(0.0, scale, s) for n, s in shapes.items()}


def random_data(shapes: dict, rng: np.random.Generator, batch: int, dist: str = "normal") -> dict:
    """``name -> (batch, *shape)`` array: ``dist`` is "normal" (N(0, 1)) or "uniform" ([0, 1))."""
    if dist == "normal":
        return {n: rng.normal(0.0, 1.0, (batch,) + tuple(s)) for n, s in shapes.items()}
    if dist == "uniform":
        return {n: rng.uniform(0.0, 1.0, (batch,) + tuple(s)) for n, s in shapes.items()}
    raise ValueError(f"unknown distribution {dist!r}")


def draw_module_inputs(module: dict, seed: int, batch: int = 3, data: str = "normal", scale: float = 0.5,
                       vector: bool = False):
    """``(params, data)`` for a generated module, and a direction ``vector`` (one per parameter,
    N(0, 1)) as a third item if asked: all from ``np.random.default_rng(seed)``, in that order."""
    rng = np.random.default_rng(seed)
    params = random_params(module["PARAMS"], rng, scale)
    batch_data = random_data(module["INPUTS"], rng, batch, data)
    if not vector:
        return params, batch_data
    return params, batch_data, random_params(module["PARAMS"], rng, 1.0)


@pytest.fixture
def draw():
    """``draw(module, seed, batch=3, data="normal", scale=0.5, vector=False)``: see
    :func:`draw_module_inputs`."""
    return draw_module_inputs


#: JAX variants that compile many XLA programs (4–12 s of CPU each on the 2-core machine): left out of the
#: README's default run, run by .ci/run (-m slow); the same tests' NumPy and torch variants stay in it
HEAVY_JAX = {
    "tests/test_offsets.py::test_window_helpers_against_their_definition[jax]",
    "tests/test_saturation.py::test_other_backends_are_finite_at_saturation[sigmoid-jax]",
    "tests/test_saturation.py::test_float32_modules_are_finite_at_saturation[sigmoid-jax]",
    "tests/test_crashes.py::test_objective_arguments_that_read_weights_only[jax]",
    "tests/test_backends.py::test_scalar_weights_traces_divisions_and_selection_arrays[exotic-jax]",
    "tests/test_backends.py::test_scalar_weights_traces_divisions_and_selection_arrays[stacked_conv-jax]",
    "tests/test_matrix_functions.py::test_a_sample_dependent_argument_passes_check[jax]",
    "tests/test_offsets.py::test_other_backends_agree[causal_stack-jax]",
}


def pytest_collection_modifyitems(config, items):
    """Mark :data:`HEAVY_JAX` slow (a listed test that no longer exists fails the run: keep the list true)."""
    found = set()
    for item in items:
        if item.nodeid in HEAVY_JAX:
            item.add_marker(pytest.mark.slow)
            found.add(item.nodeid)
    selected_everything = not config.getoption("keyword") and not config.args[1:] and \
        all(str(a).rstrip("/").endswith("tests") for a in config.args)
    if selected_everything and found != HEAVY_JAX:
        raise pytest.UsageError(f"conftest.HEAVY_JAX names tests that do not exist: {sorted(HEAVY_JAX - found)}")
