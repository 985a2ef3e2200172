"""The loop pass: a family's members become one loop over its label (backpropagation through time).

A recurrent network is derived unrolled — nodes ``z_h(1) … h(T)``, adjoints ``adj[h(1)] …`` —
and :mod:`einderiv.emit.kernel_build` writes one statement per member.  This pass rewrites
those statements so that the gradient path of the module is written *once per step*, as a
loop over the label, instead of once per member: its size does not grow with T and its cost is
linear in T.  Members are recognised by their structure — names written relative to their own
label (:func:`einderiv.analysis.fold.abstract`) and expressions compared with
:func:`einderiv.calculus.simplify.term_key` — never by text.

**Definitions.**  A run of :class:`~einderiv.emit.kernel.Define` statements in dependency order
(the nodes, or the quantities a gradient needs) is cut into families (name and expression equal
once written relative to the member's own label).  Families whose members depend on each other
are merged into one *step body* — e.g. ``adj[p(t)], adj[r(t)], adj[z_r(t)], adj[h(t)],
adj[z_h(t)]`` — which runs over the labels all of them share (the longest contiguous run),
ascending when a step reads earlier labels (the forward pass), descending when it reads later
ones (the backward pass: ``adj[h(t)]`` reads ``adj[z_h(t+1)]``).  Members outside that run (base
cases such as ``adj[h(T)] = U adj[p]``, a first step whose ``W h(0)`` term is dropped) and
unlabelled definitions stay single statements before or after the :class:`~einderiv.emit.kernel.Loop`,
as their dependencies order them.  Anything that cannot be ordered that way stays unrolled,
which is always correct.

**Sums over steps.**  The terms of a sum that are equal up to a label shift
(:func:`einderiv.analysis.fold.fold_terms`) become one :class:`~einderiv.emit.kernel.TermGroup`:
a shared weight's gradient Σ_t δ[z_h(t)] ⊗ h(t−1) is a loop that accumulates one outer product
per step (:class:`~einderiv.emit.kernel.Accumulate`), and so are a definition that sums over
steps, the gradient's factor list and its per-sample norm (a double loop over pairs of steps).

**Which functions loop** (:func:`fold_loops`): ``_forward``, ``gradient``,
``per_sample_gradient``, ``gradient_factors``, ``per_sample_gradient_norms`` and ``hvp``, with
the back-propagated quantities in a support function ``_backward`` (and ``_r_pass`` for the
HVP's tangents and R-adjoints).  ``hessian``, ``ggn_diagonal`` and ``third_derivative`` stay
unrolled: their blocks pair two labels (``jac[h(3),z_h(1)]``) and are O(T²) blocks anyway.
Per-step tensors live in the dict ``t`` under their member names (``t[f"h({k-1})"]``).
"""
from __future__ import annotations

import heapq

from ..analysis.factor import as_terms, factored
from ..analysis.fold import abstract, fold_terms, shift_labels, tensor_labels
from ..calculus.simplify import term_key
from ..ir import MATRIX_NODES, REDUCTIONS, Apply, Const, Kind, Prod, labels_of, refs
from .kernel import (Accumulate, Assign, Block, Constant, Define, Factors, Frame, Function, Loop, Module, Python,
                     Return, Run, SquaredNorm, Support, TermGroup)
from .kernel_arrays import Call, Var
from .kernel_build import batch_line, factor_axes, factor_axes_constant, forward_call
from .kernel_context import Context, has_symbols
from .kernel_lower import over

_PLACEHOLDER = "#"
_GRADIENT_PATH = ("gradient", "per_sample_gradient", "gradient_factors", "per_sample_gradient_norms", "hvp")
DOC_FORWARD = ("Every tensor of the network by name: parameters, data and nodes (data and nodes per sample); "
               "a family's steps as one loop over its label.")
DOC_BACKWARD = ("Back-propagated quantities of the gradient into t (a family's steps as one reversed loop over "
                "its label).")
DOC_R_PASS = "Forward tangents tan[n] (ascending loops) and R-adjoints radj[n] (reversed loops) of the HVP into t."
DOC_HVP = ("Hessian-vector product Σ_b H[(a, b)]·vector[b] for every parameter a (batch mean), by the R-operator: "
           "forward tangents and R-adjoints, a family's steps as loops — no Hessian block and no Jacobian is formed.")
T = Var("t")


def has_families(derivation) -> bool:
    """Whether any node of the derivation is a family member (a labelled name)."""
    return any(labels_of(n.name) for n in derivation.nodes)


# --------------------------------------------------------------- recognising families
def batch_pattern(e, ref: int, batched) -> frozenset:
    """Which of ``e``'s tensors (written relative to ``ref``) carry the batch axis."""
    return frozenset((shift_labels(r.name, ref, _PLACEHOLDER), bool(batched(r.name))) for r in refs(e))


def longest_run(labels: list[int]) -> list[int]:
    """The longest run of consecutive integers in the ascending ``labels``."""
    best, cur = [], []
    for lb in labels:
        cur = cur + [lb] if cur and lb == cur[-1] + 1 else [lb]
        if len(cur) > len(best):
            best = cur
    return best


def schedule(defs, batched=lambda name: True) -> list[tuple]:
    """``defs`` ((name, indices, expr) in dependency order) as items ``("def", i)`` and
    ``("loop", labels in iteration order, body, covered)`` — body: the def indices at the first
    label, in dependency order; every member of the loop's families at those labels is covered
    by it.  ``batched(name)`` tells whether a tensor carries the batch axis: members whose
    operands differ in that (``W h(0)`` with a learnable ``h(0)``, ``W h(1)``) are not one family."""
    n = len(defs)
    pos = {d[0]: i for i, d in enumerate(defs)}
    lab = [labels_of(d[0])[0] if labels_of(d[0]) else None for d in defs]
    deps = [sorted({pos[r.name] for r in refs(e) if r.name in pos}) for _, _, e in defs]
    fam, members = {}, {}
    for i, (name, idx, expr) in enumerate(defs):
        if lab[i] is None:
            continue
        key = (shift_labels(name, lab[i], _PLACEHOLDER), term_key(abstract(expr, lab[i], _PLACEHOLDER), idx),
               batch_pattern(expr, lab[i], batched))
        fam[i] = key
        members.setdefault(key, {})[lab[i]] = i
    parent = {k: k for k, m in members.items() if len(m) > 1}
    direction = dict.fromkeys(parent, 0)  # +1 ascending (reads earlier labels), -1 descending

    def find(k):
        while parent[k] != k:
            k = parent[k]
        return k

    edges = [(lab[j] - lab[i], fam[i], fam[j]) for i in fam for j in deps[i]
             if j in fam and fam[i] in parent and fam[j] in parent]
    rank = {k: i for i, k in enumerate(members)}  # first appearance: a deterministic order
    _cycles(parent, direction, find, edges, rank)
    for off, a, b in sorted(edges, key=lambda e: e[0] == 0):  # recurrences fix the direction first
        _union(parent, direction, find, off, a, b)
    groups: dict = {}
    for k in parent:
        groups.setdefault(find(k), []).append(k)
    loops = []
    for root, keys in groups.items():
        common = set.intersection(*(set(members[k]) for k in keys))
        run = longest_run(sorted(common))
        if len(run) < 2:
            continue
        order = run if direction[root] >= 0 else run[::-1]
        covered = {members[k][lb] for k in keys for lb in run}
        body = sorted(members[k][order[0]] for k in keys)
        loops.append((order, body, covered))
    return _order(n, deps, loops)


def _union(parent, direction, find, off, a, b) -> None:
    """Families ``a`` (reading ``b`` at label offset ``off``) into one step body, unless that would
    make one loop both a forward and a backward recurrence."""
    ra, rb = find(a), find(b)
    dirs = {d for d in ((off < 0) - (off > 0), direction[ra], direction[rb]) if d}
    if len(dirs) > 1:
        return  # a forward and a backward recurrence: separate loops
    if ra != rb:
        parent[rb] = ra
    direction[ra] = dirs.pop() if dirs else 0


def _cycles(parent, direction, find, edges, rank) -> None:
    """Families that depend on each other in a cycle (a recurrence's step body: ``radj[h(t)]`` →
    ``radj[z(t)]`` → ``radj[z_z(t)]`` → ``radj[h(t-1)]``) become one step body first, its direction
    from the cycle's own label offsets; only then are families that merely read another loop's
    values (``radj[z(t)]`` reads ``tan[h(t-1)]``) merged, so such a read cannot pull a family into
    the wrong loop."""
    reads: dict = {}
    for off, a, b in edges:
        reads.setdefault(a, set()).add(b)

    def reach(k):
        seen, todo = set(), [k]
        while todo:
            for nxt in reads.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    below = {k: reach(k) for k in sorted(parent, key=rank.get)}
    done = set()
    for k in sorted(parent, key=rank.get):
        if k in done or k not in below[k]:
            continue
        cycle = {m for m in below[k] if k in below[m]}
        done |= cycle
        dirs = {(off < 0) - (off > 0) for off, a, b in edges if a in cycle and b in cycle and off}
        if len(dirs) > 1:
            continue  # both directions in one cycle: not a loop
        for off, a, b in edges:
            if a in cycle and b in cycle:
                _union(parent, direction, find, off, a, b)


def _order(n, deps, loops) -> list[tuple]:
    """Loops and single definitions in a dependency order (first definition first); all
    straight-line when loops and definitions would depend on each other in a cycle."""
    item_of, items = {}, []
    for order, body, covered in loops:
        for i in covered:
            item_of[i] = len(items)
        items.append(("loop", order, body, covered))
    for i in range(n):
        if i not in item_of:
            item_of[i] = len(items)
            items.append(("def", i))
    after = [set() for _ in items]
    indeg = [0] * len(items)
    for i in range(n):
        for j in deps[i]:
            a, b = item_of[j], item_of[i]
            if a != b and b not in after[a]:
                after[a].add(b)
                indeg[b] += 1
    first = [min(it[3]) if it[0] == "loop" else it[1] for it in items]
    heap = [(first[k], k) for k in range(len(items)) if indeg[k] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        _, k = heapq.heappop(heap)
        out.append(items[k])
        for b in after[k]:
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(heap, (first[b], b))
    return out if len(out) == len(items) else [("def", i) for i in range(n)]


def term_groups(expr, indices, symbol: str, batched) -> tuple[TermGroup, ...]:
    """The terms of ``expr`` as groups: a sum over steps (:func:`einderiv.analysis.fold.fold_terms`)
    is one group written with ``symbol``; members whose operands differ in the batch axis are apart."""
    terms = [Prod((Const(t.coef),) + t.factors, indices) for t in as_terms(expr, indices)]
    out = []
    for tf in fold_terms(terms, indices, symbol):
        if not tf.folded:
            out.extend(TermGroup(None, t) for t in tf.originals)
            continue
        split: dict = {}
        for lb, t in zip(tf.labels, tf.originals):
            split.setdefault(batch_pattern(t, max(tensor_labels(t)), batched), []).append((lb, t))
        for part in split.values():
            if len(part) > 1:
                first = part[0][1]
                out.append(TermGroup(tuple(lb for lb, _ in part), abstract(first, max(tensor_labels(first)), symbol)))
            else:
                out.append(TermGroup(None, part[0][1]))
    return tuple(out)


# --------------------------------------------------------------- rewriting statements
def fold_definitions(stmts, ctx: Context) -> list:
    """``stmts`` with each run of :class:`Define` statements scheduled: families as loops."""
    out, run = [], []

    def flush():
        defs = [(d.name, d.indices, d.expr) for d in run]
        sym = ctx.loop_vars[0]
        for item in schedule(defs, ctx.batched_member):
            if item[0] == "def":
                out.append(run[item[1]])
                continue
            body = []
            for i in item[2]:
                name, indices, expr = defs[i]
                ref = labels_of(name)[0]
                body.append(Define(shift_labels(name, ref, sym), indices, abstract(expr, ref, sym)))
            out.append(Loop(sym, over(item[1]), tuple(body)))
        run.clear()

    for st in stmts:
        if isinstance(st, Define):
            run.append(st)
            continue
        flush()
        out.append(st)
    flush()
    return out


def group_sums(stmts, ctx: Context) -> list:
    """Definitions (outside loops) whose terms fold into sums over steps get their groups."""
    out = []
    for st in stmts:
        if isinstance(st, Define) and not has_symbols(st.name) \
                and not isinstance(st.expr, (Apply,) + REDUCTIONS + MATRIX_NODES):
            groups = term_groups(st.expr, st.indices, ctx.loop_vars[0], ctx.batched_member)
            if any(g.labels for g in groups):
                st = Define(st.name, st.indices, st.expr, groups)
        out.append(st)
    return out


def accumulate(ctx: Context, b: Block, var: str | None = None) -> Accumulate:
    """A block as an accumulation over its term groups (written with loop variable ``var``)."""
    var = var or ctx.loop_vars[0]
    groups = term_groups(b.expr, b.indices, var, ctx.batched_member)
    return Accumulate(b.target, b.wrt, b.indices, groups, b.keep_batch, b.label, b.shape, var)


def _grouped_factors(ctx: Context, st: Factors) -> Factors:
    groups = term_groups(st.expr, st.indices, ctx.loop_vars[0], ctx.batched_member)
    return Factors(st.target, st.param, st.indices, st.expr, groups)


def _grouped_norm(ctx: Context, st: SquaredNorm) -> SquaredNorm:
    groups = tuple(term_groups(st.expr, st.indices, v, ctx.batched_member) for v in ctx.loop_vars)
    return SquaredNorm(st.target, st.param, st.indices, st.expr, groups)


#: how the gradient path's statements are written as loops
_GROUPED = {Block: accumulate, Factors: _grouped_factors, SquaredNorm: _grouped_norm}


def _support(name: str, doc: str, ctx: Context, quantities) -> Function:
    body = group_sums(fold_definitions([Define(q.name, q.indices, q.expr) for q in quantities], ctx), ctx)
    return Function(name, ("t",), doc, tuple(body), frame=Frame.NAMES)


def fold_loops(module: Module, ctx: Context) -> Module:
    """The gradient path of an unrolled kernel module written as loops over family labels."""
    d = ctx.d
    grad_qs = ctx.needed([d.blocks[(p,)].expr for p in ctx.params])
    support = [_support("_backward", DOC_BACKWARD, ctx, grad_qs)]
    if d.hvp:
        done = {q.name for q in grad_qs}
        support.append(_support("_r_pass", DOC_R_PASS, ctx,
                                [q for q in ctx.needed([b.expr for b in d.hvp.values()]) if q.name not in done]))
    items = []
    for it in module.items:
        if isinstance(it, Function) and it.name == "objective":
            items += support
        if not isinstance(it, Function):
            items.append(it)
        elif it.name == "_forward":
            body = [st for st in it.body if isinstance(st, Define)]
            items.append(Function("_forward", it.args, DOC_FORWARD,
                                  tuple(group_sums(fold_definitions(body, ctx), ctx)) + (Return(T),),
                                  (Python("t = {name: data[name] for name in INPUTS}"),
                                   Python("t.update((name, params[name]) for name in PARAMS)")), Frame.NAMES))
        elif it.name in _GRADIENT_PATH:
            prologue = (forward_call(), Run(Call("_backward", (T,))))
            if it.name == "hvp":
                prologue += (Python('for name in PARAMS:\n    t["dir[" + name + "]"] = vector[name]'),
                             Run(Call("_r_pass", (T,))))
            body = tuple(_GROUPED[type(st)](ctx, st) if type(st) in _GROUPED else st for st in it.body)
            items.append(Function(it.name, it.args, DOC_HVP if it.name == "hvp" else it.doc, body,
                                  prologue + (batch_line(ctx),), Frame.NAMES))
        else:
            items.append(it)
    constants = tuple(_loop_axes(ctx, items) if c.name == "GRADIENT_FACTOR_AXES" else c for c in module.constants)
    # the objective's Hessian stays callable: check's GGN reference reads it (a factored GGN does not)
    hobj = {"_" + ctx.ident[q.name] for q in d.quantities if q.name.kind is Kind.HOBJ}
    return Module(module.header, constants, tuple(called(items, hobj)))


def called(items, keep=frozenset()) -> list:
    """``items`` without the per-member quantity functions (``_adj_h_7``) that no function calls any
    more (in its prologue or its body; ``keep``: those kept anyway): the loops compute them in
    ``_backward`` (an order-1 module keeps none of them)."""
    if any(isinstance(it, Support) and it.name == "_Tensors" for it in items):
        return list(items)  # (at order 3 the tensors' dict calls quantity functions by name, on demand)
    called = {st.value.fn for it in items if isinstance(it, Function) for st in it.prologue + it.body
              if isinstance(st, Assign) and isinstance(st.value, Call)} | set(keep)
    return [it for it in items if not (isinstance(it, Function) and it.frame is Frame.IDENT and it.args == ("t",)
                                       and it.name not in called)]


def _loop_axes(ctx: Context, items) -> Constant:
    """GRADIENT_FACTOR_AXES of the looped factor lists: one entry per step of each group."""
    axes = {}
    for it in items:
        if isinstance(it, Function) and it.name == "gradient_factors":
            for st in it.body:
                if isinstance(st, Factors):
                    axes[st.param] = [a for g in st.groups for a in
                                      [factor_axes(factored(g.term, st.indices)[0], st.indices)] * len(g.labels or [0])]
                    axes[st.param] = axes[st.param] or [(tuple(range(len(ctx.shape[st.param]))),)]
    return factor_axes_constant(ctx, axes)
