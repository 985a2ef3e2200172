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
