"""The run-time-depth pass: a layer template's kernel for a depth given when the module runs.

The template is instantiated at the reference depth :data:`REF_DEPTH`, derived at order 1 and
built as an unrolled kernel (:mod:`einderiv.emit.kernel_build`).  :func:`run_time_depth` then
rewrites that kernel's statements:

* the layers of the forward and backward passes become loops (:func:`einderiv.emit.loops.fold_definitions`);
* a parameter family's gradient blocks (``∂f/∂w(2)`` … ``∂f/∂w(8)``), equal up to a label
  shift, become one loop over layers filling the list ``grad_w``;
* every label within :data:`NEAR` of the reference depth is written relative to the depth —
  ``v(8)`` → ``v(n)`` (a :class:`~einderiv.ir.Sym` label), a loop ``range(2, 9)`` →
  ``range(2, n + 1)`` — all other labels are absolute layers (``v(0)``, ``w(1)``);
* shapes are read from the parameters (``np.shape(t["w(1)"])``), the depth from
  ``len(params["w"])``.

The module's contract (``einderiv codegen`` of a template without ``--depth``):

* ``INPUTS`` as for any network; ``FAMILIES`` names the parameter families (``{"w": "n"}``);
* ``param_shapes(n)`` → name → shape, a family → the list of its n shapes (the first layer's may differ);
* ``params[family]`` is the list ``[w1, …, wn]``; the depth is ``len(params["w"])``;
* ``objective(params, data)`` → ``(B,)``; ``gradient`` / ``per_sample_gradient`` → name → array,
  a family → a list of n arrays.  Their cost is linear in n: one loop over layers forward, one
  reversed loop back, one loop over the family's gradients.

Hessian blocks, HVPs, gradient factors and norms are not in this module (their blocks pair two
layers; generate with ``--depth n=3`` for them).  Nothing here checks itself:
``tests/test_templates.py`` compares the module with the ``--depth n=k`` modules for n = 1..5.
"""
from __future__ import annotations

from ..analysis.fold import abstract, shift_labels
from ..calculus.derive import derive
from ..calculus.simplify import term_key
from ..ir import Name, Sym, map_names, map_refs
from .kernel import (Assign, Block, Constant, Define, Factors, Frame, Function, Helpers, Local, Loop, Module,
                     Python, Range, Return, Run)
from .kernel_arrays import BATCH_SHAPE, Call, Code, DictOf, Item, Key, Label, Lib, Num, Py, Str, Var
from .kernel_build import batch_line, build, forward_call
from .kernel_context import Context
from .loops import accumulate, batch_pattern, fold_definitions, group_sums, longest_run

#: the depth the module is generated from (labels 1..5 absolute, n-2..n+2 relative to the depth)
REF_DEPTH = 8
NEAR = 2
DEPTH_KEY = "depth"  # t["depth"]: not a tensor name (tensor names are identifiers with labels)
T = Var("t")


def template_kernel(tpl) -> tuple[Module, Context]:
    """The run-time-depth kernel module of a :class:`~einderiv.analysis.template.Template`."""
    ctx = Context(derive(tpl.instantiate(REF_DEPTH), 1, expanded=False), depth=(tpl.depth, REF_DEPTH))
    return run_time_depth(build(ctx), ctx), ctx


class DepthLabels:
    """Labels near the reference depth written relative to the depth symbol."""

    def __init__(self, symbol: str):
        self.symbol = symbol

    def label(self, lab):
        if not isinstance(lab, int) or abs(lab - REF_DEPTH) > NEAR:
            return lab
        return Sym(self.symbol, lab - REF_DEPTH)

    def name(self, name):
        """``v(8)`` → ``v(n)``, ``adj[z_v(7)]`` → ``adj[z_v(n-1)]``; other labels unchanged."""
        return map_names(name, lambda n: n.relabel(self.label))

    def statement(self, st):
        if isinstance(st, Define):
            return Define(self.name(st.name), st.indices, map_refs(st.expr, self.name), st.groups)
        if isinstance(st, Loop) and isinstance(st.over, Range):
            r = st.over
            last = self.label(r.stop - r.step)
            stop = last.shift(r.step) if isinstance(last, Sym) else last + r.step
            return Loop(st.var, Range(self.label(r.start), stop, r.step), st.body)
        return st

    def block(self, b: Block, shape_of, title=None) -> Block:
        wrt = tuple(self.name(w) for w in b.wrt)
        return Block(b.target, wrt, b.indices, map_refs(b.expr, self.name), b.keep_batch,
                     (title or _gradient_title)(",".join(map(str, wrt))), shape_of(wrt))


def _gradient_title(wrt: str) -> str:
    return "∂f/∂" + wrt


def hvp_title(wrt: str) -> str:
    return f"Σ_b H[{wrt},b]·vector[b]"


def shape_of(names):
    """``np.shape(t["w(1)"])``: a block's shape read from its parameter."""
    return Lib("shape", (Item(T, Key(names[0])),))


def run_time_depth(module: Module, ctx: Context) -> Module:
    """The unrolled kernel of a template instance rewritten for a depth given at run time."""
    return RunTimeDepth(module, ctx).module()


class RunTimeDepth:
    """The pass over one unrolled kernel (see the module docstring)."""

    def __init__(self, module: Module, ctx: Context):
        self.unrolled, self.ctx = module, ctx
        self.depth = ctx.depth[0]
        self.relabel = DepthLabels(self.depth)
        #: parameter families: base name -> {layer: member}
        self.families: dict[str, dict[int, Name]] = {}
        for p in ctx.params:
            if p.ints:
                self.families.setdefault(p.base, {})[p.ints[0]] = p
        self.plain = [p for p in ctx.params if not p.ints]
        self.fns = {it.name: it for it in module.items if isinstance(it, Function)}

    def layers(self, defines) -> tuple:
        """Definitions with the layers as loops, labels near the depth relative to it."""
        out = [self.relabel.statement(st) for st in fold_definitions(defines, self.ctx)]
        return tuple(group_sums(out, self.ctx))

    def forward(self) -> Function:
        depth, k = self.depth, self.ctx.loop_vars[0]
        fam = next(iter(self.families), None)
        prologue = [Python("t = {name: data[name] for name in INPUTS}"),
                    Assign(Var(depth), Call("len", (Item(Var("params"), Str(fam)),)) if fam else Num(0)),
                    Assign(Item(T, Str(DEPTH_KEY)), Var(depth))]
        prologue += [Assign(Item(T, Str(str(p))), Item(Var("params"), Str(str(p)))) for p in self.plain]
        for base in self.families:  # t["w(k)"] = params["w"][k - 1]
            member = Item(Item(Var("params"), Str(base)), Label(Sym(k, -1)))
            prologue.append(Loop(k, Range(1, Sym(depth, 1)), (Assign(Item(T, Key(Name(base, (Sym(k),)))), member),)))
        body = self.layers([st for st in self.fns["_forward"].body if isinstance(st, Define)]) + (Return(T),)
        return Function("_forward", ("params", "data"), "Every tensor by name (family members as 'w(3)'), the "
                        "depth under t['depth']; layers as loops.", body, tuple(prologue), Frame.NAMES)

    def backward(self) -> Function:
        ctx = self.ctx
        quantities = ctx.needed([ctx.d.blocks[(p,)].expr for p in ctx.params])
        return Function("_backward", ("t",), "Back-propagated quantities into t (a reversed loop over layers).",
                        self.layers([Define(q.name, q.indices, q.expr) for q in quantities]),
                        (Assign(Var(self.depth), Item(T, Str(DEPTH_KEY))),), Frame.NAMES)

    def objective(self) -> Function:
        f = Item(T, Str(str(self.ctx.net.objective)))
        return Function("objective", ("params", "data"), "Per-sample objective, shape (B,).",
                        (forward_call(), batch_line(self.ctx), Return(Lib("broadcast_to", (f, BATCH_SHAPE)))))

    def gradients(self, name: str, doc: str, fname: str | None = None, from_t: bool = False,
                  make=None, title=None) -> Function:
        """Plain parameters' blocks of function ``name`` (``gradient``, ``per_sample_gradient``,
        ``hvp``, ``gradient_factors`` with ``make=factors``), then each family's as a list filled by
        layer; ``from_t``: a function of ``t`` (forward and backward passes done)."""
        ctx, fn = self.ctx, self.fns[name]
        make = make or (lambda b, var=None: accumulate(ctx, b, var))
        blocks = {st.wrt[0]: st for st in fn.body if isinstance(st, Block)}
        blocks.update((st.param, _as_block(st)) for st in fn.body if isinstance(st, Factors))
        body, out = [], []
        for p in self.plain:
            b = self.relabel.block(blocks[p], shape_of, title)
            body.append(make(b))
            out.append((Str(str(p)), b.target))
        for base, members in self.families.items():
            grads = Local(f"grad_{base}")
            body.append(Assign(grads, Code(f"[None] * {self.depth}")))
            body += _family(ctx, self.relabel, grads, {lb: blocks[w] for lb, w in members.items()}, make,
                            title or _gradient_title)
            out.append((Str(base), grads))
        if from_t:
            prologue = (Assign(Var(self.depth), Item(T, Str(DEPTH_KEY))), batch_line(ctx))
        else:
            prologue = (forward_call(), Assign(Var(self.depth), Item(T, Str(DEPTH_KEY))),
                        Run(Call("_backward", (T,))), batch_line(ctx))
        return Function(fname or fn.name, ("t",) if from_t else fn.args, doc,
                        tuple(body) + (Return(DictOf(tuple(out))),), prologue, Frame.NAMES)

    def param_shapes(self) -> Function:
        shape, depth = self.ctx.shape, self.depth
        shapes = [(Str(str(p)), Py(shape[p])) for p in self.plain]
        shapes += [(Str(base), Code(f"[{shape[ms[min(ms)]]!r}] + [{shape[ms[max(ms)]]!r}] * ({depth} - 1)"))
                   for base, ms in self.families.items()]
        return Function("param_shapes", (depth,), "Parameter shapes at depth n: name -> shape, a family -> "
                        "list of n shapes.", (Return(DictOf(tuple(shapes))),))

    def module(self) -> Module:
        items = (self.param_shapes(), Helpers(), self.forward(), self.backward(), self.objective(),
                 self.gradients("gradient", "Batch-mean gradient: name -> array; a family -> list of n arrays "
                                            "(layer 1 first)."),
                 self.gradients("per_sample_gradient", "Per-sample gradients: name -> (B, *shape); a family -> "
                                                       "list of n such arrays."))
        constants = (Constant("FAMILIES", Py({b: self.depth for b in self.families})),
                     next(c for c in self.unrolled.constants if c.name == "INPUTS"))
        header = self.ctx.header(omit=self.depth, sizes_prefix=f"Depth {self.depth}: given at run time "
                                 "(len(params[family])).  Network shown at the reference depth.  ")
        return Module(header, constants, items)


def _family(ctx: Context, relabel: DepthLabels, grads: Local, blocks: dict, make, title) -> list:
    """The gradients of one parameter family's members into the list ``grads``: the longest run
    of members equal up to a label shift as a loop over layers, the others one by one."""
    k, m = ctx.loop_vars
    labels = sorted(blocks)
    batched = lambda n: ctx.batched.get(n, False)  # noqa: E731
    keys = {lb: (term_key(abstract(b.expr, lb, "#"), b.indices), batch_pattern(b.expr, lb, batched))
            for lb, b in blocks.items()}
    run = max((longest_run([lb for lb in labels if keys[lb] == keys[x]]) for x in labels), key=len)
    if len(run) < 2:
        run = []
    out = []
    for lb in labels:
        if lb in run[1:]:
            continue
        b = blocks[lb]
        grad = Local("grad")
        if run and lb == run[0]:
            wrt = (shift_labels(b.wrt[0], lb, k),)
            step = Block(grad, wrt, b.indices, abstract(b.expr, lb, k), b.keep_batch, title(str(wrt[0])),
                         shape_of(wrt))
            out.append(Loop(k, Range(run[0], run[-1] + 1), (make(step, m),
                                                           Assign(Item(grads, Label(Sym(k, -1))), grad))))
            continue
        edge = relabel.block(Block(grad, b.wrt, b.indices, b.expr, b.keep_batch, b.label, b.shape), shape_of, title)
        index = relabel.label(lb)
        out += [make(edge),
                Assign(Item(grads, Label(index.shift(-1) if isinstance(index, Sym) else index - 1)), grad)]
    return [relabel.statement(st) for st in out]


def _as_block(st: Factors) -> Block:
    """A gradient's factor list as a block (its label and shape are not used)."""
    return Block(st.target, (st.param,), st.indices, st.expr, True, "", None)


def factors(b: Block, var: str | None = None) -> Factors:
    """A family member's gradient factors (the list of its outer-product terms)."""
    return Factors(b.target, b.wrt[0], b.indices, b.expr)
