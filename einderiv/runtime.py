"""Running a generated module of any backend from NumPy arrays (the checks, Dask, the tests).

A module that :func:`einderiv.codegen` writes for ``numpy``, ``torch`` or ``jax`` has one
contract over that library's arrays.  :func:`load` executes its source;
:func:`numpy_view` wraps it so that every function takes and returns NumPy arrays (dicts,
lists and tuples of them), converting on the way in and out — what lets one finite-difference
check (:mod:`einderiv.numcheck`) and one Dask driver (:mod:`einderiv.dask`) serve every
backend.  A view's calls run in ``dtype`` (float64 by default; for JAX that turns on
``jax_enable_x64``); with ``jit=True`` a JAX module's public functions (the contract:
``gradient``, ``hessian``, …) are compiled with ``jax.jit`` first (``third_derivative``'s
block key and ``third_derivatives``' orderings static), which is also how the checks prove
them jit-compatible; the private ``_forward`` and ``_<quantity>`` functions run op by op.  Torch and JAX are imported only when a view of their module is made.

Example:
    >>> mod = numpy_view(load(einderiv.codegen(d, backend="torch")), "torch")  # doctest: +SKIP
    >>> mod["gradient"](params, data)["W1"]                                        # doctest: +SKIP
    array([[...]])
"""
from __future__ import annotations

import importlib
import inspect
from typing import Callable

import numpy as np

from .emit.backends import BACKENDS
from .errors import UsageError

__all__ = ["load", "numpy_view", "to_numpy", "converter", "library", "BACKENDS"]


def load(source: str) -> dict:
    """Execute a generated module's source in a fresh namespace."""
    ns: dict = {"__name__": "einderiv_generated"}
    exec(compile(source, "<einderiv generated>", "exec"), ns)
    return ns


def library(backend: str):
    """The array library of ``backend``, imported (an :class:`~einderiv.errors.UsageError` names
    the extra to install when it is missing)."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}'; expected one of {', '.join(BACKENDS)}")
    try:
        return importlib.import_module(backend)
    except ImportError as exc:
        raise UsageError(f"the {backend} backend needs {backend}: pip install 'einderiv[{backend}]'") from exc


def _walk(x, leaf: Callable):
    """``x`` with every array leaf mapped by ``leaf`` (dicts, lists and tuples rebuilt)."""
    if isinstance(x, dict):
        return {k: _walk(v, leaf) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_walk(v, leaf) for v in x)
    return leaf(x)


def converter(backend: str, dtype=np.float64, device=None) -> Callable:
    """A function that turns NumPy arrays (in dicts, lists, tuples) into ``backend`` arrays of
    ``dtype`` (torch: on ``device``); other values pass through."""
    lib = library(backend)
    if backend == "numpy":
        return lambda x: _walk(x, lambda a: np.asarray(a, dtype) if isinstance(a, np.ndarray) else a)
    if backend == "torch":
        tdtype = getattr(lib, np.dtype(dtype).name)
        return lambda x: _walk(x, lambda a: lib.as_tensor(a, dtype=tdtype, device=device)
                               if isinstance(a, np.ndarray) else a)
    if np.dtype(dtype) == np.float64:
        lib.config.update("jax_enable_x64", True)  # float64 needs it; a process-wide switch
    jnp = importlib.import_module("jax.numpy")
    return lambda x: _walk(x, lambda a: jnp.asarray(a, dtype=dtype) if isinstance(a, np.ndarray) else a)


def to_numpy(x):
    """``x`` with every torch or JAX array (in dicts, lists, tuples) turned into a NumPy array."""
    def leaf(a):
        if hasattr(a, "detach"):  # torch
            return a.detach().cpu().numpy()
        if hasattr(a, "__array__") and not isinstance(a, np.ndarray):
            return np.asarray(a)
        return a
    return _walk(x, leaf)


def _jitted(backend: str, name: str, fn: Callable) -> Callable:
    if backend != "jax" or name.startswith("_") or name == "expand_factors":  # the contract's functions
        return fn
    jax = library("jax")
    if name == "third_derivative":
        return jax.jit(fn, static_argnums=2)
    if name == "hessian" and "blocks" in inspect.signature(fn).parameters:  # the blocks asked for are static
        compiled = jax.jit(fn, static_argnames="blocks")
        return lambda params, data, blocks=None: compiled(params, data, blocks=None if blocks is None else
                                                          tuple(tuple(w) if isinstance(w, list) else w for w in blocks))
    if name == "third_derivatives":  # the orderings asked for are static: a tuple (hashable)
        compiled = jax.jit(fn, static_argnums=2)
        return lambda params, data, wrts=None: compiled(params, data, None if wrts is None else
                                                        tuple(tuple(w) for w in wrts))
    return jax.jit(fn)


def numpy_view(mod: dict, backend: str, dtype=np.float64, device=None, jit: bool = False) -> dict:
    """``mod`` (a loaded module of ``backend``) with every function taking and returning NumPy
    arrays, computed in ``dtype`` (see the module docstring); constants (``PARAMS``, …) as they are."""
    if backend == "numpy":
        return mod
    to = converter(backend, dtype, device)
    out = {}
    for name, value in mod.items():
        if callable(value) and not isinstance(value, type) and getattr(value, "__module__", "") == "einderiv_generated":
            fn = _jitted(backend, name, value) if jit else value
            out[name] = (lambda f: lambda *args: to_numpy(f(*to(args))))(fn)
        else:
            out[name] = value
    return out
