"""What the README's default run keeps of the randomised tests; .ci/run runs the rest (``-m slow``).

The default run is meant to finish in about three minutes on a 2-core machine; the randomised sweeps
(seeded networks, drawn examples) are the bulk of its CPU time.  Every case still runs in CI:

* a seeded sweep runs a share of its seeds by default, the others marked slow (:func:`default_share`);
* a Hypothesis property draws a quarter of its examples by default (:func:`examples`); .ci/run's second
  pass sets ``EINDERIV_ALL_EXAMPLES=1``, under which it draws all of them and is marked slow (conftest),
  so that ``-m slow`` selects it.
"""
from __future__ import annotations

import os

import pytest

#: set by .ci/run's second pass (``EINDERIV_ALL_EXAMPLES=1 python -m pytest -m slow``)
ALL_EXAMPLES = os.environ.get("EINDERIV_ALL_EXAMPLES") == "1"


def examples(n: int) -> int:
    """A property's Hypothesis example count: ``n`` under .ci/run's second pass, a quarter by default."""
    return n if ALL_EXAMPLES else max(1, n // 4)


def drawn_in_full(item) -> bool:
    """Whether ``item`` is a Hypothesis test whose module counts its examples with :func:`examples`
    and this run draws them all (conftest marks it slow then)."""
    return ALL_EXAMPLES and getattr(item.obj, "is_hypothesis_test", False) and \
        getattr(item.module, "examples", None) is examples


def default_share(params, every: int) -> list:
    """Every ``every``-th of ``params`` (pytest parameter sets of a randomised test: seeds, drawn
    networks) unmarked, the others marked slow.  A tuple is one parameter set of several arguments."""
    return [p if i % every == 0 else pytest.param(*(p if isinstance(p, tuple) else (p,)), marks=pytest.mark.slow)
            for i, p in enumerate(params)]
