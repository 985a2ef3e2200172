"""Every row of the structure report against numbers: ranks, the printed form, full rank where it says none.

For each network in derivations/ and 100 random networks (MLPs of ``test_random_networks``;
recurrent, convolutional and token/attention networks of ``test_random_rnn_cnn``), each
block of the derivation and the outer-product form the report's K counts are evaluated per
sample at random parameters and data by the independent evaluator of ``reference`` (the
derivation's nodes and named quantities, then the block) — with generic values where the
network's own would be special by accident: relu and its derivatives as softplus's (a dead unit
lowers a rank by chance) and the objective's own derivatives ∂f/∂p, ∂²f/∂p∂p random (softmax's
Hessian is singular); the report treats both as opaque factors, so its claims, identities in the
factors' values, must hold for any values — and:

* the outer-product form equals the block (so what the report counts is the block);
* K is the number of outer products the document prints for the block (its outer-product
  form, or the block's own terms when those are the form), each printed term having at
  least two outer-product factors;
* with a split common to every term: across every bipartition of the block's axes into a
  union of the split's parts and the rest, the block's numeric rank is at most K; with a
  mixed form (each term over its own split), each term's rank across each bipartition of
  its own split is at most the outer products it counts;
* "no outer-product structure" only where the block is of full rank across (the first
  parameter's axes | the rest) — for a gradient, (out | in);
* the row says "no saving" exactly where the factored form stores at least the dense block.

The counts of what was checked are kept in ``COUNTS`` (rows per class; rank checks, and in how
many the numeric rank reaches K).
"""
from __future__ import annotations

import itertools
import os
import pathlib
from collections import Counter

import numpy as np
import pytest
import sympy

import einderiv
from einderiv.analysis.document import OuterItem, folded_terms
from einderiv.analysis.roles import Context
from einderiv.analysis.structure import Form, summarize
from einderiv.calculus.derive import derive, in_form
from einderiv.draws import matrix_args, near_identity
from einderiv.emit.text import reason
from reference import BUILTIN_FUNCTIONS, Evaluator
from test_random_networks import random_network
from test_random_rnn_cnn import random_cnn, random_rnn, random_token

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "derivations").glob("*.ein") if "depth " not in p.read_text())
RTOL = 1e-9
COUNTS: Counter = Counter()


def _rnn_seeds(count: int) -> list[int]:
    """Seeds of one-layer random RNNs (two stacked layers derive in seconds each: kept out here)."""
    return [s for s in range(200) if random_rnn(s).count("weight W") == 1][:count]


RANDOM = ([("mlp", s) for s in range(40)] + [("rnn", s) for s in _rnn_seeds(15)]
          + [("cnn", s) for s in range(15)] + [("tokens", s) for s in range(30)])


def network(kind: str, seed: int):
    if kind == "mlp":
        return random_network(seed)[0]
    text = {"rnn": random_rnn, "cnn": random_cnn, "tokens": random_token}[kind](seed)
    return einderiv.load(f"{kind}{seed}.ein", text=text)


# ------------------------------------------------------------------ numbers
class GenericEvaluator(Evaluator):
    """The reference evaluator with relu′ and relu″ generic: the structure claims are identities in
    the values of the factors, and a relu's exact zeros (a dead unit) would lower ranks by chance,
    so relu and its derivatives are evaluated as softplus and its derivatives."""

    def function(self, fn):
        if fn.name == "relu":
            return BUILTIN_FUNCTIONS["softplus"][fn.deriv[0]]
        return super().function(fn)

    def dim(self, ix) -> int:
        cache = self.__dict__.setdefault("_dims", {})
        if ix.dim not in cache:
            cache[ix.dim] = super().dim(ix)
        return cache[ix.dim]


class Values:
    """Per-sample values of a derivation's nodes and quantities at random parameters and data."""

    def __init__(self, d, seed: int, batch: int = 2):
        net = d.network
        self.sizes = net.sizes()
        self.ev = GenericEvaluator(self.sizes, net.functions)
        rng = np.random.default_rng(seed)
        env = {}
        matrices = matrix_args(d)  # arguments of logdet, det, inv: near the identity, as check draws them
        for t in net.tensors:
            shape = (batch,) + tuple(self.dim(ix) for ix in t.indices)
            if str(t.name) in matrices:
                value = near_identity(rng, shape if t.role != "weight" else shape[1:])
                value = np.broadcast_to(value, shape)
            elif t.role == "weight":
                value = np.broadcast_to(rng.normal(0.0, 0.5, shape[1:]), shape)
            elif t.role == "label":  # in (0, 1) and summing to one: valid for every built-in objective
                u = rng.uniform(0.05, 1.0, shape)
                value = u / u.sum(axis=-1, keepdims=True) if len(shape) > 1 else u
            else:
                value = rng.normal(0.0, 1.0, shape)
            env[str(t.name)] = np.array(value)
        self.env, self.batch = env, batch
        for n in d.nodes:
            env[str(n.name)] = self.value(n.expr, n.indices)
        ctx = Context.of(d)
        for q in d.quantities:
            if ctx.of_objective(q.name):  # left named, never looked into: any value (softmax's is singular)
                env[str(q.name)] = rng.normal(0.0, 1.0, (batch,) + tuple(self.dim(ix) for ix in q.indices))
            else:
                env[str(q.name)] = self.value(q.expr, q.indices)

    def dim(self, ix) -> int:
        return self.ev.dim(ix)

    def value(self, e, axes) -> np.ndarray:
        """``e`` per sample, axes in the order of ``axes``."""
        out = self.ev.evaluate(e, self.env, self.batch)
        return np.array(self.ev.align(out, e.free, tuple(axes)))


def rank(value: np.ndarray, axes, rows) -> int:
    """Matrix rank of one sample's block with the axes in ``rows`` as rows, the rest as columns."""
    r = [k for k, ix in enumerate(axes) if ix in rows]
    c = [k for k, ix in enumerate(axes) if ix not in rows]
    m = np.transpose(value, r + c).reshape(int(np.prod([value.shape[k] for k in r])), -1)
    s = np.linalg.svd(m, compute_uv=False)
    return int(np.sum(s > s[0] * 1e-9 * max(m.shape))) if s.size and s[0] > 0 else 0


def bipartitions(parts):
    """Unions of some of ``parts`` (never none or all), each with the rest: one of each pair."""
    for r in range(1, len(parts)):
        for chosen in itertools.combinations(range(1, len(parts)), r - 1):
            yield {ix for k in (0,) + chosen for ix in parts[k]}


def printed_count(row, subs) -> int:
    """The outer products the document prints for the block: its outer-product form's terms, or
    the block's own folded terms when they are that form (a family over steps counts its steps,
    a sum outside the product its size); each printed term has at least two factors."""
    if row.outer.rewritten:
        items = OuterItem(row, ()).terms()
    else:
        items = folded_terms(row.block)
    total = 0
    for it in items:
        assert len(it.term.groups) >= 2, (row.wrt, it)
        size = sympy.Mul(*(ix.dim for ix in it.term.over)).subs(subs)
        total += max(1, len(it.labels)) * int(size)
    return total


def check_rows(d, seed: int, where: str) -> None:
    rows = summarize(d)
    values = Values(d, seed)
    subs = d.network.sizes()
    for row in rows:
        COUNTS["rows"] += 1
        COUNTS[row.kind.value] += 1
        if row.kind in (Form.ZERO, Form.SCALAR, Form.VECTOR):
            continue
        block = row.block
        axes = block.indices
        value = values.value(block.expr, axes)
        scale = max(1.0, float(np.max(np.abs(value))))
        assert ("no saving" in reason(row)) == (row.outer is not None and not row.saves), (where, row.wrt)
        if row.kind is Form.NONE:
            first = len(d.network.tensor(row.wrt[0]).indices)
            rows_ = set(axes[:1] if len(row.wrt) == 1 else axes[:first])
            for b in range(values.batch):
                got = rank(value[b], axes, rows_)
                full = min(np.prod([values.dim(ix) for ix in rows_]),
                           np.prod([values.dim(ix) for ix in axes if ix not in rows_]))
                assert got == full, f"{where} {row.wrt}: no outer-product structure, yet rank {got} < {full}"
            COUNTS["full rank where none"] += 1
            continue
        form = row.outer
        K = int(sympy.sympify(row.terms).subs(subs))
        assert K == int(sympy.sympify(form.K).subs(subs)) == printed_count(row, subs), (where, row.wrt)
        total = sum(values.value(t.expr(axes), axes) for t in form.terms)
        assert np.allclose(total, value, rtol=RTOL, atol=RTOL * scale), f"{where} {row.wrt}: form ≠ block"
        COUNTS["forms equal to their block"] += 1
        for b in range(values.batch):
            if not form.mixed:
                top = 0
                for rows_ in bipartitions(form.parts):
                    got = rank(value[b], axes, rows_)
                    assert got <= K, f"{where} {row.wrt}: rank {got} across {sorted(map(str, rows_))} > K = {K}"
                    top = max(top, got)
                COUNTS["rank ≤ K"] += 1
                COUNTS["rank = K (K attained)"] += top == K
                continue
            for t in form.terms:
                tv = values.value(t.expr(axes), axes)[b]
                count = int(sympy.sympify(t.count).subs(subs))
                for rows_ in bipartitions(t.parts):
                    assert rank(tv, axes, rows_) <= count, f"{where} {row.wrt}: a mixed term is no outer product"
            COUNTS["mixed terms outer products"] += 1


@pytest.mark.slow  # numeric ranks of every example's blocks: ~40 s of CPU; .ci/run runs it
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_rows_against_numbers(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    net = einderiv.load(os.path.relpath(path, ROOT))
    d = derive(net, 3 if "order 3" in path.read_text().split("\n", 1)[0] else 2)
    check_rows(d, 0, path.stem)  # the expanded form: what `einderiv structure` reports
    check_rows(in_form(d, "compact"), 1, path.stem + " (compact)")


@pytest.mark.parametrize("name", ["POOLED", "MIXTURE"])
def test_issue_cases_against_numbers(name):
    """The cases issue 10 reported: the pooled residual layer and a mixture of experts."""
    import test_structure

    check_rows(derive(einderiv.load(f"{name}.ein", text=getattr(test_structure, name)), 2), 3, name)


# every fourth network of the hundred runs in the README's default run, all of them in .ci/run (-m slow)
@pytest.mark.parametrize("kind,seed", [pytest.param(k, s, id=f"{k}{s}", marks=[pytest.mark.slow] if i % 4 else [])
                                       for i, (k, s) in enumerate(RANDOM)])
def test_random_rows_against_numbers(kind, seed):
    check_rows(derive(network(kind, seed), 2), seed, f"{kind}{seed}")


def test_random_networks_are_a_hundred():
    assert len(RANDOM) == 100 and len(set(RANDOM)) == 100
