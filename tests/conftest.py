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

from runs import drawn_in_full  # noqa: E402  (a helper module of this folder: on the path from here on)


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


#: Variants left out of the README's default run and run by .ci/run (-m slow), 1.5–12 s of CPU each on the
#: 2-core machine: JAX variants that compile many XLA programs (the same tests' NumPy and torch variants,
#: and a smaller JAX variant, stay in the default run), and the largest examples of per-example sweeps
#: whose smaller examples stay in it
HEAVY = {
    "tests/test_engine_scaling.py::test_no_emit_function_grows_faster_than_the_hessian_blocks",
    "tests/test_offsets.py::test_window_helpers_against_their_definition[jax]",
    "tests/test_saturation.py::test_other_backends_are_finite_at_saturation[sigmoid-jax]",
    "tests/test_saturation.py::test_float32_modules_are_finite_at_saturation[sigmoid-jax]",
    "tests/test_saturation.py::test_other_backends_are_finite_at_saturation[softplus-jax]",
    "tests/test_saturation.py::test_float32_modules_are_finite_at_saturation[softplus-jax]",
    "tests/test_crashes.py::test_objective_arguments_that_read_weights_only[jax]",
    "tests/test_crashes.py::test_gelu_with_erf_checks_in_every_backend[jax]",
    "tests/test_crashes.py::test_unused_and_constant_blocks_have_the_parameters_shape_in_every_function[jax]",
    "tests/test_crashes.py::test_a_network_without_data_checks_as_one_sample[jax]",
    "tests/test_backends.py::test_scalar_weights_traces_divisions_and_selection_arrays[exotic-jax]",
    "tests/test_backends.py::test_scalar_weights_traces_divisions_and_selection_arrays[stacked_conv-jax]",
    "tests/test_backends.py::test_runtime_depth_module_equals_numpy[deep_template-jax]",
    "tests/test_matrix_functions.py::test_a_sample_dependent_argument_passes_check[jax]",
    "tests/test_matrix_functions.py::test_log_det_barrier_against_its_closed_form[jax]",
    "tests/test_offsets.py::test_other_backends_agree[causal_stack-jax]",
    "tests/test_offsets.py::test_other_backends_agree[strided_same_2d-jax]",
    "tests/test_offsets.py::test_other_backends_agree[flipped_with_offset-jax]",
    "tests/test_extremes.py::test_pooling_checks_at_order_2[jax]",
    "tests/test_piecewise.py::test_huber_gradient_matches_the_reference_on_both_branches[jax]",
    "tests/test_cli.py::test_api_and_cli_agree[rnn_all_steps]",
    "tests/test_cli.py::test_api_and_cli_agree[gru_unrolled]",
    "tests/test_loops.py::test_loops_give_the_unrolled_numbers[6-rnn_all_steps]",
    "tests/test_columns.py::test_codegen_of_a_network_derives_only_what_the_module_reads"
    "[derivations/rnn_all_steps.ein-None-dims2]",
    "tests/test_columns.py::test_columns_equal_the_derived_blocks[derivations/rnn_all_steps.ein-None-dims2]",
    "tests/test_runtime_length.py::test_second_order_against_central_differences[derivations/gru.ein-5]",
    "tests/test_runtime_length.py::test_second_order_against_central_differences[derivations/gru.ein-6]",
}


def pytest_collection_modifyitems(config, items):
    """Mark :data:`HEAVY` slow (a listed test that no longer exists fails the run: keep the list true), and
    the Hypothesis properties when they draw all their examples (:func:`runs.drawn_in_full`)."""
    found = set()
    for item in items:
        if drawn_in_full(item):
            item.add_marker(pytest.mark.slow)
        if item.nodeid in HEAVY:
            item.add_marker(pytest.mark.slow)
            found.add(item.nodeid)
    selected_everything = not config.getoption("keyword") and not config.args[1:] and \
        all(str(a).rstrip("/").endswith("tests") for a in config.args)
    if selected_everything and found != HEAVY:
        raise pytest.UsageError(f"conftest.HEAVY names tests that do not exist: {sorted(HEAVY - found)}")
