"""The run-time-depth module of a layer template with every function of the contract (NumPy).

:mod:`einderiv.emit.template_kernel` writes ``objective``, ``gradient`` and
``per_sample_gradient`` for a depth read from ``len(params[family])``.  This pass adds the rest
of docs/module.md, its size independent of the depth, from the template instance at the
reference depth derived at order 2:

* ``gradient_factors``: each member's outer-product terms, a family's members as one loop over
  layers (a list of n term lists); ``per_sample_gradient_norms`` from them by Gram matrices;
* ``hvp``: the R-operator of the looped kernel (:func:`einderiv.emit.loops.fold_loops`) — forward
  tangents up the layers, R-adjoints down — with each family's blocks as one loop over layers;
* ``hessian``: keyed by member names (``("w(2)", "u")``, as the ``--depth n=…`` module), its
  columns by R-passes (one per parameter entry, the forward and backward pass done once);
* ``ggn_diagonal``: the objective's Hessian in its argument factored per sample (``eigh``),
  each eigenvector back-propagated through the layers as a seed.

``tests/test_templates_full.py`` checks every function against central differences and the
``--depth n=k`` modules for several k.
"""
from __future__ import annotations

from ..calculus.derive import derive
from ..errors import Argument, UsageError
from ..ir import Kind, Quantity
from .kernel import Assign, Constant, Define, Frame, Function, Helpers, Module, Source
from .kernel_arrays import Item, Py, Str, Var
from .kernel_build import Builder, build
from .kernel_context import Context
from .loops import fold_loops
from .sequence_kernel import GRAM_NORM, StepLabels, ggn_argument, shortest_length
from .template_kernel import DEPTH_KEY, REF_DEPTH, RunTimeDepth, factors, hvp_title

T = Var("t")


def full_template_kernel(tpl) -> tuple[Module, Context]:
    """The run-time-depth kernel module of a layer template with the whole contract."""
    ctx = Context(derive(tpl.instantiate(REF_DEPTH), 2, expanded=False), depth=(tpl.depth, REF_DEPTH))
    unrolled = build(ctx)
    return _Full(RunTimeDepth(unrolled, ctx), fold_loops(unrolled, ctx), tpl.depth).module(), ctx


class _Full:
    def __init__(self, base: RunTimeDepth, looped: Module, depth: str):
        self.base, self.ctx, self.depth = base, base.ctx, depth
        self.hint = (Argument("depth", depth, 3),)
        self.steps = StepLabels(base.relabel, self.hint)
        self.looped = {it.name: it for it in looped.items if isinstance(it, Function)}
        self.arg = ggn_argument(self.ctx, self.hint)

    def depth_line(self) -> Assign:
        return Assign(Var(self.depth), Item(T, Str(DEPTH_KEY)))

    def r_pass(self) -> Function:
        fn = self.looped["_r_pass"]
        return Function("_r_pass", ("t",), fn.doc, tuple(self.steps.statement(st) for st in fn.body),
                        (self.depth_line(),), Frame.NAMES)

    def seeded_backward(self) -> Function:
        ctx = self.ctx
        quantities = ctx.needed([ctx.d.blocks[(p,)].expr for p in ctx.params])
        seed = Quantity(Kind.ADJ, (self.arg,))
        body = self.base.layers([Define(q.name, q.indices, q.expr) for q in quantities if q.name != seed])
        return Function("_backward_seeded", ("t",), f"The back-propagated quantities from a seed t['adj[{self.arg}]'] "
                        "(the reversed loop over layers of _backward, its first adjoint given).", body,
                        (self.depth_line(),), Frame.NAMES)

    def module(self) -> Module:
        base, ctx = self.base, self.ctx
        hobj = Quantity(Kind.HOBJ, (self.arg, self.arg))
        q = next(q for q in ctx.d.quantities if q.name == hobj)
        items = [base.param_shapes(), Helpers(), base.forward(), base.backward(), self.r_pass(),
                 self.seeded_backward(), Builder(ctx).quantity(q), base.objective(),
                 base.gradients("gradient", "Batch-mean gradient: name -> array; a family -> list of n arrays "
                                            "(layer 1 first)."),
                 base.gradients("per_sample_gradient", "Per-sample gradients: name -> (B, *shape); a family -> "
                                                       "list of n such arrays."),
                 base.gradients("per_sample_gradient", "Per-sample gradients from t (forward and backward done).",
                                "_per_sample", True),
                 base.gradients("gradient_factors", "Gradient factors from t (forward and backward done).",
                                "_factors", True, factors),
                 base.gradients("hvp", "Hessian-vector product from t (forward, backward, R-pass done).", "_hvp", True,
                                title=hvp_title)]
        shortest_length([it for it in items if isinstance(it, Function)], self.depth, self.hint)
        first = str(ctx.first_data)
        items.append(Source(_PUBLIC.format(arg=self.arg, first=first, hobj_fn="_" + ctx.ident[hobj], gram_norm=GRAM_NORM).strip("\n")))
        shapes = {str(p): ctx.shape[p] for p in ctx.params}
        order = []
        for p in ctx.params:
            name = p.base if p.ints else str(p)
            if name not in order:
                order.append(name)
        constants = (Constant("FAMILIES", Py({b: self.depth for b in base.families})),
                     next(c for c in base.unrolled.constants if c.name == "INPUTS"),
                     Constant("ORDER", Py(order)),
                     Constant("GRADIENT_FACTOR_AXES", Py(self.factor_axes(shapes))))
        header = ctx.header(omit=self.depth, sizes_prefix=f"Depth {self.depth}: given at run time "
                            "(len(params[family])).  Network shown at the reference depth.  ")
        return Module(header, constants, tuple(items))

    def factor_axes(self, shapes) -> dict:
        """Each parameter's (each family's) factor axes, one entry per term; a family's members
        must share them (the first and the last member are compared)."""
        axes = {}
        const = next(c for c in self.base.unrolled.constants if c.name == "GRADIENT_FACTOR_AXES")
        table = {k.text: v.value for k, v in const.value.items}
        for p in self.ctx.params:
            name = p.base if p.ints else str(p)
            if name in axes and axes[name] != table[str(p)]:
                raise UsageError(f"the members of {name} have gradients of different factor forms: its "
                                 "run-time-depth module is not written; generate it at a given depth, e.g. {0}",
                                 arguments=self.hint)
            axes[name] = table[str(p)]
        return axes


#: the public functions over the support functions (the same for every template)
_PUBLIC = '''

def _members(tree):
    """A params-shaped dict (a family as a list) as member name -> array, in declaration order."""
    out = {{}}
    for name in ORDER:
        if name in FAMILIES:
            out.update((f"{{name}}({{k}})", a) for k, a in enumerate(tree[name], 1))
        else:
            out[name] = tree[name]
    return out


def _set_direction(t, vector):
    for name in ORDER:
        if name in FAMILIES:
            for k, a in enumerate(vector[name], 1):
                t[f"dir[{{name}}({{k}})]"] = a
        else:
            t["dir[" + name + "]"] = vector[name]


def gradient_factors(params, data):
    """Per-sample gradient of each parameter as a sum of outer products: name -> list of terms, each a
    tuple of per-sample factors (axes GRADIENT_FACTOR_AXES[name]); a family -> list of n such lists."""
    t = _forward(params, data)
    _backward(t)
    return _factors(t)


def expand_factors(name, terms):
    """Rebuild the per-sample gradient of `name` (a family member: its family's name) from its terms."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = "Z" + letters[:max(a for ax in GRADIENT_FACTOR_AXES[name][0] for a in ax) + 1]
    total = 0.0
    for term, axes in zip(terms, GRADIENT_FACTOR_AXES[name]):
        subs = ",".join("Z" + "".join(letters[a] for a in ax) for ax in axes)
        total = total + np.einsum(subs + "->" + out, *term)
    return total


{gram_norm}

def per_sample_gradient_norms(params, data):
    """Euclidean norm of each sample's gradient: name -> (B,), a family -> list of n such arrays; from the
    factors (no (B, *shape) array)."""
    out = {{}}
    for name, terms in gradient_factors(params, data).items():
        out[name] = [_gram_norm(ts) for ts in terms] if name in FAMILIES else _gram_norm(terms)
    return out


def hvp(params, data, vector):
    """Hessian-vector product Σ_b H[(a, b)]·vector[b] (batch mean), by the R-operator: forward tangents up the
    layers and R-adjoints down, as loops; `vector` and the result shaped like params (a family as a list)."""
    t = _forward(params, data)
    _backward(t)
    _set_direction(t, vector)
    _r_pass(t)
    return _hvp(t)


def hessian(params, data):
    """Batch-mean Hessian blocks (a, b) -> array shape_a + shape_b for every ordered pair of parameters, family
    members by name ("w(2)"); column by column by the R-operator (one R-pass per entry of b)."""
    t = _forward(params, data)
    _backward(t)
    flat = _members(params)
    zero = {{name: ([np.zeros(np.shape(a)) for a in params[name]] if name in FAMILIES else
                  np.zeros(np.shape(params[name]))) for name in ORDER}}
    out = {{}}
    for b, pb in flat.items():
        size = int(np.prod(np.shape(pb)))
        cols = {{a: np.zeros(np.shape(pa) + (size,)) for a, pa in flat.items()}}
        for e in range(size):
            _set_direction(t, zero)
            unit = np.zeros(size)
            unit[e] = 1.0
            t["dir[" + b + "]"] = unit.reshape(np.shape(pb))
            _r_pass(t)
            column = _members(_hvp(t))
            for a in flat:
                cols[a][..., e] = column[a]
        for a, pa in flat.items():
            out[(a, b)] = cols[a].reshape(np.shape(pa) + np.shape(pb))
    return out


def ggn_diagonal(params, data):
    """Exact diagonal of the (batch-mean) generalised Gauss–Newton matrix J_{arg}ᵀ ∂²f/∂{arg}² J_{arg}: the
    objective's Hessian in {arg} factored per sample (eigh), each eigenvector back-propagated through the layers
    as a seed: shaped like params (a family as a list)."""
    t = _forward(params, data)
    B = t["{first}"].shape[0]
    hobj = {hobj_fn}(t)
    width = hobj.shape[-1]
    w, v = np.linalg.eigh(np.broadcast_to(hobj, (B, width, width)))
    out = None
    for r in range(width):
        t["adj[{arg}]"] = v[:, :, r]
        _backward_seeded(t)
        rows = _members(_per_sample(t))
        part = {{name: np.tensordot(w[:, r], g ** 2, axes=1) / B for name, g in rows.items()}}
        out = part if out is None else {{name: out[name] + part[name] for name in part}}
    result = {{}}
    for name in ORDER:
        if name in FAMILIES:
            result[name] = [out[f"{{name}}({{k}})"] for k in range(1, len(params[name]) + 1)]
        else:
            result[name] = out[name]
    return result
'''
