"""The run-time-length pass: a recurrence of symbolic length (``depth T``) as loops over steps.

A recurrence over ``t = 1..T`` is instantiated at the reference length
:data:`~einderiv.emit.template_kernel.REF_DEPTH`, derived at order 2 and built as the unrolled
kernel (:mod:`einderiv.emit.kernel_build`); the loop pass (:func:`einderiv.emit.loops.fold_loops`)
writes its gradient path and its R-operator once per step.  :func:`run_time_length` then writes
every label within ``NEAR`` of the reference length relative to the length (``h(8)`` → ``h(T)``,
a loop ``range(2, 9)`` → ``range(2, T + 1)``, a sum over steps 2..8 → 2..T) — the other labels
are absolute steps (``h(1)``, the base case) — and reads the length from the data:
``data["x"]`` has shape ``(B, T, n)``, a step member ``x(t)`` is ``data["x"][:, t - 1]``.

The module (``einderiv codegen`` of a ``depth T`` recurrence without ``--depth``) has every
function of the contract (docs/module.md), its size independent of T:

* ``objective``, ``gradient``, ``per_sample_gradient``, ``gradient_factors``, ``hvp``: the
  derived kernels — one forward loop, one reversed (BPTT) loop, one loop per sum over steps,
  and for ``hvp`` the forward-tangent and R-adjoint loops of the R-operator; ``gradient`` adds
  each weight's sum over steps up inside the reversed loop instead (:mod:`einderiv.emit.fuse`);
* ``per_sample_gradient_norms``: ‖Σ_s a_s ⊗ b_s‖² = Σ_{s,u} (a_s·a_u)(b_s·b_u) from the
  factors, one (B, K, K) Gram matrix per factor (K terms), their product summed — or, where
  K (a + b) ≥ a b, ‖A_sᵀ B_s‖² from one batched product no larger than the stacked factors:
  cost B·K·min(K (a + b), a b), no Python loop over pairs of steps;
* ``hessian``: block columns by the R-operator, one R-pass per parameter entry on the forward
  and backward pass computed once (P R-passes: exact, not the derived blocks, which pair two
  steps and are O(T²) blocks);
* ``ggn_diagonal``: the objective's Hessian in its argument factored per sample
  (``eigh``: H = Σ_r w_r v_r v_rᵀ), each v_r back-propagated through the BPTT loop from the
  argument as a seed: diag GGN = mean_B Σ_r w_r (per-sample gradient seeded by v_r)².

Nothing here checks itself: ``tests/test_runtime_length.py`` compares every function with
central differences and with the fixed-length modules at several T.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..analysis.factor import factored
from ..calculus.derive import derive
from ..errors import Argument, UsageError
from ..ir import Kind, Name, Quantity, Sym, labels_of, map_refs, names_in, refs
from .kernel import (Accumulate, AddTo, Assign, Constant, Define, Factors, Frame, Function, Helpers, Loop, Module,
                     Python, Range, Source, TermGroup)
from .kernel_arrays import Item, Py, Str, Var
from .kernel_build import Builder, batch_line, build, factor_axes
from .kernel_context import Context
from .kernel_lower import over
from .fuse import FACTORS_BACKWARD, FACTORS_FORWARD, FUSED_DOC, LEAN_FORWARD, fuse_gradient
from .loops import fold_definitions, fold_loops, group_sums
from .template_kernel import DEPTH_KEY, NEAR, REF_DEPTH, DepthLabels

T = Var("t")
_KEPT = ("_forward", "_backward", "_r_pass", "objective")


def sequence_kernel(tpl) -> tuple[Module, Context]:
    """The run-time-length kernel module of a recurrence :class:`~einderiv.analysis.template.Template`."""
    ctx = Context(derive(tpl.instantiate(REF_DEPTH), 2, expanded=False), depth=(tpl.depth, REF_DEPTH))
    return run_time_length(fold_loops(build(ctx), ctx), ctx), ctx


def run_time_length(module: Module, ctx: Context) -> Module:
    """The looped fixed-length kernel rewritten for a length read from the data."""
    return _RunTimeLength(module, ctx).module()


class _RunTimeLength:
    """The pass over one looped kernel (see the module docstring)."""

    def __init__(self, module: Module, ctx: Context):
        self.looped, self.ctx = module, ctx
        self.length = ctx.depth[0]
        self.relabel = DepthLabels(self.length)
        self.hint = (Argument("depth", self.length, 4),)
        self.steps = StepLabels(self.relabel, self.hint)
        self.fns = {it.name: it for it in module.items if isinstance(it, Function)}
        #: input families: base name -> {step: member}
        self.families: dict[str, dict[int, Name]] = {}
        for t in ctx.net.data:
            if t.name.ints:
                self.families.setdefault(t.name.base, {})[t.name.ints[0]] = t.name
        if not self.families:
            raise UsageError(f"a recurrence over {self.length} steps reads no input per step: its length "
                             "cannot be read from the data; generate it at a given length, e.g. {0}",
                             arguments=self.hint)
        self.plain = [t.name for t in ctx.net.data if not t.name.ints]

    def statement(self, st):
        return self.steps.statement(st)

    def body(self, fn: Function) -> tuple:
        return tuple(self.statement(st) for st in fn.body)

    # -- functions ---------------------------------------------------------------------
    def length_line(self) -> Assign:
        return Assign(Var(self.length), Item(T, Str(DEPTH_KEY)))

    def forward(self) -> Function:
        fam = next(iter(self.families))
        lines = [f'{self.length} = data["{fam}"].shape[1]', f't = {{"{DEPTH_KEY}": {self.length}}}']
        lines += [f't["{n}"] = data["{n}"]' for n in map(str, self.plain)]
        lines.append("t.update((name, params[name]) for name in PARAMS)")
        lines.append(f"for k in range(1, {self.length} + 1):")
        lines += [f'    t[f"{base}({{k}})"] = data["{base}"][:, k - 1]' for base in self.families]
        fn = self.fns["_forward"]
        return Function("_forward", fn.args, fn.doc + f"  The length {self.length} is data[{fam!r}].shape[1].",
                        self.body(fn), (Python("\n".join(lines)),), Frame.NAMES)

    def support(self, name: str) -> Function:
        fn = self.fns[name]
        return Function(name, fn.args, fn.doc, self.body(fn), (self.length_line(),), Frame.NAMES)

    def from_t(self, source: str, name: str, doc: str) -> Function:
        """A public function's body as a function of ``t`` (forward and backward done)."""
        fn = self.fns[source]
        return Function(name, ("t",), doc, self.body(fn), (self.length_line(), batch_line(self.ctx)), Frame.NAMES)

    def gradient(self) -> Function:
        """``_gradient(t)``: the backward loop with each weight's sum over steps added up in it
        (:mod:`einderiv.emit.fuse`) — or, where the sums do not fit the loop, read from ``t``
        after ``_backward`` (its docstring says which)."""
        fused = fuse_gradient(self.fns["_backward"].body, self.fns["gradient"].body, self.ctx)
        if fused is None:
            return self.from_t("gradient", "_gradient", "Batch-mean gradient from t (forward and backward done).")
        return Function("_gradient", ("t",), FUSED_DOC, tuple(self.statement(st) for st in fused),
                        (self.length_line(), batch_line(self.ctx)), Frame.NAMES)

    def seeded_backward(self) -> Function:
        """The BPTT loop from the adjoint of the objective's argument, read from ``t`` (a seed)."""
        ctx, arg = self.ctx, self.ggn_argument()
        quantities = ctx.needed([ctx.d.blocks[(p,)].expr for p in ctx.params])
        defs = [Define(q.name, q.indices, q.expr) for q in quantities if q.name != Quantity(Kind.ADJ, (arg,))]
        body = tuple(self.statement(st) for st in group_sums(fold_definitions(defs, ctx), ctx))
        return Function("_backward_seeded", ("t",), f"The back-propagated quantities from a seed t['adj[{arg}]'] "
                        "(the reversed loop over steps of _backward, its first adjoint given).", body,
                        (self.length_line(),), Frame.NAMES)

    def ggn_argument(self) -> Name:
        return ggn_argument(self.ctx, self.hint)

    def hobj(self) -> Function:
        arg = self.ggn_argument()
        q = next(q for q in self.ctx.d.quantities if q.name == Quantity(Kind.HOBJ, (arg, arg)))
        return Builder(self.ctx).quantity(q)

    def module(self) -> Module:
        ctx, arg = self.ctx, self.ggn_argument()
        items = [Helpers(), self.forward(), self.support("_backward"), self.support("_r_pass"),
                 self.seeded_backward(), self.hobj(), self.fns["objective"],
                 self.gradient(),
                 self.from_t("per_sample_gradient", "_per_sample",
                             "Per-sample gradients from t (forward and backward done)."),
                 self.from_t("gradient_factors", "_factors", "Gradient factors from t (forward and backward done)."),
                 self.from_t("hvp", "_hvp", "Hessian-vector product from t (forward, backward, R-pass done).")]
        fam = next(iter(self.families))
        first = str(self.families[fam][1])
        shortest = shortest_length([it for it in items if isinstance(it, Function)], self.length, self.hint)
        items[1] = replace(items[1], prologue=items[1].prologue + (Python(
            f"if {self.length} < MIN_LENGTH:\n    raise ValueError(f\"this recurrence is written for "
            f"{self.length} >= {{MIN_LENGTH}} steps: data[{fam!r}] has {{{self.length}}}\")"),))
        fused = items[7].doc == FUSED_DOC  # (its forward pass: fuse.carry_fused, after lowering)
        backward = f"{LEAN_FORWARD}(params, data)" if fused else "_forward(params, data)\n    _backward(t)"
        factors = f"{FACTORS_FORWARD}(params, data)\n    {FACTORS_BACKWARD}(t)" if fused else \
            "_forward(params, data)\n    _backward(t)"
        items.append(Source(_PUBLIC.format(arg=arg, first=first, gram_norm=GRAM_NORM, backward=backward, factors=factors,
                                           hobj_fn="_" + ctx.ident[Quantity(Kind.HOBJ, (arg, arg))]).strip("\n")))
        inputs = {str(n): (self.length,) + tuple(ctx.shape[ms[min(ms)]]) for n, ms in self.families.items()}
        inputs.update((str(n), tuple(ctx.shape[n])) for n in self.plain)
        constants = [c for c in self.looped.constants if c.name == "PARAMS"]
        constants += [Constant("INPUTS", Py(inputs)), Constant("GRADIENT_FACTOR_AXES", Py(self.factor_axes())),
                      Constant("MIN_LENGTH", Py(shortest))]
        header = ctx.header(omit=self.length, sizes_prefix=f"Length {self.length}: read at run time "
                            f"(data[{fam!r}].shape[1]).  Network shown at the reference length.  ")
        return Module(header, tuple(constants), tuple(items))

    def factor_axes(self) -> dict:
        """Each parameter's factor axes, the same for every term (the Gram norm stacks them)."""
        out = {}
        for st in self.fns["gradient_factors"].body:
            if isinstance(st, Factors):
                axes = {factor_axes(factored(g.term, st.indices)[0], st.indices) for g in st.groups}
                if len(axes) != 1:
                    raise UsageError(f"the gradient of {st.param} is not one sum of outer products of the same "
                                     "axes: its module at run-time length is not written; generate it at a "
                                     "given length, e.g. {0}", arguments=self.hint)
                out[str(st.param)] = axes.pop()
        return out


def shortest_length(functions, symbol: str, hint: tuple) -> int:
    """The shortest length the module is written for: every step a statement outside the loops
    names must exist (``h(T-1)`` needs T ≥ 2), and a member written relative to the end must not
    be one written out at the start (``h(1)``'s base case and a generic ``h(T-2)`` at T = 3).  A
    step label far from both ends (an absolute ``h(5)``) means the steps did not fold into loops:
    such a module would be right at the reference length only, so it is refused."""
    need, first_rel, last_abs = 1, {}, {}
    for fn in functions:
        for st in fn.prologue + fn.body:
            starts = [st.over.start] if isinstance(st, Loop) and isinstance(st.over, Range) else []
            for lab in starts + [lab for n in _straight_names(st) for lab in n.labels]:
                if isinstance(lab, int) and lab > REF_DEPTH - 2 * NEAR:
                    raise UsageError(f"the steps (layers) do not all fold into loops over {symbol} (step {lab} "
                                     f"of the reference length {REF_DEPTH} is written out): its module is "
                                     "generated at a given length, e.g. {0}", arguments=hint)
                if starts:  # (an empty loop is fine)
                    continue
                if isinstance(lab, Sym) and lab.symbol == symbol:
                    need = max(need, 1 - lab.offset)
                elif isinstance(lab, int):
                    need = max(need, lab)
            if isinstance(st, Define):  # members defined at both ends of the same family
                key = re.sub(r"\([^()]*\)", "(#)", str(st.name))
                for lab in [lab for n in names_in(st.name) for lab in n.labels]:
                    if isinstance(lab, Sym) and lab.symbol == symbol:
                        first_rel[key] = min(first_rel.get(key, lab.offset), lab.offset)
                    elif isinstance(lab, int):
                        last_abs[key] = max(last_abs.get(key, lab), lab)
    for key in first_rel.keys() & last_abs.keys():
        need = max(need, last_abs[key] + 1 - first_rel[key])
    return need


def ggn_argument(ctx: Context, hint: tuple) -> Name:
    """The objective's one argument node (``p``), where the GGN diagonal's seeds start."""
    hobj = [q.name for q in ctx.d.quantities if isinstance(q.name, Quantity) and q.name.kind is Kind.HOBJ]
    args = {p for q in hobj for p in q.parts}
    if len(args) != 1 or labels_of(next(iter(args))):
        raise UsageError("ggn_diagonal at a run-time length or depth needs an objective of one unlabelled node; "
                         "generate the module at a given length, e.g. {0}", arguments=hint)
    return next(iter(args))


def _straight_names(st):
    """The tensor names a statement reads or writes outside any loop over steps."""
    if isinstance(st, Define):
        yield from names_in(st.name)
        for r in refs(st.expr):
            yield from names_in(r.name)
    elif isinstance(st, AddTo) and st.group.labels is None:  # (a fused gradient's step added after its loop)
        for r in refs(st.group.term):
            yield from names_in(r.name)
    elif isinstance(st, (Accumulate, Factors)):
        for g in st.groups if st.groups is not None else (TermGroup(None, st.expr),):
            if g.labels is None:
                for r in refs(g.term):
                    yield from names_in(r.name)


class StepLabels:
    """Statements of a looped kernel with the labels near the reference length written relative
    to the run-time length (loops, term groups and the names they read)."""

    def __init__(self, relabel: DepthLabels, hint: tuple):
        self.relabel, self.hint = relabel, hint

    def labels(self, labels):
        """A term group's steps as a range relative to the length."""
        if labels is None:
            return None
        return self.range(over(labels))

    def range(self, r):
        if not isinstance(r, Range):
            if any(isinstance(lb, int) and abs(lb - REF_DEPTH) <= 2 for lb in r):
                raise UsageError(f"a loop over the steps {r} is not a range: its module is "
                                 "generated at a given length, e.g. {0}", arguments=self.hint)
            return r
        last = self.relabel.label(r.stop - r.step)
        stop = last.shift(r.step) if isinstance(last, Sym) else last + r.step
        return Range(self.relabel.label(r.start), stop, r.step)

    def group(self, g: TermGroup) -> TermGroup:
        return TermGroup(self.labels(g.labels), map_refs(g.term, self.relabel.name))

    def statement(self, st):
        name, expr = self.relabel.name, lambda e: map_refs(e, self.relabel.name)
        if isinstance(st, Define):
            groups = st.groups and tuple(self.group(g) for g in st.groups)
            return replace(st, name=name(st.name), expr=expr(st.expr), groups=groups)
        if isinstance(st, Loop):
            return Loop(st.var, self.range(st.over), tuple(self.statement(s) for s in st.body))
        if isinstance(st, Accumulate):
            return replace(st, wrt=tuple(map(name, st.wrt)), groups=tuple(self.group(g) for g in st.groups))
        if isinstance(st, AddTo):
            return replace(st, group=self.group(st.group))
        if isinstance(st, Factors):
            return replace(st, expr=expr(st.expr),
                           groups=None if st.groups is None else tuple(self.group(g) for g in st.groups))
        return st


#: the public functions over the support functions above (the same for every recurrence)
#: the per-sample norm of a sum of K outer products from its factors, shared by the run-time modules
GRAM_NORM = '''def _stacked(arrays, memo):
    """np.stack(arrays, axis=1), without a copy where it can be: arrays stacked already for another
    parameter (the same ones, or a run of them at either end of a longer stack: a slice of it), or
    views equally spaced in one array (a sequence's steps data["x"][:, k]: a read-only strided view)."""
    ids = tuple(map(id, arrays))
    for key, S in memo.items():
        if len(ids) <= len(key) and key[len(key) - len(ids):] == ids:
            return S[:, len(key) - len(ids):]
        if len(ids) <= len(key) and key[:len(ids)] == ids:
            return S[:, :len(ids)]
    a, S = arrays[0], None
    if len(arrays) > 1 and a.base is not None and all(x.base is a.base for x in arrays):
        at = [x.__array_interface__["data"][0] for x in arrays]
        step = at[1] - at[0]
        if step and all(x.shape == a.shape and x.strides == a.strides and x.dtype == a.dtype
                        and p - at[0] == k * step for k, (x, p) in enumerate(zip(arrays, at))):
            S = np.lib.stride_tricks.as_strided(a, (a.shape[0], len(arrays)) + a.shape[1:],
                                                (a.strides[0], step) + a.strides[1:], writeable=False)
    if S is None:
        S = np.stack(arrays, axis=1)
    memo[ids] = S
    return S


def _gram_norm(terms, memo=None):
    """‖Σ_s a_s ⊗ b_s ⊗ …‖ per sample from K terms: the product of each factor's (B, K, K) Gram matrix,
    summed over the K × K pairs — or, for two factors where K (a + b) ≥ a b, ‖Σ_s a_s b_sᵀ‖ from one
    batched product (B, a, b), no larger than the stacked factors themselves: cost B·K·min(K (a + b), a b).
    ``memo``: the stacks of the other parameters of the same call (:func:`_stacked`)."""
    memo = {} if memo is None else memo
    stacked = []
    for k in range(len(terms[0])):
        F = _stacked([term[k] for term in terms], memo)
        stacked.append(F.reshape(F.shape[0], F.shape[1], -1))
    if len(stacked) == 2:
        (_, K, a), b = stacked[0].shape, stacked[1].shape[2]
        if K * (a + b) >= a * b:
            G = stacked[0].transpose(0, 2, 1) @ stacked[1]
            return np.sqrt(np.einsum("bij,bij->b", G, G))
    sq = 1.0
    for F in stacked:
        sq = sq * (F @ F.transpose(0, 2, 1))
    return np.sqrt(np.maximum(np.sum(sq, axis=(1, 2)), 0.0))
'''

_PUBLIC = '''

def gradient(params, data):
    """Batch-mean gradient: name -> array of the parameter's shape."""
    t = {backward}
    return _gradient(t)


def per_sample_gradient(params, data):
    """Per-sample gradients: name -> array (B, *shape)."""
    t = {factors}
    return _per_sample(t)


def gradient_factors(params, data):
    """Per-sample gradient of each parameter as a sum of outer products: name -> list of terms (one per
    step of each sum over steps), each a tuple of per-sample factors with axes GRADIENT_FACTOR_AXES[name]
    (the same for every term)."""
    t = {factors}
    out = _factors(t)
    B = t["{first}"].shape[0]
    for name, terms in out.items():
        if not terms:  # a sum over no step (T = 1): one zero term
            axes = GRADIENT_FACTOR_AXES[name]
            terms.append(tuple(np.zeros((B,) + tuple(PARAMS[name][a] for a in ax)) for ax in axes))
    return out


def expand_factors(name, terms):
    """Rebuild the per-sample gradient of `name` from gradient_factors(...)[name] (for checking)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = "Z" + letters[:len(PARAMS[name])]
    subs = ",".join("Z" + "".join(letters[a] for a in ax) for ax in GRADIENT_FACTOR_AXES[name])
    total = 0.0
    for term in terms:
        total = total + np.einsum(subs + "->" + out, *term)
    return total


{gram_norm}

def per_sample_gradient_norms(params, data):
    """Euclidean norm of each sample's gradient, per parameter: name -> (B,), from the gradient's factors by
    T x T Gram matrices, or one batched product where that is smaller (no array larger than the stacked factors,
    no loop over pairs of steps)."""
    factors, memo = gradient_factors(params, data), {{}}  # (the longest sums first: the others may be slices of theirs)
    norms = {{name: _gram_norm(factors[name], memo) for name in sorted(factors, key=lambda n: -len(factors[n]))}}
    return {{name: norms[name] for name in factors}}


def hvp(params, data, vector):
    """Hessian-vector product Σ_b H[(a, b)]·vector[b] for every parameter a (batch mean), by the R-operator:
    forward tangents and R-adjoints as loops over the steps — no Hessian block is formed."""
    t = _forward(params, data)
    _backward(t)
    for name in PARAMS:
        t["dir[" + name + "]"] = vector[name]
    _r_pass(t)
    return _hvp(t)


def hessian(params, data):
    """Batch-mean Hessian blocks: (a, b) -> array shape_a + shape_b, every ordered pair; column by column by
    the R-operator (one R-pass per entry of b, the forward and backward pass done once)."""
    t = _forward(params, data)
    _backward(t)
    out = {{}}
    for b, shape_b in PARAMS.items():
        size = int(np.prod(shape_b))
        cols = {{a: np.zeros(shape_a + (size,)) for a, shape_a in PARAMS.items()}}
        for e in range(size):
            for name, shape in PARAMS.items():
                t["dir[" + name + "]"] = np.zeros(shape)
            t["dir[" + b + "]"] = np.zeros(size)
            t["dir[" + b + "]"][e] = 1.0
            t["dir[" + b + "]"] = t["dir[" + b + "]"].reshape(shape_b)
            _r_pass(t)
            column = _hvp(t)
            for a in PARAMS:
                cols[a][..., e] = column[a]
        for a, shape_a in PARAMS.items():
            out[(a, b)] = cols[a].reshape(shape_a + shape_b)
    return out


def ggn_diagonal(params, data):
    """Exact diagonal of the (batch-mean) generalised Gauss–Newton matrix J_{arg}ᵀ ∂²f/∂{arg}² J_{arg}: the
    objective's Hessian in {arg} factored per sample (eigh), each eigenvector back-propagated through the
    steps as a seed: name -> array of the parameter's shape."""
    t = _forward(params, data)
    B = t["{first}"].shape[0]
    hobj = {hobj_fn}(t)
    width = hobj.shape[-1]
    w, v = np.linalg.eigh(np.broadcast_to(hobj, (B, width, width)))
    out = {{name: np.zeros(shape) for name, shape in PARAMS.items()}}
    for r in range(width):
        t["adj[{arg}]"] = v[:, :, r]
        _backward_seeded(t)
        rows = _per_sample(t)
        for name in PARAMS:
            out[name] = out[name] + np.tensordot(w[:, r], rows[name] ** 2, axes=1) / B
    return out
'''
