"""The column pass: a long recurrence's ``hessian`` and ``ggn_diagonal`` at a fixed length, as loops.

The derived Hessian blocks of a recurrence pair two steps (``hess[z_h(3),z_h(1)]``,
``jac[h(5),z_h(2)]``): written out, the order-2 module of ``--depth T=k`` grows as k² (4 440 lines
at T = 8, 58 008 at T = 32 for the Elman RNN), and so does the time to generate it.  Past the
reference length :data:`~einderiv.emit.template_kernel.REF_DEPTH` this pass writes the two
functions the way the run-time-length module (:mod:`einderiv.emit.sequence_kernel`) does, from the
looped kernel of :func:`einderiv.emit.loops.fold_loops`, so that the module's size does not depend
on the length:

* ``hessian``: column by column by the R-operator — the forward and backward pass once, then one
  R-pass (``_r_pass``, loops over the steps) per parameter entry, each column written into the
  module's one P × P buffer (``out=`` as before, every block a view of it); the two triangles
  averaged so that the buffer is exactly symmetric;
* ``ggn_diagonal``: the objective's Hessian in its one argument factored per sample (``eigh``),
  each eigenvector back-propagated through the BPTT loop as a seed (``_backward_seeded``):
  diag GGN = mean_B Σ_r w_r (per-sample gradient seeded by v_r)², each seeded per-sample gradient
  from its gradient factors stacked over the steps (one contraction, not one per step).

The contract (docs/module.md) is unchanged: the same keys, shapes and batch means.  NumPy only (the
other printers keep the derived blocks).  Where both functions are written here the module reads no
Hessian or GGN block: :func:`without_pairs` tells ``einderiv.codegen`` of a network that it need not
derive them (``derive(..., pairs=False)``, the same module byte for byte), so that generating the
module takes time linear in the length, not quadratic.  ``tests/test_columns.py`` compares both with the derived
blocks' module and with central differences.
"""
from __future__ import annotations

from ..ir import Kind, Quantity, labels_of, refs
from .kernel import Define, Frame, Function, Module, Source
from .kernel_build import batch_line
from .kernel_context import Context
from .loops import called, fold_definitions, group_sums
from .template_kernel import REF_DEPTH

#: past this many steps a recurrence's order-2 module takes its Hessian and GGN diagonal by loops
LONG = REF_DEPTH


def length(derivation) -> int:
    """The largest step label of the derivation's nodes (0 without families)."""
    return max((lb for n in derivation.nodes for lb in labels_of(n.name) if isinstance(lb, int)), default=0)


def chain(derivation) -> int:
    """The longest chain of nodes, each reading the one before: at least T for a recurrence over T
    steps (h(t) reads h(t-1)), the depth of the layers for positions that do not read each other."""
    depth: dict = {}
    for n in derivation.nodes:  # (dependency order)
        depth[n.name] = 1 + max((depth.get(r.name, 0) for r in refs(n.expr)), default=0)
    return max(depth.values(), default=0)


def by_columns(derivation, long: int | None = None) -> bool:
    """Whether the order-2 module of ``derivation`` takes the column pass: a recurrence longer than
    ``long`` (:data:`LONG` when not given), its weights shared by the steps — not a family of
    positions that do not read each other (a convolution's) nor a stack of layers with weights of
    their own (a layer template's ``--depth n=k``: a family of weights), whose derived blocks stay."""
    steps = length(derivation)
    members = [p.name.base for p in derivation.network.params if labels_of(p.name)]  # (h(0) alone: a state)
    return derivation.order == 2 and steps > (LONG if long is None else long) and chain(derivation) > steps \
        and len(set(members)) == len(members)


def ggn_seed(derivation):
    """The objective's one argument, a vector without labels, where the GGN's seeds start — or None."""
    hobj = [q.name for q in derivation.quantities if isinstance(q.name, Quantity) and q.name.kind is Kind.HOBJ]
    args = {p for q in hobj for p in q.parts}
    if len(args) != 1:
        return None
    arg = next(iter(args))
    node = derivation.node(arg)
    if labels_of(arg) or node is None or len(node.indices) != 1:
        return None
    return arg


def without_pairs(derivation) -> bool:
    """Whether the module of ``derivation`` reads none of its Hessian and GGN blocks (both written by
    this pass): then ``derive(..., pairs=False)`` gives the same module, without deriving them."""
    return by_columns(derivation) and ggn_seed(derivation) is not None


def written(ctx: Context) -> frozenset:
    """The public functions :func:`columns` writes for ``ctx`` (the builder leaves them out)."""
    return frozenset({"hessian"} | ({"ggn_diagonal"} if ggn_seed(ctx.d) is not None else set()))


def columns(module: Module, ctx: Context) -> Module:
    """The looped module (built without the functions :func:`written` names) with ``hessian`` and,
    where the objective allows, ``ggn_diagonal`` by loops, after ``hvp``; the per-pair quantity
    functions nothing calls left out."""
    fns = {it.name: it for it in module.items if isinstance(it, Function)}
    seed = ggn_seed(ctx.d)
    items = []
    for it in module.items:
        items.append(it)
        if not (isinstance(it, Function) and it.name == "hvp"):
            continue
        items += [_from_t(fns["hvp"], "_hvp", "Hessian-vector product from t (forward, backward, R-pass done).", ctx),
                  Source(_HESSIAN.format(first=ctx.params[0]).strip("\n"))]
        if "ggn_diagonal" in ctx.by_columns:
            hobj = Quantity(Kind.HOBJ, (seed, seed))
            batch = f't["{ctx.first_data}"].shape[0]' if ctx.first_data is not None else "1"
            items += [_seeded_backward(ctx, seed),
                      _from_t(fns["gradient_factors"], "_factors",
                              "Gradient factors from t (forward and backward done).", ctx),
                      Source(_GGN.format(arg=seed, batch=batch, hobj_fn="_" + ctx.ident[hobj]).strip("\n"))]
    keep = {"_" + ctx.ident[q.name] for q in ctx.d.quantities if q.name.kind is Kind.HOBJ}
    return Module(module.header, module.constants, tuple(called(items, keep)))


def _from_t(fn: Function, name: str, doc: str, ctx: Context) -> Function:
    """A public function's body as a function of ``t`` (forward and backward done)."""
    return Function(name, ("t",), doc, fn.body, (batch_line(ctx),), Frame.NAMES)


def _seeded_backward(ctx: Context, seed) -> Function:
    """The BPTT loop of ``_backward`` from the adjoint of ``seed`` read from ``t``."""
    quantities = ctx.needed([ctx.d.blocks[(p,)].expr for p in ctx.params])
    defs = [Define(q.name, q.indices, q.expr) for q in quantities if q.name != Quantity(Kind.ADJ, (seed,))]
    return Function("_backward_seeded", ("t",), f"The back-propagated quantities from a seed t['adj[{seed}]'] "
                    "(the reversed loop over steps of _backward, its first adjoint given).",
                    tuple(group_sums(fold_definitions(defs, ctx), ctx)), frame=Frame.NAMES)


_HESSIAN = '''
def hessian(params, data, out=None):
    """Batch-mean Hessian blocks: (a, b) -> array shape_a + shape_b.  All blocks are views of one (P, P) array (parameters in PARAMS order, each flattened in C order): `out` when given (P × P, or flat P²; reused, nothing of its size is allocated), else a new one.  Column by column by the R-operator: the forward and backward pass once, then one R-pass over the steps per parameter entry (no block pairing two steps is formed); the two triangles averaged, so the result is exactly symmetric."""
    t = _forward(params, data)
    _backward(t)
    sizes = {{name: int(np.prod(shape)) for name, shape in PARAMS.items()}}
    start, P = {{}}, 0
    for name in PARAMS:
        start[name], P = P, P + sizes[name]
    if out is None:
        H = np.empty((P, P), dtype=np.result_type(params["{first}"], 1.0))
    else:
        if out.shape not in ((P, P), (P * P,)):
            raise ValueError(f"out has shape {{out.shape}}; expected ({{P}}, {{P}}) or ({{P * P}},)")
        H = out.view()
        H.shape = (P, P)  # raises if that needs a copy
    for name, shape in PARAMS.items():
        t["dir[" + name + "]"] = np.zeros(shape)
    for b, shape_b in PARAMS.items():
        unit = np.zeros(sizes[b])
        t["dir[" + b + "]"] = unit.reshape(shape_b)
        for e in range(sizes[b]):
            unit[e] = 1.0
            _r_pass(t)
            column = _hvp(t)
            unit[e] = 0.0
            for a in PARAMS:
                H[start[a]:start[a] + sizes[a], start[b] + e] = column[a].reshape(-1)
    for i in range(0, P, 256):
        for j in range(i, P, 256):
            half = 0.5 * (H[i:i + 256, j:j + 256] + H[j:j + 256, i:i + 256].T)
            H[i:i + 256, j:j + 256] = half
            H[j:j + 256, i:i + 256] = half.T
    blocks = {{}}
    for a, shape_a in PARAMS.items():
        for b, shape_b in PARAMS.items():
            view = H[start[a]:start[a] + sizes[a], start[b]:start[b] + sizes[b]].view()
            view.shape = shape_a + shape_b
            blocks[(a, b)] = view
    return blocks
'''

_GGN = '''
def _stacked_gradient(name, terms):
    """The per-sample gradient of `name` (B, *shape) from its factor terms: the terms of the same axes stacked,
    one contraction over the stacked axis each (no Python loop over the steps' outer products)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = "Z" + letters[:len(PARAMS[name])]
    groups = {{}}
    for term, axes in zip(terms, GRADIENT_FACTOR_AXES[name]):
        groups.setdefault(tuple(axes), []).append(term)
    total = np.zeros((terms[0][0].shape[0],) + PARAMS[name])
    for axes, same in groups.items():
        subs = ",".join("ZY" + "".join(letters[a] for a in ax) for ax in axes)
        stacked = [np.stack([term[k] for term in same], axis=1) for k in range(len(axes))]
        total += np.einsum(subs + "->" + out, *stacked, optimize=True)
    return total


def ggn_diagonal(params, data):
    """Exact diagonal of the (batch-mean) generalised Gauss–Newton matrix J_{arg}ᵀ ∂²f/∂{arg}² J_{arg}: the objective's Hessian in {arg} factored per sample (eigh), each eigenvector back-propagated through the steps as a seed, the seeded per-sample gradient from its stacked factors: name -> array of the parameter's shape."""
    t = _forward(params, data)
    B = {batch}
    hobj = {hobj_fn}(t)
    width = hobj.shape[-1]
    w, v = np.linalg.eigh(np.broadcast_to(hobj, (B, width, width)))
    out = {{name: np.zeros(shape) for name, shape in PARAMS.items()}}
    for r in range(width):
        t["adj[{arg}]"] = v[:, :, r]
        _backward_seeded(t)
        terms = _factors(t)
        for name in PARAMS:
            out[name] = out[name] + np.tensordot(w[:, r], _stacked_gradient(name, terms[name]) ** 2, axes=1) / B
    return out
'''
