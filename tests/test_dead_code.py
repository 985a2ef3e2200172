"""Generated modules assign nothing they never read (einderiv.emit.liveness.drop_unread).

Lowering loads every tensor a formula names (``z = t["z"]``, ``B = x.shape[0]``); the printed
formula may not read it (tanh' is written from the activation, 1 − v²).  Checked with Python's
``ast`` on the kept NumPy modules and on fresh torch and JAX modules: in every function, each
name assigned is read afterwards (or, inside a loop, anywhere in the loop)."""
from __future__ import annotations

import ast
import pathlib

import pytest

import einderiv
from einderiv.emit.kernel import Assign, Function, Loop, Module, Python, Range
from einderiv.emit.kernel_arrays import BatchSize, Item, Str, Var
from einderiv.emit.liveness import drop_unread
from einderiv.ir import Sym

ROOT = pathlib.Path(__file__).resolve().parents[1]
KEPT = sorted((ROOT / "derivations").glob("*_kernels.py"))


def never_read(source: str) -> list[str]:
    """``function: name`` for each name a function assigns and never reads (``del`` aside)."""
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef):
            continue
        stored = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        loaded = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        loop_vars = {n.target.id for n in ast.walk(fn) if isinstance(n, (ast.For, ast.comprehension))
                     and isinstance(n.target, ast.Name)}
        found += [f"{fn.name}: {name}" for name in sorted(stored - loaded - loop_vars - {"_"})]
    return found


@pytest.mark.parametrize("path", KEPT, ids=lambda p: p.stem)
def test_kept_modules_assign_nothing_they_never_read(path):
    assert never_read(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("name", ["tanh_mlp", "attention", "lstm_cell", "maxpool_cnn"])
def test_other_backends_assign_nothing_they_never_read(name, backend):
    d = einderiv.derive(einderiv.load(str(ROOT / "derivations" / f"{name}.ein")), 2)
    assert never_read(einderiv.codegen(d, backend=backend)) == []


def _load(name: str, key: str) -> Assign:
    return Assign(Var(name), Item(Var("t"), Str(key)))


def test_a_load_read_by_the_next_iteration_of_its_loop_stays():
    """In ``for k: use(z); z = t["z"]`` the load feeds the next iteration; an unread one goes, and
    a load read only through a loop's bound (``range(1, T)``) stays."""
    use_z = Assign(Var("out"), Var("z"))
    loop = Loop("k", Range(1, Sym("T")), (use_z, _load("z", "z"), _load("w", "w")))
    fn = Function("f", ("t",), "doc", (_load("T", "depth"), _load("B", "x"), loop, Python("return out")))
    got = drop_unread(Module("", (), (fn,))).items[0]
    assert got.body[0] == _load("T", "depth")  # read by the loop's bound
    assert got.body[1].body == (use_z, _load("z", "z"))  # w is never read; z is, one iteration later
    assert len(got.body) == 3  # B = … is never read
    kept = Function("g", ("t",), "doc", (Assign(Var("B"), BatchSize(Var("x"))), Python("return B")))
    assert drop_unread(Module("", (), (kept,))).items[0] == kept  # read by raw code
