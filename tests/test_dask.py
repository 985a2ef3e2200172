"""einderiv.dask: a generated module over Dask arrays on a LocalCluster of worker processes.

The batch means (gradient, hessian, hvp, ggn_diagonal) are tree reductions of per-chunk sums
and must equal the one-process NumPy result to rounding; the per-sample functions come back
as Dask arrays chunked like the data and equal the one-process values.
"""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import einderiv

pytestmark = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="dask[distributed] is not installed")
ROOT = pathlib.Path(__file__).resolve().parents[1]
B, CHUNK = 53, 7  # 8 chunks, the last of 4 samples: two levels of reduction with split_every=4


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit="1GiB")
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def problem():
    derivation = einderiv.derive(einderiv.load(str(ROOT / "derivations" / "layernorm_mlp.ein")), 2)
    source = einderiv.codegen(derivation)
    ns: dict = {}
    exec(source, ns)
    rng = np.random.default_rng(0)
    params = {k: rng.normal(0, 0.5, s) for k, s in ns["PARAMS"].items()}
    data = {k: rng.normal(0, 1, (B,) + s) for k, s in ns["INPUTS"].items()}
    vector = {k: rng.normal(0, 1, s) for k, s in ns["PARAMS"].items()}
    return derivation, source, ns, params, data, vector


def _dask_data(data):
    import dask.array as da
    return {k: da.from_array(v, chunks=(CHUNK,) + v.shape[1:]) for k, v in data.items()}


def test_batch_means_equal_the_one_process_result(client, problem):
    import dask
    from distributed import get_task_stream

    from einderiv.dask import Kernels
    _, source, ns, params, data, vector = problem
    kernels = Kernels(source, split_every=4)
    lazy = {"gradient": kernels.gradient(params, _dask_data(data)),
            "hessian": kernels.hessian(params, _dask_data(data)),
            "hvp": kernels.hvp(params, _dask_data(data), vector),
            "ggn_diagonal": kernels.ggn_diagonal(params, _dask_data(data))}
    with get_task_stream(client) as stream:
        (got,) = dask.compute(lazy)
    ran = [t for t in stream.data if str(t["key"]).startswith("_chunk_sum")]
    assert len(ran) == 4 * 8 and all(t["worker"] in client.scheduler_info()["workers"] for t in ran)
    for fn, result in got.items():
        want = ns[fn](params, data, *((vector,) if fn == "hvp" else ()))
        assert set(result) == set(want), fn
        for k in want:
            assert result[k].shape == want[k].shape
            np.testing.assert_allclose(result[k], want[k], rtol=1e-12, atol=1e-14, err_msg=f"{fn} {k}")


def test_reduction_is_a_tree_of_per_chunk_sums(problem):
    from einderiv.dask import Kernels
    _, source, _, params, data, _ = problem
    grad = Kernels(source, split_every=4).gradient(params, _dask_data(data))
    names = [str(k[0] if isinstance(k, tuple) else k) for k in dict(next(iter(grad.values())).dask)]
    assert sum(n.startswith("_chunk_sum") for n in names) == -(-B // CHUNK) == 8
    assert sum(n.startswith("_add") for n in names) == 2 + 1  # 8 sums -> 2 -> 1
    with pytest.raises(ValueError, match="split_every must be at least 2"):
        Kernels(source, split_every=1)


def test_per_sample_functions_are_dask_arrays_chunked_like_the_data(client, problem):
    import dask
    from einderiv.dask import Kernels
    _, source, ns, params, data, _ = problem
    kernels = Kernels(source)
    norms = kernels.per_sample_gradient_norms(params, _dask_data(data))
    objective = kernels.objective(params, _dask_data(data))
    psg = kernels.per_sample_gradient(params, _dask_data(data))
    assert objective.chunks == ((CHUNK,) * 7 + (B - 7 * CHUNK,),)
    assert all(v.chunks[0] == objective.chunks[0] for v in norms.values())
    got_norms, got_objective, got_psg = dask.compute(norms, objective, psg)
    np.testing.assert_allclose(got_objective, ns["objective"](params, data), rtol=1e-12)
    for k, want in ns["per_sample_gradient_norms"](params, data).items():
        np.testing.assert_allclose(got_norms[k], want, rtol=1e-12)
    for k, want in ns["per_sample_gradient"](params, data).items():
        np.testing.assert_allclose(got_psg[k], want, rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_a_torch_module_runs_on_the_workers(client, problem):
    import dask
    from einderiv.dask import Kernels
    derivation, _, ns, params, data, _ = problem
    kernels = Kernels(einderiv.codegen(derivation, backend="torch"))
    assert kernels.backend == "torch"
    (got,) = dask.compute(kernels.gradient(params, _dask_data(data)))
    for k, want in ns["gradient"](params, data).items():
        np.testing.assert_allclose(got[k], want, rtol=1e-12, atol=1e-14)


def test_inputs_that_do_not_line_up_are_refused(problem):
    import dask.array as da
    from einderiv.dask import Kernels
    _, source, _, params, data, _ = problem
    bad = dict(_dask_data(data))
    bad["y"] = da.from_array(data["y"][:-1], chunks=CHUNK)
    with pytest.raises(ValueError, match="has 52 samples"):
        Kernels(source).gradient(params, bad)
    with pytest.raises(ValueError, match="not a module generated by einderiv"):
        Kernels("print('hello')")
